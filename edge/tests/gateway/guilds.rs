//! Servers on the gateway: READY's servers with only the channels one may view, members in chunks
//! on request, and permissions changing live on open sockets across edges: a channel appears (its
//! history readable) or disappears at once, and what one may not see never arrives.

use proto::permissions::Permissions;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Client, World};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn overwrites(guild: proto::Snowflake, crew: proto::Snowflake) -> Value {
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    json!({"permission_overwrites": [
        {"id": guild.to_string(), "type": 0, "deny": view},
        {"id": crew.to_string(), "type": 0, "allow": view},
    ]})
}

#[tokio::test]
async fn ready_lists_ones_servers_with_the_channels_one_may_view_and_never_the_members() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    let crew = world.role(guild, &ann, "crew", Permissions::empty()).await;
    let private = world
        .guild_channel(guild, &ann, "crew-only", overwrites(guild, crew))
        .await;
    world.join_guild(guild, &ann, &bob).await;

    let bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let guilds = &bob_1.ready["d"]["guilds"];
    assert_eq!(guilds.as_array().unwrap().len(), 1, "{guilds}");
    let seen = &guilds[0];
    assert_eq!(seen["id"], guild.to_string());
    assert_eq!(seen["name"], "Book club");
    assert_eq!(seen["member_count"], 2);
    assert_eq!(ids(&seen["channels"]), [general.to_string()]);
    assert_eq!(seen["member"]["user"]["username"], "bob");
    assert_eq!(seen["roles"].as_array().unwrap().len(), 2);
    assert!(seen.get("members").is_none(), "never the member list");
    // What the server says for all its channels, and what is empty, is left out.
    let channel = seen["channels"][0].as_object().unwrap();
    for field in [
        "guild_id",
        "member_count",
        "topic",
        "owner_id",
        "last_read_id",
    ] {
        assert!(!channel.contains_key(field), "{field} in {channel:?}");
    }
    assert_eq!(channel["unread_count"], 0, "the summary is there");
    let member = seen["member"].as_object().unwrap();
    for field in ["nick", "communication_disabled_until"] {
        assert!(!member.contains_key(field), "{field} in {member:?}");
    }

    let ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mine = &ann_1.ready["d"]["guilds"][0];
    assert_eq!(
        ids(&mine["channels"]),
        [general.to_string(), private.to_string()],
        "the owner sees every channel"
    );
    assert!(mine["channels"][1]["permission_overwrites"].is_array());
}

