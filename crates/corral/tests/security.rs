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

// === High 3: anonymous callers cannot fill the disk ===

fn data_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_registrations_cannot_fill_the_disk() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("FleetRole").await;
    let (id, code) = server.create_activation("FleetRole", 5, None, &[]).await;
    let machine = MachineIdentity::generate();
    let registration = |junk: usize, code: &str| {
        serde_json::json!({
            "ActivationCode": code, "ActivationId": id, "PublicKey": machine.public_key,
            "PublicKeyType": "Rsa", "Fingerprint": machine.fingerprint, "Junk": "x".repeat(junk),
        })
        .to_string()
    };

    // A body over the small anonymous limit is refused before anything is recorded.
    let before = data_size(&server.data_dir);
    for _ in 0..20 {
        let r = RawRequest::ssm(&server, "RegisterManagedInstance", &registration(2_000_000, "wrong-code-wrong-code"))
            .send(&server)
            .await;
        assert_eq!((r.status, r.error_code().as_deref()), (413, Some("RequestEntityTooLargeException")), "{}", r.text);
    }

    // Below it, only the modelled members are recorded: the junk never reaches the trail.
    let r = RawRequest::ssm(&server, "RegisterManagedInstance", &registration(8_000, &code)).send(&server).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let trail = trail_lookup(&server, "EventName", "RegisterManagedInstance").await;
    let record = trail.first().expect("the registration is recorded");
    let params = record["requestParameters"].as_object().expect("parameters");
    assert!(!params.contains_key("junk"), "unmodelled members are not stored: {:?}", params.keys());
    assert_eq!(params["activationId"], id.as_str());
    assert_eq!(params["activationCode"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    assert!(record.to_string().len() < 4096, "the record is small");

    // Failed registrations from one address are throttled after a few dozen.
    let mut throttled = 0;
    for _ in 0..60 {
        let r = RawRequest::ssm(&server, "RegisterManagedInstance", &registration(8_000, "wrong-code-wrong-code"))
            .send(&server)
            .await;
        match r.error_code().as_deref() {
            Some("InvalidActivation") => {}
            Some("ThrottlingException") => throttled += 1,
            other => panic!("unexpected {other:?}: {}", r.text),
        }
    }
    assert!(throttled >= 30, "throttled {throttled} of 60");
    let failures = trail_lookup(&server, "EventName", "RegisterManagedInstance").await;
    assert!(failures.len() <= 1 + 30, "throttled attempts are not recorded: {} records", failures.len());
    // 80 requests of up to 2 MB each left the data dir all but unchanged.
    let grown = data_size(&server.data_dir).saturating_sub(before);
    assert!(grown < 2_000_000, "the data dir grew by {grown} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmodelled_members_of_signed_calls_are_not_recorded() {
    let (_dir, server) = TestServer::start_fresh();
    let (k, s) = server.admin_credentials();
    let body = serde_json::json!({"SettingId": TIER, "Padding": "p".repeat(500_000)}).to_string();
    let r = RawRequest::ssm(&server, "GetServiceSetting", &body)
        .sign(&k, &s, None, "ssm", time::OffsetDateTime::now_utc())
        .send(&server)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let trail = trail_lookup(&server, "EventName", "GetServiceSetting").await;
    let record = trail.first().expect("recorded");
    assert_eq!(record["requestParameters"], serde_json::json!({"settingId": TIER}));
}

// === Medium 5: slow and idle connections are bounded ===

/// Whether the server closes the connection (EOF or reset) within `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A response (the 408 hyper may send) is fine; keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_capped() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(
        dir.path(),
        StartOptions {
            args: vec!["--header-timeout-secs".into(), "2".into(), "--max-connections".into(), "20".into()],
            ..Default::default()
        },
    )
    .expect("server");

    // Half-sent requests (slowloris) are closed once the header timeout passes.
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut s = tls_connect(&server).await;
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSSM.GetServiceSetting\r\n").await.expect("w");
        slow.push(s);
    }
    for s in slow.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(15)).await, "a half-sent request was left open");
    }

    // A kept-alive connection left idle after a request is closed too.
    let mut idle = tls_connect(&server).await;
    idle.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await.expect("w");
    assert!(closed_within(&mut idle, Duration::from_secs(15)).await, "an idle connection was left open");

    // At the cap, further connections are refused at once; the server keeps serving once
    // connections go away.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tokio::net::TcpStream::connect(&server.host).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = tokio::net::TcpStream::connect(&server.host).await.expect("the kernel accepts");
    assert!(closed_within(&mut over, Duration::from_secs(5)).await, "a connection over the cap was kept");
    drop(held);
    let ok =
        eventually(20, || async { server.ssm().get_service_setting().setting_id(TIER).send().await.is_ok() }).await;
    assert!(ok, "the server serves again once connections close");
}

