//! The AWS JSON 1.1 envelope used by SSM, CloudTrail and EventBridge (api-surface.md §1.2).
//!
//! Requests are `POST` with `X-Amz-Target: <prefix>.<Operation>` and a JSON object body;
//! responses are a JSON object, errors a JSON object with `__type` and `message`.

use serde::Serialize;

/// `Content-Type` of requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Request header naming the operation, `<targetPrefix>.<Operation>`.
pub const TARGET_HEADER: &str = "x-amz-target";

/// Response header botocore reads `ResponseMetadata.RequestId` from for JSON services.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

/// An error body, `{"__type":"<code>","message":"<message>"}`, JSON-escaped.
///
/// botocore maps `__type` to the modelled exception by shape name, so `code` is the bare
/// shape name (`InvalidActivationId`), not a namespaced one.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody { kind: code, message }).expect("serialising a struct of two strings cannot fail")
}

/// Splits an `X-Amz-Target` value into target prefix and operation at the last `.` (the
/// CloudTrail prefix itself contains dots). `None` when there is no `.` or either side is empty.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    let (prefix, operation) = target.rsplit_once('.')?;
    if prefix.is_empty() || operation.is_empty() {
        None
    } else {
        Some((prefix, operation))
    }
}

/// The error code a client derives from a `__type` value, the way botocore does it: keep what
/// precedes the first `:`, then what follows the last `#`
/// (`com.amazonaws.ssm#InvalidActivationId:http://...` becomes `InvalidActivationId`). Our agent
/// and load tool use this to read error bodies from AWS or from us.
pub fn error_code_from_type(type_field: &str) -> &str {
    let before_colon = type_field.split(':').next().unwrap_or(type_field);
    before_colon.rsplit('#').next().unwrap_or(before_colon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_escaped_json() {
        assert_eq!(
            error_body("InvalidActivationId", "Activation ID x was not found"),
            br#"{"__type":"InvalidActivationId","message":"Activation ID x was not found"}"#
        );
        let hostile = "quote \" backslash \\ newline \n nul \u{0} <tag> \u{1F600}";
        let body = error_body("ValidationException", hostile);
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(parsed["__type"], "ValidationException");
        assert_eq!(parsed["message"], hostile);
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("AmazonSSM.GetServiceSetting"), Some(("AmazonSSM", "GetServiceSetting")));
        assert_eq!(
            split_target("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"),
            Some(("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101", "LookupEvents"))
        );
        assert_eq!(split_target("AmazonSSM"), None);
        assert_eq!(split_target("AmazonSSM."), None);
        assert_eq!(split_target(".Op"), None);
    }

    #[test]
    fn error_codes_from_type() {
        assert_eq!(error_code_from_type("InvalidActivationId"), "InvalidActivationId");
        assert_eq!(
            error_code_from_type("InvalidActivationId:http://internal.amazon.com/coral/"),
            "InvalidActivationId"
        );
        assert_eq!(error_code_from_type("com.amazonaws.ssm#InvalidActivationId"), "InvalidActivationId");
        assert_eq!(error_code_from_type(""), "");
    }
}
