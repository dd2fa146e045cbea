//! A sender in a busy channel: its own sends never hold its deliveries up, so it is never closed
//! as too slow for talking, and every send is answered.

use std::sync::atomic::{AtomicBool, Ordering};

use proto::Snowflake;
use serde_json::json;

use crate::support::{Client, World};

#[tokio::test]
async fn a_sender_in_a_busy_channel_stays_connected_and_gets_every_ack() {
    // A session may have 256 events waiting: one that stops taking its deliveries for a while in
    // a busy channel is closed as too slow (4009).
    let world = World::start(
        1,
        &[
            "--session-queue=256",
            "--send-rate=100000/1s",
            "--frames-per-minute=1000000",
        ],
    )
    .await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;

    // Ann sends without waiting for her answers while Bob keeps the channel busy (eight posts at
    // a time over REST) until every one of hers is answered.
    const SENDS: usize = 400;
    let done = AtomicBool::new(false);
    let mut contents = Vec::new();
    let ann_talks = async {
        for n in 0..SENDS {
            let frame = json!({"op": 20, "d": {"channel_id": room, "content": format!("a{n}"), "nonce": format!("a-{n}")}});
            ann_1.send_raw(frame).await;
        }
        let mut acks = 0;
        while acks < SENDS {
            let Some(frame) = ann_1.next().await else {
                panic!("Ann's session ended after {acks} of {SENDS} answers");
            };
            match frame["op"].as_u64() {
                Some(24) => acks += 1,
                Some(25) => panic!("a send was refused: {frame}"),
                _ if frame["t"] == "MESSAGE_CREATE" => {
                    contents.push(frame["d"]["content"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
        }
        done.store(true, Ordering::Relaxed);
    };
    let bob_floods = futures::future::join_all((0..8).map(|worker| {
        let (world, bob, done) = (&world, &bob, &done);
        async move {
            let mut posted = 0;
            while !done.load(Ordering::Relaxed) {
                let path = format!("/api/v1/channels/{room}/messages");
                let body = json!({"content": format!("b{worker}-{posted}")});
                let (status, answer) = world
                    .edge_call(0, reqwest::Method::POST, &path, bob, Some(body))
                    .await;
                assert_eq!(status, 200, "{answer}");
                posted += 1;
            }
            posted
        }
    }));
    let ((), posted) = tokio::join!(ann_talks, bob_floods);
    let posted: usize = posted.iter().sum();

    // Everything reaches her, her own messages in the order she sent them.
    while contents.len() < SENDS + posted {
        let Some(frame) = ann_1.next().await else {
            panic!(
                "Ann's session ended with {} of {} messages",
                contents.len(),
                SENDS + posted
            );
        };
        if frame["t"] == "MESSAGE_CREATE" {
            contents.push(frame["d"]["content"].as_str().unwrap().to_owned());
        }
    }
    let hers: Vec<&String> = contents.iter().filter(|c| c.starts_with('a')).collect();
    let sent: Vec<String> = (0..SENDS).map(|n| format!("a{n}")).collect();
    assert_eq!(hers, sent.iter().collect::<Vec<_>>());
    assert!(posted > 0, "Bob's posts made the channel busy");
}

#[tokio::test]
async fn frames_a_client_writes_together_are_each_read_and_answered() {
    // The socket wakes its session once for the write that carries them all: the session must
    // read the frames already read from the socket without waiting for another wake-up.
    let world = World::start(1, &["--send-rate=100000/1s"]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;

    const SENDS: usize = 20;
    ann_1
        .send_together((0..SENDS).map(|n| {
            json!({"op": 20, "d": {"channel_id": room, "content": format!("a{n}"), "nonce": format!("a-{n}")}})
        }))
        .await;
    let (mut acks, mut contents) = (Vec::new(), Vec::new());
    while acks.len() < SENDS || contents.len() < SENDS {
        let Some(frame) = ann_1.next().await else {
            panic!(
                "{} answers and {} messages of {SENDS} arrived",
                acks.len(),
                contents.len()
            );
        };
        match frame["op"].as_u64() {
            Some(24) => acks.push(frame["d"]["nonce"].as_str().unwrap().to_owned()),
            Some(25) => panic!("a send was refused: {frame}"),
            _ if frame["t"] == "MESSAGE_CREATE" => {
                contents.push(frame["d"]["content"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    let nonces: Vec<String> = (0..SENDS).map(|n| format!("a-{n}")).collect();
    let sent: Vec<String> = (0..SENDS).map(|n| format!("a{n}")).collect();
    acks.sort_by_key(|nonce| nonce[2..].parse::<usize>().unwrap());
    assert_eq!(acks, nonces, "every send answered once");
    assert_eq!(contents, sent, "in the order written");
}

#[tokio::test]
async fn a_behind_edge_gathers_deliveries_and_every_member_gets_each_once_in_order() {
    // Always behind: the dispatcher hands out at most once per 50 ms, what came meanwhile
    // together, so each session writes several events at once.
    let world = World::start(1, ALWAYS_GATHERING).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let lingers = || world.edge_metric(0, "natter_edge_delivery_lingers_total{", "");

    // Ann writes her sends twenty at a time until the dispatcher has gathered some of them
    // (they reach it within 50 ms of each other however loaded the machine).
    let (mut sent, mut echoes) = (Vec::new(), Vec::new());
    while lingers().await == 0 {
        assert!(sent.len() < 2_000, "the dispatcher never gathered");
        send_twenty(&mut ann_1, room, &mut sent, &mut echoes).await;
    }
    // Bob, on the same edge, got every one once and in order; Ann her echoes likewise.
    all_once_in_order(&mut ann_1, &mut bob_1, &sent, echoes).await;
}

#[tokio::test]
async fn sessions_starting_while_the_edge_gathers_get_every_message_once_in_order() {
    // Always behind: a session's new topics are followed while the dispatcher gathers.
    let world = World::start(1, ALWAYS_GATHERING).await;
    let [ann, bob, cat, dan] = ["ann", "bob", "cat", "dan"].map(|name| world.sign_up(name));
    let (ann, bob, cat, dan) = tokio::join!(ann, bob, cat, dan);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let side = world.channel(&dan, "side", &[&cat]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let lingers = || world.edge_metric(0, "natter_edge_delivery_lingers_total{", "");

    // Ann keeps the room busy while Cat starts a session, the first on this edge in her channel,
    // and Dan posts there (at most 1,000 of Ann's: Bob reads his after, and a session holds
    // 1,024 waiting).
    let (mut sent, mut echoes) = (Vec::new(), Vec::new());
    let done = AtomicBool::new(false);
    let ann_talks = async {
        while !done.load(Ordering::Relaxed) && sent.len() < 1_000 {
            send_twenty(&mut ann_1, room, &mut sent, &mut echoes).await;
        }
    };
    let cat_joins = async {
        while lingers().await == 0 {
            tokio::task::yield_now().await;
        }
        let mut cat_1 = Client::connect(&world.gateway(0), &cat).await;
        let posts: Vec<String> = (0..20).map(|n| format!("d{n}")).collect();
        for post in &posts {
            let path = format!("/api/v1/channels/{side}/messages");
            let body = json!({"content": post});
            let (status, answer) = world
                .edge_call(0, reqwest::Method::POST, &path, &dan, Some(body))
                .await;
            assert_eq!(status, 200, "{answer}");
        }
        assert_eq!(cat_1.messages(posts.len()).await, posts);
        done.store(true, Ordering::Relaxed);
        cat_1
    };
    let ((), mut cat_1) = tokio::join!(ann_talks, cat_joins);

    all_once_in_order(&mut ann_1, &mut bob_1, &sent, echoes).await;
    cat_1.no_messages().await;
}

/// An edge always behind: the dispatcher hands out at most once per 50 ms.
const ALWAYS_GATHERING: &[&str] = &[
    "--behind-after=0ms",
    "--delivery-linger=50ms",
    "--send-rate=100000/1s",
    "--frames-per-minute=100000",
];

/// Bob got every one of Ann's `sent` once and in order and nothing more; Ann her echoes
/// likewise (`echoes`: those she read while sending).
async fn all_once_in_order(
    ann_1: &mut Client,
    bob_1: &mut Client,
    sent: &[String],
    mut echoes: Vec<String>,
) {
    assert_eq!(bob_1.messages(sent.len()).await, sent);
    echoes.extend(ann_1.messages(sent.len() - echoes.len()).await);
    assert_eq!(echoes, sent);
    bob_1.no_messages().await;
}

/// Ann sends twenty messages to `room` in one write and reads until all are answered: their
/// contents go in `sent`, her echoes read meanwhile in `echoes`.
async fn send_twenty(
    ann_1: &mut Client,
    room: Snowflake,
    sent: &mut Vec<String>,
    echoes: &mut Vec<String>,
) {
    let first = sent.len();
    sent.extend((first..first + 20).map(|n| format!("a{n}")));
    ann_1
        .send_together(sent[first..].iter().map(|content| {
            json!({"op": 20, "d": {"channel_id": room, "content": content, "nonce": content}})
        }))
        .await;
    let mut acks = 0;
    while acks < 20 {
        let frame = ann_1.next().await.expect("an ACK");
        match frame["op"].as_u64() {
            Some(24) => acks += 1,
            Some(25) => panic!("a send was refused: {frame}"),
            _ if frame["t"] == "MESSAGE_CREATE" => {
                echoes.push(frame["d"]["content"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
}
