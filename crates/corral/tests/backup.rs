//! `corral backup`: a consistent copy of the SQLite store taken while the server runs, restored
//! into a fresh data dir with the same secret key, holds every resource and a valid trail.

mod common;

use common::*;

const TIER: &str = "/ssm/managed-instance/activation-tier";

fn corral(args: &[&str]) -> std::process::Output {
    std::process::Command::new(corral_bin()).args(args).output().expect("corral runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_running_restores_every_resource() {
    let dir = tempfile::tempdir().expect("dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let server = TestServer::start(&a, StartOptions::default()).expect("server a");
    assert_eq!(server.iam("Action=CreateUser&UserName=alice").await.status, 200);
    server.create_instance_role("FleetRole").await;
    let (activation, _) = server.create_activation("FleetRole", 3, Some("web"), &[("env", "lab")]).await;
    server.ssm().update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("tier");

    let backup = dir.path().join("corral-backup.db");
    let out = corral(&["backup", "--data-dir", a.to_str().expect("utf8"), "--to", backup.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).expect("backup").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the copy is private");
    }
    // Changes after the backup are not in it; a second backup to the same file is refused.
    assert_eq!(server.iam("Action=CreateUser&UserName=bob").await.status, 200);
    let again = corral(&["backup", "--data-dir", a.to_str().expect("utf8"), "--to", backup.to_str().expect("utf8")]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"));
    let account = server.account_id.clone();
    server.stop();

    // Restore: the copy as corral.db beside the same secret key, in a fresh data dir.
    std::fs::create_dir(&b).expect("mkdir");
    std::fs::copy(&backup, b.join("corral.db")).expect("copy db");
    std::fs::copy(a.join("secret.key"), b.join("secret.key")).expect("copy key");
    let restored = TestServer::start(&b, StartOptions::default()).expect("restored server");
    assert_eq!(restored.account_id, account);
    assert_eq!(restored.iam("Action=GetUser&UserName=alice").await.status, 200);
    assert_eq!(restored.iam("Action=GetUser&UserName=bob").await.status, 404, "taken before bob existed");
    assert_eq!(restored.iam("Action=GetRole&RoleName=FleetRole").await.status, 200);
    let acts = restored.ssm().describe_activations().send().await.expect("activations");
    assert_eq!(acts.activation_list().first().and_then(|x| x.activation_id()), Some(activation.as_str()));
    let tier = restored.ssm().get_service_setting().setting_id(TIER).send().await.expect("tier");
    assert_eq!(tier.service_setting().and_then(|s| s.setting_value()), Some("advanced"));
    let verify = corral(&["audit", "verify", "--data-dir", b.to_str().expect("utf8")]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    // PostgreSQL deployments are told to use pg_dump.
    let pg = corral(&["backup", "--database", "postgres://u@127.0.0.1:1/db", "--to", "/tmp/never-written.db"]);
    assert!(!pg.status.success() && String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
}
