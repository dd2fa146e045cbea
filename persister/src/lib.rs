//! The persister: JetStream durable consumers that copy every chat event into the CQL store, where
//! history lives forever. Several run side by side and share the work.

use std::net::SocketAddr;

use clap::Parser;
use shared::config::{LogConfig, NatsConfig};
use shared::cql::{CqlConfig, CqlError, Migration};
use shared::health::Readiness;
use shared::lifecycle::{HttpServer, Service, Shutdown};
use shared::stream::ChatStreamConfig;
use shared::subjects::Subjects;
use shared::telemetry::Metrics;

/// The CQL schema, in order. A new version is a new file and a new entry; applied ones never change.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "messages",
    cql: include_str!("../schema/0001_messages.cql"),
}];

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
    Io(#[from] std::io::Error),
}

/// A persister, built and bound, ready to run.
pub struct Persister {
    http: HttpServer,
}

impl Persister {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let nats = config.nats.connect("persister").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;
        let cql = config.cql.connect().await?;
        config.cql.migrate(&cql, MIGRATIONS).await?;

        let metrics = Metrics::new("persister");
        let readiness = Readiness::new().with_nats(nats).with_cql(cql);
        let router = shared::health::router(readiness, metrics.clone());
        let http = HttpServer::bind(config.http_addr, router, &metrics).await?;
        Ok(Self { http })
    }
}

impl Service for Persister {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        Ok(self.http.serve(shutdown).await?)
    }
}
