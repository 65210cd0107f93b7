//! The audit trail: every request becomes a CloudTrail-shaped record, secrets redacted as AWS
//! redacts them, appended to its account and region's hash chain in the store (which
//! `corral audit verify` checks offline and `LookupEvents` reads).

pub mod writer;

use corral_store::{AuditRecord, AuditResource};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::context::{PrincipalKind, RequestContext};

/// CloudTrail's record format version Corral writes.
pub const EVENT_VERSION: &str = "1.09";
/// What AWS writes in place of a value it will not record.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Who made a call, as far as the edge knows it.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A SigV4-authenticated principal, in the region of its signature.
    Principal {
        /// The principal.
        principal: crate::context::Principal,
        /// The region of the request.
        region: String,
    },
    /// A managed instance proving itself with its RSA key.
    Instance {
        /// The instance.
        instance_id: String,
        /// Its account.
        account_id: String,
        /// Its region.
        region: String,
    },
    /// The anonymous registration call.
    Anonymous {
        /// The account the record belongs to (the activation's, else the deployment's).
        account_id: String,
        /// Its region.
        region: String,
    },
}

impl Caller {
    /// The caller of a SigV4 request.
    pub fn of(ctx: &RequestContext) -> Caller {
        Caller::Principal { principal: ctx.principal.clone(), region: ctx.region.clone() }
    }
}

/// Everything a record is made of.
#[derive(Debug, Clone)]
pub struct Event {
    /// Who.
    pub caller: Caller,
    /// `ssm.amazonaws.com`, ...
    pub event_source: String,
    /// The operation name.
    pub event_name: String,
    /// Describe/Get/List/Lookup calls.
    pub read_only: bool,
    /// The request ID returned to the caller.
    pub request_id: String,
    /// When the edge received it.
    pub event_time: OffsetDateTime,
    /// The client's address.
    pub source_ip: String,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Host` header as the client sent it.
    pub host: Option<String>,
    /// The request's input as JSON (wire member names), if it was readable.
    pub request: Option<Value>,
    /// The response's output as JSON, for successful mutating calls.
    pub response: Option<Value>,
    /// The error code and message of a failed call.
    pub error: Option<(String, String)>,
}

tokio::task_local! {
    /// The event of the request the current task serves, so a handler can stage its output
    /// into the record its store write will carry.
    static CURRENT_EVENT: Event;
}

/// Runs a handler with its request's event in scope (see [`stage_output`]).
pub async fn with_event<F: std::future::Future>(event: Event, fut: F) -> F::Output {
    CURRENT_EVENT.scope(event, fut).await
}

/// Stages the record of the current request, now with the handler's `output` as its
/// `responseElements`, so that the handler's next store write commits it in the same
/// transaction. Handlers that create something call this right before their write; others get
/// the record staged by the edge (without response elements). Outside a request it does nothing.
pub fn stage_output<T: serde::Serialize>(output: &T) {
    let _ = CURRENT_EVENT.try_with(|event| {
        if let Some(slot) = corral_store::current_audit_slot() {
            let mut event = event.clone();
            event.response = serde_json::to_value(output).ok();
            slot.stage(record(&event));
        }
    });
}

/// The largest `requestParameters` or `responseElements` a record keeps, as CloudTrail: a
/// larger one is left out and the record says `"omitted": true`, so no caller can make one
/// record, in a chain that is never pruned, as large as its request.
pub const MAX_ELEMENT_BYTES: usize = 100 * 1024;

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
fn resources(event: &Event) -> Vec<AuditResource> {
    let mut out = Vec::new();
    let mut add = |t: &str, n: &str| {
        // The store refuses NUL in indexed text; the full value stays in the JSON record.
        let n = &clean(n);
        if !n.is_empty() && !out.iter().any(|r: &AuditResource| r.resource_type == t && r.resource_name == *n) {
            out.push(AuditResource { resource_type: t.to_string(), resource_name: n.to_string() });
        }
    };
    for v in [event.request.as_ref(), event.response.as_ref()].into_iter().flatten() {
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
pub fn record(event: &Event) -> AuditRecord {
    let (account_id, region, identity, username, access_key_id) = match &event.caller {
        Caller::Principal { principal, region } => {
            let p = principal;
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
            (p.account_id.clone(), region.clone(), identity, username, Some(p.access_key_id.clone()))
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
    let element = |value: Option<&Value>| {
        value.map(|r| redact(r, &event.event_name)).filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    };
    let request = element(event.request.as_ref());
    let response = if event.read_only || event.error.is_some() { None } else { element(event.response.as_ref()) };
    let mut rec = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": corral_wire::time::format_iso8601_seconds(event.event_time),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": region,
        "sourceIPAddress": event.source_ip,
        "userAgent": event.user_agent.as_deref().unwrap_or(""),
        "requestParameters": request.unwrap_or(Value::Null),
        "responseElements": response.unwrap_or(Value::Null),
        "requestID": event.request_id,
        "eventID": event_id,
        "readOnly": event.read_only,
        "resources": resources.iter().map(|r| json!({"type": r.resource_type, "ARN": r.resource_name, "accountId": account_id})).collect::<Vec<_>>(),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
        "tlsDetails": {"clientProvidedHostHeader": event.host.as_deref().unwrap_or("")},
    });
    if let Some((code, message)) = &event.error {
        rec["errorCode"] = json!(code);
        rec["errorMessage"] = json!(message);
    }
    let mut record_json = rec.to_string();
    // Neither element can be over the cap when the whole record is not: only a large record
    // pays for measuring its elements one by one.
    if record_json.len() > MAX_ELEMENT_BYTES {
        let mut omitted = false;
        for element in ["requestParameters", "responseElements"] {
            if rec[element].to_string().len() > MAX_ELEMENT_BYTES {
                rec[element] = Value::Null;
                omitted = true;
            }
        }
        if omitted {
            rec["omitted"] = json!(true);
            record_json = rec.to_string();
        }
    }
    AuditRecord {
        account_id: account_id.clone(),
        region,
        event_id,
        event_time: event.event_time,
        event_name: event.event_name.clone(),
        event_source: event.event_source.clone(),
        username: username.map(|u| clean(&u)),
        access_key_id: access_key_id.map(|k| clean(&k)),
        read_only: event.read_only,
        resources,
        error_code: event.error.as_ref().map(|(c, _)| c.clone()),
        record_json,
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

    #[test]
    fn oversized_elements_are_omitted_with_a_marker() {
        let event = |content: String| Event {
            caller: Caller::Anonymous { account_id: "111122223333".into(), region: "us-east-1".into() },
            event_source: "ssm.amazonaws.com".into(),
            event_name: "CreateDocument".into(),
            read_only: false,
            request_id: "r".into(),
            event_time: OffsetDateTime::UNIX_EPOCH,
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            host: None,
            request: Some(json!({"Name": "d", "Content": content})),
            response: None,
            error: None,
        };
        let small: Value = serde_json::from_str(&record(&event("x".repeat(1000))).record_json).expect("json");
        assert_eq!(small["requestParameters"]["name"], "d");
        assert!(small.get("omitted").is_none());
        let big = record(&event("x".repeat(MAX_ELEMENT_BYTES + 1)));
        assert!(big.record_json.len() < 4096, "the record stays small: {} bytes", big.record_json.len());
        let big: Value = serde_json::from_str(&big.record_json).expect("json");
        assert_eq!(big["requestParameters"], Value::Null);
        assert_eq!(big["omitted"], true);
    }
}
