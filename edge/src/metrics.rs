//! The edge's own metrics, beside the HTTP and process metrics every service has.

use kit::telemetry::Metrics;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
};

#[derive(Clone)]
pub struct EdgeMetrics {
    /// Open WebSockets, identified or not.
    pub connections: IntGauge,
    /// Identified sessions.
    pub sessions: IntGauge,
    /// NATS subscriptions held (topics with at least one local session).
    pub subscriptions: IntGauge,
    /// Frames received from clients.
    pub events_in: IntCounter,
    /// Events queued to sessions.
    pub events_out: IntCounter,
    /// Time to hand one run of a topic's events to every local session subscribed to it.
    pub fanout_seconds: Histogram,
    /// Events per run handed to a topic's sessions as one queue item (runs grow with load).
    pub run_events: Histogram,
    /// Time from a send arriving to JetStream's acknowledgement.
    pub send_seconds: Histogram,
    /// Sockets closed, by close code name (slow client, rate limited, decode error, ...).
    pub closes: IntCounterVec,
    /// Sessions kicked because their outbound queue was full.
    pub slow_client_closes: IntCounter,
    /// Sessions on the edge's lane (`crate::lane`).
    pub lane_sessions: IntGauge,
    /// Sessions moved between the edge's runtimes, by where to: `lane` or `main`.
    pub lane_moves: IntCounterVec,
    /// How late the main runtime woke a timer, sampled every 50 ms for a second after a
    /// session sends or the dispatcher hands out: a sample `--behind-after` or more late is
    /// behind (`crate::lateness`).
    pub main_late_seconds: Histogram,
    /// Hand-outs the dispatcher held back to gather more events, the edge being behind.
    pub delivery_lingers: IntCounter,
    /// Frames that could not be written at all (their sockets were closed with 4000).
    pub unwritable_frames: IntCounter,
    /// 1 once the message store is connected (history and unread counts work), else 0.
    pub store_connected: IntGauge,
    /// Times live delivery was found short of the stream, by how: `gap` (an event's previous
    /// one was never handed out), `reconnect`, `slow_consumer`, `leader_change`, `periodic`.
    pub delivery_repairs: IntCounterVec,
    /// Events handed out from the stream because live delivery lost them.
    pub delivery_repaired: IntCounter,
    /// Repairs that could not be made: the channel's sessions were closed to resume.
    pub delivery_repair_failures: IntCounter,
    /// Live copies of events already handed out, dropped.
    pub delivery_duplicates: IntCounter,
    /// A session's start from IDENTIFY or RESUME, by phase: `auth` (who the user is and what the
    /// session needs), `servers` (topics joined, servers followed and read), `stream` (the
    /// chat stream's position, or a resume's replay read), `presence`, `store` (READY's unread
    /// counts, at most 1.5 s); and whole: `ready` (to READY sent) or `resumed` (to RESUMED sent).
    pub session_start_seconds: HistogramVec,
}

