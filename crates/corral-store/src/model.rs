//! Rows the store reads and writes. Plain data: no wire (de)serialisation here.

use std::fmt;

use time::OffsetDateTime;

use crate::common::{check_opt_text, check_tags, check_text, check_time};
use crate::error::{StoreError, StoreResult};

/// A tenant: every resource belongs to exactly one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// An IAM user, unique per `(account_id, user_name)`; `user_id` is unique deployment-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    /// Owning account.
    pub account_id: String,
    /// Friendly name (`UserName`).
    pub user_name: String,
    /// Stable unique id (`UserId`, `AIDA...`).
    pub user_id: String,
    /// IAM path, e.g. `/`.
    pub path: String,
    /// `arn:aws:iam::<account>:user<path><name>`.
    pub arn: String,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// Whether an access key may be used to sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKeyStatus {
    /// Usable.
    Active,
    /// Kept but refused.
    Inactive,
}

impl AccessKeyStatus {
    /// The AWS spelling, also the stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }

    pub(crate) fn from_db(s: &str) -> StoreResult<Self> {
        match s {
            "Active" => Ok(AccessKeyStatus::Active),
            "Inactive" => Ok(AccessKeyStatus::Inactive),
            other => Err(StoreError::Database(format!("unknown access key status in database: {other:?}"))),
        }
    }
}

/// A long-term IAM access key. `Debug` hides the secret.
#[derive(Clone)]
pub struct AccessKey {
    /// `AKIA...`, unique deployment-wide.
    pub access_key_id: String,
    /// Owning account.
    pub account_id: String,
    /// Owning user (must exist in `account_id`).
    pub user_name: String,
    /// The plaintext secret. Encrypted at rest; never log it.
    pub secret_access_key: String,
    /// Whether the key may be used.
    pub status: AccessKeyStatus,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// Who temporary credentials act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPrincipal {
    /// An IAM user (`GetSessionToken`).
    User {
        /// The user's name in the credential's account.
        user_name: String,
    },
    /// An assumed role (`AssumeRole`, managed-instance role tokens).
    AssumedRole {
        /// Role name.
        role_name: String,
        /// Role id (`AROA...`).
        role_id: String,
        /// Role session name (for managed instances, the instance id).
        session_name: String,
    },
}

/// Temporary credentials. `Debug` hides the secret.
#[derive(Clone)]
pub struct SessionCredential {
    /// `ASIA...`, unique deployment-wide.
    pub access_key_id: String,
    /// Account the credentials act in.
    pub account_id: String,
    /// The plaintext secret. Encrypted at rest; never log it.
    pub secret_access_key: String,
    /// Hex SHA-256 of the session token, computed by the caller and stored as given.
    pub session_token_hash: String,
    /// Who the credentials act as.
    pub principal: SessionPrincipal,
    /// Issue time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
    /// Expiry time (stored with millisecond precision); not enforced by the store.
    pub expires_at: OffsetDateTime,
}

/// One SSM service setting of an account in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettingRow {
    /// Owning account.
    pub account_id: String,
    /// Region name, e.g. `us-east-1`.
    pub region: String,
    /// Setting id, e.g. `/ssm/managed-instance/activation-tier`.
    pub setting_id: String,
    /// Current value.
    pub value: String,
    /// ARN of whoever last changed it.
    pub last_modified_user: String,
    /// When it was last changed (stored with millisecond precision).
    pub last_modified_date: OffsetDateTime,
}

/// A key/value tag on a resource (IAM role, activation, managed instance).
///
/// Lists of tags read from the store are sorted by key (byte order) and hold each key once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// Tag key (case-sensitive).
    pub key: String,
    /// Tag value (may be empty).
    pub value: String,
}

/// An IAM role. Role names are unique per account case-insensitively (the AWS rule) and are
/// looked up case-insensitively; the stored name keeps the case it was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamRole {
    /// Owning account.
    pub account_id: String,
    /// Friendly name (`RoleName`), as created.
    pub role_name: String,
    /// Stable unique id (`RoleId`, `AROA...`), unique deployment-wide.
    pub role_id: String,
    /// IAM path, e.g. `/` or `/service-role/`.
    pub path: String,
    /// `arn:aws:iam::<account>:role<path><name>`.
    pub arn: String,
    /// The trust policy (JSON text, stored verbatim).
    pub assume_role_policy_document: String,
    /// Optional description.
    pub description: Option<String>,
    /// Longest session (seconds) `AssumeRole` may grant.
    pub max_session_duration: i32,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
    /// Tags given at creation, sorted by key when read back.
    pub tags: Vec<Tag>,
}

