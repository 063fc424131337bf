//! Typed engine errors. Each says what went wrong at which repository and what to do next; none
//! contains a secret. They are mapped to exit codes once, in `crate::exit`.

use std::fmt;
use std::path::PathBuf;

use jiff::Timestamp;
use rustic_core::RusticError;

use super::backend::{StoreError, StoreErrorKind, store_error_of};
use crate::secret::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown system \"{id}\"; known systems: {known}")]
    UnknownSystem { id: String, known: String },

    #[error("unknown repository \"{id}\"; known repositories: {known}")]
    UnknownRepository { id: String, known: String },

    #[error("repository {repository} is not used by system {system}; its repositories are: {used}")]
    RepositoryNotOfSystem {
        repository: String,
        system: String,
        used: String,
    },

    #[error("repository {repository}: {message}")]
    Config { repository: String, message: String },

    #[error("repository {repository}: cannot get the {what}: {source}")]
    Secret {
        repository: String,
        what: String,
        #[source]
        source: SecretError,
    },

    #[error(
        "repository {repository} at {location} is not initialised; run `lifeboat init --repo {repository}` (or `--system ID`)"
    )]
    NotInitialised {
        repository: String,
        location: String,
    },

    #[error(
        "repository {repository}: the password does not open it (wrong password or wrong repository); check its password source"
    )]
    WrongPassword { repository: String },

    #[error(
        "repository {repository}: storage unreachable: {message}; check the endpoint and the network, then retry"
    )]
    Unreachable { repository: String, message: String },

    #[error(
        "repository {repository}: access denied by the storage: {message}; check the credentials and their permissions"
    )]
    AccessDenied { repository: String, message: String },

    #[error("repository {repository}: {message}")]
    Storage { repository: String, message: String },

    #[error("repository {repository}: {reason}")]
    Aborted {
        repository: String,
        reason: AbortReason,
    },

    #[error(
        "repository {repository}: no snapshot matches \"{spec}\" for system {system}; list them with `lifeboat snapshots --system {system}`"
    )]
    SnapshotNotFound {
        repository: String,
        system: String,
        spec: String,
    },

    #[error("system {system}: source path {} does not exist; fix the system's paths in the policy or restore the directory", path.display())]
    SourceMissing { system: String, path: PathBuf },

    #[error("system {system}: {hook} hook `{program}` {message}")]
    Hook {
        system: String,
        hook: String,
        program: String,
        message: String,
    },

    #[error(
        "repository {repository}: integrity check found {errors} error(s): {summary}; run `lifeboat check --repo {repository} --read-data` and restore the damaged packs from another copy"
    )]
    Integrity {
        repository: String,
        errors: usize,
        summary: String,
    },

    #[error(
        "restore verification failed: {mismatched} file(s) differ from the snapshot ({examples})"
    )]
    VerifyFailed { mismatched: u64, examples: String },

    #[error("restore target {} is not empty; choose an empty directory or pass --overwrite", path.display())]
    TargetNotEmpty { path: PathBuf },

    #[error(
        "restore target {}: the file system is full ({} needed, {} free{}); free space there or choose another target",
        path.display(), bytesize::ByteSize::b(*needed), bytesize::ByteSize::b(*free),
        if *during { "; the restore stopped part way, remove what it wrote" } else { "; nothing was written" }
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        free: u64,
        /// Whether the file system filled up during the restore (rather than before it).
        during: bool,
    },

    #[error("repository {repository}: {message}")]
    Rustic { repository: String, message: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("internal error: {0}")]
    Internal(String),
}

/// Why an operation was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// On request (shutdown, a cancelled job).
    Requested,
    /// The branch link's transfer window closed; traffic may flow again at `reopens`.
    WindowClosed { reopens: Option<Timestamp> },
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::Requested => f.write_str("operation aborted"),
            AbortReason::WindowClosed { reopens } => {
                f.write_str("stopped: the off-site transfer window closed")?;
                if let Some(reopens) = reopens {
                    write!(f, " (it reopens at {reopens})")?;
                }
                f.write_str(
                    "; the next copy resumes where this one stopped, without re-sending what already arrived",
                )
            }
        }
    }
}

impl EngineError {
    /// Converts a rustic_core error met while working on `repository`.
    #[allow(clippy::boxed_local)] // rustic_core hands its errors out boxed
    pub fn from_rustic(repository: &str, err: Box<RusticError>) -> EngineError {
        let repository = repository.to_string();
        if err.is_incorrect_password() {
            return EngineError::WrongPassword { repository };
        }
        if let Some(store) = store_error_of(&*err) {
            return EngineError::from_store(&repository, store);
        }
        let log = err.display_log();
        let message = log
            .strip_prefix("Error: ")
            .unwrap_or(&log)
            .replace('\n', " ");
        EngineError::Rustic {
            repository,
            message,
        }
    }

    /// Converts a classified storage failure met while working on `repository`.
    pub fn from_store(repository: &str, store: &StoreError) -> EngineError {
        let repository = repository.to_string();
        let message = store.message.clone();
        match store.kind {
            StoreErrorKind::Unreachable => EngineError::Unreachable {
                repository,
                message,
            },
            StoreErrorKind::AccessDenied => EngineError::AccessDenied {
                repository,
                message,
            },
            StoreErrorKind::Aborted => EngineError::Aborted {
                repository,
                reason: AbortReason::Requested,
            },
            StoreErrorKind::WindowClosed { reopens } => EngineError::Aborted {
                repository,
                reason: AbortReason::WindowClosed { reopens },
            },
            StoreErrorKind::NotFound | StoreErrorKind::Other => EngineError::Storage {
                repository,
                message,
            },
        }
    }

    /// A stable machine-readable name for run records and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::UnknownSystem { .. } => "unknown-system",
            EngineError::UnknownRepository { .. } => "unknown-repository",
            EngineError::RepositoryNotOfSystem { .. } => "repository-not-of-system",
            EngineError::Config { .. } => "config",
            EngineError::Secret { .. } => "password-source",
            EngineError::NotInitialised { .. } => "not-initialised",
            EngineError::WrongPassword { .. } => "wrong-password",
            EngineError::Unreachable { .. } => "unreachable",
            EngineError::AccessDenied { .. } => "access-denied",
            EngineError::Storage { .. } => "storage",
            EngineError::Aborted {
                reason: AbortReason::WindowClosed { .. },
                ..
            } => "window-closed",
            EngineError::Aborted { .. } => "aborted",
            EngineError::SnapshotNotFound { .. } => "snapshot-not-found",
            EngineError::SourceMissing { .. } => "source-missing",
            EngineError::Hook { .. } => "hook-failed",
            EngineError::Integrity { .. } => "integrity",
            EngineError::VerifyFailed { .. } => "verify-failed",
            EngineError::TargetNotEmpty { .. } => "target-not-empty",
            EngineError::NoSpace { .. } => "no-space",
            EngineError::Rustic { .. } => "repository-error",
            EngineError::Io { .. } => "io",
            EngineError::Internal(_) => "internal",
        }
    }

    pub fn to_run_error(&self) -> crate::run::RunError {
        crate::run::RunError {
            kind: self.kind().to_string(),
            message: self.to_string(),
        }
    }
}
