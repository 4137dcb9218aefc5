//! Volvo's per-minute request limit, shared by every process of one account. Volvo counts
//! requests per user over a sliding minute, whoever sends them (a timer run, a hand run,
//! `check`), so the window is kept in a small file beside the account's state
//! (`<state_file>.window`), changed only under the state's lock, which is waited for no
//! longer than the run's deadline. A run reserves its places before it asks; what finds no
//! place is deferred to the next run, never sent into a 429.
//!
//! A window file that cannot be read (damaged, deleted, not a regular file) is not taken for
//! an empty minute: every reservation also notes its time in the state's lock file, and a
//! damaged window file still has the time it was written. When either says the account asked
//! Volvo within the last minute, the minute is taken as full from then on, with a warning;
//! only when neither does (a first run, or an account quiet for a minute) does the window
//! start empty.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::fsutil::{self, LockFile, ReadError};

/// The sliding window's length.
const MINUTE_MS: i64 = 60_000;
/// The most a window file may hold: one number for each place of the minute.
const WINDOW_MAX: u64 = 1 << 20;

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
    /// The run's deadline: no wait for the lock goes past it.
    deadline: Instant,
    clock: crate::clock::Clock,
}

impl Window {
    /// The window of the account whose state is `state_file`, allowing `per_minute`
    /// requests (0: no limit), for a run that ends at `deadline` and reads `clock`.
    pub fn new(
        state_file: &Path,
        per_minute: usize,
        deadline: Instant,
        clock: crate::clock::Clock,
    ) -> Window {
        Window {
            file: crate::state::window_file(state_file),
            lock: fsutil::lock_path(state_file),
            per_minute,
            deadline,
            clock,
        }
    }

    /// Reserves up to `wanted` places now and returns how many it got: none when another
    /// process holds the state's lock until the deadline (which the log says).
    pub async fn reserve(&self, wanted: usize) -> usize {
        match self.try_reserve(wanted).await {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!("{e}");
                0
            }
        }
    }

    /// [`Window::reserve`], with the reason when the lock could not be had in time.
    pub async fn try_reserve(&self, wanted: usize) -> Result<usize, String> {
        if self.per_minute == 0 || wanted == 0 {
            return Ok(wanted);
        }
        let lock = match fsutil::lock_until(&self.lock, self.deadline).await {
            Ok(lock) => Some(lock),
            Err(e @ fsutil::LockError::Held(_)) => {
                return Err(format!(
                    "Volvo's request window cannot be used, so nothing more is asked: {}",
                    e.describe(&self.lock)
                ))
            }
            Err(e) => {
                tracing::warn!(
                    "{}; using the request window without the lock",
                    e.describe(&self.lock)
                );
                None
            }
        };
        let now = self.clock.now_ms();
        let mut sent = self.load(now, lock.as_ref());
        // A time in the future (a clock set back) would block the window: it is dropped.
        sent.retain(|t| *t > now - MINUTE_MS && *t <= now);
        let granted = wanted.min(self.per_minute.saturating_sub(sent.len()));
        sent.extend(std::iter::repeat_n(now, granted));
        let bytes = serde_json::to_vec(&Sent { sent }).expect("the window serializes");
        if let Err(e) = fsutil::write_atomic(&self.file, &bytes, 0o600, false) {
            tracing::warn!(file = %self.file.display(), "cannot save the request window ({}); other runs may not see these requests", fsutil::describe(&e));
        }
        if granted > 0 {
            if let Some(lock) = &lock {
                lock.note(&now.to_string());
            }
        }
        Ok(granted)
    }

    /// The places taken as the window file records them; when it cannot tell, the safe
    /// assumption of the module's rule.
    fn load(&self, now: i64, lock: Option<&LockFile>) -> Vec<i64> {
        let (missing, what) = match fsutil::read_capped(&self.file, WINDOW_MAX) {
            Ok(bytes) => match serde_json::from_slice::<Sent>(&bytes) {
                Ok(w) => return w.sent,
                Err(_) => (false, "is damaged".to_string()),
            },
            Err(ReadError::NotFound) => (true, "is missing".to_string()),
            Err(e) => (false, format!("cannot be read ({e})")),
        };
        let mut last = lock
            .and_then(|l| l.noted())
            .and_then(|n| n.parse::<i64>().ok());
        if !missing {
            // Something is there: it was written at its time, or, when that is unknown, now.
            last = last.max(Some(self.modified(&self.file).unwrap_or(now)));
        }
        let Some(last) = last.map(|t| t.min(now)) else {
            return Vec::new();
        };
        if last <= now - MINUTE_MS {
            if !missing {
                tracing::warn!(file = %self.file.display(), "the request window {what}; this account last asked Volvo more than a minute ago, so a new window starts");
            }
            return Vec::new();
        }
        let until = crate::clock::datetime((last + MINUTE_MS).div_euclid(1000));
        tracing::warn!(
            file = %self.file.display(),
            "the request window {what}, but this account asked Volvo within the last minute: the minute is taken as full until {}, and what does not fit is deferred",
            until.to_rfc3339()
        );
        vec![last; self.per_minute]
    }

    /// A file's modification time in Unix milliseconds, unless the clock was set (`clock`):
    /// file times are on another clock then.
    fn modified(&self, path: &Path) -> Option<i64> {
        if self.clock.is_set() {
            return None;
        }
        let t = std::fs::metadata(path).ok()?.modified().ok()?;
        let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    }
}

