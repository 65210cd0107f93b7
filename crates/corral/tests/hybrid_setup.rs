//! The hybrid-environment setup, end to end: service role, activation, registration through the
//! agent gateway (as the agent speaks it), role credentials, health pings, managed instances,
//! tags, deregistration and the instance tiers.

mod common;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{InstanceInformationStringFilter, Tag};
use common::*;
use time::OffsetDateTime;

const TIER: &str = "/ssm/managed-instance/activation-tier";

fn full_ping(instance_id: &str) -> serde_json::Value {
    serde_json::json!({
        "InstanceId": instance_id, "AgentName": "amazon-ssm-agent", "AgentStatus": "Active",
        "AgentVersion": "3.3.1142.0", "PlatformType": "Linux", "PlatformName": "Ubuntu",
        "PlatformVersion": "22.04", "IPAddress": "192.0.2.10", "ComputerName": "web-1.example.internal",
        "AvailabilityZone": "", "AvailabilityZoneId": "", "SSMConnectionChannel": "ssmmessages"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_activation_registration_and_ping() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 2, Some("web"), &[("env", "lab")]).await;

    let machine = MachineIdentity::generate();
    let inst = register_and_get_token(&server, &id, &code, &machine).await;
    assert!(inst.instance_id.starts_with("mi-") && inst.instance_id.len() == 20, "{}", inst.instance_id);
    assert!(inst.access_key_id.starts_with("ASIA"));

    // Registered at once with the activation's name and tags, before any ping.
    let ssm = server.ssm();
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::ManagedInstance)
        .resource_id(&inst.instance_id)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tag_list().len(), 1);
    assert_eq!(tags.tag_list()[0].key(), "env");

    let resp = ping(&server, &inst, full_ping(&inst.instance_id)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);

    let out = ssm.describe_instance_information().send().await.expect("describe");
    let list = out.instance_information_list();
    assert_eq!(list.len(), 1);
    let info = &list[0];
    assert_eq!(info.instance_id(), Some(inst.instance_id.as_str()));
    assert_eq!(info.ping_status().map(|s| s.as_str()), Some("Online"));
    assert_eq!(info.name(), Some("web"));
    assert_eq!(info.iam_role(), Some("SSMServiceRole"));
    assert_eq!(info.activation_id(), Some(id.as_str()));
    assert_eq!(info.resource_type().map(|s| s.as_str()), Some("ManagedInstance"));
    assert_eq!(info.platform_type().map(|s| s.as_str()), Some("Linux"));
    assert_eq!(info.platform_name(), Some("Ubuntu"));
    assert_eq!(info.platform_version(), Some("22.04"));
    assert_eq!(info.agent_version(), Some("3.3.1142.0"));
    assert_eq!(info.ip_address(), Some("192.0.2.10"));
    assert_eq!(info.computer_name(), Some("web-1.example.internal"));
    assert!(info.last_ping_date_time().is_some() && info.registration_date().is_some());

    // The activation counts the registration.
    let acts = ssm.describe_activations().send().await.expect("describe activations");
    let a = &acts.activation_list()[0];
    assert_eq!(a.registrations_count(), Some(1));
    assert_eq!(a.registration_limit(), Some(2));
    assert!(!a.expired());
    assert_eq!(a.default_instance_name(), Some("web"));

    // An instance may only speak for itself.
    let other = serde_json::json!({"InstanceId": "mi-00000000000000000"});
    let resp = ping(&server, &inst, other).await;
    assert_eq!(resp.error_code().as_deref(), Some("AccessDeniedException"), "{}", resp.text);
    // The admin is not an instance either.
    let err = ssm
        .describe_instance_information()
        .instance_information_filter_list(
            aws_sdk_ssm::types::InstanceInformationFilter::builder()
                .key(aws_sdk_ssm::types::InstanceInformationFilterKey::InstanceIds)
                .value_set("mi-00000000000000000")
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect_err("unknown instance id");
    assert_eq!(err.code(), Some("InvalidInstanceId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_inputs_are_checked() {
    let (_dir, server) = TestServer::start_fresh();
    let ssm = server.ssm();
    let err = ssm.create_activation().iam_role("NoSuchRole").send().await.expect_err("missing role");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap_or_default().contains("Not existing role"), "{err:?}");

    // A role that does not trust ssm.amazonaws.com is refused with a clear message.
    let ec2_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let resp = server
        .iam(&format!("Action=CreateRole&RoleName=Ec2Role&AssumeRolePolicyDocument={}", form_encode(ec2_trust)))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let err = ssm.create_activation().iam_role("Ec2Role").send().await.expect_err("untrusted role");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap_or_default().contains("ssm.amazonaws.com"), "{err:?}");

    server.create_instance_role("SSMServiceRole").await;
    let arn = format!("arn:aws:iam::{}:role/SSMServiceRole", server.account_id);
    let too_far = aws_sdk_ssm::primitives::DateTime::from_secs(OffsetDateTime::now_utc().unix_timestamp() + 31 * 86400);
    let err = ssm.create_activation().iam_role(&arn).expiration_date(too_far).send().await.expect_err("31 days");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = ssm.create_activation().iam_role(&arn).registration_limit(1001).send().await.expect_err("limit");
    assert_eq!(err.code(), Some("ValidationException"));

    // By ARN it works; the default limit is 1 and the default expiry 24 hours.
    let out = ssm.create_activation().iam_role(&arn).send().await.expect("by ARN");
    let id = out.activation_id().expect("id").to_string();
    let code = out.activation_code().expect("code");
    assert!(code.len() >= 20);
    let acts = ssm.describe_activations().send().await.expect("describe");
    let a = &acts.activation_list()[0];
    assert_eq!(a.registration_limit(), Some(1));
    assert_eq!(a.iam_role(), Some("SSMServiceRole"));
    let ttl = a.expiration_date().expect("expiry").secs() - OffsetDateTime::now_utc().unix_timestamp();
    assert!((86_000..=86_400).contains(&ttl), "{ttl}");
    // DescribeActivations never returns the code.
    assert!(!format!("{a:?}").contains(code));

    ssm.delete_activation().activation_id(&id).send().await.expect("delete");
    let err = ssm.delete_activation().activation_id(&id).send().await.expect_err("twice");
    assert_eq!(err.code(), Some("InvalidActivationId"));
    // The code is not stored in clear anywhere on disk.
    let db = std::fs::read(server.data_dir.join("corral.db")).expect("db");
    let wal = std::fs::read(server.data_dir.join("corral.db-wal")).unwrap_or_default();
    let contains = |hay: &[u8]| hay.windows(code.len()).any(|w| w == code.as_bytes());
    assert!(!contains(&db) && !contains(&wal), "the activation code is stored in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_faults_are_refused_and_change_nothing() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let machine = MachineIdentity::generate();

    let wrong_code = register_raw(&server, &id, "WrongCode1234567890+/", &machine).await;
    assert_eq!(wrong_code.error_code().as_deref(), Some("InvalidActivation"), "{}", wrong_code.text);
    let unknown = register_raw(&server, "00000000-0000-4000-8000-000000000000", &code, &machine).await;
    assert_eq!(unknown.error_code().as_deref(), Some("InvalidActivation"));
    let mut short = MachineIdentity::generate();
    short.public_key = "AAAA".repeat(10);
    let resp = register_raw(&server, &id, &code, &short).await;
    assert_eq!(resp.error_code().as_deref(), Some("ValidationException"), "{}", resp.text);
    let mut garbage = MachineIdentity::generate();
    garbage.public_key = "A".repeat(392);
    let resp = register_raw(&server, &id, &code, &garbage).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidPublicKey"), "{}", resp.text);

    // None of those used the single registration.
    let inst = register_and_get_token(&server, &id, &code, &machine).await;
    let again = register_raw(&server, &id, &code, &machine).await;
    assert_eq!(again.error_code().as_deref(), Some("RegistrationLimitExceeded"), "{}", again.text);

    // Role tokens: wrong key, wrong fingerprint, skewed clock.
    let body = serde_json::json!({"Fingerprint": machine.fingerprint}).to_string();
    let impostor = MachineIdentity::generate();
    let now = OffsetDateTime::now_utc();
    let resp = rsa_call(&server, "RequestManagedInstanceRoleToken", &body, &inst.instance_id, &impostor.key, now).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidSignatureException"), "{}", resp.text);
    let wrong_fp = serde_json::json!({"Fingerprint": "another-machine"}).to_string();
    let resp =
        rsa_call(&server, "RequestManagedInstanceRoleToken", &wrong_fp, &inst.instance_id, &machine.key, now).await;
    assert_eq!(resp.error_code().as_deref(), Some("MachineFingerprintDoesNotMatch"), "{}", resp.text);
    let skewed = now - time::Duration::minutes(20);
    let resp =
        rsa_call(&server, "RequestManagedInstanceRoleToken", &body, &inst.instance_id, &machine.key, skewed).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidSignatureException"), "{}", resp.text);
    assert!(resp.text.contains("Signature expired"), "{}", resp.text);
    let resp =
        rsa_call(&server, "RequestManagedInstanceRoleToken", &body, "mi-0123456789abcdef0", &machine.key, now).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidInstanceId"), "{}", resp.text);

    // A deleted activation registers nothing more.
    let (id2, code2) = server.create_activation("SSMServiceRole", 5, None, &[]).await;
    server.ssm().delete_activation().activation_id(&id2).send().await.expect("delete");
    let resp = register_raw(&server, &id2, &code2, &machine).await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidActivation"));

    // An expired activation is refused as expired.
    let soon = aws_sdk_ssm::primitives::DateTime::from_secs(OffsetDateTime::now_utc().unix_timestamp() + 2);
    let out = server
        .ssm()
        .create_activation()
        .iam_role("SSMServiceRole")
        .expiration_date(soon)
        .send()
        .await
        .expect("short-lived");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let resp =
        register_raw(&server, out.activation_id().expect("id"), out.activation_code().expect("code"), &machine).await;
    assert_eq!(resp.error_code().as_deref(), Some("ActivationExpired"), "{}", resp.text);
    let acts = server.ssm().describe_activations().send().await.expect("describe");
    assert!(acts.activation_list().iter().any(|a| a.expired()));

    let out = server.ssm().describe_instance_information().send().await.expect("describe");
    assert_eq!(out.instance_information_list().len(), 1, "exactly the one good registration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_respect_the_limit() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let machine = MachineIdentity::generate();
    let results = futures_join(8, |_| register_raw(&server, &id, &code, &machine)).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let limited = results.iter().filter(|r| r.error_code().as_deref() == Some("RegistrationLimitExceeded")).count();
    assert_eq!((ok, limited), (1, 7), "{:?}", results.iter().map(|r| r.text.clone()).collect::<Vec<_>>());
    let acts = server.ssm().describe_activations().send().await.expect("describe");
    assert_eq!(acts.activation_list()[0].registrations_count(), Some(1));
}

/// Runs `n` requests at once, so they really race.
async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<RawResponse>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = RawResponse>,
{
    join_all((0..n).map(f).collect()).await
}

async fn join_all<Fut: std::future::Future>(futs: Vec<Fut>) -> Vec<Fut::Output> {
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<Fut::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistration_locks_the_instance_out_at_once() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 2, None, &[]).await;
    let machine = MachineIdentity::generate();
    let inst = register_and_get_token(&server, &id, &code, &machine).await;
    let keep = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    assert_eq!(ping(&server, &inst, full_ping(&inst.instance_id)).await.status, 200);

    server.ssm().deregister_managed_instance().instance_id(&inst.instance_id).send().await.expect("deregister");
    // Its credentials are dead at once, and it cannot get new ones.
    let resp = ping(&server, &inst, full_ping(&inst.instance_id)).await;
    assert_eq!(resp.error_code().as_deref(), Some("UnrecognizedClientException"), "{}", resp.text);
    let body = serde_json::json!({"Fingerprint": machine.fingerprint}).to_string();
    let resp = rsa_call(
        &server,
        "RequestManagedInstanceRoleToken",
        &body,
        &inst.instance_id,
        &machine.key,
        OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(resp.error_code().as_deref(), Some("InvalidInstanceId"), "{}", resp.text);
    assert!(resp.text.contains("Not existing InstanceId"), "{}", resp.text);
    // The other instance is untouched; the deregistered one is gone from the list.
    assert_eq!(ping(&server, &keep, full_ping(&keep.instance_id)).await.status, 200);
    let out = server.ssm().describe_instance_information().send().await.expect("describe");
    let ids: Vec<_> = out.instance_information_list().iter().filter_map(|i| i.instance_id()).collect();
    assert_eq!(ids, vec![keep.instance_id.as_str()]);
    let err =
        server.ssm().deregister_managed_instance().instance_id(&inst.instance_id).send().await.expect_err("twice");
    assert_eq!(err.code(), Some("InvalidInstanceId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_filters_and_pagination() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 20, Some("node"), &[("env", "lab")]).await;
    let machine = MachineIdentity::generate();
    let mut ids = Vec::new();
    for _ in 0..12 {
        let resp = register_raw(&server, &id, &code, &machine).await;
        let v: serde_json::Value = serde_json::from_str(&resp.text).expect("json");
        ids.push(v["InstanceId"].as_str().expect("id").to_string());
    }
    let ssm = server.ssm();
    let mi = aws_sdk_ssm::types::ResourceTypeForTagging::ManagedInstance;
    for id in &ids[..3] {
        ssm.add_tags_to_resource()
            .resource_type(mi.clone())
            .resource_id(id)
            .tags(Tag::builder().key("env").value("prod").build().expect("tag"))
            .tags(Tag::builder().key("team").value("web").build().expect("tag"))
            .send()
            .await
            .expect("add tags");
    }
    ssm.remove_tags_from_resource()
        .resource_type(mi.clone())
        .resource_id(&ids[0])
        .tag_keys("team")
        .send()
        .await
        .expect("remove");

    let filter =
        |k: &str, v: &str| InstanceInformationStringFilter::builder().key(k).values(v).build().expect("filter");
    let count = |filters: Vec<InstanceInformationStringFilter>| {
        let ssm = ssm.clone();
        async move {
            let mut n = 0;
            let mut token: Option<String> = None;
            loop {
                let out = ssm
                    .describe_instance_information()
                    .set_filters(Some(filters.clone()))
                    .max_results(5)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .expect("describe");
                n += out.instance_information_list().len();
                match out.next_token() {
                    Some(t) if !t.is_empty() => {
                        assert_ne!(Some(t.to_string()), token, "the token must advance");
                        token = Some(t.to_string())
                    }
                    _ => break,
                }
            }
            n
        }
    };
    assert_eq!(count(vec![]).await, 12);
    assert_eq!(count(vec![filter("tag:env", "prod")]).await, 3);
    assert_eq!(count(vec![filter("tag:env", "lab")]).await, 9);
    assert_eq!(count(vec![filter("tag-key", "team")]).await, 2);
    assert_eq!(count(vec![filter("PingStatus", "ConnectionLost")]).await, 12, "never pinged");
    assert_eq!(count(vec![filter("tag:env", "prod"), filter("tag-key", "team")]).await, 2);
    assert_eq!(count(vec![filter("ResourceType", "ManagedInstance"), filter("PlatformTypes", "Windows")]).await, 0);

    // Every page is full until the last, and every instance is seen once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let out = ssm.describe_instance_information().max_results(5).set_next_token(token).send().await.expect("page");
        let page: Vec<String> =
            out.instance_information_list().iter().filter_map(|i| i.instance_id().map(str::to_string)).collect();
        token = out.next_token().map(str::to_string);
        if token.is_some() {
            assert_eq!(page.len(), 5);
        }
        seen.extend(page);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);

    let err = ssm.describe_instance_information().filters(filter("Colour", "blue")).send().await.expect_err("bad key");
    assert_eq!(err.code(), Some("InvalidFilterKey"));
    let err = ssm
        .describe_instance_information()
        .filters(filter("PingStatus", "Sleepy"))
        .send()
        .await
        .expect_err("bad value");
    assert_eq!(err.code(), Some("InvalidInstanceInformationFilterValue"));
    let err = ssm.describe_instance_information().next_token("garbage").send().await.expect_err("bad token");
    assert_eq!(err.code(), Some("InvalidNextToken"));

    // 50 tags at most.
    let mut req = ssm.add_tags_to_resource().resource_type(mi.clone()).resource_id(&ids[5]);
    for i in 0..50 {
        req = req.tags(Tag::builder().key(format!("k{i}")).value("v").build().expect("tag"));
    }
    let err = req.send().await.expect_err("51 tags");
    assert_eq!(err.code(), Some("TooManyTagsError"));
    let tags = ssm.list_tags_for_resource().resource_type(mi.clone()).resource_id(&ids[5]).send().await.expect("tags");
    assert_eq!(tags.tag_list().len(), 1, "nothing half-written");
    let err = ssm
        .list_tags_for_resource()
        .resource_type(mi)
        .resource_id("mi-0123456789abcdef0")
        .send()
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Some("InvalidResourceId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_tier_holds_at_most_1000_instances() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1000, None, &[]).await;
    let (id2, code2) = server.create_activation("SSMServiceRole", 10, None, &[]).await;
    // One key pair for every simulated machine: only the registration limit is under test.
    let machine = MachineIdentity::generate();
    let mut done = 0;
    while done < 1000 {
        let batch = (1000 - done).min(25);
        let results = futures_join(batch, |_| register_raw(&server, &id, &code, &machine)).await;
        for r in &results {
            assert_eq!(r.status, 200, "{}", r.text);
        }
        done += batch;
    }
    let refused = register_raw(&server, &id2, &code2, &machine).await;
    assert_eq!(refused.error_code().as_deref(), Some("RegistrationLimitExceeded"), "{}", refused.text);
    assert!(refused.text.contains("advanced"), "{}", refused.text);

    let ssm = server.ssm();
    ssm.update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("advanced");
    let resp = register_raw(&server, &id2, &code2, &machine).await;
    assert_eq!(resp.status, 200, "advanced tier has no limit: {}", resp.text);
    let err = ssm.update_service_setting().setting_id(TIER).setting_value("standard").send().await.expect_err("back");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap_or_default().contains("1001"), "{err:?}");
    let got = ssm.get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("advanced"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_turns_online_into_connection_lost() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = StartOptions { args: vec!["--ping-timeout-secs".into(), "2".into()], ..Default::default() };
    let server = TestServer::start(&dir.path().join("data"), opts).expect("start");
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let inst = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    let status = || async {
        let out = server.ssm().describe_instance_information().send().await.expect("describe");
        out.instance_information_list()[0].ping_status().map(|s| s.as_str().to_string()).unwrap_or_default()
    };
    assert_eq!(status().await, "ConnectionLost", "registered but never pinged");
    assert_eq!(ping(&server, &inst, full_ping(&inst.instance_id)).await.status, 200);
    assert_eq!(status().await, "Online");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(status().await, "ConnectionLost");
    assert_eq!(ping(&server, &inst, full_ping(&inst.instance_id)).await.status, 200);
    assert_eq!(status().await, "Online");
}
