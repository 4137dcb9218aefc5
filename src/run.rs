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
use tracing::Instrument;

use crate::api::answers::{Ask, CarAnswers};
use crate::api::client::{Client, ClientOptions, TokenSource};
use crate::api::connected_vehicle::VehicleList;
use crate::api::extended_vehicle::ResourceNames;
use crate::api::location::Feature;
use crate::api::observe;
use crate::api::ApiError;
use crate::auth::refresh::{self, OAuthClient};
use crate::auth::token::Token;
use crate::claims::{self, Claim, Claims};
use crate::config::{Account, Settings};
use crate::endpoints::{Endpoint, Fact};
use crate::error::{ExitCode, Fatal, Tally};
use crate::metrics::catalog::{self as c, Origin};
use crate::metrics::{self, Exposition, MapContext};
use crate::planner::{Collecting, Planner, Request, Setup};
use crate::records::CarRecords;
use crate::schedule::{self, Schedule};
use crate::secret::Secret;
use crate::sinks;
use crate::spent;
use crate::state::{self, AnswerKey, CacheEntry, CarEndpoint, Mode, State};
use crate::window::Window;

/// What one run produced.
pub struct RunOutcome {
    /// The exposition as delivered (text format 0.0.4).
    pub text: bytes::Bytes,
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
    // No request, nor a refresh's connection before it is sent, outlasts the whole run.
    let http = crate::http::client(settings.request_timeout.min(settings.timeout));
    let exp = Mutex::new(Exposition::new());
    // Saving and delivering are part of the run: collection leaves them their time, at
    // most a quarter of the run.
    let outputs = sinks::time_needed(settings);
    let after = (state::SAVE_GRACE + outputs).min(settings.timeout / 4);
    let ends = Ends {
        collecting: deadline - after,
        // A held lock never eats the outputs' share: at least half of what is left after
        // collection, when they need that much.
        saving: (deadline - after + state::SAVE_GRACE).min(deadline - outputs.min(after / 2)),
    };
    let multi = settings.accounts.len() > 1;
    let claims = Claims::new(settings.accounts.len());
    let runs =
        futures_util::future::join_all(settings.accounts.iter().enumerate().map(|(i, a)| {
            // With several accounts, each log line of an account's run names it.
            let span = if multi {
                tracing::info_span!("account", name = %a.name)
            } else {
                tracing::Span::none()
            };
            collect_account(settings, a, claims.of(i), &http, ends, &exp).instrument(span)
        }))
        .await;

    let mut exp = exp.into_inner().expect("exposition lock");
    let mut problems = account_problems(settings, &runs);
    let codes: Vec<ExitCode> = runs.iter().map(|r| r.exit).collect();
    let collected = crate::error::merge(&codes, false);
    day_metrics(&mut exp, settings);
    let complete = collected == ExitCode::Ok && runs.iter().all(|r| r.complete);
    run_metrics(&mut exp, settings, started, complete);
    if let Some(prices) = &settings.prices {
        metrics::records::map_prices(&mut exp, prices);
    }
    exp.finish_skips();
    let text = bytes::Bytes::from(exp.encode());
    let failures = sinks::deliver(settings, &exp, &text, deadline).await;
    for (output, err) in &failures {
        problems.push(format!("output {output} failed: {err:#}"));
    }
    Ok(RunOutcome {
        text,
        exit: crate::error::merge(&codes, !failures.is_empty()),
        problems,
    })
}

/// Every account's problems, named by account when there are several.
fn account_problems(settings: &Settings, runs: &[AccountRun]) -> Vec<String> {
    let multi = settings.accounts.len() > 1;
    let mut problems = Vec::new();
    for (a, r) in settings.accounts.iter().zip(runs) {
        for p in &r.problems {
            let p = settings.for_account(a, p);
            problems.push(if multi {
                format!("account {}: {p}", a.name)
            } else {
                p
            });
        }
    }
    problems
}

/// The run's own gauges: when it ended, how long it took, whether it collected everything.
fn run_metrics(exp: &mut Exposition, settings: &Settings, started: Instant, success: bool) {
    let now = settings.clock.now_f64();
    exp.gauge(&c::COLLECT_RUN_TIMESTAMP_SECONDS, &[], now);
    let seconds = started.elapsed().as_secs_f64();
    exp.gauge(&c::COLLECT_RUN_DURATION_SECONDS, &[], seconds);
    let success = if success { 1.0 } else { 0.0 };
    exp.gauge(&c::COLLECT_RUN_SUCCESS, &[], success);
}

/// When an account's phases must end, both within the run's deadline.
#[derive(Clone, Copy)]
struct Ends {
    /// The token, the requests and the weather: collection leaves the rest their time.
    collecting: Instant,
    /// The save may wait this long for a lock another process holds: [`state::SAVE_GRACE`]
    /// past collection, never into the outputs' share of the run.
    saving: Instant,
}

