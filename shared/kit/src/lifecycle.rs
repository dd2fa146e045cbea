//! How a service stops: one cancellation token every task watches, cancelled by SIGTERM or Ctrl-C.
//!
//! A service's `run_until_stopped(shutdown)` takes the token rather than listening for signals
//! itself, so tests stop a service they started on port 0 by cancelling, and `main` is the only
//! place that knows about signals.

use tokio_util::sync::CancellationToken;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// A token cancelled on the first SIGTERM or SIGINT the process receives.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received; stopping");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A running-service shape every binary shares, so `main` stays three lines.
pub trait Service: Sized + Send {
    type Error: std::fmt::Display + Send;

    /// The HTTP port the service listens on (useful after binding port 0).
    fn port(&self) -> u16;

    /// The port its `/metrics` is served on, apart from the public port.
    fn metrics_port(&self) -> u16;

    /// Serves until `shutdown` is cancelled, then finishes in-flight work and returns.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What every `main` does after parsing its configuration: install logging, build the service,
/// run it until SIGTERM, and turn failures into one log line and a non-zero exit.
pub async fn run<S, E, Fut>(
    name: &'static str,
    log: &crate::config::LogConfig,
    build: Fut,
) -> std::process::ExitCode
where
    S: Service,
    E: std::fmt::Display,
    Fut: Future<Output = Result<S, E>>,
{
    if let Err(e) = crate::telemetry::init_tracing(log) {
        eprintln!("{name}: {e}");
        return std::process::ExitCode::from(2);
    }
    let shutdown = shutdown_on_signal();
    let service = match build.await {
        Ok(service) => service,
        Err(e) => {
            tracing::error!(error = %e, "{name} failed to start");
            eprintln!("{name}: failed to start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(
        port = service.port(),
        metrics_port = service.metrics_port(),
        "{name} started"
    );
    match service.run_until_stopped(shutdown).await {
        Ok(()) => {
            tracing::info!("{name} stopped");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{name} failed");
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Why a service stopped by itself: one of its essential tasks ended before it was told to stop,
/// or failed while stopping.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{task} panicked: {message}")]
    Panicked { task: &'static str, message: String },
    #[error("{task} failed: {message}")]
    Failed { task: &'static str, message: String },
    #[error("{task} stopped by itself")]
    Ended { task: &'static str },
}

/// The tasks a service cannot live without: its HTTP server, its copy loop, its heartbeat.
///
/// A service spawns them here rather than with `tokio::spawn` and waits in
/// [`Essentials::until`]: when one ends before shutdown (a panic, an error, or returning when it
/// should not), the service stops with a [`TaskError`] naming it, and [`run`] exits non-zero so
/// the supervisor restarts the process. A detached task that dies leaves a process that looks
/// alive (its `/livez` answers) and does nothing.
#[derive(Default)]
pub struct Essentials {
    tasks: tokio::task::JoinSet<Result<(), String>>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

impl Essentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs a task that ends only when the service stops.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_fallible(name, async move {
            task.await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Runs a task that ends only when the service stops, or with an error.
    pub fn spawn_fallible<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let handle = self
            .tasks
            .spawn(async move { task.await.map_err(|e| e.to_string()) });
        self.names.insert(handle.id(), name);
    }

    /// Waits for `shutdown`: `Ok` when it comes, `Err` when a task ends first. Either way the
    /// caller then tells its tasks to stop and calls [`Essentials::finish`].
    pub async fn until(&mut self, shutdown: &CancellationToken) -> Result<(), TaskError> {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => Ok(()),
            Some(ended) = self.tasks.join_next_with_id() => {
                Err(self.failure(ended).unwrap_or_else(|task| TaskError::Ended { task }))
            }
        }
    }

    /// Waits until every task has ended (the caller has told them to stop): `Err` for the first
    /// that panicked or failed.
    pub async fn finish(mut self) -> Result<(), TaskError> {
        let mut outcome = Ok(());
        while let Some(ended) = self.tasks.join_next_with_id().await {
            if let Ok(failure) = self.failure(ended) {
                tracing::error!(error = %failure, "a task failed while stopping");
                outcome = outcome.and(Err(failure));
            }
        }
        outcome
    }

    /// How a task ended: `Ok` with the failure, or `Err` with its name when it just returned.
    fn failure(
        &self,
        ended: Result<(tokio::task::Id, Result<(), String>), tokio::task::JoinError>,
    ) -> Result<TaskError, &'static str> {
        let name = |id| self.names.get(&id).copied().unwrap_or("a task");
        match ended {
            Ok((id, Ok(()))) => Err(name(id)),
            Ok((id, Err(message))) => Ok(TaskError::Failed {
                task: name(id),
                message,
            }),
            Err(e) => {
                let task = name(e.id());
                let message = if e.is_panic() {
                    let panic = e.into_panic();
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".to_owned())
                } else {
                    "cancelled".to_owned()
                };
                Ok(TaskError::Panicked { task, message })
            }
        }
    }
}

/// Every service's HTTP listeners (kept here too: services name it from `lifecycle`).
pub use crate::listener::HttpServer;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_before_shutdown_stops_the_service_with_its_name() {
        let mut tasks = Essentials::new();
        let shutdown = CancellationToken::new();
        let (long, stop) = (shutdown.child_token(), shutdown.child_token());
        tasks.spawn("waits", async move { long.cancelled().await });
        tasks.spawn("copy loop", async { panic!("the store said no") });
        let failure = tasks.until(&shutdown).await.unwrap_err();
        assert!(
            matches!(&failure, TaskError::Panicked { task: "copy loop", message } if message == "the store said no"),
            "{failure}"
        );
        stop.cancel();
        shutdown.cancel();
        assert!(tasks.finish().await.is_ok());
    }

    #[tokio::test]
    async fn a_task_that_returns_before_shutdown_stops_the_service() {
        let mut tasks = Essentials::new();
        tasks.spawn("heartbeat", async {});
        let failure = tasks.until(&CancellationToken::new()).await.unwrap_err();
        assert!(
            matches!(failure, TaskError::Ended { task: "heartbeat" }),
            "{failure}"
        );
    }

    #[tokio::test]
    async fn a_task_that_fails_names_its_error() {
        let mut tasks = Essentials::new();
        tasks.spawn_fallible("HTTP server", async { Err::<(), _>("address in use") });
        let failure = tasks.until(&CancellationToken::new()).await.unwrap_err();
        assert_eq!(failure.to_string(), "HTTP server failed: address in use");
    }

    #[tokio::test]
    async fn tasks_that_end_after_shutdown_are_a_clean_stop() {
        let mut tasks = Essentials::new();
        let shutdown = CancellationToken::new();
        for name in ["one", "two"] {
            let stop = shutdown.clone();
            tasks.spawn(name, async move { stop.cancelled().await });
        }
        shutdown.cancel();
        assert!(tasks.until(&shutdown).await.is_ok());
        assert!(tasks.finish().await.is_ok());
    }

    #[tokio::test]
    async fn a_task_that_panics_while_stopping_is_reported() {
        let mut tasks = Essentials::new();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tasks.spawn("drain", async move {
            stop.cancelled().await;
            panic!("lost a session");
        });
        shutdown.cancel();
        assert!(tasks.until(&shutdown).await.is_ok());
        let failure = tasks.finish().await.unwrap_err();
        assert!(
            matches!(failure, TaskError::Panicked { task: "drain", .. }),
            "{failure}"
        );
    }

    /// What `main` does with a service whose essential task died: a non-zero exit.
    #[tokio::test]
    async fn run_exits_non_zero_when_an_essential_task_dies() {
        struct Broken;
        impl Service for Broken {
            type Error = TaskError;
            fn port(&self) -> u16 {
                0
            }
            fn metrics_port(&self) -> u16 {
                0
            }
            async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), TaskError> {
                let mut tasks = Essentials::new();
                tasks.spawn("copy loop", async { panic!("boom") });
                let outcome = tasks.until(&shutdown).await;
                outcome.and(tasks.finish().await)
            }
        }
        let log = crate::config::LogConfig {
            format: crate::config::LogFormat::Text,
            filter: "off".to_owned(),
        };
        let code = run("broken", &log, async { Ok::<_, TaskError>(Broken) }).await;
        assert_eq!(code, std::process::ExitCode::FAILURE);
    }
}
