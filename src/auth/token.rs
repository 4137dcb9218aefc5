//! The token file: `{"access_token", "refresh_token", "expires_at", "token_type", "scope", ...}`,
//! mode 0600, replaced atomically with the previous one kept as `.bak`. Refresh tokens rotate
//! on every refresh, so the read-refresh-save sequence runs under an exclusive lock on
//! `<token_file>.lock`: a second run waits (never past its deadline), re-reads, and uses the
//! fresh token. Before a refresh spends the old refresh token, the space for its successor is
//! set aside in `<token_file>.new` ([`reserve`]); a pair that was written there but could not
//! replace the token file stays there, and the next run takes it up ([`recover`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ExitCode, Fatal};
use crate::fsutil;
use crate::secret::Secret;

#[derive(Clone, Serialize, Deserialize)]
pub struct Token {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Unix seconds (a file written by other tools may hold a fraction: it is dropped).
    #[serde(deserialize_with = "unix_seconds::whole")]
    pub expires_at: i64,
    #[serde(default = "bearer")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the refresh token was last rotated (Unix seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "unix_seconds::optional"
    )]
    pub refreshed_at: Option<i64>,
    /// When the user last logged in (Unix seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "unix_seconds::optional"
    )]
    pub logged_in_at: Option<i64>,
    /// Of a refreshed pair: the [`Secret::fingerprint`] of the refresh token it was made from, so
    /// that a pair left waiting in `.new` is known to be newer than the token file it was
    /// meant to replace, whatever the clock says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Fields this version does not know are kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn bearer() -> String {
    "Bearer".into()
}

/// Unix seconds as a whole number or with a fraction (as Python's `time.time()` gives them):
/// a token file that other tools wrote is read, not called damaged.
mod unix_seconds {
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;

    struct Seconds;

    impl Visitor<'_> for Seconds {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("Unix seconds (a number)")
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("Unix seconds beyond any date"))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
            // `as` saturates; a time past the range of i64 is no time a token holds.
            if v.is_finite() && v.abs() < 9.2e18 {
                Ok(v.floor() as i64)
            } else {
                Err(E::custom("Unix seconds beyond any date"))
            }
        }
    }

    pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(Seconds)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        struct MaybeSeconds;
        impl<'de> Visitor<'de> for MaybeSeconds {
            type Value = Option<i64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("Unix seconds (a number) or null")
            }
            fn visit_none<E: Error>(self) -> Result<Option<i64>, E> {
                Ok(None)
            }
            fn visit_unit<E: Error>(self) -> Result<Option<i64>, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
                whole(d).map(Some)
            }
        }
        d.deserialize_option(MaybeSeconds)
    }
}

/// Shows the unknown fields by name only: one may be a secret this version does not know
/// (an `id_token`, say).
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("refreshed_at", &self.refreshed_at)
            .field("logged_in_at", &self.logged_in_at)
            .field("replaces", &self.replaces)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The longest an access token is taken to live, whatever Volvo ID says.
pub const LONGEST_LIFETIME_S: i64 = 86_400;

impl Token {
    /// Whether the access token expires within `margin` seconds of `now`. An expiry further
    /// ahead than any token lives was set by a clock running ahead since set back: the token
    /// is as good as expired (it was kept until the API refused it).
    pub fn expires_within(&self, now: i64, margin: i64) -> bool {
        self.expires_at <= now + margin || self.expires_at > now + LONGEST_LIFETIME_S
    }

    /// Whether the access token can be sent in a header at all: one line of visible
    /// characters. One damaged in the file is refreshed rather than refused by every request
    /// until it expires.
    pub fn sendable(&self) -> bool {
        let t = self.access_token.expose();
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())
    }
}

/// How to recover from a token file that cannot be used. Its backup is beside the file its
/// links lead to, where every save keeps it.
fn recovery(path: &Path) -> String {
    let bak = fsutil::with_suffix(&followed(path), ".bak");
    if bak.exists() {
        format!(
            "restore {} if it is newer than your last login, or run `volvo-collect login`",
            bak.display()
        )
    } else {
        "run `volvo-collect login`".into()
    }
}

