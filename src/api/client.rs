//! The one HTTP client every API shares during a run: it adds Volvo's headers, bounds how many
//! requests are in flight, stops at the run's deadline, retries what is worth retrying, caps
//! response bodies, classifies failures into [`ApiError`], and counts every request by API,
//! endpoint template and status for the self-metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use super::{ApiError, Backoff};
use crate::endpoints::{Endpoint, Origin};
use crate::secret::Secret;
use crate::state::RequestKey;

/// Responses larger than this are refused: no real answer comes close.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
const MAX_ATTEMPTS: u32 = 3;

pub use crate::state::RequestCounts;

/// Renews the access token after an API answered 401 for it: returns a token that was not
/// the failed one (refreshed now, or by another run meanwhile).
pub trait TokenSource: Send + Sync {
    fn renew<'a>(
        &'a self,
        failed: &'a Secret,
    ) -> Pin<Box<dyn Future<Output = Result<Secret, crate::error::Fatal>> + Send + 'a>>;
}

/// Volvo's header for the application's key.
const VCC_API_KEY: HeaderName = HeaderName::from_static("vcc-api-key");

/// The access token and the `Authorization` header that carries it, made once per token
/// rather than once per request. Read under a plain lock, never held across a wait: an async
/// lock would be one more thing each of a run's thousands of requests waits its turn for.
struct Bearer {
    token: Secret,
    /// `None` when the token cannot be a header; the request then fails as it always did.
    header: Option<HeaderValue>,
}

impl Bearer {
    fn new(token: Secret) -> Arc<Bearer> {
        let header = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .ok()
            .map(sensitive);
        Arc::new(Bearer { token, header })
    }
}

/// A header value marked sensitive, so that no debug output of a request can show it.
fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// `path` under `base`'s folder, where a join would place it. Only the path is parsed: the
/// base's scheme and host were checked at load, and a whole join costs twice as much.
fn under(base: &Url, path: &str) -> Url {
    let base_path = base.path();
    let folder = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("{folder}{}", path.trim_start_matches('/')));
    url
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The API key as its header; `None` when it holds characters no header can carry.
    api_key: Option<HeaderValue>,
    access_token: std::sync::RwLock<Arc<Bearer>>,
    token_source: Option<Box<dyn TokenSource>>,
    /// Serialises renewals: one 401 storm causes one refresh.
    renewing: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    /// Volvo's minute window of the account, which a retry must fit in too.
    window: Option<crate::window::Window>,
    deadline: Instant,
    request_timeout: Duration,
    counts: Mutex<RequestCounts>,
    retries: Mutex<BTreeMap<Origin, u64>>,
    /// Set by the first "out of call volume quota" answer: no more requests this run.
    quota: AtomicBool,
    quota_reset: Mutex<Option<Duration>>,
    /// Set when the access token was renewed after a 401 (the run saves it to the metrics).
    renewed: Mutex<Option<crate::error::Fatal>>,
    /// The token was renewed once this run: a refusal of the new one is not renewed again, since
    /// one more rotation could not help and each is one more chance to lose the login.
    renewed_once: AtomicBool,
    /// Some request of this run got an answer: a refused API key elsewhere is worth asking
    /// again, since Volvo has refused good keys on single requests.
    answered: AtomicBool,
    /// The API key was refused twice on one request: until an answer comes, a refusal is
    /// believed at once rather than asked again.
    key_doubted: AtomicBool,
}

/// Options for building a [`Client`].
pub struct ClientOptions {
    pub base: Url,
    pub api_key: Secret,
    pub access_token: Secret,
    pub concurrency: usize,
    pub deadline: Instant,
    pub request_timeout: Duration,
    /// The account's minute window, for retries; `None` asks without it.
    pub window: Option<crate::window::Window>,
    pub token_source: Option<Box<dyn TokenSource>>,
}

