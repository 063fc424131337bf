//! The agent endpoints of the coordinator's HTTP API (`/api/v1/agents/…`, wire types in
//! [`crate::api`]): enrolment with a one-time token, heartbeats (answered with commands and the
//! host's open drill tasks), the host's assignment, and idempotent delivery of run records and
//! drill reports.
//!
//! Every call but enrolment carries the agent's own token (`Authorization: Bearer`); it is
//! looked up by its hash, and a wrong or revoked token is a 401 with an audit entry. An agent
//! sees only its own host's assignment and drill tasks, and may report only its own host's
//! systems and tasks. A database that is down is a 503: the agent keeps its records and retries.
//!
//! Drill tasks cost a heartbeat no query while no drill is running: each replica keeps the set
//! of hosts that have open tasks ([`DrillHosts`]), refreshed from the store at most once per
//! [`DRILL_HOSTS_REFRESH`], and asks the store for a host's tasks only when the host is in it.
//! This module decides nothing about drills: it hands out what the store holds and stores what
//! agents report.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;

use super::auth::{Body, Failure};
use super::metrics::Metrics;
use super::store::{
    Agent, Enrolment, EnrolmentRefusal, NewAgent, NewAuditEntry, ReportInsert, RunInsert, Store,
    TokenHash,
};
use crate::api::{
    ASSIGNMENT_PATH, Assignment, AssignmentFile, DRILL_REPORTS_PATH, DrillReportBatch,
    DrillReportResponse, DrillTask, ENROL_PATH, EnrolRequest, EnrolResponse, ErrorCode,
    HEARTBEAT_PATH, Heartbeat, HeartbeatResponse, MAX_RUN_BATCH, PolicyFileName, RUNS_PATH,
    RejectCode, Rejection, RunBatch, RunBatchResponse, Token, etag, etag_matches,
};
use crate::clock::Clock;
use crate::policy::{Policy, SystemId};
use crate::secret::Secret;

/// What the agent endpoints share.
#[derive(Clone)]
pub struct AgentApi {
    pub store: Store,
    pub policy: Arc<RwLock<Arc<Policy>>>,
    pub clock: Arc<dyn Clock>,
    /// Run-ingest counters (see `metrics`).
    pub metrics: Metrics,
    /// Assignments by host, for the policy digest they were made from.
    assignments: Arc<Mutex<Assignments>>,
    /// The hosts with open drill tasks, as last read from the store.
    drill_hosts: Arc<Mutex<DrillHosts>>,
    /// How old `drill_hosts` may be before a heartbeat refreshes it.
    drill_hosts_refresh: Duration,
}

/// How often each replica re-reads which hosts have open drill tasks: a task put by the
/// orchestrator reaches its host's heartbeat answers within this long (plus one heartbeat).
pub const DRILL_HOSTS_REFRESH: Duration = Duration::from_secs(1);

/// The most reports one [`DrillReportBatch`] may carry; larger batches are answered 413.
pub const MAX_DRILL_REPORT_BATCH: usize = 100;

/// The hosts that had open drill tasks when the store was last asked, and when that was by the
/// coordinator's clock (`None`: never). A heartbeat of a host outside the set costs no drill
/// query.
#[derive(Debug, Default)]
struct DrillHosts {
    hosts: HashSet<String>,
    read_at: Option<Timestamp>,
}

/// The assignments made from one policy (by its digest), by host, and which systems each host
/// has: indexed once per policy, since finding a host's systems by scanning a policy of 50,000
/// systems for each of 10,000 hosts took most of a coordinator's CPU.
#[derive(Debug, Default)]
struct Assignments {
    digest: String,
    hosts: HashMap<String, Vec<SystemId>>,
    made: HashMap<String, Option<Arc<Assignment>>>,
}

impl Assignments {
    fn of(policy: &Policy) -> Self {
        let hosts = policy
            .systems_by_host()
            .into_iter()
            .map(|(host, ids)| (host.to_string(), ids.into_iter().cloned().collect()))
            .collect();
        Assignments {
            digest: policy.digest.clone(),
            hosts,
            made: HashMap::new(),
        }
    }
}

/// The largest request body accepted (a batch of 100 records is far below it).
const MAX_BODY: usize = 8 << 20;

