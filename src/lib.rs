//! volvo-collect: reads a Volvo car's data from Volvo's four public APIs and turns it into
//! Prometheus metrics, once per run.
//!
//! The pipeline, module by module, each importing only those before it: the helpers
//! ([`error`], [`secret`], [`clock`], [`fsutil`], [`text`], [`values`]); [`records`] (trips
//! and charges worked out from the uploads); [`endpoints`] (every endpoint, one typed value
//! each, and the sources); [`config`] (file → validated settings); [`state`], [`window`] and
//! [`spent`] (what runs remember, Volvo's shared minute, the API key's day); [`http`];
//! [`auth`] (token file, refresh, login); [`api`] (one module per Volvo API over one request
//! client, and each car's answers decoded once); [`metrics`] (one mapper per API, the catalog
//! of every family); [`sinks`]; [`claims`] (which account reads a car that several list);
//! [`schedule`] and [`planner`] (what each run asks of each car); [`weather`]; [`run`] (one
//! collection in phases); [`stop`] (signals that wait for a token save). On top: [`serve`],
//! [`check`], the [`simulator`] and [`demo`], and [`cli`] (the command line).

// Functions stay short enough to read at once (threshold in clippy.toml).
#![warn(clippy::too_many_lines)]

pub mod api;
pub mod auth;
pub mod check;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod endpoints;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod metrics;
pub mod planner;
pub mod records;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod sinks;
pub mod spent;
pub mod state;
pub mod stop;
pub mod text;
pub mod values;
pub mod weather;
pub mod window;

use std::io::Write;
use std::path::Path;

use error::{ExitCode, Fatal};
use stop::{stopped, Stop};

/// Runs the command the user asked for and returns its exit code. Errors are printed here,
/// one line each, on standard error.
pub async fn main_with(cli: cli::Cli) -> ExitCode {
    let code = match dispatch(cli).await {
        Ok(code) => code,
        Err(f) => {
            secret::say(&format!("volvo-collect: {}", f.message));
            f.code
        }
    };
    // A refresh cut loose by the run's deadline still owns the token lock and saves on its own
    // task; the process must not end before it has.
    drop(auth::refresh::quiesce().await);
    code
}

/// The command, to the function that runs it.
async fn dispatch(cli: cli::Cli) -> Result<ExitCode, Fatal> {
    match &cli.command {
        Some(cli::Command::Demo { latency }) => demo::run(*latency).await,
        Some(cli::Command::Check { .. }) => check(&cli).await,
        Some(cli::Command::Completions { shell }) => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "volvo-collect", &mut script);
            print(&script)
        }
        Some(cli::Command::Man) => man(),
        Some(cli::Command::Login { .. }) => login(&cli).await,
        Some(cli::Command::Simulate { .. }) => simulate(&cli).await,
        None => collect(&cli).await,
    }
}

/// Writes data to standard output (see [`error::stdout_written`]).
fn print(bytes: &[u8]) -> Result<ExitCode, Fatal> {
    let mut out = std::io::stdout().lock();
    error::stdout_written(out.write_all(bytes).and_then(|()| out.flush()))?;
    Ok(ExitCode::Ok)
}

/// The configuration with the command line applied over it.
fn settings(cli: &cli::Cli) -> Result<config::Settings, Fatal> {
    let path = config::locate(cli.config.as_deref())?;
    let mut settings = config::load(&path)?;
    cli.apply(&mut settings)?;
    settings.check_outputs()?;
    secret::keep_held_for_good();
    Ok(settings)
}

/// `volvo-collect check`. It may refresh the token: a stop waits for the save, like a run's.
async fn check(cli: &cli::Cli) -> Result<ExitCode, Fatal> {
    let Some(cli::Command::Check {
        plan,
        offline,
        account,
        cars,
        interval,
    }) = &cli.command
    else {
        unreachable!("called for check only");
    };
    let settings = settings(cli)?;
    let opts = check::Options {
        plan: *plan,
        offline: *offline,
        account: account.clone(),
        cars: cars.map(|c| c as usize),
        interval: *interval,
    };
    let mut stop = Stop::install();
    tokio::select! {
        r = check::run(&settings, &opts) => r,
        _guard = stop.requested() => Err(stopped()),
    }
}

