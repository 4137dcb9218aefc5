//! Connected Vehicle API v2: the vehicle list and the fourteen read endpoints of a car.
//! Responses are wrapped in `{"data": ...}`; value objects are `{value, unit?, timestamp?}`
//! where `value` may be a number or a numeric string.

use serde::Deserialize;
use serde_json::Value;

use super::answers::CarAnswers;
use super::client::Client;
use super::{parse, Answer, ApiError};
use crate::config::valid_vin;
use crate::endpoints::{Endpoint, Origin};
use crate::secret::shown_value;
use crate::values::{Field, NoArray, Uploaded};

/// The API's path prefix (see the endpoint table).
pub const PREFIX: &str = Origin::ConnectedVehicle.prefix();

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
    #[serde(default, deserialize_with = "crate::values::any_text")]
    pub timestamp: Option<String>,
}

impl Uploaded for ValueObject {
    fn uploaded_at(&self) -> Option<i64> {
        let t = crate::values::timestamp(self.timestamp.as_deref()?).ok()?;
        Some(t as i64)
    }
}

answer! {
    /// `doors`: the doors, hood, tailgate, tank lid and the central lock.
    pub struct Doors<ValueObject> {
        front_left_door: "frontLeftDoor",
        front_right_door: "frontRightDoor",
        rear_left_door: "rearLeftDoor",
        rear_right_door: "rearRightDoor",
        hood: "hood",
        tailgate: "tailgate",
        tank_lid: "tankLid",
        central_lock: "centralLock",
    }
}

answer! {
    /// `windows`: the side windows and the sunroof.
    pub struct Windows<ValueObject> {
        front_left_window: "frontLeftWindow",
        front_right_window: "frontRightWindow",
        rear_left_window: "rearLeftWindow",
        rear_right_window: "rearRightWindow",
        sunroof: "sunroof",
    }
}

answer! {
    /// `engine_status`: RUNNING or STOPPED.
    pub struct EngineStatus<ValueObject> {
        engine_status: "engineStatus",
    }
}

answer! {
    /// `engine`: the engine's fluid warnings.
    pub struct Engine<ValueObject> {
        oil_level_warning: "oilLevelWarning",
        engine_coolant_level_warning: "engineCoolantLevelWarning",
    }
}

answer! {
    /// `diagnostics`: washer fluid and the service.
    pub struct Diagnostics<ValueObject> {
        washer_fluid_level_warning: "washerFluidLevelWarning",
        service_warning: "serviceWarning",
        service_trigger: "serviceTrigger",
        distance_to_service: "distanceToService",
        time_to_service: "timeToService",
        engine_hours_to_service: "engineHoursToService",
    }
}

answer! {
    /// `brakes`: the brake fluid warning.
    pub struct Brakes<ValueObject> {
        brake_fluid_level_warning: "brakeFluidLevelWarning",
    }
}

answer! {
    /// `fuel`: the tank and, on cars with a battery, its charge level.
    pub struct Fuel<ValueObject> {
        fuel_amount: "fuelAmount",
        battery_charge_level: "batteryChargeLevel",
    }
}

answer! {
    /// `odometer`.
    pub struct Odometer<ValueObject> {
        odometer: "odometer",
    }
}

answer! {
    /// `statistics`: the trip meters, averages and distances to empty seen in real cars, and the
    /// spec's `tripMeter1`, `tripMeter2` and `distanceToEmpty`.
    pub struct Statistics<ValueObject> {
        trip_meter_manual: "tripMeterManual",
        trip_meter_automatic: "tripMeterAutomatic",
        trip_meter_1: "tripMeter1",
        trip_meter_2: "tripMeter2",
        average_speed: "averageSpeed",
        average_speed_automatic: "averageSpeedAutomatic",
        average_fuel_consumption: "averageFuelConsumption",
        average_fuel_consumption_automatic: "averageFuelConsumptionAutomatic",
        average_energy_consumption: "averageEnergyConsumption",
        average_energy_consumption_automatic: "averageEnergyConsumptionAutomatic",
        average_energy_consumption_since_charge: "averageEnergyConsumptionSinceCharge",
        distance_to_empty_tank: "distanceToEmptyTank",
        distance_to_empty_battery: "distanceToEmptyBattery",
        distance_to_empty: "distanceToEmpty",
    }
}

