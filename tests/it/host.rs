//! The machine under the collector misbehaving, through the real binary and simulator: a token
//! folder that is full (a small tmpfs, mounted by the test when it runs as root, as CI does),
//! locks that another process holds, a state that cannot be saved, odd files in place of the
//! state and window files, and the small things such a machine shows up (a far-future quota
//! reset, configuration errors, remote write against a receiver that never answers).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A small tmpfs mounted on a temporary folder, unmounted when dropped. Mounting needs root:
/// run as another user, the test fails saying so (it never passes untested).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(test: &str, options: &str) -> Tmpfs {
        assert!(
            is_root(),
            "{test}: mounting a tmpfs needs root: run the tests as root, as CI does"
        );
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs -o {options} failed");
        Tmpfs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the file system to the last byte with a file of zeros.
    fn fill(&self) {
        let mut f = File::create(self.path("filler")).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.sync_all();
        // The last partial block, byte by byte.
        while f.write(&[0]).is_ok_and(|n| n == 1) {}
    }

    fn free(&self) {
        std::fs::remove_file(self.path("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A workspace whose token (and, by default, state) lives in `folder`.
fn workspace_with_token_in(sim: &Sim, folder: &Path, rest: &str) -> Workspace {
    let ws = Workspace::new(sim, &format!("vins = [\"{BEV}\"]"), rest);
    let token = folder.join("token.json");
    std::fs::copy(ws.path("token.json"), &token).unwrap();
    std::fs::remove_file(ws.path("token.json")).unwrap();
    let config = ws.read("collector.toml").replacen(
        "token_file = \"token.json\"",
        &format!("token_file = {:?}", token.to_str().unwrap()),
        1,
    );
    ws.write("collector.toml", &config);
    ws
}

/// Sets the workspace's `state_file` to `state` (the token stays where it is).
fn keep_state_in(ws: &Workspace, state: &Path) {
    let config = ws.read("collector.toml").replacen(
        "token_file = \"token.json\"",
        &format!(
            "token_file = \"token.json\"\nstate_file = {:?}",
            state.to_str().unwrap()
        ),
        1,
    );
    ws.write("collector.toml", &config);
}

fn token_in(folder: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("token.json")).unwrap()).unwrap()
}

/// Guards the login against a full disk: with the token's folder full before the run, the
/// refresh is not sent at all (no refresh token spent), the run says so and exits 75, and once
/// space is freed the next run refreshes with the same token, without `invalid_grant`. It used
/// to send the refresh, fail to save the rotated token (exit 77) and need a new login.
#[test]
fn a_full_token_folder_spends_no_refresh_token() {
    let fs = Tmpfs::mount(
        "a_full_token_folder_spends_no_refresh_token",
        "size=512k,mode=0700",
    );
    let sim = Sim::start(&[]);
    let ws = workspace_with_token_in(&sim, fs.dir.path(), "");
    // The state elsewhere: a full state folder stops the run before the token is looked at.
    let state = ws.path("state.json");
    let config = ws.read("collector.toml").replacen(
        "[volvo]",
        &format!("[volvo]\nstate_file = {:?}", state.to_str().unwrap()),
        1,
    );
    ws.write("collector.toml", &config);
    let before = token_in(fs.dir.path());
    fs.fill();

    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, "No space left on device");
    assert_stderr_contains(&o, "the refresh token stays valid");
    assert_eq!(sim.stats()["refreshes"], 0, "a refresh was sent");
    assert_eq!(token_in(fs.dir.path()), before);

    fs.free();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0);
    assert_ne!(
        token_in(fs.dir.path())["refresh_token"],
        before["refresh_token"]
    );
}