/// Where and what kind of JSON error, without quoting the file (which holds secrets).
fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => return data_error(e),
        serde_json::error::Category::Eof => "truncated",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// A field missing (named: the names are this program's) or of the wrong type (the kinds
/// only: the value may be a token).
fn data_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let what = match msg.strip_prefix("missing field `") {
        Some(rest) => format!(
            "the field `{}` is missing",
            rest.split('`').next().unwrap_or("")
        ),
        None => match msg.strip_prefix("invalid type: ") {
            Some(kinds) => {
                let found = kinds.split([' ', ',']).next().unwrap_or("a value");
                let expected = kinds
                    .split_once(", expected ")
                    .map_or("another type", |(_, e)| {
                        e.split(" at line").next().unwrap_or(e)
                    });
                format!("a field is of the wrong type (found {found}, expected {expected})")
            }
            None => "a field is of the wrong type".to_string(),
        },
    };
    format!("{what}, at line {} column {}", e.line(), e.column())
}

/// The most a token file may hold: a pair with its extra fields is a few kilobytes.
const TOKEN_MAX: u64 = 1 << 20;
/// The least space set aside for a rotated pair; more when the current pair is large (a new
/// pair may be larger than the old one).
const RESERVE_MIN: u64 = 16 * 1024;
const RESERVE_FACTOR: u64 = 4;

/// Parses a token file's bytes. Trailing NULs are the unused end of a reservation; a leading
/// byte-order mark is an editor's (one that saves "UTF-8 with BOM"), not part of the JSON.
fn parse(bytes: &[u8]) -> Result<Token, serde_json::Error> {
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let bytes = &bytes[..end];
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}

/// Why a token file that is there cannot be read, with the exit code of its fix: a disk's or
/// the machine's error of the moment is temporary (75); a permission, a folder in its place or
/// a path that cannot lead to a file is the setup's (78); a login would fix none of these.
/// Too large for a token is a damaged one (77).
fn unreadable(path: &Path, e: &fsutil::ReadError) -> Fatal {
    let said = format!("cannot read the token file {}: {e}", path.display());
    match e {
        fsutil::ReadError::Io(io) => match io.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => Fatal::config(format!("{said}: {}", whose(path))),
            Some(
                libc::EIO
                | libc::EAGAIN
                | libc::EINTR
                | libc::ETIMEDOUT
                | libc::ESTALE
                | libc::ENOMEM
                | libc::EMFILE
                | libc::ENFILE,
            ) => Fatal::new(
                ExitCode::Temporary,
                format!("{said}; the next run tries again"),
            ),
            _ => Fatal::config(format!(
                "{said}: set volvo.token_file to a file this user can read"
            )),
        },
        fsutil::ReadError::NotRegular(_) => Fatal::config(format!(
            "{said}: set volvo.token_file to a file, such as token.json"
        )),
        _ => Fatal::login(format!("{said}: {}", recovery(path))),
    }
}

/// Whose a token file is that this user may not read, and what to do: run as its owner (the
/// collector's user, most often), rather than give the file away from it.
fn whose(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match std::fs::metadata(path).map(|m| m.uid()) {
        Ok(owner) if owner != me => format!(
            "it belongs to uid {owner} and this runs as uid {me}: run as its owner (`sudo -u '#{owner}' volvo-collect ...`), the collector's user"
        ),
        _ => format!("this user (uid {me}) may not read it: check its mode (0600) and its folders'"),
    }
}

/// Reads the token file, and warns when other users may read it or replace it. Missing or
/// unusable: exit 77 with what to do.
pub fn read(path: &Path) -> Result<Token, Fatal> {
    let token = reread(path)?;
    if fsutil::readable_by_others(path) {
        tracing::warn!(file = %path.display(), "the token file can be read by other users: chmod 600 it");
    }
    warn_if_folder_open(path);
    Ok(token)
}