/// What one account's collection came to.
struct AccountRun {
    exit: ExitCode,
    /// Everything collected: no failure and nothing missing (see [`Tally::complete`]).
    complete: bool,
    problems: Vec<String>,
}

/// One account, phase by phase; maps into the shared exposition and saves the account's state.
async fn collect_account(
    settings: &Settings,
    account: &Account,
    claim: Claim<'_>,
    http: &reqwest::Client,
    ends: Ends,
    exp: &Mutex<Exposition>,
) -> AccountRun {
    if let Err(fatal) = preflight(settings, account) {
        return refused(settings, account, &mut lock(exp), &fatal);
    }
    let deadline = ends.collecting;
    let now = settings.clock.now();
    let mut state = State::load(&account.state_file);
    state.expire(now);
    let mut report = Report::new(settings, account, now);

    let token = match token_step(settings, account, http, deadline).await {
        Ok(t) => t,
        Err(fatal) => {
            report.login_failed(&fatal);
            // No car is read here: the later accounts need not wait for this save.
            claim.tell(&[]);
            let saving = state::lock_for_save(&account.state_file, ends.saving).await;
            return report.finish(&mut lock(exp), &mut state, None, None, saving);
        }
    };

    let window = Window::new(
        &account.state_file,
        settings.requests_per_minute,
        deadline,
        settings.clock,
    );
    let schedule = Schedule::with_overrides(&settings.schedule);
    let setup = setup(settings, account, &state, &token, &schedule, now);
    let quota_paused = setup.quota_paused;
    let mut planner = Planner::new(setup, &mut state);
    // A car that an earlier account of the file lists too is that account's to read. The
    // wait leaves this account most of its time, whatever the run's timeout.
    let start = Instant::now();
    let until = (start + claims::WAIT).min(start + deadline.saturating_duration_since(start) / 4);
    planner.leave_out(claim.taken_before(until).await);
    let client = client(settings, account, http, &token, deadline, &window);
    if quota_paused {
        tracing::info!("the API key's daily quota is used up; replaying the last answers until it is replenished");
    }
    let durations = fetch(&mut planner, &client, &window, &claim, deadline).await;
    // An API's 401 may have renewed the token meanwhile: the metrics show the pair on disk.
    let current = crate::auth::token::reread(&account.token_file).unwrap_or(token);
    token_metrics(&mut lock(exp), &account.name, &current);
    let weather = weather(settings, http, &planner, &mut state.weather, now).await;
    {
        let mut exp = lock(exp);
        map(
            settings,
            account,
            &mut exp,
            &planner,
            &durations,
            &mut report,
            &mut state.records,
        );
        map_weather(&mut exp, &weather);
    }
    report.tally.failed |= quota_paused;
    let saving = state::lock_for_save(&account.state_file, ends.saving).await;
    report.finish(
        &mut lock(exp),
        &mut state,
        Some(&client),
        Some(planner),
        saving,
    )
}

/// What must hold before an account's run asks anything: its secrets are set, and its token
/// and state files can be used. Only the operator can fix these, so the account is not
/// collected; the other accounts are.
fn preflight(settings: &Settings, a: &Account) -> Result<(), Fatal> {
    settings.api_key(a)?;
    settings.client_secret(a)?;
    crate::auth::token::preflight(&a.token_file)?;
    state::preflight(&a.state_file)
}

/// An account that failed its [`preflight`]: its problem and its login gauge, and no file of
/// its touched (they are what is wrong).
fn refused(
    settings: &Settings,
    account: &Account,
    exp: &mut Exposition,
    fatal: &Fatal,
) -> AccountRun {
    let mut report = Report::new(settings, account, settings.clock.now());
    report.login_failed(fatal);
    let login_needed = if report.tally.login_needed { 1.0 } else { 0.0 };
    exp.gauge(&c::COLLECT_LOGIN_NEEDED, &[&account.name], login_needed);
    AccountRun {
        exit: report.tally.exit(),
        complete: false,
        problems: report.problems,
    }
}

fn lock(exp: &Mutex<Exposition>) -> std::sync::MutexGuard<'_, Exposition> {
    exp.lock().expect("exposition lock")
}

/// What the planner is told of this account's run.
fn setup<'a>(
    settings: &'a Settings,
    account: &'a Account,
    state: &State,
    token: &Token,
    schedule: &'a Schedule,
    now: i64,
) -> Setup<'a> {
    let extended_until = state.unavailable_until(Origin::ExtendedVehicle, now);
    let extended = settings
        .sources
        .extended_vehicle_wanted(token.scope.as_deref())
        && extended_until.is_none();
    Setup {
        schedule,
        collecting: Collecting {
            sources: settings.sources,
            extended,
        },
        interval_s: settings.interval.as_secs().max(1) as i64,
        now,
        vins: &account.vins,
        quota_paused: state.quota_until.is_some(),
        other_cars_on_key: other_cars_on_key(settings, account, state),
        accounts_on_key: settings.accounts_on_key(account).count().max(1),
        day: key_day(settings, account, now),
    }
}

