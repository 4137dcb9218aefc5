//! The Volvo endpoints this tool reads, each one value of [`Endpoint`]: its API, its name (the
//! `endpoint` label and the `[schedule]` key), its path, the kind of fact it carries, its
//! default ages and its scopes, written once in [`Endpoint::spec`]. Which APIs a configuration
//! reads ([`Sources`]) lives here too, so that everything above this layer asks the endpoint
//! itself instead of comparing names.

use std::fmt;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

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
    /// Volvo's four APIs, in the order a car's answers are mapped.
    pub const APIS: [Origin; 4] = [
        Origin::ConnectedVehicle,
        Origin::Energy,
        Origin::Location,
        Origin::ExtendedVehicle,
    ];

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

    /// The API's path prefix on Volvo's host.
    pub const fn prefix(self) -> &'static str {
        match self {
            Origin::ConnectedVehicle => "/connected-vehicle/v2",
            Origin::Energy => "/energy/v2",
            Origin::Location => "/location/v1",
            Origin::ExtendedVehicle => "/extended-vehicle/v1",
            Origin::Weather | Origin::Collector => "",
        }
    }
}

/// What an endpoint says about the car, which decides when the planner asks it. The order is
/// the priority when Volvo's minute window cannot take every request of a run: what comes
/// first is asked first, the rest is deferred to the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// One endpoint of Volvo's APIs that this tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Vehicles,
    Details,
    Doors,
    Windows,
    EngineStatus,
    Engine,
    Diagnostics,
    Brakes,
    Fuel,
    Odometer,
    Statistics,
    Tyres,
    Warnings,
    CommandAccessibility,
    Commands,
    EnergyCapabilities,
    EnergyState,
    Location,
    ExtendedResources,
    ExtendedValues,
}

/// What is known of an endpoint, written once per endpoint in [`Endpoint::spec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub endpoint: Endpoint,
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

/// A row of [`SPECS`].
const fn spec(
    endpoint: Endpoint,
    api: Origin,
    name: &'static str,
    template: &'static str,
    fact: Fact,
    ages: (u64, u64),
    scopes: &'static [&'static str],
) -> Spec {
    Spec {
        endpoint,
        api,
        name,
        template,
        fact,
        floor: ages.0,
        net: ages.1,
        scopes,
    }
}

