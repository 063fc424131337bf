//! The operator and viewer endpoints of disaster-recovery drills: the plans of the policy in
//! force and when each is due, a plan's preview (which snapshot from which repository, how long),
//! starting or scheduling a drill, the drills with their live state, gate approvals and aborts,
//! and for a sealed drill its record (JSON), its rendered report (HTML), its evidence bundle,
//! the verification of the record chain and the drill calendar.
//!
//! This module never runs a drill. Starting one inserts a `scheduled` row; approvals and aborts
//! are appended as drill inputs; the orchestrator ([`super::drills`], on the replica holding its
//! lease) applies them at its next tick. What the API checks before appending (that a gate is
//! waiting and the caller's role suffices, that a drill has not ended) is checked against the
//! stored state with the state machine's own rules, on a copy, so the answer is what the
//! orchestrator will do unless the drill moves on meanwhile.
//!
//! Every route is in [`auth::ROLE_MATRIX`](super::auth::ROLE_MATRIX) and goes through the gate;
//! every change is audited. No SQL here, no secret in any answer (plans carry secret *sources*
//! only in the policy files a task ships, which these views never show). The mapping from stored
//! rows, drill states and records to answers is pure and unit-tested.

use std::str::FromStr;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::{
    Auth, Body, DRILL_ABORT_PATH, DRILL_APPROVE_PATH, DRILL_BUNDLE_PATH, DRILL_CALENDAR_PATH,
    DRILL_CHAIN_PATH, DRILL_PATH, DRILL_PLANS_PATH, DRILL_PREVIEW_PATH, DRILL_RECORD_PATH,
    DRILL_REPORT_PATH, DRILLS_PATH, Failure, Param, Principal, Verb,
};
use super::drills::{
    self, ABORT_INPUT, APPROVE_INPUT, AbortDetail, ApproveDetail, RequestError, Requested,
    runs_in_scope,
};
use super::routes::Routes;
use super::store::{DrillFilter, DrillSeal, DrillStatus, Page, Role, Store, StoredDrill};
use crate::api::{DrillReport, ErrorCode};
use crate::clock::Clock;
use crate::drill::calendar::{self, DrillHistoryItem};
use crate::drill::machine::{DrillRun, Ending, Phase, SlotState, StepState, SystemStage, TaskSlot};
use crate::drill::measure::Verdict;
use crate::drill::record::DrillRecord;
use crate::drill::select::{PassedOver, RestorePoint};
use crate::drill::{build, render};
use crate::i18n::Lang;
use crate::policy::{DrillId, DrillPlan, GateRole, Policy, RepoId, SiteId, SystemId};

/// The largest request body accepted (a plan name, a step name, a comment or a reason): the
/// people API's limit.
const MAX_BODY: usize = 64 << 10;
/// Drills per page unless `limit` says otherwise (at most [`Page::MAX_LIMIT`]).
const DEFAULT_LIMIT: u32 = 50;
/// How many of the latest sealed records the preview's throughput is taken from.
const THROUGHPUT_RECORDS: usize = 10;
/// The page is a document, not an application: it may use its own inline styles, nothing else.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

// ---------------------------------------------------------------------------------------------
// State

/// What the drill endpoints share. Cheap to clone.
#[derive(Clone)]
pub struct DrillsApi {
    pub auth: Auth,
    /// The policy in force (kept current by the server's reload loop).
    pub policy: Arc<RwLock<Arc<Policy>>>,
}

impl DrillsApi {
    pub fn new(store: Store, policy: Arc<RwLock<Arc<Policy>>>, clock: Arc<dyn Clock>) -> Self {
        DrillsApi {
            auth: Auth::new(store, clock),
            policy,
        }
    }

    fn store(&self) -> &Store {
        &self.auth.store
    }

    pub(crate) fn policy(&self) -> Arc<Policy> {
        super::current_policy(&self.policy)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.auth.clock.now()
    }

    /// Every sealed record that can be read, in chain order (an unreadable one is logged and
    /// left out: `GET /api/v1/drills/chain` names it).
    pub(crate) async fn sealed_records(&self) -> Result<Vec<DrillRecord>, Failure> {
        let chain = self.store().drill_chain().await.map_err(Failure::store)?;
        Ok(chain
            .into_iter()
            .filter_map(|(id, seal)| match serde_json::from_str(&seal.record) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(drill = %id, "sealed drill record cannot be read: {e}");
                    None
                }
            })
            .collect())
    }

    pub(crate) async fn drill(&self, id: Uuid) -> Result<StoredDrill, Failure> {
        self.store()
            .get_drill(id)
            .await
            .map_err(Failure::store)?
            .ok_or_else(|| {
                Failure::not_found(format!(
                    "drill {id} does not exist; GET {DRILLS_PATH} lists the drills"
                ))
            })
    }
}

/// The drills router, every route behind the role-matrix gate.
pub fn router(api: DrillsApi) -> axum::Router {
    routes().finish(api.auth.clone(), MAX_BODY, api)
}

/// Every drill route and its handler.
pub(super) fn routes() -> Routes<DrillsApi> {
    Routes::new()
        .add(Verb::Get, DRILL_PLANS_PATH, plans)
        .add(Verb::Get, DRILL_PREVIEW_PATH, preview)
        .add(Verb::Get, DRILLS_PATH, list)
        .add(Verb::Post, DRILLS_PATH, start)
        .add(Verb::Get, DRILL_CHAIN_PATH, chain)
        .add(Verb::Get, DRILL_PATH, detail)
        .add(Verb::Post, DRILL_APPROVE_PATH, approve)
        .add(Verb::Post, DRILL_ABORT_PATH, abort)
        .add(Verb::Get, DRILL_RECORD_PATH, record_json)
        .add(Verb::Get, DRILL_BUNDLE_PATH, bundle)
        .add(Verb::Get, DRILL_REPORT_PATH, report)
        .add(Verb::Get, DRILL_CALENDAR_PATH, calendar_view)
}

fn conflict(message: impl Into<String>) -> Failure {
    Failure::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
}

fn unknown_plan(plan: &str) -> Failure {
    Failure::not_found(format!(
        "drill plan {plan:?} is not in the policy in force; GET {DRILL_PLANS_PATH} lists the plans"
    ))
}

/// PostgreSQL cannot store a NUL character; refused on every backend alike.
fn no_nul(field: &str, value: &str) -> Result<(), Failure> {
    if value.contains('\0') {
        Err(Failure::bad_request(format!(
            "{field} contains a NUL character"
        )))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// The simulated disaster of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScenarioView {
    /// `site-loss`, `component-loss` or `ransomware`.
    pub kind: String,
    pub lost_site: Option<SiteId>,
    pub lost_system: Option<SystemId>,
    pub compromised_for_seconds: Option<u64>,
}

/// Where a plan restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StandbyView {
    pub site: SiteId,
    pub host: String,
    pub restore_root: String,
    pub parallelism: u32,
    pub keep_restored: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlanStepView {
    pub name: String,
    /// `restore`, `verify`, `command`, `wait`, `gate` or `failback`.
    pub action: String,
    pub per_system: bool,
    pub timeout_seconds: u64,
    /// A gate: the least role that approves it.
    pub role: Option<String>,
    pub approver: Option<String>,
    /// The timeline mark it sets when it succeeds.
    pub mark: Option<String>,
}

/// When a plan is next due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DueView {
    pub plan: DrillId,
    pub due_at: Timestamp,
    pub last_at: Option<Timestamp>,
    pub overdue: bool,
    /// Where the cadence comes from, in words.
    pub basis: String,
}

/// One plan of `GET /api/v1/drill-plans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DrillPlanView {
    pub id: DrillId,
    pub title: String,
    pub title_zh: Option<String>,
    /// `restore-test`, `targeted-switchover` or `full-switchover`.
    pub drill_type: String,
    pub scenario: ScenarioView,
    pub standby: StandbyView,
    pub steps: Vec<PlanStepView>,
    /// `continue` or `stop`.
    pub on_failure: String,
    /// `None`: the plan has no cadence (neither its own nor a tier's).
    pub due: Option<DueView>,
}

/// A snapshot chosen (or that would be chosen) to restore a system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RestorePointView {
    pub snapshot: String,
    pub repository: RepoId,
    pub location: String,
    pub immutable: bool,
    pub captured_at: Timestamp,
    pub available_at: Timestamp,
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

impl From<&RestorePoint> for RestorePointView {
    fn from(p: &RestorePoint) -> Self {
        RestorePointView {
            snapshot: p.snapshot.clone(),
            repository: p.repository.clone(),
            location: p.location.to_string(),
            immutable: p.immutable,
            captured_at: p.t_cap,
            available_at: p.t_avail,
            bytes: p.bytes,
            files: p.files,
        }
    }
}

