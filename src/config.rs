//! Configuration: finds `collector.toml`, parses it strictly, resolves secrets, and turns it
//! once into validated [`Settings`] that the rest of the program uses. The command line is
//! applied on top by `cli`; nothing below this module sees raw TOML or flags.
//!
//! Every problem is a single line naming the file, the key and what is allowed (exit 78).

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use crate::error::Fatal;
use crate::secret::{shown_value, Secret};

/// Where the file was looked for, in order, when `--config` is not given.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("VOLVO_COLLECT_CONFIG") {
        paths.push(PathBuf::from(p));
        return paths;
    }
    paths.push(PathBuf::from("collector.toml"));
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = xdg {
        paths.push(dir.join("volvo-collect").join("collector.toml"));
    }
    paths.push(PathBuf::from("/etc/volvo-collect/collector.toml"));
    paths
}

/// Finds the configuration file: the explicit path, else the first candidate that exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, Fatal> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let candidates = candidate_paths();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        let list: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        Fatal::config(format!(
            "no configuration file found (looked for {}): copy collector.toml.example to one of them, or pass --config PATH",
            list.join(", ")
        ))
    })
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    volvo: Option<RawVolvo>,
    #[serde(default)]
    account: Vec<RawVolvo>,
    #[serde(default)]
    sources: RawSources,
    #[serde(default)]
    output: RawOutput,
    #[serde(default)]
    collect: RawCollect,
    #[serde(default)]
    location: RawLocation,
    #[serde(default)]
    pushgateway: RawPushgateway,
    #[serde(default)]
    remote_write: RawRemoteWrite,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    schedule: BTreeMap<String, ScheduleAge>,
    #[serde(default)]
    weather: RawWeather,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeather {
    api_key: Option<Secret>,
    api_key_file: Option<PathBuf>,
    url: Option<Url>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    min_age: Option<Duration>,
}

/// A minimum age in `[schedule]`.
#[derive(Debug)]
struct ScheduleAge(Duration);

impl<'de> Deserialize<'de> for ScheduleAge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_duration(d).map(ScheduleAge)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPushgateway {
    job: Option<String>,
    #[serde(default)]
    grouping: std::collections::BTreeMap<String, String>,
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    timeout: Option<Duration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRemoteWrite {
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    bearer_token: Option<Secret>,
    bearer_token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    timeout: Option<Duration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    #[serde(default)]
    basic_auth_users: std::collections::BTreeMap<String, Secret>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVolvo {
    /// Only in `[[account]]` tables: the value of the `account` label.
    name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    api_key: Option<Secret>,
    api_key_file: Option<PathBuf>,
    redirect_uri: Option<Url>,
    token_file: Option<PathBuf>,
    state_file: Option<PathBuf>,
    vins: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    api_url: Option<Url>,
    auth_url: Option<Url>,
    token_url: Option<Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSources {
    connected_vehicle: bool,
    /// Unset, on or off: unset reads Extended Vehicle only where its scopes were granted.
    extended_vehicle: Option<bool>,
    energy: bool,
    location: bool,
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

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default)]
    stdout: bool,
    textfile: Option<PathBuf>,
    pushgateway: Option<Url>,
    remote_write: Option<Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCollect {
    #[serde(deserialize_with = "de_duration")]
    interval: Duration,
    #[serde(deserialize_with = "de_duration")]
    timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    request_timeout: Duration,
    concurrency: usize,
    requests_per_minute: usize,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLocation {
    precision: Option<u8>,
    export_coordinates: bool,
    home_latitude: Option<f64>,
    home_longitude: Option<f64>,
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

// ---- validated settings --------------------------------------------------------------------

/// Volvo's production endpoints, the defaults for `api_url`, `auth_url` and `token_url`.
pub const VOLVO_API_URL: &str = "https://api.volvocars.com";
pub const VOLVO_AUTH_URL: &str = "https://volvoid.eu.volvocars.com/as/authorization.oauth2";
pub const VOLVO_TOKEN_URL: &str = "https://volvoid.eu.volvocars.com/as/token.oauth2";
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// Which of Volvo's four APIs a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub connected_vehicle: bool,
    /// Extended Vehicle is not turned off (`sources.extended_vehicle = false`). Whether a run
    /// reads it is [`Sources::extended_vehicle_wanted`]: Volvo retired the API on 2025-12-31.
    pub extended_vehicle: bool,
    /// `sources.extended_vehicle = true` is written in the file: its scopes are asked for at
    /// login and it is read even without them. Implies `extended_vehicle`.
    pub extended_vehicle_explicit: bool,
    pub energy: bool,
    pub location: bool,
}

impl Sources {
    /// Whether a run asks Extended Vehicle, given the scopes the token file says were granted
    /// (its `scope` field). Volvo retired the API and new applications may not be able to
    /// register its `exve:*` scopes, so unless the file turns it on or off explicitly, it is
    /// read only for an account that was granted one of them.
    pub fn extended_vehicle_wanted(&self, granted_scope: Option<&str>) -> bool {
        if !self.extended_vehicle {
            return false;
        }
        self.extended_vehicle_explicit
            || granted_scope.is_some_and(|s| s.split_whitespace().any(is_extended_vehicle_scope))
    }
}

/// The scopes of the retired Extended Vehicle API.
pub fn is_extended_vehicle_scope(scope: &str) -> bool {
    scope.starts_with("exve:")
}

/// Where a run delivers its exposition. Any combination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub stdout: bool,
    pub textfile: Option<PathBuf>,
    pub pushgateway: Option<Url>,
    pub remote_write: Option<Url>,
}

impl Outputs {
    pub fn is_empty(&self) -> bool {
        !self.stdout
            && self.textfile.is_none()
            && self.pushgateway.is_none()
            && self.remote_write.is_none()
    }
}

/// Privacy settings for the car's position.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationPrivacy {
    /// Decimal places kept in latitude and longitude; `None` keeps what Volvo sends.
    pub precision: Option<u8>,
    pub export_coordinates: bool,
    /// (latitude, longitude) of home, for the distance-from-home gauge.
    pub home: Option<(f64, f64)>,
}

/// HTTP authentication for an output.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum HttpAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: Secret,
    },
    Bearer(Secret),
}