/// `volvo-collect login`.
async fn login(cli: &cli::Cli) -> Result<ExitCode, Fatal> {
    let Some(cli::Command::Login {
        no_browser,
        timeout,
        account,
    }) = &cli.command
    else {
        unreachable!("called for login only");
    };
    let settings = config::load(&config::locate(cli.config.as_deref())?)?;
    let account = settings.select_account(account.as_deref())?;
    // Caught, so that Ctrl-C or a stop ends the wait for the browser even where the default
    // action does not apply: a container's first process ignores both signals.
    let mut stop = Stop::install();
    tokio::select! {
        r = auth::login::run(&settings, account, *no_browser, *timeout) => r,
        () = stop.signal() => Err(Fatal::new(
            ExitCode::Temporary,
            "login stopped by a signal; log in again to write the token",
        )),
    }
}

/// `volvo-collect man`.
fn man() -> Result<ExitCode, Fatal> {
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page).map_err(|e| {
        Fatal::new(
            ExitCode::Output,
            format!("cannot render the manual page: {e}"),
        )
    })?;
    print(&page)
}

/// `volvo-collect simulate`: the simulated cloud until a stop signal.
async fn simulate(cli: &cli::Cli) -> Result<ExitCode, Fatal> {
    let Some(cli::Command::Simulate {
        listen,
        latency,
        extended,
        cars,
        rate_limit,
        quota,
        scenario,
        write_token,
    }) = &cli.command
    else {
        unreachable!("called for simulate only");
    };
    let opts = simulator::Options {
        latency: *latency,
        extended: *extended,
        cars: usize::from(cars.unwrap_or(if scenario.is_some() { 2 } else { 4 })),
        rate_limit: *rate_limit,
        quota: *quota,
        scenario: *scenario,
        clock: clock::Clock::from_env(&|k| std::env::var(k).ok()),
    };
    let sim = simulator::start(*listen, opts)
        .await
        .map_err(|e| Fatal::new(ExitCode::Usage, format!("cannot listen on {listen}: {e}")))?;
    if let Some(path) = write_token {
        let token = serde_json::from_value(sim.issue_token(true)).expect("token shape");
        auth::token::save(path, &token)?;
    }
    let vins = &sim.vins()[..sim.vins().len().min(4)];
    // Absolute: a configuration resolves a relative path against its own folder.
    let token_file = write_token.as_deref().unwrap_or(Path::new("token.json"));
    let token_file = std::path::absolute(token_file).unwrap_or_else(|_| token_file.to_path_buf());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "volvo-collect simulator listening on {}\ncars: {}\n\nA configuration that reads it:\n\n{}",
        sim.base_url(),
        vins.join(", "),
        simulator::volvo_table(&sim.base_url(), &token_file.display().to_string())
    );
    let _ = out.flush();
    drop(out);
    stop::shutdown_signal().await;
    Ok(ExitCode::Ok)
}

/// A collection: `--once`, or the long-running mode.
async fn collect(cli: &cli::Cli) -> Result<ExitCode, Fatal> {
    // From here on a SIGTERM or SIGINT no longer kills the process outright: it waits for a
    // token refresh in flight to be saved (see `auth::refresh`).
    let mut stop = Stop::install();
    let settings = settings(cli)?;
    if let Some(path) = &settings.output.textfile {
        if let Some(why) = config::textfile_unread(path) {
            tracing::warn!("output textfile {}: {why}", path.display());
        }
    }
    if !cli.once {
        return serve::run_forever(settings, stop).await;
    }
    let outcome = tokio::select! {
        outcome = run::run_once(&settings) => outcome?,
        _guard = stop.requested() => return Err(stopped()),
    };
    for p in &outcome.problems {
        tracing::warn!("{p}");
    }
    if outcome.exit != ExitCode::Ok {
        if let Some(first) = outcome.problems.first() {
            let more = outcome.problems.len() - 1;
            let tail = if more > 0 {
                format!(" (and {more} more; see the log)")
            } else {
                String::new()
            };
            // A stop that waited for a refresh in flight while the run ended (its deadline
            // passed meanwhile): the run's own end and code stand, and the stop is named too.
            let stop = if stop.received() {
                "; a stop signal came meanwhile, and waited for the token's save"
            } else {
                ""
            };
            secret::say(&format!("volvo-collect: {first}{tail}{stop}"));
        }
    }
    Ok(outcome.exit)
}
