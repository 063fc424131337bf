//! Repository upkeep: init, copy between repositories, integrity check, retention (forget/prune).
//!
//! Retention builds a plan first — every snapshot with keep/forget and the reasons — which is
//! printed before anything is deleted and is all that `--dry-run` does. Prune is rustic's
//! two-phase prune (packs are marked, and removed by a later prune after 23 h), which is safe
//! against backups running on other hosts at the same time.
//!
//! A copy into a repository across the branch link starts only inside the link's window, and
//! resumes an interrupted one: rustic writes index files only every few minutes, so the packs a
//! stopped copy had uploaded are in `data/` but in no index. Before copying, such packs are
//! indexed from their headers ([`index_stray_packs`]), and the copy then skips their blobs.

use std::collections::HashSet;
use std::time::Instant;

use rustic_core::repofile::{IndexFile, PackId};
use rustic_core::{
    CheckOptions, ForgetGroups, Grouped, KeepOptions, PruneOptions, PrunePlan, ReadSubsetOption,
    RepairIndexOptions, SnapshotGroupCriterion,
};
use serde::Serialize;

use super::backup::failed_result;
use super::error::AbortReason;
use super::repo::{OpenRepo, RepoAccess};
use super::throttle::Refusal;
use super::{ConnectFn, Engine, EngineError, SnapshotInfo, blocking, join};
use crate::policy::{Repository, Retention, System};
use crate::run::{Outcome, RepoResult, RunKind, RunRecord};

/// What `init` did for one repository.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    pub repository: String,
    pub location: String,
    /// False when the repository already existed (left untouched).
    pub created: bool,
    /// The repository whose chunker parameters it shares (copies deduplicate), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunker_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Which repository to check and how deeply.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub repository: String,
    pub read_data: bool,
    /// e.g. `1/5`, `10%`, `500MiB`, `daily/week` (implies reading data).
    pub read_data_subset: Option<String>,
}

/// One problem found by a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckFinding {
    /// `error` or `warning`.
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub repository: String,
    pub read_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_data_subset: Option<String>,
    pub errors: usize,
    pub warnings: usize,
    pub findings: Vec<CheckFinding>,
    pub run: RunRecord,
}

#[derive(Debug, Clone)]
pub struct ForgetRequest {
    pub system: String,
    /// Only this repository (default: every mutable repository of the system).
    pub repository: Option<String>,
    /// Also prune unreferenced data after forgetting.
    pub prune: bool,
}

/// The retention decision for one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetDecision {
    pub snapshot: SnapshotInfo,
    pub keep: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForgetReport {
    pub repository: String,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub decisions: Vec<ForgetDecision>,
    pub forgotten: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned_packs: Option<u64>,
}

impl Engine {
    /// Initialises the repositories of a system (or one repository). Later repositories of a
    /// system share the first one's chunker parameters so that copies deduplicate.
    pub async fn init(
        &self,
        system: Option<&str>,
        repository: Option<&str>,
    ) -> Result<Vec<InitOutcome>, EngineError> {
        let (repos, chunk_source): (Vec<Repository>, Option<Repository>) =
            match (system, repository) {
                (Some(s), Some(r)) => {
                    let sys = self.system(s)?;
                    let repo = self.repository_of(sys, r)?;
                    let first = self.repositories_of(sys).into_iter().next();
                    (vec![repo.clone()], first.filter(|f| f.id != repo.id))
                }
                (Some(s), None) => {
                    let sys = self.system(s)?;
                    let all = self.repositories_of(sys);
                    (all.clone(), all.first().cloned())
                }
                (None, Some(r)) => {
                    let repo = self.repository(r)?.clone();
                    // A repository that a system copies into takes that system's first repository's chunker.
                    let first = self
                        .policy
                        .systems
                        .values()
                        .find(|s| s.repositories.iter().skip(1).any(|x| x.as_str() == r))
                        .and_then(|s| self.repositories_of(s).into_iter().next());
                    (vec![repo], first)
                }
                (None, None) => {
                    return Err(EngineError::Internal(
                        "init needs --system or --repo".into(),
                    ));
                }
            };
        let mut out = Vec::new();
        for repo in repos {
            let source = chunk_source.clone().filter(|s| s.id != repo.id);
            let connect = self.connect(&repo, true);
            let connect_src = source.as_ref().map(|s| self.connect(s, false));
            let src_id = source.as_ref().map(|s| s.id.to_string());
            let outcome = blocking(move || {
                let access = connect.call()?;
                let _lock = access.lock()?;
                let mut warning = None;
                let chunker = match connect_src.map(ConnectFn::call) {
                    Some(Ok(src)) if src.exists()? => Some(src.open()?.config().clone()),
                    Some(Ok(_)) | Some(Err(EngineError::NotInitialised { .. })) => {
                        warning = Some(format!(
                            "{} is not initialised yet, so {} gets chunker parameters of its own and copies into it will not deduplicate; initialise the system's first repository first",
                            src_id.clone().unwrap_or_default(),
                            access.id()
                        ));
                        None
                    }
                    Some(Err(e)) => return Err(e),
                    None => None,
                };
                let location = access.location();
                if access.exists()? {
                    let open = access.open()?;
                    let warning = chunker.as_ref().filter(|c| !c.has_same_chunker(open.config())).map(|_| {
                        format!(
                            "{} has different chunker parameters than {}; copies into it will not deduplicate against its own backups",
                            access.id(),
                            src_id.clone().unwrap_or_default()
                        )
                    });
                    return Ok(InitOutcome {
                        repository: access.id().to_string(),
                        location,
                        created: false,
                        chunker_from: None,
                        warning,
                    });
                }
                access.init(chunker.as_ref())?;
                Ok(InitOutcome {
                    repository: access.id().to_string(),
                    location,
                    created: true,
                    chunker_from: chunker.and(src_id),
                    warning,
                })
            })
            .await?;
            out.push(outcome);
        }
        Ok(out)
    }

