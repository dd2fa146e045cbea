//! `idle`: open N identified connections spread over the edges (and over several source addresses
//! on 127.0.0.0/8, each good for about 28,000 ports), hold them, and report each edge's resident
//! memory per connection, measured by the edge itself (`process_resident_memory_bytes`) before
//! and after.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;

use crate::population::{self, Population};
use crate::{client, report};

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

    /// How many connections to open in all.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,

    /// How many connection attempts are in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,

    /// How many source addresses (127.0.0.2, 127.0.0.3, ...) to spread connections over.
    #[arg(long, default_value_t = 1)]
    sources: u8,

    /// How long to hold the connections after they are all open.
    #[arg(long, default_value = "10s", value_parser = shared::config::duration)]
    hold: Duration,

    /// Heartbeat interval of the held connections (the edge's default is 41.25 s).
    #[arg(long, default_value = "30s", value_parser = shared::config::duration)]
    heartbeat: Duration,

    /// Where to write the JSON result.
    #[arg(long, default_value = "loadtest-idle.json")]
    out: PathBuf,
}

#[derive(Debug, Serialize)]
struct IdleResult {
    scenario: &'static str,
    connections: usize,
    failed: usize,
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

fn metrics_url(gateway: &url::Url) -> anyhow::Result<String> {
    let host = gateway.host_str().context("a gateway URL without a host")?;
    let port = gateway
        .port_or_known_default()
        .context("a gateway URL without a port")?;
    Ok(format!("http://{host}:{port}/metrics"))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.gateway.is_empty() || args.connections == 0 {
        bail!("give at least one --gateway and one connection");
    }
    let users = Population::new(&args.auth)
        .sign_up(&format!("idle_{}", std::process::id()), 1)
        .await?;
    let token = users[0].token.clone();

    let mut before = Vec::new();
    for gateway in &args.gateway {
        before.push(report::scrape(&metrics_url(gateway)?, "process_resident_memory_bytes").await?);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let sources: Vec<IpAddr> = (0..args.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
        .collect();
    let attempts = futures::stream::iter(0..args.connections)
        .map(|i| {
            let gateway = args.gateway[i % args.gateway.len()].clone();
            let source = sources[(i / args.gateway.len()) % sources.len()];
            let token = token.clone();
            async move {
                client::connect(&gateway, source, &token)
                    .await
                    .map(|(s, _)| s)
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    let mut attempts = std::pin::pin!(attempts);
    let (mut held, mut failed) = (Vec::new(), 0usize);
    let mut first_error = None;
    while let Some(attempt) = attempts.next().await {
        match attempt {
            Ok(socket) => held.push(tokio::spawn(client::hold(
                socket,
                args.heartbeat,
                stop_rx.clone(),
            ))),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    if let Some(e) = &first_error {
        eprintln!("loadtest: {failed} connections failed; the first: {e:#}");
    }

    // Let allocators and the kernel settle before reading memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut edges = Vec::new();
    for (gateway, rss_before) in args.gateway.iter().zip(before) {
        let url = metrics_url(gateway)?;
        let rss_after = report::scrape(&url, "process_resident_memory_bytes").await?;
        let connections = report::scrape(&url, "natter_edge_sessions").await?;
        edges.push(EdgeMemory {
            gateway: gateway.to_string(),
            connections,
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            bytes_per_connection: (rss_after - rss_before) / connections.max(1.0),
        });
    }
    tokio::time::sleep(args.hold).await;
    let _ = stop_tx.send(true);
    for task in held {
        let _ = task.await;
    }

    let result = IdleResult {
        scenario: "idle",
        connections: args.connections - failed,
        failed,
        open_seconds,
        edges,
    };
    println!(
        "idle: {} connections open in {:.1} s ({} failed)",
        result.connections, result.open_seconds, result.failed
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
    if failed > 0 {
        bail!("{failed} of {} connections failed", args.connections);
    }
    Ok(())
}
