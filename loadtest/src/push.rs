//! `push`: how many Web Pushes per second notify sends. A server of `--members` members, each
//! away (no session: presence says offline) with one browser subscribed to a local RFC 8030 push
//! service that this command runs (`/push/{member}`, each with its own RFC 8291 keys). For each of
//! `--rounds` channels, the owner sends one `@everyone` there: notify owes every member but the
//! owner one push (the first message of a channel for a person is pushed at once), encrypted and
//! VAPID-signed, to that person's endpoint.
//!
//! Per round it reports the pushes received, the time from the send's acknowledgement to the
//! first and the last, and pushes per second over that span; every `--decrypt-every`th push is
//! decrypted with its browser's keys and must name the round's channel. notify's own
//! `natter_notify_pushes_total` by outcome is read before and after. It fails when a round's
//! pushes do not all arrive within `--settle`, when one arrives twice, or when one does not
//! decrypt. notify's queue (`--push-queue`, 10,000 by default) must hold a round's pushes, and
//! auth tells at most 10,000 people of one message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::population::Population;
use crate::report::{self, Baseline};
use crate::run::Target;
use crate::server::{Rest, Server, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Members of the server, the owner included; all but the owner are pushed each round
    /// (each signs up: auth's NATTER_SIGN_UP_RATE).
    #[arg(long, default_value_t = 5_000)]
    pub members: usize,
    /// Channels, one `@everyone` in each, one after another once the last round's pushes came.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Every this many pushes received, one is decrypted and checked (1: all of them).
    #[arg(long, default_value_t = 50)]
    pub decrypt_every: usize,
    /// Sign-ups, joins and subscriptions in flight at once while setting up.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// notify's `/metrics` (its push counters are read there).
    #[arg(long, default_value = "http://127.0.0.1:9085/metrics")]
    pub notify: String,
    /// How long a round's pushes may take to arrive.
    #[arg(long, default_value = "300s", value_parser = kit::config::duration)]
    pub settle: Duration,
}

/// One browser of the local push service: its RFC 8291 keys.
struct Browser {
    keys: ece::crypto::EcKeyComponents,
    auth: [u8; 16],
}

/// What the local push service has received: when each push to each member came (µs since the
/// epoch), and checks of the decrypted ones.
#[derive(Default)]
struct Received {
    arrivals: Vec<(usize, u64)>,
    decrypted: Vec<(usize, Value)>,
    undecryptable: u64,
}

#[derive(Clone)]
struct Service {
    browsers: Arc<HashMap<usize, Browser>>,
    received: Arc<Mutex<Received>>,
    decrypt_every: usize,
}

#[derive(Debug, Serialize)]
struct Round {
    channel: String,
    pushes: u64,
    doubled: u64,
    /// From the send's acknowledgement to the first and the last push received.
    first_after_s: f64,
    last_after_s: f64,
    /// `pushes / last_after_s`.
    pushes_per_second: f64,
}

