//! IAM policy documents: parsing, the structural checks AWS makes on write, and trust questions.
//!
//! AWS accepts a single value or a list wherever a list is allowed (`"Action": "s3:Get*"` or
//! `"Action": ["..."]`), and `Statement` may be one object or a list; both forms parse to lists.
//!
//! Element names are case-sensitive and must be ones IAM knows: a misspelt `"Condtion"` or a
//! lower-case `"condition"` is refused rather than ignored, since ignoring it would make the
//! statement broader than written. For the same reason a statement may not have both elements of
//! a pair (`Action`/`NotAction`, `Resource`/`NotResource`, `Principal`/`NotPrincipal`).
//!
//! Parsing also compiles what evaluation needs (action and resource patterns, condition
//! operands), so a [`PolicyDocument`] is parsed once and evaluated many times by
//! [`crate::eval`]. The public fields show the document as written; to change a policy, edit
//! its JSON and parse it again.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::condition::{self, Condition};
use crate::pattern::{self, Pattern, Scratch, Syntax, Variables};

/// The two policy-language versions AWS accepts.
pub const VERSIONS: &[&str] = &["2012-10-17", "2008-10-17"];

/// The policy-language version with policy variables (`${aws:username}`).
pub const VERSION_2012: &str = "2012-10-17";

/// AWS quota: characters (whitespace not counted) of all inline policies of one user together.
pub const INLINE_USER_POLICY_QUOTA: usize = 2048;
/// AWS quota: characters of all inline policies of one role together.
pub const INLINE_ROLE_POLICY_QUOTA: usize = 10240;
/// AWS quota: characters of all inline policies of one group together.
pub const INLINE_GROUP_POLICY_QUOTA: usize = 5120;
/// AWS quota: characters of one customer managed policy.
pub const MANAGED_POLICY_QUOTA: usize = 6144;
/// AWS quota (default): characters of one role trust policy.
pub const TRUST_POLICY_QUOTA: usize = 2048;

/// A policy's size as AWS counts it against the quotas: characters, whitespace not counted.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// Why a policy document was refused. `Display` gives AWS's `MalformedPolicyDocument` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not a JSON object.
    #[error("This policy contains invalid Json")]
    InvalidJson,
    /// A field with the wrong type, an unknown `Version`, an `Effect` other than Allow/Deny, an
    /// unknown (or mis-cased) element, both elements of an exclusive pair such as `Action` and
    /// `NotAction`.
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
    /// A `Condition` block names an operator AWS does not know.
    #[error("Invalid Condition type : {0}")]
    InvalidCondition(String),
    /// An action (or condition key) without a `vendor:` prefix.
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    MissingVendor,
    /// An action whose vendor part has a wildcard (`*:*`, `s*:Get*`).
    #[error("Action vendors (e.g., aws, ec2, etc.) must not contain wildcards.")]
    VendorWildcard,
    /// An action with more than one colon.
    #[error("Actions/Condition can contain only one colon.")]
    TooManyColons,
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
    /// `Condition` as written.
    pub condition: Option<Value>,
    /// `Condition`, parsed: one test per operator and key, all of which must hold.
    pub conditions: Vec<Condition>,
    matchers: Matchers,
}

/// A statement's action and resource patterns, compiled at parse time.
#[derive(Debug, Clone, PartialEq)]
struct Matchers {
    /// `Action` patterns, or `NotAction` patterns when `not_action`.
    actions: Vec<Pattern>,
    not_action: bool,
    /// `Resource` patterns, or `NotResource` ones when `not_resource`; `None` for neither
    /// (trust policies).
    resources: Option<Vec<Pattern>>,
    not_resource: bool,
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

/// The top level of a document. Deserialised as a struct rather than a `Value` map so that a
/// repeated `Statement` (or `Version`, `Id`) stays an error instead of the last one silently
/// winning.
#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "Version")]
    version: Option<Value>,
    #[serde(rename = "Id")]
    id: Option<Value>,
    #[serde(rename = "Statement")]
    statement: Option<Value>,
    /// Every other top-level key, all of which IAM refuses; collected (not rejected by serde's
    /// `deny_unknown_fields`) so the refusal gets AWS's message rather than the invalid-JSON one.
    #[serde(flatten)]
    unknown: serde_json::Map<String, Value>,
}

/// The elements a statement may have. IAM element names are case-sensitive.
const STATEMENT_ELEMENTS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

/// Elements a statement may have at most one of: evaluation reads one of each pair, so accepting
/// both would silently ignore the other.
const EXCLUSIVE_ELEMENTS: &[(&str, &str)] =
    &[("Action", "NotAction"), ("Resource", "NotResource"), ("Principal", "NotPrincipal")];

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

