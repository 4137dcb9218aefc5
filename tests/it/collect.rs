//! End-to-end runs of the real binary against the real simulator: golden expositions per
//! sample car, promtool over them, every API's data, exit codes, the token on disk before any
//! API call, the textfile output, Extended Vehicle's shutdown, the not-supported memory, a
//! VIN not on the account, and the run's deadline.

use crate::support::*;

fn once_stdout(ws: &Workspace) -> (i32, String, String) {
    let o = ws.run(&["--once", "--stdout"]);
    (code(&o), stdout(&o), stderr(&o))
}

/// Guards the whole mapping of every API for each sample car against unintended change, and
/// checks each exposition with promtool and for duplicate series.
#[test]
fn golden_exposition_per_sample_car() {
    let sim = Sim::start(&[]);
    for (slug, vin) in [
        ("bev", BEV),
        ("phev", PHEV),
        ("petrol", PETROL),
        ("diesel", DIESEL),
    ] {
        let ws = Workspace::new(&sim, &format!("vins = [\"{vin}\"]"), "");
        let (code, out, err) = once_stdout(&ws);
        assert_eq!(code, 0, "{slug}: {err}");
        promtool_check(&out);
        check_exposition(&out);
        golden(&format!("{slug}.prom"), &normalize(&out));
    }
}

#[test]
fn all_sample_cars_in_one_run_with_every_api() {
    // Every answer takes 300 ms and the run has room for all its requests at once, so the
    // overlap below shows that no API waits for another, whatever the machine's load does to
    // the order in which a batch goes out.
    let sim = Sim::start(&["--latency", "300ms"]);
    let ws = Workspace::new(&sim, "", "[collect]\nconcurrency = 256\n");
    let (code, out, err) = once_stdout(&ws);
    assert_eq!(code, 0, "{err}");
    promtool_check(&out);
    check_exposition(&out);
    for vin in [BEV, PHEV, PETROL, DIESEL] {
        assert!(
            out.contains(&"volvo_vehicle_info{".to_string()) && out.contains(vin),
            "{vin}"
        );
        for api in [
            "connected_vehicle",
            "energy",
            "location",
            "extended_vehicle",
        ] {
            assert_eq!(
                value(
                    &out,
                    &format!("volvo_collect_api_success{{api=\"{api}\",vin=\"{vin}\"}}")
                ),
                Some(1.0),
                "{vin} {api}"
            );
        }
        assert!(
            value(
                &out,
                &format!("volvo_location_latitude_degrees{{vin=\"{vin}\"}}")
            )
            .is_some(),
            "{vin}"
        );
    }
    // The four APIs were asked concurrently: their requests overlap in time.
    let reqs = sim.stats()["requests"].as_array().unwrap().clone();
    let span = |prefix: &str| -> (f64, f64) {
        let r: Vec<_> = reqs
            .iter()
            .filter(|r| r["path"].as_str().unwrap().starts_with(prefix))
            .collect();
        assert!(!r.is_empty(), "{prefix}");
        let start = r
            .iter()
            .map(|r| r["start_ms"].as_f64().unwrap())
            .fold(f64::MAX, f64::min);
        let end = r
            .iter()
            .map(|r| r["end_ms"].as_f64().unwrap())
            .fold(0.0, f64::max);
        (start, end)
    };
    let spans: Vec<_> = [
        "/connected-vehicle/v2/vehicles/",
        "/energy/",
        "/location/",
        "/extended-vehicle/",
    ]
    .map(span)
    .to_vec();
    let latest_start = spans.iter().map(|s| s.0).fold(0.0, f64::max);
    let earliest_end = spans.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "API requests did not overlap: {spans:?}"
    );
}

