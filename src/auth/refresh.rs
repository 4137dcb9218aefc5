//! Refreshing the access token at Volvo ID with the `oauth2` crate (refresh-token grant, HTTP
//! Basic client authentication), and the run's token step: lock, read, refresh when the
//! access token expires within a minute, save the rotated pair, unlock — all before any API
//! call, so a crash can never lose the new refresh token.

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AsyncHttpClient, AuthUrl, ClientId, ClientSecret, HttpRequest, RefreshToken, RequestTokenError,
    TokenResponse, TokenUrl,
};

use super::token::{self, Token};
use crate::error::{ExitCode, Fatal};
use crate::secret::Secret;

/// Refresh when the access token expires within this many seconds.
pub const REFRESH_MARGIN_S: i64 = 60;

/// What the refresh needs from the configuration.
pub struct OAuthClient<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a Secret,
    pub auth_url: &'a url::Url,
    pub token_url: &'a url::Url,
}

pub fn now() -> i64 {
    crate::clock::now()
}

/// A reqwest-backed HTTP client for `oauth2` that remembers the last status code: `oauth2`
/// reports a non-JSON 5xx as a parse error without it, and the status decides whether the
/// failure is temporary.
pub struct StatusRecorder<'h> {
    pub http: &'h reqwest::Client,
    pub status: AtomicU16,
}

impl<'c, 'h: 'c> AsyncHttpClient<'c> for StatusRecorder<'h> {
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
        Box::pin(async move {
            let r = self.http.call(request).await;
            if let Ok(resp) = &r {
                self.status.store(resp.status().as_u16(), Ordering::Relaxed);
            }
            r
        })
    }
}

async fn exchange(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    refresh_token: &Secret,
) -> Result<oauth2::basic::BasicTokenResponse, Fatal> {
    let client = BasicClient::new(ClientId::new(oauth.client_id.to_string()))
        .set_client_secret(ClientSecret::new(oauth.client_secret.expose().to_string()))
        .set_auth_uri(AuthUrl::from_url(oauth.auth_url.clone()))
        .set_token_uri(TokenUrl::from_url(oauth.token_url.clone()));
    let recorder = StatusRecorder {
        http,
        status: AtomicU16::new(0),
    };
    let rt = RefreshToken::new(refresh_token.expose().to_string());
    let result = client
        .exchange_refresh_token(&rt)
        .request_async(&recorder)
        .await;
    let status = &recorder.status;
    result.map_err(|e| match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => Fatal::login(
                "Volvo ID refused the refresh token (invalid_grant): it has expired or was used already; run `volvo-collect login`",
            ),
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => Fatal::login(format!(
                "Volvo ID rejected the client ({}): check volvo.client_id and client_secret against Volvo's developer portal, then run `volvo-collect login`",
                r.error()
            )),
            other => Fatal::new(
                ExitCode::Temporary,
                format!("Volvo ID refused the token refresh ({other}); the next run retries"),
            ),
        },
        RequestTokenError::Request(_) => Fatal::new(
            ExitCode::Temporary,
            format!("cannot reach Volvo ID at {}; the next run retries", oauth.token_url),
        ),
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            let s = status.load(Ordering::Relaxed);
            Fatal::new(
                ExitCode::Temporary,
                format!("Volvo ID answered the token refresh with an unreadable response (HTTP {s}); the next run retries"),
            )
        }
    })
}

/// Refreshes `old` and returns the rotated token. The refresh token is kept when Volvo ID does
/// not send a new one.
pub async fn refresh(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    old: &Token,
) -> Result<Token, Fatal> {
    let r = exchange(http, oauth, &old.refresh_token).await?;
    let now = now();
    let rotated = r.refresh_token().map(|t| Secret::new(t.secret().clone()));
    let expires_in = r.expires_in().map(|d| d.as_secs() as i64).unwrap_or(300);
    Ok(Token {
        access_token: Secret::new(r.access_token().secret().clone()),
        refreshed_at: if rotated.is_some() {
            Some(now)
        } else {
            old.refreshed_at
        },
        refresh_token: rotated.unwrap_or_else(|| old.refresh_token.clone()),
        expires_at: now + expires_in,
        token_type: "Bearer".into(),
        scope: r
            .scopes()
            .map(|s| {
                s.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .or_else(|| old.scope.clone()),
        logged_in_at: old.logged_in_at,
        extra: old.extra.clone(),
    })
}

/// Whether this run refreshed the token or found a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Refreshed,
    Fresh,
}

/// The run's token step. Holds the lock across read-refresh-save, so that concurrent runs
/// never spend the same refresh token twice.
pub async fn ensure_fresh(
    http: &reqwest::Client,
    oauth: &OAuthClient<'_>,
    token_file: &Path,
) -> Result<(Token, Freshness), Fatal> {
    let _lock = token::lock(token_file).await?;
    let current = token::read(token_file)?;
    if !current.expires_within(now(), REFRESH_MARGIN_S) {
        return Ok((current, Freshness::Fresh));
    }
    tracing::debug!("access token expires within a minute; refreshing");
    let fresh = refresh(http, oauth, &current).await?;
    token::save(token_file, &fresh)?;
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
    let _lock = token::lock(token_file).await?;
    let current = token::read(token_file)?;
    if current.access_token != *failed && !current.expires_within(now(), REFRESH_MARGIN_S) {
        return Ok(current.access_token);
    }
    tracing::info!("an API refused the access token; refreshing it once");
    let fresh = refresh(http, oauth, &current).await?;
    token::save(token_file, &fresh)?;
    Ok(fresh.access_token)
}