    /// Copies the system's snapshots that `to` lacks from `from`. Never fails: the result says
    /// how it went, so a failed off-site copy is evidence, not a crash.
    pub(super) async fn copy_system(
        &self,
        system: &System,
        from: &Repository,
        to: &Repository,
    ) -> RepoResult {
        // Off-site traffic starts only inside the link's window.
        if let Some(Err(Refusal::WindowClosed { reopens })) = self.link_for(to).map(|g| g.admit()) {
            let err = EngineError::Aborted {
                repository: to.id.to_string(),
                reason: AbortReason::WindowClosed { reopens },
            };
            return failed_result(to, &err);
        }
        let connect_from = self.connect(from, false);
        let connect_to = self.connect(to, false);
        let label = system.id.to_string();
        let clock = self.clock.clone();
        let (location, immutable) = (to.location.to_string(), to.immutable);
        let result = blocking(move || {
            let started = Instant::now();
            let src: RepoAccess = connect_from.call()?;
            let dst: RepoAccess = connect_to.call()?;
            // Lock in a fixed order so two copies in opposite directions cannot deadlock.
            let (_l1, _l2) = if src.id() < dst.id() {
                (src.lock()?, dst.lock()?)
            } else {
                let l2 = dst.lock()?;
                (src.lock()?, l2)
            };
            let source = src.open()?.to_indexed().map_err(|e| src.rustic(e))?;
            // A first copy creates the target, with the source's chunker so that it dedups.
            let target = if dst.exists()? {
                dst.open()?
            } else {
                tracing::info!(repository = dst.id(), "creating the repository for its first copy");
                dst.init_for_copy(source.config())?
            };
            let mut warnings = Vec::new();
            if !source.config().has_same_chunker(target.config()) {
                warnings.push(format!(
                    "{} and {} have different chunker parameters: the copy works but does not deduplicate",
                    src.id(),
                    dst.id()
                ));
            }
            let all = source
                .get_matching_snapshots(|sn| sn.label == label)
                .map_err(|e| src.rustic(e))?;
            let relevant = target
                .relevant_copy_snapshots(|_| true, &all)
                .map_err(|e| dst.rustic(e))?;
            let todo: Vec<_> = relevant.iter().filter(|c| c.relevant).map(|c| &c.sn).collect();
            let ids: Vec<String> = todo.iter().map(|sn| sn.id.to_hex().to_string()).collect();
            if !todo.is_empty() {
                let adopted = index_stray_packs(&dst, &target)?;
                if adopted > 0 {
                    tracing::info!(
                        repository = dst.id(),
                        "resuming an interrupted transfer: indexed {adopted} pack(s) already uploaded"
                    );
                }
            }
            let target = target.to_indexed_ids().map_err(|e| dst.rustic(e))?;
            if !todo.is_empty() {
                source.copy(&target, todo).map_err(|e| dst.rustic(e))?;
            }
            for w in &warnings {
                tracing::warn!("{w}");
            }
            Ok(RepoResult {
                repository: dst.id().to_string(),
                location,
                immutable,
                outcome: Outcome::Success,
                available_at: Some(clock.now()),
                snapshots: ids,
                bytes_added: 0,
                seconds: started.elapsed().as_secs_f64(),
                error: None,
            })
        })
        .await;
        result.unwrap_or_else(|e| failed_result(to, &e))
    }

