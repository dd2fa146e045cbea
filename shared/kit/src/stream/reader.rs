//! Reading the chat stream back: what a resuming client missed, each channel's last sequence, and
//! a channel's events from a sequence on (batched direct gets, which any server holding the
//! stream answers), and the same read from the stream's leader through an ephemeral consumer when
//! a replica is behind. Edges read back what live delivery lost; the message store's history
//! overlays what the persister has not yet written.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use proto::Snowflake;
use proto::events::Event;
use proto::subjects::Subjects;

/// Why the stream could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the stream no longer holds sequence {0}")]
    TooOld(u64),
    #[error("more than {0} events were missed")]
    TooMany(usize),
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the stream answered {0} events short of sequence {1}")]
    Incomplete(usize, u64),
}

pub(super) fn js_error(e: impl std::fmt::Display) -> ReadError {
    ReadError::JetStream(e.to_string())
}

/// An event as the stream stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub event: Event,
}

/// The most events one replay reads; a client further behind identifies anew and reads history.
pub const MAX_REPLAY: usize = 10_000;

/// How many channels the replays asked together read at once.
const READS_AT_ONCE: usize = 32;

/// How many replays asked together are read at once from the stream's leader, each through a
/// consumer of its own.
const REPLAYS_AT_ONCE: usize = 8;

/// A client resuming: it has had every event of `channels` through `after`
/// ([`ChatStream::missed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub channels: Vec<Snowflake>,
    pub after: u64,
    /// Per channel, the last sequence this edge already handed out live.
    pub handed_out: HashMap<Snowflake, u64>,
}

/// What a resuming client missed ([`ChatStream::missed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// Every stored event of the client's channels after the sequence it resumed from, through
    /// `through`, in stream order.
    pub events: Vec<Stored>,
    /// The sequence the replay runs through: live delivery goes on above it.
    pub through: u64,
}

/// How many events one direct get asks for.
pub(super) const DIRECT_BATCH: usize = 256;

/// Every subject of a stream, for a direct get of its last event or of its next from a sequence.
/// NATS's file store finds the last of `>` in its last block (the next, in the block holding the
/// sequence), where it matches a wildcard such as the stream's own filter (`{p}.ev.*.>`) against
/// every subject the stream holds, at every call: 0.5 ms of the server's CPU at 6,000 subjects,
/// more with each, and every fresh session asked it (docs/BENCHMARKS.md, "A session's start asked
/// NATS about every subject"). A stream holds nothing but its own subjects, so the answer is the
/// same.
pub(super) const ANY_SUBJECT: &str = ">";

/// How many channels one [`ChatStream::last_sequences`] may ask about (the server answers at most
/// 1,024 subjects per request).
pub const CHANNELS_PER_CHECK: usize = 1_000;

/// How long one direct get may take.
const DIRECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A reader of one deployment's chat stream.
#[derive(Clone)]
pub struct ChatStream {
    nats: async_nats::Client,
    js: jetstream::Context,
    subjects: Subjects,
}

impl ChatStream {
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

