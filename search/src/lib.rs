//! The search service: a full-text index of every message of its partitions (tantivy, on local
//! disk), kept current from the chat stream and asked by the edges over NATS.
//!
//! - [`index`]: the index, its documents and queries, and the stream position its commits record.
//! - [`guilds`]: which server each channel belongs to (asked of auth, kept).
//! - [`intake`]: follows the chat stream from the index's position, applying creates, edits and
//!   deletes in batches, one commit per batch.
//! - [`rebuild`]: builds a lost index again from the CQL store.
//! - [`queries`]: answers the edges' searches (`{p}.search.{partition}`).
//! - [`deletions`]: removes deleted channels (told by auth's notice to media).
//!
//! The edges decide who may read what: they name the channels a search may answer from, and the
//! index answers from those alone.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod deletions;
pub mod guilds;
pub mod index;
pub mod intake;
pub mod queries;
pub mod rebuild;

use clap::Parser;
use kit::config::{LogConfig, NatsConfig};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::stream::{ChatStream, ChatStreamConfig};
use kit::telemetry::Metrics;
use proto::subjects::Subjects;
use store::MessageStore;
use store::cql::{CqlConfig, CqlError};
use store::history::History;

use crate::guilds::Guilds;
use crate::index::{IndexError, MessageIndex, Position, SCHEMA_VERSION};

/// The search service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "search",
    version,
    about = "Natter search: the full-text index of messages"
)]
pub struct Config {
    /// Address the HTTP side (health) listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_SEARCH_ADDR",
        default_value = "127.0.0.1:8087"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port.
    #[arg(
        long = "metrics-addr",
        env = "NATTER_SEARCH_METRICS_ADDR",
        default_value = "127.0.0.1:9087"
    )]
    pub metrics_addr: SocketAddr,

    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// The folder the index lives in (this process's alone). Deleting it makes the process
    /// rebuild the index from the CQL store.
    #[arg(
        long = "index-dir",
        env = "NATTER_SEARCH_INDEX_DIR",
        default_value = ".natter/search"
    )]
    pub index_dir: PathBuf,

    /// How many partitions the index is split into (by channel), across every search process.
    /// The edges' `--search-partitions` must be the same.
    #[arg(
        long = "partitions",
        env = "NATTER_SEARCH_PARTITIONS",
        default_value_t = 1
    )]
    pub partitions: u32,

    /// The partitions this process holds, comma-separated; all of them when left out.
    #[arg(
        long = "owned-partitions",
        env = "NATTER_SEARCH_OWNED_PARTITIONS",
        value_delimiter = ','
    )]
    pub owned: Vec<u32>,

    /// Longest time between an event reaching the stream and its commit to the index (and so
    /// being searchable); a commit also comes after every `--commit-events` events.
    #[arg(long = "commit-interval", env = "NATTER_SEARCH_COMMIT_INTERVAL", default_value = "1s",
          value_parser = kit::config::duration)]
    pub commit_interval: Duration,

    /// Events applied between commits at most.
    #[arg(
        long = "commit-events",
        env = "NATTER_SEARCH_COMMIT_EVENTS",
        default_value_t = 5000
    )]
    pub commit_events: usize,

    /// Searches answered at once (each runs on a blocking thread).
    #[arg(
        long = "concurrent-searches",
        env = "NATTER_SEARCH_CONCURRENT",
        default_value_t = 8
    )]
    pub concurrent_searches: usize,

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

