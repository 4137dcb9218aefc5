//! Refreshing the access token at Volvo ID with the `oauth2` crate (refresh-token grant, HTTP
//! Basic client authentication), and the run's token step: lock, read, refresh when the
//! access token expires within a minute, save the rotated pair, unlock — all before any API
//! call, so a crash can never lose the new refresh token.
//!
//! Volvo ID spends the old refresh token the moment it answers, so the stretch from sending a
//! refresh to saving its answer must not be cut short: not by the run's deadline (the request
//! and the save run in their own task, which owns the token lock until the save is done), not
//! by a stop (a process-wide guard that [`quiesce`] waits for), and not by a full disk (the
//! space for the new pair is set aside before the request is sent: see
//! [`token::reserve`]). Only SIGKILL can still cut it. Nor by the answer itself: it is read
//! leniently ([`TokenAnswer`]), so that a field of the wrong type or an absurd number never
//! costs the rotated refresh token it carries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{RwLock, RwLockWriteGuard};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthUrl, ClientId, ClientSecret, HttpRequest, RefreshToken, RequestTokenError,
    TokenUrl,
};

use super::token::{self, Token};
use crate::error::{ExitCode, Fatal};
use crate::secret::Secret;

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_S: i64 = 60;

/// Held (shared) by every refresh from sending its request until its answer is saved; a stop
/// takes it exclusively, which waits for those in flight and keeps new ones from starting.
static IN_FLIGHT: RwLock<()> = RwLock::const_new(());

/// How many times a refresh that Volvo ID rate-limits (HTTP 429) is tried in all, and the
/// longest `Retry-After` honoured: the run's deadline is about a minute.
const RATE_LIMIT_TRIES: u32 = 3;
const RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(10);
/// The longest a renewal after a 401 waits for the token lock.
const RENEW_LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long a sent refresh waits for Volvo ID's answer, past the run's deadline and its
/// request timeout: Volvo ID spends the old refresh token when it answers, so giving up on a
/// sent refresh would lose the login. Connecting is still bounded by the client's timeout
/// (nothing is spent before the request is sent).
pub const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// Waits until no refresh is between its request and its save, and keeps new ones from
/// starting while the guard lives: what a stop holds before the process exits.
pub async fn quiesce() -> RwLockWriteGuard<'static, ()> {
    if IN_FLIGHT.try_write().is_err() {
        tracing::info!("waiting for the token refresh in flight to be saved");
    }
    IN_FLIGHT.write().await
}

/// What the refresh needs from the configuration.
pub struct OAuthClient<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a Secret,
    pub auth_url: &'a url::Url,
    pub token_url: &'a url::Url,
    /// The clock that says when the token expires.
    pub clock: crate::clock::Clock,
}

/// Volvo ID's token answers are a few kilobytes; a larger one than this is refused unread
/// (a 300 MB answer must not take the process to 600 MB).
pub const MAX_TOKEN_BODY_BYTES: usize = 256 * 1024;

/// A reqwest-backed HTTP client for `oauth2` that remembers the last status code: `oauth2`
/// reports a non-JSON 5xx as a parse error without it, and the status decides whether the
/// failure is temporary. It reads at most [`MAX_TOKEN_BODY_BYTES`] of an answer.
pub struct StatusRecorder {
    pub http: reqwest::Client,
    pub status: AtomicU16,
    /// The last `Retry-After`, clamped, in seconds (`u64::MAX`: none).
    pub retry_after_s: AtomicU64,
    /// The last answer was larger than the cap.
    pub too_large: AtomicBool,
    /// The last answer's body, or its first [`MAX_TOKEN_BODY_BYTES`].
    pub body: std::sync::Mutex<Vec<u8>>,
}

