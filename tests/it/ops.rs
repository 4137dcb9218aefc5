//! The files that run and watch the collector in production: the systemd units (checked by
//! the real `systemd-analyze`), the service's secrets path through systemd credentials (the
//! real binary against the simulator), the Grafana dashboard, and the Prometheus alert and
//! recording rules (checked and unit-tested by the real `promtool`). Every query in the
//! dashboard and the rules may only use metric names the collector emits and the names the
//! recording rules define.
//!
//! Needs Debian's `systemd` (systemd-analyze) and `prometheus` (promtool) packages; a missing
//! tool fails the test with the package to install, it never skips.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::*;
use serde_json::Value;

/// Where the shipped service unit expects the binary.
const SHIPPED_BIN: &str = "/usr/local/bin/volvo-collect";

/// Metric families the queries may use although no sample car shows them (each must be a
/// family in src/metrics/catalog.rs, and really absent from the samples): the samples answer
/// every endpoint, so no error series; one run of a car has no completed trip or charge (its
/// records' counters are there, at 0); and the samples configure no `[prices]`.
const NOT_IN_SAMPLES: &[&str] = &[
    "volvo_collect_endpoint_error",
    "volvo_last_trip_start_timestamp_seconds",
    "volvo_last_trip_end_timestamp_seconds",
    "volvo_last_trip_distance_meters",
    "volvo_last_trip_duration_seconds",
    "volvo_last_trip_energy_joules",
    "volvo_last_trip_fuel_liters",
    "volvo_last_charge_start_timestamp_seconds",
    "volvo_last_charge_end_timestamp_seconds",
    "volvo_last_charge_energy_joules",
    "volvo_last_charge_battery_start_ratio",
    "volvo_last_charge_battery_end_ratio",
    "volvo_last_charge_average_power_watts",
    "volvo_electricity_price_per_joule",
    "volvo_fuel_price_per_liter",
];

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Runs a tool these tests need. A missing tool fails with the Debian package to install.
fn run_tool(cmd: &mut Command, package: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is not installed: install Debian's `{package}` package \
             (apt-get install -y --no-install-recommends {package}); the CI script installs it"
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---- systemd ---------------------------------------------------------------------------------

/// `Key=value` lines of a unit file, in order, without comments.
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn assert_directive(unit: &str, name: &str, key: &str, value: &str) {
    let found: Vec<String> = directives(unit)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert!(
        found.iter().any(|v| v == value),
        "{name}: expected {key}={value}, found {found:?}"
    );
}

/// `systemd-analyze verify` on the given units; returns its exit status and everything it said.
fn verify(units: &[&Path]) -> (bool, String) {
    let out = run_tool(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(units)
            .env("SYSTEMD_LOG_COLOR", "0"),
        "systemd",
    );
    (out.status.success(), text(&out))
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let service = read("systemd/volvo-collect.service");
    let timer = read("systemd/volvo-collect.timer");
    assert!(
        service.contains(&format!("\nExecStart={SHIPPED_BIN} ")),
        "the shipped unit runs {SHIPPED_BIN}"
    );

    // verify needs ExecStart's binary to exist: a copy of the unit runs the one just built.
    let dir = tempfile::tempdir().unwrap();
    let svc = dir.path().join("volvo-collect.service");
    let tmr = dir.path().join("volvo-collect.timer");
    std::fs::write(&svc, service.replace(SHIPPED_BIN, BIN)).unwrap();
    std::fs::write(&tmr, &timer).unwrap();
    let (ok, said) = verify(&[&svc, &tmr]);
    // verify exits 0 on unknown keys and unparsable values and only warns: any word is a finding.
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // ... and it does find such mistakes here, so the silence above means something.
    let bad = dir.path().join("bad.service");
    std::fs::write(
        &bad,
        service
            .replace(SHIPPED_BIN, BIN)
            .replace("Type=oneshot", "Type=oneshoot"),
    )
    .unwrap();
    let (_, said) = verify(&[&bad]);
    assert!(
        said.contains("oneshoot"),
        "verify did not report a bad Type=: {said}"
    );

    // The hardening is worth its name: systemd's own exposure score, 0 (best) to 10.
    let out = run_tool(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
            .arg(&svc)
            .env("SYSTEMD_LOG_COLOR", "0"),
        "systemd",
    );
    assert!(out.status.success(), "exposure above 2.0:\n{}", text(&out));
}

#[test]
fn systemd_units_say_what_the_deployment_relies_on() {
    let s = read("systemd/volvo-collect.service");
    let name = "volvo-collect.service";
    for (key, value) in [
        ("Type", "oneshot"),
        (
            "ExecStart",
            "/usr/local/bin/volvo-collect --config /etc/volvo-collect/collector.toml --once",
        ),
        ("DynamicUser", "yes"),
        ("StateDirectory", "volvo-collect"),
        (
            "LoadCredential",
            "client_secret:/etc/volvo-collect/client_secret",
        ),
        ("LoadCredential", "api_key:/etc/volvo-collect/api_key"),
        ("SuccessExitStatus", "1"),
        // Longer than the 2 minutes a sent refresh's answer is waited for after SIGTERM.
        ("TimeoutStopSec", "150s"),
        ("UMask", "0077"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
    ] {
        assert_directive(&s, name, key, value);
    }
    // The token's place, and the textfile directory for those who want it.
    assert!(s.contains("token_file = \"/var/lib/volvo-collect/token.json\""));
    assert!(s.contains("\n#ReadWritePaths=/var/lib/prometheus/node-exporter\n"));

    let t = read("systemd/volvo-collect.timer");
    let name = "volvo-collect.timer";
    for (key, value) in [
        ("OnBootSec", "1min"),
        ("OnCalendar", "*:0/5"),
        ("RandomizedDelaySec", "30s"),
        ("AccuracySec", "1s"),
        ("Persistent", "true"),
        ("WantedBy", "timers.target"),
    ] {
        assert_directive(&t, name, key, value);
    }
}

/// The service hands the secrets over as systemd credentials; the collector reads them from
/// `$CREDENTIALS_DIRECTORY/client_secret` and `$CREDENTIALS_DIRECTORY/api_key`.
#[test]
fn service_secrets_come_from_the_credentials_directory() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let config: String = ws
        .read("collector.toml")
        .lines()
        .filter(|l| !l.starts_with("client_secret") && !l.starts_with("api_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!config.contains("demo-secret") && !config.contains("demo-api-key"));
    ws.write("collector.toml", &config);

    let credentials = |files: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("{value}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        dir
    };
    let run_with = |dir: Option<&Path>| {
        let mut cmd = ws.command(&["--once", "--stdout"]);
        if let Some(d) = dir {
            cmd.env("CREDENTIALS_DIRECTORY", d);
        }
        cmd.output().expect("run volvo-collect")
    };

    // Both credentials: a full run (the token had expired, so the client secret was used too).
    let both = credentials(&[
        ("client_secret", "demo-secret"),
        ("api_key", "demo-api-key"),
    ]);
    let o = run_with(Some(both.path()));
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(code(&o), 0, "{err}");
    assert!(out.contains("volvo_vehicle_info{") && out.contains(BEV));
    assert_eq!(value(&out, "volvo_collect_run_success"), Some(1.0), "{out}");
    assert_eq!(
        value(
            &out,
            &format!("volvo_collect_api_success{{api=\"connected_vehicle\",vin=\"{BEV}\"}}")
        ),
        Some(1.0)
    );
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    for secret in ["demo-secret", "demo-api-key"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} leaked"
        );
    }

    // No credentials directory: a configuration error that names a missing secret.
    let o = run_with(None);
    let err = stderr(&o);
    assert_eq!(code(&o), 78, "{err}");
    assert!(
        err.contains("volvo.client_secret") || err.contains("volvo.api_key"),
        "{err}"
    );

    // Each credential is read on its own: with one of them, the error names the other.
    let key_only = credentials(&[("api_key", "demo-api-key")]);
    let o = run_with(Some(key_only.path()));
    let err = stderr(&o);
    assert_eq!(code(&o), 78, "{err}");
    assert!(err.contains("volvo.client_secret"), "{err}");

    let secret_only = credentials(&[("client_secret", "demo-secret")]);
    let o = run_with(Some(secret_only.path()));
    let err = stderr(&o);
    assert_eq!(code(&o), 78, "{err}");
    assert!(err.contains("volvo.api_key"), "{err}");
}

// ---- metric names ----------------------------------------------------------------------------

/// Every metric name in the golden expositions of the sample cars.
fn emitted_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let dir = repo("tests/golden");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("prom") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let name = match line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                Some(rest) => rest.split(' ').next(),
                None if line.starts_with('#') || line.is_empty() => None,
                None => line.split(['{', ' ']).next(),
            };
            if let Some(n) = name {
                names.insert(n.to_string());
            }
        }
    }
    assert!(
        names.len() > 50,
        "golden files in {} look empty",
        dir.display()
    );
    names
}

