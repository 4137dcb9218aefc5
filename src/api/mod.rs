//! Volvo's four APIs: one module each with its response types (serde models that accept the
//! quirks listed in the README) and the requests a run makes, over the shared [`client`].

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
        }

        impl $name {
            /// The JSON keys this answer knows.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Whether the answer had no members at all.
            pub fn is_empty(&self) -> bool {
                self.members == 0
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
                            match &*key {
                                $($key => answer.$field = Some(map.next_value()?),)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(answer)
                    }
                }
                d.deserialize_map(Visitor)
            }
        }
    };
}

pub mod client;
pub mod connected_vehicle;
pub mod energy;
pub mod extended_vehicle;
pub mod location;

use std::time::Duration;

/// Decodes an answer's body; a failed or missing answer stays what it was.
pub fn decode<T: serde::de::DeserializeOwned>(body: Result<&str, ApiError>) -> Result<T, ApiError> {
    serde_json::from_str(body?).map_err(|e| ApiError::Decode(e.to_string()))
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
