//! Restore of a system's snapshot (whole or a sub-path) to a target directory, with verification.
//!
//! The plan comes first (what would be written, how many bytes): `--dry-run` stops there.
//! Verification re-reads every restored file and compares it blob by blob with the snapshot's
//! content hashes (rustic's restore planner in verify mode): a file that differs, or is missing,
//! fails the restore. [`Engine::verify_restored`] does only that, on a directory restored
//! earlier; [`Engine::find_snapshot`] only looks a snapshot up (a drill's readiness probe).
//!
//! An [`Abort`] stops a running restore: its repository's storage calls fail from then on, and
//! rustic_core's restore (patched under `vendor/`, "restore errors") returns its first error:
//! `aborted` when an abort was asked for, `integrity` when the data did not decrypt or match its
//! hash, `no-space` when the target's file system filled up. A target's free space is checked
//! against the plan before anything is written. A panic left in rustic_core is still caught and
//! classified the same way.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{LocalDestination, LsOptions, RestoreOptions};
use serde::Serialize;

use super::error::AbortReason;
use super::{Engine, EngineError, SnapshotInfo, blocking};
use crate::run::{Outcome, RepoResult, RunKind, RunRecord};

/// Stops restores, verifications and look-ups it is given to: once [`Abort::abort`] is called,
/// every storage call of their repositories fails, so rustic_core's work ends early. Cheap to
/// clone; clones share the state.
#[derive(Clone, Default)]
pub struct Abort(Arc<Mutex<AbortState>>);

#[derive(Default)]
struct AbortState {
    requested: bool,
    /// The abort flags of the storage backends opened under this handle.
    flags: Vec<Arc<AtomicBool>>,
}

impl Abort {
    /// Asks every operation under this handle to stop (now and whenever one starts later).
    pub fn abort(&self) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.requested = true;
        for f in &st.flags {
            f.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_requested(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).requested
    }

    /// Ties a backend's abort flag to this handle.
    fn register(&self, flag: Arc<AtomicBool>) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if st.requested {
            flag.store(true, Ordering::Relaxed);
        }
        st.flags.push(flag);
    }
}

impl std::fmt::Debug for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Abort")
            .field("requested", &self.is_requested())
            .finish()
    }
}

/// What [`Engine::verify_restored`] compares: `target` (restored earlier) against the snapshot.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub system: String,
    /// Repository the snapshot is read from (default: the system's first repository).
    pub repository: Option<String>,
    /// A snapshot id (prefix; the `original` id of a copy finds it too) or `latest`.
    pub snapshot: String,
    /// The sub-path of the snapshot that was restored (default: everything).
    pub path: Option<PathBuf>,
    pub target: PathBuf,
}

