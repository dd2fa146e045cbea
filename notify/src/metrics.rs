//! What the notification worker counts.

use kit::telemetry::Metrics;
use prometheus::{IntCounter, IntCounterVec, Opts};

#[derive(Clone)]
pub struct NotifyMetrics {
    /// `natter_notify_messages_total{outcome}`: new messages handled (`ok`) or retried (`failed`).
    pub messages: IntCounterVec,
    /// `natter_notify_questions_total`: questions asked of auth (each about up to 64 messages
    /// handled at once).
    pub questions: IntCounter,
    /// `natter_notify_inbox_entries_total`: inbox rows written.
    pub inbox: IntCounter,
    /// `natter_notify_inbox_forgotten_total`: inbox rows removed because their message was deleted.
    pub inbox_forgotten: IntCounter,
    /// `natter_notify_inbox_withdrawn_total`: inbox rows removed because an edit no longer
    /// concerns their owner.
    pub inbox_withdrawn: IntCounter,
    /// `natter_notify_edits_total{outcome}`: message updates followed into the inboxes
    /// (`applied`) or found to change nothing (`ignored`: processing updates, redeliveries, older
    /// edits, deleted messages).
    pub edits: IntCounterVec,
    /// `natter_notify_pushes_total{outcome}`: `sent`, `gone` (404/410), `failed`, `collapsed` into
    /// a later push of the same window, `dropped` (a queue or the window table was full), `active`
    /// (not pushed: the person has an active session, or is on Do Not Disturb).
    pub pushes: IntCounterVec,
    /// `natter_notify_subscriptions_pruned_total`: subscriptions removed after a 404 or 410.
    pub pruned: IntCounter,
}

impl NotifyMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let vec = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &["outcome"]).expect("valid metric");
            metrics.register(c.clone());
            c
        };
        let one = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            metrics.register(c.clone());
            c
        };
        Self {
            messages: vec(
                "natter_notify_messages_total",
                "New messages the notification worker handled, by outcome",
            ),
            questions: one(
                "natter_notify_questions_total",
                "Questions the notification worker asked auth (each about several messages)",
            ),
            inbox: one(
                "natter_notify_inbox_entries_total",
                "Mentions inbox entries written",
            ),
            inbox_forgotten: one(
                "natter_notify_inbox_forgotten_total",
                "Mentions inbox entries removed because their message was deleted",
            ),
            inbox_withdrawn: one(
                "natter_notify_inbox_withdrawn_total",
                "Mentions inbox entries removed because an edit no longer concerns their owner",
            ),
            edits: vec(
                "natter_notify_edits_total",
                "Message updates the notification worker followed into the inboxes, by outcome",
            ),
            pushes: vec(
                "natter_notify_pushes_total",
                "Pushes by outcome (sent, gone, failed, collapsed, dropped, active)",
            ),
            pruned: one(
                "natter_notify_subscriptions_pruned_total",
                "Push subscriptions removed because the push service said they are gone",
            ),
        }
    }
}
