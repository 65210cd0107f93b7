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
