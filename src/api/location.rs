//! Location API v1: `{"status", "operationId", "data": <GeoJSON Feature>}` with a Point whose
//! coordinates are `[longitude, latitude, altitude]`; heading is a numeric string and the
//! timestamp may be missing.

use serde::Deserialize;
use serde_json::Value;

use super::client::Client;
use super::ApiError;
use crate::metrics::catalog::Origin;
use crate::values::Field;

pub const PREFIX: &str = "/location/v1";
pub const ENDPOINTS: &[(&str, &str)] = &[("location", "/vehicles/{vin}/location")];

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

pub async fn fetch(client: &Client, vin: &str) -> Result<Feature, ApiError> {
    client
        .get_json::<Envelope>(
            Origin::Location,
            ENDPOINTS[0].1,
            &format!("{PREFIX}/vehicles/{}/location", super::segment(vin)),
            vin,
            "location",
        )
        .await
        .map(|e| e.data)
}
