//! Delivery end to end: the real `volvo-collect` binary, collecting from the real simulator,
//! hands its exposition to the real Prometheus programs (Debian's `prometheus-pushgateway`,
//! `prometheus-node-exporter` and `prometheus`), and each test reads back what those programs
//! hold. Covered: the Pushgateway (group replacement, grouping labels, basic auth and HTTPS
//! with a private CA, an unreachable gateway), node_exporter's textfile collector (every
//! sample, atomic replacement under concurrent readers), remote write into Prometheus (and
//! which answers are retried), all outputs at once, the long-running mode's listener
//! (basic auth, TLS, scraped by Prometheus, SIGTERM, and its bounds against idle, slow and
//! flooding connections) and the last good run staying visible.
//!
//! Every server runs on a free loopback port in a temporary folder and is killed on drop. A
//! missing program fails the test with the Debian package to install.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

const ALL_VINS: [&str; 4] = [BEV, PHEV, PETROL, DIESEL];

// ---- programs and servers ------------------------------------------------------------------

/// Fails the test (never skips it) when `program` is not on the PATH, naming its package.
fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|dir| {
                std::fs::metadata(dir.join(program))
                    .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is needed by this test and is not on the PATH: install the Debian package \
         `{package}` (apt-get install --no-install-recommends {package}); scripts/test installs \
         it when run as root"
    );
}

/// A free TCP port on loopback (bound, then released for the program to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Polls `f` every 25 ms until it gives a value; fails with `what` after `timeout`.
fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A server process on a loopback port, with its output in a log file; killed when dropped.
struct Server {
    name: String,
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `make(port)` on a free port and waits (at most 15 s) until `ready(port)`. A
    /// program that exits at once (the port was taken meanwhile) is tried again on another.
    /// `dir` (removed with the server) holds its log and whatever else it needs.
    fn start(
        name: &str,
        dir: tempfile::TempDir,
        make: impl Fn(u16) -> Command,
        ready: impl Fn(u16) -> bool,
    ) -> Server {
        let log = dir.path().join("log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let file = File::create(&log).unwrap();
            let mut child = make(port)
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    last = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        last.to_ascii_lowercase().contains("address already in use"),
                        "{name} exited with {status} before it was ready:\n{last}"
                    );
                    break;
                }
                if ready(port) {
                    return Server {
                        name: name.to_string(),
                        child,
                        port,
                        log,
                        _dir: dir,
                    };
                }
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{name} was not ready within 15 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("{name} found no free port in 5 attempts:\n{last}");
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits at most `within` for the exit.
    fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        require("kill", "procps");
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < within,
                "{} still running {within:?} after SIGTERM:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then exit 0 `within` the given time.
    fn stops_cleanly(&mut self, within: Duration) {
        let status = self.terminate(within);
        assert_eq!(status.code(), Some(0), "{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small HTTP(S) client for reading back from the servers (basic auth, a private CA).
struct Http {
    client: reqwest::blocking::Client,
}

impl Http {
    fn new(ca: Option<&Path>) -> Http {
        let mut b = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy();
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).unwrap();
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        Http {
            client: b.build().unwrap(),
        }
    }

    fn plain() -> Http {
        Http::new(None)
    }

    /// (status, body), or the transport error.
    fn get(&self, url: &str, auth: Option<(&str, &str)>) -> Result<(u16, String), String> {
        let mut req = self.client.get(url);
        if let Some((user, password)) = auth {
            req = req.basic_auth(user, Some(password));
        }
        let resp = req.send().map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().map_err(|e| format!("{e:?}"))?;
        Ok((status, body))
    }

    /// The body of a GET that must answer 200.
    fn ok(&self, url: &str, auth: Option<(&str, &str)>) -> String {
        match self.get(url, auth) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("GET {url}: HTTP {status}: {body}"),
            Err(e) => panic!("GET {url}: {e}"),
        }
    }

    fn answers_200(&self, url: &str, auth: Option<(&str, &str)>) -> bool {
        matches!(self.get(url, auth), Ok((200, _)))
    }
}

fn pushgateway() -> Server {
    require("prometheus-pushgateway", "prometheus-pushgateway");
    let http = Http::plain();
    Server::start(
        "prometheus-pushgateway",
        tempfile::tempdir().unwrap(),
        |port| {
            let mut c = Command::new("prometheus-pushgateway");
            c.arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--persistence.file=");
            c
        },
        |port| http.answers_200(&format!("http://127.0.0.1:{port}/-/ready"), None),
    )
}

/// A Prometheus with `config` (YAML), accepting remote write.
fn prometheus(config: &str) -> Server {
    require("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let http = Http::plain();
    let root = dir.path().to_path_buf();
    Server::start(
        "prometheus",
        dir,
        |port| {
            let data = root.join(format!("data-{port}"));
            let mut c = Command::new("prometheus");
            c.arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver");
            c
        },
        |port| http.answers_200(&format!("http://127.0.0.1:{port}/-/ready"), None),
    )
}

/// A Prometheus that only receives remote write: no scrape jobs.
fn prometheus_receiver() -> Server {
    prometheus("global:\n  scrape_interval: 15s\n")
}

/// `/api/v1/query?query=q` on a Prometheus: (labels, value) per series.
fn query(prom: &Server, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let body = Http::plain().ok(
        &format!("{}/api/v1/query?query={q}", prom.url("http")),
        None,
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (labels, parse_value(r["value"][1].as_str().unwrap()))
        })
        .collect()
}

/// A Prometheus query polled until it gives `n` series (at most 15 s).
fn query_until(prom: &Server, q: &str, n: usize) -> Vec<(BTreeMap<String, String>, f64)> {
    let start = Instant::now();
    loop {
        let found = query(prom, q);
        if found.len() == n {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{q}: expected {n} series, Prometheus has {}: {found:?}\n{}",
            found.len(),
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP request as read: head, body.
type Request = (String, Vec<u8>);

/// An HTTP server that answers every request with `status`, and keeps the requests it read.
struct Canned {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canned {
    fn start(status: u16) -> Canned {
        Canned::serve(status, false, None)
    }

    /// One that answers every request with a 302 to `to`.
    fn redirecting(to: String) -> Canned {
        Canned::serve(302, false, Some(to))
    }

    /// One that answers with the request's first line in its body, as some servers do.
    fn echoing(status: u16) -> Canned {
        Canned::serve(status, true, None)
    }

    fn serve(status: u16, echo: bool, location: Option<String>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                // Read the whole request, so that closing never resets the connection.
                let Some(request) = read_request(&mut conn) else {
                    continue;
                };
                r.lock().unwrap().push(request.clone());
                let _ = if status == 204 {
                    write!(conn, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                } else {
                    let body = match request.0.lines().next() {
                        Some(line) if echo => format!("echo: {line}\n"),
                        _ => format!("canned answer {status}\n"),
                    };
                    let location = location
                        .as_ref()
                        .map(|to| format!("Location: {to}\r\n"))
                        .unwrap_or_default();
                    write!(
                        conn,
                        "HTTP/1.1 {status} Canned\r\n{location}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = conn.flush();
            }
        });
        Canned {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request: its head, and its `Content-Length` body.
fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + length].to_vec()))
}

/// The Pushgateway's command line on `port`, with the web configuration `web` (TLS, auth).
fn pushgateway_with(web: &Path, port: u16) -> Command {
    let mut c = Command::new("prometheus-pushgateway");
    c.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--persistence.file=")
        .arg(format!("--web.config.file={}", web.display()));
    c
}

/// A private CA and a server certificate for IP 127.0.0.1, made with the `openssl` CLI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        require("openssl", "openssl");
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(
            pki.path("openssl.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n\
             [dn]\nCN = volvo-collect test CA\n\
             [ca_ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n\
             [server_ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        pki.openssl(
            &[
                "req",
                "-x509",
                "-config",
                "openssl.cnf",
                "-extensions",
                "ca_ext",
            ],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        );
        pki.openssl(
            &[
                "req",
                "-new",
                "-config",
                "openssl.cnf",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
        );
        pki.openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
            ],
            &["-CAcreateserial", "-days", "2", "-extfile", "openssl.cnf"],
            &["-extensions", "server_ext", "-out", "server.pem"],
        );
        pki
    }

    fn openssl(&self, a: &[&str], b: &[&str], c: &[&str]) {
        let out = Command::new("openssl")
            .args(a)
            .args(b)
            .args(c)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {a:?} {b:?} {c:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    fn cert(&self) -> PathBuf {
        self.path("server.pem")
    }

    fn key(&self) -> PathBuf {
        self.path("server.key")
    }
}

fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

// ---- the binary ----------------------------------------------------------------------------

/// `ws.command(args)`, kept on loopback whatever proxy the environment names.
fn collector(ws: &Workspace, args: &[&str]) -> Command {
    let mut c = ws.command(args);
    for var in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(ws: &Workspace, args: &[&str]) -> Output {
    collector(ws, args).output().expect("run volvo-collect")
}

/// Runs and expects exit 0; returns stdout.
fn run_ok(ws: &Workspace, args: &[&str]) -> String {
    let o = run(ws, args);
    assert_eq!(code(&o), 0, "volvo-collect {args:?}:\n{}", stderr(&o));
    stdout(&o)
}

/// A double-quoted string literal, valid in TOML and YAML alike.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn quoted_path(p: &Path) -> String {
    quoted(&p.display().to_string())
}

// ---- expositions ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_value(v: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => v
            .parse()
            .unwrap_or_else(|_| panic!("not a sample value: {v:?}")),
    }
}

/// Every sample of a text-format exposition, labels unescaped.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (key, value) = split_sample(line);
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest, line)),
                None => (key, BTreeMap::new()),
            };
            Sample {
                name: name.to_string(),
                labels,
                value: parse_value(value),
            }
        })
        .collect()
}

