//! Several accounts in one config: a household with two Volvo IDs collected in one run,
//! told apart by the `account` label, each with its own token, state and cars; one account's
//! trouble never hides the other's data.

use crate::support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn two_accounts(sim: &Sim) -> Workspace {
    let ws = Workspace::new(sim, "", "");
    let url = &sim.url;
    ws.write(
        "collector.toml",
        &format!(
            "[volvo]\napi_url = \"{url}\"\nauth_url = \"{url}/as/authorization.oauth2\"\ntoken_url = \"{url}/as/token.oauth2\"\n\n\
             [[account]]\nname = \"home\"\nclient_id = \"demo-client\"\nclient_secret = \"demo-secret\"\napi_key = \"demo-api-key\"\nvins = [\"{BEV}\", \"{PHEV}\"]\n\n\
             [[account]]\nname = \"fleet\"\nclient_id = \"demo-client\"\napi_key = \"demo-api-key\"\ntoken_file = \"fleet/token.json\"\nvins = [\"{PETROL}\"]\n"
        ),
    );
    std::fs::create_dir(ws.path("fleet")).unwrap();
    for f in ["token-home.json", "fleet/token.json"] {
        ws.write(f, &sim.token(true).to_string());
        std::fs::set_permissions(ws.path(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ws
}

/// A `--once --stdout` run of the household, the second account's secret from its own
/// environment variable (`VOLVO_CLIENT_SECRET_FLEET`).
fn run_household(ws: &Workspace) -> std::process::Output {
    let mut cmd = ws.command(&["--once", "--stdout"]);
    cmd.env("VOLVO_CLIENT_SECRET_FLEET", "demo-secret");
    cmd.output().unwrap()
}

#[test]
fn two_accounts_are_collected_in_one_run() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    let o = run_household(&ws);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    promtool_check(&out);
    check_exposition(&out);
    for (vin, account) in [(BEV, "home"), (PHEV, "home"), (PETROL, "fleet")] {
        let line = out
            .lines()
            .find(|l| l.starts_with("volvo_vehicle_info{") && l.contains(vin))
            .unwrap();
        assert!(line.contains(&format!("account=\"{account}\"")), "{line}");
    }
    assert!(!out.contains(DIESEL));
    for account in ["home", "fleet"] {
        assert_eq!(
            value(
                &out,
                &format!("volvo_collect_login_needed{{account=\"{account}\"}}")
            ),
            Some(0.0)
        );
        assert!(value(
            &out,
            &format!(
                "volvo_collect_access_token_expiry_timestamp_seconds{{account=\"{account}\"}}"
            )
        )
        .is_some());
    }
    assert_eq!(
        value(&out, "volvo_collect_vehicles{account=\"home\"}"),
        Some(2.0)
    );
    assert_eq!(
        value(&out, "volvo_collect_vehicles{account=\"fleet\"}"),
        Some(1.0)
    );
    // Each account refreshed its own token and keeps its own state.
    assert_eq!(sim.stats()["refreshes"], 2);
    assert!(ws.path("token-home.state.json").exists());
    assert!(ws.path("fleet/token.state.json").exists());
}

#[test]
fn one_account_needing_a_login_does_not_hide_the_other() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    std::fs::remove_file(ws.path("fleet/token.json")).unwrap();
    let o = run_household(&ws);
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    assert_stderr_contains(&o, "account fleet: no token file");
    // The login it asks for is this account's, as the user types it.
    assert_stderr_contains(&o, " --account fleet` first");
    let out = stdout(&o);
    assert_eq!(
        value(&out, "volvo_collect_login_needed{account=\"fleet\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&out, "volvo_collect_login_needed{account=\"home\"}"),
        Some(0.0)
    );
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
}

/// A car on two accounts (shared between two Volvo IDs) is read once, by the first account
/// in the file that lists it: one `volvo_vehicle_info`, each endpoint asked once. When that
/// account cannot read it (its login is gone), the other one does.
#[test]
fn a_car_on_two_accounts_is_read_once_by_the_first() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    let base = ws.read("collector.toml");
    let info = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("volvo_vehicle_info{") && l.contains(BEV))
            .map(String::from)
            .collect()
    };
    let both = |base: &str| {
        base.replace(
            &format!("vins = [\"{PETROL}\"]"),
            &format!("vins = [\"{PETROL}\", \"{BEV}\"]"),
        )
    };
    let lists = |base: &str| -> String {
        base.lines()
            .filter(|l| !l.starts_with("vins"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    // Configured on both; or both read their whole vehicle list, which names every car.
    let cases: [&dyn Fn(&str) -> String; 2] = [&both, &lists];
    for case in cases {
        let sim = Sim::start(&[]);
        let ws = two_accounts(&sim);
        let config = case(&ws.read("collector.toml"));
        ws.write("collector.toml", &config);
        let o = run_household(&ws);
        assert_eq!(code(&o), 0, "{config}\n{}", stderr(&o));
        let out = stdout(&o);
        promtool_check(&out);
        let lines = info(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("account=\"home\""), "{lines:?}");
        let asked = sim.requests(&format!("/vehicles/{BEV}/doors")).len();
        assert_eq!(asked, 1, "{config}");
        assert_eq!(
            value(&out, "volvo_collect_vehicles{account=\"fleet\"}"),
            Some(if config.contains("vins") { 1.0 } else { 0.0 }),
            "{out}"
        );
    }

    ws.write("collector.toml", &both(&base));
    // `check` says so, and its plan counts the car once.
    let out = stdout(&ws.run(&["check", "--plan", "--offline"]));
    for said in [
        format!("account fleet: cars on an earlier account too: {BEV}; that account reads them"),
        "(1 car: volvo.vins, less 1 read by an earlier account)".to_string(),
    ] {
        assert!(out.contains(&said), "no {said:?} in {out}");
    }

    // The first account's login is gone: the second reads the car.
    std::fs::remove_file(ws.path("token-home.json")).unwrap();
    let o = run_household(&ws);
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    let lines = info(&stdout(&o));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("account=\"fleet\""), "{lines:?}");
}

/// An earlier account whose vehicle list hangs holds a later one up only briefly, whatever
/// the run's timeout: with a 6 s run the later account once waited out its whole collection
/// and read nothing.
#[test]
fn a_hanging_earlier_account_holds_the_next_one_up_briefly() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    let config = ws.read("collector.toml");
    ws.write(
        "collector.toml",
        &format!("{config}\n[collect]\ntimeout = \"6s\"\n"),
    );
    sim.faults(
        json!([{"path": "=/connected-vehicle/v2/vehicles", "status": 200,
        "body": {"data": []}, "delay_ms": 30000, "times": 1}]),
    );
    let o = run_household(&ws);
    let out = stdout(&o);
    assert!(
        value(&out, &format!("volvo_odometer_meters{{vin=\"{PETROL}\"}}")).is_some(),
        "{}\n{out}",
        stderr(&o)
    );
}

