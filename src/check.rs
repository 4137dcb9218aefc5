//! `volvo-collect check`: a preflight of what a run depends on, in seconds and with at most two
//! requests per account (a refresh when the access token is about to expire, the vehicle list),
//! one `ok`/`warn`/`FAIL` line per finding; a `FAIL` is something a run would fail on (exit 1).
//! `--plan` adds the request budget per API key, so a fleet or an interval that would exhaust
//! Volvo's daily quota is caught before it does.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::api::client::{describe, Client};
use crate::api::{connected, ApiError};
use crate::auth::refresh::{self, Freshness, OAuthClient, REFRESH_MARGIN_S};
use crate::auth::token::{self, Token};
use crate::config::{is_extended_vehicle_scope, HttpOutput, PushgatewayOptions, Settings};
use crate::error::{ExitCode, Fatal};
use crate::schedule;
use crate::secret::Secret;
use crate::sinks::http as sink_http;
use crate::state::State;

/// No single probe may hold the check up for longer than this, whatever the configured
/// timeouts: the check is meant to answer in seconds.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The refresh token dies after 7 days unused; warn with two days to spare.
const ROTATION_WARN_S: i64 = 5 * 86_400;
/// The grant lasts about 6 months; warn a month ahead.
const LOGIN_WARN_S: i64 = 150 * 86_400;
const DEVELOPER_PORTAL: &str = "https://developer.volvocars.com";

/// What the command line asked of the check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub plan: bool,
    pub offline: bool,
    pub account: Option<String>,
    pub cars: Option<usize>,
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

impl Finding {
    fn line(&self, prefix: &str) -> String {
        format!("{:<4} {prefix}{}", self.level.label(), self.text)
    }
}

#[derive(Debug, Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, level: Level, text: impl Into<String>) {
        self.0.push(Finding {
            level,
            text: text.into(),
        });
    }
    fn ok(&mut self, text: impl Into<String>) {
        self.push(Level::Ok, text);
    }
    fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warn, text);
    }
    fn fail(&mut self, text: impl Into<String>) {
        self.push(Level::Fail, text);
    }
}

/// One account's findings, and the size of its fleet when the vehicle list answered.
struct AccountCheck {
    findings: Vec<Finding>,
    listed: Option<usize>,
}

/// Runs the check and prints its findings (and the plan) on standard output.
pub async fn run(settings: &Settings, opts: &Options) -> Result<ExitCode, Fatal> {
    if opts.interval.is_some_and(|i| i < Duration::from_secs(10)) {
        return Err(Fatal::new(
            ExitCode::Usage,
            "--interval is too short: use at least 10s, like collect.interval",
        ));
    }
    let accounts: Vec<Settings> = match &opts.account {
        Some(name) => vec![settings.select_account(Some(name))?],
        None => settings
            .accounts
            .iter()
            .map(|a| settings.for_account(a))
            .collect(),
    };
    let multi = settings.accounts.len() > 1;
    let config_flag = config_flag(&settings.config_path);

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

    let http = crate::run::http_client(settings.request_timeout.min(PROBE_TIMEOUT));
    let (checked, outputs) = tokio::join!(
        futures_util::future::join_all(accounts.iter().map(|s| {
            let login = login_command(&config_flag, multi.then_some(s.account.name.as_str()));
            check_account(s, &http, opts.offline, login)
        })),
        check_outputs(settings, opts.offline),
    );

    let mut lines: Vec<String> = head.0.iter().map(|f| f.line("")).collect();
    for (s, c) in accounts.iter().zip(&checked) {
        let prefix = if multi {
            format!("account {}: ", s.account.name)
        } else {
            String::new()
        };
        lines.extend(c.findings.iter().map(|f| f.line(&prefix)));
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
            .map(|(s, c)| PlannedAccount::new(s, c.listed, opts.cars))
            .collect();
        lines.push(String::new());
        lines.extend(plan_lines(settings, &fleet, interval));
    }

    let mut out = std::io::stdout().lock();
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
    drop(out);
    if fails > 0 {
        eprintln!(
            "volvo-collect: check: {fails} {} a run would fail on; fix the FAIL lines above",
            if fails == 1 { "problem" } else { "problems" }
        );
        return Ok(ExitCode::Partial);
    }
    Ok(ExitCode::Ok)
}

// ---- one account ----------------------------------------------------------------------------

