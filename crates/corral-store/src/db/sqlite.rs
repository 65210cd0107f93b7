//! Opening the SQLite engine: one database file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Db, Engine};
use crate::error::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL allows concurrent readers; writers are serialised by SQLite itself.
const MAX_READERS: u32 = 8;

/// Opens (creating if missing) the database at `url` and applies pending migrations.
pub(crate) async fn open(url: &str) -> StoreResult<Db> {
    let (url, synchronous) = split_synchronous(url)?;
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| StoreError::InvalidInput(format!("invalid SQLite URL: {e}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL (the default) with WAL: a commit is in the WAL before it is acknowledged, so
        // it survives the process being killed (kill -9); only a power loss or kernel crash
        // can drop the last commits. `?synchronous=full` fsyncs every commit to survive those
        // too, at several times the cost per write.
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let file = options.get_filename();
    if !file.as_os_str().is_empty() && !url.contains(":memory:") && !url.contains("mode=memory") {
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    // No ping before handing out a connection (sqlx's default): an in-process SQLite connection
    // cannot have gone away, and the ping is a round trip to the connection's worker thread
    // that every store call would pay (sqlx still pings once when a connection is returned).
    let readers = SqlitePoolOptions::new()
        .max_connections(MAX_READERS)
        .test_before_acquire(false)
        .connect_with(options.clone())
        .await?;
    MIGRATOR.run(&readers).await?;
    // The writer leaves checkpoints to `checkpoint_in_background` unless the WAL grows past
    // WRITER_CHECKPOINT_PAGES (a backstop should that task fall behind).
    let writer_options = options.pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string());
    let writer =
        SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_with(writer_options).await?;
    let (stop_checkpoints, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(checkpoint_in_background(readers.clone(), stopped));
    Ok(Db { engine: Engine::Sqlite { readers, writer, _stop_checkpoints: stop_checkpoints } })
}

/// The WAL size (pages of 4 KiB) at which the writer checkpoints by itself.
const WRITER_CHECKPOINT_PAGES: u32 = 16_384;
/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies committed WAL frames into the database file from a reader connection, so the writer
/// (which SQLite would otherwise make do it every 1,000 pages, fsync included, while every
/// write waits) never stalls on it. PASSIVE waits for nobody: frames still being read are
/// left for the next round. Ends when the store is dropped or closed (`stop`).
async fn checkpoint_in_background(readers: sqlx::SqlitePool, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        if readers.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&readers).await {
            if readers.is_closed() {
                return;
            }
            // The writer's own checkpoint (WRITER_CHECKPOINT_PAGES) still bounds the WAL.
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
}

/// Takes Corral's own `synchronous=normal|full` parameter out of a SQLite URL.
fn split_synchronous(url: &str) -> StoreResult<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), SqliteSynchronous::Normal)) };
    let mut mode = SqliteSynchronous::Normal;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", v)) => {
                mode = match v.to_ascii_lowercase().as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    "full" => SqliteSynchronous::Full,
                    other => {
                        return Err(StoreError::InvalidInput(format!(
                            "synchronous={other} is not supported; use normal or full"
                        )))
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, mode))
}

/// `VACUUM INTO dest` on a read-only connection to `url` (see [`crate::backup_sqlite`]).
pub(crate) async fn backup_into(url: &str, dest: &std::path::Path) -> StoreResult<()> {
    use sqlx::ConnectOptions;
    let (url, _) = split_synchronous(url)?;
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| StoreError::InvalidInput(format!("invalid SQLite URL: {e}")))?
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    if !options.get_filename().exists() {
        return Err(StoreError::InvalidInput(format!("no database at {}", options.get_filename().display())));
    }
    let dest = dest.to_str().ok_or_else(|| StoreError::InvalidInput("the backup path is not UTF-8".into()))?;
    let mut conn = options.connect().await?;
    sqlx::query("VACUUM INTO ?").bind(dest).execute(&mut conn).await?;
    Ok(())
}

#[cfg(test)]
mod synchronous_tests {
    use super::*;

    #[test]
    fn synchronous_parameter_is_ours_to_take() {
        let (url, mode) = split_synchronous("sqlite:///d/corral.db").expect("plain");
        assert_eq!((url.as_str(), matches!(mode, SqliteSynchronous::Normal)), ("sqlite:///d/corral.db", true));
        let (url, mode) = split_synchronous("sqlite:///d/corral.db?synchronous=FULL&mode=rwc").expect("full");
        assert_eq!((url.as_str(), matches!(mode, SqliteSynchronous::Full)), ("sqlite:///d/corral.db?mode=rwc", true));
        assert!(split_synchronous("sqlite:///d/corral.db?synchronous=off").is_err());
    }
}
