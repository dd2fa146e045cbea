//! Sign-up and sign-in: unique case-insensitive usernames, Argon2id hashes, one answer for a wrong
//! username or password, and the brute-force limits.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{self, assert_error, password_of};

#[tokio::test]
async fn a_username_is_unique_whatever_its_case_and_the_password_is_stored_as_argon2id() {
    let auth = support::start().await;
    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-up",
            None,
            json!({"username": "Erin", "password": "erin's password", "display_name": "Erin ✨"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["username"], "erin");
    assert_eq!(body["user"]["display_name"], "Erin ✨");
    assert_eq!(body["user"]["status"], "online");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);

    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-up",
            None,
            json!({"username": "ERIN", "password": "another one"}),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    assert_eq!(body["fields"]["username"], "is taken");
    assert_eq!(auth.count("users").await, 1);

    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users")
        .fetch_one(&auth.db)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("erin's password"));

    // Signing in is case-insensitive too.
    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "eRiN", "password": "erin's password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_wrong_username_and_a_wrong_password_get_the_same_answer_after_the_same_work() {
    let auth = support::start().await;
    auth.sign_up("frank").await;
    let hashes_before = hash_count(&auth).await;
    let (s1, wrong_password) = auth
        .post(
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "frank", "password": "not franks pw"}),
        )
        .await;
    let (s2, wrong_user) = auth
        .post(
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "nobody", "password": "not franks pw"}),
        )
        .await;
    assert_error(
        s1,
        &wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!((s1, &wrong_password), (s2, &wrong_user));
    // Each attempt verified one hash: the unknown user against a dummy.
    assert_eq!(hash_count(&auth).await, hashes_before + 2);
    let metrics = metrics(&auth).await;
    assert!(
        metrics.contains(
            r#"natter_auth_sign_ins_total{outcome="invalid_credentials",service="auth"} 2"#
        ),
        "{metrics}"
    );
}

async fn metrics(auth: &support::TestAuth) -> String {
    auth.http
        .get(auth.running.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn hash_count(auth: &support::TestAuth) -> u64 {
    metrics(auth)
        .await
        .lines()
        .find(|l| l.starts_with("natter_auth_password_hash_duration_seconds_count"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_even_for_the_right_password_but_not_other_accounts() {
    let auth = support::start_with(&["--sign-in-failures-per-account=2/1h".to_owned()]).await;
    auth.sign_up("grace").await;
    auth.sign_up("heidi").await;
    for _ in 0..2 {
        let (status, body) = auth
            .post(
                "/api/v1/auth/sign-in",
                None,
                json!({"username": "grace", "password": "guess guess"}),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let response = auth
        .http
        .post(auth.url("/api/v1/auth/sign-in"))
        .json(&json!({"username": "grace", "password": password_of("grace")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 1800, "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Someone else signs in fine from the same address.
    auth.sign_in("heidi").await;
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_lock_that_address() {
    let auth = support::start_with(&["--sign-in-failures-per-ip=3/1h".to_owned()]).await;
    auth.sign_up("ivan").await;
    for name in ["a1", "a2", "a3"] {
        let (status, _) = auth
            .post(
                "/api/v1/auth/sign-in",
                None,
                json!({"username": name, "password": "guess guess"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "ivan", "password": password_of("ivan")}),
        )
        .await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_with_rate_limit_headers() {
    let auth = support::start_with(&["--sign-up-rate=2/1h".to_owned()]).await;
    let sign_up = |name: &'static str| {
        auth.http
            .post(auth.url("/api/v1/auth/sign-up"))
            .json(&json!({"username": name, "password": password_of(name)}))
            .send()
    };
    let first = sign_up("judy").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert!(first.headers().contains_key("x-ratelimit-reset"));
    assert_eq!(sign_up("kim").await.unwrap().status(), StatusCode::CREATED);
    let third = sign_up("leo").await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()["x-ratelimit-remaining"], "0");
    assert!(third.headers().contains_key("retry-after"));
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(auth.count("users").await, 2);
}
