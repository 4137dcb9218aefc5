//! Energy API v2: capabilities and state, without an envelope. Each state field is either
//! `{"status":"OK","value","unit"?,"updatedAt"}` or `{"status":"ERROR","code","message"?}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::answers::CarAnswers;
use super::{parse, Answer, ApiError, Need};
use crate::endpoints::{Endpoint, Origin};
use crate::values::{Field, Uploaded};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub get_energy_state: Field<EnergyStateCapability>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnergyStateCapability {
    #[serde(default)]
    pub is_supported: Option<bool>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

impl EnergyStateCapability {
    /// Per field, whether it is supported, by state key. The capability key
    /// `chargingSystemStatus` names the state's charging status; both spellings are accepted.
    pub fn field_support(&self) -> BTreeMap<String, bool> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let supported = v.get("isSupported")?.as_bool()?;
                let name = if k == "chargingSystemStatus" {
                    State::default().charging_status().key
                } else {
                    k.as_str()
                };
                Some((name.to_string(), supported))
            })
            .collect()
    }
}

/// One state field.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateField {
    pub status: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "crate::values::any_text")]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

impl Uploaded for StateField {
    fn uploaded_at(&self) -> Option<i64> {
        let t = crate::values::timestamp(self.updated_at.as_deref()?).ok()?;
        Some(t as i64)
    }
}

impl Uploaded for Capabilities {
    fn uploaded_at(&self) -> Option<i64> {
        None
    }
}

answer! {
    /// `/state`: the ten fields Volvo documents, each `OK` with a value or `ERROR` with a code.
    pub struct State<StateField> {
        battery_charge_level: "batteryChargeLevel",
        electric_range: "electricRange",
        charger_connection_status: "chargerConnectionStatus",
        charging_status: "chargingStatus",
        charging_type: "chargingType",
        charger_power_status: "chargerPowerStatus",
        estimated_charging_time_to_target_battery_charge_level: "estimatedChargingTimeToTargetBatteryChargeLevel",
        target_battery_charge_level: "targetBatteryChargeLevel",
        charging_current_limit: "chargingCurrentLimit",
        charging_power: "chargingPower",
    }
}

impl State {
    /// Whether the state says the car is charging.
    pub fn is_charging(&self) -> bool {
        matches!(&self.charging_status, Some(Field::Ok(f)) if f.value.as_ref().and_then(|v| v.as_str()) == Some("CHARGING"))
    }
}

/// Energy as a run uses it: the state waits for the capabilities, which may rule it out.
pub struct Energy;

impl super::Api for Energy {
    fn origin(&self) -> Origin {
        Origin::Energy
    }

    fn decode(&self, endpoint: Endpoint, body: &str) -> Result<Answer, ApiError> {
        match endpoint {
            Endpoint::EnergyCapabilities => parse::<Capabilities>(body).map(Answer::from),
            Endpoint::EnergyState => parse::<State>(body).map(Answer::from),
            other => Err(super::not_this_api(other, Origin::Energy)),
        }
    }

    /// The energy state waits for the car's capabilities (a car without energy is never asked
    /// it); when they cannot be had this run, it is asked anyway.
    fn needs<'c>(&self, endpoint: Endpoint, car: &'c CarAnswers) -> Need<'c> {
        if endpoint != Endpoint::EnergyState {
            return Need::Ready;
        }
        let caps = super::answers::Ask::of(Endpoint::EnergyCapabilities);
        match car.typed_at::<Capabilities>(&caps) {
            Ok(c) if c.rules_out_state() => Need::Never,
            Ok(_) => Need::Ready,
            Err(_) => match car.outcome(&caps) {
                Some(super::answers::Outcome::Failed(_) | super::answers::Outcome::Deferred) => {
                    Need::Ready
                }
                _ => Need::Waiting,
            },
        }
    }
}

#[derive(Debug)]
pub struct Snapshot<'a> {
    pub capabilities: Result<&'a Capabilities, ApiError>,
    /// `None` when the capabilities say energy is unsupported, so the state was not asked.
    pub state: Option<Result<&'a State, ApiError>>,
}

