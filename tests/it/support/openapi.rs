//! Test helper: checks JSON response bodies against the project's OpenAPI 3.0 documents in
//! `open-api/`, using a small subset of JSON Schema (local `$ref`, `type`, `nullable`,
//! `properties`, `required`, `additionalProperties`, `items`, `enum`, `oneOf`, `anyOf`, `allOf`,
//! `minItems`, `maxItems` and `format: date-time`). Other keywords are ignored.
#![allow(dead_code)]

use serde_json::{Map, Value};
use std::path::Path;

/// How many failures one validation reports before it stops looking.
const MAX_ERRORS: usize = 5;
/// Guards against `$ref` cycles and absurdly deep bodies.
const MAX_DEPTH: usize = 128;

/// Reads and parses an OpenAPI document; panics with the path and the reason if it cannot.
pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read OpenAPI document {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("OpenAPI document {} is not valid JSON: {e}", path.display()))
}

/// Validates `body`, answered with `status` by `GET concrete_path`, against `doc`.
///
/// `concrete_path` is relative to the document's server URL (for example
/// `/vehicles/YV1XZK9V0R2000001/doors`); a full URL starting with one of the document's server
/// URLs is accepted too. Literal path segments beat `{param}` segments. The response is looked up
/// by exact status, then by range (`4XX`), then `default`.
pub fn validate_response(
    doc: &Value,
    concrete_path: &str,
    status: u16,
    body: &Value,
) -> Result<(), String> {
    let (template, item) = find_path(doc, concrete_path)?;
    let operation = item
        .get("get")
        .ok_or_else(|| format!("path {template} has no GET operation"))?;
    let responses = operation
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("GET {template} documents no responses"))?;
    let response = responses
        .get(&status.to_string())
        .or_else(|| responses.get(&format!("{}XX", status / 100)))
        .or_else(|| responses.get("default"))
        .ok_or_else(|| format!("GET {template} documents neither status {status} nor default"))?;
    let response = follow_refs(doc, response)?;
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!(
                "GET {template} {status} documents no body, but one was given"
            ))
        };
    };
    let media = json_media_type(content)
        .ok_or_else(|| format!("GET {template} {status} documents no JSON content"))?;
    let schema = media
        .get("schema")
        .ok_or_else(|| format!("GET {template} {status} has JSON content without a schema"))?;
    validate_value(doc, schema, body)
        .map_err(|e| format!("GET {concrete_path} ({template}) {status}: {e}"))
}

/// Validates `value` against `schema`, resolving `$ref`s inside `doc`.
pub fn validate_value(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "", &mut errors, 0);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Lists every `$ref` in `doc` that does not resolve, as `location -> reference`.
pub fn unresolved_refs(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_unresolved(doc, doc, "", &mut found);
    found
}

fn collect_unresolved(doc: &Value, node: &Value, at: &str, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, child) in map {
                let child_at = format!("{at}/{}", escape(key));
                if key == "$ref" {
                    match child.as_str() {
                        Some(reference) if resolve_ref(doc, reference).is_ok() => {}
                        _ => found.push(format!("{} -> {child}", location(&child_at))),
                    }
                } else {
                    collect_unresolved(doc, child, &child_at, found);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_unresolved(doc, child, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// Finds the path template matching `concrete_path`, preferring literal segments, left to right.
fn find_path<'a>(doc: &'a Value, concrete_path: &str) -> Result<(&'a str, &'a Value), String> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("the document has no paths")?;
    let relative = strip_server(doc, concrete_path);
    let relative = relative.split(['?', '#']).next().unwrap_or_default();
    let wanted = segments(relative);

    let mut best: Option<(Vec<bool>, &str, &Value)> = None;
    for (template, item) in paths {
        let pattern = segments(template);
        if pattern.len() != wanted.len() {
            continue;
        }
        let mut score = Vec::with_capacity(pattern.len());
        let matches = pattern.iter().zip(&wanted).all(|(p, w)| {
            if p.starts_with('{') && p.ends_with('}') {
                score.push(false);
                !w.is_empty()
            } else {
                score.push(true);
                p == w
            }
        });
        if matches && best.as_ref().is_none_or(|(top, _, _)| score > *top) {
            best = Some((score, template.as_str(), item));
        }
    }
    best.map(|(_, template, item)| (template, item))
        .ok_or_else(|| {
            let known: Vec<&str> = paths.keys().map(String::as_str).collect();
            format!(
                "no path in the document matches {concrete_path}; known paths: {}",
                known.join(", ")
            )
        })
}

fn strip_server<'p>(doc: &Value, concrete_path: &'p str) -> &'p str {
    let servers = doc.get("servers").and_then(Value::as_array);
    for url in servers
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url")?.as_str())
    {
        if let Some(rest) = concrete_path.strip_prefix(url.trim_end_matches('/')) {
            return rest;
        }
    }
    concrete_path
}

