//! The exposition of one run: the samples of every family from the catalog, held as plain
//! sorted maps and encoded family by family with the `prometheus` crate's text encoder (text
//! format 0.0.4), plus the helpers the per-API mappers share (state sets, unit conversion,
//! source times, and the count of fields skipped as unusable). Holding samples this way, rather
//! than in a registry of metric vectors that is gathered into a second copy, keeps a run over
//! many cars small.

pub mod catalog;
pub mod connected_vehicle;
pub mod energy;
pub mod extended_vehicle;
pub mod location;
pub mod records;

use std::collections::BTreeMap;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::values::{self, Field, Quantity, SkipReason};
use catalog::{Family, Kind, Origin};

/// One family's samples, keyed by label values in the family's label order.
struct Samples {
    help: String,
    kind: Kind,
    labels: Vec<&'static str>,
    values: BTreeMap<Vec<String>, f64>,
}

/// A run's metrics, built once and then encoded for every output.
#[derive(Default)]
pub struct Exposition {
    families: BTreeMap<String, Samples>,
    /// Fields skipped as unusable, by (vin, api, reason).
    skipped: BTreeMap<(String, &'static str, &'static str), u64>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[&'static str],
        values: &[&str],
        value: f64,
    ) {
        assert_eq!(values.len(), labels.len(), "labels of {name}");
        let fam = self
            .families
            .entry(name.to_string())
            .or_insert_with(|| Samples {
                help: help.to_string(),
                kind,
                labels: labels.to_vec(),
                values: BTreeMap::new(),
            });
        assert_eq!(fam.labels, labels, "{name} used with two label sets");
        fam.values
            .insert(values.iter().map(|v| v.to_string()).collect(), value);
    }

    /// Sets one gauge sample. `labels` are the family's label values in catalog order.
    pub fn gauge(&mut self, f: &Family, labels: &[&str], value: f64) {
        debug_assert_eq!(f.kind, Kind::Gauge, "{}", f.name);
        self.set(f.name, f.help, Kind::Gauge, f.labels, labels, value);
    }

    /// Sets the counter sample to `value` (the total kept across runs).
    pub fn counter(&mut self, f: &Family, labels: &[&str], value: f64) {
        debug_assert_eq!(f.kind, Kind::Counter, "{}", f.name);
        self.set(f.name, f.help, Kind::Counter, f.labels, labels, value);
    }

    /// Sets the source-time companion of `f` for the series with these labels (given without
    /// `state`).
    pub fn stamp(&mut self, f: &Family, labels: &[&str], seconds: f64) {
        let Some(name) = f.stamp else { return };
        let help = catalog::stamp_help(f);
        self.set(name, &help, Kind::Gauge, &f.stamp_labels(), labels, seconds);
    }

