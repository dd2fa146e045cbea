//! The auth service starts against the real stack, reports ready, and refuses bad configuration.

use std::time::Duration;

use testkit::Stack;

fn key_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("key")));
    auth::keys::write_new_key(&path).unwrap();
    path
}

async fn start_auth(stack: &Stack, database_url: &str) -> testkit::Running {
    let prefix = testkit::fresh_prefix();
    let config: auth::Config = kit::config::try_parse_from([
        "auth",
        "--http-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        &format!("--database-url={database_url}"),
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={prefix}"),
        &format!("--redis-url={}", stack.redis_url),
        &format!("--signing-key={}", key_file().display()),
        "--cors-origins=http://localhost:5173",
    ])
    .unwrap();
    testkit::spawn(auth::Auth::build(config).await.unwrap())
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
    let report = testkit::eventually("auth to be ready", Duration::from_secs(10), || async {
        let ready = http.get(auth.url("/readyz")).send().await.unwrap();
        (ready.status() == 200).then_some(ready)
    })
    .await;
    let report: serde_json::Value = report.json().await.unwrap();
    assert_eq!(report["checks"]["postgres"], "ok");
    assert_eq!(report["checks"]["nats"], "ok");

    let metrics = http.get(auth.metrics_url()).send().await.unwrap();
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
    let (code, stderr) = testkit::run_binary(
        env!("CARGO_BIN_EXE_auth"),
        &[
            "--database-url",
            "mysql://db/natter",
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--redis-url",
            "redis://127.0.0.1:6379",
            "--signing-key",
            key_file().to_str().unwrap(),
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
    let (code, stderr) = testkit::run_binary(
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
    let closed = testkit::free_port();
    let (code, stderr) = testkit::run_binary(
        env!("CARGO_BIN_EXE_auth"),
        &[
            "--http-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[
            (
                "NATTER_DATABASE_URL",
                &format!("postgres://natter@127.0.0.1:{closed}/natter"),
            ),
            ("NATTER_NATS_URL", "nats://127.0.0.1:4222"),
            ("NATTER_REDIS_URL", "redis://127.0.0.1:6379"),
            ("NATTER_AUTH_SIGNING_KEYS", key_file().to_str().unwrap()),
            ("NATTER_LOG", "off"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
}

#[test]
fn a_missing_or_invalid_signing_key_exits_with_one_line_naming_it() {
    let not_a_key = std::env::temp_dir().join(format!("{}.pem", testkit::unique("bad")));
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    for key in ["/nonexistent/auth-1.pem", not_a_key.to_str().unwrap()] {
        let (code, stderr) = testkit::run_binary(
            env!("CARGO_BIN_EXE_auth"),
            &["--signing-key", key],
            &[
                ("NATTER_DATABASE_URL", "postgres://127.0.0.1/natter"),
                ("NATTER_NATS_URL", "nats://127.0.0.1:4222"),
                ("NATTER_REDIS_URL", "redis://127.0.0.1:6379"),
            ],
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("--signing-key") && stderr.contains(key),
            "{stderr}"
        );
    }
}

#[test]
fn keygen_writes_a_private_key_file_once() {
    let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("gen")));
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_auth"))
            .args(["keygen", path.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(auth::keys::SigningKey::load(path.to_str().unwrap()).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let second = run();
    assert!(!second.status.success(), "never overwrites a key");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
}

#[tokio::test]
async fn the_openapi_document_and_cors_are_served() {
    let stack = Stack::get();
    let db = stack.fresh_database().await;
    let auth = start_auth(&stack, &db).await;
    let http = reqwest::Client::new();
    let doc: serde_json::Value = http
        .get(auth.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/sign-in",
        "/api/v1/channels/{id}/members",
        "/api/v1/gateway",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());

    let preflight = http
        .request(reqwest::Method::OPTIONS, auth.url("/api/v1/auth/sign-in"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let foreign = http
        .request(reqwest::Method::OPTIONS, auth.url("/api/v1/auth/sign-in"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    auth.stop().await;
}
