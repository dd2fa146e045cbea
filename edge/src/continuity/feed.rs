//! What continuity follows: one [`Feed`] per topic (a channel, a user's inbox, a server), with a
//! watermark per stream it gets stored events from, and [`Streams`], which reads both streams
//! back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kit::stream::{CHANNELS_PER_CHECK, ChatStream, EventsStream, ReadError};
use proto::Snowflake;
use proto::gateway::CloseCode;
use proto::subjects::Subjects;
use tokio_util::sync::CancellationToken;

use super::{Source, Watermark};
use crate::attachments::Attachments;
use crate::fanout::{Delivery, Sessions};
use crate::guilds::GuildFeed;

/// The topic a feed follows.
#[derive(Clone)]
pub enum Followed {
    /// A channel (`{p}.ch.{channel}.>`): its chat events from the chat stream, its changes
    /// (`.meta`) from the events stream; typing and read receipts are not stored.
    Channel(Snowflake),
    /// A user's inbox (`{p}.user.{user}`): auth's events from the events stream; presence's and
    /// read markers are not stored.
    Inbox(Snowflake),
    /// A server (`{p}.guild.{guild}`) from the events stream: each event updates the edge's
    /// copy of the server (its permissions) before it is handed out.
    Guild(Arc<GuildFeed>),
}

impl Followed {
    /// The channel, for a channel's feed.
    pub fn channel(&self) -> Option<Snowflake> {
        match self {
            Self::Channel(channel) => Some(*channel),
            Self::Inbox(_) | Self::Guild(_) => None,
        }
    }

    /// Where the events stream stores this topic's events.
    pub fn events_subject(&self, subjects: &Subjects) -> String {
        match self {
            Self::Channel(channel) => subjects.channel_events_intake(*channel),
            Self::Inbox(user) => subjects.user_intake(*user),
            Self::Guild(guild) => subjects.guild_intake(guild.id),
        }
    }
}

/// One topic as continuity sees it: a watermark per stream (the last sequence of each it handed
/// out) and its sessions. Two words of watermark per topic, whatever its sessions.
pub struct Feed {
    pub followed: Followed,
    chat: AtomicU64,
    events: AtomicU64,
    pub(crate) sessions: Sessions,
    /// Cancelled when the topic's last session leaves: the subscription is dropped.
    pub(super) stop: CancellationToken,
}

impl Feed {
    /// A topic starting from these watermarks: the streams' last sequences of its subjects, read
    /// after its subscription is in place.
    pub fn new(followed: Followed, chat: u64, events: u64, sessions: Sessions) -> Arc<Self> {
        Arc::new(Self {
            followed,
            chat: AtomicU64::new(chat),
            events: AtomicU64::new(events),
            sessions,
            stop: CancellationToken::new(),
        })
    }

    /// The channel, for a channel's feed.
    pub fn channel(&self) -> Option<Snowflake> {
        self.followed.channel()
    }

    /// Where the events stream stores this topic's events.
    pub fn events_subject(&self, subjects: &Subjects) -> String {
        self.followed.events_subject(subjects)
    }

    /// Which streams this topic gets stored events from.
    pub fn sources(&self) -> &'static [Source] {
        match self.followed {
            Followed::Channel(_) => &[Source::Chat, Source::Events],
            Followed::Inbox(_) | Followed::Guild(_) => &[Source::Events],
        }
    }

    pub fn watermark(&self, source: Source) -> Watermark {
        Watermark::new(self.mark(source).load(Ordering::Acquire))
    }

    fn mark(&self, source: Source) -> &AtomicU64 {
        match source {
            Source::Chat => &self.chat,
            Source::Events => &self.events,
        }
    }

    pub(super) fn advance(&self, source: Source, seq: u64) {
        self.mark(source).fetch_max(seq, Ordering::AcqRel);
    }

    /// The topic is gone: its subscription ends.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// What was lost could not be read back: closes every session of the topic with a
    /// resumable code (their resume brings them up to date), and a server's copy is read anew
    /// from auth (the lost event may have changed who sees what).
    pub(super) fn resume_all(&self, nats: &async_nats::Client, subjects: &Subjects) {
        if let Followed::Guild(guild) = &self.followed {
            guild.refresh(nats.clone(), subjects.clone());
        }
        let sessions = self
            .sessions
            .read()
            .expect("no code panics while holding the session map");
        for handle in sessions.values() {
            handle.kick(CloseCode::UnknownError);
        }
    }
}

/// Reads the chat and events streams back.
#[derive(Clone)]
pub struct Streams {
    pub chat: ChatStream,
    pub events: EventsStream,
    /// The streams' names, as republished messages carry them (`Nats-Stream`).
    chat_name: Arc<str>,
    events_name: Arc<str>,
    /// The highest events-stream sequence this edge has handed out (or, at first, the stream's
    /// last when the edge started): every event of its topics stored at or below it reached
    /// their sessions or was found missing. Events the stream dropped above it may have been
    /// its topics' ([`Streams::events_seen`]).
    events_seen: Arc<AtomicU64>,
}

