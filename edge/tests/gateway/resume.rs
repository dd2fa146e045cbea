//! Missed events: a client that loses its socket, for any reason, resumes on any edge and ends with
//! every acknowledged message exactly once, in order.

use std::collections::HashMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kit::stream::{ChatStream, Missed, ReadError, Resume};
use proto::Snowflake;
use proto::events::Event;
use proto::subjects::Subjects;
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

/// Five messages, `r1 p1 r2 p2 r3`, in a group channel of three (`room`) and one of two
/// (`pair`); the stream sequence before them and after each.
async fn five_messages(world: &World) -> (Snowflake, Snowflake, Vec<u64>) {
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    let room = world.channel(&ann, "room", &[&bob, &cat]).await;
    let pair = world.channel(&ann, "pair", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut seqs = vec![ann_1.seq];
    let five = [
        (room, "r1"),
        (pair, "p1"),
        (room, "r2"),
        (pair, "p2"),
        (room, "r3"),
    ];
    for (i, (channel, content)) in five.into_iter().enumerate() {
        ann_1.send(channel, content, &format!("n-{i}")).await;
        assert_eq!(ann_1.messages(1).await, [content]);
        seqs.push(ann_1.seq);
    }
    (room, pair, seqs)
}

/// A reader of `world`'s chat stream, and the direct gets it asks, as NATS passes them on.
async fn stream_and_its_questions(world: &World) -> (ChatStream, async_nats::Subscriber) {
    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url).await.unwrap();
    let asked = nats.subscribe(subjects.chat_direct_get()).await.unwrap();
    nats.flush().await.unwrap();
    (ChatStream::new(nats, subjects), asked)
}

/// What the direct gets passed on so far asked for, in the order asked: `multi_last` (each
/// channel's last event), `first` (the first event from a sequence on, of any channel), or the
/// channel a read was of. The reader shares the subscriber's connection, so every question it
/// asked reached the subscriber before the answers it waited for.
fn questions(asked: &mut async_nats::Subscriber) -> Vec<String> {
    let mut kinds = Vec::new();
    while let Some(Some(question)) = asked.next().now_or_never() {
        let body: Value = serde_json::from_slice(&question.payload).unwrap();
        kinds.push(match (&body["multi_last"], body["next_by_subj"].as_str()) {
            (Value::Array(_), _) => "multi_last".to_owned(),
            (_, Some(">")) => "first".to_owned(),
            (_, Some(subject)) => subject.to_owned(),
            _ => panic!("an unexpected direct get: {body}"),
        });
    }
    kinds
}

fn resume(channels: &[Snowflake], after: u64) -> Resume {
    Resume {
        channels: channels.to_vec(),
        after,
        handed_out: HashMap::new(),
    }
}