/// An SSM hybrid activation. `Debug` shows only a prefix of the code hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Activation {
    /// Owning account.
    pub account_id: String,
    /// Region the activation (and the instances registered with it) belong to.
    pub region: String,
    /// Lower-case UUID, unique deployment-wide: registration finds the account from it.
    pub activation_id: String,
    /// [`crate::Store::secret_hash`] of the activation code; the code itself is never stored.
    pub code_hash: String,
    /// Optional description.
    pub description: Option<String>,
    /// Becomes the `Name` of instances registered with this activation.
    pub default_instance_name: Option<String>,
    /// IAM role name the registered instances act as.
    pub iam_role: String,
    /// How many registrations the activation admits in total.
    pub registration_limit: i32,
    /// How many registrations it has admitted (deregistering does not give one back).
    pub registrations_count: i32,
    /// Registrations at or after this time fail (stored with millisecond precision).
    pub expiration_date: OffsetDateTime,
    /// Creation time (stored with millisecond precision).
    pub created_date: OffsetDateTime,
    /// Tags copied onto every instance registered with the activation; fixed at creation.
    pub tags: Vec<Tag>,
}

/// What the agent reported in its last health ping (all optional: the first ping may be "empty").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceInfo {
    /// `AgentName`, e.g. `amazon-ssm-agent`.
    pub agent_name: Option<String>,
    /// `AgentStatus`, e.g. `Active`.
    pub agent_status: Option<String>,
    /// `AgentVersion`, e.g. `3.3.131.0`.
    pub agent_version: Option<String>,
    /// `PlatformType`: `Linux`, `Windows` or `MacOS`.
    pub platform_type: Option<String>,
    /// `PlatformName`, e.g. `Ubuntu`.
    pub platform_name: Option<String>,
    /// `PlatformVersion`, e.g. `22.04`.
    pub platform_version: Option<String>,
    /// `IPAddress`.
    pub ip_address: Option<String>,
    /// `ComputerName` (FQDN).
    pub computer_name: Option<String>,
    /// How the agent reaches the service, e.g. `ssmmessages`.
    pub ssm_connection_channel: Option<String>,
}

/// A managed (hybrid) instance registered with an activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInstance {
    /// Owning account (the activation's).
    pub account_id: String,
    /// Region (the activation's).
    pub region: String,
    /// `mi-` followed by 17 hex digits, unique deployment-wide.
    pub instance_id: String,
    /// The activation it registered with (which may since have been deleted).
    pub activation_id: String,
    /// IAM role name the instance acts as.
    pub iam_role: String,
    /// `Name` (the activation's default instance name).
    pub name: Option<String>,
    /// The agent's current RSA public key (base64 SPKI, as registered).
    pub public_key: String,
    /// The key before the last rotation, still accepted for role tokens until
    /// `previous_key_expires_at` (so an agent that missed the rotation's answer can recover),
    /// and cleared as soon as the new key is used.
    pub previous_public_key: Option<String>,
    /// When `previous_public_key` stops being accepted (millisecond precision).
    pub previous_key_expires_at: Option<OffsetDateTime>,
    /// When the instance's latest control channel opened (millisecond precision).
    pub channel_opened_at: Option<OffsetDateTime>,
    /// When that channel closed; `None` while it is open (or none was ever opened).
    pub channel_closed_at: Option<OffsetDateTime>,
    /// The agent's machine fingerprint, as registered.
    pub fingerprint: String,
    /// Registration time (stored with millisecond precision).
    pub registered_at: OffsetDateTime,
    /// Time of the last health ping, if any (stored with millisecond precision).
    pub last_ping_at: Option<OffsetDateTime>,
    /// What the agent last reported.
    pub info: InstanceInfo,
    /// The instance's tags, sorted by key.
    pub tags: Vec<Tag>,
}

/// A registration request, checked and applied by [`crate::Store::register_instance`].
/// `Debug` shows only a prefix of the code hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRegistration {
    /// The activation id the agent presented.
    pub activation_id: String,
    /// [`crate::Store::secret_hash`] of the activation code the agent presented.
    pub code_hash: String,
    /// The new instance's id (`mi-...`), chosen by the caller.
    pub instance_id: String,
    /// The agent's RSA public key.
    pub public_key: String,
    /// The agent's machine fingerprint.
    pub fingerprint: String,
    /// Registration time; also the instant the activation's expiry is checked against.
    pub registered_at: OffsetDateTime,
    /// Most instances the activation's account may hold in its region (standard tier:
    /// 1000); `None` = no account-wide cap (advanced tier).
    pub max_instances_in_region: Option<u64>,
}

/// The result of [`crate::Store::register_instance`]. Every variant but `Registered` leaves
/// the database unchanged.
// One value per registration, returned and matched at once, never stored in bulk, so the
// size difference between variants costs nothing; an unboxed row keeps matching simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// The instance was created; this is the stored row.
    Registered(ManagedInstance),
    /// Unknown activation id, deleted activation, or code hash mismatch.
    InvalidActivation,
    /// The activation's expiration date is at or before the registration time.
    Expired,
    /// The activation's `RegistrationLimit` is used up.
    ActivationLimitExceeded,
    /// The account and region already hold `max_instances_in_region` instances.
    RegionLimitExceeded {
        /// The cap that was reached.
        limit: u64,
    },
}

