//! Chat under load for fault tests: three people in two channels, each on two edges, devices
//! that read all the time, resume when closed and send again (same nonce) what was not
//! acknowledged, as the apps do. Afterwards [`Chat::settle_and_check`] checks every acknowledged
//! message reached every member's every device exactly once, in order per channel, and
//! [`Chat::check_stored`] that the history holds it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proto::Snowflake;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::support::{User, World};

/// Limits out of the way of a few hundred messages a second; a periodic check every 2 s.
pub(crate) const EDGE: &[&str] = &[
    "--send-rate=1000000/1s",
    "--frames-per-minute=10000000",
    "--delivery-check-interval=2s",
];

/// How often one sending device sends: four of them make about 400 messages a second.
const SEND_EVERY: Duration = Duration::from_millis(10);
/// Sends a device has out without an answer before it waits.
const IN_FLIGHT: usize = 16;

/// What one device saw.
#[derive(Debug, Default)]
struct Log {
    /// Every MESSAGE_CREATE: channel, message id, sequence, when.
    received: Vec<(Snowflake, String, u64, Instant)>,
    /// Every acknowledged send: channel, message id, when.
    acked: Vec<(Snowflake, String, Instant)>,
    /// When a send was answered "not stored" (op 25; the device sends it again).
    refused: Vec<Instant>,
    /// Times the socket closed and the device resumed.
    resumes: u32,
    /// For each resume: when, and the sequence it resumed from.
    resumed: Vec<(Instant, u64)>,
}

/// Where a device connects.
#[derive(Debug, Clone)]
pub(crate) enum Gateway {
    /// Always this edge (`ws://…/gateway`): it comes back on the same port.
    Fixed(String),
    /// This edge first; after a close, wherever discovery (`GET /api/v1/gateway`) says, asked of
    /// the first of these auth instances that answers, as the apps do.
    Discovered { first: String, auths: Vec<String> },
}

impl Gateway {
    fn first(&self) -> &str {
        match self {
            Self::Fixed(url) | Self::Discovered { first: url, .. } => url,
        }
    }

