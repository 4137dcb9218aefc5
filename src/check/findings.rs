//! The findings framework of the check: one `ok`/`info`/`warn`/`FAIL` line per finding, and
//! the helpers that put spans, times and counts into those lines.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// A fact the user cannot change and need not act on (a car's region block).
    Info,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

impl Finding {
    /// The finding as printed; `prefix` names the account when there are several.
    pub(super) fn line(&self, prefix: &str) -> String {
        format!("{:<4} {prefix}{}", self.level.label(), self.text)
    }
}

#[derive(Debug, Default)]
pub(super) struct Findings(pub(super) Vec<Finding>);

impl Findings {
    fn push(&mut self, level: Level, text: impl Into<String>) {
        self.0.push(Finding {
            level,
            text: text.into(),
        });
    }
    pub(super) fn ok(&mut self, text: impl Into<String>) {
        self.push(Level::Ok, text);
    }
    pub(super) fn info(&mut self, text: impl Into<String>) {
        self.push(Level::Info, text);
    }
    pub(super) fn warn(&mut self, text: impl Into<String>) {
        self.push(Level::Warn, text);
    }
    pub(super) fn fail(&mut self, text: impl Into<String>) {
        self.push(Level::Fail, text);
    }
}

/// A span of seconds for people, spelled as humantime spells it (and as the configuration
/// takes it), cut to its two largest units: "4m 59s", "3h 12m", "6days 2h".
pub(super) fn human(secs: i64) -> String {
    let full = humantime::format_duration(Duration::from_secs(secs.max(0) as u64)).to_string();
    full.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

pub(super) fn expiry_text(expires_at: i64, now: i64) -> String {
    if expires_at > now {
        format!("expires in {}", human(expires_at - now))
    } else {
        format!("expired {} ago", human(now - expires_at))
    }
}

/// A Unix time as "2026-11-27 01:20 UTC".
pub(super) fn at(t: i64) -> String {
    crate::clock::datetime(t)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// 12345 → "12,345".
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_human_spans_keep_the_two_largest_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(-5), "0s");
        assert_eq!(human(299), "4m 59s");
        assert_eq!(human(300), "5m");
        assert_eq!(human(3 * 3600 + 12 * 60 + 5), "3h 12m");
        assert_eq!(human(86_400), "1day");
        assert_eq!(human(6 * 86_400 + 2 * 3600 + 5), "6days 2h");
        // humantime's months are 30.44 days, as in the grant's "about 6 months".
        assert_eq!(human(160 * 86_400 + 5), "5months 7days");
    }

    #[test]
    fn check_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_685), "1,685");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn check_expiry_and_times() {
        assert_eq!(expiry_text(1_000 + 299, 1_000), "expires in 4m 59s");
        assert_eq!(expiry_text(1_000, 1_000 + 3_600), "expired 1h ago");
        assert_eq!(at(1_795_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn check_finding_lines_align_the_level() {
        let f = Finding {
            level: Level::Ok,
            text: "x".into(),
        };
        assert_eq!(f.line(""), "ok   x");
        let f = Finding {
            level: Level::Fail,
            text: "x".into(),
        };
        assert_eq!(f.line("account home: "), "FAIL account home: x");
    }
}