impl Client {
    pub fn new(http: reqwest::Client, o: ClientOptions) -> Self {
        Client {
            http,
            base: o.base,
            api_key: HeaderValue::from_str(o.api_key.expose())
                .ok()
                .map(sensitive),
            access_token: std::sync::RwLock::new(Bearer::new(o.access_token)),
            token_source: o.token_source,
            renewing: tokio::sync::Mutex::new(()),
            in_flight: Semaphore::new(o.concurrency.max(1)),
            window: o.window,
            deadline: o.deadline,
            request_timeout: o.request_timeout,
            counts: Mutex::new(BTreeMap::new()),
            retries: Mutex::new(BTreeMap::new()),
            quota: AtomicBool::new(false),
            quota_reset: Mutex::new(None),
            renewed: Mutex::new(None),
            renewed_once: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            key_doubted: AtomicBool::new(false),
        }
    }

    /// A client for a few single requests (`volvo-collect check`): no window, no renewal, a
    /// deadline of one request timeout.
    pub fn single(
        http: reqwest::Client,
        base: Url,
        api_key: Secret,
        access_token: Secret,
        request_timeout: Duration,
    ) -> Self {
        Client::new(
            http,
            ClientOptions {
                base,
                api_key,
                access_token,
                concurrency: 1,
                deadline: after(request_timeout),
                request_timeout,
                window: None,
                token_source: None,
            },
        )
    }

    /// GETs `path` exactly once (no retry, no renewal, no cache) and decodes the body: for
    /// `check`, which promises a bounded number of requests.
    pub async fn get_json_once<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        path: &str,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        let bearer = self.bearer();
        let body = self.attempt(endpoint, &url, &bearer).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// When the daily quota ran out during this run: `Some(time until it is replenished)`.
    pub fn quota_exhausted(&self) -> Option<Option<Duration>> {
        self.quota
            .load(Ordering::Relaxed)
            .then(|| *self.quota_reset.lock().expect("quota lock"))
    }

    /// A renewal after a 401 that failed, to report (e.g. login needed).
    pub fn renewal_failure(&self) -> Option<crate::error::Fatal> {
        self.renewed.lock().expect("renewed lock").take()
    }

    /// Asks the token source for a new access token after `failed` was refused. Returns
    /// whether a retry makes sense.
    async fn renew(&self, failed: &Secret) -> bool {
        let Some(source) = &self.token_source else {
            return false;
        };
        let _one = self.renewing.lock().await;
        if self.bearer().token != *failed {
            return true; // another request renewed it meanwhile
        }
        if self.renewed_once.load(Ordering::Relaxed) {
            return false; // the renewed token was refused too
        }
        // Bounded by the run's deadline like every other wait.
        let renewed = match tokio::time::timeout_at(self.deadline, source.renew(failed)).await {
            Ok(r) => r,
            Err(_) => Err(crate::error::Fatal::new(
                crate::error::ExitCode::Temporary,
                "the run's deadline passed while the access token was being renewed",
            )),
        };
        match renewed {
            Ok(fresh) => {
                *self.access_token.write().expect("token lock") = Bearer::new(fresh);
                self.renewed_once.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                *self.renewed.lock().expect("renewed lock") = Some(e);
                false
            }
        }
    }

