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
//!   ciphertext copied into another row does not decrypt. Secrets that are only compared
//!   (activation codes) are stored as keyed hashes ([`Store::secret_hash`]) under the same key.
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

use time::OffsetDateTime;

pub use crypto::{load_or_create_key_file, SecretKey};
pub use error::{StoreError, StoreResult};
pub use model::{
    AccessKey, AccessKeyStatus, Account, Activation, IamRole, IamUser, InstanceInfo, ManagedInstance, NewRegistration,
    RegistrationOutcome, ServiceSettingRow, SessionCredential, SessionPrincipal, Tag,
};

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

    // --- IAM roles ---
    //
    // Role names are unique per account case-insensitively (the AWS rule) and looked up
    // case-insensitively; the stored name keeps its case.

    /// Creates a role with its tags, in one transaction. [`StoreError::AlreadyExists`] if the
    /// account has a role of that name in any case, or the `role_id` is taken;
    /// [`StoreError::NotFound`] if the account does not exist; [`StoreError::InvalidInput`]
    /// if a tag key is given twice.
    async fn create_role(&self, role: &IamRole) -> StoreResult<()>;

    /// Reads a role (with tags) by name, case-insensitively.
    async fn get_role(&self, account_id: &str, role_name: &str) -> StoreResult<Option<IamRole>>;

    /// Every role of the account (with tags), ordered by `role_name` (byte order).
    async fn list_roles(&self, account_id: &str) -> StoreResult<Vec<IamRole>>;

    /// Deletes a role and its tags. [`StoreError::NotFound`] if absent;
    /// `StoreError::Conflict("attached policies")` (changing nothing) while any managed policy
    /// is attached (AWS: `DeleteConflict`).
    async fn delete_role(&self, account_id: &str, role_name: &str) -> StoreResult<()>;

    /// Attaches a managed policy to a role; attaching it again is a no-op.
    /// [`StoreError::NotFound`] if the role does not exist.
    async fn attach_role_policy(&self, account_id: &str, role_name: &str, policy_arn: &str) -> StoreResult<()>;

    /// Detaches a managed policy. [`StoreError::NotFound`] if the role does not exist or the
    /// policy is not attached to it.
    async fn detach_role_policy(&self, account_id: &str, role_name: &str, policy_arn: &str) -> StoreResult<()>;

    /// ARNs of the policies attached to a role, sorted (byte order). [`StoreError::NotFound`]
    /// if the role does not exist.
    async fn list_attached_role_policies(&self, account_id: &str, role_name: &str) -> StoreResult<Vec<String>>;

    // --- SSM activations ---
    //
    // An activation id is a UUID unique deployment-wide: registration finds the account and
    // region from it.

    /// Creates an activation with its tags, in one transaction. [`StoreError::AlreadyExists`]
    /// on a duplicate id; [`StoreError::NotFound`] if the account does not exist.
    async fn create_activation(&self, activation: &Activation) -> StoreResult<()>;

    /// Reads an activation (with tags) by id, in whatever account and region it belongs to.
    async fn get_activation(&self, activation_id: &str) -> StoreResult<Option<Activation>>;

    /// The account's activations in a region (with tags), ordered by `created_date`, then
    /// `activation_id`.
    async fn list_activations(&self, account_id: &str, region: &str) -> StoreResult<Vec<Activation>>;

    /// Deletes an activation of the account and region, so it admits no more registrations.
    /// Instances registered with it stay. [`StoreError::NotFound`] if absent there.
    async fn delete_activation(&self, account_id: &str, region: &str, activation_id: &str) -> StoreResult<()>;

    // --- managed instances ---

    /// Registers a managed instance, in ONE transaction:
    ///
    /// 1. the activation is found by id (in any account and region) and its code hash
    ///    compared in constant time with `reg.code_hash`: absent or different →
    ///    [`RegistrationOutcome::InvalidActivation`];
    /// 2. `expiration_date <= registered_at` → [`RegistrationOutcome::Expired`];
    /// 3. `registrations_count >= registration_limit` →
    ///    [`RegistrationOutcome::ActivationLimitExceeded`];
    /// 4. the activation's account and region already hold `max_instances_in_region`
    ///    instances (when `Some`) → [`RegistrationOutcome::RegionLimitExceeded`];
    /// 5. otherwise the instance is inserted with the activation's account, region and
    ///    `iam_role`, `name` = its `default_instance_name` and a copy of its tags, and the
    ///    activation's `registrations_count` and the region's instance count go up by one.
    ///
    /// Racing registrations for the last slot of an activation or of the region cap admit
    /// exactly one (PostgreSQL: the activation row and the region's count row are locked;
    /// SQLite: `BEGIN IMMEDIATE`). Outcomes other than `Registered` change nothing.
    /// [`StoreError::AlreadyExists`] if `reg.instance_id` is taken (the caller may retry
    /// with a new id); [`StoreError::InvalidInput`] for unstorable instance fields.
    async fn register_instance(&self, reg: &NewRegistration) -> StoreResult<RegistrationOutcome>;

    /// Reads a managed instance (with tags) by id, in whatever account it belongs to.
    async fn get_instance(&self, instance_id: &str) -> StoreResult<Option<ManagedInstance>>;

    /// A page of an account+region's instances ordered by instance_id, strictly after `after` when given, at most `limit`.
    async fn list_instances(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ManagedInstance>>;

    /// How many managed instances the account holds in the region.
    async fn count_instances(&self, account_id: &str, region: &str) -> StoreResult<u64>;

    /// Records a health ping at `at`: sets `last_ping_at` and the fields of `info` that are
    /// `Some`; fields that are `None` keep their stored value. [`StoreError::NotFound`] if the
    /// instance does not exist.
    async fn record_ping(&self, instance_id: &str, info: &InstanceInfo, at: OffsetDateTime) -> StoreResult<()>;

    /// Rotates the instance's key: the current key becomes `previous_public_key` and
    /// `new_public_key` the current one. [`StoreError::NotFound`] if the instance does not exist.
    async fn update_instance_public_key(&self, instance_id: &str, new_public_key: &str) -> StoreResult<()>;

    /// Sets the IAM role of an instance of the account and region. [`StoreError::NotFound`] if
    /// absent there.
    async fn update_instance_role(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        iam_role: &str,
    ) -> StoreResult<()>;

    /// Deletes the instance, its tags and every session credential issued to it
    /// ([`SessionPrincipal::AssumedRole`] whose `session_name` is the instance id, in the same
    /// account) and decrements the region count — ONE transaction, so its credentials stop
    /// working at once. [`StoreError::NotFound`] if absent. The activation's
    /// `registrations_count` is not given back (AWS behaviour).
    async fn deregister_instance(&self, account_id: &str, region: &str, instance_id: &str) -> StoreResult<()>;

    /// Adds or overwrites tags; if the instance would then hold more than `max_tags` tags →
    /// `StoreError::Conflict("TooManyTags")` and nothing changes. [`StoreError::NotFound`] if
    /// the instance is absent from the account and region; [`StoreError::InvalidInput`] if a
    /// key is given twice.
    async fn put_instance_tags(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()>;

    /// Removes the tags with these keys; keys the instance does not have are ignored.
    /// [`StoreError::NotFound`] if the instance is absent from the account and region.
    async fn remove_instance_tags(
        &self,
        account_id: &str,
        region: &str,
        instance_id: &str,
        keys: &[String],
    ) -> StoreResult<()>;

    // --- keyed hashes ---

    /// A keyed hash for high-entropy secrets (activation codes): lowercase hex of
    /// `HMAC-SHA-256(sub_key, secret)`, where `sub_key = HMAC-SHA-256(secret_key, "corral
    /// <purpose> v1")` under this store's [`SecretKey`]. Deterministic across replicas sharing
    /// the key; hashes for different purposes never match. Not a password hash: use it only
    /// for random secrets.
    fn secret_hash(&self, purpose: &str, secret: &str) -> String;
}
