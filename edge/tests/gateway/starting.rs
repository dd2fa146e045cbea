//! What happens while a session starts: an event for the user published after auth told the edge
//! the user's channels, and before READY, still reaches the session.

use std::sync::Arc;
use std::time::Duration;

use edge::continuity::{Feed, Followed, Source, Streams};
use futures::{FutureExt, StreamExt};
use kit::stream::{ChatStream, EventsStream};
use proto::Snowflake;
use proto::access::{SessionStart, SessionStarts};
use proto::subjects::Subjects;
use proto::tracker::QueryReply;
use serde_json::{Value, json};

use crate::support::{Client, User, WAIT, World, send_json};

#[tokio::test]
async fn a_dm_opened_with_someone_while_their_session_starts_reaches_it_after_ready() {
    // READY waits for presence's answer about the other side of Cat's DMs: this test holds that
    // question (no presence service runs here; the test answers it) to hold Cat's session
    // between auth's answer and READY.
    let world = World::start(1, &["--presence-timeout=30s"]).await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    world.dm(&bob, &cat).await;

    // Watching NATS as auth and the edge use it: the edge's questions about sessions starting,
    // every answer (replies go to `_INBOX.…` subjects), Cat's inbox, and questions to presence.
    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url)
        .await
        .expect("NATS");
    let mut questions = nats.subscribe(subjects.auth_starts()).await.unwrap();
    let mut answers = nats.subscribe("_INBOX.>").await.unwrap();
    let mut inbox = nats.subscribe(subjects.user_inbox(cat.id)).await.unwrap();
    let mut presence = nats.subscribe(subjects.presence_query()).await.unwrap();
    nats.flush().await.unwrap();

    // Cat identifies; the edge asks auth about her session, then presence about Bob.
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    send_json(&mut socket, json!({"op": 2, "d": {"token": cat.token}})).await;
    let wait = WAIT;
    let reply_to = tokio::time::timeout(wait, async {
        loop {
            let question = questions.next().await.expect("a question");
            let asked: SessionStarts = serde_json::from_slice(&question.payload).unwrap();
            if asked.starts.iter().any(|start| start.user_id == cat.id) {
                break question.reply.expect("a question wants an answer");
            }
        }
    })
    .await
    .expect("the edge asks auth for Cat's channels");
    tokio::time::timeout(wait, async {
        while answers.next().await.expect("an answer").subject != reply_to {}
    })
    .await
    .expect("auth answers with Cat's channels");
    let held = tokio::time::timeout(wait, presence.next())
        .await
        .expect("the edge asks presence about Bob before READY")
        .expect("a presence question");

    // Now, after auth's answer and before READY, Ann opens a DM with Cat.
    let dm = world.dm(&ann, &cat).await;
    tokio::time::timeout(wait, async {
        loop {
            let event = inbox.next().await.expect("an event for Cat");
            let event: Value = serde_json::from_slice(&event.payload).unwrap();
            if event["t"] == "CHANNEL_CREATE" && event["d"]["id"] == dm.to_string() {
                break;
            }
        }
    })
    .await
    .expect("auth tells Cat's inbox of the DM");
    // Presence answers now (nobody online), this question and every later one.
    tokio::spawn(async move {
        let answer = serde_json::to_vec(&QueryReply {
            presences: Vec::new(),
        })
        .unwrap();
        let mut question = Some(held);
        while let Some(asked) = question {
            if let Some(reply) = asked.reply {
                let _ = nats.publish(reply, answer.clone().into()).await;
            }
            question = presence.next().await;
        }
    });

    let mut cat_1 = Client::from_socket(socket).await;
    let channels = cat_1.ready["d"]["channels"].as_array().unwrap().clone();
    assert!(
        channels.iter().all(|c| c["id"] != dm.to_string()),
        "the DM is news after READY (else this test proves nothing): {channels:?}"
    );
    let created = cat_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], dm.to_string(), "{created}");
    // And the session is in the DM: what Ann writes there reaches Cat.
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let ack = ann_1.send(dm, "you there?", "n-1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(cat_1.messages(1).await, ["you there?"]);
}

