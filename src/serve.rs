//! The long-running mode: collect every `collect.interval` (with jitter), one collection at a
//! time, until a stop signal; with `web.listen` (or `--listen`), also serve the latest
//! exposition at `/metrics` and a health check at `/-/healthy`, as the original exporter did.
//! A scrape never waits on Volvo: it gets the last finished run. The exposition holds the car's
//! position, so the listener binds loopback unless told otherwise and supports basic auth
//! (bcrypt hashes) and TLS, as Prometheus exporters' web configuration does.
//!
//! The listener bounds what clients can hold: a request header (on a new connection, between
//! requests, or sent slowly) must arrive within 10 s, a TLS handshake likewise, and a
//! connection lives at most 5 minutes. Connections are capped below the file descriptor limit,
//! leaving room for the collection's own sockets and files; when the cap is reached, the
//! connection that has been idle longest (handshakes included) makes room for the new one, so
//! idle sockets can never keep a scrape out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::{Settings, WebOptions};
use crate::error::{ExitCode, Fatal};
use crate::run;

/// The last finished run, as served to scrapes.
#[derive(Default)]
struct Latest {
    text: Option<bytes::Bytes>,
    exit: Option<ExitCode>,
}

struct Web {
    latest: RwLock<Latest>,
    users: Vec<(String, String)>,
    /// (user, SHA-256 of the password) already checked against the bcrypt hash: bcrypt is slow
    /// on purpose, and a scrape every 15 s must not pay for it each time.
    verified: Mutex<HashMap<(String, [u8; 32]), bool>>,
    /// A hash of the users' cost that no password matches: an unknown user is checked against
    /// it, so the answer takes as long as for a known user and does not tell which names exist.
    dummy: String,
    /// bcrypt checks at once: a flood of wrong passwords waits here instead of taking every core.
    bcrypt_slots: tokio::sync::Semaphore,
}

/// Concurrent bcrypt checks, and how long a request waits for one before it gets 503.
const BCRYPT_SLOTS: usize = 2;
const BCRYPT_WAIT: Duration = Duration::from_secs(5);

/// A bcrypt hash with the cost of `like` (a `$2b$NN$...` hash), of a random password.
fn dummy_hash(like: Option<&str>) -> String {
    let cost = like
        .and_then(|h| h.split('$').nth(2))
        .and_then(|c| c.parse().ok())
        .filter(|c| (4..=31).contains(c))
        .unwrap_or(bcrypt::DEFAULT_COST);
    let password: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(24)
        .collect();
    bcrypt::hash(password, cost).expect("bcrypt hashes at any cost from 4 to 31")
}

/// Runs collections until a stop signal. Returns the exit code of a clean stop (0), after any
/// token refresh in flight has been saved.
pub async fn run_forever(
    settings: Settings,
    mut stop: crate::stop::Stop,
) -> Result<ExitCode, Fatal> {
    let users: Vec<(String, String)> = settings
        .web
        .basic_auth_users
        .iter()
        .map(|(u, h)| (u.clone(), h.expose().to_string()))
        .collect();
    let dummy = if users.is_empty() {
        String::new()
    } else {
        dummy_hash(users.first().map(|(_, h)| h.as_str()))
    };
    let web = Arc::new(Web {
        latest: RwLock::new(Latest::default()),
        users,
        verified: Mutex::new(HashMap::new()),
        dummy,
        bcrypt_slots: tokio::sync::Semaphore::new(BCRYPT_SLOTS),
    });
    if settings.output.is_empty() && settings.web.listen.is_none() {
        return Err(Fatal::config(format!(
            "{}: no output chosen: pass --listen ADDR, --stdout, --textfile PATH, --pushgateway URL or --remote-write URL, or set one in [output] or [web]",
            settings.config_path.display()
        )));
    }
    if let Some(addr) = settings.web.listen {
        start_listener(addr, &settings, web.clone()).await?;
    }
    // A stop waits for a token refresh in flight to be saved; the collection it interrupts is
    // dropped only then (its refresh saves on a task of its own either way).
    let shutdown = stop.requested();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            outcome = run::collect(&settings) => {
                let outcome = outcome?;
                for p in &outcome.problems {
                    tracing::warn!("{p}");
                }
                tracing::info!(exit = outcome.exit.code(), "collection finished");
                let mut latest = web.latest.write().expect("latest lock");
                latest.text = Some(outcome.text);
                latest.exit = Some(outcome.exit);
            }
            _ = &mut shutdown => break,
        }
        // ±10 % jitter, so that many collectors on one API key do not ask at the same moment.
        let wait = settings.interval.mul_f64(0.9 + 0.2 * fastrand::f64());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("stopping");
    Ok(ExitCode::Ok)
}

