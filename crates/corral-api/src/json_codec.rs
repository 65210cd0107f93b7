//! AWS JSON 1.1 request decoding and response encoding.

use crate::error::InputError;
use crate::model::Shape;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Parses a JSON 1.1 request body, validates it against `shape` and deserialises it into `T`.
///
/// An empty (or all-whitespace) body counts as `{}`. Malformed JSON, a body that is not an
/// object, or a value of the wrong JSON type is [`InputError::Serialization`]; broken constraints
/// are [`InputError::Validation`] with every violation.
pub fn decode_input<T: DeserializeOwned>(shape: &'static Shape, body: &[u8]) -> Result<T, InputError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| InputError::Serialization(format!("Malformed JSON request body: {e}")))?
    };
    if !value.is_object() {
        return Err(InputError::Serialization("The request body must be a JSON object".to_owned()));
    }
    crate::validate::check_input(shape, &value)?;
    serde_json::from_value(value).map_err(|e| InputError::Serialization(e.to_string()))
}

/// Serialises a response body. Timestamps become epoch seconds; absent members are left out.
pub fn encode_output<T: Serialize>(value: &T) -> Vec<u8> {
    // The generated types hold only strings, numbers, booleans, string-keyed maps and
    // timestamps, none of which can fail to serialise.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The members of `value` that `shape` models, at every depth: structure members by their wire
/// name, list items and map values by their shapes. Anything a client added beyond the model
/// (which the typed decoder ignores) is dropped, so that what is kept about a request (its audit
/// record) is bounded by the model, not by what a caller chose to send.
pub fn modelled_members(shape: &Shape, value: &Value) -> Value {
    use crate::model::ShapeKind;
    match (&shape.kind, value) {
        (ShapeKind::Structure { members }, Value::Object(map)) => Value::Object(
            members
                .iter()
                .filter_map(|m| map.get(m.wire_name).map(|v| (m.wire_name.to_string(), modelled_members(m.shape, v))))
                .collect(),
        ),
        (ShapeKind::List { member, .. }, Value::Array(items)) => {
            Value::Array(items.iter().map(|item| modelled_members(member, item)).collect())
        }
        (ShapeKind::Map { value: value_shape, .. }, Value::Object(map)) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), modelled_members(value_shape, v))).collect())
        }
        // A structure, list or map sent as a scalar, or a scalar sent as a structure or list,
        // is not what the model describes: nothing of it is kept.
        (ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. }, _)
        | (_, Value::Object(_) | Value::Array(_)) => Value::Null,
        (_, scalar) => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::modelled_members;
    use serde_json::json;

    #[test]
    fn only_modelled_members_are_kept() {
        let shape = crate::ssm::Operation::CreateActivation.input_shape();
        let sent = json!({
            "IamRole": "R", "Junk": "x".repeat(1000),
            "Tags": [{"Key": "k", "Value": "v", "Extra": [1, 2, 3]}],
            "Description": {"nested": "object where a string belongs"},
        });
        let kept = modelled_members(shape, &sent);
        assert_eq!(kept, json!({"IamRole": "R", "Tags": [{"Key": "k", "Value": "v"}], "Description": null}));
    }
}
