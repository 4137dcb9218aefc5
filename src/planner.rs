//! The plan phase of a run: what to ask of each car, round by round, from what the car said.
//!
//! Every value carries the time the car uploaded it, and a sleeping car uploads nothing. So a
//! run asks a sleeping car only what shows that it woke (its lock and doors, and for a car
//! that charges its energy state: a plug-in); as soon as an answer is newer than anything the
//! car had uploaded before, the next round of the same run asks its state (engine, windows).
//! A running engine brings the trip facts every run, a stopped one after a trip the trip-end
//! facts once, and every endpoint still comes at least once per tier, the safety net.
//! Answers are cached in the account's state and replayed whenever an endpoint is not asked,
//! so each run's output is complete, with the original source times.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;

use crate::api::connected_vehicle::{Data, EngineStatus};
use crate::api::energy;
use crate::api::extended_vehicle;
use crate::api::ApiError;
use crate::endpoints::Origin;
use crate::endpoints::{self, Endpoint, Fact};
use crate::schedule::{self, Schedule, Stretch, TOLERANCE_S};
use crate::state::{CacheEntry, CarMemory, Mode, State};
use crate::values::Field;

/// A car whose newest upload is older than this is not driving or charging, whatever its
/// last engine or charging state says (a car that lost its connection mid-trip).
const ACTIVE_WITHIN_S: i64 = 3_600;

/// One request of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Empty for the account's vehicle list.
    pub vin: String,
    pub endpoint: &'static Endpoint,
    /// The Extended Vehicle resource, for its values.
    pub resource: Option<String>,
    /// Which requests go first when the minute cannot take them all.
    pub priority: Fact,
}

impl Request {
    fn key(&self) -> String {
        cache_key(&self.vin, self.endpoint, self.resource.as_deref())
    }

    /// The request's path on Volvo's host.
    pub fn path(&self) -> String {
        self.endpoint.path(&self.vin, self.resource.as_deref())
    }
}

/// Where the answers of `e` for `vin` live in the cache (the state file's keys).
fn cache_key(vin: &str, e: &Endpoint, resource: Option<&str>) -> String {
    match resource {
        Some(r) => format!("{vin} {}/{r}", e.name),
        None => format!("{vin} {}", e.name),
    }
}

/// What this run got for one request.
#[derive(Debug)]
enum Outcome {
    /// Answered now; with the newest upload time in it.
    Fresh(Option<i64>),
    Failed(ApiError),
    /// No place in Volvo's minute window: asked next run.
    Deferred,
    /// Asked; the answer has not come yet.
    InFlight,
}

/// What the planner is told at the start of a run.
pub struct Setup<'a> {
    pub schedule: &'a Schedule,
    pub sources: &'a crate::config::Sources,
    /// Whether Extended Vehicle is asked at all (on, granted and not backed off).
    pub extended: bool,
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

/// The plan of one account's run.
pub struct Planner<'a> {
    setup: Setup<'a>,
    stretch: Stretch,
    plan: Option<schedule::DayPlan>,
    cache: BTreeMap<String, CacheEntry>,
    memory: BTreeMap<String, CarMemory>,
    /// "vin api endpoint" keys remembered as not supported, or blocked.
    unsupported: BTreeSet<String>,
    /// Those of them blocked for the car's region or market.
    unavailable: BTreeSet<String>,
    outcomes: BTreeMap<String, Outcome>,
    vins: Option<Vec<String>>,
    /// Cars whose answers came since their wants were last worked out; `None`: every car. An
    /// answer can only change what its own car needs, so a round looks at those cars alone
    /// (a fleet's run would otherwise cost cars × answers).
    changed: Option<BTreeSet<String>>,
}

