//! A message's files (`message_attachments`): written by the persister with the message (and
//! again with each update, which carries them, so processing's results replace the first
//! answer), read to dress a page, removed with the message. URLs are never stored: they are
//! signed afresh each time a message is handed out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::attachments::Attachment;
use proto::api::messages::Message;
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
            insert: prepare(
                "INSERT INTO message_attachments (channel_id, bucket, message_id, attachments) \
                 VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            read: prepare(
                "SELECT message_id, attachments FROM message_attachments WHERE channel_id = ? \
                 AND bucket = ? AND message_id >= ? AND message_id <= ?",
            )
            .await?,
            delete: prepare(
                "DELETE FROM message_attachments USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ?",
            )
            .await?,
        })
    }
}

/// What is kept of a message's files: everything but their URLs.
fn stored_form(attachments: &[Attachment]) -> String {
    let bare: Vec<Attachment> = attachments
        .iter()
        .map(|a| Attachment {
            url: String::new(),
            proxy_url: String::new(),
            ..a.clone()
        })
        .collect();
    serde_json::to_string(&bare).expect("attachments serialise")
}

impl MessageStore {
    /// Records a message's files (at stream time `at`); a message without any writes nothing.
    /// Idempotent.
    pub async fn insert_attachments(&self, message: &Message, at: i64) -> Result<(), StoreError> {
        if message.attachments.is_empty() {
            return Ok(());
        }
        let (channel, bucket, id) = key_of(message.channel_id, message.id);
        let values = (channel, bucket, id, stored_form(&message.attachments), at);
        self.session
            .execute_unpaged(&self.a.insert, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Forgets a deleted message's files (at stream time `at`). Idempotent.
    pub async fn delete_attachments(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let (channel, bucket, id) = key_of(channel, id);
        self.session
            .execute_unpaged(&self.a.delete, (at, channel, bucket, id))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The files of the messages among `ids` that have any, by message (without URLs).
    pub async fn attachments(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, Vec<Attachment>>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.a.read.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<(i64, String)>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, json) in rows {
                let id = Snowflake::from_i64(id);
                if !wanted.contains(&id) {
                    continue;
                }
                match serde_json::from_str::<Vec<Attachment>>(&json) {
                    Ok(list) => {
                        out.insert(id, list);
                    }
                    Err(e) => tracing::warn!(%channel, %id, error = %e, "unreadable attachments"),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_kept_without_their_signed_urls() {
        let file = Attachment {
            id: Snowflake::from_u64(3),
            filename: "cat.png".into(),
            size: 10,
            content_type: Some("image/png".into()),
            url: "http://media/attachments/1/2/3/cat.png?ex=1&hm=2".into(),
            proxy_url: "http://media/attachments/1/2/3/cat.png?ex=1&hm=2".into(),
            width: Some(4),
            height: Some(5),
        };
        let kept: Vec<Attachment> =
            serde_json::from_str(&stored_form(std::slice::from_ref(&file))).unwrap();
        assert_eq!(
            kept,
            [Attachment {
                url: String::new(),
                proxy_url: String::new(),
                ..file
            }]
        );
    }
}
