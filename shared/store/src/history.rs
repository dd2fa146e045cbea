//! Message history in the CQL store: the schema, the time buckets, and every read and write of it.
//!
//! The persister is the only writer of messages; edges read history and write read states. Both
//! go through [`MessageStore`], so the tables' layout is known in this one file.
//!
//! The rules that keep the store healthy (docs/ARCHITECTURE.md has the reasons):
//! - Messages are partitioned by `(channel_id, bucket)`, the bucket being ten days of the message
//!   id's timestamp, so no partition grows without bound; `channel_buckets` lists the buckets that
//!   hold anything, so a reader skips empty ones.
//! - A write sets only the columns it means to set: no NULLs, because a NULL is a tombstone.
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
//! - Read markers and each channel's last message id are written with a timestamp derived from
//!   the message id ([`id_timestamp`]), so the store keeps the largest id without a read.
//!
//! The `deleted` column of the first schema version is unused: deletes remove the row.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use crate::cql::Migration;
use proto::Snowflake;
use proto::api::messages::Message;
use proto::snowflake::NATTER_EPOCH_MS;

/// The CQL schema, in order. A new version is a new file and a new entry; applied ones never change.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "messages",
        cql: include_str!("../schema/0001_messages.cql"),
    },
    Migration {
        version: 2,
        name: "read_state_and_deletions",
        cql: include_str!("../schema/0002_read_state_and_deletions.cql"),
    },
];

/// Ten days of message ids per partition, as Discord chose: big enough that a busy channel's
/// recent history is one partition read, small enough that no partition grows without bound.
pub const BUCKET_MS: u64 = 10 * 24 * 60 * 60 * 1000;

/// The most messages one history page holds.
pub const MAX_PAGE: usize = 100;

/// The unread count stops here: READY says "100 or more" rather than counting a year of messages.
pub const MAX_UNREAD: usize = 100;

/// The bucket a message id falls in.
pub fn bucket_of(id: Snowflake) -> i32 {
    let ms = id.unix_ms().saturating_sub(NATTER_EPOCH_MS);
    i32::try_from(ms / BUCKET_MS).unwrap_or(i32::MAX)
}

/// A write timestamp (microseconds) that grows with the message id: the id's millisecond and,
/// below it, its worker and sequence scaled into the thousand microseconds of that millisecond.
/// Ties (two ids in the same microsecond slot) go to the larger value, which CQL picks on equal
/// timestamps, so the largest id always wins.
pub fn id_timestamp(id: Snowflake) -> i64 {
    let low = id.get() & ((1 << 22) - 1);
    let micros = id.unix_ms() * 1000 + ((low * 1000) >> 22);
    i64::try_from(micros).unwrap_or(i64::MAX)
}

/// Which messages a history page holds, relative to a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest messages.
    Latest,
    /// Messages older than the id.
    Before(Snowflake),
    /// Messages newer than the id: the ones right after it.
    After(Snowflake),
    /// The id itself (if it exists) and the messages on both sides of it.
    Around(Snowflake),
}

#[derive(Debug, thiserror::Error)]
#[error("CQL store: {0}")]
pub struct StoreError(String);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// A stored message, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    s: Arc<Statements>,
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
}

const COLUMNS: &str = "message_id, author_id, content, edited_at";

