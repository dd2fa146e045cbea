//! Replies and reactions: the persister's writes (each at the stream's timestamp of its event) and
//! the reads that dress a page of messages (replies' previews, reaction counts, the reader's own
//! reactions), each one range read per partition the page touches.
//!
//! Reactions keep one row per reactor (`reactions`), the truth: writing a row twice or deleting
//! it twice changes nothing, so JetStream's redeliveries cannot change a count, and the key lets a
//! person react once per emoji. Counts (`reaction_counts`) are derived from those rows: after
//! writing, the persister counts the rows of each (message, emoji) it touched, once per chunk, and
//! writes the count with the time the count began as its write timestamp. Every recount starts
//! after its own rows were written, so the recount that started last saw every row written before
//! any recount began, and its count, having the largest timestamp, is the one kept: the count is
//! exact once the writers are done, however many persisters wrote at once. (Timestamps come from
//! the persisters' clocks: keep them synchronised, as Cassandra requires anyway.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::messages::{Message, MessageType, ReferencedMessage};
use proto::events::ReactionEvent;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::{MessageStore, StoreError, failed, prepared};
use crate::schema::bucket_of;

pub(super) struct Statements {
    insert_reply: PreparedStatement,
    replies: PreparedStatement,
    react: PreparedStatement,
    react_user: PreparedStatement,
    unreact: PreparedStatement,
    unreact_user: PreparedStatement,
    reactors_all: PreparedStatement,
    clear: PreparedStatement,
    count: PreparedStatement,
    set_count: PreparedStatement,
    drop_count: PreparedStatement,
    clear_counts: PreparedStatement,
    counts: PreparedStatement,
    mine: PreparedStatement,
    reacted: PreparedStatement,
    reactors: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        ks: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let reads = &crate::cql::read_profile(session);
        let prepare = async move |cql: String| prepared(session, reads, timeout, &cql).await;
        Ok(Self {
            insert_reply: prepare(format!(
                "INSERT INTO {ks}.message_replies (channel_id, bucket, message_id, reply_to, \
                 reply_author, reply_content, kind) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 USING TIMESTAMP ?"
            ))
            .await?,
            replies: prepare(format!(
                "SELECT message_id, reply_to, reply_author, reply_content, kind \
                 FROM {ks}.message_replies \
                 WHERE channel_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ?"
            ))
            .await?,
            react: prepare(format!(
                "INSERT INTO {ks}.reactions (channel_id, message_id, emoji, user_id) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            react_user: prepare(format!(
                "INSERT INTO {ks}.user_reactions (user_id, channel_id, bucket, message_id, emoji) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            unreact: prepare(format!(
                "DELETE FROM {ks}.reactions USING TIMESTAMP ? WHERE channel_id = ? \
                 AND message_id = ? AND emoji = ? AND user_id = ?"
            ))
            .await?,
            unreact_user: prepare(format!(
                "DELETE FROM {ks}.user_reactions USING TIMESTAMP ? WHERE user_id = ? \
                 AND channel_id = ? AND bucket = ? AND message_id = ? AND emoji = ?"
            ))
            .await?,
            reactors_all: prepare(format!(
                "SELECT emoji, user_id FROM {ks}.reactions \
                 WHERE channel_id = ? AND message_id = ?"
            ))
            .await?,
            clear: prepare(format!(
                "DELETE FROM {ks}.reactions USING TIMESTAMP ? \
                 WHERE channel_id = ? AND message_id = ?"
            ))
            .await?,
            count: prepare(format!(
                "SELECT COUNT(*) FROM {ks}.reactions WHERE channel_id = ? AND message_id = ? \
                 AND emoji = ?"
            ))
            .await?,
            set_count: prepare(format!(
                "INSERT INTO {ks}.reaction_counts (channel_id, bucket, message_id, emoji, count) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            drop_count: prepare(format!(
                "DELETE FROM {ks}.reaction_counts USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ? AND emoji = ?"
            ))
            .await?,
            clear_counts: prepare(format!(
                "DELETE FROM {ks}.reaction_counts USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ?"
            ))
            .await?,
            counts: prepare(format!(
                "SELECT message_id, emoji, count FROM {ks}.reaction_counts WHERE channel_id = ? \
                 AND bucket = ? AND message_id >= ? AND message_id <= ?"
            ))
            .await?,
            mine: prepare(format!(
                "SELECT message_id, emoji FROM {ks}.user_reactions WHERE user_id = ? \
                 AND channel_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ?"
            ))
            .await?,
            reacted: prepare(format!(
                "SELECT user_id FROM {ks}.reactions WHERE channel_id = ? AND message_id = ? \
                 AND emoji = ? AND user_id = ?"
            ))
            .await?,
            reactors: prepare(format!(
                "SELECT user_id FROM {ks}.reactions WHERE channel_id = ? AND message_id = ? \
                 AND emoji = ? AND user_id > ? LIMIT ?"
            ))
            .await?,
        })
    }
}

