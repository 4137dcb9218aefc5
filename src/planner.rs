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

use std::collections::{BTreeMap, BTreeSet};

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
        if due {
            out.extend(
                asks(car, e)
                    .into_iter()
                    .filter_map(|ask| want(car, ask, cx)),
            );
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
            .into_iter()
            .map(|r| Ask {
                endpoint: e,
                resource: Some(r),
            })
            .collect(),
    }
}

/// `ask` as a want, unless it was asked this run already or its floor has not passed.
fn want(car: &CarAnswers, ask: Ask, cx: &Context) -> Option<Want> {
    if car.outcome(&ask).is_some() || !floor_passed(car, &ask, cx) {
        return None;
    }
    // Capabilities never seen gate the energy state, a wake fact: they go with it.
    let gates = ask.endpoint == Endpoint::EnergyCapabilities;
    let priority = if gates && car.kept(&ask).is_none() {
        Fact::Wake
    } else {
        ask.endpoint.fact()
    };
    Some(Want { ask, priority })
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
        Need::Each(names) => names.into_iter().any(|r| {
            old(&Ask {
                endpoint: e,
                resource: Some(r),
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

/// The car's memory after this run: a pure function like [`wants`].
pub fn memory_after(car: &CarAnswers, mem: Option<&CarMemory>, cx: &Context) -> CarMemory {
    let before = mem.cloned().unwrap_or_default();
    let last_upload = before.last_upload.max(car.newest_fresh(None).unwrap_or(0));
    let active = cx.now - last_upload <= ACTIVE_WITHIN_S;
    let running = engine_state(car).is_some_and(|(r, _)| r);
    let mode = if running && active {
        Mode::Driving
    } else if charging(car) && active {
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
}

/// The plan of one account's run: its cars' answers and memory, round by round.
pub struct Planner<'a> {
    setup: Setup<'a>,
    stretch: Stretch,
    plan: Option<schedule::DayPlan>,
    /// The account's vehicle list (a record with an empty VIN).
    list: CarAnswers,
    cars: BTreeMap<String, CarAnswers>,
    memory: BTreeMap<String, CarMemory>,
    vins: Option<Vec<String>>,
    /// Cars whose answers came since their wants were last worked out; `None`: every car. An
    /// answer can only change what its own car needs, so a round looks at those cars alone
    /// (a fleet's run would otherwise cost cars × answers).
    changed: Option<BTreeSet<String>>,
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
                list.keep(ask, entry);
            } else {
                let car = cars.entry(key.vin.clone());
                car.or_insert_with(|| CarAnswers::new(&key.vin, absent))
                    .keep(ask, entry);
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
        Planner {
            setup,
            stretch: Stretch::default(),
            plan: None,
            list,
            cars,
            memory: std::mem::take(&mut state.cars),
            vins,
            changed: None,
        }
    }

    /// The key's day plan, made once the number of cars is known.
    pub fn day_plan(&self) -> Option<&schedule::DayPlan> {
        self.plan.as_ref()
    }

    fn make_plan(&mut self, cars: usize) {
        let fleet = schedule::Fleet {
            schedule: self.setup.schedule,
            sources: &self.setup.collecting.sources,
            interval: std::time::Duration::from_secs(self.setup.interval_s.max(1) as u64),
            cars: cars + self.setup.other_cars_on_key,
            accounts: self.setup.accounts_on_key,
        };
        let plan = fleet.plan(schedule::DAILY_BUDGET);
        if plan.stretch.is_stretched() {
            tracing::info!(
                planned = plan.total,
                every_runs = plan.stretch.every_runs,
                "the API key's cars need more than its daily quota allows; intervals stretched to fit"
            );
        }
        self.stretch = plan.stretch;
        self.plan = Some(plan);
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

    /// The next round's requests, the most important first, and how many places in the minute
    /// window to keep for the round after it (the energy states that wait for capabilities
    /// asked now); empty when the run has asked everything it needs.
    pub fn next_round(&mut self) -> (Vec<Request>, usize) {
        let round = self.round();
        let held = round
            .iter()
            .filter(|r| r.endpoint() == Endpoint::EnergyCapabilities)
            .filter(|r| {
                self.cars
                    .get(&r.vin)
                    .is_none_or(|c| c.kept(&r.ask).is_none())
            })
            .count();
        (round, held)
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
            match self.list.typed::<VehicleList>(Endpoint::Vehicles) {
                Ok(l) => self.vins = Some(l.0.clone()),
                Err(_) => return false,
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
        true
    }

    fn round(&mut self) -> Vec<Request> {
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
        self.order(&mut round);
        round
    }

    /// Most important first; within a priority, the cars in the account's order.
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
        round.sort_by_cached_key(|r| (r.priority, order.get(r.vin.as_str()).copied()));
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
    }

    /// Marks a request as sent.
    pub fn dispatch(&mut self, req: &Request) {
        self.answers_of(&req.vin)
            .mark(req.ask.clone(), Outcome::InFlight);
    }

    /// Marks a request that found no place in the minute window.
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
