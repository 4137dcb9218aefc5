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

/// Whether an earlier write to standard output still blocks (a long-running process whose
/// reader stopped): a second one would only queue behind it, a thread each.
static STDOUT_BUSY: AtomicBool = AtomicBool::new(false);

/// Lets the next write to standard output go, however this one ended.
struct Busy;

impl Drop for Busy {
    fn drop(&mut self) {
        STDOUT_BUSY.store(false, Ordering::Release);
    }
}

/// The exposition on standard output. A file takes it at once. A reader (a pipe, a terminal)
/// gets it on a thread of its own, so that one that stops reading holds up neither the other
/// outputs nor a stop signal, in pieces of whole lines until the run's deadline: what it has
/// taken by then ends with a whole line. A pipe its reader closed (`| head`) is no failure: the
/// reader had what it wanted.
async fn write_stdout(text: Bytes, deadline: Instant) -> anyhow::Result<()> {
    if !stdout_has_reader() {
        let mut out = std::io::stdout().lock();
        return said(out.write_all(&text).and_then(|()| out.flush()));
    }
    if STDOUT_BUSY.swap(true, Ordering::AcqRel) {
        anyhow::bail!("standard output is still not read since an earlier run");
    }
    let until = deadline.into_std();
    let task = tokio::task::spawn_blocking(move || {
        let _busy = Busy;
        write_lines(&text, until)
    });
    match tokio::time::timeout_at(deadline, task).await {
        Ok(written) => said(written.unwrap_or_else(|e| Err(std::io::Error::other(e)))),
        Err(_) => said(Err(std::io::ErrorKind::TimedOut.into())),
    }
}

/// What a write to standard output came to, as the run says it.
fn said(written: std::io::Result<()>) -> anyhow::Result<()> {
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(anyhow::anyhow!(
            "standard output was not read whole before the run's deadline (collect.timeout); what was read ends with a whole line"
        )),
        Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
    }
}

/// Whether standard output waits for a reader: a pipe, a socket or a terminal.
fn stdout_has_reader() -> bool {
    use std::io::IsTerminal;
    // SAFETY: fstat fills the zeroed buffer this function owns.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let kind = (unsafe { libc::fstat(libc::STDOUT_FILENO, &mut st) } == 0)
        .then_some(st.st_mode & libc::S_IFMT);
    std::io::stdout().is_terminal() || matches!(kind, Some(libc::S_IFIFO | libc::S_IFSOCK))
}

/// The most a pipe takes whole or not at all (POSIX's PIPE_BUF on Linux).
const WHOLE_WRITE: usize = 4096;

/// Writes `text` in pieces that end at a line's end and that a pipe takes whole or not at all,
/// and stops between two once `until` has passed.
fn write_lines(text: &[u8], until: std::time::Instant) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut rest = text;
    while !rest.is_empty() {
        if std::time::Instant::now() >= until {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let piece = &rest[..rest.len().min(WHOLE_WRITE)];
        let cut = match piece.iter().rposition(|b| *b == b'\n') {
            Some(i) if piece.len() < rest.len() => i + 1,
            _ => piece.len(),
        };
        out.write_all(&rest[..cut])?;
        rest = &rest[cut..];
    }
    out.flush()
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
        write_stdout(text.clone(), deadline).await.err()
    };
    let push = async {
        let url = outputs.pushgateway.as_ref()?;
        let send = pushgateway::push(url, &settings.pushgateway, text);
        by_deadline(deadline, send).await
    };
    let remote = async {
        let url = outputs.remote_write.as_ref()?;
        let request = remote_write::write_request(exp, settings.clock.now_ms());
        let body = remote_write::encode(&request);
        let send = remote_write::send(url, &settings.remote_write, body);
        by_deadline(deadline, send).await
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