/// [`read`] without its warnings, for a second look within a run (which warned once).
pub fn reread(path: &Path) -> Result<Token, Fatal> {
    let bytes = match fsutil::read_capped(path, TOKEN_MAX) {
        Ok(b) => b,
        Err(fsutil::ReadError::NotFound) => {
            return Err(Fatal::login(format!(
                "no token file at {}: run `volvo-collect login` first",
                path.display()
            )))
        }
        Err(e) => return Err(unreadable(path, &e)),
    };
    let token: Token = parse(&bytes).map_err(|e| {
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
    Ok(token)
}

/// The file a token file leads to through its symlinks: the one that is replaced.
fn target_of(path: &Path) -> Result<PathBuf, Fatal> {
    fsutil::resolve_links(path).map_err(|e| {
        Fatal::config(format!(
            "the token file {} is a symlink that cannot be followed ({e}): point it at a file in a writable folder, or set volvo.token_file to the file itself",
            path.display()
        ))
    })
}

fn to_bytes(token: &Token) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(token).expect("a token serializes");
    bytes.push(b'\n');
    bytes
}

/// Space set aside beside the token file for the pair a refresh is about to bring.
#[derive(Debug)]
pub struct Reservation {
    reserved: fsutil::Reserved,
    target: PathBuf,
}

/// Sets aside, in the token file's folder, room for a pair larger than `current` (written and
/// synced in `<token_file>.new`), so that the refresh that follows can always be saved: when
/// the space is not there, the refresh is not sent and the refresh token stays valid.
pub fn reserve(path: &Path, current: &Token) -> Result<Reservation, Fatal> {
    let target = target_of(path)?;
    fsutil::remove_stale_temps(&target);
    let size = RESERVE_MIN.max(RESERVE_FACTOR * to_bytes(current).len() as u64);
    let reserved = fsutil::reserve(&target, size, 0o600).map_err(|e| {
        let dir = fsutil::folder_of(&target);
        let what = format!(
            "cannot set aside {size} bytes for the rotated token in {}: {}",
            dir.display(),
            fsutil::describe(&e)
        );
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => Fatal::new(
                ExitCode::Temporary,
                format!("{what}: free space there; the token was not refreshed, so the refresh token stays valid and the next run refreshes it"),
            ),
            _ if fsutil::out_of_descriptors(&e) => Fatal::new(ExitCode::Temporary, what),
            // A disk's I/O error, say: nothing in the configuration to fix.
            Some(libc::EIO | libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT) => Fatal::new(
                ExitCode::Temporary,
                format!("{what}; the token was not refreshed, so the refresh token stays valid and the next run refreshes it"),
            ),
            _ => Fatal::config(format!(
                "{what}: the folder of volvo.token_file must be writable by this user (every refresh saves the rotated token there)"
            )),
        }
    })?;
    Ok(Reservation { reserved, target })
}

/// Saves `token` into its reservation and makes it the token file (the previous one kept as
/// `.bak`). A pair that was written but could not replace the token file stays in
/// `<token_file>.new`, from where the next run takes it ([`recover`]): that is a warning, and
/// the pair is used meanwhile. A pair that could not be written is tried once more in a new
/// file; only one that could not be written at all is lost.
pub fn save_reserved(r: Reservation, token: &Token) -> Result<(), Fatal> {
    let path = r.target.clone();
    let Err((e, kept)) = commit(r, token) else {
        return Ok(());
    };
    trying_again(&path, &e);
    // The space goes with the file, which may be what failed.
    drop(kept);
    reserve_and_commit(&path, token).map_err(|(last, _)| lost(&path, &last))
}

/// How long a rotated pair that could not be written waits before each further try: a disk's
/// hiccup (a flash card's, a network file system's) passes within seconds, and this pair may
/// be the only valid refresh token there is. A stop waits for these tries too.
const ROTATED_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// [`save_reserved`] for a pair Volvo ID has just rotated: after the try in a new file, the
/// pair is tried again after each of [`ROTATED_RETRY_DELAYS`], into the space that file set
/// aside while it is there, before the pair is given up.
pub async fn save_rotated(r: Reservation, token: &Token) -> Result<(), Fatal> {
    let path = r.target.clone();
    let Err((e, kept)) = commit(r, token) else {
        return Ok(());
    };
    trying_again(&path, &e);
    drop(kept);
    let (mut last, mut kept) = match reserve_and_commit(&path, token) {
        Ok(()) => return Ok(()),
        Err(failed) => failed,
    };
    for delay in ROTATED_RETRY_DELAYS {
        tokio::time::sleep(delay).await;
        let tried = match kept.take() {
            Some(r) => commit(r, token),
            None => reserve_and_commit(&path, token),
        };
        match tried {
            Ok(()) => return Ok(()),
            Err((e, r)) => (last, kept) = (e, r),
        }
    }
    Err(lost(&path, &last))
}

