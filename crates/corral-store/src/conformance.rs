//! The conformance suite: one set of cases, written once against [`Store`], that every backend
//! must pass.
//!
//! Each case takes a [`Target`], a fresh empty database, and panics on failure. `src/tests.rs`
//! instantiates every case for SQLite (a temp file) and PostgreSQL (a fresh database per case).
//! With the `conformance` feature, other crates can run the suite through [`run_all`].

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, Row};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::{
    AccessKey, AccessKeyStatus, Account, Backend, IamUser, SecretKey, ServiceSettingRow, SessionCredential,
    SessionPrincipal, Store, StoreError,
};

mod hybrid;
pub use hybrid::*;
mod iam;
pub use iam::*;
mod audit;
pub use audit::*;
mod audit_slot;
pub use audit_slot::*;
mod documents;
pub use documents::*;
mod commands;
pub use commands::*;

/// Calls `$m! { case, case, ... }` with the name of every conformance case.
macro_rules! conformance_cases {
    ($m:ident) => {
        $m! {
            bootstrap_once,
            bootstrap_concurrent,
            users_unique_per_account,
            access_key_round_trip_and_encrypted_at_rest,
            wrong_secret_key_is_crypto_error,
            session_credentials_both_principals,
            service_settings_upsert_and_isolation,
            meta_get_set,
            timestamps_round_trip,
            hostile_strings,
            nul_rejected_everywhere,
            concurrent_create_user,
            reopen_keeps_data_and_migrations,
            roles_crud_case_insensitive,
            role_policy_attachments,
            activations_crud,
            registration_happy_path,
            registration_rejections,
            registration_concurrent_activation_limit,
            registration_concurrent_region_cap,
            list_instances_paging,
            record_ping_keeps_unset_fields,
            deregister_revokes_and_frees_slot,
            instance_tags_put_remove,
            instance_role_and_key_updates,
            secret_hash_keyed,
            hybrid_hostile_strings,
            iam_users_tags_and_delete,
            iam_access_keys,
            iam_groups_and_membership,
            iam_managed_policies_and_versions,
            iam_attachments_and_inline_policies,
            iam_roles_complete,
            iam_identity_policies,
            audit_append_links_chain,
            audit_batch_append,
            audit_batch_spans_chains,
            audit_concurrent_appends,
            audit_chains_per_account_region,
            audit_lookup_filters,
            audit_lookup_time_range_and_paging,
            audit_hostile_strings,
            audit_verify_detects_tampering,
            audit_slot_write_carries_record,
            audit_slot_failed_write_appends_nothing,
            audit_slot_once_per_scope,
            audit_slot_reads_append_nothing,
            audit_slot_unstaged_appends_nothing,
            audit_slot_concurrent_scopes,
            documents_create_and_get,
            document_versions_lifecycle,
            documents_list_paging,
            document_tags_put_remove,
            document_writes_carry_audit_record,
            commands_create_and_read_back,
            command_invocation_compare_and_set,
            command_plugin_upsert_order,
            commands_list_paging_and_filters,
            command_invocation_status_counts,
            commands_active_and_cancel,
            commands_account_region_isolation,
            command_writes_carry_audit_record,
        }
    };
}
// Used by src/tests.rs; unused in a `conformance`-feature build without tests.
#[allow(unused_imports)]
pub(crate) use conformance_cases;

macro_rules! define_run_all {
    ($($case:ident),* $(,)?) => {
        /// Runs every case, each on a fresh database from `fresh`.
        pub async fn run_all<F, Fut>(mut fresh: F)
        where
            F: FnMut() -> Fut,
            Fut: Future<Output = Target>,
        {
            $( $case(&fresh().await).await; )*
        }
    };
}
conformance_cases!(define_run_all);

// === Target ===

/// A fresh, empty database (it may not exist yet for SQLite) for one case.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
}

impl Target {
    /// A target at `url` (`sqlite://...` or `postgres://...`).
    pub fn new(url: impl Into<String>) -> Self {
        Target { url: url.into() }
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens the store on this database (running migrations).
    pub async fn open(&self, key: &SecretKey) -> Arc<dyn Store> {
        crate::open(&self.url, key.clone()).await.expect("open store")
    }

    fn backend(&self) -> Backend {
        if self.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// Runs a raw statement outside the store. `sql` is test-written, never external input.
    async fn raw_exec(&self, sql: String) {
        match self.backend() {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("raw connect");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut c).await.expect("raw exec");
                c.close().await.expect("raw close");
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("raw connect");
                sqlx::query(AssertSqlSafe(sql)).execute(&mut c).await.expect("raw exec");
                c.close().await.expect("raw close");
            }
        }
    }

