//! Exit codes: the one place errors become numbers. Documented in the README; scripts rely on them.

use crate::engine::EngineError;
use crate::run::Outcome;

/// Every exit code `lifeboat` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything succeeded.
    Ok = 0,
    /// An unexpected failure (a bug or an I/O error outside the repository).
    Failure = 1,
    /// The command line was wrong (clap's own code).
    Usage = 2,
    /// The policy or a configuration file is invalid.
    Policy = 3,
    /// A password or credential is missing, wrong or refused by the storage.
    Credentials = 4,
    /// The storage could not be reached (network, DNS, timeouts) or failed.
    Unreachable = 5,
    /// An integrity problem: check found errors, or restore verification failed.
    Integrity = 6,
    /// Something named does not exist: system, repository, snapshot, uninitialised repository.
    NotFound = 7,
    /// Partly done: e.g. backed up locally but a copy to another repository failed.
    Partial = 8,
    /// A hook failed (the backup was not made, or a post hook failed).
    Hook = 9,
    /// A restore target is not empty or lacks the space, or a source path is missing.
    Refused = 10,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code for an engine error.
    pub fn of(err: &EngineError) -> Exit {
        use EngineError as E;
        match err {
            E::UnknownSystem { .. }
            | E::UnknownRepository { .. }
            | E::RepositoryNotOfSystem { .. }
            | E::NotInitialised { .. }
            | E::SnapshotNotFound { .. } => Exit::NotFound,
            E::Config { .. } => Exit::Policy,
            E::Secret { .. } | E::WrongPassword { .. } | E::AccessDenied { .. } => {
                Exit::Credentials
            }
            E::Unreachable { .. } | E::Storage { .. } | E::Aborted { .. } => Exit::Unreachable,
            E::Integrity { .. } | E::VerifyFailed { .. } => Exit::Integrity,
            E::Hook { .. } => Exit::Hook,
            E::SourceMissing { .. } | E::TargetNotEmpty { .. } | E::NoSpace { .. } => Exit::Refused,
            E::Rustic { .. } | E::Io { .. } | E::Internal(_) => Exit::Failure,
        }
    }

    /// The exit code for a finished run: its error's code when it failed, `Partial` when only
    /// part of it succeeded.
    pub fn of_run(outcome: Outcome, error: Option<&crate::run::RunError>) -> Exit {
        match outcome {
            Outcome::Success => Exit::Ok,
            Outcome::Partial => Exit::Partial,
            Outcome::Failed => error.map_or(Exit::Failure, |e| Exit::of_kind(&e.kind)),
        }
    }

    /// The exit code for an error kind recorded in a run record (see `EngineError::kind`).
    pub fn of_kind(kind: &str) -> Exit {
        match kind {
            "unknown-system"
            | "unknown-repository"
            | "repository-not-of-system"
            | "not-initialised"
            | "snapshot-not-found" => Exit::NotFound,
            "config" => Exit::Policy,
            "password-source" | "wrong-password" | "access-denied" => Exit::Credentials,
            "unreachable" | "storage" | "aborted" | "window-closed" | "interrupted" => {
                Exit::Unreachable
            }
            "integrity" | "verify-failed" => Exit::Integrity,
            "hook-failed" => Exit::Hook,
            "source-missing" | "target-not-empty" | "no-space" => Exit::Refused,
            _ => Exit::Failure,
        }
    }
}