impl StatusRecorder {
    pub fn new(http: &reqwest::Client) -> Self {
        StatusRecorder {
            http: http.clone(),
            status: AtomicU16::new(0),
            retry_after_s: AtomicU64::new(u64::MAX),
            too_large: AtomicBool::new(false),
            body: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// One request and its answer as `oauth2` takes it, recording the status, the
    /// `Retry-After` and whether the body was too large.
    async fn answer(
        &self,
        request: HttpRequest,
    ) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
        let mut request: reqwest::Request = request.try_into().map_err(Box::new)?;
        *request.timeout_mut() = Some(ANSWER_WAIT);
        let response = self.http.execute(request).await.map_err(Box::new)?;
        self.status
            .store(response.status().as_u16(), Ordering::Relaxed);
        let retry_after =
            crate::http::retry_after(response.headers()).map_or(u64::MAX, |d| d.as_secs());
        self.retry_after_s.store(retry_after, Ordering::Relaxed);
        let mut builder = oauth2::http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let (body, more) = match crate::http::read_start(response, MAX_TOKEN_BODY_BYTES).await {
            Ok(read) => read,
            Err(crate::http::BodyError::Read(e)) => return Err(Box::new(e).into()),
            Err(e) => return Err(oauth2::HttpClientError::Other(e.to_string())),
        };
        // Kept whole or cut: a token answer padded past the cap still starts with its JSON.
        body.clone_into(&mut self.body.lock().expect("body lock"));
        if more {
            self.too_large.store(true, Ordering::Relaxed);
            let e = crate::http::BodyError::TooLarge(MAX_TOKEN_BODY_BYTES);
            return Err(oauth2::HttpClientError::Other(e.to_string()));
        }
        builder.body(body).map_err(oauth2::HttpClientError::Http)
    }
}

impl<'c> AsyncHttpClient<'c> for StatusRecorder {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.answer(request))
    }
}

/// Why a refresh failed: rate limited (retried within the run), or for good.
enum Failure {
    RateLimited(Option<Duration>),
    Fatal(Fatal),
}

async fn exchange(
    http: reqwest::Client,
    oauth: OwnedOAuth,
    refresh_token: Secret,
) -> Result<TokenAnswer, Failure> {
    let client = BasicClient::new(ClientId::new(oauth.client_id.to_string()))
        .set_client_secret(ClientSecret::new(oauth.client_secret.expose().to_string()))
        .set_auth_uri(AuthUrl::from_url(oauth.auth_url.clone()))
        .set_token_uri(TokenUrl::from_url(oauth.token_url.clone()));
    let recorder = StatusRecorder::new(&http);
    let rt = RefreshToken::new(refresh_token.expose().to_string());
    let result = client
        .exchange_refresh_token(&rt)
        .request_async(&recorder)
        .await;
    let status = &recorder.status;
    if result.is_err() && status.load(Ordering::Relaxed) == 429 {
        let after = recorder.retry_after_s.load(Ordering::Relaxed);
        return Err(Failure::RateLimited(
            (after != u64::MAX).then(|| Duration::from_secs(after)),
        ));
    }
    let answered = status.load(Ordering::Relaxed);
    if (200..300).contains(&answered) {
        // Volvo ID has rotated the refresh token: read what it sent, whatever `oauth2` made
        // of it.
        let body = recorder.body.lock().expect("body lock");
        return TokenAnswer::read(&body).ok_or_else(|| {
            Failure::Fatal(if recorder.too_large.load(Ordering::Relaxed) {
                too_large()
            } else {
                unreadable(answered)
            })
        });
    }
    let e = match result {
        Ok(_) => return Err(Failure::Fatal(unreadable(answered))),
        Err(e) => e,
    };
    Err(Failure::Fatal(match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => Fatal::login(format!(
                "{INVALID_GRANT}: it has expired or was used already; run `volvo-collect login`"
            )),
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => Fatal::login(format!(
                "Volvo ID rejected the client ({}): check volvo.client_id and client_secret against Volvo's developer portal, then run `volvo-collect login`",
                r.error()
            )),
            other => Fatal::new(
                ExitCode::Temporary,
                format!("Volvo ID refused the token refresh ({other}); the next run retries"),
            ),
        },
        RequestTokenError::Request(_) if recorder.too_large.load(Ordering::Relaxed) => {
            too_large()
        }
        RequestTokenError::Request(_) => Fatal::new(
            ExitCode::Temporary,
            format!(
                "cannot reach Volvo ID at {}; the next run retries",
                crate::secret::shown_url(&oauth.token_url)
            ),
        ),
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => unreadable(answered),
    }))
}

fn too_large() -> Fatal {
    Fatal::new(
        ExitCode::Temporary,
        format!(
            "Volvo ID answered the token refresh with more than {MAX_TOKEN_BODY_BYTES} bytes, which no token answer needs, and no token answer at its start; the login is kept and the next run retries"
        ),
    )
}

