//! Reading the chat stream back: the replay a resuming client missed, and the events the
//! persister has not yet written to the store (history overlays them, so nothing falls between
//! the stream and the store).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use shared::Snowflake;
use shared::events::Event;
use shared::stream::PERSISTER_DURABLE;
use shared::subjects::Subjects;

use crate::fanout::Delivery;

/// Why a resume cannot be served from the stream.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the stream no longer holds sequence {0}")]
    TooOld(u64),
    #[error("more than {0} events were missed")]
    TooMany(usize),
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_error(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::JetStream(e.to_string())
}

/// The most events a resume replays; a client further behind identifies anew and reads history.
const MAX_REPLAY: usize = 10_000;

#[derive(Clone)]
pub struct Backlog {
    js: jetstream::Context,
    subjects: Subjects,
}

impl Backlog {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self {
            js: jetstream::new(nats),
            subjects,
        }
    }

    /// The chat stream's last sequence: where a new session's live delivery begins.
    pub async fn last_sequence(&self) -> Result<u64, ReplayError> {
        Ok(self.stream().await?.cached_info().state.last_sequence)
    }

    /// The chat stream, with its state as of now (one JetStream request).
    async fn stream(&self) -> Result<jetstream::stream::Stream, ReplayError> {
        self.js
            .get_stream(self.subjects.chat_stream_name())
            .await
            .map_err(js_error)
    }

    /// Every stored event of `channels` after `after` up to and including `head`, in order.
    pub async fn replay(
        &self,
        channels: &[Snowflake],
        after: u64,
        head: u64,
    ) -> Result<Vec<Delivery>, ReplayError> {
        if channels.is_empty() || after >= head {
            return Ok(Vec::new());
        }
        let stream = self.stream().await?;
        let first = stream.cached_info().state.first_sequence;
        if after + 1 < first {
            return Err(ReplayError::TooOld(after));
        }
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subjects: channels
                    .iter()
                    .map(|&ch| self.subjects.chat_intake(ch))
                    .collect(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(js_error)?;
        let mut replay = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            let _ = stream.delete_consumer(&consumer.cached_info().name).await;
            return Ok(replay);
        }
        'fetching: loop {
            let mut batch = consumer
                .fetch()
                .max_messages(512)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(js_error)?;
            let mut got_any = false;
            while let Some(message) = batch.next().await {
                let message = message.map_err(js_error)?;
                let info = message.info().map_err(js_error)?;
                let (seq, pending) = (info.stream_sequence, info.pending);
                got_any = true;
                if seq > head {
                    break 'fetching;
                }
                if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                    replay.push(Delivery::new(Some(seq), event));
                }
                if replay.len() > MAX_REPLAY {
                    return Err(ReplayError::TooMany(MAX_REPLAY));
                }
                if seq == head || pending == 0 {
                    break 'fetching;
                }
            }
            if !got_any {
                break;
            }
        }
        let name = consumer.cached_info().name.clone();
        let _ = stream.delete_consumer(&name).await;
        Ok(replay)
    }

    /// The events of `channel` that the stream holds and the persister may not have written yet
    /// (after its consumer's acknowledgement floor), in stream order.
    pub async fn unpersisted(&self, channel: Snowflake) -> Result<Vec<Event>, ReplayError> {
        let stream = self.stream().await?;
        let (first, last) = {
            let state = &stream.cached_info().state;
            (state.first_sequence, state.last_sequence)
        };
        let floor = match stream.consumer_info(PERSISTER_DURABLE).await {
            Ok(info) if info.num_pending == 0 && info.num_ack_pending == 0 => return Ok(Vec::new()),
            Ok(info) => info.ack_floor.stream_sequence,
            // No persister has ever run: nothing is in the store yet.
            Err(_) => 0,
        };
        let after = floor.max(first.saturating_sub(1));
        let events = self
            .replay(&[channel], after, last)
            .await?
            .into_iter()
            .map(|delivery| delivery.event.clone())
            .collect();
        Ok(events)
    }
}
