//! `media`: files through the media service against a running stack (`./natter up`).
//!
//! For each file size (`--sizes`, 1 MiB and 25 MiB) and each number in flight (`--concurrency`,
//! 1 and 50), one member uploads `--files` files in Discord's two steps (a slot, then the bytes
//! PUT to its `upload_url`, streamed from one shared buffer), sends them in messages of ten, and
//! downloads each through its message's `attachments[n].url`; then the messages are deleted
//! (their files with them). Each direction reports MiB/s over the phase, each request's time
//! (p50/p99), errors by status, and the media process's memory: `VmRSS` sampled every 10 ms and
//! `VmHWM` (its peak, reset at the phase's start when the kernel allows) from
//! `/proc/<pid>/status`, with media's CPU seconds from its `/metrics`.
//!
//! Then `--images` times, one after another: a 12-megapixel photo-like JPEG is uploaded and
//! sent, and the time from the send to the other member's gateway session receiving the
//! MESSAGE_UPDATE that carries the image's processed width and height (p50/p99).
//!
//! It fails when any transfer failed or any processed update did not arrive.

pub mod photo;
pub mod rss;
pub mod transfer;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use hdrhistogram::Histogram;
use proto::api::attachments::{AttachmentRef, MAX_FILES};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::client::{self, Source};
use crate::population::{Population, User};
use crate::report::{self, Percentiles};
use crate::run::Target;
use crate::server::{Rest, now_us};
use rss::{PhaseMemory, Sampler};
use transfer::{Failed, Media, Slot};

/// How often media's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How long a processed image's MESSAGE_UPDATE may take before it counts as missing.
const PROCESSED_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Media's public URL.
    #[arg(long, default_value = "http://127.0.0.1:8084")]
    pub media: url::Url,
    /// Media's `/metrics` (its CPU seconds per phase).
    #[arg(long, default_value = "http://127.0.0.1:9084/metrics")]
    pub media_metrics: String,
    /// The media process whose memory is sampled (default: the pid in --media-pid-file).
    #[arg(long)]
    pub media_pid: Option<u32>,
    /// Where `./natter up` writes media's pid (relative: run from its checkout).
    #[arg(long, default_value = ".natter/pids/media.pid")]
    pub media_pid_file: PathBuf,
    /// File sizes, comma separated (B, KiB or MiB; media takes at most 25 MiB by default).
    #[arg(long, value_delimiter = ',', default_value = "1MiB,25MiB", value_parser = transfer::parse_size)]
    pub sizes: Vec<u64>,
    /// Transfers in flight at once, comma separated: each size runs at each.
    #[arg(long, value_delimiter = ',', default_value = "1,50")]
    pub concurrency: Vec<usize>,
    /// Files uploaded and downloaded per size and concurrency.
    #[arg(long, default_value_t = 100)]
    pub files: usize,
    /// Photos sent one after another, each timed to its processed MESSAGE_UPDATE (0: none).
    #[arg(long, default_value_t = 10)]
    pub images: usize,
    /// The photos' width and height (4000 x 3000: 12 megapixels).
    #[arg(long, default_value_t = 4000)]
    pub image_width: u32,
    #[arg(long, default_value_t = 3000)]
    pub image_height: u32,
    /// Sign in the two users an earlier run signed up (its output names their tag) instead of
    /// signing up two more: auth allows 10 sign-ups an hour per address by default.
    #[arg(long)]
    pub reuse_users: Option<String>,
}

