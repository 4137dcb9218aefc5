//! One collection, start to finish, for every account concurrently. Each account's run reads
//! as its phases: the token; the **plan** (what to ask of each car, from its state, the tiers,
//! what the car is doing and the budgets; see `planner`); the **fetch**, round by round within
//! Volvo's minute window and the run's deadline; the **map** of every answer, asked or
//! replayed, into the exposition; and the **report**: self-metrics, the new state and the
//! account's exit code. Then one exposition goes to every output. Failures of parts change the
//! exit code; they never hide the rest.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::api::client::{Client, ClientOptions, TokenSource};
use crate::api::{connected_vehicle, energy, extended_vehicle, location, ApiError};
use crate::auth::refresh::{self, OAuthClient};
use crate::auth::token::Token;
use crate::config::Settings;
use crate::endpoints::{self, Endpoint};
use crate::error::{ExitCode, Fatal, Tally};
use crate::metrics::catalog::{self as c, Origin};
use crate::metrics::{self, Exposition};
use crate::planner::{Planner, Request, Setup};
use crate::schedule::Schedule;
use crate::secret::Secret;
use crate::sinks;
use crate::state::{self, Mode, State};
use crate::window::Window;

/// What one run produced.
pub struct RunOutcome {
    /// The exposition as delivered (text format 0.0.4).
    pub text: Vec<u8>,
    pub exit: ExitCode,
    /// One line per problem, for the log and the final message.
    pub problems: Vec<String>,
}

/// Runs one collection and delivers it to the configured outputs (`--once`).
pub async fn run_once(settings: &Settings) -> Result<RunOutcome, Fatal> {
    if settings.output.is_empty() {
        return Err(Fatal::config(format!(
            "{}: no output chosen: pass --stdout, --textfile PATH, --pushgateway URL or --remote-write URL, or set one in [output]",
            settings.config_path.display()
        )));
    }
    collect(settings).await
}

/// One collection of every account, delivered to whatever outputs are configured (possibly
/// none, when the long-running mode serves it itself).
pub async fn collect(settings: &Settings) -> Result<RunOutcome, Fatal> {
    let started = Instant::now();
    let deadline = started + settings.timeout;
    // A missing secret is a configuration error before anything is asked.
    for a in &settings.accounts {
        settings.for_account(a).api_key()?;
        settings.for_account(a).client_secret()?;
        state::preflight(&a.state_file)?;
    }
    let http = crate::http::client(settings.request_timeout);
    let exp = Mutex::new(Exposition::new());
    let runs = futures_util::future::join_all(
        settings
            .accounts
            .iter()
            .map(|a| collect_account(settings.for_account(a), &http, deadline, &exp)),
    )
    .await;

    let mut exp = exp.into_inner().expect("exposition lock");
    let mut problems: Vec<String> = Vec::new();
    let multi = settings.accounts.len() > 1;
    for (a, r) in settings.accounts.iter().zip(&runs) {
        for p in &r.problems {
            problems.push(if multi {
                format!("account {}: {p}", a.name)
            } else {
                p.clone()
            });
        }
    }
    let codes: Vec<ExitCode> = runs.iter().map(|r| r.exit).collect();
    let collected = crate::error::merge(&codes, false);
    exp.gauge(
        &c::COLLECT_RUN_TIMESTAMP_SECONDS,
        &[],
        crate::clock::now_f64(),
    );
    exp.gauge(
        &c::COLLECT_RUN_DURATION_SECONDS,
        &[],
        started.elapsed().as_secs_f64(),
    );
    exp.gauge(
        &c::COLLECT_RUN_SUCCESS,
        &[],
        if collected == ExitCode::Ok { 1.0 } else { 0.0 },
    );
    exp.finish_skips();
    let text = exp.encode();
    let failures = sinks::deliver(settings, &exp, &text).await;
    for (output, err) in &failures {
        problems.push(format!("output {output} failed: {err:#}"));
    }
    Ok(RunOutcome {
        text,
        exit: crate::error::merge(&codes, !failures.is_empty()),
        problems,
    })
}

/// What one account's collection came to.
struct AccountRun {
    exit: ExitCode,
    problems: Vec<String>,
}

