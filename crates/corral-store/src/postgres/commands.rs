//! PostgreSQL: Run Command: commands, their invocations and plugin results.
//!
//! This is `sqlite/commands.rs` with PostgreSQL placeholders, timestamps and arrays
//! (`= ANY($n)` where SQLite expands `IN (?, ...)`, and one `UNNEST` insert for a new command's
//! invocations, so a command to many instances costs one round trip); keep the two in step.
//!
//! Invocations change only by compare-and-set on their status ([`update_invocation`]): the
//! `UPDATE ... WHERE status = ANY(...)` locks the row, and a concurrent update from the same
//! status waits for it, re-checks its `WHERE` against the committed row (READ COMMITTED) and
//! changes nothing. The row lock also serialises plugin upserts of one invocation.

use std::collections::BTreeSet;

use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use super::{commit_write, ts, PgStore};
use crate::common::{count_from_db, from_millis, unstorable};
use crate::error::{StoreError, StoreResult};
use crate::model::{
    cursor_ms, instance_ids_from_column, validate_new_command, Command, CommandFilter, CommandInvocation,
    InvocationStatusCount, InvocationUpdate, PluginResult,
};

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

// === columns and rows ===

/// The `commands` columns, for a query that aliases the table `c`.
macro_rules! command_columns {
    () => {
        "c.command_id AS command_id, c.account_id AS account_id, c.region AS region, \
         c.document_name AS document_name, c.document_version AS document_version, c.comment AS comment, \
         c.parameters_json AS parameters_json, c.instance_ids AS instance_ids, c.targets_json AS targets_json, \
         c.payload_json AS payload_json, c.requested_at AS requested_at, c.timeout_seconds AS timeout_seconds, \
         c.execution_timeout_seconds AS execution_timeout_seconds, c.max_concurrency AS max_concurrency, \
         c.max_errors AS max_errors, c.service_role AS service_role, c.output_s3_bucket AS output_s3_bucket, \
         c.output_s3_prefix AS output_s3_prefix, c.requested_by AS requested_by, \
         c.cancel_requested AS cancel_requested, c.active AS active"
    };
}

/// The `command_invocations` columns, for a query that aliases the table (or subquery) `i`.
macro_rules! invocation_columns {
    () => {
        "i.command_id AS command_id, i.instance_id AS instance_id, i.account_id AS account_id, \
         i.region AS region, i.instance_name AS instance_name, i.requested_at AS requested_at, \
         i.status AS status, i.status_details AS status_details, i.dispatched_at AS dispatched_at, \
         i.acked_at AS acked_at, i.started_at AS started_at, i.finished_at AS finished_at, \
         i.response_code AS response_code, i.trace_output AS trace_output, \
         i.delivery_attempts AS delivery_attempts"
    };
}

/// The `command_invocation_plugins` columns, for a query that aliases the table `p`; each
/// prefixed `p_` so they can sit beside [`invocation_columns`].
macro_rules! plugin_columns {
    () => {
        "p.name AS p_name, p.status AS p_status, p.status_details AS p_status_details, \
         p.response_code AS p_response_code, p.started_at AS p_started_at, p.finished_at AS p_finished_at, \
         p.output AS p_output, p.stdout AS p_stdout, p.stderr AS p_stderr"
    };
}

/// The join that adds an invocation's plugin results (in position order) to `i`.
macro_rules! plugin_join {
    () => {
        " LEFT JOIN command_invocation_plugins p ON p.command_id = i.command_id AND p.instance_id = i.instance_id"
    };
}

fn command_from_row(row: &PgRow) -> StoreResult<Command> {
    let instance_ids: String = row.try_get("instance_ids")?;
    Ok(Command {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        command_id: row.try_get("command_id")?,
        document_name: row.try_get("document_name")?,
        document_version: row.try_get("document_version")?,
        comment: row.try_get("comment")?,
        parameters_json: row.try_get("parameters_json")?,
        instance_ids: instance_ids_from_column(&instance_ids),
        targets_json: row.try_get("targets_json")?,
        payload_json: row.try_get("payload_json")?,
        requested_at: row.try_get("requested_at")?,
        timeout_seconds: row.try_get("timeout_seconds")?,
        execution_timeout_seconds: row.try_get("execution_timeout_seconds")?,
        max_concurrency: row.try_get("max_concurrency")?,
        max_errors: row.try_get("max_errors")?,
        service_role: row.try_get("service_role")?,
        output_s3_bucket: row.try_get("output_s3_bucket")?,
        output_s3_prefix: row.try_get("output_s3_prefix")?,
        requested_by: row.try_get("requested_by")?,
        cancel_requested: row.try_get("cancel_requested")?,
        active: row.try_get("active")?,
    })
}

