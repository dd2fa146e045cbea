//! `ready-servers`: READY for someone in many big servers. `--members` people sign up; each of
//! `--servers` servers of `--channels` text channels is made by a different one of them and
//! everyone else joins it by its invite (`--joins` at a time, `--parallel` servers at once), and
//! its owner says hello in each channel. Then a member who owns none of them identifies
//! `--repeats` times (edges alternating, a fresh socket each time) as the edges' only session in
//! the servers (cold: each IDENTIFY makes its edge follow them from scratch), then as many times
//! while another member is signed in on every edge (warm, as in servers people use): READY's
//! size, the time from IDENTIFY to READY (p50/p99) of each, and that READY names every server
//! with its member count. READY carries each server's roles, channels and the member's own
//! member object, never its member list, so its size should follow the servers and channels,
//! not the members.

use std::time::Instant;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use proto::gateway::Ready;
use serde::{Deserialize, Serialize};

use crate::client;
use crate::population::Population;
use crate::report::{self, Baseline, Percentiles};
use crate::run::Target;
use crate::server::{Rest, Server, now_us};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// People, each a member of every server (auth's NATTER_SIGN_UP_RATE and
    /// NATTER_MEMBER_LIMIT).
    #[arg(long, default_value_t = 200)]
    pub members: usize,
    /// Servers, each made by a different member.
    #[arg(long, default_value_t = 5)]
    pub servers: usize,
    /// Text channels per server, #general included.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// IDENTIFYs timed.
    #[arg(long, default_value_t = 50)]
    pub repeats: usize,
    /// Joins in flight per server.
    #[arg(long, default_value_t = 16)]
    pub joins: usize,
    /// Servers filled at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Write the last READY (its whole frame) to this file.
    #[arg(long)]
    pub ready_out: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct ReadyResult {
    members: usize,
    servers: usize,
    channels_per_server: usize,
    /// Joins per second while the servers filled.
    joins_per_second: f64,
    ready_bytes: usize,
    /// Channels READY listed over all servers.
    ready_channels: usize,
    /// Each IDENTIFY the edge's only session in the servers: it follows them from scratch.
    identify_to_ready_cold: Percentiles,
    /// Another member signed in on every edge meanwhile, so the edges follow the servers
    /// already, as in servers people use.
    identify_to_ready_warm: Percentiles,
    services: Vec<report::ServiceDelta>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.servers == 0 || args.members <= args.servers || args.repeats == 0 {
        bail!("--servers and --repeats must be at least 1, and --members more than --servers");
    }
    let target = &args.target;
    let people = Population::new(&target.auth);
    let tag = format!("s{}", now_us() % 1_000_000_000);
    println!("ready-servers: signing up {} members", args.members);
    let users = people.sign_up(&tag, args.members).await?;

    println!(
        "ready-servers: {} servers of {} members",
        args.servers, args.members
    );
    let filling = Instant::now();
    let servers: Vec<Server> = futures::stream::iter(0..args.servers)
        .map(|k| {
            // Server k's owner is member k; the list starts with them.
            let members: Vec<_> = users[k..].iter().chain(&users[..k]).cloned().collect();
            let (people, name) = (people.clone(), format!("loadtest ready {k}"));
            async move {
                let server =
                    Server::build(&people, &members, &name, args.channels, args.joins).await?;
                println!("ready-servers: server {} full", k + 1);
                Ok::<_, anyhow::Error>(server)
            }
        })
        .buffer_unordered(args.parallel.max(1))
        .try_collect()
        .await
        .context("filling the servers (one longer than auth's NATTER_ACCESS_TOKEN_TTL, 15 minutes by default, outlives its tokens: raise it)")?;
    let joins = (args.servers * (args.members - 1)) as f64;
    let joins_per_second = joins / filling.elapsed().as_secs_f64();

    // A message in every channel (by its server's owner), so that READY says where each stands
    // as it would in servers people talk in.
    let rest = Rest::new(&target.gateway)?;
    let owners = people.sign_in(&tag, args.servers).await?;
    for (server, owner) in servers.iter().zip(&owners) {
        for channel in &server.channels {
            rest.send(0, channel, &owner.token, "hello").await?;
        }
    }

    // Member `servers` owns none of them; signed in afresh, as filling may have taken a while.
    let signed_in = people.sign_in(&tag, args.servers + 2).await?;
    let (reader, watcher) = (&signed_in[args.servers], &signed_in[args.servers + 1]);
    println!(
        "ready-servers: {} IDENTIFYs of a member of all {}, as the edges' only session in them, \
         then as many while another member is signed in on every edge",
        args.repeats, args.servers
    );
    let baseline = Baseline::take(&target.metrics).await;
    let (mut ready_bytes, mut ready_channels) = (0, 0);
    let mut timed = Vec::new();
    for warm in [false, true] {
        let mut watching = Vec::new();
        if warm {
            for gateway in &target.gateway {
                let (socket, _) = client::connect(gateway, client::LOCAL, &watcher.token).await?;
                watching.push(socket);
            }
        }
        let mut times = Histogram::<u64>::new(3)?;
        for r in 0..args.repeats {
            let (text, took) = client::ready_once(target, r, &reader.token).await?;
            times.record((took.as_micros() as u64).max(1))?;
            ready_bytes = text.len();
            ready_channels = check(&text, &servers, args.members)?;
            if let Some(path) = &args.ready_out {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        timed.push(Percentiles::from(&times));
    }
    let [cold, warm] = <[Percentiles; 2]>::try_from(timed).expect("two rounds");
    let result = ReadyResult {
        members: args.members,
        servers: args.servers,
        channels_per_server: args.channels,
        joins_per_second,
        ready_bytes,
        ready_channels,
        identify_to_ready_cold: cold,
        identify_to_ready_warm: warm,
        services: baseline.deltas().await,
    };
    println!(
        "ready-servers: {} servers of {} members ({:.0} joins/s): READY {} bytes, {} channels",
        result.servers,
        result.members,
        result.joins_per_second,
        result.ready_bytes,
        result.ready_channels
    );
    report::print_percentiles(&[
        ("IDENTIFY->READY, cold", &result.identify_to_ready_cold),
        ("IDENTIFY->READY, warm", &result.identify_to_ready_warm),
    ]);
    report::print_deltas(&result.services);
    let path = target
        .out
        .clone()
        .unwrap_or_else(|| "loadtest-ready-servers.json".into());
    report::write_json(&path, &result)?;
    println!("result written to {}", path.display());
    Ok(())
}

/// That READY names every server, each with `members` members and every channel: the channels
/// it listed.
fn check(text: &str, servers: &[Server], members: usize) -> anyhow::Result<usize> {
    #[derive(Deserialize)]
    struct Frame {
        d: Ready,
    }
    let ready = serde_json::from_str::<Frame>(text)
        .context("READY's shape")?
        .d;
    let mut channels = 0;
    for server in servers {
        let guild = ready
            .guilds
            .iter()
            .find(|g| g.id.to_string() == server.id)
            .with_context(|| format!("server {} missing from READY", server.id))?;
        if guild.member_count as usize != members {
            bail!(
                "server {} has {} members in READY, not {members}",
                server.id,
                guild.member_count
            );
        }
        if guild.channels.len() < server.channels.len() {
            bail!(
                "server {} lists {} channels in READY, not {}",
                server.id,
                guild.channels.len(),
                server.channels.len()
            );
        }
        channels += guild.channels.len();
    }
    Ok(channels)
}
