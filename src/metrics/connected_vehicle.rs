//! Connected Vehicle v2 → metric families. Pure: a [`Snapshot`] in, samples out.

use serde_json::Value;

use super::catalog::{self as c, Family, Origin};
use super::{snake, source_time, Exposition, MapApi, MapContext, Mapped, Reading, VehicleOut};
use crate::api::answers::CarAnswers;
use crate::api::connected_vehicle::{
    CommandAccessibility, Commands, ConnectedVehicle, Details, Diagnostics, Doors, EngineStatus,
    Snapshot, Statistics, Tyres, ValueObject, Warnings, Windows,
};
use crate::values::{self, Accessor, Entry, Field, Quantity};

const OPEN_CLOSED: &[&str] = &["UNSPECIFIED", "OPEN", "CLOSED", "AJAR"];
const LOCK: &[&str] = &["LOCKED", "UNLOCKED", "UNSPECIFIED"];
const TYRE: &[&str] = &[
    "UNSPECIFIED",
    "NO_WARNING",
    "VERY_LOW_PRESSURE",
    "LOW_PRESSURE",
    "HIGH_PRESSURE",
];
const LAMP: &[&str] = &["NO_WARNING", "FAILURE", "UNSPECIFIED"];
const FLUID: &[&str] = &["NO_WARNING", "TOO_LOW"];
const OIL: &[&str] = &["NO_WARNING", "SERVICE_REQUIRED", "TOO_LOW", "TOO_HIGH"];
const SERVICE: &[&str] = &[
    "NO_WARNING",
    "UNKNOWN_WARNING",
    "REGULAR_MAINTENANCE_ALMOST_TIME_FOR_SERVICE",
    "REGULAR_MAINTENANCE_TIME_FOR_SERVICE",
    "REGULAR_MAINTENANCE_OVERDUE_FOR_SERVICE",
    "ENGINE_HOURS_ALMOST_TIME_FOR_SERVICE",
    "ENGINE_HOURS_TIME_FOR_SERVICE",
    "ENGINE_HOURS_OVERDUE_FOR_SERVICE",
    "DISTANCE_DRIVEN_ALMOST_TIME_FOR_SERVICE",
    "DISTANCE_DRIVEN_TIME_FOR_SERVICE",
    "DISTANCE_DRIVEN_OVERDUE_FOR_SERVICE",
];
const AVAILABILITY: &[&str] = &["AVAILABLE", "UNAVAILABLE", "UNSPECIFIED"];
const UNAVAILABLE_REASON: &[&str] = &[
    "CAR_IN_USE",
    "NO_INTERNET",
    "POWER_SAVING_MODE",
    "OTA_INSTALLATION_IN_PROGRESS",
];

