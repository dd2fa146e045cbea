//! The gateway's WebSocket connection: the upgrade (RFC 6455 over HTTP/1.1), and a connection
//! whose frames the session reads and writes itself.
//!
//! What the server sends is simple: its frames are never masked, so a text frame is a
//! two-to-ten-byte header and the text. A session appends each of its frames straight into the
//! socket's one write buffer, header and text, borrowing the text from the delivery every
//! session of the edge shares, and writes the buffer with one system call per step. An event's
//! text is thereby copied once per session and never cloned: no message value per frame, no
//! reference count taken and dropped on the one counter every session's copy shares
//! (docs/BENCHMARKS.md, "the relay", has what each cost).
//!
//! What the client sends is read by [`reader`]: masked frames, fragments, pings (answered
//! through the same write buffer, so nothing interleaves) and the Close. Its bytes are held only
//! while a frame is not yet whole, and the write buffer is let go once written, so an idle
//! connection holds neither (a WebSocket library keeps a read buffer per socket for its life).
//!
//! The connection also knows whether reading it could make progress ([`Readiness`], kept with
//! the session's queue): a session woken by a delivery does not look at the socket only to find
//! nothing (registering its waker with the socket takes a lock each time).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use kit::error::ApiError;
use kit::listener::Counted;
use tokio::io::AsyncWrite;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::io::poll_read_buf;
use tokio_util::task::TaskTracker;

use crate::queue::Readiness;

mod reader;

pub(crate) use reader::Incoming;
use reader::{Invalid, Next, Reader};

/// A request to open a gateway socket, checked: `GET` with `Connection: upgrade`,
/// `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a key, on a connection hyper can hand
/// over.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let refuse = |what: &str| ApiError::invalid(format!("not a WebSocket upgrade: {what}"));
        if parts.version > Version::HTTP_11 {
            return Err(refuse("the gateway speaks WebSocket over HTTP/1.1"));
        }
        if parts.method != Method::GET {
            return Err(refuse("the method must be GET"));
        }
        let says = |name: header::HeaderName, token: &str| {
            parts.headers.get_all(name).iter().any(|value| {
                value
                    .as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
            })
        };
        if !says(header::CONNECTION, "upgrade") {
            return Err(refuse("the Connection header must include upgrade"));
        }
        if !says(header::UPGRADE, "websocket") {
            return Err(refuse("the Upgrade header must be websocket"));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(refuse("Sec-WebSocket-Version must be 13"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or_else(|| refuse("Sec-WebSocket-Key is missing"))?
            .clone();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers 101 Switching Protocols, and once hyper hands the connection over, runs `session`
    /// on the socket, on a task of its own among `tasks`: one task from the hand-over to the
    /// close, sized to the session's future.
    pub(crate) fn accept<F>(
        self,
        limits: Limits,
        readiness: Readiness,
        tasks: &TaskTracker,
        session: impl FnOnce(Socket) -> F + Send + 'static,
    ) -> Response
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tasks.spawn(async move {
            let io = match on_upgrade.await {
                Ok(io) => io,
                Err(e) => {
                    tracing::debug!(error = %e, "the upgraded connection was not handed over");
                    return;
                }
            };
            let Some(socket) = Socket::upgraded(io, &limits, readiness) else {
                return;
            };
            session(socket).await;
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).expect("base64 is a header value"),
                ),
            ],
        )
            .into_response()
    }
}

/// A session's connection: the upgraded socket, the frames the session queues for it (one
/// buffer, written with one system call per step), and the client's frames read off it
/// ([`Reader`], which holds no bytes between frames).
pub(crate) struct Socket {
    /// (None only after a move that failed: [`Socket::rebind`].)
    io: Option<Counted>,
    out: Vec<u8>,
    /// How much of `out` the connection has taken.
    written: usize,
    readable: Readiness,
    reader: Reader,
    /// Bytes asked of the connection per read, at least.
    read_bytes: usize,
    /// The session's Close has gone into `out`: the client's Close answers it.
    closing: bool,
}

