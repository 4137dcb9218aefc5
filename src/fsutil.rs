//! Files shared by runs that may overlap, and the small file-system facts the collector needs
//! about them. Durable replacement: write a temp file in the same folder, fsync it, rename it
//! over the target, fsync the folder, so a reader or a crash sees the old file or the new one,
//! never a mix or an empty file; and a reservation of that space taken before a step that
//! cannot be undone, for when the disk fills up. Reads that a FIFO cannot hang and a huge file
//! cannot flood. The exclusive lock file that serialises a read-change-save of such a file,
//! waited for without blocking and never past a deadline. Where symlinks lead, whether a
//! folder is writable, who may read a file, and running out of file descriptors said as such.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, atomically and durably, with the given mode. When `backup`
/// is set, the previous file (if any) is first kept as `<path>.bak`, also atomically.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, backup: bool) -> io::Result<()> {
    remove_stale_temps(path);
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
        // The umask may have narrowed the mode given at creation. Set while the file is
        // still this process's: given away first, root without CAP_FOWNER could not.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        keep_owner(&f, path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if backup {
            keep_backup(path, mode)?;
        }
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files of `path` that a writer killed before its rename left behind: those
/// of processes that are gone, and those of this process's PID (an earlier process that had
/// it, as in a container, or this one's own failed write). A live writer's temp is kept.
pub fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let dir = folder_of(path);
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    let own = std::process::id();
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else {
            continue;
        };
        // `.<name>.<pid>.<random>.tmp`, or `.<name>.bak.<pid>.tmp` for a backup's link.
        let pid = rest.split('.').find_map(|p| p.parse::<u32>().ok());
        if pid.is_none_or(|p| p == own || !process_alive(p)) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Whether a process with this PID exists (one of another user counts).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; kill only reports whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Gives `f`, a file this process made for `path` (its temp, its pending copy, its lock), the
/// owner of `path` as it is, when this process runs as root; a file not there yet takes the
/// owner of the file it goes with (`state.json` for `state.json.window`), else of its folder.
/// A hand run with sudo beside a service's would otherwise leave root's files where the
/// service's user can no longer read or replace them. Where root may not give files away
/// (NFS with root_squash), the file is still written, as root's, and that is said once.
fn keep_owner(f: &File, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let like = [path.to_path_buf(), path.with_extension(""), folder_of(path)]
        .iter()
        .find_map(|p| fs::metadata(p).ok());
    let Some(like) = like else {
        return Ok(());
    };
    let mine = f.metadata()?;
    if (mine.uid(), mine.gid()) == (like.uid(), like.gid()) {
        return Ok(());
    }
    if let Err(e) = std::os::unix::fs::fchown(f, Some(like.uid()), Some(like.gid())) {
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!(file = %path.display(), owner = like.uid(), error = %describe(&e), "cannot give the files written as root to the owner of the ones they replace; they stay root's");
        }
    }
    Ok(())
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