    /// Every sample as (metric name, label pairs sorted by name, value), in name order.
    pub fn samples(&self) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f64)> {
        self.families.iter().flat_map(|(name, fam)| {
            fam.values.iter().map(move |(values, v)| {
                let mut pairs: Vec<(&str, &str)> = fam
                    .labels
                    .iter()
                    .copied()
                    .zip(values.iter().map(String::as_str))
                    .collect();
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                (name.as_str(), pairs, *v)
            })
        })
    }

    /// One family as the encoder's model, its series sorted by their label values (label
    /// pairs sorted by name), as a registry would gather them.
    fn family_proto(name: &str, fam: &Samples) -> MetricFamily {
        let mut order: Vec<usize> = (0..fam.labels.len()).collect();
        order.sort_by(|a, b| fam.labels[*a].cmp(fam.labels[*b]));
        let mut metrics: Vec<(Vec<&str>, Metric)> = fam
            .values
            .iter()
            .map(|(values, v)| {
                let pairs: Vec<LabelPair> = order
                    .iter()
                    .map(|i| {
                        let mut p = LabelPair::default();
                        p.set_name(fam.labels[*i].to_string());
                        p.set_value(values[*i].clone());
                        p
                    })
                    .collect();
                let mut m = Metric::from_label(pairs);
                match fam.kind {
                    Kind::Gauge => {
                        let mut g = Gauge::default();
                        g.set_value(*v);
                        m.set_gauge(g);
                    }
                    Kind::Counter => {
                        let mut c = Counter::default();
                        c.set_value(*v);
                        m.set_counter(c);
                    }
                }
                (order.iter().map(|i| values[*i].as_str()).collect(), m)
            })
            .collect();
        metrics.sort_by(|a, b| a.0.cmp(&b.0));
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_string());
        mf.set_help(fam.help.clone());
        mf.set_field_type(match fam.kind {
            Kind::Gauge => MetricType::GAUGE,
            Kind::Counter => MetricType::COUNTER,
        });
        mf.set_metric(metrics.into_iter().map(|(_, m)| m).collect());
        mf
    }

    /// Counts a field that was not exported.
    pub fn skip(&mut self, vin: &str, origin: Origin, field: &str, reason: SkipReason) {
        tracing::warn!(
            vin,
            api = origin.label(),
            field,
            reason = reason.label(),
            "value skipped"
        );
        *self
            .skipped
            .entry((vin.to_string(), origin.label(), reason.label()))
            .or_default() += 1;
    }

    /// Writes the skip counts into their family. Called once, before encoding.
    pub fn finish_skips(&mut self) {
        let skipped = std::mem::take(&mut self.skipped);
        for ((vin, api, reason), n) in &skipped {
            self.gauge(
                &catalog::COLLECT_FIELDS_SKIPPED,
                &[vin, api, reason],
                *n as f64,
            );
        }
        self.skipped = skipped;
    }

    /// The Prometheus text format 0.0.4, without sample timestamps. Families are encoded one
    /// at a time, so the encoder's model never holds more than one.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        for (name, fam) in &self.families {
            if fam.values.is_empty() {
                continue;
            }
            encoder
                .encode(&[Self::family_proto(name, fam)], &mut buf)
                .expect("text encoding into memory cannot fail");
        }
        buf
    }
}

/// The mapper's view of the exposition for one vehicle and one API.
pub struct VehicleOut<'a> {
    pub exp: &'a mut Exposition,
    pub vin: &'a str,
    pub origin: Origin,
}

/// A value as most of Volvo's APIs send it: value, optional unit, optional source time.
pub struct Reading<'a> {
    pub value: &'a serde_json::Value,
    pub unit: Option<&'a str>,
    /// Source time, already parsed (`Err` when present but unparsable).
    pub time: Option<Result<f64, SkipReason>>,
}

impl<'a> VehicleOut<'a> {
    pub fn new(exp: &'a mut Exposition, vin: &'a str, origin: Origin) -> Self {
        VehicleOut { exp, vin, origin }
    }

    pub fn skip(&mut self, field: &str, reason: SkipReason) {
        self.exp.skip(self.vin, self.origin, field, reason);
    }

