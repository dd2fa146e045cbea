//! The edge's lane: a session whose client sends moves to a thread of its own, apart from the
//! fan-out, and back once its client has gone quiet; nothing its user sees changes on the way.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, WAIT, World};

async fn metric(world: &World, name: &str, label: &str) -> u64 {
    world.edge_metric(0, name, label).await
}

async fn on_lane(world: &World) -> u64 {
    metric(world, "natter_edge_lane_sessions{", "").await
}

async fn moves(world: &World, to: &str) -> u64 {
    metric(
        world,
        "natter_edge_lane_moves_total{",
        &format!("to=\"{to}\""),
    )
    .await
}

/// The scheduling policy of each of this process's lane threads (a thread's `stat`, field 41).
fn lane_policies() -> Vec<u32> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("this process's threads");
    tasks
        .filter_map(|task| {
            let dir = task.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            (comm.trim() == "edge-lane").then_some(())?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            stat[stat.rfind(')')? + 2..]
                .split(' ')
                .nth(38)?
                .parse()
                .ok()
        })
        .collect()
}

#[tokio::test]
async fn a_talking_session_moves_to_the_lane_and_back_and_its_user_misses_nothing() {
    let world = World::start(
        1,
        &[
            "--lane-sessions=1",
            // However idle the edge: every talking session may move.
            "--behind-after=0ms",
            "--lane-quiet=1s",
            "--send-rate=100000/1s",
        ],
    )
    .await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    let room = world.channel(&ann, "room", &[&bob, &cat]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut cat_1 = Client::connect(&world.gateway(0), &cat).await;
    let post = |n: usize| {
        let (world, bob) = (&world, &bob);
        async move {
            let path = format!("/api/v1/channels/{room}/messages");
            let body = json!({"content": format!("b{n}")});
            let (status, answer) = world
                .edge_call(0, reqwest::Method::POST, &path, bob, Some(body))
                .await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    let mut expected = Vec::new();
    let mut got = Vec::new();

    // Ann's first send is answered where her session started; then it runs on the lane.
    let ack = ann_1.send(room, "a0", "n0").await;
    assert_eq!(ack["op"], 24, "{ack}");
    expected.push("a0".to_owned());
    testkit::eventually("Ann's session on the lane", WAIT, || async {
        (on_lane(&world).await == 1 && moves(&world, "lane").await == 1).then_some(())
    })
    .await;
    // Its thread never preempts the fan-out's workers when it wakes: SCHED_BATCH (3).
    let policies = lane_policies();
    assert!(
        !policies.is_empty() && policies.iter().all(|&p| p == 3),
        "{policies:?}"
    );

    // There it gets every delivery, answers heartbeats and sends, all in order.
    for n in 1..=20 {
        post(n).await;
        expected.push(format!("b{n}"));
        let ack = ann_1.send(room, &format!("a{n}"), &format!("n{n}")).await;
        assert_eq!(ack["op"], 24, "{ack}");
        assert_eq!(ack["d"]["message"]["content"], format!("a{n}"));
        expected.push(format!("a{n}"));
    }
    ann_1.send_raw(json!({"op": 1, "d": null})).await;
    loop {
        let frame = ann_1.next().await.expect("a heartbeat ACK");
        if frame["op"] == 11 {
            break;
        }
        if frame["t"] == "MESSAGE_CREATE" {
            got.push(frame["d"]["content"].as_str().unwrap().to_owned());
        }
    }

    // The lane holds one session: Cat's sends are answered on the main runtime.
    let ack = cat_1.send(room, "c0", "c0").await;
    assert_eq!(ack["op"], 24, "{ack}");
    expected.push("c0".to_owned());
    assert_eq!(on_lane(&world).await, 1);
    assert_eq!(moves(&world, "lane").await, 1, "Cat stayed where she was");

    // Quiet for a second, Ann's session goes back (at its next step: a delivery).
    let mut n = 21;
    while moves(&world, "main").await == 0 {
        assert!(n < 200, "Ann's session never left the lane");
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(n).await;
        expected.push(format!("b{n}"));
        n += 1;
    }
    assert_eq!(on_lane(&world).await, 0);
    // And comes again at her next send.
    let ack = ann_1.send(room, "again", "again").await;
    assert_eq!(ack["op"], 24, "{ack}");
    expected.push("again".to_owned());
    post(n).await;
    expected.push(format!("b{n}"));

    // Every message reached her once, in the order the channel has them.
    let rest = ann_1.messages(expected.len() - got.len()).await;
    got.extend(rest);
    assert_eq!(got, expected);
    ann_1.no_messages().await;
    assert_eq!(cat_1.messages(expected.len()).await, expected);

    // A session ending on the lane gives its place back.
    testkit::eventually("Ann back on the lane", WAIT, || async {
        (moves(&world, "lane").await == 2).then_some(())
    })
    .await;
    drop(ann_1);
    testkit::eventually("Ann's session gone, and its place", WAIT, || async {
        let sessions = metric(&world, "natter_edge_sessions{", "").await;
        (sessions == 1 && on_lane(&world).await == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_edge_with_time_to_spare_keeps_its_talking_sessions_where_they_are() {
    // Never behind by an hour: as an edge whose threads look at their sockets on time.
    let world = World::start(1, &["--behind-after=1h", "--send-rate=100000/1s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    // No traffic yet: the edge has not woken once to see whether it is behind (sessions'
    // sends and the dispatcher's hand-outs have it look).
    let samples = || metric(&world, "natter_edge_main_late_seconds_count", "");
    assert_eq!(samples().await, 0);
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut expected = Vec::new();
    for n in 0..10 {
        let ack = ann_1.send(room, &format!("a{n}"), &format!("n{n}")).await;
        assert_eq!(ack["op"], 24, "{ack}");
        expected.push(format!("a{n}"));
    }
    // Bob's answer comes after every one of Ann's in the channel: once Ann has it, her session
    // has had its chances to move after each of her sends.
    let ack = bob_1.send(room, "b", "b").await;
    assert_eq!(ack["op"], 24, "{ack}");
    expected.push("b".to_owned());
    assert_eq!(ann_1.messages(expected.len()).await, expected);
    assert_eq!(bob_1.messages(expected.len()).await, expected);
    assert_eq!(moves(&world, "lane").await, 0);
    assert_eq!(on_lane(&world).await, 0);
    // Their sends had it look.
    testkit::eventually("the main runtime sampled", WAIT, || async {
        (samples().await > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_session_sending_without_pause_moves_at_once_and_keeps_its_order() {
    let world = World::start(
        1,
        &[
            "--behind-after=0ms",
            "--lane-quiet=1h",
            "--send-rate=100000/1s",
            "--frames-per-minute=100000",
        ],
    )
    .await;
    let (ann, cat) = (world.sign_up("ann").await, world.sign_up("cat").await);
    let room = world.channel(&ann, "room", &[&cat]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut cat_1 = Client::connect(&world.gateway(0), &cat).await;
    let send = |n: usize| {
        let d = json!({"channel_id": room, "content": format!("a{n}"), "nonce": format!("n{n}")});
        json!({"op": 20, "d": d})
    };

    // Ann sends 200 messages in one write: her session finds a send waiting for JetStream
    // after every frame it reads, and still moves after her first.
    const SENDS: usize = 200;
    ann_1.send_together((0..SENDS).map(send)).await;
    let (mut acked, mut echoes) = (Vec::new(), Vec::new());
    while acked.len() < SENDS {
        let frame = ann_1.next().await.expect("an ACK or an echo");
        if frame["t"] == "MESSAGE_CREATE" {
            echoes.push(frame["d"]["content"].as_str().unwrap().to_owned());
            continue;
        }
        assert_eq!(frame["op"], 24, "{frame}");
        acked.push(frame["d"]["nonce"].as_str().unwrap().to_owned());
        if acked.len() == 2 {
            // Her second send was read on the lane, before its ACK was written.
            assert_eq!(moves(&world, "lane").await, 1);
            assert_eq!(on_lane(&world).await, 1);
        }
    }
    acked.sort_by_key(|nonce| nonce[1..].parse::<usize>().unwrap());
    let nonces: Vec<String> = (0..SENDS).map(|n| format!("n{n}")).collect();
    assert_eq!(acked, nonces, "every send answered once");

    // The channel has them in the order Ann sent them, and so has everyone who reads it.
    let expected: Vec<String> = (0..SENDS).map(|n| format!("a{n}")).collect();
    let rest = ann_1.messages(SENDS - echoes.len()).await;
    echoes.extend(rest);
    assert_eq!(echoes, expected);
    assert_eq!(cat_1.messages(SENDS).await, expected);
    ann_1.no_messages().await;
    assert_eq!(moves(&world, "lane").await, 1);
}