// === IAM access control: groups, managed and inline policies ===

/// The IAM entity a tag, attachment or inline-policy call is about, by name. Role names are
/// matched case-insensitively (as everywhere for roles); user and group names exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IamEntity<'a> {
    /// An IAM user.
    User(&'a str),
    /// An IAM group.
    Group(&'a str),
    /// An IAM role.
    Role(&'a str),
}

/// An IAM group, unique per `(account_id, group_name)` (exact match, like user names);
/// `group_id` is unique deployment-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamGroup {
    /// Owning account.
    pub account_id: String,
    /// Friendly name (`GroupName`).
    pub group_name: String,
    /// Stable unique id (`GroupId`, `AGPA...`).
    pub group_id: String,
    /// IAM path, e.g. `/`.
    pub path: String,
    /// `arn:aws:iam::<account>:group<path><name>`.
    pub arn: String,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// An access key without its secret, as `ListAccessKeys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyMetadata {
    /// `AKIA...`.
    pub access_key_id: String,
    /// Owning user.
    pub user_name: String,
    /// Whether the key may be used.
    pub status: AccessKeyStatus,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// A customer managed policy (AWS managed ones are built into the server, not stored).
/// Policy names are unique per account whatever the path (AWS rule); the ARN is unique
/// deployment-wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// Owning account.
    pub account_id: String,
    /// `PolicyName`.
    pub policy_name: String,
    /// Stable unique id (`ANPA...`).
    pub policy_id: String,
    /// IAM path, e.g. `/`.
    pub path: String,
    /// `arn:aws:iam::<account>:policy<path><name>`.
    pub arn: String,
    /// Optional description (immutable after creation, as on AWS).
    pub description: Option<String>,
    /// The default version's id (`v1`, `v2`, ...). Ignored by `create_policy` (always `v1`).
    pub default_version_id: String,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
    /// Last time the default version changed (stored with millisecond precision).
    pub updated_at: OffsetDateTime,
    /// Tags given at creation, sorted by key when read back.
    pub tags: Vec<Tag>,
    /// Users, groups and roles the policy is attached to. Computed on read; ignored on write.
    pub attachment_count: u64,
}

/// One version of a customer managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicyVersion {
    /// `v1`, `v2`, ... (numbers are never reused).
    pub version_id: String,
    /// The policy document (JSON text, stored verbatim).
    pub document: String,
    /// Whether this is the policy's default version.
    pub is_default: bool,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// Whose identity policies [`crate::Store::identity_policies`] gathers, by name (role lookup
/// case-insensitive, as roles always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySubject<'a> {
    /// An IAM user: its own policies and those of each of its groups.
    User(&'a str),
    /// An IAM role (for an assumed-role session).
    Role(&'a str),
}

/// Everything the authoriser needs about a principal's identity-based policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityPolicies {
    /// The subject's inline policies, and for a user those of each of its groups.
    pub inline_documents: Vec<String>,
    /// Deduplicated ARNs attached to the subject (and, for a user, to its groups), AWS-managed
    /// ones included; sorted.
    pub managed_policy_arns: Vec<String>,
    /// `(arn, default-version document)` for the customer managed ones among them.
    pub customer_managed_documents: Vec<(String, String)>,
    /// The user's or role's tags (`aws:PrincipalTag/...`), sorted by key.
    pub principal_tags: Vec<Tag>,
}

/// AWS managed policy ARNs start with this; they are not stored (the server ships them).
pub(crate) const AWS_MANAGED_POLICY_PREFIX: &str = "arn:aws:iam::aws:policy/";

/// The SQL names behind an [`IamEntity`]. All are compile-time constants, so queries built
/// from them are safe to format.
pub(crate) struct EntityTables {
    /// The entity table.
    pub table: &'static str,
    /// Its name key column (roles: the folded `role_name_key`).
    pub key_column: &'static str,
    /// Managed-policy attachments.
    pub attachments: &'static str,
    /// Inline policies.
    pub inline: &'static str,
    /// Tags, if the entity has any (groups have none on AWS).
    pub tags: Option<&'static str>,
    /// What AWS calls the entity in messages.
    pub kind: &'static str,
}

impl IamEntity<'_> {
    /// The tables and the key value to look the entity up by.
    pub(crate) fn tables(&self) -> (EntityTables, String) {
        match *self {
            IamEntity::User(name) => (
                EntityTables {
                    table: "iam_users",
                    key_column: "user_name",
                    attachments: "iam_user_policy_attachments",
                    inline: "iam_user_policies",
                    tags: Some("iam_user_tags"),
                    kind: "user",
                },
                name.to_string(),
            ),
            IamEntity::Group(name) => (
                EntityTables {
                    table: "iam_groups",
                    key_column: "group_name",
                    attachments: "iam_group_policy_attachments",
                    inline: "iam_group_policies",
                    tags: None,
                    kind: "group",
                },
                name.to_string(),
            ),
            IamEntity::Role(name) => (
                EntityTables {
                    table: "iam_roles",
                    key_column: "role_name_key",
                    attachments: "iam_role_policy_attachments",
                    inline: "iam_role_policies",
                    tags: Some("iam_role_tags"),
                    kind: "role",
                },
                crate::common::role_name_key(name),
            ),
        }
    }
}

