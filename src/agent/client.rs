//! The agent's HTTP client for the coordinator ([`crate::api`] v1), and [`deliver`], which moves
//! spooled run records to the coordinator in order.
//!
//! Connections are outbound only. TLS is rustls, trusting either the platform's roots or, for a
//! private PKI, only the CA certificates of a configured PEM file. Plain `http://` is refused
//! unless the coordinator is on this machine or `allow_http` is set. The agent token is a
//! [`Secret`]: it goes into the `Authorization` header and nowhere else (not into `Debug`, logs
//! or errors; error text from the coordinator is scrubbed of it too). Redirects are not
//! followed, so the token never travels to another host.
//!
//! This module owns no loop and no clock: the agent's runtime decides when to call.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderValue, IF_NONE_MATCH};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::{Host, Url};

use super::spool::{Spool, SpoolError, SpoolStats, SpooledRecord};
use crate::api::{
    ASSIGNMENT_PATH, ApiError, Assignment, DRILL_REPORTS_PATH, DrillReportBatch,
    DrillReportResponse, ENROL_PATH, EnrolRequest, EnrolResponse, HEARTBEAT_PATH, Heartbeat,
    HeartbeatResponse, MAX_RUN_BATCH, RUNS_PATH, RunBatch, RunBatchResponse, RunEnvelope,
    SpoolStatus, etag,
};
use crate::secret::Secret;

/// Largest answer body read from the coordinator (an assignment is the largest).
const MAX_BODY: usize = 16 << 20;
/// Longest piece of a non-JSON error body quoted in an error.
const MAX_QUOTE: usize = 300;

/// Where and how to reach the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `https://coordinator.example:8443` (a path prefix is kept: `https://hq/lifeboat`).
    pub base_url: Url,
    /// PEM file of the CA certificate(s) of a private PKI. When set, only these are trusted.
    pub ca_file: Option<PathBuf>,
    /// Limit for a whole request, connect included.
    pub timeout: Duration,
    /// Allow plain `http://` to another host (a lab; never across a branch network).
    pub allow_http: bool,
}

impl ClientConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// Defaults: platform roots, [`Self::DEFAULT_TIMEOUT`], `https://` required off this machine.
    pub fn new(base_url: Url) -> Self {
        ClientConfig {
            base_url,
            ca_file: None,
            timeout: Self::DEFAULT_TIMEOUT,
            allow_http: false,
        }
    }
}

/// Why a client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    #[error("coordinator URL {0} must start with https:// (or http:// for a local or lab setup)")]
    Scheme(String),
    #[error("coordinator URL {0} has no host")]
    NoHost(String),
    #[error(
        "the coordinator URL contains a user name or password: inline secrets are not allowed; \
         the agent authenticates with its token"
    )]
    Credentials,
    #[error(
        "coordinator URL {0} has a query or fragment; give only scheme, host, port and path prefix"
    )]
    QueryOrFragment(String),
    #[error(
        "refusing plain http:// to {host}: the agent token and run records would cross the \
         network unencrypted; use https:// (with a CA file for a private PKI), or allow http \
         explicitly for a lab"
    )]
    InsecureHttp { host: String },
    #[error("CA certificate file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Build(String),
}

/// Why a call to the coordinator failed. Never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "coordinator {url} is unreachable: {reason}; records stay spooled and are sent when it \
         answers"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the coordinator refused this agent's credentials (HTTP {status}): {reason}; enrol the \
         agent again if its token was revoked"
    )]
    Unauthorized { status: u16, reason: String },
    #[error("the coordinator rejected the request (HTTP {status}): {reason}")]
    Rejected { status: u16, reason: String },
    #[error("the coordinator failed (HTTP {status}): {reason}; the call is retried later")]
    Server { status: u16, reason: String },
    #[error("unexpected answer from the coordinator: {0}")]
    Protocol(String),
    #[error("this agent has no token yet: enrol it with the coordinator first")]
    NotEnrolled,
}

impl ClientError {
    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Server { .. } => true,
            ClientError::Rejected { status, .. } => matches!(status, 408 | 429),
            _ => false,
        }
    }
}

/// A client of one coordinator. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct CoordinatorClient {
    http: reqwest::Client,
    base: Url,
    /// The agent token; `None` before enrolment. `Debug` shows `<redacted>`.
    token: Option<Secret>,
}

