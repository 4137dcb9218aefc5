//! No wait in a run outlives its deadline: a fault injected at each step of a run (the vehicle
//! list, capabilities, every endpoint) ends the process within `collect.timeout` plus the
//! step's own timeout and a few seconds, and an output within `collect.timeout` itself, with
//! the documented exit code. Faults hang
//! (an answer 60 s late) unless said otherwise. The one exception is a sent token refresh,
//! whose answer is waited for (it carries the only valid refresh token).

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::json;

const HANG_MS: u64 = 60_000;

/// Runs `--once` with `extra` arguments after `fault` is injected; returns the exit code and
/// how long the process took.
fn run_with(
    fault: serde_json::Value,
    volvo: &str,
    rest: &str,
    extra: &[&str],
) -> (i32, Duration, String) {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, volvo, rest);
    sim.faults(json!([fault]));
    let started = Instant::now();
    let mut args = vec!["--once"];
    args.extend_from_slice(extra);
    let o = ws.run(&args);
    (code(&o), started.elapsed(), stderr(&o))
}

/// A generous bound: deadline + a request timeout + slack for a loaded test machine.
fn assert_ends(step: &str, took: Duration, bound_s: u64) {
    assert!(
        took < Duration::from_secs(bound_s),
        "{step}: the run took {took:?}, more than {bound_s} s"
    );
}

const COLLECT: &str = "[collect]\ntimeout = \"3s\"\nrequest_timeout = \"2s\"\n";

#[test]
fn a_hang_at_any_api_step_ends_within_the_deadline() {
    let bev = format!("vins = [\"{BEV}\"]");
    // (step, fault path, configured VINs, expected exit code)
    let cases: Vec<(&str, String, &str, i32)> = vec![
        (
            "vehicle list",
            "=/connected-vehicle/v2/vehicles".into(),
            "",
            75,
        ),
        (
            "energy_capabilities",
            "/capabilities".into(),
            bev.as_str(),
            1,
        ),
        (
            "energy state",
            "/energy/v2/vehicles".into(),
            bev.as_str(),
            1,
        ),
        ("location", "/location/".into(), bev.as_str(), 1),
        (
            "extended vehicle",
            "/extended-vehicle/".into(),
            bev.as_str(),
            1,
        ),
    ];
    let mut cases = cases;
    use volvo_collect::endpoints::{Endpoint, Origin};
    for e in Endpoint::of_api(Origin::ConnectedVehicle) {
        if e == Endpoint::Engine {
            continue; // the BEV does not support it: its 404 comes before any fault matters
        }
        cases.push((e.name(), format!("={}", e.path(BEV, None)), bev.as_str(), 1));
    }
    for (step, path, volvo, expect) in cases {
        let fault =
            json!({"path": path, "status": 200, "body": "{}", "delay_ms": HANG_MS, "times": 0});
        let (code, took, err) = run_with(fault, volvo, COLLECT, &["--stdout"]);
        assert_ends(step, took, 3 + 2 + 8);
        assert_eq!(code, expect, "{step}: {err}");
    }
}

#[test]
fn one_401_on_the_vehicle_list_renews_once_and_the_run_ends() {
    let fault = json!({"path": "=/connected-vehicle/v2/vehicles", "status": 401,
        "body": "{\"error\":{\"message\":\"Invalid token\"}}", "times": 1});
    let (code, took, err) = run_with(fault, "", COLLECT, &["--stdout"]);
    assert_ends("401 on the vehicle list", took, 3 + 2 + 8);
    assert_eq!(code, 0, "{err}");
}

/// The one wait that may outlive the run's deadline: a sent refresh waits for Volvo ID's
/// answer (up to two minutes), since Volvo ID spends the old refresh token when it answers.
/// The run then ends as soon as the answer is saved.
#[test]
fn a_slow_token_endpoint_is_waited_for_past_the_deadline_and_no_longer() {
    const SLOW_MS: u64 = 10_000;
    let fault = json!({"path": "/as/token.oauth2", "status": 200, "body": "{}", "delay_ms": SLOW_MS, "times": 0});
    let (code, took, err) = run_with(
        fault,
        &format!("vins = [\"{BEV}\"]"),
        COLLECT,
        &["--stdout"],
    );
    assert!(
        took >= Duration::from_millis(SLOW_MS),
        "took {took:?}: {err}"
    );
    assert_ends("token refresh", took, SLOW_MS / 1000 + 8);
    // The answer holds no token: the refresh token is kept and the next run refreshes.
    assert_eq!(code, 75, "{err}");
}

/// Guards the deadline against the outputs: a Pushgateway that never answers, with a timeout
/// longer than the whole run, ends the run by `collect.timeout` (the outputs' time comes out
/// of the run's). It used to end after the output's own timeout, past the deadline.
#[test]
fn a_hanging_output_ends_by_the_runs_deadline() {
    // A Pushgateway that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let rest = format!("{COLLECT}[pushgateway]\ntimeout = \"30s\"\n");
    let (code, took, err) = run_with(
        json!({"path": "/nothing", "status": 500}),
        &format!("vins = [\"{BEV}\"]"),
        &rest,
        &["--pushgateway", &url],
    );
    assert_ends("pushgateway", took, 3 + 4);
    assert_eq!(code, 74, "{err}");
    assert!(err.contains("no answer before the run's deadline"), "{err}");
}

