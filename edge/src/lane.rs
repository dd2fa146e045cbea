//! The lane: where the edge's talking sessions run, apart from the fan-out.
//!
//! Every session starts on the edge's main runtime, whose worker threads write the fan-out: under
//! a busy channel they are never idle, and a client's frame waits for one of them to look at its
//! socket, then again at every step of its send (the publish to JetStream, its
//! acknowledgement, the ACK). The lane is a thread of its own with a one-thread runtime, its own
//! reactor (the sockets of the sessions on it) and its own NATS connection (their publishes and
//! acknowledgements): asleep while they are quiet, so the kernel runs it as soon as one of them
//! has something, however busy the main runtime's threads are (docs/BENCHMARKS.md, "A session's
//! own lane").
//!
//! A session moves to the lane after a send of its client's, if the main runtime is behind and
//! the lane has room (`--lane-sessions`, 256 by default; 0 is no lane), and back to the main
//! runtime once its client has sent nothing for `--lane-quiet`: so the lane holds the edge's few
//! talking sessions, and their fan-out is a small part of the edge's. The main runtime is
//! behind when a timer of its fires `--behind-after` (2 ms) or more late ([`crate::lateness`]),
//! which is how late its threads also look at the sockets and at JetStream's answers; an edge
//! with time to spare keeps every session where its deliveries are handed out, as a session on
//! the lane costs a wake of another thread for each of them (docs/BENCHMARKS.md, "The lane by
//! default"). A move happens
//! between two steps of the session, socket and all ([`crate::wire::Socket::rebind`]), once its
//! sends in flight are answered (it reads nothing more from its client until then), and its
//! deliveries and kick go with it.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use kit::config::NatsConfig;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::lateness::Lateness;
use crate::metrics::EdgeMetrics;

thread_local! {
    /// Whether this thread is an edge's lane (each edge's lane runs only its own sessions).
    static ON_LANE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs on its edge's lane.
pub(crate) fn here() -> bool {
    ON_LANE.with(Cell::get)
}

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Main,
    Lane,
}

/// The edge's lane: its runtime, its NATS connection, and its room.
pub struct Lane {
    lane: Handle,
    main: Handle,
    /// Publishes made on the lane, over its own connection.
    pub(crate) js: jetstream::Context,
    /// The edge's sessions, wherever they run: a moved session stays in the edge's drain.
    tasks: TaskTracker,
    capacity: usize,
    pub(crate) quiet: Duration,
    /// The main runtime's lateness, asked at every request for a seat.
    lateness: Lateness,
    seated: Arc<AtomicUsize>,
    metrics: EdgeMetrics,
    /// Ends the lane's thread (dropping its runtime, with whatever it still runs).
    stop: CancellationToken,
}

impl Lane {
    /// Starts the lane's thread and connects it to NATS; `None` when `capacity` is 0 (no lane:
    /// every session stays on the main runtime).
    pub async fn start(
        nats: &NatsConfig,
        capacity: usize,
        lateness: Lateness,
        quiet: Duration,
        tasks: TaskTracker,
        metrics: EdgeMetrics,
    ) -> Result<Option<Self>, async_nats::ConnectError> {
        if capacity == 0 {
            return Ok(None);
        }
        let stop = CancellationToken::new();
        let (started, up) = tokio::sync::oneshot::channel();
        let nats = nats.clone();
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("edge-lane".into())
            .spawn(move || {
                ON_LANE.with(|on| on.set(true));
                never_preempt();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the lane");
                runtime.block_on(async move {
                    let connected = nats.connect("edge-lane").await;
                    let ok = connected.is_ok();
                    let _ = started.send(connected.map(|client| (Handle::current(), client)));
                    if ok {
                        stopped.cancelled().await;
                    }
                });
            })
            .expect("a thread for the edge's lane");
        let (lane, client) = up.await.expect("the lane's thread answers")?;
        Ok(Some(Self {
            lane,
            main: Handle::current(),
            js: jetstream::new(client),
            tasks,
            capacity,
            quiet,
            lateness,
            seated: Arc::default(),
            metrics,
            stop,
        }))
    }

    /// A place on the lane for one more session, if the main runtime is behind and the lane
    /// has room; given back when dropped.
    pub(crate) fn seat(&self) -> Option<Seat> {
        if !self.lateness.ask().last_behind() {
            return None;
        }
        self.seated
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()?;
        self.metrics.lane_sessions.inc();
        Some(Seat {
            seated: Arc::clone(&self.seated),
            metrics: self.metrics.clone(),
        })
    }

    /// Runs a session's next part on `place`, in the edge's set of session tasks.
    pub(crate) fn spawn(&self, place: Place, part: impl Future<Output = ()> + Send + 'static) {
        let handle = match place {
            Place::Main => &self.main,
            Place::Lane => &self.lane,
        };
        self.metrics
            .lane_moves
            .with_label_values(&[match place {
                Place::Main => "main",
                Place::Lane => "lane",
            }])
            .inc();
        self.tasks.spawn_on(part, handle);
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Puts the calling thread (the lane's) under `SCHED_BATCH`: the kernel runs it as soon as a
/// core frees up or the running thread's slice ends, but never preempts a running thread for
/// it when it wakes. It wakes for its sessions' sends, acknowledgements and deliveries,
/// hundreds of times a second at a busy edge, and a fan-out worker it preempts goes back to
/// wait behind the machine's other runnable threads. In alternating runs at the edge's ceiling
/// the sender's ACK was as quick under `SCHED_BATCH` as under the default policy, and the
/// receivers' p99 rose about half as much in a slow hour, not at all in a quicker one
/// (docs/BENCHMARKS.md, "The lane in the services' scheduling group"). No privilege is needed;
/// should the kernel refuse, the lane runs as any thread does.
fn never_preempt() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
    let nice_0 = ThreadPriority::Os(ThreadPriorityOsValue::default());
    if let Err(error) = set_thread_priority_and_policy(thread_native_id(), nice_0, batch) {
        tracing::warn!(
            ?error,
            "the lane's thread keeps the default scheduling policy"
        );
    }
}

/// A session's place on the lane.
pub(crate) struct Seat {
    seated: Arc<AtomicUsize>,
    metrics: EdgeMetrics,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.seated.fetch_sub(1, Ordering::AcqRel);
        self.metrics.lane_sessions.dec();
    }
}
