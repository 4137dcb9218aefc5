//! One collection, start to finish: for every account concurrently, the token, the state, the
//! vehicle list, and every enabled API for every vehicle under one deadline; then one
//! exposition with self-metrics, every output, and the exit code. Failures of parts change the
//! exit code; they never hide the rest.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::api::client::{Client, ClientOptions, TokenSource};
use crate::api::{connected, energy, extended, location, ApiError};
use crate::auth::refresh::{self, OAuthClient};
use crate::auth::token::Token;
use crate::config::Settings;
use crate::error::{ExitCode, Fatal};
use crate::metrics::catalog::{self as c, Origin};
use crate::metrics::{self, Exposition};
use crate::secret::Secret;
use crate::sinks;
use crate::state::{self, State};

/// What one run produced.
pub struct RunOutcome {
    /// The exposition as delivered (text format 0.0.4).
    pub text: Vec<u8>,
    pub exit: ExitCode,
    /// One line per problem, for the log and the final message.
    pub problems: Vec<String>,
}

/// Everything one API answered for one vehicle.
enum ApiData {
    Connected(Box<connected::Snapshot>),
    Energy(energy::Snapshot),
    Location(Result<location::Feature, ApiError>),
    Extended(extended::Snapshot),
}

struct Fetched {
    vin: String,
    api: Origin,
    seconds: f64,
    data: ApiData,
}

impl Fetched {
    fn errors(&self) -> Vec<(&'static str, &ApiError)> {
        match &self.data {
            ApiData::Connected(s) => s.errors(),
            ApiData::Energy(s) => s.errors(),
            ApiData::Location(r) => r
                .as_ref()
                .err()
                .map(|e| vec![("location", e)])
                .unwrap_or_default(),
            ApiData::Extended(s) => s.errors(),
        }
    }

    /// How many endpoints were asked, to tell "nothing came back" from "some did".
    fn endpoint_count(&self) -> usize {
        match &self.data {
            ApiData::Connected(_) => connected::ENDPOINTS.len(),
            ApiData::Energy(s) => 1 + usize::from(s.state.is_some()),
            ApiData::Location(_) => 1,
            ApiData::Extended(s) => 1 + s.resources.len(),
        }
    }
}

/// The shared HTTP client of a run: connection reuse across all APIs and vehicles.
pub fn http_client(request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("volvo-collect/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(request_timeout.min(Duration::from_secs(10)))
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        // Never resend a token request's body (refresh token, code) or a bearer token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds with static settings")
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
    }
    let http = http_client(settings.request_timeout);
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
    let exits: Vec<ExitCode> = runs.iter().map(|r| r.exit).collect();
    let exit = if exits.contains(&ExitCode::LoginNeeded) {
        ExitCode::LoginNeeded
    } else if exits.iter().all(|e| *e == ExitCode::Ok) {
        ExitCode::Ok
    } else if exits.iter().all(|e| *e == ExitCode::Temporary) {
        ExitCode::Temporary
    } else {
        ExitCode::Partial
    };

    let end_s = crate::clock::now_f64();
    exp.gauge(&c::RUN_END, &[], end_s);
    exp.gauge(&c::RUN_DURATION, &[], started.elapsed().as_secs_f64());
    // The collection's verdict: a failed output cannot report itself anyway.
    exp.gauge(
        &c::RUN_SUCCESS,
        &[],
        if exit == ExitCode::Ok { 1.0 } else { 0.0 },
    );
    exp.finish_skips();
    let text = exp.encode();
    let mut exit = exit;
    for (output, err) in sinks::deliver(settings, &exp, &text).await {
        problems.push(format!("output {output} failed: {err}"));
        if exit != ExitCode::LoginNeeded {
            exit = ExitCode::Output;
        }
    }
    Ok(RunOutcome {
        text,
        exit,
        problems,
    })
}

