//! Media: the files people share (attachments, avatars, server icons), kept on local disk or in
//! an S3-compatible object store.
//!
//! - [`storage`]: the one API over both kinds of store; every byte travels as a stream.

use std::net::SocketAddr;

use clap::Parser;
use kit::config::LogConfig;
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::telemetry::Metrics;

pub mod storage;

use crate::storage::{Storage, StorageConfig, StorageError};

/// The media service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(name = "media", version, about = "Natter media")]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_MEDIA_ADDR",
        default_value = "127.0.0.1:8084"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port.
    #[arg(
        long = "metrics-addr",
        env = "NATTER_MEDIA_METRICS_ADDR",
        default_value = "127.0.0.1:9084"
    )]
    pub metrics_addr: SocketAddr,

    /// Header-read timeout and per-address connection cap of both listeners.
    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    #[command(flatten)]
    pub storage: StorageConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why media could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the file store: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// The media service, built and bound, ready to run.
pub struct Media {
    http: HttpServer,
}

impl Media {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let storage = Storage::open(&config.storage)?;
        let metrics = Metrics::new("media");
        let probe = storage.clone();
        let readiness = Readiness::new().with("storage", move || {
            let storage = probe.clone();
            async move { storage.check().await }
        });
        let router = kit::health::router(readiness);
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, router, &metrics).await?;
        Ok(Self { http })
    }
}

impl Service for Media {
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
        tasks.spawn_fallible("the HTTP server", self.http.serve(stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}
