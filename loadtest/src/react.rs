//! `react`: a hot message. One server channel of `--members` members (each signs up and joins by
//! an invite); its owner sends one message; then every member reacts to it once with the same
//! emoji over REST (`PUT …/reactions/{emoji}/@me`), spread over the edges, `--concurrency` at a
//! time, while `--watchers` members' gateway sessions (alternating edges) count the
//! MESSAGE_REACTION_ADDs they receive.
//!
//! It reports reactions per second accepted (204), errors by status, each watcher's events, the
//! time from a reaction's request to each watcher's event (p50/p99), and the count read back
//! from history once the store has it. It fails when the count is not exactly the number of
//! reactions accepted, when any was refused, or when a watcher missed or doubled one.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::client::{self, Source};
use crate::population::Population;
use crate::report::{self, Baseline, Percentiles};
use crate::run::Target;
use crate::server::{Rest, Server, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Members of the server, the owner included; each reacts once (each signs up: auth's
    /// NATTER_SIGN_UP_RATE).
    #[arg(long, default_value_t = 10_000)]
    pub members: usize,
    /// Members whose gateway sessions count the reactions (the first members, edges alternating).
    #[arg(long, default_value_t = 10)]
    pub watchers: usize,
    /// Reaction requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The emoji everyone reacts with.
    #[arg(long, default_value = "👍")]
    pub emoji: String,
    /// How long to wait for the last events and for history's count to be exact.
    #[arg(long, default_value = "120s", value_parser = kit::config::duration)]
    pub settle: Duration,
}

#[derive(Debug, Serialize)]
struct ReactResult {
    members: usize,
    watchers: usize,
    concurrency: usize,
    seconds: f64,
    accepted: u64,
    reactions_per_second: f64,
    /// Refused or failed requests by HTTP status (0: no answer).
    errors_by_status: BTreeMap<u16, u64>,
    /// The reaction's count in history once it settled, and how long after the last request.
    final_count: u64,
    seconds_to_exact_count: Option<f64>,
    /// MESSAGE_REACTION_ADDs each watcher received (distinct reactors), and doubles.
    events_per_watcher: Vec<u64>,
    duplicated_events: u64,
    request_to_event: Percentiles,
    services: Vec<report::ServiceDelta>,
}

/// What one watcher saw: each reactor's user id and when its event arrived (µs since the epoch).
type Seen = Arc<Mutex<Vec<(String, u64)>>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.members < 2 || args.watchers == 0 || args.watchers > args.members {
        bail!("--members must be at least 2 and --watchers between 1 and --members");
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let rest = Rest::new(&target.gateway)?;
    let tag = format!("r{}", now_us() % 1_000_000_000);
    println!("react: signing up {} members", args.members);
    let users = people.sign_up(&tag, args.members).await?;
    println!("react: the owner makes a server; the others join by its invite");
    let server = Server::build(&people, &users, "loadtest react", 1, 16).await?;
    let channel = server.channels[0].clone();
    let message = rest
        .send(0, &channel, &users[0].token, "react to this")
        .await?;

    println!("react: {} watchers connect", args.watchers);
    let mut watchers = Vec::new();
    for (i, user) in users.iter().take(args.watchers).enumerate() {
        let gateway = target.gateway[i % target.gateway.len()].clone();
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            2 + (i % target.sources.max(1) as usize) as u8,
        ));
        let (socket, _ready) = client::connect(&gateway, Source { ip, port: 0 }, &user.token)
            .await
            .with_context(|| format!("a watcher connecting to {gateway}"))?;
        let seen = Seen::default();
        tokio::spawn(watch(socket, seen.clone(), message.clone()));
        watchers.push(seen);
    }

    let baseline = Baseline::take(&target.metrics).await;
    let path = format!("/api/v1/channels/{channel}/messages/{message}/reactions/");
    let started = Instant::now();
    // When each member's request went out, by member index.
    let outcomes: Vec<(usize, u64, u16)> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, user)| {
            let rest = rest.clone();
            let url = rest
                .url(i, &path, &[])
                .and_then(|u| Ok(u.join(&format!("{}/@me", args.emoji))?));
            async move {
                let url = url?;
                let at = now_us();
                let (status, _) = rest
                    .call(reqwest::Method::PUT, url, &user.token, None)
                    .await;
                Ok::<_, anyhow::Error>((i, at, status))
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let mut errors_by_status = BTreeMap::new();
    let mut sent_at = HashMap::new();
    for &(i, at, status) in &outcomes {
        if status == 204 {
            sent_at.insert(server.user_ids[i].clone(), at);
        } else {
            *errors_by_status.entry(status).or_insert(0u64) += 1;
        }
    }
    let accepted = sent_at.len() as u64;
    println!(
        "react: {accepted} of {} reactions accepted in {seconds:.1} s",
        args.members
    );

    // Every watcher's events, then history's count.
    let settled = Instant::now();
    loop {
        let mut all = true;
        for seen in &watchers {
            all &= seen.lock().await.len() as u64 >= accepted;
        }
        if all || settled.elapsed() > args.settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = rest.url(
        0,
        &format!("/api/v1/channels/{channel}/messages"),
        &[("around", &message), ("limit", "1")],
    )?;
    let mut final_count = 0;
    let mut seconds_to_exact_count = None;
    loop {
        let (status, page) = rest
            .call(reqwest::Method::GET, history.clone(), &users[0].token, None)
            .await;
        if status == 200 {
            final_count = count_of(&page, &message, &args.emoji);
            if final_count == accepted {
                seconds_to_exact_count = Some(settled.elapsed().as_secs_f64());
                break;
            }
        }
        if settled.elapsed() > args.settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let services = baseline.deltas().await;

    let mut latency = Histogram::<u64>::new(3)?;
    let mut events_per_watcher = Vec::new();
    let mut duplicated_events = 0;
    for seen in &watchers {
        let seen = seen.lock().await;
        let mut distinct = std::collections::HashSet::new();
        for (user, at) in seen.iter() {
            if !distinct.insert(user.as_str()) {
                duplicated_events += 1;
                continue;
            }
            if let Some(sent) = sent_at.get(user) {
                latency.record(at.saturating_sub(*sent).max(1))?;
            }
        }
        events_per_watcher.push(distinct.len() as u64);
    }
    let result = ReactResult {
        members: args.members,
        watchers: args.watchers,
        concurrency: args.concurrency,
        seconds,
        accepted,
        reactions_per_second: accepted as f64 / seconds,
        errors_by_status,
        final_count,
        seconds_to_exact_count,
        events_per_watcher,
        duplicated_events,
        request_to_event: (&latency).into(),
        services,
    };
    println!(
        "react: {} members, {} accepted at {:.0}/s ({} in flight); errors by status {:?}",
        result.members,
        result.accepted,
        result.reactions_per_second,
        result.concurrency,
        result.errors_by_status
    );
    println!(
        "history's count {} ({}); events per watcher {:?}, {} doubled",
        result.final_count,
        result
            .seconds_to_exact_count
            .map_or("never exact".to_owned(), |s| format!(
                "exact {s:.1} s after the last request"
            )),
        result.events_per_watcher,
        result.duplicated_events
    );
    report::print_percentiles(&[("request -> event", &result.request_to_event)]);
    report::print_deltas(&result.services);
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-react.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    if result.final_count != result.accepted
        || result.accepted != result.members as u64
        || result
            .events_per_watcher
            .iter()
            .any(|&n| n != result.accepted)
        || result.duplicated_events > 0
    {
        bail!(
            "loss: every member's reaction must be accepted, counted once in history and reach every watcher once"
        );
    }
    Ok(())
}

/// The count of `emoji` on `message` in a history page.
fn count_of(page: &Value, message: &str, emoji: &str) -> u64 {
    page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["id"] == message)
        .flat_map(|m| m["reactions"].as_array().into_iter().flatten())
        .filter(|r| r["emoji"]["name"].as_str() == Some(emoji))
        .filter_map(|r| r["count"].as_u64())
        .sum()
}

/// Reads one watcher's frames until its socket closes, noting each MESSAGE_REACTION_ADD on
/// `message` (who, when).
async fn watch(socket: client::Socket, seen: Seen, message: String) {
    let mut frames = std::pin::pin!(client::dispatches(socket));
    while let Some((frame, at)) = frames.next().await {
        if frame.t.as_deref() == Some("MESSAGE_REACTION_ADD")
            && frame.d["message_id"] == *message
            && let Some(user) = frame.d["user_id"].as_str()
        {
            seen.lock().await.push((user.to_owned(), at));
        }
    }
}
