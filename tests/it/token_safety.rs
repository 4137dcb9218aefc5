//! The rotating refresh token through the real binary: runs started together refresh once and
//! share the result (the token lock), and a run killed at any moment leaves a token file that
//! parses and holds a whole pair, old or new (the atomic save), or the new pair waiting in
//! `token.json.new`, so the next run goes on.
//! Volvo ID kills a refresh token once it is used, so a second use would log the user out.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};

fn run_in_background(ws: &Workspace) -> Child {
    ws.command(&["--once", "--stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start volvo-collect")
}

/// The token file, which must parse, with a refresh token the simulator's shape.
fn token_on_disk(ws: &Workspace) -> Value {
    let text = ws.read("token.json");
    let t: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("token file is not JSON ({e}):\n{text}"));
    let rt = t["refresh_token"].as_str().unwrap_or_default();
    assert!(
        rt.starts_with("sim-rt-") && rt.len() == 39,
        "not a refresh token the simulator issues: {t}"
    );
    let at = t["access_token"].as_str().unwrap_or_default();
    assert!(
        at.starts_with("sim-at-") && at.len() == 39,
        "not an access token the simulator issues: {t}"
    );
    t
}

/// Every token request the simulator saw: (refresh token presented, status).
fn token_requests(sim: &Sim) -> Vec<(String, u64)> {
    sim.requests("/as/token.oauth2")
        .iter()
        .map(|r| {
            (
                r["refresh_token"].as_str().unwrap_or_default().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Whether `token.json.new` holds a whole pair the simulator issued (its unused reserved
/// space, NUL bytes, may follow it).
fn waiting_pair(ws: &Workspace) -> bool {
    let Ok(bytes) = std::fs::read(ws.path("token.json.new")) else {
        return false;
    };
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    serde_json::from_slice::<Value>(&bytes[..end]).is_ok_and(|t| {
        t["refresh_token"]
            .as_str()
            .is_some_and(|rt| rt.starts_with("sim-rt-"))
    })
}

/// No refresh token was presented twice: a reused one is dead at Volvo ID.
fn assert_no_reuse(sim: &Sim) {
    let mut seen = HashSet::new();
    for (rt, _) in token_requests(sim) {
        assert!(
            seen.insert(rt.clone()),
            "refresh token presented twice: {rt}"
        );
    }
    assert_eq!(sim.stats()["invalid_grants"], 0);
}

#[test]
fn eight_runs_started_together_refresh_once() {
    for round in 1..=3 {
        // Latency keeps the refresh in flight while the other runs start and wait on the lock.
        let sim = Sim::start(&["--latency", "100ms"]);
        let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
        let before = ws.token();
        let runs: Vec<Child> = (0..8).map(|_| run_in_background(&ws)).collect();
        for (i, run) in runs.into_iter().enumerate() {
            let o = run.wait_with_output().unwrap();
            assert_eq!(code(&o), 0, "round {round}, run {i}: {}", stderr(&o));
        }
        let stats = sim.stats();
        assert_eq!(
            stats["refreshes"],
            1,
            "round {round}: {:?}",
            token_requests(&sim)
        );
        assert_eq!(stats["invalid_grants"], 0, "round {round}");
        assert_no_reuse(&sim);
        let after = token_on_disk(&ws);
        assert_ne!(
            after["refresh_token"], before["refresh_token"],
            "round {round}"
        );
        assert!(
            after["expires_at"].as_i64().unwrap() > unix_now() + 200,
            "round {round}: {after}"
        );
        // Every run's API calls carried an access token the simulator accepted.
        assert!(
            sim.requests("/connected-vehicle/")
                .iter()
                .all(|r| r["status"] != 401),
            "round {round}"
        );
    }
}

/// Where a killed run left the token.
#[derive(Debug, Default)]
struct Outcomes {
    /// Killed before its refresh reached the simulator: the old pair, still valid.
    before_refresh: u32,
    /// Killed after the rotated pair was saved: the new pair.
    after_save: u32,
    /// Killed after the rotated pair was written into its reserved space but before it
    /// replaced the token file: the next run takes it from `token.json.new`.
    kept: u32,
    /// Killed after the simulator rotated the token but before the new one was on disk: the
    /// protocol's unavoidable window (the new token exists only in the dead process).
    in_flight: u32,
}

#[test]
fn a_killed_run_leaves_a_whole_token_pair() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let mut outcomes = Outcomes::default();
    for i in 0..30 {
        // Expire the access token (keeping the pair), so the run must refresh first.
        let mut t = ws.token();
        t["expires_at"] = (unix_now() - 10).into();
        ws.write("token.json", &t.to_string());
        let before = ws.token();
        let old_rt = before["refresh_token"].as_str().unwrap().to_string();

        let mut run = run_in_background(&ws);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..=40)));
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();

        let after = token_on_disk(&ws);
        if ws.path("token.json.bak").exists() {
            let bak: Value = serde_json::from_str(&ws.read("token.json.bak"))
                .unwrap_or_else(|e| panic!("iteration {i}: the .bak is not JSON: {e}"));
            assert!(bak["refresh_token"]
                .as_str()
                .is_some_and(|s| s.starts_with("sim-rt-")));
        }
        let rotated_old = token_requests(&sim)
            .iter()
            .any(|(rt, status)| *rt == old_rt && *status == 200);
        if after["refresh_token"] == before["refresh_token"] {
            assert_eq!(after, before, "iteration {i}: a mixed pair");
            if rotated_old && waiting_pair(&ws) {
                outcomes.kept += 1;
            } else if rotated_old {
                outcomes.in_flight += 1;
                // That refresh token is spent: start again from a new login's pair.
                ws.write("token.json", &sim.token(true).to_string());
                continue;
            } else {
                outcomes.before_refresh += 1;
            }
        } else {
            assert!(
                rotated_old,
                "iteration {i}: a new pair without a refresh at the simulator"
            );
            assert_ne!(
                after["access_token"], before["access_token"],
                "iteration {i}: a mixed pair"
            );
            assert!(
                after["expires_at"].as_i64().unwrap() > unix_now() + 200,
                "iteration {i}: {after}"
            );
            outcomes.after_save += 1;
        }

        // A later run goes on from what is on disk.
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "iteration {i} ({outcomes:?}): {}", stderr(&o));
        assert_eq!(sim.stats()["invalid_grants"], 0, "iteration {i}");
    }
    // The last pair refreshes once more, so every saved refresh token was usable.
    let mut t = ws.token();
    t["expires_at"] = (unix_now() - 10).into();
    ws.write("token.json", &t.to_string());
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_no_reuse(&sim);
    eprintln!("killed runs: {outcomes:?}");
    assert_eq!(
        outcomes.before_refresh + outcomes.after_save + outcomes.kept + outcomes.in_flight,
        30
    );
    // How many kills land in the window depends on the disk's fsync time, so it is reported
    // rather than bounded; the kills around it must have been tried too.
    assert!(
        outcomes.before_refresh + outcomes.after_save > 0,
        "{outcomes:?}"
    );
}

