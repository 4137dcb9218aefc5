//! `volvo-collect login`: the authorization-code flow with PKCE (S256) and a random `state`
//! against Volvo ID. It prints (and may open) the authorize URL, then receives the redirect
//! (see `redirect`: a loopback listener when `volvo.redirect_uri` is a loopback URL, or else the
//! redirected URL or just the code pasted on standard input), checks it against this login,
//! exchanges the code for a token pair and saves it under the token lock, so a run that is
//! refreshing at the same moment cannot interleave.
//!
//! Exit codes: 77 when the login was refused (access denied, state mismatch, code or client
//! rejected), 75 when nothing arrived in time or Volvo ID could not be reached, 78 for a
//! configuration problem (no client secret, the redirect port cannot be listened on).
//! The client secret, the code and the tokens never appear in a message.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use tokio::time::Instant;

use super::redirect::{loopback_addrs, read_pasted, Callback, Listener, Page, Pasted};
use super::refresh::StatusRecorder;
use super::token::{self, Token};
use crate::config::{Account, Settings};
use crate::error::{ExitCode, Fatal};
use crate::secret::Secret;
use crate::text::shell_word;

/// Where the user registers the redirect URI and scopes of their application.
const DEVELOPER_PORTAL: &str = "https://developer.volvocars.com";
/// The longest a login waits for a run that holds the token lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Runs the whole login; `timeout` bounds the wait for the redirect (or the paste).
pub async fn run(
    settings: &Settings,
    account: &Account,
    no_browser: bool,
    timeout: Duration,
) -> Result<ExitCode, Fatal> {
    let secret = settings.client_secret(account)?;
    let redirect = account.redirect_uri.clone();
    // Listen before showing the URL: a port that is taken is reported before the user logs in.
    let listener = match loopback_addrs(&redirect) {
        Some(addrs) => Some(Listener::bind(&addrs, &redirect).await?),
        None => None,
    };

    let client = BasicClient::new(ClientId::new(account.client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.expose().to_string()))
        .set_auth_uri(AuthUrl::from_url(settings.auth_url.clone()))
        .set_token_uri(TokenUrl::from_url(settings.token_url.clone()))
        .set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(settings.scopes(account).into_iter().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();

    eprintln!("Open this URL in your browser and log in to Volvo ID:\n\n{authorize_url}\n");
    if !no_browser && open_browser(authorize_url.as_str()) {
        eprintln!("(Trying to open it in your browser; if nothing opens, open it yourself.)");
    }

    let login = Login {
        settings,
        account,
        client,
        http: crate::http::client(settings.request_timeout),
        state,
        redirect,
        deadline: Instant::now() + timeout,
        timeout,
    };
    let token = match listener {
        Some(listener) => login.by_listener(listener, verifier).await?,
        None => login.by_paste(verifier).await?,
    };

    warn_missing_scopes(settings, account, &token);
    print_next_steps(settings, account);
    Ok(ExitCode::Ok)
}

/// A login under way, from the authorize URL shown to the token saved.
struct Login<'a> {
    settings: &'a Settings,
    account: &'a Account,
    client: LoginClient,
    http: reqwest::Client,
    /// The `state` the authorize URL carries, which the redirect must bring back.
    state: CsrfToken,
    redirect: url::Url,
    deadline: Instant,
    timeout: Duration,
}

impl Login<'_> {
    /// The redirect arrives at the loopback listener; the browser is told how it went.
    async fn by_listener(
        &self,
        listener: Listener,
        verifier: PkceCodeVerifier,
    ) -> Result<Token, Fatal> {
        let (settings, account) = (self.settings, self.account);
        eprintln!(
            "Waiting up to {} for Volvo ID to send your browser back to {} ...",
            humantime::format_duration(self.timeout),
            self.redirect
        );
        let expected = self.state.secret();
        let (callback, reply) = listener
            .wait(
                self.redirect.path(),
                (self.deadline, self.timeout),
                |cb| is_this_logins(cb, expected),
                || Page::not_ours(STATE_MISMATCH),
            )
            .await?;
        let outcome = match check_redirect(&callback, self.state.secret(), settings, account) {
            Ok(code) => self.exchange(code, verifier).await,
            Err(f) => Err(f),
        };
        let outcome = match outcome {
            Ok(t) => save(account, &t).await.map(|()| t),
            Err(f) => Err(f),
        };
        let page = match &outcome {
            Ok(_) => Page::ok(),
            Err(f) => Page::failed(&f.message),
        };
        reply.send(page).await;
        outcome
    }

    /// The user pastes the redirected address (or only its code) on standard input.
    async fn by_paste(&self, verifier: PkceCodeVerifier) -> Result<Token, Fatal> {
        eprintln!(
            "After you log in, Volvo ID sends your browser to {}?code=... (that page may show an error; that is expected).\n\
             Copy the whole address from the browser's address bar, paste it here and press Enter (waiting up to {}):",
            self.redirect,
            humantime::format_duration(self.timeout)
        );
        let code = match read_pasted(self.deadline, self.timeout).await? {
            Pasted::Redirect(callback) => {
                check_redirect(&callback, self.state.secret(), self.settings, self.account)?
            }
            Pasted::BareCode(code) => {
                eprintln!(
                    "note: only the code was pasted, so the state of this login cannot be checked; paste the whole address to have it checked"
                );
                code
            }
        };
        let token = self.exchange(code, verifier).await?;
        save(self.account, &token).await?;
        Ok(token)
    }

    async fn exchange(&self, code: Secret, verifier: PkceCodeVerifier) -> Result<Token, Fatal> {
        exchange(
            &self.client,
            &self.http,
            code,
            verifier,
            self.settings,
            self.account,
        )
        .await
    }
}