/// The messages a replay holds, in order.
fn replayed(missed: &Result<Missed, ReadError>) -> Vec<String> {
    let missed = missed.as_ref().expect("a replay");
    (missed.events.iter())
        .map(|stored| match &stored.event {
            Event::MessageCreate(message) => message.content.clone(),
            other => panic!("not a message: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn resumes_asked_together_read_each_channel_once_and_each_gets_only_what_it_missed() {
    let world = World::start(1, &[]).await;
    let (room, pair, seqs) = five_messages(&world).await;
    let (stream, mut asked) = stream_and_its_questions(&world).await;
    let subjects = stream.subjects().clone();
    let resumes = [
        resume(&[room, pair], seqs[0]),
        // Two devices of one user, from after r1.
        resume(&[room], seqs[1]),
        resume(&[room], seqs[1]),
        resume(&[pair], seqs[3]),
        // Nothing new in their channels.
        resume(&[pair], seqs[4]),
        resume(&[room, pair], seqs[5]),
        // A client may say anything: from the last sequence there could be.
        resume(&[room], u64::MAX),
    ];
    let together = stream.missed(&resumes).await;
    let mut kinds = questions(&mut asked);
    kinds.sort_unstable();
    let mut expected = [
        "multi_last".to_owned(),
        "first".to_owned(),
        subjects.chat_intake(room),
        subjects.chat_intake(pair),
    ];
    expected.sort_unstable();
    assert_eq!(
        kinds, expected,
        "one question for every channel's last event, one check that the stream holds what the \
         oldest resume missed, one read of each channel"
    );
    let each: Vec<Vec<String>> = together.iter().map(replayed).collect();
    assert_eq!(
        each,
        [
            vec!["r1", "p1", "r2", "p2", "r3"],
            vec!["r2", "r3"],
            vec!["r2", "r3"],
            vec!["p2"],
            vec![],
            vec![],
            vec![],
        ]
    );
    let throughs: Vec<u64> = (together.iter())
        .map(|missed| missed.as_ref().unwrap().through)
        .collect();
    assert_eq!(
        throughs,
        [
            seqs[5],
            seqs[5],
            seqs[5],
            seqs[4],
            seqs[4],
            seqs[5],
            u64::MAX
        ]
    );
    // Each answer is the one it gets when asked alone.
    for (resume, answer) in resumes.iter().zip(&together) {
        assert_eq!(&stream.missed(&[resume]).await[0], answer);
    }
}

#[tokio::test]
async fn a_resume_the_stream_no_longer_holds_is_refused_while_those_asked_with_it_are_answered() {
    // The stream keeps its last three events: r2, p2 and r3.
    let world = World::start(1, &["--stream-max-messages=3"]).await;
    let (room, pair, seqs) = five_messages(&world).await;
    let (stream, mut asked) = stream_and_its_questions(&world).await;
    let together = stream
        .missed(&[
            resume(&[room, pair], seqs[0]),
            resume(&[room], seqs[1]),
            resume(&[room, pair], seqs[2]),
            resume(&[pair], seqs[3]),
        ])
        .await;
    assert!(
        matches!(together[0], Err(ReadError::TooOld(_))),
        "{together:?}"
    );
    assert!(
        matches!(together[1], Err(ReadError::TooOld(_))),
        "{together:?}"
    );
    assert_eq!(replayed(&together[2]), ["r2", "p2", "r3"]);
    assert_eq!(replayed(&together[3]), ["p2"]);
    let kinds = questions(&mut asked);
    let checks = kinds.iter().filter(|kind| *kind == "first").count();
    assert_eq!(checks, 1, "one check for all four: {kinds:?}");
    assert_eq!(kinds.len(), 4, "and one read of each channel: {kinds:?}");
}

#[tokio::test]
async fn clients_resuming_together_at_one_edge_each_get_what_they_missed_once() {
    let world = World::start(1, &[]).await;
    let users = [
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    ];
    let [ann, bob, cat] = &users;
    let room = world.channel(ann, "room", &[bob, cat]).await;
    let pair = world.channel(ann, "pair", &[bob]).await;
    let mut sender = Client::connect(&world.gateway(0), ann).await;
    // Two devices each, dropped at different points of the conversation.
    let mut dropped = Vec::new();
    let mut sent = Vec::new();
    for (i, (user, channel)) in [(ann, room), (bob, pair), (cat, room), (bob, room)]
        .into_iter()
        .enumerate()
    {
        for _device in 0..2 {
            let client = Client::connect(&world.gateway(0), user).await;
            dropped.push((user, client.session_id(), client.seq, sent.len()));
        }
        let content = format!("m{i}");
        sender.send(channel, &content, &format!("n-{i}")).await;
        sent.push((channel, content));
    }
    let gateway = world.gateway(0);
    let resumed = futures::future::join_all(
        dropped
            .iter()
            .map(|(user, session, seq, _)| Client::resume(&gateway, user, session, *seq)),
    )
    .await;
    for ((user, _, _, from), (_, replay)) in dropped.iter().zip(&resumed) {
        let theirs: Vec<&str> = (sent[*from..].iter())
            .filter(|(channel, _)| *channel == room || user.name != "cat")
            .map(|(_, content)| content.as_str())
            .collect();
        assert_eq!(
            contents(replay),
            theirs,
            "{}'s replay from {from}",
            user.name
        );
    }
    // Live delivery goes on after each replay, once.
    sender.send(room, "later", "n-later").await;
    for (_, (mut client, _)) in dropped.iter().zip(resumed) {
        assert_eq!(client.messages(1).await, ["later"]);
        client.no_messages().await;
    }
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
