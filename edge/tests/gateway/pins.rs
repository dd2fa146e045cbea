//! Pins through real edges, a real persister and the real CQL store: CHANNEL_PINS_UPDATE and the
//! system message live, in history and on resume; the pins list; who may pin; the limit.

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, World};

fn id_of(value: &Value) -> Snowflake {
    value.as_str().unwrap().parse().unwrap()
}

async fn call(world: &World, edge: usize, who: &User, method: Method, path: &str) -> (u16, Value) {
    world.edge_call(edge, method, path, who, None).await
}

async fn pins(world: &World, edge: usize, who: &User, channel: Snowflake) -> Vec<Snowflake> {
    let (status, body) = call(
        world,
        edge,
        who,
        Method::GET,
        &format!("/api/v1/channels/{channel}/pins"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| id_of(&m["id"]))
        .collect()
}

fn pin_path(channel: Snowflake, message: Snowflake) -> String {
    format!("/api/v1/channels/{channel}/pins/{message}")
}

/// The system message "… pinned a message" of the latest history page that references `pinned`.
async fn pin_notice(world: &World, who: &User, channel: Snowflake, pinned: Snowflake) -> Value {
    let path = format!("/api/v1/channels/{channel}/messages?limit=10");
    let (status, body) = call(world, 1, who, Method::GET, &path).await;
    assert_eq!(status, 200, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == 6 && m["message_reference"]["message_id"] == pinned.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no pin notice in history: {body}"))
}

#[tokio::test]
async fn any_member_of_a_group_channel_pins_and_everyone_sees_it_live_in_history_and_on_resume() {
    let world = World::start(2, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob, eve) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("eve").await,
    );
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;
    let sent = ann_1.send(room, "The plan:\nmeet at six", "a-1").await;
    let message = id_of(&sent["d"]["message"]["id"]);
    bob_1.next_event("MESSAGE_CREATE").await;
    let seq_before = bob_1.seq;

    // Someone outside the channel cannot pin in it, nor list its pins.
    let (status, _) = call(&world, 0, &eve, Method::PUT, &pin_path(room, message)).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &world,
        0,
        &eve,
        Method::GET,
        &format!("/api/v1/channels/{room}/pins"),
    )
    .await;
    assert_eq!(status, 404);

    // Ann pins it: bob, on the other edge, is told, and sees "ann pinned a message".
    let (status, body) = call(&world, 0, &ann, Method::PUT, &pin_path(room, message)).await;
    assert_eq!(status, 204, "{body}");
    let update = bob_1.next_event("CHANNEL_PINS_UPDATE").await;
    assert_eq!(update["d"]["channel_id"], room.to_string());
    assert_eq!(update["d"]["message_id"], message.to_string());
    assert_eq!(update["d"]["pinned"], true);
    assert!(
        update["d"]["last_pin_timestamp"].as_u64().is_some(),
        "{update}"
    );
    assert!(
        update["s"].as_u64().is_some(),
        "pins ride the chat stream: {update}"
    );
    let notice = bob_1.next_event("MESSAGE_CREATE").await;
    assert_eq!(notice["d"]["type"], 6, "{notice}");
    assert_eq!(notice["d"]["author_id"], ann.id.to_string());
    assert_eq!(notice["d"]["content"], "");
    assert_eq!(
        notice["d"]["message_reference"]["message_id"],
        message.to_string()
    );
    assert_eq!(notice["d"]["referenced_message"]["content"], "The plan:");
    let notice_id = id_of(&notice["d"]["id"]);
    // Pinning it again changes nothing.
    let (status, _) = call(&world, 0, &ann, Method::PUT, &pin_path(room, message)).await;
    assert_eq!(status, 204);

    // The pins list and history show it, before and after the store has it.
    for _ in [(), ()] {
        assert_eq!(pins(&world, 1, &bob, room).await, [message]);
        let shown = pin_notice(&world, &bob, room, message).await;
        assert_eq!(id_of(&shown["id"]), notice_id);
        assert_eq!(shown["author_id"], ann.id.to_string());
        world.persisted().await;
    }

    // A system message is neither pinned nor edited nor replied to.
    let (status, body) = call(&world, 0, &ann, Method::PUT, &pin_path(room, notice_id)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("validation_failed")),
        "{body}"
    );
    let (status, _) = world
        .edge_call(
            0,
            Method::PATCH,
            &format!("/api/v1/channels/{room}/messages/{notice_id}"),
            &ann,
            Some(json!({"content": "I did not"})),
        )
        .await;
    assert_eq!(status, 403);
    let refused = ann_1
        .request(
            json!({"op": 20, "d": {"channel_id": room, "content": "x", "nonce": "a-r",
                                       "message_reference": {"message_id": notice_id}}}),
        )
        .await;
    assert_eq!(refused["op"], 25, "{refused}");

    // Bob (any member, as on Discord) unpins it.
    let (status, _) = call(&world, 1, &bob, Method::DELETE, &pin_path(room, message)).await;
    assert_eq!(status, 204);
    // (Ann's socket saw the pin first.)
    assert_eq!(
        ann_1.next_event("CHANNEL_PINS_UPDATE").await["d"]["pinned"],
        true
    );
    let update = ann_1.next_event("CHANNEL_PINS_UPDATE").await;
    assert_eq!(update["d"]["pinned"], false);
    assert!(update["d"]["last_pin_timestamp"].is_null(), "{update}");
    assert!(pins(&world, 0, &ann, room).await.is_empty());
    world.persisted().await;
    assert!(pins(&world, 0, &ann, room).await.is_empty());

    // Bob's session, resumed from before the pin, replays the pin, its notice and the unpin.
    let session = bob_1.session_id();
    drop(bob_1);
    let (_bob_2, replayed) = Client::resume(&world.gateway(0), &bob, &session, seq_before).await;
    let names: Vec<&str> = replayed
        .iter()
        .filter_map(|e| e["t"].as_str())
        .filter(|t| *t == "CHANNEL_PINS_UPDATE" || *t == "MESSAGE_CREATE")
        .collect();
    assert_eq!(
        names,
        [
            "CHANNEL_PINS_UPDATE",
            "MESSAGE_CREATE",
            "CHANNEL_PINS_UPDATE"
        ],
        "{replayed:?}"
    );
}

