//! A minimal gateway client: connect from a chosen source address, HELLO, IDENTIFY, READY.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use proto::gateway::{ClientFrame, DispatchKind, Identify, Opcode, Ready};
use serde::Deserialize;
use tokio::net::TcpSocket;

use crate::run::Target;
use crate::ws::Frame;
pub use crate::ws::Socket;

/// Where a socket connects from: an address, and the port to try first (see [`open`]).
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub ip: IpAddr,
    pub port: u16,
}

/// A socket from 127.0.0.2, on any port.
pub const LOCAL: Source = Source {
    ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    port: 0,
};

/// Opens a socket from `source` to `gateway` and identifies with `token`; returns it and READY.
pub async fn connect(
    gateway: &url::Url,
    source: Source,
    token: &str,
) -> anyhow::Result<(Socket, Box<Ready>)> {
    let mut socket = open(gateway, source).await?;
    let identify = ClientFrame::Identify(Identify {
        token: token.to_owned(),
    });
    socket.send_text(&identify.encode()).await?;
    let text = expect_op(&mut socket, Opcode::Dispatch)
        .await
        .context("no READY")?;
    /// The first dispatch, which must be READY.
    #[derive(Deserialize)]
    struct ReadyFrame {
        t: Option<String>,
        d: Box<Ready>,
    }
    match serde_json::from_str::<ReadyFrame>(&text) {
        Ok(frame) if frame.t.as_deref() == Some(DispatchKind::Ready.into()) => {
            Ok((socket, frame.d))
        }
        _ => bail!("expected READY, got {text}"),
    }
}

/// Identifies with `token` on a socket [`open`] returned: READY's text as it came, and the time
/// from sending IDENTIFY to READY's arrival.
pub async fn identify_timed(
    socket: &mut Socket,
    token: &str,
) -> anyhow::Result<(String, std::time::Duration)> {
    let identify = ClientFrame::Identify(Identify {
        token: token.to_owned(),
    })
    .encode();
    let started = std::time::Instant::now();
    socket.send_text(&identify).await?;
    let text = expect_op(socket, Opcode::Dispatch)
        .await
        .context("no READY")?;
    let took = started.elapsed();
    /// The first dispatch's name alone (the rest is skipped, not built).
    #[derive(Deserialize)]
    struct Named {
        t: Option<String>,
    }
    match serde_json::from_str::<Named>(&text) {
        Ok(named) if named.t.as_deref() == Some(DispatchKind::Ready.into()) => {}
        _ => bail!("expected READY, got {text}"),
    }
    Ok((text, took))
}

/// A fresh session for `token` on edge `edge` (modulo the edges): READY's text and the time from
/// IDENTIFY to READY. The session is closed after, and read to its end, so the edge sees it end
/// before the caller's next one starts.
pub async fn ready_once(
    target: &Target,
    edge: usize,
    token: &str,
) -> anyhow::Result<(String, std::time::Duration)> {
    let gateway = &target.gateway[edge % target.gateway.len()];
    let mut socket = open(gateway, LOCAL)
        .await
        .with_context(|| format!("connecting to {gateway}"))?;
    let ready = identify_timed(&mut socket, token).await?;
    let _ = socket.close().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    Ok(ready)
}

/// Opens a socket from `source` to `gateway` and waits for HELLO.
///
/// The socket is bound to the source's port when that is free, else to any: asked for "any
/// port" of an address that already holds tens of thousands of sockets (and as many in
/// TIME_WAIT), the kernel searches its ports one by one for a free one, and in a reconnect storm
/// that search cost the generator more CPU than everything the edges did.
pub async fn open(gateway: &url::Url, source: Source) -> anyhow::Result<Socket> {
    let host = gateway.host_str().context("the gateway URL has no host")?;
    let port = gateway
        .port_or_known_default()
        .context("the gateway URL has no port")?;
    let target: SocketAddr = format!("{host}:{port}")
        .parse()
        .context("use an IP address in --gateway")?;
    let bound = |port| {
        let tcp = TcpSocket::new_v4()?;
        // A port still in TIME_WAIT from a dropped socket may be taken again (a reconnect storm
        // needs a second port per device while the first waits out its minute).
        tcp.set_reuseaddr(true)?;
        tcp.bind(SocketAddr::new(source.ip, port))?;
        Ok::<_, std::io::Error>(tcp)
    };
    let stream = match bound(source.port) {
        Ok(tcp) => match tcp.connect(target).await {
            Ok(stream) => stream,
            Err(_) => bound(0)?.connect(target).await?,
        },
        Err(_) => bound(0)?.connect(target).await?,
    };
    stream.set_nodelay(true)?;
    let mut socket = Socket::handshake(stream, gateway).await?;
    expect_op(&mut socket, Opcode::Hello)
        .await
        .context("no HELLO")?;
    Ok(socket)
}

/// The next frame with opcode `op`, as text (frames with others are skipped).
async fn expect_op(socket: &mut Socket, op: Opcode) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Op {
        op: Opcode,
    }
    while let Some(frame) = socket.next().await {
        match frame? {
            Frame::Text(text) => {
                let frame: Op = serde_json::from_str(text)?;
                if frame.op == op {
                    return Ok(text.to_owned());
                }
            }
            // The edge says why it closes: name it, a bare "closed" hides the cause.
            Frame::Close(Some((code, reason))) => {
                bail!("the socket closed with {code}: {reason}")
            }
            Frame::Close(None) => break,
            Frame::Other => {}
        }
    }
    bail!("the socket closed")
}

/// A dispatch as [`dispatches`] yields it: its event name and data, parsed loosely (a
/// scenario reads only the fields it checks).
#[derive(Deserialize)]
pub struct Dispatch {
    pub t: Option<String>,
    #[serde(default)]
    pub d: serde_json::Value,
}

/// `socket`'s dispatches until it closes, each with the time it was read
/// ([`crate::server::now_us`]), heartbeating every 20 s while it is read.
pub fn dispatches(socket: Socket) -> impl futures::Stream<Item = (Dispatch, u64)> + Send {
    let beat = tokio::time::interval(std::time::Duration::from_secs(20));
    futures::stream::unfold((socket, beat), |(mut socket, mut beat)| async move {
        loop {
            // What the socket's buffer holds, then a read (or a heartbeat when it is due).
            match socket.frame() {
                Some(Ok(Frame::Text(text))) => {
                    let at = crate::server::now_us();
                    if let Ok(frame) = serde_json::from_str::<Dispatch>(text) {
                        return Some(((frame, at), (socket, beat)));
                    }
                    continue;
                }
                Some(Ok(Frame::Other)) => continue,
                Some(Ok(Frame::Close(_)) | Err(_)) => return None,
                None => {}
            }
            tokio::select! {
                _ = beat.tick() => {
                    let frame = ClientFrame::Heartbeat(None).encode();
                    if socket.send_text(&frame).await.is_err() { return None; }
                }
                filled = socket.fill() => if !matches!(filled, Ok(true)) { return None; },
            }
        }
    })
}
