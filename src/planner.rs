//! The plan phase of a run: what to ask of each car, round by round, from what the car said.
//!
//! Every value carries the time the car uploaded it, and a sleeping car uploads nothing. So a
//! run asks a sleeping car only what shows that it woke (its lock and doors, and for a car
//! that charges its energy state: a plug-in); as soon as an answer is newer than anything the
//! car had uploaded before, the next round of the same run asks its state (engine, windows).
//! A running engine brings the trip facts every run, a stopped one after a trip the trip-end
//! facts once, and every endpoint still comes at least once per tier, the safety net.
//!
//! What one car needs is decided by pure functions of its answers, its memory, the clock and
//! the key's plan ([`wants`], [`memory_after`]); the [`Planner`] keeps the account's answers
//! between rounds and asks those functions about the cars whose answers came.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::api::answers::{Absent, Ask, CarAnswers, Outcome};
use crate::api::connected_vehicle::{EngineStatus, VehicleList};
use crate::api::{energy, ApiError, Need};
use crate::endpoints::{Endpoint, Fact, Sources};
use crate::schedule::{self, Schedule, Stretch, TOLERANCE_S};
use crate::state::{CarEndpoint, CarMemory, Mode, State};
use crate::values::Field;

/// A car whose newest upload is older than this is not driving or charging, whatever its
/// last engine or charging state says (a car that lost its connection mid-trip).
const ACTIVE_WITHIN_S: i64 = 3_600;

/// How old a failed vehicle list's last good answer is made: old enough to be due under any
/// stretch of its daily tier, young enough to be kept (`state::CACHE_KEPT_S`).
const LIST_RETRY_AGE_S: i64 = crate::state::CACHE_KEPT_S - 86_400;

/// Which APIs this run reads.
#[derive(Debug, Clone, Copy)]
pub struct Collecting {
    pub sources: Sources,
    /// Whether Extended Vehicle is asked at all (on, granted and not backed off).
    pub extended: bool,
}

impl Collecting {
    pub fn collects(&self, e: Endpoint) -> bool {
        match e.api() {
            crate::endpoints::Origin::ExtendedVehicle => self.extended,
            _ => self.sources.collects(e),
        }
    }
}

/// What a car's wants depend on besides its own answers and memory.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: i64,
    pub interval_s: i64,
    pub schedule: &'a Schedule,
    /// How far the key's plan stretched the intervals.
    pub stretch: Stretch,
    pub collecting: Collecting,
}

/// One answer a car should give now, and how it ranks when the minute is short.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    pub ask: Ask,
    pub priority: Fact,
}

/// What one car needs asked now: a pure function of what it said, what it was doing, the
/// clock and the plan.
pub fn wants(car: &CarAnswers, mem: Option<&CarMemory>, cx: &Context) -> Vec<Want> {
    let woke = woke(car, mem, cx);
    let awake = woke
        || matches!(
            mem.map(|m| m.mode),
            None | Some(Mode::Driving | Mode::ParkedAwake)
        );
    let mode = if woke {
        Mode::ParkedAwake
    } else {
        mem.map_or(Mode::ParkedAwake, |m| m.mode)
    };
    let driving = match fresh_engine(car) {
        Some((running, _)) => running,
        None => mode == Mode::Driving,
    };
    let trip_ended = trip_ended(car, mem) || mem.is_some_and(|m| m.trip_end_pending);
    let mut out = Vec::new();
    for e in Endpoint::ALL.into_iter().filter(|e| e.per_vehicle()) {
        if !cx.collecting.collects(e) || car.is_unsupported(e) {
            continue;
        }
        let due = match e.fact() {
            Fact::Wake => every_run_due(car, e, cx),
            Fact::State if awake => every_run_due(car, e, cx),
            Fact::Trip if driving => every_run_due(car, e, cx),
            Fact::Trip if trip_ended && e == Endpoint::Statistics => true,
            Fact::TripEnd if trip_ended => true,
            _ => net_due(car, e, mode, cx),
        };
        // A driving car's trip facts rank with the state of the cars: when a run is short,
        // parked cars' trip facts wait first.
        let priority = match e.fact() {
            Fact::Trip if driving => Fact::State,
            f => f,
        };
        if due {
            let wants = asks(car, e).into_iter();
            out.extend(wants.filter_map(|ask| want(car, ask, priority, cx)));
        }
    }
    out
}

/// The answers of `e` a car can give now: one, one per listed resource, or none while what
/// it needs has not come.
fn asks(car: &CarAnswers, e: Endpoint) -> Vec<Ask> {
    match crate::api::api_of(e).needs(e, car) {
        Need::Ready => vec![Ask::of(e)],
        Need::Waiting | Need::Never => Vec::new(),
        Need::Each(names) => names
            .iter()
            .map(|r| Ask {
                endpoint: e,
                resource: Some(r.clone()),
            })
            .collect(),
    }
}

/// `ask` as a want, unless it was asked this run already or its floor has not passed.
fn want(car: &CarAnswers, ask: Ask, priority: Fact, cx: &Context) -> Option<Want> {
    if car.outcome(&ask).is_some() || !floor_passed(car, &ask, cx) {
        return None;
    }
    // Capabilities never seen gate the energy state, a wake fact: they go with it.
    let gates = ask.endpoint == Endpoint::EnergyCapabilities;
    let priority = if gates && car.kept(&ask).is_none() {
        Fact::Wake
    } else {
        priority
    };
    Some(Want { ask, priority })
}

/// The most important priority an ask of `e` can have: a trip fact ranks with the state facts
/// while the car drives, and capabilities never seen with the wake facts (see [`wants`]).
fn best_rank(e: Endpoint) -> Fact {
    match (e, e.fact()) {
        (Endpoint::EnergyCapabilities, _) => Fact::Wake,
        (_, Fact::Trip) => Fact::State,
        (_, f) => f,
    }
}

/// An every-run endpoint is due every run, or every k-th run when the key's plan stretched
/// it.
fn every_run_due(car: &CarAnswers, e: Endpoint, cx: &Context) -> bool {
    let k = cx.stretch.every_runs as i64;
    k <= 1
        || car
            .age(&Ask::of(e), cx.now)
            .is_none_or(|age| age + TOLERANCE_S >= k * cx.interval_s)
}

/// The safety net: due when the kept answer is as old as the endpoint's tier, which a
/// sleeping car stretches to hours and a charging one to an hour.
pub fn net_due(car: &CarAnswers, e: Endpoint, mode: Mode, cx: &Context) -> bool {
    let tier = cx.stretch.tier(cx.schedule, e);
    let tier = match mode {
        Mode::Asleep => tier.max(schedule::ASLEEP_NET_S),
        Mode::Charging => tier.max(schedule::CHARGING_NET_S),
        // What a trip's end uploads cannot change before the trip ends.
        Mode::Driving if e.fact() == Fact::TripEnd => tier.max(schedule::CHARGING_NET_S),
        Mode::Driving | Mode::ParkedAwake => tier,
    } as i64;
    let old = |ask: &Ask| {
        car.age(ask, cx.now)
            .is_none_or(|age| age + TOLERANCE_S >= tier)
    };
    // Values follow their list's age when their own differ: the oldest decides.
    match crate::api::api_of(e).needs(e, car) {
        Need::Each(names) => names.iter().any(|r| {
            old(&Ask {
                endpoint: e,
                resource: Some(r.clone()),
            })
        }),
        _ => old(&Ask::of(e)),
    }
}

