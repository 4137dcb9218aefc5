//! Trips and charging sessions, worked out from what one car uploads: a pure state machine fed
//! once per run with the values the run knows (each with its upload time) and kept in the
//! state file between runs. Volvo has no trip or charge endpoint; the uploads hold the answer.
//! The same upload is seen again and again (answers are replayed until the next fetch), runs
//! fail or pause for hours, and each endpoint uploads at its own moments, so every value is
//! taken once, by its upload time, and the uploads of a run are applied in the order the car
//! made them.

use serde::{Deserialize, Serialize};

/// A trip starts at the first upload showing the car awake, but at most this long before the
/// first upload showing it move: a car that stood awake longer (charging, preconditioning)
/// was not on its way yet.
pub const WAKE_LEAD_SECONDS: i64 = 15 * 60;
/// A car that reports no engine status has stopped when its odometer has not moved for this
/// long (and in two runs in a row).
pub const MOVE_QUIET_SECONDS: i64 = 10 * 60;
/// A charging session whose battery level has not risen for this long has ended, unless the
/// car still says CHARGING and has uploaded no level since.
pub const CHARGE_QUIET_SECONDS: i64 = 30 * 60;
/// A rise of the fuel amount by more than this during a trip is a refill, not fuel gained.
pub const REFILL_LITERS: f64 = 2.0;
/// The odometer must move at least this far to show movement (it reports whole meters or
/// coarser).
const MIN_MOVE_METERS: f64 = 1.0;
/// A battery level must rise by more than this to count as a rise (float noise of the
/// percentage conversion).
const MIN_RISE: f64 = 1e-4;

/// One value and when the car uploaded it, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed<T> {
    pub value: T,
    pub at: i64,
}

impl<T> Timed<T> {
    pub fn new(value: T, at: i64) -> Self {
        Timed { value, at }
    }
}

/// Energy's `chargingStatus`; a value Volvo adds later is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargingStatus {
    Charging,
    Discharging,
    Done,
    Error,
    Idle,
    Scheduled,
    Fault,
    Unspecified,
    #[serde(other)]
    Other,
}

impl ChargingStatus {
    /// The status as Energy sends it.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "CHARGING" => Self::Charging,
            "DISCHARGING" => Self::Discharging,
            "DONE" => Self::Done,
            "ERROR" => Self::Error,
            "IDLE" => Self::Idle,
            "SCHEDULED" => Self::Scheduled,
            "FAULT" => Self::Fault,
            "UNSPECIFIED" => Self::Unspecified,
            _ => Self::Other,
        }
    }

    /// Whether the car says it is not charging (any known state but CHARGING; an unknown or
    /// unspecified one says nothing).
    fn ends_charge(self) -> bool {
        !matches!(self, Self::Charging | Self::Unspecified | Self::Other)
    }
}

/// What one run knows of one car. Any value may be missing: not asked, failed, or not
/// something this car reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// The run's time, Unix seconds. Upload times after it are taken as this time.
    pub now: i64,
    /// The newest upload time of any of the car's answers in this run (replayed ones
    /// included); `None` when the run got no answer of the car, which then changes nothing.
    pub newest_upload: Option<i64>,
    /// Engine status: RUNNING is `true`.
    pub engine_running: Option<Timed<bool>>,
    pub odometer_meters: Option<Timed<f64>>,
    /// Traction battery charge level, 0 to 1.
    pub battery_level: Option<Timed<f64>>,
    pub fuel_liters: Option<Timed<f64>>,
    pub charging: Option<Timed<ChargingStatus>>,
    /// Charger connection: CONNECTED is `true`, DISCONNECTED `false` (others: `None`).
    pub charger_connected: Option<Timed<bool>>,
    /// Usable battery capacity, from the vehicle details.
    pub capacity_joules: Option<f64>,
}

/// A completed trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    /// The first upload showing the car awake; `None` when the collector saw only the trip's
    /// end (it started and ended between two runs that answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// The upload showing the car stopped.
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_meters: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_liters: Option<f64>,
}

impl Trip {
    pub fn duration_seconds(&self) -> Option<i64> {
        self.start.map(|s| self.end - s)
    }
}

/// A completed charging session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub start: i64,
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_end: Option<f64>,
    /// The rise of the level times the usable capacity; `None` without a known capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
}

impl Charge {
    /// Energy over duration; `None` without energy or for a session of no duration.
    pub fn average_power_watts(&self) -> Option<f64> {
        let seconds = self.end - self.start;
        self.energy_joules
            .filter(|_| seconds > 0)
            .map(|e| e / seconds as f64)
    }
}

/// The last value taken of one signal: its upload time as used (at most the run's time), and
/// as sent when that was in the future.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Last<T> {
    v: T,
    at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent: Option<i64>,
}

impl<T> Last<T> {
    fn sent(&self) -> i64 {
        self.sent.unwrap_or(self.at)
    }
}

/// The last value of every signal the records use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Seen {
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<Last<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    odometer: Option<Last<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery: Option<Last<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fuel: Option<Last<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charging: Option<Last<ChargingStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected: Option<Last<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upload: Option<Last<bool>>,
}

/// The car's readings while it stood still.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Parked {
    at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    odometer: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    battery: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fuel: Option<f64>,
}

/// A trip under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenTrip {
    /// The run that saw it begin.
    opened: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<i64>,
    first_move: i64,
    last_move: i64,
    from: Parked,
    /// Fuel used so far (refills left out), and the last fuel amount of the trip.
    fuel_used: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_fuel: Option<f64>,
    /// The run that first saw the car stopped; the next run that still does ends the trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quiet_since: Option<i64>,
}

