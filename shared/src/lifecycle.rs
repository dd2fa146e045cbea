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
    tracing::info!(port = service.port(), "{name} started");
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

/// Every service's HTTP listeners (kept here too: services name it from `lifecycle`).
pub use crate::listener::HttpServer;
