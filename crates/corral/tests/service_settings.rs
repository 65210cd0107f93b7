//! The quickstart, end to end with the AWS SDK for Rust: who am I, and the instance tier setting.

mod common;

use common::TestServer;

const TIER: &str = "/ssm/managed-instance/activation-tier";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_caller_identity_names_the_admin_user() {
    let (_dir, server) = TestServer::start_fresh();
    let who = server.sts().get_caller_identity().send().await.expect("GetCallerIdentity");
    assert_eq!(who.account(), Some(server.account_id.as_str()));
    assert_eq!(who.arn(), Some(format!("arn:aws:iam::{}:user/admin", server.account_id).as_str()));
    let user_id = who.user_id().expect("UserId");
    assert!(user_id.starts_with("AIDA") && user_id.len() == 21, "{user_id}");
    assert_eq!(server.account_id.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_tier_defaults_updates_and_resets() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    let admin_arn = format!("arn:aws:iam::{}:user/admin", server.account_id);

    let got = ssm.get_service_setting().setting_id(TIER).send().await.expect("get");
    let s = got.service_setting().expect("setting");
    assert_eq!(s.setting_id(), Some(TIER));
    assert_eq!(s.setting_value(), Some("standard"));
    assert_eq!(s.status(), Some("Default"));
    assert_eq!(s.last_modified_user(), Some("System"));
    let arn = format!("arn:aws:ssm:us-east-1:{}:servicesetting{TIER}", server.account_id);
    assert_eq!(s.arn(), Some(arn.as_str()));
    assert!(s.last_modified_date().is_some());

    ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    // The ARN form of the ID names the same setting, and the answer carries the bare ID.
    let got = ssm.get_service_setting().setting_id(&arn).send().await.expect("get by ARN");
    let s = got.service_setting().expect("setting");
    assert_eq!(s.setting_id(), Some(TIER));
    assert_eq!(s.setting_value(), Some("advanced"));
    assert_eq!(s.status(), Some("Customized"));
    assert_eq!(s.last_modified_user(), Some(admin_arn.as_str()));

    let reset = ssm.reset_service_setting().setting_id(TIER).send().await.expect("reset");
    let s = reset.service_setting().expect("setting");
    assert_eq!(s.setting_value(), Some("standard"));
    assert_eq!(s.status(), Some("Default"));
    let got = ssm.get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("standard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_per_region() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    let other = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&server.admin_sdk_config())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .build(),
    );
    let got = other.get_service_setting().setting_id(TIER).send().await.expect("get in eu-west-1");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("standard"));
    assert!(got.service_setting().and_then(|s| s.arn()).unwrap_or_default().contains(":eu-west-1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_errors_use_aws_codes() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();

    let err = ssm.get_service_setting().setting_id("/ssm/no/such/setting").send().await.expect_err("unknown id");
    let err = err.into_service_error();
    assert!(err.is_service_setting_not_found(), "{err:?}");

    let err =
        ssm.update_service_setting().setting_id(TIER).setting_value("premium").send().await.expect_err("bad value");
    assert_eq!(aws_sdk_ssm::error::ProvideErrorMetadata::code(&err), Some("ValidationException"), "{err:?}");

    let long_id = format!("/{}", "a".repeat(1000));
    let err = ssm.get_service_setting().setting_id(long_id).send().await.expect_err("too long");
    let meta = aws_sdk_ssm::error::ProvideErrorMetadata::meta(&err);
    assert_eq!(meta.code(), Some("ValidationException"));
    assert!(
        meta.message().unwrap_or_default().contains("Member must have length less than or equal to 1000"),
        "{meta:?}"
    );

    // None of that changed anything.
    let got = ssm.get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.status()), Some("Default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_when_enabled() {
    let dir = tempfile::tempdir().expect("dir");
    let on = common::StartOptions { args: vec!["--metrics".into()], ..Default::default() };
    let server = common::TestServer::start(&dir.path().join("on"), on).expect("server");
    let ssm = server.ssm();
    for _ in 0..2 {
        ssm.get_service_setting().setting_id(TIER).send().await.expect("get");
    }
    let _ = ssm.get_service_setting().setting_id("/ssm/not/a/setting").send().await;
    let text = server
        .http()
        .get(format!("{}/metrics", server.endpoint))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(r#"corral_requests_total{service="ssm",operation="GetServiceSetting",outcome="ok"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"outcome="ServiceSettingNotFound"} 1"#), "{text}");
    assert!(text.contains(r#"corral_request_duration_seconds_count{service="ssm",operation="GetServiceSetting"} 3"#));
    assert!(text.contains("corral_audit_write_duration_seconds_count"));
    assert!(text.contains("corral_connected_agents 0"));
    // The store's pools (SQLite: readers and the one writer), and no open work yet.
    assert!(text.contains(r#"corral_store_max_connections{pool="writer"} 1"#), "{text}");
    assert!(text.contains(r#"corral_store_connections{pool="readers",state="idle"}"#), "{text}");
    assert!(text.contains(r#"corral_open_invocations{status="Pending"} 0"#), "{text}");

    // A command for a registered machine that is not connected waits as Pending.
    server.create_instance_role("MetricsRole").await;
    let (id, code) = server.create_activation("MetricsRole", 1, None, &[]).await;
    let inst = common::register_and_get_token(&server, &id, &code, &common::MachineIdentity::generate()).await;
    ssm.send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("commands", vec!["true".to_string()])
        .send()
        .await
        .expect("SendCommand");
    let text = server.http().get(format!("{}/metrics", server.endpoint)).send().await.expect("GET");
    let text = text.text().await.expect("text");
    assert!(text.contains(r#"corral_open_invocations{status="Pending"} 1"#), "{text}");

    // Off by default: nothing is served there.
    let (_dir2, plain) = common::TestServer::start_fresh();
    let r = plain.http().get(format!("{}/metrics", plain.endpoint)).send().await.expect("GET");
    assert_ne!(r.status().as_u16(), 200);
    assert!(!r.text().await.unwrap_or_default().contains("corral_requests_total"));
}