    /// `lifeboat copy`: copies a system's snapshots from one repository to others.
    pub async fn copy(
        &self,
        system: &str,
        from: Option<&str>,
        to: &[String],
    ) -> Result<RunRecord, EngineError> {
        let sys = self.system(system)?.clone();
        let repos = self.repositories_of(&sys);
        let from = match from {
            Some(id) => self.repository_of(&sys, id)?,
            None => repos
                .first()
                .cloned()
                .ok_or_else(|| EngineError::Internal("no repository".into()))?,
        };
        let targets: Vec<Repository> = if to.is_empty() {
            repos.into_iter().filter(|r| r.id != from.id).collect()
        } else {
            to.iter()
                .map(|id| self.repository_of(&sys, id))
                .collect::<Result<_, _>>()?
        };
        let mut record = self.record(RunKind::Copy, Some(&sys));
        for target in &targets {
            let result = self.copy_system(&sys, &from, target).await;
            record.repositories.push(result);
        }
        self.finish(&mut record, true);
        Ok(record)
    }

    /// Checks a repository's structure and, optionally, reads pack data.
    pub async fn check(&self, req: &CheckRequest) -> Result<CheckReport, EngineError> {
        let repo = self.repository(&req.repository)?.clone();
        let subset: Option<ReadSubsetOption> = match &req.read_data_subset {
            Some(s) => Some(s.parse().map_err(|e: Box<rustic_core::RusticError>| EngineError::Config {
                repository: repo.id.to_string(),
                message: format!(
                    "invalid --read-data-subset \"{s}\" ({}); use n/m, a percentage like 10%, a size like 500MiB, or daily/week",
                    e.display_log().trim_start_matches("Error: ")
                ),
            })?),
            None => None,
        };
        let read_data = req.read_data || subset.is_some();
        let mut record = self.record(RunKind::Check, None);
        record.check = Some(crate::run::CheckScope {
            read_data,
            subset: req.read_data_subset.clone(),
        });
        let connect = self.connect(&repo, false);
        let (location, immutable) = (repo.location.to_string(), repo.immutable);
        let started = std::time::Instant::now();
        let findings = blocking(move || {
            let access = connect.call()?;
            let _lock = access.lock()?;
            let open = access.open()?;
            let mut opts = CheckOptions::default().read_data(read_data);
            if let Some(subset) = subset {
                opts = opts.read_data_subset(subset);
            }
            let results = open.check(opts).map_err(|e| access.rustic(e))?;
            Ok(results
                .0
                .iter()
                .map(|(level, err)| CheckFinding {
                    level: if format!("{level:?}") == "Error" {
                        "error"
                    } else {
                        "warning"
                    }
                    .to_string(),
                    message: err.to_string().replace('\n', " "),
                })
                .collect::<Vec<_>>())
        })
        .await;
        let mut result = RepoResult {
            repository: repo.id.to_string(),
            location,
            immutable,
            outcome: Outcome::Success,
            available_at: None,
            snapshots: Vec::new(),
            bytes_added: 0,
            seconds: started.elapsed().as_secs_f64(),
            error: None,
        };
        let findings = match findings {
            Ok(f) => f,
            Err(e) => {
                result.outcome = Outcome::Failed;
                result.error = Some(e.to_run_error());
                record.repositories.push(result);
                record.error = Some(e.to_run_error());
                self.finish(&mut record, true);
                return Err(e);
            }
        };
        let errors = findings.iter().filter(|f| f.level == "error").count();
        let warnings = findings.len() - errors;
        if errors > 0 {
            let err = EngineError::Integrity {
                repository: repo.id.to_string(),
                errors,
                summary: summarize(&findings),
            };
            result.outcome = Outcome::Failed;
            result.error = Some(err.to_run_error());
            record.error = Some(err.to_run_error());
        }
        record.warnings = findings
            .iter()
            .filter(|f| f.level == "warning")
            .map(|f| f.message.clone())
            .collect();
        record.repositories.push(result);
        self.finish(&mut record, true);
        Ok(CheckReport {
            repository: repo.id.to_string(),
            read_data,
            read_data_subset: req.read_data_subset.clone(),
            errors,
            warnings,
            findings,
            run: record,
        })
    }

