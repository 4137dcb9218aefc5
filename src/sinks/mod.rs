//! Outputs: where the encoded exposition goes. Encoding happens once, before; each output is
//! small and independent, and a failing one never stops the others.

pub mod pushgateway;
pub mod textfile;

use std::io::Write;

use crate::config::Outputs;
use crate::metrics::Exposition;

/// Delivers `text` to every configured output; returns the failures as (output, error).
pub async fn deliver(
    outputs: &Outputs,
    _exp: &Exposition,
    text: &[u8],
) -> Vec<(&'static str, String)> {
    let mut failures = Vec::new();
    if outputs.stdout {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text).and_then(|_| out.flush()) {
            failures.push(("stdout", e.to_string()));
        }
    }
    if let Some(path) = &outputs.textfile {
        if let Err(e) = textfile::write(path, text) {
            failures.push(("textfile", e));
        }
    }
    if let Some(url) = &outputs.pushgateway {
        if let Err(e) = pushgateway::push(url, text).await {
            failures.push(("pushgateway", e));
        }
    }
    if outputs.remote_write.is_some() {
        failures.push((
            "remote_write",
            "remote write is not available in this version".to_string(),
        ));
    }
    failures
}
