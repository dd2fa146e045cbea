//! A session's queue of runs, and everything that wakes its task, in one allocation: the hub
//! hands runs out to it from any thread and may kick it (close it with a code, or with none when
//! the edge drains), and its socket marks it readable; the session takes runs in order. A mutex
//! around a `VecDeque`, the kick and the readable mark beside it, and one waker for all three:
//! about a hundred bytes for an idle session, where tokio's unbounded channel alone took 0.8 KB
//! (a channel padded to cache lines and a first block of 32 slots), and a cancellation token of
//! its own for the kick, a count of its own and a waker of its own for the socket took 0.2 KB
//! more (docs/BENCHMARKS.md, "idle").
//!
//! Bounded by the count of the events waiting, not by runs: the hub refuses to queue past the
//! session's limit and kicks it instead ([`SessionHandle::admit`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use futures::task::{ArcWake, AtomicWaker, WakerRef, waker_ref};
use proto::gateway::CloseCode;

use crate::fanout::Run;

/// The most slots an emptied queue keeps: what a burst grew beyond it is given back.
const KEEP_SLOTS: usize = 16;

struct Shared {
    runs: Mutex<Runs>,
    /// The session's task while it waits: woken by a run, a kick, or its socket becoming
    /// readable (one task, so one waker serves all three).
    waiter: AtomicWaker,
    /// Events queued by the hub and not yet taken by the session.
    waiting: AtomicUsize,
    /// The most events that may wait.
    limit: usize,
    /// Why the session must close, once it must: a code, or none when the edge is draining (the
    /// client is asked to reconnect elsewhere). The first reason given is the one kept.
    kicked: OnceLock<Option<CloseCode>>,
    /// Whether a read of the socket could make progress ([`Readiness`]).
    readable: AtomicBool,
}

struct Runs {
    queue: VecDeque<Run>,
    /// The session has ended: nothing more is queued.
    closed: bool,
}

impl Shared {
    fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs
            .lock()
            .expect("no code panics while holding a session's queue")
    }

    fn kick(&self, code: Option<CloseCode>) -> bool {
        let first = self.kicked.set(code).is_ok();
        self.waiter.wake();
        first
    }
}

/// The socket's waker: the socket became readable.
impl ArcWake for Shared {
    fn wake_by_ref(this: &Arc<Self>) {
        this.readable.store(true, Ordering::Release);
        this.waiter.wake();
    }
}

/// A new session's queue, at most `limit` events waiting: the session's end, from which the
/// hub's ([`Receiver::handle`]) and the socket's ([`Receiver::readiness`]) are taken.
pub fn session(limit: usize) -> Receiver {
    Receiver(Arc::new(Shared {
        runs: Mutex::new(Runs {
            queue: VecDeque::new(),
            closed: false,
        }),
        waiter: AtomicWaker::new(),
        waiting: AtomicUsize::new(0),
        limit,
        kicked: OnceLock::new(),
        readable: AtomicBool::new(true),
    }))
}

/// How the hub reaches one session: its queue and its kick. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle(Arc<Shared>);

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHandle")
    }
}

impl SessionHandle {
    /// The hub is about to queue `events`: false when they would put more than the limit in
    /// waiting (the session is then kicked; the count stays above the limit until it closes).
    pub fn admit(&self, events: usize) -> bool {
        let waiting = self.0.waiting.fetch_add(events, Ordering::Relaxed) + events;
        waiting <= self.0.limit
    }

    /// Queues `run` behind what is waiting: false once the session has ended.
    pub fn send(&self, run: Run) -> bool {
        {
            let mut runs = self.0.runs();
            if runs.closed {
                return false;
            }
            runs.queue.push_back(run);
        }
        self.0.waiter.wake();
        true
    }

    /// Asks the session to close with `code`; true when this is the first reason it is given,
    /// so that a session is counted once however many runs find it too far behind, or its own
    /// write times out as well.
    pub fn kick(&self, code: CloseCode) -> bool {
        self.0.kick(Some(code))
    }

    /// The edge is draining: the session asks its client to reconnect elsewhere (unless it was
    /// already kicked with a code).
    pub fn drain(&self) {
        self.0.kick(None);
    }
}

/// What the hub has for a session next.
pub enum Next {
    Run(Run),
    /// The session must close: with this code, or with none when the edge is draining.
    Kicked(Option<CloseCode>),
}

/// The session's end of its queue.
pub struct Receiver(Arc<Shared>);

impl Receiver {
    /// The hub's end of this queue.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle(Arc::clone(&self.0))
    }

    /// The socket's end: its readable mark, which wakes this session.
    pub fn readiness(&self) -> Readiness {
        Readiness(Arc::clone(&self.0))
    }

    /// Closes the session with `code` (its own write timed out): as [`SessionHandle::kick`].
    pub fn kick(&self, code: CloseCode) -> bool {
        self.0.kick(Some(code))
    }

    /// The session took `events` from its queue.
    pub fn taken(&self, events: usize) {
        self.0.waiting.fetch_sub(events, Ordering::Relaxed);
    }

    /// The oldest run waiting, if any.
    pub fn try_recv(&mut self) -> Option<Run> {
        let mut runs = self.0.runs();
        let run = runs.queue.pop_front();
        if runs.queue.is_empty() && runs.queue.capacity() > KEEP_SLOTS {
            runs.queue = VecDeque::new();
        }
        run
    }

    /// The kick, once the session is kicked, else the oldest run, once there is one.
    /// Cancel-safe: dropped before it is ready, it took nothing.
    pub async fn next(&mut self) -> Next {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(next) = self.ready() {
            return Poll::Ready(next);
        }
        self.0.waiter.register(cx.waker());
        // A run or kick between the look and the registration woke nobody: look again.
        match self.ready() {
            Some(next) => Poll::Ready(next),
            None => Poll::Pending,
        }
    }

    fn ready(&mut self) -> Option<Next> {
        if let Some(&code) = self.0.kicked.get() {
            return Some(Next::Kicked(code));
        }
        self.try_recv().map(Next::Run)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let waiting = {
            let mut runs = self.0.runs();
            runs.closed = true;
            std::mem::take(&mut runs.queue)
        };
        drop(waiting);
    }
}

