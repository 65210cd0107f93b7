//! Run Command end to end: real `corral-agent` processes receive jobs over the control
//! channel, run real shell commands and report back; the AWS SDK for Rust drives SendCommand
//! and reads the results as a user would.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{Command, CommandInvocation, ResourceTypeForTagging, Tag, Target};
use common::*;

const TERMINAL: &[&str] = &["Success", "Failed", "TimedOut", "Cancelled"];

/// A server with `n` running agents, tagged `env=<tags[i]>`; returns their instance IDs too.
async fn fleet(dir: &std::path::Path, server: &TestServer, tags: &[&str]) -> Vec<TestAgent> {
    server.create_instance_role("RunRole").await;
    let (id, code) = server.create_activation("RunRole", tags.len() as i32, Some("box"), &[]).await;
    let mut agents = Vec::new();
    for (i, env) in tags.iter().enumerate() {
        let mut agent = TestAgent::register(server, &dir.join(format!("agent{i}")), &id, &code).expect("register");
        server
            .ssm()
            .add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::ManagedInstance)
            .resource_id(&agent.instance_id)
            .tags(Tag::builder().key("env").value(*env).build().expect("tag"))
            .send()
            .await
            .expect("tag");
        agent.run(60);
        agents.push(agent);
    }
    for a in &agents {
        assert!(connected(server, a).await, "agent {} did not open its control channel:\n{}", a.instance_id, a.log());
    }
    agents
}

/// Waits until the server log says the agent's control channel is open.
async fn connected(server: &TestServer, agent: &TestAgent) -> bool {
    let needle = format!("control channel open instance_id={}", agent.instance_id);
    eventually(30, || async { server.log().contains(&needle) }).await
}