#[test]
fn quirks_become_the_right_values() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let (code, out, err) = once_stdout(&ws);
    assert_eq!(code, 0, "{err}");
    let v = |k: &str| value(&out, k);
    // A numeric string: "31.5" liters.
    assert_eq!(
        v(&format!("volvo_fuel_amount_liters{{vin=\"{PHEV}\"}}")),
        Some(31.5)
    );
    // Miles to meters, whatever the spelling ("mi" here).
    let odo = v(&format!("volvo_odometer_meters{{vin=\"{PHEV}\"}}")).unwrap();
    let miles: f64 = sample_value(PHEV, "/odometer", "odometer");
    assert!((odo - miles * 1609.344).abs() < 1e-6, "{odo} vs {miles} mi");
    // Energy: electricRange in "mi".
    let range = v(&format!(
        "volvo_energy_electric_range_meters{{vin=\"{PHEV}\"}}"
    ))
    .unwrap();
    assert!((range - 7.0 * 1609.344).abs() < 1e-6, "{range}");
    // ERROR fields: absent, never 0, and their code is data.
    assert_eq!(
        v(&format!(
            "volvo_energy_charging_power_watts{{vin=\"{PHEV}\"}}"
        )),
        None
    );
    assert_eq!(
        v(&format!("volvo_energy_field_error{{code=\"NOT_SUPPORTED\",field=\"chargingPower\",vin=\"{PHEV}\"}}")),
        Some(1.0)
    );
    assert_eq!(
        v(&format!("volvo_energy_field_error{{code=\"PROPERTY_NOT_FOUND\",field=\"chargingCurrentLimit\",vin=\"{PHEV}\"}}")),
        Some(1.0)
    );
    assert!(!out.contains(&format!(
        "volvo_energy_charging_current_limit_amperes{{vin=\"{PHEV}\"}}"
    )));
    // The capabilities variant key chargingStatus (PHEV) and the spec's chargingSystemStatus (BEV).
    assert_eq!(
        v(&format!(
            "volvo_energy_field_supported{{field=\"chargingStatus\",vin=\"{PHEV}\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        v(&format!(
            "volvo_energy_field_supported{{field=\"chargingStatus\",vin=\"{BEV}\"}}"
        )),
        Some(1.0)
    );
    // BEV energy: percentages as ratios, minutes as seconds.
    assert_eq!(
        v(&format!(
            "volvo_energy_battery_charge_level_ratio{{vin=\"{BEV}\"}}"
        )),
        Some(0.67)
    );
    assert_eq!(
        v(&format!(
            "volvo_energy_time_to_target_charge_seconds{{vin=\"{BEV}\"}}"
        )),
        Some(6000.0)
    );
    assert_eq!(
        v(&format!(
            "volvo_energy_charging_state{{state=\"CHARGING\",vin=\"{BEV}\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        v(&format!(
            "volvo_energy_charging_state{{state=\"IDLE\",vin=\"{BEV}\"}}"
        )),
        Some(0.0)
    );
    // A car whose capabilities say energy is unsupported is not asked for its state.
    assert_eq!(
        v(&format!("volvo_energy_supported{{vin=\"{PETROL}\"}}")),
        Some(0.0)
    );
    assert!(sim
        .requests(&format!("/energy/v2/vehicles/{PETROL}/state"))
        .is_empty());
    // Location without a timestamp: position and heading, no source time.
    assert!(v(&format!("volvo_location_heading_degrees{{vin=\"{PHEV}\"}}")).is_some());
    assert_eq!(
        v(&format!(
            "volvo_location_timestamp_seconds{{vin=\"{PHEV}\"}}"
        )),
        None
    );
    assert!(v(&format!(
        "volvo_location_timestamp_seconds{{vin=\"{BEV}\"}}"
    ))
    .is_some());
    // An unknown enum value is kept, the known ones are 0.
    assert_eq!(
        v(&format!(
            "volvo_window_state{{state=\"VENTILATION_OPEN\",vin=\"{PETROL}\",window=\"sunroof\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        v(&format!(
            "volvo_window_state{{state=\"CLOSED\",vin=\"{PETROL}\",window=\"sunroof\"}}"
        )),
        Some(0.0)
    );
    // A unit nobody knows ("gal") is skipped and counted, not guessed.
    assert_eq!(
        v(&format!("volvo_collect_fields_skipped{{api=\"extended_vehicle\",reason=\"unknown_unit\",vin=\"{DIESEL}\"}}")),
        Some(1.0)
    );
    assert!(!out.contains(&format!("resource=\"fuelAmount\",vin=\"{DIESEL}\"")));
    // Months to seconds; engine hours to seconds.
    assert_eq!(
        v(&format!("volvo_time_to_service_seconds{{vin=\"{PHEV}\"}}")),
        Some(5.0 * 2629746.0)
    );
    assert_eq!(
        v(&format!(
            "volvo_engine_running_time_to_service_seconds{{vin=\"{DIESEL}\"}}"
        )),
        Some(38.0 * 3600.0)
    );
    // A field the model lacks: no fuel on the BEV, no battery capacity on the petrol car.
    assert!(!out.contains(&format!("volvo_fuel_amount_liters{{vin=\"{BEV}\"}}")));
    assert!(!out.contains(&format!(
        "volvo_battery_capacity_joules{{vin=\"{PETROL}\"}}"
    )));
    // The 23 lamp warnings, two of them failing on the diesel.
    let lamps = out
        .lines()
        .filter(|l| {
            l.starts_with("volvo_lamp_warning_state{")
                && l.contains(DIESEL)
                && l.contains("state=\"FAILURE\"")
        })
        .count();
    assert_eq!(lamps, 23);
    let failing = out
        .lines()
        .filter(|l| {
            l.starts_with("volvo_lamp_warning_state{")
                && l.contains(DIESEL)
                && l.contains("state=\"FAILURE\"")
                && l.ends_with(" 1")
        })
        .count();
    assert_eq!(failing, 2);
}

