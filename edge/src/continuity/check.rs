//! When the edge checks the topics it follows against the streams: after a reconnect, a slow
//! consumer, a stream leader change, and every `--delivery-check-interval`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kit::lifecycle::Shutdown;
use tokio::sync::mpsc;

use crate::state::EdgeState;

/// Why events are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(super) enum Cause {
    /// An event's previous one of its subject was never handed out.
    Gap,
    /// The NATS client connected again: what was republished while it was away is lost.
    Reconnect,
    /// A subscription's buffer overflowed and the client dropped messages.
    SlowConsumer,
    /// A stream has a new leader.
    LeaderChange,
    /// The periodic check, for a loss nothing announced.
    Periodic,
}

impl Cause {
    /// The metrics label (`gap`, `slow_consumer`, ...).
    pub(super) fn label(self) -> &'static str {
        self.into()
    }
}

/// How long a periodic check lets events it saw in the streams arrive live before it counts
/// them as lost: repairing an event whose republished copy is merely on its way costs a read for
/// nothing (the copy is then dropped as a duplicate).
const SETTLE: Duration = Duration::from_secs(1);

/// Checks the topics this edge follows against the streams until `shutdown`: after the NATS
/// client reconnects (the dispatcher checks before handing anything out; `events` wakes it when
/// nothing else does), when a subscription dropped messages, when `leaders` says the chat or the
/// events stream has a new leader, and every `interval`.
pub async fn check(
    state: Arc<EdgeState>,
    mut events: mpsc::Receiver<async_nats::Event>,
    leaders: Vec<async_nats::Subscriber>,
    interval: Duration,
    shutdown: Shutdown,
) {
    let continuity = state.hub.continuity();
    let streams = continuity.streams().clone();
    let mut leaders = futures::stream::select_all(leaders);
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.reset();
    loop {
        let cause = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => Cause::Periodic,
            Some(event) = events.recv() => match event {
                async_nats::Event::Connected => {
                    continuity.check(Cause::Reconnect, None);
                    continue;
                }
                async_nats::Event::SlowConsumer(_) => Cause::SlowConsumer,
                _ => continue,
            },
            Some(_) = leaders.next() => Cause::LeaderChange,
        };
        if cause != Cause::Periodic {
            tracing::info!(
                cause = cause.label(),
                "checking live delivery against the streams"
            );
        }
        let feeds = state.hub.feeds();
        let lasts = tokio::select! {
            () = shutdown.cancelled() => return,
            lasts = streams.last_sequences(&feeds) => lasts,
        };
        let mut lasts = match lasts {
            Ok(lasts) => lasts,
            Err(e) => {
                tracing::debug!(error = %e, cause = cause.label(), "cannot check live delivery");
                continue;
            }
        };
        if cause == Cause::Periodic {
            // Events just stored are still on their way live: only what stays missing is lost.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(SETTLE) => {}
            }
        }
        lasts.retain(|(feed, source, last)| feed.watermark(*source).behind(*last));
        if !lasts.is_empty() {
            continuity.check(cause, Some(lasts));
        }
    }
}
