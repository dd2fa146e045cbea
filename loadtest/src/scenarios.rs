//! The scenarios' command lines, each a [`Plan`] for the engine plus what only it measures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde::Serialize;
use store::cql::Keyspace;

use crate::plot;
use crate::report::{self, Samples};
use crate::run::{self, Plan, RunResult, Target};

fn out(target: &Target, default: &str) -> PathBuf {
    target.out.clone().unwrap_or_else(|| PathBuf::from(default))
}

/// Writes the result, prints where, and fails the command if anything was lost.
fn finish<T: Serialize>(path: &Path, result: &T, lost: bool) -> anyhow::Result<()> {
    report::write_json(path, result)?;
    println!("result written to {}", path.display());
    if lost {
        bail!("loss: every acknowledged message must reach every device once and in order");
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Users the members are drawn from (0: a user per member slot).
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Offered load in messages per second; several (comma separated) run one after another and
    /// are plotted.
    #[arg(long, value_delimiter = ',', default_value = "200")]
    pub rate: Vec<u64>,
    #[arg(long, default_value = "20s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// Where the plot of latency against offered load goes (with more than one rate).
    #[arg(long, default_value = "loadtest-chat.svg")]
    pub plot: PathBuf,
}

pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &rate in &args.rate {
        let plan = Plan {
            users: args.users,
            devices: args.devices,
            ..Plan::steady("chat", args.channels, args.members, rate, args.duration)
        };
        let result = run::run(&args.target.for_rate(rate, &args.rate), &plan).await?;
        result.print();
        results.push(result);
    }
    if results.len() > 1 {
        plot::latency_against_load(&args.plot, &results, plot::Load::Offered)?;
        println!("plot written to {}", args.plot.display());
    }
    let lost = results.iter().any(RunResult::lost_anything);
    let path = out(&args.target, "loadtest-chat.json");
    if let [one] = results.as_slice() {
        finish(&path, one, lost)
    } else {
        finish(&path, &results, lost)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: Target,
    /// Members of the one channel (auth's member limit must allow it: NATTER_MEMBER_LIMIT).
    #[arg(long, default_value_t = 1_000)]
    pub members: usize,
    /// Devices per member.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Messages per second; several (comma separated) run one after another and are plotted
    /// against deliveries per second.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub rate: Vec<u64>,
    #[arg(long, default_value = "20s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// Where the plot of latency against deliveries per second goes (with more than one rate).
    #[arg(long, default_value = "loadtest-fanout.svg")]
    pub plot: PathBuf,
}

pub async fn fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &rate in &args.rate {
        let plan = Plan {
            devices: args.devices,
            ..Plan::steady("fanout", 1, args.members, rate, args.duration)
        };
        let result = run::run(&args.target.for_rate(rate, &args.rate), &plan).await?;
        result.print();
        results.push(result);
    }
    if results.len() > 1 {
        plot::latency_against_load(&args.plot, &results, plot::Load::Delivered)?;
        println!("plot written to {}", args.plot.display());
    }
    let lost = results.iter().any(RunResult::lost_anything);
    let path = out(&args.target, "loadtest-fanout.json");
    if let [one] = results.as_slice() {
        finish(&path, one, lost)
    } else {
        finish(&path, &results, lost)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 20)]
    pub channels: usize,
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    /// Chat messages per second while history is read.
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// History page reads (50 messages) per second.
    #[arg(long, default_value_t = 100)]
    pub reads: u64,
    #[arg(long, default_value = "20s", value_parser = kit::config::duration)]
    pub duration: Duration,
}

pub async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let plan = Plan {
        history_rate: args.reads,
        ..Plan::steady(
            "history",
            args.channels,
            args.members,
            args.rate,
            args.duration,
        )
    };
    let result = run::run(&args.target, &plan).await?;
    result.print();
    let lost = result.lost_anything() || result.history.as_ref().is_some_and(|h| h.errors > 0);
    finish(&out(&args.target, "loadtest-history.json"), &result, lost)
}

#[derive(Debug, Clone, clap::Args)]
pub struct StormArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(long, default_value_t = 100)]
    pub channels: usize,
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Users the members are drawn from (0: a user per member slot).
    #[arg(long, default_value_t = 0)]
    pub users: usize,
    /// Devices per member: devices x members x channels / (channels per user) sockets.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Messages per second throughout, so the storm has something to miss.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    #[arg(long, default_value = "30s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// When every connection drops at once.
    #[arg(long, default_value = "10s", value_parser = kit::config::duration)]
    pub storm_after: Duration,
}

pub async fn storm(args: StormArgs) -> anyhow::Result<()> {
    let plan = Plan {
        users: args.users,
        devices: args.devices,
        storm_after: Some(args.storm_after),
        ..Plan::steady(
            "storm",
            args.channels,
            args.members,
            args.rate,
            args.duration,
        )
    };
    let result = run::run(&args.target, &plan).await?;
    result.print();
    let lost = result.lost_anything();
    finish(&out(&args.target, "loadtest-storm.json"), &result, lost)
}

#[derive(Debug, Clone, clap::Args)]
pub struct PersistArgs {
    #[command(flatten)]
    pub target: Target,
    /// Channels (each with one sending device).
    #[arg(long, default_value_t = 50)]
    pub channels: usize,
    #[arg(long, default_value_t = 2)]
    pub members: usize,
    #[arg(long, default_value_t = 5_000)]
    pub rate: u64,
    #[arg(long, default_value = "30s", value_parser = kit::config::duration)]
    pub duration: Duration,
    /// The persister's `/metrics` (lag is sampled there every second).
    #[arg(long, default_value = "http://127.0.0.1:9083/metrics")]
    pub persister: String,
    /// The CQL store, to count what arrived.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:19042")]
    pub cql_nodes: Vec<String>,
    #[arg(long, default_value = "natter", value_parser = Keyspace::parse)]
    pub cql_keyspace: Keyspace,
}

