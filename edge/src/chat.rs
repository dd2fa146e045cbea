//! The chat path. A send becomes a stored event in the chat stream and is acknowledged only once
//! JetStream has it; the stream republishes it to the channel's subject, which is how every edge,
//! this one included, delivers it. Edits and deletes take the same path, so every copy of the
//! channel (live sessions, resumes, the store) sees a message's events in one order. Typing and
//! read markers go over core NATS and are not stored in the stream.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use proto::api::error::ErrorCode;
use proto::api::mentions::{MentionRights, Mentions};
use proto::api::messages::{
    Message, MessageContent, MessageReference, Nonce, ReferencedMessage, Typing,
};
use proto::api::reactions::{Emoji, ReactionEmoji};
use proto::events::{Event, MessageRef, ReactionEvent, ReadState};
use proto::gateway::{MessageEdit, MessageSend};
use proto::subjects::Subjects;
use proto::{Snowflake, SnowflakeGenerator};

use crate::archive::Archive;
use crate::attachments::Attachments;
use crate::directory::Directory;
use crate::metrics::EdgeMetrics;

mod embeds;
mod mentioned;
mod pins;

pub use embeds::embed_flags;

/// Why a send, edit or delete was refused. The session answers with an ERROR frame and stays open.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("unknown channel")]
    UnknownChannel,
    #[error("unknown message")]
    UnknownMessage,
    #[error(
        "only the author may edit a message; the author, the owner or a moderator may delete it"
    )]
    Forbidden,
    #[error("{0}")]
    InvalidContent(String),
    #[error("the nonce must be at most 64 characters")]
    InvalidNonce,
    #[error("you are sending too fast in this channel; wait a moment")]
    RateLimited,
    #[error("the message could not be stored; send it again with the same nonce")]
    Unavailable,
    #[error("message history is unavailable right now; try again")]
    HistoryUnavailable,
    /// A DM across a block (either way).
    #[error("messages cannot be sent in this DM: one of you has blocked the other")]
    Closed,
    /// A gateway request (op 8) the edge cannot answer as asked.
    #[error("{0}")]
    InvalidRequest(String),
    /// No such server, or not one of the user's.
    #[error("unknown server")]
    UnknownGuild,
    /// Timed out in the channel's server until then (Unix milliseconds).
    #[error("you are timed out until {}: you may read, not send", moment(*.0))]
    TimedOut(u64),
    /// A server's permissions do not allow it.
    #[error("{0}")]
    NotAllowed(String),
    /// The channel holds as many of something (pins) as it may.
    #[error("{0}")]
    LimitReached(String),
    /// The channel's slowmode: the user may send again after this long.
    #[error("this channel is in slowmode: you may send again in {} s", .0.as_secs().max(1))]
    Slowmode(Duration),
    /// Files the send names that media would not take (another's upload, another channel's,
    /// unfinished, taken already, unknown), or could not take now; `field` names the one
    /// (`attachments.N`).
    #[error("{field}: {message}")]
    Attachment {
        code: ErrorCode,
        field: String,
        message: String,
    },
}

/// A moment (Unix milliseconds) as people read it: RFC 3339 in UTC.
fn moment(unix_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

impl ChatError {
    /// The stable machine code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownChannel => "unknown_channel",
            Self::UnknownMessage => "unknown_message",
            Self::Forbidden => "forbidden",
            Self::InvalidContent(_) => "invalid_content",
            Self::InvalidNonce => "invalid_nonce",
            Self::RateLimited => "rate_limited",
            Self::Unavailable | Self::HistoryUnavailable => "unavailable",
            Self::Closed => "consent_required",
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnknownGuild => "unknown_guild",
            Self::TimedOut(_) => "timed_out",
            Self::NotAllowed(_) => "forbidden",
            Self::Slowmode(_) => "rate_limited",
            Self::LimitReached(_) => "limit_reached",
            Self::Attachment { code, .. } => match code {
                ErrorCode::Forbidden => "forbidden",
                ErrorCode::Conflict => "conflict",
                ErrorCode::ServiceUnavailable | ErrorCode::Internal => "unavailable",
                _ => "invalid_attachments",
            },
        }
    }
}

pub struct Chat {
    nats: async_nats::Client,
    js: jetstream::Context,
    /// The same over the lane's own connection: what sessions on the lane publish
    /// (`crate::lane`).
    lane_js: Option<jetstream::Context>,
    subjects: Subjects,
    ids: SnowflakeGenerator,
    metrics: EdgeMetrics,
    limits: ChannelLimits,
    slowmode: Slowmode,
    attachments: std::sync::Arc<Attachments>,
    /// Auth, asked for the names of the people a message mentions.
    directory: Directory,
}

