//! Property test: arbitrary JSON, alone and inside the real envelopes with the real field
//! names, through every decoder and every mapper. Nothing may panic, and the exposition must
//! stay valid: unique series, escaped labels, finite values, one HELP/TYPE per family.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use volvo_collect::api::answers::{Absent, Ask, CarAnswers};
use volvo_collect::api::{extended_vehicle, location, ApiError};
use volvo_collect::config::LocationPrivacy;
use volvo_collect::endpoints::Endpoint;
use volvo_collect::metrics::{self, Exposition, MapContext};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        prop_oneof![
            ".{0,12}".prop_map(Value::String),
            Just(json!("NaN")),
            Just(json!("-Infinity")),
            Just(json!("1e999")),
            Just(json!("12.5")),
            Just(json!("km")),
            Just(json!("mi")),
            Just(json!("2026-05-01T12:00:00.1234567Z")),
            Just(json!("OPEN")),
            Just(json!("a\"b\\c\nd")),
        ],
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}",
                    Just("value".to_string()),
                    Just("unit".to_string()),
                    Just("timestamp".to_string()),
                    Just("status".to_string())
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value object made of arbitrary parts, as Volvo's value objects are shaped.
fn value_object() -> impl Strategy<Value = Value> {
    (
        any_json(),
        prop::option::of(any_json()),
        prop::option::of(any_json()),
    )
        .prop_map(|(v, u, t)| {
            let mut m = Map::new();
            m.insert("value".into(), v);
            if let Some(u) = u {
                m.insert("unit".into(), u);
            }
            if let Some(t) = t {
                m.insert("timestamp".into(), t);
            }
            Value::Object(m)
        })
}

const FIELDS: &[&str] = &[
    "frontLeftDoor",
    "centralLock",
    "sunroof",
    "engineStatus",
    "frontLeft",
    "lowBeamLeftWarning",
    "brakeFluidLevelWarning",
    "oilLevelWarning",
    "serviceWarning",
    "serviceTrigger",
    "timeToService",
    "distanceToService",
    "engineHoursToService",
    "fuelAmount",
    "batteryChargeLevel",
    "odometer",
    "averageSpeed",
    "tripMeterManual",
    "averageEnergyConsumption",
    "distanceToEmptyTank",
];

fn values_map() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(FIELDS),
            prop_oneof![value_object(), any_json()],
        ),
        0..8,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::Decode(e.to_string()))
}

/// Each (endpoint, body) through the decoder into one car's answers, then every API's mapper.
fn map_answers(bodies: &[(Endpoint, Value)]) -> String {
    let mut car = CarAnswers::new("YV1XZK9V0R2000001", Absent::Deferred);
    for (e, body) in bodies {
        car.record(Ask::of(*e), 0, Ok(body.to_string().into_bytes()));
    }
    let privacy = LocationPrivacy {
        precision: None,
        export_coordinates: true,
        home: None,
    };
    let cx = MapContext {
        account: "default",
        location: &privacy,
        extended_answers: false,
    };
    let mut exp = Exposition::new();
    for api in metrics::APIS {
        api.map(&mut exp, &car, &cx);
    }
    exp.finish_skips();
    String::from_utf8(exp.encode()).unwrap()
}

