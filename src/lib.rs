//! volvo-collect: reads a Volvo car's data from Volvo's four public APIs and turns it into
//! Prometheus metrics, once per run.
//!
//! The pipeline, module by module, each importing only those before it: the helpers
//! ([`error`], [`secret`], [`clock`], [`fsutil`], [`text`], [`values`]); [`records`] (trips
//! and charges worked out from the uploads); [`config`] (file → validated settings);
//! [`endpoints`] (the one table of what is asked); [`state`] and [`window`] (what runs
//! remember, Volvo's shared minute); [`http`]; [`auth`] (token file, refresh, login); [`api`]
//! (one module per Volvo API over one request client); [`metrics`] (one mapper per API, the
//! catalog of every family); [`sinks`]; [`schedule`] and [`planner`] (what each run asks of
//! each car); [`weather`]; [`run`] (one collection in phases). On top:
//! [`serve`], [`check`], the [`simulator`] and [`demo`], and [`cli`] (the command line).

pub mod api;
pub mod auth;
pub mod check;
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
pub mod state;
pub mod text;
pub mod values;
pub mod weather;
pub mod window;

use std::io::Write;

use error::{ExitCode, Fatal};

/// Runs the command the user asked for and returns its exit code. Errors are printed here,
/// one line each, on standard error.
pub async fn main_with(cli: cli::Cli) -> ExitCode {
    let code = match dispatch(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("volvo-collect: {}", f.message);
            f.code
        }
    };
    // A refresh cut loose by the run's deadline still owns the token lock and saves on its own
    // task; the process must not end before it has.
    drop(auth::refresh::quiesce().await);
    code
}

async fn dispatch(cli: cli::Cli) -> Result<ExitCode, Fatal> {
    match &cli.command {
        Some(cli::Command::Demo { latency }) => demo::run(*latency).await,
        Some(cli::Command::Check {
            plan,
            offline,
            account,
            cars,
            interval,
        }) => {
            let path = config::locate(cli.config.as_deref())?;
            let mut settings = config::load(&path)?;
            cli.apply(&mut settings);
            settings.check_outputs()?;
            let opts = check::Options {
                plan: *plan,
                offline: *offline,
                account: account.clone(),
                cars: cars.map(|c| c as usize),
                interval: *interval,
            };
            // `check` may refresh the token: a stop waits for the save, like a run's.
            let mut stop = Stop::install();
            tokio::select! {
                r = check::run(&settings, &opts) => r,
                _guard = stop.requested() => Err(stopped()),
            }
        }
        Some(cli::Command::Completions { shell }) => {
            let mut cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "volvo-collect", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not an error.
            let _ = std::io::stdout().write_all(&script);
            Ok(ExitCode::Ok)
        }
        Some(cli::Command::Man) => {
            let cmd = <cli::Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).map_err(|e| {
                Fatal::new(
                    ExitCode::Output,
                    format!("cannot render the manual page: {e}"),
                )
            })?;
            let _ = std::io::stdout().write_all(&page);
            Ok(ExitCode::Ok)
        }
        Some(cli::Command::Login {
            no_browser,
            timeout,
            account,
        }) => {
            let path = config::locate(cli.config.as_deref())?;
            let settings = config::load(&path)?.select_account(account.as_deref())?;
            auth::login::run(&settings, *no_browser, *timeout).await
        }
        Some(cli::Command::Simulate {
            listen,
            latency,
            extended,
            cars,
            rate_limit,
            quota,
            scenario,
            write_token,
        }) => {
            let opts = simulator::Options {
                latency: *latency,
                extended: *extended,
                cars: *cars,
                rate_limit: *rate_limit,
                quota: *quota,
                scenario: *scenario,
            };
            let sim = simulator::start(*listen, opts).await.map_err(|e| {
                Fatal::new(ExitCode::Usage, format!("cannot listen on {listen}: {e}"))
            })?;
            if let Some(path) = write_token {
                auth::token::save(
                    path,
                    &serde_json::from_value(sim.issue_token(true)).expect("token shape"),
                )?;
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "volvo-collect simulator listening on {}",
                sim.base_url()
            );
            let _ = writeln!(
                out,
                "client_id = {:?}, client_secret = {:?}, api_key = {:?}; cars: {}",
                simulator::CLIENT_ID,
                simulator::CLIENT_SECRET,
                simulator::API_KEY,
                sim.vins()[..sim.vins().len().min(4)].join(", ")
            );
            let _ = out.flush();
            drop(out);
            shutdown_signal().await;
            Ok(ExitCode::Ok)
        }
        None => {
            // From here on a SIGTERM or SIGINT no longer kills the process outright: it waits
            // for a token refresh in flight to be saved (see `auth::refresh`).
            let mut stop = Stop::install();
            let path = config::locate(cli.config.as_deref())?;
            let mut settings = config::load(&path)?;
            cli.apply(&mut settings);
            settings.check_outputs()?;
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
                    eprintln!("volvo-collect: {first}{tail}");
                }
            }
            Ok(outcome.exit)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    Stop::install().signal().await
}

/// SIGTERM and SIGINT, caught from the moment of [`Stop::install`] (until then they end the
/// process at once, which is harmless before any token refresh).
pub struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    pub fn install() -> Stop {
        use tokio::signal::unix::{signal, SignalKind};
        Stop {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    async fn signal(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    /// Resolves after a stop signal once no token refresh is between its request and its
    /// save; the guard keeps new ones from starting. The work raced against this future keeps
    /// running meanwhile, so a refresh in flight can finish and save.
    pub async fn requested(&mut self) -> tokio::sync::RwLockWriteGuard<'static, ()> {
        self.signal().await;
        tracing::info!("stop signal received");
        auth::refresh::quiesce().await
    }
}

/// A `--once` run or `check` stopped by a signal before it finished.
fn stopped() -> Fatal {
    Fatal::new(
        ExitCode::Temporary,
        "stopped by a signal before the run finished; the token file is saved and the next run collects",
    )
}