impl AgentApi {
    pub fn new(store: Store, policy: Arc<RwLock<Arc<Policy>>>, clock: Arc<dyn Clock>) -> Self {
        AgentApi {
            store,
            policy,
            clock,
            metrics: Metrics::new(),
            assignments: Arc::default(),
            drill_hosts: Arc::default(),
            drill_hosts_refresh: DRILL_HOSTS_REFRESH,
        }
    }

    /// Re-reads the hosts with open drill tasks at most every `every` instead of
    /// [`DRILL_HOSTS_REFRESH`] (tests use zero: every heartbeat sees the store as it is).
    pub fn with_drill_hosts_refresh(mut self, every: Duration) -> Self {
        self.drill_hosts_refresh = every;
        self
    }

    /// Counts run ingest into `metrics` (shared with `/metrics`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .route(ENROL_PATH, post(enrol))
            .route(HEARTBEAT_PATH, post(heartbeat))
            .route(ASSIGNMENT_PATH, get(assignment))
            .route(RUNS_PATH, post(runs))
            .route(DRILL_REPORTS_PATH, post(drill_reports))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }

    fn policy(&self) -> Arc<Policy> {
        super::current_policy(&self.policy)
    }

    /// The host's assignment (cached per policy digest); `None` when nothing is assigned.
    /// Made outside the cache's lock, so that heartbeats of other hosts never wait for it.
    fn assignment_of(&self, host: &str) -> Result<Option<Arc<Assignment>>, Failure> {
        let policy = self.policy();
        let ids = {
            let mut cache = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
            if cache.digest != policy.digest {
                *cache = Assignments::of(&policy);
            }
            if let Some(made) = cache.made.get(host) {
                return Ok(made.clone());
            }
            cache.hosts.get(host).cloned()
        };
        let assignment = match ids.and_then(|ids| policy.for_systems(&ids)) {
            None => None,
            Some(mine) => {
                let files = mine
                    .to_files()
                    .map_err(|e| Failure::internal(e.to_string()))?
                    .into_iter()
                    .map(|(name, content)| {
                        name.parse::<PolicyFileName>()
                            .map(|name| AssignmentFile { name, content })
                            .map_err(|e| Failure::internal(format!("{e:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Arc::new(Assignment::new(self.clock.now(), files)))
            }
        };
        let mut cache = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
        if cache.digest == policy.digest {
            cache.made.insert(host.to_string(), assignment.clone());
        }
        Ok(assignment)
    }

    /// The open drill tasks of `host`: none, without a query, when the host had none at the
    /// last refresh of the set of hosts with tasks (itself re-read when older than the refresh
    /// interval, by one heartbeat while the others use the previous set).
    async fn drill_tasks_of(&self, host: &str) -> Result<Vec<DrillTask>, Failure> {
        let now = self.clock.now();
        let (refresh, listed) = {
            let mut known = self.drill_hosts.lock().unwrap_or_else(|p| p.into_inner());
            // A clock that went back also refreshes.
            let stale = known.read_at.is_none_or(|at| {
                now < at || now.duration_since(at).unsigned_abs() >= self.drill_hosts_refresh
            });
            if stale {
                // Claimed now, so that concurrent heartbeats do not all refresh at once.
                known.read_at = Some(now);
            }
            (stale, known.hosts.contains(host))
        };
        let listed = if refresh {
            match self.store.hosts_with_open_drill_tasks().await {
                Ok(hosts) => {
                    let listed = hosts.iter().any(|h| h == host);
                    let mut known = self.drill_hosts.lock().unwrap_or_else(|p| p.into_inner());
                    known.hosts = hosts.into_iter().collect();
                    listed
                }
                Err(e) => {
                    // Try again at the next heartbeat; this one is answered as the store fails.
                    let mut known = self.drill_hosts.lock().unwrap_or_else(|p| p.into_inner());
                    known.read_at = None;
                    return Err(Failure::store(e));
                }
            }
        } else {
            listed
        };
        if !listed {
            return Ok(Vec::new());
        }
        self.store
            .open_drill_tasks(host)
            .await
            .map_err(Failure::store)
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let entry = NewAuditEntry {
            at: self.clock.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!("cannot append to the audit log ({e}): {action} by {actor}");
        }
    }

    /// The agent a request's bearer token belongs to; 401 (audited) otherwise.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Agent, Failure> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Secret::new(t.trim().to_string()));
        let Some(token) = token else {
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "no agent token: send Authorization: Bearer <token>",
            ));
        };
        let hash = TokenHash::of(&token);
        match self
            .store
            .agent_by_token(&hash)
            .await
            .map_err(Failure::store)?
        {
            Some(agent) if !agent.is_revoked() => Ok(agent),
            found => {
                let why = if found.is_some() {
                    "revoked"
                } else {
                    "unknown"
                };
                // The hash prefix identifies the attempt without being usable as a token.
                self.audit(
                    "anonymous",
                    "agent.auth-refused",
                    &format!("token:{}", &hash.as_str()[..12]),
                    serde_json::json!({ "reason": why }),
                )
                .await;
                Err(Failure::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    format!("the agent token is {why}; enrol the agent again"),
                ))
            }
        }
    }
}

