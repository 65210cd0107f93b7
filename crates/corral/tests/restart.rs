//! First start, later starts and crashes: the account, the admin key and settings persist, and
//! nothing is regenerated.

mod common;

use common::{StartOptions, TestServer};

const TIER: &str = "/ssm/managed-instance/activation-tier";

async fn tier(server: &TestServer) -> String {
    let got = server.ssm().get_service_setting().setting_id(TIER).send().await.expect("get tier");
    got.service_setting().and_then(|s| s.setting_value()).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_account_key_and_settings() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let first = TestServer::start(&data, StartOptions::default()).expect("first start");
    assert!(first.banner.iter().any(|l| l.contains("first start")), "{:?}", first.banner);
    let account = first.account_id.clone();
    let creds = first.admin_credentials();
    let ca = first.ca_pem();
    let server_cert = std::fs::read(data.join("server.pem")).expect("server.pem");
    first.ssm().update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    first.stop();

    let second = TestServer::start(&data, StartOptions::default()).expect("second start");
    assert!(!second.banner.iter().any(|l| l.contains("first start")), "{:?}", second.banner);
    assert_eq!(second.account_id, account);
    assert_eq!(second.admin_credentials(), creds);
    assert_eq!(second.ca_pem(), ca, "the CA must not be regenerated");
    assert_eq!(std::fs::read(data.join("server.pem")).expect("server.pem"), server_cert);
    let who = second.sts().get_caller_identity().send().await.expect("same key still works");
    assert_eq!(who.account(), Some(account.as_str()));
    assert_eq!(tier(&second).await, "advanced");

    // A crash right after an acknowledged write loses nothing.
    second.ssm().reset_service_setting().setting_id(TIER).send().await.expect("reset");
    second.ssm().update_service_setting().setting_id(TIER).setting_value("advanced").send().await.expect("update");
    second.kill9();
    let third = TestServer::start(&data, StartOptions::default()).expect("start after kill -9");
    assert_eq!(tier(&third).await, "advanced");
    assert_eq!(third.account_id, account);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_id_flag_is_used_once_and_then_enforced() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let opts = StartOptions { args: vec!["--account-id".into(), "111122223333".into()], ..Default::default() };
    let first = TestServer::start(&data, opts.clone()).expect("first start");
    assert_eq!(first.account_id, "111122223333");
    first.stop();
    // The same ID again is fine; another is refused with a clear message.
    TestServer::start(&data, opts).expect("same account id").stop();
    let other = StartOptions { args: vec!["--account-id".into(), "444455556666".into()], ..Default::default() };
    let err = TestServer::start(&data, other).err().expect("a disagreeing --account-id must be refused");
    assert!(err.contains("111122223333") && err.contains("disagrees"), "{err}");
    // So is a malformed one on first start.
    let bad = StartOptions { args: vec!["--account-id".into(), "12345".into()], ..Default::default() };
    let err = TestServer::start(&dir.path().join("other"), bad).err().expect("malformed account id");
    assert!(err.contains("12 digits"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_key_can_be_provisioned_on_first_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = "AKIAQ2Z7EXAMPLE23456";
    let secret = "abcdEFGH1234/+abcdEFGH1234abcdEFGH1234ab";
    let opts = StartOptions {
        env: vec![
            ("CORRAL_ADMIN_ACCESS_KEY_ID".into(), key.into()),
            ("CORRAL_ADMIN_SECRET_ACCESS_KEY".into(), secret.into()),
        ],
        ..Default::default()
    };
    let server = TestServer::start(&dir.path().join("data"), opts).expect("start");
    assert_eq!(server.admin_credentials(), (key.to_string(), secret.to_string()));
    server.sts().get_caller_identity().send().await.expect("provisioned key works");

    let bad = StartOptions {
        env: vec![
            ("CORRAL_ADMIN_ACCESS_KEY_ID".into(), "FOOBARKEY".into()),
            ("CORRAL_ADMIN_SECRET_ACCESS_KEY".into(), secret.into()),
        ],
        ..Default::default()
    };
    let err = TestServer::start(&dir.path().join("other"), bad).err().expect("malformed key refused");
    assert!(err.contains("CORRAL_ADMIN_ACCESS_KEY_ID"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_files_and_modes() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, server) = TestServer::start_fresh();
    let mode = |name: &str| {
        std::fs::metadata(server.data_dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")).permissions().mode()
            & 0o777
    };
    for secret in ["aws-credentials", "secret.key", "ca-key.pem", "server-key.pem"] {
        assert_eq!(mode(secret), 0o600, "{secret} must be private");
    }
    for public in ["ca.pem", "aws-config", "corral.db"] {
        assert!(server.data_dir.join(public).exists(), "{public} missing");
    }
    let config = std::fs::read_to_string(server.data_dir.join("aws-config")).expect("aws-config");
    assert!(config.contains("[profile corral]"), "{config}");
    assert!(config.contains(&format!("endpoint_url = {}", server.endpoint)), "{config}");
    assert!(config.contains("ca_bundle = /"), "{config}");
    assert!(config.contains("region = us-east-1"), "{config}");
    // The database never holds the admin secret in clear.
    let (_, secret) = server.admin_credentials();
    let db = std::fs::read(server.data_dir.join("corral.db")).expect("db");
    let wal = std::fs::read(server.data_dir.join("corral.db-wal")).unwrap_or_default();
    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
    assert!(!contains(&db) && !contains(&wal), "the secret access key is stored in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_data_dir_and_the_cli_config_is_left_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let first = TestServer::start(&data, StartOptions::default()).expect("first start");
    let config_before = std::fs::read_to_string(data.join("aws-config")).expect("aws-config");
    let credentials_before = std::fs::read_to_string(data.join("aws-credentials")).expect("aws-credentials");

    // A second server on the same data dir (another port) is refused, naming the first one.
    let err = TestServer::start(&data, StartOptions::default()).err().expect("second server refused");
    assert!(err.contains("another Corral server"), "{err}");
    assert!(err.contains(&first.endpoint), "names the running server's endpoint: {err}");
    // ...and it changed nothing the first one's users depend on.
    assert_eq!(std::fs::read_to_string(data.join("aws-config")).expect("aws-config"), config_before);
    assert_eq!(std::fs::read_to_string(data.join("aws-credentials")).expect("creds"), credentials_before);
    first.sts().get_caller_identity().send().await.expect("the first server still serves");

    // A crash leaves no stale lock: the next server takes over at once.
    let port = first.host.rsplit(':').next().expect("port").to_string();
    first.kill9();
    let same_port = StartOptions { args: vec!["--listen".into(), format!("127.0.0.1:{port}")], ..Default::default() };
    let second = TestServer::start(&data, same_port).expect("starts after a crash");
    // Same endpoint: the CLI config is not rewritten.
    assert_eq!(std::fs::read_to_string(data.join("aws-config")).expect("aws-config"), config_before);
    assert!(!second.log().contains("rewrote the AWS CLI config"), "{}", second.log());
    second.stop();

    // Another endpoint: rewritten, and the log says so.
    let third = TestServer::start(&data, StartOptions::default()).expect("third start");
    let config_after = std::fs::read_to_string(data.join("aws-config")).expect("aws-config");
    assert!(config_after.contains(&third.endpoint), "{config_after}");
    assert!(third.log().contains("the endpoint changed"), "{}", third.log());
}
