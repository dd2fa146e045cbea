//! Missed events: a client that loses its socket, for any reason, resumes on any edge and ends with
//! every acknowledged message exactly once, in order.

use std::time::Duration;

use serde_json::Value;

use crate::edge_process::EdgeProcess;
use crate::support::{Client, World, closed, next_json};

#[tokio::test]
async fn a_dropped_client_resumes_on_another_edge_and_misses_nothing() {
    let world = World::start(2, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    ann_1.send(room, "one", "n-1").await;
    assert_eq!(bob_1.messages(1).await, ["one"]);
    let (session, seq) = (bob_1.session_id(), bob_1.seq);
    drop(bob_1);

    ann_1.send(room, "two", "n-2").await;
    ann_1.send(room, "three", "n-3").await;
    let (mut bob_2, replayed) = Client::resume(&world.gateway(0), &bob, &session, seq).await;
    assert_eq!(contents(&replayed), ["two", "three"]);
    ann_1.send(room, "four", "n-4").await;
    assert_eq!(bob_2.messages(1).await, ["four"]);
    bob_2.no_messages().await;
}

#[tokio::test]
async fn a_resume_from_before_the_stream_begins_is_refused_so_the_client_starts_over() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    ann_1.send(room, "one", "n-1").await;
    // A sequence from the future cannot be continued either: nothing is invented.
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    crate::support::send_json(
        &mut socket,
        serde_json::json!({"op": 6, "d": {"token": ann.token, "session_id": "x", "seq": 0}}),
    )
    .await;
    let frame = next_json(&mut socket).await.unwrap();
    // Sequence 0 is "from the start", which the stream still holds: a replay, then RESUMED.
    assert!(
        frame["t"] == "MESSAGE_CREATE" || frame["t"] == "RESUMED",
        "{frame}"
    );
}

fn contents(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["t"] == "MESSAGE_CREATE")
        .map(|f| f["d"]["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn when_an_edge_is_killed_its_clients_resume_through_discovery_and_miss_nothing() {
    let world = World::start(0, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let (mut doomed, survivor) = tokio::join!(
        EdgeProcess::start(&world, 11, &["--send-rate=1000/1s"]),
        EdgeProcess::start(&world, 12, &["--send-rate=1000/1s"]),
    );

    let mut ann_1 = Client::connect(&survivor.gateway(), &ann).await;
    let mut bob_1 = Client::connect(&doomed.gateway(), &bob).await;

    let mut acknowledged = Vec::new();
    let mut bob_saw = Vec::new();
    for i in 0..60 {
        let content = format!("m{i:02}");
        let ack = ann_1.send(room, &content, &format!("n-{i}")).await;
        assert_eq!(ack["op"], 24, "{ack}");
        acknowledged.push(content);
        if i < 20 {
            bob_saw.extend(bob_1.messages(1).await);
        }
        if i == 20 {
            doomed.kill();
        }
    }
    // Bob's socket is gone; his client asks discovery for a live edge and resumes there.
    let seq = bob_1.seq;
    let session = bob_1.session_id();
    bob_saw.extend(bob_1.messages(60).await); // whatever was still in flight before the kill
    let (status, gateway) = world
        .call(
            reqwest::Method::GET,
            "/api/v1/gateway",
            Some(&bob.token),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{gateway}");
    let url = gateway["url"].as_str().unwrap().to_owned();
    assert_eq!(url, survivor.gateway());
    let seq = seq.max(bob_1.seq);
    let (_bob_2, replayed) = Client::resume(&url, &bob, &session, seq).await;
    bob_saw.extend(contents(&replayed));
    assert_eq!(
        bob_saw, acknowledged,
        "every acknowledged message exactly once, in order"
    );
}

#[tokio::test]
async fn sigterm_drains_the_edge_its_clients_are_told_to_reconnect_and_it_exits_cleanly() {
    let world = World::start(0, &[]).await;
    let ann = world.sign_up("ann").await;
    let mut edge = EdgeProcess::start(&world, 13, &["--send-rate=1000/1s"]).await;
    let url = edge.gateway();
    let mut ann_1 = Client::connect(&url, &ann).await;
    // A second device has its HELLO and has not identified yet: it is told too.
    let (mut ann_2, _hello) = Client::open(&url).await;

    edge.process.signal("TERM");
    let reconnect = ann_1.next().await.expect("RECONNECT before the close");
    assert_eq!(reconnect["op"], 7, "{reconnect}");
    assert!(ann_1.closed().await.is_some());
    let reconnect = next_json(&mut ann_2)
        .await
        .expect("RECONNECT before IDENTIFY");
    assert_eq!(reconnect["op"], 7, "{reconnect}");
    assert!(closed(&mut ann_2).await.is_some());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = edge.process.try_wait() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the edge did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn an_edge_times_each_session_start_phase_by_phase_for_ready_and_resumed() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let first = Client::connect(&world.gateway(0), &ann).await;
    let (session, seq) = (first.session_id(), first.seq);
    drop(first);
    let (_again, _) = Client::resume(&world.gateway(0), &ann, &session, seq).await;

    // How many starts each phase has timed, from the edge's /metrics.
    let counts = || async {
        let text = world.edge_metrics(0).await;
        let count = |phase: &str| {
            let name = format!("natter_edge_session_start_seconds_count{{phase=\"{phase}\"");
            text.lines()
                .find(|line| line.starts_with(&name))
                .and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        [
            "auth", "servers", "stream", "presence", "store", "ready", "resumed",
        ]
        .map(count)
    };
    // A fresh start goes through every phase and ends with READY; a resume skips the store's
    // unread counts and ends with RESUMED. (Counted just after the frame is written.)
    testkit::eventually("both starts timed", crate::support::WAIT, || async {
        (counts().await == [2, 2, 2, 2, 1, 1, 1]).then_some(())
    })
    .await;
}
