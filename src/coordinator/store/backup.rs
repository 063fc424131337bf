//! An online, consistent copy of a SQLite coordinator database (`lifeboat coordinator
//! backup-db`), and the check that a copy is a usable coordinator database.
//!
//! The copy is SQLite's `VACUUM INTO`: one read transaction on the source, so it is a consistent
//! snapshot even while the coordinator keeps writing (WAL lets its writers go on meanwhile), and
//! the result is a compact, standalone file in rollback-journal mode. This module neither
//! migrates nor writes the source (a newer binary must not migrate a database under an older
//! running coordinator), creates no file of its own (the caller hands it an empty file of the
//! right mode, and moves the verified copy into place), and has nothing to say about PostgreSQL,
//! whose copies are `pg_dump`'s business.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::StoreError;

/// The tables whose rows a copy reports, so an operator sees at a glance that it holds the fleet.
const COUNTED_TABLES: [&str; 5] = ["agents", "runs", "users", "audit_log", "drills"];

/// What a verified copy holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatabaseCopy {
    /// Migrations recorded as applied in the copy (as many as in the source).
    pub migrations: u64,
    /// The newest of them (its version number, e.g. 5 for `0005_…`).
    pub latest_migration: i64,
    /// Rows of the main tables, by table name.
    pub rows: BTreeMap<String, u64>,
}

/// Copies the SQLite database at `url` (`sqlite:///path/coordinator.db`) into `into`, an
/// existing *empty* file, then verifies the copy (see [`verify_sqlite_copy`]) against the source's
/// applied migrations. Safe while a coordinator uses the source.
pub async fn copy_sqlite(url: &str, into: &Path) -> Result<DatabaseCopy, StoreError> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Invalid(
            "an in-memory database has nothing to copy".into(),
        ));
    }
    let source = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::Invalid("malformed sqlite: URL".into()))?
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    let file = source.get_filename().to_path_buf();
    if !file.is_file() {
        return Err(StoreError::NotFound(format!(
            "no SQLite database at {} (check database in coordinator.toml)",
            file.display()
        )));
    }
    let target = into
        .to_str()
        .ok_or_else(|| StoreError::Invalid(format!("{} is not a UTF-8 path", into.display())))?;
    let mut conn = SqliteConnection::connect_with(&source).await?;
    let (migrations, latest) = applied_migrations(&mut conn).await?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await;
    conn.close().await.ok();
    copied?;
    let copy = verify_sqlite_copy(into).await?;
    if (copy.migrations, copy.latest_migration) != (migrations, latest) {
        return Err(StoreError::Corrupt(format!(
            "the copy records {} migrations (latest {}), the source {migrations} (latest {latest})",
            copy.migrations, copy.latest_migration
        )));
    }
    Ok(copy)
}

/// Opens the SQLite file at `path` read-only and checks that it is an intact coordinator
/// database: `PRAGMA quick_check` passes and the migrations table records at least one applied
/// migration and none failed. Counts the rows of the main tables.
pub async fn verify_sqlite_copy(path: &Path) -> Result<DatabaseCopy, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Unavailable(m) | StoreError::Other(m) => {
                StoreError::Corrupt(format!("the copy does not open as SQLite: {m}"))
            }
            other => other,
        })?;
    let checked = check_copy(&mut conn).await;
    conn.close().await.ok();
    checked
}

async fn check_copy(conn: &mut SqliteConnection) -> Result<DatabaseCopy, StoreError> {
    let quick: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check")
        .fetch_all(&mut *conn)
        .await?;
    if quick.len() != 1 || quick[0].0 != "ok" {
        let problems: Vec<String> = quick.into_iter().take(5).map(|(p,)| p).collect();
        return Err(StoreError::Corrupt(format!(
            "quick_check of the copy: {}",
            problems.join("; ")
        )));
    }
    let has_migrations: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if has_migrations.0 == 0 {
        return Err(StoreError::Corrupt(
            "the copy has no migrations table: it is not a coordinator database".into(),
        ));
    }
    let failed: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
        .fetch_one(&mut *conn)
        .await?;
    if failed.0 > 0 {
        return Err(StoreError::Corrupt(format!(
            "the copy records {} failed migration(s)",
            failed.0
        )));
    }
    let (migrations, latest_migration) = applied_migrations(conn).await?;
    if migrations == 0 {
        return Err(StoreError::Corrupt(
            "the copy records no applied migration".into(),
        ));
    }
    let mut rows = BTreeMap::new();
    for table in COUNTED_TABLES {
        // Table names come from the constant above, never from input.
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
        rows.insert(table.to_string(), u64::try_from(n).unwrap_or_default());
    }
    Ok(DatabaseCopy {
        migrations,
        latest_migration,
        rows,
    })
}

/// Applied migrations: how many, and the newest version (0 when none).
async fn applied_migrations(conn: &mut SqliteConnection) -> Result<(u64, i64), StoreError> {
    let (count, latest): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match StoreError::from(e) {
        StoreError::Other(m) if m.contains("no such table") => StoreError::Invalid(
            "the database has no migrations table: is this a lifeboat coordinator database?".into(),
        ),
        other => other,
    })?;
    Ok((u64::try_from(count).unwrap_or_default(), latest))
}
