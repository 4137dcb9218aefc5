//! Connected Vehicle v2 → metric families. Pure: a [`Snapshot`] in, samples out.

use serde_json::Value;

use super::catalog::{self as c, Family, Origin};
use super::{snake, source_time, Exposition, Reading, VehicleOut};
use crate::api::connected_vehicle::{Snapshot, ValueObject, Values};
use crate::values::{self, Field, Quantity};

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

const DOORS: &[(&str, &str)] = &[
    ("frontLeftDoor", "front_left"),
    ("frontRightDoor", "front_right"),
    ("rearLeftDoor", "rear_left"),
    ("rearRightDoor", "rear_right"),
    ("hood", "hood"),
    ("tailgate", "tailgate"),
    ("tankLid", "tank_lid"),
];
const WINDOWS: &[(&str, &str)] = &[
    ("frontLeftWindow", "front_left"),
    ("frontRightWindow", "front_right"),
    ("rearLeftWindow", "rear_left"),
    ("rearRightWindow", "rear_right"),
    ("sunroof", "sunroof"),
];
const TYRES: &[(&str, &str)] = &[
    ("frontLeft", "front_left"),
    ("frontRight", "front_right"),
    ("rearLeft", "rear_left"),
    ("rearRight", "rear_right"),
];
/// The 23 exterior lamp warnings of the warnings endpoint.
pub const LAMPS: &[&str] = &[
    "brakeLightCenterWarning",
    "brakeLightLeftWarning",
    "brakeLightRightWarning",
    "fogLightFrontWarning",
    "fogLightRearWarning",
    "positionLightFrontLeftWarning",
    "positionLightFrontRightWarning",
    "positionLightRearLeftWarning",
    "positionLightRearRightWarning",
    "highBeamLeftWarning",
    "highBeamRightWarning",
    "lowBeamLeftWarning",
    "lowBeamRightWarning",
    "daytimeRunningLightLeftWarning",
    "daytimeRunningLightRightWarning",
    "turnIndicationFrontLeftWarning",
    "turnIndicationFrontRightWarning",
    "turnIndicationRearLeftWarning",
    "turnIndicationRearRightWarning",
    "registrationPlateLightWarning",
    "sideMarkLightsWarning",
    "hazardLightsWarning",
    "reverseLightsWarning",
];