/// One direction of one phase.
#[derive(Debug, Serialize)]
struct Direction {
    files: u64,
    seconds: f64,
    mib_per_second: f64,
    /// Each file's PUT (uploads) or GET (downloads), first byte sent to last byte.
    request: Percentiles,
    /// Failed transfers by HTTP status (0: no answer).
    errors_by_status: BTreeMap<u16, u64>,
    first_error: Option<String>,
    media_memory: PhaseMemory,
    media_cpu_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Phase {
    size_bytes: u64,
    concurrency: usize,
    /// Asking for upload slots (part of the upload phase's time).
    slot: Percentiles,
    upload: Direction,
    download: Direction,
}

#[derive(Debug, Serialize)]
struct Processed {
    images: usize,
    width: u32,
    height: u32,
    jpeg_bytes: usize,
    /// Slot and PUT of the photo, before the send.
    upload: Percentiles,
    /// The send's request to its answer.
    send_answered: Percentiles,
    /// The send's request to the other member's MESSAGE_UPDATE with the image's size.
    send_to_processed: Percentiles,
    missing: usize,
}

#[derive(Debug, Serialize)]
struct MediaResult {
    media_pid: u32,
    /// `--storage` on media's command line (`local` or `s3`), when it says.
    storage: Option<String>,
    users_tag: String,
    phases: Vec<Phase>,
    processed: Option<Processed>,
}

/// What a run works with.
struct Setup {
    rest: Rest,
    media: Media,
    channel: String,
    users: Vec<User>,
    pid: u32,
    metrics: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.files == 0 || args.concurrency.contains(&0) {
        bail!("--files and every --concurrency must be at least 1");
    }
    let pid = match args.media_pid {
        Some(pid) => pid,
        None => transfer::pid_from_file(&args.media_pid_file)?,
    };
    rss::read(pid).context("the media process's memory (is --media-pid media's?)")?;
    let storage = transfer::storage_of(pid);
    let target = &args.target;
    let people = Population::new(&target.auth);
    let (tag, users) = match &args.reuse_users {
        Some(tag) => (tag.clone(), people.sign_in(tag, 2).await?),
        None => {
            let tag = format!("m{}", now_us() % 1_000_000_000);
            println!("media: signing up {tag}_0 and {tag}_1 (--reuse-users {tag} signs them in)");
            (tag.clone(), people.sign_up(&tag, 2).await?)
        }
    };
    let channel = people.channels(&users, 1, 2).await?.remove(0).id;
    let setup = Setup {
        rest: Rest::new(&target.gateway)?,
        media: Media::new(&args.media)?,
        channel,
        users,
        pid,
        metrics: args.media_metrics.clone(),
    };
    println!(
        "media: pid {pid}, storage {}",
        storage.as_deref().unwrap_or("(not on its command line)")
    );

