//! Files shared by runs that may overlap, and the small file-system facts the collector needs
//! about them. Durable replacement: write a temp file in the same folder, fsync it, rename it
//! over the target, fsync the folder, so a reader or a crash sees the old file or the new one,
//! never a mix or an empty file. The exclusive lock file that serialises a read-change-save of
//! such a file. Where symlinks lead, whether a folder is writable, who may read a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, atomically and durably, with the given mode. When `backup`
/// is set, the previous file (if any) is first kept as `<path>.bak`, also atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, backup: bool) -> io::Result<()> {
    let dir = folder_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    // The temp name must not end in `.prom`: node_exporter reads every `*.prom` it sees.
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode given at creation.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if backup && path.exists() {
            // A hard link keeps the previous file as it is: no copy, nothing more to sync.
            let bak = dir.join(format!("{name}.bak"));
            let bak_tmp = dir.join(format!(".{name}.bak.{}.tmp", std::process::id()));
            let _ = fs::remove_file(&bak_tmp);
            fs::hard_link(path, &bak_tmp)?;
            fs::rename(&bak_tmp, &bak)?;
        }
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files of `path` that an earlier, killed writer left behind. Only for callers
/// that hold the file's lock, so no live writer owns them.
pub fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let dir = folder_of(path);
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The folder a file is in; `.` for a bare file name.
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file that `path` leads to through its symlinks (`path` itself when it is none). A
/// dangling link leads to the file it names, so writing there creates that file.
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Creates and removes a file in `dir`: the only sure test that this user can write there
/// (permission bits do not tell about ACLs, read-only mounts or another owner).
pub fn probe_writable(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            format!("{} is not a folder", dir.display())
        } else {
            format!("the folder {} does not exist", dir.display())
        });
    }
    // Hidden, and not ending in `.prom`, so that node_exporter never reads it.
    let probe = dir.join(format!(
        ".volvo-collect-check.{}.{}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// `<path>.lock`, the lock file that guards `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive lock on a lock file, released when dropped (or when the process ends, even
/// by a crash, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

/// Why a lock could not be taken; the callers word (and weigh) the two differently.
#[derive(Debug)]
pub enum LockError {
    /// The lock file cannot be created or opened: its folder is missing or not writable.
    Create(io::Error),
    /// The file system refused the lock.
    Lock(io::Error),
}

/// Takes the exclusive lock on `lock_path` (created 0600 when missing), waiting while another
/// process holds it. Blocking: async callers run it on a blocking thread.
pub fn lock(lock_path: &Path) -> Result<LockFile, LockError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path)
        .map_err(LockError::Create)?;
    file.lock().map_err(LockError::Lock)?;
    Ok(LockFile { _file: file })
}

/// Whether a file can be read by users other than its owner (group or other read bits).
pub fn readable_by_others(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o044 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_with_mode_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        write_atomic(&p, b"one", 0o600, true).unwrap();
        assert!(!dir.path().join("token.json.bak").exists());
        write_atomic(&p, b"two", 0o600, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read(dir.path().join("token.json.bak")).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp files left: {names:?}");
    }

    #[test]
    fn folder_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        probe_writable(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("nope");
        assert!(probe_writable(&missing)
            .unwrap_err()
            .contains("does not exist"));
    }

    #[test]
    fn links_lead_to_their_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        let link = dir.path().join("token.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        // Dangling: leads to the file it names.
        assert_eq!(resolve_links(&link).unwrap(), target);
        assert_eq!(resolve_links(&target).unwrap(), target);
        assert_eq!(folder_of(Path::new("token.json")), PathBuf::from("."));
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = lock_path(&dir.path().join("token.json"));
        assert_eq!(p, dir.path().join("token.json.lock"));
        let held = lock(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Another open file description (as another process has) must wait.
        let other = File::open(&p).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
        other.unlock().unwrap();
        // Taken again at once, from the existing file.
        drop(lock(&p).unwrap());
    }

    #[test]
    fn lock_in_a_missing_folder_is_a_create_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("token.json.lock");
        assert!(matches!(lock(&p), Err(LockError::Create(_))));
    }

    #[test]
    fn public_mode_for_textfiles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("volvo.prom");
        write_atomic(&p, b"x 1\n", 0o644, false).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(readable_by_others(&p));
    }
}
