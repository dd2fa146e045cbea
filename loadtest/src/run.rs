//! The engine behind the chat, fanout, persist, history and storm scenarios: channels of members,
//! each member with some devices spread over the edges and source addresses, a steady send rate
//! for a while, and then the accounts: latency percentiles, deliveries per second, and loss —
//! every acknowledged message must reach every device of every member exactly once, in order,
//! or the run fails.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::device::{self, Latencies};
use crate::population::{Auth, Population};
use crate::report::{self, Percentiles, ServiceDelta};
use crate::timeline;
use crate::worker::{DeviceSpec, Done, Fleet, Workers};

/// Where the system under test is and where the result goes: the same for every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    #[command(flatten)]
    pub auth: Auth,

    /// Edge gateway URLs, comma separated; devices are spread evenly over them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/gateway,ws://127.0.0.1:8090/gateway"
    )]
    pub gateway: Vec<url::Url>,

    /// A gateway the senders' devices connect to instead (the rest stay spread over
    /// `--gateway`): an edge that carries none of the fan-out, for a sender's ACK apart from it.
    #[arg(long)]
    pub sender_gateway: Option<url::Url>,

    /// The senders' devices in a worker process of their own, as a person's device is not the
    /// machine reading everyone else's deliveries: their sends and ACKs then do not queue behind
    /// the generator's reading of those (they still share its cores).
    #[arg(long)]
    pub senders_apart: bool,

    /// Source addresses (127.0.0.2, 127.0.0.3, ...) to spread sockets over: each holds about
    /// 28,000 ports towards one edge.
    #[arg(long, default_value_t = 1)]
    pub sources: u8,

    #[command(flatten)]
    pub workers: Workers,

    /// `/metrics` URLs (each service's `--metrics-addr`) scraped before and after the run
    /// (default: every local service of `./natter up`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9080/metrics,http://127.0.0.1:9090/metrics,http://127.0.0.1:9081/metrics,http://127.0.0.1:9082/metrics,http://127.0.0.1:9083/metrics"
    )]
    pub metrics: Vec<String>,

    /// Where to write the JSON result.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// A NATS URL: while the run sends, a probe of the generator's own publishes into a stream
    /// there every 5 ms and times JetStream's acknowledgement (`loadtest/src/probe.rs`), to set
    /// beside the senders' ACKs.
    #[arg(long)]
    pub jetstream_probe: Option<String>,

    /// Where to write the run's course as CSV, window by window of 100 ms: the deliveries of
    /// the messages sent in it (how many, the slowest, how many over 25 and 50 ms) and the CPU
    /// each process on the machine used then (`loadtest/src/timeline.rs`). With several rates,
    /// one file per rate (the rate before the extension).
    #[arg(long)]
    pub timeline: Option<PathBuf>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: &'static str,
    pub channels: usize,
    pub members: usize,
    /// Users to draw members from (0: one per member slot).
    pub users: usize,
    pub devices: usize,
    /// Messages per second, over all channels.
    pub rate: u64,
    pub duration: Duration,
    /// History page reads per second while the chat runs (0: none).
    pub history_rate: u64,
    /// Drop every connection at once after this long, and resume them all.
    pub storm_after: Option<Duration>,
}

