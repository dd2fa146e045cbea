//! The edge starts against real NATS, creates the chat stream, and reports ready.

use shared::testing::{self, Stack};

#[tokio::test]
async fn edge_is_ready_and_has_created_the_chat_stream() {
    let stack = Stack::get();
    let prefix = testing::fresh_prefix();
    let config: edge::Config = shared::config::try_parse_from([
        "edge",
        "--http-addr=127.0.0.1:0",
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={prefix}"),
        "--stream-max-age=1h",
        "--stream-max-bytes=67108864",
    ])
    .unwrap();
    let edge = testing::spawn(edge::Edge::build(config).await.unwrap());

    testing::wait_ready(&edge).await;

    let nats = async_nats::connect(&stack.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let mut stream = js.get_stream(format!("{prefix}_chat")).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.subjects, [format!("{prefix}.ch.*.msg")]);
    assert_eq!(info.config.max_age, std::time::Duration::from_secs(3600));
    js.delete_stream(format!("{prefix}_chat")).await.unwrap();
    edge.stop().await;
}

#[test]
fn a_prefix_with_a_nats_wildcard_exits_with_one_line_naming_it() {
    let (code, stderr) = testing::run_binary(
        env!("CARGO_BIN_EXE_edge"),
        &[
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--nats-prefix",
            "a.*",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--nats-prefix"), "{stderr}");
}
