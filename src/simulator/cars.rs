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

/// The cars' VINs and every answer by path: `opts.cars` cars, or the samples `only` names
/// (a scripted day has its own cars, whatever `--cars` says).
pub fn build(
    opts: &Options,
    only: Option<&[String]>,
) -> (Vec<String>, HashMap<String, (u16, Value)>) {
    let mut samples = samples();
    let mut cars = opts.cars;
    if let Some(vins) = only {
        samples.retain(|c| vins.contains(&c.vin));
        cars = samples.len();
    }
    let mut vins = Vec::new();
    let mut responses = HashMap::new();
    for i in 0..cars.max(1) {
        let car = &samples[i % samples.len()];
        let vin = if i < samples.len() {
            car.vin.clone()
        } else {
            copy_vin(&car.vin, i)
        };
        for (path, a) in &car.responses {
            let body = if vin == car.vin {
                a.body.clone()
            } else {
                serde_json::from_str(&a.body.to_string().replace(&car.vin, &vin))
                    .expect("still JSON")
            };
            responses.insert(path.replace(&car.vin, &vin), (a.status, body));
        }
        vins.push(vin);
    }
    (vins, responses)
}
