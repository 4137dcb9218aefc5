//! Outputs: where the encoded exposition goes. Encoding happens once, before; each output is
//! small and independent, and a failing one never stops the others: [`http`] (the HTTP outputs'
//! shared client), [`pushgateway`], [`remote_write`] and [`textfile`], each using only those
//! before it.

pub(crate) mod http;
pub mod pushgateway;
pub mod remote_write;
pub mod textfile;

use std::io::Write;

use crate::config::Settings;
use crate::metrics::Exposition;

/// Delivers `text` (the encoded `exp`) to every configured output; returns the failures as
/// (output, error). Each error says what was tried where; print it with `{:#}` for one line.
pub async fn deliver(
    settings: &Settings,
    exp: &Exposition,
    text: &[u8],
) -> Vec<(&'static str, anyhow::Error)> {
    let outputs = &settings.output;
    let mut failures = Vec::new();
    if outputs.stdout {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text).and_then(|_| out.flush()) {
            failures.push((
                "stdout",
                anyhow::Error::new(e).context("writing to standard output"),
            ));
        }
    }
    if let Some(path) = &outputs.textfile {
        if let Err(e) = textfile::write(path, text) {
            failures.push(("textfile", e));
        }
    }
    // The two network outputs go out together; neither waits for the other.
    let push = async {
        match &outputs.pushgateway {
            Some(url) => pushgateway::push(url, &settings.pushgateway, text)
                .await
                .err(),
            None => None,
        }
    };
    let remote = async {
        match &outputs.remote_write {
            Some(url) => {
                let now_ms = settings.clock.now_ms();
                let request = remote_write::write_request(exp, now_ms);
                remote_write::send(url, &settings.remote_write, remote_write::encode(&request))
                    .await
                    .err()
            }
            None => None,
        }
    };
    let (push, remote) = tokio::join!(push, remote);
    if let Some(e) = push {
        failures.push(("pushgateway", e));
    }
    if let Some(e) = remote {
        failures.push(("remote_write", e));
    }
    failures
}
