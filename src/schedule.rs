//! How often each endpoint may and must be asked, and how an API key's day of requests is
//! spent.
//!
//! Every endpoint has a floor (a minimum age: never asked sooner again; `[schedule]` sets it)
//! and a tier (the safety net: asked at least that often whatever the car does). Between the
//! two the planner follows the car (see `planner`).
//!
//! Volvo counts each API key's requests per day. The [`Budget`] spends them as the day goes:
//! what the key spent so far (every run of every account on it, hand runs and `check`
//! included) and what is left until Volvo's reset. A run may spend what its cars need as long
//! as what is left still covers the rest of the day at the minimum service, the floor: the
//! worst case (every car awake all day), stretched along the [`Stretch`] ladder until it fits
//! what is left. The ladder is also the order in which a short budget degrades the service:
//! the daily tiers first, then the hourly and quarter-hour ones (the facts of parked cars),
//! and the every-run endpoints (each car's probe) last.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::endpoints::{Endpoint, Fact, Sources};

/// Ask again when the cached answer is this close to its age, so that a timer's randomized
/// delay does not stretch a 15-minute tier to 20 minutes.
pub const TOLERANCE_S: i64 = 30;
/// Volvo's requests a day per API key.
pub const DAILY_QUOTA: u64 = 10_000;
/// What a key's day may spend: a twentieth of Volvo's quota stays free for what the collector
/// cannot count (another application on the same key).
pub const DAILY_BUDGET: u64 = DAILY_QUOTA / 20 * 19;
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

/// The service levels, from full service to the least: each tier group stretched in turn,
/// slowest first, each as far as it may go; then the every-run endpoints every second, third,
/// ... run (up to `max_every`). Each step costs no more than the one before.
pub fn ladder(max_every: u64) -> impl Iterator<Item = Stretch> {
    let tiers = (0..3).flat_map(|g| {
        STEPS
            .iter()
            .copied()
            .filter(move |m| *m > 1 && *m <= TIER_CAPS[g])
            .map(move |m| {
                let mut tiers = [1; 3];
                tiers[..g].copy_from_slice(&TIER_CAPS[..g]);
                tiers[g] = m;
                Stretch {
                    every_runs: 1,
                    tiers,
                }
            })
    });
    let runs = (2..=max_every.max(1)).map(|k| Stretch {
        every_runs: k,
        tiers: TIER_CAPS,
    });
    std::iter::once(Stretch::default()).chain(tiers).chain(runs)
}

impl Stretch {
    /// The endpoint's tier after stretching, in seconds.
    pub fn tier(&self, schedule: &Schedule, e: Endpoint) -> u64 {
        let t = schedule.tier(e);
        t * self.tiers[group(t)]
    }

    /// Whether any interval is stretched.
    pub fn is_stretched(&self) -> bool {
        *self != Stretch::default()
    }
}

/// The level in words, as `check`, the log and the README say it: "daily tier ×7, hourly ×2,
/// quarter-hour unstretched, every-run endpoints every run".
impl std::fmt::Display for Stretch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = ["daily tier", "hourly", "quarter-hour"];
        for (name, m) in names.iter().zip(self.tiers) {
            match m {
                1 => write!(f, "{name} unstretched, ")?,
                m => write!(f, "{name} ×{m}, ")?,
            }
        }
        match self.every_runs {
            1 => f.write_str("every-run endpoints every run"),
            k => write!(f, "every-run endpoints every {k} runs"),
        }
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

    /// The plan: the first step of the [`ladder`] under which the worst case fits `budget`
    /// requests a day. Every-run endpoints wait for more runs only when no stretch of the
    /// tiers is enough.
    pub fn plan(&self, budget: u64) -> DayPlan {
        let mut ladder = ladder(self.runs_a_day()).peekable();
        let stretch = loop {
            let s = ladder.next().expect("the ladder has a last step");
            if ladder.peek().is_none() || self.total(&s) <= budget {
                break s;
            }
        };
        self.plan_at(stretch)
    }

    /// The plan at a given stretch.
    pub fn plan_at(&self, stretch: Stretch) -> DayPlan {
        // A typical day is served in full while the budget allows it, at worst at the floor.
        let typical = self.estimate(&Stretch::default()).min(DAILY_BUDGET);
        DayPlan {
            rows: self.rows(&stretch),
            total: self.total(&stretch),
            estimate: typical.max(self.estimate(&stretch)),
            stretch,
            cars: self.cars,
        }
    }

    /// What a run may spend of the key's day, and the minimum service that stays covered.
    pub fn budget(&self, day: &Day) -> Budget {
        let runs_a_day = self.runs_a_day();
        let left = DAILY_BUDGET.saturating_sub(day.spent);
        let runs_left = day.runs_left(self.interval.as_secs().max(1));
        // The floor: the worst case of a whole day within the budget, stretched further when
        // the rest of the day does not fit what is left (the day spent faster than that).
        let pace = (left as f64 * runs_a_day as f64 / runs_left as f64) as u64;
        let per_day = pace.min(DAILY_BUDGET);
        let floor = self.plan(per_day).stretch;
        let floor_per_run = self.total(&floor) as f64 / runs_a_day as f64;
        let reserve = (floor_per_run * (runs_left - 1) as f64).ceil() as u64;
        Budget {
            spent: day.spent,
            left,
            runs_left,
            floor,
            floor_per_run,
            allowance: left
                .saturating_sub(reserve)
                .max(floor_per_run.ceil() as u64)
                .min(left),
        }
    }
}

