//! How Volvo ID's redirect reaches `login`: its parameters ([`Callback`]), the loopback
//! listener (a small axum router) used when `volvo.redirect_uri` is a plain-HTTP loopback URL,
//! and the pasted address or code read from standard input for any other redirect URI.
//!
//! The listener answers the browser only once the login is done, so the tab that brought the
//! code shows whether the token was saved; then it shuts down. Stray requests (a favicon, a
//! preconnect) are answered at once and do not end the wait.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::error::{ExitCode, Fatal};
use crate::secret::Secret;

/// How long the result page may take to reach the browser after the login is done; a
/// connection that is still open then (a silent preconnect) does not keep the login running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

// ---- the redirect's parameters ----------------------------------------------------------------

/// The parameters Volvo ID sends back on the redirect.
#[derive(Debug, Default)]
pub struct Callback {
    pub code: Option<Secret>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Callback {
    pub fn from_query(query: &str) -> Callback {
        let mut cb = Callback::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => cb.code = Some(Secret::new(v.into_owned())),
                "state" => cb.state = Some(v.into_owned()),
                "error" => cb.error = Some(v.into_owned()),
                "error_description" => cb.error_description = Some(v.into_owned()),
                _ => {}
            }
        }
        cb
    }

    /// Whether this is Volvo ID's answer at all, rather than some other request to the path.
    fn is_answer(&self) -> bool {
        self.code.is_some() || self.error.is_some() || self.state.is_some()
    }
}

// ---- the loopback listener ----------------------------------------------------------------------

/// The addresses to listen on when `uri` is a plain-HTTP loopback URL (127.0.0.0/8, `[::1]`,
/// `localhost`); `None` for anything else, which is then pasted by the user.
pub fn loopback_addrs(uri: &Url) -> Option<Vec<SocketAddr>> {
    if uri.scheme() != "http" {
        return None;
    }
    let port = uri.port_or_known_default()?;
    let ips: Vec<IpAddr> = match uri.host()? {
        url::Host::Ipv4(ip) if ip.is_loopback() => vec![ip.into()],
        url::Host::Ipv6(ip) if ip.is_loopback() => vec![ip.into()],
        // The browser may resolve `localhost` to either family.
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        _ => return None,
    };
    Some(
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
    )
}

/// The bound sockets of the redirect URI. Bound before the authorize URL is shown, so a port
/// that is taken is reported before the user logs in.
pub struct Listener {
    sockets: Vec<TcpListener>,
}

impl Listener {
    /// Binds every address of `redirect`; one that binds is enough (`localhost` may lack IPv6).
    pub async fn bind(addrs: &[SocketAddr], redirect: &Url) -> Result<Listener, Fatal> {
        let mut sockets = Vec::new();
        let mut last_error = None;
        for addr in addrs {
            match TcpListener::bind(addr).await {
                Ok(l) => sockets.push(l),
                Err(e) => last_error = Some((*addr, e)),
            }
        }
        match (sockets.is_empty(), last_error) {
            (true, Some((addr, e))) => Err(Fatal::config(format!(
                "cannot listen on {addr} for Volvo ID's redirect to {redirect} (volvo.redirect_uri): {e}; stop what uses that port, or choose another port in volvo.redirect_uri and register that URI in Volvo's developer portal"
            ))),
            _ => Ok(Listener { sockets }),
        }
    }

    /// Serves `path` until Volvo ID's answer for this login arrives or `deadline` passes. The
    /// answer comes with its [`Reply`], through which the login sends the browser its result
    /// page. An answer that is not this login's (`ours` says no: an older attempt's tab, or a
    /// forged request) is refused with `refused`'s page, and the wait goes on.
    pub async fn wait(
        self,
        path: &str,
        (deadline, timeout): (Instant, Duration),
        ours: impl Fn(&Callback) -> bool,
        refused: impl Fn() -> Page,
    ) -> Result<(Callback, Reply), Fatal> {
        let (answers, mut arrived) = mpsc::channel(1);
        let (stop, stopped) = watch::channel(false);
        let app = Router::new()
            .route(path, any(redirected))
            .fallback(not_found)
            .with_state(answers);
        let mut servers = JoinSet::new();
        for socket in self.sockets {
            let mut stopped = stopped.clone();
            let app = app.clone();
            servers.spawn(async move {
                let _ = axum::serve(socket, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await;
            });
        }
        let answer = async {
            loop {
                let (callback, page) = arrived.recv().await?;
                if ours(&callback) {
                    return Some((callback, page));
                }
                eprintln!("A redirect that is not this login's was refused (state mismatch); still waiting for the newest login's.");
                let _ = page.send(refused());
            }
        };
        let waited = tokio::time::timeout_at(deadline, answer).await;
        // The login takes one answer only; later ones are told so.
        drop(arrived);
        match waited {
            Ok(Some((callback, page))) => Ok((
                callback,
                Reply {
                    page,
                    stop,
                    servers,
                },
            )),
            Ok(None) => Err(Fatal::new(
                ExitCode::Temporary,
                "the redirect listener stopped before Volvo ID's answer arrived; run `volvo-collect login` again",
            )),
            Err(_) => Err(Fatal::new(
                ExitCode::Temporary,
                format!(
                    "timed out after {}: no redirect from Volvo ID arrived; run `volvo-collect login` again (with a longer --timeout if you need more time)",
                    humantime::format_duration(timeout)
                ),
            )),
        }
    }
}

/// What the handler of Volvo ID's answer waits for: the page that ends the login.
type Answer = (Callback, oneshot::Sender<Page>);

/// The browser's request that brought the answer, still waiting for its page.
pub struct Reply {
    page: oneshot::Sender<Page>,
    stop: watch::Sender<bool>,
    servers: JoinSet<()>,
}

impl Reply {
    /// Answers the browser with `page` and stops listening once the page is sent (or after a
    /// short grace, for a connection that stays open).
    pub async fn send(mut self, page: Page) {
        let _ = self.page.send(page);
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.servers.join_next().await.is_some() {}
        })
        .await;
    }
}