#[tokio::test]
async fn a_role_given_and_taken_shows_and_hides_a_channel_at_once_on_another_edge() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Book club").await;
    let crew = world.role(guild, &ann, "crew", Permissions::empty()).await;
    let private = world
        .guild_channel(guild, &ann, "crew-only", overwrites(guild, crew))
        .await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;
    let ack = ann_1.send(private, "before bob", "n0").await;
    assert_eq!(ack["op"], 24, "{ack}");
    bob_2.no_messages().await;

    world.set_role(guild, &ann, &bob, crew, true).await;
    let update = bob_2.next_event("GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["d"]["member"]["roles"], json!([crew.to_string()]));
    let created = bob_2.next_event("CHANNEL_CREATE").await;
    assert_eq!(created["d"]["id"], private.to_string());
    assert_eq!(created["d"]["guild_id"], guild.to_string());
    // Its history is readable now, and what is said there reaches him.
    let (status, page) = world
        .edge_call(
            1,
            Method::GET,
            &format!("/api/v1/channels/{private}/messages"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["content"], "before bob");
    ann_1.send(private, "welcome", "n1").await;
    assert_eq!(bob_2.messages(1).await, ["welcome"]);

    // Taken away: the channel goes, and nothing more of it arrives.
    world.set_role(guild, &ann, &bob, crew, false).await;
    assert_eq!(bob_2.channel_event(private).await, "CHANNEL_DELETE");
    ann_1.send(private, "secret", "n2").await;
    bob_2.no_messages().await;
    let (status, _) = world
        .edge_call(
            1,
            Method::GET,
            &format!("/api/v1/channels/{private}/messages"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 404, "a channel one may not view reads as none");
    let refused = bob_2.send(private, "let me in", "n3").await;
    assert_eq!(refused["d"]["code"], "unknown_channel", "{refused}");
}

#[tokio::test]
async fn role_edits_and_overwrites_show_and_hide_channels_live() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;

    // An overwrite for Bob alone hides #general from him.
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let (status, body) = world
        .auth_call(
            Method::PUT,
            &format!("/api/v1/channels/{general}/permissions/{}", bob.id),
            &ann,
            Some(json!({"type": 1, "deny": view})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(bob_2.channel_event(general).await, "CHANNEL_DELETE");
    let (status, _) = world
        .auth_call(
            Method::DELETE,
            &format!("/api/v1/channels/{general}/permissions/{}", bob.id),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(bob_2.channel_event(general).await, "CHANNEL_CREATE");

    // @everyone losing VIEW_CHANNEL hides every channel; getting it back shows them again.
    let without_view = Permissions::DEFAULT_EVERYONE - Permissions::VIEW_CHANNEL;
    for (permissions, expected) in [
        (without_view, "CHANNEL_DELETE"),
        (Permissions::DEFAULT_EVERYONE, "CHANNEL_CREATE"),
    ] {
        let (status, body) = world
            .auth_call(
                Method::PATCH,
                &format!("/api/v1/guilds/{guild}/roles/{guild}"),
                &ann,
                Some(json!({"permissions": permissions.bits().to_string()})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let role = bob_2.next_event("GUILD_ROLE_UPDATE").await;
        assert_eq!(role["d"]["role"]["id"], guild.to_string());
        assert_eq!(bob_2.channel_event(general).await, expected);
    }

    // A channel made private to a role he lacks never shows; one open to all does.
    let crew = world.role(guild, &ann, "crew", Permissions::empty()).await;
    let hidden = world
        .guild_channel(guild, &ann, "crew-only", overwrites(guild, crew))
        .await;
    let open = world.guild_channel(guild, &ann, "open", json!({})).await;
    assert_eq!(bob_2.channel_event(open).await, "CHANNEL_CREATE");
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    ann_1.send(hidden, "secret", "s1").await;
    bob_2.no_messages().await;
}

#[tokio::test]
async fn a_timed_out_member_reads_but_cannot_send_and_permissions_gate_every_message_route() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let ack = bob_1.send(general, "hi", "b0").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let bobs_message = ack["d"]["message"]["id"].as_str().unwrap().to_owned();

    let until = proto::clock::unix_ms() + 600_000;
    let (status, body) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &ann,
            Some(json!({"communication_disabled_until": until})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let update = bob_1.next_event("GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["d"]["member"]["communication_disabled_until"], until);
    let refused = bob_1.send(general, "let me talk", "b1").await;
    assert_eq!(refused["op"], 25, "{refused}");
    assert_eq!(refused["d"]["code"], "timed_out");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out until")
    );
    let edit = bob_1
        .request(
            json!({"op": 21, "d": {"channel_id": general, "message_id": bobs_message,
                                         "content": "edited", "nonce": "b2"}}),
        )
        .await;
    assert_eq!(edit["d"]["code"], "timed_out", "{edit}");
    let (status, body) = world
        .edge_call(
            0,
            Method::POST,
            &format!("/api/v1/channels/{general}/messages"),
            &bob,
            Some(json!({"content": "over rest"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("timed_out")),
        "{body}"
    );
    // He still reads: live and history.
    ann_1.send(general, "calm down", "a1").await;
    assert_eq!(bob_1.messages(1).await, ["calm down"]);
    let (status, _) = world
        .edge_call(
            0,
            Method::GET,
            &format!("/api/v1/channels/{general}/messages"),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // The time-out lifted, he talks again.
    let (status, _) = world
        .auth_call(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &ann,
            Some(json!({"communication_disabled_until": null})),
        )
        .await;
    assert_eq!(status, 200);
    bob_1.next_event("GUILD_MEMBER_UPDATE").await;
    let ack = bob_1.send(general, "sorry", "b3").await;
    assert_eq!(ack["op"], 24, "{ack}");

    // A channel that is read-only to @everyone refuses his sends and typing, not the owner's;
    // one without history refuses his history reads.
    let send = Permissions::SEND_MESSAGES.bits().to_string();
    let history = Permissions::READ_MESSAGE_HISTORY.bits().to_string();
    let news = world
        .guild_channel(
            guild,
            &ann,
            "news",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": send}]}),
        )
        .await;
    assert_eq!(bob_1.channel_event(news).await, "CHANNEL_CREATE");
    let refused = bob_1.send(news, "me too", "b4").await;
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    let ack = ann_1.send(news, "news", "a2").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let vault = world
        .guild_channel(
            guild,
            &ann,
            "vault",
            json!({"permission_overwrites": [{"id": guild.to_string(), "type": 0, "deny": history}]}),
        )
        .await;
    assert_eq!(bob_1.channel_event(vault).await, "CHANNEL_CREATE");
    let (status, body) = world
        .edge_call(
            0,
            Method::GET,
            &format!("/api/v1/channels/{vault}/messages"),
            &bob,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
}

#[tokio::test]
async fn a_moderator_deletes_others_messages_and_the_audit_log_hears_of_it() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let mia = world.sign_up("mia").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &mia).await;
    let mods = world
        .role(
            guild,
            &ann,
            "mods",
            Permissions::MANAGE_MESSAGES | Permissions::VIEW_AUDIT_LOG,
        )
        .await;
    world.set_role(guild, &ann, &mia, mods, true).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut mia_1 = Client::connect(&world.gateway(0), &mia).await;
    let ack = bob_1.send(general, "spam", "b0").await;
    let spam = ack["d"]["message"]["id"].as_str().unwrap().to_owned();
    let ack = mia_1.send(general, "mine", "m0").await;
    let mine = ack["d"]["message"]["id"].as_str().unwrap().to_owned();

    // Bob cannot delete Mia's; Mia can delete Bob's, with a reason over REST.
    let refused = bob_1
        .request(json!({"op": 22, "d": {"channel_id": general, "message_id": mine, "nonce": "d0"}}))
        .await;
    assert_eq!(refused["d"]["code"], "forbidden", "{refused}");
    let response = reqwest::Client::new()
        .delete(world.edge_url(0, &format!("/api/v1/channels/{general}/messages/{spam}")))
        .bearer_auth(&mia.token)
        .header("x-audit-log-reason", "spam%21")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let deleted = bob_1.next_event("MESSAGE_DELETE").await;
    assert_eq!(deleted["d"]["id"], spam);
    let entry = mia_1.next_event("GUILD_AUDIT_LOG_ENTRY_CREATE").await;
    assert_eq!(entry["d"]["action_type"], 72);
    assert_eq!(entry["d"]["target_id"], bob.id.to_string());
    assert_eq!(entry["d"]["reason"], "spam!");
    assert_eq!(entry["d"]["options"]["message_id"], spam);

    // Bob may not read the audit log, so its entries never reach him.
    let ack = mia_1
        .request(json!({"op": 22, "d": {"channel_id": general, "message_id": mine, "nonce": "d1"}}))
        .await;
    assert_eq!(ack["op"], 24, "her own: no audit entry");
    let mut frames = Vec::new();
    while let Some(frame) = bob_1
        .next_within(std::time::Duration::from_millis(500))
        .await
    {
        frames.push(frame);
    }
    assert!(
        frames
            .iter()
            .all(|f| f["t"] != "GUILD_AUDIT_LOG_ENTRY_CREATE"),
        "{frames:?}"
    );
}

/// The GUILD_DELETE that says why a server is gone: the first, or the one right after it when the
/// edge saw the user's own GUILD_MEMBER_REMOVE before their inbox's copy.
async fn told_why(client: &mut Client) -> Value {
    let gone = client.next_event("GUILD_DELETE").await;
    if !gone["d"]["removal"].is_null() {
        return gone;
    }
    let why = client.next_event("GUILD_DELETE").await;
    assert_eq!(why["d"]["id"], gone["d"]["id"]);
    why
}

#[tokio::test]
async fn joining_kicks_and_bans_take_effect_on_open_sockets() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_2 = Client::connect(&world.gateway(1), &bob).await;

    world.join_guild(guild, &ann, &bob).await;
    let created = bob_2.next_event("GUILD_CREATE").await;
    assert_eq!(ids(&created["d"]["channels"]), [general.to_string()]);
    let added = ann_1.next_event("GUILD_MEMBER_ADD").await;
    assert_eq!(added["d"]["member"]["user"]["username"], "bob");
    ann_1.send(general, "welcome", "a0").await;
    assert_eq!(bob_2.messages(1).await, ["welcome"]);

    let (status, body) = world
        .auth_call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}/members/{}", bob.id),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let gone = told_why(&mut bob_2).await;
    assert_eq!(gone["d"]["id"], guild.to_string());
    assert_eq!(gone["d"]["removal"], "kicked", "{gone}");
    ann_1.send(general, "he is gone", "a1").await;
    bob_2.no_messages().await;
    let refused = bob_2.send(general, "still here?", "b0").await;
    assert_eq!(refused["d"]["code"], "unknown_channel", "{refused}");

    world.join_guild(guild, &ann, &bob).await;
    bob_2.next_event("GUILD_CREATE").await;
    let (status, body) = world
        .auth_call(
            Method::PUT,
            &format!("/api/v1/guilds/{guild}/bans/{}", bob.id),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let gone = told_why(&mut bob_2).await;
    assert_eq!(gone["d"]["removal"], "banned", "{gone}");
    let ban = ann_1.next_event("GUILD_BAN_ADD").await;
    assert_eq!(ban["d"]["user"]["id"], bob.id.to_string());
    ann_1.send(general, "banned", "a2").await;
    bob_2.no_messages().await;
}

#[tokio::test]
async fn a_servers_members_come_in_chunks_on_request() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let (guild, _) = world.guild(&ann, "Book club").await;
    let mut others = Vec::new();
    for name in ["bob", "cat", "dan"] {
        let user = world.sign_up(name).await;
        world.join_guild(guild, &ann, &user).await;
        others.push(user);
    }
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    ann_1
        .send_raw(json!({"op": 8, "d": {"guild_id": guild, "limit": 2, "nonce": "p1"}}))
        .await;
    let first = ann_1.next_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(first["d"]["nonce"], "p1");
    assert_eq!(first["d"]["guild_id"], guild.to_string());
    let page: Vec<String> = first["d"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(page.len(), 2);
    let after = page.last().unwrap().clone();
    ann_1
        .send_raw(
            json!({"op": 8, "d": {"guild_id": guild, "limit": 1000, "after": after,
                                         "presences": true, "nonce": "p2"}}),
        )
        .await;
    let rest = ann_1.next_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(rest["d"]["members"].as_array().unwrap().len(), 2);
    assert!(rest["d"]["presences"].is_array());
    ann_1
        .send_raw(
            json!({"op": 8, "d": {"guild_id": guild, "user_ids": [others[0].id, 42],
                                         "nonce": "p3"}}),
        )
        .await;
    let by_id = ann_1.next_event("GUILD_MEMBERS_CHUNK").await;
    assert_eq!(by_id["d"]["not_found"], json!(["42"]));
    assert_eq!(by_id["d"]["members"][0]["user"]["username"], "bob");
    let unknown = ann_1
        .request(json!({"op": 8, "d": {"guild_id": "42", "nonce": "p4"}}))
        .await;
    assert_eq!(unknown["d"]["code"], "unknown_guild", "{unknown}");
}

#[tokio::test]
async fn slowmode_holds_members_back_and_not_those_who_manage_messages() {
    let world = World::start(1, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let (guild, _) = world.guild(&ann, "Book club").await;
    world.join_guild(guild, &ann, &bob).await;
    let slow = world
        .guild_channel(guild, &ann, "slow", json!({"rate_limit_per_user": 60}))
        .await;
    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    assert_eq!(bob_1.send(slow, "one", "b1").await["op"], 24);
    let refused = bob_1.send(slow, "two", "b2").await;
    assert_eq!(refused["d"]["code"], "rate_limited", "{refused}");
    assert!(
        refused["d"]["message"]
            .as_str()
            .unwrap()
            .contains("slowmode")
    );
    assert_eq!(ann_1.send(slow, "one", "a1").await["op"], 24);
    assert_eq!(ann_1.send(slow, "two", "a2").await["op"], 24);
}

#[tokio::test]
async fn a_ban_deletes_the_last_seconds_of_the_members_messages_on_every_device() {
    let world = World::start(2, &[]).await;
    let ann = world.sign_up("ann").await;
    let bob = world.sign_up("bob").await;
    let cat = world.sign_up("cat").await;
    let (guild, general) = world.guild(&ann, "Book club").await;
    let second = world.guild_channel(guild, &ann, "second", json!({})).await;
    world.join_guild(guild, &ann, &bob).await;
    world.join_guild(guild, &ann, &cat).await;

    // Bob wrote something an hour ago (stored through the chat stream, as every message is).
    let subjects = proto::subjects::Subjects::new(world.prefix.clone());
    let nats = async_nats::connect(&world.engines.nats_url).await.unwrap();
    let old = proto::Snowflake::from_parts(proto::clock::unix_ms() - 3_600_000, 1, 0);
    let event = proto::events::Event::MessageCreate(proto::api::messages::Message {
        id: old,
        channel_id: general,
        author_id: bob.id,
        content: "an hour ago".into(),
        nonce: None,
        edited_at: None,
        ..Default::default()
    });
    async_nats::jetstream::new(nats)
        .publish(subjects.chat_intake(general), event.to_json().into())
        .await
        .unwrap()
        .await
        .unwrap();

    let mut ann_1 = Client::connect(&world.gateway(0), &ann).await;
    let mut cat_2 = Client::connect(&world.gateway(1), &cat).await;
    let mut bob_1 = Client::connect(&world.gateway(0), &bob).await;
    let mut recent = Vec::new();
    for (channel, content) in [(general, "spam 1"), (general, "spam 2"), (second, "spam 3")] {
        let ack = bob_1.send(channel, content, content).await;
        recent.push(ack["d"]["message"]["id"].as_str().unwrap().to_owned());
    }
    let ack = cat_2.send(general, "not spam", "c1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(ann_1.messages(4).await.len(), 4);

    let (status, body) = world
        .auth_call(
            Method::PUT,
            &format!("/api/v1/guilds/{guild}/bans/{}", bob.id),
            &ann,
            Some(json!({"delete_message_seconds": 600})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    bob_1.next_event("GUILD_DELETE").await;
    // Every device of everyone who sees the channels gets each delete, on both edges.
    for client in [&mut ann_1, &mut cat_2] {
        let mut deleted = Vec::new();
        while deleted.len() < recent.len() {
            let frame = client.next_event("MESSAGE_DELETE").await;
            deleted.push(frame["d"]["id"].as_str().unwrap().to_owned());
        }
        deleted.sort();
        let mut expected = recent.clone();
        expected.sort();
        assert_eq!(deleted, expected);
    }
    // History keeps what is older, and what others wrote.
    let (status, page) = world
        .edge_call(
            0,
            Method::GET,
            &format!("/api/v1/channels/{general}/messages"),
            &ann,
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["not spam", "an hour ago"]);
    let (_, log) = world
        .auth_call(
            Method::GET,
            &format!("/api/v1/guilds/{guild}/audit-logs?action_type=22"),
            &ann,
            None,
        )
        .await;
    assert_eq!(
        log["audit_log_entries"][0]["options"]["delete_message_seconds"],
        600
    );
}