/// A value straight from the sample car files, to compare conversions against.
fn sample_value(vin: &str, suffix: &str, field: &str) -> f64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/simulator/cars");
    for f in std::fs::read_dir(dir).unwrap() {
        let car: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap();
        if car["vin"] == vin {
            let path = format!("/connected-vehicle/v2/vehicles/{vin}{suffix}");
            let v = &car["responses"][&path]["body"]["data"][field]["value"];
            return v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap();
        }
    }
    panic!("no sample car {vin}");
}

#[test]
fn no_token_file_exits_77_and_says_to_log_in() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    std::fs::remove_file(ws.path("token.json")).unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 77);
    // The login as the user types it: this configuration file is not where `login` looks.
    let config = ws.path("collector.toml");
    assert_stderr_contains(
        &o,
        &format!(
            "run `volvo-collect login --config {}` first",
            config.display()
        ),
    );
    // The self-metrics still go out, so an alert can say "login needed".
    assert_eq!(
        value(
            &stdout(&o),
            "volvo_collect_login_needed{account=\"default\"}"
        ),
        Some(1.0)
    );
    assert!(sim.requests("/connected-vehicle").is_empty());
}

#[test]
fn dead_refresh_token_exits_77() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let original = ws.read("token.json");
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    // Put the spent refresh token back: Volvo answers invalid_grant.
    ws.write("token.json", &original);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    assert_stderr_contains(&o, "invalid_grant");
    assert_stderr_contains(&o, "volvo-collect login");
}