fn invocation_from_row(row: &PgRow) -> StoreResult<CommandInvocation> {
    Ok(CommandInvocation {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        command_id: row.try_get("command_id")?,
        instance_id: row.try_get("instance_id")?,
        instance_name: row.try_get("instance_name")?,
        requested_at: row.try_get("requested_at")?,
        status: row.try_get("status")?,
        status_details: row.try_get("status_details")?,
        dispatched_at: row.try_get("dispatched_at")?,
        acked_at: row.try_get("acked_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        response_code: row.try_get("response_code")?,
        trace_output: row.try_get("trace_output")?,
        delivery_attempts: row.try_get("delivery_attempts")?,
        plugins: Vec::new(),
    })
}

/// The plugin result of a joined row, `None` for an invocation without any.
fn plugin_from_row(row: &PgRow) -> StoreResult<Option<PluginResult>> {
    let Some(name) = row.try_get::<Option<String>, _>("p_name")? else { return Ok(None) };
    Ok(Some(PluginResult {
        name,
        status: row.try_get("p_status")?,
        status_details: row.try_get("p_status_details")?,
        response_code: row.try_get("p_response_code")?,
        started_at: row.try_get("p_started_at")?,
        finished_at: row.try_get("p_finished_at")?,
        output: row.try_get("p_output")?,
        stdout: row.try_get("p_stdout")?,
        stderr: row.try_get("p_stderr")?,
    }))
}

/// Folds "invocation LEFT JOIN plugins" rows (an invocation's rows adjacent, in position
/// order) into invocations with their plugin results; without `with_plugins`, one row each.
fn collect_invocations(rows: &[PgRow], with_plugins: bool) -> StoreResult<Vec<CommandInvocation>> {
    let mut out: Vec<CommandInvocation> = Vec::new();
    for row in rows {
        let command_id: String = row.try_get("command_id")?;
        let instance_id: String = row.try_get("instance_id")?;
        let same = out.last().is_some_and(|last| last.command_id == command_id && last.instance_id == instance_id);
        if !same {
            out.push(invocation_from_row(row)?);
        }
        if with_plugins {
            if let (Some(plugin), Some(last)) = (plugin_from_row(row)?, out.last_mut()) {
                last.plugins.push(plugin);
            }
        }
    }
    Ok(out)
}

fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The distinct storable values of `values`, in byte order (a value that cannot be stored
/// matches nothing).
fn storable_set<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    values.into_iter().filter(|v| !unstorable(v)).collect::<BTreeSet<_>>().into_iter().collect()
}

fn opt_ts(t: Option<OffsetDateTime>) -> StoreResult<Option<OffsetDateTime>> {
    t.map(ts).transpose()
}

// === writes ===

/// Inserts a new command's invocations in one statement. They were validated to belong to
/// `command`, so its account, region and `requested_at` are bound once.
async fn insert_invocations(tx: &mut Tx, command: &Command, invocations: &[CommandInvocation]) -> StoreResult<()> {
    if invocations.is_empty() {
        return Ok(());
    }
    let mut instance_ids = Vec::with_capacity(invocations.len());
    let mut instance_names = Vec::with_capacity(invocations.len());
    let mut statuses = Vec::with_capacity(invocations.len());
    let mut details = Vec::with_capacity(invocations.len());
    let mut dispatched = Vec::with_capacity(invocations.len());
    let mut acked = Vec::with_capacity(invocations.len());
    let mut started = Vec::with_capacity(invocations.len());
    let mut finished = Vec::with_capacity(invocations.len());
    let mut codes = Vec::with_capacity(invocations.len());
    let mut traces = Vec::with_capacity(invocations.len());
    let mut attempts = Vec::with_capacity(invocations.len());
    for inv in invocations {
        instance_ids.push(inv.instance_id.as_str());
        instance_names.push(inv.instance_name.as_str());
        statuses.push(inv.status.as_str());
        details.push(inv.status_details.as_str());
        dispatched.push(opt_ts(inv.dispatched_at)?);
        acked.push(opt_ts(inv.acked_at)?);
        started.push(opt_ts(inv.started_at)?);
        finished.push(opt_ts(inv.finished_at)?);
        codes.push(inv.response_code);
        traces.push(inv.trace_output.as_str());
        attempts.push(inv.delivery_attempts);
    }
    sqlx::query(
        "INSERT INTO command_invocations (command_id, instance_id, account_id, region, instance_name, \
         requested_at, status, status_details, dispatched_at, acked_at, started_at, finished_at, response_code, \
         trace_output, delivery_attempts) \
         SELECT $1, x.instance_id, $2, $3, x.instance_name, $4, x.status, x.status_details, x.dispatched_at, \
         x.acked_at, x.started_at, x.finished_at, x.response_code, x.trace_output, x.delivery_attempts \
         FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], \
         $11::timestamptz[], $12::timestamptz[], $13::bigint[], $14::text[], $15::bigint[]) \
         AS x(instance_id, instance_name, status, status_details, dispatched_at, acked_at, started_at, \
         finished_at, response_code, trace_output, delivery_attempts)",
    )
    .bind(&command.command_id)
    .bind(&command.account_id)
    .bind(&command.region)
    .bind(ts(command.requested_at)?)
    .bind(instance_ids)
    .bind(instance_names)
    .bind(statuses)
    .bind(details)
    .bind(dispatched)
    .bind(acked)
    .bind(started)
    .bind(finished)
    .bind(codes)
    .bind(traces)
    .bind(attempts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Replaces the invocation's plugin result of this name (keeping its position) or appends it
/// at the next position. The caller holds the invocation's row lock (or created it in this
/// transaction), so the next position cannot be taken meanwhile.
async fn upsert_plugin(tx: &mut Tx, command_id: &str, instance_id: &str, plugin: &PluginResult) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO command_invocation_plugins (command_id, instance_id, position, name, status, status_details, \
         response_code, started_at, finished_at, output, stdout, stderr) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(position) + 1, 0) FROM command_invocation_plugins \
         WHERE command_id = $1 AND instance_id = $2), $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (command_id, instance_id, name) DO UPDATE SET status = excluded.status, \
         status_details = excluded.status_details, response_code = excluded.response_code, \
         started_at = excluded.started_at, finished_at = excluded.finished_at, output = excluded.output, \
         stdout = excluded.stdout, stderr = excluded.stderr",
    )
    .bind(command_id)
    .bind(instance_id)
    .bind(&plugin.name)
    .bind(&plugin.status)
    .bind(&plugin.status_details)
    .bind(plugin.response_code)
    .bind(opt_ts(plugin.started_at)?)
    .bind(opt_ts(plugin.finished_at)?)
    .bind(&plugin.output)
    .bind(&plugin.stdout)
    .bind(&plugin.stderr)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn create_command(
    store: &PgStore,
    command: &Command,
    invocations: &[CommandInvocation],
) -> StoreResult<()> {
    validate_new_command(command, invocations)?;
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO commands (command_id, account_id, region, document_name, document_version, comment, \
         parameters_json, instance_ids, targets_json, payload_json, requested_at, timeout_seconds, \
         execution_timeout_seconds, max_concurrency, max_errors, service_role, output_s3_bucket, output_s3_prefix, \
         requested_by, cancel_requested, active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&command.command_id)
    .bind(&command.account_id)
    .bind(&command.region)
    .bind(&command.document_name)
    .bind(&command.document_version)
    .bind(&command.comment)
    .bind(&command.parameters_json)
    .bind(command.instance_ids_column())
    .bind(&command.targets_json)
    .bind(&command.payload_json)
    .bind(ts(command.requested_at)?)
    .bind(command.timeout_seconds)
    .bind(command.execution_timeout_seconds)
    .bind(&command.max_concurrency)
    .bind(&command.max_errors)
    .bind(&command.service_role)
    .bind(&command.output_s3_bucket)
    .bind(&command.output_s3_prefix)
    .bind(&command.requested_by)
    .bind(command.cancel_requested)
    .bind(command.active)
    .execute(&mut *tx)
    .await?;
    insert_invocations(&mut tx, command, invocations).await?;
    for inv in invocations {
        for plugin in &inv.plugins {
            upsert_plugin(&mut tx, &inv.command_id, &inv.instance_id, plugin).await?;
        }
    }
    commit_write(tx).await
}

