//! Starting auth for a test and talking to it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use proto::Snowflake;
use proto::subjects::{Prefix, Subjects};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::{Running, Stack};

/// One signing key for the whole test run (each test still gets its own service).
pub(crate) fn key_path() -> &'static PathBuf {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    KEY.get_or_init(new_key_file)
}

pub(crate) fn new_key_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("key")));
    auth::keys::write_new_key(&path).expect("write a test signing key");
    path
}

pub(crate) struct TestAuth {
    pub(crate) running: Running,
    pub(crate) http: reqwest::Client,
    pub(crate) db: sqlx::PgPool,
    pub(crate) prefix: Prefix,
    pub(crate) subjects: Subjects,
    pub(crate) nats: async_nats::Client,
    pub(crate) stack: Stack,
}

/// A signed-in test user.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: Snowflake,
    pub(crate) username: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// Settings that keep tests fast and out of each other's way; `extra` (`--flag=value`) overrides
/// them.
pub(crate) async fn start_with(extra: &[String]) -> TestAuth {
    let stack = Stack::get();
    let database_url = stack.fresh_database().await;
    let prefix = testkit::fresh_prefix();
    let mut args = vec![
        "auth".to_owned(),
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--database-url={database_url}"),
        format!("--nats-url={}", stack.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={}", stack.redis_url),
        format!("--signing-key={}", key_path().display()),
        "--hash-concurrency=2".to_owned(),
        "--sign-up-rate=1000/1m".to_owned(),
        "--sign-in-rate=1000/1m".to_owned(),
        "--sign-in-backoff-per-account-and-address=1000/1s..1s".to_owned(),
        "--sign-in-backoff-per-address=1000/1s..1s".to_owned(),
        "--sign-in-backoff-per-account=1000/1s..1s".to_owned(),
        // Tests build many channels quickly; the tests of these limits set their own.
        "--channel-create-rate=10000/1m".to_owned(),
        "--member-add-rate=10000/1m".to_owned(),
        "--database-max-connections=24".to_owned(),
        // Discovery gathers edges' answers until this deadline; on a loaded CI machine the
        // production 150 ms can miss an edge that is alive, and tests count the edges offered.
        "--discovery-timeout=2s".to_owned(),
        "--log-filter=warn".to_owned(),
    ];
    for arg in extra {
        let flag = arg.split('=').next().unwrap_or_default();
        args.retain(|a| a.split('=').next() != Some(flag));
        args.push(arg.clone());
    }
    let config: auth::Config = kit::config::try_parse_from(args).expect("valid test config");
    let service = auth::Auth::build(config).await.expect("auth starts");
    let running = testkit::spawn(service);
    let nats = async_nats::connect(&stack.nats_url)
        .await
        .expect("connect to NATS");
    TestAuth {
        running,
        http: reqwest::Client::new(),
        db: sqlx::PgPool::connect(&database_url)
            .await
            .expect("connect to the test database"),
        subjects: Subjects::new(prefix.clone()),
        prefix,
        nats,
        stack,
    }
}

pub(crate) async fn start() -> TestAuth {
    start_with(&[]).await
}

impl TestAuth {
    pub(crate) fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    /// Sends `body` (JSON, or nothing) with an optional bearer token; answers status and JSON
    /// (or `Value::Null` for an empty body).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("auth answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
        };
        (status, json)
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub(crate) async fn sign_up(&self, username: &str) -> Account {
        let (status, body) = self
            .post(
                "/api/v1/auth/sign-up",
                None,
                json!({"username": username, "password": password_of(username)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        account(&body)
    }

    /// `account` lets anyone add them to channels (the default is only people they share one
    /// with): what a test that builds channels of strangers needs first.
    pub(crate) async fn allow_adds(&self, account: &Account) {
        let (status, body) = self
            .call(
                Method::PATCH,
                "/api/v1/users/@me/settings",
                Some(&account.access),
                Some(json!({"allow_channel_adds_from": "everyone"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub(crate) async fn sign_in(&self, username: &str) -> Account {
        let (status, body) = self
            .post(
                "/api/v1/auth/sign-in",
                None,
                json!({"username": username, "password": password_of(username)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        account(&body)
    }

    pub(crate) async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&self.db)
                .await
                .unwrap();
        n
    }

    pub(crate) async fn subscribe(&self, subject: String) -> async_nats::Subscriber {
        let sub = self.nats.subscribe(subject).await.unwrap();
        self.nats.flush().await.unwrap();
        sub
    }

    pub(crate) async fn inbox(&self, user: Snowflake) -> async_nats::Subscriber {
        self.subscribe(self.subjects.user_inbox(user)).await
    }

    pub(crate) async fn channel_events(&self, channel: Snowflake) -> async_nats::Subscriber {
        self.subscribe(self.subjects.channel_events(channel)).await
    }
}

/// A password sign-up accepts (zxcvbn scores it 4), different for every user.
pub(crate) fn password_of(username: &str) -> String {
    format!("{username} likes violet kettle drums")
}

pub(crate) fn account(tokens: &Value) -> Account {
    Account {
        id: tokens["user"]["id"].as_str().unwrap().parse().unwrap(),
        username: tokens["user"]["username"].as_str().unwrap().to_owned(),
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// The next event on `sub` (within 5 s), as JSON.
pub(crate) async fn next_event(sub: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("an event within 5 s")
        .expect("the subscription is open");
    serde_json::from_slice(&message.payload).expect("events are JSON")
}

/// The next event named `t` on `sub`, skipping others: an event published just before the test
/// subscribed (a client buffers its publishes) may still arrive first.
pub(crate) async fn next_event_named(sub: &mut async_nats::Subscriber, t: &str) -> Value {
    loop {
        let event = next_event(sub).await;
        if event["t"] == t {
            return event;
        }
    }
}

/// Asserts nothing more arrives on `sub` for a moment.
pub(crate) async fn no_more_events(sub: &mut async_nats::Subscriber) {
    if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(150), sub.next()).await {
        panic!(
            "unexpected event: {}",
            String::from_utf8_lossy(&message.payload)
        );
    }
}

/// Asserts an error answer has the one error shape with `code`, and returns its message.
pub(crate) fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    code: &str,
) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error says why: {body}");
    message.to_owned()
}

pub(crate) fn id_of(value: &Value) -> Snowflake {
    value["id"].as_str().expect("an id string").parse().unwrap()
}

impl TestAuth {
    /// Like [`TestAuth::call`], with an `X-Audit-Log-Reason` (already percent-encoded).
    pub(crate) async fn call_with_reason(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        reason: &str,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("x-audit-log-reason", reason);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("auth answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
        };
        (status, json)
    }

    /// A server `owner` makes: its id, and the server as they see it.
    pub(crate) async fn guild(&self, owner: &Account, name: &str) -> (Snowflake, Value) {
        let (status, body) = self
            .post("/api/v1/guilds", Some(&owner.access), json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (id_of(&body), body)
    }

    /// An invite code to `guild`, made by `by` (any number of uses, a day).
    pub(crate) async fn invite(&self, guild: Snowflake, by: &Account) -> String {
        let (status, body) = self
            .post(
                &format!("/api/v1/guilds/{guild}/invites"),
                Some(&by.access),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["code"].as_str().unwrap().to_owned()
    }

    /// `who` joins `guild` by a fresh invite of `by`.
    pub(crate) async fn join(&self, guild: Snowflake, by: &Account, who: &Account) {
        let code = self.invite(guild, by).await;
        let (status, body) = self
            .post(
                &format!("/api/v1/invites/{code}"),
                Some(&who.access),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// A role `by` creates in `guild` with `permissions` (a decimal string).
    pub(crate) async fn role(
        &self,
        guild: Snowflake,
        by: &Account,
        name: &str,
        permissions: u64,
    ) -> Snowflake {
        let (status, body) = self
            .post(
                &format!("/api/v1/guilds/{guild}/roles"),
                Some(&by.access),
                json!({"name": name, "permissions": permissions.to_string()}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        id_of(&body)
    }

    /// `by` gives `role` to `to`.
    pub(crate) async fn give_role(
        &self,
        guild: Snowflake,
        by: &Account,
        to: Snowflake,
        role: Snowflake,
    ) {
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("/api/v1/guilds/{guild}/members/{to}/roles/{role}"),
                Some(&by.access),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }

    pub(crate) async fn guild_events(&self, guild: Snowflake) -> async_nats::Subscriber {
        self.subscribe(self.subjects.guild_events(guild)).await
    }
}