async fn check_account(
    s: &Settings,
    http: &reqwest::Client,
    offline: bool,
    login: String,
) -> AccountCheck {
    let mut f = Findings::default();
    let now = refresh::now();
    let table = if s.account.table == "volvo" {
        "[volvo]".to_string()
    } else {
        format!("the [[account]] named {:?}", s.account.name)
    };
    let key_name = |k: &str| {
        if s.account.table == "volvo" {
            format!("volvo.{k}")
        } else {
            format!("{k} in {table}")
        }
    };

    // Secrets: only whether they are there; their values are never shown.
    for (what, present, key, env) in [
        (
            "client secret",
            s.account.client_secret.is_some(),
            "client_secret",
            &s.account.env_client_secret,
        ),
        (
            "API key",
            s.account.api_key.is_some(),
            "api_key",
            &s.account.env_api_key,
        ),
    ] {
        if present {
            f.ok(format!("{what}: present"));
        } else {
            f.fail(format!(
                "{what}: missing: set {key} (or {key}_file) in {table}, or the environment variable {env}"
            ));
        }
    }

    // The token file, as it is on disk; shown absolute, since relative paths resolve against
    // the config file's folder rather than the current one.
    let path = &std::path::absolute(&s.account.token_file)
        .unwrap_or_else(|_| s.account.token_file.clone());
    let original = match token::read(path) {
        Ok(t) => t,
        Err(e) => {
            f.fail(format!(
                "token file: {}",
                e.message.replace("`volvo-collect login`", &login)
            ));
            f.warn("access token and API key: not checked (no usable token file)");
            state_findings(s, &mut f, now);
            return AccountCheck {
                findings: f.0,
                listed: None,
            };
        }
    };
    let meta = std::fs::metadata(path).ok();
    let mode = meta.as_ref().map(|m| m.permissions().mode() & 0o777);
    match mode {
        Some(m) if m & 0o077 != 0 => f.warn(format!(
            "token file {}: mode {m:04o} lets other users read your tokens: chmod 600 {}",
            path.display(),
            path.display()
        )),
        _ => f.ok(format!(
            "token file {}: readable, mode {:04o}",
            path.display(),
            mode.unwrap_or(0o600)
        )),
    }
    // A refresh that cannot save the rotated refresh token logs the user out: find out before.
    let folder = parent_folder(path);
    let folder_ok = match probe_folder(&folder) {
        Ok(()) => true,
        Err(e) => {
            f.fail(format!(
                "token folder {}: {e}: every refresh saves the rotated refresh token (and takes the lock {}) there; give the collector's user write access to it",
                folder.display(),
                token::lock_path(path).display()
            ));
            false
        }
    };
    if let Some(open) = token::open_folder(path) {
        f.warn(format!(
            "token folder {}: any user can write to it and replace your token file: chmod o-w {} (or chmod +t)",
            open.display(),
            open.display()
        ));
    }
    // Run as another user (sudo), a refresh would leave the new token file owned by that user
    // and unreadable to the collector, which would then need a new login.
    let foreign_owner = match (meta.as_ref().map(|m| m.uid()), effective_uid()) {
        (Some(owner), Some(me)) if owner != me => Some((owner, me)),
        _ => None,
    };

    // The access token: refreshed here when a run would refresh it, with the run's own locked,
    // rotation-safe step.
    let needs_refresh = original.expires_within(now, REFRESH_MARGIN_S);
    let mut refreshed = false;
    let current: Option<Token> = if !needs_refresh {
        f.ok(format!(
            "access token: valid for another {}",
            human(original.expires_at - now)
        ));
        Some(original.clone())
    } else if offline {
        f.ok(format!(
            "access token: {}; a run refreshes it first (--offline: not refreshed now)",
            expiry_text(original.expires_at, now)
        ));
        None
    } else if let Some((owner, me)) = foreign_owner {
        f.warn(format!(
            "access token: {}, and not refreshed: the token file belongs to uid {owner} but this check runs as uid {me}, and a refresh would leave the rotated token unreadable to the collector; run the check as the collector's user (sudo -u <user> volvo-collect check)",
            expiry_text(original.expires_at, now)
        ));
        None
    } else if !folder_ok || s.account.client_secret.is_none() {
        f.warn(format!(
            "access token: {}; not refreshed (see above)",
            expiry_text(original.expires_at, now)
        ));
        None
    } else {
        let secret = s.account.client_secret.clone().unwrap_or_default();
        let oauth = OAuthClient {
            client_id: &s.account.client_id,
            client_secret: &secret,
            auth_url: &s.auth_url,
            token_url: &s.token_url,
        };
        match refresh::ensure_fresh(http, &oauth, path).await {
            Ok((t, Freshness::Refreshed)) => {
                refreshed = true;
                f.ok(format!(
                    "access token: refreshed at Volvo ID, rotated refresh token saved; the new access token expires in {}",
                    human(t.expires_at - refresh::now())
                ));
                Some(t)
            }
            // Another run refreshed it while this check waited for the lock.
            Ok((t, Freshness::Fresh)) => {
                f.ok(format!(
                    "access token: valid for another {}",
                    human(t.expires_at - refresh::now())
                ));
                Some(t)
            }
            Err(e) if e.code == ExitCode::LoginNeeded => {
                f.fail(format!(
                    "access token refresh: {}",
                    e.message.replace("`volvo-collect login`", &login)
                ));
                None
            }
            Err(e) => {
                f.warn(format!("access token refresh: {}", e.message));
                None
            }
        }
    };
    let latest = current.as_ref().unwrap_or(&original);

    rotation_finding(&mut f, &original, refreshed, now, &login);
    match original.logged_in_at {
        Some(t) if now - t > LOGIN_WARN_S => f.warn(format!(
            "login: {} ago; Volvo's grant lasts about 6 months from login: run {login} soon, before runs start failing",
            human(now - t)
        )),
        Some(t) => f.ok(format!(
            "login: {} ago (the grant lasts about 6 months)",
            human(now - t)
        )),
        None => f.ok("login: time not recorded in the token file (the grant lasts about 6 months from login)"),
    }
    scope_finding(&mut f, s, latest, &login);

    // One request proves the API key, the token and its vehicle scope together.
    let mut listed = None;
    match (&current, &s.account.api_key) {
        _ if offline => {}
        (Some(t), Some(key)) => match vehicle_list(http, s, key, &t.access_token).await {
            Ok(vins) => {
                f.ok(format!(
                    "API key and token: GET {}/vehicles answered 200 with {} {}",
                    connected::PREFIX,
                    vins.len(),
                    if vins.len() == 1 { "vehicle" } else { "vehicles" }
                ));
                listed = Some(vins);
            }
            Err(ApiError::BadApiKey) => f.fail(format!(
                "API key: Volvo refused it (HTTP 401, invalid VCC API key): check {} (or the environment variable {}): it must be the VCC API key of your application in Volvo's developer portal",
                key_name("api_key"),
                s.account.env_api_key
            )),
            Err(ApiError::Unauthorized(status)) => f.fail(format!(
                "access token: Volvo refused it (HTTP {status}): run {login}"
            )),
            Err(ApiError::Quota { reset_after }) => f.warn(format!(
                "API key: its daily quota of {} requests is used up{}; runs collect nothing until then",
                thousands(schedule::DAILY_QUOTA),
                match reset_after {
                    Some(d) => format!(
                        "; Volvo replenishes it in {} (at {})",
                        human(d.as_secs() as i64),
                        at(now + d.as_secs() as i64)
                    ),
                    None => String::new(),
                }
            )),
            Err(e) => f.warn(format!(
                "API key and token: not proven: the vehicle list answered: {e}; try again later"
            )),
        },
        _ => f.warn("API key and token: not checked (see above)"),
    }

    // The configured cars against the account.
    match &listed {
        Some(on_account) if s.account.vins.is_empty() => {
            if on_account.is_empty() {
                f.warn("cars: none on this account: add the car to your Volvo ID in the Volvo Cars app");
            } else {
                f.ok(format!(
                    "cars: every car on the account is collected: {}",
                    on_account.join(", ")
                ));
            }
        }
        Some(on_account) => {
            for vin in &s.account.vins {
                if on_account.contains(vin) {
                    f.ok(format!("car {vin}: on the account"));
                } else {
                    f.fail(format!(
                        "car {vin} ({}): not on this account: remove it, or log in with the account that owns it",
                        key_name("vins")
                    ));
                }
            }
        }
        None if !s.account.vins.is_empty() && !offline => f.warn(format!(
            "cars: {} not compared with the account (no vehicle list)",
            key_name("vins")
        )),
        None => {}
    }

    state_findings(s, &mut f, now);
    AccountCheck {
        findings: f.0,
        listed: listed.map(|l| l.len()),
    }
}

