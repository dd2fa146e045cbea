//! Chat on a three-node NATS cluster (the chat stream at three replicas) while nodes are lost:
//! the stream's leader SIGKILLed, then a follower; two nodes of three at once; and while an edge,
//! a persister and an auth instance are killed under the clients using them. Three people chat
//! across two edges at a few hundred messages a second throughout; afterwards every acknowledged
//! message reached every member's every device exactly once, in order per channel, and the
//! history holds it.
//!
//! Each test starts its own cluster (ports from the OS, stores in temporary folders), never the
//! stack's NATS or the dev cluster. Every service is given the three nodes as its seed list.
//! Run with `--nocapture` for the figures docs/RELIABILITY.md records: acknowledged, delivered,
//! stored, refused, and how long sends stalled.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "faults/chat.rs"]
mod chat;

#[allow(dead_code)]
#[path = "gateway/edge_process.rs"]
mod edge_process;

use std::time::Duration;

use testkit::{NatsCluster, ServiceProcess, Stack, SyncInterval};
use tokio::time::Instant;

use chat::{Chat, EDGE, Gateway, logs, wait_for_traffic};
use edge_process::EdgeProcess;
use support::{Engines, World};

/// The chat load's edge flags, with the chat stream at three replicas.
fn edge_args() -> Vec<&'static str> {
    let mut args = EDGE.to_vec();
    args.push("--stream-replicas=3");
    args
}

async fn chat_on(cluster: &NatsCluster) -> (World, Chat) {
    let world = World::start_on(Engines::nats(cluster.urls()), 2, &edge_args()).await;
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;
    (world, chat)
}

#[tokio::test]
#[ignore = "a private NATS cluster under chat for minutes: run by `./natter test` beside the web step"]
async fn the_chat_streams_leader_then_a_follower_killed_mid_chat_lose_nothing() {
    logs();
    let mut cluster = NatsCluster::start(&Stack::get(), SyncInterval::Default).await;
    let (world, chat) = chat_on(&cluster).await;
    let stream = format!("{}_chat", world.prefix);

    // The leader, chosen on purpose: it holds the stream's writes, so losing it is the worst case.
    let leader = cluster.index_of(&cluster.stream_leader(&stream).await);
    let killed = Instant::now();
    cluster.kill(leader);
    let before = chat.acked().len();
    // Chat goes on with two nodes of three: a new leader is elected and sends are stored again.
    wait_for_traffic(&chat, before + 300).await;
    let leader_stall = chat.stall(killed, Instant::now());
    cluster.resume(leader).await;

    let now_leading = cluster.index_of(&cluster.stream_leader(&stream).await);
    let follower = (0..3).find(|node| *node != now_leading).unwrap();
    let killed = Instant::now();
    cluster.kill(follower);
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;
    let follower_stall = chat.stall(killed, Instant::now());
    cluster.resume(follower).await;
    let healed = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 200).await;

    chat.settle_and_check(healed).await;
    let stored = chat.check_stored(&world, &world.edge_url(0, "")).await;
    let acked = chat.acked().len();
    eprintln!(
        "leader then follower killed: {acked} acknowledged, all delivered, {stored} stored, lost \
         {}; {} sends refused and sent again; sends stalled {leader_stall:?} (leader) and \
         {follower_stall:?} (follower)",
        acked - stored,
        chat.refused()
    );
}

