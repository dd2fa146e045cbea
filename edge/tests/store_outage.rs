//! The CQL store goes away for 30 seconds while people chat: they keep receiving in real time,
//! the persister catches up when the store is back, and history has every message.
//!
//! The store is a private Cassandra node of this test's own (the stack's serves everyone else):
//! SIGKILLed for the outage and started again after it.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

use std::time::{Duration, Instant};

use proto::Snowflake;
use testkit::{CassandraServer, Stack};

use support::{Client, Engines, World};

#[tokio::test]
async fn thirty_seconds_without_the_store_lose_nothing_and_delay_no_delivery() {
    let mut store = CassandraServer::start().await;
    let engines = Engines {
        nats_url: Stack::get().nats_url,
        cql_nodes: Some(store.nodes()),
        cql_args: Vec::new(),
    };
    let world = World::start_on(
        engines,
        2,
        &["--send-rate=1000/1s", "--frames-per-minute=100000"],
    )
    .await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    store.stop();
    let started = Instant::now();
    let mut sent = Vec::new();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let ack = ann_1.send(room, &format!("m{i}"), &format!("n{i}")).await;
        assert_eq!(
            ack["op"], 24,
            "a send failed while the store was down: {ack}"
        );
        sent.push(ack["d"]["message"]["id"].as_str().unwrap().to_owned());
        // Bob hears each message while the store is still down.
        assert_eq!(bob_1.messages(1).await, [format!("m{i}")]);
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.resume().await;

    world.persisted().await;
    // The edge reconnects to the store on its own schedule: until it has, history says 503 and
    // "try again", as it should. Wait for it, as a client would.
    let path = format!("/api/v1/channels/{room}/messages?limit=1");
    testkit::eventually(
        "history to answer again",
        Duration::from_secs(120),
        || async {
            let (status, _) = world
                .edge_call(1, reqwest::Method::GET, &path, &bob, None)
                .await;
            (status == 200).then_some(())
        },
    )
    .await;
    let stored: Vec<String> = world
        .messages_after(1, &bob, room, Snowflake::from_u64(1))
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(sent.len() > 100, "only {} messages were sent", sent.len());
    assert_eq!(stored, sent, "history after the outage");
}