/// Why the search service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot create the chat stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error(transparent)]
    Cql(#[from] CqlError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("cannot subscribe: {0}")]
    Subscribe(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// What this process holds: which partitions, of how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitions {
    pub owned: BTreeSet<u32>,
    pub of: u32,
}

impl Partitions {
    pub fn holds(&self, channel: proto::Snowflake) -> bool {
        self.owned
            .contains(&proto::search::partition_of(channel, self.of))
    }

    /// Whether an index at `position` holds these partitions, whole, in today's schema.
    fn matches(&self, position: &Position) -> bool {
        position.complete
            && position.version == SCHEMA_VERSION
            && position.of == self.of
            && position.partitions == self.owned
    }
}

/// The state the intake, the rebuild and the queries share.
pub struct Shared {
    pub index: MessageIndex,
    pub partitions: Partitions,
    /// The server of each channel indexed.
    pub guilds: Guilds,
    /// Answers searches: the index is whole and has caught up with the stream.
    pub ready: kit::health::Flag,
    /// Chat events applied to the index.
    pub applied: prometheus::IntCounter,
    /// The stream sequence of the index's last commit.
    pub position: prometheus::IntGauge,
    /// Searches answered, by outcome.
    pub searches: prometheus::IntCounterVec,
}

/// A search process, built and bound, ready to run.
pub struct Search {
    http: HttpServer,
    shared: Arc<Shared>,
    position: Option<Position>,
    nats: async_nats::Client,
    subjects: Subjects,
    history: History,
    config: Config,
}

impl Search {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let of = config.partitions.max(1);
        let owned: BTreeSet<u32> = if config.owned.is_empty() {
            (0..of).collect()
        } else {
            config.owned.iter().copied().collect()
        };
        if let Some(bad) = owned.iter().find(|&&p| p >= of) {
            return Err(Error::Config(format!(
                "partition {bad} is not one of 0..{of} (--owned-partitions, --partitions)"
            )));
        }
        let nats = config.nats.connect("search").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;
        let cql = config.cql.connect().await?;
        config.cql.migrate(&cql, store::schema::MIGRATIONS).await?;
        let store = MessageStore::prepare(
            cql.clone(),
            &config.cql.keyspace,
            config.cql_request_timeout,
        )
        .await?;
        let history = History::new(store, ChatStream::new(nats.clone(), subjects.clone()));

        let folder = config.index_dir.clone();
        let (index, position) = tokio::task::spawn_blocking(move || MessageIndex::open(&folder))
            .await
            .map_err(|e| Error::Config(e.to_string()))??;
        let partitions = Partitions { owned, of };
        let metrics = Metrics::new("search");
        let applied = prometheus::IntCounter::new(
            "natter_search_applied_total",
            "Chat events applied to the search index",
        )
        .expect("valid");
        let indexed_through = prometheus::IntGauge::new(
            "natter_search_position",
            "The chat stream sequence of the search index's last commit",
        )
        .expect("valid");
        let searches = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "natter_search_queries_total",
                "Searches answered, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid");
        metrics.register(applied.clone());
        metrics.register(indexed_through.clone());
        metrics.register(searches.clone());
        let shared = Arc::new(Shared {
            index,
            partitions,
            guilds: Guilds::new(nats.clone(), subjects.clone()),
            ready: kit::health::Flag::default(),
            applied,
            position: indexed_through,
            searches,
        });

        let readiness = Readiness::new().with_nats(nats.clone()).with_flag(
            "index",
            shared.ready.clone(),
            "the index is being built or catching up with the stream",
        );
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, kit::health::router(readiness), &metrics).await?;
        Ok(Self {
            http,
            shared,
            position,
            nats,
            subjects,
            history,
            config,
        })
    }
}

impl Service for Search {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    /// Answers searches and follows the stream until `shutdown`; a lost or foreign index is
    /// rebuilt from the store first (searches meanwhile are answered "not ready").
    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        let stop = shutdown.child_token();
        let subscriptions = queries::subscribe(&self.nats, &self.subjects, &self.shared.partitions)
            .await
            .map_err(|e| Error::Subscribe(e.to_string()))?;
        let deleted = self
            .nats
            .subscribe(self.subjects.media_forget())
            .await
            .map_err(|e| Error::Subscribe(e.to_string()))?;
        let mut tasks = Essentials::new();
        tasks.spawn(
            "the channel deletions",
            deletions::follow(deleted, Arc::clone(&self.shared), stop.clone()),
        );
        tasks.spawn(
            "the query answerer",
            queries::answer(
                self.nats.clone(),
                subscriptions,
                Arc::clone(&self.shared),
                self.config.concurrent_searches.max(1),
                stop.clone(),
            ),
        );
        let settings = intake::Settings {
            commit_interval: self.config.commit_interval,
            commit_events: self.config.commit_events.max(1),
        };
        tasks.spawn(
            "the intake",
            intake::run(
                self.nats.clone(),
                self.subjects.clone(),
                self.history,
                Arc::clone(&self.shared),
                self.position,
                settings,
                stop.clone(),
            ),
        );
        tasks.spawn_fallible("the HTTP server", self.http.serve(stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}