impl CoordinatorClient {
    /// Checks the configuration and builds the client; does not connect.
    pub fn new(config: &ClientConfig, token: Option<Secret>) -> Result<Self, ClientConfigError> {
        let url = &config.base_url;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ClientConfigError::Credentials);
        }
        let shown = url.as_str().to_string();
        let host = url
            .host()
            .ok_or_else(|| ClientConfigError::NoHost(shown.clone()))?;
        match url.scheme() {
            "https" => {}
            "http" if config.allow_http || is_loopback(&host) => {}
            "http" => {
                return Err(ClientConfigError::InsecureHttp {
                    host: host.to_string(),
                });
            }
            _ => return Err(ClientConfigError::Scheme(shown)),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ClientConfigError::QueryOrFragment(shown));
        }

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lifeboat-agent/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let ca_error = |reason: String| ClientConfigError::CaFile {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(format!("cannot read it: {e}")))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ca_error(
                    "holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ClientConfigError::Build(error_chain(&e)))?;
        let mut base = url.clone();
        let prefix = base.path().trim_end_matches('/').to_string();
        base.set_path(&prefix);
        Ok(CoordinatorClient { http, base, token })
    }

    /// Sets the agent token (after enrolment).
    pub fn set_token(&mut self, token: Secret) {
        self.token = Some(token);
    }

    /// The coordinator's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Trades a one-time enrolment token for an agent id and token. Does not keep the token:
    /// the caller stores it durably first, then calls [`Self::set_token`].
    pub async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, ClientError> {
        let req = self.http.post(self.url(ENROL_PATH)).json(request);
        let (_, body) = self.exchange(req, false).await?;
        decode(&body, "enrolment answer")
    }

    /// Sends a heartbeat; the answer carries the server time, assignment digest and commands.
    pub async fn heartbeat(&self, beat: &Heartbeat) -> Result<HeartbeatResponse, ClientError> {
        self.post(HEARTBEAT_PATH, beat, "heartbeat answer").await
    }

    /// Fetches the host's assignment. `None` when it still has `current_digest` (304). The
    /// answer's digest is checked against its files before it is returned.
    pub async fn assignment(
        &self,
        current_digest: Option<&str>,
    ) -> Result<Option<Assignment>, ClientError> {
        let mut req = self.authorised(self.http.get(self.url(ASSIGNMENT_PATH)))?;
        if let Some(digest) = current_digest {
            let value = HeaderValue::from_str(&etag(digest)).map_err(|_| {
                ClientError::Protocol(format!(
                    "assignment digest {digest:?} is not a header value"
                ))
            })?;
            req = req.header(IF_NONE_MATCH, value);
        }
        let (status, body) = self.exchange(req, true).await?;
        if status == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        let assignment: Assignment = decode(&body, "assignment")?;
        assignment
            .verify()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Some(assignment))
    }

    /// Submits a batch of run records (at most [`MAX_RUN_BATCH`]).
    pub async fn submit(&self, batch: &RunBatch) -> Result<RunBatchResponse, ClientError> {
        self.post(RUNS_PATH, batch, "answer to a batch of run records")
            .await
    }

    /// Submits the reports of finished drill tasks (idempotent by `task_id`, so safe to send
    /// again when an answer was lost).
    pub async fn drill_reports(
        &self,
        batch: &DrillReportBatch,
    ) -> Result<DrillReportResponse, ClientError> {
        self.post(
            DRILL_REPORTS_PATH,
            batch,
            "answer to a batch of drill reports",
        )
        .await
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}{path}", self.base.path().trim_end_matches('/')));
        url
    }

    fn authorised(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let token = self.token.as_ref().ok_or(ClientError::NotEnrolled)?;
        // bearer_auth marks the header sensitive, so reqwest and hyper do not log it either.
        Ok(req.bearer_auth(token.expose()))
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<R, ClientError> {
        let req = self.authorised(self.http.post(self.url(path)))?.json(body);
        let (_, body) = self.exchange(req, true).await?;
        decode(&body, what)
    }

    /// Sends a request and reads the answer. Success (2xx, 304) gives the status and body;
    /// everything else becomes the matching [`ClientError`].
    ///
    /// With `repeatable`, a request that failed on a pooled connection the coordinator had
    /// already closed (it restarted) is sent once more on a fresh connection. Only for calls
    /// that are safe to repeat: heartbeats, assignment fetches, run batches and drill reports
    /// (idempotent by key), never enrolment (its token is single-use).
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        repeatable: bool,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let again = if repeatable { req.try_clone() } else { None };
        let sent = match (req.send().await, again) {
            (Err(e), Some(again)) if is_stale_connection(&e) => {
                tracing::debug!("coordinator closed a pooled connection; sending again");
                again.send().await
            }
            (sent, _) => sent,
        };
        let mut resp = sent.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ClientError::Protocol(format!(
                    "answer to {} is larger than {} MiB",
                    resp.url().path(),
                    MAX_BODY >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok((status, body));
        }
        let code = status.as_u16();
        let reason = self.reason(status, &body);
        Err(match code {
            401 | 403 => ClientError::Unauthorized {
                status: code,
                reason,
            },
            400..=499 => ClientError::Rejected {
                status: code,
                reason,
            },
            500..=599 => ClientError::Server {
                status: code,
                reason,
            },
            300..=399 => ClientError::Protocol(format!(
                "HTTP {code} redirect; the agent does not follow redirects: set the coordinator \
                 URL to where it redirects"
            )),
            _ => ClientError::Protocol(format!("unexpected HTTP status {code}")),
        })
    }

    /// What an error answer says: the [`ApiError`] message, or the start of the body.
    fn reason(&self, status: StatusCode, body: &[u8]) -> String {
        let text = match serde_json::from_slice::<ApiError>(body) {
            Ok(err) => err.message,
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    status
                        .canonical_reason()
                        .unwrap_or("no reason given")
                        .to_string()
                } else {
                    text.chars().take(MAX_QUOTE).collect()
                }
            }
        };
        self.scrub(text)
    }

    /// Removes the token from text that came from elsewhere (a coordinator echoing a header).
    fn scrub(&self, text: String) -> String {
        match &self.token {
            Some(token) if !token.expose().is_empty() && text.contains(token.expose()) => {
                text.replace(token.expose(), "<redacted>")
            }
            _ => text,
        }
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_decode() {
            return ClientError::Protocol(self.scrub(error_chain(&e)));
        }
        let reason = if e.is_timeout() {
            "no answer in time (timed out)".to_string()
        } else {
            error_chain(&e)
        };
        ClientError::Unreachable {
            url: self.base.to_string(),
            reason: self.scrub(reason),
        }
    }
}

