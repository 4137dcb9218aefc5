//! The scripted day through the real binary: `scripts/bench --day` drives 288 five-minute
//! runs of `volvo-collect --once` against `simulate --scenario day` on the simulator's clock,
//! then the same day with faults (a run failing in the middle of each car's trip, a quota
//! pause over the end of the evening charge). This test checks that the day is played and
//! measured, holds the request planner's targets, and holds the trip and charge records to
//! the truth the day scripted.

use serde_json::Value;

use crate::support::bench_day;

const ELECTRIC: &str = "YV1XZK9V0R2000001";
const PETROL: &str = "YV1ZWA8U0P1000003";
/// 2026-12-01T00:00:00Z.
const DAY_START: i64 = 1_796_083_200;

fn hms(h: i64, m: i64) -> i64 {
    DAY_START + h * 3600 + m * 60
}

/// Whether the log has an upload of `endpoint` by `vin` at `time` that names `field`.
fn uploaded(log: &[Value], vin: &str, endpoint: &str, field: &str, time: i64) -> bool {
    log.iter().any(|u| {
        u["vin"] == vin
            && u["endpoint"] == endpoint
            && u["time"] == time
            && u["fields"].as_array().unwrap().iter().any(|f| f == field)
    })
}

/// Guards the day's figures: requests per car, how late uploads reach the output, each car's
/// modes, and the trip and charge records of both days against the script.
#[test]
fn the_scripted_day_is_played_and_measured() {
    let fig = bench_day(&[]);
    for m in fig["measures"].as_array().unwrap() {
        println!(
            "{:<70} target {:<8} measured {}",
            m["name"].as_str().unwrap(),
            m["target"].as_str().unwrap(),
            m["shown"].as_str().unwrap()
        );
    }
    println!("exit codes: {}", fig["exit_codes"]);

    let keys: Vec<&str> = fig["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["measure"].as_str().unwrap())
        .collect();
    for key in [
        "requests_electric",
        "requests_petrol",
        "late_state",
        "late_trip",
        "late_location",
        "late_tyres_warnings",
        "status_429",
        "status_403",
        "records_trips",
        "records_sessions",
        "records_distance",
        "records_energy",
        "records_faults_trips",
        "records_faults_sessions",
        "records_faults_distance",
        "records_faults_energy",
    ] {
        assert!(keys.contains(&key), "no measure {key} in {keys:?}");
    }
    the_records_match_the_script(&fig);
    assert_eq!(fig["runs"], 288);

    // The targets of the request economy, on the scripted day.
    let measured = |key: &str| -> &Value {
        fig["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["measure"] == key)
            .unwrap_or_else(|| panic!("no measure {key}"))
    };
    for key in [
        "requests_electric",
        "requests_petrol",
        "late_state",
        "late_trip",
        "late_location",
        "late_tyres_warnings",
        "status_429",
    ] {
        assert_eq!(measured(key)["ok"], true, "{key} missed: {}", measured(key));
    }
    // Every run delivered everything: deferring and replaying are not failures.
    assert_eq!(fig["exit_codes"], serde_json::json!({"0": 288}));
    // Each car goes through its modes, in the order of its day.
    let modes = |vin: &str| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for m in fig["modes"][vin].as_array().unwrap() {
            let m = m.as_str().unwrap().to_string();
            if seen.last() != Some(&m) {
                seen.push(m);
            }
        }
        seen
    };
    let ev = modes(ELECTRIC);
    let order = [
        "asleep", "driving", "asleep", "driving", "charging", "asleep",
    ];
    let mut at = 0;
    for m in &ev {
        if at < order.len() && *m == order[at] {
            at += 1;
        }
    }
    assert_eq!(at, order.len(), "electric car's modes: {ev:?}");
    assert!(ev.contains(&"parked_awake".to_string()), "{ev:?}");
    let petrol = modes(PETROL);
    assert!(
        petrol
            .windows(2)
            .any(|w| w == ["driving", "asleep"] || w == ["driving", "parked_awake"]),
        "petrol car's modes: {petrol:?}"
    );
    assert!(!petrol.contains(&"charging".to_string()), "{petrol:?}");
    assert_eq!(fig["status"].get("429"), None, "{}", fig["status"]);
    assert!(fig["requests"]["electric"].as_u64().unwrap() > 0);
    assert!(fig["requests"]["petrol"].as_u64().unwrap() > 0);

    assert_eq!(fig["upload_log"]["day_start"], DAY_START);
    let log = fig["upload_log"]["uploads"].as_array().unwrap();
    // Each mode switch of the day.
    for (start, stop) in [((7, 32), (8, 12)), ((17, 2), (17, 42))] {
        assert!(uploaded(
            log,
            ELECTRIC,
            "engine_status",
            "engineStatus",
            hms(start.0, start.1)
        ));
        assert!(uploaded(
            log,
            ELECTRIC,
            "engine_status",
            "engineStatus",
            hms(stop.0, stop.1)
        ));
        assert!(uploaded(
            log,
            ELECTRIC,
            "location",
            "coordinates",
            hms(stop.0, stop.1)
        ));
    }
    assert!(uploaded(
        log,
        ELECTRIC,
        "energy_state",
        "chargingStatus",
        hms(18, 0)
    ));
    assert!(uploaded(
        log,
        ELECTRIC,
        "energy_state",
        "chargingStatus",
        hms(22, 0)
    ));
    assert!(uploaded(log, ELECTRIC, "tyres", "frontLeft", hms(20, 0)));
    assert!(uploaded(
        log,
        PETROL,
        "engine_status",
        "engineStatus",
        hms(12, 2)
    ));
    assert!(uploaded(
        log,
        PETROL,
        "engine_status",
        "engineStatus",
        hms(12, 47)
    ));
    assert!(uploaded(log, PETROL, "odometer", "odometer", hms(12, 30)));
    assert!(uploaded(
        log,
        PETROL,
        "location",
        "coordinates",
        hms(12, 47)
    ));
}

/// The records at the end of each day against the script: trips and sessions counted exactly,
/// distance within 1 % of the odometer's truth, charged energy within 3 % of the level's rise
/// times the capacity; on the faults day, only after the faults really hit a trip and the
/// charge's end.
fn the_records_match_the_script(fig: &Value) {
    for variant in ["day", "faults"] {
        let r = &fig["records"][variant];
        println!("records ({variant}): {r}");
        let car = |vin: &str, key: &str| &r["by_car"][vin][key];
        // The script's own count, so that a truth worked out wrong cannot pass unseen.
        for (vin, key, n) in [
            (ELECTRIC, "trips", 2),
            (ELECTRIC, "sessions", 1),
            (PETROL, "trips", 1),
            (PETROL, "sessions", 0),
        ] {
            assert_eq!(car(vin, key)["scripted"], n, "{variant}: {vin} {key}");
            assert_eq!(car(vin, key)["counted"], n, "{variant}: {vin} {key}");
        }
        assert_eq!(r["trips"]["counted"], r["trips"]["scripted"], "{variant}");
        assert_eq!(
            r["sessions"]["counted"], r["sessions"]["scripted"],
            "{variant}"
        );
        let distance = r["distance_error_pct"].as_f64().expect("a distance error");
        assert!(distance <= 1.0, "{variant}: distance off by {distance} %");
        let energy = r["energy_error_pct"].as_f64().expect("an energy error");
        assert!(energy <= 3.0, "{variant}: charged energy off by {energy} %");
        // 32 km twice and 28 % of 78 kWh: the scripted truth itself.
        assert_eq!(car(ELECTRIC, "distance_m")["scripted"], 64_000.0);
        let kwh = car(ELECTRIC, "energy_j")["scripted"].as_f64().unwrap() / 3.6e6;
        assert!((kwh - 0.28 * 78.0).abs() < 1e-6, "{kwh} kWh");
        assert_eq!(car(PETROL, "energy_j")["scripted"], Value::Null);
    }
    let f = &fig["records"]["faults"];
    // A run in the middle of each trip (07:32-08:12 and 12:02-12:47) failed ...
    assert_eq!(f["faults"]["07:50"], serde_json::json!([503]), "{f}");
    assert_eq!(f["faults"]["12:20"], serde_json::json!([503]), "{f}");
    // ... and the quota pause began during the charge and lasted past its end at 22:00.
    let paused = &f["quota_paused_runs"];
    assert_eq!(paused["first"], "20:00", "{paused}");
    assert!(paused["last"].as_str().unwrap() >= "22:00", "{paused}");
    let failed: u64 = f["exit_codes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(code, _)| *code != "0")
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(failed, 2 + paused["count"].as_u64().unwrap(), "{f}");
    for key in [
        "records_trips",
        "records_sessions",
        "records_distance",
        "records_energy",
        "records_faults_trips",
        "records_faults_sessions",
        "records_faults_distance",
        "records_faults_energy",
    ] {
        let m = fig["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["measure"] == key)
            .unwrap();
        assert_eq!(m["ok"], true, "{key} missed: {m}");
    }
}
