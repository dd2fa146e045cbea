//! The persister: JetStream durable consumers that copy every chat event into the CQL store, where
//! history lives forever. Several run side by side and share the work.
//!
//! - [`consume`]: the copy loop (pull, write, acknowledge; retry without acknowledging).
//! - [`progress`]: what it counts, and the watcher that reports how far behind the stream it is
//!   and records in the store how far the store holds it (what history reads).

use std::net::SocketAddr;
use std::time::Duration;

pub mod consume;
pub mod progress;

use clap::Parser;
use kit::config::{LogConfig, NatsConfig};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::stream::ChatStreamConfig;
use kit::telemetry::Metrics;
use proto::subjects::Subjects;
use store::cql::{CqlConfig, CqlError, CqlReadiness};
use store::schema::MIGRATIONS;
use store::{MessageStore, StoreError};

use crate::consume::CopySettings;
use crate::progress::PersisterMetrics;

/// The persister's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "persister",
    version,
    about = "Natter persister: JetStream to the CQL store"
)]
pub struct Config {
    /// Address the HTTP side (health, metrics) listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_PERSISTER_ADDR",
        default_value = "127.0.0.1:8083"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port (so only whoever can reach
    /// this address reads the service's internals).
    #[arg(
        long = "metrics-addr",
        env = "NATTER_PERSISTER_METRICS_ADDR",
        default_value = "127.0.0.1:9083"
    )]
    pub metrics_addr: SocketAddr,

    /// Header-read timeout and per-address connection cap of both listeners.
    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// Events this process writes at once: what the stream has ready, up to 4,096 events, is
    /// written together (new messages in batches per partition), this many at once.
    #[arg(
        long = "in-flight",
        env = "NATTER_PERSISTER_IN_FLIGHT",
        default_value_t = 8192
    )]
    pub in_flight: usize,

    /// Events pulled from the stream per request.
    #[arg(long = "batch", env = "NATTER_PERSISTER_BATCH", default_value_t = 1000)]
    pub batch: usize,

    /// How long a set of events to write waits for more after its first: at chat's rates the
    /// stream hands events over a few at a time, and every set is at least one request to the
    /// store. Nobody waits for it: live delivery does not go through the store, and history
    /// reads what the store does not hold yet from the stream.
    #[arg(long = "linger", env = "NATTER_PERSISTER_LINGER", default_value = "50ms",
          value_parser = kit::config::duration)]
    pub linger: Duration,

    /// How long one store write may take before it counts as failed (and is retried).
    #[arg(long = "cql-request-timeout", env = "NATTER_CQL_REQUEST_TIMEOUT", default_value = "5s",
          value_parser = kit::config::duration)]
    pub cql_request_timeout: Duration,

    #[command(flatten)]
    pub nats: NatsConfig,

    #[command(flatten)]
    pub stream: ChatStreamConfig,

    #[command(flatten)]
    pub cql: CqlConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why the persister could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot create the chat stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error(transparent)]
    Cql(#[from] CqlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the persister's consumer: {0}")]
    Consumer(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// A persister, built and bound, ready to run.
pub struct Persister {
    http: HttpServer,
    consumer: async_nats::jetstream::consumer::PullConsumer,
    stream: async_nats::jetstream::stream::Stream,
    store: MessageStore,
    metrics: PersisterMetrics,
    settings: CopySettings,
}

impl Persister {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let nats = config.nats.connect("persister").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;
        let cql = config.cql.connect().await?;
        config.cql.migrate(&cql, MIGRATIONS).await?;
        let store = MessageStore::prepare(
            cql.clone(),
            &config.cql.keyspace,
            config.cql_request_timeout,
        )
        .await?;
        let settings = CopySettings {
            in_flight: config.in_flight.max(1),
            batch: config.batch.max(1),
            linger: config.linger,
        };
        let consumer = consume::durable(&js, &subjects, &settings)
            .await
            .map_err(Error::Consumer)?;
        let stream = js
            .get_stream(subjects.chat_stream_name())
            .await
            .map_err(|e| Error::Consumer(e.to_string()))?;

        let metrics = Metrics::new("persister");
        let persister_metrics = PersisterMetrics::new(&metrics);
        let readiness = Readiness::new().with_nats(nats).with_cql(cql);
        let router = kit::health::router(readiness);
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, router, &metrics).await?;
        Ok(Self {
            http,
            consumer,
            stream,
            store,
            metrics: persister_metrics,
            settings,
        })
    }
}

impl Service for Persister {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    /// Copies until `shutdown`. When the copy loop, the progress watcher or the HTTP side ends
    /// first (a panic, or a return it should not make), the persister stops with an error, so its
    /// process exits non-zero and its supervisor starts it again.
    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        let stop = shutdown.child_token();
        let mut tasks = Essentials::new();
        tasks.spawn(
            "the progress watcher",
            progress::watch(
                self.consumer.clone(),
                self.stream,
                self.store.clone(),
                self.metrics.clone(),
                stop.clone(),
            ),
        );
        tasks.spawn(
            "the copy loop",
            consume::run(
                self.consumer,
                self.store,
                self.metrics,
                self.settings,
                stop.clone(),
            ),
        );
        tasks.spawn_fallible("the HTTP server", self.http.serve(stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}
