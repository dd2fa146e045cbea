//! The events stream: what auth tells users, servers and channels (`{p}.ev.*.>`), kept for a
//! short while so that edges can read back what core NATS lost of it, and republished to the
//! subjects edges follow (`{p}.user.{user}`, `{p}.guild.{guild}`, `{p}.ch.{channel}.meta`) with
//! each event's sequence and its subject's previous one, as the chat stream does for messages.
//!
//! It is a repair buffer, not a history: an edge that lost more than it holds closes the
//! sessions concerned so that they resume (their RESUMED carries the current channels and
//! servers).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use proto::subjects::Subjects;

use super::reader::{
    ANY_SUBJECT, CHANNELS_PER_CHECK, DirectGet, ReadError, Stored, direct_get_one, js_error,
    last_of_subjects, subject_events,
};

/// How long the events stream keeps an event: far longer than any NATS fault an edge repairs.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// How many bytes the events stream keeps before it drops its oldest events.
pub const EVENTS_MAX_BYTES: i64 = 256 << 20;

/// Placement of the events stream, from configuration (auth and the edges take it; they must
/// agree, since both create or update the stream at start).
#[derive(Debug, Clone, clap::Args)]
pub struct EventsStreamConfig {
    /// JetStream replicas of the events stream (1 on a single server, 3 on a cluster).
    #[arg(
        long = "events-stream-replicas",
        env = "NATTER_EVENTS_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub events_replicas: usize,
}

impl EventsStreamConfig {
    pub fn stream_config(&self, subjects: &Subjects) -> stream::Config {
        stream::Config {
            name: subjects.events_stream_name(),
            description: Some(
                "Natter events for users, servers and channels: a repair buffer".into(),
            ),
            subjects: vec![subjects.events_stream_filter()],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            max_age: EVENTS_MAX_AGE,
            max_bytes: EVENTS_MAX_BYTES,
            max_messages: -1,
            num_replicas: self.events_replicas,
            // Live delivery comes from here, with the sequences that let an edge see a gap.
            republish: Some(stream::Republish {
                source: subjects.events_stream_filter(),
                destination: subjects.events_republish_destination(),
                headers_only: false,
            }),
            // Edges read back what core NATS lost with direct gets, from any server holding it.
            allow_direct: true,
            ..Default::default()
        }
    }

    /// Creates the events stream, or brings an existing one to this configuration (auth, which
    /// publishes to it, and edges, which read it, call this at start).
    pub async fn ensure(
        &self,
        js: &jetstream::Context,
        subjects: &Subjects,
    ) -> Result<stream::Info, jetstream::context::CreateStreamError> {
        super::create_or_update(js, self.stream_config(subjects)).await
    }
}

/// A reader of one deployment's events stream, by intake subject.
#[derive(Clone)]
pub struct EventsStream {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
}

impl EventsStream {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self {
            js: jetstream::new(nats.clone()),
            nats,
            subjects,
        }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The sequence of each intake subject's last event (subjects with none are left out): at
    /// most [`CHANNELS_PER_CHECK`] subjects.
    pub async fn last_sequences(
        &self,
        subjects: &[&str],
    ) -> Result<HashMap<String, u64>, ReadError> {
        debug_assert!(subjects.len() <= CHANNELS_PER_CHECK);
        last_of_subjects(&self.nats, self.subjects.events_direct_get(), subjects).await
    }

    /// The events of one intake subject after `after` through `through`, in order; at most
    /// `limit`. Whole or an error: [`ReadError::TooOld`] when the stream no longer holds every
    /// event after `after` (its limits dropped the oldest, or it was purged), since the subject's
    /// events among those are gone without a trace; [`ReadError::Incomplete`] when `through` is
    /// not read.
    pub async fn events(
        &self,
        subject: &str,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, ReadError> {
        let api = self.subjects.events_direct_get();
        let events = subject_events(&self.nats, api, subject, after, through, limit).await?;
        // Asked after the read: the first sequence only grows, so if the stream still holds
        // `after + 1` now, nothing the read needed was dropped before or during it.
        if self.first_sequence().await? > after + 1 {
            return Err(ReadError::TooOld(after));
        }
        Ok(events)
    }

    /// The stream's last sequence (an event of any subject), as one server holding the stream
    /// knows it: 0 when it holds none.
    pub async fn last_sequence(&self) -> Result<u64, ReadError> {
        let request = DirectGet::Last {
            last_by_subj: ANY_SUBJECT,
        };
        let api = self.subjects.events_direct_get();
        Ok(direct_get_one(&self.nats, api, &request)
            .await?
            .map_or(0, |m| m.seq))
    }

    /// The sequence of the oldest event the stream holds (its last sequence + 1 when it holds
    /// none, e.g. just purged): events below it are gone.
    pub async fn first_sequence(&self) -> Result<u64, ReadError> {
        let stream = self
            .js
            .get_stream(self.subjects.events_stream_name())
            .await
            .map_err(js_error)?;
        Ok(stream.cached_info().state.first_sequence)
    }
}
