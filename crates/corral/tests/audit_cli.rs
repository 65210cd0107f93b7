//! `corral audit verify` and `corral audit export` against a real data dir: records appended
//! through the store verify and export verbatim; a record changed in the database file is
//! reported by seq and event id with exit status 1.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{StartOptions, TestServer};
use corral_store::{AuditRecord, AuditResource, Store, StoredAuditRecord};

const ACCOUNT: &str = "999999999999";
const REGION: &str = "audit-test-1";
const OTHER_REGION: &str = "audit-test-2";

fn corral_audit(args: &[&str]) -> Output {
    Command::new(common::corral_bin())
        .arg("audit")
        .args(args)
        .env_remove("CORRAL_DATA_DIR")
        .env_remove("CORRAL_DATABASE_URL")
        .env_remove("CORRAL_SECRET_KEY_FILE")
        .env("CORRAL_LOG", "warn")
        .output()
        .expect("run corral audit")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(out: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", out.status, stdout(out), String::from_utf8_lossy(&out.stderr))
}

/// A CloudTrail-shaped record; `pretty` spreads its JSON over several lines.
fn record(region: &str, event_name: &str, i: i64, pretty: bool) -> AuditRecord {
    let event_id = uuid_like(i);
    let ms = 1_767_000_000_000 + i * 1000;
    let sep = if pretty { "\n  " } else { "" };
    let record_json = format!(
        r#"{{{sep}"eventVersion":"1.09",{sep}"eventTime":"2025-12-29T09:20:{:02}Z","eventSource":"ssm.amazonaws.com","eventName":"{event_name}","awsRegion":"{region}","requestParameters":{{"comment":"üñí \"quoted\" \\n {i}","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS"}},"eventID":"{event_id}","readOnly":false,"recipientAccountId":"{ACCOUNT}"{}}}"#,
        i % 60,
        if pretty { "\n" } else { "" }
    );
    AuditRecord {
        account_id: ACCOUNT.into(),
        region: region.into(),
        event_id,
        event_time: time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("time"),
        event_name: event_name.into(),
        event_source: "ssm.amazonaws.com".into(),
        username: Some("admin".into()),
        access_key_id: Some("AKIAEXAMPLE".into()),
        read_only: false,
        resources: vec![AuditResource {
            resource_type: "AWS::SSM::ManagedInstance".into(),
            resource_name: format!("mi-{i:017}"),
        }],
        error_code: None,
        record_json,
    }
}

fn uuid_like(i: i64) -> String {
    format!("0d9c8b7a-6f5e-4d3c-2b1a-{:012}", 100_000 + i)
}

/// Appends `records` and returns them as stored.
async fn append(store: &dyn Store, records: &[AuditRecord]) -> Vec<StoredAuditRecord> {
    let mut stored = Vec::new();
    for r in records {
        stored.push(store.append_audit(r).await.expect("append_audit"));
    }
    stored
}

/// Every record_json of every chain, in export order, read through the store.
async fn all_records(store: &dyn Store) -> Vec<String> {
    let mut all = Vec::new();
    for (account, region) in store.audit_streams().await.expect("streams") {
        let mut after = 0;
        loop {
            let page = store.audit_chain(&account, &region, after, 100).await.expect("chain");
            let Some(last) = page.last() else { break };
            after = last.seq;
            all.extend(page.into_iter().map(|r| r.record.record_json));
        }
    }
    all
}

fn assert_export(text: &str, want: &[String]) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), want.len(), "{text}");
    for (line, json) in lines.iter().zip(want) {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        let original: serde_json::Value = serde_json::from_str(json).expect("record is JSON");
        assert_eq!(parsed, original);
        if !json.contains('\n') {
            assert_eq!(line, json, "exported verbatim");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_export_then_detect_tampering() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let server = TestServer::start(&data, StartOptions::default()).expect("server starts");
    server.stop();
    let data_arg = data.to_str().expect("utf-8 path");

    // Append through the store, as the server does.
    let key = corral_store::load_or_create_key_file(&data.join("secret.key")).expect("key");
    let url = format!("sqlite://{}", data.join("corral.db").display());
    let store = corral_store::open(&url, key).await.expect("open store");
    let main: Vec<AuditRecord> = (1..=5).map(|i| record(REGION, "SendCommand", i, i == 2)).collect();
    let other: Vec<AuditRecord> = (1..=3).map(|i| record(OTHER_REGION, "ListCommands", 10 + i, false)).collect();
    let stored = append(&*store, &main).await;
    let other_stored = append(&*store, &other).await;
    let exported_want = all_records(&*store).await;
    store.close().await;
    drop(store);
    for r in main.iter().chain(&other) {
        assert!(exported_want.contains(&r.record_json), "every appended record is in the chains");
    }

    // verify: every chain ok, with its count and head.
    let out = corral_audit(&["verify", "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let head = &stored[4].hash;
    assert!(text.contains(&format!("ok: {ACCOUNT} {REGION}: 5 records, head {head}\n")), "{}", describe(&out));
    let other_head = &other_stored[2].hash;
    assert!(text.contains(&format!("ok: {ACCOUNT} {OTHER_REGION}: 3 records, head {other_head}\n")), "{text}");
    assert!(!text.contains("broken"), "{text}");

    // export to stdout: one JSON record per line, chain by chain, oldest first.
    let out = corral_audit(&["export", "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_export(&stdout(&out), &exported_want);
    // The pretty-printed record became one line, its line breaks spaces.
    assert!(stdout(&out).lines().any(|l| l == main[1].record_json.replace('\n', " ")));

    // export to a file, readable by its owner only.
    let file = dir.path().join("trail.jsonl");
    let out = corral_audit(&["export", "--data-dir", data_arg, "--output", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    assert_export(&std::fs::read_to_string(&file).expect("export file"), &exported_want);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Change one record in the database file: verify names it and exits 1.
    tamper(&data.join("corral.db"), REGION, 3).await;
    let out = corral_audit(&["verify", "--data-dir", data_arg]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = stdout(&out);
    let event_id = &stored[2].record.event_id;
    assert!(
        text.contains(&format!("broken: {ACCOUNT} {REGION}: record seq=3 event {event_id}: hash does not match")),
        "{}",
        describe(&out)
    );
    assert_eq!(text.matches("broken:").count(), 1, "{text}");
    assert!(text.contains(&format!("ok: {ACCOUNT} {OTHER_REGION}: 3 records")), "{text}");
}

/// Rewrites one record's JSON in place (an attacker with access to the file).
async fn tamper(db: &Path, region: &str, seq: i64) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.expect("open db");
    let done = sqlx::query(
        "UPDATE audit_records SET record_json = replace(record_json, 'SendCommand', 'SendCommanx') \
         WHERE account_id = ? AND region = ? AND seq = ?",
    )
    .bind(ACCOUNT)
    .bind(region)
    .bind(seq)
    .execute(&mut conn)
    .await
    .expect("tamper");
    assert_eq!(done.rows_affected(), 1);
    conn.close().await.expect("close db");
}

#[test]
fn missing_database_is_an_error_not_an_empty_trail() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nothing-here");
    for command in ["verify", "export"] {
        let out = corral_audit(&[command, "--data-dir", missing.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no database"), "{}", describe(&out));
    }
    let url = format!("sqlite://{}", missing.join("corral.db").display());
    let out = corral_audit(&["verify", "--data-dir", dir.path().to_str().expect("utf-8"), "--database", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(!missing.exists(), "nothing was created");
}

/// The same on PostgreSQL (`--database`), when the test command provides a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_postgres() {
    use sqlx::Connection;
    let Some(admin_url) = common::postgres_admin_url() else {
        eprintln!("skipped: CORRAL_TEST_POSTGRES_URL not set");
        return;
    };
    let name = format!("corral_audit_cli_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect admin");
    // `name` is made of letters, digits and underscores.
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&mut admin)
        .await
        .expect("drop");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
    // The admin URL ends in a database name (postgres://user@host:port/postgres).
    let (base, _) = admin_url.rsplit_once('/').expect("CORRAL_TEST_POSTGRES_URL names a database");
    let url = format!("{base}/{name}");
    let store = corral_store::open(&url, corral_store::SecretKey::generate()).await.expect("open store");
    let records: Vec<AuditRecord> = (1..=4).map(|i| record(REGION, "SendCommand", i, false)).collect();
    let stored = append(&*store, &records).await;
    store.close().await;

    let dir = tempfile::tempdir().expect("tmp");
    let data_arg = dir.path().to_str().expect("utf-8");
    let out = corral_audit(&["verify", "--data-dir", data_arg, "--database", &url]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), format!("ok: {ACCOUNT} {REGION}: 4 records, head {}\n", stored[3].hash));
    let out = corral_audit(&["export", "--data-dir", data_arg, "--database", &url]);
    assert!(out.status.success(), "{}", describe(&out));
    let want: Vec<String> = records.iter().map(|r| r.record_json.clone()).collect();
    assert_export(&stdout(&out), &want);

    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("UPDATE audit_records SET hash = repeat('0', 64) WHERE seq = 2")
        .execute(&mut conn)
        .await
        .expect("tamper");
    conn.close().await.expect("close");
    let out = corral_audit(&["verify", "--data-dir", data_arg, "--database", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let event_id = &stored[1].record.event_id;
    assert!(
        stdout(&out).starts_with(&format!("broken: {ACCOUNT} {REGION}: record seq=2 event {event_id}: ")),
        "{}",
        describe(&out)
    );

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop");
    let _ = admin.close().await;
}
