use std::process::ExitCode;

// jemalloc hands freed memory back to the system: with glibc's malloc, media kept the peak of
// every burst (its 5 MiB upload parts, decoded photos) for good, 160-600 MB at rest after the
// media benchmark (docs/BENCHMARKS.md, "Media").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