// ---- checking the redirect ---------------------------------------------------------------------

/// Why a redirect is not this login's.
const STATE_MISMATCH: &str = "the redirect's state does not match this login (state mismatch): it belongs to an older login attempt or was forged";

/// Whether a redirect answers this login: it carries its `state`. Volvo ID may leave the state
/// out of an error; the error is then what the user needs.
fn is_this_logins(cb: &Callback, expected_state: &str) -> bool {
    match cb.state.as_deref() {
        Some(s) => s == expected_state,
        None => cb.error.is_some(),
    }
}

/// Checks the redirect against this login: the state first (an answer meant for another
/// login, or forged, is not read further), then an error Volvo ID reports, then the code.
fn check_redirect(
    cb: &Callback,
    expected_state: &str,
    settings: &Settings,
    account: &Account,
) -> Result<Secret, Fatal> {
    if !is_this_logins(cb, expected_state) {
        return Err(Fatal::login(format!(
            "{STATE_MISMATCH}; run `volvo-collect login` again and use the newest URL"
        )));
    }
    if let Some(error) = &cb.error {
        let error = one_line(error);
        let description = cb.error_description.as_deref().map(one_line);
        let detail = match &description {
            Some(d) if !d.is_empty() => format!("{error}: {d}"),
            _ => error.clone(),
        };
        if error == "access_denied" {
            return Err(Fatal::login(format!(
                "Volvo ID did not grant access ({detail}): the login was declined; run `volvo-collect login` again and accept the requested access"
            )));
        }
        if is_temporary(&error) {
            return Err(Fatal::new(
                ExitCode::Temporary,
                format!("Volvo ID could not complete the login ({detail}); run `volvo-collect login` again later"),
            ));
        }
        let register = if is_registration_problem(&error, description.as_deref()) {
            print_registration_hint(settings, account);
            "; what your application must have registered is printed above"
        } else {
            ""
        };
        return Err(Fatal::login(format!(
            "Volvo ID refused the login ({detail}){register}; then run `volvo-collect login` again"
        )));
    }
    cb.code.clone().ok_or_else(|| {
        Fatal::login(
            "the redirect carries neither a code nor an error; run `volvo-collect login` again",
        )
    })
}

/// Errors that mean the application's registration does not fit this login.
fn is_registration_problem(error: &str, description: Option<&str>) -> bool {
    matches!(
        error,
        "invalid_grant" | "invalid_client" | "unauthorized_client" | "invalid_scope"
    ) || description.is_some_and(|d| d.to_ascii_lowercase().contains("redirect"))
}

/// Errors that say "not now" rather than "not like this".
fn is_temporary(error: &str) -> bool {
    matches!(error, "server_error" | "temporarily_unavailable")
}

fn print_registration_hint(settings: &Settings, account: &Account) {
    eprintln!(
        "In Volvo's developer portal ({DEVELOPER_PORTAL}), your application (client ID {}) must have\n  this redirect URI: {}\n  these scopes:      {}",
        account.client_id,
        account.redirect_uri,
        settings.scopes(account).join(" ")
    );
    // The likeliest scope an application cannot have: Extended Vehicle's, after its shutdown.
    if settings
        .scopes(account)
        .iter()
        .any(|s| crate::config::is_extended_vehicle_scope(s))
    {
        eprintln!(
            "  The exve:* scopes are Extended Vehicle's, which Volvo retired on 2025-12-31; if your application cannot have them, remove sources.extended_vehicle = true (and any exve:* in volvo.scopes): the other APIs carry the data."
        );
    }
}

/// Text from the network, made safe for a one-line message.
fn one_line(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    clean.trim().to_string()
}

// ---- the token --------------------------------------------------------------------------------

