//! Files shared by runs that may overlap: durable replacement (write a temp file in the same
//! folder, fsync it, rename it over the target, fsync the folder, so a reader or a crash sees
//! the old file or the new one, never a mix or an empty file) and the exclusive lock file that
//! serialises a read-change-save of such a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, atomically and durably, with the given mode. When `backup`
/// is set, the previous file (if any) is first kept as `<path>.bak`, also atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, backup: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
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
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) && n.ends_with(".tmp") {
            let _ = fs::remove_file(e.path());
        }
    }
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
