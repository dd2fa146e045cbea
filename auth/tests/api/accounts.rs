//! Sign-up and sign-in: unique case-insensitive usernames, Argon2id hashes, one answer for a wrong
//! username or password, and the sign-in throttle: guessing is slowed, the owner is never kept
//! out.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::support::{self, assert_error, password_of};

#[tokio::test]
async fn a_username_is_unique_whatever_its_case_and_the_password_is_stored_as_argon2id() {
    let auth = support::start().await;
    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-up",
            None,
            json!({"username": "Erin", "password": "erin's violet kettle", "display_name": "Erin ✨"}),
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
            json!({"username": "ERIN", "password": "another violet kettle"}),
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
    assert!(!hash.contains("erin's violet kettle"));

    // Signing in is case-insensitive too.
    let (status, body) = auth
        .post(
            "/api/v1/auth/sign-in",
            None,
            json!({"username": "eRiN", "password": "erin's violet kettle"}),
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

/// The throttle as it runs in production (the test defaults are generous so that other tests
/// can fail sign-ins freely).
fn production_throttle() -> Vec<String> {
    [
        "--sign-in-backoff-per-account-and-address=5/1s..15m",
        "--sign-in-backoff-per-address=20/1s..15m",
        "--sign-in-backoff-per-account=5/1s..5m",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// An answer to a sign-in: its status, `Retry-After` if any, and body.
struct SignInAnswer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: serde_json::Value,
}

/// Signs in from `127.0.0.{host}`: a real connection from that address.
async fn sign_in_from(
    auth: &support::TestAuth,
    host: u8,
    username: &str,
    password: &str,
) -> SignInAnswer {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, host]))
        .build()
        .unwrap();
    let response = client
        .post(auth.url("/api/v1/auth/sign-in"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("auth answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| Duration::from_secs(v.to_str().unwrap().parse().unwrap()));
    SignInAnswer {
        status: response.status(),
        retry_after,
        body: response.json().await.unwrap(),
    }
}

/// Signs in as the owner from `127.0.0.{host}`, waiting each `Retry-After` (which must be at most
/// `most`), within `deadline`; answers how many times it had to wait.
async fn owner_gets_in(
    auth: &support::TestAuth,
    host: u8,
    username: &str,
    most: Duration,
    deadline: Duration,
) -> usize {
    let give_up = tokio::time::Instant::now() + deadline;
    let mut waits = 0;
    loop {
        let answer = sign_in_from(auth, host, username, &password_of(username)).await;
        if answer.status == StatusCode::OK {
            return waits;
        }
        assert_error(
            answer.status,
            &answer.body,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        );
        let wait = answer.retry_after.expect("a 429 says how long to wait");
        assert!(wait <= most, "{username} told to wait {wait:?}");
        assert!(
            tokio::time::Instant::now() + wait < give_up,
            "{username} still kept out after {waits} waits"
        );
        tokio::time::sleep(wait).await;
        waits += 1;
    }
}

/// Guesses `username`'s password from `127.0.0.{host}` until stopped.
fn keep_guessing(auth: &support::TestAuth, host: u8, username: &'static str) -> JoinHandle<()> {
    let url = auth.url("/api/v1/auth/sign-in");
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, host]))
            .build()
            .unwrap();
        loop {
            let _ = client
                .post(&url)
                .json(&json!({"username": username, "password": "guess guess guess"}))
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test]
async fn an_attackers_failures_from_other_addresses_never_keep_the_owner_out() {
    let auth = support::start_with(&production_throttle()).await;
    // Signed up from 127.0.0.1: the owner's usual address.
    auth.sign_up("grace").await;
    for attacker in [2, 3, 4] {
        for _ in 0..10 {
            let answer = sign_in_from(&auth, attacker, "grace", "guess guess guess").await;
            assert_ne!(answer.status, StatusCode::OK);
        }
    }
    // From the usual address, at once.
    let answer = sign_in_from(&auth, 1, "grace", &password_of("grace")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // From an address never seen (a new phone), after at most the account's delay.
    owner_gets_in(
        &auth,
        9,
        "grace",
        Duration::from_secs(300),
        Duration::from_secs(60),
    )
    .await;
}

#[tokio::test]
async fn one_address_guessing_without_pause_cannot_keep_accounts_locked() {
    let auth = support::start_with(&production_throttle()).await;
    auth.sign_up("heidi").await;
    auth.sign_up("ivan").await;
    let attack = [
        keep_guessing(&auth, 2, "heidi"),
        keep_guessing(&auth, 2, "ivan"),
    ];
    // Let the attack get going: the first five guesses on each account are free.
    let started = hash_count(&auth).await;
    while hash_count(&auth).await < started + 10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each owner, from an address of their own that has never signed in, gets in while the
    // attacker keeps guessing.
    for (host, owner) in [(5, "heidi"), (6, "ivan")] {
        owner_gets_in(
            &auth,
            host,
            owner,
            Duration::from_secs(300),
            Duration::from_secs(60),
        )
        .await;
    }
    for task in attack {
        task.abort();
    }
}

#[tokio::test]
async fn guessing_is_slowed_per_account_and_address_across_addresses_and_across_accounts() {
    // Production's shape with longer first waits, so that a slow machine answering one request
    // cannot outlast a wait before the next request arrives.
    let auth = support::start_with(&[
        "--sign-in-backoff-per-account-and-address=5/4s..15m".to_owned(),
        "--sign-in-backoff-per-address=20/1m..15m".to_owned(),
        "--sign-in-backoff-per-account=5/1s..5m".to_owned(),
    ])
    .await;
    auth.sign_up("judy").await;

    // One address, one account: five free guesses, then each waits longer.
    let checks_before = hash_count(&auth).await;
    for _ in 0..5 {
        let answer = sign_in_from(&auth, 2, "judy", "guess guess guess").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    }
    let answer = sign_in_from(&auth, 2, "judy", "guess guess guess").await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let first = answer.retry_after.unwrap();
    tokio::time::sleep(first).await;
    let answer = sign_in_from(&auth, 2, "judy", "guess guess guess").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    let answer = sign_in_from(&auth, 2, "judy", "guess guess guess").await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.retry_after.unwrap() > first, "the wait grows");
    assert_eq!(
        hash_count(&auth).await,
        checks_before + 6,
        "six guesses checked"
    );

    // Many addresses, one account under pressure: each new address waits before its guess.
    for host in 10..20 {
        let answer = sign_in_from(&auth, host, "judy", "guess guess guess").await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.body
        );
    }
    assert_eq!(
        hash_count(&auth).await,
        checks_before + 6,
        "no more guesses checked"
    );

    // One address, many accounts (spraying): twenty guesses, then it waits.
    let checks_before = hash_count(&auth).await;
    let mut refused = 0;
    for n in 0..30 {
        let answer = sign_in_from(&auth, 30, &format!("user{n}"), "guess guess guess").await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    assert_eq!(hash_count(&auth).await, checks_before + 20);
}

#[tokio::test]
async fn a_neighbour_behind_the_same_address_cannot_spend_the_owners_sign_ins() {
    let mut flags = production_throttle();
    flags.push("--sign-in-rate=10/1h".to_owned());
    let auth = support::start_with(&flags).await;
    // The owner signed up from 127.0.0.7; a neighbour behind the same NAT sprays other accounts
    // from there until the address is refused.
    let (status, body) = {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, 7]))
            .build()
            .unwrap();
        let response = client
            .post(auth.url("/api/v1/auth/sign-up"))
            .json(&json!({"username": "kim", "password": password_of("kim")}))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut last = StatusCode::OK;
    for n in 0..40 {
        last = sign_in_from(&auth, 7, &format!("user{n}"), "guess guess guess")
            .await
            .status;
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is throttled"
    );
    let answer = sign_in_from(&auth, 7, "kim", &password_of("kim")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
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