/// The checks promtool makes that matter here, without running it per case.
fn assert_valid(text: &str) {
    let mut series = std::collections::HashSet::new();
    let mut families = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(
                families.insert(rest.split(' ').next().unwrap().to_string()),
                "TYPE twice: {line}"
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.rfind('}') {
            Some(i) => (&line[..=i], line[i + 1..].trim()),
            None => line.split_once(' ').unwrap(),
        };
        assert!(series.insert(key.to_string()), "duplicate series {key}");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(v.is_finite(), "non-finite: {line}");
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "raw newline in {line}"
        );
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name {name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn connected_vehicle_decoders_and_mapper(vals in values_map(), raw in any_json(), details in any_json()) {
        let wrapped = json!({"data": vals});
        let bodies = [
            (Endpoint::Details, json!({"data": details})),
            (Endpoint::Doors, wrapped.clone()),
            (Endpoint::Windows, wrapped.clone()),
            (Endpoint::EngineStatus, wrapped.clone()),
            (Endpoint::Engine, raw.clone()),
            (Endpoint::Diagnostics, wrapped.clone()),
            (Endpoint::Brakes, wrapped.clone()),
            (Endpoint::Fuel, wrapped.clone()),
            (Endpoint::Odometer, wrapped.clone()),
            (Endpoint::Statistics, wrapped.clone()),
            (Endpoint::Tyres, wrapped.clone()),
            (Endpoint::Warnings, wrapped.clone()),
            (Endpoint::CommandAccessibility, json!({"data": {"availabilityStatus": raw.clone()}})),
            (Endpoint::Commands, json!({"data": [raw.clone(), {"command": "LOCK"}]})),
        ];
        assert_valid(&map_answers(&bodies));
    }

    #[test]
    fn energy_decoders_and_mapper(state in prop::collection::vec((prop::sample::select(&["batteryChargeLevel", "electricRange", "chargingStatus", "chargingPower", "targetBatteryChargeLevel", "x"][..]), prop_oneof![any_json(), (any_json(), any_json(), any_json()).prop_map(|(v, u, t)| json!({"status": "OK", "value": v, "unit": u, "updatedAt": t})), any_json().prop_map(|c| json!({"status": "ERROR", "code": c}))]), 0..6), caps in any_json()) {
        let state = Value::Object(state.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let bodies = [
            (Endpoint::EnergyCapabilities, json!({"getEnergyState": caps})),
            (Endpoint::EnergyState, state),
        ];
        assert_valid(&map_answers(&bodies));
    }

    #[test]
    fn location_decoder_and_mapper(coords in prop::collection::vec(any_json(), 0..5), props in any_json(), precision in prop::option::of(0u8..10), export in any::<bool>()) {
        let body = json!({"status": 200, "operationId": "x", "data": {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": coords}}});
        if let Ok(env) = decode::<location::Envelope>(&body) {
            let mut exp = Exposition::new();
            let privacy = LocationPrivacy { precision, export_coordinates: export, home: Some((57.7, 11.9)) };
            metrics::location::map(&mut exp, "YV1XZK9V0R2000001", &env.data, &privacy);
            exp.finish_skips();
            assert_valid(&String::from_utf8(exp.encode()).unwrap());
        }
    }

    #[test]
    fn extended_decoder_and_mapper(values in prop::collection::vec((".{0,10}", any_json(), any_json(), any_json()), 0..5)) {
        let decoded: Vec<(String, Result<extended_vehicle::ResourceValue, ApiError>)> = values
            .into_iter()
            .map(|(name, v, u, t)| (name, decode::<extended_vehicle::ResourceEnvelope>(&json!({"resourceValue": {"value": v, "unit": u, "timestamp": t}})).map(|e| e.resource_value)))
            .collect();
        let names = extended_vehicle::ResourceNames(Vec::new());
        let resources = decoded.iter().map(|(n, r)| (n.as_str(), r.as_ref().map_err(Clone::clone))).collect();
        let s = extended_vehicle::Snapshot { list: Ok(&names), resources };
        let mut exp = Exposition::new();
        metrics::extended_vehicle::map(&mut exp, "YV1XZK9V0R2000001", &s);
        exp.finish_skips();
        assert_valid(&String::from_utf8(exp.encode()).unwrap());
    }
}

/// Keeps the location property above from passing untested: a body of the shape it feeds,
/// with odd coordinates and properties, decodes, and its mapping is checked like theirs.
#[test]
fn location_bodies_of_the_fuzzed_shape_decode() {
    for (coords, props) in [
        (
            json!([11.9, 57.7, "high"]),
            json!({"timestamp": "2026-05-01T12:00:00Z"}),
        ),
        (json!([null, {}, "NaN"]), json!({"heading": "1e999"})),
        (json!([]), json!({})),
    ] {
        let body = json!({"status": 200, "operationId": "x", "data": {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": coords}}});
        let env = decode::<location::Envelope>(&body).expect("the fuzzed shape decodes");
        let mut exp = Exposition::new();
        let privacy = LocationPrivacy {
            precision: None,
            export_coordinates: true,
            home: Some((57.7, 11.9)),
        };
        metrics::location::map(&mut exp, "YV1XZK9V0R2000001", &env.data, &privacy);
        exp.finish_skips();
        assert_valid(&String::from_utf8(exp.encode()).unwrap());
    }
}
