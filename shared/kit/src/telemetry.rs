//! Logs and metrics, the same way in every service.
//!
//! Logs are structured `tracing` events (JSON lines by default). Metrics live in one prometheus
//! registry per service, served at `/metrics` in the text format on the service's metrics
//! listener (`--metrics-addr`, not the public port); names are in base units and counters end in
//! `_total`. Every metric carries a `service` label.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the process's log subscriber. Does nothing when one is already installed (tests start
/// several services in one process).
pub fn init_tracing(config: &LogConfig) -> Result<(), String> {
    let filter = EnvFilter::try_new(&config.filter)
        .map_err(|e| format!("configuration error: --log-filter '{}': {e}", config.filter))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
    Ok(())
}

/// A service's metric registry and the HTTP metrics every service has.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Connections open on each listener (`public`, `metrics`), WebSockets included.
    pub(crate) http_connections: IntGaugeVec,
    /// Connections refused because their address held its cap.
    pub(crate) http_connections_refused: IntCounterVec,
    /// Connections closed because headers did not arrive in time (idle keep-alives included).
    pub(crate) http_header_timeouts: IntCounterVec,
}

impl Metrics {
    /// A registry whose metrics all carry `service="<service>"`, with the process collector
    /// (`process_resident_memory_bytes`, open file descriptors, CPU seconds) registered.
    pub fn new(service: &str) -> Self {
        let labels = [("service".to_owned(), service.to_owned())].into();
        let registry =
            Registry::new_custom(None, Some(labels)).expect("a registry with a valid label");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registers once");
        let http_requests = IntCounterVec::new(
            Opts::new("natter_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "natter_http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let per_listener = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["listener"]).expect("valid metric")
        };
        let metrics = Self {
            registry,
            http_requests,
            http_duration,
            http_connections: IntGaugeVec::new(
                Opts::new(
                    "natter_http_connections",
                    "HTTP connections open (WebSockets included)",
                ),
                &["listener"],
            )
            .expect("valid metric"),
            http_connections_refused: per_listener(
                "natter_http_connections_refused_total",
                "Connections refused because their address held --max-connections-per-address",
            ),
            http_header_timeouts: per_listener(
                "natter_http_header_timeouts_total",
                "Connections closed for not sending request headers within --header-read-timeout",
            ),
        };
        metrics.register(metrics.http_requests.clone());
        metrics.register(metrics.http_duration.clone());
        metrics.register(metrics.http_connections.clone());
        metrics.register(metrics.http_connections_refused.clone());
        metrics.register(metrics.http_header_timeouts.clone());
        metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers a service's own metric. Names are fixed at compile time, so a clash is a bug.
    pub fn register<C: prometheus::core::Collector + 'static>(&self, collector: C) {
        self.registry
            .register(Box::new(collector))
            .expect("metric names are unique per service");
    }

    /// The registry in the prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics does not fail");
        out
    }
}

/// Axum middleware counting and timing requests by matched route (add it with `route_layer`, so
/// the route template, not the raw path, is the label and label values stay bounded).
pub async fn track_http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .http_duration
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .inc();
    response
}
