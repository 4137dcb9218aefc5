//! Turns the file as written (`raw`) into validated [`Settings`], one small function per table.
//! Tables are checked in the order of the file's documentation, so that of several mistakes
//! the same one is always reported first. Every error is one line naming the file, the key and
//! what is allowed; relative paths are taken from the configuration file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::raw::{
    RawCollect, RawConfig, RawLocation, RawOutput, RawPrices, RawPushgateway, RawRemoteWrite,
    RawSources, RawVolvo, RawWeather, RawWeb, ScheduleAge,
};
use super::secrets::{self, header_safe, Places};
use super::{
    Account, HttpAuth, HttpOutput, LocationPrivacy, Outputs, OwnFile, Prices, PushgatewayOptions,
    Settings, Sources, WeatherOptions, WebOptions, DEFAULT_REDIRECT_URI, DEFAULT_WEATHER_URL,
    VOLVO_API_URL, VOLVO_AUTH_URL, VOLVO_TOKEN_URL,
};
use crate::endpoints::Endpoint;
use crate::error::Fatal;
use crate::secret::{shown_value, Secret};

/// Scopes that would let this tool act on the car; refused in `volvo.scopes`.
pub(super) const COMMAND_SCOPES: &[&str] = &[
    "conve:lock",
    "conve:unlock",
    "conve:engine_start_stop",
    "conve:honk_flash",
    "conve:climatization_start_stop",
];

/// What every table's check needs: the file (for messages and relative paths) and the
/// environment (for secrets; injected so that tests need not touch the process's).
struct Context<'a> {
    path: &'a Path,
    /// The configuration file's folder.
    base: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Context<'_> {
    fn bad(&self, key: &str, what: &str) -> Fatal {
        Fatal::config(format!("{}: {key}: {what}", self.path.display()))
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// A duration setting within its bounds: more than zero and at most its maximum.
    fn duration(&self, key: &str, d: Duration) -> Result<Duration, Fatal> {
        if d.is_zero() {
            return Err(self.bad(key, "must be more than 0s"));
        }
        let max = super::max_duration(key);
        if d > max {
            return Err(self.bad(
                key,
                &format!(
                    "too long: use at most \"{}\"",
                    humantime::format_duration(max)
                ),
            ));
        }
        Ok(d)
    }

    /// An http(s) URL without credentials, or `default` when unset. Volvo's and the weather's
    /// APIs take none in the URL: a user name there would replace the access token with Basic
    /// authentication, and libraries' debug logs name a connection by it.
    fn url(&self, key: &str, u: Option<String>, default: &str) -> Result<Url, Fatal> {
        let Some(text) = u else {
            return Ok(Url::parse(default).expect("default URL is valid"));
        };
        let url = super::http_url(&text).map_err(|why| self.bad(key, &why))?;
        if super::has_userinfo(&url) {
            return Err(self.bad(
                key,
                "holds a user name or password, which this API does not take: remove the `user:password@` (the value is not shown)",
            ));
        }
        Ok(url)
    }

    /// An optional http(s) URL.
    fn optional_url(&self, key: &str, u: Option<String>) -> Result<Option<Url>, Fatal> {
        u.map(|text| super::http_url(&text).map_err(|why| self.bad(key, &why)))
            .transpose()
    }

    /// The secret `key` (with its table, such as `volvo.api_key`) from wherever it is written.
    fn secret(&self, key: &str, places: Places) -> Result<Option<Secret>, Fatal> {
        secrets::read(places, self.env).map_err(|e| self.bad(&format!("{key}_file"), &e))
    }
}

