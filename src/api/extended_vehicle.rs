//! Extended Vehicle API v1: a list of resources per car, then one request per resource.
//! No envelope; values are `{"resourceValue": {"timestamp": <unix s>, "unit"?, "value"}}`.
//! Volvo announced this API's shutdown: a 404, 410 or shutdown message for the resource list
//! means "gone", which the run handles with a persisted back-off.

use serde::Deserialize;
use serde_json::Value;

use super::answers::{Ask, CarAnswers};
use super::{parse, Answer, ApiError, Need};
use crate::endpoints::{Endpoint, Origin};
use crate::values::{Field, Uploaded};

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
    #[serde(deserialize_with = "crate::values::no_array")]
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

/// The names of a car's resources that are safe to put in a path, in list order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceNames(pub Vec<String>);

impl Uploaded for ResourceNames {
    fn uploaded_at(&self) -> Option<i64> {
        None
    }
}

impl Uploaded for ResourceValue {
    fn uploaded_at(&self) -> Option<i64> {
        crate::values::upload_time(self.timestamp.as_ref()?)
    }
}

/// Extended Vehicle as a run uses it: one request per listed resource.
pub struct ExtendedVehicle;

impl super::Api for ExtendedVehicle {
    fn origin(&self) -> Origin {
        Origin::ExtendedVehicle
    }

    fn decode(&self, endpoint: Endpoint, body: &str) -> Result<Answer, ApiError> {
        match endpoint {
            Endpoint::ExtendedResources => {
                parse::<ResourceList>(body).map(|l| Answer::from(ResourceNames(resource_names(&l))))
            }
            Endpoint::ExtendedValues => {
                parse::<ResourceEnvelope>(body).map(|e| Answer::from(e.resource_value))
            }
            other => Err(super::not_this_api(other, Origin::ExtendedVehicle)),
        }
    }

    /// The values are asked one per resource the car's list names.
    fn needs<'c>(&self, endpoint: Endpoint, car: &'c CarAnswers) -> Need<'c> {
        if endpoint != Endpoint::ExtendedValues {
            return Need::Ready;
        }
        match car.typed::<ResourceNames>(Endpoint::ExtendedResources) {
            Ok(names) => Need::Each(&names.0),
            Err(_) => Need::Each(&[]),
        }
    }
}

#[derive(Debug)]
pub struct Snapshot<'a> {
    pub list: Result<&'a ResourceNames, ApiError>,
    /// (resource name, answer), in list order.
    pub resources: Vec<(&'a str, Result<&'a ResourceValue, ApiError>)>,
}

impl<'a> Snapshot<'a> {
    /// One car's answers: the resource list, then each listed resource's value.
    pub fn of(car: &'a CarAnswers) -> Snapshot<'a> {
        let list = car.typed::<ResourceNames>(Endpoint::ExtendedResources);
        let resources = match &list {
            Ok(names) => names
                .0
                .iter()
                .map(|n| {
                    let ask = Ask {
                        endpoint: Endpoint::ExtendedValues,
                        resource: Some(n.clone()),
                    };
                    (n.as_str(), car.typed_at::<ResourceValue>(&ask))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        Snapshot { list, resources }
    }

    pub fn errors(&self) -> Vec<(Endpoint, &ApiError)> {
        let mut e = Vec::new();
        if let Err(x) = &self.list {
            e.push((Endpoint::ExtendedResources, x));
        }
        for (_, r) in &self.resources {
            if let Err(x) = r {
                e.push((Endpoint::ExtendedValues, x));
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

/// The resource names of a resource list answer that are safe to put in a path, each once
/// (a name listed twice is one resource, asked once).
pub fn resource_names(list: &ResourceList) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.resources
        .iter()
        .filter_map(|r| match r {
            Field::Ok(p) if safe_name(&p.name) && seen.insert(p.name.as_str()) => {
                Some(p.name.clone())
            }
            _ => None,
        })
        .collect()
}