/// One account, phase by phase; maps into the shared exposition and saves the account's state.
async fn collect_account(
    settings: Settings,
    http: &reqwest::Client,
    deadline: Instant,
    exp: &Mutex<Exposition>,
) -> AccountRun {
    let settings = &settings;
    let now = crate::clock::now();
    let mut state = State::load(&settings.account.state_file);
    state.expire(now);
    let mut report = Report::new(settings, now);

    let token = match token_step(settings, http, deadline).await {
        Ok(t) => t,
        Err(fatal) => {
            report.login_failed(&fatal);
            let saving = state::lock_for_save(&settings.account.state_file, deadline).await;
            return report.finish(&mut lock(exp), &mut state, None, None, saving);
        }
    };
    token_metrics(&mut lock(exp), &settings.account.name, &token);

    let window = Window::new(
        &settings.account.state_file,
        settings.requests_per_minute,
        deadline,
    );
    let extended_until = state.unavailable_until(Origin::ExtendedVehicle.label(), now);
    let quota_paused = state.quota_until.is_some();
    let schedule = Schedule::with_overrides(&settings.schedule);
    let mut planner = Planner::new(
        Setup {
            schedule: &schedule,
            sources: &settings.sources,
            extended: settings
                .sources
                .extended_vehicle_wanted(token.scope.as_deref())
                && extended_until.is_none(),
            interval_s: settings.interval.as_secs().max(1) as i64,
            now,
            vins: &settings.account.vins,
            quota_paused,
            other_cars_on_key: other_cars_on_key(settings),
            accounts_on_key: accounts_on_key(settings),
        },
        &mut state,
    );
    let client = Client::new(
        http.clone(),
        ClientOptions {
            base: settings.api_url.clone(),
            api_key: settings.api_key().expect("checked before").clone(),
            access_token: token.access_token.clone(),
            concurrency: settings.concurrency,
            deadline,
            request_timeout: settings.request_timeout,
            window: Some(window.clone()),
            token_source: Some(Box::new(Renewer::new(settings))),
        },
    );
    if quota_paused {
        tracing::info!("the API key's daily quota is used up; replaying the last answers until it is replenished");
    }
    let durations = fetch(&mut planner, &client, &window, deadline).await;
    let weather = weather(settings, http, &mut planner, now).await;
    {
        let mut exp = lock(exp);
        map(settings, &mut exp, &planner, &durations, &mut report);
        for (vin, w) in &weather {
            match w {
                Ok(current) => crate::weather::map(&mut exp, vin, current),
                Err(e) => exp.gauge(
                    &c::COLLECT_ENDPOINT_ERROR,
                    &[vin, Origin::Weather.label(), "weather", e.reason()],
                    1.0,
                ),
            }
        }
    }
    report.tally.failed |= quota_paused;
    let saving = state::lock_for_save(&settings.account.state_file, deadline).await;
    report.finish(
        &mut lock(exp),
        &mut state,
        Some(&client),
        Some(planner),
        saving,
    )
}

fn lock(exp: &Mutex<Exposition>) -> std::sync::MutexGuard<'_, Exposition> {
    exp.lock().expect("exposition lock")
}

/// The token before any API call: refreshed and saved when it expires within a minute.
async fn token_step(
    settings: &Settings,
    http: &reqwest::Client,
    deadline: Instant,
) -> Result<Token, Fatal> {
    let secret = settings.client_secret().expect("checked before");
    let oauth = OAuthClient {
        client_id: &settings.account.client_id,
        client_secret: secret,
        auth_url: &settings.auth_url,
        token_url: &settings.token_url,
    };
    let fresh = refresh::ensure_fresh(http, &oauth, &settings.account.token_file, deadline);
    match tokio::time::timeout_at(deadline, fresh).await {
        Ok(r) => r.map(|(t, _)| t),
        Err(_) => Err(Fatal::new(
            ExitCode::Temporary,
            "the run's deadline passed while the access token was being refreshed",
        )),
    }
}

/// Cars of the other accounts that share this account's API key (they share its quota).
fn other_cars_on_key(settings: &Settings) -> usize {
    settings
        .accounts
        .iter()
        .filter(|a| a.name != settings.account.name && a.api_key == settings.account.api_key)
        .map(known_cars)
        .sum()
}

fn accounts_on_key(settings: &Settings) -> usize {
    settings
        .accounts
        .iter()
        .filter(|a| a.api_key == settings.account.api_key)
        .count()
        .max(1)
}