    /// The access token as it is now.
    fn bearer(&self) -> Arc<Bearer> {
        self.access_token.read().expect("token lock").clone()
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Requests made so far in this run.
    pub fn request_counts(&self) -> RequestCounts {
        self.counts.lock().expect("counts lock").clone()
    }

    /// Retries made so far in this run, by API.
    pub fn retry_counts(&self) -> BTreeMap<Origin, u64> {
        self.retries.lock().expect("retries lock").clone()
    }

    fn count(&self, endpoint: Endpoint, status: &str) {
        let key = RequestKey {
            endpoint,
            status: status.to_string(),
        };
        *self
            .counts
            .lock()
            .expect("counts lock")
            .entry(key)
            .or_default() += 1;
    }

    fn url(&self, path: &str) -> Url {
        under(&self.base, path)
    }

    /// GETs `path` and returns the body of a 200 answer. What follows a failed attempt is
    /// the answer's [`Backoff`] (see [`Client::next_step`]), never past the deadline and
    /// within the account's minute window.
    pub async fn get(&self, endpoint: Endpoint, path: &str) -> Result<Vec<u8>, ApiError> {
        let url = self.url(path);
        let mut tries = Tries::default();
        let mut last_err: Option<ApiError> = None;
        loop {
            tries.attempt += 1;
            if self.quota.load(Ordering::Relaxed) {
                return Err(ApiError::Quota {
                    reset_after: *self.quota_reset.lock().expect("quota lock"),
                });
            }
            // The planned first attempt has its place in the window already; a retry needs one.
            if tries.attempt > 1 || tries.renewed || tries.asked_again {
                if let Some(w) = &self.window {
                    if w.reserve_now(1).await == 0 {
                        return Err(err_after_window(last_err.take()));
                    }
                }
            }
            let bearer = self.bearer();
            let result =
                match tokio::time::timeout_at(self.deadline, self.attempt(endpoint, &url, &bearer))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        self.count(endpoint, "timeout");
                        Err(ApiError::Timeout)
                    }
                };
            let err = match result {
                Ok(body) => {
                    self.answered.store(true, Ordering::Relaxed);
                    return Ok(body);
                }
                Err(e) => e,
            };
            let wait = match self
                .next_step(&err, &mut tries, &bearer.token, endpoint)
                .await
            {
                Next::Fail => return Err(err),
                Next::Again => {
                    tries.attempt -= 1;
                    last_err = Some(err);
                    continue;
                }
                Next::Retry(floor) => match self.retry_wait(tries.attempt, floor) {
                    Some(wait) => wait,
                    None => return Err(err),
                },
            };
            *self
                .retries
                .lock()
                .expect("retries lock")
                .entry(endpoint.api())
                .or_default() += 1;
            tracing::debug!(api = endpoint.api().label(), endpoint = endpoint.template(), error = %err, wait_ms = wait.as_millis() as u64, "retrying");
            last_err = Some(err);
            tokio::time::sleep(wait).await;
        }
    }

    /// What follows a failed attempt, by the answer's [`Backoff`]: transport errors, 5xx and
    /// 429 are retried; an access token refused is renewed once and the request asked once
    /// more; an API key refused is asked once more (one refusal proves nothing while other
    /// requests answer); after the daily quota's 403, nothing more is asked.
    async fn next_step(
        &self,
        err: &ApiError,
        tries: &mut Tries,
        token: &Secret,
        endpoint: Endpoint,
    ) -> Next {
        let (api, template) = (endpoint.api(), endpoint.template());
        match err.backoff() {
            Backoff::Quota => {
                self.quota_met(err);
                Next::Fail
            }
            Backoff::Renew if !tries.renewed => {
                tries.renewed = true;
                if self.renew(token).await {
                    Next::Again
                } else {
                    Next::Fail
                }
            }
            Backoff::Once if !tries.asked_again && self.key_worth_asking_again() => {
                tries.asked_again = true;
                tracing::info!(
                    api = api.label(),
                    endpoint = template,
                    "Volvo refused the API key on one request; asking once more"
                );
                Next::Again
            }
            Backoff::Once => {
                self.key_doubted
                    .fetch_or(tries.asked_again, Ordering::Relaxed);
                Next::Fail
            }
            Backoff::Day => {
                if let ApiError::NotAvailable(words) = err {
                    tracing::info!(
                        api = api.label(),
                        endpoint = template,
                        volvo = words.as_str(),
                        "Volvo does not serve this to the car or application in its region or market"
                    );
                }
                Next::Fail
            }
            Backoff::Retry => Next::Retry(match err {
                ApiError::RateLimited { retry_after } => retry_after.unwrap_or_default(),
                _ => Duration::ZERO,
            }),
            Backoff::NextRun | Backoff::Renew => Next::Fail,
        }
    }

    /// The wait before retry number `attempt`: full jitter over an exponential step, never
    /// shorter than `floor` (a `Retry-After`); `None` when no retry is left or the wait would
    /// end past the deadline.
    fn retry_wait(&self, attempt: u32, floor: Duration) -> Option<Duration> {
        if attempt >= MAX_ATTEMPTS {
            return None;
        }
        let step = Duration::from_millis(200u64 << attempt);
        let wait = floor.max(step.mul_f64(fastrand::f64()));
        Instant::now()
            .checked_add(wait)
            .filter(|at| *at < self.deadline)
            .map(|_| wait)
    }

    /// Whether a refused API key is worth one more request: always while some request of the
    /// run has answered, and until a refusal repeated on one request.
    fn key_worth_asking_again(&self) -> bool {
        self.answered.load(Ordering::Relaxed) || !self.key_doubted.load(Ordering::Relaxed)
    }

    /// The first "out of call volume quota" answer stops every further request of the run:
    /// each would be refused too, and each would still count.
    fn quota_met(&self, err: &ApiError) {
        if let ApiError::Quota { reset_after } = err {
            if !self.quota.swap(true, Ordering::Relaxed) {
                *self.quota_reset.lock().expect("quota lock") = *reset_after;
                tracing::warn!(
                    reset_after_s = reset_after.map(|d| d.as_secs()),
                    "Volvo says the API key's daily quota is used up; no more requests until it is replenished"
                );
            }
        }
    }

    async fn attempt(
        &self,
        endpoint: Endpoint,
        url: &Url,
        bearer: &Bearer,
    ) -> Result<Vec<u8>, ApiError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore is never closed");
        // The quota may have run out while this request waited for its turn.
        if self.quota.load(Ordering::Relaxed) {
            return Err(ApiError::Quota {
                reset_after: *self.quota_reset.lock().expect("quota lock"),
            });
        }
        let started = Instant::now();
        let key = self.api_key.clone().ok_or_else(|| {
            ApiError::Transport("volvo.api_key holds characters an HTTP header cannot carry".into())
        })?;
        let request = self.http.get(url.clone()).header(VCC_API_KEY, key);
        let request = match &bearer.header {
            Some(header) => request.header(AUTHORIZATION, header.clone()),
            None => request.bearer_auth(bearer.token.expose()),
        };
        let response = request
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .timeout(self.request_timeout)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let (status, err) = if e.is_timeout() {
                    ("timeout", ApiError::RequestTimeout)
                } else {
                    ("transport", ApiError::Transport(describe(&e)))
                };
                self.count(endpoint, status);
                return Err(err);
            }
        };
        let status = response.status();
        self.count(endpoint, status.as_str());
        let retry_after = crate::http::retry_after(response.headers());
        let body = match crate::http::read_capped(response, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(crate::http::BodyError::TooLarge(max)) => {
                return Err(ApiError::Decode(format!(
                    "response body larger than {max} bytes"
                )))
            }
            Err(crate::http::BodyError::Read(e)) if e.is_timeout() => {
                return Err(ApiError::RequestTimeout)
            }
            Err(crate::http::BodyError::Read(e)) => return Err(ApiError::Transport(describe(&e))),
        };
        tracing::trace!(
            api = endpoint.api().label(),
            endpoint = endpoint.template(),
            status = status.as_u16(),
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response"
        );
        if status == StatusCode::OK {
            return Ok(body);
        }
        Err(ApiError::from_status(status.as_u16(), &body, retry_after))
    }
}

