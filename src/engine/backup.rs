//! Backup of one system: hooks, snapshot to the first repository, copies along the chain.
//!
//! The capture time recorded is the start of the pre-hooks (a dump taken then) or, without
//! hooks, the start of reading the files — never the end (standards §3.5 pitfall 1). Each
//! repository's availability time is the moment its snapshot was complete there.

use std::collections::BTreeMap;
use std::time::Instant;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{BackupOptions, PathList, SnapshotOptions};

use super::repo::RepoAccess;
use super::{Engine, EngineError, blocking, ts};
use crate::hooks::{HookFailure, run_hooks};
use crate::policy::{HookWhen, Repository, System};
use crate::run::{Outcome, RepoResult, RunKind, RunRecord, SourceStats};

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub system: String,
    /// Back up to every repository directly instead of copying from the first one.
    pub all_repos: bool,
    /// After the backup, copy to the next repositories of the chain (the CLI does; the agent
    /// runs copies as their own scheduled job, inside the link's windows).
    pub copy: bool,
}

/// Result of writing one snapshot into one repository.
struct Written {
    snapshot: SnapshotFile,
    result: RepoResult,
}

impl Engine {
    /// Runs a backup of a system. Always returns a run record when the system exists: failures
    /// are in the record (outcome, error), so that they are reported, not lost.
    pub async fn backup(&self, req: &BackupRequest) -> Result<RunRecord, EngineError> {
        let system = self.system(&req.system)?.clone();
        let mut record = self.record(RunKind::Backup, Some(&system));
        let vars = self.hook_vars(&system, &record.run_id);

        let result = self.backup_inner(&system, req, &mut record, &vars).await;
        if let Err(e) = &result {
            record.error = Some(e.to_run_error());
        }
        record.outcome = record.derive_outcome();

        let mut vars = vars;
        if let Some(id) = &record.snapshot_id {
            vars.insert("LIFEBOAT_SNAPSHOT_ID".into(), id.clone());
        }
        vars.insert(
            "LIFEBOAT_OUTCOME".into(),
            outcome_name(record.outcome).into(),
        );
        let after = if record.outcome == Outcome::Failed {
            HookWhen::Failure
        } else {
            HookWhen::Post
        };
        if after == HookWhen::Failure
            && let Some(err) = &record.error
        {
            vars.insert("LIFEBOAT_ERROR".into(), err.message.clone());
        }
        if let Err(f) = run_hooks(&system.hooks, after, &vars).await {
            let e = hook_error(&system, after, f);
            record.warnings.push(e.to_string());
            if after == HookWhen::Post {
                // A failed post hook (e.g. restarting a service) makes the run partial.
                record.error.get_or_insert(e.to_run_error());
                if record.outcome == Outcome::Success {
                    record.outcome = Outcome::Partial;
                }
            }
        }
        self.finish(&mut record, false);
        Ok(record)
    }

    async fn backup_inner(
        &self,
        system: &System,
        req: &BackupRequest,
        record: &mut RunRecord,
        vars: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        for path in &system.paths {
            if !path.exists() {
                return Err(EngineError::SourceMissing {
                    system: system.id.to_string(),
                    path: path.clone(),
                });
            }
        }
        let has_pre = system.hooks.iter().any(|h| h.when == HookWhen::Pre);
        if has_pre {
            record.capture_time = Some(self.now());
            run_hooks(&system.hooks, HookWhen::Pre, vars)
                .await
                .map_err(|f| hook_error(system, HookWhen::Pre, f))?;
        }
        let repos = self.repositories_of(system);
        let Some(first) = repos.first().cloned() else {
            return Err(EngineError::Internal(format!(
                "system {} has no repository",
                system.id
            )));
        };
        let targets: Vec<Repository> = if req.all_repos {
            repos.clone()
        } else {
            vec![first.clone()]
        };

        let mut primary: Option<SnapshotFile> = None;
        for repo in &targets {
            match self.snapshot_to(system, repo).await {
                Ok(written) => {
                    if primary.is_none() {
                        primary = Some(written.snapshot.clone());
                    }
                    record.repositories.push(written.result);
                }
                Err(e) => {
                    record.repositories.push(failed_result(repo, &e));
                    if primary.is_none() && !req.all_repos {
                        return Err(e);
                    }
                    record.warnings.push(e.to_string());
                }
            }
        }
        let Some(snapshot) = primary else {
            return Err(EngineError::Internal(
                "no repository accepted the backup".into(),
            ));
        };
        let summary = snapshot.summary.clone();
        record.snapshot_id = Some(snapshot.id.to_hex().to_string());
        if record.capture_time.is_none() {
            record.capture_time = Some(
                summary
                    .as_ref()
                    .map_or_else(|| ts(&snapshot.time), |s| ts(&s.backup_start)),
            );
        }
        record.source = summary.map(|s| SourceStats {
            files: s.total_files_processed,
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            dirs: s.total_dirs_processed,
            bytes: s.total_bytes_processed,
        });

        if !req.all_repos && req.copy {
            for target in repos.iter().skip(1) {
                let result = self.copy_system(system, &first, target).await;
                record.repositories.push(result);
            }
        }
        Ok(())
    }

