//! The scripted day (`simulate --scenario day`): the electric and the petrol sample car live
//! through 2026-12-01 (UTC) under the simulator's clock, so that a driver can run a whole day
//! of five-minute collector runs in seconds and see which changes reached the output when.
//! With more cars (`--cars N`), the cars come as households of an electric and a petrol car,
//! each household's day 11 minutes after the one before, all on one account. The busy day
//! (`--scenario busy`) has every car driving round the clock: fifty minutes of every hour.
//!
//! Each car has a table of events (unlock, a door, start, drive, stop, lock, plug in, ...).
//! Expanding a table gives the car's uploads: at a time, one endpoint's named fields get new
//! values and that time as their timestamp, as a real car uploads them. An answer at time `t`
//! is the fixture body with every upload up to `t` applied, so between uploads (a sleeping car)
//! values and timestamps stay exactly as they were, however often they are asked for. Before
//! the day, every scripted field carries the evening before's timestamp (D−1 21:00).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};

use crate::endpoints::{Endpoint, Origin};

/// 2026-12-01T00:00:00Z, the start of the scripted day.
pub const DAY_START: i64 = 1_796_083_200;
/// D−1 21:00: when the cars last uploaded before the day.
const EVENING_BEFORE: i64 = DAY_START - 3 * 3600;

pub const BEV_VIN: &str = "YV1XZK9V0R2000001";
pub const PETROL_VIN: &str = "YV1ZWA8U0P1000003";

/// Which scripted scenario the simulator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A typical day: an electric car's two commutes and evening charge, and a petrol car's
    /// midday trip, per household.
    Day,
    /// A busy day: every car drives fifty minutes of every hour, all day.
    Busy,
}

/// How far each household's day is behind the one before.
const HOUSEHOLD_STAGGER_S: i64 = 11 * 60;

/// One car of a scripted day: which sample it copies, its VIN, and how far its day is shifted.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripted {
    profile: usize,
    pub vin: String,
    shift_s: i64,
}

impl Scripted {
    /// The VIN of the sample car whose answers this car starts from.
    pub fn sample(&self) -> &'static str {
        CARS[self.profile].vin
    }
}

/// The cars of a scripted day: `cars` of them, households of an electric and a petrol car in
/// turn. The first household is the samples themselves; the others are copies with VINs of
/// their own (the sample's last six characters replaced by 100 + the household's number, so
/// that no copy takes another sample's VIN).
pub fn fleet(cars: usize) -> Vec<Scripted> {
    (0..cars.max(1))
        .map(|i| {
            let (household, profile) = (i / CARS.len(), i % CARS.len());
            let sample = CARS[profile].vin;
            let vin = if household == 0 {
                sample.to_string()
            } else {
                format!("{}{:06}", &sample[..11], 100 + household)
            };
            Scripted {
                profile,
                vin,
                shift_s: household as i64 * HOUSEHOLD_STAGGER_S,
            }
        })
        .collect()
}

/// Where a car is parked: longitude, latitude, altitude (m).
type Place = [f64; 3];

