//! Volvo's four APIs, each part using only those before it: [`answers`] (what each car said,
//! every answer decoded once), [`client`] (the one request client), then one module per API
//! with its response types (serde models that accept the quirks listed in the README):
//! [`connected_vehicle`], [`energy`], [`extended_vehicle`], [`location`]; and [`observe`]
//! (what a run knows of a car for its trip and charge records). This file holds what they
//! share: the typed [`Answer`] of every endpoint, the [`Api`] interface and [`ApiError`].

/// A typed answer: a struct with one `Option<Field<V>>` per JSON member, and for each member
/// an accessor method of the same name that gives the value together with its JSON key. The
/// key is written once, here in the invocation; the mappers read the accessors.
///
/// Decoding keeps the quirks of a map of fields: any object is accepted, members it does not
/// know are ignored, a member that is `null` is absent (Volvo has sent nulls for members it
/// used to leave out), a member of any other wrong shape becomes `Field::Invalid` instead of
/// failing the answer, a repeated member keeps its last value, and anything but an object is
/// refused.
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
                                    // A `null` member is an absent one, as if left out.
                                    let f: Option<$crate::values::Field<$v>> =
                                        map.next_value()?;
                                    let at = match &f {
                                        Some($crate::values::Field::Ok(v)) => {
                                            $crate::values::Uploaded::uploaded_at(v)
                                        }
                                        _ => None,
                                    };
                                    answer.$field = f;
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
pub mod observe;

use std::time::Duration;

use crate::endpoints::{Endpoint, Origin};
use crate::error::{ExitCode, Tally};

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
    fn needs<'c>(&self, _endpoint: Endpoint, _car: &'c answers::CarAnswers) -> Need<'c> {
        Need::Ready
    }
}

/// What an endpoint waits for before it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need<'c> {
    Ready,
    /// Not until another answer came (the energy state waits for the capabilities).
    Waiting,
    /// Never for this car (the capabilities rule the energy state out).
    Never,
    /// One request per resource (Extended Vehicle's values, one per listed resource).
    Each(&'c [String]),
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
    crate::values::read(body).map_err(|e| ApiError::Decode(e.to_string()))
}

/// The message of an endpoint skipped because an earlier run found it blocked.
pub const REMEMBERED_BLOCK: &str =
    "not served to this car or application (remembered from an earlier run)";

/// The longest the daily quota can take to be replenished: Volvo resets it every day, so a
/// longer countdown in its answer is taken as this.
pub const MAX_QUOTA_RESET: Duration = Duration::from_secs(24 * 3600);

/// Why a request did not give usable data. The variants map onto a bounded set of reasons
/// that the self-metrics show; [`ApiError::from_status`] reads every non-200 answer by its
/// body, not by its status alone, since Volvo says four different things with a 403.
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
    /// A 401 about the application key, twice in a row on the same request.
    #[error("Volvo refused the API key (HTTP 401, also when asked again): check volvo.api_key")]
    BadApiKey,
    /// The access token is unusable: missing, expired, or refused even after a refresh.
    #[error("Volvo refused the access token (HTTP {0}); if this lasts, log in again with `volvo-collect login`")]
    Unauthorized(u16),
    /// Volvo does not serve this endpoint to this car or application where it is (Location
    /// outside Europe, the Middle East and Africa; a market the application is not for).
    /// Not a failure, and nothing the user can change: asked again after a day.
    #[error("not served to this car or application in its region or market (Volvo: {0})")]
    NotAvailable(String),
    /// The access token lacks a scope the endpoint needs.
    #[error("the access token lacks a scope this needs (HTTP 403: {0}): register the scope for the application in Volvo's developer portal; `volvo-collect check` lists the missing ones")]
    MissingScope(String),
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

/// What the client and the runs do after an answer, until it is asked again. The README's
/// classification table shows [`Backoff::label`]; the client's retries follow
/// [`ApiError::backoff`], so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Not retried within the run; the next run asks it again.
    NextRun,
    /// Retried within the run with exponential back-off and jitter, never sooner than a
    /// `Retry-After` and never past the run's deadline.
    Retry,
    /// Asked once more within the run: a single refusal proves nothing.
    Once,
    /// The access token is renewed at Volvo ID, then the request is asked once more.
    Renew,
    /// Not asked again for a day (remembered in the state file).
    Day,
    /// No request at all until Volvo replenishes the daily quota.
    Quota,
}