#[tokio::test]
async fn a_channel_holds_fifty_pins_and_a_deleted_message_leaves_the_list() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let ann = world.sign_up("ann").await;
    let room = world.channel(&ann, "room", &[]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut sent = Vec::new();
    for n in 0..51 {
        let ack = ann_1.send(room, &format!("m{n}"), &format!("a-{n}")).await;
        sent.push(id_of(&ack["d"]["message"]["id"]));
    }
    for (n, message) in sent.iter().take(50).enumerate() {
        let (status, body) = call(&world, 0, &ann, Method::PUT, &pin_path(room, *message)).await;
        assert_eq!(status, 204, "pin {n}: {body}");
        if n == 25 {
            world.persisted().await;
        }
    }
    let (status, body) = call(&world, 0, &ann, Method::PUT, &pin_path(room, sent[50])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("limit_reached")),
        "{body}"
    );
    let listed = pins(&world, 0, &ann, room).await;
    assert_eq!(listed.len(), 50);
    assert_eq!(listed[0], sent[49], "the most recently pinned comes first");

    // A pinned message deleted leaves the list, which makes room for another.
    let (status, _) = world
        .edge_call(
            0,
            Method::DELETE,
            &format!("/api/v1/channels/{room}/messages/{}", sent[0]),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(pins(&world, 0, &ann, room).await.len(), 49);
    let (status, body) = call(&world, 0, &ann, Method::PUT, &pin_path(room, sent[50])).await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn in_a_server_pinning_takes_manage_messages_and_a_hidden_channel_is_unknown() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let (guild, general) = world.guild(&ann, "Club").await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let sent = ann_1.send(general, "rules: be kind", "a-1").await;
    let message = id_of(&sent["d"]["message"]["id"]);

    // Bob, a plain member, may read the pins but not pin or unpin.
    let (status, body) = call(&world, 0, &bob, Method::PUT, &pin_path(general, message)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _) = call(&world, 0, &ann, Method::PUT, &pin_path(general, message)).await;
    assert_eq!(status, 204, "the owner pins");
    assert_eq!(pins(&world, 0, &bob, general).await, [message]);
    let (status, _) = call(&world, 0, &bob, Method::DELETE, &pin_path(general, message)).await;
    assert_eq!(status, 403);

    // With a role that has MANAGE_MESSAGES he may.
    let moderators = world
        .role(guild, &ann, "mods", Permissions::MANAGE_MESSAGES)
        .await;
    world.set_role(guild, &ann, &bob, moderators, true).await;
    let mut unpinned = false;
    for _ in 0..100 {
        let (status, _) = call(&world, 0, &bob, Method::DELETE, &pin_path(general, message)).await;
        if status == 204 {
            unpinned = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(unpinned, "a moderator could not unpin");
    assert!(pins(&world, 0, &ann, general).await.is_empty());

    // A channel hidden from @everyone is unknown to bob, pins and all.
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let secret = world
        .guild_channel(
            guild,
            &ann,
            "secret",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": view}]}),
        )
        .await;
    assert_eq!(ann_1.channel_event(secret).await, "CHANNEL_CREATE");
    let hidden = ann_1.send(secret, "secret", "a-2").await;
    let hidden_id = id_of(&hidden["d"]["message"]["id"]);
    for method in [Method::PUT, Method::DELETE] {
        let (status, _) = call(&world, 0, &bob, method, &pin_path(secret, hidden_id)).await;
        assert_eq!(status, 404);
    }
    let (status, _) = call(
        &world,
        0,
        &bob,
        Method::GET,
        &format!("/api/v1/channels/{secret}/pins"),
    )
    .await;
    assert_eq!(status, 404);
}
