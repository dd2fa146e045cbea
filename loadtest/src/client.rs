//! A minimal gateway client: connect from a chosen source address, HELLO, IDENTIFY, READY.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Socket = WebSocketStream<TcpStream>;

/// Opens a socket from `source` to `gateway` and identifies with `token`; returns it and READY.
pub async fn connect(
    gateway: &url::Url,
    source: IpAddr,
    token: &str,
) -> anyhow::Result<(Socket, Value)> {
    let mut socket = open(gateway, source).await?;
    socket
        .send(Message::Text(
            json!({"op": 2, "d": {"token": token}}).to_string().into(),
        ))
        .await?;
    let ready = expect_op(&mut socket, 0).await.context("no READY")?;
    if ready["t"] != "READY" {
        bail!("expected READY, got {ready}");
    }
    Ok((socket, ready))
}

/// Opens a socket from `source` to `gateway` and waits for HELLO.
pub async fn open(gateway: &url::Url, source: IpAddr) -> anyhow::Result<Socket> {
    let host = gateway.host_str().context("the gateway URL has no host")?;
    let port = gateway
        .port_or_known_default()
        .context("the gateway URL has no port")?;
    let target: SocketAddr = format!("{host}:{port}")
        .parse()
        .context("use an IP address in --gateway")?;
    let tcp = TcpSocket::new_v4()?;
    // A port still in TIME_WAIT from a dropped socket may be taken again (a reconnect storm needs
    // a second port per device while the first waits out its minute).
    tcp.set_reuseaddr(true)?;
    tcp.bind(SocketAddr::new(source, 0))?;
    let stream = tcp.connect(target).await?;
    stream.set_nodelay(true)?;
    // Small buffers: the harness holds as many sockets as the edges it measures.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(gateway.as_str(), stream, Some(config)).await?;
    expect_op(&mut socket, 10).await.context("no HELLO")?;
    Ok(socket)
}

async fn expect_op(socket: &mut Socket, op: u64) -> anyhow::Result<Value> {
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message? {
            let frame: Value = serde_json::from_str(&text)?;
            if frame["op"] == op {
                return Ok(frame);
            }
        }
    }
    bail!("the socket closed")
}
