//! The store's operations, written once for both engines ([`crate::db`] runs them on SQLite
//! or PostgreSQL): accounts, credentials, service settings, roles, activations and managed
//! instances here; IAM, documents, Run Command and the audit trail in the submodules.
//!
//! Statements are written in the neutral spelling of `db::dialect` (SQLite's, with row locks
//! marked `/*FOR UPDATE*/`); on PostgreSQL those locks make checks made inside a transaction
//! hold until it commits, on SQLite `BEGIN IMMEDIATE` serialises every writer.

use time::OffsetDateTime;

use crate::common::{
    activation_columns, check_tags, check_text, check_time, collect_tagged, constant_time_eq, count_from_db,
    instance_columns, role_columns, role_name_key, truncate_millis, unstorable,
};
use crate::crypto::{Purpose, Sealer};
use crate::db::{query, query_scalar, sql, Db, Query, Row, Tx};
use crate::error::{StoreError, StoreResult};
use crate::model::{
    validate_bootstrap, AccessKey, AccessKeyStatus, Account, Activation, IamRole, IamUser, InstanceInfo,
    ManagedInstance, NewRegistration, RegistrationOutcome, ServiceSettingRow, SessionCredential, SessionPrincipal, Tag,
};
use crate::model::{
    AccessKeyMetadata, IamEntity, IamGroup, IdentityPolicies, ManagedPolicy, ManagedPolicyVersion, PolicySubject,
};
use crate::model::{Command, CommandFilter, CommandInvocation, InvocationStatusCount, InvocationUpdate};
use crate::model::{Document, DocumentListing, DocumentVersion};
use crate::pending_audit::{self, Claim};
use crate::{Backend, Store};

// IAM access control (users, keys, groups, managed and inline policies).
mod iam;
// SSM documents, their versions and tags.
mod documents;
// Run Command: commands, their invocations and plugin results.
mod commands;
// The audit trail (hash chains of CloudTrail records).
mod audit;

/// [`Store`] on either engine.
pub(crate) struct SqlStore {
    db: Db,
    sealer: Sealer,
}

/// Commits a write transaction (one from [`SqlStore::begin_write`]). Every write path
/// commits through here: inside [`crate::with_audit_slot`] with a staged, unwritten record, the
/// record is appended to its chain as the last statement of `tx`, and the slot is marked
/// written once the commit succeeded (see `crate::pending_audit`).
async fn commit_write(tx: Tx) -> StoreResult<()> {
    commit_claimed(tx, pending_audit::claim()).await
}

/// [`commit_write`] with the record already claimed (or none).
async fn commit_claimed(mut tx: Tx, claim: Option<Claim>) -> StoreResult<()> {
    let Some(claim) = claim else {
        tx.commit().await?;
        return Ok(());
    };
    // Dropping `claim` on an error gives the record back to the slot; dropping `tx` rolls back.
    let stored = audit::append_in_tx(&mut tx, claim.record()).await?;
    tx.commit().await?;
    claim.written(stored);
    Ok(())
}

// === impl SqlStore ===

impl SqlStore {
    pub(crate) fn new(db: Db, sealer: Sealer) -> Self {
        SqlStore { db, sealer }
    }

    /// A write transaction; commit it with [`commit_write`].
    async fn begin_write(&self) -> StoreResult<Tx> {
        self.db.begin_write().await
    }