/// A charging session under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenCharge {
    start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_level: Option<f64>,
    /// The highest level of the session and when it was uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peak: Option<f64>,
    last_rise: i64,
}

/// One car's records, kept in the state file: the counters, what is under way, and the last
/// completed trip and charge. Every field has a default, so that a state file written by an
/// older version loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CarRecords {
    pub trips: u64,
    pub trip_distance_meters: f64,
    pub charging_sessions: u64,
    pub charged_energy_joules: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_trip: Option<Trip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_charge: Option<Charge>,
    seen: Seen,
    #[serde(skip_serializing_if = "Option::is_none")]
    parked: Option<Parked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trip: Option<OpenTrip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<OpenCharge>,
    /// The first upload after the car was last seen asleep or parked.
    #[serde(skip_serializing_if = "Option::is_none")]
    awake: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<f64>,
    /// The last run's time.
    now: i64,
}

/// One new upload of one signal.
#[derive(Debug, Clone, Copy)]
enum Event {
    Engine(bool),
    Odometer(f64),
    Battery(f64),
    Fuel(f64),
    Charging(ChargingStatus),
    Connected(bool),
    /// Any other upload (doors, windows, position, ...).
    Upload,
}

impl Event {
    /// Order of uploads made at the same second: what starts, then readings, then what
    /// ends (a charge's last level comes with DONE; a trip's last odometer with STOPPED).
    fn rank(self) -> u8 {
        match self {
            Event::Engine(true) | Event::Connected(true) => 0,
            Event::Charging(s) if !s.ends_charge() => 0,
            Event::Odometer(_) | Event::Battery(_) | Event::Fuel(_) => 1,
            Event::Engine(false) | Event::Connected(false) | Event::Charging(_) => 2,
            Event::Upload => 3,
        }
    }
}

/// What one run brought, for the checks after its uploads are applied.
#[derive(Debug, Default)]
struct RunNotes {
    now: i64,
    fresh: bool,
    moved: bool,
    stopped: Option<i64>,
}

/// The upload time to use for a value sent at `sent`, if it is new: not the upload already
/// taken, and not older than it.
fn new_upload<T>(last: Option<&Last<T>>, sent: i64, now: i64) -> Option<(i64, Option<i64>)> {
    let at = sent.min(now);
    let future = (sent > now).then_some(sent);
    match last {
        Some(l) if l.sent() == sent || at < l.at => None,
        _ => Some((at, future)),
    }
}

/// Energy in whole joules: the level's percentages times the capacity leave float noise
/// (0.6 − 0.4 is not 0.2) that no car measures.
fn joules(v: f64) -> f64 {
    v.round()
}

