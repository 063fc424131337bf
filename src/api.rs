//! The agent ↔ coordinator wire contract, version 1: JSON bodies over HTTPS under `/api/v1`.
//!
//! These types *are* the protocol. The agent (`agent::client`) and the coordinator both build on
//! them and on nothing of each other's: the agent's spool and the coordinator's store keep their
//! own formats and convert at the edge. This module is plain data and pure helpers: no I/O, no
//! clock, no HTTP client or server, no secret in any `Debug` output.
//!
//! # Endpoints
//!
//! | method and path | authentication | request | answer |
//! |---|---|---|---|
//! | `POST` [`ENROL_PATH`] | one-time enrolment token in the body | [`EnrolRequest`] | [`EnrolResponse`] |
//! | `POST` [`HEARTBEAT_PATH`] | `Authorization: Bearer <agent token>` | [`Heartbeat`] | [`HeartbeatResponse`] |
//! | `GET` [`ASSIGNMENT_PATH`] | bearer | optional `If-None-Match: "<digest>"` ([`etag`]) | [`Assignment`], or `304 Not Modified` |
//! | `POST` [`RUNS_PATH`] | bearer | [`RunBatch`] (at most [`MAX_RUN_BATCH`] records) | [`RunBatchResponse`] |
//! | `POST` [`DRILL_REPORTS_PATH`] | bearer | [`DrillReportBatch`] | [`DrillReportResponse`] |
//!
//! Every 4xx and 5xx answer carries an [`ApiError`] body. `401` means the token is missing,
//! unknown or revoked (the agent must be enrolled again); `403` means the token is valid but the
//! call is not allowed for this agent. Agents never follow redirects.
//!
//! # Compatibility
//!
//! Receivers ignore unknown fields, and unknown enum values decode to an `Unknown` variant, so
//! adding an optional field, a command or an error code stays v1. Removing a field or changing
//! its meaning needs `/api/v2`. For this reason, and unlike policy files, wire types do not use
//! `deny_unknown_fields`. Timestamps are RFC 3339 in UTC; durations are whole seconds.
//!
//! # Delivery of run records
//!
//! A record's key is its `run_id`, the idempotency key. The coordinator stores each key once: a
//! record it already holds is answered as accepted (and listed in `duplicates`), so the agent
//! resends anything whose acknowledgement it did not see. The coordinator handles the records of
//! a batch in order and stops at the first one it cannot store *now*, answering it and every
//! later one with [`RejectCode::Retry`]; records it will never take are answered with
//! [`RejectCode::Malformed`] or [`RejectCode::Forbidden`], and the agent sets those aside.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::policy::{SiteId, SystemId};
use crate::run::{Outcome, RunKind, RunRecord};
use crate::secret::Secret;

/// The version segment of every path.
pub const API_VERSION: &str = "v1";
/// The common prefix of every path of this version.
pub const API_PREFIX: &str = "/api/v1";
/// `POST`: trade a one-time enrolment token for an agent id and agent token.
pub const ENROL_PATH: &str = "/api/v1/agents/enrol";
/// `POST`: the agent's periodic status report; answered with the server time and commands.
pub const HEARTBEAT_PATH: &str = "/api/v1/agents/heartbeat";
/// `GET`: the policy files assigned to the agent's host.
pub const ASSIGNMENT_PATH: &str = "/api/v1/agents/assignment";
/// `POST`: a batch of spooled run records.
pub const RUNS_PATH: &str = "/api/v1/agents/runs";

/// `POST`: results of drill tasks (see [`DrillTask`]).
pub const DRILL_REPORTS_PATH: &str = "/api/v1/agents/drill-reports";

/// The most records one [`RunBatch`] may carry; the coordinator answers larger batches with 413.
pub const MAX_RUN_BATCH: usize = 100;

// ---------------------------------------------------------------------------------------------
// Tokens

/// A bearer credential on the wire (an enrolment token or an agent token). Serialised as a plain
/// JSON string; its `Debug` is redacted like every [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Secret);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Token(Secret::new(value))
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }

    pub fn into_secret(self) -> Secret {
        self.0
    }
}

