//! Request extractors that answer in the one error shape: JSON bodies, the signed-in caller, the
//! client's address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use kit::tokens::TokenError;
use proto::Snowflake;
use proto::api::error::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body. Unlike `axum::Json`, a bad body is answered with an `ErrorBody`: 400
/// `invalid_body` naming what is wrong, 413 `payload_too_large`, 415 `unsupported_media_type`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with 'Content-Type: application/json'",
        ),
        _ => ApiError::new(
            ErrorCode::InvalidBody,
            match rejection {
                JsonRejection::JsonSyntaxError(_) => {
                    format!("the body is not valid JSON: {}", inner_reason(rejection))
                }
                _ => format!(
                    "the body does not have the expected shape: {}",
                    inner_reason(rejection)
                ),
            },
        ),
    }
}

/// serde's own words ("username: invalid type: integer `5`, expected a string at line 1 column
/// 14"), without axum's preamble.
fn inner_reason(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    text.split_once(": ")
        .map_or(text.clone(), |(_, reason)| reason.to_owned())
}

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
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("sign in: send 'Authorization: Bearer <access token>'")
            })?;
        let claims = state.verifier.verify(token).map_err(|e| match e {
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
