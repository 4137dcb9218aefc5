//! Tiered polling across runs, with a fake clock: the state file's fetch times are moved back
//! instead of sleeping. Fresh answers are replayed with their original source times, due ones
//! are fetched, and a damaged cached answer is dropped and fetched again.

use crate::support::*;

/// Moves every cached answer's fetch time back by `seconds`: the clock of the next run.
fn age_cache(ws: &Workspace, seconds: i64) {
    let mut state: serde_json::Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    for (_, e) in state["cache"].as_object_mut().unwrap() {
        let t = e["fetched_at"].as_i64().unwrap();
        e["fetched_at"] = (t - seconds).into();
    }
    ws.write("token.state.json", &state.to_string());
}

/// GET paths (after the VIN) asked since the simulator started.
fn asked(sim: &Sim) -> Vec<String> {
    sim.gets()
        .iter()
        .map(|r| r["path"].as_str().unwrap().replace(&format!("/{BEV}"), ""))
        .collect()
}

/// The data series of an exposition (no self-metrics), to compare runs.
fn data(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("volvo_collect_") && !l.starts_with("# "))
        .map(String::from)
        .collect()
}

/// Guards adaptive polling: a sleeping car (nothing new since the last run) costs only what
/// shows that it woke, its doors and lock and its energy state; the output stays complete with
/// the original source times; the safety nets come after hours, and daily facts after a day.
#[test]
fn a_sleeping_car_costs_its_wake_facts_and_the_tiers_are_safety_nets() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = stdout(&o);
    assert!(first.contains(&format!(
        "volvo_collect_vehicle_mode{{mode=\"asleep\",vin=\"{BEV}\"}} 1"
    )));
    let n1 = asked(&sim).len();

    let wake_facts = |from: usize| {
        let mut got: Vec<String> = asked(&sim)[from..].to_vec();
        got.sort();
        got
    };
    let expect = vec![
        "/connected-vehicle/v2/vehicles/doors".to_string(),
        "/energy/v2/vehicles/state".to_string(),
    ];
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(wake_facts(n1), expect);
    assert_eq!(data(&stdout(&o)), data(&first));

    // 16 minutes later the car still sleeps: a 15-minute tier waits for the car.
    age_cache(&ws, 16 * 60);
    let n2 = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    assert_eq!(wake_facts(n2), expect);

    // Seven hours later the safety nets are due, the daily facts are not.
    age_cache(&ws, 7 * 3600);
    let n3 = asked(&sim).len();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let third = wake_facts(n3);
    for p in [
        "/fuel",
        "/command-accessibility",
        "/odometer",
        "/statistics",
        "/tyres",
        "/windows",
        "/engine-status",
    ] {
        let p = format!("/connected-vehicle/v2/vehicles{p}");
        assert!(third.contains(&p), "{p} not fetched: {third:?}");
    }
    assert!(
        third.contains(&"/location/v1/vehicles/location".to_string()),
        "{third:?}"
    );
    for p in [
        "/connected-vehicle/v2/vehicles",
        "/energy/v2/vehicles/capabilities",
    ] {
        assert!(
            !third.iter().any(|x| x == p),
            "{p} fetched too early: {third:?}"
        );
    }
    assert_eq!(data(&stdout(&o)), data(&first));

    // A day later everything is due again, but for the engine endpoint, which this car does
    // not support (remembered for a day from its own clock, which was not moved).
    age_cache(&ws, 86_400);
    let n4 = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    assert_eq!(asked(&sim).len() - n4, n1 - 1);
}

#[test]
fn a_damaged_cached_answer_is_dropped_and_fetched_again() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let first = stdout(&ws.run(&["--once", "--stdout"]));
    let mut state: serde_json::Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    state["cache"][format!("{BEV} odometer")]["body"] = serde_json::json!({"garbage": true});
    ws.write("token.state.json", &state.to_string());
    let before = count_path(&sim, "/odometer");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(count_path(&sim, "/odometer"), before + 1);
    assert_eq!(data(&stdout(&o)), data(&first));
}

/// `[schedule]` values are minimum ages the planner never goes below: a car's doors and
/// energy state, asked every run by default, wait an hour when the file says so.
#[test]
fn schedule_overrides_come_from_the_config() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[schedule]\nenergy_state = \"1h\"\ndoors = \"1h\"\n",
    );
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let n = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let again: Vec<String> = asked(&sim)[n..].to_vec();
    assert!(again.is_empty(), "{again:?}");
    age_cache(&ws, 3600);
    let n = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let later: Vec<String> = asked(&sim)[n..].to_vec();
    for p in [
        "/connected-vehicle/v2/vehicles/doors",
        "/energy/v2/vehicles/state",
    ] {
        assert!(later.iter().any(|x| x == p), "{p}: {later:?}");
    }
    let ws = Workspace::new(&sim, "", "[schedule]\ndoorz = \"1h\"\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert_stderr_contains(&o, "schedule: unknown endpoint \"doorz\"");
}

fn count_path(sim: &Sim, suffix: &str) -> usize {
    asked(sim)
        .iter()
        .filter(|p| p.ends_with(suffix) && p.starts_with("/connected-vehicle"))
        .count()
}
