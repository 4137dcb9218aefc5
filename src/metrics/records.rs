//! The records the collector keeps of each car (trips and charging sessions, see
//! [`crate::records`]) and the prices of `[prices]`, as metric families. Pure: the counters are
//! exported from the first run on, at 0, so that `increase()` sees the first trip; a figure
//! that could not be worked out is absent, never 0.

use super::catalog::{self, Family};
use super::Exposition;
use crate::config::Prices;
use crate::records::CarRecords;

/// Joules in a kilowatt-hour.
const JOULES_PER_KWH: f64 = 3.6e6;

/// The records of one car.
pub fn map(exp: &mut Exposition, vin: &str, r: &CarRecords) {
    let l = [vin];
    exp.counter(&catalog::TRIPS_TOTAL, &l, r.trips as f64);
    exp.counter(
        &catalog::TRIP_DISTANCE_METERS_TOTAL,
        &l,
        r.trip_distance_meters,
    );
    exp.counter(
        &catalog::CHARGING_SESSIONS_TOTAL,
        &l,
        r.charging_sessions as f64,
    );
    exp.counter(
        &catalog::CHARGED_ENERGY_JOULES_TOTAL,
        &l,
        r.charged_energy_joules,
    );
    let mut gauge = |f: &Family, v: Option<f64>| {
        if let Some(v) = v {
            exp.gauge(f, &l, v);
        }
    };
    if let Some(t) = &r.last_trip {
        gauge(
            &catalog::LAST_TRIP_START_TIMESTAMP_SECONDS,
            t.start.map(|s| s as f64),
        );
        gauge(
            &catalog::LAST_TRIP_END_TIMESTAMP_SECONDS,
            Some(t.end as f64),
        );
        gauge(&catalog::LAST_TRIP_DISTANCE_METERS, t.distance_meters);
        gauge(
            &catalog::LAST_TRIP_DURATION_SECONDS,
            t.duration_seconds().map(|s| s as f64),
        );
        gauge(&catalog::LAST_TRIP_ENERGY_JOULES, t.energy_joules);
        gauge(&catalog::LAST_TRIP_FUEL_LITERS, t.fuel_liters);
    }
    if let Some(c) = &r.last_charge {
        gauge(
            &catalog::LAST_CHARGE_START_TIMESTAMP_SECONDS,
            Some(c.start as f64),
        );
        gauge(
            &catalog::LAST_CHARGE_END_TIMESTAMP_SECONDS,
            Some(c.end as f64),
        );
        gauge(&catalog::LAST_CHARGE_ENERGY_JOULES, c.energy_joules);
        gauge(&catalog::LAST_CHARGE_BATTERY_START_RATIO, c.battery_start);
        gauge(&catalog::LAST_CHARGE_BATTERY_END_RATIO, c.battery_end);
        gauge(
            &catalog::LAST_CHARGE_AVERAGE_POWER_WATTS,
            c.average_power_watts(),
        );
    }
}

