//! The token lifecycle: sign up, sign in, refresh, sign out, reuse of a rotated refresh token; and
//! every kind of bad access token refused, by auth and by the shared verifier the edges use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kit::tokens::{AccessClaims, TokenError, Verifier};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{self, assert_error, next_event, no_more_events};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn tokens_live_refresh_rotate_and_die_with_their_session() {
    let auth = support::start().await;
    let alice = auth.sign_up("alice").await;
    let mut inbox = auth.inbox(alice.id).await;

    let (status, me) = auth.get("/api/v1/users/@me", &alice.access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "alice");
    assert!(me.get("password_hash").is_none());

    // Refresh tokens are stored only as their SHA-256.
    let (stored,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&alice.refresh)
    .fetch_one(&auth.db)
    .await
    .unwrap();
    assert_eq!(stored, 1);

    // A second sign-in is a second session.
    let phone = auth.sign_in("alice").await;

    // Refresh: new tokens, the old refresh token used up.
    let (status, rotated) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let rotated = support::account(&rotated);
    assert_ne!(rotated.refresh, alice.refresh);
    assert_eq!(
        auth.get("/api/v1/users/@me", &rotated.access).await.0,
        StatusCode::OK
    );

    // Reusing the rotated token is theft detection: the whole family is revoked and announced.
    let (status, body) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": alice.refresh}),
        )
        .await;
    let message = assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(message.contains("already used"), "{message}");
    let event = next_event(&mut inbox).await;
    assert_eq!(event["t"], "SESSION_REVOKED");
    assert_eq!(event["d"]["user_id"], alice.id.to_string());
    let session = event["d"]["session_id"].as_str().unwrap().to_owned();
    let (reason,): (String,) =
        sqlx::query_as("SELECT revoked_reason FROM sessions WHERE id = $1::bigint")
            .bind(session.parse::<i64>().unwrap())
            .fetch_one(&auth.db)
            .await
            .unwrap();
    assert_eq!(reason, "reuse");
    // ...so the newest refresh token of that family and its access token are dead too.
    let (status, body) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": rotated.refresh}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = auth.get("/api/v1/users/@me", &rotated.access).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // The other session is untouched, until it signs out.
    assert_eq!(
        auth.get("/api/v1/users/@me", &phone.access).await.0,
        StatusCode::OK
    );
    let (status, _) = auth
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/sign-out",
            Some(&phone.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let event = next_event(&mut inbox).await;
    assert_eq!(event["t"], "SESSION_REVOKED");
    assert_ne!(event["d"]["session_id"], session.as_str());
    assert_eq!(
        auth.get("/api/v1/users/@me", &phone.access).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": phone.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    no_more_events(&mut inbox).await;

    // An unknown refresh token is refused the same way.
    let (status, body) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "bm90IGEgdG9rZW4"}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let auth = support::start_with(&["--refresh-token-ttl=1s".to_owned()]).await;
    let bob = auth.sign_up("bob").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = auth
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": bob.refresh}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// Builds a token by hand: header and claims as given, signed with nothing.
fn unsigned(header: &serde_json::Value, claims: &AccessClaims) -> String {
    let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.",
        encode(header),
        encode(&serde_json::to_value(claims).unwrap())
    )
}