fn commands(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

async fn command(server: &TestServer, id: &str) -> Command {
    let out = server.ssm().list_commands().command_id(id).send().await.expect("ListCommands");
    out.commands().first().cloned().expect("the command is listed")
}

/// Polls until the command is terminal; returns it.
async fn wait_done(server: &TestServer, id: &str, secs: u64) -> Command {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = command(server, id).await;
        let status = c.status().map(|s| s.as_str().to_string()).unwrap_or_default();
        if TERMINAL.contains(&status.as_str()) {
            return c;
        }
        assert!(Instant::now() < deadline, "command {id} still {status} after {secs} s:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn invocations(server: &TestServer, id: &str) -> Vec<CommandInvocation> {
    let out = server
        .ssm()
        .list_command_invocations()
        .command_id(id)
        .details(true)
        .send()
        .await
        .expect("ListCommandInvocations");
    out.command_invocations().to_vec()
}

fn status_of(i: &CommandInvocation) -> (String, String) {
    (i.status().map(|s| s.as_str().to_string()).unwrap_or_default(), i.status_details().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_on_real_agents_by_id_and_by_tag_under_rate_controls() {
    let (dir, server) = TestServer::start_fresh();
    let agents = fleet(dir.path(), &server, &["lab", "lab", "prod"]).await;
    let ssm = server.ssm();

    // By ID: stdout, stderr and the exit code come back; every read right after SendCommand
    // already finds the invocation.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .parameters("commands", commands(&["echo hello from $(hostname)", "echo oops >&2", "exit 3"]))
        .comment("exit code test")
        .send()
        .await
        .expect("SendCommand");
    let c = sent.command().expect("command");
    let id = c.command_id().expect("id").to_string();
    assert_eq!(c.status().map(|s| s.as_str()), Some("Pending"));
    assert_eq!(c.target_count(), 1);
    assert_eq!(c.max_concurrency(), Some("50"));
    assert_eq!(c.max_errors(), Some("0"));
    assert_eq!(c.document_version(), Some("$DEFAULT"));
    let early = ssm.get_command_invocation().command_id(&id).instance_id(&agents[0].instance_id).send().await;
    assert!(early.is_ok(), "GetCommandInvocation right after SendCommand: {early:?}");
    let done = wait_done(&server, &id, 60).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Failed"));
    assert_eq!((done.completed_count(), done.error_count()), (1, 1));
    let inv =
        ssm.get_command_invocation().command_id(&id).instance_id(&agents[0].instance_id).send().await.expect("get");
    assert_eq!(inv.response_code(), 3);
    assert_eq!(inv.status().map(|s| s.as_str()), Some("Failed"));
    assert!(inv.standard_output_content().unwrap_or_default().contains("hello from"), "{inv:?}");
    assert_eq!(inv.standard_error_content().map(str::trim), Some("oops"));
    assert_eq!(inv.plugin_name(), Some("aws:runShellScript"));
    assert!(inv.execution_elapsed_time().is_some_and(|t| t.starts_with("PT")), "{inv:?}");
    assert!(inv.execution_start_date_time().is_some_and(|t| t.ends_with('Z')), "{inv:?}");
    let listed = invocations(&server, &id).await;
    assert_eq!(listed.len(), 1);
    let plugins = listed[0].command_plugins();
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0].response_code(), 3);
    assert!(plugins[0].output().unwrap_or_default().contains("----------ERROR-------"), "{plugins:?}");

    // Long output: the API cuts it where AWS does; Corral's extension returns all of it.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .parameters(
            "commands",
            commands(&["head -c 30000 /dev/zero | tr '\\0' a", "head -c 9000 /dev/zero | tr '\\0' b >&2"]),
        )
        .send()
        .await
        .expect("SendCommand long output");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert_eq!(wait_done(&server, &id, 60).await.status().map(|s| s.as_str()), Some("Success"));
    let inv =
        ssm.get_command_invocation().command_id(&id).instance_id(&agents[0].instance_id).send().await.expect("get");
    assert_eq!(inv.standard_output_content().map(str::len), Some(24_000));
    assert_eq!(inv.standard_error_content().map(str::len), Some(8_000));
    let full = full_output(&server, &id, &agents[0].instance_id, "stdout").await;
    assert_eq!((full.0, full.1.len()), (200, 30_000), "{}", &full.1[..full.1.len().min(300)]);
    assert!(full.1.bytes().all(|b| b == b'a'));
    let full = full_output(&server, &id, &agents[0].instance_id, "stderr").await;
    assert_eq!((full.0, full.1.len()), (200, 9_000));
    let missing = full_output(&server, &id, "mi-00000000000000000", "stdout").await;
    assert_eq!(missing.0, 400);
    assert!(missing.1.contains("InvocationDoesNotExist"), "{}", missing.1);
    // Unsigned: refused, and the refusal is in the trail with the reads.
    let unsigned = server
        .http()
        .get(format!("{}/corral/v1/commands/{id}/invocations/{}/output", server.endpoint, agents[0].instance_id))
        .send()
        .await
        .expect("unsigned GET");
    assert_eq!(unsigned.status().as_u16(), 403);
    assert!(unsigned.text().await.unwrap_or_default().contains("MissingAuthenticationToken"));
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("operation=\"GetCommandInvocationOutput\"")
            && l.contains("MissingAuthenticationToken")
            && l.contains("reason=")),
        "the refused extension call has its log line:\n{log}"
    );
    let (key, secret) = server.admin_credentials();
    let lookup = RawRequest::json(
        &server,
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
        r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"GetCommandInvocationOutput"}]}"#,
    )
    .sign(&key, &secret, None, "cloudtrail", time::OffsetDateTime::now_utc())
    .send(&server)
    .await;
    let events: serde_json::Value = serde_json::from_str(&lookup.text).expect("LookupEvents json");
    let records: Vec<serde_json::Value> = events["Events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str()?).ok())
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");
    assert!(records.iter().any(|r| r["errorCode"] == "MissingAuthenticationTokenException"), "{records:?}");
    assert!(records.iter().any(|r| r["errorCode"] == "InvocationDoesNotExist"), "{records:?}");

    // A document of your own, YAML, two steps and a parameter with a default: each step's
    // result is read by its name.
    let yaml = "schemaVersion: '2.2'\ndescription: two steps\nparameters:\n  who:\n    type: String\n    default: world\n    allowedPattern: '^[a-z]+$'\nmainSteps:\n  - action: aws:runShellScript\n    name: greet\n    inputs:\n      runCommand:\n        - echo hello {{ who }}\n  - action: aws:runShellScript\n    name: fail\n    inputs:\n      runCommand:\n        - echo second\n        - exit 2\n";
    ssm.create_document()
        .name("TwoSteps")
        .content(yaml)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Yaml)
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .send()
        .await
        .expect("CreateDocument");
    let bad = ssm
        .send_command()
        .document_name("TwoSteps")
        .instance_ids(&agents[0].instance_id)
        .parameters("who", commands(&["Bad Value"]))
        .send()
        .await;
    assert_eq!(bad.err().and_then(|e| e.code().map(str::to_string)).as_deref(), Some("InvalidParameters"));
    let sent = ssm
        .send_command()
        .document_name("TwoSteps")
        .instance_ids(&agents[0].instance_id)
        .parameters("who", commands(&["corral"]))
        .send()
        .await
        .expect("SendCommand TwoSteps");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert_eq!(wait_done(&server, &id, 60).await.status().map(|s| s.as_str()), Some("Failed"));
    let get = |step: Option<&str>| {
        ssm.get_command_invocation()
            .command_id(&id)
            .instance_id(&agents[0].instance_id)
            .set_plugin_name(step.map(str::to_string))
            .send()
    };
    assert_eq!(get(None).await.err().and_then(|e| e.code().map(str::to_string)).as_deref(), Some("InvalidPluginName"));
    let greet = get(Some("greet")).await.expect("greet");
    assert_eq!(greet.standard_output_content(), Some("hello corral\n"));
    assert_eq!(greet.status().map(|s| s.as_str()), Some("Success"));
    let fail = get(Some("fail")).await.expect("fail");
    assert_eq!((fail.response_code(), fail.status().map(|s| s.as_str())), (2, Some("Failed")));
    assert_eq!(
        get(Some("nope")).await.err().and_then(|e| e.code().map(str::to_string)).as_deref(),
        Some("InvalidPluginName")
    );
    let plugins: Vec<String> = invocations(&server, &id).await[0]
        .command_plugins()
        .iter()
        .filter_map(|p| p.name().map(str::to_string))
        .collect();
    assert_eq!(plugins, ["greet", "fail"]);

    // By tag: only the two lab machines run it.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .targets(Target::builder().key("tag:env").values("lab").build())
        .parameters("commands", commands(&["echo tagged"]))
        .send()
        .await
        .expect("SendCommand by tag");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert_eq!(sent.command().map(|c| c.target_count()), Some(2));
    let done = wait_done(&server, &id, 60).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Success"), "{done:?}");
    let mut ran: Vec<String> =
        invocations(&server, &id).await.iter().filter_map(|i| i.instance_id().map(str::to_string)).collect();
    ran.sort();
    let mut lab = vec![agents[0].instance_id.clone(), agents[1].instance_id.clone()];
    lab.sort();
    assert_eq!(ran, lab);
    for i in invocations(&server, &id).await {
        assert_eq!(status_of(&i), ("Success".into(), "Success".into()));
        assert_eq!(i.command_plugins()[0].output().map(str::trim), Some("tagged"));
    }

    // MaxConcurrency 1: the two runs do not overlap.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .targets(Target::builder().key("tag:env").values("lab").build())
        .parameters("commands", commands(&["date +%s%N", "sleep 1", "date +%s%N"]))
        .max_concurrency("1")
        .send()
        .await
        .expect("SendCommand max-concurrency 1");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert_eq!(wait_done(&server, &id, 60).await.status().map(|s| s.as_str()), Some("Success"));
    let mut spans = Vec::new();
    for a in &agents[..2] {
        let inv = ssm.get_command_invocation().command_id(&id).instance_id(&a.instance_id).send().await.expect("get");
        let nums: Vec<u128> =
            inv.standard_output_content().unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
        assert_eq!(nums.len(), 2, "{inv:?}");
        spans.push((nums[0], nums[1]));
    }
    spans.sort();
    assert!(spans[0].1 <= spans[1].0, "the invocations overlapped under MaxConcurrency 1: {spans:?}");

    // MaxErrors 0, one at a time, every run fails: the first failure stops the rest.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .instance_ids(&agents[1].instance_id)
        .instance_ids(&agents[2].instance_id)
        .parameters("commands", commands(&["exit 1"]))
        .max_concurrency("1")
        .max_errors("0")
        .send()
        .await
        .expect("SendCommand max-errors");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    let done = wait_done(&server, &id, 60).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Failed"));
    assert_eq!((done.target_count(), done.completed_count(), done.error_count()), (3, 3, 1));
    let states: Vec<(String, String)> = invocations(&server, &id).await.iter().map(status_of).collect();
    assert_eq!(states.iter().filter(|s| s.0 == "Failed").count(), 1, "{states:?}");
    assert_eq!(states.iter().filter(|s| s.1 == "Terminated").count(), 2, "{states:?}");

    // Listing: newest first, with filters.
    let all = ssm.list_commands().send().await.expect("list");
    assert_eq!(all.commands().len(), 6);
    assert_eq!(all.commands()[0].command_id(), Some(id.as_str()));
    let failed = ssm
        .list_commands()
        .filters(aws_sdk_ssm::types::CommandFilter::builder().key("Status".into()).value("Failed").build().expect("f"))
        .send()
        .await
        .expect("list failed");
    assert_eq!(failed.commands().len(), 3);
    let page = ssm.list_commands().max_results(3).send().await.expect("page");
    assert_eq!(page.commands().len(), 3);
    let rest =
        ssm.list_commands().max_results(3).next_token(page.next_token().expect("token")).send().await.expect("rest");
    assert_eq!(rest.commands().len(), 3);
    assert!(rest.next_token().is_none());
    let by_instance = ssm.list_commands().instance_id(&agents[2].instance_id).send().await.expect("by instance");
    assert_eq!(by_instance.commands().len(), 1);
    drop(agents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_timeout_cancel_and_delivery_timeout() {
    let (dir, server) = TestServer::start_fresh();
    let mut agents = fleet(dir.path(), &server, &["a", "b"]).await;
    let ssm = server.ssm();

    // executionTimeout: the agent kills the script and reports TimedOut.
    let started = Instant::now();
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .parameters("commands", commands(&["sleep 30"]))
        .parameters("executionTimeout", commands(&["2"]))
        .send()
        .await
        .expect("SendCommand");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    let done = wait_done(&server, &id, 25).await;
    assert!(started.elapsed() < Duration::from_secs(25));
    let inv = &invocations(&server, &id).await[0];
    assert_eq!(status_of(inv), ("TimedOut".into(), "Execution Timed Out".into()));
    assert_eq!(done.status().map(|s| s.as_str()), Some("TimedOut"));

    // Cancel reaches the running script and ends it.
    let pid_file = dir.path().join("sleeper.pid");
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .parameters("commands", commands(&[&format!("echo $$ > {}", pid_file.display()), "sleep 120"]))
        .send()
        .await
        .expect("SendCommand");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert!(eventually(30, || async { pid_file.exists() }).await, "the script started");
    ssm.cancel_command().command_id(&id).send().await.expect("CancelCommand");
    let done = wait_done(&server, &id, 30).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Cancelled"), "{done:?}");
    assert_eq!(status_of(&invocations(&server, &id).await[0]), ("Cancelled".into(), "Cancelled".into()));
    let pid = std::fs::read_to_string(&pid_file).expect("pid").trim().to_string();
    assert!(
        eventually(10, || async { !std::path::Path::new(&format!("/proc/{pid}")).exists() }).await,
        "the cancelled script (pid {pid}) is still running"
    );
    // Cancelling a finished command changes nothing.
    ssm.cancel_command().command_id(&id).send().await.expect("cancel again");
    assert_eq!(command(&server, &id).await.status().map(|s| s.as_str()), Some("Cancelled"));

    // Cancelling some instances leaves the others running.
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .instance_ids(&agents[1].instance_id)
        .parameters("commands", commands(&["sleep 60"]))
        .send()
        .await
        .expect("SendCommand to both");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert!(
        eventually(30, || async { invocations(&server, &id).await.iter().all(|i| status_of(i).0 == "InProgress") })
            .await,
        "both started"
    );
    ssm.cancel_command().command_id(&id).instance_ids(&agents[0].instance_id).send().await.expect("cancel one");
    let one_cancelled = || async {
        let inv = ssm.get_command_invocation().command_id(&id).instance_id(&agents[0].instance_id).send().await;
        inv.is_ok_and(|i| i.status().map(|s| s.as_str()) == Some("Cancelled"))
    };
    assert!(eventually(30, one_cancelled).await, "the named instance's run is cancelled");
    let other =
        ssm.get_command_invocation().command_id(&id).instance_id(&agents[1].instance_id).send().await.expect("get");
    assert_eq!(other.status().map(|s| s.as_str()), Some("InProgress"), "the other keeps running");
    assert_eq!(command(&server, &id).await.status().map(|s| s.as_str()), Some("InProgress"));
    ssm.cancel_command().command_id(&id).send().await.expect("cancel the rest");
    assert_eq!(wait_done(&server, &id, 30).await.status().map(|s| s.as_str()), Some("Cancelled"));

    // A stopped agent: the command waits, then times out undelivered.
    agents[1].kill();
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[1].instance_id)
        .parameters("commands", commands(&["echo never"]))
        .timeout_seconds(30)
        .send()
        .await
        .expect("SendCommand to a stopped agent");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status_of(&invocations(&server, &id).await[0]).0, "Pending");
    let done = wait_done(&server, &id, 60).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("TimedOut"));
    assert_eq!(done.delivery_timed_out_count(), 1);
    assert_eq!(done.error_count(), 0);
    assert_eq!(status_of(&invocations(&server, &id).await[0]), ("TimedOut".into(), "Delivery Timed Out".into()));
}

