//! The notification worker: whom a new message concerns, the mentions inbox, and Web Push to the
//! browsers of people who are away. Several run side by side and share the work.
//!
//! - [`worker`]: the durable consumer `notify` on the chat stream: asks auth whom each new
//!   message concerns, writes the inbox, asks presence who is away, queues their pushes.
//! - [`push`]: batching per person and channel, the senders (Web Push), pruning.
//! - [`vapid`]: the VAPID key, made on first start and kept in a file.
//! - [`routes`]: the inbox (`/api/v1/users/@me/mentions`) and the VAPID public key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod asker;
pub mod metrics;
pub mod push;
pub mod routes;
pub mod vapid;
pub mod worker;

use clap::Parser;
use kit::config::{LogConfig, NatsConfig};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::stream::ChatStreamConfig;
use kit::telemetry::Metrics;
use proto::subjects::Subjects;
use store::cql::{CqlConfig, CqlError, CqlReadiness};
use store::schema::MIGRATIONS;
use store::{InboxStore, MessageStore, StoreError};

use crate::metrics::NotifyMetrics;
use crate::push::{Pusher, WebPush};
use crate::vapid::VapidKey;
use crate::worker::Worker;

/// The notification worker's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "notify",
    version,
    about = "Natter notify: mentions inbox and Web Push"
)]
pub struct Config {
    /// Address the HTTP side (the inbox, the VAPID key, health) listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_NOTIFY_ADDR",
        default_value = "127.0.0.1:8085"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port.
    #[arg(
        long = "metrics-addr",
        env = "NATTER_NOTIFY_METRICS_ADDR",
        default_value = "127.0.0.1:9085"
    )]
    pub metrics_addr: SocketAddr,

    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// Where auth's REST API is: the token keys (JWKS).
    #[arg(
        long = "auth-url",
        env = "NATTER_AUTH_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub auth_url: url::Url,

    #[command(flatten)]
    pub tokens: kit::tokens::TokenClaimsConfig,

    /// Web pages allowed to call the inbox (CORS): the web client's origins.
    #[arg(
        long = "allowed-origins",
        env = "NATTER_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8081,http://localhost:8081,http://127.0.0.1:5173,http://localhost:5173"
    )]
    pub allowed_origins: Vec<String>,

    /// The VAPID private key (PEM, P-256): made here on first start when the file is missing,
    /// and shared by every notify instance.
    #[arg(
        long = "vapid-key",
        env = "NATTER_VAPID_KEY",
        default_value = ".natter/keys/vapid.pem"
    )]
    pub vapid_key: PathBuf,

    /// The VAPID `sub` claim: how push services reach the operator.
    #[arg(
        long = "vapid-contact",
        env = "NATTER_VAPID_CONTACT",
        default_value = "mailto:admin@localhost"
    )]
    pub vapid_contact: String,

    /// At most one push per person per channel in this long; what arrives meanwhile goes as
    /// one push when it ends.
    #[arg(long = "push-interval", env = "NATTER_PUSH_INTERVAL", default_value = "30s",
          value_parser = kit::config::duration)]
    pub push_interval: Duration,

    /// Pushes waiting to be batched and sent; when full, new ones are dropped (and counted).
    #[arg(
        long = "push-queue",
        env = "NATTER_PUSH_QUEUE",
        default_value_t = 10_000
    )]
    pub push_queue: usize,

    /// Pushes in flight to push services at once.
    #[arg(
        long = "push-concurrency",
        env = "NATTER_PUSH_CONCURRENCY",
        default_value_t = 64
    )]
    pub push_concurrency: usize,

    /// How long one request to a push service may take.
    #[arg(long = "push-timeout", env = "NATTER_PUSH_TIMEOUT", default_value = "10s",
          value_parser = kit::config::duration)]
    pub push_timeout: Duration,

    /// How long a push service keeps a push for a browser that is offline (the `TTL` header).
    #[arg(long = "push-ttl", env = "NATTER_PUSH_TTL", default_value = "1d",
          value_parser = kit::config::duration)]
    pub push_ttl: Duration,

    /// How long one store request may take.
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

/// Why notify could not start or stopped with an error.
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
    #[error("--vapid-key: {0}")]
    Vapid(String),
    #[error(transparent)]
    Tokens(#[from] kit::tokens::KeySetError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// A notify instance, built and bound, ready to run.
pub struct Notify {
    http: HttpServer,
    worker: Worker,
    pusher: Pusher,
    queue: tokio::sync::mpsc::Receiver<push::Job>,
}

impl Notify {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let vapid = VapidKey::load_or_create(&config.vapid_key).map_err(Error::Vapid)?;
        let nats = config.nats.connect("notify").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;
        let cql = config.cql.connect().await?;
        config.cql.migrate(&cql, MIGRATIONS).await?;
        let inbox = InboxStore::prepare(
            cql.clone(),
            &config.cql.keyspace,
            config.cql_request_timeout,
        )
        .await?;
        let messages = MessageStore::prepare(
            cql.clone(),
            &config.cql.keyspace,
            config.cql_request_timeout,
        )
        .await?;

        let metrics = Metrics::new("notify");
        let notify_metrics = NotifyMetrics::new(&metrics);
        let (jobs, queue) = tokio::sync::mpsc::channel(config.push_queue.max(1));
        let http_client = reqwest::Client::builder()
            .timeout(config.push_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let sender = WebPush {
            http: http_client,
            vapid: vapid.clone(),
            contact: config.vapid_contact.clone(),
            ttl: u32::try_from(config.push_ttl.as_secs()).unwrap_or(u32::MAX),
        };
        let pusher = Pusher {
            sender: Arc::new(sender),
            interval: config.push_interval,
            concurrency: config.push_concurrency,
            nats: nats.clone(),
            subjects: subjects.clone(),
            metrics: notify_metrics.clone(),
        };
        let subscribed = kit::health::Flag::default();
        let worker = Worker {
            nats: nats.clone(),
            asker: asker::Asker::start(nats.clone(), &subjects, notify_metrics.questions.clone()),
            subjects: subjects.clone(),
            inbox: inbox.clone(),
            jobs,
            metrics: notify_metrics,
            subscribed: subscribed.clone(),
        };
        let verifier = kit::tokens::Verifier::fetching_lazily(
            &format!(
                "{}/api/v1/auth/jwks",
                config.auth_url.as_str().trim_end_matches('/')
            ),
            &config.tokens.audience,
            &config.tokens.issuer,
            Duration::from_secs(10),
        )?;
        let state = routes::AppState {
            verifier,
            inbox,
            messages,
            nats: nats.clone(),
            subjects,
            vapid_public: Arc::from(vapid.public_key()),
        };
        let readiness = Readiness::new()
            .with_nats(nats)
            .with_cql(cql)
            .with_consumer(subscribed);
        let router =
            kit::health::router(readiness).merge(routes::router(state, &config.allowed_origins));
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, router, &metrics).await?;
        Ok(Self {
            http,
            worker,
            pusher,
            queue,
        })
    }
}

impl Service for Notify {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        let stop = shutdown.child_token();
        let mut tasks = Essentials::new();
        tasks.spawn("the notification worker", self.worker.run(stop.clone()));
        tasks.spawn("the pusher", self.pusher.run(self.queue, stop.clone()));
        tasks.spawn_fallible("the HTTP server", self.http.serve(stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}