    /// The retention plan of a system: every snapshot in each of its mutable repositories (or
    /// only `req.repository`) with keep/forget and the reasons. Deletes nothing.
    pub async fn forget_plan(&self, req: &ForgetRequest) -> Result<Vec<ForgetReport>, EngineError> {
        let system = self.system(&req.system)?.clone();
        let keep = keep_options(&system.retention);
        let mut reports = Vec::new();
        for repo in self.forget_targets(&system, req)? {
            if repo.immutable {
                reports.push(ForgetReport {
                    repository: repo.id.to_string(),
                    dry_run: true,
                    skipped: Some(
                        "immutable repository: its retention is enforced by the storage's object lock".into(),
                    ),
                    decisions: Vec::new(),
                    forgotten: 0,
                    pruned_packs: None,
                });
                continue;
            }
            let connect = self.connect(&repo, false);
            let label = system.id.to_string();
            let keep = keep.clone();
            let now = self.now();
            let report = blocking(move || {
                let access = connect.call()?;
                let _lock = access.lock()?;
                let open = access.open()?;
                let snaps = open
                    .get_matching_snapshots(|sn| sn.label == label)
                    .map_err(|e| access.rustic(e))?;
                let grouped = Grouped::from_items(snaps, SnapshotGroupCriterion::default());
                let zoned = now.to_zoned(jiff::tz::TimeZone::system());
                let groups =
                    ForgetGroups::from_grouped_snapshots_with_retention(grouped, &keep, &zoned)
                        .map_err(|e| access.rustic(e))?;
                let mut decisions: Vec<ForgetDecision> = groups
                    .0
                    .iter()
                    .flat_map(|g| g.items.iter())
                    .map(|f| ForgetDecision {
                        snapshot: SnapshotInfo::from_snapshot(access.id(), &f.snapshot),
                        keep: f.keep,
                        reasons: f.reasons.clone(),
                    })
                    .collect();
                decisions.sort_by_key(|d| std::cmp::Reverse(d.snapshot.time));
                let forgotten = decisions.iter().filter(|d| !d.keep).count();
                Ok(ForgetReport {
                    repository: access.id().to_string(),
                    dry_run: true,
                    skipped: None,
                    decisions,
                    forgotten,
                    pruned_packs: None,
                })
            })
            .await;
            match report {
                Ok(r) => reports.push(r),
                // Planning a system's repositories: report an unreachable one, plan the others.
                Err(e) if req.repository.is_none() => reports.push(ForgetReport {
                    repository: repo.id.to_string(),
                    dry_run: true,
                    skipped: Some(format!("cannot plan: {e}")),
                    decisions: Vec::new(),
                    forgotten: 0,
                    pruned_packs: None,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(reports)
    }

    /// Deletes exactly the snapshots the plan marks "forget" (those still present), then prunes
    /// if asked. Snapshots that appeared after the plan are kept.
    pub async fn forget_apply(
        &self,
        req: &ForgetRequest,
        plan: Vec<ForgetReport>,
    ) -> Result<(Vec<ForgetReport>, RunRecord), EngineError> {
        let system = self.system(&req.system)?.clone();
        let mut record = self.record(RunKind::Forget, Some(&system));
        let mut reports = Vec::new();
        for mut report in plan {
            report.dry_run = false;
            let repo = self.repository(&report.repository)?.clone();
            if report.skipped.is_some() {
                reports.push(report);
                continue;
            }
            let ids: Vec<String> = report
                .decisions
                .iter()
                .filter(|d| !d.keep)
                .map(|d| d.snapshot.id.clone())
                .collect();
            let connect = self.connect(&repo, false);
            let prune = req.prune;
            let started = Instant::now();
            let ids2 = ids.clone();
            let done = blocking(move || {
                let access = connect.call()?;
                let _lock = access.lock()?;
                let open = access.open()?;
                let present: Vec<_> = open
                    .get_all_snapshots()
                    .map_err(|e| access.rustic(e))?
                    .into_iter()
                    .map(|sn| sn.id)
                    .filter(|id| ids2.iter().any(|x| x.as_str() == id.to_hex().as_str()))
                    .collect();
                if !present.is_empty() {
                    open.delete_snapshots(&present)
                        .map_err(|e| access.rustic(e))?;
                }
                let mut pruned = None;
                if prune {
                    let popts = PruneOptions::default();
                    let plan = PrunePlan::from_prune_options(&open, &popts)
                        .map_err(|e| access.rustic(e))?;
                    pruned = Some(
                        plan.stats.packs_to_delete.remove + plan.stats.packs_to_delete.recover,
                    );
                    open.prune(&popts, plan).map_err(|e| access.rustic(e))?;
                }
                Ok((present.len(), pruned))
            })
            .await;
            match done {
                Ok((forgotten, pruned)) => {
                    report.forgotten = forgotten;
                    report.pruned_packs = pruned;
                    record.repositories.push(RepoResult {
                        repository: repo.id.to_string(),
                        location: repo.location.to_string(),
                        immutable: repo.immutable,
                        outcome: Outcome::Success,
                        available_at: None,
                        snapshots: ids,
                        bytes_added: 0,
                        seconds: started.elapsed().as_secs_f64(),
                        error: None,
                    });
                }
                Err(e) => {
                    report.skipped = Some(format!("failed: {e}"));
                    report.forgotten = 0;
                    record.repositories.push(failed_result(&repo, &e));
                    if req.repository.is_some() {
                        return Err(e);
                    }
                }
            }
            reports.push(report);
        }
        self.finish(&mut record, true);
        Ok((reports, record))
    }

    fn forget_targets(
        &self,
        system: &System,
        req: &ForgetRequest,
    ) -> Result<Vec<Repository>, EngineError> {
        Ok(match &req.repository {
            Some(id) => vec![self.repository_of(system, id)?],
            None => self.repositories_of(system),
        })
    }
}

/// Indexes the packs in `repo`'s `data/` that no index file names — uploaded by a copy or
/// backup that stopped before writing its index (rustic writes one every few minutes) — by
/// reading their headers (rustic's `repair index`), so they are not uploaded again. Returns how
/// many there were; costs one listing of `data/` and a read of the index files when none are.
///
/// `repair index` also drops index entries of packs that no longer exist, so their blobs are
/// copied again. Append-only repositories are left alone (rustic refuses to repair them).
/// A pack that another host's backup uploaded a moment ago, and has not indexed yet, ends up
/// named by two index files (the same pack, the same blobs).
fn index_stray_packs(access: &RepoAccess, repo: &OpenRepo) -> Result<usize, EngineError> {
    let rustic = |e| access.rustic(e);
    let mut stray: HashSet<PackId> = repo.list::<PackId>().map_err(rustic)?.collect();
    if stray.is_empty() {
        return Ok(0);
    }
    for index in repo.stream_files::<IndexFile>().map_err(rustic)? {
        let (_, index) = index.map_err(rustic)?;
        for pack in index.packs.iter().chain(&index.packs_to_delete) {
            stray.remove(&pack.id);
        }
    }
    if stray.is_empty() {
        return Ok(0);
    }
    if repo.config().append_only == Some(true) {
        tracing::warn!(
            repository = access.id(),
            "{} pack(s) are in no index, but the repository is append-only: they will be uploaded again",
            stray.len()
        );
        return Ok(0);
    }
    repo.repair_index(&RepairIndexOptions::default(), false)
        .map_err(rustic)?;
    Ok(stray.len())
}

/// The policy's retention as rustic keep options.
fn keep_options(r: &Retention) -> KeepOptions {
    let n = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
    let mut keep = KeepOptions::default();
    keep.keep_last = n(r.keep_last);
    keep.keep_hourly = n(r.keep_hourly);
    keep.keep_daily = n(r.keep_daily);
    keep.keep_weekly = n(r.keep_weekly);
    keep.keep_monthly = n(r.keep_monthly);
    keep.keep_quarter_yearly = n(r.keep_quarterly);
    keep.keep_yearly = n(r.keep_yearly);
    keep.keep_within = r.keep_within.as_ref().and_then(|d| {
        jiff::Span::new()
            .try_seconds(i64::try_from(d.as_std().as_secs()).unwrap_or(i64::MAX))
            .ok()
    });
    keep
}

fn summarize(findings: &[CheckFinding]) -> String {
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.level == "error")
        .take(3)
        .map(|f| f.message.chars().take(160).collect())
        .collect();
    join(errors.into_iter())
}
