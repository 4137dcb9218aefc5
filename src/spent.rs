//! What each account spent of its API key's day. Volvo counts an API key's requests per day,
//! whoever sends them, so every account keeps its count in a small file beside its state
//! (`<state_file>.day`): the key it counts for (a hash, never the key), the quota day, and the
//! requests of every run, hand run and `check` of that day. A run adds up the files of every
//! account on its key: a few hundred bytes each, so twenty accounts cost twenty small reads.
//! The files are changed only under the state's lock; a damaged one counts as nothing spent,
//! with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// The most a day file may hold.
const DAY_FILE_MAX: u64 = 64 * 1024;
const DAY_S: i64 = 86_400;

/// One account's spending of one quota day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    /// The API key it counts for: the start of its SHA-256, so that a new key starts afresh.
    pub key: String,
    /// The quota day (days since the epoch, counted from the reset).
    pub day: i64,
    /// Requests that reached Volvo that day.
    pub requests: u64,
    /// When in the UTC day Volvo resets the quota, in seconds (0: at midnight), as its
    /// quota answers' countdowns said.
    #[serde(default)]
    pub reset_s: i64,
    /// The counts of the days before, for a week: a clock stepped forward and back again
    /// finds the real day's count where it left it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub before: BTreeMap<i64, u64>,
}

/// How many days' counts a day file keeps besides the current one.
const KEPT_DAYS: i64 = 7;

/// `<state_file>.day`.
pub fn day_file(state_file: &Path) -> PathBuf {
    fsutil::with_suffix(state_file, ".day")
}

/// The quota day `now` is in, for a reset at `reset_s` into the UTC day.
pub fn day_number(now: i64, reset_s: i64) -> i64 {
    (now - reset_s).div_euclid(DAY_S)
}

/// The next reset after `now`.
pub fn next_reset(now: i64, reset_s: i64) -> i64 {
    (day_number(now, reset_s) + 1) * DAY_S + reset_s
}

/// What the account of `state_file` spent of `key`'s day at `now`, and when that day's quota
/// resets. A file of another key or an earlier day counts nothing; a day in the future (the
/// clock stepped back) is taken as today, so that a clock step never frees the budget.
pub fn read(state_file: &Path, key: &str, now: i64) -> Spent {
    let path = day_file(state_file);
    let stored = match fsutil::read_capped(&path, DAY_FILE_MAX) {
        Ok(bytes) => serde_json::from_slice::<Spent>(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), error = %e, "the day's request count is damaged; counting from nothing");
            Spent::default()
        }),
        Err(fsutil::ReadError::NotFound) => Spent::default(),
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read the day's request count ({e}); counting from nothing");
            Spent::default()
        }
    };
    let today = day_number(now, stored.reset_s);
    if stored.key != key {
        return Spent {
            key: key.to_string(),
            day: today,
            reset_s: stored.reset_s,
            ..Spent::default()
        };
    }
    let mut days = stored.before;
    *days.entry(stored.day).or_default() += stored.requests;
    // What was counted under a day still to come (the clock stepped back since) was spent
    // by now: it counts today, so that a clock step never frees the budget.
    let requests = days.range(today..).map(|(_, n)| n).sum();
    days.retain(|day, _| (today - KEPT_DAYS..today).contains(day));
    Spent {
        key: stored.key,
        day: today,
        requests,
        reset_s: stored.reset_s,
        before: days,
    }
}

/// What the accounts of `state_files` (every account on one key, the asking one first) spent
/// of `key`'s day at `now`, and when the day resets (as the first account's file says).
pub fn on_key<'a>(mut state_files: impl Iterator<Item = &'a Path>, key: &str, now: i64) -> Spent {
    let mut total = match state_files.next() {
        Some(first) => read(first, key, now),
        None => return read(Path::new(""), key, now),
    };
    total.requests += state_files.map(|f| read(f, key, now).requests).sum::<u64>();
    total
}

/// Adds `requests` to the account's count of `key`'s day at `now`; `reset_at`, when Volvo's
/// answer said when the quota is replenished, moves the day's boundary there. The caller
/// holds the state's lock.
pub fn add(state_file: &Path, key: &str, now: i64, requests: u64, reset_at: Option<i64>) {
    let mut spent = read(state_file, key, now);
    if let Some(at) = reset_at {
        // Volvo's countdowns are to the second; its reset is on a whole minute.
        let reset_s = (at.rem_euclid(DAY_S) + 30) / 60 * 60 % DAY_S;
        if reset_s != spent.reset_s {
            spent.reset_s = reset_s;
            spent.day = day_number(now, reset_s);
        }
    }
    spent.requests += requests;
    let bytes = serde_json::to_vec(&spent).expect("the day's count serializes");
    if let Err(e) = fsutil::write_atomic(&day_file(state_file), &bytes, 0o600, false) {
        tracing::warn!(file = %day_file(state_file).display(), "cannot save the day's request count ({}); the budget may count too little", fsutil::describe(&e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T09:00:00Z.
    const NINE: i64 = 1_796_083_200 + 9 * 3600;

    #[test]
    fn the_day_resets_at_midnight_utc_or_where_volvo_said() {
        assert_eq!(next_reset(NINE, 0), 1_796_083_200 + DAY_S);
        assert_eq!(next_reset(NINE, 3600), 1_796_083_200 + 3600 + DAY_S);
        assert_eq!(
            day_number(1_796_083_200 - 1, 0) + 1,
            day_number(1_796_083_200, 0)
        );
    }

    /// Guards the count: runs add up within a day and key, a new day or key starts afresh,
    /// a day in the future (a clock stepped back) still counts, a day left by a clock stepped
    /// forward is found again when it steps back, a damaged file counts nothing.
    #[test]
    fn runs_add_up_per_key_and_day() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("token.state.json");
        assert_eq!(read(&state, "k1", NINE).requests, 0);
        add(&state, "k1", NINE, 20, None);
        add(&state, "k1", NINE + 300, 5, None);
        assert_eq!(read(&state, "k1", NINE + 600).requests, 25);
        assert_eq!(read(&state, "k2", NINE + 600).requests, 0, "another key");
        assert_eq!(read(&state, "k1", NINE + DAY_S).requests, 0, "the next day");
        assert_eq!(
            read(&state, "k1", NINE - 3600).requests,
            25,
            "the clock stepped back"
        );
        // Volvo said its quota resets at 01:00: the day runs from there.
        add(&state, "k1", NINE, 0, Some(NINE + 16 * 3600 + 7));
        let s = read(&state, "k1", NINE);
        assert_eq!((s.reset_s, s.requests), (3600, 25));
        // The clock stepped two days forward and back again: the real day's count is found
        // again, with what was spent under the day to come.
        add(&state, "k1", NINE + 2 * DAY_S, 43, None);
        assert_eq!(read(&state, "k1", NINE + 2 * DAY_S).requests, 43);
        assert_eq!(read(&state, "k1", NINE).requests, 25 + 43);
        add(&state, "k1", NINE, 4, None);
        assert_eq!(read(&state, "k1", NINE + 60).requests, 25 + 43 + 4);
        assert_eq!(read(&state, "k1", NINE + DAY_S).requests, 0, "the next day");
        std::fs::write(day_file(&state), "{garbage").unwrap();
        assert_eq!(read(&state, "k1", NINE).requests, 0);
    }
}