fn segments(path: &str) -> Vec<&str> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn json_media_type(content: &Map<String, Value>) -> Option<&Value> {
    content
        .get("application/json")
        .or_else(|| {
            content
                .iter()
                .find(|(media, _)| media.starts_with("application/json"))
                .map(|(_, v)| v)
        })
        .or_else(|| {
            content
                .iter()
                .find(|(media, _)| media.ends_with("+json"))
                .map(|(_, v)| v)
        })
}

/// Follows a chain of `$ref`s (as used for shared responses) to the object they name.
fn follow_refs<'a>(doc: &'a Value, mut node: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..MAX_DEPTH {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => node = resolve_ref(doc, reference)?,
            None => return Ok(node),
        }
    }
    Err("$ref chain too long (cycle?)".to_string())
}

fn resolve_ref<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("only local $ref values are supported, found \"{reference}\""))?;
    doc.pointer(pointer)
        .ok_or_else(|| format!("$ref \"{reference}\" does not resolve"))
}

fn fail(errors: &mut Vec<String>, at: &str, reason: String) {
    if errors.len() < MAX_ERRORS {
        errors.push(format!("{}: {reason}", location(at)));
    }
}

fn location(at: &str) -> &str {
    if at.is_empty() {
        "(root)"
    } else {
        at
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn check(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    if errors.len() >= MAX_ERRORS {
        return;
    }
    if depth > MAX_DEPTH {
        fail(
            errors,
            at,
            "schema nesting too deep (cyclic $ref?)".to_string(),
        );
        return;
    }
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            fail(errors, at, "no value is allowed here".to_string());
            return;
        }
        Value::Object(schema) => schema,
        other => {
            fail(errors, at, format!("schema is not an object: {other}"));
            return;
        }
    };

    // OpenAPI 3.0: a `$ref` replaces the whole schema object; siblings are ignored.
    if let Some(reference) = schema.get("$ref") {
        match reference.as_str().map(|r| resolve_ref(doc, r)) {
            Some(Ok(target)) => check(doc, target, value, at, errors, depth + 1),
            Some(Err(e)) => fail(errors, at, e),
            None => fail(errors, at, format!("$ref is not a string: {reference}")),
        }
        return;
    }

    if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }

    if let Some(expected) = schema.get("type") {
        if !type_matches(expected, value) {
            fail(
                errors,
                at,
                format!("expected type {expected}, found {}", type_name(value)),
            );
            return;
        }
    }

    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            fail(
                errors,
                at,
                format!("{value} is not one of {}", Value::Array(allowed.clone())),
            );
        }
    }

    if let (Some("date-time"), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        if !is_rfc3339_date_time(text) {
            fail(
                errors,
                at,
                format!("\"{text}\" is not an RFC 3339 date-time"),
            );
        }
    }

    if let Value::Object(object) = value {
        check_object(doc, schema, object, at, errors, depth);
    }
    if let Value::Array(items) = value {
        check_array(doc, schema, items, at, errors, depth);
    }

    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(doc, sub, value, at, errors, depth + 1);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let outcomes = alternatives(doc, any, value, at, depth);
        if !outcomes.iter().any(Option::is_none) {
            fail(
                errors,
                at,
                format!(
                    "matched none of the {} anyOf alternatives ({})",
                    any.len(),
                    summarise(&outcomes)
                ),
            );
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let outcomes = alternatives(doc, one, value, at, depth);
        let matched = outcomes.iter().filter(|o| o.is_none()).count();
        if matched == 0 {
            fail(
                errors,
                at,
                format!(
                    "matched none of the {} oneOf alternatives ({})",
                    one.len(),
                    summarise(&outcomes)
                ),
            );
        } else if matched > 1 {
            fail(
                errors,
                at,
                format!(
                    "matched {matched} of the {} oneOf alternatives, expected exactly one",
                    one.len()
                ),
            );
        }
    }
}

