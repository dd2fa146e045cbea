//! Mentions through real edges, a real persister and the real CQL store: what a message
//! mentions (parsed by the edge, honoured as the author may), and each member's unread mention
//! count in READY, which follows edits and clears when they read.

use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, World};

fn id_of(value: &Value) -> Snowflake {
    value.as_str().unwrap().parse().unwrap()
}

/// `channel`'s read state in a READY that `user` gets from edge `edge` (a fresh session).
async fn read_state(world: &World, edge: usize, user: &User, channel: Snowflake) -> Value {
    let client = Client::connect(&world.gateway(edge), user).await;
    let ready = &client.ready["d"];
    let in_guilds = ready["guilds"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["channels"].as_array().cloned().unwrap_or_default());
    let all: Vec<Value> = ready["channels"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .chain(in_guilds)
        .collect();
    all.into_iter()
        .find(|c| id_of(&c["id"]) == channel)
        .unwrap_or_else(|| panic!("{channel} is not in READY: {ready}"))
}

/// Waits until the store has everything, then answers `channel`'s mention count in a fresh READY.
async fn mention_count(world: &World, edge: usize, user: &User, channel: Snowflake) -> u64 {
    world.persisted().await;
    let state = read_state(world, edge, user, channel).await;
    state["mention_count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no mention_count: {state}"))
}

