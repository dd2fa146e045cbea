//! The auth service: accounts, tokens, profiles, channels and membership, as a REST API over
//! PostgreSQL. Schema changes are sqlx migrations in `auth/migrations/`, applied at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use shared::config::{LogConfig, NatsConfig, Secret, ServiceUrl};
use shared::health::Readiness;
use shared::lifecycle::{HttpServer, Service, Shutdown};
use shared::telemetry::Metrics;
use sqlx::postgres::PgPoolOptions;

/// The auth service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "auth",
    version,
    about = "Natter accounts, tokens, profiles and channels"
)]
pub struct Config {
    /// Address the REST API listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_AUTH_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,

    /// PostgreSQL URL.
    #[arg(long = "database-url", env = "NATTER_DATABASE_URL",
          value_parser = |s: &str| shared::config::postgres_url(s).map(Secret::new))]
    pub database_url: Secret<ServiceUrl>,

    /// Most PostgreSQL connections this process holds.
    #[arg(
        long = "database-max-connections",
        env = "NATTER_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub database_max_connections: u32,

    #[command(flatten)]
    pub nats: NatsConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to PostgreSQL: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The auth service, built and bound, ready to run.
pub struct Auth {
    http: HttpServer,
}

impl Auth {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let db = PgPoolOptions::new()
            .max_connections(config.database_max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect(config.database_url.expose().as_str())
            .await
            .map_err(Error::Database)?;
        sqlx::migrate!("./migrations").run(&db).await?;
        let nats = config.nats.connect("auth").await?;

        let metrics = Metrics::new("auth");
        let readiness = Readiness::new()
            .with("postgres", {
                let db = db.clone();
                move || {
                    let db = db.clone();
                    async move {
                        let ping = sqlx::query("SELECT 1").execute(&db).await;
                        ping.map(|_| ()).map_err(|e| e.to_string())
                    }
                }
            })
            .with_nats(nats);
        let router = shared::health::router(readiness, metrics.clone());
        let http = HttpServer::bind(config.http_addr, router, &metrics).await?;
        Ok(Self { http })
    }
}

impl Service for Auth {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        Ok(self.http.serve(shutdown).await?)
    }
}
