//! Weather at the car (optional, off unless an OpenWeatherMap API key is configured): the
//! current temperature, feels-like, humidity and pressure at each car's last reported position,
//! with the observation time. The position is rounded to two decimals (about 1 km) before it
//! leaves for OpenWeatherMap, and answers are reused for `weather.min_age` so that a 5-minute
//! timer stays within OpenWeatherMap's free tier. A weather failure never fails the car's data.

use std::time::Duration;

use serde::Deserialize;

use crate::api::client::describe;
use crate::config::WeatherOptions;
use crate::metrics::catalog::{self as c, Origin};
use crate::metrics::{Exposition, VehicleOut};
use crate::state::CacheEntry;

/// The part of OpenWeatherMap's current-weather answer this tool reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Current {
    pub main: Main,
    /// Observation time, Unix seconds.
    #[serde(default)]
    pub dt: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Main {
    pub temp: Option<f64>,
    pub feels_like: Option<f64>,
    /// Percent.
    pub humidity: Option<f64>,
    /// Hectopascals at sea level.
    pub pressure: Option<f64>,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Why the weather could not be had. The run branches on it only for the bounded `reason`
/// label of `volvo_collect_endpoint_error`; the text is for the log. The details are kept as
/// text rather than as the `reqwest::Error`, whose own text names the URL, and the URL carries
/// the API key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeatherError {
    #[error("cannot reach OpenWeatherMap: {0}")]
    Transport(String),
    #[error("OpenWeatherMap answered HTTP 401: check weather.api_key")]
    Unauthorized,
    #[error("OpenWeatherMap answered HTTP 429")]
    RateLimited,
    #[error("OpenWeatherMap answered HTTP {0}")]
    Server(u16),
    #[error("OpenWeatherMap answered HTTP {0}")]
    Client(u16),
    #[error("unreadable answer from OpenWeatherMap: {0}")]
    Unreadable(String),
    #[error("unexpected answer from OpenWeatherMap: {0}")]
    Decode(String),
}

impl WeatherError {
    fn from_status(status: u16) -> Self {
        match status {
            401 => Self::Unauthorized,
            429 => Self::RateLimited,
            500..=599 => Self::Server(status),
            _ => Self::Client(status),
        }
    }

    /// The `reason` label: one of a few fixed words.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Server(_) => "server_error",
            Self::Client(_) => "client_error",
            Self::Unreadable(_) | Self::Decode(_) => "decode",
        }
    }
}

/// An answer of the current weather is about a kilobyte; a larger one than this is refused.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The current weather at (latitude, longitude), reusing `cached` while it is younger than
/// the minimum age. Returns the answer and the cache entry to keep.
pub async fn fetch(
    http: &reqwest::Client,
    o: &WeatherOptions,
    (lat, lon): (f64, f64),
    cached: Option<CacheEntry>,
    now: i64,
) -> Result<(Current, CacheEntry), WeatherError> {
    if let Some(entry) = cached.filter(|e| now - e.fetched_at < o.min_age.as_secs() as i64) {
        if let Ok(current) = serde_json::from_str::<Current>(entry.body.get()) {
            return Ok((current, entry));
        }
    }
    let mut url = o.url.clone();
    url.query_pairs_mut()
        .append_pair("lat", &round2(lat).to_string())
        .append_pair("lon", &round2(lon).to_string())
        .append_pair("units", "metric")
        .append_pair("appid", o.api_key.expose());
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| WeatherError::Transport(describe(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(WeatherError::from_status(status.as_u16()));
    }
    let body = crate::http::read_capped(resp, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            crate::http::BodyError::Read(e) => WeatherError::Unreadable(describe(&e)),
            too_large => WeatherError::Unreadable(too_large.to_string()),
        })?;
    let current: Current =
        serde_json::from_slice(&body).map_err(|e| WeatherError::Decode(e.to_string()))?;
    let entry = CacheEntry::new(now, body.to_vec())
        .ok_or_else(|| WeatherError::Decode("not UTF-8 JSON".into()))?;
    Ok((current, entry))
}

/// Adds the weather samples of one car.
pub fn map(exp: &mut Exposition, vin: &str, w: &Current) {
    let mut out = VehicleOut::new(exp, vin, Origin::Weather);
    let time = w.dt.filter(|t| t.is_finite() && *t > 0.0).map(Ok);
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    if let Some(t) = finite(w.main.temp) {
        out.number(&c::WEATHER_TEMPERATURE_CELSIUS, &[], "temp", t, time);
    }
    if let Some(t) = finite(w.main.feels_like) {
        out.number(&c::WEATHER_FEELS_LIKE_CELSIUS, &[], "feels_like", t, time);
    }
    if let Some(h) = finite(w.main.humidity) {
        out.number(&c::WEATHER_HUMIDITY_RATIO, &[], "humidity", h / 100.0, time);
    }
    if let Some(p) = finite(w.main.pressure) {
        out.number(
            &c::WEATHER_PRESSURE_PASCALS,
            &[],
            "pressure",
            p * 100.0,
            time,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_become_base_units() {
        let w: Current = serde_json::from_str(r#"{"main":{"temp":4.5,"feels_like":1.2,"humidity":81,"pressure":1013},"dt":1795000000}"#).unwrap();
        let mut exp = Exposition::new();
        map(&mut exp, "V", &w);
        let text = String::from_utf8(exp.encode()).unwrap();
        assert!(
            text.contains("volvo_weather_humidity_ratio{vin=\"V\"} 0.81"),
            "{text}"
        );
        assert!(
            text.contains("volvo_weather_pressure_pascals{vin=\"V\"} 101300"),
            "{text}"
        );
        assert!(
            text.contains("volvo_weather_timestamp_seconds{vin=\"V\"} 1795000000"),
            "{text}"
        );
    }

    #[test]
    fn statuses_have_bounded_reasons() {
        let reasons: Vec<_> = [401, 429, 503, 404]
            .map(|s| WeatherError::from_status(s).reason())
            .into();
        assert_eq!(
            reasons,
            [
                "unauthorized",
                "rate_limited",
                "server_error",
                "client_error"
            ]
        );
        assert_eq!(
            WeatherError::Unauthorized.to_string(),
            "OpenWeatherMap answered HTTP 401: check weather.api_key"
        );
    }

    #[test]
    fn positions_are_rounded_before_they_leave() {
        assert_eq!(round2(57.708912), 57.71);
        assert_eq!(round2(-11.974649), -11.97);
    }
}
