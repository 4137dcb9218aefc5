//! Connected Vehicle API v2: the vehicle list and the fourteen read endpoints of a car.
//! Responses are wrapped in `{"data": ...}`; value objects are `{value, unit?, timestamp?}`
//! where `value` may be a number or a numeric string.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::client::Client;
use super::{decode, ApiError};
use crate::endpoints::Origin;
use crate::values::Field;

/// The API's path prefix (see the endpoint table).
pub const PREFIX: &str = crate::endpoints::prefix(Origin::ConnectedVehicle);

/// The `{"data": ...}` envelope of every Connected Vehicle answer.
#[derive(Debug, Deserialize)]
pub struct Data<T> {
    pub data: T,
}

/// `{"value": .., "unit": .., "timestamp": ..}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ValueObject {
    pub value: Value,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// An endpoint whose data is a map of named value objects (doors, windows, warnings, ...).
/// Each field decodes on its own, so one bad field never fails the endpoint.
pub type Values = BTreeMap<String, Field<ValueObject>>;

#[derive(Debug, Deserialize)]
pub struct VehicleRef {
    pub vin: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    #[serde(default)]
    pub vin: Option<Value>,
    #[serde(default)]
    pub model_year: Option<Value>,
    #[serde(default)]
    pub gearbox: Option<Value>,
    #[serde(default)]
    pub fuel_type: Option<Value>,
    #[serde(default)]
    pub external_colour: Option<Value>,
    #[serde(default, rename = "batteryCapacityKWH")]
    pub battery_capacity_kwh: Option<Value>,
    #[serde(default)]
    pub descriptions: Option<Field<Descriptions>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Descriptions {
    #[serde(default)]
    pub model: Option<Value>,
    #[serde(default)]
    pub upholstery: Option<Value>,
    #[serde(default)]
    pub steering: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccessibility {
    pub availability_status: Field<Availability>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub value: Value,
    #[serde(default)]
    pub unavailable_reason: Option<Value>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Command {
    pub command: String,
}

/// Everything one car answered; each endpoint succeeds or fails on its own.
#[derive(Debug)]
pub struct Snapshot {
    pub details: Result<Details, ApiError>,
    pub doors: Result<Values, ApiError>,
    pub windows: Result<Values, ApiError>,
    pub engine_status: Result<Values, ApiError>,
    pub engine: Result<Values, ApiError>,
    pub diagnostics: Result<Values, ApiError>,
    pub brakes: Result<Values, ApiError>,
    pub fuel: Result<Values, ApiError>,
    pub odometer: Result<Values, ApiError>,
    pub statistics: Result<Values, ApiError>,
    pub tyres: Result<Values, ApiError>,
    pub warnings: Result<Values, ApiError>,
    pub command_accessibility: Result<CommandAccessibility, ApiError>,
    pub commands: Result<Vec<Field<Command>>, ApiError>,
}

/// `GET /vehicles` exactly once, without retries (see [`Client::get_json_once`]).
pub async fn vehicles_once(client: &Client) -> Result<Vec<String>, ApiError> {
    let e = crate::endpoints::get(Origin::ConnectedVehicle, "vehicles");
    let list: Data<Vec<VehicleRef>> = client
        .get_json_once(e.api, e.template, &e.path("", None))
        .await?;
    Ok(list.data.into_iter().map(|v| v.vin).collect())
}

/// The VINs of a vehicle list answer.
pub fn vehicles(body: Result<&str, ApiError>) -> Result<Vec<String>, ApiError> {
    decode::<Data<Vec<VehicleRef>>>(body).map(|l| l.data.into_iter().map(|v| v.vin).collect())
}

/// The message of an endpoint skipped because an earlier run found it unsupported.
pub const REMEMBERED: &str = "not supported by this car (remembered from an earlier run)";

fn data<T: serde::de::DeserializeOwned>(body: Result<&str, ApiError>) -> Result<T, ApiError> {
    decode::<Data<T>>(body).map(|d| d.data)
}

impl Snapshot {
    /// One car's answers, by endpoint name; each endpoint decodes on its own.
    pub fn decode<'a>(answer: &dyn Fn(&'static str) -> Result<&'a str, ApiError>) -> Snapshot {
        Snapshot {
            details: data(answer("details")),
            doors: data(answer("doors")),
            windows: data(answer("windows")),
            engine_status: data(answer("engine_status")),
            engine: data(answer("engine")),
            diagnostics: data(answer("diagnostics")),
            brakes: data(answer("brakes")),
            fuel: data(answer("fuel")),
            odometer: data(answer("odometer")),
            statistics: data(answer("statistics")),
            tyres: data(answer("tyres")),
            warnings: data(answer("warnings")),
            command_accessibility: data(answer("command_accessibility")),
            commands: data(answer("commands")),
        }
    }
}

impl Snapshot {
    /// Each endpoint's failure, if any, by endpoint name.
    pub fn errors(&self) -> Vec<(&'static str, &ApiError)> {
        let all: [(&'static str, Option<&ApiError>); 14] = [
            ("details", self.details.as_ref().err()),
            ("doors", self.doors.as_ref().err()),
            ("windows", self.windows.as_ref().err()),
            ("engine_status", self.engine_status.as_ref().err()),
            ("engine", self.engine.as_ref().err()),
            ("diagnostics", self.diagnostics.as_ref().err()),
            ("brakes", self.brakes.as_ref().err()),
            ("fuel", self.fuel.as_ref().err()),
            ("odometer", self.odometer.as_ref().err()),
            ("statistics", self.statistics.as_ref().err()),
            ("tyres", self.tyres.as_ref().err()),
            ("warnings", self.warnings.as_ref().err()),
            (
                "command_accessibility",
                self.command_accessibility.as_ref().err(),
            ),
            ("commands", self.commands.as_ref().err()),
        ];
        all.into_iter()
            .filter_map(|(n, e)| e.map(|e| (n, e)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_objects_accept_strings_missing_unit_and_timestamp_and_extra_fields() {
        let v: Data<Values> = serde_json::from_value(json!({"data": {
            "fuelAmount": {"value": "31.5", "unit": "l"},
            "centralLock": {"value": "LOCKED", "timestamp": "2026-05-01T12:00:00Z", "extra": 1},
            "broken": {"unit": "l"},
            "tailgateLock": "weird"
        }}))
        .unwrap();
        assert!(
            matches!(&v.data["fuelAmount"], Field::Ok(o) if o.value == json!("31.5") && o.timestamp.is_none())
        );
        assert!(matches!(&v.data["centralLock"], Field::Ok(o) if o.unit.is_none()));
        assert!(matches!(v.data["broken"], Field::Invalid(_)));
        assert!(matches!(v.data["tailgateLock"], Field::Invalid(_)));
    }

    #[test]
    fn details_tolerate_missing_and_odd_fields() {
        let d: Data<Details> = serde_json::from_value(
            json!({"data": {"vin": "X", "modelYear": "2021", "descriptions": 5}}),
        )
        .unwrap();
        assert_eq!(d.data.model_year, Some(json!("2021")));
        assert!(matches!(d.data.descriptions, Some(Field::Invalid(_))));
        assert!(d.data.external_colour.is_none());
    }
}