#[tokio::test]
async fn as_many_sessions_starting_at_once_as_auth_has_connections_all_get_ready() {
    // Auth answers a starting session's questions on one database connection, and answers as
    // many at once as it has connections. It once took a second connection for the
    // notification settings while holding the first: with every connection held by a starting
    // session, each waited for another until the pool gave up, and every device was closed.
    let world = World::start_with_auth(1, &[], &["--database-max-connections=2"]).await;
    let mut users = Vec::new();
    for name in ["ann", "bob", "cat", "dan", "eve", "fay"] {
        users.push(world.sign_up(name).await);
    }
    let gateway = world.gateway(0);
    let clients = futures::future::join_all(
        users
            .iter()
            .flat_map(|user| [user, user])
            .map(|user| Client::connect(&gateway, user)),
    )
    .await;
    for client in &clients {
        assert_eq!(client.ready["t"], "READY", "{}", client.ready);
    }
}

#[tokio::test]
async fn a_resume_asks_auth_for_less_than_ready_and_still_gets_what_it_missed() {
    let world = World::start(1, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let dm = world.dm(&ann, &bob).await;
    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url)
        .await
        .expect("NATS");
    let mut questions = nats.subscribe(subjects.auth_starts()).await.unwrap();
    nats.flush().await.unwrap();
    // Bob's start as the edge asks auth about it: READY's, then a resume's.
    let mut bobs_start = async || -> SessionStart {
        tokio::time::timeout(WAIT, async {
            loop {
                let question = questions.next().await.expect("a question");
                let asked: SessionStarts = serde_json::from_slice(&question.payload).unwrap();
                if let Some(start) = asked.starts.into_iter().find(|s| s.user_id == bob.id) {
                    break start;
                }
            }
        })
        .await
        .expect("the edge asks auth about Bob's session")
    };

    let bob_1 = Client::connect(&world.gateway(0), &bob).await;
    assert!(
        !bobs_start().await.resuming,
        "READY asks for the calls and settings"
    );
    let (session, seq) = (bob_1.session_id(), bob_1.seq);
    drop(bob_1);
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let ack = ann_1.send(dm, "while you were away", "n-1").await;
    assert_eq!(ack["op"], 24, "{ack}");

    let (_bob_2, replayed) = Client::resume(&world.gateway(0), &bob, &session, seq).await;
    assert!(bobs_start().await.resuming, "a resume says so");
    let missed: Vec<&Value> = replayed
        .iter()
        .filter(|e| e["t"] == "MESSAGE_CREATE")
        .map(|e| &e["d"]["content"])
        .collect();
    assert_eq!(missed, [&json!("while you were away")]);
}

/// Ann, Bob and Cat; a room of Ann's with Bob, and a channel of Cat's alone.
async fn a_room_and_a_channel_apart(world: &World) -> ([User; 3], Snowflake, Snowflake) {
    let users = [
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    ];
    let room = world.channel(&users[0], "room", &[&users[1]]).await;
    let apart = world.channel(&users[2], "apart", &[]).await;
    (users, room, apart)
}

#[tokio::test]
async fn a_new_session_starts_at_the_streams_last_event_whichever_channel_holds_it() {
    // READY's sequence is where the session's live delivery begins: the chat stream's last event,
    // asked of the stream as a whole (never matched against every channel's subject, which cost
    // NATS more with every channel). Here that event is in a channel Ann is not in.
    let world = World::start(1, &[]).await;
    let ([ann, bob, cat], room, elsewhere) = a_room_and_a_channel_apart(&world).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut cat_1 = Client::connect(&world.gateway(0), &cat).await;
    assert_eq!(bob_1.send(room, "in the room", "n-1").await["op"], 24);
    assert_eq!(cat_1.send(elsewhere, "elsewhere", "n-2").await["op"], 24);

    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url)
        .await
        .expect("NATS");
    let js = async_nats::jetstream::new(nats.clone());
    let last = |name: String| {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream(name).await.expect("the stream");
            stream.info().await.expect("its state").state.last_sequence
        }
    };
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    assert_eq!(ann_1.seq, last(subjects.chat_stream_name()).await);
    assert_eq!(ann_1.seq, cat_1.next_event("MESSAGE_CREATE").await["s"]);
    bob_1.send(room, "after READY", "n-3").await;
    assert_eq!(ann_1.messages(1).await, ["after READY"]);
    ann_1.no_messages().await;

    // The events stream is asked the same way where a session's calls start from.
    let events = EventsStream::new(nats, subjects.clone());
    assert_eq!(
        events
            .last_sequence()
            .await
            .expect("the events stream answers"),
        last(subjects.events_stream_name()).await
    );
}

