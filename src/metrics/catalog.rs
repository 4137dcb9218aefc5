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
    /// When set, the full name of the companion family (`..._timestamp_seconds`) that carries
    /// the source time of each value, with the same labels but `state`.
    pub stamp: Option<&'static str>,
}

impl Family {
    /// The labels of the source-time companion: the family's but `state`, which is always
    /// the last (checked when the catalog compiles).
    pub fn stamp_labels(&self) -> &'static [&'static str] {
        match self.labels.split_last() {
            Some((&"state", rest)) => rest,
            _ => self.labels,
        }
    }
}

/// Whether `state`, where a family has it, is its last label.
const fn state_last(labels: &[&str]) -> bool {
    let mut i = 0;
    while i + 1 < labels.len() {
        if eq(labels[i], "state") {
            return false;
        }
        i += 1;
    }
    true
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `ident` is `name` without its `volvo_` prefix, upper-cased: the rule that names
/// every constant below after its metric. Checked when the catalog compiles.
const fn named_after(ident: &str, name: &str) -> bool {
    let (i, n) = (ident.as_bytes(), name.as_bytes());
    let prefix = b"volvo_";
    if n.len() != i.len() + prefix.len() {
        return false;
    }
    let mut k = 0;
    while k < prefix.len() {
        if n[k] != prefix[k] {
            return false;
        }
        k += 1;
    }
    let mut k = 0;
    while k < i.len() {
        if n[prefix.len() + k] != i[k].to_ascii_lowercase() {
            return false;
        }
        k += 1;
    }
    true
}

/// Defines one constant per family, named after its metric, and [`ALL`] listing every one of
/// them, so a family cannot be left out of the docs and the tests that read [`ALL`].
macro_rules! families {
    ($(
        $(#[$doc:meta])*
        $id:ident: $kind:ident, $origin:ident, $name:literal,
        [$($label:literal),* $(,)?],
        $stamp:expr,
        $help:literal;
    )*) => {
        $(
            $(#[$doc])*
            pub const $id: Family = Family {
                name: $name,
                help: $help,
                kind: Kind::$kind,
                labels: &[$($label),*],
                origin: Origin::$origin,
                stamp: $stamp,
            };
            const _: () = assert!(
                named_after(stringify!($id), $name),
                concat!(stringify!($id), " is not named after ", $name)
            );
            const _: () = assert!(
                state_last(&[$($label),*]),
                concat!(stringify!($id), ": `state` must be its last label")
            );
        )*

        /// Every family, for the docs and the tests that keep them in step.
        pub const ALL: &[&Family] = &[$(&$id),*];

        /// Every family with the name of its constant, for the test of the naming rule.
        #[cfg(test)]
        const CONSTANTS: &[(&str, &Family)] = &[$((stringify!($id), &$id)),*];
    };
}

families! {
    // ---- Connected Vehicle v2 ----------------------------------------------------------------
    VEHICLE_INFO: Gauge, ConnectedVehicle, "volvo_vehicle_info",
        [
            "vin", "account", "model", "model_year", "fuel_type", "gearbox", "external_colour",
            "upholstery", "steering",
        ],
        None,
        "Constant facts about the vehicle, and the account (config) it was collected with; always 1.";
    BATTERY_CAPACITY_JOULES: Gauge, ConnectedVehicle, "volvo_battery_capacity_joules",
        ["vin"],
        None,
        "Usable capacity of the traction battery, in joules (1 kWh = 3.6e6 J).";
    ODOMETER_METERS: Gauge, ConnectedVehicle, "volvo_odometer_meters",
        ["vin"],
        Some("volvo_odometer_timestamp_seconds"),
        "Total distance driven, in meters.";
    FUEL_AMOUNT_LITERS: Gauge, ConnectedVehicle, "volvo_fuel_amount_liters",
        ["vin"],
        Some("volvo_fuel_amount_timestamp_seconds"),
        "Fuel in the tank, in liters.";
    BATTERY_CHARGE_LEVEL_RATIO: Gauge, ConnectedVehicle, "volvo_battery_charge_level_ratio",
        ["vin"],
        Some("volvo_battery_charge_level_timestamp_seconds"),
        "Traction battery charge level from Connected Vehicle, 0 to 1.";
    DOOR_STATE: Gauge, ConnectedVehicle, "volvo_door_state",
        ["vin", "door", "state"],
        Some("volvo_door_timestamp_seconds"),
        "Door, hood, tailgate and tank lid state: 1 for the current state, 0 for the others.";
    WINDOW_STATE: Gauge, ConnectedVehicle, "volvo_window_state",
        ["vin", "window", "state"],
        Some("volvo_window_timestamp_seconds"),
        "Window and sunroof state: 1 for the current state, 0 for the others.";
    CENTRAL_LOCK_STATE: Gauge, ConnectedVehicle, "volvo_central_lock_state",
        ["vin", "state"],
        Some("volvo_central_lock_timestamp_seconds"),
        "Central lock state: 1 for the current state, 0 for the others.";
    ENGINE_RUNNING: Gauge, ConnectedVehicle, "volvo_engine_running",
        ["vin"],
        Some("volvo_engine_status_timestamp_seconds"),
        "1 when the engine is running, 0 when it is stopped.";
    TYRE_PRESSURE_WARNING_STATE: Gauge, ConnectedVehicle, "volvo_tyre_pressure_warning_state",
        ["vin", "tyre", "state"],
        Some("volvo_tyre_pressure_warning_timestamp_seconds"),
        "Tyre pressure warning state per tyre: 1 for the current state, 0 for the others.";
    LAMP_WARNING_STATE: Gauge, ConnectedVehicle, "volvo_lamp_warning_state",
        ["vin", "lamp", "state"],
        Some("volvo_lamp_warning_timestamp_seconds"),
        "Exterior lamp warning state per lamp: 1 for the current state, 0 for the others.";
    FLUID_LEVEL_WARNING_STATE: Gauge, ConnectedVehicle, "volvo_fluid_level_warning_state",
        ["vin", "fluid", "state"],
        Some("volvo_fluid_level_warning_timestamp_seconds"),
        "Brake fluid, washer fluid, engine coolant and oil level warnings: 1 for the current state, 0 for the others.";
    SERVICE_WARNING_STATE: Gauge, ConnectedVehicle, "volvo_service_warning_state",
        ["vin", "state"],
        Some("volvo_service_warning_timestamp_seconds"),
        "Service warning state: 1 for the current state, 0 for the others.";
    SERVICE_TRIGGER_STATE: Gauge, ConnectedVehicle, "volvo_service_trigger_state",
        ["vin", "state"],
        Some("volvo_service_trigger_timestamp_seconds"),
        "What triggered the service warning, as reported by the car; always 1.";
    DISTANCE_TO_SERVICE_METERS: Gauge, ConnectedVehicle, "volvo_distance_to_service_meters",
        ["vin"],
        Some("volvo_distance_to_service_timestamp_seconds"),
        "Distance left until the next service, in meters.";
    TIME_TO_SERVICE_SECONDS: Gauge, ConnectedVehicle, "volvo_time_to_service_seconds",
        ["vin"],
        Some("volvo_time_to_service_timestamp_seconds"),
        "Time left until the next service, in seconds (months count as 30.44 days).";
    ENGINE_RUNNING_TIME_TO_SERVICE_SECONDS: Gauge, ConnectedVehicle, "volvo_engine_running_time_to_service_seconds",
        ["vin"],
        Some("volvo_engine_running_time_to_service_timestamp_seconds"),
        "Engine running time left until the next service, in seconds.";
    TRIP_METER_METERS: Gauge, ConnectedVehicle, "volvo_trip_meter_meters",
        ["vin", "trip"],
        Some("volvo_trip_meter_timestamp_seconds"),
        "Trip meter distance, in meters (trip: manual, automatic, trip1, trip2).";
    AVERAGE_SPEED_METERS_PER_SECOND: Gauge, ConnectedVehicle, "volvo_average_speed_meters_per_second",
        ["vin", "trip"],
        Some("volvo_average_speed_timestamp_seconds"),
        "Average speed of the trip, in meters per second.";
    AVERAGE_FUEL_CONSUMPTION_LITERS_PER_METER: Gauge, ConnectedVehicle, "volvo_average_fuel_consumption_liters_per_meter",
        ["vin", "trip"],
        Some("volvo_average_fuel_consumption_timestamp_seconds"),
        "Average fuel consumption of the trip, in liters per meter (multiply by 100000 for l/100 km).";
    AVERAGE_ENERGY_CONSUMPTION_JOULES_PER_METER: Gauge, ConnectedVehicle, "volvo_average_energy_consumption_joules_per_meter",
        ["vin", "trip"],
        Some("volvo_average_energy_consumption_timestamp_seconds"),
        "Average energy consumption of the trip (or since the last charge), in joules per meter (divide by 36 for kWh/100 km).";
    DISTANCE_TO_EMPTY_METERS: Gauge, ConnectedVehicle, "volvo_distance_to_empty_meters",
        ["vin", "source"],
        Some("volvo_distance_to_empty_timestamp_seconds"),
        "Estimated range, in meters (source: tank, battery, or total for cars that report one figure).";
    COMMAND_AVAILABILITY_STATE: Gauge, ConnectedVehicle, "volvo_command_availability_state",
        ["vin", "state"],
        Some("volvo_command_availability_timestamp_seconds"),
        "Whether the car accepts remote commands now: 1 for the current state, 0 for the others.";
    COMMAND_UNAVAILABLE_REASON_STATE: Gauge, ConnectedVehicle, "volvo_command_unavailable_reason_state",
        ["vin", "state"],
        None,
        "Why the car does not accept remote commands now: 1 for the current reason, 0 for the others.";
    COMMAND_SUPPORTED: Gauge, ConnectedVehicle, "volvo_command_supported",
        ["vin", "command"],
        None,
        "Remote commands the car supports; 1 for each listed command.";
    // ---- Energy v2 -------------------------------------------------------------------------------
    ENERGY_SUPPORTED: Gauge, Energy, "volvo_energy_supported",
        ["vin"],
        None,
        "1 when the Energy API supports this car, 0 when its capabilities say it does not.";
    ENERGY_FIELD_SUPPORTED: Gauge, Energy, "volvo_energy_field_supported",
        ["vin", "field"],
        None,
        "1 when the car's energy capabilities list the field as supported, else 0.";
    ENERGY_FIELD_ERROR: Gauge, Energy, "volvo_energy_field_error",
        ["vin", "field", "code"],
        None,
        "An energy field that answered status ERROR, with Volvo's error code; always 1. Such a field has no value.";
    ENERGY_BATTERY_CHARGE_LEVEL_RATIO: Gauge, Energy, "volvo_energy_battery_charge_level_ratio",
        ["vin"],
        Some("volvo_energy_battery_charge_level_timestamp_seconds"),
        "Traction battery charge level, 0 to 1.";
    ENERGY_ELECTRIC_RANGE_METERS: Gauge, Energy, "volvo_energy_electric_range_meters",
        ["vin"],
        Some("volvo_energy_electric_range_timestamp_seconds"),
        "Electric range, in meters.";
    ENERGY_CHARGER_CONNECTION_STATE: Gauge, Energy, "volvo_energy_charger_connection_state",
        ["vin", "state"],
        Some("volvo_energy_charger_connection_timestamp_seconds"),
        "Charger connection status: 1 for the current state, 0 for the others.";
    ENERGY_CHARGING_STATE: Gauge, Energy, "volvo_energy_charging_state",
        ["vin", "state"],
        Some("volvo_energy_charging_timestamp_seconds"),
        "Charging status: 1 for the current state, 0 for the others.";
    ENERGY_CHARGING_TYPE_STATE: Gauge, Energy, "volvo_energy_charging_type_state",
        ["vin", "state"],
        Some("volvo_energy_charging_type_timestamp_seconds"),
        "Charging type (AC, DC, NONE): 1 for the current type, 0 for the others.";
    ENERGY_CHARGER_POWER_STATE: Gauge, Energy, "volvo_energy_charger_power_state",
        ["vin", "state"],
        Some("volvo_energy_charger_power_timestamp_seconds"),
        "Charger power status: 1 for the current state, 0 for the others.";
    ENERGY_TIME_TO_TARGET_CHARGE_SECONDS: Gauge, Energy, "volvo_energy_time_to_target_charge_seconds",
        ["vin"],
        Some("volvo_energy_time_to_target_charge_timestamp_seconds"),
        "Estimated time until the battery reaches the target charge level, in seconds.";
    ENERGY_ESTIMATED_CHARGE_END_TIMESTAMP_SECONDS: Gauge, Energy, "volvo_energy_estimated_charge_end_timestamp_seconds",
        ["vin"],
        None,
        "Estimated end of the current charge, in Unix seconds: the source time of the time to target plus that time. Only while the car is charging.";
    ENERGY_TARGET_CHARGE_LEVEL_RATIO: Gauge, Energy, "volvo_energy_target_charge_level_ratio",
        ["vin"],
        Some("volvo_energy_target_charge_level_timestamp_seconds"),
        "Target battery charge level, 0 to 1.";
    ENERGY_CHARGING_CURRENT_LIMIT_AMPERES: Gauge, Energy, "volvo_energy_charging_current_limit_amperes",
        ["vin"],
        Some("volvo_energy_charging_current_limit_timestamp_seconds"),
        "Charging current limit, in amperes.";
    ENERGY_CHARGING_POWER_WATTS: Gauge, Energy, "volvo_energy_charging_power_watts",
        ["vin"],
        Some("volvo_energy_charging_power_timestamp_seconds"),
        "Charging power, in watts.";
    // ---- Location v1 -----------------------------------------------------------------------------
    LOCATION_LATITUDE_DEGREES: Gauge, Location, "volvo_location_latitude_degrees",
        ["vin"],
        Some("volvo_location_timestamp_seconds"),
        "Latitude of the car's last reported position (WGS 84), rounded to location.precision.";
    LOCATION_LONGITUDE_DEGREES: Gauge, Location, "volvo_location_longitude_degrees",
        ["vin"],
        Some("volvo_location_timestamp_seconds"),
        "Longitude of the car's last reported position (WGS 84), rounded to location.precision.";
    LOCATION_ALTITUDE_METERS: Gauge, Location, "volvo_location_altitude_meters",
        ["vin"],
        Some("volvo_location_timestamp_seconds"),
        "Altitude of the car's last reported position, in meters.";
    LOCATION_HEADING_DEGREES: Gauge, Location, "volvo_location_heading_degrees",
        ["vin"],
        Some("volvo_location_timestamp_seconds"),
        "Heading at the last reported position, in degrees.";
    LOCATION_HOME_DISTANCE_METERS: Gauge, Location, "volvo_location_home_distance_meters",
        ["vin"],
        Some("volvo_location_timestamp_seconds"),
        "Great-circle distance from the configured home point to the car's last reported position, in meters.";
    // ---- Extended Vehicle v1 ---------------------------------------------------------------------
    EXTENDED_METERS: Gauge, ExtendedVehicle, "volvo_extended_meters",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a distance, in meters.";
    EXTENDED_LITERS: Gauge, ExtendedVehicle, "volvo_extended_liters",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a volume, in liters.";
    EXTENDED_RATIO: Gauge, ExtendedVehicle, "volvo_extended_ratio",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources given in percent, as 0 to 1.";
    EXTENDED_SECONDS: Gauge, ExtendedVehicle, "volvo_extended_seconds",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a duration, in seconds.";
    EXTENDED_METERS_PER_SECOND: Gauge, ExtendedVehicle, "volvo_extended_meters_per_second",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a speed, in meters per second.";
    EXTENDED_WATTS: Gauge, ExtendedVehicle, "volvo_extended_watts",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a power, in watts.";
    EXTENDED_AMPERES: Gauge, ExtendedVehicle, "volvo_extended_amperes",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle resources measured as a current, in amperes.";
    EXTENDED_VALUE: Gauge, ExtendedVehicle, "volvo_extended_value",
        ["vin", "resource"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle numeric resources that have no unit.";
    EXTENDED_STATE: Gauge, ExtendedVehicle, "volvo_extended_state",
        ["vin", "resource", "state"],
        Some("volvo_extended_timestamp_seconds"),
        "Extended Vehicle enumerated resources: the current value as the state label; always 1.";
    // ---- weather at the car (optional) -------------------------------------------------------------
    WEATHER_TEMPERATURE_CELSIUS: Gauge, Weather, "volvo_weather_temperature_celsius",
        ["vin"],
        Some("volvo_weather_timestamp_seconds"),
        "Air temperature at the car's last reported position, from OpenWeatherMap, in degrees Celsius.";
    WEATHER_FEELS_LIKE_CELSIUS: Gauge, Weather, "volvo_weather_feels_like_celsius",
        ["vin"],
        Some("volvo_weather_timestamp_seconds"),
        "Perceived temperature at the car's last reported position, in degrees Celsius.";
    WEATHER_HUMIDITY_RATIO: Gauge, Weather, "volvo_weather_humidity_ratio",
        ["vin"],
        Some("volvo_weather_timestamp_seconds"),
        "Relative humidity at the car's last reported position, 0 to 1.";
    WEATHER_PRESSURE_PASCALS: Gauge, Weather, "volvo_weather_pressure_pascals",
        ["vin"],
        Some("volvo_weather_timestamp_seconds"),
        "Atmospheric pressure at sea level at the car's last reported position, in pascals.";
    // ---- records the collector keeps (trips, charges) and the configured prices -------------------
    TRIPS_TOTAL: Counter, Collector, "volvo_trips_total",
        ["vin"],
        None,
        "Trips, worked out by the collector from the car's uploads (the engine ran or the odometer moved, between two parked readings) and kept in the state file.";
    TRIP_DISTANCE_METERS_TOTAL: Counter, Collector, "volvo_trip_distance_meters_total",
        ["vin"],
        None,
        "Distance of the counted trips, in meters: for each, the odometer's difference between the parked readings on either side.";
    CHARGING_SESSIONS_TOTAL: Counter, Collector, "volvo_charging_sessions_total",
        ["vin"],
        None,
        "Charging sessions, worked out by the collector from the car's uploads (CHARGING, or a rising battery level while plugged in, until DONE, IDLE, unplugged or 30 minutes without a rise) and kept in the state file.";
    CHARGED_ENERGY_JOULES_TOTAL: Counter, Collector, "volvo_charged_energy_joules_total",
        ["vin"],
        None,
        "Energy added by the counted charging sessions, in joules: the rise of the battery level times the usable capacity. Sessions of a car without a known capacity add nothing.";
    LAST_TRIP_START_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_last_trip_start_timestamp_seconds",
        ["vin"],
        None,
        "Start of the last trip (the first upload showing the car awake), in Unix seconds; absent when the collector saw only its end.";
    LAST_TRIP_END_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_last_trip_end_timestamp_seconds",
        ["vin"],
        None,
        "End of the last trip (the upload showing the car stopped), in Unix seconds.";
    LAST_TRIP_DISTANCE_METERS: Gauge, Collector, "volvo_last_trip_distance_meters",
        ["vin"],
        None,
        "Distance of the last trip, in meters.";
    LAST_TRIP_DURATION_SECONDS: Gauge, Collector, "volvo_last_trip_duration_seconds",
        ["vin"],
        None,
        "Duration of the last trip, from its start to its end, in seconds; absent when the collector saw only its end.";
    LAST_TRIP_ENERGY_JOULES: Gauge, Collector, "volvo_last_trip_energy_joules",
        ["vin"],
        None,
        "Battery energy used by the last trip, in joules: the fall of the battery level times the usable capacity; absent without a known capacity.";
    LAST_TRIP_FUEL_LITERS: Gauge, Collector, "volvo_last_trip_fuel_liters",
        ["vin"],
        None,
        "Fuel used by the last trip, in liters (a refill is left out); absent for a car without a fuel reading.";
    LAST_CHARGE_START_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_last_charge_start_timestamp_seconds",
        ["vin"],
        None,
        "Start of the last charging session, in Unix seconds.";
    LAST_CHARGE_END_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_last_charge_end_timestamp_seconds",
        ["vin"],
        None,
        "End of the last charging session, in Unix seconds.";
    LAST_CHARGE_ENERGY_JOULES: Gauge, Collector, "volvo_last_charge_energy_joules",
        ["vin"],
        None,
        "Energy added by the last charging session, in joules: the rise of the battery level times the usable capacity; absent without a known capacity.";
    LAST_CHARGE_BATTERY_START_RATIO: Gauge, Collector, "volvo_last_charge_battery_start_ratio",
        ["vin"],
        None,
        "Battery charge level at the start of the last charging session, 0 to 1.";
    LAST_CHARGE_BATTERY_END_RATIO: Gauge, Collector, "volvo_last_charge_battery_end_ratio",
        ["vin"],
        None,
        "Battery charge level at the end of the last charging session, 0 to 1.";
    LAST_CHARGE_AVERAGE_POWER_WATTS: Gauge, Collector, "volvo_last_charge_average_power_watts",
        ["vin"],
        None,
        "Average power of the last charging session (its energy over its duration), in watts; absent without a known capacity.";
    ELECTRICITY_PRICE_PER_JOULE: Gauge, Collector, "volvo_electricity_price_per_joule",
        ["currency"],
        None,
        "Price of charged energy from [prices], per joule (the configured price per kWh divided by 3.6e6).";
    FUEL_PRICE_PER_LITER: Gauge, Collector, "volvo_fuel_price_per_liter",
        ["currency"],
        None,
        "Price of fuel from [prices], per liter.";
    // ---- the collector itself ----------------------------------------------------------------------
    COLLECT_API_SUCCESS: Gauge, Collector, "volvo_collect_api_success",
        ["vin", "api"],
        None,
        "1 when every endpoint of this API answered usable data for the vehicle in the last run, else 0.";
    COLLECT_API_DURATION_SECONDS: Gauge, Collector, "volvo_collect_api_duration_seconds",
        ["vin", "api"],
        None,
        "The longest request to this API for the vehicle in the last run, in seconds; absent when the run asked it nothing (its answers were replayed).";
    COLLECT_ENDPOINT_ERROR: Gauge, Collector, "volvo_collect_endpoint_error",
        ["vin", "api", "endpoint", "reason"],
        None,
        "An endpoint that failed in the last run, with the reason (timeout, transport, rate_limited, quota, unauthorized, missing_scope, gone, server_error, client_error, decode; not_available only on the vehicle list, where a block hides every car); always 1. An endpoint a car does not support or is not served is no failure: it has its own family.";
    COLLECT_ENDPOINT_NOT_SUPPORTED: Gauge, Collector, "volvo_collect_endpoint_not_supported",
        ["vin", "api", "endpoint"],
        None,
        "An endpoint the car does not support (HTTP 404); it is asked again only after a day; always 1.";
    COLLECT_ENDPOINT_NOT_AVAILABLE: Gauge, Collector, "volvo_collect_endpoint_not_available",
        ["vin", "api", "endpoint"],
        None,
        "An endpoint Volvo does not serve to this car or application in its region or market (reason not_available: e.g. Location outside Europe, the Middle East and Africa); not a failure; asked again only after a day; always 1.";
    COLLECT_API_UNAVAILABLE_UNTIL_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_api_unavailable_until_timestamp_seconds",
        ["account", "api"],
        None,
        "An API that answered that it is gone (Extended Vehicle's shutdown), and until when it is not asked, in Unix seconds.";
    COLLECT_RETRIES_TOTAL: Counter, Collector, "volvo_collect_retries_total",
        ["account", "api"],
        None,
        "Requests retried after a transport error, 5xx or 429, by API; kept across runs.";
    COLLECT_QUOTA_EXHAUSTED: Gauge, Collector, "volvo_collect_quota_exhausted",
        ["account"],
        None,
        "1 while Volvo says the API key's daily request quota is used up (no requests are made until it is replenished), else 0.";
    COLLECT_QUOTA_RESET_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_quota_reset_timestamp_seconds",
        ["account"],
        None,
        "When the exhausted daily quota is replenished, in Unix seconds.";
    COLLECT_FIELDS_SKIPPED: Gauge, Collector, "volvo_collect_fields_skipped",
        ["vin", "api", "reason"],
        None,
        "Fields skipped in the last run because their value, unit or timestamp was unusable.";
    COLLECT_RUN_SUCCESS: Gauge, Collector, "volvo_collect_run_success",
        [],
        None,
        "1 when the last run collected everything, else 0. An output's own failure (exit 74) does not change it: that output could not carry it anyway.";
    COLLECT_RUN_DURATION_SECONDS: Gauge, Collector, "volvo_collect_run_duration_seconds",
        [],
        None,
        "Wall time of the last run up to delivery, in seconds.";
    COLLECT_RUN_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_run_timestamp_seconds",
        [],
        None,
        "When the last run finished collecting, in Unix seconds.";
    COLLECT_LAST_SUCCESS_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_last_success_timestamp_seconds",
        ["account"],
        None,
        "When a run last collected everything without error, in Unix seconds (kept across runs).";
    COLLECT_VEHICLES: Gauge, Collector, "volvo_collect_vehicles",
        ["account"],
        None,
        "Vehicles collected in the last run.";
    COLLECT_VEHICLE_MODE: Gauge, Collector, "volvo_collect_vehicle_mode",
        ["vin", "mode"],
        None,
        "What the car was doing by its uploads, which decides what the next run asks: asleep (only what shows a wake), parked_awake, driving (trip facts every run) or charging (energy every run); 1 for the current mode.";
    COLLECT_FUTURE_UPLOADS: Gauge, Collector, "volvo_collect_future_uploads",
        ["vin", "api"],
        None,
        "This run's answers of the API that carried an upload time more than a minute after the collector's clock (the car's clock ahead, or a bad value); each such time is taken as now for every decision; absent when none.";
    COLLECT_ENDPOINT_DEFERRED: Gauge, Collector, "volvo_collect_endpoint_deferred",
        ["vin", "api", "endpoint"],
        None,
        "1 for an endpoint deferred to the next run because Volvo's per-minute limit or the API key's daily budget was reached; its last answer, if any, is replayed. Not a failure, but with no answer to replay the car's API is not collected (volvo_collect_api_success 0). The vehicle list's has an empty vin.";
    COLLECT_PLANNED_REQUESTS_PER_DAY: Gauge, Collector, "volvo_collect_planned_requests_per_day",
        ["account"],
        None,
        "Requests a day the account's API key would need in the worst case (every car awake all day), stretched to fit 9,500 of Volvo's 10,000: the floor of service of a full day.";
    COLLECT_ESTIMATED_REQUESTS_PER_DAY: Gauge, Collector, "volvo_collect_estimated_requests_per_day",
        ["account"],
        None,
        "Requests a day the account's API key is estimated to use on a typical day (cars asleep but for two trips and a charge).";
    COLLECT_PLAN_EVERY_RUNS: Gauge, Collector, "volvo_collect_plan_every_runs",
        ["account"],
        None,
        "Every how many runs a driving or awake car's every-run endpoints are asked in this run: 1 unless the API key's budget for the rest of the day is short.";
    COLLECT_PLAN_TIER_STRETCH: Gauge, Collector, "volvo_collect_plan_tier_stretch",
        ["account", "tier"],
        None,
        "How many times longer than configured the safety nets of a tier (daily, hourly, quarter_hour) are in this run: 1 unless the API key's budget is short.";
    COLLECT_KEY_REQUESTS_TODAY: Gauge, Collector, "volvo_collect_key_requests_today",
        ["account"],
        None,
        "Requests the account's API key spent since Volvo's last daily reset, counted by the collector: every run, hand run and check of every account on the key.";
    COLLECT_KEY_REQUESTS_PROJECTED: Gauge, Collector, "volvo_collect_key_requests_projected",
        ["account"],
        None,
        "Requests the account's API key would have spent by Volvo's next reset at today's pace so far.";
    COLLECT_KEY_REQUESTS_ALLOWED: Gauge, Collector, "volvo_collect_key_requests_allowed",
        ["account"],
        None,
        "Requests this run of the account could spend: what the API key has left beyond the floor of service for the rest of the day, the account's share of it.";
    COLLECT_REQUESTS_TOTAL: Counter, Collector, "volvo_collect_requests_total",
        ["account", "api", "endpoint", "status"],
        None,
        "API requests made, by API, endpoint template and HTTP status (or error kind); kept across runs.";
    COLLECT_ACCESS_TOKEN_EXPIRY_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_access_token_expiry_timestamp_seconds",
        ["account"],
        None,
        "When the current access token expires, in Unix seconds.";
    COLLECT_REFRESH_TOKEN_ROTATED_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_refresh_token_rotated_timestamp_seconds",
        ["account"],
        None,
        "When the refresh token was last rotated, in Unix seconds; it dies after 7 days unused.";
    COLLECT_LOGIN_TIMESTAMP_SECONDS: Gauge, Collector, "volvo_collect_login_timestamp_seconds",
        ["account"],
        None,
        "When the user last logged in with `volvo-collect login`, in Unix seconds; the grant lasts about 6 months.";
    COLLECT_LOGIN_NEEDED: Gauge, Collector, "volvo_collect_login_needed",
        ["account"],
        None,
        "1 when the last run could not get an access token and a new `volvo-collect login` is needed, else 0.";
}

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
        if let Some(stamp) = f.stamp {
            if !out.iter().any(|r| r.name == stamp) {
                out.push(Row {
                    name: stamp.to_string(),
                    kind: Kind::Gauge,
                    labels: f.stamp_labels().to_vec(),
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
    let stamp = f.stamp.unwrap_or(f.name);
    let what = stamp
        .strip_suffix("_timestamp_seconds")
        .unwrap_or(stamp)
        .trim_start_matches("volvo_")
        .replace('_', " ");
    let by = match f.origin {
        Origin::Weather => "OpenWeatherMap (the time of its observation)",
        _ => "the car",
    };
    format!("Source time of the {what} value(s), as reported by {by}, in Unix seconds.")
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
    fn constants_are_named_after_their_metrics() {
        assert_eq!(CONSTANTS.len(), ALL.len());
        for (ident, f) in CONSTANTS {
            let name = format!("volvo_{}", ident.to_lowercase());
            assert_eq!(name, f.name, "constant {ident}");
        }
    }

    #[test]
    fn stamp_companions_are_literal_timestamp_names() {
        for f in ALL {
            if let Some(stamp) = f.stamp {
                assert!(stamp.starts_with("volvo_"), "{stamp}");
                assert!(stamp.ends_with("_timestamp_seconds"), "{stamp}");
            }
        }
    }

    #[test]
    fn state_sets_end_in_state_and_so_do_only_they() {
        // One 0/1 series per state, the state in the `state` label: the name ends in `_state`,
        // and the source time is the same name with `_timestamp_seconds` in place of `_state`.
        for f in ALL {
            let base = f.name.strip_suffix("_state");
            assert_eq!(
                f.labels.contains(&"state"),
                base.is_some(),
                "{}: a family with a state label, and only such a family, ends in _state",
                f.name
            );
            if let (Some(base), Some(stamp)) = (base, f.stamp) {
                assert_eq!(stamp, format!("{base}_timestamp_seconds"), "{}", f.name);
            }
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
