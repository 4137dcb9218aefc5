//! What the HTTP outputs share: a client with the output's timeout and extra CA, and its
//! authentication.

use crate::config::{HttpAuth, HttpOutput};

pub fn client(o: &HttpOutput) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(o.timeout)
        .user_agent(concat!("volvo-collect/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &o.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("the CA file {} is not a PEM certificate: {e}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

pub fn authorize(req: reqwest::RequestBuilder, auth: &HttpAuth) -> reqwest::RequestBuilder {
    match auth {
        HttpAuth::None => req,
        HttpAuth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
        HttpAuth::Bearer(token) => req.bearer_auth(token.expose()),
    }
}
