//! PostgreSQL backend: a database that several server replicas may share.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use time::OffsetDateTime;

use crate::common::{truncate_millis, unstorable};
use crate::crypto::{Purpose, Sealer};
use crate::error::{StoreError, StoreResult};
use crate::model::{
    validate_bootstrap, AccessKey, AccessKeyStatus, Account, IamUser, ServiceSettingRow, SessionCredential,
    SessionPrincipal,
};
use crate::{Backend, Store};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per replica; PostgreSQL's default `max_connections` (100) fits several
/// replicas at this size.
const MAX_CONNECTIONS: u32 = 10;

/// [`Store`] on PostgreSQL.
pub(crate) struct PgStore {
    pool: PgPool,
    sealer: Sealer,
}

/// A timestamp as both backends store it: UTC, truncated to the millisecond.
fn ts(t: OffsetDateTime) -> StoreResult<OffsetDateTime> {
    truncate_millis(t)
}

// === impl PgStore ===

impl PgStore {
    pub(crate) async fn open(url: &str, sealer: Sealer) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
        // The migrator holds a PostgreSQL advisory lock while it runs, so replicas starting
        // together apply each migration once.
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool, sealer })
    }

    fn access_key_from_row(&self, row: &PgRow) -> StoreResult<AccessKey> {
        let access_key_id: String = row.try_get("access_key_id")?;
        let sealed: String = row.try_get("secret_access_key_enc")?;
        let secret_access_key = self.sealer.open(Purpose::AccessKey, &access_key_id, &sealed)?;
        let status: String = row.try_get("status")?;
        Ok(AccessKey {
            account_id: row.try_get("account_id")?,
            user_name: row.try_get("user_name")?,
            secret_access_key,
            status: AccessKeyStatus::from_db(&status)?,
            created_at: row.try_get("created_at")?,
            access_key_id,
        })
    }

    fn session_from_row(&self, row: &PgRow) -> StoreResult<SessionCredential> {
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
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            access_key_id,
        })
    }
}

fn user_from_row(row: &PgRow) -> StoreResult<IamUser> {
    Ok(IamUser {
        account_id: row.try_get("account_id")?,
        user_name: row.try_get("user_name")?,
        user_id: row.try_get("user_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        created_at: row.try_get("created_at")?,
    })
}

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (account_id, created_at) VALUES ($1, $2)";
const INSERT_USER: &str = "INSERT INTO iam_users \
     (account_id, user_name, user_id, path, arn, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_ACCESS_KEY: &str = "INSERT INTO access_keys \
     (access_key_id, account_id, user_name, secret_access_key_enc, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const UPSERT_META: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// === impl Store for PgStore ===

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
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
        let mut tx = self.pool.begin().await?;
        // Under READ COMMITTED two replicas could both see "no account" and bootstrap twice;
        // this lock mode conflicts with itself, so the second waits and then sees the first.
        sqlx::query("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts)").fetch_one(&mut *tx).await?;
        if any {
            return Err(StoreError::AlreadyExists);
        }
        sqlx::query(INSERT_ACCOUNT).bind(&account.account_id).bind(ts(account.created_at)?).execute(&mut *tx).await?;
        sqlx::query(INSERT_USER)
            .bind(&admin.account_id)
            .bind(&admin.user_name)
            .bind(&admin.user_id)
            .bind(&admin.path)
            .bind(&admin.arn)
            .bind(ts(admin.created_at)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_ACCESS_KEY)
            .bind(&key.access_key_id)
            .bind(&key.account_id)
            .bind(&key.user_name)
            .bind(&sealed)
            .bind(key.status.as_str())
            .bind(ts(key.created_at)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query(UPSERT_META).bind("default_account_id").bind(&account.account_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        account.validate()?;
        sqlx::query(INSERT_ACCOUNT).bind(&account.account_id).bind(ts(account.created_at)?).execute(&self.pool).await?;
        Ok(())
    }

    async fn get_account(&self, account_id: &str) -> StoreResult<Option<Account>> {
        if unstorable(account_id) {
            return Ok(None);
        }
        let row = sqlx::query("SELECT account_id, created_at FROM accounts WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok(Account { account_id: row.try_get("account_id")?, created_at: row.try_get("created_at")? }))
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
            .bind(ts(user.created_at)?)
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
             WHERE account_id = $1 AND user_name = $2",
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
            .bind(ts(key.created_at)?)
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
             created_at FROM access_keys WHERE access_key_id = $1",
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
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .bind(ts(cred.created_at)?)
        .bind(ts(cred.expires_at)?)
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
             FROM session_credentials WHERE access_key_id = $1",
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
             WHERE account_id = $1 AND region = $2 AND setting_id = $3",
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
                last_modified_date: row.try_get("last_modified_date")?,
            })
        })
        .transpose()
    }

    async fn put_service_setting(&self, row: &ServiceSettingRow) -> StoreResult<()> {
        row.validate()?;
        sqlx::query(
            "INSERT INTO service_settings (account_id, region, setting_id, value, \
             last_modified_user, last_modified_date) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id, region, setting_id) DO UPDATE SET \
             value = excluded.value, last_modified_user = excluded.last_modified_user, \
             last_modified_date = excluded.last_modified_date",
        )
        .bind(&row.account_id)
        .bind(&row.region)
        .bind(&row.setting_id)
        .bind(&row.value)
        .bind(&row.last_modified_user)
        .bind(ts(row.last_modified_date)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_service_setting(&self, account_id: &str, region: &str, setting_id: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(setting_id) {
            return Ok(());
        }
        sqlx::query("DELETE FROM service_settings WHERE account_id = $1 AND region = $2 AND setting_id = $3")
            .bind(account_id)
            .bind(region)
            .bind(setting_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