/// A verification that found every file of the snapshot in place with the right content.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub snapshot: SnapshotInfo,
    pub target: PathBuf,
    /// Files read and compared with the snapshot's content hashes.
    pub verified_files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    pub seconds: f64,
}

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
        self.restore_until(req, &Abort::default()).await
    }

    /// [`Engine::restore`], stopped early (`aborted`) when `abort` is triggered.
    pub async fn restore_until(
        &self,
        req: &RestoreRequest,
        abort: &Abort,
    ) -> Result<RestoreReport, EngineError> {
        let system = self.system(&req.system)?.clone();
        let repo = self.restore_source(&system, req.repository.as_deref())?;
        if !req.overwrite && !req.dry_run && dir_has_entries(&req.target) {
            return Err(EngineError::TargetNotEmpty {
                path: req.target.clone(),
            });
        }
        let mut record = self.record(RunKind::Restore, Some(&system));
        let connect = self.connect(&repo, false);
        let req2 = req.clone();
        let label = system.id.to_string();
        let abort = abort.clone();
        let started = Instant::now();
        let outcome = blocking(move || {
            let req = req2;
            let access = connect.call()?;
            abort.register(access.abort_flag());
            access.limit_read_memory();
            super::backend::release_freed_memory_at_once();
            let _lock = access.lock()?;
            let open = access.open()?;
            let repo = open.to_indexed().map_err(|e| access.rustic(e))?;
            let snaps = repo
                .get_matching_snapshots(|sn| sn.label == label)
                .map_err(|e| access.rustic(e))?;
            let snap = pick_snapshot(snaps, &req.snapshot, access.id(), &label)?;
            let inner = req
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
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
            let dest = LocalDestination::new(
                &req.target.display().to_string(),
                !req.dry_run,
                !node.is_dir(),
            )
            .map_err(|e| access.rustic(e))?;
            let opts = RestoreOptions::default();
            let plan = repo
                .prepare_restore(
                    &opts,
                    repo.ls(&node, &ls).map_err(|e| access.rustic(e))?,
                    &dest,
                    req.dry_run,
                )
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
            let needed = plan.restore_size;
            if !req.overwrite {
                let free = free_bytes(&req.target).map_err(|source| EngineError::Io {
                    context: format!("cannot read the free space of {}", req.target.display()),
                    source,
                })?;
                if free < needed {
                    return Err(EngineError::NoSpace {
                        path: req.target.clone(),
                        needed,
                        free,
                        during: false,
                    });
                }
            }
            let entries = repo.ls(&node, &ls).map_err(|e| access.rustic(e))?;
            // A bug in rustic_core may still panic; see the module header.
            catch_unwind(AssertUnwindSafe(|| {
                repo.restore(plan, &opts, entries, &dest)
            }))
            .map_err(|panic| restore_panicked(access.id(), panic.as_ref(), &abort))?
            .map_err(|e| restore_failed(&access, e, &req.target, needed))?;
            let verified = if req.verify {
                let check = compare(&repo, &node, &dest).map_err(|e| access.rustic(e))?;
                Some(check.ok()?.0)
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

    /// Compares a directory restored earlier with the snapshot's content hashes, file by file
    /// (nothing is written). Missing files and files with other content fail it with
    /// `verify-failed`; files the snapshot does not have are ignored.
    pub async fn verify_restored(
        &self,
        req: &VerifyRequest,
        abort: &Abort,
    ) -> Result<VerifyReport, EngineError> {
        let system = self.system(&req.system)?.clone();
        let repo = self.restore_source(&system, req.repository.as_deref())?;
        if !req.target.is_dir() {
            return Err(EngineError::Io {
                context: format!("cannot verify {}", req.target.display()),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the directory does not exist (was the snapshot restored there?)",
                ),
            });
        }
        let connect = self.connect(&repo, false);
        let target = req.target.clone();
        let req = req.clone();
        let label = system.id.to_string();
        let abort = abort.clone();
        let started = Instant::now();
        let (snapshot, (verified_files, bytes)) = blocking(move || {
            let access = connect.call()?;
            abort.register(access.abort_flag());
            let _lock = access.lock()?;
            let open = access.open()?;
            let repo = open.to_indexed().map_err(|e| access.rustic(e))?;
            let snaps = repo
                .get_matching_snapshots(|sn| sn.label == label)
                .map_err(|e| access.rustic(e))?;
            let snap = pick_snapshot(snaps, &req.snapshot, access.id(), &label)?;
            let inner = req
                .path
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
            let node = repo
                .node_from_snapshot_and_path(&snap, &inner)
                .map_err(|e| access.rustic(e))?;
            let dest =
                LocalDestination::new(&req.target.display().to_string(), false, !node.is_dir())
                    .map_err(|e| access.rustic(e))?;
            let found = compare(&repo, &node, &dest).map_err(|e| access.rustic(e))?;
            Ok((SnapshotInfo::from_snapshot(access.id(), &snap), found.ok()?))
        })
        .await?;
        Ok(VerifyReport {
            snapshot,
            target,
            verified_files,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Looks up one snapshot of `system` at `repository` by id or `original` id (prefix), or
    /// `latest`: connects (resolving the password and storage credentials), opens the
    /// repository (which checks the password) and lists its snapshots. Writes nothing.
    pub async fn find_snapshot(
        &self,
        system: &str,
        repository: &str,
        spec: &str,
        abort: &Abort,
    ) -> Result<SnapshotInfo, EngineError> {
        let sys = self.system(system)?.clone();
        let repo = self.repository_of(&sys, repository)?;
        let connect = self.connect(&repo, false);
        let label = sys.id.to_string();
        let spec = spec.to_string();
        let abort = abort.clone();
        blocking(move || {
            let access = connect.call()?;
            abort.register(access.abort_flag());
            let open = access.open()?;
            let snaps = open
                .get_matching_snapshots(|sn| sn.label == label)
                .map_err(|e| access.rustic(e))?;
            let snap = pick_snapshot(snaps, &spec, access.id(), &label)?;
            Ok(SnapshotInfo::from_snapshot(access.id(), &snap))
        })
        .await
    }

    /// The repository a restore reads: `id` (one of the system's), or its first one.
    fn restore_source(
        &self,
        system: &crate::policy::System,
        id: Option<&str>,
    ) -> Result<crate::policy::Repository, EngineError> {
        match id {
            Some(id) => self.repository_of(system, id),
            None => self
                .repositories_of(system)
                .into_iter()
                .next()
                .ok_or_else(|| EngineError::Internal("system has no repository".into())),
        }
    }
}

/// The snapshot `spec` names among `snaps` (one system's, at one repository): `latest`, or an
/// id prefix matching its id or, for a copy, the id it had where it was copied from.
fn pick_snapshot(
    mut snaps: Vec<SnapshotFile>,
    spec: &str,
    repository: &str,
    system: &str,
) -> Result<SnapshotFile, EngineError> {
    let not_found = || EngineError::SnapshotNotFound {
        repository: repository.to_string(),
        system: system.to_string(),
        spec: spec.to_string(),
    };
    snaps.sort_by(|a, b| a.time.cmp(&b.time));
    if spec == "latest" {
        return snaps.pop().ok_or_else(not_found);
    }
    // A copy keeps the source snapshot's id as `original`: either id finds it.
    let spec = spec.to_ascii_lowercase();
    let mut found: Vec<_> = snaps
        .into_iter()
        .filter(|sn| {
            sn.id.to_hex().starts_with(&spec)
                || sn.original.is_some_and(|o| o.to_hex().starts_with(&spec))
        })
        .collect();
    match found.len() {
        0 => Err(not_found()),
        1 => Ok(found.remove(0)),
        n => Err(EngineError::Config {
            repository: repository.to_string(),
            message: format!(
                "snapshot id prefix \"{spec}\" is ambiguous ({n} snapshots); give more characters"
            ),
        }),
    }
}

/// What rustic's restore planner in verify mode found in a target directory.
struct Comparison {
    missing: u64,
    different: u64,
    verified: u64,
    bytes: u64,
}

impl Comparison {
    /// Files and bytes verified, or `verify-failed` naming how many are missing or differ.
    fn ok(self) -> Result<(u64, u64), EngineError> {
        let bad = self.missing + self.different;
        if bad > 0 {
            return Err(EngineError::VerifyFailed {
                mismatched: bad,
                examples: format!(
                    "{} files missing, {} with different content",
                    self.missing, self.different
                ),
            });
        }
        Ok((self.verified, self.bytes))
    }
}

/// Re-reads every file of `node` under `dest` and compares it, blob by blob, with the
/// snapshot's content hashes (a dry-run restore plan with `verify_existing`).
fn compare<S: rustic_core::IndexedFull>(
    repo: &rustic_core::Repository<S>,
    node: &rustic_core::repofile::Node,
    dest: &LocalDestination,
) -> Result<Comparison, Box<rustic_core::RusticError>> {
    let opts = RestoreOptions::default().verify_existing(true);
    let plan = repo.prepare_restore(&opts, repo.ls(node, &LsOptions::default())?, dest, true)?;
    let files = &plan.stats.files;
    Ok(Comparison {
        missing: files.restore,
        different: files.modify,
        verified: files.verified + files.unchanged,
        bytes: plan.matched_size,
    })
}

/// Free bytes (for unprivileged users) of the file system holding `path`, or of its nearest
/// existing ancestor when it does not exist yet.
pub fn free_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("/"));
    let st = rustix::fs::statvfs(existing)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The error of a restore that rustic_core ended with an error (see the vendored patch
/// "restore errors"): a full file system and damaged data get their own kinds.
fn restore_failed(
    access: &super::repo::RepoAccess,
    err: Box<rustic_core::RusticError>,
    target: &std::path::Path,
    needed: u64,
) -> EngineError {
    if err.is_code(rustic_core::RESTORE_NO_SPACE_CODE) {
        return EngineError::NoSpace {
            path: target.to_path_buf(),
            needed,
            free: free_bytes(target).unwrap_or(0),
            during: true,
        };
    }
    if err.is_code(rustic_core::RESTORE_DAMAGED_CODE) {
        let log = err.display_log();
        let first = log
            .strip_prefix("Error: ")
            .unwrap_or(&log)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return damaged_data(access.id(), first);
    }
    access.rustic(err)
}

/// The integrity error of a restore that read data which does not decrypt or match its hash;
/// `detail` is rustic's explanation (its first 300 characters, on one line).
fn damaged_data(repository: &str, detail: &str) -> EngineError {
    let detail: String = detail.chars().take(300).collect();
    EngineError::Integrity {
        repository: repository.to_string(),
        errors: 1,
        summary: format!(
            "data read while restoring does not decrypt or match its hash ({})",
            detail.replace('\n', " ")
        ),
    }
}

/// The error for a panic in rustic_core's restore: an abort that was asked for, damaged data
/// (a blob that does not decrypt, or whose hash does not match), or an internal failure.
fn restore_panicked(repository: &str, panic: &(dyn Any + Send), abort: &Abort) -> EngineError {
    if abort.is_requested() {
        return EngineError::Aborted {
            repository: repository.to_string(),
            reason: AbortReason::Requested,
        };
    }
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let damaged = ["Cryptography", "decrypt", "Verification", "hash mismatch"]
        .iter()
        .any(|w| text.contains(w));
    if damaged {
        // rustic's error renders as `RusticError { kind: …, guidance: "…", … }`: keep the
        // guidance, the part written for people.
        let detail = text
            .split_once("guidance: \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or(text, |(guidance, _)| guidance);
        damaged_data(repository, detail)
    } else {
        EngineError::Internal(format!("the restore failed: {text}"))
    }
}

fn dir_has_entries(path: &std::path::Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}