/// One name for the file `path` leads to, however it is spelled: its symlinks followed, then
/// as [`name_identity`]. Two settings that name one file compare equal by it.
pub fn identity(path: &Path) -> PathBuf {
    name_identity(&resolve_links(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// One name for `path` itself, however it is spelled: made absolute, its folder made
/// canonical where it exists (`..`, `.` and linked folders resolved) or taken apart by hand
/// where it does not; a symlink in its last part is kept, for files whose save replaces the
/// link rather than what it leads to.
pub fn name_identity(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match path.file_name() {
        Some(name) => fs::canonicalize(folder_of(&path))
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| lexical(&path)),
        None => lexical(&path),
    }
}

/// `path` without its `.` parts, each `..` taking away the part before it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Creates and removes a file in `dir`: the only sure test that this user can write there
/// (permission bits do not tell about ACLs, read-only mounts or another owner).
pub fn probe_writable(dir: &Path) -> Result<(), String> {
    probe_folder(dir).map_err(|e| e.to_string())
}

/// Why a folder did not take a new file.
#[derive(Debug)]
pub enum ProbeError {
    Missing(PathBuf),
    NotAFolder(PathBuf),
    Create(PathBuf, io::Error),
}

impl ProbeError {
    /// Whether it failed only for want of a file descriptor: no fault of the folder.
    pub fn out_of_descriptors(&self) -> bool {
        matches!(self, ProbeError::Create(_, e) if out_of_descriptors(e))
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Missing(d) => write!(f, "the folder {} does not exist", d.display()),
            ProbeError::NotAFolder(d) => write!(f, "{} is not a folder", d.display()),
            ProbeError::Create(d, e) => {
                write!(
                    f,
                    "cannot create a file in {}: {}",
                    d.display(),
                    describe(e)
                )
            }
        }
    }
}

/// [`probe_writable`], with the reason as a value.
pub fn probe_folder(dir: &Path) -> Result<(), ProbeError> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            ProbeError::NotAFolder(dir.to_path_buf())
        } else {
            ProbeError::Missing(dir.to_path_buf())
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
        .map_err(|e| ProbeError::Create(dir.to_path_buf(), e))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Whether `dir` has room for `size` more bytes: allocated in a temp file, which is removed.
/// Not a reservation (another writer may take the room meanwhile), but it finds a full disk
/// before a run spends requests it could not remember.
pub fn probe_space(dir: &Path, size: u64) -> io::Result<()> {
    let probe = dir.join(format!(
        ".volvo-collect-space.{}.{}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&probe)?;
    let allocated = allocate(&file, size);
    drop(file);
    let _ = fs::remove_file(&probe);
    allocated
}

/// Whether an error is the file system being full (or the user's quota used up).
pub fn out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether an error is the process (or the system) running out of file descriptors: a
/// limit of the machine, not a missing or unwritable folder, and worded as such.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// An I/O error for a message: running out of descriptors says which limit it is.
pub fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) => format!(
            "too many open files: this process has used up its file descriptor limit ({}; raise it with LimitNOFILE= or ulimit -n)",
            descriptor_limit().map_or("unknown".to_string(), |n| n.to_string())
        ),
        Some(libc::ENFILE) => "too many open files in the system (fs.file-max is used up)".into(),
        _ => e.to_string(),
    }
}

/// The process's soft limit on open file descriptors (`RLIMIT_NOFILE`).
pub fn descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    (rc == 0).then_some(lim.rlim_cur as u64)
}

/// The fewest descriptors any command needs: standard streams, the runtime's event queue and
/// signal pipe, the configuration, a lock, a file being replaced and a connection.
pub const MIN_DESCRIPTORS: u64 = 16;

/// `EMFILE` when the descriptor limit is below [`MIN_DESCRIPTORS`]: no command could finish.
pub fn enough_descriptors() -> io::Result<()> {
    match descriptor_limit() {
        Some(n) if n < MIN_DESCRIPTORS => Err(io::Error::from_raw_os_error(libc::EMFILE)),
        _ => Ok(()),
    }
}

/// Why a file could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    NotFound,
    /// Something other than a regular file is in its place (a FIFO, a folder, a device).
    NotRegular(&'static str),
    /// Larger than the caller's cap (bytes found, cap).
    TooLarge(u64, u64),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("it does not exist"),
            ReadError::NotRegular(kind) => write!(f, "it is not a regular file but {kind}"),
            ReadError::TooLarge(size, cap) => write!(
                f,
                "it holds {size} bytes, more than the {cap} such a file may hold"
            ),
            ReadError::Io(e) => f.write_str(&describe(e)),
        }
    }
}

/// What stands at `path` (through its links) when it is something other than a regular file
/// ("a folder", "a FIFO", ...); `None` for a regular file or nothing at all.
pub fn not_regular(path: &Path) -> Option<&'static str> {
    let m = fs::metadata(path).ok()?;
    (!m.is_file()).then(|| kind_of(m.file_type()))
}

