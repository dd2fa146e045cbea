//! Following the chat stream: an ordered consumer (JetStream's, recreated by the client on any
//! gap) from the sequence after the index's last commit, applying this process's channels'
//! creates, edits, deletes, pins and unpins (CHANNEL_PINS_UPDATE), and committing in batches
//! (every `--commit-events` events or `--commit-interval`, whichever comes first) with the last
//! sequence applied. The servers of a batch's channels are known before it is applied (asked of
//! auth once per batch for channels not seen before); when auth cannot say, nothing of the batch
//! is applied and it is read again.
//!
//! Nothing is acknowledged: the index's own commit is the record of how far it holds the stream,
//! so a crash loses nothing committed and re-applies what was not (every write is idempotent by
//! message id). The stream keeps events for a while only (`--stream-max-age`): an index whose
//! position the stream no longer holds is rebuilt from the store ([`crate::rebuild`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use kit::lifecycle::Shutdown;
use proto::Snowflake;
use proto::events::Event;
use proto::subjects::Subjects;
use store::history::History;

use crate::Shared;
use crate::index::Position;
use crate::rebuild;

/// How the intake batches its commits, from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub commit_interval: Duration,
    pub commit_events: usize,
}

/// Follows the stream until `shutdown`, rebuilding first when `position` is not this process's
/// whole index.
pub async fn run(
    nats: async_nats::Client,
    subjects: Subjects,
    history: History,
    shared: Arc<Shared>,
    position: Option<Position>,
    settings: Settings,
    shutdown: Shutdown,
) {
    let js = jetstream::new(nats);
    let stream_name = subjects.chat_stream_name();
    let mut position = match position {
        Some(position) if shared.partitions.matches(&position) => position,
        _ => match rebuild::until_done(&history, &stream_name, &shared, &shutdown).await {
            Some(position) => position,
            None => return,
        },
    };
    while !shutdown.is_cancelled() {
        match follow(&js, &subjects, &shared, &mut position, &settings, &shutdown).await {
            Ok(()) => {}
            Err(Follow::Behind) => {
                tracing::warn!(
                    sequence = position.sequence,
                    "the stream no longer holds the index's position; rebuilding"
                );
                match rebuild::until_done(&history, &stream_name, &shared, &shutdown).await {
                    Some(rebuilt) => position = rebuilt,
                    None => return,
                }
            }
            Err(Follow::Failed(e)) => {
                tracing::warn!(error = %e, "following the chat stream failed; resuming");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        }
    }
}

enum Follow {
    /// The events after the index's position are gone from the stream.
    Behind,
    Failed(String),
}

async fn follow(
    js: &jetstream::Context,
    subjects: &Subjects,
    shared: &Arc<Shared>,
    position: &mut Position,
    settings: &Settings,
    shutdown: &Shutdown,
) -> Result<(), Follow> {
    let failed = |e: &dyn std::fmt::Display| Follow::Failed(e.to_string());
    let mut stream = js
        .get_stream(subjects.chat_stream_name())
        .await
        .map_err(|e| failed(&e))?;
    let state = stream.info().await.map_err(|e| failed(&e))?.state.clone();
    if state.messages > 0 && position.sequence + 1 < state.first_sequence {
        return Err(Follow::Behind);
    }
    if state.last_sequence <= position.sequence {
        shared.ready.set(true);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subjects.chat_stream_filter(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position.sequence + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| failed(&e))?;
    let messages = consumer.messages().await.map_err(|e| failed(&e))?;
    let mut chunks = std::pin::pin!(tokio_stream::StreamExt::chunks_timeout(
        messages.take_until(shutdown.cancelled()),
        settings.commit_events,
        settings.commit_interval,
    ));
    while let Some(chunk) = chunks.next().await {
        let mut applied = position.clone();
        let mut caught_up = false;
        let mut broken = None;
        let mut events = Vec::with_capacity(chunk.len());
        for message in chunk {
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            let Ok(info) = message.info() else {
                continue;
            };
            let sequence = info.stream_sequence;
            caught_up = info.pending == 0;
            events.push((sequence, decode(&message.payload, sequence)));
        }
        // What is applied after the servers are known: the consumer starts again from the
        // last commit when they are not.
        let guilds = shared
            .guilds
            .of(&indexed_channels(shared, &events))
            .await
            .map_err(|e| failed(&e))?;
        for (sequence, event) in &events {
            if let Some(event) = event {
                apply(shared, event, &guilds);
            }
            shared.applied.inc();
            applied.sequence = applied.sequence.max(*sequence);
        }
        if applied.sequence != position.sequence {
            rebuild::commit(shared, applied.clone())
                .await
                .map_err(|e| failed(&e))?;
            *position = applied;
        }
        if caught_up {
            shared.ready.set(true);
        }
        if let Some(e) = broken {
            return Err(Follow::Failed(e));
        }
    }
    Ok(())
}

fn decode(payload: &[u8], sequence: u64) -> Option<Event> {
    match serde_json::from_slice::<Event>(payload) {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::error!(error = %e, sequence, "an undecodable chat event; skipping it");
            None
        }
    }
}

/// The channels of this process's whose messages `events` index (their servers are needed).
fn indexed_channels(shared: &Shared, events: &[(u64, Option<Event>)]) -> BTreeSet<Snowflake> {
    events
        .iter()
        .filter_map(|(_, event)| match event {
            Some(Event::MessageCreate(m) | Event::MessageUpdate(m))
                if m.kind.is_default() && shared.partitions.holds(m.channel_id) =>
            {
                Some(m.channel_id)
            }
            _ => None,
        })
        .collect()
}

/// Applies one event of the stream, if it is about a message of this process's channels.
fn apply(shared: &Shared, event: &Event, guilds: &HashMap<Snowflake, Option<Snowflake>>) {
    match event {
        Event::MessageCreate(m) | Event::MessageUpdate(m)
            if shared.partitions.holds(m.channel_id) =>
        {
            shared
                .index
                .put(m, guilds.get(&m.channel_id).copied().flatten());
        }
        Event::MessageDelete(r) if shared.partitions.holds(r.channel_id) => {
            shared.index.remove(r.id);
        }
        // The pin itself: its system message (type 6) is not indexed.
        Event::ChannelPinsUpdate(p) if shared.partitions.holds(p.channel_id) => {
            shared.index.pin(p.channel_id, p.message_id, p.pinned);
        }
        // Reactions and the rest change nothing a search looks at.
        _ => {}
    }
}