/// What happens at one moment of a car's day.
#[derive(Debug, Clone, Copy)]
enum Act {
    Unlock,
    DriverDoor(&'static str),
    Start,
    /// Drives for this many minutes, uploading trip facts every minute.
    Drive(i64),
    /// Engine off, and the trip-end uploads: parked at this place with this heading.
    Stop(Place, &'static str),
    Lock,
    /// Plugged in: charges to the target for this many minutes, uploading every minute.
    PlugIn(i64),
    TyreWarning,
    ChargeDone,
}

/// (time of day "HH:MM:SS", what happens).
type Event = (&'static str, Act);

const BEV_HOME: Place = [11.97456, 57.70887, 12.3];
const BEV_WORK: Place = [11.93820, 57.68905, 18.0];
const PETROL_HOME: Place = [11.55893, 48.13912, 519.0];
const PETROL_AWAY: Place = [11.07670, 48.37050, 480.0];

const BEV_DAY: &[Event] = &[
    ("07:30:00", Act::Unlock),
    ("07:31:00", Act::DriverDoor("OPEN")),
    ("07:31:20", Act::DriverDoor("CLOSED")),
    ("07:32:00", Act::Start),
    ("07:32:00", Act::Drive(40)),
    ("08:12:00", Act::Stop(BEV_WORK, "250")),
    ("08:13:00", Act::Lock),
    ("17:00:00", Act::Unlock),
    ("17:01:00", Act::DriverDoor("OPEN")),
    ("17:01:20", Act::DriverDoor("CLOSED")),
    ("17:02:00", Act::Start),
    ("17:02:00", Act::Drive(40)),
    ("17:42:00", Act::Stop(BEV_HOME, "70")),
    ("17:43:00", Act::Lock),
    ("18:00:00", Act::PlugIn(240)),
    ("20:00:00", Act::TyreWarning),
    ("22:00:00", Act::ChargeDone),
];

const PETROL_DAY: &[Event] = &[
    ("12:00:00", Act::Unlock),
    ("12:01:00", Act::DriverDoor("OPEN")),
    ("12:01:20", Act::DriverDoor("CLOSED")),
    ("12:02:00", Act::Start),
    ("12:02:00", Act::Drive(45)),
    ("12:47:00", Act::Stop(PETROL_AWAY, "305")),
    ("12:48:00", Act::Lock),
];

/// The busy day's driving: fifty minutes of every hour, uses a fraction of the typical day's
/// energy a minute so that a day of it stays within the battery and the tank.
const BUSY_USE: f64 = 0.15;

/// A car's busy day: each hour unlocked, driven fifty minutes, parked and locked.
fn busy_events() -> Vec<(i64, Act)> {
    (0..24)
        .flat_map(|h| {
            let hour = DAY_START + h * 3600;
            [
                (hour, Act::Unlock),
                (hour + 60, Act::Start),
                (hour + 60, Act::Drive(50)),
                (hour + 51 * 60, Act::Stop(BEV_WORK, "90")),
                (hour + 52 * 60, Act::Lock),
            ]
        })
        .collect()
}

/// A car's constants for the day.
struct Profile {
    vin: &'static str,
    electric: bool,
    km_per_min: f64,
    /// Battery percentage points (electric) or litres (petrol) used per minute of driving.
    use_per_min: f64,
    /// Battery % or fuel litres at the start of the day.
    energy: f64,
    odometer: f64,
    home: Place,
    events: &'static [Event],
}

const CARS: &[Profile] = &[
    Profile {
        vin: BEV_VIN,
        electric: true,
        km_per_min: 0.8,
        use_per_min: 0.25,
        energy: 72.0,
        odometer: 18734.0,
        home: BEV_HOME,
        events: BEV_DAY,
    },
    Profile {
        vin: PETROL_VIN,
        electric: false,
        km_per_min: 0.9,
        use_per_min: 0.06,
        energy: 42.0,
        odometer: 12609.0,
        home: PETROL_HOME,
        events: PETROL_DAY,
    },
];

/// The electric car's charge target (%) and its km per battery %.
const TARGET: f64 = 80.0;
const KM_PER_PERCENT: f64 = 3.8;
/// The petrol car's km per litre left (for distance to empty).
const KM_PER_LITRE: f64 = 12.8;

/// One upload: at `time`, the car sends these fields of one endpoint. A field without a value
/// keeps its value and only gets the new timestamp.
#[derive(Debug, Clone)]
pub struct Upload {
    pub time: i64,
    pub vin: String,
    pub endpoint: Endpoint,
    pub fields: Vec<(String, Option<Value>)>,
}

impl Upload {
    /// The path whose answer this upload changes.
    fn path(&self) -> String {
        self.endpoint.path(&self.vin, None)
    }

    /// The upload log's entry.
    pub fn log_entry(&self) -> Value {
        let fields: Vec<&str> = self.fields.iter().map(|(f, _)| f.as_str()).collect();
        // Each field's new value; null where only its timestamp is new.
        let values: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|(f, v)| (f.clone(), v.clone().unwrap_or(Value::Null)))
            .collect();
        json!({
            "time": self.time,
            "vin": self.vin,
            "api": self.endpoint.api().label(),
            "endpoint": self.endpoint.name(),
            "fields": fields,
            "values": values,
        })
    }

    /// Writes the upload into an answer body of its path.
    fn apply(&self, body: &mut Value) {
        let ts = rfc3339(self.time);
        for (name, value) in &self.fields {
            match self.endpoint.api() {
                Origin::Energy => set_energy(&mut body[name], value, &ts),
                Origin::Location => set_location(&mut body["data"], name, value),
                _ => set_connected(&mut body["data"][name], value, &ts),
            }
        }
        if self.endpoint == Endpoint::Location {
            body["data"]["properties"]["timestamp"] = json!(ts);
        }
    }
}

/// A Connected Vehicle value object: a new value drops what belonged to the old one (such as
/// `unavailableReason`), keeping only its unit.
fn set_connected(field: &mut Value, value: &Option<Value>, ts: &str) {
    if let Some(v) = value {
        let mut fresh = json!({"value": v});
        if let Some(unit) = field.get("unit") {
            fresh["unit"] = unit.clone();
        }
        *field = fresh;
    }
    field["timestamp"] = json!(ts);
}

fn set_energy(field: &mut Value, value: &Option<Value>, ts: &str) {
    field["status"] = json!("OK");
    if let Some(v) = value {
        field["value"] = v.clone();
    }
    field["updatedAt"] = json!(ts);
}

fn set_location(data: &mut Value, name: &str, value: &Option<Value>) {
    let Some(v) = value else { return };
    match name {
        "coordinates" => data["geometry"]["coordinates"] = v.clone(),
        _ => data["properties"][name] = v.clone(),
    }
}

fn rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .expect("a time of the scripted day")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// "HH:MM:SS" on the scripted day, as Unix seconds.
fn at(hms: &str) -> i64 {
    let parts: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().expect("HH:MM:SS in the event tables"))
        .collect();
    DAY_START + parts[0] * 3600 + parts[1] * 60 + parts[2]
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A car's running figures while its table is expanded.
struct Car<'a> {
    p: &'a Profile,
    vin: &'a str,
    /// Energy used per minute of driving.
    use_per_min: f64,
    /// Field names of each Connected Vehicle endpoint in the fixture, for uploads of all.
    keys: &'a HashMap<Endpoint, Vec<String>>,
    odometer: f64,
    energy: f64,
    trip: f64,
    /// When the charge reaches its target.
    charge_end: i64,
    uploads: Vec<Upload>,
}

fn val(name: &str, v: Value) -> (String, Option<Value>) {
    (name.to_string(), Some(v))
}

impl Car<'_> {
    fn push(&mut self, time: i64, endpoint: Endpoint, fields: Vec<(String, Option<Value>)>) {
        self.uploads.push(Upload {
            time,
            vin: self.vin.to_string(),
            endpoint,
            fields,
        });
    }