/// The client as configured for this login: authorize and token endpoints set.
type LoginClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Exchanges the code (with the PKCE verifier; HTTP Basic client authentication). The status
/// code is kept because `oauth2` reports a non-JSON answer as a parse error without it.
async fn exchange(
    client: &LoginClient,
    http: &reqwest::Client,
    code: Secret,
    verifier: PkceCodeVerifier,
    settings: &Settings,
    account: &Account,
) -> Result<Token, Fatal> {
    let recorder = StatusRecorder::new(http);
    let result = client
        .exchange_code(AuthorizationCode::new(code.expose().to_string()))
        .set_pkce_verifier(verifier)
        .request_async(&recorder)
        .await;
    match result {
        Ok(r) => token_from(&r, settings, account),
        Err(_) if recorder.too_large.load(Ordering::Relaxed) => Err(Fatal::new(
            ExitCode::Temporary,
            format!(
                "Volvo ID answered the login with more than {} bytes, which no token answer needs; it was not read: run `volvo-collect login` again",
                super::refresh::MAX_TOKEN_BODY_BYTES
            ),
        )),
        Err(e) => Err(exchange_error(
            e,
            recorder.status.load(Ordering::Relaxed),
            settings,
            account,
        )),
    }
}

fn token_from(
    r: &oauth2::basic::BasicTokenResponse,
    settings: &Settings,
    account: &Account,
) -> Result<Token, Fatal> {
    let refresh_token = r.refresh_token().ok_or_else(|| {
        Fatal::login(
            "Volvo ID answered the login without a refresh token, so every run would need a new login; check your application in Volvo's developer portal",
        )
    })?;
    let now = settings.clock.now();
    let expires_in = super::refresh::lifetime(r.expires_in());
    let scope = r
        .scopes()
        .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| settings.scopes(account))
        .join(" ");
    Ok(Token {
        access_token: Secret::new(r.access_token().secret().clone()),
        refresh_token: Secret::new(refresh_token.secret().clone()),
        expires_at: now + expires_in,
        token_type: "Bearer".into(),
        scope: Some(scope),
        refreshed_at: Some(now),
        logged_in_at: Some(now),
        replaces: None,
        extra: serde_json::Map::new(),
    })
}

fn exchange_error(
    e: RequestTokenError<
        oauth2::HttpClientError<reqwest::Error>,
        oauth2::basic::BasicErrorResponse,
    >,
    status: u16,
    settings: &Settings,
    account: &Account,
) -> Fatal {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let error = r.error().to_string();
            let description = r.error_description().map(|d| one_line(d));
            let detail = match &description {
                Some(d) if !d.is_empty() => format!("{error}: {d}"),
                _ => error.clone(),
            };
            if is_temporary(&error) {
                return Fatal::new(
                    ExitCode::Temporary,
                    format!("Volvo ID could not complete the login ({detail}); run `volvo-collect login` again later"),
                );
            }
            let register = if is_registration_problem(&error, description.as_deref()) {
                print_registration_hint(settings, account);
                " (what your application must have registered is printed above)"
            } else {
                ""
            };
            let what = match r.error() {
                BasicErrorResponseType::InvalidGrant => {
                    "the code expired, was used already, or the redirect URI does not match the registered one"
                }
                BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                    "check volvo.client_id and the client secret against Volvo's developer portal"
                }
                BasicErrorResponseType::InvalidScope => {
                    "the application may not ask for all of these scopes; check them in Volvo's developer portal"
                }
                _ => "check volvo.token_url and your application in Volvo's developer portal",
            };
            Fatal::login(format!(
                "Volvo ID refused the code ({detail}): {what}{register}; then run `volvo-collect login` again"
            ))
        }
        RequestTokenError::Request(_) => Fatal::new(
            ExitCode::Temporary,
            format!(
                "cannot reach Volvo ID at {}; check the network and run `volvo-collect login` again",
                settings.token_url
            ),
        ),
        // The body is not quoted: a half-readable answer may still hold tokens.
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => Fatal::new(
            ExitCode::Temporary,
            format!(
                "Volvo ID answered the login with an unreadable response (HTTP {status}); run `volvo-collect login` again"
            ),
        ),
    }
}

/// Saves the token under the token lock, creating its folder (0700) when needed.
async fn save(account: &Account, token: &Token) -> Result<(), Fatal> {
    let path = &account.token_file;
    token::create_folder(path)?;
    let _lock = token::lock(path, Instant::now() + LOCK_WAIT).await?;
    token::save(path, token)
}

fn warn_missing_scopes(settings: &Settings, account: &Account, token: &Token) {
    let needed = settings.scopes(account);
    let missing =
        crate::endpoints::missing_scopes(&needed, token.scope.as_deref().unwrap_or_default());
    if !missing.is_empty() {
        eprintln!(
            "note: Volvo ID granted fewer scopes than asked; missing: {}. The data that needs them will be missing; add them to your application in Volvo's developer portal and log in again.",
            missing.join(" ")
        );
    }
}

