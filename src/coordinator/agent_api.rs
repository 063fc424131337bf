//! The agent endpoints of the coordinator's HTTP API (`/api/v1/agents/…`, wire types in
//! [`crate::api`]): enrolment with a one-time token, heartbeats, the host's assignment, and
//! idempotent delivery of run records.
//!
//! Every call but enrolment carries the agent's own token (`Authorization: Bearer`); it is
//! looked up by its hash, and a wrong or revoked token is a 401 with an audit entry. An agent
//! sees only its own host's assignment and may report only its own host's systems. A database
//! that is down is a 503: the agent keeps its records and retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::auth::{Body, Failure};
use super::metrics::Metrics;
use super::store::{
    Agent, Enrolment, EnrolmentRefusal, NewAgent, NewAuditEntry, RunInsert, Store, TokenHash,
};
use crate::api::{
    ASSIGNMENT_PATH, Assignment, AssignmentFile, ENROL_PATH, EnrolRequest, EnrolResponse,
    ErrorCode, HEARTBEAT_PATH, Heartbeat, HeartbeatResponse, MAX_RUN_BATCH, PolicyFileName,
    RUNS_PATH, RejectCode, Rejection, RunBatch, RunBatchResponse, Token, etag, etag_matches,
};
use crate::clock::Clock;
use crate::policy::Policy;
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
    assignments: Arc<Mutex<HashMap<String, CachedAssignment>>>,
}

/// A host's assignment and the policy digest it was made from.
type CachedAssignment = (String, Option<Assignment>);

/// The largest request body accepted (a batch of 100 records is far below it).
const MAX_BODY: usize = 8 << 20;

impl AgentApi {
    pub fn new(store: Store, policy: Arc<RwLock<Arc<Policy>>>, clock: Arc<dyn Clock>) -> Self {
        AgentApi {
            store,
            policy,
            clock,
            metrics: Metrics::new(),
            assignments: Arc::new(Mutex::new(HashMap::new())),
        }
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
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }

    fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The host's assignment (cached per policy digest); `None` when nothing is assigned.
    fn assignment_of(&self, host: &str) -> Result<Option<Assignment>, Failure> {
        let policy = self.policy();
        let mut cache = self.assignments.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((digest, a)) = cache.get(host)
            && *digest == policy.digest
        {
            return Ok(a.clone());
        }
        let assignment = match policy.for_host(host) {
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
                Some(Assignment::new(self.clock.now(), files))
            }
        };
        cache.insert(
            host.to_string(),
            (policy.digest.clone(), assignment.clone()),
        );
        Ok(assignment)
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
        Ok(a) => a.map(|a| a.digest),
        Err(f) => return f.into_response(),
    };
    // Commands queued for this host (`POST /api/v1/systems/{id}/backup-now`) are handed out
    // once: the store deletes them as it reads them, so a lost answer loses them (api.rs).
    let commands = match api.store.take_commands(&agent.host).await {
        Ok(pending) => pending.into_iter().map(|c| c.command).collect(),
        Err(e) => return Failure::store(e).into_response(),
    };
    Json(HeartbeatResponse {
        drill_tasks: Vec::new(),
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
            ([(header::ETAG, etag(&a.digest))], Json(a)).into_response()
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