/// How long the refresh token has lived unused. A check that refreshes resets that clock, but
/// an old rotation before it still means no run has refreshed for days: is the timer running?
fn rotation_finding(f: &mut Findings, original: &Token, refreshed: bool, now: i64, login: &str) {
    let (since, what) = match (original.refreshed_at, original.logged_in_at) {
        (Some(t), _) => (t, "rotated"),
        (None, Some(t)) => (t, "issued at login"),
        (None, None) if refreshed => {
            f.ok("refresh token: rotated now by this check, new one saved");
            return;
        }
        (None, None) => {
            f.ok("refresh token: rotation time not recorded yet (the next refresh records it)");
            return;
        }
    };
    let age = now - since;
    match (refreshed, age > ROTATION_WARN_S) {
        (false, false) => f.ok(format!(
            "refresh token: {what} {} ago (it dies after 7 days unused)",
            human(age)
        )),
        (false, true) => f.warn(format!(
            "refresh token: {what} {} ago and it dies after 7 days unused: make sure the timer runs (any run rotates it), or it will need {login}",
            human(age)
        )),
        (true, false) => f.ok(format!(
            "refresh token: rotated now by this check (before: {what} {} ago), new one saved",
            human(age)
        )),
        (true, true) => f.warn(format!(
            "refresh token: rotated now by this check, but before that it was {what} {} ago: no run refreshed it for days; make sure the timer runs (it dies after 7 days unused)",
            human(age)
        )),
    }
}