impl Streams {
    /// `events_last`: the events stream's last sequence when the edge started (nothing before
    /// it concerns sessions not yet opened).
    pub fn new(chat: ChatStream, events: EventsStream, events_last: u64) -> Self {
        let subjects = chat.subjects();
        Self {
            chat_name: subjects.chat_stream_name().into(),
            events_name: subjects.events_stream_name().into(),
            chat,
            events,
            events_seen: Arc::new(AtomicU64::new(events_last)),
        }
    }

    /// See the field: a sequence the events stream reached before now. A new topic starts from
    /// it when its subject has no later event (none of its events lies between), so that a
    /// repair of a quiet topic is not taken for one of events the stream has since dropped.
    pub fn events_seen(&self) -> u64 {
        self.events_seen.load(Ordering::Acquire)
    }

    pub(super) fn saw_event(&self, seq: u64) {
        self.events_seen.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn subjects(&self) -> &Subjects {
        self.chat.subjects()
    }

    /// Which stream a live message was stored in (`None`: it was not, e.g. typing or presence).
    pub fn source(&self, message: &async_nats::Message) -> Option<Source> {
        let stream = message.headers.as_ref()?.get("Nats-Stream")?.as_str();
        if stream == &*self.chat_name {
            Some(Source::Chat)
        } else if stream == &*self.events_name {
            Some(Source::Events)
        } else {
            None
        }
    }

    /// Each feed's last sequence in each stream it follows (subjects with none are left out):
    /// a `multi_last` per thousand feeds of each stream, both streams asked at once.
    pub async fn last_sequences(
        &self,
        feeds: &[Arc<Feed>],
    ) -> Result<Vec<(Arc<Feed>, Source, u64)>, ReadError> {
        let chat = async {
            let mut lasts = Vec::new();
            let channels: Vec<&Arc<Feed>> =
                feeds.iter().filter(|f| f.channel().is_some()).collect();
            for chunk in channels.chunks(CHANNELS_PER_CHECK) {
                let ids: Vec<Snowflake> = chunk.iter().filter_map(|feed| feed.channel()).collect();
                let found = self.chat.last_sequences(&ids).await?;
                lasts.extend(chunk.iter().filter_map(|feed| {
                    let last = *found.get(&feed.channel()?)?;
                    Some((Arc::clone(feed), Source::Chat, last))
                }));
            }
            Ok::<_, ReadError>(lasts)
        };
        let events = async {
            let mut lasts = Vec::new();
            let subjects = self.subjects();
            for chunk in feeds.chunks(CHANNELS_PER_CHECK) {
                let names: Vec<String> = chunk.iter().map(|f| f.events_subject(subjects)).collect();
                let asked: Vec<&str> = names.iter().map(String::as_str).collect();
                let found = self.events.last_sequences(&asked).await?;
                lasts.extend(chunk.iter().zip(&names).filter_map(|(feed, name)| {
                    Some((Arc::clone(feed), Source::Events, *found.get(name)?))
                }));
            }
            Ok(lasts)
        };
        let (mut lasts, events) = tokio::try_join!(chat, events)?;
        lasts.extend(events);
        Ok(lasts)
    }

    /// Moves new feeds' watermarks up to their subjects' last sequences, read now: asked after
    /// their subscriptions are in place (on the same connection), so every event stored later
    /// reaches them live or is read back, and none stored before goes out again.
    pub async fn start(&self, feeds: &[Arc<Feed>]) -> Result<(), ReadError> {
        for (feed, source, last) in self.last_sequences(feeds).await? {
            feed.advance(source, last);
        }
        Ok(())
    }

    /// A topic's stored events of one stream after `after` through `through`, at most `limit`,
    /// as deliveries with their sequences (chat events carry theirs to the client as `s`).
    pub async fn read_back(
        &self,
        feed: &Feed,
        source: Source,
        after: u64,
        through: u64,
        limit: usize,
        attachments: &Attachments,
    ) -> Result<Vec<(Delivery, u64)>, ReadError> {
        let stored = match (source, feed.channel()) {
            (Source::Chat, Some(channel)) => {
                self.chat
                    .channel_events(channel, after, through, limit)
                    .await?
            }
            (Source::Chat, None) => Vec::new(),
            (Source::Events, _) => {
                let subject = feed.events_subject(self.subjects());
                self.events.events(&subject, after, through, limit).await?
            }
        };
        Ok(stored
            .into_iter()
            .map(|stored| {
                let mut event = stored.event;
                attachments.sign_event(&mut event);
                let seq = (source == Source::Chat).then_some(stored.seq);
                (Delivery::new(seq, event), stored.seq)
            })
            .collect())
    }
}
