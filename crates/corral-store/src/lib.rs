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
//! - Audit records can be written in the same transaction as the change they describe: inside
//!   [`with_audit_slot`], the first write that commits also appends the staged record as its
//!   last statement ([`AuditSlot`]; the rules are in the `pending_audit` module's docs).
//! - Strings containing a NUL character are refused with [`StoreError::InvalidInput`] on both
//!   backends (PostgreSQL cannot store NUL in TEXT; SQLite would, so we refuse it up front).
//!
//! Schema changes are versioned SQL files, one folder per backend (`migrations/sqlite`,
//! `migrations/postgres`), applied by [`open`] in a transaction each and recorded in the
//! `_sqlx_migrations` table; on PostgreSQL an advisory lock keeps replicas that start together
//! from migrating twice.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod common;
mod crypto;
mod db;
mod error;
mod model;
mod pending_audit;
mod store;

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
// IAM access control (users, keys, groups, managed and inline policies).
pub use model::{
    policy_size, AccessKeyMetadata, IamEntity, IamGroup, IdentityPolicies, ManagedPolicy, ManagedPolicyVersion,
    PolicySubject,
};

// SSM documents and their versions.
pub use model::{Document, DocumentListing, DocumentVersion};

// Run Command: commands, their invocations and plugin results.
pub use model::{Command, CommandFilter, CommandInvocation, InvocationStatusCount, InvocationUpdate, PluginResult};

// The audit trail (CloudTrail records in hash chains).
pub use audit::{
    audit_chain_hash, verify_chain, AuditFilter, AuditRecord, AuditResource, ChainBreak, ChainBreakReason,
    StoredAuditRecord, AUDIT_GENESIS_HASH,
};
// Audit records committed in the same transaction as the write they describe.
pub use pending_audit::{current_audit_slot, with_audit_slot, AuditSlot};

/// One connection pool's use ([`Store::pool_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `readers` and `writer` on SQLite, `main` on PostgreSQL.
    pub pool: &'static str,
    /// Connections open (idle or in use).
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

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
        Ok(Arc::new(store::SqlStore::new(db::sqlite::open(url).await?, sealer)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(store::SqlStore::new(db::postgres::open(url).await?, sealer)))
    } else {
        // The URL may carry a password, so it is not echoed back.
        Err(StoreError::InvalidInput("unsupported database URL: expected sqlite:// or postgres://".into()))
    }
}

/// Writes a consistent copy of the SQLite database at `url` to `dest` (a new file), while a
/// server may be using it: SQLite's `VACUUM INTO` reads one snapshot of the database (WAL
/// included) and writes it compacted. The copy is a complete database: put it at
/// `DATA_DIR/corral.db` of a data dir holding the same `secret.key` to restore. PostgreSQL
/// deployments use `pg_dump` instead ([`StoreError::InvalidInput`] here).
pub async fn backup_sqlite(url: &str, dest: &std::path::Path) -> StoreResult<()> {
    if !url.starts_with("sqlite:") {
        return Err(StoreError::InvalidInput(
            "corral backup copies the embedded SQLite store; back up PostgreSQL with pg_dump".into(),
        ));
    }
    if dest.exists() {
        return Err(StoreError::InvalidInput(format!("{} exists already; choose a new file", dest.display())));
    }
    db::sqlite::backup_into(url, dest).await
}