fn scope_finding(f: &mut Findings, s: &Settings, t: &Token, login: &str) {
    let Some(granted) = &t.scope else {
        f.warn(format!(
            "scopes: the token file does not list the granted scopes, so the {} needed ones cannot be compared: run {login} to record them",
            crate::endpoints::scopes(s).len()
        ));
        return;
    };
    let needed = crate::endpoints::scopes(s);
    // Extended Vehicle's scopes are not the account's fault when missing: Volvo retired the
    // API, and applications created since may not be able to register them.
    let (retired, live): (Vec<String>, Vec<String>) = needed
        .into_iter()
        .partition(|n| is_extended_vehicle_scope(n));
    let missing = crate::endpoints::missing_scopes(&live, granted);
    let retired_missing = crate::endpoints::missing_scopes(&retired, granted);
    let granted: Vec<&str> = granted.split_whitespace().collect();
    if missing.is_empty() {
        f.ok(format!("scopes: all {} needed scopes granted", live.len()));
    } else {
        f.fail(format!(
            "scopes: {} of {} needed scopes not granted: {}: register them for your application (client ID {}) in Volvo's developer portal ({DEVELOPER_PORTAL}), then run {login}",
            missing.len(),
            live.len(),
            missing.join(" "),
            s.account.client_id
        ));
    }
    extended_vehicle_finding(f, s, &granted, &retired_missing, login);
}

/// Whether runs read the retired Extended Vehicle API for this account, and why: information
/// only, since a 2026 account is complete without it.
fn extended_vehicle_finding(
    f: &mut Findings,
    s: &Settings,
    granted: &[&str],
    missing: &[&str],
    login: &str,
) {
    let src = &s.sources;
    if !src.extended_vehicle {
        return;
    }
    let has: Vec<&str> = granted
        .iter()
        .copied()
        .filter(|g| is_extended_vehicle_scope(g))
        .collect();
    let retired = "Volvo retired this API on 2025-12-31";
    if has.is_empty() && !src.extended_vehicle_explicit {
        f.ok(format!(
            "extended_vehicle: not read, no exve:* scope granted ({retired}; the other APIs carry the data); to read it anyway set sources.extended_vehicle = true and run {login}"
        ));
    } else if has.is_empty() {
        f.warn(format!(
            "extended_vehicle: sources.extended_vehicle = true, but no exve:* scope is granted ({retired}): runs ask it and report it failed; register the scopes for your application and run {login}, or remove the setting"
        ));
    } else if !missing.is_empty() {
        f.ok(format!(
            "extended_vehicle: read with {} exve:* scopes granted; not granted: {} ({retired}: the values that need them stay absent)",
            has.len(),
            missing.join(" ")
        ));
    } else {
        f.ok(format!(
            "extended_vehicle: read, {} exve:* scopes granted ({retired}; when it answers that it is shut down, runs stop asking for a day)",
            has.len()
        ));
    }
}

