//! The small state file beside the token: what a one-shot run must remember until the next
//! one. Request counters (so they are real Prometheus counters across runs), the last
//! successful run, endpoints a car does not support or is not served, APIs that are gone for a
//! while, the last answers (replayed between fetches), what each car was doing, and each car's
//! trip and charge records. Its keys are typed values; they are written as the short texts the
//! file has always had, and read back once, here. A missing file is a first run; a damaged,
//! foreign or oversized one is rebuilt with one warning. Before a run asks anything,
//! [`preflight`] makes sure the state can be saved, and the save at its end waits for the
//! state's lock no longer than the run's deadline allows.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::endpoints::{Endpoint, Origin};
use crate::error::{ExitCode, Fatal};
use crate::fsutil;
use crate::records::CarRecords;

pub const VERSION: u32 = 1;

/// Requests made in one run, by endpoint and status (or error kind); added to the state's
/// counters at the end of the run.
pub type RequestCounts = BTreeMap<RequestKey, u64>;

/// How many of `counts` reached Volvo (answered with a status): timeouts and transport errors
/// did not, and take nothing of the API key's day.
pub fn reached_volvo(counts: &RequestCounts) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k.status.parse::<u16>().is_ok())
        .map(|(_, n)| n)
        .sum()
}
/// How long a "not supported" or "gone" answer is believed before asking again.
pub const BACKOFF_S: i64 = 24 * 3600;
/// The most a state file may hold. A 100-car account's file is about 0.96 MB (measured with
/// `simulate --cars 100`), so this leaves room for fleets of over a thousand cars, while a
/// runaway or foreign file can no longer take hundreds of megabytes and seconds to read.
pub const STATE_MAX: u64 = 16 << 20;
/// Volvo replenishes the daily quota at 00:00 UTC: no pause is longer than a day (and an
/// hour, for clocks that disagree). A longer one read from an answer is cut to this.
pub const QUOTA_PAUSE_MAX_S: i64 = 25 * 3600;
/// How long the save at the end of a run may wait for the state's lock past the end of
/// collection: a run that used all its collecting time still keeps what it asked, unless
/// another process holds the lock that long. The run's deadline caps it too.
pub const SAVE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// Requests made, across runs.
    #[serde(default, with = "text_keys")]
    pub requests: BTreeMap<RequestKey, u64>,
    /// Retries made, across runs, by API.
    #[serde(default, with = "text_keys")]
    pub retries: BTreeMap<Origin, u64>,
    /// Unix seconds of the last run that collected everything.
    #[serde(default)]
    pub last_success: Option<f64>,
    /// Unix seconds until which the endpoint is not asked of the car.
    #[serde(default, with = "text_keys")]
    pub not_supported: BTreeMap<CarEndpoint, i64>,
    /// Unix seconds until which the endpoint is not asked of the car: Volvo does not serve it
    /// to the car or application in its region or market.
    #[serde(
        default,
        with = "text_keys",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub not_available: BTreeMap<CarEndpoint, i64>,
    /// Unix seconds until which the API is not asked (Extended Vehicle's shutdown).
    #[serde(default, with = "text_keys")]
    pub api_unavailable: BTreeMap<Origin, i64>,
    /// Unix seconds until which the API key's daily quota is used up.
    #[serde(default)]
    pub quota_until: Option<i64>,
    /// The last answer of each endpoint of each car, replayed between fetches.
    #[serde(default, with = "text_keys")]
    pub cache: BTreeMap<AnswerKey, CacheEntry>,
    /// The last weather answer at each car (by VIN).
    #[serde(default)]
    pub weather: BTreeMap<String, CacheEntry>,
    /// vin → what the planner learnt of the car by the last run.
    #[serde(default)]
    pub cars: BTreeMap<String, CarMemory>,
    /// vin → the car's trips and charging sessions: their counters and what is under way.
    #[serde(default)]
    pub records: BTreeMap<String, CarRecords>,
}