    /// Every field of a Connected Vehicle endpoint, values kept.
    fn touch_all(&mut self, time: i64, endpoint: Endpoint) {
        let fields = self.keys[&endpoint]
            .iter()
            .map(|k| (k.clone(), None))
            .collect();
        self.push(time, endpoint, fields);
    }

    fn range(&self) -> f64 {
        if self.p.electric {
            (self.energy * KM_PER_PERCENT).round()
        } else {
            (self.energy * KM_PER_LITRE).round()
        }
    }

    /// The doors endpoint: every lock field set to `lock`, and every door closed.
    fn doors(&mut self, time: i64, lock: &str) {
        let fields = self.keys[&Endpoint::Doors]
            .iter()
            .map(|k| {
                let v = if k.ends_with("Lock") { lock } else { "CLOSED" };
                val(k, json!(v))
            })
            .collect();
        self.push(time, Endpoint::Doors, fields);
    }

    fn engine(&mut self, time: i64, status: &str) {
        self.push(
            time,
            Endpoint::EngineStatus,
            vec![val("engineStatus", json!(status))],
        );
    }

    fn command_accessibility(&mut self, time: i64) {
        let f = vec![val("availabilityStatus", json!("AVAILABLE"))];
        self.push(time, Endpoint::CommandAccessibility, f);
    }

