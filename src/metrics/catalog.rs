//! Every metric family this tool can emit, with its type, labels and HELP text, in one list.
//! The mappers refer to these constants, and the README's metrics table is checked against
//! [`ALL`], so names cannot drift between code, docs and dashboards.

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

pub use crate::endpoints::Origin;

/// One metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub origin: Origin,
    /// When set, each value also has its source time in `<stamp>_timestamp_seconds`, with the
    /// same labels but `state`.
    pub stamp: Option<&'static str>,
}

impl Family {
    /// The companion family that carries the source time of this family's values.
    pub fn stamp_name(&self) -> Option<String> {
        self.stamp.map(|s| format!("{s}_timestamp_seconds"))
    }

    pub fn stamp_labels(&self) -> Vec<&'static str> {
        self.labels
            .iter()
            .copied()
            .filter(|l| *l != "state")
            .collect()
    }
}

macro_rules! family {
    ($id:ident, $kind:ident, $origin:ident, $name:literal, [$($label:literal),*], $stamp:expr, $help:literal) => {
        pub const $id: Family = Family {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: &[$($label),*],
            origin: Origin::$origin,
            stamp: $stamp,
        };
    };
}

// ---- Connected Vehicle v2 ----------------------------------------------------------------
family!(
    VEHICLE_INFO,
    Gauge,
    ConnectedVehicle,
    "volvo_vehicle_info",
    [
        "vin",
        "account",
        "model",
        "model_year",
        "fuel_type",
        "gearbox",
        "external_colour",
        "upholstery",
        "steering"
    ],
    None,
    "Constant facts about the vehicle, and the account (config) it was collected with; always 1."
);
family!(
    BATTERY_CAPACITY,
    Gauge,
    ConnectedVehicle,
    "volvo_battery_capacity_joules",
    ["vin"],
    None,
    "Usable capacity of the traction battery, in joules (1 kWh = 3.6e6 J)."
);
family!(
    ODOMETER,
    Gauge,
    ConnectedVehicle,
    "volvo_odometer_meters",
    ["vin"],
    Some("volvo_odometer"),
    "Total distance driven, in meters."
);
family!(
    FUEL_AMOUNT,
    Gauge,
    ConnectedVehicle,
    "volvo_fuel_amount_liters",
    ["vin"],
    Some("volvo_fuel_amount"),
    "Fuel in the tank, in liters."
);
family!(
    BATTERY_LEVEL,
    Gauge,
    ConnectedVehicle,
    "volvo_battery_charge_level_ratio",
    ["vin"],
    Some("volvo_battery_charge_level"),
    "Traction battery charge level from Connected Vehicle, 0 to 1."
);
family!(
    DOOR,
    Gauge,
    ConnectedVehicle,
    "volvo_door_state",
    ["vin", "door", "state"],
    Some("volvo_door"),
    "Door, hood, tailgate and tank lid state: 1 for the current state, 0 for the others."
);
family!(
    WINDOW,
    Gauge,
    ConnectedVehicle,
    "volvo_window_state",
    ["vin", "window", "state"],
    Some("volvo_window"),
    "Window and sunroof state: 1 for the current state, 0 for the others."
);
family!(
    CENTRAL_LOCK,
    Gauge,
    ConnectedVehicle,
    "volvo_central_lock_state",
    ["vin", "state"],
    Some("volvo_central_lock"),
    "Central lock state: 1 for the current state, 0 for the others."
);
family!(
    ENGINE_RUNNING,
    Gauge,
    ConnectedVehicle,
    "volvo_engine_running",
    ["vin"],
    Some("volvo_engine_status"),
    "1 when the engine is running, 0 when it is stopped."
);
family!(
    TYRE_WARNING,
    Gauge,
    ConnectedVehicle,
    "volvo_tyre_warning",
    ["vin", "tyre", "state"],
    Some("volvo_tyre_warning"),
    "Tyre pressure warning state per tyre: 1 for the current state, 0 for the others."
);
family!(
    LAMP_WARNING,
    Gauge,
    ConnectedVehicle,
    "volvo_lamp_warning",
    ["vin", "lamp", "state"],
    Some("volvo_lamp_warning"),
    "Exterior lamp warning state per lamp: 1 for the current state, 0 for the others."
);
family!(FLUID_WARNING, Gauge, ConnectedVehicle, "volvo_fluid_level_warning", ["vin", "fluid", "state"], Some("volvo_fluid_level_warning"),
    "Brake fluid, washer fluid, engine coolant and oil level warnings: 1 for the current state, 0 for the others.");