    /// [`Target::raw_texts`] for the crate's own tests (schema comparisons).
    #[cfg(test)]
    pub(crate) async fn raw_texts_for_tests(&self, sql: String) -> Vec<String> {
        self.raw_texts(sql).await
    }

    /// Runs a raw query returning one TEXT column. `sql` is test-written.
    async fn raw_texts(&self, sql: String) -> Vec<String> {
        match self.backend() {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("raw connect");
                let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut c).await.expect("raw");
                rows.iter().map(|r| r.try_get::<String, _>(0).expect("raw column")).collect()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("raw connect");
                let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut c).await.expect("raw");
                rows.iter().map(|r| r.try_get::<String, _>(0).expect("raw column")).collect()
            }
        }
    }
}

// === sample data ===

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("valid time")
}

fn now_ms() -> OffsetDateTime {
    crate::common::truncate_millis(OffsetDateTime::now_utc()).expect("now")
}

fn unique_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple().to_string().to_uppercase())[..20].to_string()
}

fn account(id: &str) -> Account {
    Account { account_id: id.into(), created_at: at(1_700_000_000_123) }
}

fn user(account_id: &str, user_name: &str) -> IamUser {
    IamUser {
        account_id: account_id.into(),
        user_name: user_name.into(),
        user_id: unique_id("AIDA"),
        path: "/".into(),
        arn: format!("arn:aws:iam::{account_id}:user/{user_name}"),
        created_at: at(1_700_000_001_456),
    }
}

fn access_key(account_id: &str, user_name: &str, secret: &str) -> AccessKey {
    AccessKey {
        access_key_id: unique_id("AKIA"),
        account_id: account_id.into(),
        user_name: user_name.into(),
        secret_access_key: secret.into(),
        status: AccessKeyStatus::Active,
        created_at: at(1_700_000_002_789),
    }
}

fn bootstrap_rows(account_id: &str) -> (Account, IamUser, AccessKey) {
    let secret = format!("admin-secret-{}", uuid::Uuid::new_v4().simple());
    (account(account_id), user(account_id, "admin"), access_key(account_id, "admin", &secret))
}

async fn bootstrapped(store: &dyn Store) -> (Account, IamUser, AccessKey) {
    let rows = bootstrap_rows(ACCOUNT_A);
    store.bootstrap(&rows.0, &rows.1, &rows.2).await.expect("bootstrap");
    rows
}

fn assert_key_eq(got: &AccessKey, want: &AccessKey) {
    assert_eq!(got.access_key_id, want.access_key_id);
    assert_eq!(got.account_id, want.account_id);
    assert_eq!(got.user_name, want.user_name);
    assert!(got.secret_access_key == want.secret_access_key, "secret differs");
    assert_eq!(got.status, want.status);
    assert_eq!(got.created_at, want.created_at);
}

fn assert_session_eq(got: &SessionCredential, want: &SessionCredential) {
    assert_eq!(got.access_key_id, want.access_key_id);
    assert_eq!(got.account_id, want.account_id);
    assert!(got.secret_access_key == want.secret_access_key, "secret differs");
    assert_eq!(got.session_token_hash, want.session_token_hash);
    assert_eq!(got.principal, want.principal);
    assert_eq!(got.created_at, want.created_at);
    assert_eq!(got.expires_at, want.expires_at);
}

fn session(account_id: &str, principal: SessionPrincipal) -> SessionCredential {
    SessionCredential {
        access_key_id: unique_id("ASIA"),
        account_id: account_id.into(),
        secret_access_key: format!("session-secret-{}", uuid::Uuid::new_v4().simple()),
        session_token_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        principal,
        created_at: at(1_700_000_003_000),
        expires_at: at(1_700_003_603_000),
    }
}

fn setting(account_id: &str, region: &str, value: &str) -> ServiceSettingRow {
    ServiceSettingRow {
        account_id: account_id.into(),
        region: region.into(),
        setting_id: "/ssm/managed-instance/activation-tier".into(),
        value: value.into(),
        last_modified_user: format!("arn:aws:iam::{account_id}:user/admin"),
        last_modified_date: at(1_700_000_004_000),
    }
}

