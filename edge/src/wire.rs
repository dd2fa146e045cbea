//! The gateway's WebSocket connection: the upgrade (RFC 6455 over HTTP/1.1), and a connection
//! whose server frames the session writes itself.
//!
//! tungstenite reads the client's frames (unmasking, size limits, answering pings). What the
//! server sends is simpler: its frames are never masked, so a text frame is a two-to-ten-byte
//! header and the text. A session appends each of its frames straight into [`Conn`]'s one write
//! buffer, header and text, borrowing the text from the delivery every session of the edge
//! shares, and writes the buffer with one system call per step. An event's text is thereby
//! copied once per session and never cloned: no message value per frame, no reference count
//! taken and dropped on the one counter every session's copy shares (docs/BENCHMARKS.md, "the
//! relay", has what each cost). tungstenite's own frames (its answers to pings, the Close) go
//! through the same buffer, whole, so nothing interleaves.
//!
//! The connection also knows whether reading it could make progress ([`Conn::poll_readable`]):
//! a session woken by a delivery does not go through tungstenite's read path only to find
//! nothing (registering its waker with the socket takes a lock each time).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures::task::{ArcWake, AtomicWaker, waker_ref};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use kit::error::ApiError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::task::TaskTracker;

/// A session's socket: tungstenite over [`Conn`].
pub(crate) type Socket = WebSocketStream<Conn>;

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
        config: WebSocketConfig,
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
            let socket =
                WebSocketStream::from_raw_socket(Conn::new(io), Role::Server, Some(config)).await;
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

/// The upgraded connection with the session's write buffer in front of it. Reads pass through;
/// every write (the session's frames, and tungstenite's) lands in the buffer, which a flush
/// writes to the connection.
pub(crate) struct Conn {
    io: TokioIo<Upgraded>,
    out: Vec<u8>,
    /// How much of `out` the connection has taken.
    written: usize,
    readable: Arc<Readable>,
}

/// Whether a read of the connection could make progress: cleared when a read finds nothing,
/// set again by the waker that read left with the socket, when the socket becomes readable.
/// A read that returns bytes leaves it set: tungstenite may hold whole frames already, and only
/// a read that finds nothing has a wake-up coming.
struct Readable {
    due: AtomicBool,
    /// Whoever waits for it: the last read that found nothing (tungstenite, for the session's
    /// task), or the session in [`Conn::poll_readable`]; both wake the session's task.
    waiter: AtomicWaker,
}

impl ArcWake for Readable {
    fn wake_by_ref(this: &Arc<Self>) {
        this.due.store(true, Ordering::Release);
        this.waiter.wake();
    }
}

impl Conn {
    fn new(io: Upgraded) -> Self {
        Self {
            io: TokioIo::new(io),
            out: Vec::new(),
            written: 0,
            readable: Arc::new(Readable {
                due: AtomicBool::new(true),
                waiter: AtomicWaker::new(),
            }),
        }
    }

    /// Ready once a read could make progress: the last read returned bytes (more may be
    /// buffered above it), or the socket has become readable since one found nothing.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.readable.due.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.readable.waiter.register(cx.waker());
        if self.readable.due.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Bytes queued and not yet taken by the connection.
    pub(crate) fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Queues one whole text frame (server frames are never masked).
    pub(crate) fn push_text(&mut self, text: &str) {
        push_header(&mut self.out, OPCODE_TEXT, text.len());
        self.out.extend_from_slice(text.as_bytes());
    }
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

/// A buffer grown past this (by READY, or a long burst) is let go once written, not kept for
/// the life of an idle connection.
const KEEP_CAPACITY: usize = 32 * 1024;

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let readable = &this.readable;
        readable.waiter.register(cx.waker());
        // Cleared before the read looks at the socket: a wake-up after that look sets it again.
        readable.due.store(false, Ordering::Release);
        let waker = waker_ref(readable);
        let read = Pin::new(&mut this.io).poll_read(&mut Context::from_waker(&waker), buf);
        if read.is_ready() {
            readable.due.store(true, Ordering::Release);
        }
        read
    }
}

impl AsyncWrite for Conn {
    /// Takes everything: the buffer is bounded by its one writer outside tungstenite, the
    /// session, which writes it out before adding past a step's worth; tungstenite's own frames
    /// are a few bytes.
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.written < this.out.len() {
            let n = ready!(Pin::new(&mut this.io).poll_write(cx, &this.out[this.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.written += n;
        }
        this.written = 0;
        if this.out.capacity() > KEEP_CAPACITY {
            this.out = Vec::new();
        } else {
            this.out.clear();
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

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