impl Backoff {
    /// How the README's classification table says it.
    pub fn label(self) -> &'static str {
        match self {
            Backoff::NextRun => "next run",
            Backoff::Retry => "retried in the run",
            Backoff::Once => "once more in the run",
            Backoff::Renew => "token renewed, once more",
            Backoff::Day => "a day",
            Backoff::Quota => "until replenished",
        }
    }
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
            ApiError::NotAvailable(_) => "not_available",
            ApiError::MissingScope(_) => "missing_scope",
            ApiError::NotSupported(_) => "not_supported",
            ApiError::Gone(_) => "gone",
            ApiError::ServerError(_) => "server_error",
            ApiError::ClientError(..) => "client_error",
            ApiError::Decode(_) => "decode",
        }
    }

    /// Whether the answer fails its endpoint. A deferral, an endpoint the car does not
    /// support and a region or market block are facts, not failures.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            ApiError::Deferred | ApiError::NotSupported(_) | ApiError::NotAvailable(_)
        )
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

    /// What happens after this answer until the endpoint is asked again.
    pub fn backoff(&self) -> Backoff {
        match self {
            ApiError::RequestTimeout
            | ApiError::Transport(_)
            | ApiError::RateLimited { .. }
            | ApiError::ServerError(500 | 502 | 503 | 504) => Backoff::Retry,
            ApiError::Quota { .. } => Backoff::Quota,
            ApiError::BadApiKey => Backoff::Once,
            ApiError::Unauthorized(_) => Backoff::Renew,
            ApiError::NotAvailable(_) | ApiError::NotSupported(_) => Backoff::Day,
            ApiError::Timeout
            | ApiError::Deferred
            | ApiError::MissingScope(_)
            | ApiError::Gone(_)
            | ApiError::ServerError(_)
            | ApiError::ClientError(..)
            | ApiError::Decode(_) => Backoff::NextRun,
        }
    }

    /// Adds this endpoint's outcome to the account's tally, which makes the exit code.
    pub fn count(&self, tally: &mut Tally) {
        tally.failed |= self.is_failure();
        tally.key_refused |= *self == ApiError::BadApiKey;
    }

    /// The exit code of a run in which this was the only problem, on one endpoint:
    /// `others_answered` when other requests of the run answered, else none did.
    pub fn exit_code(&self, others_answered: bool) -> ExitCode {
        let mut tally = Tally {
            collected: others_answered,
            ..Tally::default()
        };
        self.count(&mut tally);
        tally.exit()
    }

    /// The answer replayed for an endpoint an earlier run found unsupported (or blocked).
    pub fn remembered(blocked: bool) -> ApiError {
        if blocked {
            ApiError::NotAvailable(REMEMBERED_BLOCK.into())
        } else {
            ApiError::NotSupported(answers::REMEMBERED.into())
        }
    }

    /// Classifies a non-200 answer by its status and what its body says.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        let message = error_message(&text);
        let lower = text.to_ascii_lowercase();
        let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        match status {
            401 if says(&["api-key", "api key", "apikey"]) => ApiError::BadApiKey,
            401 => ApiError::Unauthorized(401),
            // The daily quota answers 403, not 429: it is no login problem.
            403 if says(&["quota"]) => ApiError::Quota {
                reset_after: parse_replenish(&text),
            },
            403 | 404 if says(BLOCKED) => ApiError::NotAvailable(message),
            403 if says(&["scope"]) => ApiError::MissingScope(message),
            403 if text.trim().is_empty() || says(UNUSABLE_TOKEN) => ApiError::Unauthorized(403),
            404 => ApiError::NotSupported(message),
            410 => ApiError::Gone(message),
            429 => ApiError::RateLimited { retry_after },
            500..=599 => ApiError::ServerError(status),
            _ => ApiError::ClientError(status, message),
        }
    }
}

/// What a region or market block says (403 or 404, in any of the three error envelopes).
const BLOCKED: &[&str] = &["allowed market", "not allowed to access", "region"];

/// What an unusable access token's 403 says.
const UNUSABLE_TOKEN: &[&str] = &["access denied", "token", "unauthorized", "authentication"];

