//! Tests of the OpenAPI test helper (`support/openapi.rs`), and checks that the project's own
//! OpenAPI documents in `open-api/` are well formed and accept the responses Volvo's APIs really
//! send, quirks included.

use crate::support::openapi;
use serde_json::{json, Value};
use std::path::PathBuf;

const DOCUMENTS: [&str; 4] = [
    "connected-vehicle-v2.json",
    "energy-v2.json",
    "location-v1.json",
    "extended-vehicle-v1.json",
];

const VIN: &str = "YV1XZK9V0R2000001";

fn document(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("open-api")
        .join(name);
    openapi::load(&path)
}

fn json_response(schema: Value) -> Value {
    json!({ "description": "x", "content": { "application/json": { "schema": schema } } })
}

/// A small document exercising every keyword the validator supports.
fn sample() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "sample", "version": "1" },
        "servers": [{ "url": "https://example.test/api/v1" }],
        "paths": {
            "/things": {
                "get": { "responses": {
                    "200": json_response(json!({
                        "type": "array",
                        "items": { "$ref": "#/components/schemas/Thing" },
                        "minItems": 1,
                        "maxItems": 2
                    }))
                } }
            },
            "/things/{id}": {
                "get": { "responses": {
                    "200": json_response(json!({ "$ref": "#/components/schemas/Thing" })),
                    "404": { "$ref": "#/components/responses/NotFound" },
                    "default": json_response(json!({ "$ref": "#/components/schemas/Error" }))
                } }
            },
            "/things/special": {
                "get": { "responses": {
                    "200": json_response(json!({
                        "type": "object",
                        "required": ["special"],
                        "properties": { "special": { "type": "boolean" } }
                    }))
                } }
            },
            "/things/{id}/reading": {
                "get": { "responses": {
                    "200": json_response(json!({ "$ref": "#/components/schemas/Reading" }))
                } }
            },
            "/things/{id}/strict": {
                "get": { "responses": {
                    "200": json_response(json!({ "$ref": "#/components/schemas/Strict" }))
                } }
            },
            "/things/{id}/broken": {
                "get": { "responses": {
                    "200": json_response(json!({ "$ref": "#/components/schemas/Missing" }))
                } }
            },
            "/write-only": {
                "post": { "responses": { "200": json_response(json!({})) } }
            }
        },
        "components": {
            "responses": {
                "NotFound": json_response(json!({ "$ref": "#/components/schemas/Error" }))
            },
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["id", "count"],
                    "properties": {
                        "id": { "type": "string" },
                        "count": { "type": "integer" },
                        "kind": { "type": "string", "enum": ["A", "B"] },
                        "note": { "type": "string", "nullable": true },
                        "seen": { "type": "string", "format": "date-time" },
                        "tags": {
                            "type": "array",
                            "items": { "type": "string" },
                            "minItems": 1,
                            "maxItems": 3
                        }
                    }
                },
                "Error": {
                    "type": "object",
                    "required": ["message"],
                    "properties": { "message": { "type": "string" } }
                },
                "Reading": {
                    "allOf": [
                        { "type": "object", "required": ["value"] },
                        {
                            "properties": {
                                "value": { "oneOf": [{ "type": "number" }, { "type": "integer" }] },
                                "label": {
                                    "anyOf": [
                                        { "type": "string" },
                                        { "type": "boolean" }
                                    ]
                                }
                            }
                        }
                    ]
                },
                "Strict": {
                    "type": "object",
                    "properties": { "a": { "type": "string" } },
                    "additionalProperties": false
                }
            }
        }
    })
}

fn accepts(path: &str, status: u16, body: Value) {
    if let Err(e) = openapi::validate_response(&sample(), path, status, &body) {
        panic!("expected {path} {status} to accept {body}, got: {e}");
    }
}

fn rejects(path: &str, status: u16, body: Value, expected_in_error: &str) {
    match openapi::validate_response(&sample(), path, status, &body) {
        Ok(()) => panic!("expected {path} {status} to reject {body}"),
        Err(e) => assert!(
            e.contains(expected_in_error),
            "error for {body} should mention {expected_in_error:?}, got: {e}"
        ),
    }
}