    let pattern = transfer::pattern(now_us());
    let mut phases = Vec::new();
    for &size in &args.sizes {
        for &concurrency in &args.concurrency {
            let phase = transfers(&setup, &pattern, size, concurrency, args.files).await?;
            print_phase(&phase);
            phases.push(phase);
        }
    }
    let processed = if args.images > 0 {
        let processed = processed(&setup, target, &args).await?;
        print_processed(&processed);
        Some(processed)
    } else {
        None
    };
    let result = MediaResult {
        media_pid: pid,
        storage,
        users_tag: tag,
        phases,
        processed,
    };
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-media.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    let failed = result
        .phases
        .iter()
        .any(|p| !p.upload.errors_by_status.is_empty() || !p.download.errors_by_status.is_empty());
    let missing = result.processed.as_ref().is_some_and(|p| p.missing > 0);
    if failed || missing {
        bail!("every upload and download must succeed and every image's update arrive");
    }
    Ok(())
}

/// Uploads `files` files of `size` bytes, `concurrency` at a time; sends them; downloads each
/// through its link, as many at a time; deletes the messages.
async fn transfers(
    setup: &Setup,
    pattern: &Bytes,
    size: u64,
    concurrency: usize,
    files: usize,
) -> anyhow::Result<Phase> {
    let sender = &setup.users[0];
    println!(
        "media: {files} files of {}, {concurrency} at a time",
        transfer::show_size(size)
    );
    let mut slots = Histogram::<u64>::new(3)?;
    let up = Measure::start(setup).await?;
    let outcomes: Vec<(u64, Uploaded)> = futures::stream::iter(0..files)
        .map(|i| async move {
            let asked = Instant::now();
            let slot = setup
                .media
                .slot(
                    &setup.channel,
                    &sender.token,
                    &transfer::filename(size, i),
                    size,
                )
                .await?;
            let slot_us = asked.elapsed().as_micros() as u64;
            let started = Instant::now();
            setup.media.put(&slot, pattern, size).await?;
            Ok((slot_us, (slot, started.elapsed().as_micros() as u64)))
        })
        .buffer_unordered(concurrency)
        .map(
            |outcome: Result<(u64, (Slot, u64)), Failed>| match outcome {
                Ok((slot_us, done)) => (slot_us, Ok(done)),
                Err(e) => (0, Err(e)),
            },
        )
        .collect()
        .await;
    let mut uploaded = Vec::new();
    let mut tally = Tally::new()?;
    for (slot_us, outcome) in outcomes {
        match outcome {
            Ok((slot, put_us)) => {
                slots.record(slot_us.max(1))?;
                tally.ok(put_us)?;
                uploaded.push(slot);
            }
            Err(e) => tally.failed(e),
        }
    }
    let upload = up.finish(tally, size).await?;

    let (messages, links) = send_files(setup, &uploaded).await?;
    let down = Measure::start(setup).await?;
    let outcomes: Vec<Result<u64, Failed>> = futures::stream::iter(links)
        .map(|link| async move {
            let started = Instant::now();
            let read = setup.media.download(&link).await?;
            if read != size {
                return Err(Failed {
                    status: 200,
                    why: format!("read {read} bytes of a {size}-byte file"),
                });
            }
            Ok(started.elapsed().as_micros() as u64)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut tally = Tally::new()?;
    for outcome in outcomes {
        match outcome {
            Ok(us) => tally.ok(us)?,
            Err(e) => tally.failed(e),
        }
    }
    let download = down.finish(tally, size).await?;
    delete(setup, &messages).await;
    Ok(Phase {
        size_bytes: size,
        concurrency,
        slot: (&slots).into(),
        upload,
        download,
    })
}

/// An uploaded file's slot and its PUT's time (µs), or why it failed.
type Uploaded = Result<(Slot, u64), Failed>;

/// Successes' times and failures of one direction.
struct Tally {
    times: Histogram<u64>,
    errors_by_status: BTreeMap<u16, u64>,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            times: Histogram::new(3)?,
            errors_by_status: BTreeMap::new(),
            first_error: None,
        })
    }

    fn ok(&mut self, us: u64) -> anyhow::Result<()> {
        self.times.record(us.max(1))?;
        Ok(())
    }

    fn failed(&mut self, Failed { status, why }: Failed) {
        *self.errors_by_status.entry(status).or_insert(0) += 1;
        self.first_error
            .get_or_insert_with(|| format!("{status} {why}"));
    }
}

/// A phase's clock, memory samples and media's CPU seconds at its start.
struct Measure {
    started: Instant,
    sampler: Sampler,
    cpu: Option<f64>,
    metrics: String,
}

impl Measure {
    async fn start(setup: &Setup) -> anyhow::Result<Self> {
        Ok(Self {
            cpu: cpu_seconds(&setup.metrics).await,
            sampler: Sampler::start(setup.pid, SAMPLE_EVERY)?,
            started: Instant::now(),
            metrics: setup.metrics.clone(),
        })
    }

    async fn finish(self, tally: Tally, size: u64) -> anyhow::Result<Direction> {
        let seconds = self.started.elapsed().as_secs_f64();
        let media_memory = self.sampler.finish().await?;
        let after = cpu_seconds(&self.metrics).await;
        let times = tally.times;
        let files = times.len();
        Ok(Direction {
            files,
            seconds,
            mib_per_second: (files * size) as f64 / (1024.0 * 1024.0) / seconds,
            request: (&times).into(),
            errors_by_status: tally.errors_by_status,
            first_error: tally.first_error,
            media_memory,
            media_cpu_seconds: self.cpu.zip(after).map(|(b, a)| a - b),
        })
    }
}

async fn cpu_seconds(metrics: &str) -> Option<f64> {
    report::scrape(metrics, "process_cpu_seconds_total")
        .await
        .ok()
}

