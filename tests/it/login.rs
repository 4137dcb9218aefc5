//! End-to-end `volvo-collect login` through the real binary against the real simulator, with
//! the test acting as the browser: the loopback listener, pasting the redirected URL or only
//! the code, a state mismatch, a declined login, a timeout, a rejected code, and the scopes
//! asked for. No secret may appear in what the login prints.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::json;
use url::Url;

const COMMAND_SCOPES: &[&str] = &[
    "conve:lock",
    "conve:unlock",
    "conve:engine_start_stop",
    "conve:honk_flash",
    "conve:climatization_start_stop",
];
const PAGE_OK: &str = "Logged in to volvo-collect; you may close this tab";

/// A loopback port nobody listens on (free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A workspace whose config has `redirect_uri`, and no token file yet.
fn login_workspace(sim: &Sim, redirect_uri: &str, rest: &str) -> Workspace {
    let ws = Workspace::new(sim, &format!("redirect_uri = \"{redirect_uri}\""), rest);
    std::fs::remove_file(ws.path("token.json")).unwrap();
    ws
}

/// A running `volvo-collect login`, its standard error read line by line as it comes.
struct Login {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    fn start(ws: &Workspace, args: &[&str], paste: bool) -> Login {
        let mut cmd = ws.command(&["login", "--no-browser"]);
        cmd.args(args)
            .stdin(if paste { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start volvo-collect login");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Login {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The authorize URL the login prints, on a line of its own.
    fn authorize_url(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with("http") && line.contains("/as/authorization.oauth2?") {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no authorize URL ({e:?}); printed so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn paste(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("started for pasting");
        stdin.write_all(format!("{text}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the login to end; its exit code and everything it printed.
    /// Standard input stays open, so a pasting login ends by itself, not by end of input.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "login did not end:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            match self.lines.recv_timeout(Duration::from_secs(5)) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("standard error stayed open"),
            }
        }
        (
            status.code().expect("exited, not killed"),
            self.seen.join("\n"),
        )
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET without following redirects: status, headers (lower-case names) and body.
fn get(url: &str) -> (u16, Vec<(String, String)>, String) {
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("test-browser")
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let resp = browser
        .get(url)
        .header(reqwest::header::CONNECTION, "close")
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    (status, headers, resp.text().unwrap())
}

/// What Volvo ID (the simulator) redirects the browser to, after approving the login.
fn approve(authorize_url: &str) -> String {
    let (status, headers, body) = get(authorize_url);
    assert!(
        (300..400).contains(&status),
        "authorize answered {status}: {body}"
    );
    headers
        .into_iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v)
        .expect("a Location header")
}

fn query(url: &str, key: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut u = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    u.query_pairs_mut().clear().extend_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), if k == key { value } else { v.as_str() })),
    );
    u.to_string()
}

/// Nothing secret in what the login printed: client secret, code, tokens.
fn assert_no_secrets(printed: &str, secrets: &[&str]) {
    for s in secrets.iter().chain(&["demo-secret"]) {
        assert!(!s.is_empty());
        assert!(!printed.contains(s), "a secret was printed:\n{printed}");
    }
}

/// The saved token: mode 0600, a refresh token, the login time, and the granted scopes.
fn assert_fresh_token(ws: &Workspace) -> serde_json::Value {
    let mode = mode(&ws.path("token.json"));
    assert_eq!(mode, 0o600);
    let t = ws.token();
    assert!(
        t["refresh_token"].as_str().unwrap().starts_with("sim-rt-"),
        "{t}"
    );
    assert!(
        t["access_token"].as_str().unwrap().starts_with("sim-at-"),
        "{t}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let logged_in = t["logged_in_at"].as_i64().expect("logged_in_at");
    assert!((now - 60..=now + 1).contains(&logged_in), "{t}");
    assert_eq!(t["refreshed_at"].as_i64(), Some(logged_in), "{t}");
    assert!(t["expires_at"].as_i64().unwrap() > now + 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert!(
        t["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "location:read"),
        "{t}"
    );
    t
}

#[test]
fn loopback_login_then_a_run_works() {
    let sim = Sim::start(&[]);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let ws = login_workspace(&sim, &redirect, "");
    let mut login = Login::start(&ws, &[], false);
    let url = login.authorize_url();
    assert!(
        url.starts_with(&format!("{}/as/authorization.oauth2?", sim.url)),
        "{url}"
    );
    assert_eq!(
        query(&url, "redirect_uri").as_deref(),
        Some(redirect.as_str())
    );
    assert_eq!(
        query(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query(&url, "state").is_some_and(|s| s.len() >= 16), "{url}");

    let location = approve(&url);
    assert!(location.starts_with(&format!("{redirect}?")), "{location}");
    let auth_code = query(&location, "code").expect("a code");
    // A stray request first (browsers ask for a favicon): answered, and the wait goes on.
    let (status, _, _) = get(&format!(
        "http://127.0.0.1:{}/favicon.ico",
        Url::parse(&redirect).unwrap().port().unwrap()
    ));
    assert_eq!(status, 404);
    let (status, headers, page) = get(&location);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(PAGE_OK), "{page}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "cache-control" && v == "no-store"),
        "{headers:?}"
    );

    let (exit, printed) = login.finish();
    assert_eq!(exit, 0, "{printed}");
    assert!(printed.contains("--once --stdout"), "{printed}");
    assert!(
        printed.contains("systemctl enable --now volvo-collect.timer"),
        "{printed}"
    );
    assert!(printed.contains("flock"), "{printed}");
    let t = assert_fresh_token(&ws);
    assert_no_secrets(
        &printed,
        &[
            &auth_code,
            t["access_token"].as_str().unwrap(),
            t["refresh_token"].as_str().unwrap(),
        ],
    );
    // The code was exchanged once, with the verifier that matches the challenge.
    let token_requests = sim.requests("/as/token.oauth2");
    assert_eq!(token_requests.len(), 1, "{token_requests:?}");
    assert_eq!(token_requests[0]["status"], 200);

    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("volvo_odometer_meters"));
    // The fresh access token was used as it is: no refresh needed.
    assert_eq!(sim.stats()["refreshes"], 0);
}

#[test]
fn pasted_redirect_url_and_pasted_code() {
    let sim = Sim::start(&[]);
    let ws = login_workspace(&sim, "https://example.com/callback", "");

    // The whole redirected URL, as copied from the address bar.
    let mut login = Login::start(&ws, &[], true);
    let location = approve(&login.authorize_url());
    assert!(
        location.starts_with("https://example.com/callback?"),
        "{location}"
    );
    login.paste(&location);
    let (exit, printed) = login.finish();
    assert_eq!(exit, 0, "{printed}");
    assert!(printed.contains("paste it here"), "{printed}");
    assert!(!printed.contains("cannot be checked"), "{printed}");
    let first = assert_fresh_token(&ws);
    assert_no_secrets(&printed, &[&query(&location, "code").unwrap()]);

    // Only the code: works, with a note that the state could not be checked. A slip first
    // (an empty line and nonsense) is asked again rather than ending the login.
    let mut login = Login::start(&ws, &[], true);
    let location = approve(&login.authorize_url());
    let auth_code = query(&location, "code").unwrap();
    login.paste("");
    login.paste("not a code");
    login.paste(&auth_code);
    let (exit, printed) = login.finish();
    assert_eq!(exit, 0, "{printed}");
    assert!(
        printed.contains("state of this login cannot be checked"),
        "{printed}"
    );
    assert!(
        printed.contains("paste the whole address again"),
        "{printed}"
    );
    let second = assert_fresh_token(&ws);
    assert_ne!(first["refresh_token"], second["refresh_token"]);
    assert_no_secrets(&printed, &[&auth_code]);
    // The previous token is kept as .bak.
    assert!(ws
        .read("token.json.bak")
        .contains(first["refresh_token"].as_str().unwrap()));
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
}

/// Guards the login against an answer that is not its own: a redirect with another state (an
/// older attempt's tab, a stray local request) is refused without exchanging its code, and
/// the login goes on waiting for its own (one such request used to end it with exit 77). A
/// pasted one ends the login, since the user chose it.
#[test]
fn a_state_mismatch_is_refused_and_the_login_waits_on() {
    let sim = Sim::start(&[]);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let ws = login_workspace(&sim, &redirect, "");
    let mut login = Login::start(&ws, &[], false);
    let location = approve(&login.authorize_url());
    let forged = with_query(&location, "state", "forged-state-value");
    let (status, _, page) = get(&forged);
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("state mismatch") && page.contains("still waits"),
        "{page}"
    );
    assert!(!ws.path("token.json").exists());
    assert!(
        sim.requests("/as/token.oauth2").is_empty(),
        "the code was exchanged anyway"
    );
    // The login goes on waiting: an old tab or a stray request does not end it, and the
    // real answer still logs in.
    let (status, _, page) = get(&location);
    assert_eq!(status, 200, "{page}");
    let (exit, printed) = login.finish();
    assert_eq!(exit, 0, "{printed}");
    assert!(printed.contains("state mismatch"), "{printed}");
    assert_fresh_token(&ws);
    assert_eq!(sim.requests("/as/token.oauth2").len(), 1);

    // Pasted, too.
    let ws = login_workspace(&sim, "https://example.com/callback", "");
    let mut login = Login::start(&ws, &[], true);
    let location = approve(&login.authorize_url());
    login.paste(&with_query(&location, "state", "forged"));
    let (exit, printed) = login.finish();
    assert_eq!(exit, 77, "{printed}");
    assert!(printed.contains("state mismatch"), "{printed}");
    assert!(!ws.path("token.json").exists());
}

#[test]
fn declined_login_says_access_denied() {
    let sim = Sim::start(&[]);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let ws = login_workspace(&sim, &redirect, "");
    sim.faults(json!([{"path": "/as/authorization.oauth2", "status": 302, "body": "access_denied", "times": 1}]));
    let mut login = Login::start(&ws, &[], false);
    let location = approve(&login.authorize_url());
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    let (status, _, page) = get(&location);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("access_denied"), "{page}");
    let (exit, printed) = login.finish();
    assert_eq!(exit, 77, "{printed}");
    let last = printed.lines().last().unwrap();
    assert!(
        last.contains("access_denied") && last.contains("declined"),
        "{printed}"
    );
    assert!(!ws.path("token.json").exists());
}

#[test]
fn nothing_arrives_before_the_timeout() {
    let sim = Sim::start(&[]);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let ws = login_workspace(&sim, &redirect, "");
    let started = Instant::now();
    let mut login = Login::start(&ws, &["--timeout", "1s"], false);
    login.authorize_url();
    let (exit, printed) = login.finish();
    assert_eq!(exit, 75, "{printed}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let last = printed.lines().last().unwrap();
    assert!(
        last.contains("timed out after 1s") && last.contains("--timeout"),
        "{printed}"
    );

    // The same when pasting and nothing comes.
    let ws = login_workspace(&sim, "https://example.com/callback", "");
    let mut login = Login::start(&ws, &["--timeout", "1s"], true);
    login.authorize_url();
    std::thread::sleep(Duration::from_millis(1500));
    let (exit, printed) = login.finish();
    assert_eq!(exit, 75, "{printed}");
    assert!(printed.contains("timed out after 1s"), "{printed}");
}

/// Guards the stop of a login that waits for the browser: SIGINT (Ctrl-C) or SIGTERM ends it
/// with 75 and says so. They are caught rather than left to their default action, which does
/// not apply to a container's first process: `podman run -it IMAGE login` ignored Ctrl-C.
#[test]
fn a_signal_ends_a_waiting_login() {
    let sim = Sim::start(&[]);
    for signal in ["-INT", "-TERM"] {
        let redirect = format!("http://127.0.0.1:{}/callback", free_port());
        let ws = login_workspace(&sim, &redirect, "");
        let mut login = Login::start(&ws, &["--timeout", "60s"], false);
        login.authorize_url();
        let sent = std::process::Command::new("kill")
            .args([signal, &login.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let (exit, printed) = login.finish();
        assert_eq!(exit, 75, "{signal}: {printed}");
        let last = printed.lines().last().unwrap();
        assert!(last.contains("login stopped by a signal"), "{printed}");
        assert!(!ws.path("token.json").exists());
    }
}

#[test]
fn rejected_code_says_what_to_register() {
    let sim = Sim::start(&[]);
    let ws = login_workspace(&sim, "https://example.com/callback", "");
    sim.faults(json!([{
        "path": "/as/token.oauth2",
        "status": 400,
        "body": "{\"error\":\"invalid_grant\",\"error_description\":\"redirect_uri does not match\"}",
        "times": 1
    }]));
    let mut login = Login::start(&ws, &[], true);
    let location = approve(&login.authorize_url());
    login.paste(&location);
    let (exit, printed) = login.finish();
    assert_eq!(exit, 77, "{printed}");
    assert!(
        printed.contains("this redirect URI: https://example.com/callback"),
        "{printed}"
    );
    assert!(
        printed.contains("these scopes:") && printed.contains("openid conve:vehicle_relation"),
        "{printed}"
    );
    // A default login asks for none of the retired Extended Vehicle's scopes.
    assert!(!printed.contains("exve:"), "{printed}");
    assert!(
        printed.lines().last().unwrap().contains("invalid_grant"),
        "{printed}"
    );
    assert!(!ws.path("token.json").exists());
}

/// Guards what a login asks for: read scopes only, and Extended Vehicle's `exve:*` scopes
/// only when `sources.extended_vehicle = true` says so (Volvo retired the API, and Volvo ID
/// refuses a whole login for a scope a new application could not register).
#[test]
fn login_asks_only_for_read_scopes() {
    let sim = Sim::start(&[]);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    for (rest, extended) in [
        ("", false),
        ("[sources]\nextended_vehicle = true\n", true),
        ("[sources]\nextended_vehicle = false\n", false),
    ] {
        let ws = login_workspace(&sim, &redirect, rest);
        let mut login = Login::start(&ws, &["--timeout", "30s"], false);
        let url = login.authorize_url();
        drop(login);
        let scope = query(&url, "scope").expect("a scope parameter");
        let scopes: Vec<&str> = scope.split(' ').collect();
        for cmd in COMMAND_SCOPES {
            assert!(
                !scopes.contains(cmd),
                "asked for the command scope {cmd}: {scope}"
            );
        }
        for read in [
            "openid",
            "conve:vehicle_relation",
            "conve:odometer_status",
            "energy:state:read",
            "location:read",
        ] {
            assert!(scopes.contains(&read), "{read} missing: {scope}");
        }
        assert_eq!(
            scopes.iter().any(|s| s.starts_with("exve:")),
            extended,
            "{scope}"
        );
    }
}