/// Whether `path` is a mount point of its own (a single file mounted into place, as a
/// container's `-v token.json:...` does): a rename can never replace such a file.
pub fn is_mount_root(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statx fills the zeroed buffer this function owns, from a valid C string.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_SYNC_AS_STAT,
            0,
            &mut stx,
        )
    };
    let root = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if rc == 0 && stx.stx_attributes_mask & root != 0 {
        return stx.stx_attributes & root != 0;
    }
    // Before Linux 5.8: the mount table names it (devices differ for files of an overlay).
    let (Ok(target), Ok(table)) = (
        fs::canonicalize(path),
        fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return false;
    };
    in_mount_table(&target, &table)
}

/// Whether `/proc/self/mountinfo`'s `table` has a mount point at `target`.
fn in_mount_table(target: &Path, table: &str) -> bool {
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| Path::new(&unescape_mount_point(point)) == target)
}

/// A mount point as the mount table writes it: space, tab, newline and backslash as `\ooo`.
fn unescape_mount_point(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8) + (b - b'0')));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What kind of file `t` is, for a message.
fn kind_of(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Reads a whole regular file of at most `cap` bytes. Opened without blocking, and judged by
/// what was opened (not by a look at the path before), so that a FIFO or a device put in its
/// place can neither hang the reader nor feed it without end.
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound,
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(meta.len(), cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    io::Read::read_to_end(&mut io::Read::take(&file, cap + 1), &mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(bytes.len() as u64, cap));
    }
    Ok(bytes)
}