async fn redirected(
    State(answers): State<mpsc::Sender<Answer>>,
    method: Method,
    RawQuery(query): RawQuery,
) -> Page {
    // HEAD too: a probe must not be taken for the browser that brings the code.
    if method != Method::GET {
        return Page::error(StatusCode::METHOD_NOT_ALLOWED, "Only GET is served here.");
    }
    let callback = Callback::from_query(query.as_deref().unwrap_or_default());
    if !callback.is_answer() {
        return Page::error(
            StatusCode::BAD_REQUEST,
            "This address carries no answer from Volvo ID (no code, error or state).",
        );
    }
    let (page, result) = oneshot::channel();
    if answers.send((callback, page)).await.is_ok() {
        if let Ok(page) = result.await {
            return page;
        }
    }
    Page::error(
        StatusCode::CONFLICT,
        "This login has already received Volvo ID's answer; the terminal says how it went.",
    )
}

async fn not_found() -> Page {
    Page::error(
        StatusCode::NOT_FOUND,
        "This is volvo-collect's login listener; it waits for Volvo ID's redirect only.",
    )
}

/// The small HTML page the browser shows.
pub struct Page {
    status: StatusCode,
    title: &'static str,
    text: String,
}

impl Page {
    pub fn ok() -> Page {
        Page {
            status: StatusCode::OK,
            title: "Logged in to volvo-collect; you may close this tab",
            text: "The token is saved. The terminal says what to do next.".into(),
        }
    }

    pub fn failed(message: &str) -> Page {
        Page {
            status: StatusCode::BAD_REQUEST,
            title: "volvo-collect login failed",
            text: format!("{message}. The terminal says more."),
        }
    }

    /// For an answer that is not the login's under way, which still waits.
    pub fn not_ours(message: &str) -> Page {
        Page {
            status: StatusCode::BAD_REQUEST,
            title: "Not the answer volvo-collect is waiting for",
            text: format!(
                "{message}. The login under way still waits: finish it in the tab of its newest URL."
            ),
        }
    }

    fn error(status: StatusCode, text: &str) -> Page {
        Page {
            status,
            title: "volvo-collect login",
            text: text.into(),
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let body = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>volvo-collect</title></head>\n<body><h1>{}</h1>\n<p>{}</p></body></html>\n",
            html_escape(self.title),
            html_escape(&self.text)
        );
        (
            self.status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // no-store and no-referrer: the address that led here carries the code.
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
                // One request per connection, so shutting down waits for no idle browser.
                (header::CONNECTION, "close"),
            ],
            body,
        )
            .into_response()
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---- pasting ------------------------------------------------------------------------------------

/// What the user pasted: the redirected URL (or its query), or only the code.
#[derive(Debug)]
pub enum Pasted {
    Redirect(Callback),
    BareCode(Secret),
}

/// Reads a pasted redirect URL, a pasted query string (`code=...&state=...`), or a bare code.
fn parse_pasted(input: &str) -> Result<Pasted, String> {
    let text = input
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '<' || c == '>')
        .trim();
    if text.is_empty() {
        return Err("nothing was pasted".into());
    }
    let query = if text.contains("://") {
        let url = Url::parse(text).map_err(|e| format!("the pasted address is not a URL ({e})"))?;
        url.query().unwrap_or_default().to_string()
    } else if text.contains('=') {
        text.trim_start_matches('?').to_string()
    } else {
        let ok = text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '&' | '?' | '#' | '/'));
        if !ok {
            return Err("that is neither the address the browser went to nor a code".into());
        }
        return Ok(Pasted::BareCode(Secret::new(text)));
    };
    let callback = Callback::from_query(&query);
    if callback.code.is_none() && callback.error.is_none() {
        return Err("the pasted address has no code= (nor error=) in it: paste the whole address the browser went to after you logged in".into());
    }
    Ok(Pasted::Redirect(callback))
}