/// A token answer that is not Volvo ID's JSON: a gateway's 5xx (`504 upstream request
/// timeout` in plain text) is Volvo ID being away, not the login being over.
pub fn unreadable(status: u16) -> Fatal {
    let what = if (500..600).contains(&status) {
        format!("Volvo ID is not answering properly (HTTP {status}); the login is kept and the next run retries")
    } else {
        format!("Volvo ID answered the token refresh with an unreadable response (HTTP {status}); the login is kept and the next run retries")
    };
    Fatal::new(ExitCode::Temporary, what)
}

/// An access token's lifetime in seconds from `expires_in`: Volvo's is 299; an absent one is
/// taken as 300, and an absurd one as at most a day, so that no expiry overflows.
pub fn lifetime(expires_in: Option<Duration>) -> i64 {
    expires_in.map_or(300, |d| {
        d.as_secs().min(token::LONGEST_LIFETIME_S as u64) as i64
    })
}

fn rate_limited(tries: u32) -> Fatal {
    Fatal::new(
        ExitCode::Temporary,
        format!("Volvo ID is rate limiting token refreshes (HTTP 429, {tries} tries in this run); the refresh token is still valid and the next run retries"),
    )
}

/// The token after Volvo ID's answer to refreshing `old`, and why the run cannot go on with
/// it when it cannot. The refresh token is kept when Volvo ID sends no usable new one; an
/// answer without a usable access token still has its refresh token saved (the access token
/// then counts as expired, so the next run refreshes with it).
fn rotated_token(old: &Token, answer: TokenAnswer, now: i64) -> (Token, Option<Fatal>) {
    if !answer.unusable.is_empty() {
        tracing::warn!(
            fields = answer.unusable.join(", "),
            "Volvo ID's token answer has fields that cannot be used; the rest of it is taken"
        );
    }
    let rotated = answer.refresh_token.is_some();
    let (access_token, expires_at, problem) = match answer.access_token {
        Some(a) => (a, now + lifetime(answer.expires_in), None),
        None => {
            let kept = if rotated {
                "its new refresh token is saved"
            } else {
                "the refresh token is kept"
            };
            let why = format!("Volvo ID's token answer holds no usable access token; {kept} and the next run refreshes again");
            (
                old.access_token.clone(),
                now,
                Some(Fatal::new(ExitCode::Temporary, why)),
            )
        }
    };
    let token = Token {
        access_token,
        refreshed_at: if rotated { Some(now) } else { old.refreshed_at },
        refresh_token: answer
            .refresh_token
            .unwrap_or_else(|| old.refresh_token.clone()),
        expires_at,
        token_type: "Bearer".into(),
        scope: answer.scope.or_else(|| old.scope.clone()),
        logged_in_at: old.logged_in_at,
        replaces: Some(old.refresh_token.fingerprint()),
        extra: old.extra.clone(),
    };
    (token, problem)
}

/// A token answer as read, leniently: Volvo ID's strings and numbers are input. A field of
/// the wrong type, an empty token or one that cannot be sent in a header counts as absent
/// (and is named in a warning, never shown); a lifetime is read from a number or a numeric
/// string and clamped to a day.
#[derive(Debug, Default)]
pub struct TokenAnswer {
    pub access_token: Option<Secret>,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<Duration>,
    pub scope: Option<String>,
    pub unusable: Vec<&'static str>,
}

impl TokenAnswer {
    /// The answer in `body`: its first JSON object, whatever follows it (padding cut at the
    /// cap); `None` when it starts with no object.
    pub fn read(body: &[u8]) -> Option<TokenAnswer> {
        let first = serde_json::Deserializer::from_slice(body)
            .into_iter::<serde_json::Value>()
            .next()?
            .ok()?;
        let serde_json::Value::Object(map) = first else {
            return None;
        };
        let mut answer = TokenAnswer::default();
        answer.access_token = answer.token(&map, "access_token");
        answer.refresh_token = answer.token(&map, "refresh_token");
        answer.expires_in = map.get("expires_in").and_then(|v| {
            let seconds = v.as_f64().or_else(|| v.as_str()?.trim().parse().ok());
            let ok = seconds.filter(|s| s.is_finite());
            if ok.is_none() {
                answer.unusable.push("expires_in");
            }
            // `as` saturates (a negative lifetime is 0); [`lifetime`] bounds it to a day.
            ok.map(|s| Duration::from_secs(s as u64))
        });
        answer.scope = match map.get("scope") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            None | Some(serde_json::Value::Null) => None,
            Some(_) => {
                answer.unusable.push("scope");
                None
            }
        };
        Some(answer)
    }

    /// A token member that can be sent: a non-empty string of visible ASCII.
    fn token(
        &mut self,
        map: &serde_json::Map<String, serde_json::Value>,
        name: &'static str,
    ) -> Option<Secret> {
        let value = map.get(name)?;
        let usable = value
            .as_str()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()));
        if usable.is_none() {
            self.unusable.push(name);
        }
        usable.map(Secret::new)
    }
}