/// Guards the rotated token when the disk fills while the refresh is on its way: the space
/// for the new pair was set aside before the request, so the pair is saved anyway, and the
/// next run refreshes with it (no `invalid_grant`). It used to fail to save (exit 77).
#[test]
fn a_token_folder_that_fills_during_the_refresh_keeps_the_rotated_token() {
    let fs = Tmpfs::mount(
        "a_token_folder_that_fills_during_the_refresh_keeps_the_rotated_token",
        "size=512k,mode=0700",
    );
    let sim = Sim::start(&[]);
    let ws = workspace_with_token_in(&sim, fs.dir.path(), "");
    let before = token_in(fs.dir.path());
    // Volvo ID rotates at once but answers 2 s later: the disk fills meanwhile.
    sim.faults(
        json!([{"path": "/as/token.oauth2", "delay_ms": 2000, "pass_through": true, "times": 1}]),
    );
    let run = ws
        .command(&["--once", "--stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while sim.requests("/as/token.oauth2").is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no refresh arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    fs.fill();
    let o = run.wait_with_output().unwrap();
    assert_ne!(code(&o), 77, "{}", stderr(&o));
    let after = token_in(fs.dir.path());
    assert_ne!(
        after["refresh_token"],
        before["refresh_token"],
        "the rotated token was not saved: {}",
        stderr(&o)
    );

    fs.free();
    let mut t = token_in(fs.dir.path());
    t["expires_at"] = (unix_now() - 10).into();
    std::fs::write(fs.path("token.json"), t.to_string()).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["refreshes"], 2);
    assert_eq!(sim.stats()["invalid_grants"], 0);
}

/// Guards the pair a save could not move into place: left in `token.json.new` (beside an
/// older, spent pair in `token.json`), it is what the next run refreshes with. Without it the
/// next run would present the spent refresh token and get `invalid_grant`.
#[test]
fn a_rotated_pair_left_beside_the_token_file_is_taken_up() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let spent = ws.read("token.json");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // As a save whose rename failed leaves it: the new pair (with the unused end of its
    // reserved space) in `.new`, the spent one still in the token file.
    // Both due for a refresh, the new pair the later one.
    let mut fresh = ws.token();
    fresh["expires_at"] = (unix_now() - 10).into();
    let mut bytes = fresh.to_string().into_bytes();
    bytes.resize(bytes.len() + 4096, 0);
    std::fs::write(ws.path("token.json.new"), &bytes).unwrap();
    let mut old: Value = serde_json::from_str(&spent).unwrap();
    old["expires_at"] = (unix_now() - 100).into();
    ws.write("token.json", &old.to_string());

    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0, "{}", stderr(&o));
    assert!(!ws.path("token.json.new").exists());
    assert_eq!(sim.stats()["refreshes"], 2);
    assert_ne!(ws.token()["refresh_token"], fresh["refresh_token"]);
}

// ---- locks ---------------------------------------------------------------------------------

/// Holds an exclusive lock on `path` (as another run would) until dropped.
fn hold_lock(path: &Path) -> File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    f.lock().unwrap();
    f
}

/// How long a lock is held in these tests: far longer than any run's deadline in them.
const HELD: Duration = Duration::from_secs(25);

/// Runs `cmd` with its standard error in a file; kills it after [`HELD`]. Returns the output
/// and how long it ran.
fn timed(mut cmd: Command) -> (Output, Duration) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > HELD {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = t0.elapsed();
    let mut err = Vec::new();
    File::open(log.path())
        .unwrap()
        .read_to_end(&mut err)
        .unwrap();
    (
        Output {
            status,
            stdout: Vec::new(),
            stderr: err,
        },
        took,
    )
}

const SHORT: &str = "[collect]\ntimeout = \"3s\"\n";

/// The one-line summary a failed `--once` prints last: it must lead with what matters.
fn summary(o: &Output) -> String {
    stderr(o)
        .lines()
        .rfind(|l| l.starts_with("volvo-collect: "))
        .unwrap_or_default()
        .to_string()
}

/// Guards the run's deadline against a held state lock: with another process holding
/// `token.state.json.lock`, `--once` with a 3 s timeout ends well before the lock is let go
/// (it waited 24.7 s on the runtime's only thread), exits 75, and names the lock file. And
/// `check` likewise.
#[test]
fn a_held_state_lock_ends_the_run_and_check_at_their_deadline() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), SHORT);
    let lock = ws.path("token.state.json.lock");
    let _held = hold_lock(&lock);

    let (o, took) = timed(ws.command(&["--once", "--stdout"]));
    assert!(took < HELD / 2, "the run took {took:?}: {}", stderr(&o));
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, &lock.display().to_string());
    assert_stderr_contains(&o, &format!("held by process {}", std::process::id()));
    assert!(
        summary(&o).contains(&lock.display().to_string()),
        "{}",
        stderr(&o)
    );

    let (o, took) = timed(ws.command(&["check"]));
    assert!(took < HELD / 2, "check took {took:?}: {}", stdout(&o));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

