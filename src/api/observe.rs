//! What one run knows of a car for its records ([`crate::records`]): the engine, odometer,
//! battery, fuel and charging values of its answers, asked this run or replayed, each with the
//! time the car uploaded it, in base units. A value read here follows the mappers' rules: a
//! number needs its unit, and a value without an upload time is left out (the records order
//! uploads by it), as is one of a shape or unit that does not fit.

use super::answers::{CarAnswers, Outcome};
use super::connected_vehicle::{Details, EngineStatus, Fuel, Odometer};
use super::energy::{State, StateField};
use super::Typed;
use crate::endpoints::Endpoint;
use crate::records::{ChargingStatus, Observation, Timed};
use crate::values::{self, Entry, Field, Quantity, Uploaded};

/// The car's values at `now` for its records. Energy's state gives the battery level, and
/// Connected Vehicle's `fuel` only when the state has none: one source, so that two
/// roundings of the same level never read as a rise.
pub fn observation(car: &CarAnswers, now: i64) -> Observation {
    let engine = answer::<EngineStatus>(car, Endpoint::EngineStatus);
    let odometer = answer::<Odometer>(car, Endpoint::Odometer);
    let fuel = answer::<Fuel>(car, Endpoint::Fuel);
    let state = answer::<State>(car, Endpoint::EnergyState);
    // A field whose status is not OK (an ERROR with its code) has no value.
    let energy = |get: fn(&State) -> Entry<'_, StateField>| {
        state.and_then(|s| ok(get(s))).filter(|f| f.status == "OK")
    };
    Observation {
        now,
        newest_upload: newest_upload(car),
        engine_running: engine
            .map(EngineStatus::engine_status)
            .and_then(ok)
            .and_then(|v| {
                let running = match v.value.as_str()?.trim() {
                    "RUNNING" => true,
                    "STOPPED" => false,
                    _ => return None,
                };
                timed(v, running)
            }),
        odometer_meters: odometer
            .map(Odometer::odometer)
            .and_then(ok)
            .and_then(|v| quantity(v, &v.value, v.unit.as_deref(), Quantity::Length)),
        battery_level: energy(State::battery_charge_level)
            .and_then(|f| quantity(f, f.value.as_ref()?, f.unit.as_deref(), Quantity::Ratio))
            .or_else(|| {
                let v = fuel.map(Fuel::battery_charge_level).and_then(ok)?;
                quantity(v, &v.value, v.unit.as_deref(), Quantity::Ratio)
            }),
        fuel_liters: fuel
            .map(Fuel::fuel_amount)
            .and_then(ok)
            .and_then(|v| quantity(v, &v.value, v.unit.as_deref(), Quantity::Volume)),
        charging: energy(State::charging_status)
            .and_then(|f| timed(f, ChargingStatus::parse(f.value.as_ref()?.as_str()?))),
        charger_connected: energy(State::charger_connection_status).and_then(|f| {
            let connected = match f.value.as_ref()?.as_str()?.trim() {
                "CONNECTED" => true,
                "DISCONNECTED" => false,
                _ => return None,
            };
            timed(f, connected)
        }),
        capacity_joules: answer::<Details>(car, Endpoint::Details)
            .and_then(|d| d.battery_capacity_kwh.as_ref())
            .and_then(|c| values::number(c).ok())
            .and_then(|kwh| values::convert(kwh, "kWh", Quantity::Energy).ok()),
    }
}

/// The newest upload of any of the car's answers, replayed ones included; `None` when there
/// is none, or when this run asked the car and every request failed: a run that heard nothing
/// from the car cannot say that it stood still.
fn newest_upload(car: &CarAnswers) -> Option<i64> {
    let outcomes = || car.slots().filter_map(|(_, s)| s.outcome.as_ref());
    let failed = outcomes().any(|o| matches!(o, Outcome::Failed(_) | Outcome::InFlight));
    if failed && !outcomes().any(|o| *o == Outcome::Fresh) {
        return None;
    }
    car.slots()
        .filter(|(ask, _)| car.get(ask).is_ok())
        .filter_map(|(_, s)| s.kept.as_ref()?.newest)
        .max()
}

