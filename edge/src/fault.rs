//! Deliberate faults, compiled only with the `fault-injection` feature (never in a release
//! build): the load harness's tests use them to prove that it notices loss.

use std::sync::atomic::{AtomicU64, Ordering};

use proto::events::Event;

use crate::fanout::Delivery;

/// Drops the `nth` MESSAGE_CREATE this edge would hand to a session (counting from 1 across all
/// its sessions), once.
#[derive(Debug, Default)]
pub struct Faults {
    drop_message: Option<u64>,
    seen: AtomicU64,
}

impl Faults {
    pub fn new(drop_message: Option<u64>) -> Self {
        Self {
            drop_message,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether to drop this delivery.
    pub fn drops(&self, delivery: &Delivery) -> bool {
        let Some(nth) = self.drop_message else {
            return false;
        };
        if !matches!(delivery.event, Event::MessageCreate(_)) {
            return false;
        }
        let dropped = self.seen.fetch_add(1, Ordering::Relaxed) + 1 == nth;
        if dropped {
            tracing::warn!(nth, "fault injection: dropping a delivery");
        }
        dropped
    }
}
