//! `drain`: how fast the persister writes the chat stream into the store, and how that compares
//! with the fastest the same Cassandra takes the same rows.
//!
//! A backlog of new messages is published straight into the chat stream (as edges do, pipelined,
//! not through sockets: the question is the store's side) while the persisters' consumer is paused;
//! once the stream's other consumers (search, notify, media) have read it and the machine is quiet,
//! the consumer is resumed, and the rate is the persisters' `natter_persister_written_total` over
//! the time from then until all of them are written, and every message is counted in the store
//! afterwards. Then, each after the machine is quiet again, a raw loop writes rows in channels of
//! its own straight into the same `messages` table: per-partition unlogged batches, many at once,
//! and nothing else (no bucket list, no newest id, no stream, no acknowledgements). It runs twice:
//! for as long as the persister took (the ratio: the store's rate over the same stretch of time,
//! the memtable flushes and compactions that come with seconds of writing inside it), and as many
//! rows as the backlog as fast as they go in (the burst: over in a second or two, before the store
//! has flushed or compacted them; the ratio reported until 2026-12-07). The CPU every process used
//! in each phase is read from `/proc`, per 1,000 messages or rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, message::PublishMessage};
use futures::StreamExt;
use proto::api::messages::Message;
use proto::events::Event;
use proto::subjects::{Prefix, Subjects};
use proto::{Snowflake, SnowflakeGenerator};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::batch::{Batch, BatchType};
use serde::Serialize;
use store::cql::Keyspace;

use crate::{report, timeline};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:14222")]
    nats_url: String,
    /// The deployment's NATS prefix (the persister's `--nats-prefix`).
    #[arg(long, default_value = "natter")]
    nats_prefix: String,
    /// The persister's `/metrics`.
    #[arg(long, default_value = "http://127.0.0.1:9083/metrics")]
    persister: String,
    /// The persisters' durable consumer on the chat stream, paused while the backlog is published.
    #[arg(long, default_value = "persister")]
    consumer: String,
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:19042")]
    cql_nodes: Vec<String>,
    /// The persister's keyspace; the raw loop writes its `messages` table too.
    #[arg(long, default_value = "natter", value_parser = Keyspace::parse)]
    cql_keyspace: Keyspace,
    /// Messages in the backlog.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Channels they are spread over.
    #[arg(long, default_value_t = 50)]
    channels: usize,
    /// Batches the raw loop writes at once.
    #[arg(long, default_value_t = 32)]
    raw_in_flight: usize,
    /// Where to write the JSON result.
    #[arg(long, default_value = "loadtest-drain.json")]
    out: PathBuf,
    /// Start each phase at once, without waiting for the machine to be quiet (for a check that
    /// the command works; its figures want the wait).
    #[arg(long)]
    no_settle: bool,
}

#[derive(Debug, Serialize)]
struct DrainResult {
    messages: usize,
    channels: usize,
    published_per_second: f64,
    /// From the first write after its consumer was resumed until the whole backlog was written.
    persisted_per_second: f64,
    /// From the resumption until that first write.
    seconds_to_first_write: f64,
    seconds_to_persist: f64,
    stored: u64,
    missing_in_store: u64,
    /// The raw loop for as long as the persister took (`seconds_to_persist`), after the machine
    /// settled: rows a second, and how many.
    raw_rows_per_second: f64,
    raw_rows: usize,
    persister_to_raw: f64,
    /// The raw loop writing as many rows as the backlog, as fast as the store takes them: done
    /// before the store flushed and compacted them (the ratio reported until 2026-12-07).
    raw_burst_rows_per_second: f64,
    persister_to_raw_burst: f64,
    /// Seconds waited for the machine to settle before the persister's phase, the burst and the
    /// timed raw loop.
    settled_seconds: [f64; 3],
    /// CPU milliseconds per 1,000 messages over the persister's phase (from its first write),
    /// by command name (`java` is Cassandra), the busiest few, and the machine's whole.
    persister_phase_cpu_ms_per_1000: Vec<(String, f64)>,
    /// The same over the timed raw loop and over the burst, per 1,000 rows.
    raw_phase_cpu_ms_per_1000: Vec<(String, f64)>,
    raw_burst_cpu_ms_per_1000: Vec<(String, f64)>,
    services: Vec<report::ServiceDelta>,
}

/// Processes named in a phase's CPU, the busiest first, beside the machine's whole.
const CPU_NAMES_SHOWN: usize = 4;

/// CPU milliseconds per 1,000 of `items` since `mark`: the busiest [`CPU_NAMES_SHOWN`]
/// processes by command name, then the machine's whole (kernel included).
fn cpu_per_1000(mark: &timeline::CpuMark, items: usize) -> Vec<(String, f64)> {
    let used = mark.since();
    let per = |seconds: f64| seconds * 1e3 * 1e3 / items.max(1) as f64;
    let mut by_name: Vec<(String, f64)> = used
        .by_name
        .into_iter()
        .map(|(name, seconds)| (name, per(seconds)))
        .collect();
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name.truncate(CPU_NAMES_SHOWN);
    by_name.push(("machine".to_owned(), per(used.machine)));
    by_name
}

