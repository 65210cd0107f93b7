//! `eval::evaluate` for a user with 10 policies of 20 statements each: a realistic mix of exact
//! and wildcard actions, ARN patterns, a policy variable, a few conditions and a few denies.
//!
//! Run: `cargo bench -p corral-iam --bench evaluate -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use corral_iam::eval::{evaluate, AuthzRequest, Decision, RequestContext};
use corral_iam::policy::{parse, PolicyDocument, PolicyKind};
use criterion::{criterion_group, criterion_main, Criterion};

const SERVICES: &[&str] = &["ec2", "s3", "logs", "cloudwatch", "sns", "sqs", "kms", "dynamodb", "lambda", "ecr"];

/// Statement `j` of policy `i`.
fn statement(i: usize, j: usize) -> String {
    let svc = SERVICES[(i + j) % SERVICES.len()];
    match j {
        // A deny most requests do not hit.
        0 => format!(r#"{{"Effect":"Deny","Action":["{svc}:Delete*","iam:*AccessKey*"],"Resource":"*"}}"#),
        // Tag-scoped SendCommand, as in the api-surface example.
        1 => format!(
            r#"{{"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*:*:managed-instance/mi-{i:02}*","Condition":{{"StringEquals":{{"ssm:resourceTag/env":"lab-{i}"}}}}}}"#
        ),
        // Network-scoped access.
        2 => format!(
            r#"{{"Effect":"Allow","Action":"{svc}:*","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":["10.{i}.0.0/16","2001:db8:{i}::/48"]}}}}}}"#
        ),
        // The user's own objects, through a policy variable.
        3 => format!(
            r#"{{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-{i}/home/${{aws:username}}/*"}}"#
        ),
        // Read-only families on a service.
        4..=9 => format!(
            r#"{{"Effect":"Allow","Action":["{svc}:Describe*","{svc}:Get*","{svc}:List*"],"Resource":"arn:aws:{svc}:us-east-1:123456789012:thing-{j}/*"}}"#
        ),
        // Specific actions on specific resources.
        10..=17 => format!(
            r#"{{"Effect":"Allow","Action":["{svc}:Create{j}Thing","{svc}:Update{j}Thing","{svc}:Tag*"],"Resource":["arn:aws:{svc}:*:123456789012:thing/{i}-{j}","arn:aws:{svc}:*:123456789012:other/{i}-{j}-*"]}}"#
        ),
        // A NotResource allow.
        18 => format!(r#"{{"Effect":"Allow","Action":"{svc}:Put*","NotResource":"arn:aws:{svc}:*:*:protected/*"}}"#),
        // A time-boxed allow.
        _ => format!(
            r#"{{"Effect":"Allow","Action":"{svc}:Invoke*","Resource":"*","Condition":{{"DateLessThan":{{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}}}"#
        ),
    }
}

fn policies() -> Vec<PolicyDocument> {
    (0..10)
        .map(|i| {
            let mut statements: Vec<String> = (0..20).map(|j| statement(i, j)).collect();
            if i == 9 {
                // The explicit deny of the third case sits in the very last statement.
                statements[19] = r#"{"Effect":"Deny","Action":"ssm:DeleteActivation","Resource":"*"}"#.to_string();
            }
            let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","));
            parse(&doc, PolicyKind::Identity).expect("benchmark policies are valid")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let docs = policies();
    let refs: Vec<&PolicyDocument> = docs.iter().collect();
    let mut ctx = RequestContext::new();
    ctx.set("aws:username", "alice");
    ctx.set("aws:userid", "AIDAEXAMPLEEXAMPLE01");
    ctx.set("aws:SourceIp", "192.0.2.10");
    ctx.set("aws:CurrentTime", "2026-05-01T10:00:00Z");
    ctx.set("aws:PrincipalTag/team", "ops");
    ctx.set("ssm:resourceTag/env", "lab-7");

    let cases = [
        // Allowed by policy 7's tag-scoped statement; every deny is still checked.
        (
            "allow",
            "ssm:SendCommand",
            "arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-07abcdef0123456789",
            Decision::Allow,
        ),
        // Nothing matches: every statement is tried.
        (
            "implicit_deny",
            "ssm:UpdateServiceSetting",
            "arn:aws:ssm:us-east-1:123456789012:servicesetting/x",
            Decision::ImplicitDeny,
        ),
        // Denied by the last statement of the last policy.
        ("explicit_deny", "ssm:DeleteActivation", "*", Decision::ExplicitDeny),
    ];
    let mut group = c.benchmark_group("evaluate_10x20");
    for (name, action, resource, expected) in cases {
        let request = AuthzRequest { action, resource, context: &ctx };
        assert_eq!(evaluate(&refs, &request), expected, "{name}");
        group.bench_function(name, |b| b.iter(|| evaluate(black_box(&refs), black_box(&request))));
    }
    group.finish();

    c.bench_function("parse_policy_20_statements", |b| {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            (0..20).map(|j| statement(3, j)).collect::<Vec<_>>().join(",")
        );
        b.iter(|| parse(black_box(&doc), PolicyKind::Identity))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
