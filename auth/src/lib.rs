//! The auth service: accounts, tokens, profiles, channels and membership, as a REST API over
//! PostgreSQL. Schema changes are sqlx migrations in `auth/migrations/`, applied at start.
//!
//! - [`routes`]: the HTTP API, one module per resource, and its OpenAPI document.
//! - [`keys`], [`sessions`], [`passwords`], [`mod@limits`], [`throttle`]: signing in and staying
//!   signed in.
//! - [`profiles`], [`cache`], [`channels`]: the data, in PostgreSQL (profiles cached in Redis).
//! - [`guilds`], [`roles`], [`guild_members`], [`guild_channels`], [`invites`], [`audit`]:
//!   servers, their roles, members, bans, channels and overwrites, invites and the audit log.
//! - [`consent`], [`quotas`]: who may DM or add whom, blocks, and limits on growing anyone's
//!   channels.
//! - [`publish`]: events on NATS after each change; [`access`]: edges' questions over NATS.

use std::sync::Arc;
use std::time::Duration;

use kit::health::Readiness;
use kit::lifecycle::{HttpServer, Service, Shutdown};
use kit::telemetry::Metrics;
use kit::tokens::Verifier;
use proto::SnowflakeGenerator;
use proto::subjects::Subjects;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub mod access;
pub mod audit;
pub mod cache;
pub mod calls;
pub mod channels;
mod config;
pub mod consent;
pub mod error;
pub mod extract;
pub mod guild_channels;
pub mod guild_members;
pub mod guilds;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod livekit;
pub mod notifications;
pub mod passwords;
pub mod profiles;
pub mod publish;
pub mod quotas;
pub mod roles;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod throttle;
pub mod voice;
pub mod web;

pub use config::Config;

