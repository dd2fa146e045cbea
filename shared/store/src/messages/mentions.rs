//! Mentions: whom each message mentions (`message_mentions`, a row only for messages that
//! mention anything), written by the persister at the stream's timestamp of the message's
//! create, edit or delete, read to dress a page and to count a member's unread mentions for READY.
//! A side table ([`super::side`]), with a read of its own for the unread count.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use proto::Snowflake;
use proto::api::messages::Message;
use scylla::client::execution_profile::ExecutionProfileHandle;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::side::{Side, SideTable};
use super::{MAX_UNREAD, MessageStore, StoreError, failed, prepared};
use crate::schema::key_of;

/// Mentions' own statement besides their side table's: the rows after a read marker.
pub(super) struct Statements {
    unread: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        ks: &str,
        reads: &ExecutionProfileHandle,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let unread = format!(
            "SELECT message_id, author_id, users, roles, everyone FROM {ks}.message_mentions \
                      WHERE channel_id = ? AND bucket = ? AND message_id > ? \
             ORDER BY message_id ASC LIMIT ?"
        );
        Ok(Self {
            unread: prepared(session, reads, timeout, &unread).await?,
        })
    }
}

/// A message's mentions as stored: people, roles, everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMentions {
    pub users: Vec<Snowflake>,
    pub roles: Vec<Snowflake>,
    pub everyone: bool,
}

type MentionRow = (i64, i64, Option<Vec<i64>>, Option<Vec<i64>>, Option<bool>);

fn id_list(list: Option<Vec<i64>>) -> Vec<Snowflake> {
    let mut ids: Vec<Snowflake> = list
        .unwrap_or_default()
        .into_iter()
        .map(Snowflake::from_i64)
        .collect();
    ids.sort_unstable();
    ids
}

/// `message_mentions`: the author (for unread counts, which leave out one's own messages), and
/// whom the message mentions.
pub(crate) struct Mentions;

impl Side for Mentions {
    const TABLE: &'static str = "message_mentions";
    const COLUMNS: &'static [&'static str] = &["author_id", "users", "roles", "everyone"];
    type Row = MentionRow;
    type Stored = StoredMentions;

    fn table(store: &MessageStore) -> &SideTable<Self> {
        &store.sides.mentions
    }

    fn id(row: &Self::Row) -> i64 {
        row.0
    }

    fn stored(_: Snowflake, (_, _, users, roles, everyone): MentionRow) -> Option<StoredMentions> {
        Some(StoredMentions {
            users: id_list(users),
            roles: id_list(roles),
            everyone: everyone.unwrap_or(false),
        })
    }

    /// A message the stream's unwritten events created or edited carries its own (the store's
    /// row may be older).
    fn carried(message: &Message, fresh: &HashSet<Snowflake>) -> bool {
        fresh.contains(&message.id)
    }

    fn dress(message: &mut Message, stored: StoredMentions) {
        message.mentions = stored.users.into_iter().map(Into::into).collect();
        message.mention_roles = stored.roles;
        message.mention_everyone = stored.everyone;
    }
}

impl MessageStore {
    /// Records whom a new or edited message mentions (at stream time `at`); an edit that
    /// mentions nobody removes the record (`edited`). Idempotent.
    pub async fn write_mentions(
        &self,
        message: &Message,
        edited: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        let mentions_any = message.mention_everyone
            || !message.mentions.is_empty()
            || !message.mention_roles.is_empty();
        if !mentions_any {
            return if edited {
                self.forget_mentions(message.channel_id, message.id, at)
                    .await
            } else {
                Ok(())
            };
        }
        let list = |ids: &[Snowflake]| ids.iter().map(|id| id.as_i64()).collect::<Vec<i64>>();
        let (channel, bucket, id) = key_of(message.channel_id, message.id);
        let values = (
            channel,
            bucket,
            id,
            message.author_id.as_i64(),
            list(&message.mentioned_ids()),
            list(&message.mention_roles),
            message.mention_everyone,
            at,
        );
        self.sides.mentions.insert(values).await
    }

    /// Forgets a deleted message's mentions (at stream time `at`). Idempotent.
    pub async fn forget_mentions(
        &self,
        channel: Snowflake,
        message: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        self.sides.mentions.delete(channel, message, at).await
    }

    /// How many messages by others after `after` in `channel`'s `buckets` (those from `after`'s
    /// on) mention `reader` (who has `roles` in its server), counting to [`MAX_UNREAD`].
    pub(super) async fn unread_mentions(
        &self,
        channel: Snowflake,
        reader: Snowflake,
        roles: &[Snowflake],
        after: Snowflake,
        buckets: &[i32],
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for &bucket in buckets {
            let values = (
                channel.as_i64(),
                bucket,
                after.as_i64(),
                (MAX_UNREAD * 2) as i32,
            );
            let result = self
                .session
                .execute_unpaged(&self.m.unread, values)
                .await
                .map_err(failed)?
                .into_rows_result()
                .map_err(failed)?;
            for row in result.rows::<MentionRow>().map_err(failed)? {
                let (id, author, users, roles_mentioned, everyone) = row.map_err(failed)?;
                let message = Message {
                    id: Snowflake::from_i64(id),
                    author_id: Snowflake::from_i64(author),
                    mentions: id_list(users).into_iter().map(Into::into).collect(),
                    mention_roles: id_list(roles_mentioned),
                    mention_everyone: everyone.unwrap_or(false),
                    ..Message::default()
                };
                if message.mentions_user(reader, roles) {
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
