//! The `lifeboat` binary: parses the command line, sets up logging and the runtime, and exits
//! with the code the command produced. Everything else lives in the library.

use clap::Parser;
use lifeboat::cli::{self, args::Cli, args::LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc: its page decay can be tuned at run time, which restores use to give freed memory
/// back to the system at once (see `engine::backend::release_freed_memory_at_once`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&cli.global.log).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.global.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
    }
    // rustic_core blocks; it runs on tokio's blocking pool, and the storage adapter blocks on
    // this multi-threaded runtime's handle.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(lifeboat::exit::Exit::Failure.code());
        }
    };
    let exit = runtime.block_on(cli::run(cli));
    // Do not wait for blocking work still running (a job the agent abandoned at the end of its
    // shutdown grace): its outcome is already recorded, and the repository format makes an
    // interrupted write harmless.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    std::process::ExitCode::from(exit.code())
}
