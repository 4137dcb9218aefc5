//! `volvo-collect check` through the real binary against the real simulator: a healthy setup
//! passes with `ok` lines, each broken part is one `FAIL` (or `warn`) line saying what to do,
//! the check stays within two requests per account, and `--plan` holds the request budget.

use crate::support::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

/// Every read scope the default sources need, as a token's `scope`: an account of 2026,
/// without the retired Extended Vehicle's `exve:*` scopes.
fn all_scopes() -> String {
    live_and_extended_scopes(false)
}

/// The live APIs' read scopes, and with `extended` also Extended Vehicle's.
fn live_and_extended_scopes(extended: bool) -> String {
    volvo_collect::endpoints::Sources {
        extended_vehicle_explicit: extended,
        ..volvo_collect::endpoints::Sources::ALL
    }
    .default_scopes()
    .join(" ")
}

/// A workspace whose token is valid for another five minutes and grants every needed scope.
/// (The simulator's own tokens grant only `openid`, and a refresh keeps it that way.)
fn healthy(sim: &Sim, rest: &str) -> Workspace {
    let ws = Workspace::new(sim, "", &format!("[output]\nstdout = true\n{rest}"));
    edit_token(&ws, |t| {
        *t = sim.token(false);
        t["scope"] = all_scopes().into();
    });
    ws
}

fn edit_token(ws: &Workspace, edit: impl FnOnce(&mut Value)) {
    let mut t = ws.token();
    edit(&mut t);
    ws.write("token.json", &t.to_string());
}

fn lines_with<'a>(out: &'a str, level: &str, part: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.split(' ').next() == Some(level) && l.contains(part))
        .collect()
}

fn assert_line(out: &str, level: &str, part: &str) {
    assert!(
        !lines_with(out, level, part).is_empty(),
        "no `{level}` line with {part:?} in:\n{out}"
    );
}

/// Requests the simulator served, except its own control endpoints.
fn served(sim: &Sim) -> Vec<String> {
    sim.stats()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .filter(|r| !r.contains("/_sim/"))
        .collect()
}

/// Guards the happy path: every part is reported `ok`, the exit code is 0, and no secret
/// (client secret, API key, tokens) reaches the output.
#[test]
fn healthy_config_passes_with_ok_lines() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    for part in [
        "config: ",
        "client secret: present",
        "API key: present",
        "token file ",
        "access token: valid for another",
        "scopes: all",
        "API key and token: GET /connected-vehicle/v2/vehicles answered 200 with 4 vehicles",
        "cars: every car on the account",
        "output stdout",
    ] {
        assert_line(&out, "ok", part);
    }
    assert!(
        out.lines()
            .all(|l| l.starts_with("ok ") || l.starts_with("warn ")),
        "{out}"
    );
    let token = ws.token();
    let all = format!("{out}{}", stderr(&o));
    for secret in [
        "demo-secret",
        "demo-api-key",
        token["access_token"].as_str().unwrap(),
        token["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!all.contains(secret), "a secret was printed:\n{all}");
    }
}

/// Guards the most common first-run mistake: no token file is a FAIL that names the command
/// that fixes it, and the check exits 1.
#[test]
fn missing_token_file_fails_naming_login() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    std::fs::remove_file(ws.path("token.json")).unwrap();
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert_line(&out, "FAIL", "volvo-collect login");
    // Nothing was asked of Volvo without a token.
    assert!(served(&sim).is_empty(), "{:?}", served(&sim));
}

/// Guards scope checking: a token granted fewer scopes than the sources need is a FAIL that
/// names the missing ones and says where to register them.
#[test]
fn missing_scopes_fail_naming_them() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    edit_token(&ws, |t| t["scope"] = "openid".into());
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    let fail = lines_with(&out, "FAIL", "scopes:");
    assert_eq!(fail.len(), 1, "{out}");
    for scope in [
        "conve:vehicle_relation",
        "conve:doors_status",
        "energy:state:read",
        "location:read",
    ] {
        assert!(fail[0].contains(scope), "{scope} not named: {}", fail[0]);
    }
    // The retired API's scopes are no account's fault.
    assert!(!fail[0].contains("exve:"), "{}", fail[0]);
    assert!(!fail[0].contains(" openid "), "{}", fail[0]);
    assert!(fail[0].contains("developer portal"), "{}", fail[0]);
}

