//! Profiles: read by id or username, update your own, invisible shown as offline to others, reads
//! through the Redis cache (invalidated by updates, bypassed when Redis is down), and USER_UPDATE
//! events (to the owner's inbox, the channels they are in and the servers they are in).

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::RedisServer;

use crate::support::{self, assert_error, id_of, next_event_named, no_more_events};

#[tokio::test]
async fn a_profile_update_shows_everywhere_and_invisible_looks_offline_to_others() {
    let auth = support::start().await;
    let mia = auth.sign_up("mia").await;
    let ned = auth.sign_up("ned").await;
    // Mia and Ned share a DM, so Ned's edge follows Mia's profile on its subject.
    let (_, dm) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&mia.access),
            json!({"username": "ned"}),
        )
        .await;
    let mut dm_events = auth.channel_events(id_of(&dm)).await;
    let mut mia_inbox = auth.inbox(mia.id).await;

    let (status, me) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&mia.access),
            Some(json!({
                "display_name": "Mia 🌙",
                "avatar_url": format!("http://127.0.0.1:8084/avatars/{}/0123456789abcdef.png", mia.id),
                "bio": "night owl\nbookworm",
                "status": "invisible"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["display_name"], "Mia 🌙");
    assert_eq!(me["status"], "invisible");

    let own = next_event_named(&mut mia_inbox, "USER_UPDATE").await;
    assert_eq!(own["d"], me, "the owner's copy is their own view");
    let public = next_event_named(&mut dm_events, "USER_UPDATE").await;
    assert_eq!(public["d"]["status"], "offline");
    assert_eq!(public["d"]["avatar_url"], me["avatar_url"]);
    no_more_events(&mut mia_inbox).await;

    // Others read her as offline, by id and by username; she reads herself as invisible.
    for path in [
        format!("/api/v1/users/{}", mia.id),
        "/api/v1/users/by-username/MIA".to_owned(),
    ] {
        let (status, seen) = auth.get(&path, &ned.access).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["status"], "offline");
        assert_eq!(seen["bio"], "night owl\nbookworm");
        assert!(seen.get("password_hash").is_none());
    }
    let (_, own_view) = auth
        .get(&format!("/api/v1/users/{}", mia.id), &mia.access)
        .await;
    assert_eq!(own_view["status"], "invisible");

    // Leaving a field out keeps it; null clears it.
    let (_, me) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&mia.access),
            Some(json!({"bio": null})),
        )
        .await;
    assert_eq!(me["bio"], serde_json::Value::Null);
    assert_eq!(me["display_name"], "Mia 🌙");

    let (status, body) = auth.get("/api/v1/users/123", &ned.access).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = auth.get("/api/v1/users/not-an-id", &ned.access).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = auth
        .get("/api/v1/users/by-username/nobody", &ned.access)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_servers_members_hear_of_a_members_new_avatar_on_the_servers_subject() {
    let auth = support::start().await;
    let mia = auth.sign_up("mia").await;
    let ned = auth.sign_up("ned").await;
    // Mia and Ned share only a server: no group channel, no DM.
    let (guild, _) = auth.guild(&mia, "Book club").await;
    auth.join(guild, &mia, &ned).await;
    let mut events = auth.guild_events(guild).await;

    let avatar = format!(
        "http://127.0.0.1:8084/avatars/{}/0123456789abcdef.png",
        mia.id
    );
    let (status, me) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&mia.access),
            Some(json!({"avatar_url": avatar, "status": "invisible"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");

    let public = next_event_named(&mut events, "USER_UPDATE").await;
    assert_eq!(public["d"]["id"], mia.id.to_string());
    assert_eq!(public["d"]["avatar_url"], avatar);
    assert_eq!(
        public["d"]["status"], "offline",
        "the server sees the public view"
    );
}

#[tokio::test]
async fn profile_reads_are_cached_in_redis_and_an_update_invalidates_the_entry() {
    let auth = support::start().await;
    let olga = auth.sign_up("olga").await;
    let pete = auth.sign_up("pete").await;
    let redis = redis::Client::open(auth.stack.redis_url.as_str()).unwrap();
    let mut redis = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}:user:{}", auth.prefix, olga.id);

    let path = format!("/api/v1/users/{}", olga.id);
    let (_, first) = auth.get(&path, &pete.access).await;
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let cached: serde_json::Value =
        serde_json::from_str(&cached.expect("filled on a miss")).unwrap();
    assert_eq!(cached["username"], "olga");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 300, "{ttl}");
    let (_, second) = auth.get(&path, &pete.access).await;
    assert_eq!(first, second);

    auth.call(
        Method::PATCH,
        "/api/v1/users/@me",
        Some(&olga.access),
        Some(json!({"display_name": "Olga P."})),
    )
    .await;
    let gone: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(gone.is_none(), "an update drops the cached profile");
    let (_, third) = auth.get(&path, &pete.access).await;
    assert_eq!(third["display_name"], "Olga P.");

    let metrics = auth
        .http
        .get(auth.running.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"natter_auth_profile_cache_total{result="hit",service="auth"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"natter_auth_profile_cache_total{result="miss",service="auth"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn profiles_are_read_from_postgres_while_redis_is_down() {
    let stack = testkit::Stack::get();
    let mut private = RedisServer::start(&stack).await;
    let auth = support::start_with(&[format!("--redis-url={}", private.url())]).await;
    let quinn = auth.sign_up("quinn").await;
    let (status, _) = auth.get("/api/v1/users/@me", &quinn.access).await;
    assert_eq!(status, StatusCode::OK);

    private.stop();
    let (status, me) = auth.get("/api/v1/users/@me", &quinn.access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, me) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&quinn.access),
            Some(json!({"status": "dnd"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, me) = auth.get("/api/v1/users/@me", &quinn.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["status"], "dnd");

    private.resume().await;
    let (status, me) = auth.get("/api/v1/users/@me", &quinn.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["status"], "dnd");
}

#[tokio::test]
async fn display_names_in_any_script_or_emoji_are_kept_composed() {
    let auth = support::start().await;
    let ola = auth.sign_up("ola").await;
    for name in [
        "山田 太郎",
        "محمد علي",
        "अनुराग शर्मा",
        "Νίκος",
        "Дима (Dima)",
        "می\u{200C}خواهم",
        "👩\u{200D}👩\u{200D}👧 Ola 👍🏽",
        "🏳\u{FE0F}\u{200D}🌈",
    ] {
        let (status, me) = auth
            .call(
                Method::PATCH,
                "/api/v1/users/@me",
                Some(&ola.access),
                Some(json!({"display_name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name:?}: {me}");
        assert_eq!(me["display_name"], name);
    }
    // Stored in composed form (NFC): an e with a combining acute is one character, é.
    let (_, me) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&ola.access),
            Some(json!({"display_name": "Zoe\u{301}"})),
        )
        .await;
    assert_eq!(me["display_name"], "Zo\u{E9}");
}

#[tokio::test]
async fn a_profile_card_names_only_the_servers_and_group_channels_both_people_are_in() {
    let auth = support::start().await;
    let ann = auth.sign_up("ann").await;
    let bob = auth.sign_up("bob").await;
    let cat = auth.sign_up("cat").await;
    let (shared, _) = auth.guild(&ann, "Book club").await;
    let (anns_only, _) = auth.guild(&ann, "Ann's den").await;
    let (cats_only, _) = auth.guild(&cat, "Cat's corner").await;
    auth.join(shared, &ann, &bob).await;
    auth.join(cats_only, &cat, &ann).await;
    let (status, body) = auth
        .call(
            Method::PATCH,
            &format!("/api/v1/guilds/{shared}/members/@me"),
            Some(&ann.access),
            Some(json!({"nick": "Annie"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A group channel with Bob, and a DM (not listed: it is only ever with him).
    auth.allow_adds(&bob).await;
    let (status, group) = auth
        .post(
            "/api/v1/channels",
            Some(&ann.access),
            json!({"name": "walks"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let group = id_of(&group);
    let (status, body) = auth
        .post(
            &format!("/api/v1/channels/{group}/members"),
            Some(&ann.access),
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = auth
        .post(
            "/api/v1/users/@me/dms",
            Some(&ann.access),
            json!({"username": "bob"}),
        )
        .await;
    assert!(status.is_success());

    // Bob sees Ann's profile, the one server and the one group channel they share: not Ann's
    // other servers, whoever else is in them.
    let (status, card) = auth
        .get(&format!("/api/v1/users/{}/profile", ann.id), &bob.access)
        .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["user"]["username"], "ann");
    assert_eq!(
        card["mutual_guilds"],
        json!([{"id": shared.to_string(), "nick": "Annie"}])
    );
    assert_eq!(
        card["mutual_channels"],
        json!([{"id": group.to_string(), "name": "walks"}])
    );
    assert!(!card.to_string().contains(&anns_only.to_string()));
    assert!(!card.to_string().contains(&cats_only.to_string()));

    // Cat shares one server with Ann and nothing with Bob.
    let (_, card) = auth
        .get(&format!("/api/v1/users/{}/profile", ann.id), &cat.access)
        .await;
    assert_eq!(
        card["mutual_guilds"],
        json!([{"id": cats_only.to_string(), "nick": null}])
    );
    let (_, card) = auth
        .get(&format!("/api/v1/users/{}/profile", bob.id), &cat.access)
        .await;
    assert_eq!(card["mutual_guilds"], json!([]));
    assert_eq!(card["mutual_channels"], json!([]));

    // Nobody by that id: 404, as for the profile itself.
    let (status, body) = auth
        .get("/api/v1/users/4242424242/profile", &bob.access)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}
