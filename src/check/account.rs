//! The account checks: the secrets, the token file and its folder, the access token (refreshed
//! here when a run would refresh it), the refresh token's and the login's age, the scopes, the
//! API key and the vehicle list, and what the state file says (a car's region block is
//! information, not a failure). At most two requests per account.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::findings::{at, expiry_text, human, thousands, Finding, Findings, Level};
use crate::api::client::Client;
use crate::api::{connected_vehicle, ApiError};
use crate::auth::refresh::{self, Freshness, OAuthClient, REFRESH_MARGIN_S};
use crate::auth::token::{self, Token};
use crate::config::{Account, Settings};
use crate::endpoints::is_extended_vehicle_scope;
use crate::error::ExitCode;
use crate::schedule;
use crate::secret::Secret;
use crate::spent;
use crate::state::{self, State};
use crate::window::Window;

/// The refresh token dies after 7 days unused; warn with two days to spare.
const ROTATION_WARN_S: i64 = 5 * 86_400;
/// The grant lasts about 6 months; warn a month ahead.
const LOGIN_WARN_S: i64 = 150 * 86_400;
const DEVELOPER_PORTAL: &str = "https://developer.volvocars.com";

/// One account's findings, and the size of its fleet when the vehicle list answered.
pub(super) struct AccountCheck {
    pub(super) findings: Vec<Finding>,
    /// The VINs the account lists now, when asked.
    pub(super) listed: Option<Vec<String>>,
}

/// What every step of one account's check needs.
struct Check<'a> {
    s: &'a Settings,
    ac: &'a Account,
    http: &'a reqwest::Client,
    offline: bool,
    /// The login command, as the user would type it for this config file and account.
    login: &'a str,
    now: i64,
    /// No wait for a lock goes past this: the run's timeout, or the check's own bound.
    deadline: tokio::time::Instant,
}

/// What the token file's place on disk allows.
struct TokenFile {
    /// Shown absolute, since relative paths resolve against the config file's folder rather
    /// than the current one.
    path: PathBuf,
    /// Whether a refresh could save the rotated refresh token next to it.
    folder_writable: bool,
    /// The file's owner and this process's user, when they differ.
    foreign_owner: Option<(u32, u32)>,
}

/// Checks one account, in the order its findings are printed.
pub(super) async fn check_account(
    s: &Settings,
    ac: &Account,
    http: &reqwest::Client,
    offline: bool,
    login: String,
) -> AccountCheck {
    let a = Check {
        s,
        ac,
        http,
        offline,
        login: &login,
        now: s.clock.now(),
        deadline: tokio::time::Instant::now() + s.timeout.min(super::PROBE_TIMEOUT),
    };
    let mut f = Findings::default();
    secret_findings(&mut f, ac);
    let path = std::path::absolute(&ac.token_file).unwrap_or_else(|_| ac.token_file.clone());
    let original = match token::read(&path) {
        Ok(t) => t,
        Err(e) => {
            f.fail(format!("token file: {}", a.s.for_account(ac, &e.message)));
            f.warn("access token and API key: not checked (no usable token file)");
            state_findings(s, ac, &mut f, a.now);
            return AccountCheck {
                findings: f.0,
                listed: None,
            };
        }
    };
    let file = token_file_findings(&mut f, path);
    let (current, refreshed) = access_token_finding(&mut f, &a, &file, &original).await;
    rotation_finding(&mut f, &original, refreshed, a.now, a.login);
    login_finding(&mut f, &original, a.now, a.login);
    scope_finding(
        &mut f,
        s,
        ac,
        current.as_ref().unwrap_or(&original),
        a.login,
    );
    let listed = vehicle_list_finding(&mut f, &a, current.as_ref()).await;
    cars_findings(&mut f, ac, listed.as_deref(), offline);
    state_findings(s, ac, &mut f, a.now);
    AccountCheck {
        findings: f.0,
        listed,
    }
}

/// Where the account is configured, as the user finds it in the config file.
fn table_name(ac: &Account) -> String {
    if ac.table == "volvo" {
        "[volvo]".to_string()
    } else {
        format!("the [[account]] named {:?}", ac.name)
    }
}

/// A setting of the account, as the user finds it in the config file.
fn key_name(ac: &Account, key: &str) -> String {
    if ac.table == "volvo" {
        format!("volvo.{key}")
    } else {
        format!("{key} in {}", table_name(ac))
    }
}

