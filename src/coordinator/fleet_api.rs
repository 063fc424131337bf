//! The operator and viewer endpoints of the coordinator's HTTP API: what the web dashboard and
//! operators' scripts read (the fleet summary, sites, repositories, systems with their status
//! and full assessment, run records, a system's snapshot inventory, assessments, the policy in
//! force) and the one thing they ask for (`backup-now`, queued for the system's agent).
//!
//! Every route is in [`auth::ROLE_MATRIX`] and goes through [`auth::gate`]; errors are
//! [`Failure`]s ([`ApiError`](crate::api::ApiError) bodies). Views of assessments come from the
//! sweep's latest [`FleetView`] only: a handler never assesses the fleet, and before the first
//! sweep of this replica those views answer `503 not-ready` with `Retry-After`. The snapshot
//! inventory of one system is the exception: it is built on demand from that system's stored run
//! records (bounded by [`MAX_INVENTORY_RUNS`]).
//!
//! The mapping from domain values to answers is pure (`*_view`/`*_rows` functions, time passed
//! in) and unit-tested; handlers only fetch and call them. No SQL here (the store does that), no
//! credential in any answer: a repository shows its URL (which holds none; credentials live in
//! secret sources) and the *kind* of its password source, never the source itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::{
    ASSESSMENTS_PATH, Auth, BACKUP_NOW_PATH, FLEET_PATH, Failure, POLICY_PATH, Param, Principal,
    REPORTS_QUARTERLY_PATH, REPOSITORIES_PATH, RUN_RECORDS_PATH, SITES_PATH, SNAPSHOTS_PATH,
    SYSTEM_PATH, SYSTEMS_PATH, Verb,
};
use super::routes::Routes;
use super::store::{CommandQueued, Page, RunFilter, Store, StoredRun};
use super::sweep::{FleetView, SweepHandle};
use crate::api::{Command, ErrorCode};
use crate::assess::{
    AgentHealth, AgentStatus, CheckResult, Inventory, RpoAssessment, Scenario, Status,
    SystemAssessment,
};
use crate::clock::Clock;
use crate::policy::{
    JobKind, Location, Policy, RepoId, SiteId, SiteRole, System, SystemId, TierId,
};
use crate::run::{Outcome, RunKind, RunRecord};
use crate::secret::SecretSource;

/// The largest request body accepted: these endpoints take none.
const MAX_BODY: usize = 4 << 10;
/// The most run records read to build one system's snapshot inventory.
pub const MAX_INVENTORY_RUNS: u32 = 50_000;
/// Run records shown with a system.
const SYSTEM_RUNS: u32 = 20;
/// Rows per page unless `limit` says otherwise (at most [`Page::MAX_LIMIT`]).
const DEFAULT_LIMIT: u32 = 100;
/// What `Retry-After` says before the first sweep: it runs at start, so soon.
const NOT_READY_RETRY_SECS: &str = "5";

// ---------------------------------------------------------------------------------------------
// State

/// What the fleet endpoints share. Cheap to clone.
#[derive(Clone)]
pub struct FleetApi {
    pub auth: Auth,
    /// The policy in force (kept current by the server's reload loop).
    pub policy: Arc<RwLock<Arc<Policy>>>,
    /// The latest assessment sweep of this replica.
    pub sweep: SweepHandle,
    /// Which files the policy in force was loaded from, and when.
    pub loads: PolicyLoads,
}

impl FleetApi {
    pub fn new(
        store: Store,
        policy: Arc<RwLock<Arc<Policy>>>,
        clock: Arc<dyn Clock>,
        sweep: SweepHandle,
        loads: PolicyLoads,
    ) -> Self {
        FleetApi {
            auth: Auth::new(store, clock),
            policy,
            sweep,
            loads,
        }
    }

    fn store(&self) -> &Store {
        &self.auth.store
    }

    fn policy(&self) -> Arc<Policy> {
        super::current_policy(&self.policy)
    }

    /// The latest sweep; `None` before the first one (answer [`not_ready`]).
    fn view(&self) -> Option<Arc<FleetView>> {
        self.sweep.latest()
    }
}

/// The fleet router, every route behind the role-matrix gate.
pub fn router(api: FleetApi) -> axum::Router {
    routes().finish(api.auth.clone(), MAX_BODY, api)
}

/// Every fleet route and its handler.
pub(super) fn routes() -> Routes<FleetApi> {
    Routes::new()
        .add(Verb::Get, FLEET_PATH, fleet)
        .add(Verb::Get, SITES_PATH, sites)
        .add(Verb::Get, REPOSITORIES_PATH, repositories)
        .add(Verb::Get, SYSTEMS_PATH, systems)
        .add(Verb::Get, SYSTEM_PATH, system)
        .add(Verb::Post, BACKUP_NOW_PATH, backup_now)
        .add(Verb::Get, RUN_RECORDS_PATH, runs)
        .add(Verb::Get, SNAPSHOTS_PATH, snapshots)
        .add(Verb::Get, ASSESSMENTS_PATH, assessments)
        .add(Verb::Get, POLICY_PATH, policy)
        .add(Verb::Get, REPORTS_QUARTERLY_PATH, quarterly_report)
}

fn not_ready() -> Response {
    let mut response = Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotReady,
        "no assessment sweep has completed on this coordinator replica yet (it runs at start and \
         then every sweep-every, on the replica holding the assessment-sweep lease); retry shortly",
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(NOT_READY_RETRY_SECS),
    );
    response
}

/// A query string as `T`, or a 400 naming what is wrong with it.
fn query<T: DeserializeOwned>(q: Result<Query<T>, QueryRejection>) -> Result<T, Failure> {
    q.map(|Query(t)| t)
        .map_err(|e| Failure::bad_request(e.body_text()))
}

fn limit(requested: Option<u32>) -> u32 {
    requested.unwrap_or(DEFAULT_LIMIT).clamp(1, Page::MAX_LIMIT)
}

// ---------------------------------------------------------------------------------------------
// Policy loads

/// Which files the policy in force came from and when it was loaded: written by the server's
/// (re)load loop, read by `GET /api/v1/policy`. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PolicyLoads(Arc<RwLock<Option<Arc<PolicyLoad>>>>);

/// One load of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyLoad {
    pub digest: String,
    pub loaded_at: Timestamp,
    /// Every policy file, relative to the policy directory, in load order.
    pub files: Vec<PolicyFile>,
}

/// One policy file and the sha256 (hex) of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyFile {
    pub path: String,
    pub sha256: String,
}

