//! Live delivery that survives the messaging layer dropping.
//!
//! What edges deliver from NATS is republished by one of two JetStream streams over core NATS,
//! which is at most once: the chat stream's stored chat events (`{p}.ch.{channel}.msg`) and the
//! events stream's events auth tells users, servers and channels (`{p}.user.{user}`,
//! `{p}.guild.{guild}`, `{p}.ch.{channel}.meta`). A NATS restart, this edge's reconnect, a
//! subscription that fell behind (a slow consumer) or, in a cluster, a stream leader change
//! each lose what was republished meanwhile, though the stream stored it. So each topic (a
//! channel, a user's inbox, a server) is a [`Feed`] with a [`Watermark`] per stream it gets
//! events from, the last sequence of it handed to its sessions, and one task per edge, the
//! [`Dispatcher`], hands out every topic's events:
//!
//! - each republished event carries its stream (`Nats-Stream`), its sequence (`Nats-Sequence`)
//!   and the sequence of its subject's previous event (`Nats-Last-Sequence`). At or below the
//!   watermark: a copy already handed out, dropped. A previous event above the watermark: events
//!   were lost; they are read back from the stream (batched direct gets from the watermark on)
//!   and go out first. What no stream stored (typing, read markers, presence's own publishes to
//!   inboxes) carries no `Nats-Stream` and goes out as it comes.
//! - a gap shows only when the subject's next event arrives, so the edge also checks every topic
//!   it follows against the streams' last sequence per subject (one batched direct get per
//!   thousand subjects, [`mod@check`]): before anything that arrives over a new NATS connection
//!   goes out (the client counts its connections, so this has no race with the reconnect), when
//!   a subscription dropped messages or a stream's leader changes, and every
//!   `--delivery-check-interval` for a loss nothing announced.
//! - a session gets the stored chat events of all its channels in chat stream order. A client
//!   resumes from the highest `s` it has seen, so everything below it must have reached it: one
//!   channel's event must never overtake an older one of another, read back or merely slower.
//!   The dispatcher takes everything the NATS client has received, from every topic, then hands
//!   it out merged by chat sequence (each topic's own events, stored or not, keep their order;
//!   events-stream events carry no `s` and go out in their topic's order).
//! - a repair that cannot be done (the stream does not answer or no longer holds it, or more is
//!   missing than a session may have waiting) closes the topic's sessions with a resumable code
//!   (4000): their resume replays what they missed of chat, and RESUMED carries their current
//!   channels and servers. A server's copy on the edge is then also read anew from auth, so its
//!   permissions are right again.
//! - the events stream's limits drop its oldest events (and it may be purged), which can leave no
//!   trace of a lost one: a read-back counts only if the stream still holds everything after the
//!   watermark, and after a reconnect every topic resumes whose watermark is below events the
//!   stream dropped that this edge never handed out ([`Streams::events_seen`]).
//!
//! Sessions still drop stored chat events at or below their own floor (READY's or a replay's).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use kit::lifecycle::Shutdown;
use kit::stream::ReadError;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::attachments::Attachments;
use crate::fanout::{Delivery, MAX_RUN, Run, hand_out};
use crate::lateness::{Lateness, Samples};
use crate::metrics::EdgeMetrics;

mod check;
mod feed;

use check::Cause;
pub use check::check;
pub use feed::{Feed, Followed, Streams};

/// The stream a stored event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The chat stream: chat events, whose sequence clients see as `s`.
    Chat,
    /// The events stream: what auth tells users, servers and channels.
    Events,
}

/// What to do with a stored event that arrives live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// At or below the watermark: handed out already.
    Duplicate,
    /// The next of the channel: hand it out.
    Next,
    /// The channel's previous event, `through`, was never handed out: read back the events after
    /// the watermark through it first, then hand this one out.
    After { through: u64 },
}

/// The last sequence of one stream a topic handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark(u64);

