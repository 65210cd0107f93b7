//! The audit trail: CloudTrail records kept as one hash chain per `(account_id, region)`.
//!
//! Each record is stored with the hash of the record before it in its chain (`prev_hash`, 64
//! zeros for the first) and its own hash, [`audit_chain_hash`]`(prev_hash, record_json)`. A
//! record changed, removed or moved after the fact breaks the chain at that point, which
//! [`verify_chain`] finds. (Removing the newest records leaves a shorter valid chain: compare
//! the head hash `corral audit verify` prints with one kept elsewhere to detect that.)
//!
//! The store keeps `record_json` verbatim and never interprets it; the other fields of
//! [`AuditRecord`] are copies the caller extracts for LookupEvents' filters and output.

use std::fmt;

use time::OffsetDateTime;

use crate::common::{check_opt_text, check_text, check_time, to_millis};
use crate::error::{StoreError, StoreResult};

/// `prev_hash` of the first record of every chain: 64 zeros.
pub const AUDIT_GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One CloudTrail record about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The account whose chain the record joins (`recipientAccountId`).
    pub account_id: String,
    /// The region whose chain the record joins (`awsRegion`).
    pub region: String,
    /// `eventID`: a random UUID, unique within the chain.
    pub event_id: String,
    /// `eventTime` (stored with millisecond precision).
    pub event_time: OffsetDateTime,
    /// `eventName`: the operation, e.g. `SendCommand`.
    pub event_name: String,
    /// `eventSource`, e.g. `ssm.amazonaws.com`.
    pub event_source: String,
    /// LookupEvents' `Username`: the IAM user name, or the role-session name.
    pub username: Option<String>,
    /// The access key that signed the request.
    pub access_key_id: Option<String>,
    /// `readOnly`.
    pub read_only: bool,
    /// The resources the call touched, in the order given.
    pub resources: Vec<AuditResource>,
    /// `errorCode` of a failed call.
    pub error_code: Option<String>,
    /// The whole CloudTrail record, already redacted; stored and hashed verbatim.
    pub record_json: String,
}

/// A resource of a record, as LookupEvents lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuditResource {
    /// E.g. `AWS::SSM::ManagedInstance`.
    pub resource_type: String,
    /// E.g. `mi-0123456789abcdef0`.
    pub resource_name: String,
}

/// A record as stored: its place in its chain and the chain's hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditRecord {
    /// Position in the chain: 1, 2, 3, ... without gaps.
    pub seq: i64,
    /// The record (its `event_time` truncated to the millisecond).
    pub record: AuditRecord,
    /// `hash` of the record at `seq - 1`, or [`AUDIT_GENESIS_HASH`] for `seq` 1.
    pub prev_hash: String,
    /// [`audit_chain_hash`]`(prev_hash, record.record_json)`.
    pub hash: String,
}

/// What LookupEvents may filter on (AWS allows at most one attribute per call). Matches are
/// exact and case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFilter {
    /// Every record.
    None,
    /// `eventID`.
    EventId(String),
    /// `eventName`.
    EventName(String),
    /// `readOnly`.
    ReadOnly(bool),
    /// [`AuditRecord::username`].
    Username(String),
    /// Any of the record's resources has this type.
    ResourceType(String),
    /// Any of the record's resources has this name.
    ResourceName(String),
    /// `eventSource`.
    EventSource(String),
    /// [`AuditRecord::access_key_id`].
    AccessKeyId(String),
}

impl AuditFilter {
    /// The text value compared, if any; `None` for [`AuditFilter::None`] and
    /// [`AuditFilter::ReadOnly`].
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            AuditFilter::None | AuditFilter::ReadOnly(_) => None,
            AuditFilter::EventId(v)
            | AuditFilter::EventName(v)
            | AuditFilter::Username(v)
            | AuditFilter::ResourceType(v)
            | AuditFilter::ResourceName(v)
            | AuditFilter::EventSource(v)
            | AuditFilter::AccessKeyId(v) => Some(v),
        }
    }
}

// === hashing and verification ===