/// What the state file says: APIs that answered they are gone, and an exhausted quota.
fn state_findings(s: &Settings, f: &mut Findings, now: i64) {
    let src = &s.sources;
    let onoff = |on: bool| if on { "on" } else { "off" };
    f.ok(format!(
        "sources: connected_vehicle {}, energy {}, location {}, extended_vehicle {}",
        onoff(src.connected_vehicle),
        onoff(src.energy),
        onoff(src.location),
        match (src.extended_vehicle, src.extended_vehicle_explicit) {
            (false, _) => "off",
            (true, true) => "on",
            (true, false) => "when its scopes are granted",
        }
    ));
    let state = State::load(&s.account.state_file);
    let state_path =
        std::path::absolute(&s.account.state_file).unwrap_or_else(|_| s.account.state_file.clone());
    for (api, until) in &state.api_unavailable {
        let on = match api.as_str() {
            "connected_vehicle" => src.connected_vehicle,
            "energy" => src.energy,
            "location" => src.location,
            "extended_vehicle" => src.extended_vehicle,
            _ => false,
        };
        if on && *until > now {
            f.warn(format!(
                "source {api}: Volvo answered that this API is shut down; runs skip it until {} (state file {}); set sources.{api} = false to stop asking",
                at(*until),
                state_path.display()
            ));
        }
    }
    match state.quota_until.filter(|u| *u > now) {
        Some(until) => f.warn(format!(
            "daily quota: used up until {} (in {}, state file {}); runs make no requests until then",
            at(until),
            human(until - now),
            state_path.display()
        )),
        None => f.ok("daily quota: not used up (state file)"),
    }
}

/// `GET /connected-vehicle/v2/vehicles`, exactly once: the run's client retries, and the check
/// promises a bounded number of requests.
async fn vehicle_list(
    http: &reqwest::Client,
    s: &Settings,
    api_key: &Secret,
    access_token: &Secret,
) -> Result<Vec<String>, ApiError> {
    let client = Client::single(
        http.clone(),
        s.api_url.clone(),
        api_key.clone(),
        access_token.clone(),
        s.request_timeout,
    );
    connected::vehicles_once(&client).await
}

// ---- outputs --------------------------------------------------------------------------------

async fn check_outputs(settings: &Settings, offline: bool) -> Vec<Finding> {
    let mut f = Findings::default();
    let o = &settings.output;
    if o.is_empty() {
        if settings.web.listen.is_none() {
            f.warn("outputs: none in [output]: a `--once` run needs --stdout, --textfile, --pushgateway or --remote-write on its command line");
        } else {
            f.ok("outputs: none in [output]; the listener serves the metrics");
        }
    }
    if o.stdout {
        f.ok("output stdout: on");
    }
    if let Some(path) = &o.textfile {
        textfile_finding(&mut f, path);
    }
    let push = async {
        match &o.pushgateway {
            Some(url) if !offline => Some(pushgateway_finding(url, &settings.pushgateway).await),
            _ => None,
        }
    };
    let remote = async {
        match &o.remote_write {
            Some(url) if !offline => Some(remote_write_finding(url, &settings.remote_write).await),
            _ => None,
        }
    };
    let (push, remote) = tokio::join!(push, remote);
    f.0.extend(push);
    f.0.extend(remote);
    if let Some(addr) = settings.web.listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                drop(l);
                f.ok(format!("listener {addr}: free to bind"));
            }
            // It may be this collector's own long-running mode, which the check cannot tell.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => f.warn(format!(
                "listener {addr}: in use: fine if volvo-collect's long-running mode runs there; otherwise stop what uses it or change web.listen"
            )),
            Err(e) => f.fail(format!(
                "listener {addr}: cannot bind ({e}): change web.listen (ports below 1024 need privileges)"
            )),
        }
    }
    f.0
}

fn textfile_finding(f: &mut Findings, path: &Path) {
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = parent_folder(path);
    let name = path.display();
    if path.is_dir() {
        f.fail(format!(
            "output textfile {name}: is a folder: name a file in it, such as {}",
            path.join("volvo.prom").display()
        ));
        return;
    }
    if let Err(e) = probe_folder(&folder) {
        f.fail(format!(
            "output textfile {name}: {e}: {}",
            if folder.exists() {
                "give the collector's user write access to it"
            } else {
                "create it (node_exporter's --collector.textfile.directory) with write access for the collector's user"
            }
        ));
        return;
    }
    if path.extension().and_then(|e| e.to_str()) != Some("prom") {
        f.warn(format!(
            "output textfile {name}: node_exporter reads only files ending in .prom: rename it, such as {}",
            path.with_extension("prom").display()
        ));
    } else {
        f.ok(format!(
            "output textfile {name}: folder {} writable",
            folder.display()
        ));
    }
}

