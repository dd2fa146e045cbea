//! Writes of messages: the persister's, each at the moment the chat stream stored its event.

use std::collections::{HashMap, HashSet};

use futures::FutureExt;
use proto::Snowflake;
use proto::api::messages::Message;
use scylla::serialize::row::SerializeRow;
use scylla::value::{CqlTimestamp, MaybeUnset};

use super::{MessageStore, StoreError, failed};
use crate::schema::{bucket_of, id_timestamp, key_of};

/// The most rows in one batch, and their content's bytes at most: a batch over Cassandra's
/// `batch_size_warn_threshold` (5 KiB) is logged by the server every time.
const ROWS_PER_BATCH: usize = 32;
const BATCH_BYTES: usize = 4 * 1024;

/// Partitions known to be listed in `channel_buckets` already, forgotten past this many.
const KNOWN_BUCKETS: usize = 100_000;

impl MessageStore {
    /// Stores a new message, the bucket it opens and the channel's newest id. `at` is the write
    /// timestamp in microseconds: when the chat stream stored the event. Idempotent.
    pub async fn insert(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        self.insert_many(&[(message, at)]).await
    }

    /// Stores new messages, each with its write timestamp, in as few writes as the tables allow:
    /// the rows of each partition (channel and bucket) in unlogged batches, which the store applies
    /// as one mutation; each channel's newest id once, in the batch of that message; and a bucket
    /// in the list of a channel's buckets only the first time this store sees it (the list changes
    /// every ten days per channel, not with every message). Idempotent.
    pub async fn insert_many(&self, messages: &[(&Message, i64)]) -> Result<(), StoreError> {
        let mut partitions: HashMap<(i64, i32), Vec<(&Message, i64)>> = HashMap::new();
        let mut newest: HashMap<i64, Snowflake> = HashMap::new();
        for &(message, at) in messages {
            let channel = message.channel_id.as_i64();
            partitions
                .entry((channel, bucket_of(message.id)))
                .or_default()
                .push((message, at));
            let id = newest.entry(channel).or_insert(message.id);
            *id = (*id).max(message.id);
        }
        let new_buckets: Vec<(i64, i32)> = {
            let known = self.known_buckets();
            partitions
                .keys()
                .filter(|key| !known.contains(key))
                .copied()
                .collect()
        };
        let mut writes = Vec::new();
        for (&(channel, _), rows) in &partitions {
            let channel_newest = newest[&channel];
            for batch in batches(rows) {
                // The channel's newest id rides in the batch that holds that message: one
                // request for both, where a quiet channel's message was two.
                let carried = batch.iter().any(|(m, _)| m.id == channel_newest);
                writes.push(
                    self.write_rows(batch, carried.then_some(channel_newest))
                        .boxed(),
                );
            }
        }
        for &bucket in &new_buckets {
            writes.push(
                async move {
                    self.session
                        .execute_unpaged(&self.s.insert_bucket, bucket)
                        .await
                        .map(|_| ())
                }
                .boxed(),
            );
        }
        futures::future::try_join_all(writes)
            .await
            .map_err(failed)?;
        let mut known = self.known_buckets();
        if known.len() + new_buckets.len() > KNOWN_BUCKETS {
            known.clear();
        }
        known.extend(new_buckets);
        Ok(())
    }

    /// Whether a new message keeps anything beside its row: a reply's preview, mentions, files,
    /// embeds or flags, a call. When it does not, [`Self::insert_sides`] writes nothing, and a
    /// caller writing many messages need not make (and move) a future for it.
    pub fn has_sides(message: &Message) -> bool {
        message.referenced_message.is_some()
            || message.mention_everyone
            || !message.mentions.is_empty()
            || !message.mention_roles.is_empty()
            || !message.attachments.is_empty()
            || !message.embeds.is_empty()
            || message.flags != 0
            || message.call.is_some()
    }

    /// Writes what a new message keeps beside its row (see [`Self::has_sides`]), at stream time
    /// `at`. Idempotent.
    pub async fn insert_sides(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        tokio::try_join!(
            self.insert_reply(message, at),
            self.write_mentions(message, false, at),
            self.insert_attachments(message, at),
            self.write_embeds(message, false, at),
            self.write_call(message, at)
        )
        .map(|_| ())
    }

