//! Regression tests for the security review (issue 18): each test reproduces one finding
//! against the real binary, with the AWS SDK for Rust or raw signed requests, and checks that
//! it is closed and that nothing changed.

mod common;

use std::time::Duration;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use common::*;

const TIER: &str = "/ssm/managed-instance/activation-tier";
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// An IAM Query call signed with a user's key.
async fn iam_as(server: &TestServer, key: &(String, String), form: &str) -> RawResponse {
    RawRequest::query(server, &format!("{form}&Version=2010-05-08"))
        .sign(&key.0, &key.1, None, "iam", time::OffsetDateTime::now_utc())
        .send(server)
        .await
}

fn sts_as(server: &TestServer, key: &(String, String)) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&server.sdk_config_with(&key.0, &key.1, None))
}

/// A trust policy that lets exactly `principal_arn` assume the role.
fn trusting(principal_arn: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal_arn}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

async fn create_role(server: &TestServer, name: &str, path: &str, trust: &str) {
    let r = server
        .iam(&format!(
            "Action=CreateRole&RoleName={name}&Path={}&AssumeRolePolicyDocument={}",
            form_encode(path),
            form_encode(trust)
        ))
        .await;
    assert_eq!(r.status, 200, "CreateRole {name}: {}", r.text);
}

async fn trust_policy_of(server: &TestServer, name: &str) -> String {
    let r = server.iam(&format!("Action=GetRole&RoleName={name}")).await;
    assert_eq!(r.status, 200, "GetRole: {}", r.text);
    let start = r.text.find("<AssumeRolePolicyDocument>").expect("document") + "<AssumeRolePolicyDocument>".len();
    let end = r.text.find("</AssumeRolePolicyDocument>").expect("document");
    r.text[start..end].to_string()
}