/// Sends the uploads in messages of up to ten files: the messages' ids and every file's link.
async fn send_files(
    setup: &Setup,
    uploaded: &[Slot],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut messages = Vec::new();
    let mut links = Vec::new();
    for group in uploaded.chunks(MAX_FILES) {
        let (message, _) = send(setup, group).await?;
        messages.push(message["id"].as_str().context("a message id")?.to_owned());
        for file in message["attachments"].as_array().into_iter().flatten() {
            links.push(file["url"].as_str().context("a file's url")?.to_owned());
        }
    }
    anyhow::ensure!(
        links.len() == uploaded.len(),
        "{} files sent, {} links back",
        uploaded.len(),
        links.len()
    );
    Ok((messages, links))
}

/// Sends one message carrying `files` as the first user; the message as answered, and when
/// (`now_us`) the attempt that was answered went out.
async fn send(setup: &Setup, files: &[Slot]) -> anyhow::Result<(Value, u64)> {
    let attachments: Vec<AttachmentRef> = files
        .iter()
        .enumerate()
        .map(|(i, slot)| AttachmentRef {
            id: i.to_string(),
            filename: slot
                .upload_filename
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            uploaded_filename: slot.upload_filename.clone(),
        })
        .collect();
    let body = json!({ "content": "", "attachments": attachments });
    let path = format!("/api/v1/channels/{}/messages", setup.channel);
    let (status, answer, sent_at) =
        retrying(setup, reqwest::Method::POST, &path, Some(&body)).await?;
    anyhow::ensure!(status == 200, "sending files answered {status}: {answer}");
    Ok((answer, sent_at))
}

