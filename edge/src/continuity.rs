//! Live delivery that survives the messaging layer dropping.
//!
//! Stored chat events reach an edge through the chat stream's republish to `{p}.ch.{channel}.msg`
//! over core NATS, which is at most once: a NATS restart, this edge's reconnect, a subscription
//! that fell behind (a slow consumer) or, in a cluster, a stream leader change each lose what was
//! republished meanwhile, though the stream stored it. So each channel topic keeps a
//! [`Watermark`], the last stream sequence it handed to its sessions, and one task per edge, the
//! [`Dispatcher`], hands out every channel's events:
//!
//! - each republished event carries its sequence (`Nats-Sequence`) and the sequence of the
//!   channel's previous event (`Nats-Last-Sequence`). At or below the watermark: a copy already
//!   handed out, dropped. A previous event above the watermark: events were lost; they are read
//!   back from the stream (batched direct gets from the watermark on) and go out first.
//! - a gap shows only when the channel's next event arrives, so the edge also checks every
//!   channel it follows against the stream's last sequence per channel (one batched direct get
//!   per thousand channels, [`check`]): before anything that arrives over a new NATS connection
//!   goes out (the client counts its connections, so this has no race with the reconnect), when
//!   a subscription dropped messages or the stream's leader changes, and every
//!   `--delivery-check-interval` for a loss nothing announced.
//! - a session gets the stored events of all its channels in stream order. A client resumes from
//!   the highest `s` it has seen, so everything below it must have reached it: one channel's
//!   event must never overtake an older one of another, read back or merely slower. The
//!   dispatcher takes everything the NATS client has received, from every channel, then hands
//!   it out merged by sequence (each channel's own events, stored or not, keep their order).
//! - a repair that cannot be done (the stream does not answer, or more is missing than a session
//!   may have waiting) closes the channel's sessions with a resumable code (4000): their resume
//!   replays what they missed.
//!
//! Sessions still drop stored events at or below their own floor (READY's or a replay's).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use kit::lifecycle::Shutdown;
use kit::stream::{CHANNELS_PER_CHECK, ChatStream, ReadError};
use proto::Snowflake;
use proto::gateway::CloseCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::attachments::Attachments;
use crate::fanout::{Delivery, Sessions, hand_out};
use crate::metrics::EdgeMetrics;
use crate::state::EdgeState;

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

/// The last stream sequence a channel topic handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark(u64);

impl Watermark {
    pub const fn new(seq: u64) -> Self {
        Self(seq)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// Judges a live event: its stream sequence, and the sequence of the channel's event before
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

    /// Whether a stream whose last event of the channel is `last` holds events not handed out.
    pub const fn behind(self, last: u64) -> bool {
        last > self.0
    }

    pub fn advance(&mut self, seq: u64) {
        self.0 = self.0.max(seq);
    }
}

/// One channel topic as continuity sees it: its watermark and its sessions.
#[derive(Debug)]
pub struct ChannelFeed {
    pub channel: Snowflake,
    watermark: AtomicU64,
    sessions: Sessions,
    /// Cancelled when the topic's last session leaves: the subscription is dropped.
    stop: CancellationToken,
}

impl ChannelFeed {
    pub fn new(channel: Snowflake, watermark: u64, sessions: Sessions) -> Arc<Self> {
        Arc::new(Self {
            channel,
            watermark: AtomicU64::new(watermark),
            sessions,
            stop: CancellationToken::new(),
        })
    }

    pub fn watermark(&self) -> Watermark {
        Watermark(self.watermark.load(Ordering::Acquire))
    }

    fn advance(&self, seq: u64) {
        self.watermark.fetch_max(seq, Ordering::AcqRel);
    }

