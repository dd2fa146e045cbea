//! A world for gateway tests: real auth and several real edges in this process, against the real
//! stack, with gateway clients speaking the protocol over real WebSockets.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::Snowflake;
use proto::subjects::Prefix;
use serde_json::{Value, json};
use testkit::{Running, Stack};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) struct World {
    pub(crate) stack: Stack,
    /// Auth's database, for tests that build large worlds faster than REST can.
    pub(crate) database_url: String,
    pub(crate) prefix: Prefix,
    pub(crate) keyspace: String,
    /// Where this world's services find NATS and the CQL store: the stack's, unless the test
    /// brought private ones ([`Engines`]).
    pub(crate) engines: Engines,
    pub(crate) auth: Running,
    pub(crate) persister: Option<Running>,
    pub(crate) edges: Vec<Running>,
    http: reqwest::Client,
}

/// A signed-up user with an access token.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: Snowflake,
    pub(crate) name: String,
    pub(crate) token: String,
}

fn key_file() -> std::path::PathBuf {
    static KEY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("{}.pem", testkit::unique("edgekey")));
        auth::keys::write_new_key(&path).expect("write a signing key");
        path
    })
    .clone()
}

/// The NATS and CQL store a world's services use.
#[derive(Debug, Clone)]
pub(crate) struct Engines {
    pub(crate) nats_url: String,
    /// `None`: the stack's Cassandra, with the keyspace every test of this process shares.
    pub(crate) cql_nodes: Option<String>,
    /// More store flags every service takes (a ring's replication and consistency).
    pub(crate) cql_args: Vec<String>,
}

impl Engines {
    /// NATS through `nats_url` (a private server, or a proxy) and the stack's CQL store.
    pub(crate) fn nats(nats_url: String) -> Self {
        Self {
            nats_url,
            cql_nodes: None,
            cql_args: Vec::new(),
        }
    }
}

/// Auth's configuration in a world: its database, NATS and prefix, limits out of the way.
fn auth_config(
    stack: &Stack,
    database_url: &str,
    engines: &Engines,
    prefix: &Prefix,
    auth_args: &[&str],
) -> auth::Config {
    let args = auth_args_of(stack, database_url, engines, prefix, auth_args);
    kit::config::try_parse_from(["auth".to_owned()].into_iter().chain(args))
        .expect("valid auth config")
}

/// Auth's flags in a world (its HTTP and metrics ports the OS's choice), `auth_args` last.
fn auth_args_of(
    stack: &Stack,
    database_url: &str,
    engines: &Engines,
    prefix: &Prefix,
    auth_args: &[&str],
) -> Vec<String> {
    [
        "--http-addr=127.0.0.1:0".to_owned(),
        "--metrics-addr=127.0.0.1:0".to_owned(),
        format!("--database-url={database_url}"),
        format!("--nats-url={}", engines.nats_url),
        format!("--nats-prefix={prefix}"),
        format!("--redis-url={}", stack.redis_url),
        format!("--signing-key={}", key_file().display()),
        "--sign-up-rate=1000/1m".to_owned(),
        // Tests build many channels quickly; the tests of these limits set their own.
        "--channel-create-rate=10000/1m".to_owned(),
        "--member-add-rate=10000/1m".to_owned(),
        "--invite-create-rate=100000/1m".to_owned(),
        // Discovery gathers edges' answers until this deadline; on a loaded CI machine the
        // production 150 ms can miss an edge that is alive, and tests count the edges offered.
        "--discovery-timeout=2s".to_owned(),
        "--log-filter=warn".to_owned(),
    ]
    .into_iter()
    .chain(stack.livekit().map(|lk| lk.auth_args()).unwrap_or_default())
    // A flag among `auth_args` replaces the world's (a test's own media server).
    .filter(|a| {
        let flag = a.split('=').next().unwrap_or_default();
        !auth_args.iter().any(|o| o.split('=').next() == Some(flag))
    })
    .chain(auth_args.iter().map(|a| (*a).to_owned()))
    .collect()
}

impl World {
    /// The flags of another auth instance beside this world's, for running it as a process
    /// (`testkit::ServiceProcess`, which adds `--http-addr`).
    #[allow(dead_code)] // used by the fault tests, not by every test crate that includes this
    pub(crate) fn another_auth_args(&self, auth_args: &[&str]) -> Vec<String> {
        let mut args = auth_args_of(
            &self.stack,
            &self.database_url,
            &self.engines,
            &self.prefix,
            auth_args,
        );
        args.retain(|a| !a.starts_with("--http-addr="));
        args
    }

