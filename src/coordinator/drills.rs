//! The drill orchestrator: "work that must run once". The replica holding the store lease
//! [`LEASE`] starts drills that are due, feeds each running drill what happened to it (agent
//! reports, approvals, aborts — the store's drill inputs, in order), lets time pass
//! ([`DrillRun::tick`]), hands the drill's open tasks to the standby agent (the `drill_tasks`
//! table, which heartbeat answers read) and, when a drill has ended, builds, seals and chains
//! its record with the evidence bundle.
//!
//! A drill's whole state is the [`DrillRun`] stored as JSON in its row, written at the version
//! it was read at; so a coordinator restart, or another replica taking the lease over, carries
//! on from the last stored state: inputs are applied once because the state remembers the last
//! one applied. Decisions live in `crate::drill`; this module only moves data between it and
//! the store, and reads the clock once per tick.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::store::{
    DrillChange, DrillFilter, DrillSeal, DrillStatus, DrillUpdate, LeaseGuard, NewDrill,
    NewDrillTask, Page, SealedRecord, Store, StoreError, StoredDrill,
};
use crate::api::DrillReport;
use crate::clock::Clock;
use crate::drill::build;
use crate::drill::machine::{DrillRun, Ending, SlotState, StartInput};
use crate::drill::record::{self, DrillRecord};
use crate::policy::{DrillId, GateRole, Policy};
use crate::run::RunRecord;

/// The store lease that makes one replica the drill orchestrator.
pub const LEASE: &str = "drill-orchestration";

/// Input kinds the API appends (the store appends `report`).
pub const APPROVE_INPUT: &str = "approve";
pub const ABORT_INPUT: &str = "abort";

/// How the orchestrator runs.
#[derive(Debug, Clone)]
pub struct DrillsConfig {
    /// Time between two ticks.
    pub tick_every: Duration,
    /// A standby agent silent for longer is lost: its open tasks fail.
    pub agent_lost_after: Duration,
}

impl Default for DrillsConfig {
    fn default() -> Self {
        DrillsConfig {
            tick_every: Duration::from_secs(2),
            agent_lost_after: Duration::from_secs(180),
        }
    }
}

/// What a scheduled drill's row holds before it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Requested {
    pub requested_by: String,
    pub requested_at: Timestamp,
    /// `T_disaster` declared before the drill's start (`drill run --disaster-at`): restore
    /// points are chosen as they were at that instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaster_at: Option<Timestamp>,
}

/// The detail of an `approve` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApproveDetail {
    pub step: String,
    pub role: GateRole,
    #[serde(default)]
    pub comment: String,
}

/// The detail of an `abort` input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbortDetail {
    #[serde(default)]
    pub reason: String,
}

/// Why a drill was not requested.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A drill of the plan is scheduled or running already: one at a time (the database holds
    /// this too, so two requests in the same instant cannot both succeed).
    #[error("a drill of plan {plan} is already {status} (drill {id})")]
    Active {
        plan: DrillId,
        id: Uuid,
        status: &'static str,
    },
    /// The declared disaster instant is after the drill's start: a drill replays a disaster
    /// that has happened by the time it starts, never one to come.
    #[error(
        "the declared disaster instant {disaster_at} is after the drill's start {start}: declare \
         an instant at or before the start"
    )]
    DisasterAfterStart {
        disaster_at: Timestamp,
        start: Timestamp,
    },
    #[error("drills: {0}")]
    Store(#[from] StoreError),
}

