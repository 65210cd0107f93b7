//! The audit trail (`migrations/*/0004_audit.sql`): appends to a chain and pages through it.

use crate::db::{query, sql, Row, TxConn};
use time::OffsetDateTime;

use super::SqlStore;
use crate::audit::{
    audit_chain_hash, fold_audit_rows, lookup_bounds, sql_limit, AuditFilter, AuditRecord, StoredAuditRecord,
    AUDIT_GENESIS_HASH,
};
use crate::common::{from_millis, truncate_millis, unstorable};
use crate::error::StoreResult;

/// The columns of `audit_records` (aliased `a`) and of its resources (aliased `r`).
macro_rules! audit_select {
    () => {
        "SELECT a.account_id AS account_id, a.region AS region, a.seq AS seq, a.event_id AS event_id, \
         a.event_time AS event_time, a.event_name AS event_name, a.event_source AS event_source, \
         a.username AS username, a.access_key_id AS access_key_id, a.read_only AS read_only, \
         a.error_code AS error_code, a.record_json AS record_json, a.prev_hash AS prev_hash, a.hash AS hash, \
         r.resource_type AS resource_type, r.resource_name AS resource_name "
    };
}

/// A LookupEvents page: the records of one chain in the time range, before the cursor, that
/// match `$filter` (a condition on `x`, with at most one `?`), newest first; binds: account,
/// region, start, end, cursor time, cursor seq, [filter value], limit.
macro_rules! lookup_sql {
    ($filter:expr) => {
        concat!(
            audit_select!(),
            "FROM (SELECT * FROM audit_records x WHERE x.account_id = ? AND x.region = ? \
             AND x.event_time >= ? AND x.event_time <= ? AND (x.event_time, x.seq) < (?, ?) AND ",
            $filter,
            " ORDER BY x.event_time DESC, x.seq DESC LIMIT ?) a \
             LEFT JOIN audit_resources r ON r.account_id = a.account_id AND r.region = a.region AND r.seq = a.seq \
             ORDER BY a.event_time DESC, a.seq DESC, r.position"
        )
    };
}

/// A condition on `x`'s resources.
macro_rules! resource_filter {
    ($column:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM audit_resources y WHERE y.account_id = x.account_id AND y.region = x.region \
             AND y.seq = x.seq AND y.",
            $column,
            " = ?)"
        )
    };
}

