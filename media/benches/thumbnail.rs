//! Preparing 12-megapixel JPEGs as media does for every image sent: `media::processing::prepare`
//! (decode within the limits, orientation, metadata stripped, a 1280 px preview and a 256 px
//! thumbnail encoded as JPEG), on a release build, one image at a time on one core:
//!
//!     cargo bench -p media --bench thumbnail
//!
//! The photos are made here (smooth light and colour with sensor-like noise, as
//! loadtest's `media` scenario sends), so no fixture is committed. Beside the whole function it
//! times the decode alone, the part no preview size changes.
//!
//! Not a test: it prints figures for docs/BENCHMARKS.md. Run it on an idle machine.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
/// Different photos, prepared in turn.
const PHOTOS: u64 = 3;
const ROUNDS: usize = 10;

fn main() {
    let photos: Vec<Bytes> = (0..PHOTOS)
        .map(|seed| Bytes::from(photo(WIDTH, HEIGHT, seed)))
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

/// A photo-like JPEG: the same recipe as loadtest's `media` scenario (`loadtest/src/media/
/// photo.rs`), repeated here rather than making a service crate's bench depend on the load
/// harness. Smooth light and colour over the frame plus noise of up to 12 in each channel, at
/// quality 90: about a phone photo's size, where a flat colour would decode in a blink.
fn photo(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as i32 % 13
    };
    let phase = (seed % 97) as f32 * 0.37;
    let (w, h) = (width as f32, height as f32);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32 / w, y as f32 / h);
        let smooth = [
            128.0 + 90.0 * (fx * 6.3 + phase).sin() * (fy * 4.1).cos(),
            120.0 + 70.0 * ((fx + fy) * 9.0 + phase).sin(),
            100.0 + 80.0 * (fx * 3.0 - fy * 7.0).cos() * (fx * fy * 20.0 + phase).sin(),
        ];
        Rgb(smooth.map(|c| (c as i32 + noise()).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    image
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
        .expect("encoding to memory cannot fail");
    out
}
