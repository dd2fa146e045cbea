//! Private engines for tests that break their engine: a NATS server to SIGKILL, a Cassandra node
//! to stop, and a TCP proxy to cut one service off. The stack's engines serve whoever runs
//! `./natter up`, and every other test running beside: a test never stops those.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Stack, checkout, free_port, log_tail, unique};

/// Kills a child process (SIGKILL: as abrupt as a crash) and reaps it.
fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A private NATS server with JetStream: its own port, monitoring port and store folder, so a
/// test can SIGKILL it and start it again on the same port and store, as an operator's restart
/// or a crash would.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    monitor: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on free ports. If it exits before it is healthy (a port taken before it
    /// bound it: [`free_port`] picks, it does not reserve), it starts again on others, twice at
    /// most.
    pub async fn start(stack: &Stack) -> Self {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let mut server = Self {
                bin: stack.nats_server_bin.clone(),
                port: free_port(),
                monitor: free_port(),
                store: std::env::temp_dir().join(unique("nats")),
                child: None,
            };
            server.spawn();
            match server.healthy().await {
                Ok(()) => return server,
                Err(exited) if attempt < ATTEMPTS => {
                    eprintln!("{exited}\nstarting it again on other ports");
                }
                Err(exited) => panic!("{exited}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILL: no goodbye to clients, JetStream recovers from its store on the next start.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on its port and store, and waits until JetStream answers with
    /// every stream recovered (`/healthz`).
    pub async fn resume(&mut self) {
        self.spawn();
        if let Err(exited) = self.healthy().await {
            panic!("{exited}");
        }
    }

    /// Starts the server, its output appended to `nats.log` in its store folder.
    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.store).expect("make the private nats-server's folder");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("open the private nats-server's log");
        let child = Command::new(&self.bin)
            .args(["-js", "-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .arg("-sd")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .expect("share the private nats-server's log"),
            )
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    fn log(&self) -> PathBuf {
        self.store.join("nats.log")
    }

    /// Waits until `/healthz` answers 200, or the server exits (the error quotes its log).
    /// Panics after a minute, quoting the log.
    async fn healthy(&mut self) -> Result<(), String> {
        const TIMEOUT: Duration = Duration::from_secs(60);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let health = format!("http://127.0.0.1:{}/healthz", self.monitor);
        loop {
            let child = self.child.as_mut();
            if let Some(status) = child.and_then(|child| child.try_wait().ok().flatten()) {
                return Err(format!(
                    "the private nats-server exited ({status}):\n{}",
                    log_tail(&self.log(), 20)
                ));
            }
            let answer = reqwest::get(&health).await;
            if answer.is_ok_and(|answer| answer.status() == 200) {
                return Ok(());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {TIMEOUT:?} waiting for the private nats-server to be \
                 healthy:\n{}",
                log_tail(&self.log(), 20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A private Cassandra node (the stack's jars, its own ports, data folder and a 512 MiB heap),
/// started by `deploy/stack.sh private-cassandra`, for a test that takes its store away.
pub struct CassandraServer {
    dir: PathBuf,
    cql_port: u16,
    storage_port: u16,
    child: Option<Child>,
}

impl CassandraServer {
    /// Starts the node and waits until it answers CQL (20 s on a quiet machine, minutes on a
    /// busy one: a JVM boot is mostly CPU).
    pub async fn start() -> Self {
        let mut server = Self {
            dir: std::env::temp_dir().join(unique("cassandra")),
            cql_port: free_port(),
            storage_port: free_port(),
            child: None,
        };
        server.resume().await;
        server
    }

    /// The node's contact point, as `--cql-nodes` takes it.
    pub fn nodes(&self) -> String {
        format!("127.0.0.1:{}", self.cql_port)
    }

    /// SIGKILL: the store is gone at once, mid-write, as in a crash.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the node (again) on its ports and data, and waits until it answers CQL.
    ///
    /// A JVM boot (and, after a SIGKILL, replaying the commit log) is CPU work that takes 20 s on
    /// a quiet machine and many minutes on a loaded one, so this waits for as long as the node
    /// is alive and still starting, not for a fixed time; it fails at once, with the node's log,
    /// if the node exits, and only after a bound far above any start seen here otherwise.
    pub async fn resume(&mut self) {
        let log_path = self.dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the private Cassandra's log");
        let child = Command::new(checkout().join("deploy/stack.sh"))
            .arg("private-cassandra")
            .arg(&self.dir)
            .args([self.cql_port.to_string(), self.storage_port.to_string()])
            .arg("512m")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share the log"))
            .stderr(log)
            .spawn()
            .expect("start deploy/stack.sh private-cassandra");
        self.child = Some(child);
        let nodes = vec![self.nodes()];
        let deadline = tokio::time::Instant::now() + CASSANDRA_START_BOUND;
        loop {
            let answered = scylla::client::session_builder::SessionBuilder::new()
                .known_nodes(&nodes)
                .connection_timeout(Duration::from_secs(2))
                .build()
                .await
                .is_ok();
            if answered {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || tokio::time::Instant::now() >= deadline {
                panic!(
                    "the private Cassandra {} (status {exited:?}); the end of its log:\n{}",
                    if exited.is_some() {
                        "exited before answering CQL"
                    } else {
                        "did not answer CQL in time"
                    },
                    log_tail(&log_path, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// How long a private Cassandra may take to answer CQL while it is still running: far above the
/// slowest start measured here (about 5 minutes, two cores with a CPU hog and a test run beside).
const CASSANDRA_START_BOUND: Duration = Duration::from_secs(900);

impl Drop for CassandraServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// A TCP proxy between one service and an engine, which the test can cut: every connection
/// through it drops and new ones are closed at once until [`TcpProxy::restore`], as when a
/// network partition isolates that one service. Or hold: what the engine sends waits in the
/// proxy until [`TcpProxy::release`], as when the service is slow to read it.
pub struct TcpProxy {
    port: u16,
    cut: Arc<watch::Sender<bool>>,
    held: Arc<watch::Sender<bool>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("a bound address").port();
        let cut = Arc::new(watch::Sender::new(false));
        let held = Arc::new(watch::Sender::new(false));
        let accepting = tokio::spawn(accept(
            listener,
            target,
            Arc::clone(&cut),
            Arc::clone(&held),
        ));
        Self {
            port,
            cut,
            held,
            accepting,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `nats://` URL through the proxy.
    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A proxy in front of the engine at `url` (`postgres://user@host:port/db` and the like),
    /// and the same URL through it.
    pub async fn in_front_of(url: &str) -> (Self, String) {
        let mut through = url::Url::parse(url).expect("a valid engine URL");
        let target = through
            .socket_addrs(|| None)
            .expect("the engine URL names a host and port")[0];
        let proxy = Self::start(target).await;
        through
            .set_ip_host([127, 0, 0, 1].into())
            .expect("the URL has a host");
        through
            .set_port(Some(proxy.port))
            .expect("the URL has a port");
        (proxy, through.to_string())
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Keeps what the engine sends from here on in the proxy (what the service sends still
    /// passes).
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Passes on what was held, in order, and everything after it.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    held: Arc<watch::Sender<bool>>,
) {
    while let Ok((inbound, _)) = listener.accept().await {
        if *cut.borrow() {
            drop(inbound);
            continue;
        }
        let mut cut = cut.subscribe();
        let held = held.subscribe();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let (mut from_service, to_service) = inbound.into_split();
            let (from_engine, mut to_engine) = outbound.into_split();
            tokio::select! {
                _ = tokio::io::copy(&mut from_service, &mut to_engine) => {}
                _ = pass_unless_held(from_engine, to_service, held) => {}
                _ = cut.wait_for(|cut| *cut) => {}
            }
        });
    }
}

/// Copies what the engine sends to the service, waiting before each write while held.
async fn pass_unless_held(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut held: watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if held.wait_for(|held| !*held).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
