//! The command line (clap), and the one place where flags are applied over the configuration
//! file. Everything after this works on [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ExitCode, Fatal};
use clap::{Parser, Subcommand};

use crate::config::{Outputs, Settings};
use crate::simulator::ExtendedMode;

/// A duration flag of at most `MAX_S` seconds: a longer one is a usage error, never an
/// overflow of a clock later.
fn duration_upto<const MAX_S: u64>(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let max = Duration::from_secs(MAX_S);
    if d > max {
        return Err(format!(
            "too long: use at most {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// A wait or a period: more than 0s and at most `MAX_S` seconds.
fn period_upto<const MAX_S: u64>(text: &str) -> Result<Duration, String> {
    let d = duration_upto::<MAX_S>(text)?;
    if d.is_zero() {
        return Err("must be more than 0s".into());
    }
    Ok(d)
}

#[derive(Debug, Parser)]
#[command(
    name = "volvo-collect",
    version,
    about = "Reads a Volvo car's data from Volvo's APIs and hands it to Prometheus."
)]
pub struct Cli {
    /// Configuration file, read by a collection, `check` and `login` (default:
    /// $VOLVO_COLLECT_CONFIG when set, else the first of
    /// ./collector.toml, $XDG_CONFIG_HOME/volvo-collect/collector.toml,
    /// /etc/volvo-collect/collector.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Collect once and exit (for a systemd timer or cron).
    #[arg(long)]
    pub once: bool,

    /// Print the exposition on standard output.
    #[arg(long)]
    pub stdout: bool,

    /// Write the exposition to this node_exporter textfile (atomically, mode 0644).
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,

    /// Push the exposition to this Pushgateway. Read as text and checked by the collector, so
    /// that a refused URL is never echoed (it may hold a password).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,

    /// Send the exposition by Prometheus remote write to this URL.
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,

    /// Long-running mode: also serve the latest exposition at http://ADDR/metrics
    /// (`:PORT` means loopback).
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen, conflicts_with = "once")]
    pub listen: Option<SocketAddr>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to Volvo ID (authorization code with PKCE) and write the token file.
    Login {
        /// Only print the URL to open; do not try to start a browser.
        #[arg(long)]
        no_browser: bool,
        /// Give up waiting for the redirect after this long (at most 1h).
        #[arg(long, value_parser = period_upto::<3600>, default_value = "5m")]
        timeout: Duration,
        /// Which `[[account]]` to log in (needed when the config has several).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `volvo-collect man > volvo-collect.1`.
    Man,
    /// Check the config, secrets, token, API key and outputs (at most two requests per
    /// account), one ok/warn/FAIL line each; exit 1 when a FAIL would stop a run.
    Check {
        /// Also print the request budget per API key: requests a day per endpoint, against
        /// Volvo's 10,000 a day and 100 a minute.
        #[arg(long)]
        plan: bool,
        /// Make no network requests (no refresh, no vehicle list, no output probes).
        #[arg(long)]
        offline: bool,
        /// Only this `[[account]]` (default: every account).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Cars to plan for when volvo.vins is empty and the vehicle list is not asked (default 1).
        #[arg(long, value_name = "N", requires = "plan", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        cars: Option<u32>,
        /// Timer interval to plan for (default: collect.interval; at most 1day).
        #[arg(long, value_name = "DURATION", requires = "plan", value_parser = period_upto::<86400>)]
        interval: Option<Duration>,
    },
    /// The whole pipeline against the built-in simulator, printing the exposition.
    Demo {
        /// Latency the simulated cloud adds to every answer (at most 1m).
        #[arg(long, value_parser = duration_upto::<60>, default_value = "0s")]
        latency: Duration,
    },
    /// Run the built-in simulated Volvo cloud (Volvo ID and the four APIs).
    Simulate {
        /// Address to listen on, such as 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Latency added to every answer, such as 100ms (at most 1m).
        #[arg(long, value_parser = duration_upto::<60>, default_value = "0s")]
        latency: Duration,
        /// Whether the Extended Vehicle API answers or is shut down.
        #[arg(long, value_enum, default_value = "served")]
        extended: ExtendedMode,
        /// How many cars the account has: the four samples, then copies (default 4); with
        /// --scenario, households of an electric and a petrol car in turn (default 2).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=10_000))]
        cars: Option<u16>,
        /// Answer 429 beyond this many API requests per sliding minute, like Volvo (100); 0 is off.
        #[arg(long, default_value_t = 0)]
        rate_limit: usize,
        /// Answer 403 beyond this many API requests per UTC day, like Volvo's daily quota per
        /// API key (10000); 0 is off.
        #[arg(long, default_value_t = 0)]
        quota: u64,
        /// Play a scripted scenario under the simulator's clock (`day`: per household an
        /// electric car's commutes and evening charge and a petrol car's trip on 2026-12-01,
        /// UTC, each household 11 minutes after the one before; `busy`: every car driving
        /// fifty minutes of every hour; Extended Vehicle answers as shut down). Set the clock
        /// with POST /_sim/clock {"now": <unix s>}; GET /_sim/scenario lists the day's uploads.
        #[arg(long, value_enum, value_name = "NAME")]
        scenario: Option<crate::simulator::Scenario>,
        /// Write a token file this simulator accepts (its access token already expired).
        #[arg(long, value_name = "PATH")]
        write_token: Option<PathBuf>,
    },
}

impl Cli {
    /// Output flags replace the `[output]` table when any is given. A URL that is not http(s)
    /// with a host is a usage error (exit 2).
    pub fn outputs(&self) -> Result<Option<Outputs>, Fatal> {
        if !self.stdout
            && self.textfile.is_none()
            && self.pushgateway.is_none()
            && self.remote_write.is_none()
        {
            return Ok(None);
        }
        let url = |flag: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    crate::config::http_url(t)
                        .map_err(|why| Fatal::new(ExitCode::Usage, format!("{flag}: {why}")))
                })
                .transpose()
        };
        Ok(Some(Outputs {
            stdout: self.stdout,
            textfile: self.textfile.clone(),
            pushgateway: url("--pushgateway", &self.pushgateway)?,
            remote_write: url("--remote-write", &self.remote_write)?,
        }))
    }

    pub fn apply(&self, settings: &mut Settings) -> Result<(), Fatal> {
        if let Some(o) = self.outputs()? {
            settings.output = o;
        }
        if let Some(l) = self.listen {
            settings.web.listen = Some(l);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the waits a user gives: `login --timeout 0s` gave up at once, though every
    /// timeout must be more than 0s.
    #[test]
    fn waits_and_periods_must_be_more_than_zero() {
        for args in [
            &["volvo-collect", "login", "--timeout", "0s"][..],
            &["volvo-collect", "check", "--plan", "--interval", "0s"],
            &["volvo-collect", "login", "--timeout", "2h"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["volvo-collect", "login", "--timeout", "30s"]).is_ok());
        assert!(Cli::try_parse_from(["volvo-collect", "demo", "--latency", "0s"]).is_ok());
    }
}
