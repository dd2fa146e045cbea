//! How late the edge's main runtime runs a timer: how long anything at the edge waits for one
//! of its threads.
//!
//! A timer fires when one of the main runtime's threads next looks at its driver, as a socket's
//! readiness and a JetStream answer are noticed: between two batches of tasks at a busy edge, at
//! once at an idle one (1-2 ms late here, the timer's rounding to whole milliseconds). So its
//! lateness is how long the edge's work waits, whether its own fan-out keeps the threads busy or
//! the machine's other programs keep the cores. A sample `--behind-after` (2 ms) or more late is
//! behind. Two things follow: a talking session moves to the lane while the last sample was
//! behind ([`crate::lane`]), and the dispatcher gathers deliveries before handing them out
//! while a quarter of each of the last two seconds' were ([`crate::continuity::Pace`]): a wrong
//! guess costs every delivery the linger, and an edge with time to spare sees a stray late
//! sample now and then (a few in a hundred at moderate load here), and a second of them when
//! something else takes the machine's cores for a moment.
//!
//! A sample is taken every 50 ms, and only for a second after someone asked (a send asking for
//! a seat on the lane, the dispatcher handing out): each sample wakes the runtime's threads,
//! which an edge without traffic, however many sessions it holds, should not pay for (2.5 ms of
//! CPU a second per edge here, idle).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How often the main runtime's lateness is sampled, while asked.
const PERIOD: Duration = Duration::from_millis(50);

/// Samples taken after an ask (a second's worth): the sampling goes on while asks keep coming,
/// and sleeps once none has come for that long.
const SAMPLES: u32 = 20;

/// The samples of one second (the last [`SAMPLES`] bits).
const SECOND: u64 = (1 << SAMPLES) - 1;

/// The main runtime's recent samples; clones share them. Sampling stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct Lateness {
    /// One bit per sample, the newest lowest: 1 if it was behind. Cleared once the samples
    /// sleep: not known until the next is taken, so asks meanwhile are answered as for an edge
    /// with time to spare.
    behind: Arc<AtomicU64>,
    always: bool,
    asked: Arc<Notify>,
    _sampling: Arc<DropGuard>,
}

/// What the samples say, as of an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Samples(u64);

impl Samples {
    /// Whether the last sample was behind.
    pub fn last_behind(self) -> bool {
        self.0 & 1 == 1
    }

    /// How many of the last second's samples were behind (of [`SAMPLES`]).
    pub fn behind_in_last_second(self) -> u32 {
        (self.0 & SECOND).count_ones()
    }

    #[cfg(test)]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// How many of the second before the last one's samples were behind.
    pub fn behind_in_second_before(self) -> u32 {
        (self.0 >> SAMPLES & SECOND).count_ones()
    }
}

impl Lateness {
    /// Starts sampling the runtime it is called on: each sample observed in `histogram`, behind
    /// at `after` or more late. `after` zero: always behind, nothing sampled.
    pub fn start(after: Duration, histogram: prometheus::Histogram) -> Self {
        let behind = Arc::new(AtomicU64::new(0));
        let asked = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        if !after.is_zero() {
            tokio::spawn(sample(
                Arc::clone(&behind),
                after,
                histogram,
                Arc::clone(&asked),
                stop.clone(),
            ));
        }
        Self {
            behind,
            always: after.is_zero(),
            asked,
            _sampling: Arc::new(stop.drop_guard()),
        }
    }

    /// The samples so far; keeps them coming for a second more.
    pub fn ask(&self) -> Samples {
        if self.always {
            return Samples(u64::MAX);
        }
        self.asked.notify_one();
        Samples(self.behind.load(Ordering::Relaxed))
    }
}

/// Samples how late the runtime runs a timer, until `stop`.
async fn sample(
    behind: Arc<AtomicU64>,
    after: Duration,
    histogram: prometheus::Histogram,
    asked: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let mut next_ask = std::pin::pin!(asked.notified());
        if next_ask.as_mut().now_or_never().is_none() {
            behind.store(0, Ordering::Relaxed);
            tokio::select! {
                () = next_ask => {}
                () = stop.cancelled() => return,
            }
        }
        for _ in 0..SAMPLES {
            let due = tokio::time::Instant::now() + PERIOD;
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stop.cancelled() => return,
            }
            let late = due.elapsed();
            histogram.observe(late.as_secs_f64());
            let bits = behind.load(Ordering::Relaxed);
            behind.store(bits << 1 | u64::from(late >= after), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_sample_and_the_last_seconds_count() {
        let samples = Samples(0b1011);
        assert!(samples.last_behind());
        assert_eq!(samples.behind_in_last_second(), 3);
        assert_eq!(samples.behind_in_second_before(), 0);
        // Older than a second: the second before's; older than two, not counted.
        assert_eq!(Samples(1 << SAMPLES).behind_in_last_second(), 0);
        assert_eq!(Samples(0b11 << SAMPLES).behind_in_second_before(), 2);
        assert_eq!(Samples(1 << (2 * SAMPLES)).behind_in_second_before(), 0);
        assert!(!Samples(0b10).last_behind());
    }
}