async fn pushgateway_finding(url: &Url, o: &PushgatewayOptions) -> Finding {
    let mut f = Findings::default();
    let shown = shown_url(url);
    let ready = ready_url(url);
    let client = match sink_http::client(&o.http) {
        Ok(c) => c,
        Err(e) => {
            f.fail(format!("output pushgateway {shown}: {e}"));
            return f.0.remove(0);
        }
    };
    let req = client.get(ready).timeout(o.http.timeout.min(PROBE_TIMEOUT));
    match sink_http::authorize(req, &o.http.auth).send().await {
        Ok(r) if r.status().is_success() => {
            f.ok(format!("output pushgateway {shown}: ready (GET /-/ready answered {})", r.status().as_u16()))
        }
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => f.fail(format!(
            "output pushgateway {shown}: refused the credentials (HTTP {}): check pushgateway.username and password",
            r.status().as_u16()
        )),
        Ok(r) if r.status().as_u16() == 404 => f.warn(format!(
            "output pushgateway {shown}: GET /-/ready answered 404: is this the Pushgateway's base URL (without /metrics/...)?"
        )),
        Ok(r) => f.fail(format!(
            "output pushgateway {shown}: not ready (GET /-/ready answered HTTP {})",
            r.status().as_u16()
        )),
        Err(e) => f.fail(format!(
            "output pushgateway {shown}: cannot reach it: {}: start the Pushgateway, or fix output.pushgateway",
            describe(&e)
        )),
    }
    f.0.remove(0)
}

/// Remote-write receivers differ in every path but the write itself, and a write would store
/// a sample; any HTTP answer from the origin proves the network, TLS and the receiver's port.
async fn remote_write_finding(url: &Url, o: &HttpOutput) -> Finding {
    let mut f = Findings::default();
    let shown = shown_url(url);
    let origin = url.origin().ascii_serialization();
    let client = match sink_http::client(o) {
        Ok(c) => c,
        Err(e) => {
            f.fail(format!("output remote_write {shown}: {e}"));
            return f.0.remove(0);
        }
    };
    match client
        .get(format!("{origin}/"))
        .timeout(o.timeout.min(PROBE_TIMEOUT))
        .send()
        .await
    {
        Ok(r) => f.ok(format!(
            "output remote_write {shown}: {origin} answers (HTTP {}); the write itself is not tried",
            r.status().as_u16()
        )),
        Err(e) => f.fail(format!(
            "output remote_write {shown}: cannot reach {origin}: {}: start the receiver, or fix output.remote_write",
            describe(&e)
        )),
    }
    f.0.remove(0)
}

/// `<base>/-/ready`, keeping a base path (a Pushgateway behind a reverse proxy).
fn ready_url(base: &Url) -> Url {
    let mut url = base.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty().extend(["-", "ready"]);
    }
    url
}

/// A URL as printed: without user info or query, where credentials may hide.
fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

// ---- the plan -------------------------------------------------------------------------------

/// One account in the plan: its settings and how many cars it collects.
struct PlannedAccount<'a> {
    settings: &'a Settings,
    cars: usize,
    /// Where the number of cars came from, for the reader.
    from: String,
}

impl<'a> PlannedAccount<'a> {
    fn new(s: &'a Settings, listed: Option<usize>, flag: Option<usize>) -> Self {
        // An explicit --cars that loses to what the config or the account says is named, so
        // that a "what if" plan is not silently about another fleet.
        let unused = |n: usize| match flag {
            Some(c) if c != n => format!("; --cars {c} not used"),
            _ => String::new(),
        };
        let (cars, from) = if !s.account.vins.is_empty() {
            let n = s.account.vins.len();
            (n, format!("volvo.vins{}", unused(n)))
        } else if let Some(n) = listed {
            (n, format!("the account's vehicle list{}", unused(n)))
        } else if let Some(n) = flag {
            (n, "--cars".to_string())
        } else {
            (1, "assumed; pass --cars N".to_string())
        };
        PlannedAccount {
            settings: s,
            cars,
            from,
        }
    }
}

