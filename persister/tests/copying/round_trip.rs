//! Round trips through the two durable stores, from Rust: JetStream (the intake) and the CQL store
//! (the archive), and the persister itself starting ready against both.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use futures::StreamExt;
use kit::stream::ChatStreamConfig;
use proto::Snowflake;
use proto::subjects::Subjects;
use store::cql::CqlConfig;
use testkit::Stack;

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    stream: ChatStreamConfig,
    #[command(flatten)]
    cql: CqlConfig,
}

fn args(stack: &Stack, keyspace: &str) -> Args {
    kit::config::try_parse_from([
        "test",
        "--cql-nodes",
        &stack.cql_nodes,
        "--cql-keyspace",
        keyspace,
        "--stream-max-age=1h",
        "--stream-max-bytes=67108864",
    ])
    .unwrap()
}

#[tokio::test]
async fn a_published_event_comes_back_once_from_a_durable_consumer() {
    let stack = Stack::get();
    let subjects = Subjects::new(testkit::fresh_prefix());
    let nats = async_nats::connect(&stack.nats_url).await.unwrap();
    let js = jetstream::new(nats);
    args(&stack, "unused")
        .stream
        .ensure(&js, &subjects)
        .await
        .unwrap();

    let channel = Snowflake::from_u64(1234);
    let subject = subjects.chat_intake(channel);
    // The third publish retries the first (same message id): JetStream stores it once.
    for (id, body) in [("n1", "first"), ("n2", "second"), ("n1", "first, retried")] {
        let ack = js
            .send_publish(
                subject.clone(),
                PublishMessage::build().payload(body.into()).message_id(id),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.duplicate, id == "n1" && body.ends_with("retried"));
    }

    let mut stream = js.get_stream(subjects.chat_stream_name()).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("round-trip".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.unwrap();
        assert_eq!(message.subject.as_str(), subject);
        bodies.push(String::from_utf8(message.payload.to_vec()).unwrap());
        message.ack().await.unwrap();
    }
    assert_eq!(bodies, ["first", "second"]);
    assert_eq!(stream.info().await.unwrap().state.messages, 2);
    js.delete_stream(subjects.chat_stream_name()).await.unwrap();
}

#[tokio::test]
async fn a_message_written_to_the_cql_store_reads_back_and_migrations_are_idempotent() {
    let stack = Stack::get();
    let keyspace = testkit::fresh_keyspace();
    let cql = args(&stack, keyspace.as_str()).cql;
    let session = cql.connect().await.unwrap();
    cql.migrate(&session, store::schema::MIGRATIONS)
        .await
        .unwrap();
    // A second start applies nothing new and does not fail.
    cql.migrate(&session, store::schema::MIGRATIONS)
        .await
        .unwrap();

    // The session uses no keyspace (every statement names it): Cassandra warns of prepared
    // statements on a connection that does.
    assert_eq!(session.get_keyspace(), None);
    let id = Snowflake::from_parts(1_780_000_000_000, 3, 1);
    let ks = keyspace.as_str();
    session
        .query_unpaged(
            format!(
                "INSERT INTO {ks}.messages (channel_id, bucket, message_id, author_id, content) \
                 VALUES (?, ?, ?, ?, ?)"
            ),
            (7_i64, 20_i32, id.as_i64(), 9_i64, "hello, archive"),
        )
        .await
        .unwrap();
    let rows = session
        .query_unpaged(
            format!(
                "SELECT message_id, content FROM {ks}.messages WHERE channel_id = ? AND bucket = ?"
            ),
            (7_i64, 20_i32),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(i64, String)>()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(rows, [(id.as_i64(), "hello, archive".to_owned())]);

    let versions = session
        .query_unpaged(format!("SELECT version FROM {ks}.schema_migrations"), &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(i32,)>()
        .unwrap()
        .count();
    assert_eq!(versions, store::schema::MIGRATIONS.len());
    session
        .query_unpaged(format!("DROP KEYSPACE {}", keyspace.as_str()), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_persister_starts_ready_against_nats_and_the_cql_store() {
    let stack = Stack::get();
    let keyspace = testkit::fresh_keyspace();
    let prefix = testkit::fresh_prefix();
    let config: persister::Config = kit::config::try_parse_from([
        "persister",
        "--http-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        &format!("--nats-url={}", stack.nats_url),
        &format!("--nats-prefix={prefix}"),
        &format!("--cql-nodes={}", stack.cql_nodes),
        &format!("--cql-keyspace={}", keyspace.as_str()),
    ])
    .unwrap();
    let persister = testkit::spawn(persister::Persister::build(config).await.unwrap());
    let report = testkit::wait_ready(&persister).await;
    assert_eq!(report["checks"]["cql"], "ok");
    persister.stop().await;
}

#[test]
fn missing_cql_nodes_exit_with_one_line_naming_them() {
    let (code, stderr) = testkit::run_binary(
        env!("CARGO_BIN_EXE_persister"),
        &["--nats-url", "nats://127.0.0.1:4222"],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--cql-nodes"), "{stderr}");
}
