use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: persister::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run(
        "persister",
        &log,
        persister::Persister::build(config),
    ))
    .await
}