fn trying_again(path: &Path, e: &std::io::Error) {
    tracing::warn!(
        "cannot write the new token pair beside {} ({}); trying again",
        path.display(),
        fsutil::describe(e)
    );
}

/// A failed save: why, and the reservation when its space is still set aside.
type Unsaved = (std::io::Error, Option<Reservation>);

/// The pair written into a reservation made for it now.
fn reserve_and_commit(path: &Path, token: &Token) -> Result<(), Unsaved> {
    let bytes = to_bytes(token);
    let reserved = fsutil::reserve(path, bytes.len() as u64, 0o600).map_err(|e| (e, None))?;
    commit(
        Reservation {
            reserved,
            target: path.to_path_buf(),
        },
        token,
    )
}

fn lost(path: &Path, e: &std::io::Error) -> Fatal {
    Fatal::login(format!(
        "cannot save the token file {}: {}: run `volvo-collect login`",
        path.display(),
        fsutil::describe(e)
    ))
}

/// Writes the pair into its reservation: `Ok` once it is the token file or waits in `.new`.
fn commit(r: Reservation, token: &Token) -> Result<(), Unsaved> {
    match r.reserved.commit(&to_bytes(token), true) {
        Ok(()) => Ok(()),
        Err(fsutil::CommitError::Kept(kept, e)) => {
            tracing::warn!(
                "cannot replace the token file {} ({}): the new token pair is saved in {}, and the next run moves it into place",
                r.target.display(),
                fsutil::describe(&e),
                kept.display()
            );
            Ok(())
        }
        Err(fsutil::CommitError::Unsynced(kept, e)) => {
            tracing::warn!(
                "the new token pair is written in {}, but the disk did not confirm it ({}): the next run moves it into place; if this repeats, the disk is failing",
                kept.display(),
                fsutil::describe(&e)
            );
            Ok(())
        }
        Err(fsutil::CommitError::NotWritten(e, reserved)) => Err((
            e,
            Some(Reservation {
                reserved,
                target: r.target,
            }),
        )),
    }
}

/// Saves the token durably (0600, fsync, rename, previous kept as `.bak`). A symlinked token
/// file is written through: its target is replaced (atomically, in the target's folder, with
/// the `.bak` beside it) and the link stays, so every reader of the target sees the new
/// refresh token. A pair waiting in `<token_file>.new` is superseded.
pub fn save(path: &Path, token: &Token) -> Result<(), Fatal> {
    let target = target_of(path)?;
    if let Some(kind) = fsutil::not_regular(&target) {
        return Err(Fatal::config(format!(
            "cannot save the token file {}: it is {kind}; name a file, such as token.json",
            target.display()
        )));
    }
    fsutil::remove_stale_temps(&target);
    let bytes = to_bytes(token);
    let reserved = fsutil::reserve(&target, bytes.len() as u64, 0o600).map_err(|e| {
        Fatal::login(format!(
            "cannot save the token file {}: {}",
            target.display(),
            fsutil::describe(&e)
        ))
    })?;
    save_reserved(Reservation { reserved, target }, token)
}

/// What [`recover`] found beside the token file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Nothing waiting, or a pair now taken up.
    None,
    /// An empty reservation: a run ended (killed, the power cut) after setting room aside for
    /// a refresh and before saving its answer. If Volvo ID had answered, the refresh token in
    /// the token file was spent with it.
    CutOff,
}

