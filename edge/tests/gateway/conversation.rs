//! Replies and reactions through real edges, a real persister and the real CQL store: what each
//! person sees live, in history pages and after a resume, and who may do what.

use std::time::Duration;

use async_nats::jetstream;
use proto::Snowflake;
use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, User, World};

fn id_of(value: &Value) -> Snowflake {
    value.as_str().unwrap().parse().unwrap()
}

/// The URL-encoded form of an emoji, as a path segment.
fn encoded(emoji: &str) -> String {
    emoji.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn reaction_path(channel: Snowflake, message: Snowflake, emoji: &str, user: &str) -> String {
    format!(
        "/api/v1/channels/{channel}/messages/{message}/reactions/{}/{user}",
        encoded(emoji)
    )
}

async fn page(world: &World, edge: usize, user: &User, channel: Snowflake, query: &str) -> Value {
    let path = format!("/api/v1/channels/{channel}/messages{query}");
    let (status, body) = world.edge_call(edge, Method::GET, &path, user, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The message `id` of a history page.
fn on_page(page: &Value, id: Snowflake) -> Value {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| id_of(&m["id"]) == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not on the page: {page}"))
}

/// `emoji`'s (count, me) on a message of a page; (0, false) when nobody reacted with it.
fn reaction(message: &Value, emoji: &str) -> (u64, bool) {
    message["reactions"]
        .as_array()
        .and_then(|list| list.iter().find(|r| r["emoji"]["name"] == emoji))
        .map_or((0, false), |r| {
            (r["count"].as_u64().unwrap(), r["me"].as_bool().unwrap())
        })
}

/// Waits (up to a minute) until the history page of edge 0 shows `emoji` on `message` at
/// `count`, as `reader` sees it; answers what it showed last.
async fn count_settles(
    world: &World,
    reader: &User,
    channel: Snowflake,
    message: Snowflake,
    emoji: &str,
    count: u64,
) -> (u64, bool) {
    let query = format!("?around={message}&limit=1");
    let mut seen = (u64::MAX, false);
    for _ in 0..120 {
        let body = page(world, 0, reader, channel, &query).await;
        seen = reaction(&on_page(&body, message), emoji);
        if seen.0 == count {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the count of {emoji} stayed {} instead of {count}", seen.0);
}

#[tokio::test]
async fn a_reply_carries_a_preview_of_its_original_and_shows_once_it_is_deleted() {
    let world = World::start(2, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let other = world.channel(&ann, "other", &[&bob]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(1), &bob).await;

    let original = ann_1
        .send(room, "Lunch at noon?\nI booked the usual place.", "a-1")
        .await;
    let original_id = id_of(&original["d"]["message"]["id"]);
    for n in 0..5 {
        ann_1
            .send(room, &format!("filler {n}"), &format!("a-f{n}"))
            .await;
    }

    // Bob replies over the socket: everyone gets the reply with the original's first line.
    let reply = bob_1
        .request(
            json!({"op": 20, "d": {"channel_id": room, "content": "Yes!", "nonce": "b-1",
                                         "message_reference": {"message_id": original_id}}}),
        )
        .await;
    assert_eq!(reply["op"], 24, "{reply}");
    let reply_id = id_of(&reply["d"]["message"]["id"]);
    let created = loop {
        let event = ann_1.next_event("MESSAGE_CREATE").await;
        if id_of(&event["d"]["id"]) == reply_id {
            break event;
        }
    };
    assert_eq!(
        created["d"]["message_reference"]["message_id"],
        original_id.to_string()
    );
    let preview = &created["d"]["referenced_message"];
    assert_eq!(preview["author_id"], ann.id.to_string(), "{created}");
    assert_eq!(preview["content"], "Lunch at noon?");

    // Over REST too; a reply to another channel's message, or to none, changes nothing.
    let (status, rest_reply) = world
        .edge_call(
            0,
            Method::POST,
            &format!("/api/v1/channels/{room}/messages"),
            &ann,
            Some(json!({"content": "see above", "message_reference": {"message_id": original_id}})),
        )
        .await;
    assert_eq!(status, 200, "{rest_reply}");
    assert_eq!(
        rest_reply["referenced_message"]["content"],
        "Lunch at noon?"
    );
    for (channel, target) in [(other, original_id), (room, Snowflake::from_u64(12345))] {
        let (status, body) = world
            .edge_call(
                0,
                Method::POST,
                &format!("/api/v1/channels/{channel}/messages"),
                &ann,
                Some(json!({"content": "lost", "message_reference": {"message_id": target}})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("validation_failed")),
            "{body}"
        );
    }
    let refused = bob_1
        .request(
            json!({"op": 20, "d": {"channel_id": room, "content": "x", "nonce": "b-2",
            "message_reference": {"message_id": original_id, "channel_id": other}}}),
        )
        .await;
    assert_eq!(refused["op"], 25, "{refused}");

    // Jumping to the original: a page around it holds it, and the reply's preview comes from
    // the store once written.
    world.persisted().await;
    let around = page(
        &world,
        1,
        &bob,
        room,
        &format!("?around={original_id}&limit=3"),
    )
    .await;
    on_page(&around, original_id);
    let latest = page(&world, 1, &bob, room, "?limit=5").await;
    let stored_reply = on_page(&latest, reply_id);
    assert_eq!(
        stored_reply["referenced_message"]["content"], "Lunch at noon?",
        "{stored_reply}"
    );

    // The original is deleted: the reply stays, its preview goes.
    let (status, _) = world
        .edge_call(
            0,
            Method::DELETE,
            &format!("/api/v1/channels/{room}/messages/{original_id}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204);
    for _ in [(), ()] {
        let latest = page(&world, 0, &ann, room, "?limit=5").await;
        let reply = on_page(&latest, reply_id);
        assert_eq!(
            reply["message_reference"]["message_id"],
            original_id.to_string()
        );
        assert!(reply["referenced_message"].is_null(), "{reply}");
        world.persisted().await;
    }
}

#[tokio::test]
async fn a_hundred_people_reacting_at_once_count_exactly_a_hundred_and_redelivered_removes_count_once()
 {
    // The store's requests may wait longer than in production: a hundred people at once on a
    // loaded two-core machine.
    let world = World::start(2, &["--cql-request-timeout=10s"]).await;
    let world_ref = &world;
    let people: Vec<User> = futures::future::join_all(
        (0..100).map(|n| async move { world_ref.sign_up(&format!("fan{n}")).await }),
    )
    .await;
    let ann = &people[0];
    let channel = Snowflake::from_u64(
        proto::SnowflakeGenerator::new(1)
            .expect("a worker")
            .next_id()
            .get(),
    );
    let ids: Vec<i64> = people.iter().map(|p| p.id.as_i64()).collect();
    world.populate(&[channel.as_i64()], &ids).await;

    let mut watcher = Client::connect(&world.gateway(1), &people[1]).await;
    let mut ann_1 = Client::connect(&world.gateway(0), ann).await;
    let sent = ann_1.send(channel, "react to this", "a-1").await;
    let message = id_of(&sent["d"]["message"]["id"]);

    // Everyone at once, half through each edge; and again (a second PUT changes nothing).
    let react = |n: usize, method: Method| {
        let path = reaction_path(channel, message, "👍", "@me");
        let world = &world;
        let who = &people[n];
        async move { world.edge_call(n % 2, method, &path, who, None).await }
    };
    let added = futures::future::join_all((0..100).map(|n| react(n, Method::PUT))).await;
    assert!(added.iter().all(|(s, _)| *s == 204), "{added:?}");
    let again = futures::future::join_all((0..10).map(|n| react(n, Method::PUT))).await;
    assert!(again.iter().all(|(s, _)| *s == 204), "{again:?}");

    // A watcher on the other edge hears each of them once.
    let mut heard = std::collections::HashSet::new();
    while heard.len() < 100 {
        let event = watcher.next_event("MESSAGE_REACTION_ADD").await;
        assert_eq!(event["d"]["emoji"]["name"], "👍");
        assert!(heard.insert(event["d"]["user_id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        count_settles(&world, ann, channel, message, "👍", 100).await,
        (100, true)
    );

    // Half take theirs back at once; then the stream hands the persister every remove again
    // (as JetStream redelivers), and each still counts once.
    let removed = futures::future::join_all((50..100).map(|n| react(n, Method::DELETE))).await;
    assert!(removed.iter().all(|(s, _)| *s == 204), "{removed:?}");
    world.persisted().await;
    let nats = async_nats::connect(&world.engines.nats_url).await.unwrap();
    let js = jetstream::new(nats);
    let intake = proto::subjects::Subjects::new(world.prefix.clone()).chat_intake(channel);
    for person in &people[50..] {
        let again = proto::events::Event::MessageReactionRemove(proto::events::ReactionEvent {
            user_id: person.id,
            channel_id: channel,
            message_id: message,
            emoji: proto::api::reactions::Emoji::unicode("👍"),
        });
        js.publish(intake.clone(), again.to_json().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    world.persisted().await;
    assert_eq!(
        count_settles(&world, ann, channel, message, "👍", 50).await,
        (50, true)
    );
    let (me, _) = reaction(
        &on_page(
            &page(
                &world,
                1,
                &people[70],
                channel,
                &format!("?around={message}&limit=1"),
            )
            .await,
            message,
        ),
        "👍",
    );
    assert_eq!(me, 50);

    // Who reacted, paged in id order.
    let mut first_ids: Vec<Snowflake> = people[..50].iter().map(|p| p.id).collect();
    first_ids.sort();
    let path = format!(
        "/api/v1/channels/{channel}/messages/{message}/reactions/{}?limit=30",
        encoded("👍")
    );
    let (status, who) = world.edge_call(0, Method::GET, &path, ann, None).await;
    assert_eq!(status, 200, "{who}");
    let listed: Vec<Snowflake> = who
        .as_array()
        .unwrap()
        .iter()
        .map(|u| id_of(&u["id"]))
        .collect();
    assert_eq!(listed, first_ids[..30]);
    let path = format!("{path}&after={}", first_ids[29]);
    let (_, rest) = world.edge_call(0, Method::GET, &path, ann, None).await;
    assert_eq!(rest.as_array().unwrap().len(), 20, "{rest}");
}

#[tokio::test]
async fn reactions_take_their_permissions_and_replay_on_resume() {
    let world = World::start(1, &["--send-rate=1000/1s", "--cql-request-timeout=10s"]).await;
    let (ann, bob, eve) = (
        world.sign_up("ann").await,
        world.sign_up("bob").await,
        world.sign_up("eve").await,
    );
    let (guild, general) = world.guild(&ann, "Club").await;
    world.join_guild(guild, &ann, &bob).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let sent = ann_1.send(general, "hello", "a-1").await;
    let message = id_of(&sent["d"]["message"]["id"]);
    let put = |who: &User, channel: Snowflake, emoji: &str| {
        let path = reaction_path(channel, message, emoji, "@me");
        let who = who.clone();
        let world = &world;
        async move { world.edge_call(0, Method::PUT, &path, &who, None).await }
    };

    // Not an emoji; a channel one cannot see (not a member at all).
    let (status, body) = put(&bob, general, "hello").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("validation_failed"))
    );
    let (status, _) = put(&eve, general, "👍").await;
    assert_eq!(status, 404);
    // A message that was never sent, in a channel bob sees.
    let nowhere = reaction_path(general, Snowflake::from_u64(message.get() + 1), "👍", "@me");
    let (status, body) = world.edge_call(0, Method::PUT, &nowhere, &bob, None).await;
    assert_eq!(status, 404, "{body}");

    // A channel hidden from @everyone is unknown to bob; one without ADD_REACTIONS refuses him.
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
    let path = reaction_path(secret, hidden_id, "👍", "@me");
    let (status, _) = world.edge_call(0, Method::PUT, &path, &bob, None).await;
    assert_eq!(status, 404);
    let no_reactions = Permissions::ADD_REACTIONS.bits().to_string();
    let quiet = world
        .guild_channel(
            guild,
            &ann,
            "quiet",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": no_reactions}]}),
        )
        .await;
    assert_eq!(bob_1.channel_event(quiet).await, "CHANNEL_CREATE");
    assert_eq!(ann_1.channel_event(quiet).await, "CHANNEL_CREATE");
    let said = ann_1.send(quiet, "no reactions here", "a-3").await;
    let said_id = id_of(&said["d"]["message"]["id"]);
    let path = reaction_path(quiet, said_id, "👍", "@me");
    let (status, body) = world.edge_call(0, Method::PUT, &path, &bob, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    // Bob reacts in general; he may not take ann's away, nor clear them all; she (the owner)
    // may take his.
    let (status, body) = put(&bob, general, "🔥").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = put(&ann, general, "🔥").await;
    assert_eq!(status, 204, "{body}");
    let seq_before = ann_1.next_event("MESSAGE_REACTION_ADD").await["s"]
        .as_u64()
        .expect("reactions carry a sequence, like messages");
    let ann_s = reaction_path(general, message, "🔥", &ann.id.to_string());
    let (status, body) = world.edge_call(0, Method::DELETE, &ann_s, &bob, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let clear = format!("/api/v1/channels/{general}/messages/{message}/reactions");
    let (status, _) = world.edge_call(0, Method::DELETE, &clear, &bob, None).await;
    assert_eq!(status, 403);
    let bob_s = reaction_path(general, message, "🔥", &bob.id.to_string());
    let (status, _) = world.edge_call(0, Method::DELETE, &bob_s, &ann, None).await;
    assert_eq!(status, 204);

    // Bob's session, resumed from before the removal, replays it.
    let session = bob_1.session_id();
    drop(bob_1);
    let (_bob_2, replayed) = Client::resume(&world.gateway(0), &bob, &session, seq_before).await;
    let removed = replayed
        .iter()
        .find(|e| e["t"] == "MESSAGE_REACTION_REMOVE")
        .unwrap_or_else(|| panic!("the removal was not replayed: {replayed:?}"));
    assert_eq!(removed["d"]["user_id"], bob.id.to_string());
    assert_eq!(removed["d"]["emoji"]["name"], "🔥");

    // Ann clears every reaction: history shows none.
    let (status, _) = world.edge_call(0, Method::DELETE, &clear, &ann, None).await;
    assert_eq!(status, 204);
    ann_1.next_event("MESSAGE_REACTION_REMOVE_ALL").await;
    let body = page(
        &world,
        0,
        &ann,
        general,
        &format!("?around={message}&limit=1"),
    )
    .await;
    assert_eq!(
        reaction(&on_page(&body, message), "🔥"),
        (0, false),
        "{body}"
    );
    world.persisted().await;
    let body = page(
        &world,
        0,
        &ann,
        general,
        &format!("?around={message}&limit=1"),
    )
    .await;
    assert_eq!(
        reaction(&on_page(&body, message), "🔥"),
        (0, false),
        "{body}"
    );
}