/// Guards the backup a refresh keeps: a token file left open to others (0644) was kept as a
/// 0644 `.bak` beside the new 0600 file, so the old refresh token stayed readable.
#[test]
fn a_refresh_keeps_its_backup_as_closed_as_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let token = ws.path("token.json");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["refreshes"], 1);
    for p in [token.clone(), ws.path("token.json.bak")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

/// Guards an access token that cannot be sent: one with a line break in the token file, far
/// from expiring, failed every request of every run (exit 75) until it expired. It is now
/// refreshed first, and the run collects.
#[test]
fn an_access_token_that_cannot_be_sent_is_refreshed() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let mut token = ws.token();
    token["access_token"] = format!("{}\nx", token["access_token"].as_str().unwrap()).into();
    ws.write("token.json", &token.to_string());
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "cannot be sent");
    assert_eq!(sim.stats()["refreshes"], 1);
    assert!(!ws.token()["access_token"].as_str().unwrap().contains('\n'));
}

/// Guards "an API's 401 leads to one refresh": with every API request refused, one run
/// refreshed (rotated) the token twice, the second time for a later round's 401 on the token
/// it had just renewed. Now the renewed token's refusal is believed, and the run says so.
#[test]
fn a_refusal_of_the_renewed_token_is_not_renewed_again() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    // A fresh token: the run's only refresh is the renewal.
    ws.write("token.json", &sim.token(false).to_string());
    let body = json!({"status": 401, "operationId": "a1", "error": {"message": "Unauthorized", "description": "Full authentication is required to access this resource"}});
    sim.faults(json!([{"path": "/v", "status": 401, "body": body, "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["refreshes"], 1, "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("refreshing it once").count(),
        1,
        "{}",
        stderr(&o)
    );
}

/// Guards a token file reached through a symlink by some runs and by its own name by others
/// (a hand run through a link while the service names the file): they share one token, so one
/// lock. Each locked beside the name it was given, both refreshed at once, and the login was
/// lost while one of them said the pair was saved.
#[test]
fn runs_through_a_link_and_by_the_files_name_refresh_once() {
    let sim = Sim::start(&["--latency", "100ms"]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    std::fs::create_dir(ws.path("real")).unwrap();
    std::fs::rename(ws.path("token.json"), ws.path("real/token.json")).unwrap();
    std::os::unix::fs::symlink("real/token.json", ws.path("token.json")).unwrap();
    let by_name = ws.read("collector.toml").replace(
        "token_file = \"token.json\"",
        "token_file = \"real/token.json\"",
    );
    ws.write("by-name.toml", &by_name);
    let runs: Vec<Child> = (0..6)
        .map(|i| {
            let mut c = ws.command(&["--once", "--stdout"]);
            if i % 2 == 1 {
                c = Command::new(BIN);
                c.arg("--config")
                    .arg(ws.path("by-name.toml"))
                    .args(["--once", "--stdout"])
                    .env("LOG_LEVEL", "info")
                    .env_remove("VOLVO_CLIENT_SECRET")
                    .env_remove("VOLVO_API_KEY")
                    .env_remove("CREDENTIALS_DIRECTORY");
            }
            c.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let o = run.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "run {i}: {}", stderr(&o));
    }
    let stats = sim.stats();
    assert_eq!(stats["refreshes"], 1, "{:?}", token_requests(&sim));
    assert_eq!(stats["invalid_grants"], 0);
    assert!(
        std::fs::symlink_metadata(ws.path("token.json"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays"
    );
    let after: Value = serde_json::from_str(&ws.read("real/token.json")).unwrap();
    assert!(
        after["expires_at"].as_i64().unwrap() > unix_now() + 200,
        "{after}"
    );
}

/// Runs `--once` under strace, with `inject` (strace's `-e inject=` syntax) failing the system
/// calls it names, like a flash card's I/O error.
fn run_with_fault(ws: &Workspace, syscall: &str, inject: &str) -> std::process::Output {
    let mut c = Command::new("strace");
    c.args(["-f", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:{inject}"))
        .arg(BIN)
        .arg("--config")
        .arg(ws.path("collector.toml"))
        .args(["--once", "--stdout"])
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null());
    let o = c.output().expect("strace runs (apt-get install strace)");
    assert!(
        !stderr(&o).contains("strace: "),
        "strace could not run: {}",
        stderr(&o)
    );
    o
}

/// Guards the rotated pair against a disk's I/O error while it is saved: a failed write is
/// tried again, and a pair written but not cut to length or synced stays in `.new` for the
/// next run. Either way the login survives (the pair was thrown away, and the run asked for a
/// login that the next run then needed).
#[test]
fn an_io_error_while_the_rotated_pair_is_saved_never_costs_the_login() {
    for (inject, kept) in [("error=EIO:when=1", false), ("error=EIO", true)] {
        let sim = Sim::start(&[]);
        let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
        let o = run_with_fault(&ws, "ftruncate", inject);
        assert_ne!(code(&o), 77, "{inject}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("run `volvo-collect login`"),
            "{inject}: {}",
            stderr(&o)
        );
        assert_eq!(
            ws.path("token.json.new").exists(),
            kept,
            "{inject}: {}",
            stderr(&o)
        );
        assert_eq!(
            stderr(&o).contains("but the disk did not confirm it"),
            kept,
            "{inject}: {}",
            stderr(&o)
        );
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "{inject}, the next run: {}", stderr(&o));
        let stats = sim.stats();
        assert_eq!(stats["refreshes"], 1, "{inject}");
        assert_eq!(stats["invalid_grants"], 0, "{inject}");
        assert!(!ws.path("token.json.new").exists(), "{inject}");
    }
}

/// Guards the one loss of a login no run can prevent, a run killed (SIGKILL, an out-of-memory
/// kill, a power cut) after Volvo ID rotated the refresh token and before the new one was
/// saved: the next run said only "expired or was used already". The killed run's empty
/// reservation (`token.json.new`) tells what happened, and the message says so; without it,
/// the message stays as it was.
#[test]
fn a_login_lost_to_a_killed_refresh_says_so() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let spent = std::fs::read(ws.path("token.json")).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = "an earlier run was most likely killed while it refreshed the token";
    for reservation in [true, false] {
        std::fs::write(ws.path("token.json"), &spent).unwrap();
        if reservation {
            std::fs::write(ws.path("token.json.new"), vec![0u8; 16 * 1024]).unwrap();
        }
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 77, "{}", stderr(&o));
        assert_stderr_contains(&o, "invalid_grant");
        assert_eq!(stderr(&o).contains(said), reservation, "{}", stderr(&o));
        assert!(!ws.path("token.json.new").exists());
    }
}

/// Guards the exit code of a token file that cannot be read for its permissions (another
/// user's, mode 0600): a login would not fix it, so it is the setup's (78, saying whose it
/// must be), not "login needed" (77); a disk's error reading it is temporary (75). The token
/// is untouched either way.
#[test]
fn a_token_file_that_cannot_be_read_says_what_to_fix() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let token = std::fs::read(ws.path("token.json")).unwrap();
    for (error, exit, said) in [
        (
            "EACCES",
            78,
            "(uid 0) may not read it: check its mode (0600) and its folders'",
        ),
        ("EIO", 75, "the next run tries again"),
    ] {
        let o = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-P"])
            .arg(ws.path("token.json"))
            .args(["-e", "trace=openat", "-e"])
            .arg(format!("inject=openat:error={error}"))
            .arg(BIN)
            .arg("--config")
            .arg(ws.path("collector.toml"))
            .args(["--once", "--stdout"])
            .stdout(Stdio::null())
            .output()
            .expect("strace runs (apt-get install strace)");
        assert_eq!(code(&o), exit, "{error}: {}", stderr(&o));
        assert_stderr_contains(&o, "cannot read the token file");
        assert_stderr_contains(&o, said);
        assert!(
            !stderr(&o).contains("volvo-collect login"),
            "{error}: {}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read(ws.path("token.json")).unwrap(), token);
    assert_eq!(sim.stats()["refreshes"], 0);
}

/// Guards the rotated pair against a burst of failed writes (a flash card's or a network
/// file system's hiccup): six failed writes of the pair, within 3 ms, used to throw it away
/// and cost the login. The pair is now tried again in new files over some seconds, and the
/// later tries wait (the first and the last write here are at least 250 ms apart).
#[test]
fn a_burst_of_failed_writes_of_the_rotated_pair_never_costs_the_login() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let trace = ws.path("writes.trace");
    let o = Command::new("strace")
        .args(["-f", "-ttt", "-o"])
        .arg(&trace)
        .arg("-P")
        .arg(ws.path("token.json.new"))
        .args([
            "-e",
            "trace=write",
            "-e",
            "inject=write:error=EIO:when=1..6",
        ])
        .arg(BIN)
        .arg("--config")
        .arg(ws.path("collector.toml"))
        .args(["--once", "--stdout"])
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .output()
        .expect("strace runs (apt-get install strace)");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "cannot write the new token pair beside");
    let writes: Vec<f64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains(" write("))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(writes.len(), 7, "six failed writes, then the one that held");
    assert!(
        writes[6] - writes[0] >= 0.25,
        "no wait between tries: {writes:?}"
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "the next run: {}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0);
}

/// Guards a disk's I/O error while the room for the rotated pair is set aside: the refresh is
/// not sent and the run is temporary (75), not a configuration error (78) that blamed the
/// folder's permissions.
#[test]
fn an_io_error_while_room_is_set_aside_is_temporary() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let o = run_with_fault(&ws, "fsync", "error=EIO:when=1");
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, "cannot set aside");
    assert!(!stderr(&o).contains("must be writable"), "{}", stderr(&o));
    assert_eq!(sim.stats()["refreshes"], 0);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "the next run: {}", stderr(&o));
}

