//! AWS Query request decoding and XML response encoding, driven by the shape tables.
//!
//! Requests arrive as form parameters (`Name=value`, `List.member.N`, `List.member.N.Field`,
//! `Map.entry.N.key` / `.value`); they are turned into the JSON form the generated types
//! deserialise from, then validated and deserialised exactly like a JSON request, so both
//! protocols share one validator and one set of messages.
//!
//! Responses: [`encode_output`] writes the inside of the `<OperationResult>` element; the
//! envelope (`<XResponse xmlns=...>`, `ResponseMetadata`) is the server's.

use crate::error::InputError;
use crate::model::{Shape, ShapeKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Decodes Query parameters for an operation whose input is `shape`, validates and deserialises.
///
/// Parameters the shape does not know (`Action`, `Version`, ...) are ignored. An empty value for a
/// list parameter (`Ids=`) is an empty list. Numbers, booleans (`true`/`false`, any case) and
/// timestamps (ISO-8601 or epoch seconds) that do not parse are [`InputError::Serialization`].
pub fn decode_input<T: DeserializeOwned>(
    shape: &'static Shape,
    params: &BTreeMap<String, String>,
) -> Result<T, InputError> {
    let value = params_to_json(shape, params)?;
    crate::validate::check_input(shape, &value)?;
    serde_json::from_value(value).map_err(|e| InputError::Serialization(e.to_string()))
}

/// The JSON form of Query parameters, shaped by `shape` (a structure), before validation.
pub fn params_to_json(shape: &'static Shape, params: &BTreeMap<String, String>) -> Result<Value, InputError> {
    Ok(decode(shape, params, "")?.unwrap_or_else(|| Value::Object(Map::new())))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Parameters whose names start with `prefix` followed by a dot.
fn with_prefix<'a>(
    params: &'a BTreeMap<String, String>,
    prefix: &str,
) -> impl Iterator<Item = (&'a String, &'a String)> + 'a {
    let start = format!("{prefix}.");
    params
        .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
        .take_while(move |(k, _)| k.starts_with(start.as_str()))
}

/// The 1-based indices used under `prefix` (`prefix.N` or `prefix.N.*`), ascending.
fn indices(params: &BTreeMap<String, String>, prefix: &str) -> Result<BTreeSet<u32>, InputError> {
    let mut out = BTreeSet::new();
    for (k, _) in with_prefix(params, prefix) {
        let rest = &k[prefix.len() + 1..];
        let n = rest.split('.').next().unwrap_or("");
        match n.parse::<u32>() {
            Ok(i) if i >= 1 => {
                out.insert(i);
            }
            _ => return Err(InputError::Serialization(format!("Invalid list or map index in parameter {k}"))),
        }
    }
    Ok(out)
}

fn decode(shape: &'static Shape, params: &BTreeMap<String, String>, key: &str) -> Result<Option<Value>, InputError> {
    match shape.kind {
        ShapeKind::Structure { members } => {
            // Only descend where parameters exist: recursive shapes would otherwise never end.
            if !key.is_empty() && with_prefix(params, key).next().is_none() {
                return Ok(None);
            }
            let mut obj = Map::new();
            for m in members {
                if let Some(v) = decode(m.shape, params, &join(key, m.wire_name))? {
                    obj.insert(m.wire_name.to_owned(), v);
                }
            }
            Ok(Some(Value::Object(obj)))
        }
        ShapeKind::List { member, member_location_name, flattened, .. } => {
            let item_prefix =
                if flattened { key.to_owned() } else { join(key, member_location_name.unwrap_or("member")) };
            let idx = indices(params, &item_prefix)?;
            if idx.is_empty() {
                // botocore sends an empty list as `Name=`.
                return Ok(match params.get(key) {
                    Some(v) if v.is_empty() => Some(Value::Array(Vec::new())),
                    _ => None,
                });
            }
            let mut items = Vec::with_capacity(idx.len());
            for i in idx {
                let item_key = format!("{item_prefix}.{i}");
                match decode(member, params, &item_key)? {
                    Some(v) => items.push(v),
                    // `List.member.1.Unknown=x`: an item with no known member.
                    None => items.push(Value::Object(Map::new())),
                }
            }
            Ok(Some(Value::Array(items)))
        }
        ShapeKind::Map { key: key_shape, value, flattened, key_name, value_name, .. } => {
            let entry_prefix = if flattened { key.to_owned() } else { join(key, "entry") };
            let idx = indices(params, &entry_prefix)?;
            if idx.is_empty() {
                return Ok(match params.get(key) {
                    Some(v) if v.is_empty() => Some(Value::Object(Map::new())),
                    _ => None,
                });
            }
            let mut obj = Map::new();
            for i in idx {
                let entry = format!("{entry_prefix}.{i}");
                let k = match decode(key_shape, params, &join(&entry, key_name))? {
                    Some(Value::String(k)) => k,
                    _ => return Err(InputError::Serialization(format!("Map entry {entry} has no {key_name}"))),
                };
                let v = decode(value, params, &join(&entry, value_name))?
                    .ok_or_else(|| InputError::Serialization(format!("Map entry {entry} has no {value_name}")))?;
                obj.insert(k, v);
            }
            Ok(Some(Value::Object(obj)))
        }
        _ => match params.get(key) {
            None => Ok(None),
            Some(raw) => scalar(shape, key, raw).map(Some),
        },
    }
}