    /// Where to connect again, if anyone says.
    async fn again(&self, user: &User) -> Option<String> {
        let auths = match self {
            Self::Fixed(url) => return Some(url.clone()),
            Self::Discovered { auths, .. } => auths,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        for auth in auths {
            let Ok(response) = http
                .get(format!("{auth}/api/v1/gateway"))
                .bearer_auth(&user.token)
                .send()
                .await
            else {
                continue;
            };
            if response.status() != 200 {
                continue;
            }
            let body: Value = response.json().await.ok()?;
            return body["url"].as_str().map(str::to_owned);
        }
        None
    }
}

/// A device: one socket to one edge, read all the time, resumed when it closes.
struct Device {
    name: String,
    user: Snowflake,
    log: Arc<Mutex<Log>>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    async fn start(
        name: &str,
        gateway: Gateway,
        user: &User,
        sends_to: Option<Snowflake>,
        sending: Sending,
    ) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut socket = Socket::identify(gateway.first(), user).await;
        let (log2, user2, name2) = (Arc::clone(&log), user.clone(), name.to_owned());
        let task = tokio::spawn(async move {
            socket
                .run(&gateway, &user2, &name2, sends_to, &log2, sending)
                .await;
        });
        Self {
            name: name.to_owned(),
            user: user.id,
            log,
            task,
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When sending devices start (once every device is connected) and stop sending new messages.
#[derive(Clone, Default)]
struct Sending {
    start: CancellationToken,
    stop: CancellationToken,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Socket {
    ws: Ws,
    session_id: String,
    seq: u64,
}

impl Socket {
    async fn open(gateway: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(gateway)
            .await
            .expect("the edge accepts");
        ws
    }

    async fn identify(gateway: &str, user: &User) -> Self {
        let mut ws = Self::open(gateway).await;
        send(&mut ws, json!({"op": 2, "d": {"token": user.token}})).await;
        loop {
            let frame = next(&mut ws).await.expect("READY");
            if frame["t"] == "READY" {
                return Self {
                    ws,
                    session_id: frame["d"]["session_id"].as_str().unwrap().to_owned(),
                    seq: frame["d"]["seq"].as_u64().unwrap(),
                };
            }
        }
    }

    /// Reads, sends and resumes until the test stops the device.
    async fn run(
        &mut self,
        gateway: &Gateway,
        user: &User,
        name: &str,
        sends_to: Option<Snowflake>,
        log: &Mutex<Log>,
        sending: Sending,
    ) {
        // Nonces sent and not yet acknowledged, by number; the next number to send.
        let mut pending: BTreeMap<u64, Instant> = BTreeMap::new();
        let mut retry: Vec<u64> = Vec::new();
        let mut next_nonce = 0u64;
        let mut send_tick = tokio::time::interval(SEND_EVERY);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                frame = self.ws.next() => {
                    let frame = match frame {
                        Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text).unwrap(),
                        Some(Ok(_)) => continue,
                        // Closed: resume like an app, and send again what was not answered.
                        Some(Err(_)) | None => {
                            self.resume(gateway, user, name, log).await;
                            retry.extend(pending.keys().copied());
                            pending.clear();
                            continue;
                        }
                    };
                    self.note(&frame, name, log, &mut pending, &mut retry);
                }
                _ = send_tick.tick(), if sends_to.is_some() && pending.len() < IN_FLIGHT => {
                    if !sending.start.is_cancelled() {
                        continue;
                    }
                    let number = match retry.pop() {
                        Some(number) => number,
                        None if sending.stop.is_cancelled() => continue,
                        None => { next_nonce += 1; next_nonce }
                    };
                    let channel = sends_to.unwrap();
                    let frame = json!({"op": 20, "d": {
                        "channel_id": channel,
                        "content": format!("{name} {number}"),
                        "nonce": format!("{name}-{number}"),
                    }});
                    pending.insert(number, Instant::now());
                    if self.ws.send(Message::Text(frame.to_string().into())).await.is_err() {
                        continue;
                    }
                }
                _ = heartbeat.tick() => {
                    let _ = self.ws.send(Message::Text(json!({"op": 1, "d": self.seq}).to_string().into())).await;
                }
            }
        }
    }

    fn note(
        &mut self,
        frame: &Value,
        name: &str,
        log: &Mutex<Log>,
        pending: &mut BTreeMap<u64, Instant>,
        retry: &mut Vec<u64>,
    ) {
        if let Some(s) = frame["s"].as_u64() {
            self.seq = self.seq.max(s);
        }
        let nonce_number = || {
            frame["d"]["nonce"]
                .as_str()
                .and_then(|n| n.strip_prefix(&format!("{name}-")))
                .and_then(|n| n.parse::<u64>().ok())
        };
        match (frame["op"].as_u64(), frame["t"].as_str()) {
            (Some(0), Some("MESSAGE_CREATE")) => {
                let d = &frame["d"];
                log.lock().unwrap().received.push((
                    d["channel_id"].as_str().unwrap().parse().unwrap(),
                    d["id"].as_str().unwrap().to_owned(),
                    frame["s"].as_u64().expect("a stored event has a sequence"),
                    Instant::now(),
                ));
            }
            (Some(24), _) => {
                if let Some(number) = nonce_number() {
                    pending.remove(&number);
                    let message = &frame["d"]["message"];
                    log.lock().unwrap().acked.push((
                        message["channel_id"].as_str().unwrap().parse().unwrap(),
                        message["id"].as_str().unwrap().to_owned(),
                        Instant::now(),
                    ));
                }
            }
            // Not stored (NATS was away): send it again, with the same nonce.
            (Some(25), _) => {
                if let Some(number) = nonce_number() {
                    pending.remove(&number);
                    retry.push(number);
                    log.lock().unwrap().refused.push(Instant::now());
                }
            }
            _ => {}
        }
    }

