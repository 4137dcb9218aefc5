//! The small state file beside the token: what a one-shot run must remember until the next
//! one. Request counters (so they are real Prometheus counters across runs), the last
//! successful run, endpoints a car does not support, and APIs that are gone for a while.
//! A missing file is a first run; a damaged, foreign or oversized one is rebuilt with one
//! warning. Before a run asks anything, [`preflight`] makes sure the state can be saved, and
//! the save at its end waits for the state's lock no longer than the run's deadline allows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{ExitCode, Fatal};
use crate::fsutil;

pub const VERSION: u32 = 1;

/// Requests made in one run, by (api, endpoint template, status or error kind); added to the
/// state's counters at the end of the run.
pub type RequestCounts = BTreeMap<(String, String, String), u64>;
/// How long a "not supported" or "gone" answer is believed before asking again.
pub const BACKOFF_S: i64 = 24 * 3600;
/// The most a state file may hold. A 100-car account's file is about 0.96 MB (measured with
/// `simulate --cars 100`), so this leaves room for fleets of over a thousand cars, while a
/// runaway or foreign file can no longer take hundreds of megabytes and seconds to read.
pub const STATE_MAX: u64 = 16 << 20;
/// Volvo replenishes the daily quota at 00:00 UTC: no pause is longer than a day (and an
/// hour, for clocks that disagree). A longer one read from an answer is cut to this.
pub const QUOTA_PAUSE_MAX_S: i64 = 25 * 3600;
/// How long the save at the end of a run may wait for the state's lock past the run's
/// deadline: a run that used all its time still keeps what it asked, unless another process
/// holds the lock that long.
pub const SAVE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// "api endpoint status" → requests made, across runs.
    #[serde(default)]
    pub requests: BTreeMap<String, u64>,
    /// api → retries made, across runs.
    #[serde(default)]
    pub retries: BTreeMap<String, u64>,
    /// Unix seconds of the last run that collected everything.
    #[serde(default)]
    pub last_success: Option<f64>,
    /// "vin api endpoint" → Unix seconds until which the endpoint is not asked.
    #[serde(default)]
    pub not_supported: BTreeMap<String, i64>,
    /// api → Unix seconds until which the API is not asked (Extended Vehicle's shutdown).
    #[serde(default)]
    pub api_unavailable: BTreeMap<String, i64>,
    /// Unix seconds until which the API key's daily quota is used up.
    #[serde(default)]
    pub quota_until: Option<i64>,
    /// "vin endpoint" → the last answer of an endpoint on a slower tier, replayed between
    /// fetches (see `schedule`).
    #[serde(default)]
    pub cache: BTreeMap<String, CacheEntry>,
    /// vin → what the planner learnt of the car by the last run.
    #[serde(default)]
    pub cars: BTreeMap<String, CarMemory>,
}

/// What a car was doing at the end of the last run, from what it uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing new since the run before: only the answers that show a wake are asked.
    #[default]
    Asleep,
    /// Awake but not driving or charging (unlocked, a door opened): its state every run.
    ParkedAwake,
    /// The engine runs: its trip facts every run.
    Driving,
    /// Charging: its energy state every run.
    Charging,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Asleep,
        Mode::ParkedAwake,
        Mode::Driving,
        Mode::Charging,
    ];

    /// The `mode` label of the self-metrics.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Asleep => "asleep",
            Mode::ParkedAwake => "parked_awake",
            Mode::Driving => "driving",
            Mode::Charging => "charging",
        }
    }
}

/// One car's memory between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CarMemory {
    pub mode: Mode,
    /// The newest upload time (Unix seconds) seen in any of the car's answers.
    pub last_upload: i64,
    /// A trip ended but its trip-end answers could not all be asked: the next run asks them.
    #[serde(default)]
    pub trip_end_pending: bool,
}

/// One cached answer: when it was fetched (Unix seconds) and its body, kept as the raw JSON
/// text it came as (no parsed tree in memory for every car).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheEntry {
    pub fetched_at: i64,
    pub body: Box<serde_json::value::RawValue>,
}

impl PartialEq for CacheEntry {
    fn eq(&self, other: &Self) -> bool {
        self.fetched_at == other.fetched_at && self.body.get() == other.body.get()
    }
}

impl CacheEntry {
    /// An answer's body as a cache entry; `None` when it is not JSON.
    pub fn new(fetched_at: i64, body: Vec<u8>) -> Option<CacheEntry> {
        let text = String::from_utf8(body).ok()?;
        serde_json::value::RawValue::from_string(text)
            .ok()
            .map(|body| CacheEntry { fetched_at, body })
    }
}

