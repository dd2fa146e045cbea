//! A Natter service as a process of its own, its built binary run as `deploy/services.sh` runs
//! it, so a test can SIGKILL it: nothing of the service runs afterwards, nothing is flushed or
//! acknowledged, and the kernel closes its sockets.
//!
//! A test crate knows its own package's binaries (`env!("CARGO_BIN_EXE_…")`), but cargo builds no
//! other package's for it, so [`binary`] asks cargo to build the one it needs (nothing to do when
//! the workspace's tests are built, as `./natter test` and CI do first).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How every build on the test path selects packages: the whole workspace, dev-dependencies
/// included (`--examples` asks for them; the workspace has no examples). Cargo resolves a
/// dependency's features from the packages and targets a command selects, so `cargo build -p auth`
/// and `cargo test --workspace` compile tokio, rustls, async-nats and every workspace crate twice,
/// with two feature sets. With this selection the binaries `cargo test --workspace` already built
/// are the ones asked for, and the end-to-end run (`web/e2e/services.mjs`) and the faults step of
/// `./natter test` build nothing again.
const BUILD_SELECTION: [&str; 2] = ["--workspace", "--examples"];

/// The binary of the service package `package` (its binary has the package's name), built for
/// this test's profile if it is not yet, or is older than its sources.
///
/// # Panics
/// When cargo cannot build it.
pub fn binary(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    // One build at a time: two cargo commands on one target folder would wait for each other.
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let mut build = escargot::CargoBuild::new()
        .manifest_path(super::checkout().join("Cargo.toml"))
        .args(BUILD_SELECTION)
        .bin(package)
        .current_release();
    for (name, _) in std::env::vars_os() {
        if set_by_cargo_for_this_test(&name) {
            build = build.env_remove(name);
        }
    }
    let run = build
        .run()
        .unwrap_or_else(|e| panic!("cargo build --bin {package}: {e}"));
    let path = run.path().to_path_buf();
    built.insert(package.to_owned(), path.clone());
    path
}

/// Whether `name` is one of the variables `cargo test` gives a test process about its own package
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, `OUT_DIR`, ...). A nested `cargo build` must not see
/// them: build scripts such as ring's rerun when they change (`rerun-if-env-changed`), so the build
/// would compile ring and everything above it again, and the next plain build (the end-to-end run's)
/// once more. Variables that configure cargo itself (`CARGO`, `CARGO_TARGET_DIR`, `CARGO_HOME`, ...)
/// stay.
fn set_by_cargo_for_this_test(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CFG_", "CARGO_BIN_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
        || [
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .contains(&name)
}

/// A service running as its own process.
pub struct ServiceProcess {
    child: Option<Child>,
    /// Its HTTP port (`--http-addr`, which [`ServiceProcess::start`] chooses).
    pub port: u16,
}

impl ServiceProcess {
    /// Starts `package`'s binary with `args` and `--http-addr` on a free port, and waits until its
    /// `/readyz` answers 200 (within 60 s: a loaded machine, and a service that waits for its
    /// engines at start).
    pub async fn start(package: &str, args: &[String]) -> Self {
        let binary = binary(package);
        let port = super::free_port();
        let child = Command::new(&binary)
            .args(args)
            .arg(format!("--http-addr=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let service = Self {
            child: Some(child),
            port,
        };
        let url = service.url("/readyz");
        super::eventually(
            &format!("{package} (a process) to report ready"),
            Duration::from_secs(60),
            || async { (reqwest::get(&url).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
