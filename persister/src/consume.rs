//! The copy loop: the durable pull consumer `persister` on the chat stream, shared by every
//! persister process, writing each event to the CQL store and acknowledging it only after the
//! write succeeded.
//!
//! - Events are written concurrently and out of order: the store orders a message's writes by the
//!   stream's timestamps (see `store::messages`), so the order of arrival does not matter.
//! - A failed write is retried with backoff, holding the event (and telling JetStream it is still
//!   in progress) rather than dropping or acknowledging it; at most `in_flight` events wait, and
//!   JetStream stops delivering once that many are unacknowledged. A persister that dies with
//!   events in hand simply never acknowledges them, and JetStream delivers them again to whoever
//!   is running.
//! - Writes are idempotent by message id, so a redelivery is harmless.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use backon::BackoffBuilder;
use futures::StreamExt;
use kit::lifecycle::Shutdown;
use kit::retry;
use proto::events::Event;
use proto::subjects::Subjects;
use store::MessageStore;

use crate::progress::PersisterMetrics;

/// The durable consumer through which the persisters share the chat stream: theirs alone. What
/// others need to know of its progress is the store's watermark (`crate::progress`).
pub const DURABLE: &str = "persister";

/// How long JetStream waits for an acknowledgement before it hands the event to another
/// persister: how quickly the work of a persister that died is picked up.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// How the copy loop runs, from configuration.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// Events written at once (and the most unacknowledged events the consumer allows per
    /// process times the number of processes).
    pub in_flight: usize,
    /// Events pulled per request.
    pub batch: usize,
}

/// Creates the durable consumer if it is missing (every persister does, so start order does not
/// matter) and returns it.
pub async fn durable(
    js: &jetstream::Context,
    subjects: &Subjects,
    settings: &CopySettings,
) -> Result<consumer::PullConsumer, String> {
    let stream = js
        .get_stream(subjects.chat_stream_name())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .get_or_create_consumer(
            DURABLE,
            consumer::pull::Config {
                durable_name: Some(DURABLE.to_owned()),
                description: Some("Natter persisters: chat events into the CQL store".to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                // Never give up on an event: the store coming back is only a matter of time.
                max_deliver: -1,
                max_ack_pending: i64::try_from(settings.in_flight * 16).unwrap_or(i64::MAX),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// Copies events until `shutdown`. Events in hand when it comes are left unacknowledged.
pub async fn run(
    consumer: consumer::PullConsumer,
    store: MessageStore,
    metrics: PersisterMetrics,
    settings: CopySettings,
    shutdown: Shutdown,
) {
    let store = Arc::new(store);
    while !shutdown.is_cancelled() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(settings.batch)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await;
        let messages = match messages {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cannot pull from the chat stream; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        messages
            .take_until(shutdown.cancelled())
            .for_each_concurrent(settings.in_flight, |message| {
                let (store, metrics, shutdown) = (Arc::clone(&store), metrics.clone(), &shutdown);
                async move {
                    match message {
                        Ok(message) => copy(&store, &metrics, message, shutdown).await,
                        Err(e) => tracing::warn!(error = %e, "pull from the chat stream failed"),
                    }
                }
            })
            .await;
    }
}

/// Writes one event, retrying until it is stored or the persister stops, then acknowledges it.
async fn copy(
    store: &MessageStore,
    metrics: &PersisterMetrics,
    message: jetstream::Message,
    shutdown: &Shutdown,
) {
    let Ok(info) = message.info() else {
        tracing::warn!("a chat stream message without JetStream metadata; skipping");
        return;
    };
    let published = info.published.unix_timestamp_nanos();
    let at = i64::try_from(published / 1000).unwrap_or(i64::MAX);
    let sequence = info.stream_sequence;
    let event = match serde_json::from_slice::<Event>(&message.payload) {
        Ok(event) => event,
        Err(e) => {
            // Nothing will ever make it readable: keep the loop moving and say so loudly.
            tracing::error!(error = %e, sequence, "an undecodable chat event; dropping it");
            metrics.undecodable.inc();
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let mut delays = retry::exponential(Duration::from_millis(100), Duration::from_secs(5)).build();
    let mut last_progress = Instant::now();
    loop {
        let started = Instant::now();
        let written = match &event {
            Event::MessageCreate(m) => store.insert(m, at).await,
            Event::MessageUpdate(m) => store.edit(m, at).await,
            Event::MessageDelete(r) => store.delete(r.channel_id, r.id, at).await,
            // Nothing else is stored in the stream today; acknowledge what is not ours to keep.
            _ => Ok(()),
        };
        match written {
            Ok(()) => {
                metrics
                    .write_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.written.with_label_values(&[event.name()]).inc();
                let now = time_now_nanos();
                metrics
                    .delay_seconds
                    .observe(now.saturating_sub(published).max(0) as f64 / 1e9);
                if let Err(e) = message.ack().await {
                    tracing::debug!(error = %e, sequence, "ack lost; the event will come again");
                }
                return;
            }
            Err(e) => {
                metrics.write_errors.inc();
                tracing::warn!(error = %e, sequence, "store write failed; retrying");
            }
        }
        let wait = delays.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        // Still working on it: keep JetStream from handing it to another persister meanwhile.
        if last_progress.elapsed() > ACK_WAIT / 3 {
            let _ = message.ack_with(AckKind::Progress).await;
            last_progress = Instant::now();
        }
    }
}

fn time_now_nanos() -> i128 {
    i128::try_from(proto::clock::since_epoch().as_nanos()).unwrap_or(i128::MAX)
}
