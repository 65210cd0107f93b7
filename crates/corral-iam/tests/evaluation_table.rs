//! Identity-policy evaluation, case by case, against AWS's documented semantics (IAM User
//! Guide: "Policy evaluation logic", "IAM JSON policy elements: Action / NotAction / Resource /
//! NotResource / Condition operators", "Conditions with multiple context keys or values",
//! "Set operators for multivalued context keys", "IAM policy elements: Variables and tags").
//! Each group names the rule it checks.

use corral_iam::eval::{evaluate, AuthzRequest, Decision, RequestContext};
use corral_iam::policy::{parse, PolicyKind};

use Decision::{Allow, ExplicitDeny, ImplicitDeny};

const MI: &str = "arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0123456789abcdef0";
const MI_OTHER: &str = "arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0fedcba9876543210";
const DOC: &str = "arn:aws:ssm:us-east-1::document/AWS-RunShellScript";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

/// Evaluates `action` on `resource` under the given identity policies. Context values are
/// single-valued, except that `[a,b]` (brackets) sets a multi-valued key and `[]` an empty one.
#[track_caller]
fn check(policies_json: &[&str], action: &str, resource: &str, context: &[(&str, &str)], expected: Decision) {
    let docs: Vec<_> = policies_json
        .iter()
        .map(|p| parse(p, PolicyKind::Identity).unwrap_or_else(|e| panic!("policy refused ({e}): {p}")))
        .collect();
    let refs: Vec<_> = docs.iter().collect();
    let mut ctx = RequestContext::new();
    for (key, value) in context {
        match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some("") => ctx.set_multi(key, Vec::new()),
            Some(list) => ctx.set_multi(key, list.split(',').map(str::to_string).collect()),
            None => ctx.set(key, *value),
        }
    }
    let got = evaluate(&refs, &AuthzRequest { action, resource, context: &ctx });
    assert_eq!(got, expected, "{action} on {resource} with {context:?} under {policies_json:?}");
}

