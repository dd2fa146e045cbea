//! A message's link previews and flags (`message_embeds`): written by the persister with each
//! update (which carries the message whole) and with a new message that has flags, read to
//! dress a page, removed with the message. The previews' image URLs are never stored: they are
//! signed afresh each time a message is handed out. A side table ([`super::side`]).

use std::collections::HashSet;

use proto::Snowflake;
use proto::api::embeds::Embed;
use proto::api::messages::Message;

use super::side::{Side, SideTable};
use super::{MessageStore, StoreError};
use crate::schema::key_of;

/// `message_embeds`: the flags, and the previews as JSON.
pub(crate) struct Embeds;

impl Side for Embeds {
    const TABLE: &'static str = "message_embeds";
    const COLUMNS: &'static [&'static str] = &["flags", "embeds"];
    type Row = (i64, Option<i64>, Option<String>);
    type Stored = StoredEmbeds;

    fn table(store: &MessageStore) -> &SideTable<Self> {
        &store.sides.embeds
    }

    fn id(row: &Self::Row) -> i64 {
        row.0
    }

    /// A row whose previews cannot be read still gives its flags.
    fn stored(channel: Snowflake, (id, flags, json): Self::Row) -> Option<StoredEmbeds> {
        let embeds = match json.as_deref().map(serde_json::from_str::<Vec<Embed>>) {
            None => Vec::new(),
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                let id = Snowflake::from_i64(id);
                tracing::warn!(%channel, %id, error = %e, "unreadable embeds");
                Vec::new()
            }
        };
        let flags = flags.and_then(|f| u64::try_from(f).ok()).unwrap_or(0);
        Some(StoredEmbeds { flags, embeds })
    }

    /// A message the stream's unwritten events created or updated carries its own (an update's
    /// are the newer).
    fn carried(message: &Message, fresh: &HashSet<Snowflake>) -> bool {
        fresh.contains(&message.id)
    }

    fn dress(message: &mut Message, stored: StoredEmbeds) {
        message.flags = stored.flags;
        message.embeds = stored.embeds;
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
        self.sides.embeds.insert(values).await
    }

    /// Forgets a deleted message's previews (at stream time `at`). Idempotent.
    pub async fn delete_embeds(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        self.sides.embeds.delete(channel, id, at).await
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
