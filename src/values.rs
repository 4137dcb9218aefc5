//! Values as Volvo really sends them: numbers that are sometimes strings, units that are
//! sometimes missing, RFC 3339 timestamps with 0 to 7 fraction digits, and units that differ
//! from car to car. Everything here is pure and converts to the base units of the metric names.

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// One field of a response, decoded on its own: a field of the wrong shape becomes
/// `Invalid` (skipped and counted by the mapper) instead of failing the whole endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<T> {
    Ok(T),
    Invalid(String),
}

thread_local! {
    /// Whether a [`Field`] being decoded reads its member as a `T` straight from the answer,
    /// failing the whole answer when it does not read so (see [`read`]).
    static WHOLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Decodes an answer that holds [`Field`]s. Nearly every answer reads whole: that is tried
/// first, each member read once as it streams by. Only an answer with a member of the wrong
/// shape is read again, member by member, so that the others still count. A member reads the
/// same either way: the same text read as the same `T`.
pub fn read<T: DeserializeOwned>(json: &str) -> serde_json::Result<T> {
    /// Ends the whole reading even when a decoder panics.
    struct Whole;
    impl Drop for Whole {
        fn drop(&mut self) {
            WHOLE.with(|w| w.set(false));
        }
    }
    let whole = {
        let _whole = Whole;
        WHOLE.with(|w| w.set(true));
        serde_json::from_str(json)
    };
    whole.or_else(|_| serde_json::from_str(json))
}

/// The member is taken whole as its JSON text, then read as a `T`: no tree of values is built
/// for the thousands of members a fleet's answers hold. Only a member that does not read so
/// is read again through a [`Value`], as a map of values reads it (a repeated key keeps its
/// last value), so that a field means exactly what it meant when every member went through
/// a `Value`. Within [`read`]'s first, whole reading the member is read as a `T` at once.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if WHOLE.with(|w| w.get()) {
            return NoArray::<T>::deserialize(d).map(|m| Field::Ok(m.0));
        }
        let raw = Box::<RawValue>::deserialize(d)?;
        if let Ok(v) = serde_json::from_str::<NoArray<T>>(raw.get()) {
            return Ok(Field::Ok(v.0));
        }
        let value = serde_json::from_str::<Value>(raw.get());
        Ok(match value.and_then(serde_json::from_value::<NoArray<T>>) {
            Ok(v) => Field::Ok(v.0),
            Err(e) => Field::Invalid(e.to_string()),
        })
    }
}

/// A `T` read from anything but a JSON array. Serde's derived structs also read an array, by
/// position, so `[18734, "mi", "2026-11-19T17:58:12Z"]` would pass for a value object; no
/// member of Volvo's is an array of its fields, and a mangled answer must not become data.
#[derive(Debug)]
pub struct NoArray<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NoArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoArrayVisitor(std::marker::PhantomData))
            .map(NoArray)
    }
}

/// [`NoArray`] for one member (`#[serde(deserialize_with = "crate::values::no_array")]`).
pub fn no_array<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    NoArray::<T>::deserialize(d).map(|n| n.0)
}

struct NoArrayVisitor<T>(std::marker::PhantomData<T>);

/// Hands every JSON value but an array on to `T`, as it came.
impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for NoArrayVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("anything but an array")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        T::deserialize(v.into_deserializer())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        T::deserialize(v.into_deserializer())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        T::deserialize(v.into_deserializer())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
        T::deserialize(v.into_deserializer())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        T::deserialize(v.into_deserializer())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        T::deserialize(().into_deserializer())
    }
}

/// A member that should be text (an upload time), read whatever it is: text as it came, any
/// other JSON as its JSON text, which then reads as no time, so that only the time is left
/// out and never the value beside it; `null` as absent.
pub fn any_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// One member of a typed answer: its JSON key and its value, if the answer had it.
#[derive(Debug)]
pub struct Entry<'a, T> {
    pub key: &'static str,
    pub field: Option<&'a Field<T>>,
}

impl<T> Clone for Entry<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Entry<'_, T> {}

/// How a mapper reads one member of a typed answer `A`: an accessor method of the answer.
pub type Accessor<A, T> = for<'a> fn(&'a A) -> Entry<'a, T>;

/// Why a value was not exported. A bounded set: these become label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The field had the wrong JSON shape or type.
    Malformed,
    /// The value is not a finite number.
    NotANumber,
    /// The unit is not one this tool knows, or does not fit the quantity.
    UnknownUnit,
    /// A number was expected to carry a unit and had none.
    MissingUnit,
    /// The timestamp could not be parsed (the value itself is still exported).
    BadTimestamp,
}

