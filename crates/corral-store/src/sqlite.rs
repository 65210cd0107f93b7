//! SQLite backend: one database file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;

use crate::common::{from_millis, to_millis, unstorable};
use crate::crypto::{Purpose, Sealer};
use crate::error::{StoreError, StoreResult};
use crate::model::{
    validate_bootstrap, AccessKey, AccessKeyStatus, Account, IamUser, ServiceSettingRow, SessionCredential,
    SessionPrincipal,
};
use crate::{Backend, Store};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL allows concurrent readers; writers are serialised by SQLite itself.
const MAX_CONNECTIONS: u32 = 8;

/// [`Store`] on SQLite.
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    sealer: Sealer,
}

// === impl SqliteStore ===

impl SqliteStore {
    pub(crate) async fn open(url: &str, sealer: Sealer) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidInput(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: each commit fsyncs the WAL, so acknowledged writes survive kill -9 and
            // power loss. (NORMAL with WAL only survives a process crash.)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let file = options.get_filename();
        if !file.as_os_str().is_empty() && !url.contains(":memory:") && !url.contains("mode=memory") {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", parent.display())))?;
            }
        }
        let pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool, sealer })
    }

    /// A write transaction that takes SQLite's write lock up front. A deferred transaction
    /// that reads first and writes later can fail with SQLITE_BUSY without waiting when
    /// another connection writes in between; `BEGIN IMMEDIATE` waits (busy_timeout) instead.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    fn access_key_from_row(&self, row: &SqliteRow) -> StoreResult<AccessKey> {
        let access_key_id: String = row.try_get("access_key_id")?;
        let sealed: String = row.try_get("secret_access_key_enc")?;
        let secret_access_key = self.sealer.open(Purpose::AccessKey, &access_key_id, &sealed)?;
        let status: String = row.try_get("status")?;
        Ok(AccessKey {
            account_id: row.try_get("account_id")?,
            user_name: row.try_get("user_name")?,
            secret_access_key,
            status: AccessKeyStatus::from_db(&status)?,
            created_at: from_millis(row.try_get("created_at")?)?,
            access_key_id,
        })
    }

    fn session_from_row(&self, row: &SqliteRow) -> StoreResult<SessionCredential> {
        let access_key_id: String = row.try_get("access_key_id")?;
        let sealed: String = row.try_get("secret_access_key_enc")?;
        let secret_access_key = self.sealer.open(Purpose::SessionCredential, &access_key_id, &sealed)?;
        let principal_type: String = row.try_get("principal_type")?;
        let principal = SessionPrincipal::from_columns(
            &principal_type,
            row.try_get("user_name")?,
            row.try_get("role_name")?,
            row.try_get("role_id")?,
            row.try_get("session_name")?,
        )?;
        Ok(SessionCredential {
            account_id: row.try_get("account_id")?,
            secret_access_key,
            session_token_hash: row.try_get("session_token_hash")?,
            principal,
            created_at: from_millis(row.try_get("created_at")?)?,
            expires_at: from_millis(row.try_get("expires_at")?)?,
            access_key_id,
        })
    }
}

