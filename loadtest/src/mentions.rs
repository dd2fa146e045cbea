//! `ready-mentions`: what mention badges cost READY. A server of `--channels` text channels;
//! its owner mentions two members in every channel (`<@a> <@b>`, `--mentions` messages per
//! channel, over REST); one of them ("unread") leaves them all unread, the other ("read") marks
//! every channel read (`POST …/messages/{id}/ack`). Once the unread member's READY shows every
//! mention, each identifies `--repeats` times in turn (edges alternating, a fresh socket each
//! time), and the command reports the time from IDENTIFY to READY (p50/p99) and READY's size for
//! each, and how many of those READYs came without the counts (the edge leaves them out rather
//! than be late when the store is slow: a fast READY without badges is not a fast badge).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::client;
use crate::population::Population;
use crate::report::{self, Baseline, Percentiles};
use crate::run::Target;
use crate::server::{Rest, Server, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Text channels of the server, #general included (auth's NATTER_GUILD_CHANNEL_LIMIT).
    #[arg(long, default_value_t = 200)]
    pub channels: usize,
    /// Messages mentioning both members in each channel (the owner sends them: the edges'
    /// NATTER_SEND_RATE must allow channels x mentions quickly).
    #[arg(long, default_value_t = 1)]
    pub mentions: usize,
    /// IDENTIFYs timed per member.
    #[arg(long, default_value_t = 50)]
    pub repeats: usize,
    /// Sends in flight at once while filling the channels.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// How long the unread member's READY may take to show every mention after the sends.
    #[arg(long, default_value = "120s", value_parser = kit::config::duration)]
    pub settle: Duration,
}

/// One member's READYs.
#[derive(Debug, Serialize)]
struct Reader {
    /// READY's bytes (the last one; they differ only in ids).
    ready_bytes: usize,
    identify_to_ready: Percentiles,
    /// Mentions READY counted over the server's channels (the last READY with counts; none
    /// when every READY came without them).
    mention_count: Option<u64>,
    /// READYs whose channels came without unread and mention counts.
    without_counts: usize,
    /// READYs with counts that were not the expected ones: must be 0.
    wrong_counts: usize,
}

