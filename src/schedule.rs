//! How often each endpoint may and must be asked, and the day's request plan per API key.
//!
//! Every endpoint has a floor (a minimum age: never asked sooner again; `[schedule]` sets it)
//! and a tier (the safety net: asked at least that often whatever the car does). Between the
//! two the planner follows the car (see `planner`). The day plan adds up what one key's cars
//! can cost in the worst case — every car awake all day — and, when that is more than Volvo's
//! daily quota less a tenth, stretches the tiers, slowest first, and then the every-run
//! endpoints to every second (third, ...) run, until it fits.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::endpoints::{Endpoint, Fact, Sources};

/// Ask again when the cached answer is this close to its age, so that a timer's randomized
/// delay does not stretch a 15-minute tier to 20 minutes.
pub const TOLERANCE_S: i64 = 30;
/// Volvo's requests a day per API key.
pub const DAILY_QUOTA: u64 = 10_000;
/// What a key's plan may use: a tenth stays free for retries, `check` and hand runs.
pub const DAILY_BUDGET: u64 = DAILY_QUOTA / 10 * 9;
/// Volvo's requests a minute per user.
pub const PER_MINUTE_LIMIT: u64 = 100;
/// Extended Vehicle values a car has, for plans made before its resource list is known.
pub const EXTENDED_RESOURCES_PER_CAR: usize = 3;
/// While a car sleeps nothing it has changes: its safety nets stretch to this at least.
pub const ASLEEP_NET_S: u64 = 6 * 3_600;
/// While a car charges only its energy changes quickly: the other nets stretch to an hour.
pub const CHARGING_NET_S: u64 = 3_600;

const DAY: u64 = 86_400;

/// Floors and tiers, with the `[schedule]` overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    /// Seconds by endpoint: its floor and its tier.
    overrides: BTreeMap<Endpoint, u64>,
}

impl Schedule {
    /// The defaults with the `[schedule]` overrides of the settings.
    pub fn with_overrides(overrides: &BTreeMap<Endpoint, Duration>) -> Schedule {
        Schedule {
            overrides: overrides.iter().map(|(e, d)| (*e, d.as_secs())).collect(),
        }
    }

    /// The minimum age in seconds (0: none).
    pub fn floor(&self, e: Endpoint) -> u64 {
        self.overrides.get(&e).copied().unwrap_or(e.spec().floor)
    }

    /// The tier in seconds (0: every run). A `[schedule]` value is the endpoint's tier too, as
    /// it always was: the age at which it is asked again.
    pub fn tier(&self, e: Endpoint) -> u64 {
        self.overrides
            .get(&e)
            .copied()
            .unwrap_or(e.spec().net)
            .max(self.floor(e))
    }
}

/// How far a key's plan stretched its intervals to fit the daily quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// Every-run endpoints are asked every this many runs.
    pub every_runs: u64,
    /// Multipliers of the daily, hourly and quarter-hour tiers.
    pub tiers: [u64; 3],
}

impl Default for Stretch {
    fn default() -> Self {
        Stretch {
            every_runs: 1,
            tiers: [1, 1, 1],
        }
    }
}

/// Which stretch group a tier belongs to: 0 the slowest (daily), 2 the fastest.
fn group(tier: u64) -> usize {
    match tier {
        t if t >= DAY => 0,
        t if t >= 3_600 => 1,
        _ => 2,
    }
}

/// How far each group may stretch: a week, a day, a day.
const TIER_CAPS: [u64; 3] = [7, 24, 96];
const STEPS: &[u64] = &[1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96];

impl Stretch {
    /// The endpoint's tier after stretching, in seconds.
    pub fn tier(&self, schedule: &Schedule, e: Endpoint) -> u64 {
        let t = schedule.tier(e);
        t * self.tiers[group(t)]
    }

    /// Whether the every-run endpoints wait for more than one run.
    pub fn is_stretched(&self) -> bool {
        *self != Stretch::default()
    }
}