#[test]
fn accepts_good_bodies() {
    accepts(
        "/things/1",
        200,
        json!({
            "id": "1",
            "count": 3,
            "kind": "A",
            "note": null,
            "seen": "2024-09-02T12:00:00.0000000+00:00",
            "tags": ["x"],
            "extra": { "anything": true }
        }),
    );
    accepts("/things", 200, json!([{ "id": "1", "count": 0 }]));
    accepts("/things/1", 200, json!({ "id": "1", "count": 2.0 }));
}

#[test]
fn rejects_wrong_types() {
    rejects(
        "/things/1",
        200,
        json!({ "id": "1", "count": "3" }),
        "/count: expected type \"integer\", found string",
    );
    rejects(
        "/things/1",
        200,
        json!({ "id": "1", "count": 1.5 }),
        "/count",
    );
    rejects(
        "/things/1",
        200,
        json!([]),
        "(root): expected type \"object\"",
    );
    rejects(
        "/things",
        200,
        json!([{ "id": 7, "count": 1 }]),
        "/0/id: expected type \"string\", found integer",
    );
    rejects(
        "/things/1",
        200,
        json!({ "id": "1", "count": 1, "note": 5 }),
        "/note",
    );
}

#[test]
fn rejects_a_missing_required_field() {
    rejects(
        "/things/1",
        200,
        json!({ "count": 1 }),
        "missing required property \"id\"",
    );
    rejects("/things/1/reading", 200, json!({}), "\"value\"");
}

#[test]
fn rejects_a_failed_one_of() {
    accepts("/things/1/reading", 200, json!({ "value": 1.5 }));
    rejects(
        "/things/1/reading",
        200,
        json!({ "value": "1.5" }),
        "matched none of the 2 oneOf alternatives",
    );
    // 2 is both a number and an integer: more than one alternative matches.
    rejects(
        "/things/1/reading",
        200,
        json!({ "value": 2 }),
        "matched 2 of the 2 oneOf alternatives",
    );
}

#[test]
fn checks_any_of_enum_and_additional_properties() {
    accepts(
        "/things/1/reading",
        200,
        json!({ "value": 0.5, "label": true }),
    );
    rejects(
        "/things/1/reading",
        200,
        json!({ "value": 0.5, "label": 3 }),
        "/label: matched none of the 2 anyOf alternatives",
    );
    rejects(
        "/things/1",
        200,
        json!({ "id": "1", "count": 1, "kind": "C" }),
        "/kind: \"C\" is not one of",
    );
    accepts("/things/1/strict", 200, json!({ "a": "x" }));
    rejects(
        "/things/1/strict",
        200,
        json!({ "a": "x", "b": 1 }),
        "unexpected property \"b\"",
    );
}

#[test]
fn checks_item_counts() {
    rejects("/things", 200, json!([]), "fewer than minItems 1");
    let thing = json!({ "id": "1", "count": 1 });
    rejects(
        "/things",
        200,
        json!([thing, thing, thing]),
        "more than maxItems 2",
    );
    rejects(
        "/things/1",
        200,
        json!({ "id": "1", "count": 1, "tags": [] }),
        "/tags: has 0 items",
    );
}

#[test]
fn checks_date_time_format() {
    for good in [
        "2024-09-02T12:00:00Z",
        "2024-09-02T12:00:00.1Z",
        "2024-09-02T12:00:00.123+02:00",
        "2024-09-02T12:00:00.0000000+00:00",
        "2024-09-02T12:00:00.123456789-05:30",
        "2024-09-02t12:00:00z",
    ] {
        accepts(
            "/things/1",
            200,
            json!({ "id": "1", "count": 1, "seen": good }),
        );
    }
    for bad in [
        "2024-09-02T12:00:00.1234567890Z",
        "2024-09-02T12:00:00.Z",
        "2024-09-02 12:00:00Z",
        "2024-09-02T12:00:00",
        "2024-13-02T12:00:00Z",
        "2024-09-02T25:00:00Z",
        "2024-09-02T12:00:00+0200",
        "2024-09-02",
        "yesterday",
    ] {
        rejects(
            "/things/1",
            200,
            json!({ "id": "1", "count": 1, "seen": bad }),
            "is not an RFC 3339 date-time",
        );
    }
}

#[test]
fn rejects_unknown_paths_and_operations() {
    rejects(
        "/nothing",
        200,
        json!({}),
        "no path in the document matches",
    );
    rejects(
        "/things/1/2/3",
        200,
        json!({}),
        "no path in the document matches",
    );
    rejects("/write-only", 200, json!({}), "has no GET operation");
    rejects(
        "/things/1/reading",
        404,
        json!({}),
        "neither status 404 nor default",
    );
}