impl PolicyLoads {
    /// Notes that `policy` was loaded from `dir` at `now`, hashing its files. The files are
    /// read again here, after the loader read them: an edit in between shows as a file hash the
    /// loaded policy does not match (the next reload catches up), never as a wrong digest.
    pub fn record(&self, dir: &Path, policy: &Policy, now: Timestamp) {
        let load = PolicyLoad {
            digest: policy.digest.clone(),
            loaded_at: now,
            files: hash_policy_files(dir),
        };
        let mut slot = self.0.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(Arc::new(load));
    }

    /// The latest load noted.
    pub fn latest(&self) -> Option<Arc<PolicyLoad>> {
        self.0
            .read()
            .map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }
}

/// Every `*.toml` under `dir` (recursively, hidden entries skipped, sorted, as the loader
/// takes them) with its sha256; `dir` itself when it is a file. Unreadable entries are left
/// out (the loader would have refused the policy).
fn hash_policy_files(dir: &Path) -> Vec<PolicyFile> {
    let mut found = Vec::new();
    if dir.is_file() {
        found.push(dir.to_path_buf());
    } else {
        walk_toml(dir, &mut found);
    }
    found.sort();
    found
        .into_iter()
        .filter_map(|path| {
            let bytes = std::fs::read(&path).ok()?;
            let shown = path
                .strip_prefix(dir)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(&path);
            Some(PolicyFile {
                path: shown.display().to_string(),
                sha256: hex::encode(Sha256::digest(&bytes)),
            })
        })
        .collect()
}

fn walk_toml(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk_toml(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (people-facing)

/// Status counts of one tier (or of all) for one scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub compliant: u32,
    pub at_risk: u32,
    pub breached: u32,
    pub no_evidence: u32,
    pub total: u32,
}

impl From<&crate::assess::StatusCounts> for Counts {
    fn from(c: &crate::assess::StatusCounts) -> Self {
        Counts {
            compliant: c.compliant,
            at_risk: c.at_risk,
            breached: c.breached,
            no_evidence: c.no_evidence,
            total: c.total(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScenarioCounts {
    pub scenario: Scenario,
    pub total: Counts,
    pub tiers: BTreeMap<TierId, Counts>,
}

/// `GET /api/v1/fleet`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FleetSummaryView {
    pub assessed_at: Timestamp,
    pub policy_digest: String,
    pub agents: u64,
    pub agents_offline: u64,
    pub systems: u64,
    pub compliance: Vec<ScenarioCounts>,
}

/// One site of `GET /api/v1/sites`. Agents are counted by the hosts of the site's systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub id: SiteId,
    pub name: String,
    pub region: String,
    pub timezone: String,
    pub role: SiteRole,
    pub systems: u32,
    pub agents_online: u32,
    /// Enrolled but offline or never heard from.
    pub agents_offline: u32,
    /// Hosts of the site's systems with no enrolled agent.
    pub hosts_without_agent: u32,
}

/// One repository of `GET /api/v1/repositories`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepositoryView {
    pub id: RepoId,
    /// The location as written in the policy (a path or `s3://bucket/prefix`): it never holds
    /// a credential, those are secret sources.
    pub url: String,
    pub scheme: &'static str,
    pub location: Location,
    pub site: Option<SiteId>,
    pub immutable: bool,
    /// `env`, `file` or `command`: how the agent gets the password, never which.
    pub password_source: &'static str,
}

/// A system's status for one scenario, in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScenarioStatus {
    pub scenario: Scenario,
    pub status: Status,
    /// `None`: unbounded (nothing counts).
    pub exposure_seconds: Option<i64>,
    /// For people: `1d 7h`, `unbounded`.
    pub exposure: String,
    pub target_seconds: i64,
    /// When the exposure crosses (or crossed) the target if nothing newer arrives.
    pub breach_at: Option<Timestamp>,
}

impl From<&RpoAssessment> for ScenarioStatus {
    fn from(r: &RpoAssessment) -> Self {
        ScenarioStatus {
            scenario: r.scenario,
            status: r.status,
            exposure_seconds: r.exposure.finite().map(|d| d.as_secs()),
            exposure: r.exposure.to_string(),
            target_seconds: r.target.as_secs(),
            breach_at: r.breach_at,
        }
    }
}

/// One system of `GET /api/v1/systems`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SystemRow {
    pub id: SystemId,
    pub name: String,
    pub tier: TierId,
    pub site: SiteId,
    pub host: String,
    pub department: String,
    /// In [`Scenario::ALL`] order.
    pub scenarios: Vec<ScenarioStatus>,
}

/// A page of systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SystemsPage {
    pub assessed_at: Timestamp,
    pub systems: Vec<SystemRow>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<SystemId>,
}

/// `?tier=&site=&scenario=&status=&limit=&after=`. `status` filters on `scenario` (default:
/// `site-loss`, the headline).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemsQuery {
    pub tier: Option<TierId>,
    pub site: Option<SiteId>,
    pub scenario: Option<Scenario>,
    pub status: Option<Status>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

/// One reason, for people and for machines.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Explained {
    pub text: String,
    pub detail: serde_json::Value,
}