impl From<Secret> for Token {
    fn from(secret: Secret) -> Self {
        Token(secret)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl utoipa::PartialSchema for Token {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "password".into(),
            )))
            .min_length(Some(1))
            .description(Some(
                "A bearer token; shown once, stored by the coordinator only as a hash",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Token {}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let value = String::deserialize(de)?;
        if value.is_empty() {
            return Err(serde::de::Error::custom("a token must not be empty"));
        }
        Ok(Token::new(value))
    }
}

// ---------------------------------------------------------------------------------------------
// Enrolment

/// `POST /api/v1/agents/enrol`: the first call of a new agent. The enrolment token is issued
/// by an operator for one host and is consumed by this call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrolRequest {
    /// The one-time enrolment token.
    pub enrolment_token: Token,
    /// The agent's host name, as systems name it in the policy (`host = "..."`).
    pub host: String,
    /// The site the host stands at.
    pub site: SiteId,
    /// The agent's lifeboat version.
    pub version: String,
}

/// The answer to [`EnrolRequest`]. The agent stores the token (readable by its user only) and
/// sends it as `Authorization: Bearer <token>` on every later call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrolResponse {
    pub agent_id: Uuid,
    pub agent_token: Token,
}

// ---------------------------------------------------------------------------------------------
// Heartbeat

/// `POST /api/v1/agents/heartbeat`: what the agent reports about itself, every minute or so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Heartbeat {
    pub host: String,
    /// The agent's lifeboat version.
    pub version: String,
    /// The agent's clock when it sent this heartbeat (see [`HeartbeatResponse::clock_offset`]).
    pub sent_at: Timestamp,
    pub spool: SpoolStatus,
    /// Digest of the assignment the agent runs, `None` before it has loaded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_digest: Option<String>,
    /// One entry per assigned system.
    #[serde(default)]
    pub systems: Vec<SystemStatus>,
    /// Ids of the drill tasks this agent is working on now (it is alive and on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_tasks_running: Vec<String>,
}

/// The state of the agent's local spool of undelivered run records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpoolStatus {
    /// Records waiting for delivery.
    pub depth: u64,
    /// `finished_at` of the oldest waiting record: how far behind delivery is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Timestamp>,
    /// Successful-run records dropped, ever, because the spool was full (never failures).
    #[serde(default)]
    pub dropped: u64,
    /// Records set aside in the spool's quarantine (unreadable, or refused as malformed); an
    /// operator should look at them.
    #[serde(default)]
    pub quarantined: u64,
}

/// How one assigned system is doing, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SystemStatus {
    pub system: SystemId,
    /// The most recent backup run, whatever its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<LastRun>,
    /// `finished_at` of the most recent backup whose outcome was success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// Seconds by which the newest off-site copy trails the newest local snapshot (capture
    /// times); `None` when the system has no off-site repository or nothing to compare yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite_lag_seconds: Option<u64>,
    /// When the next scheduled job of this system is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Timestamp>,
    /// The job running now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningJob>,
}

/// The start and outcome of a finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastRun {
    pub run_id: String,
    pub started_at: Timestamp,
    pub outcome: Outcome,
}

/// A job in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunningJob {
    pub run_id: String,
    pub kind: RunKind,
    pub started_at: Timestamp,
}

/// The answer to a [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatResponse {
    /// The coordinator's clock when it answered.
    pub server_time: Timestamp,
    /// Digest of the assignment the agent should run; when it differs from the agent's, the
    /// agent fetches [`ASSIGNMENT_PATH`]. `None`: nothing is assigned to this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_digest: Option<String>,
    /// Commands for the agent. Each is sent once (the coordinator forgets it when it answers),
    /// so a command lost with its answer is not repeated: commands must be safe to lose.
    #[serde(default)]
    pub commands: Vec<Command>,
    /// Drill tasks for this host whose report the coordinator has not stored yet. Unlike a
    /// command, a task is offered in every answer until its report arrives, so it cannot be
    /// lost; the agent runs each `task_id` at most once and re-sends the report of a task it
    /// already finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drill_tasks: Vec<DrillTask>,
}

impl HeartbeatResponse {
    /// How far the coordinator's clock is ahead of the agent's (negative: behind), estimated
    /// NTP-style: `server_time` against the midpoint of the agent's send and receive times.
    pub fn clock_offset(&self, sent_at: Timestamp, received_at: Timestamp) -> SignedDuration {
        let round_trip = received_at.duration_since(sent_at);
        let midpoint = sent_at + round_trip / 2;
        self.server_time.duration_since(midpoint)
    }
}