/// A newer candidate not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PassedOverView {
    pub snapshot: String,
    pub repository: Option<RepoId>,
    pub captured_at: Option<Timestamp>,
    pub reason: String,
}

impl From<&PassedOver> for PassedOverView {
    fn from(p: &PassedOver) -> Self {
        PassedOverView {
            snapshot: p.snapshot.clone(),
            repository: p.repository.clone(),
            captured_at: p.t_cap,
            reason: p.reason.clone(),
        }
    }
}

/// One system of a preview, in restore order.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PreviewSystemView {
    pub system: SystemId,
    pub tier: String,
    /// In-scope systems it waits for.
    pub prerequisites: Vec<SystemId>,
    /// `None`: no copy the scenario allows; `reasons` says why.
    pub restore_point: Option<RestorePointView>,
    pub passed_over: Vec<PassedOverView>,
    pub reasons: Vec<String>,
    pub estimated_seconds: Option<f64>,
}

/// `GET /api/v1/drill-plans/{plan}/preview`: nothing is touched.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PreviewView {
    pub plan: DrillId,
    pub at: Timestamp,
    pub systems: Vec<PreviewSystemView>,
    /// In scope but only extrapolated (`sample-per-tier`).
    pub extrapolated: Vec<SystemId>,
    /// `None` without a throughput from past drills, or when a system has no size.
    pub estimated_seconds: Option<f64>,
    pub throughput_bytes_per_second: Option<f64>,
}

/// `POST /api/v1/drills`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartDrillRequest {
    pub plan: String,
    /// Start at this time (RFC 3339); now when absent or past.
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// Declare the disaster at this earlier instant (RFC 3339, at or before the start): restore
    /// points are chosen as they were then and the achieved RPO is measured from it; the RTO
    /// is still measured from the drill's start. Absent: the disaster is the drill's start.
    #[serde(default)]
    pub disaster_at: Option<Timestamp>,
}

/// The answer to `POST /api/v1/drills`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StartedDrill {
    pub id: Uuid,
    pub plan: DrillId,
    pub status: String,
    pub scheduled_for: Option<Timestamp>,
}

/// `?plan=&status=&after=&limit=`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillsQuery {
    pub plan: Option<String>,
    /// `scheduled`, `running`, `finished`, `aborted`, `not-ready` or `failed`.
    pub status: Option<String>,
    pub after: Option<Uuid>,
    pub limit: Option<u32>,
}

/// `?lang=en|zh-CN&format=html|pdf` of the drill report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    pub lang: Option<String>,
    pub format: Option<String>,
}

/// One drill in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillRow {
    pub id: Uuid,
    pub plan: DrillId,
    /// `scheduled`, `running`, `finished`, `aborted`, `not-ready` or `failed`.
    pub status: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub scheduled_for: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// `readiness`, `running`, `cleanup` or `ended`, once started.
    pub phase: Option<String>,
    /// `completed`, `stopped`, `aborted` or `not-ready`, once it ended.
    pub ending: Option<String>,
    /// `pass`, `pass-with-conditions` or `fail`, once sealed.
    pub verdict: Option<String>,
}

/// A page of drills, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillsPage {
    pub drills: Vec<DrillRow>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<Uuid>,
}

/// Who asked for a drill that has not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RequestedView {
    pub requested_by: String,
    pub requested_at: Timestamp,
}

/// A mark of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MarkView {
    pub mark: String,
    pub at: Timestamp,
    pub recorded_by: String,
    pub step: String,
}

/// A task handed to the standby agent and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub task_id: String,
    pub step: String,
    /// `open`, `succeeded` or `failed`.
    pub state: String,
    pub reason: Option<String>,
    pub offered_at: Timestamp,
    pub deadline: Timestamp,
    /// The agent's report, once received.
    pub report: Option<DrillReport>,
}

impl From<&TaskSlot> for TaskView {
    fn from(s: &TaskSlot) -> Self {
        let (state, reason) = match &s.state {
            SlotState::Open => ("open", None),
            SlotState::Succeeded { .. } => ("succeeded", None),
            SlotState::Failed { reason, .. } => ("failed", Some(reason.clone())),
        };
        TaskView {
            task_id: s.task.task_id.clone(),
            step: s.task.step.clone(),
            state: state.to_string(),
            reason,
            offered_at: s.offered_at,
            deadline: s.deadline,
            report: s.report().cloned(),
        }
    }
}

/// A gate's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    pub by: String,
    pub role: String,
    pub at: Timestamp,
    pub comment: String,
}

/// One plan step during the drill.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepRunView {
    pub name: String,
    pub action: String,
    pub per_system: bool,
    /// `pending`, `running`, `done`, `failed` or `skipped`.
    pub state: String,
    pub reason: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// A gate that is running: it waits for `POST /api/v1/drills/{id}/approve`.
    pub awaiting_approval: bool,
    /// A gate: the least role that approves it.
    pub role: Option<String>,
    pub approval: Option<ApprovalView>,
    /// A drill-wide command or fail-back.
    pub task: Option<TaskView>,
}

/// One system during the drill.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SystemRunView {
    pub system: SystemId,
    pub tier: String,
    /// `going`, `failed` or `skipped`.
    pub stage: String,
    pub reason: Option<String>,
    pub failed_step: Option<String>,
    pub restore_point: Option<RestorePointView>,
    pub target_dir: String,
    /// In plan step order.
    pub tasks: Vec<TaskView>,
}

/// One readiness finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadinessView {
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogView {
    pub at: Timestamp,
    pub step: String,
    pub system: Option<SystemId>,
    pub event: String,
    pub detail: String,
}

/// The live state of a started drill.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub title: String,
    pub title_zh: Option<String>,
    pub drill_type: String,
    pub started_by: String,
    pub policy_digest: String,
    pub t_outage: Timestamp,
    /// `T_disaster` when the drill declared one before its start.
    pub declared_disaster: Option<Timestamp>,
    pub compromise_at: Option<Timestamp>,
    pub standby_host: String,
    pub phase: String,
    pub ending: Option<String>,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub marks: Vec<MarkView>,
    pub steps: Vec<StepRunView>,
    /// In restore order.
    pub systems: Vec<SystemRunView>,
    pub extrapolated: Vec<SystemId>,
    pub readiness: Vec<ReadinessView>,
    pub probe: Option<TaskView>,
    pub cleanup: Option<TaskView>,
    pub log: Vec<LogView>,
    pub deviations: Vec<String>,
}

/// Where a sealed record sits in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SealView {
    pub chain_seq: u64,
    pub record_hash: String,
    pub previous_hash: String,
}

/// `GET /api/v1/drills/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DrillDetail {
    #[serde(flatten)]
    pub drill: DrillRow,
    /// Before it starts.
    pub requested: Option<RequestedView>,
    /// Why it could not be started (status `failed`).
    pub error: Option<String>,
    /// Once started.
    pub run: Option<RunView>,
    /// Once sealed.
    pub seal: Option<SealView>,
}

/// `POST /api/v1/drills/{id}/approve`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub step: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /api/v1/drills/{id}/abort`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    #[serde(default)]
    pub reason: String,
}

/// The answer to an approval or abort: queued for the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InputAccepted {
    pub drill: Uuid,
    /// The id of the drill input appended.
    pub input: i64,
    pub message: String,
}

/// `GET /api/v1/drills/chain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainView {
    pub ok: bool,
    /// Sealed records read.
    pub records: u64,
    /// What does not hold, when something does not.
    pub error: Option<String>,
}

/// One requirement of the regulatory calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RegulatoryView {
    pub requirement: String,
    pub last_at: Option<Timestamp>,
    pub due_at: Timestamp,
    pub overdue: bool,
}

/// A system never drilled or overdue for its tier's `drill-every`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SystemDueView {
    pub system: SystemId,
    pub last_at: Option<Timestamp>,
    pub due_at: Timestamp,
}

/// `GET /api/v1/drill-calendar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CalendarView {
    pub at: Timestamp,
    /// Plans, soonest due first.
    pub plans: Vec<DueView>,
    pub regulatory: Vec<RegulatoryView>,
    pub systems_due: Vec<SystemDueView>,
}

