//! The mentions inbox (`user_inbox`, schema 8): per user, the recent messages that mention them
//! or are DMs to them, newest first. The notification worker writes it; `GET
//! /api/v1/users/@me/mentions` reads it. Entries expire after 30 days (the table's TTL).
//!
//! Beside each entry the store writes its reverse (`inbox_by_message`, schema 10), so that a
//! deleted message leaves every inbox it was in ([`InboxStore::forget_message`]). Forgetting also
//! leaves a marker (user 0) that tells a redelivered new-message event, handled after its delete,
//! not to write the entries again ([`InboxStore::was_forgotten`]).
//!
//! An edit rewrites the entries ([`InboxStore::add`] again, [`InboxStore::withdraw`]) and records
//! its edit time beside the reverse rows (schema 12, [`InboxStore::mark_edited`]), so an older
//! edit or a new-message event handled after it changes nothing. Entries are written with their
//! message's own time as write timestamp (the id's for a new message, the edit time for an edit),
//! so that whatever order two workers write in, the newest version of the message wins, and a
//! delete (written at the store's now) wins over both.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use proto::Snowflake;
use proto::api::notifications::NotifyReason;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use crate::cql::{Keyspace, StoreError, failed, prepared};

/// The longest excerpt of a message an entry keeps.
pub const EXCERPT_CHARS: usize = 200;

/// Inbox rows deleted at once when a message is forgotten.
const FORGET_WRITES: usize = 64;

/// Reverse rows (two ids each, one partition) written in one batch, within Cassandra's 5 KiB
/// `batch_size_warn_threshold`.
const HOLDERS_BATCH: usize = 128;

/// The most inbox rows, each its own partition, in one batch: Cassandra warns of an unlogged
/// batch over more than 10 partitions (`unlogged_batch_across_partitions_warn_threshold`).
pub const INBOX_BATCH_USERS: usize = 10;

/// The most bytes of excerpts in one batch of inbox rows, under Cassandra's 5 KiB
/// `batch_size_warn_threshold` with the rows' other columns.
pub const INBOX_BATCH_BYTES: usize = 3 * 1024;

/// Batches of inbox rows in flight at once for one message (an @everyone in a big server).
const INBOX_BATCHES_AT_ONCE: usize = 8;

/// The most reverse rows read for one message: each version of it (the message and its edits)
/// concerns at most `proto::access::MAX_RECIPIENTS` people; past this many the rest expire.
pub const HOLDERS_READ: usize = 4 * proto::access::MAX_RECIPIENTS;

/// What the store knows of one message's inbox entries ([`InboxStore::inboxes_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageInboxes {
    /// Whose inboxes hold it, or held it: an edit that took it out of one keeps the reverse row
    /// (a later edit or delete then removes an entry that is not there, which costs nothing).
    pub holders: Vec<Snowflake>,
    /// It was deleted: it must never come back into an inbox.
    pub forgotten: bool,
    /// The edit time (Unix ms) of the last edit applied to the inboxes.
    pub edited_at: Option<u64>,
}

/// The write timestamp (microseconds) of a version of a message written at `unix_ms`.
pub fn version_timestamp(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// One inbox entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub message_id: Snowflake,
    pub channel_id: Snowflake,
    pub guild_id: Option<Snowflake>,
    pub author_id: Snowflake,
    pub content: String,
    pub reason: NotifyReason,
}

/// Reads and writes of `user_inbox`.
#[derive(Clone)]
pub struct InboxStore {
    session: Arc<Session>,
    insert: PreparedStatement,
    page: PreparedStatement,
    delete: PreparedStatement,
    withdraw: PreparedStatement,
    inboxes: PreparedStatement,
    mark_edited: PreparedStatement,
    insert_holder: PreparedStatement,
    holders: PreparedStatement,
    delete_holders: PreparedStatement,
    mark_forgotten: PreparedStatement,
    forgotten: PreparedStatement,
}

/// The `inbox_by_message` row that marks a message as deleted (no user has id 0).
const FORGOTTEN: i64 = 0;

fn reason_name(reason: NotifyReason) -> &'static str {
    match reason {
        NotifyReason::Mention => "mention",
        NotifyReason::RoleMention => "role_mention",
        NotifyReason::Everyone => "everyone",
        NotifyReason::Direct => "direct",
        NotifyReason::AllMessages => "all_messages",
    }
}

