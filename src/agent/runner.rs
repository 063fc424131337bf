//! Runs one scheduled job of one system through the engine and returns its run records.
//!
//! Every job yields at least one record, also when the engine refuses to start (unknown
//! system, unreadable password …): a job that left no evidence would look like a job that
//! never ran. A backup writes to the first repository only; copies along the chain are their
//! own job, run inside the branch link's windows.

use jiff::Timestamp;

use crate::engine::{BackupRequest, CheckRequest, Engine, EngineError, ForgetRequest};
use crate::policy::JobKind;
use crate::run::{Outcome, RunKind, RunRecord};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOrder {
    pub system: String,
    pub job: JobKind,
    /// For `read-data`: the subset of packs to read, per repository (`n/m`).
    pub read_data_subsets: Vec<(String, String)>,
    /// Repositories this agent has never written to (off-site copies not made yet): a check
    /// finding one of them not created yet is skipped rather than failed. Once a copy reached
    /// a repository, its absence is a failure (a deleted bucket must raise an alarm).
    pub not_yet_created: Vec<String>,
}

/// Runs `order` and returns what happened (never an empty list).
pub async fn run_job(engine: &Engine, host: &str, order: &JobOrder) -> Vec<RunRecord> {
    let started = engine.now();
    let result = match order.job {
        JobKind::Backup => {
            prepare(engine, &order.system).await;
            engine
                .backup(&BackupRequest {
                    system: order.system.clone(),
                    all_repos: false,
                    copy: false,
                })
                .await
                .map(|r| vec![r])
        }
        JobKind::Copy => engine.copy(&order.system, None, &[]).await.map(|r| vec![r]),
        JobKind::Check => check(engine, order, false).await,
        JobKind::ReadData => check(engine, order, true).await,
        JobKind::Forget => forget(engine, &order.system).await,
    };
    let mut records = match result {
        Ok(records) if !records.is_empty() => records,
        // Checks of repositories that do not exist yet, all skipped.
        Ok(_) if matches!(order.job, JobKind::Check | JobKind::ReadData) => Vec::new(),
        Ok(_) => vec![refused(
            engine,
            order,
            started,
            &EngineError::Internal("the job produced no run record".into()),
        )],
        Err(e) => vec![refused(engine, order, started, &e)],
    };
    for r in &mut records {
        r.host = host.to_string();
        if r.system.is_none() {
            r.system = Some(order.system.clone());
        }
    }
    records
}

/// Creates the system's first repository if it does not exist yet, so that a new system is
/// protected from its first slot without a manual `lifeboat init`. Off-site repositories are
/// created by the first copy (inside the link's windows). Failures are left to the backup,
/// whose record then says what is wrong.
async fn prepare(engine: &Engine, system: &str) {
    let Ok(first) = engine
        .system(system)
        .map(|s| s.repositories.first().map(|r| r.to_string()))
    else {
        return;
    };
    if let Some(first) = first
        && let Err(e) = engine.init(Some(system), Some(&first)).await
    {
        tracing::debug!("could not initialise {first} before the backup: {e}");
    }
}

/// Checks every repository of the system, the structure only or also (a subset of) the data.
async fn check(
    engine: &Engine,
    order: &JobOrder,
    read_data: bool,
) -> Result<Vec<RunRecord>, EngineError> {
    let system = engine.system(&order.system)?.clone();
    let mut records = Vec::new();
    for repo in &system.repositories {
        let subset = if read_data {
            order
                .read_data_subsets
                .iter()
                .find(|(r, _)| r == repo.as_str())
                .map(|(_, s)| s.clone())
        } else {
            None
        };
        let req = CheckRequest {
            repository: repo.to_string(),
            read_data: read_data && subset.is_none(),
            read_data_subset: subset,
        };
        if order.not_yet_created.iter().any(|r| r == repo.as_str())
            && matches!(engine.repository_exists(repo.as_str()).await, Ok(false))
        {
            tracing::info!(
                repository = %repo,
                "not checked: the repository is created by the system's first copy"
            );
            continue;
        }
        match engine.check(&req).await {
            Ok(report) => records.push(report.run),
            Err(e) => {
                let mut r = failed(engine, RunKind::Check, &order.system, engine.now(), &e);
                r.repositories.push(crate::run::RepoResult {
                    repository: repo.to_string(),
                    location: engine
                        .repository(repo.as_str())
                        .map(|r| r.location.to_string())
                        .unwrap_or_default(),
                    immutable: engine.repository(repo.as_str()).is_ok_and(|r| r.immutable),
                    outcome: Outcome::Failed,
                    available_at: None,
                    snapshots: Vec::new(),
                    bytes_added: 0,
                    seconds: 0.0,
                    error: Some(e.to_run_error()),
                });
                records.push(r);
            }
        }
    }
    Ok(records)
}

/// Applies the retention policy to every mutable repository of the system, then prunes.
async fn forget(engine: &Engine, system: &str) -> Result<Vec<RunRecord>, EngineError> {
    let req = ForgetRequest {
        system: system.to_string(),
        repository: None,
        prune: true,
    };
    let plan = engine.forget_plan(&req).await?;
    let (_, record) = engine.forget_apply(&req, plan).await?;
    Ok(vec![record])
}

/// The kind of run record a job produces (`read-data` is a deeper check).
pub(super) fn kind_of(job: JobKind) -> RunKind {
    match job {
        JobKind::Backup => RunKind::Backup,
        JobKind::Copy => RunKind::Copy,
        JobKind::Check | JobKind::ReadData => RunKind::Check,
        JobKind::Forget => RunKind::Forget,
    }
}

/// The record of a job the engine refused to start.
fn refused(engine: &Engine, order: &JobOrder, started: Timestamp, e: &EngineError) -> RunRecord {
    let record = failed(engine, kind_of(order.job), &order.system, started, e);
    if let Err(err) = engine.journal(&record) {
        tracing::warn!("could not journal run record {}: {err}", record.run_id);
    }
    record
}

fn failed(
    engine: &Engine,
    kind: RunKind,
    system: &str,
    started: Timestamp,
    e: &EngineError,
) -> RunRecord {
    let mut record = RunRecord::start(
        kind,
        uuid::Uuid::new_v4().to_string(),
        String::new(),
        started,
    );
    record.system = Some(system.to_string());
    if let Ok(s) = engine.system(system) {
        record.site = Some(s.site.to_string());
        record.tier = Some(s.tier.to_string());
    }
    record.finished_at = engine.now();
    record.outcome = Outcome::Failed;
    record.error = Some(e.to_run_error());
    record
}
