//! A session's socket: reading client frames under the rate limit, writing frames under a
//! deadline, and closing with a code and the closing handshake.

use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use proto::gateway::{ClientFrame, CloseCode, Dispatch, Frame, Opcode};
use serde::Serialize;

use super::{Ending, Session, Step};
use crate::metrics::EdgeMetrics;
use crate::wire::{Incoming, ReadError, Socket};

/// Frames a session writes in one system call, at most (in bytes): past this, what is queued is
/// written before the next frame is added.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

impl Session {
    /// Sends one of the gateway's own dispatches (stored events go out as their delivery's frame,
    /// with their sequence).
    pub(super) async fn dispatch(&mut self, dispatch: Dispatch) -> Step {
        self.send_text(&dispatch.encode(None)).await
    }

    pub(super) async fn send_op<T: Serialize>(&mut self, op: Opcode, d: &T) -> Step {
        self.send_text(&op_frame(op, d)).await
    }

    /// Queues one frame for the socket. It goes out with the session's next [`Session::flush`],
    /// at the end of the step that made it, together with every other frame queued meanwhile: a
    /// session that has several frames waiting writes them with one system call. The text is
    /// copied into the socket's buffer (`crate::wire`): a delivery's, shared by every session of
    /// the edge, is only borrowed.
    ///
    /// Past a step's worth of queued bytes, those are written first: a socket whose buffer is
    /// full (the client reads slowly) makes this wait, at most the write deadline.
    pub(super) async fn send_text(&mut self, text: &str) -> Step {
        if text.len() > self.state.config.max_write_buffer_bytes {
            tracing::error!(
                session = self.id,
                bytes = text.len(),
                limit = self.state.config.max_write_buffer_bytes,
                "a frame is larger than a socket may hold; closing the socket"
            );
            self.state.metrics.unwritable_frames.inc();
            return Err(Some(CloseCode::UnknownError));
        }
        if self.socket.pending() >= WRITE_BATCH_BYTES {
            self.flush().await?;
        }
        self.socket.push_text(text);
        Ok(())
    }

    /// Writes every queued frame, giving up on a client that does not take them within the
    /// write deadline.
    pub(super) async fn flush(&mut self) -> Step {
        if self.socket.pending() == 0 {
            return Ok(());
        }
        let written = self.socket.flush();
        match tokio::time::timeout(self.state.config.write_timeout, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!(session = self.id, error = %e, "the client went away mid-write");
                Err(None)
            }
            Err(_) => {
                if self.deliveries.kick(CloseCode::SessionTimedOut) {
                    self.state.metrics.slow_client_closes.inc();
                }
                Err(Some(CloseCode::SessionTimedOut))
            }
        }
    }

    /// The session was kicked with `code`, or (none) the edge is draining.
    pub(super) async fn kicked<T>(&mut self, code: Option<CloseCode>) -> Step<T> {
        match code {
            Some(code) => Err(Some(code)),
            None => self.reconnect().await,
        }
    }

    /// The edge is draining: ask the client to reconnect elsewhere and resume there.
    pub(super) async fn reconnect<T>(&mut self) -> Step<T> {
        self.send_op(Opcode::Reconnect, &()).await?;
        Err(Some(CloseCode::UnknownError))
    }

    /// Leaves every topic and closes the socket with the ending's code.
    pub(super) async fn finish(mut self, ending: Ending) {
        // Voice lasts as long as the connection that joined it.
        self.end_voice().await;
        for topic in std::mem::take(&mut self.topics) {
            self.state.hub.leave(topic, self.id).await;
        }
        self.presence.finish(&self.state, self.id).await;
        if let Some(code) = ending {
            self.state
                .metrics
                .closes
                .with_label_values(&[&format!("{code:?}")])
                .inc();
            self.socket.push_close(code.code());
        }
        // What is queued goes out: our Close, or the answer to the client's.
        if self.socket.pending() > 0 {
            match tokio::time::timeout(Duration::from_secs(1), self.socket.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, ?ending, "cannot send the close frame"),
                Err(_) => tracing::debug!(?ending, "the close frame was not taken in time"),
            }
        }
        if ending.is_some() {
            // The closing handshake: read (and drop) what the client still sends until its Close
            // answers ours. Dropping the socket with unread bytes in the kernel's buffer would
            // make it send a reset, and a reset can reach the client before our Close frame, so
            // a client that flooded would never learn why it was closed.
            let drained = async {
                while let Ok(message) = self.socket.read().await {
                    if message == Incoming::Close {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSING_HANDSHAKE, drained).await;
        }
    }
}

/// How long a closing session waits for the client to answer its Close.
const CLOSING_HANDSHAKE: Duration = Duration::from_secs(2);

/// Reads the next client frame, enforcing the frame rate limit. A free function over the fields it
/// needs, so the session's select loop can wait on it beside its delivery queue.
pub(super) async fn read_frame(
    socket: &mut Socket,
    limiter: &DefaultDirectRateLimiter,
    metrics: &EdgeMetrics,
) -> Step<ClientFrame> {
    loop {
        let message = match socket.read().await {
            Ok(Incoming::Close) => return Err(None),
            Ok(message) => message,
            // Gone without a Close: nothing to answer, nothing to log above debug.
            Err(ReadError::Gone(e)) => {
                tracing::debug!(error = %e, "the client went away");
                return Err(None);
            }
            // Over the size limit, or not WebSocket at all.
            Err(ReadError::Invalid(e)) => {
                tracing::debug!(error = %e, "not WebSocket as a client speaks it");
                return Err(Some(CloseCode::DecodeError));
            }
        };
        metrics.events_in.inc();
        // Every frame counts, control frames too: each ping is answered with a pong, so an
        // uncounted ping flood would cost a write per frame for free.
        if limiter.check().is_err() {
            return Err(Some(CloseCode::RateLimited));
        }
        let text = match message {
            Incoming::Text(text) => text,
            Incoming::Ping | Incoming::Pong => continue,
            // (A Close was answered above.)
            Incoming::Binary | Incoming::Close => return Err(Some(CloseCode::DecodeError)),
        };
        return ClientFrame::decode(&text).map_err(Some);
    }
}

/// A frame of opcode `op` carrying `d`, encoded.
pub(super) fn op_frame<T: Serialize>(op: Opcode, d: &T) -> String {
    let frame = Frame {
        op,
        d,
        s: None,
        t: None,
    };
    serde_json::to_string(&frame).expect("frames serialise")
}