/// Guards the 2026 account: a token without any `exve:*` scope (Volvo retired Extended
/// Vehicle and new applications cannot register them) passes, exit 0, and the check says as
/// information that Extended Vehicle is not read and how to turn it on.
#[test]
fn account_without_extended_vehicle_scopes_passes() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let scope = ws.token()["scope"].as_str().unwrap().to_string();
    assert!(!scope.contains("exve:"), "{scope}");
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(!out.contains("FAIL"), "{out}");
    assert_line(&out, "ok", "scopes: all 20 needed scopes granted");
    let info = lines_with(&out, "ok", "extended_vehicle: not read");
    assert_eq!(info.len(), 1, "{out}");
    assert!(
        info[0].contains("set sources.extended_vehicle = true"),
        "{}",
        info[0]
    );
    assert_line(&out, "ok", "extended_vehicle when its scopes are granted");
}

/// Guards the older account: granted `exve:*` scopes mean runs read Extended Vehicle, with no
/// setting needed; and `sources.extended_vehicle = false` is reported as off.
#[test]
fn granted_extended_vehicle_scopes_are_read_unless_turned_off() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    edit_token(&ws, |t| t["scope"] = live_and_extended_scopes(true).into());
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert_line(
        &out,
        "ok",
        "extended_vehicle: read, 9 exve:* scopes granted",
    );

    let ws = healthy(&sim, "[sources]\nextended_vehicle = false\n");
    edit_token(&ws, |t| t["scope"] = live_and_extended_scopes(true).into());
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(!out.contains("extended_vehicle:"), "{out}");
    assert_line(&out, "ok", "extended_vehicle off");
}

/// Guards the explicit switch: `sources.extended_vehicle = true` on an account that lacks the
/// scopes is a warning that says what follows and what to do, not a FAIL (exit 0), and the
/// other scopes are still checked as needed.
#[test]
fn extended_vehicle_turned_on_without_its_scopes_warns() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "[sources]\nextended_vehicle = true\n");
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert_line(&out, "ok", "scopes: all 20 needed scopes granted");
    let warn = lines_with(&out, "warn", "extended_vehicle:");
    assert_eq!(warn.len(), 1, "{out}");
    assert!(
        warn[0].contains("no exve:* scope is granted") && warn[0].contains("remove the setting"),
        "{}",
        warn[0]
    );
    assert_line(&out, "ok", "extended_vehicle on");
}

/// Guards the 7-day death of an unused refresh token: rotated 6 days ago is a warning (the
/// run still works, so the exit code stays 0).
#[test]
fn refresh_token_rotated_six_days_ago_warns() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let six_days_ago = chrono::Utc::now().timestamp() - 6 * 86_400;
    edit_token(&ws, |t| t["refreshed_at"] = six_days_ago.into());
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}");
    assert_line(&out, "warn", "refresh token: rotated 6days");
}

/// Guards the mode check: a token file other users can read is a warning with the fix.
#[test]
fn token_file_readable_by_others_warns() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    std::fs::set_permissions(
        ws.path("token.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}");
    assert_line(&out, "warn", "chmod 600");
}

/// Guards telling a bad API key from a bad login: Volvo's API-key 401 is a FAIL pointing at
/// volvo.api_key, not at `login`, and the wrong key itself is not printed.
#[test]
fn wrong_api_key_fails_pointing_at_the_key() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let mut cmd = ws.command(&["check"]);
    cmd.env("VOLVO_API_KEY", "wrong-key-123");
    let o = cmd.output().unwrap();
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert_line(&out, "FAIL", "check volvo.api_key");
    assert!(
        lines_with(&out, "FAIL", "volvo-collect login").is_empty(),
        "{out}"
    );
    assert!(!out.contains("wrong-key-123") && !stderr(&o).contains("wrong-key-123"));
}

