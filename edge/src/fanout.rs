//! Fan-out: one NATS subscription per topic (a channel, a user's inbox, a user's presence) per
//! edge, shared by every local session that needs it and dropped when the last one leaves. Each
//! NATS message is decoded and encoded as a gateway frame once, then handed to every interested
//! session's queue, a topic's consecutive events together as one [`Run`]; a session with more
//! events waiting than its limit is kicked (closed with a resumable code) rather than buffered
//! for, so one slow client never grows the edge's memory or delays the others.
//! Channel, inbox and server topics also keep their live delivery gap-free through NATS faults
//! (`continuity`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kit::gather::Gather;
use kit::stream::ReadError;
use proto::Snowflake;
use proto::events::Event;
use proto::gateway::CloseCode;
use proto::subjects::Subjects;
use tokio::sync::OnceCell;

use crate::continuity::{Continuity, Feed, Followed, Source, Streams};
use crate::guilds::{FollowError, GuildFeed};
use crate::metrics::EdgeMetrics;
use crate::queue::SessionHandle;

/// A session's id, unique within this edge process.
pub type SessionId = u64;

/// What a session can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Channel(Snowflake),
    User(Snowflake),
    /// A user's presence as others see it (watched for co-members of small channels).
    Presence(Snowflake),
    /// A server's events: followed while the edge has a session of one of its members, with
    /// the server's roles and channels kept from them (`crate::guilds`).
    Guild(Snowflake),
}

/// One event on its way to sessions: decoded once (sessions inspect membership events) and
/// encoded once as the frame every session sends. One pointer wide, so a session's queue slots
/// stay small and handing it to a session is one reference-count bump.
#[derive(Debug, Clone)]
pub struct Delivery(Arc<Encoded>);

#[derive(Debug)]
pub struct Encoded {
    /// The chat stream sequence of a stored chat event (the client's `s`); `None` for the rest.
    pub seq: Option<u64>,
    pub event: Event,
    pub frame: Box<str>,
}

impl std::ops::Deref for Delivery {
    type Target = Encoded;

    fn deref(&self) -> &Encoded {
        &self.0
    }
}

impl Delivery {
    pub fn new(seq: Option<u64>, event: Event) -> Self {
        let frame = event.encode_dispatch(seq).into_boxed_str();
        Self(Arc::new(Encoded { seq, event, frame }))
    }

    /// Decodes a NATS message that no stream stored (presence).
    pub(crate) fn from_nats(message: &async_nats::Message) -> Option<Self> {
        Some(Self::new(None, decode(message)?))
    }

    /// Decodes a topic's message, whose file links are signed now (once for every session it
    /// goes to); `seq` is its chat stream sequence when it is a stored chat event.
    pub(crate) fn from_nats_signed(
        message: &async_nats::Message,
        seq: Option<u64>,
        attachments: &crate::attachments::Attachments,
    ) -> Option<Self> {
        let mut event = decode(message)?;
        attachments.sign_event(&mut event);
        Some(Self::new(seq, event))
    }
}

fn decode(message: &async_nats::Message) -> Option<Event> {
    serde_json::from_slice(&message.payload)
        .inspect_err(
            |e| tracing::warn!(subject = %message.subject, error = %e, "undecodable event"),
        )
        .ok()
}

/// A topic's consecutive events, in order, as one item of a session's queue: the dispatcher
/// hands out what NATS received together, so under load one queue operation and one wake of a
/// session carry many events, where each event took its own. At most [`MAX_RUN`] events, and one
/// pointer wide, so a session's queue slots stay small (its idle memory, docs/BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct Run(Arc<Vec<Delivery>>);

/// The most events in one [`Run`]: far below a session's default queue limit (1,024), and the
/// dispatcher caps a run at the limit when it is set lower, so a run alone never finds a session
/// too slow.
pub const MAX_RUN: usize = 64;

impl Run {
    pub fn new(deliveries: Vec<Delivery>) -> Self {
        debug_assert!(deliveries.len() <= MAX_RUN);
        Self(Arc::new(deliveries))
    }

    pub fn one(delivery: Delivery) -> Self {
        Self::new(vec![delivery])
    }
}

impl std::ops::Deref for Run {
    type Target = [Delivery];

