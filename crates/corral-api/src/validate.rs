//! Checking a raw JSON request against its input shape, with AWS's messages.
//!
//! The walk is driven by the generated shape tables, so every constraint in the model (required
//! members, string lengths, patterns, enums, numeric ranges, list and map sizes) is checked without
//! per-field code. Members the shape does not know are ignored, as AWS ignores them; `null` counts
//! as absent.
//!
//! Messages follow AWS (Coral) wording: `Value 'x' at 'settingId' failed to satisfy constraint:
//! Member must have length less than or equal to 1000`. Choices where AWS's exact form is not
//! pinned down:
//! - Paths are member names with the first letter lower-cased, joined by `.`; items of a list of
//!   structures are `<list>.<1-based index>.member` (`tags.1.member.key`); values of a map of
//!   structures or lists are `<map>.<key>`.
//! - Scalar list items are reported once for the whole list:
//!   `Value '[a, b]' at 'instanceIds' failed to satisfy constraint: Member must satisfy constraint:
//!   [Member must have length less than or equal to 20]`; map keys and scalar map values likewise
//!   with `Map keys must satisfy constraint: [...]` / `Map value must satisfy constraint: [...]`.
//! - For one value, length limits come first (maximum, then minimum), then the pattern, then the
//!   enum; numeric ranges maximum first.
//! - Values of sensitive shapes (or containers holding one) are never echoed: the message reads
//!   `Value at 'password' failed to satisfy constraint: ...`.
//! - A value of the wrong JSON type is not a constraint violation but a serialization error
//!   ([`InputError::Serialization`]), reported by [`check_input`] before any violation.

use crate::error::{InputError, ValidationErrors, Violation, ViolationValue};
use crate::model::{Shape, ShapeKind};
use serde_json::Value;

/// Checks `value` against `shape`'s constraints and returns every violation.
///
/// Values of the wrong JSON type are skipped here (they are not constraint violations); use
/// [`check_input`] to refuse them too, as the codecs do.
pub fn validate_input(shape: &'static Shape, value: &Value) -> Result<(), ValidationErrors> {
    let mut w = Walker::default();
    w.walk(shape, value, "");
    if w.violations.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors { violations: w.violations })
    }
}

/// Checks `value` against `shape`: first that every value has the JSON type its shape needs
/// ([`InputError::Serialization`] naming the first that does not), then every constraint
/// ([`InputError::Validation`]).
pub fn check_input(shape: &'static Shape, value: &Value) -> Result<(), InputError> {
    let mut w = Walker::default();
    w.walk(shape, value, "");
    if let Some(e) = w.type_error {
        return Err(InputError::Serialization(e));
    }
    if w.violations.is_empty() {
        Ok(())
    } else {
        Err(InputError::Validation(ValidationErrors { violations: w.violations }))
    }
}

/// The path segment AWS uses for a member: its name with the first letter lower-cased.
pub fn path_segment(member_name: &str) -> String {
    let mut chars = member_name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}.{segment}")
    }
}

#[derive(Default)]
struct Walker {
    violations: Vec<Violation>,
    type_error: Option<String>,
}

impl Walker {
    fn violation(&mut self, shape: &Shape, value: &Value, path: &str, constraint: String) {
        self.violations.push(Violation { path: path.to_owned(), value: shown(shape, value), constraint });
    }

    fn type_mismatch(&mut self, expected: &str, value: &Value, path: &str) {
        if self.type_error.is_none() {
            let at = if path.is_empty() { "the request".to_owned() } else { format!("'{path}'") };
            self.type_error = Some(format!("Expected {expected} at {at}, found {}", json_kind(value)));
        }
    }