/// The persistence interface the server codes against.
///
/// Every method is one database transaction (or one autocommitted statement): when it returns
/// `Ok`, the change is durable and visible to every replica. Reads return `Ok(None)` for a
/// missing row; writes return [`StoreError::AlreadyExists`] on a duplicate key and
/// [`StoreError::NotFound`] when a row they refer to (account, user) does not exist.
///
/// Inside [`with_audit_slot`] with a staged record, the first write method of the task that
/// commits (one-statement writes then run in a transaction too) appends that record in the
/// same transaction, as its last statement, and fails without changing anything if the record
/// cannot be stored; reads and [`Store::append_audit`] never take the staged record.
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

    /// Deletes a role, its tags and every session credential assumed from it (by role id),
    /// in one transaction. [`StoreError::NotFound`] if absent;
    /// `StoreError::Conflict("inline policies")` or `StoreError::Conflict("attached
    /// policies")` (changing nothing) while it has any (AWS: `DeleteConflict`).
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

    // --- IAM access control: users, keys, groups, managed and inline policies ---
    //
    // Every write is one transaction that changes nothing when it fails. Errors:
    // [`StoreError::NotFound`] when a named user, group, role, policy, key or attachment is
    // absent from the account; [`StoreError::AlreadyExists`] on a duplicate name or id;
    // [`StoreError::Conflict`] with the reason documented per method (AWS's DeleteConflict or
    // LimitExceeded); [`StoreError::InvalidInput`] for unstorable values.

    /// Creates an IAM user with its tags, in one transaction (as [`Store::create_user`]).
    async fn create_user_with_tags(&self, user: &IamUser, tags: &[Tag]) -> StoreResult<()>;

    /// Every user of the account, ordered by `user_name` (byte order).
    async fn list_users(&self, account_id: &str) -> StoreResult<Vec<IamUser>>;

    /// Deletes a user with its tags and every session credential issued to it. Refused,
    /// changing nothing, with `Conflict("access keys")`, `Conflict("inline policies")`,
    /// `Conflict("attached policies")` or `Conflict("groups")` (checked in that order) while
    /// the user has any.
    async fn delete_user(&self, account_id: &str, user_name: &str) -> StoreResult<()>;

    /// The tags of a user or role, sorted by key. `InvalidInput` for a group (groups have no
    /// tags on AWS).
    async fn list_entity_tags(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<Tag>>;

    /// Adds or overwrites tags of a user or role; `Conflict("TooManyTags")` (changing
    /// nothing) if it would then hold more than `max_tags`.
    async fn tag_entity(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()>;

    /// Removes tags of a user or role by key; absent keys are ignored.
    async fn untag_entity(&self, account_id: &str, entity: IamEntity<'_>, keys: &[String]) -> StoreResult<()>;

    /// Stores a long-term access key unless its user already has `max_per_user` keys
    /// (`Conflict("AccessKeysPerUser")`); otherwise as [`Store::create_access_key`].
    async fn create_access_key_limited(&self, key: &AccessKey, max_per_user: usize) -> StoreResult<()>;

    /// A user's access keys without secrets, ordered by creation time, then id.
    async fn list_access_keys(&self, account_id: &str, user_name: &str) -> StoreResult<Vec<AccessKeyMetadata>>;

    /// Sets the status of one of the user's keys.
    async fn update_access_key_status(
        &self,
        account_id: &str,
        user_name: &str,
        access_key_id: &str,
        status: AccessKeyStatus,
    ) -> StoreResult<()>;

    /// Deletes one of the user's keys; it stops authenticating at once.
    async fn delete_access_key(&self, account_id: &str, user_name: &str, access_key_id: &str) -> StoreResult<()>;

    /// Creates a group.
    async fn create_group(&self, group: &IamGroup) -> StoreResult<()>;

    /// Reads a group by name (exact match).
    async fn get_group(&self, account_id: &str, group_name: &str) -> StoreResult<Option<IamGroup>>;

    /// Every group of the account, ordered by `group_name` (byte order).
    async fn list_groups(&self, account_id: &str) -> StoreResult<Vec<IamGroup>>;

    /// Deletes a group. Refused with `Conflict("members")`, `Conflict("inline policies")` or
    /// `Conflict("attached policies")` (in that order) while it has any.
    async fn delete_group(&self, account_id: &str, group_name: &str) -> StoreResult<()>;

    /// Adds a user to a group; adding it again is a no-op. `NotFound` if either is absent.
    async fn add_user_to_group(&self, account_id: &str, group_name: &str, user_name: &str) -> StoreResult<()>;

    /// Removes a user from a group. `NotFound` if the user is not a member (or either is absent).
    async fn remove_user_from_group(&self, account_id: &str, group_name: &str, user_name: &str) -> StoreResult<()>;

    /// The members of a group, ordered by `user_name`. `NotFound` if the group is absent.
    async fn list_group_members(&self, account_id: &str, group_name: &str) -> StoreResult<Vec<IamUser>>;

    /// The groups a user belongs to, ordered by `group_name`. `NotFound` if the user is absent.
    async fn list_groups_for_user(&self, account_id: &str, user_name: &str) -> StoreResult<Vec<IamGroup>>;

    /// Creates a customer managed policy with its tags and version `v1` (the default, holding
    /// `document`), in one transaction. `AlreadyExists` if the account has a policy of that
    /// name (any path) or the ARN or id is taken.
    async fn create_policy(&self, policy: &ManagedPolicy, document: &str) -> StoreResult<()>;

    /// Reads a customer managed policy of the account by ARN, with tags and attachment count.
    async fn get_policy(&self, account_id: &str, arn: &str) -> StoreResult<Option<ManagedPolicy>>;

    /// Every customer managed policy of the account (with tags and attachment counts),
    /// ordered by `policy_name` (byte order).
    async fn list_policies(&self, account_id: &str) -> StoreResult<Vec<ManagedPolicy>>;

    /// Deletes a policy with its versions and tags. `Conflict("attached")` while it is
    /// attached to any user, group or role.
    async fn delete_policy(&self, account_id: &str, arn: &str) -> StoreResult<()>;

    /// Adds a version (`v<n>`, n one more than any version the policy ever had), made the
    /// default when `set_as_default` (which also sets `updated_at`).
    /// `Conflict("VersionsPerPolicy")` if the policy already has `max_versions` versions.
    async fn create_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
        created_at: OffsetDateTime,
        max_versions: usize,
    ) -> StoreResult<ManagedPolicyVersion>;

    /// Reads one version of a policy (`None` if the policy or the version is absent).
    async fn get_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        version_id: &str,
    ) -> StoreResult<Option<ManagedPolicyVersion>>;

    /// A policy's versions, newest first. `NotFound` if the policy is absent.
    async fn list_policy_versions(&self, account_id: &str, arn: &str) -> StoreResult<Vec<ManagedPolicyVersion>>;

    /// Deletes a non-default version. `Conflict("default version")` for the default one.
    async fn delete_policy_version(&self, account_id: &str, arn: &str, version_id: &str) -> StoreResult<()>;

    /// How many users, groups and roles of the account each attached managed policy (AWS or
    /// customer) is attached to, sorted by ARN; policies attached nowhere are absent.
    async fn policy_attachment_counts(&self, account_id: &str) -> StoreResult<Vec<(String, u64)>>;

    /// Attaches a managed policy to a user, group or role; attaching it again is a no-op.
    /// A customer managed ARN (anything not under `arn:aws:iam::aws:policy/`) must name a
    /// policy of the account (`NotFound` otherwise; the caller checks AWS managed ones).
    /// `Conflict("PolicyCount")` if the entity already has `max_attached` policies.
    async fn attach_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_arn: &str,
        max_attached: usize,
    ) -> StoreResult<()>;

    /// Detaches a managed policy. `NotFound` if the entity is absent or the policy is not
    /// attached to it.
    async fn detach_policy(&self, account_id: &str, entity: IamEntity<'_>, policy_arn: &str) -> StoreResult<()>;

    /// ARNs attached to a user, group or role, sorted (byte order).
    async fn list_attached_policies(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<String>>;

    /// Creates or replaces an inline policy of a user, group or role.
    /// `Conflict("PolicySize")` if the entity's inline policies together would exceed
    /// `max_total_size` ([`policy_size`]: characters excluding whitespace).
    async fn put_inline_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_name: &str,
        document: &str,
        max_total_size: usize,
    ) -> StoreResult<()>;

    /// Reads an inline policy's document (`None` if the entity has no policy of that name;
    /// `NotFound` if the entity is absent).
    async fn get_inline_policy(
        &self,
        account_id: &str,
        entity: IamEntity<'_>,
        policy_name: &str,
    ) -> StoreResult<Option<String>>;

    /// The names of an entity's inline policies, sorted (byte order).
    async fn list_inline_policies(&self, account_id: &str, entity: IamEntity<'_>) -> StoreResult<Vec<String>>;

    /// Deletes an inline policy. `NotFound` if the entity or the policy is absent.
    async fn delete_inline_policy(&self, account_id: &str, entity: IamEntity<'_>, policy_name: &str)
        -> StoreResult<()>;

    /// Replaces a role's trust policy.
    async fn update_assume_role_policy(&self, account_id: &str, role_name: &str, document: &str) -> StoreResult<()>;

    /// The identity-based policies of a user (with its groups') or role, read from one
    /// consistent snapshot in a handful of statements: the authoriser calls it on every
    /// request. `NotFound` if the subject is absent.
    async fn identity_policies(&self, account_id: &str, subject: PolicySubject<'_>) -> StoreResult<IdentityPolicies>;

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

    /// Rotates the instance's key: the current key becomes `previous_public_key`, accepted
    /// until `previous_valid_until`, and `new_public_key` the current one.
    /// [`StoreError::NotFound`] if the instance does not exist.
    async fn update_instance_public_key(
        &self,
        instance_id: &str,
        new_public_key: &str,
        previous_valid_until: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Records that the instance's control channel opened at `at`: a ping at `at`, the channel's
    /// open time, and no close. [`StoreError::NotFound`] if the instance does not exist.
    async fn record_channel_open(&self, instance_id: &str, at: OffsetDateTime) -> StoreResult<()>;

    /// Records that the channel opened at `opened_at` closed at `at`; a no-op when another
    /// channel has opened since (on this server or another replica).
    async fn record_channel_close(
        &self,
        instance_id: &str,
        opened_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    /// Forgets the previous key once the new one is in use, if it is still `previous_public_key`
    /// (a rotation that happened meanwhile is left alone). A no-op when there is none.
    async fn retire_previous_public_key(&self, instance_id: &str, previous_public_key: &str) -> StoreResult<()>;

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

    // --- SSM documents ---
    //
    // Documents are keyed by `(account_id, region, name)`, names compared case-sensitively.
    // Every write is one transaction that changes nothing when it fails; a document's row is
    // locked (PostgreSQL) or the database write-locked (SQLite) while its versions change, so
    // concurrent updates queue.

    /// Creates a document with its first version and its tags. `version` must be version 1
    /// of `document`, which must have default, latest and last assigned version 1
    /// ([`StoreError::InvalidInput`] otherwise). [`StoreError::AlreadyExists`] if the account
    /// has a document of that name in the region; [`StoreError::NotFound`] if the account does
    /// not exist; `Conflict("DocumentLimit")` if the account already holds `max_documents`
    /// documents in the region.
    async fn create_document(
        &self,
        document: &Document,
        version: &DocumentVersion,
        max_documents: usize,
    ) -> StoreResult<()>;

    /// Reads a document (with tags).
    async fn get_document(&self, account_id: &str, region: &str, name: &str) -> StoreResult<Option<Document>>;

    /// Reads one version of a document (`None` if the document or the version is absent).
    async fn get_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<Option<DocumentVersion>>;

    /// Every version of a document, oldest first. [`StoreError::NotFound`] if it is absent.
    async fn list_document_versions(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Vec<DocumentVersion>>;

    /// A page of the account's documents in the region, each with its default version and
    /// tags, ordered by name (byte order), strictly after `after` when given, at most `limit`.
    async fn list_documents(
        &self,
        account_id: &str,
        region: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<DocumentListing>>;

    /// Adds a version to its document, which becomes the latest (the default is unchanged).
    /// `version.version` must be the document's last assigned version plus one, else
    /// `Conflict("VersionChanged")` (another update came first). `Conflict("DuplicateContent")`
    /// if a version has the same hash; `Conflict("DuplicateVersionName")` if a version has the
    /// same version name; `Conflict("DocumentVersionLimit")` if the document already has
    /// `max_versions` versions; [`StoreError::NotFound`] if the document is absent.
    async fn add_document_version(&self, version: &DocumentVersion, max_versions: usize) -> StoreResult<()>;

    /// Makes an existing version the default. [`StoreError::NotFound`] if the document is
    /// absent; `Conflict("NoSuchVersion")` if the version is.
    async fn set_default_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<()>;

    /// Deletes a document with every version and tag. [`StoreError::NotFound`] if absent.
    async fn delete_document(&self, account_id: &str, region: &str, name: &str) -> StoreResult<()>;

    /// Deletes one version; the latest version becomes the highest remaining one.
    /// [`StoreError::NotFound`] if the document or the version is absent;
    /// `Conflict("DefaultVersion")` for the default version.
    async fn delete_document_version(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<()>;

    /// Adds or overwrites tags of a document; `Conflict("TooManyTags")` (changing nothing) if
    /// it would then hold more than `max_tags`. [`StoreError::NotFound`] if it is absent;
    /// [`StoreError::InvalidInput`] if a key is given twice.
    async fn put_document_tags(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()>;

    /// Removes tags of a document by key; absent keys are ignored. [`StoreError::NotFound`]
    /// if the document is absent.
    async fn remove_document_tags(
        &self,
        account_id: &str,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> StoreResult<()>;

    // --- Run Command ---
    //
    // A command and its invocations are created together; afterwards only invocations change
    // (compare-and-set on their status) and the command's `cancel_requested` / `active` flags.
    // Listings order commands newest first (`requested_at` descending, then `command_id`), and
    // invocations by their command's order, then `instance_id`.

    /// Creates a command with all its invocations (and their plugin results, normally none),
    /// in ONE transaction, so every read after it returns finds them.
    /// [`StoreError::AlreadyExists`] on a duplicate command id; [`StoreError::InvalidInput`]
    /// for unstorable text or an invocation of another command.
    async fn create_command(&self, command: &Command, invocations: &[CommandInvocation]) -> StoreResult<()>;

    /// Reads a command of the account and region.
    async fn get_command(&self, account_id: &str, region: &str, command_id: &str) -> StoreResult<Option<Command>>;

    /// A page of the account's commands in the region matching `filter`, newest first,
    /// strictly after `after` (the `(requested_at, command_id)` of the previous page's last
    /// command) when given, at most `limit`.
    async fn list_commands(
        &self,
        account_id: &str,
        region: &str,
        filter: &CommandFilter,
        after: Option<(OffsetDateTime, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Command>>;

    /// How many invocations of each of these commands (of the account and region) are in each
    /// `(status, status_details)`; commands without invocations are absent.
    async fn invocation_status_counts(
        &self,
        account_id: &str,
        region: &str,
        command_ids: &[String],
    ) -> StoreResult<Vec<InvocationStatusCount>>;

    /// Reads one invocation with its plugin results.
    async fn get_invocation(
        &self,
        account_id: &str,
        region: &str,
        command_id: &str,
        instance_id: &str,
    ) -> StoreResult<Option<CommandInvocation>>;

    /// A page of invocations of the account's commands matching `filter` (its `instance_id`
    /// selects invocations on that instance), ordered as listings are, strictly after `after`
    /// (the previous page's last `(requested_at, command_id, instance_id)`), at most `limit`;
    /// with plugin results when `with_plugins`.
    #[allow(clippy::too_many_arguments)]
    async fn list_invocations(
        &self,
        account_id: &str,
        region: &str,
        filter: &CommandFilter,
        after: Option<(OffsetDateTime, String, String)>,
        limit: usize,
        with_plugins: bool,
    ) -> StoreResult<Vec<CommandInvocation>>;

    /// Every invocation of a command (any account: the scheduler's view), by `instance_id`,
    /// without plugin results.
    async fn command_invocations(&self, command_id: &str) -> StoreResult<Vec<CommandInvocation>>;

    /// Applies `update` to an invocation if its status is one of `from`, in one transaction.
    /// Returns whether it was applied (false: the invocation is absent or its status is not in
    /// `from`).
    async fn update_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
        from: &[&str],
        update: &InvocationUpdate,
    ) -> StoreResult<bool>;

    /// Marks a command of the account and region as cancelled by its caller.
    /// [`StoreError::NotFound`] if absent.
    async fn set_command_cancel_requested(&self, account_id: &str, region: &str, command_id: &str) -> StoreResult<()>;

    /// Sets a command's `active` flag (any account). Succeeds if it is absent.
    async fn set_command_active(&self, command_id: &str, active: bool) -> StoreResult<()>;

    /// Every active command of every account, oldest first, at most `limit`: the scheduler's
    /// work list.
    async fn active_commands(&self, limit: usize) -> StoreResult<Vec<Command>>;

    /// Active commands (oldest first) with an invocation on `instance_id` whose status is one
    /// of `statuses`: what to deliver when the instance connects.
    async fn active_commands_for_instance(&self, instance_id: &str, statuses: &[&str]) -> StoreResult<Vec<String>>;

    /// How many invocations of active commands are in each of `statuses` that has any, by
    /// status (for metrics: the work not yet done).
    async fn open_invocation_counts(&self, statuses: &[&str]) -> StoreResult<Vec<(String, u64)>>;

    // --- operations ---

    /// The connection pools' use right now (for metrics).
    fn pool_stats(&self) -> Vec<PoolStats>;

    // --- keyed hashes ---

    /// A keyed hash for high-entropy secrets (activation codes): lowercase hex of
    /// `HMAC-SHA-256(sub_key, secret)`, where `sub_key = HMAC-SHA-256(secret_key, "corral
    /// <purpose> v1")` under this store's [`SecretKey`]. Deterministic across replicas sharing
    /// the key; hashes for different purposes never match. Not a password hash: use it only
    /// for random secrets.
    fn secret_hash(&self, purpose: &str, secret: &str) -> String;

    // === audit ===
    //
    // CloudTrail records, one hash chain per (account_id, region); see the `audit` module.
    // Records are never updated or deleted: there are no methods for that.

    /// Appends `record` to its `(account_id, region)` chain, in one transaction: `seq` = the
    /// chain's last seq + 1 (1 for the first record), `prev_hash` = the last record's hash
    /// ([`AUDIT_GENESIS_HASH`] for the first), `hash` = [`audit_chain_hash`]`(prev_hash,
    /// record_json)`. Concurrent appends to a chain (from any replica) queue, so a chain never
    /// forks or reuses a seq (PostgreSQL: the chain's head row is locked; SQLite: `BEGIN
    /// IMMEDIATE`). Returns the record as stored (`event_time` truncated to the millisecond).
    /// [`StoreError::AlreadyExists`] (nothing appended) if the chain already has a record with
    /// this `event_id`; [`StoreError::InvalidInput`] for unstorable text (NUL) or times.
    /// Appends only `record`: a record staged in an [`AuditSlot`] stays for the next write.
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<StoredAuditRecord>;

    /// Appends several records in one transaction, in order (group commit: one commit for
    /// many calls' records). All or nothing: on any error nothing is appended and the caller
    /// may retry the records one by one.
    async fn append_audits(&self, records: &[AuditRecord]) -> StoreResult<Vec<StoredAuditRecord>>;

    /// A LookupEvents page, newest first (by `event_time`, then `seq`): the chain's records
    /// with `start <= event_time <= end` that match `filter`, strictly older than `before`
    /// (the `(event_time, seq)` of the last record of the previous page) when given, at most
    /// `limit`. Empty if `start > end`.
    #[allow(clippy::too_many_arguments)]
    async fn lookup_audit(
        &self,
        account_id: &str,
        region: &str,
        filter: &AuditFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
        before: Option<(OffsetDateTime, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>>;

    /// The chain's records with `seq > after_seq`, oldest first, at most `limit`: for
    /// verification ([`verify_chain`]) and export. Page with `after_seq` = the last seq seen.
    async fn audit_chain(
        &self,
        account_id: &str,
        region: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>>;

    /// Every `(account_id, region)` that has a chain, ordered (byte order).
    async fn audit_streams(&self) -> StoreResult<Vec<(String, String)>>;
}
