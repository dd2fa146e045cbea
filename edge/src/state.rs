//! What every connection and request handler of one edge shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::Quota;
use kit::gather::Gather;
use kit::stream::{ChatStream, EventsStream, Missed, ReadError, Resume};
use kit::tokens::Verifier;
use tokio_util::sync::CancellationToken;

use crate::archive::Archive;
use crate::chat::Chat;
use crate::directory::Directory;
use crate::fanout::{ASKED_IN_FLIGHT, ASKED_TOGETHER, Hub, SessionId};
use crate::lane::Lane;
use crate::metrics::EdgeMetrics;
use crate::reporter::Reporter;

/// What the sessions resuming at an edge missed, asked of the chat stream together.
pub type Resumes = Gather<Arc<Resume>, Result<Missed, ReadError>>;

/// Starts asking `stream` what the sessions resuming here missed, together: what they share
/// (their channels, a user's devices) is read once for all of them, so a reconnect storm asks
/// the stream a small part of what one read each would (docs/BENCHMARKS.md, "reconnect storm").
pub fn resumes(stream: ChatStream) -> Resumes {
    Gather::start(ASKED_TOGETHER, ASKED_IN_FLIGHT, move |resumes| {
        let stream = stream.clone();
        async move { Ok(stream.missed(&resumes).await) }
    })
}

/// Per-connection limits and timings, from configuration.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub heartbeat_interval: Duration,
    pub identify_timeout: Duration,
    pub write_timeout: Duration,
    /// Deliveries a session may have waiting before it is closed as too slow.
    pub session_queue: usize,
    /// Client frames allowed per minute per connection.
    pub frames_per_minute: u32,
    /// Largest client frame in bytes.
    pub max_frame_bytes: usize,
    /// Read buffer per socket.
    pub read_buffer_bytes: usize,
    /// Unsent bytes one socket may hold: also the largest frame the edge can send.
    pub max_write_buffer_bytes: usize,
    /// Largest REST request body, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Browser origins allowed to open a socket.
    pub allowed_origins: Vec<String>,
    /// Channels of up to this many members get read receipts (MESSAGE_ACK to every member).
    pub receipts_max_members: usize,
}

impl GatewaySettings {
    pub fn client_quota(&self) -> Quota {
        Quota::per_minute(
            self.frames_per_minute
                .try_into()
                .unwrap_or(std::num::NonZeroU32::MIN),
        )
    }
}

pub struct EdgeState {
    pub config: GatewaySettings,
    pub hub: Hub,
    pub chat: Chat,
    /// Where talking sessions run, apart from the fan-out; `None` with `--lane-sessions 0`.
    pub lane: Option<Lane>,
    /// Reads the chat stream back: where a fresh session's live delivery begins.
    pub stream: ChatStream,
    /// The sessions resuming here, their replays read together ([`resumes`]).
    pub resumes: Resumes,
    /// Reads the events stream back: a new session's calls changed while it started.
    pub events: EventsStream,
    pub archive: Archive,
    pub verifier: Verifier,
    pub directory: Directory,
    /// Asks the search service.
    pub search: crate::search::Searcher,
    pub metrics: EdgeMetrics,
    pub presence: Arc<Reporter>,
    /// Cancelled when the edge starts draining: sessions ask their clients to reconnect elsewhere.
    pub draining: CancellationToken,
    /// The next local session id.
    pub next_session: AtomicU64,
    /// The clock of every session's frame limiter: one per edge, because making one calibrates
    /// the CPU's time stamp counter (a few percent of a reconnect storm's CPU, made per session).
    pub clock: governor::clock::DefaultClock,
    #[cfg(feature = "fault-injection")]
    pub faults: crate::fault::Faults,
}

impl EdgeState {
    pub fn next_session_id(&self) -> SessionId {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}
