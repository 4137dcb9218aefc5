//! Test harness: runs the real `volvo-collect` binary against the real built-in simulator
//! (started as `volvo-collect simulate` on a free loopback port), in a private folder with
//! its own config and token, and checks outputs with the real `promtool`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_volvo-collect");

/// The four sample cars: BEV, PHEV, petrol, diesel.
pub const BEV: &str = "YV1XZK9V0R2000001";
pub const PHEV: &str = "YV1BZ8ZP0M1000002";
pub const PETROL: &str = "YV1ZWA8U0P1000003";
pub const DIESEL: &str = "YV1LFA2D0K1000004";

/// A running `volvo-collect simulate`, killed when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .args(["simulate", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the simulator");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("simulator prints its address");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("address on the first line")
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line}"
        );
        Sim { child, url }
    }

    pub fn post(&self, path: &str, body: &str) -> String {
        http("POST", &format!("{}{path}", self.url), Some(body))
    }

    pub fn stats(&self) -> Value {
        serde_json::from_str(&http("GET", &format!("{}/_sim/stats", self.url), None)).unwrap()
    }

    /// A token pair this simulator accepts, as token-file JSON.
    pub fn token(&self, expired: bool) -> Value {
        serde_json::from_str(&self.post(&format!("/_sim/token?expired={expired}"), "")).unwrap()
    }

    /// Injects faults (see `simulator::Fault`).
    pub fn faults(&self, faults: Value) {
        self.post("/_sim/faults", &faults.to_string());
    }

    /// The GET requests the simulator has seen: the API calls, without the token endpoint's
    /// POSTs.
    pub fn gets(&self) -> Vec<Value> {
        self.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "GET")
            .cloned()
            .collect()
    }

    /// Requests the simulator has seen whose path contains `part`.
    pub fn requests(&self, part: &str) -> Vec<Value> {
        self.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().contains(part))
            .cloned()
            .collect()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with reqwest's blocking client, checked for a 2xx answer: the simulator's
/// control endpoints, and scraping test servers.
pub fn http(method: &str, url: &str, body: Option<&str>) -> String {
    let (status, text) = http_status(method, url, body, &[]);
    assert!(
        (200..300).contains(&status),
        "{method} {url}: HTTP {status}: {text}"
    );
    text
}

/// One request on a connection of its own (closed after the answer, as a fresh client would),
/// with no proxy and no time limit: (status, body). A body is sent as JSON.
pub fn http_status(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = client()
        .request(method.clone(), url)
        .header(reqwest::header::CONNECTION, "close");
    if let Some(body) = body {
        if !body.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        req = req.body(body.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = resp.status().as_u16();
    (status, resp.text().expect("a readable body"))
}

/// A blocking client for loopback test servers: no proxy from the environment, no time
/// limit (a test's own deadline decides), no kept-alive connections.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(None)
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client")
}

/// A private folder with a config pointing at a simulator and a token file.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// Config for `sim` with `extra` TOML appended to `[volvo]` (e.g. `vins = [...]`), and a
    /// token whose access token has expired (so the run refreshes first).
    pub fn new(sim: &Sim, volvo_extra: &str, rest: &str) -> Workspace {
        let ws = Workspace {
            dir: tempfile::tempdir().unwrap(),
        };
        let url = &sim.url;
        ws.write(
            "collector.toml",
            &format!(
                "[volvo]\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\ntoken_file = \"token.json\"\napi_url = \"{url}\"\nauth_url = \"{url}/as/authorization.oauth2\"\ntoken_url = \"{url}/as/token.oauth2\"\n{volvo_extra}\n{rest}\n"
            ),
        );
        ws.write("token.json", &sim.token(true).to_string());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            ws.path("token.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        ws
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn token(&self) -> Value {
        serde_json::from_str(&self.read("token.json")).unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.path("collector.toml"))
            .args(args);
        c.env("LOG_LEVEL", "info");
        c.env_remove("VOLVO_CLIENT_SECRET")
            .env_remove("VOLVO_API_KEY")
            .env_remove("CREDENTIALS_DIRECTORY");
        c
    }

    /// Runs `volvo-collect --config <ws>/collector.toml <args>` and waits.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run volvo-collect")
    }

    /// Runs `volvo-collect --config <ws>/collector.toml <args>` as if the time were `now`
    /// (Unix seconds): the simulator's clock is set to it too, as one machine's clock would be.
    pub fn run_at(&self, sim: &Sim, now: f64, args: &[&str]) -> Output {
        sim.post("/_sim/clock", &format!("{{\"now\": {now}}}"));
        self.command(args)
            .env("VOLVO_COLLECT_NOW", now.to_string())
            .output()
            .expect("run volvo-collect")
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts that a run's standard error says `text`, showing all of it when it does not.
pub fn assert_stderr_contains(o: &Output, text: &str) {
    let err = stderr(o);
    assert!(err.contains(text), "no {text:?} in:\n{err}");
}

/// Runs the real `promtool check metrics` on `text`; panics with its findings.
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package `prometheus`; the README's test command installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks what promtool does not: every series once, one HELP and TYPE per family, no
/// timestamps on samples, and samples only under their own family's header.
pub fn check_exposition(text: &str) {
    let mut series = std::collections::HashSet::new();
    let mut helps = std::collections::HashSet::new();
    let mut types = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helps.insert(name.to_string()), "HELP twice for {name}");
            current = name.to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(types.insert(name.to_string()), "TYPE twice for {name}");
        } else if !line.is_empty() {
            let (key, value) = split_sample(line);
            assert!(series.insert(key.to_string()), "duplicate series: {key}");
            let name = key.split('{').next().unwrap();
            assert_eq!(name, current, "sample outside its family: {line}");
            assert!(!value.contains(' '), "sample with a timestamp: {line}");
            let v: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}"));
            assert!(v.is_finite(), "non-finite value: {line}");
        }
    }
}