/// `name a.b, name c.d, ...` for the report.
fn cpu_line(cpu: &[(String, f64)]) -> String {
    cpu.iter()
        .map(|(name, ms)| format!("{name} {ms:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The longest the persister's consumer stays paused should this command die before resuming it.
const PAUSE_AT_MOST: Duration = Duration::from_secs(600);

/// Rows per raw batch, as the store's own batches.
const RAW_BATCH: usize = 32;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let prefix = Prefix::parse(&args.nats_prefix).map_err(anyhow::Error::msg)?;
    let subjects = Subjects::new(prefix);
    let ids = SnowflakeGenerator::new(1023).expect("a worker id");
    let channels: Vec<Snowflake> = (0..args.channels.max(1)).map(|_| ids.next_id()).collect();
    let author = ids.next_id();
    let backlog: Vec<Message> = (0..args.messages)
        .map(|i| Message {
            id: ids.next_id(),
            channel_id: channels[i % channels.len()],
            author_id: author,
            content: format!("drain message {i}"),
            nonce: None,
            edited_at: None,
            ..Default::default()
        })
        .collect();

    let store = SessionBuilder::new()
        .known_nodes(&args.cql_nodes)
        .build()
        .await
        .context("cannot reach the CQL store")?;
    let store = Arc::new(store);

    // The persister.
    let nats = async_nats::connect(&args.nats_url)
        .await
        .context("cannot reach NATS")?;
    let js = jetstream::new(nats);
    // Written events, by kind (none yet: no series).
    let written = || async {
        let samples = report::scrape_all(&args.persister).await?;
        Ok::<f64, anyhow::Error>(
            samples
                .iter()
                .filter(|(series, _)| series.starts_with("natter_persister_written_total"))
                .map(|(_, v)| v)
                .sum(),
        )
    };
    let before = written().await?;
    let baseline = report::Baseline::take(std::slice::from_ref(&args.persister)).await;
    // The backlog is published while the persister's consumer is paused, so that the persister
    // is measured on its own rather than beside the publisher on the same cores.
    let stream = js
        .get_stream(subjects.chat_stream_name())
        .await
        .context("no chat stream")?;
    let until = async_nats::datetime::now() + PAUSE_AT_MOST;
    stream
        .pause_consumer(&args.consumer, until)
        .await
        .context("cannot pause the persister's consumer")?;
    let publishing = Instant::now();
    let published = async {
        let mut acks = futures::stream::iter(
            backlog
                .iter()
                .map(|message| publish(&js, &subjects, message.clone())),
        )
        .buffer_unordered(1024);
        while let Some(ack) = acks.next().await {
            ack.context("JetStream did not take a message")?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let published_per_second = args.messages as f64 / publishing.elapsed().as_secs_f64();
    published?;
    // The stream's other consumers (search, notify, media) read the backlog meanwhile; waiting
    // until they are through keeps their work out of the persister's cores and figures.
    if let Err(e) = others_through(&stream, &args.consumer).await {
        stream.resume_consumer(&args.consumer).await.ok();
        return Err(e);
    }
    let settled_before_persister = settle(args.no_settle).await;
    stream
        .resume_consumer(&args.consumer)
        .await
        .context("cannot resume the persister's consumer")?;
    // The clock starts at the first write after the resumption: how long the persisters' pulls
    // take to notice it is the pause's, not theirs, and is reported on its own.
    let resumed = Instant::now();
    let target = before + args.messages as f64;
    let (started, first, persister_cpu) = loop {
        let now = written().await?;
        if now > before {
            break (Instant::now(), now, timeline::CpuMark::take());
        }
        if resumed.elapsed() > Duration::from_secs(600) {
            bail!("the persister wrote nothing in the 10 minutes after its consumer was resumed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let seconds_to_first_write = resumed.elapsed().as_secs_f64();
    loop {
        if written().await? >= target {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the persister had not written the backlog after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds_to_persist = started.elapsed().as_secs_f64();
    if first >= target {
        bail!(
            "the persister wrote the whole backlog before a second reading of its count, so its \
             rate cannot be timed: give more --messages"
        );
    }
    let persisted_per_second = (target - first) / seconds_to_persist;
    let persister_phase_cpu_ms_per_1000 =
        cpu_per_1000(&persister_cpu, (target - first).max(1.0) as usize);
    let services = baseline.deltas().await;

    let mut stored = 0;
    let mut missing_in_store = 0;
    for (index, channel) in channels.iter().enumerate() {
        let expected = backlog.iter().skip(index).step_by(channels.len()).count() as u64;
        let count =
            crate::scenarios::count_stored(&store, &args.cql_keyspace, &channel.to_string())
                .await?;
        stored += count;
        missing_in_store += expected.saturating_sub(count);
    }

    // The raw loop, twice, each after the machine settled: first as many rows as the backlog,
    // in channels of their own, as fast as the store takes them (it is done before the store
    // has flushed and compacted them); then for as long as the persister took, so that both
    // figures are the store's over the same stretch of time, its flushes and compactions in it.
    let settled_before_burst = settle(args.no_settle).await;
    let raw_channels: Vec<Snowflake> = channels.iter().map(|_| ids.next_id()).collect();
    let raw_backlog: Vec<Message> = backlog
        .iter()
        .enumerate()
        .map(|(i, m)| Message {
            id: ids.next_id(),
            channel_id: raw_channels[i % raw_channels.len()],
            ..m.clone()
        })
        .collect();
    let burst_cpu = timeline::CpuMark::take();
    let (burst_rows, burst_seconds) = raw_loop(
        &store,
        &args.cql_keyspace,
        raw_batches(&raw_backlog).into_iter(),
        args.raw_in_flight,
    )
    .await?;
    let raw_burst_rows_per_second = burst_rows as f64 / burst_seconds;
    let raw_burst_cpu_ms_per_1000 = cpu_per_1000(&burst_cpu, burst_rows);
    drop(raw_backlog);
    let settled_before_timed = settle(args.no_settle).await;
    let timed_channels: Vec<Snowflake> = channels.iter().map(|_| ids.next_id()).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds_to_persist);
    let mut turn = 0usize;
    let timed = std::iter::from_fn(|| {
        (Instant::now() < deadline).then(|| {
            let channel = timed_channels[turn % timed_channels.len()];
            turn += 1;
            (0..RAW_BATCH)
                .map(|i| {
                    let id = ids.next_id();
                    (
                        channel.as_i64(),
                        store::schema::bucket_of(id),
                        id.as_i64(),
                        author.as_i64(),
                        format!("drain message {}", turn * RAW_BATCH + i),
                    )
                })
                .collect()
        })
    });
    let timed_cpu = timeline::CpuMark::take();
    let (raw_rows, raw_seconds) =
        raw_loop(&store, &args.cql_keyspace, timed, args.raw_in_flight).await?;
    let raw_rows_per_second = raw_rows as f64 / raw_seconds;
    let raw_phase_cpu_ms_per_1000 = cpu_per_1000(&timed_cpu, raw_rows);
    let result = DrainResult {
        messages: args.messages,
        channels: channels.len(),
        published_per_second,
        persisted_per_second,
        seconds_to_first_write,
        seconds_to_persist,
        stored,
        missing_in_store,
        raw_rows_per_second,
        raw_rows,
        persister_to_raw: persisted_per_second / raw_rows_per_second,
        raw_burst_rows_per_second,
        persister_to_raw_burst: persisted_per_second / raw_burst_rows_per_second,
        settled_seconds: [
            settled_before_persister,
            settled_before_burst,
            settled_before_timed,
        ],
        persister_phase_cpu_ms_per_1000,
        raw_phase_cpu_ms_per_1000,
        raw_burst_cpu_ms_per_1000,
        services,
    };
    println!(
        "drain: {} messages over {} channels published at {:.0}/s (the persister paused); \
         persisted at {:.0}/s ({:.1} s from its first write, {:.1} s after the resumption); \
         {} stored, {} missing",
        result.messages,
        result.channels,
        result.published_per_second,
        result.persisted_per_second,
        result.seconds_to_persist,
        result.seconds_to_first_write,
        result.stored,
        result.missing_in_store
    );
    println!(
        "raw batched inserts into the same store for as long ({:.1} s): {} rows, {:.0} rows/s; \
         persister / raw = {:.2}",
        result.seconds_to_persist,
        result.raw_rows,
        result.raw_rows_per_second,
        result.persister_to_raw
    );
    println!(
        "  as many rows as the backlog, as fast as the store takes them: {:.0} rows/s; \
         persister / that = {:.2}",
        result.raw_burst_rows_per_second, result.persister_to_raw_burst
    );
    println!(
        "CPU ms per 1,000: persister's phase {}; raw loop's {}; the burst's {}",
        cpu_line(&result.persister_phase_cpu_ms_per_1000),
        cpu_line(&result.raw_phase_cpu_ms_per_1000),
        cpu_line(&result.raw_burst_cpu_ms_per_1000)
    );
    println!(
        "waited for the machine to settle: {:.0} s, {:.0} s and {:.0} s",
        result.settled_seconds[0], result.settled_seconds[1], result.settled_seconds[2]
    );
    report::print_deltas(&result.services);
    report::write_json(&args.out, &result)?;
    println!("result written to {}", args.out.display());
    if result.missing_in_store > 0 {
        bail!("loss: every published message must be in the store");
    }
    Ok(())
}

/// Waits until every consumer of the chat stream but `ours` has read and acknowledged all of it.
async fn others_through(stream: &jetstream::stream::Stream, ours: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let mut busy = Vec::new();
        let mut names = stream.consumer_names();
        while let Some(name) = names.next().await {
            let name = name.context("cannot list the chat stream's consumers")?;
            if name == ours {
                continue;
            }
            let info = stream
                .consumer_info(&name)
                .await
                .context("cannot read a consumer's state")?;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                busy.push(format!(
                    "{name} ({} left)",
                    info.num_pending + info.num_ack_pending as u64
                ));
            }
        }
        if busy.is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the chat stream's other consumers were not through after 30 minutes: {busy:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Puts `message` into the chat stream as an edge would (its MESSAGE_CREATE on the channel's
/// intake subject), answering once JetStream has stored it.
pub async fn publish(
    js: &jetstream::Context,
    subjects: &Subjects,
    message: Message,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    let channel = message.channel_id;
    let payload = Event::MessageCreate(message).to_json();
    let publish = PublishMessage::build().payload(payload.into());
    js.send_publish(subjects.chat_intake(channel), publish)
        .await?
        .await
}

/// One raw row: channel, bucket, id, author, content.
type RawRow = (i64, i32, i64, i64, String);

/// Writes `batches` (each one partition's rows) into the messages table (nothing else: no bucket
/// list, no newest id, no stream), as unlogged batches, `in_flight` at once, taking the next
/// batch only when one is done; returns the rows written and the seconds it took.
async fn raw_loop(
    store: &Session,
    keyspace: &Keyspace,
    batches: impl Iterator<Item = Vec<RawRow>>,
    in_flight: usize,
) -> anyhow::Result<(usize, f64)> {
    let ks = keyspace.as_str();
    let insert = store
        .prepare(format!(
            "INSERT INTO {ks}.messages (channel_id, bucket, message_id, author_id, content) \
             VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        ))
        .await?;
    let started = Instant::now();
    let at = i64::try_from(proto::clock::since_epoch().as_micros()).unwrap_or(i64::MAX);
    let mut writes = futures::stream::iter(batches.map(|rows| {
        let insert = insert.clone();
        async move {
            let mut batch = Batch::new(BatchType::Unlogged);
            let values: Vec<_> = rows
                .iter()
                .map(|(channel, bucket, id, author, content)| {
                    batch.append_statement(insert.clone());
                    (*channel, *bucket, *id, *author, content.as_str(), at)
                })
                .collect();
            store.batch(&batch, values).await.map(|_| rows.len())
        }
    }))
    .buffer_unordered(in_flight.max(1));
    let mut rows = 0;
    while let Some(written) = writes.next().await {
        rows += written.context("a raw batch failed")?;
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// `messages` as raw rows, each channel's cut into batches of [`RAW_BATCH`].
fn raw_batches(messages: &[Message]) -> Vec<Vec<RawRow>> {
    let mut partitions: std::collections::HashMap<i64, Vec<&Message>> =
        std::collections::HashMap::new();
    for message in messages {
        partitions
            .entry(message.channel_id.as_i64())
            .or_default()
            .push(message);
    }
    partitions
        .values()
        .flat_map(|rows| rows.chunks(RAW_BATCH))
        .map(|rows| rows.iter().map(|m| raw_row(m)).collect())
        .collect()
}

fn raw_row(message: &Message) -> RawRow {
    (
        message.channel_id.as_i64(),
        store::schema::bucket_of(message.id),
        message.id.as_i64(),
        message.author_id.as_i64(),
        message.content.clone(),
    )
}

/// How busy the machine may be, in per cent of all its cores over [`QUIET_WINDOW`], for the
/// store to count as through with what the last phase left it (flushes, compactions).
const QUIET_BUSY: f64 = 15.0;
const QUIET_WINDOW: Duration = Duration::from_secs(2);

/// Waits (up to 3 minutes) until the machine is quiet: what one phase left the store to do
/// (flushing memtables, compacting) lands in that phase's account, not in the next one's.
/// Returns the seconds waited. `skip`: none.
async fn settle(skip: bool) -> f64 {
    if skip {
        return 0.0;
    }
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    loop {
        let mark = timeline::CpuMark::take();
        tokio::time::sleep(QUIET_WINDOW).await;
        let busy = 100.0 * mark.since().machine / QUIET_WINDOW.as_secs_f64() / cores;
        if busy < QUIET_BUSY || started.elapsed() > Duration::from_secs(180) {
            return started.elapsed().as_secs_f64() - QUIET_WINDOW.as_secs_f64();
        }
    }
}