    async fn resume(&mut self, gateway: &Gateway, user: &User, name: &str, log: &Mutex<Log>) {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Some(url) = gateway.again(user).await else {
                continue;
            };
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
                continue;
            };
            let resumed_from = self.seq;
            let resume = json!({"op": 6, "d": {
                "token": user.token, "session_id": self.session_id, "seq": self.seq,
            }});
            send(&mut ws, resume).await;
            let mut replayed = Vec::new();
            let resumed = loop {
                let Some(frame) = next(&mut ws).await else {
                    break false;
                };
                assert_ne!(frame["op"], 9, "{name}: the resume was refused");
                if frame["t"] == "RESUMED" {
                    break true;
                }
                replayed.push(frame);
            };
            if !resumed {
                continue;
            }
            self.ws = ws;
            let (mut pending, mut retry) = (BTreeMap::new(), Vec::new());
            for frame in &replayed {
                self.note(frame, name, log, &mut pending, &mut retry);
            }
            let mut log = log.lock().unwrap();
            log.resumes += 1;
            log.resumed.push((Instant::now(), resumed_from));
            return;
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send a frame");
}

async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// How long devices waited, in the worst case.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    /// From the end of the fault to the arrival of an event acknowledged before it.
    pub(crate) repaired: Duration,
    /// From acknowledgement to arrival, for events acknowledged after the fault.
    pub(crate) after: Duration,
}

/// Three people, two channels, each person on both edges; two devices send in each channel, one
/// through each edge.
pub(crate) struct Chat {
    devices: Vec<Device>,
    /// Ann, Bob and Cat.
    users: Vec<User>,
    /// Each channel's members.
    members: HashMap<Snowflake, Vec<Snowflake>>,
    sending: Sending,
}

impl Chat {
    pub(crate) async fn start(world: &World) -> Self {
        let gateways = [0, 1].map(|edge| Gateway::Fixed(world.gateway(edge)));
        Self::start_on(world, gateways).await
    }

    /// Like [`Chat::start`], each person's two devices on these two gateways.
    pub(crate) async fn start_on(world: &World, gateways: [Gateway; 2]) -> Self {
        let ann = world.sign_up("ann").await;
        let bob = world.sign_up("bob").await;
        let cat = world.sign_up("cat").await;
        let room = world.channel(&ann, "room", &[&bob, &cat]).await;
        let pair = world.channel(&bob, "pair", &[&cat]).await;
        let members = HashMap::from([
            (room, vec![ann.id, bob.id, cat.id]),
            (pair, vec![bob.id, cat.id]),
        ]);
        let sending = Sending::default();
        let mut devices = Vec::new();
        for (user, edge, sends_to) in [
            (&ann, 0, Some(room)),
            (&ann, 1, None),
            (&bob, 0, Some(pair)),
            (&bob, 1, Some(room)),
            (&cat, 0, None),
            (&cat, 1, Some(pair)),
        ] {
            let name = format!("{}{edge}", user.name);
            let device = Device::start(
                &name,
                gateways[edge].clone(),
                user,
                sends_to,
                sending.clone(),
            )
            .await;
            devices.push(device);
        }
        // Every device is connected: what is sent from now on is live for all of them.
        sending.start.cancel();
        Self {
            devices,
            users: vec![ann, bob, cat],
            members,
            sending,
        }
    }

    /// Sends answered "not stored" so far.
    pub(crate) fn refused(&self) -> usize {
        self.devices
            .iter()
            .map(|d| d.log.lock().unwrap().refused.len())
            .sum()
    }

    /// The longest time after `from` (and before `until`) in which no send was acknowledged: how
    /// long sending stalled through a fault that began at `from`.
    pub(crate) fn stall(&self, from: Instant, until: Instant) -> Duration {
        let mut times: Vec<Instant> = self
            .acked()
            .into_iter()
            .map(|(_, _, at)| at)
            .filter(|at| *at > from && *at < until)
            .collect();
        times.sort();
        let mut stall = Duration::ZERO;
        let mut last = from;
        for at in times.into_iter().chain([until]) {
            stall = stall.max(at - last);
            last = at;
        }
        stall
    }