/// Something the coordinator asks the agent to do, tagged by `command`:
/// `{"command": "backup-now", "system": "linfen-finance"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Run the system's backup now, outside its schedule.
    BackupNow { system: SystemId },
    /// A command this agent is too old to know; it logs it and carries on.
    #[serde(other)]
    Unknown,
}

// ---------------------------------------------------------------------------------------------
// Drill tasks

/// One unit of drill work for the standby host's agent: a readiness probe, a restore, a
/// verification, a command or a clean-up. The coordinator decides *what* (which snapshot, from
/// which repository, into which directory); the agent only does it and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillTask {
    /// Unique and stable: `<drill id>.<step index>.<system or "drill">`; the idempotency key
    /// of the task's [`DrillReport`]. Letters, digits, `.`, `_` and `-` only.
    pub task_id: String,
    pub drill_id: Uuid,
    /// The plan step this task belongs to (`readiness` and `cleanup` for the built-in ones).
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemId>,
    /// The agent stops the task and reports it failed after this long.
    pub timeout_seconds: u64,
    pub action: TaskAction,
}

/// What a [`DrillTask`] does, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TaskAction {
    /// Readiness: can this host restore each target? (password and storage credentials
    /// resolvable here, repository reachable, snapshot present; free space under
    /// `restore_root` of at least `need_bytes`).
    Probe {
        restore_root: String,
        need_bytes: u64,
        targets: Vec<RestoreTarget>,
    },
    /// Restore `snapshot` of the target's system from its repository into `target_dir`
    /// (which must be empty or absent).
    Restore(RestoreTarget),
    /// Re-read `target_dir` and compare every file with the snapshot's content hashes.
    Verify(RestoreTarget),
    /// Run a program without a shell; success is exit status 0.
    Command {
        argv: Vec<String>,
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
    },
    /// Remove the drill's restored data (each path must lie under the drill's restore root).
    Cleanup { paths: Vec<String> },
    /// An action this agent is too old to know; it reports the task failed with that reason.
    #[serde(other)]
    Unknown,
}

/// A snapshot to restore and where: what [`TaskAction::Probe`], `Restore` and `Verify` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoreTarget {
    pub system: SystemId,
    pub repository: crate::policy::RepoId,
    /// The full snapshot id at that repository.
    pub snapshot: String,
    /// Absolute directory the snapshot is restored into.
    pub target_dir: String,
    /// The policy the agent needs to open the repository: the system, its tier and site, and
    /// its repositories (secret *sources* only), as policy TOML files the agent loads with the
    /// normal loader.
    pub policy: Vec<AssignmentFile>,
}

/// `POST /api/v1/agents/drill-reports`: finished drill tasks. Delivered at least once; the
/// coordinator keeps the first report of each `task_id` and answers later ones as accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillReportBatch {
    pub reports: Vec<DrillReport>,
}

/// The result of one [`DrillTask`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillReport {
    pub task_id: String,
    pub drill_id: Uuid,
    pub host: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// `success` or `failed`.
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::run::RunError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandResult>,
}

/// What a readiness probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeResult {
    /// Free bytes under the restore root (of its nearest existing ancestor).
    pub free_bytes: u64,
    pub targets: Vec<ProbeTargetResult>,
}

/// One target of a probe: `ok`, or what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeTargetResult {
    pub system: SystemId,
    pub repository: crate::policy::RepoId,
    pub credentials: bool,
    pub reachable: bool,
    pub snapshot_present: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What a restore or verification did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoreResult {
    pub snapshot: String,
    pub repository: crate::policy::RepoId,
    /// The snapshot's capture time as the repository records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_time: Option<Timestamp>,
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Files compared with their content hashes (verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_files: Option<u64>,
    /// sha256 over the sorted list of restored files with their sizes and content digests,
    /// for the evidence annex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_digest: Option<String>,
}

/// What a command did. Output is the tail, with secrets of the environment scrubbed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub output_tail: String,
}

/// The answer to a [`DrillReportBatch`]: the task ids stored (or already held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DrillReportResponse {
    pub accepted: Vec<String>,
    /// Reports refused for good (not this agent's task, malformed), with the reason.
    #[serde(default)]
    pub rejected: Vec<Rejection>,
}

