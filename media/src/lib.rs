//! Media: the files people share (attachments, avatars, server icons), kept on local disk or in
//! an S3-compatible object store.
//!
//! - [`storage`]: the one API over both kinds of store; every byte travels as a stream.
//! - [`routes`]: the HTTP API (upload slots, uploads).
//! - [`access`]: who may put files where (the token, and auth's answer about the channel).
//! - signed, expiring URLs: `kit::signing` (edges sign a message's file links too).
//! - [`sweeper`]: deletes uploads no message took.
//! - [`processing`]: new messages' images (real size, preview, metadata stripped), a worker on
//!   the chat stream.
//! - [`unfurl`]: link previews, fetched through a guard against server-side request forgery.
//! - [`files`]: taking uploads into messages (`{p}.media.claim`), their types and signed URLs,
//!   and deleting them with their message (`{p}.media.forget`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use kit::config::{LogConfig, NatsConfig, Secret, duration};
use kit::health::Readiness;
use kit::lifecycle::{Essentials, HttpServer, Service, Shutdown, TaskError};
use kit::telemetry::Metrics;

pub mod access;
pub mod duration;
pub mod files;
pub mod processing;
pub mod routes;
pub mod storage;
pub mod sweeper;
pub mod unfurl;

use crate::access::Access;
use crate::files::Files;
use crate::routes::{AppState, Settings};
use crate::storage::{Storage, StorageConfig, StorageError};
use crate::sweeper::Sweeper;
use kit::signing::{FileLinks, UrlSigner};
use kit::stream::ChatStreamConfig;

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

    /// Where clients reach this service: upload and file URLs begin with it.
    #[arg(
        long = "public-url",
        env = "NATTER_MEDIA_PUBLIC_URL",
        default_value = "http://127.0.0.1:8084"
    )]
    pub public_url: url::Url,

    /// Where auth's REST API is: token keys, and whether a caller sees a channel.
    #[arg(
        long = "auth-url",
        env = "NATTER_AUTH_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub auth_url: url::Url,

    #[command(flatten)]
    pub tokens: kit::tokens::TokenClaimsConfig,

    /// The secret signed URLs are signed with: the same on every media instance, at least 32
    /// characters. Changing it ends every link handed out.
    #[arg(long = "url-signing-secret", env = "NATTER_MEDIA_URL_SIGNING_SECRET",
          value_parser = signing_secret)]
    pub url_signing_secret: Secret<String>,

    /// The largest file accepted, in bytes (Discord's default is 25 MiB).
    #[arg(
        long = "max-file-size",
        env = "NATTER_MEDIA_MAX_FILE_SIZE",
        default_value_t = 25 * 1024 * 1024
    )]
    pub max_file_size: u64,

    /// How long an upload slot's URL stays valid.
    #[arg(long = "upload-url-ttl", env = "NATTER_MEDIA_UPLOAD_URL_TTL", default_value = "1h",
          value_parser = duration)]
    pub upload_url_ttl: Duration,

    /// How long an upload no message took is kept before the sweeper deletes it (longer than
    /// `--upload-url-ttl`, so a slow upload finishes before it can be swept).
    #[arg(long = "upload-ttl", env = "NATTER_MEDIA_UPLOAD_TTL", default_value = "2h",
          value_parser = duration)]
    pub upload_ttl: Duration,

    /// How long a file's signed URL works after it is handed out (with a message).
    #[arg(long = "file-url-ttl", env = "NATTER_MEDIA_FILE_URL_TTL", default_value = "4h",
          value_parser = duration)]
    pub file_url_ttl: Duration,

    /// Snowflake worker id of this process (0-1023), for attachment ids; every id-making
    /// process needs its own.
    #[arg(long = "worker-id", env = "NATTER_WORKER_ID", default_value = "900",
          value_parser = kit::config::worker_id)]
    pub worker_id: u16,

    #[command(flatten)]
    pub nats: NatsConfig,

    /// The chat stream, made here too if no edge has made it yet: the processor's durable
    /// consumer is made at start, so no message sent once media is ready goes unprocessed.
    #[command(flatten)]
    pub stream: ChatStreamConfig,

    /// How often the sweeper looks for uploads no message took.
    #[arg(long = "sweep-interval", env = "NATTER_MEDIA_SWEEP_INTERVAL", default_value = "5m",
          value_parser = duration)]
    pub sweep_interval: Duration,

    #[command(flatten)]
    pub storage: StorageConfig,

    /// The longest one link's preview may take (the page, its oEmbed document and its image).
    #[arg(long = "unfurl-timeout", env = "NATTER_MEDIA_UNFURL_TIMEOUT", default_value = "5s",
          value_parser = duration)]
    pub unfurl_timeout: Duration,

    /// Tests only: one address (`127.0.0.1:PORT`) link previews may fetch from although it is
    /// not public, for a fixture web server. Never set it in a deployment.
    #[arg(
        long = "unfurl-allow-address",
        env = "NATTER_MEDIA_UNFURL_ALLOW_ADDRESS"
    )]
    pub unfurl_allow_address: Option<SocketAddr>,

    #[command(flatten)]
    pub log: LogConfig,
}

