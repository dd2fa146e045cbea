//! Retrying with exponential backoff, the one policy every retry loop uses: delays from a first
//! one doubling up to a cap (backon's `ExponentialBuilder`), and the full jitter that spreads
//! clients coming back at once.

use std::time::Duration;

pub use backon::{ExponentialBackoff, ExponentialBuilder, Retryable};

/// Delays from `first`, doubling up to `cap`, without end: `(|| attempt()).retry(..)`, or its
/// iterator for a loop of one's own.
pub fn exponential(first: Duration, cap: Duration) -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(first)
        .with_max_delay(cap)
        .with_factor(2.0)
        .without_max_times()
}

/// The `n`th delay (from 0) of [`exponential`].
pub fn nth_delay(first: Duration, cap: Duration, n: usize) -> Duration {
    use backon::BackoffBuilder;
    exponential(first, cap).build().nth(n).unwrap_or(cap)
}

/// A random delay from zero to `ceiling` ("full jitter"): clients that failed together come back
/// spread out instead of in the same instant.
pub fn full_jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let random = getrandom::u64().unwrap_or(ceiling_ms / 2);
    Duration::from_millis(random % ceiling_ms.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_first_up_to_the_cap() {
        let (first, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u128> = (0..6)
            .map(|n| nth_delay(first, cap, n).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_jittered_delay_stays_under_its_ceiling() {
        let ceiling = Duration::from_millis(50);
        assert!((0..100).all(|_| full_jitter(ceiling) <= ceiling));
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }
}