    /// Writes one new snapshot of the system into `repo`.
    async fn snapshot_to(
        &self,
        system: &System,
        repo: &Repository,
    ) -> Result<Written, EngineError> {
        let connect = self.connect(repo, false);
        let system = system.clone();
        let clock = self.clock.clone();
        let location = repo.location.to_string();
        let immutable = repo.immutable;
        blocking(move || {
            let started = Instant::now();
            let access: RepoAccess = connect.call()?;
            let _lock = access.lock()?;
            let open = access.open()?;
            let indexed = open.to_indexed_ids().map_err(|e| access.rustic(e))?;
            let tags = format!(
                "system={},tier={},site={},department={}",
                system.id,
                system.tier,
                system.site,
                system.department.replace(',', " ")
            );
            let snap = SnapshotOptions::default()
                .host(system.host.clone())
                .label(system.id.to_string())
                .command(format!("lifeboat backup --system {}", system.id))
                .add_tags(&tags)
                .and_then(|o| o.to_snapshot())
                .map_err(|e| access.rustic(e))?;
            let paths = PathList::from_iter(system.paths.iter().cloned())
                .sanitize()
                .map_err(|e| EngineError::Rustic {
                    repository: access.id().to_string(),
                    message: format!("invalid source paths: {e}"),
                })?;
            let mut opts = BackupOptions::default();
            // rustic's globs are gitignore-style overrides: a plain glob *includes* (and so
            // excludes everything else); `!glob` excludes. Policy excludes are all exclusions.
            opts.excludes.globs = system.excludes.iter().map(|g| format!("!{g}")).collect();
            let snapshot = indexed
                .backup(&opts, &paths, snap)
                .map_err(|e| access.rustic(e))?;
            let bytes_added = snapshot.summary.as_ref().map_or(0, |s| s.data_added_packed);
            let result = RepoResult {
                repository: access.id().to_string(),
                location,
                immutable,
                outcome: Outcome::Success,
                available_at: Some(clock.now()),
                snapshots: vec![snapshot.id.to_hex().to_string()],
                bytes_added,
                seconds: started.elapsed().as_secs_f64(),
                error: None,
            };
            Ok(Written { snapshot, result })
        })
        .await
    }

    /// The environment every hook of this system gets.
    fn hook_vars(&self, system: &System, run_id: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("LIFEBOAT_SYSTEM".to_string(), system.id.to_string()),
            ("LIFEBOAT_TIER".to_string(), system.tier.to_string()),
            ("LIFEBOAT_SITE".to_string(), system.site.to_string()),
            ("LIFEBOAT_DEPARTMENT".to_string(), system.department.clone()),
            ("LIFEBOAT_HOST".to_string(), system.host.clone()),
            ("LIFEBOAT_RUN_ID".to_string(), run_id.to_string()),
        ])
    }
}

/// A failed repository entry for the run record.
pub(super) fn failed_result(repo: &Repository, e: &EngineError) -> RepoResult {
    RepoResult {
        repository: repo.id.to_string(),
        location: repo.location.to_string(),
        immutable: repo.immutable,
        outcome: Outcome::Failed,
        available_at: None,
        snapshots: Vec::new(),
        bytes_added: 0,
        seconds: 0.0,
        error: Some(e.to_run_error()),
    }
}

fn hook_error(system: &System, when: HookWhen, f: HookFailure) -> EngineError {
    EngineError::Hook {
        system: system.id.to_string(),
        hook: when.to_string(),
        program: f.program,
        message: f.message,
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Partial => "partial",
        Outcome::Failed => "failed",
    }
}
