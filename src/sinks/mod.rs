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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use tokio::time::Instant;

use crate::config::Settings;
use crate::metrics::Exposition;

/// What standard output is given: a reader that keeps up takes the text at once.
const STDOUT_TIME: Duration = Duration::from_secs(1);

/// How long the outputs may take: the longest of the network outputs' timeouts, and a second
/// for standard output (none without an output that waits for someone).
pub fn time_needed(settings: &Settings) -> Duration {
    let timeouts = [
        settings.output.stdout.then_some(STDOUT_TIME),
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

/// An output's send, ended by the run's deadline if it has not ended by then; `late` says
/// what was still missing.
async fn by_deadline(
    deadline: Instant,
    late: &str,
    send: impl Future<Output = anyhow::Result<()>>,
) -> Option<anyhow::Error> {
    match tokio::time::timeout_at(deadline, send).await {
        Ok(result) => result.err(),
        Err(_) => Some(anyhow::anyhow!(
            "{late} before the run's deadline (collect.timeout)"
        )),
    }
}

/// Whether an earlier write to standard output still blocks (a long-running process whose
/// reader stopped): a second one would only queue behind it, a thread each.
static STDOUT_BUSY: AtomicBool = AtomicBool::new(false);

/// The exposition on standard output, written on a thread of its own: a reader that stops
/// reading (a stalled pipe, a paused terminal) must hold up neither the other outputs, nor the
/// deadline, nor a stop signal. A pipe its reader closed (`| head`) is no failure: the reader
/// had what it wanted.
async fn write_stdout(text: Bytes) -> anyhow::Result<()> {
    if STDOUT_BUSY.swap(true, Ordering::AcqRel) {
        anyhow::bail!("standard output is still not read since an earlier run");
    }
    let written = tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&text).and_then(|()| out.flush());
        STDOUT_BUSY.store(false, Ordering::Release);
        written
    })
    .await
    .expect("writing standard output does not panic");
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

/// Delivers `text` (the encoded `exp`) to every configured output, all but the textfile
/// together and within the run's `deadline`; returns the failures as (output, error). Each
/// error says what was tried where; print it with `{:#}` for one line.
pub async fn deliver(
    settings: &Settings,
    exp: &Exposition,
    text: &Bytes,
    deadline: Instant,
) -> Vec<(&'static str, anyhow::Error)> {
    let outputs = &settings.output;
    // A local file, written at once: it never waits for a reader.
    let textfile = outputs
        .textfile
        .as_ref()
        .and_then(|path| textfile::write(path, text).err());
    let stdout = async {
        if !outputs.stdout {
            return None;
        }
        let late = "standard output was not read";
        by_deadline(deadline, late, write_stdout(text.clone())).await
    };
    let push = async {
        let url = outputs.pushgateway.as_ref()?;
        let send = pushgateway::push(url, &settings.pushgateway, text);
        by_deadline(deadline, "no answer", send).await
    };
    let remote = async {
        let url = outputs.remote_write.as_ref()?;
        let request = remote_write::write_request(exp, settings.clock.now_ms());
        let body = remote_write::encode(&request);
        let send = remote_write::send(url, &settings.remote_write, body);
        by_deadline(deadline, "no answer", send).await
    };
    // None waits for another.
    let (stdout, push, remote) = tokio::join!(stdout, push, remote);
    [
        ("stdout", stdout),
        ("textfile", textfile),
        ("pushgateway", push),
        ("remote_write", remote),
    ]
    .into_iter()
    .filter_map(|(output, failure)| Some((output, failure?)))
    .collect()
}
