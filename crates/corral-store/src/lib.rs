//! Corral's persistence layer.
//!
//! Everything the control plane keeps lives behind one narrow interface, [`Store`], with two
//! engines: SQLite (embedded, the zero-setup default) and PostgreSQL (shared by several server
//! replicas). Both are tested by one backend-agnostic conformance suite (`conformance`).
//!
//! Architecture invariants:
//! - Only this crate knows SQL. Callers see domain rows and [`StoreError`].
//! - Every write is committed (and, on SQLite, fsynced: `synchronous=FULL`) before the call
//!   returns, so an acknowledged write survives `kill -9` and power loss.
//! - No in-process caches: several replicas may share one PostgreSQL database, so every read
//!   goes to the database.
//! - Secrets (`secret_access_key`) are sealed with AES-256-GCM under a [`SecretKey`] kept outside
//!   the database before they reach SQL; the row's key id is bound as associated data, so a
//!   ciphertext copied into another row does not decrypt.
//! - Timestamps have millisecond precision on both backends: sub-millisecond parts are
//!   truncated on write and values are read back in UTC.
//! - Strings containing a NUL character are refused with [`StoreError::InvalidInput`] on both
//!   backends (PostgreSQL cannot store NUL in TEXT; SQLite would, so we refuse it up front).
//!
//! Schema changes are versioned SQL files, one folder per backend (`migrations/sqlite`,
//! `migrations/postgres`), applied by [`open`] in a transaction each and recorded in the
//! `_sqlx_migrations` table; on PostgreSQL an advisory lock keeps replicas that start together
//! from migrating twice.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod common;
mod crypto;
mod error;
mod model;
mod postgres;
mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use crypto::{load_or_create_key_file, SecretKey};
pub use error::{StoreError, StoreResult};
pub use model::{AccessKey, AccessKeyStatus, Account, IamUser, ServiceSettingRow, SessionCredential, SessionPrincipal};

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite database file (WAL mode).
    Sqlite,
    /// PostgreSQL server, possibly shared by several replicas.
    Postgres,
}

/// Opens the store named by `url` and brings its schema up to date.
///
/// - `sqlite://path/to/corral.db` (or `sqlite:path`): the file is created if missing and opened
///   with WAL journaling, `synchronous=FULL` (every commit is fsynced, so an acknowledged write
///   survives `kill -9` and power loss; `NORMAL` with WAL would survive only a process crash),
///   foreign keys on and a 10 s busy timeout. `sqlite::memory:` works but is not durable and is
///   meant for throwaway use.
/// - `postgres://...` or `postgresql://...`: any URL sqlx's PostgreSQL driver accepts.
///
/// Pending migrations are applied, each in its own transaction. A database whose schema is
/// newer than this binary, or whose applied migrations differ from the embedded ones, is
/// refused with [`StoreError::Migration`].
pub async fn open(url: &str, secret_key: SecretKey) -> StoreResult<Arc<dyn Store>> {
    let sealer = crypto::Sealer::new(&secret_key);
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, sealer).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url, sealer).await?))
    } else {
        // The URL may carry a password, so it is not echoed back.
        Err(StoreError::InvalidInput("unsupported database URL: expected sqlite:// or postgres://".into()))
    }
}

/// The persistence interface the server codes against.
///
/// Every method is one database transaction (or one autocommitted statement): when it returns
/// `Ok`, the change is durable and visible to every replica. Reads return `Ok(None)` for a
/// missing row; writes return [`StoreError::AlreadyExists`] on a duplicate key and
/// [`StoreError::NotFound`] when a row they refer to (account, user) does not exist.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The engine behind this store.
    fn backend(&self) -> Backend;

    /// Highest schema migration version applied to the database.
    async fn schema_version(&self) -> StoreResult<i64>;

    /// Closes the connection pool, waiting for in-flight queries. Further calls fail.
    async fn close(&self);

    // --- deployment metadata ---

    /// Reads a deployment-wide metadata value (e.g. `"default_account_id"`).
    async fn get_meta(&self, key: &str) -> StoreResult<Option<String>>;

    /// Writes (inserts or replaces) a deployment-wide metadata value.
    async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;

    // --- accounts and IAM users ---

    /// First start: creates the account, its admin user and the admin's access key, and sets
    /// meta `default_account_id`, all in one transaction.
    ///
    /// Fails with [`StoreError::AlreadyExists`] (changing nothing) if any account exists, and
    /// with [`StoreError::InvalidInput`] if `admin`/`key` do not belong to `account`.
    async fn bootstrap(&self, account: &Account, admin: &IamUser, key: &AccessKey) -> StoreResult<()>;

    /// Creates a further account. [`StoreError::AlreadyExists`] on a duplicate account id.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;

    /// Reads an account.
    async fn get_account(&self, account_id: &str) -> StoreResult<Option<Account>>;

    /// Creates an IAM user. [`StoreError::AlreadyExists`] if `(account_id, user_name)` or the
    /// `user_id` is taken; [`StoreError::NotFound`] if the account does not exist.
    async fn create_user(&self, user: &IamUser) -> StoreResult<()>;

    /// Reads an IAM user by name (exact, case-sensitive match).
    async fn get_user(&self, account_id: &str, user_name: &str) -> StoreResult<Option<IamUser>>;

    // --- credentials ---

    /// Stores a long-term access key; the secret is encrypted before it reaches SQL.
    /// [`StoreError::NotFound`] if the user does not exist.
    async fn create_access_key(&self, key: &AccessKey) -> StoreResult<()>;

    /// Reads an access key with its secret decrypted ([`StoreError::Crypto`] if the secret
    /// does not decrypt under this store's key).
    async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKey>>;

    /// Stores temporary credentials; the secret is encrypted before it reaches SQL.
    /// Credentials of a [`SessionPrincipal::User`] are deleted with that user.
    async fn create_session_credential(&self, cred: &SessionCredential) -> StoreResult<()>;

    /// Reads temporary credentials with the secret decrypted. Expired credentials are returned
    /// as stored: checking `expires_at` is the caller's job.
    async fn get_session_credential(&self, access_key_id: &str) -> StoreResult<Option<SessionCredential>>;

    // --- SSM service settings ---

    /// Reads one service setting of an account in a region.
    async fn get_service_setting(
        &self,
        account_id: &str,
        region: &str,
        setting_id: &str,
    ) -> StoreResult<Option<ServiceSettingRow>>;

    /// Inserts or replaces a service setting.
    async fn put_service_setting(&self, row: &ServiceSettingRow) -> StoreResult<()>;

    /// Deletes a service setting (resets it to its default); succeeds if it is absent.
    async fn delete_service_setting(&self, account_id: &str, region: &str, setting_id: &str) -> StoreResult<()>;
}