/// Whether a string anywhere in `value` holds a NUL character (which PostgreSQL cannot store).
fn holds_nul(value: &impl serde::Serialize) -> bool {
    serde_json::to_string(value).map_or(true, |json| json.contains("\\u0000"))
}

async fn enrol(State(api): State<AgentApi>, Body(req): Body<EnrolRequest>) -> Response {
    if holds_nul(&req) {
        return Failure::bad_request("a string in the request holds a NUL character")
            .into_response();
    }
    let hash = TokenHash::of(req.enrolment_token.secret());
    let token = Secret::new(
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string(),
    );
    let agent = NewAgent {
        id: uuid::Uuid::new_v4(),
        token_hash: TokenHash::of(&token),
        version: req.version.clone(),
    };
    match api.store.enrol_agent(&hash, &agent, api.clock.now()).await {
        Ok(Enrolment::Enrolled(a)) => {
            api.audit(
                &format!("agent:{}", a.id),
                "agent.enrolled",
                &format!("host:{}", a.host),
                serde_json::json!({ "site": a.site, "version": a.version }),
            )
            .await;
            if a.host != req.host {
                tracing::warn!(
                    "agent enrolled for host {} says it is {}; it gets {}'s assignment",
                    a.host,
                    req.host,
                    a.host
                );
            }
            Json(EnrolResponse {
                agent_id: a.id,
                agent_token: Token::new(token.expose()),
            })
            .into_response()
        }
        Ok(Enrolment::Refused(why)) => {
            let (status, code, message) = match why {
                EnrolmentRefusal::AlreadyUsed => (
                    StatusCode::CONFLICT,
                    ErrorCode::Conflict,
                    "this enrolment token was used already; ask for a new one",
                ),
                EnrolmentRefusal::Expired => (
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "this enrolment token has expired; ask for a new one",
                ),
                EnrolmentRefusal::Unknown => (
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "unknown enrolment token",
                ),
            };
            api.audit(
                "anonymous",
                "agent.enrol-refused",
                &format!("host:{}", req.host),
                serde_json::json!({ "reason": format!("{why:?}") }),
            )
            .await;
            Failure::new(status, code, message).into_response()
        }
        Err(e) => Failure::store(e).into_response(),
    }
}

async fn heartbeat(
    State(api): State<AgentApi>,
    headers: HeaderMap,
    Body(beat): Body<Heartbeat>,
) -> Response {
    let agent = match api.authenticate(&headers).await {
        Ok(a) => a,
        Err(f) => return f.into_response(),
    };
    if holds_nul(&beat) {
        return Failure::bad_request("a string in the heartbeat holds a NUL character")
            .into_response();
    }
    let now = api.clock.now();
    let offset = now.duration_since(beat.sent_at);
    if let Err(e) = api
        .store
        .record_heartbeat(agent.id, now, offset, &beat)
        .await
    {
        return Failure::store(e).into_response();
    }
    let digest = match api.assignment_of(&agent.host) {
        Ok(a) => a.map(|a| a.digest.clone()),
        Err(f) => return f.into_response(),
    };
    // Drill tasks are offered in every answer until reported: an answer lost loses nothing.
    // Read before the commands are taken, so that a failure here loses no command either.
    let drill_tasks = match api.drill_tasks_of(&agent.host).await {
        Ok(tasks) => tasks,
        Err(f) => return f.into_response(),
    };
    // Commands queued for this host (`POST /api/v1/systems/{id}/backup-now`) are handed out
    // once: the store deletes them as it reads them, so a lost answer loses them (api.rs).
    let commands = match api.store.take_commands(&agent.host).await {
        Ok(pending) => pending.into_iter().map(|c| c.command).collect(),
        Err(e) => return Failure::store(e).into_response(),
    };
    Json(HeartbeatResponse {
        drill_tasks,
        server_time: now,
        assignment_digest: digest,
        commands,
    })
    .into_response()
}