impl Watermark {
    pub const fn new(seq: u64) -> Self {
        Self(seq)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// Judges a live event: its stream sequence, and the sequence of its subject's event before
    /// it (`None` when the header is missing: then only checks find a gap).
    pub fn arrival(self, seq: u64, previous: Option<u64>) -> Arrival {
        match previous {
            _ if seq <= self.0 => Arrival::Duplicate,
            Some(previous) if previous > self.0 && previous < seq => {
                Arrival::After { through: previous }
            }
            _ => Arrival::Next,
        }
    }

    /// Whether a stream whose last event of the subject is `last` holds events not handed out.
    pub const fn behind(self, last: u64) -> bool {
        last > self.0
    }

    pub fn advance(&mut self, seq: u64) {
        self.0 = self.0.max(seq);
    }
}

/// What the hub and the checks ask of the dispatcher.
enum Command {
    /// A new topic: deliver its subscription.
    Follow(Arc<Feed>, async_nats::Subscriber),
    /// Repair what a check found: each topic's last event in each stream (`None`: check now,
    /// after a reconnect).
    Check(Cause, Option<Vec<(Arc<Feed>, Source, u64)>>),
}

/// The hub's handle on the dispatcher.
#[derive(Clone)]
pub struct Continuity {
    commands: mpsc::UnboundedSender<Command>,
    streams: Streams,
}

impl Continuity {
    /// The handle, and the dispatcher to run (an essential task of the edge).
    pub fn new(
        nats: async_nats::Client,
        streams: Streams,
        max_repair: usize,
        metrics: EdgeMetrics,
        attachments: Arc<Attachments>,
        pace: Pace,
    ) -> (Self, Dispatcher) {
        let (commands, received) = mpsc::unbounded_channel();
        let repaired_connects = nats.statistics().connects.load(Ordering::Relaxed);
        let dispatcher = Dispatcher {
            commands: received,
            subscriptions: SelectAll::new(),
            lanes: HashMap::new(),
            followed: Vec::new(),
            prune_at: PRUNE_AT_LEAST,
            nats,
            reader: Reader {
                streams: streams.clone(),
                max_repair,
                metrics: metrics.clone(),
                attachments,
            },
            metrics,
            repaired_connects,
            pace,
        };
        (Self { commands, streams }, dispatcher)
    }

    /// Delivers a new topic's subscription from now on.
    pub fn follow(&self, feed: Arc<Feed>, subscription: async_nats::Subscriber) {
        let _ = self.commands.send(Command::Follow(feed, subscription));
    }

    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    fn check(&self, cause: Cause, lasts: Option<Vec<(Arc<Feed>, Source, u64)>>) {
        let _ = self.commands.send(Command::Check(cause, lasts));
    }
}

/// The most messages taken from the subscriptions before handing out (bounds the wait of the
/// first under a flood; the order argument holds for any batch, see [`Dispatcher::run`]).
const MAX_BATCH: usize = 4_096;

/// How many topics a repair reads back at once.
const READS_AT_ONCE: usize = 8;

/// How long stored events wait after a reconnect for the streams to answer (a NATS server just
/// started may take a moment to serve JetStream). After that they go out, and the topics' next
/// events and the periodic check repair what is left.
const RECONNECT_REPAIR_WAIT: Duration = Duration::from_secs(10);

/// How long the dispatcher goes on gathering after the edge was last seen behind.
const BUSY_HOLD: Duration = Duration::from_secs(5);

/// How many samples of the main runtime's lateness must have been behind in each of the last two
/// seconds for the dispatcher to gather: a quarter. An edge with time to spare sees a stray late
/// sample now and then, and a second of them when something else on the machine takes its
/// cores for a moment; neither must cost every delivery the linger for a hold
/// (`crate::lateness`; docs/BENCHMARKS.md, "The curve with the gathering").
const BEHIND_A_SECOND: u32 = 5;

/// Whether the edge is behind enough to gather: in each of the last two seconds.
fn behind(samples: Samples) -> bool {
    samples.behind_in_last_second() >= BEHIND_A_SECOND
        && samples.behind_in_second_before() >= BEHIND_A_SECOND
}

/// When the dispatcher hands out: as soon as it has taken what was ready, or, while the edge's
/// main runtime is behind ([`Lateness`], a quarter of the samples of each of the last two
/// seconds) and for [`BUSY_HOLD`] after, at most once per `--delivery-linger`, with what came
/// meanwhile. Every session then writes that many events with one system call where it wrote
/// each alone, and on a machine whose cores are full those writes are most of the edge's time
/// (docs/BENCHMARKS.md, "The dispatcher gathers while the edge is behind"). The hold keeps it
/// gathering once the gathering itself has taken the edge out of being behind, which would
/// otherwise end it and start it again two seconds later.
pub struct Pace {
    lateness: Lateness,
    linger: Duration,
    /// Gathering until then: the edge was last seen behind a hold before.
    busy_until: Instant,
    handed_at: Instant,
}

impl Pace {
    /// `linger` zero: never gathers.
    pub fn new(lateness: Lateness, linger: Duration) -> Self {
        let now = Instant::now();
        Self {
            lateness,
            linger,
            busy_until: now,
            handed_at: now,
        }
    }

