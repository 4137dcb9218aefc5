//! The built-in simulated Volvo cloud, for tests, demos and dashboard work: Volvo ID's token
//! and authorize endpoints (rotating refresh tokens, PKCE S256), the four APIs with their real
//! envelopes for sample cars written from `cars/*.json`, and injectable latency and faults.
//! It demands `vcc-api-key` and a valid bearer token as the real API does. Its parts: [`cars`]
//! (the sample cars' answers), then [`scenario`] (the scripted day over them).

mod cars;
mod scenario;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::time::Instant;

use crate::clock::Clock;

pub use cars::{sample_vins, SampleCar};
pub use scenario::{Scenario, DAY_START};

/// The simulator's own application credentials.
pub const CLIENT_ID: &str = "demo-client";
pub const CLIENT_SECRET: &str = "demo-secret";
pub const API_KEY: &str = "demo-api-key";

/// The `[volvo]` table that points a configuration at the simulator at `base`: its
/// credentials and all three of Volvo's URLs. With `api_url` alone, a refresh would send the
/// simulator's refresh token and secret to the real Volvo ID.
pub fn volvo_table(base: &str, token_file: &str) -> String {
    format!(
        "[volvo]\nclient_id = {CLIENT_ID:?}\nclient_secret = {CLIENT_SECRET:?}\napi_key = {API_KEY:?}\ntoken_file = {token_file:?}\napi_url = \"{base}\"\nauth_url = \"{base}/as/authorization.oauth2\"\ntoken_url = \"{base}/as/token.oauth2\"\n"
    )
}
/// The fake OpenWeatherMap endpoint's API key.
pub const WEATHER_API_KEY: &str = "demo-weather-key";
/// Access tokens live as long as Volvo's.
pub const ACCESS_TOKEN_LIFETIME_S: i64 = 299;

/// Whether the Extended Vehicle API still answers or is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExtendedMode {
    Served,
    Gone,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Added before every answer.
    pub latency: Duration,
    pub extended: ExtendedMode,
    /// How many cars: the four samples, repeated with new VINs beyond four.
    pub cars: usize,
    /// Volvo's limit of API requests per sliding minute (per user and application), answered
    /// with 429 beyond it; 0 turns it off.
    pub rate_limit: usize,
    /// Volvo's daily call volume quota per API key (UTC days of the simulator's clock),
    /// answered with 403 beyond it; 0 turns it off.
    pub quota: u64,
    /// A scripted scenario: its own cars, whose answers change under the simulator's clock.
    pub scenario: Option<Scenario>,
    /// The simulator's clock at its start; `POST /_sim/clock` sets it later.
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            latency: Duration::ZERO,
            extended: ExtendedMode::Served,
            cars: 4,
            rate_limit: 0,
            quota: 0,
            scenario: None,
            clock: Clock::system(),
        }
    }
}

/// One injected answer for requests whose path contains `path`: any answer recorded from
/// Volvo (status, headers, content type, body) can be served on any endpoint.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    pub path: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// The body. A JSON string is sent as its text, so that garbage and plain text can be
    /// injected; any other JSON value is sent as JSON.
    #[serde(default, deserialize_with = "text_or_json")]
    pub body: String,
    /// Extra headers by name, e.g. `{"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The `Content-Type`; by default `application/json` on the APIs, `text/plain` on Volvo
    /// ID's endpoints.
    #[serde(default)]
    pub content_type: Option<String>,
    /// This many spaces after the body, streamed: a huge answer without a huge fault.
    #[serde(default)]
    pub pad_bytes: u64,
    #[serde(default)]
    pub delay_ms: u64,
    /// A `Retry-After` header (the same as `headers: {"retry-after": ..}`).
    #[serde(default)]
    pub retry_after: Option<String>,
    /// How many requests it answers; 0 means every request from now on.
    #[serde(default)]
    pub times: u32,
    /// Token endpoint only: answer normally (rotating the refresh token at once), but send the
    /// answer after `delay_ms`, as a slow Volvo ID whose reply is still on its way. A JSON
    /// object `body` is merged into the real answer (a JSON merge patch: `null` removes a
    /// member); an answer without `refresh_token` leaves the presented one valid, as Volvo ID
    /// does when it sends none. `pad_bytes` pads the real answer.
    #[serde(default)]
    pub pass_through: bool,
}

