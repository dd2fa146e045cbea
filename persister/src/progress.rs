//! The persister's progress: its own metrics, and the watcher that once a second reads the shared
//! consumer, keeps the lag metrics current and records in the store how far it holds the stream.
//!
//! That record (`store::MessageStore::record_stored_through`) is what history reads to know which
//! events the store does not yet have: the consumer's acknowledgement floor, below which every
//! event is written. Others never read the consumer itself; it stays the persister's own.

use std::time::Duration;

use async_nats::jetstream;
use kit::lifecycle::Shutdown;
use kit::telemetry::Metrics;
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use store::MessageStore;

#[derive(Clone)]
pub struct PersisterMetrics {
    /// Events written to the store, by event name.
    pub written: IntCounterVec,
    /// Store writes that failed (and were retried).
    pub write_errors: IntCounter,
    /// Events that could not be decoded (dropped, logged).
    pub undecodable: IntCounter,
    /// Time of one successful store write.
    pub write_seconds: Histogram,
    /// Time from the stream storing an event to the store holding it.
    pub delay_seconds: Histogram,
    /// Events in the stream not yet written (pending plus in hand).
    pub lag_messages: IntGauge,
    /// Age of the oldest event not yet written; 0 when caught up.
    pub lag_seconds: Gauge,
}

impl PersisterMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let buckets = vec![
            0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            5.0, 10.0, 30.0, 60.0,
        ];
        let this = Self {
            written: IntCounterVec::new(
                Opts::new(
                    "natter_persister_written_total",
                    "Events written to the CQL store",
                ),
                &["event"],
            )
            .expect("valid"),
            write_errors: IntCounter::new(
                "natter_persister_write_errors_total",
                "Store writes that failed and were retried",
            )
            .expect("valid"),
            undecodable: IntCounter::new(
                "natter_persister_undecodable_total",
                "Chat events that could not be decoded",
            )
            .expect("valid"),
            write_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_persister_write_seconds",
                    "Time of one successful store write",
                )
                .buckets(buckets.clone()),
            )
            .expect("valid"),
            delay_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "natter_persister_delay_seconds",
                    "Time from the chat stream storing an event to the CQL store holding it",
                )
                .buckets(buckets),
            )
            .expect("valid"),
            lag_messages: IntGauge::new(
                "natter_persister_lag_messages",
                "Chat events not yet in the CQL store",
            )
            .expect("valid"),
            lag_seconds: Gauge::new(
                "natter_persister_lag_seconds",
                "Age of the oldest chat event not yet in the CQL store",
            )
            .expect("valid"),
        };
        metrics.register(this.written.clone());
        metrics.register(this.write_errors.clone());
        metrics.register(this.undecodable.clone());
        metrics.register(this.write_seconds.clone());
        metrics.register(this.delay_seconds.clone());
        metrics.register(this.lag_messages.clone());
        metrics.register(this.lag_seconds.clone());
        this
    }
}

/// Once a second, reads the shared consumer's state: how many events wait, how old the oldest
/// unacknowledged one is (every persister reports the same figures: it is one consumer), and the
/// acknowledgement floor, which it records in the store when it moved (and on the first read, so a
/// stale record, say of a stream made anew, is corrected at once).
pub async fn watch(
    mut consumer: jetstream::consumer::PullConsumer,
    stream: jetstream::stream::Stream,
    store: MessageStore,
    metrics: PersisterMetrics,
    shutdown: Shutdown,
) {
    let name = stream.cached_info().config.name.clone();
    let mut recorded = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let Ok(info) = consumer.info().await else {
            continue;
        };
        let floor = info.ack_floor.stream_sequence;
        if recorded != Some(floor) {
            match store.record_stored_through(&name, floor).await {
                Ok(()) => recorded = Some(floor),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot record how far the store holds the stream")
                }
            }
        }
        let behind = info.num_pending + info.num_ack_pending as u64;
        metrics
            .lag_messages
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
        if behind == 0 {
            metrics.lag_seconds.set(0.0);
            continue;
        }
        if let Ok(message) = stream.get_raw_message(floor + 1).await {
            let age = time::OffsetDateTime::now_utc() - message.time;
            metrics.lag_seconds.set(age.as_seconds_f64().max(0.0));
        }
    }
}
