//! `idle`: open N identified connections spread over the edges (and over several source addresses
//! on 127.0.0.0/8, each good for about 28,000 ports), hold them, and report each edge's resident
//! memory per connection, measured by the edge itself (`process_resident_memory_bytes`) before
//! and after. The connections are devices in no channel, held by worker processes like every
//! run's devices.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::population::{self, Population};
use crate::worker::{DeviceSpec, Fleet, Workers};
use crate::{device, report};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    auth: population::Auth,

    /// Edge gateway URLs, comma separated; connections are spread evenly over them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080/gateway"
    )]
    gateway: Vec<url::Url>,

    /// Each edge's `/metrics` URL (its `--metrics-addr`), in the order of `--gateway`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9080/metrics"
    )]
    metrics: Vec<String>,

    /// How many connections to open in all.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,

    /// How many source addresses (127.0.0.2, 127.0.0.3, ...) to spread connections over.
    #[arg(long, default_value_t = 1)]
    sources: u8,

    /// How long to hold the connections after they are all open.
    #[arg(long, default_value = "10s", value_parser = kit::config::duration)]
    hold: Duration,

    #[command(flatten)]
    workers: Workers,

    /// Where to write the JSON result.
    #[arg(long, default_value = "loadtest-idle.json")]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct IdleResult {
    scenario: &'static str,
    connections: usize,
    open_seconds: f64,
    edges: Vec<EdgeMemory>,
}

#[derive(Debug, Serialize)]
struct EdgeMemory {
    gateway: String,
    connections: f64,
    rss_before_bytes: f64,
    rss_after_bytes: f64,
    bytes_per_connection: f64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.gateway.is_empty() || args.connections == 0 {
        bail!("give at least one --gateway and one connection");
    }
    if args.metrics.len() != args.gateway.len() {
        bail!("give one --metrics URL per --gateway, in the same order");
    }
    let users = Population::new(&args.auth)
        .sign_up(&format!("idle_{}", std::process::id()), 1)
        .await?;
    let token = users[0].token.clone();

    let mut before = Vec::new();
    for url in &args.metrics {
        before.push(report::scrape(url, "process_resident_memory_bytes").await?);
    }

    let started = Instant::now();
    let sources: Vec<IpAddr> = (0..args.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
        .collect();
    let devices = (0..args.connections)
        .map(|index| DeviceSpec {
            index,
            gateway: args.gateway[index % args.gateway.len()].clone(),
            source: sources[(index / args.gateway.len()) % sources.len()],
            token: token.clone(),
            channels: Vec::new(),
        })
        .collect();
    let fleet = Fleet::start(&args.workers, device::unix_micros(), &[], devices, &[], 0).await?;
    let workers = fleet.workers();
    let open_seconds = started.elapsed().as_secs_f64();

    // Let allocators and the kernel settle before reading memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut edges = Vec::new();
    for ((gateway, url), rss_before) in args.gateway.iter().zip(&args.metrics).zip(before) {
        let rss_after = report::scrape(url, "process_resident_memory_bytes").await?;
        let connections = report::scrape(url, "natter_edge_sessions").await?;
        edges.push(EdgeMemory {
            gateway: gateway.to_string(),
            connections,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            bytes_per_connection: (rss_after - rss_before) / connections.max(1.0),
        });
    }
    tokio::time::sleep(args.hold).await;
    let done = fleet.finish().await?;

    let result = IdleResult {
        scenario: "idle",
        connections: args.connections,
        open_seconds,
        edges,
    };
    println!(
        "idle: {} connections open in {:.1} s in {workers} worker processes",
        result.connections, result.open_seconds
    );
    println!(
        "{:<34} {:>8} {:>12} {:>12} {:>10}",
        "edge", "sessions", "RSS before", "RSS after", "B/conn"
    );
    for edge in &result.edges {
        println!(
            "{:<34} {:>8} {:>10.1}MB {:>10.1}MB {:>10.0}",
            edge.gateway,
            edge.connections,
            edge.rss_before_bytes / 1e6,
            edge.rss_after_bytes / 1e6,
            edge.bytes_per_connection
        );
    }
    report::write_json(&args.out, &result)?;
    println!("result written to {}", args.out.display());
    if !done.ended.is_empty() {
        bail!(
            "connections ended while held, by close code: {:?}",
            done.ended
        );
    }
    Ok(())
}
