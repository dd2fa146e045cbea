//! Pushes to people who are away: batched per person and channel, sent with bounded concurrency,
//! subscriptions the push service refuses for good removed.
//!
//! - [`PushSender`] is the one thing that talks to a push service: Web Push ([`WebPush`]: RFC
//!   8030 delivery, RFC 8291 aes128gcm encryption, RFC 8292 VAPID) is the only one built. FCM and
//!   APNs would be other senders behind the same trait, configured only with their credentials.
//! - [`Pusher`] batches: the first message of a channel for a person is pushed at once; what
//!   follows within `--push-interval` waits and goes as one push at the window's end ("3 new
//!   messages", the latest one's text), with the channel as its `Topic`, so a push service that
//!   still holds an undelivered one replaces it. A busy channel costs a person one push per
//!   interval, not one per message.
//! - Memory is bounded: jobs wait in a queue of `--push-queue` (a full queue drops the push and
//!   counts it: the inbox and badges still have it), windows are kept for at most
//!   [`MAX_WINDOWS`] (person, channel) pairs, and at most `--push-concurrency` requests to push
//!   services are in flight, each within `--push-timeout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use proto::Snowflake;
use proto::api::notifications::{PushPayload, PushSubscription};
use proto::subjects::Subjects;
use tokio::sync::{Semaphore, mpsc};
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, WebPushMessageBuilder};

use crate::metrics::NotifyMetrics;
use crate::vapid::VapidKey;

/// The most (person, channel) windows kept at once.
pub const MAX_WINDOWS: usize = 100_000;

/// One push to send: to every browser of one person, about one channel.
#[derive(Debug, Clone)]
pub struct Job {
    pub user_id: Snowflake,
    pub payload: PushPayload,
    pub subscriptions: Vec<PushSubscription>,
}

/// What a push service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// 404 or 410: the subscription is gone for good.
    Gone,
    Failed(String),
}

/// A way to reach a person's device.
pub trait PushSender: Send + Sync + 'static {
    fn send<'a>(
        &'a self,
        subscription: &'a PushSubscription,
        payload: &'a [u8],
        topic: &'a str,
    ) -> BoxFuture<'a, Delivery>;
}

/// Web Push: encrypts for the browser's keys, signs with VAPID, POSTs to the endpoint.
pub struct WebPush {
    pub http: reqwest::Client,
    pub vapid: VapidKey,
    /// The VAPID `sub` claim: how a push service reaches the operator (`mailto:` or `https:`).
    pub contact: String,
    /// How long a push service keeps an undelivered push (the `TTL` header), in seconds.
    pub ttl: u32,
}

impl WebPush {
    fn request(
        &self,
        subscription: &PushSubscription,
        payload: &[u8],
        topic: &str,
    ) -> Result<reqwest::Request, String> {
        let info = SubscriptionInfo::new(
            subscription.endpoint.as_str(),
            subscription.keys.p256dh.as_str(),
            subscription.keys.auth.as_str(),
        );
        let mut signer = self.vapid.builder().add_sub_info(&info);
        signer.add_claim("sub", self.contact.as_str());
        let signature = signer.build().map_err(|e| format!("VAPID: {e}"))?;
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_payload(ContentEncoding::Aes128Gcm, payload);
        message.set_vapid_signature(signature);
        message.set_ttl(self.ttl);
        message.set_urgency(Urgency::High);
        message.set_topic(topic.to_owned());
        let message = message.build().map_err(|e| format!("encryption: {e}"))?;
        let built = web_push::request_builder::build_request::<Vec<u8>>(message);
        let (parts, body) = built.into_parts();
        let mut request = self.http.post(parts.uri.to_string()).body(body);
        for (name, value) in &parts.headers {
            // reqwest sets the length of the body it sends.
            if name.as_str().eq_ignore_ascii_case("content-length") {
                continue;
            }
            request = request.header(name.as_str(), value.as_bytes());
        }
        request.build().map_err(|e| e.to_string())
    }
}

impl PushSender for WebPush {
    fn send<'a>(
        &'a self,
        subscription: &'a PushSubscription,
        payload: &'a [u8],
        topic: &'a str,
    ) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let request = match self.request(subscription, payload, topic) {
                Ok(request) => request,
                Err(e) => return Delivery::Failed(e),
            };
            match self.http.execute(request).await {
                Ok(response) => match response.status().as_u16() {
                    200..=299 => Delivery::Sent,
                    404 | 410 => Delivery::Gone,
                    status => Delivery::Failed(format!("the push service answered {status}")),
                },
                Err(e) => Delivery::Failed(e.to_string()),
            }
        })
    }
}

