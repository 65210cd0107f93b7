//! The one place that knows there are two SQL engines.
//!
//! Every store operation (`crate::store`) is written once, against the small interface here:
//! [`Db`] (the connection pools), [`Tx`] (a transaction), [`query`] / [`query_scalar`] (a
//! statement and its bound [`Value`]s) and [`Row`] (a result row read through typed getters).
//! What differs between SQLite and PostgreSQL lives below this line and nowhere else:
//!
//! - **SQL text**: statements are written once in SQLite's spelling with `?` placeholders;
//!   [`dialect`] renders them for PostgreSQL (`$1..$n`, the row locks and collations that
//!   SQLite spells as comments, `IN (?*)` list parameters). See that module for the grammar.
//! - **Values**: a timestamp is an INTEGER of milliseconds on SQLite and a TIMESTAMPTZ on
//!   PostgreSQL; [`Value`] binding and [`Row::try_get`] convert in one place each, so row
//!   mapping is shared. Text lists bind as one array on PostgreSQL and one `?` per element
//!   on SQLite.
//! - **Transactions**: SQLite writes go through one writer connection and begin with
//!   `BEGIN IMMEDIATE` (one writer at a time); PostgreSQL writes begin normally and rely on the
//!   row locks the statements take. [`Tx::lock_table_exclusive`] is PostgreSQL-only (SQLite's
//!   writer lock already excludes everyone).
//! - **Opening**: connection options, pool sizes, pragmas and migrations
//!   ([`sqlite`], [`postgres`]).
//!
//! Dispatch is a `match` per statement on an enum, not generics: the spike measured no
//! difference per call (a database round trip is microseconds; the match is nanoseconds) and
//! one copy of the operations compiles once (ARCHITECTURE.md, "The store").

mod dialect;
pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::borrow::Cow;
use std::sync::OnceLock;

use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Postgres, Sqlite};
use time::OffsetDateTime;

use crate::common::{from_millis, to_millis, truncate_millis};
use crate::error::{StoreError, StoreResult};
use crate::Backend;

pub(crate) use dialect::sql;

/// The connection pools of one store.
pub(crate) struct Db {
    engine: Engine,
}

enum Engine {
    Sqlite {
        /// Readers: several connections (WAL lets them read while a write commits).
        readers: SqlitePool,
        /// The one writer connection. SQLite admits one writer at a time anyway; queueing
        /// writes on one connection in-process replaces SQLite's busy-handler sleeps (up to
        /// 100 ms each) with a fair async queue, which keeps tail latency low under load.
        writer: SqlitePool,
        /// Dropping it stops the background WAL checkpoints (`sqlite::open`).
        _stop_checkpoints: tokio::sync::oneshot::Sender<()>,
    },
    Postgres(PgPool),
}

impl Db {
    pub(crate) fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite { .. } => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads first and writes later could fail with SQLITE_BUSY
    /// without waiting when another connection writes in between.
    pub(crate) async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(Tx(match &self.engine {
            Engine::Sqlite { writer, .. } => TxConn::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Engine::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        }))
    }

    /// A read-only transaction: several reads that see one snapshot.
    pub(crate) async fn begin_read(&self) -> StoreResult<Tx> {
        Ok(Tx(match &self.engine {
            Engine::Sqlite { readers, .. } => TxConn::Sqlite(readers.begin().await?),
            Engine::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        }))
    }

    /// Where a one-statement write outside a transaction runs (SQLite: the writer connection).
    pub(crate) fn writer(&self) -> Writer<'_> {
        Writer(self)
    }

    /// The pools' use right now.
    pub(crate) fn pool_stats(&self) -> Vec<crate::PoolStats> {
        fn stats<D: sqlx::Database>(pool: &'static str, p: &sqlx::Pool<D>) -> crate::PoolStats {
            let idle = u32::try_from(p.num_idle()).unwrap_or(u32::MAX);
            crate::PoolStats { pool, open: p.size(), idle, max: p.options().get_max_connections() }
        }
        match &self.engine {
            Engine::Sqlite { readers, writer, .. } => vec![stats("readers", readers), stats("writer", writer)],
            Engine::Postgres(pool) => vec![stats("main", pool)],
        }
    }

    /// Closes the pools, waiting for in-flight queries.
    pub(crate) async fn close(&self) {
        match &self.engine {
            Engine::Sqlite { readers, writer, .. } => {
                writer.close().await;
                readers.close().await;
            }
            Engine::Postgres(pool) => pool.close().await,
        }
    }
}