#[tokio::test]
async fn expired_tampered_foreign_and_unsigned_access_tokens_are_refused() {
    let auth = support::start().await;
    let carol = auth.sign_up("carol").await;
    let key = auth::keys::SigningKey::load(support::key_path().to_str().unwrap()).unwrap();
    let other_key =
        auth::keys::SigningKey::load(support::new_key_file().to_str().unwrap()).unwrap();
    let good: AccessClaims = {
        let verifier = Verifier::fetching(
            &auth.url("/api/v1/auth/jwks"),
            "natter",
            "natter-auth",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        verifier
            .verify(&carol.access)
            .expect("a fresh token verifies against the JWKS")
    };
    assert_eq!(good.sub, carol.id);
    assert!(good.exp - good.iat >= 14 * 60 && good.exp - good.iat <= 15 * 60);

    let with = |change: &dyn Fn(&mut AccessClaims)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    // A token signed with the real key in the real header, but with the real kid on another key.
    let forged_kid = {
        let token = other_key.sign_claims(&good);
        let (_, rest) = token.split_once('.').unwrap();
        let (real_header, _) = carol.access.split_once('.').unwrap();
        format!("{real_header}.{rest}")
    };
    let tampered = {
        let mut parts: Vec<String> = carol.access.split('.').map(str::to_owned).collect();
        let raise = with(&|c| c.sub = proto::Snowflake::from_u64(c.sub.get() + 1));
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&raise).unwrap());
        parts.join(".")
    };
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "expired",
            key.sign_claims(&with(&|c| {
                c.iat = now() - 3600;
                c.exp = now() - 120;
            })),
            TokenError::Expired,
        ),
        ("tampered claims", tampered, TokenError::BadSignature),
        (
            "wrong audience",
            key.sign_claims(&with(&|c| c.aud = "someone-else".into())),
            TokenError::WrongAudience,
        ),
        (
            "wrong issuer",
            key.sign_claims(&with(&|c| c.iss = "evil".into())),
            TokenError::WrongIssuer,
        ),
        (
            "a key not in the JWKS",
            other_key.sign_claims(&good),
            TokenError::UnknownKey,
        ),
        (
            "another key under our kid",
            forged_kid,
            TokenError::BadSignature,
        ),
        (
            "alg none",
            unsigned(
                &json!({"alg": "none", "typ": "JWT", "kid": key.kid()}),
                &good,
            ),
            TokenError::Malformed,
        ),
        (
            "alg HS256 with the public key as secret",
            {
                let jwk = serde_json::to_value(key.public_jwk()).unwrap();
                let secret = jwk["x"].as_str().unwrap().to_owned();
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some(key.kid().to_owned());
                jsonwebtoken::encode(
                    &header,
                    &good,
                    &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                )
                .unwrap()
            },
            TokenError::Malformed,
        ),
        ("garbage", "not.a.jwt".to_owned(), TokenError::Malformed),
    ];

    let verifier = Verifier::fetching(
        &auth.url("/.well-known/jwks.json"),
        "natter",
        "natter-auth",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    for (what, token, expected) in cases {
        assert_eq!(
            verifier.verify_fetching(&token).await,
            Err(expected.clone()),
            "{what}"
        );
        let (status, body) = auth.get("/api/v1/users/@me", &token).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            body.to_string().contains("not valid") || expected == TokenError::Expired,
            "{what}: {body}"
        );
    }

    // No token at all.
    let response = auth
        .http
        .get(auth.url("/api/v1/users/@me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn a_second_key_is_published_before_it_signs_so_rotation_needs_no_downtime() {
    let old = support::key_path().display().to_string();
    let new = support::new_key_file().display().to_string();
    // Step 1: the new key is added second: published, not yet signing.
    let before = support::start_with(&[format!("--signing-key={old},{new}")]).await;
    let (status, jwks) = before
        .call(reqwest::Method::GET, "/api/v1/auth/jwks", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert!(key.get("d").is_none(), "never the private part");
    }
    // An edge that fetched the key set now...
    let edge = Verifier::fetching(
        &before.url("/api/v1/auth/jwks"),
        "natter",
        "natter-auth",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // Step 2: the order is swapped; the new key signs.
    let after = support::start_with(&[format!("--signing-key={new},{old}")]).await;
    let dave = after.sign_up("dave").await;
    let header = jsonwebtoken::decode_header(&dave.access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(kids[1]));
    // ...accepts tokens the new key signs.
    assert_eq!(edge.verify(&dave.access).unwrap().sub, dave.id);
}