/// The account's API client for this run.
fn client(
    settings: &Settings,
    account: &Account,
    http: &reqwest::Client,
    token: &Token,
    deadline: Instant,
    window: &Window,
) -> Client {
    Client::new(
        http.clone(),
        ClientOptions {
            base: settings.api_url.clone(),
            api_key: settings.api_key(account).expect("checked before").clone(),
            access_token: token.access_token.clone(),
            concurrency: settings.concurrency,
            deadline,
            request_timeout: settings.request_timeout,
            window: Some(window.clone()),
            token_source: Some(Box::new(Renewer::new(settings, account))),
        },
    )
}

/// The token before any API call: refreshed and saved when it expires within a minute.
async fn token_step(
    settings: &Settings,
    account: &Account,
    http: &reqwest::Client,
    deadline: Instant,
) -> Result<Token, Fatal> {
    let secret = settings.client_secret(account).expect("checked before");
    let oauth = OAuthClient {
        client_id: &account.client_id,
        client_secret: secret,
        auth_url: &settings.auth_url,
        token_url: &settings.token_url,
        clock: settings.clock,
    };
    let fresh = refresh::ensure_fresh(http, &oauth, &account.token_file, deadline);
    match tokio::time::timeout_at(deadline, fresh).await {
        Ok(r) => r.map(|(t, _)| t),
        Err(_) => Err(Fatal::new(
            ExitCode::Temporary,
            "the run's deadline passed while the access token was being refreshed",
        )),
    }
}

/// Where the account's API key stands in Volvo's day: what every account on it spent so far,
/// from their day files.
pub fn key_day(settings: &Settings, account: &Account, now: i64) -> schedule::Day {
    let others = settings
        .accounts_on_key(account)
        .filter(|a| a.name != account.name);
    let files = std::iter::once(account)
        .chain(others)
        .map(|a| a.state_file.as_path());
    let spent = spent::on_key(files, &account.key_id(), now);
    schedule::Day {
        spent: spent.requests,
        now,
        reset_at: spent::next_reset(now, spent.reset_s),
    }
}

/// Cars of the other accounts that share this account's API key (they share its quota), as
/// far as known without asking (one for an account whose cars are not), a car on several
/// accounts counted once.
fn other_cars_on_key(settings: &Settings, account: &Account, state: &State) -> usize {
    let on_key: Vec<&str> = settings
        .accounts_on_key(account)
        .filter(|a| a.name != account.name)
        .map(|a| a.name.as_str())
        .collect();
    if on_key.is_empty() {
        return 0;
    }
    // This account's state is loaded already; a fleet's is a megabyte to read again.
    let known = |a: &Account| {
        if a.name == account.name && a.vins.is_empty() {
            last_vehicle_list(state)
        } else {
            known_vins(a)
        }
    };
    // An account's share depends only on the accounts before it: none after the last one on
    // the key is read.
    let last = settings
        .accounts
        .iter()
        .rposition(|a| on_key.contains(&a.name.as_str()))
        .unwrap_or(0);
    let accounts = &settings.accounts[..=last];
    let shares = claims::share(accounts, known);
    accounts
        .iter()
        .zip(shares)
        .filter(|(a, _)| on_key.contains(&a.name.as_str()))
        // Nothing known, or an empty list, counts as one car; cars left to another, as none.
        .map(|(_, s)| s.map_or(1, |s| s.own.len().max(usize::from(s.theirs.is_empty()))))
        .sum()
}

/// The cars an account collects, as far as known without asking: its configured VINs, else
/// its last vehicle list.
pub fn known_vins(a: &Account) -> Option<Vec<String>> {
    if !a.vins.is_empty() {
        return Some(a.vins.clone());
    }
    last_vehicle_list(&State::load(&a.state_file))
}

/// The account's last vehicle list kept in its state, if it still decodes.
pub fn last_vehicle_list(state: &State) -> Option<Vec<String>> {
    let key = AnswerKey {
        vin: String::new(),
        endpoint: Endpoint::Vehicles,
        resource: None,
    };
    let entry = state.cache.get(&key)?;
    let mut list = CarAnswers::new("", crate::api::answers::Absent::Deferred);
    list.keep(Ask::of(Endpoint::Vehicles), entry.clone(), i64::MAX);
    list.typed::<VehicleList>(Endpoint::Vehicles)
        .ok()
        .map(|l| l.0.clone())
}

// ---- fetch ------------------------------------------------------------------------------

