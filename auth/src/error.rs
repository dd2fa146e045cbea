//! What auth adds to the one API error (`kit::error::ApiError`): a limited route's rate headers,
//! and its own failures as internal errors.

use kit::error::ApiError;

use crate::limits::RateHeaders;

/// Adds the `X-RateLimit-*` headers of a limited route to an error.
pub trait WithRate {
    fn with_rate(self, rate: RateHeaders) -> Self;
}

impl WithRate for ApiError {
    fn with_rate(self, rate: RateHeaders) -> Self {
        self.with_headers(|headers| rate.apply(headers))
    }
}

impl From<crate::passwords::HashError> for ApiError {
    fn from(e: crate::passwords::HashError) -> Self {
        Self::internal(e)
    }
}
