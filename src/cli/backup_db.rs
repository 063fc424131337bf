//! `lifeboat coordinator backup-db --to FILE`: a verified, consistent copy of the coordinator's
//! SQLite database, taken while the coordinator runs.
//!
//! It owns the file handling around the copy: the destination must not exist, the copy is
//! written to a hidden sibling created empty with mode 0600 (the database holds token and
//! password hashes and the audit log), verified by the store, synced, and only then linked into
//! place, so `--to` is either a complete verified copy or absent. It does not open the database
//! through [`Store::open`](crate::coordinator::store::Store::open) (that would migrate it under a
//! running coordinator) and does not back up PostgreSQL: that is refused with the `pg_dump` line
//! to use instead.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::coordinator::config::CoordinatorConfig;
use crate::coordinator::store::{self, DatabaseCopy, StoreError};
use crate::exit::Exit;
use crate::policy::Problem;

/// Why no copy was made.
#[derive(Debug, thiserror::Error)]
pub enum BackupDbError {
    #[error("{0}")]
    Config(Problem),
    #[error(
        "the coordinator's database is PostgreSQL: back it up with pg_dump, e.g. \
         `pg_dump --format=custom --file=lifeboat.dump '<the database URL of coordinator.toml>'` \
         (the password from PGPASSWORD or ~/.pgpass, as for the coordinator); \
         backup-db copies SQLite databases only"
    )]
    Postgres,
    #[error("{} exists already: choose a new file name (backup-db never overwrites)", .0.display())]
    Exists(PathBuf),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("copying the database: {0}")]
    Store(#[from] StoreError),
}

impl BackupDbError {
    pub fn exit(&self) -> Exit {
        match self {
            BackupDbError::Config(_) => Exit::Policy,
            BackupDbError::Postgres | BackupDbError::Exists(_) => Exit::Refused,
            BackupDbError::Io { .. } => Exit::Failure,
            BackupDbError::Store(e) => match e {
                StoreError::Unavailable(_) => Exit::Unreachable,
                StoreError::NotFound(_) => Exit::NotFound,
                StoreError::Corrupt(_) => Exit::Integrity,
                StoreError::Invalid(_) => Exit::Policy,
                StoreError::Conflict(_) | StoreError::Other(_) => Exit::Failure,
            },
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            BackupDbError::Config(_) => "config",
            BackupDbError::Postgres => "postgres",
            BackupDbError::Exists(_) => "exists",
            BackupDbError::Io { .. } => "io",
            BackupDbError::Store(_) => "store",
        }
    }
}

/// The outcome printed on success.
#[derive(Debug, Serialize)]
pub struct BackupDbReport {
    /// Where the copy is.
    pub to: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// What it holds.
    #[serde(flatten)]
    pub copy: DatabaseCopy,
}

/// Copies the database named in `config` to `to`.
pub async fn backup_db(config: &Path, to: &Path) -> Result<BackupDbReport, BackupDbError> {
    let cfg = CoordinatorConfig::load(config).map_err(BackupDbError::Config)?;
    if !cfg.database.starts_with("sqlite:") {
        return Err(BackupDbError::Postgres);
    }
    if to.symlink_metadata().is_ok() {
        return Err(BackupDbError::Exists(to.to_path_buf()));
    }
    let partial = partial_path(to)?;
    // A partial file left by an interrupted run is ours to replace.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BackupDbError::Io {
                context: format!("cannot remove the stale {}", partial.display()),
                source,
            });
        }
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|source| BackupDbError::Io {
            context: format!(
                "cannot create {} (does the directory of --to exist and is it writable?)",
                partial.display()
            ),
            source,
        })?;
    let result = copy_and_place(&cfg.database, &partial, to).await;
    // Whatever happened, the partial file does not stay (after success it is a second link).
    std::fs::remove_file(&partial).ok();
    result
}

async fn copy_and_place(
    database: &str,
    partial: &Path,
    to: &Path,
) -> Result<BackupDbReport, BackupDbError> {
    let copy = store::copy_sqlite(database, partial).await?;
    let io = |context: String| move |source| BackupDbError::Io { context, source };
    let file =
        std::fs::File::open(partial).map_err(io(format!("reopening {}", partial.display())))?;
    file.sync_all()
        .map_err(io(format!("syncing {}", partial.display())))?;
    let bytes = file
        .metadata()
        .map_err(io(format!("reading {}", partial.display())))?
        .len();
    // A hard link refuses an existing destination, so a file created at `to` meanwhile is never
    // replaced.
    std::fs::hard_link(partial, to).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            BackupDbError::Exists(to.to_path_buf())
        } else {
            BackupDbError::Io {
                context: format!("cannot create {}", to.display()),
                source,
            }
        }
    })?;
    // The new directory entry is durable too (best effort: a directory may refuse fsync).
    if let Some(d) = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .and_then(|d| std::fs::File::open(d).ok())
    {
        d.sync_all().ok();
    }
    Ok(BackupDbReport {
        to: to.to_path_buf(),
        bytes,
        copy,
    })
}

/// `DIR/.NAME.partial`: beside the destination, so the final link stays on one file system.
fn partial_path(to: &Path) -> Result<PathBuf, BackupDbError> {
    let name = to.file_name().ok_or_else(|| BackupDbError::Io {
        context: format!("{} does not name a file", to.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let mut hidden = std::ffi::OsString::from(".");
    hidden.push(name);
    hidden.push(".partial");
    Ok(to.with_file_name(hidden))
}

/// The text printed after a successful copy.
pub fn render(report: &BackupDbReport) -> String {
    let rows: Vec<String> = report
        .copy
        .rows
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    format!(
        "copied the coordinator database to {} ({} bytes), verified: quick_check ok, \
         {} migrations (latest {}); rows: {}",
        report.to.display(),
        report.bytes,
        report.copy.migrations,
        report.copy.latest_migration,
        rows.join(", ")
    )
}
