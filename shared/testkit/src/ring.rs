//! A private three-node Cassandra ring for a test that loses a store node: each node on an
//! address of its own in 127.0.0.0/8 (all of it is loopback), the ports from the OS, data in a
//! temporary folder, a 512 MiB heap, started by `deploy/stack.sh ring-cassandra`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

use super::{checkout, eventually, free_port, log_tail, unique};

/// How long a node may take to answer CQL: three JVMs booting on two busy cores take minutes.
const START_BOUND: Duration = Duration::from_secs(900);

struct RingNode {
    address: String,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct CassandraRing {
    dir: PathBuf,
    cluster: String,
    cql_port: u16,
    storage_port: u16,
    nodes: Vec<RingNode>,
}

impl CassandraRing {
    /// Starts the seed, then the two others together, and waits until every node answers CQL
    /// and sees the other two.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("ring"));
        // A third octet of this process's own, so rings of concurrent runs do not meet.
        let octet = 10 + std::process::id() % 240;
        let nodes = (2..5)
            .map(|last| RingNode {
                address: format!("127.0.{octet}.{last}"),
                dir: dir.join(format!("n{last}")),
                child: None,
            })
            .collect();
        let mut ring = Self {
            dir,
            cluster: unique("ring"),
            cql_port: free_port(),
            storage_port: free_port(),
            nodes,
        };
        ring.spawn(0);
        ring.wait_answering(0).await;
        ring.spawn(1);
        ring.spawn(2);
        ring.wait_answering(1).await;
        ring.wait_answering(2).await;
        let session = ring.session_on(0).await;
        eventually(
            "every node of the ring to see the others",
            START_BOUND,
            || async {
                let peers = session
                    .query_unpaged("SELECT peer FROM system.peers", &[])
                    .await
                    .ok()?
                    .into_rows_result()
                    .ok()?
                    .rows_num();
                (peers == 2).then_some(())
            },
        )
        .await;
        ring
    }

    /// The contact points, as `--cql-nodes` takes them.
    pub fn nodes(&self) -> String {
        (0..self.nodes.len())
            .map(|node| self.node(node))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One node's `host:port`.
    pub fn node(&self, node: usize) -> String {
        format!("{}:{}", self.nodes[node].address, self.cql_port)
    }

    /// A session that talks to `node` alone, for reading what that one replica holds.
    pub async fn session_on(&self, node: usize) -> Arc<Session> {
        let only = scylla::policies::host_filter::AllowListHostFilter::new([self.node(node)])
            .expect("a node's address");
        let session = SessionBuilder::new()
            .known_node(self.node(node))
            .host_filter(Arc::new(only))
            .connection_timeout(Duration::from_secs(5))
            .build()
            .await
            .expect("reach the ring node");
        Arc::new(session)
    }

    /// SIGKILL: the node is gone mid-write, as in a crash.
    pub fn stop(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped node again on its address and data and waits until it answers CQL.
    pub async fn resume(&mut self, node: usize) {
        self.spawn(node);
        self.wait_answering(node).await;
    }

    fn spawn(&mut self, node: usize) {
        let seed = format!("{}:{}", self.nodes[0].address, self.storage_port);
        let ring_node = &self.nodes[node];
        std::fs::create_dir_all(&ring_node.dir).expect("make the node's folder");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ring_node.dir.with_extension("log"))
            .expect("open the node's log");
        let child = Command::new(checkout().join("deploy/stack.sh"))
            .arg("ring-cassandra")
            .arg(&ring_node.dir)
            .args([&ring_node.address, &seed])
            .args([self.cql_port.to_string(), self.storage_port.to_string()])
            .args(["512m", &self.cluster])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share the log"))
            .stderr(log)
            .spawn()
            .expect("start deploy/stack.sh ring-cassandra");
        self.nodes[node].child = Some(child);
    }

    async fn wait_answering(&mut self, node: usize) {
        let contact = self.node(node);
        let deadline = tokio::time::Instant::now() + START_BOUND;
        loop {
            let answered = SessionBuilder::new()
                .known_node(&contact)
                .connection_timeout(Duration::from_secs(2))
                .build()
                .await
                .is_ok();
            if answered {
                return;
            }
            let ring_node = &mut self.nodes[node];
            let exited = ring_node
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || tokio::time::Instant::now() >= deadline {
                panic!(
                    "ring node {contact} did not answer CQL (exit {exited:?}); the end of its \
                     log:\n{}",
                    log_tail(&ring_node.dir.with_extension("log"), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for CassandraRing {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.stop(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