/// Takes up a rotated pair that an earlier run wrote to `<token_file>.new` but could not move
/// over the token file (the disk was full, say): it replaces the token file now, unless the
/// token file holds a newer pair (a login since). A `.new` that holds no pair is the
/// reservation of a run that ended before its refresh was saved: it goes, and is reported.
/// Runs under the token lock, before the token file is read.
pub fn recover(path: &Path) -> Result<Pending, Fatal> {
    let Ok(target) = fsutil::resolve_links(path) else {
        return Ok(Pending::None);
    };
    let pending = fsutil::pending_path(&target);
    let bytes = match fsutil::read_capped(&pending, TOKEN_MAX) {
        Ok(b) => b,
        Err(fsutil::ReadError::NotFound) => return Ok(Pending::None),
        Err(fsutil::ReadError::Io(e)) if fsutil::out_of_descriptors(&e) => {
            return Err(Fatal::new(
                ExitCode::Temporary,
                format!("cannot read {}: {}", pending.display(), fsutil::describe(&e)),
            ))
        }
        Err(e) => {
            return Err(Fatal::config(format!(
                "cannot read {}, where a rotated token pair may wait: {e}: remove it if it is not a token file",
                pending.display()
            )))
        }
    };
    let Some(waiting) = parse(&bytes).ok().filter(|t| !t.refresh_token.is_empty()) else {
        let _ = std::fs::remove_file(&pending);
        return Ok(Pending::CutOff);
    };
    let current = fsutil::read_capped(&target, TOKEN_MAX)
        .ok()
        .and_then(|b| parse(&b).ok());
    // A pair made from the token file's own refresh token is newer than it, whatever the
    // clock says; any other token file was put there since (a login elsewhere, a restore),
    // and the later expiry tells.
    let made_from = |c: &Token| waiting.replaces.as_deref() == Some(&c.refresh_token.fingerprint());
    if current.is_some_and(|c| !made_from(&c) && c.expires_at > waiting.expires_at) {
        tracing::warn!(file = %pending.display(), "an older token pair than the token file's own was left here; removed");
        let _ = std::fs::remove_file(&pending);
        return Ok(Pending::None);
    }
    // The unused end of its reserved space, if its save stopped before cutting it off.
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    if end < bytes.len() {
        let cut = std::fs::OpenOptions::new()
            .write(true)
            .open(&pending)
            .and_then(|f| f.set_len(end as u64).and_then(|()| f.sync_all()));
        if let Err(e) = cut {
            tracing::warn!(file = %pending.display(), "cannot cut the unused end off the waiting token pair ({})", fsutil::describe(&e));
        }
    }
    fsutil::promote(&pending, &target, true).map_err(|e| {
        Fatal::new(
            ExitCode::Temporary,
            format!(
                "the rotated token pair in {} cannot replace the token file {}: {}: {}; the token was not refreshed meanwhile",
                pending.display(),
                target.display(),
                fsutil::describe(&e),
                promote_hint(&e, &target)
            ),
        )
    })?;
    tracing::info!(file = %target.display(), "the rotated token pair an earlier run kept in {} is now the token file", pending.display());
    Ok(Pending::None)
}

