//! Opening the PostgreSQL engine: a database that several server replicas may share.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{Db, Engine};
use crate::error::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per replica; PostgreSQL's default `max_connections` (100) fits several
/// replicas at this size.
const MAX_CONNECTIONS: u32 = 10;

/// Connects to `url` and applies pending migrations.
pub(crate) async fn open(url: &str) -> StoreResult<Db> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
    // The migrator holds a PostgreSQL advisory lock while it runs, so replicas starting
    // together apply each migration once.
    MIGRATOR.run(&pool).await?;
    Ok(Db { engine: Engine::Postgres(pool) })
}
