//! The one HTTP client every API shares during a run: it adds Volvo's headers, bounds how many
//! requests are in flight, stops at the run's deadline, retries what is worth retrying, caps
//! response bodies, classifies failures into [`ApiError`], and counts every request by API,
//! endpoint template and status for the self-metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tokio::sync::{RwLock, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::ApiError;
use crate::metrics::catalog::Origin;
use crate::secret::Secret;

/// Responses larger than this are refused: no real answer comes close.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
const MAX_ATTEMPTS: u32 = 3;

/// Requests made, by (api, endpoint template, status or error kind).
pub type RequestCounts = BTreeMap<(String, String, String), u64>;

pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Secret,
    access_token: RwLock<Secret>,
    in_flight: Semaphore,
    deadline: Instant,
    request_timeout: Duration,
    counts: Mutex<RequestCounts>,
    retries: Mutex<BTreeMap<String, u64>>,
}

/// Options for building a [`Client`].
pub struct ClientOptions {
    pub base: Url,
    pub api_key: Secret,
    pub access_token: Secret,
    pub concurrency: usize,
    pub deadline: Instant,
    pub request_timeout: Duration,
}

impl Client {
    pub fn new(http: reqwest::Client, o: ClientOptions) -> Self {
        Client {
            http,
            base: o.base,
            api_key: o.api_key,
            access_token: RwLock::new(o.access_token),
            in_flight: Semaphore::new(o.concurrency.max(1)),
            deadline: o.deadline,
            request_timeout: o.request_timeout,
            counts: Mutex::new(BTreeMap::new()),
            retries: Mutex::new(BTreeMap::new()),
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

    /// GETs `path` (relative to the API host) and decodes the JSON body.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        api: Origin,
        template: &'static str,
        path: &str,
    ) -> Result<T, ApiError> {
        let body = self.get(api, template, path).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// GETs `path` and returns the body of a 200 answer; retries transport errors, 5xx and 429
    /// with exponential back-off and jitter, never past the deadline.
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
        loop {
            attempt += 1;
            let result =
                match tokio::time::timeout_at(self.deadline, self.attempt(api, template, &url))
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
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        api: Origin,
        template: &'static str,
        url: &Url,
    ) -> Result<Vec<u8>, ApiError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore is never closed");
        let token = self.access_token.read().await.clone();
        let started = Instant::now();
        let response = self
            .http
            .get(url.clone())
            .header("vcc-api-key", self.api_key.expose())
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
