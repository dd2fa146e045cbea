use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config: auth::Config = shared::config::parse();
    let log = config.log.clone();
    Box::pin(shared::lifecycle::run("auth", &log, auth::Auth::build(config))).await
}