/// Checks that `path`, when it exists, is a regular file this user can read: what a file
/// that the program rewrites by replacement must be.
pub fn check_regular(path: &Path) -> Result<(), ReadError> {
    match read_capped(path, 0) {
        Ok(_) | Err(ReadError::NotFound | ReadError::TooLarge(..)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Space set aside in a file's folder for its next version, taken before something that
/// cannot be undone (a token refresh spends the old refresh token) so that the new version
/// can be written even when the file system fills up meanwhile. It is `<path>.new`,
/// allocated and synced; [`Reserved::commit`] writes the new content into that space and
/// renames it over `path`. Dropped without a commit, the file is removed.
#[derive(Debug)]
pub struct Reserved {
    file: Option<File>,
    path: PathBuf,
    target: PathBuf,
}

/// `path` with `suffix` added to its file name: `token.json` and `.new` give `token.json.new`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `<path>.new`, where the next version of `path` is written before it replaces it.
pub fn pending_path(path: &Path) -> PathBuf {
    with_suffix(path, ".new")
}

/// Sets aside `size` bytes for the next version of `target` (see [`Reserved`]), with the
/// given mode. An earlier `<target>.new` is replaced: callers take care of one that holds
/// something to keep before they reserve.
pub fn reserve(target: &Path, size: u64, mode: u32) -> io::Result<Reserved> {
    let path = pending_path(target);
    let _ = fs::remove_file(&path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)?;
    let reserved = Reserved {
        file: Some(file),
        path,
        target: target.to_path_buf(),
    };
    let f = reserved.file.as_ref().expect("just opened");
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    keep_owner(f, target)?;
    allocate(f, size)?;
    f.sync_all()?;
    // The folder's entry too: when the rename fails later, the file must still be found.
    File::open(folder_of(target))?.sync_all()?;
    Ok(reserved)
}

/// Allocates `size` bytes of real blocks to `f` (posix_fallocate, which glibc emulates by
/// writing where the file system cannot allocate), so that a later write needs no new space.
fn allocate(f: &File, size: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for writing and stays open during the call.
    let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, size as libc::off_t) };
    match rc {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

/// Why a commit did not replace the file.
#[derive(Debug)]
pub enum CommitError {
    /// The new content could not be written: it is nowhere on disk. The reservation is
    /// handed back, its space still set aside, for another try.
    NotWritten(io::Error, Reserved),
    /// The new content is written and synced in the `.new` file (the path given), but it could
    /// not replace the file: it stays there to be taken up later.
    Kept(PathBuf, io::Error),
    /// The new content is in the `.new` file, but it could not be cut to length or synced (the
    /// disk did not confirm it): it stays there, the best place left, to be taken up later (a
    /// reader trims the zeros of the reserved space after it).
    Unsynced(PathBuf, io::Error),
}

/// How often a write into a reservation is tried: a disk's I/O error can pass (a flash card's
/// hiccup), and what is written there may be the only copy of a rotated refresh token.
const WRITE_TRIES: u32 = 3;

/// Writes `bytes` at the start of `f`, cuts it to their length and syncs it; `whole` is set
/// once the bytes are all in the file.
fn write_whole(f: &mut File, bytes: &[u8], whole: &mut bool) -> io::Result<()> {
    io::Seek::seek(f, io::SeekFrom::Start(0))?;
    f.write_all(bytes)?;
    *whole = true;
    f.set_len(bytes.len() as u64)?;
    f.sync_all()
}

impl Reserved {
    /// Writes `bytes` into the reserved space and replaces the target with it (atomically:
    /// rename, then the folder synced). With `backup`, the previous file is first kept as
    /// `<target>.bak` when that is possible (a failure there only warns).
    pub fn commit(mut self, bytes: &[u8], backup: bool) -> Result<(), CommitError> {
        let mut f = self.file.take().expect("a reservation commits once");
        let mut whole = false;
        let mut written = write_whole(&mut f, bytes, &mut whole);
        for _ in 1..WRITE_TRIES {
            if written.is_ok() {
                break;
            }
            written = write_whole(&mut f, bytes, &mut whole);
        }
        if let Err(e) = written {
            if whole {
                // In the file, though perhaps not on the disk yet: better than nowhere.
                return Err(CommitError::Unsynced(std::mem::take(&mut self.path), e));
            }
            // Still set aside, for a later try; dropped, it goes.
            self.file = Some(f);
            return Err(CommitError::NotWritten(e, self));
        }
        drop(f);
        if backup {
            if let Err(e) = keep_backup(&self.target, mode_of(&self.path)) {
                tracing::warn!(file = %self.target.display(), error = %describe(&e), "cannot keep the previous file as .bak; replacing it anyway");
            }
        }
        let path = std::mem::take(&mut self.path);
        if let Err(e) = fs::rename(&path, &self.target) {
            return Err(CommitError::Kept(path, e));
        }
        if let Err(e) = File::open(folder_of(&self.target)).and_then(|d| d.sync_all()) {
            tracing::warn!(file = %self.target.display(), error = %describe(&e), "cannot sync the folder after replacing the file");
        }
        Ok(())
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.file.is_some() && !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Keeps `path` as `<path>.bak`, atomically: a hard link keeps the previous file as it is (no
/// copy, nothing more to sync).
fn keep_backup(path: &Path, mode: u32) -> io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    // The backup holds what the file held (a refresh token): no wider mode than the new file.
    // The previous file shares its inode, and is about to be replaced anyway.
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        // Never narrow the mode of, or link, a folder or a device named by mistake.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {}", path.display(), kind_of(meta.file_type())),
        ));
    }
    let old = meta.permissions().mode() & 0o7777;
    if old & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(old & mode))?;
    }
    let dir = folder_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let bak = dir.join(format!("{name}.bak"));
    let bak_tmp = dir.join(format!(".{name}.bak.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&bak_tmp);
    fs::hard_link(path, &bak_tmp)?;
    fs::rename(&bak_tmp, &bak).inspect_err(|_| {
        let _ = fs::remove_file(&bak_tmp);
    })
}

/// The permission bits of `path`; owner-only when they cannot be read.
fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777)
}