impl<'a> Planner<'a> {
    /// Takes the cache and the cars' memory out of `state`; [`Planner::finish`] puts them back.
    pub fn new(setup: Setup<'a>, state: &mut State) -> Planner<'a> {
        let unsupported = state
            .not_supported
            .iter()
            .chain(&state.not_available)
            .filter(|(_, until)| **until > setup.now)
            .map(|(k, _)| k.clone())
            .collect();
        let unavailable = state.not_available.keys().cloned().collect();
        let vins = (!setup.vins.is_empty()).then(|| setup.vins.to_vec());
        let mut cache = std::mem::take(&mut state.cache);
        // An answer that no longer has its endpoint's shape is dropped, so that it is asked
        // again instead of failing every run until its tier comes round.
        cache.retain(|key, entry| {
            let ok = usable(key, entry.body.get());
            if !ok {
                tracing::warn!(key, "cached answer no longer decodes; asking it again");
            }
            ok
        });
        Planner {
            setup,
            stretch: Stretch::default(),
            plan: None,
            cache,
            memory: std::mem::take(&mut state.cars),
            unsupported,
            unavailable,
            outcomes: BTreeMap::new(),
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
            sources: self.setup.sources,
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

    /// Whether Extended Vehicle is collected this run.
    pub fn collects_extended(&self) -> bool {
        self.setup.extended
    }

    /// A cached answer kept for another source (the weather), by key.
    pub fn cached(&self, key: &str) -> Option<CacheEntry> {
        self.cache.get(key).cloned()
    }

    pub fn cache(&mut self, key: String, entry: CacheEntry) {
        self.cache.insert(key, entry);
    }

    /// Answers that came this run.
    pub fn fresh(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Fresh(_)))
            .count()
    }

    /// Failures hidden by a replay (the quota ran out on them): (vin, endpoint, error).
    pub fn replayed_failures(&self) -> Vec<(String, &'static Endpoint, ApiError)> {
        let mut out = Vec::new();
        for (key, o) in &self.outcomes {
            let Outcome::Failed(e @ ApiError::Quota { .. }) = o else {
                continue;
            };
            if let Some((vin, rest)) = key.split_once(' ') {
                let k = rest.split('/').next().unwrap_or(rest);
                if let Some(ep) = endpoints::by_name(k) {
                    if self.cache.contains_key(key) {
                        out.push((vin.to_string(), ep, e.clone()));
                    }
                }
            }
        }
        out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        out
    }

    /// The cars of this run: configured, or from the vehicle list (asked or replayed).
    pub fn vins(&self) -> Option<&[String]> {
        self.vins.as_deref()
    }

    /// The next round's requests, the most important first, and how many places in the minute
    /// window to keep for the round after it (the energy states that wait for capabilities
    /// asked now); empty when the run has asked everything it needs.
    pub fn next_round(&mut self) -> (Vec<Request>, usize) {
        let round = self.round();
        let held = round
            .iter()
            .filter(|r| {
                r.endpoint.api == Origin::Energy
                    && r.endpoint.name == "energy_capabilities"
                    && !self.cache.contains_key(&r.key())
            })
            .count();
        (round, held)
    }

    fn round(&mut self) -> Vec<Request> {
        // Each request goes out at most once a run, so the rounds end.
        let paused = self.setup.quota_paused;
        if self.vins.is_none() {
            let list = endpoints::get(Origin::ConnectedVehicle, "vehicles");
            let asked = self.outcomes.contains_key(&cache_key("", list, None));
            if !paused && !asked && self.net_due("", list, Mode::ParkedAwake) {
                return vec![Request {
                    vin: String::new(),
                    endpoint: list,
                    resource: None,
                    priority: Fact::Wake,
                }];
            }
            match crate::api::connected_vehicle::vehicles(self.answer("", list, None)) {
                Ok(vins) => self.vins = Some(vins),
                Err(_) => return Vec::new(),
            }
        }
        if self.plan.is_none() {
            self.make_plan(self.vins.as_ref().map_or(0, Vec::len));
        }
        if paused {
            return Vec::new();
        }
        let mut round: Vec<Request> = Vec::new();
        // Configured VINs do not wait for the vehicle list, which only checks them.
        let list = endpoints::get(Origin::ConnectedVehicle, "vehicles");
        if !self.setup.vins.is_empty()
            && !self.outcomes.contains_key(&cache_key("", list, None))
            && self.net_due("", list, Mode::ParkedAwake)
        {
            round.push(Request {
                vin: String::new(),
                endpoint: list,
                resource: None,
                priority: Fact::Static,
            });
        }
        let cars: Vec<String> = match self.changed.replace(BTreeSet::new()) {
            None => self.vins.clone().unwrap_or_default(),
            Some(changed) => changed.into_iter().collect(),
        };
        for vin in &cars {
            round.extend(self.wants(vin));
        }
        if round.len() < 2 {
            return round;
        }
        let order: BTreeMap<String, usize> = self
            .vins
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect();
        round.sort_by_key(|r| (r.priority, order.get(&r.vin).copied()));
        round
    }

    /// Records an answer (or failure) of a request this round.
    pub fn record(&mut self, req: &Request, result: Result<Vec<u8>, ApiError>) {
        let key = req.key();
        match (&mut self.changed, req.vin.is_empty()) {
            (Some(changed), false) => {
                changed.insert(req.vin.clone());
            }
            // The vehicle list (or anything account-wide) may change every car's needs.
            _ => self.changed = None,
        }
        let outcome = match result {
            Ok(body) => match CacheEntry::new(self.setup.now, body) {
                Some(entry) => {
                    let newest = newest_upload(&entry.body);
                    self.cache.insert(key.clone(), entry);
                    Outcome::Fresh(newest)
                }
                None => Outcome::Failed(ApiError::Decode("the answer is not JSON".into())),
            },
            Err(e) => Outcome::Failed(e),
        };
        self.outcomes.insert(key, outcome);
    }

    /// Marks a request as sent.
    pub fn dispatch(&mut self, req: &Request) {
        self.outcomes.insert(req.key(), Outcome::InFlight);
    }

    /// Marks a request that found no place in the minute window.
    pub fn defer(&mut self, req: &Request) {
        self.outcomes.insert(req.key(), Outcome::Deferred);
    }

    /// What the run has for `e` of `vin`: this run's answer, or the last one replayed.
    pub fn answer(
        &self,
        vin: &str,
        e: &Endpoint,
        resource: Option<&str>,
    ) -> Result<&str, ApiError> {
        let key = cache_key(vin, e, resource);
        let cached = || self.cache.get(&key).map(|c| c.body.get());
        match self.outcomes.get(&key) {
            Some(Outcome::Fresh(_)) => Ok(cached().expect("a fresh answer is cached")),
            // While the quota is used up the last answers stand, with their source times.
            Some(Outcome::Failed(e @ ApiError::Quota { .. })) => cached().ok_or_else(|| e.clone()),
            Some(Outcome::Failed(e)) => Err(e.clone()),
            Some(Outcome::Deferred) => cached().ok_or(ApiError::Deferred),
            Some(Outcome::InFlight) => Err(ApiError::Timeout),
            None if self.is_unsupported(vin, e) => Err(ApiError::remembered(
                self.unavailable
                    .contains(&crate::state::endpoint_key(vin, e.api.label(), e.name)),
            )),
            None => cached().ok_or(if self.setup.quota_paused {
                ApiError::Quota { reset_after: None }
            } else {
                ApiError::Deferred
            }),
        }
    }

    /// The endpoints deferred this run, as (vin, endpoint).
    pub fn deferred(&self) -> Vec<(String, &'static Endpoint)> {
        let mut out = Vec::new();
        for (key, o) in &self.outcomes {
            if matches!(o, Outcome::Deferred) {
                if let Some((vin, rest)) = key.split_once(' ') {
                    let k = rest.split('/').next().unwrap_or(rest);
                    if let Some(e) = endpoints::by_name(k) {
                        out.push((vin.to_string(), e));
                    }
                }
            }
        }
        out.dedup();
        out
    }

    /// The cars' modes after this run.
    pub fn modes(&self) -> BTreeMap<String, Mode> {
        self.vins
            .iter()
            .flatten()
            .map(|v| (v.clone(), self.memory_after(v).mode))
            .collect()
    }

    /// Puts the cache and the cars' memory (as learnt this run) back into `state`.
    pub fn finish(self, state: &mut State) {
        for vin in self.vins.iter().flatten() {
            state.cars.insert(vin.clone(), self.memory_after(vin));
        }
        state.cache = self.cache;
    }

    // ---- what to ask --------------------------------------------------------------------

    /// This round's requests for one car.
    fn wants(&self, vin: &str) -> Vec<Request> {
        let mem = self.memory.get(vin);
        let woke = self.woke(vin);
        let awake = woke
            || matches!(
                mem.map(|m| m.mode),
                None | Some(Mode::Driving | Mode::ParkedAwake)
            );
        let mode = if woke {
            Mode::ParkedAwake
        } else {
            mem.map(|m| m.mode).unwrap_or(Mode::ParkedAwake)
        };
        let engine = self.fresh_engine(vin);
        let driving = match engine {
            Some((running, _)) => running,
            None => mode == Mode::Driving,
        };
        let trip_ended = self.trip_ended(vin) || mem.is_some_and(|m| m.trip_end_pending);
        let mut out = Vec::new();
        for e in endpoints::ALL.iter().filter(|e| e.per_vehicle()) {
            if !self.collects(e) || self.is_unsupported(vin, e) {
                continue;
            }
            let due = match e.fact {
                Fact::Wake => self.every_run_due(vin, e),
                Fact::State if awake => self.every_run_due(vin, e),
                Fact::Trip if driving => self.every_run_due(vin, e),
                Fact::Trip if trip_ended && e.name == "statistics" => true,
                Fact::TripEnd if trip_ended => true,
                _ => self.net_due(vin, e, mode),
            };
            for resource in self.resources(vin, e) {
                let key = cache_key(vin, e, resource.as_deref());
                let asked = self.outcomes.contains_key(&key);
                if asked || !due || !self.floor_passed(&key, e) || !self.ready(vin, e) {
                    continue;
                }
                // Capabilities never seen gate the energy state, a wake fact: they go with it.
                let gates = e.api == Origin::Energy && e.name == "energy_capabilities";
                let priority = if gates && self.age(&key).is_none() {
                    Fact::Wake
                } else {
                    e.fact
                };
                out.push(Request {
                    vin: vin.to_string(),
                    endpoint: e,
                    resource,
                    priority,
                });
            }
        }
        out
    }

    fn collects(&self, e: &Endpoint) -> bool {
        if e.api == Origin::ExtendedVehicle {
            return self.setup.extended;
        }
        e.enabled(self.setup.sources)
    }

    fn is_unsupported(&self, vin: &str, e: &Endpoint) -> bool {
        self.unsupported
            .contains(&crate::state::endpoint_key(vin, e.api.label(), e.name))
    }

    /// The resources of an endpoint: one `None`, or each Extended Vehicle value listed.
    fn resources(&self, vin: &str, e: &Endpoint) -> Vec<Option<String>> {
        if e.name != "extended_values" {
            return vec![None];
        }
        let list = endpoints::get(Origin::ExtendedVehicle, "extended_resources");
        crate::api::decode::<extended_vehicle::ResourceList>(self.answer(vin, list, None))
            .map(|l| {
                extended_vehicle::resource_names(&l)
                    .into_iter()
                    .map(Some)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether what the endpoint depends on allows asking it. The energy state waits for the
    /// car's capabilities (a car without energy is never asked it); when they cannot be had
    /// this run, it is asked anyway.
    fn ready(&self, vin: &str, e: &Endpoint) -> bool {
        if e.api != Origin::Energy || e.name != "energy_state" {
            return true;
        }
        let caps = endpoints::get(Origin::Energy, "energy_capabilities");
        let key = cache_key(vin, caps, None);
        match crate::api::decode::<energy::Capabilities>(self.answer(vin, caps, None)) {
            Ok(c) => !c.rules_out_state(),
            Err(_) => matches!(
                self.outcomes.get(&key),
                Some(Outcome::Failed(_) | Outcome::Deferred)
            ),
        }
    }

    fn age(&self, key: &str) -> Option<i64> {
        self.cache.get(key).map(|c| self.setup.now - c.fetched_at)
    }

    /// An every-run endpoint is due every run, or every k-th run when the key's plan
    /// stretched it.
    fn every_run_due(&self, vin: &str, e: &Endpoint) -> bool {
        let k = self.stretch.every_runs as i64;
        k <= 1
            || self
                .age(&cache_key(vin, e, None))
                .is_none_or(|age| age + TOLERANCE_S >= k * self.setup.interval_s)
    }

    /// The safety net: due when the cached answer is as old as the endpoint's tier, which a
    /// sleeping car stretches to hours and a charging one to an hour.
    fn net_due(&self, vin: &str, e: &Endpoint, mode: Mode) -> bool {
        let tier = self.stretch.tier(self.setup.schedule, e);
        let tier = match mode {
            Mode::Asleep => tier.max(schedule::ASLEEP_NET_S),
            Mode::Charging => tier.max(schedule::CHARGING_NET_S),
            // What a trip's end uploads cannot change before the trip ends.
            Mode::Driving if e.fact == Fact::TripEnd => tier.max(schedule::CHARGING_NET_S),
            Mode::Driving | Mode::ParkedAwake => tier,
        } as i64;
        let key = cache_key(vin, e, None);
        let key = if e.name == "extended_values" {
            // Values follow their list's age when their own differ: the oldest decides.
            return self.resources(vin, e).iter().any(|r| {
                self.age(&cache_key(vin, e, r.as_deref()))
                    .is_none_or(|age| age + TOLERANCE_S >= tier)
            });
        } else {
            key
        };
        self.age(&key).is_none_or(|age| age + TOLERANCE_S >= tier)
    }

    /// The `[schedule]` minimum age: never asked sooner, whatever the car does.
    fn floor_passed(&self, key: &str, e: &Endpoint) -> bool {
        let floor = self.setup.schedule.floor(e) as i64;
        floor == 0 || self.age(key).is_none_or(|age| age + TOLERANCE_S >= floor)
    }

    // ---- what the car says --------------------------------------------------------------

    /// The newest upload in this run's answers for the car.
    fn newest_now(&self, vin: &str) -> Option<i64> {
        self.newest_now_except(vin, None)
    }

    fn newest_now_except(&self, vin: &str, except: Option<&str>) -> Option<i64> {
        let prefix = format!("{vin} ");
        self.outcomes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| Some(k.as_str()) != except)
            .filter_map(|(_, o)| match o {
                Outcome::Fresh(t) => *t,
                _ => None,
            })
            .max()
    }

    /// Whether the car uploaded something since the last run (on a first run: within the
    /// last two intervals). A charging car's energy uploads are what charging does, not a wake.
    fn woke(&self, vin: &str) -> bool {
        let charging = self
            .memory
            .get(vin)
            .is_some_and(|m| m.mode == Mode::Charging);
        let state = endpoints::get(Origin::Energy, "energy_state");
        let skip = charging.then(|| cache_key(vin, state, None));
        let Some(newest) = self.newest_now_except(vin, skip.as_deref()) else {
            return false;
        };
        match self.memory.get(vin) {
            Some(m) => newest > m.last_upload,
            None => self.setup.now - newest <= 2 * self.setup.interval_s,
        }
    }

    /// The engine state answered this run: (running, its upload time).
    fn fresh_engine(&self, vin: &str) -> Option<(bool, i64)> {
        let e = endpoints::get(Origin::ConnectedVehicle, "engine_status");
        if !matches!(
            self.outcomes.get(&cache_key(vin, e, None)),
            Some(Outcome::Fresh(_))
        ) {
            return None;
        }
        engine_state(self.answer(vin, e, None))
    }

    /// A trip ended since the last run: the engine answered stopped now, after running at
    /// the last run or with a stop uploaded since.
    fn trip_ended(&self, vin: &str) -> bool {
        let mem = self.memory.get(vin);
        match self.fresh_engine(vin) {
            Some((false, at)) => mem.is_some_and(|m| m.mode == Mode::Driving || at > m.last_upload),
            _ => false,
        }
    }

    /// The car's memory after this run.
    fn memory_after(&self, vin: &str) -> CarMemory {
        let before = self.memory.get(vin).cloned().unwrap_or_default();
        let last_upload = before.last_upload.max(self.newest_now(vin).unwrap_or(0));
        let active = self.setup.now - last_upload <= ACTIVE_WITHIN_S;
        let engine = endpoints::get(Origin::ConnectedVehicle, "engine_status");
        let running = engine_state(self.answer(vin, engine, None)).is_some_and(|(r, _)| r);
        let state = endpoints::get(Origin::Energy, "energy_state");
        let charging = charging(self.answer(vin, state, None));
        let mode = if running && active {
            Mode::Driving
        } else if charging && active {
            Mode::Charging
        } else if self.woke(vin) {
            Mode::ParkedAwake
        } else {
            Mode::Asleep
        };
        let trip_end_pending = self.trip_ended(vin)
            && endpoints::ALL
                .iter()
                .filter(|e| e.fact == Fact::TripEnd && self.collects(e))
                .any(|e| {
                    !matches!(
                        self.outcomes.get(&cache_key(vin, e, None)),
                        Some(Outcome::Fresh(_))
                    ) && !self.is_unsupported(vin, e)
                });
        CarMemory {
            mode,
            last_upload,
            trip_end_pending,
        }
    }
}

/// Whether a cached answer still has the shape of its endpoint's answers (keys of other
/// sources, like the weather, are kept as they are).
fn usable(key: &str, body: &str) -> bool {
    use serde::de::IgnoredAny;
    let k = key.split_once(' ').map_or(key, |(_, k)| k);
    let k = k.split('/').next().unwrap_or(k);
    let Some(e) = endpoints::by_name(k) else {
        return true;
    };
    let body = Ok(body);
    match (e.api, e.name) {
        (Origin::ConnectedVehicle, _) => crate::api::decode::<Data<IgnoredAny>>(body).is_ok(),
        (Origin::Energy, "energy_capabilities") => {
            crate::api::decode::<energy::Capabilities>(body).is_ok()
        }
        (Origin::Energy, _) => crate::api::decode::<energy::State>(body).is_ok(),
        (Origin::Location, _) => crate::api::location::decode(body).is_ok(),
        (Origin::ExtendedVehicle, "extended_resources") => {
            crate::api::decode::<extended_vehicle::ResourceList>(body).is_ok()
        }
        (Origin::ExtendedVehicle, _) => {
            crate::api::decode::<extended_vehicle::ResourceEnvelope>(body).is_ok()
        }
        _ => true,
    }
}

/// `engineStatus` of an engine-status answer: (running, upload time).
fn engine_state(body: Result<&str, ApiError>) -> Option<(bool, i64)> {
    let d: Data<EngineStatus> = crate::api::decode(body).ok()?;
    let Some(Field::Ok(v)) = &d.data.engine_status else {
        return None;
    };
    let at = v
        .timestamp
        .as_deref()
        .and_then(|t| crate::values::timestamp(t).ok())
        .map(|t| t as i64)
        .unwrap_or(0);
    Some((v.value.as_str() == Some("RUNNING"), at))
}

/// Whether an energy state answer says the car is charging.
fn charging(body: Result<&str, ApiError>) -> bool {
    let Ok(state) = crate::api::decode::<energy::State>(body) else {
        return false;
    };
    state.is_charging()
}

/// The newest upload time in an answer: the latest of its `timestamp` and `updatedAt`
/// values (RFC 3339 text, or Unix seconds in Extended Vehicle), wherever they stand.
pub fn newest_upload(body: &RawValue) -> Option<i64> {
    fn walk(v: &serde_json::Value, newest: &mut Option<i64>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "timestamp" || k == "updatedAt" {
                        let t = match v {
                            serde_json::Value::String(s) => crate::values::timestamp(s).ok(),
                            serde_json::Value::Number(n) => n.as_f64(),
                            _ => None,
                        };
                        if let Some(t) = t {
                            *newest = Some(newest.unwrap_or(i64::MIN).max(t as i64));
                        }
                    } else {
                        walk(v, newest);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, newest)),
            _ => {}
        }
    }
    let v: serde_json::Value = serde_json::from_str(body.get()).ok()?;
    let mut newest = None;
    walk(&v, &mut newest);
    newest
}
