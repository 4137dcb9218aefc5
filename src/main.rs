//! The `volvo-collect` binary: its allocator; parse the command line, set up logging on stderr,
//! run, and exit with the documented code.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: a run makes some 180,000 small allocations (HTTP heads, JSON values), served with
/// about a tenth fewer instructions than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = volvo_collect::cli::Cli::parse();
    // Where transparent huge pages are on for every process, the allocator's arena would be
    // backed in 2 MiB pages: a third more resident memory, and the kernel's time clearing
    // them, for a heap this small and short-lived. Children inherit the setting, so `login`,
    // which may start a browser, keeps the machine's. A failure leaves the process as it was.
    if !matches!(cli.command, Some(volvo_collect::cli::Command::Login { .. })) {
        let (on, unused) = (1 as libc::c_ulong, 0 as libc::c_ulong);
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    }
    // The simulator logs every request it serves at debug level; show them when it runs alone.
    let default = match cli.command {
        Some(volvo_collect::cli::Command::Simulate { .. }) => "info,volvo_collect::simulator=debug",
        _ => "info",
    };
    let filter = std::env::var("LOG_LEVEL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.into());
    // A lone word that is no level parses as a filter for a module of that name, which
    // silences every log of this program: taken as the mistake it is.
    let lone_word = !filter.contains(['=', ',', ':', '['])
        && !filter.trim().starts_with("volvo_collect")
        && ![
            "error", "warn", "info", "debug", "trace", "off", "0", "1", "2", "3", "4", "5",
        ]
        .contains(&filter.trim().to_ascii_lowercase().as_str());
    let parsed = EnvFilter::try_new(&filter).ok().filter(|_| !lone_word);
    let filter = parsed.unwrap_or_else(|| {
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
    // Below a few descriptors even the runtime's event queue and signal pipe cannot open (the
    // latter panics inside tokio): a limit of the machine, said as such before anything starts.
    let runtime = volvo_collect::fsutil::enough_descriptors()
        .and_then(|()| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .unwrap_or_else(|e| {
            volvo_collect::secret::say(&format!(
                "volvo-collect: cannot start: {}",
                volvo_collect::fsutil::describe(&e)
            ));
            std::process::exit(volvo_collect::error::ExitCode::Temporary.code());
        });
    let code = runtime.block_on(volvo_collect::main_with(cli));
    std::process::exit(code.code());
}