/// Moves `from` (a `.new` file written by an earlier commit that could not rename it) over
/// `to`, keeping the previous `to` as `.bak` when `backup` is set.
pub fn promote(from: &Path, to: &Path, backup: bool) -> io::Result<()> {
    if backup {
        if let Err(e) = keep_backup(to, mode_of(from)) {
            tracing::warn!(file = %to.display(), error = %describe(&e), "cannot keep the previous file as .bak; replacing it anyway");
        }
    }
    fs::rename(from, to)?;
    File::open(folder_of(to))?.sync_all()
}

/// `<path>.lock`, the lock file that guards `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    with_suffix(path, ".lock")
}

/// An exclusive lock on a lock file, released when dropped (or when the process ends, even
/// by a crash, so a killed run never leaves a stale lock). The lock file may carry a short
/// note for the next holder (see [`LockFile::note`]).
#[derive(Debug)]
pub struct LockFile {
    file: File,
}

impl LockFile {
    /// Leaves `text` in the lock file for later holders (best effort: the lock file is small
    /// and a full disk only loses the note).
    pub fn note(&self, text: &str) {
        use std::os::unix::fs::FileExt;
        let _ = self
            .file
            .write_all_at(text.as_bytes(), 0)
            .and_then(|()| self.file.set_len(text.len() as u64));
    }

    /// The note an earlier holder left, if any.
    pub fn noted(&self) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        let n = self.file.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Why a lock could not be taken; the callers word (and weigh) them differently.
#[derive(Debug)]
pub enum LockError {
    /// The lock file cannot be created or opened: its folder is missing or not writable, or
    /// the process is out of file descriptors ([`out_of_descriptors`]).
    Create(io::Error),
    /// The file system refused the lock.
    Lock(io::Error),
    /// Another process held the lock until the deadline.
    Held(Holder),
}

/// Who holds a lock, as far as `/proc/locks` tells.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub pid: Option<u32>,
    /// The holder's command name (`/proc/PID/comm`).
    pub command: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, &self.command) {
            (Some(pid), Some(c)) => write!(f, "process {pid} ({c})"),
            // The kernel names the process that took the lock; a child it started (`flock
            // FILE sleep`, a shell's background job) keeps holding it after it has ended.
            (Some(pid), None) if !process_alive(pid) => write!(
                f,
                "a process that process {pid} (now ended) started or passed it to"
            ),
            (Some(pid), None) => write!(f, "process {pid}"),
            _ => f.write_str("another process"),
        }
    }
}

impl LockError {
    /// One line naming the lock file and, for a lock held too long, its holder.
    pub fn describe(&self, lock_path: &Path) -> String {
        match self {
            LockError::Create(e) => format!(
                "cannot open the lock file {}: {}",
                lock_path.display(),
                describe(e)
            ),
            LockError::Lock(e) => format!("cannot lock {}: {}", lock_path.display(), describe(e)),
            LockError::Held(holder) => format!(
                "the lock file {} is held by {holder}, which did not release it before the run's deadline (see `fuser -v {}`)",
                lock_path.display(),
                lock_path.display()
            ),
        }
    }
}

/// Opens (creating it 0600 when missing) a lock file, without blocking on whatever is there.
fn open_lock_file(lock_path: &Path) -> Result<File, LockError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        // A lock file is this program's own: a symlink in its place could lead the notes
        // written into it onto any file, a token among them.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(lock_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => LockError::Create(io::Error::other(
                "it is a symbolic link, which a lock file must not be: remove it",
            )),
            _ => LockError::Create(e),
        })?;
    let locked = lock_path.with_extension("");
    match file.metadata() {
        Ok(m) if m.is_file() => keep_owner(&file, &locked)
            .map(|()| file)
            .map_err(LockError::Create),
        Ok(m) => Err(LockError::Create(io::Error::other(format!(
            "it is {}, not a regular file",
            kind_of(m.file_type())
        )))),
        Err(e) => Err(LockError::Create(e)),
    }
}

/// Opens (creating it when missing) a lock file without locking it: whether it can be used.
pub fn check_lock_file(lock_path: &Path) -> Result<(), LockError> {
    open_lock_file(lock_path).map(drop)
}

