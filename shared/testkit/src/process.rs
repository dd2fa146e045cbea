//! A Natter service as a process of its own, its built binary run as `deploy/services.sh` runs
//! it, so a test can SIGKILL it: nothing of the service runs afterwards, nothing is flushed or
//! acknowledged, and the kernel closes its sockets.
//!
//! A test crate knows its own package's binaries (`env!("CARGO_BIN_EXE_…")`), but cargo builds no
//! other package's for it, so [`binary`] asks cargo to build the one it needs (nothing to do when
//! the workspace's tests are built, as `./natter test` and CI do first).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
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
/// would compile ring and everything above it again, and the next plain build (the end-to-end
/// run's) once more. Variables that configure cargo itself (`CARGO`, `CARGO_TARGET_DIR`,
/// `CARGO_HOME`, ...) stay.
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

/// A service running as its own process, on ports the OS chose.
///
/// The service binds `127.0.0.1:0` for both listeners and names the ports in its "started" log
/// line, which is where the test learns them. A port the test chose and handed over (as
/// [`super::free_port`] does for engines) can be taken by another test's process before the
/// service binds it: the service then fails to listen, and the other process answers `/readyz`
/// in its place.
pub struct ServiceProcess {
    child: Option<Child>,
    /// Its public HTTP port.
    pub port: u16,
    /// The port its `/metrics` is served on.
    pub metrics_port: u16,
}

/// Which events a service run by a test logs: warnings, and the line naming its ports.
const LOG_FILTER: &str = "warn,kit::lifecycle=info";

impl ServiceProcess {
    /// Starts `package`'s binary with `args` (built first if need be): see [`Self::start_binary`].
    pub async fn start(package: &str, args: &[String]) -> Self {
        Self::start_binary(&binary(package), args).await
    }

    /// Starts `binary` with `args` on ports the OS chooses (any `--http-addr` and `--metrics-addr`
    /// among `args` are replaced; a `--log-filter` is widened to the line naming the ports; no
    /// `NATTER_` variable of the environment reaches it), and
    /// waits until its `/readyz` answers 200 (within 60 s: a loaded machine, and a service that
    /// waits for its engines at start).
    ///
    /// # Panics
    /// When the binary cannot start, exits, or is not ready in time.
    pub async fn start_binary(binary: &Path, args: &[String]) -> Self {
        let name = binary.file_name().map_or_else(
            || binary.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut command = Command::new(binary);
        // Configured by its flags alone, never by a `NATTER_` variable of the shell running the
        // tests.
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("NATTER_") {
                command.env_remove(variable);
            }
        }
        let mut child = command
            .args(args.iter().filter_map(|arg| own_flag(arg)))
            .args(["--http-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"])
            .env("NATTER_LOG", LOG_FILTER)
            .env("NATTER_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let ports = started_ports(child.stdout.take().expect("a piped stdout"));
        let Ok(Ok((port, metrics_port))) =
            tokio::time::timeout(Duration::from_secs(60), ports).await
        else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!("{name} (a process) did not log its ports within 60 s (exit: {status:?})");
        };
        let service = Self {
            child: Some(child),
            port,
            metrics_port,
        };
        let url = service.url("/readyz");
        super::eventually(
            &format!("{name} (a process) to report ready"),
            Duration::from_secs(60),
            || async { (reqwest::get(&url).await.ok()?.status() == 200).then_some(()) },
        )
        .await;
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its process id, while it runs.
    ///
    /// # Panics
    /// After [`Self::kill`].
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("a running process").id()
    }

    /// Sends it `signal` (`TERM`, `STOP`, `CONT`, ...).
    ///
    /// # Panics
    /// After [`Self::kill`], or when `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// How it exited, if it has.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `arg` as the process gets it: addresses dropped (the process gets port 0), a log filter
/// widened to the line naming the ports.
fn own_flag(arg: &str) -> Option<String> {
    if arg.starts_with("--http-addr=") || arg.starts_with("--metrics-addr=") {
        return None;
    }
    Some(match arg.strip_prefix("--log-filter=") {
        Some(filter) => format!("--log-filter={filter},kit::lifecycle=info"),
        None => arg.to_owned(),
    })
}

/// The ports in the first "started" line of a service's JSON log on `stdout`; the rest of the
/// log is read and dropped, so the service never blocks on a full pipe.
fn started_ports(stdout: ChildStdout) -> tokio::sync::oneshot::Receiver<(u16, u16)> {
    let (tell, ports) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tell = Some(tell);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(found) = tell.as_ref().and_then(|_| ports_in(&line)) else {
                continue;
            };
            if let Some(tell) = tell.take() {
                let _ = tell.send(found);
            }
        }
    });
    ports
}

/// `(port, metrics_port)` when `line` is the log line of a service that started.
fn ports_in(line: &str) -> Option<(u16, u16)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if !event["message"].as_str()?.ends_with(" started") {
        return None;
    }
    let port = |field: &str| u16::try_from(event[field].as_u64()?).ok();
    Some((port("port")?, port("metrics_port")?))
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::{own_flag, ports_in};

    #[test]
    fn the_started_line_names_both_ports_and_other_lines_nothing() {
        let started = r#"{"timestamp":"t","level":"INFO","message":"edge started","port":41000,"metrics_port":41001,"target":"kit::lifecycle"}"#;
        assert_eq!(ports_in(started), Some((41000, 41001)));
        assert_eq!(ports_in(r#"{"message":"edge stopped"}"#), None);
        assert_eq!(ports_in("edge: failed to start: cannot listen"), None);
    }

    #[test]
    fn addresses_are_the_oss_and_the_filter_lets_the_started_line_through() {
        assert_eq!(own_flag("--http-addr=127.0.0.1:20010"), None);
        assert_eq!(own_flag("--metrics-addr=127.0.0.1:0"), None);
        assert_eq!(
            own_flag("--log-filter=warn").as_deref(),
            Some("--log-filter=warn,kit::lifecycle=info")
        );
        assert_eq!(own_flag("--worker-id=3").as_deref(), Some("--worker-id=3"));
    }
}
