//! Helpers shared by both backends: input checks and timestamp conversion.

use time::macros::datetime;
use time::OffsetDateTime;

use crate::error::{StoreError, StoreResult};

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