answer! {
    /// `tyres`: a pressure warning state per tyre, not a pressure.
    pub struct Tyres<ValueObject> {
        front_left: "frontLeft",
        front_right: "frontRight",
        rear_left: "rearLeft",
        rear_right: "rearRight",
    }
}

answer! {
    /// `warnings`: the 23 exterior lamp warnings.
    pub struct Warnings<ValueObject> {
        brake_light_center_warning: "brakeLightCenterWarning",
        brake_light_left_warning: "brakeLightLeftWarning",
        brake_light_right_warning: "brakeLightRightWarning",
        fog_light_front_warning: "fogLightFrontWarning",
        fog_light_rear_warning: "fogLightRearWarning",
        position_light_front_left_warning: "positionLightFrontLeftWarning",
        position_light_front_right_warning: "positionLightFrontRightWarning",
        position_light_rear_left_warning: "positionLightRearLeftWarning",
        position_light_rear_right_warning: "positionLightRearRightWarning",
        high_beam_left_warning: "highBeamLeftWarning",
        high_beam_right_warning: "highBeamRightWarning",
        low_beam_left_warning: "lowBeamLeftWarning",
        low_beam_right_warning: "lowBeamRightWarning",
        daytime_running_light_left_warning: "daytimeRunningLightLeftWarning",
        daytime_running_light_right_warning: "daytimeRunningLightRightWarning",
        turn_indication_front_left_warning: "turnIndicationFrontLeftWarning",
        turn_indication_front_right_warning: "turnIndicationFrontRightWarning",
        turn_indication_rear_left_warning: "turnIndicationRearLeftWarning",
        turn_indication_rear_right_warning: "turnIndicationRearRightWarning",
        registration_plate_light_warning: "registrationPlateLightWarning",
        side_mark_lights_warning: "sideMarkLightsWarning",
        hazard_lights_warning: "hazardLightsWarning",
        reverse_lights_warning: "reverseLightsWarning",
    }
}

/// One entry of the vehicle list. Any JSON is accepted: an entry that is no object, or whose
/// `vin` is missing, `null` or not text, names no car, and must not hide the others.
#[derive(Debug)]
pub struct VehicleRef(Value);

impl<'de> Deserialize<'de> for VehicleRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(VehicleRef)
    }
}

impl VehicleRef {
    /// The entry's VIN as text, if it has one.
    fn vin(&self) -> Option<&str> {
        self.0.get("vin").and_then(Value::as_str)
    }
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
    #[serde(default, deserialize_with = "crate::values::any_text")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Command {
    pub command: String,
}

/// `vehicles`: the VINs of the account's cars.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleList(pub Vec<String>);

/// `commands`: the remote commands the car supports.
#[derive(Debug)]
pub struct Commands(pub Vec<Field<Command>>);

impl Uploaded for VehicleList {
    fn uploaded_at(&self) -> Option<i64> {
        None
    }
}

impl Uploaded for Details {
    fn uploaded_at(&self) -> Option<i64> {
        None
    }
}

impl Uploaded for Commands {
    fn uploaded_at(&self) -> Option<i64> {
        None
    }
}

impl Uploaded for CommandAccessibility {
    fn uploaded_at(&self) -> Option<i64> {
        match &self.availability_status {
            Field::Ok(a) => crate::values::timestamp(a.timestamp.as_deref()?)
                .ok()
                .map(|t| t as i64),
            Field::Invalid(_) => None,
        }
    }
}

/// Connected Vehicle as a run uses it.
pub struct ConnectedVehicle;

impl super::Api for ConnectedVehicle {
    fn origin(&self) -> Origin {
        Origin::ConnectedVehicle
    }

