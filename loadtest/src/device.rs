//! One simulated device: a real gateway session over a real socket that heartbeats, sends when
//! told, reads everything, checks it, and can drop its connection and RESUME on command.
//!
//! What it checks, per channel: every MESSAGE_CREATE's stream sequence is higher than the last
//! one (so nothing arrives twice or out of order), and it counts them; the run compares the
//! counts with what was acknowledged to find anything missing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use hdrhistogram::Histogram;
use proto::Snowflake;
use proto::events::EventKind;
use proto::gateway::{ClientFrame, DispatchKind, MessageSend, Opcode, Resume};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{Mutex, mpsc, watch};

use crate::client::{self, Socket};
use crate::scan;
use crate::timeline;
use crate::worker::{Done, Progress};
use crate::ws::Frame;

/// Latencies recorded by many devices at once, spread over a few locks.
pub struct Latencies(Vec<std::sync::Mutex<Histogram<u64>>>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// An empty latency histogram: 1 µs to 10 minutes, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Microseconds since the Unix epoch: the clock every process of a run shares.
pub fn unix_micros() -> u64 {
    u64::try_from(proto::clock::since_epoch().as_micros()).unwrap_or(u64::MAX)
}

impl Latencies {
    pub fn new() -> Self {
        Self(
            (0..16)
                .map(|_| std::sync::Mutex::new(histogram()))
                .collect(),
        )
    }

    pub fn record(&self, shard: usize, micros: u64) {
        if let Ok(mut h) = self.0[shard % self.0.len()].lock() {
            let _ = h.record(micros.clamp(1, 600_000_000));
        }
    }

    /// Records several at once, under one lock.
    pub fn record_all(&self, shard: usize, micros: &[u64]) {
        if let Ok(mut h) = self.0[shard % self.0.len()].lock() {
            for &m in micros {
                let _ = h.record(m.clamp(1, 600_000_000));
            }
        }
    }

    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.0 {
            if let Ok(h) = shard.lock() {
                let _ = all.add(&*h);
            }
        }
        all
    }
}

/// The source ports devices take (see [`Device::source`]): 10,000 to 64,999.
const FIRST_SOURCE_PORT: u16 = 10_000;
const SOURCE_PORTS: u16 = 55_000;

/// Connection handshakes one worker process has in flight at once.
pub const CONNECTS_IN_FLIGHT: usize = 200;

/// What every device of a worker reports into.
pub struct Shared {
    /// The run's clock starts here (microseconds since the Unix epoch).
    pub epoch_micros: u64,
    pub send_to_ack: Latencies,
    pub send_to_receive: Latencies,
    /// The same two to the moment the kernel received the frame, before the generator read it
    /// ([`crate::ws::Socket::arrived`]): what the system took, without the generator's own wait.
    pub send_to_ack_arrival: Latencies,
    pub send_to_arrival: Latencies,
    /// Messages acknowledged, per channel index.
    pub acked: Vec<AtomicU64>,
    pub received: AtomicU64,
    /// A sequence number not above the last one seen in that channel: a duplicate or reordering.
    pub disorder: AtomicU64,
    /// ERROR answers to sends.
    pub send_errors: AtomicU64,
    /// Sends not made because the device's session had ended.
    pub not_sent: AtomicU64,
    /// Seconds from the storm's start to each device's RESUMED.
    pub resumed: Mutex<Vec<f64>>,
    pub resume_failures: AtomicU64,
    /// Resumes in flight at once in this process (as many as connections at the start): without
    /// a bound, thousands of handshakes at once starve this process, and devices answer HELLO
    /// later than the edge's 10 s identify deadline: the generator's limit, not the system's.
    pub resume_slots: tokio::sync::Semaphore,
    /// Devices whose session ended before the run did, by close code (0: no close frame).
    pub ended: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    /// When the reconnect storm began (micros since `epoch`).
    pub storm_started: AtomicU64,
    /// Deliveries by the window their message was sent in, when the run asked for a timeline.
    pub timeline: Option<timeline::Windows>,
}

