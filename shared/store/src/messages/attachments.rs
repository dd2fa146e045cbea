//! A message's files (`message_attachments`): written by the persister with the message (and
//! again with each update, which carries them, so processing's results replace the first
//! answer), read to dress a page, removed with the message. URLs are never stored: they are
//! signed afresh each time a message is handed out. A side table ([`super::side`]).

use std::collections::HashSet;

use proto::Snowflake;
use proto::api::attachments::Attachment;
use proto::api::messages::Message;

use super::side::{Side, SideTable};
use super::{MessageStore, StoreError};
use crate::schema::key_of;

/// `message_attachments`: the files, as JSON.
pub(crate) struct Attachments;

impl Side for Attachments {
    const TABLE: &'static str = "message_attachments";
    const COLUMNS: &'static [&'static str] = &["attachments"];
    type Row = (i64, String);
    type Stored = Vec<Attachment>;

    fn table(store: &MessageStore) -> &SideTable<Self> {
        &store.sides.attachments
    }

    fn id(row: &Self::Row) -> i64 {
        row.0
    }

    fn stored(channel: Snowflake, (id, json): Self::Row) -> Option<Vec<Attachment>> {
        serde_json::from_str(&json)
            .inspect_err(|e| {
                let id = Snowflake::from_i64(id);
                tracing::warn!(%channel, %id, error = %e, "unreadable attachments");
            })
            .ok()
    }

    /// A message from the stream's unwritten events has its files already (and an update's
    /// list is the newer one).
    fn carried(message: &Message, _: &HashSet<Snowflake>) -> bool {
        !message.attachments.is_empty()
    }

    fn dress(message: &mut Message, files: Vec<Attachment>) {
        message.attachments = files;
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
        self.sides.attachments.insert(values).await
    }

    /// Forgets a deleted message's files (at stream time `at`). Idempotent.
    pub async fn delete_attachments(
        &self,
        channel: Snowflake,
        id: Snowflake,
        at: i64,
    ) -> Result<(), StoreError> {
        self.sides.attachments.delete(channel, id, at).await
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
            duration_secs: None,
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
