//! Faults found by driving the binary as an attacker or an unlucky user would: a stop during a
//! token refresh, secrets in configuration errors, a symlinked token file, configuration
//! mistakes that must exit 78, a rate-limited or world-writable token setup. Each test runs
//! the real binary against the real simulator.

#[path = "support/harness.rs"]
mod harness;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;

/// Sends SIGTERM to `child`.
fn sigterm(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
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
    sigterm(&child);
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

/// Guards issue 12's "SIGTERM during a token refresh loses the login" for `--once`: the stop
/// waits for the rotated pair to be saved, then exits 75 (nothing delivered; the next run
/// collects). Before, the process died at once with the spent token on disk.
#[test]
fn sigterm_during_a_refresh_keeps_the_login_in_once_mode() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let old = ws.token()["refresh_token"].clone();
    let (code, err) = stop_during_refresh(&sim, &ws, &["--once", "--stdout"]);
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("stopped by a signal"), "{err}");
    login_survived(&sim, &ws, &old);
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
    assert!(stderr(&o).contains("rate limiting"), "{}", stderr(&o));
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