/// One row of a day plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub endpoint: Endpoint,
    /// Seconds between two requests in the worst case (0: every run).
    pub period: u64,
    pub per_day: u64,
}

/// One API key's day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPlan {
    pub rows: Vec<PlanRow>,
    /// The worst case: every car awake all day.
    pub total: u64,
    /// A typical day: asleep but for two 40-minute trips and a 4-hour charge.
    pub estimate: u64,
    pub stretch: Stretch,
    pub cars: usize,
}

/// What the plan needs to know of the fleet on one key.
#[derive(Debug, Clone, Copy)]
pub struct Fleet<'a> {
    pub schedule: &'a Schedule,
    pub sources: &'a Sources,
    pub interval: Duration,
    /// Cars on the key (all its accounts), and accounts (one vehicle list each).
    pub cars: usize,
    pub accounts: usize,
}

impl Fleet<'_> {
    fn runs_a_day(&self) -> u64 {
        DAY.div_ceil(self.interval.as_secs().max(1))
    }

    fn count(&self, e: Endpoint) -> u64 {
        match e {
            Endpoint::Vehicles => self.accounts as u64,
            Endpoint::ExtendedValues => (self.cars * EXTENDED_RESOURCES_PER_CAR) as u64,
            _ => self.cars as u64,
        }
    }

    /// The worst-case period of `e` under `stretch`.
    fn period(&self, e: Endpoint, stretch: &Stretch) -> u64 {
        let interval = self.interval.as_secs().max(1);
        let p = match e.fact() {
            Fact::Wake | Fact::State | Fact::Trip => interval * stretch.every_runs,
            Fact::TripEnd | Fact::Slow | Fact::Static => stretch.tier(self.schedule, e),
        };
        p.max(self.schedule.floor(e)).max(interval)
    }

    fn rows(&self, stretch: &Stretch) -> Vec<PlanRow> {
        Endpoint::ALL
            .into_iter()
            .filter(|e| self.sources.collects(*e))
            .map(|e| {
                let period = self.period(e, stretch);
                let per_day = DAY.div_ceil(period).min(self.runs_a_day()) * self.count(e);
                let shown = if period <= self.interval.as_secs().max(1) {
                    0
                } else {
                    period
                };
                PlanRow {
                    endpoint: e,
                    period: shown,
                    per_day,
                }
            })
            .collect()
    }

    fn total(&self, stretch: &Stretch) -> u64 {
        self.rows(stretch).iter().map(|r| r.per_day).sum()
    }

    /// A typical day: every run the wake endpoints; 80 minutes of driving with the state and
    /// trip endpoints every run; two trip ends; the tiers at their awake ages for six hours
    /// and at the asleep ages for the rest.
    fn estimate(&self, stretch: &Stretch) -> u64 {
        let interval = self.interval.as_secs().max(1);
        let runs = self.runs_a_day().div_ceil(stretch.every_runs);
        let driving_runs = (80 * 60 / interval).max(1).div_ceil(stretch.every_runs);
        let per_car: u64 = Endpoint::ALL
            .into_iter()
            .filter(|e| self.sources.collects(*e) && e.per_vehicle())
            .map(|e| {
                let tier = stretch.tier(self.schedule, e).max(interval);
                let nets = 6 * 3_600 / tier + 18 * 3_600 / tier.max(ASLEEP_NET_S);
                let n = match e.fact() {
                    Fact::Wake => runs,
                    Fact::State | Fact::Trip => driving_runs + nets,
                    Fact::TripEnd => 2 + nets,
                    Fact::Slow | Fact::Static => nets.max(1),
                };
                n * self.count(e) / self.cars.max(1) as u64
            })
            .sum();
        per_car * self.cars as u64 + self.accounts as u64
    }

    /// The plan: the least stretch under which the worst case fits `budget`. Every-run
    /// endpoints wait for more runs only when no stretch of the tiers is enough.
    pub fn plan(&self, budget: u64) -> DayPlan {
        let stretch = (1..=self.runs_a_day())
            .find_map(|k| self.tiers_that_fit(k, budget))
            .unwrap_or(Stretch {
                every_runs: self.runs_a_day(),
                tiers: TIER_CAPS,
            });
        DayPlan {
            rows: self.rows(&stretch),
            total: self.total(&stretch),
            estimate: self.estimate(&stretch),
            stretch,
            cars: self.cars,
        }
    }

    /// With every-run endpoints every `k` runs: the tiers stretched slowest first, each as
    /// little as will do, or `None` when even the longest tiers do not fit.
    fn tiers_that_fit(&self, k: u64, budget: u64) -> Option<Stretch> {
        let mut s = Stretch {
            every_runs: k,
            tiers: [1, 1, 1],
        };
        if self.total(&s) <= budget {
            return Some(s);
        }
        for (g, cap) in TIER_CAPS.iter().enumerate() {
            for &m in STEPS.iter().filter(|m| *m <= cap) {
                s.tiers[g] = m;
                if self.total(&s) <= budget {
                    return Some(s);
                }
            }
            s.tiers[g] = *cap;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_sources() -> Sources {
        Sources::ALL
    }

    fn fleet<'a>(s: &'a Schedule, src: &'a Sources, cars: usize) -> Fleet<'a> {
        Fleet {
            schedule: s,
            sources: src,
            interval: Duration::from_secs(300),
            cars,
            accounts: 1,
        }
    }

    #[test]
    fn overrides_set_floor_and_tier() {
        let mut o = BTreeMap::new();
        o.insert(Endpoint::Location, Duration::from_secs(300));
        let s = Schedule::with_overrides(&o);
        let loc = Endpoint::Location;
        assert_eq!((s.floor(loc), s.tier(loc)), (300, 300));
        let odo = Endpoint::Odometer;
        assert_eq!((s.floor(odo), s.tier(odo)), (0, 3_600));
    }

    /// One or two cars on a 5-minute timer need no stretch: a driving car is read every run.
    #[test]
    fn a_household_fits_without_stretching() {
        let (s, src) = (Schedule::default(), all_sources());
        let plan = fleet(&s, &src, 2).plan(DAILY_BUDGET);
        assert_eq!(plan.stretch, Stretch::default());
        assert!(plan.total <= DAILY_BUDGET, "{}", plan.total);
        assert!(plan.estimate < plan.total / 2, "{plan:?}");
    }

    /// Seven cars on one key: the worst case is stretched into the budget, slowest tiers
    /// first, and the floors are never undercut.
    #[test]
    fn seven_cars_on_one_key_are_stretched_into_the_budget() {
        let (s, src) = (Schedule::default(), all_sources());
        let f = fleet(&s, &src, 7);
        let unstretched = f.total(&Stretch::default());
        assert!(unstretched > DAILY_BUDGET, "{unstretched}");
        let plan = f.plan(DAILY_BUDGET);
        assert!(plan.total <= DAILY_BUDGET, "{}", plan.total);
        assert!(plan.stretch.every_runs >= 2, "{:?}", plan.stretch);
        assert_eq!(
            plan.stretch.tiers[0], TIER_CAPS[0],
            "the daily tier went first"
        );
        for r in &plan.rows {
            assert!(r.period == 0 || r.period >= s.floor(r.endpoint));
        }
    }

    #[test]
    fn stretching_is_per_key_so_a_second_key_restores_every_run() {
        let (s, src) = (Schedule::default(), all_sources());
        let one_key = fleet(&s, &src, 7).plan(DAILY_BUDGET);
        let split = fleet(&s, &src, 4).plan(DAILY_BUDGET);
        assert!(one_key.stretch.every_runs > 1);
        assert_eq!(split.stretch.every_runs, 1, "{:?}", split.stretch);
    }
}