    /// The stream sequence of each channel's last event (channels with none are left out), as
    /// one server holding the stream knows it: at most [`CHANNELS_PER_CHECK`] channels.
    pub async fn last_sequences(
        &self,
        channels: &[Snowflake],
    ) -> Result<HashMap<Snowflake, u64>, ReadError> {
        let subjects: HashMap<String, Snowflake> = channels
            .iter()
            .map(|&channel| (self.subjects.chat_intake(channel), channel))
            .collect();
        let keys: Vec<&str> = subjects.keys().map(String::as_str).collect();
        let found = last_of_subjects(&self.nats, self.subjects.chat_direct_get(), &keys).await?;
        Ok(found
            .into_iter()
            .filter_map(|(subject, seq)| Some((*subjects.get(&subject)?, seq)))
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
    ) -> Result<Vec<Stored>, ReadError> {
        let subject = self.subjects.chat_intake(channel);
        let api = self.subjects.chat_direct_get();
        subject_events(&self.nats, api, &subject, after, through, limit).await
    }

    /// The chat stream's last sequence: where a new session's live delivery begins. One direct
    /// get (the last event of any channel), which any server holding the stream answers; a
    /// replica a moment behind gives a slightly older sequence, which costs a later resume a few
    /// more events, never a missing one.
    pub async fn last_sequence(&self) -> Result<u64, ReadError> {
        let request = DirectGet::Last {
            last_by_subj: ANY_SUBJECT,
        };
        Ok(
            direct_get_one(&self.nats, self.subjects.chat_direct_get(), &request)
                .await?
                .map_or(0, |m| m.seq),
        )
    }

    /// What each of `resumes` missed, asked together: the events of its channels since it
    /// resumes from, read with batched direct gets, at most [`MAX_REPLAY`] a resume. The
    /// resumes share the reads: one direct get for every channel's last event (a thousand
    /// channels to one) and, beside it, one check that the stream still holds what the oldest
    /// of them missed; then one read of each channel with anything new, from the oldest
    /// resume's sequence on, every channel at once.
    /// The sessions resuming at an edge share most of that (a channel's members, a user's
    /// devices), so a reconnect storm asks the stream a small part of what a read for each
    /// resume would (docs/BENCHMARKS.md, "reconnect storm").
    ///
    /// A resume whose `handed_out` (per channel, the last sequence this edge already handed out
    /// live, to the channel's sessions, before this one joined them) a replica has not caught up
    /// with cannot be answered from it; nor can one whose channel a replica answers short of its
    /// last event. Its stream's leader is read instead ([`ChatStream::replay`]).
    pub async fn missed<R: Borrow<Resume>>(&self, resumes: &[R]) -> Vec<Result<Missed, ReadError>> {
        let resumes: Vec<&Resume> = resumes.iter().map(Borrow::borrow).collect();
        let mut channels: Vec<Snowflake> = (resumes.iter())
            .flat_map(|r| r.channels.iter().copied())
            .collect();
        channels.sort_unstable();
        channels.dedup();
        // Every channel's last event, and the first event the stream holds from the oldest
        // resume's sequence on, asked at once.
        let lasts = async {
            let mut lasts = HashMap::new();
            for chunk in channels.chunks(CHANNELS_PER_CHECK) {
                lasts.extend(self.last_sequences(chunk).await?);
            }
            Ok::<_, ReadError>(lasts)
        };
        let held = async {
            let Some(oldest) = resumes.iter().map(|r| r.after).min() else {
                return Ok::<_, ReadError>(None);
            };
            let first = DirectGet::Next {
                // A client may resume from any sequence, the last possible one too.
                seq: oldest.saturating_add(1),
                next_by_subj: ANY_SUBJECT,
            };
            let api = self.subjects.chat_direct_get();
            Ok(direct_get_one(&self.nats, api, &first)
                .await?
                .map(|m| m.seq))
        };
        let (lasts, held) = futures::join!(lasts, held);
        let lasts = match lasts {
            Ok(lasts) => lasts,
            Err(e) => return resumes.iter().map(|_| Err(e.clone())).collect(),
        };
        let last_of = |channel: &Snowflake| lasts.get(channel).copied().unwrap_or(0);
        let mut outcomes: Vec<Option<Result<Missed, ReadError>>> = vec![None; resumes.len()];
        let mut throughs = Vec::with_capacity(resumes.len());
        let mut from_leader = Vec::new();
        let mut reading = Vec::new();
        for (i, resume) in resumes.iter().enumerate() {
            let through = (resume.channels.iter().map(last_of))
                .chain(resume.handed_out.values().copied())
                .fold(resume.after, u64::max);
            throughs.push(through);
            let behind = (resume.handed_out.iter()).any(|(channel, &seq)| last_of(channel) < seq);
            if behind {
                from_leader.push(i);
            } else if resume.channels.iter().any(|c| last_of(c) > resume.after) {
                reading.push(i);
            } else {
                outcomes[i] = Some(Ok(Missed {
                    events: Vec::new(),
                    through,
                }));
            }
        }
        // Everything after a resume's sequence is still in the stream: the stream drops events
        // only from its front (its limits discard the oldest), so the first event it holds from
        // the oldest resume's sequence on answers for every resume. None held then: whatever
        // the resumes missed was stored after the check, and is held.
        reading.retain(|&i| {
            let after = resumes[i].after;
            let outcome = match &held {
                Ok(Some(first)) if *first > after.saturating_add(1) => ReadError::TooOld(after),
                Ok(_) => return true,
                Err(e) => e.clone(),
            };
            outcomes[i] = Some(Err(outcome));
            false
        });
        // Each channel with anything new for a resume, read once from the oldest such resume's
        // sequence on; a resume further behind than a replay holds is left out of the read.
        let mut afters: HashMap<Snowflake, Vec<u64>> = HashMap::new();
        for &i in &reading {
            let resume = resumes[i];
            for channel in &resume.channels {
                if last_of(channel) > resume.after {
                    afters.entry(*channel).or_default().push(resume.after);
                }
            }
        }
        let reads = afters.into_iter().map(|(channel, mut afters)| {
            // Oldest first: a read holding more than a replay does is read again from the next.
            afters.sort_unstable();
            afters.dedup();
            let last = last_of(&channel);
            async move {
                let mut afters = afters.into_iter();
                let mut from = afters
                    .next()
                    .expect("a channel read for one resume at least");
                loop {
                    match self.channel_events(channel, from, last, MAX_REPLAY).await {
                        Err(ReadError::TooMany(_)) => match afters.next() {
                            Some(later) => from = later,
                            None => return (channel, u64::MAX, Ok(Vec::new())),
                        },
                        read => return (channel, from, read),
                    }
                }
            }
        });
        let mut reads = futures::stream::iter(reads).buffer_unordered(READS_AT_ONCE);
        let mut read = HashMap::new();
        while let Some((channel, from, events)) = reads.next().await {
            read.insert(channel, (from, events));
        }
        for i in reading {
            match own_share(resumes[i], &lasts, &read) {
                Err(ReadError::Incomplete(..)) => from_leader.push(i),
                share => {
                    let through = throughs[i];
                    outcomes[i] = Some(share.map(|events| Missed { events, through }));
                }
            }
        }
        let replays = from_leader.into_iter().map(|i| {
            let (resume, through) = (resumes[i], throughs[i]);
            async move {
                let replayed = self.replay(&resume.channels, resume.after, through).await;
                (i, replayed.map(|events| Missed { events, through }))
            }
        });
        let mut replays = futures::stream::iter(replays).buffer_unordered(REPLAYS_AT_ONCE);
        while let Some((i, replayed)) = replays.next().await {
            outcomes[i] = Some(replayed);
        }
        (outcomes.into_iter())
            .map(|outcome| outcome.expect("every resume answered"))
            .collect()
    }

    /// The chat stream, with its state as of now (one JetStream request).
    async fn stream(&self) -> Result<jetstream::stream::Stream, ReadError> {
        self.js
            .get_stream(self.subjects.chat_stream_name())
            .await
            .map_err(js_error)
    }

    /// Every stored event of `channels` after `after` up to and including `head`, in order, read
    /// through an ephemeral consumer of its own (from the stream's leader, so never behind); at
    /// most [`MAX_REPLAY`]. Costs the server a consumer: for when a replica cannot answer.
    pub async fn replay(
        &self,
        channels: &[Snowflake],
        after: u64,
        head: u64,
    ) -> Result<Vec<Stored>, ReadError> {
        if channels.is_empty() || after >= head {
            return Ok(Vec::new());
        }
        let stream = self.stream().await?;
        let first = stream.cached_info().state.first_sequence;
        if after + 1 < first {
            return Err(ReadError::TooOld(after));
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
        let name = consumer.cached_info().name.clone();
        let read = if consumer.cached_info().num_pending == 0 {
            Ok(Vec::new())
        } else {
            fetch(&consumer, head).await
        };
        let _ = stream.delete_consumer(&name).await;
        read
    }
}

/// What each channel's shared read gave: the sequence it was read from, and its events (or why
/// they could not be read).
type ChannelReads = HashMap<Snowflake, (u64, Result<Vec<Stored>, ReadError>)>;

/// `resume`'s own events among its channels' shared reads ([`ChatStream::missed`]), in stream
/// order: those after its sequence in each channel with anything new (`lasts`).
fn own_share(
    resume: &Resume,
    lasts: &HashMap<Snowflake, u64>,
    read: &ChannelReads,
) -> Result<Vec<Stored>, ReadError> {
    let mut events = Vec::new();
    let news = |channel: &&Snowflake| lasts.get(*channel).is_some_and(|&l| l > resume.after);
    for channel in resume.channels.iter().filter(news) {
        let (from, channel_events) = &read[channel];
        // Read from later on: this resume alone missed more than a replay holds.
        if resume.after < *from {
            return Err(ReadError::TooMany(MAX_REPLAY));
        }
        let channel_events = channel_events.as_ref().map_err(Clone::clone)?;
        let after = channel_events.partition_point(|stored| stored.seq <= resume.after);
        events.extend_from_slice(&channel_events[after..]);
        if events.len() > MAX_REPLAY {
            return Err(ReadError::TooMany(MAX_REPLAY));
        }
    }
    events.sort_unstable_by_key(|stored| stored.seq);
    Ok(events)
}

/// One direct get of a stream (its `$JS.API.DIRECT.GET` subject) answered by one message (or
/// none: 404).
pub(super) async fn direct_get_one(
    nats: &async_nats::Client,
    api: String,
    request: &DirectGet<'_>,
) -> Result<Option<Direct>, ReadError> {
    let body = serde_json::to_vec(request).expect("requests serialise");
    let asked = nats.request(api, body.into());
    let reply = tokio::time::timeout(DIRECT_TIMEOUT, asked)
        .await
        .map_err(|_| ReadError::JetStream("a direct get timed out".to_owned()))?
        .map_err(js_error)?;
    match reply.status.map(|status| status.as_u16()) {
        None => Ok(Some(Direct::read(reply)?)),
        Some(404) => Ok(None),
        Some(status) => {
            let why = reply.description.unwrap_or_default();
            Err(ReadError::JetStream(format!(
                "direct get answered {status} {why}"
            )))
        }
    }
}

/// One batched direct get of a stream (its `$JS.API.DIRECT.GET` subject): the messages it
/// answers with, up to the end-of-batch marker.
pub(super) async fn direct_get(
    nats: &async_nats::Client,
    api: String,
    request: &DirectGet<'_>,
) -> Result<Vec<Direct>, ReadError> {
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await.map_err(js_error)?;
    let body = serde_json::to_vec(request).expect("requests serialise");
    nats.publish_with_reply(api, inbox, body.into())
        .await
        .map_err(js_error)?;
    let mut found = Vec::new();
    loop {
        let reply = tokio::time::timeout(DIRECT_TIMEOUT, replies.next())
            .await
            .map_err(|_| ReadError::JetStream("a direct get timed out".to_owned()))?
            .ok_or_else(|| ReadError::JetStream("the connection closed".to_owned()))?;
        match reply.status.map(|status| status.as_u16()) {
            None => found.push(Direct::read(reply)?),
            // 204: the end of the batch; 404: nothing at or after the sequence asked.
            Some(204 | 404) => return Ok(found),
            Some(status) => {
                let why = reply.description.unwrap_or_default();
                return Err(ReadError::JetStream(format!(
                    "direct get answered {status} {why}"
                )));
            }
        }
    }
}

/// The sequence of each subject's last message in a stream (subjects with none are left out): at
/// most [`CHANNELS_PER_CHECK`] subjects, one batched direct get.
pub(super) async fn last_of_subjects(
    nats: &async_nats::Client,
    api: String,
    subjects: &[&str],
) -> Result<HashMap<String, u64>, ReadError> {
    if subjects.is_empty() {
        return Ok(HashMap::new());
    }
    let request = DirectGet::MultiLast {
        multi_last: subjects.to_vec(),
        batch: subjects.len(),
    };
    let found = direct_get(nats, api, &request).await?;
    Ok(found
        .into_iter()
        .map(|message| (message.subject, message.seq))
        .collect())
}

/// The stored events of one subject of a stream after sequence `after` up to and including
/// `through` (a sequence the subject holds), in order; at most `limit` of them.
pub(super) async fn subject_events(
    nats: &async_nats::Client,
    api: String,
    subject: &str,
    after: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<Stored>, ReadError> {
    let mut events = Vec::new();
    let mut next = after + 1;
    while next <= through {
        if events.len() >= limit {
            return Err(ReadError::TooMany(limit));
        }
        let request = DirectGet::NextBySubject {
            seq: next,
            next_by_subj: subject,
            batch: DIRECT_BATCH,
        };
        let batch = direct_get(nats, api.clone(), &request).await?;
        let full = batch.len() == DIRECT_BATCH;
        for message in batch {
            if message.seq > through {
                // The subject's next event is past `through`: `through` itself (which the
                // caller saw stored) is no longer held, so neither is what it stood for.
                if next <= through {
                    return Err(ReadError::Incomplete(events.len(), through));
                }
                return Ok(events);
            }
            next = message.seq + 1;
            if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                events.push(Stored {
                    seq: message.seq,
                    event,
                });
            }
        }
        if !full && next <= through {
            // The server has nothing more up to `through`, which the stream does hold: it is a
            // replica not yet caught up (or the event aged out). Not complete.
            return Err(ReadError::Incomplete(events.len(), through));
        }
    }
    Ok(events)
}

/// Reads a replay's consumer until `head`, or until it has nothing more.
async fn fetch(consumer: &consumer::PullConsumer, head: u64) -> Result<Vec<Stored>, ReadError> {
    let mut replay = Vec::new();
    loop {
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
                return Ok(replay);
            }
            if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                replay.push(Stored { seq, event });
            }
            if replay.len() > MAX_REPLAY {
                return Err(ReadError::TooMany(MAX_REPLAY));
            }
            if seq == head || pending == 0 {
                return Ok(replay);
            }
        }
        if !got_any {
            return Ok(replay);
        }
    }
}