/// `a="x",b="y\"z"}` into a map.
fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        match chars.peek() {
            Some('}') | None => break,
            Some(',') | Some(' ') => {
                chars.next();
                continue;
            }
            _ => {}
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "bad labels in {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("bad escape in {line}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        }
        labels.insert(name.trim().to_string(), value);
    }
    labels
}

type SeriesMap = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn series_map(samples: &[Sample]) -> SeriesMap {
    samples
        .iter()
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect()
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Every sample of `expected` is in `found` with the labels `added` on top and the same
/// value; lists what is missing or different.
fn assert_all_present(expected: &[Sample], found: &[Sample], added: &[(&str, &str)], what: &str) {
    assert!(!expected.is_empty(), "{what}: nothing expected");
    let found = series_map(found);
    let mut problems = Vec::new();
    for s in expected {
        let mut labels = s.labels.clone();
        for (k, v) in added {
            labels.insert(k.to_string(), v.to_string());
        }
        match found.get(&(s.name.clone(), labels)) {
            None => problems.push(format!("missing: {s:?}")),
            Some(v) if !same_value(*v, s.value) => {
                problems.push(format!("value {v} instead of {}: {s:?}", s.value))
            }
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} of {} samples missing or different; first ones:\n{}",
        problems.len(),
        expected.len(),
        problems[..problems.len().min(10)].join("\n")
    );
}

/// The samples of one Pushgateway group (those carrying every label of `grouping`), without
/// the Pushgateway's own push_time_seconds / push_failure_time_seconds, and with the
/// grouping labels taken off again.
fn group_samples(scraped: &[Sample], grouping: &[(&str, &str)]) -> Vec<Sample> {
    scraped
        .iter()
        .filter(|s| s.name != "push_time_seconds" && s.name != "push_failure_time_seconds")
        .filter(|s| {
            grouping
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| {
            let mut s = s.clone();
            for (k, _) in grouping {
                s.labels.remove(*k);
            }
            s
        })
        .collect()
}

/// The Pushgateway's group `grouping` holds exactly the samples of `stdout`, same values.
fn assert_group_is(pg_metrics: &str, grouping: &[(&str, &str)], stdout: &str) {
    let scraped = samples(pg_metrics);
    let expected = samples(stdout);
    assert_all_present(&expected, &scraped, grouping, "Pushgateway");
    let group = group_samples(&scraped, grouping);
    let expected = series_map(&expected);
    let stale: Vec<_> = group
        .iter()
        .filter(|s| !expected.contains_key(&(s.name.clone(), s.labels.clone())))
        .take(10)
        .collect();
    assert!(
        stale.is_empty(),
        "the Pushgateway group {grouping:?} holds series the run did not push: {stale:?}"
    );
    assert!(
        scraped.iter().any(|s| s.name == "push_time_seconds"
            && s.labels.len() == grouping.len()
            && grouping
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))),
        "no push_time_seconds with exactly the grouping key {grouping:?}"
    );
}

/// Samples as Prometheus stores them: a label with an empty value is no label at all.
fn without_empty_labels(samples: Vec<Sample>) -> Vec<Sample> {
    samples
        .into_iter()
        .map(|mut s| {
            s.labels.retain(|_, v| !v.is_empty());
            s
        })
        .collect()
}

fn odometers(text: &str) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter(|s| s.name == "volvo_odometer_meters")
        .map(|s| (s.labels["vin"].clone(), s.value))
        .collect()
}

// ---- 1. Pushgateway ------------------------------------------------------------------------

/// Guards the Pushgateway output: every sample of the run reaches the gateway with its value,
/// and a later push replaces the whole group, so the series of cars no longer collected do not
/// linger there.
#[test]
fn pushgateway_holds_every_sample_and_a_push_replaces_the_group() {
    let sim = Sim::start(&[]);
    let pg = pushgateway();
    let url = pg.url("http");
    let metrics = format!("{url}/metrics");
    let http = Http::plain();
    let grouping = [("job", "volvo_collect"), ("instance", "")];

    let ws = Workspace::new(&sim, "", "");
    let out = run_ok(&ws, &["--once", "--stdout", "--pushgateway", &url]);
    assert_eq!(odometers(&out).len(), 4, "{out}");
    assert_group_is(&http.ok(&metrics, None), &grouping, &out);

    let one = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let out = run_ok(&one, &["--once", "--stdout", "--pushgateway", &url]);
    let scraped = http.ok(&metrics, None);
    assert_group_is(&scraped, &grouping, &out);
    for vin in [PHEV, PETROL, DIESEL] {
        assert!(
            !scraped.contains(vin),
            "a series of {vin} survived the push that replaced the group"
        );
    }
    assert!(scraped.contains(BEV));
}