// ---------------------------------------------------------------------------------------------
// Assignment

/// `GET /api/v1/agents/assignment`: the policy of the agent's host, as TOML files. The agent
/// writes them into a directory and loads it with the normal policy loader, so an assignment is
/// checked exactly like a hand-written policy; it keeps running the last good one when a new one
/// fails to load or the coordinator is unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assignment {
    /// [`Assignment::digest_of`] the files; also the HTTP entity tag of this answer.
    pub digest: String,
    pub issued_at: Timestamp,
    pub files: Vec<AssignmentFile>,
}

/// One policy file of an [`Assignment`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignmentFile {
    pub name: PolicyFileName,
    /// The file's TOML text.
    pub content: String,
}

/// Why an [`Assignment`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    #[error("assignment digest {claimed} does not match its files (computed {computed})")]
    DigestMismatch { claimed: String, computed: String },
    #[error("assignment names file {0} twice")]
    DuplicateFile(String),
}

impl Assignment {
    /// An assignment of `files`, with its digest computed.
    pub fn new(issued_at: Timestamp, files: Vec<AssignmentFile>) -> Self {
        Assignment {
            digest: Self::digest_of(&files),
            issued_at,
            files,
        }
    }

    /// sha256 (hex) over the files sorted by name, each as name, NUL, content length (u64
    /// little-endian), content. Independent of the order of `files`.
    pub fn digest_of(files: &[AssignmentFile]) -> String {
        let mut sorted: Vec<&AssignmentFile> = files.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hasher = Sha256::new();
        for file in sorted {
            hasher.update(file.name.as_str().as_bytes());
            hasher.update([0u8]);
            hasher.update((file.content.len() as u64).to_le_bytes());
            hasher.update(file.content.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Checks that file names are unique and that the digest matches the files (a truncated or
    /// altered answer is refused rather than written to disk).
    pub fn verify(&self) -> Result<(), AssignmentError> {
        let mut names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(AssignmentError::DuplicateFile(pair[0].to_string()));
        }
        let computed = Self::digest_of(&self.files);
        if computed != self.digest {
            return Err(AssignmentError::DigestMismatch {
                claimed: self.digest.clone(),
                computed,
            });
        }
        Ok(())
    }
}

/// The name of a policy file in an assignment: a plain file name (no directory) matching
/// `[A-Za-z0-9][A-Za-z0-9._-]*\.toml`, at most [`PolicyFileName::MAX_LEN`] bytes. The agent
/// writes the file under this name, so anything that could leave the directory or hide the file
/// (`/`, `..`, a leading dot) is refused when the answer is decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-zA-Z0-9][a-zA-Z0-9._-]*\\.toml$")]
pub struct PolicyFileName(String);

impl PolicyFileName {
    pub const MAX_LEN: usize = 100;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PolicyFileName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let stem = s.strip_suffix(".toml").unwrap_or_default();
        let first_ok = stem
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok || s.len() > Self::MAX_LEN {
            return Err(format!(
                "policy file name {s:?} must be a plain name such as \"systems.toml\" \
                 (letters, digits, '.', '_', '-'; ending in .toml; at most {} bytes)",
                Self::MAX_LEN
            ));
        }
        Ok(PolicyFileName(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for PolicyFileName {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        String::deserialize(de)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PolicyFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The entity tag of an assignment: its digest in double quotes, as sent in `ETag` and
/// `If-None-Match`.
pub fn etag(digest: &str) -> String {
    format!("\"{digest}\"")
}

/// Whether an `If-None-Match` header value names `digest` (a comma-separated list of entity
/// tags, weak `W/` tags compared weakly, or `*`): if so, the answer is `304 Not Modified`.
pub fn etag_matches(if_none_match: &str, digest: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag
                .trim_start_matches("W/")
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                == Some(digest)
    })
}

// ---------------------------------------------------------------------------------------------
// Run records

/// `POST /api/v1/agents/runs`: spooled records, in the order they were spooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunBatch {
    pub records: Vec<RunEnvelope>,
}

/// One spooled run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEnvelope {
    /// The idempotency key: the record's `run_id`.
    pub key: String,
    /// The agent's spool sequence number: increasing in spool order and never reused by this
    /// agent, so a gap means records were dropped (see [`SpoolStatus::dropped`]) or set aside.
    pub seq: u64,
    /// The record's system (`record.system`), so the coordinator can route and authorise it
    /// before reading the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub record: RunRecord,
}

/// The answer to a [`RunBatch`]. Every key of the batch appears in `accepted` or `rejected`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunBatchResponse {
    /// Keys now stored by the coordinator, duplicates included: the agent may forget them.
    pub accepted: Vec<String>,
    /// The subset of `accepted` that the coordinator already had.
    #[serde(default)]
    pub duplicates: Vec<String>,
    #[serde(default)]
    pub rejected: Vec<Rejection>,
}

/// A record the coordinator did not store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    pub key: String,
    pub code: RejectCode,
    /// For people: what is wrong with the record.
    pub reason: String,
}

/// Why a record was not stored, and so what the agent does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RejectCode {
    /// The record is invalid and will never be accepted: the agent quarantines it.
    Malformed,
    /// The record is about a host or system this agent may not report: the agent quarantines it.
    Forbidden,
    /// The coordinator cannot store it now: the agent keeps it and retries later.
    Retry,
    /// A code this agent does not know: treated like `Retry`, so nothing is set aside by mistake.
    #[serde(other)]
    Unknown,
}

