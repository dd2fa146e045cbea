//! One error type for every handler. Each error becomes a status and a stable machine code
//! (the table is `proto::api::error::ErrorCode::status`) with a message for people; internal
//! details go to the log, never into the response.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::api::error::{ErrorBody, ErrorCode, FieldErrors};

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    fields: BTreeMap<String, String>,
    retry_after: Option<Duration>,
    rate: Option<crate::limits::RateHeaders>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
            rate: None,
        }
    }

    /// Says what went wrong in other words (a rate limit naming which one).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds the `X-RateLimit-*` headers of a limited route.
    pub fn with_rate(mut self, rate: crate::limits::RateHeaders) -> Self {
        self.rate = Some(rate);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
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

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

impl From<crate::passwords::HashError> for ApiError {
    fn from(e: crate::passwords::HashError) -> Self {
        Self::internal(e)
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
        if let Some(after) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        if let Some(rate) = self.rate {
            rate.apply(headers);
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

pub type ApiResult<T> = Result<T, ApiError>;