/// The schemas of this module's bodies and answers, for the OpenAPI document.
pub(super) fn schemas() -> super::openapi::Schemas {
    use super::openapi::{add, add_list};
    let mut out = Vec::new();
    add_list::<DrillPlanView>(&mut out, "DrillPlanList");
    add::<PreviewView>(&mut out);
    add::<StartDrillRequest>(&mut out);
    add::<StartedDrill>(&mut out);
    add::<DrillsPage>(&mut out);
    add::<DrillDetail>(&mut out);
    add::<ApproveRequest>(&mut out);
    add::<AbortRequest>(&mut out);
    add::<InputAccepted>(&mut out);
    add::<ChainView>(&mut out);
    add::<CalendarView>(&mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Pure mapping

fn kebab<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn phase_name(p: Phase) -> String {
    kebab(&p)
}

fn due_view(d: &calendar::DueDrill) -> DueView {
    DueView {
        plan: d.plan.clone(),
        due_at: d.due_at,
        last_at: d.last_at,
        overdue: d.overdue,
        basis: d.basis.clone(),
    }
}

/// A plan as `GET /api/v1/drill-plans` shows it, with its due date if it has a cadence.
pub fn plan_view(plan: &DrillPlan, due: Option<&calendar::DueDrill>) -> DrillPlanView {
    DrillPlanView {
        id: plan.id.clone(),
        title: plan.title.clone(),
        title_zh: plan.title_zh.clone(),
        drill_type: plan.drill_type.to_string(),
        scenario: ScenarioView {
            kind: plan.scenario.kind.to_string(),
            lost_site: plan.scenario.lost_site.clone(),
            lost_system: plan.scenario.system.clone(),
            compromised_for_seconds: plan.scenario.compromised_for.map(|d| d.as_std().as_secs()),
        },
        standby: StandbyView {
            site: plan.standby.site.clone(),
            host: plan.standby.host.clone(),
            restore_root: plan.standby.restore_root.as_path().display().to_string(),
            parallelism: plan.standby.parallelism,
            keep_restored: plan.standby.keep_restored,
        },
        steps: plan
            .steps
            .iter()
            .map(|s| PlanStepView {
                name: s.name.clone(),
                action: s.action.to_string(),
                per_system: s.is_per_system(),
                timeout_seconds: s.timeout.as_std().as_secs(),
                role: (s.action == crate::policy::StepAction::Gate)
                    .then(|| s.role.unwrap_or(GateRole::Operator).to_string()),
                approver: s.approver.clone(),
                mark: s.effective_mark().map(|m| m.to_string()),
            })
            .collect(),
        on_failure: kebab(&plan.on_failure),
        due: due.map(due_view),
    }
}

/// The calendar's view of a sealed record.
pub fn history_item(r: &DrillRecord) -> DrillHistoryItem {
    DrillHistoryItem {
        plan: r.header.plan.clone(),
        drill_type: r.header.drill_type,
        finished_at: r.header.finished_at.unwrap_or(r.header.started_at),
        verdict: r.verdict,
        systems: r.scope.restored.clone(),
        failed: r
            .results
            .iter()
            .filter(|s| s.result.verdict == Verdict::Fail)
            .map(|s| s.result.system.clone())
            .collect(),
    }
}

/// Restore throughput of past drills (bytes per second): the bytes restored by the latest
/// [`THROUGHPUT_RECORDS`] sealed records over the time their restores took. `None` when none
/// restored anything measurable.
pub fn past_throughput(records: &[DrillRecord]) -> Option<f64> {
    let (mut bytes, mut seconds) = (0.0_f64, 0.0_f64);
    let recent = records.iter().rev().take(THROUGHPUT_RECORDS);
    for s in recent.flat_map(|r| r.results.iter()) {
        let Some(rate) = s
            .result
            .throughput_bytes_per_second
            .filter(|t| t.is_finite() && *t > 0.0)
        else {
            continue;
        };
        if s.bytes_restored == 0 {
            continue;
        }
        let b = s.bytes_restored as f64;
        bytes += b;
        seconds += b / rate;
    }
    (seconds > 0.0).then(|| bytes / seconds)
}

/// The preview's answer.
pub fn preview_view(p: &build::Preview) -> Result<PreviewView, Failure> {
    Ok(PreviewView {
        plan: p
            .plan
            .parse()
            .map_err(|_| Failure::internal(format!("preview of plan {:?}", p.plan)))?,
        at: p.at,
        systems: p
            .systems
            .iter()
            .map(|s| PreviewSystemView {
                system: s.system.clone(),
                tier: s.tier.clone(),
                prerequisites: s.prerequisites.clone(),
                restore_point: s.selection.chosen.as_ref().map(RestorePointView::from),
                passed_over: s
                    .selection
                    .passed_over
                    .iter()
                    .map(PassedOverView::from)
                    .collect(),
                reasons: s.selection.reasons.clone(),
                estimated_seconds: s.estimated_seconds,
            })
            .collect(),
        extrapolated: p.extrapolated.clone(),
        estimated_seconds: p.estimated_seconds,
        throughput_bytes_per_second: p.throughput_bytes_per_second,
    })
}

/// What the list shows of a drill's state.
#[derive(Debug, Default, Deserialize)]
struct StateHead {
    phase: Option<Phase>,
    ending: Option<Ending>,
}

/// What the list shows of a sealed record.
#[derive(Debug, Deserialize)]
struct RecordHead {
    verdict: Verdict,
}

/// A stored drill as a row of lists.
pub fn drill_row(d: &StoredDrill) -> DrillRow {
    let head: StateHead = serde_json::from_value(d.state.clone()).unwrap_or_default();
    let verdict = d
        .seal
        .as_ref()
        .and_then(|s| serde_json::from_str::<RecordHead>(&s.record).ok())
        .map(|r| r.verdict.to_string());
    DrillRow {
        id: d.id,
        plan: d.plan.clone(),
        status: d.status.as_str().to_string(),
        created_by: d.created_by.clone(),
        created_at: d.created_at,
        scheduled_for: d.scheduled_for,
        started_at: d.started_at,
        finished_at: d.finished_at,
        phase: head.phase.map(phase_name),
        ending: head.ending.map(|e| e.as_str().to_string()),
        verdict,
    }
}

fn step_state(s: &StepState) -> (&'static str, Option<String>) {
    match s {
        StepState::Pending => ("pending", None),
        StepState::Running => ("running", None),
        StepState::Done => ("done", None),
        StepState::Failed { reason } => ("failed", Some(reason.clone())),
        StepState::Skipped { reason } => ("skipped", Some(reason.clone())),
    }
}

/// The live state of a started drill.
pub fn run_view(run: &DrillRun) -> RunView {
    let steps = run
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (state, reason) = step_state(&s.state);
            let gate = s.action == crate::policy::StepAction::Gate;
            StepRunView {
                name: s.name.clone(),
                action: s.action.to_string(),
                per_system: s.per_system,
                state: state.to_string(),
                reason,
                started_at: s.started_at,
                finished_at: s.finished_at,
                awaiting_approval: gate
                    && s.state == StepState::Running
                    && run.phase == Phase::Running,
                role: gate.then(|| {
                    run.plan
                        .steps
                        .get(i)
                        .and_then(|p| p.role)
                        .unwrap_or(GateRole::Operator)
                        .to_string()
                }),
                approval: s.approval.as_ref().map(|a| ApprovalView {
                    by: a.by.clone(),
                    role: a.role.clone(),
                    at: a.at,
                    comment: a.comment.clone(),
                }),
                task: s.task.as_ref().map(TaskView::from),
            }
        })
        .collect();
    let systems = run
        .systems
        .iter()
        .map(|s| {
            let (stage, reason, failed_step) = match &s.stage {
                SystemStage::Going => ("going", None, None),
                SystemStage::Failed { step, reason, .. } => {
                    ("failed", Some(reason.clone()), Some(step.clone()))
                }
                SystemStage::Skipped { reason } => ("skipped", Some(reason.clone()), None),
            };
            SystemRunView {
                system: s.system.clone(),
                tier: s.tier.to_string(),
                stage: stage.to_string(),
                reason,
                failed_step,
                restore_point: s.point.as_ref().map(RestorePointView::from),
                target_dir: s.target_dir.clone(),
                tasks: s.tasks.values().map(TaskView::from).collect(),
            }
        })
        .collect();
    RunView {
        title: run.plan.title.clone(),
        title_zh: run.plan.title_zh.clone(),
        drill_type: run.plan.drill_type.to_string(),
        started_by: run.started_by.clone(),
        policy_digest: run.policy_digest.clone(),
        t_outage: run.t_outage,
        declared_disaster: run.declared_disaster,
        compromise_at: run.compromise_at,
        standby_host: run.standby_host.clone(),
        phase: phase_name(run.phase),
        ending: run.ending.map(|e| e.as_str().to_string()),
        ended_at: run.ended_at,
        end_reason: run.end_reason.clone(),
        marks: run
            .marks
            .iter()
            .map(|(m, e)| MarkView {
                mark: m.to_string(),
                at: e.at,
                recorded_by: e.recorded_by.clone(),
                step: e.step.clone(),
            })
            .collect(),
        steps,
        systems,
        extrapolated: run.extrapolated.clone(),
        readiness: run
            .readiness
            .iter()
            .map(|r| ReadinessView {
                subject: r.subject.clone(),
                ok: r.ok,
                detail: r.detail.clone(),
            })
            .collect(),
        probe: run.probe.as_ref().map(TaskView::from),
        cleanup: run.cleanup.as_ref().map(TaskView::from),
        log: run
            .log
            .iter()
            .map(|l| LogView {
                at: l.at,
                step: l.step.clone(),
                system: l.system.clone(),
                event: l.event.clone(),
                detail: l.detail.clone(),
            })
            .collect(),
        deviations: run.deviations.clone(),
    }
}