#[derive(Debug, Serialize)]
struct LagSample {
    second: f64,
    messages: f64,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct PersistResult {
    #[serde(flatten)]
    run: RunResult,
    /// Stream-to-store time, from the persister's histogram (bucket upper bounds).
    delay_p50_seconds: Option<f64>,
    delay_p99_seconds: Option<f64>,
    lag_max_messages: f64,
    lag_max_seconds: f64,
    seconds_to_drain: f64,
    lag: Vec<LagSample>,
    stored: u64,
    missing_in_store: u64,
}

pub async fn persist(args: PersistArgs) -> anyhow::Result<()> {
    let plan = Plan::steady(
        "persist",
        args.channels,
        args.members,
        args.rate,
        args.duration,
    );
    let before: Samples = report::scrape_all(&args.persister).await?;
    let (stop_sampling, stop) = tokio::sync::watch::channel(false);
    let sampling = tokio::spawn(sample_lag(args.persister.clone(), stop));
    let result = run::run(&args.target, &plan).await?;
    // Wait for the persister to write everything.
    let drained_at = std::time::Instant::now();
    loop {
        let lag = report::scrape(&args.persister, "natter_persister_lag_messages").await?;
        if lag == 0.0 {
            break;
        }
        if drained_at.elapsed() > Duration::from_secs(600) {
            bail!("the persister still has {lag} events to write after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds_to_drain = drained_at.elapsed().as_secs_f64();
    // The gauge is read once a second: give it one more tick to be sure.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = stop_sampling.send(true);
    let lag = sampling.await.unwrap_or_default();
    let after = report::scrape_all(&args.persister).await?;

    let store = SessionBuilder::new()
        .known_nodes(&args.cql_nodes)
        .build()
        .await
        .context("cannot reach the CQL store")?;
    let mut stored = 0;
    let mut missing_in_store = 0;
    for (channel, acked) in result.channel_ids.iter().zip(&result.acked_per_channel) {
        let count = count_stored(&store, &args.cql_keyspace, channel).await?;
        stored += count;
        missing_in_store += acked.saturating_sub(count);
    }
    let quantile =
        |q| report::histogram_quantile(&before, &after, "natter_persister_delay_seconds", q);
    let persist = PersistResult {
        delay_p50_seconds: quantile(0.5),
        delay_p99_seconds: quantile(0.99),
        lag_max_messages: lag
            .iter()
            .map(|s: &LagSample| s.messages)
            .fold(0.0, f64::max),
        lag_max_seconds: lag.iter().map(|s| s.seconds).fold(0.0, f64::max),
        seconds_to_drain,
        lag,
        stored,
        missing_in_store,
        run: result,
    };
    persist.run.print();
    println!(
        "store: {} of {} acknowledged messages stored ({} missing); drained {:.1} s after the last send",
        persist.stored,
        persist.run.acknowledged,
        persist.missing_in_store,
        persist.seconds_to_drain
    );
    println!(
        "persister: stream-to-store p50 <= {:?} s, p99 <= {:?} s; lag at most {} events, {:.2} s",
        persist.delay_p50_seconds,
        persist.delay_p99_seconds,
        persist.lag_max_messages,
        persist.lag_max_seconds
    );
    let lost = persist.run.lost_anything() || persist.missing_in_store > 0;
    finish(&out(&args.target, "loadtest-persist.json"), &persist, lost)
}

/// The persister's lag every second until `stop`.
async fn sample_lag(url: String, mut stop: tokio::sync::watch::Receiver<bool>) -> Vec<LagSample> {
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return samples,
        }
        let Ok(all) = report::scrape_all(&url).await else {
            continue;
        };
        let get = |name: &str| {
            all.iter()
                .find(|(s, _)| s.split('{').next() == Some(name))
                .map_or(0.0, |(_, v)| *v)
        };
        samples.push(LagSample {
            second: started.elapsed().as_secs_f64(),
            messages: get("natter_persister_lag_messages"),
            seconds: get("natter_persister_lag_seconds"),
        });
        if samples.len() > 3_600 {
            return samples;
        }
    }
}

pub(crate) async fn count_stored(
    store: &Session,
    keyspace: &Keyspace,
    channel: &str,
) -> anyhow::Result<u64> {
    let ks = keyspace.as_str();
    let channel: i64 = channel.parse().context("a channel id")?;
    let buckets: Vec<i32> = store
        .query_unpaged(
            format!("SELECT bucket FROM {ks}.channel_buckets WHERE channel_id = ?"),
            (channel,),
        )
        .await?
        .into_rows_result()?
        .rows::<(i32,)>()?
        .map(|row| row.map(|(b,)| b))
        .collect::<Result<_, _>>()?;
    let mut count = 0;
    for bucket in buckets {
        let (n,): (i64,) = store
            .query_unpaged(
                format!("SELECT COUNT(*) FROM {ks}.messages WHERE channel_id = ? AND bucket = ?"),
                (channel, bucket),
            )
            .await?
            .into_rows_result()?
            .single_row()?;
        count += n as u64;
    }
    Ok(count)
}
