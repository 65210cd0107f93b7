//! Instantiates the conformance suite for both backends, plus backend-specific checks.

use crate::conformance::{conformance_cases, Target};

/// One fresh database, removed by [`Fixture::finish`] (left behind if the test panics).
struct Fixture {
    target: Target,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl Fixture {
    fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("corral.db").display());
        Fixture { target: Target::new(url), _dir: Some(dir), postgres: None }
    }

    /// A fresh database on the server named by `CORRAL_TEST_POSTGRES_URL`, or `None` (test
    /// skipped) when it is unset, unless `CORRAL_REQUIRE_POSTGRES=1`.
    async fn postgres() -> Option<Fixture> {
        use sqlx::Connection;
        let Ok(admin_url) = std::env::var("CORRAL_TEST_POSTGRES_URL") else {
            if std::env::var("CORRAL_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("CORRAL_REQUIRE_POSTGRES=1 but CORRAL_TEST_POSTGRES_URL is not set");
            }
            eprintln!("skipped: CORRAL_TEST_POSTGRES_URL not set");
            return None;
        };
        let name = format!("corral_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect admin");
        // `name` is generated here: letters, digits and underscores only.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close admin");
        let url = with_database(&admin_url, &name);
        Some(Fixture { target: Target::new(url), _dir: None, postgres: Some((admin_url, name)) })
    }

    async fn finish(self) {
        use sqlx::Connection;
        if let Some((admin_url, name)) = self.postgres {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect admin");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .expect("drop database");
            let _ = admin.close().await;
        }
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

macro_rules! instantiate {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture = super::Fixture::sqlite();
                    crate::conformance::$case(&fixture.target).await;
                    fixture.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(fixture) = super::Fixture::postgres().await else { return };
                    crate::conformance::$case(&fixture.target).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}
conformance_cases!(instantiate);

#[test]
fn with_database_rewrites_the_path() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u:p@h/postgres?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
}

#[test]
fn debug_hides_secrets() {
    use crate::{AccessKey, AccessKeyStatus, SessionCredential, SessionPrincipal};
    let t = time::OffsetDateTime::UNIX_EPOCH;
    let key = AccessKey {
        access_key_id: "AKIA".into(),
        account_id: "1".into(),
        user_name: "u".into(),
        secret_access_key: "TOPSECRET".into(),
        status: AccessKeyStatus::Active,
        created_at: t,
    };
    let cred = SessionCredential {
        access_key_id: "ASIA".into(),
        account_id: "1".into(),
        secret_access_key: "TOPSECRET".into(),
        session_token_hash: "h".into(),
        principal: SessionPrincipal::User { user_name: "u".into() },
        created_at: t,
        expires_at: t,
    };
    for text in [format!("{key:?}"), format!("{cred:?}"), format!("{key:#?}")] {
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    for url in ["mysql://x/y", "", "corral.db"] {
        let err = crate::open(url, crate::SecretKey::generate()).await.err().expect("refused");
        assert!(matches!(err, crate::StoreError::InvalidInput(_)), "{url}: {err:?}");
    }
}

#[tokio::test]
async fn sqlite_file_setup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data").join("corral.db");
    let url = format!("sqlite://{}", path.display());
    let store = crate::open(&url, crate::SecretKey::generate()).await.unwrap();
    assert_eq!(store.backend(), crate::Backend::Sqlite);
    store.close().await;
    assert!(path.exists());
    // WAL is a property of the file; synchronous and foreign_keys are per connection and are
    // covered by open()'s options (foreign keys by the NotFound cases of the suite).
    use sqlx::{Connection, Row};
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode").fetch_one(&mut c).await.unwrap().get(0);
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_in_memory_works_across_the_pool() {
    let store = crate::open("sqlite::memory:", crate::SecretKey::generate()).await.unwrap();
    store.set_meta("k", "v").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.get_meta("k").await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("v"));
    }
}