family!(
    SERVICE_WARNING,
    Gauge,
    ConnectedVehicle,
    "volvo_service_warning",
    ["vin", "state"],
    Some("volvo_service_warning"),
    "Service warning state: 1 for the current state, 0 for the others."
);
family!(
    SERVICE_TRIGGER,
    Gauge,
    ConnectedVehicle,
    "volvo_service_trigger",
    ["vin", "state"],
    Some("volvo_service_trigger"),
    "What triggered the service warning, as reported by the car; always 1."
);
family!(
    DISTANCE_TO_SERVICE,
    Gauge,
    ConnectedVehicle,
    "volvo_distance_to_service_meters",
    ["vin"],
    Some("volvo_distance_to_service"),
    "Distance left until the next service, in meters."
);
family!(
    TIME_TO_SERVICE,
    Gauge,
    ConnectedVehicle,
    "volvo_time_to_service_seconds",
    ["vin"],
    Some("volvo_time_to_service"),
    "Time left until the next service, in seconds (months count as 30.44 days)."
);
family!(
    ENGINE_HOURS_TO_SERVICE,
    Gauge,
    ConnectedVehicle,
    "volvo_engine_running_time_to_service_seconds",
    ["vin"],
    Some("volvo_engine_running_time_to_service"),
    "Engine running time left until the next service, in seconds."
);
family!(
    TRIP_METER,
    Gauge,
    ConnectedVehicle,
    "volvo_trip_meter_meters",
    ["vin", "trip"],
    Some("volvo_trip_meter"),
    "Trip meter distance, in meters (trip: manual, automatic, trip1, trip2)."
);
family!(
    AVERAGE_SPEED,
    Gauge,
    ConnectedVehicle,
    "volvo_average_speed_meters_per_second",
    ["vin", "trip"],
    Some("volvo_average_speed"),
    "Average speed of the trip, in meters per second."
);
family!(
    AVERAGE_FUEL,
    Gauge,
    ConnectedVehicle,
    "volvo_average_fuel_consumption_liters_per_meter",
    ["vin", "trip"],
    Some("volvo_average_fuel_consumption"),
    "Average fuel consumption of the trip, in liters per meter (multiply by 100000 for l/100 km)."
);
family!(AVERAGE_ENERGY, Gauge, ConnectedVehicle, "volvo_average_energy_consumption_joules_per_meter", ["vin", "trip"], Some("volvo_average_energy_consumption"),
    "Average energy consumption of the trip (or since the last charge), in joules per meter (divide by 36 for kWh/100 km).");
family!(
    DISTANCE_TO_EMPTY,
    Gauge,
    ConnectedVehicle,
    "volvo_distance_to_empty_meters",
    ["vin", "source"],
    Some("volvo_distance_to_empty"),
    "Estimated range, in meters (source: tank, battery, or total for cars that report one figure)."
);
family!(
    COMMAND_AVAILABILITY,
    Gauge,
    ConnectedVehicle,
    "volvo_command_availability",
    ["vin", "state"],
    Some("volvo_command_availability"),
    "Whether the car accepts remote commands now: 1 for the current state, 0 for the others."
);
family!(
    COMMAND_UNAVAILABLE_REASON,
    Gauge,
    ConnectedVehicle,
    "volvo_command_unavailable_reason",
    ["vin", "state"],
    None,
    "Why the car does not accept remote commands now: 1 for the current reason, 0 for the others."
);
family!(
    COMMAND_SUPPORTED,
    Gauge,
    ConnectedVehicle,
    "volvo_command_supported",
    ["vin", "command"],
    None,
    "Remote commands the car supports; 1 for each listed command."
);

