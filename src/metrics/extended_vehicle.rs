//! Extended Vehicle v1 → metric families: each numeric resource in the family of its unit's
//! quantity (converted to the base unit), each enumerated resource as a state, with the
//! resource's Unix timestamp as source time.

use super::catalog::{self as c, Family, Origin};
use super::{Exposition, Reading, VehicleOut};
use crate::api::extended_vehicle::Snapshot;
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

pub fn map(exp: &mut Exposition, vin: &str, s: &Snapshot) {
    let mut out = VehicleOut::new(exp, vin, Origin::ExtendedVehicle);
    for (name, r) in &s.resources {
        let Ok(v) = r else { continue };
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
