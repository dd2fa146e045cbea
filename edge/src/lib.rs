//! The edge: a WebSocket gateway server. Many run side by side; each subscribes to NATS on behalf
//! of its local sessions and fans events out to their sockets in process.

use std::net::SocketAddr;
use std::pin::Pin;

pub mod discovery;

use clap::Parser;
use shared::config::{LogConfig, NatsConfig};
use shared::health::Readiness;
use shared::lifecycle::{HttpServer, Service, Shutdown};
use shared::stream::ChatStreamConfig;
use shared::subjects::Subjects;
use shared::telemetry::Metrics;

/// The edge's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "edge", version, about = "Natter WebSocket gateway")]
pub struct Config {
    /// Address the gateway (WebSocket and REST) listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_EDGE_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,

    /// The WebSocket URL clients are given to reach this edge (defaults to ws://<http-addr>/gateway).
    #[arg(long = "public-url", env = "NATTER_EDGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    #[command(flatten)]
    pub nats: NatsConfig,

    #[command(flatten)]
    pub stream: ChatStreamConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why the edge could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot subscribe to discovery requests: {0}")]
    Discovery(#[from] async_nats::SubscribeError),
    #[error("cannot create the chat stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// An edge, built and bound, ready to run.
pub struct Edge {
    http: HttpServer,
    discovery: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Edge {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let nats = config.nats.connect("edge").await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        let js = async_nats::jetstream::new(nats.clone());
        config.stream.ensure(&js, &subjects).await?;

        let metrics = Metrics::new("edge");
        let readiness = Readiness::new().with_nats(nats.clone());
        let router = shared::health::router(readiness, metrics.clone());
        let http = HttpServer::bind(config.http_addr, router, &metrics).await?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("ws://{}:{}/gateway", config.http_addr.ip(), http.port()));
        let discovery = Box::pin(discovery::responder(nats, &subjects, public_url).await?);
        Ok(Self { http, discovery })
    }
}

impl Service for Edge {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        tokio::spawn(discovery::run(self.discovery, shutdown.clone()));
        Ok(self.http.serve(shutdown).await?)
    }
}
