//! Support for integration tests against the real local stack (`./natter up --stack`).
//!
//! Tests share one NATS, PostgreSQL, Redis and Cassandra, and isolate themselves by name: each gets
//! its own database, keyspace and subject prefix, so they run in parallel. A test that must stop a
//! dependency starts a private one ([`RedisServer`], [`NatsServer`], [`CassandraServer`]) instead
//! of stopping the shared one, or cuts one service off through a [`TcpProxy`].
//!
//! Every such name carries the process id of the run that made it (`t_{tag}_{pid}_…`, and
//! `e2e_{tag}_{pid}_…` from the browser tests), so the first [`Stack::get`] of a process removes
//! the streams, databases and keyspaces of runs that have exited: repeated runs against one
//! long-lived stack do not fill JetStream's storage reservations, PostgreSQL's disk or Cassandra's
//! heap.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::subjects::Prefix;
use store::cql::Keyspace;

mod cluster;
mod engines;
mod media;
pub mod process;
mod ring;
pub use cluster::{NatsCluster, SyncInterval};
pub use engines::{CassandraServer, NatsServer, TcpProxy};
pub use media::LiveKitServer;
pub use process::ServiceProcess;
pub use ring::CassandraRing;

/// Endpoints of the running local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub nats_url: String,
    pub database_url: String,
    pub redis_url: String,
    pub cql_nodes: String,
    pub nats_server_bin: PathBuf,
    pub redis_server_bin: PathBuf,
}