impl Shared {
    /// `timeline_windows`: windows to count deliveries in (0: no timeline).
    pub fn new(channels: usize, epoch_micros: u64, timeline_windows: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch_micros,
            send_to_ack: Latencies::new(),
            send_to_receive: Latencies::new(),
            send_to_ack_arrival: Latencies::new(),
            send_to_arrival: Latencies::new(),
            acked: (0..channels).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            disorder: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            not_sent: AtomicU64::new(0),
            resumed: Mutex::new(Vec::new()),
            resume_failures: AtomicU64::new(0),
            resume_slots: tokio::sync::Semaphore::new(CONNECTS_IN_FLIGHT),
            ended: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            storm_started: AtomicU64::new(0),
            timeline: (timeline_windows > 0).then(|| timeline::Windows::new(timeline_windows)),
        })
    }

    /// A device's session ended early, with this close code.
    pub fn ended(&self, code: u16) {
        if let Ok(mut ended) = self.ended.lock() {
            *ended.entry(code).or_default() += 1;
        }
    }

    /// The run's clock.
    pub fn micros(&self) -> u64 {
        unix_micros().saturating_sub(self.epoch_micros)
    }

    pub fn progress(&self) -> Progress {
        Progress {
            received: self.received.load(Ordering::Relaxed),
            acked: self
                .acked
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            not_sent: self.not_sent.load(Ordering::Relaxed),
        }
    }

    /// Everything seen, once every device has stopped; `delivered` per channel index.
    pub async fn done(&self, delivered: Vec<u64>) -> Done {
        Done {
            progress: self.progress(),
            delivered,
            disorder: self.disorder.load(Ordering::Relaxed),
            send_to_ack: (&self.send_to_ack.merged()).into(),
            send_to_receive: (&self.send_to_receive.merged()).into(),
            send_to_ack_arrival: (&self.send_to_ack_arrival.merged()).into(),
            send_to_arrival: (&self.send_to_arrival.merged()).into(),
            resumed: self.resumed.lock().await.clone(),
            resume_failures: self.resume_failures.load(Ordering::Relaxed),
            ended: self.ended.lock().map(|e| e.clone()).unwrap_or_default(),
            timeline: self
                .timeline
                .as_ref()
                .map(timeline::Windows::taken)
                .unwrap_or_default(),
        }
    }
}

pub enum Command {
    /// Send one message to the channel with this index.
    Send(usize),
    /// Drop the socket without a goodbye and RESUME on a new one.
    Reconnect,
}

pub struct Device {
    pub index: usize,
    pub gateway: url::Url,
    pub source: IpAddr,
    pub token: String,
    /// Channel id → channel index, for the channels this device's user is in.
    pub channels: FxHashMap<String, usize>,
    /// Channel index → channel id, for sending.
    pub channel_ids: Arc<Vec<Snowflake>>,
}

/// What a device saw: messages per channel index.
pub type Counts = HashMap<usize, u64>;

/// A frame as a device reads every one: its opcode, sequence and name, with the payload left
/// unparsed until the frame turns out to matter (a delivery is read with two small borrowed
/// parses, never into a whole event: the harness must keep up with the edges it measures).
#[derive(Deserialize)]
struct Envelope<'a> {
    op: Opcode,
    #[serde(default)]
    s: Option<u64>,
    #[serde(default, borrow)]
    t: Option<&'a str>,
    #[serde(borrow)]
    d: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(borrow)]
    channel_id: &'a str,
    #[serde(borrow)]
    content: &'a str,
}

#[derive(Deserialize)]
struct Acked<'a> {
    #[serde(borrow)]
    nonce: Option<&'a str>,
}

struct Tracking {
    last: FxHashMap<usize, (u64, u64)>,
    seq: u64,
    /// Sends not yet acknowledged, by nonce: after a resume they are sent again with the same
    /// nonce, as a real client does (the edge stores a retried send once and acknowledges it).
    pending: HashMap<String, String>,
    /// Deliveries counted and their latencies, not yet added to the worker's totals: a device
    /// adds them once it has read everything its socket holds, not once per frame.
    received: u64,
    latencies: Vec<u64>,
    /// The same deliveries' latencies to the kernel's receipt of them.
    arrivals: Vec<u64>,
    /// When what is being read was read (microseconds since the run's epoch): once per wake,
    /// for everything the socket held then, not once per frame.
    now: u64,
    /// When the kernel received it (the run's clock; `now` if the kernel did not say).
    arrived: u64,
    /// Connections made after the first (resumes).
    connections: u64,
}

impl Tracking {
    fn new() -> Self {
        Self {
            last: FxHashMap::default(),
            seq: 0,
            pending: HashMap::new(),
            received: 0,
            latencies: Vec::new(),
            arrivals: Vec::new(),
            now: 0,
            arrived: 0,
            connections: 0,
        }
    }

    /// Adds what this device counted since the last time to the worker's totals.
    fn report(&mut self, index: usize, shared: &Shared) {
        if self.received > 0 {
            shared
                .received
                .fetch_add(std::mem::take(&mut self.received), Ordering::Relaxed);
        }
        if !self.latencies.is_empty() {
            if let Some(timeline) = &shared.timeline {
                timeline.record(self.now, &self.latencies);
            }
            shared.send_to_receive.record_all(index, &self.latencies);
            shared.send_to_arrival.record_all(index, &self.arrivals);
            self.latencies.clear();
            self.arrivals.clear();
        }
    }