/// Every endpoint's description, in the order of [`Endpoint::ALL`] (checked when this
/// compiles): (endpoint, API, name, template, fact, (floor, tier), scopes).
static SPECS: [Spec; 20] = {
    use Fact::*;
    use Origin::{ConnectedVehicle as CV, Energy as EN, ExtendedVehicle as EX, Location as LO};
    [
        spec(
            Endpoint::Vehicles,
            CV,
            "vehicles",
            "/vehicles",
            Static,
            (DAY, DAY),
            &["conve:vehicle_relation"],
        ),
        spec(
            Endpoint::Details,
            CV,
            "details",
            "/vehicles/{vin}",
            Static,
            (DAY, DAY),
            &["conve:vehicle_relation"],
        ),
        spec(
            Endpoint::Doors,
            CV,
            "doors",
            "/vehicles/{vin}/doors",
            Wake,
            (0, 0),
            &["conve:doors_status", "conve:lock_status"],
        ),
        spec(
            Endpoint::Windows,
            CV,
            "windows",
            "/vehicles/{vin}/windows",
            State,
            (0, HOUR),
            &["conve:windows_status"],
        ),
        spec(
            Endpoint::EngineStatus,
            CV,
            "engine_status",
            "/vehicles/{vin}/engine-status",
            State,
            (0, HOUR),
            &["conve:engine_status"],
        ),
        spec(
            Endpoint::Engine,
            CV,
            "engine",
            "/vehicles/{vin}/engine",
            Slow,
            (HOUR, HOUR),
            &["conve:diagnostics_engine_status"],
        ),
        spec(
            Endpoint::Diagnostics,
            CV,
            "diagnostics",
            "/vehicles/{vin}/diagnostics",
            Slow,
            (HOUR, HOUR),
            &["conve:diagnostics_workshop"],
        ),
        spec(
            Endpoint::Brakes,
            CV,
            "brakes",
            "/vehicles/{vin}/brakes",
            Slow,
            (HOUR, HOUR),
            &["conve:brake_status"],
        ),
        spec(
            Endpoint::Fuel,
            CV,
            "fuel",
            "/vehicles/{vin}/fuel",
            Trip,
            (0, QUARTER),
            &["conve:fuel_status", "conve:battery_charge_level"],
        ),
        spec(
            Endpoint::Odometer,
            CV,
            "odometer",
            "/vehicles/{vin}/odometer",
            Trip,
            (0, HOUR),
            &["conve:odometer_status"],
        ),
        spec(
            Endpoint::Statistics,
            CV,
            "statistics",
            "/vehicles/{vin}/statistics",
            Trip,
            (0, HOUR),
            &["conve:trip_statistics"],
        ),
        spec(
            Endpoint::Tyres,
            CV,
            "tyres",
            "/vehicles/{vin}/tyres",
            TripEnd,
            (0, HOUR),
            &["conve:tyre_status"],
        ),
        spec(
            Endpoint::Warnings,
            CV,
            "warnings",
            "/vehicles/{vin}/warnings",
            TripEnd,
            (0, HOUR),
            &["conve:warnings"],
        ),
        spec(
            Endpoint::CommandAccessibility,
            CV,
            "command_accessibility",
            "/vehicles/{vin}/command-accessibility",
            Slow,
            (QUARTER, QUARTER),
            &["conve:command_accessibility"],
        ),
        spec(
            Endpoint::Commands,
            CV,
            "commands",
            "/vehicles/{vin}/commands",
            Static,
            (DAY, DAY),
            &["conve:commands"],
        ),
        spec(
            Endpoint::EnergyCapabilities,
            EN,
            "energy_capabilities",
            "/vehicles/{vin}/capabilities",
            Static,
            (DAY, DAY),
            &["energy:capability:read"],
        ),
        spec(
            Endpoint::EnergyState,
            EN,
            "energy_state",
            "/vehicles/{vin}/state",
            Wake,
            (0, 0),
            &["energy:state:read"],
        ),
        spec(
            Endpoint::Location,
            LO,
            "location",
            "/vehicles/{vin}/location",
            TripEnd,
            (0, QUARTER),
            &["location:read"],
        ),
        spec(
            Endpoint::ExtendedResources,
            EX,
            "extended_resources",
            "/vehicles/{vin}/resources",
            Static,
            (DAY, DAY),
            EXVE,
        ),
        spec(
            Endpoint::ExtendedValues,
            EX,
            "extended_values",
            "/vehicles/{vin}/resources/{resource}",
            Slow,
            (HOUR, HOUR),
            &[],
        ),
    ]
};

// Each row of SPECS describes the endpoint at its place.
const _: () = {
    let mut i = 0;
    while i < SPECS.len() {
        assert!(SPECS[i].endpoint as usize == i);
        i += 1;
    }
};

impl Endpoint {
    /// Every endpoint, account-wide first, then a car's in the order of the APIs' documents.
    pub const ALL: [Endpoint; 20] = [
        Endpoint::Vehicles,
        Endpoint::Details,
        Endpoint::Doors,
        Endpoint::Windows,
        Endpoint::EngineStatus,
        Endpoint::Engine,
        Endpoint::Diagnostics,
        Endpoint::Brakes,
        Endpoint::Fuel,
        Endpoint::Odometer,
        Endpoint::Statistics,
        Endpoint::Tyres,
        Endpoint::Warnings,
        Endpoint::CommandAccessibility,
        Endpoint::Commands,
        Endpoint::EnergyCapabilities,
        Endpoint::EnergyState,
        Endpoint::Location,
        Endpoint::ExtendedResources,
        Endpoint::ExtendedValues,
    ];

    /// The one description of each endpoint.
    pub const fn spec(self) -> Spec {
        SPECS[self as usize]
    }