/// Guards the grouping key: `[pushgateway] job` and `grouping` (including a value with `/`,
/// which needs the gateway's base64 path form) become the group's labels.
#[test]
fn pushgateway_grouping_labels_come_from_the_configuration() {
    let sim = Sim::start(&[]);
    let pg = pushgateway();
    let url = pg.url("http");
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{PETROL}\"]"),
        "[pushgateway]\njob = \"cars\"\ngrouping = { instance = \"home\", site = \"a/b\" }\n",
    );
    let out = run_ok(&ws, &["--once", "--stdout", "--pushgateway", &url]);
    let scraped = Http::plain().ok(&format!("{url}/metrics"), None);
    assert_group_is(
        &scraped,
        &[("job", "cars"), ("instance", "home"), ("site", "a/b")],
        &out,
    );
    assert!(
        !scraped.contains("job=\"volvo_collect\""),
        "the default job was used as well"
    );
}

/// Guards the failure of one output: an unreachable Pushgateway is exit 74 naming it, and the
/// textfile of the same run is still written.
#[test]
fn pushgateway_down_exits_74_and_the_textfile_is_still_written() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let prom = ws.path("volvo.prom");
    let o = run(
        &ws,
        &[
            "--once",
            "--textfile",
            prom.to_str().unwrap(),
            "--pushgateway",
            &closed,
        ],
    );
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    // One line that names the output, what was tried where, and the cause.
    let expected = format!(
        "output pushgateway failed: pushing to the Pushgateway at {closed}/: connection failed"
    );
    assert!(
        stderr(&o).lines().any(|l| l.contains(&expected)),
        "{}",
        stderr(&o)
    );
    let file = std::fs::read_to_string(&prom).expect("the textfile was not written");
    assert_eq!(odometers(&file).len(), 4, "{file}");
    promtool_check(&file);
}

/// Guards a key in an output URL's query: URLs are shown without their query, and a server
/// that echoes the request in its refusal does not bring the key back into the log (it did,
/// for the Pushgateway and remote write alike).
#[test]
fn a_key_in_an_output_urls_query_never_comes_back_in_an_echoed_refusal() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let echo = Canned::echoing(400);
    let base = format!("http://127.0.0.1:{}", echo.port);
    let push = format!("{base}/pg?api_key=QSECRET123");
    let write = format!("{base}/api/v1/write?token=QSECRET456");
    let mut c = collector(
        &ws,
        &["--once", "--pushgateway", &push, "--remote-write", &write],
    );
    c.env("LOG_LEVEL", "trace");
    let o = c.output().unwrap();
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("echo: PUT /pg/metrics/job/"),
        "the refusal is shown: {err}"
    );
    assert!(err.contains("echo: POST /api/v1/write"), "{err}");
    assert!(!err.contains("QSECRET"), "{err}");
    assert!(echo.hits() >= 2);
}

/// Guards an output behind a redirect (an auth proxy's 302 to its sign-in page): refused and
/// said, never followed. Followed, the PUT or POST became a GET without the data, and the sign-in
/// page's 200 counted as delivered (exit 0).
#[test]
fn an_output_that_redirects_is_not_followed_and_fails() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let landing = Canned::start(200);
    let proxy = Canned::redirecting(format!(
        "http://127.0.0.1:{}/sign-in?session=QSECRET789",
        landing.port
    ));
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let o = run(
        &ws,
        &[
            "--once",
            "--pushgateway",
            &url,
            "--remote-write",
            &format!("{url}/api/v1/write"),
        ],
    );
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    let err = stderr(&o);
    for output in ["pushgateway", "remote_write"] {
        assert!(
            err.contains(&format!("output {output} failed"))
                && err.contains("HTTP 302: the server redirects to"),
            "{output}: {err}"
        );
    }
    assert!(!err.contains("QSECRET"), "{err}");
    assert_eq!(landing.hits(), 0, "the redirect was followed");
}

/// Guards a Pushgateway URL pasted with its push path: a configuration error that says what to
/// give instead (the push went to `/metrics/job/myjob/metrics/job/volvo_collect`, and the
/// Pushgateway's refusal said nothing of the mistake).
#[test]
fn a_pushgateway_url_with_a_push_path_is_a_configuration_error() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let o = run(
        &ws,
        &[
            "--once",
            "--pushgateway",
            "http://127.0.0.1:9/metrics/job/myjob",
        ],
    );
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "names a push path (/metrics/...): give the Pushgateway's own URL",
    );
    assert!(sim.gets().is_empty(), "nothing asked of Volvo");
    let o = run(
        &ws,
        &["--once", "--pushgateway", "http://127.0.0.1:9/metrics"],
    );
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    // A proxy's prefix that happens to say "metrics" is no push path.
    let prefixed = "http://127.0.0.1:9/metrics/pushgw/";
    let o = run(&ws, &["--once", "--pushgateway", prefixed]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
}

/// Guards a textfile node_exporter would never read (not `*.prom`): written, and said, as
/// `check` says it (it was written without a word).
#[test]
fn a_textfile_node_exporter_would_not_read_is_said() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let txt = ws.path("volvo.txt");
    let o = run(&ws, &["--once", "--textfile", txt.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "node_exporter reads only files ending in .prom: rename it",
    );
    assert!(txt.exists());
}

// ---- 2. Pushgateway with basic auth over HTTPS --------------------------------------------

/// Guards `[pushgateway] username/password/ca_file`: a push over HTTPS to a gateway whose
/// certificate comes from a private CA, behind basic auth, succeeds and the data is there; a
/// wrong password, or no CA, is exit 74.
#[test]
fn pushgateway_with_basic_auth_over_https_with_a_private_ca() {
    require("prometheus-pushgateway", "prometheus-pushgateway");
    let pki = Pki::new();
    let web = pki.path("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  pusher: '{}'\n",
            quoted_path(&pki.cert()),
            quoted_path(&pki.key()),
            bcrypt_hash("pw")
        ),
    )
    .unwrap();
    let https = Http::new(Some(&pki.ca()));
    let auth = Some(("pusher", "pw"));
    let pg = Server::start(
        "prometheus-pushgateway (TLS, basic auth)",
        tempfile::tempdir().unwrap(),
        |port| pushgateway_with(&web, port),
        |port| https.answers_200(&format!("https://127.0.0.1:{port}/-/ready"), auth),
    );
    let url = pg.url("https");
    // The gateway really demands the password.
    assert!(matches!(
        https.get(&format!("{url}/metrics"), None),
        Ok((401, _))
    ));

    let sim = Sim::start(&[]);
    let section = |password: &str, ca: bool| {
        let mut s = format!(
            "[pushgateway]\nusername = \"pusher\"\npassword = {}\n",
            quoted(password)
        );
        if ca {
            s.push_str(&format!("ca_file = {}\n", quoted_path(&pki.ca())));
        }
        s
    };
    let ws = Workspace::new(&sim, "", &section("pw", true));
    let out = run_ok(&ws, &["--once", "--stdout", "--pushgateway", &url]);
    let scraped = https.ok(&format!("{url}/metrics"), auth);
    assert_group_is(
        &scraped,
        &[("job", "volvo_collect"), ("instance", "")],
        &out,
    );

    let wrong = Workspace::new(&sim, "", &section("not-pw", true));
    let o = run(&wrong, &["--once", "--pushgateway", &url]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("output pushgateway failed") && stderr(&o).contains("HTTP 401"),
        "{}",
        stderr(&o)
    );

    let untrusted = Workspace::new(&sim, "", &section("pw", false));
    let o = run(&untrusted, &["--once", "--pushgateway", &url]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_stderr_contains(&o, "output pushgateway failed");
    assert_stderr_contains(&o, "name the CA that issued it in ca_file");

    credentials_in_the_pushgateway_url(&sim, &pki, &url);
}