impl Fault {
    /// Why the fault cannot be served as written, if it cannot.
    fn problem(&self) -> Option<String> {
        let types = self
            .content_type
            .iter()
            .map(|t| ("content-type", t.as_str()));
        for (name, value) in self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(types)
        {
            if header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || header::HeaderValue::from_str(value).is_err()
            {
                return Some(format!("fault on {}: bad header {name:?}", self.path));
            }
        }
        None
    }

    /// The fault as an answer, with `content_type` unless it names its own.
    fn response(&self, content_type: &str) -> Response {
        let body = if self.pad_bytes == 0 {
            axum::body::Body::from(self.body.clone())
        } else {
            padded(self.body.clone(), self.pad_bytes)
        };
        let mut resp = Response::new(body);
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        let content_type = self.content_type.as_deref().unwrap_or(content_type);
        if let Ok(v) = header::HeaderValue::from_str(content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        if let Some(v) = self.retry_after.as_ref().and_then(|ra| ra.parse().ok()) {
            h.insert(header::RETRY_AFTER, v);
        }
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                header::HeaderValue::from_str(value),
            ) {
                h.insert(n, v);
            }
        }
        resp
    }
}

/// A fault's body: a JSON string as its text, any other value as JSON.
fn text_or_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => text,
        other => other.to_string(),
    })
}