fn explained<T: std::fmt::Display + Serialize>(value: &T) -> Explained {
    Explained {
        text: value.to_string(),
        detail: serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScenarioDetail {
    #[serde(flatten)]
    pub status: ScenarioStatus,
    /// The whole assessment in one sentence.
    pub summary: String,
    pub reasons: Vec<Explained>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DigitView {
    pub kind: crate::assess::DigitKind,
    pub required: u32,
    pub actual: u32,
    pub met: bool,
    pub text: String,
    pub notes: Vec<Explained>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// 3-2-1-1-0 met on every digit.
    pub conformant: bool,
    pub digits: Vec<DigitView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IntegrityView {
    pub repository: RepoId,
    pub ok: bool,
    pub last_check: Option<Timestamp>,
    pub structure_ok: bool,
    pub read_ok: bool,
    pub fully_read_at: Option<Timestamp>,
    pub issues: Vec<Explained>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClockView {
    /// The agent's times were corrected (its clock is skewed).
    pub corrected: bool,
    /// Coordinator clock minus agent clock.
    pub offset_ms: Option<i64>,
}

/// The full assessment of a system.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AssessmentView {
    pub assessed_at: Timestamp,
    pub scenarios: Vec<ScenarioDetail>,
    pub rule: RuleView,
    pub integrity: Vec<IntegrityView>,
    pub clock: ClockView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    pub host: String,
    pub status: AgentStatus,
    pub last_seen: Option<Timestamp>,
    pub clock_offset_ms: Option<i64>,
    pub clock_skewed: bool,
    pub issues: Vec<String>,
}

impl From<&AgentHealth> for AgentView {
    fn from(a: &AgentHealth) -> Self {
        AgentView {
            host: a.host.clone(),
            status: a.status,
            last_seen: a.last_seen,
            clock_offset_ms: a.clock_offset.map(millis),
            clock_skewed: a.clock_skewed,
            issues: a.issues.iter().map(ToString::to_string).collect(),
        }
    }
}

fn millis(d: jiff::SignedDuration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainLink {
    pub id: RepoId,
    pub location: Option<Location>,
    pub immutable: Option<bool>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub job: JobKind,
    pub cron: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StreamView {
    /// The file's name in the snapshot (the command is not shown).
    pub filename: String,
    pub timeout_seconds: u64,
}

/// What the policy says of a system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SystemPolicyView {
    pub description: Option<String>,
    pub paths: Vec<String>,
    pub stream: Option<StreamView>,
    pub excludes: Vec<String>,
    pub schedules: Vec<ScheduleView>,
    /// The copy chain: backups go to the first, each copy to the next.
    pub repositories: Vec<ChainLink>,
    pub depends_on: Vec<SystemId>,
}

/// One stored run record with its store metadata.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunView {
    /// The store's id: pass the last one of a page as `after`.
    pub id: i64,
    pub agent_id: uuid::Uuid,
    pub received_at: Timestamp,
    pub record: RunRecord,
}

impl From<StoredRun> for RunView {
    fn from(r: StoredRun) -> Self {
        RunView {
            id: r.id,
            agent_id: r.agent_id,
            received_at: r.received_at,
            record: r.record,
        }
    }
}

/// `GET /api/v1/systems/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SystemDetail {
    #[serde(flatten)]
    pub row: SystemRow,
    pub policy: SystemPolicyView,
    pub assessment: AssessmentView,
    /// `None` when no agent is enrolled for the host.
    pub agent: Option<AgentView>,
    /// The latest runs, newest first.
    pub runs: Vec<RunView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RunsPage {
    pub runs: Vec<RunView>,
    pub next_after: Option<i64>,
}

/// `?system=&host=&kind=&outcome=&since=&until=&limit=&after=`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub system: Option<String>,
    pub host: Option<String>,
    pub kind: Option<RunKind>,
    pub outcome: Option<Outcome>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub limit: Option<u32>,
    pub after: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotsQuery {
    pub system: Option<String>,
}

/// One snapshot's copy at one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CopyAt {
    pub repository: RepoId,
    pub available_at: Timestamp,
    /// A check of the repository passed that started after the copy was there, and no failed
    /// check distrusts the repository now.
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SnapshotView {
    pub id: String,
    /// `None` until the backup record arrives (a copy record named it first).
    pub captured_at: Option<Timestamp>,
    pub backup_outcome: Option<Outcome>,
    /// Its backup ended `success`: only complete snapshots count.
    pub complete: bool,
    /// At least one copy is verified.
    pub verified: bool,
    pub copies: Vec<CopyAt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepositoryWrites {
    pub repository: RepoId,
    pub last_success: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub last_failure: Option<String>,
    pub failures_since_success: u32,
    /// The last write failed and nothing succeeded since.
    pub failing: bool,
}

/// `GET /api/v1/snapshots?system=ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SnapshotInventory {
    pub system: SystemId,
    pub built_at: Timestamp,
    pub runs_read: usize,
    /// Records that could not be used, with why.
    pub unusable: Vec<String>,
    /// Newest capture first; snapshots without a known capture last.
    pub snapshots: Vec<SnapshotView>,
    pub repositories: Vec<RepositoryWrites>,
}

/// One row of `GET /api/v1/assessments`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AssessmentRow {
    pub system: SystemId,
    pub tier: TierId,
    pub site: SiteId,
    #[serde(flatten)]
    pub status: ScenarioStatus,
    pub reasons: Vec<Explained>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AssessmentsPage {
    pub assessed_at: Timestamp,
    pub assessments: Vec<AssessmentRow>,
    /// A system id: pass as `after` for the next page.
    pub next_after: Option<SystemId>,
}

/// `?scenario=&tier=&status=&limit=&after=` (`limit` counts systems).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentsQuery {
    pub scenario: Option<Scenario>,
    pub tier: Option<TierId>,
    pub status: Option<Status>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub digest: String,
    /// `None` if the load was not noted (only in tests).
    pub loaded_at: Option<Timestamp>,
    pub files: Vec<PolicyFile>,
    pub tiers: usize,
    pub sites: usize,
    pub repositories: usize,
    pub systems: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupNowView {
    pub system: SystemId,
    pub host: String,
    /// `false`: the same command was waiting already.
    pub queued: bool,
    pub message: String,
}

/// The schemas of this module's answers, for the OpenAPI document.
pub(super) fn schemas() -> super::openapi::Schemas {
    use super::openapi::{add, add_list};
    let mut out = Vec::new();
    add::<FleetSummaryView>(&mut out);
    add_list::<SiteView>(&mut out, "SiteList");
    add_list::<RepositoryView>(&mut out, "RepositoryList");
    add::<SystemsPage>(&mut out);
    add::<SystemDetail>(&mut out);
    add::<BackupNowView>(&mut out);
    add::<RunsPage>(&mut out);
    add::<SnapshotInventory>(&mut out);
    add::<AssessmentsPage>(&mut out);
    add::<PolicyView>(&mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Pure mapping

pub fn fleet_summary(view: &FleetView) -> FleetSummaryView {
    FleetSummaryView {
        assessed_at: view.assessed_at,
        policy_digest: view.policy_digest.clone(),
        agents: view.agents,
        agents_offline: view.agents_offline,
        systems: view.systems,
        compliance: view
            .summaries
            .iter()
            .map(|s| ScenarioCounts {
                scenario: s.scenario,
                total: Counts::from(&s.total),
                tiers: s
                    .tiers
                    .iter()
                    .map(|(t, c)| (t.clone(), Counts::from(c)))
                    .collect(),
            })
            .collect(),
    }
}

pub fn site_rows(policy: &Policy, view: &FleetView) -> Vec<SiteView> {
    policy
        .sites
        .values()
        .map(|site| {
            let systems: Vec<&System> = policy
                .systems
                .values()
                .filter(|s| s.site == site.id)
                .collect();
            let hosts: BTreeSet<&str> = systems.iter().map(|s| s.host.as_str()).collect();
            let (mut online, mut offline, mut without) = (0, 0, 0);
            for host in hosts {
                match view.agent(host).map(|a| a.status) {
                    Some(AgentStatus::Online) => online += 1,
                    Some(_) => offline += 1,
                    None => without += 1,
                }
            }
            SiteView {
                id: site.id.clone(),
                name: site.name.clone(),
                region: site.region.clone(),
                timezone: site.timezone.to_string(),
                role: site.role,
                systems: u32::try_from(systems.len()).unwrap_or(u32::MAX),
                agents_online: online,
                agents_offline: offline,
                hosts_without_agent: without,
            }
        })
        .collect()
}

fn source_kind(s: &SecretSource) -> &'static str {
    match s {
        SecretSource::Env(_) => "env",
        SecretSource::File(_) => "file",
        SecretSource::Command(_) => "command",
    }
}

pub fn repository_rows(policy: &Policy) -> Vec<RepositoryView> {
    policy
        .repositories
        .values()
        .map(|r| RepositoryView {
            id: r.id.clone(),
            url: r.url.to_string(),
            scheme: r.url.scheme(),
            location: r.location,
            site: r.site.clone(),
            immutable: r.immutable,
            password_source: source_kind(&r.password),
        })
        .collect()
}

fn system_row(system: &System, assessment: &SystemAssessment) -> SystemRow {
    SystemRow {
        id: system.id.clone(),
        name: system.name.clone(),
        tier: system.tier.clone(),
        site: system.site.clone(),
        host: system.host.clone(),
        department: system.department.clone(),
        scenarios: assessment.rpo.iter().map(ScenarioStatus::from).collect(),
    }
}

/// The systems of `policy` matching `q`, in id order, one page. A system the view has no
/// assessment of (the policy changed since the sweep) is left out until the next sweep.
pub fn system_rows(policy: &Policy, view: &FleetView, q: &SystemsQuery) -> SystemsPage {
    let scenario = q.scenario.unwrap_or(Scenario::SiteLoss);
    let limit = limit(q.limit) as usize;
    let mut rows = Vec::new();
    let mut next_after = None;
    let after = q.after.as_deref().unwrap_or("");
    for system in policy.systems.values() {
        if system.id.as_str() <= after
            || q.tier.as_ref().is_some_and(|t| *t != system.tier)
            || q.site.as_ref().is_some_and(|s| *s != system.site)
        {
            continue;
        }
        let Some(assessment) = view.assessment(system.id.as_str()) else {
            continue;
        };
        if q.status
            .is_some_and(|st| assessment.rpo(scenario).status != st)
        {
            continue;
        }
        if rows.len() == limit {
            next_after = rows.last().map(|r: &SystemRow| r.id.clone());
            break;
        }
        rows.push(system_row(system, assessment));
    }
    SystemsPage {
        assessed_at: view.assessed_at,
        systems: rows,
        next_after,
    }
}

fn scenario_detail(r: &RpoAssessment) -> ScenarioDetail {
    ScenarioDetail {
        status: ScenarioStatus::from(r),
        summary: r.to_string(),
        reasons: r.reasons.iter().map(explained).collect(),
    }
}

pub fn assessment_view(a: &SystemAssessment) -> AssessmentView {
    AssessmentView {
        assessed_at: a.assessed_at,
        scenarios: a.rpo.iter().map(scenario_detail).collect(),
        rule: RuleView {
            conformant: a.rule.conformant(),
            digits: a
                .rule
                .digits
                .iter()
                .map(|d| DigitView {
                    kind: d.kind,
                    required: d.required,
                    actual: d.actual,
                    met: d.met,
                    text: d.to_string(),
                    notes: d.notes.iter().map(explained).collect(),
                })
                .collect(),
        },
        integrity: a
            .integrity
            .iter()
            .map(|c| IntegrityView {
                repository: c.repository.clone(),
                ok: c.ok(),
                last_check: c.last_check,
                structure_ok: c.structure_ok,
                read_ok: c.read_ok,
                fully_read_at: c.fully_read_at,
                issues: c.issues.iter().map(explained).collect(),
            })
            .collect(),
        clock: ClockView {
            corrected: a.clock.is_active(),
            offset_ms: a.clock.offset.map(millis),
        },
    }
}

pub fn system_policy_view(policy: &Policy, s: &System) -> SystemPolicyView {
    SystemPolicyView {
        description: s.description.clone(),
        paths: s.paths.iter().map(|p| p.display().to_string()).collect(),
        stream: s.stream.as_ref().map(|st| StreamView {
            filename: st.filename.clone(),
            timeout_seconds: st.timeout.as_std().as_secs(),
        }),
        excludes: s.excludes.clone(),
        schedules: s
            .schedules
            .iter()
            .map(|sc| ScheduleView {
                job: sc.job,
                cron: sc.cron.to_string(),
            })
            .collect(),
        repositories: s
            .repositories
            .iter()
            .map(|id| {
                let repo = policy.repository(id.as_str());
                ChainLink {
                    id: id.clone(),
                    location: repo.map(|r| r.location),
                    immutable: repo.map(|r| r.immutable),
                    url: repo.map(|r| r.url.to_string()),
                }
            })
            .collect(),
        depends_on: s.depends_on.clone(),
    }
}

/// Every scenario of every system matching `q`, flat, one page of systems in id order.
pub fn assessment_rows(view: &FleetView, q: &AssessmentsQuery) -> AssessmentsPage {
    let limit = limit(q.limit) as usize;
    let after = q.after.as_deref().unwrap_or("");
    let mut rows = Vec::new();
    let mut systems = 0;
    let mut next_after = None;
    let mut last = None;
    for a in &view.assessments {
        if a.system.as_str() <= after || q.tier.as_ref().is_some_and(|t| *t != a.tier) {
            continue;
        }
        let matching: Vec<&RpoAssessment> = a
            .rpo
            .iter()
            .filter(|r| q.scenario.is_none_or(|s| s == r.scenario))
            .filter(|r| q.status.is_none_or(|s| s == r.status))
            .collect();
        if matching.is_empty() {
            continue;
        }
        if systems == limit {
            next_after = last;
            break;
        }
        systems += 1;
        last = Some(a.system.clone());
        rows.extend(matching.into_iter().map(|r| AssessmentRow {
            system: a.system.clone(),
            tier: a.tier.clone(),
            site: a.site.clone(),
            status: ScenarioStatus::from(r),
            reasons: r.reasons.iter().map(explained).collect(),
        }));
    }
    AssessmentsPage {
        assessed_at: view.assessed_at,
        assessments: rows,
        next_after,
    }
}

/// The snapshot inventory of `system` from its run records, at `now`.
pub fn snapshot_inventory(
    policy: &Policy,
    system: &System,
    runs: &[RunRecord],
    now: Timestamp,
) -> SnapshotInventory {
    let (inventory, errors) = Inventory::from_runs(runs, policy);
    let evidence = inventory.system(system.id.as_str());
    let verified = |repo: &RepoId, available: Timestamp| {
        inventory.checks(repo.as_str()).is_some_and(|c| {
            c.distrusted_at(now).is_none()
                && c.log()
                    .iter()
                    .any(|k| k.result == CheckResult::Passed && k.started >= available)
        })
    };
    let mut snapshots: Vec<SnapshotView> = evidence
        .map(|ev| {
            ev.snapshots()
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let copies: Vec<CopyAt> = ev
                        .columns()
                        .iter()
                        .filter_map(|col| {
                            let at = col.available_at(i)?;
                            Some(CopyAt {
                                repository: col.repository().clone(),
                                available_at: at,
                                verified: verified(col.repository(), at),
                            })
                        })
                        .collect();
                    SnapshotView {
                        id: s.id.as_str().to_string(),
                        captured_at: s.capture.map(|c| c.captured),
                        backup_outcome: s.capture.map(|c| c.outcome),
                        complete: s.capture.is_some_and(|c| c.is_complete()),
                        verified: copies.iter().any(|c| c.verified),
                        copies,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    // Newest first; unknown capture times last.
    snapshots.sort_by(|a, b| {
        b.captured_at
            .is_some()
            .cmp(&a.captured_at.is_some())
            .then(b.captured_at.cmp(&a.captured_at))
            .then(a.id.cmp(&b.id))
    });
    let repositories = evidence
        .map(|ev| {
            ev.columns()
                .iter()
                .map(|col| {
                    let w = col.writes();
                    RepositoryWrites {
                        repository: col.repository().clone(),
                        last_success: w.last_success,
                        last_failure_at: w.last_failure.as_ref().map(|f| f.at),
                        last_failure: w.last_failure.as_ref().map(|f| f.message.clone()),
                        failures_since_success: w.failures_since_success,
                        failing: w.failing().is_some(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    SnapshotInventory {
        system: system.id.clone(),
        built_at: now,
        runs_read: runs.len(),
        unusable: errors.iter().map(ToString::to_string).collect(),
        snapshots,
        repositories,
    }
}

pub fn policy_view(policy: &Policy, load: Option<&PolicyLoad>) -> PolicyView {
    // A load noted for another digest is not this policy's.
    let load = load.filter(|l| l.digest == policy.digest);
    PolicyView {
        digest: policy.digest.clone(),
        loaded_at: load.map(|l| l.loaded_at),
        files: load.map(|l| l.files.clone()).unwrap_or_default(),
        tiers: policy.tiers.len(),
        sites: policy.sites.len(),
        repositories: policy.repositories.len(),
        systems: policy.systems.len(),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn fleet(State(api): State<FleetApi>) -> Response {
    match api.view() {
        Some(view) => Json(fleet_summary(&view)).into_response(),
        None => not_ready(),
    }
}

async fn sites(State(api): State<FleetApi>) -> Response {
    match api.view() {
        Some(view) => Json(site_rows(&api.policy(), &view)).into_response(),
        None => not_ready(),
    }
}

async fn repositories(State(api): State<FleetApi>) -> Response {
    Json(repository_rows(&api.policy())).into_response()
}

async fn systems(
    State(api): State<FleetApi>,
    q: Result<Query<SystemsQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    match api.view() {
        Some(view) => Json(system_rows(&api.policy(), &view, &q)).into_response(),
        None => not_ready(),
    }
}

fn unknown_system(id: &str) -> Response {
    Failure::not_found(format!(
        "system {id:?} is not in the policy in force; GET {SYSTEMS_PATH} lists the systems"
    ))
    .into_response()
}

async fn system(State(api): State<FleetApi>, Param(id): Param<String>) -> Response {
    let policy = api.policy();
    let Some(system) = policy.system(&id) else {
        return unknown_system(&id);
    };
    let Some(view) = api.view() else {
        return not_ready();
    };
    if view.assessment(&id).is_none() {
        return not_ready();
    }
    let runs = match latest_runs(api.store(), &id).await {
        Ok(runs) => runs,
        Err(f) => return f.into_response(),
    };
    match system_detail(&policy, &view, system, runs) {
        Some(detail) => Json(detail).into_response(),
        None => not_ready(),
    }
}

/// The latest runs of system `id` that its detail shows, newest first.
pub(crate) async fn latest_runs(store: &Store, id: &str) -> Result<Vec<StoredRun>, Failure> {
    store
        .runs_of_system(id, Page::first(SYSTEM_RUNS))
        .await
        .map_err(Failure::store)
}

/// A system's detail from the sweep's `view` and its latest `runs`; `None` while the view has
/// no assessment of it (the policy changed since the sweep).
pub fn system_detail(
    policy: &Policy,
    view: &FleetView,
    system: &System,
    runs: Vec<StoredRun>,
) -> Option<SystemDetail> {
    let assessment = view.assessment(system.id.as_str())?;
    Some(SystemDetail {
        row: system_row(system, assessment),
        policy: system_policy_view(policy, system),
        assessment: assessment_view(assessment),
        agent: view.agent(&system.host).map(AgentView::from),
        runs: runs.into_iter().map(RunView::from).collect(),
    })
}

async fn backup_now(
    State(api): State<FleetApi>,
    Extension(me): Extension<Principal>,
    Param(id): Param<String>,
) -> Response {
    let policy = api.policy();
    let Some(system) = policy.system(&id) else {
        return unknown_system(&id);
    };
    let command = Command::BackupNow {
        system: system.id.clone(),
    };
    let now = api.auth.clock.now();
    let queued = match api
        .store()
        .queue_command(&system.host, &command, &me.actor(), now)
        .await
    {
        Ok(q) => q,
        Err(e) => return Failure::store(e).into_response(),
    };
    let result = match queued {
        CommandQueued::Queued(_) => "queued",
        CommandQueued::AlreadyQueued => "already-queued",
        CommandQueued::NoAgent => "no-agent",
    };
    api.auth
        .audit(
            &me.actor(),
            "system.backup-now",
            &format!("system:{}", system.id),
            serde_json::json!({ "host": system.host, "result": result }),
        )
        .await;
    let answer = |queued: bool, message: String| {
        (
            StatusCode::ACCEPTED,
            Json(BackupNowView {
                system: system.id.clone(),
                host: system.host.clone(),
                queued,
                message,
            }),
        )
            .into_response()
    };
    match queued {
        CommandQueued::Queued(_) => answer(
            true,
            format!(
                "the agent on {} starts the backup after its next heartbeat",
                system.host
            ),
        ),
        CommandQueued::AlreadyQueued => answer(
            false,
            format!(
                "a backup-now of {} is already waiting for the agent on {}",
                system.id, system.host
            ),
        ),
        CommandQueued::NoAgent => Failure::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!(
                "no enrolled agent on host {} (never enrolled, or revoked) to run the backup; \
                 enrol one first (POST /api/v1/enrolment-tokens)",
                system.host
            ),
        )
        .into_response(),
    }
}

async fn runs(
    State(api): State<FleetApi>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let limit = limit(q.limit);
    let filter = RunFilter {
        system: q.system,
        host: q.host,
        kind: q.kind,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
    };
    match api.store().list_runs(&filter, q.after, limit).await {
        Ok(runs) => {
            let next_after = if runs.len() == limit as usize {
                runs.last().map(|r| r.id)
            } else {
                None
            };
            Json(RunsPage {
                runs: runs.into_iter().map(RunView::from).collect(),
                next_after,
            })
            .into_response()
        }
        Err(e) => Failure::store(e).into_response(),
    }
}

async fn snapshots(
    State(api): State<FleetApi>,
    q: Result<Query<SnapshotsQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let Some(id) = q.system else {
        return Failure::bad_request("name the system: GET /api/v1/snapshots?system=ID")
            .into_response();
    };
    let policy = api.policy();
    if policy.system(&id).is_none() {
        return unknown_system(&id);
    }
    match read_inventory(api.store(), policy, id, api.auth.clock.now()).await {
        Ok(inventory) => Json(inventory).into_response(),
        Err(f) => f.into_response(),
    }
}

/// The snapshot inventory of system `id` of `policy` at `now`, from its stored run records
/// (at most [`MAX_INVENTORY_RUNS`]): what `GET /api/v1/snapshots` and the dashboard's system
/// page show.
pub(crate) async fn read_inventory(
    store: &Store,
    policy: Arc<Policy>,
    id: String,
    now: Timestamp,
) -> Result<SnapshotInventory, Failure> {
    let mut records = Vec::new();
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let batch = store
            .runs_of_system(&id, page)
            .await
            .map_err(Failure::store)?;
        let last = batch.len() < page.limit as usize;
        records.extend(batch.into_iter().map(|r| r.record));
        if last || records.len() >= MAX_INVENTORY_RUNS as usize {
            break;
        }
        page = page.next();
    }
    // Building the inventory is CPU work: off the async threads.
    let built = tokio::task::spawn_blocking(move || {
        policy
            .system(&id)
            .map(|system| snapshot_inventory(&policy, system, &records, now))
    })
    .await;
    match built {
        Ok(Some(inventory)) => Ok(inventory),
        Ok(None) => Err(Failure::internal(
            "the system left the policy while reading".into(),
        )),
        Err(e) => Err(Failure::internal(format!("the inventory task failed: {e}"))),
    }
}

async fn assessments(
    State(api): State<FleetApi>,
    q: Result<Query<AssessmentsQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    match api.view() {
        Some(view) => Json(assessment_rows(&view, &q)).into_response(),
        None => not_ready(),
    }
}

async fn policy(State(api): State<FleetApi>) -> Response {
    let load = api.loads.latest();
    Json(policy_view(&api.policy(), load.as_deref())).into_response()
}

/// `GET /api/v1/reports/quarterly` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuarterlyQuery {
    pub quarter: Option<String>,
    pub lang: Option<String>,
    pub format: Option<String>,
}

/// The quarterly report (`crate::report::quarterly`), rendered from the store and the policy in
/// force; every download is audited.
async fn quarterly_report(
    State(api): State<FleetApi>,
    Extension(me): Extension<Principal>,
    headers: axum::http::HeaderMap,
    q: Result<Query<QuarterlyQuery>, QueryRejection>,
) -> Response {
    use crate::i18n::Lang;
    use crate::report::quarterly::{self, Format, Quarter, ReportError};
    let bad = |m: String| Failure::bad_request(m).into_response();
    let q = match query(q) {
        Ok(q) => q,
        Err(f) => return f.into_response(),
    };
    let quarter = match q.quarter.as_deref().map(str::parse::<Quarter>).transpose() {
        Ok(quarter) => quarter,
        Err(e) => return bad(e.to_string()),
    };
    // `?lang=` first, then the browser's Accept-Language, then English.
    let lang = match q.lang.as_deref() {
        Some(tag) => match Lang::from_tag(tag) {
            Some(l) => l,
            None => return bad("`lang` must be en or zh-CN".into()),
        },
        None => headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or_default(),
    };
    let format = match q.format.as_deref().map(Format::parse) {
        None => Format::Html,
        Some(Some(f)) => f,
        Some(None) => return bad("`format` must be html, pdf, csv or json".into()),
    };
    let now = api.auth.clock.now();
    let rendered = match quarterly::render(api.store(), &api.policy(), quarter, lang, format, now)
        .await
    {
        Ok(r) => r,
        Err(ReportError::Store(e)) => return Failure::store(e).into_response(),
        Err(ReportError::Build(e)) => return bad(e.to_string()),
        Err(ReportError::Pdf(e)) if e.is_missing_software() => {
            return Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                e.to_string(),
            )
            .into_response();
        }
        Err(e) => return Failure::internal(format!("the quarterly report: {e}")).into_response(),
    };
    api.auth
        .audit(
            &me.actor(),
            "report.quarterly",
            &format!("report:{}", rendered.file_name),
            serde_json::json!({ "format": format.as_str(), "lang": lang.tag() }),
        )
        .await;
    let mut response = (
        [(header::CONTENT_TYPE, rendered.content_type)],
        rendered.bytes,
    )
        .into_response();
    let disposition = if format == Format::Html {
        // No script, no external resource: say so to the browser too.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        format!("inline; filename=\"{}\"", rendered.file_name)
    } else {
        format!("attachment; filename=\"{}\"", rendered.file_name)
    };
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Heartbeat;
    use crate::coordinator::store::{Enrolment, EnrolmentToken, NewAgent, TokenHash};
    use crate::coordinator::sweep::{SweepConfig, Sweeper};
    use crate::run::RepoResult;
    use crate::secret::Secret;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// The simulated fleet's policy: 2 hosts × 3 systems (tiers T1, T2, T3).
    fn policy() -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in crate::sim::policy::files(2, 3) {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let policy = crate::policy::load_dir(dir.path()).unwrap();
        (dir, policy)
    }

    fn backup(system: &str, id: &str, cap: &str, outcome: Outcome, repos: &[&str]) -> RunRecord {
        let cap = t(cap);
        let done = cap + jiff::SignedDuration::from_mins(10);
        let host = if system.starts_with("sim-00001") {
            "sim-00001"
        } else {
            "sim-00002"
        };
        let mut r = RunRecord::start(RunKind::Backup, id.into(), host.into(), cap);
        r.system = Some(system.into());
        r.capture_time = Some(cap);
        r.finished_at = done;
        r.snapshot_id = Some(format!("snap-{id}"));
        r.outcome = outcome;
        r.repositories = repos
            .iter()
            .map(|repo| RepoResult {
                repository: (*repo).into(),
                location: "local".into(),
                immutable: false,
                outcome,
                available_at: (outcome == Outcome::Success).then_some(done),
                snapshots: vec![format!("snap-{id}")],
                bytes_added: 1,
                seconds: 1.0,
                error: (outcome != Outcome::Success).then(|| crate::run::RunError {
                    kind: "storage".into(),
                    message: "disk full".into(),
                }),
            })
            .collect();
        r
    }

    /// The view the real sweep publishes over a SQLite store holding `runs`, with the agent
    /// of `sim-00001` enrolled and heard from at `now` (`sim-00002` has none).
    async fn view(dir: &Path, policy: &Policy, runs: &[RunRecord], now: Timestamp) -> FleetView {
        let url = format!("sqlite://{}", dir.join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let enrol = Secret::new("lbe-test".to_string());
        store
            .create_enrolment_token(&EnrolmentToken {
                hash: TokenHash::of(&enrol),
                host: "sim-00001".into(),
                site: "sim-branch".into(),
                created_by: "test".into(),
                created_at: now,
                expires_at: now + jiff::SignedDuration::from_hours(1),
                used_at: None,
                used_by: None,
            })
            .await
            .unwrap();
        let agent = NewAgent {
            id: uuid::Uuid::new_v4(),
            token_hash: TokenHash::of(&Secret::new("agent".to_string())),
            version: "test".into(),
        };
        let Enrolment::Enrolled(agent) = store
            .enrol_agent(&TokenHash::of(&enrol), &agent, now)
            .await
            .unwrap()
        else {
            panic!("not enrolled")
        };
        let batch: Vec<(u64, &RunRecord)> = (1..).zip(runs.iter()).collect();
        store.insert_runs(agent.id, &batch, now).await.unwrap();
        let beat = Heartbeat {
            drill_tasks_running: Vec::new(),
            host: "sim-00001".into(),
            version: "test".into(),
            sent_at: now,
            spool: Default::default(),
            assignment_digest: None,
            systems: Vec::new(),
        };
        store
            .record_heartbeat(agent.id, now, jiff::SignedDuration::ZERO, &beat)
            .await
            .unwrap();
        let policy = Arc::new(RwLock::new(Arc::new(policy.clone())));
        let (mut sweeper, _) =
            Sweeper::new(store, policy, Arc::new(Fixed(now)), SweepConfig::default());
        let view = sweeper.tick().await.unwrap().unwrap();
        (*view).clone()
    }

    struct Fixed(Timestamp);
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            self.0
        }
    }

    const NOW: &str = "2026-03-01T12:00:00Z";

    async fn fixture() -> (tempfile::TempDir, Policy, FleetView) {
        let (dir, policy) = policy();
        let runs = [
            // s1 (T1, 4 h): fresh, local and off site.
            backup(
                "sim-00001-s1",
                "r1",
                "2026-03-01T11:00:00Z",
                Outcome::Success,
                &["sim-local", "sim-offsite"],
            ),
            // s2 (T2, 24 h): local only, 6 h ago.
            backup(
                "sim-00001-s2",
                "r2",
                "2026-03-01T06:00:00Z",
                Outcome::Success,
                &["sim-local"],
            ),
        ];
        let view = view(dir.path(), &policy, &runs, t(NOW)).await;
        (dir, policy, view)
    }

    fn site_loss(row: &SystemRow) -> &ScenarioStatus {
        &row.scenarios[Scenario::SiteLoss.index()]
    }

    #[tokio::test]
    async fn systems_are_listed_in_id_order_filtered_and_paged() {
        let (_dir, policy, view) = fixture().await;
        let all = system_rows(&policy, &view, &SystemsQuery::default());
        let ids: Vec<&str> = all.systems.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "sim-00001-s1",
                "sim-00001-s2",
                "sim-00001-s3",
                "sim-00002-s1",
                "sim-00002-s2",
                "sim-00002-s3"
            ]
        );
        assert_eq!(all.next_after, None);
        let s1 = &all.systems[0];
        assert_eq!(
            (s1.tier.as_str(), s1.host.as_str(), s1.scenarios.len()),
            ("T1", "sim-00001", 3)
        );
        assert_eq!(site_loss(s1).status, Status::Compliant);
        assert_eq!(site_loss(s1).exposure_seconds, Some(3_600));
        assert_eq!(site_loss(s1).exposure, "1h");
        assert_eq!(site_loss(s1).target_seconds, 4 * 3_600);
        assert_eq!(site_loss(s1).breach_at, Some(t("2026-03-01T15:00:00Z")));
        // s2 is only local: unbounded for a site loss, breached.
        let s2 = &all.systems[1];
        assert_eq!(
            (site_loss(s2).status, site_loss(s2).exposure_seconds),
            (Status::Breached, None)
        );
        assert_eq!(site_loss(s2).exposure, "unbounded");
        assert_eq!(
            s2.scenarios[Scenario::ComponentLoss.index()].status,
            Status::Compliant
        );

        let breached = system_rows(
            &policy,
            &view,
            &SystemsQuery {
                status: Some(Status::Breached),
                ..Default::default()
            },
        );
        assert_eq!(breached.systems.len(), 1);
        assert_eq!(breached.systems[0].id.as_str(), "sim-00001-s2");
        let t3 = system_rows(
            &policy,
            &view,
            &SystemsQuery {
                tier: Some("T3".parse().unwrap()),
                status: Some(Status::NoEvidence),
                ..Default::default()
            },
        );
        assert_eq!(t3.systems.len(), 2);

        let p1 = system_rows(
            &policy,
            &view,
            &SystemsQuery {
                limit: Some(4),
                ..Default::default()
            },
        );
        assert_eq!(p1.systems.len(), 4);
        assert_eq!(
            p1.next_after.as_ref().map(SystemId::as_str),
            Some("sim-00002-s1")
        );
        let p2 = system_rows(
            &policy,
            &view,
            &SystemsQuery {
                limit: Some(4),
                after: p1.next_after.map(|s| s.as_str().to_string()),
                ..Default::default()
            },
        );
        let ids: Vec<&str> = p2.systems.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["sim-00002-s2", "sim-00002-s3"]);
        assert_eq!(p2.next_after, None);
    }

    #[tokio::test]
    async fn the_fleet_summary_counts_every_tier_per_scenario() {
        let (_dir, _policy, view) = fixture().await;
        let s = fleet_summary(&view);
        assert_eq!((s.systems, s.agents, s.agents_offline), (6, 1, 0));
        let site = &s.compliance[Scenario::SiteLoss.index()];
        assert_eq!(site.scenario, Scenario::SiteLoss);
        assert_eq!(site.total.total, 6);
        let t1 = &site.tiers[&"T1".parse::<TierId>().unwrap()];
        assert_eq!((t1.compliant, t1.no_evidence, t1.total), (1, 1, 2));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["compliance"][1]["scenario"], "site-loss");
        assert_eq!(json["compliance"][1]["tiers"]["T2"]["breached"], 1);
    }

    #[tokio::test]
    async fn sites_count_systems_and_agents_by_host() {
        let (_dir, policy, view) = fixture().await;
        let sites = site_rows(&policy, &view);
        let branch = sites
            .iter()
            .find(|s| s.systems > 0)
            .expect("a site with systems");
        assert_eq!(branch.systems, 6);
        // sim-00001 is online; sim-00002 never enrolled.
        assert_eq!(
            (
                branch.agents_online,
                branch.agents_offline,
                branch.hosts_without_agent
            ),
            (1, 0, 1)
        );
    }

    #[test]
    fn repositories_show_no_credential() {
        let (_dir, policy) = policy();
        let repos = repository_rows(&policy);
        assert_eq!(repos.len(), policy.repositories.len());
        let json = serde_json::to_string(&repos).unwrap();
        for r in policy.repositories.values() {
            let SecretSource::File(path) = &r.password else {
                panic!("the simulated policy reads passwords from files")
            };
            let path = path.display().to_string();
            assert!(!json.contains(&path), "{json} shows {path}");
        }
        assert!(!json.contains("/etc/lifeboat/s3/"), "{json}");
        assert!(
            repos
                .iter()
                .all(|r| ["env", "file", "command"].contains(&r.password_source))
        );
    }

    #[tokio::test]
    async fn a_system_assessment_keeps_every_reason_as_text_and_structure() {
        let (_dir, _policy, view) = fixture().await;
        let a = view.assessment("sim-00001-s2").unwrap();
        let v = assessment_view(a);
        assert_eq!(v.scenarios.len(), 3);
        let site = &v.scenarios[Scenario::SiteLoss.index()];
        assert_eq!(site.status.status, Status::Breached);
        assert!(!site.reasons.is_empty());
        for r in &site.reasons {
            assert!(!r.text.is_empty());
            assert!(r.detail.get("reason").is_some(), "{:?}", r.detail);
        }
        assert!(
            site.summary.starts_with("site-loss: breached"),
            "{}",
            site.summary
        );
        assert_eq!(v.rule.digits.len(), 5);
        assert!(!v.rule.conformant);
        assert_eq!(v.integrity.len(), 3, "one per repository of the chain");
        assert!(!v.clock.corrected);
    }

    #[tokio::test]
    async fn assessments_are_flat_and_filtered() {
        let (_dir, _policy, view) = fixture().await;
        let all = assessment_rows(&view, &AssessmentsQuery::default());
        assert_eq!(all.assessments.len(), 18);
        let breached = assessment_rows(
            &view,
            &AssessmentsQuery {
                scenario: Some(Scenario::SiteLoss),
                status: Some(Status::Breached),
                ..Default::default()
            },
        );
        assert_eq!(breached.assessments.len(), 1);
        let row = &breached.assessments[0];
        assert_eq!(row.system.as_str(), "sim-00001-s2");
        assert!(
            row.reasons
                .iter()
                .any(|r| r.text.contains("counts for site-loss"))
        );
        let paged = assessment_rows(
            &view,
            &AssessmentsQuery {
                limit: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(paged.assessments.len(), 6);
        assert_eq!(
            paged.next_after.as_ref().map(SystemId::as_str),
            Some("sim-00001-s2")
        );
    }

    #[test]
    fn the_snapshot_inventory_lists_copies_failures_and_verification() {
        let (_dir, policy) = policy();
        let system = policy.system("sim-00001-s1").unwrap();
        let mut check = RunRecord::start(
            RunKind::Check,
            "c1".into(),
            "sim-00001".into(),
            t("2026-03-01T05:00:00Z"),
        );
        check.system = Some("sim-00001-s1".into());
        check.finished_at = t("2026-03-01T05:05:00Z");
        check.outcome = Outcome::Success;
        check.repositories = vec![RepoResult {
            repository: "sim-local".into(),
            location: "local".into(),
            immutable: false,
            outcome: Outcome::Success,
            available_at: None,
            snapshots: vec![],
            bytes_added: 0,
            seconds: 1.0,
            error: None,
        }];
        let runs = [
            backup(
                "sim-00001-s1",
                "r1",
                "2026-03-01T02:00:00Z",
                Outcome::Success,
                &["sim-local"],
            ),
            check,
            backup(
                "sim-00001-s1",
                "r2",
                "2026-03-01T08:00:00Z",
                Outcome::Success,
                &["sim-local"],
            ),
            backup(
                "sim-00001-s1",
                "r3",
                "2026-03-01T10:00:00Z",
                Outcome::Failed,
                &["sim-local"],
            ),
        ];
        let inv = snapshot_inventory(&policy, system, &runs, t(NOW));
        assert_eq!(inv.runs_read, 4);
        assert!(inv.unusable.is_empty(), "{:?}", inv.unusable);
        // The failed backup wrote no snapshot: it shows as a write failure only.
        let ids: Vec<&str> = inv.snapshots.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["snap-r2", "snap-r1"]);
        let [r2, r1] = &inv.snapshots[..] else {
            panic!("{:?}", inv.snapshots)
        };
        assert_eq!(r2.backup_outcome, Some(Outcome::Success));
        assert!(r2.complete && !r2.verified, "checked before it was written");
        assert_eq!(r2.copies[0].available_at, t("2026-03-01T08:10:00Z"));
        assert!(r1.complete && r1.verified && r1.copies[0].verified);
        assert_eq!(r1.captured_at, Some(t("2026-03-01T02:00:00Z")));
        let local = &inv.repositories[0];
        assert_eq!(local.repository.as_str(), "sim-local");
        assert!(local.failing);
        assert_eq!(local.failures_since_success, 1);
        assert_eq!(local.last_failure.as_deref(), Some("disk full"));
        assert_eq!(local.last_success, Some(t("2026-03-01T08:10:00Z")));
    }

    #[test]
    fn the_policy_view_names_its_files_with_their_hashes() {
        let (dir, policy) = policy();
        let loads = PolicyLoads::default();
        assert_eq!(
            policy_view(&policy, loads.latest().as_deref()).loaded_at,
            None
        );
        loads.record(dir.path(), &policy, t(NOW));
        let v = policy_view(&policy, loads.latest().as_deref());
        assert_eq!(v.loaded_at, Some(t(NOW)));
        assert_eq!(v.systems, 6);
        let names: Vec<&str> = v.files.iter().map(|f| f.path.as_str()).collect();
        assert!(names.contains(&"tiers.toml"), "{names:?}");
        let tiers = std::fs::read(dir.path().join("tiers.toml")).unwrap();
        let f = v.files.iter().find(|f| f.path == "tiers.toml").unwrap();
        assert_eq!(f.sha256, hex::encode(Sha256::digest(&tiers)));
        // A load of another policy is not shown as this one's.
        let mut other = policy.clone();
        other.digest = "0".repeat(64);
        assert_eq!(policy_view(&other, loads.latest().as_deref()).files, []);
    }
}
