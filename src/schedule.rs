//! Tiered polling across one-shot runs: each endpoint has a minimum age before it is asked
//! again, like the polling of mature clients (doors, windows, lock, engine status and energy
//! state every run; location, fuel and command accessibility every 15 minutes; the rest hourly;
//! vehicle details and capabilities daily). Between fetches the last answer is replayed from the
//! state file, so every run's output is complete with the original source times. The same
//! table gives the request budget that `volvo-collect check --plan` prints.

use std::collections::BTreeMap;
use std::time::Duration;

/// Fetch again when the cached answer is this close to its minimum age, so that a timer's
/// randomized delay does not stretch a 15-minute tier to 20 minutes.
pub const TOLERANCE_S: i64 = 30;

/// (schedule key, default minimum age in seconds). Keys are the endpoint names used in labels.
pub const DEFAULTS: &[(&str, u64)] = &[
    ("vehicles", 86_400),
    ("details", 86_400),
    ("commands", 86_400),
    ("energy_capabilities", 86_400),
    ("extended_resources", 86_400),
    ("doors", 0),
    ("windows", 0),
    ("engine_status", 0),
    ("energy_state", 0),
    ("fuel", 900),
    ("command_accessibility", 900),
    ("location", 900),
    ("diagnostics", 3_600),
    ("brakes", 3_600),
    ("engine", 3_600),
    ("tyres", 3_600),
    ("warnings", 3_600),
    ("odometer", 3_600),
    ("statistics", 3_600),
    ("extended_values", 3_600),
];

/// Minimum ages per endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    min_age: BTreeMap<&'static str, u64>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            min_age: DEFAULTS.iter().copied().collect(),
        }
    }
}

impl Schedule {
    /// The defaults with the `[schedule]` overrides; an unknown key is an error naming the known.
    pub fn with_overrides(overrides: &BTreeMap<String, Duration>) -> Result<Schedule, String> {
        let mut s = Schedule::default();
        for (key, age) in overrides {
            let Some((k, _)) = DEFAULTS.iter().find(|(k, _)| k == key) else {
                let known: Vec<&str> = DEFAULTS.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "unknown endpoint {key:?}: expected one of {}",
                    known.join(", ")
                ));
            };
            s.min_age.insert(k, age.as_secs());
        }
        Ok(s)
    }

    /// Minimum age in seconds (0: every run). Unknown keys are asked every run.
    pub fn min_age(&self, key: &str) -> u64 {
        self.min_age.get(key).copied().unwrap_or(0)
    }

    /// Whether an answer fetched at `fetched_at` must be fetched again at `now`.
    pub fn due(&self, key: &str, fetched_at: i64, now: i64) -> bool {
        let min = self.min_age(key) as i64;
        min == 0 || now - fetched_at + TOLERANCE_S >= min
    }

    /// Requests a day for `cars` cars when runs come every `interval`, by schedule key:
    /// an endpoint is asked every run, or once per minimum age when that is longer.
    /// `extended_resources_per_car` estimates how many Extended Vehicle values a car has.
    pub fn plan(
        &self,
        interval: Duration,
        cars: usize,
        extended_resources_per_car: usize,
        sources: &crate::config::Sources,
    ) -> Vec<(&'static str, u64, u64)> {
        let interval = interval.as_secs().max(1);
        let mut rows = Vec::new();
        for (key, _) in DEFAULTS {
            let on = match *key {
                "energy_capabilities" | "energy_state" => sources.energy,
                "location" => sources.location,
                "extended_resources" | "extended_values" => sources.extended_vehicle,
                "vehicles" => true,
                _ => sources.connected_vehicle,
            };
            if !on {
                continue;
            }
            let period = self.min_age(key).max(interval);
            let per_endpoint = 86_400u64.div_ceil(period);
            let count = match *key {
                "vehicles" => 1,
                "extended_values" => cars * extended_resources_per_car,
                _ => cars,
            } as u64;
            rows.push((*key, self.min_age(key), per_endpoint * count));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_sources() -> crate::config::Sources {
        crate::config::Sources {
            connected_vehicle: true,
            extended_vehicle: true,
            extended_vehicle_explicit: true,
            energy: true,
            location: true,
        }
    }

    #[test]
    fn due_follows_the_tiers_with_a_fake_clock() {
        let s = Schedule::default();
        let t0 = 1_800_000_000;
        assert!(s.due("doors", t0, t0));
        assert!(!s.due("location", t0, t0 + 600));
        assert!(s.due("location", t0, t0 + 900 - TOLERANCE_S));
        assert!(!s.due("odometer", t0, t0 + 1800));
        assert!(s.due("odometer", t0, t0 + 3600));
        assert!(!s.due("details", t0, t0 + 3600 * 23));
        assert!(s.due("details", t0, t0 + 86_400));
    }

    #[test]
    fn overrides_and_unknown_keys() {
        let mut o = BTreeMap::new();
        o.insert("location".to_string(), Duration::from_secs(300));
        let s = Schedule::with_overrides(&o).unwrap();
        assert_eq!(s.min_age("location"), 300);
        o.insert("doorz".to_string(), Duration::from_secs(1));
        let e = Schedule::with_overrides(&o).unwrap_err();
        assert!(
            e.contains("unknown endpoint \"doorz\": expected one of vehicles, details"),
            "{e}"
        );
    }

    /// The budget target: one car on a 5-minute timer spends at most 1,700 requests a day,
    /// while doors, windows, lock and energy are fetched every run.
    #[test]
    fn one_car_every_five_minutes_fits_the_budget() {
        let s = Schedule::default();
        let plan = s.plan(Duration::from_secs(300), 1, 3, &all_sources());
        let total: u64 = plan.iter().map(|r| r.2).sum();
        assert!(total <= 1_700, "{total} requests a day: {plan:?}");
        for key in ["doors", "windows", "energy_state"] {
            let row = plan.iter().find(|r| r.0 == key).unwrap();
            assert_eq!(row.2, 288, "{key} every run");
        }
        // Without tiers the same car would cost every endpoint every run.
        let flat: u64 = plan.len() as u64 * 288;
        assert!(flat > 5_000);
    }
}
