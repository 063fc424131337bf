//! The coordinator's store: everything the coordinator keeps, behind one async interface with
//! two implementations, SQLite (the default: embedded, one file, WAL) and PostgreSQL (several
//! coordinator replicas sharing one database).
//!
//! This is the only module that names SQL or `sqlx`. It holds no business rule beyond storage:
//! it does not decide who may do what, when an alert fires or what a run means; it stores and
//! finds, atomically where the contract below says so. It never reads the clock (every time is
//! passed in) and never sees a secret: tokens arrive hashed ([`TokenHash`]), passwords as PHC
//! hashes ([`PasswordHash`]), and errors never quote the database URL.
//!
//! # Shape
//!
//! [`Store`] wraps an enum of the two connection pools; each method runs the *same* SQL text on
//! either (`$1`-style parameters work on both, `ON CONFLICT` and `RETURNING` too), through the
//! `with_pool!` macro, so the two backends cannot drift apart in behaviour. Where they must differ
//! (schema DDL, the lease) the difference is written out side by side. One conformance suite,
//! `tests/store_conformance.rs`, runs every case against both.
//!
//! # Contract
//!
//! * **Open** ([`Store::open`]): `sqlite:///var/lib/lifeboat/coordinator.db` (file created if
//!   missing, its directory must exist; `sqlite::memory:` for a private in-memory store) or
//!   `postgres://user@host/db`. Migrations (`migrations/sqlite/`, `migrations/postgres/`,
//!   embedded in the binary) are applied at open; a database written by a newer lifeboat is
//!   refused.
//! * **Unavailable database**: every call fails with [`StoreError::Unavailable`] within the
//!   acquire timeout ([`StoreOptions`]) while the database is down, and works again once it is
//!   back, without reopening the store.
//! * **Run records** are idempotent by `(agent, run_id)`: inserting the same record again is a
//!   [`RunInsert::Duplicate`], a different record under a stored key is a [`RunInsert::Conflict`]
//!   and is not stored.
//! * **Enrolment tokens** are consumed at most once, atomically with the agent's creation: of two
//!   concurrent [`Store::enrol_agent`] calls with one token, exactly one enrols.
//! * **The audit log** is append-only: there is no method to change or delete an entry, and the
//!   schema refuses `UPDATE`/`DELETE` on it (a trigger on both backends).
//! * **Leases** ([`Store::try_acquire_lease`]) make "work that must run once" exclusive among all
//!   holders of the same database: a PostgreSQL session-level advisory lock on a dedicated
//!   connection (released when the guard is dropped or its holder's connection dies), or an
//!   in-process lease for SQLite. A SQLite file belongs to one coordinator process, which opens
//!   it once and shares the [`Store`] (it is a cheap clone); two `Store`s opened on one file do
//!   not see each other's leases.
//! * **Drills** (`drills.rs`): a drill's state is opaque JSON, replaced only at the version it
//!   was read at ([`Store::update_drill`] answers [`DrillUpdate::Stale`] otherwise). A finished
//!   drill is sealed once ([`Store::seal_drill`]) at the next place of one chain, linked to the
//!   previous sealed record's hash ([`GENESIS_HASH`] for the first): of concurrent seals at one
//!   place exactly one succeeds, and a sealed record, its link and bundle never change (a
//!   trigger refuses it). A drill task is offered to its host until reported or withdrawn; its
//!   first report is kept, from its own host only, and storing it appends a `report` input in
//!   the same transaction. Drill inputs are append-only and become visible in increasing id
//!   order, so a consumer's cursor never skips one.
//!
//! # Schema (both backends; see the migrations for the DDL)
//!
//! Times are integer microseconds since the Unix epoch, UTC (sub-microsecond precision is dropped;
//! records keep their exact times in their JSON). Agent ids are UUID text.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `agents` | `id` | host, site, `token_hash` (unique), enrolled_at, version, last_heartbeat_at, clock_offset_ms, revoked_at |
//! | `enrolment_tokens` | `hash` | host, site, created_by, created_at, expires_at, used_at, used_by (agent) |
//! | `runs` | `id` (increasing); unique `(agent_id, run_key)` | seq, system, host, kind, outcome, started_at, finished_at, capture_time, received_at, `record` (the full [`RunRecord`](crate::run::RunRecord) as JSON) |
//! | `agent_heartbeats` | `agent_id` | the latest heartbeat (JSON) and when it was received |
//! | `system_status` | `system` | the latest status of each system (JSON) from the heartbeats, and its agent |
//! | `audit_log` | `id` (increasing) | at, actor, action, target, detail (JSON); append-only |
//! | `users` | `name` | password_hash (PHC), role (viewer/operator/admin), disabled, created_at |
//! | `sessions` | `token_hash` | user_name, created_at, expires_at |
//! | `api_tokens` | `hash` | user_name *or* agent_id, label, created_at, revoked_at |
//! | `alert_state` | `(rule, subject)` | state (firing/resolved), since, last_notified_at, severity and summary when last notified |
//! | `pending_commands` | `id` (increasing); unique `(host, command)` | host, command (JSON), created_by, created_at; deleted when handed out |
//! | `drills` | `id` (UUID); unique `chain_seq` | plan, status, created_by, created_at, scheduled_for, started_at, finished_at, state (JSON, the orchestrator's), version; once sealed: record (exact text), record_hash, previous_hash, chain_seq, bundle (bytes) |
//! | `drill_tasks` | `task_id` | drill_id, host, task (JSON [`DrillTask`](crate::api::DrillTask)), created_at, withdrawn_at, report (JSON [`DrillReport`](crate::api::DrillReport)), reported_at |
//! | `drill_inputs` | `id` (increasing, from the one-row `drill_input_counter`) | drill_id, kind (`report`, `approve`, …), actor, at, detail (JSON); append-only |