/// The longest request of each (vin, API) this run, in seconds: its requests go out
/// together, so this is about the time the API's answers took.
type Durations = BTreeMap<(String, Origin), f64>;

/// Asks what the planner wants until it wants nothing more. There are no round barriers:
/// each answer that comes in may make the planner want more (a car that woke, a trip that
/// ended), and what it wants goes out at once, so a slow endpoint holds up nothing else while
/// there is room. Each batch takes what Volvo's minute window and the run's part of the key's
/// day have room for, in the ladder's order (see [`crate::window::admit`]): when they are
/// short, a less important class waits for the more important answers in flight. The rest is
/// deferred to the next run.
async fn fetch(
    planner: &mut Planner<'_>,
    client: &Client,
    window: &Window,
    claim: &Claim<'_>,
    deadline: Instant,
) -> Durations {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use futures_util::FutureExt;
    let mut durations = Durations::new();
    let mut in_flight = FuturesUnordered::new();
    let mut flying = Flying::default();
    // Places reserved in the window and not used yet: for requests that may follow an answer
    // in flight, or that wait for one.
    let mut carried = 0;
    let mut told = false;
    // Whether the last round sent nothing and had nothing in flight (see the loop's end).
    let mut idle = false;
    loop {
        let batch = planner.next_round();
        // The later accounts wait for this word: it goes out as soon as the cars are known.
        if !told {
            if let Some(vins) = planner.confirmed_vins() {
                claim.tell(&vins);
                told = true;
            }
        }
        if Instant::now() >= deadline {
            // Wanted, but the run's time is up: that is the deadline, not a deferral.
            for r in &batch {
                planner.record(r, Err(ApiError::Timeout));
            }
        } else if !batch.is_empty() {
            let go = admit(planner, window, &batch, &mut carried, &flying).await;
            for r in go {
                planner.dispatch(r);
                flying.add(r);
                let r = r.clone();
                in_flight.push(async move {
                    let answer = one(client, &r).await;
                    (r, answer)
                });
            }
        }
        let Some(first) = in_flight.next().await else {
            // Nothing in flight. When this round's requests were all deferred (the minute
            // full), one more round learns what they leave: a deferred vehicle list's last
            // answer stands in, and its cars are known. A second such round has nothing new.
            if batch.is_empty() || idle {
                break;
            }
            idle = true;
            continue;
        };
        idle = false;
        // Every answer that is already in goes into this round: a car's wants are worked out
        // once for all of them, not once per answer.
        let mut ready = vec![first];
        while let Some(Some(next)) = in_flight.next().now_or_never() {
            ready.push(next);
        }
        for (r, (result, seconds)) in ready {
            flying.remove(&r);
            let d = durations
                .entry((r.vin.clone(), r.endpoint().api()))
                .or_default();
            *d = d.max(seconds);
            planner.record(&r, result);
        }
    }
    window.release().await;
    durations
}

/// How many requests of each priority are in flight.
#[derive(Default)]
struct Flying(BTreeMap<Fact, usize>);

impl Flying {
    fn add(&mut self, r: &Request) {
        *self.0.entry(r.priority).or_default() += 1;
    }

    fn remove(&mut self, r: &Request) {
        if let Some(n) = self.0.get_mut(&r.priority) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&r.priority);
            }
        }
    }

    /// The most important priority in flight.
    fn lead(&self) -> Option<Fact> {
        self.0.keys().next().copied()
    }
}

/// Takes places for a batch in the minute window, within the run's part of the key's day,
/// and returns the requests that go now; those that wait keep their places (`carried`), the
/// rest are deferred to the next run.
async fn admit<'b>(
    planner: &mut Planner<'_>,
    window: &Window,
    batch: &'b [Request],
    carried: &mut usize,
    flying: &Flying,
) -> &'b [Request] {
    let room = planner.room();
    if window.limits() {
        // A place kept too long is given up: the window would forget it before it is used.
        *carried = window.usable();
    }
    // Without a window or a budget, nothing can run short: no need to count what may follow.
    let follow = if window.limits() || planner.allowance().is_some() {
        planner.may_follow(batch)
    } else {
        0
    };
    let n = crate::window::to_reserve(batch.len(), follow, room, *carried);
    let granted = window.reserve(n).await;
    let priorities: Vec<Fact> = batch.iter().map(|r| r.priority).collect();
    let a = crate::window::admit(&priorities, follow, room, *carried, granted, flying.lead());
    *carried = a.carried;
    let (go, rest) = batch.split_at(a.go);
    let (wait, later) = rest.split_at(a.wait);
    for r in wait {
        planner.wait(r);
    }
    defer(planner, later, a.go + a.wait, room < batch.len());
    window.take(go.len()).await;
    go
}

