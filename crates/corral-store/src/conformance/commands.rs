//! Conformance cases for Run Command: commands created with their invocations, the
//! compare-and-set on invocations with plugin upserts, listings (order, paging, filters),
//! status counts, the scheduler's active lists, cancellation, isolation and audit records.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::{at, bootstrapped, Target, ACCOUNT_A, ACCOUNT_B};
use crate::{
    with_audit_slot, AuditSlot, Command, CommandFilter, CommandInvocation, InvocationStatusCount, InvocationUpdate,
    PluginResult, SecretKey, Store, StoreError,
};

// === sample data ===

const REGION: &str = "us-east-1";
const OTHER_REGION: &str = "eu-west-1";
/// Requested-at base of the sample commands (ms since the epoch).
const T0: i64 = 1_760_000_000_000;

fn command_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn command(account_id: &str, region: &str, id: &str, requested_ms: i64, instance_ids: &[&str]) -> Command {
    Command {
        account_id: account_id.into(),
        region: region.into(),
        command_id: id.into(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "$DEFAULT".into(),
        comment: String::new(),
        parameters_json: r#"{"commands":["uptime"]}"#.into(),
        instance_ids: instance_ids.iter().map(|s| s.to_string()).collect(),
        targets_json: "[]".into(),
        payload_json: r#"{"DocumentName":"AWS-RunShellScript"}"#.into(),
        requested_at: at(requested_ms),
        timeout_seconds: 3600,
        execution_timeout_seconds: 3600,
        max_concurrency: "50".into(),
        max_errors: "0".into(),
        service_role: String::new(),
        output_s3_bucket: String::new(),
        output_s3_prefix: String::new(),
        requested_by: format!("arn:aws:iam::{account_id}:user/admin"),
        cancel_requested: false,
        active: true,
    }
}

fn invocation(cmd: &Command, instance_id: &str) -> CommandInvocation {
    CommandInvocation {
        account_id: cmd.account_id.clone(),
        region: cmd.region.clone(),
        command_id: cmd.command_id.clone(),
        instance_id: instance_id.into(),
        instance_name: format!("host-{instance_id}"),
        requested_at: cmd.requested_at,
        status: "Pending".into(),
        status_details: "Pending".into(),
        dispatched_at: None,
        acked_at: None,
        started_at: None,
        finished_at: None,
        response_code: -1,
        trace_output: String::new(),
        delivery_attempts: 0,
        plugins: Vec::new(),
    }
}

fn invocations(cmd: &Command) -> Vec<CommandInvocation> {
    cmd.instance_ids.iter().map(|id| invocation(cmd, id)).collect()
}

fn plugin(name: &str, status: &str, output: &str) -> PluginResult {
    PluginResult {
        name: name.into(),
        status: status.into(),
        status_details: status.into(),
        response_code: if status == "Success" { 0 } else { -1 },
        started_at: Some(at(T0 + 5_000)),
        finished_at: None,
        output: output.into(),
        stdout: output.into(),
        stderr: String::new(),
    }
}

/// An update to `status` (with details of the same name) that changes nothing else.
fn to_status(status: &str) -> InvocationUpdate {
    InvocationUpdate { status: status.into(), status_details: status.into(), ..InvocationUpdate::default() }
}

async fn fresh(target: &Target) -> Arc<dyn Store> {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&super::account(ACCOUNT_B)).await.expect("account B");
    store
}

/// Creates `cmd` with one pending invocation per instance id; returns the invocations.
async fn send(store: &dyn Store, cmd: &Command) -> Vec<CommandInvocation> {
    let invs = invocations(cmd);
    store.create_command(cmd, &invs).await.expect("create command");
    invs
}

fn ids(commands: &[Command]) -> Vec<String> {
    commands.iter().map(|c| c.command_id.clone()).collect()
}

fn keys(invocations: &[CommandInvocation]) -> Vec<(String, String)> {
    invocations.iter().map(|i| (i.command_id.clone(), i.instance_id.clone())).collect()
}

/// Every page of `list_commands`, `page` at a time, following the cursor; checks page sizes.
async fn all_command_pages(store: &dyn Store, filter: &CommandFilter, page: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<(OffsetDateTime, String)> = None;
    loop {
        let got = store.list_commands(ACCOUNT_A, REGION, filter, after.clone(), page).await.expect("list commands");
        assert!(got.len() <= page);
        let Some(last) = got.last() else { break };
        after = Some((last.requested_at, last.command_id.clone()));
        seen.extend(ids(&got));
        assert!(seen.len() <= 1000, "paging does not end");
    }
    seen
}

/// Every page of `list_invocations`, `page` at a time, following the cursor.
async fn all_invocation_pages(store: &dyn Store, filter: &CommandFilter, page: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut after: Option<(OffsetDateTime, String, String)> = None;
    loop {
        let got = store
            .list_invocations(ACCOUNT_A, REGION, filter, after.clone(), page, false)
            .await
            .expect("list invocations");
        assert!(got.len() <= page);
        let Some(last) = got.last() else { break };
        after = Some((last.requested_at, last.command_id.clone(), last.instance_id.clone()));
        seen.extend(keys(&got));
        assert!(seen.len() <= 1000, "paging does not end");
    }
    seen
}

/// Multi-line, non-ASCII, quote- and backslash-laden text of at least `bytes` bytes.
fn big_output(bytes: usize) -> String {
    let line =
        "ligne \u{e9}t\u{e9} \u{1F680} \u{65E5}\u{672C} \"double\" 'single' `tick` \\ back\\slash \t tab ; -- %_\r\n";
    let mut out = String::new();
    let mut n = 0;
    while out.len() < bytes {
        out.push_str(&format!("{n:06} {line}"));
        n += 1;
    }
    out
}

// === cases ===

