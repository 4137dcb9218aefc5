//! Stopping on a signal without losing the login: once a [`Stop`] is installed, a signal that
//! would end the process (SIGTERM, SIGINT, SIGHUP from a closed terminal or SSH session,
//! SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, and SIGXCPU, SIGVTALRM, SIGPROF from CPU limits and
//! timers) no longer ends it outright; it waits until no token
//! refresh is between its request and its save (see `auth::refresh`), then lets the command
//! end. Only SIGKILL cannot be waited for.

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::error::{ExitCode, Fatal};

/// Resolves on a stop signal.
pub async fn shutdown_signal() {
    Stop::install().signal().await
}

/// The signals whose default action ends the process and which a user, a terminal or a
/// service manager sends to stop it.
const STOP_SIGNALS: [SignalKind; 10] = [
    SignalKind::terminate(),
    SignalKind::interrupt(),
    SignalKind::hangup(),
    SignalKind::quit(),
    SignalKind::user_defined1(),
    SignalKind::user_defined2(),
    SignalKind::alarm(),
    // A CPU time limit's warning (`LimitCPU=`, `ulimit -t`): the hard limit's SIGKILL comes
    // later, and the refresh in flight is saved before it.
    SignalKind::from_raw(libc::SIGXCPU),
    SignalKind::from_raw(libc::SIGVTALRM),
    SignalKind::from_raw(libc::SIGPROF),
];

/// The stop signals, caught from the moment of [`Stop::install`] (until then they end the
/// process at once, which is harmless before any token refresh).
pub struct Stop {
    signals: Vec<Signal>,
    /// A stop signal has come (its wait for a refresh in flight may still be going on).
    received: bool,
}

impl Stop {
    pub fn install() -> Stop {
        let signals = STOP_SIGNALS
            .iter()
            .map(|&kind| signal(kind).expect("a handler for a stop signal"))
            .collect();
        Stop {
            signals,
            received: false,
        }
    }

    /// Whether a stop signal has come, even if the command ended first for another reason
    /// (its deadline passed while the stop waited for a refresh in flight).
    pub fn received(&self) -> bool {
        self.received
    }

    /// Resolves on the next stop signal.
    pub async fn signal(&mut self) {
        let next = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
        futures_util::future::select_all(next).await;
    }

    /// Resolves after a stop signal once no token refresh is between its request and its
    /// save; the guard keeps new ones from starting. The work raced against this future keeps
    /// running meanwhile, so a refresh in flight can finish and save.
    pub async fn requested(&mut self) -> tokio::sync::RwLockWriteGuard<'static, ()> {
        self.signal().await;
        self.received = true;
        tracing::info!("stop signal received");
        crate::auth::refresh::quiesce().await
    }
}

/// A `--once` run or `check` stopped by a signal before it finished.
pub fn stopped() -> Fatal {
    Fatal::new(
        ExitCode::Temporary,
        "stopped by a signal before the run finished; the token file is saved and the next run collects",
    )
}