/// A stored drill with everything its state says.
pub fn drill_detail(d: &StoredDrill) -> DrillDetail {
    let (requested, error, run) = match d.status {
        DrillStatus::Scheduled => (
            serde_json::from_value::<Requested>(d.state.clone())
                .ok()
                .map(|r| RequestedView {
                    requested_by: r.requested_by,
                    requested_at: r.requested_at,
                }),
            None,
            None,
        ),
        DrillStatus::Failed => (
            None,
            d.state
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_string),
            None,
        ),
        _ => match serde_json::from_value::<DrillRun>(d.state.clone()) {
            Ok(run) => (None, None, Some(run_view(&run))),
            Err(e) => {
                tracing::warn!(drill = %d.id, "stored drill state cannot be read: {e}");
                (
                    None,
                    Some("the stored drill state cannot be read".to_string()),
                    None,
                )
            }
        },
    };
    DrillDetail {
        drill: drill_row(d),
        requested,
        error,
        run,
        seal: d.seal.as_ref().map(|s| SealView {
            chain_seq: s.link.seq,
            record_hash: s.record_hash.clone(),
            previous_hash: s.link.previous_hash.clone(),
        }),
    }
}

/// The stored chain checked by [`super::drills::check_chain`], as the API answers it.
pub fn check_chain(chain: &[(Uuid, DrillSeal)]) -> ChainView {
    match super::drills::check_chain(chain) {
        Ok(records) => ChainView {
            ok: true,
            records: records.len() as u64,
            error: None,
        },
        Err(b) => ChainView {
            ok: false,
            records: chain.len() as u64,
            error: Some(b.problem),
        },
    }
}

/// The calendar at `now` from the history of sealed records.
pub fn calendar(policy: &Policy, records: &[DrillRecord], now: Timestamp) -> CalendarView {
    let history: Vec<DrillHistoryItem> = records.iter().map(history_item).collect();
    CalendarView {
        at: now,
        plans: calendar::due(policy, &history, now)
            .iter()
            .map(due_view)
            .collect(),
        regulatory: calendar::regulatory(&history, now)
            .into_iter()
            .map(|r| RegulatoryView {
                requirement: r.requirement,
                last_at: r.last_at,
                due_at: r.due_at,
                overdue: r.overdue,
            })
            .collect(),
        systems_due: calendar::never_drilled_or_overdue(policy, &history, now)
            .into_iter()
            .map(|s| SystemDueView {
                system: s.system,
                last_at: s.last_at,
                due_at: s.due_at,
            })
            .collect(),
    }
}

/// The gate role a person's role stands for; a viewer approves nothing.
fn gate_role(role: Role) -> Option<GateRole> {
    match role {
        Role::Viewer => None,
        Role::Operator => Some(GateRole::Operator),
        Role::Admin => Some(GateRole::Admin),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

fn respond<T: IntoResponse>(r: Result<T, Failure>) -> Response {
    match r {
        Ok(ok) => ok.into_response(),
        Err(f) => f.into_response(),
    }
}

async fn plans(State(api): State<DrillsApi>) -> Response {
    respond(
        async {
            let policy = api.policy();
            let records = api.sealed_records().await?;
            let history: Vec<DrillHistoryItem> = records.iter().map(history_item).collect();
            let due = calendar::due(&policy, &history, api.now());
            let views: Vec<DrillPlanView> = policy
                .drills
                .values()
                .map(|p| plan_view(p, due.iter().find(|d| d.plan == p.id)))
                .collect();
            Ok(Json(views))
        }
        .await,
    )
}

async fn preview(State(api): State<DrillsApi>, Param(plan): Param<String>) -> Response {
    respond(
        async {
            let policy = api.policy();
            let drill = policy
                .drills
                .get(plan.as_str())
                .cloned()
                .ok_or_else(|| unknown_plan(&plan))?;
            let runs = runs_in_scope(api.store(), &policy, &drill)
                .await
                .map_err(Failure::store)?;
            let throughput = past_throughput(&api.sealed_records().await?);
            let now = api.now();
            // Selection reads every run record in scope: CPU work, off the async threads.
            let built = tokio::task::spawn_blocking(move || {
                build::preview(&policy, &drill, &runs, throughput, now)
            })
            .await
            .map_err(|e| Failure::internal(format!("the preview task failed: {e}")))?;
            Ok(Json(preview_view(&built)?))
        }
        .await,
    )
}

async fn start(
    State(api): State<DrillsApi>,
    Extension(me): Extension<Principal>,
    Body(req): Body<StartDrillRequest>,
) -> Response {
    respond(
        start_drill(&api, &me, &req)
            .await
            .map(|started| (StatusCode::CREATED, Json(started))),
    )
}

/// Requests a drill of `req.plan` for `me` (audited): the one start of the API and the
/// dashboard.
pub(crate) async fn start_drill(
    api: &DrillsApi,
    me: &Principal,
    req: &StartDrillRequest,
) -> Result<StartedDrill, Failure> {
    no_nul("plan", &req.plan)?;
    let policy = api.policy();
    let plan = policy
        .drills
        .get(req.plan.as_str())
        .ok_or_else(|| unknown_plan(&req.plan))?;
    let now = api.now();
    let id = drills::request_drill(
        api.store(),
        &plan.id,
        &me.actor(),
        now,
        req.at,
        req.disaster_at,
    )
    .await
    .map_err(|e| match e {
        RequestError::Active { id, .. } => conflict(format!(
            "{e}; wait for it to end or abort it (POST /api/v1/drills/{id}/abort)"
        )),
        RequestError::DisasterAfterStart { .. } => Failure::bad_request(e.to_string()),
        RequestError::Store(e) => Failure::store(e),
    })?;
    api.auth
        .audit(
            &me.actor(),
            "drill.start",
            &format!("drill:{id}"),
            serde_json::json!({
                "plan": plan.id,
                "scheduled_for": req.at,
                "disaster_at": req.disaster_at,
            }),
        )
        .await;
    Ok(StartedDrill {
        id,
        plan: plan.id.clone(),
        status: DrillStatus::Scheduled.as_str().to_string(),
        scheduled_for: req.at,
    })
}

async fn list(
    State(api): State<DrillsApi>,
    q: Result<Query<DrillsQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            let Query(q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
            let plan = q
                .plan
                .as_deref()
                .map(DrillId::from_str)
                .transpose()
                .map_err(|_| Failure::bad_request("`plan` is not a drill plan id"))?;
            let status = q
            .status
            .as_deref()
            .map(DrillStatus::from_str)
            .transpose()
            .map_err(|_| {
                Failure::bad_request(
                    "`status` is one of scheduled, running, finished, aborted, not-ready, failed",
                )
            })?;
            let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, Page::MAX_LIMIT);
            let drills = api
                .store()
                .list_drills(&DrillFilter { plan, status }, q.after, limit)
                .await
                .map_err(Failure::store)?;
            let next_after = if drills.len() == limit as usize {
                drills.last().map(|d| d.id)
            } else {
                None
            };
            Ok(Json(DrillsPage {
                drills: drills.iter().map(drill_row).collect(),
                next_after,
            }))
        }
        .await,
    )
}

async fn detail(State(api): State<DrillsApi>, Param(id): Param<Uuid>) -> Response {
    respond(async { Ok(Json(drill_detail(&api.drill(id).await?))) }.await)
}

/// The stored state of a drill that has started and not ended; 409 otherwise.
fn running_state(d: &StoredDrill) -> Result<DrillRun, Failure> {
    match d.status {
        DrillStatus::Scheduled => Err(conflict(format!(
            "drill {} has not started yet (it starts at the orchestrator's next tick{})",
            d.id,
            d.scheduled_for
                .map(|t| format!(" after {t}"))
                .unwrap_or_default()
        ))),
        DrillStatus::Running => serde_json::from_value(d.state.clone()).map_err(|e| {
            Failure::internal(format!("drill {}: stored state cannot be read: {e}", d.id))
        }),
        other => Err(conflict(format!(
            "drill {} has ended ({})",
            d.id,
            other.as_str()
        ))),
    }
}

async fn approve(
    State(api): State<DrillsApi>,
    Extension(me): Extension<Principal>,
    Param(id): Param<Uuid>,
    Body(req): Body<ApproveRequest>,
) -> Response {
    respond(
        approve_gate(&api, &me, id, &req)
            .await
            .map(|accepted| (StatusCode::ACCEPTED, Json(accepted))),
    )
}