    /// Unwraps a field decoded on its own, counting it when malformed.
    pub fn field<'f, T>(&mut self, name: &str, f: Option<&'f Field<T>>) -> Option<&'f T> {
        match f {
            None => None,
            Some(Field::Ok(v)) => Some(v),
            Some(Field::Invalid(why)) => {
                tracing::debug!(vin = self.vin, field = name, why, "malformed field");
                self.skip(name, SkipReason::Malformed);
                None
            }
        }
    }

    fn owned(&self, extra: &[&str]) -> Vec<String> {
        std::iter::once(self.vin.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    }

    fn stamp(
        &mut self,
        f: &Family,
        extra: &[&str],
        field: &str,
        time: Option<Result<f64, SkipReason>>,
    ) {
        match time {
            Some(Ok(t)) => {
                let owned = self.owned(extra);
                let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
                self.exp.stamp(f, &refs, t);
            }
            Some(Err(reason)) => self.skip(field, reason),
            None => {}
        }
    }

    /// A number in `quantity`, converted by its unit; no unit means the value is already in
    /// the base unit only when `unitless_ok`.
    pub fn quantity(
        &mut self,
        f: &Family,
        extra: &[&str],
        field: &str,
        r: &Reading,
        quantity: Quantity,
    ) {
        let n = match values::number(r.value) {
            Ok(n) => n,
            Err(reason) => return self.skip(field, reason),
        };
        let v = match r.unit {
            Some(u) => match values::convert(n, u, quantity) {
                Ok(v) => v,
                Err(reason) => return self.skip(field, reason),
            },
            None => return self.skip(field, SkipReason::MissingUnit),
        };
        self.number(f, extra, field, v, r.time);
    }

    /// A number already in the family's unit.
    pub fn number(
        &mut self,
        f: &Family,
        extra: &[&str],
        field: &str,
        value: f64,
        time: Option<Result<f64, SkipReason>>,
    ) {
        let owned = self.owned(extra);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        self.exp.gauge(f, &refs, value);
        self.stamp(f, extra, field, time);
    }

    /// An enum as a state set: one 0/1 series per known state. A value outside the known set
    /// is kept as its own series (new values appear over time) rather than failing.
    pub fn state_set(
        &mut self,
        f: &Family,
        extra: &[&str],
        field: &str,
        value: &str,
        known: &[&str],
        time: Option<Result<f64, SkipReason>>,
    ) {
        let value = sanitize_state(value);
        let mut owned = self.owned(extra);
        owned.push(String::new());
        let last = owned.len() - 1;
        for k in known {
            owned[last] = (*k).to_string();
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            self.exp
                .gauge(f, &refs, if *k == value { 1.0 } else { 0.0 });
        }
        if !known.contains(&value.as_str()) {
            if !known.is_empty() {
                tracing::info!(vin = self.vin, field, value = %value, "state not known to this version; exported as reported");
            }
            owned[last] = value;
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            self.exp.gauge(f, &refs, 1.0);
        }
        self.stamp(f, extra, field, time);
    }

    /// A state value read from a JSON value that should be a string.
    pub fn state_from(
        &mut self,
        f: &Family,
        extra: &[&str],
        field: &str,
        r: &Reading,
        known: &[&str],
    ) {
        match r.value.as_str() {
            Some(s) if !s.trim().is_empty() => self.state_set(f, extra, field, s, known, r.time),
            _ => self.skip(field, SkipReason::Malformed),
        }
    }
}

/// Bounds a state reported by the car before it becomes a label value: at most 64
/// characters, control characters replaced. Quotes, backslashes and non-ASCII text are left
/// to the encoder, which escapes them.
pub fn sanitize_state(s: &str) -> String {
    s.trim()
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// `frontLeftDoor` → `front_left_door`: API field names as label values.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses an optional RFC 3339 source time.
pub fn source_time(ts: Option<&str>) -> Option<Result<f64, SkipReason>> {
    ts.map(values::timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_api_fields() {
        assert_eq!(snake("frontLeftDoor"), "front_left_door");
        assert_eq!(snake("hood"), "hood");
        assert_eq!(
            snake("turnIndicationFrontLeft"),
            "turn_indication_front_left"
        );
    }

    #[test]
    fn unknown_state_is_kept_and_known_ones_are_zero() {
        let mut exp = Exposition::new();
        let mut out = VehicleOut::new(&mut exp, "YV1XZK9V0R2000001", Origin::ConnectedVehicle);
        out.state_set(
            &catalog::CENTRAL_LOCK_STATE,
            &[],
            "centralLock",
            "HALF_LOCKED",
            &["LOCKED", "UNLOCKED"],
            None,
        );
        let text = String::from_utf8(exp.encode()).unwrap();
        assert!(
            text.contains("{state=\"HALF_LOCKED\",vin=\"YV1XZK9V0R2000001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("{state=\"LOCKED\",vin=\"YV1XZK9V0R2000001\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn hostile_label_values_are_escaped() {
        let mut exp = Exposition::new();
        let mut out = VehicleOut::new(&mut exp, "YV1XZK9V0R2000001", Origin::ConnectedVehicle);
        out.state_set(
            &catalog::SERVICE_TRIGGER_STATE,
            &[],
            "serviceTrigger",
            "a\"b\\c\nd é",
            &[],
            None,
        );
        let text = String::from_utf8(exp.encode()).unwrap();
        assert!(
            text.contains(r#"{state="a\"b\\c_d é",vin="YV1XZK9V0R2000001"} 1"#),
            "{text}"
        );
    }
}