    /// The configuration of another auth instance beside this world's (same database, NATS,
    /// prefix and signing key), with `auth_args` added.
    #[allow(dead_code)] // used by the fault tests, not by every test crate that includes this
    pub(crate) fn another_auth_config(&self, auth_args: &[&str]) -> auth::Config {
        auth_config(
            &self.stack,
            &self.database_url,
            &self.engines,
            &self.prefix,
            auth_args,
        )
    }

    /// Auth plus `edges` edges sharing one fresh prefix, each edge with `edge_args` added.
    pub(crate) async fn start(edges: usize, edge_args: &[&str]) -> Self {
        let stack = Stack::get();
        let engines = Engines::nats(stack.nats_url.clone());
        Self::start_on(engines, edges, edge_args).await
    }

    /// Like [`World::start`], with `auth_args` added to auth's.
    pub(crate) async fn start_with_auth(
        edges: usize,
        edge_args: &[&str],
        auth_args: &[&str],
    ) -> Self {
        let engines = Engines::nats(Stack::get().nats_url.clone());
        Box::pin(Self::start_on_with(engines, edges, edge_args, auth_args)).await
    }

    /// Like [`World::start`], on the engines a test brought.
    pub(crate) async fn start_on(engines: Engines, edges: usize, edge_args: &[&str]) -> Self {
        // Boxed: the world's start is large, and every test's future would hold it.
        Box::pin(Self::start_on_with(engines, edges, edge_args, &[])).await
    }

    async fn start_on_with(
        engines: Engines,
        edges: usize,
        edge_args: &[&str],
        auth_args: &[&str],
    ) -> Self {
        testkit::logs();
        let stack = Stack::get();
        let prefix = testkit::fresh_prefix();
        let database_url = stack.fresh_database().await;
        let auth_config = auth_config(&stack, &database_url, &engines, &prefix, auth_args);
        let auth = testkit::spawn(auth::Auth::build(auth_config).await.expect("auth starts"));
        testkit::wait_ready(&auth).await;
        // A private store gets a keyspace of its own, which the persister creates.
        let keyspace = match engines.cql_nodes {
            None => testkit::history_keyspace(&stack).await,
            Some(_) => testkit::fresh_keyspace(),
        }
        .as_str()
        .to_owned();
        let mut world = Self {
            stack,
            database_url,
            prefix,
            keyspace,
            engines,
            auth,
            persister: None,
            edges: Vec::new(),
            http: reqwest::Client::new(),
        };
        world.start_persister(edge_args).await;
        for worker in 0..edges {
            world.add_edge(worker as u16 + 1, edge_args).await;
        }
        world
    }

    /// Arguments every service of this world shares: NATS prefix, stream, CQL store.
    pub(crate) fn common_args(&self) -> Vec<String> {
        let cql_nodes = self.engines.cql_nodes.as_ref();
        vec![
            format!("--nats-url={}", self.engines.nats_url),
            format!("--nats-prefix={}", self.prefix),
            "--stream-max-bytes=67108864".to_owned(),
            format!("--cql-nodes={}", cql_nodes.unwrap_or(&self.stack.cql_nodes)),
            format!("--cql-keyspace={}", self.keyspace),
            "--log-filter=warn".to_owned(),
        ]
        .into_iter()
        .chain(self.engines.cql_args.iter().cloned())
        .collect()
    }

    pub(crate) fn edge_config(&self, worker: u16, extra: &[&str]) -> edge::Config {
        let mut args = vec![
            "--http-addr=127.0.0.1:0".to_owned(),
            "--metrics-addr=127.0.0.1:0".to_owned(),
            format!("--auth-url={}", self.auth.url("")),
            format!("--worker-id={worker}"),
        ];
        args.extend(self.common_args());
        // A flag among `extra` replaces the world's (an edge reaching NATS through a proxy, or
        // auth through a gate).
        let flag = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        let overridden: Vec<String> = extra.iter().map(|a| flag(a)).collect();
        args.retain(|a| !overridden.contains(&flag(a)));
        args.insert(0, "edge".to_owned());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        kit::config::try_parse_from(args).expect("valid edge config")
    }

