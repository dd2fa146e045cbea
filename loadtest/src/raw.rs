//! `raw`: the physical limit of delivery on this machine. A stand-in for the edge, in this
//! process, that does nothing but write: it answers a device's HELLO, IDENTIFY and READY like an
//! edge, then every `--tick` writes the MESSAGE_CREATE frames due since the last tick, each
//! encoded once (WebSocket header and payload) and shared, to every socket with one write each.
//! No NATS, no queues, no sessions: what is left is the system calls and the loopback network
//! under them, and the same devices reading (worker processes, as in every scenario). Its CPU per
//! delivery and latency beside the edges' are how close the edges come to the machine.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use proto::api::messages::Message;
use proto::api::users::{Status, User};
use proto::events::Event;
use proto::gateway::{Dispatch, Hello, Opcode, Ready};
use proto::{Snowflake, SnowflakeGenerator};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::device;
use crate::report::Percentiles;
use crate::timeline;
use crate::worker::{DeviceSpec, Fleet, Workers};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Sockets, each receiving every message.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Messages per second (each goes to every socket).
    #[arg(long, default_value_t = 400)]
    rate: u64,
    #[arg(long, default_value = "15s", value_parser = kit::config::duration)]
    duration: Duration,
    /// How often the due frames are written (the frames written per system call grow with it).
    #[arg(long, default_value = "2ms", value_parser = kit::config::duration)]
    tick: Duration,
    /// Source addresses (127.0.0.2, ...) to spread the sockets over.
    #[arg(long, default_value_t = 1)]
    sources: u8,
    #[command(flatten)]
    workers: Workers,
    #[arg(long, default_value = "loadtest-raw.json")]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct RawResult {
    connections: usize,
    offered_rate: u64,
    sent: u64,
    expected_deliveries: u64,
    delivered: u64,
    deliveries_per_second: f64,
    /// This process's CPU (the writer) per delivery, in microseconds.
    writer_cpu_micros_per_delivery: f64,
    /// The whole machine's CPU (the generator's workers and everything else) per delivery.
    machine_cpu_micros_per_delivery: f64,
    send_to_receive: Percentiles,
    /// The same to the moment the kernel received the frame, before the device read it.
    send_to_arrival: Percentiles,
}

/// The sockets a writer holds, after their READY.
type Sockets = Arc<Mutex<Vec<TcpStream>>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url: url::Url = format!("ws://{}/gateway", listener.local_addr()?).parse()?;
    let ids = SnowflakeGenerator::new(1022).expect("a worker id");
    let channel = ids.next_id();
    let sockets: Sockets = Arc::default();
    let accepting = tokio::spawn(accept(listener, Arc::clone(&sockets), ids.next_id()));

    let sources: Vec<IpAddr> = (0..args.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
        .collect();
    let devices = (0..args.connections)
        .map(|index| DeviceSpec {
            index,
            gateway: url.clone(),
            source: sources[index % sources.len()],
            token: "raw".to_owned(),
            channels: vec![0],
        })
        .collect();
    let epoch = device::unix_micros();
    let fleet = Fleet::start(
        &args.workers,
        epoch,
        &[channel.to_string()],
        devices,
        &[],
        0,
    )
    .await?;
    accepting.abort();
    let sockets = std::mem::take(&mut *sockets.lock().await);

    let cpu = process_cpu_seconds();
    let machine = timeline::CpuMark::take();
    let started = Instant::now();
    let (sent, sockets) = write(sockets, &ids, channel, &args, epoch).await;
    let expected = sent * sockets.len() as u64;
    settle(&fleet, expected).await;
    let delivered = fleet.progress().received;
    let seconds = started.elapsed().as_secs_f64();
    let writer_cpu = process_cpu_seconds() - cpu;
    let machine_cpu = machine.since().machine;
    let done = fleet.finish().await?;
    let result = RawResult {
        connections: sockets.len(),
        offered_rate: args.rate,
        sent,
        expected_deliveries: expected,
        delivered,
        deliveries_per_second: delivered as f64 / seconds,
        writer_cpu_micros_per_delivery: writer_cpu * 1e6 / delivered.max(1) as f64,
        machine_cpu_micros_per_delivery: machine_cpu * 1e6 / delivered.max(1) as f64,
        send_to_receive: (&Histogram::from(&done.send_to_receive)).into(),
        send_to_arrival: (&Histogram::from(&done.send_to_arrival)).into(),
    };
    println!(
        "raw {} msg/s: {} of {} delivered, {:.0} deliveries/s, CPU per delivery: the writer {:.2} us, the machine {:.2} us",
        result.offered_rate,
        result.delivered,
        result.expected_deliveries,
        result.deliveries_per_second,
        result.writer_cpu_micros_per_delivery,
        result.machine_cpu_micros_per_delivery
    );
    crate::report::print_percentiles(&[
        ("send -> receive", &result.send_to_receive),
        ("  at the socket", &result.send_to_arrival),
    ]);
    crate::report::write_json(&args.out, &result)?;
    println!("result written to {}", args.out.display());
    Ok(())
}

