//! Profiles: read by id or username, update your own, invisible shown as offline to others, reads
//! through the Redis cache (invalidated by updates, bypassed when Redis is down), and USER_UPDATE
//! events.

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