    /// Starts this world's persister (in process). Stream settings among `extra` (the edges'
    /// arguments) apply to it too, so every service agrees on the stream.
    pub(crate) async fn start_persister(&mut self, extra: &[&str]) {
        let config = self.persister_config(extra);
        let persister = testkit::spawn(
            persister::Persister::build(config)
                .await
                .expect("persister starts"),
        );
        testkit::wait_ready(&persister).await;
        self.persister = Some(persister);
    }

    /// A persister's configuration in this world, taking the stream settings among `extra`.
    pub(crate) fn persister_config(&self, extra: &[&str]) -> persister::Config {
        let mut args = vec!["persister".to_owned(), "--http-addr=127.0.0.1:0".to_owned()];
        args.extend(self.persister_args(extra));
        kit::config::try_parse_from(args).expect("valid persister config")
    }

    /// A persister's flags in this world but `--http-addr`, for running it as a process
    /// (`testkit::ServiceProcess`, which adds it), taking the stream settings among `extra`.
    pub(crate) fn persister_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["--metrics-addr=127.0.0.1:0".to_owned()];
        args.extend(self.common_args());
        args.extend(
            extra
                .iter()
                .filter(|a| a.starts_with("--stream-"))
                .map(|s| (*s).to_owned()),
        );
        args
    }

    /// Waits until the persister has written everything in the stream to the store.
    pub(crate) async fn persisted(&self) {
        let nodes: Vec<String> = match &self.engines.cql_nodes {
            Some(nodes) => nodes.split(',').map(str::to_owned).collect(),
            None => self.stack.cql_nodes(),
        };
        testkit::wait_persisted(
            &self.engines.nats_url,
            &self.prefix,
            &nodes,
            &self.keyspace,
            Duration::from_secs(60),
        )
        .await;
    }

    /// Every message of `channel` after `anchor`, oldest first, read as a client catches up:
    /// `after` pages of 100 from edge `edge`, each anchored at the previous page's newest id.
    pub(crate) async fn messages_after(
        &self,
        edge: usize,
        user: &User,
        channel: Snowflake,
        anchor: Snowflake,
    ) -> Vec<Snowflake> {
        let mut all = Vec::new();
        let mut anchor = anchor;
        loop {
            let path = format!("/api/v1/channels/{channel}/messages?limit=100&after={anchor}");
            let (status, page) = self
                .edge_call(edge, reqwest::Method::GET, &path, user, None)
                .await;
            assert_eq!(status, 200, "{path}: {page}");
            let ids: Vec<Snowflake> = page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().parse().unwrap())
                .collect();
            let Some(newest) = ids.first() else {
                return all;
            };
            anchor = *newest;
            all.extend(ids.into_iter().rev());
        }
    }

    /// Stops this world's persister; what it had in hand is not acknowledged.
    pub(crate) fn stop_persister(&mut self) {
        self.persister = None;
    }

    /// An edge's `/metrics`, as text.
    pub(crate) async fn edge_metrics(&self, edge: usize) -> String {
        reqwest::get(self.edges[edge].metrics_url())
            .await
            .expect("the edge answers /metrics")
            .text()
            .await
            .expect("/metrics is text")
    }

    /// The value of an edge's metric line starting `name` and holding `label` (0 when absent).
    pub(crate) async fn edge_metric(&self, edge: usize, name: &str, label: &str) -> u64 {
        let text = self.edge_metrics(edge).await;
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// An edge's HTTP base URL.
    pub(crate) fn edge_url(&self, edge: usize, path: &str) -> String {
        self.edges[edge].url(path)
    }

    /// A request to an edge's REST API as `user`.
    pub(crate) async fn edge_call(
        &self,
        edge: usize,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.edge_url(edge, path))
            .bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the edge answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn add_edge(&mut self, worker: u16, extra: &[&str]) {
        let config = self.edge_config(worker, extra);
        let edge = testkit::spawn(edge::Edge::build(config).await.expect("edge starts"));
        testkit::wait_ready(&edge).await;
        // History answers 503 until the edge's store session is up (it connects in the
        // background, so chat does not wait for the store).
        let metrics = edge.metrics_url();
        testkit::eventually("the edge's message store", WAIT * 4, || async {
            let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
            text.lines()
                .any(|l| l.starts_with("natter_edge_store_connected") && l.ends_with(" 1"))
                .then_some(())
        })
        .await;
        self.edges.push(edge);
    }

    pub(crate) fn gateway(&self, edge: usize) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.edges[edge].port)
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.auth.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("auth answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn sign_up(&self, name: &str) -> User {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/auth/sign-up",
                None,
                json!({"username": name, "password": format!("{name} likes violet kettle drums")}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        User {
            id: body["user"]["id"].as_str().unwrap().parse().unwrap(),
            name: name.to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A group channel owned by `owner` with `members` added.
    pub(crate) async fn channel(&self, owner: &User, name: &str, members: &[&User]) -> Snowflake {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/channels",
                Some(&owner.token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id: Snowflake = body["id"].as_str().unwrap().parse().unwrap();
        for member in members {
            self.add_member(owner, id, member).await;
        }
        id
    }

    /// `by` adds `member`, who first lets anyone add them (the default is only people they share
    /// a channel with).
    pub(crate) async fn add_member(&self, by: &User, channel: Snowflake, member: &User) {
        self.allow_adds(member).await;
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/channels/{channel}/members"),
                Some(&by.token),
                json!({"username": member.name}),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }

    /// Puts `members` (user ids) in `channels` directly in PostgreSQL (the first member owns
    /// every channel), making users named `{name}{i}` for ids it does not know: a world of
    /// thousands of memberships in a moment, where REST would take minutes.
    pub(crate) async fn populate(&self, channels: &[i64], members: &[i64]) {
        let db = sqlx::PgPool::connect(&self.database_url)
            .await
            .expect("auth's database");
        let names: Vec<String> = members.iter().map(|id| format!("u{id}")).collect();
        sqlx::query(
            "INSERT INTO users (id, username, password_hash)
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[]) ON CONFLICT DO NOTHING",
        )
        .bind(members)
        .bind(&names)
        .bind(vec!["not a hash".to_owned(); members.len()])
        .execute(&db)
        .await
        .expect("users");
        let owner = members[0];
        let names: Vec<String> = channels.iter().map(|id| format!("room {id}")).collect();
        sqlx::query(
            "INSERT INTO channels (id, kind, name, owner_id)
             SELECT id, 'group', name, $3 FROM unnest($1::BIGINT[], $2::TEXT[]) AS t (id, name)",
        )
        .bind(channels)
        .bind(&names)
        .bind(owner)
        .execute(&db)
        .await
        .expect("channels");
        sqlx::query(
            "INSERT INTO channel_members (channel_id, user_id, role)
             SELECT c, u, CASE WHEN u = $3 THEN 'owner' ELSE 'member' END
             FROM unnest($1::BIGINT[]) AS c, unnest($2::BIGINT[]) AS u",
        )
        .bind(channels)
        .bind(members)
        .bind(owner)
        .execute(&db)
        .await
        .expect("memberships");
        db.close().await;
    }

    /// `user` lets anyone add them to channels.
    pub(crate) async fn allow_adds(&self, user: &User) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                "/api/v1/users/@me/settings",
                Some(&user.token),
                json!({"allow_channel_adds_from": "everyone"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub(crate) async fn remove_member(&self, by: &User, channel: Snowflake, member: &User) {
        let (status, body) = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/channels/{channel}/members/{}", member.name),
                Some(&by.token),
                Value::Null,
            )
            .await;
        assert!(status == 200 || status == 204, "{status} {body}");
    }

    pub(crate) async fn dm(&self, from: &User, to: &User) -> Snowflake {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/users/@me/dms",
                Some(&from.token),
                json!({"username": to.name}),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A gateway client that records what it receives.
pub(crate) struct Client {
    socket: Socket,
    pub(crate) seq: u64,
    pub(crate) ready: Value,
    /// Frames read while waiting for something else (an ACK), handed out by `next` first.
    held: std::collections::VecDeque<Value>,
}

/// How long a test waits for something that should arrive.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

impl Client {
    /// Connects without identifying; answers the socket after HELLO.
    pub(crate) async fn open(url: &str) -> (Socket, Value) {
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the edge accepts");
        let hello = next_json(&mut socket).await.expect("HELLO");
        assert_eq!(hello["op"], 10, "{hello}");
        (socket, hello)
    }

    pub(crate) async fn connect(url: &str, user: &User) -> Self {
        let (mut socket, _) = Self::open(url).await;
        send_json(&mut socket, json!({"op": 2, "d": {"token": user.token}})).await;
        Self::from_socket(socket).await
    }

    /// The client of a socket that has sent IDENTIFY, once READY arrives.
    pub(crate) async fn from_socket(mut socket: Socket) -> Self {
        let ready = next_json(&mut socket).await.expect("READY");
        assert_eq!(ready["t"], "READY", "{ready}");
        let seq = ready["d"]["seq"].as_u64().unwrap();
        Self {
            socket,
            seq,
            ready,
            held: Default::default(),
        }
    }

    pub(crate) async fn resume(
        url: &str,
        user: &User,
        session_id: &str,
        seq: u64,
    ) -> (Self, Vec<Value>) {
        let (mut socket, _) = Self::open(url).await;
        send_json(
            &mut socket,
            json!({"op": 6, "d": {"token": user.token, "session_id": session_id, "seq": seq}}),
        )
        .await;
        let mut replayed = Vec::new();
        loop {
            let frame = next_json(&mut socket)
                .await
                .expect("a replayed event or RESUMED");
            if frame["t"] == "RESUMED" {
                let mut client = Self {
                    socket,
                    seq,
                    ready: frame,
                    held: Default::default(),
                };
                for event in &replayed {
                    client.saw(event);
                }
                return (client, replayed);
            }
            replayed.push(frame);
        }
    }

    fn saw(&mut self, frame: &Value) {
        if let Some(s) = frame["s"].as_u64() {
            self.seq = self.seq.max(s);
        }
    }

    pub(crate) fn session_id(&self) -> String {
        self.ready["d"]["session_id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn send_raw(&mut self, frame: Value) {
        send_json(&mut self.socket, frame).await;
    }

    /// Sends frames in one write: the edge finds them all in one read.
    pub(crate) async fn send_together(&mut self, frames: impl IntoIterator<Item = Value>) {
        for frame in frames {
            self.socket
                .feed(Message::Text(frame.to_string().into()))
                .await
                .expect("queue a frame");
        }
        self.socket.flush().await.expect("send the frames");
    }

    /// Sends any WebSocket message (pings and pongs included).
    pub(crate) async fn send_message(&mut self, message: Message) {
        self.socket.send(message).await.expect("send a message");
    }

    /// Sends a message and waits for its ACK (or ERROR); other frames are kept for `next`.
    pub(crate) async fn send(&mut self, channel: Snowflake, content: &str, nonce: &str) -> Value {
        self.request(
            json!({"op": 20, "d": {"channel_id": channel, "content": content, "nonce": nonce}}),
        )
        .await
    }

    /// Sends a request frame whose `d` carries a `nonce` and waits for the ACK or ERROR that
    /// answers it; other frames are kept for `next`.
    pub(crate) async fn request(&mut self, frame: Value) -> Value {
        let nonce = frame["d"]["nonce"].clone();
        self.send_raw(frame).await;
        loop {
            let frame = next_json(&mut self.socket).await.expect("an ACK or ERROR");
            if (frame["op"] == 24 || frame["op"] == 25) && frame["d"]["nonce"] == nonce {
                return frame;
            }
            self.held.push_back(frame);
        }
    }

    /// The next frame (within [`WAIT`]); `None` when the socket closed or nothing came.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        let frame = match self.held.pop_front() {
            Some(frame) => frame,
            None => next_json(&mut self.socket).await?,
        };
        self.saw(&frame);
        Some(frame)
    }

    /// The next frame if one arrives within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        if let Some(frame) = self.held.pop_front() {
            return Some(frame);
        }
        loop {
            match tokio::time::timeout(wait, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    self.saw(&frame);
                    return Some(frame);
                }
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    /// The next dispatch named `t`, skipping others.
    pub(crate) async fn next_event(&mut self, t: &str) -> Value {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {t} arrived"));
            if frame["t"] == t {
                return frame;
            }
        }
    }

    /// Every MESSAGE_CREATE content until `count` arrived or `WAIT` passed.
    pub(crate) async fn messages(&mut self, count: usize) -> Vec<String> {
        let mut contents = Vec::new();
        while contents.len() < count {
            let Some(frame) = self.next().await else {
                break;
            };
            if frame["t"] == "MESSAGE_CREATE" {
                contents.push(frame["d"]["content"].as_str().unwrap().to_owned());
            }
        }
        contents
    }

    /// Asserts no MESSAGE_CREATE arrives for a moment.
    pub(crate) async fn no_messages(&mut self) {
        for frame in self.held.drain(..) {
            assert_ne!(frame["t"], "MESSAGE_CREATE", "unexpected {frame}");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout_at(deadline, self.socket.next()).await
        {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_ne!(frame["t"], "MESSAGE_CREATE", "unexpected {frame}");
            }
        }
    }

    /// Reads until the server closes, answering the close code.
    pub(crate) async fn closed(&mut self) -> Option<u16> {
        closed(&mut self.socket).await
    }

    /// Reads until the server closes, answering the close code, however quiet the socket is
    /// meanwhile; panics if it is still open after `bound`.
    #[allow(dead_code)] // for edge/tests/event_faults.rs, which shares this file
    pub(crate) async fn closed_within(&mut self, bound: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(Some(CloseFrame { code, .. }))))) => {
                    return Some(code.into());
                }
                Ok(Some(Ok(Message::Close(None))) | None | Some(Err(_))) => return None,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("the socket was not closed within {bound:?}"),
            }
        }
    }
}