/// Guards credentials written into an output's URL: they authenticate a push on their own;
/// beside `[pushgateway]`'s both were sent, as two `Authorization` headers, so that is refused
/// (78, naming both places and neither value); and `check` points a refusal at the URL, not at
/// `pushgateway.username` (which is unset).
fn credentials_in_the_pushgateway_url(sim: &Sim, pki: &Pki, url: &str) {
    let ca = format!("[pushgateway]\nca_file = {}\n", quoted_path(&pki.ca()));
    let in_url =
        |password: &str| url.replacen("https://", &format!("https://pusher:{password}@"), 1);
    let ws = Workspace::new(sim, "", &ca);
    run_ok(&ws, &["--once", "--pushgateway", &in_url("pw")]);
    let right = format!("{ca}[output]\npushgateway = {}\n", quoted(&in_url("pw")));
    let o = run(&Workspace::new(sim, "", &right), &["check"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("ready (GET /-/ready answered 200)"),
        "{}",
        stdout(&o)
    );
    let wrong = format!(
        "{ca}[output]\npushgateway = {}\n",
        quoted(&in_url("wrong-pw"))
    );
    let o = run(&Workspace::new(sim, "", &wrong), &["check"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("refused the credentials (HTTP 401): check the user name and password in output.pushgateway (or --pushgateway)"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("wrong-pw"), "{}", stdout(&o));

    let both = format!(
        "[pushgateway]\nusername = \"pusher\"\npassword = \"table-pw\"\nca_file = {}\n",
        quoted_path(&pki.ca())
    );
    let in_file = format!(
        "{both}[output]\npushgateway = {}\n",
        quoted(&in_url("url-pw"))
    );
    for (ws, args) in [
        (
            Workspace::new(sim, "", &both),
            &["--once", "--pushgateway", &in_url("url-pw")][..],
        ),
        (Workspace::new(sim, "", &in_file), &["check"][..]),
    ] {
        let o = run(&ws, args);
        assert_eq!(code(&o), 78, "{args:?}: {}", stderr(&o));
        assert_stderr_contains(&o, "output.pushgateway (or --pushgateway) holds a user name or password, and [pushgateway] sets credentials too: keep one of them");
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            !all.contains("url-pw") && !all.contains("table-pw"),
            "{all}"
        );
    }
}

/// Guards the certificate most guides make (`openssl req -x509`: a self-signed certificate
/// with CA:TRUE), named as `ca_file`: TLS refuses a CA as a server's own certificate, and
/// the run and `check` say what to do about it (they said `CaUsedAsEndEntity`, and `check`
/// said to start a Pushgateway that was running). A `ca_file` that holds no certificate is
/// named as such.
#[test]
fn a_self_signed_ca_certificate_on_the_server_is_explained() {
    require("prometheus-pushgateway", "prometheus-pushgateway");
    let pki = Pki::new();
    pki.openssl(
        &["req", "-x509", "-subj", "/CN=localhost"],
        &[
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-newkey",
            "ec",
            "-pkeyopt",
        ],
        &[
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-days",
            "2",
        ],
    );
    let web = pki.path("web.yml");
    let tls = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        quoted_path(&pki.path("self.pem")),
        quoted_path(&pki.path("self.key"))
    );
    std::fs::write(&web, tls).unwrap();
    let pg = Server::start(
        "prometheus-pushgateway (TLS, self-signed)",
        tempfile::tempdir().unwrap(),
        |port| pushgateway_with(&web, port),
        |port| TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let url = pg.url("https");
    let sim = Sim::start(&[]);
    let ca = format!(
        "[output]\npushgateway = {}\n[pushgateway]\nca_file = {}\n",
        quoted(&url),
        quoted_path(&pki.path("self.pem"))
    );
    let ws = Workspace::new(&sim, "", &ca);
    let o = run(&ws, &["--once"]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_stderr_contains(&o, "the server's own certificate is a CA certificate");
    let o = run(&ws, &["check"]);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains("output pushgateway"))
        .unwrap_or_default();
    assert!(line.starts_with("FAIL"), "{out}");
    assert!(line.contains("is a CA certificate"), "{out}");
    assert!(!line.contains("start the Pushgateway"), "{out}");

    let key = format!(
        "[pushgateway]\nca_file = {}\n",
        quoted_path(&pki.path("self.key"))
    );
    let ws = Workspace::new(&sim, "", &key);
    let o = run(&ws, &["--once", "--pushgateway", &url]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_stderr_contains(&o, "holds no certificate");
}

// ---- 3. node_exporter's textfile collector -------------------------------------------------

fn node_exporter(dir: &Path) -> Server {
    require("prometheus-node-exporter", "prometheus-node-exporter");
    let http = Http::plain();
    Server::start(
        "prometheus-node-exporter",
        tempfile::tempdir().unwrap(),
        |port| {
            let mut c = Command::new("prometheus-node-exporter");
            c.arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--collector.disable-defaults")
                .arg("--collector.textfile")
                .arg(format!("--collector.textfile.directory={}", dir.display()));
            c
        },
        |port| http.answers_200(&format!("http://127.0.0.1:{port}/metrics"), None),
    )
}

fn scrape_error(node_metrics: &str) -> Option<f64> {
    value(node_metrics, "node_textfile_scrape_error")
}

/// Guards the textfile output as node_exporter reads it: every sample arrives with its value,
/// no scrape error, and the file is readable by another user (0644).
#[test]
fn node_exporter_reads_every_sample_of_the_textfile() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let dir = tempfile::tempdir().unwrap();
    let node = node_exporter(dir.path());
    let prom = dir.path().join("volvo.prom");
    run_ok(&ws, &["--once", "--textfile", prom.to_str().unwrap()]);
    let file = std::fs::read_to_string(&prom).unwrap();
    let scraped = Http::plain().ok(&format!("{}/metrics", node.url("http")), None);
    assert_eq!(
        scrape_error(&scraped),
        Some(0.0),
        "node_exporter could not read the file:\n{}",
        node.log()
    );
    assert_all_present(&samples(&file), &samples(&scraped), &[], "node_exporter");
    let mode = mode(&prom);
    assert_eq!(mode, 0o644, "textfile mode {mode:o}");
}

/// What a complete textfile looks like: its `# TYPE` count, and its last family with the
/// number of samples in it.
#[derive(Debug, PartialEq)]
struct Shape {
    types: usize,
    last_family: String,
    last_family_samples: usize,
}

fn shape(text: &str) -> Result<Shape, String> {
    if !text.ends_with('\n') {
        return Err(format!(
            "does not end with a newline (last bytes: {:?})",
            String::from_utf8_lossy(&text.as_bytes()[text.len().saturating_sub(40)..])
        ));
    }
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let last_family = text
        .lines()
        .rfind(|l| l.starts_with("# TYPE "))
        .and_then(|l| l.split(' ').nth(2))
        .ok_or("no # TYPE line")?
        .to_string();
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take_while(|l| !l.starts_with('#'))
        .collect();
    for line in &tail {
        let name = split_sample(line).0.split('{').next().unwrap_or("");
        if name != last_family {
            return Err(format!("stray line after {last_family}: {line:?}"));
        }
        let v = split_sample(line).1;
        if v.parse::<f64>().is_err() {
            return Err(format!("cut sample line {line:?}"));
        }
    }
    Ok(Shape {
        types,
        last_family,
        last_family_samples: tail.len(),
    })
}

/// Problems found by busy threads: how many, and the first 100.
#[derive(Default)]
struct Problems {
    count: usize,
    first: Vec<String>,
}

fn push_capped(problems: &Mutex<Problems>, p: String) {
    let mut problems = problems.lock().unwrap();
    problems.count += 1;
    if problems.first.len() < 100 {
        problems.first.push(p);
    }
}

/// Guards the atomic replacement of the textfile: while 15 runs in a row rewrite it, a reader
/// reading as fast as it can never sees a partial file, and node_exporter scraping meanwhile
/// never reports a scrape error. Nothing but the `.prom` file is left in the folder.
#[test]
fn a_reader_never_sees_a_partial_textfile() {
    let sim = Sim::start(&[]);
    // Fifteen runs in a row would fill Volvo's minute and defer endpoints, which changes the
    // file's shape; this test is about the file, not the window.
    let ws = Workspace::new(&sim, "", "[collect]\nrequests_per_minute = 0\n");
    let dir = tempfile::tempdir().unwrap();
    let node = node_exporter(dir.path());
    let prom = dir.path().join("volvo.prom");
    let prom_arg = prom.to_str().unwrap().to_string();
    run_ok(&ws, &["--once", "--textfile", &prom_arg]);
    let full = shape(&std::fs::read_to_string(&prom).unwrap()).unwrap();
    assert!(full.types > 50, "{full:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let read_problems = Arc::new(Mutex::new(Problems::default()));
    let scrape_problems = Arc::new(Mutex::new(Problems::default()));
    let reader = {
        let (stop, problems, prom) = (stop.clone(), read_problems.clone(), prom.clone());
        let want = (
            full.types,
            full.last_family.clone(),
            full.last_family_samples,
        );
        std::thread::spawn(move || {
            let mut reads = 0usize;
            while !stop.load(Ordering::SeqCst) {
                reads += 1;
                let problem = match std::fs::read_to_string(&prom) {
                    Err(e) => Some(format!("read failed: {e}")),
                    Ok(text) => match shape(&text) {
                        Err(e) => Some(e),
                        Ok(s)
                            if (s.types, s.last_family.clone(), s.last_family_samples) != want =>
                        {
                            Some(format!("incomplete file: {s:?}, a full one is {want:?}"))
                        }
                        Ok(_) => None,
                    },
                };
                if let Some(p) = problem {
                    push_capped(&problems, p);
                }
            }
            reads
        })
    };
    let scraper = {
        let (stop, problems) = (stop.clone(), scrape_problems.clone());
        let url = format!("{}/metrics", node.url("http"));
        std::thread::spawn(move || {
            let http = Http::plain();
            let mut scrapes = 0usize;
            while !stop.load(Ordering::SeqCst) {
                scrapes += 1;
                match http.get(&url, None) {
                    Ok((200, body)) if scrape_error(&body) == Some(0.0) => {}
                    Ok((status, body)) => push_capped(
                        &problems,
                        format!(
                            "node_exporter scrape: HTTP {status}, node_textfile_scrape_error {:?}",
                            scrape_error(&body)
                        ),
                    ),
                    Err(e) => push_capped(&problems, format!("scrape failed: {e}")),
                }
            }
            scrapes
        })
    };
    for i in 0..15 {
        let o = run(&ws, &["--once", "--textfile", &prom_arg]);
        if code(&o) != 0 {
            stop.store(true, Ordering::SeqCst);
            panic!("run {i}: exit {}: {}", code(&o), stderr(&o));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();
    let scrapes = scraper.join().unwrap();
    for (what, total, problems) in [
        ("reads", reads, read_problems),
        ("node_exporter scrapes", scrapes, scrape_problems),
    ] {
        let problems = problems.lock().unwrap();
        assert!(
            problems.count == 0,
            "{} of {total} {what} went wrong; first ones:\n{}",
            problems.count,
            problems.first[..problems.first.len().min(10)].join("\n")
        );
    }
    assert!(
        reads > 15 && scrapes > 1,
        "too little overlap: {reads} reads, {scrapes} scrapes"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["volvo.prom"], "left behind in the textfile folder");
}

// ---- 4. remote write into Prometheus -------------------------------------------------------

/// Guards remote write into a real Prometheus: exit 0, and every sample of the run, notably
/// the four cars' odometers and `volvo_vehicle_info`, is queryable with its value and labels.
#[test]
fn remote_write_lands_in_prometheus() {
    let sim = Sim::start(&[]);
    let prom = prometheus_receiver();
    let ws = Workspace::new(&sim, "", "");
    let write = format!("{}/api/v1/write", prom.url("http"));
    let out = run_ok(&ws, &["--once", "--stdout", "--remote-write", &write]);

    let odo = query_until(&prom, "volvo_odometer_meters", 4);
    let expected = odometers(&out);
    let got: BTreeMap<String, f64> = odo.iter().map(|(l, v)| (l["vin"].clone(), *v)).collect();
    assert_eq!(got, expected);
    let mut vins = ALL_VINS.to_vec();
    vins.sort();
    assert_eq!(
        expected.keys().map(String::as_str).collect::<Vec<_>>(),
        vins
    );

    let info = query(&prom, "volvo_vehicle_info");
    let want: Vec<_> = without_empty_labels(samples(&out))
        .into_iter()
        .filter(|s| s.name == "volvo_vehicle_info")
        .map(|s| {
            let mut l = s.labels;
            l.insert("__name__".into(), s.name);
            (l, s.value)
        })
        .collect();
    assert_eq!(want.len(), 4);
    for w in &want {
        assert!(info.contains(w), "{w:?} not in Prometheus: {info:?}");
    }

    // Every other sample too, with its value.
    let all: Vec<Sample> = query(&prom, "{__name__=~\"volvo_.+\"}")
        .into_iter()
        .map(|(mut labels, value)| Sample {
            name: labels.remove("__name__").unwrap(),
            labels,
            value,
        })
        .collect();
    assert_all_present(
        &without_empty_labels(samples(&out)),
        &all,
        &[],
        "Prometheus (remote write)",
    );
}

/// Remote write 1.0 messages, declared here from the protocol's own `.proto`, to read what
/// the binary sends without its own decoder.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
}

/// Guards the remote-write wire format as the 1.0 protocol states it: one POST with its three
/// headers, a snappy block-compressed `WriteRequest`, labels sorted by name with none empty,
/// one sample per series stamped with the run's time, and every sample of the run in it.
#[test]
fn remote_write_sends_protocol_1_0() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let server = Canned::start(204);
    let url = format!("http://127.0.0.1:{}/api/v1/write", server.port);
    let before = (unix_now_f64() * 1000.0) as i64;
    let out = run_ok(&ws, &["--once", "--stdout", "--remote-write", &url]);
    let after = (unix_now_f64() * 1000.0) as i64 + 1;
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one request for one run");
    let (head, body) = &requests[0];
    let lower = head.to_ascii_lowercase();
    assert!(lower.starts_with("post /api/v1/write "), "{head}");
    for header in [
        "content-encoding: snappy",
        "content-type: application/x-protobuf",
        "x-prometheus-remote-write-version: 0.1.0",
    ] {
        assert!(lower.contains(header), "no `{header}` in:\n{head}");
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("a snappy block-format body");
    let request: wire::WriteRequest =
        prost::Message::decode(raw.as_slice()).expect("a protobuf WriteRequest");
    let mut sent = Vec::new();
    for ts in &request.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        assert!(
            names.windows(2).all(|w| w[0] < w[1]),
            "labels not sorted by name, or repeated: {names:?}"
        );
        assert!(
            ts.labels.iter().all(|l| !l.value.is_empty()),
            "a label with an empty value: {:?}",
            ts.labels
        );
        assert_eq!(ts.samples.len(), 1, "{:?}", ts.labels);
        let stamp = ts.samples[0].timestamp;
        assert!(
            (before..=after).contains(&stamp),
            "sample time {stamp} outside the run ({before}..{after})"
        );
        let mut labels: BTreeMap<String, String> = ts
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        sent.push(Sample {
            name: labels.remove("__name__").expect("a __name__ label"),
            labels,
            value: ts.samples[0].value,
        });
    }
    let expected = without_empty_labels(samples(&out));
    assert_eq!(sent.len(), expected.len(), "series sent vs samples printed");
    assert_all_present(&expected, &sent, &[], "remote write request");
}

/// Guards the retry policy of remote write: a 400 is final (one request, exit 74), a 503 is
/// tried three times before exit 74.
#[test]
fn remote_write_retries_503_but_not_400() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    for (status, attempts) in [(400, 1), (503, 3)] {
        let server = Canned::start(status);
        let url = format!("http://127.0.0.1:{}/api/v1/write", server.port);
        let o = run(&ws, &["--once", "--stdout", "--remote-write", &url]);
        assert_eq!(code(&o), 74, "{status}: {}", stderr(&o));
        let err = stderr(&o);
        let tries = if attempts == 1 {
            String::new()
        } else {
            format!(" ({attempts} attempts)")
        };
        let expected =
            format!("output remote_write failed: writing to {url}{tries}: HTTP {status}");
        assert!(
            err.lines().any(|l| l.contains(&expected)),
            "{status}: {err}"
        );
        assert_eq!(server.hits(), attempts, "requests after HTTP {status}");
        // The other output still got the run.
        assert!(stdout(&o).contains("volvo_odometer_meters"));
    }
}

// ---- 5. all outputs at once ----------------------------------------------------------------

/// Guards outputs delivered together: stdout, textfile, Pushgateway and remote write in one
/// run all get the same data; with the Pushgateway down, the others are still delivered and
/// the exit is 74 naming the Pushgateway only.
#[test]
fn every_output_in_one_run_and_one_failing_does_not_stop_the_others() {
    let sim = Sim::start(&[]);
    let pg = pushgateway();
    let prom = prometheus_receiver();
    let ws = Workspace::new(&sim, "", "");
    let textfile = ws.path("volvo.prom");
    let textfile_arg = textfile.to_str().unwrap().to_string();
    let write = format!("{}/api/v1/write", prom.url("http"));
    let all = |pg_url: &str| -> Output {
        run(
            &ws,
            &[
                "--once",
                "--stdout",
                "--textfile",
                &textfile_arg,
                "--pushgateway",
                pg_url,
                "--remote-write",
                &write,
            ],
        )
    };

    let o = all(&pg.url("http"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(std::fs::read_to_string(&textfile).unwrap(), out);
    assert_group_is(
        &Http::plain().ok(&format!("{}/metrics", pg.url("http")), None),
        &[("job", "volvo_collect"), ("instance", "")],
        &out,
    );
    let got: BTreeMap<String, f64> = query_until(&prom, "volvo_odometer_meters", 4)
        .into_iter()
        .map(|(l, v)| (l["vin"].clone(), v))
        .collect();
    assert_eq!(got, odometers(&out));

    let closed = format!("http://127.0.0.1:{}", free_port());
    let o = all(&closed);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("output pushgateway failed"), "{err}");
    assert!(
        !err.contains("output textfile failed") && !err.contains("output remote_write failed"),
        "{err}"
    );
    let out = stdout(&o);
    assert!(out.contains("volvo_odometer_meters"), "{out}");
    assert_eq!(std::fs::read_to_string(&textfile).unwrap(), out);
    // Prometheus holds this second run: its run timestamp is the one remote-written.
    let run_ts = value(&out, "volvo_collect_run_timestamp_seconds").unwrap();
    let in_prom = poll(
        "the second run in Prometheus",
        Duration::from_secs(10),
        || {
            query(&prom, "volvo_collect_run_timestamp_seconds")
                .first()
                .map(|(_, v)| *v)
                .filter(|v| *v == run_ts)
        },
    );
    assert_eq!(in_prom, run_ts);
}

// ---- 6. the long-running mode --------------------------------------------------------------

/// `volvo-collect --listen` on a free port, ready when `/-/healthy` answers.
fn listener(ws: &Workspace, scheme: &str, ca: Option<&Path>) -> Server {
    let http = Http::new(ca);
    Server::start(
        "volvo-collect --listen",
        tempfile::tempdir().unwrap(),
        |port| collector(ws, &["--listen", &format!("127.0.0.1:{port}")]),
        |port| http.answers_200(&format!("{scheme}://127.0.0.1:{port}/-/healthy"), None),
    )
}

/// An HTTPS listener with the server certificate of `pki`.
fn https_listener(sim: &Sim, pki: &Pki) -> (Workspace, Server) {
    let ws = Workspace::new(
        sim,
        "",
        &format!(
            "[collect]\ninterval = \"10s\"\n[web]\ntls_cert_file = {}\ntls_key_file = {}\n",
            quoted_path(&pki.cert()),
            quoted_path(&pki.key())
        ),
    );
    let collector = listener(&ws, "https", Some(&pki.ca()));
    (ws, collector)
}

/// A plain-HTTP listener whose one user is `prom` with the password `pw`, hashed at a cost
/// that makes each check take measurable time.
fn listener_with_costly_password(sim: &Sim) -> (Workspace, Server) {
    let ws = Workspace::new(
        sim,
        "",
        &format!(
            "[collect]\ninterval = \"10s\"\n[web]\nbasic_auth_users = {{ prom = {} }}\n",
            quoted(&bcrypt::hash("pw", 8).unwrap())
        ),
    );
    let collector = listener(&ws, "http", None);
    (ws, collector)
}

/// Guards the long-running mode's listener: basic auth (401 without or with wrong
/// credentials), the data after the first run, the health check, a real Prometheus scraping it
/// with basic auth, and a clean exit 0 within a second of SIGTERM.
#[test]
fn long_running_mode_serves_prometheus_with_basic_auth_and_stops_on_sigterm() {
    require("prometheus", "prometheus");
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        "",
        &format!(
            "[collect]\ninterval = \"10s\"\n[web]\nbasic_auth_users = {{ prom = {} }}\n",
            quoted(&bcrypt_hash("pw"))
        ),
    );
    let mut collector = listener(&ws, "http", None);
    let base = collector.url("http");
    let http = Http::plain();
    let metrics = format!("{base}/metrics");
    assert!(
        matches!(http.get(&metrics, None), Ok((401, _))),
        "no credentials"
    );
    assert!(
        matches!(http.get(&metrics, Some(("prom", "wrong"))), Ok((401, _))),
        "wrong password"
    );
    assert!(
        matches!(http.get(&metrics, Some(("nobody", "pw"))), Ok((401, _))),
        "unknown user"
    );
    let body = poll(
        "the first run on /metrics",
        Duration::from_secs(15),
        || match http.get(&metrics, Some(("prom", "pw"))) {
            Ok((200, body)) => Some(body),
            _ => None,
        },
    );
    let served = odometers(&body);
    assert_eq!(served.len(), 4, "{body}");
    promtool_check(&body);
    assert!(
        matches!(http.get(&metrics, Some(("prom", "wrong"))), Ok((401, _))),
        "wrong password after a right one"
    );
    assert!(http.answers_200(&format!("{base}/-/healthy"), None));

    let prom = prometheus(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: volvo\n    basic_auth:\n      username: prom\n      password: pw\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
        collector.port
    ));
    let odo = query_until(&prom, "volvo_odometer_meters", 4);
    for (labels, v) in &odo {
        assert_eq!(labels["job"], "volvo");
        assert_eq!(served.get(&labels["vin"]), Some(v), "{labels:?}");
    }

    collector.stops_cleanly(Duration::from_secs(1));
}

/// Guards TLS on the listener: with `[web] tls_cert_file/tls_key_file` from a private CA, a
/// real Prometheus scraping with `scheme: https` and that CA gets the data.
#[test]
fn long_running_mode_serves_https_to_prometheus() {
    require("prometheus", "prometheus");
    let pki = Pki::new();
    let sim = Sim::start(&[]);
    let (_ws, mut collector) = https_listener(&sim, &pki);
    let https = Http::new(Some(&pki.ca()));
    let body = poll(
        "the first run on https /metrics",
        Duration::from_secs(15),
        || match https.get(&format!("{}/metrics", collector.url("https")), None) {
            Ok((200, body)) => Some(body),
            _ => None,
        },
    );
    let served = odometers(&body);
    assert_eq!(served.len(), 4, "{body}");

    let prom = prometheus(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: volvo_tls\n    scheme: https\n    tls_config:\n      ca_file: {}\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
        quoted_path(&pki.ca()),
        collector.port
    ));
    let odo = query_until(&prom, "volvo_odometer_meters", 4);
    for (labels, v) in &odo {
        assert_eq!(labels["job"], "volvo_tls");
        assert_eq!(served.get(&labels["vin"]), Some(v), "{labels:?}");
    }
    collector.stops_cleanly(Duration::from_secs(1));
}