/// SQL string literal for test-controlled values.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// === cases ===

/// Bootstrap works once; a second bootstrap fails with AlreadyExists and changes nothing.
pub async fn bootstrap_once(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    assert_eq!(store.get_meta("default_account_id").await.unwrap(), None);
    let (acct, admin, key) = bootstrapped(&*store).await;

    assert_eq!(store.get_account(ACCOUNT_A).await.unwrap(), Some(acct.clone()));
    assert_eq!(store.get_user(ACCOUNT_A, "admin").await.unwrap(), Some(admin.clone()));
    assert_key_eq(&store.get_access_key(&key.access_key_id).await.unwrap().unwrap(), &key);
    assert_eq!(store.get_meta("default_account_id").await.unwrap().as_deref(), Some(ACCOUNT_A));

    let (acct2, admin2, key2) = bootstrap_rows(ACCOUNT_B);
    let err = store.bootstrap(&acct2, &admin2, &key2).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let err = store.bootstrap(&acct, &user(ACCOUNT_A, "admin"), &key2).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists | StoreError::InvalidInput(_)), "{err:?}");

    assert_eq!(store.get_account(ACCOUNT_B).await.unwrap(), None);
    assert_eq!(store.get_user(ACCOUNT_B, "admin").await.unwrap(), None);
    assert!(store.get_access_key(&key2.access_key_id).await.unwrap().is_none());
    assert_eq!(store.get_meta("default_account_id").await.unwrap().as_deref(), Some(ACCOUNT_A));
    assert_eq!(store.get_user(ACCOUNT_A, "admin").await.unwrap(), Some(admin));

    // Rows that do not belong together are refused before touching the database.
    let (acct3, admin3, _) = bootstrap_rows("333333333333");
    let stray = access_key(ACCOUNT_A, "admin", "x");
    let err = store.bootstrap(&acct3, &admin3, &stray).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

/// Several bootstraps racing (replicas starting together): exactly one wins.
pub async fn bootstrap_concurrent(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let (a, u, k) = bootstrap_rows(&format!("90000000000{i}"));
            store.bootstrap(&a, &u, &k).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let accounts = target.raw_texts("SELECT account_id FROM accounts".into()).await;
    assert_eq!(accounts.len(), 1);
    let meta = store.get_meta("default_account_id").await.unwrap();
    assert_eq!(meta.as_deref(), Some(accounts[0].as_str()));
    store.close().await;
}