/// A policy document's size as AWS counts it for its quotas: characters, whitespace excluded.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

impl IamGroup {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("group_name", &self.group_name)?;
        check_text("group_id", &self.group_id)?;
        check_text("path", &self.path)?;
        check_text("arn", &self.arn)?;
        check_time("created_at", self.created_at)
    }
}

impl ManagedPolicy {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("policy_name", &self.policy_name)?;
        check_text("policy_id", &self.policy_id)?;
        check_text("path", &self.path)?;
        check_text("arn", &self.arn)?;
        check_opt_text("description", self.description.as_deref())?;
        check_time("created_at", self.created_at)?;
        check_time("updated_at", self.updated_at)?;
        check_tags(&self.tags)
    }
}

// === SSM documents ===

/// An SSM document of an account in a region: the versions share its name, type and tags.
/// Names are unique per `(account_id, region)`, case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Owning account.
    pub account_id: String,
    /// Region the document belongs to.
    pub region: String,
    /// Document name (`Name`).
    pub name: String,
    /// `DocumentType` (`Command`, ...), fixed at creation.
    pub document_type: String,
    /// When version 1 was created (stored with millisecond precision).
    pub created_at: OffsetDateTime,
    /// The version used when a caller names none (`DefaultVersion`).
    pub default_version: i64,
    /// The highest existing version (`LatestVersion`).
    pub latest_version: i64,
    /// The highest version number ever given (deleted versions' numbers are not reused): the
    /// next version is this plus one.
    pub last_assigned_version: i64,
    /// Tags, sorted by key when read back.
    pub tags: Vec<Tag>,
}

/// One version of an SSM document. Versions are numbered from 1; a new one gets one more
/// than any version the document ever had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersion {
    /// Owning account.
    pub account_id: String,
    /// Region of the document.
    pub region: String,
    /// Document name.
    pub name: String,
    /// Version number (`DocumentVersion`), from 1.
    pub version: i64,
    /// Optional `VersionName`, unique within the document.
    pub version_name: Option<String>,
    /// Optional `DisplayName`.
    pub display_name: Option<String>,
    /// The content exactly as given.
    pub content: String,
    /// `JSON`, `YAML` or `TEXT`: the format `content` is in.
    pub format: String,
    /// Lowercase hex SHA-256 of `content`.
    pub hash: String,
    /// `DocumentType` (the document's, repeated per version).
    pub document_type: String,
    /// The content's `schemaVersion`.
    pub schema_version: String,
    /// Optional `TargetType` (`/`, `/AWS::EC2::Instance`, ...).
    pub target_type: Option<String>,
    /// Platforms the content runs on (`Linux`, `MacOS`, `Windows`), derived from it.
    pub platform_types: Vec<String>,
    /// `Active` (or another `DocumentStatus`).
    pub status: String,
    /// Creation time (stored with millisecond precision).
    pub created_at: OffsetDateTime,
}

/// A document with its default version, as listings return them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentListing {
    /// The document (with tags).
    pub document: Document,
    /// Its default version.
    pub default: DocumentVersion,
}

impl Document {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("name", &self.name)?;
        check_text("document_type", &self.document_type)?;
        check_time("created_at", self.created_at)?;
        check_tags(&self.tags)
    }
}

impl DocumentVersion {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("name", &self.name)?;
        if self.version < 1 {
            return Err(StoreError::InvalidInput("document versions are numbered from 1".into()));
        }
        check_opt_text("version_name", self.version_name.as_deref())?;
        check_opt_text("display_name", self.display_name.as_deref())?;
        check_text("content", &self.content)?;
        check_text("format", &self.format)?;
        check_text("hash", &self.hash)?;
        check_text("document_type", &self.document_type)?;
        check_text("schema_version", &self.schema_version)?;
        check_opt_text("target_type", self.target_type.as_deref())?;
        for p in &self.platform_types {
            check_text("platform_types", p)?;
            if p.contains(',') {
                return Err(StoreError::InvalidInput("a platform type must not contain a comma".into()));
            }
        }
        check_text("status", &self.status)?;
        check_time("created_at", self.created_at)
    }

    /// `platform_types` as stored: comma-separated.
    pub(crate) fn platform_column(&self) -> String {
        self.platform_types.join(",")
    }
}

/// `platform_types` from its stored form.
pub(crate) fn platforms_from_column(column: &str) -> Vec<String> {
    column.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

// === impl Debug (secrets redacted) ===

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("user_name", &self.user_name)
            .field("secret_access_key", &"<redacted>")
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl fmt::Debug for SessionCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredential")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token_hash", &self.session_token_hash)
            .field("principal", &self.principal)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// At most the first 8 characters of a hash, enough to tell rows apart in logs.