/// A key of the state file, written as text.
pub trait TextKey: Sized + Ord {
    fn to_text(&self) -> String;
    /// The key a text stands for; `None` for one this version does not know (it is dropped).
    fn from_text(text: &str) -> Option<Self>;
}

/// Which answer of which car: `"<vin> <endpoint>"`, or `"<vin> extended_values/<resource>"`;
/// the account's vehicle list has an empty VIN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AnswerKey {
    pub vin: String,
    pub endpoint: Endpoint,
    pub resource: Option<String>,
}

impl TextKey for AnswerKey {
    fn to_text(&self) -> String {
        match &self.resource {
            Some(r) => format!("{} {}/{r}", self.vin, self.endpoint),
            None => format!("{} {}", self.vin, self.endpoint),
        }
    }

    fn from_text(text: &str) -> Option<Self> {
        let (vin, rest) = text.split_once(' ')?;
        let (name, resource) = match rest.split_once('/') {
            Some((n, r)) => (n, Some(r.to_string())),
            None => (rest, None),
        };
        Some(AnswerKey {
            vin: vin.to_string(),
            endpoint: name.parse().ok()?,
            resource,
        })
    }
}

/// An endpoint of one car: `"<vin> <api> <endpoint>"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CarEndpoint {
    pub vin: String,
    pub endpoint: Endpoint,
}

impl TextKey for CarEndpoint {
    fn to_text(&self) -> String {
        format!(
            "{} {} {}",
            self.vin,
            self.endpoint.api().label(),
            self.endpoint
        )
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        let (vin, _api, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some(CarEndpoint {
            vin: vin.to_string(),
            endpoint: name.parse().ok()?,
        })
    }
}

/// Requests of one endpoint with one status: `"<api> <path template> <status>"`, the labels
/// of `volvo_collect_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    pub endpoint: Endpoint,
    /// The HTTP status, or the kind of error (`timeout`, `transport`).
    pub status: String,
}

impl TextKey for RequestKey {
    fn to_text(&self) -> String {
        let e = self.endpoint;
        format!("{} {} {}", e.api().label(), e.template(), self.status)
    }

    fn from_text(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        let (api, template, status) = (parts.next()?, parts.next()?, parts.next()?);
        let endpoint = Endpoint::ALL
            .into_iter()
            .find(|e| e.api().label() == api && e.template() == template)?;
        Some(RequestKey {
            endpoint,
            status: status.to_string(),
        })
    }
}

impl TextKey for Origin {
    fn to_text(&self) -> String {
        self.label().to_string()
    }

    fn from_text(text: &str) -> Option<Self> {
        Origin::APIS.into_iter().find(|o| o.label() == text)
    }
}

impl fmt::Display for AnswerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Maps with [`TextKey`] keys, written as JSON objects; a key this version does not know is
/// dropped rather than failing the whole file.
mod text_keys {
    use std::collections::BTreeMap;

    use serde::de::{Deserialize, Deserializer};
    use serde::ser::{SerializeMap, Serializer};

    use super::TextKey;

    pub fn serialize<K: TextKey, V: serde::Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            m.serialize_entry(&k.to_text(), v)?;
        }
        m.end()
    }

    pub fn deserialize<'de, K: TextKey, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        let raw: BTreeMap<String, V> = BTreeMap::deserialize(d)?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| Some((K::from_text(&k)?, v)))
            .collect())
    }
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
            not_available: BTreeMap::new(),
            api_unavailable: BTreeMap::new(),
            quota_until: None,
            cache: BTreeMap::new(),
            weather: BTreeMap::new(),
            cars: BTreeMap::new(),
            records: BTreeMap::new(),
        }
    }
}

/// How long an answer is kept for replay: longer than the slowest tier stretched for a fleet.
pub const CACHE_KEPT_S: i64 = 8 * 86_400;