/// Only whether the secrets are there: their values are never shown.
fn secret_findings(f: &mut Findings, ac: &Account) {
    for (what, present, problem, key, env) in [
        (
            "client secret",
            ac.client_secret.is_some(),
            &ac.client_secret_problem,
            "client_secret",
            &ac.env_client_secret,
        ),
        (
            "API key",
            ac.api_key.is_some(),
            &ac.api_key_problem,
            "api_key",
            &ac.env_api_key,
        ),
    ] {
        if let Some(problem) = problem {
            f.fail(format!("{what}: {problem}"));
        } else if present {
            f.ok(format!("{what}: present"));
        } else {
            f.fail(format!(
                "{what}: missing: set {key} (or {key}_file) in {}, or the environment variable {env}",
                table_name(ac)
            ));
        }
    }
}

/// The token file's mode, its folder and its owner, as they are on disk.
fn token_file_findings(f: &mut Findings, path: PathBuf) -> TokenFile {
    let meta = std::fs::metadata(&path).ok();
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
    let mounted = token::mounted_alone(&path);
    if let Some(why) = &mounted {
        f.fail(format!("token file {}: {why}", path.display()));
    }
    let folder = crate::fsutil::folder_of(&path);
    let folder_writable = match crate::fsutil::probe_writable(&folder) {
        Ok(()) => mounted.is_none(),
        Err(e) => {
            f.fail(format!(
                "token folder {}: {e}: every refresh saves the rotated refresh token (and takes the lock {}) there; give the collector's user write access to it",
                folder.display(),
                token::lock_path(&path).display()
            ));
            false
        }
    };
    if let Some(open) = token::open_folder(&path) {
        f.warn(format!(
            "token folder {}: any user can write to it and replace your token file: chmod o-w {} (or chmod +t)",
            open.display(),
            open.display()
        ));
    }
    // Run as another user, a refresh would leave the new token file owned by that user and
    // unreadable to the collector, which would then need a new login. Root's writes keep each
    // file's owner (see `fsutil`), so `sudo volvo-collect check` may refresh.
    let foreign_owner = match (meta.as_ref().map(|m| m.uid()), effective_uid()) {
        (Some(owner), Some(me)) if owner != me && me != 0 => Some((owner, me)),
        _ => None,
    };
    TokenFile {
        path,
        folder_writable,
        foreign_owner,
    }
}

/// The access token: refreshed here when a run would refresh it, with the run's own locked,
/// rotation-safe step, unless that could do harm. Returns the token a request may use now, and
/// whether this check rotated the refresh token.
async fn access_token_finding(
    f: &mut Findings,
    a: &Check<'_>,
    file: &TokenFile,
    original: &Token,
) -> (Option<Token>, bool) {
    let expiry = || expiry_text(original.expires_at, a.now);
    if !original.expires_within(a.now, REFRESH_MARGIN_S) {
        f.ok(format!(
            "access token: valid for another {}",
            human(original.expires_at - a.now)
        ));
        (Some(original.clone()), false)
    } else if a.offline {
        f.ok(format!(
            "access token: {}; a run refreshes it first (--offline: not refreshed now)",
            expiry()
        ));
        (None, false)
    } else if let Some((owner, me)) = file.foreign_owner {
        f.warn(format!(
            "access token: {}, and not refreshed: the token file belongs to uid {owner} but this check runs as uid {me}, and a refresh would leave the rotated token unreadable to the collector; run the check as the collector's user (sudo -u <user> volvo-collect check)",
            expiry()
        ));
        (None, false)
    } else if let (true, Some(secret)) = (file.folder_writable, &a.ac.client_secret) {
        refresh_finding(f, a, secret, &file.path).await
    } else {
        f.warn(format!(
            "access token: {}; not refreshed (see above)",
            expiry()
        ));
        (None, false)
    }
}

