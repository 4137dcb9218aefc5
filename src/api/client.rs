//! The one HTTP client every API shares during a run: it adds Volvo's headers, bounds how many
//! requests are in flight, stops at the run's deadline, retries what is worth retrying, caps
//! response bodies, classifies failures into [`ApiError`], and counts every request by API,
//! endpoint template and status for the self-metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::{RwLock, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::ApiError;
use crate::endpoints::Origin;
use crate::secret::Secret;

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

pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    access_token: RwLock<Secret>,
    token_source: Option<Box<dyn TokenSource>>,
    /// Serialises renewals: one 401 storm causes one refresh.
    renewing: tokio::sync::Mutex<()>,
    in_flight: Semaphore,
    /// Volvo's minute window of the account, which a retry must fit in too.
    window: Option<crate::window::Window>,
    deadline: Instant,
    request_timeout: Duration,
    counts: Mutex<RequestCounts>,
    retries: Mutex<BTreeMap<String, u64>>,
    /// Set by the first "out of call volume quota" answer: no more requests this run.
    quota: AtomicBool,
    quota_reset: Mutex<Option<Duration>>,
    /// Set when the access token was renewed after a 401 (the run saves it to the metrics).
    renewed: Mutex<Option<crate::error::Fatal>>,
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
            api_key: o.api_key,
            access_token: RwLock::new(o.access_token),
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
                deadline: Instant::now() + request_timeout,
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
        api: Origin,
        template: &'static str,
        path: &str,
    ) -> Result<T, ApiError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Transport(format!("bad URL for {template}: {e}")))?;
        let token = self.access_token.read().await.clone();
        let body = self.attempt(api, template, &url, &token).await?;
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
        if *self.access_token.read().await != *failed {
            return true; // another request renewed it meanwhile
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
                *self.access_token.write().await = fresh;
                true
            }
            Err(e) => {
                *self.renewed.lock().expect("renewed lock") = Some(e);
                false
            }
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Requests made so far in this run.
    pub fn request_counts(&self) -> RequestCounts {
        self.counts.lock().expect("counts lock").clone()
    }

    /// Retries made so far in this run, by API.
    pub fn retry_counts(&self) -> BTreeMap<String, u64> {
        self.retries.lock().expect("retries lock").clone()
    }

    fn count(&self, api: Origin, template: &str, status: &str) {
        *self
            .counts
            .lock()
            .expect("counts lock")
            .entry((
                api.label().to_string(),
                template.to_string(),
                status.to_string(),
            ))
            .or_default() += 1;
    }

    /// GETs `path` and returns the body of a 200 answer; retries transport errors, 5xx and 429
    /// with exponential back-off and jitter, never past the deadline; after a 401 for the access
    /// token, renews it once and retries once; after the daily quota's 403, asks nothing more.
    pub async fn get(
        &self,
        api: Origin,
        template: &'static str,
        path: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ApiError::Transport(format!("bad URL for {template}: {e}")))?;
        let mut attempt = 0;
        let mut renewed = false;
        let mut last_err: Option<ApiError> = None;
        loop {
            attempt += 1;
            if self.quota.load(Ordering::Relaxed) {
                return Err(ApiError::Quota {
                    reset_after: *self.quota_reset.lock().expect("quota lock"),
                });
            }
            // The planned first attempt has its place in the window already; a retry needs one.
            if attempt > 1 || renewed {
                if let Some(w) = &self.window {
                    if w.reserve(1).await == 0 {
                        return Err(err_after_window(last_err.take()));
                    }
                }
            }
            let token = self.access_token.read().await.clone();
            let result = match tokio::time::timeout_at(
                self.deadline,
                self.attempt(api, template, &url, &token),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => {
                    self.count(api, template, "timeout");
                    Err(ApiError::Timeout)
                }
            };
            let err = match result {
                Ok(body) => return Ok(body),
                Err(e) => e,
            };
            if let ApiError::Quota { reset_after } = &err {
                // Every further request would be refused too, and each would still count.
                if !self.quota.swap(true, Ordering::Relaxed) {
                    *self.quota_reset.lock().expect("quota lock") = *reset_after;
                    tracing::warn!(
                        reset_after_s = reset_after.map(|d| d.as_secs()),
                        "Volvo says the API key's daily quota is used up; no more requests until it is replenished"
                    );
                }
                return Err(err);
            }
            // A refused access token: renew once and retry once (an API-key 401 is not this).
            if err == ApiError::Unauthorized(401) && !renewed {
                renewed = true;
                if self.renew(&token).await {
                    attempt -= 1;
                    last_err = Some(err);
                    continue;
                }
                return Err(err);
            }
            let retry_after = match &err {
                ApiError::RateLimited { retry_after } => Some(retry_after.unwrap_or_default()),
                ApiError::Transport(_) | ApiError::RequestTimeout => Some(Duration::ZERO),
                ApiError::ServerError(500 | 502 | 503 | 504) => Some(Duration::ZERO),
                _ => None,
            };
            let Some(floor) = retry_after else {
                return Err(err);
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(err);
            }
            // Full jitter over an exponential step, but never shorter than Retry-After.
            let step = Duration::from_millis(200u64 << attempt);
            let wait = floor.max(step.mul_f64(fastrand::f64()));
            if Instant::now() + wait >= self.deadline {
                return Err(err);
            }
            *self
                .retries
                .lock()
                .expect("retries lock")
                .entry(api.label().to_string())
                .or_default() += 1;
            tracing::debug!(api = api.label(), endpoint = template, error = %err, wait_ms = wait.as_millis() as u64, "retrying");
            last_err = Some(err);
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        api: Origin,
        template: &'static str,
        url: &Url,
        token: &Secret,
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
        // Marked sensitive, so that no debug output of the request can show it.
        let mut key =
            reqwest::header::HeaderValue::from_str(self.api_key.expose()).map_err(|_| {
                ApiError::Transport(
                    "volvo.api_key holds characters an HTTP header cannot carry".into(),
                )
            })?;
        key.set_sensitive(true);
        let response = self
            .http
            .get(url.clone())
            .header("vcc-api-key", key)
            .bearer_auth(token.expose())
            .header("accept", "application/json")
            .timeout(self.request_timeout)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                let (status, err) = if e.is_timeout() {
                    ("timeout", ApiError::RequestTimeout)
                } else {
                    ("transport", ApiError::Transport(describe(&e)))
                };
                self.count(api, template, status);
                return Err(err);
            }
        };
        let status = response.status();
        self.count(api, template, status.as_str());
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(ApiError::Decode(format!(
                            "response body larger than {MAX_BODY_BYTES} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(ApiError::RequestTimeout),
                Err(e) => return Err(ApiError::Transport(describe(&e))),
            }
        }
        tracing::trace!(
            api = api.label(),
            endpoint = template,
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