/// A command is created with its invocations (and plugin results) in one transaction: the
/// command, every invocation and every plugin read back exactly right after (times truncated
/// to the millisecond, `None` times kept), a duplicate id or invalid input changes nothing.
pub async fn commands_create_and_read_back(target: &Target) {
    let store = fresh(target).await;
    let id = command_id();
    let instances = ["mi-0000000000000000a", "mi-0000000000000000b", "mi-0000000000000000c"];
    let mut cmd = command(ACCOUNT_A, REGION, &id, T0, &instances);
    // Sub-millisecond parts are dropped on write.
    cmd.requested_at = at(T0) + Duration::microseconds(750);
    cmd.comment = "restart \"web\" \u{2014} caf\u{e9} 'now'\nsecond line".into();
    cmd.parameters_json = r#"{"commands":["echo \"hi\" && ls -la /tmp | grep 'x'"]}"#.into();
    cmd.service_role = "arn:aws:iam::111111111111:role/notify".into();
    cmd.output_s3_bucket = "bucket".into();
    cmd.output_s3_prefix = "prefix/".into();
    cmd.cancel_requested = false;
    let output = big_output(100 * 1024);
    let mut invs = invocations(&cmd);
    invs[1].status = "InProgress".into();
    invs[1].status_details = "In Progress".into();
    invs[1].dispatched_at = Some(at(T0 + 1_000) + Duration::microseconds(999));
    invs[1].acked_at = Some(at(T0 + 2_000));
    invs[1].started_at = Some(at(T0 + 3_000));
    invs[1].delivery_attempts = 2;
    invs[1].trace_output = "trace \u{2713}".into();
    invs[1].plugins = vec![
        PluginResult { stderr: "warn: \u{26A0}\n".repeat(50), ..plugin("aws:runShellScript", "InProgress", &output) },
        PluginResult { started_at: None, ..plugin("step-2", "Pending", "") },
    ];
    invs[2].finished_at = Some(at(-1_000) + Duration::microseconds(1)); // before 1970, truncated down
    store.create_command(&cmd, &invs).await.expect("create");

    let mut want_cmd = cmd.clone();
    want_cmd.requested_at = at(T0);
    let mut want: Vec<CommandInvocation> = invs.clone();
    for inv in &mut want {
        inv.requested_at = at(T0);
    }
    want[1].dispatched_at = Some(at(T0 + 1_000));
    want[2].finished_at = Some(at(-1_000));

    // Read after write, every invocation at once.
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &id).await.unwrap(), Some(want_cmd.clone()));
    for w in &want {
        let got = store.get_invocation(ACCOUNT_A, REGION, &id, &w.instance_id).await.unwrap();
        assert_eq!(got.as_ref(), Some(w), "{}", w.instance_id);
    }
    let without_plugins: Vec<CommandInvocation> =
        want.iter().map(|w| CommandInvocation { plugins: Vec::new(), ..w.clone() }).collect();
    assert_eq!(store.command_invocations(&id).await.unwrap(), without_plugins);
    let filter = CommandFilter { command_id: Some(id.clone()), ..CommandFilter::default() };
    assert_eq!(store.list_invocations(ACCOUNT_A, REGION, &filter, None, 10, true).await.unwrap(), want);
    assert_eq!(store.list_invocations(ACCOUNT_A, REGION, &filter, None, 10, false).await.unwrap(), without_plugins);
    assert_eq!(store.list_commands(ACCOUNT_A, REGION, &filter, None, 10).await.unwrap(), vec![want_cmd.clone()]);
    let got = store.get_invocation(ACCOUNT_A, REGION, &id, instances[1]).await.unwrap().unwrap();
    assert_eq!(got.plugins[0].output.len(), output.len());
    assert_eq!(got.plugins[0].output, output);

    // Absent ids and unstorable ones read as absent.
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &command_id()).await.unwrap(), None);
    assert_eq!(store.get_command(ACCOUNT_A, REGION, "nul\0").await.unwrap(), None);
    assert_eq!(store.get_invocation(ACCOUNT_A, REGION, &id, "mi-absent").await.unwrap(), None);
    assert_eq!(store.get_invocation(ACCOUNT_A, REGION, &id, "mi-\0").await.unwrap(), None);
    assert!(store.command_invocations(&command_id()).await.unwrap().is_empty());

    // The same id again (even with other instances) is refused and changes nothing.
    let again = command(ACCOUNT_A, REGION, &id, T0 + 10, &["mi-0000000000000000d"]);
    let err = store.create_command(&again, &invocations(&again)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let other_account = command(ACCOUNT_B, REGION, &id, T0, &["mi-0000000000000000e"]);
    let err = store.create_command(&other_account, &invocations(&other_account)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "ids are unique deployment-wide: {err:?}");
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &id).await.unwrap(), Some(want_cmd.clone()));
    assert_eq!(store.command_invocations(&id).await.unwrap(), without_plugins);
    assert_eq!(store.get_invocation(ACCOUNT_A, REGION, &id, "mi-0000000000000000d").await.unwrap(), None);

    // A command without invocations, and one with Targets (no instance ids).
    let empty = command(ACCOUNT_A, REGION, &command_id(), T0 + 20, &[]);
    store.create_command(&empty, &[]).await.expect("no invocations");
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &empty.command_id).await.unwrap(), Some(empty.clone()));
    assert!(store.command_invocations(&empty.command_id).await.unwrap().is_empty());

    // Invalid input changes nothing: NUL anywhere, an invocation of another command (id,
    // account, region or time), an instance twice, a plugin name twice, an instance id that
    // cannot be stored in the list, an unknown account.
    let base = command(ACCOUNT_A, REGION, &command_id(), T0 + 30, &["mi-1", "mi-2"]);
    let mut cases: Vec<(Command, Vec<CommandInvocation>)> = Vec::new();
    let mut c = base.clone();
    c.payload_json = "{\"a\":\"\0\"}".into();
    cases.push((c.clone(), invocations(&c)));
    let mut invs = invocations(&base);
    invs[1].plugins = vec![plugin("p", "Pending", "a\0b")];
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[1].command_id = command_id();
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[0].account_id = ACCOUNT_B.into();
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[0].region = OTHER_REGION.into();
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[0].requested_at = at(T0 + 31);
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[1].instance_id = "mi-1".into();
    cases.push((base.clone(), invs));
    let mut invs = invocations(&base);
    invs[0].plugins = vec![plugin("p", "Pending", "1"), plugin("p", "Pending", "2")];
    cases.push((base.clone(), invs));
    let mut c = base.clone();
    c.instance_ids = vec!["mi-1,mi-2".into()];
    cases.push((c.clone(), invocations(&base)));
    let mut c = base.clone();
    c.instance_ids = vec![String::new()];
    cases.push((c.clone(), Vec::new()));
    for (i, (c, invs)) in cases.iter().enumerate() {
        let err = store.create_command(c, invs).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "case {i}: {err:?}");
    }
    let orphan = command("999999999999", REGION, &base.command_id, T0 + 30, &["mi-1"]);
    let err = store.create_command(&orphan, &invocations(&orphan)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &base.command_id).await.unwrap(), None);
    assert!(store.command_invocations(&base.command_id).await.unwrap().is_empty());
    store.create_command(&base, &invocations(&base)).await.expect("the valid one after all");
    store.close().await;
}