/// How to reach an HTTP output (Pushgateway, remote write).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutput {
    pub auth: HttpAuth,
    /// Extra CA certificate (PEM) to trust, for HTTPS with a private CA.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// Pushgateway grouping key: job plus extra labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PushgatewayOptions {
    pub job: String,
    pub grouping: Vec<(String, String)>,
    pub http: HttpOutput,
}

/// The listener of the long-running mode.
#[derive(Debug, Clone, PartialEq)]
pub struct WebOptions {
    pub listen: Option<std::net::SocketAddr>,
    /// (certificate chain, private key) PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// user → bcrypt hash, as in Prometheus exporters' web configuration.
    pub basic_auth_users: Vec<(String, Secret)>,
}

/// One Volvo ID account (an application's credentials and its token). A plain `[volvo]`
/// table is one account named `default`; `[[account]]` tables give several.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// Where its keys are written, for messages: `volvo` or `account "home"`.
    pub table: String,
    /// Environment variables of its secrets.
    pub env_client_secret: String,
    pub env_api_key: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub api_key: Option<Secret>,
    pub redirect_uri: Url,
    pub token_file: PathBuf,
    pub state_file: PathBuf,
    pub vins: Vec<String>,
    pub scopes: Vec<String>,
}

/// Validated settings, with the account at hand in `account`: the first one as parsed, another
/// one through [`Settings::for_account`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub accounts: Vec<Account>,
    pub account: Account,
    pub api_url: Url,
    pub auth_url: Url,
    pub token_url: Url,
    pub sources: Sources,
    pub output: Outputs,
    pub interval: Duration,
    pub timeout: Duration,
    pub request_timeout: Duration,
    pub concurrency: usize,
    /// Client-side pacing per account; 0 turns it off.
    pub requests_per_minute: usize,
    pub location: LocationPrivacy,
    pub pushgateway: PushgatewayOptions,
    pub remote_write: HttpOutput,
    pub web: WebOptions,
    pub schedule: crate::schedule::Schedule,
    /// Weather at the car; `None` unless an OpenWeatherMap API key is configured.
    pub weather: Option<crate::weather::WeatherOptions>,
}

impl Settings {
    pub fn client_secret(&self) -> Result<&Secret, Fatal> {
        self.account.client_secret.as_ref().ok_or_else(|| {
            Fatal::config(format!(
                "{}: {}.client_secret is not set: set it, or client_secret_file, or the environment variable {}",
                self.config_path.display(),
                self.account.table,
                self.account.env_client_secret
            ))
        })
    }

    pub fn api_key(&self) -> Result<&Secret, Fatal> {
        self.account.api_key.as_ref().ok_or_else(|| {
            Fatal::config(format!(
                "{}: {}.api_key is not set: set it, or api_key_file, or the environment variable {}",
                self.config_path.display(),
                self.account.table,
                self.account.env_api_key
            ))
        })
    }

    /// Checks the outputs once the command line has been applied over the file: a textfile
    /// path that is empty or a folder is a configuration error, not a failed write.
    pub fn check_outputs(&self) -> Result<(), Fatal> {
        if let Some(p) = &self.output.textfile {
            if let Some(what) = not_a_file_path(Some(p), p) {
                return Err(Fatal::config(format!(
                    "{}: output.textfile (or --textfile) {what}: set it to a file, such as \"/var/lib/prometheus/node-exporter/volvo.prom\"",
                    self.config_path.display()
                )));
            }
        }
        Ok(())
    }

    /// These settings with `account`'s credentials, token and cars.
    pub fn for_account(&self, a: &Account) -> Settings {
        Settings {
            account: a.clone(),
            ..self.clone()
        }
    }

    /// The account named `name`, or the only one when `None`.
    pub fn select_account(&self, name: Option<&str>) -> Result<Settings, Fatal> {
        let names = || {
            self.accounts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self
                .accounts
                .iter()
                .find(|a| a.name == n)
                .map(|a| self.for_account(a))
                .ok_or_else(|| {
                    Fatal::config(format!(
                        "{}: no account named {}; the accounts are: {}",
                        self.config_path.display(),
                        shown_value(n),
                        names()
                    ))
                }),
            None if self.accounts.len() == 1 => Ok(self.for_account(&self.accounts[0])),
            None => Err(Fatal::new(
                crate::error::ExitCode::Usage,
                format!(
                    "{} has several accounts ({}): say which with --account NAME",
                    self.config_path.display(),
                    names()
                ),
            )),
        }
    }
}

