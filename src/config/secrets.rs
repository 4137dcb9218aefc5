//! Every secret of the configuration — Volvo's client secret and API key, the OpenWeatherMap
//! key, the outputs' passwords and bearer token — is read here, by one function with one order,
//! so that a deployment can keep any of them out of the file (an environment variable, a file
//! of mode 0600, or a systemd credential) and every secret follows the same rules.

use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Where one secret may be written, in the order [`read`] looks: the environment variable,
/// the value in the file, `<key>_file`, the systemd credential.
pub(super) struct Places<'a> {
    /// The value written in the configuration file.
    pub value: Option<Secret>,
    /// `<key>_file`, already resolved against the configuration file's folder.
    pub file: Option<PathBuf>,
    /// The environment variable that wins over the file, for secrets that have one.
    pub env_var: Option<&'a str>,
    /// The name under `$CREDENTIALS_DIRECTORY`, for secrets that systemd may hand over.
    pub credential: Option<&'a str>,
}

/// The secret, or `None` when it is written nowhere. An empty value counts as unset, so that
/// an empty environment variable or `key = ""` falls through to the next place. An error is
/// about the file the secret was to come from; the caller names it as `<key>_file`.
pub(super) fn read(
    places: Places,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    if let Some(v) = places.env_var.and_then(env).filter(|v| !v.is_empty()) {
        return Ok(Some(Secret::new(v)));
    }
    if let Some(v) = places.value.filter(|v| !v.is_empty()) {
        return Ok(Some(v));
    }
    if let Some(p) = places.file {
        return read_file(&p).map(Some);
    }
    if let (Some(name), Some(dir)) = (places.credential, env("CREDENTIALS_DIRECTORY")) {
        let p = Path::new(&dir).join(name);
        // Unlike a `_file` key, a credential is optional: systemd hands over only those asked.
        if p.is_file() {
            return read_file(&p).map(Some);
        }
    }
    Ok(None)
}

/// The most a secret file may hold: secrets are a line, certificates are not read here.
const SECRET_FILE_MAX: u64 = 64 * 1024;

/// A secret file's content without the trailing newline editors add; an empty file is an
/// error, since it was named on purpose.
fn read_file(p: &Path) -> Result<Secret, String> {
    // A secret is a line: a device or FIFO named by mistake can neither hang nor fill the run.
    let bytes = crate::fsutil::read_capped(p, SECRET_FILE_MAX)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", p.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{} is empty", p.display()));
    }
    if crate::fsutil::readable_by_others(p) {
        tracing::warn!(file = %p.display(), "a secret file that other users can read: chmod 600 it (owned by the collector's user)");
    }
    Ok(Secret::new(text))
}

/// Whether a secret can be sent as an HTTP header value: printable ASCII without spaces. Says
/// what is wrong without showing the secret; a stray newline or space would otherwise only
/// show later, as a network error.
pub(super) fn header_safe(secret: &Secret) -> Result<(), &'static str> {
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

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use std::path::Path;

    #[test]
    fn secrets_come_from_env_before_the_file() {
        let text = "[volvo]\nclient_id = \"a\"\nclient_secret = \"from-file\"\n";
        let s = parse(Path::new("c.toml"), text, &|k| {
            (k == "VOLVO_CLIENT_SECRET").then(|| "from-env".to_string())
        })
        .unwrap();
        assert_eq!(
            s.accounts[0].client_secret.clone().unwrap().expose(),
            "from-env"
        );
        let s = parse(Path::new("c.toml"), text, &|_| None).unwrap();
        assert_eq!(
            s.accounts[0].client_secret.clone().unwrap().expose(),
            "from-file"
        );
    }

    /// A device or FIFO named as a secret file is refused at once, never read without end.
    #[test]
    fn a_secret_file_that_is_no_regular_file_is_refused() {
        let text = "[volvo]\nclient_id = \"a\"\napi_key_file = \"/dev/zero\"\n";
        let e = parse(Path::new("c.toml"), text, &|_| None).unwrap_err();
        assert!(
            e.message
                .contains("volvo.api_key_file: cannot read /dev/zero: it is not a regular file"),
            "{}",
            e.message
        );
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
        assert_eq!(s.accounts[0].api_key.clone().unwrap().expose(), "k3y");
        assert_eq!(
            s.accounts[0].client_secret.clone().unwrap().expose(),
            "s3cret"
        );
        let e = parse(
            &cfg,
            "[volvo]\nclient_id = \"a\"\napi_key_file = \"nope\"\n",
            &|_| None,
        )
        .unwrap_err()
        .message;
        assert!(e.contains("volvo.api_key_file: cannot read"), "{e}");
    }

    /// Guards the one reader: the outputs' secrets follow the account's order and rules (the
    /// value before the `_file`, an empty file refused), without an environment variable or
    /// credential of their own.
    #[test]
    fn output_secrets_follow_the_same_rules() {
        use crate::config::HttpAuth;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "filepw\n").unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        std::fs::write(dir.path().join("password"), "credpw\n").unwrap();
        let cfg = dir.path().join("collector.toml");
        let d = dir.path().to_string_lossy().into_owned();
        let pg = |rest: &str| {
            let text =
                format!("[volvo]\nclient_id = \"a\"\n[pushgateway]\nusername = \"u\"\n{rest}");
            parse(&cfg, &text, &|k| {
                (k == "CREDENTIALS_DIRECTORY").then(|| d.clone())
            })
        };
        let password = |rest: &str| match pg(rest).unwrap().pushgateway.http.auth {
            HttpAuth::Basic { password, .. } => password.expose().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(password("password_file = \"pw\"\n"), "filepw");
        assert_eq!(password("password = \"v\"\npassword_file = \"pw\"\n"), "v");
        let e = pg("password_file = \"empty\"\n").unwrap_err().message;
        assert!(
            e.contains(": pushgateway.password_file: ") && e.ends_with(" is empty"),
            "{e}"
        );
        let e = pg("").unwrap_err().message;
        assert!(e.contains("username and password go together"), "{e}");
    }
}