/// Guards an output's refusal whose body stalls after its status (a proxy's 500 that never
/// finishes): the run said "no answer before the run's deadline" although the output had
/// answered HTTP 500. The status is the answer; its body is waited for a moment only.
#[test]
fn an_outputs_refusal_with_a_stalled_body_is_said_by_its_status() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _answer = std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut c in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = c.read(&mut request);
            let _ = c.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nupstream",
            );
            held.push(c);
        }
    });
    // Time enough for the body's wait however slow the machine: the deadline is not under test.
    let rest = "[collect]\ntimeout = \"20s\"\n[pushgateway]\ntimeout = \"30s\"\n";
    let (code, _, err) = run_with(
        json!({"path": "/nothing", "status": 500}),
        &format!("vins = [\"{BEV}\"]"),
        rest,
        &["--pushgateway", &url],
    );
    assert_eq!(code, 74, "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(
        !err.contains("no answer before the run's deadline"),
        "{err}"
    );
}

/// An Energy state of `{}` from a car whose capabilities say it has one is a decode problem,
/// not a success without data.
#[test]
fn an_empty_energy_state_is_a_decode_problem() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    sim.faults(json!([{"path": format!("/energy/v2/vehicles/{BEV}/state"), "status": 200, "body": "{}", "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        value(
            &out,
            &format!("volvo_collect_api_success{{api=\"energy\",vin=\"{BEV}\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&out, &format!("volvo_collect_endpoint_error{{api=\"energy\",endpoint=\"energy_state\",reason=\"decode\",vin=\"{BEV}\"}}")),
        Some(1.0)
    );
}

/// While the daily quota is used up, the outputs keep every car's series: the last answers
/// are replayed with their source times, in the run that meets the quota's 403 and in the
/// runs that wait for it to be replenished.
#[test]
fn the_quota_pause_replays_the_last_answers() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let first = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let odometer = format!("volvo_odometer_meters{{vin=\"{BEV}\"}}");
    let before = value(&stdout(&first), &odometer);
    assert!(before.is_some());
    sim.faults(json!([{"path": "/", "status": 403, "times": 0,
        "body": "{\"statusCode\":403,\"message\":\"Out of call volume quota. Quota will be replenished in 06:40:24.\"}"}]));
    for run in ["meets the 403", "waits for the quota"] {
        let o = ws.run(&["--once", "--stdout"]);
        let out = stdout(&o);
        assert_eq!(code(&o), 75, "{run}: {}", stderr(&o));
        assert_eq!(value(&out, &odometer), before, "{run}: {out}");
        assert_eq!(
            value(&out, "volvo_collect_quota_exhausted{account=\"default\"}"),
            Some(1.0),
            "{run}"
        );
    }
}

/// The quota's answer on the account's vehicle list replays the list as silently as every
/// other answer: no warning that the list failed, and every car is still delivered.
#[test]
fn a_quota_answer_on_the_vehicle_list_replays_it_silently() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let t0 = unix_now() as f64;
    let o = ws.run_at(&sim, t0, &["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    sim.faults(json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 403, "times": 0,
        "body": "{\"statusCode\":403,\"message\":\"Out of call volume quota. Quota will be replenished in 06:40:24.\"}"}]));
    // A day on, when the list is due again.
    let o = ws.run_at(&sim, t0 + 86_400.0 + 60.0, &["--once", "--stdout"]);
    let out = stdout(&o);
    assert_eq!(
        value(&out, "volvo_collect_quota_exhausted{account=\"default\"}"),
        Some(1.0),
        "{out}"
    );
    assert!(
        !stderr(&o).contains("the vehicle list failed"),
        "{}",
        stderr(&o)
    );
    for vin in [BEV, PHEV, PETROL, DIESEL] {
        let odometer = format!("volvo_odometer_meters{{vin=\"{vin}\"}}");
        assert!(value(&out, &odometer).is_some(), "{vin} hidden: {out}");
    }
}

/// The exit-code rule through the binary: a vehicle list of garbage collects nothing (75, not
/// the 1 that systemd counts as success) and says so in the self-metrics; a list refused for
/// the API key is a configuration error (78); one quota 403 on one endpoint while the other
/// answers came is partial (1), not "nothing collected".
#[test]
fn exit_codes_follow_one_rule() {
    let garbage = json!({"path": "=/connected-vehicle/v2/vehicles", "status": 200,
        "body": "<html>maintenance</html>", "times": 0});
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    sim.faults(json!([garbage]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_eq!(
        value(
            &stdout(&o),
            "volvo_collect_endpoint_error{api=\"connected_vehicle\",endpoint=\"vehicles\",reason=\"decode\",vin=\"\"}"
        ),
        Some(1.0),
        "{}",
        stdout(&o)
    );

    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    sim.faults(json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 401, "times": 0,
        "body": "{\"status\":401,\"error\":{\"message\":\"Access denied due to invalid VCC-API-KEY.\"}}"}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(stderr(&o).contains("api_key"), "{}", stderr(&o));

    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    sim.faults(json!([{"path": "/odometer", "status": 403, "times": 0,
        "body": "{\"statusCode\":403,\"message\":\"Out of call volume quota. Quota will be replenished in 01:00:00.\"}"}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("volvo_central_lock_state{"),
        "{}",
        stdout(&o)
    );
}
