//! The audit trail: every request becomes a CloudTrail-shaped record, secrets redacted as AWS
//! redacts them, appended to its account and region's hash chain in the store (which
//! `corral audit verify` checks offline and `LookupEvents` reads).

use corral_store::{AuditRecord, AuditResource};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::context::{PrincipalKind, RequestContext};

/// CloudTrail's record format version Corral writes.
pub const EVENT_VERSION: &str = "1.09";
/// What AWS writes in place of a value it will not record.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Who made a call, as far as the edge knows it.
pub enum Caller<'a> {
    /// A SigV4-authenticated principal.
    Principal(&'a RequestContext),
    /// A managed instance proving itself with its RSA key.
    Instance {
        /// The instance.
        instance_id: &'a str,
        /// Its account.
        account_id: &'a str,
        /// Its region.
        region: &'a str,
    },
    /// The anonymous registration call.
    Anonymous {
        /// The account the record belongs to (the activation's, else the deployment's).
        account_id: &'a str,
        /// Its region.
        region: &'a str,
    },
}

/// Everything a record is made of.
pub struct Event<'a> {
    /// Who.
    pub caller: Caller<'a>,
    /// `ssm.amazonaws.com`, ...
    pub event_source: &'a str,
    /// The operation name.
    pub event_name: &'a str,
    /// Describe/Get/List/Lookup calls.
    pub read_only: bool,
    /// The request ID returned to the caller.
    pub request_id: &'a str,
    /// When the edge received it.
    pub event_time: OffsetDateTime,
    /// The client's address and user agent.
    pub source_ip: String,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The `Host` header as the client sent it.
    pub host: Option<&'a str>,
    /// The request's input as JSON (wire member names), if it was readable.
    pub request: Option<&'a Value>,
    /// The response's output as JSON, for successful mutating calls.
    pub response: Option<&'a Value>,
    /// The error code and message of a failed call.
    pub error: Option<(&'a str, &'a str)>,
}

/// Members AWS never records in clear (matched on the camelCase name).
const SECRET_MEMBERS: &[&str] =
    &["activationCode", "secretAccessKey", "sessionToken", "password", "newPassword", "oldPassword", "privateKey"];

/// `SettingId` → `settingId`: CloudTrail's member naming.
fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Re-keys a request or response to camelCase and hides secrets. SendCommand's `parameters`
/// are hidden too (they often carry secrets), as AWS does.
pub fn redact(value: &Value, event_name: &str) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = camel(k);
                let hidden =
                    SECRET_MEMBERS.contains(&key.as_str()) || (key == "parameters" && event_name == "SendCommand");
                out.insert(key, if hidden { Value::String(HIDDEN.to_string()) } else { redact(v, event_name) });
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| redact(i, event_name)).collect()),
        other => other.clone(),
    }
}

/// Text for an indexed column: NUL (which PostgreSQL cannot store in text) becomes U+FFFD.
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// The resources a call is about, for `LookupEvents` by resource type or name.
fn resources(event: &Event<'_>) -> Vec<AuditResource> {
    let mut out = Vec::new();
    let mut add = |t: &str, n: &str| {
        // The store refuses NUL in indexed text; the full value stays in the JSON record.
        let n = &clean(n);
        if !n.is_empty() && !out.iter().any(|r: &AuditResource| r.resource_type == t && r.resource_name == *n) {
            out.push(AuditResource { resource_type: t.to_string(), resource_name: n.to_string() });
        }
    };
    for v in [event.request, event.response].into_iter().flatten() {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        if let Some(id) = s("InstanceId") {
            add("AWS::SSM::ManagedInstance", id);
        }
        if s("ResourceType") == Some("ManagedInstance") {
            add("AWS::SSM::ManagedInstance", s("ResourceId").unwrap_or_default());
        }
        if let Some(ids) = v.get("InstanceIds").and_then(Value::as_array) {
            for id in ids.iter().filter_map(Value::as_str) {
                add("AWS::SSM::ManagedInstance", id);
            }
        }
        if let Some(id) = s("ActivationId") {
            add("AWS::SSM::Activation", id);
        }
        if let Some(id) = s("SettingId") {
            add("AWS::SSM::ServiceSetting", id);
        }
        if let Some(name) = s("DocumentName") {
            add("AWS::SSM::Document", name);
        }
        if let Some(name) = s("UserName") {
            add("AWS::IAM::User", name);
        }
        if let Some(name) = s("RoleName") {
            add("AWS::IAM::Role", name);
        }
        if let Some(arn) = s("RoleArn") {
            add("AWS::IAM::Role", arn);
        }
        if let Some(name) = s("GroupName") {
            add("AWS::IAM::Group", name);
        }
        if let Some(arn) = s("PolicyArn") {
            add("AWS::IAM::Policy", arn);
        }
        if let Some(id) = s("AccessKeyId") {
            add("AWS::IAM::AccessKey", id);
        }
    }
    out
}

