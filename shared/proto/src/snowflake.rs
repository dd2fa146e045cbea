//! Snowflake ids in Discord's layout.
//!
//! ```text
//!  63                                        22 21       12 11          0
//! +--------------------------------------------+-----------+-------------+
//! | milliseconds since NATTER_EPOCH (42 bits)   | worker    | sequence    |
//! |                                            | (10 bits) | (12 bits)   |
//! +--------------------------------------------+-----------+-------------+
//! ```
//!
//! Ids sort by creation time, which is what lets the CQL store cluster messages by id and derive a
//! message's time bucket from the id alone. Discord splits the middle ten bits into a worker and a
//! process id; we treat them as one worker id, handed out per process by configuration.
//!
//! In JSON an id is a string: JavaScript numbers lose precision above 2^53.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The project epoch, 2026-01-01T00:00:00Z, in Unix milliseconds. 42 bits of milliseconds from here
/// last until the year 2165.
pub const NATTER_EPOCH_MS: u64 = 1_767_225_600_000;

const WORKER_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const TIMESTAMP_SHIFT: u32 = WORKER_BITS + SEQUENCE_BITS;

/// The largest worker id (1023).
pub const MAX_WORKER_ID: u16 = (1 << WORKER_BITS) - 1;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
const MAX_TIMESTAMP: u64 = (1 << (64 - TIMESTAMP_SHIFT)) - 1;

/// A 64-bit, time-ordered id.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Snowflake(u64);

impl Snowflake {
    /// Builds an id from its parts. Used for synthetic ids (tests, history bounds); the generator
    /// is the only source of ids for new objects.
    ///
    /// # Panics
    /// When a part is out of range: a timestamp before the epoch or past 2^42 ms after it, a worker
    /// above [`MAX_WORKER_ID`] or a sequence above 4095.
    pub fn from_parts(unix_ms: u64, worker: u16, sequence: u16) -> Self {
        assert!(
            unix_ms >= NATTER_EPOCH_MS,
            "timestamp before the Natter epoch"
        );
        let since_epoch = unix_ms - NATTER_EPOCH_MS;
        assert!(since_epoch <= MAX_TIMESTAMP, "timestamp past the id range");
        assert!(worker <= MAX_WORKER_ID, "worker id above {MAX_WORKER_ID}");
        assert!(
            u64::from(sequence) <= MAX_SEQUENCE,
            "sequence above {MAX_SEQUENCE}"
        );
        Self(
            (since_epoch << TIMESTAMP_SHIFT)
                | (u64::from(worker) << SEQUENCE_BITS)
                | u64::from(sequence),
        )
    }

    /// The smallest id that could have been made at `unix_ms`: a bound for "everything since".
    pub fn first_at(unix_ms: u64) -> Self {
        Self::from_parts(unix_ms.max(NATTER_EPOCH_MS), 0, 0)
    }

    pub const fn from_u64(raw: u64) -> Self {
        Self(raw)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id as the signed 64-bit integer that PostgreSQL's `bigint` and CQL's `bigint` store. Ids
    /// stay below 2^63 until the year 2095, so the cast is lossless and keeps the order.
    pub const fn as_i64(self) -> i64 {
        self.0 as i64
    }

    pub const fn from_i64(raw: i64) -> Self {
        Self(raw as u64)
    }

    /// When the id was made, in Unix milliseconds.
    pub const fn unix_ms(self) -> u64 {
        (self.0 >> TIMESTAMP_SHIFT) + NATTER_EPOCH_MS
    }

    pub const fn worker(self) -> u16 {
        ((self.0 >> SEQUENCE_BITS) & MAX_WORKER_ID as u64) as u16
    }

    pub const fn sequence(self) -> u16 {
        (self.0 & MAX_SEQUENCE) as u16
    }
}

impl fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snowflake({})", self.0)
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a string is not a Snowflake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a snowflake id: expected a decimal number below 2^64")]
pub struct ParseSnowflakeError;

impl FromStr for Snowflake {
    type Err = ParseSnowflakeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `u64::from_str` accepts a leading '+'; an id is digits only.
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseSnowflakeError);
        }
        s.parse().map(Self).map_err(|_| ParseSnowflakeError)
    }
}

impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Strings are the contract; bare numbers are accepted from lenient clients. A visitor
        // rather than an untagged enum: that buffers the value and tries a borrowed string
        // first, which fails (formatting an error) for every id read from an owned value.
        struct Id;
        impl Visitor<'_> for Id {
            type Value = Snowflake;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a snowflake id: a string of decimal digits")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Snowflake, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Snowflake, E> {
                Ok(Snowflake(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Snowflake, E> {
                u64::try_from(n)
                    .map(Snowflake)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }
        }
        deserializer.deserialize_any(Id)
    }
}

/// Makes ids for one worker. Lock-free and safe to share between threads.
///
/// The state is `(milliseconds since epoch << 12) | sequence`, advanced by compare-and-swap, which
/// gives three properties without a lock:
/// - ids are unique and strictly increasing per generator;
/// - when more than 4096 ids are asked for in one millisecond, the sequence carries into the next
///   millisecond (the id runs slightly ahead of the wall clock rather than waiting);
/// - when the wall clock steps backwards, ids keep increasing from the last one.
#[derive(Debug)]
pub struct SnowflakeGenerator {
    worker: u16,
    state: AtomicU64,
    clock: fn() -> u64,
}

/// Why a generator could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker id {0} is out of range (0..={MAX_WORKER_ID})")]
pub struct WorkerIdError(pub u32);

impl SnowflakeGenerator {
    pub fn new(worker: u16) -> Result<Self, WorkerIdError> {
        Self::with_clock(worker, system_clock_ms)
    }

    /// A generator reading time from `clock` (Unix milliseconds), for tests of clock behaviour.
    pub fn with_clock(worker: u16, clock: fn() -> u64) -> Result<Self, WorkerIdError> {
        if worker > MAX_WORKER_ID {
            return Err(WorkerIdError(worker.into()));
        }
        Ok(Self {
            worker,
            state: AtomicU64::new(0),
            clock,
        })
    }

    pub fn worker(&self) -> u16 {
        self.worker
    }

    pub fn next_id(&self) -> Snowflake {
        let now = (self.clock)().saturating_sub(NATTER_EPOCH_MS) << SEQUENCE_BITS;
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let next = if now > current { now } else { current + 1 };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let millis = next >> SEQUENCE_BITS;
                    return Snowflake(
                        (millis << TIMESTAMP_SHIFT)
                            | (u64::from(self.worker) << SEQUENCE_BITS)
                            | (next & MAX_SEQUENCE),
                    );
                }
                Err(actual) => current = actual,
            }
        }
    }
}

