//! The auth service's configuration: flags with environment fallbacks, checked once at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use kit::config::{LogConfig, NatsConfig, RedisConfig, Secret, ServiceUrl, duration};

use crate::keys::SigningKey;
use crate::limits::RateSpec;
use crate::throttle::BackoffSpec;

/// The auth service's configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "auth",
    version,
    about = "Natter accounts, tokens, profiles and channels",
    after_help = "Run `auth keygen PATH` to write a new Ed25519 signing key (PKCS#8 PEM, mode 0600)."
)]
pub struct Config {
    /// Address the REST API listens on.
    #[arg(
        long = "http-addr",
        env = "NATTER_AUTH_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,

    /// Address `/metrics` is served on, apart from the public port (so only whoever can reach
    /// this address reads the service's internals).
    #[arg(
        long = "metrics-addr",
        env = "NATTER_AUTH_METRICS_ADDR",
        default_value = "127.0.0.1:9081"
    )]
    pub metrics_addr: SocketAddr,

    /// Header-read timeout and per-address connection cap of both listeners.
    #[command(flatten)]
    pub listener: kit::listener::ListenerLimits,

    /// PostgreSQL URL.
    #[arg(long = "database-url", env = "NATTER_DATABASE_URL",
          value_parser = |s: &str| kit::config::postgres_url(s).map(Secret::new))]
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

    /// The events stream auth publishes what it tells users, servers and channels through.
    #[command(flatten)]
    pub events_stream: kit::stream::EventsStreamConfig,

    /// Profiles are cached here; auth keeps working (from PostgreSQL) when Redis is down.
    #[command(flatten)]
    pub redis: RedisConfig,

    /// Snowflake worker id for the users, channels and sessions this process creates (0-1023,
    /// unique among running processes that make ids).
    #[arg(long = "worker-id", env = "NATTER_WORKER_ID", default_value = "0",
          value_parser = kit::config::worker_id)]
    pub worker_id: u16,

    /// Ed25519 private keys (PKCS#8 PEM files), comma separated. The first signs access tokens;
    /// all are published in the JWKS. To rotate: add the new key second, deploy, swap, deploy,
    /// and remove the old one after an access-token lifetime.
    #[arg(long = "signing-key", env = "NATTER_AUTH_SIGNING_KEYS", value_delimiter = ',',
          required = true, value_parser = SigningKey::load)]
    pub signing_keys: Vec<SigningKey>,

    #[command(flatten)]
    pub tokens: kit::tokens::TokenClaimsConfig,

    /// How long an access token is valid.
    #[arg(long = "access-token-ttl", env = "NATTER_ACCESS_TOKEN_TTL",
          default_value = "15m", value_parser = duration)]
    pub access_token_ttl: Duration,

    /// How long an unused refresh token stays valid (each refresh starts a new one).
    #[arg(long = "refresh-token-ttl", env = "NATTER_REFRESH_TOKEN_TTL",
          default_value = "30d", value_parser = duration)]
    pub refresh_token_ttl: Duration,

    /// Most password hashes computed at once (each takes 19 MiB and ~35 ms of a core); defaults
    /// to the number of CPUs.
    #[arg(long = "hash-concurrency", env = "NATTER_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Sign-ups per client address (N/duration).
    #[arg(long = "sign-up-rate", env = "NATTER_SIGN_UP_RATE",
          default_value = "10/1h", value_parser = RateSpec::parse)]
    pub sign_up_rate: RateSpec,

    /// Sign-in attempts per client address (N/duration), not counting addresses trusted for
    /// the account they sign in to.
    #[arg(long = "sign-in-rate", env = "NATTER_SIGN_IN_RATE",
          default_value = "30/1m", value_parser = RateSpec::parse)]
    pub sign_in_rate: RateSpec,

    /// Failed sign-ins to one account from one address: after FREE failures each attempt waits
    /// FIRST, doubling with each failure up to CAP; one failure is forgotten per CAP of quiet
    /// (FREE/FIRST..CAP). See docs/SECURITY.md for how the three back-offs fit together.
    #[arg(long = "sign-in-backoff-per-account-and-address",
          env = "NATTER_SIGN_IN_BACKOFF_PER_ACCOUNT_AND_ADDRESS",
          default_value = "5/1s..15m", value_parser = BackoffSpec::parse)]
    pub sign_in_backoff_per_pair: BackoffSpec,

    /// Failed sign-ins from one address to any accounts (password spraying). Addresses that
    /// have signed in to an account are exempt for that account.
    #[arg(long = "sign-in-backoff-per-address", env = "NATTER_SIGN_IN_BACKOFF_PER_ADDRESS",
          default_value = "20/1s..15m", value_parser = BackoffSpec::parse)]
    pub sign_in_backoff_per_address: BackoffSpec,

    /// Failed sign-ins to one account from any addresses. Never gates the account: each
    /// address not yet trusted for it waits its own turn of the current delay, so the owner gets
    /// in within CAP whatever others do.
    #[arg(long = "sign-in-backoff-per-account", env = "NATTER_SIGN_IN_BACKOFF_PER_ACCOUNT",
          default_value = "5/1s..5m", value_parser = BackoffSpec::parse)]
    pub sign_in_backoff_per_account: BackoffSpec,

    /// How long an address that signed in to (or signed up) an account stays trusted for it:
    /// only its own failures slow it down.
    #[arg(long = "sign-in-trust", env = "NATTER_SIGN_IN_TRUST",
          default_value = "30d", value_parser = duration)]
    pub sign_in_trust: Duration,

    /// Take the client address from the last `X-Forwarded-For` entry. Only behind a proxy that
    /// sets it: otherwise clients choose their own address and escape the rate limits.
    #[arg(long = "trust-forwarded-for", env = "NATTER_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Origins browsers may call the API from (comma separated, e.g. http://localhost:5173), or
    /// `*` for any. None by default (same-origin only).
    #[arg(
        long = "cors-origins",
        env = "NATTER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// Most members a group channel may have.
    #[arg(
        long = "member-limit",
        env = "NATTER_MEMBER_LIMIT",
        default_value_t = 100
    )]
    pub member_limit: u32,

    /// Most channels a user may be in by their own choice (group channels, and DMs they opened).
    /// DMs others opened with them and they have not opened yet have a budget of this size of
    /// their own, so nobody can fill someone's channels by DMing them.
    #[arg(
        long = "channel-limit",
        env = "NATTER_CHANNEL_LIMIT",
        default_value_t = 200
    )]
    pub channel_limit: u32,

    /// Group channels one user may create (N/duration).
    #[arg(long = "channel-create-rate", env = "NATTER_CHANNEL_CREATE_RATE",
          default_value = "10/1h", value_parser = RateSpec::parse)]
    pub channel_create_rate: RateSpec,

    /// Members one user may add to channels (N/duration).
    #[arg(long = "member-add-rate", env = "NATTER_MEMBER_ADD_RATE",
          default_value = "100/1h", value_parser = RateSpec::parse)]
    pub member_add_rate: RateSpec,

    /// Most servers a user may be in (created or joined).
    #[arg(
        long = "guild-limit",
        env = "NATTER_GUILD_LIMIT",
        default_value_t = 100
    )]
    pub guild_limit: u32,

    /// Most channels (categories included) a server may have.
    #[arg(
        long = "guild-channel-limit",
        env = "NATTER_GUILD_CHANNEL_LIMIT",
        default_value_t = 500
    )]
    pub guild_channel_limit: u32,

    /// Most roles (@everyone included) a server may have.
    #[arg(long = "role-limit", env = "NATTER_ROLE_LIMIT", default_value_t = 250)]
    pub role_limit: u32,

    /// Invites one user may create (N/duration).
    #[arg(long = "invite-create-rate", env = "NATTER_INVITE_CREATE_RATE",
          default_value = "20/1h", value_parser = RateSpec::parse)]
    pub invite_create_rate: RateSpec,

    /// How long a profile stays in the Redis cache.
    #[arg(long = "profile-cache-ttl", env = "NATTER_PROFILE_CACHE_TTL",
          default_value = "5m", value_parser = duration)]
    pub profile_cache_ttl: Duration,

    /// How long `GET /api/v1/gateway` waits for edges to answer.
    #[arg(long = "discovery-timeout", env = "NATTER_DISCOVERY_TIMEOUT",
          default_value = "150ms", value_parser = duration)]
    pub discovery_timeout: Duration,

    /// Largest request body accepted, in bytes.
    #[arg(
        long = "max-body-bytes",
        env = "NATTER_MAX_BODY_BYTES",
        default_value_t = 64 * 1024
    )]
    pub max_body_bytes: usize,

    /// Serve the browser client from this folder (`web/dist`), with its `index.html` for every
    /// path that is neither a file nor under `/api`. Not served by default.
    #[arg(long = "web-dir", env = "NATTER_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,

    /// Origins of the edges the browser client connects to (comma separated, e.g.
    /// `https://edge-1.example.com,https://edge-2.example.com`, or `https://*.edges.example.com`).
    /// The page's Content-Security-Policy lets it open WebSockets and make requests to these and
    /// its own origin only: every edge discovery may offer a browser must be listed.
    #[arg(long = "edge-origins", env = "NATTER_EDGE_ORIGINS", value_delimiter = ',',
          value_parser = crate::web::EdgeOrigin::parse)]
    pub edge_origins: Vec<crate::web::EdgeOrigin>,

    /// Where else browsers send files: the S3 store's address as they reach it, when media
    /// hands out presigned PUTs to it (media's `--s3-public-endpoint`, else its
    /// `--s3-endpoint`). Allowed in the page's `connect-src`; on local storage uploads go to
    /// `--media-url`, which is allowed already.
    #[arg(
        long = "upload-origins",
        env = "NATTER_UPLOAD_ORIGINS",
        value_delimiter = ','
    )]
    pub upload_origins: Vec<url::Url>,

    /// Where the media service is, as browsers reach it. Avatars and server icons are images
    /// media serves (uploaded there); no other image URL is accepted, and the page's
    /// Content-Security-Policy loads images from this origin and its own only, so a remote URL
    /// never learns who looks at a profile.
    #[arg(
        long = "media-url",
        env = "NATTER_MEDIA_URL",
        default_value = "http://127.0.0.1:8084"
    )]
    pub media_url: url::Url,

    /// Where the notification service is, as browsers reach it: the mentions inbox and the VAPID
    /// key. Told to clients in `/api/v1/gateway` and allowed in the page's `connect-src`.
    #[arg(
        long = "notify-url",
        env = "NATTER_NOTIFY_URL",
        default_value = "http://127.0.0.1:8085"
    )]
    pub notify_url: url::Url,

    #[command(flatten)]
    pub voice: VoiceConfig,

    #[command(flatten)]
    pub log: LogConfig,
}