/// The chain hash of a record: lowercase hex of SHA-256 over the bytes of `prev_hash` (as
/// given: 64 lowercase hex digits in a chain), one line feed (0x0A), and the UTF-8 bytes of
/// `record_json`, with nothing before or after.
///
/// Equivalent shell: `printf '%s\n%s' "$prev_hash" "$record_json" | sha256sum`.
pub fn audit_chain_hash(prev_hash: &str, record_json: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    ctx.update(record_json.as_bytes());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where and why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The seq of the first record that does not verify (as stored in it).
    pub seq: i64,
    /// That record's event id.
    pub event_id: String,
    /// What is wrong with it.
    pub reason: ChainBreakReason,
}

/// Why a record breaks its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreakReason {
    /// The record is not at the position it should be: records before it are missing, or
    /// records were reordered.
    SeqGap {
        /// The seq the record should have had.
        expected: i64,
    },
    /// `prev_hash` is not the previous record's hash: a record before it was removed,
    /// replaced or reordered.
    PrevHashMismatch {
        /// The previous record's hash (or the expected start of the chain).
        expected: String,
    },
    /// `hash` does not match `record_json`: the record or its hash was changed.
    HashMismatch {
        /// The hash of the stored `prev_hash` and `record_json`.
        computed: String,
    },
}

impl fmt::Display for ChainBreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreakReason::SeqGap { expected } => {
                write!(f, "out of sequence (expected seq={expected}): records missing or reordered")
            }
            ChainBreakReason::PrevHashMismatch { expected } => write!(
                f,
                "prev_hash does not match the previous record's hash {expected}: a record before it was removed, \
                 replaced or reordered"
            ),
            ChainBreakReason::HashMismatch { computed } => write!(
                f,
                "hash does not match the record's content (computed {computed}): the record or its hash was modified"
            ),
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record seq={} event {}: {}", self.seq, self.event_id, self.reason)
    }
}

impl std::error::Error for ChainBreak {}

/// Checks a run of consecutive records of one chain, oldest first, and returns the first
/// record that does not verify.
///
/// `expected_prev` is the hash the first record must link to: [`AUDIT_GENESIS_HASH`] when
/// `records` starts the chain (its first seq must then be 1), or the last hash of the
/// previous run when verifying page by page (the first seq is then not checked: keep the
/// pages contiguous, as [`crate::Store::audit_chain`] does). For each record, in this order:
/// its seq follows the previous one's, its `prev_hash` equals the previous hash, and its
/// `hash` equals [`audit_chain_hash`] of its `prev_hash` and `record_json`.
pub fn verify_chain(records: &[StoredAuditRecord], expected_prev: &str) -> Result<(), ChainBreak> {
    let mut prev_hash = expected_prev;
    let mut expected_seq = (expected_prev == AUDIT_GENESIS_HASH).then_some(1);
    for stored in records {
        let broken = |reason| ChainBreak { seq: stored.seq, event_id: stored.record.event_id.clone(), reason };
        if let Some(expected) = expected_seq {
            if stored.seq != expected {
                return Err(broken(ChainBreakReason::SeqGap { expected }));
            }
        }
        if stored.prev_hash != prev_hash {
            return Err(broken(ChainBreakReason::PrevHashMismatch { expected: prev_hash.to_string() }));
        }
        let computed = audit_chain_hash(&stored.prev_hash, &stored.record.record_json);
        if stored.hash != computed {
            return Err(broken(ChainBreakReason::HashMismatch { computed }));
        }
        prev_hash = &stored.hash;
        expected_seq = Some(stored.seq.saturating_add(1));
    }
    Ok(())
}

// === helpers for the backends ===

impl AuditRecord {
    /// Refuses records that cannot be stored identically on both backends.
    pub(crate) fn validate(&self) -> StoreResult<()> {
        check_text("account_id", &self.account_id)?;
        check_text("region", &self.region)?;
        check_text("event_id", &self.event_id)?;
        check_time("event_time", self.event_time)?;
        check_text("event_name", &self.event_name)?;
        check_text("event_source", &self.event_source)?;
        check_opt_text("username", self.username.as_deref())?;
        check_opt_text("access_key_id", self.access_key_id.as_deref())?;
        check_opt_text("error_code", self.error_code.as_deref())?;
        check_text("record_json", &self.record_json)?;
        for resource in &self.resources {
            check_text("resource_type", &resource.resource_type)?;
            check_text("resource_name", &resource.resource_name)?;
        }
        Ok(())
    }
}