use crate::cache::ProfileCache;
use crate::keys::KeyRing;
use crate::limits::{Limits, RequestLimit};
use crate::passwords::Passwords;
use crate::publish::Publisher;
use crate::state::{AppState, AuthMetrics, Settings};
use crate::throttle::{SignInThrottle, ThrottleConfig};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to PostgreSQL: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot connect to NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    #[error("bad Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the signing keys cannot be used: {0}")]
    Keys(#[from] kit::tokens::KeySetError),
    #[error("cannot prepare password hashing: {0}")]
    Passwords(#[from] passwords::HashError),
    #[error("bad --cors-origins: {0}")]
    Cors(String),
    #[error("cannot subscribe to edges' requests: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("stopped answering edges' requests: the NATS subscription ended")]
    AnsweringStopped,
    #[error("cannot create the events stream: {0}")]
    EventsStream(#[from] async_nats::jetstream::context::CreateStreamError),
    #[error("cannot prepare the LiveKit client: {0}")]
    LiveKit(#[source] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The auth service, built and bound, ready to run.
pub struct Auth {
    http: HttpServer,
    state: AppState,
    /// Edges' requests (`access`), answered while the service runs.
    requests: async_nats::Subscriber,
    concurrency: usize,
    /// How often voice states are checked against the media server's rooms.
    reconcile_interval: Duration,
}

impl Auth {
    pub async fn build(config: Config) -> Result<Self, Error> {
        let db = database(&config).await?;
        let nats = nats(&config).await?;
        let subjects = Subjects::new(config.nats.prefix.clone());
        // What auth tells users, servers and channels goes through it (`publish`).
        config
            .events_stream
            .ensure(&async_nats::jetstream::new(nats.clone()), &subjects)
            .await?;

        let metrics = Metrics::new("auth");
        let auth_metrics = AuthMetrics::register(&metrics);
        let keys = KeyRing::new(config.signing_keys.clone());
        let verifier =
            Verifier::from_jwks(&keys.jwks(), &config.tokens.audience, &config.tokens.issuer)?;
        let concurrency = config.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        });
        let passwords = Passwords::new(concurrency, auth_metrics.hash_duration.clone()).await?;
        let cache = ProfileCache::new(
            redis::Client::open(config.redis.url.as_str())?,
            subjects.prefix().as_str(),
            config.profile_cache_ttl,
            auth_metrics.profile_cache.clone(),
        );
        let state = AppState {
            db: db.clone(),
            nats: nats.clone(),
            events: Publisher::new(nats.clone(), subjects.clone()),
            subjects,
            ids: Arc::new(
                SnowflakeGenerator::new(config.worker_id).expect("the worker id was checked"),
            ),
            keys: Arc::new(keys),
            verifier,
            passwords,
            cache,
            limits: Arc::new(limits(&config)),
            settings: Arc::new(settings(&config)),
            metrics: auth_metrics,
            livekit: config.voice.livekit().transpose().map_err(Error::LiveKit)?,
        };

        let readiness = readiness(db, nats);
        let api = routes::router(state.clone(), &config).map_err(Error::Cors)?;
        let router = kit::health::router(readiness).merge(api);
        let listen = kit::listener::Listen {
            http: config.http_addr,
            metrics: config.metrics_addr,
            limits: config.listener,
        };
        // The listener tells handlers each connection's peer address: rate limits need it.
        let http = HttpServer::bind(listen, router, &metrics).await?;
        let requests = access::subscribe(&state).await?;
        Ok(Self {
            http,
            state,
            requests,
            concurrency: config.database_max_connections as usize,
            reconcile_interval: config.voice.reconcile_interval,
        })
    }
}

/// The database pool, with auth's migrations applied.
async fn database(config: &Config) -> Result<PgPool, Error> {
    let db = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(config.database_url.expose().as_str())
        .await
        .map_err(Error::Database)?;
    sqlx::migrate!("./migrations").run(&db).await?;
    Ok(db)
}

/// The NATS client. It connects in the background; events published before it has are sent
/// late, after the request that caused them was answered. So it is waited for, briefly: auth
/// still starts (and reports not ready) while NATS is down.
async fn nats(config: &Config) -> Result<async_nats::Client, Error> {
    let nats = config.nats.connect("auth").await?;
    if tokio::time::timeout(Duration::from_secs(5), nats.flush())
        .await
        .is_err()
    {
        tracing::warn!("NATS is not reachable yet; events wait until it is");
    }
    Ok(nats)
}

fn limits(config: &Config) -> Limits {
    Limits {
        sign_up_per_ip: RequestLimit::new(config.sign_up_rate),
        sign_in_per_ip: RequestLimit::new(config.sign_in_rate),
        sign_in: SignInThrottle::new(ThrottleConfig {
            per_pair: config.sign_in_backoff_per_pair,
            per_address: config.sign_in_backoff_per_address,
            per_account: config.sign_in_backoff_per_account,
            trust_for: config.sign_in_trust,
        }),
    }
}

fn settings(config: &Config) -> Settings {
    Settings {
        media_url: config.media_url.as_str().trim_end_matches('/').to_owned(),
        notify_url: config.notify_url.as_str().trim_end_matches('/').to_owned(),
        token_issuer: config.tokens.issuer.clone(),
        token_audience: config.tokens.audience.clone(),
        access_token_ttl: config.access_token_ttl,
        refresh_token_ttl: config.refresh_token_ttl,
        trust_forwarded_for: config.trust_forwarded_for,
        member_limit: config.member_limit,
        discovery_timeout: config.discovery_timeout,
        quotas: quotas::Quotas {
            channel_limit: config.channel_limit,
            channel_creates: config.channel_create_rate,
            member_adds: config.member_add_rate,
            guild_limit: config.guild_limit,
            guild_channel_limit: config.guild_channel_limit,
            role_limit: config.role_limit,
            invite_creates: config.invite_create_rate,
        },
        ring_timeout: config.voice.ring_timeout,
    }
}

/// `/readyz`: PostgreSQL answers a query, NATS a ping.
fn readiness(db: PgPool, nats: async_nats::Client) -> Readiness {
    Readiness::new()
        .with("postgres", move || {
            let db = db.clone();
            async move {
                let ping = sqlx::query!("SELECT 1 AS ready").fetch_all(&db).await;
                ping.map(|_| ()).map_err(|e| e.to_string())
            }
        })
        .with_nats(nats)
}

impl Service for Auth {
    type Error = Error;

    fn port(&self) -> u16 {
        self.http.port()
    }

    fn metrics_port(&self) -> u16 {
        self.http.metrics_port()
    }

    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), Error> {
        tokio::spawn(housekeeping(self.state.clone(), shutdown.clone()));
        if !self.reconcile_interval.is_zero() && self.state.livekit.is_some() {
            tokio::spawn(voice::reconcile(
                self.state.clone(),
                self.reconcile_interval,
                shutdown.clone(),
            ));
        }
        tokio::spawn(calls::sweep(self.state.clone(), shutdown.clone()));
        let mut answering = tokio::spawn(access::answer(
            self.state.clone(),
            self.requests,
            self.concurrency,
        ));
        tokio::select! {
            served = self.http.serve(shutdown) => {
                answering.abort();
                served?;
                Ok(())
            }
            // Edges cannot start sessions without these answers: a service that stopped giving
            // them must exit, so its supervisor restarts it.
            _ = &mut answering => Err(Error::AnsweringStopped),
        }
    }
}

/// Once a minute: forget rate-limit state of quiet clients and delete long-expired refresh tokens.
async fn housekeeping(state: AppState, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        state.limits.retain_recent();
        if let Err(e) = sessions::purge_expired(&state.db).await {
            tracing::warn!(error = %e, "cannot purge expired refresh tokens");
        }
        let quotas = &state.settings.quotas;
        let window = quotas
            .channel_creates
            .per
            .max(quotas.member_adds.per)
            .max(quotas.invite_creates.per);
        if let Err(e) = quotas::forget_before(&state.db, window).await {
            tracing::warn!(error = %e, "cannot forget old counted actions");
        }
        if let Err(e) = invites::purge_expired(&state.db).await {
            tracing::warn!(error = %e, "cannot delete expired invites");
        }
    }
}
