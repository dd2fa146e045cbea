//! Request extractors that refuse in the one error shape ([`ApiError`]): JSON bodies, query
//! strings, ids in the path, bearer tokens and the `X-Audit-Log-Reason` header. Every service's
//! handlers take these instead of axum's own, whose refusals are plain text.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum_extra::TypedHeader;
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Bearer;
use proto::api::error::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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
                    format!(
                        "the body is not valid JSON: {}",
                        inner_reason(&rejection.body_text())
                    )
                }
                _ => format!(
                    "the body does not have the expected shape: {}",
                    inner_reason(&rejection.body_text())
                ),
            },
        ),
    }
}

/// serde's own words ("username: invalid type: integer `5`, expected a string at line 1 column
/// 14"), without axum's preamble.
fn inner_reason(text: &str) -> String {
    text.split_once(": ")
        .map_or(text.to_owned(), |(_, reason)| reason.to_owned())
}

/// A query string. Unlike `axum::extract::Query`, one that does not parse (a parameter given
/// twice, say) is answered 400 `validation_failed` saying why.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid(format!(
                "the query string is not valid: {}",
                inner_reason(&rejection.body_text())
            ))),
        }
    }
}

/// The typed values of a path (ids are `proto::Snowflake`s). A path whose id does not parse
/// names nothing that exists: 404 `not_found`, as for an id that parses and is not there.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no such thing: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// The access token of `Authorization: Bearer <token>`, unchecked: the service decides what it
/// takes to accept it (a signature, a session that is still signed in). Missing or malformed:
/// 401 `unauthorized` saying how to send one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl BearerToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        TypedHeader::<Authorization<Bearer>>::from_request_parts(parts, state)
            .await
            .map(|TypedHeader(Authorization(bearer))| Self(bearer.token().trim().to_owned()))
            .map_err(|_| {
                ApiError::unauthorized("sign in: send 'Authorization: Bearer <access token>'")
            })
    }
}

/// The `X-Audit-Log-Reason` header of a moderating request, as on Discord: percent-encoded UTF-8,
/// decoded and checked as prose of at most 512 characters (`proto::api::names::AuditReason`).
/// Absent or blank: no reason. One that does not decode or breaks the rules is 400
/// `validation_failed` naming the header, and nothing is changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditLogReason(pub Option<String>);

/// The header's name.
pub const AUDIT_LOG_REASON: &str = "x-audit-log-reason";

impl AuditLogReason {
    /// Decodes a header value (percent-encoded UTF-8).
    pub fn decode(raw: &[u8]) -> Result<Self, ApiError> {
        let decoded = percent_encoding::percent_decode(raw)
            .decode_utf8()
            .map_err(|_| ApiError::field(AUDIT_LOG_REASON, "must be percent-encoded UTF-8"))?;
        if decoded.trim().is_empty() {
            return Ok(Self(None));
        }
        proto::api::names::AuditReason::parse(&decoded)
            .map(|reason| Self(Some(reason.into_string())))
            .map_err(|why| ApiError::field(AUDIT_LOG_REASON, why.0))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditLogReason {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(AUDIT_LOG_REASON) {
            None => Ok(Self(None)),
            Some(value) => Self::decode(value.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_percent_decoded_and_blank_is_none() {
        assert_eq!(
            AuditLogReason::decode(b"spam%20in%20%23general%20%F0%9F%98%A0").unwrap(),
            AuditLogReason(Some("spam in #general \u{1F620}".to_owned()))
        );
        assert_eq!(
            AuditLogReason::decode(b"%20").unwrap(),
            AuditLogReason(None)
        );
    }

    #[test]
    fn a_reason_that_is_too_long_or_not_utf8_or_hides_text_is_refused() {
        let long = "a".repeat(513);
        for bad in [long.as_bytes(), b"%FF%FE", b"a%E2%80%AEb"] {
            let refused = AuditLogReason::decode(bad).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::ValidationFailed);
        }
    }
}
