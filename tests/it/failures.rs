//! Failures and hostile input through the real binary and simulator: retries and back-off,
//! Retry-After, no retry of other 4xx, pacing below Volvo's rate limit, the daily quota,
//! partial results with bounded reasons, the state file's recovery, hostile bodies and label
//! values, and redaction of every secret at trace level.

use crate::support::*;
use serde_json::json;

fn only_bev(sim: &Sim, rest: &str) -> Workspace {
    Workspace::new(sim, &format!("vins = [\"{BEV}\"]"), rest)
}

fn count(sim: &Sim, suffix: &str) -> usize {
    sim.requests(suffix)
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with(suffix))
        .count()
}

/// 503 twice, then the answer: retried with back-off, delivered, and both retries counted.
#[test]
fn server_errors_are_retried_and_counted() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    sim.faults(json!([{"path": format!("/v2/vehicles/{BEV}/odometer"), "status": 503, "body": "{}", "times": 2}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(count(&sim, &format!("/v2/vehicles/{BEV}/odometer")), 3);
    assert_eq!(
        value(
            &out,
            "volvo_collect_retries_total{account=\"default\",api=\"connected_vehicle\"}"
        ),
        Some(2.0)
    );
    assert_eq!(value(&out, "volvo_collect_requests_total{account=\"default\",api=\"connected_vehicle\",endpoint=\"/vehicles/{vin}/odometer\",status=\"503\"}"), Some(2.0));
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
}

/// A 500 that never ends: three attempts, then the endpoint is reported as server_error and
/// the rest of the car is still delivered (exit 1).
#[test]
fn a_lasting_server_error_gives_a_partial_result() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    sim.faults(json!([{"path": "/tyres", "status": 500, "body": "<html>oops</html>", "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(count(&sim, "/tyres"), 3);
    let out = stdout(&o);
    assert_eq!(
        value(&out, &format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"tyres\",reason=\"server_error\",vin=\"{BEV}\"}}")),
        Some(1.0)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_collect_api_success{{api=\"connected_vehicle\",vin=\"{BEV}\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_collect_api_success{{api=\"energy\",vin=\"{BEV}\"}}")
        ),
        Some(1.0)
    );
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    assert!(!out.contains("volvo_tyre_pressure_warning_state{"));
    promtool_check(&out);
}

/// A failure that will likely pass (here a 503 through every retry) leaves the last answer
/// standing in: the doors' and lock's series, upload times included, are the last run's, so
/// a dashboard or an alert on them sees no gap, while the self-metrics and the exit code
/// report the failure. A failure that will not pass by itself (here a 400) stands: the
/// series are left out rather than shown as if nothing had happened.
#[test]
fn a_passing_failure_keeps_the_last_answer_and_reports_the_failure() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let doors = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("volvo_door_") || l.starts_with("volvo_central_lock_"))
            .map(String::from)
            .collect()
    };
    let error = |reason: &str| {
        format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"doors\",reason=\"{reason}\",vin=\"{BEV}\"}}")
    };
    let success = format!("volvo_collect_api_success{{api=\"connected_vehicle\",vin=\"{BEV}\"}}");
    let t0 = unix_now() as f64;
    let o = ws.run_at(&sim, t0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = stdout(&o);
    assert!(doors(&first).len() > 4, "{first}");

    sim.faults(json!([{"path": "/doors", "status": 503, "body": "{}", "times": 3}]));
    let o = ws.run_at(&sim, t0 + 300.0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(count(&sim, "/doors"), 4, "asked, and retried twice");
    assert_eq!(doors(&out), doors(&first));
    assert_eq!(value(&out, &error("server_error")), Some(1.0), "{out}");
    assert_eq!(value(&out, &success), Some(0.0), "{out}");
    assert_stderr_contains(&o, "doors: Volvo server error (HTTP 503)");
    promtool_check(&out);

    sim.faults(json!([{"path": "/doors", "status": 400, "body": "{}", "times": 1}]));
    let o = ws.run_at(&sim, t0 + 600.0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(doors(&out), Vec::<String>::new(), "{out}");
    assert_eq!(value(&out, &error("client_error")), Some(1.0), "{out}");
    assert_eq!(value(&out, &success), Some(0.0), "{out}");
}

/// Extended Vehicle's values fail per resource: one resource's 503, behind which the last
/// answer stands in, is reported though another resource of the same endpoint answers 404
/// (not supported, no failure) in the same run.
#[test]
fn a_stood_in_failure_is_reported_beside_another_resources_404() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let t0 = unix_now() as f64;
    let o = ws.run_at(&sim, t0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    sim.faults(json!([
        {"path": format!("{BEV}/resources/odometer"), "status": 503, "body": "{}", "times": 0},
        {"path": format!("{BEV}/resources/frontLeftDoor"), "status": 404, "body": {"error": {"message": "NOT_FOUND", "description": "Resource not found"}}, "times": 0},
    ]));
    // Seven hours on, when the values are due again.
    let o = ws.run_at(&sim, t0 + 7.0 * 3600.0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    let error = format!("volvo_collect_endpoint_error{{api=\"extended_vehicle\",endpoint=\"extended_values\",reason=\"server_error\",vin=\"{BEV}\"}}");
    assert_eq!(value(&out, &error), Some(1.0), "{out}");
    let success = format!("volvo_collect_api_success{{api=\"extended_vehicle\",vin=\"{BEV}\"}}");
    assert_eq!(value(&out, &success), Some(0.0), "{out}");
    promtool_check(&out);
}

/// Other 4xx answers are final: asked once.
#[test]
fn client_errors_are_not_retried() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    sim.faults(json!([{"path": "/brakes", "status": 422, "body": "{\"error\":{\"message\":\"Unprocessable\"}}", "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1);
    assert_eq!(count(&sim, "/brakes"), 1);
    assert!(stdout(&o).contains("endpoint=\"brakes\",reason=\"client_error\""));
}

/// 429 with Retry-After: the retry waits at least that long; without it, back-off.
#[test]
fn rate_limited_answers_are_retried_honouring_retry_after() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    sim.faults(json!([
        {"path": "/doors", "status": 429, "body": "{}", "retry_after": "1", "times": 1},
        {"path": "/windows", "status": 429, "body": "{}", "times": 1}
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doors = sim.requests("/doors");
    assert_eq!(doors.len(), 2);
    let gap = doors[1]["start_ms"].as_f64().unwrap() - doors[0]["end_ms"].as_f64().unwrap();
    assert!(
        gap >= 1000.0,
        "retried after {gap} ms despite Retry-After: 1"
    );
    assert_eq!(count(&sim, "/windows"), 2);
    assert_eq!(
        value(
            &stdout(&o),
            "volvo_collect_retries_total{account=\"default\",api=\"connected_vehicle\"}"
        ),
        Some(2.0)
    );
}

/// The minute window keeps a run under Volvo's per-minute limit: what does not fit is
/// deferred to the next run (not failed, not sent into a 429), the most important first, and
/// the next run after the minute asks it. Without the window the same run is refused.
#[test]
fn the_minute_window_defers_instead_of_drawing_429s() {
    let sim = Sim::start(&["--rate-limit", "30"]);
    let ws = Workspace::new(&sim, "", "[collect]\nrequests_per_minute = 25\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "deferring is not a failure: {}", stderr(&o));
    let api_requests = sim.gets();
    assert!(api_requests.len() <= 25, "{} requests", api_requests.len());
    assert!(api_requests.iter().all(|r| r["status"] != 429));
    let out = stdout(&o);
    assert!(out.contains("volvo_collect_endpoint_deferred{"), "{out}");
    assert!(!out.contains("reason=\"timeout\""), "{out}");
    // A first run has no earlier answer to replay: what it deferred is missing. That is no
    // failure (exit 0), but the success gauges say not everything was collected: each API
    // of a car with such an endpoint is 0, and so is the run.
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(0.0), "{out}");
    assert!(
        !out.contains("\nvolvo_collect_last_success_timestamp_seconds{"),
        "{out}"
    );
    let missing: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("volvo_collect_api_success{") && l.ends_with("} 0"))
        .collect();
    assert!(!missing.is_empty(), "{out}");
    for line in missing {
        let labels = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
        assert!(
            out.lines()
                .any(|l| l.starts_with("volvo_collect_endpoint_deferred{")
                    && labels.split(',').all(|label| l.contains(label))),
            "{line} without a deferred endpoint: {out}"
        );
    }
    // Every car's doors (lock) came first.
    for vin in [BEV, PHEV, PETROL, DIESEL] {
        assert!(
            out.contains(&format!(
                "volvo_central_lock_state{{state=\"LOCKED\",vin=\"{vin}\"}}"
            )),
            "{vin}: {out}"
        );
    }

    let sim = Sim::start(&["--rate-limit", "30"]);
    let ws = Workspace::new(
        &sim,
        "",
        "[collect]\nrequests_per_minute = 0\ntimeout = \"3s\"\n",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 0);
    assert!(sim.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["status"] == 429));
}

/// Guards a run whose minute is full just as the kept vehicle list is due again: the list
/// is deferred and its last answer stands in. It once ended the run without learning the cars
/// from it, and the run panicked (exit 101, nothing delivered).
#[test]
fn a_deferred_vehicle_list_is_replayed_when_the_minute_is_full() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        "",
        "[collect]\nrequests_per_minute = 3\n[schedule]\nvehicles = \"1s\"\n",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        value(&out, "volvo_collect_vehicles{account=\"default\"}"),
        Some(4.0),
        "{out}"
    );
    assert!(
        out.contains("volvo_collect_endpoint_deferred{api=\"connected_vehicle\",endpoint=\"vehicles\",vin=\"\"} 1"),
        "{out}"
    );
}

/// The daily quota's 403: no more requests this run, exit 75 (not 77), remembered with its end
/// so the next run spends nothing, and visible in the self-metrics.
#[test]
fn the_daily_quota_stops_requests_until_it_is_replenished() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "[collect]\nconcurrency = 1\n");
    let body = r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 06:40:24."}"#;
    sim.faults(json!([{"path": "/vehicles", "status": 403, "body": body, "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("login"),
        "a quota is not a login problem: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert_eq!(
        value(&out, "volvo_collect_quota_exhausted{account=\"default\"}"),
        Some(1.0)
    );
    let reset = value(
        &out,
        "volvo_collect_quota_reset_timestamp_seconds{account=\"default\"}",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (reset - (now + 24024.0)).abs() < 120.0,
        "reset {reset} vs now {now}"
    );
    // With one request in flight at a time, the first 403 stops the run's requests.
    let api = sim.gets().len();
    assert_eq!(api, 1, "requests after the quota's 403");
    let state: serde_json::Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    assert!(state["quota_until"].as_i64().is_some());
    // The next run asks nothing at all.
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75);
    assert_eq!(sim.gets().len(), 1);
    assert_stderr_contains(&o, "quota is used up until");
    assert_eq!(
        value(
            &stdout(&o),
            "volvo_collect_quota_exhausted{account=\"default\"}"
        ),
        Some(1.0)
    );
}

/// A refused access token: one refresh, one retry, success. A refused API key is not a login
/// problem and says to check api_key.
#[test]
fn a_401_refreshes_once_and_an_api_key_401_names_the_key() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let body = r#"{"error":{"message":"Unauthorized","description":"The access token is invalid or has expired"}}"#;
    sim.faults(json!([{"path": "/fuel", "status": 401, "body": body, "times": 1}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        sim.stats()["refreshes"],
        2,
        "one at the start (expired token), one after the 401"
    );
    assert_eq!(count(&sim, "/fuel"), 2);

    let ws = only_bev(&sim, "");
    ws.write(
        "collector.toml",
        &ws.read("collector.toml")
            .replace("demo-api-key", "wrong-key"),
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 77);
    assert_stderr_contains(&o, "check volvo.api_key");
}

/// A damaged or foreign state file is rebuilt with one warning, and the run goes on. What was
/// there is set aside as `<state_file>.damaged`, not overwritten, for whoever wants to look.
#[test]
fn a_damaged_state_file_is_set_aside_and_rebuilt() {
    let sim = Sim::start(&[]);
    for content in ["{not json", "{\"version\": 99}", ""] {
        let ws = only_bev(&sim, "");
        ws.write("token.state.json", content);
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            stderr(&o).matches("state file").count() <= 1,
            "{}",
            stderr(&o)
        );
        assert_stderr_contains(&o, "set aside as");
        assert!(!stderr(&o).contains("replacing"), "{}", stderr(&o));
        assert_eq!(ws.read("token.state.json.damaged"), content);
        // A second damaged file replaces the first, and says so.
        ws.write("token.state.json", "{again");
        let o = ws.run(&["--once", "--stdout"]);
        assert_stderr_contains(&o, "(replacing the one set aside before)");
        assert_eq!(ws.read("token.state.json.damaged"), "{again");
        let state: serde_json::Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
        assert_eq!(state["version"], 1);
    }
}

/// Hostile bodies through the whole pipeline: each endpoint fails or is skipped on its own,
/// nothing becomes 0, the output stays valid exposition.
#[test]
fn hostile_bodies_never_break_the_output() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let big = format!("{{\"data\":{{\"x\":\"{}\"}}}}", "a".repeat(3 * 1024 * 1024));
    sim.faults(json!([
        {"path": "/doors", "status": 200, "body": "{\"data\": {\"frontLeftDoor\": ", "times": 0},
        {"path": "/windows", "status": 200, "body": "not json at all", "times": 0},
        {"path": "/tyres", "status": 200, "body": "[1, 2, 3]", "times": 0},
        {"path": "/warnings", "status": 200, "body": big, "times": 0},
        {"path": "/odometer", "status": 200, "body": "{\"data\": {\"odometer\": {\"value\": \"NaN\", \"unit\": \"km\"}}}", "times": 0},
        {"path": "/fuel", "status": 200, "body": "{\"data\": {\"batteryChargeLevel\": {\"value\": true, \"unit\": \"percentage\"}, \"fuelAmount\": {\"value\": \"Infinity\", \"unit\": \"l\"}}}", "times": 0},
        {"path": "/statistics", "status": 200, "body": "{\"data\": {\"averageSpeed\": {\"value\": 1e308, \"unit\": \"mph\"}, \"tripMeterManual\": {\"value\": {}, \"unit\": \"km\"}}}", "times": 0},
        {"path": "/engine-status", "status": 200, "body": "{\"data\": {\"engineStatus\": {\"value\": \"WARP_DRIVE\"}}}", "times": 0},
        {"path": "/diagnostics", "status": 200, "body": "{\"data\": {\"serviceTrigger\": {\"value\": \"q\\\"uo\\\\te\\nnew line ü\"}, \"distanceToService\": {\"value\": 100, \"unit\": \"furlongs\"}}}", "times": 0},
        {"path": "=/connected-vehicle/v2/vehicles/YV1XZK9V0R2000001", "status": 200, "body": "{\"data\": {\"vin\": 5, \"modelYear\": [], \"descriptions\": {\"model\": \"XC40 \\\"Recharge\\\" \\\\ \\n ü\"}}}", "times": 0}
    ]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    promtool_check(&out);
    check_exposition(&out);
    let v = |k: &str| value(&out, k);
    for (endpoint, reason) in [
        ("doors", "decode"),
        ("windows", "decode"),
        ("tyres", "decode"),
        ("warnings", "decode"),
    ] {
        assert_eq!(
            v(&format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"{endpoint}\",reason=\"{reason}\",vin=\"{BEV}\"}}")),
            Some(1.0),
            "{endpoint}"
        );
    }
    // Bad values are absent, not 0, and counted.
    assert!(!out.contains("volvo_odometer_meters{"));
    assert!(!out.contains("volvo_fuel_amount_liters{"));
    assert!(!out.contains("volvo_battery_charge_level_ratio{"));
    assert!(!out.contains("volvo_trip_meter_meters{"));
    assert!(!out.contains("volvo_engine_running{"));
    assert!(!out.contains("volvo_distance_to_service_meters{"));
    let skipped: f64 = out
        .lines()
        .filter(|l| {
            l.starts_with("volvo_collect_fields_skipped{") && l.contains("connected_vehicle")
        })
        .map(|l| split_sample(l).1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(skipped, 6.0, "skipped fields");
    // A huge but finite number is a number: it is exported, converted.
    assert!(
        v(&format!(
            "volvo_average_speed_meters_per_second{{trip=\"manual\",vin=\"{BEV}\"}}"
        ))
        .unwrap()
            > 1e307
    );
    // Hostile label values arrive escaped.
    assert!(
        out.contains(
            r#"volvo_service_trigger_state{state="q\"uo\\te_new line ü",vin="YV1XZK9V0R2000001"} 1"#
        ),
        "{out}"
    );
    assert!(out.contains(r#"model="XC40 \"Recharge\" \\ _ ü""#), "{out}");
    // The other APIs are untouched.
    assert!(v(&format!(
        "volvo_energy_battery_charge_level_ratio{{vin=\"{BEV}\"}}"
    ))
    .is_some());
}

/// A vehicle list with odd VINs (a path, quotes and a line break): none is a VIN, so none is
/// asked or exported; each is named in a warning on one line, the real car is read, and the
/// exposition stays valid.
#[test]
fn odd_vins_from_the_vehicle_list_stay_harmless() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[sources]\nextended_vehicle = false\n");
    let list = json!({"data": [{"vin": BEV}, {"vin": "../../as/token.oauth2"}, {"vin": "YV1\"odd\\vin\nÅ"}]}).to_string();
    sim.faults(json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 200, "body": list, "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    let out = stdout(&o);
    promtool_check(&out);
    check_exposition(&out);
    assert!(
        !out.contains("odd") && !out.contains("token.oauth2"),
        "{out}"
    );
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    let log = stderr(&o);
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("names something that is no VIN"))
        .collect();
    assert_eq!(warned.len(), 2, "{log}");
    // Each on one line of its own: the odd VIN quoted, its line break escaped.
    assert!(warned[0].contains("token.oauth2"), "{log}");
    assert!(warned[1].contains(r#"odd\\vin\nÅ"#), "{log}");
    // No request left the API paths.
    assert!(sim.gets().iter().all(|r| {
        let p = r["path"].as_str().unwrap();
        p.starts_with("/connected-vehicle/")
            || p.starts_with("/energy/")
            || p.starts_with("/location/")
    }));
    assert_eq!(sim.stats()["refreshes"], 1);
}

/// No secret appears anywhere in the output of runs at trace level, across a refresh, a 401
/// renewal and an error; nor the car's coordinates in the log.
#[test]
fn secrets_never_reach_the_log_even_at_trace_level() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let first = ws.token();
    sim.faults(json!([{"path": "/fuel", "status": 401, "body": "{}", "times": 1}, {"path": "/brakes", "status": 500, "body": "{}", "times": 0}]));
    let mut cmd = ws.command(&["--once", "--stdout"]);
    cmd.env("LOG_LEVEL", "trace");
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let after = ws.token();
    let log = stderr(&o);
    assert!(log.lines().count() > 50, "trace logging is on");
    let mut secrets = vec!["demo-secret".to_string(), "demo-api-key".to_string()];
    for t in [&first, &after] {
        secrets.push(t["access_token"].as_str().unwrap().to_string());
        secrets.push(t["refresh_token"].as_str().unwrap().to_string());
    }
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "a secret is in the log");
        assert!(
            !stdout(&o).contains(s.as_str()),
            "a secret is in the output"
        );
    }
    // A dead refresh token's error message names no token either.
    ws.write("token.json", &first.to_string());
    let mut cmd = ws.command(&["--once", "--stdout"]);
    cmd.env("LOG_LEVEL", "trace");
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 77);
    for s in &secrets {
        assert!(
            !stderr(&o).contains(s.as_str()),
            "a secret is in the log of a failed refresh"
        );
    }
    // Coordinates are data, not log lines.
    ws.write("token.json", &sim.token(true).to_string());
    let mut cmd = ws.command(&["--once", "--stdout"]);
    cmd.env("LOG_LEVEL", "trace");
    let o = cmd.output().unwrap();
    let lat = value(
        &stdout(&o),
        &format!("volvo_location_latitude_degrees{{vin=\"{BEV}\"}}"),
    )
    .unwrap();
    assert!(
        !stderr(&o).contains(&format!("{lat}")),
        "the latitude is in the log"
    );
}

/// Guards the log against a server that echoes a request: an error body quoting the access
/// token, the API key or any `Bearer` credentials is shown masked, at every level.
#[test]
fn server_text_that_echoes_a_secret_is_masked() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    ws.write("token.json", &sim.token(false).to_string());
    let access = ws.token()["access_token"].as_str().unwrap().to_string();
    let echo = |m: String| json!({"error": {"message": m}}).to_string();
    sim.faults(json!([
        {"path": "/odometer", "status": 400, "body": echo(format!("bad request for token {access}")), "times": 0},
        {"path": "/doors", "status": 400, "body": echo("denied for Bearer Other-Token_123456 key demo-api-key".into()), "times": 0},
        // A secret where the message is cut short.
        {"path": "/windows", "status": 400, "body": format!("{} {access}", "y".repeat(100)), "times": 0},
    ]));
    let mut cmd = ws.command(&["--once", "--stdout"]);
    cmd.env("LOG_LEVEL", "trace");
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let log = stderr(&o);
    assert!(log.contains("bad request for token (redacted)"), "{log}");
    assert!(
        log.contains("denied for Bearer (redacted) key (redacted)"),
        "{log}"
    );
    for s in [access.as_str(), "Other-Token_123456", "demo-api-key"] {
        assert!(!log.contains(s), "a secret is in the log");
    }
    assert!(!log.contains(&access[..12]), "a cut secret is in the log");
}

/// `/dev/full`, opened for writing: a device that is always full.
fn full_device() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

/// Guards the exit code against a log that cannot be written (standard error on a full
/// disk): the run still writes its output and says how it went by its code, not by a panic.
#[test]
fn a_full_standard_error_changes_nothing() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    let o = ws
        .command(&["--once", "--stdout"])
        .env("LOG_LEVEL", "debug")
        .stderr(full_device())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(value(
        &stdout(&o),
        &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")
    )
    .is_some());
    // A failed run's last words go nowhere too, and its code stays the documented one.
    ws.write("token.json", "{");
    let o = ws
        .command(&["--once", "--stdout"])
        .stderr(full_device())
        .output()
        .unwrap();
    assert_eq!(code(&o), 77);
}

/// Guards the commands that print text against a standard output that cannot be written:
/// `check`, `man` and `completions` on a full disk said nothing and exited 0; now they exit 74
/// (the output failed) and say why, while a closed pipe (`| head`) stays the reader's choice.
#[test]
fn a_full_standard_output_fails_the_commands_that_print() {
    let sim = Sim::start(&[]);
    let ws = only_bev(&sim, "");
    for args in [
        &["check", "--offline"][..],
        &["man"],
        &["completions", "bash"],
    ] {
        let o = ws.command(args).stdout(full_device()).output().unwrap();
        assert_eq!(code(&o), 74, "{args:?}: {}", stderr(&o));
        assert_stderr_contains(&o, "writing to standard output failed");
    }
    // A reader that closes the pipe early.
    let o = with_stdout_closed(ws.command(&["man"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}