// ---- Energy v2 -------------------------------------------------------------------------------
family!(
    ENERGY_SUPPORTED,
    Gauge,
    Energy,
    "volvo_energy_supported",
    ["vin"],
    None,
    "1 when the Energy API supports this car, 0 when its capabilities say it does not."
);
family!(
    ENERGY_FIELD_SUPPORTED,
    Gauge,
    Energy,
    "volvo_energy_field_supported",
    ["vin", "field"],
    None,
    "1 when the car's energy capabilities list the field as supported, else 0."
);
family!(ENERGY_FIELD_ERROR, Gauge, Energy, "volvo_energy_field_error", ["vin", "field", "code"], None,
    "An energy field that answered status ERROR, with Volvo's error code; always 1. Such a field has no value.");
family!(
    ENERGY_BATTERY_LEVEL,
    Gauge,
    Energy,
    "volvo_energy_battery_charge_level_ratio",
    ["vin"],
    Some("volvo_energy_battery_charge_level"),
    "Traction battery charge level, 0 to 1."
);
family!(
    ENERGY_RANGE,
    Gauge,
    Energy,
    "volvo_energy_electric_range_meters",
    ["vin"],
    Some("volvo_energy_electric_range"),
    "Electric range, in meters."
);
family!(
    ENERGY_CONNECTION,
    Gauge,
    Energy,
    "volvo_energy_charger_connection_state",
    ["vin", "state"],
    Some("volvo_energy_charger_connection"),
    "Charger connection status: 1 for the current state, 0 for the others."
);
family!(
    ENERGY_CHARGING,
    Gauge,
    Energy,
    "volvo_energy_charging_state",
    ["vin", "state"],
    Some("volvo_energy_charging"),
    "Charging status: 1 for the current state, 0 for the others."
);
family!(
    ENERGY_CHARGING_TYPE,
    Gauge,
    Energy,
    "volvo_energy_charging_type",
    ["vin", "state"],
    Some("volvo_energy_charging_type"),
    "Charging type (AC, DC, NONE): 1 for the current type, 0 for the others."
);
family!(
    ENERGY_POWER_STATUS,
    Gauge,
    Energy,
    "volvo_energy_charger_power_state",
    ["vin", "state"],
    Some("volvo_energy_charger_power"),
    "Charger power status: 1 for the current state, 0 for the others."
);
family!(
    ENERGY_TIME_TO_TARGET,
    Gauge,
    Energy,
    "volvo_energy_time_to_target_charge_seconds",
    ["vin"],
    Some("volvo_energy_time_to_target_charge"),
    "Estimated time until the battery reaches the target charge level, in seconds."
);
family!(
    ENERGY_CHARGE_END,
    Gauge,
    Energy,
    "volvo_energy_estimated_charge_end_timestamp_seconds",
    ["vin"],
    None,
    "Estimated end of the current charge, in Unix seconds: the source time of the time to target plus that time. Only while the car is charging."
);
family!(
    ENERGY_TARGET_LEVEL,
    Gauge,
    Energy,
    "volvo_energy_target_charge_level_ratio",
    ["vin"],
    Some("volvo_energy_target_charge_level"),
    "Target battery charge level, 0 to 1."
);
family!(
    ENERGY_CURRENT_LIMIT,
    Gauge,
    Energy,
    "volvo_energy_charging_current_limit_amperes",
    ["vin"],
    Some("volvo_energy_charging_current_limit"),
    "Charging current limit, in amperes."
);
family!(
    ENERGY_POWER,
    Gauge,
    Energy,
    "volvo_energy_charging_power_watts",
    ["vin"],
    Some("volvo_energy_charging_power"),
    "Charging power, in watts."
);