fn print_next_steps(settings: &Settings, account: &Account) {
    let config = std::fs::canonicalize(&settings.config_path)
        .unwrap_or_else(|_| settings.config_path.clone());
    let config = shell_word(&config);
    // Beside the token, not in /tmp where another user could take it first; and not the
    // token's own lock, which the run takes itself and would then wait for forever.
    let dir = account
        .token_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let cron_lock = shell_word(dir.join("volvo-collect.cron.lock"));
    let minutes = (settings.interval.as_secs() / 60).clamp(1, 59);
    let output = if settings.output.is_empty() {
        " --textfile /var/lib/prometheus/node-exporter/volvo.prom"
    } else {
        ""
    };
    eprintln!(
        "Logged in; the token is saved in {}.\n\
         Next steps:\n\
         \x20 1. Test it:  volvo-collect --config {config} --once --stdout\n\
         \x20 2. Collect every {} with the systemd timer:  systemctl enable --now volvo-collect.timer\n\
         \x20    or with cron (flock keeps runs from piling up):\n\
         \x20    */{minutes} * * * * flock -n {cron_lock} volvo-collect --config {config} --once{output}",
        dir.join(account.token_file.file_name().unwrap_or_default()).display(),
        humantime::format_duration(settings.interval),
    );
}

/// Starts the desktop's browser on `url`, without waiting for it. Returns whether a starter
/// could be launched; whether a browser really opened is unknown.
fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        // Without a display, xdg-open may start a text browser on this very terminal.
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return false;
        }
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reaped in the background, so it does not linger as a zombie while we wait.
            std::thread::spawn(move || child.wait());
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::redirect::tests::redirect;

    fn settings() -> Settings {
        crate::config::parse(
            Path::new("/etc/vc/collector.toml"),
            "[volvo]\nclient_id = \"abc\"\nclient_secret = \"s3cret\"\n",
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn matching_state_gives_the_code() {
        let cb = redirect("https://example.com/callback?code=c0de&state=good");
        assert_eq!(
            check_redirect(&cb, "good", &settings(), &settings().accounts[0])
                .unwrap()
                .expose(),
            "c0de"
        );
    }

    #[test]
    fn state_mismatch_is_refused_without_quoting_the_code() {
        for pasted in [
            "https://example.com/callback?code=c0de&state=evil",
            "https://example.com/callback?code=c0de",
        ] {
            let e = check_redirect(
                &redirect(pasted),
                "good",
                &settings(),
                &settings().accounts[0],
            )
            .unwrap_err();
            assert_eq!(e.code, ExitCode::LoginNeeded);
            assert!(e.message.contains("state mismatch"), "{}", e.message);
            assert!(
                !e.message.contains("c0de") && !e.message.contains('\n'),
                "{}",
                e.message
            );
        }
        // A forged error with the wrong state is a mismatch too, not taken at its word.
        let cb = redirect("https://example.com/cb?error=access_denied&state=evil");
        let e = check_redirect(&cb, "good", &settings(), &settings().accounts[0]).unwrap_err();
        assert!(e.message.contains("state mismatch"), "{}", e.message);
    }

    #[test]
    fn error_in_redirect_is_reported_on_one_line() {
        let cb = redirect(
            "https://example.com/cb?error=access_denied&error_description=User%20said%0Ano&state=good",
        );
        let e = check_redirect(&cb, "good", &settings(), &settings().accounts[0]).unwrap_err();
        assert_eq!(e.code, ExitCode::LoginNeeded);
        assert!(
            e.message.contains("access_denied: User said no"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("declined") && !e.message.contains('\n'),
            "{}",
            e.message
        );
        // Without a state, the error still says what happened.
        let cb = redirect("https://example.com/cb?error=invalid_scope");
        let e = check_redirect(&cb, "good", &settings(), &settings().accounts[0]).unwrap_err();
        assert!(
            e.message.contains("refused the login (invalid_scope)"),
            "{}",
            e.message
        );
        assert!(e.message.contains("printed above"), "{}", e.message);
        // An outage at Volvo ID is worth a retry later, not a fix.
        let cb = redirect("https://example.com/cb?error=temporarily_unavailable&state=good");
        let e = check_redirect(&cb, "good", &settings(), &settings().accounts[0]).unwrap_err();
        assert_eq!(e.code, ExitCode::Temporary);
        assert!(!e.message.contains("printed above"), "{}", e.message);
    }

    #[test]
    fn registration_problems() {
        assert!(is_registration_problem("invalid_grant", None));
        assert!(is_registration_problem(
            "invalid_request",
            Some("Redirect URI mismatch")
        ));
        assert!(!is_registration_problem("access_denied", None));
        assert!(!is_registration_problem("server_error", Some("try later")));
    }
}