/// The media server (LiveKit) voice and video go through. Voice is off (op 4 answers
/// `service_unavailable`) until all of URL, key and secret are set.
#[derive(Debug, Clone, clap::Args)]
pub struct VoiceConfig {
    /// LiveKit's URL as auth reaches it, for its room service (`http://127.0.0.1:7880`; `ws://`
    /// is read as `http://`).
    #[arg(long = "livekit-url", env = "NATTER_LIVEKIT_URL")]
    pub livekit_url: Option<url::Url>,

    /// LiveKit's URL as clients reach it (`wss://voice.example.com`), sent in
    /// VOICE_SERVER_UPDATE; defaults to `--livekit-url`.
    #[arg(long = "livekit-public-url", env = "NATTER_LIVEKIT_PUBLIC_URL")]
    pub livekit_public_url: Option<url::Url>,

    /// The API key LiveKit knows Natter by.
    #[arg(long = "livekit-api-key", env = "NATTER_LIVEKIT_API_KEY")]
    pub livekit_api_key: Option<String>,

    /// Its secret: signs join tokens and room-service calls, and checks LiveKit's webhooks.
    #[arg(long = "livekit-api-secret", env = "NATTER_LIVEKIT_API_SECRET")]
    pub livekit_api_secret: Option<Secret<String>>,