// ---- Location v1 -----------------------------------------------------------------------------
family!(
    LOCATION_LATITUDE,
    Gauge,
    Location,
    "volvo_location_latitude_degrees",
    ["vin"],
    Some("volvo_location"),
    "Latitude of the car's last reported position (WGS 84), rounded to location.precision."
);
family!(
    LOCATION_LONGITUDE,
    Gauge,
    Location,
    "volvo_location_longitude_degrees",
    ["vin"],
    Some("volvo_location"),
    "Longitude of the car's last reported position (WGS 84), rounded to location.precision."
);
family!(
    LOCATION_ALTITUDE,
    Gauge,
    Location,
    "volvo_location_altitude_meters",
    ["vin"],
    Some("volvo_location"),
    "Altitude of the car's last reported position, in meters."
);
family!(
    LOCATION_HEADING,
    Gauge,
    Location,
    "volvo_location_heading_degrees",
    ["vin"],
    Some("volvo_location"),
    "Heading at the last reported position, in degrees."
);
family!(LOCATION_HOME_DISTANCE, Gauge, Location, "volvo_location_home_distance_meters", ["vin"], Some("volvo_location"),
    "Great-circle distance from the configured home point to the car's last reported position, in meters.");

// ---- Extended Vehicle v1 ---------------------------------------------------------------------
family!(
    EXTENDED_METERS,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_meters",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a distance, in meters."
);
family!(
    EXTENDED_LITERS,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_liters",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a volume, in liters."
);
family!(
    EXTENDED_RATIO,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_ratio",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources given in percent, as 0 to 1."
);
family!(
    EXTENDED_SECONDS,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_seconds",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a duration, in seconds."
);
family!(
    EXTENDED_METERS_PER_SECOND,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_meters_per_second",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a speed, in meters per second."
);
family!(
    EXTENDED_WATTS,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_watts",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a power, in watts."
);
family!(
    EXTENDED_AMPERES,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_amperes",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle resources measured as a current, in amperes."
);
family!(
    EXTENDED_VALUE,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_value",
    ["vin", "resource"],
    Some("volvo_extended"),
    "Extended Vehicle numeric resources that have no unit."
);
family!(
    EXTENDED_STATE,
    Gauge,
    ExtendedVehicle,
    "volvo_extended_state",
    ["vin", "resource", "state"],
    Some("volvo_extended"),
    "Extended Vehicle enumerated resources: the current value as the state label; always 1."
);

// ---- the collector itself ----------------------------------------------------------------------
// ---- weather at the car (optional) -------------------------------------------------------------
family!(
    WEATHER_TEMPERATURE,
    Gauge,
    Weather,
    "volvo_weather_temperature_celsius",
    ["vin"],
    Some("volvo_weather"),
    "Air temperature at the car's last reported position, from OpenWeatherMap, in degrees Celsius."
);
family!(
    WEATHER_FEELS_LIKE,
    Gauge,
    Weather,
    "volvo_weather_feels_like_celsius",
    ["vin"],
    Some("volvo_weather"),
    "Perceived temperature at the car's last reported position, in degrees Celsius."
);
family!(
    WEATHER_HUMIDITY,
    Gauge,
    Weather,
    "volvo_weather_humidity_ratio",
    ["vin"],
    Some("volvo_weather"),
    "Relative humidity at the car's last reported position, 0 to 1."
);
family!(
    WEATHER_PRESSURE,
    Gauge,
    Weather,
    "volvo_weather_pressure_pascals",
    ["vin"],
    Some("volvo_weather"),
    "Atmospheric pressure at sea level at the car's last reported position, in pascals."
);

