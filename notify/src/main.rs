use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: notify::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run(
        "notify",
        &log,
        notify::Notify::build(config),
    ))
    .await
}
