//! The simulator's answers — every sample car's every path, the vehicle lists and the error
//! bodies it makes itself — must match our own OpenAPI documents in `open-api/`.

use crate::support::*;
use serde_json::Value;
use std::path::Path;

fn doc_for(path: &str) -> (Value, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("open-api");
    let (file, prefix) = [
        ("connected-vehicle-v2.json", "/connected-vehicle/v2"),
        ("energy-v2.json", "/energy/v2"),
        ("location-v1.json", "/location/v1"),
        ("extended-vehicle-v1.json", "/extended-vehicle/v1"),
    ]
    .into_iter()
    .find(|(_, p)| path.starts_with(p))
    .unwrap_or_else(|| panic!("no document for {path}"));
    (
        openapi::load(&root.join(file)),
        path[prefix.len()..].to_string(),
    )
}

#[test]
fn every_simulated_answer_matches_our_openapi_documents() {
    let sim = Sim::start(&[]);
    let token = sim.token(false);
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let headers = [
        ("vcc-api-key", "demo-api-key"),
        ("Authorization", bearer.as_str()),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/simulator/cars");
    let mut paths = vec![
        "/connected-vehicle/v2/vehicles".to_string(),
        "/extended-vehicle/v1/vehicles".to_string(),
    ];
    for f in std::fs::read_dir(dir).unwrap() {
        let car: Value =
            serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap();
        paths.extend(car["responses"].as_object().unwrap().keys().cloned());
        // Paths the car does not have: the simulator's own 404 bodies.
        let vin = car["vin"].as_str().unwrap();
        paths.push(format!(
            "/extended-vehicle/v1/vehicles/{vin}/resources/noSuchResource"
        ));
    }
    let mut failures = Vec::new();
    for path in &paths {
        let (status, body) = http_status("GET", &format!("{}{path}", sim.url), None, &headers);
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        let (doc, rel) = doc_for(path);
        if let Err(e) = openapi::validate_response(&doc, &rel, status, &body) {
            failures.push(format!("{path} ({status}): {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers do not match:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(paths.len() > 80, "{}", paths.len());
}

#[test]
fn simulated_auth_failures_match_our_openapi_documents() {
    let sim = Sim::start(&[]);
    let path = format!("/connected-vehicle/v2/vehicles/{BEV}/doors");
    let (status, body) = http_status(
        "GET",
        &format!("{}{path}", sim.url),
        None,
        &[("vcc-api-key", "wrong")],
    );
    assert_eq!(status, 401);
    assert!(body.contains("VCC-API-KEY"));
    let (doc, rel) = doc_for(&path);
    openapi::validate_response(&doc, &rel, status, &serde_json::from_str(&body).unwrap()).unwrap();
    let (status, body) = http_status(
        "GET",
        &format!("{}{path}", sim.url),
        None,
        &[
            ("vcc-api-key", "demo-api-key"),
            ("Authorization", "Bearer nope"),
        ],
    );
    assert_eq!(status, 401);
    openapi::validate_response(&doc, &rel, status, &serde_json::from_str(&body).unwrap()).unwrap();
}

/// The scripted day changes answers by the clock: they must match at any time of the day.
#[test]
fn the_scripted_days_answers_match_our_openapi_documents() {
    let sim = Sim::start(&["--scenario", "day"]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/simulator/cars");
    let mut paths = vec![
        "/connected-vehicle/v2/vehicles".to_string(),
        "/extended-vehicle/v1/vehicles".to_string(),
    ];
    for file in ["bev.json", "petrol.json"] {
        let car: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        paths.extend(car["responses"].as_object().unwrap().keys().cloned());
    }
    let day_start: i64 = 1_796_083_200;
    let mut failures = Vec::new();
    // Asleep, driving, just after a trip, charging with the tyre warning, charged.
    for at in [
        "00:00", "07:45", "08:12", "12:30", "18:30", "20:30", "22:30",
    ] {
        let (h, m) = at.split_once(':').unwrap();
        let now = day_start + h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60;
        sim.post("/_sim/clock", &format!("{{\"now\": {now}}}"));
        // Tokens live five minutes on the simulator's clock: one per time of day.
        let token = sim.token(false);
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let headers = [
            ("vcc-api-key", "demo-api-key"),
            ("Authorization", bearer.as_str()),
        ];
        for path in &paths {
            let (status, body) = http_status("GET", &format!("{}{path}", sim.url), None, &headers);
            let body: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{at} {path}: not JSON: {e}"));
            let (doc, rel) = doc_for(path);
            if let Err(e) = openapi::validate_response(&doc, &rel, status, &body) {
                failures.push(format!("{at} {path} ({status}): {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers do not match:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The daily quota answers as Volvo does, with the time left until the next UTC midnight of
/// the simulator's clock, and a new day starts afresh.
#[test]
fn the_daily_quota_answers_403_until_midnight() {
    let sim = Sim::start(&["--quota", "2"]);
    let evening: i64 = 1_796_083_200 + 18 * 3600;
    sim.post("/_sim/clock", &format!("{{\"now\": {evening}}}"));
    let path = format!("/connected-vehicle/v2/vehicles/{BEV}/doors");
    let get = |sim: &Sim| {
        let token = sim.token(false);
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let headers = [
            ("vcc-api-key", "demo-api-key"),
            ("Authorization", bearer.as_str()),
        ];
        http_status("GET", &format!("{}{path}", sim.url), None, &headers)
    };
    assert_eq!(get(&sim).0, 200);
    assert_eq!(get(&sim).0, 200);
    let (status, body) = get(&sim);
    assert_eq!(status, 403);
    let body: Value = serde_json::from_str(&body).unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Out of call volume quota. Quota will be replenished in 0"),
        "{message}"
    );
    // 06:00:00 left, or a second less if the clock ticked past the second since it was set.
    assert!(
        message.contains("06:00:00") || message.contains("05:59:59"),
        "{message}"
    );
    let (doc, rel) = doc_for(&path);
    openapi::validate_response(&doc, &rel, status, &body).unwrap();
    assert_eq!(sim.stats()["quota"]["used"], 2);
    sim.post(
        "/_sim/clock",
        &format!("{{\"now\": {}}}", evening + 6 * 3600),
    );
    assert_eq!(get(&sim).0, 200);
    assert_eq!(sim.stats()["quota"]["used"], 1);
}
