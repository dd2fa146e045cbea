//! Chatting across edges: delivery to every member's every device, once, and to nobody else.

use serde_json::json;

use crate::support::{Client, World};

#[tokio::test]
async fn members_on_different_edges_chat_in_a_channel_and_a_dm_and_outsiders_hear_nothing() {
    let world = World::start(2, &[]).await;
    let (ann, bob, cat, dan) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
        world.sign_up("dan").await,
    );
    let room = world.channel(&ann, "room", &[&bob, &cat]).await;
    let dm = world.dm(&ann, &bob).await;

    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;
    // Cat has two devices, one on each edge.
    let mut cat_phone = Client::connect(&world.gateway(0), &cat).await;
    let mut cat_laptop = Client::connect(&world.gateway(1), &cat).await;
    let mut dan_1 = Client::connect(&world.gateway(1), &dan).await;

    let ack = ann_1.send(room, "hello room", "n-1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(ack["d"]["message"]["content"], "hello room");
    let reply = bob_1.send(room, "hi ann", "n-2").await;
    assert_eq!(reply["op"], 24, "{reply}");
    bob_1.send(dm, "psst", "n-3").await;

    // The sender's own session hears its message too, like every member's every device.
    assert_eq!(ann_1.messages(3).await, ["hello room", "hi ann", "psst"]);
    assert_eq!(bob_1.messages(3).await, ["hello room", "hi ann", "psst"]);
    assert_eq!(cat_phone.messages(2).await, ["hello room", "hi ann"]);
    assert_eq!(cat_laptop.messages(2).await, ["hello room", "hi ann"]);
    cat_phone.no_messages().await;
    dan_1.no_messages().await;
}

#[tokio::test]
async fn a_retried_send_with_the_same_nonce_is_delivered_and_stored_once() {
    let world = World::start(1, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    let first = ann_1.send(room, "only once", "same-nonce").await;
    let retry = ann_1.send(room, "only once", "same-nonce").await;
    assert_eq!(first["op"], 24, "{first}");
    assert_eq!(retry["op"], 24, "{retry}");
    // The retry is answered with the message stored the first time.
    assert_eq!(first["d"]["message"]["id"], retry["d"]["message"]["id"]);
    ann_1.send(room, "after", "other-nonce").await;
    assert_eq!(bob_1.messages(2).await, ["only once", "after"]);
    bob_1.no_messages().await;
}

#[tokio::test]
async fn adding_and_removing_a_member_starts_and_stops_delivery_without_reconnecting() {
    let world = World::start(2, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    ann_1.send(room, "before bob", "n-1").await;
    world.add_member(&ann, room, &bob).await;
    // Bob gets the channel itself; ann gets the news of bob.
    let added = bob_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(added["d"]["id"], json!(room.to_string()));
    let joined = ann_1.next_event("CHANNEL_MEMBER_ADD").await;
    assert_eq!(
        joined["d"]["member"]["user"]["id"],
        json!(bob.id.to_string())
    );
    let welcome = ann_1.send(room, "welcome bob", "n-2").await;
    assert_eq!(welcome["op"], 24, "the send itself failed: {welcome}");
    assert_eq!(bob_1.messages(1).await, ["welcome bob"]);

    // Bob can send while a member...
    assert_eq!(bob_1.send(room, "thanks", "n-3").await["op"], 24);
    world.remove_member(&ann, room, &bob).await;
    bob_1.next_event("CHANNEL_MEMBER_REMOVE").await;
    ann_1.send(room, "bye bob", "n-4").await;
    bob_1.no_messages().await;
    // ...and not after.
    let refused = bob_1.send(room, "wait", "n-5").await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "unknown_channel");
}

#[tokio::test]
async fn typing_reaches_the_other_members_once_per_five_seconds() {
    let world = World::start(2, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    for _ in 0..3 {
        ann_1
            .send_raw(json!({"op": 23, "d": {"channel_id": room}}))
            .await;
    }
    let typing = bob_1.next_event("TYPING_START").await;
    assert_eq!(typing["d"]["user_id"], json!(ann.id.to_string()));
    assert_eq!(typing["s"], serde_json::Value::Null, "typing is not stored");
    ann_1.send(room, "done typing", "n-1").await;
    // The two extra notices were dropped: the next thing Bob sees is the message.
    let next = bob_1.next().await.unwrap();
    assert_eq!(next["t"], "MESSAGE_CREATE", "{next}");
}

#[tokio::test]
async fn signing_out_closes_that_sessions_sockets_on_every_edge_and_only_those() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    // A second device signed in separately: its own session, which must stay open.
    let (status, other) = world
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "ann", "password": "ann likes violet kettle drums"}),
        )
        .await;
    assert_eq!(status, 200, "{other}");
    let other_device = crate::support::User {
        token: other["access_token"].as_str().unwrap().to_owned(),
        ..ann.clone()
    };
    let room = world.channel(&ann, "room", &[]).await;
    let mut phone = Client::connect(&world.gateway(0), &ann).await;
    let mut laptop = Client::connect(&world.gateway(1), &other_device).await;

    let (status, body) = world
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/sign-out",
            Some(&ann.token),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    phone.next_event("SESSION_REVOKED").await;
    assert_eq!(phone.closed().await, Some(4004));
    // The other device's session was not signed out and still chats.
    assert_eq!(laptop.send(room, "still in", "n-1").await["op"], 24);
}

#[tokio::test]
async fn a_removed_member_and_a_deleted_channel_are_announced_once() {
    let world = World::start(1, &[]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let other = world.channel(&ann, "other", &[&bob]).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;

    world.remove_member(&ann, room, &bob).await;
    let (status, body) = world
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/channels/{other}"),
            Some(&ann.token),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // A later event on Bob's own inbox: both copies of each announcement were published before it.
    let (status, body) = world
        .call(
            reqwest::Method::PATCH,
            "/api/v1/users/@me",
            Some(&bob.token),
            json!({"bio": "after"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let mut seen = Vec::new();
    loop {
        let frame = bob_1.next().await.expect("Bob's USER_UPDATE");
        if frame["t"] == "USER_UPDATE" {
            break;
        }
        seen.push(frame["t"].as_str().unwrap_or_default().to_owned());
    }
    // The channel's copies come through the edge's channel dispatcher, which on a loaded machine
    // may trail the inbox: wait for both announcements, then for anything right behind them.
    let announced = |seen: &[String]| {
        ["CHANNEL_MEMBER_REMOVE", "CHANNEL_DELETE"]
            .iter()
            .all(|t| seen.iter().any(|s| s == t))
    };
    while !announced(&seen) {
        let frame = bob_1.next().await.expect("both announcements");
        seen.push(frame["t"].as_str().unwrap_or_default().to_owned());
    }
    while let Some(frame) = bob_1
        .next_within(std::time::Duration::from_millis(500))
        .await
    {
        seen.push(frame["t"].as_str().unwrap_or_default().to_owned());
    }
    seen.retain(|t| t.starts_with("CHANNEL_"));
    assert_eq!(seen, ["CHANNEL_MEMBER_REMOVE", "CHANNEL_DELETE"]);
}