impl Capabilities {
    /// Whether the car says it has no energy state at all (then the state is not asked).
    pub fn rules_out_state(&self) -> bool {
        matches!(&self.get_energy_state, Field::Ok(c) if c.is_supported == Some(false))
    }

    /// Whether the car says it has an energy state.
    pub fn has_state(&self) -> bool {
        matches!(&self.get_energy_state, Field::Ok(c) if c.is_supported == Some(true))
    }
}

impl<'a> Snapshot<'a> {
    /// One car's answers: the capabilities, and the state unless they rule it out.
    pub fn of(car: &'a CarAnswers) -> Snapshot<'a> {
        Snapshot::new(
            car.typed(Endpoint::EnergyCapabilities),
            car.typed(Endpoint::EnergyState),
        )
    }

    pub fn new(
        capabilities: Result<&'a Capabilities, ApiError>,
        state: Result<&'a State, ApiError>,
    ) -> Snapshot<'a> {
        let ruled_out = capabilities.as_ref().is_ok_and(|c| c.rules_out_state());
        let supported = capabilities.as_ref().is_ok_and(|c| c.has_state());
        let state = state.and_then(|s| {
            // A car that says it has an energy state and answers none: an answer gone wrong.
            if s.is_empty() && supported {
                Err(ApiError::Decode(
                    "the energy state is empty though the capabilities say it is supported".into(),
                ))
            } else {
                Ok(s)
            }
        });
        Snapshot {
            capabilities,
            state: (!ruled_out).then_some(state),
        }
    }

    pub fn errors(&self) -> Vec<(Endpoint, &ApiError)> {
        let mut e = Vec::new();
        if let Err(x) = &self.capabilities {
            e.push((Endpoint::EnergyCapabilities, x));
        }
        if let Some(Err(x)) = &self.state {
            e.push((Endpoint::EnergyState, x));
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_fields_are_ok_or_error_and_unknown_ones_are_ignored() {
        let s: State = serde_json::from_str(
            r#"{"chargingStatus":{"status":"OK","value":"CHARGING"},
                "chargingPower":{"status":"ERROR","code":"PROPERTY_NOT_FOUND"},
                "electricRange":null,
                "chargingMode":{"status":"OK","value":"SMART"}}"#,
        )
        .unwrap();
        assert!(s.is_charging());
        assert!(
            matches!(&s.charging_power, Some(Field::Ok(f)) if f.status == "ERROR" && f.value.is_none())
        );
        assert!(s.electric_range.is_none(), "a null is an absent value");
        assert!(s.battery_charge_level.is_none());
        assert_eq!(s.charging_power().key, "chargingPower");
        assert!(serde_json::from_str::<State>("[]").is_err());
    }

    #[test]
    fn an_empty_state_is_an_error_only_where_the_capabilities_promise_one() {
        let caps = |t: &str| parse::<Capabilities>(t).unwrap();
        let state = |t: &str| parse::<State>(t).unwrap();
        let (supported, unknown) = (
            caps(r#"{"getEnergyState":{"isSupported":true}}"#),
            caps(r#"{"getEnergyState":5}"#),
        );
        let (empty, other) = (state("{}"), state(r#"{"x":{"status":"OK"}}"#));
        assert!(matches!(
            Snapshot::new(Ok(&supported), Ok(&empty)).state,
            Some(Err(ApiError::Decode(_)))
        ));
        assert!(matches!(
            Snapshot::new(Ok(&unknown), Ok(&empty)).state,
            Some(Ok(s)) if s.is_empty()
        ));
        // Members this version does not know still make the state non-empty.
        assert!(matches!(
            Snapshot::new(Ok(&supported), Ok(&other)).state,
            Some(Ok(s)) if !s.is_empty()
        ));
        let caps: Capabilities = serde_json::from_str(
            r#"{"getEnergyState":{"isSupported":true,"chargingSystemStatus":{"isSupported":false}}}"#,
        )
        .unwrap();
        let Field::Ok(c) = caps.get_energy_state else {
            panic!()
        };
        assert_eq!(c.field_support().get("chargingStatus"), Some(&false));
    }
}
