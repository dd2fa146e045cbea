use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: edge::Config = shared::config::parse();
    let log = config.log.clone();
    Box::pin(shared::lifecycle::run(
        "edge",
        &log,
        edge::Edge::build(config),
    ))
    .await
}