    /// Takes the time of a read that just returned on `socket`: now, and the kernel's receipt.
    fn read_at(&mut self, socket: &Socket, shared: &Shared) {
        self.now = shared.micros();
        self.arrived = socket
            .arrived()
            .map_or(self.now, |at| at.saturating_sub(shared.epoch_micros))
            .min(self.now);
    }
}

impl Device {
    /// Where this device's `n`th connection comes from: two ports of the source address are its
    /// own (its first connection and its resumes take turns), so thousands of devices connecting
    /// at once never make the kernel search for a free port.
    fn source(&self, n: u64) -> client::Source {
        let slot = (self.index as u64 * 2 + n % 2) % u64::from(SOURCE_PORTS);
        client::Source {
            ip: self.source,
            port: FIRST_SOURCE_PORT + slot as u16,
        }
    }

    /// Connects and identifies; the session runs in the returned task until `stop`.
    pub async fn start(
        self,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<tokio::task::JoinHandle<Counts>> {
        let (socket, ready) = client::connect(&self.gateway, self.source(0), &self.token).await?;
        Ok(tokio::spawn(self.run(
            socket,
            ready.session_id,
            shared,
            commands,
            stop,
        )))
    }

    async fn run(
        self,
        mut socket: Socket,
        session_id: String,
        shared: Arc<Shared>,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) -> Counts {
        let mut tracking = Tracking::new();
        let mut sent = 0u64;
        let mut beat = tokio::time::interval(Duration::from_secs(30));
        beat.tick().await;
        tracking.read_at(&socket, &shared);
        loop {
            // Every frame the socket's buffer holds (after a read, or left from the handshake or
            // a resume), then the totals once.
            let mut open = true;
            let mut took = false;
            while let Some(frame) = socket.frame() {
                took = true;
                if !self.take(&frame, &shared, &mut tracking) {
                    open = false;
                    break;
                }
            }
            if took {
                tracking.report(self.index, &shared);
            }
            if !open {
                break;
            }
            tokio::select! {
                filled = socket.fill() => {
                    tracking.read_at(&socket, &shared);
                    if !matches!(filled, Ok(true)) {
                        shared.ended(0);
                        break;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Send(channel)) => {
                        sent += 1;
                        let now = shared.micros();
                        let nonce = format!("{}:{sent}:{channel}:{now}", self.index);
                        let frame = ClientFrame::MessageSend(MessageSend {
                            channel_id: self.channel_ids[channel],
                            content: now.to_string(),
                            nonce: Some(nonce.clone()),
                            message_reference: None,
                            attachments: Vec::new(),
                            flags: 0,
                        })
                        .encode();
                        let sent = socket.send_text(&frame).await;
                        tracking.pending.insert(nonce, frame);
                        if sent.is_err() {
                            shared.ended(0);
                            break;
                        }
                    }
                    Some(Command::Reconnect) => {
                        drop(socket);
                        let resumed = self.resume(&session_id, &shared, &mut tracking).await;
                        tracking.report(self.index, &shared);
                        match resumed {
                            Ok(resumed) => {
                                socket = resumed;
                                // Sends whose acknowledgement the dropped socket took with it.
                                // A socket that fails here ends on its next read.
                                for frame in tracking.pending.values() {
                                    if socket.send_text(frame).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            Err(e) => {
                                tracing_error(&e);
                                shared.resume_failures.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    None => {}
                },
                _ = beat.tick() => {
                    let frame = ClientFrame::Heartbeat(Some(tracking.seq)).encode();
                    if socket.send_text(&frame).await.is_err() {
                        shared.ended(0);
                        break;
                    }
                }
                _ = stop.changed() => {
                    let _ = socket.close().await;
                    break;
                }
            }
        }
        tracking.report(self.index, &shared);
        tracking
            .last
            .into_iter()
            .map(|(channel, (_, count))| (channel, count))
            .collect()
    }

    /// One message from the socket; `false` when the session is over.
    fn take(
        &self,
        frame: &anyhow::Result<Frame<'_>>,
        shared: &Shared,
        tracking: &mut Tracking,
    ) -> bool {
        match frame {
            Ok(Frame::Text(text)) => self.read(text, shared, tracking),
            Ok(Frame::Close(close)) => {
                shared.ended(close.map_or(0, |(code, _)| code));
                return false;
            }
            Ok(Frame::Other) => {}
            Err(_) => {
                shared.ended(0);
                return false;
            }
        }
        true
    }

    fn read(&self, text: &str, shared: &Shared, tracking: &mut Tracking) {
        // Nearly every frame is a MESSAGE_CREATE: read it without parsing it.
        if let Some(created) = scan::message_create(text) {
            return self.created(created, shared, tracking);
        }
        let Ok(frame) = serde_json::from_str::<Envelope<'_>>(text) else {
            return;
        };
        match (frame.op, frame.t) {
            (Opcode::Dispatch, Some(name)) if name == <&str>::from(EventKind::MessageCreate) => {
                let (Some(seq), Some(d)) = (frame.s, frame.d) else {
                    return;
                };
                let Ok(created) = serde_json::from_str::<Created<'_>>(d.get()) else {
                    return;
                };
                let created = scan::Created {
                    seq,
                    channel_id: created.channel_id,
                    content: created.content,
                };
                self.created(created, shared, tracking);
            }
            (Opcode::Dispatch, _) => {
                if let Some(s) = frame.s {
                    tracking.seq = tracking.seq.max(s);
                }
            }
            (Opcode::Ack, _) => {
                let Some(nonce) = frame
                    .d
                    .and_then(|d| serde_json::from_str::<Acked<'_>>(d.get()).ok())
                    .and_then(|a| a.nonce)
                else {
                    return;
                };
                let mut parts = nonce.rsplitn(3, ':');
                let sent_at = parts.next().and_then(|t| t.parse::<u64>().ok());
                let channel = parts.next().and_then(|c| c.parse::<usize>().ok());
                if tracking.pending.remove(nonce).is_none() {
                    return; // not ours, or acknowledged already
                }
                if let (Some(sent_at), Some(channel)) = (sent_at, channel) {
                    shared.acked[channel].fetch_add(1, Ordering::Relaxed);
                    shared
                        .send_to_ack
                        .record(self.index, tracking.now.saturating_sub(sent_at));
                    shared
                        .send_to_ack_arrival
                        .record(self.index, tracking.arrived.saturating_sub(sent_at));
                }
            }
            (Opcode::Error, _) => {
                shared.send_errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// One MESSAGE_CREATE: checked against the channel's last sequence and counted. What it adds
    /// to the worker's totals waits in `tracking` until [`Tracking::report`].
    fn created(&self, created: scan::Created<'_>, shared: &Shared, tracking: &mut Tracking) {
        let Some(&channel) = self.channels.get(created.channel_id) else {
            return;
        };
        let s = created.seq;
        tracking.seq = tracking.seq.max(s);
        let (last, count) = tracking.last.entry(channel).or_insert((0, 0));
        if s <= *last {
            shared.disorder.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = s;
        *count += 1;
        tracking.received += 1;
        if let Ok(sent_at) = created.content.parse::<u64>() {
            tracking
                .latencies
                .push(tracking.now.saturating_sub(sent_at));
            tracking
                .arrivals
                .push(tracking.arrived.saturating_sub(sent_at));
        }
    }

    /// A new socket, RESUME with the highest sequence seen; the replay is read (and checked)
    /// like live traffic.
    async fn resume(
        &self,
        session_id: &str,
        shared: &Shared,
        tracking: &mut Tracking,
    ) -> anyhow::Result<Socket> {
        let _slot = shared
            .resume_slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tracking.connections += 1;
        let mut socket = client::open(&self.gateway, self.source(tracking.connections)).await?;
        let resume = ClientFrame::Resume(Resume {
            token: self.token.clone(),
            session_id: session_id.to_owned(),
            seq: tracking.seq,
        });
        socket.send_text(&resume.encode()).await?;
        while let Some(frame) = socket.next().await {
            let text = match frame? {
                Frame::Text(text) => text,
                Frame::Close(close) => bail!(
                    "the edge closed the socket during the resume ({})",
                    close.map_or_else(|| "no close code".to_owned(), |(code, _)| code.to_string())
                ),
                Frame::Other => continue,
            };
            match serde_json::from_str::<Envelope<'_>>(text) {
                Ok(frame) if frame.op == Opcode::InvalidSession => {
                    bail!("the resume was refused (INVALID_SESSION)");
                }
                Ok(frame)
                    if frame.op == Opcode::Dispatch
                        && frame.t == Some(DispatchKind::Resumed.into()) =>
                {
                    let since = shared.micros() - shared.storm_started.load(Ordering::Relaxed);
                    shared.resumed.lock().await.push(since as f64 / 1e6);
                    return Ok(socket);
                }
                _ => {}
            }
            tracking.now = shared.micros();
            tracking.arrived = tracking.now;
            self.read(text, shared, tracking);
        }
        bail!("the socket closed during the resume")
    }
}

fn tracing_error(e: &anyhow::Error) {
    eprintln!("loadtest: a device could not resume: {e:#}");
}