/// A file bind-mounted over another, unmounted on drop.
struct BindMount(std::path::PathBuf);

impl BindMount {
    fn new(source: &std::path::Path, target: &std::path::Path) -> BindMount {
        let status = Command::new("mount")
            .arg("--bind")
            .arg(source)
            .arg(target)
            .status()
            .unwrap();
        assert!(status.success(), "mount --bind needs root");
        BindMount(target.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Guards a token file mounted into place on its own (a container's `-v token.json:...`): a
/// refresh could never replace it, so the run refuses before spending the refresh token (78),
/// and `check` says so as a FAIL without refreshing. The first run spent the token and left
/// the new pair stranded in `.new`; every later run exited 75 until the login died.
#[test]
fn a_token_file_mounted_on_its_own_is_refused_before_any_refresh() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    std::fs::create_dir(ws.path("outside")).unwrap();
    std::fs::copy(ws.path("token.json"), ws.path("outside/token.json")).unwrap();
    let _mount = BindMount::new(&ws.path("outside/token.json"), &ws.path("token.json"));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "is a mount point of its own");
    assert_stderr_contains(&o, "mount its folder instead");
    let o = ws.run(&["check"]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("is a mount point of its own")),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        sim.stats()["refreshes"],
        0,
        "the refresh token is never spent"
    );
    assert!(!ws.path("token.json.new").exists());
}