/// update_invocation is a compare-and-set: it applies only from the given statuses, sets only
/// the fields it carries, and of concurrent updates from the same status exactly one wins.
pub async fn command_invocation_compare_and_set(target: &Target) {
    let store = fresh(target).await;
    let cmd = command(ACCOUNT_A, REGION, &command_id(), T0, &["mi-a", "mi-b"]);
    send(&*store, &cmd).await;
    let id = cmd.command_id.as_str();
    let get = |instance: &'static str| {
        let store = Arc::clone(&store);
        let id = id.to_string();
        async move { store.get_invocation(ACCOUNT_A, REGION, &id, instance).await.unwrap().expect("invocation") }
    };

    // Not from a status it is not in; never with no statuses; never for absent rows.
    assert!(!store.update_invocation(id, "mi-a", &["InProgress", "Delayed"], &to_status("Success")).await.unwrap());
    assert!(!store.update_invocation(id, "mi-a", &[], &to_status("Success")).await.unwrap());
    assert!(!store.update_invocation(id, "mi-absent", &["Pending"], &to_status("Success")).await.unwrap());
    assert!(!store.update_invocation(&command_id(), "mi-a", &["Pending"], &to_status("Success")).await.unwrap());
    assert!(!store.update_invocation(id, "mi-a", &["Pending\0"], &to_status("Success")).await.unwrap());
    assert_eq!(get("mi-a").await, invocation(&cmd, "mi-a"));

    // Dispatch: sets dispatched_at, counts a delivery, keeps the rest.
    let dispatch = InvocationUpdate {
        dispatched_at: Some(Some(at(T0 + 1_000) + Duration::microseconds(500))),
        count_delivery: true,
        ..to_status("Pending")
    };
    assert!(store.update_invocation(id, "mi-a", &["Pending", "Delayed"], &dispatch).await.unwrap());
    assert!(store.update_invocation(id, "mi-a", &["Pending"], &dispatch).await.unwrap());
    let mut want = invocation(&cmd, "mi-a");
    want.dispatched_at = Some(at(T0 + 1_000));
    want.delivery_attempts = 2;
    assert_eq!(get("mi-a").await, want);

    // Ack and start: None fields keep their value.
    let start = InvocationUpdate {
        status_details: "In Progress".into(),
        acked_at: Some(Some(at(T0 + 2_000))),
        started_at: Some(at(T0 + 2_500)),
        ..to_status("InProgress")
    };
    assert!(store.update_invocation(id, "mi-a", &["Pending"], &start).await.unwrap());
    want.status = "InProgress".into();
    want.status_details = "In Progress".into();
    want.acked_at = Some(at(T0 + 2_000));
    want.started_at = Some(at(T0 + 2_500));
    assert_eq!(get("mi-a").await, want);

    // Redelivery clears the ack (Some(None)); finishing sets code, trace and finish time.
    let redeliver = InvocationUpdate { acked_at: Some(None), dispatched_at: Some(None), ..to_status("Delayed") };
    assert!(store.update_invocation(id, "mi-a", &["InProgress"], &redeliver).await.unwrap());
    want.status = "Delayed".into();
    want.status_details = "Delayed".into();
    want.acked_at = None;
    want.dispatched_at = None;
    assert_eq!(get("mi-a").await, want);
    let finish = InvocationUpdate {
        finished_at: Some(at(T0 + 9_000)),
        response_code: Some(0),
        trace_output: Some("done \u{2713}".into()),
        ..to_status("Success")
    };
    assert!(store.update_invocation(id, "mi-a", &["Delayed", "InProgress"], &finish).await.unwrap());
    want.status = "Success".into();
    want.status_details = "Success".into();
    want.finished_at = Some(at(T0 + 9_000));
    want.response_code = 0;
    want.trace_output = "done \u{2713}".into();
    assert_eq!(get("mi-a").await, want);
    // Terminal: nothing moves it from the non-terminal statuses any more.
    let cancel = to_status("Cancelled");
    assert!(!store.update_invocation(id, "mi-a", &["Pending", "InProgress", "Delayed"], &cancel).await.unwrap());
    assert_eq!(get("mi-a").await, want);
    assert_eq!(get("mi-b").await, invocation(&cmd, "mi-b"), "the other invocation is untouched");

    // Invalid updates are refused before any SQL.
    let bad = InvocationUpdate { trace_output: Some("\0".into()), ..to_status("Failed") };
    let err = store.update_invocation(id, "mi-b", &["Pending"], &bad).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");

    // Races: several tasks move the same invocation from Pending at once; exactly one wins,
    // and the row holds the winner's change (one delivery counted).
    for round in 0..4 {
        let instance = format!("mi-race-{round}");
        let race = command(ACCOUNT_A, REGION, &command_id(), T0 + 100 + round, &[&instance]);
        send(&*store, &race).await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = Arc::clone(&store);
            let (race_id, instance) = (race.command_id.clone(), instance.clone());
            tasks.push(tokio::spawn(async move {
                let update = InvocationUpdate {
                    status_details: format!("winner-{t}"),
                    count_delivery: true,
                    plugins: vec![plugin(&format!("p{t}"), "InProgress", "")],
                    ..to_status("InProgress")
                };
                let won = store.update_invocation(&race_id, &instance, &["Pending"], &update).await.expect("update");
                (t, won)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (t, won) = task.await.expect("task");
            if won {
                winners.push(t);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let got = store.get_invocation(ACCOUNT_A, REGION, &race.command_id, &instance).await.unwrap().unwrap();
        assert_eq!(got.status_details, format!("winner-{}", winners[0]));
        assert_eq!(got.delivery_attempts, 1);
        let names: Vec<&str> = got.plugins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, [format!("p{}", winners[0])], "only the winner's plugins");
    }
    store.close().await;
}

/// Plugin results are replaced by name (keeping their position) and new names appended, in
/// the order first reported; an update that does not apply changes no plugin.
pub async fn command_plugin_upsert_order(target: &Target) {
    let store = fresh(target).await;
    let cmd = command(ACCOUNT_A, REGION, &command_id(), T0, &["mi-a"]);
    let mut invs = invocations(&cmd);
    invs[0].plugins = vec![plugin("zeta", "Pending", "")];
    store.create_command(&cmd, &invs).await.unwrap();
    let id = cmd.command_id.as_str();
    let names = |store: Arc<dyn Store>| async move {
        let inv = store.get_invocation(ACCOUNT_A, REGION, id, "mi-a").await.unwrap().unwrap();
        inv.plugins.iter().map(|p| (p.name.clone(), p.status.clone(), p.output.clone())).collect::<Vec<_>>()
    };
    let n = |name: &str, status: &str, output: &str| (name.to_string(), status.to_string(), output.to_string());

    let first = InvocationUpdate {
        plugins: vec![plugin("beta", "InProgress", "b1"), plugin("alpha", "InProgress", "a1")],
        ..to_status("InProgress")
    };
    assert!(store.update_invocation(id, "mi-a", &["Pending"], &first).await.unwrap());
    assert_eq!(
        names(Arc::clone(&store)).await,
        [n("zeta", "Pending", ""), n("beta", "InProgress", "b1"), n("alpha", "InProgress", "a1")]
    );

    let mut replaced = plugin("zeta", "Success", "z2");
    replaced.finished_at = Some(at(T0 + 7_000));
    replaced.stderr = "e".into();
    let second = InvocationUpdate {
        plugins: vec![plugin("gamma", "InProgress", "g1"), replaced.clone(), plugin("alpha", "Failed", "a2")],
        ..to_status("InProgress")
    };
    assert!(store.update_invocation(id, "mi-a", &["InProgress"], &second).await.unwrap());
    assert_eq!(
        names(Arc::clone(&store)).await,
        [
            n("zeta", "Success", "z2"),
            n("beta", "InProgress", "b1"),
            n("alpha", "Failed", "a2"),
            n("gamma", "InProgress", "g1")
        ]
    );
    let inv = store.get_invocation(ACCOUNT_A, REGION, id, "mi-a").await.unwrap().unwrap();
    assert_eq!(inv.plugins[0], replaced, "every field of a replaced plugin");

    // Not applied: no plugin changes.
    let refused = InvocationUpdate {
        plugins: vec![plugin("zeta", "Failed", "no"), plugin("delta", "Failed", "no")],
        ..to_status("Failed")
    };
    assert!(!store.update_invocation(id, "mi-a", &["Pending"], &refused).await.unwrap());
    assert_eq!(names(Arc::clone(&store)).await.len(), 4);
    assert_eq!(names(Arc::clone(&store)).await[0], n("zeta", "Success", "z2"));
    // A plugin name twice in one update is refused.
    let twice = InvocationUpdate {
        plugins: vec![plugin("x", "Failed", "1"), plugin("x", "Failed", "2")],
        ..to_status("InProgress")
    };
    let err = store.update_invocation(id, "mi-a", &["InProgress"], &twice).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert_eq!(names(Arc::clone(&store)).await.len(), 4);
    store.close().await;
}

/// Listings: newest first (ties by command id, then instance id), paged by cursor without
/// duplicates or gaps, filtered by command, instance, document and time; scoped to the account
/// and region.
pub async fn commands_list_paging_and_filters(target: &Target) {
    let store = fresh(target).await;
    // Eleven commands over six distinct times (several ties), on overlapping instances.
    let mut cmds = Vec::new();
    for k in 0..11i64 {
        let ms = T0 + (k / 2) * 1_000;
        let instances: Vec<String> = match k % 3 {
            0 => vec!["mi-x".into(), "mi-y".into()],
            1 => vec!["mi-y".into()],
            _ => vec!["mi-z".into(), "mi-x".into(), "mi-w".into()],
        };
        let refs: Vec<&str> = instances.iter().map(String::as_str).collect();
        let mut cmd = command(ACCOUNT_A, REGION, &command_id(), ms, &refs);
        if k % 4 == 0 {
            cmd.document_name = "My-Doc".into();
        }
        send(&*store, &cmd).await;
        cmds.push(cmd);
    }
    // Elsewhere: another account, another region.
    for (account, region) in [(ACCOUNT_B, REGION), (ACCOUNT_A, OTHER_REGION)] {
        let cmd = command(account, region, &command_id(), T0 + 500, &["mi-x"]);
        send(&*store, &cmd).await;
    }

    let mut newest_first = cmds.clone();
    newest_first.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then_with(|| a.command_id.cmp(&b.command_id)));
    let want_all = ids(&newest_first);
    let none = CommandFilter::default();
    assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &none, None, 100).await.unwrap()), want_all);
    assert_eq!(store.list_commands(ACCOUNT_A, REGION, &none, None, 100).await.unwrap(), newest_first);
    for page in [1, 2, 3, 4, 11, 12] {
        assert_eq!(all_command_pages(&*store, &none, page).await, want_all, "page size {page}");
    }
    assert!(store.list_commands(ACCOUNT_A, REGION, &none, None, 0).await.unwrap().is_empty());
    let last = newest_first.last().unwrap();
    let after_last = Some((last.requested_at, last.command_id.clone()));
    assert!(store.list_commands(ACCOUNT_A, REGION, &none, after_last, 10).await.unwrap().is_empty());
    // A cursor between rows: strictly after it, in order.
    let cursor = Some((newest_first[3].requested_at, newest_first[3].command_id.clone()));
    assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &none, cursor, 100).await.unwrap()), want_all[4..]);

    // Filters, alone and combined, with paging.
    let check = |filter: CommandFilter, pred: Box<dyn Fn(&Command) -> bool>| {
        let store = Arc::clone(&store);
        let want: Vec<String> = newest_first.iter().filter(|c| pred(c)).map(|c| c.command_id.clone()).collect();
        async move {
            assert!(!want.is_empty(), "{filter:?} selects something");
            assert_eq!(all_command_pages(&*store, &filter, 2).await, want, "{filter:?}");
            assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &filter, None, 100).await.unwrap()), want);
        }
    };
    let on = |instance: &str| CommandFilter { instance_id: Some(instance.into()), ..CommandFilter::default() };
    check(on("mi-y"), Box::new(|c| c.instance_ids.iter().any(|i| i == "mi-y"))).await;
    check(on("mi-w"), Box::new(|c| c.instance_ids.iter().any(|i| i == "mi-w"))).await;
    let doc = CommandFilter { document_name: Some("My-Doc".into()), ..CommandFilter::default() };
    check(doc.clone(), Box::new(|c| c.document_name == "My-Doc")).await;
    // invoked_after and invoked_before include their ends.
    let window = CommandFilter {
        invoked_after: Some(at(T0 + 1_000)),
        invoked_before: Some(at(T0 + 3_000)),
        ..CommandFilter::default()
    };
    let in_window = |c: &Command| c.requested_at >= at(T0 + 1_000) && c.requested_at <= at(T0 + 3_000);
    check(window.clone(), Box::new(in_window)).await;
    // Sub-millisecond bounds: after rounds up, before rounds down.
    let fine = CommandFilter {
        invoked_after: Some(at(T0 + 1_000) + Duration::microseconds(1)),
        invoked_before: Some(at(T0 + 3_000) + Duration::microseconds(999)),
        ..CommandFilter::default()
    };
    check(fine, Box::new(|c| c.requested_at > at(T0 + 1_000) && c.requested_at <= at(T0 + 3_000))).await;
    let combined = CommandFilter { instance_id: Some("mi-x".into()), ..window.clone() };
    check(combined, Box::new(move |c| in_window(c) && c.instance_ids.iter().any(|i| i == "mi-x"))).await;
    let one = newest_first[5].command_id.clone();
    let by_id = CommandFilter { command_id: Some(one.clone()), ..CommandFilter::default() };
    check(by_id, Box::new(move |c| c.command_id == one)).await;
    for empty in [
        on("mi-none"),
        CommandFilter { document_name: Some("my-doc".into()), ..CommandFilter::default() },
        CommandFilter { command_id: Some(command_id()), ..CommandFilter::default() },
        CommandFilter {
            invoked_after: Some(at(T0 + 2_000)),
            invoked_before: Some(at(T0 + 1_000)),
            ..CommandFilter::default()
        },
        CommandFilter { invoked_after: Some(at(T0 + 99_000)), ..CommandFilter::default() },
        CommandFilter { instance_id: Some("mi-\0".into()), ..CommandFilter::default() },
    ] {
        assert!(store.list_commands(ACCOUNT_A, REGION, &empty, None, 100).await.unwrap().is_empty(), "{empty:?}");
        assert!(
            store.list_invocations(ACCOUNT_A, REGION, &empty, None, 100, true).await.unwrap().is_empty(),
            "{empty:?}"
        );
    }
    // Extreme bounds work on both backends.
    let wide = CommandFilter {
        invoked_after: Some(PrimitiveDateTime::MIN.assume_utc()),
        invoked_before: Some(PrimitiveDateTime::MAX.assume_utc()),
        ..CommandFilter::default()
    };
    assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &wide, None, 100).await.unwrap()), want_all);
    let beyond = Some((PrimitiveDateTime::MAX.assume_utc(), String::new()));
    assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &wide, beyond, 100).await.unwrap()), want_all);
    let before_all = Some((PrimitiveDateTime::MIN.assume_utc(), String::new()));
    assert!(store.list_commands(ACCOUNT_A, REGION, &none, before_all, 100).await.unwrap().is_empty());
    let beyond = Some((PrimitiveDateTime::MAX.assume_utc(), String::new(), String::new()));
    assert_eq!(
        store.list_invocations(ACCOUNT_A, REGION, &wide, beyond, 100, false).await.unwrap().len(),
        cmds.iter().map(|c| c.instance_ids.len()).sum::<usize>()
    );

    // Invocations: by their command's order, then instance id; paged; filtered.
    let mut want_invs: Vec<(String, String)> = Vec::new();
    for c in &newest_first {
        let mut instances = c.instance_ids.clone();
        instances.sort();
        want_invs.extend(instances.into_iter().map(|i| (c.command_id.clone(), i)));
    }
    for page in [1, 2, 5, 100] {
        assert_eq!(all_invocation_pages(&*store, &none, page).await, want_invs, "page size {page}");
    }
    let want_y: Vec<(String, String)> = want_invs.iter().filter(|(_, i)| i == "mi-y").cloned().collect();
    assert_eq!(all_invocation_pages(&*store, &on("mi-y"), 2).await, want_y);
    let doc_ids: BTreeSet<&str> =
        newest_first.iter().filter(|c| c.document_name == "My-Doc").map(|c| c.command_id.as_str()).collect();
    let want_doc: Vec<(String, String)> =
        want_invs.iter().filter(|(c, _)| doc_ids.contains(c.as_str())).cloned().collect();
    assert_eq!(all_invocation_pages(&*store, &doc, 3).await, want_doc);
    let window_ids: BTreeSet<&str> =
        newest_first.iter().filter(|c| in_window(c)).map(|c| c.command_id.as_str()).collect();
    let want_window: Vec<(String, String)> =
        want_invs.iter().filter(|(c, _)| window_ids.contains(c.as_str())).cloned().collect();
    assert_eq!(all_invocation_pages(&*store, &window, 3).await, want_window);
    let c0 = &newest_first[0];
    let one_cmd = CommandFilter { command_id: Some(c0.command_id.clone()), ..CommandFilter::default() };
    let one_on = CommandFilter { instance_id: Some("mi-x".into()), ..one_cmd.clone() };
    let want_one: Vec<(String, String)> = want_invs.iter().filter(|(c, _)| c == &c0.command_id).cloned().collect();
    assert_eq!(all_invocation_pages(&*store, &one_cmd, 1).await, want_one);
    let want_one_on: Vec<(String, String)> = want_one.iter().filter(|(_, i)| i == "mi-x").cloned().collect();
    assert_eq!(all_invocation_pages(&*store, &one_on, 1).await, want_one_on);
    assert!(store.list_invocations(ACCOUNT_A, REGION, &none, None, 0, true).await.unwrap().is_empty());

    // with_plugins: every returned invocation carries its plugins (in order), in one page.
    let target_inv = &want_invs[1];
    let update = InvocationUpdate {
        plugins: vec![plugin("one", "InProgress", "1"), plugin("two", "InProgress", "2")],
        ..to_status("InProgress")
    };
    assert!(store.update_invocation(&target_inv.0, &target_inv.1, &["Pending"], &update).await.unwrap());
    let page = store.list_invocations(ACCOUNT_A, REGION, &none, None, 3, true).await.unwrap();
    assert_eq!(keys(&page), want_invs[..3]);
    let names: Vec<Vec<&str>> = page.iter().map(|i| i.plugins.iter().map(|p| p.name.as_str()).collect()).collect();
    assert_eq!(names, [vec![], vec!["one", "two"], vec![]]);
    let page = store.list_invocations(ACCOUNT_A, REGION, &none, None, 3, false).await.unwrap();
    assert!(page.iter().all(|i| i.plugins.is_empty()));
    assert_eq!(page[1].status, "InProgress");
    store.close().await;
}