async fn start_listener(addr: SocketAddr, settings: &Settings, web: Arc<Web>) -> Result<(), Fatal> {
    let opts: &WebOptions = &settings.web;
    if !addr.ip().is_loopback() && opts.basic_auth_users.is_empty() {
        tracing::warn!(%addr, "serving the car's data (and position) beyond this machine without basic auth: set [web] basic_auth_users");
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "ok\n" }))
        .route(
            "/",
            get(|| async { "volvo-collect: metrics at /metrics\n" }),
        )
        .with_state(web);
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Fatal::config(format!(
            "cannot listen on {addr}: {}",
            crate::fsutil::describe(&e)
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Fatal::config(e.to_string()))?;
    let tls = match &opts.tls {
        None => None,
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let cap = connection_cap(settings);
    tracing::info!(
        "serving metrics at {scheme}://{local}/metrics (at most {cap} connections at once)"
    );
    tokio::spawn(accept(listener, tls, app, Arc::new(Connections::new(cap))));
    Ok(())
}

/// The most a TLS certificate chain or key file may hold: far more than any real one.
const TLS_FILE_MAX: u64 = 1 << 20;

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, Fatal> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |setting: &str, path: &std::path::Path, why: String| {
        Fatal::config(format!("web.{setting} {}: {why}", path.display()))
    };
    let cert_pem = pem_file("tls_cert_file", cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("tls_cert_file", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "tls_cert_file",
            cert,
            "holds no certificate (-----BEGIN CERTIFICATE-----): name the server's certificate chain in PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem_file("tls_key_file", key)?)
        .map_err(|e| bad("tls_key_file", key, e.to_string()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            Fatal::config(format!(
                "web TLS certificate and key do not work together: {e}"
            ))
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS file's text: a regular file of at most [`TLS_FILE_MAX`], so that `/dev/zero` or a
/// FIFO named by mistake is refused at once rather than filling the memory or hanging.
fn pem_file(setting: &str, path: &std::path::Path) -> Result<Vec<u8>, Fatal> {
    crate::fsutil::read_capped(path, TLS_FILE_MAX)
        .map_err(|e| Fatal::config(format!("web.{setting} {}: {e}", path.display())))
}

/// How long a client has to send a complete request header: on a new connection, between
/// two requests on a kept-alive one, and when it sends slowly.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection lives; a request in progress then has [`CLOSING_GRACE`] to end.
const CONNECTION_MAX_AGE: Duration = Duration::from_secs(300);
const CLOSING_GRACE: Duration = Duration::from_secs(5);
/// Connections at most, however high the descriptor limit.
const MAX_CONNECTIONS: usize = 512;
/// Connections at least, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 4;
/// File descriptors kept for the collection beyond one socket per concurrent request: the
/// runtime, standard streams, the state, window, token and lock files, the outputs' sockets.
const DESCRIPTOR_HEADROOM: usize = 48;

/// The most connections the listener holds: below the file descriptor limit by the headroom
/// the collection needs, so that idle clients can never starve a collection of descriptors.
fn connection_cap(settings: &Settings) -> usize {
    let Some(limit) = crate::fsutil::descriptor_limit() else {
        return MAX_CONNECTIONS;
    };
    let collection = DESCRIPTOR_HEADROOM + settings.concurrency * settings.accounts.len().max(1);
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(collection);
    if room < MIN_CONNECTIONS {
        tracing::warn!(
            limit,
            "the file descriptor limit leaves the listener almost no room beside the collection: raise it (LimitNOFILE=, ulimit -n) or lower collect.concurrency"
        );
    }
    room.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// What one connection is doing, for choosing which one makes room.
struct Activity {
    /// Requests being answered now.
    busy: AtomicUsize,
    /// When it last started or finished a request (or connected), in ms since `epoch`.
    last_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// Marks a request in progress on its connection until dropped (answered or cut off).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

type Open = (Arc<Activity>, Option<tokio::task::AbortHandle>);

/// The open connections, at most `cap`.
struct Connections {
    cap: usize,
    epoch: Instant,
    next_id: AtomicU64,
    /// Each connection's activity, and the handle that closes it once its task runs.
    open: Mutex<HashMap<u64, Open>>,
}

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            cap,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for a new connection: when all are taken, the one idle longest is closed to
    /// make room. `None` when every connection is answering a request.
    fn admit(&self) -> Option<(u64, Arc<Activity>)> {
        let mut open = self.open.lock().expect("connections lock");
        if open.len() >= self.cap {
            let idlest = open
                .iter()
                .filter(|(_, (a, abort))| a.busy.load(Ordering::Relaxed) == 0 && abort.is_some())
                .min_by_key(|(_, (a, _))| a.last_ms.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some((_, Some(abort))) = open.remove(&idlest) {
                abort.abort();
            }
            tracing::debug!("connection limit reached; the connection idle longest was closed");
        }
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            epoch: self.epoch,
        });
        activity.touch();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.insert(id, (activity.clone(), None));
        Some((id, activity))
    }

    fn started(&self, id: u64, abort: tokio::task::AbortHandle) {
        if let Some(entry) = self.open.lock().expect("connections lock").get_mut(&id) {
            entry.1 = Some(abort);
        }
    }
}

/// Gives a connection's place back when its task ends, however it ends.
struct Place(Arc<Connections>, u64);

impl Drop for Place {
    fn drop(&mut self) {
        self.0
            .open
            .lock()
            .expect("connections lock")
            .remove(&self.1);
    }
}

/// Accepts connections and serves each on a task of its own (its TLS handshake too), so that
/// a client that connects and says nothing holds up only itself.
async fn accept(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    connections: Arc<Connections>,
) {
    let mut warned: Option<Instant> = None;
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                if crate::fsutil::out_of_descriptors(&e) {
                    // Said once a minute: the condition lasts, and the log must not flood.
                    if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                        warned = Some(Instant::now());
                        tracing::warn!(
                            "cannot accept a connection: {}",
                            crate::fsutil::describe(&e)
                        );
                    }
                } else {
                    tracing::debug!(error = %e, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, activity)) = connections.admit() else {
            tracing::debug!(%addr, "every connection is answering a request; connection closed");
            continue;
        };
        let place = Place(connections.clone(), id);
        let task = tokio::spawn(connection(
            stream,
            tls.clone(),
            app.clone(),
            activity,
            place,
        ));
        connections.started(id, task.abort_handle());
    }
}

/// One connection: its TLS handshake (bounded), then HTTP/1 with the header timeout, for at
/// most [`CONNECTION_MAX_AGE`].
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    activity: Arc<Activity>,
    _place: Place,
) {
    match tls {
        None => serve_http(TokioIo::new(stream), app, activity).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    activity.touch();
                    serve_http(TokioIo::new(tls), app, activity).await
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<I>(io: I, app: Router, activity: Arc<Activity>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = Tracked {
        inner: TowerToHyperService::new(app),
        activity,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        _ = tokio::time::sleep(CONNECTION_MAX_AGE) => conn.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(CLOSING_GRACE, conn).await;
}

/// The router as a hyper service that marks its connection busy while it answers.
struct Tracked {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let busy = Busy::start(self.activity.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(busy);
            r
        })
    }
}

/// What a request's credentials come to.
enum Check {
    Allowed,
    Denied,
    /// Needs a bcrypt check: (password, hash, cache key, known user).
    Bcrypt(String, String, (String, [u8; 32]), bool),
}

impl Web {
    /// Everything but bcrypt: no users, bad header, or a password already verified.
    fn precheck(&self, headers: &HeaderMap) -> Check {
        if self.users.is_empty() {
            return Check::Allowed;
        }
        let Some((user, password)) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        else {
            return Check::Denied;
        };
        let (hash, known) = match self.users.iter().find(|(u, _)| *u == user) {
            Some((_, hash)) => (hash.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let key = (user, sha2::Sha256::digest(password.as_bytes()).into());
        if known && self.verified.lock().expect("cache lock").contains_key(&key) {
            return Check::Allowed;
        }
        Check::Bcrypt(password, hash, key, known)
    }

    /// Runs bcrypt (slow on purpose) and remembers a success.
    fn verify(&self, password: &str, hash: &str, key: (String, [u8; 32]), known: bool) -> bool {
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known;
        // Only what passed is remembered: caching failures would let anyone grow the cache
        // without bound by trying new passwords.
        if ok {
            self.verified.lock().expect("cache lock").insert(key, ok);
        }
        ok
    }
}

async fn metrics(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let ok = match web.precheck(&headers) {
        Check::Allowed => true,
        Check::Denied => false,
        Check::Bcrypt(password, hash, key, known) => {
            let Ok(Ok(_slot)) = tokio::time::timeout(BCRYPT_WAIT, web.bcrypt_slots.acquire()).await
            else {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "5")],
                    "too many authentication attempts at once; try again\n",
                )
                    .into_response();
            };
            // Off the runtime's thread, so that bcrypt never stalls the collection.
            let check = web.clone();
            tokio::task::spawn_blocking(move || check.verify(&password, &hash, key, known))
                .await
                .unwrap_or(false)
        }
    };
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"volvo-collect\"")],
            "unauthorized\n",
        )
            .into_response();
    }
    let latest = web.latest.read().expect("latest lock");
    match &latest.text {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text.clone(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no collection has finished yet\n",
        )
            .into_response(),
    }
}