#[test]
fn configuration_errors_exit_78_with_one_line() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "colour = \"red\"", "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "collector.toml line 9: in [volvo], `colour`: unknown field `colour`, expected one of"
        ),
        "{err}"
    );

    let ws = Workspace::new(&sim, "", "[collect]\ntimeout = \"soon\"\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78);
    assert_stderr_contains(
        &o,
        "line 11: in [collect], `timeout` = \"soon\": invalid duration",
    );

    let o = std::process::Command::new(BIN)
        .args(["--config", "/nonexistent/collector.toml", "--once"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 78);
    assert_stderr_contains(
        &o,
        "cannot read configuration file /nonexistent/collector.toml",
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = std::process::Command::new(BIN)
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
}

/// The rotated refresh token must be on disk before the first API request: a run killed while
/// its first API request is still pending leaves a token file that works.
#[test]
fn rotated_token_is_saved_before_any_api_call() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let before = ws.token()["refresh_token"].as_str().unwrap().to_string();
    sim.faults(serde_json::json!([{"path": "/connected-vehicle/v2/vehicles", "status": 200, "body": "{\"data\":[]}", "delay_ms": 20000, "times": 1}]));
    let mut child = ws
        .command(&["--once", "--stdout"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the refresh has happened, then give the first API request time to be sent.
    let t0 = std::time::Instant::now();
    while sim.stats()["refreshes"].as_u64() != Some(1) {
        assert!(t0.elapsed().as_secs() < 20, "no refresh");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let after = ws.token();
    assert_ne!(
        after["refresh_token"].as_str().unwrap(),
        before,
        "rotated token not saved"
    );
    assert!(after["expires_at"].as_i64().unwrap() > unix_now() + 200);
    // The saved pair works: the next run needs no refresh and succeeds.
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sim.stats()["invalid_grants"], 0);
    // And the previous file is kept as .bak, 0600 like the token.
    assert!(ws.read("token.json.bak").contains(&before));
    let mode = mode(&ws.path("token.json"));
    assert_eq!(mode, 0o600);
}

#[test]
fn textfile_is_complete_public_and_alone() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    let out_dir = ws.path("textfiles");
    std::fs::create_dir(&out_dir).unwrap();
    let prom = out_dir.join("volvo.prom");
    let o = ws.run(&["--once", "--stdout", "--textfile", prom.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(file, stdout(&o));
    assert_eq!(mode(&prom), 0o644);
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("volvo.prom")]);
    // An unwritable textfile is an output failure: exit 74, and stdout is still written.
    let o = ws.run(&[
        "--once",
        "--stdout",
        "--textfile",
        "/nonexistent-dir/volvo.prom",
    ]);
    assert_eq!(code(&o), 74);
    assert_stderr_contains(&o, "output textfile failed");
    assert!(stdout(&o).contains("volvo_odometer_meters"));
}

#[test]
fn extended_vehicle_gone_is_said_once_and_skipped_for_a_day() {
    let sim = Sim::start(&["--extended", "gone"]);
    let ws = Workspace::new(&sim, "", "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stderr(&o)
            .matches("Extended Vehicle API answers that it is shut down")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
    assert!(value(
        &stdout(&o),
        "volvo_collect_api_unavailable_until_timestamp_seconds{account=\"default\",api=\"extended_vehicle\"}"
    )
    .is_some());
    assert!(stdout(&o).contains("volvo_odometer_meters"));
    // A gone API is neither a success nor a failure: it has no success series (it was 1, as
    // if its data had come), as on the runs that skip it.
    assert!(
        !stdout(&o).contains("volvo_collect_api_success{api=\"extended_vehicle\""),
        "{}",
        stdout(&o)
    );
    let asked = sim.requests("/extended-vehicle/").len();
    assert!(asked >= 1);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        sim.requests("/extended-vehicle/").len(),
        asked,
        "asked again within the day"
    );
    assert!(
        !stderr(&o).contains("shut down"),
        "said twice: {}",
        stderr(&o)
    );
    assert!(value(
        &stdout(&o),
        "volvo_collect_api_unavailable_until_timestamp_seconds{account=\"default\",api=\"extended_vehicle\"}"
    )
    .is_some());
}

#[test]
fn not_supported_endpoints_are_remembered() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        sim.requests(&format!("{BEV}/engine"))
            .iter()
            .filter(|r| r["path"].as_str().unwrap().ends_with("/engine"))
            .count(),
        1
    );
    assert_eq!(
        value(&stdout(&o), &format!("volvo_collect_endpoint_not_supported{{api=\"connected_vehicle\",endpoint=\"engine\",vin=\"{BEV}\"}}")),
        Some(1.0)
    );
    // Counters survive runs: two runs, two requests of an every-run endpoint.
    assert_eq!(
        value(
            &stdout(&o),
            "volvo_collect_requests_total{account=\"default\",api=\"connected_vehicle\",endpoint=\"/vehicles/{vin}/doors\",status=\"200\"}"
        ),
        Some(2.0)
    );

    // A car without the Energy API (404 on the whole endpoint) is not asked it again every
    // run either: it was, at a third of the car's requests.
    let ws = Workspace::new(&sim, &format!("vins = [\"{DIESEL}\"]"), "");
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    let energy = || {
        sim.requests(&format!("/energy/v2/vehicles/{DIESEL}/"))
            .len()
    };
    let asked = energy();
    assert!(asked >= 1);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(energy(), asked, "Energy asked again");
    assert_eq!(
        value(&stdout(&o), &format!("volvo_collect_endpoint_not_supported{{api=\"energy\",endpoint=\"energy_capabilities\",vin=\"{DIESEL}\"}}")),
        Some(1.0)
    );
}