    /// One partition's rows in one unlogged batch, with the channel's `newest` id when it is
    /// one of them (a second partition, of `channel_last_message`, in the same request).
    async fn write_rows(
        &self,
        rows: &[(&Message, i64)],
        newest: Option<Snowflake>,
    ) -> Result<(), scylla::errors::ExecutionError> {
        if let ([(message, at)], None) = (rows, newest) {
            return self
                .session
                .execute_unpaged(&self.s.insert, row(message, *at))
                .await
                .map(|_| ());
        }
        let mut batch = crate::cql::unlogged(&self.s.insert, rows.len());
        let mut values: Vec<Box<dyn SerializeRow + Send + Sync + '_>> = rows
            .iter()
            .map(|&(message, at)| Box::new(row(message, at)) as Box<dyn SerializeRow + Send + Sync>)
            .collect();
        if let (Some(id), Some((message, _))) = (newest, rows.first()) {
            batch.append_statement(self.s.set_last.clone());
            values.push(Box::new((
                id_timestamp(id),
                id.as_i64(),
                message.channel_id.as_i64(),
            )));
        }
        self.session.batch(&batch, values).await.map(|_| ())
    }

    fn known_buckets(&self) -> std::sync::MutexGuard<'_, HashSet<(i64, i32)>> {
        self.known_buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies an update at stream time `at`: the whole message, with its content and, for an
    /// edit, its edit time. An update that is not an edit (media's processing, previews removed)
    /// leaves the edit time as it is (unset, never NULL: no tombstone).
    pub async fn edit(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let key = key_of(message.channel_id, message.id);
        let edited_at = match message.edited_at.and_then(|t| i64::try_from(t).ok()) {
            Some(t) => MaybeUnset::Set(CqlTimestamp(t)),
            None => MaybeUnset::Unset,
        };
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
}

/// A message's row: channel, bucket, id, author, content, at `at`.
fn row(message: &Message, at: i64) -> (i64, i32, i64, i64, &str, i64) {
    (
        message.channel_id.as_i64(),
        bucket_of(message.id),
        message.id.as_i64(),
        message.author_id.as_i64(),
        &message.content,
        at,
    )
}

/// One partition's rows cut into batches of at most [`ROWS_PER_BATCH`] rows and about
/// [`BATCH_BYTES`] of content.
fn batches<'a, 'm>(rows: &'a [(&'m Message, i64)]) -> Vec<&'a [(&'m Message, i64)]> {
    crate::cql::cut(rows, ROWS_PER_BATCH, BATCH_BYTES, |(message, _)| {
        message.content.len() + 64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, content: &str) -> Message {
        Message {
            id: Snowflake::from_u64(id),
            channel_id: Snowflake::from_u64(1),
            author_id: Snowflake::from_u64(2),
            content: content.to_owned(),
            nonce: None,
            edited_at: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_message_has_no_sides_and_each_kept_part_makes_one() {
        assert!(!MessageStore::has_sides(&message(1, "hi")));
        let with = |change: fn(&mut Message)| {
            let mut m = message(1, "hi");
            change(&mut m);
            MessageStore::has_sides(&m)
        };
        assert!(with(|m| m.mention_everyone = true));
        assert!(with(|m| m.mentions = vec![Default::default()]));
        assert!(with(|m| m.mention_roles = vec![Snowflake::from_u64(3)]));
        assert!(with(|m| m.flags = Message::SUPPRESS_EMBEDS));
        assert!(with(|m| m.call = Some(Box::default())));
    }

    #[test]
    fn a_partitions_rows_go_in_batches_of_bounded_rows_and_bytes() {
        let small: Vec<Message> = (0..70).map(|i| message(i, "hi")).collect();
        let rows: Vec<(&Message, i64)> = small.iter().map(|m| (m, 0)).collect();
        let sizes: Vec<usize> = batches(&rows).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [32, 32, 6]);

        let big: Vec<Message> = (0..5).map(|i| message(i, &"x".repeat(1_500))).collect();
        let rows: Vec<(&Message, i64)> = big.iter().map(|m| (m, 0)).collect();
        let sizes: Vec<usize> = batches(&rows).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);

        let huge = [message(1, &"x".repeat(10_000))];
        let rows: Vec<(&Message, i64)> = huge.iter().map(|m| (m, 0)).collect();
        assert_eq!(
            batches(&rows).len(),
            1,
            "a row larger than a batch still goes"
        );
        assert!(batches(&[]).is_empty());
    }
}
