//! Location API v1: `{"status", "operationId", "data": <GeoJSON Feature>}` with a Point whose
//! coordinates are `[longitude, latitude, altitude]`; heading is a numeric string and the
//! timestamp may be missing.

use serde::Deserialize;
use serde_json::Value;

use super::ApiError;
use crate::values::Field;

#[derive(Debug, Deserialize)]
pub struct Envelope {
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
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub heading: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct Point {
    pub coordinates: Vec<Value>,
}

/// The position answer's GeoJSON feature.
pub fn decode(body: Result<&str, ApiError>) -> Result<Feature, ApiError> {
    super::decode::<Envelope>(body).map(|e| e.data)
}