/// The direct gets the readers ask (JetStream's `$JS.API.DIRECT.GET` request body).
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(super) enum DirectGet<'a> {
    /// The last message of a subject ([`ANY_SUBJECT`]: of the stream).
    Last { last_by_subj: &'a str },
    /// The first message at or after a sequence of a subject ([`ANY_SUBJECT`]: of the stream).
    Next { seq: u64, next_by_subj: &'a str },
    /// Each subject's last message.
    MultiLast {
        multi_last: Vec<&'a str>,
        batch: usize,
    },
    /// A subject's messages from a sequence on.
    NextBySubject {
        seq: u64,
        next_by_subj: &'a str,
        batch: usize,
    },
}

/// One message of a direct get's answer.
pub(super) struct Direct {
    pub(super) seq: u64,
    /// The subject it was stored under (the channel's intake).
    pub(super) subject: String,
    pub(super) payload: bytes::Bytes,
}

impl Direct {
    fn read(reply: async_nats::Message) -> Result<Self, ReadError> {
        let header = |name: &str| {
            reply
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| ReadError::JetStream(format!("a direct get without {name}")))
        };
        Ok(Self {
            seq: header("Nats-Sequence")?
                .parse()
                .map_err(|_| ReadError::JetStream("a bad Nats-Sequence".to_owned()))?,
            subject: header("Nats-Subject")?,
            payload: reply.payload,
        })
    }
}