/// (series key, value) of a sample line; label values may contain spaces.
pub fn split_sample(line: &str) -> (&str, &str) {
    match line.rfind('}') {
        Some(i) => (&line[..=i], line[i + 1..].trim()),
        None => line.split_once(' ').map(|(k, v)| (k, v.trim())).unwrap(),
    }
}

/// The value of the series `key` (exact, e.g. `volvo_odometer_meters{vin="..."}`) in `text`.
pub fn value(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(split_sample)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.parse().unwrap())
}

/// Metric families whose values change from run to run (durations, wall-clock times, and the
/// day's budget, which depends on the time of day); the golden files hold `<dynamic>` in their
/// place.
pub const DYNAMIC: &[&str] = &[
    "volvo_collect_key_requests_allowed",
    "volvo_collect_key_requests_projected",
    "volvo_collect_api_duration_seconds",
    "volvo_collect_run_duration_seconds",
    "volvo_collect_run_timestamp_seconds",
    "volvo_collect_last_success_timestamp_seconds",
    "volvo_collect_access_token_expiry_timestamp_seconds",
    "volvo_collect_refresh_token_rotated_timestamp_seconds",
    "volvo_collect_login_timestamp_seconds",
    "volvo_collect_api_unavailable_until_timestamp_seconds",
];

pub fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            if !l.starts_with('#')
                && DYNAMIC
                    .iter()
                    .any(|d| l.starts_with(&format!("{d}{{")) || l.starts_with(&format!("{d} ")))
            {
                format!("{} <dynamic>", split_sample(l).0)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Compares `actual` with the golden file `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}: run the tests once with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "{} differs from this run ({} vs {} lines); first differences:\n{}\n(rewrite with UPDATE_GOLDEN=1 if the change is intended)",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Unix seconds now, with the fraction.
pub fn unix_now_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `scripts/bench --day <args>` with this build's binary, as its JSON figures: whole scripted
/// days of five-minute runs against the simulator.
pub fn bench_day(args: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/bench"))
        .args(["--day", "--no-build", "--json", "--bin"])
        .arg(BIN)
        .args(args)
        .current_dir(root)
        .output()
        .expect("python3 runs scripts/bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/bench --day {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

/// Waits for `child` at most `limit`; past it, kills it and fails the test, saying `what` it
/// should have done by then. A run that hangs then fails its test instead of stalling the suite.
pub fn wait_at_most(mut child: Child, limit: std::time::Duration, what: &str) -> Output {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {what}\n{}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `cmd` with its standard output a pipe that is closed before the program writes to
/// it (`| head` that has had enough), and waits.
pub fn with_stdout_closed(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}
