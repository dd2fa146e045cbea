//! The harness's WebSocket client (RFC 6455): the opening handshake, masked text frames out, and
//! the edge's frames read in place from one buffer per socket.
//!
//! The generator counts up to a million deliveries a second on the cores the edges it measures
//! use, so what it spends per frame is taken from them. A general client reads a frame by zeroing
//! its buffer's free space before every read, moving the payload into a message of its own and
//! validating it there; here a read goes into the room after what the buffer holds (zeroed once,
//! when the buffer grew), and a frame is a slice of the buffer until the next read.
//!
//! Every read also takes the moment the kernel received the bytes (`SO_TIMESTAMPNS`: the receive
//! timestamp of the last packet the read took), so a delivery's latency can be told apart from
//! how long the bytes then waited for the generator, which shares the cores with what it measures
//! ([`Socket::arrived`]).
//!
//! What the edge sends is all it reads: whole (unfragmented) unmasked frames, text and Close.
//! Anything else (a ping, a binary frame) is handed over as [`Frame::Other`]; a masked or
//! fragmented frame, or one larger than [`MAX_FRAME`], is an error.

use std::io;
use std::os::fd::AsRawFd;

use anyhow::{Context, bail, ensure};
use bytes::BufMut;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What a read asks the kernel for at least; also the buffer a socket starts with.
const READ_SIZE: usize = 4096;

/// The largest frame read (the edge's largest, READY for the most channels, is about 43 KB).
pub const MAX_FRAME: usize = 16 << 20;

/// A connected, upgraded socket.
pub struct Socket {
    stream: TcpStream,
    /// Bytes read and not yet handed out as frames: `buf[start..end]`; what follows `end` is
    /// room for the next read (zeroed once, when the buffer grew, never before each read).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Room for the read's control message (the receive timestamp), kept for every read.
    control: Vec<u8>,
    /// When the kernel received what the last read took (microseconds since the Unix epoch).
    arrived: Option<u64>,
    /// The state of the masks' generator (xorshift64).
    mask: u64,
}