/// Scopes that would let this tool act on the car; refused in `volvo.scopes`.
const COMMAND_SCOPES: &[&str] = &[
    "conve:lock",
    "conve:unlock",
    "conve:engine_start_stop",
    "conve:honk_flash",
    "conve:climatization_start_stop",
];

/// Reads and validates the configuration file.
pub fn load(path: &Path) -> Result<Settings, Fatal> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fatal::config(format!(
            "cannot read configuration file {}: {e}",
            path.display()
        ))
    })?;
    let settings = parse(path, &text, &|name| std::env::var(name).ok())?;
    // A token folder that does not exist yet is no configuration error: `login` creates it
    // (and a run without a token says to log in); one where the lock file cannot be created
    // is, and the token step says so (exit 78).
    // Secrets written in the file itself (not in _file keys, the environment or credentials).
    let holds_secrets = text.lines().any(|l| {
        let l = l.trim_start();
        ["client_secret", "api_key", "password", "bearer_token"]
            .iter()
            .any(|k| {
                l.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
    });
    if holds_secrets && crate::fsutil::readable_by_others(path) {
        tracing::warn!(file = %path.display(), "the configuration file holds secrets and other users can read it: chmod 600 it, or move the secrets to _file keys or the environment");
    }
    Ok(settings)
}

/// Parses configuration text; `env` looks up environment variables (injected for tests).
pub fn parse(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Fatal> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let resolve = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let bad = |key: &str, what: &str| Fatal::config(format!("{}: {key}: {what}", path.display()));

    let sources = Sources {
        connected_vehicle: raw.sources.connected_vehicle,
        extended_vehicle: raw.sources.extended_vehicle != Some(false),
        extended_vehicle_explicit: raw.sources.extended_vehicle == Some(true),
        energy: raw.sources.energy,
        location: raw.sources.location,
    };
    if !(sources.connected_vehicle
        || sources.extended_vehicle
        || sources.energy
        || sources.location)
    {
        return Err(bad(
            "sources",
            "every source is off: turn on at least one of connected_vehicle, extended_vehicle, energy, location",
        ));
    }
    let url_key = |key: &str, u: Option<Url>, default: &str| -> Result<Url, Fatal> {
        let u = u.unwrap_or_else(|| Url::parse(default).expect("default URL is valid"));
        match u.scheme() {
            "http" | "https" => Ok(u),
            other => Err(bad(
                key,
                &format!(
                    "scheme {} is not allowed: use an http:// or https:// URL",
                    shown_value(other)
                ),
            )),
        }
    };

    let mut volvo = raw.volvo.unwrap_or_default();
    let api_url = url_key("volvo.api_url", volvo.api_url.take(), VOLVO_API_URL)?;
    let auth_url = url_key("volvo.auth_url", volvo.auth_url.take(), VOLVO_AUTH_URL)?;
    let token_url = url_key("volvo.token_url", volvo.token_url.take(), VOLVO_TOKEN_URL)?;

    // One account's keys, from `[volvo]` or one `[[account]]` table.
    let account_of = |table: &str,
                      v: RawVolvo,
                      name: String,
                      env_suffix: &str,
                      default_token: &str|
     -> Result<Account, Fatal> {
        let key = |k: &str| format!("{table}.{k}");
        if v.api_url.is_some() || v.auth_url.is_some() || v.token_url.is_some() {
            return Err(bad(
                &key("api_url"),
                "Volvo's URLs are shared: set api_url, auth_url and token_url in [volvo]",
            ));
        }
        let client_id = match v.client_id {
            Some(id) if !id.trim().is_empty() => id,
            _ => return Err(bad(
                &key("client_id"),
                "missing: set it to the client ID of your application in Volvo's developer portal",
            )),
        };
        let env_client_secret = format!("VOLVO_CLIENT_SECRET{env_suffix}");
        let env_api_key = format!("VOLVO_API_KEY{env_suffix}");
        let credential_suffix = env_suffix.to_ascii_lowercase();
        let client_secret = secret(
            env,
            &env_client_secret,
            v.client_secret,
            v.client_secret_file.as_deref().map(resolve),
            &format!("client_secret{credential_suffix}"),
        )
        .map_err(|e| bad(&key("client_secret_file"), &e))?;
        let api_key = secret(
            env,
            &env_api_key,
            v.api_key,
            v.api_key_file.as_deref().map(resolve),
            &format!("api_key{credential_suffix}"),
        )
        .map_err(|e| bad(&key("api_key_file"), &e))?;
        // Sent as an HTTP header: a stray newline or space would only show later, as a
        // network error.
        if let Some(k) = &api_key {
            header_safe(k).map_err(|what| {
                bad(
                    &key("api_key"),
                    &format!("{what}: an API key is one line of visible characters; check the value (in the file, api_key_file or {env_api_key})"),
                )
            })?;
        }
        let vins = v.vins.unwrap_or_default();
        if let Some(vin) = vins.iter().find(|v| !valid_vin(v)) {
            return Err(bad(
                &key("vins"),
                &format!(
                    "{} is not a VIN: expected 17 letters and digits (no I, O or Q)",
                    shown_value(vin)
                ),
            ));
        }
        let scopes = match v.scopes {
            Some(s) => {
                if let Some(cmd) = s.iter().find(|s| COMMAND_SCOPES.contains(&s.as_str())) {
                    return Err(bad(
                        &key("scopes"),
                        &format!("{cmd:?} is a command scope; this tool only reads: remove it"),
                    ));
                }
                s
            }
            // The defaults come from the endpoints the sources collect (`endpoints::scopes`).
            None => Vec::new(),
        };
        let token_file = resolve(v.token_file.as_deref().unwrap_or(Path::new(default_token)));
        if let Some(what) = not_a_file_path(v.token_file.as_deref(), &token_file) {
            return Err(bad(
                &key("token_file"),
                &format!("{what}: set it to a file, such as \"token.json\" (relative paths are in the configuration file's folder)"),
            ));
        }
        let state_file = match v.state_file.as_deref() {
            Some(p) => resolve(p),
            None => default_state_file(&token_file),
        };
        Ok(Account {
            name,
            table: table.to_string(),
            env_client_secret,
            env_api_key,
            client_id,
            client_secret,
            api_key,
            redirect_uri: url_key(&key("redirect_uri"), v.redirect_uri, DEFAULT_REDIRECT_URI)?,
            token_file,
            state_file,
            vins,
            scopes,
        })
    };

    let accounts = if raw.account.is_empty() {
        if volvo.name.is_some() {
            return Err(bad(
                "volvo.name",
                "names are for [[account]] tables; a single [volvo] account is named \"default\"",
            ));
        }
        vec![account_of(
            "volvo",
            volvo,
            "default".into(),
            "",
            "token.json",
        )?]
    } else {
        if volvo.client_id.is_some()
            || volvo.client_secret.is_some()
            || volvo.api_key.is_some()
            || volvo.token_file.is_some()
            || volvo.vins.is_some()
        {
            return Err(bad("volvo", "with [[account]] tables, each account has its own client_id, secrets, token_file and vins: move them from [volvo] into an [[account]]"));
        }
        let mut accounts: Vec<Account> = Vec::new();
        for (i, v) in raw.account.into_iter().enumerate() {
            let name = match v.name.clone() {
                Some(n) if !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => n,
                _ => return Err(bad(&format!("account[{i}].name"), "missing or unusable: give each [[account]] a name of letters, digits, _ or - (it becomes the account label)")),
            };
            if accounts.iter().any(|a| a.name == name) {
                return Err(bad(
                    &format!("account {name:?}"),
                    "two accounts have this name: names must differ",
                ));
            }
            let suffix = format!("_{}", name.to_ascii_uppercase().replace('-', "_"));
            let a = account_of(
                &format!("account {name:?}"),
                v,
                name.clone(),
                &suffix,
                &format!("token-{name}.json"),
            )?;
            if let Some(other) = accounts
                .iter()
                .find(|o| o.token_file == a.token_file || o.state_file == a.state_file)
            {
                return Err(bad(&format!("account {name:?}"), &format!("shares its token or state file with account {:?}: each account needs its own", other.name)));
            }
            accounts.push(a);
        }
        accounts
    };
    let first = accounts[0].clone();

    let collect = raw.collect;
    if collect.interval < Duration::from_secs(10) {
        return Err(bad("collect.interval", "too short: use at least \"10s\""));
    }
    if collect.timeout.is_zero() {
        return Err(bad("collect.timeout", "must be more than 0s"));
    }
    if collect.request_timeout.is_zero() {
        return Err(bad("collect.request_timeout", "must be more than 0s"));
    }
    if collect.concurrency == 0 || collect.concurrency > 1024 {
        return Err(bad(
            "collect.concurrency",
            &format!("{} is out of range: use 1 to 1024", collect.concurrency),
        ));
    }

    let loc = raw.location;
    if let Some(p) = loc.precision {
        if p > 10 {
            return Err(bad(
                "location.precision",
                &format!("{p} is out of range: use 0 to 10 decimal places"),
            ));
        }
    }
    let home = match (loc.home_latitude, loc.home_longitude) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(bad("location.home_latitude", "must be between -90 and 90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(bad(
                    "location.home_longitude",
                    "must be between -180 and 180",
                ));
            }
            Some((lat, lon))
        }
        _ => {
            return Err(bad(
                "location",
                "home_latitude and home_longitude go together: set both or neither",
            ))
        }
    };

    let read_secret =
        |key: &str, inline: Option<Secret>, file: Option<&Path>| -> Result<Option<Secret>, Fatal> {
            match (inline, file) {
                (Some(_), Some(_)) => Err(bad(key, "set either the value or the _file, not both")),
                (Some(v), None) => Ok(Some(v)),
                (None, Some(f)) => {
                    let f = resolve(f);
                    let text = std::fs::read_to_string(&f).map_err(|e| {
                        bad(
                            &format!("{key}_file"),
                            &format!("cannot read {}: {e}", f.display()),
                        )
                    })?;
                    Ok(Some(Secret::new(text.trim())))
                }
                (None, None) => Ok(None),
            }
        };
    let pg = raw.pushgateway;
    let pg_password = read_secret(
        "pushgateway.password",
        pg.password,
        pg.password_file.as_deref(),
    )?;
    let pg_auth = match (pg.username, pg_password) {
        (Some(username), Some(password)) => HttpAuth::Basic { username, password },
        (None, None) => HttpAuth::None,
        _ => {
            return Err(bad(
                "pushgateway",
                "username and password go together: set both or neither",
            ))
        }
    };
    let job = pg.job.unwrap_or_else(|| "volvo_collect".into());
    if job.is_empty() {
        return Err(bad("pushgateway.job", "must not be empty"));
    }
    for name in pg.grouping.keys() {
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid || name.is_empty() || name == "job" || name.starts_with("__") {
            return Err(bad(
                "pushgateway.grouping",
                &format!(
                    "{} is not a usable label name: use letters, digits and _ (not job, not __...)",
                    shown_value(name)
                ),
            ));
        }
    }
    let rw = raw.remote_write;
    let rw_password = read_secret(
        "remote_write.password",
        rw.password,
        rw.password_file.as_deref(),
    )?;
    let rw_bearer = read_secret(
        "remote_write.bearer_token",
        rw.bearer_token,
        rw.bearer_token_file.as_deref(),
    )?;
    if let Some(t) = &rw_bearer {
        header_safe(t).map_err(|what| {
            bad(
                "remote_write.bearer_token",
                &format!(
                    "{what}: a bearer token is one line of visible characters; check the value"
                ),
            )
        })?;
    }
    let rw_auth = match (rw.username, rw_password, rw_bearer) {
        (Some(username), Some(password), None) => HttpAuth::Basic { username, password },
        (None, None, Some(token)) => HttpAuth::Bearer(token),
        (None, None, None) => HttpAuth::None,
        _ => {
            return Err(bad(
                "remote_write",
                "use either username and password, or bearer_token",
            ))
        }
    };
    let web = raw.web;
    let listen = match web.listen.as_deref() {
        None => None,
        Some(l) => Some(parse_listen(l).map_err(|e| bad("web.listen", &e))?),
    };
    let tls = match (web.tls_cert_file, web.tls_key_file) {
        (Some(c), Some(k)) => Some((resolve(&c), resolve(&k))),
        (None, None) => None,
        _ => {
            return Err(bad(
                "web",
                "tls_cert_file and tls_key_file go together: set both or neither",
            ))
        }
    };
    for (user, hash) in &web.basic_auth_users {
        if !hash.expose().starts_with("$2") {
            return Err(bad("web.basic_auth_users", &format!("the password of {} must be a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')", shown_value(user))));
        }
    }

    let overrides: BTreeMap<String, Duration> =
        raw.schedule.into_iter().map(|(k, v)| (k, v.0)).collect();
    let schedule =
        crate::schedule::Schedule::with_overrides(&overrides).map_err(|e| bad("schedule", &e))?;

    let w = raw.weather;
    let weather_key = secret(
        env,
        "OPENWEATHERMAP_API_KEY",
        w.api_key,
        w.api_key_file.as_deref().map(resolve),
        "openweathermap_api_key",
    )
    .map_err(|e| bad("weather.api_key_file", &e))?;
    let weather = match weather_key {
        Some(api_key) => Some(crate::weather::WeatherOptions {
            api_key,
            url: url_key("weather.url", w.url, crate::weather::DEFAULT_URL)?,
            min_age: w.min_age.unwrap_or(Duration::from_secs(600)),
        }),
        None => None,
    };

    let settings = Settings {
        weather,
        schedule,
        pushgateway: PushgatewayOptions {
            job,
            grouping: pg.grouping.into_iter().collect(),
            http: HttpOutput {
                auth: pg_auth,
                ca_file: pg.ca_file.as_deref().map(resolve),
                timeout: pg.timeout.unwrap_or(Duration::from_secs(15)),
            },
        },
        remote_write: HttpOutput {
            auth: rw_auth,
            ca_file: rw.ca_file.as_deref().map(resolve),
            timeout: rw.timeout.unwrap_or(Duration::from_secs(15)),
        },
        web: WebOptions {
            listen,
            tls,
            basic_auth_users: web.basic_auth_users.into_iter().collect(),
        },
        config_path: path.to_path_buf(),
        account: first,
        accounts,
        api_url,
        auth_url,
        token_url,
        sources,
        output: Outputs {
            stdout: raw.output.stdout,
            textfile: raw.output.textfile.as_deref().map(resolve),
            pushgateway: raw.output.pushgateway,
            remote_write: raw.output.remote_write,
        },
        interval: collect.interval,
        timeout: collect.timeout,
        request_timeout: collect.request_timeout,
        concurrency: collect.concurrency,
        requests_per_minute: collect.requests_per_minute,
        location: LocationPrivacy {
            precision: loc.precision,
            export_coordinates: loc.export_coordinates,
            home,
        },
    };
    settings.check_outputs()?;
    Ok(settings)
}

