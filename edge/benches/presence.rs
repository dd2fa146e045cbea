//! Presence fan-out: how many presence updates per second reach clients, and what one presence
//! change costs in a channel of 100 and of 1,000 members. Everything runs in this process on a
//! release build (auth, presence, two edges, and every client over a real WebSocket) against the
//! real local stack (`./natter up --stack`):
//!
//!     cargo bench -p edge --bench presence
//!
//! Per channel size N: N-1 watchers identify on edge A; one member (the changer) on edge B flips
//! its status between idle and online with op 3, so every flip is a change. Paced: 50 flips, 10 a
//! second, each timed from the flip to its arrival at every watcher. Burst: 200 flips back to
//! back, timed until the last watcher has them all. The edges push presence for channels up to
//! 1,000 members here (`--presence-max-members=1000`); by default only up to 100 are pushed.
//!
//! Not a test: it prints figures for docs/BENCHMARKS.md. Run it on an idle machine.
#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use testkit::{Running, Stack};
use tokio_tungstenite::tungstenite::Message;

const SIZES: [usize; 2] = [100, 1_000];
const PACED: usize = 50;
const BURST: usize = 200;
const REST_CALLS: usize = 200;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Clone)]
struct User {
    id: String,
    name: String,
    token: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "  {what:<42} p50 {:>8.2} ms   p90 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   (n={})",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        latencies.len()
    );
}

async fn identify(url: &str, user: &User) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.next().await.unwrap().unwrap(); // HELLO
    let frame = json!({"op": 2, "d": {"token": user.token}}).to_string();
    socket.send(Message::Text(frame.into())).await.unwrap();
    loop {
        if let Message::Text(text) = socket.next().await.unwrap().unwrap() {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["t"] == "READY" {
                return socket;
            }
        }
    }
}

/// Reads a watcher's socket, recording when each PRESENCE_UPDATE about `changer` arrives.
fn watch(
    mut socket: Socket,
    changer: &str,
    seen: Arc<Mutex<Vec<Instant>>>,
) -> tokio::task::JoinHandle<()> {
    let needle = format!("\"user_id\":\"{changer}\"");
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && text.contains("PRESENCE_UPDATE")
                && text.contains(&needle)
            {
                seen.lock().unwrap().push(Instant::now());
            }
        }
    })
}

