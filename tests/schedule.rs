//! Tiered polling across runs, with a fake clock: the state file's fetch times are moved back
//! instead of sleeping. Fresh answers are replayed with their original source times, due ones
//! are fetched, and a damaged cached answer is dropped and fetched again.

#[path = "support/harness.rs"]
mod harness;

use harness::*;

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
    sim.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET")
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

#[test]
fn the_schedule_skips_fresh_answers_and_fetches_due_ones() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = stdout(&o);
    let n1 = asked(&sim).len();

    // Immediately again: only the every-run tier is asked; the output is the same, with the
    // original source times.
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let second_asked: Vec<String> = asked(&sim)[n1..].to_vec();
    let mut expect = vec![
        "/connected-vehicle/v2/vehicles/doors",
        "/connected-vehicle/v2/vehicles/windows",
        "/connected-vehicle/v2/vehicles/engine-status",
        "/energy/v2/vehicles/state",
    ];
    let mut got: Vec<&str> = second_asked.iter().map(String::as_str).collect();
    expect.sort();
    got.sort();
    assert_eq!(got, expect);
    assert_eq!(data(&stdout(&o)), data(&first));

    // 16 minutes later: the 15-minute tier is due too, the hourly one is not.
    age_cache(&ws, 16 * 60);
    let n2 = asked(&sim).len();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let third: Vec<String> = asked(&sim)[n2..].to_vec();
    for p in [
        "/connected-vehicle/v2/vehicles/fuel",
        "/connected-vehicle/v2/vehicles/command-accessibility",
        "/location/v1/vehicles/location",
    ] {
        assert!(third.iter().any(|x| x == p), "{p} not fetched: {third:?}");
    }
    for p in [
        "/connected-vehicle/v2/vehicles/odometer",
        "/connected-vehicle/v2/vehicles/statistics",
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
    let n3 = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    assert_eq!(asked(&sim).len() - n3, n1 - 1);
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

#[test]
fn schedule_overrides_come_from_the_config() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[schedule]\nodometer = \"0s\"\ndoors = \"1h\"\n",
    );
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let n = asked(&sim).len();
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let again: Vec<String> = asked(&sim)[n..].to_vec();
    assert!(
        again
            .iter()
            .any(|p| p == "/connected-vehicle/v2/vehicles/odometer"),
        "{again:?}"
    );
    assert!(
        !again
            .iter()
            .any(|p| p == "/connected-vehicle/v2/vehicles/doors"),
        "{again:?}"
    );
    let ws = Workspace::new(&sim, "", "[schedule]\ndoorz = \"1h\"\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert!(
        stderr(&o).contains("schedule: unknown endpoint \"doorz\""),
        "{}",
        stderr(&o)
    );
}

fn count_path(sim: &Sim, suffix: &str) -> usize {
    asked(sim)
        .iter()
        .filter(|p| p.ends_with(suffix) && p.starts_with("/connected-vehicle"))
        .count()
}