/// What only the operator can fix about one account (its token folder gone, its secret
/// unset) stops that account, not the household: the other's data is delivered, the run
/// exits 78, and the message names the account's own key and login.
#[test]
fn one_account_set_up_wrong_does_not_hide_the_other() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    let base = ws.read("collector.toml");
    ws.write(
        "collector.toml",
        &base.replace("\"fleet/token.json\"", "\"gone/token.json\""),
    );
    let o = run_household(&ws);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "account fleet: the folder of account \"fleet\".token_file",
    );
    assert_stderr_contains(&o, " --account fleet` (which creates it)");
    let out = stdout(&o);
    promtool_check(&out);
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    assert_eq!(
        value(&out, "volvo_collect_login_needed{account=\"home\"}"),
        Some(0.0)
    );
    assert!(!ws.path("gone").exists(), "nothing is made for the account");

    // Without its secret, likewise.
    ws.write("collector.toml", &base);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "account \"fleet\".client_secret is not set");
    let bev = format!("volvo_odometer_meters{{vin=\"{BEV}\"}}");
    assert!(value(&stdout(&o), &bev).is_some());

    // And with a secret file that is not there: `check` names it, the run reads the others.
    ws.write(
        "collector.toml",
        &base.replace(
            "token_file = \"fleet/token.json\"",
            "token_file = \"fleet/token.json\"\nclient_secret_file = \"fleet/nosuch\"",
        ),
    );
    let said = "account \"fleet\".client_secret_file: cannot read";
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, said);
    assert!(value(&stdout(&o), &bev).is_some());
    let out = stdout(&ws.run(&["check", "--offline"]));
    assert!(
        out.contains("FAIL account fleet: client secret: ") && out.contains(said),
        "{out}"
    );
}