// === Medium 4: allowedPattern cannot be used to burn CPU ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_patterns_and_values_are_bounded() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    let doc = |pattern: &str| {
        serde_json::json!({
            "schemaVersion": "2.2", "description": "d",
            "parameters": {"p": {"type": "StringList", "allowedPattern": pattern}},
            "mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": "{{ p }}"}}],
        })
        .to_string()
    };
    let err = ssm
        .create_document()
        .name("Heavy")
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .content(doc(r"\w{1,200}"))
        .send()
        .await
        .expect_err("too complex");
    assert_eq!(err.code(), Some("InvalidDocumentContent"), "{err:?}");
    ssm.create_document()
        .name("Light")
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .content(doc("[a-z]{1,20}"))
        .send()
        .await
        .expect("a simple pattern");

    server.create_instance_role("FleetRole").await;
    let (id, code) = server.create_activation("FleetRole", 1, None, &[]).await;
    let inst = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    let send = |n: usize| {
        ssm.send_command()
            .document_name("Light")
            .instance_ids(&inst.instance_id)
            .parameters("p", vec!["abc".to_string(); n])
            .send()
    };
    let err = send(1001).await.expect_err("too many values");
    assert_eq!(err.code(), Some("InvalidParameters"), "{err:?}");
    let ok = send(1000).await.expect("at the cap");
    assert!(ok.command().and_then(|c| c.command_id()).is_some());
    let listed = ssm.list_commands().send().await.expect("list");
    assert_eq!(listed.commands().len(), 1, "only the accepted command exists");
}

// === Medium 6: a superseded instance key is retired ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_retired() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("FleetRole").await;
    let (id, code) = server.create_activation("FleetRole", 1, None, &[]).await;
    let old = MachineIdentity::generate();
    let inst = register_and_get_token(&server, &id, &code, &old).await;
    let new_key = corral_wire::keys::generate_rsa_2048().expect("key");
    let new_public = corral_wire::keys::public_key_to_spki_base64(&new_key.to_public_key());
    let other_key = corral_wire::keys::generate_rsa_2048().expect("key");
    let other_public = corral_wire::keys::public_key_to_spki_base64(&other_key.to_public_key());
    let now = time::OffsetDateTime::now_utc;
    let rotate = |signer: &rsa::PrivateKey, to: &str| {
        let body = serde_json::json!({"NewPublicKey": to, "NewPublicKeyType": "Rsa"}).to_string();
        let signer = signer.clone();
        let instance_id = inst.instance_id.clone();
        let server = &server;
        async move { rsa_call(server, "UpdateManagedInstancePublicKey", &body, &instance_id, &signer, now()).await }
    };
    let token = |signer: &rsa::PrivateKey| {
        let body = serde_json::json!({"Fingerprint": old.fingerprint}).to_string();
        let signer = signer.clone();
        let instance_id = inst.instance_id.clone();
        let server = &server;
        async move { rsa_call(server, "RequestManagedInstanceRoleToken", &body, &instance_id, &signer, now()).await }
    };

    let r = rotate(&old.key, &new_public).await;
    assert_eq!(r.status, 200, "rotation: {}", r.text);
    // The superseded key may never rotate again (it could lock the real agent out).
    let r = rotate(&old.key, &other_public).await;
    assert_eq!((r.status, r.error_code().as_deref()), (400, Some("InvalidSignatureException")), "{}", r.text);
    // Within the grace window it may still get a role token (the agent's recovery probe)...
    let r = token(&old.key).await;
    assert_eq!(r.status, 200, "grace: {}", r.text);
    // ...until the new key is used; from then on the old key is refused for everything.
    let r = token(&new_key).await;
    assert_eq!(r.status, 200, "new key: {}", r.text);
    for r in [token(&old.key).await, rotate(&old.key, &other_public).await] {
        assert_eq!((r.status, r.error_code().as_deref()), (400, Some("InvalidSignatureException")), "{}", r.text);
    }
    let r = token(&new_key).await;
    assert_eq!(r.status, 200, "the new key keeps working: {}", r.text);
}

// === Low 8: the data dir and database are private ===

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("dir");
    let data = parent.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = TestServer::start(&data, StartOptions::default()).expect("server");
    server.create_instance_role("R").await; // a write, so the WAL exists
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data dir");
    for name in ["corral.db", "corral.db-wal", "corral.db-shm", "secret.key", "aws-credentials"] {
        let path = data.join(name);
        assert!(path.exists(), "{name} exists");
        assert_eq!(mode(&path), 0o600, "{name}");
    }
}

// === Low 9: credentials never reach the log ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_mismatch_logs_hide_session_tokens() {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(
        dir.path(),
        StartOptions { env: vec![("CORRAL_LOG".into(), "debug".into())], ..Default::default() },
    )
    .expect("server");
    let creds = server.sts().get_session_token().send().await.expect("session");
    let creds = creds.credentials().expect("credentials");
    let r = RawRequest::ssm(&server, "GetServiceSetting", &serde_json::json!({"SettingId": TIER}).to_string())
        .sign(
            creds.access_key_id(),
            "not-the-secret",
            Some(creds.session_token()),
            "ssm",
            time::OffsetDateTime::now_utc(),
        )
        .send(&server)
        .await;
    assert_eq!(r.error_code().as_deref(), Some("InvalidSignatureException"), "{}", r.text);
    let log = server.log();
    assert!(log.contains("signature mismatch"), "the mismatch is logged at debug level");
    assert!(!log.contains(creds.session_token()), "the session token leaked into the log");
}

