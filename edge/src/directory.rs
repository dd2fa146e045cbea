//! What the edge asks auth: who a token's user is and which channels they belong to, over auth's
//! own REST API with the user's token, so the edge needs no database and auth stays the one place
//! that decides membership.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use shared::api::channels::Channel;
use shared::api::users::User;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Auth refused the user's token: signed out, revoked, or the account is gone. The token's
    /// signature may still be good, but the session is over: the caller must sign in again.
    #[error("auth refused the token (signed out or revoked)")]
    Refused,
    #[error("auth is unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("auth answered {0}")]
    Status(reqwest::StatusCode),
}

#[derive(Clone)]
pub struct Directory {
    http: reqwest::Client,
    base: String,
    /// One permit per request in flight: at most this many connections to auth, reused.
    in_flight: Arc<Semaphore>,
}

impl Directory {
    /// A client of auth at `base` with at most `connections` requests in flight.
    pub fn new(base: &url::Url, connections: usize) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                // Auth closes a kept-alive connection that sends nothing for its
                // --header-read-timeout (10 s by default): let go of idle ones well before, so a
                // request never goes out on a connection auth is closing at that moment.
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("a TLS-free HTTP client builds"),
            base: base.as_str().trim_end_matches('/').to_owned(),
            in_flight: Arc::new(Semaphore::new(connections.max(1))),
        }
    }

    /// The JWKS URL auth publishes its token keys at.
    pub fn jwks_url(&self) -> String {
        format!("{}/api/v1/auth/jwks", self.base)
    }

    pub async fn me(&self, token: &str) -> Result<User, DirectoryError> {
        self.get(token, "/api/v1/users/@me").await
    }

    pub async fn channels(&self, token: &str) -> Result<Vec<Channel>, DirectoryError> {
        self.get(token, "/api/v1/users/@me/channels").await
    }

    /// Anyone's public profile, by id.
    pub async fn user(&self, token: &str, id: shared::Snowflake) -> Result<User, DirectoryError> {
        self.get(token, &format!("/api/v1/users/{id}")).await
    }

    /// A GET to auth, once one of the `connections` permits is free: in a reconnect storm the
    /// sessions queue here, in order, instead of each opening a connection (thousands of them
    /// overflowed auth's listen queue and both processes' 20,000 open files). A request that
    /// could not be sent at all (a restart) is tried again, up to three times, after a short
    /// random pause.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, DirectoryError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            match self.http.get(&url).bearer_auth(token).send().await {
                Ok(response) => break response,
                Err(e) if attempt < 3 && (e.is_connect() || e.is_request()) => {
                    let pause = 50 * attempt + u64::from(rand_millis());
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        match response.status() {
            status if status.is_success() => {}
            reqwest::StatusCode::UNAUTHORIZED => return Err(DirectoryError::Refused),
            status => return Err(DirectoryError::Status(status)),
        }
        Ok(response.json().await?)
    }
}

/// 0-199 ms of jitter, so retries spread out instead of arriving together again.
fn rand_millis() -> u16 {
    (getrandom::u32().unwrap_or(0) % 200) as u16
}
