//! The values the store takes and gives back: plain data, no SQL, no I/O.
//!
//! Secrets never enter the store: tokens arrive as a [`TokenHash`] (sha256, hex) and passwords
//! as a [`PasswordHash`] (a PHC string made by the caller), so no store call can write a secret
//! in clear, whatever the caller does.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StoreError;
use crate::api::{Command, DrillReport, DrillTask, Heartbeat, SystemStatus};
use crate::policy::DrillId;
use crate::run::{Outcome, RunKind, RunRecord};
use crate::secret::Secret;

// ---------------------------------------------------------------------------------------------
// Hashes of secrets

/// The sha256 (lowercase hex) of a bearer token: agent, enrolment, session and API tokens are
/// stored, looked up and compared only in this form. Tokens are random and long, so an unsalted
/// fast hash is enough: the point is that a copy of the database authenticates nobody.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &Secret) -> Self {
        TokenHash(hex::encode(Sha256::digest(token.expose().as_bytes())))
    }

    /// A hash read back as text: exactly 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, StoreError> {
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(TokenHash(hex.to_string()))
        } else {
            Err(StoreError::Invalid(
                "a token hash must be 64 lowercase hex digits".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    /// Only a prefix: enough to tell hashes apart in a test failure or a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", self.0.get(..8).unwrap_or(""))
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`), produced and verified outside the
/// store. Its `Debug` is redacted: a hash is still worth an offline guessing attack.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string; refuses anything that does not look like one (`$id$...`), so that a
    /// clear password passed by mistake is not stored.
    pub fn new(phc: impl Into<String>) -> Result<Self, StoreError> {
        let phc = phc.into();
        let looks_like_phc = phc.starts_with('$')
            && phc.len() > 2
            && phc[1..].split('$').next().is_some_and(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            && phc[1..].contains('$');
        if looks_like_phc {
            Ok(PasswordHash(phc))
        } else {
            Err(StoreError::Invalid(
                "a password hash must be a PHC string such as $argon2id$...".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Paging

/// A window of a list: skip `offset` rows, return at most `limit` (capped at [`Page::MAX_LIMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u32,
}

impl Page {
    pub const MAX_LIMIT: u32 = 1000;

    pub fn first(limit: u32) -> Self {
        Page { offset: 0, limit }
    }

    /// The page after this one.
    pub fn next(self) -> Self {
        Page {
            offset: self.offset + u64::from(self.limit),
            limit: self.limit,
        }
    }

    pub(crate) fn sql(self) -> (i64, i64) {
        let limit = i64::from(self.limit.min(Self::MAX_LIMIT));
        let offset = i64::try_from(self.offset).unwrap_or(i64::MAX);
        (limit, offset)
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::first(100)
    }
}

// ---------------------------------------------------------------------------------------------
// Agents and enrolment

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: Uuid,
    pub host: String,
    pub site: String,
    pub token_hash: TokenHash,
    pub enrolled_at: Timestamp,
    /// The lifeboat version of the last enrolment or heartbeat.
    pub version: String,
    pub last_heartbeat_at: Option<Timestamp>,
    /// The coordinator's clock minus the agent's at the last heartbeat (millisecond precision).
    pub clock_offset: Option<SignedDuration>,
    /// When it was revoked; a revoked agent's token must be refused (401).
    pub revoked_at: Option<Timestamp>,
}

impl Agent {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// What [`Store::enrol_agent`](super::Store::enrol_agent) creates besides the token's host/site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub id: Uuid,
    pub token_hash: TokenHash,
    pub version: String,
}

/// A one-time enrolment token, issued by an operator for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentToken {
    pub hash: TokenHash,
    pub host: String,
    pub site: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    /// The agent that consumed it.
    pub used_by: Option<Uuid>,
}

/// The result of an enrolment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolment {
    /// The token was consumed by this call and the agent created.
    Enrolled(Agent),
    /// Nothing was changed.
    Refused(EnrolmentRefusal),
}

/// Why an enrolment token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentRefusal {
    /// No such token (401).
    Unknown,
    /// Consumed already, by another call (409).
    AlreadyUsed,
    /// Past its `expires_at` (401).
    Expired,
}

// ---------------------------------------------------------------------------------------------
// Heartbeats

/// An agent's latest heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHeartbeat {
    pub agent_id: Uuid,
    /// The coordinator's clock when it was received.
    pub received_at: Timestamp,
    pub heartbeat: Heartbeat,
}

/// The latest status of one system, from the latest heartbeat that listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSystemStatus {
    pub system: String,
    pub agent_id: Uuid,
    pub reported_at: Timestamp,
    pub status: SystemStatus,
}

// ---------------------------------------------------------------------------------------------
// Runs