/// The `[schedule]` minimum age: never asked sooner, whatever the car does.
fn floor_passed(car: &CarAnswers, ask: &Ask, cx: &Context) -> bool {
    let floor = cx.schedule.floor(ask.endpoint) as i64;
    floor == 0
        || car
            .age(ask, cx.now)
            .is_none_or(|age| age + TOLERANCE_S >= floor)
}

/// Whether the car uploaded something since the last run (on a first run: within the last
/// two intervals). A charging car's energy uploads are what charging does, not a wake.
fn woke(car: &CarAnswers, mem: Option<&CarMemory>, cx: &Context) -> bool {
    let charging = mem.is_some_and(|m| m.mode == Mode::Charging);
    let skip = charging.then_some(Endpoint::EnergyState);
    let Some(newest) = car.newest_fresh(skip) else {
        return false;
    };
    match mem {
        Some(m) => newest > m.last_upload,
        None => cx.now - newest <= 2 * cx.interval_s,
    }
}

/// The engine state answered this run: (running, its upload time).
fn fresh_engine(car: &CarAnswers) -> Option<(bool, i64)> {
    if !car.is_fresh(&Ask::of(Endpoint::EngineStatus)) {
        return None;
    }
    engine_state(car)
}

/// `engineStatus` of the engine-status answer, asked or replayed: (running, upload time).
pub fn engine_state(car: &CarAnswers) -> Option<(bool, i64)> {
    let es = car.typed::<EngineStatus>(Endpoint::EngineStatus).ok()?;
    let Some(Field::Ok(v)) = &es.engine_status else {
        return None;
    };
    let at = crate::values::Uploaded::uploaded_at(v).unwrap_or(0);
    Some((v.value.as_str() == Some("RUNNING"), at))
}

/// Whether the energy state, asked or replayed, says the car is charging.
pub fn charging(car: &CarAnswers) -> bool {
    car.typed::<energy::State>(Endpoint::EnergyState)
        .is_ok_and(energy::State::is_charging)
}

/// A trip ended since the last run: the engine answered stopped now, after running at the
/// last run or with a stop uploaded since.
fn trip_ended(car: &CarAnswers, mem: Option<&CarMemory>) -> bool {
    match fresh_engine(car) {
        Some((false, at)) => mem.is_some_and(|m| m.mode == Mode::Driving || at > m.last_upload),
        _ => false,
    }
}

/// Whether `endpoint`'s answer may put the car in `mode`. An answer of this run may; one
/// kept from an earlier run (replayed, deferred, or standing in for a failure) only holds the
/// mode the car already had, for an hour after it was fetched: one failure does not make a
/// charging car look asleep, an old "running" does not wake a sleeping car into driving, and
/// a lasting failure does not hold a car in the mode of its last answer all day.
fn decides(
    car: &CarAnswers,
    endpoint: Endpoint,
    mem: Option<&CarMemory>,
    mode: Mode,
    cx: &Context,
) -> bool {
    let ask = Ask::of(endpoint);
    car.is_fresh(&ask)
        || mem.is_some_and(|m| m.mode == mode)
            && car.age(&ask, cx.now).is_some_and(|a| a <= ACTIVE_WITHIN_S)
}

/// The car's memory after this run: a pure function like [`wants`].
pub fn memory_after(car: &CarAnswers, mem: Option<&CarMemory>, cx: &Context) -> CarMemory {
    let before = mem.cloned().unwrap_or_default();
    let last_upload = before.last_upload.max(car.newest_fresh(None).unwrap_or(0));
    let active = cx.now - last_upload <= ACTIVE_WITHIN_S;
    let running = decides(car, Endpoint::EngineStatus, mem, Mode::Driving, cx)
        && engine_state(car).is_some_and(|(r, _)| r);
    let charging = decides(car, Endpoint::EnergyState, mem, Mode::Charging, cx) && charging(car);
    let mode = if running && active {
        Mode::Driving
    } else if charging && active {
        Mode::Charging
    } else if woke(car, mem, cx) {
        Mode::ParkedAwake
    } else {
        Mode::Asleep
    };
    let trip_end_pending = trip_ended(car, mem)
        && Endpoint::ALL
            .into_iter()
            .filter(|e| e.fact() == Fact::TripEnd && cx.collecting.collects(*e))
            .any(|e| !car.is_fresh(&Ask::of(e)) && !car.is_unsupported(e));
    CarMemory {
        mode,
        last_upload,
        trip_end_pending,
    }
}

/// One request of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Empty for the account's vehicle list.
    pub vin: String,
    pub ask: Ask,
    /// Which requests go first when the minute cannot take them all.
    pub priority: Fact,
}

impl Request {
    /// The request's path on Volvo's host.
    pub fn path(&self) -> String {
        self.ask
            .endpoint
            .path(&self.vin, self.ask.resource.as_deref())
    }

    pub fn endpoint(&self) -> Endpoint {
        self.ask.endpoint
    }
}

/// What the planner is told at the start of a run.
pub struct Setup<'a> {
    pub schedule: &'a Schedule,
    pub collecting: Collecting,
    pub interval_s: i64,
    pub now: i64,
    /// The configured VINs; empty: every car on the account.
    pub vins: &'a [String],
    /// The daily quota is used up: nothing is asked, everything replayed.
    pub quota_paused: bool,
    /// Cars of the other accounts on the same API key, and how many accounts share it: the
    /// key's daily quota is shared by all of them.
    pub other_cars_on_key: usize,
    pub accounts_on_key: usize,
    /// Where the key stands in Volvo's day: what it spent, until when.
    pub day: schedule::Day,
}

/// The plan of one account's run: its cars' answers and memory, round by round.
pub struct Planner<'a> {
    setup: Setup<'a>,
    /// This run's service level.
    stretch: Stretch,
    /// The key's worst-case day plan, for the record.
    plan: Option<schedule::DayPlan>,
    /// What the key's day allows, and this account's part of it in this run.
    budget: Option<schedule::Budget>,
    allowance: u64,
    /// Requests sent this run.
    sent: u64,
    /// The account's vehicle list (a record with an empty VIN).
    list: CarAnswers,
    cars: BTreeMap<String, CarAnswers>,
    memory: BTreeMap<String, CarMemory>,
    vins: Option<Vec<String>>,
    /// Cars an earlier account of the run reads (see [`crate::claims`]): never this one's.
    taken: BTreeSet<String>,
    /// Cars of this account's list (or configuration) left to an earlier account.
    left_out: Vec<String>,
    /// Cars whose answers came since their wants were last worked out; `None`: every car. An
    /// answer can only change what its own car needs, so a round looks at those cars alone
    /// (a fleet's run would otherwise cost cars × answers).
    changed: Option<BTreeSet<String>>,
    /// Requests that had a place this run but wait for more important answers still in
    /// flight (`window::admit`); they join the next round.
    waiting: Vec<Request>,
}