/// Where an API key stands in Volvo's day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// Requests the key spent since the last reset, by every account on it.
    pub spent: u64,
    pub now: i64,
    /// When Volvo resets the quota next (Unix seconds).
    pub reset_at: i64,
}

impl Day {
    /// Requests the key would have spent by the reset at today's pace so far (the day's
    /// average per run, for every run left).
    pub fn projection(&self, interval: u64) -> u64 {
        let runs_left = self.runs_left(interval);
        let runs_so_far = (DAY / interval.max(1)).saturating_sub(runs_left).max(1);
        let pace = self.spent as f64 / runs_so_far as f64;
        self.spent + (pace * runs_left.saturating_sub(1) as f64).round() as u64
    }

    /// Runs of an `interval` left until the reset, this one included.
    pub fn runs_left(&self, interval: u64) -> u64 {
        let seconds = (self.reset_at - self.now).max(1) as u64;
        seconds.div_ceil(interval).max(1)
    }
}

/// What a run may spend of its API key's day.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Spent today by the key, before this run.
    pub spent: u64,
    /// Left of [`DAILY_BUDGET`] until the reset.
    pub left: u64,
    pub runs_left: u64,
    /// The minimum service the rest of the day is sure of: the worst case, stretched to fit.
    pub floor: Stretch,
    /// What the floor costs a run, for every car on the key.
    pub floor_per_run: f64,
    /// What the key's runs may spend now: what is left beyond the floor of the runs after
    /// this one, and at least this run's share of the floor.
    pub allowance: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the level in words: each tier's factor, "unstretched" for 1, and "every run".
    #[test]
    fn a_level_in_words() {
        assert_eq!(
            Stretch::default().to_string(),
            "daily tier unstretched, hourly unstretched, quarter-hour unstretched, every-run endpoints every run"
        );
        let floor = Stretch {
            every_runs: 4,
            tiers: [7, 24, 96],
        };
        assert_eq!(
            floor.to_string(),
            "daily tier ×7, hourly ×24, quarter-hour ×96, every-run endpoints every 4 runs"
        );
    }

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

    /// 2026-12-01T00:00:00Z, a quota reset.
    const MIDNIGHT: i64 = 1_796_083_200;

    fn day(spent: u64, hours: i64) -> Day {
        Day {
            spent,
            now: MIDNIGHT + hours * 3600,
            reset_at: MIDNIGHT + 86_400,
        }
    }

    /// Guards the order in which a short budget degrades the service: each step costs no
    /// more than the one before; the daily tiers go first, then the hourly and quarter-hour
    /// ones, and the every-run endpoints (each car's probe) last.
    #[test]
    fn the_ladder_degrades_slow_tiers_first_and_the_probe_last() {
        let (s, src) = (Schedule::default(), all_sources());
        let f = fleet(&s, &src, 14);
        let steps: Vec<Stretch> = ladder(6).collect();
        assert_eq!(steps[0], Stretch::default());
        for w in steps.windows(2) {
            assert!(
                f.total(&w[1]) <= f.total(&w[0]),
                "{:?} costs more than {:?}",
                w[1],
                w[0]
            );
        }
        let first = |pred: &dyn Fn(&Stretch) -> bool| steps.iter().position(pred).unwrap();
        let daily = first(&|s| s.tiers[0] > 1);
        let hourly = first(&|s| s.tiers[1] > 1);
        let quarter = first(&|s| s.tiers[2] > 1);
        let probe = first(&|s| s.every_runs > 1);
        assert!(
            daily < hourly && hourly < quarter && quarter < probe,
            "{steps:?}"
        );
        assert_eq!(
            steps[probe].tiers, TIER_CAPS,
            "every tier stretched before the probe"
        );
        assert_eq!(steps.last().unwrap().every_runs, 6);
    }

    /// Guards the budget arithmetic: a fresh day keeps the floor of the rest of the day in
    /// reserve and lets a run spend the rest; a day spent early shrinks the floor so that the
    /// rest of the day still fits; a day spent out allows nothing.
    #[test]
    fn a_run_spends_what_the_floor_of_the_rest_of_the_day_leaves() {
        let (s, src) = (Schedule::default(), all_sources());
        // Two cars: the whole worst case fits, so the floor is full service.
        let two = fleet(&s, &src, 2).budget(&day(0, 0));
        assert_eq!(two.floor, Stretch::default());
        assert_eq!(two.runs_left, 288);
        // Fourteen cars at midnight: the floor of the 287 runs after this one stays in reserve.
        let f = fleet(&s, &src, 14);
        let b = f.budget(&day(0, 0));
        assert!(b.floor.is_stretched());
        let reserve = (b.floor_per_run * 287.0).ceil() as u64;
        assert_eq!(b.allowance, DAILY_BUDGET - reserve);
        assert!(f.total(&b.floor) <= DAILY_BUDGET, "{b:?}");
        // At noon with a typical morning spent, a run may spend far more than the floor.
        let noon = f.budget(&day(2_500, 12));
        assert_eq!(noon.runs_left, 144);
        assert!(noon.allowance > 1_000, "{noon:?}");
        assert_eq!(noon.floor, b.floor, "the day's floor stands while it fits");
        // 7,000 spent by 09:00: the floor stretches until the rest of the day fits what is left.
        let early = f.budget(&day(7_000, 9));
        assert!(early.floor.every_runs > b.floor.every_runs, "{early:?}");
        assert!(early.floor_per_run * early.runs_left as f64 <= early.left as f64);
        // Spent out: nothing more.
        let out = f.budget(&day(DAILY_BUDGET, 20));
        assert_eq!((out.left, out.allowance), (0, 0));
    }
}
