//! A channel a running session joins: what was said in it before the session followed it is
//! counted in its CHANNEL_CREATE (also before the persister has written it), and what is said
//! after arrives live.

use std::net::SocketAddr;

use testkit::TcpProxy;

use crate::support::{Client, World};

#[tokio::test]
async fn a_dm_whose_first_message_beats_its_channel_create_shows_that_message_unread() {
    let mut world = World::start(1, &[]).await;
    // Ann's edge reaches NATS through a proxy that can hold what NATS sends it, as a busy edge
    // is slow to read: auth's CHANNEL_CREATE for the DM then reaches her session after Bob's
    // first message in it is stored.
    let nats: SocketAddr = world
        .engines
        .nats_url
        .trim_start_matches("nats://")
        .parse()
        .expect("the stack's NATS address");
    let path = TcpProxy::start(nats).await;
    let through = format!("--nats-url={}", path.nats_url());
    world.add_edge(1, &[through.as_str()]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let mut ann_1 = Client::connect(&world.gateway(1), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    // And the persister is behind: the store does not hold Bob's message when Ann's edge counts
    // (it counts the chat stream's unwritten messages on top of the store's, as history reads).
    world.stop_persister();
    path.hold();
    let dm = world.dm(&bob, &ann).await;
    // Bob's client writes once his own session has the DM, as the web client does.
    let mine = bob_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(mine["d"]["id"], dm.to_string(), "{mine}");
    let ack = bob_1.send(dm, "are you busy?", "n-1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let first = ack["d"]["message"]["id"].clone();
    path.release();

    // Ann's client learns of the DM with that message already in it, unread: her badge shows 1.
    let created = ann_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], dm.to_string(), "{created}");
    assert_eq!(created["d"]["unread_count"], 1, "{created}");
    assert_eq!(created["d"]["last_message_id"], first, "{created}");
    // And what Bob says next arrives live.
    let ack = bob_1.send(dm, "now?", "n-2").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(ann_1.messages(1).await, ["now?"]);

    // Her phone, opened while the store still holds neither, shows both unread in READY.
    let ann_2 = Client::connect(&world.gateway(0), &ann).await;
    let in_ready = ann_2.ready["d"]["channels"]
        .as_array()
        .and_then(|channels| channels.iter().find(|c| c["id"] == dm.to_string()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(in_ready["unread_count"], 2, "{in_ready}");
    assert_eq!(
        in_ready["last_message_id"], ack["d"]["message"]["id"],
        "{in_ready}"
    );
}