    pub const fn api(self) -> Origin {
        self.spec().api
    }

    /// The `endpoint` label and `[schedule]` key.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    pub const fn template(self) -> &'static str {
        self.spec().template
    }

    pub const fn fact(self) -> Fact {
        self.spec().fact
    }

    /// Whether the endpoint is asked once per car (everything but the vehicle list).
    pub const fn per_vehicle(self) -> bool {
        !matches!(self, Endpoint::Vehicles)
    }

    /// The endpoints of one API that are asked per car.
    pub fn of_api(api: Origin) -> impl Iterator<Item = Endpoint> {
        Endpoint::ALL
            .into_iter()
            .filter(move |e| e.api() == api && e.per_vehicle())
    }

    /// The request path for one car (and one Extended Vehicle resource). The VIN is
    /// path-escaped so that no answer can change the path of the next request; resource names
    /// are checked before they get here (`extended_vehicle::safe_name`).
    pub fn path(self, vin: &str, resource: Option<&str>) -> String {
        let (prefix, mut rest) = (self.api().prefix(), self.template());
        // Built in one string: a run makes one per request.
        let mut path = String::with_capacity(prefix.len() + rest.len() + vin.len() + 32);
        path.push_str(prefix);
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |i| open + i + 1);
            match &rest[open..close] {
                "{vin}" => path.extend(utf8_percent_encode(vin, NON_ALPHANUMERIC)),
                "{resource}" => path.push_str(resource.unwrap_or("")),
                other => path.push_str(other),
            }
            rest = &rest[close..];
        }
        path.push_str(rest);
        path
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no endpoint's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEndpoint;

impl std::str::FromStr for Endpoint {
    type Err = UnknownEndpoint;

    /// The endpoint named `name`: for the boundaries that read names (the `[schedule]` keys,
    /// the state file, the simulator's router), never for logic.
    fn from_str(name: &str) -> Result<Endpoint, UnknownEndpoint> {
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or(UnknownEndpoint)
    }
}

/// Which of Volvo's four APIs a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub connected_vehicle: bool,
    /// Extended Vehicle is not turned off (`sources.extended_vehicle = false`). Whether a run
    /// reads it is [`Sources::extended_vehicle_wanted`]: Volvo retired the API on 2025-12-31.
    pub extended_vehicle: bool,
    /// `sources.extended_vehicle = true` is written in the file: its scopes are asked for at
    /// login and it is read even without them. Implies `extended_vehicle`.
    pub extended_vehicle_explicit: bool,
    pub energy: bool,
    pub location: bool,
}

impl Sources {
    /// Every API on, as a user who consented to every read scope has.
    pub const ALL: Sources = Sources {
        connected_vehicle: true,
        extended_vehicle: true,
        extended_vehicle_explicit: true,
        energy: true,
        location: true,
    };

    /// Whether the configuration reads `api` (Extended Vehicle: unless turned off).
    pub fn reads(&self, api: Origin) -> bool {
        match api {
            Origin::ConnectedVehicle => self.connected_vehicle,
            Origin::Energy => self.energy,
            Origin::Location => self.location,
            Origin::ExtendedVehicle => self.extended_vehicle,
            Origin::Weather | Origin::Collector => false,
        }
    }

    /// Whether the configuration collects this endpoint's API. The vehicle list is always
    /// needed when no VINs are configured.
    pub fn collects(&self, e: Endpoint) -> bool {
        e == Endpoint::Vehicles || self.reads(e.api())
    }

    /// Whether a run asks Extended Vehicle, given the scopes the token file says were granted
    /// (its `scope` field). Volvo retired the API and new applications may not be able to
    /// register its `exve:*` scopes, so unless the file turns it on or off explicitly, it is
    /// read only for an account that was granted one of them.
    pub fn extended_vehicle_wanted(&self, granted_scope: Option<&str>) -> bool {
        if !self.extended_vehicle {
            return false;
        }
        self.extended_vehicle_explicit
            || granted_scope.is_some_and(|s| s.split_whitespace().any(is_extended_vehicle_scope))
    }

