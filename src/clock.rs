//! The one wall clock of the program. Every Unix time the collector and the simulator read
//! (token expiry, the schedule, the request window, the daily quota) comes from here, so that
//! one setting moves all of them: `VOLVO_COLLECT_NOW=<unix seconds>` makes a process start at
//! that time and run on from it in real time. The simulator's scripted day uses it to run a
//! whole day of collector runs in seconds; nothing else should set it.

use std::sync::OnceLock;
use std::time::Instant;

/// The environment variable that sets the clock's start (Unix seconds, fractions allowed).
pub const ENV: &str = "VOLVO_COLLECT_NOW";

struct Base {
    /// Unix milliseconds at `at`.
    unix_ms: i64,
    at: Instant,
}

static BASE: OnceLock<std::sync::RwLock<Option<Base>>> = OnceLock::new();

fn base() -> &'static std::sync::RwLock<Option<Base>> {
    BASE.get_or_init(|| {
        let from_env = std::env::var(ENV)
            .ok()
            .and_then(|v| parse(&v))
            .map(|unix_ms| Base {
                unix_ms,
                at: Instant::now(),
            });
        std::sync::RwLock::new(from_env)
    })
}

/// `VOLVO_COLLECT_NOW`'s value as Unix milliseconds; anything else is ignored.
fn parse(value: &str) -> Option<i64> {
    let s = value.trim().parse::<f64>().ok()?;
    (s.is_finite() && s > 0.0 && s < 1e11).then_some((s * 1000.0) as i64)
}

/// Sets the clock to `unix_ms` from now on (the simulator's `/_sim/clock`).
pub fn set_ms(unix_ms: i64) {
    *base().write().expect("clock lock") = Some(Base {
        unix_ms,
        at: Instant::now(),
    });
}

/// Whether the clock was set (by [`ENV`] or [`set_ms`]) rather than the system's.
pub fn is_set() -> bool {
    base().read().expect("clock lock").is_some()
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    match &*base().read().expect("clock lock") {
        Some(b) => b.unix_ms + b.at.elapsed().as_millis() as i64,
        None => chrono::Utc::now().timestamp_millis(),
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Unix seconds now, with milliseconds.
pub fn now_f64() -> f64 {
    now_ms() as f64 / 1000.0
}

/// A Unix time (seconds) as a date in UTC, for messages. Times beyond what a calendar can
/// hold (a bogus quota reset millions of years ahead) are clamped to its ends, so a message
/// never shows an empty date.
pub fn datetime(unix_s: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::DateTime;
    let s = unix_s.clamp(
        DateTime::<chrono::Utc>::MIN_UTC.timestamp(),
        DateTime::<chrono::Utc>::MAX_UTC.timestamp(),
    );
    DateTime::from_timestamp(s, 0).unwrap_or(DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_unix_time_has_a_date() {
        assert_eq!(
            super::datetime(1_780_000_000).to_rfc3339(),
            "2026-05-28T20:26:40+00:00"
        );
        for t in [i64::MAX, i64::MIN, 9_000_000_000_000] {
            assert!(!super::datetime(t).to_rfc3339().is_empty());
        }
    }

    #[test]
    fn the_start_is_unix_seconds() {
        assert_eq!(super::parse("1780000000"), Some(1_780_000_000_000));
        assert_eq!(super::parse(" 1780000000.5 "), Some(1_780_000_000_500));
        assert_eq!(super::parse("tomorrow"), None);
        assert_eq!(super::parse("-5"), None);
        assert_eq!(super::parse("inf"), None);
    }
}