/// A member with its part label (door, window, tyre).
type Part<A> = (Accessor<A, ValueObject>, &'static str);

const DOORS: &[Part<Doors>] = &[
    (Doors::front_left_door, "front_left"),
    (Doors::front_right_door, "front_right"),
    (Doors::rear_left_door, "rear_left"),
    (Doors::rear_right_door, "rear_right"),
    (Doors::hood, "hood"),
    (Doors::tailgate, "tailgate"),
    (Doors::tank_lid, "tank_lid"),
];
const WINDOWS: &[Part<Windows>] = &[
    (Windows::front_left_window, "front_left"),
    (Windows::front_right_window, "front_right"),
    (Windows::rear_left_window, "rear_left"),
    (Windows::rear_right_window, "rear_right"),
    (Windows::sunroof, "sunroof"),
];
const TYRES: &[Part<Tyres>] = &[
    (Tyres::front_left, "front_left"),
    (Tyres::front_right, "front_right"),
    (Tyres::rear_left, "rear_left"),
    (Tyres::rear_right, "rear_right"),
];
/// The 23 exterior lamp warnings of the warnings endpoint.
const LAMPS: &[Accessor<Warnings, ValueObject>] = &[
    Warnings::brake_light_center_warning,
    Warnings::brake_light_left_warning,
    Warnings::brake_light_right_warning,
    Warnings::fog_light_front_warning,
    Warnings::fog_light_rear_warning,
    Warnings::position_light_front_left_warning,
    Warnings::position_light_front_right_warning,
    Warnings::position_light_rear_left_warning,
    Warnings::position_light_rear_right_warning,
    Warnings::high_beam_left_warning,
    Warnings::high_beam_right_warning,
    Warnings::low_beam_left_warning,
    Warnings::low_beam_right_warning,
    Warnings::daytime_running_light_left_warning,
    Warnings::daytime_running_light_right_warning,
    Warnings::turn_indication_front_left_warning,
    Warnings::turn_indication_front_right_warning,
    Warnings::turn_indication_rear_left_warning,
    Warnings::turn_indication_rear_right_warning,
    Warnings::registration_plate_light_warning,
    Warnings::side_mark_lights_warning,
    Warnings::hazard_lights_warning,
    Warnings::reverse_lights_warning,
];

/// Statistics fields: (accessor, family, trip or source label, quantity).
const STATISTICS: &[(Accessor<Statistics, ValueObject>, &Family, &str, Quantity)] = &[
    (
        Statistics::trip_meter_manual,
        &c::TRIP_METER_METERS,
        "manual",
        Quantity::Length,
    ),
    (
        Statistics::trip_meter_automatic,
        &c::TRIP_METER_METERS,
        "automatic",
        Quantity::Length,
    ),
    (
        Statistics::trip_meter_1,
        &c::TRIP_METER_METERS,
        "trip1",
        Quantity::Length,
    ),
    (
        Statistics::trip_meter_2,
        &c::TRIP_METER_METERS,
        "trip2",
        Quantity::Length,
    ),
    (
        Statistics::average_speed,
        &c::AVERAGE_SPEED_METERS_PER_SECOND,
        "manual",
        Quantity::Speed,
    ),
    (
        Statistics::average_speed_automatic,
        &c::AVERAGE_SPEED_METERS_PER_SECOND,
        "automatic",
        Quantity::Speed,
    ),
    (
        Statistics::average_fuel_consumption,
        &c::AVERAGE_FUEL_CONSUMPTION_LITERS_PER_METER,
        "manual",
        Quantity::FuelConsumption,
    ),
    (
        Statistics::average_fuel_consumption_automatic,
        &c::AVERAGE_FUEL_CONSUMPTION_LITERS_PER_METER,
        "automatic",
        Quantity::FuelConsumption,
    ),
    (
        Statistics::average_energy_consumption,
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "manual",
        Quantity::EnergyConsumption,
    ),
    (
        Statistics::average_energy_consumption_automatic,
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "automatic",
        Quantity::EnergyConsumption,
    ),
    (
        Statistics::average_energy_consumption_since_charge,
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "since_charge",
        Quantity::EnergyConsumption,
    ),
    (
        Statistics::distance_to_empty_tank,
        &c::DISTANCE_TO_EMPTY_METERS,
        "tank",
        Quantity::Length,
    ),
    (
        Statistics::distance_to_empty_battery,
        &c::DISTANCE_TO_EMPTY_METERS,
        "battery",
        Quantity::Length,
    ),
    (
        Statistics::distance_to_empty,
        &c::DISTANCE_TO_EMPTY_METERS,
        "total",
        Quantity::Length,
    ),
];

fn reading(v: &ValueObject) -> Reading<'_> {
    Reading {
        value: &v.value,
        unit: v.unit.as_deref(),
        time: source_time(v.timestamp.as_deref()),
    }
}