/// Builds the store record for an event.
pub fn record(event: &Event<'_>) -> AuditRecord {
    let (account_id, region, identity, username, access_key_id) = match &event.caller {
        Caller::Principal(ctx) => {
            let p = &ctx.principal;
            let (identity, username) = match &p.kind {
                PrincipalKind::User { user_name } | PrincipalKind::UserSession { user_name } => {
                    let mut id = json!({
                        "type": "IAMUser", "principalId": p.user_id, "arn": p.arn,
                        "accountId": p.account_id, "accessKeyId": p.access_key_id, "userName": user_name,
                    });
                    if matches!(p.kind, PrincipalKind::UserSession { .. }) {
                        id["sessionContext"] = json!({"attributes": {"mfaAuthenticated": "false"}});
                    }
                    (id, Some(user_name.clone()))
                }
                PrincipalKind::AssumedRole { role_name, role_id, session_name } => (
                    json!({
                        "type": "AssumedRole", "principalId": p.user_id, "arn": p.arn,
                        "accountId": p.account_id, "accessKeyId": p.access_key_id,
                        "sessionContext": {
                            "sessionIssuer": {
                                "type": "Role", "principalId": role_id,
                                "arn": format!("arn:aws:iam::{}:role/{role_name}", p.account_id),
                                "accountId": p.account_id, "userName": role_name,
                            },
                            "attributes": {"mfaAuthenticated": "false"},
                        },
                    }),
                    Some(session_name.clone()),
                ),
            };
            (p.account_id.clone(), ctx.region.clone(), identity, username, Some(p.access_key_id.clone()))
        }
        Caller::Instance { instance_id, account_id, region } => (
            account_id.to_string(),
            region.to_string(),
            json!({
                "type": "ManagedInstance", "principalId": instance_id, "accountId": account_id,
                "arn": format!("arn:aws:ssm:{region}:{account_id}:managed-instance/{instance_id}"),
            }),
            Some(instance_id.to_string()),
            None,
        ),
        Caller::Anonymous { account_id, region } => {
            (account_id.to_string(), region.to_string(), json!({"type": "Unknown"}), None, None)
        }
    };
    let event_id = uuid::Uuid::new_v4().to_string();
    let resources = resources(event);
    let mut rec = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": corral_wire::time::format_iso8601_seconds(event.event_time),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": region,
        "sourceIPAddress": event.source_ip,
        "userAgent": event.user_agent.unwrap_or(""),
        "requestParameters": event.request.map(|r| redact(r, event.event_name)).filter(|v| v.as_object().is_some_and(|o| !o.is_empty())),
        "responseElements": if event.read_only || event.error.is_some() {
            Value::Null
        } else {
            event.response.map(|r| redact(r, event.event_name)).filter(|v| v.as_object().is_some_and(|o| !o.is_empty())).unwrap_or(Value::Null)
        },
        "requestID": event.request_id,
        "eventID": event_id,
        "readOnly": event.read_only,
        "resources": resources.iter().map(|r| json!({"type": r.resource_type, "ARN": r.resource_name, "accountId": account_id})).collect::<Vec<_>>(),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
        "tlsDetails": {"clientProvidedHostHeader": event.host.unwrap_or("")},
    });
    if let Some((code, message)) = event.error {
        rec["errorCode"] = json!(code);
        rec["errorMessage"] = json!(message);
    }
    AuditRecord {
        account_id: account_id.clone(),
        region,
        event_id,
        event_time: event.event_time,
        event_name: event.event_name.to_string(),
        event_source: event.event_source.to_string(),
        username: username.map(|u| clean(&u)),
        access_key_id: access_key_id.map(|k| clean(&k)),
        read_only: event.read_only,
        resources,
        error_code: event.error.map(|(c, _)| c.to_string()),
        record_json: rec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_keys_camel_cased() {
        let v = json!({"ActivationCode": "abc", "Nested": {"SecretAccessKey": "s", "SessionToken": "t", "AccessKeyId": "ASIA"}});
        let r = redact(&v, "CreateActivation");
        assert_eq!(r["activationCode"], HIDDEN);
        assert_eq!(r["nested"]["secretAccessKey"], HIDDEN);
        assert_eq!(r["nested"]["sessionToken"], HIDDEN);
        assert_eq!(r["nested"]["accessKeyId"], "ASIA");
        let cmd = json!({"Parameters": {"commands": ["echo secret"]}});
        assert_eq!(redact(&cmd, "SendCommand")["parameters"], HIDDEN);
        assert_eq!(redact(&cmd, "DescribeDocument")["parameters"]["commands"][0], "echo secret");
    }
}