    /// The topic is gone: its subscription ends.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Closes every session of the channel with a resumable code: it could not be repaired.
    fn resume_all(&self) {
        let sessions = self
            .sessions
            .read()
            .expect("no code panics while holding the session map");
        for handle in sessions.values() {
            handle.kick.kick(CloseCode::UnknownError);
        }
    }
}

/// What the hub and the checks ask of the dispatcher.
enum Command {
    /// A new channel topic: deliver its subscription.
    Follow(Arc<ChannelFeed>, async_nats::Subscriber),
    /// Repair what a check found: each channel's last event in the stream (`None`: check now,
    /// after a reconnect).
    Check(Cause, Option<Vec<(Arc<ChannelFeed>, u64)>>),
}

/// The hub's handle on the dispatcher.
#[derive(Clone)]
pub struct Continuity {
    commands: mpsc::UnboundedSender<Command>,
}

impl Continuity {
    /// The handle, and the dispatcher to run (an essential task of the edge).
    pub fn new(
        nats: async_nats::Client,
        stream: ChatStream,
        max_repair: usize,
        metrics: EdgeMetrics,
        attachments: Arc<Attachments>,
    ) -> (Self, Dispatcher) {
        let (commands, received) = mpsc::unbounded_channel();
        let repaired_connects = nats.statistics().connects.load(Ordering::Relaxed);
        let dispatcher = Dispatcher {
            commands: received,
            streams: SelectAll::new(),
            lanes: HashMap::new(),
            followed: Vec::new(),
            nats,
            reader: Reader {
                stream,
                max_repair,
                metrics: metrics.clone(),
                attachments,
            },
            metrics,
            repaired_connects,
        };
        (Self { commands }, dispatcher)
    }

    /// Delivers a new channel topic's subscription from now on.
    pub fn follow(&self, feed: Arc<ChannelFeed>, subscription: async_nats::Subscriber) {
        let _ = self.commands.send(Command::Follow(feed, subscription));
    }