/// One (person, channel) window.
struct Window {
    /// When the last push went.
    sent: Instant,
    /// The newest job that arrived since, and how many messages it stands for.
    pending: Option<Job>,
}

/// Takes jobs, batches them per window, and sends.
pub struct Pusher {
    pub sender: Arc<dyn PushSender>,
    pub interval: Duration,
    pub concurrency: usize,
    pub nats: async_nats::Client,
    pub subjects: Subjects,
    pub metrics: NotifyMetrics,
}

impl Pusher {
    /// Runs until `shutdown`; pushes waiting for their window then are dropped (the inbox and
    /// badges still show them).
    pub async fn run(self, mut jobs: mpsc::Receiver<Job>, shutdown: kit::lifecycle::Shutdown) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut windows: HashMap<(Snowflake, Snowflake), Window> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(250).min(self.interval));
        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { return };
                    self.take(&mut windows, job, &permits).await;
                }
                _ = tick.tick() => self.flush(&mut windows, &permits).await,
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn take(
        &self,
        windows: &mut HashMap<(Snowflake, Snowflake), Window>,
        mut job: Job,
        permits: &Arc<Semaphore>,
    ) {
        let key = (job.user_id, job.payload.channel_id);
        let now = Instant::now();
        let full = windows.len() >= MAX_WINDOWS;
        match windows.get_mut(&key) {
            Some(window) if now.duration_since(window.sent) < self.interval => {
                // Within the window: this one waits, standing for itself and what waited before.
                let before = window.pending.as_ref().map_or(0, |p| p.payload.count);
                job.payload.count = before + 1;
                window.pending = Some(job);
                self.metrics.pushes.with_label_values(&["collapsed"]).inc();
            }
            Some(window) => {
                window.sent = now;
                window.pending = None;
                self.spawn(job, permits).await;
            }
            None if full => {
                self.metrics.pushes.with_label_values(&["dropped"]).inc();
            }
            None => {
                windows.insert(
                    key,
                    Window {
                        sent: now,
                        pending: None,
                    },
                );
                self.spawn(job, permits).await;
            }
        }
    }

    async fn flush(
        &self,
        windows: &mut HashMap<(Snowflake, Snowflake), Window>,
        permits: &Arc<Semaphore>,
    ) {
        let now = Instant::now();
        let mut due = Vec::new();
        windows.retain(|_, window| {
            if now.duration_since(window.sent) < self.interval {
                return true;
            }
            match window.pending.take() {
                Some(job) => {
                    window.sent = now;
                    due.push(job);
                    true
                }
                // A quiet window ends: the next message is pushed at once.
                None => false,
            }
        });
        for job in due {
            self.spawn(job, permits).await;
        }
    }

    /// Sends one job once a permit is free (so at most `concurrency` are in flight).
    async fn spawn(&self, job: Job, permits: &Arc<Semaphore>) {
        let permit = Arc::clone(permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let sender = Arc::clone(&self.sender);
        let nats = self.nats.clone();
        let subject = self.subjects.auth_push_gone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let mut payload = job.payload;
            if payload.count > 1 {
                payload.body = format!("{} new messages: {}", payload.count, payload.body);
            }
            let bytes = serde_json::to_vec(&payload).expect("payloads serialise");
            let topic = payload.channel_id.to_string();
            for subscription in &job.subscriptions {
                let outcome = sender.send(subscription, &bytes, &topic).await;
                let label = match &outcome {
                    Delivery::Sent => "sent",
                    Delivery::Gone => "gone",
                    Delivery::Failed(e) => {
                        tracing::debug!(error = %e, user = %job.user_id, "a push failed");
                        "failed"
                    }
                };
                metrics.pushes.with_label_values(&[label]).inc();
                if outcome == Delivery::Gone {
                    let gone = proto::access::PushGone {
                        endpoint: subscription.endpoint.clone(),
                    };
                    let body = serde_json::to_vec(&gone).expect("requests serialise");
                    let asked = tokio::time::timeout(
                        Duration::from_secs(5),
                        nats.request(subject.clone(), body.into()),
                    )
                    .await;
                    if !matches!(asked, Ok(Ok(_))) {
                        tracing::warn!("cannot tell auth that a push subscription is gone");
                    } else {
                        metrics.pruned.inc();
                    }
                }
            }
            drop(permit);
        });
    }
}
