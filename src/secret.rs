//! Secrets (client secret, API key, tokens) wrapped so that they never reach a log line,
//! an error message or `Debug` output by accident: reading the value is an explicit call.
//! Text from elsewhere (a server's error body that echoes a request) can still hold one, so
//! every secret the process holds is remembered, and standard error masks them all.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::sync::Mutex;

/// A string that must not be printed. `Debug` and `Display` both show `(redacted)`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        hold(&value);
        Secret(value)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, one-way fingerprint (the first 8 bytes of its SHA-256, in hex): it names the
    /// secret without revealing it.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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
        String::deserialize(d).map(Secret::new)
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

/// Remembers what [`shown_url`] leaves out of `url` because it may be a secret (a password,
/// the query and its values), so that text from elsewhere that echoes the URL (a server's
/// error body) is masked too.
pub fn hold_url(url: &url::Url) {
    // A token may stand where the user name does (`https://TOKEN@host`, without a
    // password); a plain name ("user") is no secret, and masking it would hide the word.
    if url.password().is_none() && url.username().len() >= TOKEN_LIKE {
        hold(url.username());
        hold(&percent_encoding::percent_decode_str(url.username()).decode_utf8_lossy());
    }
    if let Some(password) = url.password() {
        hold(password);
        hold(&percent_encoding::percent_decode_str(password).decode_utf8_lossy());
    }
    // A query's values are keys only when they look like one: masking a short word
    // ("?tenant=home") would hide it in every message.
    if let Some(query) = url.query().filter(|q| q.len() >= KEY_LIKE) {
        hold(query);
    }
    for (_, value) in url.query_pairs().filter(|(_, v)| v.len() >= KEY_LIKE) {
        hold(&value);
    }
}

/// How long a user name of a URL must be to be taken for a token.
const TOKEN_LIKE: usize = 16;
/// How long a query's value must be to be taken for a key.
const KEY_LIKE: usize = 8;

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

/// The secrets this process holds, newest last: what [`mask`] hides. Those of the
/// configuration come first and stay; the tokens after them are bounded, because a
/// long-running process renews its token every few minutes.
static HELD: Mutex<Vec<Box<str>>> = Mutex::new(Vec::new());
/// How many of the first held secrets stay for good (see [`keep_held_for_good`]).
static LASTING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const HELD_MAX: usize = 64;
/// Shorter values are not masked: they would hide ordinary words and numbers.
const MASKED_MIN: usize = 4;

fn hold(value: &str) {
    if value.len() < MASKED_MIN {
        return;
    }
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|h| &**h == value) {
        return;
    }
    let lasting = LASTING
        .load(std::sync::atomic::Ordering::Relaxed)
        .min(held.len());
    if held.len() - lasting == HELD_MAX {
        held.remove(lasting);
    }
    held.push(value.into());
}

/// Keeps every secret held so far for as long as the process lives: called once the
/// configuration is read, so that its secrets (client secret, API key, an output URL's
/// password or query) are masked to the end, however many tokens come after them.
pub fn keep_held_for_good() {
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    LASTING.store(held.len(), std::sync::atomic::Ordering::Relaxed);
}

/// `text` with every secret this process holds, and the credentials of any `Bearer` or
/// `Basic` authorization in it, shown as `(redacted)`.
pub fn mask(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    for secret in held.iter().rev() {
        if out.contains(&**secret) {
            out = Cow::Owned(out.replace(&**secret, "(redacted)"));
        }
    }
    drop(held);
    match after_auth_schemes(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    }
}

/// `text` with the credentials after each `Bearer ` or `Basic ` (any case) redacted; `None`
/// when it holds none.
fn after_auth_schemes(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut from = 0;
    let mut starts: Vec<usize> = ["bearer ", "basic "]
        .iter()
        .flat_map(|scheme| lower.match_indices(scheme).map(|(i, m)| i + m.len()))
        .collect();
    starts.sort_unstable();
    for start in starts {
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(c)))
            .unwrap_or(text.len() - start);
        let credentials = &text[start..start + len];
        if start < from || !looks_like_credentials(credentials) {
            continue;
        }
        out.push_str(&text[from..start]);
        out.push_str("(redacted)");
        from = start + len;
    }
    (from > 0).then(|| out + &text[from..])
}

/// Whether the word after `Bearer ` or `Basic ` is credentials rather than prose ("a bearer
/// token is…", "basic authentication"): long enough, and not only lower-case letters.
fn looks_like_credentials(word: &str) -> bool {
    word.len() >= 6 && !word.bytes().all(|b| b.is_ascii_lowercase())
}

/// Standard error as this process writes its log and its last words: every held secret
/// masked, and a write that fails (a full disk under the journal) dropped rather than a
/// panic that would change the run's exit code.
#[derive(Debug, Default, Clone, Copy)]
pub struct MaskedStderr;

impl Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let _ = std::io::stderr().lock().write_all(mask(&text).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One line on standard error, the way [`MaskedStderr`] writes it.
pub fn say(line: &str) {
    let _ = writeln!(MaskedStderr, "{line}");
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

    /// Guards the configuration's secrets in a long-running process: however many tokens
    /// are renewed after them, they stay masked (they were let go after 64).
    #[test]
    fn the_configurations_secrets_outlast_any_number_of_tokens() {
        let url =
            url::Url::parse("https://user-token-12345678@pg.example/x?api_key=QKEY5678").unwrap();
        hold_url(&url);
        let _config = Secret::new("config-secret-abcd");
        keep_held_for_good();
        let tokens: Vec<Secret> = (0..3 * HELD_MAX)
            .map(|i| Secret::new(format!("token-{i:04}-xyz")))
            .collect();
        let last = format!("token-{:04}-xyz", tokens.len() - 1);
        let text = format!("user-token-12345678 QKEY5678 config-secret-abcd token-0000-xyz {last}");
        let masked = mask(&text);
        for kept in [
            "user-token-12345678",
            "QKEY5678",
            "config-secret-abcd",
            last.as_str(),
        ] {
            assert!(!masked.contains(kept), "{kept}: {masked}");
        }
        assert!(
            masked.contains("token-0000-xyz"),
            "the oldest token is let go: {masked}"
        );
    }

    #[test]
    fn held_secrets_and_authorization_credentials_are_masked() {
        let _held = Secret::new("s3cret-token");
        let _short = Secret::new("abc");
        assert_eq!(
            mask("token s3cret-token, again s3cret-token; abc"),
            "token (redacted), again (redacted); abc"
        );
        assert_eq!(
            mask("'authorization': 'Basic dTpwdw==', BEARER xyz.123-_~+/ and basic"),
            "'authorization': 'Basic (redacted)', BEARER (redacted) and basic"
        );
        assert_eq!(mask("nothing here"), "nothing here");
        let prose = "a bearer token is one line; without basic auth or basic authentication";
        assert_eq!(mask(prose), prose);
        let _: Secret = serde_json::from_str("\"from-a-file\"").unwrap();
        assert_eq!(mask("x from-a-file y"), "x (redacted) y");
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
