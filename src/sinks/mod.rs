//! Outputs: where the encoded exposition goes. Encoding happens once, before; each output is
//! small and independent, and a failing one never stops the others: [`http`] (the HTTP outputs'
//! shared client), [`pushgateway`], [`remote_write`] and [`textfile`], each using only those
//! before it.

pub(crate) mod http;
pub mod pushgateway;
pub mod remote_write;
pub mod textfile;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Settings;
use crate::metrics::Exposition;

/// How long the network outputs may take: the longest of their timeouts (none without one).
pub fn time_needed(settings: &Settings) -> Duration {
    let timeouts = [
        settings
            .output
            .pushgateway
            .as_ref()
            .map(|_| settings.pushgateway.http.timeout),
        settings
            .output
            .remote_write
            .as_ref()
            .map(|_| settings.remote_write.timeout),
    ];
    timeouts.into_iter().flatten().max().unwrap_or_default()
}

/// A network output's send, ended by the run's deadline if it has not ended by then.
async fn by_deadline(
    deadline: Instant,
    send: impl Future<Output = anyhow::Result<()>>,
) -> Option<anyhow::Error> {
    match tokio::time::timeout_at(deadline, send).await {
        Ok(result) => result.err(),
        Err(_) => Some(anyhow::anyhow!(
            "no answer before the run's deadline (collect.timeout)"
        )),
    }
}

/// Delivers `text` (the encoded `exp`) to every configured output, the network ones within
/// the run's `deadline`; returns the failures as (output, error). Each error says what was
/// tried where; print it with `{:#}` for one line.
pub async fn deliver(
    settings: &Settings,
    exp: &Exposition,
    text: &[u8],
    deadline: Instant,
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
        let url = outputs.pushgateway.as_ref()?;
        by_deadline(
            deadline,
            pushgateway::push(url, &settings.pushgateway, text),
        )
        .await
    };
    let remote = async {
        let url = outputs.remote_write.as_ref()?;
        let request = remote_write::write_request(exp, settings.clock.now_ms());
        let body = remote_write::encode(&request);
        by_deadline(
            deadline,
            remote_write::send(url, &settings.remote_write, body),
        )
        .await
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