/// Defers what found no place in the minute window or the day's allowance to the next run.
fn defer(planner: &mut Planner<'_>, later: &[Request], places: usize, budget: bool) {
    if later.is_empty() {
        return;
    }
    let why = if budget {
        "this run's part of the API key's day is spent"
    } else {
        "Volvo's per-minute limit is reached"
    };
    tracing::info!(
        places,
        deferred = later.len(),
        "{why}; deferring the rest to the next run"
    );
    for r in later {
        planner.defer(r);
    }
}

/// One request, bounded by the run's deadline, and how long it took.
async fn one(client: &Client, r: &Request) -> (Result<Vec<u8>, ApiError>, f64) {
    let t0 = Instant::now();
    let path = r.path();
    let result = tokio::time::timeout_at(client.deadline(), client.get(r.endpoint(), &path))
        .await
        .unwrap_or(Err(ApiError::Timeout));
    (result, t0.elapsed().as_secs_f64())
}

/// The weather at one car, or why there is none.
type WeatherAt = (
    String,
    Result<crate::weather::Current, crate::weather::WeatherError>,
);

/// Weather at each car's last position (optional; its failure never fails the car's data).
async fn weather(
    settings: &Settings,
    http: &reqwest::Client,
    planner: &Planner<'_>,
    kept: &mut BTreeMap<String, CacheEntry>,
    now: i64,
) -> Vec<WeatherAt> {
    let Some(w) = &settings.weather else {
        return Vec::new();
    };
    let positions: Vec<(String, (f64, f64))> = planner
        .vins()
        .unwrap_or_default()
        .iter()
        .filter_map(|vin| {
            let feature = planner
                .car(vin)?
                .typed::<Feature>(Endpoint::Location)
                .ok()?;
            metrics::location::position(feature).map(|p| (vin.clone(), p))
        })
        .collect();
    let answers = futures_util::future::join_all(
        positions
            .iter()
            .map(|(vin, pos)| crate::weather::fetch(http, w, *pos, kept.get(vin).cloned(), now)),
    )
    .await;
    let mut out = Vec::new();
    for ((vin, _), answer) in positions.into_iter().zip(answers) {
        match answer {
            Ok((current, entry)) => {
                kept.insert(vin.clone(), entry);
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

/// Every car's answers, asked or replayed, into the exposition, and into its trip and charge
/// records; each API's outcome into the report.
fn map(
    settings: &Settings,
    account: &Account,
    exp: &mut Exposition,
    planner: &Planner<'_>,
    durations: &Durations,
    report: &mut Report,
    records: &mut BTreeMap<String, CarRecords>,
) {
    let Some(vins) = cars_to_map(account, exp, planner, report) else {
        return;
    };
    report.vehicles = vins.len();
    if !planner.left_out().is_empty() {
        tracing::debug!(
            cars = ?planner.left_out(),
            "left to an earlier account of the configuration, which lists them too"
        );
    }
    // No configured car on the account says what to fix itself; "tries again" would not.
    // Cars left to an earlier account are read, by it.
    if vins.is_empty() && !report.tally.config && planner.left_out().is_empty() {
        report.no_car();
    }
    let cx = MapContext {
        account: &account.name,
        location: &settings.location,
        extended_answers: vins.iter().filter_map(|v| planner.car(v)).any(|car| {
            car.is_fresh(&Ask::of(Endpoint::ExtendedResources))
                && car
                    .typed::<ResourceNames>(Endpoint::ExtendedResources)
                    .is_ok()
        }),
    };
    for car in vins.iter().filter_map(|v| planner.car(v)) {
        map_car(settings, planner, &cx, exp, durations, report, car);
        map_records(
            exp,
            records.entry(car.vin.clone()).or_default(),
            car,
            report.now,
        );
        for (api, n) in car.future_uploads() {
            let labels = [car.vin.as_str(), api.label()];
            exp.gauge(&c::COLLECT_FUTURE_UPLOADS, &labels, n as f64);
        }
    }
    for (vin, e, err) in planner.replayed_failures() {
        report.error(exp, &vin, e, &err);
    }
    for (vin, e) in planner.deferred() {
        let labels = [vin.as_str(), e.api().label(), e.name()];
        exp.gauge(&c::COLLECT_ENDPOINT_DEFERRED, &labels, 1.0);
    }
    mode_metrics(exp, planner);
    plan_metrics(exp, &account.name, planner);
}

/// The cars to map: every car of the vehicle list, or the configured ones that are on it;
/// `None` when the list could not be had and no car is known.
fn cars_to_map(
    account: &Account,
    exp: &mut Exposition,
    planner: &Planner<'_>,
    report: &mut Report,
) -> Option<Vec<String>> {
    let ask = Ask::of(Endpoint::Vehicles);
    let listed = planner.list().typed::<VehicleList>(Endpoint::Vehicles);
    let Some(vins) = planner.vins() else {
        // No cars: the list failed, or was deferred with nothing kept.
        report.list_failed(exp, &listed.err().unwrap_or(ApiError::Deferred));
        return None;
    };
    let mut vins = vins.to_vec();
    match &listed {
        Err(e) if account.vins.is_empty() => {
            report.error(exp, "", ask.endpoint, e);
        }
        Ok(on_account) if !account.vins.is_empty() => {
            for v in vins.iter().filter(|v| !on_account.0.contains(v)) {
                report.tally.failed = true;
                report.problems.push(format!(
                    "{v}: this VIN (volvo.vins) is not on the account; remove it or log in with the account that owns it"
                ));
            }
            vins.retain(|v| on_account.0.contains(v));
            // None of the configured cars can be read: only the configuration can fix that.
            report.tally.config |= !account.vins.iter().any(|v| on_account.0.contains(v));
        }
        _ => {}
    }
    Some(vins)
}

/// One car's answers, asked or replayed, API by API into the exposition and the report.
fn map_car(
    settings: &Settings,
    planner: &Planner<'_>,
    cx: &MapContext,
    exp: &mut Exposition,
    durations: &Durations,
    report: &mut Report,
    car: &CarAnswers,
) {
    for api in metrics::APIS {
        let origin = api.origin();
        let on = match origin {
            Origin::ExtendedVehicle => planner.collects_extended(),
            _ => settings.sources.reads(origin),
        };
        if !on {
            continue;
        }
        let mut mapped = api.map(exp, car, cx);
        report.extended_gone |= mapped.api_gone;
        if mapped.api_gone {
            // Neither a success nor a failure: the API is gone, and the next runs skip it.
            continue;
        }
        for (endpoint, e) in car.stood_in(origin) {
            mapped.add_error(endpoint, e);
        }
        // None when this run asked the API nothing for the car (its answers were replayed).
        let seconds = durations.get(&(car.vin.clone(), origin)).copied();
        report.api(exp, &car.vin, origin, &mapped.errors, seconds);
    }
}

/// The car's trips and charges: what this run knows of it observed, every run (also when
/// all its answers are replayed), and the records into the exposition.
fn map_records(exp: &mut Exposition, records: &mut CarRecords, car: &CarAnswers, now: i64) {
    records.observe(&observe::observation(car, now));
    metrics::records::map(exp, &car.vin, records);
}

/// Each car's mode, as one 0/1 series per mode.
fn mode_metrics(exp: &mut Exposition, planner: &Planner<'_>) {
    for (vin, mode) in planner.modes() {
        for m in Mode::ALL {
            let v = if m == mode { 1.0 } else { 0.0 };
            exp.gauge(&c::COLLECT_VEHICLE_MODE, &[&vin, m.label()], v);
        }
    }
}

/// The key's day plan.
fn plan_metrics(exp: &mut Exposition, account: &str, planner: &Planner<'_>) {
    let Some(plan) = planner.day_plan() else {
        return;
    };
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
    let level = planner.level();
    let every = level.every_runs as f64;
    exp.gauge(&c::COLLECT_PLAN_EVERY_RUNS, &[account], every);
    for (tier, m) in ["daily", "hourly", "quarter_hour"].iter().zip(level.tiers) {
        exp.gauge(&c::COLLECT_PLAN_TIER_STRETCH, &[account, tier], m as f64);
    }
    if let Some(allowed) = planner.allowance() {
        exp.gauge(&c::COLLECT_KEY_REQUESTS_ALLOWED, &[account], allowed as f64);
    }
}

/// The weather at each car, or its failure.
fn map_weather(exp: &mut Exposition, weather: &[WeatherAt]) {
    for (vin, w) in weather {
        match w {
            Ok(current) => crate::weather::map(exp, vin, current),
            Err(e) => exp.gauge(
                &c::COLLECT_ENDPOINT_ERROR,
                &[vin, Origin::Weather.label(), "weather", e.reason()],
                1.0,
            ),
        }
    }
}

// ---- report -----------------------------------------------------------------------------

/// The account's outcome as it builds up: problems for the log, the tally for the exit code,
/// back-offs for the state.
struct Report<'s> {
    settings: &'s Settings,
    account: &'s Account,
    now: i64,
    tally: Tally,
    problems: Vec<String>,
    /// Endpoints of cars newly found unsupported.
    unsupported: Vec<CarEndpoint>,
    /// Endpoints of cars newly found blocked for the car's region or market.
    unavailable: Vec<CarEndpoint>,
    extended_gone: bool,
    vehicles: usize,
}

impl<'s> Report<'s> {
    fn new(settings: &'s Settings, account: &'s Account, now: i64) -> Self {
        Report {
            settings,
            account,
            now,
            tally: Tally::default(),
            problems: Vec::new(),
            unsupported: Vec::new(),
            unavailable: Vec::new(),
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
        let said = match e {
            // A 404 speaks of a car elsewhere; here no car is meant.
            ApiError::NotSupported(m) => format!("Volvo answered 404 ({m})"),
            e => e.to_string(),
        };
        self.problems
            .push(format!("cannot list the vehicles on the account: {said}"));
        self.error(exp, "", Endpoint::Vehicles, e);
        self.no_car();
    }

    /// A run that delivered no car is no success, whatever the reason (a deferred vehicle
    /// list with nothing kept, an empty one): the account's cars exist, and none was read.
    fn no_car(&mut self) {
        self.tally.failed = true;
        self.problems.push(
            "no car of the account could be read in this run; the next run tries again".into(),
        );
    }

    /// One endpoint's failure into the self-metrics and the tally; returns whether it is a
    /// failure (deferred and unsupported are not).
    fn error(&mut self, exp: &mut Exposition, vin: &str, endpoint: Endpoint, e: &ApiError) -> bool {
        let api = endpoint.api().label();
        match e {
            ApiError::Deferred => false,
            // The vehicle list is never "not supported": that would hide every car.
            ApiError::NotSupported(_) if endpoint != Endpoint::Vehicles => {
                let labels = [vin, api, endpoint.name()];
                exp.gauge(&c::COLLECT_ENDPOINT_NOT_SUPPORTED, &labels, 1.0);
                // Remembered per endpoint for a day. Extended Vehicle's values are asked per
                // resource, and its resource list already says which a car has.
                if endpoint != Endpoint::ExtendedValues {
                    self.unsupported.push(CarEndpoint {
                        vin: vin.to_string(),
                        endpoint,
                    });
                }
                false
            }
            // On the vehicle list a block hides every car: that stays a failure.
            ApiError::NotAvailable(_) if !vin.is_empty() => {
                let labels = [vin, api, endpoint.name()];
                exp.gauge(&c::COLLECT_ENDPOINT_NOT_AVAILABLE, &labels, 1.0);
                self.unavailable.push(CarEndpoint {
                    vin: vin.to_string(),
                    endpoint,
                });
                false
            }
            _ => {
                self.failure(exp, vin, endpoint, e);
                true
            }
        }
    }

    fn failure(&mut self, exp: &mut Exposition, vin: &str, endpoint: Endpoint, e: &ApiError) {
        let api = endpoint.api().label();
        self.tally.failed = true;
        e.count(&mut self.tally);
        let labels = [vin, api, endpoint.name(), e.reason()];
        exp.gauge(&c::COLLECT_ENDPOINT_ERROR, &labels, 1.0);
        // The quota is said once for the account, not once per endpoint.
        if !matches!(e, ApiError::Quota { .. }) {
            let who = if vin.is_empty() {
                String::new()
            } else {
                format!("{vin}: ")
            };
            self.problems.push(format!("{who}{api} {endpoint}: {e}"));
        }
    }

    /// One API of one car: its endpoints' errors, its success and its duration.
    fn api(
        &mut self,
        exp: &mut Exposition,
        vin: &str,
        api: Origin,
        errors: &[(Endpoint, ApiError)],
        seconds: Option<f64>,
    ) {
        let mut ok = true;
        for (endpoint, e) in errors {
            ok &= !self.error(exp, vin, *endpoint, e);
            // Deferred with nothing kept to replay: no failure, but no data either.
            if *e == ApiError::Deferred {
                ok = false;
                self.tally.missing = true;
            }
        }
        let success = if ok { 1.0 } else { 0.0 };
        exp.gauge(&c::COLLECT_API_SUCCESS, &[vin, api.label()], success);
        if let Some(seconds) = seconds {
            let labels = [vin, api.label()];
            exp.gauge(&c::COLLECT_API_DURATION_SECONDS, &labels, seconds);
        }
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
        if let Some(fatal) = saving.problem() {
            self.problems.insert(0, fatal.message);
            self.tally.failed = true;
        }
        let account = self.account.name.as_str();
        let budget = planner.as_ref().and_then(|p| p.budget().cloned());
        // The cars of this run: a back-off remembered for a car no longer collected is kept
        // in the state but not exported.
        let cars = planner
            .as_ref()
            .and_then(|p| p.vins().map(<[String]>::to_vec));
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
        if self.tally.complete() {
            state.last_success = Some(self.settings.clock.now_f64());
        }
        let (requests, retries) = client
            .map(|c| (c.request_counts(), c.retry_counts()))
            .unwrap_or_default();
        // Runs may overlap (a timer run and a manual one): merge into what is on disk, under
        // a lock, so that no run's counts are lost.
        if saving.problem().is_none() {
            self.spend(client, budget.as_ref());
        }
        let path = &self.account.state_file;
        let ours = std::mem::take(state);
        let (merged, unsaved) =
            state::save_merged(saving, path, ours, &requests, &retries, self.now);
        *state = merged;
        state_metrics(
            exp,
            self.settings,
            account,
            cars.as_deref(),
            state,
            self.now,
        );
        let exit = match unsaved {
            Some(problem) => {
                self.problems.insert(0, problem);
                self.tally.failed = true;
                self.tally.exit()
            }
            None => exit,
        };
        AccountRun {
            exit,
            complete: self.tally.complete(),
            problems: self.problems,
        }
    }

    /// Adds this run's requests to the account's count of its API key's day (the caller holds
    /// the state's lock), and returns the key's spending today with them. A quota answer that
    /// said when the quota is replenished moves the day's boundary there.
    fn spend(&mut self, client: Option<&Client>, budget: Option<&schedule::Budget>) {
        let ours = client.map_or(0, |c| state::reached_volvo(&c.request_counts()));
        let reset_at = client
            .and_then(Client::quota_exhausted)
            .flatten()
            .map(|d| self.now + d.as_secs() as i64);
        let key = self.account.key_id();
        spent::add(&self.account.state_file, &key, self.now, ours, reset_at);
        let spent = budget.map_or(0, |b| b.spent) + ours;
        if client.is_some_and(|c| c.quota_exhausted().is_some()) && spent < schedule::DAILY_BUDGET {
            self.problems.push(format!(
                "Volvo says the API key's daily quota is used up, but the collector's runs spent only {spent} of it today: another application may be using the same API key"
            ));
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
        for key in self.unavailable.drain(..) {
            state.not_available.entry(key).or_insert(until);
        }
        if self.extended_gone {
            state.api_unavailable.insert(Origin::ExtendedVehicle, until);
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
fn state_metrics(
    exp: &mut Exposition,
    settings: &Settings,
    account: &str,
    // The cars of the run, when it knows them: back-offs of other cars are not exported.
    cars: Option<&[String]>,
    state: &State,
    now: i64,
) {
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
        let e = key.endpoint;
        let labels = [account, e.api().label(), e.template(), key.status.as_str()];
        exp.counter(&c::COLLECT_REQUESTS_TOTAL, &labels, *n as f64);
    }
    for (api, n) in &state.retries {
        exp.counter(
            &c::COLLECT_RETRIES_TOTAL,
            &[account, api.label()],
            *n as f64,
        );
    }
    let remembered = [
        (&state.not_supported, &c::COLLECT_ENDPOINT_NOT_SUPPORTED),
        (&state.not_available, &c::COLLECT_ENDPOINT_NOT_AVAILABLE),
    ];
    let collected = |vin: &str| cars.is_none_or(|cars| cars.iter().any(|c| c == vin));
    for (map, family) in remembered {
        for key in map.keys().filter(|k| collected(&k.vin)) {
            let e = key.endpoint;
            exp.gauge(family, &[key.vin.as_str(), e.api().label(), e.name()], 1.0);
        }
    }
    if let Some(until) = state.unavailable_until(Origin::ExtendedVehicle, now) {
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

/// Each account's API key's day, once every account of the run has added its requests: what
/// the key spent (every account on it), and what it would spend by the reset at today's pace.
fn day_metrics(exp: &mut Exposition, settings: &Settings) {
    let now = settings.clock.now();
    let interval = settings.interval.as_secs().max(1);
    for a in &settings.accounts {
        let day = key_day(settings, a, now);
        let account = a.name.as_str();
        exp.gauge(&c::COLLECT_KEY_REQUESTS_TODAY, &[account], day.spent as f64);
        let projected = day.projection(interval) as f64;
        exp.gauge(&c::COLLECT_KEY_REQUESTS_PROJECTED, &[account], projected);
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
#[derive(Clone)]
struct Renewer {
    client_id: String,
    client_secret: Secret,
    auth_url: url::Url,
    token_url: url::Url,
    token_file: PathBuf,
    request_timeout: Duration,
    clock: crate::clock::Clock,
}

impl Renewer {
    fn new(settings: &Settings, account: &Account) -> Self {
        Renewer {
            client_id: account.client_id.clone(),
            client_secret: settings
                .client_secret(account)
                .expect("checked before")
                .clone(),
            auth_url: settings.auth_url.clone(),
            token_url: settings.token_url.clone(),
            token_file: account.token_file.clone(),
            request_timeout: settings.request_timeout,
            clock: settings.clock,
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
            clock: self.clock,
        };
        runtime.block_on(refresh::renew(&http, &oauth, &self.token_file, failed))
    }
}

impl TokenSource for Renewer {
    fn renew<'a>(
        &'a self,
        failed: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Result<Secret, Fatal>> + Send + 'a>> {
        let this = self.clone();
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