impl Default for State {
    fn default() -> Self {
        State {
            version: VERSION,
            requests: BTreeMap::new(),
            retries: BTreeMap::new(),
            last_success: None,
            not_supported: BTreeMap::new(),
            api_unavailable: BTreeMap::new(),
            quota_until: None,
            cache: BTreeMap::new(),
            cars: BTreeMap::new(),
        }
    }
}

/// How long an answer is kept for replay: longer than the slowest tier stretched for a fleet.
pub const CACHE_KEPT_S: i64 = 8 * 86_400;

pub fn endpoint_key(vin: &str, api: &str, endpoint: &str) -> String {
    format!("{vin} {api} {endpoint}")
}

impl State {
    /// Loads the state; never fails the run.
    pub fn load(path: &Path) -> State {
        let bytes = match fsutil::read_capped(path, STATE_MAX) {
            Ok(b) => b,
            Err(fsutil::ReadError::NotFound) => return State::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read the state file ({e}); starting a new one (counters restart)");
                return State::default();
            }
        };
        match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.version == VERSION => s,
            Ok(s) => {
                tracing::warn!(file = %path.display(), version = s.version, "state file of another version; starting a new one (counters restart)");
                State::default()
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "state file is damaged; starting a new one (counters restart)");
                State::default()
            }
        }
    }

    /// Reads the state without a word when it is missing or unusable.
    fn read_quietly(path: &Path) -> State {
        fsutil::read_capped(path, STATE_MAX)
            .ok()
            .and_then(|b| serde_json::from_slice::<State>(&b).ok())
            .filter(|s| s.version == VERSION)
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        // Compact: with many cars the cached answers make it large.
        let mut bytes = serde_json::to_vec(self).expect("state serializes");
        bytes.push(b'\n');
        fsutil::write_atomic(path, &bytes, 0o600, false)
    }

    /// Forgets back-offs that have run out.
    pub fn expire(&mut self, now: i64) {
        self.not_supported.retain(|_, until| *until > now);
        self.api_unavailable.retain(|_, until| *until > now);
        self.quota_until = self
            .quota_until
            .filter(|u| *u > now)
            .map(|u| u.min(now + QUOTA_PAUSE_MAX_S));
        // Answers of cars that left the account, or older than any tier, go.
        self.cache.retain(|_, e| now - e.fetched_at < CACHE_KEPT_S);
    }

    pub fn is_not_supported(&self, vin: &str, api: &str, endpoint: &str, now: i64) -> bool {
        self.not_supported
            .get(&endpoint_key(vin, api, endpoint))
            .is_some_and(|until| *until > now)
    }

    pub fn unavailable_until(&self, api: &str, now: i64) -> Option<i64> {
        self.api_unavailable.get(api).copied().filter(|u| *u > now)
    }
}

/// `<state_file>.window`, the account's request window beside its state.
pub fn window_file(state_file: &Path) -> PathBuf {
    let mut p = state_file.as_os_str().to_owned();
    p.push(".window");
    PathBuf::from(p)
}

/// Checks, before a run asks anything, that its state can be kept: the state and window
/// files, when they exist, are regular files this user can read, their folder takes new files
/// (they are replaced atomically), and the lock file opens. A state that cannot be kept makes
/// every run a cold start that spends about 90 requests, so this is a configuration error
/// (exit 78) naming the path, not a warning.
pub fn preflight(state_file: &Path) -> Result<(), Fatal> {
    let unusable = |what: String| {
        Fatal::config(format!(
            "{what}: every run keeps its counters, cached answers and Volvo's request window in the state file, and without them each run starts cold (about 90 requests); its folder must exist and be writable by this user: fix it, or set state_file elsewhere"
        ))
    };
    for file in [state_file.to_path_buf(), window_file(state_file)] {
        match fsutil::check_regular(&file) {
            Err(fsutil::ReadError::Io(e)) if fsutil::out_of_descriptors(&e) => return Ok(()),
            Err(e) => return Err(unusable(format!("cannot use {}: {e}", file.display()))),
            Ok(()) => {}
        }
    }
    let dir = fsutil::folder_of(state_file);
    match fsutil::probe_folder(&dir) {
        // A limit of the moment, not of the setup: the run goes on and says it where it bites.
        Err(e) if e.out_of_descriptors() => return Ok(()),
        Err(e) => {
            return Err(unusable(format!(
                "the state file {} cannot be saved: {e}",
                state_file.display()
            )))
        }
        Ok(()) => {}
    }
    let lock = fsutil::lock_path(state_file);
    match fsutil::check_lock_file(&lock) {
        Ok(()) => Ok(()),
        // A limit of the moment, not of the setup: the run goes on and says it where it bites.
        Err(fsutil::LockError::Create(e)) if fsutil::out_of_descriptors(&e) => Ok(()),
        Err(e) => Err(unusable(e.describe(&lock))),
    }
}

