//! Extended Vehicle API v1: a list of resources per car, then one request per resource.
//! No envelope; values are `{"resourceValue": {"timestamp": <unix s>, "unit"?, "value"}}`.
//! Volvo announced this API's shutdown: a 404, 410 or shutdown message for the resource list
//! means "gone", which the run handles with a persisted back-off.

use serde::Deserialize;
use serde_json::Value;

use super::client::Client;
use super::ApiError;
use crate::metrics::catalog::Origin;
use crate::values::Field;

pub const PREFIX: &str = "/extended-vehicle/v1";
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("resources", "/vehicles/{vin}/resources"),
    ("resource", "/vehicles/{vin}/resources/{resource}"),
];

#[derive(Debug, Deserialize)]
pub struct ResourceList {
    pub resources: Vec<Field<ResourcePointer>>,
}

#[derive(Debug, Deserialize)]
pub struct ResourcePointer {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceEnvelope {
    pub resource_value: ResourceValue,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceValue {
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default)]
    pub unit: Option<String>,
    pub value: Value,
}

#[derive(Debug)]
pub struct Snapshot {
    pub list: Result<Vec<String>, ApiError>,
    /// (resource name, answer), in list order.
    pub resources: Vec<(String, Result<ResourceValue, ApiError>)>,
}

impl Snapshot {
    pub fn errors(&self) -> Vec<(&'static str, &ApiError)> {
        let mut e = Vec::new();
        if let Err(x) = &self.list {
            e.push(("resources", x));
        }
        for (_, r) in &self.resources {
            if let Err(x) = r {
                e.push(("resource", x));
            }
        }
        e
    }

    /// Whether the API itself answered that it is gone (shut down), not just one car.
    pub fn api_gone(&self) -> bool {
        matches!(&self.list, Err(e) if is_shutdown(e))
    }
}

/// 404, 410 or a message about the shutdown on the resource list: the API is gone.
pub fn is_shutdown(e: &ApiError) -> bool {
    match e {
        ApiError::Gone(_) | ApiError::NotSupported(_) => true,
        ApiError::ClientError(_, m) => {
            let m = m.to_ascii_lowercase();
            m.contains("shut") || m.contains("decommission") || m.contains("no longer available")
        }
        _ => false,
    }
}

/// Names are used in the request path: only plain identifiers are followed.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub async fn fetch(client: &Client, vin: &str) -> Snapshot {
    let list: Result<ResourceList, ApiError> = client
        .get_json(
            Origin::ExtendedVehicle,
            ENDPOINTS[0].1,
            &format!("{PREFIX}/vehicles/{}/resources", super::segment(vin)),
            vin,
            "extended_resources",
        )
        .await;
    let names: Vec<String> = match &list {
        Ok(l) => l
            .resources
            .iter()
            .filter_map(|r| match r {
                Field::Ok(p) if safe_name(&p.name) => Some(p.name.clone()),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let requests = names.iter().map(|name| async move {
        let r = client
            .get_json::<ResourceEnvelope>(
                Origin::ExtendedVehicle,
                ENDPOINTS[1].1,
                &format!("{PREFIX}/vehicles/{}/resources/{name}", super::segment(vin)),
                vin,
                &format!("extended_values/{name}"),
            )
            .await
            .map(|e| e.resource_value);
        (name.clone(), r)
    });
    let resources = futures_util::future::join_all(requests).await;
    Snapshot {
        list: list.map(|_| names),
        resources,
    }
}