/// Guards the save's grace against the run's deadline: with the minute window off, nothing
/// but the save waits for the state's lock, and a run of one second that collected quickly
/// still ends by its deadline (the save waited two seconds past the end of collection, to
/// 2.1 s) and says the state was not kept.
#[test]
fn the_save_waits_for_a_held_lock_no_longer_than_the_run() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[collect]\ntimeout = \"1s\"\nrequests_per_minute = 0\n",
    );
    let _held = hold_lock(&ws.path("token.state.json.lock"));

    let (o, took) = timed(ws.command(&["--once", "--stdout"]));
    assert!(took < Duration::from_millis(1700), "the run took {took:?}");
    assert_stderr_contains(&o, "this run's request counts and answers are not kept");
    // Collected and delivered, not kept: partial.
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

/// The same for the token's lock: the run ends at its deadline naming `token.json.lock`, with
/// no refresh sent, and `check` ends at its own deadline naming it too.
#[test]
fn a_held_token_lock_ends_the_run_and_check_at_their_deadline() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), SHORT);
    let lock = ws.path("token.json.lock");
    let _held = hold_lock(&lock);

    let (o, took) = timed(ws.command(&["--once", "--stdout"]));
    assert!(took < HELD / 2, "the run took {took:?}: {}", stderr(&o));
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(
        summary(&o).contains(&lock.display().to_string()),
        "{}",
        stderr(&o)
    );
    assert_eq!(sim.stats()["refreshes"], 0);

    let mut cmd = ws.command(&["check"]);
    let out = tempfile::NamedTempFile::new().unwrap();
    cmd.stdout(out.reopen().unwrap()).stderr(Stdio::null());
    let t0 = Instant::now();
    let status = cmd.status().unwrap();
    assert!(t0.elapsed() < HELD / 2, "check took {:?}", t0.elapsed());
    let text = std::fs::read_to_string(out.path()).unwrap();
    assert!(status.code().is_some(), "{text}");
    assert!(
        text.contains(&lock.display().to_string()),
        "check does not name the lock:\n{text}"
    );
}