fn hash_prefix(hash: &str) -> String {
    let prefix: String = hash.chars().take(8).collect();
    format!("{prefix}...")
}

impl fmt::Debug for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activation")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .field("activation_id", &self.activation_id)
            .field("code_hash", &hash_prefix(&self.code_hash))
            .field("description", &self.description)
            .field("default_instance_name", &self.default_instance_name)
            .field("iam_role", &self.iam_role)
            .field("registration_limit", &self.registration_limit)
            .field("registrations_count", &self.registrations_count)
            .field("expiration_date", &self.expiration_date)
            .field("created_date", &self.created_date)
            .field("tags", &self.tags)
            .finish()
    }
}

impl fmt::Debug for NewRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRegistration")
            .field("activation_id", &self.activation_id)
            .field("code_hash", &hash_prefix(&self.code_hash))
            .field("instance_id", &self.instance_id)
            .field("public_key", &self.public_key)
            .field("fingerprint", &self.fingerprint)
            .field("registered_at", &self.registered_at)
            .field("max_instances_in_region", &self.max_instances_in_region)
            .finish()
    }
}

// === impl validation ===
//
// Run before any SQL so that both backends refuse the same values with the same error.

impl Account {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_time("created_at", self.created_at)
    }
}

impl IamUser {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("user_name", &self.user_name)?;
        check_text("user_id", &self.user_id)?;
        check_text("path", &self.path)?;
        check_text("arn", &self.arn)?;
        check_time("created_at", self.created_at)
    }
}

impl AccessKey {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("access_key_id", &self.access_key_id)?;
        check_text("account_id", &self.account_id)?;
        check_text("user_name", &self.user_name)?;
        check_text("secret_access_key", &self.secret_access_key)?;
        check_time("created_at", self.created_at)
    }
}

impl SessionPrincipal {
    /// Column values: (principal_type, user_name, role_name, role_id, session_name).
    pub(crate) fn to_columns(&self) -> (&'static str, Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
        match self {
            SessionPrincipal::User { user_name } => ("user", Some(user_name), None, None, None),
            SessionPrincipal::AssumedRole { role_name, role_id, session_name } => {
                ("assumed_role", None, Some(role_name), Some(role_id), Some(session_name))
            }
        }
    }

    pub(crate) fn from_columns(
        principal_type: &str,
        user_name: Option<String>,
        role_name: Option<String>,
        role_id: Option<String>,
        session_name: Option<String>,
    ) -> StoreResult<Self> {
        match (principal_type, user_name, role_name, role_id, session_name) {
            ("user", Some(user_name), None, None, None) => Ok(SessionPrincipal::User { user_name }),
            ("assumed_role", None, Some(role_name), Some(role_id), Some(session_name)) => {
                Ok(SessionPrincipal::AssumedRole { role_name, role_id, session_name })
            }
            (other, ..) => {
                Err(StoreError::Database(format!("inconsistent session principal columns (type {other:?})")))
            }
        }
    }
}

impl SessionCredential {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("access_key_id", &self.access_key_id)?;
        check_text("account_id", &self.account_id)?;
        check_text("secret_access_key", &self.secret_access_key)?;
        check_text("session_token_hash", &self.session_token_hash)?;
        match &self.principal {
            SessionPrincipal::User { user_name } => check_text("user_name", user_name)?,
            SessionPrincipal::AssumedRole { role_name, role_id, session_name } => {
                check_text("role_name", role_name)?;
                check_text("role_id", role_id)?;
                check_text("session_name", session_name)?;
            }
        }
        check_time("created_at", self.created_at)?;
        check_time("expires_at", self.expires_at)
    }
}

impl ServiceSettingRow {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("setting_id", &self.setting_id)?;
        check_text("value", &self.value)?;
        check_text("last_modified_user", &self.last_modified_user)?;
        check_time("last_modified_date", self.last_modified_date)
    }
}

/// Checks that bootstrap's three rows describe one account, its admin and the admin's key.
pub(crate) fn validate_bootstrap(account: &Account, admin: &IamUser, key: &AccessKey) -> StoreResult<()> {
    account.validate()?;
    admin.validate()?;
    key.validate()?;
    if admin.account_id != account.account_id
        || key.account_id != account.account_id
        || key.user_name != admin.user_name
    {
        return Err(StoreError::InvalidInput(
            "bootstrap: admin user and access key must belong to the new account".into(),
        ));
    }
    Ok(())
}

impl IamRole {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("role_name", &self.role_name)?;
        check_text("role_id", &self.role_id)?;
        check_text("path", &self.path)?;
        check_text("arn", &self.arn)?;
        check_text("assume_role_policy_document", &self.assume_role_policy_document)?;
        check_opt_text("description", self.description.as_deref())?;
        check_time("created_at", self.created_at)?;
        check_tags(&self.tags)
    }
}

