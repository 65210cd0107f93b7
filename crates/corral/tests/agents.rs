//! Real `corral-agent` processes against a real server: registration, health pings, names and
//! tags, deregistration, limits, and surviving a control-plane restart.

mod common;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use common::*;

async fn online(server: &TestServer) -> Vec<aws_sdk_ssm::types::InstanceInformation> {
    let out = server.ssm().describe_instance_information().send().await.expect("describe");
    out.instance_information_list()
        .iter()
        .filter(|i| i.ping_status().map(|s| s.as_str()) == Some("Online"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_register_report_and_are_locked_out_when_deregistered() {
    let (dir, server) = TestServer::start_fresh();
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 3, Some("web"), &[("env", "lab")]).await;

    let mut agents = Vec::new();
    for i in 0..3 {
        let mut agent =
            TestAgent::register(&server, &dir.path().join(format!("agent{i}")), &id, &code).expect("register");
        assert!(agent.instance_id.starts_with("mi-"), "{}", agent.instance_id);
        agent.run(1);
        agents.push(agent);
    }
    // The limit of 3 is used up: a fourth machine is refused with the AWS error.
    let err = TestAgent::register(&server, &dir.path().join("agent3"), &id, &code).err().expect("limit");
    assert!(err.contains("RegistrationLimitExceeded"), "{err}");

    assert!(eventually(30, || async { online(&server).await.len() == 3 }).await, "three agents Online");
    for info in online(&server).await {
        assert_eq!(info.name(), Some("web"));
        assert_eq!(info.platform_type().map(|p| p.as_str()), Some("Linux"));
        assert_eq!(info.agent_version(), Some(env!("CARGO_PKG_VERSION")));
        assert!(info.computer_name().is_some_and(|c| !c.is_empty()));
        assert!(info.platform_name().is_some());
        assert_eq!(info.is_latest_version(), Some(true));
        let tags = server
            .ssm()
            .list_tags_for_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::ManagedInstance)
            .resource_id(info.instance_id().expect("id"))
            .send()
            .await
            .expect("tags");
        assert_eq!(tags.tag_list().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), vec![("env", "lab")]);
    }
    for a in &agents {
        assert!(a.status().contains(&a.instance_id), "{}", a.status());
    }

    // The private key never left the machine: it is nowhere in the server's data.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::read_to_string(agents[0].state_dir.join("private-key")).expect("private key");
        let mode =
            std::fs::metadata(agents[0].state_dir.join("private-key")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let needle = key.trim().get(..64).expect("key text").as_bytes().to_vec();
        for f in ["corral.db", "corral.db-wal"] {
            let bytes = std::fs::read(server.data_dir.join(f)).unwrap_or_default();
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "private key found in {f}");
        }
    }

    // Deregister one: it is refused at once and says so; the others carry on.
    let gone = agents[0].instance_id.clone();
    server.ssm().deregister_managed_instance().instance_id(&gone).send().await.expect("deregister");
    assert!(eventually(30, || async { agents[0].status().contains("DEREGISTERED") }).await, "{}", agents[0].log());
    let said = format!("this machine was deregistered from Corral ({gone})");
    assert!(eventually(10, || async { agents[0].log().contains(&said) }).await, "{}", agents[0].log());
    assert!(agents[0].is_running(), "a deregistered agent idles instead of exiting");
    let before = online(&server).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|i| i.instance_id() != Some(gone.as_str())));
    let err = server.ssm().deregister_managed_instance().instance_id(&gone).send().await.expect_err("gone");
    assert_eq!(err.code(), Some("InvalidInstanceId"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_ride_out_a_control_plane_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let port = free_port();
    let opts = StartOptions { args: vec!["--listen".into(), format!("127.0.0.1:{port}")], ..Default::default() };
    let server = TestServer::start(&data, opts.clone()).expect("start");
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 1, None, &[]).await;
    let mut agent = TestAgent::register(&server, &dir.path().join("agent"), &id, &code).expect("register");
    agent.run(1);
    assert!(eventually(30, || async { online(&server).await.len() == 1 }).await);

    server.stop();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(agent.is_running(), "the agent must not exit while the server is away");
    let server = TestServer::start(&data, opts).expect("restart");
    let first_ping = |s: &TestServer| {
        let ssm = s.ssm();
        async move {
            let out = ssm.describe_instance_information().send().await.expect("describe");
            out.instance_information_list().first().and_then(|i| i.last_ping_date_time()).map(|t| t.secs())
        }
    };
    let t0 = first_ping(&server).await.expect("pinged before");
    assert!(
        eventually(60, || async { first_ping(&server).await.is_some_and(|t| t > t0 + 1) }).await,
        "pings resume after the restart: {}",
        agent.log()
    );
    // The agent writes its status file just after the ping's answer: poll for it too.
    assert!(eventually(30, || async { agent.status().contains("succeeded at") }).await, "{}", agent.status());
}