/// Why a configured path cannot be a file to write, if it cannot: empty, or a folder.
fn not_a_file_path(written: Option<&Path>, resolved: &Path) -> Option<&'static str> {
    match written {
        Some(p) if p.as_os_str().is_empty() => Some("is empty"),
        Some(p) if p.as_os_str().to_string_lossy().ends_with('/') => Some("names a folder"),
        _ if resolved.is_dir() => Some("names a folder"),
        _ => None,
    }
}

/// Whether a secret can be sent as an HTTP header value: printable ASCII without spaces. Says
/// what is wrong without showing the secret.
fn header_safe(secret: &Secret) -> Result<(), &'static str> {
    let v = secret.expose();
    if v.bytes().any(|b| b == b'\n' || b == b'\r') {
        Err("contains a line break")
    } else if v.bytes().any(|b| b.is_ascii_whitespace()) {
        Err("contains a space or tab")
    } else if v.bytes().any(|b| !b.is_ascii_graphic()) {
        Err("contains a control or non-ASCII character")
    } else {
        Ok(())
    }
}

/// A listen address: `HOST:PORT`, or just `:PORT` for loopback (the exposition holds the
/// car's position, so nothing is exposed beyond this machine unless asked).
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    let full = if let Some(port) = text.strip_prefix(':') {
        format!("127.0.0.1:{port}")
    } else {
        text.to_string()
    };
    full.parse().map_err(|_| {
        format!(
            "{} is not an address: use HOST:PORT such as 127.0.0.1:9811, or :9811 for loopback",
            shown_value(text)
        )
    })
}

