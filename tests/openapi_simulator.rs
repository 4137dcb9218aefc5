//! The simulator's answers — every sample car's every path, the vehicle lists and the error
//! bodies it makes itself — must match our own OpenAPI documents in `open-api/`.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/openapi.rs"]
mod openapi;

use harness::*;
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