/// Refreshes the access token as a run would.
async fn refresh_finding(
    f: &mut Findings,
    a: &Check<'_>,
    secret: &Secret,
    path: &Path,
) -> (Option<Token>, bool) {
    let oauth = OAuthClient {
        client_id: &a.ac.client_id,
        client_secret: secret,
        auth_url: &a.s.auth_url,
        token_url: &a.s.token_url,
        clock: a.s.clock,
    };
    match refresh::ensure_fresh(a.http, &oauth, path, a.deadline).await {
        Ok((t, Freshness::Refreshed)) => {
            f.ok(format!(
                "access token: refreshed at Volvo ID, rotated refresh token saved; the new access token expires in {}",
                human(t.expires_at - a.now)
            ));
            (Some(t), true)
        }
        // Another run refreshed it while this check waited for the lock.
        Ok((t, Freshness::Fresh)) => {
            f.ok(format!(
                "access token: valid for another {}",
                human(t.expires_at - a.now)
            ));
            (Some(t), false)
        }
        Err(e) if e.code == ExitCode::LoginNeeded => {
            f.fail(format!(
                "access token refresh: {}",
                a.s.for_account(a.ac, &e.message)
            ));
            (None, false)
        }
        Err(e) => {
            f.warn(format!("access token refresh: {}", e.message));
            (None, false)
        }
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

/// The grant's age: Volvo ends it about 6 months after the login, whatever the refreshes.
fn login_finding(f: &mut Findings, original: &Token, now: i64, login: &str) {
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
}

fn scope_finding(f: &mut Findings, s: &Settings, ac: &Account, t: &Token, login: &str) {
    let Some(granted) = &t.scope else {
        f.warn(format!(
            "scopes: the token file does not list the granted scopes, so the {} needed ones cannot be compared: run {login} to record them",
            s.scopes(ac).len()
        ));
        return;
    };
    let needed = s.scopes(ac);
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
            ac.client_id
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

/// One request proves the API key, the token and its vehicle scope together. Returns the VINs
/// on the account when the vehicle list answered.
async fn vehicle_list_finding(
    f: &mut Findings,
    a: &Check<'_>,
    current: Option<&Token>,
) -> Option<Vec<String>> {
    if a.offline {
        return None;
    }
    let (Some(t), Some(key)) = (current, &a.ac.api_key) else {
        f.warn("API key and token: not checked (see above)");
        return None;
    };
    let login = a.login;
    // The check shares the account's minute window with its runs: its one request takes a
    // place like any other, and waits for the next run rather than draw a 429.
    let deadline = a.deadline;
    let window = Window::new(
        &a.ac.state_file,
        a.s.requests_per_minute,
        deadline,
        a.s.clock,
    );
    let listed = match window.try_reserve(1).await {
        Ok(0) => Err(ApiError::Deferred),
        Ok(_) => vehicle_list(a, key, &t.access_token).await,
        Err(e) => {
            f.fail(format!("API key and token: not checked: {e}"));
            return None;
        }
    };
    match listed {
        Ok(vins) => {
            f.ok(format!(
                "API key and token: GET {}/vehicles answered 200 with {} {}",
                connected_vehicle::PREFIX,
                vins.len(),
                if vins.len() == 1 { "vehicle" } else { "vehicles" }
            ));
            return Some(vins);
        }
        Err(ApiError::BadApiKey) => f.fail(format!(
            "API key: Volvo refused it (HTTP 401, invalid VCC API key): check {} (or the environment variable {}): it must be the VCC API key of your application in Volvo's developer portal",
            key_name(a.ac, "api_key"),
            a.ac.env_api_key
        )),
        Err(ApiError::Unauthorized(status)) => f.fail(format!(
            "access token: Volvo refused it (HTTP {status}): run {login}"
        )),
        Err(ApiError::MissingScope(m)) => f.fail(format!(
            "scopes: Volvo says the access token lacks a scope the vehicle list needs (HTTP 403: {m}): register conve:vehicle_relation for your application in Volvo's developer portal ({DEVELOPER_PORTAL}), then run {login}"
        )),
        Err(ApiError::Quota { reset_after }) => f.warn(format!(
            "API key: its daily quota of {} requests is used up{}; runs collect nothing until then",
            thousands(schedule::DAILY_QUOTA),
            match reset_after {
                Some(d) => format!(
                    "; Volvo replenishes it in {} (at {})",
                    human(d.as_secs() as i64),
                    at(a.now + d.as_secs() as i64)
                ),
                None => String::new(),
            }
        )),
        Err(ApiError::Deferred) => f.warn(format!(
            "API key and token: not checked: this account's runs used this minute's {} requests (collect.requests_per_minute, below Volvo's 100); try again in a minute",
            a.s.requests_per_minute
        )),
        // Information for one endpoint of one car; on the list, no car could be read at all.
        Err(e @ ApiError::NotAvailable(_)) => f.warn(format!(
            "vehicle list: {e}: runs read no car of this account until Volvo serves it"
        )),
        Err(e) => f.warn(format!(
            "API key and token: not proven: the vehicle list answered: {e}; try again later"
        )),
    }
    None
}

/// `GET /connected-vehicle/v2/vehicles`, exactly once: the run's client retries, and the check
/// promises a bounded number of requests. The request counts like a run's, in the account's
/// counters and its API key's day.
async fn vehicle_list(
    a: &Check<'_>,
    api_key: &Secret,
    access_token: &Secret,
) -> Result<Vec<String>, ApiError> {
    let client = Client::single(
        a.http.clone(),
        a.s.api_url.clone(),
        api_key.clone(),
        access_token.clone(),
        a.s.request_timeout,
    );
    let listed = connected_vehicle::vehicles_once(&client).await;
    count_requests(a, &client).await;
    listed
}

/// Adds the check's requests to the account's state, as a run's are added: its counters and
/// its API key's day, under the state's lock. A check run as another user than the state's
/// owner (sudo) leaves the state alone: files it made would be unreadable to the collector.
async fn count_requests(a: &Check<'_>, client: &Client) {
    use std::os::unix::fs::MetadataExt;
    let path = &a.ac.state_file;
    let owner = std::fs::metadata(path)
        .or_else(|_| std::fs::metadata(crate::fsutil::folder_of(path)))
        .map(|m| m.uid())
        .ok();
    if owner.is_some() && owner != effective_uid() {
        tracing::info!(state = %path.display(), "the state belongs to another user: this check's request is not counted in it");
        return;
    }
    let counts = client.request_counts();
    let reset_at = client
        .quota_exhausted()
        .flatten()
        .map(|d| a.now + d.as_secs() as i64);
    let lock = state::lock_for_save(path, a.deadline).await;
    if let Some(why) = lock.problem() {
        tracing::warn!("{}", why.message);
        return;
    }
    let reached = state::reached_volvo(&counts);
    spent::add(path, &a.ac.key_id(), a.now, reached, reset_at);
    let none = std::collections::BTreeMap::new();
    let (_, problem) = state::save_merged(lock, path, State::default(), &counts, &none, a.now);
    if let Some(why) = problem {
        tracing::warn!("{why}");
    }
}

/// The configured cars against the account's vehicle list.
fn cars_findings(f: &mut Findings, ac: &Account, listed: Option<&[String]>, offline: bool) {
    match listed {
        Some(on_account) if ac.vins.is_empty() => {
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
            for vin in &ac.vins {
                if on_account.contains(vin) {
                    f.ok(format!("car {vin}: on the account"));
                } else {
                    f.fail(format!(
                        "car {vin} ({}): not on this account: remove it, or log in with the account that owns it",
                        key_name(ac, "vins")
                    ));
                }
            }
        }
        None if !ac.vins.is_empty() && !offline => f.warn(format!(
            "cars: {} not compared with the account (no vehicle list)",
            key_name(ac, "vins")
        )),
        None => {}
    }
}

/// What `check` says of an answer a run met, wherever it met it: a `FAIL` for what the user
/// must fix (the API key, the login, a scope), information for what a car or its region does
/// not have, a warning for what passes by itself. The README's classification table shows it.
pub fn answer_level(e: &ApiError) -> Level {
    match e {
        ApiError::BadApiKey | ApiError::Unauthorized(_) | ApiError::MissingScope(_) => Level::Fail,
        ApiError::NotAvailable(_) | ApiError::NotSupported(_) => Level::Info,
        _ => Level::Warn,
    }
}

/// What runs found a car lacks or is not served (remembered in the state file for a day), as
/// information: one line per car and kind, naming the endpoints.
fn backoff_findings(f: &mut Findings, state: &State, now: i64) {
    let kinds = [
        (
            &state.not_available,
            "not served to this car in its region or market (Volvo said so; not a fault, nothing to fix)",
        ),
        (
            &state.not_supported,
            "not supported by this car (HTTP 404)",
        ),
    ];
    for (map, what) in kinds {
        let mut by_car: std::collections::BTreeMap<&str, (Vec<String>, i64)> = Default::default();
        for (key, until) in map.iter().filter(|(_, until)| **until > now) {
            let car = by_car.entry(key.vin.as_str()).or_default();
            let e = key.endpoint;
            car.0.push(format!("{e} ({})", e.api().label()));
            car.1 = car.1.max(*until);
        }
        for (vin, (endpoints, until)) in by_car {
            let who = if vin.is_empty() {
                "the account".to_string()
            } else {
                format!("car {vin}")
            };
            f.info(format!(
                "{who}: {}: {what}; runs ask again after {}",
                endpoints.join(", "),
                at(until)
            ));
        }
    }
}

/// What the state file says: APIs that answered they are gone, endpoints a car lacks or is
/// not served, and an exhausted quota.
fn state_findings(s: &Settings, ac: &Account, f: &mut Findings, now: i64) {
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
    // A run would stop here with exit 78: say it now.
    if let Err(e) = crate::state::preflight(&ac.state_file) {
        f.fail(format!("state file: {}", e.message));
    }
    let state = State::load(&ac.state_file);
    let state_path = std::path::absolute(&ac.state_file).unwrap_or_else(|_| ac.state_file.clone());
    for (origin, until) in &state.api_unavailable {
        let api = origin.label();
        if src.reads(*origin) && *until > now {
            f.warn(format!(
                "source {api}: Volvo answered that this API is shut down; runs skip it until {} (state file {}); set sources.{api} = false to stop asking",
                at(*until),
                state_path.display()
            ));
        }
    }
    backoff_findings(f, &state, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_effective_uid_from_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }
}