#[test]
fn literal_segments_beat_parameters() {
    accepts("/things/special", 200, json!({ "special": true }));
    rejects(
        "/things/special",
        200,
        json!({ "id": "special", "count": 1 }),
        "missing required property \"special\"",
    );
}

#[test]
fn finds_responses_by_status_ref_and_default() {
    accepts("/things/1", 404, json!({ "message": "not found" }));
    rejects(
        "/things/1",
        404,
        json!({}),
        "missing required property \"message\"",
    );
    accepts("/things/1", 503, json!({ "message": "unavailable" }));
    rejects("/things/1", 503, json!({ "msg": "x" }), "\"message\"");
}

#[test]
fn accepts_full_urls_and_query_strings() {
    accepts(
        "https://example.test/api/v1/things/1?fields=all",
        200,
        json!({ "id": "1", "count": 1 }),
    );
}

#[test]
fn reports_unresolved_refs() {
    rejects(
        "/things/1/broken",
        200,
        json!({}),
        "$ref \"#/components/schemas/Missing\" does not resolve",
    );
    let broken = openapi::unresolved_refs(&sample());
    assert_eq!(
        broken,
        vec![
            "/paths/~1things~1{id}~1broken/get/responses/200/content/application~1json/schema/$ref \
             -> \"#/components/schemas/Missing\""
                .to_string()
        ]
    );
}

#[test]
fn every_document_loads_is_openapi_3_0_and_its_refs_resolve() {
    for name in DOCUMENTS {
        let doc = document(name);
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("3.0."),
            "{name}: openapi is {version:?}"
        );
        let server = doc["servers"][0]["url"].as_str().unwrap_or_default();
        assert!(
            server.starts_with("https://api.volvocars.com/"),
            "{name}: server is {server:?}"
        );
        let broken = openapi::unresolved_refs(&doc);
        assert!(broken.is_empty(), "{name}: unresolved $refs: {broken:?}");

        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer", "{name}");
        assert_eq!(schemes["vccApiKey"]["name"], "vcc-api-key", "{name}");
        assert_eq!(schemes["vccApiKey"]["in"], "header", "{name}");

        let paths = doc["paths"].as_object().expect("paths is an object");
        assert!(!paths.is_empty(), "{name}: no paths");
        for (path, item) in paths {
            let ok = &item["get"]["responses"]["200"];
            assert!(ok.is_object(), "{name}: GET {path} documents no 200");
            for status in ["401", "403", "404", "429", "500", "503"] {
                assert!(
                    item["get"]["responses"][status].is_object(),
                    "{name}: GET {path} documents no {status}"
                );
            }
        }
    }
}

#[test]
fn documents_cover_the_endpoints_the_collector_reads() {
    let expected: [(&str, &[&str]); 4] = [
        (
            "connected-vehicle-v2.json",
            &[
                "/vehicles",
                "/vehicles/{vin}",
                "/vehicles/{vin}/doors",
                "/vehicles/{vin}/windows",
                "/vehicles/{vin}/engine-status",
                "/vehicles/{vin}/engine",
                "/vehicles/{vin}/diagnostics",
                "/vehicles/{vin}/brakes",
                "/vehicles/{vin}/fuel",
                "/vehicles/{vin}/odometer",
                "/vehicles/{vin}/statistics",
                "/vehicles/{vin}/tyres",
                "/vehicles/{vin}/warnings",
                "/vehicles/{vin}/command-accessibility",
                "/vehicles/{vin}/commands",
            ],
        ),
        (
            "energy-v2.json",
            &["/vehicles/{vin}/capabilities", "/vehicles/{vin}/state"],
        ),
        ("location-v1.json", &["/vehicles/{vin}/location"]),
        (
            "extended-vehicle-v1.json",
            &[
                "/vehicles",
                "/vehicles/{vin}/resources",
                "/vehicles/{vin}/resources/{resource}",
            ],
        ),
    ];
    for (name, paths) in expected {
        let doc = document(name);
        let mut documented: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths is an object")
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        let mut wanted = paths.to_vec();
        wanted.sort_unstable();
        assert_eq!(documented, wanted, "{name}");
    }
}