// ---- 7. the last good run ------------------------------------------------------------------

/// Guards the self-metrics of a failed run: after a good run, a run against a broken Volvo
/// cloud exits non-zero, says `volvo_collect_run_success 0`, and still carries the time of the
/// last good run.
#[test]
fn the_last_good_run_stays_visible_after_a_failure() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ntimeout = \"10s\"\n");
    let before = unix_now_f64();
    let out = run_ok(&ws, &["--once", "--stdout"]);
    let after = unix_now_f64();
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(1.0));
    let good = value(
        &out,
        "volvo_collect_last_success_timestamp_seconds{account=\"default\"}",
    )
    .unwrap();
    assert!(
        good >= before - 1.0 && good <= after + 1.0,
        "last success {good} outside the first run ({before}..{after})"
    );

    sim.faults(json!([{"path": "/", "status": 503, "body": "{}", "times": 0}]));
    let o = run(&ws, &["--once", "--stdout"]);
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(0.0), "{out}");
    let last = value(
        &out,
        "volvo_collect_last_success_timestamp_seconds{account=\"default\"}",
    )
    .unwrap_or_else(|| panic!("no last success after a failed run:\n{out}"));
    assert!(
        (last - good).abs() < 0.01,
        "last success {last}, the good run was at {good}"
    );
    assert!(unix_now_f64() - last < 30.0);
    promtool_check(&out);
}

