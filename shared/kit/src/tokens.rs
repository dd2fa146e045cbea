//! Access tokens: what they claim and how to check one. The auth service signs; every service
//! that accepts tokens (auth itself, the edges) verifies here with public keys only.
//!
//! A token is a JWT signed with Ed25519 (`alg: EdDSA`, pinned: no other algorithm, and never
//! `none`, is accepted). Its header's `kid` is the RFC 7638 thumbprint of the signing key, looked
//! up in the key set auth publishes at `/api/v1/auth/jwks`. `exp`, `iat`, `sub`, `aud`, `iss` and
//! `sid` are required.
//!
//! Rotation: auth publishes every configured key and signs with the first. A [`Verifier`] that
//! meets a `kid` it does not know fetches the key set again (at most once per
//! `min_refetch_interval`), so a new key is picked up without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use jsonwebtoken::jwk::JwkSet as Jwks;

/// Seconds of clock difference between signer and verifier tolerated on `exp`.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims of an access token: part of the contract (auth signs them, every service reads
/// them), so they live in `proto`.
pub use proto::api::auth::AccessClaims;

/// Why a token was refused. Clients are told only that it was refused (and whether it expired).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not a well-formed EdDSA JWT with a key id")]
    Malformed,
    #[error("the access token was signed with an unknown key")]
    UnknownKey,
    #[error("the access token's signature does not verify")]
    BadSignature,
    #[error("the access token is for another audience")]
    WrongAudience,
    #[error("the access token is from another issuer")]
    WrongIssuer,
    #[error("the access token is not valid: {0}")]
    Invalid(String),
}

/// Why a key set could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("cannot fetch the key set from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the key set has no usable EdDSA key with a key id")]
    Empty,
}

/// Where a verifier gets its keys from when it meets an unknown `kid`.
#[derive(Debug, Clone)]
struct Source {
    url: String,
    http: reqwest::Client,
    min_refetch_interval: Duration,
}

/// Who issues access tokens and for whom: the `iss` and `aud` claims. Auth signs with these and
/// every verifier requires them, so both flatten this one group.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenClaimsConfig {
    /// The `iss` claim of access tokens.
    #[arg(
        long = "token-issuer",
        env = "NATTER_TOKEN_ISSUER",
        default_value = "natter-auth"
    )]
    pub issuer: String,

    /// The `aud` claim of access tokens.
    #[arg(
        long = "token-audience",
        env = "NATTER_TOKEN_AUDIENCE",
        default_value = "natter"
    )]
    pub audience: String,
}

/// Checks access tokens against a set of public keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<RwLock<HashMap<String, DecodingKey>>>,
    validation: Validation,
    source: Option<Source>,
    last_fetch: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .keys
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Verifier").field("kids", &kids).finish()
    }
}

impl Verifier {
    /// A verifier with a fixed key set (auth verifies against its own keys this way).
    pub fn from_jwks(jwks: &JwkSet, audience: &str, issuer: &str) -> Result<Self, KeySetError> {
        let keys = decoding_keys(jwks);
        if keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            validation: validation(audience, issuer),
            source: None,
            last_fetch: Arc::default(),
        })
    }

    /// A verifier that fetches the key set from `url` now, and again on an unknown `kid` (at
    /// most once per `min_refetch_interval`).
    pub async fn fetching(
        url: &str,
        audience: &str,
        issuer: &str,
        min_refetch_interval: Duration,
    ) -> Result<Self, KeySetError> {
        let verifier = Self::fetching_lazily(url, audience, issuer, min_refetch_interval)?;
        if let Some(source) = &verifier.source {
            let keys = fetch(source).await?;
            *verifier
                .keys
                .write()
                .expect("the key map lock is never poisoned") = keys;
            *verifier.last_fetch.lock().await = Some(Instant::now());
        }
        Ok(verifier)
    }

    /// Like [`fetching`](Self::fetching), but starts with no keys and fetches on the first token
    /// it sees, so a service that verifies tokens can start while the issuer is away.
    pub fn fetching_lazily(
        url: &str,
        audience: &str,
        issuer: &str,
        min_refetch_interval: Duration,
    ) -> Result<Self, KeySetError> {
        let source = Source {
            url: url.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| KeySetError::Fetch {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?,
            min_refetch_interval,
        };
        Ok(Self {
            keys: Arc::default(),
            validation: validation(audience, issuer),
            source: Some(source),
            last_fetch: Arc::default(),
        })
    }

    /// Checks `token` with the keys known now.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self
            .keys
            .read()
            .expect("the key map lock is never poisoned")
            .get(&kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidToken
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => TokenError::Malformed,
                other => TokenError::Invalid(format!("{other:?}")),
            })
    }

    /// Like [`verify`](Self::verify), but an unknown `kid` first refreshes the key set from the
    /// source (rate-limited), so keys added by a rotation are found.
    pub async fn verify_fetching(&self, token: &str) -> Result<AccessClaims, TokenError> {
        match self.verify(token) {
            Err(TokenError::UnknownKey) if self.source.is_some() => {
                self.refetch().await;
                self.verify(token)
            }
            other => other,
        }
    }

    async fn refetch(&self) {
        let Some(source) = &self.source else { return };
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < source.min_refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        match fetch(source).await {
            Ok(keys) => {
                *self
                    .keys
                    .write()
                    .expect("the key map lock is never poisoned") = keys;
            }
            Err(e) => tracing::warn!(error = %e, "cannot refresh the token key set"),
        }
    }
}

fn validation(audience: &str, issuer: &str) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[audience]);
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
    v.leeway = LEEWAY_SECONDS;
    v
}

fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, key))
        })
        .collect()
}

async fn fetch(source: &Source) -> Result<HashMap<String, DecodingKey>, KeySetError> {
    let failed = |reason: String| KeySetError::Fetch {
        url: source.url.clone(),
        reason,
    };
    let response = source
        .http
        .get(&source.url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("status {}", response.status())));
    }
    let jwks: JwkSet = response.json().await.map_err(|e| failed(e.to_string()))?;
    let keys = decoding_keys(&jwks);
    if keys.is_empty() {
        return Err(KeySetError::Empty);
    }
    Ok(keys)
}