    /// How often voice states are checked against LiveKit's rooms: a state at least this old
    /// whose person is not in the room (a crashed edge, a client that never connected its media)
    /// is cleared. 0 turns it off (webhooks alone then).
    #[arg(long = "voice-reconcile-interval", env = "NATTER_VOICE_RECONCILE_INTERVAL",
          default_value = "30s", value_parser = duration)]
    pub reconcile_interval: Duration,

    /// How long a call in a DM or group channel rings those who have not answered; when it
    /// stops ringing with nobody but the caller in it, the call ends as a missed call.
    #[arg(long = "call-ring-timeout", env = "NATTER_CALL_RING_TIMEOUT",
          default_value = "45s", value_parser = duration)]
    pub ring_timeout: Duration,
}

impl VoiceConfig {
    /// The media server, when voice is configured.
    pub fn livekit(&self) -> Option<Result<crate::livekit::LiveKit, reqwest::Error>> {
        let (Some(url), Some(key), Some(secret)) = (
            &self.livekit_url,
            &self.livekit_api_key,
            &self.livekit_api_secret,
        ) else {
            return None;
        };
        let public = self.livekit_public_url.as_ref().unwrap_or(url).to_string();
        let mut api = url.clone();
        let scheme = if url.scheme() == "wss" || url.scheme() == "https" {
            "https"
        } else {
            "http"
        };
        api.set_scheme(scheme).ok();
        Some(crate::livekit::LiveKit::new(
            api.as_str(),
            public.trim_end_matches('/'),
            key.clone(),
            secret.clone(),
        ))
    }
}