    fn check(&self, cause: Cause, lasts: Option<Vec<(Arc<ChannelFeed>, u64)>>) {
        let _ = self.commands.send(Command::Check(cause, lasts));
    }
}

/// The most messages taken from the subscriptions before handing out (bounds the wait of the
/// first under a flood; the order argument holds for any batch, see [`Dispatcher::run`]).
const MAX_BATCH: usize = 4_096;

/// How many channels a repair reads back at once.
const READS_AT_ONCE: usize = 8;

/// How long stored events wait after a reconnect for the stream to answer (a NATS server just
/// started may take a moment to serve JetStream). After that they go out, and the channels' next
/// events and the periodic check repair what is left.
const RECONNECT_REPAIR_WAIT: Duration = Duration::from_secs(10);

/// One event taken from a channel's subscription, not yet handed out.
struct Pulled {
    delivery: Delivery,
    /// `Nats-Last-Sequence`: the channel's event before it.
    previous: Option<u64>,
}

/// What goes out for one channel, in its order.
enum Unit {
    Live(Delivery),
    Repaired(Delivery),
    /// What was lost through here could not be read back (its sessions were closed to resume).
    Skip(u64),
}

impl Unit {
    /// Where it goes in the merge: stored events by sequence; the rest as soon as their turn in
    /// their channel comes.
    fn key(&self) -> u64 {
        match self {
            Self::Live(d) | Self::Repaired(d) => d.seq.unwrap_or(0),
            Self::Skip(_) => 0,
        }
    }
}

/// One channel's events taken but not handed out.
struct Lane {
    feed: Arc<ChannelFeed>,
    pulled: Vec<Pulled>,
}

/// Hands out every channel topic's events, gap-free and in stream order (see the module docs).
pub struct Dispatcher {
    commands: mpsc::UnboundedReceiver<Command>,
    streams: SelectAll<BoxStream<'static, (Arc<ChannelFeed>, async_nats::Message)>>,
    /// Keyed by the feed's address: a channel's topic may be dropped and made again.
    lanes: HashMap<usize, Lane>,
    followed: Vec<Arc<ChannelFeed>>,
    nats: async_nats::Client,
    reader: Reader,
    metrics: EdgeMetrics,
    /// The NATS client's connection count whose losses are repaired.
    repaired_connects: u64,
}

/// Reads back what live delivery lost.
struct Reader {
    stream: ChatStream,
    /// The most events one channel reads back at once (a session's queue: more could never be
    /// handed out whole).
    max_repair: usize,
    metrics: EdgeMetrics,
    /// Signs the links of the files of every message handed out.
    attachments: Arc<Attachments>,
}

fn key(feed: &Arc<ChannelFeed>) -> usize {
    Arc::as_ptr(feed) as usize
}

impl Dispatcher {
    /// Runs until `shutdown`.
    ///
    /// Why the order holds: the stream republishes in stream order and NATS delivers one
    /// publisher's messages to a connection in order, so the client pushes them into the
    /// channels' subscriptions in stream order. Once the subscriptions have nothing ready, every
    /// event received so far has been taken; what arrives later is newer than all of it. So the
    /// taken batch, merged by sequence, goes out in stream order, and the next batch after it.
    pub async fn run(mut self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                Some(command) = self.commands.recv() => match command {
                    Command::Follow(feed, subscription) => self.follow(feed, subscription),
                    Command::Check(cause, lasts) => self.hand_out(cause, lasts).await,
                },
                Some((feed, message)) = self.streams.next(), if !self.streams.is_empty() => {
                    self.take(&feed, &message);
                    // Then everything already received, so the batch ends where nothing is
                    // ready. Batches grow by themselves as load does (what arrives while one is
                    // handed out is the next), so each session writes what it got with one call;
                    // waiting for more would only add latency (docs/BENCHMARKS.md, "chat").
                    let mut taken = 1;
                    while taken < MAX_BATCH {
                        match self.streams.next().now_or_never() {
                            Some(Some((feed, message))) => self.take(&feed, &message),
                            _ => break,
                        }
                        taken += 1;
                    }
                    self.hand_out(Cause::Gap, None).await;
                }
            }
        }
    }

    fn follow(&mut self, feed: Arc<ChannelFeed>, subscription: async_nats::Subscriber) {
        let stop = feed.stop.clone().cancelled_owned();
        let tagged = Arc::clone(&feed);
        let stream = subscription
            .take_until(stop)
            .map(move |message| (Arc::clone(&tagged), message))
            .boxed();
        self.streams.push(stream);
        self.followed.retain(|feed| !feed.stop.is_cancelled());
        self.followed.push(feed);
    }

    fn take(&mut self, feed: &Arc<ChannelFeed>, message: &async_nats::Message) {
        let Some(delivery) = Delivery::from_nats_signed(message, &self.reader.attachments) else {
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
            .push(Pulled { delivery, previous });
    }

    fn connects(&self) -> u64 {
        self.nats.statistics().connects.load(Ordering::Relaxed)
    }

    /// Hands out what was taken, after what was lost before it (found from the events' previous
    /// sequences, from `lasts`, or, after a reconnect, by checking every channel first).
    async fn hand_out(&mut self, cause: Cause, lasts: Option<Vec<(Arc<ChannelFeed>, u64)>>) {
        let mut lasts = lasts.map(|lasts| (cause, lasts));
        let connects = self.connects();
        if connects > self.repaired_connects {
            lasts = Some((Cause::Reconnect, self.lasts_after_reconnect().await));
            self.repaired_connects = connects;
        }
        let mut lanes = std::mem::take(&mut self.lanes);
        let mut last_of = HashMap::new();
        if let Some((_, lasts)) = &lasts {
            for (feed, last) in lasts {
                last_of.insert(key(feed), *last);
                lanes.entry(key(feed)).or_insert_with(|| Lane {
                    feed: Arc::clone(feed),
                    pulled: Vec::new(),
                });
            }
        }
        let lanes: Vec<Lane> = lanes.into_values().collect();
        // Where each channel lost events: (lane, before which taken event, after, through).
        let mut gaps = Vec::new();
        for (index, lane) in lanes.iter().enumerate() {
            let mut mark = lane.feed.watermark();
            for (position, pulled) in lane.pulled.iter().enumerate() {
                let Some(seq) = pulled.delivery.seq else {
                    continue;
                };
                if let Arrival::After { through } = mark.arrival(seq, pulled.previous) {
                    gaps.push((index, position, mark.get(), through, Cause::Gap));
                }
                mark.advance(seq);
            }
            if let Some(&last) = last_of
                .get(&key(&lane.feed))
                .filter(|last| mark.behind(**last))
            {
                let cause = lasts.as_ref().map_or(Cause::Gap, |(cause, _)| *cause);
                gaps.push((index, lane.pulled.len(), mark.get(), last, cause));
            }
        }
        let reader = &self.reader;
        let wanted: Vec<(Arc<ChannelFeed>, u64, u64)> = gaps
            .iter()
            .map(|&(index, _, after, through, _)| (Arc::clone(&lanes[index].feed), after, through))
            .collect();
        let reads = wanted.into_iter().map(|(feed, after, through)| async move {
            reader.read_back(&feed, after, through).await
        });
        let read: Vec<Result<Vec<Delivery>, ()>> = futures::stream::iter(reads)
            .buffered(READS_AT_ONCE)
            .collect()
            .await;
        // Each channel's units in its own order: what was read back goes before the event that
        // showed it missing.
        let mut units: Vec<VecDeque<Unit>> = lanes
            .iter()
            .map(|lane| VecDeque::with_capacity(lane.pulled.len()))
            .collect();
        let feeds: Vec<Arc<ChannelFeed>> = lanes.iter().map(|l| Arc::clone(&l.feed)).collect();
        let mut gaps = gaps.into_iter().zip(read).peekable();
        for (index, lane) in lanes.into_iter().enumerate() {
            for (position, pulled) in lane.pulled.into_iter().enumerate() {
                self.repairs_before(&mut gaps, index, position, &feeds, &mut units[index]);
                units[index].push_back(Unit::Live(pulled.delivery));
            }
            self.repairs_before(&mut gaps, index, usize::MAX, &feeds, &mut units[index]);
        }
        self.merge(&feeds, units);
    }

    /// Adds the repairs due before `position` of lane `index` to its units.
    fn repairs_before(
        &self,
        gaps: &mut std::iter::Peekable<
            impl Iterator<Item = ((usize, usize, u64, u64, Cause), Result<Vec<Delivery>, ()>)>,
        >,
        index: usize,
        position: usize,
        feeds: &[Arc<ChannelFeed>],
        units: &mut VecDeque<Unit>,
    ) {
        while let Some(((_, _, _, through, cause), read)) =
            gaps.next_if(|((i, p, ..), _)| *i == index && *p <= position)
        {
            self.metrics
                .delivery_repairs
                .with_label_values(&[cause.label()])
                .inc();
            match read {
                Ok(events) => units.extend(events.into_iter().map(Unit::Repaired)),
                Err(()) => feeds[index].resume_all(),
            }
            units.push_back(Unit::Skip(through));
        }
    }

    /// Hands out every channel's units, stored events across channels by sequence.
    fn merge(&self, feeds: &[Arc<ChannelFeed>], mut units: Vec<VecDeque<Unit>>) {
        let mut heads = BinaryHeap::new();
        for (index, lane) in units.iter().enumerate() {
            if let Some(unit) = lane.front() {
                heads.push(Reverse((unit.key(), index)));
            }
        }
        while let Some(Reverse((_, index))) = heads.pop() {
            let Some(unit) = units[index].pop_front() else {
                continue;
            };
            self.deliver(&feeds[index], unit);
            if let Some(next) = units[index].front() {
                heads.push(Reverse((next.key(), index)));
            }
        }
    }

    fn deliver(&self, feed: &ChannelFeed, unit: Unit) {
        let (delivery, repaired) = match unit {
            Unit::Skip(through) => return feed.advance(through),
            Unit::Live(delivery) => (delivery, false),
            Unit::Repaired(delivery) => (delivery, true),
        };
        if let Some(seq) = delivery.seq {
            if !feed.watermark().behind(seq) {
                self.metrics.delivery_duplicates.inc();
                return;
            }
            feed.advance(seq);
        }
        if repaired {
            self.metrics.delivery_repaired.inc();
        }
        let started = std::time::Instant::now();
        hand_out(&feed.sessions, &delivery, &self.metrics);
        self.metrics
            .fanout_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every followed channel's last event in the stream, read before anything that came over a
    /// new connection goes out; retried while the stream does not answer yet, for a while.
    async fn lasts_after_reconnect(&mut self) -> Vec<(Arc<ChannelFeed>, u64)> {
        self.followed.retain(|feed| !feed.stop.is_cancelled());
        tracing::info!(
            channels = self.followed.len(),
            "checking live delivery against the stream after a reconnect"
        );
        let started = tokio::time::Instant::now();
        loop {
            match last_sequences(&self.reader.stream, &self.followed).await {
                Ok(lasts) => return lasts,
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

impl Reader {
    /// A channel's events after `after` through `through`, from the stream.
    async fn read_back(
        &self,
        feed: &ChannelFeed,
        after: u64,
        through: u64,
    ) -> Result<Vec<Delivery>, ()> {
        let channel = feed.channel;
        match (self.stream)
            .channel_events(channel, after, through, self.max_repair)
            .await
        {
            Ok(events) => {
                let events: Vec<Delivery> = events
                    .into_iter()
                    .map(|stored| {
                        let mut event = stored.event;
                        self.attachments.sign_event(&mut event);
                        Delivery::new(Some(stored.seq), event)
                    })
                    .collect();
                tracing::info!(%channel, after, through, events = events.len(),
                    "live delivery repaired from the stream");
                Ok(events)
            }
            Err(e) => {
                tracing::warn!(%channel, after, through, error = %e,
                    "cannot repair live delivery; the channel's sessions resume");
                self.metrics.delivery_repair_failures.inc();
                Err(())
            }
        }
    }
}

/// Each feed's channel's last event in the stream (channels with none are left out).
async fn last_sequences(
    stream: &ChatStream,
    feeds: &[Arc<ChannelFeed>],
) -> Result<Vec<(Arc<ChannelFeed>, u64)>, ReadError> {
    let mut lasts = Vec::with_capacity(feeds.len());
    for chunk in feeds.chunks(CHANNELS_PER_CHECK) {
        let channels: Vec<Snowflake> = chunk.iter().map(|feed| feed.channel).collect();
        let found = stream.last_sequences(&channels).await?;
        lasts.extend(
            chunk
                .iter()
                .filter_map(|feed| Some((Arc::clone(feed), *found.get(&feed.channel)?))),
        );
    }
    Ok(lasts)
}

fn header(message: &async_nats::Message, name: &str) -> Option<u64> {
    message.headers.as_ref()?.get(name)?.as_str().parse().ok()
}

/// Why events are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum Cause {
    /// An event's previous one in its channel was never handed out.
    Gap,
    /// The NATS client connected again: what was republished while it was away is lost.
    Reconnect,
    /// A subscription's buffer overflowed and the client dropped messages.
    SlowConsumer,
    /// The chat stream has a new leader.
    LeaderChange,
    /// The periodic check, for a loss nothing announced.
    Periodic,
}

impl Cause {
    /// The metrics label (`gap`, `slow_consumer`, ...).
    fn label(self) -> &'static str {
        self.into()
    }
}

/// How long a periodic check lets events it saw in the stream arrive live before it counts them
/// as lost: repairing an event whose republished copy is merely on its way costs a read for
/// nothing (the copy is then dropped as a duplicate).
const SETTLE: Duration = Duration::from_secs(1);

/// Checks the channels this edge follows against the stream until `shutdown`: after the NATS
/// client reconnects (the dispatcher checks before handing anything out; `events` wakes it when
/// nothing else does), when a subscription dropped messages, when `leaders` says the chat stream
/// has a new leader, and every `interval`.
pub async fn check(
    state: Arc<EdgeState>,
    mut events: mpsc::Receiver<async_nats::Event>,
    mut leaders: async_nats::Subscriber,
    interval: Duration,
    shutdown: Shutdown,
) {
    let continuity = state.hub.continuity();
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.reset();
    loop {
        let cause = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => Cause::Periodic,
            Some(event) = events.recv() => match event {
                async_nats::Event::Connected => {
                    continuity.check(Cause::Reconnect, None);
                    continue;
                }
                async_nats::Event::SlowConsumer(_) => Cause::SlowConsumer,
                _ => continue,
            },
            Some(_) = leaders.next() => Cause::LeaderChange,
        };
        if cause != Cause::Periodic {
            tracing::info!(
                cause = cause.label(),
                "checking live delivery against the stream"
            );
        }
        let feeds = state.hub.channel_feeds();
        let lasts = tokio::select! {
            () = shutdown.cancelled() => return,
            lasts = last_sequences(&state.stream, &feeds) => lasts,
        };
        let mut lasts = match lasts {
            Ok(lasts) => lasts,
            Err(e) => {
                tracing::debug!(error = %e, cause = cause.label(), "cannot check live delivery");
                continue;
            }
        };
        if cause == Cause::Periodic {
            // Events just stored are still on their way live: only what stays missing is lost.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(SETTLE) => {}
            }
        }
        lasts.retain(|(feed, last)| feed.watermark().behind(*last));
        if !lasts.is_empty() {
            continuity.check(cause, Some(lasts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
