//! The sample cars: one JSON file per car holding Volvo's exact answers, path by path. Beyond
//! the four samples, cars are copies with new VINs (for benchmarks of larger fleets).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::Options;

#[derive(Debug, Deserialize)]
pub struct SampleCar {
    pub slug: String,
    pub vin: String,
    pub description: String,
    #[serde(default)]
    pub notes: Vec<String>,
    pub responses: HashMap<String, Answer>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

const FILES: &[&str] = &[
    include_str!("cars/bev.json"),
    include_str!("cars/phev.json"),
    include_str!("cars/petrol.json"),
    include_str!("cars/diesel.json"),
];

pub fn samples() -> Vec<SampleCar> {
    FILES
        .iter()
        .map(|f| serde_json::from_str(f).expect("sample car files are valid"))
        .collect()
}

/// The VINs of the four sample cars, in order: BEV, PHEV, petrol, diesel.
pub fn sample_vins() -> Vec<String> {
    samples().into_iter().map(|c| c.vin).collect()
}

/// VIN of copy `n` (n ≥ 1) of a sample: its last six characters replaced by the copy number.
fn copy_vin(vin: &str, n: usize) -> String {
    format!("{}{:06}", &vin[..11], n)
}

/// The cars' VINs and every answer by path: `opts.cars` cars (the samples, then copies), or
/// the given `fleet` of (sample VIN, VIN): each a copy of its sample with a VIN of its own.
pub fn build(
    opts: &Options,
    fleet: Option<&[(&str, String)]>,
) -> (Vec<String>, HashMap<String, (u16, Value)>) {
    let samples = samples();
    let cars: Vec<(&SampleCar, String)> = match fleet {
        Some(fleet) => fleet
            .iter()
            .map(|(sample_vin, vin)| {
                let sample = samples.iter().find(|s| s.vin == *sample_vin);
                (sample.expect("a fleet copies the samples"), vin.clone())
            })
            .collect(),
        None => (0..opts.cars.max(1))
            .map(|i| {
                let car = &samples[i % samples.len()];
                let vin = if i < samples.len() {
                    car.vin.clone()
                } else {
                    copy_vin(&car.vin, i)
                };
                (car, vin)
            })
            .collect(),
    };
    let mut responses = HashMap::new();
    for (car, vin) in &cars {
        for (path, a) in &car.responses {
            let body = if *vin == car.vin {
                a.body.clone()
            } else {
                serde_json::from_str(&a.body.to_string().replace(&car.vin, vin))
                    .expect("still JSON")
            };
            responses.insert(path.replace(&car.vin, vin), (a.status, body));
        }
    }
    (cars.into_iter().map(|(_, vin)| vin).collect(), responses)
}