async fn ping_status(server: &TestServer, instance_id: &str) -> String {
    let out = server.ssm().describe_instance_information().send().await.expect("describe");
    out.instance_information_list()
        .iter()
        .find(|i| i.instance_id() == Some(instance_id))
        .and_then(|i| i.ping_status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

fn channel_opens(server: &TestServer, instance_id: &str) -> usize {
    server.log().lines().filter(|l| l.contains("control channel open") && l.contains(instance_id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_channel_shows_connection_lost_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start(
        &dir.path().join("data"),
        StartOptions { args: vec!["--channel-grace-secs".into(), "3".into()], ..Default::default() },
    )
    .expect("server");
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 2, None, &[]).await;
    let mut stopped = TestAgent::register(&server, &dir.path().join("a"), &id, &code).expect("register a");
    let mut flaky = TestAgent::register(&server, &dir.path().join("b"), &id, &code).expect("register b");
    // Pings every 5 minutes, as in production: without the channel, the ping timeout (10
    // minutes) would keep both Online long after one is gone.
    stopped.run(300);
    flaky.run(300);
    let both_open = eventually(30, || async {
        channel_opens(&server, &stopped.instance_id) == 1 && channel_opens(&server, &flaky.instance_id) == 1
    })
    .await;
    assert!(both_open, "both channels open:\n{}", server.log());
    assert_eq!(ping_status(&server, &stopped.instance_id).await, "Online");

    // One agent stops; the other drops its channel and reconnects within the grace period.
    stopped.kill();
    flaky.kill();
    flaky.run(300);
    assert!(eventually(20, || async { channel_opens(&server, &flaky.instance_id) == 2 }).await, "b reconnected");

    let lost = eventually(30, || async { ping_status(&server, &stopped.instance_id).await == "ConnectionLost" }).await;
    assert!(lost, "the stopped agent shows ConnectionLost once the grace period is over");
    assert_eq!(ping_status(&server, &flaky.instance_id).await, "Online", "a reconnected agent stays Online");
    let lost_count = server
        .ssm()
        .describe_instance_information()
        .filters(
            aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
                .key("PingStatus")
                .values("ConnectionLost")
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("filtered")
        .instance_information_list()
        .len();
    assert_eq!(lost_count, 1, "the PingStatus filter agrees");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_channels_answers_held_polls_and_agents_come_back() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let port = free_port();
    let opts = StartOptions { args: vec!["--listen".into(), format!("127.0.0.1:{port}")], ..Default::default() };
    let server = TestServer::start(&data, opts.clone()).expect("server");
    server.create_instance_role("SSMServiceRole").await;
    let (id, code) = server.create_activation("SSMServiceRole", 2, None, &[]).await;
    let mut agent = TestAgent::register(&server, &dir.path().join("a"), &id, &code).expect("register");
    agent.run(300);
    assert!(eventually(30, || async { channel_opens(&server, &agent.instance_id) == 1 }).await, "channel open");

    // A machine that long-polls ec2messages instead: its poll is held when the signal comes.
    let poller = register_and_get_token(&server, &id, &code, &MachineIdentity::generate()).await;
    let body = serde_json::json!({"Destination": poller.instance_id, "MessagesRequestId": "0f6e3d0c-1111-4222-8333-444455556666", "VisibilityTimeoutInSeconds": 10});
    let signed = RawRequest::json(&server, "EC2WindowsMessageDeliveryService.GetMessages", &body.to_string()).sign(
        &poller.access_key_id,
        &poller.secret_access_key,
        Some(&poller.session_token),
        "ec2messages",
        time::OffsetDateTime::now_utc(),
    );
    let mut request = server.http().post(format!("{}/", server.endpoint)).body(signed.body);
    for (name, value) in signed.headers.iter().filter(|(n, _)| n.as_str() != "host") {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let poll = tokio::spawn(async move {
        let r = request.send().await.expect("poll sent");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let stopping = std::time::Instant::now();
    server.stop();
    let took = stopping.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "SIGTERM took {took:?}");
    // The held poll was answered (no messages), not cut off.
    let (status, text) = poll.await.expect("poll task");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"Messages\":[]"), "{text}");
    // The agent was told its channel closed, and comes back when the server does.
    assert!(eventually(10, || async { agent.log().contains("the control channel closed") }).await, "{}", agent.log());
    let server = TestServer::start(&data, opts).expect("restart");
    assert!(eventually(30, || async { channel_opens(&server, &agent.instance_id) >= 2 }).await, "{}", agent.log());
}