impl Stack {
    /// Reads the endpoints from the environment, falling back to `.natter/env`, which
    /// `deploy/stack.sh up` writes in the checkout.
    ///
    /// # Panics
    /// When the stack's endpoints are not known: the message says how to start it.
    pub fn get() -> Self {
        let file = Self::env_file();
        let from_file: HashMap<String, String> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| from_file.get(name).cloned())
                .unwrap_or_else(|| {
                    panic!(
                        "{name} is not set and {} has no value for it: start the stack with \
                         `./natter up --stack` (or run the tests with `./natter test`)",
                        file.display()
                    )
                })
        };
        let stack = Self {
            nats_url: var("NATTER_NATS_URL"),
            database_url: var("NATTER_DATABASE_URL"),
            redis_url: var("NATTER_REDIS_URL"),
            cql_nodes: var("NATTER_CQL_NODES"),
            nats_server_bin: var("NATTER_NATS_SERVER_BIN").into(),
            redis_server_bin: var("NATTER_REDIS_SERVER_BIN").into(),
        };
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            stack.remove_leftovers();
            stack.remove_leftover_keyspaces_behind();
        });
        stack
    }

    /// Deletes the JetStream streams, PostgreSQL databases and CQL keyspaces that test runs which
    /// have exited left behind (a few hundred keyspaces' tables exhaust a 1 GiB Cassandra heap).
    /// On a thread of its own, as callers are usually inside a runtime already.
    fn remove_leftovers(&self) {
        let stack = self.clone();
        let swept = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the sweep")
                .block_on(stack.remove_leftovers_async())
        });
        if let Ok(Err(e)) = swept.join() {
            eprintln!("note: could not remove what earlier test runs left: {e}");
        }
    }

    async fn remove_leftovers_async(&self) -> Result<(), String> {
        use futures::TryStreamExt;
        use sqlx::Connection;
        let nats = async_nats::connect(&self.nats_url)
            .await
            .map_err(|e| e.to_string())?;
        let jetstream = async_nats::jetstream::new(nats);
        let streams: Vec<String> = jetstream
            .stream_names()
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        for stream in streams.iter().filter(|name| left_behind(name)) {
            jetstream
                .delete_stream(stream)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut admin = sqlx::PgConnection::connect(&self.database_url)
            .await
            .map_err(|e| e.to_string())?;
        let databases: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 't\\_%' OR datname LIKE 'e2e\\_%'",
        )
        .fetch_all(&mut admin)
        .await
        .map_err(|e| e.to_string())?;
        for database in databases.iter().filter(|name| left_behind(name)) {
            let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Drops the keyspaces of exited runs on a thread of its own that the tests do not wait for
    /// (each drop is a schema change, seconds on a busy machine); what one process leaves undone
    /// the next one's sweep finishes.
    fn remove_leftover_keyspaces_behind(&self) {
        let stack = self.clone();
        std::thread::spawn(move || {
            let swept = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the sweep")
                .block_on(stack.remove_leftover_keyspaces());
            if let Err(e) = swept {
                eprintln!("note: could not remove the keyspaces earlier test runs left: {e}");
            }
        });
    }

    async fn remove_leftover_keyspaces(&self) -> Result<(), String> {
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_nodes(self.cql_nodes())
            .connection_timeout(Duration::from_secs(10))
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let keyspaces: Vec<String> = session
            .query_unpaged("SELECT keyspace_name FROM system_schema.keyspaces", &[])
            .await
            .map_err(|e| e.to_string())?
            .into_rows_result()
            .map_err(|e| e.to_string())?
            .rows::<(String,)>()
            .map_err(|e| e.to_string())?
            .filter_map(|row| row.ok().map(|(name,)| name))
            .collect();
        for keyspace in keyspaces.iter().filter(|name| left_behind(name)) {
            session
                .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), &[])
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The stack's S3-compatible store (SeaweedFS) and Natter's keys for it.
    ///
    /// # Panics
    /// When `.natter/env` (or the environment) does not name it: `./natter up --stack` starts it.
    pub fn s3(&self) -> S3Endpoint {
        let from_file = std::fs::read_to_string(Self::env_file()).unwrap_or_default();
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| {
                    from_file.lines().find_map(|line| {
                        let (k, v) = line.split_once('=')?;
                        (k.trim() == name).then(|| v.trim().to_owned())
                    })
                })
                .unwrap_or_else(|| {
                    panic!("{name} is not set: start the stack with `./natter up --stack`")
                })
        };
        S3Endpoint {
            endpoint: var("NATTER_S3_ENDPOINT"),
            bucket: var("NATTER_S3_BUCKET"),
            region: var("NATTER_S3_REGION"),
            access_key_id: var("NATTER_S3_ACCESS_KEY_ID"),
            secret_access_key: var("NATTER_S3_SECRET_ACCESS_KEY"),
        }
    }

    /// The stack's media server (LiveKit) and Natter's key for it, when the stack runs one.
    pub fn livekit(&self) -> Option<LiveKitEndpoint> {
        let from_file = std::fs::read_to_string(Self::env_file()).unwrap_or_default();
        let var = |name: &str| {
            std::env::var(name).ok().or_else(|| {
                from_file.lines().find_map(|line| {
                    let (k, v) = line.split_once('=')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
            })
        };
        Some(LiveKitEndpoint {
            url: var("NATTER_LIVEKIT_URL")?,
            api_key: var("NATTER_LIVEKIT_API_KEY")?,
            api_secret: var("NATTER_LIVEKIT_API_SECRET")?,
        })
    }

    fn env_file() -> PathBuf {
        checkout().join(".natter").join("env")
    }

    /// Creates an empty PostgreSQL database for one test and returns its URL.
    pub async fn fresh_database(&self) -> String {
        use sqlx::Connection;
        let name = unique("db");
        let mut admin = sqlx::PgConnection::connect(&self.database_url)
            .await
            .expect("connect to the stack's PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        let mut url = url::Url::parse(&self.database_url).expect("a valid database URL");
        url.set_path(&name);
        url.to_string()
    }

    pub fn cql_nodes(&self) -> Vec<String> {
        self.cql_nodes.split(',').map(str::to_owned).collect()
    }
}

/// The development stack's media server (LiveKit).
#[derive(Debug, Clone)]
pub struct LiveKitEndpoint {
    /// `ws://127.0.0.1:17880`
    pub url: String,
    pub api_key: String,
    pub api_secret: String,
}

impl LiveKitEndpoint {
    /// Auth's flags for it.
    pub fn auth_args(&self) -> Vec<String> {
        vec![
            format!("--livekit-url={}", self.url),
            format!("--livekit-api-key={}", self.api_key),
            format!("--livekit-api-secret={}", self.api_secret),
        ]
    }
}

/// The development stack's S3-compatible store.
#[derive(Debug, Clone)]
pub struct S3Endpoint {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A name no other test in this run or any concurrent run uses: lowercase, digits and `_`, so it
/// is a valid database, keyspace and subject token.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "t_{tag}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a name is one [`unique`] (or the browser tests) made in a process that has exited.
fn left_behind(name: &str) -> bool {
    let mut parts = name.split('_');
    let (Some(run), Some(_tag), Some(pid)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    (run == "t" || run == "e2e")
        && pid
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

pub fn fresh_prefix() -> Prefix {
    Prefix::parse(&unique("p")).expect("unique names are valid prefixes")
}

pub fn fresh_keyspace() -> Keyspace {
    Keyspace::parse(&unique("ks")).expect("unique names are valid keyspaces")
}

/// A keyspace with the message schema applied, shared by every test of this process: tests keep
/// apart there by their ids (Snowflakes are unique), and the schema is created once instead of
/// once per test (schema changes are the slowest thing a CQL store does).
pub async fn history_keyspace(stack: &Stack) -> Keyspace {
    static KEYSPACE: tokio::sync::OnceCell<Keyspace> = tokio::sync::OnceCell::const_new();
    KEYSPACE
        .get_or_init(|| async {
            let config = store::cql::CqlConfig {
                nodes: stack.cql_nodes(),
                keyspace: fresh_keyspace(),
                replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".to_owned(),
                consistency: store::cql::ConsistencyLevel::One,
                connect_timeout: Duration::from_secs(60),
            };
            let session = config.connect().await.expect("reach the CQL store");
            config
                .migrate(&session, store::schema::MIGRATIONS)
                .await
                .expect("apply the message schema");
            config.keyspace
        })
        .await
        .clone()
}

/// Waits (up to `timeout`) until the store holds everything in `prefix`'s chat stream, as the
/// persisters record it (the store's watermark reaches the stream's last sequence): what history
/// readers see, so a test that waits here then reads the store alone.
pub async fn wait_persisted(
    nats_url: &str,
    prefix: &Prefix,
    cql_nodes: &[String],
    keyspace: &str,
    timeout: Duration,
) {
    // A cluster's seed list (comma separated) as well as one server.
    let seeds: Vec<&str> = nats_url.split(',').collect();
    let nats = async_nats::connect(seeds).await.expect("reach NATS");
    let js = async_nats::jetstream::new(nats);
    let name = proto::subjects::Subjects::new(prefix.clone()).chat_stream_name();

    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_nodes(cql_nodes)
        .build()
        .await
        .expect("reach the CQL store");
    let keyspace = Keyspace::parse(keyspace).expect("a keyspace name");
    let store = store::MessageStore::prepare(
        std::sync::Arc::new(session),
        &keyspace,
        Duration::from_secs(10),
    )
    .await
    .expect("the keyspace holds the schema");
    eventually("the persisters to catch up", timeout, || async {
        let stream = js.get_stream(&name).await.ok()?;
        let last = stream.cached_info().state.last_sequence;
        let stored = store.stored_through(&name).await.ok()?;
        (stored >= last).then_some(())
    })
    .await;
}

/// A TCP port nothing listens on right now, below the kernel's ephemeral range.
///
/// Tests stop private engines and start them again on the same port. A port the kernel handed
/// out (`bind(0)`) is an ephemeral one, which any outgoing connection may take as its source
/// port in between: the restarted engine then fails with "address already in use" (seen in CI,
/// a private Cassandra restarted after thirty seconds). Ports below the range (Linux's default
/// starts at 32768) are never chosen as source ports, so only another listener can take one,
/// and every test picks at random among 12,000 of them.
///
/// The port is free when picked, not reserved: the engine binds it later. So one process never
/// hands out the same port twice (tests of one binary start their engines at the same moment),
/// and a caller that starts several engines at once still checks that each one came up.
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, RandomState};
    use std::sync::{LazyLock, Mutex};
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(Mutex::default);
    let seed = RandomState::new();
    for attempt in 0u32.. {
        let port = FIRST + (seed.hash_one(attempt) % u64::from(COUNT)) as u16;
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
        assert!(
            attempt < 10_000,
            "no free port in {FIRST}..{}",
            FIRST + COUNT
        );
    }
    unreachable!("the loop returns or panics")
}

/// The root of the checkout whose tests are running: the nearest folder above the test's crate
/// that holds `Cargo.lock`.
///
/// Read when the test runs (cargo sets `CARGO_MANIFEST_DIR` for the test process), not baked in
/// when it is compiled: clones on one machine share a target folder (`~/.cache/natter/target`),
/// and cargo reuses a library built in another clone, whose compile-time path points there.
pub fn checkout() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map_or_else(|| start.join(".."), Path::to_path_buf)
}

/// The last `count` lines of an engine's log that say something (NATS's failed health checks
/// left out), under the log's path: what a test that gave up on the engine quotes.
fn log_tail(path: &Path, count: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| !line.contains("Healthcheck failed"))
        .collect();
    let tail = &lines[lines.len().saturating_sub(count)..];
    format!("--- {} ---\n{}", path.display(), tail.join("\n"))
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private Redis server for a test that needs to stop and start its Redis.
pub struct RedisServer {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start(stack: &Stack) -> Self {
        let mut server = Self {
            bin: stack.redis_server_bin.clone(),
            port: free_port(),
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: as abrupt as a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        eventually(
            "the private redis-server to listen",
            Duration::from_secs(10),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
            },
        )
        .await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A service running in this test process; stopped when dropped.
pub struct Running {
    pub port: u16,
    /// Where its `/metrics` is served.
    pub metrics_port: u16,
    shutdown: kit::lifecycle::Shutdown,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its `/metrics` URL.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// Stops the service and waits until it has finished.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the service and waits until it has finished, keeping the handle (its port stays
    /// known, and nothing listens there any more).
    pub async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `/readyz` until it answers 200 (within 15 s) and returns its report.
pub async fn wait_ready(service: &Running) -> serde_json::Value {
    let url = service.url("/readyz");
    eventually(
        "the service to report ready",
        Duration::from_secs(15),
        || async {
            let response = reqwest::get(&url).await.ok()?;
            if response.status() == 200 {
                response.json().await.ok()
            } else {
                None
            }
        },
    )
    .await
}

/// Runs a built service on the current runtime until the returned handle is stopped or dropped.
pub fn spawn<S>(service: S) -> Running
where
    S: kit::lifecycle::Service + 'static,
{
    let port = service.port();
    let metrics_port = service.metrics_port();
    let shutdown = kit::lifecycle::Shutdown::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = service.run_until_stopped(token).await {
            panic!("service failed: {e}");
        }
    });
    Running {
        port,
        metrics_port,
        shutdown,
        task: Some(task),
    }
}

/// Runs a service binary with only `args` and `envs` (no inherited NATTER_* settings) and returns
/// its exit code and what it wrote to stderr. For checking that bad configuration is refused.
pub fn run_binary(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the service binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The services' logs on the test's output when `NATTER_TEST_LOG` names a filter
/// (`NATTER_TEST_LOG=edge=debug,info cargo test ...`): services run in the test's process, and
/// without this their warnings (why a session was closed, why a repair failed) are lost.
pub fn logs() {
    if let Ok(filter) = std::env::var("NATTER_TEST_LOG") {
        let config = kit::config::LogConfig {
            format: kit::config::LogFormat::Text,
            filter,
        };
        // Tests that call it again (or a service that installed one) keep the first.
        let _ = kit::telemetry::init_tracing(&config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_exited_test_runs_are_left_behind() {
        let mine = std::process::id();
        // Above the kernel's largest pid: no such process.
        let gone = 4_194_305;
        assert!(!left_behind(&unique("p")));
        assert!(!left_behind(&format!("e2e_db_{mine}_x_1")));
        assert!(left_behind(&format!("t_p_{gone}_3_99_chat")));
        assert!(left_behind(&format!("e2e_db_{gone}_mwp_12")));
        for never in ["natter_chat", "natter", "t_p_x_1", "postgres", "t_p"] {
            assert!(!left_behind(never), "{never}");
        }
    }
}