#[derive(Debug, Serialize)]
struct MentionsResult {
    channels: usize,
    mentions_per_channel: usize,
    repeats: usize,
    /// Mentions the unread member's READY should count (each channel's counts stop at 100).
    expected_mentions: u64,
    seconds_until_counted: f64,
    unread: Reader,
    read: Reader,
    services: Vec<report::ServiceDelta>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.channels == 0 || args.mentions == 0 || args.repeats == 0 {
        bail!("--channels, --mentions and --repeats must be at least 1");
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let rest = Rest::new(&target.gateway)?;
    let tag = format!("m{}", now_us() % 1_000_000_000);
    let users = people.sign_up(&tag, 3).await?;
    println!("ready-mentions: a server of {} channels", args.channels);
    let server = Server::build(&people, &users, "loadtest mentions", args.channels, 2).await?;
    let (owner, unread, read) = (&users[0], &users[1], &users[2]);
    let content = format!("<@{}> <@{}> look", server.user_ids[1], server.user_ids[2]);

    // Every channel's mentions; each channel's last message is what "read" marks read.
    let sends = server
        .channels
        .iter()
        .enumerate()
        .flat_map(|(c, channel)| (0..args.mentions).map(move |m| (c, m, channel)));
    let last: Vec<(usize, usize, String, String)> = futures::stream::iter(sends)
        .map(|(c, m, channel)| {
            let (rest, content) = (rest.clone(), content.clone());
            async move {
                let id = rest.send(c, channel, &owner.token, &content).await?;
                Ok::<_, anyhow::Error>((c, m, channel.clone(), id))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect()
        .await?;
    // The sends run concurrently, so a channel's last is its highest id, not its last asked.
    let mut newest: std::collections::BTreeMap<String, (u64, String)> = Default::default();
    for (_, _, channel, id) in last {
        let n: u64 = id.parse().context("a message id")?;
        let entry = newest.entry(channel).or_insert((0, String::new()));
        if n > entry.0 {
            *entry = (n, id);
        }
    }
    let marked: Vec<(String, String)> = newest
        .into_iter()
        .map(|(channel, (_, id))| (channel, id))
        .collect();
    futures::stream::iter(marked.iter().enumerate())
        .map(|(i, (channel, id))| {
            let rest = rest.clone();
            async move {
                let url = rest.url(
                    i,
                    &format!("/api/v1/channels/{channel}/messages/{id}/ack"),
                    &[],
                )?;
                let (status, body) = rest
                    .call(reqwest::Method::POST, url, &read.token, None)
                    .await;
                anyhow::ensure!(
                    status == 204,
                    "marking a channel read answered {status}: {body}"
                );
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;

    // The store counts mentions once the persister has written them, and the read member's
    // marks once they are stored too: wait until both READYs say so.
    let expected_mentions = (args.channels * args.mentions.min(100)) as u64;
    let sent = Instant::now();
    loop {
        let (text, _) = client::ready_once(target, 0, &unread.token).await?;
        let (counted, _) = mentions_in(&text, &server)?;
        let (text, _) = client::ready_once(target, 1, &read.token).await?;
        let (left, _) = mentions_in(&text, &server)?;
        if counted == expected_mentions && left == 0 {
            break;
        }
        if sent.elapsed() > args.settle {
            bail!(
                "after {:?} the unread member's READY counts {counted} mentions of {expected_mentions}, the read member's {left} of 0",
                args.settle
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let seconds_until_counted = sent.elapsed().as_secs_f64();

    println!(
        "ready-mentions: {} IDENTIFYs each for the unread and the read member",
        args.repeats
    );
    let baseline = Baseline::take(&target.metrics).await;
    let mut times = [Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?];
    let expected = [expected_mentions, 0];
    let mut bytes = [0usize, 0];
    let mut counts = [None, None];
    let mut without_counts = [0usize, 0];
    let mut wrong_counts = [0usize, 0];
    for r in 0..args.repeats {
        for (k, user) in [unread, read].into_iter().enumerate() {
            let (text, took) = client::ready_once(target, r + k, &user.token).await?;
            times[k].record((took.as_micros() as u64).max(1))?;
            bytes[k] = text.len();
            // The edge leaves every channel's counts out when the store is slow, never some.
            let (counted, summarised) = mentions_in(&text, &server)?;
            if summarised < server.channels.len() {
                without_counts[k] += 1;
                continue;
            }
            counts[k] = Some(counted);
            wrong_counts[k] += usize::from(counted != expected[k]);
        }
    }
    let services = baseline.deltas().await;
    let reader = |k: usize| Reader {
        ready_bytes: bytes[k],
        identify_to_ready: (&times[k]).into(),
        mention_count: counts[k],
        without_counts: without_counts[k],
        wrong_counts: wrong_counts[k],
    };
    let result = MentionsResult {
        channels: args.channels,
        mentions_per_channel: args.mentions,
        repeats: args.repeats,
        expected_mentions,
        seconds_until_counted,
        unread: reader(0),
        read: reader(1),
        services,
    };
    println!(
        "ready-mentions: {} channels, {} mentions each ({} counted {:.1} s after the sends)",
        result.channels,
        result.mentions_per_channel,
        result.expected_mentions,
        result.seconds_until_counted
    );
    for (name, r) in [("unread", &result.unread), ("all read", &result.read)] {
        println!(
            "{name:<9} READY {} bytes, {:?} mentions; {} of {} READYs without counts, {} wrong",
            r.ready_bytes, r.mention_count, r.without_counts, result.repeats, r.wrong_counts
        );
    }
    report::print_percentiles(&[
        ("IDENTIFY->READY unread", &result.unread.identify_to_ready),
        ("IDENTIFY->READY read", &result.read.identify_to_ready),
    ]);
    report::print_deltas(&result.services);
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-ready-mentions.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    if result.unread.wrong_counts + result.read.wrong_counts > 0 {
        bail!(
            "READY's mention counts were wrong {} times for the unread member (expected {expected_mentions}) and {} times for the read one (expected 0)",
            result.unread.wrong_counts,
            result.read.wrong_counts
        );
    }
    Ok(())
}

/// The mentions READY counts over the server's text channels, and how many of them carry counts
/// at all.
fn mentions_in(ready: &str, server: &Server) -> anyhow::Result<(u64, usize)> {
    let frame: Value = serde_json::from_str(ready).context("READY is JSON")?;
    let channels = frame["d"]["guilds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["id"] == server.id.as_str())
        .flat_map(|g| g["channels"].as_array().into_iter().flatten())
        .filter(|c| {
            c["id"]
                .as_str()
                .is_some_and(|id| server.channels.iter().any(|ours| ours == id))
        });
    let (mut mentions, mut summarised) = (0, 0);
    for channel in channels {
        if let Some(count) = channel["mention_count"].as_u64() {
            mentions += count;
            summarised += 1;
        }
    }
    Ok((mentions, summarised))
}
