//! Mentions: whom each message mentions (`message_mentions`, a row only for messages that
//! mention anything), written by the persister at the stream's timestamp of the message's
//! create, edit or delete, read to dress a page and to count a member's unread mentions for READY.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::messages::Message;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::{MAX_UNREAD, MessageStore, StoreError, failed};
use crate::schema::bucket_of;

pub(super) struct Statements {
    write: PreparedStatement,
    forget: PreparedStatement,
    page: PreparedStatement,
    unread: PreparedStatement,
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

impl Statements {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let reads = crate::cql::read_profile(session);
        let prepare = |cql: &'static str| {
            let reads = reads.clone();
            let session = Arc::clone(session);
            async move {
                let mut statement = session.prepare(cql).await.map_err(failed)?;
                // Every statement may run twice (writes carry their timestamp or id, nothing counts
                // up): so the driver tries another replica when a node dies mid-request.
                statement.set_is_idempotent(true);
                statement.set_request_timeout(Some(timeout));
                crate::cql::speculate_if_read(&mut statement, &reads);
                Ok::<_, StoreError>(statement)
            }
        };
        Ok(Self {
            write: prepare(
                "INSERT INTO message_mentions (channel_id, bucket, message_id, author_id, users, \
                 roles, everyone) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            forget: prepare(
                "DELETE FROM message_mentions USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ?",
            )
            .await?,
            page: prepare(
                "SELECT message_id, author_id, users, roles, everyone FROM message_mentions \
                 WHERE channel_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ?",
            )
            .await?,
            unread: prepare(
                "SELECT message_id, author_id, users, roles, everyone FROM message_mentions \
                 WHERE channel_id = ? AND bucket = ? AND message_id > ? \
                 ORDER BY message_id ASC LIMIT ?",
            )
            .await?,
        })
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
        let values = (
            message.channel_id.as_i64(),
            bucket_of(message.id),
            message.id.as_i64(),
            message.author_id.as_i64(),
            list(&message.mentions),
            list(&message.mention_roles),
            message.mention_everyone,
            at,
        );
        self.session
            .execute_unpaged(&self.m.write, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Forgets a deleted message's mentions (at stream time `at`). Idempotent.
    pub async fn forget_mentions(
        &self,
        channel: Snowflake,
        message: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let values = (at, channel.as_i64(), bucket_of(message), message.as_i64());
        self.session
            .execute_unpaged(&self.m.forget, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The mentions of the messages among `ids` that mention anything, by message.
    pub async fn mentions(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, StoredMentions>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = super::conversation::ranges(ids)
            .into_iter()
            .map(|(bucket, low, high)| {
                let values = (channel.as_i64(), bucket, low, high);
                async move {
                    self.session
                        .execute_iter(self.m.page.clone(), values)
                        .await
                        .map_err(failed)?
                        .rows_stream::<MentionRow>()
                        .map_err(failed)?
                        .try_collect::<Vec<_>>()
                        .await
                        .map_err(failed)
                }
            });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, _, users, roles, everyone) in rows {
                let id = Snowflake::from_i64(id);
                if wanted.contains(&id) {
                    let stored = StoredMentions {
                        users: id_list(users),
                        roles: id_list(roles),
                        everyone: everyone.unwrap_or(false),
                    };
                    out.insert(id, stored);
                }
            }
        }
        Ok(out)
    }

    /// How many messages by others after `after` in `channel` mention `reader` (who has `roles`
    /// in its server), counting to [`MAX_UNREAD`].
    pub async fn unread_mentions(
        &self,
        channel: Snowflake,
        reader: Snowflake,
        roles: &[Snowflake],
        after: Snowflake,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for bucket in self
            .buckets(&self.s.buckets_up, channel, bucket_of(after))
            .await?
        {
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
                    mentions: id_list(users),
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
