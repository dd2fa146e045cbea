//! Presence's readiness follows its Redis: a test-private Redis is killed and started again.

use std::time::Duration;

use testkit::{RedisServer, Stack};

async fn readyz(http: &reqwest::Client, presence: &testkit::Running) -> (u16, serde_json::Value) {
    let response = http.get(presence.url("/readyz")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn readiness_names_redis_while_it_is_down_and_recovers_when_it_returns() {
    let stack = Stack::get();
    let mut redis = RedisServer::start(&stack).await;
    let config: presence::Config = kit::config::try_parse_from([
        "presence",
        "--http-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={}", testkit::fresh_prefix()),
        &format!("--redis-url={}", redis.url()),
    ])
    .unwrap();
    let presence = testkit::spawn(presence::Presence::build(config).await.unwrap());
    let http = reqwest::Client::new();

    testkit::wait_ready(&presence).await;

    redis.stop();
    let report = testkit::eventually("readyz to answer 503", Duration::from_secs(15), || async {
        let (status, report) = readyz(&http, &presence).await;
        (status == 503).then_some(report)
    })
    .await;
    assert_eq!(report["failing"], serde_json::json!(["redis"]), "{report}");
    assert_eq!(report["checks"]["nats"], "ok", "{report}");

    redis.resume().await;
    testkit::eventually(
        "readyz to answer 200 again",
        Duration::from_secs(20),
        || async { (readyz(&http, &presence).await.0 == 200).then_some(()) },
    )
    .await;

    // Liveness never depended on Redis.
    let live = http.get(presence.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    presence.stop().await;
}

#[test]
fn a_malformed_redis_url_exits_with_one_line_naming_it() {
    let (code, stderr) = testkit::run_binary(
        env!("CARGO_BIN_EXE_presence"),
        &[
            "--redis-url",
            "localhost:6379",
            "--nats-url",
            "nats://127.0.0.1:4222",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--redis-url"), "{stderr}");
}