/// Whether a request failed after it went out on an existing connection that turned out closed
/// (not a failure to connect, not a timeout).
fn is_stale_connection(e: &reqwest::Error) -> bool {
    e.is_request() && !e.is_connect() && !e.is_timeout()
}

/// Whether a URL host is this machine.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The causes of an error, innermost last, without the outer "error sending request for url".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = err.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn decode<R: DeserializeOwned>(body: &[u8], what: &str) -> Result<R, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Protocol(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// What one [`deliver`] call did.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    /// Records acknowledged by the coordinator and removed from the spool (duplicates included).
    pub sent: usize,
    /// Of `sent`, those the coordinator already had (an earlier acknowledgement was lost).
    pub duplicates: usize,
    /// Records the coordinator will never accept, moved to the spool's quarantine.
    pub quarantined: usize,
    /// Records still spooled afterwards.
    pub remaining: usize,
    /// Why delivery stopped before the spool was empty, if it did.
    pub error: Option<DeliveryError>,
}

/// Why [`deliver`] stopped early. The records concerned stay spooled.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("the coordinator deferred run record {key}: {reason}; it is sent again later")]
    Deferred { key: String, reason: String },
    #[error("the coordinator's answer does not mention run record {key}; it is sent again later")]
    Unanswered { key: String },
    #[error("spool task failed: {0}")]
    Task(String),
}

/// Sends spooled records to the coordinator, oldest first, in batches of `batch_size` (1 to
/// [`MAX_RUN_BATCH`]), until the spool is empty or something fails. Accepted records are removed
/// from the spool; records refused for good (malformed, forbidden) are quarantined with the
/// coordinator's reason so that they do not block the queue. It stops at the first failure —
/// the coordinator unreachable, an error answer, a record deferred or unanswered — so records
/// reach the coordinator in spool order; whatever was not acknowledged stays spooled.
pub async fn deliver(
    spool: &Spool,
    client: &CoordinatorClient,
    batch_size: usize,
) -> DeliveryReport {
    let batch_size = batch_size.clamp(1, MAX_RUN_BATCH);
    let mut report = DeliveryReport::default();
    if let Err(e) = deliver_batches(spool, client, batch_size, &mut report).await {
        // The coordinator being away is expected (and reported through the spool's depth);
        // anything else needs someone to look.
        match &e {
            DeliveryError::Client(c) if c.is_transient() => {
                tracing::info!("run record delivery paused: {e}")
            }
            _ => tracing::warn!("run record delivery stopped: {e}"),
        }
        report.error = Some(e);
    }
    report.remaining = spool.depth();
    report
}