impl MessageStore {
    /// Prepares every statement. The session's keyspace must hold the schema ([`MIGRATIONS`]).
    /// `timeout` bounds each request, so a slow store answers "unavailable" instead of hanging.
    pub async fn prepare(session: Arc<Session>, timeout: Duration) -> Result<Self, StoreError> {
        let prepare = |cql: String| {
            let session = Arc::clone(&session);
            async move {
                let mut statement = session.prepare(cql).await.map_err(failed)?;
                statement.set_request_timeout(Some(timeout));
                Ok::<_, StoreError>(statement)
            }
        };
        let key = "channel_id = ? AND bucket = ? AND message_id = ?";
        let s = Statements {
            insert: prepare(
                "INSERT INTO messages (channel_id, bucket, message_id, author_id, content) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
                    .into(),
            )
            .await?,
            insert_bucket: prepare(
                "INSERT INTO channel_buckets (channel_id, bucket) VALUES (?, ?)".into(),
            )
            .await?,
            set_last: prepare(
                "UPDATE channel_last_message USING TIMESTAMP ? SET message_id = ? \
                 WHERE channel_id = ?"
                    .into(),
            )
            .await?,
            edit: prepare(format!(
                "UPDATE messages USING TIMESTAMP ? SET author_id = ?, content = ?, edited_at = ? \
                 WHERE {key}"
            ))
            .await?,
            delete: prepare(format!(
                "DELETE FROM messages USING TIMESTAMP ? WHERE {key}"
            ))
            .await?,
            record_deletion: prepare(
                "INSERT INTO message_deletions (channel_id, bucket, message_id, deleted_at) \
                 VALUES (?, ?, ?, ?)"
                    .into(),
            )
            .await?,
            deletion: prepare(format!(
                "SELECT message_id FROM message_deletions WHERE {key}"
            ))
            .await?,
            newest_cell: prepare(format!(
                "SELECT writetime(content) FROM messages WHERE {key}"
            ))
            .await?,
            get: prepare(format!("SELECT {COLUMNS} FROM messages WHERE {key}")).await?,
            older: prepare(format!(
                "SELECT {COLUMNS} FROM messages WHERE channel_id = ? AND bucket = ? \
                 AND message_id < ? LIMIT ?"
            ))
            .await?,
            newer: prepare(format!(
                "SELECT {COLUMNS} FROM messages WHERE channel_id = ? AND bucket = ? \
                 AND message_id > ? ORDER BY message_id ASC LIMIT ?"
            ))
            .await?,
            buckets_down: prepare(
                "SELECT bucket FROM channel_buckets WHERE channel_id = ? AND bucket <= ?".into(),
            )
            .await?,
            buckets_up: prepare(
                "SELECT bucket FROM channel_buckets WHERE channel_id = ? AND bucket >= ? \
                 ORDER BY bucket ASC"
                    .into(),
            )
            .await?,
            last_message: prepare(
                "SELECT message_id FROM channel_last_message WHERE channel_id = ?".into(),
            )
            .await?,
            mark_read: prepare(
                "UPDATE read_states USING TIMESTAMP ? SET message_id = ? \
                 WHERE user_id = ? AND channel_id = ?"
                    .into(),
            )
            .await?,
            read_states: prepare(
                "SELECT channel_id, message_id FROM read_states WHERE user_id = ?".into(),
            )
            .await?,
            unread_rows: prepare(
                "SELECT message_id, author_id FROM messages WHERE channel_id = ? AND bucket = ? \
                 AND message_id > ? ORDER BY message_id ASC LIMIT ?"
                    .into(),
            )
            .await?,
        };
        Ok(Self {
            session,
            s: Arc::new(s),
        })
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    // ---- writes (the persister) ----

    /// Stores a new message, the bucket it opens and the channel's newest id. `at` is the write
    /// timestamp in microseconds: when the chat stream stored the event. Idempotent.
    pub async fn insert(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let channel = message.channel_id.as_i64();
        let bucket = bucket_of(message.id);
        let id = message.id.as_i64();
        let row = self.session.execute_unpaged(
            &self.s.insert,
            (
                channel,
                bucket,
                id,
                message.author_id.as_i64(),
                &message.content,
                at,
            ),
        );
        let bucket_row = self
            .session
            .execute_unpaged(&self.s.insert_bucket, (channel, bucket));
        let last = self
            .session
            .execute_unpaged(&self.s.set_last, (id_timestamp(message.id), id, channel));
        tokio::try_join!(row, bucket_row, last).map_err(failed)?;
        Ok(())
    }

    /// Applies an edit at stream time `at`: the whole message, with its new content and edit time.
    pub async fn edit(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let key = key_of(message.channel_id, message.id);
        let edited_at = CqlTimestamp(
            message
                .edited_at
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(at / 1000),
        );
        let values = (
            at,
            message.author_id.as_i64(),
            &message.content,
            edited_at,
            key.0,
            key.1,
            key.2,
        );
        self.session
            .execute_unpaged(&self.s.edit, values)
            .await
            .map_err(failed)?;
        let deleted = self
            .session
            .execute_unpaged(&self.s.deletion, key)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(i64,)>()
            .map_err(failed)?
            .is_some();
        if deleted {
            tracing::info!(channel = %message.channel_id, id = %message.id,
                           "an edit raced a delete; the message stays deleted");
            self.session
                .execute_unpaged(&self.s.delete, (at, key.0, key.1, key.2))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Deletes a message at stream time `at`, for good: a later edit cannot bring it back.
    pub async fn delete(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let key = key_of(channel, id);
        self.session
            .execute_unpaged(
                &self.s.record_deletion,
                (key.0, key.1, key.2, CqlTimestamp(at / 1000)),
            )
            .await
            .map_err(failed)?;
        self.session
            .execute_unpaged(&self.s.delete, (at, key.0, key.1, key.2))
            .await
            .map_err(failed)?;
        // An edit written after this delete in stream order survives the tombstone: remove it.
        let newer = self
            .session
            .execute_unpaged(&self.s.newest_cell, key)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(failed)?
            .and_then(|(at,)| at);
        if let Some(newer) = newer {
            tracing::info!(%channel, %id, "a delete raced an edit; removing the edit");
            self.session
                .execute_unpaged(&self.s.delete, (newer, key.0, key.1, key.2))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    // ---- reads (the edge) ----

    /// One message, if it exists.
    pub async fn get(
        &self,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let row = self
            .session
            .execute_unpaged(&self.s.get, key_of(channel, id))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<Row>()
            .map_err(failed)?;
        Ok(row.and_then(stored))
    }

    /// Up to `limit` messages of a page, newest first.
    pub async fn page(
        &self,
        channel: Snowflake,
        page: Page,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        match page {
            Page::Latest => self.older(channel, None, limit).await,
            Page::Before(id) => self.older(channel, Some(id), limit).await,
            Page::After(id) => {
                let mut newer = self.newer(channel, id, limit).await?;
                newer.reverse();
                Ok(newer)
            }
            Page::Around(id) => {
                let before = limit / 2;
                let (mut after, this, older) = tokio::try_join!(
                    self.newer(channel, id, limit - before - 1),
                    self.get(channel, id),
                    self.older(channel, Some(id), before),
                )?;
                after.reverse();
                after.extend(this);
                after.extend(older);
                Ok(after)
            }
        }
    }

    /// Messages older than `before` (or the newest), newest first, walking down the buckets that
    /// hold any.
    async fn older(
        &self,
        channel: Snowflake,
        before: Option<Snowflake>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let top = before.map_or(i32::MAX, bucket_of);
        let bound = before.map_or(i64::MAX, Snowflake::as_i64);
        for bucket in self.buckets(&self.s.buckets_down, channel, top).await? {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let rows = self
                .rows(&self.s.older, (channel.as_i64(), bucket, bound, want))
                .await?;
            out.extend(rows);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Messages newer than `id`, oldest first, walking up the buckets that hold any.
    async fn newer(
        &self,
        channel: Snowflake,
        id: Snowflake,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for bucket in self
            .buckets(&self.s.buckets_up, channel, bucket_of(id))
            .await?
        {
            let want = i32::try_from(limit - out.len()).unwrap_or(i32::MAX);
            let rows = self
                .rows(&self.s.newer, (channel.as_i64(), bucket, id.as_i64(), want))
                .await?;
            out.extend(rows);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    async fn buckets(
        &self,
        statement: &PreparedStatement,
        channel: Snowflake,
        from: i32,
    ) -> Result<Vec<i32>, StoreError> {
        self.session
            .execute_unpaged(statement, (channel.as_i64(), from))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .rows::<(i32,)>()
            .map_err(failed)?
            .map(|row| row.map(|(b,)| b).map_err(failed))
            .collect()
    }

    async fn rows(
        &self,
        statement: &PreparedStatement,
        values: (i64, i32, i64, i32),
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?;
        let rows = result.rows::<Row>().map_err(failed)?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(stored(row.map_err(failed)?));
        }
        Ok(out)
    }

    /// Each channel's newest message id (channels with none are left out).
    pub async fn last_messages(
        &self,
        channels: &[Snowflake],
    ) -> Result<HashMap<Snowflake, Snowflake>, StoreError> {
        let reads = channels.iter().map(|&channel| async move {
            let row = self
                .session
                .execute_unpaged(&self.s.last_message, (channel.as_i64(),))
                .await
                .map_err(failed)?
                .into_rows_result()
                .map_err(failed)?
                .maybe_first_row::<(Option<i64>,)>()
                .map_err(failed)?;
            Ok::<_, StoreError>(
                row.and_then(|(id,)| id)
                    .map(|id| (channel, Snowflake::from_i64(id))),
            )
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Moves `user`'s read marker in `channel` forward to `id` (never back).
    pub async fn mark_read(
        &self,
        user: Snowflake,
        channel: Snowflake,
        id: Snowflake,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.s.mark_read,
                (
                    id_timestamp(id),
                    id.as_i64(),
                    user.as_i64(),
                    channel.as_i64(),
                ),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Where `user` has read up to, per channel.
    pub async fn read_states(
        &self,
        user: Snowflake,
    ) -> Result<HashMap<Snowflake, Snowflake>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.s.read_states, (user.as_i64(),))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?;
        result
            .rows::<(i64, Option<i64>)>()
            .map_err(failed)?
            .filter_map(|row| match row {
                Ok((channel, Some(id))) => {
                    Some(Ok((Snowflake::from_i64(channel), Snowflake::from_i64(id))))
                }
                Ok((_, None)) => None,
                Err(e) => Some(Err(failed(e))),
            })
            .collect()
    }

    /// How many messages by others follow `after` in `channel`, counting to [`MAX_UNREAD`].
    pub async fn unread_count(
        &self,
        channel: Snowflake,
        reader: Snowflake,
        after: Snowflake,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for bucket in self
            .buckets(&self.s.buckets_up, channel, bucket_of(after))
            .await?
        {
            let result = self
                .session
                .execute_unpaged(
                    &self.s.unread_rows,
                    (
                        channel.as_i64(),
                        bucket,
                        after.as_i64(),
                        (MAX_UNREAD * 2) as i32,
                    ),
                )
                .await
                .map_err(failed)?
                .into_rows_result()
                .map_err(failed)?;
            for row in result.rows::<(i64, Option<i64>)>().map_err(failed)? {
                let (_, author) = row.map_err(failed)?;
                if author.is_some_and(|a| a != reader.as_i64()) {
                    count += 1;
                }
            }
            if count >= MAX_UNREAD {
                return Ok(MAX_UNREAD);
            }
        }
        Ok(count)
    }
}

fn key_of(channel: Snowflake, id: Snowflake) -> (i64, i32, i64) {
    (channel.as_i64(), bucket_of(id), id.as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ten_days_of_ids() {
        let start = Snowflake::first_at(NATTER_EPOCH_MS);
        assert_eq!(bucket_of(start), 0);
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + BUCKET_MS - 1)),
            0
        );
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + BUCKET_MS)),
            1
        );
        assert_eq!(
            bucket_of(Snowflake::first_at(NATTER_EPOCH_MS + 25 * BUCKET_MS + 7)),
            25
        );
    }

    #[test]
    fn id_timestamps_never_decrease_as_ids_grow() {
        let ms = NATTER_EPOCH_MS + 123_456_789;
        let mut previous = i64::MIN;
        for (worker, sequence) in [(0, 0), (0, 1), (0, 4095), (1, 0), (512, 7), (1023, 4095)] {
            let at = id_timestamp(Snowflake::from_parts(ms, worker, sequence));
            assert!(at >= previous);
            assert!(at >= (ms * 1000) as i64 && at < ((ms + 1) * 1000) as i64);
            previous = at;
        }
        assert!(id_timestamp(Snowflake::from_parts(ms + 1, 0, 0)) > previous);
    }
}
