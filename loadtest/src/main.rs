//! The load harness: real clients over real sockets against real edges. Each scenario is one
//! command that prints a table and writes a JSON result.
//!
//! Scenarios so far: `idle` (hold connections; edge memory per connection) and `latency` (one
//! sender, one receiver, two edges). The loadtest issue adds chat, fanout, persist, history and
//! the reconnect storm.

// A command-line tool: its report is meant for stdout.
#![allow(clippy::print_stdout)]

mod client;
mod idle;
mod latency;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Drive real clients against the Natter edge fleet"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Open many connections, identify them, hold them; report edge memory per connection.
    Idle(idle::Args),
    /// One sender and one receiver on two edges; send-to-ack and send-to-receive percentiles.
    Latency(latency::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = shared::config::parse();
    let outcome = match cli.scenario {
        Scenario::Idle(args) => idle::run(args).await,
        Scenario::Latency(args) => latency::run(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
