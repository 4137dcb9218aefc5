//! `volvo-collect check`: a preflight of what a run depends on, in seconds and with at most two
//! requests per account (a refresh when the access token is about to expire, the vehicle list),
//! one `ok`/`info`/`warn`/`FAIL` line per finding; a `FAIL` is something a run would fail on
//! (exit 1), `info` a fact to know that needs nothing done.
//! `--plan` adds the request budget per API key, so a fleet or an interval that would exhaust
//! Volvo's daily quota is caught before it does.
//!
//! [`findings`] holds the lines and their helpers; [`account`] the checks of one account;
//! [`outputs`] the output probes; [`plan`] the request plan (each using only those before it).
//! This module ties them together.

mod account;
mod findings;
mod outputs;
mod plan;

use std::io::Write;
use std::time::Duration;

pub use account::answer_level;
pub use findings::{Finding, Level};

use crate::claims;
use crate::config::{Account, Settings};
use crate::error::{ExitCode, Fatal};
use findings::Findings;
use plan::PlannedAccount;

/// No single probe may hold the check up for longer than this, whatever the configured
/// timeouts: the check is meant to answer in seconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the command line asked of the check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub plan: bool,
    pub offline: bool,
    pub account: Option<String>,
    pub cars: Option<usize>,
    pub interval: Option<Duration>,
}

/// Runs the check and prints its findings (and the plan) on standard output.
pub async fn run(settings: &Settings, opts: &Options) -> Result<ExitCode, Fatal> {
    if opts
        .interval
        .is_some_and(|i| i < crate::config::MIN_INTERVAL)
    {
        return Err(Fatal::new(
            ExitCode::Usage,
            "--interval is too short: use at least 10s, like collect.interval",
        ));
    }
    let accounts: Vec<&Account> = match &opts.account {
        Some(name) => vec![settings.select_account(Some(name))?],
        None => settings.accounts.iter().collect(),
    };
    let multi = settings.accounts.len() > 1;
    let head = head_findings(settings, opts);

    let http = crate::http::client(settings.request_timeout.min(PROBE_TIMEOUT));
    let (checked, outputs) = tokio::join!(
        futures_util::future::join_all(accounts.iter().map(|a| {
            account::check_account(settings, a, &http, opts.offline, settings.login_command(a))
        })),
        outputs::check_outputs(settings, opts.offline),
    );

    let shares = shares(settings, &accounts, &checked);
    let mut lines: Vec<String> = head.0.iter().map(|f| f.line("")).collect();
    for (a, c) in accounts.iter().zip(&checked) {
        let prefix = if multi {
            format!("account {}: ", a.name)
        } else {
            String::new()
        };
        lines.extend(c.findings.iter().map(|f| f.line(&prefix)));
        lines.extend(shared_finding(shares.get(&a.name)).map(|f| f.line(&prefix)));
    }
    lines.extend(outputs.iter().map(|f| f.line("")));
    let fails = checked
        .iter()
        .flat_map(|c| &c.findings)
        .chain(&outputs)
        .chain(&head.0)
        .filter(|f| f.level == Level::Fail)
        .count();

    if opts.plan {
        let interval = opts.interval.unwrap_or(settings.interval);
        let fleet: Vec<PlannedAccount> = accounts
            .iter()
            .zip(&checked)
            .map(|(a, c)| {
                let theirs = shares.get(&a.name).map_or(0, |s| s.theirs.len());
                PlannedAccount::new(a, c.listed.as_ref().map(Vec::len), opts.cars, theirs)
            })
            .collect();
        lines.push(String::new());
        lines.extend(plan::plan_lines(settings, &fleet, interval));
    }

    let mut out = std::io::stdout().lock();
    crate::error::stdout_written(
        lines
            .iter()
            .try_for_each(|l| writeln!(out, "{}", crate::secret::mask(l)))
            .and_then(|()| out.flush()),
    )?;
    drop(out);
    if fails > 0 {
        crate::secret::say(&format!(
            "volvo-collect: check: {fails} {} a run would fail on; fix the FAIL lines above",
            if fails == 1 { "problem" } else { "problems" }
        ));
        return Ok(ExitCode::Partial);
    }
    Ok(ExitCode::Ok)
}

/// The findings about the whole configuration, printed before the accounts'.
fn head_findings(settings: &Settings, opts: &Options) -> Findings {
    let mut head = Findings::default();
    let shown_path = std::fs::canonicalize(&settings.config_path)
        .unwrap_or_else(|_| settings.config_path.clone());
    let names: Vec<&str> = settings.accounts.iter().map(|a| a.name.as_str()).collect();
    head.ok(format!(
        "config: {} parsed ({} {}: {})",
        shown_path.display(),
        names.len(),
        if names.len() == 1 {
            "account"
        } else {
            "accounts"
        },
        names.join(", ")
    ));
    if opts.offline {
        head.warn("offline: no requests made, so the access token, the API key, the vehicle list, the Pushgateway and remote write are not checked");
    }
    head
}

/// Each account's share of the cars, by name, from what is known: configured VINs, the
/// vehicle list this check asked, else the last one in the state file. A car on several
/// accounts is the first one's, as in a run.
fn shares(
    settings: &Settings,
    checked_accounts: &[&Account],
    checked: &[account::AccountCheck],
) -> std::collections::BTreeMap<String, claims::Share> {
    let asked = |a: &Account| {
        let i = checked_accounts.iter().position(|c| c.name == a.name)?;
        checked[i].listed.clone()
    };
    // Configured cars count where the list asked now confirms them, as a run tells them.
    let known = |a: &Account| match (a.vins.is_empty(), asked(a)) {
        (false, Some(listed)) => Some(
            a.vins
                .iter()
                .filter(|v| listed.contains(v))
                .cloned()
                .collect(),
        ),
        (false, None) => Some(a.vins.clone()),
        (true, Some(listed)) => Some(listed),
        (true, None) => crate::run::known_vins(a),
    };
    settings
        .accounts
        .iter()
        .zip(claims::share(&settings.accounts, known))
        .filter_map(|(a, s)| Some((a.name.clone(), s?)))
        .collect()
}

/// The cars an account leaves to an earlier account of the file, which lists them too.
fn shared_finding(share: Option<&claims::Share>) -> Option<Finding> {
    let theirs = &share?.theirs;
    (!theirs.is_empty()).then(|| Finding {
        level: Level::Ok,
        text: format!(
            "cars on an earlier account too: {}; that account reads them (each car is read once, by the first account in the file that lists it)",
            theirs.join(", ")
        ),
    })
}
