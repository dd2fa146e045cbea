//! Presence follows consent: a user's presence reaches someone only through a channel the user
//! chose to share with them (a group channel they are in, a DM they opened), never across a
//! block, in READY, pushed PRESENCE_UPDATE and `GET /api/v1/presences` alike. Each of the ways it
//! used to leak to a stranger is tried here.

use std::time::Duration;

use proto::Snowflake;
use serde_json::json;

use crate::support::{Client, User, WAIT, World};
use crate::world::{
    EDGE, QUIET, member_presences, next_update, start_presence, status_of, statuses, updates,
};

/// What a stranger is told of someone: offline, never seen.
fn nothing_about(user: &User) -> serde_json::Value {
    json!({"user_id": user.id.to_string(), "status": "offline", "last_seen": null})
}

async fn set_status(client: &mut Client, status: &str) {
    client
        .send_raw(json!({"op": 3, "d": {"status": status}}))
        .await;
}

#[tokio::test]
async fn a_stranger_who_opens_a_dm_sees_no_presence_until_the_other_side_opens_it_too() {
    let world = World::start(1, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (mal, vic) = (world.sign_up("mal").await, world.sign_up("vic").await);
    let edge = world.edges[0].port;
    let mut vic_1 = Client::connect(&world.gateway(0), &vic).await;
    world.dm(&mal, &vic).await;

    let mut mal_1 = Client::connect(&world.gateway(0), &mal).await;
    assert_eq!(mal_1.ready["d"]["presences"], json!([]));
    assert_eq!(status_of(edge, &mal, &vic).await, nothing_about(&vic));
    set_status(&mut vic_1, "dnd").await;
    let pushed = updates(&mut mal_1, QUIET * 2).await;
    assert!(statuses(&pushed, &vic).is_empty(), "{pushed:?}");
    // Mal opened it: vic may see mal.
    testkit::eventually("vic to see mal", WAIT, || async {
        (status_of(edge, &vic, &mal).await["status"] == "online").then_some(())
    })
    .await;

    // Vic opens it too (the client does when vic replies or clicks into it): mal sees vic at
    // once, then live, and in READY from then on.
    world.dm(&vic, &mal).await;
    assert_eq!(next_update(&mut mal_1, &vic, WAIT).await["status"], "dnd");
    assert_eq!(status_of(edge, &mal, &vic).await["status"], "dnd");
    let mal_2 = Client::connect(&world.gateway(0), &mal).await;
    assert_eq!(mal_2.ready["d"]["presences"][0]["status"], "dnd");
}

#[tokio::test]
async fn adding_someone_to_a_channel_of_ones_own_to_watch_them_is_refused() {
    let world = World::start(1, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (mal, vic) = (world.sign_up("mal").await, world.sign_up("vic").await);
    let edge = world.edges[0].port;
    let _vic_1 = Client::connect(&world.gateway(0), &vic).await;
    let (_, room) = world
        .call(
            reqwest::Method::POST,
            "/api/v1/channels",
            Some(&mal.token),
            json!({"name": "watching you"}),
        )
        .await;
    let room: Snowflake = room["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/api/v1/channels/{room}/members");
    let add = |who: &User| {
        world.call(
            reqwest::Method::POST,
            &path,
            Some(&mal.token),
            json!({"username": who.name}),
        )
    };
    let (status, body) = add(&vic).await;
    assert_eq!(
        (status, &body["code"]),
        (403, &json!("consent_required")),
        "{body}"
    );
    let mut mal_1 = Client::connect(&world.gateway(0), &mal).await;
    assert_eq!(mal_1.ready["d"]["presences"], json!([]));
    assert_eq!(status_of(edge, &mal, &vic).await, nothing_about(&vic));

    // With vic's consent (adds from anyone) the channel is shared, and so is vic's presence.
    world.allow_adds(&vic).await;
    assert_eq!(add(&vic).await.0, 201);
    assert_eq!(
        next_update(&mut mal_1, &vic, WAIT).await["status"],
        "online"
    );
}

/// Sends in `channel` until the session refuses: the block has reached it.
async fn until_refused(client: &mut Client, channel: Snowflake) -> serde_json::Value {
    for attempt in 0.. {
        let answer = client
            .send(channel, "still there?", &format!("probe-{attempt}"))
            .await;
        if answer["op"] == 25 {
            return answer;
        }
        assert!(attempt < 50, "the DM never closed: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn a_block_stops_presence_both_ways_at_once_and_closes_their_dm_to_sends() {
    let world = World::start(2, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let dm = world.dm(&ann, &bob).await;
    world.dm(&bob, &ann).await;
    let edge = world.edges[0].port;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;
    assert_eq!(bob_1.ready["d"]["presences"][0]["status"], "online");
    assert_eq!(
        next_update(&mut ann_1, &bob, WAIT).await["status"],
        "online"
    );

    let (status, _) = world
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/@me/relationships/{}", bob.id),
            Some(&ann.token),
            json!({"type": 2}),
        )
        .await;
    assert_eq!(status, 204);
    let added = ann_1.next_event("RELATIONSHIP_ADD").await;
    assert_eq!(added["d"]["id"], bob.id.to_string());
    // The DM refuses sends both ways, saying why; the group channel still carries them.
    let refused = until_refused(&mut bob_1, dm).await;
    assert_eq!(refused["d"]["code"], "consent_required", "{refused}");
    assert_eq!(
        until_refused(&mut ann_1, dm).await["d"]["code"],
        "consent_required"
    );
    let (status, body) = world
        .edge_call(
            1,
            reqwest::Method::POST,
            &format!("/api/v1/channels/{dm}/messages"),
            &bob,
            Some(json!({"content": "over REST?"})),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (403, &json!("consent_required")),
        "{body}"
    );
    assert_eq!(bob_1.send(room, "hello room", "room-1").await["op"], 24);

    // No presence either way: not pushed, not over REST, not in a new session.
    set_status(&mut ann_1, "dnd").await;
    set_status(&mut bob_1, "idle").await;
    let to_bob = updates(&mut bob_1, QUIET * 2).await;
    assert!(statuses(&to_bob, &ann).is_empty(), "{to_bob:?}");
    let to_ann = updates(&mut ann_1, QUIET).await;
    assert!(statuses(&to_ann, &bob).is_empty(), "{to_ann:?}");
    assert_eq!(status_of(edge, &bob, &ann).await, nothing_about(&ann));
    assert_eq!(status_of(edge, &ann, &bob).await, nothing_about(&bob));
    let mut bob_2 = Client::connect(&world.gateway(0), &bob).await;
    assert_eq!(bob_2.ready["d"]["presences"], json!([]));
    assert_eq!(member_presences(&mut bob_2, room).await, json!([]));

    // Unblocked: each sees the other at once, and the DM takes sends again.
    let (status, _) = world
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/@me/relationships/{}", bob.id),
            Some(&ann.token),
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(next_update(&mut bob_1, &ann, WAIT).await["status"], "dnd");
    // (Bob's second session is online, which outranks his first one's idle.)
    assert_eq!(
        next_update(&mut ann_1, &bob, WAIT).await["status"],
        "online"
    );
    assert_eq!(bob_1.send(dm, "friends again", "dm-1").await["op"], 24);
}
