//! The audit trail (`migrations/*/0004_audit.sql`): appends to a chain and pages through it.

use time::OffsetDateTime;

use super::SqlStore;
use crate::audit::{
    audit_chain_hash, fold_audit_rows, lookup_bounds, sql_limit, AuditFilter, AuditRecord, AuditResource,
    StoredAuditRecord, AUDIT_GENESIS_HASH,
};
use crate::common::{from_millis, truncate_millis, unstorable};
use crate::db::{query, sql, Row, TxConn};
use crate::error::{StoreError, StoreResult};

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
    let mut stored = append_all_in_tx(conn, std::slice::from_ref(record)).await?;
    stored.pop().ok_or_else(|| StoreError::Database("the audit append stored nothing".into()))
}

/// Appends `records` in order, each to its own chain, inside `conn` (the LAST statements
/// before COMMIT, as for [`append_in_tx`]). A chain costs four statements however many of its
/// records come together: its head is read (and locked) once, its records and their resources
/// are inserted many rows at a time, and the head is moved once. This is what makes group
/// commit cheap: the cost of a batch is its rows, not its round trips.
pub(super) async fn append_all_in_tx(
    conn: &mut TxConn,
    records: &[AuditRecord],
) -> StoreResult<Vec<StoredAuditRecord>> {
    for record in records {
        record.validate()?;
    }
    // Chains are locked in key order, so two batches (from two replicas) that touch the same
    // chains cannot each hold one head the other waits for.
    let mut chains: Vec<(&str, &str)> = records.iter().map(|r| (r.account_id.as_str(), r.region.as_str())).collect();
    chains.sort_unstable();
    chains.dedup();
    let mut stored: Vec<Option<StoredAuditRecord>> = vec![None; records.len()];
    for (account_id, region) in chains {
        // SQLite: the caller's transaction began with BEGIN IMMEDIATE (`begin_write`), which
        // takes the database's write lock first, so appends (from any connection or process)
        // run one at a time and the head read below is the latest. PostgreSQL: the upsert locks
        // the chain's head row until commit; under READ COMMITTED a waiting append then reads
        // the head its predecessor committed, so appends to one chain (from any replica) run
        // one at a time and never fork, while other chains go on. Every transaction takes
        // these locks as its last statements before COMMIT, in key order, so one that holds a
        // head lock waits only for heads after it: no deadlock through the audit heads.
        let head = query(sql!(
            "INSERT INTO audit_heads (account_id, region, seq, hash) VALUES (?, ?, 0, ?) \
             ON CONFLICT (account_id, region) DO UPDATE SET seq = audit_heads.seq RETURNING seq, hash"
        ))
        .bind(account_id)
        .bind(region)
        .bind(AUDIT_GENESIS_HASH)
        .fetch_one(&mut *conn)
        .await?;
        let mut seq: i64 = head.try_get("seq")?;
        let mut hash: String = head.try_get("hash")?;
        let mut chain = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if record.account_id != account_id || record.region != region {
                continue;
            }
            let prev_hash = std::mem::take(&mut hash);
            hash = audit_chain_hash(&prev_hash, &record.record_json);
            seq += 1;
            let mut record = record.clone();
            record.event_time = truncate_millis(record.event_time)?;
            chain.push(i);
            stored[i] = Some(StoredAuditRecord { seq, record, prev_hash, hash: hash.clone() });
        }
        let chain: Vec<&StoredAuditRecord> = chain.iter().filter_map(|&i| stored[i].as_ref()).collect();
        insert_records(conn, &chain).await?;
        insert_resources(conn, &chain).await?;
        query(sql!("UPDATE audit_heads SET seq = ?, hash = ? WHERE account_id = ? AND region = ?"))
            .bind(seq)
            .bind(&hash)
            .bind(account_id)
            .bind(region)
            .execute(&mut *conn)
            .await?;
    }
    stored.into_iter().map(|s| s.ok_or_else(|| StoreError::Database("an audit record had no chain".into()))).collect()
}

/// How many rows one multi-row INSERT carries at most. A batch's rows go in as few statements
/// as this allows: each statement is a round trip to the database (on SQLite, to its worker
/// thread), which costs more than preparing a statement of a new size; the sizes a busy server
/// sees settle on a few, which the statement cache keeps prepared.
const MAX_ROWS_PER_INSERT: usize = 64;

/// Splits `rows` into pieces of at most [`MAX_ROWS_PER_INSERT`].
fn row_chunks<T>(rows: &[T]) -> std::slice::Chunks<'_, T> {
    rows.chunks(MAX_ROWS_PER_INSERT)
}

/// `INSERT INTO {table} ({columns}) VALUES (?, ...), ...` for `rows` rows of `width` values.
fn multi_row_insert(table_and_columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!("INSERT INTO {table_and_columns} VALUES {}", vec![row; rows].join(", "))
}

async fn insert_records(conn: &mut TxConn, chain: &[&StoredAuditRecord]) -> StoreResult<()> {
    for chunk in row_chunks(chain) {
        let sql = multi_row_insert(
            "audit_records (account_id, region, seq, event_id, event_time, event_name, event_source, \
             username, access_key_id, read_only, error_code, record_json, prev_hash, hash)",
            14,
            chunk.len(),
        );
        // Only generated placeholders are spliced in; every value is bound.
        let mut insert = query(sql);
        for stored in chunk {
            let record = &stored.record;
            insert = insert
                .bind(&record.account_id)
                .bind(&record.region)
                .bind(stored.seq)
                .bind(&record.event_id)
                .bind(record.event_time)
                .bind(&record.event_name)
                .bind(&record.event_source)
                .bind(&record.username)
                .bind(&record.access_key_id)
                .bind(record.read_only)
                .bind(&record.error_code)
                .bind(&record.record_json)
                .bind(&stored.prev_hash)
                .bind(&stored.hash);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_resources(conn: &mut TxConn, chain: &[&StoredAuditRecord]) -> StoreResult<()> {
    let resources: Vec<(&StoredAuditRecord, i64, &AuditResource)> = chain
        .iter()
        .flat_map(|stored| {
            stored
                .record
                .resources
                .iter()
                .enumerate()
                .map(move |(position, resource)| (*stored, i64::try_from(position).unwrap_or(i64::MAX), resource))
        })
        .collect();
    for chunk in row_chunks(&resources) {
        let sql = multi_row_insert(
            "audit_resources (account_id, region, seq, position, resource_type, resource_name)",
            6,
            chunk.len(),
        );
        let mut insert = query(sql);
        for (stored, position, resource) in chunk {
            insert = insert
                .bind(&stored.record.account_id)
                .bind(&stored.record.region)
                .bind(stored.seq)
                .bind(*position)
                .bind(&resource.resource_type)
                .bind(&resource.resource_name);
        }
        insert.execute(&mut *conn).await?;
    }
    Ok(())
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
        let stored = append_all_in_tx(&mut tx, records).await?;
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