/// Guards the HTTPS listener against idle connections: the TLS handshake runs per connection,
/// so clients that connect and say nothing (here 20 of them, each of which used to hold the
/// accept loop for 10 s) do not keep a scrape from being answered.
#[test]
fn idle_connections_do_not_block_https_scrapes() {
    https_scrapes_pass_idle_sockets(20, Duration::from_millis(200));
}

/// Three fresh clients scrape the HTTPS listener while `idle` sockets, opened `settle` before,
/// have connected and said nothing; each scrape is answered.
fn https_scrapes_pass_idle_sockets(idle: usize, settle: Duration) {
    let pki = Pki::new();
    let sim = Sim::start(&[]);
    let (_ws, mut collector) = https_listener(&sim, &pki);
    let https = Http::new(Some(&pki.ca()));
    let metrics = format!("{}/metrics", collector.url("https"));
    poll(
        "the first run on https /metrics",
        Duration::from_secs(15),
        || matches!(https.get(&metrics, None), Ok((200, _))).then_some(()),
    );
    let idle: Vec<TcpStream> = (0..idle)
        .map(|_| TcpStream::connect(("127.0.0.1", collector.port)).unwrap())
        .collect();
    std::thread::sleep(settle);
    for i in 0..3 {
        // A new client each time: a pooled connection would skip the accept under test.
        let got = Http::new(Some(&pki.ca())).get(&metrics, None);
        assert!(
            matches!(got, Ok((200, _))),
            "scrape {i} with {} idle sockets open: {got:?}\n{}",
            idle.len(),
            collector.log()
        );
    }
    drop(idle);
    collector.stops_cleanly(Duration::from_secs(2));
}

