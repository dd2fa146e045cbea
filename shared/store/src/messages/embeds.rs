//! A message's link previews and flags (`message_embeds`): written by the persister with each
//! update (which carries the message whole) and with a new message that has flags, read to
//! dress a page, removed with the message. The previews' image URLs are never stored: they are
//! signed afresh each time a message is handed out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use proto::Snowflake;
use proto::api::embeds::Embed;
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
                statement.set_request_timeout(Some(timeout));
                crate::cql::speculate_if_read(&mut statement, &reads);
                Ok::<_, StoreError>(statement)
            }
        };
        Ok(Self {
            insert: prepare(
                "INSERT INTO message_embeds (channel_id, bucket, message_id, flags, embeds) \
                 VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
            )
            .await?,
            read: prepare(
                "SELECT message_id, flags, embeds FROM message_embeds WHERE channel_id = ? \
                 AND bucket = ? AND message_id >= ? AND message_id <= ?",
            )
            .await?,
            delete: prepare(
                "DELETE FROM message_embeds USING TIMESTAMP ? WHERE channel_id = ? \
                 AND bucket = ? AND message_id = ?",
            )
            .await?,
        })
    }
}

/// What is kept of a message's previews: everything but their images' URLs.
fn stored_form(embeds: &[Embed]) -> String {
    let bare: Vec<Embed> = embeds
        .iter()
        .cloned()
        .map(|mut embed| {
            if let Some(thumbnail) = embed.thumbnail.as_mut() {
                thumbnail.url.clear();
                thumbnail.proxy_url.clear();
            }
            embed
        })
        .collect();
    serde_json::to_string(&bare).expect("embeds serialise")
}

/// A message's previews and flags as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEmbeds {
    pub flags: u64,
    pub embeds: Vec<Embed>,
}

impl MessageStore {
    /// Records a message's previews and flags (at stream time `at`). `always`: write even
    /// when it has neither (an update may have removed them). Idempotent.
    pub async fn write_embeds(
        &self,
        message: &Message,
        always: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        if !always && message.embeds.is_empty() && message.flags == 0 {
            return Ok(());
        }
        let (channel, bucket, id) = key_of(message.channel_id, message.id);
        let flags = i64::try_from(message.flags).unwrap_or(0);
        let values = (channel, bucket, id, flags, stored_form(&message.embeds), at);
        self.session
            .execute_unpaged(&self.e.insert, values)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Forgets a deleted message's previews (at stream time `at`). Idempotent.
    pub async fn delete_embeds(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        let (channel, bucket, id) = key_of(channel, id);
        self.session
            .execute_unpaged(&self.e.delete, (at, channel, bucket, id))
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// The previews and flags of the messages among `ids` that have any (without URLs).
    pub async fn embeds(
        &self,
        channel: Snowflake,
        ids: &[Snowflake],
    ) -> Result<HashMap<Snowflake, StoredEmbeds>, StoreError> {
        let wanted: HashSet<Snowflake> = ids.iter().copied().collect();
        let reads = ranges(ids).into_iter().map(|(bucket, low, high)| {
            let values = (channel.as_i64(), bucket, low, high);
            async move {
                self.session
                    .execute_iter(self.e.read.clone(), values)
                    .await
                    .map_err(failed)?
                    .rows_stream::<(i64, Option<i64>, Option<String>)>()
                    .map_err(failed)?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(failed)
            }
        });
        let mut out = HashMap::new();
        for rows in futures::future::try_join_all(reads).await? {
            for (id, flags, json) in rows {
                let id = Snowflake::from_i64(id);
                if !wanted.contains(&id) {
                    continue;
                }
                let embeds = match json.as_deref().map(serde_json::from_str::<Vec<Embed>>) {
                    None => Vec::new(),
                    Some(Ok(list)) => list,
                    Some(Err(e)) => {
                        tracing::warn!(%channel, %id, error = %e, "unreadable embeds");
                        Vec::new()
                    }
                };
                let flags = flags.and_then(|f| u64::try_from(f).ok()).unwrap_or(0);
                out.insert(id, StoredEmbeds { flags, embeds });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::embeds::{EmbedThumbnail, EmbedType};

    #[test]
    fn previews_are_kept_without_their_images_signed_urls() {
        let embed = Embed {
            kind: EmbedType::Link,
            url: "https://site.example/".into(),
            title: Some("Site".into()),
            description: None,
            provider: None,
            thumbnail: Some(EmbedThumbnail {
                url: "http://media/attachments/1/2/3/thumbnail?ex=1&hm=2".into(),
                proxy_url: "http://media/attachments/1/2/3/thumbnail?ex=1&hm=2".into(),
                width: 4,
                height: 5,
                id: Snowflake::from_u64(3),
            }),
            color: None,
        };
        let kept: Vec<Embed> = serde_json::from_str(&stored_form(&[embed])).unwrap();
        let thumbnail = kept[0].thumbnail.as_ref().unwrap();
        assert!(thumbnail.url.is_empty() && thumbnail.proxy_url.is_empty());
        assert_eq!(thumbnail.id, Snowflake::from_u64(3));
    }
}
