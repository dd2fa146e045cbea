//! Bad input gets a 4xx in the one error shape, saying what is wrong, and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, TestAuth, assert_error, id_of};

/// Row counts of every table a request could write to.
async fn written(auth: &TestAuth) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "sessions",
        "refresh_tokens",
        "channels",
        "channel_members",
        "dm_pairs",
    ] {
        counts.push(auth.count(table).await);
    }
    counts
}

async fn raw(
    auth: &TestAuth,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = auth.http.post(auth.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        response.json().await.expect("an error body is JSON"),
    )
}

#[tokio::test]
async fn malformed_mistyped_oversized_and_non_json_bodies_are_refused_clearly() {
    let auth = support::start().await;
    let before = written(&auth).await;
    let sign_up = "/api/v1/auth/sign-up";
    let json_ct = Some("application/json");

    let (status, body) = raw(
        &auth,
        sign_up,
        json_ct,
        br#"{"username": "amy", "password": "#.to_vec(),
    )
    .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("not valid JSON"), "{message}");

    let (status, body) = raw(
        &auth,
        sign_up,
        json_ct,
        br#"{"username": 5, "password": true}"#.to_vec(),
    )
    .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("invalid type"), "{message}");

    let (status, body) = raw(&auth, sign_up, json_ct, br#"{"username": "amy"}"#.to_vec()).await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("missing field `password`"), "{message}");

    let (status, body) = raw(
        &auth,
        sign_up,
        json_ct,
        br#"{"username": "amy", "password": "violet kettle drum", "admin": true}"#.to_vec(),
    )
    .await;
    let message = assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(message.contains("unknown field `admin`"), "{message}");

    let (status, body) = raw(
        &auth,
        sign_up,
        None,
        br#"{"username": "amy", "password": "violet kettle drum"}"#.to_vec(),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let huge = format!(
        r#"{{"username": "amy", "password": "violet kettle drum", "display_name": "{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, body) = raw(&auth, sign_up, json_ct, huge.into_bytes()).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let (status, body) = auth
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = auth
        .call(Method::PUT, "/api/v1/auth/sign-in", None, None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    assert_eq!(written(&auth).await, before);
}

#[tokio::test]
async fn bad_usernames_passwords_and_display_names_are_refused_per_field_and_write_nothing() {
    let auth = support::start().await;
    let before = written(&auth).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"username": "", "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "a", "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "a".repeat(33), "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "robert'); DROP TABLE users;--", "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "bob\" OR 1=1 --", "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "zoë", "password": "violet kettle drum"}),
            "username",
        ),
        (
            json!({"username": "аdmin", "password": "violet kettle drum"}),
            "username",
        ), // Cyrillic а
        (
            json!({"username": "in\u{200B}visible", "password": "violet kettle drum"}),
            "username",
        ),
        (json!({"username": "amy", "password": "short"}), "password"),
        (
            json!({"username": "amy", "password": "p".repeat(129)}),
            "password",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": ""}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "d".repeat(33)}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "\u{202E}nimda"}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "bell\u{7}"}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": format!("a{}", "\u{591}".repeat(30))}),
            "display_name",
        ),
        // Names that render blank, and a Cyrillic look-alike of a Latin name.
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "\u{2800}"}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "\u{FFFC}"}),
            "display_name",
        ),
        (
            json!({"username": "amy", "password": "violet kettle drum", "display_name": "\u{410}my"}),
            "display_name",
        ),
        // Passwords anyone would guess.
        (
            json!({"username": "amy", "password": "password"}),
            "password",
        ),
        (
            json!({"username": "amy", "password": "        "}),
            "password",
        ),
        (
            json!({"username": "amy_pond", "password": "amy_pond"}),
            "password",
        ),
    ];
    for (request, field) in cases {
        let (status, body) = auth
            .post("/api/v1/auth/sign-up", None, request.clone())
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(body["fields"][field].is_string(), "{request} -> {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    // Several bad fields are named at once.
    let (_, body) = auth
        .post(
            "/api/v1/auth/sign-up",
            None,
            json!({"username": "!", "password": "x"}),
        )
        .await;
    assert!(
        body["fields"]["username"].is_string() && body["fields"]["password"].is_string(),
        "{body}"
    );
    assert_eq!(written(&auth).await, before);
}

#[tokio::test]
async fn bad_profile_and_channel_changes_are_refused_per_field_and_change_nothing() {
    let auth = support::start().await;
    let amy = auth.sign_up("amy").await;
    let (_, channel) = auth
        .post(
            "/api/v1/channels",
            Some(&amy.access),
            json!({"name": "amy's room"}),
        )
        .await;
    let channel_path = format!("/api/v1/channels/{}", id_of(&channel));
    let (_, profile_before) = auth.get("/api/v1/users/@me", &amy.access).await;
    let (_, channel_before) = auth.get(&channel_path, &amy.access).await;
    let before = written(&auth).await;

    let profile_cases: Vec<(Value, &str)> = vec![
        (json!({"avatar_url": "javascript:alert(1)"}), "avatar_url"),
        // Only media's images: a remote one would learn who looks at the profile.
        (
            json!({"avatar_url": "https://tracker.example.com/pixel.png"}),
            "avatar_url",
        ),
        (
            json!({"avatar_url": "data:image/png;base64,AAAA"}),
            "avatar_url",
        ),
        (
            json!({"avatar_url": "ftp://example.com/a.png"}),
            "avatar_url",
        ),
        (
            json!({"avatar_url": format!("https://example.com/{}", "a".repeat(2048))}),
            "avatar_url",
        ),
        (json!({"bio": "b".repeat(191)}), "bio"),
        (json!({"status": "offline"}), "status"),
        (json!({"status": "busy"}), "status"),
        (json!({"display_name": "   "}), "display_name"),
        (json!({"display_name": "tab\there"}), "display_name"),
        (json!({"display_name": "\u{3164}"}), "display_name"),
        (json!({"display_name": "p\u{430}ypal"}), "display_name"),
        (
            json!({"bio": format!("hi a{}", "\u{591}".repeat(6))}),
            "bio",
        ),
    ];
    for (request, field) in profile_cases {
        let (status, body) = auth
            .call(
                Method::PATCH,
                "/api/v1/users/@me",
                Some(&amy.access),
                Some(request.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(body["fields"][field].is_string(), "{request} -> {body}");
    }
    let (status, body) = auth
        .call(
            Method::PATCH,
            "/api/v1/users/@me",
            Some(&amy.access),
            Some(json!({"status": 3})),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");

    let channel_cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": "two\nlines"}), "name"),
        (json!({"name": "\u{202E}reversed"}), "name"),
        (json!({"topic": "t".repeat(1025)}), "topic"),
        (json!({"name": "\u{FFFC}"}), "name"),
        (json!({"name": "g\u{435}neral"}), "name"),
        (json!({"topic": "\u{200B}"}), "topic"),
    ];
    for (request, field) in channel_cases {
        let (status, body) = auth
            .call(
                Method::PATCH,
                &channel_path,
                Some(&amy.access),
                Some(request.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
        assert!(body["fields"][field].is_string(), "{request} -> {body}");
        let mut create = json!({"name": "ok"});
        create
            .as_object_mut()
            .unwrap()
            .extend(request.as_object().unwrap().clone());
        let (status, body) = auth
            .post("/api/v1/channels", Some(&amy.access), create)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let (status, body) = auth
        .post(
            &format!("{channel_path}/members"),
            Some(&amy.access),
            json!({"username": "x'; --"}),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "validation_failed");

    assert_eq!(
        auth.get("/api/v1/users/@me", &amy.access).await.1,
        profile_before
    );
    assert_eq!(auth.get(&channel_path, &amy.access).await.1, channel_before);
    assert_eq!(written(&auth).await, before);

    // Quotes and semicolons are ordinary characters in a channel name: stored and shown exactly,
    // never interpreted (every value reaches SQL as a bound parameter).
    let name = "Bob's room'); DROP TABLE channels; --";
    let (status, created) = auth
        .post("/api/v1/channels", Some(&amy.access), json!({"name": name}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], name);
    assert_eq!(auth.count("channels").await, 2);
}
