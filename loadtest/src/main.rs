// A command-line tool: its report is meant for stdout.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: loadtest::Cli = kit::config::parse();
    // A worker holds its share of the devices on one thread: a run starts at least one worker
    // per core, and threads of one process would only contend for the same counters.
    let mut runtime = match cli.scenario {
        loadtest::Scenario::Worker => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    match runtime.block_on(loadtest::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
