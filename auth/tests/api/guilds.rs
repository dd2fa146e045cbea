//! Servers through the REST API: making one, its channels in categories, roles and private
//! channels, invites, and leaving; each change published to the server's subject.

use proto::permissions::Permissions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, assert_error, id_of, next_event_named, no_more_events};

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_server_has_everyone_a_general_channel_and_its_owner() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let mut inbox = auth.inbox(ann.id).await;
    let (guild, body) = auth.guild(&ann, "Book club").await;
    assert_eq!(body["name"], "Book club");
    assert_eq!(body["owner_id"], ann.id.to_string());
    assert_eq!(body["member_count"], 1);
    let everyone = &body["roles"][0];
    assert_eq!(
        everyone["id"],
        guild.to_string(),
        "@everyone has the server's id"
    );
    assert_eq!(everyone["name"], "@everyone");
    assert_eq!(everyone["position"], 0);
    let defaults = Permissions::DEFAULT_EVERYONE.bits().to_string();
    assert_eq!(everyone["permissions"], defaults);
    assert_eq!(names(&body["channels"]), ["general"]);
    assert_eq!(body["channels"][0]["kind"], "text");
    assert_eq!(body["channels"][0]["guild_id"], guild.to_string());
    assert_eq!(body["member"]["user"]["username"], "ann");
    assert_eq!(body["member"]["roles"], json!([]));

    let created = next_event_named(&mut inbox, "GUILD_CREATE").await;
    assert_eq!(created["d"]["id"], guild.to_string());
    let (status, mine) = auth.get("/api/v1/users/@me/guilds", &ann.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&mine), ["Book club"]);

    // Renaming is MANAGE_GUILD's, and the audit log has it with its reason.
    let mut events = auth.guild_events(guild).await;
    let (status, renamed) = auth
        .call_with_reason(
            Method::PATCH,
            &format!("/api/v1/guilds/{guild}"),
            &ann.access,
            Some(json!({"name": "Readers",
                        "icon": format!("http://127.0.0.1:8084/icons/{guild}/0123456789abcdef.png")})),
            "a%20better%20name",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Readers");
    let update = next_event_named(&mut events, "GUILD_UPDATE").await;
    assert_eq!(update["d"]["icon"], renamed["icon"]);
    assert!(
        renamed["icon"]
            .as_str()
            .unwrap()
            .ends_with("0123456789abcdef.png")
    );
    let entry = next_event_named(&mut events, "GUILD_AUDIT_LOG_ENTRY_CREATE").await;
    assert_eq!(entry["d"]["action_type"], 1);
    assert_eq!(entry["d"]["reason"], "a better name");
    assert_eq!(
        entry["d"]["changes"][0],
        json!({"key": "name", "old_value": "Book club", "new_value": "Readers"})
    );
}

#[tokio::test]
async fn a_reason_that_breaks_the_rules_is_refused_and_changes_nothing() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    let long = "x".repeat(513);
    for reason in [long.as_str(), "%FF", "a%E2%80%AEb"] {
        let (status, body) = auth
            .call_with_reason(
                Method::PATCH,
                &format!("/api/v1/guilds/{guild}"),
                &ann.access,
                Some(json!({"name": "Renamed"})),
                reason,
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(body["fields"]["x-audit-log-reason"].is_string(), "{body}");
    }
    let (_, seen) = auth
        .get(&format!("/api/v1/guilds/{guild}"), &ann.access)
        .await;
    assert_eq!(seen["name"], "Book club");
}