/// The plan as printed: per API key a table (endpoint, how often in the worst case, requests a
/// day), the worst case against the key's budget, the typical day beside it, the stretch when
/// the cars need more than the quota allows, and the minute window.
fn plan_lines(settings: &Settings, fleet: &[PlannedAccount], interval: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let runs_a_day = 86_400u64.div_ceil(interval.as_secs().max(1));
    // Accounts of one application share its API key, and with it the daily quota.
    let mut groups: Vec<Vec<&PlannedAccount>> = Vec::new();
    for a in fleet {
        let same_key = groups.iter_mut().find(|g| {
            let k = &g[0].settings.account.api_key;
            k.is_some() && *k == a.settings.account.api_key
        });
        match same_key {
            Some(g) => g.push(a),
            None => groups.push(vec![a]),
        }
    }
    for group in groups {
        let names: Vec<String> = group
            .iter()
            .map(|a| {
                format!(
                    "{} ({} {}: {})",
                    a.settings.account.name,
                    a.cars,
                    if a.cars == 1 { "car" } else { "cars" },
                    a.from
                )
            })
            .collect();
        lines.push(format!(
            "Request plan of the API key of account {}, a run every {} ({} a day):",
            names.join(" and account "),
            human(interval.as_secs() as i64),
            thousands(runs_a_day)
        ));
        let plan = schedule::Fleet {
            schedule: &schedule::Schedule::with_overrides(&settings.schedule),
            sources: &settings.sources,
            interval,
            cars: group.iter().map(|a| a.cars).sum(),
            accounts: group.len(),
        }
        .plan(schedule::DAILY_BUDGET);
        lines.extend(plan_table(&plan));
        lines.push(budget_finding(&plan).line(""));
        let multi = group.len() > 1;
        for a in &group {
            let who = if multi {
                format!("account {}: ", a.settings.account.name)
            } else {
                String::new()
            };
            lines.push(rate_finding(a.settings).line(&who));
        }
    }
    lines
}

/// The plan's rows and totals.
fn plan_table(plan: &schedule::DayPlan) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:<24} {:>10} {:>13}",
        "endpoint", "every", "requests/day"
    )];
    for r in &plan.rows {
        let every = if r.period == 0 {
            "every run".to_string()
        } else {
            human(r.period as i64)
        };
        let note = if r.endpoint.key == "extended_values" {
            format!(
                "  ({} values a car, estimated)",
                schedule::EXTENDED_RESOURCES_PER_CAR
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "  {:<24} {every:>10} {:>13}{note}",
            r.endpoint.key,
            thousands(r.per_day)
        ));
    }
    lines.push(format!(
        "  {:<24} {:>10} {:>13}  (worst case: every car awake all day)",
        "total",
        "",
        thousands(plan.total)
    ));
    lines.push(format!(
        "  {:<24} {:>10} {:>13}  (a typical day: asleep but for two 40-minute trips and a charge)",
        "estimate",
        "",
        thousands(plan.estimate)
    ));
    lines
}

/// The worst case against the key's budget, and what was stretched to fit it.
fn budget_finding(plan: &schedule::DayPlan) -> Finding {
    let quota = thousands(schedule::DAILY_QUOTA);
    let budget = thousands(schedule::DAILY_BUDGET);
    let total = thousands(plan.total);
    if plan.total > schedule::DAILY_BUDGET {
        return Finding {
            level: Level::Warn,
            text: format!(
                "budget: {total} requests a day even with every interval stretched, above the {budget} planned of Volvo's {quota} per API key: collect fewer cars per key, or give some of them an API key of their own ([[account]] with another application)"
            ),
        };
    }
    let text = if plan.stretch.is_stretched() {
        let [daily, hourly, quarter] = plan.stretch.tiers;
        format!(
            "budget: {total} requests a day, within {budget} of Volvo's {quota} per API key because the intervals are stretched: daily tier ×{daily}, hourly ×{hourly}, quarter-hour ×{quarter}, every-run endpoints every {} runs; an API key of its own for some cars ([[account]]) keeps them every run",
            plan.stretch.every_runs
        )
    } else {
        format!(
            "budget: {total} requests a day at most, {}% of Volvo's {quota} per API key (planned within {budget})",
            (plan.total * 100).div_ceil(schedule::DAILY_QUOTA)
        )
    };
    Finding {
        level: Level::Ok,
        text,
    }
}

