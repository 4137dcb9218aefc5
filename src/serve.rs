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
}

/// Runs collections until a shutdown signal. Returns the exit code of a clean stop (0).
pub async fn run_forever(settings: Settings) -> Result<ExitCode, Fatal> {
    let web = Arc::new(Web {
        latest: RwLock::new(Latest::default()),
        users: settings
            .web
            .basic_auth_users
            .iter()
            .map(|(u, h)| (u.clone(), h.expose().to_string()))
            .collect(),
        verified: Mutex::new(HashMap::new()),
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
    let shutdown = crate::shutdown_signal();
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
            tokio::spawn(async move {
                axum::serve(
                    TlsListener {
                        tcp: listener,
                        acceptor,
                    },
                    app,
                )
                .await
            });
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

/// TLS on top of a TCP listener, for `axum::serve`. A failed handshake is logged and skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(stream)).await
            {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl Web {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.users.is_empty() {
            return true;
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
            return false;
        };
        let Some((_, hash)) = self.users.iter().find(|(u, _)| *u == user) else {
            return false;
        };
        let key = (user, sha2::Sha256::digest(password.as_bytes()).into());
        if let Some(ok) = self.verified.lock().expect("cache lock").get(&key) {
            return *ok;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false);
        // Only what passed is remembered: caching failures would let anyone grow the cache
        // without bound by trying new passwords.
        if ok {
            self.verified.lock().expect("cache lock").insert(key, ok);
        }
        ok
    }
}

async fn metrics(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    // bcrypt is slow on purpose: check off the runtime's two worker threads, so that a flood of
    // wrong passwords cannot stall the collection.
    let check = web.clone();
    let ok = tokio::task::spawn_blocking(move || check.authorized(&headers))
        .await
        .unwrap_or(false);
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