/// Takes the exclusive lock on `lock_path` (created 0600 when missing), waiting while another
/// process holds it, but never past `deadline`. The wait polls a non-blocking lock, so the
/// runtime's one thread stays free for signals, the listener and other accounts meanwhile.
pub async fn lock_until(
    lock_path: &Path,
    deadline: tokio::time::Instant,
) -> Result<LockFile, LockError> {
    use tokio::time::{sleep_until, Duration, Instant};
    let file = open_lock_file(lock_path)?;
    let mut step = Duration::from_millis(5);
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(LockFile { file }),
            Err(fs::TryLockError::Error(e)) => return Err(LockError::Lock(e)),
            Err(fs::TryLockError::WouldBlock) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LockError::Held(holder(&file)));
        }
        if !said && step >= Duration::from_millis(320) {
            said = true;
            tracing::info!(lock = %lock_path.display(), holder = %holder(&file), "waiting for a lock another process holds");
        }
        sleep_until((now + step).min(deadline)).await;
        step = (step * 2).min(Duration::from_millis(500));
    }
}

/// Who holds a lock on `file`, from `/proc/locks` (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INO
/// ...`, device numbers in hex).
fn holder(file: &File) -> Holder {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else {
        return Holder::default();
    };
    let dev = meta.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let pid = fs::read_to_string("/proc/locks").ok().and_then(|text| {
        text.lines()
            .filter(|l| !l.contains("->"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 5 && f[5] == wanted)
            .and_then(|f| f[4].parse::<u32>().ok())
    });
    let command = pid
        .and_then(|p| fs::read_to_string(format!("/proc/{p}/comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    Holder { pid, command }
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

    /// A holder whose process has ended is named as what it is: the lock is held by a process
    /// it started, not by a PID that no longer exists.
    #[test]
    fn a_holder_that_has_ended_is_not_named_as_the_holder() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let said = Holder {
            pid: Some(gone),
            command: None,
        }
        .to_string();
        assert_eq!(
            said,
            format!("a process that process {gone} (now ended) started or passed it to")
        );
        let me = std::process::id();
        let alive = Holder {
            pid: Some(me),
            command: None,
        };
        assert_eq!(alive.to_string(), format!("process {me}"));
    }

    /// A lock file is never opened through a symlink: the notes written into it would land
    /// wherever the link leads.
    #[test]
    fn a_lock_file_is_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("token.json");
        std::fs::write(&victim, "{}").unwrap();
        let lock = dir.path().join("state.json.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        match check_lock_file(&lock) {
            Err(LockError::Create(e)) => assert!(e.to_string().contains("symbolic link"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "{}");
    }

    #[test]
    fn replaces_with_mode_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        write_atomic(&p, b"one", 0o600, true).unwrap();
        assert!(!dir.path().join("token.json.bak").exists());
        write_atomic(&p, b"two", 0o600, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read(dir.path().join("token.json.bak")).unwrap(), b"one");
        // A previous file open to others leaves a backup as closed as the new file.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&p, b"three", 0o600, true).unwrap();
        let bak = fs::metadata(dir.path().join("token.json.bak")).unwrap();
        assert_eq!(bak.permissions().mode() & 0o777, 0o600);
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

    /// Guards the folders against temps of killed writers: only the token's were removed,
    /// so a state or textfile write killed before its rename left its temp for good.
    #[test]
    fn temps_of_gone_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("volvo.prom");
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let own = std::process::id();
        let names = [
            format!(".volvo.prom.{gone_pid}.77.tmp"),
            format!(".volvo.prom.{own}.78.tmp"),
            format!(".volvo.prom.bak.{gone_pid}.tmp"),
            ".volvo.prom.1.79.tmp".to_string(),
            ".other.prom.5.80.tmp".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), "x").unwrap();
        }
        write_atomic(&p, b"new", 0o644, false).unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // PID 1 is alive; another file's temps are not this file's to judge.
        assert_eq!(
            left,
            [".other.prom.5.80.tmp", ".volvo.prom.1.79.tmp", "volvo.prom"]
        );
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

    /// Guards the older kernels' way of finding a file mounted on its own: the mount table,
    /// its escapes read back (an overlay's device numbers would mislead).
    #[test]
    fn the_mount_table_is_read_as_the_kernel_writes_it() {
        let table =
            "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                     37 36 98:0 /x /srv/token.json rw - ext4 /dev/sda1 rw\n";
        assert!(in_mount_table(Path::new("/mnt/with space"), table));
        assert!(in_mount_table(Path::new("/srv/token.json"), table));
        assert!(!in_mount_table(Path::new("/srv"), table));
        assert_eq!(unescape_mount_point("a\\134b\\011c"), "a\\b\tc");
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

    fn soon(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn lock_is_exclusive_until_dropped_and_a_wait_ends_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let p = lock_path(&dir.path().join("token.json"));
        assert_eq!(p, dir.path().join("token.json.lock"));
        let held = lock_until(&p, soon(1000)).await.unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Another open file description (as another process has) must wait, up to its deadline.
        let t0 = std::time::Instant::now();
        match lock_until(&p, soon(300)).await {
            Err(LockError::Held(h)) => {
                assert_eq!(h.pid, Some(std::process::id()), "{h}");
                let text = LockError::Held(h).describe(&p);
                assert!(text.contains(&p.display().to_string()), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
        held.note("1234");
        drop(held);
        let again = lock_until(&p, soon(1000)).await.unwrap();
        assert_eq!(again.noted().as_deref(), Some("1234"));
    }

    #[tokio::test]
    async fn lock_in_a_missing_folder_or_on_a_fifo_is_a_create_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("token.json.lock");
        assert!(matches!(
            lock_until(&p, soon(100)).await,
            Err(LockError::Create(_))
        ));
        let fifo = dir.path().join("fifo.lock");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            lock_until(&fifo, soon(100)).await,
            Err(LockError::Create(_))
        ));
    }

    #[test]
    fn capped_reads_refuse_fifos_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("state.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Would hang for good with a blocking open.
        assert!(matches!(
            read_capped(&fifo, 100),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        let big = dir.path().join("big");
        fs::write(&big, vec![b' '; 101]).unwrap();
        assert!(matches!(
            read_capped(&big, 100),
            Err(ReadError::TooLarge(101, 100))
        ));
        assert_eq!(read_capped(&big, 101).unwrap().len(), 101);
        assert!(matches!(
            read_capped(&dir.path().join("none"), 1),
            Err(ReadError::NotFound)
        ));
    }

    #[test]
    fn a_reservation_commits_into_its_space_or_keeps_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token.json");
        fs::write(&p, b"old").unwrap();
        let r = reserve(&p, 16384, 0o600).unwrap();
        let new = pending_path(&p);
        assert_eq!(fs::metadata(&new).unwrap().len(), 16384);
        r.commit(b"new", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read(dir.path().join("token.json.bak")).unwrap(), b"old");
        assert!(!new.exists());
        // Dropped unused: nothing is left.
        drop(reserve(&p, 4096, 0o600).unwrap());
        assert!(!new.exists());
        // A target that cannot be replaced (a folder with something in it): the new content
        // stays in `.new`, complete.
        let stuck = dir.path().join("stuck");
        fs::create_dir_all(stuck.join("x")).unwrap();
        match reserve(&stuck, 4096, 0o600).unwrap().commit(b"pair", false) {
            Err(CommitError::Kept(kept, _)) => {
                assert_eq!(kept, pending_path(&stuck));
                assert_eq!(fs::read(&kept).unwrap(), b"pair");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn descriptor_errors_say_what_they_are() {
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(out_of_descriptors(&e));
        assert!(
            describe(&e).starts_with("too many open files"),
            "{}",
            describe(&e)
        );
        assert!(!out_of_descriptors(&io::Error::from_raw_os_error(
            libc::ENOENT
        )));
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
