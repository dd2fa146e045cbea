use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: presence::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run(
        "presence",
        &log,
        presence::Presence::build(config),
    ))
    .await
}