fn record_from_row(row: &Row) -> StoreResult<StoredAuditRecord> {
    Ok(StoredAuditRecord {
        seq: row.try_get("seq")?,
        record: AuditRecord {
            account_id: row.try_get("account_id")?,
            region: row.try_get("region")?,
            event_id: row.try_get("event_id")?,
            event_time: row.try_get("event_time")?,
            event_name: row.try_get("event_name")?,
            event_source: row.try_get("event_source")?,
            username: row.try_get("username")?,
            access_key_id: row.try_get("access_key_id")?,
            read_only: row.try_get("read_only")?,
            resources: Vec::new(),
            error_code: row.try_get("error_code")?,
            record_json: row.try_get("record_json")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends `record` to its chain inside the caller's transaction `conn` (see
/// [`crate::Store::append_audit`]): the head row is taken (and, on PostgreSQL, locked)
/// here, so call it as the LAST statement before COMMIT. Used by `append_audit` and by
/// write transactions carrying a pending record (`crate::pending_audit`).
pub(super) async fn append_in_tx(conn: &mut TxConn, record: &AuditRecord) -> StoreResult<StoredAuditRecord> {
    record.validate()?;
    let event_time = truncate_millis(record.event_time)?;
    // SQLite: the caller's transaction began with BEGIN IMMEDIATE (`begin_write`), which takes
    // the database's write lock first, so appends (from any connection or process) run one at
    // a time and the head read below is the latest. PostgreSQL: the upsert locks the chain's
    // head row until commit; under READ COMMITTED a waiting append then reads the head its
    // predecessor committed, so appends to one chain (from any replica) run one at a time and
    // never fork, while other chains go on. Every transaction takes this lock as its last
    // statement before COMMIT, so one that holds a head lock never waits for another lock:
    // no deadlock through the audit heads.
    let head = query(sql!(
        "INSERT INTO audit_heads (account_id, region, seq, hash) VALUES (?, ?, 0, ?) \
         ON CONFLICT (account_id, region) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash"
    ))
    .bind(&record.account_id)
    .bind(&record.region)
    .bind(AUDIT_GENESIS_HASH)
    .fetch_one(&mut *conn)
    .await?;
    let prev_seq: i64 = head.try_get("seq")?;
    let prev_hash: String = head.try_get("hash")?;
    let seq = prev_seq + 1;
    let hash = audit_chain_hash(&prev_hash, &record.record_json);
    query(sql!(
        "INSERT INTO audit_records (account_id, region, seq, event_id, event_time, event_name, event_source, \
         username, access_key_id, read_only, error_code, record_json, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&record.account_id)
    .bind(&record.region)
    .bind(seq)
    .bind(&record.event_id)
    .bind(event_time)
    .bind(&record.event_name)
    .bind(&record.event_source)
    .bind(&record.username)
    .bind(&record.access_key_id)
    .bind(record.read_only)
    .bind(&record.error_code)
    .bind(&record.record_json)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    for (position, resource) in record.resources.iter().enumerate() {
        query(sql!(
            "INSERT INTO audit_resources (account_id, region, seq, position, resource_type, resource_name) \
             VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(&record.account_id)
        .bind(&record.region)
        .bind(seq)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&resource.resource_type)
        .bind(&resource.resource_name)
        .execute(&mut *conn)
        .await?;
    }
    query(sql!("UPDATE audit_heads SET seq = ?, hash = ? WHERE account_id = ? AND region = ?"))
        .bind(seq)
        .bind(&hash)
        .bind(&record.account_id)
        .bind(&record.region)
        .execute(&mut *conn)
        .await?;
    let mut record = record.clone();
    record.event_time = event_time;
    Ok(StoredAuditRecord { seq, record, prev_hash, hash })
}

impl SqlStore {
    pub(super) async fn audit_append(&self, record: &AuditRecord) -> StoreResult<StoredAuditRecord> {
        let mut tx = self.begin_write().await?;
        let stored = append_in_tx(&mut tx, record).await?;
        tx.commit().await?;
        Ok(stored)
    }

    pub(super) async fn audit_append_batch(&self, records: &[AuditRecord]) -> StoreResult<Vec<StoredAuditRecord>> {
        let mut tx = self.begin_write().await?;
        let mut stored = Vec::with_capacity(records.len());
        for record in records {
            stored.push(append_in_tx(&mut tx, record).await?);
        }
        tx.commit().await?;
        Ok(stored)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn audit_lookup(
        &self,
        account_id: &str,
        region: &str,
        filter: &AuditFilter,
        start: OffsetDateTime,
        end: OffsetDateTime,
        before: Option<(OffsetDateTime, i64)>,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>> {
        if limit == 0 || unstorable(account_id) || unstorable(region) || filter.text().is_some_and(unstorable) {
            return Ok(Vec::new());
        }
        let Some((start_ms, end_ms, (cursor_ms, cursor_seq))) = lookup_bounds(start, end, before) else {
            return Ok(Vec::new());
        };
        let sql = match filter {
            AuditFilter::None => sql!(lookup_sql!("1 = 1")),
            AuditFilter::EventId(_) => sql!(lookup_sql!("x.event_id = ?")),
            AuditFilter::EventName(_) => sql!(lookup_sql!("x.event_name = ?")),
            AuditFilter::ReadOnly(_) => sql!(lookup_sql!("x.read_only = ?")),
            AuditFilter::Username(_) => sql!(lookup_sql!("x.username = ?")),
            AuditFilter::ResourceType(_) => sql!(lookup_sql!(resource_filter!("resource_type"))),
            AuditFilter::ResourceName(_) => sql!(lookup_sql!(resource_filter!("resource_name"))),
            AuditFilter::EventSource(_) => sql!(lookup_sql!("x.event_source = ?")),
            AuditFilter::AccessKeyId(_) => sql!(lookup_sql!("x.access_key_id = ?")),
        };
        let mut query = query(sql)
            .bind(account_id)
            .bind(region)
            .bind(from_millis(start_ms)?)
            .bind(from_millis(end_ms)?)
            .bind(from_millis(cursor_ms)?)
            .bind(cursor_seq);
        if let AuditFilter::ReadOnly(read_only) = filter {
            query = query.bind(*read_only);
        } else if let Some(value) = filter.text() {
            query = query.bind(value);
        }
        let rows = query.bind(sql_limit(limit)).fetch_all(&self.db).await?;
        fold_audit_rows(&rows, record_from_row)
    }

    pub(super) async fn audit_chain_page(
        &self,
        account_id: &str,
        region: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredAuditRecord>> {
        if limit == 0 || unstorable(account_id) || unstorable(region) {
            return Ok(Vec::new());
        }
        let rows = query(sql!(concat!(
            audit_select!(),
            "FROM (SELECT * FROM audit_records WHERE account_id = ? AND region = ? AND seq > ? \
             ORDER BY seq LIMIT ?) a \
             LEFT JOIN audit_resources r ON r.account_id = a.account_id AND r.region = a.region AND r.seq = a.seq \
             ORDER BY a.seq, r.position"
        )))
        .bind(account_id)
        .bind(region)
        .bind(after_seq)
        .bind(sql_limit(limit))
        .fetch_all(&self.db)
        .await?;
        fold_audit_rows(&rows, record_from_row)
    }

    pub(super) async fn audit_stream_list(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = query(sql!("SELECT account_id, region FROM audit_heads ORDER BY account_id, region"))
            .fetch_all(&self.db)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("account_id")?, row.try_get("region")?))).collect()
    }
}
