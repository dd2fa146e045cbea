//! Rate limits on the routes that guess passwords or make accounts, per client address and per
//! account (GCRA via `governor`).
//!
//! - Requests: sign-up and sign-in are each limited per client address; their answers carry
//!   `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and a refusal is 429
//!   with `Retry-After`.
//! - Failures: failed sign-ins are limited per account and per address. Once either is over its
//!   budget, further sign-ins for it are refused (429) before any password is checked, even with
//!   the right password, until the budget refills.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};
use governor::DefaultKeyedRateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;

use crate::error::ApiError;

pub use shared::config::RateSpec;

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

/// A failure budget per key; a key over budget is locked until a failure would be allowed again.
pub struct FailureLimit<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    per_cell: Duration,
    locked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> FailureLimit<K> {
    pub fn new(spec: RateSpec) -> Self {
        Self {
            limiter: governor::RateLimiter::keyed(spec.quota()).with_middleware(),
            per_cell: spec.per / spec.count.get(),
            locked: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses (429) while `key` is locked.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        let locked = self.locked.lock().expect("never poisoned");
        match locked.get(key) {
            Some(until) if *until > Instant::now() => {
                Err(ApiError::rate_limited(*until - Instant::now()))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure; once the budget is spent, locks `key` until it allows one more.
    pub fn record_failure(&self, key: &K) {
        let wait = match self.limiter.check_key(key) {
            Ok(snapshot) if snapshot.remaining_burst_capacity() > 0 => return,
            Ok(_) => self.per_cell,
            Err(not_until) => not_until.wait_time_from(DefaultClock::default().now()),
        };
        self.locked
            .lock()
            .expect("never poisoned")
            .insert(key.clone(), Instant::now() + wait);
    }

    fn retain_recent(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.locked
            .lock()
            .expect("never poisoned")
            .retain(|_, until| *until > now);
    }
}

/// Every limit the service applies.
pub struct Limits {
    pub sign_up_per_ip: RequestLimit<std::net::IpAddr>,
    pub sign_in_per_ip: RequestLimit<std::net::IpAddr>,
    pub failures_per_ip: FailureLimit<std::net::IpAddr>,
    pub failures_per_account: FailureLimit<String>,
}

impl Limits {
    /// Forgets keys whose budgets are full again, so memory stays bounded by recent clients.
    pub fn retain_recent(&self) {
        self.sign_up_per_ip.retain_recent();
        self.sign_in_per_ip.retain_recent();
        self.failures_per_ip.retain_recent();
        self.failures_per_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(refused.code(), shared::api::error::ErrorCode::RateLimited);
        assert!(limit.check(&2).is_ok(), "other keys keep their budget");
    }

    #[test]
    fn failures_past_the_budget_lock_the_key() {
        let limit = FailureLimit::new(RateSpec::parse("2/1h").unwrap());
        let key = "alice".to_owned();
        assert!(limit.check(&key).is_ok());
        limit.record_failure(&key);
        assert!(limit.check(&key).is_ok(), "one failure of two");
        limit.record_failure(&key);
        assert!(limit.check(&key).is_err(), "two failures spend the budget");
        assert!(limit.check(&"bob".to_owned()).is_ok());
    }
}
