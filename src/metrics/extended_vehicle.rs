//! Extended Vehicle v1 → metric families: each numeric resource in the family of its unit's
//! quantity (converted to the base unit), each enumerated resource as a state, with the
//! resource's Unix timestamp as source time.

use super::catalog::{self as c, Family, Origin};
use super::{Exposition, MapApi, MapContext, Mapped, Reading, VehicleOut};
use crate::api::answers::CarAnswers;
use crate::api::extended_vehicle::{ExtendedVehicle, Snapshot};
use crate::api::ApiError;
use crate::endpoints::Endpoint;
use crate::values::{self, Quantity, SkipReason};

fn family_of(q: Quantity) -> Option<&'static Family> {
    Some(match q {
        Quantity::Length => &c::EXTENDED_METERS,
        Quantity::Volume => &c::EXTENDED_LITERS,
        Quantity::Ratio => &c::EXTENDED_RATIO,
        Quantity::Duration => &c::EXTENDED_SECONDS,
        Quantity::Speed => &c::EXTENDED_METERS_PER_SECOND,
        Quantity::Power => &c::EXTENDED_WATTS,
        Quantity::Current => &c::EXTENDED_AMPERES,
        _ => return None,
    })
}

impl MapApi for ExtendedVehicle {
    /// A shut-down API is no failure of the car's: it is said once and backed off.
    fn map(&self, exp: &mut Exposition, car: &CarAnswers, cx: &MapContext) -> Mapped {
        let s = Snapshot::of(car);
        map(exp, &car.vin, &s);
        // A 404 is the car's own when another car's list was answered now, or when it is
        // remembered from an earlier run: the API's shutdown is said by a fresh answer only.
        let one_cars_404 = matches!(&s.list, Err(ApiError::NotSupported(_)))
            && (cx.extended_answers || car.is_unsupported(Endpoint::ExtendedResources));
        let api_gone = s.api_gone() && !one_cars_404;
        Mapped {
            errors: if api_gone {
                Vec::new()
            } else {
                super::owned(s.errors())
            },
            api_gone,
        }
    }
}

pub fn map(exp: &mut Exposition, vin: &str, s: &Snapshot) {
    let mut out = VehicleOut::new(exp, vin, Origin::ExtendedVehicle);
    for (name, r) in &s.resources {
        // A `null` value is an absent one, and no skip.
        let Ok(v) = r else { continue };
        if v.value.is_null() {
            continue;
        }
        // Names come from Volvo's list; as label values they are bounded and control-free.
        let name = &super::sanitize_state(name);
        let time = v
            .timestamp
            .as_ref()
            .map(|t| values::number(t).map_err(|_| SkipReason::BadTimestamp));
        let numeric = values::number(&v.value);
        let unit = v.unit.as_deref().filter(|u| !u.trim().is_empty());
        match (numeric, unit) {
            (Ok(n), Some(u)) => {
                let fam = values::unit_factor(u).and_then(|(q, _)| family_of(q));
                match fam {
                    Some(fam) => {
                        let reading = Reading {
                            value: &v.value,
                            unit: Some(u),
                            time,
                        };
                        let q = values::unit_factor(u)
                            .map(|(q, _)| q)
                            .expect("checked above");
                        out.quantity(fam, &[name], name, &reading, q);
                    }
                    None => {
                        let _ = n;
                        out.skip(name, SkipReason::UnknownUnit)
                    }
                }
            }
            (Ok(n), None) => out.number(&c::EXTENDED_VALUE, &[name], name, n, time),
            (Err(_), _) => match v.value.as_str() {
                Some(s) if !s.trim().is_empty() => {
                    out.state_set(&c::EXTENDED_STATE, &[name], name, s, &[], time)
                }
                _ => out.skip(name, SkipReason::Malformed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answers::Ask;
    use crate::endpoints::Endpoint;

    /// A fixture with the API's quirks (values as strings, Unix-second timestamps, an enum
    /// without a unit, a unit nobody knows) through the mapper, compared with the exact
    /// exposition: converted by unit, the enum as a state, the unknown unit skipped, not 0.
    #[test]
    fn resources_become_exactly_these_samples() {
        let list = r#"{"resources": [{"name": "odometer"}, {"name": "batteryChargeLevel"},
            {"name": "frontLeftDoor"}, {"name": "fuelAmount"}]}"#;
        let values = |name: &str| -> &'static str {
            match name {
                "odometer" => {
                    r#"{"resourceValue": {"timestamp": 1795111092, "unit": "km", "value": "18734"}}"#
                }
                "batteryChargeLevel" => {
                    r#"{"resourceValue": {"timestamp": 1795124530, "unit": "percentage", "value": "67"}}"#
                }
                "frontLeftDoor" => {
                    r#"{"resourceValue": {"timestamp": 1795111092, "value": "CLOSED"}}"#
                }
                _ => {
                    r#"{"resourceValue": {"timestamp": 1795111092, "unit": "gallons?", "value": "12"}}"#
                }
            }
        };
        let mut car = CarAnswers::new("V1", crate::api::answers::Absent::Deferred);
        let list_ask = Ask::of(Endpoint::ExtendedResources);
        car.record(list_ask, 0, Ok(list.as_bytes().to_vec()));
        for name in [
            "odometer",
            "batteryChargeLevel",
            "frontLeftDoor",
            "fuelAmount",
        ] {
            let ask = Ask {
                endpoint: Endpoint::ExtendedValues,
                resource: Some(name.to_string()),
            };
            car.record(ask, 0, Ok(values(name).as_bytes().to_vec()));
        }
        let s = Snapshot::of(&car);
        let mut exp = Exposition::new();
        map(&mut exp, "V1", &s);
        exp.finish_skips();
        let text = String::from_utf8(exp.encode()).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let expected = [
            "volvo_collect_fields_skipped{api=\"extended_vehicle\",reason=\"unknown_unit\",vin=\"V1\"} 1",
            "volvo_extended_meters{resource=\"odometer\",vin=\"V1\"} 18734000",
            "volvo_extended_ratio{resource=\"batteryChargeLevel\",vin=\"V1\"} 0.67",
            "volvo_extended_state{resource=\"frontLeftDoor\",state=\"CLOSED\",vin=\"V1\"} 1",
            "volvo_extended_timestamp_seconds{resource=\"batteryChargeLevel\",vin=\"V1\"} 1795124530",
            "volvo_extended_timestamp_seconds{resource=\"frontLeftDoor\",vin=\"V1\"} 1795111092",
            "volvo_extended_timestamp_seconds{resource=\"odometer\",vin=\"V1\"} 1795111092",
        ];
        assert_eq!(samples, expected, "{text}");
    }
}
