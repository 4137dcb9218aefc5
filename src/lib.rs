//! volvo-collect: reads a Volvo car's data from Volvo's four public APIs and turns it into
//! Prometheus metrics, once per run.
//!
//! The pipeline, module by module: [`config`] (file → validated settings) and [`cli`] (flags
//! over them); [`auth`] (token file and refresh); [`api`] (one module per Volvo API, over one
//! shared client); [`metrics`] (one mapper per API into one exposition, with the catalog of
//! every family); [`sinks`] (stdout, textfile, Pushgateway); [`run`] (one collection, start to
//! finish); [`simulator`] (the simulated Volvo cloud) and [`demo`].

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
pub mod metrics;
pub mod planner;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod simulator;
pub mod sinks;
pub mod state;
pub mod values;
pub mod weather;
pub mod window;

use std::io::Write;

use error::{ExitCode, Fatal};

/// Runs the command the user asked for and returns its exit code. Errors are printed here,
/// one line each, on standard error.
pub async fn main_with(cli: cli::Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("volvo-collect: {}", f.message);
            f.code
        }
    }
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
            let opts = check::Options {
                plan: *plan,
                offline: *offline,
                account: account.clone(),
                cars: cars.map(|c| c as usize),
                interval: *interval,
            };
            check::run(&settings, &opts).await
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
            let path = config::locate(cli.config.as_deref())?;
            let mut settings = config::load(&path)?;
            cli.apply(&mut settings);
            if !cli.once {
                return serve::run_forever(settings).await;
            }
            let outcome = run::run_once(&settings).await?;
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
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
