//! Preparing 12-megapixel JPEGs as media does for every image sent: `media::processing::prepare`
//! (decode within the limits, orientation, metadata stripped, a 1280 px preview and a 256 px
//! thumbnail encoded as JPEG), on a release build, one image at a time on one core:
//!
//!     cargo bench -p media --bench thumbnail
//!
//! The photos are the ones loadtest's `media` scenario sends (`loadtest::media::photo`: smooth
//! light and colour with sensor-like noise), made on the spot, so no fixture is committed.
//! Beside the whole function it times the decode alone, the part no preview size changes.
//!
//! Not a test: it prints figures for docs/BENCHMARKS.md. Run it on an idle machine.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bytes::Bytes;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
/// Different photos, prepared in turn.
const PHOTOS: u64 = 3;
const ROUNDS: usize = 10;

fn main() {
    let photos: Vec<Bytes> = (0..PHOTOS)
        .map(|seed| Bytes::from(loadtest::media::photo::jpeg(WIDTH, HEIGHT, seed)))
        .collect();
    let sizes: Vec<String> = photos
        .iter()
        .map(|p| format!("{:.1}", p.len() as f64 / 1e6))
        .collect();
    println!(
        "{PHOTOS} photos of {WIDTH} x {HEIGHT} ({} MB JPEG), {ROUNDS} rounds",
        sizes.join(", ")
    );
    // One unmeasured pass: page faults of the first large allocations.
    for p in &photos {
        media::processing::prepare(p).expect("the photo prepares");
    }
    let mut prepare = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..ROUNDS {
        for p in &photos {
            let started = Instant::now();
            let prepared = media::processing::prepare(p).expect("the photo prepares");
            prepare.push(started.elapsed());
            assert_eq!(prepared.size, (WIDTH, HEIGHT));
            let started = Instant::now();
            let image = image::load_from_memory(p).expect("the photo decodes");
            decode.push(started.elapsed());
            assert_eq!(image.width(), WIDTH);
        }
    }
    line("prepare (decode, preview, thumbnail)", prepare);
    line("decode alone", decode);
}

fn line(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i].as_secs_f64() * 1e3
    };
    println!(
        "  {what:<38} p50 {:>7.1} ms   p90 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (n={})",
        at(0.5),
        at(0.9),
        at(0.99),
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1e3),
        times.len()
    );
}
