//! The copy loop: the durable pull consumer `persister` on the chat stream, shared by every
//! persister process, writing each event to the CQL store and acknowledging it only after the
//! write succeeded.
//!
//! - Events are written concurrently and out of order: the store orders a message's writes by the
//!   stream's timestamps (see `store::messages`), so the order of arrival does not matter. What
//!   the stream has ready is written together, up to [`CHUNK`] events: new messages in batches
//!   per partition (`store::MessageStore::insert_many`), edits and deletes one by one.
//! - A failed write is retried with backoff, holding the events (and telling JetStream they are
//!   still in progress) rather than dropping or acknowledging them; at most `in_flight` wait, and
//!   JetStream stops delivering once that many are unacknowledged. A persister that dies with
//!   events in hand simply never acknowledges them, and JetStream delivers them again to whoever
//!   is running.
//! - Writes are idempotent by message id (reactions: by message, emoji and reactor), so a
//!   redelivery is harmless; reaction counts are derived from the rows after they are written.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use backon::BackoffBuilder;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kit::lifecycle::Shutdown;
use kit::retry;
use proto::events::Event;
use proto::subjects::Subjects;
use store::MessageStore;
use store::messages::Touched;

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
    /// How long a chunk waits for more after its first event: the stream hands a pull's events
    /// over a few at a time, and every chunk is at least one request to the store.
    pub linger: Duration,
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

/// Events written together at most: what the stream has ready, up to this many, goes to the
/// store as one set of batched writes (see `store::MessageStore::insert_many`). A backlog (after
/// a store outage, a persister's restart) comes through in full chunks, and the more rows of a
/// partition a chunk holds, the fewer requests carry them: 4,096 rather than 1,024 took `drain`
/// from 83.6-99.3 k to 103.5-118.5 k messages a second in alternating runs, Cassandra's CPU a
/// message about a third less (docs/BENCHMARKS.md, "The store's account over the same time"). At chat's
/// rates the linger cuts chunks long before.
pub const CHUNK: usize = 4096;

/// Copies events until `shutdown`. Events in hand when it comes are left unacknowledged.
pub async fn run(
    consumer: consumer::PullConsumer,
    store: MessageStore,
    metrics: PersisterMetrics,
    settings: CopySettings,
    shutdown: Shutdown,
) {
    let store = Arc::new(store);
    let chunk = settings.in_flight.clamp(1, CHUNK);
    let writers = settings.in_flight.div_ceil(chunk);
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
        let chunks = tokio_stream::StreamExt::chunks_timeout(
            messages.take_until(shutdown.cancelled()),
            chunk,
            settings.linger,
        );
        chunks
            .for_each_concurrent(writers, |messages| {
                let (store, metrics, shutdown) = (Arc::clone(&store), metrics.clone(), &shutdown);
                async move {
                    let mut events = Vec::with_capacity(messages.len());
                    for message in messages {
                        match message {
                            Ok(message) => {
                                if let Some(event) = Received::read(message, &metrics).await {
                                    events.push(event);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "pull from the chat stream failed")
                            }
                        }
                    }
                    copy(&store, &metrics, events, shutdown).await;
                }
            })
            .await;
    }
}

/// An event taken from the stream, decoded.
struct Received {
    message: jetstream::Message,
    event: Event,
    /// When the stream stored it: nanoseconds, and the store's write timestamp (microseconds).
    published: i128,
    at: i64,
}

impl Received {
    /// Decodes a message; one that can never be read is terminated (and counted) here.
    async fn read(message: jetstream::Message, metrics: &PersisterMetrics) -> Option<Self> {
        let Ok(info) = message.info() else {
            tracing::warn!("a chat stream message without JetStream metadata; skipping");
            return None;
        };
        let published = info.published.unix_timestamp_nanos();
        let at = i64::try_from(published / 1000).unwrap_or(i64::MAX);
        let sequence = info.stream_sequence;
        match serde_json::from_slice::<Event>(&message.payload) {
            Ok(event) => Some(Self {
                message,
                event,
                published,
                at,
            }),
            Err(e) => {
                // Nothing will ever make it readable: keep the loop moving and say so loudly.
                tracing::error!(error = %e, sequence, "an undecodable chat event; dropping it");
                metrics.undecodable.inc();
                let _ = message.ack_with(AckKind::Term).await;
                None
            }
        }
    }
}