family!(UP, Gauge, Collector, "volvo_collect_api_success", ["vin", "api"], None,
    "1 when every endpoint of this API answered usable data for the vehicle in the last run, else 0.");
family!(
    API_DURATION,
    Gauge,
    Collector,
    "volvo_collect_api_duration_seconds",
    ["vin", "api"],
    None,
    "Wall time spent fetching this API for the vehicle in the last run, in seconds."
);
family!(ENDPOINT_ERROR, Gauge, Collector, "volvo_collect_endpoint_error", ["vin", "api", "endpoint", "reason"], None,
    "An endpoint that failed in the last run, with the reason (timeout, transport, rate_limited, quota, unauthorized, not_supported, gone, server_error, client_error, decode); always 1.");
family!(NOT_SUPPORTED, Gauge, Collector, "volvo_collect_endpoint_not_supported", ["vin", "api", "endpoint"], None,
    "An endpoint the car does not support (HTTP 404); it is asked again only after a day; always 1.");
family!(
    API_UNAVAILABLE,
    Gauge,
    Collector,
    "volvo_collect_api_unavailable_until_timestamp_seconds",
    ["account", "api"], None,
    "An API that answered that it is gone (Extended Vehicle's shutdown), and until when it is not asked, in Unix seconds.");
family!(
    RETRIES,
    Counter,
    Collector,
    "volvo_collect_retries_total",
    ["account", "api"],
    None,
    "Requests retried after a transport error, 5xx or 429, by API; kept across runs."
);
family!(
    QUOTA_EXHAUSTED,
    Gauge,
    Collector,
    "volvo_collect_quota_exhausted",
    ["account"], None,
    "1 while Volvo says the API key's daily request quota is used up (no requests are made until it is replenished), else 0.");
family!(
    QUOTA_RESET,
    Gauge,
    Collector,
    "volvo_collect_quota_reset_timestamp_seconds",
    ["account"],
    None,
    "When the exhausted daily quota is replenished, in Unix seconds."
);
family!(
    FIELDS_SKIPPED,
    Gauge,
    Collector,
    "volvo_collect_fields_skipped",
    ["vin", "api", "reason"],
    None,
    "Fields skipped in the last run because their value, unit or timestamp was unusable."
);
family!(
    RUN_SUCCESS,
    Gauge,
    Collector,
    "volvo_collect_run_success",
    [],
    None,
    "1 when the last run collected everything, else 0. An output's own failure (exit 74) does not change it: that output could not carry it anyway."
);
family!(
    RUN_DURATION,
    Gauge,
    Collector,
    "volvo_collect_run_duration_seconds",
    [],
    None,
    "Wall time of the last run up to delivery, in seconds."
);
family!(
    RUN_END,
    Gauge,
    Collector,
    "volvo_collect_run_timestamp_seconds",
    [],
    None,
    "When the last run finished collecting, in Unix seconds."
);
family!(
    LAST_SUCCESS,
    Gauge,
    Collector,
    "volvo_collect_last_success_timestamp_seconds",
    ["account"],
    None,
    "When a run last collected everything without error, in Unix seconds (kept across runs)."
);
family!(
    VEHICLES,
    Gauge,
    Collector,
    "volvo_collect_vehicles",
    ["account"],
    None,
    "Vehicles collected in the last run."
);
family!(
    VEHICLE_MODE,
    Gauge,
    Collector,
    "volvo_collect_vehicle_mode",
    ["vin", "mode"], None,
    "What the car was doing by its uploads, which decides what the next run asks: asleep (only what shows a wake), parked_awake, driving (trip facts every run) or charging (energy every run); 1 for the current mode.");
family!(
    ENDPOINT_DEFERRED,
    Gauge,
    Collector,
    "volvo_collect_endpoint_deferred",
    ["vin", "api", "endpoint"], None,
    "1 for an endpoint deferred to the next run because Volvo's per-minute limit was reached; its last answer, if any, is replayed. Not a failure.");
