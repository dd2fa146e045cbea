use std::process::ExitCode;

// jemalloc hands freed memory back to the system and keeps per-thread caches small; with glibc's
// malloc, freed buffers stayed in per-thread arenas (docs/BENCHMARKS.md, "memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // `auth keygen PATH`: the one subcommand, handled before the service's configuration (which
    // requires a database and keys) is parsed.
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("keygen") {
        return keygen(args.next());
    }
    let config: auth::Config = kit::config::parse();
    let log = config.log.clone();
    Box::pin(kit::lifecycle::run("auth", &log, auth::Auth::build(config))).await
}

/// Writes a new Ed25519 signing key (PKCS#8 PEM, mode 0600) and prints its key id.
fn keygen(path: Option<String>) -> ExitCode {
    let Some(path) = path else {
        eprintln!("usage: auth keygen PATH   (writes a new Ed25519 signing key; never overwrites)");
        return ExitCode::from(2);
    };
    match auth::keys::write_new_key(std::path::Path::new(&path)) {
        Ok(kid) => {
            eprintln!("auth: wrote a new signing key to {path} (kid {kid})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auth: cannot write a signing key to {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