#[tokio::test]
async fn topics_starting_together_read_their_positions_in_one_question_per_stream() {
    // A reconnect storm makes an edge follow thousands of topics anew (its users' inboxes, their
    // channels): each starts from its subjects' last events, and asked together they are one
    // `multi_last` of each stream however many topics there are.
    let world = World::start(1, &[]).await;
    let ([ann, bob, _], room, quiet) = a_room_and_a_channel_apart(&world).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    assert_eq!(ann_1.send(room, "one", "n-1").await["op"], 24);
    assert_eq!(ann_1.send(room, "two", "n-2").await["op"], 24);
    // Someone who never had an event: their inbox has no last event to start from.
    let dan = world.sign_up("dan").await;

    let subjects = Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url)
        .await
        .expect("NATS");
    let mut chat_asked = nats.subscribe(subjects.chat_direct_get()).await.unwrap();
    let mut events_asked = nats.subscribe(subjects.events_direct_get()).await.unwrap();
    nats.flush().await.unwrap();
    let chat = ChatStream::new(nats.clone(), subjects.clone());
    let events = EventsStream::new(nats.clone(), subjects.clone());
    // What the edge has seen of the events stream: a new topic starts there at least.
    let seen = 0;
    let streams = Streams::new(chat.clone(), events.clone(), seen);
    let followed = [
        Followed::Channel(room),
        Followed::Channel(quiet),
        Followed::Inbox(ann.id),
        Followed::Inbox(bob.id),
        Followed::Inbox(dan.id),
    ];
    let feeds: Vec<Arc<Feed>> = (followed.iter().cloned())
        .map(|followed| Feed::new(followed, 0, seen, Arc::default()))
        .collect();
    streams.start(&feeds).await.expect("the streams answer");

    // The reader shares the subscribers' connection: its questions reached them before the
    // answers it waited for.
    let count = |asked: &mut async_nats::Subscriber| {
        std::iter::from_fn(|| asked.next().now_or_never().flatten()).count()
    };
    assert_eq!(count(&mut chat_asked), 1, "one question of the chat stream");
    assert_eq!(
        count(&mut events_asked),
        1,
        "one question of the events stream"
    );
    // Each topic starts where it would alone.
    for feed in &feeds {
        let alone = streams
            .last_sequences(std::slice::from_ref(feed))
            .await
            .expect("the streams answer");
        for source in [Source::Chat, Source::Events] {
            let last = alone.iter().find(|(_, s, _)| *s == source);
            let last = last.map_or(0, |(_, _, last)| *last);
            let expected = match source {
                Source::Chat => last,
                Source::Events => last.max(seen),
            };
            assert_eq!(feed.watermark(source).get(), expected);
        }
    }
    let room_last = chat.last_sequences(&[room]).await.unwrap()[&room];
    assert_eq!(feeds[0].watermark(Source::Chat).get(), room_last);
    assert_eq!(ann_1.messages(2).await, ["one", "two"]);
    assert_eq!(
        ann_1.seq, room_last,
        "the room's last is Ann's second message"
    );
    assert_eq!(
        feeds[1].watermark(Source::Chat).get(),
        0,
        "nothing said there"
    );
    assert_eq!(
        feeds[4].watermark(Source::Events).get(),
        seen,
        "Dan had no event"
    );
    assert!(
        feeds[2].watermark(Source::Events).get() > seen,
        "Ann's inbox had an event"
    );
}

#[tokio::test]
async fn users_starting_at_once_at_one_edge_each_get_their_inbox_and_channel_events_once() {
    let world = World::start(1, &[]).await;
    let mut users = Vec::new();
    for name in ["ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"] {
        users.push(world.sign_up(name).await);
    }
    let gateway = world.gateway(0);
    // Two devices each, all starting at once: every inbox is a topic the edge follows anew.
    let mut clients = futures::future::join_all(
        (users.iter())
            .flat_map(|user| [user, user])
            .map(|user| Client::connect(&gateway, user)),
    )
    .await;
    let others: Vec<&User> = users[1..].iter().collect();
    let room = world.channel(&users[0], "room", &others).await;
    for client in &mut clients {
        let created = client.next_event("CHANNEL_CREATE").await;
        assert_eq!(created["d"]["id"], json!(room.to_string()), "{created}");
    }
    // Every device has the room (and follows it): what is said there now reaches each.
    clients[0].send(room, "hello all", "n-1").await;
    for client in &mut clients {
        assert_eq!(client.messages(1).await, ["hello all"]);
        while let Some(frame) = client.next_within(Duration::from_millis(300)).await {
            assert!(
                frame["t"] != "CHANNEL_CREATE" && frame["t"] != "MESSAGE_CREATE",
                "once only: {frame}"
            );
        }
    }
}
