//! Volvo as it answers in the field, where one replayed answer (`replay.rs`) does not tell the
//! whole story: what `check` says of a car's region block afterwards, a kept refresh token
//! still working at the next refresh, a duration no clock holds in the configuration, and the
//! long-running mode outliving an absurd `Retry-After`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

const REGION_BLOCK: &str = r#"{"error":{"message":"FORBIDDEN","description":"Client not allowed to access Location API"}}"#;

fn location_path() -> String {
    format!("=/location/v1/vehicles/{BEV}/location")
}

/// A car outside Location's regions: the run exits 0 and remembers the block in the state
/// file; `check` then shows it as information, not a FAIL, and does not speak of the login.
#[test]
fn check_shows_a_region_block_as_information() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    sim.faults(json!([{"path": location_path(), "status": 403, "body": REGION_BLOCK}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let state: Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    let until = state["not_available"][format!("{BEV} location location")]
        .as_i64()
        .expect("the block is remembered");
    assert!((until - unix_now() - 86_400).abs() < 120, "{until}");

    // Every scope granted, so that only the block could make a finding.
    let mut token = ws.token();
    token["scope"] = volvo_collect::endpoints::Sources {
        extended_vehicle_explicit: false,
        ..volvo_collect::endpoints::Sources::ALL
    }
    .default_scopes()
    .join(" ")
    .into();
    ws.write("token.json", &token.to_string());
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(!out.lines().any(|l| l.starts_with("FAIL")), "{out}");
    let info: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("info ") && l.contains("location"))
        .collect();
    assert_eq!(info.len(), 1, "{out}");
    assert!(
        info[0].starts_with(&format!(
            "info car {BEV}: location (location): not served to this car in its region or market"
        )),
        "{out}"
    );
    assert!(!info[0].contains("login"), "{out}");
}

/// A token answer without `refresh_token` keeps the previous one, and the previous one still
/// works when the next run must refresh.
#[test]
fn a_kept_refresh_token_works_at_the_next_refresh() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let before = ws.token()["refresh_token"].clone();
    sim.faults(json!([{"path": "/as/token.oauth2", "pass_through": true, "body": {"refresh_token": null}, "times": 1}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(ws.token()["refresh_token"], before);

    let mut token = ws.token();
    token["expires_at"] = json!(unix_now() - 10);
    ws.write("token.json", &token.to_string());
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["refreshes"], 2);
    assert_eq!(sim.stats()["invalid_grants"], 0);
    assert_ne!(ws.token()["refresh_token"], before, "rotated this time");
}

/// Runs with a token answer changed by `fault`, then forces the next run to refresh: the
/// first run's exit code, and whether the next refresh worked (no `invalid_grant`).
fn refresh_after(fault: Value) -> (i32, String, bool) {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let mut fault = fault;
    fault["path"] = json!("/as/token.oauth2");
    fault["times"] = json!(1);
    sim.faults(json!([fault]));
    let first = ws.run(&["--once", "--stdout"]);
    let mut token = ws.token();
    token["expires_at"] = json!(unix_now() - 10);
    ws.write("token.json", &token.to_string());
    let next = ws.run(&["--once", "--stdout"]);
    let worked = code(&next) == 0 && sim.stats()["invalid_grants"] == 0;
    (code(&first), stderr(&first), worked)
}

/// Guards the rotated refresh token against a token answer Volvo ID garbled: whatever is
/// wrong with it (a lifetime as text, negative or absurd, a scope of the wrong type, no usable
/// access token, an empty refresh token, an access token that cannot be sent, padding past the
/// cap), the refresh token it carries is saved, so the next refresh works. Before, each of
/// these was "unreadable, the login is kept" and the next run needed a login.
#[test]
fn a_garbled_token_answer_never_costs_the_login() {
    let pass = |body: Value| json!({"pass_through": true, "body": body});
    let cases = [
        ("expires_in as text", pass(json!({"expires_in": "299"})), 0),
        ("expires_in negative", pass(json!({"expires_in": -5})), 0),
        ("expires_in absurd", pass(json!({"expires_in": 1e30})), 0),
        ("scope a number", pass(json!({"scope": 5})), 0),
        ("no access token", pass(json!({"access_token": null})), 75),
        (
            "an access token with a line break",
            pass(json!({"access_token": "x\ny"})),
            75,
        ),
        (
            "an empty refresh token",
            pass(json!({"refresh_token": ""})),
            0,
        ),
        (
            "padded past the cap",
            json!({"pass_through": true, "pad_bytes": 52_428_800}),
            0,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, fault, exit) in cases {
        let (code, err, worked) = refresh_after(fault);
        if code != exit || !worked || err.contains("panicked") {
            wrong.push(format!(
                "{what}: exit {code} (expected {exit}), next refresh worked: {worked}\n{err}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Guards a slow refresh answer: Volvo ID answering after the request timeout (and after the
/// run's deadline) still has its rotated pair saved, since it spent the old refresh token on
/// receipt; before, the run gave up at the request timeout and the next run needed a login.
#[test]
fn a_slow_refresh_answer_is_waited_for_and_saved() {
    let sim = Sim::start(&[]);
    let config = "[collect]\ntimeout = \"2s\"\nrequest_timeout = \"1s\"\n";
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), config);
    let before = ws.token()["refresh_token"].clone();
    let fault =
        json!({"path": "/as/token.oauth2", "pass_through": true, "delay_ms": 3000, "times": 1});
    sim.faults(json!([fault]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 77, "{}", stderr(&o));
    assert_ne!(ws.token()["refresh_token"], before, "{}", stderr(&o));

    let mut token = ws.token();
    token["expires_at"] = json!(unix_now() - 10);
    ws.write("token.json", &token.to_string());
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0);
}

/// Guards the token's self-metrics after an API's 401 renewed the token in the middle of the
/// run: they show the pair the run saved, not the one it started with.
#[test]
fn the_token_metrics_follow_a_renewal_in_the_run() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let started_with = ws.token()["expires_at"].as_f64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let doors = format!("=/connected-vehicle/v2/vehicles/{BEV}/doors");
    let body = json!({"status": 401, "error": {"message": "Unauthorized", "description": "Full authentication is required to access this resource"}});
    sim.faults(json!([{"path": doors, "status": 401, "body": body, "times": 1}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let saved = ws.token()["expires_at"].as_f64().unwrap();
    assert!(saved > started_with, "the 401 renewed the token");
    let out = stdout(&o);
    let key = "volvo_collect_access_token_expiry_timestamp_seconds{account=\"default\"}";
    assert_eq!(value(&out, key), Some(saved), "{out}");
}

/// A duration no clock holds (it once panicked the run: "overflow when adding duration to
/// instant") is a configuration error at load that names the key.
#[test]
fn a_duration_beyond_its_bound_is_a_configuration_error() {
    let sim = Sim::start(&[]);
    for (rest, key) in [
        (
            "[collect]\ntimeout = \"500000000000y\"\n",
            "collect.timeout",
        ),
        ("[collect]\ninterval = \"2days\"\n", "collect.interval"),
        (
            "[schedule]\nlocation = \"500000000000y\"\n",
            "schedule.location",
        ),
        ("[pushgateway]\ntimeout = \"1h\"\n", "pushgateway.timeout"),
    ] {
        let ws = Workspace::new(&sim, "", rest);
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 78, "{rest}: {}", stderr(&o));
        assert_stderr_contains(&o, &format!("{key}: too long: use at most"));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    assert!(sim.gets().is_empty(), "nothing asked");
}

/// The long-running mode outlives a `Retry-After` of 2^63 - 1 seconds (it once died of it)
/// and goes on serving its metrics, with the endpoint reported as rate limited.
#[test]
fn the_long_running_mode_outlives_an_absurd_retry_after() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[collect]\ninterval = \"10s\"\n",
    );
    sim.faults(
        json!([{"path": format!("=/connected-vehicle/v2/vehicles/{BEV}/windows"),
        "status": 429, "headers": {"retry-after": "9223372036854775807"}, "body": "{}"}]),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = ws
        .command(&["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let started = Instant::now();
    let served = loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the long-running mode stopped"
        );
        if let Ok(r) = client().get(&metrics).send() {
            let text = r.text().unwrap_or_default();
            if text.contains("volvo_collect_run_timestamp_seconds") {
                break text;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no collection");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        served.contains(&format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"windows\",reason=\"rate_limited\",vin=\"{BEV}\"}} 1")),
        "{served}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it stopped after a collection"
    );
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join().unwrap().join("\n");
    assert!(!log.contains("panicked"), "{log}");
}

/// A region or market block on the vehicle list would hide every car: there it is a failure
/// (nothing collected: 75), not a fact remembered for a day.
#[test]
fn a_block_on_the_vehicle_list_is_a_failure() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let body = r#"{"code":"VEHICLE_NOT_FOUND","message":"Vehicle does not belong to allowed markets","details":[]}"#;
    sim.faults(json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 404, "body": body}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("volvo_collect_endpoint_error{api=\"connected_vehicle\",endpoint=\"vehicles\",reason=\"not_available\",vin=\"\"} 1"),
        "{out}"
    );
    assert!(
        !out.contains("volvo_collect_endpoint_not_available{"),
        "{out}"
    );
    let state: Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    assert!(state.get("not_available").is_none(), "{state}");
}

/// The scripted day's midnight (2026-12-01 00:00 UTC), and a run at HH:MM of it.
const DAY_START: i64 = 1_796_083_200;

fn at(h: i64, m: i64) -> f64 {
    (DAY_START + h * 3600 + m * 60) as f64
}

fn run_on_day(sim: &Sim, ws: &Workspace, h: i64, m: i64) -> String {
    let o = ws.run_at(sim, at(h, m), &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{h:02}:{m:02}: {}", stderr(&o));
    stdout(&o)
}

/// An upload time in the year 2100 on the electric car's doors, an hour before it is unlocked
/// and started: it was taken as the car's last upload, so no later upload looked new, the car
/// was never seen awake and `volvo_engine_running` stayed 0 through the drive. Now the time
/// counts as the run's own, is counted in `volvo_collect_future_uploads`, and the run after the
/// start shows the engine running.
#[test]
fn an_upload_time_in_the_future_does_not_stop_wake_detection() {
    let sim = Sim::start(&["--scenario", "day"]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    run_on_day(&sim, &ws, 7, 0);
    let doors =
        json!({"data": {"centralLock": {"value": "LOCKED", "timestamp": "2100-01-01T00:00:00Z"}}});
    let path = format!("=/connected-vehicle/v2/vehicles/{BEV}/doors");
    sim.faults(json!([{"path": path, "status": 200, "body": doors, "times": 1}]));
    let future = run_on_day(&sim, &ws, 7, 10);
    let counted =
        format!("volvo_collect_future_uploads{{api=\"connected_vehicle\",vin=\"{BEV}\"}}");
    assert_eq!(value(&future, &counted), Some(1.0), "{future}");
    let state: Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    let last = state["cars"][BEV]["last_upload"].as_f64().unwrap();
    assert!(last <= at(7, 10), "last upload {last} after the run");

    let quiet = run_on_day(&sim, &ws, 7, 20);
    assert!(value(&quiet, &counted).is_none(), "{quiet}");
    // Unlocked at 07:30, started at 07:32.
    let driving = run_on_day(&sim, &ws, 7, 40);
    let engine = format!("volvo_engine_running{{vin=\"{BEV}\"}}");
    assert_eq!(value(&driving, &engine), Some(1.0), "{driving}");
    let mode = format!("volvo_collect_vehicle_mode{{mode=\"driving\",vin=\"{BEV}\"}}");
    assert_eq!(value(&driving, &mode), Some(1.0), "{driving}");
}

/// The vehicle list failing after a good one: its last good answer stands in, with a warning,
/// so the cars are still read (exit 1: the list failed); the failure is not kept for a day,
/// so the next run asks the list again, and a good answer ends it.
#[test]
fn a_failed_vehicle_list_replays_the_last_good_one_and_is_asked_again() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let t0 = unix_now() as f64;
    let o = ws.run_at(&sim, t0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list = "=/connected-vehicle/v2/vehicles";
    let body = json!({"error": {"message": "NOT_FOUND", "description": "Resource not found"}});
    sim.faults(json!([{"path": list, "status": 404, "body": body, "times": 1}]));

    // A day on, when the list is due again.
    let day = t0 + 86_400.0 + 60.0;
    let o = ws.run_at(&sim, day, &["--once", "--stdout"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_stderr_contains(&o, "its last good answer stands in");
    for vin in [BEV, PHEV, PETROL, DIESEL] {
        let mode = format!("volvo_collect_vehicle_mode{{mode=\"asleep\",vin=\"{vin}\"}}");
        assert!(value(&out, &mode).is_some(), "{vin} hidden: {out}");
    }
    let list_error = "volvo_collect_endpoint_error{api=\"connected_vehicle\",endpoint=\"vehicles\",reason=\"not_supported\",vin=\"\"} 1";
    assert!(out.contains(list_error), "{out}");
    assert!(
        !out.contains(
            "volvo_collect_endpoint_not_supported{api=\"connected_vehicle\",endpoint=\"vehicles\""
        ),
        "{out}"
    );
    let lists = |sim: &Sim| {
        sim.requests("/vehicles")
            .iter()
            .filter(|r| r["path"] == "/connected-vehicle/v2/vehicles")
            .count()
    };
    let before = lists(&sim);

    let o = ws.run_at(&sim, day + 300.0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        lists(&sim),
        before + 1,
        "the list is asked again the next run"
    );
    let o = ws.run_at(&sim, day + 600.0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(lists(&sim), before + 1, "a good list is kept again");
}

/// Guards the key's day against a vehicle list with entries that are no VIN: an empty VIN
/// (which named the account's own answers) made one run send 9,317 requests, nearly the whole
/// day's quota, to `/vehicles//...`. Now such entries, and a car listed twice, are left out
/// with a warning: the run asks what a list of the one real car asks, and exits 0.
#[test]
fn a_vehicle_list_entry_that_is_no_vin_is_left_out() {
    let sim = Sim::start(&[]);
    let plain = Workspace::new(&sim, "", "[collect]\nrequests_per_minute = 0\n");
    // Volvo's nulls reach the list too: an entry without a usable VIN never hides the others.
    let list = json!({"data": [{"vin": ""}, {"vin": "not a vin"}, {"vin": null}, {"id": "x"},
        null, 5, {"vin": BEV}, {"vin": BEV}]});
    sim.faults(json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 200, "body": list}]));
    let o = plain.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let asked: Vec<String> = sim
        .gets()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!asked.iter().any(|p| p.contains("//")), "{asked:?}");
    assert!(
        asked
            .iter()
            .all(|p| p == "/connected-vehicle/v2/vehicles" || p.contains(BEV)),
        "{asked:?}"
    );
    let mut once = asked.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        once.len(),
        asked.len(),
        "a car listed twice is asked once: {asked:?}"
    );
    assert_stderr_contains(&o, "names something that is no VIN");
    assert_eq!(
        stderr(&o).matches("has an entry without a VIN").count(),
        4,
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(
        value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some(),
        "{out}"
    );
}

/// Guards what a run says of a value whose upload time is unreadable: the value is exported
/// without its `_timestamp_seconds` gauge, the time is counted as skipped, and the log says
/// that only the time was left out (it said "value skipped" over a value it exported).
#[test]
fn an_unreadable_upload_time_leaves_out_only_the_time() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let body = json!({"data": {"odometer": {"value": 5, "unit": "km", "timestamp": "yesterday"}}});
    sim.faults(json!([{"path": format!("=/connected-vehicle/v2/vehicles/{BEV}/odometer"), "status": 200, "body": body}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let vin = format!("vin=\"{BEV}\"");
    assert_eq!(
        value(&out, &format!("volvo_odometer_meters{{{vin}}}")),
        Some(5000.0),
        "{out}"
    );
    assert_eq!(
        value(&out, &format!("volvo_odometer_timestamp_seconds{{{vin}}}")),
        None,
        "{out}"
    );
    let skipped = format!(
        "volvo_collect_fields_skipped{{api=\"connected_vehicle\",reason=\"bad_timestamp\",{vin}}}"
    );
    assert_eq!(value(&out, &skipped), Some(1.0), "{out}");
    assert_stderr_contains(
        &o,
        "upload time skipped; the value is exported without its _timestamp_seconds gauge",
    );
    assert!(!stderr(&o).contains("value skipped"), "{}", stderr(&o));
}

/// Guards Volvo's nulls (`"value": null`, `"unit": null`): a null is an absent value, so the
/// series is absent and nothing is counted as skipped (it was counted as `not_a_number`,
/// which an alert on skipped fields would take for a fault).
#[test]
fn a_null_value_is_absent_and_not_skipped() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let nulls = json!({"value": null, "unit": null, "timestamp": null});
    let body = json!({"data": {"batteryChargeLevel": nulls.clone(), "fuelAmount": nulls}});
    let doors = json!({"data": {"centralLock": null, "hood": {"value": null, "timestamp": null}}});
    sim.faults(json!([
        {"path": format!("=/connected-vehicle/v2/vehicles/{BEV}/fuel"), "status": 200, "body": body},
        {"path": format!("=/connected-vehicle/v2/vehicles/{BEV}/doors"), "status": 200, "body": doors},
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains("volvo_collect_fields_skipped{api=\"connected_vehicle\""),
        "{out}"
    );
    assert!(!out.contains("volvo_fuel_amount_liters{"), "{out}");
    assert!(!out.contains("door=\"hood\""), "{out}");
}

/// Guards members of the wrong shape. An array where a value object belongs is no value:
/// serde's derived structs read an array by position, which made `[18734, "km", ..]` an
/// odometer and `{"data": [..]}` a car's details. A time that is no text (a number) leaves
/// out only the time, as an unreadable text does; it threw the value away.
#[test]
fn an_array_is_no_value_and_a_time_that_is_no_text_leaves_out_only_the_time() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let cv = |e: &str| format!("=/connected-vehicle/v2/vehicles/{BEV}{e}");
    let odometer = json!({"data": {"odometer": [18734, "km", "2026-11-19T17:58:12Z"]}});
    let doors = json!({"data": {"frontLeftDoor": ["OPEN"],
        "hood": {"value": "OPEN", "timestamp": 1795111092}}});
    let details = json!({"data": [{"vin": BEV, "modelYear": 2024}]});
    sim.faults(json!([
        {"path": cv("/odometer"), "status": 200, "body": odometer},
        {"path": cv("/doors"), "status": 200, "body": doors},
        {"path": cv(""), "status": 200, "body": details},
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "the details failed: {}", stderr(&o));
    let vin = format!("vin=\"{BEV}\"");
    assert_eq!(
        value(&out, &format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"details\",reason=\"decode\",{vin}}}")),
        Some(1.0),
        "{out}"
    );
    assert!(!out.contains("volvo_odometer_meters{"), "{out}");
    assert!(!out.contains("door=\"front_left\""), "{out}");
    let skipped = |reason: &str| {
        value(
            &out,
            &format!("volvo_collect_fields_skipped{{api=\"connected_vehicle\",reason=\"{reason}\",{vin}}}"),
        )
    };
    assert_eq!(skipped("malformed"), Some(2.0), "{out}");
    assert_eq!(skipped("bad_timestamp"), Some(1.0), "{out}");
    assert_eq!(
        value(
            &out,
            &format!("volvo_door_state{{door=\"hood\",state=\"OPEN\",{vin}}}")
        ),
        Some(1.0),
        "{out}"
    );
    assert!(
        !out.contains("door_timestamp_seconds{door=\"hood\""),
        "{out}"
    );
}

/// Guards the nulls of Location and Extended Vehicle: a `null` altitude or resource value is
/// absent and not counted as skipped (they were counted as `not_a_number` and `malformed`).
#[test]
fn a_null_position_part_or_resource_value_is_absent_and_not_skipped() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let position = json!({"status": 200, "operationId": "x", "data": {"type": "Feature",
        "properties": {"timestamp": "2026-11-19T17:58:14Z", "heading": null},
        "geometry": {"type": "Point", "coordinates": [11.97, 57.7, null]}}});
    let resource = json!({"resourceValue": {"timestamp": 1795111092, "unit": "km", "value": null}});
    sim.faults(json!([
        {"path": format!("=/location/v1/vehicles/{BEV}/location"), "status": 200, "body": position},
        {"path": format!("=/extended-vehicle/v1/vehicles/{BEV}/resources/odometer"), "status": 200, "body": resource},
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("volvo_collect_fields_skipped{"), "{out}");
    assert!(!out.contains("volvo_location_altitude_meters{"), "{out}");
    assert!(!out.contains("volvo_location_heading_degrees{"), "{out}");
    assert!(
        value(
            &out,
            &format!("volvo_location_latitude_degrees{{vin=\"{BEV}\"}}")
        )
        .is_some(),
        "{out}"
    );
    assert!(!out.contains("resource=\"odometer\""), "{out}");
}

/// Guards a resource listed twice by Extended Vehicle: one resource, asked once.
#[test]
fn a_resource_listed_twice_is_asked_once() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let list =
        json!({"resources": [{"name": "odometer"}, {"name": "odometer"}, {"name": "odometer"}]});
    sim.faults(json!([
        {"path": format!("=/extended-vehicle/v1/vehicles/{BEV}/resources"), "status": 200, "body": list},
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let asked = sim.requests(&format!("{BEV}/resources/odometer"));
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        value(
            &stdout(&o),
            &format!("volvo_extended_meters{{resource=\"odometer\",vin=\"{BEV}\"}}")
        )
        .is_some(),
        "{}",
        stdout(&o)
    );
}

/// Guards a household where Extended Vehicle serves one car and answers 404 "not supported"
/// for another's model: the API is alive, so the 404 is that car's, remembered for it, and
/// the other car keeps its Extended Vehicle data (the 404 was taken for the API's shutdown and
/// turned it off for every car for a day).
#[test]
fn one_cars_extended_404_does_not_turn_the_api_off_for_the_others() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\", \"{PETROL}\"]"), "");
    let not_supported = json!({"error": {"message": "Car model is not supported", "description": "Resource not found"}});
    sim.faults(json!([
        {"path": format!("=/extended-vehicle/v1/vehicles/{BEV}/resources"), "status": 404, "body": not_supported},
    ]));
    for run in 1..=2 {
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "run {run}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            !stderr(&o).contains("shut down"),
            "run {run}: {}",
            stderr(&o)
        );
        assert!(
            !out.contains("volvo_collect_api_unavailable_until_timestamp_seconds{"),
            "run {run}: {out}"
        );
        assert_eq!(
            value(&out, &format!("volvo_collect_endpoint_not_supported{{api=\"extended_vehicle\",endpoint=\"extended_resources\",vin=\"{BEV}\"}}")),
            Some(1.0),
            "run {run}: {out}"
        );
        assert_eq!(
            value(
                &out,
                &format!("volvo_collect_api_success{{api=\"extended_vehicle\",vin=\"{PETROL}\"}}")
            ),
            Some(1.0),
            "run {run}: {out}"
        );
        assert!(
            out.contains(&format!("resource=\"odometer\",vin=\"{PETROL}\"")),
            "run {run}: {out}"
        );
    }
    assert_eq!(
        sim.requests(&format!("{BEV}/resources")).len(),
        1,
        "the car's 404 is remembered"
    );
}

/// Guards the other side: a 410 saying the API was shut down is the API's, even when another
/// car's list was still answered in the same run; the API is skipped for a day.
#[test]
fn a_shutdown_answer_on_one_cars_list_still_turns_the_api_off() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\", \"{PETROL}\"]"), "");
    let gone = json!({"exveErrorId": "410", "exveErrorMsg": "The Extended Vehicle API has been shut down."});
    sim.faults(json!([
        {"path": format!("=/extended-vehicle/v1/vehicles/{BEV}/resources"), "status": 410, "body": gone},
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "Extended Vehicle API answers that it is shut down");
    assert!(
        value(
            &stdout(&o),
            "volvo_collect_api_unavailable_until_timestamp_seconds{account=\"default\",api=\"extended_vehicle\"}"
        )
        .is_some(),
        "{}",
        stdout(&o)
    );
}
