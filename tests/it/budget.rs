//! The daily quota as a live budget, through the real binary under the simulator's clock:
//! whole scripted days of five-minute runs (driven by `scripts/bench --day`) for households on
//! one API key, a busy day, a day spent early by this account's own runs and one spent by
//! another application; and, run by run, two accounts adding up their day and the day's
//! count surviving from process to process until Volvo's reset.

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::*;

/// One household day through `scripts/bench --day --day-cars N`, as its JSON figures.
fn household(args: &[&str]) -> Value {
    let day = bench_day(args)["households"][0].clone();
    println!("{args:?}: {day}");
    day
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The most runs late a class of change reached the output, and how many never did.
fn lag(day: &Value, class: &str) -> (Option<i64>, i64) {
    let c = &day["lateness"][class];
    (c["max"].as_i64(), n(&c["never"]))
}

fn status(day: &Value, code: &str) -> i64 {
    day["status"][code].as_i64().unwrap_or(0)
}

/// Guards the household promise: seven households (fourteen cars) on one key see every change
/// as one car does: state facts in the next run, trip facts and the position after a trip at
/// most a run late, tyres and warnings within twelve, within 9,000 requests and at most 90 in
/// any run, with no 403 and no 429.
#[test]
fn seven_households_on_one_key_see_every_change_as_one_car_does() {
    let day = household(&["--day-cars", "14"]);
    assert_eq!(lag(&day, "state"), (Some(0), 0), "{day}");
    assert_eq!(n(&day["ladder_breaks"]), 0, "{day}");
    for class in ["trip", "location"] {
        let (max, never) = lag(&day, class);
        assert!(max.is_some_and(|m| m <= 1) && never == 0, "{class}: {day}");
    }
    let (max, never) = lag(&day, "tyres_warnings");
    assert!(max.is_some_and(|m| m <= 12) && never == 0, "{day}");
    assert!(n(&day["requests_key"]) <= 9_000, "{day}");
    assert!(n(&day["busiest_run"]) <= 90, "{day}");
    assert_eq!((status(&day, "403"), status(&day, "429")), (0, 0), "{day}");
}

/// Guards one car's day: the budget changes nothing for it (800 requests an electric car).
#[test]
fn one_car_costs_what_it_did() {
    let day = household(&["--day-cars", "1"]);
    assert!(
        n(&day["requests_per_car"]["electric"]["max"]) <= 800,
        "{day}"
    );
    assert_eq!(lag(&day, "state"), (Some(0), 0), "{day}");
}

/// Guards the worst case: sixteen cars driving all day never meet Volvo's quota (no 403, at
/// most 9,500 requests), no run asks more than 90, and what degrades degrades in order: no
/// run defers a car's wake or state fact while it asks a slow or static one (whatever order
/// the answers come in), and the state facts are the least late.
#[test]
fn a_busy_day_of_sixteen_cars_stays_within_the_quota_and_degrades_in_order() {
    let day = household(&["--day-cars", "16", "--day-scenario", "busy"]);
    assert_eq!(n(&day["ladder_breaks"]), 0, "{day}");
    assert_eq!((status(&day, "403"), status(&day, "429")), (0, 0), "{day}");
    assert!(n(&day["requests_key"]) <= 9_500, "{day}");
    assert!(n(&day["busiest_run"]) <= 90, "{day}");
    let worst = |class| lag(&day, class).0.unwrap_or(i64::MAX);
    let state = worst("state");
    for class in ["trip", "location", "tyres_warnings", "other"] {
        assert!(state <= worst(class), "state {state} vs {class}: {day}");
    }
}

/// Guards a day spent early by this account's own hand runs and checks (7,000 of the key's
/// requests gone by 09:00): no 403 before Volvo's reset, and every car's probe still comes at
/// the minimum service all day.
#[test]
fn a_day_spent_early_by_hand_runs_still_sees_every_car() {
    let day = household(&["--day-cars", "14", "--day-event", "09:00=spent:7000"]);
    assert_eq!(status(&day, "403"), 0, "{day}");
    let gaps = day["probe_gap_runs"].as_object().unwrap();
    assert_eq!(gaps.len(), 14, "{day}");
    for (vin, gap) in gaps {
        assert!(n(gap) <= 12, "{vin}'s probe waited {gap} runs: {day}");
    }
}

/// Guards the quota spent by another application on the same key, which the collector cannot
/// count: Volvo's 403 pauses the runs (the last answers replayed, exit 75) and the run says
/// the spending was not its own.
#[test]
fn another_application_spending_the_key_pauses_the_runs_and_says_so() {
    let day = household(&["--day-cars", "2", "--day-event", "14:00=other:9999"]);
    assert!(status(&day, "403") >= 1, "{day}");
    assert!(n(&day["exit_codes"]["75"]) >= 1, "{day}");
    let said = day["warnings"].as_array().unwrap();
    assert!(
        said.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("another application may be using the same API key")),
        "{day}"
    );
}

