//! A private LiveKit server for tests that need its webhooks: the stack's LiveKit sends none (its
//! webhook URL would have to name one test's auth), so such a test starts its own, on its own
//! ports, with webhooks pointed at the auth it started, and the same binary `deploy/stack.sh`
//! built.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port, unique};

/// The LiveKit binary `deploy/stack-media.sh` built: `$NATTER_LIVEKIT_BIN`, else the newest
/// `livekit-*/livekit-server` in `$NATTER_CACHE` (default `~/.cache/natter`).
fn livekit_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATTER_LIVEKIT_BIN") {
        return PathBuf::from(bin);
    }
    let cache = std::env::var_os("NATTER_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache/natter")
        },
        PathBuf::from,
    );
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e} (run ./natter up --stack)", cache.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("livekit-"))
        .map(|e| e.path().join("livekit-server"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("a LiveKit binary in the cache (./natter up --stack builds it)")
}

/// A private LiveKit on loopback: one node without Redis, its own HTTP, ICE-TCP and UDP ports,
/// a generated key, webhooks to the URL given.
pub struct LiveKitServer {
    pub port: u16,
    pub api_key: String,
    pub api_secret: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl LiveKitServer {
    /// Picks its ports and key; [`LiveKitServer::start`] runs it (so the service its webhooks
    /// reach can be given its URL first).
    pub fn reserve() -> Self {
        Self {
            port: free_port(),
            api_key: unique("APIkey"),
            api_secret: unique("secret-of-at-least-32-characters-"),
            dir: std::env::temp_dir().join(unique("livekit")),
            child: None,
        }
    }

    /// `ws://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Auth's flags for it.
    pub fn auth_args(&self) -> Vec<String> {
        vec![
            format!("--livekit-url={}", self.url()),
            format!("--livekit-api-key={}", self.api_key),
            format!("--livekit-api-secret={}", self.api_secret),
        ]
    }

    /// Starts it with webhooks to `webhook_url`, and waits until it answers.
    pub async fn start(&mut self, webhook_url: &str) {
        std::fs::create_dir_all(&self.dir).expect("a folder for LiveKit");
        let (tcp, udp) = (free_port(), free_port());
        let config = format!(
            "port: {port}\nbind_addresses: [127.0.0.1]\nkeys:\n  {key}: {secret}\n\
             rtc:\n  node_ip: 127.0.0.1\n  use_external_ip: false\n  \
             enable_loopback_candidate: true\n  tcp_port: {tcp}\n  udp_port: {udp}\n\
             room:\n  empty_timeout: 60\nlogging:\n  level: warn\n\
             webhook:\n  api_key: {key}\n  urls:\n    - \"{webhook_url}\"\n",
            port = self.port,
            key = self.api_key,
            secret = self.api_secret,
        );
        let file = self.dir.join("livekit.yaml");
        std::fs::write(&file, config).expect("write LiveKit's config");
        let log = std::fs::File::create(self.dir.join("livekit.log")).expect("LiveKit's log");
        let child = Command::new(livekit_bin())
            .arg("--config")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .spawn()
            .expect("start livekit-server");
        self.child = Some(child);
        let health = format!("http://127.0.0.1:{}/", self.port);
        eventually(
            "the private LiveKit to answer",
            Duration::from_secs(30),
            || async { (reqwest::get(&health).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
    }
}

impl Drop for LiveKitServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