fn check(doc: &Value, path: &str, status: u16, body: Value) {
    if let Err(e) = openapi::validate_response(doc, path, status, &body) {
        panic!("expected GET {path} {status} to accept {body}: {e}");
    }
}

fn refuse(doc: &Value, path: &str, status: u16, body: Value) {
    assert!(
        openapi::validate_response(doc, path, status, &body).is_err(),
        "expected GET {path} {status} to reject {body}"
    );
}

#[test]
fn connected_vehicle_document_accepts_real_quirks() {
    let doc = document("connected-vehicle-v2.json");
    let vehicle = format!("/vehicles/{VIN}");
    check(&doc, "/vehicles", 200, json!({ "data": [{ "vin": VIN }] }));
    check(
        &doc,
        &vehicle,
        200,
        json!({ "data": {
            "vin": VIN, "modelYear": 2024, "gearbox": "AUTOMATIC", "fuelType": "NONE",
            "batteryCapacityKWH": 82.0,
            "descriptions": { "model": "EX30", "upholstery": "x", "steering": "LEFT" },
            "images": { "exteriorImageUrl": "https://x", "internalImageUrl": "https://y" }
        } }),
    );
    // Unit absent, timestamp absent, a 7-digit fraction and an unknown state value.
    check(
        &doc,
        &format!("{vehicle}/doors"),
        200,
        json!({ "data": {
            "centralLock": { "value": "LOCKED", "timestamp": "2024-09-02T12:00:00.0000000Z" },
            "frontLeftDoor": { "value": "CLOSED" },
            "hood": { "value": "SOMETHING_NEW", "unit": "", "timestamp": "2024-09-02T12:00:00Z" }
        } }),
    );
    // A numeric string, an integer and a float side by side.
    check(
        &doc,
        &format!("{vehicle}/statistics"),
        200,
        json!({ "data": {
            "averageSpeed": { "value": "47.3", "unit": "km/h", "timestamp": "2024-09-02T12:00:00.123+02:00" },
            "tripMeterAutomatic": { "value": 12, "unit": "km" },
            "averageEnergyConsumption": { "value": 17.4, "unit": "kWh/100km" },
            "distanceToEmptyBattery": { "value": 250, "unit": "km" }
        } }),
    );
    check(
        &doc,
        &format!("{vehicle}/fuel"),
        200,
        json!({ "data": {
            "fuelAmount": { "value": 31.5, "unit": "l", "timestamp": "2024-09-02T12:00:00Z" },
            "batteryChargeLevel": { "value": "80", "unit": "percentage" }
        } }),
    );
    check(
        &doc,
        &format!("{vehicle}/command-accessibility"),
        200,
        json!({ "data": { "availabilityStatus": {
            "value": "UNAVAILABLE", "unavailableReason": "CAR_IN_USE"
        } } }),
    );
    check(
        &doc,
        &format!("{vehicle}/commands"),
        200,
        json!({ "data": [{ "command": "LOCK", "href": "/vehicles/x/commands/lock" }] }),
    );
    check(
        &doc,
        &format!("{vehicle}/odometer"),
        403,
        json!({
            "statusCode": 403,
            "message": "Out of call volume quota. Quota will be replenished in 06:40:24."
        }),
    );
    check(
        &doc,
        &format!("{vehicle}/odometer"),
        401,
        json!({ "status": 401, "error": {
            "message": "Access denied due to invalid VCC-API-KEY."
        } }),
    );
    check(
        &doc,
        &format!("{vehicle}/tyres"),
        404,
        json!({ "error": { "message": "Not Found", "description": "Car model is not supported" } }),
    );

    // The vendor's spec leaves out the envelope; real responses have it.
    refuse(
        &doc,
        &format!("{vehicle}/doors"),
        200,
        json!({ "centralLock": { "value": "LOCKED" } }),
    );
    refuse(
        &doc,
        &format!("{vehicle}/odometer"),
        200,
        json!({ "data": { "odometer": { "unit": "km" } } }),
    );
    refuse(
        &doc,
        &format!("{vehicle}/doors"),
        200,
        json!({ "data": { "hood": { "value": "OPEN", "timestamp": "02.09.2024 12:00" } } }),
    );
}