/// Two accounts of one application, on one key, for the run-by-run tests below.
fn two_accounts_on_one_key(sim: &Sim) -> Workspace {
    let ws = Workspace::new(sim, "", "");
    let url = &sim.url;
    ws.write(
        "collector.toml",
        &format!(
            "[volvo]\napi_url = \"{url}\"\nauth_url = \"{url}/as/authorization.oauth2\"\ntoken_url = \"{url}/as/token.oauth2\"\n\n\
             [[account]]\nname = \"home\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\nvins = [\"{BEV}\"]\n\n\
             [[account]]\nname = \"work\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\nvins = [\"{PETROL}\"]\n\n\
             [output]\nstdout = true\n"
        ),
    );
    for f in ["token-home.json", "token-work.json"] {
        ws.write(f, &sim.token(true).to_string());
        std::fs::set_permissions(ws.path(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ws
}

fn run_at(sim: &Sim, ws: &Workspace, now: i64) -> std::process::Output {
    ws.run_at(sim, now as f64, &["--once"])
}

fn today(out: &str, account: &str) -> f64 {
    value(
        out,
        &format!("volvo_collect_key_requests_today{{account=\"{account}\"}}"),
    )
    .unwrap_or_else(|| panic!("no spending of {account}: {out}"))
}

/// The requests an account's day file counts.
fn counted(ws: &Workspace, account: &str) -> f64 {
    let file: Value = serde_json::from_str(&ws.read(&format!("token-{account}.state.json.day")))
        .expect("a day file");
    file["requests"].as_f64().unwrap()
}

/// Guards the key's day across accounts and processes: two accounts on one key each count
/// their own requests, each reports the key's total (theirs added up), the count goes on
/// from process to process (every one-shot run is a restart), and Volvo's reset at 00:00 UTC
/// starts it afresh.
#[test]
fn accounts_on_one_key_add_up_their_day_until_the_reset() {
    let sim = Sim::start(&["--quota", "10000"]);
    let ws = two_accounts_on_one_key(&sim);
    // 2026-12-01T23:45:00Z.
    let evening = 1_796_083_200 + 23 * 3600 + 45 * 60;
    let mut last = 0.0;
    for k in 0..3 {
        let o = run_at(&sim, &ws, evening + k * 300);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = stdout(&o);
        let sum = counted(&ws, "home") + counted(&ws, "work");
        for account in ["home", "work"] {
            assert_eq!(today(&out, account), sum, "{out}");
        }
        assert!(
            sum > last,
            "the count goes on across processes: {sum} after {last}"
        );
        last = sum;
    }
    assert_eq!(last as u64, sim.stats()["quota"]["used"].as_u64().unwrap());
    // After the reset: only what was asked since.
    let o = run_at(&sim, &ws, evening + 20 * 60);
    let out = stdout(&o);
    let sum = counted(&ws, "home") + counted(&ws, "work");
    assert!(sum < last, "{sum} after the reset, {last} before");
    assert_eq!(today(&out, "home"), sum, "{out}");
}