/// How many cars an account collects, as far as known without asking: its configured VINs,
/// else its last vehicle list, else one.
pub fn known_cars(a: &crate::config::Account) -> usize {
    if !a.vins.is_empty() {
        return a.vins.len();
    }
    let state = State::load(&a.state_file);
    let list = endpoints::get(Origin::ConnectedVehicle, "vehicles");
    state
        .cache
        .get(&format!(" {}", list.name))
        .and_then(|c| connected_vehicle::vehicles(Ok(c.body.get())).ok())
        .map_or(1, |v| v.len().max(1))
}

// ---- fetch ------------------------------------------------------------------------------

/// Seconds each (vin, API) spent on requests this run.
type Durations = BTreeMap<(String, Origin), f64>;

/// Asks what the planner wants until it wants nothing more. There are no round barriers:
/// each answer that comes in may make the planner want more (a car that woke, a trip that
/// ended), and what it wants goes out at once, so a slow endpoint holds up nothing else. Each
/// batch takes what Volvo's minute window has room for, most important first, and defers the
/// rest to the next run.
async fn fetch(
    planner: &mut Planner<'_>,
    client: &Client,
    window: &Window,
    deadline: Instant,
) -> Durations {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut durations = Durations::new();
    let mut in_flight = FuturesUnordered::new();
    // Places reserved in the window for requests that wait for an answer in flight.
    let mut carried = 0;
    loop {
        let (batch, held) = planner.next_round();
        if Instant::now() >= deadline {
            // Wanted, but the run's time is up: that is the deadline, not a deferral.
            for r in &batch {
                planner.record(r, Err(ApiError::Timeout));
            }
        } else if !batch.is_empty() {
            let need = batch.len() + held;
            let from_carried = carried.min(need);
            carried -= from_carried;
            let usable = from_carried + window.reserve(need - from_carried).await;
            let asked = usable.saturating_sub(held).min(batch.len());
            carried += usable - asked;
            let (ask, later) = batch.split_at(asked);
            if !later.is_empty() {
                tracing::info!(
                    asked = ask.len(),
                    deferred = later.len(),
                    "Volvo's per-minute limit is reached; deferring the rest to the next run"
                );
            }
            for r in later {
                planner.defer(r);
            }
            for r in ask {
                planner.dispatch(r);
                let r = r.clone();
                in_flight.push(async move {
                    let answer = one(client, &r).await;
                    (r, answer)
                });
            }
        }
        let Some((r, (result, seconds))) = in_flight.next().await else {
            break;
        };
        let d = durations
            .entry((r.vin.clone(), r.endpoint.api))
            .or_default();
        *d = d.max(seconds);
        planner.record(&r, result);
    }
    durations
}

/// One request, bounded by the run's deadline, and how long it took.
async fn one(client: &Client, r: &Request) -> (Result<Vec<u8>, ApiError>, f64) {
    let t0 = Instant::now();
    let path = r.path();
    let result = tokio::time::timeout_at(
        client.deadline(),
        client.get(r.endpoint.api, r.endpoint.template, &path),
    )
    .await
    .unwrap_or(Err(ApiError::Timeout));
    (result, t0.elapsed().as_secs_f64())
}

/// Weather at each car's last position (optional; its failure never fails the car's data).
async fn weather(
    settings: &Settings,
    http: &reqwest::Client,
    planner: &mut Planner<'_>,
    now: i64,
) -> Vec<(
    String,
    Result<crate::weather::Current, crate::weather::WeatherError>,
)> {
    let Some(w) = &settings.weather else {
        return Vec::new();
    };
    let loc = endpoints::get(Origin::Location, "location");
    let positions: Vec<(String, (f64, f64))> = planner
        .vins()
        .unwrap_or_default()
        .iter()
        .filter_map(|vin| {
            let feature = location::decode(planner.answer(vin, loc, None)).ok()?;
            metrics::location::position(&feature).map(|p| (vin.clone(), p))
        })
        .collect();
    let answers = futures_util::future::join_all(positions.iter().map(|(vin, pos)| {
        let cached = planner.cached(&format!("{vin} weather"));
        crate::weather::fetch(http, w, *pos, cached, now)
    }))
    .await;
    let mut out = Vec::new();
    for ((vin, _), answer) in positions.into_iter().zip(answers) {
        match answer {
            Ok((current, entry)) => {
                planner.cache(format!("{vin} weather"), entry);
                out.push((vin, Ok(current)));
            }
            Err(e) => {
                tracing::warn!(vin, "weather: {e}");
                out.push((vin, Err(e)));
            }
        }
    }
    out
}