impl SkipReason {
    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Malformed => "malformed",
            SkipReason::NotANumber => "not_a_number",
            SkipReason::UnknownUnit => "unknown_unit",
            SkipReason::MissingUnit => "missing_unit",
            SkipReason::BadTimestamp => "bad_timestamp",
        }
    }
}

/// A number that may arrive as a JSON number or as a numeric string (`"47.3"`). NaN,
/// infinities and unparsable text are refused rather than exported.
pub fn number(v: &Value) -> Result<f64, SkipReason> {
    let n = match v {
        Value::Number(n) => n.as_f64().ok_or(SkipReason::NotANumber)?,
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| SkipReason::NotANumber)?,
        _ => return Err(SkipReason::NotANumber),
    };
    if n.is_finite() {
        Ok(n)
    } else {
        Err(SkipReason::NotANumber)
    }
}

/// Parses an RFC 3339 timestamp (any number of fraction digits) into Unix seconds.
pub fn timestamp(text: &str) -> Result<f64, SkipReason> {
    let t =
        chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|_| SkipReason::BadTimestamp)?;
    Ok(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
}

/// A value that knows when the car uploaded it (Unix seconds, whole), if it says.
pub trait Uploaded {
    fn uploaded_at(&self) -> Option<i64>;
}

/// An upload time as the APIs write it: RFC 3339 text, or Unix seconds (Extended Vehicle).
pub fn upload_time(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => timestamp(s).ok().map(|t| t as i64),
        Value::Number(n) => n.as_f64().filter(|t| t.is_finite()).map(|t| t as i64),
        _ => None,
    }
}

/// The newest upload time anywhere inside a JSON value (any `timestamp` or `updatedAt`
/// member, at any depth), read while the value is skipped: members an answer's type does not
/// know still show that the car uploaded something.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stamps(pub Option<i64>);

impl<'de> Deserialize<'de> for Stamps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StampsVisitor)
    }
}

struct StampsVisitor;

impl<'de> serde::de::Visitor<'de> for StampsVisitor {
    type Value = Stamps;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Stamps, A::Error> {
        let mut newest = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let found = if key == "timestamp" || key == "updatedAt" {
                upload_time(&map.next_value::<Value>()?)
            } else {
                map.next_value::<Stamps>()?.0
            };
            newest = newest.max(found);
        }
        Ok(Stamps(newest))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Stamps, A::Error> {
        let mut newest = None;
        while let Some(s) = seq.next_element::<Stamps>()? {
            newest = newest.max(s.0);
        }
        Ok(Stamps(newest))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
    fn visit_unit<E>(self) -> Result<Stamps, E> {
        Ok(Stamps(None))
    }
}

/// The physical quantity a metric holds; the unit must fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// meters
    Length,
    /// liters
    Volume,
    /// 0..1
    Ratio,
    /// seconds
    Duration,
    /// watts
    Power,
    /// amperes
    Current,
    /// meters per second
    Speed,
    /// liters per meter (1 l/100km = 1e-5 l/m)
    FuelConsumption,
    /// joules per meter (1 kWh/100km = 36 J/m)
    EnergyConsumption,
    /// joules
    Energy,
}

/// Converts `value` given in `unit` to the base unit of `quantity`. A unit that is unknown,
/// or known but of another quantity, is refused: it is never guessed.
pub fn convert(value: f64, unit: &str, quantity: Quantity) -> Result<f64, SkipReason> {
    let (q, factor) = unit_factor(unit).ok_or(SkipReason::UnknownUnit)?;
    if q != quantity {
        return Err(SkipReason::UnknownUnit);
    }
    let v = tidy(value * factor);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(SkipReason::NotANumber)
    }
}

