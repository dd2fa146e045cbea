//! Live delivery through messaging faults: people chat across two edges at a few hundred messages
//! a second while NATS is SIGKILLed and restarted, or while one edge is cut off from it, or while
//! the stream's republish silently loses an event. Afterwards every acknowledged message reached
//! every member's every device exactly once, in order per channel.
//!
//! Each test runs its own NATS server (its own port and store), never the stack's. Devices behave
//! as the apps do: they read all the time, resume when closed, and send again (same nonce) what
//! was not acknowledged. Run with `--nocapture` to see how long repaired events took.

#[allow(dead_code)]
#[path = "gateway/support.rs"]
mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shared::Snowflake;
use shared::testing::{self, NatsServer, Stack, TcpProxy};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use support::{Engines, User, World};

/// Limits out of the way of a few hundred messages a second; a periodic check every 2 s.
const EDGE: &[&str] = &[
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
    /// Times the socket closed and the device resumed.
    resumes: u32,
    /// For each resume: when, and the sequence it resumed from.
    resumed: Vec<(Instant, u64)>,
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
        gateway: String,
        user: &User,
        sends_to: Option<Snowflake>,
        sending: Sending,
    ) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut socket = Socket::identify(&gateway, user).await;
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
        gateway: &str,
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
                }
            }
            _ => {}
        }
    }

    async fn resume(&mut self, gateway: &str, user: &User, name: &str, log: &Mutex<Log>) {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(gateway).await else {
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
struct Waits {
    /// From the end of the fault to the arrival of an event acknowledged before it.
    repaired: Duration,
    /// From acknowledgement to arrival, for events acknowledged after the fault.
    after: Duration,
}

/// Three people, two channels, each person on both edges; two devices send in each channel, one
/// through each edge.
struct Chat {
    devices: Vec<Device>,
    /// Each channel's members.
    members: HashMap<Snowflake, Vec<Snowflake>>,
    sending: Sending,
}

impl Chat {
    async fn start(world: &World) -> Self {
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
            let device =
                Device::start(&name, world.gateway(edge), user, sends_to, sending.clone()).await;
            devices.push(device);
        }
        // Every device is connected: what is sent from now on is live for all of them.
        sending.start.cancel();
        Self {
            devices,
            members,
            sending,
        }
    }

    fn acked(&self) -> Vec<(Snowflake, String, Instant)> {
        self.devices
            .iter()
            .flat_map(|d| d.log.lock().unwrap().acked.clone())
            .collect()
    }

    /// Stops sending, waits until every device has every acknowledged message (or a minute),
    /// then checks: each once, in order per channel. Answers how long devices waited, with the
    /// fault ending at `since`.
    async fn settle_and_check(&self, since: Instant) -> Waits {
        self.sending.stop.cancel();
        // Senders finish what they have out (retries included) before the count is final.
        testing::eventually(
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
fn logs() {
    if let Ok(filter) = std::env::var("NATTER_TEST_LOG") {
        let _ = shared::telemetry::init_tracing(&shared::config::LogConfig {
            format: shared::config::LogFormat::Text,
            filter,
        });
    }
}

#[tokio::test]
async fn a_nats_server_killed_mid_chat_and_restarted_loses_no_delivery() {
    logs();
    let mut nats = NatsServer::start(&Stack::get()).await;
    // Each edge reaches NATS through a path that opens again only once the restarted server is
    // healthy (JetStream up), as a health-checked load balancer would: each edge then comes
    // back after its own random backoff, and the first stores and republishes while the other
    // is still away.
    let paths = [
        TcpProxy::start(nats.addr()).await,
        TcpProxy::start(nats.addr()).await,
    ];
    let mut world = World::start_on(Engines::nats(nats.url()), 0, EDGE).await;
    for (worker, path) in (1..).zip(&paths) {
        let through = format!("--nats-url={}", path.nats_url());
        let mut args = EDGE.to_vec();
        args.push(&through);
        world.add_edge(worker, &args).await;
    }
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;

    nats.kill();
    paths.iter().for_each(TcpProxy::cut);
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.resume().await;
    paths.iter().for_each(TcpProxy::restore);
    let restarted = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 500).await;

    chat.settle_and_check(restarted).await;
}

#[tokio::test]
async fn an_edge_cut_off_from_nats_for_seconds_loses_no_delivery() {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let proxy = TcpProxy::start(nats.addr()).await;
    let mut world = World::start_on(Engines::nats(nats.url()), 1, EDGE).await;
    let through_proxy = format!("--nats-url={}", proxy.nats_url());
    let mut args = EDGE.to_vec();
    args.push(&through_proxy);
    world.add_edge(2, &args).await;
    let chat = Chat::start(&world).await;
    wait_for_traffic(&chat, 200).await;

    proxy.cut();
    let before = chat.acked().len();
    // Chat goes on through the other edge meanwhile.
    wait_for_traffic(&chat, before + 300).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let restored = Instant::now();
    let before = chat.acked().len();
    wait_for_traffic(&chat, before + 300).await;

    chat.settle_and_check(restored).await;
}

#[tokio::test]
async fn an_event_the_republish_lost_with_nothing_after_it_arrives_by_the_periodic_check() {
    logs();
    let nats = NatsServer::start(&Stack::get()).await;
    let world = World::start_on(Engines::nats(nats.url()), 2, EDGE).await;
    let (ann, bob) = (world.sign_up("ann").await, world.sign_up("bob").await);
    let room = world.channel(&ann, "room", &[&bob]).await;
    let mut ann_0 = support::Client::connect(&world.gateway(0), &ann).await;
    let mut bob_1 = support::Client::connect(&world.gateway(1), &bob).await;
    let ack = ann_0.send(room, "heard live", "n1").await;
    assert_eq!(ack["op"], 24, "{ack}");
    assert_eq!(bob_1.messages(1).await, ["heard live"]);

    // The stream stores the next message but does not republish it: a loss nothing announces
    // (no reconnect, no slow consumer), and no later message shows the gap.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let name = format!("{}_chat", world.prefix);
    let config = js
        .get_stream(&name)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    js.update_stream(async_nats::jetstream::stream::Config {
        republish: None,
        ..config.clone()
    })
    .await
    .unwrap();
    let ack = ann_0.send(room, "lost live", "n2").await;
    assert_eq!(ack["op"], 24, "{ack}");
    let acked = Instant::now();
    js.update_stream(config).await.unwrap();

    let mut waited = Duration::ZERO;
    for client in [&mut bob_1, &mut ann_0] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "the lost event never arrived");
            match client.next().await {
                Some(frame) if frame["d"]["content"] == "lost live" => break,
                // The sender's own copy of the first message, held while it waited for ACKs.
                Some(frame) => assert_ne!(frame["d"]["content"], "lost live"),
                None => {}
            }
        }
        waited = waited.max(acked.elapsed());
    }
    eprintln!("the lost event reached both devices {waited:?} after its ACK (a check every 2 s)");
    bob_1.no_messages().await;
}

/// Waits until `count` messages in all have been acknowledged.
async fn wait_for_traffic(chat: &Chat, count: usize) {
    testing::eventually("chat traffic", Duration::from_secs(120), || async {
        (chat.acked().len() >= count).then_some(())
    })
    .await;
}
