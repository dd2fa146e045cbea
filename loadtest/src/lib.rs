//! The load harness: real clients over real sockets against real edges. Each scenario is one
//! command that prints a table and writes a JSON result; `--help` on each says what it takes.
//!
//! - [`mod@run`]: the engine (channels, members, devices, a send rate, loss accounting) behind
//!   `chat`, `fanout`, `persist`, `history` and `storm` ([`scenarios`]).
//! - [`worker`]: the processes that hold a run's devices, and how the run talks to them.
//! - [`device`]: one simulated device: a gateway session that sends, reads, checks and resumes.
//! - [`idle`]: many identified connections held open; edge memory per connection.
//! - [`drain`]: the persister writing a backlog into the store, beside a raw insert loop.
//! - [`guild`]: one server of many members: delivery that follows roles, and how fast a hidden
//!   channel stops reaching everyone.
//! - [`react`]: a hot message: every member of a large channel reacts to it once.
//! - [`mentions`]: what unread mention counts cost READY (`ready-mentions`).
//! - [`media`]: files uploaded and downloaded through media at two sizes, its memory, and the
//!   time from a photo's send to its processed update on another member's screen.
//! - [`search`]: a large server's messages indexed, searched by many at once, and the live lag.
//! - [`server`]: a server built over REST for a scenario, and the edges' REST routes.
//! - [`raw`]: the machine's limit: pre-built frames written to sockets by nothing but a loop.
//! - [`report`]: percentiles, tables, JSON, and `/metrics` before and after.
//! - [`scan`]: reading a delivery's sequence, channel and sending time without parsing it.

// A command-line tool's library: its reports are meant for stdout.
#![allow(clippy::print_stdout)]

pub mod client;
pub mod device;
pub mod drain;
pub mod guild;
pub mod idle;
pub mod media;
pub mod mentions;
pub mod plot;
pub mod population;
pub mod probe;
pub mod push;
pub mod raw;
pub mod react;
pub mod ready;
pub mod report;
pub mod run;
pub mod scan;
pub mod scenarios;
pub mod search;
pub mod server;
pub mod timeline;
pub mod worker;
pub mod ws;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Drive real clients against the Natter edge fleet"
)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Open many connections, identify them, hold them; report edge memory per connection.
    Idle(idle::Args),
    /// Channels of members at a steady send rate: latency, deliveries per second and loss.
    /// Several rates make a plot of latency against offered load.
    Chat(scenarios::ChatArgs),
    /// One large channel: deliveries per second and latency.
    Fanout(scenarios::FanoutArgs),
    /// A sustained send rate: persister lag over time, and every acknowledged message counted
    /// in the CQL store at the end.
    Persist(scenarios::PersistArgs),
    /// A backlog put straight into the chat stream: how fast the persister writes it to the
    /// store, beside a raw batched insert loop against the same Cassandra.
    Drain(drain::Args),
    /// History page reads at a steady rate while chat runs.
    History(scenarios::HistoryArgs),
    /// Drop every connection at once and resume them all; time to 99% and 100%, nothing missed.
    Storm(scenarios::StormArgs),
    /// The physical limit: pre-built frames written to the same kind of sockets and devices, by
    /// a stand-in for the edge that does nothing else.
    Raw(raw::Args),
    /// One server of many members across the edges, a role-only channel, role changes while
    /// chatting: delivery, latency, nothing to those who may not see it, and the time for a
    /// channel hidden from everyone to stop reaching the last session.
    Guild(guild::Args),
    /// One message in a channel of many members, each reacting once with the same emoji over
    /// REST: reactions per second accepted, the count exact in history, delivery to watchers.
    React(react::Args),
    /// READY for a member with unread mentions in every channel of a server, beside one who
    /// read them all: time from IDENTIFY to READY and its size.
    ReadyMentions(mentions::Args),
    /// READY for a member of many servers of many members each: its size and the time from
    /// IDENTIFY to READY.
    ReadyServers(ready::Args),
    /// A server filled with a backlog straight into the chat stream: indexing rate, query
    /// latency and hits under concurrent searches, and the live lag from send to found.
    Search(search::Args),
    /// One `@everyone` per channel to many away members, each with a browser subscribed to a
    /// local push service: Web Pushes per second notify sends, each delivered once.
    Push(push::Args),
    /// Files through media: upload and download MiB/s and per-request times at each size and
    /// concurrency, media's peak RSS, and a photo's send to its processed MESSAGE_UPDATE.
    Media(media::Args),
    /// Holds a share of a run's devices for the process that started it (see `worker`).
    #[command(hide = true)]
    Worker,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.scenario {
        Scenario::Idle(args) => idle::run(args).await,
        Scenario::Chat(args) => scenarios::chat(args).await,
        Scenario::Fanout(args) => scenarios::fanout(args).await,
        Scenario::Persist(args) => scenarios::persist(args).await,
        Scenario::History(args) => scenarios::history(args).await,
        Scenario::Drain(args) => drain::run(args).await,
        Scenario::Raw(args) => raw::run(args).await,
        Scenario::Storm(args) => scenarios::storm(args).await,
        Scenario::Guild(args) => guild::run(args).await,
        Scenario::React(args) => react::run(args).await,
        Scenario::ReadyMentions(args) => mentions::run(args).await,
        Scenario::ReadyServers(args) => ready::run(args).await,
        Scenario::Search(args) => search::run(args).await,
        Scenario::Media(args) => media::run(args).await,
        Scenario::Push(args) => push::run(args).await,
        Scenario::Worker => worker::work().await,
    }
}
