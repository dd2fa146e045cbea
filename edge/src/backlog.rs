//! Reading the chat stream back: the replay a resuming client missed, the events the
//! persister has not yet written to the store (history overlays them, so nothing falls between
//! the stream and the store), and a channel's events that live delivery lost (direct gets: see
//! `continuity`).

use std::collections::HashMap;
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
    #[error("the stream answered {0} events short of sequence {1}")]
    Incomplete(usize, u64),
}

fn js_error(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::JetStream(e.to_string())
}

/// The most events a resume replays; a client further behind identifies anew and reads history.
const MAX_REPLAY: usize = 10_000;

/// How many events one direct get asks for, and how many channels one check asks about (the
/// server answers at most 1,024 subjects per request).
const DIRECT_BATCH: usize = 256;
pub const CHANNELS_PER_CHECK: usize = 1_000;

/// How long one direct get may take.
const DIRECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Backlog {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
}

impl Backlog {
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self {
            js: jetstream::new(nats.clone()),
            nats,
            subjects,
        }
    }

    /// The stream sequence of each channel's last event (channels with none are left out), as
    /// one server holding the stream knows it: at most [`CHANNELS_PER_CHECK`] channels.
    pub async fn last_sequences(
        &self,
        channels: &[Snowflake],
    ) -> Result<HashMap<Snowflake, u64>, ReplayError> {
        let subjects: HashMap<String, Snowflake> = channels
            .iter()
            .map(|&channel| (self.subjects.chat_intake(channel), channel))
            .collect();
        let request = serde_json::json!({
            "multi_last": subjects.keys().collect::<Vec<_>>(),
            "batch": subjects.len(),
        });
        let found = self.direct_get(&request).await?;
        Ok(found
            .into_iter()
            .filter_map(|message| Some((*subjects.get(&message.subject)?, message.seq)))
            .collect())
    }

    /// The stored events of `channel` after sequence `after` up to and including `through` (a
    /// sequence the channel holds), in order; at most `limit` of them.
    pub async fn channel_events(
        &self,
        channel: Snowflake,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, ReplayError> {
        let subject = self.subjects.chat_intake(channel);
        let mut events = Vec::new();
        let mut next = after + 1;
        while next <= through {
            if events.len() >= limit {
                return Err(ReplayError::TooMany(limit));
            }
            let request = serde_json::json!({
                "seq": next,
                "next_by_subj": subject,
                "batch": DIRECT_BATCH,
            });
            let batch = self.direct_get(&request).await?;
            let full = batch.len() == DIRECT_BATCH;
            for message in batch {
                if message.seq > through {
                    return Ok(events);
                }
                next = message.seq + 1;
                if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                    events.push(Delivery::new(Some(message.seq), event));
                }
            }
            if !full && next <= through {
                // The server has nothing more up to `through`, which the stream does hold: it
                // is a replica not yet caught up (or the event aged out). Not complete.
                return Err(ReplayError::Incomplete(events.len(), through));
            }
        }
        Ok(events)
    }

    /// One batched direct get: the messages it answers with, up to the end-of-batch marker.
    async fn direct_get(&self, request: &serde_json::Value) -> Result<Vec<Direct>, ReplayError> {
        let inbox = self.nats.new_inbox();
        let mut replies = self.nats.subscribe(inbox.clone()).await.map_err(js_error)?;
        let body = serde_json::to_vec(request).expect("requests serialise");
        self.nats
            .publish_with_reply(self.subjects.chat_direct_get(), inbox, body.into())
            .await
            .map_err(js_error)?;
        let mut found = Vec::new();
        loop {
            let reply = tokio::time::timeout(DIRECT_TIMEOUT, replies.next())
                .await
                .map_err(|_| ReplayError::JetStream("a direct get timed out".to_owned()))?
                .ok_or_else(|| ReplayError::JetStream("the connection closed".to_owned()))?;
            match reply.status.map(|status| status.as_u16()) {
                None => found.push(Direct::read(&reply)?),
                // 204: the end of the batch; 404: nothing at or after the sequence asked.
                Some(204 | 404) => return Ok(found),
                Some(status) => {
                    let why = reply.description.unwrap_or_default();
                    return Err(ReplayError::JetStream(format!(
                        "direct get answered {status} {why}"
                    )));
                }
            }
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

/// One message of a direct get's answer.
struct Direct {
    seq: u64,
    /// The subject it was stored under (the channel's intake).
    subject: String,
    payload: bytes::Bytes,
}

impl Direct {
    fn read(reply: &async_nats::Message) -> Result<Self, ReplayError> {
        let header = |name: &str| {
            reply
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| ReplayError::JetStream(format!("a direct get without {name}")))
        };
        Ok(Self {
            seq: header("Nats-Sequence")?
                .parse()
                .map_err(|_| ReplayError::JetStream("a bad Nats-Sequence".to_owned()))?,
            subject: header("Nats-Subject")?,
            payload: reply.payload.clone(),
        })
    }
}
