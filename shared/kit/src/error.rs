//! The one error type of every HTTP handler of every service. An error is a stable machine code
//! (its HTTP status comes from the code, `proto::api::error::ErrorCode::status`: the one table),
//! a message for people, and for validation errors the fields at fault; internal details go to
//! the log, never into the response. Extractors that refuse a request answer with it too
//! ([`crate::extract`]).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::api::error::{ErrorBody, ErrorCode, FieldErrors};

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    fields: BTreeMap<String, String>,
    retry_after: Option<Duration>,
    /// Boxed: most errors have none, and a small error keeps every `Result` small.
    headers: Option<Box<HeaderMap>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
            headers: None,
        }
    }

    /// Says what went wrong in other words (a rate limit naming which one).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds headers to the answer (a limited route's `X-RateLimit-*`).
    pub fn with_headers(mut self, add: impl FnOnce(&mut HeaderMap)) -> Self {
        add(self.headers.get_or_insert_default());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// `what` does not exist, or the caller may not know it does.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// The request is well-formed but says something that cannot be (a bad query string).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    /// A dependency did not answer: try again.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    /// One field refused, named.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        errors.into()
    }

    /// Names the field an error is about (a taken username).
    pub fn with_field(mut self, field: &str, message: impl Into<String>) -> Self {
        self.fields.insert(field.to_owned(), message.into());
        self
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs_f64().ceil().max(1.0);
        Self {
            retry_after: Some(Duration::from_secs_f64(secs)),
            ..Self::new(
                ErrorCode::RateLimited,
                format!("too many attempts; try again in {secs} seconds"),
            )
        }
    }

    /// Something failed on our side: logged in full, answered with a generic message.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "request failed");
        Self::new(
            ErrorCode::Internal,
            "something went wrong on our side; it has been logged",
        )
    }
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        let body = errors.into_body();
        Self {
            fields: body.fields,
            ..Self::new(body.code, body.message)
        }
    }
}

#[cfg(feature = "sqlx")]
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            fields: self.fields,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(extra) = self.headers {
            headers.extend(*extra);
        }
        if let Some(after) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if self.code == ErrorCode::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_the_codes_own_whoever_answers() {
        for (error, status) in [
            (ApiError::not_found("channel"), 404),
            (ApiError::unavailable("auth is away"), 503),
            (ApiError::new(ErrorCode::ConsentRequired, "no"), 403),
            (ApiError::invalid("`limit` is 0"), 400),
            (ApiError::rate_limited(Duration::from_millis(1)), 429),
        ] {
            assert_eq!(error.into_response().status().as_u16(), status);
        }
    }

    #[test]
    fn a_refused_token_says_how_to_authenticate() {
        let response = ApiError::unauthorized("sign in").into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
    }
}
