//! The one table of the Volvo endpoints this tool reads: for each, its API, its name (the
//! `endpoint` label and the `[schedule]` key), its path, the kind of fact it carries and its
//! default ages. The planner, the HTTP client's request labels, `check --plan` and the README
//! read it from here, so an endpoint is described once.

use crate::metrics::catalog::Origin;

/// What an endpoint says about the car, which decides when the planner asks it. The order is
/// the priority when Volvo's minute window cannot take every request of a run: what comes
/// first is asked first, the rest is deferred to the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fact {
    /// Shows that a sleeping car woke (an unlock, a door, a plug-in): asked every run.
    Wake,
    /// What an awake car is doing (engine, windows): every run while it is awake.
    State,
    /// What a trip changes (distance, fuel, battery, trip meters): every run while it drives.
    Trip,
    /// Uploaded when a trip ends (position, tyres, warnings): once after each trip.
    TripEnd,
    /// Slow-changing facts (service, fluids): on their tier only.
    Slow,
    /// Facts that hardly ever change (details, capabilities, the vehicle list).
    Static,
}

/// One endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub api: Origin,
    /// The `endpoint` label of the self-metrics.
    pub name: &'static str,
    /// The `[schedule]` key.
    pub key: &'static str,
    /// The path template after the API's prefix, as counted in `volvo_collect_requests_total`.
    pub template: &'static str,
    pub fact: Fact,
    /// Default minimum age in seconds between two requests (0: no minimum).
    pub floor: u64,
    /// Default tier: asked at least this often, whatever the car does (the safety net).
    pub net: u64,
}

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
const QUARTER: u64 = 900;

const fn ep(
    api: Origin,
    name: &'static str,
    key: &'static str,
    template: &'static str,
    fact: Fact,
    floor: u64,
    net: u64,
) -> Endpoint {
    Endpoint {
        api,
        name,
        key,
        template,
        fact,
        floor,
        net,
    }
}

use Fact::*;
use Origin::{ConnectedVehicle as CV, Energy as EN, ExtendedVehicle as EX, Location as LO};

/// Every endpoint, account-wide first.
pub static ALL: &[Endpoint] = &[
    ep(CV, "vehicles", "vehicles", "/vehicles", Static, DAY, DAY),
    ep(
        CV,
        "details",
        "details",
        "/vehicles/{vin}",
        Static,
        DAY,
        DAY,
    ),
    ep(CV, "doors", "doors", "/vehicles/{vin}/doors", Wake, 0, 0),
    ep(
        CV,
        "windows",
        "windows",
        "/vehicles/{vin}/windows",
        State,
        0,
        HOUR,
    ),
    ep(
        CV,
        "engine_status",
        "engine_status",
        "/vehicles/{vin}/engine-status",
        State,
        0,
        HOUR,
    ),
    ep(
        CV,
        "engine",
        "engine",
        "/vehicles/{vin}/engine",
        Slow,
        HOUR,
        HOUR,
    ),
    ep(
        CV,
        "diagnostics",
        "diagnostics",
        "/vehicles/{vin}/diagnostics",
        Slow,
        HOUR,
        HOUR,
    ),
    ep(
        CV,
        "brakes",
        "brakes",
        "/vehicles/{vin}/brakes",
        Slow,
        HOUR,
        HOUR,
    ),
    ep(CV, "fuel", "fuel", "/vehicles/{vin}/fuel", Trip, 0, QUARTER),
    ep(
        CV,
        "odometer",
        "odometer",
        "/vehicles/{vin}/odometer",
        Trip,
        0,
        HOUR,
    ),
    ep(
        CV,
        "statistics",
        "statistics",
        "/vehicles/{vin}/statistics",
        Trip,
        0,
        HOUR,
    ),
    ep(
        CV,
        "tyres",
        "tyres",
        "/vehicles/{vin}/tyres",
        TripEnd,
        0,
        HOUR,
    ),
    ep(
        CV,
        "warnings",
        "warnings",
        "/vehicles/{vin}/warnings",
        TripEnd,
        0,
        HOUR,
    ),
    ep(
        CV,
        "command_accessibility",
        "command_accessibility",
        "/vehicles/{vin}/command-accessibility",
        Slow,
        QUARTER,
        QUARTER,
    ),
    ep(
        CV,
        "commands",
        "commands",
        "/vehicles/{vin}/commands",
        Static,
        DAY,
        DAY,
    ),
    ep(
        EN,
        "capabilities",
        "energy_capabilities",
        "/vehicles/{vin}/capabilities",
        Static,
        DAY,
        DAY,
    ),
    ep(
        EN,
        "state",
        "energy_state",
        "/vehicles/{vin}/state",
        Wake,
        0,
        0,
    ),
    ep(
        LO,
        "location",
        "location",
        "/vehicles/{vin}/location",
        TripEnd,
        0,
        QUARTER,
    ),
    ep(
        EX,
        "resources",
        "extended_resources",
        "/vehicles/{vin}/resources",
        Static,
        DAY,
        DAY,
    ),
    ep(
        EX,
        "resource",
        "extended_values",
        "/vehicles/{vin}/resources/{resource}",
        Slow,
        HOUR,
        HOUR,
    ),
];

