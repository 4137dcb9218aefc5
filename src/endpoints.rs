//! The one table of the Volvo endpoints this tool reads: for each, its API, its name (the
//! `endpoint` label and the `[schedule]` key), its path, the kind of fact it carries and its
//! default ages. The planner, the HTTP client's request labels, `check --plan` and the README
//! read it from here, so an endpoint is described once.

/// Where data comes from: one of Volvo's four APIs (its name is the `api` label, the
/// `[sources]` key and the module name everywhere), the weather, or the collector itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    ConnectedVehicle,
    Energy,
    Location,
    ExtendedVehicle,
    /// OpenWeatherMap, at the car's last position (optional).
    Weather,
    Collector,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::ConnectedVehicle => "connected_vehicle",
            Origin::Energy => "energy",
            Origin::Location => "location",
            Origin::ExtendedVehicle => "extended_vehicle",
            Origin::Weather => "weather",
            Origin::Collector => "collector",
        }
    }
}

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
    /// Its one name: the `endpoint` label of the self-metrics and the `[schedule]` key.
    pub name: &'static str,
    /// The path template after the API's prefix, as counted in `volvo_collect_requests_total`.
    pub template: &'static str,
    pub fact: Fact,
    /// Default minimum age in seconds between two requests (0: no minimum).
    pub floor: u64,
    /// Default tier: asked at least this often, whatever the car does (the safety net).
    pub net: u64,
    /// The Volvo ID scopes the endpoint needs.
    pub scopes: &'static [&'static str],
}

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
const QUARTER: u64 = 900;

const fn ep(
    api: Origin,
    name: &'static str,
    template: &'static str,
    fact: Fact,
    floor: u64,
    net: u64,
) -> Endpoint {
    Endpoint {
        api,
        name,
        template,
        fact,
        floor,
        net,
        scopes: &[],
    }
}

impl Endpoint {
    const fn needs(self, scopes: &'static [&'static str]) -> Endpoint {
        Endpoint { scopes, ..self }
    }
}

const EXVE: &[&str] = &[
    "exve:battery_charge_level",
    "exve:diagnostics",
    "exve:doors_status",
    "exve:engine_status",
    "exve:fuel_status",
    "exve:lock_status",
    "exve:odometer_status",
    "exve:tyre_status",
    "exve:windows_status",
];

use Fact::*;
use Origin::{ConnectedVehicle as CV, Energy as EN, ExtendedVehicle as EX, Location as LO};

/// Every endpoint, account-wide first.
pub static ALL: &[Endpoint] = &[
    ep(CV, "vehicles", "/vehicles", Static, DAY, DAY).needs(&["conve:vehicle_relation"]),
    ep(CV, "details", "/vehicles/{vin}", Static, DAY, DAY).needs(&["conve:vehicle_relation"]),
    ep(CV, "doors", "/vehicles/{vin}/doors", Wake, 0, 0)
        .needs(&["conve:doors_status", "conve:lock_status"]),
    ep(CV, "windows", "/vehicles/{vin}/windows", State, 0, HOUR).needs(&["conve:windows_status"]),
    ep(
        CV,
        "engine_status",
        "/vehicles/{vin}/engine-status",
        State,
        0,
        HOUR,
    )
    .needs(&["conve:engine_status"]),
    ep(CV, "engine", "/vehicles/{vin}/engine", Slow, HOUR, HOUR)
        .needs(&["conve:diagnostics_engine_status"]),
    ep(
        CV,
        "diagnostics",
        "/vehicles/{vin}/diagnostics",
        Slow,
        HOUR,
        HOUR,
    )
    .needs(&["conve:diagnostics_workshop"]),
    ep(CV, "brakes", "/vehicles/{vin}/brakes", Slow, HOUR, HOUR).needs(&["conve:brake_status"]),
    ep(CV, "fuel", "/vehicles/{vin}/fuel", Trip, 0, QUARTER)
        .needs(&["conve:fuel_status", "conve:battery_charge_level"]),
    ep(CV, "odometer", "/vehicles/{vin}/odometer", Trip, 0, HOUR).needs(&["conve:odometer_status"]),
    ep(
        CV,
        "statistics",
        "/vehicles/{vin}/statistics",
        Trip,
        0,
        HOUR,
    )
    .needs(&["conve:trip_statistics"]),
    ep(CV, "tyres", "/vehicles/{vin}/tyres", TripEnd, 0, HOUR).needs(&["conve:tyre_status"]),
    ep(CV, "warnings", "/vehicles/{vin}/warnings", TripEnd, 0, HOUR).needs(&["conve:warnings"]),
    ep(
        CV,
        "command_accessibility",
        "/vehicles/{vin}/command-accessibility",
        Slow,
        QUARTER,
        QUARTER,
    )
    .needs(&["conve:command_accessibility"]),
    ep(CV, "commands", "/vehicles/{vin}/commands", Static, DAY, DAY).needs(&["conve:commands"]),
    ep(
        EN,
        "energy_capabilities",
        "/vehicles/{vin}/capabilities",
        Static,
        DAY,
        DAY,
    )
    .needs(&["energy:capability:read"]),
    ep(EN, "energy_state", "/vehicles/{vin}/state", Wake, 0, 0).needs(&["energy:state:read"]),
    ep(
        LO,
        "location",
        "/vehicles/{vin}/location",
        TripEnd,
        0,
        QUARTER,
    )
    .needs(&["location:read"]),
    ep(
        EX,
        "extended_resources",
        "/vehicles/{vin}/resources",
        Static,
        DAY,
        DAY,
    )
    .needs(EXVE),
    ep(
        EX,
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

/// The endpoint named `name` (a `[schedule]` key, an `endpoint` label).
pub fn by_name(name: &str) -> Option<&'static Endpoint> {
    ALL.iter().find(|e| e.name == name)
}

/// A value (a VIN from the vehicle list) as one URL path segment: whatever the API answered,
/// it cannot change the path of the next request.
pub fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The API's path prefix on Volvo's host.
pub const fn prefix(api: Origin) -> &'static str {
    match api {
        Origin::ConnectedVehicle => "/connected-vehicle/v2",
        Origin::Energy => "/energy/v2",
        Origin::Location => "/location/v1",
        Origin::ExtendedVehicle => "/extended-vehicle/v1",
        Origin::Weather | Origin::Collector => "",
    }
}