/// How far one request has come.
#[derive(Default)]
struct Tries {
    /// Attempts counted against the retry limit (a renewal or a second ask is not one).
    attempt: u32,
    renewed: bool,
    /// The API key was refused and the request asked once more.
    asked_again: bool,
}

/// What follows a failed attempt.
enum Next {
    /// Give up with the failure.
    Fail,
    /// Ask again at once (after a renewal, or a refused key).
    Again,
    /// Retry after at least this long.
    Retry(Duration),
}

/// The instant `d` from now; a span no clock can hold is a day (durations are bounded where
/// they are configured; this keeps any other from panicking).
pub fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// What a retry that found Volvo's minute window full reports: the failure it meant to retry.
fn err_after_window(last: Option<ApiError>) -> ApiError {
    last.unwrap_or(ApiError::Deferred)
}

/// A transport error as one line without the URL (which holds the VIN): the kind of failure
/// and its causes.
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = String::from(if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request's URL lands where a join of its path on the base would, with or without a
    /// folder in the base (an API behind a reverse proxy).
    #[test]
    fn a_path_lands_where_a_join_would_place_it() {
        let path = "/connected-vehicle/v2/vehicles/YV1ABCDEFGH123456/doors";
        for base in [
            "https://api.volvocars.com",
            "https://api.volvocars.com/",
            "http://127.0.0.1:8080/volvo/",
            "http://127.0.0.1:8080/volvo/index?x=1#f",
        ] {
            let base = Url::parse(base).unwrap();
            let joined = base.join(path.trim_start_matches('/')).unwrap();
            assert_eq!(under(&base, path), joined, "{base}");
        }
    }
}