#[test]
fn a_vin_not_on_the_account_is_named() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\", \"YV1AAAAAAAA999999\"]"),
        "",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1);
    assert_stderr_contains(
        &o,
        "YV1AAAAAAAA999999: this VIN (volvo.vins) is not on the account",
    );
    assert!(stdout(&o).contains(&format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")));

    // When none of the configured cars is on the account, only the configuration can help:
    // exit 78 (it was 1, as if some car had been read).
    let ws = Workspace::new(&sim, "vins = [\"YV1AAAAAAAA999999\"]", "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "YV1AAAAAAAA999999: this VIN (volvo.vins) is not on the account",
    );
    assert!(
        !stderr(&o).contains("the next run tries again"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_deadline_cuts_off_a_slow_endpoint_and_the_rest_is_delivered() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[collect]\ntimeout = \"2s\"\n",
    );
    sim.faults(serde_json::json!([{"path": "/statistics", "status": 200, "body": "{\"data\":{}}", "delay_ms": 60000}]));
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        value(&out, &format!("volvo_collect_endpoint_error{{api=\"connected_vehicle\",endpoint=\"statistics\",reason=\"timeout\",vin=\"{BEV}\"}}")),
        Some(1.0)
    );
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    assert!(value(
        &out,
        &format!("volvo_energy_battery_charge_level_ratio{{vin=\"{BEV}\"}}")
    )
    .is_some());
    promtool_check(&out);
}

#[test]
fn demo_prints_every_sample_car() {
    let o = std::process::Command::new(BIN)
        .arg("demo")
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for vin in [BEV, PHEV, PETROL, DIESEL] {
        assert!(
            value(&out, &format!("volvo_odometer_meters{{vin=\"{vin}\"}}")).is_some(),
            "{vin}"
        );
    }
    promtool_check(&out);
}

/// Guards `simulate`'s printed configuration: pasted as it is, it reads the simulator with
/// the token `--write-token` wrote. It names all three of Volvo's URLs: with `api_url` alone, a
/// refresh went to the real Volvo ID with the simulator's refresh token and secret.
#[test]
fn the_configuration_simulate_prints_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.json");
    let mut sim = std::process::Command::new(BIN)
        .args(["simulate", "--listen", "127.0.0.1:0", "--write-token"])
        .arg(&token)
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(sim.stdout.take().unwrap()));
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("token_url") {
            break;
        }
    }
    let table = &printed[printed.find("[volvo]").expect(&printed)..];
    for key in ["api_url", "auth_url", "token_url", "token_file"] {
        assert!(table.contains(&format!("\n{key} = ")), "{key}: {printed}");
    }
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, table).unwrap();
    let o = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--once", "--stdout"])
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(value(
        &stdout(&o),
        &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")
    )
    .is_some());
}