fn lock(exp: &Mutex<Exposition>) -> std::sync::MutexGuard<'_, Exposition> {
    exp.lock().expect("exposition lock")
}

/// What one account's collection came to.
struct AccountRun {
    exit: ExitCode,
    problems: Vec<String>,
}

/// One account: token, state, vehicles, every API; maps into the shared exposition and saves
/// the account's state.
async fn collect_account(
    settings: Settings,
    http: &reqwest::Client,
    deadline: Instant,
    exp: &Mutex<Exposition>,
) -> AccountRun {
    let settings = &settings;
    let account = settings.account.name.as_str();
    let client_secret = settings.client_secret().expect("checked before").clone();
    let api_key = settings.api_key().expect("checked before").clone();
    let now = refresh::now();
    let mut state = State::load(&settings.account.state_file);
    state.expire(now);
    let mut problems = Vec::new();

    // 1. The token, before any API call.
    let oauth = OAuthClient {
        client_id: &settings.account.client_id,
        client_secret: &client_secret,
        auth_url: &settings.auth_url,
        token_url: &settings.token_url,
    };
    let token = match refresh::ensure_fresh(http, &oauth, &settings.account.token_file).await {
        Ok((t, _)) => t,
        Err(fatal) => {
            // No data, but the self-metrics still go out so an alert can say why.
            let needed = if fatal.code == ExitCode::LoginNeeded {
                1.0
            } else {
                0.0
            };
            lock(exp).gauge(&c::LOGIN_NEEDED, &[account], needed);
            problems.push(fatal.message.clone());
            let exit = finish(
                settings,
                &mut lock(exp),
                &mut state,
                None,
                fatal.code,
                &mut problems,
                now,
            );
            return AccountRun { exit, problems };
        }
    };
    {
        let mut exp = lock(exp);
        exp.gauge(&c::LOGIN_NEEDED, &[account], 0.0);
        token_metrics(&mut exp, account, &token);
    }

    // The daily quota is used up: spend nothing until Volvo replenishes it.
    if let Some(until) = state.quota_until {
        problems.push(format!(
            "the API key's daily request quota is used up until {}; no requests made",
            chrono::DateTime::from_timestamp(until, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        ));
        let exit = finish(
            settings,
            &mut lock(exp),
            &mut state,
            None,
            ExitCode::Temporary,
            &mut problems,
            now,
        );
        return AccountRun { exit, problems };
    }

    let (renew_tx, mut renew_rx) = tokio::sync::mpsc::channel::<RenewRequest>(8);
    let client = Arc::new(Client::new(
        http.clone(),
        ClientOptions {
            base: settings.api_url.clone(),
            api_key,
            access_token: token.access_token.clone(),
            concurrency: settings.concurrency,
            deadline,
            request_timeout: settings.request_timeout,
            requests_per_minute: settings.requests_per_minute,
            token_source: Some(Box::new(RenewRequests(renew_tx))),
            schedule: settings.schedule.clone(),
            now,
            cache: std::mem::take(&mut state.cache),
        },
    ));

    // 2. Which vehicles. Configured VINs do not wait for the list, which only checks them:
    // one round trip less on the chain of requests that wait for one another.
    let (vins, listing) = if settings.account.vins.is_empty() {
        match connected::vehicles(&client).await {
            Ok(v) => (v, None),
            Err(e) => {
                problems.push(format!("cannot list the vehicles on the account: {e}"));
                let exit = if e.is_temporary() {
                    ExitCode::Temporary
                } else {
                    ExitCode::Partial
                };
                let exit = finish(
                    settings,
                    &mut lock(exp),
                    &mut state,
                    Some(&client),
                    exit,
                    &mut problems,
                    now,
                );
                return AccountRun { exit, problems };
            }
        }
    } else {
        let c = client.clone();
        (
            settings.account.vins.clone(),
            Some(tokio::spawn(async move { connected::vehicles(&c).await })),
        )
    };

    // 3. Every vehicle × every enabled API, concurrently.
    let extended_until = state.unavailable_until(Origin::ExtendedVehicle.label(), now);
    let mut tasks = tokio::task::JoinSet::new();
    for vin in &vins {
        let apis = [
            (Origin::ConnectedVehicle, settings.sources.connected_vehicle),
            (Origin::Energy, settings.sources.energy),
            (Origin::Location, settings.sources.location),
            (
                Origin::ExtendedVehicle,
                settings.sources.extended_vehicle && extended_until.is_none(),
            ),
        ];
        for (api, on) in apis {
            if !on {
                continue;
            }
            let client = client.clone();
            let vin = vin.clone();
            let unsupported: BTreeSet<String> = connected::ENDPOINTS
                .iter()
                .map(|(n, _)| *n)
                .chain(["location"])
                .filter(|n| state.is_not_supported(&vin, api.label(), n, now))
                .map(String::from)
                .collect();
            tasks.spawn(async move {
                let t0 = Instant::now();
                let data = match api {
                    Origin::ConnectedVehicle => {
                        let wanted = |name: &str| !unsupported.contains(name);
                        ApiData::Connected(Box::new(connected::fetch(&client, &vin, &wanted).await))
                    }
                    Origin::Energy => ApiData::Energy(energy::fetch(&client, &vin).await),
                    Origin::Location => ApiData::Location(if unsupported.contains("location") {
                        Err(ApiError::NotSupported(connected::REMEMBERED.into()))
                    } else {
                        location::fetch(&client, &vin).await
                    }),
                    Origin::ExtendedVehicle => {
                        ApiData::Extended(extended::fetch(&client, &vin).await)
                    }
                    Origin::Weather | Origin::Collector => unreachable!("not a Volvo API"),
                };
                Fetched {
                    vin,
                    api,
                    seconds: t0.elapsed().as_secs_f64(),
                    data,
                }
            });
        }
    }
    // Collect the results; meanwhile serve token renewals asked for by requests that got 401
    // (the refresh runs here, on the account's own task, one at a time).
    let mut fetched = Vec::new();
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                Some(r) => fetched.push(r.expect("collection tasks do not panic")),
                None => break,
            },
            Some((failed, reply)) = renew_rx.recv() => {
                let fresh = refresh::renew(http, &oauth, &settings.account.token_file, &failed).await;
                let _ = reply.send(fresh);
            }
        }
    }
    let mut vins = vins;
    if let Some(listing) = listing {
        match listing.await.expect("the vehicle list task does not panic") {
            Ok(on_account) => {
                for v in vins.iter().filter(|v| !on_account.contains(v)) {
                    problems.push(format!(
                        "{v}: this VIN (volvo.vins) is not on the account; remove it or log in with the account that owns it"
                    ));
                }
                vins.retain(|v| on_account.contains(v));
                fetched.retain(|f| on_account.contains(&f.vin));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the vehicles; using the configured VINs as they are")
            }
        }
    }
    fetched.sort_by(|a, b| (&a.vin, a.api.label()).cmp(&(&b.vin, b.api.label())));

    // Weather at each car's last position (optional; its failure never fails the car's data).
    let mut weather = Vec::new();
    if let Some(w) = &settings.weather {
        let positions: Vec<(String, (f64, f64))> = fetched
            .iter()
            .filter_map(|f| match &f.data {
                ApiData::Location(Ok(feature)) => {
                    metrics::location::position(feature).map(|p| (f.vin.clone(), p))
                }
                _ => None,
            })
            .collect();
        let answers = futures_util::future::join_all(positions.iter().map(|(vin, pos)| {
            let cached = client.cache_entry(&format!("{vin} weather"));
            crate::weather::fetch(http, w, *pos, cached, now)
        }))
        .await;
        for ((vin, _), answer) in positions.into_iter().zip(answers) {
            match answer {
                Ok((current, entry)) => {
                    client.put_cache(format!("{vin} weather"), entry);
                    weather.push((vin, Ok(current)));
                }
                Err((reason, message)) => {
                    tracing::warn!(vin, "weather: {message}");
                    weather.push((vin, Err(reason)));
                }
            }
        }
    }

    // 4. Map into the exposition.
    let mut exp = lock(exp);
    let exp = &mut *exp;
    let mut any_data = false;
    let mut all_temporary = true;
    let mut failed = false;
    let mut extended_gone = false;
    for f in &fetched {
        let vin = f.vin.as_str();
        match &f.data {
            ApiData::Connected(s) => metrics::connected::map(exp, vin, account, s),
            ApiData::Energy(s) => metrics::energy::map(exp, vin, s),
            ApiData::Location(Ok(feature)) => {
                metrics::location::map(exp, vin, feature, &settings.location)
            }
            ApiData::Location(Err(_)) => {}
            ApiData::Extended(s) => {
                extended_gone |= s.api_gone();
                metrics::extended::map(exp, vin, s)
            }
        }
        let api = f.api.label();
        let mut ok = true;
        let errors = f.errors();
        let gone_api = matches!(&f.data, ApiData::Extended(s) if s.api_gone());
        for (endpoint, e) in &errors {
            match e {
                _ if gone_api => {}
                ApiError::NotSupported(_) => {
                    exp.gauge(&c::NOT_SUPPORTED, &[vin, api, endpoint], 1.0);
                    // Remembered per endpoint; Energy's and Extended Vehicle's own answers
                    // already say what a car lacks.
                    if !matches!(*endpoint, "state" | "capabilities" | "resource") {
                        state
                            .not_supported
                            .entry(state::endpoint_key(vin, api, endpoint))
                            .or_insert(now + state::BACKOFF_S);
                    }
                }
                _ => {
                    ok = false;
                    all_temporary &= e.is_temporary();
                    exp.gauge(&c::ENDPOINT_ERROR, &[vin, api, endpoint, e.reason()], 1.0);
                    problems.push(format!("{vin}: {api} {endpoint}: {e}"));
                }
            }
        }
        any_data |= errors.len() < f.endpoint_count();
        failed |= !ok;
        exp.gauge(&c::UP, &[vin, api], if ok { 1.0 } else { 0.0 });
        exp.gauge(&c::API_DURATION, &[vin, api], f.seconds);
    }
    for (vin, w) in &weather {
        match w {
            Ok(current) => crate::weather::map(exp, vin, current),
            Err(reason) => exp.gauge(
                &c::ENDPOINT_ERROR,
                &[vin, Origin::Weather.label(), "weather", reason],
                1.0,
            ),
        }
    }
    if extended_gone {
        let until = now + state::BACKOFF_S;
        state
            .api_unavailable
            .insert(Origin::ExtendedVehicle.label().into(), until);
        tracing::warn!(
            "Volvo's Extended Vehicle API answers that it is shut down; it is skipped until {} and the other APIs go on",
            chrono::DateTime::from_timestamp(until, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
        );
    }
    exp.gauge(&c::VEHICLES, &[account], vins.len() as f64);

    let exit = if !failed && problems.is_empty() {
        ExitCode::Ok
    } else if !any_data && all_temporary {
        ExitCode::Temporary
    } else {
        ExitCode::Partial
    };
    let exit = finish(
        settings,
        exp,
        &mut state,
        Some(&client),
        exit,
        &mut problems,
        now,
    );
    AccountRun { exit, problems }
}

