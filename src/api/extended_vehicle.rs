//! Extended Vehicle API v1: a list of resources per car, then one request per resource.
//! No envelope; values are `{"resourceValue": {"timestamp": <unix s>, "unit"?, "value"}}`.
//! Volvo announced this API's shutdown: a 404, 410 or shutdown message for the resource list
//! means "gone", which the run handles with a persisted back-off.

use serde::Deserialize;
use serde_json::Value;

use super::{decode, ApiError};
use crate::values::Field;

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
            e.push(("extended_resources", x));
        }
        for (_, r) in &self.resources {
            if let Err(x) = r {
                e.push(("extended_values", x));
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

/// The resource names of a resource list answer that are safe to put in a path.
pub fn resource_names(list: &ResourceList) -> Vec<String> {
    list.resources
        .iter()
        .filter_map(|r| match r {
            Field::Ok(p) if safe_name(&p.name) => Some(p.name.clone()),
            _ => None,
        })
        .collect()
}

impl Snapshot {
    /// One car's answers: the resource list, then each listed resource's value by name.
    pub fn decode<'a>(
        list: Result<&'a str, ApiError>,
        value: &dyn Fn(&str) -> Result<&'a str, ApiError>,
    ) -> Snapshot {
        let names = decode::<ResourceList>(list).map(|l| resource_names(&l));
        let resources = names
            .as_ref()
            .map(|names| {
                names
                    .iter()
                    .map(|n| {
                        let v = decode::<ResourceEnvelope>(value(n)).map(|e| e.resource_value);
                        (n.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            list: names,
            resources,
        }
    }
}