/// `token.json` keeps its run-to-run state in `token.state.json` beside it.
pub fn default_state_file(token_file: &Path) -> PathBuf {
    let stem = token_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".into());
    token_file.with_file_name(format!("{stem}.state.json"))
}

/// A VIN: 17 characters from the VIN alphabet (ISO 3779 excludes I, O and Q).
pub fn valid_vin(vin: &str) -> bool {
    vin.len() == 17
        && vin
            .bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOQ".contains(&b)))
}

/// A secret from, in order: the environment, the config key, a file named in the config, or
/// a systemd credential (`$CREDENTIALS_DIRECTORY/<name>`).
fn secret(
    env: &dyn Fn(&str) -> Option<String>,
    env_name: &str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
    credential: &str,
) -> Result<Option<Secret>, String> {
    if let Some(v) = env(env_name).filter(|v| !v.is_empty()) {
        return Ok(Some(Secret::new(v)));
    }
    if let Some(v) = inline.filter(|v| !v.is_empty()) {
        return Ok(Some(v));
    }
    let read = |p: &Path| -> Result<Secret, String> {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("{} is empty", p.display()));
        }
        Ok(Secret::new(text))
    };
    if let Some(p) = file {
        return read(&p).map(Some);
    }
    if let Some(dir) = env("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join(credential);
        if p.is_file() {
            return read(&p).map(Some);
        }
    }
    Ok(None)
}