impl State {
    /// Loads the state; never fails the run.
    pub fn load(path: &Path) -> State {
        let bytes = match fsutil::read_capped(path, STATE_MAX) {
            Ok(b) => b,
            Err(fsutil::ReadError::NotFound) => return State::default(),
            Err(e @ fsutil::ReadError::TooLarge(..)) => {
                return State::set_aside(path, &format!("cannot read the state file ({e})"))
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read the state file ({e}); starting a new one (counters restart)");
                return State::default();
            }
        };
        match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.version == VERSION => s,
            Ok(s) => State::set_aside(
                path,
                &format!("the state file is of another version ({})", s.version),
            ),
            Err(e) => State::set_aside(path, &format!("the state file is damaged ({e})")),
        }
    }

    /// Moves an unusable state file to `<state_file>.damaged`, so that the run's save does not
    /// overwrite what someone may want to look at, and starts a new state.
    fn set_aside(path: &Path, why: &str) -> State {
        let aside = fsutil::with_suffix(path, ".damaged");
        // One copy is kept: a file damaged every run must not fill the folder.
        let replacing = if aside.symlink_metadata().is_ok() {
            " (replacing the one set aside before)"
        } else {
            ""
        };
        match std::fs::rename(path, &aside) {
            Ok(()) => {
                tracing::warn!(file = %path.display(), "{why}; it is set aside as {}{replacing} and a new one started (counters restart)", aside.display())
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), "{why}; starting a new one (counters restart); it could not be set aside: {e}")
            }
        }
        State::default()
    }

    /// Reads the state without a word when it is missing or unusable (the load has warned).
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
        // A back-off lasts a day from now at most, even when the clock stepped back.
        let day = |until: &mut i64| {
            *until = (*until).min(now + BACKOFF_S);
            *until > now
        };
        self.not_supported.retain(|_, until| day(until));
        self.not_available.retain(|_, until| day(until));
        self.api_unavailable.retain(|_, until| day(until));
        self.last_success = self.last_success.map(|t| t.min(now as f64 + 1.0));
        self.quota_until = self
            .quota_until
            .filter(|u| *u > now)
            .map(|u| u.min(now + QUOTA_PAUSE_MAX_S));
        // Answers of cars that left the account, or older than any tier, go.
        self.cache.retain(|_, e| now - e.fetched_at < CACHE_KEPT_S);
        self.weather
            .retain(|_, e| now - e.fetched_at < CACHE_KEPT_S);
    }

    pub fn unavailable_until(&self, api: Origin, now: i64) -> Option<i64> {
        self.api_unavailable.get(&api).copied().filter(|u| *u > now)
    }
}

/// `<state_file>.window`, the account's request window beside its state.
pub fn window_file(state_file: &Path) -> PathBuf {
    fsutil::with_suffix(state_file, ".window")
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
        // No inode left: as temporary as no byte left.
        Err(fsutil::ProbeError::Create(_, io)) if fsutil::out_of_space(&io) => {
            return Err(Fatal::new(
                ExitCode::Temporary,
                format!(
                    "the state file {} cannot be saved: {}: free space there; nothing was asked",
                    state_file.display(),
                    fsutil::describe(&io)
                ),
            ))
        }
        Err(e) => {
            return Err(unusable(format!(
                "the state file {} cannot be saved: {e}",
                state_file.display()
            )))
        }
        Ok(()) => {}
    }
    check_room(state_file, &dir)?;
    let lock = fsutil::lock_path(state_file);
    match fsutil::check_lock_file(&lock) {
        Ok(()) => Ok(()),
        // A limit of the moment, not of the setup: the run goes on and says it where it bites.
        Err(fsutil::LockError::Create(e)) if fsutil::out_of_descriptors(&e) => Ok(()),
        Err(e) => Err(unusable(e.describe(&lock))),
    }
}

