//! What every handler can reach: one `Clone` struct of handles, built once in `Auth::build`.

use std::sync::Arc;
use std::time::Duration;

use kit::telemetry::Metrics;
use kit::tokens::Verifier;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};
use proto::SnowflakeGenerator;
use proto::subjects::Subjects;
use sqlx::PgPool;

use crate::cache::ProfileCache;
use crate::keys::KeyRing;
use crate::limits::Limits;
use crate::passwords::Passwords;
use crate::publish::Publisher;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub nats: async_nats::Client,
    pub subjects: Subjects,
    pub ids: Arc<SnowflakeGenerator>,
    pub keys: Arc<KeyRing>,
    pub verifier: Verifier,
    pub passwords: Passwords,
    pub cache: ProfileCache,
    pub limits: Arc<Limits>,
    pub events: Publisher,
    pub settings: Arc<Settings>,
    pub metrics: AuthMetrics,
    /// The media server, when voice is configured.
    pub livekit: Option<crate::livekit::LiveKit>,
}

/// The plain values handlers read from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Media's public URL (no trailing slash): avatars and icons must be its images.
    pub media_url: String,
    /// The notification service's public URL (no trailing slash).
    pub notify_url: String,
    pub token_issuer: String,
    pub token_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub trust_forwarded_for: bool,
    pub member_limit: u32,
    pub discovery_timeout: Duration,
    /// Channels one may be in, and channels created and members added per hour.
    pub quotas: crate::quotas::Quotas,
    /// How long a call rings those who have not answered (`crate::calls`).
    pub ring_timeout: Duration,
}

/// The auth service's own metrics.
#[derive(Clone)]
pub struct AuthMetrics {
    /// `natter_auth_sign_ins_total{outcome}`: ok, invalid_credentials, rate_limited, invalid.
    pub sign_ins: IntCounterVec,
    /// `natter_auth_sign_ups_total{outcome}`: ok, conflict, rate_limited, invalid.
    pub sign_ups: IntCounterVec,
    /// `natter_auth_refreshes_total{outcome}`: ok, refused, reused.
    pub refreshes: IntCounterVec,
    /// `natter_auth_password_hash_duration_seconds`.
    pub hash_duration: Histogram,
    /// `natter_auth_profile_cache_total{result}`: hit, miss, error.
    pub profile_cache: IntCounterVec,
}

impl AuthMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let counter = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            metrics.register(c.clone());
            c
        };
        let hash_duration = Histogram::with_opts(
            HistogramOpts::new(
                "natter_auth_password_hash_duration_seconds",
                "Time to hash or verify one password (Argon2id)",
            )
            .buckets(vec![
                0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric");
        metrics.register(hash_duration.clone());
        Self {
            sign_ins: counter(
                "natter_auth_sign_ins_total",
                "Sign-in attempts by outcome",
                "outcome",
            ),
            sign_ups: counter(
                "natter_auth_sign_ups_total",
                "Sign-up attempts by outcome",
                "outcome",
            ),
            refreshes: counter(
                "natter_auth_refreshes_total",
                "Refresh-token uses by outcome",
                "outcome",
            ),
            hash_duration,
            profile_cache: counter(
                "natter_auth_profile_cache_total",
                "Profile cache lookups by result",
                "result",
            ),
        }
    }
}

impl Settings {
    /// Refuses an avatar or icon that is not an image media stores for `owner` in `folder`
    /// (`avatars`, `icons`): uploaded to media, never a URL of anywhere else.
    pub fn media_image(
        &self,
        url: &str,
        folder: &str,
        owner: proto::Snowflake,
        field: &str,
    ) -> Result<(), kit::error::ApiError> {
        let ours = format!("{}/{folder}/{owner}/", self.media_url);
        match url.strip_prefix(&ours) {
            Some(name) if !name.is_empty() && !name.contains(['/', '?', '#']) => Ok(()),
            _ => Err(kit::error::ApiError::field(
                field,
                format!(
                    "must be an image uploaded to media ({}/{folder}/{owner}/…); other URLs are \
                     not accepted",
                    self.media_url
                ),
            )),
        }
    }
}
