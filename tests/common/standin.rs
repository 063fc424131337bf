//! A stand-in coordinator for integration tests: real HTTP on 127.0.0.1 (axum), speaking
//! `lifeboat::api` v1, recording everything it receives.
//!
//! It runs on its own tokio runtime, so its methods are plain blocking calls usable from sync
//! tests (which run the lifeboat binary) and async tests alike. [`StandIn::refuse`] really stops
//! listening (connections are refused, not answered with errors) and [`StandIn::accept`] listens
//! again on the same port, to play a coordinator that is down for a while.
//!
//! What it implements of the coordinator: bearer-token checks ([`STANDIN_TOKEN`]), enrolment
//! with [`STANDIN_ENROLMENT_TOKEN`] (reusable, unlike a real one), heartbeats (stored, answered
//! with queued commands and the current assignment digest), assignments (`If-None-Match` → 304),
//! run batches (deduplicated by key, in arrival order), and drill tasks: offered in every
//! heartbeat answer until a report for them arrives (like the real coordinator), every report
//! recorded in arrival order, duplicates included. Nothing is persisted.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lifeboat::api::{
    ASSIGNMENT_PATH, ApiError, Assignment, AssignmentFile, Command, DRILL_REPORTS_PATH,
    DrillReport, DrillReportBatch, DrillReportResponse, DrillTask, ENROL_PATH, EnrolRequest,
    EnrolResponse, ErrorCode, HEARTBEAT_PATH, Heartbeat, HeartbeatResponse, MAX_RUN_BATCH,
    RUNS_PATH, RejectCode, Rejection, RunBatch, RunBatchResponse, Token, etag, etag_matches,
};
use lifeboat::run::RunRecord;

/// The agent token the stand-in accepts (and hands out at enrolment).
pub const STANDIN_TOKEN: &str = "standin-agent-token-0123456789";
/// The enrolment token the stand-in accepts.
pub const STANDIN_ENROLMENT_TOKEN: &str = "standin-enrolment-token";

/// How long `refuse` waits for open connections to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A run record as received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRun {
    pub key: String,
    pub seq: u64,
    pub system: Option<String>,
    pub record: RunRecord,
}

/// Everything the stand-in saw and is set to answer.
#[derive(Default)]
struct Seen {
    /// Run records stored, first arrival of each key only, in arrival order.
    received: Vec<ReceivedRun>,
    /// Keys of `received`.
    keys: HashSet<String>,
    /// Records received again under a key already stored.
    duplicates: usize,
    /// `POST /runs` requests answered with 200.
    batches: usize,
    heartbeats: Vec<Heartbeat>,
    /// Requests refused for a missing or wrong token.
    auth_failures: usize,
    /// Served at `GET /assignment`; its digest is announced in heartbeat answers.
    assignment: Option<Assignment>,
    /// Sent (once) with the next heartbeat answer.
    commands: Vec<Command>,
    /// Keys answered with `malformed`.
    malformed: HashSet<String>,
    /// When set, every authenticated request is answered with this status and an ApiError.
    fail_with: Option<StatusCode>,
    /// Offered in every heartbeat answer until a report with their task id arrives.
    drill_tasks: Vec<DrillTask>,
    /// Every drill report received, in arrival order (a report sent again appears again).
    drill_reports: Vec<DrillReport>,
    /// When set, drill report batches are answered with this status (heartbeats go on).
    drill_reports_fail: Option<StatusCode>,
}

type Shared = Arc<Mutex<Seen>>;

/// A running (or refusing) stand-in coordinator. Stopped when dropped.
pub struct StandIn {
    port: u16,
    seen: Shared,
    /// Present while listening.
    server: Option<Server>,
    /// `Option` only so that `Drop` can shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

/// A listening server: tell it to stop, then wait until it has dropped its listener.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    stopped: mpsc::Receiver<()>,
}

impl StandIn {
    /// Starts listening on a free port of 127.0.0.1.
    pub fn start() -> StandIn {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("standin")
            .enable_all()
            .build()
            .expect("stand-in runtime");
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let mut standin = StandIn {
            port,
            seen: Shared::default(),
            server: None,
            runtime: Some(runtime),
        };
        standin.serve(listener);
        standin
    }