impl<'a> Planner<'a> {
    /// Takes the kept answers, back-offs and the cars' memory out of `state`, decoding each
    /// kept answer once; [`Planner::finish`] puts them back.
    pub fn new(setup: Setup<'a>, state: &mut State) -> Planner<'a> {
        let absent = if setup.quota_paused {
            Absent::QuotaPaused
        } else {
            Absent::Deferred
        };
        let mut list = CarAnswers::new("", absent);
        let mut cars: BTreeMap<String, CarAnswers> = BTreeMap::new();
        for (key, entry) in std::mem::take(&mut state.cache) {
            let ask = Ask {
                endpoint: key.endpoint,
                resource: key.resource,
            };
            if key.vin.is_empty() {
                list.keep(ask, entry, setup.now);
            } else {
                let car = cars.entry(key.vin.clone());
                car.or_insert_with(|| CarAnswers::new(&key.vin, absent))
                    .keep(ask, entry, setup.now);
            }
        }
        let remembered = |map: &BTreeMap<CarEndpoint, i64>| {
            map.iter()
                .filter(|(_, until)| **until > setup.now)
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        for (k, blocked) in remembered(&state.not_supported)
            .into_iter()
            .map(|k| (k, false))
            .chain(
                remembered(&state.not_available)
                    .into_iter()
                    .map(|k| (k, true)),
            )
        {
            let car = cars
                .entry(k.vin.clone())
                .or_insert_with(|| CarAnswers::new(&k.vin, absent));
            if blocked {
                car.mark_blocked(k.endpoint);
            } else {
                car.mark_unsupported(k.endpoint);
            }
        }
        let vins = (!setup.vins.is_empty()).then(|| setup.vins.to_vec());
        let mut memory = std::mem::take(&mut state.cars);
        // Time only moves forward: an upload remembered after now (the clock stepped back, a
        // bad upload time) counts as now.
        for m in memory.values_mut() {
            m.last_upload = m.last_upload.min(setup.now);
        }
        Planner {
            setup,
            stretch: Stretch::default(),
            plan: None,
            budget: None,
            allowance: u64::MAX,
            sent: 0,
            list,
            cars,
            memory,
            vins,
            taken: BTreeSet::new(),
            left_out: Vec::new(),
            changed: None,
            waiting: Vec::new(),
        }
    }

    /// Leaves the cars an earlier account reads to it: this account neither asks nor shows
    /// them. Said before the first round.
    pub fn leave_out(&mut self, taken: BTreeSet<String>) {
        self.taken = taken;
        if let Some(vins) = self.vins.take() {
            self.vins = Some(self.keep_own(vins));
        }
    }

    /// `vins` without the cars another account reads, which are noted as left out.
    fn keep_own(&mut self, vins: Vec<String>) -> Vec<String> {
        let (theirs, own): (Vec<String>, Vec<String>) =
            vins.into_iter().partition(|v| self.taken.contains(v));
        self.left_out.extend(theirs);
        own
    }

    /// The cars this account reads, once its vehicle list confirms them: a configured car
    /// that the list does not name is no car of this account's, and must not keep a later
    /// account that lists it from reading it. While a new list is on its way, the last one
    /// kept stands in: cars seldom change accounts, and the later accounts wait for this.
    pub fn confirmed_vins(&self) -> Option<Vec<String>> {
        let listed = self.listed().or_else(|| self.kept_list())?;
        Some(match &self.vins {
            Some(vins) if self.setup.vins.is_empty() => vins.clone(),
            Some(vins) => vins
                .iter()
                .filter(|v| listed.contains(v))
                .cloned()
                .collect(),
            None => listed
                .into_iter()
                .filter(|v| !self.taken.contains(v))
                .collect(),
        })
    }

    /// The VINs of the last vehicle list kept from an earlier run.
    fn kept_list(&self) -> Option<Vec<String>> {
        let kept = self.list.kept(&Ask::of(Endpoint::Vehicles))?;
        <VehicleList as crate::api::Typed>::from_answer(&kept.answer).map(|l| l.0.clone())
    }

    /// The cars of this account that an earlier account of the run reads.
    pub fn left_out(&self) -> &[String] {
        &self.left_out
    }

    /// The key's day plan, made once the number of cars is known.
    pub fn day_plan(&self) -> Option<&schedule::DayPlan> {
        self.plan.as_ref()
    }

    fn fleet(&self, cars: usize) -> schedule::Fleet<'_> {
        schedule::Fleet {
            schedule: self.setup.schedule,
            sources: &self.setup.collecting.sources,
            interval: std::time::Duration::from_secs(self.setup.interval_s.max(1) as u64),
            cars: cars + self.setup.other_cars_on_key,
            accounts: self.setup.accounts_on_key,
        }
    }

    /// The key's day plan and budget, once the number of cars is known, and this account's
    /// part of the run's allowance (its share of the key's cars).
    fn make_plan(&mut self, cars: usize) {
        let fleet = self.fleet(cars);
        let budget = fleet.budget(&self.setup.day);
        let share = cars.max(1) as f64 / fleet.cars.max(1) as f64;
        let plan = fleet.plan(schedule::DAILY_BUDGET);
        self.allowance = (budget.allowance as f64 * share).ceil() as u64;
        self.plan = Some(plan);
        self.budget = Some(budget);
    }

    /// This run's service level: the first step of the ladder, down to the floor, whose
    /// first round fits this run's allowance; the floor when none does.
    fn choose_level(&mut self) {
        let Some(budget) = &self.budget else { return };
        let floor = budget.floor;
        let mut level = floor;
        for s in schedule::ladder(floor.every_runs) {
            self.stretch = s;
            if s == floor || self.first_round_size() as u64 <= self.allowance {
                level = s;
                break;
            }
        }
        self.stretch = level;
        if level.is_stretched() {
            tracing::info!(
                spent = budget.spent,
                left = budget.left,
                allowance = self.allowance,
                every_runs = level.every_runs,
                "the API key's budget is short for full service: {level}"
            );
        }
    }

    /// How many requests the first round of this run would make at the current level.
    fn first_round_size(&self) -> usize {
        let cx = self.context();
        self.vins
            .iter()
            .flatten()
            .filter_map(|v| Some(wants(self.cars.get(v)?, self.memory.get(v), &cx).len()))
            .sum()
    }

    /// The key's budget of this run, once known.
    pub fn budget(&self) -> Option<&schedule::Budget> {
        self.budget.as_ref()
    }

    /// This run's service level.
    pub fn level(&self) -> Stretch {
        self.stretch
    }

    /// What this run may spend of the key's day, once the cars are known.
    pub fn allowance(&self) -> Option<u64> {
        self.budget.as_ref().map(|_| self.allowance)
    }

    fn context(&self) -> Context<'_> {
        Context {
            now: self.setup.now,
            interval_s: self.setup.interval_s,
            schedule: self.setup.schedule,
            stretch: self.stretch,
            collecting: self.setup.collecting,
        }
    }