impl Activation {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("activation_id", &self.activation_id)?;
        check_text("code_hash", &self.code_hash)?;
        check_opt_text("description", self.description.as_deref())?;
        check_opt_text("default_instance_name", self.default_instance_name.as_deref())?;
        check_text("iam_role", &self.iam_role)?;
        check_time("expiration_date", self.expiration_date)?;
        check_time("created_date", self.created_date)?;
        check_tags(&self.tags)
    }
}

impl InstanceInfo {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_opt_text("agent_name", self.agent_name.as_deref())?;
        check_opt_text("agent_status", self.agent_status.as_deref())?;
        check_opt_text("agent_version", self.agent_version.as_deref())?;
        check_opt_text("platform_type", self.platform_type.as_deref())?;
        check_opt_text("platform_name", self.platform_name.as_deref())?;
        check_opt_text("platform_version", self.platform_version.as_deref())?;
        check_opt_text("ip_address", self.ip_address.as_deref())?;
        check_opt_text("computer_name", self.computer_name.as_deref())?;
        check_opt_text("ssm_connection_channel", self.ssm_connection_channel.as_deref())
    }
}

impl NewRegistration {
    /// Checks the fields that become the new row. The activation id and code hash are not
    /// checked here: values that cannot be stored simply match no activation.
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("instance_id", &self.instance_id)?;
        check_text("public_key", &self.public_key)?;
        check_text("fingerprint", &self.fingerprint)?;
        check_time("registered_at", self.registered_at)
    }
}

// === Run Command ===

/// A Run Command command: what was asked, of which targets, under which rate controls. Its
/// status is not stored: it is rolled up from its invocations when read (the server's
/// `commands::rollup`), so it can never disagree with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Owning account.
    pub account_id: String,
    /// Region the command was sent in.
    pub region: String,
    /// `CommandId` (a UUID), unique deployment-wide.
    pub command_id: String,
    /// The document's name as resolved (never an ARN).
    pub document_name: String,
    /// `DocumentVersion` as the caller gave it (`$DEFAULT`, `$LATEST` or a number).
    pub document_version: String,
    /// `Comment` (empty when none).
    pub comment: String,
    /// The caller's `Parameters` as JSON text (an object of name → list of strings).
    pub parameters_json: String,
    /// `InstanceIds` as given (empty when `Targets` were used).
    pub instance_ids: Vec<String>,
    /// `Targets` as given, as JSON text (an array; `[]` when `InstanceIds` were used).
    pub targets_json: String,
    /// The payload every target's agent receives (agent-protocol.md §3.1) without the
    /// per-instance parts: JSON text of `DocumentName`, `DocumentContent`, `Parameters`, ...
    pub payload_json: String,
    /// When SendCommand was called (stored with millisecond precision).
    pub requested_at: OffsetDateTime,
    /// `TimeoutSeconds`: the delivery timeout, counted from `requested_at`.
    pub timeout_seconds: i64,
    /// The document's `executionTimeout` in seconds: the per-instance run limit.
    pub execution_timeout_seconds: i64,
    /// `MaxConcurrency` as given (`"50"`, `"10%"`).
    pub max_concurrency: String,
    /// `MaxErrors` as given (`"0"`, `"10%"`).
    pub max_errors: String,
    /// `ServiceRoleArn` (empty when none).
    pub service_role: String,
    /// `OutputS3BucketName` (empty when none; nothing is uploaded, it is echoed).
    pub output_s3_bucket: String,
    /// `OutputS3KeyPrefix` (empty when none).
    pub output_s3_prefix: String,
    /// Who sent it (principal ARN).
    pub requested_by: String,
    /// Set by CancelCommand for the whole command.
    pub cancel_requested: bool,
    /// True until every invocation is terminal: the scheduler's work list.
    pub active: bool,
}

/// One command on one managed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInvocation {
    /// Owning account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// The command.
    pub command_id: String,
    /// The managed instance (`mi-...`).
    pub instance_id: String,
    /// The instance's name (or computer name) when the command was sent.
    pub instance_name: String,
    /// The command's `requested_at`, repeated so invocations sort without a join.
    pub requested_at: OffsetDateTime,
    /// `Status`: `Pending`, `InProgress`, `Delayed`, `Success`, `Cancelled`, `TimedOut`,
    /// `Failed` or `Cancelling`.
    pub status: String,
    /// `StatusDetails`: `Pending`, `In Progress`, `Delivery Timed Out`, `Terminated`, ...
    pub status_details: String,
    /// When the job was last handed to the instance's channel (None: not yet).
    pub dispatched_at: Option<OffsetDateTime>,
    /// When the agent acknowledged the job (None: not yet).
    pub acked_at: Option<OffsetDateTime>,
    /// When the agent reported it started.
    pub started_at: Option<OffsetDateTime>,
    /// When it reached a terminal status.
    pub finished_at: Option<OffsetDateTime>,
    /// Exit code of the last plugin (-1 while none finished).
    pub response_code: i64,
    /// `TraceOutput`: document-level error text (empty when none).
    pub trace_output: String,
    /// How many times the job was handed to a channel.
    pub delivery_attempts: i64,
    /// Per-plugin (or per-step) results, in document order.
    pub plugins: Vec<PluginResult>,
}

