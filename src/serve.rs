//! The long-running mode: collect every `collect.interval` (with jitter), one collection at a
//! time, until SIGTERM or SIGINT; with `web.listen` (or `--listen`), also serve the latest
//! exposition at `/metrics` and a health check at `/-/healthy`, as the original exporter did.
//! A scrape never waits on Volvo: it gets the last finished run. The exposition holds the car's
//! position, so the listener binds loopback unless told otherwise and supports basic auth
//! (bcrypt hashes) and TLS, as Prometheus exporters' web configuration does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::Digest;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::{Settings, WebOptions};
use crate::error::{ExitCode, Fatal};
use crate::run;

/// The last finished run, as served to scrapes.
#[derive(Default)]
struct Latest {
    text: Option<Vec<u8>>,
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
        .unwrap_or(bcrypt::DEFAULT_COST);
    let password: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(24)
        .collect();
    bcrypt::hash(password, cost).unwrap_or_default()
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
        start_listener(addr, &settings.web, web.clone()).await?;
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

async fn start_listener(addr: SocketAddr, opts: &WebOptions, web: Arc<Web>) -> Result<(), Fatal> {
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
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Fatal::config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Fatal::config(e.to_string()))?;
    match &opts.tls {
        None => {
            tracing::info!("serving metrics at http://{local}/metrics");
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        Some((cert, key)) => {
            let acceptor = tls_acceptor(cert, key)?;
            tracing::info!("serving metrics at https://{local}/metrics");
            let (tx, rx) = tokio::sync::mpsc::channel(HANDSHAKES);
            tokio::spawn(accept_tls(listener, acceptor, tx));
            tokio::spawn(async move { axum::serve(TlsListener { rx, local }, app).await });
        }
    }
    Ok(())
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, Fatal> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Fatal::config(format!("web.tls_cert_file {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Fatal::config(format!("web.tls_key_file {}: {e}", key.display())))?;
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

/// Handshakes in progress at most; connections beyond are closed at once, so idle sockets
/// cannot pile up without bound.
const HANDSHAKES: usize = 256;
/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts TCP connections and does each TLS handshake on a task of its own, so that a client
/// that connects and says nothing holds up only itself, never the scrapes behind it.
async fn accept_tls(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: tokio::sync::mpsc::Sender<(TlsStream, SocketAddr)>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Usually out of file descriptors: wait for some to be freed.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%addr, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        });
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The connections whose handshake is done, for `axum::serve`.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
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
