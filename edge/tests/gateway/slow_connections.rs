//! The edge's listener against slow and piled-up connections: header-less connections are closed
//! after the header-read timeout while gateway sessions (upgraded long before) chat on, and a
//! WebSocket counts towards its address's connection cap until it closes.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{Client, WAIT, World, next_json};

#[tokio::test]
async fn header_less_connections_are_closed_while_gateway_sessions_chat_on() {
    let world = World::start(
        1,
        &[
            "--header-read-timeout=1s",
            "--send-rate=1000/1s",
            "--frames-per-minute=100000",
        ],
    )
    .await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    let mut pile = Vec::new();
    for _ in 0..200 {
        pile.push(
            TcpStream::connect(("127.0.0.1", world.edges[0].port))
                .await
                .unwrap(),
        );
    }
    let closing = futures::future::join_all(pile.iter_mut().map(|stream| async move {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("a header-less connection was still open after 60 s"),
            }
        }
    }));
    let chatting = async {
        for n in 0.. {
            let ack = ann_1.send(room, &format!("m{n}"), &format!("n-{n}")).await;
            assert_eq!(ack["op"], 24, "{ack}");
            assert_eq!(bob_1.messages(1).await, [format!("m{n}")]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = closing => {}
        () = chatting => unreachable!(),
    }
    // The sessions are older than the timeout, and are not HTTP requests any more: still open.
    ann_1.send(room, "after", "n-after").await;
    assert_eq!(bob_1.messages(1).await, ["after"]);
}

#[tokio::test]
async fn a_websocket_counts_towards_its_addresss_cap_until_it_closes() {
    let world = World::start(1, &["--max-connections-per-address=3"]).await;
    let ann = world.sign_up("ann").await;
    let edge = &world.edges[0];
    // Readiness checks came from this address too: wait until their connections have gone.
    let metrics = edge.metrics_url();
    testkit::eventually("the edge to hold no connections", WAIT * 4, || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        text.lines()
            .any(|l| {
                l.starts_with("natter_http_connections{listener=\"public\"") && l.ends_with(" 0")
            })
            .then_some(())
    })
    .await;

    let url = world.gateway(0);
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(Client::connect(&url, &ann).await);
    }
    let refused = tokio_tungstenite::connect_async(&url).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("a fourth socket from the same address was let in: {refused:?}");
    };
    assert_eq!(response.status(), 429);

    // Another address is let in meanwhile.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], edge.port)))
        .await
        .unwrap();
    let (mut other, _) = tokio_tungstenite::client_async(
        url.as_str(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("another address opens a socket");
    let hello = next_json(&mut other).await.expect("HELLO");
    assert_eq!(hello["op"], json!(10));

    // One socket closes: its place is free again.
    drop(sockets.pop());
    testkit::eventually("the closed socket's place", WAIT * 4, || async {
        tokio_tungstenite::connect_async(&url).await.ok()
    })
    .await;
}