mod agents;
mod alerts;
mod audit;
mod backup;
mod commands;
mod drills;
mod error;
mod lease;
mod runs;
mod types;
mod users;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

pub use alerts::AlertDetails;
pub use backup::{DatabaseCopy, copy_sqlite, verify_sqlite_copy};
pub use error::StoreError;
pub use lease::LeaseGuard;
pub use types::{
    Agent, AlertState, AlertStatus, ApiToken, AuditEntry, AuditFilter, CommandQueued, Enrolment,
    EnrolmentRefusal, EnrolmentToken, NewAgent, NewAuditEntry, Page, PasswordHash, PendingCommand,
    Role, RunFilter, RunInsert, Session, StoredHeartbeat, StoredRun, StoredSystemStatus, TokenHash,
    TokenOwner, User,
};
pub use types::{
    ChainLink, DrillChange, DrillFilter, DrillInput, DrillSeal, DrillStatus, DrillUpdate,
    GENESIS_HASH, NewDrill, NewDrillTask, REPORT_INPUT, ReportInsert, Seal, SealedRecord,
    StoredDrill, StoredDrillTask,
};

/// How a store connects. The defaults suit a coordinator; tests shorten the timeouts.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (SQLite: readers and the one writer share them).
    pub max_connections: u32,
    /// How long a call waits for a connection before failing with `Unavailable` (a PostgreSQL
    /// server that is down is retried until then).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a write waits for another writer before failing with `Unavailable`.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The coordinator's store. Cheap to clone (the pools are shared); see the module docs for the
/// contract every method keeps on both backends.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite {
        pool: SqlitePool,
        /// Names of the leases held in this process (a SQLite file has one coordinator process).
        leases: Arc<Mutex<HashSet<String>>>,
        /// Held by each write (`with_writer!`): SQLite takes one writer at a time, and writers
        /// queued here are served in arrival order as soon as the previous one commits, where
        /// writers left to SQLite's busy handler poll with sleeps of up to 100 ms.
        writer: Arc<tokio::sync::Mutex<()>>,
    },
    Postgres {
        pool: PgPool,
        /// For the dedicated connection each lease holds.
        connect: Box<PgConnectOptions>,
        acquire_timeout: Duration,
    },
}

/// Runs `$body` with `$pool` bound to whichever pool the store has. The body is compiled once
/// per backend, so the same SQL text and the same conversions serve both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::coordinator::store::Backend::Sqlite { pool: $pool, .. } => $body,
            $crate::coordinator::store::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}
pub(crate) use with_pool;

/// Like [`with_pool!`], for a body that writes. On SQLite the body runs under the store's
/// writer lock (see `Backend::Sqlite`), on any connection of the pool, so that reads never wait
/// for writes. The body must not call another writing method of the store (it would wait for
/// itself). Measured with 10,000 simulated agents: a single writer *connection* made heartbeats
/// slower (p50 4.6 ms → 296 ms), as reads then queued behind writes too.
macro_rules! with_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::coordinator::store::Backend::Sqlite {
                pool: $pool,
                writer,
                ..
            } => {
                let _writing = writer.lock().await;
                $body
            }
            $crate::coordinator::store::Backend::Postgres { pool: $pool, .. } => $body,
        }
    };
}
pub(crate) use with_writer;

impl fmt::Debug for Store {
    /// Names the backend only: the URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Store({})", self.backend_name())
    }
}

impl Store {
    /// Opens (creating if needed) the store at `url` with default options and applies pending
    /// migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// Like [`Store::open`], with explicit options.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Store::open_sqlite(url, options).await,
            "postgres" | "postgresql" => Store::open_postgres(url, options).await,
            _ => Err(StoreError::Invalid(format!(
                "unsupported database URL scheme {scheme:?}: use sqlite:///path/to/coordinator.db \
                 or postgres://user@host/database"
            ))),
        }
    }

    async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("malformed sqlite: URL".into()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        if in_memory {
            // Every connection to `:memory:` is a database of its own: keep exactly one, forever.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let filename = connect.get_filename().display().to_string();
        let pool = pool.connect_with(connect).await.map_err(|e| match StoreError::from(e) {
            StoreError::Unavailable(m) | StoreError::Other(m) => StoreError::Unavailable(format!(
                "cannot open SQLite database {filename} (does its directory exist and is it \
                 writable?): {m}"
            )),
            other => other,
        })?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store {
            backend: Backend::Sqlite {
                pool,
                leases: Arc::default(),
                writer: Arc::default(),
            },
        })
    }

    async fn open_postgres(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("malformed postgres:// URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Store {
            backend: Backend::Postgres {
                pool,
                connect: Box::new(connect),
                acquire_timeout: options.acquire_timeout,
            },
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// One round trip to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection; later calls fail with `Unavailable`. Leases already handed out
    /// keep their own connection until dropped.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions shared by both backends (columns are the same types on both).

/// A time as stored: microseconds since the Unix epoch.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us)
        .map_err(|_| StoreError::corrupt(format!("time {us}µs is out of range")))
}

pub(crate) fn opt_from_micros(us: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    us.map(from_micros).transpose()
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::corrupt(format!("agent id {s:?} is not a UUID")))
}

pub(crate) fn stored_hash(s: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_hex(s).map_err(|_| StoreError::corrupt("a stored token hash is malformed"))
}