    fn decode(&self, endpoint: Endpoint, body: &str) -> Result<Answer, ApiError> {
        Ok(match endpoint {
            Endpoint::Vehicles => match vehicles(body)? {
                // The account's truth about its cars: an empty answer is no answer.
                l if l.0.is_empty() => {
                    return Err(ApiError::Decode("the vehicle list names no car".into()))
                }
                l => l.into(),
            },
            Endpoint::Details => data::<NoArray<Details>>(body)?.0.into(),
            Endpoint::Doors => data::<Doors>(body)?.into(),
            Endpoint::Windows => data::<Windows>(body)?.into(),
            Endpoint::EngineStatus => data::<EngineStatus>(body)?.into(),
            Endpoint::Engine => data::<Engine>(body)?.into(),
            Endpoint::Diagnostics => data::<Diagnostics>(body)?.into(),
            Endpoint::Brakes => data::<Brakes>(body)?.into(),
            Endpoint::Fuel => data::<Fuel>(body)?.into(),
            Endpoint::Odometer => data::<Odometer>(body)?.into(),
            Endpoint::Statistics => data::<Statistics>(body)?.into(),
            Endpoint::Tyres => data::<Tyres>(body)?.into(),
            Endpoint::Warnings => data::<Warnings>(body)?.into(),
            Endpoint::CommandAccessibility => data::<NoArray<CommandAccessibility>>(body)?.0.into(),
            Endpoint::Commands => Commands(data(body)?).into(),
            other => return Err(super::not_this_api(other, Origin::ConnectedVehicle)),
        })
    }
}

/// Everything one car answered; each endpoint succeeds or fails on its own.
#[derive(Debug)]
pub struct Snapshot<'a> {
    pub details: Result<&'a Details, ApiError>,
    pub doors: Result<&'a Doors, ApiError>,
    pub windows: Result<&'a Windows, ApiError>,
    pub engine_status: Result<&'a EngineStatus, ApiError>,
    pub engine: Result<&'a Engine, ApiError>,
    pub diagnostics: Result<&'a Diagnostics, ApiError>,
    pub brakes: Result<&'a Brakes, ApiError>,
    pub fuel: Result<&'a Fuel, ApiError>,
    pub odometer: Result<&'a Odometer, ApiError>,
    pub statistics: Result<&'a Statistics, ApiError>,
    pub tyres: Result<&'a Tyres, ApiError>,
    pub warnings: Result<&'a Warnings, ApiError>,
    pub command_accessibility: Result<&'a CommandAccessibility, ApiError>,
    pub commands: Result<&'a Commands, ApiError>,
}

/// `GET /vehicles` exactly once, without retries (see [`Client::get_json_once`]).
pub async fn vehicles_once(client: &Client) -> Result<Vec<String>, ApiError> {
    let e = Endpoint::Vehicles;
    let list: Data<Vec<VehicleRef>> = client.get_json_once(e, &e.path("", None)).await?;
    Ok(listed(list.data))
}

/// The VINs of a vehicle list answer.
fn vehicles(body: &str) -> Result<VehicleList, ApiError> {
    parse::<Data<Vec<VehicleRef>>>(body).map(|l| VehicleList(listed(l.data)))
}

/// The list's VINs, each once, in its order. An entry that is no VIN (empty, `null`, missing)
/// names no car that can be asked: it is left out with a warning rather than asked for ever,
/// and the other cars are read as usual.
fn listed(refs: Vec<VehicleRef>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(refs.len());
    let mut vins = Vec::with_capacity(refs.len());
    for entry in &refs {
        match entry.vin() {
            Some(vin) if valid_vin(vin) => {
                if seen.insert(vin) {
                    vins.push(vin.to_string());
                }
            }
            Some(vin) => tracing::warn!(
                vin = %shown_value(vin),
                "the vehicle list names something that is no VIN (17 letters and digits); left out"
            ),
            None => tracing::warn!(
                "the vehicle list has an entry without a VIN (none, null or not text); left out"
            ),
        }
    }
    vins
}

fn data<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    parse::<Data<T>>(body).map(|d| d.data)
}