/// Whether this run refreshed the token or found a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Refreshed,
    Fresh,
}

/// The run's token step. Holds the lock across read-refresh-save, so that concurrent runs
/// never spend the same refresh token twice.
/// Waiting for the token lock ends at `deadline`, with a message that names the lock file.
pub async fn ensure_fresh(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    token_file: &Path,
    deadline: tokio::time::Instant,
) -> Result<(Token, Freshness), Fatal> {
    let lock = token::lock(token_file, deadline).await?;
    let pending = token::recover(token_file)?;
    let current = token::read(token_file)?;
    if !current.sendable() {
        tracing::warn!("the access token in the token file cannot be sent (it is not one line of visible characters); refreshing it");
    } else if !current.expires_within(oauth.clock.now(), REFRESH_MARGIN_S) {
        return Ok((current, Freshness::Fresh));
    } else {
        tracing::debug!("access token expires within a minute; refreshing");
    }
    let fresh = refresh_and_save(http, oauth, token_file, lock, current)
        .await
        .map_err(|f| why_spent(f, pending, token_file))?;
    tracing::info!(
        expires_at = fresh.expires_at,
        "access token refreshed; rotated refresh token saved"
    );
    Ok((fresh, Freshness::Refreshed))
}

/// After an API answered 401 for `failed`: refresh under the lock, unless another run already
/// did (then its fresh token is used).
pub async fn renew(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    token_file: &Path,
    failed: &Secret,
) -> Result<Secret, Fatal> {
    // The caller waits no longer than its run's deadline; this bound only keeps the thread
    // that renews from waiting for good.
    let lock = token::lock(token_file, tokio::time::Instant::now() + RENEW_LOCK_WAIT).await?;
    let pending = token::recover(token_file)?;
    let current = token::read(token_file)?;
    let now = oauth.clock.now();
    if current.access_token != *failed
        && current.sendable()
        && !current.expires_within(now, REFRESH_MARGIN_S)
    {
        return Ok(current.access_token);
    }
    tracing::info!("an API refused the access token; refreshing it once");
    let fresh = refresh_and_save(http, oauth, token_file, lock, current)
        .await
        .map_err(|f| why_spent(f, pending, token_file))?;
    Ok(fresh.access_token)
}

/// How Volvo ID says a refresh token is dead.
const INVALID_GRANT: &str = "Volvo ID refused the refresh token (invalid_grant)";

/// A dead refresh token, with the likely reason when an earlier run left its reservation
/// empty: it was stopped while its refresh was in flight, after Volvo ID had rotated the token
/// and before the new one was saved. A login is needed either way; the reason says how to
/// keep it from happening again.
fn why_spent(f: Fatal, pending: token::Pending, token_file: &Path) -> Fatal {
    if pending != token::Pending::CutOff || !f.message.starts_with(INVALID_GRANT) {
        return f;
    }
    Fatal::login(format!(
        "{}; an earlier run was most likely killed while it refreshed the token (it left an empty {}): Volvo ID had rotated the refresh token, and the new one was never saved. A stop by SIGTERM waits for the save; SIGKILL, an out-of-memory kill or a power cut cannot",
        f.message,
        crate::fsutil::pending_path(
            &crate::fsutil::resolve_links(token_file).unwrap_or_else(|_| token_file.into())
        )
        .display()
    ))
}