/// Why no message could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client went away (an error, or the end of the connection without a Close).
    #[error("the connection ended: {0}")]
    Gone(#[from] io::Error),
    /// What it sent is not WebSocket as a client may speak it.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl Socket {
    /// The socket of an upgraded connection: the connection itself, so that a session moving to
    /// the edge's lane takes it along (`crate::lane`), with whatever the client sent before it
    /// saw our answer. (Made apart from the upgrade's task, which would otherwise keep what is
    /// made here beside the session for as long as it lives.)
    fn upgraded(io: Upgraded, limits: &Limits, readable: Readiness) -> Option<Self> {
        let Ok(parts) = io.downcast::<TokioIo<Counted>>() else {
            tracing::error!("an upgraded connection not from the edge's own listener");
            return None;
        };
        let mut socket = Self::new(parts.io.into_inner(), limits, readable);
        socket.reader.spare(0, 0).extend_from_slice(&parts.read_buf);
        Some(socket)
    }

    fn new(io: Counted, limits: &Limits, readable: Readiness) -> Self {
        Self {
            io: Some(io),
            out: Vec::new(),
            written: 0,
            readable,
            reader: Reader::new(limits.max_message_bytes),
            read_bytes: limits.read_bytes,
            closing: false,
        }
    }

    /// The client's next message. A ping is answered (the pong goes out with the session's next
    /// flush), as is a Close; both are returned too, for the session to count.
    pub(crate) async fn read(&mut self) -> Result<Incoming, ReadError> {
        std::future::poll_fn(|cx| self.poll_read(cx)).await
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        loop {
            let need = match self.reader.next(&mut self.out, !self.closing)? {
                Next::Message(message) => return Poll::Ready(Ok(message)),
                Next::More(need) => need,
            };
            // Through the socket only when it may have something: a step woken by a delivery
            // would otherwise find nothing there, at a lock on the socket's waker.
            if !self.readable.take(cx) {
                return Poll::Pending;
            }
            let waker = self.readable.waker();
            let buffer = self.reader.spare(need, self.read_bytes);
            let read = poll_read_buf(
                connection(&mut self.io)?,
                &mut Context::from_waker(&waker),
                buffer,
            );
            let Poll::Ready(read) = read else {
                return Poll::Pending;
            };
            self.readable.keep();
            if read? == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()));
            }
        }
    }

    /// Moves the connection's readiness to the reactor of the runtime this is called on (a
    /// session moving between the edge's runtimes), between two of its steps: nothing is
    /// being read or written. The next read looks at the socket, whatever came meanwhile.
    /// When that fails (the new reactor refuses it), the connection is closed and every read and
    /// write after says so: the session ends as if the client went away.
    pub(crate) fn rebind(&mut self) {
        if let Some(io) = self.io.take() {
            self.io = io
                .rebind()
                .inspect_err(|e| tracing::warn!(error = %e, "cannot move a connection"))
                .ok();
        }
        self.readable.keep();
    }

    /// Bytes queued and not yet taken by the connection.
    pub(crate) fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Queues one whole text frame (server frames are never masked).
    pub(crate) fn push_text(&mut self, text: &str) {
        self.out.reserve(text.len() + 10);
        push_header(&mut self.out, OPCODE_TEXT, text.len());
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Queues the session's Close with `code` (no reason); what the client sends after it is
    /// read only to find its answer.
    pub(crate) fn push_close(&mut self, code: u16) {
        push_header(&mut self.out, reader::CLOSE, 2);
        self.out.extend_from_slice(&code.to_be_bytes());
        self.closing = true;
    }

    /// Writes everything queued. The buffer is let go once written: an idle connection holds
    /// none (a busy one makes it again for its next step, one allocation).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(connection(&mut self.io)?.poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.written = 0;
        self.out = Vec::new();
        connection(&mut self.io)?.poll_flush(cx)
    }
}

/// A socket's connection, or the error of one that a failed move closed.
fn connection(io: &mut Option<Counted>) -> io::Result<Pin<&mut Counted>> {
    match io {
        Some(io) => Ok(Pin::new(io)),
        None => Err(io::ErrorKind::NotConnected.into()),
    }
}

/// What a connection reads: the largest client message, and the bytes asked for per read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_message_bytes: usize,
    pub read_bytes: usize,
}

/// A final frame of text.
const OPCODE_TEXT: u8 = 0x1;

/// The header of a final, unmasked frame of `len` bytes (RFC 6455, 5.2).
fn push_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::{Message, WebSocket};

    use super::*;

    #[test]
    fn frames_of_every_length_form_read_back_whole_in_order() {
        let lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000];
        let mut out = Vec::new();
        let texts: Vec<String> = lengths
            .iter()
            .map(|&n| "é".repeat(n / 2) + &"x".repeat(n % 2))
            .collect();
        for text in &texts {
            push_header(&mut out, OPCODE_TEXT, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        let mut client = WebSocket::from_raw_socket(Cursor::new(out), Role::Client, None);
        for text in &texts {
            match client.read() {
                Ok(Message::Text(got)) => assert_eq!(got.as_str(), text, "{} bytes", text.len()),
                other => panic!("{} bytes: {other:?}", text.len()),
            }
        }
    }
}
