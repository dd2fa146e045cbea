//! A durable pull consumer of the chat stream, read for as long as the service runs: notify's and
//! media's workers.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use proto::subjects::Subjects;

use crate::health::{Flag, Readiness};
use crate::lifecycle::Shutdown;

/// The first wait after a pull failed; it doubles up to [`LONGEST_WAIT`] while pulls keep failing.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// The durable consumer `name` of the chat stream's new events: a new deployment does not act
/// on the week of events the stream holds. Each event is acknowledged on its own, comes again
/// after `ack_wait` unacknowledged, and is given up after five deliveries.
pub fn new_events(
    name: &str,
    description: &str,
    subjects: &Subjects,
    ack_wait: Duration,
    max_ack_pending: i64,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        description: Some(description.to_owned()),
        filter_subject: subjects.chat_stream_filter(),
        deliver_policy: consumer::DeliverPolicy::New,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver: 5,
        max_ack_pending,
        ..Default::default()
    }
}

impl Readiness {
    /// Ready once the durable consumer [`read_durable`] reads exists (`made`): every event
    /// published from then on waits for the service.
    pub fn with_consumer(self, made: Flag) -> Self {
        self.with_flag(
            "chat stream",
            made,
            "the durable consumer of the chat stream is not made yet",
        )
    }
}

/// Reads the durable consumer `config` describes on the stream `stream` until `shutdown`: looks it
/// up or makes it, sets `made` (from then on every new event waits for it, so the service may say
/// it is ready), and has `read` handle its messages until the pull fails or ends or `shutdown`
/// (`read` watches it, to stop between messages, and says why it stopped). Neither is the end: NATS
/// restarted or failed over, the consumer's leader moved (on a cluster the first pull from a
/// consumer just made is answered "no responders" while its replicas elect one), the consumer
/// deleted: it is looked up or made again and pulled anew, and what was in hand unacknowledged
/// comes again after the consumer's ack wait.
pub async fn read_durable<F, Fut>(
    js: &jetstream::Context,
    stream: &str,
    config: consumer::pull::Config,
    made: &Flag,
    shutdown: &Shutdown,
    mut read: F,
) where
    F: FnMut(consumer::pull::Stream) -> Fut,
    Fut: Future<Output = String>,
{
    let name = config.durable_name.clone().unwrap_or_default();
    let mut wait = FIRST_WAIT;
    while !shutdown.is_cancelled() {
        let pulled = match consumer_of(js, stream, &name, config.clone()).await {
            Ok(consumer) => {
                made.set(true);
                consumer.messages().await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let stopped = match pulled {
            Ok(messages) => {
                wait = FIRST_WAIT;
                read(messages).await
            }
            Err(e) => e,
        };
        if shutdown.is_cancelled() {
            return;
        }
        tracing::warn!(consumer = %name, error = %stopped, "reading the chat stream stopped; pulling again");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}

async fn consumer_of(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    config: consumer::pull::Config,
) -> Result<consumer::PullConsumer, String> {
    let stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    stream
        .get_or_create_consumer(name, config)
        .await
        .map_err(|e| e.to_string())
}
