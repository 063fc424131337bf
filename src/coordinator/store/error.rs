//! The store's typed error, and the one place where `sqlx` errors are classified.
//!
//! The API layer maps [`StoreError`] once: `Unavailable` → 503 (the client retries; the store
//! recovers by itself when the database is back), `Conflict` → 409, `NotFound` → 404, `Invalid`
//! → 400, `Corrupt` and `Other` → 500 (logged, never returned). Messages never hold a token, a
//! password or the database URL: the store is only ever given hashes, and the URL is reduced to
//! its backend and host before it can reach a message.

use std::borrow::Cow;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is too busy right now (connection refused or lost,
    /// pool timeout, server shutting down, SQLite busy). Retry later; nothing was changed.
    #[error("the coordinator database is unavailable ({0}); retry later")]
    Unavailable(String),
    /// The write collides with something stored (a unique name or key already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row the call is about does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller passed a value the store cannot hold (e.g. a sequence number beyond i64).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A stored value could not be read back (bad JSON, a time out of range, an unknown enum
    /// value): the database was changed behind the coordinator's back or by a newer version.
    #[error("corrupt data in the coordinator database: {0}")]
    Corrupt(String),
    /// Anything else (a bug, a failed migration, a full disk): logged, answered as 500.
    #[error("coordinator database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether retrying later may succeed (the API answers 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        classify(&e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => match classify(&inner) {
                StoreError::Unavailable(m) => StoreError::Unavailable(m),
                other => StoreError::Other(format!("applying migrations: {other}")),
            },
            other => StoreError::Other(format!(
                "applying migrations: {other} (was the database written by a newer lifeboat?)"
            )),
        }
    }
}

/// Sorts a `sqlx` error into the store's kinds. Database messages are kept only for kinds that
/// are logged, never answered; the store binds no secret, so no bound value can leak through.
fn classify(e: &sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match e {
        E::Io(io) => StoreError::Unavailable(format!("I/O error: {}", io.kind())),
        E::Tls(_) => StoreError::Unavailable("TLS handshake failed".into()),
        E::PoolTimedOut => {
            StoreError::Unavailable("no database connection within the acquire timeout".into())
        }
        E::PoolClosed => StoreError::Unavailable("the store was closed".into()),
        E::WorkerCrashed => StoreError::Unavailable("the SQLite worker thread stopped".into()),
        E::RowNotFound => StoreError::NotFound("no such row".into()),
        E::ColumnDecode { index, source } => {
            StoreError::Corrupt(format!("column {index}: {source}"))
        }
        E::Decode(source) => StoreError::Corrupt(source.to_string()),
        E::Database(db) => classify_database(db.as_ref()),
        // Configuration errors may quote the URL: never pass their text on.
        E::Configuration(_) => StoreError::Other("invalid database configuration".into()),
        other => StoreError::Other(other.to_string()),
    }
}

fn classify_database(db: &dyn sqlx::error::DatabaseError) -> StoreError {
    let code: Cow<'_, str> = db.code().unwrap_or(Cow::Borrowed(""));
    let msg = db.message();
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => {
            return StoreError::Conflict("the key or name is already taken".into());
        }
        sqlx::error::ErrorKind::ForeignKeyViolation => {
            return StoreError::NotFound("a referenced agent or user does not exist".into());
        }
        _ => {}
    }
    // SQLite reports (extended) result codes as decimal numbers; PostgreSQL SQLSTATEs are 5
    // characters. Classify each by its own table.
    if let Ok(n) = code.parse::<u32>() {
        return match n & 0xff {
            // BUSY, LOCKED: another writer holds the database longer than the busy timeout.
            5 | 6 => StoreError::Unavailable(format!("SQLite database is busy: {msg}")),
            // IOERR, FULL, CANTOPEN, PROTOCOL
            10 | 13 | 14 | 15 => StoreError::Unavailable(format!("SQLite: {msg}")),
            // CORRUPT, NOTADB
            11 | 26 => StoreError::Corrupt(format!("SQLite: {msg}")),
            _ => StoreError::Other(format!("SQLite error {n}: {msg}")),
        };
    }
    let transient = code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || matches!(
            code.as_ref(),
            "57P01" | "57P02" | "57P03" // admin/crash shutdown, cannot connect now
                | "40001" | "40P01" // serialization failure, deadlock: retrying succeeds
                | "55P03" // lock not available
        );
    if transient {
        StoreError::Unavailable(format!("PostgreSQL {code}: {msg}"))
    } else if code.starts_with("22") {
        // Data exception (a NUL character, a number out of range): the value is the caller's.
        StoreError::Invalid(format!("PostgreSQL {code}: {msg}"))
    } else {
        StoreError::Other(format!("PostgreSQL {code}: {msg}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(StoreError::from(refused).is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound(_)
        ));
    }

    #[test]
    fn configuration_errors_do_not_repeat_their_text() {
        let e = sqlx::Error::Configuration("postgres://u:hunter2@db/x is invalid".into());
        let text = StoreError::from(e).to_string();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
