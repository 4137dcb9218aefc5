//! Volvo's four APIs, each part using only those before it: [`answers`] (what each car said,
//! every answer decoded once), [`client`] (the one request client), then one module per API
//! with its response types (serde models that accept the quirks listed in the README):
//! [`connected_vehicle`], [`energy`], [`extended_vehicle`], [`location`]. This file holds what
//! they share: the typed [`Answer`] of every endpoint, the [`Api`] interface and [`ApiError`].

/// A typed answer: a struct with one `Option<Field<V>>` per JSON member, and for each member
/// an accessor method of the same name that gives the value together with its JSON key. The
/// key is written once, here in the invocation; the mappers read the accessors.
///
/// Decoding keeps the quirks of a map of fields: any object is accepted, members it does not
/// know are ignored, a member of the wrong shape (`null` too) becomes `Field::Invalid` instead
/// of failing the answer, a repeated member keeps its last value, and anything but an object
/// is refused.
macro_rules! answer {
    (
        $(#[$doc:meta])*
        pub struct $name:ident<$v:ty> {
            $($field:ident: $key:literal,)*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $(pub $field: Option<$crate::values::Field<$v>>,)*
            /// How many members the answer had, known or not.
            members: usize,
            /// The newest upload time of any member, known or not.
            newest: Option<i64>,
        }

        impl $name {
            /// The JSON keys this answer knows.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Whether the answer had no members at all.
            pub fn is_empty(&self) -> bool {
                self.members == 0
            }

            /// The newest upload time of any member (Unix seconds).
            pub fn newest_upload(&self) -> Option<i64> {
                self.newest
            }

            $(
                pub fn $field(&self) -> $crate::values::Entry<'_, $v> {
                    $crate::values::Entry {
                        key: $key,
                        field: self.$field.as_ref(),
                    }
                }
            )*
        }

        impl $crate::values::Uploaded for $name {
            fn uploaded_at(&self) -> Option<i64> {
                self.newest
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a map")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut answer = $name::default();
                        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                            answer.members += 1;
                            let at = match &*key {
                                $($key => {
                                    let f: $crate::values::Field<$v> = map.next_value()?;
                                    let at = match &f {
                                        $crate::values::Field::Ok(v) => {
                                            $crate::values::Uploaded::uploaded_at(v)
                                        }
                                        $crate::values::Field::Invalid(_) => None,
                                    };
                                    answer.$field = Some(f);
                                    at
                                })*
                                // Members this version does not know still show an upload.
                                _ => map.next_value::<$crate::values::Stamps>()?.0,
                            };
                            answer.newest = answer.newest.max(at);
                        }
                        Ok(answer)
                    }
                }
                d.deserialize_map(Visitor)
            }
        }
    };
}

