// A command-line tool: its report is meant for stdout.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli: loadtest::Cli = kit::config::parse();
    match loadtest::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