async fn deliver_batches(
    spool: &Spool,
    client: &CoordinatorClient,
    batch_size: usize,
    report: &mut DeliveryReport,
) -> Result<(), DeliveryError> {
    loop {
        let batch = on_spool(spool, move |s| s.pending(batch_size)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        let request = RunBatch {
            records: batch.iter().map(envelope).collect(),
        };
        let answer = client.submit(&request).await?;

        // Go through the batch in order: acknowledge what was accepted, quarantine what never
        // will be, and note the first record left for later.
        let mut ack = Vec::new();
        let mut duplicates = 0;
        let mut set_aside = Vec::new();
        let mut stop = None;
        for record in &batch {
            let key = &record.key;
            if answer.accepted.contains(key) {
                duplicates += usize::from(answer.duplicates.contains(key));
                ack.push(key.clone());
            } else if let Some(rejection) = answer.rejected.iter().find(|r| &r.key == key) {
                if rejection.code.is_permanent() {
                    let reason = format!(
                        "refused by the coordinator ({}): {}",
                        rejection.code.as_str(),
                        rejection.reason
                    );
                    set_aside.push((key.clone(), reason));
                } else if stop.is_none() {
                    stop = Some(DeliveryError::Deferred {
                        key: key.clone(),
                        reason: rejection.reason.clone(),
                    });
                }
            } else if stop.is_none() {
                stop = Some(DeliveryError::Unanswered { key: key.clone() });
            }
        }

        let acked = on_spool(spool, move |s| s.ack(&ack)).await?;
        report.sent += acked;
        report.duplicates += duplicates.min(acked);
        let mut quarantined = 0;
        for (key, reason) in set_aside {
            let moved = on_spool(spool, move |s| s.quarantine(&key, &reason)).await?;
            quarantined += usize::from(moved.is_some());
        }
        report.quarantined += quarantined;
        if let Some(stop) = stop {
            return Err(stop);
        }
        if acked == 0 && quarantined == 0 {
            // Nothing left the spool: the next round would send the same batch again.
            return Err(DeliveryError::Client(ClientError::Protocol(
                "the coordinator acknowledged none of the records sent".into(),
            )));
        }
    }
}

impl From<SpoolStats> for SpoolStatus {
    fn from(stats: SpoolStats) -> Self {
        SpoolStatus {
            depth: stats.depth as u64,
            oldest: stats.oldest,
            dropped: stats.dropped,
            quarantined: stats.quarantined,
        }
    }
}

fn envelope(record: &SpooledRecord) -> RunEnvelope {
    RunEnvelope {
        key: record.key.clone(),
        seq: record.seq,
        system: record.system.clone(),
        record: record.record.clone(),
    }
}

/// Runs a spool operation (blocking file I/O) off the async threads.
async fn on_spool<T: Send + 'static>(
    spool: &Spool,
    op: impl FnOnce(&Spool) -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, DeliveryError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || op(&spool))
        .await
        .map_err(|e| DeliveryError::Task(e.to_string()))?
        .map_err(DeliveryError::Spool)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode as Status, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};

    use super::*;
    use crate::agent::spool::SpoolLimits;
    use crate::api::{
        AssignmentFile, Command, ErrorCode, RejectCode, Rejection, Token, etag_matches,
    };
    use crate::run::{Outcome, RunKind, RunRecord};

    const TOKEN: &str = "agent-token-7f3a9c";

    /// What the test coordinator does and saw.
    #[derive(Default)]
    struct Coordinator {
        /// Keys of records stored, in arrival order (duplicates not repeated).
        stored: Vec<String>,
        duplicates: usize,
        /// Number of `POST /runs` requests answered so far.
        run_requests: usize,
        /// Answer `POST /runs` requests from this one on (0-based) with a 500.
        fail_runs_from: Option<usize>,
        /// Always answer with this status.
        fail_all: Option<Status>,
        /// Keys rejected as malformed / deferred.
        malformed: HashSet<String>,
        deferred: HashSet<String>,
        /// Put the presented token into error messages (a careless server).
        echo_token: bool,
        assignment: Option<Assignment>,
        heartbeats: Vec<Heartbeat>,
    }

    type Shared = Arc<Mutex<Coordinator>>;

    fn error(status: Status, code: ErrorCode, message: String) -> Response {
        (status, Json(ApiError::new(code, message))).into_response()
    }

    /// Checks the bearer token; `Some` is the refusal to send.
    fn check(state: &Coordinator, headers: &HeaderMap) -> Option<Response> {
        if let Some(status) = state.fail_all {
            return Some(error(status, ErrorCode::Internal, "store is down".into()));
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if presented != format!("Bearer {TOKEN}") {
            let message = if state.echo_token {
                format!("unknown token in {presented:?}")
            } else {
                "unknown token".into()
            };
            return Some(error(
                Status::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                message,
            ));
        }
        None
    }

    async fn runs(
        State(shared): State<Shared>,
        headers: HeaderMap,
        Json(batch): Json<RunBatch>,
    ) -> Response {
        let mut state = shared.lock().unwrap();
        if let Some(resp) = check(&state, &headers) {
            return resp;
        }
        let n = state.run_requests;
        state.run_requests += 1;
        if state.fail_runs_from.is_some_and(|from| n >= from) {
            return error(
                Status::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "database is locked".into(),
            );
        }
        let mut answer = RunBatchResponse::default();
        let mut deferring = false;
        for env in batch.records {
            if deferring || state.deferred.contains(&env.key) {
                deferring = true;
                answer.rejected.push(Rejection {
                    key: env.key,
                    code: RejectCode::Retry,
                    reason: "store busy".into(),
                });
            } else if state.malformed.contains(&env.key) {
                answer.rejected.push(Rejection {
                    key: env.key,
                    code: RejectCode::Malformed,
                    reason: "finished_at before started_at".into(),
                });
            } else if state.stored.contains(&env.key) {
                state.duplicates += 1;
                answer.duplicates.push(env.key.clone());
                answer.accepted.push(env.key);
            } else {
                state.stored.push(env.key.clone());
                answer.accepted.push(env.key);
            }
        }
        Json(answer).into_response()
    }

    async fn heartbeat(
        State(shared): State<Shared>,
        headers: HeaderMap,
        Json(beat): Json<Heartbeat>,
    ) -> Response {
        let mut state = shared.lock().unwrap();
        if let Some(resp) = check(&state, &headers) {
            return resp;
        }
        state.heartbeats.push(beat);
        Json(HeartbeatResponse {
            drill_tasks: Vec::new(),
            server_time: "2026-03-01T02:00:00Z".parse().unwrap(),
            assignment_digest: state.assignment.as_ref().map(|a| a.digest.clone()),
            commands: vec![Command::BackupNow {
                system: "finance".parse().unwrap(),
            }],
        })
        .into_response()
    }

    async fn assignment(State(shared): State<Shared>, headers: HeaderMap) -> Response {
        let state = shared.lock().unwrap();
        if let Some(resp) = check(&state, &headers) {
            return resp;
        }
        let Some(assignment) = state.assignment.clone() else {
            return error(Status::NOT_FOUND, ErrorCode::NotFound, "nothing".into());
        };
        let inm = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        if inm.is_some_and(|v| etag_matches(v, &assignment.digest)) {
            return Status::NOT_MODIFIED.into_response();
        }
        Json(assignment).into_response()
    }

    async fn drill_reports(
        State(shared): State<Shared>,
        headers: HeaderMap,
        Json(batch): Json<DrillReportBatch>,
    ) -> Response {
        let state = shared.lock().unwrap();
        if let Some(resp) = check(&state, &headers) {
            return resp;
        }
        Json(DrillReportResponse {
            accepted: batch.reports.iter().map(|r| r.task_id.clone()).collect(),
            rejected: Vec::new(),
        })
        .into_response()
    }

    async fn enrol(Json(req): Json<EnrolRequest>) -> Response {
        if req.enrolment_token.secret().expose() != "enrol-once" {
            return error(Status::CONFLICT, ErrorCode::Conflict, "token used".into());
        }
        Json(EnrolResponse {
            agent_id: uuid::Uuid::nil(),
            agent_token: Token::new(TOKEN),
        })
        .into_response()
    }

    /// Starts the test coordinator on 127.0.0.1:0; returns its URL and state.
    async fn start(coordinator: Coordinator) -> (Url, Shared) {
        let shared = Arc::new(Mutex::new(coordinator));
        let app = axum::Router::new()
            .route(RUNS_PATH, post(runs))
            .route(HEARTBEAT_PATH, post(heartbeat))
            .route(ASSIGNMENT_PATH, get(assignment))
            .route(ENROL_PATH, post(enrol))
            .route(DRILL_REPORTS_PATH, post(drill_reports))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}").parse().unwrap(), shared)
    }

    fn client(url: &Url) -> CoordinatorClient {
        CoordinatorClient::new(&ClientConfig::new(url.clone()), Some(Secret::new(TOKEN))).unwrap()
    }

    fn record(id: &str, outcome: Outcome) -> RunRecord {
        let t = "2026-03-01T01:00:00Z".parse().unwrap();
        let mut r = RunRecord::start(RunKind::Backup, id.into(), "lf-srv-01".into(), t);
        r.system = Some("finance".into());
        r.outcome = outcome;
        r
    }

    fn spool_with(dir: &std::path::Path, ids: &[&str]) -> Spool {
        let spool = Spool::open(dir, SpoolLimits::default()).unwrap();
        for id in ids {
            spool.push(&record(id, Outcome::Failed)).unwrap();
        }
        spool
    }

    fn pending_keys(spool: &Spool) -> Vec<String> {
        spool
            .pending(1000)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect()
    }

    fn batch(ids: &[&str]) -> RunBatch {
        RunBatch {
            records: ids
                .iter()
                .enumerate()
                .map(|(i, id)| RunEnvelope {
                    key: id.to_string(),
                    seq: i as u64,
                    system: Some("finance".into()),
                    record: record(id, Outcome::Success),
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn drill_reports_are_sent_with_the_token_and_errors_are_typed() {
        let (url, shared) = start(Coordinator::default()).await;
        let t = "2026-03-01T01:00:00Z".parse().unwrap();
        let report = crate::api::DrillReport {
            task_id: "d.1.finance".into(),
            drill_id: uuid::Uuid::nil(),
            host: "standby-01".into(),
            started_at: t,
            finished_at: t,
            outcome: Outcome::Success,
            error: None,
            probe: None,
            restore: None,
            command: None,
        };
        let batch = DrillReportBatch {
            reports: vec![report],
        };
        let answer = client(&url).drill_reports(&batch).await.unwrap();
        assert_eq!(answer.accepted, ["d.1.finance"]);
        shared.lock().unwrap().fail_all = Some(Status::SERVICE_UNAVAILABLE);
        let err = client(&url).drill_reports(&batch).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Server { status: 503, .. }) && err.is_transient(),
            "{err}"
        );
        shared.lock().unwrap().fail_all = None;
        let wrong =
            CoordinatorClient::new(&ClientConfig::new(url), Some(Secret::new("x1"))).unwrap();
        let err = wrong.drill_reports(&batch).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Unauthorized { status: 401, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn submit_accepts_and_reports_duplicates() {
        let (url, shared) = start(Coordinator::default()).await;
        let c = client(&url);
        let first = c.submit(&batch(&["a", "b"])).await.unwrap();
        assert_eq!(first.accepted, ["a", "b"]);
        assert!(first.duplicates.is_empty());
        let again = c.submit(&batch(&["b", "c"])).await.unwrap();
        assert_eq!(again.accepted, ["b", "c"]);
        assert_eq!(again.duplicates, ["b"]);
        let state = shared.lock().unwrap();
        assert_eq!(state.stored, ["a", "b", "c"]);
        assert_eq!(state.duplicates, 1);
    }

    #[tokio::test]
    async fn error_statuses_map_to_typed_errors() {
        let (url, shared) = start(Coordinator::default()).await;
        let wrong = CoordinatorClient::new(
            &ClientConfig::new(url.clone()),
            Some(Secret::new("stolen-or-revoked")),
        )
        .unwrap();
        let err = wrong.submit(&batch(&["a"])).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Unauthorized { status: 401, reason } if reason == "unknown token"),
            "{err:?}"
        );
        assert!(!err.is_transient());

        shared.lock().unwrap().fail_all = Some(Status::INTERNAL_SERVER_ERROR);
        let err = client(&url).heartbeat(&beat()).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Server { status: 500, reason } if reason == "store is down"),
            "{err:?}"
        );
        assert!(err.is_transient());

        shared.lock().unwrap().fail_all = Some(Status::UNPROCESSABLE_ENTITY);
        let err = client(&url).submit(&batch(&["a"])).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Rejected { status: 422, .. }),
            "{err:?}"
        );

        let unenrolled = CoordinatorClient::new(&ClientConfig::new(url), None).unwrap();
        let err = unenrolled.assignment(None).await.unwrap_err();
        assert!(matches!(err, ClientError::NotEnrolled), "{err:?}");
    }

    #[tokio::test]
    async fn the_token_never_shows_in_errors_or_debug() {
        let (url, shared) = start(Coordinator {
            echo_token: true,
            ..Coordinator::default()
        })
        .await;
        let secret = "very-secret-token-value";
        let c = CoordinatorClient::new(&ClientConfig::new(url), Some(Secret::new(secret))).unwrap();
        let err = c.submit(&batch(&["a"])).await.unwrap_err();
        let shown = format!("{err} {err:?} {c:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shared.lock().unwrap().stored.is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url: Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let err = client(&url).submit(&batch(&["a"])).await.unwrap_err();
        match &err {
            ClientError::Unreachable { url: u, reason } => {
                assert_eq!(u, &url.to_string());
                assert!(reason.to_lowercase().contains("refused"), "{reason}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn a_silent_coordinator_times_out_as_unreachable() {
        // Accepts connections but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let mut config = ClientConfig::new(url);
        config.timeout = Duration::from_millis(300);
        let c = CoordinatorClient::new(&config, Some(Secret::new(TOKEN))).unwrap();
        let err = c.submit(&batch(&["a"])).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Unreachable { reason, .. } if reason.contains("timed out")),
            "{err:?}"
        );
        drop(listener);
    }

    /// Reads one HTTP/1.1 request (head and Content-Length body) from `conn`.
    fn read_request(conn: &mut std::net::TcpStream) {
        use std::io::Read;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).unwrap();
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        conn.read_exact(&mut vec![0u8; len]).unwrap();
    }

    #[tokio::test]
    async fn a_batch_is_sent_again_when_the_pooled_connection_was_closed() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url: Url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        let body = r#"{"accepted":["a"]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let server = std::thread::spawn(move || {
            // First connection: answer one request, keep it open until told, then close it
            // (a coordinator restarting while the agent holds an idle keep-alive connection).
            let (mut first, _) = listener.accept().unwrap();
            read_request(&mut first);
            first.write_all(answer.as_bytes()).unwrap();
            close_rx.recv().unwrap();
            drop(first);
            closed_tx.send(()).unwrap();
            // Second connection: the resent request.
            let (mut second, _) = listener.accept().unwrap();
            read_request(&mut second);
            second.write_all(answer.as_bytes()).unwrap();
        });
        let c = client(&url);
        assert_eq!(c.submit(&batch(&["a"])).await.unwrap().accepted, ["a"]);
        // Blocking this (single-threaded) runtime keeps the client from noticing the close
        // before it reuses the connection.
        close_tx.send(()).unwrap();
        closed_rx.recv().unwrap();
        let again = c.submit(&batch(&["a"])).await;
        assert_eq!(again.unwrap().accepted, ["a"]);
        server.join().unwrap();
    }

    #[tokio::test]
    async fn assignment_is_none_when_unchanged() {
        let files = vec![AssignmentFile {
            name: "systems.toml".parse().unwrap(),
            content: "[systems.finance]\n".into(),
        }];
        let current = Assignment::new("2026-03-01T00:00:00Z".parse().unwrap(), files);
        let (url, shared) = start(Coordinator {
            assignment: Some(current.clone()),
            ..Coordinator::default()
        })
        .await;
        let c = client(&url);
        assert_eq!(c.assignment(None).await.unwrap(), Some(current.clone()));
        assert_eq!(c.assignment(Some(&current.digest)).await.unwrap(), None);
        assert_eq!(
            c.assignment(Some("older")).await.unwrap(),
            Some(current.clone())
        );

        // A damaged answer (digest does not match the files) is refused.
        let mut damaged = current.clone();
        damaged.files[0].content.truncate(5);
        shared.lock().unwrap().assignment = Some(damaged);
        let err = c.assignment(Some("older")).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Protocol(m) if m.contains("digest")),
            "{err:?}"
        );
    }

    fn beat() -> Heartbeat {
        Heartbeat {
            drill_tasks_running: Vec::new(),
            host: "lf-srv-01".into(),
            version: "0.1.0".into(),
            sent_at: "2026-03-01T01:59:58Z".parse().unwrap(),
            spool: SpoolStatus {
                depth: 3,
                ..SpoolStatus::default()
            },
            assignment_digest: None,
            systems: vec![],
        }
    }

    #[tokio::test]
    async fn enrol_then_heartbeat() {
        let (url, shared) = start(Coordinator::default()).await;
        let mut c = CoordinatorClient::new(&ClientConfig::new(url), None).unwrap();
        let request = |token: &str| EnrolRequest {
            enrolment_token: Token::new(token),
            host: "lf-srv-01".into(),
            site: "linfen".parse().unwrap(),
            version: "0.1.0".into(),
        };
        let err = c.enrol(&request("wrong")).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Rejected { status: 409, .. }),
            "{err:?}"
        );
        let enrolled = c.enrol(&request("enrol-once")).await.unwrap();
        assert_eq!(enrolled.agent_token.secret().expose(), TOKEN);
        c.set_token(enrolled.agent_token.into_secret());

        let answer = c.heartbeat(&beat()).await.unwrap();
        assert_eq!(
            answer.commands,
            [Command::BackupNow {
                system: "finance".parse().unwrap()
            }]
        );
        assert_eq!(shared.lock().unwrap().heartbeats, [beat()]);
    }

    #[tokio::test]
    async fn deliver_drains_the_spool_in_order_and_counts_duplicates() {
        let (url, shared) = start(Coordinator::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let ids = ["r1", "r2", "r3", "r4", "r5", "r6", "r7"];
        let spool = spool_with(dir.path(), &ids);
        let report = deliver(&spool, &client(&url), 3).await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!(
            (report.sent, report.duplicates, report.remaining),
            (7, 0, 0)
        );
        assert_eq!(shared.lock().unwrap().stored, ids);
        assert_eq!(shared.lock().unwrap().run_requests, 3);

        // The acknowledgement of r2 and r3 was lost: they are spooled again and resent.
        spool.push(&record("r2", Outcome::Failed)).unwrap();
        spool.push(&record("r3", Outcome::Failed)).unwrap();
        spool.push(&record("r8", Outcome::Failed)).unwrap();
        let report = deliver(&spool, &client(&url), 100).await;
        assert_eq!(
            (report.sent, report.duplicates, report.remaining),
            (3, 2, 0)
        );
        let state = shared.lock().unwrap();
        assert_eq!(
            state.stored,
            ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]
        );
        assert_eq!(state.duplicates, 2);
    }

    #[tokio::test]
    async fn deliver_stops_at_the_first_failure_and_resumes_in_order() {
        let (url, shared) = start(Coordinator {
            fail_runs_from: Some(1),
            ..Coordinator::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let ids = ["r1", "r2", "r3", "r4", "r5"];
        let spool = spool_with(dir.path(), &ids);
        let report = deliver(&spool, &client(&url), 2).await;
        assert_eq!((report.sent, report.remaining), (2, 3));
        assert!(
            matches!(
                report.error,
                Some(DeliveryError::Client(ClientError::Server {
                    status: 500,
                    ..
                }))
            ),
            "{:?}",
            report.error
        );
        assert_eq!(
            shared.lock().unwrap().run_requests,
            2,
            "no batch after the failed one"
        );
        assert_eq!(pending_keys(&spool), ["r3", "r4", "r5"]);

        // Unreachable: nothing moves.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let down: Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let report = deliver(&spool, &client(&down), 2).await;
        assert!(matches!(
            report.error,
            Some(DeliveryError::Client(ClientError::Unreachable { .. }))
        ));
        assert_eq!((report.sent, report.remaining), (0, 3));

        shared.lock().unwrap().fail_runs_from = None;
        let report = deliver(&spool, &client(&url), 2).await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!((report.sent, report.remaining), (3, 0));
        assert_eq!(shared.lock().unwrap().stored, ids);
    }

    #[tokio::test]
    async fn deliver_quarantines_malformed_records_and_waits_on_deferred_ones() {
        let mut coordinator = Coordinator::default();
        coordinator.malformed.insert("bad".into());
        coordinator.deferred.insert("later".into());
        let (url, shared) = start(coordinator).await;
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_with(dir.path(), &["r1", "bad", "r2", "later", "r3"]);

        let report = deliver(&spool, &client(&url), 10).await;
        assert_eq!(
            (report.sent, report.quarantined, report.remaining),
            (2, 1, 2)
        );
        assert!(
            matches!(&report.error, Some(DeliveryError::Deferred { key, .. }) if key == "later"),
            "{:?}",
            report.error
        );
        assert_eq!(shared.lock().unwrap().stored, ["r1", "r2"]);
        assert_eq!(pending_keys(&spool), ["later", "r3"]);
        let reason = std::fs::read_to_string(
            dir.path()
                .join("quarantine/00000000000000000001.rec.reason"),
        )
        .unwrap();
        assert_eq!(
            reason,
            "refused by the coordinator (malformed): finished_at before started_at\n"
        );

        shared.lock().unwrap().deferred.clear();
        let report = deliver(&spool, &client(&url), 10).await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!(shared.lock().unwrap().stored, ["r1", "r2", "later", "r3"]);
        // What the next heartbeat reports about the spool.
        assert_eq!(
            SpoolStatus::from(spool.stats()),
            SpoolStatus {
                depth: 0,
                oldest: None,
                dropped: 0,
                quarantined: 1
            }
        );
    }

    #[test]
    fn plain_http_is_refused_off_this_machine() {
        let config = |url: &str, allow_http: bool| ClientConfig {
            allow_http,
            ..ClientConfig::new(url.parse().unwrap())
        };
        let build =
            |url: &str, allow_http: bool| CoordinatorClient::new(&config(url, allow_http), None);
        assert!(matches!(
            build("http://coordinator.example:8080", false),
            Err(ClientConfigError::InsecureHttp { host }) if host == "coordinator.example"
        ));
        assert!(matches!(
            build("http://10.1.2.3", false),
            Err(ClientConfigError::InsecureHttp { .. })
        ));
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9",
            "https://hq.example",
        ] {
            assert!(build(ok, false).is_ok(), "{ok}");
        }
        assert!(build("http://coordinator.example", true).is_ok());
        assert!(matches!(
            build("ftp://hq.example", true),
            Err(ClientConfigError::Scheme(_))
        ));
        assert!(matches!(
            build("https://agent:pw@hq.example", false),
            Err(ClientConfigError::Credentials)
        ));
        let err = build("https://agent:pw@hq.example", false).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn paths_keep_the_base_url_prefix() {
        let c = CoordinatorClient::new(
            &ClientConfig::new("https://hq.example/lifeboat/".parse().unwrap()),
            None,
        )
        .unwrap();
        assert_eq!(
            c.url(RUNS_PATH).as_str(),
            "https://hq.example/lifeboat/api/v1/agents/runs"
        );
    }

    #[test]
    fn a_bad_ca_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "just text\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (path, expected) in [
            (&not_pem, "holds no certificate"),
            (&missing, "cannot read it"),
        ] {
            let config = ClientConfig {
                ca_file: Some(path.clone()),
                ..ClientConfig::new("https://hq.example".parse().unwrap())
            };
            let err = CoordinatorClient::new(&config, None).unwrap_err();
            assert!(matches!(err, ClientConfigError::CaFile { .. }), "{err:?}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
