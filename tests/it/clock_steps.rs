//! The machine's clock steps, through the real binary on both programs' clocks: time only
//! moves forward for the planner, so a step back leaves nothing stored in the future, and a
//! step forward ends what it should (a day's back-off) and nothing more.

use serde_json::{json, Value};

use crate::support::*;

const DAY: f64 = 86_400.0;
const REGION_BLOCK: &str = r#"{"error":{"message":"FORBIDDEN","description":"Client not allowed to access Location API"}}"#;

/// One car, so that each run's requests are easy to count.
fn one_car() -> (Sim, Workspace) {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    (sim, ws)
}

/// Runs `--once --stdout` at `now`; the GET requests it made.
fn requests_at(sim: &Sim, ws: &Workspace, now: f64) -> Vec<String> {
    let before = sim.gets().len();
    let o = ws.run_at(sim, now, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "at {now}: {}", stderr(&o));
    sim.gets()[before..]
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

fn state(ws: &Workspace) -> Value {
    serde_json::from_str(&ws.read("token.state.json")).unwrap()
}

/// Every time the state file keeps that must not lie after `now`.
fn stored_times(state: &Value) -> Vec<(String, i64)> {
    let mut times = Vec::new();
    for (key, entry) in state["cache"].as_object().unwrap() {
        times.push((
            format!("cache {key}"),
            entry["fetched_at"].as_i64().unwrap(),
        ));
    }
    for (vin, car) in state["cars"].as_object().unwrap() {
        times.push((format!("car {vin}"), car["last_upload"].as_i64().unwrap()));
    }
    if let Some(t) = state["last_success"].as_f64() {
        times.push(("last success".into(), t as i64));
    }
    times
}

/// Runs at `t0`, then at `t0 + ahead`, then back at `t0 + back` and five minutes later: the
/// runs after the step still ask their probe, and nothing the state keeps lies ahead of them.
/// A day after the stepped-back run every daily endpoint is asked again, as a day after any
/// run; before, answers fetched "in the future" counted as fresh until the clock caught up.
fn step_back(ahead: f64, back: f64) {
    let (sim, ws) = one_car();
    let t0 = unix_now() as f64;
    let cold = requests_at(&sim, &ws, t0);
    assert!(cold.len() > 10, "{cold:?}");
    if ahead != 0.0 {
        requests_at(&sim, &ws, t0 + ahead);
    }
    for now in [t0 + back, t0 + back + 300.0] {
        let asked = requests_at(&sim, &ws, now);
        assert!(!asked.is_empty(), "the probe is asked after the step");
        let after: Vec<_> = stored_times(&state(&ws))
            .into_iter()
            .filter(|(_, t)| *t as f64 > now + 1.0)
            .collect();
        assert!(after.is_empty(), "stored after the clock: {after:?}");
    }
    let next_day = requests_at(&sim, &ws, t0 + back + DAY + 60.0);
    assert_eq!(next_day.len(), cold.len(), "{next_day:?}");
}

/// Guards the access token against a clock that ran ten days ahead and was set back: its
/// expiry, set by the clock ahead, lay ten days in the future, so no run refreshed it and
/// `check` said it was valid for another ten days. An expiry further away than any token lives
/// is taken as expired: the run after the step back refreshes.
#[test]
fn an_access_token_from_a_clock_ten_days_ahead_is_refreshed_after_the_step_back() {
    let (sim, ws) = one_car();
    let t0 = unix_now() as f64;
    requests_at(&sim, &ws, t0 + 10.0 * DAY);
    let before = sim.stats()["refreshes"].as_i64().unwrap();
    requests_at(&sim, &ws, t0);
    assert_eq!(sim.stats()["refreshes"].as_i64().unwrap(), before + 1);
    let expires_at = serde_json::from_str::<Value>(&ws.read("token.json")).unwrap()["expires_at"]
        .as_f64()
        .unwrap();
    assert!(expires_at < t0 + DAY, "{expires_at} after {t0}");
}

/// A step of a day forward, then back to ten minutes after the first run.
#[test]
fn a_clock_step_back_after_a_day_ahead_leaves_nothing_in_the_future() {
    step_back(DAY + 300.0, 600.0);
}

/// A step back of an hour.
#[test]
fn a_clock_step_back_of_an_hour_leaves_nothing_in_the_future() {
    step_back(0.0, -3_600.0);
}

/// A step forward ends what it should and nothing more: two hours on, a region block on
/// Location still holds and the kept answers are still replayed (only the probe is asked); a
/// day on, the block has ended and Location is asked again.
#[test]
fn a_clock_step_forward_ends_a_back_off_only_after_its_day() {
    let (sim, ws) = one_car();
    let location = format!("/location/v1/vehicles/{BEV}/location");
    let fault =
        json!([{"path": format!("={location}"), "status": 403, "body": REGION_BLOCK, "times": 1}]);
    sim.faults(fault);
    let t0 = unix_now() as f64;
    let cold = requests_at(&sim, &ws, t0);
    assert!(cold.contains(&location), "{cold:?}");
    let until = state(&ws)["not_available"][format!("{BEV} location location")]
        .as_i64()
        .expect("the block is remembered");

    // Only the probe: the kept answers are still young enough, and the block still holds.
    let two_hours = requests_at(&sim, &ws, t0 + 7_200.0);
    assert_eq!(two_hours.len(), 2, "{two_hours:?}");
    let kept = state(&ws)["not_available"][format!("{BEV} location location")].as_i64();
    assert_eq!(
        kept,
        Some(until),
        "a step forward within the day keeps the back-off"
    );

    let next_day = requests_at(&sim, &ws, t0 + DAY + 300.0);
    assert!(next_day.contains(&location), "{next_day:?}");
    assert!(state(&ws).get("not_available").is_none());
}