/// The metric names a query refers to: identifiers starting with `volvo_`, and recording-rule
/// names (`level:volvo_...:operations`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("volvo_") || word.contains(":volvo_") {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

/// The names recorded by prometheus/rules.yml, in file order.
fn recorded_names() -> Vec<String> {
    read("prometheus/rules.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Fails for any name the collector does not emit (see [`NOT_IN_SAMPLES`]) and rules.yml
/// does not record.
fn assert_known(what: &str, used: &BTreeSet<String>) {
    let mut emitted = emitted_names();
    let catalog = read("src/metrics/catalog.rs");
    for n in NOT_IN_SAMPLES {
        assert!(
            catalog.contains(&format!("\"{n}\"")),
            "{n} is not a family in src/metrics/catalog.rs"
        );
        assert!(
            !emitted.contains(*n),
            "{n} is in the samples now: remove it from NOT_IN_SAMPLES"
        );
    }
    emitted.extend(recorded_names());
    let unknown: Vec<&String> = used
        .iter()
        .filter(|n| !emitted.contains(*n) && !NOT_IN_SAMPLES.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what} uses metric names the collector does not emit: {unknown:?}"
    );
}

#[test]
fn metric_name_check_catches_unknown_names() {
    let names = metric_names(
        "time() - max by (vin) (volvo_odometer_timestamp_seconds{vin=~\"$vin\"}) > volvo_x",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["volvo_odometer_timestamp_seconds", "volvo_x"]
    );
    let emitted = emitted_names();
    assert!(emitted.contains("volvo_odometer_timestamp_seconds"));
    assert!(emitted.contains("volvo_collect_requests_total"));
    assert!(!emitted.contains("volvo_x"));

    // Recording-rule names count as names, and only those rules.yml records are known.
    let names = metric_names(
        "sum(vin:volvo_trips:increase1d{vin=~\"$vin\"}) / vin:volvo_x:rate5m + foo:bar",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["vin:volvo_trips:increase1d", "vin:volvo_x:rate5m"]
    );
    let recorded = recorded_names();
    assert!(recorded.iter().any(|n| n == "vin:volvo_trips:increase1d"));
    assert!(!recorded.iter().any(|n| n == "vin:volvo_x:rate5m"));
    let unknown =
        std::panic::catch_unwind(|| assert_known("a query", &metric_names("vin:volvo_x:rate5m")));
    assert!(unknown.is_err(), "an unknown recording-rule name passed");
    assert_known("a query", &metric_names("vin:volvo_trips:increase1d"));
}

// ---- Grafana -----------------------------------------------------------------------------------

/// Every string under an `expr` key, anywhere in `v`.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// Writes `exprs` as recording rules and has promtool parse them.
fn promtool_parses(exprs: &[String]) {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e.replace("$vin", ".+")})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("queries.yml");
    // JSON is YAML.
    let doc = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = run_tool(
        Command::new("promtool").args(["check", "rules"]).arg(&file),
        "prometheus",
    );
    assert!(
        out.status.success(),
        "dashboard queries promtool cannot parse ($vin replaced by .+):\n{}",
        text(&out)
    );
}

