//! The exposition of one run: the samples of every family from the catalog, written family by
//! family in the Prometheus text format 0.0.4 (the format `prometheus::TextEncoder` writes,
//! which a test holds this writer to), plus the helpers the per-API mappers share (state sets,
//! unit conversion, source times, and the count of fields skipped as unusable). A hundred cars
//! make thirty thousand samples but a few hundred distinct label values: each value is kept
//! once, a sample is the numbers of its values and its own value in a list, and each family
//! is put in order once, when it is written. Setting a sample allocates nothing.
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

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;

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
    /// Some car of the account had Extended Vehicle's resource list answered in this run: the
    /// API answers, so another car's 404 speaks of that car's model, not of a shutdown (a
    /// 410 or a shutdown message still does).
    pub extended_answers: bool,
}

/// What mapping one API of one car came to.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Each endpoint's failure (an answer deferred and replayed is no failure).
    pub errors: Vec<(Endpoint, ApiError)>,
    /// The API answered that it is shut down (Extended Vehicle).
    pub api_gone: bool,
}

impl Mapped {
    /// Adds a failure unless the endpoint already failed for the same reason. Only the same
    /// reason counts: Extended Vehicle's values fail per resource, and one resource's 404 (no
    /// failure) must not hide another's 503.
    pub fn add_error(&mut self, endpoint: Endpoint, e: ApiError) {
        let said = |(x, o): &(Endpoint, ApiError)| *x == endpoint && o.reason() == e.reason();
        if !self.errors.iter().any(said) {
            self.errors.push((endpoint, e));
        }
    }
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

/// The most labels a family has (the catalog's test holds every family to it): a series'
/// label values are gathered on the stack, not in an allocation per sample.
pub const MAX_LABELS: usize = 12;

/// Every label value of a run, each kept once: a sample holds the numbers of its label values,
/// not their text, so that setting one allocates nothing and sorting a family compares
/// numbers. Thirty thousand samples of a hundred cars have a few hundred distinct values.
#[derive(Default)]
struct LabelValues {
    numbers: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
    /// Each value as given, and as the text writes it when that differs (escaped).
    text: Vec<(Box<str>, Option<String>)>,
}

impl LabelValues {
    fn number(&mut self, value: &str) -> u32 {
        if let Some(n) = self.numbers.get(value) {
            return *n;
        }
        let n = u32::try_from(self.text.len()).expect("fewer label values than u32 holds");
        let written = needs_escape(value.as_bytes(), true).then(|| escape(value, true).into());
        self.text.push((value.into(), written));
        self.numbers.insert(value.into(), n);
        n
    }

    fn value(&self, n: u32) -> &str {
        &self.text[n as usize].0
    }

    fn written(&self, n: u32) -> &str {
        let (value, written) = &self.text[n as usize];
        written.as_deref().unwrap_or(value)
    }

