//! Configuration: finds `collector.toml`, reads it strictly, resolves secrets, and turns it
//! once into validated [`Settings`] that the rest of the program uses. The command line is
//! applied on top by `cli`; nothing below this module sees raw TOML or flags.
//!
//! It imports only the helpers and the endpoints below it. The steps are one file each, each
//! using only those before it: [`errors`] (toml's errors as one line that never shows a
//! secret), [`raw`] (the file as written), [`secrets`] (the one reader of every secret) and
//! [`validate`] (table by table into settings). Every problem is a single line naming the file,
//! the key and what is allowed (exit 78).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::error::Fatal;
use crate::secret::{shown_value, Secret};

mod errors;
mod raw;
mod secrets;
mod validate;

use errors::{toml_error, SECRET_KEYS};
use raw::RawConfig;
use validate::not_a_file_path;
pub use validate::{default_state_file, parse_listen, valid_vin};

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

/// Volvo's production endpoints, the defaults for `api_url`, `auth_url` and `token_url`.
pub const VOLVO_API_URL: &str = "https://api.volvocars.com";
pub const VOLVO_AUTH_URL: &str = "https://volvoid.eu.volvocars.com/as/authorization.oauth2";
pub const VOLVO_TOKEN_URL: &str = "https://volvoid.eu.volvocars.com/as/token.oauth2";
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
/// OpenWeatherMap's current-weather endpoint, the default for `weather.url`.
pub const DEFAULT_WEATHER_URL: &str = "https://api.openweathermap.org/data/2.5/weather";
/// The largest configuration file read: far above any real one (a few KiB).
const CONFIG_MAX: u64 = 1024 * 1024;
/// The shortest `collect.interval` (and `check --interval`) accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

pub use crate::endpoints::{is_extended_vehicle_scope, Sources};

/// An http:// or https:// URL with a host, from the configuration or the command line. The
/// reason it is refused never quotes the text: a URL may carry a password.
pub fn http_url(text: &str) -> Result<Url, String> {
    const SHAPE: &str = "write it as http://host[:port]/path or https://...";
    const HIDDEN: &str = "the value is not shown: it may hold a password";
    let lower = text.trim().get(..8).unwrap_or(text).to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(format!(
            "not an http:// or https:// URL: {SHAPE} ({HIDDEN})"
        ));
    }
    match Url::parse(text.trim()) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
            crate::secret::hold_url(&u);
            Ok(u)
        }
        Ok(_) => Err(format!("the URL has no host: {SHAPE} ({HIDDEN})")),
        // The url crate's reasons ("empty host", "invalid port number") never quote the input.
        Err(e) => Err(format!("not a usable URL ({e}): {SHAPE} ({HIDDEN})")),
    }
}

/// Why node_exporter would not read the textfile `path`, if it would not: its textfile
/// collector reads only files ending in `.prom`.
pub fn textfile_unread(path: &Path) -> Option<String> {
    (path.extension().and_then(|e| e.to_str()) != Some("prom")).then(|| {
        format!(
            "node_exporter reads only files ending in .prom: rename it, such as {}",
            path.with_extension("prom").display()
        )
    })
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

/// The longest value of each duration setting, checked at load: a longer one is a
/// configuration error that names the key, never an overflow of a clock later. The README's
/// configuration table gives the same bounds.
pub const MAX_DURATIONS: &[(&str, Duration)] = &[
    ("collect.interval", Duration::from_secs(86_400)),
    ("collect.timeout", Duration::from_secs(3_600)),
    ("collect.request_timeout", Duration::from_secs(600)),
    ("pushgateway.timeout", Duration::from_secs(600)),
    ("remote_write.timeout", Duration::from_secs(600)),
    ("weather.min_age", Duration::from_secs(86_400)),
    // Cached answers are kept 8 days; a longer minimum age would never be met by them.
    ("schedule.<endpoint>", Duration::from_secs(7 * 86_400)),
];

/// The longest value of a duration setting (`schedule.<endpoint>` for any endpoint).
pub fn max_duration(key: &str) -> Duration {
    let key = if key.starts_with("schedule.") {
        "schedule.<endpoint>"
    } else {
        key
    };
    MAX_DURATIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, max)| *max)
        .expect("every duration setting has a maximum")
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

/// The `[weather]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherOptions {
    pub api_key: Secret,
    pub url: Url,
    pub min_age: Duration,
}