/// Answers HELLO, IDENTIFY and READY on every socket that connects, then hands it to the writers.
async fn accept(listener: TcpListener, sockets: Sockets, user: Snowflake) {
    let ready = Dispatch::Ready(Box::new(Ready {
        v: 1,
        session_id: "raw".to_owned(),
        seq: 0,
        user: User {
            id: user,
            username: "raw".to_owned(),
            display_name: None,
            avatar_url: None,
            bio: None,
            status: Status::Online,
        },
        channels: Vec::new(),
        guilds: Vec::new(),
        presences: Vec::new(),
        voice_states: Vec::new(),
        user_guild_settings: Vec::new(),
    }))
    .encode(None);
    let hello = serde_json::json!({"op": Opcode::Hello, "d": Hello { heartbeat_interval: 41_250 }})
        .to_string();
    while let Ok((tcp, _)) = listener.accept().await {
        let (sockets, ready, hello) = (Arc::clone(&sockets), ready.clone(), hello.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            if ws.send(WsMessage::Text(hello.into())).await.is_err() {
                return;
            }
            // IDENTIFY (whatever it says), then READY.
            let Some(Ok(_)) = ws.next().await else { return };
            if ws.send(WsMessage::Text(ready.into())).await.is_err() {
                return;
            }
            sockets.lock().await.push(ws.into_inner());
        });
    }
}

/// Writes the run's rate of messages for its duration, the frames due at each tick in one write
/// per socket (a writer task per core, each over its share of the sockets, writing what is due
/// since its last pass); messages sent, and the sockets back.
async fn write(
    sockets: Vec<TcpStream>,
    ids: &SnowflakeGenerator,
    channel: Snowflake,
    args: &Args,
    epoch: u64,
) -> (u64, Vec<TcpStream>) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut shares: Vec<Vec<TcpStream>> = (0..cores).map(|_| Vec::new()).collect();
    for (i, socket) in sockets.into_iter().enumerate() {
        shares[i % cores].push(socket);
    }
    let (senders, writers): (Vec<_>, Vec<_>) = shares
        .into_iter()
        .map(|mut share| {
            let (batches, mut due) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
            let writer = tokio::spawn(async move {
                // Everything due since the last pass goes in one write per socket: a writer
                // behind its ticks writes more frames per call, as a session writes what it has
                // waiting, rather than falling further behind.
                while let Some(first) = due.recv().await {
                    let mut frames = BytesMut::from(&first[..]);
                    while let Ok(more) = due.try_recv() {
                        frames.extend_from_slice(&more);
                    }
                    for socket in &mut share {
                        let _ = socket.write_all(&frames).await;
                    }
                }
                share
            });
            (batches, writer)
        })
        .unzip();
    let mut sent = 0;
    let started = Instant::now();
    let mut tick = tokio::time::interval(args.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < args.duration {
        tick.tick().await;
        let due = (args.rate as f64 * started.elapsed().as_secs_f64()) as u64;
        let mut batch = BytesMut::new();
        while sent < due {
            sent += 1;
            let now = device::unix_micros().saturating_sub(epoch);
            let frame = Event::MessageCreate(Message {
                id: ids.next_id(),
                channel_id: channel,
                author_id: channel,
                content: now.to_string(),
                nonce: None,
                edited_at: None,
                ..Default::default()
            })
            .encode_dispatch(Some(sent));
            put_text_frame(&mut batch, frame.as_bytes());
        }
        if !batch.is_empty() {
            let batch = batch.freeze();
            for writer in &senders {
                let _ = writer.send(batch.clone());
            }
        }
    }
    drop(senders);
    let mut sockets = Vec::new();
    for writer in writers {
        if let Ok(share) = writer.await {
            sockets.extend(share);
        }
    }
    (sent, sockets)
}

/// An unmasked server text frame: FIN and opcode, the length, the payload.
fn put_text_frame(out: &mut BytesMut, payload: &[u8]) {
    crate::ws::put_header(out, 0x1, payload.len(), false);
    out.put_slice(payload);
}

/// Until the devices have `expected` in all, or nothing has moved for 10 seconds.
async fn settle(fleet: &Fleet, expected: u64) {
    let mut last = (Instant::now(), 0);
    loop {
        let received = fleet.progress().received;
        if received >= expected {
            return;
        }
        if received != last.1 {
            last = (Instant::now(), received);
        } else if last.0.elapsed() > Duration::from_secs(10) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This process's user and system CPU seconds so far (Linux: /proc/self/stat, in clock ticks of
/// 1/100 s).
fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| timeline::parse_stat(&stat).map(|(_, ticks)| ticks))
        .map_or(0.0, |ticks| ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frames_length_takes_the_smallest_form() {
        let mut out = BytesMut::new();
        put_text_frame(&mut out, b"hi");
        assert_eq!(&out[..], b"\x81\x02hi");
        let mut out = BytesMut::new();
        put_text_frame(&mut out, &[b'x'; 300]);
        assert_eq!(&out[..4], b"\x81\x7e\x01\x2c");
        assert_eq!(out.len(), 304);
    }
}