/// Servers' slowmode: when each (user, channel) may send again. Kept per edge: someone sending
/// through sessions on two edges at once may send once on each.
#[derive(Default)]
pub struct Slowmode(std::sync::Mutex<std::collections::HashMap<(Snowflake, Snowflake), Instant>>);

impl Slowmode {
    /// Whether `user` may send in `channel`, whose slowmode is `seconds`, now (and counts it);
    /// else how long until they may.
    pub fn check(&self, user: Snowflake, channel: Snowflake, seconds: u32) -> Result<(), Duration> {
        if seconds == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut next = self.0.lock().expect("never poisoned");
        if let Some(at) = next.get(&(user, channel))
            && *at > now
        {
            return Err(*at - now);
        }
        next.insert(
            (user, channel),
            now + Duration::from_secs(u64::from(seconds)),
        );
        Ok(())
    }

    /// Forgets whoever may send again.
    pub fn trim(&self) {
        let now = Instant::now();
        let mut next = self.0.lock().expect("never poisoned");
        next.retain(|_, at| *at > now);
        next.shrink_to_fit();
    }
}

/// A limiter with one state per (user, channel).
type PerChannel<C> = RateLimiter<
    (Snowflake, Snowflake),
    DashMapStateStore<(Snowflake, Snowflake)>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// How often the edge forgets the limiter state of (user, channel) pairs that have been quiet
/// long enough to have their whole budget back.
pub const LIMITS_TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Per-(user, channel) budgets for sends and typing notices. They hold one entry for every pair
/// that ever sent or typed, so [`ChannelLimits::trim`] runs on a timer: an entry whose budget has
/// refilled is indistinguishable from no entry, and dropping it costs nothing.
pub struct ChannelLimits<C: Clock = DefaultClock> {
    sends: PerChannel<C>,
    typing: PerChannel<C>,
}