impl EdgeMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let latency = || {
            vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ]
        };
        let this = Self {
            connections: IntGauge::new("natter_edge_connections", "Open WebSockets")
                .expect("valid"),
            sessions: IntGauge::new("natter_edge_sessions", "Identified sessions").expect("valid"),
            subscriptions: IntGauge::new("natter_edge_subscriptions", "NATS topic subscriptions")
                .expect("valid"),
            events_in: IntCounter::new("natter_edge_events_in_total", "Frames from clients")
                .expect("valid"),
            events_out: IntCounter::new(
                "natter_edge_events_out_total",
                "Events queued to sessions",
            )
            .expect("valid"),
            fanout_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_edge_fanout_seconds",
                    "Time to hand one run of a topic's events to every local session of it",
                )
                .buckets(latency()),
            )
            .expect("valid"),
            run_events: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_edge_run_events",
                    "Events per run handed to a topic's sessions as one queue item",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            )
            .expect("valid"),
            send_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_edge_send_seconds",
                    "Time from a send arriving to JetStream's acknowledgement",
                )
                .buckets(latency()),
            )
            .expect("valid"),
            closes: IntCounterVec::new(
                Opts::new(
                    "natter_edge_closes_total",
                    "Sockets closed by the edge, by reason",
                ),
                &["reason"],
            )
            .expect("valid"),
            slow_client_closes: IntCounter::new(
                "natter_edge_slow_client_closes_total",
                "Sessions closed because they did not read their events",
            )
            .expect("valid"),
            lane_sessions: IntGauge::new(
                "natter_edge_lane_sessions",
                "Sessions on the edge's lane, apart from the fan-out",
            )
            .expect("valid"),
            lane_moves: IntCounterVec::new(
                Opts::new(
                    "natter_edge_lane_moves_total",
                    "Sessions moved between the edge's runtimes, by where to",
                ),
                &["to"],
            )
            .expect("valid"),
            main_late_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_edge_main_late_seconds",
                    "How late the main runtime woke a timer (every 50 ms while it has traffic)",
                )
                // Finer around `--behind-after`'s 2 ms: an idle edge wakes 1-2 ms late (the
                // timer's own rounding to whole milliseconds).
                .buckets(vec![
                    0.000_5, 0.001, 0.001_5, 0.002, 0.002_5, 0.003, 0.004, 0.005, 0.01, 0.025,
                    0.05, 0.1, 0.25, 1.0,
                ]),
            )
            .expect("valid"),
            delivery_lingers: IntCounter::new(
                "natter_edge_delivery_lingers_total",
                "Hand-outs held back to gather more events while the edge was behind",
            )
            .expect("valid"),
            unwritable_frames: IntCounter::new(
                "natter_edge_unwritable_frames_total",
                "Frames that could not be written to a client; each closed its socket",
            )
            .expect("valid"),
            store_connected: IntGauge::new(
                "natter_edge_store_connected",
                "1 once the message store is connected (history works), else 0",
            )
            .expect("valid"),
            delivery_repairs: IntCounterVec::new(
                Opts::new(
                    "natter_edge_delivery_repairs_total",
                    "Times live delivery was found short of the chat stream, by how",
                ),
                &["cause"],
            )
            .expect("valid"),
            delivery_repaired: IntCounter::new(
                "natter_edge_delivery_repaired_events_total",
                "Events read back from the chat stream because live delivery lost them",
            )
            .expect("valid"),
            delivery_repair_failures: IntCounter::new(
                "natter_edge_delivery_repair_failures_total",
                "Repairs that failed: the channel's sessions were closed to resume",
            )
            .expect("valid"),
            delivery_duplicates: IntCounter::new(
                "natter_edge_delivery_duplicates_total",
                "Live copies of events already handed out, dropped",
            )
            .expect("valid"),
            session_start_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "natter_edge_session_start_seconds",
                    "A session's start from IDENTIFY or RESUME: each phase, and the whole to \
                     READY or RESUMED",
                )
                .buckets(vec![
                    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0,
                    10.0,
                ]),
                &["phase"],
            )
            .expect("valid"),
        };
        metrics.register(this.store_connected.clone());
        metrics.register(this.connections.clone());
        metrics.register(this.sessions.clone());
        metrics.register(this.subscriptions.clone());
        metrics.register(this.events_in.clone());
        metrics.register(this.events_out.clone());
        metrics.register(this.fanout_seconds.clone());
        metrics.register(this.run_events.clone());
        metrics.register(this.send_seconds.clone());
        metrics.register(this.closes.clone());
        metrics.register(this.slow_client_closes.clone());
        metrics.register(this.unwritable_frames.clone());
        metrics.register(this.lane_sessions.clone());
        metrics.register(this.lane_moves.clone());
        metrics.register(this.main_late_seconds.clone());
        metrics.register(this.delivery_lingers.clone());
        metrics.register(this.delivery_repairs.clone());
        metrics.register(this.delivery_repaired.clone());
        metrics.register(this.delivery_repair_failures.clone());
        metrics.register(this.delivery_duplicates.clone());
        metrics.register(this.session_start_seconds.clone());
        this
    }
}
