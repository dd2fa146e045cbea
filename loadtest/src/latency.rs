//! `latency`: one sender on the first edge and one receiver on the second, in one channel; the
//! sender posts at a fixed rate and both sides time stamps against the same clock (this process).
//! Reports send-to-acknowledge and send-to-receive percentiles, and loss: every acknowledged
//! message must arrive exactly once, in order, or the run fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{client, report};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    auth: client::Auth,

    /// Two gateway URLs: the sender connects to the first, the receiver to the last.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/gateway,ws://127.0.0.1:8090/gateway"
    )]
    gateway: Vec<url::Url>,

    /// Messages to send.
    #[arg(long, default_value_t = 2_000)]
    messages: u64,

    /// Messages per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,

    /// Where to write the JSON result.
    #[arg(long, default_value = "loadtest-latency.json")]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
}

impl From<&Histogram<u64>> for Percentiles {
    fn from(h: &Histogram<u64>) -> Self {
        Self {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

#[derive(Debug, Serialize)]
struct LatencyResult {
    scenario: &'static str,
    sent: u64,
    acknowledged: u64,
    received: u64,
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    rate_per_second: u64,
    send_to_ack: Percentiles,
    send_to_receive: Percentiles,
}

async fn call(
    http: &reqwest::Client,
    auth: &url::Url,
    path: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = http
        .post(auth.join(path)?)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path} answered {status}: {body}");
    }
    Ok(body)
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (args.gateway.first(), args.gateway.last()) else {
        bail!("give the sender's and the receiver's --gateway");
    };
    let tag = std::process::id();
    let (sender_name, receiver_name) = (format!("lat_s_{tag}"), format!("lat_r_{tag}"));
    let sender_token = client::sign_up(&args.auth.url, &sender_name).await?;
    let receiver_token = client::sign_up(&args.auth.url, &receiver_name).await?;
    let http = reqwest::Client::new();
    let channel = call(
        &http,
        &args.auth.url,
        "/api/v1/channels",
        &sender_token,
        json!({"name": "latency"}),
    )
    .await?;
    let channel_id = channel["id"].as_str().context("no channel id")?.to_owned();
    call(
        &http,
        &args.auth.url,
        &format!("/api/v1/channels/{channel_id}/members"),
        &sender_token,
        json!({"username": receiver_name}),
    )
    .await?;

    let source = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let receiver = client::connect(last, source, &receiver_token).await?;
    let sender = client::connect(first, source, &sender_token).await?;
    let epoch = Instant::now();
    let micros = move || epoch.elapsed().as_micros() as u64;

    // The receiver: content is the send time in microseconds; sequence numbers check order.
    let expected = args.messages;
    let receiving = tokio::spawn(async move {
        let mut receiver = receiver;
        let mut latencies = Histogram::<u64>::new(3).expect("a valid histogram");
        let (mut seen, mut duplicates, mut out_of_order) = (HashMap::new(), 0u64, 0u64);
        let mut last = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(expected / 10 + 30);
        while (seen.len() as u64) < expected {
            let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, receiver.next()).await
            else {
                break;
            };
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if frame["t"] != "MESSAGE_CREATE" {
                continue;
            }
            let now = micros();
            let Some((index, sent_at)) = frame["d"]["content"].as_str().and_then(|c| {
                let (i, t) = c.split_once(':')?;
                Some((i.parse::<u64>().ok()?, t.parse::<u64>().ok()?))
            }) else {
                continue;
            };
            if seen.insert(index, ()).is_some() {
                duplicates += 1;
                continue;
            }
            if last.is_some_and(|l| index < l) {
                out_of_order += 1;
            }
            last = Some(index);
            let _ = latencies.record(now.saturating_sub(sent_at).max(1));
        }
        (latencies, seen.len() as u64, duplicates, out_of_order)
    });

    let (mut sink, mut acks) = sender.split();
    let acking = tokio::spawn(async move {
        let mut latencies = Histogram::<u64>::new(3).expect("a valid histogram");
        let mut acknowledged = 0u64;
        while acknowledged < expected {
            let Ok(Some(Ok(Message::Text(text)))) =
                tokio::time::timeout(Duration::from_secs(10), acks.next()).await
            else {
                break;
            };
            let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if frame["op"] != 24 {
                continue;
            }
            let now = micros();
            if let Some(sent_at) = frame["d"]["nonce"]
                .as_str()
                .and_then(|n| n.split_once(':'))
                .and_then(|(_, t)| t.parse::<u64>().ok())
            {
                acknowledged += 1;
                let _ = latencies.record(now.saturating_sub(sent_at).max(1));
            }
        }
        (latencies, acknowledged)
    });

    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate.max(1)));
    for index in 0..args.messages {
        tick.tick().await;
        let sent_at = micros();
        let frame = json!({"op": 20, "d": {
            "channel_id": channel_id,
            "content": format!("{index}:{sent_at}"),
            "nonce": format!("{index}:{sent_at}"),
        }});
        sink.send(Message::Text(frame.to_string().into()))
            .await
            .context("the sender's socket closed")?;
    }
    let (ack_latencies, acknowledged) = acking.await?;
    let (receive_latencies, received, duplicates, out_of_order) = receiving.await?;

    let result = LatencyResult {
        scenario: "latency",
        sent: args.messages,
        acknowledged,
        received,
        missing: acknowledged.saturating_sub(received),
        duplicates,
        out_of_order,
        rate_per_second: args.rate,
        send_to_ack: (&ack_latencies).into(),
        send_to_receive: (&receive_latencies).into(),
    };
    println!(
        "latency: {} sent at {}/s, {} acknowledged, {} received ({} missing, {} duplicates, {} out of order)",
        result.sent,
        result.rate_per_second,
        result.acknowledged,
        result.received,
        result.missing,
        result.duplicates,
        result.out_of_order
    );
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "microseconds", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, p) in [
        ("send -> ack", &result.send_to_ack),
        ("send -> receive", &result.send_to_receive),
    ] {
        println!(
            "{name:<16} {:>8} {:>8} {:>8} {:>8} {:>8}",
            p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us
        );
    }
    report::write_json(&args.out, &result)?;
    println!("result written to {}", args.out.display());
    if result.missing > 0
        || result.duplicates > 0
        || result.out_of_order > 0
        || acknowledged < args.messages
    {
        bail!("loss: every acknowledged message must arrive once and in order");
    }
    Ok(())
}