/// Location privacy: coordinates rounded to `precision`, or not exported at all while the
/// distance from home still is.
#[test]
fn location_privacy_settings() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let full = stdout(&ws.run(&["--once", "--stdout"]));
    let lat = value(
        &full,
        &format!("volvo_location_latitude_degrees{{vin=\"{BEV}\"}}"),
    )
    .unwrap();
    let lon = value(
        &full,
        &format!("volvo_location_longitude_degrees{{vin=\"{BEV}\"}}"),
    )
    .unwrap();

    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[location]\nprecision = 2\n",
    );
    let out = stdout(&ws.run(&["--once", "--stdout"]));
    assert_eq!(
        value(
            &out,
            &format!("volvo_location_latitude_degrees{{vin=\"{BEV}\"}}")
        ),
        Some((lat * 100.0).round() / 100.0)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_location_longitude_degrees{{vin=\"{BEV}\"}}")
        ),
        Some((lon * 100.0).round() / 100.0)
    );

    // Home 0.01° of latitude north of the car: about 1.1 km away, and no coordinates at all.
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        &format!(
            "[location]\nexport_coordinates = false\nhome_latitude = {}\nhome_longitude = {lon}\n",
            lat + 0.01
        ),
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("volvo_location_latitude_degrees{"));
    assert!(!out.contains("volvo_location_longitude_degrees{"));
    assert!(!out.contains("volvo_location_altitude_meters{"));
    let d = value(
        &out,
        &format!("volvo_location_home_distance_meters{{vin=\"{BEV}\"}}"),
    )
    .unwrap();
    assert!((d - 1112.0).abs() < 5.0, "{d}");
    assert!(!out.contains(&format!("{lat}")), "the latitude leaked");
    promtool_check(&out);
}

/// A configuration file holding secrets that others can read gets a warning.
#[test]
fn a_world_readable_config_with_secrets_is_warned_about() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        ws.path("collector.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert_stderr_contains(&o, "holds secrets and other users can read it");
    std::fs::set_permissions(
        ws.path("collector.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let o = ws.run(&["--once", "--stdout"]);
    assert!(
        !stderr(&o).contains("other users can read"),
        "{}",
        stderr(&o)
    );
}

/// Guards the API duration against a made-up 0: a run that asks an API nothing for a car
/// (its answers replayed) leaves the car's `volvo_collect_api_duration_seconds` for that API
/// out, while its success still shows; an API it asked has its duration.
#[test]
fn an_api_asked_nothing_has_no_duration() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let (code, out, err) = once_stdout(&ws);
    assert_eq!(code, 0, "{err}");
    let duration =
        |api: &str| format!("volvo_collect_api_duration_seconds{{api=\"{api}\",vin=\"{BEV}\"}}");
    let success = |api: &str| format!("volvo_collect_api_success{{api=\"{api}\",vin=\"{BEV}\"}}");
    assert!(value(&out, &duration("location")).is_some(), "{out}");

    let before = sim.gets().len();
    let (code, out, err) = once_stdout(&ws);
    assert_eq!(code, 0, "{err}");
    let asked: Vec<String> = sim.gets()[before..]
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !asked.iter().any(|p| p.starts_with("/location/")),
        "{asked:?}"
    );
    assert!(
        asked.iter().any(|p| p.starts_with("/connected-vehicle/")),
        "{asked:?}"
    );
    assert_eq!(value(&out, &success("location")), Some(1.0), "{out}");
    assert_eq!(value(&out, &duration("location")), None, "{out}");
    assert!(
        value(&out, &duration("connected_vehicle")).is_some(),
        "{out}"
    );
}

