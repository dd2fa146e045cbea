use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: media::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run(
        "media",
        &log,
        media::Media::build(config),
    ))
    .await
}
