//! Energy v2 → metric families. An ERROR field gives no value, only its error code as data.

use super::catalog::{self as c, Family, Origin};
use super::{source_time, Exposition, Reading, VehicleOut};
use crate::api::energy::Snapshot;
use crate::values::Quantity;

const CONNECTION: &[&str] = &["CONNECTED", "DISCONNECTED", "FAULT", "UNSPECIFIED"];
const CHARGING: &[&str] = &[
    "CHARGING",
    "DISCHARGING",
    "DONE",
    "ERROR",
    "IDLE",
    "SCHEDULED",
    "FAULT",
    "UNSPECIFIED",
];
const CHARGING_TYPE: &[&str] = &["AC", "DC", "NONE"];
const POWER_STATUS: &[&str] = &[
    "PROVIDING_POWER",
    "NO_POWER_AVAILABLE",
    "POWER_AVAILABLE_BUT_NOT_ACTIVATED",
    "FAULT",
];

enum Kind {
    Quantity(Quantity),
    States(&'static [&'static str]),
}

const FIELDS: &[(&str, &Family, Kind)] = &[
    (
        "batteryChargeLevel",
        &c::ENERGY_BATTERY_LEVEL,
        Kind::Quantity(Quantity::Ratio),
    ),
    (
        "electricRange",
        &c::ENERGY_RANGE,
        Kind::Quantity(Quantity::Length),
    ),
    (
        "chargerConnectionStatus",
        &c::ENERGY_CONNECTION,
        Kind::States(CONNECTION),
    ),
    (
        "chargingStatus",
        &c::ENERGY_CHARGING,
        Kind::States(CHARGING),
    ),
    (
        "chargingType",
        &c::ENERGY_CHARGING_TYPE,
        Kind::States(CHARGING_TYPE),
    ),
    (
        "chargerPowerStatus",
        &c::ENERGY_POWER_STATUS,
        Kind::States(POWER_STATUS),
    ),
    (
        "estimatedChargingTimeToTargetBatteryChargeLevel",
        &c::ENERGY_TIME_TO_TARGET,
        Kind::Quantity(Quantity::Duration),
    ),
    (
        "targetBatteryChargeLevel",
        &c::ENERGY_TARGET_LEVEL,
        Kind::Quantity(Quantity::Ratio),
    ),
    (
        "chargingCurrentLimit",
        &c::ENERGY_CURRENT_LIMIT,
        Kind::Quantity(Quantity::Current),
    ),
    (
        "chargingPower",
        &c::ENERGY_POWER,
        Kind::Quantity(Quantity::Power),
    ),
];

/// The error codes Volvo documents for a field; others are kept but bounded.
const ERROR_CODES: &[&str] = &[
    "NOT_SUPPORTED",
    "PROPERTY_NOT_FOUND",
    "ERROR_READING_PROPERTY",
];

pub fn map(exp: &mut Exposition, vin: &str, s: &Snapshot) {
    let mut out = VehicleOut::new(exp, vin, Origin::Energy);
    if let Ok(caps) = &s.capabilities {
        if let Some(caps) = out.field("getEnergyState", Some(&caps.get_energy_state)) {
            if let Some(supported) = caps.is_supported {
                out.number(
                    &c::ENERGY_SUPPORTED,
                    &[],
                    "getEnergyState",
                    f64::from(u8::from(supported)),
                    None,
                );
            }
            for (field, supported) in caps.field_support() {
                if FIELDS.iter().any(|(f, _, _)| *f == field) {
                    out.number(
                        &c::ENERGY_FIELD_SUPPORTED,
                        &[&field],
                        &field,
                        f64::from(u8::from(supported)),
                        None,
                    );
                }
            }
        }
    }
    let Some(Ok(state)) = &s.state else { return };
    for (field, fam, kind) in FIELDS {
        let Some(f) = out.field(field, state.get(*field)).cloned() else {
            continue;
        };
        if f.status != "OK" {
            let code = match f.code.as_deref() {
                Some(code) if ERROR_CODES.contains(&code) => code.to_string(),
                Some(code) => super::sanitize_state(code),
                None => "UNKNOWN".to_string(),
            };
            out.number(&c::ENERGY_FIELD_ERROR, &[field, &code], field, 1.0, None);
            continue;
        }
        let Some(value) = &f.value else {
            out.skip(field, crate::values::SkipReason::Malformed);
            continue;
        };
        let r = Reading {
            value,
            unit: f.unit.as_deref(),
            time: source_time(f.updated_at.as_deref()),
        };
        match kind {
            Kind::Quantity(q) => out.quantity(fam, &[], field, &r, *q),
            Kind::States(known) => out.state_from(fam, &[], field, &r, known),
        }
    }
}
