//! The message store's ordering rules against the real CQL store: whatever order a message's
//! create, edits and delete arrive in, the store ends as the chat stream ordered them, and no
//! half ("zombie") row is left behind.

use std::sync::Arc;
use std::time::Duration;

use proto::api::messages::Message;
use proto::{Snowflake, SnowflakeGenerator};
use scylla::client::session::Session;
use store::MessageStore;
use store::cql::CqlConfig;
use store::schema::bucket_of;
use testkit::Stack;

struct Store {
    store: MessageStore,
    session: Arc<Session>,
    keyspace: String,
    ids: SnowflakeGenerator,
}

async fn store() -> Store {
    let stack = Stack::get();
    let keyspace = testkit::history_keyspace(&stack).await;
    let config = CqlConfig {
        nodes: stack.cql_nodes(),
        keyspace,
        replication: String::new(),
        consistency: store::cql::ConsistencyLevel::One,
        connect_timeout: Duration::from_secs(30),
    };
    let session = config.connect().await.unwrap();
    Store {
        store: MessageStore::prepare(
            Arc::clone(&session),
            &config.keyspace,
            Duration::from_secs(5),
        )
        .await
        .unwrap(),
        session,
        keyspace: config.keyspace.as_str().to_owned(),
        ids: SnowflakeGenerator::new(1001).unwrap(),
    }
}

impl Store {
    fn message(&self) -> Message {
        Message {
            id: self.ids.next_id(),
            channel_id: self.ids.next_id(),
            author_id: Snowflake::from_u64(7),
            content: "original".into(),
            nonce: None,
            edited_at: None,
            ..Default::default()
        }
    }

    /// Every row the store holds for the message, whole or not.
    async fn raw_rows(&self, m: &Message) -> usize {
        let ks = &self.keyspace;
        self.session
            .query_unpaged(
                format!(
                    "SELECT * FROM {ks}.messages \
                     WHERE channel_id = ? AND bucket = ? AND message_id = ?"
                ),
                (m.channel_id.as_i64(), bucket_of(m.id), m.id.as_i64()),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows_num()
    }
}

fn edited(m: &Message, content: &str) -> Message {
    Message {
        content: content.into(),
        edited_at: Some(1),
        ..m.clone()
    }
}

/// Stream timestamps (microseconds) for events one second apart.
fn at(second: i64) -> i64 {
    1_790_000_000_000_000 + second * 1_000_000
}

#[tokio::test]
async fn an_edit_the_stream_ordered_after_a_delete_never_brings_the_message_back() {
    let s = store().await;
    for delete_arrives_first in [true, false] {
        let m = s.message();
        s.store.insert(&m, at(1)).await.unwrap();
        // Stream order: delete at 2, then an edit at 3 (the edit lost a race with the delete).
        let edit = edited(&m, "too late");
        if delete_arrives_first {
            s.store.delete(m.channel_id, m.id, at(2)).await.unwrap();
            s.store.edit(&edit, at(3)).await.unwrap();
        } else {
            s.store.edit(&edit, at(3)).await.unwrap();
            s.store.delete(m.channel_id, m.id, at(2)).await.unwrap();
        }
        assert_eq!(s.store.get(m.channel_id, m.id).await.unwrap(), None);
        assert_eq!(s.raw_rows(&m).await, 0, "a zombie row is left");
    }
}

#[tokio::test]
async fn a_delete_after_an_edit_wins_whichever_arrives_first() {
    let s = store().await;
    for delete_arrives_first in [true, false] {
        let m = s.message();
        s.store.insert(&m, at(1)).await.unwrap();
        let edit = edited(&m, "edited");
        if delete_arrives_first {
            s.store.delete(m.channel_id, m.id, at(3)).await.unwrap();
            s.store.edit(&edit, at(2)).await.unwrap();
        } else {
            s.store.edit(&edit, at(2)).await.unwrap();
            s.store.delete(m.channel_id, m.id, at(3)).await.unwrap();
        }
        assert_eq!(s.store.get(m.channel_id, m.id).await.unwrap(), None);
        assert_eq!(s.raw_rows(&m).await, 0, "a zombie row is left");
    }
}

#[tokio::test]
async fn a_create_redelivered_after_its_delete_stays_deleted() {
    let s = store().await;
    let m = s.message();
    s.store.insert(&m, at(1)).await.unwrap();
    s.store.delete(m.channel_id, m.id, at(2)).await.unwrap();
    s.store.insert(&m, at(1)).await.unwrap();
    assert_eq!(s.store.get(m.channel_id, m.id).await.unwrap(), None);
    assert_eq!(s.raw_rows(&m).await, 0);
}

#[tokio::test]
async fn edits_arriving_before_the_create_or_out_of_order_leave_the_latest_whole_message() {
    let s = store().await;
    let m = s.message();
    // Stream order: create 1, edit 2, edit 3; arrival: edit 3, create, edit 2.
    s.store
        .edit(&edited(&m, "second edit"), at(3))
        .await
        .unwrap();
    s.store.insert(&m, at(1)).await.unwrap();
    s.store
        .edit(&edited(&m, "first edit"), at(2))
        .await
        .unwrap();
    let stored = s.store.get(m.channel_id, m.id).await.unwrap().unwrap();
    assert_eq!(stored.content, "second edit");
    assert_eq!(stored.author_id, m.author_id);
    assert_eq!(stored.edited_at, Some(1));
}

#[tokio::test]
async fn messages_written_together_are_each_stored_with_their_channels_newest_id_and_bucket() {
    let s = store().await;
    let channels = [s.ids.next_id(), s.ids.next_id(), s.ids.next_id()];
    // Seventy messages over three channels, more than a batch holds in one of them, handed over
    // newest first: what a chunk of the stream may look like.
    let messages: Vec<Message> = (0..70)
        .map(|i| Message {
            channel_id: channels[i % 3],
            content: format!("m{i}"),
            ..s.message()
        })
        .collect();
    let written: Vec<(&Message, i64)> = messages.iter().rev().map(|m| (m, 1_000)).collect();
    s.store.insert_many(&written).await.unwrap();
    // Again, as a redelivery would: nothing doubles.
    s.store.insert_many(&written).await.unwrap();

    let newest = s.store.last_messages(&channels).await.unwrap();
    for (index, channel) in channels.iter().enumerate() {
        let theirs: Vec<&Message> = messages.iter().skip(index).step_by(3).collect();
        let page = s
            .store
            .page(*channel, store::Page::Latest, 100)
            .await
            .unwrap();
        let ids: Vec<Snowflake> = page.iter().map(|m| m.id).collect();
        let expected: Vec<Snowflake> = theirs.iter().rev().map(|m| m.id).collect();
        assert_eq!(
            ids, expected,
            "every message of the channel, once, newest first"
        );
        assert_eq!(newest.get(channel), theirs.last().map(|m| &m.id));
        let buckets = s
            .session
            .query_unpaged(
                format!(
                    "SELECT bucket FROM {}.channel_buckets WHERE channel_id = ?",
                    s.keyspace
                ),
                (channel.as_i64(),),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows_num();
        assert_eq!(buckets, 1, "the channel's bucket is listed");
    }
}
