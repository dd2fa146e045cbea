//! Worker processes. The devices of a run live in `loadtest worker` child processes, so a run is
//! not held to one process's open-file limit (20,000 here): each worker holds its share of the
//! sockets, the coordinator ([`crate::run`]) holds none. The coordinator signs up the users and
//! makes the channels, hands each worker its devices, tells it when each device sends, and adds
//! up what the workers report.
//!
//! The conversation is one JSON object per line over the child's stdin and stdout:
//!
//! ```text
//! coordinator -> worker   Assignment, then Orders: send, storm, stop
//! worker -> coordinator   connected (or failed), progress every 100 ms, done (at stop)
//! ```
//!
//! Every process measures time from the run's epoch, microseconds of the Unix clock, so a latency
//! is this one machine's clock read twice (by the sending and the receiving device's process).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::device::{self, Device, Shared};

/// Devices per worker process when `--workers` is not given.
pub const DEVICES_PER_WORKER: usize = 15_000;

/// How many worker processes, and which program they run: every scenario's options.
#[derive(Debug, Clone, clap::Args)]
pub struct Workers {
    /// Worker processes to hold the devices (0: one per 15,000 devices, as each process may open
    /// at most 20,000 files here).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// The program workers run as (`<it> worker`); this one unless set.
    #[arg(long, hide = true)]
    pub worker_exe: Option<std::path::PathBuf>,
}

impl Workers {
    fn count(&self, devices: usize) -> usize {
        match self.workers {
            0 => devices.div_ceil(DEVICES_PER_WORKER),
            n => n,
        }
    }

    fn exe(&self) -> anyhow::Result<std::path::PathBuf> {
        match &self.worker_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe().context("where this program is"),
        }
    }
}

/// A worker's share of a run: the first line it reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Assignment {
    /// The run's clock: microseconds since the Unix epoch when it began.
    pub epoch_micros: u64,
    /// Every channel of the run, by index.
    pub channel_ids: Vec<String>,
    pub devices: Vec<DeviceSpec>,
}

/// One device: where it connects from and to, as whom, and which channels it is in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// The device's index in the run.
    pub index: usize,
    pub gateway: url::Url,
    pub source: IpAddr,
    pub token: String,
    /// Indexes of the channels the device's user is a member of.
    pub channels: Vec<usize>,
}

/// What the coordinator tells a worker, after the assignment.
// Externally tagged (`{"send": {...}}`): an internally tagged enum buffers its content, and
// serde_json cannot then read the number keys of `Done::ended` back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The device with this run index sends one message to the channel with this index.
    Send { device: usize, channel: usize },
    /// Every device drops its socket at once and resumes; `at` is the run's clock.
    Storm { at: u64 },
    /// Close every session, report, exit.
    Stop,
}

/// What a worker tells the coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Every device of the assignment identified.
    Connected,
    Failed {
        error: String,
    },
    Progress(Progress),
    Done(Box<Done>),
}

/// Running totals, cumulative.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    /// MESSAGE_CREATEs received (in order, not duplicated).
    pub received: u64,
    /// Sends acknowledged, per channel index.
    pub acked: Vec<u64>,
    /// Sends answered with an error.
    pub send_errors: u64,
    /// Sends not made because the device's session had ended.
    pub not_sent: u64,
}

impl Progress {
    fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.send_errors += other.send_errors;
        self.not_sent += other.not_sent;
        if self.acked.len() < other.acked.len() {
            self.acked.resize(other.acked.len(), 0);
        }
        for (sum, acked) in self.acked.iter_mut().zip(&other.acked) {
            *sum += acked;
        }
    }
}

/// Everything a worker saw, at the end.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Done {
    pub progress: Progress,
    /// Messages delivered, per channel index, over all the worker's devices.
    pub delivered: Vec<u64>,
    /// Deliveries whose sequence number was not above the last one in their channel.
    pub disorder: u64,
    pub send_to_ack: Recorded,
    pub send_to_receive: Recorded,
    /// Seconds from the storm's start to each device's RESUMED.
    pub resumed: Vec<f64>,
    pub resume_failures: u64,
    /// Sessions that ended before the run did, by close code.
    pub ended: BTreeMap<u16, u64>,
}

