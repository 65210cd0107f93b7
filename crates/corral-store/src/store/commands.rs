//! Run Command: commands, their invocations and plugin results.
//!
//! Invocations change only by compare-and-set on their status ([`update_invocation`]). SQLite
//! has one writer at a time (`BEGIN IMMEDIATE`), so two updates from the same status queue and
//! the second finds the status changed. On PostgreSQL the `UPDATE ... WHERE status IN (...)`
//! locks the row, and a concurrent update from the same status waits for it, re-checks its
//! `WHERE` against the committed row (READ COMMITTED) and changes nothing; the row lock also
//! serialises plugin upserts of one invocation.

use std::collections::BTreeSet;

use crate::db::{query, query_scalar, sql, Row, Tx};

use super::{commit_write, SqlStore};
use crate::common::{count_from_db, from_millis, unstorable};
use crate::error::{StoreError, StoreResult};
use crate::model::{
    cursor_ms, instance_ids_from_column, validate_new_command, Command, CommandFilter, CommandInvocation,
    InvocationStatusCount, InvocationUpdate, PluginResult,
};

/// How many values one `IN (...)` list binds at most (SQLite limits a statement's variables).
const IN_CHUNK: usize = 500;
/// How many invocations one multi-row INSERT carries (15 values each: 3,000 bound values,
/// far inside both engines' limits).
const INSERT_CHUNK: usize = 200;

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