/// A stored run record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// Store-assigned, increasing in insertion order.
    pub id: i64,
    pub agent_id: Uuid,
    /// The agent's spool sequence number.
    pub seq: u64,
    pub received_at: Timestamp,
    pub record: RunRecord,
}

/// What [`Store::insert_run`](super::Store::insert_run) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunInsert {
    /// Stored now.
    Inserted,
    /// The same record was stored before under this key: nothing changed (accept it again).
    Duplicate,
    /// A *different* record is stored under this key: nothing changed, the new one is refused.
    Conflict,
}

/// Which run records to list ([`Store::list_runs`](super::Store::list_runs)): every set field
/// must match; `since` is inclusive and `until` exclusive, both on `started_at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub system: Option<String>,
    pub host: Option<String>,
    pub kind: Option<RunKind>,
    pub outcome: Option<Outcome>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------
// Commands for agents

/// A command waiting for the next heartbeat of an agent of `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCommand {
    /// Store-assigned, increasing in queue order.
    pub id: i64,
    pub host: String,
    pub command: Command,
    /// Who asked for it (`user:alice`).
    pub created_by: String,
    pub created_at: Timestamp,
}

/// What [`Store::queue_command`](super::Store::queue_command) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandQueued {
    /// Stored under this id.
    Queued(i64),
    /// The same command waits for the host already: nothing changed.
    AlreadyQueued,
    /// No unrevoked agent is enrolled for the host: nothing stored.
    NoAgent,
}

// ---------------------------------------------------------------------------------------------
// Audit log

/// An audit entry to append. `actor` is e.g. `user:alice` or `agent:<uuid>`; `target` what was
/// read or changed. `detail` must hold no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

/// A stored audit entry; `id` increases in append order.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

/// Which audit entries to list: every set field must match (`since` inclusive, `until`
/// exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------
// People and their credentials

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(StoreError::corrupt(format!("unknown role {other:?}"))),
        }
    }
}

/// A person who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password_hash: PasswordHash,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
}

/// A login session of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: TokenHash,
    pub user: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Whom an API token authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    User(String),
    Agent(Uuid),
}

/// A long-lived API token (for scripts), owned by a user or an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub hash: TokenHash,
    pub owner: TokenOwner,
    /// What it is for, for people.
    pub label: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// Whether an alert is firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "firing" => Ok(AlertStatus::Firing),
            "resolved" => Ok(AlertStatus::Resolved),
            other => Err(StoreError::corrupt(format!(
                "unknown alert state {other:?}"
            ))),
        }
    }
}

/// The de-duplication state of one alert: `rule` (e.g. `rpo-breach`) about `subject` (e.g. a
/// system id), in `state` since `since`; `last_notified_at` is when a notification last went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub rule: String,
    pub subject: String,
    pub state: AlertStatus,
    pub since: Timestamp,
    pub last_notified_at: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------
// Drills

/// Where a drill is in its life. The store interprets only [`DrillStatus::is_active`]; what each
/// status means is the orchestrator's business (`crate::drill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrillStatus {
    /// Created, waiting for its start time.
    Scheduled,
    Running,
    Finished,
    /// Ended by an operator.
    Aborted,
    /// The readiness check found the standby site not ready; nothing was restored.
    NotReady,
    /// Could not be carried out (not the same as a drill that ran and failed its criteria).
    Failed,
}

impl DrillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Scheduled => "scheduled",
            DrillStatus::Running => "running",
            DrillStatus::Finished => "finished",
            DrillStatus::Aborted => "aborted",
            DrillStatus::NotReady => "not-ready",
            DrillStatus::Failed => "failed",
        }
    }

    /// Scheduled or running: the orchestrator still has work to do for it.
    pub fn is_active(self) -> bool {
        matches!(self, DrillStatus::Scheduled | DrillStatus::Running)
    }
}

impl FromStr for DrillStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "scheduled" => Ok(DrillStatus::Scheduled),
            "running" => Ok(DrillStatus::Running),
            "finished" => Ok(DrillStatus::Finished),
            "aborted" => Ok(DrillStatus::Aborted),
            "not-ready" => Ok(DrillStatus::NotReady),
            "failed" => Ok(DrillStatus::Failed),
            other => Err(StoreError::corrupt(format!(
                "unknown drill status {other:?}"
            ))),
        }
    }
}

/// A drill to create ([`Store::insert_drill`](super::Store::insert_drill)); it starts at
/// version 1, unsealed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDrill {
    pub id: Uuid,
    pub plan: DrillId,
    pub status: DrillStatus,
    /// Who asked for it (`user:alice`, `schedule`).
    pub created_by: String,
    pub created_at: Timestamp,
    pub scheduled_for: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    /// The orchestrator's state, opaque to the store.
    pub state: Value,
}

