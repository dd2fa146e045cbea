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
//!
//! A verifier remembers the tokens it verified (their SHA-256, and their claims): a device that
//! reconnects, or a client calling the API again, presents the same token, and checking its
//! Ed25519 signature again was a sixth of what a reconnect storm's resume cost an edge. A token
//! answered from memory is one whose every byte was verified before against the same key set,
//! audience and issuer; its expiry is checked again at every use, and a new key set forgets
//! every token.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use proto::Snowflake;
use sha2::{Digest, Sha256};

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

/// The most tokens a verifier remembers, the least recently presented forgotten first: an
/// edge's sessions' worth (about 100 bytes each: a few megabytes at most).
pub const REMEMBERED_TOKENS: usize = 65_536;

/// Checks access tokens against a set of public keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<RwLock<Keys>>,
    validation: Validation,
    audience: Arc<str>,
    issuer: Arc<str>,
    /// Tokens verified against the key set of its generation.
    remembered: Arc<Mutex<Remembered>>,
    source: Option<Source>,
    last_fetch: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

/// The key set, by `kid`, and how many times it was replaced.
#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    generation: u64,
}

/// Verified tokens by their SHA-256, all verified with the key set of `generation`.
struct Remembered {
    tokens: LruCache<[u8; 32], Verified>,
    generation: u64,
}

/// What a verified token claims beyond the audience and issuer every token must have.
#[derive(Clone, Copy)]
struct Verified {
    sub: Snowflake,
    sid: Snowflake,
    iat: u64,
    exp: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .keys
            .read()
            .map(|k| k.by_kid.keys().cloned().collect())
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
        let verifier = Self::new(audience, issuer, None);
        verifier.replace_keys(keys);
        Ok(verifier)
    }

    fn new(audience: &str, issuer: &str, source: Option<Source>) -> Self {
        Self {
            keys: Arc::default(),
            validation: validation(audience, issuer),
            audience: audience.into(),
            issuer: issuer.into(),
            remembered: Arc::new(Mutex::new(Remembered {
                tokens: LruCache::sparse(
                    NonZeroUsize::new(REMEMBERED_TOKENS).expect("a positive constant"),
                ),
                generation: 0,
            })),
            source,
            last_fetch: Arc::default(),
        }
    }

    /// Verifies with `keys` from now on, forgetting every token verified before.
    fn replace_keys(&self, keys: HashMap<String, DecodingKey>) {
        let mut current = self
            .keys
            .write()
            .expect("the key map lock is never poisoned");
        current.by_kid = keys;
        current.generation += 1;
        let mut remembered = self.remembered();
        remembered.tokens.clear();
        remembered.generation = current.generation;
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.remembered
            .lock()
            .expect("no code panics while holding the remembered tokens")
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
            verifier.replace_keys(fetch(source).await?);
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
        Ok(Self::new(audience, issuer, Some(source)))
    }

    /// Checks `token` with the keys known now: from memory when this verifier verified the same
    /// token with them before (its expiry checked again), its signature otherwise.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self.remembered().tokens.get(&digest).copied();
        if let Some(verified) = remembered {
            return if expired(verified.exp, unix_now()) {
                Err(TokenError::Expired)
            } else {
                Ok(self.claims(verified))
            };
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let (key, generation) = {
            let keys = self
                .keys
                .read()
                .expect("the key map lock is never poisoned");
            let key = keys.by_kid.get(&kid).cloned();
            (key.ok_or(TokenError::UnknownKey)?, keys.generation)
        };
        let claims = self.check(token, &key)?;
        let mut remembered = self.remembered();
        // Keys replaced meanwhile: the token was verified with a key set no longer in use.
        if remembered.generation == generation {
            let verified = Verified {
                sub: claims.sub,
                sid: claims.sid,
                iat: claims.iat,
                exp: claims.exp,
            };
            remembered.tokens.put(digest, verified);
        }
        Ok(claims)
    }

    /// A remembered token's claims: its audience and issuer are this verifier's, which the
    /// check required them to be.
    fn claims(&self, verified: Verified) -> AccessClaims {
        AccessClaims {
            sub: verified.sub,
            sid: verified.sid,
            iat: verified.iat,
            exp: verified.exp,
            aud: self.audience.to_string(),
            iss: self.issuer.to_string(),
        }
    }

    /// The signature and claims of `token`, checked with `key`.
    fn check(&self, token: &str, key: &DecodingKey) -> Result<AccessClaims, TokenError> {
        jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
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
            Ok(keys) => self.replace_keys(keys),
            Err(e) => tracing::warn!(error = %e, "cannot refresh the token key set"),
        }
    }
}