/// Why media could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the file store: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("cannot create the chat stream: {0}")]
    Stream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error("cannot subscribe: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("bad worker id: {0:?}")]
    WorkerId(proto::snowflake::WorkerIdError),
    #[error("bad token settings: {0}")]
    Tokens(#[from] kit::tokens::KeySetError),
    #[error("cannot make the link preview client: {0}")]
    Unfurler(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

/// The media service, built and bound, ready to run.
pub struct Media {
    http: HttpServer,
    sweeper: Sweeper,
    requests: Requests,
    processor: processing::Processor,
}

/// What edges ask of media over NATS.
struct Requests {
    nats: async_nats::Client,
    claims: async_nats::Subscriber,
    forgets: async_nats::Subscriber,
    files: Files,
}

/// Every subscription is in this queue group: each request goes to one media instance.
const QUEUE: &str = "media";

/// Most claims one media process works on at once (each moves up to ten files).
const CONCURRENT_CLAIMS: usize = 64;

impl Media {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let storage = Storage::open(&config.storage)?;
        let metrics = Metrics::new("media");
        let nats = config.nats.connect("media").await?;
        let subjects = proto::subjects::Subjects::new(config.nats.prefix.clone());
        config
            .stream
            .ensure(&async_nats::jetstream::new(nats.clone()), &subjects)
            .await?;
        let subscribed = kit::health::Flag::default();
        let probe = storage.clone();
        let readiness = Readiness::new()
            .with("storage", move || {
                let storage = probe.clone();
                async move { storage.check().await }
            })
            .with_nats(nats.clone())
            .with_consumer(subscribed.clone());
        let public_url = config.public_url.as_str().trim_end_matches('/').to_owned();
        let signer = UrlSigner::new(&config.url_signing_secret);
        let files = Files::new(
            storage.clone(),
            FileLinks::new(&public_url, signer.clone(), config.file_url_ttl),
            proto::SnowflakeGenerator::new(config.worker_id).map_err(Error::WorkerId)?,
            config.max_file_size,
        );
        let nats_for_processing = nats.clone();
        let requests = Requests {
            claims: nats
                .queue_subscribe(subjects.media_claim(), QUEUE.into())
                .await?,
            forgets: nats
                .queue_subscribe(subjects.media_forget(), QUEUE.into())
                .await?,
            nats,
            files: files.clone(),
        };
        let verifier = kit::tokens::Verifier::fetching_lazily(
            &Access::jwks_url(&config.auth_url),
            &config.tokens.audience,
            &config.tokens.issuer,
            Duration::from_secs(10),
        )?;
        let state = AppState {
            storage: storage.clone(),
            access: Access::new(&config.auth_url, verifier),
            signer,
            files: files.clone(),
            settings: Arc::new(Settings {
                public_url,
                max_file_size: config.max_file_size,
                upload_url_ttl: config.upload_url_ttl,
            }),
        };
        let router = kit::health::router(readiness).merge(routes::router(state));
        let unfurler = unfurl::Unfurler::new(&unfurl::Settings {
            timeout: config.unfurl_timeout,
            allow: config.unfurl_allow_address,
        })?;
        let processor = processing::Processor {
            nats: nats_for_processing,
            subjects: subjects.clone(),
            storage: storage.clone(),
            files,
            unfurler,
            subscribed,
        };
        let sweeper = Sweeper::new(storage, config.upload_ttl, config.sweep_interval);
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        let http = HttpServer::bind(listen, router, &metrics).await?;
        Ok(Self {
            http,
            sweeper,
            requests,
            processor,
        })
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
        tasks.spawn("the upload sweeper", self.sweeper.run(stop.clone()));
        tasks.spawn(
            "the image and link processor",
            self.processor.run(stop.clone()),
        );
        let Requests {
            nats,
            claims,
            forgets,
            files,
        } = self.requests;
        tasks.spawn(
            "the claim answerer",
            answer_claims(claims, nats, files.clone(), stop.clone()),
        );
        tasks.spawn("the forgetter", forget(forgets, files, stop.clone()));
        let outcome = tasks.until(&shutdown).await;
        stop.cancel();
        Ok(outcome.and(tasks.finish().await)?)
    }
}

/// Answers edges' claims, each on a task of its own (a claim moves files: a slow store must not
/// hold up other messages), at most `CONCURRENT_CLAIMS` at once.
async fn answer_claims(
    claims: async_nats::Subscriber,
    nats: async_nats::Client,
    files: Files,
    shutdown: Shutdown,
) {
    kit::requests::serve(
        nats,
        claims,
        CONCURRENT_CLAIMS,
        shutdown,
        "claim",
        move |request| {
            let files = files.clone();
            async move {
                let claim =
                    kit::requests::parse::<proto::api::attachments::Claim>(&request.payload);
                let answer = match claim {
                    Ok(claim) => files.claim(&claim).await,
                    Err(message) => proto::api::attachments::ClaimReply::Refused {
                        code: proto::api::error::ErrorCode::InvalidBody,
                        field: String::new(),
                        message,
                    },
                };
                kit::requests::encode(&answer)
            }
        },
    )
    .await;
}

/// Deletes the files of deleted messages.
async fn forget(mut forgets: async_nats::Subscriber, files: Files, shutdown: Shutdown) {
    while let Some(message) = tokio::select! {
        message = forgets.next() => message,
        () = shutdown.cancelled() => None,
    } {
        let Ok(forget) =
            serde_json::from_slice::<proto::api::attachments::Forget>(&message.payload)
        else {
            tracing::warn!("a forget that cannot be read");
            continue;
        };
        if let Err(e) = files.forget(&forget).await {
            tracing::warn!(error = %e, channel = %forget.channel_id, message = ?forget.message_id, "cannot delete the files of a deleted message or channel");
        }
    }
}

fn signing_secret(s: &str) -> Result<Secret<String>, String> {
    if s.chars().count() < 32 {
        return Err("must be at least 32 characters long".to_owned());
    }
    Ok(Secret::new(s.to_owned()))
}
