//! What `policy::parse` refuses on write (AWS's MalformedPolicyDocument messages), policy sizes,
//! and trust-policy evaluation for sts:AssumeRole.

use corral_iam::condition::{BaseOperator, SetOperator};
use corral_iam::eval::{evaluate_trust, evaluate_trust_action, Decision, RequestContext, TrustCaller};
use corral_iam::policy::{self, parse, PolicyKind};

use Decision::{Allow, ExplicitDeny, ImplicitDeny};

#[track_caller]
fn refused(doc: &str, kind: PolicyKind, message: &str) {
    let err = parse(doc, kind).expect_err(doc);
    assert_eq!(err.to_string(), message, "{doc}");
}

#[track_caller]
fn accepted(doc: &str, kind: PolicyKind) -> policy::PolicyDocument {
    parse(doc, kind).unwrap_or_else(|e| panic!("refused ({e}): {doc}"))
}

fn identity(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

#[test]
fn condition_blocks_are_validated() {
    let with =
        |cond: &str| identity(&format!(r#"{{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condition":{cond}}}"#));
    refused(
        &with(r#"{"StringEqualz":{"aws:username":"a"}}"#),
        PolicyKind::Identity,
        "Invalid Condition type : StringEqualz",
    );
    refused(
        &with(r#"{"NullIfExists":{"aws:username":"true"}}"#),
        PolicyKind::Identity,
        "Invalid Condition type : NullIfExists",
    );
    refused(
        &with(r#"{"ForSomeValues:StringEquals":{"aws:TagKeys":"a"}}"#),
        PolicyKind::Identity,
        "Invalid Condition type : ForSomeValues:StringEquals",
    );
    refused(&with(r#"{"StringEquals":"aws:username"}"#), PolicyKind::Identity, "Syntax errors in policy.");
    refused(&with(r#"{"StringEquals":{"aws:username":{"a":"b"}}}"#), PolicyKind::Identity, "Syntax errors in policy.");
    refused(&with(r#"{"StringEquals":{"aws:username":[null]}}"#), PolicyKind::Identity, "Syntax errors in policy.");
    refused(&with(r#"["StringEquals"]"#), PolicyKind::Identity, "Syntax errors in policy.");
    refused(
        &with(r#"{"StringEquals":{"username":"a"}}"#),
        PolicyKind::Identity,
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
    );

    let doc = accepted(
        &with(
            r#"{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*"]},"NumericLessThan":{"test:n":10},"Bool":{"aws:SecureTransport":true},"Null":{"ssm:resourceTag/aws:ssmmessages:session-id":"false"}}"#,
        ),
        PolicyKind::Identity,
    );
    let conditions = &doc.statements[0].conditions;
    assert_eq!(conditions.len(), 4);
    let like = conditions.iter().find(|c| c.key == "aws:TagKeys").expect("tag keys test");
    assert_eq!(like.operator.set, Some(SetOperator::ForAllValues));
    assert_eq!(like.operator.base, BaseOperator::StringLike);
    assert!(like.operator.if_exists);
    let num = conditions.iter().find(|c| c.key == "test:n").expect("numeric test");
    assert_eq!(num.values, vec!["10".to_string()]);
    // Operator names are recognised without regard to case.
    accepted(&with(r#"{"stringequals":{"aws:username":"a"}}"#), PolicyKind::Identity);
}

#[test]
fn actions_are_validated() {
    let action = |a: &str| identity(&format!(r#"{{"Effect":"Allow","Action":{a},"Resource":"*"}}"#));
    let wildcard_vendor = "Action vendors (e.g., aws, ec2, etc.) must not contain wildcards.";
    let no_vendor = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
    refused(&action(r#""*:*""#), PolicyKind::Identity, wildcard_vendor);
    refused(&action(r#""s*:Get*""#), PolicyKind::Identity, wildcard_vendor);
    refused(&action(r#"["ssm:GetDocument","ss?:List*"]"#), PolicyKind::Identity, wildcard_vendor);
    refused(&action(r#""SendCommand""#), PolicyKind::Identity, no_vendor);
    refused(&action(r#""ssm*""#), PolicyKind::Identity, no_vendor);
    refused(&action(r#"":SendCommand""#), PolicyKind::Identity, no_vendor);
    refused(&action(r#""ssm:Send:Command""#), PolicyKind::Identity, "Actions/Condition can contain only one colon.");
    refused(
        &identity(r#"{"Effect":"Deny","NotAction":"*:Get*","Resource":"*"}"#),
        PolicyKind::Identity,
        wildcard_vendor,
    );
    refused(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"AssumeRole"}]}"#,
        PolicyKind::Trust,
        no_vendor,
    );
    accepted(&action(r#""*""#), PolicyKind::Identity);
    accepted(&action(r#"["ssm:*","ssm:Get*","ec2messages:?etMessages","iam:*AccessKey*"]"#), PolicyKind::Identity);
}

#[test]
fn sizes_do_not_count_whitespace() {
    assert_eq!(policy::policy_size("{ \"a\" :\n\t\"b c\" }"), 10);
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(doc).expect("json")).expect("json");
    assert_eq!(policy::policy_size(&pretty), policy::policy_size(doc));
    assert_eq!(policy::policy_size("é"), 1);
    assert_eq!(
        (
            policy::INLINE_USER_POLICY_QUOTA,
            policy::INLINE_ROLE_POLICY_QUOTA,
            policy::INLINE_GROUP_POLICY_QUOTA,
            policy::MANAGED_POLICY_QUOTA
        ),
        (2048, 10240, 5120, 6144)
    );
}

// === trust evaluation ===

const ACCT: &str = "123456789012";

fn user(name: &str) -> TrustCaller {
    TrustCaller { arn: format!("arn:aws:iam::{ACCT}:user/{name}"), account_id: ACCT.into(), role_arn_for_session: None }
}

fn session(role: &str, name: &str) -> TrustCaller {
    TrustCaller {
        arn: format!("arn:aws:sts::{ACCT}:assumed-role/{role}/{name}"),
        account_id: ACCT.into(),
        role_arn_for_session: Some(format!("arn:aws:iam::{ACCT}:role/{role}")),
    }
}

fn trust(statements: &str) -> policy::PolicyDocument {
    accepted(&format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#), PolicyKind::Trust)
}

#[track_caller]
fn check_trust(doc: &policy::PolicyDocument, caller: &TrustCaller, context: &[(&str, &str)], expected: Decision) {
    let mut ctx = RequestContext::new();
    for (k, v) in context {
        ctx.set(k, *v);
    }
    assert_eq!(evaluate_trust(doc, caller, &ctx), expected, "{caller:?} {context:?}");
}

fn allow_principal(principal: &str) -> policy::PolicyDocument {
    trust(&format!(r#"{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}"#))
}

// Rule ("Principal", AWS account principals): an account (root ARN or bare ID) admits every
// principal of the account that its own policies let; a user or role ARN admits that principal;
// a role ARN admits that role's sessions; "*" admits everyone.
#[test]
fn trust_principals() {
    check_trust(&allow_principal(r#"{"AWS":"arn:aws:iam::123456789012:user/alice"}"#), &user("alice"), &[], Allow);
    check_trust(&allow_principal(r#"{"AWS":"arn:aws:iam::123456789012:user/alice"}"#), &user("bob"), &[], ImplicitDeny);
    check_trust(&allow_principal(r#"{"AWS":"arn:aws:iam::123456789012:root"}"#), &user("bob"), &[], Allow);
    check_trust(&allow_principal(r#"{"AWS":"123456789012"}"#), &user("bob"), &[], Allow);
    check_trust(
        &allow_principal(r#"{"AWS":["arn:aws:iam::999999999999:root","123456789012"]}"#),
        &user("bob"),
        &[],
        Allow,
    );
    check_trust(&allow_principal(r#"{"AWS":"arn:aws:iam::999999999999:root"}"#), &user("bob"), &[], ImplicitDeny);
    check_trust(&allow_principal(r#"{"AWS":"999999999999"}"#), &user("bob"), &[], ImplicitDeny);
    check_trust(&allow_principal(r#""*""#), &user("bob"), &[], Allow);
    check_trust(&allow_principal(r#"{"AWS":"*"}"#), &user("bob"), &[], Allow);
    check_trust(
        &allow_principal(r#"{"AWS":"arn:aws:iam::123456789012:role/builder"}"#),
        &session("builder", "ci"),
        &[],
        Allow,
    );
    check_trust(
        &allow_principal(r#"{"AWS":"arn:aws:iam::123456789012:role/builder"}"#),
        &session("deployer", "ci"),
        &[],
        ImplicitDeny,
    );
    check_trust(
        &allow_principal(r#"{"AWS":"arn:aws:sts::123456789012:assumed-role/builder/ci"}"#),
        &session("builder", "ci"),
        &[],
        Allow,
    );
    check_trust(&allow_principal(r#"{"Service":"ssm.amazonaws.com"}"#), &user("alice"), &[], ImplicitDeny);
}

// Rule: the statement's Action must cover sts:AssumeRole; an explicit Deny wins; conditions are
// evaluated as in identity policies.
#[test]
fn trust_actions_denies_and_conditions() {
    let acct = r#"{"AWS":"arn:aws:iam::123456789012:root"}"#;
    let with_action = |a: &str| trust(&format!(r#"{{"Effect":"Allow","Principal":{acct},"Action":{a}}}"#));
    check_trust(&with_action(r#""sts:*""#), &user("alice"), &[], Allow);
    check_trust(&with_action(r#""STS:assumerole""#), &user("alice"), &[], Allow);
    check_trust(&with_action(r#""sts:GetCallerIdentity""#), &user("alice"), &[], ImplicitDeny);
    let denied = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{acct},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::123456789012:user/mallory"}},"Action":"sts:*"}}"#
    ));
    check_trust(&denied, &user("alice"), &[], Allow);
    check_trust(&denied, &user("mallory"), &[], ExplicitDeny);
    let external_id = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{acct},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"s3cr3t"}}}}}}"#
    ));
    check_trust(&external_id, &user("alice"), &[("sts:ExternalId", "s3cr3t")], Allow);
    check_trust(&external_id, &user("alice"), &[("sts:ExternalId", "guess")], ImplicitDeny);
    check_trust(&external_id, &user("alice"), &[], ImplicitDeny);
    let tagged = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{acct},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"ops"}},"Bool":{{"aws:MultiFactorAuthPresent":"true"}}}}}}"#
    ));
    check_trust(
        &tagged,
        &user("alice"),
        &[("aws:PrincipalTag/team", "ops"), ("aws:MultiFactorAuthPresent", "true")],
        Allow,
    );
    check_trust(&tagged, &user("alice"), &[("aws:PrincipalTag/team", "ops")], ImplicitDeny);
    // A NotPrincipal deny applies to everyone not named.
    let only_alice = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{acct},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::123456789012:user/alice"}},"Action":"sts:AssumeRole"}}"#
    ));
    check_trust(&only_alice, &user("alice"), &[], Allow);
    check_trust(&only_alice, &user("bob"), &[], ExplicitDeny);
    // Other actions a trust policy governs.
    let ctx = RequestContext::new();
    let assume_only = with_action(r#""sts:AssumeRole""#);
    assert_eq!(evaluate_trust_action(&assume_only, "sts:TagSession", &user("alice"), &ctx), ImplicitDeny);
    let both = with_action(r#"["sts:AssumeRole","sts:TagSession"]"#);
    assert_eq!(evaluate_trust_action(&both, "sts:TagSession", &user("alice"), &ctx), Allow);
}

#[test]
fn trusts_service_still_works() {
    let doc = allow_principal(r#"{"Service":"ssm.amazonaws.com"}"#);
    assert!(doc.trusts_service("ssm.amazonaws.com"));
    assert!(!allow_principal(r#"{"AWS":"123456789012"}"#).trusts_service("ssm.amazonaws.com"));
}