impl Endpoint {
    /// The request path for one car (and one Extended Vehicle resource). The VIN is
    /// path-escaped so that no answer can change the path of the next request; resource names
    /// are checked before they get here (`extended_vehicle::safe_name`).
    pub fn path(&self, vin: &str, resource: Option<&str>) -> String {
        let t = self
            .template
            .replace("{vin}", &segment(vin))
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

/// The scopes a login asks for when `volvo.scopes` is not set: `openid` and those of every
/// endpoint the configuration collects. Extended Vehicle's only when `sources.extended_vehicle
/// = true` says so: Volvo retired it, and Volvo ID refuses a login that asks for a scope the
/// application lacks. Command scopes are never among them: this tool only reads.
pub fn default_scopes(sources: &crate::config::Sources) -> Vec<String> {
    let mut scopes = vec!["openid".to_string()];
    for e in ALL {
        let on = match e.api {
            Origin::ExtendedVehicle => sources.extended_vehicle_explicit,
            _ => e.enabled(sources),
        };
        for s in e.scopes.iter().filter(|_| on) {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_string());
            }
        }
    }
    scopes
}

/// The scopes of an account: `volvo.scopes`, or the defaults of its sources.
pub fn scopes(settings: &crate::config::Settings) -> Vec<String> {
    if settings.account.scopes.is_empty() {
        default_scopes(&settings.sources)
    } else {
        settings.account.scopes.clone()
    }
}

/// The scopes of `needed` that `granted` (space-separated, as Volvo ID answers) lacks.
pub fn missing_scopes<'a>(needed: &'a [String], granted: &str) -> Vec<&'a str> {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    needed
        .iter()
        .map(String::as_str)
        .filter(|s| !granted.contains(s))
        .collect()
}

/// The README's table of endpoints, made from [`ALL`] (a test keeps the README in step).
pub fn markdown_table() -> String {
    let age = |s: u64| match s {
        0 => "—".to_string(),
        s if s % DAY == 0 => format!("{} d", s / DAY),
        s if s % HOUR == 0 => format!("{} h", s / HOUR),
        s => format!("{} min", s / 60),
    };
    let mut t = String::from(
        "| API | endpoint (label and `[schedule]` key) | path | fact | minimum age | tier | scopes |\n|---|---|---|---|---|---|---|\n",
    );
    for e in ALL {
        let scopes = if e.scopes.len() > 3 {
            format!("`{}` … ({} scopes)", e.scopes[0], e.scopes.len())
        } else {
            e.scopes
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        t.push_str(&format!(
            "| {} | `{}` | `{}{}` | {:?} | {} | {} | {} |\n",
            e.api.label(),
            e.name,
            prefix(e.api),
            e.template,
            e.fact,
            age(e.floor),
            age(e.net),
            scopes
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys_are_unique_and_connected_vehicle_is_complete() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert!(a.name != b.name, "{}", a.name);
                assert!(!(a.api == b.api && a.name == b.name), "{}", a.name);
            }
        }
        for name in CONNECTED_VEHICLE {
            assert!(get(Origin::ConnectedVehicle, name).per_vehicle());
        }
        assert!(!get(Origin::ConnectedVehicle, "vehicles").per_vehicle());
    }

    /// Guards the load-time check of `[schedule]`: the configuration's plain list of keys is
    /// this table's, in its order, so that a new or renamed endpoint cannot drift from it.
    #[test]
    fn schedule_keys_of_the_configuration_are_the_tables() {
        let keys: Vec<&str> = ALL.iter().map(|e| e.name).collect();
        assert_eq!(crate::config::SCHEDULE_KEYS, keys.as_slice());
    }

    #[test]
    fn paths_escape_what_answers_put_in_them() {
        let e = get(Origin::ExtendedVehicle, "extended_values");
        assert_eq!(
            e.path("YV1/..", Some("odometer")),
            "/extended-vehicle/v1/vehicles/YV1%2F%2E%2E/resources/odometer"
        );
        assert_eq!(
            get(Origin::Energy, "energy_state").path("V", None),
            "/energy/v2/vehicles/V/state"
        );
    }
}
