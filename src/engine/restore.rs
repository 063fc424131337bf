//! Restore of a system's snapshot (whole or a sub-path) to a target directory, with verification.
//!
//! The plan comes first (what would be written, how many bytes): `--dry-run` stops there.
//! Verification re-reads every restored file and compares it blob by blob with the snapshot's
//! content hashes (rustic's restore planner in verify mode): a file that differs, or is missing,
//! fails the restore.

use std::path::PathBuf;
use std::time::Instant;

use rustic_core::{LocalDestination, LsOptions, RestoreOptions};
use serde::Serialize;

use super::{Engine, EngineError, SnapshotInfo, blocking};
use crate::run::{Outcome, RepoResult, RunKind, RunRecord};

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub system: String,
    /// Repository to restore from (default: the system's first repository).
    pub repository: Option<String>,
    /// `latest` or a snapshot id (prefix).
    pub snapshot: String,
    /// Absolute path inside the snapshot to restore (default: everything).
    pub path: Option<PathBuf>,
    pub target: PathBuf,
    pub verify: bool,
    pub dry_run: bool,
    /// Allow a non-empty target (files are overwritten; nothing is deleted).
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub snapshot: SnapshotInfo,
    pub target: PathBuf,
    pub dry_run: bool,
    pub files_to_restore: u64,
    pub files_unchanged: u64,
    pub dirs_to_create: u64,
    pub bytes_to_restore: u64,
    pub bytes_matched: u64,
    /// Present when `--verify` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_files: Option<u64>,
    pub seconds: f64,
    pub run: RunRecord,
}

impl Engine {
    pub async fn restore(&self, req: &RestoreRequest) -> Result<RestoreReport, EngineError> {
        let system = self.system(&req.system)?.clone();
        let repo = match &req.repository {
            Some(id) => self.repository_of(&system, id)?,
            None => self
                .repositories_of(&system)
                .into_iter()
                .next()
                .ok_or_else(|| EngineError::Internal("system has no repository".into()))?,
        };
        if !req.overwrite && !req.dry_run && dir_has_entries(&req.target) {
            return Err(EngineError::TargetNotEmpty {
                path: req.target.clone(),
            });
        }
        let mut record = self.record(RunKind::Restore, Some(&system));
        let connect = self.connect(&repo, false);
        let req2 = req.clone();
        let label = system.id.to_string();
        let started = Instant::now();
        let outcome = blocking(move || {
            let req = req2;
            let access = connect.call()?;
            access.limit_read_memory();
            super::backend::release_freed_memory_at_once();
            let _lock = access.lock()?;
            let open = access.open()?;
            let repo = open.to_indexed().map_err(|e| access.rustic(e))?;
            let not_found = || EngineError::SnapshotNotFound {
                repository: access.id().to_string(),
                system: label.clone(),
                spec: req.snapshot.clone(),
            };
            let mut snaps = repo
                .get_matching_snapshots(|sn| sn.label == label)
                .map_err(|e| access.rustic(e))?;
            snaps.sort_by(|a, b| a.time.cmp(&b.time));
            let snap = if req.snapshot == "latest" {
                snaps.pop().ok_or_else(not_found)?
            } else {
                // A copy keeps the source snapshot's id as `original`: either id finds it.
                let spec = req.snapshot.to_ascii_lowercase();
                let mut found: Vec<_> = snaps
                    .into_iter()
                    .filter(|sn| {
                        sn.id.to_hex().starts_with(&spec)
                            || sn.original.is_some_and(|o| o.to_hex().starts_with(&spec))
                    })
                    .collect();
                match found.len() {
                    0 => return Err(not_found()),
                    1 => found.remove(0),
                    n => {
                        return Err(EngineError::Config {
                            repository: access.id().to_string(),
                            message: format!("snapshot id prefix \"{spec}\" is ambiguous ({n} snapshots); give more characters"),
                        });
                    }
                }
            };
            let inner = req.path.as_ref().map_or_else(String::new, |p| p.display().to_string());
            let node = repo
                .node_from_snapshot_and_path(&snap, &inner)
                .map_err(|e| access.rustic(e))?;
            let ls = LsOptions::default();
            if !req.dry_run {
                std::fs::create_dir_all(&req.target).map_err(|source| EngineError::Io {
                    context: format!("cannot create {}", req.target.display()),
                    source,
                })?;
            }
            let dest = LocalDestination::new(&req.target.display().to_string(), !req.dry_run, !node.is_dir())
                .map_err(|e| access.rustic(e))?;
            let opts = RestoreOptions::default();
            let plan = repo
                .prepare_restore(&opts, repo.ls(&node, &ls).map_err(|e| access.rustic(e))?, &dest, req.dry_run)
                .map_err(|e| access.rustic(e))?;
            let info = SnapshotInfo::from_snapshot(access.id(), &snap);
            let stats = (
                plan.stats.files.restore + plan.stats.files.modify,
                plan.stats.files.unchanged + plan.stats.files.verified,
                plan.stats.dirs.restore,
                plan.restore_size,
                plan.matched_size,
            );
            if req.dry_run {
                return Ok((info, stats, None));
            }
            repo.restore(plan, &opts, repo.ls(&node, &ls).map_err(|e| access.rustic(e))?, &dest)
                .map_err(|e| access.rustic(e))?;
            let verified = if req.verify {
                let vopts = RestoreOptions::default().verify_existing(true);
                let check = repo
                    .prepare_restore(&vopts, repo.ls(&node, &ls).map_err(|e| access.rustic(e))?, &dest, true)
                    .map_err(|e| access.rustic(e))?;
                let bad = check.stats.files.restore + check.stats.files.modify;
                if bad > 0 {
                    return Err(EngineError::VerifyFailed {
                        mismatched: bad,
                        examples: format!("{} missing, {} with different content", check.stats.files.restore, check.stats.files.modify),
                    });
                }
                Some(check.stats.files.verified + check.stats.files.unchanged)
            } else {
                None
            };
            Ok((info, stats, verified))
        })
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let mut result = RepoResult {
            repository: repo.id.to_string(),
            location: repo.location.to_string(),
            immutable: repo.immutable,
            outcome: Outcome::Success,
            available_at: None,
            snapshots: Vec::new(),
            bytes_added: 0,
            seconds,
            error: None,
        };
        match outcome {
            Ok((info, (files, unchanged, dirs, bytes, matched), verified)) => {
                result.snapshots = vec![info.id.clone()];
                record.snapshot_id = Some(info.id.clone());
                record.capture_time = info.backup_start.or(Some(info.time));
                record.repositories.push(result);
                if req.dry_run {
                    // A plan is not a run: nothing to journal.
                    record.outcome = record.derive_outcome();
                    record.finished_at = self.now();
                } else {
                    self.finish(&mut record, true);
                }
                Ok(RestoreReport {
                    snapshot: info,
                    target: req.target.clone(),
                    dry_run: req.dry_run,
                    files_to_restore: files,
                    files_unchanged: unchanged,
                    dirs_to_create: dirs,
                    bytes_to_restore: bytes,
                    bytes_matched: matched,
                    verified_files: verified,
                    seconds,
                    run: record,
                })
            }
            Err(e) => {
                result.outcome = Outcome::Failed;
                result.error = Some(e.to_run_error());
                record.repositories.push(result);
                record.error = Some(e.to_run_error());
                if !req.dry_run {
                    self.finish(&mut record, true);
                }
                Err(e)
            }
        }
    }
}

fn dir_has_entries(path: &std::path::Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}
