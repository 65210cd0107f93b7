//! IAM policy documents: parsing, the structural checks AWS makes on write, and trust questions.
//!
//! AWS accepts a single value or a list wherever a list is allowed (`"Action": "s3:Get*"` or
//! `"Action": ["..."]`), and `Statement` may be one object or a list; both forms parse to lists.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The two policy-language versions AWS accepts.
pub const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];

/// Why a policy document was refused. `Display` gives AWS's `MalformedPolicyDocument` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not a JSON object.
    #[error("This policy contains invalid Json")]
    InvalidJson,
    /// A field with the wrong type, an unknown `Version`, an `Effect` other than Allow/Deny.
    #[error("Syntax errors in policy.")]
    Syntax,
    /// A statement lacks a field its kind of policy needs.
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    /// A statement has a field its kind of policy must not have (`Principal` in an identity policy).
    #[error("Has prohibited field {0}")]
    ProhibitedField(&'static str),
    /// A trust policy statement's principal is not one AWS accepts.
    #[error("Invalid principal in policy: {0}")]
    InvalidPrincipal(String),
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Refuses, overriding any allow.
    Deny,
}

/// A statement's `Principal` / `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `"*"`: everyone.
    Any,
    /// `{"Service": [...], "AWS": [...], ...}`: principal type → identifiers.
    Typed(BTreeMap<String, Vec<String>>),
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Optional statement ID.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Principal` (trust and resource policies).
    pub principal: Option<Principal>,
    /// `NotPrincipal`.
    pub not_principal: Option<Principal>,
    /// `Action`.
    pub action: Option<Vec<String>>,
    /// `NotAction`.
    pub not_action: Option<Vec<String>>,
    /// `Resource`.
    pub resource: Option<Vec<String>>,
    /// `NotResource`.
    pub not_resource: Option<Vec<String>>,
    /// `Condition`, kept as JSON until evaluation needs it.
    pub condition: Option<Value>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// `Version` (absent means the old 2008 language).
    pub version: Option<String>,
    /// `Id`.
    pub id: Option<String>,
    /// The statements.
    pub statements: Vec<Statement>,
}

/// Which kind of policy a document is, which decides the fields its statements need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a user, group or role: Action and Resource, no Principal.
    Identity,
    /// A role's trust policy: Principal and Action, no Resource.
    Trust,
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "Version")]
    version: Option<Value>,
    #[serde(rename = "Id")]
    id: Option<Value>,
    #[serde(rename = "Statement")]
    statement: Option<Value>,
}

fn string_or_list(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map(str::to_string).ok_or(PolicyError::Syntax)).collect()
        }
        _ => Err(PolicyError::Syntax),
    }
}

fn parse_principal(v: &Value) -> Result<Principal, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principal::Any),
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (kind, ids) in map {
                out.insert(kind.clone(), string_or_list(ids)?);
            }
            Ok(Principal::Typed(out))
        }
        _ => Err(PolicyError::InvalidPrincipal(v.to_string())),
    }
}

fn parse_statement(v: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(map) = v else { return Err(PolicyError::Syntax) };
    let text = |key: &str| -> Result<Option<String>, PolicyError> {
        match map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(PolicyError::Syntax),
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, PolicyError> { map.get(key).map(string_or_list).transpose() };
    let effect = match text("Effect")?.as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(_) => return Err(PolicyError::Syntax),
        None => return Err(PolicyError::MissingField("Effect")),
    };
    let condition = match map.get("Condition") {
        None => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => return Err(PolicyError::Syntax),
    };
    Ok(Statement {
        sid: text("Sid")?,
        effect,
        principal: map.get("Principal").map(parse_principal).transpose()?,
        not_principal: map.get("NotPrincipal").map(parse_principal).transpose()?,
        action: list("Action")?,
        not_action: list("NotAction")?,
        resource: list("Resource")?,
        not_resource: list("NotResource")?,
        condition,
    })
}

/// Parses a policy document and checks it as AWS does on write for the given kind of policy.
pub fn parse(document: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
    let raw: RawDocument = serde_json::from_str(document).map_err(|_| PolicyError::InvalidJson)?;
    let version = match raw.version {
        None => None,
        Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => Some(v),
        Some(_) => return Err(PolicyError::Syntax),
    };
    let id = match raw.id {
        None => None,
        Some(Value::String(v)) => Some(v),
        Some(_) => return Err(PolicyError::Syntax),
    };
    let statements = match raw.statement {
        None => return Err(PolicyError::MissingField("Statement")),
        Some(Value::Array(items)) => items.iter().map(parse_statement).collect::<Result<Vec<_>, _>>()?,
        Some(v @ Value::Object(_)) => vec![parse_statement(&v)?],
        Some(_) => return Err(PolicyError::Syntax),
    };
    for s in &statements {
        if s.action.is_none() && s.not_action.is_none() {
            return Err(PolicyError::MissingField("Action"));
        }
        match kind {
            PolicyKind::Identity => {
                if s.principal.is_some() || s.not_principal.is_some() {
                    return Err(PolicyError::ProhibitedField("Principal"));
                }
                if s.resource.is_none() && s.not_resource.is_none() {
                    return Err(PolicyError::MissingField("Resource"));
                }
            }
            PolicyKind::Trust => {
                if s.principal.is_none() && s.not_principal.is_none() {
                    return Err(PolicyError::MissingField("Principal"));
                }
                if s.resource.is_some() || s.not_resource.is_some() {
                    return Err(PolicyError::ProhibitedField("Resource"));
                }
            }
        }
    }
    Ok(PolicyDocument { version, id, statements })
}

impl PolicyDocument {
    /// Does this trust policy let the AWS service `service` (e.g. `ssm.amazonaws.com`) assume
    /// the role? True when an Allow statement names the service (or `*`) as principal with an
    /// action covering `sts:AssumeRole`, and no Deny statement takes it back. Conditions (AWS
    /// recommends `aws:SourceAccount`/`aws:SourceArn`) are tolerated, not evaluated.
    pub fn trusts_service(&self, service: &str) -> bool {
        let names_service = |p: &Principal| match p {
            Principal::Any => true,
            Principal::Typed(map) => map.get("Service").is_some_and(|ids| ids.iter().any(|id| id == service)),
        };
        let covers_assume = |s: &Statement| match (&s.action, &s.not_action) {
            (Some(actions), _) => actions.iter().any(|a| action_matches(a, "sts:AssumeRole")),
            (None, Some(not)) => !not.iter().any(|a| action_matches(a, "sts:AssumeRole")),
            (None, None) => false,
        };
        let applies = |s: &Statement| s.principal.as_ref().is_some_and(names_service) && covers_assume(s);
        let allowed = self.statements.iter().any(|s| s.effect == Effect::Allow && applies(s));
        let denied = self.statements.iter().any(|s| s.effect == Effect::Deny && applies(s) && s.condition.is_none());
        allowed && !denied
    }
}

/// Matches an IAM action pattern (`*` and `?` wildcards, case-insensitive) against an action.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// Glob matching with `*` (any run) and `?` (one character), as IAM uses it.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSM_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    #[test]
    fn trust_policy_for_ssm() {
        let doc = parse(SSM_TRUST, PolicyKind::Trust).expect("valid");
        assert!(doc.trusts_service("ssm.amazonaws.com"));
        assert!(!doc.trusts_service("ec2.amazonaws.com"));
        let list = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","ssm.amazonaws.com"]},"Action":["sts:*"],"Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}}"#;
        assert!(parse(list, PolicyKind::Trust).expect("valid").trusts_service("ssm.amazonaws.com"));
        let ec2_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!parse(ec2_only, PolicyKind::Trust).expect("valid").trusts_service("ssm.amazonaws.com"));
        let denied = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!parse(denied, PolicyKind::Trust).expect("valid").trusts_service("ssm.amazonaws.com"));
    }

    #[test]
    fn malformed_documents_get_aws_messages() {
        let check = |doc: &str, kind: PolicyKind, msg: &str| {
            let err = parse(doc, kind).expect_err(doc);
            assert_eq!(err.to_string(), msg, "{doc}");
        };
        check("{not json", PolicyKind::Trust, "This policy contains invalid Json");
        check("[]", PolicyKind::Trust, "This policy contains invalid Json");
        check(r#"{"Version":"2012-10-17"}"#, PolicyKind::Trust, "Missing required field Statement");
        check(r#"{"Version":"2099-01-01","Statement":[]}"#, PolicyKind::Trust, "Syntax errors in policy.");
        check(
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust,
            "Syntax errors in policy.",
        );
        check(
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
            PolicyKind::Trust,
            "Missing required field Principal",
        );
        check(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*"}]}"#,
            PolicyKind::Trust,
            "Missing required field Action",
        );
        check(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
            PolicyKind::Identity,
            "Has prohibited field Principal",
        );
        check(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            PolicyKind::Identity,
            "Missing required field Resource",
        );
        check(
            r#"{"Statement":[{"Effect":"Allow","Action":7,"Resource":"*"}]}"#,
            PolicyKind::Identity,
            "Syntax errors in policy.",
        );
    }

    #[test]
    fn wildcards() {
        assert!(action_matches("ssm:Describe*", "ssm:DescribeInstanceInformation"));
        assert!(action_matches("SSM:describe*", "ssm:DescribeActivations"));
        assert!(action_matches("*", "iam:CreateRole"));
        assert!(action_matches("ssm:Get?erviceSetting", "ssm:GetServiceSetting"));
        assert!(!action_matches("ssm:Get*", "ssm:SendCommand"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
    }
}
