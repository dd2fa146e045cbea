//! Two persisters share the work; SIGKILL one in the middle of it and start it again: every
//! event the stream acknowledged ends up in the store, exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use proto::api::messages::Message;
use proto::events::Event;
use proto::subjects::{Prefix, Subjects};
use proto::{Snowflake, SnowflakeGenerator};
use scylla::client::session::Session;
use store::cql::CqlConfig;
use store::schema::bucket_of;
use testkit::{ServiceProcess, Stack};

struct PersisterProcess {
    process: ServiceProcess,
}

impl PersisterProcess {
    async fn start(stack: &Stack, prefix: &Prefix, keyspace: &str) -> Self {
        let args = [
            // Small bites, so the kill lands with work in hand.
            "--in-flight=8".to_owned(),
            "--batch=50".to_owned(),
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={}", prefix.as_str()),
            "--stream-max-bytes=67108864".to_owned(),
            format!("--cql-nodes={}", stack.cql_nodes),
            format!("--cql-keyspace={keyspace}"),
            "--log-filter=warn".to_owned(),
        ];
        let binary = Path::new(env!("CARGO_BIN_EXE_persister"));
        Self {
            process: ServiceProcess::start_binary(binary, &args).await,
        }
    }

    async fn written(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.process.metrics_port);
        let Ok(response) = reqwest::get(&url).await else {
            return 0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("natter_persister_written_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

async fn stored_ids(
    session: &Session,
    keyspace: &str,
    channel: Snowflake,
    buckets: &BTreeSet<i32>,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for &bucket in buckets {
        let rows = session
            .query_unpaged(
                format!(
                    "SELECT message_id FROM {keyspace}.messages WHERE channel_id = ? AND bucket = ?"
                ),
                (channel.as_i64(), bucket),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        ids.extend(rows.rows::<(i64,)>().unwrap().map(|r| r.unwrap().0));
    }
    ids
}

#[tokio::test]
async fn a_persister_killed_mid_batch_beside_another_loses_nothing_and_writes_nothing_twice() {
    const EVENTS: usize = 4_000;
    let stack = Stack::get();
    let prefix = testkit::fresh_prefix();
    let subjects = Subjects::new(prefix.clone());
    let keyspace = testkit::history_keyspace(&stack).await;
    let ids = SnowflakeGenerator::new(1002).unwrap();
    let channel = ids.next_id();

    let mut first = PersisterProcess::start(&stack, &prefix, keyspace.as_str()).await;
    let mut other = PersisterProcess::start(&stack, &prefix, keyspace.as_str()).await;
    let js = jetstream::new(async_nats::connect(&stack.nats_url).await.unwrap());
    let mut sent = Vec::new();
    let mut acks = Vec::new();
    for i in 0..EVENTS {
        let message = Message {
            id: ids.next_id(),
            channel_id: channel,
            author_id: Snowflake::from_u64(5),
            content: format!("event {i}"),
            nonce: None,
            edited_at: None,
            ..Default::default()
        };
        sent.push(message.id.as_i64());
        let publish =
            PublishMessage::build().payload(Event::MessageCreate(message).to_json().into());
        acks.push(
            js.send_publish(subjects.chat_intake(channel), publish)
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }

    // Kill it once it is well under way, but not done.
    testkit::eventually(
        "the first persister to start writing",
        Duration::from_secs(30),
        || async { (first.written().await >= 200).then_some(()) },
    )
    .await;
    first.process.kill();
    let stream = js.get_stream(subjects.chat_stream_name()).await.unwrap();
    let left = stream
        .consumer_info(persister::consume::DURABLE)
        .await
        .unwrap();
    assert!(
        left.num_pending + left.num_ack_pending as u64 > 0,
        "the kill came too late to prove anything"
    );

    let mut restarted = PersisterProcess::start(&stack, &prefix, keyspace.as_str()).await;
    testkit::wait_persisted(
        &stack.nats_url,
        &prefix,
        &stack.cql_nodes(),
        keyspace.as_str(),
        Duration::from_secs(120),
    )
    .await;
    let config = CqlConfig {
        nodes: stack.cql_nodes(),
        keyspace: keyspace.clone(),
        replication: String::new(),
        consistency: store::cql::ConsistencyLevel::One,
        connect_timeout: Duration::from_secs(30),
    };
    let session: Arc<Session> = config.connect().await.unwrap();
    let buckets: BTreeSet<i32> = sent
        .iter()
        .map(|&id| bucket_of(Snowflake::from_i64(id)))
        .collect();
    let mut stored = stored_ids(&session, keyspace.as_str(), channel, &buckets).await;
    stored.sort_unstable();
    let mut expected = sent.clone();
    expected.sort_unstable();
    assert_eq!(stored.len(), EVENTS);
    assert_eq!(stored, expected);
    for survivor in [&mut restarted, &mut other] {
        survivor.process.kill();
    }
    js.delete_stream(subjects.chat_stream_name()).await.unwrap();
}
