//! Temporary credentials: `GetSessionToken`, signing with a session token, and its expiry.

mod common;

use aws_sdk_ssm::error::ProvideErrorMetadata;
use common::TestServer;

const TIER: &str = "/ssm/managed-instance/activation-tier";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_credentials_work_and_are_checked() {
    let (_dir, server) = TestServer::start_fresh();
    let out = server.sts().get_session_token().duration_seconds(900).send().await.expect("GetSessionToken");
    let creds = out.credentials().expect("credentials");
    assert!(creds.access_key_id().starts_with("ASIA"));
    let lifetime = creds.expiration().secs() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((850..=905).contains(&lifetime), "expires in {lifetime} s");

    let session = server.sdk_config_with(creds.access_key_id(), creds.secret_access_key(), Some(creds.session_token()));
    let who = aws_sdk_sts::Client::new(&session).get_caller_identity().send().await.expect("who with session");
    assert_eq!(who.arn(), Some(format!("arn:aws:iam::{}:user/admin", server.account_id).as_str()));
    aws_sdk_ssm::Client::new(&session)
        .get_service_setting()
        .setting_id(TIER)
        .send()
        .await
        .expect("SSM with session credentials");

    // Session credentials cannot mint more session credentials (AWS's rule).
    let err = aws_sdk_sts::Client::new(&session).get_session_token().send().await.expect_err("nested");
    assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");

    // A wrong token, or none, is an invalid token.
    let forged = server.sdk_config_with(creds.access_key_id(), creds.secret_access_key(), Some("Zm9yZ2Vk"));
    let err =
        aws_sdk_ssm::Client::new(&forged).get_service_setting().setting_id(TIER).send().await.expect_err("forged");
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let tokenless = server.sdk_config_with(creds.access_key_id(), creds.secret_access_key(), None);
    let err = aws_sdk_sts::Client::new(&tokenless).get_caller_identity().send().await.expect_err("no token");
    assert_eq!(err.code(), Some("InvalidClientTokenId"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_duration_is_validated() {
    let (_dir, server) = TestServer::start_fresh();
    let err = server.sts().get_session_token().duration_seconds(129_601).send().await.expect_err("too long");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_credentials_are_refused() {
    let (_dir, server) = TestServer::start_fresh();
    // Put an already-expired session into the live store, as a session would be an hour later.
    let key = corral_store::load_or_create_key_file(&server.data_dir.join("secret.key")).expect("key");
    let url = format!("sqlite://{}", server.data_dir.join("corral.db").display());
    let store = corral_store::open(&url, key).await.expect("open store");
    let token = "expired-session-token";
    let now = time::OffsetDateTime::now_utc();
    store
        .create_session_credential(&corral_store::SessionCredential {
            access_key_id: "ASIAEXPIREDEXAMPLE00".into(),
            account_id: server.account_id.clone(),
            secret_access_key: "expiredSecretExample0000000000000000000+".into(),
            session_token_hash: corral_server::ids::session_token_hash(token),
            principal: corral_store::SessionPrincipal::User { user_name: "admin".into() },
            created_at: now - time::Duration::hours(2),
            expires_at: now - time::Duration::hours(1),
        })
        .await
        .expect("insert");
    let expired =
        server.sdk_config_with("ASIAEXPIREDEXAMPLE00", "expiredSecretExample0000000000000000000+", Some(token));
    let err =
        aws_sdk_ssm::Client::new(&expired).get_service_setting().setting_id(TIER).send().await.expect_err("expired");
    assert_eq!(err.code(), Some("ExpiredTokenException"), "{err:?}");
    let err = aws_sdk_sts::Client::new(&expired).get_caller_identity().send().await.expect_err("expired");
    assert_eq!(err.code(), Some("ExpiredToken"), "{err:?}");
}
