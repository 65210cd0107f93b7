//! Rows the store reads and writes. Plain data: no wire (de)serialisation here.

use std::fmt;

use time::OffsetDateTime;

use crate::common::{check_text, check_time};
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