family!(
    PLANNED_REQUESTS,
    Gauge,
    Collector,
    "volvo_collect_planned_requests_per_day",
    ["account"], None,
    "Requests a day the account's API key is planned for in the worst case (every car awake all day), at most 9,000 of Volvo's 10,000.");
family!(
    PLANNED_ESTIMATE,
    Gauge,
    Collector,
    "volvo_collect_estimated_requests_per_day",
    ["account"], None,
    "Requests a day the account's API key is estimated to use on a typical day (cars asleep but for two trips and a charge).");
family!(
    PLAN_EVERY_RUNS,
    Gauge,
    Collector,
    "volvo_collect_plan_every_runs",
    ["account"], None,
    "Every how many runs a driving or awake car's every-run endpoints are asked: 1 unless the API key's cars need more than its daily quota allows.");
family!(
    REQUESTS,
    Counter,
    Collector,
    "volvo_collect_requests_total",
    ["account", "api", "endpoint", "status"], None,
    "API requests made, by API, endpoint template and HTTP status (or error kind); kept across runs.");
family!(
    TOKEN_EXPIRY,
    Gauge,
    Collector,
    "volvo_collect_access_token_expiry_timestamp_seconds",
    ["account"],
    None,
    "When the current access token expires, in Unix seconds."
);
family!(
    TOKEN_ROTATED,
    Gauge,
    Collector,
    "volvo_collect_refresh_token_rotated_timestamp_seconds",
    ["account"],
    None,
    "When the refresh token was last rotated, in Unix seconds; it dies after 7 days unused."
);
family!(
    TOKEN_LOGIN,
    Gauge,
    Collector,
    "volvo_collect_login_timestamp_seconds",
    ["account"], None,
    "When the user last logged in with `volvo-collect login`, in Unix seconds; the grant lasts about 6 months.");
family!(
    LOGIN_NEEDED,
    Gauge,
    Collector,
    "volvo_collect_login_needed",
    ["account"], None,
    "1 when the last run could not get an access token and a new `volvo-collect login` is needed, else 0.");

/// Every family, for the docs and the tests that keep them in step.
pub const ALL: &[&Family] = &[
    &VEHICLE_INFO,
    &BATTERY_CAPACITY,
    &ODOMETER,
    &FUEL_AMOUNT,
    &BATTERY_LEVEL,
    &DOOR,
    &WINDOW,
    &CENTRAL_LOCK,
    &ENGINE_RUNNING,
    &TYRE_WARNING,
    &LAMP_WARNING,
    &FLUID_WARNING,
    &SERVICE_WARNING,
    &SERVICE_TRIGGER,
    &DISTANCE_TO_SERVICE,
    &TIME_TO_SERVICE,
    &ENGINE_HOURS_TO_SERVICE,
    &TRIP_METER,
    &AVERAGE_SPEED,
    &AVERAGE_FUEL,
    &AVERAGE_ENERGY,
    &DISTANCE_TO_EMPTY,
    &COMMAND_AVAILABILITY,
    &COMMAND_UNAVAILABLE_REASON,
    &COMMAND_SUPPORTED,
    &ENERGY_SUPPORTED,
    &ENERGY_FIELD_SUPPORTED,
    &ENERGY_FIELD_ERROR,
    &ENERGY_BATTERY_LEVEL,
    &ENERGY_RANGE,
    &ENERGY_CONNECTION,
    &ENERGY_CHARGING,
    &ENERGY_CHARGING_TYPE,
    &ENERGY_POWER_STATUS,
    &ENERGY_TIME_TO_TARGET,
    &ENERGY_CHARGE_END,
    &ENERGY_TARGET_LEVEL,
    &ENERGY_CURRENT_LIMIT,
    &ENERGY_POWER,
    &LOCATION_LATITUDE,
    &LOCATION_LONGITUDE,
    &LOCATION_ALTITUDE,
    &LOCATION_HEADING,
    &LOCATION_HOME_DISTANCE,
    &EXTENDED_METERS,
    &EXTENDED_LITERS,
    &EXTENDED_RATIO,
    &EXTENDED_SECONDS,
    &EXTENDED_METERS_PER_SECOND,
    &EXTENDED_WATTS,
    &EXTENDED_AMPERES,
    &EXTENDED_VALUE,
    &EXTENDED_STATE,
    &WEATHER_TEMPERATURE,
    &WEATHER_FEELS_LIKE,
    &WEATHER_HUMIDITY,
    &WEATHER_PRESSURE,
    &UP,
    &API_DURATION,
    &ENDPOINT_ERROR,
    &NOT_SUPPORTED,
    &ENDPOINT_DEFERRED,
    &VEHICLE_MODE,
    &PLANNED_REQUESTS,
    &PLANNED_ESTIMATE,
    &PLAN_EVERY_RUNS,
    &API_UNAVAILABLE,
    &RETRIES,
    &QUOTA_EXHAUSTED,
    &QUOTA_RESET,
    &FIELDS_SKIPPED,
    &RUN_SUCCESS,
    &RUN_DURATION,
    &RUN_END,
    &LAST_SUCCESS,
    &VEHICLES,
    &REQUESTS,
    &TOKEN_EXPIRY,
    &TOKEN_ROTATED,
    &TOKEN_LOGIN,
    &LOGIN_NEEDED,
];