/// Appends `me`'s approval of gate `req.step` of drill `id` as a drill input, audited, after
/// checking it with the state machine's own rules on a copy of the stored state: the one
/// approval of the API, the CLI's coordinator and the dashboard.
pub(crate) async fn approve_gate(
    api: &DrillsApi,
    me: &Principal,
    id: Uuid,
    req: &ApproveRequest,
) -> Result<InputAccepted, Failure> {
    no_nul("step", &req.step)?;
    no_nul("comment", &req.comment)?;
    let drill = api.drill(id).await?;
    let Some(role) = gate_role(me.role) else {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "a viewer cannot approve a gate",
        ));
    };
    let now = api.now();
    // The machine's own rules, on a copy: the gate exists, is running, and the role
    // suffices.
    let mut copy = running_state(&drill)?;
    copy.approve(&req.step, &me.user, role, &req.comment, now)
        .map_err(|e| conflict(format!("drill {id}: {e}")))?;
    let detail = ApproveDetail {
        step: req.step.clone(),
        role,
        comment: req.comment.clone(),
    };
    let detail =
        serde_json::to_value(&detail).map_err(|e| Failure::internal(format!("approval: {e}")))?;
    let input = api
        .store()
        .add_drill_input(id, APPROVE_INPUT, &me.actor(), &detail, now)
        .await
        .map_err(Failure::store)?;
    api.auth
        .audit(
            &me.actor(),
            "drill.approve",
            &format!("drill:{id}"),
            serde_json::json!({ "step": req.step, "role": role.to_string(), "input": input }),
        )
        .await;
    Ok(InputAccepted {
        drill: id,
        input,
        message: format!(
            "gate {} approved by {} ({role}); the drill goes on at the orchestrator's next tick",
            req.step, me.user
        ),
    })
}

async fn abort(
    State(api): State<DrillsApi>,
    Extension(me): Extension<Principal>,
    Param(id): Param<Uuid>,
    Body(req): Body<AbortRequest>,
) -> Response {
    respond(
        abort_drill(&api, &me, id, &req)
            .await
            .map(|accepted| (StatusCode::ACCEPTED, Json(accepted))),
    )
}

/// Appends `me`'s abort of drill `id` as a drill input, audited, unless the drill has ended or
/// is cleaning up: the one abort of the API and the dashboard.
pub(crate) async fn abort_drill(
    api: &DrillsApi,
    me: &Principal,
    id: Uuid,
    req: &AbortRequest,
) -> Result<InputAccepted, Failure> {
    no_nul("reason", &req.reason)?;
    let drill = api.drill(id).await?;
    let now = api.now();
    match drill.status {
        // Not started: the orchestrator starts it and applies the abort in the same tick.
        DrillStatus::Scheduled => {}
        _ => {
            let mut copy = running_state(&drill)?;
            copy.abort(&me.user, &req.reason, now)
                .map_err(|e| conflict(format!("drill {id}: {e} (it is cleaning up)")))?;
        }
    }
    let detail = serde_json::to_value(AbortDetail {
        reason: req.reason.clone(),
    })
    .map_err(|e| Failure::internal(format!("abort: {e}")))?;
    let input = api
        .store()
        .add_drill_input(id, ABORT_INPUT, &me.actor(), &detail, now)
        .await
        .map_err(Failure::store)?;
    api.auth
        .audit(
            &me.actor(),
            "drill.abort",
            &format!("drill:{id}"),
            serde_json::json!({ "reason": req.reason, "input": input }),
        )
        .await;
    Ok(InputAccepted {
        drill: id,
        input,
        message: "the drill is aborted at the orchestrator's next tick; open tasks are \
                  withdrawn and the restored data cleaned up"
            .to_string(),
    })
}

/// The seal of a drill; 404 until it is sealed.
fn sealed(d: &StoredDrill) -> Result<&DrillSeal, Failure> {
    d.seal.as_ref().ok_or_else(|| {
        Failure::not_found(format!(
            "drill {} has no sealed record yet (status {}): it is sealed when the drill ends",
            d.id,
            d.status.as_str()
        ))
    })
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn record_json(State(api): State<DrillsApi>, Param(id): Param<Uuid>) -> Response {
    respond(
        async {
            let drill = api.drill(id).await?;
            let seal = sealed(&drill)?;
            Ok(with_type(seal.record.clone(), "application/json"))
        }
        .await,
    )
}

async fn bundle(State(api): State<DrillsApi>, Param(id): Param<Uuid>) -> Response {
    respond(
        async {
            let drill = api.drill(id).await?;
            sealed(&drill)?;
            let bytes = api
                .store()
                .drill_bundle(id)
                .await
                .map_err(Failure::store)?
                .ok_or_else(|| {
                    Failure::not_found(format!(
                        "drill {id} was sealed without an evidence bundle (the coordinator's log \
                     says why)"
                    ))
                })?;
            let mut response = with_type(bytes, "application/zstd");
            let disposition = format!("attachment; filename=\"drill-{id}.tar.zst\"");
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(response)
        }
        .await,
    )
}

async fn report(
    State(api): State<DrillsApi>,
    Param(id): Param<Uuid>,
    headers: axum::http::HeaderMap,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    respond(
        async {
            let Query(q) = q.map_err(|e| Failure::bad_request(e.body_text()))?;
            // `?lang=` first, then the browser's Accept-Language, then English.
            let lang = match q.lang.as_deref() {
                Some(tag) => Lang::from_tag(tag)
                    .ok_or_else(|| Failure::bad_request("`lang` must be en or zh-CN"))?,
                None => headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
                    .unwrap_or_default(),
            };
            let pdf = match q.format.as_deref() {
                None | Some("html") => false,
                Some("pdf") => true,
                Some(_) => return Err(Failure::bad_request("`format` must be html or pdf")),
            };
            drill_report(&api, id, lang, pdf).await
        }
        .await,
    )
}

/// The drill record of `id` as its report page in `lang`, or that page printed to PDF (an
/// attachment): what `GET /api/v1/drills/{id}/report` and the dashboard's drill report link
/// answer. 404 before the drill is sealed, 503 when no browser or CJK font can print it.
pub(crate) async fn drill_report(
    api: &DrillsApi,
    id: Uuid,
    lang: Lang,
    pdf: bool,
) -> Result<Response, Failure> {
    let drill = api.drill(id).await?;
    let seal = sealed(&drill)?;
    let record: DrillRecord = serde_json::from_str(&seal.record)
        .map_err(|e| Failure::internal(format!("drill {id}: sealed record cannot be read: {e}")))?;
    let html = render::page(&record, lang);
    if !pdf {
        let mut response = with_type(html, "text/html; charset=utf-8");
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(REPORT_CSP),
        );
        return Ok(response);
    }
    let bytes = crate::report::pdf::html_to_pdf(&html).await.map_err(|e| {
        if e.is_missing_software() {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                e.to_string(),
            )
        } else {
            Failure::internal(format!("drill {id}: the report could not be printed: {e}"))
        }
    })?;
    let mut response = with_type(bytes, "application/pdf");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"drill-{id}-{}.pdf\"",
        lang.tag()
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn chain(State(api): State<DrillsApi>) -> Response {
    respond(
        async {
            let stored = api.store().drill_chain().await.map_err(Failure::store)?;
            // Hashing every record is CPU work: off the async threads.
            tokio::task::spawn_blocking(move || Json(check_chain(&stored)))
                .await
                .map_err(|e| Failure::internal(format!("the chain check failed: {e}")))
        }
        .await,
    )
}

