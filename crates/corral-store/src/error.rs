//! The store's error type.

/// Result of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a store operation failed.
///
/// Only [`StoreError::AlreadyExists`], [`StoreError::NotFound`], [`StoreError::Conflict`] and
/// [`StoreError::InvalidInput`] describe the caller's request; the others are internal
/// failures that the server logs and answers with `InternalServerError`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same key already exists (unique or primary key violation).
    #[error("already exists")]
    AlreadyExists,
    /// A row the operation refers to (account, user, ...) does not exist.
    #[error("not found")]
    NotFound,
    /// The change conflicts with the current state, e.g. a row is still referenced.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The value cannot be stored identically on every backend (e.g. a string containing
    /// NUL), or the arguments are inconsistent with each other. The message is safe to show
    /// to API clients.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Any other database failure. The message may contain SQL details: log it, never show
    /// it to API clients.
    #[error("database error: {0}")]
    Database(String),
    /// A stored secret did not decrypt: wrong [`crate::SecretKey`], tampered ciphertext, or a
    /// ciphertext moved to another row.
    #[error("secret decryption failed")]
    Crypto,
    /// Applying or validating schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The secret key file could not be read, created or parsed.
    #[error("secret key file: {0}")]
    KeyFile(String),
}

// === impl From<sqlx errors> ===

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &err {
            sqlx::Error::Database(db) => {
                // The kind covers SQLite 2067/1555 and PostgreSQL 23505 (unique) and
                // SQLite 787 / PostgreSQL 23503 (foreign key); the explicit codes are a
                // second line in case a driver classifies differently.
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                match db.kind() {
                    ErrorKind::UniqueViolation => StoreError::AlreadyExists,
                    ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                    _ if matches!(code, "2067" | "1555" | "23505") => StoreError::AlreadyExists,
                    _ if matches!(code, "787" | "23503") => StoreError::NotFound,
                    // PostgreSQL: invalid byte sequence (NUL in TEXT); normally caught earlier.
                    _ if code == "22021" => StoreError::InvalidInput("text contains an invalid character".into()),
                    _ => StoreError::Database(err.to_string()),
                }
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(err.to_string())
    }
}