pub(super) async fn update_invocation(
    store: &PgStore,
    command_id: &str,
    instance_id: &str,
    from: &[&str],
    update: &InvocationUpdate,
) -> StoreResult<bool> {
    update.validate()?;
    let from = storable_set(from.iter().copied());
    if from.is_empty() || unstorable(command_id) || unstorable(instance_id) {
        return Ok(false);
    }
    let mut tx = store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE command_invocations SET status = $1, status_details = $2, \
         dispatched_at = CASE WHEN $3::boolean THEN $4::timestamptz ELSE dispatched_at END, \
         acked_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE acked_at END, \
         started_at = COALESCE($7::timestamptz, started_at), finished_at = COALESCE($8::timestamptz, finished_at), \
         response_code = COALESCE($9::bigint, response_code), trace_output = COALESCE($10::text, trace_output), \
         delivery_attempts = delivery_attempts + $11 \
         WHERE command_id = $12 AND instance_id = $13 AND status = ANY($14)",
    )
    .bind(&update.status)
    .bind(&update.status_details)
    .bind(update.dispatched_at.is_some())
    .bind(opt_ts(update.dispatched_at.flatten())?)
    .bind(update.acked_at.is_some())
    .bind(opt_ts(update.acked_at.flatten())?)
    .bind(opt_ts(update.started_at)?)
    .bind(opt_ts(update.finished_at)?)
    .bind(update.response_code)
    .bind(update.trace_output.as_deref())
    .bind(i64::from(update.count_delivery))
    .bind(command_id)
    .bind(instance_id)
    .bind(&from)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Absent, or another writer changed the status first: nothing to commit (dropping
        // the transaction rolls it back, and a staged audit record stays for the caller).
        return Ok(false);
    }
    for plugin in &update.plugins {
        upsert_plugin(&mut tx, command_id, instance_id, plugin).await?;
    }
    commit_write(tx).await?;
    Ok(true)
}

