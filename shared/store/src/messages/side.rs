//! A message's side tables: rows kept beside its own in `messages`, partitioned and clustered like
//! it (`(channel_id, bucket)`, `message_id`), so a page reads them with one range read per bucket
//! it touches, and a message without anything to keep there has no row.
//!
//! Every side table is used the same way, which [`SideTable`] does once: the persister inserts a
//! message's row at the stream's timestamp of its event (so a redelivered event writes the same
//! row, and the store orders a message's writes as the stream did) and deletes it at the
//! timestamp of the message's delete; history reads a page's rows over the id ranges of its
//! buckets, keeps those of the messages it asked for, and gives each message what its row holds.
//! What is particular to a table is a [`Side`]: its name and columns, its row, what a row holds,
//! and which messages carry their own already. When to write (which messages have a row, whether
//! an update rewrites it) stays with each table's own methods, where it differs.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::messages::Message;
use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;

use super::conversation::ranges;
use super::{MessageStore, StoreError, failed, prepared};
use crate::schema::key_of;

/// One side table: what differs between them.
pub(crate) trait Side: Sized + Send + Sync + 'static {
    /// The table's name.
    const TABLE: &'static str;
    /// Its columns besides the key, in the order an insert binds them (before its timestamp) and
    /// a page's read gives them (after `message_id`).
    const COLUMNS: &'static [&'static str];
    /// A row as a page reads it: `message_id`, then [`Self::COLUMNS`].
    type Row: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata> + Send + 'static;
    /// What a message's row holds, as history hands it out.
    type Stored: Send;

    /// The table's statements in `store`.
    fn table(store: &MessageStore) -> &SideTable<Self>;
    /// A row's message id.
    fn id(row: &Self::Row) -> i64;
    /// What a row of `channel` holds; `None` when it cannot be read (said in the log).
    fn stored(channel: Snowflake, row: Self::Row) -> Option<Self::Stored>;
    /// Whether a page's message carries its own already (it came from the stream's unwritten
    /// events, which may be newer than the store's row), so its row is not read. `fresh`: the
    /// messages those events created or updated.
    fn carried(message: &Message, fresh: &HashSet<Snowflake>) -> bool;
    /// Gives a message what its row holds.
    fn dress(message: &mut Message, stored: Self::Stored);
}

/// The statements of a side table: prepared once, with the store.
pub(crate) struct SideTable<S> {
    session: Arc<Session>,
    insert: PreparedStatement,
    read: PreparedStatement,
    delete: PreparedStatement,
    side: PhantomData<fn() -> S>,
}

/// A side table's statements, as text: insert, a page's read, delete.
fn statements(ks: &str, table: &str, columns: &[&str]) -> [String; 3] {
    let marks = vec!["?"; columns.len()].join(", ");
    let columns = columns.join(", ");
    [
        format!(
            "INSERT INTO {ks}.{table} (channel_id, bucket, message_id, {columns}) \
             VALUES (?, ?, ?, {marks}) USING TIMESTAMP ?"
        ),
        format!(
            "SELECT message_id, {columns} FROM {ks}.{table} WHERE channel_id = ? AND bucket = ? \
             AND message_id >= ? AND message_id <= ?"
        ),
        format!(
            "DELETE FROM {ks}.{table} USING TIMESTAMP ? WHERE channel_id = ? AND bucket = ? \
             AND message_id = ?"
        ),
    ]
}

impl<S: Side> SideTable<S> {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        ks: &str,
        reads: &ExecutionProfileHandle,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let [insert, read, delete] = statements(ks, S::TABLE, S::COLUMNS);
        Ok(Self {
            session: Arc::clone(session),
            insert: prepared(session, reads, timeout, &insert).await?,
            read: prepared(session, reads, timeout, &read).await?,
            delete: prepared(session, reads, timeout, &delete).await?,
            side: PhantomData,
        })
    }

    /// Writes a message's row: `values` are its key (`channel_id`, `bucket`, `message_id`), then
    /// [`Side::COLUMNS`], then the stream time the row is written at. Idempotent.
    pub(super) async fn insert(&self, values: impl SerializeRow) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.insert, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Deletes a message's row (at stream time `at`). Idempotent.
    pub(super) async fn delete(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let (channel, bucket, id) = key_of(channel, id);
        self.session
            .execute_unpaged(&self.delete, (at, channel, bucket, id))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// What the rows of the messages among `ids` that have one hold, by message: one range read
    /// per bucket, all at once.
    async fn read(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, S::Stored>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.read.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<S::Row>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for row in rows {
                let id = Snowflake::from_i64(S::id(&row));
                if !wanted.contains(&id) {
                    continue;
                }
                if let Some(stored) = S::stored(channel, row) {
                    out.insert(id, stored);
                }
            }
        }
        Ok(out)
    }
}

impl MessageStore {
    /// What side table `S` holds for the messages among `ids` that have a row there, by message.
    pub(crate) async fn side<S: Side>(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, S::Stored>, StoreError> {
        S::table(self).read(channel, ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_tables_statements_bind_its_key_columns_and_timestamp() {
        let [insert, read, delete] = statements("ks", "message_embeds", &["flags", "embeds"]);
        assert_eq!(
            insert,
            "INSERT INTO ks.message_embeds (channel_id, bucket, message_id, flags, embeds) \
             VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        );
        assert_eq!(
            read,
            "SELECT message_id, flags, embeds FROM ks.message_embeds WHERE channel_id = ? \
             AND bucket = ? AND message_id >= ? AND message_id <= ?"
        );
        assert_eq!(
            delete,
            "DELETE FROM ks.message_embeds USING TIMESTAMP ? WHERE channel_id = ? AND bucket = ? \
             AND message_id = ?"
        );
        let [insert, ..] = statements("ks", "message_attachments", &["attachments"]);
        assert_eq!(
            insert,
            "INSERT INTO ks.message_attachments (channel_id, bucket, message_id, attachments) \
             VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
        );
    }
}