    fn location(&mut self, time: i64, place: Place, heading: &str) {
        let f = vec![
            val("coordinates", json!(place)),
            val("heading", json!(heading)),
        ];
        self.push(time, Endpoint::Location, f);
    }

    /// The battery or tank, in `/fuel` and (electric) the energy state.
    fn energy_level(&mut self, time: i64, charging: bool) {
        let level = round1(self.energy);
        if self.p.electric {
            self.push(
                time,
                Endpoint::Fuel,
                vec![val("batteryChargeLevel", json!(level))],
            );
            let mut f = vec![
                val("batteryChargeLevel", json!(level)),
                val("electricRange", json!(self.range())),
            ];
            if charging {
                let left = ((self.charge_end - time) / 60).max(0);
                f.push(val(
                    "estimatedChargingTimeToTargetBatteryChargeLevel",
                    json!(left),
                ));
            }
            self.push(time, Endpoint::EnergyState, f);
        } else {
            self.push(time, Endpoint::Fuel, vec![val("fuelAmount", json!(level))]);
        }
    }

    fn odometer(&mut self, time: i64) {
        let f = vec![val("odometer", json!(round1(self.odometer)))];
        self.push(time, Endpoint::Odometer, f);
    }

    fn statistics(&mut self, time: i64) {
        let speed = (self.p.km_per_min * 60.0).round();
        let (consumption, empty) = if self.p.electric {
            (
                ("averageEnergyConsumptionAutomatic", 19.5),
                "distanceToEmptyBattery",
            )
        } else {
            (
                ("averageFuelConsumptionAutomatic", 7.8),
                "distanceToEmptyTank",
            )
        };
        let f = vec![
            val("tripMeterAutomatic", json!(round1(self.trip))),
            val("averageSpeedAutomatic", json!(speed)),
            val(consumption.0, json!(consumption.1)),
            val(empty, json!(self.range())),
        ];
        self.push(time, Endpoint::Statistics, f);
    }

    /// The electric car's charging fields, all at once.
    fn charging(
        &mut self,
        time: i64,
        connection: &str,
        status: &str,
        kind: &str,
        power_status: &str,
        power: i64,
    ) {
        let f = vec![
            val("chargerConnectionStatus", json!(connection)),
            val("chargingStatus", json!(status)),
            val("chargingType", json!(kind)),
            val("chargerPowerStatus", json!(power_status)),
            val("chargingPower", json!(power)),
            val("chargingCurrentLimit", json!(16)),
            val("targetBatteryChargeLevel", json!(TARGET)),
        ];
        self.push(time, Endpoint::EnergyState, f);
    }

    /// What the car last uploaded the evening before: every scripted field, asleep at home.
    fn evening_before(&mut self) {
        let t = EVENING_BEFORE;
        self.doors(t, "LOCKED");
        self.touch_all(t, Endpoint::Windows);
        self.engine(t, "STOPPED");
        self.command_accessibility(t);
        self.odometer(t);
        self.energy_level(t, false);
        self.statistics(t);
        let tyres = self.keys[&Endpoint::Tyres]
            .iter()
            .map(|k| val(k, json!("NO_WARNING")))
            .collect();
        self.push(t, Endpoint::Tyres, tyres);
        self.touch_all(t, Endpoint::Warnings);
        self.location(t, self.p.home, "214");
        if self.p.electric {
            self.charging(t, "DISCONNECTED", "IDLE", "NONE", "NO_POWER_AVAILABLE", 0);
            let f = vec![val(
                "estimatedChargingTimeToTargetBatteryChargeLevel",
                json!(0),
            )];
            self.push(t, Endpoint::EnergyState, f);
        }
    }

