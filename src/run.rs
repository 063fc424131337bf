//! Run records: the evidence of every backup, copy, check, forget, restore and init.
//!
//! A [`RunRecord`] is what the coordinator later builds RPO figures on (standards §3.1): the
//! capture time of the data (not the end of the backup), and for each repository the time the
//! snapshot became available there. This module is plain data: no I/O, no clock, no rustic types.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    Init,
    Backup,
    Copy,
    Check,
    Forget,
    Restore,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Everything the run was asked to do succeeded.
    Success,
    /// Some of it succeeded (e.g. backed up locally, but a copy to off-site failed).
    Partial,
    /// Nothing usable came out of it.
    Failed,
}

/// A classified failure: `kind` is stable and machine-readable, `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunError {
    pub kind: String,
    pub message: String,
}

/// What happened at one repository during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepoResult {
    pub repository: String,
    /// `local`, `same-site`, `same-city` or `remote`.
    pub location: String,
    pub immutable: bool,
    pub outcome: Outcome,
    /// When the run's snapshot became complete and durable at this repository (t_avail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<Timestamp>,
    /// Snapshot ids written to this repository by this run (a copy may catch up older ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<String>,
    /// Bytes added to the repository (after deduplication and compression).
    pub bytes_added: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
}

/// Statistics of the data read from the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceStats {
    pub files: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// How deep a check went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckScope {
    /// Pack contents were read (all of them, or `subset`).
    pub read_data: bool,
    /// The share of packs read, as given to rustic (`n/m`, `daily/week`, `10%` …); none for
    /// all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

/// One execution, as reported to the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// Unique id; also the idempotency key when the record is delivered.
    pub run_id: String,
    pub kind: RunKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The point in time the snapshot's data represents (standards §3.1): the start of the
    /// pre-hooks when there are any (a dump taken then), otherwise the start of reading files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepoResult>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// For a check: how deep it went (integrity-check coverage is built on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckScope>,
    /// Things that did not fail the run but deserve attention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub lifeboat_version: String,
}

impl RunRecord {
    /// A record for a run that starts now; fill in the rest as it goes.
    pub fn start(kind: RunKind, run_id: String, host: String, started_at: Timestamp) -> Self {
        RunRecord {
            run_id,
            kind,
            system: None,
            host,
            site: None,
            tier: None,
            started_at,
            finished_at: started_at,
            capture_time: None,
            snapshot_id: None,
            source: None,
            repositories: Vec::new(),
            outcome: Outcome::Failed,
            error: None,
            check: None,
            warnings: Vec::new(),
            lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The run's outcome derived from its repositories: success when all succeeded, partial when
    /// some did, failed when none did (or when there were none and an error was recorded).
    pub fn derive_outcome(&self) -> Outcome {
        let ok = self
            .repositories
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .count();
        match (ok, self.repositories.len(), &self.error) {
            (_, 0, None) => Outcome::Success,
            (_, 0, Some(_)) => Outcome::Failed,
            (ok, n, None) if ok == n => Outcome::Success,
            (0, _, _) => Outcome::Failed,
            _ => Outcome::Partial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(outcome: Outcome) -> RepoResult {
        RepoResult {
            repository: "r".into(),
            location: "local".into(),
            immutable: false,
            outcome,
            available_at: None,
            snapshots: vec![],
            bytes_added: 0,
            seconds: 0.0,
            error: None,
        }
    }

    #[test]
    fn outcome_follows_repositories() {
        let t = Timestamp::UNIX_EPOCH;
        let err = RunError {
            kind: "x".into(),
            message: "y".into(),
        };
        let cases = [
            (vec![], None, Outcome::Success),
            (vec![], Some(err.clone()), Outcome::Failed),
            (
                vec![Outcome::Success, Outcome::Success],
                None,
                Outcome::Success,
            ),
            (
                vec![Outcome::Success, Outcome::Failed],
                None,
                Outcome::Partial,
            ),
            (
                vec![Outcome::Failed, Outcome::Failed],
                None,
                Outcome::Failed,
            ),
            (vec![Outcome::Success], Some(err), Outcome::Partial),
        ];
        for (repos, error, expected) in cases {
            let mut r = RunRecord::start(RunKind::Backup, "id".into(), "h".into(), t);
            r.repositories = repos.into_iter().map(repo).collect();
            r.error = error;
            assert_eq!(r.derive_outcome(), expected, "{r:?}");
        }
    }
}
