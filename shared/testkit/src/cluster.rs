//! A private three-node NATS cluster for tests that lose nodes: its own free ports (never the
//! dev cluster's 1423x), each node's store in a folder of its own, so a test can SIGKILL the
//! chat stream's leader, or two nodes of three, and start them again on the same ports and stores,
//! as a crash and an operator's restart would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Stack, eventually, free_port, log_tail, unique};

/// How every node of a [`NatsCluster`] syncs its file store (JetStream's `sync_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncInterval {
    /// The server default: fsync every 2 minutes; acknowledged means "in three page caches".
    Default,
    /// fsync before every acknowledgement: acknowledged means "on three disks".
    Always,
}

struct Node {
    name: String,
    port: u16,
    monitor: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// Three NATS servers with JetStream, clustered over routes on loopback.
pub struct NatsCluster {
    bin: PathBuf,
    dir: PathBuf,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three nodes and waits until each is healthy (JetStream's meta group has a leader).
    ///
    /// A port is free when [`free_port`] picks it, not reserved: if another listener takes one
    /// before its node binds it, that node exits, and the two left never elect a meta leader (a
    /// new cluster waits for every peer in its routes). So a node that exits while the cluster
    /// starts means new ports for all three, twice at most.
    pub async fn start(stack: &Stack, sync: SyncInterval) -> Self {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let mut cluster = Self::configure(stack, sync);
            for i in 0..3 {
                cluster.spawn(i);
            }
            match cluster.healthy(&[0, 1, 2]).await {
                Ok(()) => return cluster,
                Err(exited) if attempt < ATTEMPTS => {
                    eprintln!("{exited}\nstarting the cluster again on other ports");
                }
                Err(exited) => panic!("{exited}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Three nodes' configurations on fresh ports, in a folder of their own; nothing started.
    fn configure(stack: &Stack, sync: SyncInterval) -> Self {
        let dir = std::env::temp_dir().join(unique("natscluster"));
        std::fs::create_dir_all(&dir).expect("make the cluster's folder");
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_urls: Vec<String> = routes
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let cluster_name = unique("cluster");
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let (port, monitor) = (free_port(), free_port());
            let store = dir.join(&name);
            let sync_line = match sync {
                SyncInterval::Default => "",
                SyncInterval::Always => "sync_interval: always",
            };
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  \
                     max_file_store: 4GB\n  {sync_line}\n}}\n\
                     cluster {{\n  name: {cluster_name}\n  listen: 127.0.0.1:{route}\n  \
                     routes: [{}]\n}}\n",
                    store.display(),
                    route_urls.join(", ")
                ),
            )
            .expect("write a node's config");
            nodes.push(Node {
                name,
                port,
                monitor,
                config,
                child: None,
            });
        }
        Self {
            bin: stack.nats_server_bin.clone(),
            dir,
            nodes,
        }
    }

    /// The seed list every service is given: all three nodes, comma separated.
    pub fn urls(&self) -> String {
        self.seeds().join(",")
    }

    /// The seed list as async-nats takes it.
    pub fn seeds(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// One node's client URL.
    pub fn url(&self, node: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[node].port)
    }

    /// The index of the node called `name` (`n1`..`n3`), as stream info names a leader.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node called {name}"))
    }

    /// SIGKILL: no goodbye to clients or to the other nodes.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports and store, without waiting. Its log (appended to
    /// across restarts) is `<name>.log` in the cluster's folder, quoted when it fails.
    pub fn spawn(&mut self, node: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(node))
            .expect("open a node's log");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[node].config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share a node's log"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.nodes[node].child = Some(child);
    }

    /// Starts a killed node again and waits until it is healthy: back in the cluster, with every
    /// stream it holds a replica of caught up (`/healthz`).
    pub async fn resume(&mut self, node: usize) {
        self.spawn(node);
        self.wait_healthy(node).await;
    }

    /// Waits until `node` answers `/healthz` with 200. Generous: a node catching up a stream on a
    /// loaded machine takes seconds. Panics, with the node's log, if it exits instead.
    pub async fn wait_healthy(&mut self, node: usize) {
        if let Err(exited) = self.healthy(&[node]).await {
            panic!("{exited}");
        }
    }

    /// Waits until every node of `nodes` answers `/healthz` with 200, or one of them exits (the
    /// error then names it and quotes its log). Panics after two minutes, quoting the logs.
    async fn healthy(&mut self, nodes: &[usize]) -> Result<(), String> {
        const TIMEOUT: Duration = Duration::from_secs(120);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut waiting = nodes.to_vec();
        loop {
            for &node in nodes {
                let child = self.nodes[node].child.as_mut();
                if let Some(status) = child.and_then(|child| child.try_wait().ok().flatten()) {
                    return Err(format!(
                        "node {} of the private NATS cluster exited ({status}):\n{}",
                        self.nodes[node].name,
                        self.log_tail(node)
                    ));
                }
            }
            let mut still = Vec::new();
            for node in waiting {
                let health = format!("http://127.0.0.1:{}/healthz", self.nodes[node].monitor);
                let ok = reqwest::get(&health)
                    .await
                    .is_ok_and(|answer| answer.status() == 200);
                if !ok {
                    still.push(node);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let logs: Vec<String> = waiting.iter().map(|&node| self.log_tail(node)).collect();
                panic!(
                    "timed out after {TIMEOUT:?} waiting for the private NATS cluster's nodes {} \
                     to be healthy:\n{}",
                    waiting
                        .iter()
                        .map(|&node| self.nodes[node].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self, node: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.nodes[node].name))
    }

    fn log_tail(&self, node: usize) -> String {
        log_tail(&self.log(node), 20)
    }

    /// The name of the node leading `stream` (through any node still up), once it has one.
    pub async fn stream_leader(&self, stream: &str) -> String {
        let client = async_nats::connect(self.seeds())
            .await
            .expect("reach the cluster");
        let js = async_nats::jetstream::new(client);
        eventually(
            "the stream to have a leader",
            Duration::from_secs(60),
            || async {
                let mut stream = js.get_stream(stream).await.ok()?;
                let info = stream.info().await.ok()?;
                info.cluster.as_ref()?.leader.clone()
            },
        )
        .await
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