    fn play(&mut self, time: i64, act: Act) {
        match act {
            Act::Unlock => {
                self.doors(time, "UNLOCKED");
                self.touch_all(time, Endpoint::Windows);
                self.command_accessibility(time);
            }
            Act::DriverDoor(state) => {
                let f = vec![val("frontLeftDoor", json!(state))];
                self.push(time, Endpoint::Doors, f);
            }
            Act::Start => {
                self.trip = 0.0;
                self.engine(time, "RUNNING");
            }
            Act::Drive(minutes) => self.drive(time, minutes),
            Act::Stop(place, heading) => {
                self.engine(time, "STOPPED");
                self.location(time, place, heading);
                self.statistics(time);
                self.touch_all(time, Endpoint::Tyres);
                self.touch_all(time, Endpoint::Warnings);
            }
            Act::Lock => self.doors(time, "LOCKED"),
            Act::PlugIn(minutes) => self.charge(time, minutes),
            Act::TyreWarning => {
                let f = vec![val("frontLeft", json!("LOW_PRESSURE"))];
                self.push(time, Endpoint::Tyres, f);
            }
            Act::ChargeDone => {
                self.energy = TARGET;
                self.energy_level(time, true);
                self.charging(
                    time,
                    "CONNECTED",
                    "DONE",
                    "AC",
                    "POWER_AVAILABLE_BUT_NOT_ACTIVATED",
                    0,
                );
            }
        }
    }

    /// A minute-by-minute trip: odometer, battery or tank, statistics.
    fn drive(&mut self, start: i64, minutes: i64) {
        for k in 1..=minutes {
            let t = start + 60 * k;
            self.odometer += self.p.km_per_min;
            self.trip += self.p.km_per_min;
            self.energy -= self.use_per_min;
            self.odometer(t);
            self.energy_level(t, false);
            self.statistics(t);
        }
    }

    /// Plug-in, then the battery rising linearly to the target; the last minute is the
    /// charge-done event's.
    fn charge(&mut self, start: i64, minutes: i64) {
        self.charge_end = start + 60 * minutes;
        let rate = (TARGET - self.energy) / minutes as f64;
        self.charging(
            start,
            "CONNECTED",
            "CHARGING",
            "AC",
            "PROVIDING_POWER",
            11_000,
        );
        self.energy_level(start, true);
        for k in 1..minutes {
            self.energy += rate;
            self.energy_level(start + 60 * k, true);
        }
    }
}

/// The day: each scripted path's body as of the evening before, and the day's uploads.
pub struct Day {
    base: HashMap<String, Value>,
    uploads: Vec<Upload>,
    /// Indices into `uploads` per path, in time order.
    by_path: HashMap<String, Vec<usize>>,
}