/// The `[prices]` settings: what charged energy and fuel cost, in one currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    /// An ISO 4217 code, such as `EUR`.
    pub currency: String,
    pub electricity_per_kwh: Option<f64>,
    pub fuel_per_liter: Option<f64>,
}

impl OwnFile {
    fn named(path: PathBuf, key: String, inode: Option<(u64, u64)>) -> OwnFile {
        OwnFile {
            path,
            what: key.clone(),
            key,
            named: true,
            inode,
        }
    }
}

/// The files beside `path` that are the setting `key`'s too.
fn sidecars(path: &Path, key: &str, suffixes: &[&str]) -> Vec<OwnFile> {
    suffixes
        .iter()
        .map(|suffix| OwnFile {
            path: crate::fsutil::with_suffix(path, suffix),
            key: key.to_string(),
            what: format!("the {suffix} file of {key}"),
            named: false,
            inode: None,
        })
        .collect()
}

/// ` --config PATH` when the configuration file would not be found without it, so that the
/// commands a message suggests work as printed.
fn config_flag(path: &Path) -> String {
    let found = locate(None).ok();
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    match found {
        Some(f) if same(&f, path) => String::new(),
        _ => format!(" --config {}", crate::text::shell_word(path)),
    }
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
    /// Why the client secret given could not be used (an [[account]]'s, said when it runs).
    pub client_secret_problem: Option<String>,
    pub api_key: Option<Secret>,
    pub api_key_problem: Option<String>,
    pub redirect_uri: Url,
    pub token_file: PathBuf,
    pub state_file: PathBuf,
    pub vins: Vec<String>,
    pub scopes: Vec<String>,
}

/// The files beside a token file that are the token's too: its backup, the next version
/// being written, and its lock.
const TOKEN_SIDECARS: [&str; 3] = [".bak", ".new", ".lock"];
/// Likewise beside a state file: the next version, the lock, the API key's day, Volvo's
/// minute window and a damaged file set aside.
const STATE_SIDECARS: [&str; 5] = [".new", ".lock", ".day", ".window", ".damaged"];

/// A file an account owns, by one spelling of its path, and what it is, for messages.
pub struct OwnFile {
    pub path: PathBuf,
    /// The setting it comes from: `volvo.token_file`, `account "home".state_file`.
    pub key: String,
    pub what: String,
    /// Whether it is the file the setting names (not one beside it).
    pub named: bool,
    /// The token or state file's device and inode where it exists: a hard link, a symlink
    /// or a bind-mounted folder shares them under another name, and two logins in one file
    /// lose one.
    pub inode: Option<(u64, u64)>,
}

impl OwnFile {
    /// Whether the two are one file.
    pub fn same(&self, other: &OwnFile) -> bool {
        self.path == other.path || (self.inode.is_some() && self.inode == other.inode)
    }
}

impl Account {
    /// The account's token and state files and the files beside them, each by one spelling.
    /// A token file that is a symlink takes up its own name and the file it leads to (whose
    /// neighbours its save writes); a state file is taken as named (its save replaces a
    /// symlink in its place).
    pub fn own_files(&self) -> Vec<OwnFile> {
        use std::os::unix::fs::MetadataExt;
        let token = crate::fsutil::identity(&self.token_file);
        let link = crate::fsutil::name_identity(&self.token_file);
        let state = crate::fsutil::name_identity(&self.state_file);
        let inode_of = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
        let inode = inode_of(&self.token_file);
        let key = |k: &str| format!("{}.{k}", self.table);
        let mut files = sidecars(&token, &key("token_file"), &TOKEN_SIDECARS);
        if link != token {
            files.push(OwnFile::named(link, key("token_file"), None));
        }
        files.push(OwnFile::named(token, key("token_file"), inode));
        files.extend(sidecars(&state, &key("state_file"), &STATE_SIDECARS));
        // Where a state file leads now (a link to the token, a hard link of it), it is read:
        // a token read as a state would be set aside as a damaged one.
        files.push(OwnFile::named(
            state,
            key("state_file"),
            inode_of(&self.state_file),
        ));
        files
    }

    /// The account's API key as its day's request count names it: the start of the key's
    /// SHA-256, never the key itself. Accounts of one application share it.
    pub fn key_id(&self) -> String {
        self.api_key
            .as_ref()
            .map(Secret::fingerprint)
            .unwrap_or_default()
    }
}