// ---- map --------------------------------------------------------------------------------

/// Every car's answers, asked or replayed, into the exposition; each API's outcome into the
/// report.
fn map(
    settings: &Settings,
    exp: &mut Exposition,
    planner: &Planner<'_>,
    durations: &Durations,
    report: &mut Report,
) {
    let list = endpoints::get(Origin::ConnectedVehicle, "vehicles");
    let Some(vins) = planner.vins() else {
        let e = connected_vehicle::vehicles(planner.answer("", list, None))
            .expect_err("no vehicles without an error");
        report.list_failed(exp, &e);
        return;
    };
    let listed = connected_vehicle::vehicles(planner.answer("", list, None));
    let mut vins = vins.to_vec();
    if settings.account.vins.is_empty() {
        report.endpoint(exp, "", list, listed.as_ref().err());
    } else if let Ok(on_account) = &listed {
        for v in vins.iter().filter(|v| !on_account.contains(v)) {
            report.tally.failed = true;
            report.problems.push(format!(
                "{v}: this VIN (volvo.vins) is not on the account; remove it or log in with the account that owns it"
            ));
        }
        vins.retain(|v| on_account.contains(v));
    }
    report.vehicles = vins.len();
    for vin in &vins {
        map_car(settings, exp, planner, durations, report, vin);
    }
    for (vin, e, err) in planner.replayed_failures() {
        report.endpoint(exp, &vin, e, Some(&err));
    }
    for (vin, e) in planner.deferred() {
        exp.gauge(
            &c::COLLECT_ENDPOINT_DEFERRED,
            &[&vin, e.api.label(), e.name],
            1.0,
        );
    }
    for (vin, mode) in planner.modes() {
        for m in Mode::ALL {
            let v = if m == mode { 1.0 } else { 0.0 };
            exp.gauge(&c::COLLECT_VEHICLE_MODE, &[&vin, m.label()], v);
        }
    }
    if let Some(plan) = planner.day_plan() {
        let account = settings.account.name.as_str();
        exp.gauge(
            &c::COLLECT_PLANNED_REQUESTS_PER_DAY,
            &[account],
            plan.total as f64,
        );
        exp.gauge(
            &c::COLLECT_ESTIMATED_REQUESTS_PER_DAY,
            &[account],
            plan.estimate as f64,
        );
        exp.gauge(
            &c::COLLECT_PLAN_EVERY_RUNS,
            &[account],
            plan.stretch.every_runs as f64,
        );
    }
}

/// One car's answers, asked or replayed, API by API into the exposition and the report.
fn map_car(
    settings: &Settings,
    exp: &mut Exposition,
    planner: &Planner<'_>,
    durations: &Durations,
    report: &mut Report,
    vin: &str,
) {
    let account = settings.account.name.as_str();
    let answer = |api: Origin, name: &str| planner.answer(vin, endpoints::get(api, name), None);
    let seconds = |api: Origin| {
        durations
            .get(&(vin.to_string(), api))
            .copied()
            .unwrap_or(0.0)
    };
    if settings.sources.connected_vehicle {
        let s = connected_vehicle::Snapshot::decode(&|n| answer(Origin::ConnectedVehicle, n));
        metrics::connected_vehicle::map(exp, vin, account, &s);
        report.api(
            exp,
            vin,
            Origin::ConnectedVehicle,
            &s.errors(),
            seconds(Origin::ConnectedVehicle),
        );
    }
    if settings.sources.energy {
        let s = energy::Snapshot::decode(
            answer(Origin::Energy, "energy_capabilities"),
            answer(Origin::Energy, "energy_state"),
        );
        metrics::energy::map(exp, vin, &s);
        report.api(
            exp,
            vin,
            Origin::Energy,
            &s.errors(),
            seconds(Origin::Energy),
        );
    }
    if settings.sources.location {
        let f = location::decode(answer(Origin::Location, "location"));
        if let Ok(feature) = &f {
            metrics::location::map(exp, vin, feature, &settings.location);
        }
        let errors: Vec<(&'static str, &ApiError)> = f
            .as_ref()
            .err()
            .map(|e| vec![("location", e)])
            .unwrap_or_default();
        report.api(
            exp,
            vin,
            Origin::Location,
            &errors,
            seconds(Origin::Location),
        );
    }
    if planner.collects_extended() {
        let value = endpoints::get(Origin::ExtendedVehicle, "extended_values");
        let s = extended_vehicle::Snapshot::decode(
            answer(Origin::ExtendedVehicle, "extended_resources"),
            &|r| planner.answer(vin, value, Some(r)),
        );
        report.extended_gone |= s.api_gone();
        metrics::extended_vehicle::map(exp, vin, &s);
        let errors = if s.api_gone() { Vec::new() } else { s.errors() };
        report.api(
            exp,
            vin,
            Origin::ExtendedVehicle,
            &errors,
            seconds(Origin::ExtendedVehicle),
        );
    }
}

// ---- report -----------------------------------------------------------------------------

/// The account's outcome as it builds up: problems for the log, the tally for the exit code,
/// back-offs for the state.
struct Report<'s> {
    settings: &'s Settings,
    now: i64,
    tally: Tally,
    problems: Vec<String>,
    /// "vin api endpoint" keys newly found unsupported.
    unsupported: Vec<String>,
    extended_gone: bool,
    vehicles: usize,
}

