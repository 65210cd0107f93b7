//! What a request that cannot be decoded or fails validation becomes.

use crate::model::Protocol;
use std::fmt;

/// Why a request's input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The input parsed but breaks the model's constraints (required, length, pattern, enum,
    /// range). JSON services answer `ValidationException`, Query services `ValidationError`.
    Validation(ValidationErrors),
    /// The input is not what the protocol allows: malformed JSON, a body that is not an object, a
    /// value of the wrong JSON type, a Query number or boolean that does not parse. JSON services
    /// answer `SerializationException`; Query services `InvalidParameterValue` (AWS's documented
    /// common error for an invalid or out-of-range parameter value).
    Serialization(String),
}

impl InputError {
    /// The AWS error code to answer with on `protocol`.
    pub fn aws_code(&self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (InputError::Validation(_), Protocol::Json) => "ValidationException",
            (InputError::Validation(_), Protocol::Query) => "ValidationError",
            (InputError::Serialization(_), Protocol::Json) => "SerializationException",
            (InputError::Serialization(_), Protocol::Query) => "InvalidParameterValue",
        }
    }

    /// The HTTP status to answer with (always 400: the client sent something wrong).
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The error message for the response body.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Validation(v) => v.fmt(f),
            InputError::Serialization(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for InputError {}

impl From<ValidationErrors> for InputError {
    fn from(v: ValidationErrors) -> Self {
        InputError::Validation(v)
    }
}

/// Every constraint violation found in one request, in the order found (members in model order).
///
/// Displays as AWS does: `1 validation error detected: Value 'x' at 'settingId' failed to satisfy
/// constraint: Member must have length less than or equal to 1000`, with several violations joined
/// by `; ` after `N validation errors detected: `.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors {
    /// The violations.
    pub violations: Vec<Violation>,
}

impl ValidationErrors {
    /// Whether nothing was violated.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// How many violations there are.
    pub fn len(&self) -> usize {
        self.violations.len()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        write!(f, "{n} validation {noun} detected: ")?;
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            v.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// How a violation shows the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationValue {
    /// The member is missing: `Value null at ...`.
    Null,
    /// The value, rendered as AWS (Java) prints it: strings and numbers as they are, lists as
    /// `[a, b]`, maps and structures as `{k=v, ...}`: `Value 'x' at ...`.
    Shown(String),
    /// The value is (or holds) a sensitive shape and is not echoed: `Value at ...`.
    Redacted,
}

/// One violated constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The member path as AWS writes it: lowerCamelCase member names joined by `.`, list items as
    /// `<list>.<1-based index>.member`, map values as `<map>.<key>` (`tags.1.member.key`).
    pub path: String,
    /// The offending value.
    pub value: ViolationValue,
    /// The constraint, e.g. `Member must not be null`.
    pub constraint: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            ViolationValue::Null => f.write_str("Value null")?,
            ViolationValue::Shown(v) => write!(f, "Value '{v}'")?,
            ViolationValue::Redacted => f.write_str("Value")?,
        }
        write!(f, " at '{}' failed to satisfy constraint: {}", self.path, self.constraint)
    }
}
