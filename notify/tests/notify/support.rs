//! A world for notification tests: real auth, presence, an edge, and notify in this process,
//! against the real stack, plus a push service under the test's control ([`PushService`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{SinkExt, StreamExt};
use proto::Snowflake;
use serde_json::{Value, json};
use testkit::{Running, Stack, TcpProxy};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for something that should happen.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) struct World {
    pub(crate) auth: Running,
    /// Between auth and its database: cut, auth answers that it failed.
    pub(crate) auth_database: TcpProxy,
    pub(crate) edge: Running,
    pub(crate) notify: Running,
    /// For publishing into the chat stream what an edge or media would (a late edit, a
    /// processing update).
    pub(crate) nats: async_nats::Client,
    pub(crate) subjects: proto::subjects::Subjects,
    _presence: Running,
    _persister: Running,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: Snowflake,
    pub(crate) name: String,
    pub(crate) token: String,
}

/// [`World::club`]: three people and the server they share, with its first channel.
pub(crate) struct Club {
    pub(crate) ann: User,
    pub(crate) bob: User,
    pub(crate) cat: User,
    pub(crate) guild: Snowflake,
    pub(crate) general: Snowflake,
}

fn key_file() -> std::path::PathBuf {
    static KEY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("notifykey")));
        auth::keys::write_new_key(&path).expect("write a signing key");
        path
    })
    .clone()
}

impl World {
    /// Everything, with notify batching each person's pushes per channel over `push_interval`.
    pub(crate) async fn start(push_interval: &str) -> Self {
        // Boxed: starting every service makes a large future, which each test would carry.
        Box::pin(Self::start_all(push_interval)).await
    }