/// The typed answer of every endpoint, one variant each, and for each answer type a way back
/// from the enum ([`Typed`]), so that a reader asks for the type it needs.
macro_rules! answers {
    ($($variant:ident($ty:ty),)*) => {
        /// One endpoint's answer, decoded. Boxed, so that a kept answer takes the room of
        /// its own endpoint's, not the largest's.
        #[derive(Debug)]
        pub enum Answer {
            $($variant(Box<$ty>),)*
        }

        $(impl From<$ty> for Answer {
            fn from(x: $ty) -> Answer {
                Answer::$variant(Box::new(x))
            }
        }

        impl Typed for $ty {
            fn from_answer(a: &Answer) -> Option<&Self> {
                match a {
                    Answer::$variant(x) => Some(x),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        })*

        impl Answer {
            /// The newest upload time the answer carries (Unix seconds).
            pub fn newest_upload(&self) -> Option<i64> {
                match self {
                    $(Answer::$variant(x) => $crate::values::Uploaded::uploaded_at(x.as_ref()),)*
                }
            }
        }
    };
}

pub mod answers;
pub mod client;
pub mod connected_vehicle;
pub mod energy;
pub mod extended_vehicle;
pub mod location;

use std::time::Duration;

use crate::endpoints::{Endpoint, Origin};

/// An answer type that can be read back out of an [`Answer`].
pub trait Typed {
    fn from_answer(a: &Answer) -> Option<&Self>;
}

answers! {
    Vehicles(connected_vehicle::VehicleList),
    Details(connected_vehicle::Details),
    Doors(connected_vehicle::Doors),
    Windows(connected_vehicle::Windows),
    EngineStatus(connected_vehicle::EngineStatus),
    Engine(connected_vehicle::Engine),
    Diagnostics(connected_vehicle::Diagnostics),
    Brakes(connected_vehicle::Brakes),
    Fuel(connected_vehicle::Fuel),
    Odometer(connected_vehicle::Odometer),
    Statistics(connected_vehicle::Statistics),
    Tyres(connected_vehicle::Tyres),
    Warnings(connected_vehicle::Warnings),
    CommandAccessibility(connected_vehicle::CommandAccessibility),
    Commands(connected_vehicle::Commands),
    EnergyCapabilities(energy::Capabilities),
    EnergyState(energy::State),
    Location(location::Feature),
    ExtendedResources(extended_vehicle::ResourceNames),
    ExtendedValues(extended_vehicle::ResourceValue),
}

/// One of Volvo's APIs as a run uses it: how its answers are decoded, and what else of a car
/// an endpoint needs before it can be asked. Its mapper (`metrics`) is the third part.
pub trait Api: Sync {
    fn origin(&self) -> Origin;

    /// One answer's body, decoded once into its typed answer.
    fn decode(&self, endpoint: Endpoint, body: &str) -> Result<Answer, ApiError>;

    /// Whether `endpoint` can be asked of the car now, given what else it answered.
    fn needs(&self, _endpoint: Endpoint, _car: &answers::CarAnswers) -> Need {
        Need::Ready
    }
}

/// What an endpoint waits for before it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Ready,
    /// Not until another answer came (the energy state waits for the capabilities).
    Waiting,
    /// Never for this car (the capabilities rule the energy state out).
    Never,
    /// One request per resource (Extended Vehicle's values, one per listed resource).
    Each(Vec<String>),
}

/// The four APIs.
pub static APIS: [&dyn Api; 4] = [
    &connected_vehicle::ConnectedVehicle,
    &energy::Energy,
    &location::Location,
    &extended_vehicle::ExtendedVehicle,
];

/// The API an endpoint belongs to.
pub fn api_of(endpoint: Endpoint) -> &'static dyn Api {
    let origin = endpoint.api();
    *APIS
        .iter()
        .find(|a| a.origin() == origin)
        .expect("every endpoint belongs to one of the four APIs")
}

/// What an API says of an endpoint that is not its own (a mistake of the caller's).
fn not_this_api(endpoint: Endpoint, api: Origin) -> ApiError {
    ApiError::Decode(format!("{endpoint} is not an endpoint of {}", api.label()))
}

/// Decodes a body into `T`.
pub fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::Decode(e.to_string()))
}

/// Why a request did not give usable data. The variants map onto a bounded set of reasons
/// that the self-metrics show.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("the run's deadline passed before the answer came")]
    Timeout,
    /// Not asked this run because Volvo's minute window was full, and no earlier answer to
    /// replay: the next run asks it. Not a failure.
    #[error("deferred to the next run (Volvo's per-minute limit was reached)")]
    Deferred,
    #[error("the request timed out")]
    RequestTimeout,
    #[error("network error: {0}")]
    Transport(String),
    #[error("rate limited by Volvo (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("daily request quota of the API key is used up{}", .reset_after.map(|d| format!(" (replenished in {}s)", d.as_secs())).unwrap_or_default())]
    Quota { reset_after: Option<Duration> },
    #[error("Volvo refused the API key (HTTP 401): check volvo.api_key")]
    BadApiKey,
    #[error("Volvo refused the access token (HTTP {0})")]
    Unauthorized(u16),
    #[error("not supported for this car (HTTP 404): {0}")]
    NotSupported(String),
    #[error("gone (HTTP 410): {0}")]
    Gone(String),
    #[error("Volvo server error (HTTP {0})")]
    ServerError(u16),
    #[error("HTTP {0}: {1}")]
    ClientError(u16, String),
    #[error("unreadable answer: {0}")]
    Decode(String),
}