/// Guards the textfile output: a folder the collector cannot write to is a FAIL (the check
/// writes a probe file, since permission bits do not stop root).
#[test]
fn unwritable_textfile_folder_fails() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let locked = ws.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = std::fs::write(locked.join("probe"), "").is_ok();
    // As root, /sys is a folder nobody can create files in.
    let folder = if writable {
        std::path::PathBuf::from("/sys")
    } else {
        locked
    };
    let target = folder.join("volvo.prom");
    let o = ws.run(&["--textfile", target.to_str().unwrap(), "check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert_line(&out, "FAIL", "output textfile");
}

/// Guards the Pushgateway probe: nothing listening on its port is a FAIL.
#[test]
fn pushgateway_on_a_closed_port_fails() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = ws.run(&["--pushgateway", &url, "check"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert_line(&out, "FAIL", "output pushgateway");
}

/// Guards that the Pushgateway probe goes to `/-/ready` with the output's own credentials,
/// and that the password shows nowhere.
#[test]
fn pushgateway_ready_with_credentials_is_ok() {
    let sim = Sim::start(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            head.push(line.trim().to_string());
        }
        // "push:s3cret-pw" in base64.
        let authorized = head
            .iter()
            .any(|l| l.eq_ignore_ascii_case("authorization: Basic cHVzaDpzM2NyZXQtcHc="));
        let status = if authorized {
            "200 OK"
        } else {
            "401 Unauthorized"
        };
        let _ = stream.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        head
    });
    let ws = healthy(
        &sim,
        &format!("pushgateway = \"http://127.0.0.1:{port}\"\n[pushgateway]\nusername = \"push\"\npassword = \"s3cret-pw\"\n"),
    );
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    let head = server.join().unwrap();
    assert_eq!(head[0], "GET /-/ready HTTP/1.1");
    assert_eq!(code(&o), 0, "{out}");
    assert_line(&out, "ok", "output pushgateway");
    assert!(!out.contains("s3cret-pw") && !stderr(&o).contains("s3cret-pw"));
}

/// Guards the request bound: with an expired access token, each account costs one refresh
/// and one vehicle list, and no data endpoint is asked.
#[test]
fn check_makes_at_most_two_requests_per_account() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let url = &sim.url;
    ws.write(
        "collector.toml",
        &format!(
            "[volvo]\napi_url = \"{url}\"\nauth_url = \"{url}/as/authorization.oauth2\"\ntoken_url = \"{url}/as/token.oauth2\"\n\n\
             [[account]]\nname = \"home\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\n\n\
             [[account]]\nname = \"fleet\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\nvins = [\"{PETROL}\"]\n\n\
             [output]\nstdout = true\n"
        ),
    );
    for f in ["token-home.json", "token-fleet.json"] {
        ws.write(f, &sim.token(true).to_string());
        std::fs::set_permissions(ws.path(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    let mut seen = served(&sim);
    seen.sort();
    assert_eq!(
        seen,
        [
            "GET /connected-vehicle/v2/vehicles",
            "GET /connected-vehicle/v2/vehicles",
            "POST /as/token.oauth2",
            "POST /as/token.oauth2",
        ],
        "{out}"
    );
    for account in ["home", "fleet"] {
        assert_line(
            &out,
            "ok",
            &format!("account {account}: API key and token: GET /connected-vehicle/v2/vehicles answered 200"),
        );
        assert_line(
            &out,
            "ok",
            &format!("account {account}: access token: refreshed"),
        );
    }
    assert_line(
        &out,
        "ok",
        &format!("account fleet: car {PETROL}: on the account"),
    );
    // The rotated refresh tokens were saved: the next run refreshes without a new login.
    let again = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));

    // --account checks one account only: one refresh, one vehicle list more.
    let before = served(&sim).len();
    let o = ws.run(&["check", "--account", "fleet"]);
    assert!(!stdout(&o).contains("account home"), "{}", stdout(&o));
    assert!(served(&sim).len() - before <= 2);
}

fn plan_total(out: &str) -> u64 {
    plan_figure(out, "total ")
}

/// The number on the plan's line that starts with `label`.
fn plan_figure(out: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label}line in:\n{out}"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

/// Guards the plan of a household: one car on a 5-minute timer fits without stretching, the
/// typical day is printed beside the worst case, and the offline plan asks nothing of Volvo.
#[test]
fn plan_offline_one_car_every_five_minutes_fits_without_stretching() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let o = ws.run(&[
        "check",
        "--plan",
        "--offline",
        "--cars",
        "1",
        "--interval",
        "5m",
    ]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(plan_total(&out) <= 9_000, "{out}");
    assert!(out.contains("doors"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("estimate ")),
        "{out}"
    );
    assert_line(&out, "ok", "budget:");
    assert!(!out.contains("stretched"), "{out}");
    assert!(served(&sim).is_empty(), "{:?}", served(&sim));
}