/// Guards basic auth against telling which user names exist: a wrong password takes about as
/// long for an unknown user as for a known one (both pay one bcrypt check). Before, an
/// unknown user was answered at once.
#[test]
fn unknown_users_take_as_long_as_wrong_passwords() {
    let sim = Sim::start(&[]);
    let (_ws, mut collector) = listener_with_costly_password(&sim);
    let http = Http::plain();
    let metrics = format!("{}/metrics", collector.url("http"));
    let median = |user: &str| {
        let mut times: Vec<Duration> = (0..7)
            .map(|_| {
                let start = Instant::now();
                let got = http.get(&metrics, Some((user, "wrong")));
                assert!(matches!(got, Ok((401, _))), "{user}: {got:?}");
                start.elapsed()
            })
            .collect();
        times.sort();
        times[3]
    };
    let known = median("prom");
    let unknown = median("nobody");
    assert!(
        unknown * 3 >= known,
        "unknown user answered in {unknown:?}, a known one with a wrong password in {known:?}"
    );
    collector.stops_cleanly(Duration::from_secs(2));
}

/// Guards the listener's bound on bcrypt work: a flood of 40 concurrent wrong passwords runs
/// at most two bcrypt checks at a time (the rest wait, or get 503), instead of a blocking
/// thread per request taking every core. Counted as the process's threads during the flood.
#[test]
fn a_flood_of_wrong_passwords_runs_few_bcrypt_checks_at_once() {
    let sim = Sim::start(&[]);
    let (_ws, mut collector) = listener_with_costly_password(&sim);
    let metrics = format!("{}/metrics", collector.url("http"));
    let threads = || {
        std::fs::read_to_string(format!("/proc/{}/status", collector.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .map(|n| n.trim().parse::<usize>().unwrap())
            .unwrap()
    };
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let url = metrics.clone();
            std::thread::spawn(move || {
                Http::plain()
                    .get(&url, Some(("prom", &format!("wrong{i}"))))
                    .map(|(status, _)| status)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = threads();
    for h in flood {
        let got = h.join().unwrap();
        assert!(matches!(got, Ok(401 | 503) | Err(_)), "{got:?}");
    }
    assert!(
        during <= 8,
        "{during} threads during the flood: bcrypt checks are not bounded"
    );
    collector.stops_cleanly(Duration::from_secs(2));
}

/// Reads from `stream` until the other end closes it; how long that took, or `None` when it
/// was still open after `within`.
fn closed_within(mut stream: &TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(t0.elapsed()),
            Err(_) => return None,
        }
    }
}

/// Guards the listener's timeouts: a connection that sends nothing, and one that sends its
/// request header a byte a second (slowloris), are closed by the listener within seconds of
/// its 10 s header timeout. Both used to stay open for good (still open after 53 s).
#[test]
fn idle_and_slow_connections_are_closed_by_the_listener() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ninterval = \"10s\"\n");
    let collector = listener(&ws, "http", None);
    let idle = TcpStream::connect(("127.0.0.1", collector.port)).unwrap();
    let slow = TcpStream::connect(("127.0.0.1", collector.port)).unwrap();
    let mut writer = slow.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = writer.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        for b in b"X-Slow: ".iter().cycle() {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let limit = Duration::from_secs(40);
    let idle_closed = closed_within(&idle, limit);
    let slow_closed = closed_within(&slow, limit);
    assert!(
        idle_closed.is_some(),
        "an idle connection still open after {limit:?}"
    );
    assert!(
        slow_closed.is_some(),
        "a slowloris connection still open after {limit:?}"
    );
    assert!(
        idle_closed.unwrap() < Duration::from_secs(30),
        "closed after {idle_closed:?}"
    );
}

/// Guards the listener against running the process out of file descriptors: under a limit
/// of 128 descriptors, a flood of idle connections (129 at once, then more, all held) keeps
/// neither a scrape nor a collection from working, and nothing says the token's folder is
/// missing. Before, every scrape failed and every collection exited 78 with "cannot create
/// the lock file ... the folder of volvo.token_file must exist".
#[test]
fn idle_connections_under_a_low_descriptor_limit_stop_no_scrape_and_no_collection() {
    require("prlimit", "util-linux");
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ninterval = \"10s\"\n");
    let http = Http::plain();
    let mut collector = Server::start(
        "volvo-collect --listen under prlimit",
        tempfile::tempdir().unwrap(),
        |port| {
            let mut c = Command::new("prlimit");
            c.args(["--nofile=128:128", "--", BIN, "--config"])
                .arg(ws.path("collector.toml"))
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("LOG_LEVEL", "info")
                .env_remove("VOLVO_CLIENT_SECRET")
                .env_remove("VOLVO_API_KEY")
                .env_remove("CREDENTIALS_DIRECTORY");
            c
        },
        |port| http.answers_200(&format!("http://127.0.0.1:{port}/-/healthy"), None),
    );
    let metrics = format!("{}/metrics", collector.url("http"));
    poll("the first collection", Duration::from_secs(15), || {
        matches!(http.get(&metrics, None), Ok((200, _))).then_some(())
    });
    let finished = |log: &str| log.matches("collection finished").count();
    let before = finished(&collector.log());

    // The flood: 129 idle connections, then 20 more a second, none ever closed by the client.
    let stop = Arc::new(AtomicBool::new(false));
    let port = collector.port;
    let connect = move |n: usize, open: &mut Vec<TcpStream>| {
        for _ in 0..n {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                open.push(s);
            }
        }
    };
    let mut open = Vec::new();
    connect(129, &mut open);
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                connect(20, &mut open);
                std::thread::sleep(Duration::from_secs(1));
            }
            open.len()
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..3 {
        // A new client each time: a pooled connection would skip the accept under test.
        let got = Http::plain().get(&metrics, None);
        assert!(
            matches!(got, Ok((200, _))),
            "scrape {i} during the flood: {got:?}\n{}",
            collector.log()
        );
    }
    let log = poll(
        "a collection during the flood",
        Duration::from_secs(30),
        || {
            let log = collector.log();
            (finished(&log) > before).then_some(log)
        },
    );
    stop.store(true, Ordering::Relaxed);
    let opened = flood.join().unwrap();
    assert!(opened >= 129, "{opened} connections opened");
    let last = log
        .lines()
        .rfind(|l| l.contains("collection finished"))
        .unwrap();
    assert!(last.contains("exit=0"), "{last}\n{log}");
    assert!(!log.contains("must exist"), "{log}");
    collector.stops_cleanly(Duration::from_secs(5));
}

/// Guards the HTTPS listener's handshakes against idle sockets: 300 clients that connect and
/// never start a handshake do not keep a real scrape out (they filled the 256 handshake slots,
/// and the scrape was reset).
#[test]
fn three_hundred_idle_tls_sockets_do_not_keep_a_scrape_out() {
    https_scrapes_pass_idle_sockets(300, Duration::from_millis(300));
}
