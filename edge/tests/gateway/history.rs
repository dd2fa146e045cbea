//! Edits, deletes, history pages, read state and catch-up, through real edges, a real persister
//! and the real CQL store.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use proto::Snowflake;
use proto::api::messages::Message;
use proto::events::Event;
use proto::snowflake::NATTER_EPOCH_MS;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, World, closed};

const DAY: u64 = 86_400_000;

fn id_of(value: &Value) -> Snowflake {
    value.as_str().unwrap().parse().unwrap()
}

/// Every message id of a history page, in the page's order.
fn page_ids(page: &Value) -> Vec<Snowflake> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| id_of(&m["id"]))
        .collect()
}

async fn history(world: &World, user: &User, channel: Snowflake, query: &str) -> Value {
    let path = format!("/api/v1/channels/{channel}/messages{query}");
    let (status, body) = world.edge_call(0, Method::GET, &path, user, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn edits_and_deletes_reach_every_device_and_history_shows_the_final_state() {
    let world = World::start(2, &[]).await;
    let (ann, bob, dan) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("dan").await,
    );
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    let first = ann_1.send(room, "first", "a-1").await;
    let first_id = id_of(&first["d"]["message"]["id"]);
    let second = bob_1.send(room, "second", "b-1").await;
    let second_id = id_of(&second["d"]["message"]["id"]);

    // The author edits: every member's session hears MESSAGE_UPDATE, with a stream sequence.
    let edited = ann_1
        .request(
            json!({"op": 21, "d": {"channel_id": room, "message_id": first_id,
                                        "content": "first, edited", "nonce": "a-2"}}),
        )
        .await;
    assert_eq!(edited["op"], 24, "{edited}");
    assert_eq!(edited["d"]["message"]["content"], "first, edited");
    let update = bob_1.next_event("MESSAGE_UPDATE").await;
    assert!(update["s"].as_u64().is_some(), "{update}");
    assert_eq!(update["d"]["content"], "first, edited");
    assert!(update["d"]["edited_at"].as_u64().is_some(), "{update}");

    // Nobody else edits it, and a plain member deletes only their own messages.
    let refused = bob_1
        .request(
            json!({"op": 21, "d": {"channel_id": room, "message_id": first_id,
                                        "content": "hijacked", "nonce": "b-2"}}),
        )
        .await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "forbidden");
    let refused = bob_1
        .request(
            json!({"op": 22, "d": {"channel_id": room, "message_id": first_id, "nonce": "b-3"}}),
        )
        .await;
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    let unknown = bob_1
        .request(json!({"op": 22, "d": {"channel_id": room, "message_id": "42", "nonce": "b-4"}}))
        .await;
    assert_eq!(unknown["d"]["code"], "unknown_message", "{unknown}");

    // The owner deletes anyone's message; every member hears MESSAGE_DELETE.
    let deleted = ann_1
        .request(
            json!({"op": 22, "d": {"channel_id": room, "message_id": second_id, "nonce": "a-3"}}),
        )
        .await;
    assert_eq!(deleted["op"], 24, "{deleted}");
    let gone = bob_1.next_event("MESSAGE_DELETE").await;
    assert_eq!(
        gone["d"],
        json!({"id": second_id.to_string(), "channel_id": room.to_string()})
    );

    // History shows the final state, with the authors' profiles.
    let page = history(&world, &bob, room, "").await;
    assert_eq!(page_ids(&page), [first_id]);
    assert_eq!(page["messages"][0]["content"], "first, edited");
    assert!(page["messages"][0]["edited_at"].as_u64().is_some());
    assert_eq!(page["authors"][0]["username"], "ann");

    // Outsiders learn nothing; the REST twins apply the same rules.
    let path = format!("/api/v1/channels/{room}/messages");
    let (status, _) = world.edge_call(0, Method::GET, &path, &dan, None).await;
    assert_eq!(status, 404);
    let one = format!("/api/v1/channels/{room}/messages/{first_id}");
    let (status, body) = world
        .edge_call(0, Method::PATCH, &one, &bob, Some(json!({"content": "x"})))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = world
        .edge_call(0, Method::PATCH, &one, &ann, Some(json!({"content": " "})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = world.edge_call(1, Method::DELETE, &one, &ann, None).await;
    assert_eq!(status, 204);
    assert_eq!(page_ids(&history(&world, &ann, room, "").await), []);
    let (status, _) = world.edge_call(0, Method::DELETE, &one, &ann, None).await;
    assert_eq!(status, 404, "deleting twice finds nothing");
}

#[tokio::test]
async fn bad_history_queries_get_a_clear_error() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    for query in [
        "?before=1&after=2",
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?around=abc",
    ] {
        let path = format!("/api/v1/channels/{room}/messages{query}");
        let (status, body) = world.edge_call(0, Method::GET, &path, &ann, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "validation_failed", "{query}: {body}");
    }
}

/// Publishes messages straight into the chat stream, as an importer would, with ids from
/// `ids` (synthetic timestamps).
async fn import(world: &World, channel: Snowflake, author: Snowflake, ids: &[Snowflake]) {
    let nats = async_nats::connect(&world.stack.nats_url).await.unwrap();
    let js = jetstream::new(nats);
    for chunk in ids.chunks(500) {
        let mut acks = Vec::new();
        for &id in chunk {
            let event = Event::MessageCreate(Message {
                id,
                channel_id: channel,
                author_id: author,
                content: format!("message {id}"),
                nonce: None,
                edited_at: None,
                ..Default::default()
            });
            let publish = PublishMessage::build()
                .payload(event.to_json().into())
                .message_id(format!("import:{id}"));
            acks.push(
                js.send_publish(format!("{}.in.{channel}", world.prefix), publish)
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
}

#[tokio::test]
async fn ten_thousand_messages_over_several_buckets_page_back_forward_and_around_without_gaps() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;

    // 10,000 messages over 40 days, one every 172.8 s, in two clusters with twenty empty days
    // between them: five ten-day buckets, some of them empty.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let start = (now - 60 * DAY).max(NATTER_EPOCH_MS);
    let ids: Vec<Snowflake> = (0..10_000u64)
        .map(|i| {
            let gap = if i < 5_000 { 0 } else { 20 * DAY };
            Snowflake::from_parts(start + i * 172_800 + gap, 1000, (i % 4096) as u16)
        })
        .collect();
    import(&world, room, ann.id, &ids).await;
    world.persisted().await;

    // Back to the first with `before`.
    let mut back = Vec::new();
    let mut query = "?limit=100".to_owned();
    loop {
        let page = page_ids(&history(&world, &ann, room, &query).await);
        let Some(oldest) = page.last() else { break };
        query = format!("?limit=100&before={oldest}");
        back.extend(page);
    }
    let newest_first: Vec<Snowflake> = ids.iter().rev().copied().collect();
    assert_eq!(back.len(), 10_000);
    assert_eq!(
        back, newest_first,
        "paging back: a gap, duplicate or misorder"
    );

    // Forward from the start with `after`: each page is newest first, right after the anchor.
    let forward = world
        .messages_after(0, &ann, room, Snowflake::from_u64(1))
        .await;
    assert_eq!(forward, ids, "paging forward: a gap, duplicate or misorder");

    // Around a middle id (at the seam between the two clusters).
    let middle = ids[5_000];
    let page = page_ids(&history(&world, &ann, room, &format!("?limit=10&around={middle}")).await);
    let expected: Vec<Snowflake> = ids[4_995..5_005].iter().rev().copied().collect();
    assert_eq!(page, expected);
}

#[tokio::test]
async fn unread_counts_come_in_ready_and_marking_read_reaches_every_device_and_the_sender() {
    let world = World::start(2, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut sent = Vec::new();
    for i in 0..3 {
        let ack = ann_1.send(room, &format!("m{i}"), &format!("n{i}")).await;
        sent.push(id_of(&ack["d"]["message"]["id"]));
    }
    world.persisted().await;

    let channel_in = |client: &Client| {
        client.ready["d"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == room.to_string())
            .cloned()
            .unwrap()
    };
    let mut bob_phone = Client::connect(&world.gateway(0), &bob).await;
    let summary = channel_in(&bob_phone);
    assert_eq!(summary["unread_count"], 3, "{summary}");
    assert_eq!(summary["last_message_id"], sent[2].to_string());
    assert_eq!(summary["last_read_id"], Value::Null);
    // Her own messages are not unread for the sender.
    assert_eq!(channel_in(&ann_1)["unread_count"], 0);

    let mut bob_laptop = Client::connect(&world.gateway(1), &bob).await;
    let ack_path = format!("/api/v1/channels/{room}/messages/{}/ack", sent[1]);
    let (status, _) = world
        .edge_call(1, Method::POST, &ack_path, &bob, None)
        .await;
    assert_eq!(status, 204);
    let receipt = json!({"channel_id": room.to_string(), "user_id": bob.id.to_string(),
                         "message_id": sent[1].to_string()});
    // Bob's devices clear the badge; Ann, in a small channel, sees that Bob has read it.
    assert_eq!(bob_phone.next_event("MESSAGE_ACK").await["d"], receipt);
    assert_eq!(bob_laptop.next_event("MESSAGE_ACK").await["d"], receipt);
    assert_eq!(ann_1.next_event("MESSAGE_ACK").await["d"], receipt);

    // The marker never moves back.
    let older = format!("/api/v1/channels/{room}/messages/{}/ack", sent[0]);
    world.edge_call(0, Method::POST, &older, &bob, None).await;
    let bob_tablet = Client::connect(&world.gateway(0), &bob).await;
    let summary = channel_in(&bob_tablet);
    assert_eq!(summary["unread_count"], 1, "{summary}");
    assert_eq!(summary["last_read_id"], sent[1].to_string());
}

#[tokio::test]
async fn each_device_catches_up_from_its_own_cursor_after_more_than_the_stream_keeps() {
    let world = World::start(1, &["--stream-max-messages=50", "--send-rate=1000/1s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut phone = Client::connect(&world.gateway(0), &bob).await;
    let mut laptop = Client::connect(&world.gateway(0), &bob).await;

    let mut sent = Vec::new();
    let post = format!("/api/v1/channels/{room}/messages");
    let send = async |i: usize| {
        let body = json!({"content": format!("m{i}"), "nonce": format!("n{i}")});
        let (status, message) = world
            .edge_call(0, Method::POST, &post, &ann, Some(body))
            .await;
        assert_eq!(status, 200, "{message}");
        id_of(&message["id"])
    };
    for i in 0..5 {
        sent.push(send(i).await);
    }
    // The laptop saw two messages before it went offline, the phone all five.
    assert_eq!(laptop.messages(2).await, ["m0", "m1"]);
    drop(laptop);
    assert_eq!(phone.messages(5).await.len(), 5);
    let (phone_session, phone_seq) = (phone.session_id(), phone.seq);
    drop(phone);

    for i in 5..125 {
        sent.push(send(i).await);
    }
    world.persisted().await;

    // The stream no longer holds the gap: the resume is refused...
    let (mut socket, _) = Client::open(&world.gateway(0)).await;
    crate::support::send_json(
        &mut socket,
        json!({"op": 6, "d": {"token": bob.token, "session_id": phone_session, "seq": phone_seq}}),
    )
    .await;
    let invalid = crate::support::next_json(&mut socket).await.unwrap();
    assert_eq!(invalid["op"], 9, "{invalid}");
    assert_eq!(closed(&mut socket).await, Some(4007));

    // ...so each device identifies and reads history after its own cursor.
    for (cursor, from) in [(sent[4], 5), (sent[1], 2)] {
        let device = Client::connect(&world.gateway(0), &bob).await;
        let channel = device.ready["d"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == room.to_string())
            .cloned()
            .unwrap();
        assert_eq!(channel["last_message_id"], sent[124].to_string());
        let caught_up = world.messages_after(0, &bob, room, cursor).await;
        assert_eq!(
            caught_up,
            sent[from..],
            "each missed message once, in order"
        );
    }
}

#[tokio::test]
async fn history_includes_what_the_persister_has_not_written_yet() {
    let mut world = World::start(1, &["--send-rate=1000/1s"]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    world.stop_persister();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut sent = Vec::new();
    for i in 0..5 {
        let ack = ann_1.send(room, &format!("m{i}"), &format!("n{i}")).await;
        sent.push(id_of(&ack["d"]["message"]["id"]));
    }
    // Edits and deletes look messages up the same way, so they work before the store has them.
    let edited = ann_1
        .request(
            json!({"op": 21, "d": {"channel_id": room, "message_id": sent[0],
                                        "content": "m0, edited", "nonce": "e"}}),
        )
        .await;
    assert_eq!(edited["op"], 24, "{edited}");
    let deleted = ann_1
        .request(json!({"op": 22, "d": {"channel_id": room, "message_id": sent[4], "nonce": "d"}}))
        .await;
    assert_eq!(deleted["op"], 24, "{deleted}");

    let expected: Vec<Snowflake> = sent[..4].iter().rev().copied().collect();
    let page = history(&world, &ann, room, "").await;
    assert_eq!(page_ids(&page), expected);
    assert_eq!(page["messages"][3]["content"], "m0, edited");

    // Once the persister is back and done, the store alone says the same.
    world.start_persister(&[]).await;
    world.persisted().await;
    let page = history(&world, &ann, room, "").await;
    assert_eq!(page_ids(&page), expected);
    assert_eq!(page["messages"][3]["content"], "m0, edited");
}