#[derive(Debug, Serialize)]
struct PushResult {
    members: usize,
    rounds: Vec<Round>,
    decrypted: usize,
    undecryptable: u64,
    /// notify's `natter_notify_pushes_total` over the run, by outcome.
    notify_pushes: Vec<(String, f64)>,
    services: Vec<report::ServiceDelta>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.members < 2 || args.rounds == 0 || args.decrypt_every == 0 {
        bail!("--members must be at least 2, --rounds and --decrypt-every at least 1");
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let rest = Rest::new(&target.gateway)?;
    let tag = format!("p{}", now_us() % 1_000_000_000);
    println!("push: signing up {} members", args.members);
    let users = people.sign_up(&tag, args.members).await?;
    println!(
        "push: the owner makes a server of {} channels; the others join",
        args.rounds
    );
    let server = Server::build(
        &people,
        &users,
        "loadtest push",
        args.rounds,
        args.concurrency,
    )
    .await?;

    // The push service, and one browser per member but the owner subscribed to it.
    let mut browsers = HashMap::new();
    let mut subscriptions = Vec::new();
    for i in 1..users.len() {
        let (pair, auth) = ece::generate_keypair_and_auth_secret()
            .map_err(|e| anyhow::anyhow!("browser keys: {e:?}"))?;
        let public = pair
            .pub_as_raw()
            .map_err(|e| anyhow::anyhow!("a public key: {e:?}"))?;
        let keys = pair
            .raw_components()
            .map_err(|e| anyhow::anyhow!("key components: {e:?}"))?;
        subscriptions.push((
            i,
            URL_SAFE_NO_PAD.encode(public),
            URL_SAFE_NO_PAD.encode(auth),
        ));
        browsers.insert(i, Browser { keys, auth });
    }
    let service = Service {
        browsers: Arc::new(browsers),
        received: Arc::default(),
        decrypt_every: args.decrypt_every,
    };
    let app = axum::Router::new()
        .route("/push/{member}", axum::routing::post(receive))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "push: {} browsers subscribe to the push service on port {port}",
        subscriptions.len()
    );
    futures::stream::iter(subscriptions)
        .map(|(i, p256dh, auth)| {
            let people = people.clone();
            let token = users[i].token.clone();
            async move {
                let subscription = json!({
                    "endpoint": format!("http://127.0.0.1:{port}/push/{i}"),
                    "keys": { "p256dh": p256dh, "auth": auth },
                });
                people
                    .call::<Value>(
                        reqwest::Method::POST,
                        "/api/v1/users/@me/push-subscriptions",
                        Some(&token),
                        &subscription,
                    )
                    .await
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .try_collect::<Vec<_>>()
        .await?;

    let pushes_before = pushes_by_outcome(&args.notify).await?;
    let baseline = Baseline::take(&target.metrics).await;
    let owed = users.len() - 1;
    let mut rounds = Vec::new();
    for (r, channel) in server.channels.iter().enumerate() {
        let already = service
            .received
            .lock()
            .expect("never poisoned")
            .arrivals
            .len();
        rest.send(
            r,
            channel,
            &users[0].token,
            &format!("@everyone round {r}: please read"),
        )
        .await?;
        let sent = now_us();
        let started = Instant::now();
        loop {
            let got = service
                .received
                .lock()
                .expect("never poisoned")
                .arrivals
                .len()
                - already;
            if got >= owed || started.elapsed() > args.settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A moment for any push sent twice to arrive too.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = service.received.lock().expect("never poisoned");
        let arrivals = &received.arrivals[already..];
        let mut per_member: HashMap<usize, u64> = HashMap::new();
        for &(member, _) in arrivals {
            *per_member.entry(member).or_default() += 1;
        }
        let first = arrivals.iter().map(|&(_, at)| at).min().unwrap_or(sent);
        let last = arrivals.iter().map(|&(_, at)| at).max().unwrap_or(sent);
        let pushes = per_member.len() as u64;
        let last_after_s = last.saturating_sub(sent) as f64 / 1e6;
        let round = Round {
            channel: channel.clone(),
            pushes,
            doubled: arrivals.len() as u64 - pushes,
            first_after_s: first.saturating_sub(sent) as f64 / 1e6,
            last_after_s,
            pushes_per_second: pushes as f64 / last_after_s.max(1e-6),
        };
        println!(
            "push: round {r}: {} of {owed} pushed ({} twice); first after {:.2} s, last after {:.2} s: {:.0} pushes/s",
            round.pushes,
            round.doubled,
            round.first_after_s,
            round.last_after_s,
            round.pushes_per_second
        );
        rounds.push(round);
    }
    let services = baseline.deltas().await;
    let pushes_after = pushes_by_outcome(&args.notify).await?;
    let received = service.received.lock().expect("never poisoned");
    // Each checked push must name a channel of the run (the round's, whose text it tells).
    let foreign = received
        .decrypted
        .iter()
        .filter(|(_, payload)| {
            !payload["channel_id"]
                .as_str()
                .is_some_and(|c| server.channels.iter().any(|ours| ours == c))
        })
        .count();
    let result = PushResult {
        members: args.members,
        rounds,
        decrypted: received.decrypted.len(),
        undecryptable: received.undecryptable,
        notify_pushes: pushes_after
            .iter()
            .map(|(outcome, n)| {
                let before = pushes_before.get(outcome).copied().unwrap_or(0.0);
                (outcome.clone(), n - before)
            })
            .collect(),
        services,
    };
    drop(received);
    println!(
        "push: {} decrypted and checked, {} did not decrypt, {foreign} named another channel; notify's pushes by outcome {:?}",
        result.decrypted, result.undecryptable, result.notify_pushes
    );
    report::print_deltas(&result.services);
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-push.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    if result
        .rounds
        .iter()
        .any(|r| r.pushes != owed as u64 || r.doubled > 0)
        || result.undecryptable > 0
        || foreign > 0
    {
        bail!(
            "every member but the owner must get exactly one push per round, each decrypting to a channel of the run"
        );
    }
    Ok(())
}

/// The local push service's endpoint: records the arrival, decrypts every `decrypt_every`th.
async fn receive(
    State(service): State<Service>,
    Path(member): Path<usize>,
    body: Bytes,
) -> StatusCode {
    let at = now_us();
    let Some(browser) = service.browsers.get(&member) else {
        return StatusCode::NOT_FOUND;
    };
    let check = {
        let mut received = service.received.lock().expect("never poisoned");
        received.arrivals.push((member, at));
        received.arrivals.len() % service.decrypt_every == 0
    };
    if check {
        let payload = ece::decrypt(&browser.keys, &browser.auth, &body)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Value>(&plain).ok());
        let mut received = service.received.lock().expect("never poisoned");
        match payload {
            Some(payload) => received.decrypted.push((member, payload)),
            None => received.undecryptable += 1,
        }
    }
    StatusCode::CREATED
}

/// notify's `natter_notify_pushes_total` by outcome.
async fn pushes_by_outcome(metrics: &str) -> anyhow::Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for (series, value) in report::scrape_all(metrics).await? {
        let Some(labels) = series.strip_prefix("natter_notify_pushes_total{") else {
            continue;
        };
        let outcome = labels
            .split("outcome=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default();
        *out.entry(outcome.to_owned()).or_default() += value;
    }
    Ok(out)
}
