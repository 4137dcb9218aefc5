//! Location API v1: `{"status", "operationId", "data": <GeoJSON Feature>}` with a Point whose
//! coordinates are `[longitude, latitude, altitude]`; heading is a numeric string and the
//! timestamp may be missing.

use serde::Deserialize;
use serde_json::Value;

use super::{parse, Answer, ApiError};
use crate::endpoints::{Endpoint, Origin};
use crate::values::{Field, Uploaded};

#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(deserialize_with = "crate::values::no_array")]
    pub data: Feature,
}

#[derive(Debug, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub properties: Option<Field<Properties>>,
    pub geometry: Field<Point>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Properties {
    #[serde(default, deserialize_with = "crate::values::any_text")]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub heading: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Point {
    pub coordinates: Vec<Value>,
}

/// The position answer's GeoJSON feature.
pub fn decode(body: &str) -> Result<Feature, ApiError> {
    parse::<Envelope>(body).map(|e| e.data)
}

impl Uploaded for Feature {
    fn uploaded_at(&self) -> Option<i64> {
        let Some(Field::Ok(p)) = &self.properties else {
            return None;
        };
        let t = crate::values::timestamp(p.timestamp.as_deref()?).ok()?;
        Some(t as i64)
    }
}

/// Location as a run uses it.
pub struct Location;

impl super::Api for Location {
    fn origin(&self) -> Origin {
        Origin::Location
    }

    fn decode(&self, endpoint: Endpoint, body: &str) -> Result<Answer, ApiError> {
        match endpoint {
            Endpoint::Location => decode(body).map(Answer::from),
            other => Err(super::not_this_api(other, Origin::Location)),
        }
    }
}