/// A REST call to the first edge as the first user, again after a second while it is refused
/// for its rate (429) or not answered (an edge restarting), for up to a minute; with the answer,
/// when (`now_us`) the answered attempt went out, so a time measured from it leaves the waits out.
async fn retrying(
    setup: &Setup,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value, u64)> {
    let url = setup.rest.url(0, path, &[])?;
    let token = &setup.users[0].token;
    for _ in 0..60 {
        let sent_at = now_us();
        let (status, answer) = setup
            .rest
            .call(method.clone(), url.clone(), token, body)
            .await;
        if status != 429 && status != 0 {
            return Ok((status, answer, sent_at));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("{method} {path}: refused for its rate or unanswered for a minute")
}

/// Deletes the run's messages (and so their files); a failure is only noted.
async fn delete(setup: &Setup, messages: &[String]) {
    for id in messages {
        let path = format!("/api/v1/channels/{}/messages/{id}", setup.channel);
        match retrying(setup, reqwest::Method::DELETE, &path, None).await {
            Ok((204, _, _)) => {}
            Ok((status, answer, _)) => {
                eprintln!("loadtest: deleting message {id} answered {status}: {answer}");
            }
            Err(e) => eprintln!("loadtest: deleting message {id}: {e:#}"),
        }
    }
}

/// Each message id's processed MESSAGE_UPDATE, with when it arrived (µs since the epoch).
type Updates = Arc<Mutex<HashMap<String, u64>>>;

/// Photos sent one at a time, each timed to the other member's processed MESSAGE_UPDATE.
async fn processed(setup: &Setup, target: &Target, args: &Args) -> anyhow::Result<Processed> {
    let (width, height) = (args.image_width, args.image_height);
    println!(
        "media: {} photos of {width} x {height}, each from its send to the other member's update",
        args.images
    );
    let photo = tokio::task::spawn_blocking(move || photo::jpeg(width, height, 42)).await?;
    let photo = Bytes::from(photo);
    // The watcher on the other edge, when there are two: the update crosses the fleet.
    let gateway = &target.gateway[1 % target.gateway.len()];
    let source = Source {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
    };
    let (socket, _ready) = client::connect(gateway, source, &setup.users[1].token)
        .await
        .with_context(|| format!("the watcher connecting to {gateway}"))?;
    let updates = Updates::default();
    let watcher = tokio::spawn(watch(socket, updates.clone()));

    let mut upload = Histogram::<u64>::new(3)?;
    let mut answered = Histogram::<u64>::new(3)?;
    let mut to_processed = Histogram::<u64>::new(3)?;
    let mut messages = Vec::new();
    let mut missing = 0;
    let sender = &setup.users[0];
    for i in 0..args.images {
        let started = Instant::now();
        let slot = setup
            .media
            .slot(
                &setup.channel,
                &sender.token,
                &format!("photo-{i}.jpg"),
                photo.len() as u64,
            )
            .await
            .map_err(|e| anyhow::anyhow!("a photo's slot: {e}"))?;
        setup
            .media
            .put(&slot, &photo, photo.len() as u64)
            .await
            .map_err(|e| anyhow::anyhow!("a photo's upload: {e}"))?;
        upload.record((started.elapsed().as_micros() as u64).max(1))?;
        // From the attempt the edge took: one refused for the send rate (5 per 5 s by default)
        // waits a second and goes again, and that second is the harness's, not media's.
        let (message, sent_at) = send(setup, std::slice::from_ref(&slot)).await?;
        answered.record(now_us().saturating_sub(sent_at).max(1))?;
        let id = message["id"].as_str().context("a message id")?.to_owned();
        messages.push(id.clone());
        let waiting = Instant::now();
        loop {
            if let Some(at) = updates.lock().await.get(&id) {
                to_processed.record(at.saturating_sub(sent_at).max(1))?;
                break;
            }
            if waiting.elapsed() > PROCESSED_WAIT {
                missing += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    watcher.abort();
    delete(setup, &messages).await;
    Ok(Processed {
        images: args.images,
        width,
        height,
        jpeg_bytes: photo.len(),
        upload: (&upload).into(),
        send_answered: (&answered).into(),
        send_to_processed: (&to_processed).into(),
        missing,
    })
}

/// Notes each MESSAGE_UPDATE whose first file has a width (processing's update), until the
/// socket closes.
async fn watch(socket: client::Socket, updates: Updates) {
    let mut frames = std::pin::pin!(client::dispatches(socket));
    while let Some((frame, at)) = frames.next().await {
        if frame.t.as_deref() == Some("MESSAGE_UPDATE")
            && frame.d["attachments"][0]["width"].is_u64()
            && let Some(id) = frame.d["id"].as_str()
        {
            updates.lock().await.entry(id.to_owned()).or_insert(at);
        }
    }
}

fn print_phase(phase: &Phase) {
    println!(
        "media: {} x{}: slots p50 {:.1} ms p99 {:.1} ms",
        transfer::show_size(phase.size_bytes),
        phase.concurrency,
        ms(phase.slot.p50_us),
        ms(phase.slot.p99_us)
    );
    for (name, d) in [("upload", &phase.upload), ("download", &phase.download)] {
        println!(
            "  {name:<8} {:>4} files in {:>6.2} s: {:>7.1} MiB/s; each p50 {:>8.1} ms p99 {:>8.1} ms; \
             errors {:?}; media RSS {:.0} -> peak {:.0} MB sampled, VmHWM {:.0} MB{}; CPU {}",
            d.files,
            d.seconds,
            d.mib_per_second,
            ms(d.request.p50_us),
            ms(d.request.p99_us),
            d.errors_by_status,
            mb(d.media_memory.before_bytes),
            mb(d.media_memory.sampled_peak_bytes),
            mb(d.media_memory.hwm_bytes),
            if d.media_memory.peak_was_reset {
                ""
            } else {
                " (since media started)"
            },
            d.media_cpu_seconds
                .map_or("?".to_owned(), |s| format!("{s:.1} s")),
        );
        if let Some(e) = &d.first_error {
            println!("  first error: {e}");
        }
    }
}

fn print_processed(p: &Processed) {
    println!(
        "media: {} photos of {} x {} ({:.1} MB JPEG); {} missing",
        p.images,
        p.width,
        p.height,
        p.jpeg_bytes as f64 / 1e6,
        p.missing
    );
    report::print_percentiles(&[
        ("upload", &p.upload),
        ("send answered", &p.send_answered),
        ("send -> processed", &p.send_to_processed),
    ]);
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