async fn wait_for(watchers: &[Arc<Mutex<Vec<Instant>>>], count: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if watchers.iter().all(|w| w.lock().unwrap().len() >= count) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn flip(socket: &mut Socket, k: usize) {
    let status = if k.is_multiple_of(2) {
        "idle"
    } else {
        "online"
    };
    let frame = json!({"op": 3, "d": {"status": status}}).to_string();
    socket.send(Message::Text(frame.into())).await.unwrap();
}

#[tokio::main]
async fn main() {
    let stack = Stack::get();
    let prefix = testkit::fresh_prefix();
    let key = std::env::temp_dir().join(format!("{}.pem", testkit::unique("benchkey")));
    auth::keys::write_new_key(&key).unwrap();
    let auth_config: auth::Config = kit::config::try_parse_from([
        "auth".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        "--max-connections-per-address=0".to_owned(),
        format!("--database-url={}", stack.fresh_database().await),
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={}", stack.redis_url),
        format!("--signing-key={}", key.display()),
        "--sign-up-rate=100000/1m".to_owned(),
        "--member-limit=1000".to_owned(),
        "--member-add-rate=100000/1m".to_owned(),
        "--channel-create-rate=1000/1m".to_owned(),
        "--log-filter=error".to_owned(),
    ])
    .unwrap();
    let auth = testkit::spawn(auth::Auth::build(auth_config).await.unwrap());
    testkit::wait_ready(&auth).await;
    let presence_config: presence::Config = kit::config::try_parse_from([
        "presence".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        "--max-connections-per-address=0".to_owned(),
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={}", stack.redis_url),
        "--log-filter=error".to_owned(),
    ])
    .unwrap();
    let presence = testkit::spawn(presence::Presence::build(presence_config).await.unwrap());
    testkit::wait_ready(&presence).await;
    let mut edges: Vec<Running> = Vec::new();
    for worker in 1..=2 {
        let config: edge::Config = kit::config::try_parse_from([
            "edge".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            "--max-connections-per-address=0".to_owned(),
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={prefix}"),
            format!("--auth-url={}", auth.url("")),
            format!("--worker-id={worker}"),
            "--stream-max-bytes=67108864".to_owned(),
            "--presence-max-members=1000".to_owned(),
            "--frames-per-minute=1000000".to_owned(),
            "--heartbeat-interval=10m".to_owned(),
            "--session-queue=8192".to_owned(),
            "--log-filter=error".to_owned(),
        ])
        .unwrap();
        let edge = testkit::spawn(edge::Edge::build(config).await.unwrap());
        testkit::wait_ready(&edge).await;
        edges.push(edge);
    }
    let gateway = |i: usize| format!("ws://127.0.0.1:{}/gateway", edges[i].port);
    let http = reqwest::Client::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("presence benchmark: {cpus} CPUs, release build, everything in one process\n");

    let most = *SIZES.iter().max().unwrap();
    let started = Instant::now();
    let users: Vec<User> = futures::stream::iter(0..most)
        .map(|i| {
            let http = &http;
            let url = auth.url("/api/v1/auth/sign-up");
            let settings = auth.url("/api/v1/users/@me/settings");
            async move {
                let name = format!("pb{i}");
                let body: Value = http
                    .post(url)
                    .json(&json!({"username": name, "password": "bench violet kettle drum"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let token = body["access_token"].as_str().unwrap().to_owned();
                // Anyone may add them (the default is only people they share a channel with).
                let allowed = http
                    .patch(settings)
                    .bearer_auth(&token)
                    .json(&json!({"allow_channel_adds_from": "everyone"}))
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert!(allowed.is_success(), "{allowed}");
                User {
                    id: body["user"]["id"].as_str().unwrap().to_owned(),
                    name,
                    token,
                }
            }
        })
        .buffered(cpus * 2)
        .collect()
        .await;
    println!(
        "signed up {most} users in {:.1} s\n",
        started.elapsed().as_secs_f64()
    );

    for n in SIZES {
        let owner = &users[0];
        let body: Value = http
            .post(auth.url("/api/v1/channels"))
            .bearer_auth(&owner.token)
            .json(&json!({"name": format!("room{n}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let channel = body["id"].as_str().unwrap().to_owned();
        futures::stream::iter(&users[1..n])
            .map(|member| {
                let request = http
                    .post(auth.url(&format!("/api/v1/channels/{channel}/members")))
                    .bearer_auth(&owner.token)
                    .json(&json!({"username": member.name}));
                async move {
                    let status = request.send().await.unwrap().status();
                    assert!(status.is_success(), "{status}");
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;

        println!(
            "channel of {n} members ({} watchers on edge A, the changer on edge B)",
            n - 1
        );
        let mut changer = identify(&gateway(1), owner).await;
        let seen: Vec<Arc<Mutex<Vec<Instant>>>> =
            (1..n).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        let started = Instant::now();
        let watched: Vec<(Duration, tokio::task::JoinHandle<()>)> =
            futures::stream::iter((1..n).zip(seen.iter()))
                .map(|(i, seen)| {
                    let url = gateway(0);
                    let user = users[i].clone();
                    let changer = owner.id.clone();
                    let seen = Arc::clone(seen);
                    async move {
                        let t = Instant::now();
                        let socket = identify(&url, &user).await;
                        let took = t.elapsed();
                        (took, watch(socket, &changer, seen))
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
        let (ready_times, readers): (Vec<Duration>, Vec<_>) = watched.into_iter().unzip();
        println!(
            "  {} watchers identified in {:.1} s",
            n - 1,
            started.elapsed().as_secs_f64()
        );
        line("identify to READY (with presences)", ready_times);
        tokio::time::sleep(Duration::from_secs(2)).await;
        for s in &seen {
            s.lock().unwrap().clear();
        }

        // Paced: each flip timed to every watcher.
        let mut sent = Vec::new();
        for k in 0..PACED {
            sent.push(Instant::now());
            flip(&mut changer, k).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            wait_for(&seen, PACED, Duration::from_secs(30)).await,
            "paced updates lost"
        );
        let mut to_last = Vec::new();
        let mut each = Vec::new();
        for (k, t) in sent.iter().enumerate() {
            let mut last = Duration::ZERO;
            for s in &seen {
                let d = s.lock().unwrap()[k] - *t;
                each.push(d);
                last = last.max(d);
            }
            to_last.push(last);
        }
        line("flip -> one watcher (paced, 10/s)", each);
        line("flip -> every watcher (paced, 10/s)", to_last);
        for s in &seen {
            s.lock().unwrap().clear();
        }

        // Burst: as fast as the changer can send.
        let t0 = Instant::now();
        for k in 0..BURST {
            flip(&mut changer, k).await;
        }
        let complete = wait_for(&seen, BURST, Duration::from_secs(120)).await;
        let end = seen
            .iter()
            .filter_map(|s| s.lock().unwrap().last().copied())
            .max()
            .unwrap();
        let wall = end - t0;
        let delivered: usize = seen.iter().map(|s| s.lock().unwrap().len()).sum();
        println!(
            "  burst: {BURST} changes in {:.0} ms: {:.0} changes/s, {:.0} updates/s delivered to clients{}",
            ms(wall),
            BURST as f64 / wall.as_secs_f64(),
            delivered as f64 / wall.as_secs_f64(),
            if complete { "" } else { " (SOME LOST)" }
        );

        // What a client pays for a channel above the push limit: one REST call for 100 members.
        let ids: Vec<&str> = users[1..=100.min(n - 1)]
            .iter()
            .map(|u| u.id.as_str())
            .collect();
        let url = format!(
            "http://127.0.0.1:{}/api/v1/presences?user_ids={}",
            edges[0].port,
            ids.join(",")
        );
        let mut rest = Vec::new();
        for _ in 0..REST_CALLS {
            let t = Instant::now();
            let response = http
                .get(&url)
                .bearer_auth(&owner.token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let _ = response.bytes().await;
            rest.push(t.elapsed());
        }
        line("GET /api/v1/presences, 100 ids", rest);
        println!();
        // End this size's sessions before the next: a reader task owns its socket.
        drop(changer);
        for reader in readers {
            reader.abort();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = std::fs::remove_file(key);
}
