//! Presence: who is online across devices, kept in Redis with expiry and fanned out over NATS
//! subjects.
//!
//! - [`tracker`]: the state machine over Redis, and what it publishes.
//! - [`query`]: answering queries for users' presence.
//! - [`keys`]: the Redis keys, and the script that writes a user's sessions.
//!
//! Edges report sessions on `{p}.presence.edge.report`, heartbeat on `{p}.presence.edge.heartbeat`
//! and resync on `{p}.presence.edge.sync`; one subscription to `{p}.presence.edge.*` and one task
//! apply all of these in the order each edge sent them. Queries on
//! `{p}.presence.query` are answered by another, read-only. Every subscription is in the queue
//! group `presence`, so several instances share the work (see docs/ARCHITECTURE.md for what that
//! costs in ordering).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures::{FutureExt, StreamExt};
use kit::config::{LogConfig, NatsConfig, RedisConfig, duration};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::telemetry::Metrics;
use proto::subjects::Subjects;
use proto::tracker::{FromEdge, FromEdgeError, FromEdgeKind, Query, QueryReply};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub mod keys;
pub mod metrics;
pub mod query;
pub mod tracker;

use crate::keys::Keys;
use crate::metrics::PresenceMetrics;
use crate::tracker::{Settings, Tracker};

/// The presence service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "presence", version, about = "Natter presence")]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_PRESENCE_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port (so only whoever can reach
    /// this address reads the service's internals).
    #[arg(
        long = "metrics-addr",
        env = "NATTER_PRESENCE_METRICS_ADDR",
        default_value = "127.0.0.1:9082"
    )]
    pub metrics_addr: SocketAddr,

    /// Header-read timeout and per-address connection cap of both listeners.
    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// How long an edge may go without a heartbeat before its users count as gone.
    #[arg(long = "expiry", env = "NATTER_PRESENCE_EXPIRY", default_value = "30s",
          value_parser = duration)]
    pub expiry: Duration,

    /// How long a user whose last session ended still shows online, so a quick reconnect shows
    /// no offline-then-online flicker.
    #[arg(long = "reconnect-grace", env = "NATTER_PRESENCE_RECONNECT_GRACE", default_value = "5s",
          value_parser = duration)]
    pub reconnect_grace: Duration,

    /// How often expiries and graces are checked.
    #[arg(long = "sweep-interval", env = "NATTER_PRESENCE_SWEEP_INTERVAL", default_value = "500ms",
          value_parser = duration)]
    pub sweep_interval: Duration,

    /// How long a user's last-seen time is kept.
    #[arg(long = "last-seen-ttl", env = "NATTER_PRESENCE_LAST_SEEN_TTL", default_value = "90d",
          value_parser = duration)]
    pub last_seen_ttl: Duration,

    #[command(flatten)]
    pub nats: NatsConfig,

    #[command(flatten)]
    pub redis: RedisConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why presence could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot subscribe: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("bad Redis settings: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

const QUEUE: &str = "presence";

/// The presence service, built and bound, ready to run.
pub struct Presence {
    http: HttpServer,
    tracker: Tracker,
    inputs: Inputs,
    queries: async_nats::Subscriber,
    redis: ConnectionManager,
    keys: Keys,
    nats: async_nats::Client,
    metrics: PresenceMetrics,
    sweep_interval: Duration,
}

/// What edges send, on one subscription so that one edge's messages stay in order.
struct Inputs {
    from_edges: async_nats::Subscriber,
}

impl Presence {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let nats = config.nats.connect("presence").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        // Lazy: presence starts, and says it is not ready, while Redis is away; the manager
        // reconnects by itself when Redis returns.
        let redis = ConnectionManager::new_lazy_with_config(
            redis::Client::open(config.redis.url.as_str())?,
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(1)))
                .set_number_of_retries(1),
        )?;

        let metrics = Metrics::new("presence");
        let presence_metrics = PresenceMetrics::new(&metrics);
        let inputs = Inputs {
            from_edges: nats
                .queue_subscribe(subjects.presence_from_edges(), QUEUE.into())
                .await?,
        };
        let queries = nats
            .queue_subscribe(subjects.presence_query(), QUEUE.into())
            .await?;
        let tracker = Tracker::new(
            redis.clone(),
            nats.clone(),
            subjects.clone(),
            Settings {
                expiry: config.expiry,
                grace: config.reconnect_grace,
                last_seen_ttl: config.last_seen_ttl,
            },
            presence_metrics.clone(),
        );

        let ping = redis.clone();
        let readiness = Readiness::new()
            .with("redis", move || {
                let mut redis = ping.clone();
                async move {
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut redis).await;
                    pong.map(|_| ()).map_err(|e| e.to_string())
                }
            })
            .with_nats(nats.clone());
        let router = kit::health::router(readiness);
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, router, &metrics).await?;
        Ok(Self {
            http,
            tracker,
            inputs,
            queries,
            keys: Keys::new(&subjects),
            redis,
            nats,
            metrics: presence_metrics,
            sweep_interval: config.sweep_interval,
        })
    }
}