fn system_clock_ms() -> u64 {
    crate::clock::unix_ms().max(NATTER_EPOCH_MS)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    const YEAR_2100_MS: u64 = 4_102_444_800_000;

    proptest! {
        #[test]
        fn parts_round_trip(ms in NATTER_EPOCH_MS..YEAR_2100_MS, worker in 0..=MAX_WORKER_ID, seq in 0u16..4096) {
            let id = Snowflake::from_parts(ms, worker, seq);
            prop_assert_eq!(id.unix_ms(), ms);
            prop_assert_eq!(id.worker(), worker);
            prop_assert_eq!(id.sequence(), seq);
        }

        #[test]
        fn ids_order_by_timestamp(a in NATTER_EPOCH_MS..YEAR_2100_MS, b in NATTER_EPOCH_MS..YEAR_2100_MS,
                                  wa in 0..=MAX_WORKER_ID, wb in 0..=MAX_WORKER_ID) {
            prop_assume!(a != b);
            let (ia, ib) = (Snowflake::from_parts(a, wa, 4095), Snowflake::from_parts(b, wb, 0));
            prop_assert_eq!(a < b, ia < ib);
        }

        #[test]
        fn json_is_a_string_that_round_trips(raw in any::<u64>()) {
            let id = Snowflake::from_u64(raw);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(&json, &format!("\"{raw}\""));
            prop_assert_eq!(serde_json::from_str::<Snowflake>(&json).unwrap(), id);
        }

        #[test]
        fn generated_timestamp_is_the_clock_time(worker in 0..=MAX_WORKER_ID) {
            let generator = SnowflakeGenerator::new(worker).unwrap();
            let before = system_clock_ms();
            let id = generator.next_id();
            let after = system_clock_ms();
            prop_assert!(id.unix_ms() >= before && id.unix_ms() <= after + 1);
            prop_assert_eq!(id.worker(), worker);
        }

        #[test]
        fn i64_conversion_round_trips_and_keeps_order(a in 0..i64::MAX, b in 0..i64::MAX) {
            let (ia, ib) = (Snowflake::from_i64(a), Snowflake::from_i64(b));
            prop_assert_eq!(ia.as_i64(), a);
            prop_assert_eq!(a < b, ia < ib);
        }
    }

    #[test]
    fn json_ids_decode_from_text_owned_values_and_bare_numbers_and_nothing_else() {
        let id = Snowflake::from_u64(1_193_094_531_072_065_536);
        let from = |json: serde_json::Value| serde_json::from_value::<Snowflake>(json);
        assert_eq!(
            serde_json::from_str::<Snowflake>(r#""1193094531072065536""#).unwrap(),
            id
        );
        // Through a `Value` the string is owned, as in a frame decoded in two steps.
        assert_eq!(from(serde_json::json!("1193094531072065536")).unwrap(), id);
        assert_eq!(
            from(serde_json::json!(1_193_094_531_072_065_536_u64)).unwrap(),
            id
        );
        // An escaped string is owned when read from text too.
        assert_eq!(
            serde_json::from_str::<Snowflake>(r#""\u0031""#).unwrap(),
            Snowflake(1)
        );
        for bad in [
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!("+1"),
            serde_json::json!(""),
            serde_json::json!("18446744073709551616"),
            serde_json::json!(["1"]),
        ] {
            assert!(from(bad.clone()).is_err(), "{bad} decoded");
        }
    }

    #[test]
    fn ids_are_unique_and_increasing_per_thread_under_concurrency() {
        let generator = Arc::new(SnowflakeGenerator::new(7).unwrap());
        let per_thread = 50_000;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let generator = Arc::clone(&generator);
                std::thread::spawn(move || {
                    let ids: Vec<_> = (0..per_thread).map(|_| generator.next_id()).collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "not monotonic");
                    ids
                })
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 8 * per_thread);
    }

    #[test]
    fn generators_with_different_workers_never_collide() {
        let generators: Vec<_> = (0..4)
            .map(|w| Arc::new(SnowflakeGenerator::new(w).unwrap()))
            .collect();
        let threads: Vec<_> = generators
            .iter()
            .map(|g| {
                let g = Arc::clone(g);
                std::thread::spawn(move || (0..20_000).map(|_| g.next_id()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id));
            }
        }
    }

    #[test]
    fn a_burst_past_4096_per_millisecond_carries_into_the_next_millisecond() {
        let generator = SnowflakeGenerator::with_clock(1, || NATTER_EPOCH_MS + 1_000).unwrap();
        let ids: Vec<_> = (0..10_000).map(|_| generator.next_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[0].unix_ms(), NATTER_EPOCH_MS + 1_000);
        assert_eq!(ids[4096].unix_ms(), NATTER_EPOCH_MS + 1_001);
        assert_eq!(ids[4096].sequence(), 0);
    }

    #[test]
    fn a_clock_that_steps_back_does_not_make_ids_go_back() {
        use std::sync::atomic::AtomicU64;
        static NOW: AtomicU64 = AtomicU64::new(NATTER_EPOCH_MS + 10_000);
        let generator = SnowflakeGenerator::with_clock(2, || NOW.load(Ordering::SeqCst)).unwrap();
        let before = generator.next_id();
        NOW.store(NATTER_EPOCH_MS + 5_000, Ordering::SeqCst);
        let after = generator.next_id();
        assert!(after > before);
    }

    #[test]
    fn worker_ids_above_1023_are_refused() {
        assert_eq!(
            SnowflakeGenerator::new(1024).unwrap_err(),
            WorkerIdError(1024)
        );
    }

    #[test]
    fn strings_that_are_not_ids_are_refused() {
        for bad in ["", "+1", "-1", "1.0", "abc", "18446744073709551616", " 1"] {
            assert!(bad.parse::<Snowflake>().is_err(), "{bad:?} parsed");
        }
        assert!(serde_json::from_str::<Snowflake>("\"x1\"").is_err());
    }
}
