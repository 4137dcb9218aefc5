//! Location v1 → metric families, with the privacy settings applied: coordinates rounded to
//! `location.precision` or left out, and the distance from home computed from the full
//! precision before rounding.

use super::catalog::{self as c, Origin};
use super::{source_time, Exposition, MapApi, MapContext, Mapped, VehicleOut};
use crate::api::answers::CarAnswers;
use crate::api::location::{Feature, Location};
use crate::config::LocationPrivacy;
use crate::endpoints::Endpoint;
use crate::values::{self, SkipReason};

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Haversine distance in meters between two (latitude, longitude) points in degrees.
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn round_to(v: f64, places: Option<u8>) -> f64 {
    match places {
        Some(p) => {
            let f = 10f64.powi(i32::from(p));
            (v * f).round() / f
        }
        None => v,
    }
}

/// (latitude, longitude) of a usable position, at full precision.
pub fn position(f: &Feature) -> Option<(f64, f64)> {
    let crate::values::Field::Ok(p) = &f.geometry else {
        return None;
    };
    let lon = values::number(p.coordinates.first()?).ok()?;
    let lat = values::number(p.coordinates.get(1)?).ok()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

impl MapApi for Location {
    fn map(&self, exp: &mut Exposition, car: &CarAnswers, cx: &MapContext) -> Mapped {
        match car.typed::<Feature>(Endpoint::Location) {
            Ok(f) => {
                map(exp, &car.vin, f, cx.location);
                Mapped::default()
            }
            Err(e) => Mapped {
                errors: vec![(Endpoint::Location, e)],
                api_gone: false,
            },
        }
    }
}

pub fn map(exp: &mut Exposition, vin: &str, f: &Feature, privacy: &LocationPrivacy) {
    let mut out = VehicleOut::new(exp, vin, Origin::Location);
    let props = out.field("properties", f.properties.as_ref());
    let timestamp = props.and_then(|p| p.timestamp.clone());
    let heading = props.and_then(|p| p.heading.clone());
    let time = source_time(timestamp.as_deref());
    let Some(point) = out
        .field("geometry", Some(&f.geometry))
        .map(|p| p.coordinates.clone())
    else {
        return;
    };
    // A `null` is an absent value (Volvo sends nulls for what it used to leave out).
    let coord = |i: usize| point.get(i).filter(|v| !v.is_null()).map(values::number);
    if point.iter().take(2).any(serde_json::Value::is_null) {
        return;
    }
    let (lon, lat) = match (coord(0), coord(1)) {
        (Some(Ok(lon)), Some(Ok(lat)))
            if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) =>
        {
            (lon, lat)
        }
        _ => return out.skip("coordinates", SkipReason::Malformed),
    };
    if privacy.export_coordinates {
        out.number(
            &c::LOCATION_LATITUDE_DEGREES,
            &[],
            "latitude",
            round_to(lat, privacy.precision),
            time,
        );
        out.number(
            &c::LOCATION_LONGITUDE_DEGREES,
            &[],
            "longitude",
            round_to(lon, privacy.precision),
            time,
        );
        match coord(2) {
            Some(Ok(alt)) => out.number(&c::LOCATION_ALTITUDE_METERS, &[], "altitude", alt, time),
            Some(Err(r)) => out.skip("altitude", r),
            None => {}
        }
    }
    if let Some(h) = heading {
        match values::number(&h) {
            Ok(h) => out.number(&c::LOCATION_HEADING_DEGREES, &[], "heading", h, time),
            Err(r) => out.skip("heading", r),
        }
    }
    if let Some(home) = privacy.home {
        out.number(
            &c::LOCATION_HOME_DISTANCE_METERS,
            &[],
            "home_distance",
            distance_m(home, (lat, lon)).round(),
            time,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // Gothenburg to Stockholm, about 398 km.
        let d = distance_m((57.7089, 11.9746), (59.3293, 18.0686));
        assert!((d - 398_000.0).abs() < 3_000.0, "{d}");
        assert_eq!(distance_m((1.0, 2.0), (1.0, 2.0)), 0.0);
    }

    #[test]
    fn rounding_keeps_the_configured_places() {
        assert_eq!(round_to(57.708_912_3, Some(2)), 57.71);
        assert_eq!(round_to(57.708_912_3, Some(0)), 58.0);
        assert_eq!(round_to(57.708_912_3, None), 57.708_912_3);
    }

    /// A fixture with the API's quirks (heading as a numeric string, altitude third, an extra
    /// property) through the mapper, compared with the exact exposition.
    #[test]
    fn a_position_becomes_exactly_these_samples() {
        let body = r#"{"status": 200, "operationId": "x", "data": {"type": "Feature",
            "properties": {"timestamp": "2026-11-19T17:58:14.021Z", "heading": "214", "extra": 1},
            "geometry": {"type": "Point", "coordinates": [11.97456, 57.70887, 12.3]}}}"#;
        let feature = crate::api::location::decode(body).unwrap();
        let privacy = LocationPrivacy {
            precision: Some(3),
            export_coordinates: true,
            home: Some((57.70887, 11.97456)),
        };
        let mut exp = Exposition::new();
        map(&mut exp, "V1", &feature, &privacy);
        let text = String::from_utf8(exp.encode()).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "volvo_location_altitude_meters{vin=\"V1\"} 12.3",
                "volvo_location_heading_degrees{vin=\"V1\"} 214",
                "volvo_location_home_distance_meters{vin=\"V1\"} 0",
                "volvo_location_latitude_degrees{vin=\"V1\"} 57.709",
                "volvo_location_longitude_degrees{vin=\"V1\"} 11.975",
                "volvo_location_timestamp_seconds{vin=\"V1\"} 1795111094.021",
            ],
            "{text}"
        );
    }

    /// Without coordinates, nothing that places the car is exported, not even as 0.
    #[test]
    fn without_coordinates_nothing_places_the_car() {
        let body = r#"{"data": {"properties": {"heading": "90"},
            "geometry": {"coordinates": [11.9, 57.7]}}}"#;
        let feature = crate::api::location::decode(body).unwrap();
        let privacy = LocationPrivacy {
            precision: None,
            export_coordinates: false,
            home: None,
        };
        let mut exp = Exposition::new();
        map(&mut exp, "V1", &feature, &privacy);
        let text = String::from_utf8(exp.encode()).unwrap();
        assert!(
            !text.contains("latitude") && !text.contains("longitude"),
            "{text}"
        );
        assert!(
            !text.contains("timestamp_seconds"),
            "no timestamp was sent: {text}"
        );
    }
}