pub(crate) async fn send_json(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send a frame");
}

pub(crate) async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => {
                // GATEWAY_TRACE=1 prints every frame a test client receives.
                if std::env::var_os("GATEWAY_TRACE").is_some() {
                    eprintln!("<- {}", &text[..text.len().min(300)]);
                }
                return Some(serde_json::from_str(&text).expect("frames are JSON"));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until the server closes the socket and answers its close code.
pub(crate) async fn closed(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(CloseFrame { code, .. }))))) => {
                return Some(code.into());
            }
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the socket was not closed within {WAIT:?}"),
        }
    }
}

impl World {
    /// A request to auth as `user` with an optional body (none: no body at all).
    pub(crate) async fn auth_call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.auth.url(path))
            .bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("auth answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A server `owner` makes: its id and its `general` channel's.
    pub(crate) async fn guild(&self, owner: &User, name: &str) -> (Snowflake, Snowflake) {
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                "/api/v1/guilds",
                owner,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().parse().unwrap();
        let general = body["channels"][0]["id"].as_str().unwrap().parse().unwrap();
        (id, general)
    }

    /// `who` joins `guild` by an invite `by` makes.
    pub(crate) async fn join_guild(&self, guild: Snowflake, by: &User, who: &User) {
        let (status, invite) = self
            .auth_call(
                reqwest::Method::POST,
                &format!("/api/v1/guilds/{guild}/invites"),
                by,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{invite}");
        let code = invite["code"].as_str().unwrap();
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                &format!("/api/v1/invites/{code}"),
                who,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// A role `by` makes in `guild`, with `permissions`.
    pub(crate) async fn role(
        &self,
        guild: Snowflake,
        by: &User,
        name: &str,
        permissions: proto::permissions::Permissions,
    ) -> Snowflake {
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                &format!("/api/v1/guilds/{guild}/roles"),
                by,
                Some(json!({"name": name, "permissions": permissions.bits().to_string()})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// A channel `by` makes in `guild` (more fields in `extra`).
    pub(crate) async fn guild_channel(
        &self,
        guild: Snowflake,
        by: &User,
        name: &str,
        extra: Value,
    ) -> Snowflake {
        let mut body = json!({"name": name});
        if let (Some(fields), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            fields.extend(more.clone());
        }
        let (status, body) = self
            .auth_call(
                reqwest::Method::POST,
                &format!("/api/v1/guilds/{guild}/channels"),
                by,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// `by` gives (`true`) or takes `role` from `to`.
    pub(crate) async fn set_role(
        &self,
        guild: Snowflake,
        by: &User,
        to: &User,
        role: Snowflake,
        give: bool,
    ) {
        let method = if give {
            reqwest::Method::PUT
        } else {
            reqwest::Method::DELETE
        };
        let path = format!("/api/v1/guilds/{guild}/members/{}/roles/{role}", to.id);
        let (status, body) = self.auth_call(method, &path, by, None).await;
        assert_eq!(status, 204, "{body}");
    }
}

impl Client {
    /// Waits until a CHANNEL_CREATE or CHANNEL_DELETE of `channel` arrives, answering which.
    pub(crate) async fn channel_event(&mut self, channel: Snowflake) -> String {
        loop {
            let frame = self
                .next()
                .await
                .unwrap_or_else(|| panic!("nothing about channel {channel} arrived"));
            let t = frame["t"].as_str().unwrap_or_default();
            let about = if t == "CHANNEL_CREATE" {
                frame["d"]["id"].clone()
            } else if t == "CHANNEL_DELETE" {
                frame["d"]["channel_id"].clone()
            } else {
                continue;
            };
            if about == channel.to_string() {
                return t.to_owned();
            }
        }
    }
}