pub(super) async fn set_command_cancel_requested(
    store: &PgStore,
    account_id: &str,
    region: &str,
    command_id: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) {
        return Err(StoreError::NotFound);
    }
    let query = sqlx::query(
        "UPDATE commands SET cancel_requested = TRUE WHERE account_id = $1 AND region = $2 AND command_id = $3",
    )
    .bind(account_id)
    .bind(region)
    .bind(command_id);
    store.write_one(query, true).await
}

pub(super) async fn set_command_active(store: &PgStore, command_id: &str, active: bool) -> StoreResult<()> {
    if unstorable(command_id) {
        return Ok(());
    }
    let query = sqlx::query("UPDATE commands SET active = $1 WHERE command_id = $2").bind(active).bind(command_id);
    store.write_one(query, false).await
}

// === reads ===

pub(super) async fn get_command(
    store: &PgStore,
    account_id: &str,
    region: &str,
    command_id: &str,
) -> StoreResult<Option<Command>> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.account_id = $1 AND c.region = $2 AND c.command_id = $3"
    ))
    .bind(account_id)
    .bind(region)
    .bind(command_id)
    .fetch_optional(&store.pool)
    .await?;
    row.as_ref().map(command_from_row).transpose()
}

pub(super) async fn list_commands(
    store: &PgStore,
    account_id: &str,
    region: &str,
    filter: &CommandFilter,
    after: Option<(OffsetDateTime, String)>,
    limit: usize,
) -> StoreResult<Vec<Command>> {
    if limit == 0
        || unstorable(account_id)
        || unstorable(region)
        || filter.texts().into_iter().flatten().any(unstorable)
    {
        return Ok(Vec::new());
    }
    let Some((start, mut end)) = filter.requested_range_ms() else { return Ok(Vec::new()) };
    // A cursor bounds requested_at from above (so the index range starts there); rows at the
    // cursor's time must come after its command id.
    let cursor = after.and_then(|(t, id)| cursor_ms(t).map(|ms| (ms, id)));
    if let Some((ms, _)) = &cursor {
        end = end.min(*ms);
    }
    if start > end {
        return Ok(Vec::new());
    }
    let (cursor_ms, cursor_id) = cursor.unzip();
    let cursor_at = cursor_ms.map(from_millis).transpose()?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.account_id = $1 AND c.region = $2 \
         AND c.requested_at >= $3 AND c.requested_at <= $4 \
         AND ($5::timestamptz IS NULL OR c.requested_at < $5 OR c.command_id > $6::text) \
         AND ($7::text IS NULL OR c.command_id = $7) \
         AND ($8::text IS NULL OR c.document_name = $8) \
         AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM command_invocations i \
              WHERE i.command_id = c.command_id AND i.instance_id = $9)) \
         ORDER BY c.requested_at DESC, c.command_id LIMIT $10"
    ))
    .bind(account_id)
    .bind(region)
    .bind(from_millis(start)?)
    .bind(from_millis(end)?)
    .bind(cursor_at)
    .bind(cursor_id.as_deref())
    .bind(filter.command_id.as_deref())
    .bind(filter.document_name.as_deref())
    .bind(filter.instance_id.as_deref())
    .bind(sql_limit(limit))
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(command_from_row).collect()
}