/// User names are unique per account, not across accounts; user ids are unique everywhere.
pub async fn users_unique_per_account(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&account(ACCOUNT_B)).await.unwrap();
    let err = store.create_account(&account(ACCOUNT_B)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");

    let alice_a = user(ACCOUNT_A, "alice");
    store.create_user(&alice_a).await.unwrap();
    let err = store.create_user(&user(ACCOUNT_A, "alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let alice_b = user(ACCOUNT_B, "alice");
    store.create_user(&alice_b).await.unwrap();

    let mut same_id = user(ACCOUNT_A, "bob");
    same_id.user_id = alice_a.user_id.clone();
    let err = store.create_user(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");

    let err = store.create_user(&user("999999999999", "carol")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    assert_eq!(store.get_user(ACCOUNT_A, "alice").await.unwrap(), Some(alice_a));
    assert_eq!(store.get_user(ACCOUNT_B, "alice").await.unwrap(), Some(alice_b));
    assert_eq!(store.get_user(ACCOUNT_A, "ALICE").await.unwrap(), None);
    assert_eq!(store.get_user(ACCOUNT_A, "bob").await.unwrap(), None);
    assert_eq!(store.get_account("999999999999").await.unwrap(), None);
    store.close().await;
}

/// Access key secrets round-trip, are not stored in plaintext, and are bound to their row.
pub async fn access_key_round_trip_and_encrypted_at_rest(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let (_, _, admin_key) = bootstrapped(&*store).await;
    store.create_user(&user(ACCOUNT_A, "alice")).await.unwrap();

    let mut key = access_key(ACCOUNT_A, "alice", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    key.status = AccessKeyStatus::Inactive;
    store.create_access_key(&key).await.unwrap();
    assert_key_eq(&store.get_access_key(&key.access_key_id).await.unwrap().unwrap(), &key);
    assert!(store.get_access_key("AKIADOESNOTEXIST0000").await.unwrap().is_none());

    for (id, secret) in
        [(&key.access_key_id, &key.secret_access_key), (&admin_key.access_key_id, &admin_key.secret_access_key)]
    {
        let raw = target
            .raw_texts(format!("SELECT secret_access_key_enc FROM access_keys WHERE access_key_id = {}", lit(id)))
            .await;
        assert_eq!(raw.len(), 1);
        assert!(raw[0].starts_with("v1:"), "unexpected stored form");
        assert!(!raw[0].contains(secret.as_str()), "plaintext secret stored");
        assert!(!raw[0].contains(&secret[..8]), "plaintext prefix stored");
    }
    // The secret appears nowhere in the table.
    let all = target.raw_texts("SELECT secret_access_key_enc FROM access_keys".into()).await;
    assert!(all.iter().all(|c| !c.contains("wJalrXUtnFEMI")));

    let err = store.create_access_key(&key).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let err = store.create_access_key(&access_key(ACCOUNT_A, "nobody", "s")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // A ciphertext moved to another row no longer decrypts.
    target
        .raw_exec(format!(
            "UPDATE access_keys SET secret_access_key_enc = (SELECT secret_access_key_enc FROM \
             access_keys WHERE access_key_id = {}) WHERE access_key_id = {}",
            lit(&key.access_key_id),
            lit(&admin_key.access_key_id)
        ))
        .await;
    let err = store.get_access_key(&admin_key.access_key_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto), "{err:?}");
    assert_key_eq(&store.get_access_key(&key.access_key_id).await.unwrap().unwrap(), &key);
    store.close().await;
}

/// Opening the database with another SecretKey: secrets fail with Crypto, the rest reads fine.
pub async fn wrong_secret_key_is_crypto_error(target: &Target) {
    let right = SecretKey::generate();
    let store = target.open(&right).await;
    let (_, admin, key) = bootstrapped(&*store).await;
    let cred = session(ACCOUNT_A, SessionPrincipal::User { user_name: "admin".into() });
    store.create_session_credential(&cred).await.unwrap();
    store.close().await;
    drop(store);

    let store = target.open(&SecretKey::generate()).await;
    let err = store.get_access_key(&key.access_key_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto), "{err:?}");
    let err = store.get_session_credential(&cred.access_key_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Crypto), "{err:?}");
    assert_eq!(store.get_user(ACCOUNT_A, "admin").await.unwrap(), Some(admin));
    store.close().await;
    drop(store);

    let store = target.open(&right).await;
    assert_key_eq(&store.get_access_key(&key.access_key_id).await.unwrap().unwrap(), &key);
    store.close().await;
}

/// Session credentials for a user and for an assumed role round-trip.
pub async fn session_credentials_both_principals(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let as_user = session(ACCOUNT_A, SessionPrincipal::User { user_name: "admin".into() });
    let as_role = session(
        ACCOUNT_A,
        SessionPrincipal::AssumedRole {
            role_name: "SSMServiceRole".into(),
            role_id: "AROAEXAMPLEROLEID001".into(),
            session_name: "mi-0123456789abcdef0".into(),
        },
    );
    store.create_session_credential(&as_user).await.unwrap();
    store.create_session_credential(&as_role).await.unwrap();
    for cred in [&as_user, &as_role] {
        let got = store.get_session_credential(&cred.access_key_id).await.unwrap().unwrap();
        assert_session_eq(&got, cred);
        let raw = target
            .raw_texts(format!(
                "SELECT secret_access_key_enc FROM session_credentials WHERE access_key_id = {}",
                lit(&cred.access_key_id)
            ))
            .await;
        assert!(raw[0].starts_with("v1:") && !raw[0].contains(&cred.secret_access_key));
    }
    assert!(store.get_session_credential("ASIANOPE").await.unwrap().is_none());
    // Session and long-term key ids live in different tables: not mixed up.
    assert!(store.get_access_key(&as_user.access_key_id).await.unwrap().is_none());

    let err = store.create_session_credential(&as_role).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists), "{err:?}");
    let stray = session("999999999999", SessionPrincipal::User { user_name: "admin".into() });
    let err = store.create_session_credential(&stray).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let ghost = session(ACCOUNT_A, SessionPrincipal::User { user_name: "ghost".into() });
    let err = store.create_session_credential(&ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.close().await;
}

/// Service settings: upsert, get, delete, isolated per account and region.
pub async fn service_settings_upsert_and_isolation(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    store.create_account(&account(ACCOUNT_B)).await.unwrap();
    let id = "/ssm/managed-instance/activation-tier";

    let a_use1 = setting(ACCOUNT_A, "us-east-1", "advanced");
    let a_euw1 = setting(ACCOUNT_A, "eu-west-1", "standard");
    let b_use1 = setting(ACCOUNT_B, "us-east-1", "standard");
    store.put_service_setting(&a_use1).await.unwrap();
    assert_eq!(store.get_service_setting(ACCOUNT_A, "us-east-1", id).await.unwrap(), Some(a_use1.clone()));
    assert_eq!(store.get_service_setting(ACCOUNT_A, "eu-west-1", id).await.unwrap(), None);
    assert_eq!(store.get_service_setting(ACCOUNT_B, "us-east-1", id).await.unwrap(), None);
    assert_eq!(store.get_service_setting(ACCOUNT_A, "us-east-1", "/other").await.unwrap(), None);
    store.put_service_setting(&a_euw1).await.unwrap();
    store.put_service_setting(&b_use1).await.unwrap();

    let mut updated = a_use1.clone();
    updated.value = "standard".into();
    updated.last_modified_user = "arn:aws:iam::111111111111:user/alice".into();
    updated.last_modified_date = now_ms();
    store.put_service_setting(&updated).await.unwrap();
    assert_eq!(store.get_service_setting(ACCOUNT_A, "us-east-1", id).await.unwrap(), Some(updated));

    store.delete_service_setting(ACCOUNT_A, "us-east-1", id).await.unwrap();
    assert_eq!(store.get_service_setting(ACCOUNT_A, "us-east-1", id).await.unwrap(), None);
    assert_eq!(store.get_service_setting(ACCOUNT_A, "eu-west-1", id).await.unwrap(), Some(a_euw1));
    assert_eq!(store.get_service_setting(ACCOUNT_B, "us-east-1", id).await.unwrap(), Some(b_use1));
    // Deleting what is absent is fine.
    store.delete_service_setting(ACCOUNT_A, "us-east-1", id).await.unwrap();
    store.delete_service_setting("999999999999", "xx-nowhere-1", "/nope").await.unwrap();

    let err = store.put_service_setting(&setting("999999999999", "us-east-1", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store.close().await;
}

/// Metadata: absent, set, overwrite.
pub async fn meta_get_set(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    assert_eq!(store.get_meta("k").await.unwrap(), None);
    store.set_meta("k", "v1").await.unwrap();
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v1"));
    store.set_meta("k", "v2").await.unwrap();
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v2"));
    store.set_meta("empty", "").await.unwrap();
    assert_eq!(store.get_meta("empty").await.unwrap().as_deref(), Some(""));
    assert_eq!(store.get_meta("K").await.unwrap(), None);
    store.close().await;
}

/// Timestamps come back as the same instant, in UTC, truncated to the millisecond.
pub async fn timestamps_round_trip(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let cases = [
        (datetime!(2024-02-29 12:34:56.789_123_456 +05:30), datetime!(2024-02-29 07:04:56.789 UTC)),
        (datetime!(1969-12-31 23:59:59.999_5 UTC), datetime!(1969-12-31 23:59:59.999 UTC)),
        (datetime!(1970-01-01 0:00 UTC), datetime!(1970-01-01 0:00 UTC)),
        (datetime!(0001-01-01 0:00 UTC), datetime!(0001-01-01 0:00 UTC)),
        (datetime!(9999-12-31 23:59:59.999_999 UTC), datetime!(9999-12-31 23:59:59.999 UTC)),
        (datetime!(2038-01-19 03:14:08.001 -08:00), datetime!(2038-01-19 11:14:08.001 UTC)),
    ];
    let mut acct = account(ACCOUNT_A);
    acct.created_at = cases[0].0;
    store.create_account(&acct).await.unwrap();
    let got = store.get_account(ACCOUNT_A).await.unwrap().unwrap();
    assert_eq!(got.created_at, cases[0].1);
    assert_eq!(got.created_at.offset(), time::UtcOffset::UTC);

    for (i, (input, want)) in cases.iter().enumerate() {
        let mut u = user(ACCOUNT_A, &format!("u{i}"));
        u.created_at = *input;
        store.create_user(&u).await.unwrap();
        let got = store.get_user(ACCOUNT_A, &u.user_name).await.unwrap().unwrap();
        assert_eq!(got.created_at, *want, "case {i}");
        assert_eq!(got.created_at.offset(), time::UtcOffset::UTC, "case {i}");

        let mut s = setting(ACCOUNT_A, &format!("r{i}"), "v");
        s.last_modified_date = *input;
        store.put_service_setting(&s).await.unwrap();
        let got = store.get_service_setting(ACCOUNT_A, &s.region, &s.setting_id).await.unwrap();
        assert_eq!(got.unwrap().last_modified_date, *want, "case {i}");
    }

    let mut cred = session(ACCOUNT_A, SessionPrincipal::User { user_name: "u0".into() });
    cred.created_at = datetime!(2025-06-01 10:00:00.123_999 UTC);
    cred.expires_at = datetime!(2025-06-01 11:00:00.456_001 +01:00);
    store.create_session_credential(&cred).await.unwrap();
    let got = store.get_session_credential(&cred.access_key_id).await.unwrap().unwrap();
    assert_eq!(got.created_at, datetime!(2025-06-01 10:00:00.123 UTC));
    assert_eq!(got.expires_at, datetime!(2025-06-01 10:00:00.456 UTC));

    // Years both backends cannot store alike are refused the same way.
    let mut u = user(ACCOUNT_A, "ancient");
    u.created_at = datetime!(-0001-06-01 0:00 UTC);
    let err = store.create_user(&u).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    store.close().await;
}

fn hostile_values() -> Vec<String> {
    vec![
        "O'Brien".into(),
        "\"double\" `back`".into(),
        "'; DROP TABLE iam_users; --".into(),
        "Robert'); DROP TABLE accounts;--".into(),
        "üñíçødé 日本語 עברית 🦀".into(),
        "\u{202e}rtl\u{200b}zero-width".into(),
        "back\\slash \\x00 %_ wildcards".into(),
        "line\nbreak\ttab\r".into(),
        " padded ".into(),
        String::new(),
        "x".repeat(10_000),
    ]
}

/// Quotes, SQL fragments, unicode and long strings are stored and read back verbatim.
pub async fn hostile_strings(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let hostile_account = "'; DROP TABLE accounts; --";
    store.create_account(&account(hostile_account)).await.unwrap();
    assert!(store.get_account(hostile_account).await.unwrap().is_some());

    for (i, s) in hostile_values().into_iter().enumerate() {
        let mut u = user(ACCOUNT_A, &s);
        u.path = s.clone();
        u.arn = s.clone();
        store.create_user(&u).await.unwrap();
        assert_eq!(store.get_user(ACCOUNT_A, &s).await.unwrap(), Some(u), "value {i}");

        let mut k = access_key(ACCOUNT_A, &s, &s);
        k.access_key_id = format!("{s}#{i}");
        store.create_access_key(&k).await.unwrap();
        assert_key_eq(&store.get_access_key(&k.access_key_id).await.unwrap().unwrap(), &k);

        store.set_meta(&s, &s).await.unwrap();
        assert_eq!(store.get_meta(&s).await.unwrap(), Some(s.clone()), "value {i}");

        let mut row = setting(hostile_account, &s, &s);
        row.setting_id = s.clone();
        row.last_modified_user = s.clone();
        store.put_service_setting(&row).await.unwrap();
        assert_eq!(store.get_service_setting(hostile_account, &s, &s).await.unwrap(), Some(row));

        let cred = session(
            hostile_account,
            SessionPrincipal::AssumedRole { role_name: s.clone(), role_id: s.clone(), session_name: s.clone() },
        );
        store.create_session_credential(&cred).await.unwrap();
        let got = store.get_session_credential(&cred.access_key_id).await.unwrap().unwrap();
        assert_session_eq(&got, &cred);
    }
    // Nothing was dropped or mangled along the way.
    let users: BTreeSet<String> = target
        .raw_texts(format!("SELECT user_name FROM iam_users WHERE account_id = {}", lit(ACCOUNT_A)))
        .await
        .into_iter()
        .collect();
    let mut want: BTreeSet<String> = hostile_values().into_iter().collect();
    want.insert("admin".into());
    assert_eq!(users, want);
    assert_eq!(store.get_account(ACCOUNT_A).await.unwrap().map(|a| a.account_id).as_deref(), Some(ACCOUNT_A));
    store.close().await;
}

/// A NUL character is refused with InvalidInput on every write (PostgreSQL cannot store it in
/// TEXT, so neither backend does); lookups with NUL find nothing.
pub async fn nul_rejected_everywhere(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    let nul = "a\0b";
    let (mut acct, admin, key) = bootstrap_rows(ACCOUNT_A);
    acct.account_id = nul.into();
    let err = store.bootstrap(&acct, &admin, &key).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    bootstrapped(&*store).await;

    let invalid = |r: Result<(), StoreError>| match r {
        Err(StoreError::InvalidInput(msg)) => assert!(msg.contains("NUL"), "{msg}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    invalid(store.create_account(&account(nul)).await);
    invalid(store.create_user(&user(ACCOUNT_A, nul)).await);
    let mut u = user(ACCOUNT_A, "eve");
    u.arn = nul.into();
    invalid(store.create_user(&u).await);
    invalid(store.create_access_key(&access_key(ACCOUNT_A, "admin", nul)).await);
    invalid(store.set_meta(nul, "v").await);
    invalid(store.set_meta("k", nul).await);
    invalid(store.put_service_setting(&setting(ACCOUNT_A, "us-east-1", nul)).await);
    let cred = session(
        ACCOUNT_A,
        SessionPrincipal::AssumedRole { role_name: "r".into(), role_id: "AROA".into(), session_name: nul.into() },
    );
    invalid(store.create_session_credential(&cred).await);

    assert_eq!(store.get_user(ACCOUNT_A, nul).await.unwrap(), None);
    assert_eq!(store.get_user(ACCOUNT_A, "eve").await.unwrap(), None);
    assert_eq!(store.get_account(nul).await.unwrap(), None);
    assert_eq!(store.get_meta(nul).await.unwrap(), None);
    assert_eq!(store.get_meta("k").await.unwrap(), None);
    assert!(store.get_access_key(nul).await.unwrap().is_none());
    assert!(store.get_session_credential(nul).await.unwrap().is_none());
    assert_eq!(store.get_service_setting(ACCOUNT_A, nul, "x").await.unwrap(), None);
    store.delete_service_setting(ACCOUNT_A, nul, "x").await.unwrap();
    store.close().await;
}

/// Eight tasks create the same user at once: exactly one succeeds, the rest get AlreadyExists.
pub async fn concurrent_create_user(target: &Target) {
    let store = target.open(&SecretKey::generate()).await;
    bootstrapped(&*store).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let u = user(ACCOUNT_A, "racer");
            let id = u.user_id.clone();
            store.create_user(&u).await.map(|()| id)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(id) => winners.push(id),
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let got = store.get_user(ACCOUNT_A, "racer").await.unwrap().unwrap();
    assert_eq!(got.user_id, winners[0]);
    store.close().await;
}

/// Closing and reopening keeps every row and does not re-run migrations.
pub async fn reopen_keeps_data_and_migrations(target: &Target) {
    let key = SecretKey::generate();
    let store = target.open(&key).await;
    let version = store.schema_version().await.unwrap();
    assert!(version >= 1, "schema version {version}");
    let (acct, admin, admin_key) = bootstrapped(&*store).await;
    store.set_meta("color", "blue").await.unwrap();
    let row = setting(ACCOUNT_A, "us-east-1", "advanced");
    store.put_service_setting(&row).await.unwrap();
    store.close().await;
    drop(store);

    let migrations_sql = "SELECT CAST(version AS TEXT) || ' ' || CAST(installed_on AS TEXT) \
                          FROM _sqlx_migrations ORDER BY version";
    let before = target.raw_texts(migrations_sql.into()).await;
    assert_eq!(before.len() as i64, version);

    for _ in 0..2 {
        let store = target.open(&key).await;
        assert_eq!(store.schema_version().await.unwrap(), version);
        assert_eq!(store.get_account(ACCOUNT_A).await.unwrap(), Some(acct.clone()));
        assert_eq!(store.get_user(ACCOUNT_A, "admin").await.unwrap(), Some(admin.clone()));
        let got = store.get_access_key(&admin_key.access_key_id).await.unwrap().unwrap();
        assert_key_eq(&got, &admin_key);
        assert_eq!(store.get_meta("color").await.unwrap().as_deref(), Some("blue"));
        assert_eq!(
            store.get_service_setting(ACCOUNT_A, "us-east-1", &row.setting_id).await.unwrap(),
            Some(row.clone())
        );
        store.close().await;
    }
    assert_eq!(target.raw_texts(migrations_sql.into()).await, before);
}