impl Plan {
    /// `channels` of `members` (a user per member slot, one device each) at `rate` for
    /// `duration`, with no history readers and no storm; scenarios change what they add.
    pub fn steady(
        scenario: &'static str,
        channels: usize,
        members: usize,
        rate: u64,
        duration: Duration,
    ) -> Self {
        Self {
            scenario,
            channels,
            members,
            users: 0,
            devices: 1,
            rate,
            duration,
            history_rate: 0,
            storm_after: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RunResult {
    pub scenario: &'static str,
    pub channels: usize,
    pub members_per_channel: usize,
    pub users: usize,
    pub devices: usize,
    pub offered_rate: u64,
    pub seconds: f64,
    pub sent: u64,
    pub acknowledged: u64,
    pub send_errors: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicated_or_reordered: u64,
    /// Devices whose session ended before the run did, by close code (4009: too slow to read).
    pub sessions_ended_early: std::collections::BTreeMap<u16, u64>,
    /// Sends not made because their device's session had ended.
    pub not_sent: u64,
    pub deliveries_per_second: f64,
    pub send_to_ack: Percentiles,
    pub send_to_receive: Percentiles,
    /// The same two to the moment the kernel received the frame (`SO_TIMESTAMPNS`), before the
    /// generator, which shares the cores, read it.
    pub send_to_ack_arrival: Percentiles,
    pub send_to_arrival: Percentiles,
    /// With `--jetstream-probe`: JetStream's acknowledgement of the probe's publishes while the
    /// run sent, in microseconds.
    pub jetstream_probe: Option<Percentiles>,
    /// CPU per delivery from the first send until everything was delivered, in microseconds:
    /// the processes named `edge` on this machine (none when the edges run elsewhere), and the
    /// machine's whole (the generator included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_cpu_micros_per_delivery: Option<f64>,
    pub machine_cpu_micros_per_delivery: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormResult>,
    pub services: Vec<ServiceDelta>,
    /// The channels' ids and what each had acknowledged (for checks after the run).
    #[serde(skip)]
    pub channel_ids: Vec<String>,
    #[serde(skip)]
    pub acked_per_channel: Vec<u64>,
    /// With `--timeline`: where it was written and its slowest windows, for the report.
    #[serde(skip)]
    pub slowest_windows: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct HistoryResult {
    pub reads: u64,
    pub errors: u64,
    pub latency: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct StormResult {
    pub devices: usize,
    pub resumed: usize,
    pub failed: u64,
    pub seconds_to_99_percent: f64,
    pub seconds_to_all: f64,
}

impl RunResult {
    pub fn lost_anything(&self) -> bool {
        self.missing > 0
            || self.duplicated_or_reordered > 0
            || !self.sessions_ended_early.is_empty()
            || self
                .storm
                .as_ref()
                .is_some_and(|s| s.failed > 0 || s.resumed < s.devices)
    }

    pub fn print(&self) {
        println!(
            "{}: {} channels x {} members ({} users, {} devices each), {}/s for {:.1} s",
            self.scenario,
            self.channels,
            self.members_per_channel,
            self.users,
            self.devices,
            self.offered_rate,
            self.seconds
        );
        println!(
            "sent {}, acknowledged {} ({} errors); deliveries {} of {} expected: {} missing, {} duplicated or reordered; {:.0} deliveries/s",
            self.sent,
            self.acknowledged,
            self.send_errors,
            self.delivered,
            self.expected_deliveries,
            self.missing,
            self.duplicated_or_reordered,
            self.deliveries_per_second
        );
        if !self.sessions_ended_early.is_empty() {
            println!(
                "sessions ended early, by close code (4009: the device read too slowly): {:?}; {} sends not made",
                self.sessions_ended_early, self.not_sent
            );
        }
        let mut rows = vec![
            ("send -> ack", &self.send_to_ack),
            ("  at the socket", &self.send_to_ack_arrival),
            ("send -> receive", &self.send_to_receive),
            ("  at the socket", &self.send_to_arrival),
        ];
        if let Some(probe) = &self.jetstream_probe {
            rows.push(("JetStream (probe)", probe));
        }
        if let Some(history) = &self.history {
            rows.push(("history page", &history.latency));
        }
        report::print_percentiles(&rows);
        let edges = (self.edge_cpu_micros_per_delivery)
            .map_or_else(String::new, |us| format!("the edges {us:.2} us, "));
        println!(
            "CPU per delivery: {edges}the machine {:.2} us",
            self.machine_cpu_micros_per_delivery
        );
        if let Some(history) = &self.history {
            println!(
                "history: {} reads, {} errors",
                history.reads, history.errors
            );
        }
        if let Some(storm) = &self.storm {
            println!(
                "storm: {} of {} devices resumed ({} failed); 99% in {:.2} s, all in {:.2} s",
                storm.resumed,
                storm.devices,
                storm.failed,
                storm.seconds_to_99_percent,
                storm.seconds_to_all
            );
        }
        report::print_deltas(&self.services);
        for line in &self.slowest_windows {
            println!("{line}");
        }
    }
}

pub async fn run(target: &Target, plan: &Plan) -> anyhow::Result<RunResult> {
    if target.gateway.is_empty() || plan.channels == 0 || plan.members == 0 || plan.devices == 0 {
        bail!("a run needs a gateway, a channel, a member and a device");
    }
    let cast = Cast::arrange(target, plan).await?;
    let device_count = cast.devices.len();

    // Connect everyone, in worker processes.
    let epoch = device::unix_micros();
    let clock = || device::unix_micros().saturating_sub(epoch);
    let timeline_windows = if target.timeline.is_some() {
        timeline::MAX_WINDOWS
    } else {
        0
    };
    let fleet = Fleet::start(
        &target.workers,
        epoch,
        &cast.channel_ids,
        cast.devices,
        if target.senders_apart {
            &cast.senders
        } else {
            &[]
        },
        timeline_windows,
    )
    .await?;
    let baseline = report::Baseline::take(&target.metrics).await;
    let history = (plan.history_rate > 0).then(|| {
        let readers = HistoryReaders::new(target, &cast.channel_readers);
        tokio::spawn(readers.run(plan.history_rate, plan.duration))
    });

    let sampler = target
        .timeline
        .is_some()
        .then(|| timeline::Sampler::start(epoch));
    // Its stream made before the clock and the CPU count start, and let go after they stop.
    let probe = match &target.jetstream_probe {
        Some(url) => Some(crate::probe::Probe::start(url).await?),
        None => None,
    };
    let started = Instant::now();
    let cpu_mark = timeline::CpuMark::take();
    let sending = send(&fleet, plan, &cast.senders, clock).await;
    let probed = probe.map(crate::probe::Probe::stop);
    settle(&fleet, sending.sent, &cast.devices_in_channel).await;
    let delivering_seconds = started.elapsed().as_secs_f64();
    let cpu_used = cpu_mark.since();
    let cpu = sampler.map(timeline::Sampler::stop);
    let services = baseline.deltas().await;
    let jetstream_probe = match probed {
        Some(probed) => Some(probed.await?),
        None => None,
    };
    let history = match history {
        Some(task) => Some(task.await?),
        None => None,
    };

    let mut done = fleet.finish().await?;
    let acked = &done.progress.acked;
    let delivered: u64 = done.delivered.iter().sum();
    let missing = acked
        .iter()
        .zip(&cast.devices_in_channel)
        .zip(&done.delivered)
        .map(|((acked, devices), got)| (acked * devices).saturating_sub(*got))
        .sum();
    let per_delivery = |seconds: f64| seconds * 1e6 / delivered.max(1) as f64;
    let edge_cpu_micros_per_delivery = cpu_used.by_name.get("edge").copied().map(per_delivery);
    let storm = sending
        .stormed
        .then(|| StormResult::of(&done, device_count));
    let slowest_windows = match (&target.timeline, cpu) {
        (Some(path), Some(cpu)) => {
            let mut windows = std::collections::BTreeMap::new();
            timeline::merge(&mut windows, std::mem::take(&mut done.timeline));
            let mut notes = vec![format!("timeline written to {}", path.display())];
            notes.extend(timeline::write(path, &windows, &cpu)?);
            notes
        }
        _ => Vec::new(),
    };
    Ok(RunResult {
        scenario: plan.scenario,
        channels: plan.channels,
        members_per_channel: plan.members,
        users: cast.users,
        devices: plan.devices,
        offered_rate: plan.rate,
        seconds: sending.seconds,
        sent: sending.sent,
        acknowledged: acked.iter().sum(),
        send_errors: done.progress.send_errors,
        expected_deliveries: expected(acked, &cast.devices_in_channel),
        delivered,
        missing,
        duplicated_or_reordered: done.disorder,
        sessions_ended_early: done.ended.clone(),
        not_sent: sending.not_sent + done.progress.not_sent,
        deliveries_per_second: delivered as f64 / delivering_seconds,
        send_to_ack: (&Histogram::from(&done.send_to_ack)).into(),
        send_to_receive: (&Histogram::from(&done.send_to_receive)).into(),
        send_to_ack_arrival: (&Histogram::from(&done.send_to_ack_arrival)).into(),
        send_to_arrival: (&Histogram::from(&done.send_to_arrival)).into(),
        jetstream_probe,
        edge_cpu_micros_per_delivery,
        machine_cpu_micros_per_delivery: per_delivery(cpu_used.machine),
        history,
        storm,
        services,
        acked_per_channel: acked.clone(),
        channel_ids: cast.channel_ids,
        slowest_windows,
    })
}

impl Target {
    /// This target for `rate`, one of the `rates` a command runs: with more than one, its
    /// timeline file takes the rate before its extension (`t.csv` → `t-400.csv`), so each rate
    /// keeps its own.
    pub fn for_rate(&self, rate: u64, rates: &[u64]) -> Self {
        let timeline = match &self.timeline {
            Some(path) if rates.len() > 1 => {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                Some(path.with_file_name(match path.extension() {
                    Some(ext) => format!("{stem}-{rate}.{}", ext.to_string_lossy()),
                    None => format!("{stem}-{rate}"),
                }))
            }
            other => other.clone(),
        };
        Self {
            timeline,
            ..self.clone()
        }
    }
}

/// Who takes part in a run: the users signed up, their channels, and every device with the
/// edge, source address and channels it uses.
struct Cast {
    users: usize,
    channel_ids: Vec<String>,
    devices: Vec<DeviceSpec>,
    /// Per channel, how many devices receive its messages.
    devices_in_channel: Vec<u64>,
    /// Per channel, the device that sends its messages: its first member's first device.
    senders: Vec<usize>,
    /// Per channel, its id and a member's token, for history readers.
    channel_readers: Vec<(String, String)>,
}

impl Cast {
    async fn arrange(target: &Target, plan: &Plan) -> anyhow::Result<Self> {
        let population = Population::new(&target.auth);
        let users = if plan.users == 0 {
            plan.channels * plan.members
        } else {
            plan.users.max(plan.members)
        };
        let tag = format!(
            "{}_{}_{}",
            &plan.scenario[..2],
            std::process::id(),
            unique()
        );
        let people = population.sign_up(&tag, users).await?;
        let channels = population
            .channels(&people, plan.channels, plan.members)
            .await?;

        // Each user's channels, then each user's devices round robin over edges and sources.
        let mut of_user: HashMap<usize, Vec<usize>> = HashMap::new();
        for (c, channel) in channels.iter().enumerate() {
            for &m in &channel.members {
                of_user.entry(m).or_default().push(c);
            }
        }
        let sources: Vec<IpAddr> = (0..target.sources.max(1))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
            .collect();
        let mut devices = Vec::new();
        let mut first_device_of_user = HashMap::new();
        for (user, user_channels) in &of_user {
            for _ in 0..plan.devices {
                let index = devices.len();
                first_device_of_user.entry(*user).or_insert(index);
                let edges = target.gateway.len();
                devices.push(DeviceSpec {
                    index,
                    gateway: target.gateway[index % edges].clone(),
                    source: sources[(index / edges) % sources.len()],
                    token: people[*user].token.clone(),
                    channels: user_channels.clone(),
                });
            }
        }
        let senders: Vec<usize> = channels
            .iter()
            .map(|c| first_device_of_user[&c.members[0]])
            .collect();
        if let Some(gateway) = &target.sender_gateway {
            for &sender in &senders {
                devices[sender].gateway = gateway.clone();
            }
        }
        Ok(Self {
            users,
            channel_ids: channels.iter().map(|c| c.id.clone()).collect(),
            devices,
            devices_in_channel: channels
                .iter()
                .map(|c| (c.members.len() * plan.devices) as u64)
                .collect(),
            senders,
            channel_readers: channels
                .iter()
                .map(|c| (c.id.clone(), people[c.members[0]].token.clone()))
                .collect(),
        })
    }
}

/// What the sending phase did.
struct Sending {
    sent: u64,
    not_sent: u64,
    stormed: bool,
    seconds: f64,
}

/// Sends at the offered rate for the run's duration, round robin over the channels (and has every
/// device reconnect at once, when the plan says so).
async fn send(fleet: &Fleet, plan: &Plan, senders: &[usize], clock: impl Fn() -> u64) -> Sending {
    let started = Instant::now();
    let mut sending = Sending {
        sent: 0,
        not_sent: 0,
        stormed: false,
        seconds: 0.0,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while started.elapsed() < plan.duration {
        tick.tick().await;
        if let Some(after) = plan.storm_after
            && !sending.stormed
            && started.elapsed() >= after
        {
            sending.stormed = true;
            fleet.storm(clock());
        }
        let due = (plan.rate as f64 * started.elapsed().as_secs_f64()) as u64;
        while sending.sent + sending.not_sent < due {
            let channel = ((sending.sent + sending.not_sent) % senders.len() as u64) as usize;
            if fleet.send(senders[channel], channel) {
                sending.sent += 1;
            } else {
                sending.not_sent += 1;
            }
        }
    }
    sending.seconds = started.elapsed().as_secs_f64();
    sending
}

/// Lets everything arrive: until every acknowledged message has reached every device, or nothing
/// has moved for 15 seconds. A device whose session ended cannot send: its sends count as not
/// made, and the run fails at the end.
async fn settle(fleet: &Fleet, sent: u64, devices_in_channel: &[u64]) {
    let mut last_progress = (Instant::now(), 0u64);
    loop {
        let now = fleet.progress();
        let answered = now.acked.iter().sum::<u64>() + now.send_errors + now.not_sent;
        if now.received >= expected(&now.acked, devices_in_channel) && answered >= sent {
            return;
        }
        if now.received + answered != last_progress.1 {
            last_progress = (Instant::now(), now.received + answered);
        } else if last_progress.0.elapsed() > Duration::from_secs(15) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deliveries owed: each channel's acknowledged messages times the devices in it.
fn expected(acked: &[u64], devices_in_channel: &[u64]) -> u64 {
    acked
        .iter()
        .zip(devices_in_channel)
        .map(|(acked, devices)| acked * devices)
        .sum()
}

impl StormResult {
    /// How the reconnect storm went, from what the workers saw.
    fn of(done: &Done, devices: usize) -> Self {
        let mut times = done.resumed.clone();
        times.sort_by(f64::total_cmp);
        let at = |q: f64| {
            times
                .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Self {
            devices,
            resumed: times.len(),
            failed: done.resume_failures,
            seconds_to_99_percent: at(0.99),
            seconds_to_all: times.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Distinguishes runs started by the same process (the smoke tests run several).
fn unique() -> u32 {
    use std::sync::atomic::AtomicU32;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct HistoryReaders {
    http: reqwest::Client,
    /// Channel id, and a member's token.
    channels: Vec<(String, String)>,
    /// Edge HTTP origins.
    edges: Vec<String>,
}

impl HistoryReaders {
    /// Readers of `channels` (id, a member's token), at every edge's HTTP origin.
    fn new(target: &Target, channels: &[(String, String)]) -> Self {
        Self {
            http: reqwest::Client::new(),
            channels: channels.to_vec(),
            edges: target
                .gateway
                .iter()
                .filter_map(|g| {
                    Some(format!(
                        "http://{}:{}",
                        g.host_str()?,
                        g.port_or_known_default()?
                    ))
                })
                .collect(),
        }
    }

    /// Reads the newest 50 messages of a channel, `rate` times a second, for `duration`.
    async fn run(self, rate: u64, duration: Duration) -> HistoryResult {
        let latencies = Arc::new(Latencies::new());
        let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let readers = Arc::new(self);
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        let mut reads = 0u64;
        let mut pending = Vec::new();
        while started.elapsed() < duration {
            tick.tick().await;
            let i = reads as usize;
            reads += 1;
            let (readers, latencies, errors) = (
                Arc::clone(&readers),
                Arc::clone(&latencies),
                Arc::clone(&errors),
            );
            pending.push(tokio::spawn(async move {
                let (channel, token) = &readers.channels[i % readers.channels.len()];
                let edge = &readers.edges[i % readers.edges.len()];
                let url = format!("{edge}/api/v1/channels/{channel}/messages?limit=50");
                let begun = Instant::now();
                let ok = match readers.http.get(&url).bearer_auth(token).send().await {
                    Ok(response) => {
                        response.status().is_success() && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.record(i, begun.elapsed().as_micros() as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in pending {
            let _ = task.await;
        }
        let merged: Histogram<u64> = latencies.merged();
        HistoryResult {
            reads,
            errors: errors.load(Ordering::Relaxed),
            latency: (&merged).into(),
        }
    }
}