/// Whether a token expiring at `exp` has expired at `now` (Unix seconds), as the check judges
/// it: [`LEEWAY_SECONDS`] of clock difference tolerated.
fn expired(exp: u64, now: u64) -> bool {
    exp < now.saturating_sub(LEEWAY_SECONDS)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    /// Two Ed25519 keys made for these tests (`openssl genpkey -algorithm ed25519`), and their
    /// public halves.
    const FIRST: (&str, &str) = (
        "-----BEGIN PRIVATE KEY-----\n\
         MC4CAQAwBQYDK2VwBCIEICiuWrPIsIeMxBDnR/cSL0K/zlLpeJWX6gVeZdTXJVJx\n\
         -----END PRIVATE KEY-----\n",
        "cwM5aEKJfCmlId4PZuh3QrZhIzOE0MMEpN8s3eWTx7c",
    );
    const SECOND: (&str, &str) = (
        "-----BEGIN PRIVATE KEY-----\n\
         MC4CAQAwBQYDK2VwBCIEIKsNOTLpS3o7LNO2rYn7NSemzfXjoBBRphYshZBuKw7z\n\
         -----END PRIVATE KEY-----\n",
        "pAGdjoz4rhTeuhcGU3Sbb5Cx_e-DXpHttyNehvOwLGs",
    );

    fn key_set(keys: &[(&str, (&str, &str))]) -> JwkSet {
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|(kid, (_, x))| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid, "x": x})
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "keys": keys })).expect("a key set")
    }

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            sub: Snowflake::from_u64(41),
            sid: Snowflake::from_u64(42),
            iat: unix_now(),
            exp,
            aud: "natter".to_owned(),
            iss: "natter-auth".to_owned(),
        }
    }

    fn sign(kid: &str, (private, _): (&str, &str), claims: &AccessClaims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let key = EncodingKey::from_ed_pem(private.as_bytes()).expect("a private key");
        jsonwebtoken::encode(&header, claims, &key).expect("a token")
    }

    fn verifier(keys: &[(&str, (&str, &str))]) -> Verifier {
        Verifier::from_jwks(&key_set(keys), "natter", "natter-auth").expect("a verifier")
    }

    fn remembered(verifier: &Verifier) -> usize {
        verifier.remembered().tokens.len()
    }

    #[test]
    fn a_token_presented_again_is_answered_from_memory_with_the_same_claims() {
        let verifier = verifier(&[("one", FIRST)]);
        let issued = claims(unix_now() + 600);
        let token = sign("one", FIRST, &issued);
        assert_eq!(verifier.verify(&token), Ok(issued.clone()));
        assert_eq!(remembered(&verifier), 1);
        assert_eq!(verifier.verify(&token), Ok(issued));
        assert_eq!(remembered(&verifier), 1);
    }

    #[test]
    fn a_token_differing_by_a_byte_from_a_remembered_one_is_checked_in_full() {
        let verifier = verifier(&[("one", FIRST)]);
        let token = sign("one", FIRST, &claims(unix_now() + 600));
        verifier.verify(&token).expect("a good token");
        // Another user in the payload, the signature kept.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(unix_now() + 600);
        forged.sub = Snowflake::from_u64(7);
        parts[1] = sign("one", FIRST, &forged)
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(
            verifier.verify(&parts.join(".")),
            Err(TokenError::BadSignature)
        );
        // A character in the middle of the signature changed.
        let mut altered = token.clone().into_bytes();
        let at = altered.len() - 20;
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(verifier.verify(&altered), Err(TokenError::BadSignature));
        assert_eq!(remembered(&verifier), 1, "only the good token");
    }

    #[test]
    fn an_expired_token_is_refused_and_never_remembered() {
        let verifier = verifier(&[("one", FIRST)]);
        let token = sign("one", FIRST, &claims(unix_now() - LEEWAY_SECONDS - 60));
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
        assert_eq!(remembered(&verifier), 0);
    }

    #[test]
    fn a_remembered_token_expires_when_the_check_would_find_it_expired() {
        // The check's own rule: `exp` before now less the leeway.
        let now = 1_000_000;
        assert!(!expired(now - LEEWAY_SECONDS, now));
        assert!(expired(now - LEEWAY_SECONDS - 1, now));
        assert!(!expired(now + 600, now));
        assert!(!expired(0, 0), "a clock before the leeway");
        let verifier = verifier(&[("one", FIRST)]);
        // Remembered with an expiry already past: refused from memory as the check would.
        let issued = claims(unix_now() + 600);
        let token = sign("one", FIRST, &issued);
        verifier.verify(&token).expect("a good token");
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let stale = Verified {
            exp: unix_now() - LEEWAY_SECONDS - 1,
            ..*verifier.remembered().tokens.get(&digest).unwrap()
        };
        verifier.remembered().tokens.put(digest, stale);
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_new_key_set_forgets_every_token_verified_before_it() {
        let verifier = verifier(&[("one", FIRST), ("two", SECOND)]);
        let retired = sign("one", FIRST, &claims(unix_now() + 600));
        let current = sign("two", SECOND, &claims(unix_now() + 600));
        verifier
            .verify(&retired)
            .expect("signed by a published key");
        verifier
            .verify(&current)
            .expect("signed by a published key");
        assert_eq!(remembered(&verifier), 2);
        // The first key is no longer published.
        verifier.replace_keys(decoding_keys(&key_set(&[("two", SECOND)])));
        assert_eq!(remembered(&verifier), 0);
        assert_eq!(verifier.verify(&retired), Err(TokenError::UnknownKey));
        assert!(verifier.verify(&current).is_ok());
    }
}