    /// Whether Extended Vehicle is collected this run.
    pub fn collects_extended(&self) -> bool {
        self.setup.collecting.extended
    }

    /// Answers that came this run.
    pub fn fresh(&self) -> usize {
        self.all_answers()
            .flat_map(|c| c.slots())
            .filter(|(_, s)| s.outcome == Some(Outcome::Fresh))
            .count()
    }

    fn all_answers(&self) -> impl Iterator<Item = &CarAnswers> {
        std::iter::once(&self.list).chain(self.cars.values())
    }

    /// Every (vin, endpoint) whose outcome this run `pick`s, once each.
    fn with_outcome(&self, pick: impl Fn(&Outcome) -> bool) -> Vec<(String, Endpoint)> {
        let mut out: Vec<(String, Endpoint)> = Vec::new();
        for car in self.all_answers() {
            for (ask, slot) in car.slots() {
                if slot.outcome.as_ref().is_some_and(&pick)
                    && out.last() != Some(&(car.vin.clone(), ask.endpoint))
                {
                    out.push((car.vin.clone(), ask.endpoint));
                }
            }
        }
        out
    }

    /// Failures hidden by a replay (the quota ran out on them): (vin, endpoint, error).
    pub fn replayed_failures(&self) -> Vec<(String, Endpoint, ApiError)> {
        let mut out = Vec::new();
        for car in self.all_answers() {
            for (ask, slot) in car.slots() {
                let Some(Outcome::Failed(e @ ApiError::Quota { .. })) = &slot.outcome else {
                    continue;
                };
                let seen = out
                    .last()
                    .is_some_and(|(v, x, _): &(String, Endpoint, ApiError)| {
                        *v == car.vin && *x == ask.endpoint
                    });
                if slot.kept.is_some() && !seen {
                    out.push((car.vin.clone(), ask.endpoint, e.clone()));
                }
            }
        }
        out
    }

    /// The endpoints deferred this run, as (vin, endpoint).
    pub fn deferred(&self) -> Vec<(String, Endpoint)> {
        self.with_outcome(|o| *o == Outcome::Deferred)
    }

    /// The cars of this run: configured, or from the vehicle list (asked or replayed).
    pub fn vins(&self) -> Option<&[String]> {
        self.vins.as_deref()
    }

    /// The account's vehicle list, asked or replayed.
    pub fn list(&self) -> &CarAnswers {
        &self.list
    }

    /// What a car said; `None` for a VIN that is not one of this run's cars.
    pub fn car(&self, vin: &str) -> Option<&CarAnswers> {
        self.cars.get(vin)
    }

    /// At most how many more requests that could outrank something in `batch` the answers in
    /// flight or about to go may bring this run: every such ask of their cars neither asked
    /// yet nor in `batch`. A car that woke may want all it did not; an answer only changes its
    /// own car's wants; what ranks below the whole batch can wait a run anyway.
    pub fn may_follow(&self, batch: &[Request]) -> usize {
        // Nothing outranks a batch of wake facts alone (a quiet run's probes).
        let worst = match batch.iter().map(|r| r.priority).max() {
            None | Some(Fact::Wake) => return 0,
            Some(worst) => worst,
        };
        let in_batch: HashSet<&str> = batch.iter().map(|r| r.vin.as_str()).collect();
        let open: usize = self
            .cars
            .iter()
            .filter(|(vin, car)| car.pending() || in_batch.contains(vin.as_str()))
            .map(|(_, car)| self.open_above(car, worst))
            .sum();
        let counted = batch
            .iter()
            .filter(|r| !r.vin.is_empty() && best_rank(r.endpoint()) < worst)
            .count();
        open.saturating_sub(counted)
    }

    /// How many asks of `car` that may rank above `worst` have not gone this run (waiting
    /// ones included; an answer still waited for counts as one).
    fn open_above(&self, car: &CarAnswers, worst: Fact) -> usize {
        let open = |ask: &Ask| matches!(car.outcome(ask), None | Some(Outcome::Waiting));
        Endpoint::ALL
            .into_iter()
            .filter(|e| {
                e.per_vehicle()
                    && best_rank(*e) < worst
                    && self.setup.collecting.collects(*e)
                    && !car.is_unsupported(*e)
            })
            .map(|e| match crate::api::api_of(e).needs(e, car) {
                Need::Never => 0,
                Need::Ready | Need::Waiting => usize::from(open(&Ask::of(e))),
                // One per resource once their list is known; until then, at least one.
                Need::Each([]) => 1,
                Need::Each(names) => names
                    .iter()
                    .filter(|r| {
                        open(&Ask {
                            endpoint: e,
                            resource: Some((*r).clone()),
                        })
                    })
                    .count(),
            })
            .sum()
    }

    /// How many more requests this run's allowance of the key's day lets go out.
    pub fn room(&self) -> usize {
        usize::try_from(self.allowance.saturating_sub(self.sent)).unwrap_or(usize::MAX)
    }

    /// The vehicle list, when it is due: asked first when no VINs are configured (the cars
    /// wait for it), beside the cars when they are (it only checks them).
    fn list_request(&self, priority: Fact) -> Option<Request> {
        let ask = Ask::of(Endpoint::Vehicles);
        let due = self.list.outcome(&ask).is_none()
            && net_due(
                &self.list,
                Endpoint::Vehicles,
                Mode::ParkedAwake,
                &self.context(),
            );
        due.then(|| Request {
            vin: String::new(),
            ask,
            priority,
        })
    }

    /// The cars, once the vehicle list is known; `false` while it is not.
    fn know_cars(&mut self) -> bool {
        if self.plan.is_some() {
            return true;
        }
        if self.vins.is_none() {
            match self.listed() {
                Some(vins) => self.vins = Some(self.keep_own(vins)),
                None => return false,
            }
        }
        let absent = if self.setup.quota_paused {
            Absent::QuotaPaused
        } else {
            Absent::Deferred
        };
        for vin in self.vins.iter().flatten() {
            if !self.cars.contains_key(vin) {
                self.cars.insert(vin.clone(), CarAnswers::new(vin, absent));
            }
        }
        self.make_plan(self.vins.as_ref().map_or(0, Vec::len));
        self.choose_level();
        true
    }

