//! Volvo's per-minute request limit, shared by every process of one account. Volvo counts
//! requests per user over a sliding minute, whoever sends them (a timer run, a hand run,
//! `check`), so the window is kept in a small file beside the account's state
//! (`<state_file>.window`), changed only under the state's lock. A run reserves its places
//! before it asks; what finds no place is deferred to the next run, never sent into a 429.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The sliding window's length.
const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Sent {
    /// Unix milliseconds of each request reserved in the last minute.
    #[serde(default)]
    sent: Vec<i64>,
}

/// One account's window.
#[derive(Debug, Clone)]
pub struct Window {
    file: PathBuf,
    lock: PathBuf,
    per_minute: usize,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

impl Window {
    /// The window of the account whose state is `state_file`, allowing `per_minute`
    /// requests (0: no limit).
    pub fn new(state_file: &Path, per_minute: usize) -> Window {
        Window {
            file: with_suffix(state_file, ".window"),
            lock: crate::fsutil::lock_path(state_file),
            per_minute,
        }
    }

    /// Reserves up to `wanted` places now and returns how many it got.
    pub fn reserve(&self, wanted: usize) -> usize {
        if self.per_minute == 0 || wanted == 0 {
            return wanted;
        }
        let _lock = crate::state::lock(&self.lock);
        let now = crate::clock::now_ms();
        let mut w: Sent = std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // A time in the future (a clock set back) would block the window: it is dropped.
        w.sent.retain(|t| *t > now - MINUTE_MS && *t <= now);
        let granted = wanted.min(self.per_minute.saturating_sub(w.sent.len()));
        w.sent.extend(std::iter::repeat_n(now, granted));
        let bytes = serde_json::to_vec(&w).expect("the window serializes");
        if let Err(e) = crate::fsutil::write_atomic(&self.file, &bytes, 0o600, false) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save the request window; other runs may not see these requests");
        }
        granted
    }

    /// Places taken in the last minute, by every process of the account.
    pub fn used(&self) -> usize {
        let now = crate::clock::now_ms();
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Sent>(&b).ok())
            .map(|w| {
                w.sent
                    .iter()
                    .filter(|t| **t > now - MINUTE_MS && **t <= now)
                    .count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_windows_on_one_file_share_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10);
        let b = Window::new(&state, 10);
        assert_eq!(a.reserve(7), 7);
        assert_eq!(b.reserve(7), 3, "the second process gets what is left");
        assert_eq!(a.reserve(1), 0);
        assert_eq!(a.used(), 10);
        assert_eq!(Window::new(&state, 0).reserve(500), 500, "0 turns it off");
    }
}