/// Rounds away the noise of the conversion's float arithmetic (5.9 × 1e-5 is
/// 5.900000000000001e-5): 12 significant digits are far more than any car reports.
fn tidy(v: f64) -> f64 {
    // A whole number of at most 12 digits has no noise to round away (most values: meters,
    // seconds, watts), and the formatter is the costliest step of mapping a car.
    if v.fract() == 0.0 && v.abs() < 1e12 {
        return v;
    }
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// Average Gregorian month, as used for `timeToService` in months.
pub const SECONDS_PER_MONTH: f64 = 30.436875 * 86400.0;
pub const METERS_PER_MILE: f64 = 1609.344;

/// The quantity a unit measures and the factor to that quantity's base unit.
pub fn unit_factor(unit: &str) -> Option<(Quantity, f64)> {
    use Quantity::*;
    let u = unit.trim().to_ascii_lowercase();
    Some(match u.as_str() {
        "m" | "meters" | "metres" => (Length, 1.0),
        "km" | "kilometers" | "kilometres" => (Length, 1000.0),
        "mi" | "miles" | "mile" => (Length, METERS_PER_MILE),
        "l" | "liters" | "litres" => (Volume, 1.0),
        "%" | "percent" | "percentage" => (Ratio, 0.01),
        "s" | "seconds" => (Duration, 1.0),
        "min" | "minutes" => (Duration, 60.0),
        "h" | "hours" => (Duration, 3600.0),
        "days" | "d" => (Duration, 86400.0),
        "months" => (Duration, SECONDS_PER_MONTH),
        "w" | "watts" | "watt" => (Power, 1.0),
        "kw" | "kilowatts" => (Power, 1000.0),
        "a" | "ampere" | "amperes" | "amps" => (Current, 1.0),
        "km/h" | "kmh" | "kph" => (Speed, 1000.0 / 3600.0),
        "mph" | "mi/h" => (Speed, METERS_PER_MILE / 3600.0),
        "m/s" => (Speed, 1.0),
        "l/100km" => (FuelConsumption, 1e-5),
        "kwh/100km" => (EnergyConsumption, 36.0),
        "kwh" => (Energy, 3.6e6),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Rounding to 12 significant digits removes a conversion's float noise, and whole numbers
    /// (which skip the formatter) come out as the formatter would leave them.
    #[test]
    fn tidy_rounds_away_float_noise_only() {
        assert_eq!(tidy(5.9 * 1e-5), 5.9e-5);
        assert_eq!(tidy(0.1 + 0.2), 0.3);
        assert_eq!(tidy(1.234_567_890_123_45), 1.234_567_890_12);
        for v in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            86_400.0,
            999_999_999_999.0,
            123_456_789_012_345.0,
        ] {
            let formatted: f64 = format!("{v:.11e}").parse().unwrap();
            assert_eq!(tidy(v).to_bits(), formatted.to_bits(), "{v}");
        }
        assert!(tidy(f64::NAN).is_nan());
        assert_eq!(tidy(f64::INFINITY), f64::INFINITY);
    }

    /// An answer reads the same whole as member by member: a member of the wrong shape is
    /// `Invalid` and the others still read, a repeated key in a member keeps its last value.
    #[test]
    fn an_answer_reads_whole_or_member_by_member_alike() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct A {
            a: Option<Field<f64>>,
            b: Option<Field<String>>,
        }
        let good: A = read(r#"{"a":1.5,"b":"x"}"#).unwrap();
        assert_eq!(
            good,
            A {
                a: Some(Field::Ok(1.5)),
                b: Some(Field::Ok("x".into()))
            }
        );
        let bad: A = read(r#"{"a":"not a number","b":"x"}"#).unwrap();
        assert!(matches!(bad.a, Some(Field::Invalid(_))), "{bad:?}");
        assert_eq!(bad.b, Some(Field::Ok("x".into())));
        #[derive(Deserialize, Debug, PartialEq)]
        struct V {
            value: f64,
        }
        #[derive(Deserialize, Debug)]
        struct R {
            r: Option<Field<V>>,
        }
        let repeated: R = read(r#"{"r":{"value":1,"value":2}}"#).unwrap();
        assert_eq!(repeated.r, Some(Field::Ok(V { value: 2.0 })));
        assert!(read::<A>("3").is_err());
        assert!(read::<A>(r#"{"a":1} trailing"#).is_err());
    }

    #[test]
    fn numbers_and_numeric_strings() {
        assert_eq!(number(&json!(47.3)), Ok(47.3));
        assert_eq!(number(&json!("47.3")), Ok(47.3));
        assert_eq!(number(&json!(" 12 ")), Ok(12.0));
        assert_eq!(number(&json!("NaN")), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!("inf")), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!("1e999")), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!("abc")), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!(true)), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!(null)), Err(SkipReason::NotANumber));
        assert_eq!(number(&json!(1e300)), Ok(1e300));
    }

    #[test]
    fn timestamps_with_zero_to_seven_fraction_digits() {
        assert_eq!(timestamp("2026-05-01T12:00:00Z"), Ok(1777636800.0));
        assert_eq!(timestamp("2026-05-01T12:00:00.5Z"), Ok(1777636800.5));
        assert_eq!(
            timestamp("2026-05-01T12:00:00.1234567+00:00"),
            Ok(1777636800.1234567)
        );
        assert_eq!(timestamp("2026-05-01T14:00:00+02:00"), Ok(1777636800.0));
        assert_eq!(timestamp("yesterday"), Err(SkipReason::BadTimestamp));
    }

    #[test]
    fn conversions_to_base_units() {
        use Quantity::*;
        assert_eq!(convert(12.5, "km", Length), Ok(12500.0));
        assert_eq!(convert(12.5, "kilometers", Length), Ok(12500.0));
        assert_eq!(convert(10.0, "mi", Length), Ok(16093.44));
        assert_eq!(convert(10.0, "miles", Length), Ok(16093.44));
        assert_eq!(convert(80.0, "percentage", Ratio), Ok(0.8));
        assert_eq!(convert(80.0, "%", Ratio), Ok(0.8));
        assert_eq!(convert(2.0, "h", Duration), Ok(7200.0));
        assert_eq!(convert(3.0, "days", Duration), Ok(259200.0));
        assert_eq!(convert(1.0, "months", Duration), Ok(2629746.0));
        assert_eq!(convert(45.0, "minutes", Duration), Ok(2700.0));
        assert_eq!(convert(7400.0, "watts", Power), Ok(7400.0));
        assert_eq!(convert(16.0, "ampere", Current), Ok(16.0));
        assert_eq!(convert(36.0, "km/h", Speed), Ok(10.0));
        assert!((convert(5.6, "l/100km", FuelConsumption).unwrap() - 5.6e-5).abs() < 1e-15);
        assert!((convert(17.1, "kWh/100km", EnergyConsumption).unwrap() - 615.6).abs() < 1e-9);
        assert_eq!(convert(78.0, "kWh", Energy), Ok(280_800_000.0));
    }

    #[test]
    fn unknown_or_mismatched_units_are_refused() {
        assert_eq!(
            convert(1.0, "gal", Quantity::Volume),
            Err(SkipReason::UnknownUnit)
        );
        assert_eq!(
            convert(1.0, "km", Quantity::Duration),
            Err(SkipReason::UnknownUnit)
        );
        assert_eq!(
            convert(1.0, "", Quantity::Length),
            Err(SkipReason::UnknownUnit)
        );
        assert_eq!(
            convert(1e308, "mi", Quantity::Length),
            Err(SkipReason::NotANumber)
        );
    }

    #[test]
    fn stamps_find_the_newest_upload_at_any_depth() {
        let s: Stamps = serde_json::from_str(
            r#"{"a":{"timestamp":"2026-05-01T12:00:00Z"},"b":[{"x":{"updatedAt":"2026-05-01T13:00:00.5Z"}}],"c":{"timestamp":1777636700},"d":null}"#,
        )
        .unwrap();
        assert_eq!(s, Stamps(Some(1777640400)));
        let none: Stamps = serde_json::from_str(r#"[1, "x", {"timestamp": "soon"}]"#).unwrap();
        assert_eq!(none, Stamps(None));
    }

    /// Guards the reading of a member from its text: read from a body or from a `Value`, a
    /// field is what a `Value` makes of it, a repeated key inside a member included, and an
    /// array is never a value object.
    #[test]
    fn a_field_reads_as_a_map_of_values_does() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct V {
            value: Value,
            #[serde(default)]
            unit: Option<String>,
        }
        #[derive(Deserialize, Debug)]
        struct S {
            a: Option<Field<V>>,
        }
        let cases = [
            r#"{"a": {"value": 1, "unit": "km"}}"#,
            r#"{"a": {"value": "1.5", "extra": [1, {"x": null}]}}"#,
            r#"{"a": {"value": 1, "value": 2}}"#,
            r#"{"a": {"unit": "km"}}"#,
            r#"{"a": {"value": 1, "unit": 5}}"#,
            r#"{"a": [1, "km"]}"#,
            r#"{"a": "weird"}"#,
            r#"{"a": null}"#,
            r#"{"a": {"val\u0075e": 3}}"#,
        ];
        for text in cases {
            let from_text: S = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            let from_value: S = serde_json::from_value(value.clone()).unwrap();
            let through_value = value["a"].clone();
            // An array is no value object, though serde's derived `V` reads one by position.
            let expected = match &through_value {
                Value::Null => None,
                Value::Array(_) => Some(None),
                v => Some(serde_json::from_value::<V>(v.clone()).ok()),
            };
            let got = from_text.a.as_ref().map(|f| match f {
                Field::Ok(v) => Some(v),
                Field::Invalid(_) => None,
            });
            assert_eq!(got, expected.as_ref().map(Option::as_ref), "{text}");
            assert_eq!(from_value.a, from_text.a, "{text}");
        }
        let twice: S = serde_json::from_str(r#"{"a": {"value": 1, "value": 2}}"#).unwrap();
        assert!(matches!(twice.a, Some(Field::Ok(V { value, .. })) if value == 2));
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_invalid_not_an_error() {
        #[derive(Deserialize, Debug)]
        struct S {
            a: Option<Field<u32>>,
            b: Option<Field<u32>>,
        }
        let s: S = serde_json::from_value(json!({"a": 1, "b": "x"})).unwrap();
        assert_eq!(s.a, Some(Field::Ok(1)));
        assert!(matches!(s.b, Some(Field::Invalid(_))));
    }
}