/// Reads lines until one parses; a line that does not parse is explained and asked again, so
/// a slip at the terminal does not cost a new login.
pub async fn read_pasted(deadline: Instant, timeout: Duration) -> Result<Pasted, Fatal> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut last_problem = None;
    loop {
        let line = match tokio::time::timeout_at(deadline, pasted_line(&mut stdin)).await {
            Err(_) => {
                return Err(Fatal::new(
                    ExitCode::Temporary,
                    format!(
                        "timed out after {}: nothing usable was pasted; run `volvo-collect login` again (with a longer --timeout if you need more time)",
                        humantime::format_duration(timeout)
                    ),
                ))
            }
            Ok(Err(e)) => {
                return Err(Fatal::login(format!(
                    "cannot read standard input: {e}; run `volvo-collect login` again"
                )))
            }
            Ok(Ok(None)) => {
                let why = last_problem.map(|p| format!(" ({p})")).unwrap_or_default();
                return Err(Fatal::login(format!(
                    "standard input ended without the redirected address or code{why}; run `volvo-collect login` again"
                )));
            }
            Ok(Ok(Some(Err(problem)))) => {
                eprintln!("{problem}; paste the whole address again:");
                last_problem = Some(problem);
                continue;
            }
            Ok(Ok(Some(Ok(line)))) => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_pasted(&line) {
            Ok(p) => return Ok(p),
            Err(problem) => {
                eprintln!("{problem}; paste the whole address again:");
                last_problem = Some(problem);
            }
        }
    }
}

/// The longest line read as a pasted address: far above any redirect Volvo ID makes.
const PASTE_MAX: u64 = 16 * 1024;

