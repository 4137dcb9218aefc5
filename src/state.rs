//! The small state file beside the token: what a one-shot run must remember until the next
//! one. Request counters (so they are real Prometheus counters across runs), the last
//! successful run, endpoints a car does not support, and APIs that are gone for a while.
//! A missing file is a first run; a damaged or foreign one is rebuilt with one warning.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fsutil;

pub const VERSION: u32 = 1;
/// How long a "not supported" or "gone" answer is believed before asking again.
pub const BACKOFF_S: i64 = 24 * 3600;

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
        }
    }
}

pub fn endpoint_key(vin: &str, api: &str, endpoint: &str) -> String {
    format!("{vin} {api} {endpoint}")
}

impl State {
    /// Loads the state; never fails the run.
    pub fn load(path: &Path) -> State {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the state file; starting a new one");
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

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("state serializes");
        bytes.push(b'\n');
        fsutil::write_atomic(path, &bytes, 0o600, false)
    }

    /// Forgets back-offs that have run out.
    pub fn expire(&mut self, now: i64) {
        self.not_supported.retain(|_, until| *until > now);
        self.api_unavailable.retain(|_, until| *until > now);
        self.quota_until = self.quota_until.filter(|u| *u > now);
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
}
