//! Helpers shared by both backends: input checks, timestamp conversion, and the SQL column
//! lists and tag folding of the hybrid-setup rows.

use time::macros::datetime;
use time::OffsetDateTime;

use crate::db::Row;
use crate::error::{StoreError, StoreResult};
use crate::model::{Activation, Document, DocumentListing, IamRole, ManagedInstance, Tag};

/// Refuses text that one of the backends cannot store as given.
///
/// PostgreSQL rejects NUL in TEXT while SQLite keeps it; refusing it here, before any SQL,
/// makes both backends behave the same.
pub(crate) fn check_text(field: &'static str, value: &str) -> StoreResult<()> {
    if value.contains('\0') {
        return Err(StoreError::InvalidInput(format!("{field} must not contain a NUL character")));
    }
    Ok(())
}

/// True if `key` cannot be a stored key, so lookups can answer "absent" without SQL (and
/// without PostgreSQL's encoding error).
pub(crate) fn unstorable(key: &str) -> bool {
    key.contains('\0')
}

/// Refuses timestamps outside years 1..=9999 (UTC), a range both backends store exactly.
pub(crate) fn check_time(field: &'static str, t: OffsetDateTime) -> StoreResult<()> {
    let min = datetime!(0001-01-01 0:00 UTC);
    let max = datetime!(9999-12-31 23:59:59.999_999_999 UTC);
    if t < min || t > max {
        return Err(StoreError::InvalidInput(format!("{field} is outside years 1 to 9999")));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, rounded towards the past (so sub-millisecond parts are
/// dropped the same way for times before 1970).
pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    // Validated times (years 1..=9999) are within ±3e14 ms, far inside i64.
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The UTC time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_millis(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Database(format!("timestamp out of range in database: {e}")))
}

/// `t` truncated to the millisecond and expressed in UTC, as both backends store it.
pub(crate) fn truncate_millis(t: OffsetDateTime) -> StoreResult<OffsetDateTime> {
    from_millis(to_millis(t))
}

/// Like [`check_text`] for an optional value.
pub(crate) fn check_opt_text(field: &'static str, value: Option<&str>) -> StoreResult<()> {
    value.map_or(Ok(()), |v| check_text(field, v))
}

/// Refuses tag lists that cannot be stored: NUL characters, or a key given twice (which
/// would otherwise surface as a misleading [`StoreError::AlreadyExists`]).
pub(crate) fn check_tags(tags: &[Tag]) -> StoreResult<()> {
    let mut keys = std::collections::BTreeSet::new();
    for tag in tags {
        check_text("tag key", &tag.key)?;
        check_text("tag value", &tag.value)?;
        if !keys.insert(tag.key.as_str()) {
            return Err(StoreError::InvalidInput("duplicate tag key".into()));
        }
    }
    Ok(())
}

/// The case-insensitive key of an IAM role name: unique per account and used for lookups.
///
/// Folded here rather than with SQL `lower()`, whose Unicode behaviour differs between SQLite
/// (ASCII only) and PostgreSQL (locale-dependent), so both backends agree.
pub(crate) fn role_name_key(role_name: &str) -> String {
    role_name.to_lowercase()
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// first differ (for secret hashes).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

// === hybrid rows: column lists and tag folding ===
//
// Entities with tags are read in one statement (entity LEFT JOIN tags, ordered so that an
// entity's rows are adjacent), so a concurrent change never yields an entity with another
// moment's tags. Every column is aliased so both drivers see the same names.

/// The `iam_roles` columns, for a query that aliases the table `r`.
macro_rules! role_columns {
    () => {
        "r.account_id AS account_id, r.role_name AS role_name, r.role_id AS role_id, r.path AS path, \
         r.arn AS arn, r.assume_role_policy_document AS assume_role_policy_document, \
         r.description AS description, r.max_session_duration AS max_session_duration, \
         r.created_at AS created_at"
    };
}

/// The `activations` columns, for a query that aliases the table `a`.
macro_rules! activation_columns {
    () => {
        "a.activation_id AS activation_id, a.account_id AS account_id, a.region AS region, \
         a.code_hash AS code_hash, a.description AS description, \
         a.default_instance_name AS default_instance_name, a.iam_role AS iam_role, \
         a.registration_limit AS registration_limit, a.registrations_count AS registrations_count, \
         a.expiration_date AS expiration_date, a.created_date AS created_date"
    };
}

/// The `managed_instances` columns, for a query that aliases the table (or subquery) `i`.
macro_rules! instance_columns {
    () => {
        "i.instance_id AS instance_id, i.account_id AS account_id, i.region AS region, \
         i.activation_id AS activation_id, i.iam_role AS iam_role, i.name AS name, \
         i.public_key AS public_key, i.previous_public_key AS previous_public_key, \
         i.previous_key_expires_at AS previous_key_expires_at, \
         i.channel_opened_at AS channel_opened_at, i.channel_closed_at AS channel_closed_at, \
         i.fingerprint AS fingerprint, i.registered_at AS registered_at, \
         i.last_ping_at AS last_ping_at, i.agent_name AS agent_name, \
         i.agent_status AS agent_status, i.agent_version AS agent_version, \
         i.platform_type AS platform_type, i.platform_name AS platform_name, \
         i.platform_version AS platform_version, i.ip_address AS ip_address, \
         i.computer_name AS computer_name, i.ssm_connection_channel AS ssm_connection_channel"
    };
}
pub(crate) use {activation_columns, instance_columns, role_columns};

/// An entity that carries a tag list and is identified within a result set by one column.
pub(crate) trait Tagged {
    /// The value of the identifying column.
    fn id(&self) -> &str;
    /// The entity's tags, to be filled from the joined rows.
    fn tags_mut(&mut self) -> &mut Vec<Tag>;
}

impl Tagged for IamRole {
    fn id(&self) -> &str {
        &self.role_name
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for Activation {
    fn id(&self) -> &str {
        &self.activation_id
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for ManagedInstance {
    fn id(&self) -> &str {
        &self.instance_id
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for Document {
    fn id(&self) -> &str {
        &self.name
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for DocumentListing {
    fn id(&self) -> &str {
        &self.document.name
    }
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.document.tags
    }
}

/// The `documents` columns, for a query that aliases the table `d`.
macro_rules! document_columns {
    () => {
        "d.account_id AS account_id, d.region AS region, d.name AS name, \
         d.document_type AS document_type, d.created_at AS created_at, \
         d.default_version AS default_version, d.latest_version AS latest_version, \
         d.last_assigned_version AS last_assigned_version"
    };
}

/// The `document_versions` columns, for a query that aliases the table `v`; each prefixed
/// `v_` so they can sit beside [`document_columns`].
macro_rules! version_columns {
    () => {
        "v.account_id AS v_account_id, v.region AS v_region, v.name AS v_name, v.version AS v_version, \
         v.version_name AS v_version_name, v.display_name AS v_display_name, v.content AS v_content, \
         v.format AS v_format, v.hash AS v_hash, v.document_type AS v_document_type, \
         v.schema_version AS v_schema_version, v.target_type AS v_target_type, \
         v.platform_types AS v_platform_types, v.status AS v_status, v.created_at AS v_created_at"
    };
}
pub(crate) use {document_columns, version_columns};

/// Folds "entity LEFT JOIN tags" rows (columns `tag_key`, `tag_value`; an entity's rows
/// adjacent) into entities with sorted tag lists. `id_column` names the column [`Tagged::id`]
/// comes from; `parse` reads the entity's own columns (with empty tags).
pub(crate) fn collect_tagged<T: Tagged>(
    rows: &[Row],
    id_column: &'static str,
    parse: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut out: Vec<T> = Vec::new();
    for row in rows {
        let id: String = row.try_get(id_column)?;
        let entity = match out.last_mut() {
            Some(last) if last.id() == id => last,
            _ => {
                out.push(parse(row)?);
                out.last_mut().ok_or_else(|| StoreError::Database("tag folding lost its entity".into()))?
            }
        };
        let key: Option<String> = row.try_get("tag_key")?;
        let value: Option<String> = row.try_get("tag_value")?;
        if let (Some(key), Some(value)) = (key, value) {
            entity.tags_mut().push(Tag { key, value });
        }
    }
    for entity in &mut out {
        entity.tags_mut().sort();
    }
    Ok(out)
}

/// A stored count as `u64` (counts are never negative; the schema checks it).
pub(crate) fn count_from_db(count: i64) -> StoreResult<u64> {
    u64::try_from(count).map_err(|_| StoreError::Database(format!("negative count in database: {count}")))
}