/// The result of one plugin (schema 1.2) or step (schema 2.x) of an invocation. The full
/// output is kept; the API cuts it where AWS does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginResult {
    /// Plugin name (`aws:runShellScript`) or step name.
    pub name: String,
    /// `Pending`, `InProgress`, `Success`, `TimedOut`, `Cancelled` or `Failed`.
    pub status: String,
    /// `StatusDetails`.
    pub status_details: String,
    /// Exit code (-1 when none).
    pub response_code: i64,
    /// When the plugin started.
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
    /// The agent's combined, truncated `output` (≤ 2,500 characters on AWS).
    pub output: String,
    /// Standard output as the agent sent it, complete.
    pub stdout: String,
    /// Standard error as the agent sent it, complete.
    pub stderr: String,
}

/// A change to an invocation, applied only if its current status is one of `from` (compare and
/// set: replies, the scheduler and CancelCommand race, possibly on several replicas).
/// `None` fields keep their stored value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationUpdate {
    /// New `Status`.
    pub status: String,
    /// New `StatusDetails`.
    pub status_details: String,
    /// Sets (or, with `Some(None)`, clears) `dispatched_at`.
    pub dispatched_at: Option<Option<OffsetDateTime>>,
    /// Sets or clears `acked_at`.
    pub acked_at: Option<Option<OffsetDateTime>>,
    /// Sets `started_at`.
    pub started_at: Option<OffsetDateTime>,
    /// Sets `finished_at`.
    pub finished_at: Option<OffsetDateTime>,
    /// Sets `response_code`.
    pub response_code: Option<i64>,
    /// Sets `trace_output`.
    pub trace_output: Option<String>,
    /// Adds one to `delivery_attempts`.
    pub count_delivery: bool,
    /// Replaces the plugin results whose names match and appends the others (document
    /// order is the order they were first reported in).
    pub plugins: Vec<PluginResult>,
}

/// Which commands a listing returns (all `None`: every command of the account and region).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandFilter {
    /// Only this command.
    pub command_id: Option<String>,
    /// Only commands with an invocation on this instance.
    pub instance_id: Option<String>,
    /// Only commands of this document (exact name).
    pub document_name: Option<String>,
    /// Only commands requested at or after this time.
    pub invoked_after: Option<OffsetDateTime>,
    /// Only commands requested at or before this time.
    pub invoked_before: Option<OffsetDateTime>,
}

/// How many of a command's invocations are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationStatusCount {
    /// The command.
    pub command_id: String,
    /// `Status`.
    pub status: String,
    /// `StatusDetails`.
    pub status_details: String,
    /// How many.
    pub count: u64,
}

// === impl validation: Run Command ===
//
// Run before any SQL, like the checks above.

impl Command {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("command_id", &self.command_id)?;
        check_text("document_name", &self.document_name)?;
        check_text("document_version", &self.document_version)?;
        check_text("comment", &self.comment)?;
        check_text("parameters_json", &self.parameters_json)?;
        for id in &self.instance_ids {
            check_text("instance_ids", id)?;
            // Stored comma-separated (instance ids never contain a comma), so an id must be
            // neither empty nor hold the separator to read back as given.
            if id.is_empty() || id.contains(',') {
                return Err(StoreError::InvalidInput("an instance id must be non-empty and contain no comma".into()));
            }
        }
        check_text("targets_json", &self.targets_json)?;
        check_text("payload_json", &self.payload_json)?;
        check_time("requested_at", self.requested_at)?;
        check_text("max_concurrency", &self.max_concurrency)?;
        check_text("max_errors", &self.max_errors)?;
        check_text("service_role", &self.service_role)?;
        check_text("output_s3_bucket", &self.output_s3_bucket)?;
        check_text("output_s3_prefix", &self.output_s3_prefix)?;
        check_text("requested_by", &self.requested_by)
    }

    /// `instance_ids` as stored: comma-separated.
    pub(crate) fn instance_ids_column(&self) -> String {
        self.instance_ids.join(",")
    }
}

/// `instance_ids` from its stored form.
pub(crate) fn instance_ids_from_column(column: &str) -> Vec<String> {
    column.split(',').filter(|id| !id.is_empty()).map(str::to_string).collect()
}

