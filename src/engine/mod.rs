//! The backup engine: the only module that names rustic_core and object_store types.
//!
//! It backs up a policy *system* to its first repository and copies the new snapshot along the
//! system's repository list, restores, checks, applies retention and initialises repositories.
//! Every rustic_core call runs on a blocking thread (`spawn_blocking`); the storage adapter
//! blocks on the runtime handle captured before. Operations on one repository are serialised by
//! a host-wide lock (see [`repo`]). Each operation returns a typed result and a [`RunRecord`].
//!
//! With a [`LinkGate`] ([`Engine::with_link`]), writes to repositories across the branch link
//! (`same-city`, `remote`) are paced and windowed by the link policy (see [`throttle`]).

pub mod backend;
mod backup;
pub mod error;
mod maintain;
pub mod progress;
pub mod repo;
mod restore;
mod store;
pub mod throttle;

use std::sync::Arc;

use jiff::Timestamp;
use rustic_core::repofile::SnapshotFile;
use serde::Serialize;
use tokio::runtime::Handle;

pub use backup::BackupRequest;
pub use error::{AbortReason, EngineError};
pub use maintain::{
    CheckFinding, CheckReport, CheckRequest, ForgetDecision, ForgetReport, ForgetRequest,
    InitOutcome,
};
pub use restore::{Abort, RestoreReport, RestoreRequest, VerifyReport, VerifyRequest, free_bytes};
pub use throttle::{LinkGate, LinkStats};

use crate::clock::Clock;
use crate::policy::{Policy, Repository, System};
use crate::run::{RunKind, RunRecord};
use progress::Bars;
use repo::{RepoAccess, StateDir};

/// The engine: a policy, a state directory, progress output and a clock.
pub struct Engine {
    policy: Arc<Policy>,
    state: StateDir,
    bars: Bars,
    clock: Arc<dyn Clock>,
    /// The branch link's gate, applied to repositories across it; none: writes are not paced.
    link: Option<Arc<LinkGate>>,
}

/// A snapshot as shown to users and in JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub repository: String,
    pub id: String,
    pub short_id: String,
    /// For a copied snapshot: the id it has in the repository it was copied from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// The snapshot's own time (set by the writer; informative only).
    pub time: Timestamp,
    /// The start of reading the source: the conservative capture time (standards §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_start: Option<Timestamp>,
    pub host: String,
    pub system: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl SnapshotInfo {
    fn from_snapshot(repository: &str, sn: &SnapshotFile) -> Self {
        let id = sn.id.to_hex().to_string();
        SnapshotInfo {
            repository: repository.to_string(),
            short_id: id.chars().take(8).collect(),
            original: sn.original.map(|o| o.to_hex().to_string()),
            id,
            time: sn.time.timestamp(),
            backup_start: sn.summary.as_ref().map(|s| s.backup_start.timestamp()),
            host: sn.hostname.clone(),
            system: sn.label.clone(),
            tags: sn.tags.iter().cloned().collect(),
            paths: sn.paths.iter().cloned().collect(),
            files: sn.summary.as_ref().map(|s| s.total_files_processed),
            bytes: sn.summary.as_ref().map(|s| s.total_bytes_processed),
        }
    }
}

/// Runs a blocking closure off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))?
}

impl Engine {
    pub fn new(policy: Arc<Policy>, state: StateDir, bars: Bars, clock: Arc<dyn Clock>) -> Self {
        Engine {
            policy,
            state,
            bars,
            clock,
            link: None,
        }
    }

    /// Paces and windows every write to a repository across the branch link (locations
    /// `same-city` and `remote`) through `gate`. Share one gate among the engines of a host.
    pub fn with_link(mut self, gate: Arc<LinkGate>) -> Self {
        self.link = Some(gate);
        self
    }