impl<'s> Report<'s> {
    fn new(settings: &'s Settings, now: i64) -> Self {
        Report {
            settings,
            now,
            tally: Tally::default(),
            problems: Vec::new(),
            unsupported: Vec::new(),
            extended_gone: false,
            vehicles: 0,
        }
    }

    fn login_failed(&mut self, fatal: &Fatal) {
        self.problems.push(fatal.message.clone());
        self.tally.failed = true;
        self.tally.login_needed = fatal.code == ExitCode::LoginNeeded;
        self.tally.config = fatal.code == ExitCode::Config;
    }

    fn list_failed(&mut self, exp: &mut Exposition, e: &ApiError) {
        self.problems
            .push(format!("cannot list the vehicles on the account: {e}"));
        let list = endpoints::get(Origin::ConnectedVehicle, "vehicles");
        self.endpoint(exp, "", list, Some(e));
    }

    /// One endpoint's failure, if any, into the self-metrics and the tally.
    fn endpoint(&mut self, exp: &mut Exposition, vin: &str, e: &Endpoint, err: Option<&ApiError>) {
        let Some(err) = err else {
            return;
        };
        self.error(exp, vin, e.api, e.name, err);
    }

    /// Returns whether the error is a failure (deferred and unsupported are not).
    fn error(
        &mut self,
        exp: &mut Exposition,
        vin: &str,
        api: Origin,
        name: &str,
        e: &ApiError,
    ) -> bool {
        match e {
            ApiError::Deferred => false,
            ApiError::NotSupported(_) => {
                exp.gauge(
                    &c::COLLECT_ENDPOINT_NOT_SUPPORTED,
                    &[vin, api.label(), name],
                    1.0,
                );
                // Remembered per endpoint; Energy's and Extended Vehicle's own answers already
                // say what a car lacks.
                if !matches!(
                    name,
                    "energy_state" | "energy_capabilities" | "extended_values"
                ) {
                    self.unsupported
                        .push(state::endpoint_key(vin, api.label(), name));
                }
                false
            }
            _ => {
                self.tally.failed = true;
                self.tally.config |= *e == ApiError::BadApiKey;
                exp.gauge(
                    &c::COLLECT_ENDPOINT_ERROR,
                    &[vin, api.label(), name, e.reason()],
                    1.0,
                );
                // The quota is said once for the account, not once per endpoint.
                if !matches!(e, ApiError::Quota { .. }) {
                    let who = if vin.is_empty() {
                        String::new()
                    } else {
                        format!("{vin}: ")
                    };
                    self.problems
                        .push(format!("{who}{} {name}: {e}", api.label()));
                }
                true
            }
        }
    }