    fn walk(&mut self, shape: &'static Shape, value: &Value, path: &str) {
        match shape.kind {
            ShapeKind::Structure { members } => {
                let Some(obj) = value.as_object() else {
                    return self.type_mismatch("a structure (JSON object)", value, path);
                };
                for m in members {
                    let p = join(path, &path_segment(m.name));
                    match obj.get(m.wire_name) {
                        None | Some(Value::Null) => {
                            if m.required {
                                self.violations.push(Violation {
                                    path: p,
                                    value: ViolationValue::Null,
                                    constraint: "Member must not be null".to_owned(),
                                });
                            }
                        }
                        Some(v) => self.walk(m.shape, v, &p),
                    }
                }
            }
            ShapeKind::List { member, min, max, .. } => {
                let Some(items) = value.as_array() else {
                    return self.type_mismatch("a list (JSON array)", value, path);
                };
                self.check_size(shape, value, path, items.len(), min, max);
                if member.is_scalar() {
                    let mut msgs = Vec::new();
                    for item in items {
                        self.scalar_into(member, item, path, &mut msgs);
                    }
                    if !msgs.is_empty() {
                        let c = format!("Member must satisfy constraint: [{}]", msgs.join(", "));
                        self.violation(shape, value, path, c);
                    }
                } else {
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{}.{}.member", path, i + 1);
                        self.walk(member, item, &p);
                    }
                }
            }
            ShapeKind::Map { key, value: value_shape, min, max, .. } => {
                let Some(obj) = value.as_object() else {
                    return self.type_mismatch("a map (JSON object)", value, path);
                };
                self.check_size(shape, value, path, obj.len(), min, max);
                let mut key_msgs = Vec::new();
                let mut value_msgs = Vec::new();
                for (k, v) in obj {
                    self.scalar_into(key, &Value::String(k.clone()), path, &mut key_msgs);
                    if value_shape.is_scalar() {
                        self.scalar_into(value_shape, v, path, &mut value_msgs);
                    } else {
                        self.walk(value_shape, v, &join(path, k));
                    }
                }
                if !key_msgs.is_empty() {
                    let c = format!("Map keys must satisfy constraint: [{}]", key_msgs.join(", "));
                    self.violation(shape, value, path, c);
                }
                if !value_msgs.is_empty() {
                    let c = format!("Map value must satisfy constraint: [{}]", value_msgs.join(", "));
                    self.violation(shape, value, path, c);
                }
            }
            _ => match scalar_constraints(shape, value) {
                Ok(msgs) => {
                    for m in msgs {
                        self.violation(shape, value, path, m);
                    }
                }
                Err(expected) => self.type_mismatch(expected, value, path),
            },
        }
    }

    /// Checks one scalar inside a container, adding new messages to `msgs`.
    fn scalar_into(&mut self, shape: &Shape, value: &Value, path: &str, msgs: &mut Vec<String>) {
        match scalar_constraints(shape, value) {
            Ok(found) => {
                for m in found {
                    if !msgs.contains(&m) {
                        msgs.push(m);
                    }
                }
            }
            Err(expected) => self.type_mismatch(expected, value, path),
        }
    }

    fn check_size(&mut self, shape: &Shape, value: &Value, path: &str, len: usize, min: Option<i64>, max: Option<i64>) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if let Some(max) = max.filter(|m| len > *m) {
            let c = format!("Member must have length less than or equal to {max}");
            self.violation(shape, value, path, c);
        }
        if let Some(min) = min.filter(|m| len < *m) {
            let c = format!("Member must have length greater than or equal to {min}");
            self.violation(shape, value, path, c);
        }
    }
}

/// The constraint messages a scalar value violates, or the JSON type it should have had.
fn scalar_constraints(shape: &Shape, value: &Value) -> Result<Vec<String>, &'static str> {
    let mut msgs = Vec::new();
    match shape.kind {
        ShapeKind::String { min, max, pattern, enum_values } => {
            let s = value.as_str().ok_or("a string")?;
            let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
            if let Some(max) = max.filter(|m| len > *m) {
                msgs.push(format!("Member must have length less than or equal to {max}"));
            }
            if let Some(min) = min.filter(|m| len < *m) {
                msgs.push(format!("Member must have length greater than or equal to {min}"));
            }
            if let Some(p) = pattern {
                if !crate::patterns::is_match(p, s) {
                    msgs.push(format!("Member must satisfy regular expression pattern: {p}"));
                }
            }
            if !enum_values.is_empty() && !enum_values.contains(&s) {
                msgs.push(format!("Member must satisfy enum value set: [{}]", enum_values.join(", ")));
            }
        }
        ShapeKind::Integer { min, max } | ShapeKind::Long { min, max } => {
            let n = value.as_i64().ok_or("an integer")?;
            if matches!(shape.kind, ShapeKind::Integer { .. }) && i32::try_from(n).is_err() {
                return Err("a 32-bit integer");
            }
            if let Some(max) = max.filter(|m| n > *m) {
                msgs.push(format!("Member must have value less than or equal to {max}"));
            }
            if let Some(min) = min.filter(|m| n < *m) {
                msgs.push(format!("Member must have value greater than or equal to {min}"));
            }
        }
        ShapeKind::Boolean => {
            value.as_bool().ok_or("a boolean")?;
        }
        ShapeKind::Double => {
            value.as_f64().ok_or("a number")?;
        }
        ShapeKind::Timestamp => {
            let ok = match value {
                Value::Number(n) => n.as_f64().and_then(corral_wire::time::Timestamp::from_epoch_seconds).is_some(),
                Value::String(s) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(corral_wire::time::Timestamp::from_epoch_seconds)
                    .or_else(|| corral_wire::time::Timestamp::parse_iso8601(s))
                    .is_some(),
                _ => false,
            };
            if !ok {
                return Err("a timestamp (epoch seconds or ISO-8601)");
            }
        }
        ShapeKind::Blob => {
            value.as_str().ok_or("a base64 string")?;
        }
        // Containers are not scalars; the walker never asks.
        ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. } => {}
    }
    Ok(msgs)
}

/// Whether a value of `shape` is, or may hold, a sensitive value.
fn holds_sensitive(shape: &Shape, depth: u8) -> bool {
    if shape.sensitive {
        return true;
    }
    // Recursive shapes: a secret nested deeper than this is not worth the walk, but err on the
    // safe side and treat the value as sensitive.
    if depth == 0 {
        return true;
    }
    match shape.kind {
        ShapeKind::Structure { members } => members.iter().any(|m| holds_sensitive(m.shape, depth - 1)),
        ShapeKind::List { member, .. } => holds_sensitive(member, depth - 1),
        ShapeKind::Map { key, value, .. } => holds_sensitive(key, depth - 1) || holds_sensitive(value, depth - 1),
        _ => false,
    }
}

fn shown(shape: &Shape, value: &Value) -> ViolationValue {
    if holds_sensitive(shape, 6) {
        ViolationValue::Redacted
    } else {
        ViolationValue::Shown(render(value))
    }
}

/// A value as Java's `toString` would print it in AWS's messages.
fn render(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(obj) => {
            let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k}={}", render(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}