    fn deref(&self) -> &[Delivery] {
        &self.0
    }
}

pub(crate) type Sessions = Arc<RwLock<HashMap<SessionId, SessionHandle>>>;

struct TopicEntry {
    sessions: Sessions,
    /// The task delivering the topic's subject, once the edge's subscription is in place.
    subscribed: OnceCell<Subscribed>,
    metrics: EdgeMetrics,
}

/// How a topic's subscription is delivered: a channel's, a user's inbox and a server's by the
/// edge's dispatcher (gap-free, chat in stream order across channels), a user's presence by a
/// task of its own.
enum Subscribed {
    Feed(Arc<Feed>),
    Task(tokio::task::JoinHandle<()>),
}

impl Drop for TopicEntry {
    fn drop(&mut self) {
        // Ending the delivery drops the subscription, which unsubscribes on the server.
        if let Some(subscribed) = self.subscribed.get() {
            match subscribed {
                Subscribed::Feed(feed) => feed.stop(),
                Subscribed::Task(task) => task.abort(),
            }
            self.metrics.subscriptions.dec();
        }
    }
}

/// Why a session could not join a topic.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("cannot subscribe: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("cannot read the topic's position in the streams: {0}")]
    Stream(#[from] ReadError),
    #[error("cannot hand the subscription to NATS: {0}")]
    Flush(#[from] async_nats::client::FlushError),
    #[error("NATS did not take the subscription in time")]
    TimedOut,
    #[error("cannot follow the server: {0}")]
    Guild(#[from] FollowError),
}

/// How long subscribing to a topic may take (NATS away: the session closes, resumable).
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The positions in the streams of the topics an edge starts to follow, asked together: when
/// thousands of sessions resume at once (their users' inboxes and their channels followed anew),
/// one `multi_last` of each stream answers for many topics, where each asked its own (a storm's
/// 4,000 questions of the events stream are about 700: docs/BENCHMARKS.md, "reconnect storm").
type Starts = Gather<Arc<Feed>, ()>;

/// Most of an edge's like questions of the streams asked as one (new topics' positions, the
/// resumes' replays): what they share is read once for all of them.
pub(crate) const ASKED_TOGETHER: usize = 128;

/// An edge's questions of one kind in flight at once: two, so that one slow read holds up no
/// others.
pub(crate) const ASKED_IN_FLIGHT: usize = 2;

fn starts(streams: Streams) -> Starts {
    Gather::start(ASKED_TOGETHER, ASKED_IN_FLIGHT, move |feeds| {
        let streams = streams.clone();
        async move {
            streams.start(&feeds).await.map_err(|e| e.to_string())?;
            Ok(vec![(); feeds.len()])
        }
    })
}

/// The edge's table of topics and the sessions subscribed to each.
pub struct Hub {
    nats: async_nats::Client,
    subjects: Subjects,
    /// Held only to look up, add or remove an entry, never across a wait.
    topics: Mutex<HashMap<Topic, Arc<TopicEntry>>>,
    /// The edge is draining: every session joining is kicked as it joins. Read and written
    /// only under `topics`' lock, so a session either joins before [`Hub::drain`] looks or sees it.
    draining: AtomicBool,
    metrics: EdgeMetrics,
    /// Where a new topic reads its position in the streams.
    streams: Streams,
    /// New topics' positions in the streams, asked together.
    starts: Starts,
    /// The dispatcher delivering channel, inbox and server topics, gap-free through NATS faults.
    continuity: Continuity,
    /// The edge's main runtime, where a topic's own delivery runs whoever joined it first (a
    /// session on the lane too: `crate::lane`).
    runtime: tokio::runtime::Handle,
}

impl Hub {
    pub fn new(
        nats: async_nats::Client,
        subjects: Subjects,
        metrics: EdgeMetrics,
        continuity: Continuity,
    ) -> Self {
        Self {
            starts: starts(continuity.streams().clone()),
            streams: continuity.streams().clone(),
            continuity,
            runtime: tokio::runtime::Handle::current(),
            nats,
            subjects,
            topics: Mutex::default(),
            draining: AtomicBool::new(false),
            metrics,
        }
    }

    pub fn continuity(&self) -> Continuity {
        self.continuity.clone()
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, Arc<TopicEntry>>> {
        self.topics
            .lock()
            .expect("no code panics while holding the topic table")
    }

    fn subject(&self, topic: Topic) -> String {
        match topic {
            Topic::Channel(channel) => self.subjects.channel_all(channel),
            Topic::User(user) => self.subjects.user_inbox(user),
            Topic::Presence(user) => self.subjects.presence(user),
            Topic::Guild(guild) => self.subjects.guild_events(guild),
        }
    }

    /// Adds a session to a topic, subscribing the edge to it if this is its first session. When
    /// this returns, every event published on the topic from now on reaches the session.
    pub async fn join(
        &self,
        topic: Topic,
        id: SessionId,
        handle: SessionHandle,
    ) -> Result<(), JoinError> {
        let entry = {
            let mut topics = self.topics();
            let entry = topics.entry(topic).or_insert_with(|| {
                Arc::new(TopicEntry {
                    sessions: Arc::default(),
                    subscribed: OnceCell::new(),
                    metrics: self.metrics.clone(),
                })
            });
            if self.draining.load(Ordering::Relaxed) {
                handle.drain();
            }
            write(&entry.sessions).insert(id, handle);
            Arc::clone(entry)
        };
        // Subscribing costs a round trip to NATS (so the SUB is in place before we promise
        // delivery): made once per topic, outside the table's lock, so thousands of sessions
        // starting at once do not queue behind one another's round trips. Sessions joining the
        // same topic meanwhile wait here for the one subscription.
        let subscribing = entry
            .subscribed
            .get_or_try_init(|| self.subscribe(topic, Arc::clone(&entry.sessions)));
        let subscribed = tokio::time::timeout(JOIN_TIMEOUT, subscribing)
            .await
            .map_err(|_| JoinError::TimedOut)
            .and_then(|subscribed| subscribed.map(|_| ()));
        drop(entry);
        if let Err(e) = subscribed {
            self.leave(topic, id).await;
            return Err(e);
        }
        Ok(())
    }

    /// Subscribes the edge to a topic and starts delivering it. A channel, inbox or server starts
    /// from the streams' last events of its subjects, read after the subscription is in place
    /// (the read follows the SUB on the connection), so every event stored later reaches it,
    /// live or read back; what was stored before is in the snapshot or replay of every session.
    /// The read is asked with the other topics starting meanwhile ([`Starts`]).
    async fn subscribe(&self, topic: Topic, sessions: Sessions) -> Result<Subscribed, JoinError> {
        let subscription = self.nats.subscribe(self.subject(topic)).await?;
        let followed = match topic {
            Topic::Channel(channel) => Followed::Channel(channel),
            Topic::User(user) => Followed::Inbox(user),
            Topic::Guild(guild) => Followed::Guild(GuildFeed::new(guild)),
            Topic::Presence(_) => {
                // Nothing is read back for it: hand the SUB over before promising delivery.
                self.nats.flush().await?;
                self.metrics.subscriptions.inc();
                return Ok(Subscribed::Task(self.runtime.spawn(deliver(
                    subscription,
                    sessions,
                    self.metrics.clone(),
                ))));
            }
        };
        // Read before the subject's last: no event of the subject lies between the two.
        let events_seen = self.streams.events_seen();
        let feed = Feed::new(followed, 0, events_seen, sessions);
        self.starts
            .ask(Arc::clone(&feed))
            .await
            .map_err(ReadError::JetStream)?;
        self.continuity.follow(Arc::clone(&feed), subscription);
        if let Followed::Guild(guild) = &feed.followed {
            // Subscribed and delivered before auth is asked for the server: what changes after
            // auth's answer arrives as an event, applied on top of it.
            if let Err(e) = guild.load(&self.nats, &self.subjects).await {
                feed.stop();
                return Err(e.into());
            }
        }
        self.metrics.subscriptions.inc();
        Ok(Subscribed::Feed(feed))
    }

    /// The edge is draining: every session that has joined a topic, and every one that joins
    /// from now on, is asked to reconnect elsewhere. (A session joins its user's topic first
    /// thing once identified; one still waiting for IDENTIFY watches the edge's draining itself.)
    pub fn drain(&self) {
        let topics = self.topics();
        self.draining.store(true, Ordering::Relaxed);
        for entry in topics.values() {
            let sessions = entry
                .sessions
                .read()
                .expect("no code panics while holding the session map");
            for handle in sessions.values() {
                handle.drain();
            }
        }
    }

    /// The channel, inbox and server topics this edge follows, with their watermarks.
    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.topics()
            .values()
            .filter_map(|entry| match entry.subscribed.get()? {
                Subscribed::Feed(feed) => Some(Arc::clone(feed)),
                Subscribed::Task(_) => None,
            })
            .collect()
    }

    /// Per channel among `channels` this edge follows: the last chat stream sequence it handed
    /// out live (what a session joining the channel now will not be handed).
    pub fn handed_out(&self, channels: &[Snowflake]) -> HashMap<Snowflake, u64> {
        let topics = self.topics();
        channels
            .iter()
            .filter_map(|&channel| {
                match topics.get(&Topic::Channel(channel))?.subscribed.get()? {
                    Subscribed::Feed(feed) => Some((channel, feed.watermark(Source::Chat).get())),
                    Subscribed::Task(_) => None,
                }
            })
            .collect()
    }

    /// Removes a session from a topic, unsubscribing the edge when it was the last one.
    pub async fn leave(&self, topic: Topic, id: SessionId) {
        let removed = {
            let mut topics = self.topics();
            let now_empty = topics.get(&topic).is_some_and(|entry| {
                let mut sessions = write(&entry.sessions);
                sessions.remove(&id);
                sessions.is_empty()
            });
            if now_empty {
                topics.remove(&topic)
            } else {
                None
            }
        };
        drop(removed);
    }

    /// A server this edge follows (some local session joined its topic).
    pub fn guild(&self, guild: Snowflake) -> Option<Arc<GuildFeed>> {
        match self.topics().get(&Topic::Guild(guild))?.subscribed.get()? {
            Subscribed::Feed(feed) => match &feed.followed {
                Followed::Guild(guild) => Some(Arc::clone(guild)),
                Followed::Channel(_) | Followed::Inbox(_) => None,
            },
            Subscribed::Task(_) => None,
        }
    }

    /// How many topics the edge is subscribed to (for tests and metrics).
    pub async fn topic_count(&self) -> usize {
        self.topics().len()
    }

    /// The users whose presence some local session watches.
    pub async fn watched_users(&self) -> Vec<Snowflake> {
        self.topics()
            .keys()
            .filter_map(|topic| match topic {
                Topic::Presence(user) => Some(*user),
                _ => None,
            })
            .collect()
    }

    /// Hands an event made on this edge to every session of a topic, as if it had arrived on the
    /// topic's subject (presence refreshes its watchers this way after a resync).
    pub async fn deliver_local(&self, topic: Topic, delivery: &Delivery) {
        let sessions = match self.topics().get(&topic) {
            Some(entry) => Arc::clone(&entry.sessions),
            None => return,
        };
        hand_out(&sessions, &Run::one(delivery.clone()), &self.metrics);
    }
}

fn write(
    sessions: &Sessions,
) -> std::sync::RwLockWriteGuard<'_, HashMap<SessionId, SessionHandle>> {
    sessions
        .write()
        .expect("no code panics while holding the session map")
}

async fn deliver(
    mut subscription: async_nats::Subscriber,
    sessions: Sessions,
    metrics: EdgeMetrics,
) {
    while let Some(message) = subscription.next().await {
        let Some(delivery) = Delivery::from_nats(&message) else {
            continue;
        };
        let started = std::time::Instant::now();
        hand_out(&sessions, &Run::one(delivery), &metrics);
        metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Queues a run of a topic's events to every session of the topic, kicking those that would
/// have more than their limit waiting.
pub(crate) fn hand_out(sessions: &Sessions, run: &Run, metrics: &EdgeMetrics) {
    let events = run.len();
    let sessions = sessions
        .read()
        .expect("no code panics while holding the session map");
    let mut queued = 0;
    for handle in sessions.values() {
        if !handle.admit(events) {
            if handle.kick(CloseCode::SessionTimedOut) {
                metrics.slow_client_closes.inc();
            }
        } else if handle.send(run.clone()) {
            queued += events;
        }
    }
    metrics.events_out.inc_by(queued as u64);
    metrics.run_events.observe(events as f64);
}