impl Day {
    /// The day of `cars` over their fixture answers (`responses`, path → body).
    pub fn new(
        scenario: Scenario,
        cars: &[Scripted],
        responses: &HashMap<String, (u16, Value)>,
    ) -> Day {
        let mut base = HashMap::new();
        let mut uploads = Vec::new();
        for c in cars {
            uploads.extend(Day::car(scenario, c, responses, &mut base));
        }
        // Stable: uploads at one instant keep their table order.
        uploads.sort_by_key(|u| u.time);
        let mut by_path: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, u) in uploads.iter().enumerate() {
            by_path.entry(u.path()).or_default().push(i);
        }
        Day {
            base,
            uploads,
            by_path,
        }
    }

    /// One car's day: the evening before written into `base`, the day's uploads returned.
    fn car(
        scenario: Scenario,
        c: &Scripted,
        responses: &HashMap<String, (u16, Value)>,
        base: &mut HashMap<String, Value>,
    ) -> Vec<Upload> {
        let p = &CARS[c.profile];
        let keys = endpoint_keys(&c.vin, responses);
        let busy = scenario == Scenario::Busy;
        let mut car = Car {
            p,
            vin: &c.vin,
            use_per_min: p.use_per_min * if busy { BUSY_USE } else { 1.0 },
            keys: &keys,
            odometer: p.odometer,
            energy: p.energy,
            trip: 0.0,
            charge_end: 0,
            uploads: Vec::new(),
        };
        car.evening_before();
        for u in std::mem::take(&mut car.uploads) {
            let path = u.path();
            let body = base
                .entry(path.clone())
                .or_insert_with(|| responses[&path].1.clone());
            u.apply(body);
        }
        let events: Vec<(i64, Act)> = match scenario {
            Scenario::Day => p.events.iter().map(|(hms, a)| (at(hms), *a)).collect(),
            Scenario::Busy => busy_events(),
        };
        for (t, act) in events {
            car.play(t + c.shift_s, act);
        }
        car.uploads
    }

    /// The answer body of a scripted path at `now` (Unix seconds), or None for a path the
    /// scenario leaves as in the fixtures.
    pub fn body(&self, path: &str, now: f64) -> Option<Value> {
        let mut body = self.base.get(path)?.clone();
        for &i in self.by_path.get(path).into_iter().flatten() {
            let u = &self.uploads[i];
            if u.time as f64 > now {
                break;
            }
            u.apply(&mut body);
        }
        Some(body)
    }

    /// The upload log (`GET /_sim/scenario`), with each car's readings before the day.
    pub fn log(&self) -> Value {
        let uploads: Vec<Value> = self.uploads.iter().map(Upload::log_entry).collect();
        json!({"day_start": DAY_START, "uploads": uploads, "cars": before_the_day()})
    }
}

/// Each car's readings of the evening before (odometer in km; battery in % or fuel in litres)
/// and its battery's capacity from its details (kWh; null for a car without one): with the
/// upload log, the truth that trip and charge records are checked against.
fn before_the_day() -> Vec<Value> {
    let samples = super::cars::samples();
    CARS.iter()
        .map(|p| {
            let details = Endpoint::Details.path(p.vin, None);
            let capacity = samples
                .iter()
                .find(|c| c.vin == p.vin)
                .and_then(|c| c.responses.get(&details))
                .map_or(Value::Null, |a| {
                    a.body["data"]["batteryCapacityKWH"].clone()
                });
            json!({
                "vin": p.vin,
                "electric": p.electric,
                "odometer_km": p.odometer,
                "energy": p.energy,
                "battery_capacity_kwh": capacity,
            })
        })
        .collect()
}