/// The AWS error code of a failed call ("succeeded" when it did not fail).
fn err<T, E: ProvideErrorMetadata, R>(r: Result<T, aws_sdk_ssm::error::SdkError<E, R>>) -> String {
    match r {
        Ok(_) => "succeeded".to_string(),
        Err(e) => e.code().unwrap_or("?").to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sends_are_refused_with_aws_errors_and_create_nothing() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("RunRole").await;
    let (act, code) = server.create_activation("RunRole", 2, None, &[]).await;
    let machine = MachineIdentity::generate();
    let inst = register_and_get_token(&server, &act, &code, &machine).await;
    let ssm = server.ssm();
    let base = || ssm.send_command().document_name("AWS-RunShellScript").parameters("commands", commands(&["true"]));

    let e =
        err(ssm.send_command().document_name("No-Such-Doc").instance_ids(&inst.instance_id).send().await.map(|_| ()));
    assert_eq!(e, "InvalidDocument");
    let e = err(base().document_version("7").instance_ids(&inst.instance_id).send().await.map(|_| ()));
    assert_eq!(e, "InvalidDocumentVersion");
    let e = err(ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("nope", commands(&["x"]))
        .send()
        .await
        .map(|_| ()));
    assert_eq!(e, "InvalidParameters");
    let e = err(ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .send()
        .await
        .map(|_| ()));
    assert_eq!(e, "InvalidParameters", "commands is required");
    let mut many = base();
    for i in 0..51 {
        many = many.instance_ids(format!("mi-{i:017x}"));
    }
    assert_eq!(err(many.send().await.map(|_| ())), "ValidationException");
    assert_eq!(err(base().instance_ids("mi-00000000000000000").send().await.map(|_| ())), "InvalidInstanceId");
    assert_eq!(
        err(base().instance_ids(&inst.instance_id).instance_ids(&inst.instance_id).send().await.map(|_| ())),
        "DuplicateInstanceId"
    );
    assert_eq!(
        err(base().instance_ids(&inst.instance_id).max_concurrency("0").send().await.map(|_| ())),
        "ValidationException"
    );
    assert_eq!(
        err(base().instance_ids(&inst.instance_id).max_errors("101%").send().await.map(|_| ())),
        "ValidationException"
    );
    assert_eq!(err(base().send().await.map(|_| ())), "ValidationException", "no targets at all");
    assert_eq!(
        err(base().targets(Target::builder().key("resource-groups:Name").values("x").build()).send().await.map(|_| ())),
        "ValidationException"
    );
    assert_eq!(
        err(ssm.cancel_command().command_id("11111111-2222-3333-4444-555555555555").send().await.map(|_| ())),
        "InvalidCommandId"
    );
    assert_eq!(
        err(ssm
            .get_command_invocation()
            .command_id("11111111-2222-3333-4444-555555555555")
            .instance_id(&inst.instance_id)
            .send()
            .await
            .map(|_| ())),
        "InvalidCommandId"
    );
    // Nothing was half-created.
    assert!(ssm.list_commands().send().await.expect("list").commands().is_empty());
    assert!(ssm.list_command_invocations().send().await.expect("list").command_invocations().is_empty());

    // A deregistered instance is refused too.
    ssm.deregister_managed_instance().instance_id(&inst.instance_id).send().await.expect("deregister");
    assert_eq!(err(base().instance_ids(&inst.instance_id).send().await.map(|_| ())), "InvalidInstanceId");
    // Tag targets that match nothing make a command with no invocations, finished at once.
    let sent = base().targets(Target::builder().key("tag:env").values("nowhere").build()).send().await.expect("send");
    assert_eq!(sent.command().map(|c| c.target_count()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_crash_and_server_restart_leave_no_invocation_stuck_or_run_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let options = StartOptions { args: vec!["--listen".into(), format!("127.0.0.1:{port}")], env: vec![] };
    let server = TestServer::start(dir.path(), options.clone()).expect("start");
    let mut agents = fleet(dir.path(), &server, &["x", "y", "z"]).await;
    let ssm = server.ssm();

    // The agent is killed mid-command and comes back: the invocation ends Failed, not stuck.
    let started = dir.path().join("long-job-started");
    let sent = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&agents[0].instance_id)
        .parameters("commands", commands(&[&format!("touch {}", started.display()), "sleep 20"]))
        .send()
        .await
        .expect("send");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert!(eventually(30, || async { started.exists() }).await, "the job started");
    agents[0].kill();
    agents[0].run(60);
    let done = wait_done(&server, &id, 60).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Failed"), "{:?}", invocations(&server, &id).await);

    // The server restarts mid-fan-out: each machine appends one line to its own file; every
    // invocation still finishes and no file has two lines.
    // The server restarts mid-fan-out: every machine appends a line to one shared file; every
    // invocation still finishes and the file has exactly one line per machine.
    let mut builder = ssm.send_command().document_name("AWS-RunShellScript").max_concurrency("1");
    for a in &agents {
        builder = builder.instance_ids(&a.instance_id);
    }
    let sent = builder
        .parameters("commands", commands(&[&format!("sleep 2; echo ran >> {}/ran.log", dir.path().display())]))
        .send()
        .await
        .expect("send");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    assert!(
        eventually(30, || async { invocations(&server, &id).await.iter().any(|i| status_of(i).0 == "InProgress") })
            .await
    );
    server.kill9();
    let server = TestServer::start(dir.path(), options).expect("restart");
    let done = wait_done(&server, &id, 90).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Success"), "{:?}", invocations(&server, &id).await);
    let runs = std::fs::read_to_string(dir.path().join("ran.log")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 3, "each of the three machines ran it exactly once: {runs:?}");
    drop(agents);
}

/// An ec2messages call signed with the instance's role credentials, as the SSM agent sends it.
async fn mds(server: &TestServer, inst: &RegisteredInstance, op: &str, body: serde_json::Value) -> RawResponse {
    RawRequest::json(server, &format!("EC2WindowsMessageDeliveryService.{op}"), &body.to_string())
        .sign(
            &inst.access_key_id,
            &inst.secret_access_key,
            Some(&inst.session_token),
            "ec2messages",
            time::OffsetDateTime::now_utc(),
        )
        .send(server)
        .await
}

fn reply(status: &str, plugin: Option<(&str, i64)>) -> String {
    let runtime = plugin.map(|(out, code)| {
        serde_json::json!({"aws:runShellScript": {"status": status, "code": code, "name": "aws:runShellScript",
            "output": out, "standardOutput": out, "standardError": "", "startDateTime": "2026-01-01T00:00:00.000Z",
            "endDateTime": "2026-01-01T00:00:01.250Z"}})
    });
    serde_json::json!({"additionalInfo": {"agent": {"name": "amazon-ssm-agent", "os": "linux"}, "dateTime": "2026-01-01T00:00:01.250Z"},
        "documentStatus": status, "documentTraceOutput": "", "runtimeStatus": runtime})
    .to_string()
}

/// Speaks ec2messages exactly as amazon-ssm-agent does when it has no control channel: a held
/// GetMessages returns as soon as a command is sent, an unacknowledged message comes back,
/// replies land, and nobody reads or answers another instance's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_a_websocket_gets_jobs_by_long_poll() {
    let (_dir, server) = TestServer::start_fresh();
    server.create_instance_role("RunRole").await;
    let (act, code) = server.create_activation("RunRole", 2, None, &[]).await;
    let inst = register_and_get_token(&server, &act, &code, &MachineIdentity::generate()).await;
    let other = register_and_get_token(&server, &act, &code, &MachineIdentity::generate()).await;
    let poll_body = |dest: &str| serde_json::json!({"Destination": dest, "MessagesRequestId": "0f6e3d0c-1111-4222-8333-444455556666", "VisibilityTimeoutInSeconds": 10});

    // An empty poll is held, then answered with no messages (the agent's HTTP timeout is 20 s).
    let started = Instant::now();
    let empty = mds(&server, &inst, "GetMessages", poll_body(&inst.instance_id)).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert!(started.elapsed() >= Duration::from_secs(10) && started.elapsed() < Duration::from_secs(20));
    let v: serde_json::Value = serde_json::from_str(&empty.text).expect("json");
    assert_eq!(v["Messages"], serde_json::json!([]));

    // A held poll returns as soon as the command is sent.
    let held = {
        let body = poll_body(&inst.instance_id);
        let inst2 = RegisteredInstance {
            instance_id: inst.instance_id.clone(),
            access_key_id: inst.access_key_id.clone(),
            secret_access_key: inst.secret_access_key.clone(),
            session_token: inst.session_token.clone(),
        };
        let req = RawRequest::json(&server, "EC2WindowsMessageDeliveryService.GetMessages", &body.to_string()).sign(
            &inst2.access_key_id,
            &inst2.secret_access_key,
            Some(&inst2.session_token),
            "ec2messages",
            time::OffsetDateTime::now_utc(),
        );
        let http = server.http();
        let url = format!("{}/", server.endpoint);
        tokio::spawn(async move {
            let mut r = http.post(url).body(req.body);
            for (k, v) in req.headers.iter() {
                if k != "host" {
                    r = r.header(k.as_str(), v.as_bytes());
                }
            }
            let resp = r.send().await.expect("poll");
            (Instant::now(), resp.text().await.unwrap_or_default())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = server
        .ssm()
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("commands", commands(&["echo polled"]))
        .send()
        .await
        .expect("send");
    let sent_at = Instant::now();
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    let (got_at, text) = held.await.expect("poll task");
    assert!(got_at.duration_since(sent_at) < Duration::from_secs(5), "the held poll was not answered at once");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let msg = &v["Messages"][0];
    let message_id = format!("aws.ssm.{id}.{}", inst.instance_id);
    assert_eq!(msg["MessageId"], serde_json::json!(message_id));
    assert_eq!(msg["Destination"], serde_json::json!(inst.instance_id));
    assert!(msg["Topic"].as_str().is_some_and(|t| t.starts_with("aws.ssm.sendCommand")));
    assert!(msg["CreatedDate"].as_str().is_some_and(|d| d.len() >= 24));
    let payload_text = msg["Payload"].as_str().expect("payload");
    use sha2::Digest;
    assert_eq!(msg["PayloadDigest"].as_str(), Some(hex_lower(&sha2::Sha256::digest(payload_text.as_bytes())).as_str()));
    let payload: serde_json::Value = serde_json::from_str(payload_text).expect("payload json");
    assert_eq!(payload["CommandId"], serde_json::json!(id));
    assert!(payload["DocumentContent"].is_object(), "DocumentContent is a JSON object");
    assert_eq!(payload["Parameters"]["commands"], serde_json::json!(["echo polled"]));

    // Another instance can neither poll for it nor answer it.
    let r = mds(&server, &other, "GetMessages", poll_body(&inst.instance_id)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code().as_deref(), Some("AuthorizationFailureException"));
    let r = mds(&server, &other, "AcknowledgeMessage", serde_json::json!({"MessageId": message_id})).await;
    assert_eq!(r.error_code().as_deref(), Some("InvalidMessageIdException"));

    // Not acknowledged: it comes back on a later poll.
    let again = mds(&server, &inst, "GetMessages", poll_body(&inst.instance_id)).await;
    let v: serde_json::Value = serde_json::from_str(&again.text).expect("json");
    let redelivered = if v["Messages"].as_array().is_some_and(|m| !m.is_empty()) {
        v
    } else {
        let mut found = serde_json::Value::Null;
        for _ in 0..4 {
            let r = mds(&server, &inst, "GetMessages", poll_body(&inst.instance_id)).await;
            let v: serde_json::Value = serde_json::from_str(&r.text).expect("json");
            if v["Messages"].as_array().is_some_and(|m| !m.is_empty()) {
                found = v;
                break;
            }
        }
        found
    };
    assert_eq!(redelivered["Messages"][0]["MessageId"], serde_json::json!(message_id), "redelivered");

    // The agent's sequence: InProgress reply, acknowledgement, then the result.
    let r = mds(&server, &inst, "SendReply", serde_json::json!({"MessageId": message_id, "ReplyId": "9d6c1f7e-0000-4000-8000-000000000001", "Payload": reply("InProgress", None)})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = mds(&server, &inst, "AcknowledgeMessage", serde_json::json!({"MessageId": message_id})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(status_of(&invocations(&server, &id).await[0]).0, "InProgress");
    let r = mds(&server, &inst, "SendReply", serde_json::json!({"MessageId": message_id, "ReplyId": "9d6c1f7e-0000-4000-8000-000000000002", "Payload": reply("Success", Some(("polled\n", 0)))})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let done = wait_done(&server, &id, 10).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Success"));
    let inv =
        server.ssm().get_command_invocation().command_id(&id).instance_id(&inst.instance_id).send().await.expect("get");
    assert_eq!(inv.standard_output_content(), Some("polled\n"));
    assert_eq!(inv.response_code(), 0);
    assert_eq!(inv.execution_elapsed_time(), Some("PT1.25S"));

    // FailMessage: the agent cannot handle a job; the invocation fails.
    let sent = server
        .ssm()
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids(&inst.instance_id)
        .parameters("commands", commands(&["echo unhandled"]))
        .send()
        .await
        .expect("send");
    let id = sent.command().and_then(|c| c.command_id()).expect("id").to_string();
    let got = mds(&server, &inst, "GetMessages", poll_body(&inst.instance_id)).await;
    assert!(got.text.contains(&id), "{}", got.text);
    let message_id = format!("aws.ssm.{id}.{}", inst.instance_id);
    let r = mds(
        &server,
        &inst,
        "FailMessage",
        serde_json::json!({"MessageId": message_id, "FailureType": "InternalHandlerException"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let done = wait_done(&server, &id, 10).await;
    assert_eq!(done.status().map(|s| s.as_str()), Some("Failed"));

    // Admin credentials are not an instance.
    let (key, secret) = server.admin_credentials();
    let r = RawRequest::json(
        &server,
        "EC2WindowsMessageDeliveryService.GetMessages",
        &poll_body(&inst.instance_id).to_string(),
    )
    .sign(&key, &secret, None, "ec2messages", time::OffsetDateTime::now_utc())
    .send(&server)
    .await;
    assert_eq!(r.error_code().as_deref(), Some("AuthorizationFailureException"));
}

/// Corral's extension: the complete output of an invocation, fetched with a SigV4-signed GET.
async fn full_output(server: &TestServer, command_id: &str, instance_id: &str, stream: &str) -> (u16, String) {
    let (key, secret) = server.admin_credentials();
    let path = format!("/corral/v1/commands/{command_id}/invocations/{instance_id}/output");
    let query = format!("stream={stream}");
    let mut headers = http::HeaderMap::new();
    headers.insert("host", server.host.parse().expect("host"));
    let creds = corral_wire::sigv4::Credentials { access_key_id: key, secret_access_key: secret, session_token: None };
    corral_wire::sigv4::sign_request(
        "GET",
        &path,
        &query,
        &mut headers,
        b"",
        &creds,
        "us-east-1",
        "ssm",
        time::OffsetDateTime::now_utc(),
    )
    .expect("sign");
    let mut req = server.http().get(format!("{}{path}?{query}", server.endpoint));
    for (k, v) in headers.iter() {
        if k != "host" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = req.send().await.expect("GET output");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
