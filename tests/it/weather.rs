//! Weather at the car: off without an API key, then the fake OpenWeatherMap endpoint of the
//! simulator gives temperature, feels-like, humidity and pressure per car, with the
//! observation time; a weather failure never fails the car's data.

use crate::support::*;

fn with_weather(sim: &Sim, key: &str) -> Workspace {
    Workspace::new(
        sim,
        &format!("vins = [\"{BEV}\"]"),
        &format!(
            "[weather]\napi_key = \"{key}\"\nurl = \"{}/data/2.5/weather\"\n",
            sim.url
        ),
    )
}

#[test]
fn weather_is_off_without_a_key() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), "");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0);
    assert!(!stdout(&o).contains("volvo_weather_"));
    assert!(sim.requests("/data/2.5/weather").is_empty());
    assert!(!stderr(&o).contains("[weather]"), "{}", stderr(&o));

    // A [weather] table without a key says the weather is off; its values are still checked.
    let ws = Workspace::new(
        &sim,
        &format!("vins = [\"{BEV}\"]"),
        "[weather]\nmin_age = \"5m\"\n",
    );
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_stderr_contains(&o, "has no api_key");
    assert!(sim.requests("/data/2.5/weather").is_empty());
    for table in ["[weather]\n", "[weather]\napi_key = \"\"\n"] {
        let ws = Workspace::new(&sim, &format!("vins = [\"{BEV}\"]"), table);
        let o = ws.run(&["--once", "--stdout"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_stderr_contains(&o, "[weather] has no api_key");
    }
    let ws = Workspace::new(&sim, "", "[weather]\nmin_age = \"9days\"\n");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert_stderr_contains(&o, "weather.min_age: too long");
}

#[test]
fn weather_at_the_cars_position() {
    let sim = Sim::start(&[]);
    let ws = with_weather(&sim, "demo-weather-key");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    promtool_check(&out);
    let lat = value(
        &out,
        &format!("volvo_location_latitude_degrees{{vin=\"{BEV}\"}}"),
    )
    .unwrap();
    // The simulator's temperature follows the position it was sent, rounded to 2 decimals.
    let sent = (lat * 100.0).round() / 100.0;
    let expect = ((20.0 - sent / 5.0) * 10.0).round() / 10.0;
    assert_eq!(
        value(
            &out,
            &format!("volvo_weather_temperature_celsius{{vin=\"{BEV}\"}}")
        ),
        Some(expect)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_weather_feels_like_celsius{{vin=\"{BEV}\"}}")
        ),
        Some(expect - 2.5)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_weather_humidity_ratio{{vin=\"{BEV}\"}}")
        ),
        Some(0.76)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_weather_pressure_pascals{{vin=\"{BEV}\"}}")
        ),
        Some(101200.0)
    );
    assert_eq!(
        value(
            &out,
            &format!("volvo_weather_timestamp_seconds{{vin=\"{BEV}\"}}")
        ),
        Some(1_795_000_000.0)
    );
    // Reused for its minimum age: a second run asks OpenWeatherMap nothing.
    assert_eq!(code(&ws.run(&["--once", "--stdout"])), 0);
    assert_eq!(sim.requests("/data/2.5/weather").len(), 1);
}

#[test]
fn a_weather_failure_never_fails_the_cars_data() {
    let sim = Sim::start(&[]);
    let ws = with_weather(&sim, "wrong-key");
    let o = ws.run(&["--once", "--stdout"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(value(&out, &format!("volvo_odometer_meters{{vin=\"{BEV}\"}}")).is_some());
    assert_eq!(
        value(&out, &format!("volvo_collect_endpoint_error{{api=\"weather\",endpoint=\"weather\",reason=\"unauthorized\",vin=\"{BEV}\"}}")),
        Some(1.0)
    );
    assert_stderr_contains(&o, "check weather.api_key");
    assert!(!stderr(&o).contains("wrong-key"), "the key is in the log");
}
