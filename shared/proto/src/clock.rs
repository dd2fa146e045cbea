//! The wall clock as the contract counts it: time since the Unix epoch. Timestamps on the wire
//! (`last_seen`, `edited_at`, a Snowflake's time) are Unix milliseconds; this is the one place
//! that reads the clock for them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero for a clock set before 1970).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Unix milliseconds, now.
pub fn unix_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}
