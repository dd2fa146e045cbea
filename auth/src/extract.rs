//! Auth's own request extractors, answering in the one error shape: the signed-in caller and the
//! client's address (bodies, paths and bearer tokens: `kit::extract`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use kit::error::ApiError;
use kit::extract::BearerToken;
use kit::tokens::TokenError;
use proto::Snowflake;

use crate::state::AppState;

/// The signed-in caller: a valid access token whose session is not revoked.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Snowflake,
    pub session_id: Snowflake,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let claims = state.verifier.verify(&token).map_err(|e| match e {
            TokenError::Expired => {
                ApiError::unauthorized("the access token has expired; refresh it")
            }
            other => {
                tracing::debug!(reason = %other, "access token refused");
                ApiError::unauthorized("the access token is not valid")
            }
        })?;
        // Sign-out must take effect now, not when the token expires: one primary-key lookup.
        if !crate::sessions::is_active(&state.db, claims.sid).await? {
            return Err(ApiError::unauthorized("this session has been signed out"));
        }
        Ok(Self {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }
}

/// The client's address: the socket peer, or with `--trust-forwarded-for` the address the
/// (trusted) proxy in front of us appended last to `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return Ok(Self(ip));
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| Self(addr.ip()))
            .ok_or_else(|| ApiError::internal("the server was started without ConnectInfo"))
    }
}