    /// The VINs of the vehicle list, asked or replayed. When it failed this run, the last good
    /// list stands in, with a warning: the account's cars are not hidden by one bad answer.
    fn listed(&self) -> Option<Vec<String>> {
        let ask = Ask::of(Endpoint::Vehicles);
        match self.list.typed::<VehicleList>(Endpoint::Vehicles) {
            Ok(l) => Some(l.0.clone()),
            Err(e) if matches!(self.list.outcome(&ask), Some(Outcome::Failed(_))) => {
                let kept = self.list.kept(&ask)?;
                let vins = <VehicleList as crate::api::Typed>::from_answer(&kept.answer)?;
                tracing::warn!(
                    cars = vins.0.len(),
                    "the vehicle list failed ({e}); its last good answer stands in until the next run asks again"
                );
                Some(vins.0.clone())
            }
            Err(_) => None,
        }
    }

    /// The next round's requests, the most important first (those waiting among them); empty
    /// when the run has asked everything it needs.
    pub fn next_round(&mut self) -> Vec<Request> {
        // Each request goes out at most once a run, so the rounds end.
        let paused = self.setup.quota_paused;
        if self.vins.is_none() && !paused {
            if let Some(r) = self.list_request(Fact::Wake) {
                return vec![r];
            }
        }
        if !self.know_cars() || paused {
            return Vec::new();
        }
        let mut round: Vec<Request> = Vec::new();
        if !self.setup.vins.is_empty() {
            round.extend(self.list_request(Fact::Static));
        }
        let cars: Vec<String> = match self.changed.replace(BTreeSet::new()) {
            None => self.vins.clone().unwrap_or_default(),
            Some(changed) => changed.into_iter().collect(),
        };
        let cx = self.context();
        for vin in &cars {
            let Some(car) = self.cars.get(vin) else {
                continue;
            };
            round.extend(
                wants(car, self.memory.get(vin), &cx)
                    .into_iter()
                    .map(|w| Request {
                        vin: vin.clone(),
                        ask: w.ask,
                        priority: w.priority,
                    }),
            );
        }
        round.append(&mut self.waiting);
        self.order(&mut round);
        round
    }

    /// Most important first; within a priority, the answer asked longest ago first (so that
    /// what a short run leaves for the next takes its turn then), then the cars in the
    /// account's order.
    fn order(&self, round: &mut [Request]) {
        if round.len() < 2 {
            return;
        }
        let order: BTreeMap<&str, usize> = self
            .vins
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| (v.as_str(), i))
            .collect();
        let fetched = |r: &Request| {
            let car = self.cars.get(&r.vin)?;
            car.kept(&r.ask).map(|k| k.fetched_at)
        };
        // The ask last, so that the order never depends on which answers came first.
        round.sort_by_cached_key(|r| {
            let since = fetched(r).unwrap_or(i64::MIN);
            let car = order.get(r.vin.as_str()).copied();
            (r.priority, since, car, r.ask.clone())
        });
    }

    fn answers_of(&mut self, vin: &str) -> &mut CarAnswers {
        if vin.is_empty() {
            return &mut self.list;
        }
        let absent = if self.setup.quota_paused {
            Absent::QuotaPaused
        } else {
            Absent::Deferred
        };
        self.cars
            .entry(vin.to_string())
            .or_insert_with(|| CarAnswers::new(vin, absent))
    }

    /// Records an answer (or failure) of a request this round.
    pub fn record(&mut self, req: &Request, result: Result<Vec<u8>, ApiError>) {
        match (&mut self.changed, req.vin.is_empty()) {
            (Some(changed), false) => {
                changed.insert(req.vin.clone());
            }
            // The vehicle list (or anything account-wide) may change every car's needs.
            _ => self.changed = None,
        }
        let now = self.setup.now;
        self.answers_of(&req.vin)
            .record(req.ask.clone(), now, result);
        // A failed or empty vehicle list is no truth to keep for a day: the next run asks
        // again (its last good answer is kept meanwhile).
        let failed = matches!(self.list.outcome(&req.ask), Some(Outcome::Failed(_)));
        if req.ask.endpoint == Endpoint::Vehicles && failed {
            self.list.age_to(&req.ask, now - LIST_RETRY_AGE_S);
        }
    }

    /// Marks a request as sent.
    pub fn dispatch(&mut self, req: &Request) {
        self.sent += 1;
        self.answers_of(&req.vin)
            .mark(req.ask.clone(), Outcome::InFlight);
    }

    /// Keeps a request that has a place for the next round: it waits for more important
    /// answers in flight.
    pub fn wait(&mut self, req: &Request) {
        self.answers_of(&req.vin)
            .mark(req.ask.clone(), Outcome::Waiting);
        self.waiting.push(req.clone());
    }

    /// Marks a request that found no place in the minute window or the day's allowance.
    pub fn defer(&mut self, req: &Request) {
        self.answers_of(&req.vin)
            .mark(req.ask.clone(), Outcome::Deferred);
    }

    /// The cars' modes after this run.
    pub fn modes(&self) -> BTreeMap<String, Mode> {
        let cx = self.context();
        self.vins
            .iter()
            .flatten()
            .filter_map(|v| {
                let car = self.cars.get(v)?;
                Some((v.clone(), memory_after(car, self.memory.get(v), &cx).mode))
            })
            .collect()
    }

    /// Puts the kept answers and the cars' memory (as learnt this run) back into `state`.
    pub fn finish(self, state: &mut State) {
        let cx = self.context();
        for vin in self.vins.iter().flatten() {
            if let Some(car) = self.cars.get(vin) {
                state
                    .cars
                    .insert(vin.clone(), memory_after(car, self.memory.get(vin), &cx));
            }
        }
        let Planner {
            list, cars, memory, ..
        } = self;
        for (vin, m) in memory {
            state.cars.entry(vin).or_insert(m);
        }
        let entries = std::iter::once(list)
            .chain(cars.into_values())
            .flat_map(CarAnswers::into_entries);
        state.cache.extend(entries);
    }
}

#[cfg(test)]
mod tests {
    //! What one car needs asked, case by case: the electric sample car's recorded answers,
    //! re-stamped to the case's times, kept or answered in this run, with its memory of the
    //! last run.

    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::state::CacheEntry;

    const SAMPLE: &str = include_str!("simulator/cars/bev.json");
    const VIN: &str = "YV1XZK9V0R2000001";
    /// 2026-12-01T08:00:00Z, a run's clock.
    const NOW: i64 = 1_796_112_000;
    const INTERVAL: i64 = 300;
    /// The car's uploads before the case: two hours ago.
    const BEFORE: i64 = NOW - 7_200;

    /// The sample's answer of `ask`: its status and body.
    fn sample(ask: &Ask) -> (u16, Value) {
        let car: Value = serde_json::from_str(SAMPLE).unwrap();
        let path = ask.endpoint.path(VIN, ask.resource.as_deref());
        let a = &car["responses"][&path];
        let status = a["status"].as_u64().unwrap_or_else(|| panic!("no {path}"));
        (status as u16, a["body"].clone())
    }