/// Whether a read of the session's socket could make progress: cleared when a read finds
/// nothing, set again by the waker that read left with the socket ([`Readiness::waker`]), when
/// the socket becomes readable. A read that returns bytes leaves it set: more may be waiting,
/// and only a read that finds nothing has a wake-up coming. So a session woken by a delivery
/// does not look at the socket only to find nothing (registering with the socket takes a lock).
pub struct Readiness(Arc<Shared>);

impl Readiness {
    /// Whether a read may make progress, registering the session's task to be woken when it
    /// may. When it may, the mark is cleared first: a wake-up after the read's look sets it again.
    pub fn take(&self, cx: &mut Context<'_>) -> bool {
        self.0.waiter.register(cx.waker());
        if !self.0.readable.load(Ordering::Acquire) {
            return false;
        }
        self.0.readable.store(false, Ordering::Release);
        true
    }

    /// A read returned bytes: more may be waiting.
    pub fn keep(&self) {
        self.0.readable.store(true, Ordering::Release);
    }

    /// The waker to leave with the socket: it marks the socket readable and wakes the session.
    pub fn waker(&self) -> WakerRef<'_> {
        waker_ref(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use proto::Snowflake;
    use proto::api::messages::Typing;
    use proto::events::Event;

    use super::*;
    use crate::fanout::Delivery;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A run of `n` events (someone typing).
    fn run(n: usize) -> Run {
        let typing = Event::TypingStart(Typing {
            channel_id: Snowflake::from_u64(1),
            user_id: Snowflake::from_u64(2),
            timestamp: 0,
        });
        Run::new(vec![Delivery::new(None, typing); n])
    }

    fn queue() -> (SessionHandle, Receiver) {
        let rx = session(1_000);
        (rx.handle(), rx)
    }

    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        (count, waker)
    }

    #[test]
    fn runs_come_out_in_the_order_they_went_in() {
        let (tx, mut rx) = queue();
        for n in 1..=3 {
            assert!(tx.send(run(n)));
        }
        let lengths: Vec<usize> = std::iter::from_fn(|| rx.try_recv())
            .map(|r| r.len())
            .collect();
        assert_eq!(lengths, [1, 2, 3]);
    }

    #[test]
    fn a_waiting_session_is_woken_by_the_next_run() {
        let (tx, mut rx) = queue();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_next(&mut cx).is_pending());
        assert!(tx.send(run(1)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(Next::Run(r)) if r.len() == 1));
    }

    #[test]
    fn a_kick_wakes_the_session_comes_before_its_runs_and_keeps_its_first_reason() {
        let (tx, mut rx) = queue();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_next(&mut cx).is_pending());
        assert!(tx.send(run(1)));
        assert!(tx.kick(CloseCode::SessionTimedOut), "the first reason");
        assert!(
            !rx.kick(CloseCode::UnknownError),
            "a second reason is not the one kept"
        );
        tx.drain();
        assert!(count.0.load(Ordering::SeqCst) >= 1, "woken");
        for _ in 0..2 {
            assert!(matches!(
                rx.poll_next(&mut cx),
                Poll::Ready(Next::Kicked(Some(CloseCode::SessionTimedOut)))
            ));
        }
    }

    #[test]
    fn a_drain_kicks_with_no_code() {
        let (tx, mut rx) = queue();
        tx.drain();
        assert!(!tx.kick(CloseCode::SessionTimedOut), "drained first");
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            rx.poll_next(&mut cx),
            Poll::Ready(Next::Kicked(None))
        ));
    }

    #[test]
    fn at_most_the_limit_of_events_is_admitted() {
        let rx = session(10);
        let tx = rx.handle();
        assert!(tx.admit(6), "six of ten");
        assert!(tx.admit(4), "ten of ten");
        rx.taken(6);
        assert!(tx.admit(6), "the session took six: ten again");
        assert!(!tx.admit(1), "eleven is one too many");
    }

    #[test]
    fn the_sockets_waker_marks_it_readable_and_wakes_the_session() {
        let rx = session(10);
        let readiness = rx.readiness();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(readiness.take(&mut cx), "a new socket may have something");
        assert!(
            !readiness.take(&mut cx),
            "a read found nothing: not again until woken"
        );
        readiness.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the session is woken");
        assert!(readiness.take(&mut cx), "and reads");
        readiness.keep();
        assert!(
            readiness.take(&mut cx),
            "a read that found bytes reads again"
        );
    }

    #[test]
    fn nothing_is_queued_once_the_session_has_ended() {
        let (tx, rx) = queue();
        assert!(tx.send(run(1)));
        drop(rx);
        assert!(!tx.send(run(1)), "the session is gone");
        assert!(tx.0.runs().queue.is_empty(), "what waited is let go");
    }

    #[test]
    fn an_emptied_queue_gives_back_what_a_burst_grew() {
        let (tx, mut rx) = queue();
        for _ in 0..100 {
            tx.send(run(1));
        }
        while rx.try_recv().is_some() {}
        assert!(tx.0.runs().queue.capacity() <= KEEP_SLOTS);
    }
}