    /// Until when to go on taking events before handing out, if at all.
    fn gather_until(&mut self, now: Instant) -> Option<Instant> {
        if self.linger.is_zero() {
            return None;
        }
        let behind = behind(self.lateness.ask());
        self.gather_until_given(now, behind)
    }

    fn gather_until_given(&mut self, now: Instant, behind: bool) -> Option<Instant> {
        if behind {
            self.busy_until = now + BUSY_HOLD;
        }
        let until = self.handed_at + self.linger;
        (now < self.busy_until && now < until).then_some(until)
    }

    fn handed_out(&mut self, now: Instant) {
        self.handed_at = now;
    }
}

/// One event taken from a topic's subscription, not yet handed out.
struct Pulled {
    delivery: Delivery,
    /// The stream that stored it and its sequence there (`None`: not stored).
    stored: Option<(Source, u64)>,
    /// `Nats-Last-Sequence`: its subject's event before it.
    previous: Option<u64>,
}

/// What goes out for one topic, in its order.
enum Unit {
    Live(Delivery, Option<(Source, u64)>),
    Repaired(Delivery, Source, u64),
    /// What was lost of a stream through here could not be read back (the topic's sessions were
    /// closed to resume).
    Skip(Source, u64),
}

impl Unit {
    /// Where it goes in the merge: chat events by sequence; the rest as soon as their turn in
    /// their topic comes.
    fn key(&self) -> u64 {
        match self {
            Self::Live(_, Some((Source::Chat, seq))) | Self::Repaired(_, Source::Chat, seq) => *seq,
            Self::Live(..) | Self::Repaired(..) | Self::Skip(..) => 0,
        }
    }
}

/// One topic's events taken but not handed out.
struct Lane {
    feed: Arc<Feed>,
    pulled: Vec<Pulled>,
}

/// Where a topic lost events: before which taken event, of which stream, after and through
/// which sequences, found how.
struct Gap {
    lane: usize,
    position: usize,
    source: Source,
    after: u64,
    through: u64,
    cause: Cause,
}

/// The followed list's length below which stopped topics are kept.
const PRUNE_AT_LEAST: usize = 64;

/// Hands out every topic's events, gap-free and in stream order (see the module docs).
pub struct Dispatcher {
    commands: mpsc::UnboundedReceiver<Command>,
    subscriptions: SelectAll<BoxStream<'static, (Arc<Feed>, async_nats::Message)>>,
    /// Keyed by the feed's address: a topic may be dropped and made again.
    lanes: HashMap<usize, Lane>,
    /// Every topic followed, and stopped ones not yet let go: those are let go once the list has
    /// doubled since they last were (a storm of sessions starts follows thousands of topics, and
    /// letting go at each follow walked the whole list every time).
    followed: Vec<Arc<Feed>>,
    /// The list's length at which the stopped are let go next.
    prune_at: usize,
    nats: async_nats::Client,
    reader: Reader,
    metrics: EdgeMetrics,
    /// The NATS client's connection count whose losses are repaired.
    repaired_connects: u64,
    pace: Pace,
}

/// Reads back what live delivery lost.
struct Reader {
    streams: Streams,
    /// The most events one topic reads back at once (a session's queue: more could never be
    /// handed out whole).
    max_repair: usize,
    metrics: EdgeMetrics,
    /// Signs the links of the files of every message handed out.
    attachments: Arc<Attachments>,
}

fn key(feed: &Arc<Feed>) -> usize {
    Arc::as_ptr(feed) as usize
}

impl Dispatcher {
    /// Runs until `shutdown`.
    ///
    /// Why the order holds: the chat stream republishes in stream order and NATS delivers one
    /// publisher's messages to a connection in order, so the client pushes them into the
    /// channels' subscriptions in stream order. Once the subscriptions have nothing ready, every
    /// event received so far has been taken; what arrives later is newer than all of it. So the
    /// taken batch, merged by sequence, goes out in stream order, and the next batch after it.
    pub async fn run(mut self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                Some(command) = self.commands.recv() => self.obey(command).await,
                Some((feed, message)) = self.subscriptions.next(),
                    if !self.subscriptions.is_empty() => {
                    self.take(&feed, &message);
                    // Then everything already received, so the batch ends where nothing is
                    // ready: batches grow by themselves as load does (what arrives while one is
                    // handed out is the next), and each session writes what it got with one
                    // call. Only while the edge is behind does the batch wait for more
                    // ([`Pace`]): on a quiet edge that would only add latency
                    // (docs/BENCHMARKS.md, "chat").
                    let mut taken = 1;
                    while taken < MAX_BATCH {
                        match self.subscriptions.next().now_or_never() {
                            Some(Some((feed, message))) => self.take(&feed, &message),
                            _ => break,
                        }
                        taken += 1;
                    }
                    if let Some(until) = self.pace.gather_until(Instant::now()) {
                        self.metrics.delivery_lingers.inc();
                        self.gather(until, taken).await;
                    }
                    self.hand_out(Cause::Gap, None).await;
                    self.pace.handed_out(Instant::now());
                }
            }
        }
    }

    async fn obey(&mut self, command: Command) {
        match command {
            Command::Follow(feed, subscription) => self.follow(feed, subscription),
            Command::Check(cause, lasts) => self.hand_out(cause, lasts).await,
        }
    }

    /// Takes what comes until `until` (or the batch is full), with `taken` taken already.
    /// Commands are obeyed meanwhile: a session starting does not wait for the hand-out to have
    /// its new topics followed, and a check hands out what was taken so far with its repairs.
    async fn gather(&mut self, until: Instant, mut taken: usize) {
        while taken < MAX_BATCH {
            tokio::select! {
                biased;
                Some(command) = self.commands.recv() => self.obey(command).await,
                next = tokio::time::timeout_at(until, self.subscriptions.next()) => match next {
                    Ok(Some((feed, message))) => {
                        self.take(&feed, &message);
                        taken += 1;
                    }
                    _ => return,
                },
            }
        }
    }

    fn follow(&mut self, feed: Arc<Feed>, subscription: async_nats::Subscriber) {
        let stop = feed.stop.clone().cancelled_owned();
        let tagged = Arc::clone(&feed);
        let stream = subscription
            .take_until(stop)
            .map(move |message| (Arc::clone(&tagged), message))
            .boxed();
        self.subscriptions.push(stream);
        if self.followed.len() >= self.prune_at {
            self.followed.retain(|feed| !feed.is_stopped());
            self.prune_at = (2 * self.followed.len()).max(PRUNE_AT_LEAST);
        }
        self.followed.push(feed);
    }

    fn take(&mut self, feed: &Arc<Feed>, message: &async_nats::Message) {
        let source = self.reader.streams.source(message);
        let seq = source.and_then(|_| header(message, "Nats-Sequence"));
        let stored = source.zip(seq);
        // Only the chat stream's sequence is the client's `s`.
        let chat_seq = seq.filter(|_| source == Some(Source::Chat));
        let Some(delivery) =
            Delivery::from_nats_signed(message, chat_seq, &self.reader.attachments)
        else {
            return;
        };
        let previous = header(message, "Nats-Last-Sequence");
        self.lanes
            .entry(key(feed))
            .or_insert_with(|| Lane {
                feed: Arc::clone(feed),
                pulled: Vec::new(),
            })
            .pulled
            .push(Pulled {
                delivery,
                stored,
                previous,
            });
    }

    fn connects(&self) -> u64 {
        self.nats.statistics().connects.load(Ordering::Relaxed)
    }

    /// Hands out what was taken, after what was lost before it (found from the events' previous
    /// sequences, from `lasts`, or, after a reconnect, by checking every topic first).
    async fn hand_out(&mut self, cause: Cause, lasts: Option<Vec<(Arc<Feed>, Source, u64)>>) {
        let mut lasts = lasts.map(|lasts| (cause, lasts));
        let connects = self.connects();
        if connects > self.repaired_connects {
            lasts = Some((Cause::Reconnect, self.lasts_after_reconnect().await));
            self.repaired_connects = connects;
        }
        let mut lanes = std::mem::take(&mut self.lanes);
        let mut last_of = HashMap::new();
        let check_cause = lasts.as_ref().map_or(Cause::Gap, |(cause, _)| *cause);
        if let Some((_, lasts)) = &lasts {
            for (feed, source, last) in lasts {
                last_of.insert((key(feed), *source), *last);
                lanes.entry(key(feed)).or_insert_with(|| Lane {
                    feed: Arc::clone(feed),
                    pulled: Vec::new(),
                });
            }
        }
        let lanes: Vec<Lane> = lanes.into_values().collect();
        let mut gaps = Vec::new();
        for (index, lane) in lanes.iter().enumerate() {
            for &source in lane.feed.sources() {
                let mut mark = lane.feed.watermark(source);
                for (position, pulled) in lane.pulled.iter().enumerate() {
                    let Some((_, seq)) = pulled.stored.filter(|(s, _)| *s == source) else {
                        continue;
                    };
                    if let Arrival::After { through } = mark.arrival(seq, pulled.previous) {
                        gaps.push(Gap {
                            lane: index,
                            position,
                            source,
                            after: mark.get(),
                            through,
                            cause: Cause::Gap,
                        });
                    }
                    mark.advance(seq);
                }
                if let Some(&last) = last_of
                    .get(&(key(&lane.feed), source))
                    .filter(|last| mark.behind(**last))
                {
                    gaps.push(Gap {
                        lane: index,
                        position: lane.pulled.len(),
                        source,
                        after: mark.get(),
                        through: last,
                        cause: check_cause,
                    });
                }
            }
        }
        // Repairs in each lane's order (a topic's two streams' gaps interleave by position).
        gaps.sort_by_key(|gap| (gap.lane, gap.position));
        let reader = &self.reader;
        let wanted: Vec<(Arc<Feed>, Source, u64, u64)> = gaps
            .iter()
            .map(|gap| {
                let feed = Arc::clone(&lanes[gap.lane].feed);
                (feed, gap.source, gap.after, gap.through)
            })
            .collect();
        let reads = wanted
            .into_iter()
            .map(|(feed, source, after, through)| async move {
                reader.read_back(&feed, source, after, through).await
            });
        let read: Vec<Result<Vec<(Delivery, u64)>, ()>> = futures::stream::iter(reads)
            .buffered(READS_AT_ONCE)
            .collect()
            .await;
        // Each topic's units in its own order: what was read back goes before the event that
        // showed it missing.
        let mut units: Vec<VecDeque<Unit>> = lanes
            .iter()
            .map(|lane| VecDeque::with_capacity(lane.pulled.len()))
            .collect();
        let feeds: Vec<Arc<Feed>> = lanes.iter().map(|l| Arc::clone(&l.feed)).collect();
        let mut gaps = gaps.into_iter().zip(read).peekable();
        for (index, lane) in lanes.into_iter().enumerate() {
            for (position, pulled) in lane.pulled.into_iter().enumerate() {
                self.repairs_before(&mut gaps, index, position, &feeds, &mut units[index]);
                units[index].push_back(Unit::Live(pulled.delivery, pulled.stored));
            }
            self.repairs_before(&mut gaps, index, usize::MAX, &feeds, &mut units[index]);
        }
        self.merge(&feeds, units);
    }

    /// Adds the repairs due before `position` of lane `index` to its units.
    fn repairs_before(
        &self,
        gaps: &mut std::iter::Peekable<
            impl Iterator<Item = (Gap, Result<Vec<(Delivery, u64)>, ()>)>,
        >,
        index: usize,
        position: usize,
        feeds: &[Arc<Feed>],
        units: &mut VecDeque<Unit>,
    ) {
        while let Some((gap, read)) =
            gaps.next_if(|(gap, _)| gap.lane == index && gap.position <= position)
        {
            self.metrics
                .delivery_repairs
                .with_label_values(&[gap.cause.label()])
                .inc();
            match read {
                Ok(events) => units.extend(
                    events
                        .into_iter()
                        .map(|(delivery, seq)| Unit::Repaired(delivery, gap.source, seq)),
                ),
                Err(()) => {
                    feeds[index].resume_all(&self.nats, self.reader.streams.subjects());
                }
            }
            units.push_back(Unit::Skip(gap.source, gap.through));
        }
    }

    /// Hands out every topic's units, chat events across topics by sequence: each topic's
    /// consecutive units as one run, which ends where another topic's unit comes between (so no
    /// session sees one channel's event overtake another's) or at [`MAX_RUN`] (or a session's
    /// limit, if lower).
    fn merge(&self, feeds: &[Arc<Feed>], mut units: Vec<VecDeque<Unit>>) {
        let mut heads = BinaryHeap::new();
        for (index, lane) in units.iter().enumerate() {
            if let Some(unit) = lane.front() {
                heads.push(Reverse((unit.key(), index)));
            }
        }
        // A run never holds more than a session may have waiting.
        let most = MAX_RUN.min(self.reader.max_repair);
        let mut run = Vec::new();
        let mut run_lane = None;
        while let Some(Reverse((_, index))) = heads.pop() {
            let Some(unit) = units[index].pop_front() else {
                continue;
            };
            if run_lane != Some(index) || run.len() == most {
                if let Some(lane) = run_lane {
                    self.hand_out_run(&feeds[lane], std::mem::take(&mut run));
                }
                run_lane = Some(index);
            }
            if let Some(delivery) = self.admit(&feeds[index], unit) {
                run.push(delivery);
            }
            if let Some(next) = units[index].front() {
                heads.push(Reverse((next.key(), index)));
            }
        }
        if let Some(lane) = run_lane {
            self.hand_out_run(&feeds[lane], run);
        }
    }

    /// Moves a topic's watermark past a unit: the delivery to hand out, unless it was a copy
    /// already handed out or a skip.
    fn admit(&self, feed: &Feed, unit: Unit) -> Option<Delivery> {
        let (delivery, stored, repaired) = match unit {
            Unit::Skip(source, through) => {
                feed.advance(source, through);
                return None;
            }
            Unit::Live(delivery, stored) => (delivery, stored, false),
            Unit::Repaired(delivery, source, seq) => (delivery, Some((source, seq)), true),
        };
        if let Some((source, seq)) = stored {
            if !feed.watermark(source).behind(seq) {
                self.metrics.delivery_duplicates.inc();
                return None;
            }
            feed.advance(source, seq);
            if source == Source::Events {
                self.reader.streams.saw_event(seq);
            }
        }
        if repaired {
            self.metrics.delivery_repaired.inc();
        }
        // A server's copy changes before its sessions see the event (they decide from it).
        if let Followed::Guild(guild) = &feed.followed {
            guild.apply(&delivery.event);
        }
        Some(delivery)
    }

    fn hand_out_run(&self, feed: &Feed, run: Vec<Delivery>) {
        if run.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        hand_out(&feed.sessions, &Run::new(run), &self.metrics);
        self.metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every followed topic's last events in the streams, read before anything that came over a
    /// new connection goes out; retried while the streams do not answer yet, for a while.
    async fn lasts_after_reconnect(&mut self) -> Vec<(Arc<Feed>, Source, u64)> {
        self.followed.retain(|feed| !feed.is_stopped());
        tracing::info!(
            topics = self.followed.len(),
            "checking live delivery against the streams after a reconnect"
        );
        let started = Instant::now();
        // Taken before anything of the new connection is handed out: what the edge had when
        // the connection dropped.
        let seen = self.reader.streams.events_seen();
        loop {
            let lasts = self.reader.streams.last_sequences(&self.followed).await;
            let first = self.reader.streams.events.first_sequence().await;
            match lasts.and_then(|lasts| first.map(|first| (lasts, first))) {
                Ok((lasts, first)) => {
                    self.resume_beyond_repair(seen, first);
                    return lasts;
                }
                Err(e) if started.elapsed() < RECONNECT_REPAIR_WAIT => {
                    tracing::debug!(error = %e, "cannot check live delivery yet; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e,
                        "cannot check live delivery after a reconnect; delivering without");
                    return Vec::new();
                }
            }
        }
    }
}