/// A (message, emoji) whose count must be derived again.
pub type Touched = (Snowflake, Snowflake, String);

/// The ids of a page grouped by partition: (bucket, lowest id, highest id).
pub(super) fn ranges(ids: &[Snowflake]) -> Vec<(i32, i64, i64)> {
    let mut by_bucket: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for id in ids {
        let id64 = id.as_i64();
        let range = by_bucket.entry(bucket_of(*id)).or_insert((id64, id64));
        range.0 = range.0.min(id64);
        range.1 = range.1.max(id64);
    }
    by_bucket
        .into_iter()
        .map(|(bucket, (low, high))| (bucket, low, high))
        .collect()
}

fn micros_now() -> i64 {
    i64::try_from(proto::clock::since_epoch().as_micros()).unwrap_or(i64::MAX)
}

impl MessageStore {
    /// Records what a new reply (or system message) answers, and its type (at stream time
    /// `at`). Idempotent.
    pub async fn insert_reply(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let Some(preview) = &message.referenced_message else {
            return Ok(());
        };
        let values = (
            message.channel_id.as_i64(),
            bucket_of(message.id),
            message.id.as_i64(),
            preview.id.as_i64(),
            preview.author_id.as_i64(),
            &preview.content,
            i32::from(message.kind.0),
            at,
        );
        self.session
            .execute_unpaged(&self.c.insert_reply, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The previews of what the replies among `ids` answer, and each one's type, by reply id.
    pub async fn replies(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, (ReferencedMessage, MessageType)>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                let result = self
                    .session
                    .execute_unpaged(&self.c.replies, values)
                    .await
                    .map_err(failed)?
                    .into_rows_result()
                    .map_err(failed)?;
                result
                    .rows::<(i64, i64, i64, String, Option<i32>)>()
                    .map_err(failed)?
                    .map(|row| row.map_err(failed))
                    .collect::<Result<Vec<_>, _>>()
            }
        });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, to, author, content, kind) in rows {
                let id = Snowflake::from_i64(id);
                if wanted.contains(&id) {
                    let preview = ReferencedMessage {
                        id: Snowflake::from_i64(to),
                        author_id: Snowflake::from_i64(author),
                        content,
                    };
                    let kind = MessageType(kind.and_then(|k| u8::try_from(k).ok()).unwrap_or(0));
                    out.insert(id, (preview, kind));
                }
            }
        }
        Ok(out)
    }

    /// Writes a reaction (at stream time `at`). Idempotent.
    pub async fn react(&self, r: &ReactionEvent, at: i64) -> Result<(), StoreError> {
        let (channel, message) = (r.channel_id.as_i64(), r.message_id.as_i64());
        let emoji = r.emoji.name.as_str();
        let row = (channel, message, emoji, r.user_id.as_i64(), at);
        let mine = (
            r.user_id.as_i64(),
            channel,
            bucket_of(r.message_id),
            message,
            emoji,
            at,
        );
        tokio::try_join!(
            self.session.execute_unpaged(&self.c.react, row),
            self.session.execute_unpaged(&self.c.react_user, mine),
        )
        .map_err(failed)?;
        Ok(())
    }

    /// Removes a reaction (at stream time `at`). Idempotent.
    pub async fn unreact(&self, r: &ReactionEvent, at: i64) -> Result<(), StoreError> {
        let (channel, message) = (r.channel_id.as_i64(), r.message_id.as_i64());
        let emoji = r.emoji.name.as_str();
        let row = (at, channel, message, emoji, r.user_id.as_i64());
        let mine = (
            at,
            r.user_id.as_i64(),
            channel,
            bucket_of(r.message_id),
            message,
            emoji,
        );
        tokio::try_join!(
            self.session.execute_unpaged(&self.c.unreact, row),
            self.session.execute_unpaged(&self.c.unreact_user, mine),
        )
        .map_err(failed)?;
        Ok(())
    }

    /// Removes every reaction of a message made before stream time `at`, and answers the emoji
    /// whose counts must be derived again. Idempotent.
    ///
    /// A recount running meanwhile may have read rows this removes: its count began before the
    /// removal was applied, so removing the message's counts with a timestamp taken after it
    /// shadows that count. Reactions newer than the removal (in stream order) survive it; the
    /// reactors read after the removal name their emoji, which are counted again after it.
    pub async fn clear_reactions(
        &self,
        channel: Snowflake,
        message: Snowflake,
        at: i64,
    ) -> Result<Vec<String>, StoreError> {
        let key = (channel.as_i64(), message.as_i64());
        let before = self.all_reactors(key).await?;
        let bucket = bucket_of(message);
        let mut unlisted = Vec::with_capacity(before.len());
        for (emoji, user) in &before {
            let values = (at, *user, key.0, bucket, key.1, emoji.as_str());
            unlisted.push(self.session.execute_unpaged(&self.c.unreact_user, values));
        }
        futures::future::try_join_all(unlisted)
            .await
            .map_err(failed)?;
        self.session
            .execute_unpaged(&self.c.clear, (at, key.0, key.1))
            .await
            .map_err(failed)?;
        self.session
            .execute_unpaged(&self.c.clear_counts, (micros_now(), key.0, bucket, key.1))
            .await
            .map_err(failed)?;
        let after = self.all_reactors(key).await?;
        let emoji: HashSet<String> = after.into_iter().map(|(e, _)| e).collect();
        Ok(emoji.into_iter().collect())
    }

    /// Every (emoji, user) reaction row of a message, paged.
    async fn all_reactors(&self, key: (i64, i64)) -> Result<Vec<(String, i64)>, StoreError> {
        self.session
            .execute_iter(self.c.reactors_all.clone(), key)
            .await
            .map_err(failed)?
            .rows_stream::<(String, i64)>()
            .map_err(failed)?
            .try_collect()
            .await
            .map_err(failed)
    }

    /// Derives a (message, emoji)'s count from its rows again (see the module's comment).
    pub async fn recount(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
    ) -> Result<(), StoreError> {
        let began = micros_now();
        let (count,) = self
            .session
            .execute_unpaged(&self.c.count, (channel.as_i64(), message.as_i64(), emoji))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .first_row::<(i64,)>()
            .map_err(failed)?;
        let (channel, bucket, message) = (channel.as_i64(), bucket_of(message), message.as_i64());
        let write = if count > 0 {
            let count = i32::try_from(count).unwrap_or(i32::MAX);
            let values = (channel, bucket, message, emoji, count, began);
            self.session
                .execute_unpaged(&self.c.set_count, values)
                .await
        } else {
            let values = (began, channel, bucket, message, emoji);
            self.session
                .execute_unpaged(&self.c.drop_count, values)
                .await
        };
        write.map_err(failed)?;
        Ok(())
    }

    /// The reaction counts of the messages among `ids`, by message: (emoji, count), by emoji.
    pub async fn reaction_counts(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, Vec<(String, u32)>>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.c.counts.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<(i64, String, i32)>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out: HashMap<Snowflake, Vec<(String, u32)>> = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, emoji, count) in rows {
                let id = Snowflake::from_i64(id);
                if wanted.contains(&id) && count > 0 {
                    let count = u32::try_from(count).unwrap_or(0);
                    out.entry(id).or_default().push((emoji, count));
                }
            }
        }
        Ok(out)
    }

    /// `user`'s reactions on the messages among `ids`: (message, emoji).
    pub async fn my_reactions(
        &self,
        user: Snowflake,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashSet<(Snowflake, String)>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (user.as_i64(), channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.c.mine.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<(i64, String)>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out = HashSet::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, emoji) in rows {
                let id = Snowflake::from_i64(id);
                if wanted.contains(&id) {
                    out.insert((id, emoji));
                }
            }
        }
        Ok(out)
    }

    /// Whether the store holds `user`'s reaction with `emoji` on a message.
    pub async fn reacted(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
        user: Snowflake,
    ) -> Result<bool, StoreError> {
        let values = (channel.as_i64(), message.as_i64(), emoji, user.as_i64());
        Ok(self
            .session
            .execute_unpaged(&self.c.reacted, values)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .maybe_first_row::<(i64,)>()
            .map_err(failed)?
            .is_some())
    }

    /// Who reacted to a message with `emoji`: up to `limit` user ids above `after`, in id order.
    pub async fn reactors(
        &self,
        channel: Snowflake,
        message: Snowflake,
        emoji: &str,
        after: Snowflake,
        limit: usize,
    ) -> Result<Vec<Snowflake>, StoreError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let values = (
            channel.as_i64(),
            message.as_i64(),
            emoji,
            after.as_i64(),
            limit,
        );
        self.session
            .execute_unpaged(&self.c.reactors, values)
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?
            .rows::<(i64,)>()
            .map_err(failed)?
            .map(|row| row.map(|(id,)| Snowflake::from_i64(id)).map_err(failed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BUCKET_MS;
    use proto::snowflake::NATTER_EPOCH_MS;

    #[test]
    fn a_pages_ids_are_read_as_one_range_per_partition() {
        let at = |ms: u64, seq: u16| Snowflake::from_parts(NATTER_EPOCH_MS + ms, 0, seq);
        let ids = [at(5, 0), at(1, 0), at(BUCKET_MS + 3, 0), at(9, 1)];
        assert_eq!(
            ranges(&ids),
            [
                (0, at(1, 0).as_i64(), at(9, 1).as_i64()),
                (
                    1,
                    at(BUCKET_MS + 3, 0).as_i64(),
                    at(BUCKET_MS + 3, 0).as_i64()
                ),
            ]
        );
        assert!(ranges(&[]).is_empty());
    }
}