/// A stored drill (without its evidence bundle: [`Store::drill_bundle`](super::Store::drill_bundle)).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDrill {
    pub id: Uuid,
    pub plan: DrillId,
    pub status: DrillStatus,
    pub created_by: String,
    pub created_at: Timestamp,
    pub scheduled_for: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub state: Value,
    /// Bumped by every [`Store::update_drill`](super::Store::update_drill); 1 when created.
    pub version: u64,
    /// Present once sealed.
    pub seal: Option<DrillSeal>,
}

/// A sealed drill's record and its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillSeal {
    pub link: ChainLink,
    /// The drill record, exactly the text that was sealed (its hash is over these bytes' JSON).
    pub record: String,
    pub record_hash: String,
}

/// A place in the chain of sealed drill records: the position `seq` (1 for the first) and the
/// hash of the record before it ([`GENESIS_HASH`] for the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: u64,
    pub previous_hash: String,
}

/// The `previous_hash` of the first sealed drill record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A drill record ready to be sealed at a [`ChainLink`]: its text (which holds the link's
/// `previous_hash`) and its sha256 hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub record: String,
    pub record_hash: String,
}

/// What [`Store::seal_drill`](super::Store::seal_drill) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// Sealed at the link asked for.
    Sealed,
    /// The chain moved on (another drill was sealed at that place): nothing changed; read the
    /// new head and seal again.
    ChainMoved,
    /// The drill was sealed before, at this link: nothing changed.
    AlreadySealed(ChainLink),
}

/// What [`Store::update_drill`](super::Store::update_drill) changes: every field is replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillChange {
    pub status: DrillStatus,
    pub state: Value,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// What [`Store::update_drill`](super::Store::update_drill) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillUpdate {
    /// Stored; the drill is now at this version.
    Updated(u64),
    /// The drill is no longer at the expected version (someone else changed it): nothing
    /// changed; read it again.
    Stale,
}

/// Which drills to list: every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrillFilter {
    pub plan: Option<DrillId>,
    pub status: Option<DrillStatus>,
}

/// A drill task to hand to the agents of `host` ([`Store::put_drill_tasks`](super::Store::put_drill_tasks)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDrillTask {
    pub host: String,
    pub task: DrillTask,
    pub created_at: Timestamp,
}

/// A stored drill task, with its report once received.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDrillTask {
    pub host: String,
    pub task: DrillTask,
    pub created_at: Timestamp,
    pub withdrawn_at: Option<Timestamp>,
    pub report: Option<DrillReport>,
    pub reported_at: Option<Timestamp>,
}

/// What [`Store::store_drill_report`](super::Store::store_drill_report) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportInsert {
    /// Stored now, and a `report` input appended for the orchestrator.
    Stored,
    /// A report of this task was stored before (the first is kept): nothing changed.
    Duplicate,
    /// No such task (or the report names another drill than the task's): nothing stored.
    UnknownTask,
    /// The task is another host's: nothing stored.
    NotYours,
    /// The task was withdrawn before any report arrived: nothing stored.
    Withdrawn,
}

/// The kind of a [`DrillInput`] appended by [`Store::store_drill_report`](super::Store::store_drill_report);
/// its detail is `{"task_id": …, "report": <DrillReport>}`.
pub const REPORT_INPUT: &str = "report";

/// Something that happened to a drill, for the orchestrator to consume in `id` order.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillInput {
    /// Store-assigned, increasing in append order.
    pub id: i64,
    pub drill_id: Uuid,
    /// `report`, `approve`, `abort`, … (the orchestrator's vocabulary; [`REPORT_INPUT`] is the
    /// store's).
    pub kind: String,
    /// Who: `agent:<uuid>`, `user:alice`.
    pub actor: String,
    pub at: Timestamp,
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_sha256_hex_and_debug_shows_a_prefix() {
        let h = TokenHash::of(&Secret::new("abc"));
        assert_eq!(
            h.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("{h:?}"), "TokenHash(ba7816bf…)");
        assert_eq!(TokenHash::from_hex(h.as_str()).ok(), Some(h));
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64)] {
            assert!(TokenHash::from_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_hash_takes_phc_strings_only() {
        assert!(PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_ok());
        for bad in ["hunter2", "$", "$$", "$argon2id", "$Argon$x"] {
            assert!(PasswordHash::new(bad).is_err(), "{bad}");
        }
        let h = PasswordHash::new("$argon2id$v=19$x").map(|h| format!("{h:?}"));
        assert_eq!(h.ok().as_deref(), Some("PasswordHash(<redacted>)"));
    }

    #[test]
    fn page_caps_its_limit() {
        assert_eq!(Page::first(5_000).sql(), (1000, 0));
        assert_eq!(Page::first(10).next().sql(), (10, 10));
    }
}
