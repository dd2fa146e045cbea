//! `--jetstream-probe`: how long JetStream takes to acknowledge a publish while a run sends,
//! asked over a NATS connection of the generator's own, every 5 ms, into a stream of the probe's
//! own (file storage, as the chat stream). A sender's ACK is the edge's reading of the send,
//! JetStream's acknowledgement as the edge's NATS client sees it, and the edge's writing of the
//! ACK; the probe is the middle part as seen by a client whose process is not busy, so set
//! beside the run's `send -> ack` and the edges' `natter_edge_send_seconds` it tells how much
//! of a sender's wait is JetStream and how much the edge's own.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use hdrhistogram::Histogram;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::report::Percentiles;

/// One publish per period, each awaited before the next: at most 200 a second beside the run's.
const PERIOD: Duration = Duration::from_millis(5);
/// About a chat message's size.
const PAYLOAD: &[u8] = &[b'x'; 100];

/// A probe publishing until it is stopped.
pub struct Probe {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Histogram<u64>>>,
}

impl Probe {
    /// Connects to `url`, makes the probe's stream and starts publishing.
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        let nats = async_nats::connect(url)
            .await
            .with_context(|| format!("the probe cannot reach NATS at {url}"))?;
        let js = jetstream::new(nats);
        // The process's own stream: probes of two runs at once never share one.
        let name = format!("LOADTEST_PROBE_{}", std::process::id());
        let subject = format!("loadtest.probe.{}", std::process::id());
        js.get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            max_messages: 10_000,
            ..Default::default()
        })
        .await
        .context("the probe's stream")?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut took = Histogram::<u64>::new(3)?;
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let started = Instant::now();
                js.publish(subject.clone(), PAYLOAD.into()).await?.await?;
                took.record(u64::try_from(started.elapsed().as_micros())?)?;
            }
            if let Err(e) = js.delete_stream(&name).await {
                eprintln!("the probe's stream {name} was not deleted: {e}");
            }
            Ok(took)
        });
        Ok(Self { stop, task })
    }

    /// Stops publishing now; the round trips taken once its stream is deleted.
    pub fn stop(self) -> impl Future<Output = anyhow::Result<Percentiles>> {
        let _ = self.stop.send(());
        async move {
            let took = self.task.await.context("the probe's task")??;
            Ok((&took).into())
        }
    }
}
