//! The scripted day through the real binary: `scripts/bench --day` drives 288 five-minute
//! runs of `volvo-collect --once` against `simulate --scenario day` on the simulator's clock.
//! This test checks that the day is played and measured; the figures are printed, and the
//! targets they are held to belong to the request planner's tests.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ELECTRIC: &str = "YV1XZK9V0R2000001";
const PETROL: &str = "YV1ZWA8U0P1000003";
/// 2026-12-01T00:00:00Z.
const DAY_START: i64 = 1_796_083_200;

fn hms(h: i64, m: i64) -> i64 {
    DAY_START + h * 3600 + m * 60
}

fn bench_day() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/bench"))
        .args(["--day", "--no-build", "--json", "--bin"])
        .arg(env!("CARGO_BIN_EXE_volvo-collect"))
        .current_dir(root)
        .output()
        .expect("python3 runs scripts/bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/bench --day failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
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

#[test]
fn the_scripted_day_is_played_and_measured() {
    let fig = bench_day();
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
    ] {
        assert!(keys.contains(&key), "no measure {key} in {keys:?}");
    }
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
