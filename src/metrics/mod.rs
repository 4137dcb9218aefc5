//! The exposition of one run: the samples of every family from the catalog, held as plain
//! sorted maps and written family by family in the Prometheus text format 0.0.4 (the format
//! `prometheus::TextEncoder` writes, which a test holds this writer to), plus the helpers the
//! per-API mappers share (state sets, unit conversion, source times, and the count of fields
//! skipped as unusable). Each series is kept under its label values in the order the text
//! shows them, so that writing it is one pass in order: a run over a hundred cars stays cheap.
//!
//! Its parts, each using only those before it: [`catalog`] (every family), then one mapper per
//! API: [`connected_vehicle`], [`energy`], [`extended_vehicle`], [`location`]; and
//! [`records`] (trips and charges, and the prices).

pub mod catalog;
pub mod connected_vehicle;
pub mod energy;
pub mod extended_vehicle;
pub mod location;
pub mod records;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::api::answers::CarAnswers;
use crate::api::ApiError;
use crate::endpoints::Endpoint;
use crate::values::{self, Field, Quantity, SkipReason};
use catalog::{Family, Kind, Origin};

/// What a mapper needs beside a car's answers.
pub struct MapContext<'a> {
    /// The account's name (the `account` label of `volvo_vehicle_info`).
    pub account: &'a str,
    pub location: &'a crate::config::LocationPrivacy,
}

/// What mapping one API of one car came to.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Each endpoint's failure (replayed answers are no failure).
    pub errors: Vec<(Endpoint, ApiError)>,
    /// The API answered that it is shut down (Extended Vehicle).
    pub api_gone: bool,
}

/// One of Volvo's APIs, whole: how its answers decode and what each endpoint needs
/// ([`crate::api::Api`]), and how a car's answers become samples. A run maps a car by looping
/// over [`APIS`].
pub trait MapApi: crate::api::Api {
    fn map(&self, exp: &mut Exposition, car: &CarAnswers, cx: &MapContext) -> Mapped;
}

/// The four APIs, in the order a car is mapped.
pub static APIS: [&dyn MapApi; 4] = [
    &crate::api::connected_vehicle::ConnectedVehicle,
    &crate::api::energy::Energy,
    &crate::api::location::Location,
    &crate::api::extended_vehicle::ExtendedVehicle,
];

fn owned(errors: Vec<(Endpoint, &ApiError)>) -> Vec<(Endpoint, ApiError)> {
    errors.into_iter().map(|(e, x)| (e, x.clone())).collect()
}

/// Separates the label values of one series in its key: below every character a label value
/// can hold, so that keys sort as the values do, one label after the other.
const SEP: char = '\0';

/// One family's samples.
struct Samples {
    help: String,
    kind: Kind,
    /// The family's labels in the order callers give their values.
    labels: &'static [&'static str],
    /// The labels sorted by name, as the text shows them, each with its place in `labels`.
    sorted: Vec<(&'static str, usize)>,
    /// Label values in `sorted` order, joined by [`SEP`] → value.
    values: BTreeMap<String, f64>,
}