impl Done {
    fn add(&mut self, other: Self) {
        self.progress.add(&other.progress);
        if self.delivered.len() < other.delivered.len() {
            self.delivered.resize(other.delivered.len(), 0);
        }
        for (sum, delivered) in self.delivered.iter_mut().zip(&other.delivered) {
            *sum += delivered;
        }
        self.disorder += other.disorder;
        self.send_to_ack.0.extend(other.send_to_ack.0);
        self.send_to_receive.0.extend(other.send_to_receive.0);
        self.resumed.extend(other.resumed);
        self.resume_failures += other.resume_failures;
        for (code, count) in other.ended {
            *self.ended.entry(code).or_default() += count;
        }
    }
}

/// A latency histogram as (microseconds, count) pairs: what crosses the pipe, merged exactly.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Recorded(Vec<(u64, u64)>);

impl From<&Histogram<u64>> for Recorded {
    fn from(h: &Histogram<u64>) -> Self {
        Self(
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }
}

impl From<&Recorded> for Histogram<u64> {
    fn from(recorded: &Recorded) -> Self {
        let mut h = device::histogram();
        for &(value, count) in &recorded.0 {
            let _ = h.record_n(value, count);
        }
        h
    }
}

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
    /// Starts the workers, gives device `i` to worker `i % workers`, and returns once every
    /// device has identified.
    pub async fn start(
        options: &Workers,
        epoch_micros: u64,
        channel_ids: &[String],
        devices: Vec<DeviceSpec>,
    ) -> anyhow::Result<Self> {
        let exe = options.exe()?;
        let count = options.count(devices.len()).clamp(1, devices.len().max(1));
        let owner: Vec<usize> = devices.iter().map(|d| d.index % count).collect();
        let mut shares: Vec<Vec<DeviceSpec>> = (0..count).map(|_| Vec::new()).collect();
        for device in devices {
            shares[device.index % count].push(device);
        }
        let mut workers = Vec::new();
        let mut connected = Vec::new();
        for devices in shares {
            let assignment = Assignment {
                epoch_micros,
                channel_ids: channel_ids.to_vec(),
                devices,
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

async fn write_line<T: Serialize>(
    to: &mut (impl AsyncWrite + Unpin),
    value: &T,
) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    to.write_all(&line).await?;
    Ok(())
}

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
    let channel_ids = Arc::new(assignment.channel_ids);
    let shared = Shared::new(channels, assignment.epoch_micros);

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
                    .map(|&c| (channel_ids[c].clone(), c))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_crosses_the_pipe_unchanged() {
        let mut h = device::histogram();
        for micros in [1, 7, 250, 1_000, 1_001, 52_000, 3_000_000] {
            h.record_n(micros, micros % 5 + 1).unwrap();
        }
        let line = serde_json::to_string(&Recorded::from(&h)).unwrap();
        let back = Histogram::from(&serde_json::from_str::<Recorded>(&line).unwrap());
        assert_eq!(back.len(), h.len());
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q {q}");
        }
    }

    #[test]
    fn a_done_report_reads_back_with_its_close_codes() {
        let done = Done {
            ended: BTreeMap::from([(0, 1), (4009, 2)]),
            ..Done::default()
        };
        let line = serde_json::to_string(&Report::Done(Box::new(done))).unwrap();
        let Report::Done(back) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        assert_eq!(back.ended, BTreeMap::from([(0, 1), (4009, 2)]));
    }

    #[test]
    fn what_workers_saw_adds_up() {
        let one = Done {
            progress: Progress {
                received: 10,
                acked: vec![1, 2],
                send_errors: 1,
                not_sent: 0,
            },
            delivered: vec![4, 6],
            disorder: 1,
            resumed: vec![0.5],
            ended: BTreeMap::from([(4009, 1)]),
            ..Done::default()
        };
        let two = Done {
            progress: Progress {
                received: 5,
                acked: vec![0, 3],
                send_errors: 0,
                not_sent: 2,
            },
            delivered: vec![1, 4],
            resumed: vec![0.25],
            resume_failures: 1,
            ended: BTreeMap::from([(4009, 2), (0, 1)]),
            ..Done::default()
        };
        let mut all = Done::default();
        all.add(one);
        all.add(two);
        assert_eq!(all.progress.received, 15);
        assert_eq!(all.progress.acked, [1, 5]);
        assert_eq!((all.progress.send_errors, all.progress.not_sent), (1, 2));
        assert_eq!(all.delivered, [5, 10]);
        assert_eq!((all.disorder, all.resume_failures), (1, 1));
        assert_eq!(all.resumed, [0.5, 0.25]);
        assert_eq!(all.ended, BTreeMap::from([(0, 1), (4009, 3)]));
    }
}