    /// The scopes a login asks for when `volvo.scopes` is not set: `openid` and those of every
    /// endpoint the configuration collects. Extended Vehicle's only when
    /// `sources.extended_vehicle = true` says so: Volvo retired it, and Volvo ID refuses a
    /// login that asks for a scope the application lacks. Command scopes are never among them:
    /// this tool only reads.
    pub fn default_scopes(&self) -> Vec<String> {
        let mut scopes = vec!["openid".to_string()];
        for e in Endpoint::ALL {
            let on = match e.api() {
                Origin::ExtendedVehicle => self.extended_vehicle_explicit,
                _ => self.collects(e),
            };
            for s in e.spec().scopes.iter().filter(|_| on) {
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_string());
                }
            }
        }
        scopes
    }
}

/// The scopes of the retired Extended Vehicle API.
pub fn is_extended_vehicle_scope(scope: &str) -> bool {
    scope.starts_with("exve:")
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

/// The README's table of endpoints, made from [`Endpoint::ALL`] (a test keeps the README in
/// step).
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
    for e in Endpoint::ALL {
        let s = e.spec();
        let scopes = if s.scopes.len() > 3 {
            format!("`{}` … ({} scopes)", s.scopes[0], s.scopes.len())
        } else {
            s.scopes
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        t.push_str(&format!(
            "| {} | `{}` | `{}{}` | {:?} | {} | {} | {} |\n",
            s.api.label(),
            s.name,
            s.api.prefix(),
            s.template,
            s.fact,
            age(s.floor),
            age(s.net),
            scopes
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path of each kind of endpoint, with a VIN from an answer kept to one segment.
    #[test]
    fn paths_put_the_vin_and_resource_in_their_places() {
        let vin = "YV1ABCDEFGH123456";
        assert_eq!(
            Endpoint::Vehicles.path(vin, None),
            "/connected-vehicle/v2/vehicles"
        );
        assert_eq!(
            Endpoint::Details.path(vin, None),
            "/connected-vehicle/v2/vehicles/YV1ABCDEFGH123456"
        );
        assert_eq!(
            Endpoint::ExtendedValues.path(vin, Some("fuelAmount")),
            "/extended-vehicle/v1/vehicles/YV1ABCDEFGH123456/resources/fuelAmount"
        );
        assert_eq!(
            Endpoint::Doors.path("../x?y", None),
            "/connected-vehicle/v2/vehicles/%2E%2E%2Fx%3Fy/doors"
        );
    }

    #[test]
    fn names_are_unique_and_read_back() {
        for (i, a) in Endpoint::ALL.iter().enumerate() {
            assert_eq!(a.name().parse(), Ok(*a));
            for b in &Endpoint::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
        assert_eq!("doorz".parse::<Endpoint>(), Err(UnknownEndpoint));
        assert!(!Endpoint::Vehicles.per_vehicle());
        assert_eq!(Endpoint::of_api(Origin::ConnectedVehicle).count(), 14);
    }

    #[test]
    fn paths_escape_what_answers_put_in_them() {
        assert_eq!(
            Endpoint::ExtendedValues.path("YV1/..", Some("odometer")),
            "/extended-vehicle/v1/vehicles/YV1%2F%2E%2E/resources/odometer"
        );
        assert_eq!(
            Endpoint::EnergyState.path("V", None),
            "/energy/v2/vehicles/V/state"
        );
    }

    #[test]
    fn default_scopes_follow_the_sources_and_never_command() {
        let mut s = Sources::ALL;
        assert!(s
            .default_scopes()
            .contains(&"exve:odometer_status".to_string()));
        s.extended_vehicle_explicit = false;
        s.location = false;
        let scopes = s.default_scopes();
        assert!(!scopes
            .iter()
            .any(|x| x.starts_with("exve:") || x == "location:read"));
        assert!(!scopes
            .iter()
            .any(|x| x == "conve:lock" || x == "conve:unlock"));
    }
}
