//! The token file: `{"access_token", "refresh_token", "expires_at", "token_type", "scope", ...}`,
//! mode 0600, replaced atomically with the previous one kept as `.bak`. Refresh tokens rotate
//! on every refresh, so the read-refresh-save sequence runs under an exclusive lock on
//! `<token_file>.lock`: a second run waits, re-reads, and uses the fresh token.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Fatal;
use crate::fsutil;
use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Unix seconds.
    pub expires_at: i64,
    #[serde(default = "bearer")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the refresh token was last rotated (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<i64>,
    /// When the user last logged in (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in_at: Option<i64>,
    /// Fields this version does not know are kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn bearer() -> String {
    "Bearer".into()
}

impl Token {
    /// Whether the access token expires within `margin` seconds of `now`.
    pub fn expires_within(&self, now: i64, margin: i64) -> bool {
        self.expires_at <= now + margin
    }
}

/// How to recover from a token file that cannot be used.
fn recovery(path: &Path) -> String {
    format!(
        "restore {}.bak if it is newer than your last login, or run `volvo-collect login`",
        path.display()
    )
}

/// Where and what kind of JSON error, without quoting the file (which holds secrets).
fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a field is missing or of the wrong type",
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// Reads the token file. Missing or unusable: exit 77 with what to do.
pub fn read(path: &Path) -> Result<Token, Fatal> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Fatal::login(format!(
                "no token file at {}: run `volvo-collect login` first",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Fatal::login(format!(
                "cannot read the token file {}: {e}",
                path.display()
            )))
        }
    };
    let token: Token = serde_json::from_slice(&bytes).map_err(|e| {
        Fatal::login(format!(
            "the token file {} is damaged ({}): {}",
            path.display(),
            json_error(&e),
            recovery(path)
        ))
    })?;
    if token.refresh_token.is_empty() {
        return Err(Fatal::login(format!(
            "the token file {} has no refresh token: {}",
            path.display(),
            recovery(path)
        )));
    }
    if fsutil::readable_by_others(path) {
        tracing::warn!(file = %path.display(), "the token file can be read by other users: chmod 600 it");
    }
    warn_if_folder_open(path);
    Ok(token)
}

/// Saves the token durably (0600, fsync, rename, previous kept as `.bak`). A symlinked token
/// file is written through: its target is replaced (atomically, in the target's folder, with
/// the `.bak` beside it) and the link stays, so every reader of the target sees the new
/// refresh token.
pub fn save(path: &Path, token: &Token) -> Result<(), Fatal> {
    let mut bytes = serde_json::to_vec_pretty(token).expect("a token serializes");
    bytes.push(b'\n');
    let target = fsutil::resolve_links(path).map_err(|e| {
        Fatal::config(format!(
            "the token file {} is a symlink that cannot be followed ({e}): point it at a file in a writable folder, or set volvo.token_file to the file itself",
            path.display()
        ))
    })?;
    let path = target.as_path();
    fsutil::remove_stale_temps(path);
    fsutil::write_atomic(path, &bytes, 0o600, true).map_err(|e| {
        Fatal::new(
            crate::error::ExitCode::LoginNeeded,
            format!("cannot save the token file {}: {e}", path.display()),
        )
    })
}

/// Creates the token's folder (0700, so only this user sees the token) when it is missing,
/// as the first login does.
pub fn create_folder(path: &Path) -> Result<(), Fatal> {
    let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    else {
        return Ok(());
    };
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Fatal::login(format!(
                "cannot create the token folder {}: {e}",
                dir.display()
            ))
        })
}

/// Warns when anyone may write to the token's folder (mode o+w without the sticky bit): then
/// anyone may replace the token file, or its `.bak`, by another.
pub fn warn_if_folder_open(path: &Path) {
    if let Some(folder) = open_folder(path) {
        tracing::warn!(folder = %folder.display(), "any user can write to the token file's folder and replace the token: chmod o-w it (or +t)");
    }
}

/// The token's folder, when any user may replace files in it.
pub fn open_folder(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let target = fsutil::resolve_links(path).unwrap_or_else(|_| path.to_path_buf());
    let folder = fsutil::folder_of(&target);
    let mode = std::fs::metadata(&folder).ok()?.permissions().mode();
    (mode & 0o002 != 0 && mode & 0o1000 == 0).then_some(folder)
}

/// `<token_file>.lock`, which guards the token's read-refresh-save.
pub fn lock_path(token_file: &Path) -> PathBuf {
    fsutil::lock_path(token_file)
}

/// Takes the token lock, waiting for another run that holds it. Not being able to lock is a
/// configuration problem: without the lock, overlapping runs could lose a rotated token.
pub async fn lock(token_file: &Path) -> Result<fsutil::LockFile, Fatal> {
    let path = lock_path(token_file);
    let taking = path.clone();
    tokio::task::spawn_blocking(move || fsutil::lock(&taking))
        .await
        .expect("lock task does not panic")
        .map_err(|e| match e {
            // A login cannot fix this: the token's folder is wrong or not writable.
            fsutil::LockError::Create(e) => Fatal::config(format!(
                "cannot create the lock file {}: {e}: the folder of volvo.token_file must exist and be writable by this user (every refresh saves the rotated token there); fix it or set token_file elsewhere",
                path.display()
            )),
            fsutil::LockError::Lock(e) => Fatal::config(format!(
                "cannot lock {}: {e}: put volvo.token_file on a local file system that supports locks",
                path.display()
            )),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_hides_secrets_in_debug() {
        let t: Token = serde_json::from_str(
            r#"{"access_token":"AT","refresh_token":"RT","expires_at":10,"token_type":"Bearer","scope":"openid","id_token":"x"}"#,
        )
        .unwrap();
        assert_eq!(t.extra["id_token"], "x");
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("AT\"") && !dbg.contains("RT"), "{dbg}");
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["id_token"], "x");
        assert_eq!(back["refresh_token"], "RT");
    }

    #[test]
    fn missing_and_damaged_files_say_how_to_recover() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        let e = read(&p).unwrap_err();
        assert_eq!(e.code, crate::error::ExitCode::LoginNeeded);
        assert!(
            e.message.contains("run `volvo-collect login`"),
            "{}",
            e.message
        );
        std::fs::write(&p, "{\"access_token\": \"AT\", \"refre").unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.message.contains("is damaged") && e.message.contains(".bak"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("AT"), "{}", e.message);
    }
}