#[test]
fn account_configuration_errors() {
    let sim = Sim::start(&[]);
    let ws = two_accounts(&sim);
    let base = ws.read("collector.toml");
    let cases = [
        (
            base.replace("name = \"fleet\"", "name = \"home\""),
            "account \"home\": two accounts have this name",
        ),
        (
            base.replace(
                "token_file = \"fleet/token.json\"\n",
                "token_file = \"token-home.json\"\n",
            ),
            "account \"fleet\".token_file: is the same file as account \"home\".token_file",
        ),
        // Another spelling of the same file is the same file.
        (
            base.replace(
                "token_file = \"fleet/token.json\"\n",
                "token_file = \"fleet/../token-home.json\"\n",
            ),
            "account \"fleet\".token_file: is the same file as account \"home\".token_file",
        ),
        // A state saved over another account's token file would lose that login.
        (
            base.replace(
                "token_file = \"fleet/token.json\"\n",
                "token_file = \"fleet/token.json\"\nstate_file = \"token-home.json\"\n",
            ),
            "account \"fleet\".state_file: is the same file as account \"home\".token_file",
        ),
        (
            format!("{base}\n[output]\ntextfile = \"fleet/token.json\"\n"),
            "output.textfile (or --textfile) is the same file as account \"fleet\".token_file",
        ),
        (
            base.replace("[volvo]\n", "[volvo]\nclient_id = \"x\"\n"),
            "volvo: with [[account]] tables, each account has its own client_id",
        ),
        (
            base.replace("name = \"fleet\"", "name = \"fl eet\""),
            "account[1].name: missing or unusable",
        ),
    ];
    let tokens = || ["token-home.json", "fleet/token.json"].map(|f| ws.read(f));
    let before = tokens();
    for (text, expected) in cases {
        ws.write("collector.toml", &text);
        for args in [&["--once", "--stdout"][..], &["check", "--offline"]] {
            let o = ws.run(args);
            assert_eq!(code(&o), 78, "{expected}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(expected) || stdout(&o).contains(expected),
                "expected {expected:?} in {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
        assert_eq!(tokens(), before, "{expected}: a token file was touched");
    }
    // Without its secret, the account is named in the error.
    ws.write("collector.toml", &base);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert!(
        stderr(&o).contains("account \"fleet\".client_secret is not set")
            && stderr(&o).contains("VOLVO_CLIENT_SECRET_FLEET"),
        "{}",
        stderr(&o)
    );
    // login must be told which account.
    let o = ws.run(&["login", "--no-browser", "--timeout", "1s"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_stderr_contains(&o, "say which with --account NAME");
    let o = ws.run(&[
        "login",
        "--account",
        "nobody",
        "--no-browser",
        "--timeout",
        "1s",
    ]);
    assert_eq!(code(&o), 78);
    assert_stderr_contains(
        &o,
        "no account named \"nobody\"; the accounts are: home, fleet",
    );
}