impl ApiError {
    /// The bounded reason label of the self-metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Timeout | ApiError::RequestTimeout => "timeout",
            ApiError::Deferred => "deferred",
            ApiError::Transport(_) => "transport",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Quota { .. } => "quota",
            ApiError::BadApiKey | ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotSupported(_) => "not_supported",
            ApiError::Gone(_) => "gone",
            ApiError::ServerError(_) => "server_error",
            ApiError::ClientError(..) => "client_error",
            ApiError::Decode(_) => "decode",
        }
    }

    /// Failures that say nothing about the car and will likely pass by the next run.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            ApiError::Timeout
                | ApiError::Deferred
                | ApiError::RequestTimeout
                | ApiError::Transport(_)
                | ApiError::RateLimited { .. }
                | ApiError::Quota { .. }
                | ApiError::ServerError(_)
        )
    }

    /// Classifies a non-200 answer by status and, where Volvo overloads a status, by body.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        let message = error_message(&text);
        let lower = text.to_ascii_lowercase();
        match status {
            401 if lower.contains("api-key")
                || lower.contains("api key")
                || lower.contains("apikey") =>
            {
                ApiError::BadApiKey
            }
            401 => ApiError::Unauthorized(401),
            // The daily quota answers 403, not 429: it is no login problem.
            403 if lower.contains("quota") => ApiError::Quota {
                reset_after: parse_replenish(&text),
            },
            403 => ApiError::Unauthorized(403),
            404 => ApiError::NotSupported(message),
            410 => ApiError::Gone(message),
            429 => ApiError::RateLimited { retry_after },
            500..=599 => ApiError::ServerError(status),
            _ => ApiError::ClientError(status, message),
        }
    }
}

/// The human message out of any of the APIs' error envelopes, bounded and on one line.
fn error_message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let pick = |p: &str| v.pointer(p).and_then(|m| m.as_str()).map(str::to_string);
    let msg = pick("/error/message")
        .or_else(|| pick("/exveErrorMsg"))
        .or_else(|| pick("/message"))
        .or_else(|| pick("/error/description"))
        .unwrap_or_else(|| body.chars().take(120).collect());
    msg.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// "Quota will be replenished in 06:40:24." → 6 h 40 min 24 s.
pub fn parse_replenish(text: &str) -> Option<Duration> {
    let idx = text.find("replenished in")?;
    let rest = text[idx + "replenished in".len()..].trim_start();
    let clock: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .collect();
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, s] if *m < 60 && *s < 60 => Some(Duration::from_secs(h * 3600 + m * 60 + s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_403_is_not_a_login_problem() {
        let body = br#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 06:40:24."}"#;
        assert_eq!(
            ApiError::from_status(403, body, None),
            ApiError::Quota {
                reset_after: Some(Duration::from_secs(6 * 3600 + 40 * 60 + 24))
            }
        );
        assert_eq!(
            ApiError::from_status(403, b"{}", None).reason(),
            "unauthorized"
        );
    }

    #[test]
    fn api_key_401_differs_from_token_401() {
        let body = br#"{"status":401,"error":{"message":"Access denied due to invalid VCC-API-KEY. Make sure to provide a valid key for an active application."}}"#;
        assert_eq!(ApiError::from_status(401, body, None), ApiError::BadApiKey);
        assert_eq!(
            ApiError::from_status(401, b"{\"error\":{\"message\":\"Invalid token\"}}", None),
            ApiError::Unauthorized(401)
        );
    }

    #[test]
    fn messages_from_each_envelope() {
        assert_eq!(
            ApiError::from_status(
                404,
                br#"{"error":{"message":"Car model is not supported","description":"x"}}"#,
                None
            ),
            ApiError::NotSupported("Car model is not supported".into())
        );
        assert_eq!(
            ApiError::from_status(
                410,
                br#"{"exveErrorId":"410","exveErrorMsg":"API shut down"}"#,
                None
            ),
            ApiError::Gone("API shut down".into())
        );
        assert_eq!(
            ApiError::from_status(503, b"<html>", None).reason(),
            "server_error"
        );
        assert_eq!(
            ApiError::from_status(422, b"x\ny", None),
            ApiError::ClientError(422, "x y".into())
        );
    }

    #[test]
    fn replenish_time_parsing() {
        assert_eq!(
            parse_replenish("Quota will be replenished in 00:00:05."),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_replenish("replenished in soon"), None);
        assert_eq!(parse_replenish("replenished in 1:99:00"), None);
    }
}