/// How one batch of requests took its places in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// How many of the batch go out now (the first ones; the rest are deferred).
    pub asked: usize,
    /// Places reserved and not used, kept for the requests that wait for an answer in flight.
    pub carried: usize,
}

/// A batch of `batch` requests, with `held` places to keep for requests that will follow from
/// their answers (an energy state after its capabilities): the places already `carried` from
/// earlier batches are used first; the rest, [`to_reserve`], are asked of the window, which
/// `granted` of them; what the batch cannot use is carried on.
pub fn admit(batch: usize, held: usize, carried: usize, granted: usize) -> Admission {
    let need = batch + held;
    let from_carried = carried.min(need);
    let usable = from_carried + granted.min(need - from_carried);
    let asked = usable.saturating_sub(held).min(batch);
    Admission {
        asked,
        carried: carried - from_carried + usable - asked,
    }
}

/// The places a batch asks of the window: what it and the held places need beyond the
/// carried ones.
pub fn to_reserve(batch: usize, held: usize, carried: usize) -> usize {
    (batch + held).saturating_sub(carried)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(1)
    }

    #[tokio::test]
    async fn two_windows_on_one_file_share_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10, soon(), Default::default());
        let b = Window::new(&state, 10, soon(), Default::default());
        assert_eq!(a.reserve(7).await, 7);
        assert_eq!(
            b.reserve(7).await,
            3,
            "the second process gets what is left"
        );
        assert_eq!(a.reserve(1).await, 0);
        assert_eq!(
            Window::new(&state, 0, soon(), Default::default())
                .reserve(500)
                .await,
            500,
            "0 turns it off"
        );
    }

    #[tokio::test]
    async fn a_lost_window_is_a_full_minute_unless_nothing_was_asked_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let w = Window::new(&state, 10, soon(), Default::default());
        // A first run: nothing on disk says the minute was used.
        assert_eq!(w.reserve(2).await, 2);
        // Deleted: the lock file's note says the account asked just now.
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        assert_eq!(w.reserve(2).await, 0);
        // Damaged: the same.
        std::fs::write(dir.path().join("state.json.window"), "{\"sent\": [1,").unwrap();
        assert_eq!(w.reserve(2).await, 0);
        // Both the window and the lock file gone: nothing tells, so a first run again.
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        std::fs::remove_file(dir.path().join("state.json.lock")).unwrap();
        assert_eq!(w.reserve(2).await, 2);
    }

    /// The admit arithmetic, case by case: (batch, held, carried, places the window gives)
    /// → (asked now, carried on), and how many were asked of the window.
    #[test]
    fn a_batch_takes_carried_places_first_and_holds_places_for_what_follows() {
        let cases = [
            // Room for everything: the batch goes, the held places are carried.
            ((10, 2, 0, usize::MAX), (10, 2), 12),
            // The window gives 5 of 12: the held places come first, 3 of the batch go.
            ((10, 2, 0, 5), (3, 2), 12),
            // Fewer places than held: nothing of the batch goes, all is carried.
            ((10, 4, 0, 3), (0, 3), 14),
            // Carried places cover the batch: the window is not asked at all.
            ((3, 0, 5, usize::MAX), (3, 2), 0),
            // Carried places cover part; the window gives the rest.
            ((6, 1, 4, usize::MAX), (6, 1), 3),
            // A full window and nothing carried: all deferred.
            ((4, 0, 0, 0), (0, 0), 4),
            // An empty batch that only holds: the places are reserved and carried.
            ((0, 2, 0, usize::MAX), (0, 2), 2),
        ];
        for ((batch, held, carried, room), (asked, left), wanted) in cases {
            let case = (batch, held, carried, room);
            let n = to_reserve(batch, held, carried);
            assert_eq!(n, wanted, "{case:?}");
            let a = admit(batch, held, carried, n.min(room));
            assert_eq!((a.asked, a.carried), (asked, left), "{case:?}");
        }
    }
}
