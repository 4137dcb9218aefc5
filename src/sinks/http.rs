//! What the HTTP outputs share: a client with the output's timeout and extra CA, and its
//! authentication.

use anyhow::Context;

use crate::config::{HttpAuth, HttpOutput};

pub fn client(o: &HttpOutput) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(o.timeout)
        .user_agent(concat!("volvo-collect/", env!("CARGO_PKG_VERSION")))
        // A redirect is refused, not followed: a 301 or 302 would turn the PUT or POST into
        // a GET without the exposition, and a sign-in page's 200 would pass for delivered.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &o.ca_file {
        // A regular file of at most a MiB: `/dev/zero` or a FIFO named by mistake is refused.
        let pem = crate::fsutil::read_capped(ca, 1 << 20)
            .map_err(|e| anyhow::anyhow!("cannot read the CA file {}: {e}", ca.display()))?;
        // reqwest takes a file without a certificate (a key, say) as an empty list of them.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            anyhow::bail!(
                "the CA file {} holds no certificate (-----BEGIN CERTIFICATE-----): name the PEM file of the CA that issued the server's certificate",
                ca.display()
            );
        }
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("the CA file {} is not a PEM certificate", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().context("cannot set up the HTTP client")
}

/// A transport error as an error chain without the request's URL: reqwest's own text names
/// the URL, which may carry credentials (userinfo, or a key in the query).
pub fn transport(e: &reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!(explained(e))
}

/// The error as [`crate::api::client::describe`] says it, and what to do when the server's
/// certificate was refused.
pub fn explained(e: &reqwest::Error) -> String {
    let text = crate::api::client::describe(e);
    match certificate_hint(&text) {
        Some(hint) => format!("{text}: {hint}"),
        None => text,
    }
}

/// What to do about a server certificate that TLS refused, from the refusal's words.
pub fn certificate_hint(text: &str) -> Option<&'static str> {
    Some(if text.contains("CaUsedAsEndEntity") {
        "the server's own certificate is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default), which TLS does not accept from a server: give the server a certificate issued by a CA (or one made with CA:FALSE) and name that CA in ca_file"
    } else if text.contains("UnknownIssuer") {
        "the server's certificate is not from a CA this collector trusts: name the CA that issued it in ca_file"
    } else if text.contains("NotValidForName") {
        "the server's certificate does not name the host of the URL: use the name it was issued for"
    } else if text.contains("Expired") {
        "the server's certificate has expired: renew it"
    } else {
        return None;
    })
}

/// How much of a refusal's body is read: its start says why; the rest is not read at all.
const REFUSAL_READ_BYTES: usize = 64 * 1024;
/// How long a refusal's body is waited for once its status has come.
const REFUSAL_READ_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// An answer that is not a success, as an error: its status and the start of its body.
pub async fn refused(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        let to = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .map(|u| crate::secret::shown_url(&u))
            .unwrap_or_else(|| "elsewhere".into());
        return anyhow::anyhow!(
            "HTTP {status}: the server redirects to {to}, which is not followed: set the output's URL to where the data is taken"
        );
    }
    // The status is the answer; a body that stalls after it must not turn it into none by
    // holding the run to its deadline.
    let read = crate::http::read_start(resp, REFUSAL_READ_BYTES);
    let body = match tokio::time::timeout(REFUSAL_READ_WAIT, read).await {
        Ok(read) => read
            .map(|(start, _)| String::from_utf8_lossy(&start).into_owned())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    // Masked whole before it is cut: a cut secret would no longer be found.
    let body: String = crate::secret::mask(body.trim()).chars().take(200).collect();
    if body.is_empty() {
        anyhow::anyhow!("HTTP {status}")
    } else {
        anyhow::anyhow!("HTTP {status}: {}", body.replace('\n', " "))
    }
}

pub fn authorize(req: reqwest::RequestBuilder, auth: &HttpAuth) -> reqwest::RequestBuilder {
    match auth {
        HttpAuth::None => req,
        HttpAuth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
        HttpAuth::Bearer(token) => req.bearer_auth(token.expose()),
    }
}
