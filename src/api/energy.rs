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
    /// Per field, whether it is supported. The capability key `chargingSystemStatus` names the
    /// state field `chargingStatus`; both spellings are accepted.
    pub fn field_support(&self) -> BTreeMap<String, bool> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let supported = v.get("isSupported")?.as_bool()?;
                let name = if k == "chargingSystemStatus" {
                    "chargingStatus"
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

pub type State = BTreeMap<String, Field<StateField>>;

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