/// Guards the output against a car no longer collected: after it was taken out of
/// `volvo.vins`, its remembered back-offs were still exported for a day (and put back into a
/// Pushgateway group every run). They stay in the state, and only the run's cars are shown.
#[test]
fn a_car_taken_out_of_the_configuration_leaves_the_output() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\", \"{DIESEL}\"]"), "");
    let o = ws.run(&["--once", "--stdout"]);
    assert!(
        stdout(&o).contains(&format!("vin=\"{DIESEL}\"")),
        "{}",
        stdout(&o)
    );
    let config = ws.read("collector.toml").replace(
        &format!("vins = [\"{BEV}\", \"{DIESEL}\"]"),
        &format!("vins = [\"{BEV}\"]"),
    );
    ws.write("collector.toml", &config);
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains(DIESEL), "{}", stdout(&o));
    assert!(ws.read("token.state.json").contains(DIESEL));
}

/// A FIFO held open for reading that nobody reads, with a pipe buffer of one page: the
/// collector's standard output blocks once the page is full.
fn unread_pipe(ws: &Workspace) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let path = ws.path("unread");
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(made.unwrap().success(), "mkfifo");
    // Read and write: opening a FIFO so never waits for the other end.
    let pipe = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: a plain fcntl on a descriptor this test owns.
    unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    pipe
}

/// Starts `--once` with standard output into `pipe` and the textfile `textfile`.
fn run_into(
    ws: &Workspace,
    pipe: std::fs::File,
    textfile: &std::path::Path,
) -> std::process::Child {
    let textfile = textfile.to_str().unwrap();
    ws.command(&["--once", "--stdout", "--textfile", textfile])
        .stdout(pipe)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Guards a standard output nobody reads (a stalled pipe, a paused terminal): the textfile
/// is still written, the run ends by its deadline with 74, and what the pipe took ends with a
/// whole line. It blocked the run for ever, past the deadline, before the other outputs.
#[test]
fn an_unread_standard_output_holds_up_neither_the_textfile_nor_the_deadline() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ntimeout = \"2s\"\n");
    let pipe = unread_pipe(&ws);
    let mut reader = pipe.try_clone().unwrap();
    let textfile = ws.path("volvo.prom");
    let child = run_into(&ws, pipe, &textfile);
    let limit = std::time::Duration::from_secs(30);
    let o = wait_at_most(child, limit, "ended by its deadline of 2 s");
    assert_eq!(code(&o), 74, "{}", stderr(&o));
    assert_stderr_contains(
        &o,
        "output stdout failed: standard output was not read whole before the run's deadline",
    );
    // What the pipe took ends with a whole line: a reader never sees half a sample.
    let mut taken = vec![0u8; 64 * 1024];
    let n = std::io::Read::read(&mut reader, &mut taken).unwrap();
    assert!(
        n > 0 && taken[n - 1] == b'\n',
        "{n} bytes, ending {:?}",
        taken[..n].last()
    );
    let written = std::fs::read_to_string(&textfile).unwrap();
    assert!(written.contains("volvo_odometer_meters{"), "{written}");
}

/// Guards a stop signal while standard output is not read: the run ends with 75, as a stop
/// does (the signal was not even seen while the write blocked).
#[test]
fn a_stop_ends_a_run_whose_standard_output_is_not_read() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "[collect]\ntimeout = \"60s\"\n");
    let pipe = unread_pipe(&ws);
    let textfile = ws.path("volvo.prom");
    let child = run_into(&ws, pipe, &textfile);
    // The textfile is written before standard output is waited for.
    let start = std::time::Instant::now();
    while !textfile.exists() {
        assert!(start.elapsed().as_secs() < 30, "no textfile");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let limit = std::time::Duration::from_secs(20);
    let o = wait_at_most(child, limit, "ended by SIGTERM");
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert_stderr_contains(&o, "stopped by a signal");
}

/// Guards `--once --stdout | head`: a pipe its reader closed is no failure of the output (it
/// was 74 with a warning), as for `check`, `man` and `completions`.
#[test]
fn a_standard_output_closed_by_its_reader_is_no_failure() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, "", "");
    // Closed long before the run has collected anything to write.
    let o = with_stdout_closed(ws.command(&["--once", "--stdout"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("output stdout failed"),
        "{}",
        stderr(&o)
    );
}