/// Whom `message` (as a client receives it) mentions: each user object's id and username.
fn mentioned(message: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    message["mentions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (text(&m["id"]), text(&m["username"])))
        .collect()
}

/// The next MESSAGE_CREATE or MESSAGE_UPDATE (named `t`) of message `id`.
async fn event_of(client: &mut Client, t: &str, id: Snowflake) -> Value {
    loop {
        let event = client.next_event(t).await;
        if id_of(&event["d"]["id"]) == id {
            return event;
        }
    }
}

#[tokio::test]
async fn a_mention_raises_the_count_on_every_edge_follows_edits_and_reading_clears_it() {
    let world = World::start(2, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let (guild, general) = world.guild(&ann, "Club").await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_0 = Client::connect(&world.gateway(0), &ann).await;
    let mut ann_1 = Client::connect(&world.gateway(1), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    bob_1.send(general, "just chatting", "b-0").await;
    let sent = bob_1
        .send(
            general,
            &format!("hey <@{}>, look `<@{}>`", ann.id, bob.id),
            "b-1",
        )
        .await;
    assert_eq!(sent["op"], 24, "{sent}");
    let message = id_of(&sent["d"]["message"]["id"]);
    // Discord's user objects, named: live on both edges, and in the sender's ACK.
    let ann_named = vec![(ann.id.to_string(), "ann".to_owned())];
    for session in [&mut ann_0, &mut ann_1] {
        let created = event_of(session, "MESSAGE_CREATE", message).await;
        assert_eq!(mentioned(&created["d"]), ann_named, "{created}");
    }
    assert_eq!(mentioned(&sent["d"]["message"]), ann_named, "{sent}");

    // A fresh session on either edge shows one unread mention among two unread messages.
    for edge in [0, 1] {
        world.persisted().await;
        let state = read_state(&world, edge, &ann, general).await;
        assert_eq!(
            (
                state["unread_count"].as_u64(),
                state["mention_count"].as_u64()
            ),
            (Some(2), Some(1)),
            "{state}"
        );
    }
    assert_eq!(mention_count(&world, 0, &bob, general).await, 0);

    // History carries the mentions too.
    let (status, page) = world
        .edge_call(
            0,
            Method::GET,
            &format!("/api/v1/channels/{general}/messages?limit=5"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let shown = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| id_of(&m["id"]) == message)
        .cloned()
        .unwrap();
    assert_eq!(mentioned(&shown), ann_named, "{shown}");
    assert!(
        !page["authors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["username"] == "ann"),
        "only authors are in `authors`: {page}"
    );

    // Edits follow the text: no mention, then one again.
    let edit = |content: String, nonce: &'static str| {
        json!({"op": 21, "d": {"channel_id": general, "message_id": message,
                               "content": content, "nonce": nonce}})
    };
    let edited = bob_1.request(edit("hey all".into(), "b-2")).await;
    assert_eq!(edited["op"], 24, "{edited}");
    let updated = event_of(&mut ann_0, "MESSAGE_UPDATE", message).await;
    assert!(updated["d"]["mentions"].is_null(), "{updated}");
    let updated = event_of(&mut ann_1, "MESSAGE_UPDATE", message).await;
    assert!(updated["d"]["mentions"].is_null(), "{updated}");
    assert_eq!(mention_count(&world, 1, &ann, general).await, 0);
    let edited = bob_1
        .request(edit(format!("hey <@!{}>", ann.id), "b-3"))
        .await;
    assert_eq!(edited["op"], 24, "{edited}");
    assert_eq!(mentioned(&edited["d"]["message"]), ann_named, "{edited}");
    let updated = event_of(&mut ann_1, "MESSAGE_UPDATE", message).await;
    assert_eq!(mentioned(&updated["d"]), ann_named, "{updated}");
    assert_eq!(mention_count(&world, 1, &ann, general).await, 1);

    // Reading clears it, on every edge.
    let (status, _) = world
        .edge_call(
            0,
            Method::POST,
            &format!("/api/v1/channels/{general}/messages/{message}/ack"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(mention_count(&world, 0, &ann, general).await, 0);
    assert_eq!(mention_count(&world, 1, &ann, general).await, 0);
}

#[tokio::test]
async fn everyone_and_roles_count_only_where_the_author_may_and_only_for_who_sees_the_channel() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob, eve) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("eve").await,
    );
    let (guild, general) = world.guild(&ann, "Club").await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &eve).await;
    let helpers = world
        .role(guild, &ann, "helpers", Permissions::empty())
        .await;
    world.set_role(guild, &ann, &eve, helpers, true).await;
    let mut bob_0 = Client::connect(&world.gateway(0), &bob).await;
    let mut ann_0 = Client::connect(&world.gateway(0), &ann).await;

    // Bob has no MENTION_EVERYONE (@everyone's default), and helpers is not mentionable: his
    // @everyone and <@&helpers> mention nobody.
    let sent = bob_0
        .send(general, &format!("@everyone <@&{helpers}> wake up"), "b-1")
        .await;
    assert_eq!(sent["op"], 24, "{sent}");
    let message = &sent["d"]["message"];
    assert!(message["mention_everyone"].is_null(), "{message}");
    assert!(message["mention_roles"].is_null(), "{message}");
    assert_eq!(mention_count(&world, 0, &eve, general).await, 0);
    assert_eq!(mention_count(&world, 0, &ann, general).await, 0);

    // The owner's count for everyone (and eve's role) but not for the owner.
    let sent = ann_0
        .send(general, &format!("@here <@&{helpers}> meeting"), "a-1")
        .await;
    let message = &sent["d"]["message"];
    assert_eq!(message["mention_everyone"], true, "{message}");
    assert_eq!(message["mention_roles"], json!([helpers.to_string()]));
    assert_eq!(mention_count(&world, 0, &eve, general).await, 1);
    assert_eq!(mention_count(&world, 0, &bob, general).await, 1);
    assert_eq!(mention_count(&world, 0, &ann, general).await, 0);

    // Too many mentions in one message is refused, and says why.
    let many: String = (1..=21).map(|n| format!("<@{n}> ")).collect();
    let refused = bob_0.send(general, &many, "b-2").await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 20"),
        "{refused}"
    );

    // Eve is mentioned in a channel she cannot see: nothing of it reaches her READY.
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let secret = world
        .guild_channel(
            guild,
            &ann,
            "secret",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": view}]}),
        )
        .await;
    assert_eq!(ann_0.channel_event(secret).await, "CHANNEL_CREATE");
    ann_0
        .send(secret, &format!("<@{}> is not invited", eve.id), "a-2")
        .await;
    world.persisted().await;
    let eve_0 = Client::connect(&world.gateway(0), &eve).await;
    let total: u64 = eve_0.ready["d"]["guilds"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|c| assert_ne!(id_of(&c["id"]), secret))
        .map(|c| c["mention_count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total, 1, "only the owner's mention in general counts");
}

#[tokio::test]
async fn in_a_group_channel_anyone_mentions_everyone_and_each_other_member_counts_it() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let cat = world.sign_up("cat").await;
    let channel = world.channel(&ann, "book club", &[&bob, &cat]).await;
    let mut bobs = Client::connect(&world.gateway(0), &bob).await;

    // Bob is a plain member, with no role anywhere: his @here is honoured all the same.
    let sent = bobs.send(channel, "@here dinner?", "b-1").await;
    assert_eq!(sent["op"], 24, "{sent}");
    assert_eq!(sent["d"]["message"]["mention_everyone"], true, "{sent}");
    assert_eq!(mention_count(&world, 0, &ann, channel).await, 1);
    assert_eq!(mention_count(&world, 0, &cat, channel).await, 1);
    // Nobody's own message mentions them.
    assert_eq!(mention_count(&world, 0, &bob, channel).await, 0);

    // Sent over REST it is the same.
    let (status, posted) = world
        .edge_call(
            0,
            Method::POST,
            &format!("/api/v1/channels/{channel}/messages"),
            &cat,
            Some(json!({"content": "@everyone yes"})),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["mention_everyone"], true, "{posted}");
    assert_eq!(mention_count(&world, 0, &ann, channel).await, 2);
    assert_eq!(mention_count(&world, 0, &bob, channel).await, 1);
}

#[tokio::test]
async fn a_message_of_before_whose_mentions_are_ids_still_reads_and_is_named_in_history() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let (guild, general) = world.guild(&ann, "Club").await;
    world.join_guild(guild, &ann, &bob).await;

    // Bob's message as an edge wrote it before mentions were user objects: ids, in the chat
    // stream (so in what the persister, notify and search read).
    let old = Snowflake::from_parts(proto::clock::unix_ms(), 7, 0);
    let event = json!({"t": "MESSAGE_CREATE", "d": {
        "id": old, "channel_id": general, "author_id": bob.id,
        "content": format!("hi <@{}>", ann.id), "mentions": [ann.id]}});
    let nats = async_nats::connect(&world.engines.nats_url).await.unwrap();
    let intake = proto::subjects::Subjects::new(world.prefix.clone()).chat_intake(general);
    async_nats::jetstream::new(nats)
        .publish(intake, serde_json::to_vec(&event).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();

    // It counts as a mention of ann, and her history shows it mentioning her by name.
    assert_eq!(mention_count(&world, 0, &ann, general).await, 1);
    let (status, page) = world
        .edge_call(
            0,
            Method::GET,
            &format!("/api/v1/channels/{general}/messages?limit=5"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let shown = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| id_of(&m["id"]) == old)
        .cloned()
        .unwrap_or_else(|| panic!("the old message is not in history: {page}"));
    assert_eq!(
        mentioned(&shown),
        [(ann.id.to_string(), "ann".to_owned())],
        "{shown}"
    );
}
