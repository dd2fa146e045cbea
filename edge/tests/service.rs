//! The edge starts against real NATS, creates the chat stream, and reports ready.

use testkit::Stack;

#[tokio::test]
async fn edge_is_ready_and_has_created_the_chat_stream() {
    let stack = Stack::get();
    let prefix = testkit::fresh_prefix();
    let config: edge::Config = kit::config::try_parse_from([
        "edge",
        "--http-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={prefix}"),
        "--stream-max-age=1h",
        "--stream-max-bytes=67108864",
        &format!("--cql-nodes={}", stack.cql_nodes),
    ])
    .unwrap();
    let edge = testkit::spawn(edge::Edge::build(config).await.unwrap());

    testkit::wait_ready(&edge).await;

    let nats = async_nats::connect(&stack.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let mut stream = js.get_stream(format!("{prefix}_chat")).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, [format!("{prefix}.in.*")]);
    assert_eq!(info.config.max_age, std::time::Duration::from_secs(3600));
    js.delete_stream(format!("{prefix}_chat")).await.unwrap();
    edge.stop().await;
}

#[test]
fn a_prefix_with_a_nats_wildcard_exits_with_one_line_naming_it() {
    let (code, stderr) = testkit::run_binary(
        env!("CARGO_BIN_EXE_edge"),
        &[
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--nats-prefix",
            "a.*",
            "--cql-nodes",
            "127.0.0.1:9042",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--nats-prefix"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    use std::time::{Duration, Instant};

    let stack = Stack::get();
    let args = [
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={}", testkit::fresh_prefix()),
        "--stream-max-bytes=67108864".to_owned(),
        format!("--cql-nodes={}", stack.cql_nodes),
        "--log-filter=warn".to_owned(),
    ];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_edge"));
    let mut edge = testkit::ServiceProcess::start_binary(binary, &args).await;

    edge.signal("TERM");
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = edge.try_wait() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "edge ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}