#[test]
fn energy_document_accepts_ok_and_error_fields() {
    let doc = document("energy-v2.json");
    let state = format!("/vehicles/{VIN}/state");
    check(
        &doc,
        &state,
        200,
        json!({
            "batteryChargeLevel": {
                "status": "OK", "value": 27.5, "unit": "percentage",
                "updatedAt": "2024-09-02T12:00:00.0000000+00:00"
            },
            "electricRange": { "status": "OK", "value": 120, "unit": "mi", "updatedAt": "2024-09-02T12:00:00Z" },
            "chargingStatus": { "status": "OK", "value": "NEW_STATUS", "updatedAt": "2024-09-02T12:00:00Z" },
            "chargingPower": { "status": "ERROR", "code": "NOT_SUPPORTED", "message": "Property is not supported by vehicle" },
            "chargingType": { "status": "ERROR", "code": "PROPERTY_NOT_FOUND" }
        }),
    );
    refuse(
        &doc,
        &state,
        200,
        json!({ "chargingPower": { "status": "ERROR", "message": "no code" } }),
    );
    refuse(
        &doc,
        &state,
        200,
        json!({ "batteryChargeLevel": { "status": "OK", "unit": "percentage", "updatedAt": "2024-09-02T12:00:00Z" } }),
    );

    let capabilities = format!("/vehicles/{VIN}/capabilities");
    for key in ["chargingSystemStatus", "chargingStatus"] {
        check(
            &doc,
            &capabilities,
            200,
            json!({ "getEnergyState": {
                "isSupported": true,
                "batteryChargeLevel": { "isSupported": true },
                key: { "isSupported": false }
            } }),
        );
    }
    check(
        &doc,
        &state,
        404,
        json!({ "error": { "code": "NOT_FOUND", "message": "Vehicle not found", "details": [] } }),
    );
    refuse(&doc, &capabilities, 200, json!({ "isSupported": true }));
}

#[test]
fn location_document_accepts_real_responses() {
    let doc = document("location-v1.json");
    let path = format!("/vehicles/{VIN}/location");
    check(
        &doc,
        &path,
        200,
        json!({ "status": 200, "operationId": "abc", "data": {
            "type": "Feature",
            "properties": { "heading": "137", "timestamp": "2024-09-02T12:00:00.000Z" },
            "geometry": { "type": "Point", "coordinates": [11.97, 57.70, 12.3] }
        } }),
    );
    check(
        &doc,
        &path,
        200,
        json!({ "status": 200, "operationId": "abc", "data": {
            "type": "Feature",
            "properties": { "heading": "0" },
            "geometry": { "type": "Point", "coordinates": [11.97, 57.70] }
        } }),
    );
    refuse(
        &doc,
        &path,
        200,
        json!({ "status": 200, "operationId": "abc", "data": {
            "type": "Feature",
            "properties": { "heading": 137 },
            "geometry": { "type": "Point", "coordinates": [11.97, 57.70] }
        } }),
    );
    refuse(
        &doc,
        &path,
        200,
        json!({ "status": 200, "operationId": "abc", "data": {
            "type": "Feature",
            "properties": {},
            "geometry": { "type": "Point", "coordinates": [11.97] }
        } }),
    );
}

#[test]
fn extended_vehicle_document_accepts_real_responses() {
    let doc = document("extended-vehicle-v1.json");
    check(
        &doc,
        "/vehicles",
        200,
        json!({ "vehicles": [{ "id": VIN, "timestamp": 1599996619 }] }),
    );
    check(
        &doc,
        &format!("/vehicles/{VIN}/resources"),
        200,
        json!({ "resources": [{ "href": "x", "name": "odometer", "version": "1.0" }] }),
    );
    let resource = format!("/vehicles/{VIN}/resources/odometer");
    check(
        &doc,
        &resource,
        200,
        json!({ "resourceValue": { "timestamp": 1725278400, "unit": "km", "value": "12345" } }),
    );
    check(
        &doc,
        &resource,
        200,
        json!({ "resourceValue": { "timestamp": 1725278400, "value": 12345 } }),
    );
    refuse(
        &doc,
        &resource,
        200,
        json!({ "resourceValue": { "timestamp": "2024-09-02T12:00:00Z", "value": 1 } }),
    );
    check(
        &doc,
        &resource,
        404,
        json!({
            "exveErrorId": "404", "exveErrorMsg": "Not Found",
            "exveErrorRef": "ref", "exveNote": "note"
        }),
    );
    check(
        &doc,
        &resource,
        410,
        json!({ "exveErrorId": "410", "exveErrorMsg": "This API has been shut down" }),
    );
}
