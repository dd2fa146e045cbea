//! Every read and write of the CQL store's tables, over prepared statements: writes of messages
//! ([`writes`], the persister), pages of a channel ([`pages`]), read markers and unread counts
//! ([`read_states`]), replies and reactions ([`conversation`]), pins ([`pins`]), how far the store
//! holds the chat stream ([`watermark`]), every channel that holds messages ([`channels`], for
//! rebuilding search), and the side tables kept beside each message ([`side`], one mechanism):
//! mentions ([`mentions`]), files ([`attachments`]), link previews and flags ([`embeds`]) and
//! calls' system messages ([`calls`]).
//!
//! The persister is the only writer of messages; edges read history and write read states. Both
//! go through [`MessageStore`], so the tables' layout is known in this crate alone.
//!
//! The rules that keep the store healthy (docs/ARCHITECTURE.md has the reasons):
//! - Messages are partitioned by `(channel_id, bucket)`, the bucket being ten days of the message
//!   id's timestamp, so no partition grows without bound; `channel_buckets` lists the buckets that
//!   hold anything, so a reader skips empty ones.
//! - A write sets only the columns it means to set: no NULLs, because a NULL is a tombstone.
//! - New messages are written together (`insert_many`): a partition's rows in unlogged batches
//!   (one mutation in the store), a channel's newest id once per call, and a bucket into
//!   `channel_buckets` only the first time this store sees it.
//! - Every write of a message carries `USING TIMESTAMP` of the moment the chat stream stored the
//!   event, so the store orders a message's create, edits and delete as the stream did, whatever
//!   order they reach the store in: a delete's row tombstone shadows an earlier edit that arrives
//!   late, and a redelivered create after a delete stays deleted.
//! - An edit writes the whole message (author, content, edit time), never a part of it, so no
//!   order of arrival leaves a half row (Discord's "zombie" messages).
//! - An edit that the stream ordered *after* a delete (two people racing) must not bring the
//!   message back. Deletes are recorded in `message_deletions`; an edit looks there after writing
//!   and removes itself, and a delete looks at the row after deleting and removes any edit newer
//!   than itself. Of two racing writers at least one reads after both wrote, so the message stays
//!   deleted whichever order they run in.
//! - Read markers and each channel's last message id are written with a timestamp derived from the
//!   message id ([`crate::schema::id_timestamp`]): the store keeps the largest id, no read needed.
//!
//! The `deleted` column of the first schema version is unused: deletes remove the row.

use std::sync::Arc;
use std::time::Duration;

use proto::Snowflake;
use proto::api::messages::Message;
pub use proto::api::messages::{MAX_PAGE, Page};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

pub use crate::cql::StoreError;
pub(crate) use crate::cql::failed;
use crate::cql::{Keyspace, prepared};

mod attachments;
mod calls;
mod channels;
mod conversation;
mod embeds;
mod mentions;
mod pages;
mod pins;
mod read_states;
mod side;
mod watermark;
mod writes;

/// The unread count stops here: READY says "100 or more" rather than counting a year of messages.
pub const MAX_UNREAD: usize = 100;

pub use conversation::Touched;
pub use embeds::StoredEmbeds;
pub use mentions::StoredMentions;
pub(crate) use side::Side;
pub(crate) use {attachments::Attachments, calls::Calls, embeds::Embeds, mentions::Mentions};

/// A stored message, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: Snowflake,
    pub author_id: Snowflake,
    pub content: String,
    pub edited_at: Option<u64>,
}

impl StoredMessage {
    pub fn into_message(self, channel_id: Snowflake) -> Message {
        Message {
            id: self.id,
            channel_id,
            author_id: self.author_id,
            content: self.content,
            nonce: None,
            edited_at: self.edited_at,
            ..Message::default()
        }
    }
}

type Row = (i64, Option<i64>, Option<String>, Option<CqlTimestamp>);

fn stored(row: Row) -> Option<StoredMessage> {
    // Every write sets author and content together; a row without them is not a message.
    let (id, author, content, edited_at) = row;
    Some(StoredMessage {
        id: Snowflake::from_i64(id),
        author_id: Snowflake::from_i64(author?),
        content: content?,
        edited_at: edited_at.and_then(|t| u64::try_from(t.0).ok()),
    })
}

/// Prepared statements over one session. Cheap to clone.
#[derive(Clone)]
pub struct MessageStore {
    session: Arc<Session>,
    /// Where the tables are; every statement names it.
    keyspace: String,
    s: Arc<Statements>,
    /// Replies' and reactions' statements (`conversation`).
    c: Arc<conversation::Statements>,
    /// Pins' statements (`pins`).
    p: Arc<pins::Statements>,
    /// The side tables' statements (`side`).
    sides: Arc<SideTables>,
    /// Mentions' unread count's statement (`mentions`).
    m: Arc<mentions::Statements>,
    /// Partitions this store has listed in `channel_buckets` (see `insert_many`).
    known_buckets: Arc<std::sync::Mutex<std::collections::HashSet<(i64, i32)>>>,
}

/// The tables beside each message, one [`side::SideTable`] each.
struct SideTables {
    mentions: side::SideTable<Mentions>,
    attachments: side::SideTable<Attachments>,
    embeds: side::SideTable<Embeds>,
    calls: side::SideTable<Calls>,
}