/// A frame from the edge, borrowed from the socket's buffer until its next read.
#[derive(Debug)]
pub enum Frame<'a> {
    Text(&'a str),
    /// Its status code and reason, when it has them.
    Close(Option<(u16, &'a str)>),
    Other,
}

impl Socket {
    /// The opening handshake on `stream` for `url` (its path and host; the answer must be 101
    /// with the accept key for the key sent).
    pub async fn handshake(mut stream: TcpStream, url: &url::Url) -> anyhow::Result<Socket> {
        let key = generate_key();
        let host = url.host_str().context("the gateway URL has no host")?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let mut path = url.path().to_owned();
        if let Some(query) = url.query() {
            path = format!("{path}?{query}");
        }
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        );
        // Asked before anything is received, so that every read has it.
        setsockopt(&stream, sockopt::ReceiveTimestampns, &true)?;
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(READ_SIZE);
        let head = loop {
            if stream.read_buf(&mut buf).await? == 0 {
                bail!("the gateway closed the connection during the handshake");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response
                .parse(&buf)
                .context("the gateway's answer is not HTTP")?
            {
                httparse::Status::Complete(head) => {
                    ensure!(
                        response.code == Some(101),
                        "the gateway refused the upgrade: {} {}",
                        response.code.unwrap_or(0),
                        String::from_utf8_lossy(&buf[..head])
                            .lines()
                            .next()
                            .unwrap_or("")
                    );
                    let accept = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
                        .map(|h| h.value);
                    ensure!(
                        accept == Some(derive_accept_key(key.as_bytes()).as_bytes()),
                        "the gateway's Sec-WebSocket-Accept does not answer the key sent"
                    );
                    break head;
                }
                httparse::Status::Partial => {
                    ensure!(buf.len() < 64 * 1024, "the gateway's answer never ends");
                }
            }
        };
        // Frames that came with the answer stay for the first reads.
        let end = buf.len();
        buf.resize(buf.capacity().max(READ_SIZE), 0);
        Ok(Socket {
            stream,
            buf,
            start: head,
            end,
            control: nix::cmsg_space!(nix::sys::time::TimeSpec),
            arrived: None,
            mask: seed(),
        })
    }

    /// Sends one text frame (masked, as a client's must be).
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(0x1, text.as_bytes()).await
    }

    /// Sends Close (1000) and stops sending; the edge's Close and the end follow on reads.
    pub async fn close(&mut self) -> io::Result<()> {
        self.send(0x8, &1000u16.to_be_bytes()).await
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        put_header(&mut frame, opcode, payload.len(), true);
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 7;
        self.mask ^= self.mask << 17;
        let mask = (self.mask as u32).to_ne_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        self.stream.write_all(&frame).await
    }

    /// Reads what the kernel has for the socket (waiting until it has something): `false` once
    /// the connection has ended. Cancel-safe: dropped before it is ready, it has read nothing.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.start == self.end {
            if self.buf.len() > 4 * READ_SIZE {
                // A large frame (READY) passed: the socket goes back to its usual size.
                self.buf = vec![0; READ_SIZE];
            }
            (self.start, self.end) = (0, 0);
        } else if self.start > 0 && self.buf.len() - self.end < READ_SIZE {
            // A frame's start at the front again, rather than the buffer growing behind it.
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.buf.len() - self.end < READ_SIZE {
            self.buf.reserve(READ_SIZE);
            self.buf.resize(self.buf.capacity(), 0);
        }
        let (room, control) = (&mut self.buf[self.end..], &mut self.control);
        let fd = self.stream.as_raw_fd();
        let (read, arrived) = self
            .stream
            .async_io(Interest::READABLE, || Ok(receive(fd, room, control)?))
            .await?;
        self.end += read;
        if arrived.is_some() {
            self.arrived = arrived;
        }
        Ok(read > 0)
    }

    /// When the kernel received the bytes the last read took (microseconds since the Unix
    /// epoch; the last of its packets), if it said.
    pub fn arrived(&self) -> Option<u64> {
        self.arrived
    }

    /// The next whole frame the buffer holds, without reading (`None` when it holds none).
    pub fn frame(&mut self) -> Option<anyhow::Result<Frame<'_>>> {
        let (header, length) = match self.header() {
            Ok(Some(whole)) => whole,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let at = self.start + header;
        self.start = at + length;
        let payload = &self.buf[at..at + length];
        let frame = match self.buf[at - header] & 0x0f {
            0x1 => match std::str::from_utf8(payload) {
                Ok(text) => Frame::Text(text),
                Err(e) => return Some(Err(anyhow::anyhow!("a text frame is not UTF-8: {e}"))),
            },
            0x8 if payload.len() >= 2 => Frame::Close(Some((
                u16::from_be_bytes([payload[0], payload[1]]),
                std::str::from_utf8(&payload[2..]).unwrap_or(""),
            ))),
            0x8 => Frame::Close(None),
            _ => Frame::Other,
        };
        Some(Ok(frame))
    }

    /// The next frame, reading until one is whole; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<anyhow::Result<Frame<'_>>> {
        loop {
            match self.header() {
                Ok(Some(_)) => return self.frame(),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The length of the buffered frame's header and of its payload, once both are buffered.
    fn header(&self) -> anyhow::Result<Option<(usize, usize)>> {
        let held = &self.buf[self.start..self.end];
        let [first, second, ..] = *held else {
            return Ok(None);
        };
        ensure!(first & 0x80 != 0, "the edge sent a fragmented frame");
        ensure!(second & 0x80 == 0, "the edge sent a masked frame");
        let (header, length) = match second & 0x7f {
            126 if held.len() >= 4 => (4, usize::from(u16::from_be_bytes([held[2], held[3]]))),
            127 if held.len() >= 10 => {
                let length = u64::from_be_bytes(held[2..10].try_into().expect("eight bytes"));
                (10, usize::try_from(length).unwrap_or(usize::MAX))
            }
            126 | 127 => return Ok(None),
            length => (2, usize::from(length)),
        };
        ensure!(
            length <= MAX_FRAME,
            "the edge sent a frame of {length} bytes"
        );
        Ok((held.len() >= header + length).then_some((header, length)))
    }
}

/// A frame's first bytes: FIN and `opcode`, then the payload's length in its smallest form, with
/// the mask bit when `masked` (a client's frames are masked, a server's never; the mask key, for
/// a masked frame, is the caller's to put next).
pub fn put_header(out: &mut impl BufMut, opcode: u8, length: usize, masked: bool) {
    let mask = if masked { 0x80 } else { 0 };
    out.put_u8(0x80 | opcode);
    match length {
        n if n < 126 => out.put_u8(mask | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(mask | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(mask | 127);
            out.put_u64(n as u64);
        }
    }
}

/// One `recvmsg` into `room`: the bytes read, and the kernel's receive time of the last packet
/// they came in (microseconds since the Unix epoch) when the socket asked for it
/// (`SO_TIMESTAMPNS`) and the kernel stamped it.
#[allow(clippy::ptr_arg)] // nix's recvmsg takes the control buffer as a Vec
fn receive(
    fd: std::os::fd::RawFd,
    room: &mut [u8],
    control: &mut Vec<u8>,
) -> nix::Result<(usize, Option<u64>)> {
    let mut iov = [io::IoSliceMut::new(room)];
    let got = recvmsg::<()>(fd, &mut iov, Some(control), MsgFlags::empty())?;
    let arrived = got.cmsgs().ok().and_then(|mut all| {
        all.find_map(|message| match message {
            ControlMessageOwned::ScmTimestampns(at) => {
                let micros = at.tv_sec() * 1_000_000 + at.tv_nsec() / 1_000;
                u64::try_from(micros).ok()
            }
            _ => None,
        })
    });
    Ok((got.bytes, arrived))
}

/// A mask generator's first state: different for every socket (never zero, as xorshift needs).
fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that upgrades one connection with tungstenite's server, then sends `texts`
    /// (and a ping, and Close) and echoes what it reads back into a vector.
    async fn serve(texts: Vec<String>) -> (url::Url, tokio::task::JoinHandle<Vec<String>>) {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/gateway", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            for text in texts {
                socket.feed(Message::Text(text.into())).await.unwrap();
            }
            socket.feed(Message::Ping(vec![1, 2].into())).await.unwrap();
            socket.flush().await.unwrap();
            let mut read = Vec::new();
            while let Some(Ok(message)) = socket.next().await {
                match message {
                    Message::Text(text) => read.push(text.as_str().to_owned()),
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            read
        });
        (url.parse().unwrap(), server)
    }

    /// Until the kernel stamps what loopback sockets receive. It turns stamping on for the
    /// machine in the background the first time a socket asks (`net_enable_timestamp`'s deferred
    /// work): on a loaded machine a test's first reads can come before it, with no time. And it
    /// turns it off again once the last socket that asked is closed: the answer is a socket that
    /// asked, for the test to hold while it reads.
    async fn until_the_kernel_stamps() -> TcpStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        setsockopt(&client, sockopt::ReceiveTimestampns, &true).unwrap();
        let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            server.write_all(b"x").await.unwrap();
            let mut room = [0; 16];
            let (_, arrived) = client
                .async_io(Interest::READABLE, || {
                    Ok(receive(client.as_raw_fd(), &mut room, &mut control)?)
                })
                .await
                .unwrap();
            if arrived.is_some() {
                return client;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn frames_of_every_length_form_arrive_whole_and_in_order() {
        let _stamping = until_the_kernel_stamps().await;
        // 0-125 in the first byte, 126-65,535 in two more, longer in eight more.
        let lengths = [
            0, 1, 125, 126, 127, 4095, 4096, 4097, 65_535, 65_536, 70_000,
        ];
        let texts: Vec<String> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| char::from(b'a' + i as u8).to_string().repeat(n))
            .collect();
        let (url, server) = serve(texts.clone()).await;
        let stream = TcpStream::connect(url.socket_addrs(|| None).unwrap()[0])
            .await
            .unwrap();
        let before = crate::device::unix_micros();
        let mut socket = Socket::handshake(stream, &url).await.unwrap();
        for text in &texts {
            match socket.next().await.unwrap().unwrap() {
                Frame::Text(read) => assert_eq!(read, text),
                other => panic!("expected text, got {other:?}"),
            }
        }
        // Each read took the kernel's receive time, on the clock the run's sends are stamped
        // with, and not in the future.
        let arrived = socket.arrived().expect("a receive timestamp");
        assert!(
            (before..=crate::device::unix_micros()).contains(&arrived),
            "{before} {arrived}"
        );
        assert!(matches!(
            socket.next().await.unwrap().unwrap(),
            Frame::Other
        ));
        // And the other way: masked frames the server reads back.
        for text in ["", "hello", &"x".repeat(200), &"y".repeat(70_000)] {
            socket.send_text(text).await.unwrap();
        }
        socket.close().await.unwrap();
        let read = server.await.unwrap();
        assert_eq!(read, ["", "hello", &"x".repeat(200), &"y".repeat(70_000)]);
    }

    #[tokio::test]
    async fn a_refused_upgrade_says_what_the_gateway_answered() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0; 1024];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let url: url::Url = format!("ws://{addr}/gateway").parse().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let error = Socket::handshake(stream, &url).await.err().unwrap();
        assert!(error.to_string().contains("400"), "{error}");
    }
}