#[tokio::test]
#[ignore = "a private NATS cluster under chat for minutes: run by `./natter test` beside the web step"]
async fn two_nats_nodes_of_three_down_refuse_sends_and_lose_nothing() {
    logs();
    let mut cluster = NatsCluster::start(&Stack::get(), SyncInterval::Default).await;
    let (world, chat) = chat_on(&cluster).await;
    let stream = format!("{}_chat", world.prefix);

    // The leader and one follower: the last node cannot make a quorum alone.
    let leader = cluster.index_of(&cluster.stream_leader(&stream).await);
    let other = (0..3).find(|node| *node != leader).unwrap();
    let down = Instant::now();
    cluster.kill(leader);
    cluster.kill(other);
    // What was in flight when the nodes went is answered either way; from the first refusal on,
    // nothing may be acknowledged while the stream has no quorum.
    let refused = chat.refused();
    testkit::eventually("sends to be refused", Duration::from_secs(120), || async {
        (chat.refused() > refused).then_some(())
    })
    .await;
    let acked_without_quorum = chat.acked().len();
    let refused = chat.refused();
    // The outage lasts a few seconds, with the devices sending (again) all along.
    tokio::time::sleep(Duration::from_secs(3)).await;
    testkit::eventually(
        "many more sends to be refused",
        Duration::from_secs(120),
        || async { (chat.refused() >= refused + 20).then_some(()) },
    )
    .await;
    assert_eq!(
        chat.acked().len(),
        acked_without_quorum,
        "a send was acknowledged by one node of three"
    );
    let outage = down.elapsed();

    cluster.spawn(leader);
    cluster.spawn(other);
    for node in [leader, other] {
        cluster.wait_healthy(node).await;
    }
    let healed = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;
    let stall = chat.stall(down, Instant::now());

    chat.settle_and_check(healed).await;
    let stored = chat.check_stored(&world, &world.edge_url(0, "")).await;
    let acked = chat.acked().len();
    eprintln!(
        "two nodes of three down for {outage:?}: none acknowledged meanwhile; {acked} \
         acknowledged in all, all delivered, {stored} stored, lost {}; {} sends refused and \
         sent again; sends stalled {stall:?} (outage and recovery)",
        acked - stored,
        chat.refused()
    );
}

#[tokio::test]
#[ignore = "a private NATS cluster under chat for minutes: run by `./natter test` beside the web step"]
async fn an_edge_a_persister_and_an_auth_killed_mid_chat_lose_nothing() {
    logs();
    let cluster = NatsCluster::start(&Stack::get(), SyncInterval::Default).await;
    let args = edge_args();
    // Auth and a persister in this process; a second persister and a second auth as processes
    // (their built binaries), and three edges as processes: the test SIGKILLs them.
    let world = World::start_on(Engines::nats(cluster.urls()), 0, &args).await;
    let mut persister = ServiceProcess::start("persister", &world.persister_args(&args)).await;
    let mut auth =
        ServiceProcess::start("auth", &world.another_auth_args(&["--worker-id=900"])).await;
    let mut edges = Vec::new();
    for worker in 11..14 {
        edges.push(EdgeProcess::start(&world, worker, &args).await);
    }
    // Devices start on the first two edges and, when closed, ask discovery where to go: the
    // auth instance that will be killed first, the other when it does not answer.
    let auths = vec![auth.url(""), world.auth.url("")];
    let gateways = [0, 1].map(|edge| Gateway::Discovered {
        first: edges[edge].gateway(),
        auths: auths.clone(),
    });
    let chat = Chat::start_on(&world, gateways).await;
    wait_for_traffic(&chat, 200).await;

    // The first edge: its devices move through discovery to a live edge and resume there.
    let killed = Instant::now();
    edges[0].kill();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;
    let edge_stall = chat.stall(killed, Instant::now());

    // A persister mid-copy: what it held unacknowledged goes to the other one.
    persister.kill();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;

    // The auth instance discovery is asked first; then the second edge, so the devices there
    // must go through discovery while that auth is gone.
    auth.kill();
    let killed = Instant::now();
    edges[1].kill();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;
    let second_stall = chat.stall(killed, Instant::now());
    let settled = Instant::now();

    chat.settle_and_check(settled).await;
    let survivor = format!("http://127.0.0.1:{}", edges[2].process.port);
    let stored = chat.check_stored(&world, &survivor).await;
    let acked = chat.acked().len();
    eprintln!(
        "an edge, a persister, an auth and another edge killed: {acked} acknowledged, all \
         delivered, {stored} stored, lost {}; {} sends refused and sent again; sends stalled \
         {edge_stall:?} (first edge) and {second_stall:?} (auth and second edge)",
        acked - stored,
        chat.refused()
    );
}
