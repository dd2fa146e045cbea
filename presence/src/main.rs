use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: presence::Config = shared::config::parse();
    let log = config.log.clone();
    Box::pin(shared::lifecycle::run(
        "presence",
        &log,
        presence::Presence::build(config),
    ))
    .await
}