/// Statistics fields: (API name, family, trip or source label, quantity).
const STATISTICS: &[(&str, &Family, &str, Quantity)] = &[
    (
        "tripMeterManual",
        &c::TRIP_METER_METERS,
        "manual",
        Quantity::Length,
    ),
    (
        "tripMeterAutomatic",
        &c::TRIP_METER_METERS,
        "automatic",
        Quantity::Length,
    ),
    (
        "tripMeter1",
        &c::TRIP_METER_METERS,
        "trip1",
        Quantity::Length,
    ),
    (
        "tripMeter2",
        &c::TRIP_METER_METERS,
        "trip2",
        Quantity::Length,
    ),
    (
        "averageSpeed",
        &c::AVERAGE_SPEED_METERS_PER_SECOND,
        "manual",
        Quantity::Speed,
    ),
    (
        "averageSpeedAutomatic",
        &c::AVERAGE_SPEED_METERS_PER_SECOND,
        "automatic",
        Quantity::Speed,
    ),
    (
        "averageFuelConsumption",
        &c::AVERAGE_FUEL_CONSUMPTION_LITERS_PER_METER,
        "manual",
        Quantity::FuelConsumption,
    ),
    (
        "averageFuelConsumptionAutomatic",
        &c::AVERAGE_FUEL_CONSUMPTION_LITERS_PER_METER,
        "automatic",
        Quantity::FuelConsumption,
    ),
    (
        "averageEnergyConsumption",
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "manual",
        Quantity::EnergyConsumption,
    ),
    (
        "averageEnergyConsumptionAutomatic",
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "automatic",
        Quantity::EnergyConsumption,
    ),
    (
        "averageEnergyConsumptionSinceCharge",
        &c::AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER,
        "since_charge",
        Quantity::EnergyConsumption,
    ),
    (
        "distanceToEmptyTank",
        &c::DISTANCE_TO_EMPTY_METERS,
        "tank",
        Quantity::Length,
    ),
    (
        "distanceToEmptyBattery",
        &c::DISTANCE_TO_EMPTY_METERS,
        "battery",
        Quantity::Length,
    ),
    (
        "distanceToEmpty",
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

/// Adds the samples of one car's Connected Vehicle snapshot.
pub fn map(exp: &mut Exposition, vin: &str, account: &str, s: &Snapshot) {
    let mut out = VehicleOut::new(exp, vin, Origin::ConnectedVehicle);

    if let Ok(d) = &s.details {
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
            vin.to_string(),
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
        if let Some(cap) = &d.battery_capacity_kwh {
            match values::number(cap).and_then(|n| values::convert(n, "kWh", Quantity::Energy)) {
                Ok(j) => out.number(
                    &c::BATTERY_CAPACITY_JOULES,
                    &[],
                    "batteryCapacityKWH",
                    j,
                    None,
                ),
                Err(r) => out.skip("batteryCapacityKWH", r),
            }
        }
    }

    if let Ok(doors) = &s.doors {
        parts(&mut out, doors, DOORS, &c::DOOR_STATE, OPEN_CLOSED);
        if let Some(v) = get(&mut out, doors, "centralLock") {
            out.state_from(
                &c::CENTRAL_LOCK_STATE,
                &[],
                "centralLock",
                &reading(&v),
                LOCK,
            );
        }
    }
    if let Ok(windows) = &s.windows {
        parts(&mut out, windows, WINDOWS, &c::WINDOW_STATE, OPEN_CLOSED);
    }
    if let Ok(es) = &s.engine_status {
        if let Some(v) = get(&mut out, es, "engineStatus") {
            let running = match v.value.as_str() {
                Some("RUNNING") => Some(1.0),
                Some("STOPPED") => Some(0.0),
                _ => None,
            };
            match running {
                Some(r) => out.number(
                    &c::ENGINE_RUNNING,
                    &[],
                    "engineStatus",
                    r,
                    source_time(v.timestamp.as_deref()),
                ),
                None => out.skip("engineStatus", values::SkipReason::Malformed),
            }
        }
    }
    if let Ok(tyres) = &s.tyres {
        parts(
            &mut out,
            tyres,
            TYRES,
            &c::TYRE_PRESSURE_WARNING_STATE,
            TYRE,
        );
    }
    if let Ok(w) = &s.warnings {
        for lamp in LAMPS {
            if let Some(v) = get(&mut out, w, lamp) {
                let label = snake(lamp.trim_end_matches("Warning"));
                out.state_from(&c::LAMP_WARNING_STATE, &[&label], lamp, &reading(&v), LAMP);
            }
        }
    }
    if let Ok(b) = &s.brakes {
        fluid(&mut out, b, "brakeFluidLevelWarning", "brake_fluid", FLUID);
    }
    if let Ok(e) = &s.engine {
        fluid(&mut out, e, "oilLevelWarning", "oil", OIL);
        fluid(
            &mut out,
            e,
            "engineCoolantLevelWarning",
            "engine_coolant",
            FLUID,
        );
    }
    if let Ok(d) = &s.diagnostics {
        fluid(
            &mut out,
            d,
            "washerFluidLevelWarning",
            "washer_fluid",
            FLUID,
        );
        if let Some(v) = get(&mut out, d, "serviceWarning") {
            out.state_from(
                &c::SERVICE_WARNING_STATE,
                &[],
                "serviceWarning",
                &reading(&v),
                SERVICE,
            );
        }
        if let Some(v) = get(&mut out, d, "serviceTrigger") {
            out.state_from(
                &c::SERVICE_TRIGGER_STATE,
                &[],
                "serviceTrigger",
                &reading(&v),
                &[],
            );
        }
        quantity(
            &mut out,
            d,
            "distanceToService",
            &c::DISTANCE_TO_SERVICE_METERS,
            Quantity::Length,
        );
        quantity(
            &mut out,
            d,
            "timeToService",
            &c::TIME_TO_SERVICE_SECONDS,
            Quantity::Duration,
        );
        quantity(
            &mut out,
            d,
            "engineHoursToService",
            &c::ENGINE_RUNNING_TIME_TO_SERVICE_SECONDS,
            Quantity::Duration,
        );
    }
    if let Ok(f) = &s.fuel {
        quantity(
            &mut out,
            f,
            "fuelAmount",
            &c::FUEL_AMOUNT_LITERS,
            Quantity::Volume,
        );
        quantity(
            &mut out,
            f,
            "batteryChargeLevel",
            &c::BATTERY_CHARGE_LEVEL_RATIO,
            Quantity::Ratio,
        );
    }
    if let Ok(o) = &s.odometer {
        quantity(
            &mut out,
            o,
            "odometer",
            &c::ODOMETER_METERS,
            Quantity::Length,
        );
    }
    if let Ok(st) = &s.statistics {
        for (field, fam, label, q) in STATISTICS {
            if let Some(v) = get(&mut out, st, field) {
                out.quantity(fam, &[label], field, &reading(&v), *q);
            }
        }
    }
    if let Ok(ca) = &s.command_accessibility {
        if let Some(a) = out.field("availabilityStatus", Some(&ca.availability_status)) {
            let time = source_time(a.timestamp.as_deref());
            let r = Reading {
                value: &a.value,
                unit: None,
                time,
            };
            out.state_from(
                &c::COMMAND_AVAILABILITY_STATE,
                &[],
                "availabilityStatus",
                &r,
                AVAILABILITY,
            );
            if let Some(reason) = &a.unavailable_reason {
                let r = Reading {
                    value: reason,
                    unit: None,
                    time: None,
                };
                out.state_from(
                    &c::COMMAND_UNAVAILABLE_REASON_STATE,
                    &[],
                    "unavailableReason",
                    &r,
                    UNAVAILABLE_REASON,
                );
            }
        }
    }
    if let Ok(cmds) = &s.commands {
        for (i, cmd) in cmds.iter().enumerate() {
            match cmd {
                Field::Ok(cmd) => {
                    let name = super::sanitize_state(&cmd.command);
                    out.number(&c::COMMAND_SUPPORTED, &[&name], "commands", 1.0, None);
                }
                Field::Invalid(_) => {
                    out.skip(&format!("commands[{i}]"), values::SkipReason::Malformed)
                }
            }
        }
    }
}

/// A value object by API field name; malformed ones are counted and skipped.
fn get(out: &mut VehicleOut, values: &Values, name: &str) -> Option<ValueObject> {
    out.field(name, values.get(name)).cloned()
}

/// A family with one part label per API field (doors, windows, tyres).
fn parts(
    out: &mut VehicleOut,
    values: &Values,
    fields: &[(&str, &str)],
    fam: &Family,
    known: &[&str],
) {
    for (field, label) in fields {
        if let Some(v) = get(out, values, field) {
            out.state_from(fam, &[label], field, &reading(&v), known);
        }
    }
}

fn fluid(out: &mut VehicleOut, values: &Values, field: &str, label: &str, known: &[&str]) {
    if let Some(v) = get(out, values, field) {
        out.state_from(
            &c::FLUID_LEVEL_WARNING_STATE,
            &[label],
            field,
            &reading(&v),
            known,
        );
    }
}

fn quantity(out: &mut VehicleOut, values: &Values, field: &str, fam: &Family, q: Quantity) {
    if let Some(v) = get(out, values, field) {
        out.quantity(fam, &[], field, &reading(&v), q);
    }
}