fn user_from_row(row: &SqliteRow) -> StoreResult<IamUser> {
    Ok(IamUser {
        account_id: row.try_get("account_id")?,
        user_name: row.try_get("user_name")?,
        user_id: row.try_get("user_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (account_id, created_at) VALUES (?, ?)";
const INSERT_USER: &str = "INSERT INTO iam_users \
     (account_id, user_name, user_id, path, arn, created_at) VALUES (?, ?, ?, ?, ?, ?)";
const INSERT_ACCESS_KEY: &str = "INSERT INTO access_keys \
     (access_key_id, account_id, user_name, secret_access_key_enc, status, created_at) \
     VALUES (?, ?, ?, ?, ?, ?)";
const UPSERT_META: &str = "INSERT INTO meta (key, value) VALUES (?, ?) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// === impl Store for SqliteStore ===

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?;
        Ok(version.unwrap_or(0))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        if unstorable(key) {
            return Ok(None);
        }
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?").bind(key).fetch_optional(&self.pool).await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        crate::common::check_text("meta key", key)?;
        crate::common::check_text("meta value", value)?;
        sqlx::query(UPSERT_META).bind(key).bind(value).execute(&self.pool).await?;
        Ok(())
    }

    async fn bootstrap(&self, account: &Account, admin: &IamUser, key: &AccessKey) -> StoreResult<()> {
        validate_bootstrap(account, admin, key)?;
        let sealed = self.sealer.seal(Purpose::AccessKey, &key.access_key_id, &key.secret_access_key)?;
        let mut tx = self.begin_write().await?;
        let any: Option<i64> = sqlx::query_scalar("SELECT 1 FROM accounts LIMIT 1").fetch_optional(&mut *tx).await?;
        if any.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        sqlx::query(INSERT_ACCOUNT)
            .bind(&account.account_id)
            .bind(to_millis(account.created_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_USER)
            .bind(&admin.account_id)
            .bind(&admin.user_name)
            .bind(&admin.user_id)
            .bind(&admin.path)
            .bind(&admin.arn)
            .bind(to_millis(admin.created_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_ACCESS_KEY)
            .bind(&key.access_key_id)
            .bind(&key.account_id)
            .bind(&key.user_name)
            .bind(&sealed)
            .bind(key.status.as_str())
            .bind(to_millis(key.created_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_META).bind("default_account_id").bind(&account.account_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        account.validate()?;
        sqlx::query(INSERT_ACCOUNT)
            .bind(&account.account_id)
            .bind(to_millis(account.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_account(&self, account_id: &str) -> StoreResult<Option<Account>> {
        if unstorable(account_id) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT account_id, created_at FROM accounts WHERE account_id = ?")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(Account { account_id: row.try_get("account_id")?, created_at: from_millis(row.try_get("created_at")?)? })
        })
        .transpose()
    }

    async fn create_user(&self, user: &IamUser) -> StoreResult<()> {
        user.validate()?;
        sqlx::query(INSERT_USER)
            .bind(&user.account_id)
            .bind(&user.user_name)
            .bind(&user.user_id)
            .bind(&user.path)
            .bind(&user.arn)
            .bind(to_millis(user.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_user(&self, account_id: &str, user_name: &str) -> StoreResult<Option<IamUser>> {
        if unstorable(account_id) || unstorable(user_name) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT account_id, user_name, user_id, path, arn, created_at FROM iam_users \
             WHERE account_id = ? AND user_name = ?",
        )
        .bind(account_id)
        .bind(user_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn create_access_key(&self, key: &AccessKey) -> StoreResult<()> {
        key.validate()?;
        let sealed = self.sealer.seal(Purpose::AccessKey, &key.access_key_id, &key.secret_access_key)?;
        sqlx::query(INSERT_ACCESS_KEY)
            .bind(&key.access_key_id)
            .bind(&key.account_id)
            .bind(&key.user_name)
            .bind(&sealed)
            .bind(key.status.as_str())
            .bind(to_millis(key.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>> {
        if unstorable(access_key_id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT access_key_id, account_id, user_name, secret_access_key_enc, status, \
             created_at FROM access_keys WHERE access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| self.access_key_from_row(&row)).transpose()
    }

    async fn create_session_credential(&self, cred: &SessionCredential) -> StoreResult<()> {
        cred.validate()?;
        let sealed = self.sealer.seal(Purpose::SessionCredential, &cred.access_key_id, &cred.secret_access_key)?;
        let (principal_type, user_name, role_name, role_id, session_name) = cred.principal.to_columns();
        sqlx::query(
            "INSERT INTO session_credentials (access_key_id, account_id, secret_access_key_enc, \
             session_token_hash, principal_type, user_name, role_name, role_id, session_name, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&cred.access_key_id)
        .bind(&cred.account_id)
        .bind(&sealed)
        .bind(&cred.session_token_hash)
        .bind(principal_type)
        .bind(user_name)
        .bind(role_name)
        .bind(role_id)
        .bind(session_name)
        .bind(to_millis(cred.created_at))
        .bind(to_millis(cred.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session_credential(&self, access_key_id: &str) -> StoreResult<Option<SessionCredential>> {
        if unstorable(access_key_id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT access_key_id, account_id, secret_access_key_enc, session_token_hash, \
             principal_type, user_name, role_name, role_id, session_name, created_at, expires_at \
             FROM session_credentials WHERE access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| self.session_from_row(&row)).transpose()
    }

    async fn get_service_setting(
        &self,
        account_id: &str,
        region: &str,
        setting_id: &str,
    ) -> StoreResult<Option<ServiceSettingRow>> {
        if unstorable(account_id) || unstorable(region) || unstorable(setting_id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT account_id, region, setting_id, value, last_modified_user, \
             last_modified_date FROM service_settings \
             WHERE account_id = ? AND region = ? AND setting_id = ?",
        )
        .bind(account_id)
        .bind(region)
        .bind(setting_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ServiceSettingRow {
                account_id: row.try_get("account_id")?,
                region: row.try_get("region")?,
                setting_id: row.try_get("setting_id")?,
                value: row.try_get("value")?,
                last_modified_user: row.try_get("last_modified_user")?,
                last_modified_date: from_millis(row.try_get("last_modified_date")?)?,
            })
        })
        .transpose()
    }

    async fn put_service_setting(&self, row: &ServiceSettingRow) -> StoreResult<()> {
        row.validate()?;
        sqlx::query(
            "INSERT INTO service_settings (account_id, region, setting_id, value, \
             last_modified_user, last_modified_date) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (account_id, region, setting_id) DO UPDATE SET \
             value = excluded.value, last_modified_user = excluded.last_modified_user, \
             last_modified_date = excluded.last_modified_date",
        )
        .bind(&row.account_id)
        .bind(&row.region)
        .bind(&row.setting_id)
        .bind(&row.value)
        .bind(&row.last_modified_user)
        .bind(to_millis(row.last_modified_date))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_service_setting(&self, account_id: &str, region: &str, setting_id: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(setting_id) {
            return Ok(());
        }
        sqlx::query("DELETE FROM service_settings WHERE account_id = ? AND region = ? AND setting_id = ?")
            .bind(account_id)
            .bind(region)
            .bind(setting_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