/// Guards SIGTERM while a run waits for a held lock: it ends at once (exit 75), not when the
/// lock is let go (it took 17.7 s).
#[test]
fn sigterm_is_prompt_while_a_lock_is_held() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[collect]\ntimeout = \"60s\"\n",
    );
    let _held = hold_lock(&ws.path("token.state.json.lock"));
    let mut run: Child = ws
        .command(&["--once", "--stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The token step is over when the refresh has been answered; the run then waits for the
    // state's lock.
    let t0 = Instant::now();
    while sim.stats()["refreshes"] == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no refresh");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(run.try_wait().unwrap().is_none(), "the run did not wait");
    let sent = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t1 = Instant::now();
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(
            t1.elapsed() < HELD / 2,
            "still running {:?} after SIGTERM",
            t1.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(75));
}

/// Guards the long-running mode's health check while a collection waits for a held lock: it
/// keeps answering (it stopped answering for as long as the lock was held).
#[test]
fn the_health_check_answers_while_a_collection_waits_for_a_lock() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[collect]\ntimeout = \"60s\"\ninterval = \"10s\"\n",
    );
    let _held = hold_lock(&ws.path("token.state.json.lock"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = ws
        .command(&["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let healthy = format!("http://127.0.0.1:{port}/-/healthy");
    let t0 = Instant::now();
    // Until the collection is waiting for the lock (the log says so).
    while !std::fs::read_to_string(log.path())
        .unwrap()
        .contains("waiting for a lock")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{}",
            std::fs::read_to_string(log.path()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..5 {
        let r = http.get(&healthy).send();
        assert!(
            r.as_ref().is_ok_and(|r| r.status() == 200),
            "/-/healthy while a collection waits: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = server.kill();
    let _ = server.wait();
}

// ---- the state and window files --------------------------------------------------------------

/// Guards the quota against a state that cannot be saved: with the state's folder read-only,
/// the run stops before any request (no refresh, no API call) with exit 78 naming the state
/// file. It used to start cold every run (88 requests) and exit 0 with a warning.
#[test]
fn a_state_that_cannot_be_saved_stops_the_run_before_any_request() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let ro = ws.path("ro");
    std::fs::create_dir(&ro).unwrap();
    // Root passes permission bits: a read-only mount then; another user, a read-only folder.
    let _mount;
    if is_root() {
        _mount = Tmpfs::mount("a_state_that_cannot_be_saved", "ro,size=64k");
        keep_state_in(&ws, &_mount.path("state.json"));
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let config = ws.read("collector.toml").replacen(
            "token_file = \"token.json\"",
            "token_file = \"token.json\"\nstate_file = \"ro/state.json\"",
            1,
        );
        ws.write("collector.toml", &config);
    }
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "state.json cannot be saved");
    let stats = sim.stats();
    assert_eq!(stats["refreshes"], 0);
    assert!(sim.gets().is_empty(), "requests were made: {stats}");
}

/// Guards the quota and Volvo's minute against a full state folder: the run stops before any
/// request (exit 75, naming the folder), and a disk that fills during a run fails the run
/// rather than passing with a warning. It used to exit 0 and start every run cold (84
/// requests a run), and a second run in the same minute drew 174 429s.
#[test]
fn a_full_state_folder_stops_the_run_before_any_request() {
    let fs = Tmpfs::mount("a_full_state_folder", "size=512k");
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    keep_state_in(&ws, &fs.path("state.json"));
    fs.fill();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, "no room for the state in");
    assert_eq!(sim.stats()["refreshes"], 0);
    assert!(sim.gets().is_empty(), "requests were made");

    // Room at the start, none at the end: the run says its state is lost and fails.
    fs.free();
    sim.faults(json!([{"path": "/odometer", "delay_ms": 1500, "pass_through": true, "times": 1}]));
    let run = ws
        .command(&["--once", "--stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while sim.requests("/odometer").is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no odometer request"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fs.fill();
    let o = run.wait_with_output().unwrap();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_stderr_contains(&o, "cannot save the state file");
    assert_stderr_contains(&o, "the next run asks like a first one");
}

/// Guards a service's files against a hand run as root (`sudo volvo-collect --once`): every
/// file it wrote (the token and its backup, the state, window and day files, the locks) became
/// root's, and the service's next run exited 78, then 77, until someone ran chown. As root,
/// a file keeps the owner of the file it replaces, or takes its folder's.
#[test]
fn a_run_as_root_leaves_the_services_files_to_the_service() {
    use std::os::unix::fs::MetadataExt;
    assert!(
        is_root(),
        "a run as root leaves files to their owner: run the tests as root, as CI does"
    );
    const SERVICE: u32 = 65_534;
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    keep_state_in(&ws, &ws.path("token.state.json"));
    for name in [".", "token.json", "collector.toml"] {
        std::os::unix::fs::chown(ws.path(name), Some(SERVICE), Some(SERVICE)).unwrap();
    }
    for _ in 0..2 {
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(ws.path(".")).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        names.push(e.file_name().to_string_lossy().into_owned());
        assert_eq!(
            (meta.uid(), meta.gid()),
            (SERVICE, SERVICE),
            "{} is root's",
            e.path().display()
        );
    }
    for written in [
        "token.json.bak",
        "token.state.json",
        "token.state.json.lock",
        "token.json.lock",
    ] {
        assert!(
            names.iter().any(|n| n == written),
            "no {written}: {names:?}"
        );
    }

    // `sudo volvo-collect check` refreshes an expired token too, and leaves it the service's.
    let mut token: serde_json::Value = serde_json::from_str(&ws.read("token.json")).unwrap();
    token["expires_at"] = 0.into();
    ws.write("token.json", &token.to_string());
    std::os::unix::fs::chown(ws.path("token.json"), Some(SERVICE), Some(SERVICE)).unwrap();
    let refreshes = sim.stats()["refreshes"].as_i64().unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        sim.stats()["refreshes"].as_i64().unwrap(),
        refreshes + 1,
        "{}",
        stdout(&o)
    );
    let meta = std::fs::metadata(ws.path("token.json")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (SERVICE, SERVICE));
}

/// Guards recovery from a save killed before its rename on a small disk: its temp filled the
/// state's folder, and every later run exited 75 "no room for the state" although the space
/// was the collector's own leftover (its cleanup ran only after the room was measured). A
/// temp of a process that is gone is removed first; a live writer's temp is kept.
#[test]
fn a_killed_saves_leftover_temp_does_not_fill_the_state_folder_for_good() {
    let fs = Tmpfs::mount("a_killed_saves_leftover_temp", "size=512k");
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    keep_state_in(&ws, &fs.path("state.json"));
    let gone = gone_pid();
    let stale = fs.path(&format!(".state.json.{gone}.77.tmp"));
    let live = fs.path(&format!(".state.json.{}.78.tmp", std::process::id()));
    std::fs::write(&live, "a live writer's").unwrap();
    std::fs::rename(fs.path("state.json"), &stale).ok();
    fs.fill();
    std::fs::rename(fs.path("filler"), &stale).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stale.exists(), "the dead writer's temp is still there");
    assert!(live.exists(), "a live writer's temp was removed");
}

/// The PID of a process that has exited.
fn gone_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Guards the exit code of a folder out of inodes: no file can be made there, which is as
/// temporary as no byte left (75, "free space"), not a configuration error (78).
#[test]
fn a_state_folder_out_of_inodes_is_temporary() {
    let fs = Tmpfs::mount("a_state_folder_out_of_inodes", "size=512k,nr_inodes=32");
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    keep_state_in(&ws, &fs.path("state.json"));
    let mut n = 0;
    while File::create(fs.path(&format!("f{n}"))).is_ok() {
        n += 1;
    }
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, "free space there");
    assert!(sim.gets().is_empty(), "requests were made");
}

/// Guards reading the state safely: a FIFO in place of the state file ends the run at once
/// with exit 78 naming it (it hung the run for good), and an oversized state file (valid, but
/// padded past the cap) is set aside with a warning rather than read whole.
#[test]
fn a_fifo_or_an_oversized_file_in_place_of_the_state_is_no_hang() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), SHORT);
    let state = ws.path("token.state.json");
    let made = Command::new("mkfifo").arg(&state).status().unwrap();
    assert!(made.success());
    let (o, took) = timed(ws.command(&["--once", "--stdout"]));
    assert!(took < HELD / 2, "the run took {took:?}");
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "not a regular file but a FIFO");

    std::fs::remove_file(&state).unwrap();
    let mut padded = b"{\"version\": 1}".to_vec();
    padded.resize(17 << 20, b' ');
    std::fs::write(&state, &padded).unwrap();
    let (o, _) = timed(ws.command(&["--once", "--stdout"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "more than the 16777216");
    assert!(std::fs::metadata(&state).unwrap().len() < 1 << 20);
    let aside = ws.path("token.state.json.damaged");
    assert_eq!(std::fs::metadata(aside).unwrap().len(), 17 << 20);
}

/// Guards Volvo's minute against a damaged or deleted window file: right after a run that used
/// the minute, a run with the window file damaged, then one with it deleted, sends nothing and
/// warns, instead of starting a new window (134 requests in one minute, 34 of them 429).
#[test]
fn a_damaged_or_deleted_window_is_taken_as_a_full_minute() {
    let sim = Sim::start(&["--rate-limit", "100"]);
    let ws = Workspace::new(&sim, "", "[collect]\nrequests_per_minute = 30\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 77, "{}", stderr(&o));
    let first = sim.gets().len();
    assert!(first > 0 && first <= 30, "{first} requests");
    let window = ws.path("token.state.json.window");
    for (what, damage) in [("damaged", Some("{\"sent\": [17")), ("deleted", None)] {
        match damage {
            Some(text) => ws.write("token.state.json.window", text),
            None => std::fs::remove_file(&window).unwrap(),
        }
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(sim.gets().len(), first, "{what}: {}", stderr(&o));
        assert_stderr_contains(&o, "the minute is taken as full");
    }
    let statuses: Vec<Value> = sim.gets().iter().map(|r| r["status"].clone()).collect();
    assert!(!statuses.contains(&json!(429)), "{statuses:?}");
}

/// Guards the verdict of a run that delivered no car: right after a run that filled the
/// minute, a run with the state file deleted has its vehicle list deferred and nothing kept.
/// It delivered 0 cars and said success (exit 0, `run_success 1`, a new last-success time);
/// now it exits 75 with `run_success 0` and says why. A run that only replays what it kept
/// (the list and every car deferred) is no failure and still exits 0.
#[test]
fn a_run_that_delivered_no_car_is_no_success() {
    let sim = Sim::start(&["--rate-limit", "100"]);
    let ws = Workspace::new(&sim, "", "[collect]\nrequests_per_minute = 90\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = stdout(&o);
    assert!(
        !first.contains("volvo_collect_endpoint_deferred{"),
        "{first}"
    );

    // The same minute, with what the first run kept: every car replayed.
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(1.0));
    assert!(
        out.contains("\nvolvo_collect_last_success_timestamp_seconds{"),
        "{out}"
    );
    let asked = sim.gets().len();

    // A smaller minute, already used up by the runs before, and no state kept.
    let config = ws.read("collector.toml");
    ws.write(
        "collector.toml",
        &config.replace("requests_per_minute = 90", "requests_per_minute = 30"),
    );
    std::fs::remove_file(ws.path("token.state.json")).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    let out = stdout(&o);
    assert_eq!(
        sim.gets().len(),
        asked,
        "the minute is full: nothing is sent"
    );
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(0.0), "{out}");
    assert!(
        !out.contains("\nvolvo_collect_last_success_timestamp_seconds{"),
        "{out}"
    );
    assert_stderr_contains(&o, "no car of the account could be read in this run");
}

// ---- small things ------------------------------------------------------------------------------

/// Guards `check --plan` against a fleet it knows: offline, after a run, the plan counts the
/// cars of the account's last vehicle list (kept in the state file) instead of "1 car:
/// assumed".
#[test]
fn check_plan_counts_the_cars_the_state_knows() {
    let sim = Sim::start(&["--cars", "7"]);
    let ws = Workspace::new(&sim, "", "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 77, "{}", stderr(&o));
    let o = ws.run(&["check", "--plan", "--offline"]);
    let text = stdout(&o);
    assert!(
        text.contains("(7 cars: the account's last vehicle list, in the state file)"),
        "{text}"
    );
}

/// Guards the printing of a quota reset far in the future: the run names a date (it printed
/// "used up until ;"), and a countdown no day has is not believed: the pause kept in the state
/// is the hour of an unknown reset (it was a whole day, past Volvo's reset).
#[test]
fn a_far_future_quota_reset_is_printed_and_bounded() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    sim.faults(json!([{
        "path": "/connected-vehicle/",
        "status": 403,
        "body": "{\"statusCode\":403,\"message\":\"Out of call volume quota. Quota will be replenished in 9999999999:00:00.\"}",
    }]));
    let o = ws.run(&["--once", "--stdout"]);
    let err = stderr(&o);
    assert!(err.contains("used up until "), "{err}");
    assert!(!err.contains("used up until ;"), "{err}");
    let state: Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
    let until = state["quota_until"].as_i64().unwrap();
    assert!(until <= unix_now() + 3600 + 60, "{until}");
}

/// Guards configuration errors that toml points at by their first character: a duplicate key
/// is named whole (it was `` `c` ``), and a number too large for its key is shown whole (it was
/// "= 9").
#[test]
fn configuration_errors_name_the_whole_key_and_value() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "client_id = \"again\"", "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert_stderr_contains(&o, "`client_id`: duplicate key");
    let ws = Workspace::new(
        &sim,
        "",
        "[collect]\nrequests_per_minute = 99999999999999999999999\n",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert_stderr_contains(&o, "`requests_per_minute` = 99999999999999999999999:");
}

/// Guards the checks made before anything is asked: an output URL that is not http(s) with a
/// host is refused by its key (file, exit 78) or flag (exit 2) without echoing the URL, which
/// may hold a password; a misspelt table is named as a table; a minute window above Volvo's
/// 100 and a client secret with a space are configuration errors; a secret file other users
/// can read is warned about.
#[test]
fn bad_urls_tables_and_secrets_are_refused_before_any_request() {
    let sim = Sim::start(&[]);
    let pw = "Pa55w0rdInUrl";
    let plain = Workspace::new(&sim, "", "");
    for url in [
        format!("http://user:{pw}@"),
        format!("ftp://user:{pw}@host/"),
        format!("notaurl:{pw}"),
        format!("http:{pw}"),
        format!("http://user:{pw}@host:99999/"),
    ] {
        let ws = Workspace::new(&sim, "", &format!("[output]\npushgateway = \"{url}\"\n"));
        let o = ws.run(&["--once"]);
        assert_eq!(code(&o), 78, "{url}: {}", stderr(&o));
        assert_stderr_contains(&o, "output.pushgateway: not");
        assert!(!stderr(&o).contains(pw), "{url}: {}", stderr(&o));
        for flag in ["--pushgateway", "--remote-write"] {
            let o = plain.run(&["--once", flag, &url]);
            assert_eq!(code(&o), 2, "{flag} {url}: {}", stderr(&o));
            assert_stderr_contains(&o, &format!("{flag}: not"));
            assert!(!stderr(&o).contains(pw), "{flag} {url}: {}", stderr(&o));
        }
    }
    // Volvo's APIs take no credentials in the URL: they would replace the access token, and
    // libraries' debug logs name connections by them.
    let ws = Workspace::new(&sim, "", "");
    let text = ws.read("collector.toml").replace(
        "token_url = \"http://",
        &format!("token_url = \"http://user:{pw}@"),
    );
    ws.write("collector.toml", &text);
    let o = ws
        .command(&["--once", "--stdout"])
        .env("LOG_LEVEL", "trace")
        .output()
        .unwrap();
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "volvo.token_url: holds a user name or password");
    assert!(!stderr(&o).contains(pw), "{}", stderr(&o));
    assert!(sim.gets().is_empty());

    let refused = [
        (
            "",
            "[volvo2]\nx = 1\n",
            "at the top level: unknown table `volvo2`; the tables are `volvo`",
        ),
        (
            "",
            "[collect]\nrequests_per_minute = 500\n",
            "collect.requests_per_minute: 500 is above Volvo's 100",
        ),
        (
            "client_secret = \"demo secret\"",
            "",
            "client_secret: contains a space",
        ),
    ];
    for (volvo, rest, said) in refused {
        let ws = Workspace::new(&sim, "", rest);
        if !volvo.is_empty() {
            let text = ws
                .read("collector.toml")
                .replace("client_secret = \"demo-secret\"", volvo);
            ws.write("collector.toml", &text);
        }
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 78, "{said}: {}", stderr(&o));
        assert_stderr_contains(&o, said);
    }

    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let text = ws.read("collector.toml").replace(
        "client_secret = \"demo-secret\"",
        "client_secret_file = \"secret.txt\"",
    );
    ws.write("collector.toml", &text);
    ws.write("secret.txt", "demo-secret\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ws.path("secret.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "a secret file that other users can read: chmod 600 it");
    std::fs::set_permissions(
        ws.path("secret.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert!(!stderr(&o).contains("a secret file"), "{}", stderr(&o));
}

/// Guards remote write's retry rule: a receiver that takes the request and never answers is
/// tried once (it was tried three times, three times the output's timeout).
#[test]
fn remote_write_does_not_retry_a_timeout() {
    let sim = Sim::start(&[]);
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/push", receiver.local_addr().unwrap());
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[remote_write]\ntimeout = \"1s\"\n",
    );
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in receiver.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(c);
        }
    });
    let o = ws.run(&["--once", "--remote-write", &url]);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "{}",
        stderr(&o)
    );
}
