//! Sign-in throughput and profile-read latency, against the real local stack (`./natter up
//! --stack`), with auth running in this process on a release build:
//!
//!     cargo bench -p auth --bench auth
//!
//! Not a test: it prints figures for docs/BENCHMARKS.md. Run it on an idle machine.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use testkit::Stack;

const USERS: usize = 16;
const SIGN_INS: usize = 400;
const SIGN_IN_CONCURRENCY: usize = 8;
const READS: usize = 4_000;
const READ_CONCURRENCY: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut latencies: Vec<Duration>, wall: Duration) {
    latencies.sort();
    println!(
        "{what:<44} {:>8.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} in {:.2} s)",
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
        wall.as_secs_f64(),
    );
}

/// Runs `n` calls of `call(i)` with `concurrency` in flight; latencies and wall time.
async fn run<F, Fut>(n: usize, concurrency: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    let latencies = futures::stream::iter(0..n)
        .map(|i| {
            let call = &call;
            async move {
                let t = Instant::now();
                call(i).await;
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    (latencies, started.elapsed())
}

#[tokio::main]
async fn main() {
    let stack = Stack::get();
    let db = stack.fresh_database().await;
    let prefix = testkit::fresh_prefix();
    let key = std::env::temp_dir().join(format!("{}.pem", testkit::unique("benchkey")));
    auth::keys::write_new_key(&key).unwrap();
    let config: auth::Config = kit::config::try_parse_from([
        "auth".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        "--max-connections-per-address=0".to_owned(),
        format!("--database-url={db}"),
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={}", stack.redis_url),
        format!("--signing-key={}", key.display()),
        "--sign-up-rate=100000/1m".to_owned(),
        "--sign-in-rate=100000/1m".to_owned(),
        "--log-filter=error".to_owned(),
    ])
    .unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let auth = testkit::spawn(auth::Auth::build(config).await.unwrap());
    testkit::wait_ready(&auth).await;
    let http = reqwest::Client::new();
    let url = |path: &str| auth.url(path);

    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for i in 0..USERS {
        let body: Value = http
            .post(url("/api/v1/auth/sign-up"))
            .json(&json!({"username": format!("bench{i}"), "password": "bench violet kettle drum"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        ids.push(body["user"]["id"].as_str().unwrap().to_owned());
    }
    println!(
        "auth benchmark: {cpus} CPUs, hash concurrency {cpus}, {USERS} users, release build\n"
    );

    let (lat, wall) = run(SIGN_INS, SIGN_IN_CONCURRENCY, |i| {
        let http = &http;
        let url = url("/api/v1/auth/sign-in");
        async move {
            let r = http
                .post(url)
                .json(&json!({"username": format!("bench{}", i % USERS), "password": "bench violet kettle drum"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    })
    .await;
    report(
        &format!("sign-in ({SIGN_IN_CONCURRENCY} in flight)"),
        lat,
        wall,
    );

    let read = |i: usize| {
        let http = &http;
        let url = url(&format!("/api/v1/users/{}", ids[i % USERS]));
        let token = tokens[(i + 1) % USERS].clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    // Warm the cache, then read through it.
    run(USERS, 1, read).await;
    let (lat, wall) = run(READS, 1, read).await;
    report("profile read, cached (1 in flight)", lat, wall);
    let (lat, wall) = run(READS, READ_CONCURRENCY, read).await;
    report(
        &format!("profile read, cached ({READ_CONCURRENCY} in flight)"),
        lat,
        wall,
    );

    // Uncached: drop the entry before every read, outside the timed part, so each read is a miss
    // (PostgreSQL, then a cache fill).
    let redis = redis::Client::open(stack.redis_url.as_str()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let mut lat = Vec::with_capacity(READS);
    let started = Instant::now();
    let mut outside = Duration::ZERO;
    for i in 0..READS {
        let t = Instant::now();
        let _: () = redis::cmd("DEL")
            .arg(format!("{prefix}:user:{}", ids[i % USERS]))
            .query_async(&mut redis)
            .await
            .unwrap();
        outside += t.elapsed();
        let t = Instant::now();
        read(i).await;
        lat.push(t.elapsed());
    }
    report(
        "profile read, uncached (1 in flight)",
        lat,
        started.elapsed() - outside,
    );
    auth.stop().await;
}