    /// Every upload time in `body` set to `t`, as the car would stamp a new upload.
    fn stamp(body: &mut Value, t: i64) {
        match body {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), &*v) {
                        ("timestamp" | "updatedAt", Value::String(_)) => {
                            let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
                            *v = Value::String(at.to_rfc3339());
                        }
                        ("timestamp", Value::Number(_)) => *v = t.into(),
                        _ => stamp(v, t),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| stamp(v, t)),
            _ => {}
        }
    }

    /// The sample's body of `ask` uploaded at `t`, with `edits` (JSON pointer, text value).
    fn body(ask: &Ask, t: i64, edits: &[(&str, &str)]) -> String {
        let mut b = sample(ask).1;
        stamp(&mut b, t);
        for (pointer, value) in edits {
            *b.pointer_mut(pointer).expect("the sample has it") = Value::from(*value);
        }
        b.to_string()
    }

    /// Every answer the car can give.
    fn all_asks() -> Vec<Ask> {
        let mut asks = Vec::new();
        for e in Endpoint::ALL.into_iter().filter(|e| e.per_vehicle()) {
            if e == Endpoint::ExtendedValues {
                for r in ["odometer", "batteryChargeLevel", "frontLeftDoor"] {
                    asks.push(Ask {
                        endpoint: e,
                        resource: Some(r.into()),
                    });
                }
            } else {
                asks.push(Ask::of(e));
            }
        }
        asks
    }

    /// The car between runs: every answer kept, fetched `age` seconds ago and uploaded before
    /// the case, not charging; what the car lacks (its engine endpoint) marked unsupported.
    fn parked(age: i64) -> CarAnswers {
        let mut car = CarAnswers::new(VIN, Absent::Deferred);
        for ask in all_asks() {
            if sample(&ask).0 == 404 {
                car.mark_unsupported(ask.endpoint);
                continue;
            }
            let idle: &[(&str, &str)] = match ask.endpoint {
                Endpoint::EnergyState => &[("/chargingStatus/value", "IDLE")],
                _ => &[],
            };
            keep(&mut car, ask, age, BEFORE, idle);
        }
        car
    }

    fn keep(car: &mut CarAnswers, ask: Ask, age: i64, uploaded: i64, edits: &[(&str, &str)]) {
        let b = body(&ask, uploaded, edits);
        let body = serde_json::value::RawValue::from_string(b).unwrap();
        let entry = CacheEntry {
            fetched_at: NOW - age,
            body,
        };
        car.keep(ask, entry, NOW);
    }

    /// `e` answered in this run, uploaded at `uploaded`.
    fn answer(car: &mut CarAnswers, e: Endpoint, uploaded: i64, edits: &[(&str, &str)]) {
        let b = body(&Ask::of(e), uploaded, edits);
        car.record(Ask::of(e), NOW, Ok(b.into_bytes()));
    }

    /// A car that answered its engine running in this run, its other answers kept `age`
    /// seconds ago.
    fn driving(age: i64) -> CarAnswers {
        let mut car = parked(age);
        answer(&mut car, E::EngineStatus, NOW - 60, RUNNING);
        car
    }

    const RUNNING: &[(&str, &str)] = &[("/data/engineStatus/value", "RUNNING")];
    const STOPPED: &[(&str, &str)] = &[("/data/engineStatus/value", "STOPPED")];
    const CHARGING: &[(&str, &str)] = &[("/chargingStatus/value", "CHARGING")];

    fn memory(mode: Mode, last_upload: i64) -> CarMemory {
        CarMemory {
            mode,
            last_upload,
            trip_end_pending: false,
        }
    }

    fn context<'a>(schedule: &'a Schedule, every_runs: u64) -> Context<'a> {
        Context {
            now: NOW,
            interval_s: INTERVAL,
            schedule,
            stretch: Stretch {
                every_runs,
                ..Stretch::default()
            },
            collecting: Collecting {
                sources: crate::endpoints::Sources::ALL,
                extended: true,
            },
        }
    }

    /// One case: the car's answers (kept and of this run), its memory, the plan; what it
    /// wants and what it is doing after the run.
    struct Case {
        name: &'static str,
        car: fn() -> CarAnswers,
        memory: Option<CarMemory>,
        schedule: &'static [(Endpoint, u64)],
        every_runs: u64,
        wants: &'static [Endpoint],
        mode_after: Mode,
    }

    use Endpoint as E;

    const STATE: &[Endpoint] = &[E::Doors, E::Windows, E::EngineStatus, E::EnergyState];
    const TRIP_END: &[Endpoint] = &[E::Statistics, E::Tyres, E::Warnings, E::Location];

    /// A sleeping car between runs, every answer kept ten minutes ago: the base of each case.
    fn quiet() -> Case {
        Case {
            name: "",
            car: || parked(600),
            memory: Some(memory(Mode::Asleep, BEFORE)),
            schedule: &[],
            every_runs: 1,
            wants: &[],
            mode_after: Mode::Asleep,
        }
    }

    /// A sleeping car: what shows a wake, a wake, a safety net.
    fn sleep_cases() -> Vec<Case> {
        vec![
            Case {
                name: "asleep: only what shows a wake",
                wants: &[E::Doors, E::EnergyState],
                ..quiet()
            },
            Case {
                name: "asleep, the probes answered with nothing new: nothing more",
                car: || {
                    let mut car = parked(600);
                    answer(&mut car, E::Doors, BEFORE, &[]);
                    answer(
                        &mut car,
                        E::EnergyState,
                        BEFORE,
                        &[("/chargingStatus/value", "IDLE")],
                    );
                    car
                },
                ..quiet()
            },
            Case {
                name: "woke: a new upload brings the state",
                car: || {
                    let mut car = parked(600);
                    answer(&mut car, E::Doors, NOW - 60, &[]);
                    answer(
                        &mut car,
                        E::EnergyState,
                        BEFORE,
                        &[("/chargingStatus/value", "IDLE")],
                    );
                    car
                },
                wants: &[E::Windows, E::EngineStatus],
                mode_after: Mode::ParkedAwake,
                ..quiet()
            },
            Case {
                name: "parked awake: the state every run; nothing new since: asleep after",
                memory: Some(memory(Mode::ParkedAwake, NOW - 300)),
                wants: STATE,
                mode_after: Mode::Asleep,
                ..quiet()
            },
            Case {
                name: "asleep, a net gone stale: asked as a safety net",
                car: || {
                    let mut car = parked(600);
                    keep(&mut car, Ask::of(E::Odometer), 6 * 3_600, BEFORE, &[]);
                    keep(&mut car, Ask::of(E::Details), 6 * 3_600, BEFORE, &[]);
                    car
                },
                wants: &[E::Doors, E::EnergyState, E::Odometer],
                ..quiet()
            },
        ]
    }

    /// A car in use: driving, a trip ended, charging.
    fn active_cases() -> Vec<Case> {
        vec![
            Case {
                name: "driving: the trip facts every run",
                car: || driving(600),
                memory: Some(memory(Mode::Driving, NOW - 300)),
                wants: &[
                    E::Doors,
                    E::Windows,
                    E::EnergyState,
                    E::Fuel,
                    E::Odometer,
                    E::Statistics,
                ],
                mode_after: Mode::Driving,
                ..quiet()
            },
            Case {
                name: "trip ended: what a trip's end uploads",
                car: || {
                    let mut car = parked(600);
                    answer(&mut car, E::EngineStatus, NOW - 120, STOPPED);
                    answer(&mut car, E::Doors, NOW - 100, &[]);
                    answer(&mut car, E::Windows, NOW - 100, &[]);
                    answer(
                        &mut car,
                        E::EnergyState,
                        NOW - 100,
                        &[("/chargingStatus/value", "IDLE")],
                    );
                    car
                },
                memory: Some(memory(Mode::Driving, NOW - 300)),
                wants: TRIP_END,
                mode_after: Mode::ParkedAwake,
                ..quiet()
            },
            Case {
                name: "charging: energy's uploads are no wake, the rest sleeps",
                car: || {
                    let mut car = parked(600);
                    answer(&mut car, E::EnergyState, NOW - 60, CHARGING);
                    answer(&mut car, E::Doors, BEFORE, &[]);
                    car
                },
                memory: Some(memory(Mode::Charging, NOW - 300)),
                mode_after: Mode::Charging,
                ..quiet()
            },
            Case {
                name: "charging: the net of an hour",
                car: || parked(3_600),
                memory: Some(memory(Mode::Charging, NOW - 300)),
                wants: &[
                    E::Doors,
                    E::EnergyState,
                    E::Windows,
                    E::EngineStatus,
                    E::Diagnostics,
                    E::Brakes,
                    E::Fuel,
                    E::Odometer,
                    E::Statistics,
                    E::Tyres,
                    E::Warnings,
                    E::CommandAccessibility,
                    E::Location,
                    E::ExtendedValues,
                ],
                mode_after: Mode::Asleep,
                ..quiet()
            },
        ]
    }

    /// What holds a want back: a floor, this run's deferral, no support, a stretched plan.
    fn limit_cases() -> Vec<Case> {
        vec![
            Case {
                name: "driving, a floor not yet passed: not asked sooner",
                car: || driving(300),
                memory: Some(memory(Mode::Driving, NOW - 300)),
                schedule: &[(E::Fuel, 600)],
                wants: &[
                    E::Doors,
                    E::Windows,
                    E::EnergyState,
                    E::Odometer,
                    E::Statistics,
                ],
                mode_after: Mode::Driving,
                ..quiet()
            },
            Case {
                name: "driving, the floor passed",
                car: || driving(600),
                memory: Some(memory(Mode::Driving, NOW - 300)),
                schedule: &[(E::Fuel, 600)],
                wants: &[
                    E::Doors,
                    E::Windows,
                    E::EnergyState,
                    E::Fuel,
                    E::Odometer,
                    E::Statistics,
                ],
                mode_after: Mode::Driving,
                ..quiet()
            },
            Case {
                name: "deferred in this run: not asked again in it",
                car: || {
                    let mut car = parked(600);
                    car.mark(Ask::of(E::Doors), Outcome::Deferred);
                    car
                },
                wants: &[E::EnergyState],
                ..quiet()
            },
            Case {
                name: "not supported: never asked",
                car: || {
                    let mut car = parked(600);
                    car.mark_unsupported(E::EnergyState);
                    car
                },
                wants: &[E::Doors],
                ..quiet()
            },
            Case {
                name: "stretched to every second run, a run after the last: nothing",
                car: || parked(300),
                every_runs: 2,
                ..quiet()
            },
            Case {
                name: "stretched to every second run, two runs after the last",
                every_runs: 2,
                wants: &[E::Doors, E::EnergyState],
                ..quiet()
            },
        ]
    }

    /// What a car whose doors uploaded now (a wake) wants in its run's next round.
    const STANDING_IN_WANTS: &[Endpoint] = &[E::Windows, E::EnergyState];

    /// A car whose doors uploaded now and whose engine state failed in this run, its last
    /// answer ("running") fetched `age` seconds ago.
    fn engine_failing(age: i64) -> CarAnswers {
        let mut car = parked(600);
        let ask = Ask::of(E::EngineStatus);
        keep(&mut car, ask.clone(), age, NOW - age - 100, RUNNING);
        car.record(ask, NOW, Err(ApiError::ServerError(503)));
        answer(&mut car, E::Doors, NOW - 60, &[]);
        car
    }

    /// A failure of this run that will likely pass: the last answer stands in, and holds the
    /// mode the car had for an hour, no more, and starts none.
    fn failure_cases() -> Vec<Case> {
        vec![
            Case {
                name: "charging, the energy state failing now: its last answer stands in",
                car: || {
                    let mut car = parked(600);
                    let ask = Ask::of(E::EnergyState);
                    keep(&mut car, ask.clone(), 300, NOW - 400, CHARGING);
                    car.record(ask, NOW, Err(ApiError::ServerError(503)));
                    car
                },
                memory: Some(memory(Mode::Charging, NOW - 300)),
                wants: &[E::Doors],
                mode_after: Mode::Charging,
                ..quiet()
            },
            Case {
                name: "a stand-in starts no mode: the engine's last answer says running",
                car: || engine_failing(300),
                memory: Some(memory(Mode::ParkedAwake, NOW - 300)),
                wants: STANDING_IN_WANTS,
                mode_after: Mode::ParkedAwake,
                ..quiet()
            },
            Case {
                name: "a lasting failure holds no mode: the engine's running, fetched 2 h ago",
                car: || engine_failing(7_200),
                memory: Some(memory(Mode::Driving, NOW - 300)),
                wants: STANDING_IN_WANTS,
                mode_after: Mode::ParkedAwake,
                ..quiet()
            },
            Case {
                name: "a replayed running wakes no sleeping car: the engine not asked, 70 min old",
                car: || {
                    let mut car = parked(600);
                    keep(
                        &mut car,
                        Ask::of(E::EngineStatus),
                        4_200,
                        NOW - 4_300,
                        RUNNING,
                    );
                    car
                },
                memory: Some(memory(Mode::Asleep, NOW - 3_000)),
                wants: &[E::Doors, E::EnergyState],
                mode_after: Mode::Asleep,
                ..quiet()
            },
        ]
    }

    fn cases() -> Vec<Case> {
        [
            sleep_cases(),
            active_cases(),
            limit_cases(),
            failure_cases(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Guards the planner's decisions, one case per mode and transition.
    #[test]
    fn what_a_car_wants_in_each_mode() {
        let mut wrong = Vec::new();
        for case in cases() {
            let overrides = case
                .schedule
                .iter()
                .map(|(e, s)| (*e, std::time::Duration::from_secs(*s)))
                .collect();
            let schedule = Schedule::with_overrides(&overrides);
            let cx = context(&schedule, case.every_runs);
            let car = (case.car)();
            let got: BTreeSet<Endpoint> = wants(&car, case.memory.as_ref(), &cx)
                .into_iter()
                .map(|w| w.ask.endpoint)
                .collect();
            let want: BTreeSet<Endpoint> = case.wants.iter().copied().collect();
            if got != want {
                wrong.push(format!("{}: wants {got:?}, expected {want:?}", case.name));
            }
            let mode = memory_after(&car, case.memory.as_ref(), &cx).mode;
            if mode != case.mode_after {
                wrong.push(format!(
                    "{}: mode {mode:?}, expected {:?}",
                    case.name, case.mode_after
                ));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    /// Guards a trip's end across runs: when the run that saw the stop could not ask all of
    /// what a trip's end uploads, the memory says so, and the next run asks it although the
    /// engine is not asked again.
    #[test]
    fn a_trip_end_not_all_asked_is_asked_the_next_run() {
        let schedule = Schedule::default();
        let cx = context(&schedule, 1);
        let mut car = parked(600);
        answer(&mut car, E::EngineStatus, NOW - 120, STOPPED);
        answer(&mut car, E::Tyres, NOW - 100, &[]);
        let driving = memory(Mode::Driving, NOW - 300);
        let after = memory_after(&car, Some(&driving), &cx);
        assert!(after.trip_end_pending, "{after:?}");

        let next = CarMemory {
            mode: Mode::Asleep,
            ..after
        };
        let endpoints: BTreeSet<Endpoint> = wants(&parked(300), Some(&next), &cx)
            .into_iter()
            .map(|w| w.ask.endpoint)
            .collect();
        assert!(
            TRIP_END.iter().all(|e| endpoints.contains(e)),
            "{endpoints:?}"
        );

        for e in [E::Warnings, E::Location, E::Statistics] {
            answer(&mut car, e, NOW - 100, &[]);
        }
        assert!(!memory_after(&car, Some(&driving), &cx).trip_end_pending);
    }

    /// Guards the first run of a car: nothing kept, no memory: everything it can give is
    /// wanted, except what waits for another answer: Extended Vehicle's values for its
    /// resource list, Energy's state for its capabilities.
    #[test]
    fn a_car_never_seen_wants_everything_it_can_give() {
        let schedule = Schedule::default();
        let cx = context(&schedule, 1);
        let car = CarAnswers::new(VIN, Absent::Deferred);
        let got: BTreeSet<Endpoint> = wants(&car, None, &cx)
            .into_iter()
            .map(|w| w.ask.endpoint)
            .collect();
        let all: BTreeSet<Endpoint> = Endpoint::ALL
            .into_iter()
            .filter(|e| e.per_vehicle() && *e != E::ExtendedValues && *e != E::EnergyState)
            .collect();
        assert_eq!(got, all);
    }

    /// A run's setup for one account alone on its key, with these configured cars.
    fn one_account<'a>(schedule: &'a Schedule, vins: &'a [String]) -> Setup<'a> {
        Setup {
            schedule,
            collecting: context(schedule, 1).collecting,
            interval_s: INTERVAL,
            now: NOW,
            vins,
            quota_paused: false,
            other_cars_on_key: 0,
            accounts_on_key: 1,
            day: schedule::Day {
                spent: 0,
                now: NOW,
                reset_at: NOW + 3_600,
            },
        }
    }

    /// Guards a car shared by two accounts: an account tells the cars it reads only once its
    /// vehicle list confirms them, so a configured car that is not on its list is left to an
    /// account that lists it; and the cars an earlier account reads are never planned.
    #[test]
    fn configured_cars_are_told_once_the_list_confirms_them() {
        const OTHER: &str = "YV1BZ8ZP0M1000002";
        const THIRD: &str = "YV1ZWA8U0P1000003";
        let schedule = Schedule::default();
        let vins = vec![VIN.to_string(), OTHER.to_string(), THIRD.to_string()];
        let setup = one_account(&schedule, &vins);
        let mut state = State::default();
        let mut p = Planner::new(setup, &mut state);
        p.leave_out([THIRD.to_string()].into());
        let first = p.next_round();
        assert_eq!(p.confirmed_vins(), None, "the list is not in yet");
        assert!(first.iter().all(|r| r.vin != THIRD), "{first:?}");
        assert_eq!(p.left_out(), [THIRD.to_string()]);
        let list = first
            .iter()
            .find(|r| r.ask.endpoint == E::Vehicles)
            .expect("the list is asked");
        let body = format!("{{\"data\":[{{\"vin\":\"{VIN}\"}},{{\"vin\":\"{THIRD}\"}}]}}");
        p.record(list, Ok(body.into_bytes()));
        assert_eq!(p.confirmed_vins(), Some(vec![VIN.to_string()]));
        p.finish(&mut state);

        // A day later an account reading its whole list asks it again; while the answer is
        // on its way, the list kept stands in, less the cars an earlier account reads.
        let mut setup = one_account(&schedule, &[]);
        setup.now += 2 * 86_400;
        let mut p = Planner::new(setup, &mut state);
        p.leave_out([THIRD.to_string()].into());
        let round = p.next_round();
        assert_eq!(round.len(), 1, "the list first: {round:?}");
        assert_eq!(round[0].ask.endpoint, E::Vehicles);
        p.dispatch(&round[0]);
        assert_eq!(p.vins(), None);
        assert_eq!(p.confirmed_vins(), Some(vec![VIN.to_string()]));
    }

    /// Guards the places of a short minute across rounds: what may follow a car's answers is
    /// every ask it has not had that could outrank the batch (on a first run, its energy state,
    /// which waits for the capabilities, and its Extended Vehicle values, which wait for their
    /// list); a request that waits is not wanted again meanwhile, and it joins the next round
    /// in the ladder's order.
    #[test]
    fn a_waiting_request_joins_the_next_round_in_order() {
        let schedule = Schedule::default();
        let vins = vec![VIN.to_string()];
        let setup = one_account(&schedule, &vins);
        let mut state = State::default();
        let mut p = Planner::new(setup, &mut state);
        let first = p.next_round();
        assert!(
            first.windows(2).all(|w| w[0].priority <= w[1].priority),
            "most important first: {first:?}"
        );
        assert_eq!(
            p.may_follow(&first),
            2,
            "the energy state and Extended Vehicle's values (their list not in yet) may follow"
        );

        let (go, rest) = first.split_at(2);
        let (wait, later) = rest.split_at(3);
        for r in go {
            p.dispatch(r);
        }
        for r in wait {
            p.wait(r);
        }
        for r in later {
            p.defer(r);
        }
        let car = p.car(VIN).unwrap();
        assert_eq!(car.outcome(&wait[0].ask), Some(&Outcome::Waiting));
        assert!(car.pending());
        // Nothing answered: no car wants anything new; only the waiting requests come back.
        let second = p.next_round();
        assert_eq!(second, wait.to_vec());
        assert_eq!(
            p.may_follow(&second),
            1,
            "still the energy state, nothing else"
        );
        assert!(p.next_round().is_empty(), "a request waits once per round");
    }
}