    /// A one-statement write. Outside an audit scope with a staged record it autocommits as
    /// before; inside one it runs in a write transaction that also carries the record
    /// ([`commit_write`]). With `must_change`, no affected row is [`StoreError::NotFound`]
    /// (and nothing commits).
    async fn write_one(&self, query: Query<'_>, must_change: bool) -> StoreResult<()> {
        let Some(claim) = pending_audit::claim() else {
            let done = query.execute(self.db.writer()).await?;
            return if must_change && done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) };
        };
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut *tx).await?;
        if must_change && done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        commit_claimed(tx, Some(claim)).await
    }

    fn access_key_from_row(&self, row: &Row) -> StoreResult<AccessKey> {
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

    fn session_from_row(&self, row: &Row) -> StoreResult<SessionCredential> {
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

fn user_from_row(row: &Row) -> StoreResult<IamUser> {
    Ok(IamUser {
        account_id: row.try_get("account_id")?,
        user_name: row.try_get("user_name")?,
        user_id: row.try_get("user_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        created_at: row.try_get("created_at")?,
    })
}

fn role_from_row(row: &Row) -> StoreResult<IamRole> {
    Ok(IamRole {
        account_id: row.try_get("account_id")?,
        role_name: row.try_get("role_name")?,
        role_id: row.try_get("role_id")?,
        path: row.try_get("path")?,
        arn: row.try_get("arn")?,
        assume_role_policy_document: row.try_get("assume_role_policy_document")?,
        description: row.try_get("description")?,
        max_session_duration: row.try_get("max_session_duration")?,
        created_at: row.try_get("created_at")?,
        tags: Vec::new(),
    })
}

fn activation_from_row(row: &Row) -> StoreResult<Activation> {
    Ok(Activation {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        activation_id: row.try_get("activation_id")?,
        code_hash: row.try_get("code_hash")?,
        description: row.try_get("description")?,
        default_instance_name: row.try_get("default_instance_name")?,
        iam_role: row.try_get("iam_role")?,
        registration_limit: row.try_get("registration_limit")?,
        registrations_count: row.try_get("registrations_count")?,
        expiration_date: row.try_get("expiration_date")?,
        created_date: row.try_get("created_date")?,
        tags: Vec::new(),
    })
}

fn instance_from_row(row: &Row) -> StoreResult<ManagedInstance> {
    Ok(ManagedInstance {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        instance_id: row.try_get("instance_id")?,
        activation_id: row.try_get("activation_id")?,
        iam_role: row.try_get("iam_role")?,
        name: row.try_get("name")?,
        public_key: row.try_get("public_key")?,
        previous_public_key: row.try_get("previous_public_key")?,
        previous_key_expires_at: row.try_get("previous_key_expires_at")?,
        channel_opened_at: row.try_get("channel_opened_at")?,
        channel_closed_at: row.try_get("channel_closed_at")?,
        fingerprint: row.try_get("fingerprint")?,
        registered_at: row.try_get("registered_at")?,
        last_ping_at: row.try_get("last_ping_at")?,
        info: InstanceInfo {
            agent_name: row.try_get("agent_name")?,
            agent_status: row.try_get("agent_status")?,
            agent_version: row.try_get("agent_version")?,
            platform_type: row.try_get("platform_type")?,
            platform_name: row.try_get("platform_name")?,
            platform_version: row.try_get("platform_version")?,
            ip_address: row.try_get("ip_address")?,
            computer_name: row.try_get("computer_name")?,
            ssm_connection_channel: row.try_get("ssm_connection_channel")?,
        },
        tags: Vec::new(),
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

// === impl Store for SqlStore ===

#[async_trait::async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.db.backend()
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        let version: Option<i64> =
            query_scalar(sql!("SELECT MAX(version) FROM _sqlx_migrations WHERE success")).fetch_one(&self.db).await?;
        Ok(version.unwrap_or(0))
    }

    async fn close(&self) {
        self.db.close().await;
    }

    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        if unstorable(key) {
            return Ok(None);
        }
        Ok(query_scalar(sql!("SELECT value FROM meta WHERE key = ?")).bind(key).fetch_optional(&self.db).await?)
    }

    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        crate::common::check_text("meta key", key)?;
        crate::common::check_text("meta value", value)?;
        let query = query(sql!(UPSERT_META)).bind(key).bind(value);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn bootstrap(&self, account: &Account, admin: &IamUser, key: &AccessKey) -> StoreResult<()> {
        validate_bootstrap(account, admin, key)?;
        let sealed = self.sealer.seal(Purpose::AccessKey, &key.access_key_id, &key.secret_access_key)?;
        let mut tx = self.begin_write().await?;
        // Two replicas could both see "no account" and bootstrap twice; the lock makes the
        // second wait and then see the first.
        tx.lock_table_exclusive("accounts").await?;
        let any: Option<i64> = query_scalar(sql!("SELECT 1 FROM accounts LIMIT 1")).fetch_optional(&mut *tx).await?;
        if any.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        query(sql!(INSERT_ACCOUNT)).bind(&account.account_id).bind(account.created_at).execute(&mut *tx).await?;
        query(sql!(INSERT_USER))
            .bind(&admin.account_id)
            .bind(&admin.user_name)
            .bind(&admin.user_id)
            .bind(&admin.path)
            .bind(&admin.arn)
            .bind(admin.created_at)
            .execute(&mut *tx)
            .await?;
        query(sql!(INSERT_ACCESS_KEY))
            .bind(&key.access_key_id)
            .bind(&key.account_id)
            .bind(&key.user_name)
            .bind(&sealed)
            .bind(key.status.as_str())
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?;
        query(sql!(UPSERT_META)).bind("default_account_id").bind(&account.account_id).execute(&mut *tx).await?;
        commit_write(tx).await?;
        Ok(())
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        account.validate()?;
        let query = query(sql!(INSERT_ACCOUNT)).bind(&account.account_id).bind(account.created_at);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn get_account(&self, account_id: &str) -> StoreResult<Option<Account>> {
        if unstorable(account_id) {
            return Ok(None);
        }
        let row = query(sql!("SELECT account_id, created_at FROM accounts WHERE account_id = ?"))
            .bind(account_id)
            .fetch_optional(&self.db)
            .await?;
        row.map(|row| Ok(Account { account_id: row.try_get("account_id")?, created_at: row.try_get("created_at")? }))
            .transpose()
    }

    async fn create_user(&self, user: &IamUser) -> StoreResult<()> {
        user.validate()?;
        let query = query(sql!(INSERT_USER))
            .bind(&user.account_id)
            .bind(&user.user_name)
            .bind(&user.user_id)
            .bind(&user.path)
            .bind(&user.arn)
            .bind(user.created_at);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn get_user(&self, account_id: &str, user_name: &str) -> StoreResult<Option<IamUser>> {
        if unstorable(account_id) || unstorable(user_name) {
            return Ok(None);
        }
        let row = query(sql!(
            "SELECT account_id, user_name, user_id, path, arn, created_at FROM iam_users \
             WHERE account_id = ? AND user_name = ?"
        ))
        .bind(account_id)
        .bind(user_name)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn create_access_key(&self, key: &AccessKey) -> StoreResult<()> {
        key.validate()?;
        let sealed = self.sealer.seal(Purpose::AccessKey, &key.access_key_id, &key.secret_access_key)?;
        let query = query(sql!(INSERT_ACCESS_KEY))
            .bind(&key.access_key_id)
            .bind(&key.account_id)
            .bind(&key.user_name)
            .bind(&sealed)
            .bind(key.status.as_str())
            .bind(key.created_at);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>> {
        if unstorable(access_key_id) {
            return Ok(None);
        }
        let row = query(sql!(
            "SELECT access_key_id, account_id, user_name, secret_access_key_enc, status, \
             created_at FROM access_keys WHERE access_key_id = ?"
        ))
        .bind(access_key_id)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| self.access_key_from_row(&row)).transpose()
    }

    async fn create_session_credential(&self, cred: &SessionCredential) -> StoreResult<()> {
        cred.validate()?;
        let sealed = self.sealer.seal(Purpose::SessionCredential, &cred.access_key_id, &cred.secret_access_key)?;
        let (principal_type, user_name, role_name, role_id, session_name) = cred.principal.to_columns();
        let query = query(sql!(
            "INSERT INTO session_credentials (access_key_id, account_id, secret_access_key_enc, \
             session_token_hash, principal_type, user_name, role_name, role_id, session_name, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&cred.access_key_id)
        .bind(&cred.account_id)
        .bind(&sealed)
        .bind(&cred.session_token_hash)
        .bind(principal_type)
        .bind(user_name)
        .bind(role_name)
        .bind(role_id)
        .bind(session_name)
        .bind(cred.created_at)
        .bind(cred.expires_at);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn get_session_credential(&self, access_key_id: &str) -> StoreResult<Option<SessionCredential>> {
        if unstorable(access_key_id) {
            return Ok(None);
        }
        let row = query(sql!(
            "SELECT access_key_id, account_id, secret_access_key_enc, session_token_hash, \
             principal_type, user_name, role_name, role_id, session_name, created_at, expires_at \
             FROM session_credentials WHERE access_key_id = ?"
        ))
        .bind(access_key_id)
        .fetch_optional(&self.db)
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
        let row = query(sql!(
            "SELECT account_id, region, setting_id, value, last_modified_user, \
             last_modified_date FROM service_settings \
             WHERE account_id = ? AND region = ? AND setting_id = ?"
        ))
        .bind(account_id)
        .bind(region)
        .bind(setting_id)
        .fetch_optional(&self.db)
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
        let query = query(sql!(
            "INSERT INTO service_settings (account_id, region, setting_id, value, \
             last_modified_user, last_modified_date) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (account_id, region, setting_id) DO UPDATE SET \
             value = excluded.value, last_modified_user = excluded.last_modified_user, \
             last_modified_date = excluded.last_modified_date"
        ))
        .bind(&row.account_id)
        .bind(&row.region)
        .bind(&row.setting_id)
        .bind(&row.value)
        .bind(&row.last_modified_user)
        .bind(row.last_modified_date);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn delete_service_setting(&self, account_id: &str, region: &str, setting_id: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(setting_id) {
            return Ok(());
        }
        let query = query(sql!("DELETE FROM service_settings WHERE account_id = ? AND region = ? AND setting_id = ?"))
            .bind(account_id)
            .bind(region)
            .bind(setting_id);
        self.write_one(query, false).await?;
        Ok(())
    }

    // --- IAM roles ---

    async fn create_role(&self, role: &IamRole) -> StoreResult<()> {
        role.validate()?;
        let key = role_name_key(&role.role_name);
        let mut tx = self.begin_write().await?;
        query(sql!(
            "INSERT INTO iam_roles (account_id, role_name_key, role_name, role_id, path, arn, \
             assume_role_policy_document, description, max_session_duration, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&role.account_id)
        .bind(&key)
        .bind(&role.role_name)
        .bind(&role.role_id)
        .bind(&role.path)
        .bind(&role.arn)
        .bind(&role.assume_role_policy_document)
        .bind(&role.description)
        .bind(role.max_session_duration)
        .bind(role.created_at)
        .execute(&mut *tx)
        .await?;
        for tag in &role.tags {
            query(sql!("INSERT INTO iam_role_tags (account_id, role_name_key, key, value) VALUES (?, ?, ?, ?)"))
                .bind(&role.account_id)
                .bind(&key)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *tx)
                .await?;
        }
        commit_write(tx).await?;
        Ok(())
    }

    async fn get_role(&self, account_id: &str, role_name: &str) -> StoreResult<Option<IamRole>> {
        if unstorable(account_id) || unstorable(role_name) {
            return Ok(None);
        }
        let rows = query(sql!(concat!(
            "SELECT ",
            role_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM iam_roles r LEFT JOIN iam_role_tags t \
             ON t.account_id = r.account_id AND t.role_name_key = r.role_name_key \
             WHERE r.account_id = ? AND r.role_name_key = ? ORDER BY t.key"
        )))
        .bind(account_id)
        .bind(role_name_key(role_name))
        .fetch_all(&self.db)
        .await?;
        Ok(collect_tagged(&rows, "role_name", role_from_row)?.into_iter().next())
    }

    async fn list_roles(&self, account_id: &str) -> StoreResult<Vec<IamRole>> {
        if unstorable(account_id) {
            return Ok(Vec::new());
        }
        let rows = query(sql!(concat!(
            "SELECT ",
            role_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM iam_roles r LEFT JOIN iam_role_tags t \
             ON t.account_id = r.account_id AND t.role_name_key = r.role_name_key \
             WHERE r.account_id = ? ORDER BY r.role_name, t.key"
        )))
        .bind(account_id)
        .fetch_all(&self.db)
        .await?;
        collect_tagged(&rows, "role_name", role_from_row)
    }

    async fn delete_role(&self, account_id: &str, role_name: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(role_name) {
            return Err(StoreError::NotFound);
        }
        let key = role_name_key(role_name);
        let mut tx = self.begin_write().await?;
        // The row lock conflicts with the key-share lock a concurrent attach's foreign key check
        // takes (PostgreSQL), so an attachment either commits first (and is seen below) or fails
        // afterwards.
        let role_id: Option<String> = query_scalar(sql!(
            "SELECT role_id FROM iam_roles WHERE account_id = ? AND role_name_key = ? /*FOR UPDATE*/"
        ))
        .bind(account_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(role_id) = role_id else {
            return Err(StoreError::NotFound);
        };
        let inline: i64 =
            query_scalar(sql!("SELECT COUNT(*) FROM iam_role_policies WHERE account_id = ? AND role_name_key = ?"))
                .bind(account_id)
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
        if inline > 0 {
            return Err(StoreError::Conflict("inline policies".into()));
        }
        let attached: Option<i64> = query_scalar(sql!(
            "SELECT 1 FROM iam_role_policy_attachments WHERE account_id = ? AND role_name_key = ? LIMIT 1"
        ))
        .bind(account_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        if attached.is_some() {
            return Err(StoreError::Conflict("attached policies".into()));
        }
        // Its sessions end with it; its tags go with it (ON DELETE CASCADE).
        query(sql!("DELETE FROM session_credentials WHERE principal_type = 'assumed_role' AND role_id = ?"))
            .bind(&role_id)
            .execute(&mut *tx)
            .await?;
        query(sql!("DELETE FROM iam_roles WHERE account_id = ? AND role_name_key = ?"))
            .bind(account_id)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        commit_write(tx).await?;
        Ok(())
    }

    async fn attach_role_policy(&self, account_id: &str, role_name: &str, policy_arn: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(role_name) {
            return Err(StoreError::NotFound);
        }
        check_text("policy_arn", policy_arn)?;
        // A missing role fails the foreign key (NotFound); attaching twice changes nothing.
        let query = query(sql!(
            "INSERT INTO iam_role_policy_attachments (account_id, role_name_key, policy_arn) \
             VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        ))
        .bind(account_id)
        .bind(role_name_key(role_name))
        .bind(policy_arn);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn detach_role_policy(&self, account_id: &str, role_name: &str, policy_arn: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(role_name) || unstorable(policy_arn) {
            return Err(StoreError::NotFound);
        }
        let query = query(sql!(
            "DELETE FROM iam_role_policy_attachments \
             WHERE account_id = ? AND role_name_key = ? AND policy_arn = ?"
        ))
        .bind(account_id)
        .bind(role_name_key(role_name))
        .bind(policy_arn);
        self.write_one(query, true).await?;
        Ok(())
    }

    async fn list_attached_role_policies(&self, account_id: &str, role_name: &str) -> StoreResult<Vec<String>> {
        if unstorable(account_id) || unstorable(role_name) {
            return Err(StoreError::NotFound);
        }
        // One statement: the role row tells "no role" from "no policies".
        let rows = query(sql!(
            "SELECT p.policy_arn AS policy_arn FROM iam_roles r LEFT JOIN iam_role_policy_attachments p \
             ON p.account_id = r.account_id AND p.role_name_key = r.role_name_key \
             WHERE r.account_id = ? AND r.role_name_key = ?"
        ))
        .bind(account_id)
        .bind(role_name_key(role_name))
        .fetch_all(&self.db)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut arns = Vec::new();
        for row in &rows {
            if let Some(arn) = row.try_get::<Option<String>, _>("policy_arn")? {
                arns.push(arn);
            }
        }
        arns.sort();
        Ok(arns)
    }

    // --- IAM access control (bodies in iam.rs) ---

    async fn create_user_with_tags(&self, user: &IamUser, tags: &[Tag]) -> StoreResult<()> {
        iam::create_user_with_tags(self, user, tags).await
    }

    async fn list_users(&self, account_id: &str) -> StoreResult<Vec<IamUser>> {
        iam::list_users(self, account_id).await
    }

    async fn delete_user(&self, account_id: &str, user_name: &str) -> StoreResult<()> {
        iam::delete_user(self, account_id, user_name).await
    }

    async fn list_entity_tags(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<Tag>> {
        iam::list_entity_tags(self, account_id, entity).await
    }

    async fn tag_entity(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()> {
        iam::tag_entity(self, account_id, entity, tags, max_tags).await
    }

    async fn untag_entity(&self, account_id: &str, entity: IamEntity<'_>, keys: &[String]) -> StoreResult<()> {
        iam::untag_entity(self, account_id, entity, keys).await
    }

    async fn create_access_key_limited(&self, key: &AccessKey, max_per_user: usize) -> StoreResult<()> {
        iam::create_access_key_limited(self, key, max_per_user).await
    }

    async fn list_access_keys(&self, account_id: &str, user_name: &str) -> StoreResult<Vec<AccessKeyMetadata>> {
        iam::list_access_keys(self, account_id, user_name).await
    }

    async fn update_access_key_status(
        &self,
        account_id: &str,
        user_name: &str,
        access_key_id: &str,
        status: AccessKeyStatus,
    ) -> StoreResult<()> {
        iam::update_access_key_status(self, account_id, user_name, access_key_id, status).await
    }

    async fn delete_access_key(&self, account_id: &str, user_name: &str, access_key_id: &str) -> StoreResult<()> {
        iam::delete_access_key(self, account_id, user_name, access_key_id).await
    }

    async fn create_group(&self, group: &IamGroup) -> StoreResult<()> {
        iam::create_group(self, group).await
    }

    async fn get_group(&self, account_id: &str, group_name: &str) -> StoreResult<Option<IamGroup>> {
        iam::get_group(self, account_id, group_name).await
    }

    async fn list_groups(&self, account_id: &str) -> StoreResult<Vec<IamGroup>> {
        iam::list_groups(self, account_id).await
    }

    async fn delete_group(&self, account_id: &str, group_name: &str) -> StoreResult<()> {
        iam::delete_group(self, account_id, group_name).await
    }

    async fn add_user_to_group(&self, account_id: &str, group_name: &str, user_name: &str) -> StoreResult<()> {
        iam::add_user_to_group(self, account_id, group_name, user_name).await
    }

    async fn remove_user_from_group(&self, account_id: &str, group_name: &str, user_name: &str) -> StoreResult<()> {
        iam::remove_user_from_group(self, account_id, group_name, user_name).await
    }

    async fn list_group_members(&self, account_id: &str, group_name: &str) -> StoreResult<Vec<IamUser>> {
        iam::list_group_members(self, account_id, group_name).await
    }

    async fn list_groups_for_user(&self, account_id: &str, user_name: &str) -> StoreResult<Vec<IamGroup>> {
        iam::list_groups_for_user(self, account_id, user_name).await
    }

    async fn create_policy(&self, policy: &ManagedPolicy, document: &str) -> StoreResult<()> {
        iam::create_policy(self, policy, document).await
    }

    async fn get_policy(&self, account_id: &str, arn: &str) -> StoreResult<Option<ManagedPolicy>> {
        iam::get_policy(self, account_id, arn).await
    }

    async fn list_policies(&self, account_id: &str) -> StoreResult<Vec<ManagedPolicy>> {
        iam::list_policies(self, account_id).await
    }

    async fn delete_policy(&self, account_id: &str, arn: &str) -> StoreResult<()> {
        iam::delete_policy(self, account_id, arn).await
    }

    async fn create_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
        created_at: OffsetDateTime,
        max_versions: usize,
    ) -> StoreResult<ManagedPolicyVersion> {
        iam::create_policy_version(self, account_id, arn, document, set_as_default, created_at, max_versions).await
    }

    async fn get_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        version_id: &str,
    ) -> StoreResult<Option<ManagedPolicyVersion>> {
        iam::get_policy_version(self, account_id, arn, version_id).await
    }

    async fn list_policy_versions(&self, account_id: &str, arn: &str) -> StoreResult<Vec<ManagedPolicyVersion>> {
        iam::list_policy_versions(self, account_id, arn).await
    }

    async fn delete_policy_version(&self, account_id: &str, arn: &str, version_id: &str) -> StoreResult<()> {
        iam::delete_policy_version(self, account_id, arn, version_id).await
    }

    async fn policy_attachment_counts(&self, account_id: &str) -> StoreResult<Vec<(String, u64)>> {
        iam::policy_attachment_counts(self, account_id).await
    }

    async fn attach_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_arn: &str,
        max_attached: usize,
    ) -> StoreResult<()> {
        iam::attach_policy(self, account_id, entity, policy_arn, max_attached).await
    }

    async fn detach_policy(&self, account_id: &str, entity: IamEntity<'_>, policy_arn: &str) -> StoreResult<()> {
        iam::detach_policy(self, account_id, entity, policy_arn).await
    }

    async fn list_attached_policies(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<String>> {
        iam::list_attached_policies(self, account_id, entity).await
    }

    async fn put_inline_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_name: &str,
        document: &str,
        max_total_size: usize,
    ) -> StoreResult<()> {
        iam::put_inline_policy(self, account_id, entity, policy_name, document, max_total_size).await
    }

    async fn get_inline_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_name: &str,
    ) -> StoreResult<Option<String>> {
        iam::get_inline_policy(self, account_id, entity, policy_name).await
    }

    async fn list_inline_policies(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<String>> {
        iam::list_inline_policies(self, account_id, entity).await
    }

    async fn delete_inline_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_name: &str,
    ) -> StoreResult<()> {
        iam::delete_inline_policy(self, account_id, entity, policy_name).await
    }

    async fn update_assume_role_policy(&self, account_id: &str, role_name: &str, document: &str) -> StoreResult<()> {
        iam::update_assume_role_policy(self, account_id, role_name, document).await
    }

    async fn identity_policies(&self, account_id: &str, subject: PolicySubject<'_>) -> StoreResult<IdentityPolicies> {
        iam::identity_policies(self, account_id, subject).await
    }

    // --- activations ---

    async fn create_activation(&self, activation: &Activation) -> StoreResult<()> {
        activation.validate()?;
        let mut tx = self.begin_write().await?;
        query(sql!(
            "INSERT INTO activations (activation_id, account_id, region, code_hash, description, \
             default_instance_name, iam_role, registration_limit, registrations_count, \
             expiration_date, created_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&activation.activation_id)
        .bind(&activation.account_id)
        .bind(&activation.region)
        .bind(&activation.code_hash)
        .bind(&activation.description)
        .bind(&activation.default_instance_name)
        .bind(&activation.iam_role)
        .bind(activation.registration_limit)
        .bind(activation.registrations_count)
        .bind(activation.expiration_date)
        .bind(activation.created_date)
        .execute(&mut *tx)
        .await?;
        for tag in &activation.tags {
            query(sql!("INSERT INTO activation_tags (activation_id, key, value) VALUES (?, ?, ?)"))
                .bind(&activation.activation_id)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *tx)
                .await?;
        }
        commit_write(tx).await?;
        Ok(())
    }

    async fn get_activation(&self, activation_id: &str) -> StoreResult<Option<Activation>> {
        if unstorable(activation_id) {
            return Ok(None);
        }
        let rows = query(sql!(concat!(
            "SELECT ",
            activation_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM activations a LEFT JOIN activation_tags t \
             ON t.activation_id = a.activation_id WHERE a.activation_id = ? ORDER BY t.key"
        )))
        .bind(activation_id)
        .fetch_all(&self.db)
        .await?;
        Ok(collect_tagged(&rows, "activation_id", activation_from_row)?.into_iter().next())
    }

    async fn list_activations(&self, account_id: &str, region: &str) -> StoreResult<Vec<Activation>> {
        if unstorable(account_id) || unstorable(region) {
            return Ok(Vec::new());
        }
        let rows = query(sql!(concat!(
            "SELECT ",
            activation_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM activations a LEFT JOIN activation_tags t \
             ON t.activation_id = a.activation_id WHERE a.account_id = ? AND a.region = ? \
             ORDER BY a.created_date, a.activation_id, t.key"
        )))
        .bind(account_id)
        .bind(region)
        .fetch_all(&self.db)
        .await?;
        collect_tagged(&rows, "activation_id", activation_from_row)
    }

    async fn delete_activation(&self, account_id: &str, region: &str, activation_id: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(activation_id) {
            return Err(StoreError::NotFound);
        }
        // Its tags go with it (ON DELETE CASCADE); instances registered with it stay.
        let query = query(sql!("DELETE FROM activations WHERE activation_id = ? AND account_id = ? AND region = ?"))
            .bind(activation_id)
            .bind(account_id)
            .bind(region);
        self.write_one(query, true).await?;
        Ok(())
    }

    // --- managed instances ---

    async fn register_instance(&self, reg: &NewRegistration) -> StoreResult<RegistrationOutcome> {
        if unstorable(&reg.activation_id) || unstorable(&reg.code_hash) {
            return Ok(RegistrationOutcome::InvalidActivation);
        }
        reg.validate()?;
        let registered_at = truncate_millis(reg.registered_at)?;
        // SQLite: BEGIN IMMEDIATE serialises registrations (and every other write), so the
        // checks below and the increments after them cannot interleave with a racing one.
        // PostgreSQL: racing registrations queue on two row locks, the activation's (below) and
        // the region's count row (the upsert after the checks); under READ COMMITTED each locked
        // read sees the latest committed values, so the checks hold until commit.
        let mut tx = self.begin_write().await?;
        let rows = query(sql!(concat!(
            "SELECT ",
            activation_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM activations a LEFT JOIN activation_tags t \
             ON t.activation_id = a.activation_id WHERE a.activation_id = ? ORDER BY t.key /*FOR UPDATE OF a*/"
        )))
        .bind(&reg.activation_id)
        .fetch_all(&mut *tx)
        .await?;
        let Some(activation) = collect_tagged(&rows, "activation_id", activation_from_row)?.into_iter().next() else {
            return Ok(RegistrationOutcome::InvalidActivation);
        };
        if !constant_time_eq(activation.code_hash.as_bytes(), reg.code_hash.as_bytes()) {
            return Ok(RegistrationOutcome::InvalidActivation);
        }
        if activation.expiration_date <= registered_at {
            return Ok(RegistrationOutcome::Expired);
        }
        if activation.registrations_count >= activation.registration_limit {
            return Ok(RegistrationOutcome::ActivationLimitExceeded);
        }
        let count: i64 = query_scalar(sql!(
            "INSERT INTO instance_counts (account_id, region, count) VALUES (?, ?, 0) \
             ON CONFLICT (account_id, region) DO UPDATE SET count = instance_counts.count RETURNING count"
        ))
        .bind(&activation.account_id)
        .bind(&activation.region)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(limit) = reg.max_instances_in_region {
            if count_from_db(count)? >= limit {
                return Ok(RegistrationOutcome::RegionLimitExceeded { limit });
            }
        }

        query(sql!(
            "INSERT INTO managed_instances (instance_id, account_id, region, activation_id, iam_role, \
             name, public_key, fingerprint, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&reg.instance_id)
        .bind(&activation.account_id)
        .bind(&activation.region)
        .bind(&activation.activation_id)
        .bind(&activation.iam_role)
        .bind(&activation.default_instance_name)
        .bind(&reg.public_key)
        .bind(&reg.fingerprint)
        .bind(registered_at)
        .execute(&mut *tx)
        .await?;
        for tag in &activation.tags {
            query(sql!(
                "INSERT INTO instance_tags (instance_id, account_id, region, key, value) VALUES (?, ?, ?, ?, ?)"
            ))
            .bind(&reg.instance_id)
            .bind(&activation.account_id)
            .bind(&activation.region)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        query(sql!("UPDATE instance_counts SET count = count + 1 WHERE account_id = ? AND region = ?"))
            .bind(&activation.account_id)
            .bind(&activation.region)
            .execute(&mut *tx)
            .await?;
        query(sql!("UPDATE activations SET registrations_count = registrations_count + 1 WHERE activation_id = ?"))
            .bind(&activation.activation_id)
            .execute(&mut *tx)
            .await?;
        commit_write(tx).await?;
        Ok(RegistrationOutcome::Registered(ManagedInstance {
            account_id: activation.account_id,
            region: activation.region,
            instance_id: reg.instance_id.clone(),
            activation_id: activation.activation_id,
            iam_role: activation.iam_role,
            name: activation.default_instance_name,
            public_key: reg.public_key.clone(),
            previous_public_key: None,
            previous_key_expires_at: None,
            channel_opened_at: None,
            channel_closed_at: None,
            fingerprint: reg.fingerprint.clone(),
            registered_at,
            last_ping_at: None,
            info: InstanceInfo::default(),
            tags: activation.tags,
        }))
    }

    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<ManagedInstance>> {
        if unstorable(instance_id) {
            return Ok(None);
        }
        let rows = query(sql!(concat!(
            "SELECT ",
            instance_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM managed_instances i \
             LEFT JOIN instance_tags t ON t.instance_id = i.instance_id \
             WHERE i.instance_id = ? ORDER BY t.key"
        )))
        .bind(instance_id)
        .fetch_all(&self.db)
        .await?;
        Ok(collect_tagged(&rows, "instance_id", instance_from_row)?.into_iter().next())
    }

    async fn list_instances(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ManagedInstance>> {
        if limit == 0 || unstorable(account_id) || unstorable(region) || after.is_some_and(unstorable) {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // LIMIT applies to instances (the subquery), not to instance-and-tag rows.
        let rows = query(sql!(concat!(
            "SELECT ",
            instance_columns!(),
            ", t.key AS tag_key, t.value AS tag_value FROM \
             (SELECT * FROM managed_instances WHERE account_id = ? AND region = ? \
              AND (? IS NULL OR instance_id > ?) ORDER BY instance_id LIMIT ?) i \
             LEFT JOIN instance_tags t ON t.instance_id = i.instance_id \
             ORDER BY i.instance_id, t.key"
        )))
        .bind(account_id)
        .bind(region)
        .bind(after)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        collect_tagged(&rows, "instance_id", instance_from_row)
    }

    async fn count_instances(&self, account_id: &str, region: &str) -> StoreResult<u64> {
        if unstorable(account_id) || unstorable(region) {
            return Ok(0);
        }
        let count: Option<i64> =
            query_scalar(sql!("SELECT count FROM instance_counts WHERE account_id = ? AND region = ?"))
                .bind(account_id)
                .bind(region)
                .fetch_optional(&self.db)
                .await?;
        count_from_db(count.unwrap_or(0))
    }

    async fn record_ping(&self, instance_id: &str, info: &InstanceInfo, at: OffsetDateTime) -> StoreResult<()> {
        if unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        info.validate()?;
        check_time("at", at)?;
        let query = query(sql!(
            "UPDATE managed_instances SET last_ping_at = ?, \
             agent_name = COALESCE(?, agent_name), agent_status = COALESCE(?, agent_status), \
             agent_version = COALESCE(?, agent_version), platform_type = COALESCE(?, platform_type), \
             platform_name = COALESCE(?, platform_name), \
             platform_version = COALESCE(?, platform_version), ip_address = COALESCE(?, ip_address), \
             computer_name = COALESCE(?, computer_name), \
             ssm_connection_channel = COALESCE(?, ssm_connection_channel) \
             WHERE instance_id = ?"
        ))
        .bind(at)
        .bind(&info.agent_name)
        .bind(&info.agent_status)
        .bind(&info.agent_version)
        .bind(&info.platform_type)
        .bind(&info.platform_name)
        .bind(&info.platform_version)
        .bind(&info.ip_address)
        .bind(&info.computer_name)
        .bind(&info.ssm_connection_channel)
        .bind(instance_id);
        self.write_one(query, true).await?;
        Ok(())
    }

    async fn update_instance_public_key(
        &self,
        instance_id: &str,
        new_public_key: &str,
        previous_valid_until: OffsetDateTime,
    ) -> StoreResult<()> {
        if unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        check_text("public_key", new_public_key)?;
        // The right-hand sides read the row's old values, so the old key becomes the previous one.
        let query = query(sql!(
            "UPDATE managed_instances SET previous_public_key = public_key, previous_key_expires_at = ?, \
             public_key = ? WHERE instance_id = ?"
        ))
        .bind(previous_valid_until)
        .bind(new_public_key)
        .bind(instance_id);
        self.write_one(query, true).await?;
        Ok(())
    }

    async fn record_channel_open(&self, instance_id: &str, at: OffsetDateTime) -> StoreResult<()> {
        if unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        check_time("at", at)?;
        let query = query(sql!(
            "UPDATE managed_instances SET last_ping_at = ?, channel_opened_at = ?, channel_closed_at = NULL \
             WHERE instance_id = ?"
        ))
        .bind(at)
        .bind(at)
        .bind(instance_id);
        self.write_one(query, true).await
    }

    async fn record_channel_close(
        &self,
        instance_id: &str,
        opened_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        if unstorable(instance_id) {
            return Ok(());
        }
        check_time("at", at)?;
        let query = query(sql!(
            "UPDATE managed_instances SET channel_closed_at = ? WHERE instance_id = ? AND channel_opened_at = ?"
        ))
        .bind(at)
        .bind(instance_id)
        .bind(opened_at);
        self.write_one(query, false).await
    }

    async fn retire_previous_public_key(&self, instance_id: &str, previous_public_key: &str) -> StoreResult<()> {
        if unstorable(instance_id) || unstorable(previous_public_key) {
            return Ok(());
        }
        let query = query(sql!(
            "UPDATE managed_instances SET previous_public_key = NULL, previous_key_expires_at = NULL \
             WHERE instance_id = ? AND previous_public_key = ?"
        ))
        .bind(instance_id)
        .bind(previous_public_key);
        self.write_one(query, false).await?;
        Ok(())
    }

    async fn update_instance_role(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        iam_role: &str,
    ) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        check_text("iam_role", iam_role)?;
        let query = query(sql!(
            "UPDATE managed_instances SET iam_role = ? WHERE instance_id = ? AND account_id = ? AND region = ?"
        ))
        .bind(iam_role)
        .bind(instance_id)
        .bind(account_id)
        .bind(region);
        self.write_one(query, true).await?;
        Ok(())
    }

    async fn deregister_instance(&self, account_id: &str, region: &str, instance_id: &str) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.begin_write().await?;
        // The instance's tags go with it (ON DELETE CASCADE).
        let done = query(sql!("DELETE FROM managed_instances WHERE instance_id = ? AND account_id = ? AND region = ?"))
            .bind(instance_id)
            .bind(account_id)
            .bind(region)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        query(sql!(
            "DELETE FROM session_credentials \
             WHERE account_id = ? AND principal_type = 'assumed_role' AND session_name = ?"
        ))
        .bind(account_id)
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
        query(sql!("UPDATE instance_counts SET count = count - 1 WHERE account_id = ? AND region = ?"))
            .bind(account_id)
            .bind(region)
            .execute(&mut *tx)
            .await?;
        commit_write(tx).await?;
        Ok(())
    }

    async fn put_instance_tags(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        check_tags(tags)?;
        let mut tx = self.begin_write().await?;
        // Locking the instance row serialises tag changes, so the count check below is exact.
        let exists: Option<i64> = query_scalar(sql!(
            "SELECT 1 FROM managed_instances WHERE instance_id = ? AND account_id = ? AND region = ? /*FOR UPDATE*/"
        ))
        .bind(instance_id)
        .bind(account_id)
        .bind(region)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        for tag in tags {
            query(sql!(
                "INSERT INTO instance_tags (instance_id, account_id, region, key, value) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value"
            ))
            .bind(instance_id)
            .bind(account_id)
            .bind(region)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 = query_scalar(sql!("SELECT COUNT(*) FROM instance_tags WHERE instance_id = ?"))
            .bind(instance_id)
            .fetch_one(&mut *tx)
            .await?;
        if count_from_db(count)? > u64::try_from(max_tags).unwrap_or(u64::MAX) {
            // Dropping the transaction rolls the upserts back.
            return Err(StoreError::Conflict("TooManyTags".into()));
        }
        commit_write(tx).await?;
        Ok(())
    }

    async fn remove_instance_tags(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        keys: &[String],
    ) -> StoreResult<()> {
        if unstorable(account_id) || unstorable(region) || unstorable(instance_id) {
            return Err(StoreError::NotFound);
        }
        let mut tx = self.begin_write().await?;
        // Locking the instance row serialises tag changes, so the count check below is exact.
        let exists: Option<i64> = query_scalar(sql!(
            "SELECT 1 FROM managed_instances WHERE instance_id = ? AND account_id = ? AND region = ? /*FOR UPDATE*/"
        ))
        .bind(instance_id)
        .bind(account_id)
        .bind(region)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        // A key that cannot be stored cannot be present either.
        for key in keys.iter().filter(|k| !unstorable(k)) {
            query(sql!("DELETE FROM instance_tags WHERE instance_id = ? AND key = ?"))
                .bind(instance_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        commit_write(tx).await?;
        Ok(())
    }

    // --- SSM documents ---
    // The SQL lives in the `documents` submodule.

    async fn create_document(
        &self,
        document: &Document,
        version: &DocumentVersion,
        max_documents: usize,
    ) -> StoreResult<()> {
        documents::create_document(self, document, version, max_documents).await
    }

    async fn get_document(&self, account_id: &str, region: &str, name: &str) -> StoreResult<Option<Document>> {
        documents::get_document(self, account_id, region, name).await
    }

    async fn get_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<Option<DocumentVersion>> {
        documents::get_document_version(self, account_id, region, name, version).await
    }

    async fn list_document_versions(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Vec<DocumentVersion>> {
        documents::list_document_versions(self, account_id, region, name).await
    }

    async fn list_documents(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<DocumentListing>> {
        documents::list_documents(self, account_id, region, after, limit).await
    }

    async fn add_document_version(&self, version: &DocumentVersion, max_versions: usize) -> StoreResult<()> {
        documents::add_document_version(self, version, max_versions).await
    }

    async fn set_default_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<()> {
        documents::set_default_document_version(self, account_id, region, name, version).await
    }

    async fn delete_document(&self, account_id: &str, region: &str, name: &str) -> StoreResult<()> {
        documents::delete_document(self, account_id, region, name).await
    }

    async fn delete_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<()> {
        documents::delete_document_version(self, account_id, region, name, version).await
    }

    async fn put_document_tags(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()> {
        documents::put_document_tags(self, account_id, region, name, tags, max_tags).await
    }

    async fn remove_document_tags(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> StoreResult<()> {
        documents::remove_document_tags(self, account_id, region, name, keys).await
    }

    // --- Run Command ---
    // The SQL lives in the `commands` submodule.

    async fn create_command(&self, command: &Command, invocations: &[CommandInvocation]) -> StoreResult<()> {
        commands::create_command(self, command, invocations).await
    }

    async fn get_command(&self, account_id: &str, region: &str, command_id: &str) -> StoreResult<Option<Command>> {
        commands::get_command(self, account_id, region, command_id).await
    }

    async fn list_commands(
        &self,
        account_id: &str,
        region: &str,
        filter: &CommandFilter,
        after: Option<(OffsetDateTime, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Command>> {
        commands::list_commands(self, account_id, region, filter, after, limit).await
    }

    async fn invocation_status_counts(
        &self,
        account_id: &str,
        region: &str,
        command_ids: &[String],
    ) -> StoreResult<Vec<InvocationStatusCount>> {
        commands::invocation_status_counts(self, account_id, region, command_ids).await
    }

    async fn get_invocation(
        &self,
        account_id: &str,
        region: &str,
        command_id: &str,
        instance_id: &str,
    ) -> StoreResult<Option<CommandInvocation>> {
        commands::get_invocation(self, account_id, region, command_id, instance_id).await
    }

    async fn list_invocations(
        &self,
        account_id: &str,
        region: &str,
        filter: &CommandFilter,
        after: Option<(OffsetDateTime, String, String)>,
        limit: usize,
        with_plugins: bool,
    ) -> StoreResult<Vec<CommandInvocation>> {
        commands::list_invocations(self, account_id, region, filter, after, limit, with_plugins).await
    }

    async fn command_invocations(&self, command_id: &str) -> StoreResult<Vec<CommandInvocation>> {
        commands::command_invocations(self, command_id).await
    }

    async fn update_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
        from: &[&str],
        update: &InvocationUpdate,
    ) -> StoreResult<bool> {
        commands::update_invocation(self, command_id, instance_id, from, update).await
    }

    async fn set_command_cancel_requested(&self, account_id: &str, region: &str, command_id: &str) -> StoreResult<()> {
        commands::set_command_cancel_requested(self, account_id, region, command_id).await
    }

    async fn set_command_active(&self, command_id: &str, active: bool) -> StoreResult<()> {
        commands::set_command_active(self, command_id, active).await
    }

    async fn active_commands(&self, limit: usize) -> StoreResult<Vec<Command>> {
        commands::active_commands(self, limit).await
    }

    async fn active_commands_for_instance(&self, instance_id: &str, statuses: &[&str]) -> StoreResult<Vec<String>> {
        commands::active_commands_for_instance(self, instance_id, statuses).await
    }

    async fn open_invocation_counts(&self, statuses: &[&str]) -> StoreResult<Vec<(String, u64)>> {
        commands::open_invocation_counts(self, statuses).await
    }

    fn pool_stats(&self) -> Vec<crate::PoolStats> {
        self.db.pool_stats()
    }

    fn secret_hash(&self, purpose: &str, secret: &str) -> String {
        self.sealer.secret_hash(purpose, secret)
    }

    // === audit ===
    // The SQL lives in the `audit` submodule (bottom of this file).

    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<StoredAuditRecord> {
        self.audit_append(record).await
    }

    async fn append_audits(&self, records: &[AuditRecord]) -> StoreResult<Vec<StoredAuditRecord>> {
        self.audit_append_batch(records).await
    }

    async fn lookup_audit(
        &self,
        account_id: &str,
        region: &str,
        filter: &AuditFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
        before: Option<(OffsetDateTime, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>> {
        self.audit_lookup(account_id, region, filter, start, end, before, limit).await
    }

    async fn audit_chain(
        &self,
        account_id: &str,
        region: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>> {
        self.audit_chain_page(account_id, region, after_seq, limit).await
    }

    async fn audit_streams(&self) -> StoreResult<Vec<(String, String)>> {
        self.audit_stream_list().await
    }
}

use crate::audit::{AuditFilter, AuditRecord, StoredAuditRecord};