/// Label text of a details field: strings as they are, numbers printed, anything else empty.
fn text(v: &Option<Value>) -> String {
    match v {
        // Some cars send the text "null" for a missing description.
        Some(Value::String(s)) if s == "null" => String::new(),
        Some(Value::String(s)) => super::sanitize_state(s),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl MapApi for ConnectedVehicle {
    fn map(&self, exp: &mut Exposition, car: &CarAnswers, cx: &MapContext) -> Mapped {
        let s = Snapshot::of(car);
        map(exp, &car.vin, cx.account, &s);
        Mapped {
            errors: super::owned(s.errors()),
            api_gone: false,
        }
    }
}

/// Adds the samples of one car's Connected Vehicle snapshot, endpoint by endpoint.
pub fn map(exp: &mut Exposition, vin: &str, account: &str, s: &Snapshot) {
    let mut out = VehicleOut::new(exp, vin, Origin::ConnectedVehicle);
    let out = &mut out;
    if let Ok(d) = s.details.as_ref() {
        details(out, account, d);
    }
    if let Ok(doors) = s.doors.as_ref() {
        parts(out, *doors, DOORS, &c::DOOR_STATE, OPEN_CLOSED);
        state(out, doors.central_lock(), &c::CENTRAL_LOCK_STATE, LOCK);
    }
    if let Ok(windows) = s.windows.as_ref() {
        parts(out, *windows, WINDOWS, &c::WINDOW_STATE, OPEN_CLOSED);
    }
    if let Ok(es) = s.engine_status.as_ref() {
        engine_status(out, es);
    }
    if let Ok(tyres) = s.tyres.as_ref() {
        parts(out, *tyres, TYRES, &c::TYRE_PRESSURE_WARNING_STATE, TYRE);
    }
    if let Ok(w) = s.warnings.as_ref() {
        lamps(out, w);
    }
    if let Ok(b) = s.brakes.as_ref() {
        fluid(out, b.brake_fluid_level_warning(), "brake_fluid", FLUID);
    }
    if let Ok(e) = s.engine.as_ref() {
        fluid(out, e.oil_level_warning(), "oil", OIL);
        fluid(
            out,
            e.engine_coolant_level_warning(),
            "engine_coolant",
            FLUID,
        );
    }
    if let Ok(d) = s.diagnostics.as_ref() {
        diagnostics(out, d);
    }
    if let Ok(f) = s.fuel.as_ref() {
        quantity(
            out,
            f.fuel_amount(),
            &c::FUEL_AMOUNT_LITERS,
            Quantity::Volume,
        );
        let level = f.battery_charge_level();
        quantity(out, level, &c::BATTERY_CHARGE_LEVEL_RATIO, Quantity::Ratio);
    }
    if let Ok(o) = s.odometer.as_ref() {
        quantity(out, o.odometer(), &c::ODOMETER_METERS, Quantity::Length);
    }
    if let Ok(st) = s.statistics.as_ref() {
        statistics(out, st);
    }
    if let Ok(ca) = s.command_accessibility.as_ref() {
        command_accessibility(out, ca);
    }
    if let Ok(cmds) = s.commands.as_ref() {
        commands(out, cmds);
    }
}

/// `details`: the constant facts in `volvo_vehicle_info`, and the battery's capacity.
fn details(out: &mut VehicleOut, account: &str, d: &Details) {
    let desc = out.field("descriptions", d.descriptions.as_ref());
    let (model, upholstery, steering) = match desc {
        Some(desc) => (
            text(&desc.model),
            text(&desc.upholstery),
            text(&desc.steering),
        ),
        None => Default::default(),
    };
    let labels = [
        out.vin.to_string(),
        account.to_string(),
        model,
        text(&d.model_year),
        text(&d.fuel_type),
        text(&d.gearbox),
        text(&d.external_colour),
        upholstery,
        steering,
    ];
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    out.exp.gauge(&c::VEHICLE_INFO, &refs, 1.0);
    let key = "batteryCapacityKWH";
    if let Some(cap) = &d.battery_capacity_kwh {
        match values::number(cap).and_then(|n| values::convert(n, "kWh", Quantity::Energy)) {
            Ok(j) => out.number(&c::BATTERY_CAPACITY_JOULES, &[], key, j, None),
            Err(r) => out.skip(key, r),
        }
    }
}

/// `engine_status`: 1 while the engine runs, 0 when it is stopped.
fn engine_status(out: &mut VehicleOut, es: &EngineStatus) {
    let e = es.engine_status();
    let Some(v) = out.field(e.key, e.field) else {
        return;
    };
    let running = match v.value.as_str() {
        Some("RUNNING") => 1.0,
        Some("STOPPED") => 0.0,
        _ => return out.skip(e.key, values::SkipReason::Malformed),
    };
    let time = source_time(v.timestamp.as_deref());
    out.number(&c::ENGINE_RUNNING, &[], e.key, running, time);
}

/// `warnings`: one state set per exterior lamp.
fn lamps(out: &mut VehicleOut, w: &Warnings) {
    for lamp in LAMPS {
        let e = lamp(w);
        if let Some(v) = out.field(e.key, e.field) {
            let label = snake(e.key.trim_end_matches("Warning"));
            out.state_from(&c::LAMP_WARNING_STATE, &[&label], e.key, &reading(v), LAMP);
        }
    }
}

/// `diagnostics`: washer fluid, and what the service says.
fn diagnostics(out: &mut VehicleOut, d: &Diagnostics) {
    fluid(out, d.washer_fluid_level_warning(), "washer_fluid", FLUID);
    state(out, d.service_warning(), &c::SERVICE_WARNING_STATE, SERVICE);
    state(out, d.service_trigger(), &c::SERVICE_TRIGGER_STATE, &[]);
    let length = Quantity::Length;
    quantity(
        out,
        d.distance_to_service(),
        &c::DISTANCE_TO_SERVICE_METERS,
        length,
    );
    let duration = Quantity::Duration;
    quantity(
        out,
        d.time_to_service(),
        &c::TIME_TO_SERVICE_SECONDS,
        duration,
    );
    let hours = d.engine_hours_to_service();
    let fam = &c::ENGINE_RUNNING_TIME_TO_SERVICE_SECONDS;
    quantity(out, hours, fam, duration);
}

/// `statistics`: each field into its family, with its trip or source label.
/// The spec's older statistics names (by label) and the newer ones that carry the same
/// quantity: a car that sends both sends the same values twice, and they are exported once.
const OLDER_NAMES: &[(&str, &[&str])] = &[
    ("trip1", &["manual"]),
    ("trip2", &["automatic"]),
    ("total", &["tank", "battery"]),
];

fn statistics(out: &mut VehicleOut, st: &Statistics) {
    // Whether the car sent the field of `family` with `label`, with a value: a newer field
    // that is null or malformed leaves the older one its say.
    let sent = |family: &Family, label: &str| {
        STATISTICS.iter().any(|(get, f, l, _)| {
            let usable = matches!(get(st).field, Some(Field::Ok(v)) if !v.value.is_null());
            f.name == family.name && *l == label && usable
        })
    };
    let superseded = |family: &Family, label: &str| {
        OLDER_NAMES
            .iter()
            .any(|(older, newer)| *older == label && newer.iter().any(|n| sent(family, n)))
    };
    for (get, fam, label, q) in STATISTICS {
        let e = get(st);
        if superseded(fam, label) {
            continue;
        }
        if let Some(v) = out.field(e.key, e.field) {
            out.quantity(fam, &[label], e.key, &reading(v), *q);
        }
    }
}

/// `command_accessibility`: whether the car takes commands now, and why not.
fn command_accessibility(out: &mut VehicleOut, ca: &CommandAccessibility) {
    let Some(a) = out.field("availabilityStatus", Some(&ca.availability_status)) else {
        return;
    };
    let time = source_time(a.timestamp.as_deref());
    let r = Reading {
        value: &a.value,
        unit: None,
        time,
    };
    let fam = &c::COMMAND_AVAILABILITY_STATE;
    out.state_from(fam, &[], "availabilityStatus", &r, AVAILABILITY);
    if let Some(reason) = &a.unavailable_reason {
        let r = Reading {
            value: reason,
            unit: None,
            time: None,
        };
        let fam = &c::COMMAND_UNAVAILABLE_REASON_STATE;
        out.state_from(fam, &[], "unavailableReason", &r, UNAVAILABLE_REASON);
    }
}

/// `commands`: one series per command the car supports.
fn commands(out: &mut VehicleOut, cmds: &Commands) {
    for (i, cmd) in cmds.0.iter().enumerate() {
        match cmd {
            Field::Ok(cmd) => {
                let name = super::sanitize_state(&cmd.command);
                out.number(&c::COMMAND_SUPPORTED, &[&name], "commands", 1.0, None);
            }
            Field::Invalid(_) => out.skip(&format!("commands[{i}]"), values::SkipReason::Malformed),
        }
    }
}

/// A family with one part label per API field (doors, windows, tyres).
fn parts<T>(out: &mut VehicleOut, answer: &T, fields: &[Part<T>], fam: &Family, known: &[&str]) {
    for (get, label) in fields {
        let e = get(answer);
        if let Some(v) = out.field(e.key, e.field) {
            out.state_from(fam, &[label], e.key, &reading(v), known);
        }
    }
}

/// A state set without labels of its own.
fn state(out: &mut VehicleOut, e: Entry<ValueObject>, fam: &Family, known: &[&str]) {
    if let Some(v) = out.field(e.key, e.field) {
        out.state_from(fam, &[], e.key, &reading(v), known);
    }
}

fn fluid(out: &mut VehicleOut, e: Entry<ValueObject>, label: &str, known: &[&str]) {
    if let Some(v) = out.field(e.key, e.field) {
        out.state_from(
            &c::FLUID_LEVEL_WARNING_STATE,
            &[label],
            e.key,
            &reading(v),
            known,
        );
    }
}

fn quantity(out: &mut VehicleOut, e: Entry<ValueObject>, fam: &Family, q: Quantity) {
    if let Some(v) = out.field(e.key, e.field) {
        out.quantity(fam, &[], e.key, &reading(v), q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answers::Ask;
    use crate::endpoints::Endpoint;

    const VIN: &str = "YV1XZK9V0R2000001";

    /// The exposition of a car that answered only `doors`, `fuel`, `odometer` and `statistics`
    /// (every other endpoint unsupported), through the decoder and the mapper.
    fn exposition(doors: &str, fuel: &str, odometer: &str, statistics: &str) -> String {
        let mut car = CarAnswers::new(VIN, crate::api::answers::Absent::Deferred);
        for e in Endpoint::of_api(Origin::ConnectedVehicle) {
            car.mark_unsupported(e);
        }
        for (e, body) in [
            (Endpoint::Doors, doors),
            (Endpoint::Fuel, fuel),
            (Endpoint::Odometer, odometer),
            (Endpoint::Statistics, statistics),
        ] {
            car.record(Ask::of(e), 0, Ok(body.as_bytes().to_vec()));
        }
        let mut exp = Exposition::new();
        map(&mut exp, VIN, "default", &Snapshot::of(&car));
        exp.finish_skips();
        String::from_utf8(exp.encode()).unwrap()
    }

    /// Guards the spec's older statistics names against exporting one quantity twice: sent
    /// beside the newer names (as some cars do, with the same values), they are left out; sent
    /// alone (or beside a newer one that is null), they are exported under their own label.
    #[test]
    fn older_statistics_names_are_exported_only_alone() {
        let both = r#"{"data":{
            "tripMeterManual":{"value":9812.4,"unit":"km"},"tripMeter1":{"value":9812.4,"unit":"km"},
            "tripMeterAutomatic":{"value":38.5,"unit":"km"},"tripMeter2":{"value":38.5,"unit":"km"},
            "distanceToEmptyTank":{"value":560,"unit":"km"},"distanceToEmpty":{"value":560,"unit":"km"},
            "averageSpeed":{"value":36,"unit":"km/h"}
        }}"#;
        let text = exposition("{}", "{}", "{}", both);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("volvo_trip_meter_meters")
                    || l.starts_with("volvo_distance_to_empty_meters")
            })
            .collect();
        assert_eq!(
            series,
            [
                r#"volvo_distance_to_empty_meters{source="tank",vin="YV1XZK9V0R2000001"} 560000"#,
                r#"volvo_trip_meter_meters{trip="automatic",vin="YV1XZK9V0R2000001"} 38500"#,
                r#"volvo_trip_meter_meters{trip="manual",vin="YV1XZK9V0R2000001"} 9812400"#,
            ],
            "{text}"
        );
        let alone = r#"{"data":{"tripMeter2":{"value":1,"unit":"km"},"distanceToEmpty":{"value":2,"unit":"km"},"distanceToEmptyTank":{"value":null,"unit":null}}}"#;
        let text = exposition("{}", "{}", "{}", alone);
        assert!(
            text.contains(r#"volvo_trip_meter_meters{trip="trip2",vin="YV1XZK9V0R2000001"} 1000"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"volvo_distance_to_empty_meters{source="total",vin="YV1XZK9V0R2000001"} 2000"#
            ),
            "{text}"
        );
    }

    #[test]
    fn fixture_with_quirks_gives_exact_samples() {
        let text = exposition(
            // An unknown extra member, a state without unit and one without timestamp.
            r#"{"data":{
                "frontLeftDoor":{"value":"OPEN","timestamp":"2026-05-01T12:00:00.1234567Z"},
                "centralLock":{"value":"LOCKED"},
                "tailgateLock":{"value":"LOCKED","timestamp":"2026-05-01T12:00:00Z"}
            }}"#,
            // A numeric string, and a member of the wrong shape.
            r#"{"data":{
                "fuelAmount":{"value":"31.5","unit":"l","timestamp":"2026-05-01T12:00:00Z"},
                "batteryChargeLevel":"80"
            }}"#,
            // A number without unit: skipped, never guessed.
            r#"{"data":{"odometer":{"value":12345}}}"#,
            r#"{"data":{"averageSpeed":{"value":36,"unit":"km/h"},"tripMeter1":{"value":"2.5","unit":"mi"}}}"#,
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        // 36 km/h is 10 m/s; 2.5 mi is 4023.36 m; the central lock has no timestamp, so no
        // timestamp sample; `tailgateLock` is not read; the malformed `batteryChargeLevel` and
        // the unitless odometer are counted as skipped.
        let expected = [
            r#"volvo_average_speed_meters_per_second{trip="manual",vin="YV1XZK9V0R2000001"} 10"#,
            r#"volvo_central_lock_state{state="LOCKED",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_central_lock_state{state="UNLOCKED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_central_lock_state{state="UNSPECIFIED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_collect_fields_skipped{api="connected_vehicle",reason="malformed",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_collect_fields_skipped{api="connected_vehicle",reason="missing_unit",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_door_state{door="front_left",state="AJAR",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_door_state{door="front_left",state="CLOSED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_door_state{door="front_left",state="OPEN",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_door_state{door="front_left",state="UNSPECIFIED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_door_timestamp_seconds{door="front_left",vin="YV1XZK9V0R2000001"} 1777636800.1234567"#,
            r#"volvo_fuel_amount_liters{vin="YV1XZK9V0R2000001"} 31.5"#,
            r#"volvo_fuel_amount_timestamp_seconds{vin="YV1XZK9V0R2000001"} 1777636800"#,
            r#"volvo_trip_meter_meters{trip="trip1",vin="YV1XZK9V0R2000001"} 4023.36"#,
        ];
        assert_eq!(samples, expected, "{text}");
        assert!(text.contains("# TYPE volvo_door_state gauge\n"), "{text}");
    }
}