    /// The gate that writes to `repo` go through, if it crosses the link and a gate is set.
    fn link_for(&self, repo: &Repository) -> Option<Arc<LinkGate>> {
        self.link
            .clone()
            .filter(|_| LinkGate::crosses_link(repo.location))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The policy system with this id, or an error listing the known ones.
    pub fn system(&self, id: &str) -> Result<&System, EngineError> {
        self.policy
            .system(id)
            .ok_or_else(|| EngineError::UnknownSystem {
                id: id.to_string(),
                known: join(self.policy.systems.keys().map(|k| k.to_string())),
            })
    }

    /// The policy repository with this id, or an error listing the known ones.
    pub fn repository(&self, id: &str) -> Result<&Repository, EngineError> {
        self.policy
            .repository(id)
            .ok_or_else(|| EngineError::UnknownRepository {
                id: id.to_string(),
                known: join(self.policy.repositories.keys().map(|k| k.to_string())),
            })
    }

    /// The system's repository `id`, refusing repositories the system does not use.
    fn repository_of(&self, system: &System, id: &str) -> Result<Repository, EngineError> {
        let repo = self.repository(id)?;
        if !system.repositories.iter().any(|r| r.as_str() == id) {
            return Err(EngineError::RepositoryNotOfSystem {
                repository: id.to_string(),
                system: system.id.to_string(),
                used: join(system.repositories.iter().map(|r| r.to_string())),
            });
        }
        Ok(repo.clone())
    }

    /// The repositories of a system, in its order.
    fn repositories_of(&self, system: &System) -> Vec<Repository> {
        self.policy
            .repositories_of(system)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Connects to a repository (resolves secrets; blocking).
    fn connect(&self, repo: &Repository, create_local: bool) -> ConnectFn {
        let repo = repo.clone();
        let state = self.state.clone();
        let bars = self.bars.clone();
        let handle = Handle::current();
        let link = self.link_for(&repo);
        ConnectFn(Box::new(move || {
            RepoAccess::connect_through(&repo, &state, handle, bars, create_local, link)
        }))
    }

    /// Whether the repository has been created (its config file exists). Resolves the
    /// storage credentials, not the repository password.
    pub async fn repository_exists(&self, repository: &str) -> Result<bool, EngineError> {
        let repo = self.repository(repository)?.clone();
        let connect = self.connect(&repo, false);
        blocking(move || connect.call()?.exists()).await
    }

    /// Lists snapshots: of one system (in each of its repositories, or only `repo`), or of a repository.
    pub async fn snapshots(
        &self,
        system: Option<&str>,
        repo: Option<&str>,
    ) -> Result<Vec<SnapshotInfo>, EngineError> {
        let (repos, label) = match (system, repo) {
            (Some(s), Some(r)) => {
                let sys = self.system(s)?;
                (vec![self.repository_of(sys, r)?], Some(s.to_string()))
            }
            (Some(s), None) => {
                let sys = self.system(s)?;
                (self.repositories_of(sys), Some(s.to_string()))
            }
            (None, Some(r)) => (vec![self.repository(r)?.clone()], None),
            (None, None) => (self.policy.repositories.values().cloned().collect(), None),
        };
        let mut out = Vec::new();
        for repo in repos {
            let connect = self.connect(&repo, false);
            let label = label.clone();
            let mut list = blocking(move || {
                let access = connect.call()?;
                let open = access.open()?;
                let snaps = open
                    .get_matching_snapshots(|sn| label.as_ref().is_none_or(|l| &sn.label == l))
                    .map_err(|e| access.rustic(e))?;
                Ok(snaps
                    .iter()
                    .map(|sn| SnapshotInfo::from_snapshot(access.id(), sn))
                    .collect::<Vec<_>>())
            })
            .await?;
            list.sort_by_key(|s| s.time);
            out.extend(list);
        }
        Ok(out)
    }

    /// A fresh run record for `system`.
    fn record(&self, kind: RunKind, system: Option<&System>) -> RunRecord {
        let mut record = RunRecord::start(
            kind,
            uuid::Uuid::new_v4().to_string(),
            system.map_or_else(local_hostname, |s| s.host.clone()),
            self.now(),
        );
        if let Some(system) = system {
            record.system = Some(system.id.to_string());
            record.site = Some(system.site.to_string());
            record.tier = Some(system.tier.to_string());
        }
        record
    }

    /// Closes a run: derives its outcome (unless already decided), stamps the end time and
    /// journals it. Every run, failed ones included, ends here, so no evidence is dropped.
    fn finish(&self, record: &mut RunRecord, derive: bool) {
        if derive {
            record.outcome = record.derive_outcome();
        }
        record.finished_at = self.now();
        if let Err(e) = self.journal(record) {
            tracing::warn!("could not journal run record {}: {e}", record.run_id);
        }
    }

    /// Stores a finished run record under `<state>/runs/` (the local journal of evidence).
    pub fn journal(&self, record: &RunRecord) -> Result<std::path::PathBuf, EngineError> {
        let dir = self.state.runs();
        let io = |context: String| move |source| EngineError::Io { context, source };
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let name = format!(
            "{}-{}.json",
            record.started_at.strftime("%Y%m%dT%H%M%SZ"),
            record.run_id
        );
        let path = dir.join(name);
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| EngineError::Internal(format!("cannot encode run record: {e}")))?;
        std::fs::write(&tmp, body).map_err(io(format!("cannot write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io(format!("cannot write {}", path.display())))?;
        Ok(path)
    }
}

/// A deferred, blocking connection to one repository.
struct ConnectFn(Box<dyn FnOnce() -> Result<RepoAccess, EngineError> + Send>);

impl ConnectFn {
    fn call(self) -> Result<RepoAccess, EngineError> {
        (self.0)()
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}

/// This machine's host name, for records of runs not tied to a system.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Converts a rustic time to a timestamp.
fn ts(z: &jiff::Zoned) -> Timestamp {
    z.timestamp()
}