/// An open transaction; dropping it rolls back. Statements run on `&mut *tx`.
pub(crate) struct Tx(TxConn);

/// The connection inside a [`Tx`] (what `&mut *tx` gives), which statements execute on.
pub(crate) enum TxConn {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        match self.0 {
            TxConn::Sqlite(tx) => tx.commit().await?,
            TxConn::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl TxConn {
    /// Locks `table` against other writers until commit (PostgreSQL `SHARE ROW EXCLUSIVE`,
    /// which conflicts with itself). SQLite's `BEGIN IMMEDIATE` holds the database's write
    /// lock already, so there it does nothing.
    pub(crate) async fn lock_table_exclusive(&mut self, table: &'static str) -> StoreResult<()> {
        if let TxConn::Postgres(tx) = self {
            let sql = format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx {
    type Target = TxConn;
    fn deref(&self) -> &TxConn {
        &self.0
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut TxConn {
        &mut self.0
    }
}

/// [`Db::writer`]: a one-statement write outside a transaction.
pub(crate) struct Writer<'c>(&'c Db);

/// Where a statement runs.
pub(crate) enum On<'c> {
    /// A pooled read connection (autocommit).
    Read(&'c Db),
    /// The writer (autocommit).
    Write(&'c Db),
    /// Inside a transaction.
    Tx(&'c mut TxConn),
}

impl<'c> From<&'c Db> for On<'c> {
    fn from(db: &'c Db) -> Self {
        On::Read(db)
    }
}

impl<'c> From<Writer<'c>> for On<'c> {
    fn from(writer: Writer<'c>) -> Self {
        On::Write(writer.0)
    }
}

impl<'c> From<&'c mut TxConn> for On<'c> {
    fn from(tx: &'c mut TxConn) -> Self {
        On::Tx(tx)
    }
}

// === statements ===

/// SQL text: a call site's static statement (rendered for PostgreSQL once, see [`sql!`]) or
/// one built at run time (only generated identifiers and placeholders, every value bound).
pub(crate) enum SqlText {
    Static(&'static Sql),
    Built(String),
}

/// A statement written once, in the neutral spelling [`dialect`] documents.
pub(crate) struct Sql {
    text: &'static str,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Sql {
    pub(crate) const fn new(text: &'static str) -> Sql {
        Sql { text, sqlite: OnceLock::new(), postgres: OnceLock::new() }
    }

    fn sqlite(&'static self) -> &'static str {
        self.sqlite.get_or_init(|| dialect::render_sqlite(self.text))
    }

    fn postgres(&'static self) -> &'static str {
        self.postgres.get_or_init(|| dialect::render_postgres(self.text))
    }
}

impl From<&'static Sql> for SqlText {
    fn from(sql: &'static Sql) -> Self {
        SqlText::Static(sql)
    }
}

impl From<String> for SqlText {
    fn from(sql: String) -> Self {
        SqlText::Built(sql)
    }
}

/// One bound value, converted to each engine's representation when the statement runs.
pub(crate) enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Bool(Option<bool>),
    /// Milliseconds since the epoch on SQLite, TIMESTAMPTZ (UTC, truncated to the
    /// millisecond) on PostgreSQL.
    Time(Option<OffsetDateTime>),
    /// An `IN (?*)` parameter: one `?` per element on SQLite, one TEXT[] on PostgreSQL.
    TextList(Vec<Cow<'a, str>>),
}

macro_rules! value_from {
    ($($t:ty => |$v:ident| $e:expr;)*) => {
        $(impl<'a> From<$t> for Value<'a> {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

value_from! {
    &'a str => |v| Value::Text(Some(Cow::Borrowed(v)));
    &'a String => |v| Value::Text(Some(Cow::Borrowed(v.as_str())));
    String => |v| Value::Text(Some(Cow::Owned(v)));
    Option<&'a str> => |v| Value::Text(v.map(Cow::Borrowed));
    &'a Option<String> => |v| Value::Text(v.as_deref().map(Cow::Borrowed));
    Option<String> => |v| Value::Text(v.map(Cow::Owned));
    i64 => |v| Value::Int(Some(v));
    Option<i64> => |v| Value::Int(v);
    i32 => |v| Value::Int32(Some(v));
    Option<i32> => |v| Value::Int32(v);
    // Limits and counts: larger than i64::MAX means "no limit", which i64::MAX also says.
    u64 => |v| Value::Int(Some(i64::try_from(v).unwrap_or(i64::MAX)));
    bool => |v| Value::Bool(Some(v));
    Option<bool> => |v| Value::Bool(v);
    OffsetDateTime => |v| Value::Time(Some(v));
    Option<OffsetDateTime> => |v| Value::Time(v);
    Vec<&'a str> => |v| Value::TextList(v.into_iter().map(Cow::Borrowed).collect());
    &'a [&'a str] => |v| Value::TextList(v.iter().map(|s| Cow::Borrowed(*s)).collect());
    &'a [String] => |v| Value::TextList(v.iter().map(|s| Cow::Borrowed(s.as_str())).collect());
}

/// A statement with its values; run it with `execute` or a `fetch_*` method.
pub(crate) struct Query<'a> {
    sql: SqlText,
    values: Vec<Value<'a>>,
}

/// A statement that reads the first column of each row as a `T`.
pub(crate) struct QueryScalar<'a, T> {
    inner: Query<'a>,
    _column: std::marker::PhantomData<fn() -> T>,
}

/// A statement, usually `query(sql!("..."))`.
pub(crate) fn query<'a>(sql: impl Into<SqlText>) -> Query<'a> {
    Query { sql: sql.into(), values: Vec::new() }
}

/// A statement whose rows are read as their first column.
pub(crate) fn query_scalar<'a, T: Column>(sql: impl Into<SqlText>) -> QueryScalar<'a, T> {
    QueryScalar { inner: query(sql), _column: std::marker::PhantomData }
}

/// What `execute` reports.
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl<'a> Query<'a> {
    /// Binds the next `?` (or, for a list, the next `?*`).
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.values.push(value.into());
        self
    }

    pub(crate) async fn execute(self, on: impl Into<On<'_>>) -> StoreResult<Done> {
        let done = match on.into() {
            On::Read(Db { engine: Engine::Sqlite { readers: ex, .. } })
            | On::Write(Db { engine: Engine::Sqlite { writer: ex, .. } }) => {
                self.for_sqlite()?.execute(ex).await?.rows_affected()
            }
            On::Read(Db { engine: Engine::Postgres(ex) }) | On::Write(Db { engine: Engine::Postgres(ex) }) => {
                self.for_postgres()?.execute(ex).await?.rows_affected()
            }
            On::Tx(TxConn::Sqlite(tx)) => self.for_sqlite()?.execute(&mut **tx).await?.rows_affected(),
            On::Tx(TxConn::Postgres(tx)) => self.for_postgres()?.execute(&mut **tx).await?.rows_affected(),
        };
        Ok(Done { rows_affected: done })
    }

    pub(crate) async fn fetch_optional(self, on: impl Into<On<'_>>) -> StoreResult<Option<Row>> {
        Ok(match on.into() {
            On::Read(Db { engine: Engine::Sqlite { readers: ex, .. } })
            | On::Write(Db { engine: Engine::Sqlite { writer: ex, .. } }) => {
                self.for_sqlite()?.fetch_optional(ex).await?.map(Row::Sqlite)
            }
            On::Read(Db { engine: Engine::Postgres(ex) }) | On::Write(Db { engine: Engine::Postgres(ex) }) => {
                self.for_postgres()?.fetch_optional(ex).await?.map(Row::Postgres)
            }
            On::Tx(TxConn::Sqlite(tx)) => self.for_sqlite()?.fetch_optional(&mut **tx).await?.map(Row::Sqlite),
            On::Tx(TxConn::Postgres(tx)) => self.for_postgres()?.fetch_optional(&mut **tx).await?.map(Row::Postgres),
        })
    }

    pub(crate) async fn fetch_one(self, on: impl Into<On<'_>>) -> StoreResult<Row> {
        self.fetch_optional(on).await?.ok_or_else(|| StoreError::Database("the statement returned no row".into()))
    }

    pub(crate) async fn fetch_all(self, on: impl Into<On<'_>>) -> StoreResult<Vec<Row>> {
        Ok(match on.into() {
            On::Read(Db { engine: Engine::Sqlite { readers: ex, .. } })
            | On::Write(Db { engine: Engine::Sqlite { writer: ex, .. } }) => {
                self.for_sqlite()?.fetch_all(ex).await?.into_iter().map(Row::Sqlite).collect()
            }
            On::Read(Db { engine: Engine::Postgres(ex) }) | On::Write(Db { engine: Engine::Postgres(ex) }) => {
                self.for_postgres()?.fetch_all(ex).await?.into_iter().map(Row::Postgres).collect()
            }
            On::Tx(TxConn::Sqlite(tx)) => {
                self.for_sqlite()?.fetch_all(&mut **tx).await?.into_iter().map(Row::Sqlite).collect()
            }
            On::Tx(TxConn::Postgres(tx)) => {
                self.for_postgres()?.fetch_all(&mut **tx).await?.into_iter().map(Row::Postgres).collect()
            }
        })
    }

    /// The SQLite query: the text as written (list parameters expanded), timestamps as
    /// milliseconds.
    fn for_sqlite(self) -> StoreResult<sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>> {
        let has_lists = self.values.iter().any(|v| matches!(v, Value::TextList(_)));
        let mut q = match &self.sql {
            SqlText::Static(sql) if !has_lists => sqlx::query(sql.sqlite()),
            SqlText::Static(sql) => {
                sqlx::query(AssertSqlSafe(dialect::expand_lists_for_sqlite(sql.sqlite(), list_lengths(&self.values))))
            }
            SqlText::Built(text) if !has_lists => sqlx::query(AssertSqlSafe(dialect::render_sqlite(text))),
            SqlText::Built(text) => sqlx::query(AssertSqlSafe(dialect::expand_lists_for_sqlite(
                &dialect::render_sqlite(text),
                list_lengths(&self.values),
            ))),
        };
        for value in self.values {
            q = match value {
                Value::Text(v) => q.bind(v.map(Cow::into_owned)),
                Value::Int(v) => q.bind(v),
                Value::Int32(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
                Value::Time(v) => q.bind(v.map(to_millis)),
                Value::TextList(items) => {
                    let mut q = q;
                    for item in items {
                        q = q.bind(item.into_owned());
                    }
                    q
                }
            };
        }
        Ok(q)
    }

    /// The PostgreSQL query: the text rendered by [`dialect::render_postgres`], timestamps as
    /// TIMESTAMPTZ truncated to the millisecond, lists as arrays.
    fn for_postgres(self) -> StoreResult<sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments>> {
        let mut q = match &self.sql {
            SqlText::Static(sql) => sqlx::query(sql.postgres()),
            SqlText::Built(text) => sqlx::query(AssertSqlSafe(dialect::render_postgres(text))),
        };
        for value in self.values {
            q = match value {
                Value::Text(v) => q.bind(v.map(Cow::into_owned)),
                Value::Int(v) => q.bind(v),
                Value::Int32(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
                Value::Time(v) => q.bind(v.map(truncate_millis).transpose()?),
                Value::TextList(items) => q.bind(items.into_iter().map(Cow::into_owned).collect::<Vec<String>>()),
            };
        }
        Ok(q)
    }
}

/// The lengths of the list values, in order (for [`dialect::expand_lists_for_sqlite`]).
fn list_lengths<'v>(values: &'v [Value<'_>]) -> impl Iterator<Item = usize> + 'v {
    values.iter().filter_map(|v| match v {
        Value::TextList(items) => Some(items.len()),
        _ => None,
    })
}

impl<'a, T: Column> QueryScalar<'a, T> {
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.inner = self.inner.bind(value);
        self
    }

    pub(crate) async fn fetch_optional(self, on: impl Into<On<'_>>) -> StoreResult<Option<T>> {
        self.inner.fetch_optional(on).await?.map(|row| row.try_get(0)).transpose()
    }

    pub(crate) async fn fetch_one(self, on: impl Into<On<'_>>) -> StoreResult<T> {
        self.inner.fetch_one(on).await?.try_get(0)
    }

    pub(crate) async fn fetch_all(self, on: impl Into<On<'_>>) -> StoreResult<Vec<T>> {
        self.inner.fetch_all(on).await?.iter().map(|row| row.try_get(0)).collect()
    }
}

// === rows ===

/// A result row of either engine.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// A column name or position.
pub(crate) trait ColumnIndex: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy {}
impl<I: sqlx::ColumnIndex<SqliteRow> + sqlx::ColumnIndex<PgRow> + Copy> ColumnIndex for I {}

impl Row {
    /// Reads a column as `T` (timestamps converted from each engine's representation).
    pub(crate) fn try_get<T: Column, I: ColumnIndex>(&self, index: I) -> StoreResult<T> {
        match self {
            Row::Sqlite(row) => T::from_sqlite(row, index),
            Row::Postgres(row) => T::from_postgres(row, index),
        }
    }
}

/// A Rust type a column is read as.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self>;
    fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self>;
}

/// Types both drivers decode the same way.
macro_rules! plain_column {
    ($($t:ty),*) => {
        $(impl Column for $t {
            fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self> {
                Ok(sqlx::Row::try_get(row, index)?)
            }
            fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self> {
                Ok(sqlx::Row::try_get(row, index)?)
            }
        })*
    };
}

plain_column!(String, Option<String>, i32, Option<i32>, bool, Option<bool>);

/// Integers: SQLite has one integer type; PostgreSQL's INTEGER columns and literals (`SELECT 1`)
/// are 32-bit and read as i64 here, so statements need no casts.
impl Column for i64 {
    fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self> {
        Ok(sqlx::Row::try_get(row, index)?)
    }
    fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self> {
        match sqlx::Row::try_get::<i64, _>(row, index) {
            Err(sqlx::Error::ColumnDecode { .. }) => Ok(i64::from(sqlx::Row::try_get::<i32, _>(row, index)?)),
            other => Ok(other?),
        }
    }
}

impl Column for Option<i64> {
    fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self> {
        Ok(sqlx::Row::try_get(row, index)?)
    }
    fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self> {
        match sqlx::Row::try_get::<Option<i64>, _>(row, index) {
            Err(sqlx::Error::ColumnDecode { .. }) => {
                Ok(sqlx::Row::try_get::<Option<i32>, _>(row, index)?.map(i64::from))
            }
            other => Ok(other?),
        }
    }
}

impl Column for OffsetDateTime {
    fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self> {
        from_millis(sqlx::Row::try_get(row, index)?)
    }
    fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self> {
        Ok(sqlx::Row::try_get(row, index)?)
    }
}

impl Column for Option<OffsetDateTime> {
    fn from_sqlite(row: &SqliteRow, index: impl ColumnIndex) -> StoreResult<Self> {
        let ms: Option<i64> = sqlx::Row::try_get(row, index)?;
        ms.map(from_millis).transpose()
    }
    fn from_postgres(row: &PgRow, index: impl ColumnIndex) -> StoreResult<Self> {
        Ok(sqlx::Row::try_get(row, index)?)
    }
}