    async fn start_all(push_interval: &str) -> Self {
        let stack = Stack::get();
        let prefix = testkit::fresh_prefix();
        let (auth_database, database_url) =
            TcpProxy::in_front_of(&stack.fresh_database().await).await;
        let auth_config: auth::Config = kit::config::try_parse_from([
            "auth".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--database-url={database_url}"),
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={prefix}"),
            format!("--redis-url={}", stack.redis_url),
            format!("--signing-key={}", key_file().display()),
            "--sign-up-rate=1000/1m".to_owned(),
            "--log-filter=warn".to_owned(),
        ])
        .expect("valid auth config");
        let auth = testkit::spawn(auth::Auth::build(auth_config).await.expect("auth starts"));
        testkit::wait_ready(&auth).await;
        let keyspace = testkit::history_keyspace(&stack).await;
        let common = [
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={prefix}"),
            "--stream-max-bytes=67108864".to_owned(),
            format!("--cql-nodes={}", stack.cql_nodes),
            format!("--cql-keyspace={}", keyspace.as_str()),
            "--cql-request-timeout=10s".to_owned(),
            "--log-filter=warn".to_owned(),
        ];
        let args = |name: &str, extra: &[String]| {
            let mut all = vec![
                name.to_owned(),
                "--http-addr=127.0.0.1:0".to_owned(),
                "--metrics-addr=127.0.0.1:0".to_owned(),
            ];
            all.extend(common.iter().cloned());
            all.extend(extra.iter().cloned());
            all
        };
        let persister_config: persister::Config =
            kit::config::try_parse_from(args("persister", &[])).expect("valid persister config");
        let persister = testkit::spawn(
            persister::Persister::build(persister_config)
                .await
                .expect("persister starts"),
        );
        testkit::wait_ready(&persister).await;
        let presence_config: presence::Config = kit::config::try_parse_from([
            "presence".to_owned(),
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--nats-url={}", stack.nats_url),
            format!("--nats-prefix={prefix}"),
            format!("--redis-url={}", stack.redis_url),
            "--log-filter=warn".to_owned(),
        ])
        .expect("valid presence config");
        let presence = testkit::spawn(
            presence::Presence::build(presence_config)
                .await
                .expect("presence starts"),
        );
        testkit::wait_ready(&presence).await;
        let auth_url = format!("--auth-url={}", auth.url(""));
        let edge_config: edge::Config = kit::config::try_parse_from(args(
            "edge",
            &[
                auth_url.clone(),
                "--worker-id=1".to_owned(),
                "--send-rate=1000/1s".to_owned(),
            ],
        ))
        .expect("valid edge config");
        let edge = testkit::spawn(edge::Edge::build(edge_config).await.expect("edge starts"));
        testkit::wait_ready(&edge).await;
        let vapid = std::env::temp_dir().join(format!("{}.pem", testkit::unique("vapid")));
        let notify_config: notify::Config = kit::config::try_parse_from(args(
            "notify",
            &[
                auth_url,
                format!("--vapid-key={}", vapid.display()),
                format!("--push-interval={push_interval}"),
            ],
        ))
        .expect("valid notify config");
        let notify = testkit::spawn(
            notify::Notify::build(notify_config)
                .await
                .expect("notify starts"),
        );
        testkit::wait_ready(&notify).await;
        let nats = async_nats::connect(stack.nats_url.as_str())
            .await
            .expect("NATS reachable");
        Self {
            auth,
            auth_database,
            edge,
            notify,
            nats,
            subjects: proto::subjects::Subjects::new(prefix),
            _presence: presence,
            _persister: persister,
            http: reqwest::Client::new(),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        url: String,
        user: Option<&User>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, url);
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A request to auth's REST API as `user`.
    pub(crate) async fn auth(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.request(method, self.auth.url(path), Some(user), body)
            .await
    }

    /// A request to notify's REST API as `user`.
    pub(crate) async fn notify(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
    ) -> (u16, Value) {
        self.request(method, self.notify.url(path), Some(user), None)
            .await
    }

    /// A request to the edge's REST API as `user`.
    pub(crate) async fn edge(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.request(method, self.edge.url(path), Some(user), body)
            .await
    }

    pub(crate) async fn sign_up(&self, name: &str) -> User {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                self.auth.url("/api/v1/auth/sign-up"),
                None,
                Some(json!({"username": name, "password": format!("{name} likes violet kettle drums")})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        User {
            id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
            name: name.to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// The cast of most tests: ann owns the server "Club", which bob and cat joined by invite.
    pub(crate) async fn club(&self) -> Club {
        let (ann, bob, cat) = (
            self.sign_up("ann").await,
            self.sign_up("bob").await,
            self.sign_up("cat").await,
        );
        let (guild, general) = self.guild(&ann, &[&bob, &cat]).await;
        Club {
            ann,
            bob,
            cat,
            guild,
            general,
        }
    }

    /// A server `owner` makes, with `members` joined by invite: its id and `general`'s.
    pub(crate) async fn guild(&self, owner: &User, members: &[&User]) -> (Snowflake, Snowflake) {
        let (status, body) = self
            .auth(
                reqwest::Method::POST,
                "/api/v1/guilds",
                owner,
                Some(json!({"name": "Club"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let guild: Snowflake = body["id"].as_str().unwrap().parse().unwrap();
        let general = body["channels"][0]["id"].as_str().unwrap().parse().unwrap();
        for member in members {
            let (status, invite) = self
                .auth(
                    reqwest::Method::POST,
                    &format!("/api/v1/guilds/{guild}/invites"),
                    owner,
                    Some(json!({})),
                )
                .await;
            assert_eq!(status, 201, "{invite}");
            let code = invite["code"].as_str().unwrap();
            let (status, body) = self
                .auth(
                    reqwest::Method::POST,
                    &format!("/api/v1/invites/{code}"),
                    member,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        (guild, general)
    }

    /// `author` posts `content` in `channel` through the edge; the message's id.
    pub(crate) async fn say(&self, author: &User, channel: Snowflake, content: &str) -> Snowflake {
        let (status, body) = self
            .edge(
                reqwest::Method::POST,
                &format!("/api/v1/channels/{channel}/messages"),
                author,
                Some(json!({"content": content})),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Changes `user`'s notification settings of `guild` (`@me` for DMs).
    pub(crate) async fn settings(&self, user: &User, guild: &str, patch: Value) -> Value {
        let (status, body) = self
            .auth(
                reqwest::Method::PATCH,
                &format!("/api/v1/users/@me/guilds/{guild}/settings"),
                user,
                Some(patch),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Subscribes one browser of `user`'s to `push`'s endpoint `name`.
    pub(crate) async fn subscribe(&self, user: &User, push: &PushService, name: &str) {
        let (status, body) = self
            .auth(
                reqwest::Method::POST,
                "/api/v1/users/@me/push-subscriptions",
                user,
                Some(push.subscription(name)),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }

    /// The value of one of notify's counters whose line begins with `name` and holds `label`
    /// (0 when not yet counted).
    pub(crate) async fn notify_metric(&self, name: &str, label: &str) -> u64 {
        let text = reqwest::get(self.notify.metrics_url())
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }
}

/// A gateway session, kept open (an active device), optionally with a status.
pub(crate) struct Session {
    _socket: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Identifies `user` on `world`'s edge with `status` and keeps the socket open and
    /// heartbeating until dropped.
    pub(crate) async fn open(world: &World, user: &User, status: &str) -> Self {
        let url = format!("ws://127.0.0.1:{}/gateway", world.edge.port);
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the edge accepts");
        let hello = next_json(&mut socket).await;
        let interval = hello["d"]["heartbeat_interval"].as_u64().unwrap_or(40_000);
        let identify = json!({"op": 2, "d": {"token": user.token}});
        socket
            .send(Message::text(identify.to_string()))
            .await
            .expect("IDENTIFY");
        let ready = next_json(&mut socket).await;
        assert_eq!(ready["t"], "READY", "{ready}");
        if status != "online" {
            let op3 = json!({"op": 3, "d": {"status": status}});
            socket
                .send(Message::text(op3.to_string()))
                .await
                .expect("op 3");
        }
        let task = tokio::spawn(async move {
            let mut beat = tokio::time::interval(Duration::from_millis(interval / 2));
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let frame = json!({"op": 1, "d": null}).to_string();
                        if socket.send(Message::text(frame)).await.is_err() { return; }
                    }
                    frame = socket.next() => if frame.is_none() { return },
                }
            }
        });
        Self { _socket: task }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self._socket.abort();
    }
}

async fn next_json(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("frames are JSON");
        }
    }
}

/// One push the push service received, decrypted.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) endpoint: String,
    pub(crate) topic: Option<String>,
    pub(crate) authorization: String,
    pub(crate) payload: Value,
}

struct Browser {
    name: String,
    keys: ece::EcKeyComponents,
    public: Vec<u8>,
    auth: [u8; 16],
}

#[derive(Clone, Default)]
struct Shared {
    browsers: Arc<Mutex<Vec<Browser>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// An RFC 8030 push service under the test's control: each endpoint `/push/{name}` is one
/// browser with its own RFC 8291 keys; what arrives is decrypted with them and recorded. An
/// endpoint whose name begins with `gone` answers 410 Gone, as for an expired subscription.
pub(crate) struct PushService {
    shared: Shared,
    port: u16,
    _server: tokio::task::JoinHandle<()>,
}

impl PushService {
    pub(crate) async fn start() -> Self {
        let shared = Shared::default();
        let app = axum::Router::new()
            .route("/push/{name}", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the push service runs");
        });
        Self {
            shared,
            port,
            _server: server,
        }
    }

    /// A new browser's subscription (what `PushSubscription.toJSON()` gives) at `/push/{name}`.
    pub(crate) fn subscription(&self, name: &str) -> Value {
        let (pair, auth) = ece::generate_keypair_and_auth_secret().expect("keys");
        let browser = Browser {
            name: name.to_owned(),
            keys: pair.raw_components().expect("key components"),
            public: pair.pub_as_raw().expect("public key"),
            auth,
        };
        let value = json!({
            "endpoint": self.endpoint(name),
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(&browser.public),
                "auth": URL_SAFE_NO_PAD.encode(browser.auth),
            }
        });
        self.shared.browsers.lock().unwrap().push(browser);
        value
    }

    pub(crate) fn endpoint(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/push/{name}", self.port)
    }

    /// Everything received so far, in order.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until a push to `name` whose payload satisfies `matches` has arrived.
    pub(crate) async fn wait_for(&self, name: &str, matches: impl Fn(&Value) -> bool) -> Received {
        let endpoint = self.endpoint(name);
        testkit::eventually(&format!("a push to {name}"), WAIT, || {
            let found = self
                .received()
                .into_iter()
                .find(|r| r.endpoint == endpoint && matches(&r.payload));
            async move { found }
        })
        .await
    }
}

async fn receive(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let payload = {
        let browsers = shared.browsers.lock().unwrap();
        let Some(browser) = browsers.iter().find(|b| b.name == name) else {
            return StatusCode::NOT_FOUND;
        };
        assert_eq!(
            header("content-encoding").as_deref(),
            Some("aes128gcm"),
            "RFC 8291 encoding"
        );
        let plain = ece::decrypt(&browser.keys, &browser.auth, &body).expect("the push decrypts");
        serde_json::from_slice::<Value>(&plain).expect("the payload is JSON")
    };
    let endpoint = format!(
        "http://127.0.0.1:{}/push/{name}",
        headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit(':').next())
            .unwrap_or_default()
    );
    shared.received.lock().unwrap().push(Received {
        endpoint,
        topic: header("topic"),
        authorization: header("authorization").unwrap_or_default(),
        payload,
    });
    if name.starts_with("gone") {
        StatusCode::GONE
    } else {
        StatusCode::CREATED
    }
}

/// `user`'s inbox as (message id, text) pairs, newest first.
pub(crate) async fn inbox(world: &World, user: &User) -> Vec<(String, String)> {
    let (status, body) = world
        .notify(reqwest::Method::GET, "/api/v1/users/@me/mentions", user)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