pub(super) async fn invocation_status_counts(
    store: &PgStore,
    account_id: &str,
    region: &str,
    command_ids: &[String],
) -> StoreResult<Vec<InvocationStatusCount>> {
    if unstorable(account_id) || unstorable(region) {
        return Ok(Vec::new());
    }
    let ids = storable_set(command_ids.iter().map(String::as_str));
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT command_id, status, status_details, COUNT(*) AS n FROM command_invocations \
         WHERE account_id = $1 AND region = $2 AND command_id = ANY($3) \
         GROUP BY command_id, status, status_details",
    )
    .bind(account_id)
    .bind(region)
    .bind(&ids)
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(InvocationStatusCount {
            command_id: row.try_get("command_id")?,
            status: row.try_get("status")?,
            status_details: row.try_get("status_details")?,
            count: count_from_db(row.try_get("n")?)?,
        });
    }
    // Sorted here, in byte order, as on SQLite (PostgreSQL's ORDER BY follows the collation).
    out.sort_by(|a, b| {
        (&a.command_id, &a.status, &a.status_details).cmp(&(&b.command_id, &b.status, &b.status_details))
    });
    Ok(out)
}

pub(super) async fn get_invocation(
    store: &PgStore,
    account_id: &str,
    region: &str,
    command_id: &str,
    instance_id: &str,
) -> StoreResult<Option<CommandInvocation>> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) || unstorable(instance_id) {
        return Ok(None);
    }
    // One statement: the invocation and its plugin results from the same snapshot.
    let rows = sqlx::query(concat!(
        "SELECT ",
        invocation_columns!(),
        ", ",
        plugin_columns!(),
        " FROM command_invocations i",
        plugin_join!(),
        " WHERE i.account_id = $1 AND i.region = $2 AND i.command_id = $3 AND i.instance_id = $4 ORDER BY p.position"
    ))
    .bind(account_id)
    .bind(region)
    .bind(command_id)
    .bind(instance_id)
    .fetch_all(&store.pool)
    .await?;
    Ok(collect_invocations(&rows, true)?.into_iter().next())
}