fn allow(actions: &str, resource: &str) -> String {
    format!(r#"{{"Effect":"Allow","Action":{actions},"Resource":"{resource}"}}"#)
}

fn deny(actions: &str, resource: &str) -> String {
    format!(r#"{{"Effect":"Deny","Action":{actions},"Resource":"{resource}"}}"#)
}

fn policy(statements: &[String]) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

// === High 1: iam:PassRole on CreateActivation and UpdateManagedInstanceRole ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handing_a_role_to_instances_needs_pass_role() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = server.account_id.clone();
    // A role any managed instance could act with, holding AdministratorAccess.
    server.create_instance_role("AdminRole").await;
    let r = server
        .iam(&format!("Action=AttachRolePolicy&RoleName=AdminRole&PolicyArn={}", form_encode(ADMIN_POLICY)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    server.create_instance_role("FleetRole").await;
    let fleet_arn = format!("arn:aws:iam::{acct}:role/FleetRole");
    let pass_fleet = format!(
        r#"{{"Effect":"Allow","Action":"iam:PassRole","Resource":"{fleet_arn}","Condition":{{"StringEquals":{{"iam:PassedToService":"ssm.amazonaws.com"}}}}}}"#
    );
    let mallory = user(
        &server,
        "mallory",
        &[],
        Some(&policy(&[
            allow(r#"["ssm:CreateActivation","ssm:UpdateManagedInstanceRole","ssm:DescribeActivations"]"#, "*"),
            pass_fleet,
        ])),
    )
    .await;
    let ssm = ssm_as(&server, &mallory);

    // The admin role cannot be handed over, by name or by ARN.
    for role in ["AdminRole".to_string(), format!("arn:aws:iam::{acct}:role/AdminRole")] {
        let err = ssm.create_activation().iam_role(&role).send().await.expect_err("refused");
        assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
        let message = err.message().unwrap_or_default();
        assert!(
            message.contains("iam:PassRole") && message.contains(&format!("arn:aws:iam::{acct}:role/AdminRole")),
            "{message}"
        );
    }
    let activations = server.ssm().describe_activations().send().await.expect("describe");
    assert!(activations.activation_list().is_empty(), "no activation was created");

    // The role she may pass works (the positive control).
    let created = ssm.create_activation().iam_role("FleetRole").send().await.expect("FleetRole may be passed");
    let (id, code) = (created.activation_id().expect("id"), created.activation_code().expect("code"));
    let machine = MachineIdentity::generate();
    let inst = register_and_get_token(&server, id, code, &machine).await;

    // Moving the instance to the admin role is refused too, and changes nothing.
    let err = ssm
        .update_managed_instance_role()
        .instance_id(&inst.instance_id)
        .iam_role("AdminRole")
        .send()
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    assert!(err.message().unwrap_or_default().contains("iam:PassRole"));
    let info = server.ssm().describe_instance_information().send().await.expect("describe");
    let listed = info.instance_information_list().first().expect("the instance");
    assert_eq!(listed.iam_role(), Some("FleetRole"));

    // Passing to another service does not count.
    let other_service = user(
        &server,
        "trent",
        &[],
        Some(&policy(&[
            allow(r#""ssm:CreateActivation""#, "*"),
            r#"{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}"#
                .to_string(),
        ])),
    )
    .await;
    let err = ssm_as(&server, &other_service).create_activation().iam_role("FleetRole").send().await.expect_err("no");
    assert_eq!(err.code(), Some("AccessDeniedException"));
}

// === High 2: IAM authorises on the stored entity (path, case) ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_and_sts_authorise_on_the_stored_entity() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = server.account_id.clone();
    let alice_arn = format!("arn:aws:iam::{acct}:user/alice");
    let bob_arn = format!("arn:aws:iam::{acct}:user/bob");

    // (a) A grant on role/dev/* does not reach ProdRole (at /) through a made-up path.
    create_role(&server, "ProdRole", "/", &trusting(&alice_arn)).await;
    create_role(&server, "DevRole", "/dev/", &trusting(&alice_arn)).await;
    let alice = user(
        &server,
        "alice",
        &[],
        Some(&policy(&[allow(r#""sts:AssumeRole""#, &format!("arn:aws:iam::{acct}:role/dev/*"))])),
    )
    .await;
    let sts = sts_as(&server, &alice);
    let err = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{acct}:role/dev/ProdRole"))
        .role_session_name("sess")
        .send()
        .await
        .expect_err("no such role at that path");
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
    let ok = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{acct}:role/dev/DevRole"))
        .role_session_name("sess")
        .send()
        .await
        .expect("the role that is at /dev/");
    assert!(ok.assumed_role_user().expect("user").arn().ends_with(":assumed-role/DevRole/sess"));

    // (b) A deny on role/ProdRole holds whatever case the request spells the name in.
    let r = server
        .iam(&format!(
            "Action=UpdateAssumeRolePolicy&RoleName=ProdRole&PolicyDocument={}",
            form_encode(&trusting(&bob_arn))
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let prod_arn = format!("arn:aws:iam::{acct}:role/ProdRole");
    let bob = user(
        &server,
        "bob",
        &[],
        Some(&policy(&[allow(r#"["iam:*","sts:AssumeRole"]"#, "*"), deny(r#"["iam:*","sts:AssumeRole"]"#, &prod_arn)])),
    )
    .await;
    let before = trust_policy_of(&server, "ProdRole").await;
    for name in ["PRODROLE", "prodrole", "ProdRole"] {
        let r = iam_as(
            &server,
            &bob,
            &format!(
                "Action=UpdateAssumeRolePolicy&RoleName={name}&PolicyDocument={}",
                form_encode(&trusting(&bob_arn))
            ),
        )
        .await;
        assert_eq!((r.status, r.error_code().as_deref()), (403, Some("AccessDenied")), "{name}: {}", r.text);
        assert!(r.text.contains(&prod_arn), "authorised on the stored ARN: {}", r.text);
        let r = iam_as(
            &server,
            &bob,
            &format!("Action=AttachRolePolicy&RoleName={name}&PolicyArn={}", form_encode(ADMIN_POLICY)),
        )
        .await;
        assert_eq!(r.status, 403, "{name}: {}", r.text);
    }
    assert_eq!(trust_policy_of(&server, "ProdRole").await, before, "the trust policy is unchanged");
    let bob_sts = sts_as(&server, &bob);
    for arn in [format!("arn:aws:iam::{acct}:role/prodrole"), prod_arn.clone()] {
        let err = bob_sts.assume_role().role_arn(&arn).role_session_name("sess").send().await.expect_err("denied");
        assert_eq!(err.code(), Some("AccessDenied"), "{arn}: {err:?}");
    }

    // (c) A deny on role/protected/* covers a role at that path named without its path.
    create_role(&server, "Crown", "/protected/", &trusting(&alice_arn)).await;
    let carol = user(
        &server,
        "carol",
        &[],
        Some(&policy(&[
            allow(r#""iam:*""#, "*"),
            deny(r#""iam:*""#, &format!("arn:aws:iam::{acct}:role/protected/*")),
        ])),
    )
    .await;
    let before = trust_policy_of(&server, "Crown").await;
    let r = iam_as(
        &server,
        &carol,
        &format!("Action=UpdateAssumeRolePolicy&RoleName=Crown&PolicyDocument={}", form_encode(&trusting(&bob_arn))),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_deref()), (403, Some("AccessDenied")), "{}", r.text);
    assert!(r.text.contains("role/protected/Crown"), "{}", r.text);
    let r = iam_as(&server, &carol, "Action=DeleteRole&RoleName=Crown").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(trust_policy_of(&server, "Crown").await, before);
    // Her grant still works where no deny applies.
    let r = iam_as(&server, &carol, "Action=GetRole&RoleName=DevRole").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

// === Medium 7: no partition trick on service settings ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_settings_are_authorised_on_their_own_arn() {
    let (_dir, server) = TestServer::start_fresh();
    let acct = server.account_id.clone();
    let eve = user(
        &server,
        "eve",
        &["arn:aws:iam::aws:policy/AmazonSSMFullAccess"],
        Some(&policy(&[deny(r#""ssm:*""#, "arn:aws:ssm:*:*:servicesetting/*")])),
    )
    .await;
    let ssm = ssm_as(&server, &eve);
    for setting in [
        format!("arn:x:ssm:us-east-1:{acct}:servicesetting{TIER}"),
        format!("arn:aws-cn:ssm:us-east-1:{acct}:servicesetting{TIER}"),
        format!("arn:aws:ssm:us-east-1:{acct}:servicesetting{TIER}"),
        TIER.to_string(),
    ] {
        let err = ssm.update_service_setting().setting_id(&setting).setting_value("advanced").send().await;
        let err = err.expect_err("refused");
        assert!(
            matches!(err.code(), Some("AccessDeniedException") | Some("ServiceSettingNotFound")),
            "{setting}: {err:?}"
        );
    }
    let got = server.ssm().get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("standard"));
    // The admin cannot reach the setting through another partition either.
    let err = server
        .ssm()
        .update_service_setting()
        .setting_id(format!("arn:x:ssm:us-east-1:{acct}:servicesetting{TIER}"))
        .setting_value("advanced")
        .send()
        .await
        .expect_err("not a setting");
    assert_eq!(err.code(), Some("ServiceSettingNotFound"), "{err:?}");
}
