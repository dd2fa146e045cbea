//! The auth service starts against the real stack, reports ready, and refuses bad configuration.

use std::time::Duration;

use shared::testing::{self, Stack};

async fn start_auth(stack: &Stack, database_url: &str) -> testing::Running {
    let prefix = testing::fresh_prefix();
    let config: auth::Config = shared::config::try_parse_from([
        "auth",
        "--http-addr=127.0.0.1:0",
        &format!("--database-url={database_url}"),
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={prefix}"),
    ])
    .unwrap();
    testing::spawn(auth::Auth::build(config).await.unwrap())
}

#[tokio::test]
async fn auth_is_live_ready_and_serves_metrics() {
    let stack = Stack::get();
    let db = stack.fresh_database().await;
    let auth = start_auth(&stack, &db).await;
    let http = reqwest::Client::new();

    let live = http.get(auth.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);

    // Ready once PostgreSQL and NATS both answer (the NATS client connects in the background).
    let report = testing::eventually("auth to be ready", Duration::from_secs(10), || async {
        let ready = http.get(auth.url("/readyz")).send().await.unwrap();
        (ready.status() == 200).then_some(ready)
    })
    .await;
    let report: serde_json::Value = report.json().await.unwrap();
    assert_eq!(report["checks"]["postgres"], "ok");
    assert_eq!(report["checks"]["nats"], "ok");

    let metrics = http.get(auth.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"natter_http_requests_total{method="GET",route="/readyz",status="200",service="auth"}"#),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    auth.stop().await;
}

#[tokio::test]
async fn start_applies_the_migrations() {
    let stack = Stack::get();
    let db = stack.fresh_database().await;
    let auth = start_auth(&stack, &db).await;

    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(count >= 1);
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
    auth.stop().await;
}

#[test]
fn a_malformed_database_url_exits_with_one_line_naming_it() {
    let (code, stderr) = testing::run_binary(
        env!("CARGO_BIN_EXE_auth"),
        &[
            "--database-url",
            "mysql://db/natter",
            "--nats-url",
            "nats://127.0.0.1:4222",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--database-url") && stderr.contains("scheme 'mysql'"),
        "{stderr}"
    );
}

#[test]
fn a_missing_setting_exits_naming_it() {
    let (code, stderr) = testing::run_binary(
        env!("CARGO_BIN_EXE_auth"),
        &[],
        &[("NATTER_DATABASE_URL", "postgres://127.0.0.1/natter")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--nats-url"), "{stderr}");
}

#[test]
fn an_unreachable_database_exits_non_zero_saying_so() {
    let closed = testing::free_port();
    let (code, stderr) = testing::run_binary(
        env!("CARGO_BIN_EXE_auth"),
        &["--http-addr", "127.0.0.1:0"],
        &[
            (
                "NATTER_DATABASE_URL",
                &format!("postgres://natter@127.0.0.1:{closed}/natter"),
            ),
            ("NATTER_NATS_URL", "nats://127.0.0.1:4222"),
            ("NATTER_LOG", "off"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
}