/// The Connected Vehicle endpoints of one car, in the order of the API's documentation.
pub const CONNECTED_VEHICLE: &[&str] = &[
    "details",
    "doors",
    "windows",
    "engine_status",
    "engine",
    "diagnostics",
    "brakes",
    "fuel",
    "odometer",
    "statistics",
    "tyres",
    "warnings",
    "command_accessibility",
    "commands",
];

/// The endpoint of `api` named `name`.
pub fn get(api: Origin, name: &str) -> &'static Endpoint {
    ALL.iter()
        .find(|e| e.api == api && e.name == name)
        .unwrap_or_else(|| panic!("{} has no endpoint {name}", api.label()))
}

/// The endpoint whose `[schedule]` key is `key`.
pub fn by_key(key: &str) -> Option<&'static Endpoint> {
    ALL.iter().find(|e| e.key == key)
}

/// The API's path prefix on Volvo's host.
pub fn prefix(api: Origin) -> &'static str {
    match api {
        Origin::ConnectedVehicle => crate::api::connected::PREFIX,
        Origin::Energy => crate::api::energy::PREFIX,
        Origin::Location => crate::api::location::PREFIX,
        Origin::ExtendedVehicle => crate::api::extended::PREFIX,
        Origin::Weather | Origin::Collector => "",
    }
}

impl Endpoint {
    /// The request path for one car (and one Extended Vehicle resource). The VIN is
    /// path-escaped so that no answer can change the path of the next request; resource names
    /// are checked before they get here (`extended::safe_name`).
    pub fn path(&self, vin: &str, resource: Option<&str>) -> String {
        let t = self
            .template
            .replace("{vin}", &crate::api::segment(vin))
            .replace("{resource}", resource.unwrap_or(""));
        format!("{}{t}", prefix(self.api))
    }

    /// Whether the endpoint is asked once per car (everything but the vehicle list).
    pub fn per_vehicle(&self) -> bool {
        self.template.contains("{vin}")
    }

    /// Whether the configuration collects this endpoint's API. The vehicle list is always
    /// needed when no VINs are configured.
    pub fn enabled(&self, sources: &crate::config::Sources) -> bool {
        match self.api {
            Origin::ConnectedVehicle => self.name == "vehicles" || sources.connected_vehicle,
            Origin::Energy => sources.energy,
            Origin::Location => sources.location,
            Origin::ExtendedVehicle => sources.extended_vehicle,
            Origin::Weather | Origin::Collector => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_are_unique_and_connected_vehicle_is_complete() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert!(a.key != b.key, "{}", a.key);
                assert!(!(a.api == b.api && a.name == b.name), "{}", a.name);
            }
        }
        for name in CONNECTED_VEHICLE {
            assert!(get(Origin::ConnectedVehicle, name).per_vehicle());
        }
        assert!(!get(Origin::ConnectedVehicle, "vehicles").per_vehicle());
    }

    #[test]
    fn paths_escape_what_answers_put_in_them() {
        let e = get(Origin::ExtendedVehicle, "resource");
        assert_eq!(
            e.path("YV1/..", Some("odometer")),
            "/extended-vehicle/v1/vehicles/YV1%2F%2E%2E/resources/odometer"
        );
        assert_eq!(
            get(Origin::Energy, "state").path("V", None),
            "/energy/v2/vehicles/V/state"
        );
    }
}