fn command_from_row(row: &Row) -> StoreResult<Command> {
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

fn invocation_from_row(row: &Row) -> StoreResult<CommandInvocation> {
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
fn plugin_from_row(row: &Row) -> StoreResult<Option<PluginResult>> {
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
fn collect_invocations(rows: &[Row], with_plugins: bool) -> StoreResult<Vec<CommandInvocation>> {
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

// === writes ===

/// Inserts a new command's invocations, many rows per statement (one round trip per
/// [`INSERT_CHUNK`] invocations on PostgreSQL).
async fn insert_invocations(tx: &mut Tx, invocations: &[CommandInvocation]) -> StoreResult<()> {
    for chunk in invocations.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO command_invocations (command_id, instance_id, account_id, region, instance_name, \
             requested_at, status, status_details, dispatched_at, acked_at, started_at, finished_at, response_code, \
             trace_output, delivery_attempts) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "" } else { ", " });
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
        // Only generated placeholders are spliced in; every value is bound.
        let mut insert = query(sql);
        for inv in chunk {
            insert = insert
                .bind(&inv.command_id)
                .bind(&inv.instance_id)
                .bind(&inv.account_id)
                .bind(&inv.region)
                .bind(&inv.instance_name)
                .bind(inv.requested_at)
                .bind(&inv.status)
                .bind(&inv.status_details)
                .bind(inv.dispatched_at)
                .bind(inv.acked_at)
                .bind(inv.started_at)
                .bind(inv.finished_at)
                .bind(inv.response_code)
                .bind(&inv.trace_output)
                .bind(inv.delivery_attempts);
        }
        insert.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Replaces the invocation's plugin result of this name (keeping its position) or appends it
/// at the next position. The caller holds the write lock (PostgreSQL: the invocation's row),
/// so the next position cannot be taken meanwhile.
async fn upsert_plugin(tx: &mut Tx, command_id: &str, instance_id: &str, plugin: &PluginResult) -> StoreResult<()> {
    query(sql!(
        "INSERT INTO command_invocation_plugins (command_id, instance_id, position, name, status, status_details, \
         response_code, started_at, finished_at, output, stdout, stderr) \
         VALUES (?, ?, (SELECT COALESCE(MAX(position) + 1, 0) FROM command_invocation_plugins \
         WHERE command_id = ? AND instance_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (command_id, instance_id, name) DO UPDATE SET status = excluded.status, \
         status_details = excluded.status_details, response_code = excluded.response_code, \
         started_at = excluded.started_at, finished_at = excluded.finished_at, output = excluded.output, \
         stdout = excluded.stdout, stderr = excluded.stderr"
    ))
    .bind(command_id)
    .bind(instance_id)
    .bind(command_id)
    .bind(instance_id)
    .bind(&plugin.name)
    .bind(&plugin.status)
    .bind(&plugin.status_details)
    .bind(plugin.response_code)
    .bind(plugin.started_at)
    .bind(plugin.finished_at)
    .bind(&plugin.output)
    .bind(&plugin.stdout)
    .bind(&plugin.stderr)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn create_command(
    store: &SqlStore,
    command: &Command,
    invocations: &[CommandInvocation],
) -> StoreResult<()> {
    validate_new_command(command, invocations)?;
    let mut tx = store.begin_write().await?;
    query(sql!(
        "INSERT INTO commands (command_id, account_id, region, document_name, document_version, comment, \
         parameters_json, instance_ids, targets_json, payload_json, requested_at, timeout_seconds, \
         execution_timeout_seconds, max_concurrency, max_errors, service_role, output_s3_bucket, output_s3_prefix, \
         requested_by, cancel_requested, active) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
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
    .bind(command.requested_at)
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
    insert_invocations(&mut tx, invocations).await?;
    for inv in invocations {
        for plugin in &inv.plugins {
            upsert_plugin(&mut tx, &inv.command_id, &inv.instance_id, plugin).await?;
        }
    }
    commit_write(tx).await
}

pub(super) async fn update_invocation(
    store: &SqlStore,
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
    let query = query(sql!(
        "UPDATE command_invocations SET status = ?, status_details = ?, \
         dispatched_at = CASE WHEN ? THEN ? ELSE dispatched_at END, \
         acked_at = CASE WHEN ? THEN ? ELSE acked_at END, \
         started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at), \
         response_code = COALESCE(?, response_code), trace_output = COALESCE(?, trace_output), \
         delivery_attempts = delivery_attempts + ? \
         WHERE command_id = ? AND instance_id = ? AND status IN (?*)"
    ))
    .bind(&update.status)
    .bind(&update.status_details)
    .bind(update.dispatched_at.is_some())
    .bind(update.dispatched_at.flatten())
    .bind(update.acked_at.is_some())
    .bind(update.acked_at.flatten())
    .bind(update.started_at)
    .bind(update.finished_at)
    .bind(update.response_code)
    .bind(update.trace_output.as_deref())
    .bind(i64::from(update.count_delivery))
    .bind(command_id)
    .bind(instance_id)
    .bind(from);
    let mut tx = store.begin_write().await?;
    let done = query.execute(&mut *tx).await?;
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
    store: &SqlStore,
    account_id: &str,
    region: &str,
    command_id: &str,
) -> StoreResult<()> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) {
        return Err(StoreError::NotFound);
    }
    let query = query(sql!(
        "UPDATE commands SET cancel_requested = TRUE WHERE account_id = ? AND region = ? AND command_id = ?"
    ))
    .bind(account_id)
    .bind(region)
    .bind(command_id);
    store.write_one(query, true).await
}

pub(super) async fn set_command_active(store: &SqlStore, command_id: &str, active: bool) -> StoreResult<()> {
    if unstorable(command_id) {
        return Ok(());
    }
    let query = query(sql!("UPDATE commands SET active = ? WHERE command_id = ?")).bind(active).bind(command_id);
    store.write_one(query, false).await
}

// === reads ===

pub(super) async fn get_command(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    command_id: &str,
) -> StoreResult<Option<Command>> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) {
        return Ok(None);
    }
    let row = query(sql!(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.account_id = ? AND c.region = ? AND c.command_id = ?"
    )))
    .bind(account_id)
    .bind(region)
    .bind(command_id)
    .fetch_optional(&store.db)
    .await?;
    row.as_ref().map(command_from_row).transpose()
}

pub(super) async fn list_commands(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    filter: &CommandFilter,
    after: Option<(time::OffsetDateTime, String)>,
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
    let rows = query(sql!(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.account_id = ? AND c.region = ? \
         AND c.requested_at >= ? AND c.requested_at <= ? \
         AND (? IS NULL OR c.requested_at < ? OR c.command_id > ?) \
         AND (? IS NULL OR c.command_id = ?) \
         AND (? IS NULL OR c.document_name = ?) \
         AND (? IS NULL OR EXISTS (SELECT 1 FROM command_invocations i \
              WHERE i.command_id = c.command_id AND i.instance_id = ?)) \
         ORDER BY c.requested_at DESC, c.command_id LIMIT ?"
    )))
    .bind(account_id)
    .bind(region)
    .bind(from_millis(start)?)
    .bind(from_millis(end)?)
    .bind(cursor_at)
    .bind(cursor_at)
    .bind(cursor_id.as_deref())
    .bind(filter.command_id.as_deref())
    .bind(filter.command_id.as_deref())
    .bind(filter.document_name.as_deref())
    .bind(filter.document_name.as_deref())
    .bind(filter.instance_id.as_deref())
    .bind(filter.instance_id.as_deref())
    .bind(sql_limit(limit))
    .fetch_all(&store.db)
    .await?;
    rows.iter().map(command_from_row).collect()
}