struct Statements {
    insert: PreparedStatement,
    insert_bucket: PreparedStatement,
    set_last: PreparedStatement,
    edit: PreparedStatement,
    delete: PreparedStatement,
    record_deletion: PreparedStatement,
    deletion: PreparedStatement,
    newest_cell: PreparedStatement,
    get: PreparedStatement,
    older: PreparedStatement,
    newer: PreparedStatement,
    buckets_down: PreparedStatement,
    buckets_up: PreparedStatement,
    last_message: PreparedStatement,
    mark_read: PreparedStatement,
    read_states: PreparedStatement,
    unread_rows: PreparedStatement,
    stored_through: PreparedStatement,
    record_stored_through: PreparedStatement,
}

const COLUMNS: &str = "message_id, author_id, content, edited_at";

impl MessageStore {
    /// Prepares every statement, each naming its table in `keyspace` (which must hold the
    /// schema, [`crate::schema::MIGRATIONS`]): the session has no keyspace of its own.
    /// `timeout` bounds each request, so a slow store answers "unavailable" instead of hanging.
    pub async fn prepare(
        session: Arc<Session>,
        keyspace: &Keyspace,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let ks = keyspace.as_str();
        let reads = crate::cql::read_profile(&session);
        let prepare = async |cql: String| prepared(&session, &reads, timeout, &cql).await;
        let key = "channel_id = ? AND bucket = ? AND message_id = ?";
        let s = Statements {
            insert: prepare(format!(
                "INSERT INTO {ks}.messages (channel_id, bucket, message_id, author_id, content) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            insert_bucket: prepare(format!(
                "INSERT INTO {ks}.channel_buckets (channel_id, bucket) VALUES (?, ?)"
            ))
            .await?,
            set_last: prepare(format!(
                "UPDATE {ks}.channel_last_message USING TIMESTAMP ? SET message_id = ? \
                 WHERE channel_id = ?"
            ))
            .await?,
            edit: prepare(format!(
                "UPDATE {ks}.messages USING TIMESTAMP ? \
                 SET author_id = ?, content = ?, edited_at = ? WHERE {key}"
            ))
            .await?,
            delete: prepare(format!(
                "DELETE FROM {ks}.messages USING TIMESTAMP ? WHERE {key}"
            ))
            .await?,
            record_deletion: prepare(format!(
                "INSERT INTO {ks}.message_deletions \
                 (channel_id, bucket, message_id, deleted_at) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            deletion: prepare(format!(
                "SELECT message_id FROM {ks}.message_deletions WHERE {key}"
            ))
            .await?,
            newest_cell: prepare(format!(
                "SELECT writetime(content) FROM {ks}.messages WHERE {key}"
            ))
            .await?,
            get: prepare(format!("SELECT {COLUMNS} FROM {ks}.messages WHERE {key}")).await?,
            older: prepare(format!(
                "SELECT {COLUMNS} FROM {ks}.messages WHERE channel_id = ? AND bucket = ? \
                 AND message_id < ? LIMIT ?"
            ))
            .await?,
            newer: prepare(format!(
                "SELECT {COLUMNS} FROM {ks}.messages WHERE channel_id = ? AND bucket = ? \
                 AND message_id > ? ORDER BY message_id ASC LIMIT ?"
            ))
            .await?,
            buckets_down: prepare(format!(
                "SELECT bucket FROM {ks}.channel_buckets WHERE channel_id = ? AND bucket <= ?"
            ))
            .await?,
            buckets_up: prepare(format!(
                "SELECT bucket FROM {ks}.channel_buckets WHERE channel_id = ? AND bucket >= ? \
                 ORDER BY bucket ASC"
            ))
            .await?,
            last_message: prepare(format!(
                "SELECT message_id FROM {ks}.channel_last_message WHERE channel_id = ?"
            ))
            .await?,
            mark_read: prepare(format!(
                "UPDATE {ks}.read_states USING TIMESTAMP ? SET message_id = ? \
                 WHERE user_id = ? AND channel_id = ?"
            ))
            .await?,
            read_states: prepare(format!(
                "SELECT channel_id, message_id FROM {ks}.read_states WHERE user_id = ?"
            ))
            .await?,
            unread_rows: prepare(format!(
                "SELECT message_id, author_id FROM {ks}.messages \
                 WHERE channel_id = ? AND bucket = ? AND message_id > ? \
                 ORDER BY message_id ASC LIMIT ?"
            ))
            .await?,
            stored_through: prepare(format!(
                "SELECT sequence FROM {ks}.stream_watermarks WHERE stream = ?"
            ))
            .await?,
            record_stored_through: prepare(format!(
                "UPDATE {ks}.stream_watermarks SET sequence = ? WHERE stream = ?"
            ))
            .await?,
        };
        // Boxed: each is a long chain of awaits, and inline they make every caller's future
        // large.
        let c = Box::pin(conversation::Statements::prepare(&session, ks, timeout)).await?;
        let p = Box::pin(pins::Statements::prepare(&session, ks, timeout)).await?;
        let m = Box::pin(mentions::Statements::prepare(&session, ks, &reads, timeout)).await?;
        let sides = SideTables {
            mentions: Box::pin(side::SideTable::prepare(&session, ks, &reads, timeout)).await?,
            attachments: Box::pin(side::SideTable::prepare(&session, ks, &reads, timeout)).await?,
            embeds: Box::pin(side::SideTable::prepare(&session, ks, &reads, timeout)).await?,
            calls: Box::pin(side::SideTable::prepare(&session, ks, &reads, timeout)).await?,
        };
        Ok(Self {
            session,
            keyspace: ks.to_owned(),
            s: Arc::new(s),
            c: Arc::new(c),
            p: Arc::new(p),
            sides: Arc::new(sides),
            m: Arc::new(m),
            known_buckets: Arc::default(),
        })
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}
