//! The configuration file as written: one serde type per TOML table, strict
//! (`deny_unknown_fields`) so that a misspelt key is an error at load, not a silently ignored
//! setting. Nothing here checks values beyond their types; that is `validate`'s job.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

/// The whole file; an absent table takes its defaults.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub volvo: Option<RawVolvo>,
    #[serde(default)]
    pub account: Vec<RawVolvo>,
    #[serde(default)]
    pub sources: RawSources,
    #[serde(default)]
    pub output: RawOutput,
    #[serde(default)]
    pub collect: RawCollect,
    #[serde(default)]
    pub location: RawLocation,
    #[serde(default)]
    pub pushgateway: RawPushgateway,
    #[serde(default)]
    pub remote_write: RawRemoteWrite,
    #[serde(default)]
    pub web: RawWeb,
    #[serde(default)]
    pub schedule: BTreeMap<String, ScheduleAge>,
    /// `None` when the file has no `[weather]` table (the environment may still turn it on).
    #[serde(default)]
    pub weather: Option<RawWeather>,
    #[serde(default)]
    pub prices: RawPrices,
}

/// `[prices]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrices {
    pub currency: Option<String>,
    pub electricity_per_kwh: Option<f64>,
    pub fuel_per_liter: Option<f64>,
}

/// `[weather]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeather {
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub min_age: Option<Duration>,
}

/// A minimum age in `[schedule]`.
#[derive(Debug)]
pub(super) struct ScheduleAge(pub Duration);

impl<'de> Deserialize<'de> for ScheduleAge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_duration(d).map(ScheduleAge)
    }
}

/// `[pushgateway]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPushgateway {
    pub job: Option<String>,
    #[serde(default)]
    pub grouping: BTreeMap<String, String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `[remote_write]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWrite {
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

/// `[web]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub listen: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, Secret>,
}

/// `[volvo]`, or one `[[account]]` table.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVolvo {
    /// Only in `[[account]]` tables: the value of the `account` label.
    pub name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    pub redirect_uri: Option<String>,
    pub token_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub vins: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub api_url: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
}

/// `[sources]`; every API is read unless turned off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSources {
    pub connected_vehicle: bool,
    /// Unset, on or off: unset reads Extended Vehicle only where its scopes were granted.
    pub extended_vehicle: Option<bool>,
    pub energy: bool,
    pub location: bool,
}

impl Default for RawSources {
    fn default() -> Self {
        RawSources {
            connected_vehicle: true,
            extended_vehicle: None,
            energy: true,
            location: true,
        }
    }
}

/// `[output]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    #[serde(default)]
    pub stdout: bool,
    pub textfile: Option<PathBuf>,
    pub pushgateway: Option<String>,
    pub remote_write: Option<String>,
}

/// `[collect]`, with its defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCollect {
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub requests_per_minute: usize,
}

impl Default for RawCollect {
    fn default() -> Self {
        RawCollect {
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(20),
            concurrency: 32,
            requests_per_minute: 90,
        }
    }
}

/// `[location]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLocation {
    pub precision: Option<u8>,
    pub export_coordinates: bool,
    pub home_latitude: Option<f64>,
    pub home_longitude: Option<f64>,
}

impl Default for RawLocation {
    fn default() -> Self {
        RawLocation {
            precision: None,
            export_coordinates: true,
            home_latitude: None,
            home_longitude: None,
        }
    }
}

fn de_opt_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    // The value itself is shown (cut short) by `toml_error`, which knows the key.
    humantime::parse_duration(&text).map_err(|_| {
        serde::de::Error::custom(
            "invalid duration: expected a duration like \"90s\", \"5m\" or \"1h\"",
        )
    })
}
