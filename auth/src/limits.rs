//! Rate limits on the routes that guess passwords or make accounts, per client address (GCRA via
//! `governor`), and the sign-in throttle ([`crate::throttle`]).
//!
//! - Requests: sign-up and sign-in are each limited per client address (sign-in only for
//!   addresses not trusted for the account, so a neighbour behind the same NAT cannot spend the
//!   owner's budget); their answers carry `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//!   `X-RateLimit-Reset`, and a refusal is 429 with `Retry-After`.
//! - Failures: failed sign-ins slow further attempts with growing waits per account and
//!   address, per address and per account, never a lock the owner cannot get past.

use std::hash::Hash;

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};
use governor::DefaultKeyedRateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use kit::error::ApiError;

use crate::error::WithRate;
use crate::throttle::SignInThrottle;

pub use kit::config::RateSpec;

/// The `X-RateLimit-*` headers of one answer.
#[derive(Debug, Clone, Copy)]
pub struct RateHeaders {
    limit: u32,
    remaining: u32,
    /// Seconds until the budget is full again.
    reset: u64,
}

impl IntoResponseParts for RateHeaders {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        self.apply(res.headers_mut());
        Ok(res)
    }
}

impl RateHeaders {
    pub fn apply(self, headers: &mut axum::http::HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
    }
}

type Keyed<K> = DefaultKeyedRateLimiter<K, StateInformationMiddleware>;

/// A request budget per key.
pub struct RequestLimit<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    spec: RateSpec,
}

impl<K: Hash + Eq + Clone> RequestLimit<K> {
    pub fn new(spec: RateSpec) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(spec.quota()).with_middleware(),
            spec,
        }
    }

    /// Spends one request of `key`'s budget, or refuses with 429 and `Retry-After`.
    pub fn check(&self, key: &K) -> Result<RateHeaders, ApiError> {
        let limit = self.spec.count.get();
        let per_cell = self.spec.per / limit;
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(RateHeaders {
                    limit,
                    remaining,
                    reset: (per_cell * (limit - remaining)).as_secs(),
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::rate_limited(wait).with_rate(RateHeaders {
                    limit,
                    remaining: 0,
                    reset: (per_cell * limit).as_secs(),
                }))
            }
        }
    }

    fn retain_recent(&self) {
        self.limiter.retain_recent();
    }
}

/// Every limit the service applies.
pub struct Limits {
    pub sign_up_per_ip: RequestLimit<std::net::IpAddr>,
    pub sign_in_per_ip: RequestLimit<std::net::IpAddr>,
    pub sign_in: SignInThrottle,
}

impl Limits {
    /// Forgets keys whose budgets are full again, so memory stays bounded by recent clients.
    pub fn retain_recent(&self) {
        self.sign_up_per_ip.retain_recent();
        self.sign_in_per_ip.retain_recent();
        self.sign_in.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_rate_is_a_count_over_a_duration() {
        let spec = RateSpec::parse("5/15m").unwrap();
        assert_eq!(spec.count.get(), 5);
        assert_eq!(spec.per, Duration::from_secs(900));
        for bad in ["5", "0/1m", "x/1m", "5/0s", "5/15"] {
            assert!(RateSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_request_budget_counts_down_then_refuses_with_retry_after() {
        let limit = RequestLimit::new(RateSpec::parse("2/1m").unwrap());
        assert_eq!(limit.check(&1).unwrap().remaining, 1);
        assert_eq!(limit.check(&1).unwrap().remaining, 0);
        let refused = limit.check(&1).unwrap_err();
        assert_eq!(refused.code(), proto::api::error::ErrorCode::RateLimited);
        assert!(limit.check(&2).is_ok(), "other keys keep their budget");
    }
}