async fn calendar_view(State(api): State<DrillsApi>) -> Response {
    respond(
        async {
            let records = api.sealed_records().await?;
            Ok(Json(calendar(&api.policy(), &records, api.now())))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body as HttpBody;
    use axum::http::{Method, Request};
    use jiff::SignedDuration;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::api::{DrillTask, ProbeResult, ProbeTargetResult, RestoreResult, TaskAction};
    use crate::coordinator::store::{
        AuditFilter, DrillChange, NewDrill, PasswordHash, SealedRecord, Session, StoreError,
        TokenHash, User,
    };
    use crate::drill::machine::{Planned, StartInput};
    use crate::drill::record;
    use crate::policy::Location;
    use crate::run::Outcome;
    use crate::secret::Secret;

    const NOW: &str = "2026-03-01T12:00:00Z";
    const SYSTEM: &str = "sim-00001-s1";

    struct Settable(Mutex<Timestamp>);
    impl Clock for Settable {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A site-loss plan of the simulated branch with a restore and a gate.
    fn plan(id: &str, title: &str, gate_role: &str) -> DrillPlan {
        crate::drill::testkit::plan(
            id,
            &format!(
                r#"
title = "{title}"
title-zh = "模拟支行"
type = "restore-test"
scenario = {{ kind = "site-loss", lost-site = "sim-branch" }}
scope = {{ systems = ["{SYSTEM}"] }}
standby = {{ site = "sim-dr", host = "dr01", restore-root = "/srv/drill" }}
steps = [
  {{ name = "restore", action = "restore" }},
  {{ name = "business-check", action = "gate", role = "{gate_role}", timeout = "1h" }},
]
"#
            ),
        )
    }

    /// The drills API over a real SQLite store with the simulated policy and three plans, and
    /// a session for a viewer, an operator and an admin (tokens `viewer`, `operator`, `admin`).
    struct App {
        _dir: tempfile::TempDir,
        store: Store,
        policy: Policy,
        router: axum::Router,
    }

    async fn app() -> App {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in crate::sim::policy::files(1, 3) {
            let path = dir.path().join("policy").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let policy = crate::policy::load_dir(&dir.path().join("policy")).unwrap();
        let policy = crate::drill::testkit::with_plans(
            policy,
            vec![
                plan("branch", "Branch <script>alert(1)</script>", "operator"),
                plan("branch-admin", "Branch, admin gate", "admin"),
            ],
        );
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let now = t(NOW);
        for (name, role) in [
            ("viewer", Role::Viewer),
            ("operator", Role::Operator),
            ("admin", Role::Admin),
        ] {
            store
                .create_user(&User {
                    name: name.into(),
                    password_hash: PasswordHash::new("$argon2id$v=19$unused").unwrap(),
                    role,
                    disabled: false,
                    created_at: now,
                })
                .await
                .unwrap();
            store
                .create_session(&Session {
                    token_hash: TokenHash::of(&Secret::new(name.to_string())),
                    user: name.into(),
                    created_at: now,
                    expires_at: now + SignedDuration::from_hours(1),
                })
                .await
                .unwrap();
        }
        let clock = Arc::new(Settable(Mutex::new(now)));
        let router = router(DrillsApi::new(
            store.clone(),
            Arc::new(RwLock::new(Arc::new(policy.clone()))),
            clock,
        ));
        App {
            _dir: dir,
            store,
            policy,
            router,
        }
    }

    struct Answer {
        status: StatusCode,
        headers: axum::http::HeaderMap,
        bytes: Vec<u8>,
    }

    impl Answer {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.bytes).into_owned()
        }
        fn header(&self, name: header::HeaderName) -> &str {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        }
    }

    impl App {
        async fn call(
            &self,
            method: Method,
            path: &str,
            token: &str,
            body: Option<Value>,
        ) -> Answer {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"));
            let body = match body {
                Some(b) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    HttpBody::from(serde_json::to_vec(&b).unwrap())
                }
                None => HttpBody::empty(),
            };
            let response = self
                .router
                .clone()
                .oneshot(request.body(body).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Answer {
                status,
                headers,
                bytes,
            }
        }

        async fn get(&self, path: &str, token: &str) -> Answer {
            self.call(Method::GET, path, token, None).await
        }

        async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
            self.call(Method::POST, path, token, Some(body)).await
        }

        /// Stores a running drill of `plan` whose state is `run`.
        async fn seed(&self, run: &DrillRun, status: DrillStatus) {
            self.store
                .insert_drill(&NewDrill {
                    id: run.id,
                    plan: run.plan.id.clone(),
                    status,
                    created_by: "user:operator".into(),
                    created_at: run.t_outage,
                    scheduled_for: None,
                    started_at: Some(run.t_outage),
                    state: serde_json::to_value(run).unwrap(),
                })
                .await
                .unwrap();
        }

        async fn inputs(&self, id: Uuid) -> Vec<(String, String, Value)> {
            self.store
                .drill_inputs_after(Some(id), 0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|i| (i.kind, i.actor, i.detail))
                .collect()
        }

        async fn audited(&self, action: &str) -> Vec<(String, String)> {
            let filter = AuditFilter {
                action: Some(action.into()),
                ..Default::default()
            };
            self.store
                .list_audit(&filter, Page::first(100))
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.actor, e.target))
                .collect()
        }
    }

    /// A successful report of `task` finished at `at`.
    fn report(task: &DrillTask, at: Timestamp) -> DrillReport {
        DrillReport {
            task_id: task.task_id.clone(),
            drill_id: task.drill_id,
            host: "dr01".into(),
            started_at: at - SignedDuration::from_secs(60),
            finished_at: at,
            outcome: Outcome::Success,
            error: None,
            probe: match &task.action {
                TaskAction::Probe { targets, .. } => Some(ProbeResult {
                    free_bytes: 1 << 40,
                    targets: targets
                        .iter()
                        .map(|x| ProbeTargetResult {
                            system: x.system.clone(),
                            repository: x.repository.clone(),
                            credentials: true,
                            reachable: true,
                            snapshot_present: true,
                            problem: None,
                        })
                        .collect(),
                }),
                _ => None,
            },
            restore: matches!(task.action, TaskAction::Restore(_)).then(|| RestoreResult {
                snapshot: "0123abcd".into(),
                repository: "sim-offsite".parse().unwrap(),
                capture_time: Some(t("2026-03-01T10:00:00Z")),
                files: 10,
                bytes: 600_000_000,
                seconds: 60.0,
                verified_files: None,
                tree_digest: None,
            }),
            command: None,
        }
    }

    /// A drill of `plan` started at NOW, through readiness and the restore: its gate waits.
    fn at_the_gate(app: &App, plan: &str) -> DrillRun {
        let plan = app.policy.drills.get(plan).unwrap().clone();
        let start = t(NOW);
        let mut run = DrillRun::start(StartInput {
            id: Uuid::new_v4(),
            plan,
            policy_digest: app.policy.digest.clone(),
            started_by: "user:operator".into(),
            now: start,
            declared_disaster: None,
            systems: vec![Planned {
                system: SYSTEM.parse().unwrap(),
                tier: app.policy.systems.get(SYSTEM).unwrap().tier.clone(),
                point: Some(RestorePoint {
                    system: SYSTEM.parse().unwrap(),
                    snapshot: "0123abcd".into(),
                    repository: "sim-offsite".parse().unwrap(),
                    location: Location::Remote,
                    immutable: false,
                    t_cap: t("2026-03-01T10:00:00Z"),
                    t_avail: t("2026-03-01T10:30:00Z"),
                    bytes: Some(600_000_000),
                    files: Some(10),
                }),
                reasons: vec![],
                passed_over: vec![],
                prerequisites: vec![],
                policy_files: vec![],
            }],
            extrapolated: vec![],
            standby_last_seen: Some(start),
            agent_lost_after: SignedDuration::from_secs(180),
        });
        for minutes in [1, 10] {
            let at = start + SignedDuration::from_mins(minutes);
            for task in run.open_tasks() {
                run.on_report(&report(&task, at), at);
            }
        }
        assert_eq!(run.phase, Phase::Running);
        assert_eq!(run.steps[1].state, StepState::Running, "{:?}", run.log);
        run
    }

    /// Ends `run` by an abort and its clean-up, stores it ended and seals its record.
    async fn seal(app: &App, mut run: DrillRun) -> DrillRecord {
        let at = t(NOW) + SignedDuration::from_mins(20);
        run.abort("operator", "end of test", at).unwrap();
        for task in run.open_tasks() {
            run.on_report(&report(&task, at), at);
        }
        assert!(run.is_ended());
        let drill = app.store.get_drill(run.id).await.unwrap().unwrap();
        app.store
            .update_drill(
                run.id,
                drill.version,
                &DrillChange {
                    status: DrillStatus::Aborted,
                    state: serde_json::to_value(&run).unwrap(),
                    started_at: Some(run.t_outage),
                    finished_at: run.ended_at,
                },
            )
            .await
            .unwrap();
        let (mut rec, files) = build::record(&run, &app.policy, 0);
        let (bytes, sha) = record::bundle(&files).unwrap();
        rec.bundle_sha256 = Some(sha);
        let mut sealed = None;
        app.store
            .seal_drill_with::<StoreError>(run.id, Some(&bytes), |link| {
                let r = record::seal(rec.clone(), &link.previous_hash);
                sealed = Some(r.clone());
                Ok(SealedRecord {
                    record: serde_json::to_string(&r).unwrap(),
                    record_hash: r.record_hash,
                })
            })
            .await
            .unwrap();
        sealed.unwrap()
    }

    #[tokio::test]
    async fn a_viewer_reads_but_cannot_start_approve_or_abort() {
        let app = app().await;
        let run = at_the_gate(&app, "branch");
        app.seed(&run, DrillStatus::Running).await;
        let id = run.id;
        for (path, body) in [
            (
                DRILLS_PATH.to_string(),
                serde_json::json!({ "plan": "branch" }),
            ),
            (
                format!("/api/v1/drills/{id}/approve"),
                serde_json::json!({ "step": "business-check" }),
            ),
            (format!("/api/v1/drills/{id}/abort"), serde_json::json!({})),
        ] {
            let a = app.post(&path, "viewer", body).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text());
        }
        assert_eq!(
            app.get("/api/v1/drill-plans/branch/preview", "viewer")
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert!(app.inputs(id).await.is_empty());
        for path in [
            DRILLS_PATH.to_string(),
            format!("/api/v1/drills/{id}"),
            DRILL_PLANS_PATH.to_string(),
            DRILL_CALENDAR_PATH.to_string(),
            DRILL_CHAIN_PATH.to_string(),
        ] {
            let a = app.get(&path, "viewer").await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
        }
        assert_eq!(
            app.get(DRILLS_PATH, "nobody").await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn starting_a_drill_stores_a_scheduled_row_once_per_plan() {
        let app = app().await;
        let a = app
            .post(
                DRILLS_PATH,
                "operator",
                serde_json::json!({ "plan": "branch" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        let started: StartedDrill = serde_json::from_slice(&a.bytes).unwrap();
        assert_eq!(
            (started.plan.as_str(), started.status.as_str()),
            ("branch", "scheduled")
        );
        let stored = app.store.get_drill(started.id).await.unwrap().unwrap();
        assert_eq!(stored.status, DrillStatus::Scheduled);
        assert_eq!(stored.created_by, "user:operator");
        let requested: Requested = serde_json::from_value(stored.state).unwrap();
        assert_eq!(
            (requested.requested_by.as_str(), requested.requested_at),
            ("user:operator", t(NOW))
        );
        assert_eq!(
            app.audited("drill.start").await,
            [("user:operator".to_string(), format!("drill:{}", started.id))]
        );

        // A second drill of the plan while this one is active: 409, nothing stored.
        let again = app
            .post(
                DRILLS_PATH,
                "admin",
                serde_json::json!({ "plan": "branch" }),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
        assert!(
            again.json()["message"]
                .as_str()
                .unwrap()
                .contains("already scheduled")
        );
        // Another plan, scheduled for later.
        let later = app
            .post(
                DRILLS_PATH,
                "operator",
                serde_json::json!({ "plan": "branch-admin", "at": "2026-03-02T08:00:00Z" }),
            )
            .await;
        assert_eq!(later.status, StatusCode::CREATED, "{}", later.text());
        let unknown = app
            .post(
                DRILLS_PATH,
                "operator",
                serde_json::json!({ "plan": "nope" }),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());
        let bad = app
            .post(
                DRILLS_PATH,
                "operator",
                serde_json::json!({ "plan": "branch", "x": 1 }),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        // Listed newest first, filtered, paged.
        let page: DrillsPage =
            serde_json::from_slice(&app.get(DRILLS_PATH, "viewer").await.bytes).unwrap();
        assert_eq!(page.drills.len(), 2);
        let plans: Vec<&str> = page.drills.iter().map(|d| d.plan.as_str()).collect();
        assert_eq!(plans.len(), 2);
        assert!(
            page.drills
                .iter()
                .all(|d| d.status == "scheduled" && d.phase.is_none())
        );
        let one: DrillsPage = serde_json::from_slice(
            &app.get("/api/v1/drills?plan=branch-admin&limit=1", "viewer")
                .await
                .bytes,
        )
        .unwrap();
        assert_eq!(one.drills.len(), 1);
        assert_eq!(one.drills[0].scheduled_for, Some(t("2026-03-02T08:00:00Z")));
        assert_eq!(
            app.get("/api/v1/drills?status=bogus", "viewer")
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let detail = app
            .get(&format!("/api/v1/drills/{}", started.id), "viewer")
            .await
            .json();
        assert_eq!(detail["requested"]["requested_by"], "user:operator");
        assert_eq!(detail["run"], Value::Null);
    }

    #[tokio::test]
    async fn an_approval_is_queued_only_for_a_waiting_gate_and_a_sufficient_role() {
        let app = app().await;
        // A scheduled drill has no gate waiting yet.
        let a = app
            .post(
                DRILLS_PATH,
                "operator",
                serde_json::json!({ "plan": "branch" }),
            )
            .await;
        let scheduled: StartedDrill = serde_json::from_slice(&a.bytes).unwrap();
        let approve = |id: Uuid| format!("/api/v1/drills/{id}/approve");
        let gate = serde_json::json!({ "step": "business-check", "comment": "books balance" });
        let refused = app
            .post(&approve(scheduled.id), "operator", gate.clone())
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text());
        assert!(
            refused.text().contains("has not started"),
            "{}",
            refused.text()
        );

        // A drill still in readiness: the gate is pending.
        let mut early = at_the_gate(&app, "branch-admin");
        early.id = Uuid::new_v4();
        early.steps[1].state = StepState::Pending;
        app.seed(&early, DrillStatus::Running).await;
        let refused = app.post(&approve(early.id), "admin", gate.clone()).await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert!(
            refused.text().contains("is not waiting for approval"),
            "{}",
            refused.text()
        );
        // Ended, so the plan may run again (one active drill per plan).
        let ended = DrillChange {
            status: DrillStatus::Aborted,
            state: serde_json::to_value(&early).unwrap(),
            started_at: Some(early.t_outage),
            finished_at: Some(early.t_outage),
        };
        app.store.update_drill(early.id, 1, &ended).await.unwrap();

        // A gate that waits, for an admin: an operator is refused, an admin is queued.
        let run = at_the_gate(&app, "branch-admin");
        app.seed(&run, DrillStatus::Running).await;
        let detail = app
            .get(&format!("/api/v1/drills/{}", run.id), "viewer")
            .await
            .json();
        assert_eq!(detail["run"]["steps"][1]["awaiting_approval"], true);
        assert_eq!(detail["run"]["steps"][1]["role"], "admin");
        assert_eq!(detail["run"]["phase"], "running");
        assert_eq!(
            detail["run"]["systems"][0]["tasks"][0]["state"],
            "succeeded"
        );
        assert_eq!(
            detail["run"]["systems"][0]["tasks"][0]["report"]["restore"]["bytes"],
            600_000_000
        );
        let low = app.post(&approve(run.id), "operator", gate.clone()).await;
        assert_eq!(low.status, StatusCode::CONFLICT);
        assert!(
            low.text().contains("needs the admin role"),
            "{}",
            low.text()
        );
        for (step, why) in [("restore", "is not a gate"), ("nope", "does not exist")] {
            let a = app
                .post(
                    &approve(run.id),
                    "admin",
                    serde_json::json!({ "step": step }),
                )
                .await;
            assert_eq!(a.status, StatusCode::CONFLICT);
            assert!(a.text().contains(why), "{}", a.text());
        }
        assert!(app.inputs(run.id).await.is_empty());
        let ok = app.post(&approve(run.id), "admin", gate).await;
        assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.text());
        let inputs = app.inputs(run.id).await;
        assert_eq!(inputs.len(), 1);
        let (kind, actor, detail) = &inputs[0];
        assert_eq!(
            (kind.as_str(), actor.as_str()),
            (APPROVE_INPUT, "user:admin")
        );
        let detail: ApproveDetail = serde_json::from_value(detail.clone()).unwrap();
        assert_eq!(
            (detail.step.as_str(), detail.role, detail.comment.as_str()),
            ("business-check", GateRole::Admin, "books balance")
        );
        assert_eq!(app.audited("drill.approve").await.len(), 1);
        assert_eq!(
            app.post(
                &approve(Uuid::new_v4()),
                "admin",
                serde_json::json!({ "step": "x" })
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn an_abort_is_queued_until_the_drill_has_ended() {
        let app = app().await;
        let run = at_the_gate(&app, "branch");
        app.seed(&run, DrillStatus::Running).await;
        let path = format!("/api/v1/drills/{}/abort", run.id);
        let a = app
            .post(
                &path,
                "operator",
                serde_json::json!({ "reason": "fire drill" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
        let inputs = app.inputs(run.id).await;
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].0, ABORT_INPUT);
        assert_eq!(inputs[0].2["reason"], "fire drill");
        assert_eq!(app.audited("drill.abort").await.len(), 1);

        seal(&app, run.clone()).await;
        let ended = app.post(&path, "operator", serde_json::json!({})).await;
        assert_eq!(ended.status, StatusCode::CONFLICT, "{}", ended.text());
        assert!(ended.text().contains("has ended (aborted)"));
        let nul = app
            .post(
                &path,
                "operator",
                serde_json::json!({ "reason": "a\u{0}b" }),
            )
            .await;
        assert_eq!(nul.status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn record_report_and_bundle_appear_when_sealed_and_the_chain_verifies() {
        let app = app().await;
        let chain: ChainView =
            serde_json::from_slice(&app.get(DRILL_CHAIN_PATH, "viewer").await.bytes).unwrap();
        assert_eq!(
            chain,
            ChainView {
                ok: true,
                records: 0,
                error: None
            }
        );
        let run = at_the_gate(&app, "branch");
        app.seed(&run, DrillStatus::Running).await;
        let id = run.id;
        for (path, token) in [
            (format!("/api/v1/drills/{id}/record"), "viewer"),
            (format!("/api/v1/drills/{id}/report"), "viewer"),
            (format!("/api/v1/drills/{id}/bundle"), "operator"),
        ] {
            let a = app.get(&path, token).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
            assert!(a.text().contains("no sealed record yet"), "{}", a.text());
        }
        assert_eq!(
            app.get(&format!("/api/v1/drills/{id}/bundle"), "viewer")
                .await
                .status,
            StatusCode::FORBIDDEN
        );

        let sealed = seal(&app, run).await;
        let rec = app
            .get(&format!("/api/v1/drills/{id}/record"), "viewer")
            .await;
        assert_eq!(rec.status, StatusCode::OK);
        assert_eq!(rec.header(header::CONTENT_TYPE), "application/json");
        let back: DrillRecord = serde_json::from_slice(&rec.bytes).unwrap();
        assert_eq!(back, sealed);

        let html = app
            .get(&format!("/api/v1/drills/{id}/report"), "viewer")
            .await;
        assert_eq!(html.status, StatusCode::OK);
        assert_eq!(
            html.header(header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(html.header(header::CONTENT_SECURITY_POLICY), REPORT_CSP);
        let page = html.text();
        assert!(!page.contains("<script"), "the plan title is escaped");
        assert!(page.contains("Branch &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(&sealed.record_hash));
        // The same report in Chinese by `?lang=`; bad parameters are refused.
        let zh = app
            .get(&format!("/api/v1/drills/{id}/report?lang=zh-CN"), "viewer")
            .await;
        assert_eq!(zh.status, StatusCode::OK);
        assert!(zh.text().contains("<html lang=\"zh-CN\">"));
        assert!(zh.text().contains("8. 各系统结果"));
        assert!(page.contains("<html lang=\"en\">"));
        for (query, problem) in [
            ("lang=fr", "`lang` must be en or zh-CN"),
            ("format=docx", "`format` must be html or pdf"),
            ("colour=red", "unknown field"),
        ] {
            let bad = app
                .get(&format!("/api/v1/drills/{id}/report?{query}"), "viewer")
                .await;
            assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
            assert!(bad.text().contains(problem), "{query}: {}", bad.text());
        }

        let bundle = app
            .get(&format!("/api/v1/drills/{id}/bundle"), "operator")
            .await;
        assert_eq!(bundle.status, StatusCode::OK);
        assert_eq!(bundle.header(header::CONTENT_TYPE), "application/zstd");
        assert_eq!(
            bundle.header(header::CONTENT_DISPOSITION),
            format!("attachment; filename=\"drill-{id}.tar.zst\"")
        );
        assert_eq!(
            Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                &bundle.bytes
            ))),
            sealed.bundle_sha256
        );

        let chain: ChainView =
            serde_json::from_slice(&app.get(DRILL_CHAIN_PATH, "viewer").await.bytes).unwrap();
        assert_eq!((chain.ok, chain.records, chain.error), (true, 1, None));
        let detail = app
            .get(&format!("/api/v1/drills/{id}"), "viewer")
            .await
            .json();
        assert_eq!(detail["seal"]["chain_seq"], 1);
        assert_eq!(detail["seal"]["record_hash"], sealed.record_hash.as_str());
        assert_eq!(detail["status"], "aborted");
        assert_eq!(detail["ending"], "aborted");
        assert_eq!(detail["verdict"], sealed.verdict.to_string());
        assert_eq!(detail["run"]["phase"], "ended");

        // The calendar and the plans read the sealed history.
        let cal = app.get(DRILL_CALENDAR_PATH, "viewer").await.json();
        assert_eq!(cal["regulatory"].as_array().unwrap().len(), 2);
        let plans = app.get(DRILL_PLANS_PATH, "viewer").await.json();
        let branch = plans
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "branch")
            .unwrap();
        assert_eq!(branch["steps"][1]["action"], "gate");
        assert_eq!(branch["standby"]["host"], "dr01");
    }

    #[tokio::test]
    async fn the_preview_lists_the_systems_in_scope_and_refuses_unknown_plans() {
        let app = app().await;
        let a = app
            .get("/api/v1/drill-plans/branch/preview", "operator")
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let p: Value = a.json();
        assert_eq!(p["plan"], "branch");
        assert_eq!(p["systems"][0]["system"], SYSTEM);
        // No evidence stored: no restore point, and no throughput from past drills.
        assert_eq!(p["systems"][0]["restore_point"], Value::Null);
        assert!(!p["systems"][0]["reasons"].as_array().unwrap().is_empty());
        assert_eq!(p["throughput_bytes_per_second"], Value::Null);
        assert_eq!(
            app.get("/api/v1/drill-plans/nope/preview", "operator")
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_chain_check_compares_the_stored_columns_with_the_records() {
        let r = |n: u128, previous: &str| {
            let mut rec = sample_record();
            rec.header.drill_id = Uuid::from_u128(n);
            record::seal(rec, previous)
        };
        let first = r(1, record::GENESIS_HASH);
        let second = r(2, &first.record_hash);
        let stored = |rec: &DrillRecord, seq: u64| {
            (
                rec.header.drill_id,
                DrillSeal {
                    link: super::super::store::ChainLink {
                        seq,
                        previous_hash: rec.previous_hash.clone(),
                    },
                    record: serde_json::to_string(rec).unwrap(),
                    record_hash: rec.record_hash.clone(),
                },
            )
        };
        let chain = vec![stored(&first, 1), stored(&second, 2)];
        assert_eq!(check_chain(&chain).records, 2);
        assert!(check_chain(&chain).ok);

        let mut column = chain.clone();
        column[1].1.record_hash = "0".repeat(64);
        let v = check_chain(&column);
        assert!(!v.ok && v.error.unwrap().contains("stored record_hash"));

        let mut altered = chain.clone();
        altered[0].1.record = altered[0].1.record.replace("test drill", "tset drill");
        let v = check_chain(&altered);
        assert!(!v.ok, "{v:?}");
        assert!(v.error.unwrap().contains("altered"));

        let removed = vec![chain[1].clone()];
        assert!(!check_chain(&removed).ok);
    }

    fn sample_record() -> DrillRecord {
        let run = DrillRun::start(StartInput {
            id: Uuid::nil(),
            plan: crate::drill::testkit::plan(
                "p",
                &crate::drill::testkit::body(
                    "restore-test",
                    r#"{ kind = "component-loss", system = "x" }"#,
                    r#"{ systems = ["x"] }"#,
                ),
            ),
            policy_digest: "d".into(),
            started_by: "user:a".into(),
            now: t(NOW),
            declared_disaster: None,
            systems: vec![],
            extrapolated: vec![],
            standby_last_seen: None,
            agent_lost_after: SignedDuration::from_secs(60),
        });
        let policy = crate::assess::testkit::policy();
        build::record(&run, &policy, 0).0
    }

    #[test]
    fn past_throughput_weights_each_restore_by_its_bytes() {
        let mut rec = sample_record();
        assert_eq!(past_throughput(std::slice::from_ref(&rec)), None);
        let result = |system: &str, bytes: u64, rate: Option<f64>| record::SystemRecord {
            result: crate::drill::measure::SystemResult {
                system: system.parse().unwrap(),
                tier: "T1".parse().unwrap(),
                achieved_rpo_seconds: None,
                rpo_target_seconds: 1,
                it_rto_seconds: None,
                it_rto_target_seconds: 1,
                business_rto_seconds: None,
                business_rto_target_seconds: 1,
                rto_from_declaration_seconds: None,
                decision_latency_seconds: None,
                throughput_bytes_per_second: rate,
                verdict: Verdict::Pass,
                reasons: vec![],
            },
            restore_point: None,
            bytes_restored: bytes,
            files_restored: 1,
            tree_digest: None,
        };
        // 100 MB at 10 MB/s (10 s) and 300 MB at 30 MB/s (10 s): 400 MB in 20 s.
        rec.results = vec![
            result("a", 100_000_000, Some(10_000_000.0)),
            result("b", 300_000_000, Some(30_000_000.0)),
            result("c", 0, Some(1.0)),
            result("d", 5, None),
        ];
        assert_eq!(past_throughput(&[rec.clone()]), Some(20_000_000.0));
        let h = history_item(&rec);
        assert_eq!(h.plan.as_str(), "p");
        assert!(h.failed.is_empty());
    }
}