/// Guards the daily quota: seven cars on one API key every 5 minutes would need more than
/// 9,500 requests a day in the worst case, so the floor of service stretches the intervals to
/// fit and says so; ten cars every minute fit too, stretched further.
#[test]
fn plan_offline_a_fleet_on_one_key_is_stretched_into_the_quota() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    for (cars, interval) in [("7", "5m"), ("10", "1m")] {
        let o = ws.run(&[
            "check",
            "--plan",
            "--offline",
            "--cars",
            cars,
            "--interval",
            interval,
        ]);
        let out = stdout(&o);
        assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
        assert!(
            plan_total(&out) <= 9_500,
            "{cars} cars every {interval}: {out}"
        );
        assert_line(&out, "ok", "budget: the worst case");
        assert!(out.contains("with the intervals stretched"), "{out}");
    }
    // Fourteen cars: a typical day is asked more often than the stretched worst case, and
    // spends more than its total; the plan says why rather than contradicting itself.
    let o = ws.run(&["check", "--plan", "--offline", "--cars", "14"]);
    let out = stdout(&o);
    assert!(plan_figure(&out, "estimate ") > plan_total(&out), "{out}");
    assert!(
        out.contains("asked more often than above while the day's budget lasts"),
        "{out}"
    );
    assert!(served(&sim).is_empty());
}

/// Guards the shared minute: `check` takes its place in the account's window like a run, and
/// when the runs used the minute it waits instead of drawing a 429.
#[test]
fn check_shares_the_minute_window_with_the_runs() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let full: Vec<i64> = vec![now_ms; 90];
    ws.write(
        "token.state.json.window",
        &serde_json::json!({ "sent": full }).to_string(),
    );
    let o = ws.run(&["check"]);
    let out = stdout(&o);
    assert_line(
        &out,
        "warn",
        "API key and token: not checked: this account's runs used",
    );
    assert!(
        served(&sim).iter().all(|r| !r.contains("/vehicles")),
        "{:?}",
        served(&sim)
    );
}

/// Guards the key's day against uncounted checks: `check`'s request (the vehicle list) is
/// added to the account's request counters and to its API key's day, as a run's are. Three
/// checks after a run left both where the run had put them.
#[test]
fn a_checks_request_counts_in_the_keys_day() {
    let sim = Sim::start(&[]);
    let ws = healthy(&sim, "");
    let o = ws.run(&["--once"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let day = |ws: &Workspace| -> u64 {
        let v: Value = serde_json::from_str(&ws.read("token.state.json.day")).unwrap();
        v["requests"].as_u64().unwrap()
    };
    let listed = |ws: &Workspace| -> u64 {
        let v: Value = serde_json::from_str(&ws.read("token.state.json")).unwrap();
        v["requests"]["connected_vehicle /vehicles 200"]
            .as_u64()
            .unwrap()
    };
    let (day0, listed0) = (day(&ws), listed(&ws));
    let asked0 = served(&sim).len();
    for _ in 0..3 {
        let o = ws.run(&["check"]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    }
    let asked = (served(&sim).len() - asked0) as u64;
    assert_eq!(asked, 3, "{:?}", served(&sim));
    assert_eq!(day(&ws), day0 + asked);
    assert_eq!(listed(&ws), listed0 + asked);

    // A check run as another user than the state's owner (sudo) leaves the state alone: the
    // files it wrote would be unreadable to the collector. The state is handed to another
    // user (which needs root, as CI runs the tests).
    let other = 65_534;
    for name in ["token.state.json", "token.state.json.day"] {
        std::os::unix::fs::chown(ws.path(name), Some(other), Some(other)).unwrap();
    }
    let before = ws.read("token.state.json");
    let o = ws.run(&["check"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(served(&sim).len() - asked0, 4);
    assert_eq!(ws.read("token.state.json"), before);
    assert_eq!(day(&ws), day0 + asked);
}