/// The minute window: what pacing does with a run that needs more than a minute allows.
fn rate_finding(s: &Settings) -> Finding {
    let rpm = s.requests_per_minute as u64;
    let limit = schedule::PER_MINUTE_LIMIT;
    let (level, text) = if rpm == 0 {
        (Level::Warn, format!(
            "rate: the minute window is off (collect.requests_per_minute = 0): a large run can exceed Volvo's {limit} a minute and get HTTP 429; set collect.requests_per_minute = 90"
        ))
    } else if rpm > limit {
        (Level::Warn, format!(
            "rate: collect.requests_per_minute = {rpm} is above Volvo's {limit} a minute: set it to 90"
        ))
    } else {
        (Level::Ok, format!(
            "rate: every run of this account (timer, hand runs, check) shares a window of {rpm} requests a minute (collect.requests_per_minute) below Volvo's {limit}; what does not fit is deferred to the next run, never refused"
        ))
    };
    Finding { level, text }
}

// ---- small helpers --------------------------------------------------------------------------

/// Creates and removes a file in `dir`: the only sure test that this user can write there.
fn probe_folder(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            format!("{} is not a folder", dir.display())
        } else {
            format!("the folder {} does not exist", dir.display())
        });
    }
    // Hidden, and not ending in `.prom`, so that node_exporter never reads it.
    let probe = dir.join(format!(
        ".volvo-collect-check.{}.{}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn parent_folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The effective user ID, from `/proc/self/status` (`Uid: real effective saved fs`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_effective_uid(&status)
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
}

/// `--config PATH` when the file would not be found without it, so that the commands this
/// check suggests work as printed.
fn config_flag(path: &Path) -> String {
    let found = crate::config::locate(None).ok();
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    match found {
        Some(f) if same(&f, path) => String::new(),
        _ => format!(" --config {}", shell_word(path)),
    }
}

fn login_command(config_flag: &str, account: Option<&str>) -> String {
    let account = account
        .map(|a| format!(" --account {a}"))
        .unwrap_or_default();
    format!("`volvo-collect login{config_flag}{account}`")
}

fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A span of seconds for people: "4m 59s", "3h 12m", "6 days 2h".
fn human(secs: i64) -> String {
    let secs = secs.max(0) as u64;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let days = |d: u64| {
        if d == 1 {
            "1 day".to_string()
        } else {
            format!("{d} days")
        }
    };
    match () {
        _ if d >= 10 || (d >= 1 && h == 0) => days(d),
        _ if d >= 1 => format!("{} {h}h", days(d)),
        _ if h >= 1 && m == 0 => format!("{h}h"),
        _ if h >= 1 => format!("{h}h {m}m"),
        _ if m >= 1 && s == 0 => format!("{m}m"),
        _ if m >= 1 => format!("{m}m {s}s"),
        _ => format!("{s}s"),
    }
}

fn expiry_text(expires_at: i64, now: i64) -> String {
    if expires_at > now {
        format!("expires in {}", human(expires_at - now))
    } else {
        format!("expired {} ago", human(now - expires_at))
    }
}

/// A Unix time as "2026-11-27 01:20 UTC".
fn at(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_human_spans_and_numbers() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(299), "4m 59s");
        assert_eq!(human(300), "5m");
        assert_eq!(human(3 * 3600 + 12 * 60 + 5), "3h 12m");
        assert_eq!(human(86_400), "1 day");
        assert_eq!(human(6 * 86_400 + 2 * 3600), "6 days 2h");
        assert_eq!(human(160 * 86_400 + 5), "160 days");
        assert_eq!(human(-5), "0s");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_685), "1,685");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn check_ready_url_keeps_a_base_path_and_urls_are_shown_without_credentials() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            ready_url(&u("http://h:9091")).as_str(),
            "http://h:9091/-/ready"
        );
        assert_eq!(
            ready_url(&u("https://h/pg/")).as_str(),
            "https://h/pg/-/ready"
        );
        let shown = shown_url(&u("https://user:s3cret@h:9091/pg?token=s3cret"));
        assert_eq!(shown, "https://h:9091/pg");
    }

    #[test]
    fn check_effective_uid_from_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn check_folder_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        probe_folder(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("nope");
        assert!(probe_folder(&missing)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn check_login_command_names_config_and_account() {
        assert_eq!(login_command("", None), "`volvo-collect login`");
        assert_eq!(
            login_command(" --config /etc/v c.toml", Some("home")),
            "`volvo-collect login --config /etc/v c.toml --account home`"
        );
        assert_eq!(shell_word(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(shell_word(Path::new("/etc/c.toml")), "/etc/c.toml");
    }
}
