//! The coordinator's side: starting the worker processes, ordering them, adding up what they
//! report.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::protocol::write_line;
use super::{Assignment, DeviceSpec, Done, Order, Progress, Report, Workers};

/// The workers of one run, seen from the coordinator.
pub struct Fleet {
    workers: Vec<Worker>,
    /// Run index of a device → the worker holding it.
    owner: Vec<usize>,
}

struct Worker {
    _child: Child,
    orders: mpsc::UnboundedSender<Order>,
    progress: Arc<std::sync::Mutex<Progress>>,
    done: JoinHandle<anyhow::Result<Done>>,
}

impl Fleet {
    /// Starts the workers, gives device `i` to worker `i % workers` (the devices in `apart` to
    /// one more worker of their own), and returns once every device has identified.
    /// `timeline_windows`: windows of `crate::timeline` each worker counts deliveries in (0:
    /// none).
    pub async fn start(
        options: &Workers,
        epoch_micros: u64,
        channel_ids: &[String],
        devices: Vec<DeviceSpec>,
        apart: &[usize],
        timeline_windows: usize,
    ) -> anyhow::Result<Self> {
        let exe = options.exe()?;
        let count = options.count(devices.len()).clamp(1, devices.len().max(1));
        let whose = |index: usize| {
            if apart.contains(&index) {
                count
            } else {
                index % count
            }
        };
        let mut shares: Vec<Vec<DeviceSpec>> = (0..=count).map(|_| Vec::new()).collect();
        for device in devices {
            shares[whose(device.index)].push(device);
        }
        // A worker with no devices is not started (the apart one when none are).
        shares.retain(|share| !share.is_empty());
        let mut owner = vec![0; shares.iter().map(Vec::len).sum()];
        for (worker, share) in shares.iter().enumerate() {
            for device in share {
                owner[device.index] = worker;
            }
        }
        let mut workers = Vec::new();
        let mut connected = Vec::new();
        for devices in shares {
            let assignment = Assignment {
                epoch_micros,
                channel_ids: channel_ids.to_vec(),
                devices,
                timeline_windows,
            };
            let (worker, ready) = Worker::spawn(&exe, &assignment).await?;
            workers.push(worker);
            connected.push(ready);
        }
        for ready in connected {
            match ready.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => bail!("a worker's devices could not connect: {e}"),
                Err(_) => bail!("a worker exited before its devices connected"),
            }
        }
        Ok(Self { workers, owner })
    }

    /// Tells a device to send; false when its worker has gone.
    pub fn send(&self, device: usize, channel: usize) -> bool {
        self.workers[self.owner[device]]
            .orders
            .send(Order::Send { device, channel })
            .is_ok()
    }

    pub fn storm(&self, at: u64) {
        for worker in &self.workers {
            let _ = worker.orders.send(Order::Storm { at });
        }
    }

    /// The workers' latest totals, added up.
    pub fn progress(&self) -> Progress {
        let mut sum = Progress::default();
        for worker in &self.workers {
            if let Ok(progress) = worker.progress.lock() {
                sum.add(&progress);
            }
        }
        sum
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops every worker and adds up what they saw.
    pub async fn finish(self) -> anyhow::Result<Done> {
        for worker in &self.workers {
            let _ = worker.orders.send(Order::Stop);
        }
        let mut all = Done::default();
        for worker in self.workers {
            all.add(worker.done.await.context("a worker's reader panicked")??);
        }
        Ok(all)
    }
}

impl Worker {
    async fn spawn(
        exe: &Path,
        assignment: &Assignment,
    ) -> anyhow::Result<(Self, oneshot::Receiver<Result<(), String>>)> {
        let mut child = Command::new(exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start a worker ({})", exe.display()))?;
        let mut stdin = BufWriter::new(child.stdin.take().context("the worker's stdin")?);
        let stdout = child.stdout.take().context("the worker's stdout")?;
        write_line(&mut stdin, assignment).await?;
        stdin.flush().await?;

        let (orders, mut queued) = mpsc::unbounded_channel::<Order>();
        tokio::spawn(async move {
            // Everything queued goes out in one write.
            while let Some(order) = queued.recv().await {
                let mut batch = vec![order];
                while let Ok(more) = queued.try_recv() {
                    batch.push(more);
                }
                for order in &batch {
                    if write_line(&mut stdin, order).await.is_err() {
                        return;
                    }
                }
                if stdin.flush().await.is_err() {
                    return;
                }
            }
        });

        let progress = Arc::new(std::sync::Mutex::new(Progress::default()));
        let (connected, ready) = oneshot::channel();
        let latest = Arc::clone(&progress);
        let done = tokio::spawn(async move {
            let mut connected = Some(connected);
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await? {
                let report = serde_json::from_str::<Report>(&line).with_context(|| {
                    let start: String = line.chars().take(120).collect();
                    format!("a worker said something else: {start}...")
                })?;
                match report {
                    Report::Connected => {
                        if let Some(connected) = connected.take() {
                            let _ = connected.send(Ok(()));
                        }
                    }
                    Report::Failed { error } => {
                        if let Some(connected) = connected.take() {
                            let _ = connected.send(Err(error.clone()));
                        }
                        bail!("a worker failed: {error}");
                    }
                    Report::Progress(now) => {
                        if let Ok(mut progress) = latest.lock() {
                            *progress = now;
                        }
                    }
                    Report::Done(done) => return Ok(*done),
                }
            }
            bail!("a worker exited without reporting")
        });
        Ok((
            Self {
                _child: child,
                orders,
                progress,
                done,
            },
            ready,
        ))
    }
}
