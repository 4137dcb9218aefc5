//! Trips and charges through the real binary: the records kept in the state file from run to
//! run, a lost state file restarting their counters, and the prices of `[prices]`. The whole
//! scripted day, with its faults, is measured in `scripted_day`.

use crate::support::*;

/// 2026-12-01T00:00:00Z, the start of the simulator's scripted day.
const DAY_START: i64 = 1_796_083_200;

/// A run of the scripted day at HH:MM (30 s past, as a timer's), on both programs' clocks.
fn run_at(sim: &Sim, ws: &Workspace, h: i64, m: i64) -> String {
    let now = DAY_START + h * 3600 + m * 60 + 30;
    let o = ws.run_at(sim, now as f64, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{h:02}:{m:02}: {}", stderr(&o));
    stdout(&o)
}

fn of(name: &str, vin: &str) -> String {
    format!("{name}{{vin=\"{vin}\"}}")
}

/// Guards the records across runs: the electric car's morning commute (07:32-08:12, 32 km,
/// 10 % of 78 kWh), seen by runs at 07:50 and 08:15, each its own process, is one trip once
/// the run after the stop shows no movement; and a lost state file restarts the counters at 0
/// with no last trip, an ordinary counter reset.
#[test]
fn a_trip_over_several_runs_and_a_lost_state_file() {
    let sim = Sim::start(&["--scenario", "day"]);
    sim.post(
        "/_sim/clock",
        &format!("{{\"now\": {}}}", DAY_START + 7 * 3600),
    );
    let ws = Workspace::new(&sim, "", "");
    let first = run_at(&sim, &ws, 7, 0);
    assert_eq!(value(&first, &of("volvo_trips_total", BEV)), Some(0.0));
    assert_eq!(
        value(&first, &of("volvo_charged_energy_joules_total", BEV)),
        Some(0.0)
    );
    let driving = run_at(&sim, &ws, 7, 50);
    assert_eq!(value(&driving, &of("volvo_trips_total", BEV)), Some(0.0));
    let stopped = run_at(&sim, &ws, 8, 15);
    assert_eq!(
        value(&stopped, &of("volvo_trips_total", BEV)),
        Some(0.0),
        "the trip ends in the next run without movement"
    );
    let parked = run_at(&sim, &ws, 8, 20);
    promtool_check(&parked);
    for (name, want) in [
        ("volvo_trips_total", 1.0),
        ("volvo_trip_distance_meters_total", 32_000.0),
        ("volvo_last_trip_distance_meters", 32_000.0),
        ("volvo_last_trip_energy_joules", 0.10 * 78.0 * 3.6e6),
        // From the start at 07:32 (the first upload the 07:50 run saw new) to the stop.
        ("volvo_last_trip_duration_seconds", 40.0 * 60.0),
        (
            "volvo_last_trip_end_timestamp_seconds",
            (DAY_START + 8 * 3600 + 12 * 60) as f64,
        ),
        ("volvo_charging_sessions_total", 0.0),
    ] {
        let got = value(&parked, &of(name, BEV)).unwrap_or_else(|| panic!("no {name}"));
        assert!((got - want).abs() < 1e-6, "{name}: {got}, not {want}");
    }
    assert_eq!(value(&parked, &of("volvo_trips_total", PETROL)), Some(0.0));
    assert!(
        !parked.contains("volvo_last_trip_fuel_liters{"),
        "an electric car burns no fuel"
    );
    let state = ws.read("token.state.json");
    assert!(state.contains("\"records\":{"), "{state}");

    std::fs::remove_file(ws.path("token.state.json")).unwrap();
    let reset = run_at(&sim, &ws, 8, 25);
    assert_eq!(value(&reset, &of("volvo_trips_total", BEV)), Some(0.0));
    assert_eq!(
        value(&reset, &of("volvo_trip_distance_meters_total", BEV)),
        Some(0.0)
    );
    assert!(!reset.contains("volvo_last_trip_"), "{reset}");
}

/// Guards `[prices]`: both prices exported once per run, per joule and per litre, labelled
/// with the currency; without the table, none.
#[test]
fn prices_are_exported_with_their_currency() {
    let sim = Sim::start(&[]);
    let prices =
        "[prices]\ncurrency = \"EUR\"\nelectricity_per_kwh = 0.36\nfuel_per_liter = 1.85\n";
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), prices);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    promtool_check(&out);
    check_exposition(&out);
    let per_joule = value(&out, "volvo_electricity_price_per_joule{currency=\"EUR\"}").unwrap();
    assert!((per_joule - 1e-7).abs() < 1e-18, "{per_joule}");
    assert_eq!(
        value(&out, "volvo_fuel_price_per_liter{currency=\"EUR\"}"),
        Some(1.85)
    );
    let plain = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let out = stdout(&plain.run(&["--once", "--stdout"]));
    assert!(!out.contains("_price_per_"), "{out}");
}