/// One emitted metric name: a family or a `_timestamp_seconds` companion.
pub struct Row {
    pub name: String,
    pub kind: Kind,
    pub labels: Vec<&'static str>,
    pub origin: Origin,
    pub help: String,
}

/// Every metric name the tool can emit (families and their companions), sorted by name.
pub fn rows() -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    for f in ALL {
        out.push(Row {
            name: f.name.to_string(),
            kind: f.kind,
            labels: f.labels.to_vec(),
            origin: f.origin,
            help: f.help.to_string(),
        });
        if let Some(stamp) = f.stamp_name() {
            if !out.iter().any(|r| r.name == stamp) {
                out.push(Row {
                    name: stamp,
                    kind: Kind::Gauge,
                    labels: f.stamp_labels(),
                    origin: f.origin,
                    help: stamp_help(f),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// HELP of a `_timestamp_seconds` companion family.
pub fn stamp_help(f: &Family) -> String {
    let what = f
        .stamp
        .unwrap_or(f.name)
        .trim_start_matches("volvo_")
        .replace('_', " ");
    format!("Source time of the {what} value(s), as reported by the car, in Unix seconds.")
}

/// The README's metrics table, made from the catalog (a test keeps the README in step).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| metric | type | labels | source | meaning |\n|---|---|---|---|---|\n");
    for r in rows() {
        let kind = match r.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {} | {} | {} |\n",
            r.name,
            r.labels.join(", "),
            r.origin.label(),
            r.help.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_follow_conventions() {
        let rows = rows();
        for w in rows.windows(2) {
            assert_ne!(w[0].name, w[1].name, "duplicate family name");
        }
        for r in &rows {
            let n = &r.name;
            assert!(n.starts_with("volvo_"), "{n}");
            assert_eq!(n.ends_with("_total"), r.kind == Kind::Counter, "{n}");
            assert!(!n.contains("percent"), "{n}: use _ratio");
        }
        for f in ALL {
            assert!(
                f.labels.is_empty() || f.origin == Origin::Collector || f.labels[0] == "vin",
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn stamp_companions_share_labels() {
        // Families sharing one companion must agree on its labels, or the registry refuses.
        for a in ALL {
            for b in ALL {
                if a.stamp.is_some() && a.stamp == b.stamp {
                    assert_eq!(
                        a.stamp_labels(),
                        b.stamp_labels(),
                        "{} vs {}",
                        a.name,
                        b.name
                    );
                }
            }
        }
    }
}
