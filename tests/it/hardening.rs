//! Faults found by driving the binary as an attacker or an unlucky user would: a stop during a
//! token refresh, secrets in configuration errors, a symlinked token file, configuration
//! mistakes that must exit 78, a rate-limited or world-writable token setup. Each test runs
//! the real binary against the real simulator.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::json;

/// Sends `signal` (`-TERM`, say) to `child`.
fn kill(signal: &str, child: &Child) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

/// Waits for `f` to hold, polling.
fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the collector with `args`, waits until Volvo ID has rotated the refresh token of a
/// slow refresh (its answer held back 1.5 s), sends SIGTERM, and returns the exit code and
/// stderr.
fn stop_during_refresh(sim: &Sim, ws: &Workspace, args: &[&str]) -> (Option<i32>, String) {
    signal_during_refresh("-TERM", sim, ws, args)
}

/// [`stop_during_refresh`] with another `signal`.
fn signal_during_refresh(
    signal: &str,
    sim: &Sim,
    ws: &Workspace,
    args: &[&str],
) -> (Option<i32>, String) {
    sim.faults(
        json!([{"path": "/as/token.oauth2", "pass_through": true, "delay_ms": 1500, "times": 1}]),
    );
    let child = ws
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start volvo-collect");
    wait_for(
        "Volvo ID to rotate the token",
        Duration::from_secs(10),
        || sim.stats()["refreshes"] == 1,
    );
    kill(signal, &child);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), stderr(&out))
}

/// After the stop: the token file holds the rotated refresh token, and a following run uses it
/// without `invalid_grant`.
fn login_survived(sim: &Sim, ws: &Workspace, old_refresh: &serde_json::Value) {
    let token = ws.token();
    assert_ne!(
        &token["refresh_token"], old_refresh,
        "the spent refresh token is still on disk"
    );
    // Expire the access token, so the next run must use the saved refresh token.
    let mut expired = token.clone();
    expired["expires_at"] = json!(0);
    ws.write("token.json", &expired.to_string());
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0);
}

/// Guards the login against a stop during a token refresh, for `--once`: the stop waits for
/// the rotated pair to be saved, then exits 75 (nothing delivered; the next run collects).
/// Before, the process died at once with the spent token on disk: on SIGTERM, and later
/// still on the other signals that would end it (SIGHUP from a closed terminal or SSH
/// session: exit 129, then 77).
#[test]
fn every_stop_signal_during_a_refresh_keeps_the_login_in_once_mode() {
    for signal in [
        "-TERM", "-INT", "-HUP", "-QUIT", "-USR1", "-USR2", "-ALRM", "-XCPU", "-VTALRM", "-PROF",
    ] {
        let sim = Sim::start(&[]);
        let ws = Workspace::new(&sim, "", "");
        let old = ws.token()["refresh_token"].clone();
        let (code, err) = signal_during_refresh(signal, &sim, &ws, &["--once", "--stdout"]);
        assert_eq!(code, Some(75), "{signal}: {err}");
        assert!(err.contains("stopped by a signal"), "{signal}: {err}");
        login_survived(&sim, &ws, &old);
    }
}

/// The same for the long-running mode: the stop waits for the save, then exits 0.
#[test]
fn sigterm_during_a_refresh_keeps_the_login_in_long_running_mode() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ninterval = \"10s\"\n");
    let old = ws.token()["refresh_token"].clone();
    let (code, err) = stop_during_refresh(&sim, &ws, &["--stdout"]);
    assert_eq!(code, Some(0), "{err}");
    login_survived(&sim, &ws, &old);
}