/// Validates the whole file.
pub(super) fn settings(
    path: &Path,
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Fatal> {
    let cx = Context {
        path,
        base: path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        env,
    };
    let sources = sources(&cx, raw.sources)?;
    let mut volvo = raw.volvo.unwrap_or_default();
    let api_url = cx.url("volvo.api_url", volvo.api_url.take(), VOLVO_API_URL)?;
    let auth_url = cx.url("volvo.auth_url", volvo.auth_url.take(), VOLVO_AUTH_URL)?;
    let token_url = cx.url("volvo.token_url", volvo.token_url.take(), VOLVO_TOKEN_URL)?;
    let accounts = accounts(&cx, volvo, raw.account)?;
    let collect = collect(&cx, raw.collect)?;
    let location = location(&cx, raw.location)?;
    let pushgateway = pushgateway(&cx, raw.pushgateway)?;
    let remote_write = remote_write(&cx, raw.remote_write)?;
    let web = web(&cx, raw.web)?;
    let schedule = schedule(&cx, raw.schedule)?;
    let weather = weather(&cx, raw.weather)?;
    let prices = prices(&cx, raw.prices)?;
    let settings = Settings {
        config_path: path.to_path_buf(),
        accounts,
        api_url,
        auth_url,
        token_url,
        sources,
        output: output(&cx, raw.output)?,
        interval: collect.interval,
        timeout: collect.timeout,
        request_timeout: collect.request_timeout,
        concurrency: collect.concurrency,
        requests_per_minute: collect.requests_per_minute,
        location,
        pushgateway,
        remote_write,
        web,
        schedule,
        weather,
        prices,
        clock: crate::clock::Clock::from_env(env),
    };
    settings.check_outputs()?;
    Ok(settings)
}

/// `[sources]`: at least one API is read.
fn sources(cx: &Context, s: RawSources) -> Result<Sources, Fatal> {
    let sources = Sources {
        connected_vehicle: s.connected_vehicle,
        extended_vehicle: s.extended_vehicle != Some(false),
        extended_vehicle_explicit: s.extended_vehicle == Some(true),
        energy: s.energy,
        location: s.location,
    };
    if !(sources.connected_vehicle
        || sources.extended_vehicle
        || sources.energy
        || sources.location)
    {
        return Err(cx.bad(
            "sources",
            "every source is off: turn on at least one of connected_vehicle, extended_vehicle, energy, location",
        ));
    }
    Ok(sources)
}

/// `[volvo]` alone is one account named `default`; with `[[account]]` tables, `[volvo]` keeps
/// only the URLs the accounts share.
fn accounts(cx: &Context, volvo: RawVolvo, tables: Vec<RawVolvo>) -> Result<Vec<Account>, Fatal> {
    if tables.is_empty() {
        if volvo.name.is_some() {
            return Err(cx.bad(
                "volvo.name",
                "names are for [[account]] tables; a single [volvo] account is named \"default\"",
            ));
        }
        let accounts = vec![account(
            cx,
            "volvo",
            volvo,
            "default".into(),
            "",
            "token.json",
        )?];
        distinct_files(cx, &accounts)?;
        return Ok(accounts);
    }
    if volvo.client_id.is_some()
        || volvo.client_secret.is_some()
        || volvo.api_key.is_some()
        || volvo.token_file.is_some()
        || volvo.vins.is_some()
    {
        return Err(cx.bad("volvo", "with [[account]] tables, each account has its own client_id, secrets, token_file and vins: move them from [volvo] into an [[account]]"));
    }
    let mut accounts: Vec<Account> = Vec::new();
    for (i, v) in tables.into_iter().enumerate() {
        let name = match v.name.clone() {
            Some(n) if account_name_ok(&n) => n,
            _ => return Err(cx.bad(&format!("account[{i}].name"), "missing or unusable: give each [[account]] a name of letters, digits, _ or - (it becomes the account label)")),
        };
        let table = format!("account {name:?}");
        if accounts.iter().any(|a| a.name == name) {
            return Err(cx.bad(&table, "two accounts have this name: names must differ"));
        }
        // Each account's secrets have their own environment variables and credentials.
        let suffix = format!("_{}", name.to_ascii_uppercase().replace('-', "_"));
        let token = format!("token-{name}.json");
        accounts.push(account(cx, &table, v, name, &suffix, &token)?);
    }
    distinct_files(cx, &accounts)?;
    Ok(accounts)
}

/// Each file an account names (its token file, its state file) is its own: no other setting
/// names it, nor a file beside another's, however the path is spelled. Two that met would
/// destroy each other: a state saved over a token file loses the login.
fn distinct_files(cx: &Context, accounts: &[Account]) -> Result<(), Fatal> {
    let owned: Vec<Vec<OwnFile>> = accounts.iter().map(Account::own_files).collect();
    // The later account's setting is the one to change (the first one's files were there
    // first); within an account, the state file is.
    for (j, files) in owned.iter().enumerate().rev() {
        for x in files {
            let clash = owned[..=j].iter().enumerate().find_map(|(i, others)| {
                others.iter().find(|y| {
                    y.same(x)
                        && (x.named || y.named)
                        && (i < j || (x.key != y.key && x.key.ends_with("state_file")))
                })
            });
            if let Some(y) = clash {
                let what = if x.named { "" } else { x.what.as_str() };
                return Err(cx.bad(
                    &x.key,
                    &format!(
                        "{what}{}is the same file as {} ({}): each account's token file and state file must be files of their own, or one overwrites the other (and a token file overwritten loses the login)",
                        if what.is_empty() { "" } else { " " },
                        y.what,
                        x.path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// An account name becomes the `account` label and part of environment variable names.
fn account_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `vins`: each one a VIN.
fn vins(cx: &Context, key: &str, vins: Option<Vec<String>>) -> Result<Vec<String>, Fatal> {
    let vins = vins.unwrap_or_default();
    if let Some(vin) = vins.iter().find(|v| !valid_vin(v)) {
        return Err(cx.bad(
            key,
            &format!(
                "{} is not a VIN: expected 17 letters and digits (no I, O or Q)",
                shown_value(vin)
            ),
        ));
    }
    Ok(vins)
}

/// `scopes`: never a command scope. Unset, the scopes come from the endpoints the sources
/// collect (`Settings::scopes`).
fn scopes(cx: &Context, key: &str, scopes: Option<Vec<String>>) -> Result<Vec<String>, Fatal> {
    let scopes = scopes.unwrap_or_default();
    if let Some(cmd) = scopes.iter().find(|s| COMMAND_SCOPES.contains(&s.as_str())) {
        return Err(cx.bad(
            key,
            &format!("{cmd:?} is a command scope; this tool only reads: remove it"),
        ));
    }
    Ok(scopes)
}

/// A secret sent in a header (the client secret `name` of `key`, the API key), from its
/// `places` (`env` among them): a stray space or newline would only show later, as a
/// refusal, so it is refused here.
fn header_secret(
    cx: &Context,
    key: &str,
    name: &str,
    env: &str,
    places: Places,
) -> Result<Option<Secret>, Fatal> {
    let found = cx.secret(key, places)?;
    if let Some(k) = &found {
        header_safe(k).map_err(|what| {
            cx.bad(
                key,
                &format!("{what}: it is one line of visible characters; check the value (in the file, {name}_file or {env})"),
            )
        })?;
    }
    Ok(found)
}

/// One account's keys, from `[volvo]` or one `[[account]]` table.
fn account(
    cx: &Context,
    table: &str,
    v: RawVolvo,
    name: String,
    env_suffix: &str,
    default_token: &str,
) -> Result<Account, Fatal> {
    let key = |k: &str| format!("{table}.{k}");
    if v.api_url.is_some() || v.auth_url.is_some() || v.token_url.is_some() {
        return Err(cx.bad(
            &key("api_url"),
            "Volvo's URLs are shared: set api_url, auth_url and token_url in [volvo]",
        ));
    }
    let client_id =
        match v.client_id {
            Some(id) if !id.trim().is_empty() => id,
            _ => return Err(cx.bad(
                &key("client_id"),
                "missing: set it to the client ID of your application in Volvo's developer portal",
            )),
        };
    let env_client_secret = format!("VOLVO_CLIENT_SECRET{env_suffix}");
    let env_api_key = format!("VOLVO_API_KEY{env_suffix}");
    let header_secret = |name: &str, value, file: Option<PathBuf>, env: &str| {
        let places = Places {
            value,
            file: file.as_deref().map(|p| cx.resolve(p)),
            env_var: Some(env),
            credential: Some(&format!("{name}{}", env_suffix.to_ascii_lowercase())),
        };
        header_secret(cx, &key(name), name, env, places)
    };
    // In an [[account]] table, a secret that cannot be read or sent stops that account alone
    // when it runs; the household's other accounts are collected all the same.
    let own = |got: Result<Option<Secret>, Fatal>| match got {
        Err(e) if !env_suffix.is_empty() => Ok((None, Some(e.message))),
        got => got.map(|s| (s, None)),
    };
    let (client_secret, client_secret_problem) = own(header_secret(
        "client_secret",
        v.client_secret,
        v.client_secret_file,
        &env_client_secret,
    ))?;
    let (api_key, api_key_problem) = own(header_secret(
        "api_key",
        v.api_key,
        v.api_key_file,
        &env_api_key,
    ))?;
    let vins = vins(cx, &key("vins"), v.vins)?;
    let scopes = scopes(cx, &key("scopes"), v.scopes)?;
    let token_file = cx.resolve(v.token_file.as_deref().unwrap_or(Path::new(default_token)));
    if let Some(what) = not_a_file_path(v.token_file.as_deref(), &token_file) {
        return Err(cx.bad(
            &key("token_file"),
            &format!("{what}: set it to a file, such as \"token.json\" (relative paths are in the configuration file's folder)"),
        ));
    }
    let state_file = match v.state_file.as_deref() {
        Some(p) => cx.resolve(p),
        None => default_state_file(&token_file),
    };
    Ok(Account {
        name,
        table: table.to_string(),
        env_client_secret,
        env_api_key,
        client_id,
        client_secret,
        client_secret_problem,
        api_key,
        api_key_problem,
        redirect_uri: cx.url(&key("redirect_uri"), v.redirect_uri, DEFAULT_REDIRECT_URI)?,
        token_file,
        state_file,
        vins,
        scopes,
    })
}

/// `[output]`: any combination, none included (the command line may add one).
fn output(cx: &Context, o: RawOutput) -> Result<Outputs, Fatal> {
    Ok(Outputs {
        stdout: o.stdout,
        textfile: o.textfile.as_deref().map(|p| cx.resolve(p)),
        pushgateway: cx.optional_url("output.pushgateway", o.pushgateway)?,
        remote_write: cx.optional_url("output.remote_write", o.remote_write)?,
    })
}

/// `[collect]`: the same table, its values checked.
fn collect(cx: &Context, c: RawCollect) -> Result<RawCollect, Fatal> {
    if c.interval < super::MIN_INTERVAL {
        return Err(cx.bad("collect.interval", "too short: use at least \"10s\""));
    }
    cx.duration("collect.interval", c.interval)?;
    cx.duration("collect.timeout", c.timeout)?;
    cx.duration("collect.request_timeout", c.request_timeout)?;
    if c.requests_per_minute > 100 {
        return Err(cx.bad(
            "collect.requests_per_minute",
            &format!("{} is above Volvo's 100 requests a minute per account, so runs would be refused (HTTP 429): use 1 to 100 (90 leaves room for a hand run), or 0 to turn the window off", c.requests_per_minute),
        ));
    }
    if c.concurrency == 0 || c.concurrency > 1024 {
        return Err(cx.bad(
            "collect.concurrency",
            &format!("{} is out of range: use 1 to 1024", c.concurrency),
        ));
    }
    Ok(c)
}

/// `[location]`: the car's position and how much of it is kept.
fn location(cx: &Context, l: RawLocation) -> Result<LocationPrivacy, Fatal> {
    if let Some(p) = l.precision.filter(|&p| p > 10) {
        return Err(cx.bad(
            "location.precision",
            &format!("{p} is out of range: use 0 to 10 decimal places"),
        ));
    }
    let home = match (l.home_latitude, l.home_longitude) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(cx.bad("location.home_latitude", "must be between -90 and 90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(cx.bad("location.home_longitude", "must be between -180 and 180"));
            }
            Some((lat, lon))
        }
        _ => {
            return Err(cx.bad(
                "location",
                "home_latitude and home_longitude go together: set both or neither",
            ))
        }
    };
    Ok(LocationPrivacy {
        precision: l.precision,
        export_coordinates: l.export_coordinates,
        home,
    })
}

/// `[pushgateway]`: the grouping key and how to reach it.
fn pushgateway(cx: &Context, p: RawPushgateway) -> Result<PushgatewayOptions, Fatal> {
    let password = cx.secret(
        "pushgateway.password",
        Places {
            value: p.password,
            file: p.password_file.as_deref().map(|f| cx.resolve(f)),
            env_var: None,
            credential: None,
        },
    )?;
    let auth = match (p.username, password) {
        (Some(username), Some(password)) => HttpAuth::Basic { username, password },
        (None, None) => HttpAuth::None,
        _ => {
            return Err(cx.bad(
                "pushgateway",
                "username and password go together: set both or neither",
            ))
        }
    };
    let job = p.job.unwrap_or_else(|| "volvo_collect".into());
    if job.is_empty() {
        return Err(cx.bad("pushgateway.job", "must not be empty"));
    }
    if let Some(name) = p.grouping.keys().find(|n| !grouping_label_ok(n)) {
        return Err(cx.bad(
            "pushgateway.grouping",
            &format!(
                "{} is not a usable label name: use letters, digits and _ (not job, not __...)",
                shown_value(name)
            ),
        ));
    }
    Ok(PushgatewayOptions {
        job,
        grouping: p.grouping.into_iter().collect(),
        http: HttpOutput {
            auth,
            ca_file: p.ca_file.as_deref().map(|f| cx.resolve(f)),
            timeout: cx.duration(
                "pushgateway.timeout",
                p.timeout.unwrap_or(Duration::from_secs(15)),
            )?,
        },
    })
}

/// A Prometheus label name that is not `job` (the Pushgateway's own) nor reserved (`__`).
fn grouping_label_ok(name: &str) -> bool {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    valid && !name.is_empty() && name != "job" && !name.starts_with("__")
}

/// `[remote_write]`: basic auth or a bearer token, not both.
fn remote_write(cx: &Context, r: RawRemoteWrite) -> Result<HttpOutput, Fatal> {
    let password = cx.secret(
        "remote_write.password",
        Places {
            value: r.password,
            file: r.password_file.as_deref().map(|f| cx.resolve(f)),
            env_var: None,
            credential: None,
        },
    )?;
    let bearer = cx.secret(
        "remote_write.bearer_token",
        Places {
            value: r.bearer_token,
            file: r.bearer_token_file.as_deref().map(|f| cx.resolve(f)),
            env_var: None,
            credential: None,
        },
    )?;
    if let Some(t) = &bearer {
        header_safe(t).map_err(|what| {
            cx.bad(
                "remote_write.bearer_token",
                &format!(
                    "{what}: a bearer token is one line of visible characters; check the value"
                ),
            )
        })?;
    }
    let auth = match (r.username, password, bearer) {
        (Some(username), Some(password), None) => HttpAuth::Basic { username, password },
        (None, None, Some(token)) => HttpAuth::Bearer(token),
        (None, None, None) => HttpAuth::None,
        _ => {
            return Err(cx.bad(
                "remote_write",
                "use either username and password, or bearer_token",
            ))
        }
    };
    Ok(HttpOutput {
        auth,
        ca_file: r.ca_file.as_deref().map(|f| cx.resolve(f)),
        timeout: cx.duration(
            "remote_write.timeout",
            r.timeout.unwrap_or(Duration::from_secs(15)),
        )?,
    })
}

/// The highest bcrypt cost taken. A password's first check in a scrape costs 2^cost rounds
/// (cost 10, htpasswd's usual, about 50 ms here; each step doubles it), and the listener
/// hashes once at that cost before it starts: at cost 31 that took days, deaf to signals.
const BCRYPT_MAX_COST: u32 = 14;

/// Why `hash` is no bcrypt hash the listener can check a password against: `$2a$`, `$2b$`,
/// `$2x$` or `$2y$`, a two-digit cost of 4 to [`BCRYPT_MAX_COST`], `$`, then 53 characters of
/// salt and hash. A hash cut short would refuse every password without a word.
fn bcrypt_problem(hash: &str) -> Option<String> {
    let b = hash.as_bytes();
    let shaped = b.len() == 60
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4..6].iter().all(u8::is_ascii_digit)
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'));
    if !shaped {
        return Some(
            "must be a whole bcrypt hash ($2b$, a cost, $, then 53 characters; this one is not, or is cut short)".into(),
        );
    }
    let cost: u32 = hash[4..6].parse().expect("two digits");
    (!(4..=BCRYPT_MAX_COST).contains(&cost)).then(|| {
        format!("has a bcrypt cost of {cost}: use a cost of 4 to {BCRYPT_MAX_COST}, since each scrape's first check of a password pays it")
    })
}

/// `[web]`: the long-running mode's listener.
fn web(cx: &Context, w: RawWeb) -> Result<WebOptions, Fatal> {
    let listen = match w.listen.as_deref() {
        None => None,
        Some(l) => Some(parse_listen(l).map_err(|e| cx.bad("web.listen", &e))?),
    };
    let tls = match (w.tls_cert_file, w.tls_key_file) {
        (Some(c), Some(k)) => Some((cx.resolve(&c), cx.resolve(&k))),
        (None, None) => None,
        _ => {
            return Err(cx.bad(
                "web",
                "tls_cert_file and tls_key_file go together: set both or neither",
            ))
        }
    };
    // Hashes, not passwords: the file may be readable by the service's group.
    if let Some((user, why)) = w
        .basic_auth_users
        .iter()
        .find_map(|(user, hash)| bcrypt_problem(hash.expose()).map(|why| (user, why)))
    {
        return Err(cx.bad(
            "web.basic_auth_users",
            &format!(
                "the password of {} {why} (htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)",
                shown_value(user)
            ),
        ));
    }
    Ok(WebOptions {
        listen,
        tls,
        basic_auth_users: w.basic_auth_users.into_iter().collect(),
    })
}

/// `[schedule]`: minimum ages by endpoint key. The keys are checked here, at load, so that a
/// misspelt one stops the run before anything is asked.
fn schedule(
    cx: &Context,
    s: BTreeMap<String, ScheduleAge>,
) -> Result<BTreeMap<Endpoint, Duration>, Fatal> {
    let mut ages = BTreeMap::new();
    for (key, age) in s {
        let Ok(e) = key.parse::<Endpoint>() else {
            let known: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
            return Err(cx.bad(
                "schedule",
                &format!(
                    "unknown endpoint {key:?}: expected one of {}",
                    known.join(", ")
                ),
            ));
        };
        let age = if age.0.is_zero() {
            age.0
        } else {
            cx.duration(&format!("schedule.{key}"), age.0)?
        };
        ages.insert(e, age);
    }
    Ok(ages)
}

/// `[weather]`: on when an OpenWeatherMap API key is found.
fn weather(cx: &Context, w: Option<RawWeather>) -> Result<Option<WeatherOptions>, Fatal> {
    let written = w.is_some();
    let w = w.unwrap_or_default();
    let api_key = cx.secret(
        "weather.api_key",
        Places {
            value: w.api_key,
            file: w.api_key_file.as_deref().map(|f| cx.resolve(f)),
            env_var: Some("OPENWEATHERMAP_API_KEY"),
            credential: Some("openweathermap_api_key"),
        },
    )?;
    // Checked whether or not the weather is on, so that a mistake shows when it is turned on.
    let url = cx.url("weather.url", w.url, DEFAULT_WEATHER_URL)?;
    let min_age = match w.min_age {
        Some(d) if d.is_zero() => d,
        Some(d) => cx.duration("weather.min_age", d)?,
        None => Duration::from_secs(600),
    };
    let Some(api_key) = api_key else {
        if written {
            tracing::warn!("[weather] has no api_key (nor api_key_file or OPENWEATHERMAP_API_KEY, or it is empty): the weather is off");
        }
        return Ok(None);
    };
    Ok(Some(WeatherOptions {
        api_key,
        url,
        min_age,
    }))
}

/// `[prices]`: prices of at least one kind, not negative, in an ISO 4217 currency.
fn prices(cx: &Context, p: RawPrices) -> Result<Option<Prices>, Fatal> {
    for (key, price) in [
        ("prices.electricity_per_kwh", p.electricity_per_kwh),
        ("prices.fuel_per_liter", p.fuel_per_liter),
    ] {
        if price.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            return Err(cx.bad(key, "must be a price of 0 or more, such as 0.30"));
        }
    }
    let any_price = p.electricity_per_kwh.is_some() || p.fuel_per_liter.is_some();
    let currency =
        match (p.currency, any_price) {
            (None, false) => return Ok(None),
            (Some(_), false) => return Err(cx.bad(
                "prices",
                "no price is set: set electricity_per_kwh or fuel_per_liter (or remove [prices])",
            )),
            (None, true) => {
                return Err(cx.bad(
                    "prices.currency",
                    "missing: set the ISO 4217 code of the prices' currency, such as \"EUR\"",
                ))
            }
            (Some(c), true) => c,
        };
    if !ISO_4217.contains(&currency.as_str()) {
        return Err(cx.bad(
            "prices.currency",
            &format!(
                "{} is not an ISO 4217 currency code: use three capital letters such as \"EUR\", \"SEK\" or \"USD\"",
                shown_value(&currency)
            ),
        ));
    }
    Ok(Some(Prices {
        currency,
        electricity_per_kwh: p.electricity_per_kwh,
        fuel_per_liter: p.fuel_per_liter,
    }))
}

/// The ISO 4217 codes of currencies in use (funds, precious metals and test codes left out).
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP",
    "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF",
    "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK",
    "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK",
    "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU",
    "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR",
    "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR",
    "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC",
    "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX",
    "USD", "UYU", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF",
    "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Why a configured path cannot be a file to write, if it cannot: empty, or a folder.
pub(super) fn not_a_file_path(written: Option<&Path>, resolved: &Path) -> Option<&'static str> {
    match written {
        Some(p) if p.as_os_str().is_empty() => Some("is empty"),
        Some(p) if p.as_os_str().to_string_lossy().ends_with('/') => Some("names a folder"),
        _ if resolved.is_dir() => Some("names a folder"),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{has_userinfo, parse};

    fn parse_ok(text: &str) -> Settings {
        parse(Path::new("/etc/vc/collector.toml"), text, &|_| None).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new("/etc/vc/collector.toml"), text, &|_| None)
            .unwrap_err()
            .message
    }

    const MINIMAL: &str = "[volvo]\nclient_id = \"abc\"\n";

    /// A `[web]` password is a whole bcrypt hash of a cost the listener can pay: one cut short
    /// refused every password without a word, and one of cost 25 to 31 hung the start for
    /// days. The hash is never shown.
    #[test]
    fn web_passwords_are_whole_bcrypt_hashes_of_a_usable_cost() {
        let good = bcrypt::hash("s3cret", 4).unwrap();
        assert_eq!(bcrypt_problem(&good), None);
        let costly = format!("$2b$25${}", &good[7..]);
        for (hash, said) in [
            (&good[..50], "must be a whole bcrypt hash"),
            (
                "$2b$04$notreallyabcrypthashatall",
                "must be a whole bcrypt hash",
            ),
            ("s3cret", "must be a whole bcrypt hash"),
            (
                costly.as_str(),
                "has a bcrypt cost of 25: use a cost of 4 to 14",
            ),
        ] {
            let e = parse_err(&format!(
                "{MINIMAL}[web]\nbasic_auth_users = {{ prom = {hash:?} }}\n"
            ));
            assert!(e.contains("web.basic_auth_users: the password of"), "{e}");
            assert!(e.contains(said), "{hash}: {e}");
            assert!(!e.contains(hash), "{e}");
        }
    }

    /// An output's credentials come from its URL or from its table, never both: both would be
    /// sent. Neither value is shown.
    #[test]
    fn an_output_takes_credentials_from_its_url_or_its_table() {
        let output = "[output]\nremote_write = \"https://u:url-pw@h/api/v1/write\"\npushgateway = \"https://u:url-pw@h:9091\"\n";
        let ok = parse_ok(&format!("{MINIMAL}{output}"));
        assert!(has_userinfo(ok.output.remote_write.as_ref().unwrap()));
        for (table, key) in [
            (
                "[remote_write]\nbearer_token = \"tok-pw\"\n",
                "remote_write",
            ),
            (
                "[remote_write]\nusername = \"u\"\npassword = \"tab-pw\"\n",
                "remote_write",
            ),
            (
                "[pushgateway]\nusername = \"u\"\npassword = \"tab-pw\"\n",
                "pushgateway",
            ),
        ] {
            let e = parse_err(&format!("{MINIMAL}{output}{table}"));
            let said = format!("output.{key} (or --{}) holds a user name or password, and [{key}] sets credentials too: keep one of them", key.replace('_', "-"));
            assert!(e.contains(&said), "{e}");
            assert!(!e.contains("-pw"), "{e}");
        }
    }

    /// A state file's save replaces a symlink in its place, and its files beside it sit next
    /// to that name: they are compared as named. A token file is saved through its links.
    #[test]
    fn a_symlinked_state_file_is_compared_where_its_save_writes() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path().join("x.json"), dir.path().join("s.json")).unwrap();
        let config = dir.path().join("collector.toml");
        let load = |files: &str| parse(&config, &format!("{MINIMAL}{files}"), &|_| None);
        let e = load("state_file = \"s.json\"\ntoken_file = \"s.json.day\"\n").unwrap_err();
        assert!(e.message.contains("volvo.state_file: the .day file of volvo.state_file is the same file as volvo.token_file"), "{}", e.message);
        assert!(load("state_file = \"s.json\"\ntoken_file = \"x.json.lock\"\n").is_ok());
        // A token file is written where its link leads: a state file there is refused.
        let e = load("token_file = \"s.json\"\nstate_file = \"x.json\"\n").unwrap_err();
        assert!(
            e.message
                .contains("volvo.state_file: is the same file as volvo.token_file"),
            "{}",
            e.message
        );
        // A state file that leads to the token, by a symlink or a hard link, would be read as
        // a damaged state and set aside: refused too.
        std::fs::write(dir.path().join("t.json"), "{}").unwrap();
        std::fs::hard_link(dir.path().join("t.json"), dir.path().join("h.json")).unwrap();
        std::os::unix::fs::symlink("t.json", dir.path().join("l.json")).unwrap();
        for state in ["h.json", "l.json"] {
            let e = load(&format!(
                "token_file = \"t.json\"\nstate_file = \"{state}\"\n"
            ))
            .unwrap_err();
            assert!(
                e.message
                    .contains("volvo.state_file: is the same file as volvo.token_file"),
                "{state}: {}",
                e.message
            );
        }
    }

    /// A token file that is a symlink takes up its own name too (a state saved there would
    /// replace the link), and a token file hard-linked to another account's is that file.
    #[test]
    fn a_linked_token_file_takes_up_its_name_and_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (secrets, config) = (
            dir.path().join("secrets"),
            dir.path().join("collector.toml"),
        );
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("a.json"), "{}").unwrap();
        std::os::unix::fs::symlink("secrets/a.json", dir.path().join("a.json")).unwrap();
        let load = |text: &str| parse(&config, text, &|_| None);
        let e = load(&format!(
            "{MINIMAL}token_file = \"a.json\"\nstate_file = \"a.json\"\n"
        ))
        .unwrap_err();
        assert!(
            e.message
                .contains("volvo.state_file: is the same file as volvo.token_file"),
            "{}",
            e.message
        );
        std::fs::hard_link(secrets.join("a.json"), dir.path().join("b.json")).unwrap();
        let two = "[[account]]\nname = \"a\"\nclient_id = \"x\"\ntoken_file = \"a.json\"\n\
                   [[account]]\nname = \"b\"\nclient_id = \"x\"\ntoken_file = \"b.json\"\n";
        let e = load(two).unwrap_err();
        assert!(
            e.message
                .contains("account \"b\".token_file: is the same file as account \"a\".token_file"),
            "{}",
            e.message
        );
    }

    /// A state file that is the token file, or a file beside it, however spelled, is refused:
    /// each save of the state would overwrite the login.
    #[test]
    fn a_state_file_may_not_be_the_token_file_or_beside_it() {
        let same = "volvo.state_file: is the same file as volvo.token_file (/etc/vc/token.json)";
        for (state, expected) in [
            ("token.json", same),
            ("./sub/../token.json", same),
            (
                "token.json.bak",
                "volvo.state_file: is the same file as the .bak file of volvo.token_file",
            ),
            (
                "token.json.lock",
                "volvo.state_file: is the same file as the .lock file of volvo.token_file",
            ),
        ] {
            let e = parse_err(&format!("{MINIMAL}state_file = \"{state}\"\n"));
            assert!(e.contains(expected), "{state}: {e}");
        }
        // A token file that is the state's day file is refused too.
        let e = parse_err(&format!(
            "{MINIMAL}token_file = \"s.json.day\"\nstate_file = \"s.json\"\n"
        ));
        assert!(
            e.contains("volvo.state_file: the .day file of volvo.state_file is the same file as volvo.token_file"),
            "{e}"
        );
        // Files of their own are fine.
        let s = parse_ok(&format!("{MINIMAL}state_file = \"state/volvo.json\"\n"));
        assert_eq!(
            s.accounts[0].state_file,
            Path::new("/etc/vc/state/volvo.json")
        );
    }

    /// Every duration setting is bounded at load, naming its key: a year-long timeout once
    /// overflowed the run's clock ("overflow when adding duration to instant").
    #[test]
    fn every_duration_setting_is_bounded_at_load() {
        for (key, max) in crate::config::MAX_DURATIONS {
            let key = key.replace("<endpoint>", "location");
            let (table, name) = key.split_once('.').unwrap();
            let extra = if table == "weather" {
                "api_key = \"k\"\n"
            } else {
                ""
            };
            let toml = |d: &str| format!("{MINIMAL}[{table}]\n{extra}{name} = \"{d}\"\n");
            let max_text = humantime::format_duration(*max).to_string();
            parse_ok(&toml(&max_text));
            for too_long in [
                humantime::format_duration(*max + Duration::from_secs(1)).to_string(),
                "500000000000y".to_string(),
            ] {
                let e = parse_err(&toml(&too_long));
                assert_eq!(
                    e,
                    format!("/etc/vc/collector.toml: {key}: too long: use at most \"{max_text}\""),
                    "{too_long}"
                );
            }
        }
    }

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let s = parse_ok(MINIMAL);
        assert_eq!(
            s.accounts[0].token_file,
            PathBuf::from("/etc/vc/token.json")
        );
        assert_eq!(
            s.accounts[0].state_file,
            PathBuf::from("/etc/vc/token.state.json")
        );
        assert_eq!(s.interval, Duration::from_secs(300));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(s.sources.energy && s.sources.location);
        assert!(s.output.is_empty());
        // Unset scopes are asked for by the endpoints the sources collect.
        let scopes = s.scopes(&s.accounts[0]);
        assert!(!scopes.iter().any(|s| COMMAND_SCOPES.contains(&s.as_str())));
        assert!(scopes.contains(&"location:read".to_string()));
    }

    /// Guards the 2026 account: Extended Vehicle was retired, so unless the file says
    /// otherwise its scopes are not asked for at login and it is read only where they were
    /// granted; `true` asks for them and reads it; `false` never reads it.
    #[test]
    fn extended_vehicle_is_read_when_granted_or_turned_on() {
        let exve = |s: &Settings| {
            s.scopes(&s.accounts[0])
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
        assert!(on
            .scopes(&on.accounts[0])
            .contains(&"exve:odometer_status".to_string()));
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
            e.contains("volvo.api_url: not an http:// or https:// URL"),
            "{e}"
        );
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
        let text = include_str!("../../collector.toml.example");
        let s = parse(
            Path::new("/etc/volvo-collect/collector.toml"),
            text,
            &|_| None,
        )
        .unwrap();
        assert_eq!(s.accounts[0].client_id, "your-client-id");
    }

    /// Guards `[prices]`: off unless set; a currency that is no ISO 4217 code, a price
    /// without a currency, a negative price and a misspelt key are errors that name the key.
    #[test]
    fn prices_are_checked() {
        assert_eq!(parse_ok(MINIMAL).prices, None);
        let p = parse_ok(&format!(
            "{MINIMAL}[prices]\ncurrency = \"SEK\"\nelectricity_per_kwh = 1.85\n"
        ));
        assert_eq!(
            p.prices,
            Some(Prices {
                currency: "SEK".into(),
                electricity_per_kwh: Some(1.85),
                fuel_per_liter: None,
            })
        );
        for (table, expected) in [
            (
                "currency = \"eur\"\nfuel_per_liter = 1.9\n",
                "prices.currency: \"eur\" is not an ISO 4217 currency code",
            ),
            (
                "currency = \"EUX\"\nfuel_per_liter = 1.9\n",
                "prices.currency: \"EUX\" is not an ISO 4217 currency code",
            ),
            ("fuel_per_liter = 1.9\n", "prices.currency: missing"),
            ("currency = \"EUR\"\n", "prices: no price is set"),
            (
                "currency = \"EUR\"\nelectricity_per_kwh = -0.3\n",
                "prices.electricity_per_kwh: must be a price of 0 or more",
            ),
            (
                "currency = \"EUR\"\nelectricity_per_kwh = nan\n",
                "prices.electricity_per_kwh: must be a price of 0 or more",
            ),
        ] {
            let e = parse_err(&format!("{MINIMAL}[prices]\n{table}"));
            assert!(e.contains(expected), "{table}: {e}");
        }
        let e = parse_err(&format!(
            "{MINIMAL}[prices]\ncurrency = \"EUR\"\nelectricity_per_kWh = 0.3\n"
        ));
        assert!(
            e.contains("in [prices], `electricity_per_kWh`: unknown field"),
            "{e}"
        );
    }

    /// Guards the load-time check of `[schedule]` keys: an unknown one names the known ones,
    /// in the endpoint table's order.
    #[test]
    fn unknown_schedule_keys_are_named() {
        let e = parse_err(&format!(
            "{MINIMAL}[schedule]\nlocation = \"5m\"\ndoorz = \"1s\"\n"
        ));
        assert!(
            e.starts_with("/etc/vc/collector.toml: schedule: unknown endpoint \"doorz\": expected one of vehicles, details"),
            "{e}"
        );
        let s = parse_ok(&format!("{MINIMAL}[schedule]\nlocation = \"5m\"\n"));
        assert_eq!(
            s.schedule.get(&Endpoint::Location),
            Some(&Duration::from_secs(300))
        );
    }
}
