//! Secrets (client secret, API key, tokens) wrapped so that they never reach a log line,
//! an error message or `Debug` output by accident: reading the value is an explicit call.

use std::fmt;

/// A string that must not be printed. `Debug` and `Display` both show `(redacted)`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL as it may be shown: without user name, password or query (where tokens hide).
pub fn shown_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A configuration value as it may be shown in an error: quoted, one line, and cut short, so a
/// mistaken huge value does not flood the log. Only for values that are not secrets.
pub fn shown_value(value: &str) -> String {
    const MAX: usize = 60;
    let mut cut: String = value.chars().take(MAX).collect();
    if cut.len() < value.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_credentials_and_values_are_cut_short() {
        let u = url::Url::parse("https://user:s3cret@h:9091/pg?token=s3cret").unwrap();
        assert_eq!(shown_url(&u), "https://h:9091/pg");
        let long = "x".repeat(10_000);
        assert!(shown_value(&long).len() < 80);
        assert_eq!(shown_value("5 minutes"), "\"5 minutes\"");
    }
}