/// The human message out of any of the APIs' error envelopes, bounded and on one line. A
/// message that is only a code (`FORBIDDEN`, `NOT_FOUND`) gives way to the description.
fn error_message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let pick = |p: &str| {
        v.pointer(p)
            .and_then(|m| m.as_str())
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
    };
    let is_code = |m: &String| m.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    let msg = pick("/error/message")
        .filter(|m| !is_code(m))
        .or_else(|| pick("/error/description"))
        .or_else(|| pick("/error/message"))
        .or_else(|| pick("/exveErrorMsg"))
        .or_else(|| pick("/message"))
        .unwrap_or_else(|| match body.trim() {
            "" => "(an empty answer)".to_string(),
            b => crate::secret::mask(b).chars().take(120).collect(),
        });
    // Masked whole before it is cut: a cut secret would no longer be found.
    crate::secret::mask(&msg)
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// "Quota will be replenished in 06:40:24." → 6 h 40 min 24 s. A countdown longer than
/// [`MAX_QUOTA_RESET`] is no day's: it is not believed (`None`, as when there is none), so that
/// the runs look again soon rather than pausing a whole day past Volvo's reset.
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
    let secs = match parts.as_slice() {
        [h, m, s] if *m < 60 && *s < 60 => h.saturating_mul(3600).saturating_add(m * 60 + s),
        _ => return None,
    };
    let left = Duration::from_secs(secs);
    (left <= MAX_QUOTA_RESET).then_some(left)
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
    }

    /// A 403 says one of four things, and only the unusable token speaks of the login.
    #[test]
    fn a_403_is_read_by_its_body() {
        let class = |body: &str| ApiError::from_status(403, body.as_bytes(), None);
        let region = class(
            r#"{"error":{"message":"FORBIDDEN","description":"Client not allowed to access Location API"}}"#,
        );
        assert_eq!(
            region,
            ApiError::NotAvailable("Client not allowed to access Location API".into())
        );
        assert!(!region.is_failure());
        assert!(!region.to_string().contains("login"), "{region}");
        let token = class(
            r#"{"status":403,"operationId":"a1","error":{"message":"FORBIDDEN","description":"Access Denied"}}"#,
        );
        assert_eq!(token, ApiError::Unauthorized(403));
        assert!(token.to_string().contains("volvo-collect login"), "{token}");
        let scope = class(
            r#"{"error":{"message":"insufficient_scope","description":"The token lacks the scope location:read"}}"#,
        );
        assert_eq!(scope.reason(), "missing_scope");
        assert!(!scope.to_string().contains("log in"), "{scope}");
        assert_eq!(class("").reason(), "unauthorized");
        assert_eq!(
            class(r#"{"error":{"message":"Forbidden by policy"}}"#),
            ApiError::ClientError(403, "Forbidden by policy".into())
        );
    }

    /// Both market blocks, in two envelopes, are blocks, not "car model not supported".
    #[test]
    fn market_blocks_are_not_unsupported_models() {
        for body in [
            r#"{"error":{"message":"NOT_FOUND","description":"Does not belong to allowed markets"}}"#,
            r#"{"code":"VEHICLE_NOT_FOUND","message":"Vehicle does not belong to allowed markets","details":[]}"#,
        ] {
            let e = ApiError::from_status(404, body.as_bytes(), None);
            assert_eq!(e.reason(), "not_available", "{body}");
            assert_eq!(e.backoff(), Backoff::Day);
            assert_eq!(e.exit_code(true), ExitCode::Ok);
            assert_eq!(e.exit_code(false), ExitCode::Ok);
        }
    }

    #[test]
    fn api_key_401_differs_from_token_401() {
        let body = br#"{"status":401,"error":{"message":"Access denied due to invalid VCC-API-KEY. Make sure to provide a valid key for an active application."}}"#;
        let key = ApiError::from_status(401, body, None);
        assert_eq!(key, ApiError::BadApiKey);
        assert_eq!(key.backoff(), Backoff::Once);
        assert_eq!(key.exit_code(true), ExitCode::Partial);
        assert_eq!(key.exit_code(false), ExitCode::Config);
        let token = ApiError::from_status(
            401,
            br#"{"status":401,"operationId":"x","error":{"message":"Unauthorized","description":"Full authentication is required to access this resource"}}"#,
            None,
        );
        assert_eq!(token, ApiError::Unauthorized(401));
        assert_eq!(token.backoff(), Backoff::Renew);
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
        assert_eq!(
            ApiError::from_status(
                400,
                br#"{"error":{"code":"BAD_REQUEST","message":"Bad VIN","details":[]}}"#,
                None
            ),
            ApiError::ClientError(400, "Bad VIN".into())
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
        // A countdown no day has, or no number holds, is none: it is not believed.
        assert_eq!(
            parse_replenish("replenished in 24:00:00"),
            Some(MAX_QUOTA_RESET)
        );
        assert_eq!(parse_replenish("replenished in 24:00:01"), None);
        assert_eq!(parse_replenish("replenished in 99999:40:24"), None);
        assert_eq!(
            parse_replenish("replenished in 5124095576030431:00:00"),
            None
        );
        assert_eq!(
            parse_replenish("replenished in 99999999999999999999999:00:00"),
            None
        );
    }

    impl crate::values::Uploaded for u32 {
        fn uploaded_at(&self) -> Option<i64> {
            None
        }
    }

    answer! {
        pub struct Probe<u32> {
            a: "a",
            b: "b",
        }
    }

    /// A `null` member is absent, not a malformed field.
    #[test]
    fn a_null_member_is_absent() {
        let p: Probe = serde_json::from_str(r#"{"a":null,"b":"x"}"#).unwrap();
        assert!(p.a().field.is_none());
        assert!(matches!(
            p.b().field,
            Some(crate::values::Field::Invalid(_))
        ));
        assert!(!p.is_empty());
        assert_eq!(Probe::KEYS, ["a", "b"]);
    }
}
