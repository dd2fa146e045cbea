//! Pins through the chat stream: CHANNEL_PINS_UPDATE, and for a pin the system message "ann
//! pinned a message" (a MESSAGE_CREATE of type 6 referencing it), so every device, resume and
//! history page sees them in the stream's order.

use proto::Snowflake;
use proto::api::messages::{Message, MessageReference, MessageType, ReferencedMessage};
use proto::api::pins::{MAX_PINS, PinsUpdate};
use proto::events::Event;

use super::{Chat, ChatError, find};
use crate::archive::Archive;

impl Chat {
    /// Pins (`pin`) or unpins a message of `channel` (of server `guild`, if any) as `actor`; the
    /// caller has checked that they may. A message already as asked changes nothing and
    /// publishes nothing. A channel holds at most [`MAX_PINS`]; a system message is never pinned.
    pub async fn pin(
        &self,
        actor: Snowflake,
        channel: Snowflake,
        guild: Option<Snowflake>,
        message: Snowflake,
        pin: bool,
        archive: &Archive,
    ) -> Result<(), ChatError> {
        let target = find(archive, channel, message).await?;
        let pins = archive.pinned(channel).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read a channel's pins");
            ChatError::HistoryUnavailable
        })?;
        if pins.iter().any(|(m, _)| m.id == message) == pin {
            return Ok(());
        }
        if pin && target.kind.is_system() {
            return Err(ChatError::InvalidRequest(
                "a system message cannot be pinned".to_owned(),
            ));
        }
        if pin && pins.len() >= MAX_PINS {
            return Err(ChatError::LimitReached(format!(
                "a channel has at most {MAX_PINS} pinned messages; unpin one first"
            )));
        }
        if !self.limits.send(actor, channel) {
            return Err(ChatError::RateLimited);
        }
        let now = proto::clock::unix_ms();
        let last_pin_timestamp = if pin {
            Some(now)
        } else {
            pins.iter()
                .filter(|(m, _)| m.id != message)
                .map(|(_, at)| *at)
                .max()
        };
        let update = PinsUpdate {
            channel_id: channel,
            guild_id: guild,
            last_pin_timestamp,
            message_id: message,
            pinned: pin,
        };
        self.store_event(channel, &Event::ChannelPinsUpdate(update), None)
            .await?;
        if pin {
            let notice = Message {
                id: self.ids.next_id(),
                channel_id: channel,
                author_id: actor,
                content: String::new(),
                kind: MessageType::CHANNEL_PINNED_MESSAGE,
                message_reference: Some(MessageReference {
                    message_id: message,
                    channel_id: Some(channel),
                }),
                referenced_message: Some(ReferencedMessage::of(&target)),
                ..Message::default()
            };
            self.store_event(channel, &Event::MessageCreate(notice), None)
                .await?;
        }
        Ok(())
    }
}
