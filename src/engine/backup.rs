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
            let (paths, opts) = match &system.stream {
                None => {
                    let paths = PathList::from_iter(system.paths.iter().cloned())
                        .sanitize()
                        .map_err(|e| EngineError::Rustic {
                            repository: access.id().to_string(),
                            message: format!("invalid source paths: {e}"),
                        })?;
                    let mut opts = BackupOptions::default();
                    // rustic's globs are gitignore-style overrides: a plain glob *includes* (and
                    // so excludes everything else); `!glob` excludes. Policy excludes are all
                    // exclusions.
                    opts.excludes.globs = system.excludes.iter().map(|g| format!("!{g}")).collect();
                    (paths, opts)
                }
                Some(stream) => stream_source(&system, stream, access.id())?,
            };
            let label = system.id.to_string();
            // For a stream, the snapshot is written before the command's exit status is known:
            // note what exists, so that a failed dump's snapshot can be removed.
            let before: Vec<_> = if system.stream.is_some() {
                indexed
                    .get_matching_snapshots(|sn| sn.label == label)
                    .map_err(|e| access.rustic(e))?
                    .into_iter()
                    .map(|sn| sn.id)
                    .collect()
            } else {
                Vec::new()
            };
            let snapshot = match indexed.backup(&opts, &paths, snap) {
                Ok(snapshot) => snapshot,
                Err(e) if system.stream.is_some() => {
                    let message = e.display_log();
                    let written: Vec<_> = indexed
                        .get_matching_snapshots(|sn| sn.label == label)
                        .map(|all| {
                            all.into_iter()
                                .map(|sn| sn.id)
                                .filter(|id| !before.contains(id))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !written.is_empty()
                        && let Err(del) = indexed.delete_snapshots(&written)
                    {
                        tracing::error!(
                            "the snapshot of a failed stream of {} could not be removed: {}",
                            system.id,
                            del.display_log()
                        );
                    }
                    return Err(EngineError::Hook {
                        system: system.id.to_string(),
                        hook: "stream".into(),
                        program: system
                            .stream
                            .as_ref()
                            .map(|s| s.command.program().to_string())
                            .unwrap_or_default(),
                        message: format!(
                            "the stream command failed, no snapshot was kept: {}",
                            message
                                .trim_start_matches("Error: ")
                                .lines()
                                .next()
                                .unwrap_or("")
                        ),
                    });
                }
                Err(e) => return Err(access.rustic(e)),
            };
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

/// The backup source of a stream system: its command's standard output as one file, run under
/// `/usr/bin/timeout` (coreutils) so that a hung dump cannot hold the backup forever, with its
/// environment (secrets resolved now, passed to the child only).
fn stream_source(
    system: &System,
    stream: &crate::policy::Stream,
    repository: &str,
) -> Result<(PathList, BackupOptions), EngineError> {
    const TIMEOUT: &str = "/usr/bin/timeout";
    let mut argv: Vec<String> = Vec::new();
    if std::path::Path::new(TIMEOUT).exists() {
        argv.extend([
            TIMEOUT.to_string(),
            "--kill-after=30".to_string(),
            stream.timeout.as_std().as_secs().to_string(),
        ]);
    } else {
        tracing::warn!(
            "{TIMEOUT} not found: the stream command of {} runs without a timeout",
            system.id
        );
    }
    argv.extend(stream.command.iter().cloned());
    let mut env: Vec<(String, String)> = stream
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, source) in &stream.secret_env {
        let secret = source.resolve().map_err(|e| EngineError::Hook {
            system: system.id.to_string(),
            hook: "stream".into(),
            program: stream.command.program().to_string(),
            message: format!("secret-env {name}: {e}"),
        })?;
        env.push((name.clone(), secret.expose().to_string()));
    }
    for (k, v) in [
        ("LIFEBOAT_SYSTEM", system.id.to_string()),
        ("LIFEBOAT_TIER", system.tier.to_string()),
        ("LIFEBOAT_SITE", system.site.to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    let mut opts = BackupOptions::default();
    opts.stdin_filename = stream.filename.clone();
    opts.stdin_command = Some(rustic_core::CommandInput::from(argv));
    opts.stdin_command_env = env;
    let paths = PathList::from_string("-").map_err(|e| EngineError::Rustic {
        repository: repository.to_string(),
        message: format!("stream source: {e}"),
    })?;
    Ok((paths, opts))
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
