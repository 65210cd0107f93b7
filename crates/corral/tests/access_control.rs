//! Access control and audit end to end: IAM policies decide every call, and every call lands in
//! the CloudTrail trail that `LookupEvents` reads.

mod common;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use common::*;

const TIER: &str = "/ssm/managed-instance/activation-tier";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess";
const FULL: &str = "arn:aws:iam::aws:policy/AmazonSSMFullAccess";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_can_read_but_not_change() {
    let (_dir, server) = TestServer::start_fresh();
    let alice = user(&server, "alice", &[READ_ONLY], None).await;
    let ssm = ssm_as(&server, &alice);
    ssm.describe_instance_information().send().await.expect("Describe* allowed");
    ssm.get_service_setting().setting_id(TIER).send().await.expect("Get* allowed");
    let err = ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect_err("denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let expected = format!(
        "User: arn:aws:iam::{acct}:user/alice is not authorized to perform: ssm:UpdateServiceSetting on resource: \
         arn:aws:ssm:us-east-1:{acct}:servicesetting{TIER} because no identity-based policy allows the ssm:UpdateServiceSetting action",
        acct = server.account_id
    );
    assert_eq!(err.message(), Some(expected.as_str()));
    // Nothing changed, and IAM itself is closed to her too (AccessDenied, 403, Query style).
    let got = server.ssm().get_service_setting().setting_id(TIER).send().await.expect("admin get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("standard"));
    let resp = RawRequest::query(&server, "Action=CreateUser&UserName=mallory&Version=2010-05-08")
        .sign(&alice.0, &alice.1, None, "iam", time::OffsetDateTime::now_utc())
        .send(&server)
        .await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (403, Some("AccessDenied")), "{}", resp.text);
    // Who-am-I needs no permission.
    let who = aws_sdk_sts::Client::new(&server.sdk_config_with(&alice.0, &alice.1, None))
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert!(who.arn().unwrap_or_default().ends_with(":user/alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_deny_beats_full_access() {
    let (_dir, server) = TestServer::start_fresh();
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ssm:UpdateServiceSetting","Resource":"*"}]}"#;
    let bob = user(&server, "bob", &[FULL], Some(deny)).await;
    let ssm = ssm_as(&server, &bob);
    ssm.get_service_setting().setting_id(TIER).send().await.expect("full access reads");
    let err = ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect_err("denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(
        err.message().unwrap_or_default().ends_with("with an explicit deny in an identity-based policy"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_conditions_scope_actions_to_tagged_instances() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (lab_id, lab_code) = server.create_activation("SSMServiceRole", 1, None, &[("env", "lab")]).await;
    let (prod_id, prod_code) = server.create_activation("SSMServiceRole", 1, None, &[("env", "prod")]).await;
    let machine = MachineIdentity::generate();
    let lab = register_and_get_token(&server, &lab_id, &lab_code, &machine).await;
    let prod = register_and_get_token(&server, &prod_id, &prod_code, &machine).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"ssm:DeregisterManagedInstance","Resource":"arn:aws:ssm:*:*:managed-instance/*",
         "Condition":{"StringEquals":{"ssm:resourceTag/env":"lab"}}},
        {"Effect":"Allow","Action":["ssm:Describe*","ssm:List*"],"Resource":"*"}]}"#;
    let ops = user(&server, "ops", &[], Some(policy)).await;
    let ssm = ssm_as(&server, &ops);
    let err = ssm.deregister_managed_instance().instance_id(&prod.instance_id).send().await.expect_err("prod");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    ssm.deregister_managed_instance().instance_id(&lab.instance_id).send().await.expect("lab allowed");
    let left = server.ssm().describe_instance_information().send().await.expect("describe");
    assert_eq!(left.instance_information_list().len(), 1);
}

/// A SendCommand of `echo` to the given instances, as `ssm` (returns the AWS error code, if any).
async fn send_echo(ssm: &aws_sdk_ssm::Client, targets: &[&str], tag: Option<(&str, &str)>) -> Option<String> {
    let mut req =
        ssm.send_command().document_name("AWS-RunShellScript").parameters("commands", vec!["echo hi".to_string()]);
    for t in targets {
        req = req.instance_ids(*t);
    }
    if let Some((k, v)) = tag {
        req = req.targets(aws_sdk_ssm::types::Target::builder().key(format!("tag:{k}")).values(v).build());
    }
    req.send().await.err().map(|e| e.code().unwrap_or("?").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_can_list_commands_but_not_send_one() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let inst = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    let alice = user(&server, "alice", &[READ_ONLY], None).await;
    let ssm = ssm_as(&server, &alice);
    ssm.list_commands().send().await.expect("ListCommands allowed");
    ssm.list_command_invocations().send().await.expect("ListCommandInvocations allowed");
    let err = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("commands", vec!["id".to_string()])
        .send()
        .await
        .expect_err("denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    let expected = format!(
        "User: arn:aws:iam::{acct}:user/alice is not authorized to perform: ssm:SendCommand on resource: \
         arn:aws:ssm:us-east-1::document/AWS-RunShellScript because no identity-based policy allows the ssm:SendCommand action",
        acct = server.account_id
    );
    assert_eq!(err.message(), Some(expected.as_str()));
    // Nothing was sent.
    assert!(server.ssm().list_commands().send().await.expect("list").commands().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_conditions_scope_send_command_to_every_target() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (lab_id, lab_code) = server.create_activation("SSMServiceRole", 1, None, &[("env", "lab")]).await;
    let (prod_id, prod_code) = server.create_activation("SSMServiceRole", 1, None, &[("env", "prod")]).await;
    let machine = MachineIdentity::generate();
    let lab = register_and_get_token(&server, &lab_id, &lab_code, &machine).await;
    let prod = register_and_get_token(&server, &prod_id, &prod_code, &machine).await;
    // SendCommand needs the document and each instance: the document on any resource, the
    // instances only where env=lab.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*::document/AWS-RunShellScript"},
        {"Effect":"Allow","Action":"ssm:SendCommand","Resource":"arn:aws:ssm:*:*:managed-instance/*",
         "Condition":{"StringEquals":{"ssm:resourceTag/env":"lab"}}},
        {"Effect":"Allow","Action":["ssm:List*","ssm:Get*"],"Resource":"*"}]}"#;
    let ops = user(&server, "ops", &[], Some(policy)).await;
    let ssm = ssm_as(&server, &ops);
    assert_eq!(send_echo(&ssm, &[&lab.instance_id], None).await, None, "lab by ID allowed");
    assert_eq!(send_echo(&ssm, &[], Some(("env", "lab"))).await, None, "lab by tag allowed");
    assert_eq!(send_echo(&ssm, &[&prod.instance_id], None).await.as_deref(), Some("AccessDeniedException"));
    // One forbidden instance among allowed ones refuses the whole command.
    assert_eq!(
        send_echo(&ssm, &[&lab.instance_id, &prod.instance_id], None).await.as_deref(),
        Some("AccessDeniedException")
    );
    assert_eq!(send_echo(&ssm, &[], Some(("env", "prod"))).await.as_deref(), Some("AccessDeniedException"));
    // Only the two allowed sends exist.
    assert_eq!(server.ssm().list_commands().send().await.expect("list").commands().len(), 2);
    // A document the policy does not name is refused even for a lab instance.
    let other = r#"{"schemaVersion":"2.2","description":"x","mainSteps":[{"action":"aws:runShellScript","name":"s","inputs":{"runCommand":["true"]}}]}"#;
    server
        .ssm()
        .create_document()
        .name("Mine")
        .content(other)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .send()
        .await
        .expect("create");
    let err = ssm.send_command().document_name("Mine").instance_ids(&lab.instance_id).send().await.expect_err("doc");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(err.message().unwrap_or_default().contains("document/Mine"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_refused_once_its_role_loses_core_permissions() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let inst = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    let body =
        serde_json::json!({"InstanceId": inst.instance_id, "AgentName": "corral-agent", "AgentVersion": "0.1.0"});
    assert_eq!(ping(&server, &inst, body.clone()).await.status, 200);
    let r = server
        .iam(&format!(
            "Action=DetachRolePolicy&RoleName=SSMServiceRole&PolicyArn={}",
            form_encode("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let resp = ping(&server, &inst, body).await;
    assert_eq!(resp.error_code().as_deref(), Some("AccessDeniedException"), "{}", resp.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assumed_role_credentials_carry_the_roles_permissions() {
    let (_dir, server) = TestServer::start_fresh();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:user/carol"}},"Action":"sts:AssumeRole"}}]}}"#,
        server.account_id
    );
    let r = server
        .iam(&format!("Action=CreateRole&RoleName=Reader&AssumeRolePolicyDocument={}", form_encode(&trust)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.iam(&format!("Action=AttachRolePolicy&RoleName=Reader&PolicyArn={}", form_encode(READ_ONLY))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let may_assume =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let carol = user(&server, "carol", &[], Some(may_assume)).await;
    let dave = user(&server, "dave", &[], Some(may_assume)).await;
    let role_arn = format!("arn:aws:iam::{}:role/Reader", server.account_id);

    let sts = aws_sdk_sts::Client::new(&server.sdk_config_with(&carol.0, &carol.1, None));
    let out = sts.assume_role().role_arn(&role_arn).role_session_name("audit").send().await.expect("AssumeRole");
    let creds = out.credentials().expect("creds");
    assert_eq!(
        out.assumed_role_user().map(|u| u.arn()),
        Some(format!("arn:aws:sts::{}:assumed-role/Reader/audit", server.account_id).as_str())
    );
    let session = server.sdk_config_with(creds.access_key_id(), creds.secret_access_key(), Some(creds.session_token()));
    let who = aws_sdk_sts::Client::new(&session).get_caller_identity().send().await.expect("who");
    assert!(who.arn().unwrap_or_default().ends_with(":assumed-role/Reader/audit"));
    let ssm = aws_sdk_ssm::Client::new(&session);
    ssm.get_service_setting().setting_id(TIER).send().await.expect("the role reads");
    let err = ssm
        .update_service_setting()
        .setting_id(TIER)
        .setting_value("advanced")
        .send()
        .await
        .expect_err("the role may not write");
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(err.message().unwrap_or_default().contains("assumed-role/Reader/audit"), "{err:?}");

    // The trust policy names carol, not dave.
    let sts = aws_sdk_sts::Client::new(&server.sdk_config_with(&dave.0, &dave.1, None));
    let err = sts.assume_role().role_arn(&role_arn).role_session_name("dave-session").send().await.expect_err("dave");
    assert_eq!(aws_sdk_sts::error::ProvideErrorMetadata::code(&err), Some("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_records_allowed_and_denied_calls_without_secrets() {
    let (_dir, server) = TestServer::start_fresh();
    let alice = user(&server, "alice", &[READ_ONLY], None).await;
    server.create_instance_role("SSMServiceRole").await;
    let (act_id, act_code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let inst = register_and_get_token(&server, &act_id, &act_code, &MachineIdentity::generate()).await;
    let sess = server.sts().get_session_token().send().await.expect("session");
    let sess_creds = sess.credentials().expect("creds").clone();
    let ssm = ssm_as(&server, &alice);
    let _ = ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect_err("denied");
    ssm.get_service_setting().setting_id(TIER).send().await.expect("allowed");

    let trail = trail_lookup(&server, "Username", "alice").await;
    let denied = trail.iter().find(|e| e["eventName"] == "UpdateServiceSetting").expect("the denied call is recorded");
    assert_eq!(denied["errorCode"], "AccessDeniedException");
    assert_eq!(denied["userIdentity"]["userName"], "alice");
    assert_eq!(denied["userIdentity"]["accessKeyId"], alice.0.as_str());
    assert_eq!(denied["eventSource"], "ssm.amazonaws.com");
    assert_eq!(denied["awsRegion"], "us-east-1");
    assert_eq!(denied["readOnly"], false);
    assert_eq!(denied["requestParameters"]["settingId"], TIER);
    assert!(trail
        .iter()
        .any(|e| e["eventName"] == "GetServiceSetting" && e["readOnly"] == true && e.get("errorCode").is_none()));
    // Newest first.
    let times: Vec<&str> = trail.iter().filter_map(|e| e["eventTime"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // No secret appears in any record.
    let everything = trail_lookup(&server, "", "").await;
    let text = serde_json::to_string(&everything).expect("json");
    let (_, admin_secret) = server.admin_credentials();
    for secret in [
        alice.1.as_str(),
        admin_secret.as_str(),
        act_code.as_str(),
        inst.secret_access_key.as_str(),
        inst.session_token.as_str(),
        sess_creds.secret_access_key(),
        sess_creds.session_token(),
    ] {
        assert!(!text.contains(secret), "a secret leaked into the trail");
    }
    assert!(everything.iter().any(|e| e["eventName"] == "RegisterManagedInstance"), "agent calls are recorded too");
    assert!(everything.iter().any(|e| e["eventName"] == "CreateAccessKey"
        && e["responseElements"]["accessKey"]["secretAccessKey"] == "HIDDEN_DUE_TO_SECURITY_REASONS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_rejects_bad_queries() {
    let (_dir, server) = TestServer::start_fresh();
    let (k, s) = server.admin_credentials();
    let call = |body: serde_json::Value| {
        let mut req = RawRequest::ssm(&server, "x", &body.to_string());
        req.headers.insert(
            "x-amz-target",
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".parse().expect("target"),
        );
        req.sign(&k, &s, None, "cloudtrail", time::OffsetDateTime::now_utc())
    };
    let two = serde_json::json!({"LookupAttributes": [
        {"AttributeKey": "Username", "AttributeValue": "a"}, {"AttributeKey": "EventName", "AttributeValue": "b"}]});
    let resp = call(two).send(&server).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidLookupAttributesException"), "{}", resp.text);
    let resp = call(serde_json::json!({"StartTime": 2000000000, "EndTime": 1000000000})).send(&server).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidTimeRangeException"), "{}", resp.text);
    let resp = call(serde_json::json!({"MaxResults": 51})).send(&server).await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    let resp = call(serde_json::json!({"NextToken": "forged"})).send(&server).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidNextTokenException"), "{}", resp.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assumed_role_credentials_expire() {
    let (_dir, server) = TestServer::start_fresh();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"sts:AssumeRole"}}]}}"#,
        server.account_id
    );
    let r = server
        .iam(&format!("Action=CreateRole&RoleName=Reader&AssumeRolePolicyDocument={}", form_encode(&trust)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = server.iam(&format!("Action=AttachRolePolicy&RoleName=Reader&PolicyArn={}", form_encode(READ_ONLY))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The admin may assume it (the trust names the account); the session works...
    let out = server
        .sts()
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/Reader", server.account_id))
        .role_session_name("short")
        .duration_seconds(900)
        .send()
        .await
        .expect("AssumeRole");
    let creds = out.credentials().expect("creds");
    let left = creds.expiration().secs() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((850..=905).contains(&left), "{left}");
    let session = server.sdk_config_with(creds.access_key_id(), creds.secret_access_key(), Some(creds.session_token()));
    aws_sdk_ssm::Client::new(&session).describe_instance_information().send().await.expect("session works");
    // ...and the same kind of session past its expiry is refused as expired.
    let role = {
        let key = corral_store::load_or_create_key_file(&server.data_dir.join("secret.key")).expect("key");
        let store = corral_store::open(&format!("sqlite://{}", server.data_dir.join("corral.db").display()), key)
            .await
            .expect("store");
        let role = store.get_role(&server.account_id, "Reader").await.expect("get").expect("role");
        let now = time::OffsetDateTime::now_utc();
        store
            .create_session_credential(&corral_store::SessionCredential {
                access_key_id: "ASIAEXPIREDROLE00000".into(),
                account_id: server.account_id.clone(),
                secret_access_key: "expiredRoleSecret000000000000000000000000".into(),
                session_token_hash: corral_server::ids::session_token_hash("expired-role-token"),
                principal: corral_store::SessionPrincipal::AssumedRole {
                    role_name: role.role_name.clone(),
                    role_id: role.role_id.clone(),
                    session_name: "old".into(),
                },
                created_at: now - time::Duration::hours(2),
                expires_at: now - time::Duration::seconds(1),
            })
            .await
            .expect("insert");
        role
    };
    assert_eq!(role.role_name, "Reader");
    let expired = server.sdk_config_with(
        "ASIAEXPIREDROLE00000",
        "expiredRoleSecret000000000000000000000000",
        Some("expired-role-token"),
    );
    let err = aws_sdk_ssm::Client::new(&expired).describe_instance_information().send().await.expect_err("expired");
    assert_eq!(err.code(), Some("ExpiredTokenException"));
    // Session names that look like managed instances are reserved.
    let err = server
        .sts()
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/Reader", server.account_id))
        .role_session_name("mi-0123456789abcdef0")
        .send()
        .await
        .expect_err("reserved");
    assert_eq!(aws_sdk_sts::error::ProvideErrorMetadata::code(&err), Some("ValidationError"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_change_and_its_record_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let server = TestServer::start(&data, StartOptions::default()).expect("start");
    server.create_instance_role("SSMServiceRole").await;
    let out = server.ssm().create_activation().iam_role("SSMServiceRole").send().await.expect("create");
    let id = out.activation_id().expect("id").to_string();
    server.kill9();
    let server = TestServer::start(&data, StartOptions::default()).expect("restart");
    let records = trail_lookup(&server, "EventName", "CreateActivation").await;
    assert_eq!(records.len(), 1);
    // The record carries the response (staged before the write), with the code hidden.
    assert_eq!(records[0]["responseElements"]["activationId"], id.as_str());
    assert_eq!(records[0]["responseElements"]["activationCode"], "HIDDEN_DUE_TO_SECURITY_REASONS");
    let verify = std::process::Command::new(corral_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(&data)
        .output()
        .expect("corral audit verify");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
