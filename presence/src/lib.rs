//! Presence: who is online across devices, kept in Redis with expiry and fanned out over NATS
//! subjects; it also answers and coordinates the discovery of edges.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use shared::config::{LogConfig, NatsConfig, RedisConfig};
use shared::health::Readiness;
use shared::lifecycle::{HttpServer, Service, Shutdown};
use shared::telemetry::Metrics;

/// The presence service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "presence",
    version,
    about = "Natter presence and edge discovery"
)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_PRESENCE_ADDR",
        default_value = "127.0.0.1:8082"
    )]
    pub http_addr: SocketAddr,

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
    #[error("bad Redis settings: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The presence service, built and bound, ready to run.
pub struct Presence {
    http: HttpServer,
}

impl Presence {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let nats = config.nats.connect("presence").await?;
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
        let readiness = Readiness::new()
            .with("redis", move || {
                let mut redis = redis.clone();
                async move {
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut redis).await;
                    pong.map(|_| ()).map_err(|e| e.to_string())
                }
            })
            .with_nats(nats);
        let router = shared::health::router(readiness, metrics.clone());
        let http = HttpServer::bind(config.http_addr, router, &metrics).await?;
        Ok(Self { http })
    }
}

impl Service for Presence {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        Ok(self.http.serve(shutdown).await?)
    }
}
