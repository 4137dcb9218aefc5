//! The wall clock, as a value handed to whoever needs the time (token expiry, the schedule,
//! the request window, the daily quota), never a global that someone could set. A clock reads
//! the system's time, or starts at a given Unix time and runs on from it in real time:
//! `VOLVO_COLLECT_NOW=<unix seconds>` makes a process's configuration carry such a clock, which
//! the simulator's scripted day uses to run a whole day of collector runs in seconds. The
//! simulator keeps its own settable clock (`POST /_sim/clock`) in its own state.

use std::time::Instant;

/// The environment variable that sets the clock's start (Unix seconds, fractions allowed).
pub const ENV: &str = "VOLVO_COLLECT_NOW";

/// A clock: the system's, or one started at a chosen Unix time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Unix milliseconds at `at`; `None` reads the system clock.
    base: Option<(i64, Instant)>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The system's clock.
    pub const fn system() -> Clock {
        Clock { base: None }
    }

    /// A clock that reads `unix_ms` now and runs on in real time.
    pub fn starting_at_ms(unix_ms: i64) -> Clock {
        Clock {
            base: Some((unix_ms, Instant::now())),
        }
    }

    /// The clock [`ENV`]'s value asks for (given by `env`), else the system's.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Clock {
        env(ENV)
            .and_then(|v| parse(&v))
            .map_or(Clock::system(), Clock::starting_at_ms)
    }

    /// Whether this clock was set rather than the system's.
    pub fn is_set(&self) -> bool {
        self.base.is_some()
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        match self.base {
            Some((unix_ms, at)) => unix_ms + at.elapsed().as_millis() as i64,
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Unix seconds now, with milliseconds.
    pub fn now_f64(&self) -> f64 {
        self.now_ms() as f64 / 1000.0
    }

    /// Where the machine's boot clock stands, for the system's clock only: it never steps, so
    /// it tells how long ago a time of this clock really was even when the wall clock was set
    /// forward or back meanwhile. `None` for a set clock (its times are its own).
    pub fn since_boot(&self) -> Option<BootTime> {
        if self.is_set() {
            return None;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the struct it is given and nothing else.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return None;
        }
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(BootTime {
            // time_t and c_long are i64 on the 64-bit targets this is built for.
            ms: ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000,
            boot: boot.trim().to_string(),
        })
    }
}

/// Milliseconds since the machine booted, and which boot (`boot_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    pub ms: i64,
    pub boot: String,
}

/// How far the wall clock stepped between a time noted with its boot time and now (positive:
/// forward), when the boot clock can tell: same boot, and a step of more than a second.
pub fn step_since(then_wall_ms: i64, then: &BootTime, now_wall_ms: i64, now: &BootTime) -> i64 {
    if then.boot != now.boot {
        return 0;
    }
    let step = (now_wall_ms - then_wall_ms) - (now.ms - then.ms);
    if step.abs() > 1000 {
        step
    } else {
        0
    }
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

/// `VOLVO_COLLECT_NOW`'s value as Unix milliseconds; anything else is ignored.
fn parse(value: &str) -> Option<i64> {
    let s = value.trim().parse::<f64>().ok()?;
    (s.is_finite() && s > 0.0 && s < 1e11).then_some((s * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unix_time_has_a_date() {
        assert_eq!(
            datetime(1_780_000_000).to_rfc3339(),
            "2026-05-28T20:26:40+00:00"
        );
        for t in [i64::MAX, i64::MIN, 9_000_000_000_000] {
            assert!(!datetime(t).to_rfc3339().is_empty());
        }
    }

    #[test]
    fn the_start_is_unix_seconds() {
        assert_eq!(parse("1780000000"), Some(1_780_000_000_000));
        assert_eq!(parse(" 1780000000.5 "), Some(1_780_000_000_500));
        assert_eq!(parse("tomorrow"), None);
        assert_eq!(parse("-5"), None);
        assert_eq!(parse("inf"), None);
    }

    #[test]
    fn a_set_clock_runs_on_from_its_start_and_the_system_one_is_unset() {
        let c = Clock::from_env(&|k| (k == ENV).then(|| "1780000000".to_string()));
        assert!(c.is_set());
        let t = c.now_ms();
        assert!((1_780_000_000_000..1_780_000_060_000).contains(&t), "{t}");
        assert!(!Clock::from_env(&|_| None).is_set());
    }
}