/// Writes a set of events, retrying until they are stored or the persister stops, then
/// acknowledges each. New messages go in batches; edits and deletes one by one, at once.
async fn copy(
    store: &MessageStore,
    metrics: &PersisterMetrics,
    events: Vec<Received>,
    shutdown: &Shutdown,
) {
    if events.is_empty() {
        return;
    }
    let mut delays = retry::exponential(Duration::from_millis(100), Duration::from_secs(5)).build();
    let mut last_progress = Instant::now();
    loop {
        let started = Instant::now();
        match write(store, &events).await {
            Ok(()) => {
                let took = started.elapsed().as_secs_f64();
                let now = time_now_nanos();
                for received in &events {
                    metrics.write_seconds.observe(took);
                    metrics
                        .written
                        .with_label_values(&[received.event.name()])
                        .inc();
                    metrics
                        .delay_seconds
                        .observe(now.saturating_sub(received.published).max(0) as f64 / 1e9);
                }
                let acks = events.iter().map(|received| async move {
                    if let Err(e) = received.message.ack().await {
                        tracing::debug!(error = %e, "ack lost; the event will come again");
                    }
                });
                futures::future::join_all(acks).await;
                return;
            }
            Err(e) => {
                metrics.write_errors.inc();
                tracing::warn!(error = %e, events = events.len(), "store write failed; retrying");
            }
        }
        let wait = delays.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        // Still working on them: keep JetStream from handing them to another persister meanwhile.
        if last_progress.elapsed() > ACK_WAIT / 3 {
            for received in &events {
                let _ = received.message.ack_with(AckKind::Progress).await;
            }
            last_progress = Instant::now();
        }
    }
}

/// One attempt at writing every event of a set: the events themselves, then the reaction counts
/// of every (message, emoji) they touched, once each, from the rows just written.
async fn write(store: &MessageStore, events: &[Received]) -> Result<(), store::StoreError> {
    let created: Vec<(&proto::api::messages::Message, i64)> = events
        .iter()
        .filter_map(|received| match &received.event {
            Event::MessageCreate(m) => Some((m, received.at)),
            _ => None,
        })
        .collect();
    // A future per event, each boxed at the size of its own kind of write: one async block for
    // every kind is as large as the largest (an edit's or a delete's joined writes, kilobytes),
    // and moving that into the join for every event cost more than the rest of the persister's
    // work. A plain new message (nothing but its row, which `insert_many` writes) gets none.
    let others = events
        .iter()
        .filter(|received| match &received.event {
            Event::MessageCreate(m) => MessageStore::has_sides(m),
            _ => true,
        })
        .map(
            |received| -> BoxFuture<'_, Result<Vec<Touched>, store::StoreError>> {
                let at = received.at;
                match &received.event {
                    Event::MessageCreate(m) => store
                        .insert_sides(m, at)
                        .map(|r| r.map(|()| Vec::new()))
                        .boxed(),
                    // An update carries the whole message, its files included (with what processing
                    // learnt of them); its mentions follow its text.
                    Event::MessageUpdate(m) => async move {
                        tokio::try_join!(
                            store.edit(m, at),
                            store.write_mentions(m, true, at),
                            store.insert_attachments(m, at),
                            store.write_embeds(m, true, at)
                        )?;
                        Ok(Vec::new())
                    }
                    .boxed(),
                    Event::MessageDelete(r) => async move {
                        tokio::try_join!(
                            store.delete(r.channel_id, r.id, at),
                            store.forget_mentions(r.channel_id, r.id, at),
                            store.delete_attachments(r.channel_id, r.id, at),
                            store.delete_embeds(r.channel_id, r.id, at),
                            store.delete_call(r.channel_id, r.id, at)
                        )?;
                        Ok(Vec::new())
                    }
                    .boxed(),
                    Event::MessageReactionAdd(r) => async move {
                        store.react(r, at).await?;
                        Ok(vec![(r.channel_id, r.message_id, r.emoji.name.clone())])
                    }
                    .boxed(),
                    Event::MessageReactionRemove(r) => async move {
                        store.unreact(r, at).await?;
                        Ok(vec![(r.channel_id, r.message_id, r.emoji.name.clone())])
                    }
                    .boxed(),
                    Event::MessageReactionRemoveAll(r) => async move {
                        let emoji = store.clear_reactions(r.channel_id, r.id, at).await?;
                        Ok(emoji.into_iter().map(|e| (r.channel_id, r.id, e)).collect())
                    }
                    .boxed(),
                    Event::ChannelPinsUpdate(update) => {
                        async move { store.pin(update, at).await.map(|()| Vec::new()) }.boxed()
                    }
                    // Nothing else is stored in the stream today, and what is not ours to keep is
                    // acknowledged.
                    _ => futures::future::ready(Ok(Vec::new())).boxed(),
                }
            },
        );
    let creates = async {
        if created.is_empty() {
            Ok(())
        } else {
            store.insert_many(&created).await
        }
    };
    let ((), touched) = futures::try_join!(creates, futures::future::try_join_all(others))?;
    // A hot message's thousand reactions in a chunk cost one count, not a thousand.
    let touched: std::collections::HashSet<Touched> = touched.into_iter().flatten().collect();
    let recounts = touched
        .iter()
        .map(|(channel, message, emoji)| store.recount(*channel, *message, emoji));
    futures::future::try_join_all(recounts).await?;
    Ok(())
}

fn time_now_nanos() -> i128 {
    i128::try_from(proto::clock::since_epoch().as_nanos()).unwrap_or(i128::MAX)
}