    /// `http://127.0.0.1:<port>`: the same across `refuse` and `accept`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The agent token to configure the agent with.
    pub fn token(&self) -> &'static str {
        STANDIN_TOKEN
    }

    /// Run records stored, in arrival order, each key once.
    pub fn received(&self) -> Vec<ReceivedRun> {
        self.seen().received.clone()
    }

    /// The keys of [`Self::received`].
    pub fn received_keys(&self) -> Vec<String> {
        self.seen().received.iter().map(|r| r.key.clone()).collect()
    }

    /// How many records arrived again under a key already stored.
    pub fn duplicates(&self) -> usize {
        self.seen().duplicates
    }

    /// How many run batches were answered with 200.
    pub fn batches(&self) -> usize {
        self.seen().batches
    }

    /// Heartbeats received, in order.
    pub fn heartbeats(&self) -> Vec<Heartbeat> {
        self.seen().heartbeats.clone()
    }

    /// Requests refused for a missing or wrong bearer token.
    pub fn auth_failures(&self) -> usize {
        self.seen().auth_failures
    }

    /// Serves these policy files (name, TOML content) as the assignment from now on; returns
    /// its digest.
    pub fn set_assignment(&self, files: &[(&str, &str)]) -> String {
        let files = files
            .iter()
            .map(|(name, content)| AssignmentFile {
                name: name.parse().expect("a valid policy file name"),
                content: content.to_string(),
            })
            .collect();
        let assignment = Assignment::new(jiff::Timestamp::now(), files);
        let digest = assignment.digest.clone();
        self.seen().assignment = Some(assignment);
        digest
    }

    /// Sends `command` with the next heartbeat answer.
    pub fn queue_command(&self, command: Command) {
        self.seen().commands.push(command);
    }

    /// Answers the record with this key as malformed from now on.
    pub fn reject_as_malformed(&self, key: &str) {
        self.seen().malformed.insert(key.to_string());
    }

    /// Offers `task` in every heartbeat answer until its report arrives (again, if it was
    /// offered and reported before).
    pub fn offer_drill_task(&self, task: DrillTask) {
        let mut seen = self.seen();
        seen.drill_tasks.retain(|t| t.task_id != task.task_id);
        seen.drill_tasks.push(task);
    }

    /// Drill tasks offered now (not reported yet).
    pub fn offered_drill_tasks(&self) -> Vec<DrillTask> {
        self.seen().drill_tasks.clone()
    }

    /// Every drill report received, in arrival order, duplicates included.
    pub fn drill_reports(&self) -> Vec<DrillReport> {
        self.seen().drill_reports.clone()
    }

    /// The first report received for `task_id`.
    pub fn drill_report(&self, task_id: &str) -> Option<DrillReport> {
        self.seen()
            .drill_reports
            .iter()
            .find(|r| r.task_id == task_id)
            .cloned()
    }

    /// Answers drill report batches with this status (`None`: accept them again).
    pub fn fail_drill_reports(&self, status: Option<u16>) {
        self.seen().drill_reports_fail =
            status.map(|s| StatusCode::from_u16(s).expect("a valid HTTP status"));
    }

    /// Answers every authenticated request with this status (`None`: back to normal).
    pub fn fail_with(&self, status: Option<u16>) {
        self.seen().fail_with =
            status.map(|s| StatusCode::from_u16(s).expect("a valid HTTP status"));
    }

    /// Stops listening: new connections are refused, open ones are closed once their request
    /// is answered. Returns when the port is closed.
    pub fn refuse(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        let _ = server.stop.send(());
        server
            .stopped
            .recv_timeout(STOP_TIMEOUT)
            .expect("stand-in did not stop listening in time");
    }

    /// Listens again on the same port.
    pub fn accept(&mut self) {
        if self.server.is_some() {
            return;
        }
        // The port was ours a moment ago; a rebind can still race with TIME_WAIT handling or
        // another process, so retry briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match StdListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("cannot listen again on port {}: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    /// Whether the stand-in is listening.
    pub fn is_accepting(&self) -> bool {
        self.server.is_some()
    }

    /// Waits until `done` holds (checked every 20 ms), for at most `timeout`. Returns whether it
    /// held. For tests driving a separate agent process.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&StandIn) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&mut self, listener: StdListener) {
        listener.set_nonblocking(true).expect("set_nonblocking");
        let runtime = self.runtime.as_ref().expect("stand-in runtime");
        let app = axum::Router::new()
            .route(ENROL_PATH, post(enrol))
            .route(HEARTBEAT_PATH, post(heartbeat))
            .route(ASSIGNMENT_PATH, get(assignment))
            .route(RUNS_PATH, post(runs))
            .route(DRILL_REPORTS_PATH, post(drill_reports))
            .with_state(self.seen.clone());
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::channel();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("tokio listener")
        };
        runtime.spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = result {
                eprintln!("stand-in coordinator: {e}");
            }
            // The listener is dropped by now: the port refuses connections.
            let _ = stopped_tx.send(());
        });
        self.server = Some(Server { stop, stopped });
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
        }
        // Does not block, so a test may drop the stand-in inside an async runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// handlers

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, Json(ApiError::new(code, message))).into_response()
}