/// The next line of `input`, without its line break; `None` at the end. A line longer than
/// [`PASTE_MAX`] is read past (never held whole: `login < /dev/zero` must not fill the
/// memory) and is a problem to report.
async fn pasted_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
) -> std::io::Result<Option<Result<String, String>>> {
    let mut buf = Vec::new();
    if (&mut *input)
        .take(PASTE_MAX + 1)
        .read_until(b'\n', &mut buf)
        .await?
        == 0
    {
        return Ok(None);
    }
    if buf.len() as u64 > PASTE_MAX && !buf.ends_with(b"\n") {
        loop {
            buf.clear();
            let n = (&mut *input)
                .take(PASTE_MAX)
                .read_until(b'\n', &mut buf)
                .await?;
            if n == 0 || buf.ends_with(b"\n") {
                break;
            }
        }
        return Ok(Some(Err(format!(
            "the pasted line is longer than any address from Volvo ID (over {} KiB)",
            PASTE_MAX / 1024
        ))));
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(Some(Ok(text.trim_end_matches(['\n', '\r']).to_string())))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// This login's answers carry the state `s`.
    fn ours(cb: &Callback) -> bool {
        cb.state.as_deref() == Some("s")
    }

    fn stale() -> Page {
        Page::not_ours("state mismatch")
    }

    /// The callback in a pasted redirect, for tests that check it.
    pub fn redirect(pasted: &str) -> Callback {
        match parse_pasted(pasted).unwrap() {
            Pasted::Redirect(cb) => cb,
            Pasted::BareCode(_) => panic!("{pasted} read as a bare code"),
        }
    }

    #[test]
    fn pasted_redirect_url_gives_code_and_state() {
        let cb = redirect("  https://example.com/callback?code=Ab-12_x&state=st4te\n");
        assert_eq!(cb.code.unwrap().expose(), "Ab-12_x");
        assert_eq!(cb.state.as_deref(), Some("st4te"));
        // Quoted, or only the query part.
        let cb = redirect("\"https://example.com/callback?state=s&code=c%2Bd\"");
        assert_eq!(cb.code.unwrap().expose(), "c+d");
        let cb = redirect("?code=c&state=s");
        assert_eq!(cb.code.unwrap().expose(), "c");
    }

    #[test]
    fn pasted_bare_code() {
        match parse_pasted("  Zx9-abc_DEF.1~ \n").unwrap() {
            Pasted::BareCode(c) => assert_eq!(c.expose(), "Zx9-abc_DEF.1~"),
            Pasted::Redirect(_) => panic!("read as a redirect"),
        }
    }

    #[test]
    fn pasted_nonsense_is_refused() {
        assert!(parse_pasted("   ").is_err());
        assert!(parse_pasted("two words").is_err());
        let e = parse_pasted("https://example.com/callback").unwrap_err();
        assert!(e.contains("no code="), "{e}");
        assert!(parse_pasted("https://exa mple.com/?code=1").is_err());
    }

    #[test]
    fn loopback_detection() {
        let addrs = |u: &str| loopback_addrs(&Url::parse(u).unwrap());
        assert_eq!(
            addrs("http://127.0.0.1:8765/callback"),
            Some(vec!["127.0.0.1:8765".parse().unwrap()])
        );
        assert_eq!(
            addrs("http://[::1]:9000/cb"),
            Some(vec!["[::1]:9000".parse().unwrap()])
        );
        assert_eq!(
            addrs("http://LOCALHOST:8765/cb"),
            Some(vec![
                "127.0.0.1:8765".parse().unwrap(),
                "[::1]:8765".parse().unwrap()
            ])
        );
        assert_eq!(
            addrs("http://127.0.0.1/cb"),
            Some(vec!["127.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(addrs("https://127.0.0.1:8765/cb"), None);
        assert_eq!(addrs("https://example.com/callback"), None);
        assert_eq!(addrs("http://192.168.1.2:8765/cb"), None);
        assert_eq!(addrs("http://localhost.example.com:8765/cb"), None);
    }

    /// Guards the listener's manners: strays, other methods and another login's answer are
    /// answered at once and do not end the wait; the answer's page comes only when the login is done; a second
    /// answer is told the login has one.
    #[tokio::test]
    async fn listener_waits_for_the_answer_and_answers_it_last() {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", socket.local_addr().unwrap());
        let listener = Listener {
            sockets: vec![socket],
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let waiting = tokio::spawn(async move {
            listener
                .wait(
                    "/callback",
                    (deadline, Duration::from_secs(30)),
                    ours,
                    stale,
                )
                .await
        });
        let http = reqwest::Client::new();
        let stray = http
            .get(format!("{base}/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(stray.status(), StatusCode::NOT_FOUND);
        let head = http
            .head(format!("{base}/callback?code=c&state=s"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
        let empty = http.get(format!("{base}/callback")).send().await.unwrap();
        assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
        let foreign = http
            .get(format!("{base}/callback?code=x&state=older"))
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
        assert!(foreign.text().await.unwrap().contains("state mismatch"));
        assert!(!waiting.is_finished());

        let browser = tokio::spawn(
            http.get(format!("{base}/callback?code=c0de&state=s"))
                .send(),
        );
        let (callback, reply) = waiting.await.unwrap().unwrap();
        assert_eq!(callback.code.unwrap().expose(), "c0de");
        let late = http
            .get(format!("{base}/callback?code=other&state=s"))
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), StatusCode::CONFLICT);
        assert!(!browser.is_finished());
        reply.send(Page::ok()).await;
        let page = browser.await.unwrap().unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
        assert!(page.text().await.unwrap().contains("Logged in"));
        // Shut down: nothing listens any more.
        assert!(http.get(format!("{base}/callback")).send().await.is_err());
    }

    #[tokio::test]
    async fn nothing_arriving_times_out() {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = Listener {
            sockets: vec![socket],
        };
        let deadline = Instant::now() + Duration::from_millis(50);
        let e = match listener
            .wait(
                "/callback",
                (deadline, Duration::from_millis(50)),
                ours,
                stale,
            )
            .await
        {
            Err(e) => e,
            Ok(_) => panic!("an answer arrived"),
        };
        assert_eq!(e.code, ExitCode::Temporary);
        assert!(e.message.contains("timed out after 50ms"), "{}", e.message);
    }

    /// Guards the paste against an endless or huge line: it is read past in bounded pieces
    /// and reported, and the next line is read as usual.
    #[tokio::test]
    async fn a_pasted_line_is_bounded() {
        let long = "x".repeat(20 * 1024);
        let text = format!("short\n{long}\nnext\r\n");
        let mut input = text.as_bytes();
        assert_eq!(
            pasted_line(&mut input).await.unwrap(),
            Some(Ok("short".into()))
        );
        let e = pasted_line(&mut input).await.unwrap().unwrap().unwrap_err();
        assert!(e.contains("longer than any address"), "{e}");
        assert_eq!(
            pasted_line(&mut input).await.unwrap(),
            Some(Ok("next".into()))
        );
        assert_eq!(pasted_line(&mut input).await.unwrap(), None);
    }

    #[test]
    fn page_escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn debug_output_hides_the_code() {
        let cb = Callback::from_query("code=hidden-c0de&state=s");
        assert!(!format!("{cb:?}").contains("hidden-c0de"));
        let p = parse_pasted("hidden-c0de").unwrap();
        assert!(!format!("{p:?}").contains("hidden-c0de"));
    }
}