impl Service for Presence {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        let Self {
            http,
            tracker,
            inputs,
            queries,
            redis,
            keys,
            nats,
            metrics,
            sweep_interval,
        } = self;
        // Each is essential: a presence whose tracker died would answer /livez and keep
        // nobody's presence. One ending first stops the service with an error naming it.
        let stop = shutdown.child_token();
        let mut tasks = Essentials::new();
        tasks.spawn(
            "the tracker",
            track(tracker, inputs, sweep_interval, stop.clone()),
        );
        tasks.spawn(
            "the query answerer",
            answer(queries, redis, keys, nats, metrics, stop.clone()),
        );
        tasks.spawn_fallible("the HTTP server", http.serve(stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}

/// Applies reports, heartbeats and syncs in the order they arrive, and sweeps for expiries.
///
/// What edges sent always goes first: a sweep judges edges by their last heartbeat, so it runs
/// only once every heartbeat that has arrived is applied (a backlog of reports must not make a
/// waiting heartbeat look late). A sweep that comes late says presence itself fell behind; the
/// tracker then distrusts deadlines for a while (see [`Tracker::sweep`]).
async fn track(mut tracker: Tracker, mut inputs: Inputs, every: Duration, shutdown: Shutdown) {
    let mut sweep = tokio::time::interval(every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            Some(message) = inputs.from_edges.next() => {
                // What has arrived meanwhile goes with it: reports in a row are applied together.
                let mut arrived = vec![message];
                while arrived.len() < APPLIED_TOGETHER {
                    match inputs.from_edges.next().now_or_never() {
                        Some(Some(message)) => arrived.push(message),
                        _ => break,
                    }
                }
                apply(&mut tracker, arrived).await;
            }
            due = sweep.tick() => tracker.sweep(due.elapsed()).await,
        }
    }
}

/// The most messages from edges taken off the subscription to be applied together.
const APPLIED_TOGETHER: usize = 256;

/// Applies messages from edges in their order; reports in a row go to the tracker together,
/// and are applied before whatever follows them.
async fn apply(tracker: &mut Tracker, arrived: Vec<async_nats::Message>) {
    let mut reports = Vec::new();
    for message in arrived {
        match FromEdge::decode(&message.subject, &message.payload) {
            Ok(FromEdge::Report(report)) => reports.push(report),
            Ok(FromEdge::Heartbeat(heartbeat)) => {
                tracker.reports(std::mem::take(&mut reports)).await;
                let reply = tracker.heartbeat(heartbeat.edge).await;
                respond(&tracker.nats(), message.reply, &reply).await;
            }
            Ok(FromEdge::Sync(sync)) => {
                tracker.reports(std::mem::take(&mut reports)).await;
                tracker.sync(sync).await;
                respond(&tracker.nats(), message.reply, &()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a presence message that cannot be read");
                // An edge waits for the answer to its sync: let it go on.
                if let FromEdgeError::Undecodable {
                    kind: FromEdgeKind::Sync,
                    ..
                } = e
                {
                    respond(&tracker.nats(), message.reply, &()).await;
                }
            }
        }
    }
    tracker.reports(reports).await;
}

/// Answers queries (read-only, so beside the tracker rather than queued behind it).
async fn answer(
    mut queries: async_nats::Subscriber,
    mut redis: ConnectionManager,
    keys: Keys,
    nats: async_nats::Client,
    metrics: PresenceMetrics,
    shutdown: Shutdown,
) {
    while let Some(message) = tokio::select! {
        message = queries.next() => message,
        () = shutdown.cancelled() => None,
    } {
        let Ok(query) = serde_json::from_slice::<Query>(&message.payload) else {
            continue;
        };
        metrics.queries.inc();
        let presences = query::query(&mut redis, &keys, &query.user_ids).await;
        respond(&nats, message.reply, &QueryReply { presences }).await;
    }
}

async fn respond<T: serde::Serialize>(
    nats: &async_nats::Client,
    reply: Option<async_nats::Subject>,
    body: &T,
) {
    let Some(reply) = reply else { return };
    let body = serde_json::to_vec(body).expect("replies serialise");
    if let Err(e) = nats.publish(reply, body.into()).await {
        tracing::warn!(error = %e, "cannot answer a presence request");
    }
}
