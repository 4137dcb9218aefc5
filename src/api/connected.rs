//! Connected Vehicle API v2: the vehicle list and the fourteen read endpoints of a car.
//! Responses are wrapped in `{"data": ...}`; value objects are `{value, unit?, timestamp?}`
//! where `value` may be a number or a numeric string.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::client::Client;
use super::ApiError;
use crate::metrics::catalog::Origin;
use crate::values::Field;

pub const PREFIX: &str = "/connected-vehicle/v2";

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

/// The read endpoints of one car, as (name used in labels and the schedule, path template).
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("details", "/vehicles/{vin}"),
    ("doors", "/vehicles/{vin}/doors"),
    ("windows", "/vehicles/{vin}/windows"),
    ("engine_status", "/vehicles/{vin}/engine-status"),
    ("engine", "/vehicles/{vin}/engine"),
    ("diagnostics", "/vehicles/{vin}/diagnostics"),
    ("brakes", "/vehicles/{vin}/brakes"),
    ("fuel", "/vehicles/{vin}/fuel"),
    ("odometer", "/vehicles/{vin}/odometer"),
    ("statistics", "/vehicles/{vin}/statistics"),
    ("tyres", "/vehicles/{vin}/tyres"),
    ("warnings", "/vehicles/{vin}/warnings"),
    (
        "command_accessibility",
        "/vehicles/{vin}/command-accessibility",
    ),
    ("commands", "/vehicles/{vin}/commands"),
];

fn template(name: &str) -> &'static str {
    ENDPOINTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("known endpoint")
}

/// Decides per endpoint name whether to ask (false for endpoints remembered as unsupported).
pub type Wanted<'a> = &'a (dyn Fn(&str) -> bool + Sync);

async fn get<T: serde::de::DeserializeOwned>(
    client: &Client,
    vin: &str,
    name: &str,
    wanted: Wanted<'_>,
) -> Result<T, ApiError> {
    if !wanted(name) {
        return Err(ApiError::NotSupported(REMEMBERED.into()));
    }
    let t = template(name);
    let path = format!("{PREFIX}{}", t.replace("{vin}", &super::segment(vin)));
    client
        .get_json::<Data<T>>(Origin::ConnectedVehicle, t, &path, vin, name)
        .await
        .map(|d| d.data)
}

/// `GET /vehicles` exactly once, without retries (see [`Client::get_json_once`]).
pub async fn vehicles_once(client: &Client) -> Result<Vec<String>, ApiError> {
    let list: Data<Vec<VehicleRef>> = client
        .get_json_once(
            Origin::ConnectedVehicle,
            "/vehicles",
            &format!("{PREFIX}/vehicles"),
        )
        .await?;
    Ok(list.data.into_iter().map(|v| v.vin).collect())
}

/// `GET /vehicles`: the VINs on the account.
pub async fn vehicles(client: &Client) -> Result<Vec<String>, ApiError> {
    let list: Data<Vec<VehicleRef>> = client
        .get_json(
            Origin::ConnectedVehicle,
            "/vehicles",
            &format!("{PREFIX}/vehicles"),
            "",
            "vehicles",
        )
        .await?;
    Ok(list.data.into_iter().map(|v| v.vin).collect())
}

/// The message of an endpoint skipped because an earlier run found it unsupported.
pub const REMEMBERED: &str = "not supported by this car (remembered from an earlier run)";

/// Fetches every read endpoint of one car concurrently.
pub async fn fetch(client: &Client, vin: &str, wanted: Wanted<'_>) -> Snapshot {
    // One join: all fourteen in flight together, none waiting for another.
    let (
        details,
        doors,
        windows,
        engine_status,
        engine,
        diagnostics,
        brakes,
        fuel,
        odometer,
        statistics,
        tyres,
        warnings,
        command_accessibility,
        commands,
    ) = tokio::join!(
        get(client, vin, "details", wanted),
        get(client, vin, "doors", wanted),
        get(client, vin, "windows", wanted),
        get(client, vin, "engine_status", wanted),
        get(client, vin, "engine", wanted),
        get(client, vin, "diagnostics", wanted),
        get(client, vin, "brakes", wanted),
        get(client, vin, "fuel", wanted),
        get(client, vin, "odometer", wanted),
        get(client, vin, "statistics", wanted),
        get(client, vin, "tyres", wanted),
        get(client, vin, "warnings", wanted),
        get(client, vin, "command_accessibility", wanted),
        get(client, vin, "commands", wanted),
    );
    Snapshot {
        details,
        doors,
        windows,
        engine_status,
        engine,
        diagnostics,
        brakes,
        fuel,
        odometer,
        statistics,
        tyres,
        warnings,
        command_accessibility,
        commands,
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
