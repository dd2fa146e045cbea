//! Who may put files where: the token says who the caller is, and auth, asked with that token,
//! says whether they see the channel and what they may do in it (a server's channel carries the
//! caller's permissions), so auth stays the one place that decides.

use std::time::Duration;

use kit::error::ApiError;
use kit::tokens::Verifier;
use proto::Snowflake;
use proto::api::channels::Channel;
use proto::permissions::Permissions;

/// Asks auth about callers and channels.
#[derive(Clone, Debug)]
pub struct Access {
    http: reqwest::Client,
    base: String,
    verifier: Verifier,
}

impl Access {
    pub fn new(auth_url: &url::Url, verifier: Verifier) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("an HTTP client builds"),
            base: auth_url.as_str().trim_end_matches('/').to_owned(),
            verifier,
        }
    }

    /// Where auth publishes its token keys.
    pub fn jwks_url(auth_url: &url::Url) -> String {
        format!(
            "{}/api/v1/auth/jwks",
            auth_url.as_str().trim_end_matches('/')
        )
    }

    /// The caller of `token`.
    pub async fn caller(&self, token: &str) -> Result<Snowflake, ApiError> {
        let claims = self
            .verifier
            .verify_fetching(token)
            .await
            .map_err(|_| ApiError::unauthorized("the access token is not valid"))?;
        Ok(claims.sub)
    }

    /// A `PATCH` of auth's REST API as the caller of `token`: auth's status and answer.
    pub async fn patch(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(axum::http::StatusCode, serde_json::Value), ApiError> {
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| ApiError::unavailable(format!("auth is unreachable: {e}")))?;
        let status = axum::http::StatusCode::from_u16(response.status().as_u16())
            .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, body))
    }

    /// The caller of `token`, when it may attach files in `channel`: a member of a group or DM,
    /// or a server member with ATTACH_FILES there. A channel they cannot see is `not_found`, as
    /// everywhere.
    pub async fn may_attach(&self, token: &str, channel: Snowflake) -> Result<Snowflake, ApiError> {
        let claims = self
            .verifier
            .verify_fetching(token)
            .await
            .map_err(|_| ApiError::unauthorized("the access token is not valid"))?;
        let response = self
            .http
            .get(format!("{}/api/v1/channels/{channel}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| ApiError::unavailable(format!("auth is unreachable: {e}")))?;
        match response.status().as_u16() {
            200 => {}
            401 => return Err(ApiError::unauthorized("signed out")),
            403 | 404 => return Err(ApiError::not_found("channel")),
            status => return Err(ApiError::unavailable(format!("auth answered {status}"))),
        }
        let channel: Channel = response
            .json()
            .await
            .map_err(|e| ApiError::internal(format!("auth's channel: {e}")))?;
        if channel.guild_id.is_some()
            && !channel
                .permissions
                .is_some_and(|p| p.contains(Permissions::ATTACH_FILES))
        {
            return Err(ApiError::forbidden(
                "you may not attach files in this channel (ATTACH_FILES)",
            ));
        }
        Ok(claims.sub)
    }
}
