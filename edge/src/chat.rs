//! The chat path. A send becomes a stored event in the chat stream and is acknowledged only once
//! JetStream has it; the stream republishes it to the channel's subject, which is how every edge,
//! this one included, delivers it. Typing goes over core NATS and is never stored.

use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, message::PublishMessage};
use futures::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shared::api::messages::{Message, MessageContent, Nonce, Typing};
use shared::events::Event;
use shared::gateway::MessageSend;
use shared::subjects::Subjects;
use shared::{Snowflake, SnowflakeGenerator};

use crate::fanout::Delivery;
use crate::metrics::EdgeMetrics;

/// Why a send was refused. The session answers with an ERROR frame and stays open.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("unknown channel")]
    UnknownChannel,
    #[error("{0}")]
    InvalidContent(String),
    #[error("the nonce must be at most 64 characters")]
    InvalidNonce,
    #[error("you are sending too fast in this channel; wait a moment")]
    RateLimited,
    #[error("the message could not be stored; send it again with the same nonce")]
    Unavailable,
}

impl SendError {
    /// The stable machine code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownChannel => "unknown_channel",
            Self::InvalidContent(_) => "invalid_content",
            Self::InvalidNonce => "invalid_nonce",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Why a resume cannot be served from the stream.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the stream no longer holds sequence {0}")]
    TooOld(u64),
    #[error("more than {0} events were missed")]
    TooMany(usize),
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_error(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::JetStream(e.to_string())
}

/// The most events a resume replays; a client further behind identifies anew and reads history.
const MAX_REPLAY: usize = 10_000;

pub struct Chat {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
    ids: SnowflakeGenerator,
    metrics: EdgeMetrics,
    sends: DefaultKeyedRateLimiter<(Snowflake, Snowflake)>,
    typing: DefaultKeyedRateLimiter<(Snowflake, Snowflake)>,
}

impl Chat {
    pub fn new(
        nats: async_nats::Client,
        subjects: Subjects,
        ids: SnowflakeGenerator,
        metrics: EdgeMetrics,
        send_quota: Quota,
    ) -> Self {
        let typing_quota = Quota::with_period(Duration::from_secs(5))
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            js: jetstream::new(nats.clone()),
            nats,
            subjects,
            ids,
            metrics,
            sends: RateLimiter::keyed(send_quota),
            typing: RateLimiter::keyed(typing_quota),
        }
    }

    /// A new id from this edge's worker (messages, sessions).
    pub fn next_id(&self) -> Snowflake {
        self.ids.next_id()
    }

