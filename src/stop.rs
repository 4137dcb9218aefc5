//! Stopping on SIGTERM or SIGINT without losing the login: once a [`Stop`] is installed, a
//! signal no longer ends the process outright; it waits until no token refresh is between its
//! request and its save (see `auth::refresh`), then lets the command end.

use crate::error::{ExitCode, Fatal};

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    Stop::install().signal().await
}

/// SIGTERM and SIGINT, caught from the moment of [`Stop::install`] (until then they end the
/// process at once, which is harmless before any token refresh).
pub struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    pub fn install() -> Stop {
        use tokio::signal::unix::{signal, SignalKind};
        Stop {
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
        }
    }

    /// Resolves on the next SIGTERM or SIGINT.
    pub async fn signal(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }

    /// Resolves after a stop signal once no token refresh is between its request and its
    /// save; the guard keeps new ones from starting. The work raced against this future keeps
    /// running meanwhile, so a refresh in flight can finish and save.
    pub async fn requested(&mut self) -> tokio::sync::RwLockWriteGuard<'static, ()> {
        self.signal().await;
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