#[tokio::test]
async fn channels_sit_in_categories_in_order_and_a_server_has_at_most_so_many() {
    let auth = support::start_with(&["--guild-channel-limit=4".to_owned()]).await;
    let ann = auth.sign_up("ann").await;
    let (guild, body) = auth.guild(&ann, "Book club").await;
    let general = id_of(&body["channels"][0]);
    let path = format!("/api/v1/guilds/{guild}/channels");
    let (status, category) = auth
        .post(
            &path,
            Some(&ann.access),
            json!({"name": "Reading", "kind": "category"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{category}");
    let category = id_of(&category);
    let (status, voice) = auth
        .post(
            &path,
            Some(&ann.access),
            json!({"name": "Lounge", "kind": "voice", "parent_id": category.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{voice}");
    assert_eq!(voice["parent_id"], category.to_string());
    let voice = id_of(&voice);
    // A text channel cannot sit in a text channel, nor a category in a category.
    let (status, body) = auth
        .post(
            &path,
            Some(&ann.access),
            json!({"name": "x", "parent_id": general.to_string()}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");

    let mut events = auth.guild_events(guild).await;
    let (status, body) = auth
        .call(
            Method::PATCH,
            &path,
            Some(&ann.access),
            Some(json!([
                {"id": voice.to_string(), "position": 0, "parent_id": null},
                {"id": general.to_string(), "position": 5, "parent_id": category.to_string()},
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let moved = next_event_named(&mut events, "CHANNEL_UPDATE").await;
    assert_eq!(moved["d"]["guild_id"], guild.to_string());
    let (_, listed) = auth.get(&path, &ann.access).await;
    let order: Vec<(String, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["parent_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("Lounge".to_owned(), Value::Null),
            ("Reading".to_owned(), Value::Null),
            ("general".to_owned(), json!(category.to_string())),
        ]
    );

    // Slowmode and topic through the channel's own route.
    let (status, patched) = auth
        .call(
            Method::PATCH,
            &format!("/api/v1/channels/{general}"),
            Some(&ann.access),
            Some(json!({"topic": "books", "rate_limit_per_user": 30})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["rate_limit_per_user"], 30);
    assert_eq!(
        patched["permissions"],
        Permissions::all().bits().to_string()
    );

    // Four channels is the limit here: one more is refused, and nothing is made.
    let (status, _) = auth
        .post(&path, Some(&ann.access), json!({"name": "fourth"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = auth
        .post(&path, Some(&ann.access), json!({"name": "fifth"}))
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "limit_reached");
    let (_, listed) = auth.get(&path, &ann.access).await;
    assert_eq!(listed.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_private_channel_shows_only_to_the_role_its_overwrites_let_in() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.join(guild, &ann, &bob).await;
    let crew = auth.role(guild, &ann, "crew", 0).await;
    let view = Permissions::VIEW_CHANNEL.bits().to_string();
    let (status, private) = auth
        .post(
            &format!("/api/v1/guilds/{guild}/channels"),
            Some(&ann.access),
            json!({"name": "crew-only", "permission_overwrites": [
                {"id": guild.to_string(), "type": 0, "deny": view},
                {"id": crew.to_string(), "type": 0, "allow": view},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{private}");
    let private = id_of(&private);

    let (_, seen) = auth
        .get(&format!("/api/v1/guilds/{guild}"), &bob.access)
        .await;
    assert_eq!(names(&seen["channels"]), ["general"]);
    let (status, body) = auth
        .get(&format!("/api/v1/channels/{private}"), &bob.access)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = auth
        .get(&format!("/api/v1/channels/{private}/members"), &bob.access)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut events = auth.guild_events(guild).await;
    auth.give_role(guild, &ann, bob.id, crew).await;
    let update = next_event_named(&mut events, "GUILD_MEMBER_UPDATE").await;
    assert_eq!(update["d"]["member"]["roles"], json!([crew.to_string()]));
    let (_, seen) = auth
        .get(&format!("/api/v1/guilds/{guild}/channels"), &bob.access)
        .await;
    assert_eq!(names(&seen), ["general", "crew-only"]);
    let (status, channel) = auth
        .get(&format!("/api/v1/channels/{private}"), &bob.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    let mine = Permissions::parse(channel["permissions"].as_str().unwrap()).unwrap();
    assert!(mine.has(Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES));
    // A server's channel has no members of its own: its members are the server's.
    let (status, members) = auth
        .get(
            &format!(
                "/api/v1/channels/{private}/members?user_ids={},{}",
                ann.id, bob.id
            ),
            &bob.access,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{members}");
    assert_eq!(members.as_array().unwrap().len(), 2);

    // An overwrite for Bob himself takes sending away there, and everyone hears of it.
    let send = Permissions::SEND_MESSAGES.bits().to_string();
    let (status, body) = auth
        .call(
            Method::PUT,
            &format!("/api/v1/channels/{private}/permissions/{}", bob.id),
            Some(&ann.access),
            Some(json!({"type": 1, "deny": send})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let update = next_event_named(&mut events, "CHANNEL_UPDATE").await;
    let overwrites = update["d"]["permission_overwrites"].as_array().unwrap();
    assert_eq!(overwrites.len(), 3, "{update}");
    let (_, channel) = auth
        .get(&format!("/api/v1/channels/{private}"), &bob.access)
        .await;
    let mine = Permissions::parse(channel["permissions"].as_str().unwrap()).unwrap();
    assert!(mine.has(Permissions::VIEW_CHANNEL) && !mine.has(Permissions::SEND_MESSAGES));
}

#[tokio::test]
async fn an_invite_previews_the_server_and_joins_until_it_is_used_up() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    let mut events = auth.guild_events(guild).await;
    let (status, invite) = auth
        .post(
            &format!("/api/v1/guilds/{guild}/invites"),
            Some(&ann.access),
            json!({"max_uses": 2, "max_age": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 10);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
    next_event_named(&mut events, "INVITE_CREATE").await;

    // Anyone with the code may look before joining, signed in or not.
    let (status, preview) = auth
        .call(Method::GET, &format!("/api/v1/invites/{code}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["guild"]["name"], "Book club");
    assert_eq!(preview["guild"]["member_count"], 1);

    let bob = auth.sign_up("bob").await;
    let mut bobs = auth.inbox(bob.id).await;
    let (status, joined) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["member_count"], 2);
    assert_eq!(joined["member"]["user"]["username"], "bob");
    next_event_named(&mut bobs, "GUILD_CREATE").await;
    let added = next_event_named(&mut events, "GUILD_MEMBER_ADD").await;
    assert_eq!(added["d"]["member"]["user"]["username"], "bob");
    // Joining again changes nothing and spends no use.
    let (status, _) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let carl = auth.sign_up("carl").await;
    let (status, _) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&carl.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let gone = next_event_named(&mut events, "INVITE_DELETE").await;
    assert_eq!(gone["d"]["code"], code);
    let dave = auth.sign_up("dave").await;
    let (status, body) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&dave.access),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = auth
        .call(Method::GET, &format!("/api/v1/invites/{code}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a used-up invite is gone");

    // Revoked invites are gone too; listing is MANAGE_GUILD's.
    let other = auth.invite(guild, &ann).await;
    let (_, listed) = auth
        .get(&format!("/api/v1/guilds/{guild}/invites"), &ann.access)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let (status, body) = auth
        .get(&format!("/api/v1/guilds/{guild}/invites"), &bob.access)
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/invites/{other}"),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = auth
        .post(
            &format!("/api/v1/invites/{other}"),
            Some(&dave.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn leaving_removes_a_member_and_deleting_a_server_tells_everyone() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.join(guild, &ann, &bob).await;
    let mut events = auth.guild_events(guild).await;
    let mut bobs = auth.inbox(bob.id).await;
    let (status, body) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/users/@me/guilds/{guild}"),
            Some(&ann.access),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/users/@me/guilds/{guild}"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removed = next_event_named(&mut events, "GUILD_MEMBER_REMOVE").await;
    assert_eq!(removed["d"]["user"]["id"], bob.id.to_string());
    next_event_named(&mut bobs, "GUILD_DELETE").await;
    let (status, _) = auth
        .get(&format!("/api/v1/guilds/{guild}"), &bob.access)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a server one left reads as none"
    );

    auth.join(guild, &ann, &bob).await;
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = auth
        .call(
            Method::DELETE,
            &format!("/api/v1/guilds/{guild}"),
            Some(&ann.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let deleted = next_event_named(&mut bobs, "GUILD_DELETE").await;
    assert_eq!(deleted["d"]["id"], guild.to_string());
    assert_eq!(auth.count("guild_members").await, 0);
    assert_eq!(auth.count("channels").await, 0);
    no_more_events(&mut bobs).await;
}

#[tokio::test]
async fn one_is_in_at_most_so_many_servers_and_a_server_has_at_most_so_many_roles() {
    let auth =
        support::start_with(&["--guild-limit=2".to_owned(), "--role-limit=2".to_owned()]).await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let (first, _) = auth.guild(&ann, "One").await;
    auth.guild(&ann, "Two").await;
    let (status, body) = auth
        .post(
            "/api/v1/guilds",
            Some(&ann.access),
            json!({"name": "Three"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "guild_limit_reached");
    let (bobs, _) = auth.guild(&bob, "Bob's").await;
    auth.guild(&bob, "Bob's too").await;
    let code = auth.invite(first, &ann).await;
    let (status, body) = auth
        .post(
            &format!("/api/v1/invites/{code}"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "guild_limit_reached");

    auth.role(bobs, &bob, "one", 0).await;
    let (status, body) = auth
        .post(
            &format!("/api/v1/guilds/{bobs}/roles"),
            Some(&bob.access),
            json!({"name": "two"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "limit_reached");
}

#[tokio::test]
async fn invites_one_may_create_per_hour_are_limited() {
    let auth = support::start_with(&["--invite-create-rate=2/1h".to_owned()]).await;
    let ann = auth.sign_up("ann").await;
    let (guild, _) = auth.guild(&ann, "Book club").await;
    auth.invite(guild, &ann).await;
    auth.invite(guild, &ann).await;
    let response = auth
        .http
        .post(auth.url(&format!("/api/v1/guilds/{guild}/invites")))
        .bearer_auth(&ann.access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}