impl Dispatcher {
    /// After a reconnect: if the events stream no longer holds every event after the last one
    /// this edge handed out (`seen`), its limits dropped some (or it was purged) while the edge
    /// was away, and any of them may have been a topic's here (a role edit, a kick) with no
    /// later event of its subject to reveal it. No trace is left to tell which, so every topic
    /// that had not handed out all of them closes its sessions to resume, and its server's copy
    /// is read anew (never stale access).
    fn resume_beyond_repair(&self, seen: u64, first: u64) {
        let subjects = self.reader.streams.subjects();
        let mut resumed = 0_u64;
        for feed in &self.followed {
            if feed.is_stopped() || first <= feed.watermark(Source::Events).get().max(seen) + 1 {
                continue;
            }
            feed.resume_all(&self.nats, subjects);
            // What lies below `first` is dealt with: the next check does not resume them again.
            feed.advance(Source::Events, first - 1);
            resumed += 1;
        }
        self.reader.streams.saw_event(first.saturating_sub(1));
        if resumed > 0 {
            self.metrics.delivery_repair_failures.inc_by(resumed);
            tracing::warn!(
                seen,
                first,
                topics = resumed,
                "the events stream dropped events this edge never got; their sessions resume"
            );
        }
    }
}

impl Reader {
    /// A topic's events of one stream after `after` through `through`.
    async fn read_back(
        &self,
        feed: &Feed,
        source: Source,
        after: u64,
        through: u64,
    ) -> Result<Vec<(Delivery, u64)>, ()> {
        let read = self
            .streams
            .read_back(
                feed,
                source,
                after,
                through,
                self.max_repair,
                &self.attachments,
            )
            .await;
        let topic = feed.events_subject(self.streams.subjects());
        match read {
            Ok(events) => {
                tracing::info!(%topic, ?source, after, through, events = events.len(),
                    "live delivery repaired from the stream");
                Ok(events)
            }
            Err(e) => {
                log_failure(&topic, source, after, through, &e);
                self.metrics.delivery_repair_failures.inc();
                Err(())
            }
        }
    }
}