/// Checks an action as AWS does on write: `*`, or `vendor:pattern` with a wildcard-free vendor.
fn validate_action(action: &str) -> Result<(), PolicyError> {
    if action == "*" {
        return Ok(());
    }
    let Some((vendor, rest)) = action.split_once(':') else { return Err(PolicyError::MissingVendor) };
    if vendor.is_empty() {
        return Err(PolicyError::MissingVendor);
    }
    if vendor.contains(['*', '?']) {
        return Err(PolicyError::VendorWildcard);
    }
    if rest.contains(':') {
        return Err(PolicyError::TooManyColons);
    }
    Ok(())
}

fn parse_statement(v: &Value, variables: bool) -> Result<Statement, PolicyError> {
    let Value::Object(map) = v else { return Err(PolicyError::Syntax) };
    // Checked before anything else: an element this parser would skip (a misspelt `Condtion`,
    // the second of `Action`/`NotAction`) would leave the statement broader than written.
    if map.keys().any(|k| !STATEMENT_ELEMENTS.contains(&k.as_str()))
        || EXCLUSIVE_ELEMENTS.iter().any(|(a, b)| map.contains_key(*a) && map.contains_key(*b))
    {
        return Err(PolicyError::Syntax);
    }
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
    let conditions = match &condition {
        Some(block) => condition::parse_block(block, variables)?,
        None => Vec::new(),
    };
    let (action, not_action) = (list("Action")?, list("NotAction")?);
    let (resource, not_resource) = (list("Resource")?, list("NotResource")?);
    for a in action.iter().chain(not_action.iter()).flatten() {
        validate_action(a)?;
    }
    let compile = |items: &[String], syntax: Syntax, variables: bool| -> Vec<Pattern> {
        items.iter().map(|i| Pattern::compile(i, syntax, variables)).collect()
    };
    let matchers = Matchers {
        actions: compile(action.as_ref().or(not_action.as_ref()).map_or(&[], Vec::as_slice), Syntax::ACTION, false),
        not_action: action.is_none() && not_action.is_some(),
        resources: resource.as_ref().or(not_resource.as_ref()).map(|r| compile(r, Syntax::RESOURCE, variables)),
        not_resource: resource.is_none() && not_resource.is_some(),
    };
    Ok(Statement {
        sid: text("Sid")?,
        effect,
        principal: map.get("Principal").map(parse_principal).transpose()?,
        not_principal: map.get("NotPrincipal").map(parse_principal).transpose()?,
        action,
        not_action,
        resource,
        not_resource,
        condition,
        conditions,
        matchers,
    })
}