/// A lookup's bounds in milliseconds: `(start, end, cursor)`, where a record matches if
/// `start <= event_time <= end` and `(event_time, seq) < cursor`. `None` if nothing can
/// match. `start` is rounded up and `end` down to the millisecond (stored times are whole
/// milliseconds), so the comparison is exact on both backends.
pub(crate) fn lookup_bounds(
    start: OffsetDateTime,
    end: OffsetDateTime,
    before: Option<(OffsetDateTime, i64)>,
) -> Option<(i64, i64, (i64, i64))> {
    // Both backends store years 1..=9999; clamp to that range so any bounds work.
    let min = to_millis(time::macros::datetime!(0001-01-01 0:00 UTC));
    let max = to_millis(time::macros::datetime!(9999-12-31 23:59:59.999 UTC));
    let start_floor = to_millis(start);
    let start_ms = if from_ms_exact(start_floor, start) { start_floor } else { start_floor.saturating_add(1) };
    let start_ms = start_ms.clamp(min, max);
    let end_ms = to_millis(end).clamp(min, max);
    // Without a cursor, everything up to `end` (no seq reaches i64::MAX).
    let mut cursor = (end_ms, i64::MAX);
    if let Some((t, seq)) = before {
        let t = to_millis(t).clamp(min.saturating_sub(1), max);
        cursor = cursor.min((t, seq));
    }
    (start_ms <= end_ms && cursor.0 >= start_ms).then_some((start_ms, end_ms, cursor))
}

/// True if `t` is exactly `ms` milliseconds after the epoch.
fn from_ms_exact(ms: i64, t: OffsetDateTime) -> bool {
    i128::from(ms) * 1_000_000 == t.unix_timestamp_nanos()
}

/// `limit` as a SQL LIMIT.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Folds "record LEFT JOIN resources" rows (columns `seq`, `resource_type`, `resource_name`;
/// a record's rows adjacent and ordered by position) into records. `parse` reads the record's
/// own columns (with no resources).
pub(crate) fn fold_audit_rows(
    rows: &[crate::db::Row],
    parse: impl Fn(&crate::db::Row) -> StoreResult<StoredAuditRecord>,
) -> StoreResult<Vec<StoredAuditRecord>> {
    let mut out: Vec<StoredAuditRecord> = Vec::new();
    for row in rows {
        let seq: i64 = row.try_get("seq")?;
        let stored = match out.last_mut() {
            Some(last) if last.seq == seq => last,
            _ => {
                out.push(parse(row)?);
                out.last_mut().ok_or_else(|| StoreError::Database("audit row folding lost its record".into()))?
            }
        };
        let resource_type: Option<String> = row.try_get("resource_type")?;
        let resource_name: Option<String> = row.try_get("resource_name")?;
        if let (Some(resource_type), Some(resource_name)) = (resource_type, resource_name) {
            stored.record.resources.push(AuditResource { resource_type, resource_name });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_of_prev_newline_json() {
        // printf '%s\n%s' "$(printf '0%.0s' $(seq 64))" '{"a":1}' | sha256sum
        let json = r#"{"a":1}"#;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(format!("{AUDIT_GENESIS_HASH}\n{json}").as_bytes());
        let want: String = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(audit_chain_hash(AUDIT_GENESIS_HASH, json), want);
        assert_eq!(audit_chain_hash("", ""), "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b");
        assert_eq!(want.len(), 64);
    }

    #[test]
    fn bounds_round_inwards() {
        let t = |ms: i64, ns: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000 + i128::from(ns)).unwrap()
        };
        assert_eq!(lookup_bounds(t(10, 0), t(20, 0), None), Some((10, 20, (20, i64::MAX))));
        assert_eq!(lookup_bounds(t(10, 1), t(20, 999_999), None), Some((11, 20, (20, i64::MAX))));
        assert_eq!(lookup_bounds(t(10, 0), t(20, 0), Some((t(15, 0), 7))), Some((10, 20, (15, 7))));
        assert_eq!(lookup_bounds(t(10, 0), t(20, 0), Some((t(25, 0), 7))), Some((10, 20, (20, i64::MAX))));
        assert_eq!(lookup_bounds(t(10, 0), t(20, 0), Some((t(5, 0), 7))), None);
        assert_eq!(lookup_bounds(t(20, 0), t(10, 0), None), None);
        assert_eq!(lookup_bounds(t(10, 1), t(10, 2), None), None);
    }
}