/// Requests a drill of `plan`, to start at `at` (or at the orchestrator's next tick): the one
/// way a drill comes to exist, shared by the API, the CLI, the dashboard and the demo. The
/// caller audits it. `disaster_at` declares `T_disaster` before the start ("what if we had lost
/// the site at 02:00?"): restore points are chosen as they were then and the achieved RPO is
/// measured from it; the RTO is still measured from the drill's start.
pub async fn request_drill(
    store: &Store,
    plan: &DrillId,
    actor: &str,
    now: Timestamp,
    at: Option<Timestamp>,
    disaster_at: Option<Timestamp>,
) -> Result<Uuid, RequestError> {
    let start = at.map_or(now, |a| a.max(now));
    if let Some(d) = disaster_at.filter(|d| *d > start) {
        return Err(RequestError::DisasterAfterStart {
            disaster_at: d,
            start,
        });
    }
    let active = |d: &StoredDrill| RequestError::Active {
        plan: plan.clone(),
        id: d.id,
        status: d.status.as_str(),
    };
    for status in [DrillStatus::Scheduled, DrillStatus::Running] {
        let filter = DrillFilter {
            plan: Some(plan.clone()),
            status: Some(status),
        };
        if let Some(d) = store.list_drills(&filter, None, 1).await?.first() {
            return Err(active(d));
        }
    }
    let id = Uuid::new_v4();
    let requested = Requested {
        requested_by: actor.to_owned(),
        requested_at: now,
        disaster_at,
    };
    let drill = NewDrill {
        id,
        plan: plan.clone(),
        status: DrillStatus::Scheduled,
        created_by: actor.to_owned(),
        created_at: now,
        scheduled_for: at,
        started_at: None,
        state: serde_json::to_value(&requested).unwrap_or(serde_json::Value::Null),
    };
    match store.insert_drill(&drill).await {
        Ok(()) => Ok(id),
        // Lost the race with a request in the same instant: name the winner.
        Err(StoreError::Conflict(_)) => {
            let filter = DrillFilter {
                plan: Some(plan.clone()),
                status: None,
            };
            let winner = store.list_drills(&filter, None, 1).await?;
            match winner.first() {
                Some(d) if d.id != id => Err(active(d)),
                _ => Err(StoreError::Conflict(format!("drill {id} exists already")).into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    #[error("drills: {0}")]
    Store(#[from] StoreError),
    #[error("drill {id}: stored state cannot be read: {message}")]
    State { id: Uuid, message: String },
}

/// The orchestrator of one replica.
pub struct Orchestrator {
    store: Store,
    policy: Arc<RwLock<Arc<Policy>>>,
    clock: Arc<dyn Clock>,
    cfg: DrillsConfig,
    lease: Option<LeaseGuard>,
}

impl Orchestrator {
    pub fn new(
        store: Store,
        policy: Arc<RwLock<Arc<Policy>>>,
        clock: Arc<dyn Clock>,
        cfg: DrillsConfig,
    ) -> Self {
        Orchestrator {
            store,
            policy,
            clock,
            cfg,
            lease: None,
        }
    }

    fn policy(&self) -> Arc<Policy> {
        super::current_policy(&self.policy)
    }

    /// Ticks until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut every = tokio::time::interval(self.cfg.tick_every.max(Duration::from_millis(100)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = every.tick() => {
                    if let Err(e) = self.tick().await {
                        tracing::warn!("drill orchestration: {e}; trying again at the next tick");
                    }
                }
            }
        }
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }

    /// One round: take or keep the lease, then advance every active drill.
    pub async fn tick(&mut self) -> Result<(), OrchestrateError> {
        let held = match &mut self.lease {
            Some(l) => l.is_held().await,
            None => false,
        };
        if !held {
            self.lease = self.store.try_acquire_lease(LEASE).await?;
            if self.lease.is_none() {
                return Ok(());
            }
            tracing::info!("this replica now orchestrates drills");
        }
        for drill in self.store.active_drills().await? {
            let id = drill.id;
            if let Err(e) = self.advance(drill).await {
                tracing::warn!(drill = %id, "{e}");
            }
        }
        Ok(())
    }

    async fn advance(&self, drill: StoredDrill) -> Result<(), OrchestrateError> {
        let now = self.clock.now();
        let policy = self.policy();
        let mut run = match drill.status {
            DrillStatus::Scheduled => {
                if drill.scheduled_for.is_some_and(|t| t > now) {
                    return Ok(());
                }
                match self.start(&drill, &policy, now).await? {
                    Some(run) => run,
                    None => return Ok(()),
                }
            }
            _ => serde_json::from_value::<DrillRun>(drill.state.clone()).map_err(|e| {
                OrchestrateError::State {
                    id: drill.id,
                    message: e.to_string(),
                }
            })?,
        };
        let before = serde_json::to_value(&run).unwrap_or_default();
        // What happened since the last tick, in order.
        loop {
            let inputs = self
                .store
                .drill_inputs_after(Some(drill.id), run.inputs_applied, 200)
                .await?;
            if inputs.is_empty() {
                break;
            }
            for input in inputs {
                let at = input.at.max(run.t_outage);
                match input.kind.as_str() {
                    super::store::REPORT_INPUT => {
                        match serde_json::from_value::<ReportDetail>(input.detail) {
                            Ok(d) => run.on_report(&d.report, at),
                            Err(e) => {
                                tracing::warn!(drill = %drill.id, "unreadable report input {}: {e}", input.id)
                            }
                        }
                    }
                    APPROVE_INPUT => match serde_json::from_value::<ApproveDetail>(input.detail) {
                        Ok(d) => {
                            let who = input.actor.trim_start_matches("user:").to_string();
                            if let Err(e) = run.approve(&d.step, &who, d.role, &d.comment, at) {
                                tracing::info!(drill = %drill.id, "approval by {who} not applied: {e}");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(drill = %drill.id, "unreadable approval {}: {e}", input.id)
                        }
                    },
                    ABORT_INPUT => {
                        let reason = serde_json::from_value::<AbortDetail>(input.detail)
                            .map(|d| d.reason)
                            .unwrap_or_default();
                        let who = input.actor.trim_start_matches("user:").to_string();
                        let _ = run.abort(&who, &reason, at);
                    }
                    other => {
                        tracing::warn!(drill = %drill.id, "unknown drill input kind {other:?}")
                    }
                }
                run.inputs_applied = input.id;
            }
        }
        let last_seen = self.store.last_heartbeat_of_host(&run.standby_host).await?;
        run.tick(now, last_seen);
        let after = serde_json::to_value(&run).unwrap_or_default();
        if after == before && drill.status != DrillStatus::Scheduled {
            return Ok(());
        }
        self.publish_tasks(&run, now).await?;
        let ended = run.is_ended();
        let status = if ended {
            match run.ending {
                Some(Ending::Aborted) => DrillStatus::Aborted,
                Some(Ending::NotReady) => DrillStatus::NotReady,
                _ => DrillStatus::Finished,
            }
        } else {
            DrillStatus::Running
        };
        let change = DrillChange {
            status,
            state: after,
            started_at: Some(run.t_outage),
            finished_at: run.ended_at,
        };
        // A drill just started was read at the version of its scheduled row.
        match self
            .store
            .update_drill(drill.id, drill.version, &change)
            .await?
        {
            DrillUpdate::Updated(_) => {}
            DrillUpdate::Stale => {
                tracing::info!(drill = %drill.id, "drill changed meanwhile; read again at the next tick");
                return Ok(());
            }
        }
        if ended {
            self.seal(&run, &policy).await?;
            tracing::info!(drill = %drill.id, ending = ?run.ending, "drill ended and its record is sealed");
        }
        Ok(())
    }

    /// Starts a scheduled drill: plans it from the evidence and the policy in force.
    async fn start(
        &self,
        drill: &StoredDrill,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<Option<DrillRun>, OrchestrateError> {
        let requested: Option<Requested> = serde_json::from_value(drill.state.clone()).ok();
        let Some(plan) = policy.drills.get(&drill.plan).cloned() else {
            let change = DrillChange {
                status: DrillStatus::Failed,
                state: serde_json::json!({
                    "error": format!("drill plan {} is not in the policy in force", drill.plan)
                }),
                started_at: None,
                finished_at: Some(now),
            };
            self.store
                .update_drill(drill.id, drill.version, &change)
                .await?;
            return Ok(None);
        };
        let runs = self.evidence(policy, &plan).await?;
        let disaster_at = requested.as_ref().and_then(|r| r.disaster_at);
        // Restore points as they were at T_disaster (never after the start).
        let t_disaster = disaster_at.map_or(now, |d| d.min(now));
        let (planned, extrapolated, _) = build::plan(policy, &plan, &runs, t_disaster);
        let last_seen = self
            .store
            .last_heartbeat_of_host(&plan.standby.host)
            .await?;
        let run = DrillRun::start(StartInput {
            id: drill.id,
            plan,
            policy_digest: policy.digest.clone(),
            started_by: requested.map_or_else(|| drill.created_by.clone(), |r| r.requested_by),
            now,
            declared_disaster: disaster_at,
            systems: planned,
            extrapolated,
            standby_last_seen: last_seen,
            agent_lost_after: SignedDuration::try_from(self.cfg.agent_lost_after)
                .unwrap_or(SignedDuration::from_secs(180)),
        });
        Ok(Some(run))
    }

    /// The run records of the systems in scope of `plan`.
    async fn evidence(
        &self,
        policy: &Policy,
        plan: &crate::policy::DrillPlan,
    ) -> Result<Vec<RunRecord>, StoreError> {
        runs_in_scope(&self.store, policy, plan).await
    }

    /// Hands open tasks to the standby host and withdraws those that ended without a report.
    async fn publish_tasks(&self, run: &DrillRun, now: Timestamp) -> Result<(), StoreError> {
        let open: Vec<NewDrillTask> = run
            .open_tasks()
            .into_iter()
            .map(|task| NewDrillTask {
                host: run.standby_host.clone(),
                task,
                created_at: now,
            })
            .collect();
        if !open.is_empty() {
            self.store.put_drill_tasks(&open).await?;
        }
        for slot in run.all_slots() {
            if let SlotState::Failed { report: None, .. } = slot.state {
                self.store
                    .withdraw_drill_task(&slot.task.task_id, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Builds, seals and chains the record of an ended drill, with its evidence bundle.
    async fn seal(&self, run: &DrillRun, policy: &Policy) -> Result<(), OrchestrateError> {
        let full_bytes = self.full_bytes(run, policy).await;
        let (mut rec, files) = build::record(run, policy, full_bytes);
        let bundle = match record::bundle(&files) {
            Ok((bytes, sha)) => {
                rec.bundle_sha256 = Some(sha);
                Some(bytes)
            }
            Err(e) => {
                tracing::error!(drill = %run.id, "cannot build the evidence bundle: {e}");
                None
            }
        };
        self.store
            .seal_drill_with::<StoreError>(run.id, bundle.as_deref(), |link| {
                let sealed = record::seal(rec.clone(), &link.previous_hash);
                Ok(SealedRecord {
                    record: serde_json::to_string(&sealed).unwrap_or_default(),
                    record_hash: sealed.record_hash,
                })
            })
            .await?;
        Ok(())
    }

    /// The source size of every system in scope (restored or only extrapolated), from the
    /// latest successful backup of each.
    async fn full_bytes(&self, run: &DrillRun, policy: &Policy) -> u64 {
        let mut total = 0;
        let ids = run
            .systems
            .iter()
            .map(|s| s.system.clone())
            .chain(run.extrapolated.iter().cloned());
        for id in ids {
            if !policy.systems.contains_key(&id) {
                continue;
            }
            if let Ok(runs) = self
                .store
                .runs_of_system(id.as_str(), Page::first(50))
                .await
            {
                total += runs
                    .iter()
                    .map(|r| &r.record)
                    .find(|r| {
                        r.kind == crate::run::RunKind::Backup
                            && r.outcome == crate::run::Outcome::Success
                    })
                    .and_then(|r| r.source.as_ref())
                    .map_or(0, |s| s.bytes);
            }
        }
        total
    }
}

/// The detail of a `report` input, as the store appends it.
#[derive(Debug, Deserialize)]
struct ReportDetail {
    report: DrillReport,
}

/// Every run record of the systems in scope of `plan` (the evidence a drill plans from).
pub async fn runs_in_scope(
    store: &Store,
    policy: &Policy,
    plan: &crate::policy::DrillPlan,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut out = Vec::new();
    for id in crate::drill::order::in_scope(policy, plan) {
        let mut page = Page::first(Page::MAX_LIMIT);
        loop {
            let runs = store.runs_of_system(id.as_str(), page).await?;
            let n = runs.len();
            out.extend(runs.into_iter().map(|r| r.record));
            if n < page.limit as usize {
                break;
            }
            page = page.next();
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The stored chain

/// The first place where the stored chain does not hold.
#[derive(Debug, Serialize)]
pub struct ChainBreak {
    pub drill: Uuid,
    /// 1 for the first record.
    pub position: u64,
    pub problem: String,
}

/// Checks the stored chain: each row's columns against its record text (hash, link, drill id,
/// position), then every hash and link recomputed by `record::verify_chain`. The verified
/// records, or the first break in chain order.
pub fn check_chain(rows: &[(Uuid, DrillSeal)]) -> Result<Vec<DrillRecord>, ChainBreak> {
    let mut records: Vec<DrillRecord> = Vec::with_capacity(rows.len());
    // A content problem of an earlier record comes before a column problem of a later one.
    let earlier = |records: &[DrillRecord]| {
        record::verify_chain(records).err().map(|e| {
            let drill = chain_error_drill(&e);
            ChainBreak {
                drill,
                position: rows
                    .iter()
                    .position(|(id, _)| *id == drill)
                    .map_or(0, |p| p as u64 + 1),
                problem: e.to_string(),
            }
        })
    };
    for (i, (id, seal)) in rows.iter().enumerate() {
        let position = i as u64 + 1;
        let at = |problem: String| ChainBreak {
            drill: *id,
            position,
            problem,
        };
        let problem = if seal.link.seq != position {
            Some(format!(
                "drill {id} is stored at chain position {}, but it is record number {position}: \
                 a record before it was removed",
                seal.link.seq
            ))
        } else if i > 0 && seal.link.previous_hash != rows[i - 1].1.record_hash {
            Some(format!(
                "drill {id}'s stored previous_hash {} is not the stored record_hash {} of drill \
                 {} before it: a record was removed, inserted or altered",
                seal.link.previous_hash,
                rows[i - 1].1.record_hash,
                rows[i - 1].0
            ))
        } else {
            match serde_json::from_str::<DrillRecord>(&seal.record) {
                Err(e) => Some(format!(
                    "drill {id}'s stored record text is not a drill record ({e}): it was altered"
                )),
                Ok(r) if r.header.drill_id != *id => Some(format!(
                    "the record stored with drill {id} is the record of drill {}: records were \
                     swapped",
                    r.header.drill_id
                )),
                Ok(r) if r.record_hash != seal.record_hash => Some(format!(
                    "drill {id}'s stored record_hash {} differs from the hash in its record text \
                     {}: one of them was altered",
                    seal.record_hash, r.record_hash
                )),
                Ok(r) if r.previous_hash != seal.link.previous_hash => Some(format!(
                    "drill {id}'s stored previous_hash {} differs from the link in its record text \
                     {}: one of them was altered",
                    seal.link.previous_hash, r.previous_hash
                )),
                Ok(r) => {
                    records.push(r);
                    None
                }
            }
        };
        if let Some(problem) = problem {
            return Err(earlier(&records).unwrap_or_else(|| at(problem)));
        }
    }
    match earlier(&records) {
        Some(b) => Err(b),
        None => Ok(records),
    }
}

fn chain_error_drill(e: &record::ChainError) -> Uuid {
    match e {
        record::ChainError::FirstLink { drill, .. }
        | record::ChainError::BrokenLink { drill, .. }
        | record::ChainError::HashMismatch { drill, .. } => *drill,
    }
}
