//! The `volvo-collect` binary: parse the command line, set up logging on stderr, run, and exit
//! with the documented code.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = volvo_collect::cli::Cli::parse();
    // The simulator logs every request it serves at debug level; show them when it runs alone.
    let default = match cli.command {
        Some(volvo_collect::cli::Command::Simulate { .. }) => "info,volvo_collect::simulator=debug",
        _ => "info",
    };
    let filter = std::env::var("LOG_LEVEL").unwrap_or_else(|_| default.into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| {
        volvo_collect::secret::say(&format!("volvo-collect: LOG_LEVEL={filter:?} is not a level (error, warn, info, debug, trace) or a tracing filter; using info"));
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| volvo_collect::secret::MaskedStderr)
        .with_ansi(false)
        .init();
    // One thread does: the work is waiting on the network, and each extra thread costs memory
    // (its own allocator arena) for nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    let code = runtime.block_on(volvo_collect::main_with(cli));
    std::process::exit(code.code());
}
