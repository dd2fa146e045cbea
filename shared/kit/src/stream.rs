//! The chat stream: JetStream's durable intake of every stored chat event, its configuration
//! and ([`ChatStream`]) reading it back.
//!
//! Edges publish each message to the intake and answer the sender only once JetStream has
//! acknowledged it; the stream republishes every stored event to its channel's subject (that is
//! how all edges deliver it live), and the persister's durable consumer copies it into the CQL
//! store. The stream is a buffer, not the archive: it keeps events for `max_age`, `max_bytes` or
//! `max_messages`, whichever runs out first, which is how far back a reconnecting client can be
//! served from it directly.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use proto::subjects::Subjects;

mod durable;
mod events;
mod reader;

pub use durable::{new_events, read_durable};
pub use events::{EVENTS_MAX_AGE, EVENTS_MAX_BYTES, EventsStream, EventsStreamConfig};
pub use reader::{CHANNELS_PER_CHECK, ChatStream, MAX_REPLAY, Missed, ReadError, Resume, Stored};

/// Retention and placement of the chat stream, from configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatStreamConfig {
    /// How long the chat stream keeps events.
    #[arg(long = "stream-max-age", env = "NATTER_STREAM_MAX_AGE", default_value = "7d",
          value_parser = crate::config::duration)]
    pub max_age: Duration,

    /// How many bytes the chat stream keeps before it drops its oldest events.
    #[arg(long = "stream-max-bytes", env = "NATTER_STREAM_MAX_BYTES", default_value_t = 1 << 30)]
    pub max_bytes: i64,

    /// How many events the chat stream keeps (-1: no limit but age and bytes).
    #[arg(long = "stream-max-messages", env = "NATTER_STREAM_MAX_MESSAGES", default_value_t = -1,
          allow_negative_numbers = true)]
    pub max_messages: i64,

    /// JetStream replicas of the chat stream (1 on a single server, 3 on a cluster).
    #[arg(
        long = "stream-replicas",
        env = "NATTER_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,

    /// Consumers the chat stream allows at once. A resume whose replay a replica cannot serve
    /// (it is behind) reads it through an ephemeral consumer of its own on the stream's leader,
    /// so a reconnect storm during a replica's lag may need many (NATS 2.15 otherwise caps a
    /// stream at 1,000, and resumes past that were refused).
    #[arg(
        long = "stream-max-consumers",
        env = "NATTER_STREAM_MAX_CONSUMERS",
        default_value_t = 100_000
    )]
    pub max_consumers: i32,

    /// How long JetStream remembers a message id to drop a retried publish.
    #[arg(long = "stream-duplicate-window", env = "NATTER_STREAM_DUPLICATE_WINDOW",
          default_value = "2m", value_parser = crate::config::duration)]
    pub duplicate_window: Duration,
}

impl ChatStreamConfig {
    pub fn stream_config(&self, subjects: &Subjects) -> stream::Config {
        stream::Config {
            name: subjects.chat_stream_name(),
            description: Some("Natter chat events: the durable intake, not the archive".into()),
            subjects: vec![subjects.chat_stream_filter()],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            max_messages: self.max_messages,
            max_consumers: self.max_consumers,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            // Live delivery comes from here: each event once stored, in stream order, carrying
            // its stream sequence, which is what clients resume from on any edge.
            republish: Some(stream::Republish {
                source: subjects.chat_stream_filter(),
                destination: subjects.chat_republish_destination(),
                headers_only: false,
            }),
            // Edges read back what core NATS lost of the republish (a reconnect, a slow consumer,
            // a leader change) with direct gets: a channel's last sequence, or its events from a
            // sequence on, in batches, from any server holding the stream.
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates the stream, or brings an existing one to this configuration. Every service that
    /// publishes to or reads from the stream calls this at start, so start order does not matter.
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
        subjects: &Subjects,
    ) -> Result<stream::Info, jetstream::context::CreateStreamError> {
        create_or_update(js, self.stream_config(subjects)).await
    }
}

/// How long a service keeps trying to create or update a stream at start: a cluster that was just
/// started (or lost its meta leader) answers JetStream's API only once it has elected one.
const ENSURE_FOR: Duration = Duration::from_secs(60);

/// Creates or updates a stream, trying again with backoff for [`ENSURE_FOR`] while JetStream
/// does not answer (no meta leader yet, a node restarting), so services may start beside a
/// cluster that is still forming.
pub(crate) async fn create_or_update(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Info, jetstream::context::CreateStreamError> {
    use crate::retry::Retryable;
    let policy = crate::retry::exponential(Duration::from_millis(200), Duration::from_secs(5))
        .with_total_delay(Some(ENSURE_FOR));
    (|| js.create_or_update_stream(config.clone()))
        .retry(policy)
        .notify(|e, _| tracing::warn!(error = %e, stream = %config.name, "cannot create or update the stream yet; retrying"))
        .await
}