/// Parses a policy document and checks it as AWS does on write for the given kind of policy.
pub fn parse(document: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
    let raw: RawDocument = serde_json::from_str(document).map_err(|_| PolicyError::InvalidJson)?;
    if !raw.unknown.is_empty() {
        return Err(PolicyError::Syntax);
    }
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
    // Policy variables exist only in the 2012-10-17 language; in older documents `${...}` is text.
    let variables = version.as_deref() == Some(VERSION_2012);
    let statements = match raw.statement {
        None => return Err(PolicyError::MissingField("Statement")),
        Some(Value::Array(items)) => {
            items.iter().map(|i| parse_statement(i, variables)).collect::<Result<Vec<_>, _>>()?
        }
        Some(v @ Value::Object(_)) => vec![parse_statement(&v, variables)?],
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

impl Statement {
    /// Does `Action` (or `NotAction`) cover `action`? Case-insensitive, `*` and `?` wildcards.
    pub fn matches_action(&self, action: &str) -> bool {
        let m = &self.matchers;
        let listed = m
            .actions
            .iter()
            .any(|p| p.is_match_all() || p.matches(action, &NoVariables, &mut Scratch::default(), true));
        listed != m.not_action
    }

    /// Does `Resource` (or `NotResource`) cover `resource`, with policy variables taken from
    /// `context`? Case-sensitive. False for a statement with neither (a trust policy's).
    pub(crate) fn matches_resource(&self, resource: &str, context: &dyn Variables, scratch: &mut Scratch) -> bool {
        let m = &self.matchers;
        let Some(patterns) = &m.resources else { return false };
        let listed = patterns.iter().any(|p| p.is_match_all() || p.matches(resource, context, scratch, false));
        listed != m.not_resource
    }
}

/// For patterns that cannot hold variables (actions).
struct NoVariables;

impl Variables for NoVariables {
    fn variable(&self, _: &str) -> Option<&str> {
        None
    }
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
    pattern::glob_str(pattern, action, Syntax::ACTION)
}

/// Glob matching with `*` (any run) and `?` (one character), as IAM uses it; case-sensitive.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    pattern::glob_str(pattern, value, Syntax::GLOB)
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

    /// What a table row expects of `parse`.
    enum Expect {
        /// Parses.
        Parses,
        /// Refused with this `MalformedPolicyDocument` message.
        Refused(&'static str),
    }
    use Expect::{Parses, Refused};

    const SYNTAX: Expect = Refused("Syntax errors in policy.");

    /// `None` when `parse` does what the row expects, else what went wrong (so a failing table
    /// reports every bad row at once).
    fn check((kind, doc): (PolicyKind, &str), expected: Expect) -> Option<String> {
        match (parse(doc, kind), expected) {
            (Ok(_), Parses) => None,
            (Err(e), Refused(msg)) if e.to_string() == msg => None,
            (Err(e), Parses) => Some(format!("refused ({e}): {doc}")),
            (Ok(_), Refused(msg)) => Some(format!("accepted, expected {msg:?}: {doc}")),
            (Err(e), Refused(msg)) => Some(format!("refused with {:?}, expected {msg:?}: {doc}", e.to_string())),
        }
    }

    fn identity(statement: &str) -> (PolicyKind, String) {
        (PolicyKind::Identity, format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#))
    }

    fn trust(statement: &str) -> (PolicyKind, String) {
        (PolicyKind::Trust, format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#))
    }

    // Security finding: a misspelt or mis-cased element used to be ignored, so a statement
    // meant to be conditional (or limited by NotAction/NotResource/NotPrincipal) was silently
    // broader than written. IAM refuses unknown elements and the mutually exclusive pairs.
    #[test]
    fn unknown_elements_and_exclusive_pairs_are_refused() {
        let cond = r#"{"StringEquals":{"aws:username":"alice"}}"#;
        let rows: Vec<((PolicyKind, String), Expect)> = vec![
            // Element names are case-sensitive and must be known, in statements and at the top.
            (identity(&format!(r#"{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condtion":{cond}}}"#)), SYNTAX),
            (identity(&format!(r#"{{"Effect":"Allow","Action":"s3:*","Resource":"*","condition":{cond}}}"#)), SYNTAX),
            (trust(&format!(r#"{{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condtion":{cond}}}"#)), SYNTAX),
            (identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Id":"x"}"#), SYNTAX),
            (identity(r#"{"effect":"Allow","Action":"s3:*","Resource":"*"}"#), SYNTAX),
            (
                (
                    PolicyKind::Identity,
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}],"Extra":1}"#.into(),
                ),
                SYNTAX,
            ),
            (
                (PolicyKind::Trust, r#"{"version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#.into()),
                SYNTAX,
            ),
            // Mutually exclusive pairs: the second one used to be ignored.
            (identity(r#"{"Effect":"Allow","Action":"s3:GetObject","NotAction":"s3:DeleteObject","Resource":"*"}"#), SYNTAX),
            (identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::a/*","NotResource":"arn:aws:s3:::b/*"}"#), SYNTAX),
            (trust(r#"{"Effect":"Deny","Principal":"*","NotPrincipal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}"#), SYNTAX),
            (trust(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","NotAction":"sts:TagSession"}"#), SYNTAX),
            // A Condition must be an object of operators.
            (identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":"aws:SecureTransport"}"#), SYNTAX),
            (identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":[]}"#), SYNTAX),
            (trust(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":null}"#), SYNTAX),
            // A repeated top-level element stays refused as before (serde's duplicate-field check).
            (
                (PolicyKind::Identity, r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}],"Statement":[]}"#.into()),
                Refused("This policy contains invalid Json"),
            ),
            // Still valid: each element of a pair alone, several operators, Id and Sid.
            (identity(r#"{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}"#), Parses),
            (identity(r#"{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::secret/*"}"#), Parses),
            (trust(r#"{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}"#), Parses),
            (
                identity(
                    r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:username":"alice"},"Bool":{"aws:SecureTransport":"true"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
                ),
                Parses,
            ),
            (
                (
                    PolicyKind::Identity,
                    r#"{"Version":"2012-10-17","Id":"policy-1","Statement":[{"Sid":"ReadAll","Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#.into(),
                ),
                Parses,
            ),
            (trust(&format!(r#"{{"Sid":"Ext","Effect":"Allow","Principal":{{"AWS":"123456789012"}},"Action":"sts:AssumeRole","Condition":{cond}}}"#)), Parses),
        ];
        let failures: Vec<String> =
            rows.into_iter().filter_map(|((kind, doc), expected)| check((kind, &doc), expected)).collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
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