async fn assignment(State(api): State<AgentApi>, headers: HeaderMap) -> Response {
    let agent = match api.authenticate(&headers).await {
        Ok(a) => a,
        Err(f) => return f.into_response(),
    };
    match api.assignment_of(&agent.host) {
        Ok(Some(a)) => {
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| etag_matches(v, &a.digest));
            if matches {
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag(&a.digest))])
                    .into_response();
            }
            ([(header::ETAG, etag(&a.digest))], Json(a.as_ref())).into_response()
        }
        Ok(None) => Failure::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no system of the policy is on host {}", agent.host),
        )
        .into_response(),
        Err(f) => f.into_response(),
    }
}

async fn runs(
    State(api): State<AgentApi>,
    headers: HeaderMap,
    Body(batch): Body<RunBatch>,
) -> Response {
    let agent = match api.authenticate(&headers).await {
        Ok(a) => a,
        Err(f) => return f.into_response(),
    };
    if batch.records.len() > MAX_RUN_BATCH {
        return Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!("at most {MAX_RUN_BATCH} records per batch"),
        )
        .into_response();
    }
    let policy = api.policy();
    let now = api.clock.now();
    let mut answer = RunBatchResponse {
        accepted: Vec::new(),
        duplicates: Vec::new(),
        rejected: Vec::new(),
    };
    // First the checks that need no database; then every valid record in one transaction.
    let mut valid = Vec::with_capacity(batch.records.len());
    for env in &batch.records {
        if env.key != env.record.run_id || env.key.is_empty() {
            answer.rejected.push(Rejection {
                key: env.key.clone(),
                code: RejectCode::Malformed,
                reason: "the key is not the record's run_id".into(),
            });
            continue;
        }
        // The store keeps sequence numbers as signed 64-bit integers; a larger one can never
        // be stored, and answering it `retry` would block the agent's queue forever.
        if i64::try_from(env.seq).is_err() {
            answer.rejected.push(Rejection {
                key: env.key.clone(),
                code: RejectCode::Malformed,
                reason: format!("the sequence number {} is above 2^63 - 1", env.seq),
            });
            continue;
        }
        // PostgreSQL cannot hold a NUL character in text or JSONB; refuse it on every backend
        // alike, or the record would be answered `retry` forever.
        if holds_nul(&env.record) {
            answer.rejected.push(Rejection {
                key: env.key.clone(),
                code: RejectCode::Malformed,
                reason: "a string in the record holds a NUL character".into(),
            });
            continue;
        }
        // An agent reports its own host's systems only.
        let foreign = env.record.host != agent.host
            || env
                .record
                .system
                .as_deref()
                .and_then(|s| policy.system(s))
                .is_some_and(|s| s.host != agent.host);
        if foreign {
            api.audit(
                &format!("agent:{}", agent.id),
                "run.refused-foreign",
                &format!("run:{}", env.key),
                serde_json::json!({ "host": env.record.host, "system": env.record.system }),
            )
            .await;
            answer.rejected.push(Rejection {
                key: env.key.clone(),
                code: RejectCode::Forbidden,
                reason: format!("this agent reports host {} only", agent.host),
            });
            continue;
        }
        valid.push(env);
    }
    let rows: Vec<(u64, &crate::run::RunRecord)> =
        valid.iter().map(|env| (env.seq, &env.record)).collect();
    match api.store.insert_runs(agent.id, &rows, now).await {
        Ok(results) => {
            for (env, result) in valid.iter().zip(results) {
                match result {
                    RunInsert::Inserted => answer.accepted.push(env.key.clone()),
                    RunInsert::Duplicate => {
                        answer.accepted.push(env.key.clone());
                        answer.duplicates.push(env.key.clone());
                    }
                    RunInsert::Conflict => answer.rejected.push(Rejection {
                        key: env.key.clone(),
                        code: RejectCode::Malformed,
                        reason: "a different record is stored under this run id".into(),
                    }),
                }
            }
        }
        Err(e) => {
            // Nothing of the batch was stored: every valid record is retried, in order.
            let reason = if e.is_unavailable() {
                "the coordinator's database is unavailable; retry later".to_string()
            } else {
                tracing::error!("cannot store run records: {e}");
                "the coordinator cannot store the records now; retry later".to_string()
            };
            for env in &valid {
                answer.rejected.push(Rejection {
                    key: env.key.clone(),
                    code: RejectCode::Retry,
                    reason: reason.clone(),
                });
            }
        }
    }
    let duplicates = answer.duplicates.len() as u64;
    api.metrics.runs_received(
        (answer.accepted.len() as u64).saturating_sub(duplicates),
        duplicates,
        answer.rejected.len() as u64,
    );
    Json(answer).into_response()
}