impl ChannelLimits {
    pub fn new(send_quota: Quota) -> Self {
        Self::with_clock(send_quota, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ChannelLimits<C> {
    pub fn with_clock(send_quota: Quota, clock: C) -> Self {
        let typing_quota = Quota::with_period(Duration::from_secs(5))
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            sends: RateLimiter::dashmap_with_clock(send_quota, clock.clone()),
            typing: RateLimiter::dashmap_with_clock(typing_quota, clock),
        }
    }

    /// Whether `user` may send (or edit) in `channel` now, taking one from the budget if so.
    pub fn send(&self, user: Snowflake, channel: Snowflake) -> bool {
        self.sends.check_key(&(user, channel)).is_ok()
    }

    /// Whether a typing notice from `user` in `channel` goes out now (at most one per 5 s).
    pub fn typing(&self, user: Snowflake, channel: Snowflake) -> bool {
        self.typing.check_key(&(user, channel)).is_ok()
    }

    /// Forgets every pair whose budget has refilled, and gives the memory back.
    pub fn trim(&self) {
        for limiter in [&self.sends, &self.typing] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// (user, channel) pairs held, sends and typing together.
    pub fn len(&self) -> usize {
        self.sends.len() + self.typing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Chat {
    pub fn new(
        nats: async_nats::Client,
        subjects: Subjects,
        ids: SnowflakeGenerator,
        metrics: EdgeMetrics,
        send_quota: Quota,
        attachments: std::sync::Arc<Attachments>,
        directory: Directory,
    ) -> Self {
        Self {
            js: jetstream::new(nats.clone()),
            lane_js: None,
            nats,
            subjects,
            ids,
            metrics,
            limits: ChannelLimits::new(send_quota),
            slowmode: Slowmode::default(),
            attachments,
            directory,
        }
    }

    /// Publishes of sessions on the edge's lane go over the lane's own connection, `js`.
    #[must_use]
    pub fn with_lane(mut self, js: Option<jetstream::Context>) -> Self {
        self.lane_js = js;
        self
    }

    /// Messages' files: claims, signed links, deletion.
    pub fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    /// Forgets quiet senders and typists every [`LIMITS_TRIM_INTERVAL`] until `shutdown`.
    pub async fn trim_limits(&self, shutdown: kit::lifecycle::Shutdown) {
        let mut every = tokio::time::interval(LIMITS_TRIM_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    self.limits.trim();
                    self.slowmode.trim();
                }
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// A new id from this edge's worker (messages, sessions).
    pub fn next_id(&self) -> Snowflake {
        self.ids.next_id()
    }

    /// Stores a message and returns it once JetStream has acknowledged it. The caller has checked
    /// that the author is a member (and may send there; `slowmode` is the channel's, in seconds,
    /// 0 for none or an exempt sender). A retry with the same nonce returns the message stored
    /// first.
    pub async fn send(
        &self,
        author: Snowflake,
        send: MessageSend,
        slowmode: u32,
        rights: &MentionRights,
        guild: Option<Snowflake>,
        archive: &Archive,
    ) -> Result<Message, ChatError> {
        let publishing = self
            .publish(author, send, slowmode, rights, guild, archive)
            .await?;
        self.acknowledged(publishing).await
    }

    /// Hands a message to JetStream without waiting for its acknowledgement, so a session can go
    /// on reading and writing while it is stored: sends from one session are published in the
    /// order they came, and [`Chat::acknowledged`] waits for each one's answer. A reply looks
    /// its original up first (history), to check it and carry its preview. Its mentions are
    /// parsed from its text, as `rights` (the author's) honour them, and named as members of
    /// `guild` (the channel's server, if it is a server's) or of the channel.
    pub async fn publish(
        &self,
        author: Snowflake,
        send: MessageSend,
        slowmode: u32,
        rights: &MentionRights,
        guild: Option<Snowflake>,
        archive: &Archive,
    ) -> Result<Publishing, ChatError> {
        // A message of files alone may have no text, as on Discord.
        let content = if send.content.is_empty() && !send.attachments.is_empty() {
            String::new()
        } else {
            MessageContent::parse(&send.content)
                .map_err(ChatError::InvalidContent)?
                .into()
        };
        let mentioned = mentions_of(&send.content, rights)?;
        let nonce = send
            .nonce
            .as_deref()
            .map(Nonce::parse)
            .transpose()
            .map_err(|_| ChatError::InvalidNonce)?;
        let channel = send.channel_id;
        if !self.limits.send(author, channel) {
            return Err(ChatError::RateLimited);
        }
        self.slowmode
            .check(author, channel, slowmode)
            .map_err(ChatError::Slowmode)?;
        let referenced_message = match send.message_reference {
            Some(reference) => Some(replied_to(archive, channel, reference).await?),
            None => None,
        };
        let mut id = self.ids.next_id();
        // Media takes the files before anyone can see the message: a message never names a file
        // that is not its own. A retried send (same nonce) whose files were taken gets them
        // again, with the id of the message they went into: it is that message (found stored,
        // or stored once by the nonce's dedupe, or now if the first try never was).
        let attachments = if send.attachments.is_empty() {
            Vec::new()
        } else {
            let (taken_by, files) = self
                .attachments
                .claim(
                    channel,
                    author,
                    id,
                    send.attachments,
                    nonce.as_ref().map(Nonce::as_str),
                )
                .await?;
            if taken_by != id {
                // That first try may be stored already, perhaps longer ago than the stream's
                // duplicate window remembers its nonce: then it is the answer, and publishing
                // it again would deliver it twice.
                let stored = archive.message(channel, taken_by).await.map_err(|e| {
                    tracing::warn!(error = %e, "cannot look a retried send's message up");
                    ChatError::HistoryUnavailable
                })?;
                if let Some(mut message) = stored {
                    // History keeps no nonces; the sender matches its answer by this one.
                    message.nonce = nonce.as_ref().map(|n| n.as_str().to_owned());
                    return Ok(Publishing {
                        message,
                        ack: None,
                        started: Instant::now(),
                    });
                }
            }
            id = taken_by;
            files
        };
        let mut message = Message {
            id,
            channel_id: channel,
            author_id: author,
            content,
            attachments,
            flags: send.flags & Message::SUPPRESS_EMBEDS,
            nonce: nonce.as_ref().map(|n| n.as_str().to_owned()),
            edited_at: None,
            message_reference: referenced_message
                .as_ref()
                .map(|original| MessageReference {
                    message_id: original.id,
                    channel_id: Some(channel),
                }),
            referenced_message,
            ..mentioned
        };
        self.name_mentions(author, guild, &mut message).await;
        // JetStream drops a second publish with this id inside its duplicate window.
        let dedupe = nonce
            .as_ref()
            .map(|nonce| format!("{channel}:{author}:{}", nonce.as_str()));
        let started = Instant::now();
        let published = self
            .publish_event(channel, &Event::MessageCreate(message.clone()), dedupe)
            .await;
        let ack = match published {
            Ok(ack) => ack,
            Err(e) => {
                // Never handed to JetStream: the files it took would belong to nothing.
                if !message.attachments.is_empty() {
                    self.attachments.forget(channel, Some(message.id)).await;
                }
                return Err(e);
            }
        };
        Ok(Publishing {
            message,
            ack: Some(ack),
            started,
        })
    }

    /// The stored message once JetStream has acknowledged a [`Chat::publish`]: the one just
    /// published, or for a retried nonce the one stored first.
    pub async fn acknowledged(&self, publishing: Publishing) -> Result<Message, ChatError> {
        let Publishing {
            message,
            ack,
            started,
        } = publishing;
        let mut message = match ack {
            None => message,
            Some(ack) => {
                let ack = self.acknowledgement(ack, started).await?;
                if ack.duplicate {
                    self.stored_message(ack.sequence).await?
                } else {
                    message
                }
            }
        };
        self.attachments.sign(&mut message);
        Ok(message)
    }

    /// Replaces the content of the editor's own message.
    /// Its mentions follow the new text.
    pub async fn edit(
        &self,
        editor: Snowflake,
        edit: MessageEdit,
        rights: &MentionRights,
        guild: Option<Snowflake>,
        archive: &Archive,
    ) -> Result<Message, ChatError> {
        let content = MessageContent::parse(&edit.content).map_err(ChatError::InvalidContent)?;
        let mentioned = mentions_of(&edit.content, rights)?;
        let channel = edit.channel_id;
        let current = find(archive, channel, edit.message_id).await?;
        if current.author_id != editor || current.kind.is_system() {
            return Err(ChatError::Forbidden);
        }
        if !self.limits.send(editor, channel) {
            return Err(ChatError::RateLimited);
        }
        let mut edited = Message {
            content: content.into(),
            edited_at: Some(proto::clock::unix_ms()),
            nonce: None,
            mentions: mentioned.mentions,
            mention_roles: mentioned.mention_roles,
            mention_everyone: mentioned.mention_everyone,
            ..current
        };
        self.name_mentions(editor, guild, &mut edited).await;
        self.store_event(channel, &Event::MessageUpdate(edited.clone()), None)
            .await?;
        self.attachments.sign(&mut edited);
        Ok(edited)
    }

    /// Publishes a message again with what media learnt of its files (MESSAGE_UPDATE, stored
    /// as an edit is, but not one: its content and edit time are as they were).
    pub async fn update_files(&self, message: Message) -> Result<(), ChatError> {
        let channel = message.channel_id;
        let mut message = Message {
            nonce: None,
            ..message
        };
        // Read back from the store, which keeps the mentions' ids only: named again among the
        // members of its server (asked of auth, only when it mentions anyone) or its channel.
        if !message.mentions.is_empty() {
            let guild = match self.directory.channel_guild(channel).await {
                Ok(guild) => guild,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot find a message's server to name mentions");
                    None
                }
            };
            self.name_mentions(message.author_id, guild, &mut message)
                .await;
        }
        self.store_event(channel, &Event::MessageUpdate(message), None)
            .await?;
        Ok(())
    }

    /// Deletes a message: the author's own, or any in a channel the actor owns or moderates (or,
    /// in a server's, where they have MANAGE_MESSAGES). Answers the message deleted.
    pub async fn delete(
        &self,
        actor: Snowflake,
        channel: Snowflake,
        id: Snowflake,
        moderates: bool,
        archive: &Archive,
    ) -> Result<Message, ChatError> {
        let current = find(archive, channel, id).await?;
        if current.author_id != actor && !moderates {
            return Err(ChatError::Forbidden);
        }
        let event = Event::MessageDelete(MessageRef {
            id,
            channel_id: channel,
        });
        self.store_event(channel, &event, None).await?;
        if !current.attachments.is_empty() {
            self.attachments.forget(channel, Some(id)).await;
        }
        Ok(current)
    }

    /// Adds (`add`) or takes back `user`'s reaction with `emoji` to a message of `channel`. The
    /// caller has checked that the actor may (their own reaction, or a moderator's removal). A
    /// reaction already as asked changes nothing and publishes nothing.
    pub async fn react(
        &self,
        user: Snowflake,
        channel: Snowflake,
        message: Snowflake,
        emoji: &ReactionEmoji,
        add: bool,
        archive: &Archive,
    ) -> Result<(), ChatError> {
        let now = archive
            .reacted(channel, message, emoji.as_str(), user)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot look a reaction up");
                ChatError::HistoryUnavailable
            })?
            .ok_or(ChatError::UnknownMessage)?;
        if now == add {
            return Ok(());
        }
        if !self.limits.send(user, channel) {
            return Err(ChatError::RateLimited);
        }
        let reaction = ReactionEvent {
            user_id: user,
            channel_id: channel,
            message_id: message,
            emoji: Emoji::unicode(emoji.as_str()),
        };
        let event = if add {
            Event::MessageReactionAdd(reaction)
        } else {
            Event::MessageReactionRemove(reaction)
        };
        self.store_event(channel, &event, None).await?;
        Ok(())
    }

    /// Removes every reaction of a message (the caller has checked MANAGE_MESSAGES).
    pub async fn clear_reactions(
        &self,
        channel: Snowflake,
        message: Snowflake,
        archive: &Archive,
    ) -> Result<(), ChatError> {
        find(archive, channel, message).await?;
        let event = Event::MessageReactionRemoveAll(MessageRef {
            id: message,
            channel_id: channel,
        });
        self.store_event(channel, &event, None).await?;
        Ok(())
    }

    /// Deletes a message without looking it up (a banned member's, found by reading history).
    pub async fn purge(&self, channel: Snowflake, id: Snowflake) -> Result<(), ChatError> {
        let event = Event::MessageDelete(MessageRef {
            id,
            channel_id: channel,
        });
        self.store_event(channel, &event, None).await?;
        self.attachments.forget(channel, Some(id)).await;
        Ok(())
    }

    /// Stores an event in the chat stream and waits for JetStream's acknowledgement.
    async fn store_event(
        &self,
        channel: Snowflake,
        event: &Event,
        dedupe: Option<String>,
    ) -> Result<PublishAck, ChatError> {
        let started = Instant::now();
        let ack = self.publish_event(channel, event, dedupe).await?;
        self.acknowledgement(ack, started).await
    }

    /// Hands an event to JetStream (in the order of the calls); its acknowledgement comes later.
    async fn publish_event(
        &self,
        channel: Snowflake,
        event: &Event,
        dedupe: Option<String>,
    ) -> Result<PublishAckFuture, ChatError> {
        let mut publish = PublishMessage::build().payload(event.to_json().into());
        if let Some(id) = dedupe {
            publish = publish.message_id(id);
        }
        // On the lane, over its own connection: its acknowledgement then comes to the lane's
        // reactor, not to the main runtime's busy one.
        let js = match &self.lane_js {
            Some(lane) if crate::lane::here() => lane,
            _ => &self.js,
        };
        js.send_publish(self.subjects.chat_intake(channel), publish)
            .await
            .map_err(unavailable)
    }

    /// Waits for JetStream's answer to a publish made at `started`.
    async fn acknowledgement(
        &self,
        ack: PublishAckFuture,
        started: Instant,
    ) -> Result<PublishAck, ChatError> {
        let ack = ack.await.map_err(unavailable)?;
        self.metrics
            .send_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(ack)
    }

    /// The message a stream sequence holds (for answering a retried send with the original).
    async fn stored_message(&self, sequence: u64) -> Result<Message, ChatError> {
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
        stored.await.ok_or(ChatError::Unavailable)
    }

    /// Tells a channel that `user` has read it up to `message`: on the channel's subject when it
    /// is small enough for read receipts (every member sees them), else only in the user's inbox
    /// (their other devices clear the badge).
    pub async fn read(&self, read: ReadState, receipts: bool) {
        let subject = if receipts {
            self.subjects.channel_reads(read.channel_id)
        } else {
            self.subjects.user_inbox(read.user_id)
        };
        let event = Event::MessageAck(read);
        if let Err(e) = self.nats.publish(subject, event.to_json().into()).await {
            tracing::debug!(error = %e, "read marker not published");
        }
    }

    /// Tells a channel that `user` is typing, at most once per user and channel per 5 seconds.
    pub async fn typing(&self, user: Snowflake, channel: Snowflake) {
        if !self.limits.typing(user, channel) {
            return;
        }
        let event = Event::TypingStart(Typing {
            channel_id: channel,
            user_id: user,
            timestamp: proto::clock::unix_ms() / 1000,
        });
        let subject = self.subjects.channel_typing(channel);
        if let Err(e) = self.nats.publish(subject, event.to_json().into()).await {
            tracing::debug!(error = %e, "typing notice not published");
        }
    }
}

/// A message carrying only the mentions of `text` that `rights` honour; or why it mentions too
/// many.
fn mentions_of(text: &str, rights: &MentionRights) -> Result<Message, ChatError> {
    let found = Mentions::parse(text)
        .map_err(ChatError::InvalidContent)?
        .honoured(rights);
    Ok(Message {
        mentions: found.users.into_iter().map(Into::into).collect(),
        mention_roles: found.roles,
        mention_everyone: found.everyone,
        ..Message::default()
    })
}

/// A publish JetStream has not answered yet.
pub struct Publishing {
    message: Message,
    /// `None` for a retried send found stored already: nothing was published.
    ack: Option<PublishAckFuture>,
    started: Instant,
}

fn unavailable(e: impl std::fmt::Display) -> ChatError {
    tracing::warn!(error = %e, "JetStream did not acknowledge a chat event");
    ChatError::Unavailable
}

/// The preview of the message a reply answers: one of the same channel that exists.
async fn replied_to(
    archive: &Archive,
    channel: Snowflake,
    reference: MessageReference,
) -> Result<ReferencedMessage, ChatError> {
    if reference.channel_id.is_some_and(|c| c != channel) {
        return Err(ChatError::InvalidRequest(
            "a reply answers a message of the same channel".to_owned(),
        ));
    }
    match find(archive, channel, reference.message_id).await {
        Ok(original) if original.kind.is_system() => Err(ChatError::InvalidRequest(
            "a system message cannot be replied to".to_owned(),
        )),
        Ok(original) => Ok(ReferencedMessage::of(&original)),
        Err(ChatError::UnknownMessage) => Err(ChatError::InvalidRequest(
            "the message replied to does not exist (or was deleted)".to_owned(),
        )),
        Err(e) => Err(e),
    }
}

/// A message of `channel` that history knows.
async fn find(archive: &Archive, channel: Snowflake, id: Snowflake) -> Result<Message, ChatError> {
    archive
        .message(channel, id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot look a message up");
            ChatError::HistoryUnavailable
        })?
        .ok_or(ChatError::UnknownMessage)
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn id(n: u64) -> Snowflake {
        Snowflake::from_u64(n)
    }

    #[test]
    fn limits_forget_the_channels_typed_in_long_ago() {
        let clock = FakeRelativeClock::default();
        let limits = ChannelLimits::with_clock(
            kit::config::RateSpec::parse("5/5s").unwrap().quota(),
            clock.clone(),
        );
        for channel in 0..1_000 {
            assert!(limits.typing(id(1), id(channel)));
            assert!(limits.send(id(1), id(channel)));
        }
        assert_eq!(limits.len(), 2_000);

        clock.advance(Duration::from_secs(60));
        assert!(limits.typing(id(1), id(5_000)));
        limits.trim();
        assert_eq!(limits.len(), 1, "only the pair active just now is kept");
    }

    #[test]
    fn trimming_keeps_a_budget_that_is_still_being_spent() {
        let clock = FakeRelativeClock::default();
        let limits = ChannelLimits::with_clock(
            kit::config::RateSpec::parse("2/10s").unwrap().quota(),
            clock.clone(),
        );
        assert!(limits.send(id(1), id(2)));
        assert!(limits.send(id(1), id(2)));
        assert!(!limits.send(id(1), id(2)));
        clock.advance(Duration::from_secs(1));
        limits.trim();
        // Forgetting the pair would hand its budget back early.
        assert!(!limits.send(id(1), id(2)), "a trim refilled a spent budget");
    }
}

#[cfg(test)]
mod slowmode_tests {
    use super::*;

    #[test]
    fn slowmode_lets_one_message_through_per_period_and_none_is_free() {
        let slow = Slowmode::default();
        let (user, channel) = (Snowflake::from_u64(1), Snowflake::from_u64(2));
        assert!(slow.check(user, channel, 0).is_ok());
        assert!(slow.check(user, channel, 0).is_ok());
        assert!(slow.check(user, channel, 30).is_ok());
        let wait = slow.check(user, channel, 30).unwrap_err();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        assert!(slow.check(Snowflake::from_u64(3), channel, 30).is_ok());
    }
}