impl Samples {
    fn new(help: String, kind: Kind, labels: &'static [&'static str]) -> Samples {
        let mut sorted: Vec<(&'static str, usize)> =
            labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        sorted.sort();
        Samples {
            help,
            kind,
            labels,
            sorted,
            values: BTreeMap::new(),
        }
    }

    /// The key of a series whose label values are given in the family's order.
    fn key(&self, values: &[&str]) -> String {
        let mut key = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
        for (n, (_, i)) in self.sorted.iter().enumerate() {
            if n > 0 {
                key.push(SEP);
            }
            key.push_str(values[*i]);
        }
        key
    }

    /// Each series as (label name, value) pairs sorted by name, and its value.
    fn series(&self) -> impl Iterator<Item = (Vec<(&'static str, &str)>, f64)> {
        self.values.iter().map(|(key, v)| {
            let names = self.sorted.iter().map(|(n, _)| *n);
            let pairs = if self.sorted.is_empty() {
                Vec::new()
            } else {
                names.zip(key.split(SEP)).collect()
            };
            (pairs, *v)
        })
    }
}

/// A run's metrics, built once and then encoded for every output.
#[derive(Default)]
pub struct Exposition {
    families: BTreeMap<&'static str, Samples>,
    /// Fields skipped as unusable, by (vin, api, reason).
    skipped: BTreeMap<(String, &'static str, &'static str), u64>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(
        &mut self,
        name: &'static str,
        help: impl FnOnce() -> String,
        kind: Kind,
        labels: &'static [&'static str],
        values: &[&str],
        value: f64,
    ) {
        assert_eq!(values.len(), labels.len(), "labels of {name}");
        let fam = self
            .families
            .entry(name)
            .or_insert_with(|| Samples::new(help(), kind, labels));
        assert_eq!(fam.labels, labels, "{name} used with two label sets");
        let key = fam.key(values);
        fam.values.insert(key, value);
    }

    /// Sets one gauge sample. `labels` are the family's label values in catalog order.
    pub fn gauge(&mut self, f: &Family, labels: &[&str], value: f64) {
        debug_assert_eq!(f.kind, Kind::Gauge, "{}", f.name);
        self.set(
            f.name,
            || f.help.into(),
            Kind::Gauge,
            f.labels,
            labels,
            value,
        );
    }

    /// Sets the counter sample to `value` (the total kept across runs).
    pub fn counter(&mut self, f: &Family, labels: &[&str], value: f64) {
        debug_assert_eq!(f.kind, Kind::Counter, "{}", f.name);
        self.set(
            f.name,
            || f.help.into(),
            Kind::Counter,
            f.labels,
            labels,
            value,
        );
    }

    /// Sets the source-time companion of `f` for the series with these labels (given without
    /// `state`).
    pub fn stamp(&mut self, f: &Family, labels: &[&str], seconds: f64) {
        let Some(name) = f.stamp else { return };
        let help = || catalog::stamp_help(f);
        self.set(name, help, Kind::Gauge, f.stamp_labels(), labels, seconds);
    }

    /// Every sample as (metric name, label pairs sorted by name, value), in name order.
    pub fn samples(&self) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f64)> {
        self.families
            .iter()
            .flat_map(|(name, fam)| fam.series().map(move |(pairs, v)| (*name, pairs, v)))
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

    /// The Prometheus text format 0.0.4, without sample timestamps: each family's HELP and
    /// TYPE, then its series in order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for (name, fam) in &self.families {
            if fam.values.is_empty() {
                continue;
            }
            if !fam.help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {}", escape(&fam.help, false));
            }
            let kind = match fam.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (pairs, v) in fam.series() {
                out.push_str(name);
                for (i, (label, value)) in pairs.iter().enumerate() {
                    out.push(if i == 0 { '{' } else { ',' });
                    out.push_str(label);
                    out.push_str("=\"");
                    out.push_str(&escape(value, true));
                    out.push('"');
                }
                if !pairs.is_empty() {
                    out.push('}');
                }
                // Most samples are a state set's 0 or 1: written without the formatter.
                if v == 1.0 {
                    out.push_str(" 1\n");
                } else if v == 0.0 && v.is_sign_positive() {
                    out.push_str(" 0\n");
                } else {
                    let _ = writeln!(out, " {v}");
                }
            }
        }
        out.into_bytes()
    }
}