fn scalar(shape: &Shape, key: &str, raw: &str) -> Result<Value, InputError> {
    let bad = |what: &str| {
        let shown = if shape.sensitive { String::new() } else { format!("'{raw}' ") };
        InputError::Serialization(format!("Value {shown}for parameter {key} is not a valid {what}"))
    };
    match shape.kind {
        ShapeKind::Integer { .. } | ShapeKind::Long { .. } => {
            raw.trim().parse::<i64>().map(Value::from).map_err(|_| bad("integer"))
        }
        ShapeKind::Boolean => {
            if raw.eq_ignore_ascii_case("true") {
                Ok(Value::Bool(true))
            } else if raw.eq_ignore_ascii_case("false") {
                Ok(Value::Bool(false))
            } else {
                Err(bad("boolean"))
            }
        }
        ShapeKind::Double => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("number")),
        ShapeKind::Timestamp => {
            if let Some(n) = raw
                .parse::<f64>()
                .ok()
                .filter(|n| corral_wire::time::Timestamp::from_epoch_seconds(*n).is_some())
                .and_then(serde_json::Number::from_f64)
            {
                Ok(Value::Number(n))
            } else if corral_wire::time::Timestamp::parse_iso8601(raw).is_some() {
                Ok(Value::String(raw.to_owned()))
            } else {
                Err(bad("timestamp"))
            }
        }
        _ => Ok(Value::String(raw.to_owned())),
    }
}

// === Responses ===

/// The inner XML of the `<OperationResult>` element for `value`, a response of shape `shape`.
///
/// Members appear in model order under their wire names; absent members are left out. Lists are
/// `<Name><member>..</member></Name>` (flattened lists repeat the element), maps
/// `<Name><entry><key>..</key><value>..</value></entry></Name>`, booleans `true`/`false`,
/// timestamps ISO-8601 with milliseconds, IAM policy documents percent-encoded, and all text
/// XML-escaped.
pub fn encode_output<T: Serialize>(shape: &Shape, value: &T) -> String {
    let mut out = String::new();
    // The generated types always serialise (strings, numbers, string-keyed maps, timestamps).
    if let Ok(v) = serde_json::to_value(value) {
        write_members(shape, &v, &mut out);
    }
    out
}

fn write_members(shape: &Shape, value: &Value, out: &mut String) {
    for m in shape.members() {
        match value.get(m.wire_name) {
            None | Some(Value::Null) => {}
            Some(v) => write_element(m.wire_name, m.shape, v, out),
        }
    }
}

fn open(name: &str, out: &mut String) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(name: &str, out: &mut String) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_element(name: &str, shape: &Shape, value: &Value, out: &mut String) {
    match shape.kind {
        ShapeKind::Structure { .. } => {
            open(name, out);
            write_members(shape, value, out);
            close(name, out);
        }
        ShapeKind::List { member, member_location_name, flattened, .. } => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
            if flattened {
                let item_name = member_location_name.unwrap_or(name);
                for item in items {
                    write_element(item_name, member, item, out);
                }
            } else {
                open(name, out);
                let item_name = member_location_name.unwrap_or("member");
                for item in items {
                    write_element(item_name, member, item, out);
                }
                close(name, out);
            }
        }
        ShapeKind::Map { key, value: value_shape, flattened, key_name, value_name, .. } => {
            let Some(entries) = value.as_object() else {
                return;
            };
            if !flattened {
                open(name, out);
            }
            for (k, v) in entries {
                let entry = if flattened { name } else { "entry" };
                open(entry, out);
                write_element(key_name, key, &Value::String(k.clone()), out);
                write_element(value_name, value_shape, v, out);
                close(entry, out);
            }
            if !flattened {
                close(name, out);
            }
        }
        _ => {
            open(name, out);
            write_scalar(shape, value, out);
            close(name, out);
        }
    }
}

fn write_scalar(shape: &Shape, value: &Value, out: &mut String) {
    match (&shape.kind, value) {
        (ShapeKind::Timestamp, Value::Number(n)) => match n.as_f64().and_then(timestamp_from_secs) {
            Some(t) => out.push_str(&t),
            None => xml_escape_into(&n.to_string(), out),
        },
        (ShapeKind::Timestamp, Value::String(s)) => match corral_wire::time::Timestamp::parse_iso8601(s) {
            Some(t) => out.push_str(&t.to_iso8601()),
            None => xml_escape_into(s, out),
        },
        (_, Value::String(s)) if shape.doc_policy_document => xml_escape_into(&percent_encode(s), out),
        (_, Value::String(s)) => xml_escape_into(s, out),
        (_, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (_, Value::Number(n)) => out.push_str(&n.to_string()),
        // Not produced by the generated types for scalar shapes.
        (_, other) => xml_escape_into(&other.to_string(), out),
    }
}

/// ISO-8601 (milliseconds, UTC) for epoch seconds as the JSON form of a `Timestamp` carries them.
/// Rounds to whole milliseconds first, so `1487887903.045` does not print as `.044`.
fn timestamp_from_secs(secs: f64) -> Option<String> {
    if !secs.is_finite() {
        return None;
    }
    let millis = (secs * 1000.0).round();
    if millis.abs() > 1.0e17 {
        return None;
    }
    let nanos = i128::from(millis as i64) * 1_000_000;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?;
    Some(corral_wire::time::format_iso8601_millis(t))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for an XML element or attribute.
///
/// `& < > " '` become entities and `\r` becomes `&#13;` (so XML's newline normalisation keeps it);
/// characters XML 1.0 cannot carry at all (other C0 controls, U+FFFE, U+FFFF) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    xml_escape_into(s, &mut out);
    out
}

fn xml_escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}