/// Room for what a run saves: twice the state and window files as they are, and at least
/// 64 KiB. A full disk is temporary (exit 75), found before any request: a run whose state
/// cannot be saved leaves the next run cold (about 90 requests a car) and blind to the minute
/// it spent, which can draw Volvo's 429s.
fn check_room(state_file: &Path, dir: &Path) -> Result<(), Fatal> {
    let size_of = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let need = (2 * (size_of(state_file) + size_of(&window_file(state_file)))).max(64 * 1024);
    let mut room = fsutil::probe_space(dir, need);
    // A save killed before its rename leaves its temp behind (of the state, the window or the
    // day file: all begin with the state's name), and on a small disk that temp alone can
    // leave no room: when there is none, it goes and the room is measured again, or no later
    // run would recover. Only then: this runs before the state's lock is taken.
    if room.as_ref().is_err_and(fsutil::out_of_space) {
        fsutil::remove_stale_temps(state_file);
        room = fsutil::probe_space(dir, need);
    }
    match room {
        Err(e) if fsutil::out_of_space(&e) => Err(Fatal::new(
            ExitCode::Temporary,
            format!(
                "no room for the state in {} ({need} bytes needed: {}): free space there; nothing was asked, because a run that cannot save its state makes the next one start cold",
                dir.display(),
                fsutil::describe(&e)
            ),
        )),
        // Other failures of the probe are the folder's, which the checks above report.
        _ => Ok(()),
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

/// Takes the state's lock for the save, waiting while another process holds it until
/// `until` (once, at least, when that has passed).
pub async fn lock_for_save(state_file: &Path, until: Instant) -> SaveLock {
    let lock_path = fsutil::lock_path(state_file);
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
/// merged state (whose counters the run exports), and what went wrong when it could not be
/// written: the run's failure, since the next run then starts cold. A lock another process
/// held past the deadline saves nothing (the run reports that itself).
pub fn save_merged(
    lock: SaveLock,
    path: &Path,
    ours: State,
    requests: &RequestCounts,
    retries: &BTreeMap<Origin, u64>,
    now: i64,
) -> (State, Option<String>) {
    let held = lock.0.is_ok();
    let mut merged = if held {
        State::read_quietly(path)
    } else {
        State::default()
    };
    for (key, n) in requests {
        *merged.requests.entry(key.clone()).or_default() += n;
    }
    for (api, n) in retries {
        *merged.retries.entry(*api).or_default() += n;
    }
    // A last success after the clock (it was set back) counts as now, like every stored time.
    let clamp = |t: Option<f64>| t.map(|t| t.min(now as f64 + 1.0));
    merged.last_success = match (clamp(merged.last_success), clamp(ours.last_success)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    merged.not_supported.extend(ours.not_supported);
    merged.not_available.extend(ours.not_available);
    merged.api_unavailable.extend(ours.api_unavailable);
    merged.quota_until = merged.quota_until.max(ours.quota_until);
    merged.cache.extend(ours.cache);
    merged.weather.extend(ours.weather);
    merged.cars.extend(ours.cars);
    merged.records.extend(ours.records);
    merged.expire(now);
    let problem = held.then(|| merged.save(path).err()).flatten().map(|e| {
        format!(
            "cannot save the state file {} ({}): this run's counts and answers are lost, and the next run asks like a first one; free space or fix the folder",
            path.display(),
            fsutil::describe(&e)
        )
    });
    drop(lock);
    (merged, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doors_of(vin: &str) -> AnswerKey {
        AnswerKey {
            vin: vin.into(),
            endpoint: Endpoint::Doors,
            resource: None,
        }
    }

    #[test]
    fn round_trip_and_rebuild_when_damaged_or_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.state.json");
        assert_eq!(State::load(&p), State::default());
        let mut s = State::default();
        let state = RequestKey {
            endpoint: Endpoint::EnergyState,
            status: "200".into(),
        };
        s.requests.insert(state.clone(), 3);
        let engine = CarEndpoint {
            vin: "V".into(),
            endpoint: Endpoint::Engine,
        };
        s.not_supported.insert(engine.clone(), 100);
        s.save(&p).unwrap();
        assert_eq!(State::load(&p), s);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains(r#""energy /vehicles/{vin}/state 200":3"#),
            "{text}"
        );
        assert!(
            text.contains(r#""V connected_vehicle engine":100"#),
            "{text}"
        );
        std::fs::write(&p, "{garbage").unwrap();
        assert_eq!(State::load(&p), State::default());
        std::fs::write(&p, r#"{"version": 99}"#).unwrap();
        assert_eq!(State::load(&p), State::default());
    }

    /// Guards the file's keys: each reads back as what was written, and one this version does
    /// not know (an endpoint renamed or removed) is dropped without losing the rest.
    #[test]
    fn keys_are_typed_and_unknown_ones_are_dropped() {
        let values = AnswerKey {
            vin: "V".into(),
            endpoint: Endpoint::ExtendedValues,
            resource: Some("odometer".into()),
        };
        assert_eq!(values.to_text(), "V extended_values/odometer");
        assert_eq!(
            AnswerKey::from_text("V extended_values/odometer"),
            Some(values)
        );
        assert_eq!(AnswerKey::from_text(" vehicles").unwrap().vin, "");
        assert_eq!(AnswerKey::from_text("V weather"), None);
        let s: State = serde_json::from_str(
            r#"{"version":1,"cache":{"V doors":{"fetched_at":5,"body":{}},"V weather":{"fetched_at":5,"body":{}}},
                "requests":{"energy /vehicles/{vin}/state 200":2,"gone /x 200":1}}"#,
        )
        .unwrap();
        assert_eq!(s.cache.keys().collect::<Vec<_>>(), [&doors_of("V")]);
        assert_eq!(s.requests.len(), 1);
    }

    /// Guards the trip and charge records in the state file: kept by VIN across saves, a
    /// run's records replace that car's and leave the other cars' on disk, and a file written
    /// before there were records loads without any (their counters start again at 0).
    #[tokio::test]
    async fn records_are_kept_by_car() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let soon = || Instant::now() + Duration::from_secs(1);
        let with = |vin: &str, trips: u64| {
            let mut s = State::default();
            let mut r = CarRecords::default();
            r.trips = trips;
            s.records.insert(vin.to_string(), r);
            s
        };
        let none = RequestCounts::new();
        let save = |s: State| async {
            let lock = lock_for_save(&p, soon()).await;
            save_merged(lock, &p, s, &none, &BTreeMap::new(), 0).0
        };
        save(with("A", 2)).await;
        save(with("B", 1)).await;
        let merged = save(with("A", 3)).await;
        assert_eq!(merged.records["A"].trips, 3);
        assert_eq!(merged.records["B"].trips, 1);
        assert_eq!(State::load(&p), merged);
        let older: State = serde_json::from_str(r#"{"version":1,"cars":{}}"#).unwrap();
        assert!(older.records.is_empty());
    }

    #[tokio::test]
    async fn overlapping_runs_add_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        let key = RequestKey {
            endpoint: Endpoint::EnergyState,
            status: "200".into(),
        };
        let mut counts = RequestCounts::new();
        counts.insert(key.clone(), 2);
        let soon = || Instant::now() + Duration::from_secs(1);
        // Two runs that both started from an empty state.
        let lock = lock_for_save(&p, soon()).await;
        let (a, _) = save_merged(lock, &p, State::default(), &counts, &BTreeMap::new(), 0);
        assert_eq!(a.requests[&key], 2);
        let lock = lock_for_save(&p, soon()).await;
        let (b, _) = save_merged(lock, &p, State::default(), &counts, &BTreeMap::new(), 0);
        assert_eq!(b.requests[&key], 4);
        assert_eq!(State::load(&p).requests[&key], 4);
    }
}