pub(super) async fn invocation_status_counts(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    command_ids: &[String],
) -> StoreResult<Vec<InvocationStatusCount>> {
    if unstorable(account_id) || unstorable(region) {
        return Ok(Vec::new());
    }
    let ids = storable_set(command_ids.iter().map(String::as_str));
    let mut out = Vec::new();
    // Each command's counts come from one statement; chunks only split between commands.
    for chunk in ids.chunks(IN_CHUNK) {
        let counts = query(sql!(
            "SELECT command_id, status, status_details, COUNT(*) AS n FROM command_invocations \
             WHERE account_id = ? AND region = ? AND command_id IN (?*) \
             GROUP BY command_id, status, status_details"
        ))
        .bind(account_id)
        .bind(region)
        .bind(chunk);
        for row in counts.fetch_all(&store.db).await? {
            out.push(InvocationStatusCount {
                command_id: row.try_get("command_id")?,
                status: row.try_get("status")?,
                status_details: row.try_get("status_details")?,
                count: count_from_db(row.try_get("n")?)?,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.command_id, &a.status, &a.status_details).cmp(&(&b.command_id, &b.status, &b.status_details))
    });
    Ok(out)
}

pub(super) async fn get_invocation(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    command_id: &str,
    instance_id: &str,
) -> StoreResult<Option<CommandInvocation>> {
    if unstorable(account_id) || unstorable(region) || unstorable(command_id) || unstorable(instance_id) {
        return Ok(None);
    }
    // One statement: the invocation and its plugin results from the same snapshot.
    let rows = query(sql!(concat!(
        "SELECT ",
        invocation_columns!(),
        ", ",
        plugin_columns!(),
        " FROM command_invocations i",
        plugin_join!(),
        " WHERE i.account_id = ? AND i.region = ? AND i.command_id = ? AND i.instance_id = ? ORDER BY p.position"
    )))
    .bind(account_id)
    .bind(region)
    .bind(command_id)
    .bind(instance_id)
    .fetch_all(&store.db)
    .await?;
    Ok(collect_invocations(&rows, true)?.into_iter().next())
}

/// The page of invocations `list_invocations` returns, as a subquery aliased `i` (the table
/// inside is `ci`, its command `c`).
macro_rules! invocation_page {
    () => {
        "(SELECT ci.* FROM command_invocations ci JOIN commands c ON c.command_id = ci.command_id \
          WHERE ci.account_id = ? AND ci.region = ? \
          AND ci.requested_at >= ? AND ci.requested_at <= ? \
          AND (? IS NULL OR ci.requested_at < ? OR ci.command_id > ? OR (ci.command_id = ? AND ci.instance_id > ?)) \
          AND (? IS NULL OR ci.command_id = ?) \
          AND (? IS NULL OR ci.instance_id = ?) \
          AND (? IS NULL OR c.document_name = ?) \
          ORDER BY ci.requested_at DESC, ci.command_id, ci.instance_id LIMIT ?) i"
    };
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn list_invocations(
    store: &SqlStore,
    account_id: &str,
    region: &str,
    filter: &CommandFilter,
    after: Option<(time::OffsetDateTime, String, String)>,
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
        sql!(concat!(
            "SELECT ",
            invocation_columns!(),
            ", ",
            plugin_columns!(),
            " FROM ",
            invocation_page!(),
            plugin_join!(),
            " ORDER BY i.requested_at DESC, i.command_id, i.instance_id, p.position"
        ))
    } else {
        sql!(concat!(
            "SELECT ",
            invocation_columns!(),
            " FROM ",
            invocation_page!(),
            " ORDER BY i.requested_at DESC, i.command_id, i.instance_id"
        ))
    };
    let rows = query(sql)
        .bind(account_id)
        .bind(region)
        .bind(from_millis(start)?)
        .bind(from_millis(end)?)
        .bind(cursor_at)
        .bind(cursor_at)
        .bind(cursor_command)
        .bind(cursor_command)
        .bind(cursor_instance)
        .bind(filter.command_id.as_deref())
        .bind(filter.command_id.as_deref())
        .bind(filter.instance_id.as_deref())
        .bind(filter.instance_id.as_deref())
        .bind(filter.document_name.as_deref())
        .bind(filter.document_name.as_deref())
        .bind(sql_limit(limit))
        .fetch_all(&store.db)
        .await?;
    collect_invocations(&rows, with_plugins)
}

pub(super) async fn command_invocations(store: &SqlStore, command_id: &str) -> StoreResult<Vec<CommandInvocation>> {
    if unstorable(command_id) {
        return Ok(Vec::new());
    }
    let rows = query(sql!(concat!(
        "SELECT ",
        invocation_columns!(),
        " FROM command_invocations i WHERE i.command_id = ? ORDER BY i.instance_id"
    )))
    .bind(command_id)
    .fetch_all(&store.db)
    .await?;
    collect_invocations(&rows, false)
}

pub(super) async fn active_commands(store: &SqlStore, limit: usize) -> StoreResult<Vec<Command>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // `active = TRUE` literally (SQLite: `= 1`), so the partial index commands_active serves it.
    let rows = query(sql!(concat!(
        "SELECT ",
        command_columns!(),
        " FROM commands c WHERE c.active = TRUE ORDER BY c.requested_at, c.command_id LIMIT ?"
    )))
    .bind(sql_limit(limit))
    .fetch_all(&store.db)
    .await?;
    rows.iter().map(command_from_row).collect()
}