// === Also: the headers that pick the operation must be signed ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_target_or_content_type_is_refused() {
    let (_dir, server) = TestServer::start_fresh();
    let (k, s) = server.admin_credentials();
    let body = serde_json::json!({"SettingId": TIER, "SettingValue": "advanced"}).to_string();
    for header in ["x-amz-target", "content-type"] {
        let mut req = RawRequest::ssm(&server, "UpdateServiceSetting", &body);
        let value = req.headers.remove(header).expect("header");
        let mut req = req.sign(&k, &s, None, "ssm", time::OffsetDateTime::now_utc());
        req.headers.insert(header, value);
        let r = req.send(&server).await;
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (400, Some("IncompleteSignatureException")),
            "{header}: {}",
            r.text
        );
    }
    let got = server.ssm().get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("standard"));
}

// === Low 10: the policy grammar refuses what IAM refuses ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspelt_or_contradictory_policy_elements_are_refused() {
    let (_dir, server) = TestServer::start_fresh();
    let r = server.iam("Action=CreateUser&UserName=u").await;
    assert_eq!(r.status, 200);
    for doc in [
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","Condtion":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","NotAction":"iam:*","Resource":"*"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*","NotResource":"x"}]}"#,
    ] {
        let r = server
            .iam(&format!("Action=PutUserPolicy&UserName=u&PolicyName=p&PolicyDocument={}", form_encode(doc)))
            .await;
        assert_eq!((r.status, r.error_code().as_deref()), (400, Some("MalformedPolicyDocument")), "{doc}: {}", r.text);
    }
    let r = server.iam("Action=ListUserPolicies&UserName=u").await;
    assert!(!r.text.contains("<member>p</member>"), "nothing was stored: {}", r.text);
}

// === Low 11: the agent never talks plain HTTP ===

#[test]
fn the_agent_refuses_a_plain_http_endpoint() {
    let state = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(agent_bin())
        .args(["register", "--state-dir"])
        .arg(state.path().join("agent"))
        .args(["--code", "abcdefghijklmnopqrst", "--id", "00000000-0000-4000-8000-000000000000"])
        .args(["--region", "us-east-1", "--endpoint", "http://127.0.0.1:9"])
        .output()
        .expect("agent runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("https"), "{stderr}");
    assert!(!state.path().join("agent").exists(), "nothing was written");
}

// === Also: the generated CA certifies only the server's names, and its key may stay offline ===

/// Signs a server certificate for `name` with the data dir's CA key, as a thief of that key
/// would, and asks a TLS client (rustls) trusting `ca.pem` whether it accepts it for `name`.
fn forged_certificate_accepted(data_dir: &std::path::Path, name: &str) -> bool {
    let ca_key = std::fs::read_to_string(data_dir.join("ca-key.pem")).expect("ca key");
    let ca_key = rcgen::KeyPair::from_pem(&ca_key).expect("ca key");
    let mut ca = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "Corral local CA");
    dn.push(rcgen::DnType::OrganizationName, "Corral");
    ca.distinguished_name = dn;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    let leaf = leaf.signed_by(&key, &issuer).expect("sign");

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut std::fs::read(data_dir.join("ca.pem")).expect("ca").as_slice()) {
        roots.add(cert.expect("ca")).expect("root");
    }
    use rustls::client::danger::ServerCertVerifier;
    let verifier = rustls::client::WebPkiServerVerifier::builder(std::sync::Arc::new(roots)).build().expect("verifier");
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    verifier.verify_server_cert(leaf.der(), &[], &server_name, &[], rustls::pki_types::UnixTime::now()).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_ca_certifies_only_the_servers_names() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let with_san = |san: &str| StartOptions { args: vec!["--tls-san".into(), san.into()], ..Default::default() };
    let server = TestServer::start(&data, with_san("corral.test")).expect("server");
    server.stop();

    // A leaf for one of the server's names verifies (the forgery is well made)...
    assert!(forged_certificate_accepted(&data, "corral.test"));
    // ...but the CA key cannot mint a certificate clients accept for any other site.
    assert!(!forged_certificate_accepted(&data, "bank.example"), "the CA is not name-constrained");

    // A name outside the constraints is refused with what to do about it.
    let err = TestServer::start(&data, with_san("other.test")).err().expect("refused");
    assert!(err.contains("rotate the CA"), "{err}");

    // The CA key may be kept offline: the server starts and serves without it.
    std::fs::rename(data.join("ca-key.pem"), dir.path().join("ca-key.offline")).expect("move the key away");
    let server = TestServer::start(&data, with_san("corral.test")).expect("starts without the CA key");
    server.sts().get_caller_identity().send().await.expect("serves TLS");
}