async fn drill_reports(
    State(api): State<AgentApi>,
    headers: HeaderMap,
    Body(batch): Body<DrillReportBatch>,
) -> Response {
    let agent = match api.authenticate(&headers).await {
        Ok(a) => a,
        Err(f) => return f.into_response(),
    };
    if batch.reports.len() > MAX_DRILL_REPORT_BATCH {
        return Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!("at most {MAX_DRILL_REPORT_BATCH} drill reports per batch"),
        )
        .into_response();
    }
    let actor = format!("agent:{}", agent.id);
    let now = api.clock.now();
    let mut answer = DrillReportResponse {
        accepted: Vec::new(),
        rejected: Vec::new(),
    };
    // Reports are stored one by one, in order; once the store fails, this report and every
    // later one are answered `retry` (the agent resends them), as for run records.
    let mut unavailable: Option<String> = None;
    for report in &batch.reports {
        let key = report.task_id.clone();
        if let Some(reason) = &unavailable {
            answer.rejected.push(Rejection {
                key,
                code: RejectCode::Retry,
                reason: reason.clone(),
            });
            continue;
        }
        // PostgreSQL cannot hold a NUL character; refuse it on every backend alike.
        if holds_nul(report) {
            answer.rejected.push(Rejection {
                key,
                code: RejectCode::Malformed,
                reason: "a string in the report holds a NUL character".into(),
            });
            continue;
        }
        let refused = if report.host != agent.host {
            Some(format!("this agent reports for host {} only", agent.host))
        } else {
            match api
                .store
                .store_drill_report(&agent.host, &actor, report, now)
                .await
            {
                // A withdrawn task (timed out, or its drill ended) has nothing left to do with
                // its report: the agent may forget it.
                Ok(ReportInsert::Stored | ReportInsert::Duplicate | ReportInsert::Withdrawn) => {
                    answer.accepted.push(key);
                    continue;
                }
                Ok(ReportInsert::NotYours) => Some(format!(
                    "drill task {} is not for host {}",
                    report.task_id, agent.host
                )),
                Ok(ReportInsert::UnknownTask) => Some(format!(
                    "no drill task {} of drill {}",
                    report.task_id, report.drill_id
                )),
                Err(e) => {
                    let reason = if e.is_unavailable() {
                        "the coordinator's database is unavailable; retry later".to_string()
                    } else {
                        tracing::error!("cannot store a drill report: {e}");
                        "the coordinator cannot store the report now; retry later".to_string()
                    };
                    answer.rejected.push(Rejection {
                        key,
                        code: RejectCode::Retry,
                        reason: reason.clone(),
                    });
                    unavailable = Some(reason);
                    continue;
                }
            }
        };
        if let Some(reason) = refused {
            api.audit(
                &actor,
                "drill.report-refused",
                &format!("drill-task:{}", report.task_id),
                serde_json::json!({ "host": report.host, "drill": report.drill_id, "reason": reason }),
            )
            .await;
            answer.rejected.push(Rejection {
                key,
                code: RejectCode::Forbidden,
                reason,
            });
        }
    }
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body as HttpBody;
    use axum::http::{Method, Request};
    use serde_json::Value;
    use tower::ServiceExt;
    use uuid::Uuid;

    use super::*;
    use crate::api::{DrillReport, TaskAction};
    use crate::coordinator::store::{
        DrillStatus, EnrolmentToken, NewDrill, NewDrillTask, REPORT_INPUT,
    };
    use crate::run::Outcome;

    const NOW: &str = "2026-03-01T12:00:00Z";

    /// The coordinator's clock, moved by the test.
    struct Settable(Mutex<Timestamp>);
    impl Clock for Settable {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    /// The agent endpoints over a real SQLite store, with an agent enrolled on each of
    /// `standby-01` (token `agent-1`) and `standby-02` (token `agent-2`), and one drill.
    struct App {
        _dir: tempfile::TempDir,
        url: String,
        clock: Arc<Settable>,
        store: Store,
        router: axum::Router,
        drill: Uuid,
    }

    async fn app(refresh: Duration) -> App {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in crate::sim::policy::files(1, 1) {
            let path = dir.path().join("policy").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let policy = crate::policy::load_dir(&dir.path().join("policy")).unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let now: Timestamp = NOW.parse().unwrap();
        for (host, token) in [("standby-01", "agent-1"), ("standby-02", "agent-2")] {
            let enrol = Secret::new(format!("enrol-{host}"));
            store
                .create_enrolment_token(&EnrolmentToken {
                    hash: TokenHash::of(&enrol),
                    host: host.into(),
                    site: "standby".into(),
                    created_by: "test".into(),
                    created_at: now,
                    expires_at: now + jiff::SignedDuration::from_hours(1),
                    used_at: None,
                    used_by: None,
                })
                .await
                .unwrap();
            let agent = NewAgent {
                id: Uuid::new_v4(),
                token_hash: TokenHash::of(&Secret::new(token.to_string())),
                version: "test".into(),
            };
            let enrolled = store
                .enrol_agent(&TokenHash::of(&enrol), &agent, now)
                .await
                .unwrap();
            assert!(matches!(enrolled, Enrolment::Enrolled(_)), "{enrolled:?}");
        }
        let drill = Uuid::new_v4();
        store
            .insert_drill(&NewDrill {
                id: drill,
                plan: "linfen-site-loss".parse().unwrap(),
                status: DrillStatus::Running,
                created_by: "user:alice".into(),
                created_at: now,
                scheduled_for: None,
                started_at: Some(now),
                state: serde_json::json!({}),
            })
            .await
            .unwrap();
        let clock = Arc::new(Settable(Mutex::new(now)));
        let router = AgentApi::new(
            store.clone(),
            Arc::new(RwLock::new(Arc::new(policy))),
            clock.clone(),
        )
        .with_drill_hosts_refresh(refresh)
        .router();
        App {
            _dir: dir,
            url,
            clock,
            store,
            router,
            drill,
        }
    }

    fn task(drill: Uuid, task_id: &str) -> DrillTask {
        DrillTask {
            task_id: task_id.into(),
            drill_id: drill,
            step: "health".into(),
            system: None,
            timeout_seconds: 60,
            action: TaskAction::Command {
                argv: vec!["/bin/true".into()],
                env: Default::default(),
            },
        }
    }

    fn report(drill: Uuid, task_id: &str, host: &str) -> DrillReport {
        DrillReport {
            task_id: task_id.into(),
            drill_id: drill,
            host: host.into(),
            started_at: NOW.parse().unwrap(),
            finished_at: NOW.parse().unwrap(),
            outcome: Outcome::Success,
            error: None,
            probe: None,
            restore: None,
            command: None,
        }
    }

    impl App {
        async fn put(&self, tasks: &[(&str, &str)]) {
            let tasks: Vec<NewDrillTask> = tasks
                .iter()
                .map(|(host, id)| NewDrillTask {
                    host: (*host).into(),
                    task: task(self.drill, id),
                    created_at: NOW.parse().unwrap(),
                })
                .collect();
            self.store.put_drill_tasks(&tasks).await.unwrap();
        }

        async fn post(
            &self,
            path: &str,
            token: &str,
            body: &impl serde::Serialize,
        ) -> (StatusCode, Value) {
            let request = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(HttpBody::from(serde_json::to_vec(body).unwrap()))
                .unwrap();
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        /// The drill task ids in a heartbeat answer to the agent with `token` of `host`.
        async fn heartbeat(&self, host: &str, token: &str) -> Vec<String> {
            let beat = Heartbeat {
                host: host.into(),
                version: "test".into(),
                sent_at: NOW.parse().unwrap(),
                spool: Default::default(),
                assignment_digest: None,
                systems: Vec::new(),
                drill_tasks_running: vec!["d.running".into()],
            };
            let (status, body) = self.post(HEARTBEAT_PATH, token, &beat).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let answer: HeartbeatResponse = serde_json::from_value(body).unwrap();
            answer.drill_tasks.into_iter().map(|t| t.task_id).collect()
        }

        async fn reports(&self, token: &str, reports: Vec<DrillReport>) -> (StatusCode, Value) {
            self.post(DRILL_REPORTS_PATH, token, &DrillReportBatch { reports })
                .await
        }
    }

    fn rejected(body: &Value) -> Vec<(String, String)> {
        let answer: DrillReportResponse = serde_json::from_value(body.clone()).unwrap();
        answer
            .rejected
            .into_iter()
            .map(|r| (r.key, r.code.as_str().to_string()))
            .collect()
    }

    fn accepted(body: &Value) -> Vec<String> {
        let answer: DrillReportResponse = serde_json::from_value(body.clone()).unwrap();
        answer.accepted
    }

    #[tokio::test]
    async fn heartbeats_carry_the_open_tasks_of_their_own_host_until_reported_or_withdrawn() {
        let app = app(Duration::ZERO).await;
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        app.put(&[
            ("standby-01", "d.1.fin"),
            ("standby-01", "d.1.hr"),
            ("standby-02", "d.1.crm"),
        ])
        .await;
        // Each agent gets its enrolled host's tasks, whatever host its heartbeat names; every
        // answer carries them again.
        for _ in 0..2 {
            assert_eq!(
                app.heartbeat("standby-01", "agent-1").await,
                ["d.1.fin", "d.1.hr"]
            );
        }
        assert_eq!(app.heartbeat("standby-01", "agent-2").await, ["d.1.crm"]);

        // Reported: gone; withdrawn: gone.
        let (status, body) = app
            .reports("agent-1", vec![report(app.drill, "d.1.fin", "standby-01")])
            .await;
        assert_eq!(
            (status, accepted(&body)),
            (StatusCode::OK, vec!["d.1.fin".to_string()])
        );
        assert_eq!(app.heartbeat("standby-01", "agent-1").await, ["d.1.hr"]);
        app.store
            .withdraw_drill_tasks(app.drill, NOW.parse().unwrap())
            .await
            .unwrap();
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        assert!(app.heartbeat("standby-02", "agent-2").await.is_empty());

        // The running tasks are kept with the heartbeat.
        let agent = app
            .store
            .agent_by_token(&TokenHash::of(&Secret::new("agent-1".to_string())))
            .await
            .unwrap()
            .unwrap();
        let stored = app.store.latest_heartbeat(agent.id).await.unwrap().unwrap();
        assert_eq!(stored.heartbeat.drill_tasks_running, ["d.running"]);
    }

    #[tokio::test]
    async fn the_set_of_hosts_with_tasks_is_reread_only_after_its_refresh_interval() {
        let app = app(Duration::from_secs(1)).await;
        let later = |seconds: i64| {
            *app.clock.0.lock().unwrap() += jiff::SignedDuration::from_secs(seconds);
        };
        // The first heartbeat reads the (empty) set; tasks put later are not seen until the set
        // is re-read: heartbeats of hosts without tasks cost no drill query meanwhile.
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        app.put(&[("standby-01", "d.1.fin")]).await;
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        later(1);
        assert_eq!(app.heartbeat("standby-01", "agent-1").await, ["d.1.fin"]);
        // A host in the set is asked every heartbeat: its report removes the task at once.
        app.put(&[("standby-02", "d.1.crm")]).await;
        let (_, body) = app
            .reports("agent-1", vec![report(app.drill, "d.1.fin", "standby-01")])
            .await;
        assert_eq!(accepted(&body), ["d.1.fin"]);
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        assert!(app.heartbeat("standby-02", "agent-2").await.is_empty());
        // A clock that went back refreshes too.
        later(-3600);
        assert_eq!(app.heartbeat("standby-02", "agent-2").await, ["d.1.crm"]);
    }

    #[tokio::test]
    async fn drill_reports_are_taken_from_the_tasks_own_host_only_and_once() {
        let app = app(Duration::ZERO).await;
        app.put(&[
            ("standby-01", "d.1.fin"),
            ("standby-02", "d.1.crm"),
            ("standby-01", "d.1.hr"),
        ])
        .await;
        let d = app.drill;

        // Another host's task, a report naming another host, an unknown task: forbidden, and
        // nothing stored; the agent's own task in the same batch is stored.
        let (status, body) = app
            .reports(
                "agent-1",
                vec![
                    report(d, "d.1.crm", "standby-01"),
                    report(d, "d.1.crm", "standby-02"),
                    report(d, "d.9.nope", "standby-01"),
                    report(d, "d.1.fin", "standby-01"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(accepted(&body), ["d.1.fin"]);
        let forbidden = |k: &str| (k.to_string(), "forbidden".to_string());
        assert_eq!(
            rejected(&body),
            [
                forbidden("d.1.crm"),
                forbidden("d.1.crm"),
                forbidden("d.9.nope")
            ]
        );
        assert_eq!(app.heartbeat("standby-02", "agent-2").await, ["d.1.crm"]);

        // A duplicate is accepted again and stored once.
        let (_, body) = app
            .reports("agent-1", vec![report(d, "d.1.fin", "standby-01")])
            .await;
        assert_eq!(
            (accepted(&body), rejected(&body)),
            (vec!["d.1.fin".to_string()], vec![])
        );
        let inputs = app.store.drill_inputs_after(None, 0, 100).await.unwrap();
        assert_eq!(inputs.len(), 1, "{inputs:?}");
        assert_eq!(inputs[0].kind, REPORT_INPUT);
        assert!(inputs[0].actor.starts_with("agent:"), "{}", inputs[0].actor);

        // A NUL character is refused as malformed; the rest of the batch goes on.
        let mut nul = report(d, "d.1.hr", "standby-01");
        nul.error = Some(crate::run::RunError {
            kind: "command".into(),
            message: "bad\0byte".into(),
        });
        let (_, body) = app.reports("agent-1", vec![nul]).await;
        assert_eq!(
            rejected(&body),
            [("d.1.hr".to_string(), "malformed".to_string())]
        );
        assert_eq!(app.heartbeat("standby-01", "agent-1").await, ["d.1.hr"]);

        // More than the batch limit: 413; no token: 401.
        let many = (0..=MAX_DRILL_REPORT_BATCH)
            .map(|i| report(d, &format!("d.x.{i}"), "standby-01"))
            .collect();
        let (status, body) = app.reports("agent-1", many).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        let (status, _) = app.reports("no-such-token", Vec::new()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // The store failing after authentication (a table gone, injected): this report and
        // every later one of the batch are answered `retry`, and nothing half-stored remains.
        let raw = |sql: &'static str| {
            let url = app.url.clone();
            async move {
                use sqlx::{Connection, Executor};
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                c.execute(sql).await.unwrap();
            }
        };
        raw("ALTER TABLE drill_inputs RENAME TO drill_inputs_away").await;
        let (status, body) = app
            .reports(
                "agent-1",
                vec![
                    report(d, "d.1.fin", "standby-01"),
                    report(d, "d.1.hr", "standby-01"),
                    report(d, "d.1.crm", "standby-01"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let retry = |k: &str| (k.to_string(), "retry".to_string());
        assert_eq!(accepted(&body), ["d.1.fin"], "a duplicate needs no write");
        assert_eq!(rejected(&body), [retry("d.1.hr"), retry("d.1.crm")]);
        assert_eq!(app.heartbeat("standby-01", "agent-1").await, ["d.1.hr"]);
        raw("ALTER TABLE drill_inputs_away RENAME TO drill_inputs").await;
        let (_, body) = app
            .reports("agent-1", vec![report(d, "d.1.hr", "standby-01")])
            .await;
        assert_eq!(accepted(&body), ["d.1.hr"]);
        assert!(app.heartbeat("standby-01", "agent-1").await.is_empty());
        assert_eq!(
            app.store
                .drill_inputs_after(None, 0, 100)
                .await
                .unwrap()
                .len(),
            2
        );
    }
}
