use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: search::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run(
        "search",
        &log,
        search::Search::build(config),
    ))
    .await
}