impl RejectCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::Forbidden => "forbidden",
            RejectCode::Retry => "retry",
            RejectCode::Unknown => "unknown",
        }
    }

    /// Whether resending can never succeed (the record must be set aside, or it blocks the queue).
    pub fn is_permanent(self) -> bool {
        matches!(self, RejectCode::Malformed | RejectCode::Forbidden)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The body of every 4xx and 5xx answer. `message` is for people and never holds internals
/// (those are logged by the coordinator) or secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    pub error: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            error,
            message: message.into(),
        }
    }
}

/// Stable, machine-readable error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// 400: the body or a parameter is invalid.
    BadRequest,
    /// 401: no token, or a token the coordinator does not know (or revoked).
    Unauthorized,
    /// 403: a valid token that may not make this call.
    Forbidden,
    /// 404
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: e.g. an enrolment token already used.
    Conflict,
    /// 413: e.g. more than [`MAX_RUN_BATCH`] records.
    TooLarge,
    /// 429: slow down.
    RateLimited,
    /// 500
    Internal,
    /// 503: e.g. the store is down; retry later.
    Unavailable,
    /// 503: the answer needs something not computed yet on this replica (the first assessment
    /// sweep); retry after the `Retry-After` seconds.
    NotReady,
    /// A code this client does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status answered with this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
            ErrorCode::Unavailable | ErrorCode::NotReady => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_path_is_under_the_versioned_prefix() {
        assert_eq!(API_PREFIX, format!("/api/{API_VERSION}"));
        for path in [ENROL_PATH, HEARTBEAT_PATH, ASSIGNMENT_PATH, RUNS_PATH] {
            assert!(path.starts_with(&format!("{API_PREFIX}/agents/")), "{path}");
        }
    }

    #[test]
    fn heartbeat_response_wire_form() {
        let resp = HeartbeatResponse {
            drill_tasks: Vec::new(),
            server_time: ts("2026-03-01T02:00:00Z"),
            assignment_digest: Some("ab12".into()),
            commands: vec![Command::BackupNow {
                system: "linfen-finance".parse().unwrap(),
            }],
        };
        let wire = json!({
            "server_time": "2026-03-01T02:00:00Z",
            "assignment_digest": "ab12",
            "commands": [{"command": "backup-now", "system": "linfen-finance"}]
        });
        assert_eq!(serde_json::to_value(&resp).unwrap(), wire);
        assert_eq!(
            serde_json::from_value::<HeartbeatResponse>(wire).unwrap(),
            resp
        );
    }

    #[test]
    fn unknown_values_from_a_newer_peer_decode() {
        let resp: HeartbeatResponse = serde_json::from_value(json!({
            "server_time": "2026-03-01T02:00:00Z",
            "commands": [{"command": "drill-step", "step": 3}],
            "some_new_field": true
        }))
        .unwrap();
        assert_eq!(resp.commands, vec![Command::Unknown]);
        assert_eq!(resp.assignment_digest, None);

        let err: ApiError =
            serde_json::from_value(json!({"error": "teapot", "message": "m"})).unwrap();
        assert_eq!(err.error, ErrorCode::Unknown);
        let rej: Rejection =
            serde_json::from_value(json!({"key": "k", "code": "quota-exceeded", "reason": "r"}))
                .unwrap();
        assert_eq!(rej.code, RejectCode::Unknown);
        assert!(!rej.code.is_permanent(), "unknown codes must be retried");
        for code in [
            RejectCode::Malformed,
            RejectCode::Forbidden,
            RejectCode::Retry,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    #[test]
    fn bad_ids_and_file_names_are_refused_when_decoding() {
        let bad_command =
            serde_json::from_value::<Command>(json!({"command": "backup-now", "system": "../etc"}));
        assert!(bad_command.is_err());
        for (name, ok) in [
            ("systems.toml", true),
            ("10-linfen.finance_v2.toml", true),
            ("../x.toml", false),
            ("dir/x.toml", false),
            (".hidden.toml", false),
            ("x.txt", false),
            (".toml", false),
            ("", false),
        ] {
            let parsed = serde_json::from_value::<PolicyFileName>(json!(name));
            assert_eq!(parsed.is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn tokens_travel_in_clear_but_never_print() {
        let req = EnrolRequest {
            enrolment_token: Token::new("s3cr3t-enrol"),
            host: "lf-srv-01".into(),
            site: "linfen".parse().unwrap(),
            version: "0.1.0".into(),
        };
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(wire["enrolment_token"], "s3cr3t-enrol");
        assert!(!format!("{req:?}").contains("s3cr3t"));
        let back: EnrolRequest = serde_json::from_value(wire).unwrap();
        assert_eq!(back.enrolment_token.secret().expose(), "s3cr3t-enrol");
        assert!(serde_json::from_value::<Token>(json!("")).is_err());
    }

    #[test]
    fn assignment_digest_ignores_order_and_catches_changes() {
        let file = |name: &str, content: &str| AssignmentFile {
            name: name.parse().unwrap(),
            content: content.into(),
        };
        let t = ts("2026-03-01T00:00:00Z");
        let a = Assignment::new(t, vec![file("a.toml", "x"), file("b.toml", "y")]);
        let b = Assignment::new(t, vec![file("b.toml", "y"), file("a.toml", "x")]);
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.verify(), Ok(()));
        // Moving a byte from one file to the other changes the digest.
        let c = Assignment::new(t, vec![file("a.toml", "xy"), file("b.toml", "")]);
        assert_ne!(a.digest, c.digest);

        let mut tampered = a.clone();
        tampered.files[0].content.push('!');
        assert!(matches!(
            tampered.verify(),
            Err(AssignmentError::DigestMismatch { .. })
        ));
        let twice = Assignment::new(t, vec![file("a.toml", "x"), file("a.toml", "x")]);
        assert_eq!(
            twice.verify(),
            Err(AssignmentError::DuplicateFile("a.toml".into()))
        );
    }

    #[test]
    fn if_none_match_table() {
        let cases = [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abcd\"", false),
            ("abc", false),
            ("", false),
        ];
        for (header, expected) in cases {
            assert_eq!(etag_matches(header, "abc"), expected, "{header:?}");
        }
        assert!(etag_matches(&etag("abc"), "abc"));
    }

    #[test]
    fn clock_offset_uses_the_round_trip_midpoint() {
        let resp = HeartbeatResponse {
            drill_tasks: Vec::new(),
            server_time: ts("2026-03-01T00:00:31Z"),
            assignment_digest: None,
            commands: vec![],
        };
        // Sent at :00, answered at :02 (agent clock): midpoint :01, server says :31.
        let offset = resp.clock_offset(ts("2026-03-01T00:00:00Z"), ts("2026-03-01T00:00:02Z"));
        assert_eq!(offset, SignedDuration::from_secs(30));
    }

    #[test]
    fn error_codes_map_to_statuses() {
        let wire = serde_json::to_value(ApiError::new(ErrorCode::TooLarge, "101 records")).unwrap();
        assert_eq!(
            wire,
            json!({"error": "too-large", "message": "101 records"})
        );
        assert_eq!(ErrorCode::TooLarge.status(), 413);
        assert_eq!(ErrorCode::Unauthorized.status(), 401);
        assert_eq!(ErrorCode::Unavailable.status(), 503);
    }
}
