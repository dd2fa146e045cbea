//! A private three-node NATS cluster for tests that lose nodes: every port from the OS (never the
//! dev cluster's 1423x), each node's store in a folder of its own, so a test can SIGKILL the
//! chat stream's leader, or two nodes of three, and start them again on the same ports and stores,
//! as a crash and an operator's restart would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Stack, eventually, free_port, unique};

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
    pub async fn start(stack: &Stack, sync: SyncInterval) -> Self {
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
        let mut cluster = Self {
            bin: stack.nats_server_bin.clone(),
            dir,
            nodes,
        };
        for i in 0..3 {
            cluster.spawn(i);
        }
        for i in 0..3 {
            cluster.wait_healthy(i).await;
        }
        cluster
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

    /// Starts a killed node again on its ports and store, without waiting.
    pub fn spawn(&mut self, node: usize) {
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[node].config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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
    /// loaded machine takes seconds.
    pub async fn wait_healthy(&self, node: usize) {
        let health = format!("http://127.0.0.1:{}/healthz", self.nodes[node].monitor);
        eventually(
            "a node of the private NATS cluster to be healthy",
            Duration::from_secs(120),
            || async { (reqwest::get(&health).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
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