/// Meters and liters to a thousandth, for the same reason.
fn thousandths(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn finite_in(v: f64, lo: f64, hi: f64) -> bool {
    v.is_finite() && (lo..=hi).contains(&v)
}

impl CarRecords {
    /// Applies what one run knows of the car. Observing the same values again changes
    /// nothing; a value older than one already taken is ignored.
    pub fn observe(&mut self, o: &Observation) {
        let now = o.now.max(self.now);
        if let Some(c) = o.capacity_joules.filter(|c| finite_in(*c, 1.0, f64::MAX)) {
            self.capacity = Some(c);
        }
        let events = self.new_uploads(o, now);
        // A run without any answer of the car (it failed) learnt nothing, not even that the
        // car stood still; a run that sees only what the last one saw learnt nothing either.
        if events.is_empty() && (now <= self.now || o.newest_upload.is_none()) {
            return;
        }
        let mut run = RunNotes {
            now,
            fresh: !events.is_empty(),
            ..RunNotes::default()
        };
        for (at, future, e) in events {
            self.apply(at, future, e, &mut run);
        }
        self.settle(&run);
        self.now = now;
    }

    /// The run's new uploads in the order the car made them.
    fn new_uploads(&self, o: &Observation, now: i64) -> Vec<(i64, Option<i64>, Event)> {
        let s = &self.seen;
        let mut out = Vec::new();
        let mut add = |new: Option<(i64, Option<i64>)>, e: Event| {
            if let Some((at, future)) = new {
                out.push((at, future, e));
            }
        };
        if let Some(t) = o.engine_running {
            add(
                new_upload(s.engine.as_ref(), t.at, now),
                Event::Engine(t.value),
            );
        }
        if let Some(t) = o.odometer_meters.filter(|t| finite_in(t.value, 0.0, 1e12)) {
            add(
                new_upload(s.odometer.as_ref(), t.at, now),
                Event::Odometer(t.value),
            );
        }
        if let Some(t) = o.battery_level.filter(|t| finite_in(t.value, 0.0, 1.0)) {
            add(
                new_upload(s.battery.as_ref(), t.at, now),
                Event::Battery(t.value),
            );
        }
        if let Some(t) = o.fuel_liters.filter(|t| finite_in(t.value, 0.0, 1e4)) {
            add(new_upload(s.fuel.as_ref(), t.at, now), Event::Fuel(t.value));
        }
        if let Some(t) = o.charging {
            add(
                new_upload(s.charging.as_ref(), t.at, now),
                Event::Charging(t.value),
            );
        }
        if let Some(t) = o.charger_connected {
            add(
                new_upload(s.connected.as_ref(), t.at, now),
                Event::Connected(t.value),
            );
        }
        if let Some(t) = o.newest_upload {
            let newer = s.upload.is_none_or(|u| t.min(now) > u.at);
            add(
                new_upload(s.upload.as_ref(), t, now).filter(|_| newer),
                Event::Upload,
            );
        }
        out.sort_by_key(|(at, _, e)| (*at, e.rank()));
        out
    }

    /// Takes one new upload.
    fn apply(&mut self, at: i64, sent: Option<i64>, e: Event, run: &mut RunNotes) {
        // The first run has no earlier one to compare with: its uploads may be days old.
        if self.trip.is_none() && self.awake.is_none() && self.now > 0 {
            self.awake = Some(at);
        }
        macro_rules! take {
            ($field:ident, $v:expr) => {
                self.seen.$field = Some(Last { v: $v, at, sent })
            };
        }
        match e {
            Event::Engine(running) => {
                take!(engine, running);
                if running {
                    self.moved(at, run);
                } else {
                    run.stopped = Some(at);
                }
            }
            Event::Odometer(v) => {
                let before = self.seen.odometer.map(|l| l.v);
                // An odometer never runs back: a lower value is a glitch, its upload is kept
                // as a reading of the higher one.
                take!(odometer, before.map_or(v, |b| b.max(v)));
                if before.is_some_and(|b| v - b >= MIN_MOVE_METERS) {
                    self.moved(at, run);
                }
            }
            Event::Battery(v) => {
                let before = self.seen.battery;
                take!(battery, v);
                self.battery(before, v, at);
            }
            Event::Fuel(v) => {
                take!(fuel, v);
                if let Some(t) = self.trip.as_mut() {
                    // Small rises are the gauge settling and net out; a large one is a refill.
                    if let Some(last) = t.last_fuel.filter(|l| v - l <= REFILL_LITERS) {
                        t.fuel_used += last - v;
                    }
                    t.last_fuel = Some(v);
                }
            }
            Event::Charging(status) => {
                take!(charging, status);
                if status == ChargingStatus::Charging && self.charge.is_none() {
                    if self.seen.connected.is_some_and(|c| c.v) {
                        self.close_trip(); // plugged in and charging: parked
                    }
                    self.open_charge(at, self.seen.battery.map(|b| b.v), at);
                } else if status.ends_charge() {
                    self.close_charge(at, self.seen.battery.map(|b| b.v));
                }
            }
            Event::Connected(plugged) => {
                take!(connected, plugged);
                if plugged {
                    // A car plugged in is parked: a trip still waiting for its next run ends
                    // before the charge's levels join its readings.
                    self.close_trip();
                } else {
                    self.close_charge(at, self.seen.battery.map(|b| b.v));
                }
            }
            Event::Upload => take!(upload, true),
        }
    }

    /// The car moved at `at`: a trip goes on, or begins after a parked reading.
    fn moved(&mut self, at: i64, run: &mut RunNotes) {
        run.moved = true;
        if let Some(t) = self.trip.as_mut() {
            t.last_move = t.last_move.max(at);
            t.quiet_since = None;
            return;
        }
        let Some(from) = self.parked.clone() else {
            return; // no parked reading yet: the records start from the first one
        };
        let start = self
            .awake
            .unwrap_or(at)
            .max(at - WAKE_LEAD_SECONDS)
            .max(from.at)
            .min(at);
        self.trip = Some(OpenTrip {
            opened: run.now,
            start: Some(start),
            first_move: at,
            last_move: at,
            last_fuel: from.fuel,
            from,
            fuel_used: 0.0,
            quiet_since: None,
        });
    }

    /// A new battery level: a charge rises, or a rise while plugged in begins one.
    fn battery(&mut self, before: Option<Last<f64>>, v: f64, at: i64) {
        if let Some(c) = self.charge.as_mut() {
            match c.peak {
                Some(p) if v > p + MIN_RISE => {
                    c.peak = Some(v);
                    c.last_rise = at;
                }
                Some(_) => {}
                None => {
                    c.start_level = Some(v);
                    c.peak = Some(v);
                }
            }
            return;
        }
        let (Some(plug), Some(before)) = (self.seen.connected.filter(|c| c.v), before) else {
            return;
        };
        // A car that said DONE or IDLE since it was plugged in has finished: a late level
        // is not a new session.
        let finished = self
            .seen
            .charging
            .is_some_and(|s| s.v.ends_charge() && s.at >= plug.at);
        if !finished && v > before.v + MIN_RISE {
            self.open_charge(before.at.max(plug.at), Some(before.v), at);
            if let Some(c) = self.charge.as_mut() {
                c.peak = Some(v);
            }
        }
    }

    fn open_charge(&mut self, start: i64, level: Option<f64>, last_rise: i64) {
        self.charge = Some(OpenCharge {
            start,
            start_level: level,
            peak: level,
            last_rise,
        });
    }

    /// Ends the session under way, if any, at `end` with the battery at `level`.
    fn close_charge(&mut self, end: i64, level: Option<f64>) {
        let Some(c) = self.charge.take() else { return };
        let energy = match (self.capacity, c.start_level, level) {
            (Some(cap), Some(a), Some(b)) => Some(joules((b - a).max(0.0) * cap)),
            _ => None,
        };
        self.charging_sessions += 1;
        // The counter sums the energies that are known: a session without one adds nothing.
        if let Some(e) = energy {
            self.charged_energy_joules += e;
        }
        self.last_charge = Some(Charge {
            start: c.start,
            end: end.max(c.start),
            battery_start: c.start_level,
            battery_end: level,
            energy_joules: energy,
        });
    }

    /// The checks after a run's uploads: a trip or a session that has ended, the parked
    /// reading, and whether the car went quiet.
    fn settle(&mut self, run: &RunNotes) {
        self.settle_trip(run);
        if let Some(c) = &self.charge {
            let says_charging = self
                .seen
                .charging
                .is_some_and(|s| s.v == ChargingStatus::Charging);
            let uploads_without_rise = self
                .seen
                .battery
                .is_some_and(|b| b.at - c.last_rise >= CHARGE_QUIET_SECONDS);
            if run.now - c.last_rise >= CHARGE_QUIET_SECONDS
                && (!says_charging || uploads_without_rise)
            {
                let (end, level) = (c.last_rise, c.peak);
                self.close_charge(end, level);
            }
        }
        if self.trip.is_none() {
            if !run.fresh {
                self.awake = None;
            }
            if !self.seen.engine.is_some_and(|e| e.v) {
                self.parked = self.reading().or(self.parked.take());
            }
        }
    }

    /// Whether a trip under way has ended: the engine has stopped (or, for a car without an
    /// engine status, the odometer has rested), and the next run shows no movement either.
    fn settle_trip(&mut self, run: &RunNotes) {
        let engine = self.seen.engine;
        let Some(t) = self.trip.as_mut() else { return };
        if t.opened == run.now && run.stopped.is_some_and(|s| s >= t.first_move) {
            t.start = None; // it began and ended between two runs
        }
        // The last stretch up to the stop comes with the stop's upload: only movement after
        // it keeps the trip going, so the run that sees the stop is the first quiet one.
        if run.moved && run.stopped.is_none_or(|s| s < t.last_move) {
            t.quiet_since = None;
            return;
        }
        let stopped = match engine {
            Some(e) if e.v => false,
            Some(e) if e.at >= t.first_move => true,
            _ => run.now - t.last_move >= MOVE_QUIET_SECONDS,
        };
        let confirmed = match t.quiet_since {
            _ if !stopped => {
                t.quiet_since = None;
                false
            }
            None => {
                t.quiet_since = Some(run.now);
                false
            }
            Some(q) => run.now > q,
        };
        if confirmed {
            self.close_trip();
        }
    }

    /// Ends the trip under way: distance between the parked readings on either side, energy
    /// and fuel from their falls.
    fn close_trip(&mut self) {
        let Some(t) = self.trip.take() else { return };
        let Some(to) = self.reading() else { return };
        let end = match self.seen.engine {
            Some(e) if !e.v && e.at >= t.first_move => e.at.max(t.last_move),
            _ => t.last_move,
        };
        let distance = t
            .from
            .odometer
            .zip(to.odometer)
            .map(|(a, b)| thousandths(b - a));
        self.parked = Some(to.clone());
        self.awake = None;
        if distance.is_some_and(|d| d < MIN_MOVE_METERS) {
            return; // the engine ran, the car did not move: a remote start, not a trip
        }
        let energy = match (self.capacity, t.from.battery, to.battery) {
            (Some(cap), Some(a), Some(b)) => Some(joules((a - b).max(0.0) * cap)),
            _ => None,
        };
        self.trips += 1;
        // The counter sums the distances that are known: a trip without one adds nothing.
        if let Some(d) = distance {
            self.trip_distance_meters += d;
        }
        self.last_trip = Some(Trip {
            start: t.start.map(|s| s.min(end)),
            end,
            distance_meters: distance,
            energy_joules: energy,
            fuel_liters: t.last_fuel.map(|_| thousandths(t.fuel_used.max(0.0))),
        });
    }

    /// The car's latest readings, if it has any.
    fn reading(&self) -> Option<Parked> {
        let s = &self.seen;
        let at = [
            s.odometer.map(|l| l.at),
            s.engine.map(|l| l.at),
            s.battery.map(|l| l.at),
            s.fuel.map(|l| l.at),
        ]
        .into_iter()
        .flatten()
        .max()?;
        Some(Parked {
            at,
            odometer: s.odometer.map(|l| l.v),
            battery: s.battery.map(|l| l.v),
            fuel: s.fuel.map(|l| l.v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChargingStatus::{Charging, Done, Idle};

    /// 2026-12-01T00:00:00Z.
    const DAY: i64 = 1_796_083_200;
    /// 80 kWh.
    const CAPACITY: f64 = 288e6;
    const MINUTE: i64 = 60;

    /// "HH:MM" on the day, in Unix seconds.
    fn hm(text: &str) -> i64 {
        let (h, m) = text.split_once(':').unwrap();
        DAY + h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * MINUTE
    }

    /// One upload of a scripted car.
    #[derive(Debug, Clone, Copy)]
    enum U {
        Engine(bool),
        Km(f64),
        Percent(f64),
        Liters(f64),
        Status(ChargingStatus),
        Plug(bool),
        /// Any other field (a door, the lock, the position).
        Door,
    }

    /// A car's uploads. An answer at time `t` holds, for each field, the newest upload up to
    /// `t` with its own upload time, as Volvo's answers do.
    #[derive(Debug, Clone)]
    struct Script {
        uploads: Vec<(i64, U)>,
        capacity: Option<f64>,
    }

    impl Script {
        fn new(capacity: Option<f64>) -> Self {
            Script {
                uploads: Vec::new(),
                capacity,
            }
        }

        fn at(&mut self, t: i64, u: U) -> &mut Self {
            self.uploads.push((t, u));
            self
        }

        /// The newest upload up to `now` that `pick` takes.
        fn newest<T>(&self, now: i64, pick: impl Fn(U) -> Option<T>) -> Option<Timed<T>> {
            let mut best: Option<Timed<T>> = None;
            for (t, u) in &self.uploads {
                if let Some(v) = pick(*u).filter(|_| *t <= now) {
                    if best.as_ref().is_none_or(|b| *t >= b.at) {
                        best = Some(Timed::new(v, *t));
                    }
                }
            }
            best
        }

        fn observation(&self, now: i64) -> Observation {
            Observation {
                now,
                newest_upload: self.uploads.iter().map(|u| u.0).filter(|t| *t <= now).max(),
                engine_running: self.newest(now, |u| match u {
                    U::Engine(r) => Some(r),
                    _ => None,
                }),
                odometer_meters: self.newest(now, |u| match u {
                    U::Km(km) => Some(km * 1000.0),
                    _ => None,
                }),
                battery_level: self.newest(now, |u| match u {
                    U::Percent(p) => Some(p / 100.0),
                    _ => None,
                }),
                fuel_liters: self.newest(now, |u| match u {
                    U::Liters(l) => Some(l),
                    _ => None,
                }),
                charging: self.newest(now, |u| match u {
                    U::Status(s) => Some(s),
                    _ => None,
                }),
                charger_connected: self.newest(now, |u| match u {
                    U::Plug(p) => Some(p),
                    _ => None,
                }),
                capacity_joules: self.capacity,
            }
        }

        /// The evening before: parked and asleep.
        fn evening(&mut self, km: f64, energy: U) -> &mut Self {
            let t = DAY - 3 * 3600;
            self.at(t, U::Engine(false))
                .at(t, U::Km(km))
                .at(t, energy)
                .at(t, U::Door)
        }

        /// Unlocked at `from`, started two minutes later, driven for `minutes` minutes with
        /// an upload every minute, stopped and locked. Returns the odometer and energy after.
        fn commute(&mut self, from: &str, minutes: i64, km: f64, e: (f64, f64), bev: bool) {
            let (mut level, per_min) = e;
            let start = hm(from) + 2 * MINUTE;
            let mut odo = km;
            self.at(hm(from), U::Door).at(start, U::Engine(true));
            for k in 1..=minutes {
                let t = start + k * MINUTE;
                odo += if bev { 0.8 } else { 0.9 };
                level -= per_min;
                self.at(t, U::Km(odo));
                self.at(
                    t,
                    if bev {
                        U::Percent(level)
                    } else {
                        U::Liters(level)
                    },
                );
            }
            let stop = start + minutes * MINUTE;
            self.at(stop, U::Engine(false)).at(stop + MINUTE, U::Door);
        }

        /// Plugged in at `from` at `level` %, rising linearly to `to` % at `until`.
        fn charge(&mut self, from: &str, until: &str, level: f64, to: f64) -> &mut Self {
            let (a, b) = (hm(from), hm(until));
            self.at(a, U::Plug(true))
                .at(a, U::Status(Charging))
                .at(a, U::Percent(level));
            let minutes = (b - a) / MINUTE;
            for k in 1..minutes {
                let p = level + (to - level) * k as f64 / minutes as f64;
                self.at(a + k * MINUTE, U::Percent(p));
            }
            self.at(b, U::Percent(to))
        }
    }

    /// The electric car's day: commutes 07:30-08:12 and 17:00-17:42 (32 km and 10 % each),
    /// then a charge from 52 % to 80 % from 18:00 to 22:00, ending DONE and still plugged in.
    fn bev_day(capacity: Option<f64>) -> Script {
        let mut s = Script::new(capacity);
        s.evening(18734.0, U::Percent(72.0))
            .at(DAY - 3 * 3600, U::Status(Idle))
            .at(DAY - 3 * 3600, U::Plug(false));
        s.commute("07:30", 40, 18734.0, (72.0, 0.25), true);
        s.commute("17:00", 40, 18766.0, (62.0, 0.25), true);
        s.charge("18:00", "22:00", 52.0, 80.0)
            .at(hm("22:00"), U::Status(Done));
        s
    }

    /// The petrol car's trip: 12:00-12:47, 40.5 km and 2.7 l.
    fn petrol_day() -> Script {
        let mut s = Script::new(None);
        s.evening(12609.0, U::Liters(42.0));
        s.commute("12:00", 45, 12609.0, (42.0, 0.06), false);
        s
    }

    /// Runs every 5 minutes from `from` to `to` (inclusive), but for those in `failed`
    /// (inclusive ranges).
    fn runs(from: &str, to: &str, failed: &[(&str, &str)]) -> Vec<i64> {
        (hm(from)..=hm(to))
            .step_by(300)
            .filter(|t| !failed.iter().any(|(a, b)| (hm(a)..=hm(b)).contains(t)))
            .collect()
    }

    fn play(s: &Script, runs: &[i64]) -> CarRecords {
        let mut r = CarRecords::default();
        for t in runs {
            r.observe(&s.observation(*t));
        }
        r
    }

    fn near(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            (None, None) => true,
            _ => false,
        }
    }

    fn trip(start: Option<&str>, end: &str, km: f64, kwh: Option<f64>, l: Option<f64>) -> Trip {
        Trip {
            start: start.map(hm),
            end: hm(end),
            distance_meters: Some(km * 1000.0),
            energy_joules: kwh.map(|k| k * 3.6e6),
            fuel_liters: l,
        }
    }

    fn charge(from: &str, to: &str, pct: (f64, f64), kwh: Option<f64>) -> Charge {
        Charge {
            start: hm(from),
            end: hm(to),
            battery_start: Some(pct.0 / 100.0),
            battery_end: Some(pct.1 / 100.0),
            energy_joules: kwh.map(|k| k * 3.6e6),
        }
    }

    fn same_trip(a: &Option<Trip>, b: &Option<Trip>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                a.start == b.start
                    && a.end == b.end
                    && near(a.distance_meters, b.distance_meters)
                    && near(a.energy_joules, b.energy_joules)
                    && near(a.fuel_liters, b.fuel_liters)
            }
            (None, None) => true,
            _ => false,
        }
    }

    fn same_charge(a: &Option<Charge>, b: &Option<Charge>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                a.start == b.start
                    && a.end == b.end
                    && near(a.battery_start, b.battery_start)
                    && near(a.battery_end, b.battery_end)
                    && near(a.energy_joules, b.energy_joules)
            }
            (None, None) => true,
            _ => false,
        }
    }

    /// One scripted day and what the records must say at its end.
    struct Case {
        name: &'static str,
        script: Script,
        runs: Vec<i64>,
        trips: u64,
        km: f64,
        sessions: u64,
        kwh: f64,
        last_trip: Option<Trip>,
        last_charge: Option<Charge>,
    }

    fn cases() -> Vec<Case> {
        let whole_day = runs("00:00", "23:55", &[]);
        let home = trip(Some("17:00"), "17:42", 32.0, Some(8.0), None);
        let evening_charge = charge("18:00", "22:00", (52.0, 80.0), Some(22.4));
        let bev = |name, runs: Vec<i64>| Case {
            name,
            script: bev_day(Some(CAPACITY)),
            runs,
            trips: 2,
            km: 64.0,
            sessions: 1,
            kwh: 22.4,
            last_trip: Some(home.clone()),
            last_charge: Some(evening_charge.clone()),
        };
        vec![
            bev("two commutes and a charge", whole_day.clone()),
            bev(
                "runs failing in the middle of a trip",
                runs("00:00", "23:55", &[("07:40", "07:55")]),
            ),
            bev(
                "runs failing over the end of a trip",
                runs("00:00", "23:55", &[("08:05", "08:30")]),
            ),
            bev(
                "a quota pause over the end of a charge",
                runs("00:00", "23:55", &[("19:00", "23:00")]),
            ),
            bev(
                "a quota pause over a whole charge",
                runs("00:00", "23:55", &[("17:55", "23:00")]),
            ),
            Case {
                // Only the end of the trip is seen: counted once, its start unknown.
                last_trip: Some(trip(None, "08:12", 32.0, Some(8.0), None)),
                trips: 1,
                km: 32.0,
                sessions: 0,
                kwh: 0.0,
                last_charge: None,
                ..bev(
                    "a quota pause over a whole trip",
                    runs("00:00", "12:00", &[("07:00", "09:00")]),
                )
            },
            Case {
                // No capacity: sessions and trips counted, no energy figures.
                script: bev_day(None),
                kwh: 0.0,
                last_trip: Some(trip(Some("17:00"), "17:42", 32.0, None, None)),
                last_charge: Some(charge("18:00", "22:00", (52.0, 80.0), None)),
                ..bev("no battery capacity", whole_day.clone())
            },
            Case {
                name: "a petrol car's trip",
                script: petrol_day(),
                runs: whole_day.clone(),
                trips: 1,
                km: 40.5,
                sessions: 0,
                kwh: 0.0,
                last_trip: Some(trip(Some("12:00"), "12:47", 40.5, None, Some(2.7))),
                last_charge: None,
            },
        ]
    }

    /// Guards the records of whole scripted days: counted once, with the distance between
    /// the parked readings and the energy of the level's change, however runs fail.
    #[test]
    fn scripted_days() {
        for c in cases() {
            let r = play(&c.script, &c.runs);
            let name = c.name;
            assert_eq!(r.trips, c.trips, "{name}: trips");
            assert!(
                near(Some(r.trip_distance_meters), Some(c.km * 1000.0)),
                "{name}: distance {}",
                r.trip_distance_meters
            );
            assert_eq!(r.charging_sessions, c.sessions, "{name}: sessions");
            assert!(
                near(Some(r.charged_energy_joules), Some(c.kwh * 3.6e6)),
                "{name}: energy {}",
                r.charged_energy_joules
            );
            assert!(
                same_trip(&r.last_trip, &c.last_trip),
                "{name}: {:?}",
                r.last_trip
            );
            assert!(
                same_charge(&r.last_charge, &c.last_charge),
                "{name}: {:?}",
                r.last_charge
            );
            assert!(r.trip.is_none() && r.charge.is_none(), "{name}: {r:?}");
        }
    }

    /// Guards idempotence: a run that sees exactly what the run before saw changes nothing,
    /// and every run observed twice gives the same records as once.
    #[test]
    fn the_same_observation_twice_changes_nothing() {
        for c in cases() {
            let mut twice = CarRecords::default();
            for t in &c.runs {
                let o = c.script.observation(*t);
                twice.observe(&o);
                let once = twice.clone();
                twice.observe(&o);
                assert_eq!(twice, once, "{} at {t}", c.name);
            }
            assert_eq!(twice, play(&c.script, &c.runs), "{}", c.name);
        }
    }

    /// Guards the replays between fetches: a car seen every minute of a day gives the same
    /// counts as one seen every five (answers repeated with their upload times).
    #[test]
    fn replayed_answers_are_counted_once() {
        let s = bev_day(Some(CAPACITY));
        let every_minute: Vec<i64> = (hm("00:00")..=hm("23:59")).step_by(60).collect();
        let r = play(&s, &every_minute);
        assert_eq!((r.trips, r.charging_sessions), (2, 1));
        assert!(near(Some(r.trip_distance_meters), Some(64_000.0)));
    }

    /// Guards the pulled cable and DONE: each ends the session at its upload, and a level
    /// uploaded after DONE while still plugged in is no new session.
    #[test]
    fn charge_ends_at_done_or_when_the_cable_is_pulled() {
        let base = || {
            let mut s = Script::new(Some(CAPACITY));
            s.evening(1000.0, U::Percent(40.0))
                .at(DAY - 3 * 3600, U::Plug(false))
                .at(DAY - 3 * 3600, U::Status(Idle))
                .charge("18:00", "20:00", 40.0, 52.0);
            s
        };
        let mut done = base();
        done.at(hm("20:00"), U::Status(Done))
            .at(hm("20:30"), U::Percent(52.2));
        let mut pulled = base();
        pulled.at(hm("20:00"), U::Plug(false));
        let mut no_status = base();
        no_status.uploads.retain(|u| !matches!(u.1, U::Status(_)));
        let day = runs("00:00", "23:55", &[]);
        for (name, s, end) in [
            ("done", done, "20:00"),
            ("pulled", pulled, "20:00"),
            ("no status, no rise for 30 minutes", no_status, "20:00"),
        ] {
            let r = play(&s, &day);
            assert_eq!(r.charging_sessions, 1, "{name}");
            let want = charge("18:00", end, (40.0, 52.0), Some(9.6));
            assert!(
                same_charge(&r.last_charge, &Some(want)),
                "{name}: {:?}",
                r.last_charge
            );
            let power = r.last_charge.unwrap().average_power_watts().unwrap();
            assert!(
                (power - 9.6 * 3.6e6 / 7200.0).abs() < 1e-6,
                "{name}: {power}"
            );
        }
    }

    /// Guards the fuel of a trip with a refill in it: the refill is no negative fuel.
    #[test]
    fn refuelling_during_a_trip() {
        let mut s = Script::new(None);
        s.evening(100.0, U::Liters(40.0))
            .at(hm("12:02"), U::Engine(true))
            .at(hm("12:10"), U::Km(105.0))
            .at(hm("12:10"), U::Liters(39.0))
            .at(hm("12:20"), U::Km(110.0))
            .at(hm("12:20"), U::Liters(38.2))
            // the gauge settles up a little: not a refill
            .at(hm("12:21"), U::Liters(38.4))
            .at(hm("12:30"), U::Liters(58.0))
            .at(hm("12:40"), U::Km(115.0))
            .at(hm("12:40"), U::Liters(57.0))
            .at(hm("12:45"), U::Engine(false));
        let r = play(&s, &runs("00:00", "23:55", &[]));
        assert_eq!(r.trips, 1);
        let t = r.last_trip.unwrap();
        // 1 + 0.8 - 0.2 (settling) + 1: the 19.6 l refill is left out.
        assert!(near(t.fuel_liters, Some(2.6)), "{t:?}");
        assert!(near(t.distance_meters, Some(15_000.0)), "{t:?}");
        assert_eq!(t.end, hm("12:45"));
    }

    /// Guards cars without an engine status: the odometer alone starts and ends the trip,
    /// which ends at its last movement once the odometer has rested for 10 minutes.
    #[test]
    fn an_odometer_without_engine_status() {
        let mut s = Script::new(Some(CAPACITY));
        s.at(DAY - 3 * 3600, U::Km(5000.0))
            .at(DAY - 3 * 3600, U::Percent(80.0))
            .at(hm("09:00"), U::Door);
        for k in 1..=20 {
            let t = hm("09:00") + k * MINUTE;
            s.at(t, U::Km(5000.0 + 0.5 * k as f64))
                .at(t, U::Percent(80.0 - 0.2 * k as f64));
        }
        let r = play(&s, &runs("00:00", "12:00", &[]));
        assert_eq!(r.trips, 1, "{r:?}");
        let want = trip(Some("09:00"), "09:20", 10.0, Some(3.2), None);
        assert!(same_trip(&r.last_trip, &Some(want)), "{:?}", r.last_trip);
    }

    /// Guards a failed run: a run that got no answer of the car is no "next run without
    /// movement", so a short stop with a failed run after it does not split the trip.
    #[test]
    fn a_failed_run_after_a_stop_does_not_end_the_trip() {
        let mut s = Script::new(None);
        s.evening(100.0, U::Liters(40.0))
            .at(hm("07:32"), U::Engine(true))
            .at(hm("07:50"), U::Km(110.0))
            .at(hm("08:03"), U::Engine(false))
            .at(hm("08:12"), U::Engine(true))
            .at(hm("08:30"), U::Km(120.0))
            .at(hm("08:40"), U::Engine(false));
        let mut r = CarRecords::default();
        for t in runs("07:00", "10:00", &[]) {
            let failed = t == hm("08:10");
            r.observe(&if failed {
                Observation {
                    now: t,
                    ..Observation::default()
                }
            } else {
                s.observation(t)
            });
        }
        assert_eq!(r.trips, 1, "{r:?}");
        let t = r.last_trip.unwrap();
        assert!(near(t.distance_meters, Some(20_000.0)), "{t:?}");
        assert_eq!(t.end, hm("08:40"));
    }

    /// Guards the end of a trip: the run that sees the stop, with the odometer's last stretch
    /// up to it, is the first without movement, so the next run ends the trip.
    #[test]
    fn the_trip_ends_in_the_run_after_the_stop() {
        let s = bev_day(Some(CAPACITY));
        let mut r = CarRecords::default();
        for t in ["07:00", "07:50", "08:15"] {
            r.observe(&s.observation(hm(t)));
        }
        assert_eq!(r.trips, 0, "the stop is not yet confirmed");
        r.observe(&s.observation(hm("08:20")));
        assert_eq!(r.trips, 1, "{r:?}");
        // Awake at the first upload this sparse a car shows: the start.
        let want = trip(Some("07:32"), "08:12", 32.0, Some(8.0), None);
        assert!(same_trip(&r.last_trip, &Some(want)), "{:?}", r.last_trip);
    }

    /// Guards a remote start: the engine ran, the odometer did not move, no trip.
    #[test]
    fn an_engine_that_ran_without_moving_is_no_trip() {
        let mut s = Script::new(None);
        s.evening(100.0, U::Liters(40.0))
            .at(hm("06:00"), U::Engine(true))
            .at(hm("06:15"), U::Engine(false))
            .at(hm("06:15"), U::Km(100.0));
        let r = play(&s, &runs("00:00", "12:00", &[]));
        assert_eq!(r.trips, 0);
        assert!(r.last_trip.is_none() && r.trip.is_none());
    }

    fn obs(now: i64, engine: Option<(bool, i64)>, odo: Option<(f64, i64)>) -> Observation {
        Observation {
            now,
            newest_upload: [engine.map(|e| e.1), odo.map(|o| o.1)]
                .into_iter()
                .flatten()
                .max(),
            engine_running: engine.map(|(v, at)| Timed::new(v, at)),
            odometer_meters: odo.map(|(v, at)| Timed::new(v, at)),
            ..Observation::default()
        }
    }

    /// Guards the order of uploads: an answer older than one already taken (a stale cache)
    /// and an odometer that reads lower than before change nothing.
    #[test]
    fn older_uploads_and_lower_readings_are_ignored() {
        let t0 = DAY;
        let mut r = CarRecords::default();
        for o in [
            obs(t0, Some((false, t0 - 100)), Some((1000.0, t0 - 100))),
            obs(t0 + 300, Some((true, t0 + 200)), Some((2000.0, t0 + 250))),
            obs(t0 + 600, Some((true, t0 + 200)), Some((1500.0, t0 + 100))),
            obs(t0 + 900, Some((false, t0 + 800)), Some((3000.0, t0 + 800))),
            obs(
                t0 + 1200,
                Some((false, t0 + 800)),
                Some((2500.0, t0 + 1100)),
            ),
            obs(
                t0 + 1500,
                Some((false, t0 + 800)),
                Some((2500.0, t0 + 1100)),
            ),
            // an old answer replayed after the trip: no second trip
            obs(t0 + 1800, Some((true, t0 + 200)), Some((2000.0, t0 + 250))),
        ] {
            r.observe(&o);
        }
        assert_eq!(r.trips, 1, "{r:?}");
        assert!(near(Some(r.trip_distance_meters), Some(2000.0)));
        assert_eq!(r.last_trip.unwrap().end, t0 + 800);
    }

    /// Guards upload times in the future: taken as the run's time, never later, and the
    /// same future upload replayed is not new again.
    #[test]
    fn future_upload_times_are_clamped() {
        let t0 = DAY;
        let future = t0 + 86_400;
        let mut r = CarRecords::default();
        for o in [
            obs(t0, Some((false, t0 - 100)), Some((1000.0, t0 - 100))),
            // asleep: nothing new
            obs(t0 + 150, Some((false, t0 - 100)), Some((1000.0, t0 - 100))),
            obs(t0 + 300, Some((true, future)), Some((1500.0, future))),
            obs(t0 + 600, Some((true, future)), Some((1500.0, future))),
            obs(t0 + 900, Some((false, t0 + 850)), Some((2500.0, t0 + 850))),
            obs(t0 + 1200, Some((false, t0 + 850)), Some((2500.0, t0 + 850))),
            obs(t0 + 1500, Some((false, t0 + 850)), Some((2500.0, t0 + 850))),
            obs(t0 + 1800, Some((false, future)), Some((2500.0, future))),
            obs(t0 + 2100, Some((false, future)), Some((2500.0, future))),
        ] {
            r.observe(&o);
            let t = r.last_trip.as_ref();
            assert!(t.is_none_or(|t| t.end <= o.now && t.start.unwrap() <= t.end));
        }
        assert_eq!(r.trips, 1, "{r:?}");
        let t = r.last_trip.unwrap();
        assert_eq!((t.start, t.end), (Some(t0 + 300), t0 + 850));
        assert!(near(t.distance_meters, Some(1500.0)));
    }

    /// Guards the state file: the records survive a round trip, and an empty or older
    /// object loads with defaults.
    #[test]
    fn records_round_trip_through_json() {
        let s = bev_day(Some(CAPACITY));
        let mut r = play(&s, &runs("00:00", "19:00", &[]));
        assert!(r.charge.is_some(), "a charge under way at 19:00");
        let text = serde_json::to_string(&r).unwrap();
        let back: CarRecords = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let old: CarRecords = serde_json::from_str(r#"{"trips": 3, "future_field": 1}"#).unwrap();
        assert_eq!((old.trips, old.charging_sessions), (3, 0));
        assert_eq!(
            serde_json::from_str::<CarRecords>("{}").unwrap(),
            CarRecords::default()
        );
        // The rest of the day goes on from the loaded records as from the kept ones.
        for t in runs("19:05", "23:55", &[]) {
            r.observe(&s.observation(t));
        }
        assert_eq!(r.charging_sessions, 1);
    }

    #[test]
    fn charging_status_parses_energy_values() {
        assert_eq!(ChargingStatus::parse("CHARGING"), Charging);
        assert_eq!(ChargingStatus::parse("DONE"), Done);
        assert_eq!(ChargingStatus::parse("V2G"), ChargingStatus::Other);
        assert!(!ChargingStatus::Other.ends_charge());
        assert!(ChargingStatus::Scheduled.ends_charge());
    }
}