/// `body` followed by `pad` spaces, streamed in chunks, so that neither side of a test has to
/// hold a huge answer unless it reads one.
fn padded(body: String, pad: u64) -> axum::body::Body {
    static SPACES: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let chunk = SPACES.len() as u64;
    let rest = (pad % chunk) as usize;
    let tail = (0..pad / chunk)
        .map(|_| Bytes::from_static(&SPACES))
        .chain((rest > 0).then(|| Bytes::from_static(&SPACES[..rest])));
    let chunks = std::iter::once(Bytes::from(body))
        .chain(tail)
        .map(Ok::<_, std::convert::Infallible>);
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

fn default_status() -> u16 {
    500
}

/// One API request as the simulator saw it (times in ms since the simulator started).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub start_ms: f64,
    pub end_ms: f64,
    /// The refresh token presented, for token requests (tests check none is reused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Default)]
struct Tokens {
    access: HashMap<String, i64>,
    /// Valid refresh tokens and the scope their grant has.
    refresh_valid: HashMap<String, String>,
    refresh_used: HashSet<String>,
    /// code → (PKCE challenge, redirect URI, scope)
    codes: HashMap<String, (String, String, String)>,
}

struct Sim {
    opts: Options,
    started: Instant,
    vins: Vec<String>,
    responses: HashMap<String, (u16, Value)>,
    tokens: Mutex<Tokens>,
    faults: Mutex<VecDeque<Fault>>,
    seen: Mutex<Vec<Seen>>,
    refreshes: Mutex<u64>,
    invalid_grants: Mutex<u64>,
    /// When recent API requests came (clock milliseconds), for the rate limit.
    recent: Mutex<VecDeque<i64>>,
    /// The daily quota's UTC day (days since the epoch) and requests counted in it.
    quota_day: Mutex<(i64, u64)>,
    day: Option<scenario::Day>,
    /// The simulator's own clock: token expiry, the rate window, the quota's day and the
    /// scripted day follow it.
    clock: Mutex<Clock>,
}

impl Sim {
    fn clock(&self) -> Clock {
        *self.clock.lock().expect("clock lock")
    }

    fn now(&self) -> i64 {
        self.clock().now()
    }
}

/// A running simulator.
pub struct Running {
    pub addr: SocketAddr,
    sim: Arc<Sim>,
}

impl Running {
    /// The VINs of the account's cars.
    pub fn vins(&self) -> &[String] {
        &self.sim.vins
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token pair the simulator accepts, as a token file's JSON. With `expired`, the access
    /// token is already past its expiry, so the next run must refresh.
    pub fn issue_token(&self, expired: bool) -> Value {
        issue(&self.sim, &full_scope(), expired)
    }
}

fn random(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

/// Every read scope, as a user who consented to all of them has.
fn full_scope() -> String {
    crate::endpoints::Sources::ALL.default_scopes().join(" ")
}

fn issue(sim: &Sim, scope: &str, expired: bool) -> Value {
    let mut t = sim.tokens.lock().expect("tokens lock");
    let access = format!("sim-at-{}", random(32));
    let refresh = format!("sim-rt-{}", random(32));
    let now = sim.now();
    let expires_at = if expired {
        now - 10
    } else {
        now + ACCESS_TOKEN_LIFETIME_S
    };
    t.access.insert(access.clone(), expires_at);
    t.refresh_valid.insert(refresh.clone(), scope.to_string());
    json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
        "token_type": "Bearer",
        "scope": scope,
        "logged_in_at": now,
    })
}

/// Starts the simulator on `listen` (port 0 picks a free one).
pub async fn start(listen: SocketAddr, mut opts: Options) -> std::io::Result<Running> {
    // A scripted day has its own cars: households of the electric and the petrol sample.
    let fleet = opts.scenario.map(|_| scenario::fleet(opts.cars));
    let copies: Option<Vec<(&str, String)>> = fleet
        .as_ref()
        .map(|f| f.iter().map(|c| (c.sample(), c.vin.clone())).collect());
    let (vins, responses) = cars::build(&opts, copies.as_deref());
    let day = opts
        .scenario
        .zip(fleet.as_ref())
        .map(|(sc, fleet)| scenario::Day::new(sc, fleet, &responses));
    if day.is_some() {
        // The scripted day is set after Volvo's shutdown of Extended Vehicle.
        opts.extended = ExtendedMode::Gone;
        if !opts.clock.is_set() {
            // Without a clock given, the day plays from its start in real time.
            opts.clock = Clock::starting_at_ms(DAY_START * 1000);
        }
    }
    let clock = Mutex::new(opts.clock);
    let sim = Arc::new(Sim {
        opts,
        started: Instant::now(),
        vins,
        responses,
        tokens: Mutex::new(Tokens::default()),
        faults: Mutex::new(VecDeque::new()),
        seen: Mutex::new(Vec::new()),
        refreshes: Mutex::new(0),
        invalid_grants: Mutex::new(0),
        recent: Mutex::new(VecDeque::new()),
        quota_day: Mutex::new((0, 0)),
        day,
        clock,
    });
    let app = Router::new()
        .route("/as/token.oauth2", post(token))
        .route("/as/authorization.oauth2", get(authorize))
        .route("/data/2.5/weather", get(weather))
        .route("/_sim/stats", get(stats))
        .route("/_sim/token", post(new_token))
        .route("/_sim/clock", get(get_clock).post(set_clock))
        .route("/_sim/quota", post(set_quota))
        .route("/_sim/scenario", get(scenario_log))
        .route(
            "/_sim/faults",
            post(add_faults)
                .delete(clear_faults)
                .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .fallback(api)
        .with_state(sim.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(Running { addr, sim })
}

fn ms(sim: &Sim, t: Instant) -> f64 {
    (t - sim.started).as_secs_f64() * 1000.0
}

fn record(
    sim: &Sim,
    method: &str,
    path: &str,
    status: u16,
    start: Instant,
    refresh_token: Option<String>,
) {
    let end = Instant::now();
    let seen = Seen {
        method: method.to_string(),
        path: path.to_string(),
        status,
        start_ms: ms(sim, start),
        end_ms: ms(sim, end),
        refresh_token,
    };
    tracing::debug!(target: "volvo_collect::simulator", "{} {} {} {:.1}..{:.1} ms", seen.method, seen.path, seen.status, seen.start_ms, seen.end_ms);
    sim.seen.lock().expect("seen lock").push(seen);
}

/// Takes the next fault whose path matches, if any.
fn take_fault(sim: &Sim, path: &str) -> Option<Fault> {
    let mut faults = sim.faults.lock().expect("faults lock");
    // `=/path` matches that path only; otherwise any path containing the text matches.
    let matches = |f: &Fault| match f.path.strip_prefix('=') {
        Some(exact) => path == exact,
        None => path.contains(&f.path),
    };
    let i = faults.iter().position(matches)?;
    let f = faults[i].clone();
    if f.times == 1 {
        faults.remove(i);
    } else if f.times > 1 {
        faults[i].times -= 1;
    }
    Some(f)
}

fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn api(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let start = Instant::now();
    let path = uri.path().to_string();
    tokio::time::sleep(sim.opts.latency).await;
    let (status, response) = answer(&sim, &method, &path, &headers).await;
    record(&sim, method.as_str(), &path, status, start, None);
    response
}

async fn answer(sim: &Sim, method: &Method, path: &str, headers: &HeaderMap) -> (u16, Response) {
    if headers.get("vcc-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        let body = json!({"status": 401, "error": {"message": "Access denied due to invalid VCC-API-KEY. Make sure to provide a valid key for an active application."}});
        return (401, json_response(401, &body));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid = sim
        .tokens
        .lock()
        .expect("tokens lock")
        .access
        .get(bearer)
        .is_some_and(|exp| *exp > sim.now());
    if !valid {
        let body = json!({"error": {"message": "Unauthorized", "description": "The access token is invalid or has expired"}});
        return (401, json_response(401, &body));
    }
    if let Some(refused) = rate_limited(sim).or_else(|| over_quota(sim)) {
        return refused;
    }
    if let Some(f) = take_fault(sim, path) {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        return (f.status, f.response("application/json"));
    }
    if method != Method::GET {
        let body = json!({"error": {"message": "Method not allowed", "description": "this simulator only reads"}});
        return (405, json_response(405, &body));
    }
    if path.starts_with("/extended-vehicle/") && sim.opts.extended == ExtendedMode::Gone {
        let body = json!({"exveErrorId": "410", "exveErrorMsg": "The Extended Vehicle API has been shut down.", "exveErrorRef": random(8), "exveNote": "Use the Connected Vehicle API."});
        return (410, json_response(410, &body));
    }
    match path {
        "/connected-vehicle/v2/vehicles" => {
            let list: Vec<Value> = sim.vins.iter().map(|v| json!({"vin": v})).collect();
            return (200, json_response(200, &json!({"data": list})));
        }
        "/extended-vehicle/v1/vehicles" => {
            let list: Vec<Value> = sim
                .vins
                .iter()
                .map(|v| json!({"id": v, "timestamp": 1_767_225_600}))
                .collect();
            return (200, json_response(200, &json!({"vehicles": list})));
        }
        _ => {}
    }
    let scripted = sim
        .day
        .as_ref()
        .and_then(|d| d.body(path, sim.clock().now_f64()));
    if let Some(body) = scripted {
        return (200, json_response(200, &body));
    }
    match sim.responses.get(path) {
        Some((status, body)) => (*status, json_response(*status, body)),
        None => {
            let body = if path.starts_with("/energy/") {
                json!({"error": {"code": "NOT_FOUND", "message": "Resource not found", "details": []}})
            } else if path.starts_with("/extended-vehicle/") {
                json!({"exveErrorId": "404", "exveErrorMsg": "Resource not found", "exveErrorRef": random(8), "exveNote": ""})
            } else {
                json!({"error": {"message": "Not found", "description": "No such resource"}})
            };
            (404, json_response(404, &body))
        }
    }
}

/// Volvo's sliding minute per user and application, on the simulator's clock: 429 beyond
/// `rate_limit` requests in the last 60 s. A refused request does not take a place in the window.
fn rate_limited(sim: &Sim) -> Option<(u16, Response)> {
    if sim.opts.rate_limit == 0 {
        return None;
    }
    let mut recent = sim.recent.lock().expect("recent lock");
    let now = sim.clock().now_ms();
    while recent.front().is_some_and(|t| now - *t >= 60_000) {
        recent.pop_front();
    }
    if recent.len() >= sim.opts.rate_limit {
        let body = json!({"error": {"message": "Too many requests", "description": "Rate limit exceeded"}});
        return Some((429, json_response(429, &body)));
    }
    recent.push_back(now);
    None
}

const DAY_S: i64 = 86_400;

/// Volvo's daily call volume per API key (the simulator has one key), per UTC day of the
/// simulator's clock: the request after `quota` answers 403 with the time left until midnight.
fn over_quota(sim: &Sim) -> Option<(u16, Response)> {
    if sim.opts.quota == 0 {
        return None;
    }
    let now = sim.now();
    let today = now.div_euclid(DAY_S);
    let mut q = sim.quota_day.lock().expect("quota lock");
    if q.0 != today {
        *q = (today, 0);
    }
    if q.1 >= sim.opts.quota {
        let left = (today + 1) * DAY_S - now;
        let message = format!(
            "Out of call volume quota. Quota will be replenished in {:02}:{:02}:{:02}.",
            left / 3600,
            left % 3600 / 60,
            left % 60
        );
        return Some((
            403,
            json_response(403, &json!({"statusCode": 403, "message": message})),
        ));
    }
    q.1 += 1;
    None
}

/// HTTP Basic client credentials, URL-decoded as RFC 6749 §2.3.1 asks.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

fn oauth_error(error: &str, description: &str) -> Value {
    json!({"error": error, "error_description": description})
}

async fn token(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let start = Instant::now();
    tokio::time::sleep(sim.opts.latency).await;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let presented = form.get("refresh_token").cloned();
    let (status, resp, delay) = token_answer(&sim, &headers, &form);
    // Recorded before the delay: a client that goes away meanwhile has still spent its token.
    record(&sim, "POST", "/as/token.oauth2", status, start, presented);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// The answer and how long to hold it back (a fault's `delay_ms`).
fn token_answer(
    sim: &Sim,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (u16, Response, Duration) {
    let fault = take_fault(sim, "/as/token.oauth2");
    let delay = Duration::from_millis(fault.as_ref().map_or(0, |f| f.delay_ms));
    match fault {
        Some(f) if !f.pass_through => (f.status, f.response("text/plain; charset=utf-8"), delay),
        Some(f) => {
            let (status, mut answer) = token_grant(sim, headers, form);
            if let Ok(patch @ Value::Object(_)) = serde_json::from_str::<Value>(&f.body) {
                let issued = answer["refresh_token"].as_str().map(str::to_string);
                merge_patch(&mut answer, &patch);
                // An empty refresh token is none: the presented one stays valid.
                let sent = answer["refresh_token"].as_str() != Some("")
                    && answer.get("refresh_token").is_some();
                if status == 200 && !sent {
                    keep_presented(sim, form, issued, &answer);
                }
            }
            let real = Fault {
                body: answer.to_string(),
                status,
                ..f
            };
            (status, real.response("application/json"), delay)
        }
        None => {
            let (status, answer) = token_grant(sim, headers, form);
            (status, json_response(status, &answer), delay)
        }
    }
}

/// RFC 7396: members of `patch` replace those of `target`, `null` removes one, objects merge.
fn merge_patch(target: &mut Value, patch: &Value) {
    let (Value::Object(t), Value::Object(p)) = (target, patch) else {
        return;
    };
    for (k, v) in p {
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) if t.get(k).is_some_and(Value::is_object) => {
                merge_patch(t.get_mut(k).expect("checked"), v)
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A refresh answered without a new refresh token leaves the presented one valid (and the
/// one the simulator had issued never reaches the client, so it is withdrawn).
fn keep_presented(
    sim: &Sim,
    form: &HashMap<String, String>,
    issued: Option<String>,
    answer: &Value,
) {
    let Some(presented) = form.get("refresh_token") else {
        return;
    };
    let mut t = sim.tokens.lock().expect("tokens lock");
    let scope = issued
        .and_then(|i| t.refresh_valid.remove(&i))
        .or_else(|| answer["scope"].as_str().map(str::to_string))
        .unwrap_or_else(full_scope);
    t.refresh_used.remove(presented);
    t.refresh_valid.insert(presented.clone(), scope);
}

fn token_grant(sim: &Sim, headers: &HeaderMap, form: &HashMap<String, String>) -> (u16, Value) {
    match basic_credentials(headers) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => {
            return (
                401,
                oauth_error("invalid_client", "Client authentication failed"),
            )
        }
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            // Rotation: the presented token dies; the grant's scope carries over.
            let granted = {
                let mut t = sim.tokens.lock().expect("tokens lock");
                let granted = t.refresh_valid.remove(&rt);
                if granted.is_some() {
                    t.refresh_used.insert(rt.clone());
                }
                granted
            };
            let Some(scope) = granted else {
                *sim.invalid_grants.lock().expect("lock") += 1;
                return (
                    400,
                    oauth_error(
                        "invalid_grant",
                        "The refresh token is invalid, expired or already used",
                    ),
                );
            };
            *sim.refreshes.lock().expect("lock") += 1;
            (200, grant(sim, &scope))
        }
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let entry = sim.tokens.lock().expect("tokens lock").codes.remove(&code);
            let Some((challenge, redirect, scope)) = entry else {
                return (
                    400,
                    oauth_error("invalid_grant", "Unknown or used authorization code"),
                );
            };
            if form.get("redirect_uri") != Some(&redirect) {
                return (
                    400,
                    oauth_error(
                        "invalid_grant",
                        "redirect_uri does not match the authorization request",
                    ),
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if computed != challenge {
                return (
                    400,
                    oauth_error("invalid_grant", "PKCE verification failed"),
                );
            }
            (200, grant(sim, &scope))
        }
        _ => (
            400,
            oauth_error(
                "unsupported_grant_type",
                "grant_type must be refresh_token or authorization_code",
            ),
        ),
    }
}

fn grant(sim: &Sim, scope: &str) -> Value {
    let t = issue(sim, scope, false);
    json!({
        "access_token": t["access_token"],
        "refresh_token": t["refresh_token"],
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_S,
        "scope": scope,
    })
}

/// Auto-approves, as if the user logged in and consented. A fault on this path with a 3xx
/// status sends the user back with `error=<body>` instead (default `access_denied`: the user
/// declined); any other fault status is answered as it is.
async fn authorize(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let Ok(mut target) = url::Url::parse(&redirect) else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri is missing or not a URL",
        )
            .into_response();
    };
    let fault = take_fault(&sim, "/as/authorization.oauth2");
    if let Some(f) = fault.as_ref().filter(|f| !(300..400).contains(&f.status)) {
        return f.response("text/plain; charset=utf-8");
    }
    {
        let mut pairs = target.query_pairs_mut();
        let state = q.get("state").cloned().unwrap_or_default();
        if let Some(f) = &fault {
            let error = if f.body.is_empty() {
                "access_denied"
            } else {
                f.body.as_str()
            };
            pairs.append_pair("error", error);
            pairs.append_pair("error_description", "The resource owner denied the request");
            pairs.append_pair("state", &state);
            drop(pairs);
            return Redirect::to(target.as_str()).into_response();
        }
        let valid = q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && q.get("response_type").map(String::as_str) == Some("code")
            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
            && q.get("code_challenge").is_some_and(|c| c.len() >= 43);
        if valid {
            let code = random(24);
            sim.tokens.lock().expect("tokens lock").codes.insert(
                code.clone(),
                (
                    q["code_challenge"].clone(),
                    redirect.clone(),
                    q.get("scope").cloned().unwrap_or_default(),
                ),
            );
            pairs.append_pair("code", &code);
        } else {
            pairs.append_pair("error", "invalid_request");
        }
        pairs.append_pair("state", &state);
    }
    Redirect::to(target.as_str()).into_response()
}

/// A stand-in for OpenWeatherMap's current weather: deterministic values from the position,
/// so tests can check them.
async fn weather(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let start = Instant::now();
    let path = "/data/2.5/weather";
    if let Some(f) = take_fault(&sim, path) {
        record(&sim, "GET", path, f.status, start, None);
        return f.response("application/json");
    }
    let (status, body) = if q.get("appid").map(String::as_str) != Some(WEATHER_API_KEY) {
        (
            401,
            json!({"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401 for more info."}),
        )
    } else {
        let coord = |k: &str| q.get(k).and_then(|v| v.parse::<f64>().ok());
        match (coord("lat"), coord("lon")) {
            (Some(lat), Some(lon)) => {
                let temp = ((20.0 - lat / 5.0) * 10.0).round() / 10.0;
                (
                    200,
                    json!({
                        "coord": {"lat": lat, "lon": lon},
                        "weather": [{"id": 803, "main": "Clouds", "description": "broken clouds"}],
                        "main": {"temp": temp, "feels_like": temp - 2.5, "humidity": 76, "pressure": 1012},
                        "dt": 1_795_000_000,
                        "name": "Simulated"
                    }),
                )
            }
            _ => (
                400,
                json!({"cod": "400", "message": "wrong latitude or longitude"}),
            ),
        }
    };
    record(&sim, "GET", path, status, start, None);
    json_response(status, &body)
}

#[derive(Deserialize)]
struct StatsQuery {
    /// `false` leaves out the list of every request (for drivers that poll after every run).
    #[serde(default)]
    requests: Option<bool>,
}

async fn stats(State(sim): State<Arc<Sim>>, Query(q): Query<StatsQuery>) -> Json<Value> {
    let seen = sim.seen.lock().expect("seen lock").clone();
    let (day, used) = *sim.quota_day.lock().expect("quota lock");
    let today = sim.now().div_euclid(DAY_S);
    let api_requests = seen
        .iter()
        .filter(|s| !s.path.starts_with("/as/") && !s.path.starts_with("/data/"))
        .count();
    let mut stats = json!({
        "refreshes": *sim.refreshes.lock().expect("lock"),
        "invalid_grants": *sim.invalid_grants.lock().expect("lock"),
        "quota": {
            "limit": sim.opts.quota,
            "day_start": today * DAY_S,
            "used": if day == today { used } else { 0 },
        },
        "api_requests": api_requests,
    });
    if q.requests != Some(false) {
        stats["requests"] = json!(seen);
    }
    Json(stats)
}

#[derive(Deserialize)]
struct SetQuota {
    /// Requests counted against today's quota so far, as if another client of the same API
    /// key had sent them.
    used: u64,
}

/// Sets how much of today's quota is used (`--quota`): what another application on the same
/// key, or requests the collector no longer knows of, spent.
async fn set_quota(State(sim): State<Arc<Sim>>, Json(q): Json<SetQuota>) -> Json<Value> {
    let today = sim.now().div_euclid(DAY_S);
    *sim.quota_day.lock().expect("quota lock") = (today, q.used);
    Json(json!({"used": q.used}))
}

#[derive(Deserialize)]
struct SetClock {
    /// Unix seconds, fractions allowed.
    now: f64,
}

/// Sets the simulator's clock: token expiry, the rate window, the quota's day and the
/// scripted day all follow it. Collector runs get theirs from `VOLVO_COLLECT_NOW`.
async fn set_clock(State(sim): State<Arc<Sim>>, Json(c): Json<SetClock>) -> Response {
    if !(c.now.is_finite() && c.now > 0.0) {
        return json_response(400, &json!({"error": "now must be Unix seconds"}));
    }
    let clock = Clock::starting_at_ms((c.now * 1000.0).round() as i64);
    *sim.clock.lock().expect("clock lock") = clock;
    json_response(200, &json!({"now": clock.now_f64()}))
}

async fn get_clock(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({"now": sim.clock().now_f64()}))
}

/// The scripted day's upload log, for drivers that measure how late changes reach the output.
async fn scenario_log(State(sim): State<Arc<Sim>>) -> Response {
    match &sim.day {
        Some(day) => json_response(200, &day.log()),
        None => json_response(404, &json!({"error": "no scenario: start with --scenario"})),
    }
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    expired: bool,
    /// The grant's scopes (space-separated), e.g. an account without Extended Vehicle's;
    /// default: every read scope.
    scope: Option<String>,
}

async fn new_token(State(sim): State<Arc<Sim>>, Query(q): Query<NewToken>) -> Json<Value> {
    let scope = q.scope.unwrap_or_else(full_scope);
    Json(issue(&sim, &scope, q.expired))
}

async fn add_faults(State(sim): State<Arc<Sim>>, Json(faults): Json<Vec<Fault>>) -> Response {
    if let Some(problem) = faults.iter().find_map(Fault::problem) {
        return json_response(400, &json!({ "error": problem }));
    }
    sim.faults.lock().expect("faults lock").extend(faults);
    StatusCode::NO_CONTENT.into_response()
}

/// Takes back every fault not yet served: a driver that fails one run with `times` 0 ends it.
async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    sim.faults.lock().expect("faults lock").clear();
    StatusCode::NO_CONTENT.into_response()
}