/// Keys whose values are secrets: an error about one never shows its value.
const SECRET_KEYS: &[&str] = &["client_secret", "api_key", "password", "bearer_token"];

/// One line from a TOML error: file, line, the table and the key, and what is allowed. The
/// value is shown only for keys that are not secrets, and cut short; toml's own message, which
/// may quote the value, is used only where it names keys (unknown or missing fields).
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Fatal {
    let msg = without_userinfo(&e.message().replace('\n', " "));
    let Some(span) = e.span() else {
        return Fatal::config(format!("{}: {}", path.display(), shorten_quoted(&msg)));
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    let table = text[..start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l.to_string())
    });
    let place = match &table {
        Some(t) => format!("in {}", shorten(t)),
        None => "at the top level".to_string(),
    };
    let spanned = text.get(span.clone()).unwrap_or("").trim();
    // The key the error is about: the spanned text itself for unknown and duplicate keys; none
    // for a missing one (the span is the table); otherwise the key written before the `=` that
    // precedes the spanned value, within the same table.
    let key_is_span = msg.starts_with("unknown field") || msg.starts_with("duplicate key");
    let since_table = match text[..start].rfind("\n[") {
        Some(i) => &text[i + 1..start],
        None => &text[..start],
    };
    let key = if key_is_span {
        Some(spanned.trim_matches('"').to_string())
    } else if msg.starts_with("missing field") {
        None
    } else {
        since_table.rsplit_once('=').map(|(before, _)| {
            before
                .trim_end()
                .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
    }
    .filter(|k| !k.is_empty());
    let last = key.as_deref().map(|k| k.rsplit('.').next().unwrap_or(k));
    let line_text = since_table.rsplit('\n').next().unwrap_or("");
    let secret = last.is_some_and(|k| SECRET_KEYS.contains(&k))
        || table.as_deref() == Some("[web.basic_auth_users]")
        || line_text.contains("basic_auth_users");
    let what = if let Some(kinds) = msg.strip_prefix("invalid type: ") {
        // "invalid type: integer `5`, expected a string": keep the kinds, never the value.
        let found = kinds.split([' ', ',']).next().unwrap_or("value");
        let expected = msg
            .split_once("expected ")
            .map(|(_, e)| e)
            .unwrap_or("another type");
        format!("found {found}, expected {}", shorten_quoted(expected))
    } else if msg.starts_with("invalid duration") {
        msg.clone()
    } else if secret && !key_is_span && msg.contains(['"', '`', '\'']) {
        "not a usable value".to_string()
    } else {
        shorten_quoted(&msg)
    };
    let shown_key = key.as_deref().map(shorten).unwrap_or_default();
    let value = if !secret && !key_is_span && key.is_some() && !spanned.is_empty() {
        format!(" = {}", shorten(spanned))
    } else {
        String::new()
    };
    let hint = if secret && msg.starts_with("invalid type") {
        "; a secret is a quoted string (or put it in the _file key or the environment)"
    } else {
        ""
    };
    if shown_key.is_empty() {
        Fatal::config(format!("{} line {line}: {place}: {what}", path.display()))
    } else {
        Fatal::config(format!(
            "{} line {line}: {place}, `{shown_key}`{value}: {what}{hint}",
            path.display()
        ))
    }
}

/// `text` without the `user:password@` of any URL in it.
fn without_userinfo(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c == '"' || c == '`' || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` cut to 60 characters, on one line, without URL credentials.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    let one_line = without_userinfo(text).replace(['\n', '\r'], " ");
    let mut cut: String = one_line.chars().take(MAX).collect();
    if cut.len() < one_line.len() {
        cut.push('…');
    }
    cut
}

/// `msg` with every quoted or backticked part longer than 60 characters cut short.
fn shorten_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest[i..].chars().next().expect("found");
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        match rest.find(quote) {
            Some(j) => {
                out.push_str(&shorten(&rest[..j]));
                out.push(quote);
                rest = &rest[j + 1..];
            }
            None => {
                out.push_str(&shorten(rest));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Settings {
        parse(Path::new("/etc/vc/collector.toml"), text, &|_| None).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new("/etc/vc/collector.toml"), text, &|_| None)
            .unwrap_err()
            .message
    }

    const MINIMAL: &str = "[volvo]\nclient_id = \"abc\"\n";

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let s = parse_ok(MINIMAL);
        assert_eq!(s.account.token_file, PathBuf::from("/etc/vc/token.json"));
        assert_eq!(
            s.account.state_file,
            PathBuf::from("/etc/vc/token.state.json")
        );
        assert_eq!(s.interval, Duration::from_secs(300));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(s.sources.energy && s.sources.location);
        assert!(s.output.is_empty());
        // No `volvo.scopes`: the defaults come from the endpoint table.
        assert!(s.account.scopes.is_empty());
        let scopes = crate::endpoints::scopes(&s);
        assert!(!scopes.iter().any(|s| COMMAND_SCOPES.contains(&s.as_str())));
        assert!(scopes.contains(&"location:read".to_string()));
    }

    /// Guards the 2026 account: Extended Vehicle was retired, so unless the file says
    /// otherwise its scopes are not asked for at login and it is read only where they were
    /// granted; `true` asks for them and reads it; `false` never reads it.
    #[test]
    fn extended_vehicle_is_read_when_granted_or_turned_on() {
        let exve = |s: &Settings| {
            crate::endpoints::scopes(s)
                .iter()
                .filter(|s| s.starts_with("exve:"))
                .count()
        };
        let granted = Some("openid conve:vehicle_relation exve:odometer_status");
        let live = Some("openid conve:vehicle_relation location:read");

        let unset = parse_ok(MINIMAL);
        assert_eq!(exve(&unset), 0);
        assert!(unset.sources.extended_vehicle_wanted(granted));
        assert!(!unset.sources.extended_vehicle_wanted(live));
        assert!(!unset.sources.extended_vehicle_wanted(None));

        let on = parse_ok(&format!("{MINIMAL}[sources]\nextended_vehicle = true\n"));
        assert_eq!(exve(&on), 9);
        assert!(crate::endpoints::scopes(&on).contains(&"exve:odometer_status".to_string()));
        assert!(on.sources.extended_vehicle_wanted(live));
        assert!(on.sources.extended_vehicle_wanted(None));

        let off = parse_ok(&format!("{MINIMAL}[sources]\nextended_vehicle = false\n"));
        assert_eq!(exve(&off), 0);
        assert!(!off.sources.extended_vehicle_wanted(granted));
        assert!(!off.sources.extended_vehicle);

        // An explicit scope list is taken as written.
        let listed =
            parse_ok("[volvo]\nclient_id = \"abc\"\nscopes = [\"openid\", \"exve:diagnostics\"]\n");
        assert_eq!(exve(&listed), 1);
    }

    #[test]
    fn unknown_key_names_key_file_table_and_allowed_keys() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\nclient_sekret = \"x\"\n");
        assert!(e.starts_with("/etc/vc/collector.toml line 3: in [volvo], `client_sekret`: unknown field `client_sekret`, expected one of"), "{e}");
        assert!(e.contains("`client_secret`"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn unknown_table_is_rejected() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[outputs]\nstdout = true\n");
        assert!(e.contains("unknown field `outputs`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
    }

    #[test]
    fn bad_duration_says_what_is_allowed() {
        let e =
            parse_err("[volvo]\nclient_id = \"abc\"\n[collect]\ninterval = \"5 minutes please\"\n");
        assert_eq!(e, "/etc/vc/collector.toml line 4: in [collect], `interval` = \"5 minutes please\": invalid duration: expected a duration like \"90s\", \"5m\" or \"1h\"");
    }

    /// Guards issue 12: an error about a secret key never shows its value, whatever the wrong
    /// type; it names the file, line, table and key, and what is allowed.
    #[test]
    fn errors_about_secret_keys_never_show_the_value() {
        let wrong = [
            "[\"SuperSecretValue42\"]",
            "4242424242",
            "{ SuperSecretValue42 = \"SuperSecretValue42\" }",
            "true",
            "4242.5",
        ];
        let places = [
            ("[volvo]\nclient_id = \"abc\"\n", "client_secret", "[volvo]"),
            ("[volvo]\nclient_id = \"abc\"\n", "api_key", "[volvo]"),
            (
                "[volvo]\nclient_id = \"abc\"\n[pushgateway]\n",
                "password",
                "[pushgateway]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[remote_write]\n",
                "password",
                "[remote_write]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[remote_write]\n",
                "bearer_token",
                "[remote_write]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[weather]\n",
                "api_key",
                "[weather]",
            ),
            (
                "[[account]]\nname = \"home\"\nclient_id = \"abc\"\n",
                "client_secret",
                "[[account]]",
            ),
        ];
        for (head, key, table) in places {
            for value in wrong {
                let text = format!("{head}{key} = {value}\n");
                let e = parse_err(&text);
                let line = head.matches('\n').count() + 1;
                assert!(
                    !e.contains("SuperSecret") && !e.contains("4242"),
                    "{text}\n→ {e}"
                );
                assert!(
                    e.starts_with(&format!(
                        "/etc/vc/collector.toml line {line}: in {table}, `{key}`: found "
                    )),
                    "{text}\n→ {e}"
                );
                assert!(e.contains("expected a string"), "{e}");
            }
        }
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[web]\nbasic_auth_users = { prom = [\"SuperSecret\"] }\n");
        assert!(!e.contains("SuperSecret") && e.contains("`prom`"), "{e}");
    }

    #[test]
    fn urls_in_errors_lose_their_credentials() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[output]\npushgateway = \"http://user:SuperSecretPw@host:port/\"\n");
        assert!(
            !e.contains("SuperSecretPw") && e.contains("`pushgateway` = "),
            "{e}"
        );
        assert_eq!(
            without_userinfo("a \"https://u:p@h/x\" b"),
            "a \"https://h/x\" b"
        );
    }

    #[test]
    fn huge_values_are_cut_short() {
        let big = "9".repeat(1_000_000);
        let e = parse_err(&format!(
            "[volvo]\nclient_id = \"abc\"\n[collect]\ninterval = \"{big}\"\n"
        ));
        assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..300]);
        assert!(e.contains("`interval`") && e.contains('…'), "{e}");
        let e = parse_err(&format!("[volvo]\nclient_id = \"abc\"\n{big} = 1\n"));
        assert!(e.len() < 600, "{} bytes", e.len());
    }

    #[test]
    fn wrong_type_is_rejected_with_line() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[sources]\nenergy = \"yes\"\n");
        assert!(e.contains("line 4: in [sources]"), "{e}");
        assert!(e.contains("expected a boolean"), "{e}");
    }

    #[test]
    fn missing_client_id() {
        assert_eq!(
            parse_err("[volvo]\n"),
            "/etc/vc/collector.toml: volvo.client_id: missing: set it to the client ID of your application in Volvo's developer portal"
        );
    }

    #[test]
    fn command_scopes_are_refused() {
        let e = parse_err("[volvo]\nclient_id = \"a\"\nscopes = [\"openid\", \"conve:unlock\"]\n");
        assert!(e.contains("\"conve:unlock\" is a command scope"), "{e}");
    }

    #[test]
    fn bad_vin_and_bad_url_scheme() {
        let e = parse_err("[volvo]\nclient_id = \"a\"\nvins = [\"YV1-bad\"]\n");
        assert!(e.contains("volvo.vins: \"YV1-bad\" is not a VIN"), "{e}");
        let e = parse_err("[volvo]\nclient_id = \"a\"\napi_url = \"ftp://x\"\n");
        assert!(
            e.contains("volvo.api_url: scheme \"ftp\" is not allowed"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_env_before_the_file() {
        let text = "[volvo]\nclient_id = \"a\"\nclient_secret = \"from-file\"\n";
        let s = parse(Path::new("c.toml"), text, &|k| {
            (k == "VOLVO_CLIENT_SECRET").then(|| "from-env".to_string())
        })
        .unwrap();
        assert_eq!(s.account.client_secret.unwrap().expose(), "from-env");
        let s = parse(Path::new("c.toml"), text, &|_| None).unwrap();
        assert_eq!(s.account.client_secret.unwrap().expose(), "from-file");
    }

    #[test]
    fn secrets_from_a_file_and_from_systemd_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "k3y\n").unwrap();
        std::fs::write(dir.path().join("client_secret"), "s3cret\n").unwrap();
        let text = "[volvo]\nclient_id = \"a\"\napi_key_file = \"key.txt\"\n";
        let cfg = dir.path().join("collector.toml");
        let d = dir.path().to_string_lossy().into_owned();
        let s = parse(&cfg, text, &|k| {
            (k == "CREDENTIALS_DIRECTORY").then(|| d.clone())
        })
        .unwrap();
        assert_eq!(s.account.api_key.unwrap().expose(), "k3y");
        assert_eq!(s.account.client_secret.unwrap().expose(), "s3cret");
        let e = parse(
            &cfg,
            "[volvo]\nclient_id = \"a\"\napi_key_file = \"nope\"\n",
            &|_| None,
        )
        .unwrap_err()
        .message;
        assert!(e.contains("volvo.api_key_file: cannot read"), "{e}");
    }

    #[test]
    fn location_home_needs_both_coordinates() {
        let e = parse_err("[volvo]\nclient_id = \"a\"\n[location]\nhome_latitude = 57.7\n");
        assert!(
            e.contains("home_latitude and home_longitude go together"),
            "{e}"
        );
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../collector.toml.example");
        let s = parse(
            Path::new("/etc/volvo-collect/collector.toml"),
            text,
            &|_| None,
        )
        .unwrap();
        assert_eq!(s.account.client_id, "your-client-id");
    }
}
