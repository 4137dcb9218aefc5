//! Energy API v2: capabilities and state, without an envelope. Each state field is either
//! `{"status":"OK","value","unit"?,"updatedAt"}` or `{"status":"ERROR","code","message"?}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{decode, ApiError};
use crate::values::Field;

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
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
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

#[derive(Debug)]
pub struct Snapshot {
    pub capabilities: Result<Capabilities, ApiError>,
    /// `None` when the capabilities say energy is unsupported, so the state was not asked.
    pub state: Option<Result<State, ApiError>>,
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

impl Snapshot {
    /// One car's answers: the capabilities, and the state unless they rule it out.
    pub fn decode(capabilities: Result<&str, ApiError>, state: Result<&str, ApiError>) -> Snapshot {
        let capabilities: Result<Capabilities, ApiError> = decode(capabilities);
        let ruled_out = capabilities
            .as_ref()
            .is_ok_and(Capabilities::rules_out_state);
        let supported = capabilities.as_ref().is_ok_and(Capabilities::has_state);
        let state = decode::<State>(state).and_then(|s| {
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
}

impl Snapshot {
    pub fn errors(&self) -> Vec<(&'static str, &ApiError)> {
        let mut e = Vec::new();
        if let Err(x) = &self.capabilities {
            e.push(("energy_capabilities", x));
        }
        if let Some(Err(x)) = &self.state {
            e.push(("energy_state", x));
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
        let supported = r#"{"getEnergyState":{"isSupported":true}}"#;
        let unknown = r#"{"getEnergyState":5}"#;
        assert!(matches!(
            Snapshot::decode(Ok(supported), Ok("{}")).state,
            Some(Err(ApiError::Decode(_)))
        ));
        assert!(matches!(
            Snapshot::decode(Ok(unknown), Ok("{}")).state,
            Some(Ok(s)) if s.is_empty()
        ));
        // Members this version does not know still make the state non-empty.
        assert!(matches!(
            Snapshot::decode(Ok(supported), Ok(r#"{"x":{"status":"OK"}}"#)).state,
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