/// Guards the last line of a `--once` run whose deadline passed while a stop signal waited
/// for its refresh: it named the deadline only, as if no one had stopped it. The run's end and
/// exit code (75) stand, the stop is named too, and the login survives.
#[test]
fn a_stop_that_waits_past_the_deadline_is_named() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ntimeout = \"3s\"\n");
    let old = ws.token()["refresh_token"].clone();
    sim.faults(
        json!([{"path": "/as/token.oauth2", "pass_through": true, "delay_ms": 6000, "times": 1}]),
    );
    let child = ws
        .command(&["--once", "--stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start volvo-collect");
    wait_for(
        "Volvo ID to rotate the token",
        Duration::from_secs(10),
        || sim.stats()["refreshes"] == 1,
    );
    kill("-TERM", &child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let last = stderr(&out)
        .lines()
        .rfind(|l| l.starts_with("volvo-collect: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains("the run's deadline passed while the access token was being refreshed")
            && last.contains("a stop signal came meanwhile, and waited for the token's save"),
        "{last}"
    );
    login_survived(&sim, &ws, &old);
}

/// Guards the token endpoint's rate limiting: an HTTP 429 is retried within the run, after
/// its `Retry-After`, and when it persists the run says it was rate limited (exit 75), not
/// that the answer was unreadable.
#[test]
fn a_rate_limited_refresh_is_retried_and_named() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    sim.faults(json!([{"path": "/as/token.oauth2", "status": 429, "body": "slow down", "retry_after": "1", "times": 1}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "rate limiting");
    assert_eq!(sim.requests("/as/token.oauth2").len(), 2);

    let ws = Workspace::new(&sim, "", "");
    sim.faults(json!([{"path": "/as/token.oauth2", "status": 429, "body": "slow down", "retry_after": "1", "times": 0}]));
    let o = ws.run(&["--once", "--stdout"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 75, "{err}");
    assert!(
        err.contains("rate limiting token refreshes (HTTP 429"),
        "{err}"
    );
    assert!(!err.contains("unreadable"), "{err}");
}

/// Replaces `key = ...` in the workspace's config (or appends `line` to the end).
fn config_with(ws: &Workspace, replace: &str, with: &str) {
    let text = ws.read("collector.toml");
    assert!(text.contains(replace), "{replace} not in the config");
    ws.write("collector.toml", &text.replacen(replace, with, 1));
}

/// Guards the secrets in configuration errors, through the binary: a secret of the
/// wrong type exits 78 with an error naming file, line, table and key, and never the value.
#[test]
fn configuration_errors_never_show_a_secret() {
    let sim = Sim::start(&[]);
    for (replace, with, key) in [
        (
            "client_secret = \"demo-secret\"",
            "client_secret = [\"SuperSecretValue42\"]",
            "`client_secret`",
        ),
        (
            "client_secret = \"demo-secret\"",
            "client_secret = 424242424242",
            "`client_secret`",
        ),
        (
            "api_key = \"demo-api-key\"",
            "api_key = { SuperSecretValue42 = true }",
            "`api_key`",
        ),
        (
            "\n[end]",
            "\n[pushgateway]\nusername = \"u\"\npassword = 424242424242",
            "`password`",
        ),
        (
            "\n[end]",
            "\n[remote_write]\nbearer_token = [\"SuperSecretValue42\"]",
            "`bearer_token`",
        ),
    ] {
        let ws = Workspace::new(&sim, "", "\n[end]");
        config_with(&ws, replace, with);
        let o = ws.run(&["--once", "--stdout"]);
        let err = stderr(&o);
        assert_eq!(code(&o), 78, "{with}: {err}");
        assert!(
            !err.contains("SuperSecret") && !err.contains("4242"),
            "{with}: {err}"
        );
        assert!(
            err.contains("collector.toml line ") && err.contains(key),
            "{with}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// Guards the Pushgateway's failure message: credentials in its URL are never printed.
#[test]
fn output_failures_do_not_print_url_credentials() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = ws.run(&[
        "--once",
        "--pushgateway",
        &format!("http://user:SuperSecretPw@127.0.0.1:{closed}/pg"),
    ]);
    let err = stderr(&o);
    assert_eq!(code(&o), 74, "{err}");
    assert!(err.contains("Pushgateway at http://127.0.0.1:"), "{err}");
    assert!(!err.contains("SuperSecretPw"), "{err}");
}

/// Guards the exit codes of configuration mistakes: each is 78 with a message that
/// says which key to fix, where they used to exit 75, 77 or 74.
#[test]
fn configuration_mistakes_exit_78_and_name_the_key() {
    let sim = Sim::start(&[]);
    // An API key with a line break (it used to fail later as a "network error", 75).
    let ws = Workspace::new(&sim, "", "");
    config_with(
        &ws,
        "api_key = \"demo-api-key\"",
        "api_key = \"demo-api-key\\nX\"",
    );
    let o = ws.run(&["--once", "--stdout"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 78, "{err}");
    assert!(
        err.contains("volvo.api_key: contains a line break"),
        "{err}"
    );
    assert!(!err.contains("demo-api-key"), "{err}");

    // The same from the environment.
    let ws = Workspace::new(&sim, "", "");
    let o = ws
        .command(&["--once", "--stdout"])
        .env("VOLVO_API_KEY", "demo api key")
        .output()
        .unwrap();
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "VOLVO_API_KEY");

    // An empty token_file (it used to exit 77, though a login cannot fix it).
    let ws = Workspace::new(&sim, "", "");
    config_with(&ws, "token_file = \"token.json\"", "token_file = \"\"");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "volvo.token_file: is empty");

    // A token "folder" where the lock cannot be created (it used to exit 77): a file.
    let ws = Workspace::new(&sim, "", "");
    ws.write("not-a-folder", "");
    config_with(
        &ws,
        "token_file = \"token.json\"",
        "token_file = \"not-a-folder/token.json\"",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));

    // A token folder that does not exist: the configuration loads (`login` creates the
    // folder, and the package's is made by systemd), and a run says what to fix.
    let ws = Workspace::new(&sim, "", "");
    config_with(
        &ws,
        "token_file = \"token.json\"",
        "token_file = \"new-folder/token.json\"",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "must exist");
    // Named as the token's folder, not as the state file beside it.
    assert_stderr_contains(&o, "the folder of volvo.token_file");

    // An empty textfile, in the file or on the command line (it used to exit 74).
    let ws = Workspace::new(&sim, "", "[output]\ntextfile = \"\"\n");
    let o = ws.run(&["--once"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "output.textfile");
    let ws = Workspace::new(&sim, "", "");
    let o = ws.run(&["--once", "--textfile", ""]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let folder = ws.dir.path().to_str().unwrap().to_string();
    let o = ws.run(&["--once", "--textfile", &folder]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "names a folder");
}

/// Guards the textfile's place: a FIFO or a socket there was replaced by a regular file (and,
/// as root, `/dev/null` too), and a symlinked textfile lost its link.
#[test]
fn a_textfile_is_written_through_its_link_and_never_over_a_fifo_or_socket() {
    use std::os::unix::fs::FileTypeExt;
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let fifo = ws.path("fifo.prom");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = ws.run(&["--once", "--textfile", fifo.to_str().unwrap()]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "output.textfile (or --textfile) names a FIFO");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let socket = ws.path("socket.prom");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let o = ws.run(&["--once", "--textfile", socket.to_str().unwrap()]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "names a socket");
    assert!(std::fs::symlink_metadata(&socket)
        .unwrap()
        .file_type()
        .is_socket());

    let real = ws.path("real.prom");
    let link = ws.path("volvo.prom");
    std::os::unix::fs::symlink("real.prom", &link).unwrap();
    let o = ws.run(&["--once", "--textfile", link.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("volvo_odometer_meters"));
}

/// Guards a symlinked token file against losing its link: the refresh writes through the
/// link, so the link stays a link and its target holds the rotated refresh token.
#[test]
fn a_symlinked_token_file_is_written_through() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let real_dir = tempfile::tempdir().unwrap();
    let real = real_dir.path().join("shared-token.json");
    std::fs::rename(ws.path("token.json"), &real).unwrap();
    std::os::unix::fs::symlink(&real, ws.path("token.json")).unwrap();
    let old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();

    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let link = std::fs::symlink_metadata(ws.path("token.json")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "token.json is no longer a link"
    );
    let now: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_ne!(
        now["refresh_token"], old["refresh_token"],
        "target not updated"
    );
    assert_eq!(mode(&real), 0o600);
    let bak = real_dir.path().join("shared-token.json.bak");
    let bak: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bak).unwrap()).unwrap();
    assert_eq!(bak["refresh_token"], old["refresh_token"]);
    assert!(!ws.path("token.json.bak").exists());
}

/// Guards the warning about a token folder that anyone can write to (0777 without the
/// sticky bit), from a run (once: it was said twice, the token being read again for the
/// metrics) and from `check`.
#[test]
fn a_world_writable_token_folder_draws_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stderr(&o)
            .matches("any user can write to the token file's folder")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["check", "--offline"]);
    assert!(
        stdout(&o).contains("any user can write to it"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert!(!stderr(&o).contains("any user can write"), "{}", stderr(&o));
}

/// The output of `child`, which must end by itself within 10 s (it is killed then, and the
/// test fails): for what used to hang.
fn ended_within_10s(mut child: Child) -> std::process::Output {
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Guards the configuration file's reading: `--config` naming a FIFO hung the process (no
/// signal ended it) and `/dev/zero` filled the memory until the kernel killed it. Each is now
/// refused at once (exit 78), saying what stands there, like a file too large to be one.
#[test]
fn a_configuration_path_that_is_no_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("collector.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, "# padding\n".repeat(200_000)).unwrap();
    for (path, says) in [
        (fifo.as_path(), "it is not a regular file but a FIFO"),
        (
            std::path::Path::new("/dev/zero"),
            "it is not a regular file but a device",
        ),
        (dir.path(), "it is not a regular file but a folder"),
        (huge.as_path(), "more than the 1048576 such a file may hold"),
    ] {
        let child = Command::new(BIN)
            .arg("--config")
            .arg(path)
            .args(["--once", "--stdout"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = ended_within_10s(child);
        assert_eq!(code(&o), 78, "{}: {}", path.display(), stderr(&o));
        assert_stderr_contains(&o, says);
    }
}

/// Guards the listener's TLS files and the outputs' CA file, read like the configuration:
/// `/dev/zero` as a key filled the memory until the kernel killed the process, and a FIFO as
/// a certificate hung it before it listened (no signal ended it). Each is refused at once
/// (exit 78), saying what stands there; a certificate file with no certificate says so
/// (it said "peer sent no certificates").
#[test]
fn tls_and_ca_files_that_are_no_files_are_refused_at_once() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let fifo = ws.path("cert.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    ws.write("empty.pem", "");
    let cases = [
        (
            "tls_cert_file",
            "/dev/zero",
            "it is not a regular file but a device",
        ),
        (
            "tls_cert_file",
            fifo.to_str().unwrap(),
            "it is not a regular file but a FIFO",
        ),
        ("tls_cert_file", "empty.pem", "holds no certificate"),
    ];
    for (setting, path, says) in cases {
        let web = format!("[web]\n{setting} = {path:?}\ntls_key_file = \"/dev/zero\"\n");
        let config = format!("{}{web}", ws.read("collector.toml"));
        ws.write("collector.toml", &config);
        let child = ws
            .command(&["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = ended_within_10s(child);
        assert_eq!(code(&o), 78, "{path}: {}", stderr(&o));
        assert_stderr_contains(&o, &format!("web.{setting}"));
        assert_stderr_contains(&o, says);
        let config = ws.read("collector.toml").replace(&web, "");
        ws.write("collector.toml", &config);
    }
    let config = format!(
        "{}[pushgateway]\nca_file = \"/dev/zero\"\n",
        ws.read("collector.toml")
    );
    ws.write("collector.toml", &config);
    let child = ws
        .command(&["--once", "--pushgateway", "https://127.0.0.1:9"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = ended_within_10s(child);
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "cannot read the CA file /dev/zero: it is not a regular file but a device",
    );
}

/// Guards a folder named where a token file goes: `simulate --write-token <folder>` narrowed
/// the folder to mode 0600 (only root could enter it) and left `<folder>.new` beside it. Now
/// it is refused (exit 78) and the folder is as it was.
#[test]
fn a_token_written_over_a_folder_is_refused_and_the_folder_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tokens");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let child = Command::new(BIN)
        .args(["simulate", "--listen", "127.0.0.1:0", "--write-token"])
        .arg(&folder)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = ended_within_10s(child);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "it is a folder");
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// Guards the log level against a word that is none: `LOG_LEVEL=verbose` parsed as a filter
/// for a module named `verbose` and silenced every log, warnings included. Now it is named
/// as no level and info is used; a real filter is still taken as it is.
#[test]
fn a_log_level_that_is_no_level_is_named_and_info_used() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let expired = sim.token(true);
    ws.write("token.json", &expired.to_string());
    let o = ws
        .command(&["--once", "--stdout"])
        .env("LOG_LEVEL", "verbose")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "LOG_LEVEL=\"verbose\" is not a level");
    assert_stderr_contains(&o, "access token refreshed");
    for filter in ["warn", "volvo_collect=warn", "WARN", "2"] {
        let o = ws
            .command(&["--once", "--stdout"])
            .env("LOG_LEVEL", filter)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{filter}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("is not a level"),
            "{filter}: {}",
            stderr(&o)
        );
    }
}

/// Guards a token file that is no file: a FIFO or a device named as `token_file` was called a
/// missing login (exit 77), which no login could fix. It is a configuration error (78).
#[test]
fn a_token_file_that_is_a_fifo_or_device_is_a_configuration_error() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let fifo = ws.path("fifo.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (path, kind) in [
        (fifo.to_str().unwrap(), "a FIFO"),
        ("/dev/null", "a device"),
    ] {
        config_with(
            &ws,
            "token_file = \"token.json\"",
            &format!("token_file = {path:?}\nstate_file = \"state.json\""),
        );
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 78, "{path}: {}", stderr(&o));
        assert_stderr_contains(&o, &format!("is {kind}: name a file"));
        config_with(
            &ws,
            &format!("token_file = {path:?}\nstate_file = \"state.json\""),
            "token_file = \"token.json\"",
        );
    }
}

/// Guards a descriptor limit too low for anything: under 6 or 7 descriptors tokio's signal
/// pipe panicked (exit 101), under 9 reading the configuration failed as a configuration
/// error (78). Below 16 every command now stops before it starts, with exit 75 and the limit
/// to raise; the token is untouched.
#[test]
fn a_descriptor_limit_too_low_to_start_is_said_as_such() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let token = std::fs::read(ws.path("token.json")).unwrap();
    for n in [6, 9, 15] {
        for args in [&["--once", "--stdout"][..], &["check"]] {
            let o = Command::new("prlimit")
                .arg(format!("--nofile={n}:{n}"))
                .args(["--", BIN, "--config"])
                .arg(ws.path("collector.toml"))
                .args(args)
                .output()
                .unwrap();
            assert_eq!(code(&o), 75, "{n} {args:?}: {}", stderr(&o));
            assert_stderr_contains(
                &o,
                &format!("file descriptor limit ({n}; raise it with LimitNOFILE= or ulimit -n)"),
            );
        }
    }
    assert_eq!(std::fs::read(ws.path("token.json")).unwrap(), token);
}