/// Validated settings. What belongs to one Volvo ID (credentials, token, cars) is an
/// [`Account`], always passed beside the settings, so that no code can work on an account it
/// was not given.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub accounts: Vec<Account>,
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
    /// The `[schedule]` minimum ages by endpoint; `schedule::Schedule` applies them.
    pub schedule: BTreeMap<crate::endpoints::Endpoint, Duration>,
    /// Weather at the car; `None` unless an OpenWeatherMap API key is configured.
    pub weather: Option<WeatherOptions>,
    /// Prices of energy and fuel; `None` without a `[prices]` table.
    pub prices: Option<Prices>,
    /// The clock every run of these settings reads (`VOLVO_COLLECT_NOW`, else the system's).
    pub clock: crate::clock::Clock,
}

impl Settings {
    /// The account's client secret; a missing one is a configuration error that says where to
    /// put it.
    pub fn client_secret<'a>(&self, a: &'a Account) -> Result<&'a Secret, Fatal> {
        if let Some(problem) = &a.client_secret_problem {
            return Err(Fatal::config(problem.clone()));
        }
        a.client_secret.as_ref().ok_or_else(|| {
            Fatal::config(format!(
                "{}: {}.client_secret is not set: set it, or client_secret_file, or the environment variable {}",
                self.config_path.display(),
                a.table,
                a.env_client_secret
            ))
        })
    }

    /// The account's API key, likewise.
    pub fn api_key<'a>(&self, a: &'a Account) -> Result<&'a Secret, Fatal> {
        if let Some(problem) = &a.api_key_problem {
            return Err(Fatal::config(problem.clone()));
        }
        a.api_key.as_ref().ok_or_else(|| {
            Fatal::config(format!(
                "{}: {}.api_key is not set: set it, or api_key_file, or the environment variable {}",
                self.config_path.display(),
                a.table,
                a.env_api_key
            ))
        })
    }

    /// The scopes of an account: `volvo.scopes`, or the defaults of the sources.
    pub fn scopes(&self, a: &Account) -> Vec<String> {
        if a.scopes.is_empty() {
            self.sources.default_scopes()
        } else {
            a.scopes.clone()
        }
    }

    /// Checks the outputs once the command line has been applied over the file: a textfile
    /// path that is empty or names a folder, a FIFO, a socket or a device (which the write
    /// would replace with a file) is a configuration error, not a failed write.
    pub fn check_outputs(&self) -> Result<(), Fatal> {
        // `/metrics/job/...`, or `/metrics` at the end: a push path, not a proxy's prefix.
        let push_path = self.output.pushgateway.as_ref().filter(|u| {
            let segs: Vec<&str> = u.path_segments().into_iter().flatten().collect();
            segs.windows(2).any(|w| w == ["metrics", "job"])
                || segs.iter().rev().find(|s| !s.is_empty()) == Some(&"metrics")
        });
        if push_path.is_some() {
            return Err(Fatal::config(format!(
                "{}: output.pushgateway (or --pushgateway) names a push path (/metrics/...): give the Pushgateway's own URL, such as \"http://localhost:9091\", and set the job and grouping in [pushgateway]",
                self.config_path.display()
            )));
        }
        if let Some(p) = &self.output.textfile {
            let what = not_a_file_path(Some(p), p)
                .map(str::to_string)
                .or_else(|| crate::fsutil::not_regular(p).map(|kind| format!("names {kind}")));
            if let Some(what) = what {
                return Err(Fatal::config(format!(
                    "{}: output.textfile (or --textfile) {what}: set it to a file, such as \"/var/lib/prometheus/node-exporter/volvo.prom\"",
                    self.config_path.display()
                )));
            }
            self.textfile_not_owned(p)?;
        }
        self.credentials_from_one_place()
    }

    /// An output's URL may carry its user name and password (`https://user:pass@host`), which
    /// the HTTP client sends as Basic authentication. With `[pushgateway]` or `[remote_write]`
    /// setting credentials too, both would be sent, as two `Authorization` headers, and a
    /// refusal could not say which to fix.
    fn credentials_from_one_place(&self) -> Result<(), Fatal> {
        let outputs = [
            (
                "pushgateway",
                "--pushgateway",
                &self.output.pushgateway,
                &self.pushgateway.http.auth,
            ),
            (
                "remote_write",
                "--remote-write",
                &self.output.remote_write,
                &self.remote_write.auth,
            ),
        ];
        for (key, flag, url, auth) in outputs {
            let in_url = url.as_ref().is_some_and(has_userinfo);
            if in_url && !matches!(auth, HttpAuth::None) {
                return Err(Fatal::config(format!(
                    "{}: output.{key} (or {flag}) holds a user name or password, and [{key}] sets credentials too: keep one of them, since both would be sent (the values are not shown)",
                    self.config_path.display()
                )));
            }
        }
        Ok(())
    }

    /// The textfile is no file of an account: each run would overwrite the token or the
    /// state with metrics.
    fn textfile_not_owned(&self, textfile: &Path) -> Result<(), Fatal> {
        let textfile = crate::fsutil::identity(textfile);
        let owned = self
            .accounts
            .iter()
            .flat_map(Account::own_files)
            .find(|f| f.path == textfile);
        match owned {
            Some(f) => Err(Fatal::config(format!(
                "{}: output.textfile (or --textfile) is the same file as {} ({}): each run would overwrite it with metrics; choose a file of its own, such as \"/var/lib/prometheus/node-exporter/volvo.prom\"",
                self.config_path.display(),
                f.what,
                textfile.display()
            ))),
            None => Ok(()),
        }
    }

    /// The command that logs `a` in again, as the user types it: with `--config` when the
    /// file would not be found without it, and `--account` when there are several accounts.
    pub fn login_command(&self, a: &Account) -> String {
        let config = config_flag(&self.config_path);
        let account = if self.accounts.len() > 1 {
            format!(" --account {}", a.name)
        } else {
            String::new()
        };
        format!("`volvo-collect login{config}{account}`")
    }

    /// A message about account `a` as its user acts on it: the login command for this
    /// account and this file, and the account's own keys rather than `[volvo]`'s. Messages
    /// from below the configuration speak of `volvo.<key>` and `volvo-collect login`.
    pub fn for_account(&self, a: &Account, message: &str) -> String {
        let mut message = message.replace("`volvo-collect login`", &self.login_command(a));
        if a.table != "volvo" {
            for key in [
                "client_id",
                "client_secret",
                "api_key",
                "token_file",
                "state_file",
            ] {
                message = message.replace(&format!("volvo.{key}"), &format!("{}.{key}", a.table));
            }
        }
        message
    }

    /// The account named `name`, or the only one when `None`.
    pub fn select_account(&self, name: Option<&str>) -> Result<&Account, Fatal> {
        let names = || {
            self.accounts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self.accounts.iter().find(|a| a.name == n).ok_or_else(|| {
                Fatal::config(format!(
                    "{}: no account named {}; the accounts are: {}",
                    self.config_path.display(),
                    shown_value(n),
                    names()
                ))
            }),
            None if self.accounts.len() == 1 => Ok(&self.accounts[0]),
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

    /// The accounts that share `a`'s API key, `a` included: they share its daily quota.
    pub fn accounts_on_key<'s>(&'s self, a: &'s Account) -> impl Iterator<Item = &'s Account> {
        self.accounts.iter().filter(move |b| b.api_key == a.api_key)
    }
}

/// Reads and validates the configuration file.
pub fn load(path: &Path) -> Result<Settings, Fatal> {
    // A FIFO or a device named by mistake can neither hang the run nor fill its memory.
    let cannot = |why: &dyn std::fmt::Display| {
        Fatal::config(format!(
            "cannot read configuration file {}: {why}",
            path.display()
        ))
    };
    let bytes = crate::fsutil::read_capped(path, CONFIG_MAX).map_err(|e| cannot(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| cannot(&"it is not UTF-8 text"))?;
    let settings = parse(path, &text, &|name| std::env::var(name).ok())?;
    // A token folder that does not exist yet is no configuration error here: `login` creates
    // it, and so does systemd for the package's service; a run where the lock file cannot be
    // created says so itself (exit 78).

    // Secrets written in the file itself (not in _file keys, the environment or credentials).
    let holds_secrets = text.lines().any(|l| {
        let l = l.trim_start();
        SECRET_KEYS.iter().any(|k| {
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
    validate::settings(path, raw, env)
}

/// Whether `url` carries a user name or password (`user:pass@`).
pub fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}