/// What to do when a waiting pair cannot replace the token file.
fn promote_hint(e: &std::io::Error, target: &Path) -> String {
    let folder = fsutil::folder_of(target);
    if fsutil::out_of_space(e) {
        format!(
            "free space in {} (or move the file there by hand)",
            folder.display()
        )
    } else if e.raw_os_error() == Some(libc::EBUSY) {
        "the token file is a mount point (a file mounted on its own cannot be replaced): mount its folder instead, and move the file there by hand".to_string()
    } else {
        format!(
            "make {} writable, or move the file there by hand",
            folder.display()
        )
    }
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

/// The file the token file leads to through its symlinks, or the token file itself when a
/// link cannot be followed (that is said where the file is written).
fn followed(token_file: &Path) -> PathBuf {
    fsutil::resolve_links(token_file).unwrap_or_else(|_| token_file.to_path_buf())
}

/// `<token_file>.lock`, which guards the token's read-refresh-save, beside the file the token
/// file leads to through its symlinks: runs that name the file and runs that name a link to it
/// share one token, so they must share one lock.
pub fn lock_path(token_file: &Path) -> PathBuf {
    let target = followed(token_file);
    fsutil::lock_path(&target)
}

/// Checks, before a run asks anything, that the token file is no FIFO or device and that its
/// folder exists: the token, its lock and by default the state live there, so a missing
/// folder is named as the token's.
pub fn preflight(token_file: &Path) -> Result<(), Fatal> {
    // A FIFO or a device in its place can never hold the token: no login helps with that.
    if let Some(kind) = fsutil::not_regular(token_file) {
        return Err(Fatal::config(format!(
            "volvo.token_file {} is {kind}: name a file, such as token.json",
            token_file.display()
        )));
    }
    if let Some(why) = mounted_alone(token_file) {
        return Err(Fatal::config(format!(
            "volvo.token_file {}: {why}",
            token_file.display()
        )));
    }
    let dir = fsutil::folder_of(token_file);
    if dir.is_dir() {
        return Ok(());
    }
    Err(Fatal::config(format!(
        "the folder of volvo.token_file {}, {}, does not exist: the token, its lock and by default the state live there; it must exist: run `volvo-collect login` (which creates it), or set token_file elsewhere",
        token_file.display(),
        dir.display()
    )))
}

/// Why the token file can never be replaced, when it is a file mounted on its own: every
/// refresh must replace it, so the first would leave the rotated refresh token stranded
/// beside it. Said before any refresh, while the refresh token on disk is still valid.
pub fn mounted_alone(token_file: &Path) -> Option<String> {
    let target = followed(token_file);
    fsutil::is_mount_root(&target).then(|| {
        format!(
            "{} is a mount point of its own (a single file mounted into place, as `-v token.json:...` does), which a refresh cannot replace with the rotated token: mount its folder instead, such as `-v volvo-collect:/var/lib/volvo-collect`",
            target.display()
        )
    })
}

/// Takes the token lock, waiting for another run that holds it until `deadline`. Not being
/// able to lock is a configuration problem (without the lock, overlapping runs could lose a
/// rotated token), unless the process is out of file descriptors or another process holds the
/// lock past the deadline: those are temporary, and said as what they are.
pub async fn lock(
    token_file: &Path,
    deadline: tokio::time::Instant,
) -> Result<fsutil::LockFile, Fatal> {
    let path = lock_path(token_file);
    fsutil::lock_until(&path, deadline)
        .await
        .map_err(|e| match &e {
            fsutil::LockError::Create(io) if fsutil::out_of_descriptors(io) => {
                Fatal::new(ExitCode::Temporary, e.describe(&path))
            }
            fsutil::LockError::Create(io) if fsutil::out_of_space(io) => Fatal::new(
                ExitCode::Temporary,
                format!("{}: free space there", e.describe(&path)),
            ),
            // A login cannot fix this: the token's folder is wrong or not writable.
            fsutil::LockError::Create(io) => Fatal::config(format!(
                "cannot create the lock file {}: {}: the folder of volvo.token_file must exist and be writable by this user (every refresh saves the rotated token there); fix it or set token_file elsewhere",
                path.display(),
                fsutil::describe(io)
            )),
            fsutil::LockError::Lock(io) => Fatal::config(format!(
                "cannot lock {}: {}: put volvo.token_file on a local file system that supports locks",
                path.display(),
                fsutil::describe(io)
            )),
            fsutil::LockError::Held(_) => Fatal::new(
                ExitCode::Temporary,
                format!("{}; the token was not refreshed, and the next run tries again", e.describe(&path)),
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_hides_secrets_in_debug() {
        let t: Token = serde_json::from_str(
            r#"{"access_token":"AT","refresh_token":"RT","expires_at":10,"token_type":"Bearer","scope":"openid","id_token":"ID-TOKEN-VALUE"}"#,
        )
        .unwrap();
        assert_eq!(t.extra["id_token"], "ID-TOKEN-VALUE");
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("AT\"") && !dbg.contains("RT"), "{dbg}");
        // An unknown field may be a secret too: its name shows, never its value.
        assert!(
            dbg.contains("id_token") && !dbg.contains("ID-TOKEN-VALUE"),
            "{dbg}"
        );
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["id_token"], "ID-TOKEN-VALUE");
        assert_eq!(back["refresh_token"], "RT");
    }

    /// Guards token files that other tools wrote: times with a fraction (Python's
    /// `time.time()`) are read, not called damaged; a time that is no number still is.
    #[test]
    fn times_with_a_fraction_are_read() {
        let t: Token = serde_json::from_str(
            r#"{"access_token":"a","refresh_token":"r","expires_at":1796599014.7,"logged_in_at":1796590000.2,"refreshed_at":null}"#,
        )
        .unwrap();
        assert_eq!(t.expires_at, 1_796_599_014);
        assert_eq!(t.logged_in_at, Some(1_796_590_000));
        assert_eq!(t.refreshed_at, None);
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(back["expires_at"], 1_796_599_014);
        for bad in [r#""soon""#, "1e300", "true"] {
            let text = format!(r#"{{"access_token":"a","refresh_token":"r","expires_at":{bad}}}"#);
            let e = serde_json::from_str::<Token>(&text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("Unix seconds"), "{bad}: {e}");
        }
    }

    fn pair(refresh: &str, expires_at: i64, replaces: Option<&str>) -> Token {
        let mut t: Token = serde_json::from_value(serde_json::json!({
            "access_token": format!("at-{refresh}"),
            "refresh_token": refresh,
            "expires_at": expires_at,
        }))
        .unwrap();
        t.replaces = replaces.map(|r| Secret::new(r).fingerprint());
        t
    }

    /// Guards the only valid refresh token against a clock set back: a pair left in `.new`
    /// that was made from the token file's own pair expires earlier by the stepped clock, and
    /// was dropped as older, so the next run got `invalid_grant` and needed a login.
    #[test]
    fn a_waiting_pair_made_from_the_token_file_wins_whatever_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        let new = dir.path().join("token.json.new");
        let write = |path: &Path, t: &Token| std::fs::write(path, to_bytes(t)).unwrap();
        // Made from the file's pair, with an earlier expiry: it replaces the file.
        write(&p, &pair("rt-one", 90_000, None));
        write(&new, &pair("rt-two", 4_200, Some("rt-one")));
        recover(&p).unwrap();
        assert_eq!(read(&p).unwrap().refresh_token.expose(), "rt-two");
        assert!(!new.exists());
        // Made from another pair than the file's (a login since): the later expiry wins.
        write(&p, &pair("rt-login", 90_000, None));
        write(&new, &pair("rt-three", 4_200, Some("rt-two")));
        recover(&p).unwrap();
        assert_eq!(read(&p).unwrap().refresh_token.expose(), "rt-login");
        assert!(!new.exists());
    }

    /// An expiry further ahead than any token lives (set while the clock ran ahead) counts as
    /// expired; one within a day does not.
    #[test]
    fn an_expiry_beyond_any_lifetime_counts_as_expired() {
        let now = 1_800_000_000;
        let at = |expires_at| pair("rt", expires_at, None);
        assert!(!at(now + 3_600).expires_within(now, 60));
        assert!(at(now + 30).expires_within(now, 60));
        assert!(!at(now + LONGEST_LIFETIME_S).expires_within(now, 60));
        assert!(at(now + 10 * LONGEST_LIFETIME_S).expires_within(now, 60));
    }

    /// A file saved by an editor as "UTF-8 with BOM" is still the token it holds.
    #[test]
    fn a_byte_order_mark_before_the_token_is_no_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(to_bytes(&pair("rt-bom", 4_200, None)));
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read(&p).unwrap().refresh_token.expose(), "rt-bom");
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
        // A value no temporary folder's random name can contain.
        std::fs::write(&p, "{\"access_token\": \"at-secret-value\", \"refre").unwrap();
        let e = read(&p).unwrap_err();
        // No backup to restore: not offered.
        assert!(
            e.message.contains("is damaged") && !e.message.contains(".bak"),
            "{}",
            e.message
        );
        std::fs::write(dir.path().join("token.json.bak"), "{}").unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.message.contains("is damaged") && e.message.contains("token.json.bak"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("at-secret"), "{}", e.message);
        // A missing field is named; a wrong type says the kinds, never the value.
        std::fs::write(
            &p,
            "{\"access_token\": \"at-secret-value\", \"expires_at\": 1}",
        )
        .unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.message.contains("the field `refresh_token` is missing"),
            "{}",
            e.message
        );
        let body =
            "{\"access_token\": 4242, \"refresh_token\": \"rt-secret-value\", \"expires_at\": 1}";
        std::fs::write(&p, body).unwrap();
        let e = read(&p).unwrap_err();
        assert!(
            e.message.contains("found integer, expected a string")
                && !e.message.contains("4242")
                && !e.message.contains("rt-secret"),
            "{}",
            e.message
        );
    }
}