/// Status counts group a command's invocations by (status, details), for the given commands
/// of the account and region only.
pub async fn command_invocation_status_counts(target: &Target) {
    let store = fresh(target).await;
    let a = command(ACCOUNT_A, REGION, &command_id(), T0, &["mi-1", "mi-2", "mi-3", "mi-4"]);
    let b = command(ACCOUNT_A, REGION, &command_id(), T0 + 1, &["mi-1"]);
    let empty = command(ACCOUNT_A, REGION, &command_id(), T0 + 2, &[]);
    let foreign = command(ACCOUNT_B, REGION, &command_id(), T0, &["mi-9"]);
    for c in [&a, &b, &empty, &foreign] {
        send(&*store, c).await;
    }
    let failed = InvocationUpdate { status_details: "Failed".into(), ..to_status("Failed") };
    let timed_out = InvocationUpdate { status_details: "Delivery Timed Out".into(), ..to_status("TimedOut") };
    let exec_timed_out = InvocationUpdate { status_details: "Execution Timed Out".into(), ..to_status("TimedOut") };
    assert!(store.update_invocation(&a.command_id, "mi-1", &["Pending"], &failed).await.unwrap());
    assert!(store.update_invocation(&a.command_id, "mi-2", &["Pending"], &timed_out).await.unwrap());
    assert!(store.update_invocation(&a.command_id, "mi-3", &["Pending"], &exec_timed_out).await.unwrap());

    let count = |command: &Command, status: &str, details: &str, n: u64| InvocationStatusCount {
        command_id: command.command_id.clone(),
        status: status.into(),
        status_details: details.into(),
        count: n,
    };
    let ids = vec![a.command_id.clone(), b.command_id.clone(), empty.command_id.clone(), foreign.command_id.clone()];
    let mut got = store.invocation_status_counts(ACCOUNT_A, REGION, &ids).await.unwrap();
    got.sort_by(|x, y| {
        (&x.command_id, &x.status, &x.status_details).cmp(&(&y.command_id, &y.status, &y.status_details))
    });
    let mut want = vec![
        count(&a, "Failed", "Failed", 1),
        count(&a, "Pending", "Pending", 1),
        count(&a, "TimedOut", "Delivery Timed Out", 1),
        count(&a, "TimedOut", "Execution Timed Out", 1),
        count(&b, "Pending", "Pending", 1),
    ];
    want.sort_by(|x, y| {
        (&x.command_id, &x.status, &x.status_details).cmp(&(&y.command_id, &y.status, &y.status_details))
    });
    assert_eq!(got, want);
    // Ids given twice count once; unknown and unstorable ids count nothing.
    let twice = vec![b.command_id.clone(), b.command_id.clone(), command_id(), "x\0".into()];
    assert_eq!(
        store.invocation_status_counts(ACCOUNT_A, REGION, &twice).await.unwrap(),
        [count(&b, "Pending", "Pending", 1)]
    );
    assert!(store.invocation_status_counts(ACCOUNT_A, REGION, &[]).await.unwrap().is_empty());
    assert!(store.invocation_status_counts(ACCOUNT_A, OTHER_REGION, &ids).await.unwrap().is_empty());
    assert_eq!(
        store.invocation_status_counts(ACCOUNT_B, REGION, &ids).await.unwrap(),
        [count(&foreign, "Pending", "Pending", 1)]
    );
    // Many ids at once.
    let mut many: Vec<String> = (0..1200).map(|_| command_id()).collect();
    many.push(a.command_id.clone());
    assert_eq!(store.invocation_status_counts(ACCOUNT_A, REGION, &many).await.unwrap().len(), 4);
    store.close().await;
}

