//! Live delivery through messaging faults: people chat across two edges at a few hundred messages
//! a second while NATS is SIGKILLed and restarted, or while one edge is cut off from it, or while
//! the stream's republish silently loses an event. Afterwards every acknowledged message reached
//! every member's every device exactly once, in order per channel.
//!
//! Each test runs its own NATS server (its own port and store), never the stack's. Devices behave
//! as the apps do: they read all the time, resume when closed, and send again (same nonce) what
//! was not acknowledged. Run with `--nocapture` to see how long repaired events took.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "faults/chat.rs"]
mod chat;

use std::time::Duration;

use testkit::{NatsServer, Stack, TcpProxy};
use tokio::time::Instant;

use chat::{Chat, EDGE, logs, wait_for_traffic};
use support::{Engines, World};

#[tokio::test]
async fn a_nats_server_killed_mid_chat_and_restarted_loses_no_delivery() {
    logs();
    let mut nats = NatsServer::start(&Stack::get()).await;
    // Each edge reaches NATS through a path that opens again only once the restarted server is
    // healthy (JetStream up), as a health-checked load balancer would: each edge then comes
    // back after its own random backoff, and the first stores and republishes while the other
    // is still away.
    let paths = [
        TcpProxy::start(nats.addr()).await,
        TcpProxy::start(nats.addr()).await,
    ];
    let mut world = World::start_on(Engines::nats(nats.url()), 0, EDGE).await;
    for (worker, path) in (1..).zip(&paths) {
        let through = format!("--nats-url={}", path.nats_url());
        let mut args = EDGE.to_vec();
        args.push(&through);
        world.add_edge(worker, &args).await;
    }
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;

    nats.kill();
    paths.iter().for_each(TcpProxy::cut);
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.resume().await;
    paths.iter().for_each(TcpProxy::restore);
    let restarted = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 500).await;

    chat.settle_and_check(restarted).await;
}

#[tokio::test]
async fn an_edge_cut_off_from_nats_for_seconds_loses_no_delivery() {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let proxy = TcpProxy::start(nats.addr()).await;
    let mut world = World::start_on(Engines::nats(nats.url()), 1, EDGE).await;
    let through_proxy = format!("--nats-url={}", proxy.nats_url());
    let mut args = EDGE.to_vec();
    args.push(&through_proxy);
    world.add_edge(2, &args).await;
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;

    proxy.cut();
    let before = chat.acked().len();
    // Chat goes on through the other edge meanwhile.
    wait_for_traffic(&chat, before + 300).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let restored = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;

    chat.settle_and_check(restored).await;
}

#[tokio::test]
async fn an_event_the_republish_lost_with_nothing_after_it_arrives_by_the_periodic_check() {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let world = World::start_on(Engines::nats(nats.url()), 2, EDGE).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_0 = support::Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = support::Client::connect(&world.gateway(1), &bob).await;
    let ack = ann_0.send(room, "heard live", "n1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(bob_1.messages(1).await, ["heard live"]);

    // The stream stores the next message but does not republish it: a loss nothing announces
    // (no reconnect, no slow consumer), and no later message shows the gap.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let name = format!("{}_chat", world.prefix);
    let config = js
        .get_stream(&name)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    js.update_stream(async_nats::jetstream::stream::Config {
        republish: None,
        ..config.clone()
    })
    .await
    .unwrap();
    let ack = ann_0.send(room, "lost live", "n2").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let acked = Instant::now();
    js.update_stream(config).await.unwrap();

    let mut waited = Duration::ZERO;
    for client in [&mut bob_1, &mut ann_0] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "the lost event never arrived");
            match client.next().await {
                Some(frame) if frame["d"]["content"] == "lost live" => break,
                // The sender's own copy of the first message, held while it waited for ACKs.
                Some(frame) => assert_ne!(frame["d"]["content"], "lost live"),
                None => {}
            }
        }
        waited = waited.max(acked.elapsed());
    }
    eprintln!("the lost event reached both devices {waited:?} after its ACK (a check every 2 s)");
    bob_1.no_messages().await;
}
