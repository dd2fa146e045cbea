//! The worker's side (`loadtest worker`): its devices, run as the coordinator orders.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use futures::StreamExt;
use proto::Snowflake;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, watch};

use super::protocol::write_line;
use super::{Assignment, Order, Report};
use crate::device::{self, Device, Shared};

/// `loadtest worker`: runs an assignment read from stdin until told to stop.
pub async fn work() -> anyhow::Result<()> {
    let (reports, mut outgoing) = mpsc::unbounded_channel::<Report>();
    let writer = tokio::spawn(async move {
        let mut stdout = BufWriter::new(tokio::io::stdout());
        while let Some(report) = outgoing.recv().await {
            let last = matches!(report, Report::Done(_) | Report::Failed { .. });
            if write_line(&mut stdout, &report).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
            if last {
                return;
            }
        }
    });
    let result = serve(&reports).await;
    if let Err(e) = &result {
        let _ = reports.send(Report::Failed {
            error: format!("{e:#}"),
        });
    }
    drop(reports);
    let _ = writer.await;
    result
}

async fn serve(reports: &mpsc::UnboundedSender<Report>) -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await?.context("no assignment")?;
    let assignment: Assignment = serde_json::from_str(&first).context("the assignment")?;
    let channels = assignment.channel_ids.len();
    let channel_ids: Vec<Snowflake> = (assignment.channel_ids.iter())
        .map(|id| id.parse())
        .collect::<Result<_, _>>()
        .context("a channel id")?;
    let channel_ids = Arc::new(channel_ids);
    let shared = Shared::new(
        channels,
        assignment.epoch_micros,
        assignment.timeline_windows,
    );

    // Connect every device, a few hundred at a time.
    let (stop_tx, stop_rx) = watch::channel(false);
    let connecting = futures::stream::iter(assignment.devices.into_iter().map(|spec| {
        let (tx, rx) = mpsc::channel(1024);
        let (shared, stop_rx, channel_ids) = (
            Arc::clone(&shared),
            stop_rx.clone(),
            Arc::clone(&channel_ids),
        );
        async move {
            let index = spec.index;
            let device = Device {
                index,
                gateway: spec.gateway,
                source: spec.source,
                token: spec.token,
                channels: spec
                    .channels
                    .iter()
                    .map(|&c| (channel_ids[c].to_string(), c))
                    .collect(),
                channel_ids,
            };
            let session = device.start(shared, rx, stop_rx).await;
            (index, tx, session)
        }
    }))
    .buffer_unordered(device::CONNECTS_IN_FLIGHT);
    let mut connecting = std::pin::pin!(connecting);
    let mut senders = std::collections::HashMap::new();
    let mut sessions = Vec::new();
    while let Some((index, tx, session)) = connecting.next().await {
        sessions.push(session.with_context(|| format!("device {index} could not connect"))?);
        senders.insert(index, tx);
    }
    reports.send(Report::Connected)?;

    let progress = {
        let (shared, reports) = (Arc::clone(&shared), reports.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                every.tick().await;
                if reports.send(Report::Progress(shared.progress())).is_err() {
                    return;
                }
            }
        })
    };

    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Order>(&line).context("an order")? {
            Order::Send { device, channel } => {
                let sent = match senders.get(&device) {
                    Some(tx) => tx.send(device::Command::Send(channel)).await.is_ok(),
                    None => false,
                };
                if !sent {
                    shared.not_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Order::Storm { at } => {
                shared.storm_started.store(at, Ordering::Relaxed);
                for tx in senders.values() {
                    let _ = tx.try_send(device::Command::Reconnect);
                }
            }
            Order::Stop => break,
        }
    }
    progress.abort();

    let _ = stop_tx.send(true);
    let mut delivered = vec![0u64; channels];
    for session in sessions {
        if let Ok(counts) = session.await {
            for (channel, count) in counts {
                delivered[channel] += count;
            }
        }
    }
    reports.send(Report::Done(Box::new(shared.done(delivered).await)))?;
    Ok(())
}