fn reason_of(name: &str) -> NotifyReason {
    match name {
        "mention" => NotifyReason::Mention,
        "role_mention" => NotifyReason::RoleMention,
        "everyone" => NotifyReason::Everyone,
        "all_messages" => NotifyReason::AllMessages,
        _ => NotifyReason::Direct,
    }
}

/// `entries` cut into batches of at most [`INBOX_BATCH_USERS`] rows whose excerpts together
/// stay within [`INBOX_BATCH_BYTES`] (a row is always written, in a batch of its own if need be).
fn inbox_batches(entries: &[(Snowflake, InboxEntry)]) -> Vec<&[(Snowflake, InboxEntry)]> {
    crate::cql::cut(
        entries,
        INBOX_BATCH_USERS,
        INBOX_BATCH_BYTES,
        |(_, entry)| excerpt_bytes(&entry.content),
    )
}

/// The bytes of [`excerpt`]`(text)`, without making it.
fn excerpt_bytes(text: &str) -> usize {
    text.char_indices()
        .nth(EXCERPT_CHARS)
        .map_or(text.len(), |(end, _)| end)
}

/// The first [`EXCERPT_CHARS`] characters of `text`.
pub fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

impl InboxStore {
    /// Prepares the statements, each naming its table in `keyspace` (which must hold schema 12).
    pub async fn prepare(
        session: Arc<Session>,
        keyspace: &Keyspace,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let ks = keyspace.as_str();
        let reads = crate::cql::read_profile(&session);
        let prepare = async |cql: String| prepared(&session, &reads, timeout, &cql).await;
        Ok(Self {
            insert: prepare(format!(
                "INSERT INTO {ks}.user_inbox \
                 (user_id, message_id, channel_id, guild_id, author_id, content, reason) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?,
            page: prepare(format!(
                "SELECT message_id, channel_id, guild_id, author_id, content, reason \
                 FROM {ks}.user_inbox WHERE user_id = ? AND message_id < ?"
            ))
            .await?,
            delete: prepare(format!(
                "DELETE FROM {ks}.user_inbox WHERE user_id = ? AND message_id = ?"
            ))
            .await?,
            withdraw: prepare(format!(
                "DELETE FROM {ks}.user_inbox USING TIMESTAMP ? \
                 WHERE user_id = ? AND message_id = ?"
            ))
            .await?,
            inboxes: prepare(format!(
                "SELECT user_id, edited_at FROM {ks}.inbox_by_message WHERE message_id = ?"
            ))
            .await?,
            mark_edited: prepare(format!(
                "UPDATE {ks}.inbox_by_message USING TIMESTAMP ? SET edited_at = ? \
                 WHERE message_id = ?"
            ))
            .await?,
            insert_holder: prepare(format!(
                "INSERT INTO {ks}.inbox_by_message (message_id, user_id) VALUES (?, ?)"
            ))
            .await?,
            holders: prepare(format!(
                "SELECT user_id FROM {ks}.inbox_by_message WHERE message_id = ?"
            ))
            .await?,
            delete_holders: prepare(format!(
                "DELETE FROM {ks}.inbox_by_message WHERE message_id = ? AND user_id > ?"
            ))
            .await?,
            mark_forgotten: prepare(format!(
                "INSERT INTO {ks}.inbox_by_message (message_id, user_id) VALUES (?, 0)"
            ))
            .await?,
            forgotten: prepare(format!(
                "SELECT user_id FROM {ks}.inbox_by_message WHERE message_id = ? AND user_id = 0"
            ))
            .await?,
            session,
        })
    }

    /// Records one message's `entries` (each with the user whose inbox it goes in), as the
    /// version of the message written at `written_at` (a write timestamp, [`version_timestamp`]):
    /// a newer version's write or withdrawal wins. Idempotent (a redelivered message writes the
    /// same rows). The reverse rows go first, so an inbox row is never written that a delete
    /// cannot find.
    ///
    /// Rows go in unlogged batches: the reverse rows share their message's partition, so a
    /// batch of them is one partition's write; the inbox rows (a partition each) go
    /// [`INBOX_BATCH_USERS`] to a batch, within [`INBOX_BATCH_BYTES`]. A group DM's message is
    /// then two requests to the store, where it was two per member.
    pub async fn add(
        &self,
        entries: &[(Snowflake, InboxEntry)],
        written_at: i64,
    ) -> Result<(), StoreError> {
        let Some((_, first)) = entries.first() else {
            return Ok(());
        };
        let message = first.message_id.as_i64();
        for chunk in entries.chunks(HOLDERS_BATCH) {
            let values: Vec<(i64, i64)> = (chunk.iter())
                .map(|(user, _)| (message, user.as_i64()))
                .collect();
            self.session
                .batch(
                    &crate::cql::unlogged(&self.insert_holder, values.len()),
                    values,
                )
                .await
                .map_err(failed)?;
        }
        for batches in inbox_batches(entries).chunks(INBOX_BATCHES_AT_ONCE) {
            let writes = batches
                .iter()
                .map(|chunk| self.add_batch(chunk, written_at));
            futures::future::try_join_all(writes)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// One batch of [`Self::add`]'s inbox rows.
    async fn add_batch(
        &self,
        chunk: &[(Snowflake, InboxEntry)],
        written_at: i64,
    ) -> Result<(), scylla::errors::ExecutionError> {
        let values: Vec<_> = (chunk.iter())
            .map(|(user, entry)| {
                (
                    user.as_i64(),
                    entry.message_id.as_i64(),
                    entry.channel_id.as_i64(),
                    entry.guild_id.map_or(0, |g| g.as_i64()),
                    entry.author_id.as_i64(),
                    excerpt(&entry.content),
                    reason_name(entry.reason),
                    written_at,
                )
            })
            .collect();
        let batch = crate::cql::unlogged(&self.insert, values.len());
        self.session.batch(&batch, values).await.map(|_| ())
    }

    /// Up to `limit` entries of `user`'s older than `before` (newest first) that `keep` accepts,
    /// reading at most `scan` rows (so a filter that refuses everything costs a bounded read).
    pub async fn page(
        &self,
        user: Snowflake,
        before: Option<Snowflake>,
        limit: usize,
        scan: usize,
        mut keep: impl FnMut(&InboxEntry) -> bool,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let before = before.map_or(i64::MAX, |b| b.as_i64());
        let mut statement = self.page.clone();
        statement.set_page_size(i32::try_from(limit.clamp(10, 500)).unwrap_or(100));
        let mut rows = self
            .session
            .execute_iter(statement, (user.as_i64(), before))
            .await
            .map_err(failed)?
            .rows_stream::<(i64, i64, Option<i64>, i64, Option<String>, Option<String>)>()
            .map_err(failed)?;
        let mut found = Vec::new();
        let mut seen = 0;
        while let Some((message, channel, guild, author, content, reason)) =
            rows.try_next().await.map_err(failed)?
        {
            seen += 1;
            let entry = InboxEntry {
                message_id: Snowflake::from_i64(message),
                channel_id: Snowflake::from_i64(channel),
                guild_id: guild.filter(|g| *g != 0).map(Snowflake::from_i64),
                author_id: Snowflake::from_i64(author),
                content: content.unwrap_or_default(),
                reason: reason_of(reason.as_deref().unwrap_or_default()),
            };
            if keep(&entry) {
                found.push(entry);
            }
            if found.len() >= limit || seen >= scan {
                break;
            }
        }
        Ok(found)
    }

    /// Removes one entry of `user`'s (whether or not it was there).
    pub async fn remove(&self, user: Snowflake, message: Snowflake) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.delete, (user.as_i64(), message.as_i64()))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Takes `message` out of `user`'s inbox as its version written at `written_at` (an edit that
    /// no longer concerns them): an older version's write handled later does not bring it back.
    pub async fn withdraw(
        &self,
        user: Snowflake,
        message: Snowflake,
        written_at: i64,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.withdraw,
                (written_at, user.as_i64(), message.as_i64()),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Who holds `message`, whether it was deleted, and which edit the inboxes show: one read of
    /// its reverse rows (at most [`HOLDERS_READ`] of them).
    pub async fn inboxes_of(&self, message: Snowflake) -> Result<MessageInboxes, StoreError> {
        let mut statement = self.inboxes.clone();
        statement.set_page_size(1000);
        // A partition with only the static edit time answers one row whose user is NULL.
        let rows: Vec<(Option<i64>, Option<i64>)> = self
            .session
            .execute_iter(statement, (message.as_i64(),))
            .await
            .map_err(failed)?
            .rows_stream::<(Option<i64>, Option<i64>)>()
            .map_err(failed)?
            .take(HOLDERS_READ + 1)
            .try_collect()
            .await
            .map_err(failed)?;
        let mut known = MessageInboxes::default();
        for (user, edited_at) in rows {
            if let Some(at) = edited_at.and_then(|at| u64::try_from(at).ok()) {
                known.edited_at = Some(at);
            }
            match user {
                Some(FORGOTTEN) => known.forgotten = true,
                Some(user) => known.holders.push(Snowflake::from_i64(user)),
                None => {}
            }
        }
        Ok(known)
    }

    /// Records that the inboxes show `message` as edited at `edited_at` (Unix ms). Written with
    /// that time as its write timestamp, so the newest edit's time stays whatever the order.
    pub async fn mark_edited(&self, message: Snowflake, edited_at: u64) -> Result<(), StoreError> {
        let at = i64::try_from(edited_at).unwrap_or(i64::MAX);
        self.session
            .execute_unpaged(
                &self.mark_edited,
                (version_timestamp(edited_at), at, message.as_i64()),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Removes `message` from every inbox that holds it, and remembers that it is gone (see
    /// [`Self::was_forgotten`]). Idempotent: a redelivered delete finds nothing left to remove.
    pub async fn forget_message(&self, message: Snowflake) -> Result<usize, StoreError> {
        self.session
            .execute_unpaged(&self.mark_forgotten, (message.as_i64(),))
            .await
            .map_err(failed)?;
        let mut statement = self.holders.clone();
        statement.set_page_size(1000);
        // A partition holding only the static edit time (schema 12) answers one NULL user.
        let holders: Vec<i64> = self
            .session
            .execute_iter(statement, (message.as_i64(),))
            .await
            .map_err(failed)?
            .rows_stream::<(Option<i64>,)>()
            .map_err(failed)?
            .take(HOLDERS_READ + 1)
            .try_filter_map(|(user,)| std::future::ready(Ok(user.filter(|u| *u != FORGOTTEN))))
            .try_collect()
            .await
            .map_err(failed)?;
        futures::stream::iter(holders.iter().copied())
            .map(|user| async move {
                self.session
                    .execute_unpaged(&self.delete, (user, message.as_i64()))
                    .await
                    .map_err(failed)
            })
            .buffer_unordered(FORGET_WRITES)
            .try_collect::<Vec<_>>()
            .await?;
        // One range tombstone for the reverse rows (the marker, user 0, stays).
        self.session
            .execute_unpaged(&self.delete_holders, (message.as_i64(), FORGOTTEN))
            .await
            .map_err(failed)?;
        Ok(holders.len())
    }

    /// Whether `message` was deleted and forgotten: a new-message event handled again after
    /// its delete (a retry) must not put it back into inboxes.
    pub async fn was_forgotten(&self, message: Snowflake) -> Result<bool, StoreError> {
        let rows = self
            .session
            .execute_unpaged(&self.forgotten, (message.as_i64(),))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(failed)?;
        Ok(rows.rows_num() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(contents: &[usize]) -> Vec<(Snowflake, InboxEntry)> {
        (contents.iter().enumerate())
            .map(|(i, &chars)| {
                let entry = InboxEntry {
                    message_id: Snowflake::from_u64(1),
                    channel_id: Snowflake::from_u64(2),
                    guild_id: None,
                    author_id: Snowflake::from_u64(3),
                    content: "é".repeat(chars),
                    reason: NotifyReason::Direct,
                };
                (Snowflake::from_u64(10 + i as u64), entry)
            })
            .collect()
    }

    fn sizes(entries: &[(Snowflake, InboxEntry)]) -> Vec<usize> {
        inbox_batches(entries).iter().map(|b| b.len()).collect()
    }

    #[test]
    fn a_group_dm_is_one_batch_and_many_recipients_are_cut_by_count() {
        assert_eq!(sizes(&entries(&[20; 9])), [9]);
        assert_eq!(sizes(&entries(&[20; 25])), [10, 10, 5]);
        assert!(sizes(&entries(&[])).is_empty());
    }

    #[test]
    fn long_excerpts_are_cut_by_bytes_and_each_row_is_written_once() {
        // An excerpt keeps 200 characters of 2 bytes: 400 bytes a row, 7 fit in 3 KiB.
        let long = entries(&[1000; 12]);
        assert_eq!(excerpt_bytes(&long[0].1.content), 400);
        assert_eq!(sizes(&long), [7, 5]);
        let all: Vec<Snowflake> = inbox_batches(&long).concat().iter().map(|e| e.0).collect();
        assert_eq!(all, long.iter().map(|e| e.0).collect::<Vec<_>>());
    }
}