/// The configured prices, in base units: per joule and per liter, labelled with the
/// currency. Once per run, not per car.
pub fn map_prices(exp: &mut Exposition, p: &Prices) {
    let l = [p.currency.as_str()];
    if let Some(kwh) = p.electricity_per_kwh {
        exp.gauge(
            &catalog::ELECTRICITY_PRICE_PER_JOULE,
            &l,
            kwh / JOULES_PER_KWH,
        );
    }
    if let Some(liter) = p.fuel_per_liter {
        exp.gauge(&catalog::FUEL_PRICE_PER_LITER, &l, liter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ChargingStatus, Observation, Timed};

    const VIN: &str = "YV1XZK9V0R2000001";

    fn text(exp: &Exposition) -> String {
        String::from_utf8(exp.encode()).unwrap()
    }

    /// Guards the first run: the four counters at 0, and no gauge of a trip or charge that
    /// has not happened.
    #[test]
    fn a_car_without_records_exports_its_counters_at_zero() {
        let mut exp = Exposition::new();
        map(&mut exp, VIN, &CarRecords::default());
        assert_eq!(
            text(&exp),
            "\
# HELP volvo_charged_energy_joules_total Energy added by the counted charging sessions, in joules: the rise of the battery level times the usable capacity. Sessions of a car without a known capacity add nothing.
# TYPE volvo_charged_energy_joules_total counter
volvo_charged_energy_joules_total{vin=\"YV1XZK9V0R2000001\"} 0
# HELP volvo_charging_sessions_total Charging sessions, worked out by the collector from the car's uploads (CHARGING, or a rising battery level while plugged in, until DONE, IDLE, unplugged or 30 minutes without a rise) and kept in the state file.
# TYPE volvo_charging_sessions_total counter
volvo_charging_sessions_total{vin=\"YV1XZK9V0R2000001\"} 0
# HELP volvo_trip_distance_meters_total Distance of the counted trips, in meters: for each, the odometer's difference between the parked readings on either side.
# TYPE volvo_trip_distance_meters_total counter
volvo_trip_distance_meters_total{vin=\"YV1XZK9V0R2000001\"} 0
# HELP volvo_trips_total Trips, worked out by the collector from the car's uploads (the engine ran or the odometer moved, between two parked readings) and kept in the state file.
# TYPE volvo_trips_total counter
volvo_trips_total{vin=\"YV1XZK9V0R2000001\"} 0
"
        );
    }

    /// Feeds the records a parked car, a 12 km trip and a charge from 40 % to 60 %.
    fn a_trip_and_a_charge(capacity: Option<f64>) -> CarRecords {
        let t0 = 1_796_083_200;
        let base = Observation {
            now: t0,
            newest_upload: Some(t0 - 60),
            engine_running: Some(Timed::new(false, t0 - 60)),
            odometer_meters: Some(Timed::new(100_000.0, t0 - 60)),
            battery_level: Some(Timed::new(0.5, t0 - 60)),
            charging: Some(Timed::new(ChargingStatus::Idle, t0 - 60)),
            charger_connected: Some(Timed::new(false, t0 - 60)),
            capacity_joules: capacity,
            ..Observation::default()
        };
        let mut r = CarRecords::default();
        let mut o = base.clone();
        r.observe(&o);
        // Awake at t0 + 240, started at +300, parked at +1500 after 12 km and 10 %.
        o.now = t0 + 300;
        o.newest_upload = Some(t0 + 300);
        o.engine_running = Some(Timed::new(true, t0 + 300));
        r.observe(&Observation {
            newest_upload: Some(t0 + 240),
            now: t0 + 240,
            ..base.clone()
        });
        r.observe(&o);
        o.now = t0 + 1500;
        o.engine_running = Some(Timed::new(false, t0 + 1500));
        o.odometer_meters = Some(Timed::new(112_000.0, t0 + 1500));
        o.battery_level = Some(Timed::new(0.4, t0 + 1500));
        o.newest_upload = Some(t0 + 1500);
        for now in [t0 + 1500, t0 + 1800, t0 + 2100] {
            r.observe(&Observation { now, ..o.clone() });
        }
        // Plugged in and charging from +3600 to +7200, 40 % to 60 %, then DONE.
        o.charger_connected = Some(Timed::new(true, t0 + 3600));
        o.charging = Some(Timed::new(ChargingStatus::Charging, t0 + 3600));
        r.observe(&Observation {
            now: t0 + 3600,
            ..o.clone()
        });
        o.battery_level = Some(Timed::new(0.6, t0 + 7200));
        o.charging = Some(Timed::new(ChargingStatus::Done, t0 + 7200));
        r.observe(&Observation {
            now: t0 + 7200,
            ..o.clone()
        });
        r
    }

    /// Guards the exact exposition of a trip and a charge with a known capacity (80 kWh).
    #[test]
    fn last_trip_and_charge_with_a_capacity() {
        let mut exp = Exposition::new();
        map(&mut exp, VIN, &a_trip_and_a_charge(Some(288e6)));
        let out = text(&exp);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        let v = "{vin=\"YV1XZK9V0R2000001\"}";
        assert_eq!(
            samples,
            [
                format!("volvo_charged_energy_joules_total{v} 57600000"),
                format!("volvo_charging_sessions_total{v} 1"),
                format!("volvo_last_charge_average_power_watts{v} 16000"),
                format!("volvo_last_charge_battery_end_ratio{v} 0.6"),
                format!("volvo_last_charge_battery_start_ratio{v} 0.4"),
                format!("volvo_last_charge_end_timestamp_seconds{v} 1796090400"),
                format!("volvo_last_charge_energy_joules{v} 57600000"),
                format!("volvo_last_charge_start_timestamp_seconds{v} 1796086800"),
                format!("volvo_last_trip_distance_meters{v} 12000"),
                format!("volvo_last_trip_duration_seconds{v} 1260"),
                format!("volvo_last_trip_end_timestamp_seconds{v} 1796084700"),
                format!("volvo_last_trip_energy_joules{v} 28800000"),
                format!("volvo_last_trip_start_timestamp_seconds{v} 1796083440"),
                format!("volvo_trip_distance_meters_total{v} 12000"),
                format!("volvo_trips_total{v} 1"),
            ]
        );
        assert!(out.contains("# TYPE volvo_last_trip_distance_meters gauge\n"));
        assert!(out.contains("# TYPE volvo_trips_total counter\n"));
    }

    /// Guards "absent, never 0": without a capacity there is no energy and no power, and an
    /// electric car has no fuel; the rest is exported.
    #[test]
    fn no_capacity_no_energy_series() {
        let mut exp = Exposition::new();
        map(&mut exp, VIN, &a_trip_and_a_charge(None));
        let out = text(&exp);
        for absent in [
            "volvo_last_trip_energy_joules{",
            "volvo_last_trip_fuel_liters{",
            "volvo_last_charge_energy_joules{",
            "volvo_last_charge_average_power_watts{",
        ] {
            assert!(!out.contains(absent), "{absent} in\n{out}");
        }
        for present in [
            "volvo_charged_energy_joules_total{vin=\"YV1XZK9V0R2000001\"} 0\n",
            "volvo_charging_sessions_total{vin=\"YV1XZK9V0R2000001\"} 1\n",
            "volvo_last_charge_battery_end_ratio{vin=\"YV1XZK9V0R2000001\"} 0.6\n",
            "volvo_last_trip_distance_meters{vin=\"YV1XZK9V0R2000001\"} 12000\n",
        ] {
            assert!(out.contains(present), "{present} not in\n{out}");
        }
    }

    /// Guards the prices: per joule and per liter, labelled with the currency; an unset
    /// price is absent.
    #[test]
    fn prices_in_base_units() {
        let mut exp = Exposition::new();
        map_prices(
            &mut exp,
            &Prices {
                currency: "EUR".into(),
                electricity_per_kwh: Some(0.36),
                fuel_per_liter: None,
            },
        );
        assert_eq!(
            text(&exp),
            "\
# HELP volvo_electricity_price_per_joule Price of charged energy from [prices], per joule (the configured price per kWh divided by 3.6e6).
# TYPE volvo_electricity_price_per_joule gauge
volvo_electricity_price_per_joule{currency=\"EUR\"} 0.0000001
"
        );
        let mut exp = Exposition::new();
        map_prices(
            &mut exp,
            &Prices {
                currency: "SEK".into(),
                electricity_per_kwh: None,
                fuel_per_liter: Some(19.45),
            },
        );
        assert!(text(&exp).ends_with("volvo_fuel_price_per_liter{currency=\"SEK\"} 19.45\n"));
    }
}