type RenewRequest = (Secret, tokio::sync::oneshot::Sender<Result<Secret, Fatal>>);

/// The API client's way to ask the run for a new access token after a 401.
struct RenewRequests(tokio::sync::mpsc::Sender<RenewRequest>);

impl TokenSource for RenewRequests {
    fn renew<'a>(
        &'a self,
        failed: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Result<Secret, Fatal>> + Send + 'a>> {
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let gone = || {
                Fatal::new(
                    ExitCode::Temporary,
                    "the run ended before the token was renewed",
                )
            };
            self.0
                .send((failed.clone(), tx))
                .await
                .map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        })
    }
}

fn token_metrics(exp: &mut Exposition, account: &str, token: &Token) {
    exp.gauge(&c::TOKEN_EXPIRY, &[account], token.expires_at as f64);
    if let Some(t) = token.refreshed_at {
        exp.gauge(&c::TOKEN_ROTATED, &[account], t as f64);
    }
    if let Some(t) = token.logged_in_at {
        exp.gauge(&c::TOKEN_LOGIN, &[account], t as f64);
    }
}

/// The account's part of the self-metrics, and its state saved. Returns the account's exit
/// code (the quota and a failed renewal change it).
fn finish(
    settings: &Settings,
    exp: &mut Exposition,
    state: &mut State,
    client: Option<&Client>,
    exit: ExitCode,
    problems: &mut Vec<String>,
    now: i64,
) -> ExitCode {
    let account = settings.account.name.as_str();
    let mut exit = exit;
    if let Some(client) = client {
        state.cache = client.take_cache();
        if client.replayed() > 0 {
            tracing::debug!(
                account,
                replayed = client.replayed(),
                "answers replayed from earlier runs (schedule)"
            );
        }
        if let Some(reset) = client.quota_exhausted() {
            // Volvo does not always say when; an hour is a cautious guess that costs one request.
            state.quota_until = Some(now + reset.map(|d| d.as_secs() as i64).unwrap_or(3600));
            exit = ExitCode::Temporary;
        }
        if let Some(fatal) = client.renewal_failure() {
            problems.push(fatal.message.clone());
            if fatal.code == ExitCode::LoginNeeded {
                exp.gauge(&c::LOGIN_NEEDED, &[account], 1.0);
                exit = ExitCode::LoginNeeded;
            }
        }
    }
    if exit == ExitCode::Ok {
        state.last_success = Some(crate::clock::now_f64());
    }
    // Runs may overlap (a timer run and a manual one): merge into what is on disk, under a
    // lock, so that no run's counts are lost.
    let (requests, retries) = client
        .map(|c| (c.request_counts(), c.retry_counts()))
        .unwrap_or_default();
    *state = state::save_merged(
        &settings.account.state_file,
        std::mem::take(state),
        &requests,
        &retries,
        now,
    );

    match state.quota_until {
        Some(until) => {
            exp.gauge(&c::QUOTA_EXHAUSTED, &[account], 1.0);
            exp.gauge(&c::QUOTA_RESET, &[account], until as f64);
        }
        None => exp.gauge(&c::QUOTA_EXHAUSTED, &[account], 0.0),
    }
    for (key, n) in &state.requests {
        let mut parts = key.splitn(3, ' ');
        if let (Some(api), Some(endpoint), Some(status)) =
            (parts.next(), parts.next(), parts.next())
        {
            exp.counter(&c::REQUESTS, &[account, api, endpoint, status], *n as f64);
        }
    }
    for (api, n) in &state.retries {
        exp.counter(&c::RETRIES, &[account, api], *n as f64);
    }
    for key in state.not_supported.keys() {
        let mut parts = key.splitn(3, ' ');
        if let (Some(vin), Some(api), Some(endpoint)) = (parts.next(), parts.next(), parts.next()) {
            exp.gauge(&c::NOT_SUPPORTED, &[vin, api, endpoint], 1.0);
        }
    }
    if let Some(until) = state.unavailable_until(Origin::ExtendedVehicle.label(), now) {
        if settings.sources.extended_vehicle {
            exp.gauge(
                &c::API_UNAVAILABLE,
                &[account, Origin::ExtendedVehicle.label()],
                until as f64,
            );
        }
    }
    if let Some(t) = state.last_success {
        exp.gauge(&c::LAST_SUCCESS, &[account], t);
    }
    exit
}
