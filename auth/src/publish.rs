//! Publishing `proto::events` after a change is committed.
//!
//! What auth tells users, servers and channels goes through the events stream (JetStream,
//! `{p}.ev.*.>`, `kit::stream::EventsStreamConfig`), which republishes each event to the subject
//! edges follow with its sequence and its subject's previous one: an edge that loses one during
//! a NATS fault sees the gap and reads it back (`edge/src/continuity.rs`), so no device misses a
//! membership change and no edge keeps permissions a change took away.
//!
//! A publish JetStream does not acknowledge is tried again a few times (with the same message
//! id, so the stream stores it once), then published on core NATS to the delivered subject as a
//! last resort, and logged. The request itself does not fail: the change is committed, and a
//! client told it failed would retry a change that was made. An edge that lost even that copy
//! finds out no later than its next check of the topic and, when the stream cannot fill the gap,
//! closes the sessions concerned so that they resume with the current state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use proto::Snowflake;
use proto::events::Event;
use proto::subjects::Subjects;

/// How many times a publish is tried before it goes on core NATS only.
const ATTEMPTS: u32 = 3;

/// How long one publish waits for JetStream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Publisher {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    /// Makes each publish's message id unique (JetStream drops a retried one it already stored).
    ids: Arc<MessageIds>,
}

struct MessageIds {
    /// Random per process: ids of two auth instances never collide.
    stem: u64,
    next: AtomicU64,
}

impl MessageIds {
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("auth-{:016x}-{n}", self.stem)
    }
}

/// One event for one subject of the events stream.
struct Outgoing {
    /// The intake subject (`{p}.ev....`).
    intake: String,
    /// Where the stream republishes it, for the core-NATS last resort.
    delivered: String,
}

impl Publisher {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        let mut stem = [0u8; 8];
        getrandom::fill(&mut stem).expect("the OS has randomness");
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(nats.clone());
        Self {
            nats,
            js,
            subjects,
            ids: Arc::new(MessageIds {
                stem: u64::from_le_bytes(stem),
                next: AtomicU64::new(0),
            }),
        }
    }

    fn inbox(&self, user: Snowflake) -> Outgoing {
        Outgoing {
            intake: self.subjects.user_intake(user),
            delivered: self.subjects.user_inbox(user),
        }
    }

    fn channel_meta(&self, channel: Snowflake) -> Outgoing {
        Outgoing {
            intake: self.subjects.channel_events_intake(channel),
            delivered: self.subjects.channel_events(channel),
        }
    }

    fn guild_topic(&self, guild: Snowflake) -> Outgoing {
        Outgoing {
            intake: self.subjects.guild_intake(guild),
            delivered: self.subjects.guild_events(guild),
        }
    }

    /// Publishes one event to every subject through the events stream: all at once, then each
    /// not acknowledged again, up to [`ATTEMPTS`] times, then on core NATS.
    async fn send(&self, event: &Event, to: Vec<Outgoing>) {
        if to.is_empty() {
            return;
        }
        let payload = bytes::Bytes::from(event.to_json());
        let mut pending: Vec<(Outgoing, String)> =
            to.into_iter().map(|out| (out, self.ids.next())).collect();
        for attempt in 1..=ATTEMPTS {
            let tries = pending
                .iter()
                .map(|(out, id)| self.store(out, id, &payload));
            let results = futures::future::join_all(tries).await;
            let mut failed = Vec::new();
            for ((out, id), result) in pending.into_iter().zip(results) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, subject = %out.intake, attempt,
                        event = event.name(), "the events stream did not take an event");
                    failed.push((out, id));
                }
            }
            pending = failed;
            if pending.is_empty() {
                return;
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
        for (out, _) in pending {
            tracing::warn!(subject = %out.intake, event = event.name(),
                "the events stream did not take an event; published on core NATS only");
            if let Err(e) = self.nats.publish(out.delivered, payload.clone()).await {
                tracing::warn!(error = %e, event = event.name(), "cannot publish event");
            }
        }
    }

    /// One publish to the events stream, acknowledged.
    async fn store(&self, out: &Outgoing, id: &str, payload: &bytes::Bytes) -> Result<(), String> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload.clone())
            .message_id(id);
        let ack = self
            .js
            .send_publish(out.intake.clone(), publish)
            .await
            .map_err(|e| e.to_string())?;
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Publishes `event` to each user's inbox and, when given, the channel's subject.
    pub async fn publish(&self, event: &Event, inboxes: &[Snowflake], channel: Option<Snowflake>) {
        let mut to: Vec<Outgoing> = inboxes.iter().map(|user| self.inbox(*user)).collect();
        to.extend(channel.map(|channel| self.channel_meta(channel)));
        self.send(event, to).await;
    }

    /// A channel event to its subject and to the inboxes of the members its change concerns.
    pub async fn channel(&self, event: &Event, channel: Snowflake, inboxes: &[Snowflake]) {
        self.publish(event, inboxes, Some(channel)).await;
    }

    /// A server's event, to its subject (and the inboxes of the members it concerns).
    pub async fn guild(&self, event: &Event, guild: Snowflake, inboxes: &[Snowflake]) {
        let mut to: Vec<Outgoing> = inboxes.iter().map(|user| self.inbox(*user)).collect();
        to.push(self.guild_topic(guild));
        self.send(event, to).await;
    }

    /// A message to each channel subject (USER_UPDATE to everyone who shares a channel).
    pub async fn to_channels(&self, event: &Event, channels: &[Snowflake]) {
        let to = channels.iter().map(|c| self.channel_meta(*c)).collect();
        self.send(event, to).await;
    }

    /// Tells media that channels are deleted: every file of their messages goes
    /// (`{p}.media.forget` without a message). Core NATS: media is not an edge.
    pub async fn forget_files(&self, channels: &[Snowflake]) {
        for channel in channels {
            let forget = proto::api::attachments::Forget {
                channel_id: *channel,
                message_id: None,
            };
            let payload = serde_json::to_vec(&forget).expect("forgets serialise");
            if let Err(e) = self
                .nats
                .publish(self.subjects.media_forget(), payload.into())
                .await
            {
                tracing::warn!(error = %e, "cannot publish media.forget");
            }
        }
    }

    /// Makes sure what was published has reached the server (before answering a request whose
    /// client may act on the event). Events the stream acknowledged are there already; this
    /// covers the core-NATS ones.
    pub async fn flush(&self) {
        if let Err(e) = self.nats.flush().await {
            tracing::warn!(error = %e, "cannot flush published events");
        }
    }
}