    /// Waits until the store holds everything in the stream, then reads each channel's whole
    /// history back through the edge at `edge` (`http://host:port`) as a member would, and checks
    /// every acknowledged message is there once. Answers how many acknowledged messages the
    /// history holds.
    pub(crate) async fn check_stored(&self, world: &World, edge: &str) -> usize {
        world.persisted().await;
        let acked = self.acked();
        let mut stored = 0;
        for (channel, members) in &self.members {
            let reader = self
                .users
                .iter()
                .find(|u| u.id == members[0])
                .expect("a member of the channel");
            let history = history(edge, reader, *channel).await;
            let ids: HashSet<&String> = history.iter().collect();
            assert_eq!(
                ids.len(),
                history.len(),
                "a message stored twice in {channel}"
            );
            let missing: Vec<&String> = acked
                .iter()
                .filter(|(c, id, _)| c == channel && !ids.contains(id))
                .map(|(_, id, _)| id)
                .collect();
            assert!(
                missing.is_empty(),
                "{} acknowledged messages of {channel} missing from its history, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            stored += acked.iter().filter(|(c, _, _)| c == channel).count();
        }
        stored
    }

    /// The ids of every acknowledged message.
    pub(crate) fn acked_ids(&self) -> Vec<String> {
        self.acked().into_iter().map(|(_, id, _)| id).collect()
    }

    /// Reads the newest page of each channel through the edge at `edge` once, as a member would:
    /// `Err` names the first channel that did not answer 200 and what it answered instead.
    pub(crate) async fn read_history(
        &self,
        http: &reqwest::Client,
        edge: &str,
    ) -> Result<(), String> {
        for (channel, members) in &self.members {
            let reader = self.users.iter().find(|u| u.id == members[0]).unwrap();
            let url = format!("{edge}/api/v1/channels/{channel}/messages?limit=50");
            let status = http
                .get(&url)
                .bearer_auth(&reader.token)
                .send()
                .await
                .map(|response| response.status());
            match status {
                Ok(status) if status == 200 => {}
                Ok(status) => return Err(format!("{channel}: {status}")),
                Err(e) => return Err(format!("{channel}: {e}")),
            }
        }
        Ok(())
    }

    pub(crate) fn acked(&self) -> Vec<(Snowflake, String, Instant)> {
        self.devices
            .iter()
            .flat_map(|d| d.log.lock().unwrap().acked.clone())
            .collect()
    }

    /// Stops sending, waits until every device has every acknowledged message (or a minute),
    /// then checks: each once, in order per channel. Answers how long devices waited, with the
    /// fault ending at `since`.
    pub(crate) async fn settle_and_check(&self, since: Instant) -> Waits {
        self.sending.stop.cancel();
        // Senders finish what they have out (retries included) before the count is final.
        testkit::eventually(
            "the senders to be answered",
            Duration::from_secs(60),
            || async {
                let before = self.acked().len();
                tokio::time::sleep(Duration::from_millis(500)).await;
                (self.acked().len() == before).then_some(())
            },
        )
        .await;
        let acked = self.acked();
        let missing = || {
            let mut missing = Vec::new();
            for device in &self.devices {
                let log = device.log.lock().unwrap();
                let got: HashSet<&String> = log.received.iter().map(|(_, id, _, _)| id).collect();
                for (channel, id, _) in &acked {
                    if self.members[channel].contains(&device.user) && !got.contains(id) {
                        missing.push(format!("{} lacks {id} of {channel}", device.name));
                    }
                }
            }
            missing
        };
        let waited = Instant::now();
        while !missing().is_empty() && waited.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let missing = missing();
        if !missing.is_empty() {
            self.explain(&missing, since);
        }
        assert!(
            missing.is_empty(),
            "{} deliveries missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // Anything doubled would have come by now too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let acked_at: HashMap<&String, Instant> =
            acked.iter().map(|(_, id, at)| (id, *at)).collect();
        let mut waits = Waits::default();
        for device in &self.devices {
            let log = device.log.lock().unwrap();
            let mut last_seq: HashMap<Snowflake, u64> = HashMap::new();
            for (channel, id, seq, at) in &log.received {
                let last = last_seq.entry(*channel).or_default();
                assert!(
                    *seq > *last,
                    "{}: {id} (seq {seq}) of {channel} after seq {last}: doubled or out of order",
                    device.name
                );
                *last = *seq;
                match acked_at.get(id) {
                    // Acknowledged before the fault ended, received after: repaired (or resumed).
                    Some(acked) if *acked < since && *at > since => {
                        waits.repaired = waits.repaired.max(*at - since);
                    }
                    Some(acked) if *acked >= since => {
                        waits.after = waits.after.max(at.saturating_duration_since(*acked));
                    }
                    _ => {}
                }
            }
        }
        let resumes: u32 = self
            .devices
            .iter()
            .map(|d| d.log.lock().unwrap().resumes)
            .sum();
        eprintln!(
            "{} messages acknowledged, each on every member's devices once and in order; \
             device resumes: {resumes}; the last event acknowledged before the fault ended reached \
             its last device {:?} after; the slowest acknowledged after took {:?}",
            acked.len(),
            waits.repaired,
            waits.after
        );
        waits
    }

    /// Says, for a failed run, what each device got and where the missing events were.
    fn explain(&self, missing: &[String], since: Instant) {
        let seq_of: HashMap<String, u64> = self
            .devices
            .iter()
            .flat_map(|d| {
                let log = d.log.lock().unwrap();
                let seqs: Vec<_> = log
                    .received
                    .iter()
                    .map(|(_, id, seq, _)| (id.clone(), *seq))
                    .collect();
                seqs
            })
            .collect();
        for device in &self.devices {
            let log = device.log.lock().unwrap();
            let resumed: Vec<_> = log
                .resumed
                .iter()
                .map(|(at, seq)| (at.saturating_duration_since(since), *seq))
                .collect();
            eprintln!(
                "{}: received {}, acked {}, resumed at (after the fault, from seq) {resumed:?}",
                device.name,
                log.received.len(),
                log.acked.len(),
            );
        }
        for line in missing.iter().take(10) {
            let mut words = line.split(' ');
            let (name, id) = (words.next().unwrap(), words.nth(1).unwrap());
            let seq = seq_of.get(id).copied().unwrap_or_default();
            let device = self.devices.iter().find(|d| d.name == name).unwrap();
            let log = device.log.lock().unwrap();
            let near: Vec<u64> = log
                .received
                .iter()
                .map(|(_, _, s, _)| *s)
                .filter(|s| s.abs_diff(seq) < 6)
                .collect();
            eprintln!("{name} lacks seq {seq}; around it, it got seqs {near:?} in that order");
        }
    }
}

/// `NATTER_TEST_LOG=edge=info` shows the services' logs.
pub(crate) use testkit::logs;

/// Waits until `count` messages in all have been acknowledged.
pub(crate) async fn wait_for_traffic(chat: &Chat, count: usize) {
    testkit::eventually("chat traffic", Duration::from_secs(120), || async {
        (chat.acked().len() >= count).then_some(())
    })
    .await;
}

/// Every message id of `channel`, oldest first, read as a client catches up: pages of 100 after
/// the newest id of the page before.
async fn history(edge: &str, user: &User, channel: Snowflake) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    let mut anchor = "1".to_owned();
    loop {
        let url = format!("{edge}/api/v1/channels/{channel}/messages?limit=100&after={anchor}");
        let response = http
            .get(&url)
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("the edge answers");
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.expect("a page of messages");
        let ids: Vec<String> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        let Some(newest) = ids.first() else {
            return all;
        };
        anchor = newest.clone();
        all.extend(ids.into_iter().rev());
    }
}
