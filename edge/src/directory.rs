//! What the edge asks auth: who a token's user is and which channels they belong to, over auth's
//! own REST API with the user's token, so the edge needs no database and auth stays the one place
//! that decides membership.

use std::time::Duration;

use shared::api::channels::Channel;
use shared::api::users::User;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("auth is unreachable: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("auth answered {0}")]
    Status(reqwest::StatusCode),
}

#[derive(Clone)]
pub struct Directory {
    http: reqwest::Client,
    base: String,
}

impl Directory {
    pub fn new(base: &url::Url) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a TLS-free HTTP client builds"),
            base: base.as_str().trim_end_matches('/').to_owned(),
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

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
    ) -> Result<T, DirectoryError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(DirectoryError::Status(response.status()));
        }
        Ok(response.json().await?)
    }
}
