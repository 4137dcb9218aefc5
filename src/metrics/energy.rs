//! Energy v2 → metric families. An ERROR field gives no value, only its error code as data.

use super::catalog::{self as c, Family, Origin};
use super::{source_time, Exposition, MapApi, MapContext, Mapped, Reading, VehicleOut};
use crate::api::answers::CarAnswers;
use crate::api::energy::{Energy, Snapshot, State, StateField};
use crate::values::{self, Accessor, Entry, Field, Quantity};

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

/// The state's fields: (accessor, family, kind).
const FIELDS: &[(Accessor<State, StateField>, &Family, Kind)] = &[
    (
        State::battery_charge_level,
        &c::ENERGY_BATTERY_CHARGE_LEVEL_RATIO,
        Kind::Quantity(Quantity::Ratio),
    ),
    (
        State::electric_range,
        &c::ENERGY_ELECTRIC_RANGE_METERS,
        Kind::Quantity(Quantity::Length),
    ),
    (
        State::charger_connection_status,
        &c::ENERGY_CHARGER_CONNECTION_STATE,
        Kind::States(CONNECTION),
    ),
    (
        State::charging_status,
        &c::ENERGY_CHARGING_STATE,
        Kind::States(CHARGING),
    ),
    (
        State::charging_type,
        &c::ENERGY_CHARGING_TYPE_STATE,
        Kind::States(CHARGING_TYPE),
    ),
    (
        State::charger_power_status,
        &c::ENERGY_CHARGER_POWER_STATE,
        Kind::States(POWER_STATUS),
    ),
    (
        State::estimated_charging_time_to_target_battery_charge_level,
        &c::ENERGY_TIME_TO_TARGET_CHARGE_SECONDS,
        Kind::Quantity(Quantity::Duration),
    ),
    (
        State::target_battery_charge_level,
        &c::ENERGY_TARGET_CHARGE_LEVEL_RATIO,
        Kind::Quantity(Quantity::Ratio),
    ),
    (
        State::charging_current_limit,
        &c::ENERGY_CHARGING_CURRENT_LIMIT_AMPERES,
        Kind::Quantity(Quantity::Current),
    ),
    (
        State::charging_power,
        &c::ENERGY_CHARGING_POWER_WATTS,
        Kind::Quantity(Quantity::Power),
    ),
];

/// The error codes Volvo documents for a field; others are kept but bounded.
const ERROR_CODES: &[&str] = &[
    "NOT_SUPPORTED",
    "PROPERTY_NOT_FOUND",
    "ERROR_READING_PROPERTY",
];

