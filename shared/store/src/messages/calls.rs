//! Calls' system messages (`message_calls`): who was in a call and when it began and ended,
//! written by the persister with the message (type 3), read to dress a page, removed with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::messages::{Message, MessageCall};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::conversation::ranges;
use super::{MessageStore, StoreError, failed};
use crate::schema::key_of;

pub(super) struct Statements {
    insert: PreparedStatement,
    read: PreparedStatement,
    delete: PreparedStatement,
}

impl Statements {
    pub(super) async fn prepare(
        session: &Arc<Session>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let prepare = |cql: &'static str| {
            let session = Arc::clone(session);
            async move {
                let mut statement = session.prepare(cql).await.map_err(failed)?;
                statement.set_is_idempotent(true);
                statement.set_request_timeout(Some(timeout));
                Ok::<_, StoreError>(statement)
            }
        };
        Ok(Self {
            insert: prepare(
                "INSERT INTO message_calls (channel_id, bucket, message_id, participants, \
                 started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            read: prepare(
                "SELECT message_id, participants, started_at, ended_at FROM message_calls \
                 WHERE channel_id = ? AND bucket = ? AND message_id >= ? AND message_id <= ?",
            )
            .await?,
            delete: prepare(
                "DELETE FROM message_calls USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ?",
            )
            .await?,
        })
    }
}

type CallRow = (i64, Option<Vec<i64>>, Option<i64>, Option<i64>);

impl MessageStore {
    /// Records a call's system message's call (at stream time `at`); nothing for other
    /// messages. Idempotent.
    pub async fn write_call(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        let Some(call) = &message.call else {
            return Ok(());
        };
        let (channel, bucket, id) = key_of(message.channel_id, message.id);
        let participants: Vec<i64> = call.participants.iter().map(|p| p.as_i64()).collect();
        let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        let values = (
            channel,
            bucket,
            id,
            participants,
            ms(call.started_timestamp),
            ms(call.ended_timestamp),
            at,
        );
        self.session
            .execute_unpaged(&self.k.insert, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Forgets a deleted message's call (at stream time `at`). Idempotent.
    pub async fn delete_call(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let (channel, bucket, id) = key_of(channel, id);
        self.session
            .execute_unpaged(&self.k.delete, (at, channel, bucket, id))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The calls of the messages among `ids` that are calls' system messages.
    pub async fn calls(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, MessageCall>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.k.read.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<CallRow>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, participants, started, ended) in rows {
                let id = Snowflake::from_i64(id);
                if !wanted.contains(&id) {
                    continue;
                }
                let ms = |t: Option<i64>| t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
                let call = MessageCall {
                    participants: participants
                        .unwrap_or_default()
                        .into_iter()
                        .map(Snowflake::from_i64)
                        .collect(),
                    started_timestamp: ms(started),
                    ended_timestamp: ms(ended),
                };
                out.insert(id, call);
            }
        }
        Ok(out)
    }
}