/// A HELP text or label value as the text format writes it: backslash and line feed
/// escaped, and in label values the double quote.
fn escape(text: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (quote && *b == b'"');
    if !text.as_bytes().iter().any(special) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out.into()
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

    /// The label values of a series of this car: the VIN, then `extra`.
    fn labels<'l>(&self, extra: &[&'l str]) -> Vec<&'l str>
    where
        'a: 'l,
    {
        std::iter::once(self.vin)
            .chain(extra.iter().copied())
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
                let labels = self.labels(extra);
                self.exp.stamp(f, &labels, t);
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
        let labels = self.labels(extra);
        self.exp.gauge(f, &labels, value);
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
        let mut labels = self.labels(extra);
        labels.push("");
        let last = labels.len() - 1;
        for k in known {
            labels[last] = k;
            let v = if *k == value { 1.0 } else { 0.0 };
            self.exp.gauge(f, &labels, v);
        }
        if !known.contains(&value.as_str()) {
            if !known.is_empty() {
                tracing::info!(vin = self.vin, field, value = %value, "state not known to this version; exported as reported");
            }
            labels[last] = &value;
            self.exp.gauge(f, &labels, 1.0);
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

    /// The prometheus crate's own encoder over the same samples: the reference this writer is
    /// held to, byte for byte.
    fn reference_encoding(exp: &Exposition) -> Vec<u8> {
        use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
        use prometheus::{Encoder, TextEncoder};
        let mut buf = Vec::new();
        for (name, fam) in &exp.families {
            let metrics = fam
                .series()
                .map(|(pairs, v)| {
                    let pairs = pairs.iter().map(|(n, val)| {
                        let mut p = LabelPair::default();
                        p.set_name(n.to_string());
                        p.set_value(val.to_string());
                        p
                    });
                    let mut m = Metric::from_label(pairs.collect());
                    match fam.kind {
                        Kind::Gauge => {
                            let mut g = Gauge::default();
                            g.set_value(v);
                            m.set_gauge(g);
                        }
                        Kind::Counter => {
                            let mut c = Counter::default();
                            c.set_value(v);
                            m.set_counter(c);
                        }
                    }
                    m
                })
                .collect();
            let mut mf = MetricFamily::default();
            mf.set_name(name.to_string());
            mf.set_help(fam.help.clone());
            mf.set_field_type(match fam.kind {
                Kind::Gauge => MetricType::GAUGE,
                Kind::Counter => MetricType::COUNTER,
            });
            mf.set_metric(metrics);
            TextEncoder::new().encode(&[mf], &mut buf).unwrap();
        }
        buf
    }

    /// Guards the hand-written text format: it is what `prometheus::TextEncoder` writes for
    /// the same samples, escapes, label order and number formats included.
    #[test]
    fn the_text_is_the_prometheus_encoders() {
        let mut exp = Exposition::new();
        let mut out = VehicleOut::new(&mut exp, "YV1XZK9V0R2000001", Origin::ConnectedVehicle);
        let tricky = ["a\"b", "c\\d", "e\nf", "é ü", "", "a b", "a", "ab"];
        for (i, t) in tricky.iter().enumerate() {
            out.state_set(
                &catalog::DOOR_STATE,
                &[t],
                "x",
                "OPEN",
                &["OPEN", "CLOSED"],
                None,
            );
            out.number(
                &catalog::ODOMETER_METERS,
                &[],
                "x",
                i as f64 * 0.1 + 1e21,
                None,
            );
        }
        exp.counter(&catalog::COLLECT_RETRIES_TOTAL, &["home", "energy"], 3.0);
        exp.gauge(&catalog::COLLECT_RUN_SUCCESS, &[], 1.0);
        exp.gauge(&catalog::COLLECT_RUN_DURATION_SECONDS, &[], 0.000123);
        let mut stamped = VehicleOut::new(&mut exp, "V2", Origin::ConnectedVehicle);
        let time = Some(Ok(1_777_636_800.123_456_7));
        stamped.state_set(
            &catalog::CENTRAL_LOCK_STATE,
            &[],
            "c",
            "LOCKED",
            &["LOCKED"],
            time,
        );
        exp.finish_skips();
        assert_eq!(
            String::from_utf8(exp.encode()).unwrap(),
            String::from_utf8(reference_encoding(&exp)).unwrap()
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