/// A 2012-10-17 policy with the given statements (a JSON list body).
fn pol(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// One Allow statement with a condition block.
fn allow_if(condition: &str) -> String {
    pol(&format!(r#"{{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{condition}}}"#))
}

const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn allow_action(action: &str) -> String {
    pol(&format!(r#"{{"Effect":"Allow","Action":{action},"Resource":"*"}}"#))
}

fn allow_resource(resource: &str) -> String {
    pol(&format!(r#"{{"Effect":"Allow","Action":"ssm:*","Resource":{resource}}}"#))
}

// Rule ("Policy evaluation logic"): requests start implicitly denied; an applicable explicit Deny
// in any policy overrides every Allow; otherwise an applicable Allow allows.
#[test]
fn precedence() {
    check(&[], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[ALLOW_ALL], "ssm:SendCommand", MI, &[], Allow);
    check(
        &[&pol(r#"{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"}"#)],
        "ssm:SendCommand",
        MI,
        &[],
        Allow,
    );
    check(
        &[&pol(
            r#"{"Effect":"Allow","Action":"ssm:*","Resource":"*"},{"Effect":"Deny","Action":"ssm:SendCommand","Resource":"*"}"#,
        )],
        "ssm:SendCommand",
        MI,
        &[],
        ExplicitDeny,
    );
    check(
        &[&pol(
            r#"{"Effect":"Deny","Action":"ssm:SendCommand","Resource":"*"},{"Effect":"Allow","Action":"ssm:*","Resource":"*"}"#,
        )],
        "ssm:SendCommand",
        MI,
        &[],
        ExplicitDeny,
    );
    check(
        &[ALLOW_ALL, &pol(r#"{"Effect":"Deny","Action":"ssm:*","Resource":"*"}"#)],
        "ssm:ListCommands",
        "*",
        &[],
        ExplicitDeny,
    );
    check(
        &[ALLOW_ALL, &pol(r#"{"Effect":"Deny","Action":"ssm:DeleteDocument","Resource":"*"}"#)],
        "ssm:SendCommand",
        MI,
        &[],
        Allow,
    );
    check(&[&allow_action(r#""ssm:ListCommands""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&pol("")], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&pol(r#"{"Effect":"Deny","Action":"ssm:*","Resource":"*"}"#)], "ssm:SendCommand", MI, &[], ExplicitDeny);
    // A Deny whose condition does not hold does not apply.
    check(
        &[
            ALLOW_ALL,
            &pol(
                r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
            ),
        ],
        "ssm:SendCommand",
        MI,
        &[("aws:SecureTransport", "true")],
        Allow,
    );
    // A Deny whose resource does not match does not apply.
    check(
        &[ALLOW_ALL, &pol(r#"{"Effect":"Deny","Action":"*","Resource":"arn:aws:ssm:*:*:document/*"}"#)],
        "ssm:SendCommand",
        MI,
        &[],
        Allow,
    );
}

// Rule ("Action"): action names are case-insensitive; `*` matches any run and `?` one character,
// anywhere in the action name; the service prefix must match.
#[test]
fn actions_and_wildcards() {
    check(&[&allow_action(r#""ssm:Describe*""#)], "ssm:DescribeInstanceInformation", "*", &[], Allow);
    check(&[&allow_action(r#""ssm:Describe*""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&allow_action(r#""SSM:describe*""#)], "ssm:DescribeActivations", "*", &[], Allow);
    check(&[&allow_action(r#""ssm:SendCommand""#)], "SSM:SENDCOMMAND", MI, &[], Allow);
    check(&[&allow_action(r#""*""#)], "iam:CreateUser", "*", &[], Allow);
    check(&[&allow_action(r#""ssm:*""#)], "ssmmessages:OpenDataChannel", "*", &[], ImplicitDeny);
    check(&[&allow_action(r#""ssmmessages:*""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&allow_action(r#""ssm:Get?erviceSetting""#)], "ssm:GetServiceSetting", "*", &[], Allow);
    check(&[&allow_action(r#""ssm:Get?erviceSetting""#)], "ssm:GetServicesSetting", "*", &[], ImplicitDeny);
    check(&[&allow_action(r#""ssm:*Command""#)], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_action(r#""ssm:*Command""#)], "ssm:ListCommands", "*", &[], ImplicitDeny);
    check(&[&allow_action(r#""ssm:*Command*""#)], "ssm:ListCommands", "*", &[], Allow);
    check(&[&allow_action(r#"["ec2:*","ssm:List*"]"#)], "ssm:ListDocuments", "*", &[], Allow);
    check(&[&allow_action(r#"["ec2:*","ssm:List*"]"#)], "ssm:GetDocument", DOC, &[], ImplicitDeny);
}

// Rule ("NotAction"): the statement covers every action except those listed (same matching
// rules as Action); with Deny it denies everything not listed.
#[test]
fn not_action() {
    let allow_not_iam = pol(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#);
    check(&[&allow_not_iam], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_not_iam], "iam:CreateUser", "*", &[], ImplicitDeny);
    check(&[&allow_not_iam], "IAM:createuser", "*", &[], ImplicitDeny);
    let deny_except_get = pol(r#"{"Effect":"Deny","NotAction":["ssm:Get*","ssm:List*"],"Resource":"*"}"#);
    check(&[ALLOW_ALL, &deny_except_get], "ssm:GetDocument", DOC, &[], Allow);
    check(&[ALLOW_ALL, &deny_except_get], "ssm:ListCommands", "*", &[], Allow);
    check(&[ALLOW_ALL, &deny_except_get], "ssm:SendCommand", MI, &[], ExplicitDeny);
    let scoped = pol(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:ssm:*:*:document/*"}"#);
    check(&[&scoped], "ssm:GetDocument", DOC, &[], Allow);
    check(&[&scoped], "ssm:SendCommand", MI, &[], ImplicitDeny);
}

// Rule ("Resource"): ARNs match case-sensitively; `*` and `?` work within segments; a `*` that
// ends a segment may expand across colons; `*` alone matches every resource (and is the only
// pattern for actions without a resource type, requested here as "*").
#[test]
fn resources_and_wildcards() {
    check(&[&allow_resource(&format!("\"{MI}\""))], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_resource(&format!("\"{MI}\""))], "ssm:SendCommand", MI_OTHER, &[], ImplicitDeny);
    check(
        &[&allow_resource(r#""arn:aws:ssm:*:123456789012:managed-instance/mi-*""#)],
        "ssm:SendCommand",
        MI,
        &[],
        Allow,
    );
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:managed-instance/*""#)], "ssm:SendCommand", MI, &[], Allow);
    check(
        &[&allow_resource(r#""arn:aws:ssm:*:999999999999:managed-instance/*""#)],
        "ssm:SendCommand",
        MI,
        &[],
        ImplicitDeny,
    );
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:managed-instance/MI-*""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&allow_resource(r#""arn:aws:ssm:*""#)], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:us-*-1:*:managed-instance/*""#)], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:u*1:managed-instance/*""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&allow_resource(r#""arn:aws:ssm:us-east-?:*:managed-instance/*""#)], "ssm:SendCommand", MI, &[], Allow);
    check(
        &[&allow_resource(r#""arn:aws:ssm:us-east-??:*:managed-instance/*""#)],
        "ssm:SendCommand",
        MI,
        &[],
        ImplicitDeny,
    );
    check(&[&allow_resource(r#""*""#)], "ssm:ListCommands", "*", &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:*""#)], "ssm:ListCommands", "*", &[], ImplicitDeny);
    check(&[&allow_resource(r#""arn:aws:ssm:*::document/AWS-*""#)], "ssm:GetDocument", DOC, &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:document/AWS-*""#)], "ssm:GetDocument", DOC, &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:document/aws-*""#)], "ssm:GetDocument", DOC, &[], ImplicitDeny);
    check(&[&allow_resource(&format!(r#"["arn:aws:ssm:*:*:document/*","{MI}"]"#))], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_resource(r#""arn:aws:ssm:*:*:document/*""#)], "ssm:SendCommand", MI, &[], ImplicitDeny);
}

// Rule ("NotResource"): the statement covers every resource except those listed.
#[test]
fn not_resource() {
    let allow_not_docs = pol(r#"{"Effect":"Allow","Action":"ssm:*","NotResource":"arn:aws:ssm:*:*:document/*"}"#);
    check(&[&allow_not_docs], "ssm:SendCommand", MI, &[], Allow);
    check(&[&allow_not_docs], "ssm:GetDocument", DOC, &[], ImplicitDeny);
    check(&[&allow_not_docs], "ssm:ListCommands", "*", &[], Allow);
    let deny_other = pol(
        r#"{"Effect":"Deny","Action":"ssm:SendCommand","NotResource":"arn:aws:ssm:*:*:managed-instance/mi-0123*"}"#,
    );
    check(&[ALLOW_ALL, &deny_other], "ssm:SendCommand", MI, &[], Allow);
    check(&[ALLOW_ALL, &deny_other], "ssm:SendCommand", MI_OTHER, &[], ExplicitDeny);
}

// Rule ("Condition operators", string): StringEquals is exact and case-sensitive,
// ...IgnoreCase folds case, StringLike globs with `*`/`?` (case-sensitive). Rule ("Conditions
// with multiple context keys or values"): values of one key OR, negated operators NOR, keys AND,
// operators AND. Condition key names are case-insensitive.
#[test]
fn string_operators_and_combination() {
    let team = |op: &str, v: &str| allow_if(&format!(r#"{{"{op}":{{"aws:PrincipalTag/team":{v}}}}}"#));
    check(&[&team("StringEquals", r#""ops""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "ops")], Allow);
    check(
        &[&team("StringEquals", r#""ops""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "Ops")],
        ImplicitDeny,
    );
    check(
        &[&team("StringEqualsIgnoreCase", r#""ops""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "OPS")],
        Allow,
    );
    check(&[&team("StringNotEquals", r#""ops""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev")], Allow);
    check(
        &[&team("StringNotEquals", r#""ops""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops")],
        ImplicitDeny,
    );
    check(
        &[&team("StringNotEqualsIgnoreCase", r#""ops""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "OPS")],
        ImplicitDeny,
    );
    check(&[&team("StringLike", r#""dev-*""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev-eu")], Allow);
    check(
        &[&team("StringLike", r#""dev-*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "prod")],
        ImplicitDeny,
    );
    check(&[&team("StringLike", r#""d?v""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev")], Allow);
    check(
        &[&team("StringLike", r#""Dev-*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "dev-eu")],
        ImplicitDeny,
    );
    check(&[&team("StringNotLike", r#""prod*""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev")], Allow);
    check(
        &[&team("StringNotLike", r#""prod*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "production")],
        ImplicitDeny,
    );
    // StringEquals has no wildcards: `*` is a literal character.
    check(
        &[&team("StringEquals", r#""dev*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "dev-eu")],
        ImplicitDeny,
    );
    check(&[&team("StringEquals", r#""dev*""#)], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev*")], Allow);
    // Several values for one key: OR.
    check(
        &[&team("StringEquals", r#"["ops","dev"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "dev")],
        Allow,
    );
    // A negated operator with several values: NOR (the value must match none).
    check(
        &[&team("StringNotEquals", r#"["ops","dev"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "dev")],
        ImplicitDeny,
    );
    check(
        &[&team("StringNotEquals", r#"["ops","dev"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "qa")],
        Allow,
    );
    check(
        &[&team("StringNotLike", r#"["ops*","dev*"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "dev-eu")],
        ImplicitDeny,
    );
    // Key names are case-insensitive, in the policy and in the request.
    check(
        &[&allow_if(r#"{"StringEquals":{"AWS:PRINCIPALTAG/TEAM":"ops"}}"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops")],
        Allow,
    );
    check(&[&team("StringEquals", r#""ops""#)], "ssm:SendCommand", MI, &[("Aws:principaltag/Team", "ops")], Allow);
    // Keys under one operator: AND.
    let two_keys = allow_if(r#"{"StringEquals":{"aws:PrincipalTag/team":"ops","aws:RequestedRegion":"eu-west-1"}}"#);
    check(
        &[&two_keys],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops"), ("aws:RequestedRegion", "eu-west-1")],
        Allow,
    );
    check(
        &[&two_keys],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops"), ("aws:RequestedRegion", "us-east-1")],
        ImplicitDeny,
    );
    // Operators: AND.
    let two_ops = allow_if(r#"{"StringEquals":{"aws:PrincipalTag/team":"ops"},"Bool":{"aws:SecureTransport":"true"}}"#);
    check(
        &[&two_ops],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops"), ("aws:SecureTransport", "true")],
        Allow,
    );
    check(
        &[&two_ops],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalTag/team", "ops"), ("aws:SecureTransport", "false")],
        ImplicitDeny,
    );
    // JSON numbers are compared as their text.
    check(&[&allow_if(r#"{"StringEquals":{"ssm:x":5}}"#)], "ssm:SendCommand", MI, &[("ssm:x", "5")], Allow);
}

// Rule ("Condition operators", important note): a key missing from the request makes the
// condition false, except negated operators (true), ...IfExists (true) and Null (tests just that).
#[test]
fn missing_keys_if_exists_and_null() {
    let team = |op: &str| allow_if(&format!(r#"{{"{op}":{{"aws:PrincipalTag/team":"ops"}}}}"#));
    check(&[&team("StringEquals")], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&team("StringNotEquals")], "ssm:SendCommand", MI, &[], Allow);
    check(&[&team("StringEqualsIfExists")], "ssm:SendCommand", MI, &[], Allow);
    check(&[&team("StringEqualsIfExists")], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "dev")], ImplicitDeny);
    check(&[&team("StringEqualsIfExists")], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "ops")], Allow);
    check(&[&allow_if(r#"{"NumericLessThanIfExists":{"test:count":"3"}}"#)], "ssm:SendCommand", MI, &[], Allow);
    check(
        &[&allow_if(r#"{"NumericLessThanIfExists":{"test:count":"3"}}"#)],
        "ssm:SendCommand",
        MI,
        &[("test:count", "7")],
        ImplicitDeny,
    );
    let null = |v: &str| allow_if(&format!(r#"{{"Null":{{"aws:PrincipalTag/team":"{v}"}}}}"#));
    check(&[&null("true")], "ssm:SendCommand", MI, &[], Allow);
    check(&[&null("true")], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "ops")], ImplicitDeny);
    check(&[&null("false")], "ssm:SendCommand", MI, &[("aws:PrincipalTag/team", "ops")], Allow);
    check(&[&null("false")], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[&null("TRUE")], "ssm:SendCommand", MI, &[], Allow);
    // A deny with ...IfExists applies when the key is missing.
    let deny_region = pol(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":"us-east-1"}}}"#,
    );
    check(&[ALLOW_ALL, &deny_region], "ssm:SendCommand", MI, &[], ExplicitDeny);
    check(&[ALLOW_ALL, &deny_region], "ssm:SendCommand", MI, &[("aws:RequestedRegion", "eu-west-1")], ExplicitDeny);
    check(&[ALLOW_ALL, &deny_region], "ssm:SendCommand", MI, &[("aws:RequestedRegion", "us-east-1")], Allow);
}

// Rule ("Condition operators", numeric): decimal numbers, compared as numbers; a value that is
// not a number matches nothing.
#[test]
fn numeric_operators() {
    let num = |op: &str, v: &str| allow_if(&format!(r#"{{"{op}":{{"test:count":{v}}}}}"#));
    check(&[&num("NumericEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10")], Allow);
    check(&[&num("NumericEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10.00")], Allow);
    check(&[&num("NumericEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "11")], ImplicitDeny);
    check(&[&num("NumericNotEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "11")], Allow);
    check(&[&num("NumericNotEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10")], ImplicitDeny);
    check(&[&num("NumericLessThan", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "9.5")], Allow);
    check(&[&num("NumericLessThan", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10")], ImplicitDeny);
    check(&[&num("NumericLessThanEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10")], Allow);
    check(&[&num("NumericGreaterThan", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "10.01")], Allow);
    check(&[&num("NumericGreaterThan", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "-11")], ImplicitDeny);
    check(&[&num("NumericGreaterThanEquals", r#""-5""#)], "ssm:SendCommand", MI, &[("test:count", "-5")], Allow);
    check(&[&num("NumericEquals", r#""10""#)], "ssm:SendCommand", MI, &[("test:count", "ten")], ImplicitDeny);
    check(&[&num("NumericLessThan", "100")], "ssm:SendCommand", MI, &[("test:count", "99")], Allow);
}

// Rule ("Condition operators", date): ISO 8601 dates and times or epoch (UNIX) seconds.
#[test]
fn date_operators() {
    let now = [("aws:CurrentTime", "2026-05-01T10:00:00Z")];
    let date = |op: &str, v: &str| allow_if(&format!(r#"{{"{op}":{{"aws:CurrentTime":"{v}"}}}}"#));
    check(&[&date("DateLessThan", "2030-01-01T00:00:00Z")], "ssm:SendCommand", MI, &now, Allow);
    check(&[&date("DateGreaterThan", "2030-01-01T00:00:00Z")], "ssm:SendCommand", MI, &now, ImplicitDeny);
    check(&[&date("DateLessThan", "1893456000")], "ssm:SendCommand", MI, &now, Allow);
    check(&[&date("DateGreaterThanEquals", "2026-05-01T12:00:00+02:00")], "ssm:SendCommand", MI, &now, Allow);
    check(&[&date("DateLessThanEquals", "2026-05-01T10:00:00Z")], "ssm:SendCommand", MI, &now, Allow);
    check(
        &[&date("DateEquals", "2026-05-01")],
        "ssm:SendCommand",
        MI,
        &[("aws:CurrentTime", "2026-05-01T00:00:00Z")],
        Allow,
    );
    check(&[&date("DateNotEquals", "2026-05-01T10:00:00.000Z")], "ssm:SendCommand", MI, &now, ImplicitDeny);
    check(
        &[&allow_if(r#"{"DateGreaterThan":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:EpochTime", "1777629600")],
        Allow,
    );
    check(
        &[&date("DateLessThan", "2030-01-01T00:00:00Z")],
        "ssm:SendCommand",
        MI,
        &[("aws:CurrentTime", "soon")],
        ImplicitDeny,
    );
}

// Rule ("Condition operators", Boolean and binary): Bool compares true/false (case-insensitive);
// BinaryEquals compares the base64 form byte for byte.
#[test]
fn bool_and_binary_operators() {
    let secure = allow_if(r#"{"Bool":{"aws:SecureTransport":"true"}}"#);
    check(&[&secure], "ssm:SendCommand", MI, &[("aws:SecureTransport", "true")], Allow);
    check(&[&secure], "ssm:SendCommand", MI, &[("aws:SecureTransport", "TRUE")], Allow);
    check(&[&secure], "ssm:SendCommand", MI, &[("aws:SecureTransport", "false")], ImplicitDeny);
    check(&[&secure], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(
        &[&allow_if(r#"{"Bool":{"aws:SecureTransport":true}}"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SecureTransport", "true")],
        Allow,
    );
    check(&[&allow_if(r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#)], "ssm:SendCommand", MI, &[], Allow);
    let deny_no_mfa = pol(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}"#,
    );
    check(&[ALLOW_ALL, &deny_no_mfa], "ssm:SendCommand", MI, &[("aws:MultiFactorAuthPresent", "false")], ExplicitDeny);
    let binary = allow_if(r#"{"BinaryEquals":{"test:blob":"QmluYXJ5VmFsdWU="}}"#);
    check(&[&binary], "ssm:SendCommand", MI, &[("test:blob", "QmluYXJ5VmFsdWU=")], Allow);
    check(&[&binary], "ssm:SendCommand", MI, &[("test:blob", "T3RoZXI=")], ImplicitDeny);
}

// Rule ("Condition operators", IP address): IPv4 and IPv6 CIDR ranges (RFC 4632), or single
// addresses; NotIpAddress matches addresses in none of the ranges.
#[test]
fn ip_operators() {
    let ip = |op: &str, v: &str| allow_if(&format!(r#"{{"{op}":{{"aws:SourceIp":{v}}}}}"#));
    check(
        &[&ip("IpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "203.0.113.25")],
        Allow,
    );
    check(
        &[&ip("IpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "198.51.100.1")],
        ImplicitDeny,
    );
    check(
        &[&ip("NotIpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "198.51.100.1")],
        Allow,
    );
    check(
        &[&ip("NotIpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "203.0.113.25")],
        ImplicitDeny,
    );
    check(
        &[&ip("IpAddress", r#""2001:db8::/32""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "2001:db8:abcd::1")],
        Allow,
    );
    check(
        &[&ip("IpAddress", r#""2001:db8::/32""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "2001:db9::1")],
        ImplicitDeny,
    );
    check(&[&ip("IpAddress", r#""192.0.2.7""#)], "ssm:SendCommand", MI, &[("aws:SourceIp", "192.0.2.7")], Allow);
    check(&[&ip("IpAddress", r#""192.0.2.7""#)], "ssm:SendCommand", MI, &[("aws:SourceIp", "192.0.2.8")], ImplicitDeny);
    check(
        &[&ip("IpAddress", r#"["203.0.113.0/24","2001:db8::/32"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "2001:db8::5")],
        Allow,
    );
    check(
        &[&ip("NotIpAddress", r#"["10.0.0.0/8","192.168.0.0/16"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "192.168.1.1")],
        ImplicitDeny,
    );
    check(
        &[&ip("NotIpAddress", r#"["10.0.0.0/8","192.168.0.0/16"]"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "8.8.8.8")],
        Allow,
    );
    check(&[&ip("IpAddress", r#""0.0.0.0/0""#)], "ssm:SendCommand", MI, &[("aws:SourceIp", "8.8.8.8")], Allow);
    check(
        &[&ip("IpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "::ffff:203.0.113.9")],
        Allow,
    );
    check(
        &[&ip("IpAddress", r#""203.0.113.0/24""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:SourceIp", "not-an-ip")],
        ImplicitDeny,
    );
    let deny_outside = pol(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
    );
    check(&[ALLOW_ALL, &deny_outside], "ssm:SendCommand", MI, &[("aws:SourceIp", "8.8.8.8")], ExplicitDeny);
    check(&[ALLOW_ALL, &deny_outside], "ssm:SendCommand", MI, &[("aws:SourceIp", "10.1.2.3")], Allow);
}

// Rule ("Condition operators", ARN): case-sensitive; each of the six colon-delimited parts is
// matched separately and may hold `*`/`?`; ArnEquals and ArnLike behave alike.
#[test]
fn arn_operators() {
    let arn = |op: &str, v: &str| allow_if(&format!(r#"{{"{op}":{{"aws:PrincipalArn":{v}}}}}"#));
    let role = [("aws:PrincipalArn", "arn:aws:iam::123456789012:role/admin-ops")];
    check(
        &[&arn("ArnLike", r#""arn:aws:iam::123456789012:user/*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalArn", ALICE)],
        Allow,
    );
    check(&[&arn("ArnLike", r#""arn:aws:iam::*:role/admin-*""#)], "ssm:SendCommand", MI, &role, Allow);
    check(&[&arn("ArnEquals", r#""arn:aws:iam::123456789012:role/admin-ops""#)], "ssm:SendCommand", MI, &role, Allow);
    check(&[&arn("ArnEquals", r#""arn:aws:iam::123456789012:role/admin-*""#)], "ssm:SendCommand", MI, &role, Allow);
    check(
        &[&arn("ArnLike", r#""arn:aws:iam::123456789012:role/Admin-*""#)],
        "ssm:SendCommand",
        MI,
        &role,
        ImplicitDeny,
    );
    check(&[&arn("ArnNotLike", r#""arn:aws:iam::*:role/admin-*""#)], "ssm:SendCommand", MI, &role, ImplicitDeny);
    check(&[&arn("ArnNotLike", r#""arn:aws:iam::*:user/*""#)], "ssm:SendCommand", MI, &role, Allow);
    check(
        &[&arn("ArnNotEquals", r#"["arn:aws:iam::*:user/*","arn:aws:iam::*:role/admin-ops"]"#)],
        "ssm:SendCommand",
        MI,
        &role,
        ImplicitDeny,
    );
    check(
        &[&arn("ArnLike", r#""arn:aws:iam::123456789012:*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalArn", ALICE)],
        Allow,
    );
    check(
        &[&arn("ArnLike", r#""arn:aws:iam::*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalArn", ALICE)],
        ImplicitDeny,
    );
    check(
        &[&arn("ArnLike", r#""arn:aws:iam::*:user/*""#)],
        "ssm:SendCommand",
        MI,
        &[("aws:PrincipalArn", "alice")],
        ImplicitDeny,
    );
    check(&[&arn("ArnNotLike", r#""arn:aws:iam::*:user/*""#)], "ssm:SendCommand", MI, &[], Allow);
}

// Rule ("Set operators for multivalued context keys"): ForAnyValue is true when some request
// value matches (false when the key is missing); ForAllValues when every request value matches
// (true when the key is missing or empty). A multi-valued key without a set operator is compared
// as one value, which equals no policy value.
#[test]
fn set_operators() {
    let any = allow_if(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#);
    let all = allow_if(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#);
    check(&[&any], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env,owner]")], Allow);
    check(&[&any], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[owner]")], ImplicitDeny);
    check(&[&any], "ssm:AddTagsToResource", MI, &[], ImplicitDeny);
    check(&[&all], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env,team]")], Allow);
    check(&[&all], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env,owner]")], ImplicitDeny);
    check(&[&all], "ssm:AddTagsToResource", MI, &[], Allow);
    check(&[&all], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[]")], Allow);
    check(
        &[&allow_if(r#"{"ForAllValues:StringLike":{"aws:TagKeys":"Created*"}}"#)],
        "ssm:AddTagsToResource",
        MI,
        &[("aws:TagKeys", "[CreatedBy,CreatedAt]")],
        Allow,
    );
    let deny_secret = pol(
        r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"secret"}}}"#,
    );
    check(&[ALLOW_ALL, &deny_secret], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[a,secret]")], ExplicitDeny);
    check(&[ALLOW_ALL, &deny_secret], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[a,b]")], Allow);
    let all_not = allow_if(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}"#);
    check(&[&all_not], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[a,b]")], Allow);
    check(&[&all_not], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[a,secret]")], ImplicitDeny);
    let any_not = allow_if(r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"env"}}"#);
    check(&[&any_not], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env]")], ImplicitDeny);
    check(&[&any_not], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env,x]")], Allow);
    check(
        &[&allow_if(r#"{"StringEquals":{"aws:TagKeys":"env"}}"#)],
        "ssm:AddTagsToResource",
        MI,
        &[("aws:TagKeys", "[env,team]")],
        ImplicitDeny,
    );
    check(&[&any], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "env")], Allow);
    // AWS's advice: pair ForAllValues with Null=false so a missing key does not allow.
    let all_present =
        allow_if(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]},"Null":{"aws:TagKeys":"false"}}"#);
    check(&[&all_present], "ssm:AddTagsToResource", MI, &[], ImplicitDeny);
    check(&[&all_present], "ssm:AddTagsToResource", MI, &[("aws:TagKeys", "[env]")], Allow);
}

// Rule ("Variables and tags"): in Version 2012-10-17, `${key}` in Resource and in string/ARN
// condition values is replaced by the request's value (key case-insensitive); a variable that
// cannot be resolved (missing, or multi-valued) makes that value match nothing; `${*}`, `${?}`,
// `${$}` stand for the literal characters; `${key, 'default'}` supplies a default; substituted
// text is literal (no wildcards).
#[test]
fn policy_variables() {
    let own_user = allow_resource(r#""arn:aws:iam::123456789012:user/${aws:username}""#);
    check(&[&own_user], "ssm:SendCommand", ALICE, &[("aws:username", "alice")], Allow);
    check(&[&own_user], "ssm:SendCommand", ALICE, &[("aws:username", "bob")], ImplicitDeny);
    check(&[&own_user], "ssm:SendCommand", ALICE, &[], ImplicitDeny);
    check(
        &[&allow_resource(r#""arn:aws:iam::123456789012:user/${AWS:UserName}""#)],
        "ssm:SendCommand",
        ALICE,
        &[("aws:username", "alice")],
        Allow,
    );
    let deny_own = pol(r#"{"Effect":"Deny","Action":"*","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}"#);
    check(&[ALLOW_ALL, &deny_own], "iam:DeleteUser", ALICE, &[], Allow);
    check(&[ALLOW_ALL, &deny_own], "iam:DeleteUser", ALICE, &[("aws:username", "alice")], ExplicitDeny);
    let team_docs = allow_resource(r#""arn:aws:ssm:*:*:document/${aws:PrincipalTag/team}-*""#);
    check(
        &[&team_docs],
        "ssm:GetDocument",
        "arn:aws:ssm:us-east-1:123456789012:document/ops-restart",
        &[("aws:PrincipalTag/team", "ops")],
        Allow,
    );
    check(
        &[&team_docs],
        "ssm:GetDocument",
        "arn:aws:ssm:us-east-1:123456789012:document/dev-restart",
        &[("aws:PrincipalTag/team", "ops")],
        ImplicitDeny,
    );
    // Substituted text is literal: a `*` tag value is not a wildcard.
    let exact_team = allow_resource(r#""arn:aws:ssm:*:*:document/${aws:PrincipalTag/team}""#);
    check(
        &[&exact_team],
        "ssm:GetDocument",
        "arn:aws:ssm:us-east-1:123456789012:document/ops",
        &[("aws:PrincipalTag/team", "*")],
        ImplicitDeny,
    );
    check(
        &[&exact_team],
        "ssm:GetDocument",
        "arn:aws:ssm:us-east-1:123456789012:document/ops",
        &[("aws:PrincipalTag/team", "[ops]")],
        ImplicitDeny,
    );
    let owner = allow_if(r#"{"StringEquals":{"ssm:resourceTag/owner":"${aws:username}"}}"#);
    check(&[&owner], "ssm:SendCommand", MI, &[("aws:username", "alice"), ("ssm:resourceTag/owner", "alice")], Allow);
    check(
        &[&owner],
        "ssm:SendCommand",
        MI,
        &[("aws:username", "alice"), ("ssm:resourceTag/owner", "bob")],
        ImplicitDeny,
    );
    check(&[&owner], "ssm:SendCommand", MI, &[("ssm:resourceTag/owner", "${aws:username}")], ImplicitDeny);
    check(
        &[&allow_if(r#"{"StringLike":{"ssm:resourceTag/owner":"${aws:username}-*"}}"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:username", "alice"), ("ssm:resourceTag/owner", "alice-bot")],
        Allow,
    );
    check(
        &[&allow_if(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:user/${aws:username}"}}"#)],
        "ssm:SendCommand",
        MI,
        &[("aws:username", "alice"), ("aws:SourceArn", ALICE)],
        Allow,
    );
    check(
        &[&allow_if(r#"{"StringEquals":{"ssm:resourceTag/owner":["${aws:username}","shared"]}}"#)],
        "ssm:SendCommand",
        MI,
        &[("ssm:resourceTag/owner", "shared")],
        Allow,
    );
    let star_escape = allow_resource(r#""arn:aws:s3:::bucket/${*}""#);
    check(&[&star_escape], "ssm:SendCommand", "arn:aws:s3:::bucket/*", &[], Allow);
    check(&[&star_escape], "ssm:SendCommand", "arn:aws:s3:::bucket/x", &[], ImplicitDeny);
    check(
        &[&allow_resource(r#""arn:aws:s3:::bucket/a${?}""#)],
        "ssm:SendCommand",
        "arn:aws:s3:::bucket/ab",
        &[],
        ImplicitDeny,
    );
    check(&[&allow_if(r#"{"StringEquals":{"test:k":"a${$}b"}}"#)], "ssm:SendCommand", MI, &[("test:k", "a$b")], Allow);
    let defaulted = allow_resource(r#""arn:aws:ssm:*:*:document/${aws:PrincipalTag/team, 'shared'}-*""#);
    check(&[&defaulted], "ssm:GetDocument", "arn:aws:ssm:us-east-1:123456789012:document/shared-x", &[], Allow);
    check(
        &[&defaulted],
        "ssm:GetDocument",
        "arn:aws:ssm:us-east-1:123456789012:document/ops-x",
        &[("aws:PrincipalTag/team", "ops")],
        Allow,
    );
}

// Rule ("Version"): policy variables exist only in 2012-10-17; in 2008-10-17 (and documents
// without Version) `${...}` is ordinary text.
#[test]
fn version_2008_has_no_variables() {
    let old = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}]}"#;
    let unversioned = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}]}"#;
    check(&[old], "iam:GetUser", ALICE, &[("aws:username", "alice")], ImplicitDeny);
    check(&[old], "iam:GetUser", "arn:aws:iam::123456789012:user/${aws:username}", &[("aws:username", "alice")], Allow);
    check(&[unversioned], "iam:GetUser", ALICE, &[("aws:username", "alice")], ImplicitDeny);
    let old_cond = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"test:k":"${aws:username}"}}}]}"#;
    check(&[old_cond], "iam:GetUser", ALICE, &[("aws:username", "alice"), ("test:k", "alice")], ImplicitDeny);
    check(&[old_cond], "iam:GetUser", ALICE, &[("test:k", "${aws:username}")], Allow);
}

// The api-surface.md §3.4 example: SendCommand on lab-tagged nodes and on AWS-RunShellScript;
// an explicit deny (NotAction) of everything but read actions and SendCommand.
#[test]
fn api_surface_example() {
    let example = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*:*:managed-instance/*",
  "Condition":{"StringEquals":{"ssm:resourceTag/env":"lab"}}},
 {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*::document/AWS-RunShellScript"},
 {"Effect":"Deny","NotAction":["ssm:Describe*","ssm:Get*","ssm:List*","ssm:SendCommand"],"Resource":"*"}]}"#;
    check(&[example], "ssm:SendCommand", MI, &[("ssm:resourceTag/env", "lab")], Allow);
    check(&[example], "ssm:SendCommand", MI, &[("ssm:ResourceTag/ENV", "lab")], Allow);
    check(&[example], "ssm:SendCommand", MI, &[("ssm:resourceTag/env", "prod")], ImplicitDeny);
    check(&[example], "ssm:SendCommand", MI, &[], ImplicitDeny);
    check(&[example], "ssm:SendCommand", DOC, &[], Allow);
    check(&[example], "ssm:SendCommand", "arn:aws:ssm:us-east-1::document/AWS-RunPowerShellScript", &[], ImplicitDeny);
    check(&[example], "ssm:DescribeInstanceInformation", "*", &[], ImplicitDeny);
    check(&[example], "ssm:DeleteActivation", "*", &[], ExplicitDeny);
    check(&[example], "iam:CreateUser", "*", &[], ExplicitDeny);
    check(&[example, ALLOW_ALL], "ssm:DescribeInstanceInformation", "*", &[], Allow);
    check(&[example, ALLOW_ALL], "ssm:DeleteActivation", "*", &[], ExplicitDeny);
}