impl MapApi for Energy {
    fn map(&self, exp: &mut Exposition, car: &CarAnswers, _: &MapContext) -> Mapped {
        let s = Snapshot::of(car);
        map(exp, &car.vin, &s);
        Mapped {
            errors: super::owned(s.errors()),
            api_gone: false,
        }
    }
}

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
                if State::KEYS.contains(&field.as_str()) {
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
    for (get, fam, kind) in FIELDS {
        let Entry {
            key: field,
            field: value,
        } = get(state);
        let Some(f) = out.field(field, value) else {
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
    charge_end(&mut out, state);
}

/// The estimated end of the current charge as a Unix time. Volvo gives the minutes left as of
/// the value's `updatedAt`, which may be well before this run, so the end is counted from
/// there, not from now. Only while charging: a car that is not charging makes no promise,
/// and a missing part gives no value rather than a 0 that would read as 1970. A malformed
/// part was already counted as skipped by the loop above, so it is not counted again.
fn charge_end(out: &mut VehicleOut, state: &State) {
    fn ok(e: Entry<'_, StateField>) -> Option<&StateField> {
        match e.field {
            Some(Field::Ok(f)) if f.status == "OK" => Some(f),
            _ => None,
        }
    }
    let charging = ok(state.charging_status())
        .and_then(|f| f.value.as_ref()?.as_str())
        .is_some_and(|s| s.trim() == "CHARGING");
    if !charging {
        return;
    }
    let time_to_target = state.estimated_charging_time_to_target_battery_charge_level();
    let Some(f) = ok(time_to_target) else { return };
    let (Some(value), Some(unit), Some(at)) = (&f.value, &f.unit, &f.updated_at) else {
        return;
    };
    let left = values::number(value).and_then(|n| values::convert(n, unit, Quantity::Duration));
    match (left, values::timestamp(at)) {
        (Ok(left), Ok(at)) if left >= 0.0 => out.number(
            &c::ENERGY_ESTIMATED_CHARGE_END_TIMESTAMP_SECONDS,
            &[],
            time_to_target.key,
            at + left,
            None,
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::energy::Capabilities;

    const VIN: &str = "YV1XZK9V0R2000001";

    /// The exposition of an Energy state made of `fields` (JSON object members).
    fn exposition(fields: &str) -> String {
        let capabilities: Capabilities =
            serde_json::from_str(r#"{"getEnergyState":{"isSupported":true,"chargingSystemStatus":{"isSupported":true},"chargingMode":{"isSupported":true}}}"#).unwrap();
        let state: State = serde_json::from_str(&format!("{{{fields}}}")).unwrap();
        let s = Snapshot {
            capabilities: Ok(&capabilities),
            state: Some(Ok(&state)),
        };
        let mut exp = Exposition::new();
        map(&mut exp, VIN, &s);
        exp.finish_skips();
        String::from_utf8(exp.encode()).unwrap()
    }

    #[test]
    fn fixture_with_quirks_gives_exact_samples() {
        let text = exposition(concat!(
            // A numeric string with its time.
            r#""batteryChargeLevel":{"status":"OK","value":"80.5","unit":"percentage","updatedAt":"2026-05-01T12:00:00Z"},"#,
            // No `updatedAt`: the value without a timestamp sample.
            r#""electricRange":{"status":"OK","value":10,"unit":"mi"},"#,
            // A state has no unit.
            r#""chargingStatus":{"status":"OK","value":"IDLE","updatedAt":"2026-05-01T12:00:00Z"},"#,
            // A number without unit: skipped, never guessed.
            r#""chargingPower":{"status":"OK","value":0},"#,
            // An ERROR field gives its code, never a 0.
            r#""chargingCurrentLimit":{"status":"ERROR","code":"NOT_SUPPORTED","message":"no"},"#,
            // A field this version does not know.
            r#""chargingMode":{"status":"OK","value":"SMART"}"#,
        ));
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        // 80.5 % is 0.805; 10 mi is 16093.44 m; the capabilities' `chargingSystemStatus` is the
        // state's `chargingStatus`, and `chargingMode` is known to neither.
        let expected = [
            r#"volvo_collect_fields_skipped{api="energy",reason="missing_unit",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_energy_battery_charge_level_ratio{vin="YV1XZK9V0R2000001"} 0.805"#,
            r#"volvo_energy_battery_charge_level_timestamp_seconds{vin="YV1XZK9V0R2000001"} 1777636800"#,
            r#"volvo_energy_charging_state{state="CHARGING",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="DISCHARGING",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="DONE",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="ERROR",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="FAULT",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="IDLE",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_energy_charging_state{state="SCHEDULED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_state{state="UNSPECIFIED",vin="YV1XZK9V0R2000001"} 0"#,
            r#"volvo_energy_charging_timestamp_seconds{vin="YV1XZK9V0R2000001"} 1777636800"#,
            r#"volvo_energy_electric_range_meters{vin="YV1XZK9V0R2000001"} 16093.44"#,
            r#"volvo_energy_field_error{code="NOT_SUPPORTED",field="chargingCurrentLimit",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_energy_field_supported{field="chargingStatus",vin="YV1XZK9V0R2000001"} 1"#,
            r#"volvo_energy_supported{vin="YV1XZK9V0R2000001"} 1"#,
        ];
        assert_eq!(samples, expected, "{text}");
        assert!(
            text.contains("# TYPE volvo_energy_field_error gauge\n"),
            "{text}"
        );
    }

    /// The estimated-end sample line, if any.
    fn charge_end_line(text: &str) -> Option<&str> {
        text.lines()
            .find(|l| l.starts_with("volvo_energy_estimated_charge_end_timestamp_seconds{"))
    }

    const CHARGING: &str =
        r#""chargingStatus":{"status":"OK","value":"CHARGING","updatedAt":"2026-11-29T17:00:00Z"}"#;
    const TIME_TO_TARGET: &str = r#""estimatedChargingTimeToTargetBatteryChargeLevel":{"status":"OK","value":95,"unit":"minutes","updatedAt":"2026-11-29T17:00:30.5Z"}"#;

    #[test]
    fn charge_end_is_the_source_time_plus_the_time_to_target() {
        let text = exposition(&format!("{CHARGING},{TIME_TO_TARGET}"));
        // 2026-11-29T17:00:30.5Z is 1795971630.5; 95 minutes later is 1795977330.5.
        assert_eq!(
            charge_end_line(&text),
            Some(
                r#"volvo_energy_estimated_charge_end_timestamp_seconds{vin="YV1XZK9V0R2000001"} 1795977330.5"#
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE volvo_energy_estimated_charge_end_timestamp_seconds gauge\n"));
    }

    #[test]
    fn no_charge_end_unless_charging_with_both_values() {
        let done = CHARGING.replace("\"CHARGING\"", "\"DONE\"");
        let no_time = TIME_TO_TARGET.replace(r#","updatedAt":"2026-11-29T17:00:30.5Z""#, "");
        let error = r#""estimatedChargingTimeToTargetBatteryChargeLevel":{"status":"ERROR","code":"NOT_SUPPORTED"}"#;
        let no_status = r#""chargingStatus":{"status":"ERROR","code":"ERROR_READING_PROPERTY"}"#;
        let bad_unit = TIME_TO_TARGET.replace("minutes", "furlongs");
        let negative = TIME_TO_TARGET.replace(":95,", ":-1,");
        for fields in [
            format!("{done},{TIME_TO_TARGET}"),
            format!("{no_status},{TIME_TO_TARGET}"),
            TIME_TO_TARGET.to_string(),
            CHARGING.to_string(),
            format!("{CHARGING},{error}"),
            format!("{CHARGING},{no_time}"),
            format!("{CHARGING},{bad_unit}"),
            format!("{CHARGING},{negative}"),
        ] {
            let text = exposition(&fields);
            assert_eq!(charge_end_line(&text), None, "{fields}:\n{text}");
            assert!(
                !text.contains("volvo_energy_estimated_charge_end"),
                "{fields}: no HELP/TYPE for an empty family"
            );
        }
    }
}