/// Checks the bearer token and the failure switch; `Some` is the refusal to send.
fn admit(seen: &mut Seen, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(STANDIN_TOKEN) {
        seen.auth_failures += 1;
        return Some(error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing or unknown agent token",
        ));
    }
    if let Some(status) = seen.fail_with {
        return Some(error(status, ErrorCode::Internal, "stand-in told to fail"));
    }
    None
}

fn lock(shared: &Shared) -> MutexGuard<'_, Seen> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

async fn enrol(Json(request): Json<EnrolRequest>) -> Response {
    if request.enrolment_token.secret().expose() != STANDIN_ENROLMENT_TOKEN {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "unknown enrolment token",
        );
    }
    Json(EnrolResponse {
        agent_id: uuid::Uuid::new_v4(),
        agent_token: Token::new(STANDIN_TOKEN),
    })
    .into_response()
}

async fn heartbeat(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(beat): Json<Heartbeat>,
) -> Response {
    let mut seen = lock(&shared);
    if let Some(resp) = admit(&mut seen, &headers) {
        return resp;
    }
    seen.heartbeats.push(beat);
    let answer = HeartbeatResponse {
        drill_tasks: seen.drill_tasks.clone(),
        server_time: jiff::Timestamp::now(),
        assignment_digest: seen.assignment.as_ref().map(|a| a.digest.clone()),
        commands: std::mem::take(&mut seen.commands),
    };
    Json(answer).into_response()
}

async fn assignment(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let mut seen = lock(&shared);
    if let Some(resp) = admit(&mut seen, &headers) {
        return resp;
    }
    let Some(assignment) = seen.assignment.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "nothing is assigned to this host",
        );
    };
    let tag = etag(&assignment.digest);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &assignment.digest));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    ([(header::ETAG, tag)], Json(assignment)).into_response()
}

async fn runs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(batch): Json<RunBatch>,
) -> Response {
    let mut seen = lock(&shared);
    if let Some(resp) = admit(&mut seen, &headers) {
        return resp;
    }
    if batch.records.len() > MAX_RUN_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            &format!("{} records; at most {MAX_RUN_BATCH}", batch.records.len()),
        );
    }
    let mut answer = RunBatchResponse::default();
    for envelope in batch.records {
        let key = envelope.key;
        if seen.malformed.contains(&key) {
            answer.rejected.push(Rejection {
                key,
                code: RejectCode::Malformed,
                reason: "stand-in told to reject this record".into(),
            });
        } else if seen.keys.contains(&key) {
            seen.duplicates += 1;
            answer.duplicates.push(key.clone());
            answer.accepted.push(key);
        } else {
            seen.keys.insert(key.clone());
            seen.received.push(ReceivedRun {
                key: key.clone(),
                seq: envelope.seq,
                system: envelope.system,
                record: envelope.record,
            });
            answer.accepted.push(key);
        }
    }
    seen.batches += 1;
    Json(answer).into_response()
}

async fn drill_reports(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(batch): Json<DrillReportBatch>,
) -> Response {
    let mut seen = lock(&shared);
    if let Some(resp) = admit(&mut seen, &headers) {
        return resp;
    }
    if let Some(status) = seen.drill_reports_fail {
        return error(
            status,
            ErrorCode::Internal,
            "stand-in told to fail drill reports",
        );
    }
    let mut answer = DrillReportResponse {
        accepted: Vec::new(),
        rejected: Vec::new(),
    };
    for report in batch.reports {
        seen.drill_tasks.retain(|t| t.task_id != report.task_id);
        answer.accepted.push(report.task_id.clone());
        seen.drill_reports.push(report);
    }
    Json(answer).into_response()
}