impl<'a> Snapshot<'a> {
    /// One car's answers, each endpoint on its own.
    pub fn of(car: &'a CarAnswers) -> Snapshot<'a> {
        Snapshot {
            details: car.typed(Endpoint::Details),
            doors: car.typed(Endpoint::Doors),
            windows: car.typed(Endpoint::Windows),
            engine_status: car.typed(Endpoint::EngineStatus),
            engine: car.typed(Endpoint::Engine),
            diagnostics: car.typed(Endpoint::Diagnostics),
            brakes: car.typed(Endpoint::Brakes),
            fuel: car.typed(Endpoint::Fuel),
            odometer: car.typed(Endpoint::Odometer),
            statistics: car.typed(Endpoint::Statistics),
            tyres: car.typed(Endpoint::Tyres),
            warnings: car.typed(Endpoint::Warnings),
            command_accessibility: car.typed(Endpoint::CommandAccessibility),
            commands: car.typed(Endpoint::Commands),
        }
    }

    /// Each endpoint's failure, if any.
    pub fn errors(&self) -> Vec<(Endpoint, &ApiError)> {
        let all: [(Endpoint, Option<&ApiError>); 14] = [
            (Endpoint::Details, self.details.as_ref().err()),
            (Endpoint::Doors, self.doors.as_ref().err()),
            (Endpoint::Windows, self.windows.as_ref().err()),
            (Endpoint::EngineStatus, self.engine_status.as_ref().err()),
            (Endpoint::Engine, self.engine.as_ref().err()),
            (Endpoint::Diagnostics, self.diagnostics.as_ref().err()),
            (Endpoint::Brakes, self.brakes.as_ref().err()),
            (Endpoint::Fuel, self.fuel.as_ref().err()),
            (Endpoint::Odometer, self.odometer.as_ref().err()),
            (Endpoint::Statistics, self.statistics.as_ref().err()),
            (Endpoint::Tyres, self.tyres.as_ref().err()),
            (Endpoint::Warnings, self.warnings.as_ref().err()),
            (
                Endpoint::CommandAccessibility,
                self.command_accessibility.as_ref().err(),
            ),
            (Endpoint::Commands, self.commands.as_ref().err()),
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
        let f: Data<Fuel> = serde_json::from_value(json!({"data": {
            "fuelAmount": {"value": "31.5", "unit": "l"},
            "batteryChargeLevel": {"value": 80, "timestamp": "2026-05-01T12:00:00Z", "extra": 1},
            "somethingNew": {"value": 1}
        }}))
        .unwrap();
        assert!(
            matches!(&f.data.fuel_amount, Some(Field::Ok(o)) if o.value == json!("31.5") && o.timestamp.is_none())
        );
        assert!(matches!(&f.data.battery_charge_level, Some(Field::Ok(o)) if o.unit.is_none()));
        assert!(!f.data.is_empty());
    }

    #[test]
    fn a_bad_member_never_fails_the_answer() {
        let d: Data<Doors> = serde_json::from_value(json!({"data": {
            "hood": {"unit": "l"},
            "tailgate": "weird",
            "tankLid": null,
            "centralLock": {"value": "LOCKED"}
        }}))
        .unwrap();
        let d = d.data;
        assert!(matches!(d.hood, Some(Field::Invalid(_))));
        assert!(matches!(d.tailgate, Some(Field::Invalid(_))));
        assert!(
            d.tank_lid.is_none(),
            "a null is an absent value (Volvo sends nulls for members it used to leave out)"
        );
        assert!(d.front_left_door.is_none());
        assert_eq!(d.central_lock().key, "centralLock");
        assert!(matches!(d.central_lock().field, Some(Field::Ok(_))));
    }

    #[test]
    fn an_answer_is_an_object() {
        assert!(serde_json::from_value::<Data<Doors>>(json!({"data": []})).is_err());
        assert!(serde_json::from_value::<Data<Doors>>(json!({"data": 3})).is_err());
        let empty: Data<Doors> = serde_json::from_value(json!({"data": {}})).unwrap();
        assert!(empty.data.is_empty());
        // A repeated member keeps its last value, as a map would.
        let twice: Data<Odometer> =
            serde_json::from_str(r#"{"data":{"odometer":{"value":1},"odometer":{"value":2}}}"#)
                .unwrap();
        assert!(matches!(&twice.data.odometer, Some(Field::Ok(o)) if o.value == json!(2)));
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
