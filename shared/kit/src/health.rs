//! `/livez`, `/readyz` and `/metrics`, the same in every service. The first two are served on the
//! public port; `/metrics` on the service's metrics listener only (`--metrics-addr`), so the
//! public never reads the service's internals.
//!
//! - `/livez` answers 200 whenever the process can answer at all: no dependency is asked, so an
//!   orchestrator never restarts a healthy process because PostgreSQL is down.
//! - `/readyz` asks every dependency (concurrently, each with a deadline) and answers 200 only when
//!   all answer, else 503 with a body naming the ones that did not.
//! - `/metrics` is the service's prometheus registry in the text format.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::telemetry::Metrics;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one dependency may take to answer a readiness check.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(2);

/// The dependencies a service needs to be ready, each with a named check.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, CheckFn)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dependency: `check` answers `Ok` when the dependency works right now.
    pub fn with<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// Adds the NATS connection: connected, and a server round trip (PING/PONG) in the deadline.
    pub fn with_nats(self, client: async_nats::Client) -> Self {
        self.with("nats", move || {
            let client = client.clone();
            async move {
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Err("not connected".to_owned());
                }
                client.flush().await.map_err(|e| e.to_string())
            }
        })
    }

    /// Adds a condition the service's own work makes true (`flag` set), such as its durable
    /// consumer made or its index caught up; until then the check fails with `until`.
    pub fn with_flag(self, name: &'static str, flag: Flag, until: &'static str) -> Self {
        self.with(name, move || {
            let ready = flag.is_set();
            async move { if ready { Ok(()) } else { Err(until.to_owned()) } }
        })
    }

    /// Runs every check concurrently and reports each one's outcome.
    pub async fn check(&self) -> Report {
        let outcomes = futures::future::join_all(self.checks.iter().map(|(name, check)| async {
            let outcome = match tokio::time::timeout(CHECK_DEADLINE, check()).await {
                Ok(Ok(())) => "ok".to_owned(),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {}s", CHECK_DEADLINE.as_secs()),
            };
            (*name, outcome)
        }))
        .await;
        let failing = outcomes
            .iter()
            .filter(|(_, outcome)| outcome != "ok")
            .map(|(name, _)| *name)
            .collect();
        Report {
            failing,
            checks: outcomes.into_iter().collect(),
        }
    }
}

/// A condition shared between the work that makes it true and the readiness check that asks.
#[derive(Clone, Debug, Default)]
pub struct Flag(Arc<AtomicBool>);

impl Flag {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The body of `/readyz`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The dependencies that did not answer, in the order they were added.
    pub failing: Vec<&'static str>,
    /// Every dependency with "ok" or why it failed.
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.failing.is_empty()
    }
}

/// `/livez` and `/readyz`, to merge into a service's public router.
pub fn router<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
}

/// `/metrics`, alone: the router of a service's metrics listener.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let report = readiness.check().await;
    if report.ready() {
        (StatusCode::OK, Json(report))
    } else {
        tracing::warn!(failing = ?report.failing, checks = ?report.checks, "not ready");
        (StatusCode::SERVICE_UNAVAILABLE, Json(report))
    }
}

async fn metrics_text(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.render(),
    )
}
