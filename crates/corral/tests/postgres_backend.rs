//! The same journey on PostgreSQL: `--database postgres://...`, restart keeps everything.
//! Runs when the test command provides a PostgreSQL server (`CORRAL_TEST_POSTGRES_URL`);
//! `CORRAL_REQUIRE_POSTGRES=1` turns its absence into a failure.

mod common;

use common::{postgres_admin_url, StartOptions, TestServer};

const TIER: &str = "/ssm/managed-instance/activation-tier";

fn fresh_database(admin_url: &str) -> String {
    let name = format!("corral_it_{}", uuid_like());
    let status = std::process::Command::new("psql")
        .arg(admin_url)
        .arg("-q")
        .arg("-c")
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .expect("psql runs");
    assert!(status.success(), "CREATE DATABASE failed");
    match admin_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("admin URL has no database part: {admin_url}"),
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}_{}", std::process::id(), nanos)
}

/// The admin URL and a fresh database on the test PostgreSQL, or `None` (test skipped) when
/// the test command provides none, unless it requires one.
fn admin_and_fresh_database() -> Option<(String, String)> {
    let Some(admin) = postgres_admin_url() else {
        assert!(std::env::var("CORRAL_REQUIRE_POSTGRES").as_deref() != Ok("1"), "CORRAL_TEST_POSTGRES_URL is required");
        eprintln!("skipped: CORRAL_TEST_POSTGRES_URL not set");
        return None;
    };
    let url = fresh_database(&admin);
    Some((admin, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_and_restart_on_postgres() {
    let Some((_, url)) = admin_and_fresh_database() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let opts = StartOptions { args: vec!["--database".into(), url.clone()], ..Default::default() };
    let first = TestServer::start(&data, opts.clone()).expect("start on PostgreSQL");
    assert!(!data.join("corral.db").exists(), "no SQLite file when PostgreSQL is used");
    let who = first.sts().get_caller_identity().send().await.expect("who");
    assert_eq!(who.account(), Some(first.account_id.as_str()));
    first.ssm().update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    let account = first.account_id.clone();
    first.kill9();

    let second = TestServer::start(&data, opts).expect("restart on PostgreSQL");
    assert_eq!(second.account_id, account);
    let got = second.ssm().get_service_setting().setting_id(TIER).send().await.expect("get");
    assert_eq!(got.service_setting().and_then(|s| s.setting_value()), Some("advanced"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_follow_the_store() {
    let Some((admin, url)) = admin_and_fresh_database() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let opts = StartOptions { args: vec!["--database".into(), url.clone()], ..Default::default() };
    let server = TestServer::start(&dir.path().join("data"), opts).expect("start on PostgreSQL");
    let get = |path: &'static str| {
        let client = server.http();
        let url = format!("{}{path}", server.endpoint);
        async move {
            let r = client.get(url).send().await.expect("GET");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    // Unauthenticated, and nothing in the answer but its status.
    assert_eq!(get("/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get("/readyz").await, (200, "ready\n".to_string()));

    // The database goes away: still alive, no longer ready.
    let name = url.rsplit('/').next().expect("db name").to_string();
    let status = std::process::Command::new("psql")
        .arg(&admin)
        .arg("-q")
        .arg("-c")
        .arg(format!("DROP DATABASE {name} WITH (FORCE)"))
        .status()
        .expect("psql runs");
    assert!(status.success(), "DROP DATABASE failed");
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await, (503, "not ready\n".to_string()));
}
