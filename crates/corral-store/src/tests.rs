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

/// The schema as a set of lines: `table.column` for every column, and
/// `index name: table(columns)` for every index not made by a primary key or a UNIQUE
/// constraint (SQLite names those itself). Types are left out: they differ by design
/// (INTEGER milliseconds vs TIMESTAMPTZ, BLOB vs BYTEA).
async fn schema_of(target: &Target) -> std::collections::BTreeSet<String> {
    let (columns, indexes) = if target.url().starts_with("sqlite:") {
        (
            "SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
            "SELECT m.name || ': ' || m.tbl_name || '(' || \
               (SELECT group_concat(name, ',') FROM (SELECT i.name FROM pragma_index_info(m.name) i ORDER BY i.seqno)) \
               || ')' FROM sqlite_master m \
             WHERE m.type = 'index' AND m.name NOT LIKE 'sqlite_autoindex%'",
        )
    } else {
        (
            "SELECT table_name || '.' || column_name FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
            "SELECT i.relname || ': ' || t.relname || '(' || string_agg(a.attname, ',' ORDER BY k.n) || ')' \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE ns.nspname = current_schema() AND NOT x.indisprimary \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
             GROUP BY i.relname, t.relname",
        )
    };
    let mut schema = std::collections::BTreeSet::new();
    for sql in [columns, indexes] {
        schema.extend(target.raw_texts_for_tests(sql.to_string()).await);
    }
    schema
}

/// Migrations are written per backend (their DDL differs), so nothing but this test keeps the
/// two schemas in step: after migrating, both have the same tables, columns and indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_migrate_to_the_same_schema() {
    let Some(pg) = Fixture::postgres().await else { return };
    let lite = Fixture::sqlite();
    let key = crate::SecretKey::generate();
    for f in [&lite, &pg] {
        f.target.open(&key).await.close().await;
    }
    let (a, b) = (schema_of(&lite.target).await, schema_of(&pg.target).await);
    let only_sqlite: Vec<&String> = a.difference(&b).collect();
    let only_postgres: Vec<&String> = b.difference(&a).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the schemas differ:\n  only in SQLite: {only_sqlite:?}\n  only in PostgreSQL: {only_postgres:?}"
    );
    assert!(a.iter().any(|l| l == "managed_instances.channel_closed_at"), "{a:?}");
    let indexes = a.iter().filter(|l| l.contains(": ")).count();
    assert!(indexes >= 10, "the index query found {indexes} indexes: {a:?}");
    pg.finish().await;
    lite.finish().await;
}
