//! A message's link previews, the edge's half (media fetches them, `media/src/unfurl.rs`): a
//! send's SUPPRESS_EMBEDS flag (asked for, or set for a sender without EMBED_LINKS), and the
//! author removing a message's previews for everyone.

use proto::Snowflake;
use proto::api::channels::Channel;
use proto::api::messages::Message;
use proto::events::Event;
use proto::permissions::Permissions;

use super::{Chat, ChatError, find};
use crate::archive::Archive;

/// A send's flags: the SUPPRESS_EMBEDS it asked for, or set because the author lacks
/// EMBED_LINKS in a server's channel (their links then get no previews, as on Discord).
pub fn embed_flags(asked: u64, permissions: Option<Permissions>) -> u64 {
    let lacks = permissions.is_some_and(|p| !p.has(Permissions::EMBED_LINKS));
    let asked = asked & Message::SUPPRESS_EMBEDS;
    if lacks {
        Message::SUPPRESS_EMBEDS
    } else {
        asked
    }
}

impl Chat {
    /// Sets a message's flags: SUPPRESS_EMBEDS removes its link previews for everyone (and one
    /// arriving later is dropped); clearing it again does not bring removed previews back.
    /// The author's own message, or any for one who `moderates`. Like processing, not an edit:
    /// its content and edit time stay as they were. `place` is the message's channel (its
    /// server names the people it mentions).
    pub async fn set_flags(
        &self,
        actor: Snowflake,
        place: &Channel,
        id: Snowflake,
        flags: u64,
        moderates: bool,
        archive: &Archive,
    ) -> Result<Message, ChatError> {
        let (channel, guild) = (place.id, place.guild_id);
        if flags & !Message::SUPPRESS_EMBEDS != 0 {
            return Err(ChatError::InvalidRequest(
                "only SUPPRESS_EMBEDS (1 << 2) may be set or cleared".to_owned(),
            ));
        }
        let current = find(archive, channel, id).await?;
        if (current.author_id != actor && !moderates) || current.kind.is_system() {
            return Err(ChatError::Forbidden);
        }
        if current.flags == flags {
            let mut current = current;
            self.attachments.sign(&mut current);
            return Ok(current);
        }
        if !self.limits.send(actor, channel) {
            return Err(ChatError::RateLimited);
        }
        let embeds = if flags & Message::SUPPRESS_EMBEDS != 0 {
            Vec::new()
        } else {
            current.embeds.clone()
        };
        let mut updated = Message {
            flags,
            embeds,
            nonce: None,
            ..current
        };
        // Read back from the store, which keeps the mentions' ids only.
        self.name_mentions(updated.author_id, guild, &mut updated)
            .await;
        self.store_event(channel, &Event::MessageUpdate(updated.clone()), None)
            .await?;
        self.attachments.sign(&mut updated);
        Ok(updated)
    }
}
