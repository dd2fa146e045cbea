use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: persister::Config = shared::config::parse();
    let log = config.log.clone();
    Box::pin(shared::lifecycle::run(
        "persister",
        &log,
        persister::Persister::build(config),
    ))
    .await
}
