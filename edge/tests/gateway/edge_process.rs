//! An edge as its own process (the binary), so a test can SIGKILL it. Separate from `support`
//! because only this crate's tests know where the edge binary is.

use std::time::Duration;

use crate::support::World;

/// An edge running as its own process, so a test can SIGKILL it.
pub(crate) struct EdgeProcess {
    pub(crate) child: std::process::Child,
    pub(crate) port: u16,
}

impl EdgeProcess {
    /// Starts the edge binary on `world` with `extra` flags; does not wait for it.
    pub(crate) fn spawn(world: &World, worker: u16, extra: &[&str]) -> Self {
        let port = testkit::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_edge"))
            .args([
                format!("--http-addr=127.0.0.1:{port}"),
                "--metrics-addr=127.0.0.1:0".to_owned(),
                format!("--auth-url={}", world.auth.url("")),
                format!("--worker-id={worker}"),
            ])
            .args(world.common_args())
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the edge binary");
        Self { child, port }
    }

    /// Starts the edge binary and waits until it is ready.
    pub(crate) async fn start(world: &World, worker: u16, extra: &[&str]) -> Self {
        let edge = Self::spawn(world, worker, extra);
        edge.ready().await;
        edge
    }

    pub(crate) async fn ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        testkit::eventually(
            "the edge process to be ready",
            Duration::from_secs(20),
            || async { (reqwest::get(&url).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
    }

    pub(crate) fn gateway(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }

    /// SIGKILL: the edge says goodbye to nobody.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