/// Refreshes `current` and saves the rotated pair, holding `lock` until the save is done.
/// Each attempt runs in its own task that owns the lock and the in-flight guard, so neither
/// the run's deadline (which drops this future) nor a stop can come between Volvo's rotation
/// and the save. A rate-limited attempt rotates nothing, so waiting between attempts may be
/// cut short safely.
async fn refresh_and_save(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    token_file: &Path,
    lock: crate::fsutil::LockFile,
    current: Token,
) -> Result<Token, Fatal> {
    let lock = Arc::new(lock);
    let current = Arc::new(current);
    for attempt in 1..=RATE_LIMIT_TRIES {
        let guard = IN_FLIGHT.read().await;
        let task = tokio::spawn(refresh_attempt(
            guard,
            lock.clone(),
            http.clone(),
            OwnedOAuth {
                client_id: oauth.client_id.to_string(),
                client_secret: oauth.client_secret.clone(),
                auth_url: oauth.auth_url.clone(),
                token_url: oauth.token_url.clone(),
                clock: oauth.clock,
            },
            token_file.to_path_buf(),
            current.clone(),
        ));
        match task.await.expect("the refresh task does not panic") {
            Ok(fresh) => return Ok(fresh),
            Err(Failure::Fatal(f)) => return Err(f),
            Err(Failure::RateLimited(after)) if attempt < RATE_LIMIT_TRIES => {
                let wait = after
                    .unwrap_or(Duration::from_secs(2 * attempt as u64))
                    .min(RATE_LIMIT_MAX_WAIT);
                tracing::warn!(
                    wait_s = wait.as_secs(),
                    "Volvo ID is rate limiting token refreshes (HTTP 429); retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Err(Failure::RateLimited(_)) => return Err(rate_limited(attempt)),
        }
    }
    unreachable!("the last attempt returns")
}

/// [`OAuthClient`] owned, for a task of its own.
struct OwnedOAuth {
    client_id: String,
    client_secret: Secret,
    auth_url: url::Url,
    token_url: url::Url,
    clock: crate::clock::Clock,
}

type Attempt = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Token, Failure>> + Send>>;

/// One refresh and its save, owning what must outlive a dropped caller.
fn refresh_attempt(
    in_flight: tokio::sync::RwLockReadGuard<'static, ()>,
    lock: Arc<crate::fsutil::LockFile>,
    http: reqwest::Client,
    oauth: OwnedOAuth,
    path: PathBuf,
    current: Arc<Token>,
) -> Attempt {
    let refresh_token = current.refresh_token.clone();
    Box::pin(async move {
        let _in_flight = in_flight;
        let _lock = lock;
        // Without room for the new pair, the old refresh token is not spent.
        let room = token::reserve(&path, &current).map_err(Failure::Fatal)?;
        let clock = oauth.clock;
        let answer = exchange(http, oauth, refresh_token).await?;
        let (fresh, problem) = rotated_token(&current, answer, clock.now());
        token::save_rotated(room, &fresh)
            .await
            .map_err(Failure::Fatal)?;
        match problem {
            Some(f) => Err(Failure::Fatal(f)),
            None => Ok(fresh),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old() -> Token {
        serde_json::from_str(r#"{"access_token":"a0","refresh_token":"r0","expires_at":0}"#)
            .unwrap()
    }

    /// What a token answer becomes: its lifetime read from a number or text and bounded to a
    /// day, a missing one taken as Volvo's 300 s, and a rotated refresh token kept even when
    /// the access token is unusable.
    #[test]
    fn a_token_answer_is_read_leniently_and_bounded() {
        let now = 1_000;
        let cases = [
            (r#"{"access_token":"a1","expires_in":299}"#, now + 299),
            (r#"{"access_token":"a1","expires_in":"299"}"#, now + 299),
            (r#"{"access_token":"a1","expires_in":-5}"#, now),
            (r#"{"access_token":"a1","expires_in":1e30}"#, now + 86_400),
            (r#"{"access_token":"a1"}"#, now + 300),
            (
                r#"{"access_token":"a1","expires_in":[1]}    padding"#,
                now + 300,
            ),
        ];
        for (body, expires_at) in cases {
            let answer = TokenAnswer::read(body.as_bytes()).expect(body);
            let (token, problem) = rotated_token(&old(), answer, now);
            assert_eq!(token.expires_at, expires_at, "{body}");
            assert_eq!(token.access_token.expose(), "a1", "{body}");
            assert!(problem.is_none(), "{body}");
        }
        let answer = TokenAnswer::read(br#"{"access_token":"x y","refresh_token":"r1"}"#).unwrap();
        assert_eq!(answer.unusable, ["access_token"]);
        let (token, problem) = rotated_token(&old(), answer, now);
        assert_eq!(token.refresh_token.expose(), "r1");
        assert_eq!(token.expires_at, now);
        assert!(problem.is_some());
        assert!(TokenAnswer::read(b"<html>").is_none());
    }
}