    /// Each value's place when all are sorted: series sort by these, label by label.
    fn ranks(&self) -> Vec<u32> {
        let mut sorted: Vec<u32> = (0..self.text.len() as u32).collect();
        sorted.sort_unstable_by(|a, b| self.value(*a).cmp(self.value(*b)));
        let mut ranks = vec![0; sorted.len()];
        for (rank, n) in sorted.into_iter().enumerate() {
            ranks[n as usize] = rank as u32;
        }
        ranks
    }
}

/// FxHash, the compiler's own: one rotate, xor and multiply per eight bytes. The label values
/// it hashes are short and ours, so no protection against chosen collisions is needed.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("eight bytes")));
        }
        if !chunks.remainder().is_empty() {
            let mut rest = [0u8; 8];
            rest[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
            self.add(u64::from_le_bytes(rest));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One family's samples: the numbers of each sample's label values and its value, in the
/// order set. The order the text needs is made once, when the family is written.
struct Samples {
    help: String,
    kind: Kind,
    /// The family's labels in the order callers give their values.
    labels: &'static [&'static str],
    /// The labels sorted by name, as the text shows them, each with its place in `labels`.
    sorted: Vec<(&'static str, usize)>,
    /// The text of a series around its label values: before the first, between each two,
    /// after the last (`name{a="`, `",b="`, `"}`); the name alone for a family without labels.
    around: Vec<String>,
    /// The label values of each sample, as numbers in `sorted` order.
    values: Vec<u32>,
    /// The label values of the sample set last: the next one mostly shares some (the VIN).
    last: Vec<u32>,
    /// Each sample's value, in the order set.
    set: Vec<f64>,
}

impl Samples {
    fn new(name: &str, help: String, kind: Kind, labels: &'static [&'static str]) -> Samples {
        let mut sorted: Vec<(&'static str, usize)> =
            labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        sorted.sort();
        let mut around = vec![name.to_string()];
        for (n, (label, _)) in sorted.iter().enumerate() {
            let last = around.last_mut().expect("one at least");
            last.push_str(if n == 0 { "{" } else { "\"," });
            last.push_str(label);
            last.push_str("=\"");
            around.push(String::new());
        }
        if !sorted.is_empty() {
            around.last_mut().expect("one at least").push_str("\"}");
        }
        Samples {
            help,
            kind,
            labels,
            last: vec![u32::MAX; sorted.len()],
            sorted,
            around,
            values: Vec::new(),
            set: Vec::new(),
        }
    }

    /// Sets the series whose label values are given in the family's order.
    fn push(&mut self, all: &mut LabelValues, values: &[&str], value: f64) {
        for ((_, i), last) in self.sorted.iter().zip(&mut self.last) {
            let value = values[*i];
            if *last == u32::MAX || all.value(*last) != value {
                *last = all.number(value);
            }
            self.values.push(*last);
        }
        self.set.push(value);
    }

    /// About how many bytes the family's series take in the text.
    fn size_hint(&self) -> usize {
        let around: usize = self.around.iter().map(String::len).sum();
        self.set.len() * (around + 20 * self.sorted.len() + 8)
    }

    /// The label values of sample `i`, as numbers in `sorted` order.
    fn values(&self, i: usize) -> &[u32] {
        let n = self.sorted.len();
        &self.values[i * n..(i + 1) * n]
    }

    /// The samples to show, sorted by their label values: of those set with the same values,
    /// the last one set.
    fn order(&self, ranks: &[u32]) -> Vec<usize> {
        let mut order = self.sorted_by_values(ranks);
        order.dedup_by(|later, earlier| {
            let same = self.values(*later) == self.values(*earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        order
    }

    /// Every sample, sorted by its label values' ranks, label by label; in the order set where
    /// they are equal. A counting sort per label, the last label first: each pass keeps the
    /// order of the one before where its label is equal, so no two samples are ever compared.
    fn sorted_by_values(&self, ranks: &[u32]) -> Vec<usize> {
        let n = self.sorted.len();
        let mut order: Vec<usize> = (0..self.set.len()).collect();
        let mut next = vec![0; order.len()];
        let mut starts = vec![0; ranks.len() + 1];
        for label in (0..n).rev() {
            let rank = |i: usize| ranks[self.values[i * n + label] as usize] as usize;
            starts.fill(0);
            for i in &order {
                starts[rank(*i) + 1] += 1;
            }
            for r in 1..starts.len() {
                starts[r] += starts[r - 1];
            }
            for i in &order {
                let at = &mut starts[rank(*i)];
                next[*at] = *i;
                *at += 1;
            }
            std::mem::swap(&mut order, &mut next);
        }
        order
    }

    /// Sample `i` as (label name, value) pairs sorted by name, and its value.
    fn series<'s>(&'s self, all: &'s LabelValues, i: usize) -> (Vec<(&'static str, &'s str)>, f64) {
        let names = self.sorted.iter().map(|(n, _)| *n);
        let values = self.values(i).iter().map(|v| all.value(*v));
        (names.zip(values).collect(), self.set[i])
    }

    /// Writes the series in order, as the text format has them.
    fn write(&self, all: &LabelValues, ranks: &[u32], out: &mut Vec<u8>) {
        for i in self.order(ranks) {
            out.extend_from_slice(self.around[0].as_bytes());
            for (value, after) in self.values(i).iter().zip(&self.around[1..]) {
                out.extend_from_slice(all.written(*value).as_bytes());
                out.extend_from_slice(after.as_bytes());
            }
            write_value(out, self.set[i]);
        }
    }
}

/// A run's metrics, built once and then encoded for every output.
#[derive(Default)]
pub struct Exposition {
    families: Vec<Samples>,
    /// Each family's place in `families`, by name: the order the text shows them in.
    index: BTreeMap<&'static str, usize>,
    /// Each family's place, by where its name lies in the program: a name is a `'static`
    /// string, so one address and length is always the same name, and finding it costs a hash
    /// of two numbers rather than comparisons of long names alike in their first letters.
    by_address: HashMap<(usize, usize), usize, BuildHasherDefault<FxHasher>>,
    values: LabelValues,
    /// Fields skipped as unusable, by (vin, api, reason).
    skipped: BTreeMap<(String, &'static str, &'static str), u64>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// The family of this name, made on its first sample.
    fn family(
        &mut self,
        name: &'static str,
        help: impl FnOnce() -> String,
        kind: Kind,
        labels: &'static [&'static str],
    ) -> usize {
        let address = (name.as_ptr() as usize, name.len());
        if let Some(at) = self.by_address.get(&address) {
            return *at;
        }
        let at = match self.index.get(name) {
            Some(at) => *at,
            None => {
                self.families.push(Samples::new(name, help(), kind, labels));
                self.index.insert(name, self.families.len() - 1);
                self.families.len() - 1
            }
        };
        self.by_address.insert(address, at);
        at
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
        let at = self.family(name, help, kind, labels);
        let fam = &mut self.families[at];
        // A mistake of the program's, which the tests would meet.
        debug_assert_eq!(fam.labels, labels, "{name} used with two label sets");
        fam.push(&mut self.values, values, value);
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
        let ranks = self.values.ranks();
        self.by_name().flat_map(move |(name, fam)| {
            let series = fam.order(&ranks).into_iter();
            series.map(move |i| {
                let (pairs, v) = fam.series(&self.values, i);
                (name, pairs, v)
            })
        })
    }

    /// The families in name order.
    fn by_name(&self) -> impl Iterator<Item = (&'static str, &Samples)> {
        self.index
            .iter()
            .map(|(name, at)| (*name, &self.families[*at]))
    }

    /// Counts a field that was not exported.
    pub fn skip(&mut self, vin: &str, origin: Origin, field: &str, reason: SkipReason) {
        // Only the time is left out of a value whose upload time is unreadable.
        let what = match reason {
            SkipReason::BadTimestamp => {
                "upload time skipped; the value is exported without its _timestamp_seconds gauge"
            }
            _ => "value skipped",
        };
        tracing::warn!(
            vin,
            api = origin.label(),
            field,
            reason = reason.label(),
            "{what}"
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
        let mut out = Vec::with_capacity(self.families.iter().map(Samples::size_hint).sum());
        let ranks = self.values.ranks();
        for (name, fam) in self.by_name() {
            if fam.set.is_empty() {
                continue;
            }
            if !fam.help.is_empty() {
                let help = escape(&fam.help, false);
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let kind = match fam.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
            fam.write(&self.values, &ranks, &mut out);
        }
        out
    }
}

/// Writes a sample's value and ends its line. Most samples are a state set's 0 or 1, and most
/// others whole numbers (times, counts): those are written without the float formatter, the
/// way it would write them.
fn write_value(out: &mut Vec<u8>, v: f64) {
    if v == 1.0 {
        out.extend_from_slice(b" 1\n");
    } else if v == 0.0 && v.is_sign_positive() {
        out.extend_from_slice(b" 0\n");
    } else if v != 0.0 && v.fract() == 0.0 && v.abs() < 1e15 {
        // Exact: every whole number below 2^53 is one i64.
        let mut n = (v as i64).unsigned_abs();
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        while n > 0 {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.push(b' ');
        if v < 0.0 {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[at..]);
        out.push(b'\n');
    } else {
        let _ = writeln!(out, " {v}");
    }
}

/// Whether `text` holds a character the text format escapes (in a label value, with `quote`,
/// the double quote too). One pass without early exit, which the compiler makes wide.
fn needs_escape(text: &[u8], quote: bool) -> bool {
    text.iter().fold(false, |any, b| {
        any | (*b == b'\\') | (*b == b'\n') | (quote & (*b == b'"'))
    })
}

/// A HELP text or label value as the text format writes it: backslash and line feed
/// escaped, and in label values the double quote.
fn escape(text: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    if !needs_escape(text.as_bytes(), quote) {
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
    fn labels<'l>(&self, extra: &[&'l str]) -> Labels<'l>
    where
        'a: 'l,
    {
        let mut labels = Labels {
            values: [""; MAX_LABELS],
            len: 0,
        };
        labels.push(self.vin);
        for v in extra {
            labels.push(v);
        }
        labels
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
                self.exp.stamp(f, labels.values(), t);
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
            // Volvo sends `null` for a value it does not have: absent, not unusable.
            Err(_) if r.value.is_null() => return,
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
        self.exp.gauge(f, labels.values(), value);
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
        let value = bounded_state(value);
        let value = value.as_ref();
        let mut labels = self.labels(extra);
        labels.push("");
        for k in known {
            labels.set_last(k);
            let v = if *k == value { 1.0 } else { 0.0 };
            self.exp.gauge(f, labels.values(), v);
        }
        if !known.contains(&value) {
            if !known.is_empty() {
                tracing::info!(vin = self.vin, field, value = %value, "state not known to this version; exported as reported");
            }
            labels.set_last(value);
            self.exp.gauge(f, labels.values(), 1.0);
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
            _ if r.value.is_null() => {}
            _ => self.skip(field, SkipReason::Malformed),
        }
    }
}

/// Bounds a state reported by the car before it becomes a label value: at most 64
/// characters, control characters replaced. Quotes, backslashes and non-ASCII text are left
/// to the encoder, which escapes them.
pub fn sanitize_state(s: &str) -> String {
    bounded_state(s).into_owned()
}

/// [`sanitize_state`], without a copy when the state is within bounds already (as nearly all
/// are).
fn bounded_state(s: &str) -> std::borrow::Cow<'_, str> {
    let s = s.trim();
    // At most 64 bytes is at most 64 characters.
    if s.len() <= 64 && !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect::<String>()
        .into()
}

/// The label values of one series, gathered on the stack.
struct Labels<'l> {
    values: [&'l str; MAX_LABELS],
    len: usize,
}

impl<'l> Labels<'l> {
    fn push(&mut self, value: &'l str) {
        self.values[self.len] = value;
        self.len += 1;
    }

    fn set_last(&mut self, value: &'l str) {
        self.values[self.len - 1] = value;
    }

    fn values(&self) -> &[&'l str] {
        &self.values[..self.len]
    }
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
        let ranks = exp.values.ranks();
        for (name, fam) in exp.by_name() {
            let metrics = fam
                .order(&ranks)
                .into_iter()
                .map(|i| fam.series(&exp.values, i))
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

    /// Guards the stack space of a series' label values: every family fits in it.
    #[test]
    fn every_family_fits_the_label_buffer() {
        for f in catalog::ALL {
            assert!(f.labels.len() <= MAX_LABELS, "{}", f.name);
        }
    }

    /// Guards the writer's shortcut for whole numbers: it writes what the float formatter
    /// writes.
    #[test]
    fn values_are_written_as_the_formatter_writes_them() {
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            2.0,
            1_777_636_800.0,
            -1_777_636_800.0,
            0.5,
            1e-7,
            123_456_789_012_345.0,
            999_999_999_999_999.0,
            1e15,
            1e21,
            9_007_199_254_740_993.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for v in values {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), format!(" {v}\n"), "{v:?}");
        }
    }

    /// Guards the order and the replacement of the series: sorted by label values whatever
    /// the order they were set in, and a series set twice shows its last value once.
    #[test]
    fn series_are_sorted_and_the_last_value_wins() {
        let mut exp = Exposition::new();
        for (door, v) in [("b", 1.0), ("a", 2.0), ("c", 3.0), ("a", 4.0), ("b", 5.0)] {
            exp.gauge(&catalog::DOOR_STATE, &["V", door, "OPEN"], v);
        }
        for door in ["ab", "a b", "", "a"] {
            exp.gauge(&catalog::DOOR_STATE, &["W", door, "CLOSED"], 0.0);
        }
        exp.gauge(&catalog::ODOMETER_METERS, &["V"], 7.0);
        exp.gauge(&catalog::ODOMETER_METERS, &["V"], 8.0);
        let text = String::from_utf8(exp.encode()).unwrap();
        let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            series,
            [
                r#"volvo_door_state{door="",state="CLOSED",vin="W"} 0"#,
                r#"volvo_door_state{door="a",state="CLOSED",vin="W"} 0"#,
                r#"volvo_door_state{door="a",state="OPEN",vin="V"} 4"#,
                r#"volvo_door_state{door="a b",state="CLOSED",vin="W"} 0"#,
                r#"volvo_door_state{door="ab",state="CLOSED",vin="W"} 0"#,
                r#"volvo_door_state{door="b",state="OPEN",vin="V"} 5"#,
                r#"volvo_door_state{door="c",state="OPEN",vin="V"} 3"#,
                r#"volvo_odometer_meters{vin="V"} 8"#,
            ]
        );
        assert_eq!(text, String::from_utf8(reference_encoding(&exp)).unwrap());
    }

    /// Guards the sort of a family's samples: by their label values as text, label by label,
    /// and in the order set where those are equal.
    #[test]
    fn samples_sort_as_their_label_values_do() {
        let mut exp = Exposition::new();
        let doors = ["b", "a", "", "ab", "a b", "é", "B"];
        let states = ["OPEN", "CLOSED", "AJAR"];
        let mut set = Vec::new();
        for i in 0..300 {
            let vin = format!("V{}", (i * 7) % 13);
            let labels = [
                vin,
                doors[i % doors.len()].into(),
                states[(i / 5) % 3].into(),
            ];
            exp.gauge(
                &catalog::DOOR_STATE,
                &[&labels[0], &labels[1], &labels[2]],
                0.0,
            );
            set.push(labels);
        }
        let ranks = exp.values.ranks();
        let (_, fam) = exp.by_name().next().unwrap();
        // door, state, vin: the labels by name.
        let mut expected: Vec<usize> = (0..set.len()).collect();
        expected.sort_by_key(|i| (&set[*i][1], &set[*i][2], &set[*i][0]));
        assert_eq!(fam.sorted_by_values(&ranks), expected);
        let shown = fam.order(&ranks);
        assert!(shown.len() < set.len(), "repeated series are shown once");
        for pair in shown.windows(2) {
            assert!(set[pair[0]] != set[pair[1]]);
        }
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