    /// One API of one car: its endpoints' errors, its success and its duration.
    fn api(
        &mut self,
        exp: &mut Exposition,
        vin: &str,
        api: Origin,
        errors: &[(&'static str, &ApiError)],
        seconds: f64,
    ) {
        let mut ok = true;
        for (name, e) in errors {
            ok &= !self.error(exp, vin, api, name, e);
        }
        exp.gauge(
            &c::COLLECT_API_SUCCESS,
            &[vin, api.label()],
            if ok { 1.0 } else { 0.0 },
        );
        exp.gauge(
            &c::COLLECT_API_DURATION_SECONDS,
            &[vin, api.label()],
            seconds,
        );
    }

    /// The account's self-metrics, its state saved, and its exit code.
    fn finish(
        mut self,
        exp: &mut Exposition,
        state: &mut State,
        client: Option<&Client>,
        planner: Option<Planner<'_>>,
        saving: state::SaveLock,
    ) -> AccountRun {
        let settings = self.settings;
        if let Some(fatal) = saving.problem() {
            self.problems.insert(0, fatal.message);
            self.tally.failed = true;
        }
        let account = settings.account.name.as_str();
        if let Some(planner) = planner {
            self.tally.collected = planner.fresh() > 0;
            planner.finish(state);
        }
        if let Some(client) = client {
            self.client_news(state, client);
            exp.gauge(&c::COLLECT_VEHICLES, &[account], self.vehicles as f64);
        }
        let login_needed = if self.tally.login_needed { 1.0 } else { 0.0 };
        exp.gauge(&c::COLLECT_LOGIN_NEEDED, &[account], login_needed);
        self.remember_backoffs(state);
        let exit = self.tally.exit();
        if exit == ExitCode::Ok {
            state.last_success = Some(crate::clock::now_f64());
        }
        let (requests, retries) = client
            .map(|c| (c.request_counts(), c.retry_counts()))
            .unwrap_or_default();
        // Runs may overlap (a timer run and a manual one): merge into what is on disk, under
        // a lock, so that no run's counts are lost.
        *state = state::save_merged(
            saving,
            &settings.account.state_file,
            std::mem::take(state),
            &requests,
            &retries,
            self.now,
        );
        state_metrics(exp, settings, state, self.now);
        AccountRun {
            exit,
            problems: self.problems,
        }
    }

    /// What the client met: the daily quota (remembered until Volvo replenishes it) and a
    /// renewal after a 401 that failed.
    fn client_news(&mut self, state: &mut State, client: &Client) {
        if let Some(reset) = client.quota_exhausted() {
            // Volvo does not always say when; an hour is a cautious guess that costs one
            // request.
            let after = reset.map(|d| d.as_secs() as i64).unwrap_or(3600);
            state.quota_until = Some(self.now + after);
        }
        if let Some(until) = state.quota_until {
            self.problems.push(format!(
                "the API key's daily request quota is used up until {}; the last answers are replayed meanwhile",
                rfc3339(until)
            ));
        }
        if let Some(fatal) = client.renewal_failure() {
            self.problems.push(fatal.message.clone());
            self.tally.failed = true;
            self.tally.login_needed |= fatal.code == ExitCode::LoginNeeded;
        }
    }

    /// Back-offs learnt this run: endpoints a car does not support, and Extended Vehicle's
    /// shutdown, each believed for a day.
    fn remember_backoffs(&mut self, state: &mut State) {
        let until = self.now + state::BACKOFF_S;
        for key in self.unsupported.drain(..) {
            state.not_supported.entry(key).or_insert(until);
        }
        if self.extended_gone {
            state
                .api_unavailable
                .insert(Origin::ExtendedVehicle.label().into(), until);
            tracing::warn!(
                "Volvo's Extended Vehicle API answers that it is shut down; it is skipped until {} and the other APIs go on",
                rfc3339(until)
            );
        }
    }
}

fn rfc3339(unix_s: i64) -> String {
    crate::clock::datetime(unix_s).to_rfc3339()
}

/// The self-metrics kept in the state file: counters, the quota, back-offs, the last success.
fn state_metrics(exp: &mut Exposition, settings: &Settings, state: &State, now: i64) {
    let account = settings.account.name.as_str();
    match state.quota_until {
        Some(until) => {
            exp.gauge(&c::COLLECT_QUOTA_EXHAUSTED, &[account], 1.0);
            exp.gauge(
                &c::COLLECT_QUOTA_RESET_TIMESTAMP_SECONDS,
                &[account],
                until as f64,
            );
        }
        None => exp.gauge(&c::COLLECT_QUOTA_EXHAUSTED, &[account], 0.0),
    }
    for (key, n) in &state.requests {
        let mut parts = key.splitn(3, ' ');
        if let (Some(api), Some(endpoint), Some(status)) =
            (parts.next(), parts.next(), parts.next())
        {
            exp.counter(
                &c::COLLECT_REQUESTS_TOTAL,
                &[account, api, endpoint, status],
                *n as f64,
            );
        }
    }
    for (api, n) in &state.retries {
        exp.counter(&c::COLLECT_RETRIES_TOTAL, &[account, api], *n as f64);
    }
    for key in state.not_supported.keys() {
        let mut parts = key.splitn(3, ' ');
        if let (Some(vin), Some(api), Some(endpoint)) = (parts.next(), parts.next(), parts.next()) {
            exp.gauge(
                &c::COLLECT_ENDPOINT_NOT_SUPPORTED,
                &[vin, api, endpoint],
                1.0,
            );
        }
    }
    if let Some(until) = state.unavailable_until(Origin::ExtendedVehicle.label(), now) {
        if settings.sources.extended_vehicle {
            exp.gauge(
                &c::COLLECT_API_UNAVAILABLE_UNTIL_TIMESTAMP_SECONDS,
                &[account, Origin::ExtendedVehicle.label()],
                until as f64,
            );
        }
    }
    if let Some(t) = state.last_success {
        exp.gauge(&c::COLLECT_LAST_SUCCESS_TIMESTAMP_SECONDS, &[account], t);
    }
}

fn token_metrics(exp: &mut Exposition, account: &str, token: &Token) {
    exp.gauge(
        &c::COLLECT_ACCESS_TOKEN_EXPIRY_TIMESTAMP_SECONDS,
        &[account],
        token.expires_at as f64,
    );
    if let Some(t) = token.refreshed_at {
        exp.gauge(
            &c::COLLECT_REFRESH_TOKEN_ROTATED_TIMESTAMP_SECONDS,
            &[account],
            t as f64,
        );
    }
    if let Some(t) = token.logged_in_at {
        exp.gauge(&c::COLLECT_LOGIN_TIMESTAMP_SECONDS, &[account], t as f64);
    }
}

/// Renews the access token for the API client after a 401: the refresh itself, under the
/// token file's lock, so that one 401 storm makes one refresh whoever asks. `oauth2`'s
/// futures are not `Send` for every lifetime, so the refresh runs on a thread of its own with
/// its own small runtime and HTTP client; the caller still waits no longer than its deadline.
struct Renewer {
    client_id: String,
    client_secret: Secret,
    auth_url: url::Url,
    token_url: url::Url,
    token_file: PathBuf,
    request_timeout: Duration,
}

impl Renewer {
    fn new(settings: &Settings) -> Self {
        Renewer {
            client_id: settings.account.client_id.clone(),
            client_secret: settings.client_secret().expect("checked before").clone(),
            auth_url: settings.auth_url.clone(),
            token_url: settings.token_url.clone(),
            token_file: settings.account.token_file.clone(),
            request_timeout: settings.request_timeout,
        }
    }

    fn renew_blocking(&self, failed: &Secret) -> Result<Secret, Fatal> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Fatal::new(ExitCode::Temporary, format!("cannot renew the token: {e}")))?;
        let http = crate::http::client(self.request_timeout);
        let oauth = OAuthClient {
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            auth_url: &self.auth_url,
            token_url: &self.token_url,
        };
        runtime.block_on(refresh::renew(&http, &oauth, &self.token_file, failed))
    }
}

impl TokenSource for Renewer {
    fn renew<'a>(
        &'a self,
        failed: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Result<Secret, Fatal>> + Send + 'a>> {
        let this = Renewer {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            auth_url: self.auth_url.clone(),
            token_url: self.token_url.clone(),
            token_file: self.token_file.clone(),
            request_timeout: self.request_timeout,
        };
        let failed = failed.clone();
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(this.renew_blocking(&failed));
            });
            rx.await.unwrap_or_else(|_| {
                Err(Fatal::new(
                    ExitCode::Temporary,
                    "the token renewal stopped unexpectedly",
                ))
            })
        })
    }
}