/// The answer of an endpoint, asked or replayed, if the run has one.
fn answer<T: Typed>(car: &CarAnswers, endpoint: Endpoint) -> Option<&T> {
    car.typed::<T>(endpoint).ok()
}

/// A member's value, if it decoded.
fn ok<T>(e: Entry<'_, T>) -> Option<&T> {
    match e.field? {
        Field::Ok(v) => Some(v),
        Field::Invalid(_) => None,
    }
}

/// `value` with the upload time of `field`, if it has one.
fn timed<T>(field: &impl Uploaded, value: T) -> Option<Timed<T>> {
    Some(Timed::new(value, field.uploaded_at()?))
}

/// A number with its unit, in the base unit of `q`, with the upload time of `field`.
fn quantity(
    field: &impl Uploaded,
    value: &serde_json::Value,
    unit: Option<&str>,
    q: Quantity,
) -> Option<Timed<f64>> {
    let n = values::number(value).ok()?;
    timed(field, values::convert(n, unit?, q).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answers::{Absent, Ask};
    use crate::api::ApiError;
    use crate::state::CacheEntry;

    const VIN: &str = "YV1XZK9V0R2000001";
    /// 2026-12-01T08:00:00Z.
    const T: i64 = 1_796_112_000;
    const NOW: i64 = T + 600;

    fn answered(bodies: &[(Endpoint, &str)]) -> CarAnswers {
        let mut car = CarAnswers::new(VIN, Absent::Deferred);
        for (e, body) in bodies {
            car.record(Ask::of(*e), NOW, Ok(body.as_bytes().to_vec()));
        }
        car
    }

    const ENGINE: &str =
        r#"{"data":{"engineStatus":{"value":"RUNNING","timestamp":"2026-12-01T08:00:00Z"}}}"#;
    const ODOMETER: &str = r#"{"data":{"odometer":{"value":"18766.4","unit":"km","timestamp":"2026-12-01T08:01:00.123Z"}}}"#;
    const FUEL: &str = r#"{"data":{"fuelAmount":{"value":39.3,"unit":"l","timestamp":"2026-12-01T08:02:00Z"},"batteryChargeLevel":{"value":61.5,"unit":"percentage","timestamp":"2026-12-01T08:03:00Z"}}}"#;
    const STATE: &str = r#"{
        "batteryChargeLevel":{"status":"OK","value":62.0,"unit":"percentage","updatedAt":"2026-12-01T07:59:00Z"},
        "chargingStatus":{"status":"OK","value":"CHARGING","updatedAt":"2026-12-01T07:58:00Z"},
        "chargerConnectionStatus":{"status":"OK","value":"CONNECTED","updatedAt":"2026-12-01T07:57:00Z"}}"#;
    const DETAILS: &str = r#"{"data":{"vin":"YV1XZK9V0R2000001","batteryCapacityKWH":78.0}}"#;

    /// Guards the values the records read: each in base units with its own upload time, the
    /// battery from Energy's state rather than from `fuel`, the capacity from the details.
    #[test]
    fn every_value_with_its_own_upload_time() {
        let car = answered(&[
            (Endpoint::EngineStatus, ENGINE),
            (Endpoint::Odometer, ODOMETER),
            (Endpoint::Fuel, FUEL),
            (Endpoint::EnergyState, STATE),
            (Endpoint::Details, DETAILS),
        ]);
        let o = observation(&car, NOW);
        assert_eq!(o.now, NOW);
        assert_eq!(o.engine_running, Some(Timed::new(true, T)));
        assert_eq!(o.odometer_meters, Some(Timed::new(18_766_400.0, T + 60)));
        assert_eq!(o.fuel_liters, Some(Timed::new(39.3, T + 120)));
        assert_eq!(o.battery_level, Some(Timed::new(0.62, T - 60)));
        assert_eq!(
            o.charging,
            Some(Timed::new(ChargingStatus::Charging, T - 120))
        );
        assert_eq!(o.charger_connected, Some(Timed::new(true, T - 180)));
        assert_eq!(o.capacity_joules, Some(78.0 * 3.6e6));
        assert_eq!(
            o.newest_upload,
            Some(T + 180),
            "fuel's battery level is the newest"
        );
    }

    /// Guards the fallback and the values left out: the battery from `fuel` when the energy
    /// state has none (an ERROR field), and no value without a unit, without an upload time,
    /// or of a state the records do not know.
    #[test]
    fn what_is_left_out() {
        let car = answered(&[
            (
                Endpoint::EngineStatus,
                r#"{"data":{"engineStatus":{"value":"RUNNING"}}}"#,
            ),
            (
                Endpoint::Odometer,
                r#"{"data":{"odometer":{"value":18766,"timestamp":"2026-12-01T08:01:00Z"}}}"#,
            ),
            (Endpoint::Fuel, FUEL),
            (
                Endpoint::EnergyState,
                r#"{"batteryChargeLevel":{"status":"ERROR","code":"ERROR_READING_PROPERTY"},
                    "chargerConnectionStatus":{"status":"OK","value":"FAULT","updatedAt":"2026-12-01T07:57:00Z"},
                    "chargingStatus":{"status":"OK","value":"V2G","updatedAt":"2026-12-01T07:58:00Z"}}"#,
            ),
            (
                Endpoint::Details,
                r#"{"data":{"batteryCapacityKWH":"unknown"}}"#,
            ),
        ]);
        let o = observation(&car, NOW);
        assert_eq!(o.engine_running, None, "no upload time");
        assert_eq!(o.odometer_meters, None, "no unit");
        assert_eq!(o.battery_level, Some(Timed::new(0.615, T + 180)));
        assert_eq!(o.charger_connected, None);
        assert_eq!(o.charging, Some(Timed::new(ChargingStatus::Other, T - 120)));
        assert_eq!(o.capacity_joules, None);
    }

    /// Guards the newest upload: replayed answers count, a run whose every request of the
    /// car failed has none (it heard nothing), and so has a car without any answer.
    #[test]
    fn newest_upload_of_asked_and_replayed_answers() {
        let kept = |car: &mut CarAnswers| {
            let body = serde_json::value::RawValue::from_string(ODOMETER.into()).unwrap();
            let entry = CacheEntry {
                fetched_at: T,
                body,
            };
            car.keep(Ask::of(Endpoint::Odometer), entry, i64::MAX);
        };
        let mut replayed = CarAnswers::new(VIN, Absent::Deferred);
        kept(&mut replayed);
        assert_eq!(observation(&replayed, NOW).newest_upload, Some(T + 60));
        assert_eq!(
            observation(&replayed, NOW).odometer_meters,
            Some(Timed::new(18_766_400.0, T + 60))
        );

        let mut failed = CarAnswers::new(VIN, Absent::Deferred);
        kept(&mut failed);
        failed.record(
            Ask::of(Endpoint::Doors),
            NOW,
            Err(ApiError::ServerError(503)),
        );
        let o = observation(&failed, NOW);
        assert_eq!(o.newest_upload, None);
        assert!(
            o.odometer_meters.is_some(),
            "the replayed value is still read"
        );

        failed.record(
            Ask::of(Endpoint::EngineStatus),
            NOW,
            Ok(ENGINE.as_bytes().to_vec()),
        );
        assert_eq!(observation(&failed, NOW).newest_upload, Some(T + 60));

        let none = CarAnswers::new(VIN, Absent::Deferred);
        assert_eq!(
            observation(&none, NOW),
            Observation {
                now: NOW,
                ..Observation::default()
            }
        );
    }
}