/// Checks a new command with its invocations: each invocation must belong to the command (same
/// id, account, region and `requested_at` to the millisecond), instances must not repeat, and
/// plugin names must not repeat within an invocation.
pub(crate) fn validate_new_command(command: &Command, invocations: &[CommandInvocation]) -> StoreResult<()> {
    command.validate()?;
    let requested_ms = crate::common::to_millis(command.requested_at);
    let mut instances = std::collections::BTreeSet::new();
    for invocation in invocations {
        invocation.validate()?;
        if invocation.command_id != command.command_id
            || invocation.account_id != command.account_id
            || invocation.region != command.region
            || crate::common::to_millis(invocation.requested_at) != requested_ms
        {
            return Err(StoreError::InvalidInput("an invocation belongs to another command".into()));
        }
        if !instances.insert(invocation.instance_id.as_str()) {
            return Err(StoreError::InvalidInput("an instance is invoked twice".into()));
        }
    }
    Ok(())
}

impl CommandInvocation {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("command_id", &self.command_id)?;
        check_text("instance_id", &self.instance_id)?;
        check_text("instance_name", &self.instance_name)?;
        check_time("requested_at", self.requested_at)?;
        check_text("status", &self.status)?;
        check_text("status_details", &self.status_details)?;
        check_opt_time("dispatched_at", self.dispatched_at)?;
        check_opt_time("acked_at", self.acked_at)?;
        check_opt_time("started_at", self.started_at)?;
        check_opt_time("finished_at", self.finished_at)?;
        check_text("trace_output", &self.trace_output)?;
        if self.delivery_attempts < 0 {
            return Err(StoreError::InvalidInput("delivery_attempts must not be negative".into()));
        }
        validate_plugins(&self.plugins)
    }
}

impl PluginResult {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("plugin name", &self.name)?;
        check_text("plugin status", &self.status)?;
        check_text("plugin status_details", &self.status_details)?;
        check_opt_time("plugin started_at", self.started_at)?;
        check_opt_time("plugin finished_at", self.finished_at)?;
        check_text("plugin output", &self.output)?;
        check_text("plugin stdout", &self.stdout)?;
        check_text("plugin stderr", &self.stderr)
    }
}

/// Checks plugin results; a name given twice would make "replace by name" ambiguous.
fn validate_plugins(plugins: &[PluginResult]) -> StoreResult<()> {
    let mut names = std::collections::BTreeSet::new();
    for plugin in plugins {
        plugin.validate()?;
        if !names.insert(plugin.name.as_str()) {
            return Err(StoreError::InvalidInput("a plugin name is given twice".into()));
        }
    }
    Ok(())
}

impl InvocationUpdate {
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("status", &self.status)?;
        check_text("status_details", &self.status_details)?;
        check_opt_time("dispatched_at", self.dispatched_at.flatten())?;
        check_opt_time("acked_at", self.acked_at.flatten())?;
        check_opt_time("started_at", self.started_at)?;
        check_opt_time("finished_at", self.finished_at)?;
        check_opt_text("trace_output", self.trace_output.as_deref())?;
        validate_plugins(&self.plugins)
    }
}

fn check_opt_time(field: &'static str, t: Option<OffsetDateTime>) -> StoreResult<()> {
    t.map_or(Ok(()), |t| check_time(field, t))
}

impl CommandFilter {
    /// The text filters, for [`crate::common::unstorable`] checks.
    pub(crate) fn texts(&self) -> [Option<&str>; 3] {
        [self.command_id.as_deref(), self.instance_id.as_deref(), self.document_name.as_deref()]
    }

    /// The `requested_at` range in milliseconds, both ends included: `invoked_after` rounded up
    /// and `invoked_before` down to the millisecond (stored times are whole milliseconds, so
    /// the comparison is exact on both backends), clamped to the storable years. `None` if no
    /// time can match.
    pub(crate) fn requested_range_ms(&self) -> Option<(i64, i64)> {
        let (min, max) = storable_ms();
        let start = self.invoked_after.map_or(min, |t| {
            let floor = crate::common::to_millis(t);
            let exact = i128::from(floor) * 1_000_000 == t.unix_timestamp_nanos();
            if exact {
                floor
            } else {
                floor.saturating_add(1)
            }
        });
        let end = self.invoked_before.map_or(max, crate::common::to_millis);
        let (start, end) = (start.clamp(min, max), end.clamp(min, max));
        (start <= end).then_some((start, end))
    }
}

/// The first and last storable millisecond (years 1 to 9999).
fn storable_ms() -> (i64, i64) {
    (
        crate::common::to_millis(time::macros::datetime!(0001-01-01 0:00 UTC)),
        crate::common::to_millis(time::macros::datetime!(9999-12-31 23:59:59.999 UTC)),
    )
}

/// A listing cursor's time in milliseconds, or `None` if the cursor lies after every
/// storable time (then every row is after it, as without a cursor). A cursor before every
/// storable time becomes one millisecond before the first, so nothing is after it.
pub(crate) fn cursor_ms(t: OffsetDateTime) -> Option<i64> {
    let (min, max) = storable_ms();
    let ms = crate::common::to_millis(t);
    (ms <= max).then(|| ms.max(min - 1))
}