pub(super) async fn active_commands_for_instance(
    store: &SqlStore,
    instance_id: &str,
    statuses: &[&str],
) -> StoreResult<Vec<String>> {
    let statuses = storable_set(statuses.iter().copied());
    if statuses.is_empty() || unstorable(instance_id) {
        return Ok(Vec::new());
    }
    query_scalar(sql!(
        "SELECT c.command_id AS command_id FROM command_invocations i JOIN commands c ON c.command_id = i.command_id \
         WHERE i.instance_id = ? AND c.active = TRUE AND i.status IN (?*) ORDER BY c.requested_at, c.command_id"
    ))
    .bind(instance_id)
    .bind(statuses)
    .fetch_all(&store.db)
    .await
}

pub(super) async fn open_invocation_counts(store: &SqlStore, statuses: &[&str]) -> StoreResult<Vec<(String, u64)>> {
    let statuses = storable_set(statuses.iter().copied());
    if statuses.is_empty() {
        return Ok(Vec::new());
    }
    // Only active commands have open invocations; `active = TRUE` lets commands_active serve it.
    let rows = query(sql!(
        "SELECT i.status AS status, COUNT(*) AS n FROM commands c JOIN command_invocations i \
         ON i.command_id = c.command_id WHERE c.active = TRUE AND i.status IN (?*) GROUP BY i.status ORDER BY i.status"
    ))
    .bind(statuses)
    .fetch_all(&store.db)
    .await?;
    rows.iter().map(|row| Ok((row.try_get("status")?, count_from_db(row.try_get("n")?)?))).collect()
}
