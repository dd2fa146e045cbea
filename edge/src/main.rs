use std::process::ExitCode;

// jemalloc hands freed memory back to the system and keeps per-thread caches small; with glibc's
// malloc, freed buffers stayed in per-thread arenas (docs/BENCHMARKS.md, "memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config: edge::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run("edge", &log, edge::Edge::build(config))).await
}
