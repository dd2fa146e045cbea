//! Presence as users see it: across devices and edges, through a killed edge, invisible, a quick
//! reconnect, and a Redis outage.

use std::time::Duration;

use serde_json::json;
use shared::testing::{self, RedisServer};

use crate::support::{Client, User, WAIT, World};
use crate::world::{
    EDGE, EdgeProcess, GRACE, QUIET, member_presences, next_update, now_ms, presences,
    start_presence, status_of, statuses, updates, updates_about,
};

#[tokio::test]
async fn a_user_is_online_while_either_device_lives_and_offline_with_last_seen_after_both() {
    let mut world = World::start(0, &[]).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    world.add_edge(1, EDGE).await;
    world.add_edge(2, EDGE).await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    let room = world.channel(&ann, "room", &[&bob]).await;
    let edge = world.edges[0].port;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    // READY carries no group co-members' presence (it stays small however many channels one is
    // in): it comes with the members, when a client lists them.
    assert_eq!(bob_1.ready["d"]["presences"], json!([]));
    assert_eq!(
        member_presences(&mut bob_1, room).await,
        json!([{"user_id": ann.id.to_string(), "status": "offline", "last_seen": null}])
    );

    let phone = Client::connect(&world.gateway(0), &ann).await;
    assert_eq!(
        next_update(&mut bob_1, &ann, WAIT).await["status"],
        "online"
    );
    let laptop = Client::connect(&world.gateway(1), &ann).await;
    // A new session learns it with the members, on either edge.
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;
    assert_eq!(
        member_presences(&mut bob_2, room).await,
        json!([{"user_id": ann.id.to_string(), "status": "online", "last_seen": null}])
    );

    drop(phone);
    let seen = updates(&mut bob_1, GRACE + Duration::from_secs(1)).await;
    assert!(statuses(&seen, &ann).is_empty(), "{seen:?}");
    assert_eq!(status_of(edge, &bob, &ann).await["status"], "online");

    let left = now_ms();
    drop(laptop);
    let offline = next_update(&mut bob_1, &ann, GRACE + Duration::from_secs(3)).await;
    assert_eq!(offline["status"], "offline", "{offline}");
    let last_seen = offline["last_seen"].as_i64().expect("a last-seen time");
    assert!(
        (left - 1000..=now_ms()).contains(&last_seen),
        "{last_seen} vs {left}"
    );
    assert_eq!(status_of(edge, &bob, &ann).await, offline);

    // Someone who shares nothing with ann learns nothing about her, not even when she was seen.
    let _cat_1 = Client::connect(&world.gateway(0), &cat).await;
    assert_eq!(
        status_of(edge, &cat, &ann).await,
        json!({"user_id": ann.id.to_string(), "status": "offline", "last_seen": null})
    );
    // Bad requests say why.
    let response = reqwest::Client::new()
        .get(world.edges[0].url("/api/v1/presences?user_ids=abc"))
        .bearer_auth(&cat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = reqwest::Client::new()
        .get(world.edges[0].url("/api/v1/presences?user_ids=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let too_many: Vec<&User> = std::iter::repeat_n(&ann, 101).collect();
    // The same id 101 times is one id.
    assert_eq!(presences(edge, &cat, &too_many).await.0, 200);
    let ids: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    let response = reqwest::Client::new()
        .get(world.edges[0].url(&format!("/api/v1/presences?user_ids={}", ids.join(","))))
        .bearer_auth(&cat.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_killed_edges_users_go_offline_after_its_expiry_unless_connected_elsewhere() {
    let mut world = World::start(0, &[]).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    world.add_edge(1, EDGE).await;
    let mut doomed = EdgeProcess::start(&world, 9, EDGE).await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    world.channel(&ann, "room", &[&bob, &cat]).await;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let _ann_1 = Client::connect(&doomed.gateway(), &ann).await;
    let _cat_phone = Client::connect(&doomed.gateway(), &cat).await;
    let _cat_laptop = Client::connect(&world.gateway(0), &cat).await;
    let before = updates_about(&mut bob_1, &[&ann, &cat]).await;
    assert_eq!(statuses(&before, &ann), ["online"]);
    assert_eq!(statuses(&before, &cat), ["online"]);

    doomed.kill();
    // Ann's only edge is gone: she goes offline once its deadline passes (the expiry, or two if
    // presence fell behind on a busy machine). Cat, also on edge 0, stays online.
    let mut after = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while statuses(&after, &ann).is_empty() && tokio::time::Instant::now() < deadline {
        after.extend(updates(&mut bob_1, Duration::from_millis(500)).await);
    }
    after.extend(updates(&mut bob_1, QUIET).await);
    assert_eq!(statuses(&after, &ann), ["offline"], "{after:?}");
    assert!(statuses(&after, &cat).is_empty(), "{after:?}");
    assert_eq!(
        status_of(world.edges[0].port, &bob, &cat).await["status"],
        "online"
    );
}

#[tokio::test]
async fn an_invisible_user_looks_offline_to_others_but_still_receives_everything() {
    let world = World::start(2, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(1), &ann).await;
    assert_eq!(
        next_update(&mut bob_1, &ann, WAIT).await["status"],
        "online"
    );
    assert_eq!(
        next_update(&mut ann_1, &ann, WAIT).await["status"],
        "online"
    );

    ann_1
        .send_raw(json!({"op": 3, "d": {"status": "invisible"}}))
        .await;
    let seen_by_bob = next_update(&mut bob_1, &ann, WAIT).await;
    assert_eq!(seen_by_bob["status"], "offline", "{seen_by_bob}");
    assert!(seen_by_bob["last_seen"].is_i64(), "{seen_by_bob}");
    // Her own sessions see the truth.
    assert_eq!(
        next_update(&mut ann_1, &ann, WAIT).await["status"],
        "invisible"
    );
    let edge = world.edges[0].port;
    assert_eq!(status_of(edge, &bob, &ann).await["status"], "offline");
    assert_eq!(status_of(edge, &ann, &ann).await["status"], "invisible");
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;
    assert_eq!(
        member_presences(&mut bob_2, room).await[0]["status"],
        "offline"
    );

    // Invisible is not absent: messages still arrive.
    bob_1.send(room, "are you there?", "n-1").await;
    assert_eq!(ann_1.messages(1).await, ["are you there?"]);

    // Leaving while invisible is no news to anyone.
    drop(ann_1);
    let seen = updates(&mut bob_1, GRACE + Duration::from_secs(1)).await;
    assert!(statuses(&seen, &ann).is_empty(), "{seen:?}");
}

#[tokio::test]
async fn a_quick_reconnect_shows_no_flicker_and_status_changes_reach_other_edges() {
    let world = World::start(2, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    world.dm(&ann, &bob).await;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let ann_1 = Client::connect(&world.gateway(1), &ann).await;
    assert_eq!(
        next_update(&mut bob_1, &ann, WAIT).await["status"],
        "online"
    );

    // Her network blips: the socket dies and she is back, on the other edge, at once.
    drop(ann_1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ann_2 = Client::connect(&world.gateway(0), &ann).await;
    let seen = updates(&mut bob_1, GRACE + Duration::from_secs(1)).await;
    assert!(statuses(&seen, &ann).is_empty(), "flicker: {seen:?}");

    ann_2
        .send_raw(json!({"op": 3, "d": {"status": "dnd"}}))
        .await;
    assert_eq!(next_update(&mut bob_1, &ann, WAIT).await["status"], "dnd");
    ann_2
        .send_raw(json!({"op": 3, "d": {"status": "idle"}}))
        .await;
    assert_eq!(next_update(&mut bob_1, &ann, WAIT).await["status"], "idle");
    // An active device outweighs an idle one.
    let _ann_3 = Client::connect(&world.gateway(1), &ann).await;
    assert_eq!(
        next_update(&mut bob_1, &ann, WAIT).await["status"],
        "online"
    );

    // A status chosen in the profile reaches every device and everyone else.
    let (status, body) = world
        .call(
            reqwest::Method::PATCH,
            "/api/v1/users/@me",
            Some(&ann.token),
            json!({"status": "dnd"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_update(&mut bob_1, &ann, WAIT).await["status"], "dnd");
}

#[tokio::test]
async fn sharing_a_channel_mid_session_shows_presence_at_once_and_then_live() {
    let world = World::start(2, EDGE).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(1), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    assert_eq!(bob_1.ready["d"]["presences"], json!([]));

    // Ann adds bob: his session gets the channel, then ann's presence as it is now; hers gets
    // the news of bob, then his presence.
    world.add_member(&ann, room, &bob).await;
    let created = bob_1.next_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], json!(room.to_string()));
    // (Ann's status has not changed since bob connected: this is the snapshot, not news.)
    assert_eq!(
        next_update(&mut bob_1, &ann, WAIT).await["status"],
        "online"
    );
    ann_1.next_event("CHANNEL_MEMBER_ADD").await;
    assert_eq!(
        next_update(&mut ann_1, &bob, WAIT).await["status"],
        "online"
    );

    // From then on, changes arrive as they happen.
    ann_1
        .send_raw(json!({"op": 3, "d": {"status": "dnd"}}))
        .await;
    assert_eq!(next_update(&mut bob_1, &ann, WAIT).await["status"], "dnd");
    bob_1
        .send_raw(json!({"op": 3, "d": {"status": "idle"}}))
        .await;
    assert_eq!(next_update(&mut ann_1, &bob, WAIT).await["status"], "idle");
}

#[tokio::test]
async fn presence_is_pushed_only_for_channels_up_to_the_size_limit() {
    let mut world = World::start(0, &[]).await;
    let _presence = start_presence(&world, &world.stack.redis_url.clone()).await;
    let mut args = EDGE.to_vec();
    args.push("--presence-max-members=2");
    world.add_edge(1, &args).await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    // Three members: above the limit. The DM (two) is within it.
    world.channel(&ann, "room", &[&bob, &cat]).await;
    world.dm(&ann, &bob).await;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    assert_eq!(
        bob_1.ready["d"]["presences"],
        json!([{"user_id": ann.id.to_string(), "status": "offline", "last_seen": null}])
    );
    let _cat_1 = Client::connect(&world.gateway(0), &cat).await;
    let _ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let seen = updates_about(&mut bob_1, &[&ann]).await;
    assert_eq!(statuses(&seen, &ann), ["online"]);
    assert!(statuses(&seen, &cat).is_empty(), "{seen:?}");
    // The client asks when it opens the big channel.
    assert_eq!(
        status_of(world.edges[0].port, &bob, &cat).await["status"],
        "online"
    );
}

#[tokio::test]
async fn with_redis_down_chat_goes_on_presence_says_unknown_and_recovers_when_it_returns() {
    let mut world = World::start(0, &[]).await;
    let mut redis = RedisServer::start(&world.stack).await;
    let _presence = start_presence(&world, &redis.url()).await;
    world.add_edge(1, EDGE).await;
    world.add_edge(2, EDGE).await;
    let (ann, bob, cat) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("cat").await,
    );
    let room = world.channel(&ann, "room", &[&bob, &cat]).await;
    let edge = world.edges[0].port;

    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(1), &ann).await;
    let cat_1 = Client::connect(&world.gateway(1), &cat).await;
    let seen = updates_about(&mut bob_1, &[&ann, &cat]).await;
    assert_eq!(statuses(&seen, &ann), ["online"]);
    assert_eq!(statuses(&seen, &cat), ["online"]);

    redis.stop();
    // Chat does not notice.
    assert_eq!(bob_1.send(room, "still here", "n-1").await["op"], 24);
    assert_eq!(ann_1.messages(1).await, ["still here"]);
    assert_eq!(ann_1.send(room, "me too", "n-2").await["op"], 24);
    // Every member's every session hears each message, the sender's own included.
    assert_eq!(bob_1.messages(2).await, ["still here", "me too"]);
    // Presence says it does not know rather than something wrong.
    testing::eventually(
        "presence to say unknown",
        Duration::from_secs(10),
        || async { (status_of(edge, &bob, &ann).await["status"] == "unknown").then_some(()) },
    )
    .await;
    // New sessions still start.
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;
    let listed = member_presences(&mut bob_2, room).await;
    let unknown: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(unknown, ["unknown", "unknown"]);
    // Cat leaves while presence cannot record it.
    drop(cat_1);

    // Redis returns empty; the edges resync, and what bob was shown is corrected.
    redis.resume().await;
    testing::eventually("presence to recover", Duration::from_secs(15), || async {
        (status_of(edge, &bob, &ann).await["status"] == "online").then_some(())
    })
    .await;
    // Cat's session is gone (a session list an edge sent before cat left may still be applied
    // after Redis returned, and then cat's end: offline after the grace).
    testing::eventually("cat to show offline", GRACE * 4, || async {
        (status_of(edge, &bob, &cat).await["status"] == "offline").then_some(())
    })
    .await;
    // Bob is told (after any "online" that stale list republished).
    until_offline(&mut bob_1, &cat).await;

    // Leaving is seen again (after any "online" the recovery itself republished).
    drop(ann_1);
    until_offline(&mut bob_1, &ann).await;
}

/// Reads `user`'s presence updates until one says offline; only "online" may come before.
async fn until_offline(client: &mut Client, user: &User) {
    loop {
        let update = next_update(client, user, GRACE + Duration::from_secs(8)).await;
        match update["status"].as_str() {
            Some("offline") => break,
            Some("online") => {}
            _ => panic!("unexpected {update}"),
        }
    }
}