fn check_object(
    doc: &Value,
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    at: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                fail(errors, at, format!("missing required property \"{name}\""));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (key, child) in object {
        let child_at = format!("{at}/{}", escape(key));
        match properties.and_then(|p| p.get(key)) {
            Some(child_schema) => check(doc, child_schema, child, &child_at, errors, depth + 1),
            None => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    fail(errors, at, format!("unexpected property \"{key}\""));
                }
                Some(extra @ Value::Object(_)) => {
                    check(doc, extra, child, &child_at, errors, depth + 1);
                }
                _ => {}
            },
        }
    }
}

fn check_array(
    doc: &Value,
    schema: &Map<String, Value>,
    items: &[Value],
    at: &str,
    errors: &mut Vec<String>,
    depth: usize,
) {
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
        if (items.len() as u64) < min {
            fail(
                errors,
                at,
                format!("has {} items, fewer than minItems {min}", items.len()),
            );
        }
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
        if items.len() as u64 > max {
            fail(
                errors,
                at,
                format!("has {} items, more than maxItems {max}", items.len()),
            );
        }
    }
    if let Some(item_schema) = schema.get("items") {
        for (index, item) in items.iter().enumerate() {
            check(
                doc,
                item_schema,
                item,
                &format!("{at}/{index}"),
                errors,
                depth + 1,
            );
        }
    }
}

/// Checks `value` against each alternative; `None` means it matched, `Some` holds the first error.
fn alternatives(
    doc: &Value,
    schemas: &[Value],
    value: &Value,
    at: &str,
    depth: usize,
) -> Vec<Option<String>> {
    schemas
        .iter()
        .map(|schema| {
            let mut errors = Vec::new();
            check(doc, schema, value, at, &mut errors, depth + 1);
            errors.into_iter().next()
        })
        .collect()
}

fn summarise(outcomes: &[Option<String>]) -> String {
    outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| outcome.as_ref().map(|e| format!("#{}: {e}", index + 1)))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn type_matches(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::String(name) => match name.as_str() {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "number" => value.is_number(),
            "integer" => is_integer(value),
            "null" => value.is_null(),
            _ => false,
        },
        Value::Array(names) => names.iter().any(|name| type_matches(name, value)),
        _ => false,
    }
}

/// A JSON number whose value has no fractional part.
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(value) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, with rough range checks on each field.
fn is_rfc3339_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let byte = |at: usize| b.get(at).copied();
    let number = |at: usize, len: usize| -> Option<u32> {
        let part = b.get(at..at + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, d| n * 10 + u32::from(*d - b'0')))
    };
    let in_range = |at: usize, len: usize, low: u32, high: u32| {
        number(at, len).is_some_and(|n| (low..=high).contains(&n))
    };

    let date = in_range(0, 4, 0, 9999)
        && byte(4) == Some(b'-')
        && in_range(5, 2, 1, 12)
        && byte(7) == Some(b'-')
        && in_range(8, 2, 1, 31);
    let time = matches!(byte(10), Some(b'T' | b't'))
        && in_range(11, 2, 0, 23)
        && byte(13) == Some(b':')
        && in_range(14, 2, 0, 59)
        && byte(16) == Some(b':')
        && in_range(17, 2, 0, 60);
    if !(date && time) {
        return false;
    }

    let mut at = 19;
    if byte(at) == Some(b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return false;
        }
        at += 1 + digits;
    }
    match byte(at) {
        Some(b'Z' | b'z') => at + 1 == b.len(),
        Some(b'+' | b'-') => {
            in_range(at + 1, 2, 0, 23)
                && byte(at + 3) == Some(b':')
                && in_range(at + 4, 2, 0, 59)
                && at + 6 == b.len()
        }
        _ => false,
    }
}
