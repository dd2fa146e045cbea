//! An edge as its own process (the binary), so a test can SIGKILL it. Separate from `support`
//! because only this crate's tests know where the edge binary is.

use std::path::Path;

use testkit::ServiceProcess;

use crate::support::World;

/// An edge running as its own process (on ports the OS chose), so a test can SIGKILL it.
pub(crate) struct EdgeProcess {
    pub(crate) process: ServiceProcess,
}

impl EdgeProcess {
    /// Starts the edge binary on `world` with `extra` flags and waits until it is ready.
    pub(crate) async fn start(world: &World, worker: u16, extra: &[&str]) -> Self {
        let args: Vec<String> = [
            format!("--auth-url={}", world.auth.url("")),
            format!("--worker-id={worker}"),
        ]
        .into_iter()
        .chain(world.common_args())
        .chain(extra.iter().map(|a| (*a).to_owned()))
        .collect();
        let process =
            ServiceProcess::start_binary(Path::new(env!("CARGO_BIN_EXE_edge")), &args).await;
        Self { process }
    }

    pub(crate) fn gateway(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.process.port)
    }

    /// SIGKILL: the edge says goodbye to nobody.
    pub(crate) fn kill(&mut self) {
        self.process.kill();
    }
}
