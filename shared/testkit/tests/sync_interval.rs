//! What JetStream's `sync_interval: always` costs on a three-node cluster: publish-ack latency of
//! a stream at three replicas, one publish at a time and with 64 in flight, with the server's
//! default (fsync every 2 minutes) and with `always` (fsync before each acknowledgement), both in
//! one run so the ratio holds on a machine whose load changes.
//!
//! A measurement, not a test: ignored in the normal run. The figures in docs/BENCHMARKS.md came
//! from `cargo test -p testkit --test sync_interval -- --ignored --nocapture` on an idle machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use testkit::{NatsCluster, Stack, SyncInterval};

/// One publish at a time, each awaited.
const SEQUENTIAL: usize = 2_000;
/// Publishes with up to [`IN_FLIGHT`] acknowledgements outstanding.
const PIPELINED: usize = 20_000;
const IN_FLIGHT: usize = 64;
/// The size of a small chat event.
const PAYLOAD: usize = 200;

#[tokio::test]
#[ignore = "a measurement: run by hand on an idle machine"]
async fn publish_acks_with_the_default_sync_interval_and_with_always() {
    let stack = Stack::get();
    for sync in [SyncInterval::Default, SyncInterval::Always] {
        let cluster = NatsCluster::start(&stack, sync).await;
        let client = async_nats::connect(cluster.seeds()).await.unwrap();
        let js = jetstream::new(client);
        js.create_stream(stream::Config {
            name: "SYNCBENCH".into(),
            subjects: vec!["syncbench.>".into()],
            num_replicas: 3,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        let payload = vec![b'x'; PAYLOAD];
        // Warm up: connections, the stream's leader and file blocks.
        for _ in 0..200 {
            js.publish("syncbench.a", payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }

        let mut one_by_one = Vec::with_capacity(SEQUENTIAL);
        let started = Instant::now();
        for _ in 0..SEQUENTIAL {
            let sent = Instant::now();
            js.publish("syncbench.a", payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
            one_by_one.push(sent.elapsed());
        }
        let sequential_rate = SEQUENTIAL as f64 / started.elapsed().as_secs_f64();

        let mut pipelined = Vec::with_capacity(PIPELINED);
        let mut outstanding = VecDeque::with_capacity(IN_FLIGHT);
        let started = Instant::now();
        for _ in 0..PIPELINED {
            if outstanding.len() == IN_FLIGHT {
                let (sent, ack): (Instant, jetstream::context::PublishAckFuture) =
                    outstanding.pop_front().unwrap();
                ack.await.unwrap();
                pipelined.push(sent.elapsed());
            }
            let sent = Instant::now();
            let ack = js
                .publish("syncbench.b", payload.clone().into())
                .await
                .unwrap();
            outstanding.push_back((sent, ack));
        }
        for (sent, ack) in outstanding {
            ack.await.unwrap();
            pipelined.push(sent.elapsed());
        }
        let pipelined_rate = PIPELINED as f64 / started.elapsed().as_secs_f64();

        eprintln!(
            "sync_interval {sync:?}, R3, {PAYLOAD}-byte messages: one at a time p50 {:?} p99 {:?} \
             ({sequential_rate:.0} msg/s); {IN_FLIGHT} in flight p50 {:?} p99 {:?} \
             ({pipelined_rate:.0} msg/s)",
            percentile(&mut one_by_one, 0.50),
            percentile(&mut one_by_one, 0.99),
            percentile(&mut pipelined, 0.50),
            percentile(&mut pipelined, 0.99),
        );
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[index]
}