/// The scheduler's views: active commands oldest first (any account), the active commands an
/// instance has work in, the active flag and the cancel flag.
pub async fn commands_active_and_cancel(target: &Target) {
    let store = fresh(target).await;
    let c1 = command(ACCOUNT_A, REGION, &command_id(), T0 + 2_000, &["mi-a", "mi-b"]);
    let c2 = command(ACCOUNT_B, OTHER_REGION, &command_id(), T0, &["mi-a"]);
    let c3 = command(ACCOUNT_A, REGION, &command_id(), T0 + 1_000, &["mi-b"]);
    let mut c4 = command(ACCOUNT_A, REGION, &command_id(), T0 + 500, &["mi-a"]);
    c4.active = false;
    for c in [&c1, &c2, &c3, &c4] {
        send(&*store, c).await;
    }
    assert_eq!(
        ids(&store.active_commands(10).await.unwrap()),
        [c2.command_id.as_str(), c3.command_id.as_str(), c1.command_id.as_str()]
    );
    assert_eq!(store.active_commands(10).await.unwrap()[0], c2, "rows are complete");
    assert_eq!(ids(&store.active_commands(2).await.unwrap()), [c2.command_id.as_str(), c3.command_id.as_str()]);
    assert!(store.active_commands(0).await.unwrap().is_empty());

    let pending = ["Pending", "Delayed"];
    assert_eq!(
        store.active_commands_for_instance("mi-a", &pending).await.unwrap(),
        [c2.command_id.as_str(), c1.command_id.as_str()]
    );
    assert_eq!(
        store.active_commands_for_instance("mi-b", &pending).await.unwrap(),
        [c3.command_id.as_str(), c1.command_id.as_str()]
    );
    assert!(store.active_commands_for_instance("mi-a", &[]).await.unwrap().is_empty());
    assert!(store.active_commands_for_instance("mi-none", &pending).await.unwrap().is_empty());
    assert!(store.active_commands_for_instance("mi-\0", &pending).await.unwrap().is_empty());
    // Only invocations in the given statuses count.
    assert!(store.update_invocation(&c2.command_id, "mi-a", &["Pending"], &to_status("InProgress")).await.unwrap());
    assert_eq!(store.active_commands_for_instance("mi-a", &pending).await.unwrap(), [c1.command_id.as_str()]);
    assert_eq!(
        store.active_commands_for_instance("mi-a", &["InProgress", "Pending"]).await.unwrap(),
        [c2.command_id.as_str(), c1.command_id.as_str()]
    );

    // Open work by status, over every account: active commands only (c4 is not).
    let open = ["Pending", "InProgress", "Delayed"];
    let counts = |v: &[(&str, u64)]| v.iter().map(|(s, n)| (s.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(store.open_invocation_counts(&open).await.unwrap(), counts(&[("InProgress", 1), ("Pending", 3)]));
    assert!(store.open_invocation_counts(&[]).await.unwrap().is_empty());

    // The active flag: cleared, set again, on any account; absent commands are fine.
    store.set_command_active(&c1.command_id, false).await.unwrap();
    assert_eq!(store.open_invocation_counts(&open).await.unwrap(), counts(&[("InProgress", 1), ("Pending", 1)]));
    assert_eq!(ids(&store.active_commands(10).await.unwrap()), [c2.command_id.as_str(), c3.command_id.as_str()]);
    assert!(store.active_commands_for_instance("mi-a", &pending).await.unwrap().is_empty());
    assert!(!store.get_command(ACCOUNT_A, REGION, &c1.command_id).await.unwrap().unwrap().active);
    store.set_command_active(&c4.command_id, true).await.unwrap();
    store.set_command_active(&c2.command_id, false).await.unwrap();
    assert_eq!(ids(&store.active_commands(10).await.unwrap()), [c4.command_id.as_str(), c3.command_id.as_str()]);
    store.set_command_active(&command_id(), false).await.expect("absent is fine");
    store.set_command_active("x\0", true).await.expect("unstorable is absent");

    // Cancel: only in the command's account and region; twice is fine; nothing else changes.
    assert!(!store.get_command(ACCOUNT_A, REGION, &c3.command_id).await.unwrap().unwrap().cancel_requested);
    store.set_command_cancel_requested(ACCOUNT_A, REGION, &c3.command_id).await.expect("cancel");
    store.set_command_cancel_requested(ACCOUNT_A, REGION, &c3.command_id).await.expect("cancel again");
    let mut want = c3.clone();
    want.cancel_requested = true;
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &c3.command_id).await.unwrap(), Some(want));
    assert!(!store.get_command(ACCOUNT_A, REGION, &c1.command_id).await.unwrap().unwrap().cancel_requested);
    for (account, region, id) in [
        (ACCOUNT_A, REGION, command_id()),
        (ACCOUNT_B, REGION, c3.command_id.clone()),
        (ACCOUNT_A, OTHER_REGION, c3.command_id.clone()),
        (ACCOUNT_A, REGION, "x\0".to_string()),
    ] {
        let err = store.set_command_cancel_requested(account, region, &id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{account} {region} {id:?}: {err:?}");
    }
    store.close().await;
}

/// Another account's (or region's) commands and invocations are invisible to the account's
/// reads; the scheduler's views (any account) see them.
pub async fn commands_account_region_isolation(target: &Target) {
    let store = fresh(target).await;
    let mine = command(ACCOUNT_A, REGION, &command_id(), T0, &["mi-shared"]);
    let theirs = command(ACCOUNT_B, REGION, &command_id(), T0 + 1, &["mi-shared"]);
    let other_region = command(ACCOUNT_A, OTHER_REGION, &command_id(), T0 + 2, &["mi-shared"]);
    for c in [&mine, &theirs, &other_region] {
        send(&*store, c).await;
    }
    for c in [&theirs, &other_region] {
        let id = c.command_id.as_str();
        assert_eq!(store.get_command(ACCOUNT_A, REGION, id).await.unwrap(), None);
        assert_eq!(store.get_invocation(ACCOUNT_A, REGION, id, "mi-shared").await.unwrap(), None);
        let by_id = CommandFilter { command_id: Some(id.into()), ..CommandFilter::default() };
        assert!(store.list_commands(ACCOUNT_A, REGION, &by_id, None, 10).await.unwrap().is_empty());
        assert!(store.list_invocations(ACCOUNT_A, REGION, &by_id, None, 10, true).await.unwrap().is_empty());
        assert!(store.invocation_status_counts(ACCOUNT_A, REGION, &[id.to_string()]).await.unwrap().is_empty());
        // The owner sees it.
        assert_eq!(store.get_command(&c.account_id, &c.region, id).await.unwrap().as_ref(), Some(c));
    }
    let on = CommandFilter { instance_id: Some("mi-shared".into()), ..CommandFilter::default() };
    assert_eq!(ids(&store.list_commands(ACCOUNT_A, REGION, &on, None, 10).await.unwrap()), [mine.command_id.as_str()]);
    let invs = store.list_invocations(ACCOUNT_A, REGION, &on, None, 10, false).await.unwrap();
    assert_eq!(keys(&invs), [(mine.command_id.clone(), "mi-shared".to_string())]);
    assert_eq!(
        ids(&store.list_commands(ACCOUNT_B, REGION, &on, None, 10).await.unwrap()),
        [theirs.command_id.as_str()]
    );
    assert_eq!(store.active_commands(10).await.unwrap().len(), 3);
    assert_eq!(store.command_invocations(&theirs.command_id).await.unwrap().len(), 1);
    assert_eq!(store.active_commands_for_instance("mi-shared", &["Pending"]).await.unwrap().len(), 3);
    store.close().await;
}

/// create_command and update_invocation carry the staged audit record in their transaction;
/// a refused create and an update that does not apply append nothing and leave the record for
/// the caller.
pub async fn command_writes_carry_audit_record(target: &Target) {
    let store = fresh(target).await;
    let cmd = command(ACCOUNT_A, REGION, &command_id(), T0, &["mi-a"]);
    let chain_len =
        |store: Arc<dyn Store>| async move { store.audit_chain(ACCOUNT_A, REGION, 0, 10).await.unwrap().len() };

    let slot = AuditSlot::new();
    slot.stage(super::audit::record(ACCOUNT_A, REGION, "SendCommand", T0));
    with_audit_slot(slot.clone(), async {
        store.create_command(&cmd, &invocations(&cmd)).await.expect("create");
    })
    .await;
    let written = slot.written().expect("the create committed the record");
    assert_eq!(written.seq, 1);
    assert!(store.get_command(ACCOUNT_A, REGION, &cmd.command_id).await.unwrap().is_some());

    let slot = AuditSlot::new();
    slot.stage(super::audit::record(ACCOUNT_A, REGION, "SendCommand", T0 + 1));
    with_audit_slot(slot.clone(), async {
        let err = store.create_command(&cmd, &invocations(&cmd)).await.unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    })
    .await;
    assert!(slot.written().is_none(), "a refused create appends nothing");
    assert_eq!(chain_len(Arc::clone(&store)).await, 1);

    let slot = AuditSlot::new();
    slot.stage(super::audit::record(ACCOUNT_A, REGION, "CancelCommand", T0 + 2));
    with_audit_slot(slot.clone(), async {
        let applied =
            store.update_invocation(&cmd.command_id, "mi-a", &["InProgress"], &to_status("Cancelled")).await.unwrap();
        assert!(!applied);
    })
    .await;
    assert!(slot.written().is_none(), "an update that does not apply appends nothing");
    assert_eq!(chain_len(Arc::clone(&store)).await, 1);

    let slot = AuditSlot::new();
    slot.stage(super::audit::record(ACCOUNT_A, REGION, "CancelCommand", T0 + 3));
    with_audit_slot(slot.clone(), async {
        let update = InvocationUpdate { plugins: vec![plugin("p", "Cancelled", "")], ..to_status("Cancelled") };
        assert!(store.update_invocation(&cmd.command_id, "mi-a", &["Pending"], &update).await.unwrap());
    })
    .await;
    assert_eq!(slot.written().expect("the update committed the record").seq, 2);
    let inv = store.get_invocation(ACCOUNT_A, REGION, &cmd.command_id, "mi-a").await.unwrap().unwrap();
    assert_eq!((inv.status.as_str(), inv.plugins.len()), ("Cancelled", 1));

    // A record that cannot be stored fails the write, which then changes nothing.
    let other = command(ACCOUNT_A, REGION, &command_id(), T0 + 4, &["mi-b"]);
    let mut bad = super::audit::record(ACCOUNT_A, REGION, "SendCommand", T0 + 4);
    bad.record_json = "{\"a\":\"\0\"}".into();
    let slot = AuditSlot::new();
    slot.stage(bad);
    with_audit_slot(slot.clone(), async {
        let err = store.create_command(&other, &invocations(&other)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    })
    .await;
    assert!(slot.written().is_none());
    assert_eq!(store.get_command(ACCOUNT_A, REGION, &other.command_id).await.unwrap(), None);
    assert!(store.command_invocations(&other.command_id).await.unwrap().is_empty());
    assert_eq!(chain_len(Arc::clone(&store)).await, 2);
    store.close().await;
}