fn log_failure(topic: &str, source: Source, after: u64, through: u64, e: &ReadError) {
    tracing::warn!(%topic, ?source, after, through, error = %e,
        "cannot repair live delivery; the topic's sessions resume");
}

fn header(message: &async_nats::Message, name: &str) -> Option<u64> {
    message.headers.as_ref()?.get(name)?.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pace whose edge is never behind unless a test says so (`gather_until_given`).
    #[tokio::main(flavor = "current_thread")]
    async fn pace(linger_ms: u64) -> Pace {
        let histogram = prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("l", "l"))
            .expect("valid");
        Pace::new(
            Lateness::start(Duration::from_secs(3600), histogram),
            Duration::from_millis(linger_ms),
        )
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_edge_with_time_to_spare_hands_out_at_once() {
        let mut pace = pace(20);
        let start = Instant::now();
        pace.handed_out(start);
        assert_eq!(pace.gather_until_given(start + 2 * MS, false), None);
        assert_eq!(pace.gather_until_given(start + 5 * MS, false), None);
    }

    #[test]
    fn a_behind_edge_hands_out_at_most_once_per_linger() {
        let mut pace = pace(20);
        let start = Instant::now();
        pace.handed_out(start);
        assert_eq!(
            pace.gather_until_given(start + 3 * MS, true),
            Some(start + 20 * MS)
        );
        // An event after a longer quiet spell than the linger goes out at once.
        pace.handed_out(start + 20 * MS);
        assert_eq!(pace.gather_until_given(start + 45 * MS, true), None);
    }

    #[test]
    fn gathering_goes_on_for_a_hold_after_the_edge_was_last_behind() {
        let mut pace = pace(20);
        let start = Instant::now();
        pace.handed_out(start);
        assert!(pace.gather_until_given(start + MS, true).is_some());
        // Gathering took the edge out of being behind: it goes on gathering.
        let later = start + BUSY_HOLD - 10 * MS;
        pace.handed_out(later);
        assert_eq!(
            pace.gather_until_given(later + MS, false),
            Some(later + 20 * MS)
        );
        // Nothing behind for a whole hold: at once again.
        let after = start + BUSY_HOLD + 5 * MS;
        pace.handed_out(after - 2 * MS);
        assert_eq!(pace.gather_until_given(after, false), None);
    }

    #[test]
    fn a_second_behind_is_not_enough_to_gather() {
        let quarter = (1 << BEHIND_A_SECOND) - 1;
        assert!(!behind(Samples::from_bits(quarter)));
        assert!(!behind(Samples::from_bits(quarter << 20)));
        assert!(behind(Samples::from_bits(quarter | quarter << 20)));
        assert!(!behind(Samples::from_bits(quarter >> 1 | quarter << 20)));
    }

    #[test]
    fn no_linger_never_gathers() {
        let mut pace = pace(0);
        pace.handed_out(Instant::now());
        assert_eq!(pace.gather_until(Instant::now()), None);
    }

    /// What continuity keeps per topic, whatever its sessions: an edge with 19,000 sessions of
    /// 19,000 users holds 19,000 inbox feeds.
    #[test]
    fn a_topic_costs_one_small_feed_and_nothing_per_session() {
        let feed = size_of::<Feed>();
        eprintln!("a feed is {feed} bytes (plus the Arc's two counts)");
        assert!(feed <= 48, "a feed grew to {feed} bytes");
    }

    #[test]
    fn the_next_event_of_a_channel_is_handed_out() {
        let mark = Watermark::new(10);
        assert_eq!(mark.arrival(11, Some(10)), Arrival::Next);
        // Other channels' events fill the sequences between: no gap.
        assert_eq!(mark.arrival(57, Some(10)), Arrival::Next);
        // The channel's first event.
        assert_eq!(Watermark::new(0).arrival(3, Some(0)), Arrival::Next);
    }

    #[test]
    fn an_event_at_or_below_the_watermark_is_a_duplicate() {
        let mark = Watermark::new(10);
        assert_eq!(mark.arrival(10, Some(7)), Arrival::Duplicate);
        assert_eq!(mark.arrival(4, Some(2)), Arrival::Duplicate);
        assert_eq!(mark.arrival(10, None), Arrival::Duplicate);
    }

    #[test]
    fn a_previous_event_above_the_watermark_is_a_gap_through_it() {
        let mark = Watermark::new(10);
        assert_eq!(mark.arrival(20, Some(15)), Arrival::After { through: 15 });
        assert_eq!(mark.arrival(12, Some(11)), Arrival::After { through: 11 });
    }

    #[test]
    fn without_the_header_an_event_is_handed_out_and_checks_find_gaps() {
        let mark = Watermark::new(10);
        assert_eq!(mark.arrival(20, None), Arrival::Next);
        assert!(mark.behind(15));
        assert!(!mark.behind(10));
    }

    #[test]
    fn a_nonsense_previous_sequence_is_no_gap() {
        // A previous event at or after the event itself cannot be; hand it out.
        assert_eq!(Watermark::new(10).arrival(12, Some(12)), Arrival::Next);
        assert_eq!(Watermark::new(10).arrival(12, Some(30)), Arrival::Next);
    }

    #[test]
    fn the_watermark_only_moves_forward() {
        let mut mark = Watermark::new(10);
        mark.advance(8);
        assert_eq!(mark.get(), 10);
        mark.advance(12);
        assert_eq!(mark.get(), 12);
    }

    /// A run of arrivals, as a topic task judges them: what it hands out is each event once, in
    /// order, whatever core NATS duplicated, reordered by a repair, or lost.
    #[test]
    fn a_gap_then_its_late_copies_hand_out_each_event_once() {
        // Channel events at sequences 2, 5, 9, 14; the live copies of 5 and 9 were lost, and
        // arrive late after 14 revealed the gap and the repair handed them out.
        let stream = [2, 5, 9, 14];
        let previous = |seq| {
            stream
                .iter()
                .copied()
                .take_while(|s| *s < seq)
                .last()
                .unwrap_or(0)
        };
        let mut mark = Watermark::new(0);
        let mut handed_out = Vec::new();
        for seq in [2, 14, 5, 9, 14, 2] {
            match mark.arrival(seq, Some(previous(seq))) {
                Arrival::Duplicate => {}
                Arrival::Next => {
                    mark.advance(seq);
                    handed_out.push(seq);
                }
                Arrival::After { through } => {
                    // The repair reads the channel's events after the watermark through `through`.
                    let after = mark.get();
                    for repaired in stream
                        .iter()
                        .copied()
                        .filter(|s| *s > after && *s <= through)
                    {
                        mark.advance(repaired);
                        handed_out.push(repaired);
                    }
                    mark.advance(seq);
                    handed_out.push(seq);
                }
            }
        }
        assert_eq!(handed_out, stream);
    }
}
