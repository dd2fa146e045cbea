//! Presence's own metrics, beside the HTTP and process metrics every service has.

use prometheus::IntCounter;
use shared::telemetry::Metrics;

#[derive(Clone)]
pub struct PresenceMetrics {
    /// Session reports applied.
    pub reports: IntCounter,
    /// Presence changes published.
    pub changes: IntCounter,
    /// Edges whose sessions were ended because they stopped heartbeating.
    pub dead_edges: IntCounter,
    /// Redis commands that failed.
    pub redis_errors: IntCounter,
    /// Queries answered.
    pub queries: IntCounter,
    /// Sweeps that ran late: presence fell behind what edges sent (and held off expiries).
    pub stalls: IntCounter,
}

impl PresenceMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid");
            metrics.register(c.clone());
            c
        };
        Self {
            reports: counter("natter_presence_reports_total", "Session reports applied"),
            changes: counter(
                "natter_presence_changes_total",
                "Presence changes published",
            ),
            dead_edges: counter(
                "natter_presence_dead_edges_total",
                "Edges that stopped heartbeating",
            ),
            redis_errors: counter(
                "natter_presence_redis_errors_total",
                "Redis commands that failed",
            ),
            queries: counter("natter_presence_queries_total", "Presence queries answered"),
            stalls: counter(
                "natter_presence_stalls_total",
                "Sweeps that ran late because presence fell behind (expiries held off)",
            ),
        }
    }
}
