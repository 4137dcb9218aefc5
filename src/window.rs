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
    clock: crate::clock::Clock,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

impl Window {
    /// The window of the account whose state is `state_file`, allowing `per_minute`
    /// requests (0: no limit).
    pub fn new(state_file: &Path, per_minute: usize, clock: crate::clock::Clock) -> Window {
        Window {
            file: with_suffix(state_file, ".window"),
            lock: crate::fsutil::lock_path(state_file),
            per_minute,
            clock,
        }
    }

    /// Reserves up to `wanted` places now and returns how many it got.
    pub fn reserve(&self, wanted: usize) -> usize {
        if self.per_minute == 0 || wanted == 0 {
            return wanted;
        }
        let _lock = crate::state::lock(&self.lock);
        let now = self.clock.now_ms();
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
        let now = self.clock.now_ms();
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
/// earlier batches are used first, the rest are reserved (`reserve(n)` returns how many it
/// got), and what the batch cannot use is carried on.
pub fn admit(
    batch: usize,
    held: usize,
    carried: usize,
    reserve: impl FnOnce(usize) -> usize,
) -> Admission {
    let need = batch + held;
    let from_carried = carried.min(need);
    let usable = from_carried + reserve(need - from_carried);
    let asked = usable.saturating_sub(held).min(batch);
    Admission {
        asked,
        carried: carried - from_carried + usable - asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_windows_on_one_file_share_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10, Default::default());
        let b = Window::new(&state, 10, Default::default());
        assert_eq!(a.reserve(7), 7);
        assert_eq!(b.reserve(7), 3, "the second process gets what is left");
        assert_eq!(a.reserve(1), 0);
        assert_eq!(a.used(), 10);
        assert_eq!(
            Window::new(&state, 0, Default::default()).reserve(500),
            500,
            "0 turns it off"
        );
    }

    /// The admit arithmetic, case by case: (batch, held, carried, places the window gives)
    /// → (asked now, carried on), and what was asked of the window.
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
            let mut asked_of_window = 0;
            let a = admit(batch, held, carried, |n| {
                asked_of_window = n;
                n.min(room)
            });
            let case = (batch, held, carried, room);
            assert_eq!((a.asked, a.carried), (asked, left), "{case:?}");
            assert_eq!(asked_of_window, wanted, "{case:?}");
        }
    }
}
