//! The load harness. Scenarios (idle, chat, fanout, persist, history, reconnect storm) arrive with
//! the loadtest issue; until then the binary parses its arguments and says so.

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
    /// Open many connections and hold them; report edge memory per connection.
    Idle,
    /// Channels of members sending at a fixed rate; report latency and loss.
    Chat,
}

fn main() -> ExitCode {
    let cli: Cli = shared::config::parse();
    eprintln!("loadtest: the {:?} scenario is not built yet", cli.scenario);
    ExitCode::from(2)
}