#[test]
fn dashboard_is_importable_and_queries_only_emitted_metrics() {
    let d: Value = serde_json::from_str(&read("dashboards/volvo.json")).expect("valid JSON");
    assert!(d.get("__inputs").is_none(), "no __inputs: importable as is");
    assert!(d["schemaVersion"].as_u64().unwrap_or(0) >= 36);
    assert!(d["title"].is_string() && d["uid"].is_string());

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` variable"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let vin = var("vin");
    assert_eq!(vin["type"], "query");
    assert_eq!(vin["multi"], true);
    assert_eq!(vin["includeAll"], true);
    assert_eq!(vin["datasource"]["uid"], "${datasource}");
    let query = match &vin["query"] {
        Value::String(s) => s.clone(),
        other => other["query"].as_str().unwrap_or_default().to_string(),
    };
    assert_eq!(
        query.replace(' ', ""),
        "label_values(volvo_vehicle_info,vin)"
    );

    let all = panels(&d);
    let mut ids = BTreeSet::new();
    for p in &all {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "id twice: {title}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        for t in targets.unwrap_or_else(|| panic!("{title}: no queries")) {
            let expr = t["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: empty query");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            // Per-car data follows the vin selector.
            if metric_names(expr)
                .iter()
                .any(|n| !n.starts_with("volvo_collect_"))
            {
                assert!(
                    expr.contains("vin=~\"$vin\""),
                    "{title}: {expr} ignores $vin"
                );
            }
        }
    }
    let geomap = all
        .iter()
        .find(|p| p["type"] == "geomap")
        .expect("a geomap panel");
    let mut geo = Vec::new();
    exprs(geomap, &mut geo);
    let geo = metric_names(&geo.join(" "));
    assert!(geo.contains("volvo_location_latitude_degrees"));
    assert!(geo.contains("volvo_location_longitude_degrees"));

    let mut queries = Vec::new();
    exprs(&d, &mut queries);
    assert!(queries.len() > 20, "only {} queries", queries.len());
    let mut used = metric_names(&queries.join("\n"));
    used.extend(metric_names(&query));
    for family in [
        "volvo_energy_battery_charge_level_ratio",
        "volvo_battery_charge_level_ratio",
        "volvo_fuel_amount_liters",
        "volvo_energy_electric_range_meters",
        "volvo_distance_to_empty_meters",
        "volvo_energy_charging_state",
        "volvo_odometer_meters",
        "volvo_trip_meter_meters",
        "volvo_average_fuel_consumption_liters_per_meter",
        "volvo_average_energy_consumption_joules_per_meter",
        "volvo_door_state",
        "volvo_window_state",
        "volvo_central_lock_state",
        "volvo_tyre_pressure_warning_state",
        "volvo_lamp_warning_state",
        "volvo_time_to_service_seconds",
        "volvo_distance_to_service_meters",
        "volvo_collect_api_success",
        "volvo_collect_run_success",
        "volvo_collect_last_success_timestamp_seconds",
        "volvo_collect_endpoint_error",
        "volvo_collect_requests_total",
        "volvo_energy_estimated_charge_end_timestamp_seconds",
        "vin:volvo_odometer_meters:increase1d",
        "vin:volvo_trip_distance_meters:increase1d",
        "vin:volvo_charged_energy_joules:increase1d",
        "vin:volvo_energy_driving_joules:sum1d",
        "vin:volvo_energy_consumption_joules_per_meter:ratio1d",
        "vin:volvo_fuel_consumption_liters_per_meter:ratio1d",
        "vin:volvo_energy_parked_drain_joules:sum1d",
        "vin:volvo_charging_sessions:increase1d",
        "vin:volvo_trips:increase1d",
        "vin:volvo_energy_charging_seconds:sum1d",
        "vin_currency:volvo_charged_energy_joules:cost1d",
        "vin_currency:volvo_fuel_used_liters:cost1d",
        "vin_currency:volvo_last_charge_energy_joules:cost",
    ] {
        assert!(
            used.contains(family),
            "the dashboard does not show {family}"
        );
    }
    assert_known("dashboards/volvo.json", &used);
    // A family the samples lack is listed for a query that needs it: the dashboard's, or
    // the recording rules' behind it.
    used.extend(metric_names(&read("prometheus/rules.yml")));
    for n in NOT_IN_SAMPLES {
        assert!(
            used.contains(*n),
            "{n} is listed in NOT_IN_SAMPLES but unused"
        );
    }
    promtool_parses(&queries);
}

// ---- Prometheus alert rules ----------------------------------------------------------------

#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let out = run_tool(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(repo("prometheus/alerts.yml")),
        "prometheus",
    );
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        text(&out)
    );

    let out = run_tool(
        Command::new("promtool")
            .args(["test", "rules", "alerts.test.yml"])
            .current_dir(repo("prometheus")),
        "prometheus",
    );
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
}

#[test]
fn alert_rules_are_complete_and_use_only_emitted_metrics() {
    let rules = read("prometheus/alerts.yml");
    assert!(rules.contains("- name: volvo-collect\n"));
    assert_known("prometheus/alerts.yml", &metric_names(&rules));

    // Each rule: a `for:`, a severity, and annotations that say what to do.
    let mut alerts = Vec::new();
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap().trim().to_string();
        for part in ["expr:", "for:", "severity:", "summary:", "description:"] {
            assert!(block.contains(part), "{name}: no {part}");
        }
        alerts.push(name);
    }
    assert!(alerts.len() >= 15, "only {} alerts", alerts.len());

    // Each rule has a firing and a not-firing case in the unit tests (those built on recorded
    // series are tested with the recording rules).
    let tests = read("prometheus/alerts.test.yml") + &read("prometheus/rules.test.yml");
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &alerts {
        let cases: Vec<&str> = lines
            .windows(2)
            .filter(|w| w[0] == format!("alertname: {name}"))
            .map(|w| w[1])
            .collect();
        assert!(
            cases.contains(&"exp_alerts: []"),
            "{name}: no case where it stays silent"
        );
        assert!(
            cases.contains(&"exp_alerts:"),
            "{name}: no case where it fires"
        );
    }
}

// ---- Prometheus recording rules --------------------------------------------------------------

#[test]
fn recording_rules_pass_promtool_check_and_unit_tests() {
    let out = run_tool(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(repo("prometheus/rules.yml")),
        "prometheus",
    );
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("SUCCESS: 19 rules found"),
        "{}",
        text(&out)
    );

    // The synthetic day, the failed run, the records' gap and reset, and the alerts built on
    // the recorded series.
    let out = run_tool(
        Command::new("promtool")
            .args(["test", "rules", "rules.test.yml"])
            .current_dir(repo("prometheus")),
        "prometheus",
    );
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
}

#[test]
fn recording_rules_are_named_by_convention_tested_and_use_only_emitted_metrics() {
    let rules = read("prometheus/rules.yml");
    assert!(rules.contains("  - name: volvo-collect-insight\n"));
    // The prices a dynamic tariff replaces are a group of their own.
    assert!(rules.contains("  - name: volvo-collect-prices\n"));
    let recorded = recorded_names();
    assert_eq!(
        recorded,
        [
            "currency:volvo_electricity_price_per_joule:max",
            "currency:volvo_fuel_price_per_liter:max",
            "vin:volvo_odometer_meters:increase1h",
            "vin:volvo_odometer_meters:increase1d",
            "vin:volvo_trip_distance_meters:increase1d",
            "vin:volvo_charged_energy_joules:increase1d",
            "vin:volvo_energy_driving_joules:sum1d",
            "vin:volvo_energy_consumption_joules_per_meter:ratio1d",
            "vin:volvo_fuel_used_liters:sum1d",
            "vin:volvo_fuel_consumption_liters_per_meter:ratio1d",
            "vin:volvo_energy_parked_drain_ratio:sum1d",
            "vin:volvo_energy_parked_drain_joules:sum1d",
            "vin:volvo_charging_sessions:increase1d",
            "vin:volvo_trips:increase1d",
            "vin:volvo_energy_charging_seconds:sum1d",
            "vin_currency:volvo_charged_energy_joules:cost1d",
            "vin_currency:volvo_fuel_used_liters:cost1d",
            "vin_currency:volvo_last_charge_energy_joules:cost",
            "vin_api:volvo_data_age_seconds:min",
        ]
    );
    // level:metric:operations, the level naming the labels the rule keeps.
    for name in &recorded {
        let parts: Vec<&str> = name.split(':').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(
            ["vin", "vin_api", "currency", "vin_currency"].contains(&parts[0]),
            "{name}"
        );
        assert!(parts[1].starts_with("volvo_"), "{name}");
        assert!(!parts[2].is_empty(), "{name}");
    }

    // Each rule uses only emitted names and the rules recorded before it.
    let mut known = emitted_names();
    known.extend(NOT_IN_SAMPLES.iter().map(|n| n.to_string()));
    for block in rules.split("- record: ").skip(1) {
        let name = block.lines().next().unwrap().trim().to_string();
        let unknown: Vec<String> = metric_names(block)
            .into_iter()
            .filter(|n| *n != name && !known.contains(n))
            .collect();
        assert!(unknown.is_empty(), "{name} uses unknown names: {unknown:?}");
        known.insert(name);
    }

    // Each rule's result is asserted in the unit tests.
    let tests = read("prometheus/rules.test.yml");
    for name in &recorded {
        assert!(
            tests.contains(&format!("- expr: {name}\n")),
            "{name} has no promql_expr_test"
        );
    }
}