/// The field names of each Connected Vehicle endpoint a car's uploads touch wholesale.
fn endpoint_keys(
    vin: &str,
    responses: &HashMap<String, (u16, Value)>,
) -> HashMap<Endpoint, Vec<String>> {
    [
        Endpoint::Doors,
        Endpoint::Windows,
        Endpoint::Tyres,
        Endpoint::Warnings,
    ]
    .into_iter()
    .map(|e| {
        let path = e.path(vin, None);
        let keys = responses[&path].1["data"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        (e, keys)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Day {
        let opts = crate::simulator::Options {
            scenario: Some(Scenario::Day),
            ..Default::default()
        };
        let cars = fleet(2);
        let (vins, responses) = crate::simulator::cars::build(&opts, Some(&copies(&cars)));
        assert_eq!(vins, [BEV_VIN, PETROL_VIN]);
        Day::new(Scenario::Day, &cars, &responses)
    }

    fn copies(cars: &[Scripted]) -> Vec<(&'static str, String)> {
        cars.iter().map(|c| (c.sample(), c.vin.clone())).collect()
    }

    fn cv(vin: &str, endpoint: &str) -> String {
        format!("/connected-vehicle/v2/vehicles/{vin}/{endpoint}")
    }

    fn energy(vin: &str) -> String {
        format!("/energy/v2/vehicles/{vin}/state")
    }

    fn t(hms: &str) -> f64 {
        at(hms) as f64
    }

    /// Guards the households: copies of the two samples with VINs of their own, each
    /// household's day 11 minutes behind the one before; the busy day drives every hour.
    #[test]
    fn households_are_staggered_copies_and_the_busy_day_drives_all_day() {
        let cars = fleet(5);
        let vins: Vec<&str> = cars.iter().map(|c| c.vin.as_str()).collect();
        assert_eq!(
            vins,
            [
                BEV_VIN,
                PETROL_VIN,
                "YV1XZK9V0R2000101",
                "YV1ZWA8U0P1000101",
                "YV1XZK9V0R2000102"
            ]
        );
        assert_eq!(cars[4].sample(), BEV_VIN);
        let opts = crate::simulator::Options::default();
        let (_, responses) = crate::simulator::cars::build(&opts, Some(&copies(&cars)));
        let day = Day::new(Scenario::Day, &cars, &responses);
        let starts = |vin: &str| -> Vec<i64> {
            day.uploads
                .iter()
                .filter(|u| u.vin == vin && u.endpoint == Endpoint::EngineStatus)
                .map(|u| u.time)
                .collect()
        };
        assert_eq!(starts(&cars[4].vin)[0], starts(BEV_VIN)[0] + 2 * 11 * 60);
        let busy = Day::new(Scenario::Busy, &cars[..1], &responses);
        let engine: Vec<&Upload> = busy
            .uploads
            .iter()
            .filter(|u| u.endpoint == Endpoint::EngineStatus)
            .collect();
        assert_eq!(engine.len(), 48, "a start and a stop every hour");
    }

    #[test]
    fn before_the_day_every_scripted_field_is_from_the_evening_before() {
        let d = day();
        let doors = d.body(&cv(BEV_VIN, "doors"), t("00:00:00")).unwrap();
        assert_eq!(doors["data"]["centralLock"]["value"], "LOCKED");
        assert_eq!(
            doors["data"]["centralLock"]["timestamp"],
            "2026-11-30T21:00:00.000Z"
        );
        let state = d.body(&energy(BEV_VIN), t("00:00:00")).unwrap();
        assert_eq!(state["batteryChargeLevel"]["value"], 72.0);
        assert_eq!(state["chargerConnectionStatus"]["value"], "DISCONNECTED");
        assert_eq!(
            state["chargingPower"]["updatedAt"],
            "2026-11-30T21:00:00.000Z"
        );
        let access = d
            .body(&cv(PETROL_VIN, "command-accessibility"), t("00:00:00"))
            .unwrap();
        assert_eq!(access["data"]["availabilityStatus"]["value"], "AVAILABLE");
        assert!(access["data"]["availabilityStatus"]
            .get("unavailableReason")
            .is_none());
    }

    #[test]
    fn an_event_changes_the_value_and_its_timestamp_at_its_time() {
        let d = day();
        let engine = |hms| {
            d.body(&cv(BEV_VIN, "engine-status"), t(hms)).unwrap()["data"]["engineStatus"].clone()
        };
        assert_eq!(engine("07:31:59")["value"], "STOPPED");
        assert_eq!(engine("07:32:00")["value"], "RUNNING");
        assert_eq!(engine("07:32:00")["timestamp"], "2026-12-01T07:32:00.000Z");
        assert_eq!(engine("08:12:00")["value"], "STOPPED");
        let odometer = |hms| {
            d.body(&cv(PETROL_VIN, "odometer"), t(hms)).unwrap()["data"]["odometer"]["value"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(odometer("12:02:59"), 12609.0);
        assert_eq!(odometer("12:03:00"), 12609.9);
        assert_eq!(odometer("23:59:59"), 12649.5);
    }

    #[test]
    fn a_sleeping_car_uploads_nothing() {
        let d = day();
        for path in [
            cv(BEV_VIN, "odometer"),
            energy(BEV_VIN),
            cv(BEV_VIN, "doors"),
        ] {
            let after_lock = d.body(&path, t("08:13:00")).unwrap();
            assert_eq!(d.body(&path, t("12:00:00")).unwrap(), after_lock, "{path}");
            assert_eq!(d.body(&path, t("16:59:59")).unwrap(), after_lock, "{path}");
        }
        let night = d.body(&cv(PETROL_VIN, "fuel"), t("13:00:00")).unwrap();
        assert_eq!(
            d.body(&cv(PETROL_VIN, "fuel"), t("23:59:59")).unwrap(),
            night
        );
    }

    #[test]
    fn the_evening_charge_reaches_its_target_at_ten() {
        let d = day();
        let state = |hms| d.body(&energy(BEV_VIN), t(hms)).unwrap();
        let s = state("18:00:00");
        assert_eq!(s["chargingStatus"]["value"], "CHARGING");
        assert_eq!(s["chargingPower"]["value"], 11_000);
        assert_eq!(s["batteryChargeLevel"]["value"], 52.0);
        assert_eq!(
            s["estimatedChargingTimeToTargetBatteryChargeLevel"]["value"],
            240
        );
        let s = state("20:00:30");
        assert_eq!(s["batteryChargeLevel"]["value"], 66.0);
        assert_eq!(
            s["estimatedChargingTimeToTargetBatteryChargeLevel"]["value"],
            120
        );
        let s = state("22:00:00");
        assert_eq!(s["chargingStatus"]["value"], "DONE");
        assert_eq!(s["chargerConnectionStatus"]["value"], "CONNECTED");
        assert_eq!(s["batteryChargeLevel"]["value"], 80.0);
        let tyres = d.body(&cv(BEV_VIN, "tyres"), t("20:00:00")).unwrap();
        assert_eq!(tyres["data"]["frontLeft"]["value"], "LOW_PRESSURE");
    }

    #[test]
    fn the_log_lists_every_upload_in_time_order() {
        let log = day().log();
        let uploads = log["uploads"].as_array().unwrap();
        assert_eq!(log["day_start"], DAY_START);
        assert!(uploads
            .windows(2)
            .all(|w| w[0]["time"].as_i64() <= w[1]["time"].as_i64()));
        let location_times: Vec<i64> = uploads
            .iter()
            .filter(|u| u["endpoint"] == "location")
            .map(|u| u["time"].as_i64().unwrap())
            .collect();
        assert_eq!(
            location_times,
            [at("08:12:00"), at("12:47:00"), at("17:42:00")]
        );
    }

    /// Guards the truth a driver checks records against: each upload's new values, and each
    /// car's readings before the day with its battery's capacity.
    #[test]
    fn the_log_holds_values_and_the_readings_before_the_day() {
        let log = day().log();
        let stop = log["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| {
                u["vin"] == BEV_VIN && u["endpoint"] == "odometer" && u["time"] == at("08:12:00")
            })
            .unwrap();
        assert_eq!(stop["values"]["odometer"], 18766.0);
        let touched = log["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["vin"] == BEV_VIN && u["endpoint"] == "windows")
            .unwrap();
        assert!(touched["values"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_null));
        let cars = log["cars"].as_array().unwrap();
        assert_eq!(cars[0]["vin"], BEV_VIN);
        assert_eq!(cars[0]["odometer_km"], 18734.0);
        assert_eq!(cars[0]["battery_capacity_kwh"], 78.0);
        assert_eq!(cars[1]["vin"], PETROL_VIN);
        assert_eq!(cars[1]["energy"], 42.0);
        assert_eq!(cars[1]["battery_capacity_kwh"], Value::Null);
    }
}