/// The state's lock for the save at the end of a run, as it was found: taken, not available
/// here (a warning: the run goes on without it), or held by another process past the run's
/// deadline (the run fails, and says which lock).
#[derive(Debug)]
pub struct SaveLock(Result<Option<fsutil::LockFile>, String>);

impl SaveLock {
    /// Why the state cannot be saved this run, when another process holds its lock.
    pub fn problem(&self) -> Option<Fatal> {
        self.0
            .as_ref()
            .err()
            .map(|m| Fatal::new(ExitCode::Temporary, m.clone()))
    }
}

/// Takes the state's lock for the save, waiting while another process holds it until the
/// run's `deadline` (or [`SAVE_GRACE`] from now, when the deadline has passed already).
pub async fn lock_for_save(state_file: &Path, deadline: Instant) -> SaveLock {
    let lock_path = fsutil::lock_path(state_file);
    let until = deadline.max(Instant::now() + SAVE_GRACE);
    match fsutil::lock_until(&lock_path, until).await {
        Ok(lock) => SaveLock(Ok(Some(lock))),
        Err(e @ fsutil::LockError::Held(_)) => SaveLock(Err(format!(
            "cannot save the state file {}: {}; this run's request counts and answers are not kept",
            state_file.display(),
            e.describe(&lock_path)
        ))),
        Err(e) => {
            tracing::warn!(
                "{}; saving the state without the lock",
                e.describe(&lock_path)
            );
            SaveLock(Ok(None))
        }
    }
}

/// Saves this run's state merged into the one on disk, under the state's lock (`lock`, taken
/// by [`lock_for_save`]): counters add this run's `requests` and `retries`; back-offs, the
/// quota and cached answers take this run's news; the last success is the latest. Returns the
/// merged state (whose counters the run exports). A failed write is a warning; a lock another
/// process held past the deadline saves nothing (the run reports it as a failure).
pub fn save_merged(
    lock: SaveLock,
    path: &Path,
    ours: State,
    requests: &RequestCounts,
    retries: &BTreeMap<String, u64>,
    now: i64,
) -> State {
    let held = lock.0.is_ok();
    let mut merged = if held {
        State::read_quietly(path)
    } else {
        State::default()
    };
    for ((api, endpoint, status), n) in requests {
        *merged
            .requests
            .entry(format!("{api} {endpoint} {status}"))
            .or_default() += n;
    }
    for (api, n) in retries {
        *merged.retries.entry(api.clone()).or_default() += n;
    }
    merged.last_success = match (merged.last_success, ours.last_success) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    merged.not_supported.extend(ours.not_supported);
    merged.api_unavailable.extend(ours.api_unavailable);
    merged.quota_until = merged.quota_until.max(ours.quota_until);
    merged.cache.extend(ours.cache);
    merged.cars.extend(ours.cars);
    merged.expire(now);
    if held {
        if let Err(e) = merged.save(path) {
            tracing::warn!(file = %path.display(), "cannot save the state file ({}); counters will restart", fsutil::describe(&e));
        }
    }
    drop(lock);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rebuild_when_damaged_or_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.state.json");
        assert_eq!(State::load(&p), State::default());
        let mut s = State::default();
        s.requests
            .insert("energy /vehicles/{vin}/state 200".into(), 3);
        s.not_supported
            .insert(endpoint_key("V", "connected_vehicle", "engine"), 100);
        s.save(&p).unwrap();
        assert_eq!(State::load(&p), s);
        assert!(s.is_not_supported("V", "connected_vehicle", "engine", 99));
        assert!(!s.is_not_supported("V", "connected_vehicle", "engine", 100));
        std::fs::write(&p, "{garbage").unwrap();
        assert_eq!(State::load(&p), State::default());
        std::fs::write(&p, r#"{"version": 99}"#).unwrap();
        assert_eq!(State::load(&p), State::default());
    }

    #[tokio::test]
    async fn overlapping_runs_add_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let mut counts = RequestCounts::new();
        counts.insert(("energy".into(), "/x".into(), "200".into()), 2);
        let soon = || Instant::now() + Duration::from_secs(1);
        // Two runs that both started from an empty state.
        let lock = lock_for_save(&p, soon()).await;
        let a = save_merged(lock, &p, State::default(), &counts, &BTreeMap::new(), 0);
        assert_eq!(a.requests["energy /x 200"], 2);
        let lock = lock_for_save(&p, soon()).await;
        let b = save_merged(lock, &p, State::default(), &counts, &BTreeMap::new(), 0);
        assert_eq!(b.requests["energy /x 200"], 4);
        assert_eq!(State::load(&p).requests["energy /x 200"], 4);
    }
}