/// The page of invocations `list_invocations` returns, as a subquery aliased `i` (the table
/// inside is `ci`, its command `c`).
macro_rules! invocation_page {
    () => {
        "(SELECT ci.* FROM command_invocations ci JOIN commands c ON c.command_id = ci.command_id \
          WHERE ci.account_id = $1 AND ci.region = $2 \
          AND ci.requested_at >= $3 AND ci.requested_at <= $4 \
          AND ($5::timestamptz IS NULL OR ci.requested_at < $5 OR ci.command_id > $6::text \
               OR (ci.command_id = $6::text AND ci.instance_id > $7::text)) \
          AND ($8::text IS NULL OR ci.command_id = $8) \
          AND ($9::text IS NULL OR ci.instance_id = $9) \
          AND ($10::text IS NULL OR c.document_name = $10) \
          ORDER BY ci.requested_at DESC, ci.command_id, ci.instance_id LIMIT $11) i"
    };
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn list_invocations(
    store: &PgStore,
    account_id: &str,
    region: &str,
    filter: &CommandFilter,
    after: Option<(OffsetDateTime, String, String)>,
    limit: usize,
    with_plugins: bool,
) -> StoreResult<Vec<CommandInvocation>> {
    if limit == 0
        || unstorable(account_id)
        || unstorable(region)
        || filter.texts().into_iter().flatten().any(unstorable)
    {
        return Ok(Vec::new());
    }
    let Some((start, mut end)) = filter.requested_range_ms() else { return Ok(Vec::new()) };
    let cursor = after.and_then(|(t, command_id, instance_id)| cursor_ms(t).map(|ms| (ms, command_id, instance_id)));
    if let Some((ms, ..)) = &cursor {
        end = end.min(*ms);
    }
    if start > end {
        return Ok(Vec::new());
    }
    let (cursor_at, cursor_command, cursor_instance) = match &cursor {
        Some((ms, c, i)) => (Some(from_millis(*ms)?), Some(c.as_str()), Some(i.as_str())),
        None => (None, None, None),
    };
    // LIMIT applies to invocations (the subquery), not to invocation-and-plugin rows.
    let sql = if with_plugins {
        concat!(
            "SELECT ",
            invocation_columns!(),
            ", ",
            plugin_columns!(),
            " FROM ",
            invocation_page!(),
            plugin_join!(),
            " ORDER BY i.requested_at DESC, i.command_id, i.instance_id, p.position"
        )
    } else {
        concat!(
            "SELECT ",
            invocation_columns!(),
            " FROM ",
            invocation_page!(),
            " ORDER BY i.requested_at DESC, i.command_id, i.instance_id"
        )
    };
    let rows = sqlx::query(sql)
        .bind(account_id)
        .bind(region)
        .bind(from_millis(start)?)
        .bind(from_millis(end)?)
        .bind(cursor_at)
        .bind(cursor_command)
        .bind(cursor_instance)
        .bind(filter.command_id.as_deref())
        .bind(filter.instance_id.as_deref())
        .bind(filter.document_name.as_deref())
        .bind(sql_limit(limit))
        .fetch_all(&store.pool)
        .await?;
    collect_invocations(&rows, with_plugins)
}

pub(super) async fn command_invocations(store: &PgStore, command_id: &str) -> StoreResult<Vec<CommandInvocation>> {
    if unstorable(command_id) {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(concat!(
        "SELECT ",
        invocation_columns!(),
        " FROM command_invocations i WHERE i.command_id = $1 ORDER BY i.instance_id"
    ))
    .bind(command_id)
    .fetch_all(&store.pool)
    .await?;
    collect_invocations(&rows, false)
}

pub(super) async fn active_commands(store: &PgStore, limit: usize) -> StoreResult<Vec<Command>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // `WHERE c.active` literally, so the partial index commands_active serves it.
    let rows = sqlx::query(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.active ORDER BY c.requested_at, c.command_id LIMIT $1"
    ))
    .bind(sql_limit(limit))
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(command_from_row).collect()
}

pub(super) async fn active_commands_for_instance(
    store: &PgStore,
    instance_id: &str,
    statuses: &[&str],
) -> StoreResult<Vec<String>> {
    let statuses = storable_set(statuses.iter().copied());
    if statuses.is_empty() || unstorable(instance_id) {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "SELECT c.command_id FROM command_invocations i JOIN commands c ON c.command_id = i.command_id \
         WHERE i.instance_id = $1 AND c.active AND i.status = ANY($2) ORDER BY c.requested_at, c.command_id",
    )
    .bind(instance_id)
    .bind(&statuses)
    .fetch_all(&store.pool)
    .await?)
}
