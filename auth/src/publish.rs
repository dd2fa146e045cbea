//! Publishing `proto::events` on NATS after a change is committed.
//!
//! Events go on core NATS (not JetStream): they tell live clients and edges what changed, and a
//! client that missed one re-reads over REST on reconnect. A failed publish is logged, never turned
//! into a failed request: the change itself is already committed.

use proto::Snowflake;
use proto::events::Event;
use proto::subjects::Subjects;

#[derive(Clone)]
pub struct Publisher {
    nats: async_nats::Client,
    subjects: Subjects,
}

impl Publisher {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self { nats, subjects }
    }

    async fn send(&self, subject: String, payload: bytes::Bytes, name: &str) {
        if let Err(e) = self.nats.publish(subject.clone(), payload).await {
            tracing::warn!(error = %e, %subject, event = name, "cannot publish event");
        }
    }

    /// Publishes `event` to each user's inbox and, when given, the channel's subject.
    pub async fn publish(&self, event: &Event, inboxes: &[Snowflake], channel: Option<Snowflake>) {
        let payload = bytes::Bytes::from(event.to_json());
        for user in inboxes {
            self.send(
                self.subjects.user_inbox(*user),
                payload.clone(),
                event.name(),
            )
            .await;
        }
        if let Some(channel) = channel {
            self.send(self.subjects.channel_events(channel), payload, event.name())
                .await;
        }
    }

    /// A channel event to its subject and to the inboxes of the members its change concerns.
    pub async fn channel(&self, event: &Event, channel: Snowflake, inboxes: &[Snowflake]) {
        self.publish(event, inboxes, Some(channel)).await;
    }

    /// A server's event, to its subject (and the inboxes of the members it concerns).
    pub async fn guild(&self, event: &Event, guild: Snowflake, inboxes: &[Snowflake]) {
        let payload = bytes::Bytes::from(event.to_json());
        for user in inboxes {
            self.send(
                self.subjects.user_inbox(*user),
                payload.clone(),
                event.name(),
            )
            .await;
        }
        self.send(self.subjects.guild_events(guild), payload, event.name())
            .await;
    }

    /// A message to each channel subject (USER_UPDATE to everyone who shares a channel).
    pub async fn to_channels(&self, event: &Event, channels: &[Snowflake]) {
        let payload = bytes::Bytes::from(event.to_json());
        for channel in channels {
            self.send(
                self.subjects.channel_events(*channel),
                payload.clone(),
                event.name(),
            )
            .await;
        }
    }

    /// Tells media that channels are deleted: every file of their messages goes
    /// (`{p}.media.forget` without a message).
    pub async fn forget_files(&self, channels: &[Snowflake]) {
        for channel in channels {
            let forget = proto::api::attachments::Forget {
                channel_id: *channel,
                message_id: None,
            };
            let payload = serde_json::to_vec(&forget).expect("forgets serialise");
            self.send(self.subjects.media_forget(), payload.into(), "media.forget")
                .await;
        }
    }

    /// Makes sure what was published has reached the server (before answering a request whose
    /// client may act on the event).
    pub async fn flush(&self) {
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(error = %e, "cannot flush published events");
        }
    }
}