    /// Stores a message and returns it once JetStream has acknowledged it. The caller has checked
    /// that the author is a member. A retry with the same nonce returns the message stored first.
    pub async fn send(&self, author: Snowflake, send: MessageSend) -> Result<Message, SendError> {
        let content = MessageContent::parse(&send.content).map_err(SendError::InvalidContent)?;
        let nonce = send
            .nonce
            .as_deref()
            .map(Nonce::parse)
            .transpose()
            .map_err(|_| SendError::InvalidNonce)?;
        let channel = send.channel_id;
        if self.sends.check_key(&(author, channel)).is_err() {
            return Err(SendError::RateLimited);
        }
        let message = Message {
            id: self.ids.next_id(),
            channel_id: channel,
            author_id: author,
            content: content.into(),
            nonce: nonce.as_ref().map(|n| n.as_str().to_owned()),
            edited_at: None,
        };
        let mut publish =
            PublishMessage::build().payload(Event::MessageCreate(message.clone()).to_json().into());
        if let Some(nonce) = &nonce {
            // JetStream drops a second publish with this id inside its duplicate window.
            publish = publish.message_id(format!("{channel}:{author}:{}", nonce.as_str()));
        }
        let started = Instant::now();
        let ack = async {
            self.js
                .send_publish(self.subjects.chat_intake(channel), publish)
                .await?
                .await
        }
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "JetStream did not acknowledge a send");
            SendError::Unavailable
        })?;
        self.metrics
            .send_seconds
            .observe(started.elapsed().as_secs_f64());
        if ack.duplicate {
            return self.stored_message(ack.sequence).await;
        }
        Ok(message)
    }

    /// The message a stream sequence holds (for answering a retried send with the original).
    async fn stored_message(&self, sequence: u64) -> Result<Message, SendError> {
        let stored = async {
            let stream = self
                .js
                .get_stream(self.subjects.chat_stream_name())
                .await
                .ok()?;
            let raw = stream.get_raw_message(sequence).await.ok()?;
            match serde_json::from_slice(&raw.payload).ok()? {
                Event::MessageCreate(message) => Some(message),
                _ => None,
            }
        };
        stored.await.ok_or(SendError::Unavailable)
    }

    /// Tells a channel that `user` is typing, at most once per user and channel per 5 seconds.
    pub async fn typing(&self, user: Snowflake, channel: Snowflake) {
        if self.typing.check_key(&(user, channel)).is_err() {
            return;
        }
        let event = Event::TypingStart(Typing {
            channel_id: channel,
            user_id: user,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        let subject = self.subjects.channel_typing(channel);
        if let Err(e) = self.nats.publish(subject, event.to_json().into()).await {
            tracing::debug!(error = %e, "typing notice not published");
        }
    }

    /// The chat stream's last sequence: where a new session's live delivery begins.
    pub async fn last_sequence(&self) -> Result<u64, ReplayError> {
        let mut stream = self
            .js
            .get_stream(self.subjects.chat_stream_name())
            .await
            .map_err(js_error)?;
        Ok(stream.info().await.map_err(js_error)?.state.last_sequence)
    }

    /// Every stored event of `channels` after `after` up to and including `head`, in order.
    pub async fn replay(
        &self,
        channels: &[Snowflake],
        after: u64,
        head: u64,
    ) -> Result<Vec<Delivery>, ReplayError> {
        if channels.is_empty() || after >= head {
            return Ok(Vec::new());
        }
        let mut stream = self
            .js
            .get_stream(self.subjects.chat_stream_name())
            .await
            .map_err(js_error)?;
        let first = stream.info().await.map_err(js_error)?.state.first_sequence;
        if after + 1 < first {
            return Err(ReplayError::TooOld(after));
        }
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subjects: channels
                    .iter()
                    .map(|&ch| self.subjects.chat_intake(ch))
                    .collect(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(js_error)?;
        let mut replay = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            let _ = stream.delete_consumer(&consumer.cached_info().name).await;
            return Ok(replay);
        }
        'fetching: loop {
            let mut batch = consumer
                .fetch()
                .max_messages(512)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(js_error)?;
            let mut got_any = false;
            while let Some(message) = batch.next().await {
                let message = message.map_err(js_error)?;
                let info = message.info().map_err(js_error)?;
                let (seq, pending) = (info.stream_sequence, info.pending);
                got_any = true;
                if seq > head {
                    break 'fetching;
                }
                if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                    replay.push(Delivery::new(Some(seq), event));
                }
                if replay.len() > MAX_REPLAY {
                    return Err(ReplayError::TooMany(MAX_REPLAY));
                }
                if seq == head || pending == 0 {
                    break 'fetching;
                }
            }
            if !got_any {
                break;
            }
        }
        let name = consumer.cached_info().name.clone();
        let _ = stream.delete_consumer(&name).await;
        Ok(replay)
    }
}

/// The channel an event is about, if any.
pub fn channel_of(event: &Event) -> Option<Snowflake> {
    match event {
        Event::MessageCreate(message) => Some(message.channel_id),
        Event::TypingStart(typing) => Some(typing.channel_id),
        Event::ChannelCreate(channel) | Event::ChannelUpdate(channel) => Some(channel.id),
        Event::ChannelDelete(r) => Some(r.channel_id),
        Event::ChannelMemberAdd(added) => Some(added.channel_id),
        Event::ChannelMemberRemove(r)
        | Event::ChannelModeratorAdd(r)
        | Event::ChannelModeratorRemove(r) => Some(r.channel_id),
        Event::UserUpdate(_) | Event::SessionRevoked(_) | Event::PresenceUpdate(_) => None,
    }
}
