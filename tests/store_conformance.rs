//! The coordinator store's conformance suite: every case runs against SQLite and against a
//! throw-away PostgreSQL server (`tests/common/postgres.rs`), and both must behave the same.
//! A few cases at the end are about one backend's own mechanism (PostgreSQL advisory locks dying
//! with their connection, a closed port).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use lifeboat::api::{
    Command, CommandResult, DrillReport, DrillTask, Heartbeat, SpoolStatus, SystemStatus,
    TaskAction,
};
use lifeboat::coordinator::store::{
    Agent, AlertState, AlertStatus, ApiToken, AuditFilter, CommandQueued, Enrolment,
    EnrolmentRefusal, EnrolmentToken, NewAgent, NewAuditEntry, Page, PasswordHash, Role, RunFilter,
    RunInsert, Session, Store, StoreError, StoreOptions, TokenHash, TokenOwner, User,
};
use lifeboat::coordinator::store::{
    ChainLink, DrillChange, DrillFilter, DrillStatus, DrillUpdate, GENESIS_HASH, NewDrill,
    NewDrillTask, REPORT_INPUT, ReportInsert, Seal, SealedRecord,
};
use lifeboat::run::{Outcome, RunKind, RunRecord};
use lifeboat::secret::Secret;
use serde_json::json;
use sqlx::{Connection, Executor, Row};
use uuid::Uuid;

use common::postgres::Postgres;

// ---------------------------------------------------------------------------------------------
// Harness

/// A store under test and the database behind it.
struct Harness {
    store: Store,
    url: String,
    db: Db,
}

enum Db {
    Sqlite {
        dir: tempfile::TempDir,
        /// A connection holding the write lock while an "outage" lasts.
        locker: Option<sqlx::SqliteConnection>,
    },
    Postgres(Postgres),
}

fn options() -> StoreOptions {
    StoreOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(2),
        busy_timeout: Duration::from_millis(500),
    }
}

impl Harness {
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("coordinator.db").display());
        let store = Store::open_with(&url, &options()).await.unwrap();
        Harness {
            store,
            url,
            db: Db::Sqlite { dir, locker: None },
        }
    }

    async fn postgres() -> Harness {
        let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
        let url = pg.url();
        let store = Store::open_with(&url, &options()).await.unwrap();
        Harness {
            store,
            url,
            db: Db::Postgres(pg),
        }
    }

    /// Another handle on the same database, as a second coordinator replica would have. A
    /// SQLite file belongs to one process, which shares one store (a clone).
    async fn replica(&self) -> Store {
        match self.db {
            Db::Sqlite { .. } => self.store.clone(),
            Db::Postgres(_) => Store::open_with(&self.url, &options()).await.unwrap(),
        }
    }

    /// Makes the database unavailable: PostgreSQL is stopped, a SQLite file is write-locked by
    /// another connection for longer than the busy timeout.
    async fn outage_begin(&mut self) {
        match &mut self.db {
            Db::Sqlite { locker, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                *locker = Some(conn);
            }
            Db::Postgres(pg) => pg.stop(),
        }
    }

    async fn outage_end(&mut self) {
        match &mut self.db {
            Db::Sqlite { locker, .. } => {
                let mut conn = locker.take().unwrap();
                conn.execute("ROLLBACK").await.unwrap();
                conn.close().await.unwrap();
            }
            Db::Postgres(pg) => pg.restart(),
        }
    }

    /// Runs raw SQL on a connection of its own (bypassing the store); the error text if any.
    async fn raw_execute(&self, sql: &str) -> Result<u64, String> {
        match self.db {
            Db::Sqlite { .. } => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                c.execute(sql)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
            Db::Postgres(_) => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                c.execute(sql)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Everything stored, as text: the SQLite files' bytes (database and WAL), or every row of
    /// every PostgreSQL table as text.
    async fn everything_stored(&self) -> String {
        match &self.db {
            Db::Sqlite { dir, .. } => {
                let mut all = Vec::new();
                for entry in std::fs::read_dir(dir.path()).unwrap() {
                    all.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                String::from_utf8_lossy(&all).into_owned()
            }
            Db::Postgres(_) => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public'",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                assert!(tables.len() >= 10, "{tables:?}");
                let mut all = String::new();
                for t in tables {
                    let rows = sqlx::query(&format!("SELECT t::text FROM \"{t}\" t"))
                        .fetch_all(&mut c)
                        .await
                        .unwrap();
                    for r in rows {
                        all.push_str(&r.get::<String, _>(0));
                        all.push('\n');
                    }
                }
                all
            }
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }
}

/// Declares each case once per backend: `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Harness::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Harness::postgres().await).await;
                }
            )*
        }
    };
}

conformance!(
    opens_with_migrations_once_and_keeps_data,
    run_insert_is_idempotent_per_agent,
    run_batches_answer_per_record_in_one_transaction,
    runs_are_ordered_and_paged,
    enrolment_token_is_consumed_exactly_once,
    enrolment_refusals,
    agent_lookup_by_token_hash_and_revocation,
    heartbeat_updates_agent_and_system_status,
    audit_log_is_append_only_and_ordered,
    alert_state_upserts,
    alert_details_are_kept_until_replaced,
    latest_heartbeats_of_every_unrevoked_agent_in_one_query,
    users_sessions_and_api_tokens,
    lease_is_exclusive_until_dropped,
    unavailable_database_then_recovery_without_reopening,
    secrets_are_never_stored_in_clear,
    runs_are_listed_newest_first_filtered_and_keyset_paged,
    commands_are_queued_for_enrolled_hosts_and_handed_out_once,
    drills_are_listed_newest_first_and_updated_at_their_version,
    drill_tasks_are_idempotent_and_open_per_host_until_reported_or_withdrawn,
    drill_reports_are_kept_once_and_only_from_the_tasks_host,
    drill_inputs_are_append_only_and_read_in_order_after_a_cursor,
    drill_records_are_sealed_once_in_one_hash_chain,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const T0: &str = "2026-03-01T00:00:00Z";

fn t0_plus(minutes: i64) -> Timestamp {
    ts(T0) + SignedDuration::from_mins(minutes)
}

fn hash(token: &str) -> TokenHash {
    TokenHash::of(&Secret::new(token))
}

fn enrolment_token(token: &str, host: &str) -> EnrolmentToken {
    EnrolmentToken {
        hash: hash(token),
        host: host.into(),
        site: "linfen".into(),
        created_by: "user:alice".into(),
        created_at: ts(T0),
        expires_at: t0_plus(60),
        used_at: None,
        used_by: None,
    }
}

/// Issues an enrolment token for `host` and enrols an agent with agent token `agent_token`.
async fn enrolled(store: &Store, host: &str, agent_token: &str) -> Agent {
    let enrol = format!("enrol-{host}-{agent_token}");
    store
        .create_enrolment_token(&enrolment_token(&enrol, host))
        .await
        .unwrap();
    let new = NewAgent {
        id: Uuid::new_v4(),
        token_hash: hash(agent_token),
        version: "0.1.0".into(),
    };
    match store
        .enrol_agent(&hash(&enrol), &new, t0_plus(1))
        .await
        .unwrap()
    {
        Enrolment::Enrolled(agent) => agent,
        other => panic!("enrolment refused: {other:?}"),
    }
}

fn record(run_id: &str, system: &str, started_min: i64, finished_min: i64) -> RunRecord {
    let mut r = RunRecord::start(
        RunKind::Backup,
        run_id.into(),
        "lf-srv-01".into(),
        t0_plus(started_min),
    );
    r.system = Some(system.into());
    r.finished_at = t0_plus(finished_min);
    r.capture_time = Some(t0_plus(started_min));
    r.outcome = Outcome::Success;
    r
}

fn phc(s: &str) -> PasswordHash {
    PasswordHash::new(format!("$argon2id$v=19$m=19456,t=2,p=1${s}")).unwrap()
}

fn run_ids(runs: &[lifeboat::coordinator::store::StoredRun]) -> Vec<&str> {
    runs.iter().map(|r| r.record.run_id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn opens_with_migrations_once_and_keeps_data(h: Harness) {
    let agent = enrolled(&h.store, "lf-srv-01", "agent-token-1").await;
    h.store.close().await;
    // Reopening applies no migration twice and finds what was stored.
    let again = Store::open_with(&h.url, &options()).await.unwrap();
    assert_eq!(again.agent(agent.id).await.unwrap(), Some(agent));
    again.ping().await.unwrap();
    assert_eq!(
        again.backend_name(),
        if h.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    if !h.is_postgres() {
        let mode = h.raw_execute("PRAGMA journal_mode").await;
        assert!(mode.is_ok(), "{mode:?}");
        let mut c = sqlx::SqliteConnection::connect(&h.url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

async fn run_insert_is_idempotent_per_agent(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "token-a").await;
    let b = enrolled(s, "lf-srv-02", "token-b").await;
    let r = record("run-1", "linfen-finance", 0, 10);
    let at = t0_plus(11);

    assert_eq!(
        s.insert_run(a.id, 1, &r, at).await.unwrap(),
        RunInsert::Inserted
    );
    assert_eq!(
        s.insert_run(a.id, 1, &r, at).await.unwrap(),
        RunInsert::Duplicate
    );
    // Resent later, with another spool position: still the same record.
    assert_eq!(
        s.insert_run(a.id, 7, &r, t0_plus(30)).await.unwrap(),
        RunInsert::Duplicate
    );

    let mut changed = r.clone();
    changed.outcome = Outcome::Failed;
    assert_eq!(
        s.insert_run(a.id, 2, &changed, at).await.unwrap(),
        RunInsert::Conflict
    );
    let stored = s
        .runs_of_system("linfen-finance", Page::first(10))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].record, r,
        "a conflicting record must not replace the stored one"
    );
    assert_eq!((stored[0].agent_id, stored[0].seq), (a.id, 1));
    assert_eq!(stored[0].received_at, at);

    // The key is per agent: another agent's run_id may repeat.
    assert_eq!(
        s.insert_run(b.id, 1, &r, at).await.unwrap(),
        RunInsert::Inserted
    );
    assert_eq!(s.count_runs(None).await.unwrap(), 2);

    let unknown = s
        .insert_run(Uuid::new_v4(), 1, &record("x", "s", 0, 1), at)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    let too_big = s
        .insert_run(a.id, u64::MAX, &record("y", "s", 0, 1), at)
        .await;
    assert!(
        matches!(too_big, Err(StoreError::Invalid(_))),
        "{too_big:?}"
    );
    assert_eq!(s.count_runs(None).await.unwrap(), 2);
}

async fn run_batches_answer_per_record_in_one_transaction(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "token-a").await;
    let r1 = record("run-1", "linfen-finance", 0, 10);
    let r2 = record("run-2", "linfen-finance", 10, 20);
    let at = t0_plus(21);
    assert_eq!(
        s.insert_runs(a.id, &[(1, &r1)], at).await.unwrap(),
        vec![RunInsert::Inserted]
    );
    let mut changed = r1.clone();
    changed.outcome = Outcome::Failed;
    let r3 = record("run-3", "linfen-finance", 20, 30);
    // A duplicate, a new record, a conflict and another new one, answered in order.
    let answers = s
        .insert_runs(a.id, &[(1, &r1), (2, &r2), (3, &changed), (4, &r3)], at)
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            RunInsert::Duplicate,
            RunInsert::Inserted,
            RunInsert::Conflict,
            RunInsert::Inserted
        ]
    );
    assert_eq!(s.count_runs(None).await.unwrap(), 3);
    // A batch that fails part-way stores nothing of it.
    let r4 = record("run-4", "linfen-finance", 30, 40);
    let failed = s
        .insert_runs(
            a.id,
            &[(5, &r4), (u64::MAX, &record("run-5", "s", 0, 1))],
            at,
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Invalid(_))), "{failed:?}");
    assert_eq!(s.count_runs(None).await.unwrap(), 3);
    let unknown = s.insert_runs(Uuid::new_v4(), &[(1, &r4)], at).await;
    assert!(unknown.is_err(), "{unknown:?}");
    assert_eq!(s.count_runs(None).await.unwrap(), 3);
    assert!(s.insert_runs(a.id, &[], at).await.unwrap().is_empty());
}

async fn runs_are_ordered_and_paged(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "token-a").await;
    // Inserted out of order; two share a start time (then insertion order breaks the tie).
    let starts = [
        (3, "r3"),
        (1, "r1"),
        (5, "r5a"),
        (5, "r5b"),
        (2, "r2"),
        (4, "r4"),
        (6, "r6"),
    ];
    for (seq, (start, id)) in starts.iter().enumerate() {
        let rec = record(id, "sys-a", start * 60, start * 60 + 30);
        let got = s
            .insert_run(a.id, seq as u64, &rec, t0_plus(1000))
            .await
            .unwrap();
        assert_eq!(got, RunInsert::Inserted);
    }
    s.insert_run(a.id, 100, &record("other", "sys-b", 0, 400), t0_plus(1000))
        .await
        .unwrap();

    let p1 = s.runs_of_system("sys-a", Page::first(3)).await.unwrap();
    let p2 = s
        .runs_of_system("sys-a", Page::first(3).next())
        .await
        .unwrap();
    let p3 = s
        .runs_of_system("sys-a", Page::first(3).next().next())
        .await
        .unwrap();
    assert_eq!(run_ids(&p1), ["r6", "r5b", "r5a"]);
    assert_eq!(run_ids(&p2), ["r4", "r3", "r2"]);
    assert_eq!(run_ids(&p3), ["r1"]);
    assert!(
        s.runs_of_system("nothing", Page::first(3))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(s.count_runs(Some("sys-a")).await.unwrap(), 7);
    assert_eq!(s.count_runs(Some("sys-b")).await.unwrap(), 1);
    assert_eq!(s.count_runs(None).await.unwrap(), 8);

    // Finished at or after 04:30: r4 (04:30), r5a, r5b (05:30), r6 (06:30), oldest first;
    // sys-b's run finished at 06:40.
    let since = s.runs_since(t0_plus(4 * 60 + 30)).await.unwrap();
    assert_eq!(run_ids(&since), ["r4", "r5a", "r5b", "r6", "other"]);

    let first = s.runs_after(0, 4).await.unwrap();
    assert_eq!(run_ids(&first), ["r3", "r1", "r5a", "r5b"]);
    let rest = s.runs_after(first[3].id, 100).await.unwrap();
    assert_eq!(run_ids(&rest), ["r2", "r4", "r6", "other"]);
}

async fn runs_are_listed_newest_first_filtered_and_keyset_paged(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "token-a").await;
    // (start minute, id, system, kind, outcome); two share a start (store id breaks the tie).
    let rows = [
        (10, "b1", "sys-a", RunKind::Backup, Outcome::Success),
        (20, "c1", "sys-a", RunKind::Copy, Outcome::Failed),
        (30, "b2", "sys-b", RunKind::Backup, Outcome::Success),
        (30, "b3", "sys-a", RunKind::Backup, Outcome::Partial),
        (40, "k1", "sys-a", RunKind::Check, Outcome::Success),
    ];
    for (seq, (start, id, system, kind, outcome)) in rows.iter().enumerate() {
        let mut r = record(id, system, *start, start + 5);
        r.kind = *kind;
        r.outcome = *outcome;
        s.insert_run(a.id, seq as u64, &r, t0_plus(100))
            .await
            .unwrap();
    }
    let list = |filter: RunFilter, after: Option<i64>, limit: u32| {
        let filter = filter.clone();
        async move { s.list_runs(&filter, after, limit).await.unwrap() }
    };
    let all = list(RunFilter::default(), None, 100).await;
    assert_eq!(run_ids(&all), ["k1", "b3", "b2", "c1", "b1"]);
    // Keyset pages of two, each after the last id of the one before.
    let p1 = list(RunFilter::default(), None, 2).await;
    let p2 = list(RunFilter::default(), Some(p1[1].id), 2).await;
    let p3 = list(RunFilter::default(), Some(p2[1].id), 2).await;
    assert_eq!(
        (run_ids(&p1), run_ids(&p2), run_ids(&p3)),
        (vec!["k1", "b3"], vec!["b2", "c1"], vec!["b1"])
    );
    // A run inserted meanwhile does not shift the pages that follow.
    s.insert_run(a.id, 9, &record("new", "sys-a", 50, 55), t0_plus(100))
        .await
        .unwrap();
    assert_eq!(
        run_ids(&list(RunFilter::default(), Some(p1[1].id), 2).await),
        ["b2", "c1"]
    );
    assert!(
        list(RunFilter::default(), Some(i64::MAX), 2)
            .await
            .is_empty()
    );

    let sys_a = RunFilter {
        system: Some("sys-a".into()),
        ..RunFilter::default()
    };
    assert_eq!(
        run_ids(&list(sys_a.clone(), None, 100).await),
        ["new", "k1", "b3", "c1", "b1"]
    );
    let backups = RunFilter {
        kind: Some(RunKind::Backup),
        ..sys_a.clone()
    };
    assert_eq!(
        run_ids(&list(backups, None, 100).await),
        ["new", "b3", "b1"]
    );
    let failed = RunFilter {
        outcome: Some(Outcome::Failed),
        ..RunFilter::default()
    };
    assert_eq!(run_ids(&list(failed, None, 100).await), ["c1"]);
    // since inclusive, until exclusive, on started_at.
    let window = RunFilter {
        since: Some(t0_plus(20)),
        until: Some(t0_plus(40)),
        ..RunFilter::default()
    };
    assert_eq!(run_ids(&list(window, None, 100).await), ["b3", "b2", "c1"]);
    let host = RunFilter {
        host: Some("elsewhere".into()),
        ..RunFilter::default()
    };
    assert!(list(host, None, 100).await.is_empty());
}

async fn commands_are_queued_for_enrolled_hosts_and_handed_out_once(h: Harness) {
    let s = &h.store;
    let backup = |system: &str| Command::BackupNow {
        system: system.parse().unwrap(),
    };
    // Nobody is enrolled on the host: nothing is stored.
    let got = s
        .queue_command("lf-srv-01", &backup("fin"), "user:op", t0_plus(1))
        .await
        .unwrap();
    assert_eq!(got, CommandQueued::NoAgent);
    assert!(s.pending_commands("lf-srv-01").await.unwrap().is_empty());

    let a = enrolled(s, "lf-srv-01", "token-a").await;
    let first = s
        .queue_command("lf-srv-01", &backup("fin"), "user:op", t0_plus(2))
        .await
        .unwrap();
    assert!(matches!(first, CommandQueued::Queued(_)), "{first:?}");
    // The same command again waits once.
    let again = s
        .queue_command("lf-srv-01", &backup("fin"), "user:other", t0_plus(3))
        .await
        .unwrap();
    assert_eq!(again, CommandQueued::AlreadyQueued);
    let second = s
        .queue_command("lf-srv-01", &backup("hr"), "user:op", t0_plus(4))
        .await
        .unwrap();
    assert!(matches!(second, CommandQueued::Queued(_)), "{second:?}");
    let pending = s.pending_commands("lf-srv-01").await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(
        (pending[0].created_by.as_str(), pending[0].created_at),
        ("user:op", t0_plus(2))
    );

    // Taken once, oldest first; then gone. Another host's queue is its own.
    assert!(s.take_commands("lf-srv-02").await.unwrap().is_empty());
    let taken = s.take_commands("lf-srv-01").await.unwrap();
    let commands: Vec<Command> = taken.iter().map(|c| c.command.clone()).collect();
    assert_eq!(commands, [backup("fin"), backup("hr")]);
    assert!(s.take_commands("lf-srv-01").await.unwrap().is_empty());
    // Delivered: the same command may be queued again.
    let third = s
        .queue_command("lf-srv-01", &backup("fin"), "user:op", t0_plus(5))
        .await
        .unwrap();
    assert!(matches!(third, CommandQueued::Queued(_)), "{third:?}");

    // Of concurrent heartbeats of one host, exactly one gets it.
    let takers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.take_commands("lf-srv-01").await.unwrap().len() })
        })
        .collect();
    let mut handed = 0;
    for t in takers {
        handed += t.await.unwrap();
    }
    assert_eq!(handed, 1);

    // A revoked agent's host gets no command.
    s.revoke_agent(a.id, t0_plus(6)).await.unwrap();
    let refused = s
        .queue_command("lf-srv-01", &backup("fin"), "user:op", t0_plus(7))
        .await
        .unwrap();
    assert_eq!(refused, CommandQueued::NoAgent);
    assert!(s.pending_commands("lf-srv-01").await.unwrap().is_empty());
}

async fn enrolment_token_is_consumed_exactly_once(h: Harness) {
    let s = &h.store;
    s.create_enrolment_token(&enrolment_token("one-time", "lf-srv-09"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = s.clone();
        tasks.push(tokio::spawn(async move {
            let new = NewAgent {
                id: Uuid::new_v4(),
                token_hash: hash(&format!("agent-{i}")),
                version: "0.1.0".into(),
            };
            store.enrol_agent(&hash("one-time"), &new, t0_plus(5)).await
        }));
    }
    let mut winners = Vec::new();
    let mut refusals = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Enrolment::Enrolled(agent) => winners.push(agent),
            Enrolment::Refused(why) => refusals.push(why),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one enrolment wins: {winners:?}");
    assert_eq!(refusals, vec![EnrolmentRefusal::AlreadyUsed; 7]);
    let agent = &winners[0];
    assert_eq!(
        (agent.host.as_str(), agent.site.as_str()),
        ("lf-srv-09", "linfen")
    );
    assert_eq!(agent.enrolled_at, t0_plus(5));
    let agents = s.list_agents(Page::default()).await.unwrap();
    assert_eq!(agents, vec![agent.clone()]);
    let token = s.enrolment_token(&hash("one-time")).await.unwrap().unwrap();
    assert_eq!(
        (token.used_at, token.used_by),
        (Some(t0_plus(5)), Some(agent.id))
    );
}

async fn enrolment_refusals(h: Harness) {
    let s = &h.store;
    let new = |token: &str| NewAgent {
        id: Uuid::new_v4(),
        token_hash: hash(token),
        version: "0.1.0".into(),
    };
    let refused = |e: Enrolment| match e {
        Enrolment::Refused(why) => why,
        Enrolment::Enrolled(a) => panic!("enrolled {a:?}"),
    };
    let unknown = s
        .enrol_agent(&hash("nope"), &new("a1"), t0_plus(1))
        .await
        .unwrap();
    assert_eq!(refused(unknown), EnrolmentRefusal::Unknown);

    s.create_enrolment_token(&enrolment_token("short-lived", "h1"))
        .await
        .unwrap();
    // expires_at is T0+60 min, exclusive.
    let late = s
        .enrol_agent(&hash("short-lived"), &new("a2"), t0_plus(60))
        .await
        .unwrap();
    assert_eq!(refused(late), EnrolmentRefusal::Expired);
    let dup = s
        .create_enrolment_token(&enrolment_token("short-lived", "h1"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    // An agent token hash already in use: the enrolment fails and the token stays unused.
    let first = enrolled(s, "h2", "taken").await;
    s.create_enrolment_token(&enrolment_token("fresh", "h3"))
        .await
        .unwrap();
    let clash = s
        .enrol_agent(&hash("fresh"), &new("taken"), t0_plus(2))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    let token = s.enrolment_token(&hash("fresh")).await.unwrap().unwrap();
    assert_eq!(token.used_at, None);
    assert!(matches!(
        s.enrol_agent(&hash("fresh"), &new("new-one"), t0_plus(3))
            .await
            .unwrap(),
        Enrolment::Enrolled(_)
    ));
    assert_eq!(s.list_agents(Page::default()).await.unwrap().len(), 2);
    assert_eq!(s.agent(first.id).await.unwrap().unwrap().host, "h2");
}

async fn agent_lookup_by_token_hash_and_revocation(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "secret-agent-token").await;
    let b = enrolled(s, "lf-srv-02", "other-token").await;
    let found = s.agent_by_token(&hash("secret-agent-token")).await.unwrap();
    assert_eq!(found.as_ref(), Some(&a));
    assert!(!a.is_revoked());
    assert_eq!(s.agent_by_token(&hash("wrong")).await.unwrap(), None);

    s.revoke_agent(a.id, t0_plus(9)).await.unwrap();
    // Revoking twice keeps the first time.
    s.revoke_agent(a.id, t0_plus(20)).await.unwrap();
    let revoked = s
        .agent_by_token(&hash("secret-agent-token"))
        .await
        .unwrap()
        .unwrap();
    assert!(revoked.is_revoked());
    assert_eq!(revoked.revoked_at, Some(t0_plus(9)));
    assert!(!s.agent(b.id).await.unwrap().unwrap().is_revoked());
    let unknown = s.revoke_agent(Uuid::new_v4(), t0_plus(9)).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );

    // Listing: by host.
    let hosts: Vec<String> = s
        .list_agents(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.host)
        .collect();
    assert_eq!(hosts, ["lf-srv-01", "lf-srv-02"]);
    assert_eq!(
        s.list_agents(Page {
            offset: 1,
            limit: 5
        })
        .await
        .unwrap()
        .len(),
        1
    );
}

async fn heartbeat_updates_agent_and_system_status(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-01", "token-a").await;
    let b = enrolled(s, "lf-srv-02", "token-b").await;
    let status = |system: &str, lag: u64| SystemStatus {
        system: system.parse().unwrap(),
        last_backup: None,
        last_success: Some(t0_plus(3)),
        offsite_lag_seconds: Some(lag),
        next_run: None,
        running: None,
    };
    let hb = |version: &str, systems: Vec<SystemStatus>| Heartbeat {
        drill_tasks_running: Vec::new(),
        host: "lf-srv-01".into(),
        version: version.into(),
        sent_at: t0_plus(10),
        spool: SpoolStatus {
            depth: 3,
            ..SpoolStatus::default()
        },
        assignment_digest: Some("ab12".into()),
        systems,
    };
    assert_eq!(s.latest_heartbeat(a.id).await.unwrap(), None);
    let first = hb(
        "0.1.0",
        vec![status("linfen-finance", 60), status("linfen-hr", 0)],
    );
    s.record_heartbeat(
        a.id,
        t0_plus(10),
        SignedDuration::from_millis(-1500),
        &first,
    )
    .await
    .unwrap();
    let second = hb("0.2.0", vec![status("linfen-finance", 120)]);
    s.record_heartbeat(a.id, t0_plus(11), SignedDuration::from_secs(2), &second)
        .await
        .unwrap();
    // Another agent now reports linfen-hr (the system moved host): the latest report wins.
    s.record_heartbeat(
        b.id,
        t0_plus(12),
        SignedDuration::ZERO,
        &hb("0.2.0", vec![status("linfen-hr", 5)]),
    )
    .await
    .unwrap();

    let latest = s.latest_heartbeat(a.id).await.unwrap().unwrap();
    assert_eq!(latest.heartbeat, second);
    assert_eq!(latest.received_at, t0_plus(11));
    let agent = s.agent(a.id).await.unwrap().unwrap();
    assert_eq!(agent.last_heartbeat_at, Some(t0_plus(11)));
    assert_eq!(agent.version, "0.2.0");
    assert_eq!(agent.clock_offset, Some(SignedDuration::from_secs(2)));

    let systems = s.system_statuses().await.unwrap();
    let view: Vec<(&str, Uuid, Option<u64>, Timestamp)> = systems
        .iter()
        .map(|x| {
            (
                x.system.as_str(),
                x.agent_id,
                x.status.offsite_lag_seconds,
                x.reported_at,
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("linfen-finance", a.id, Some(120), t0_plus(11)),
            ("linfen-hr", b.id, Some(5), t0_plus(12)),
        ]
    );

    let unknown = s
        .record_heartbeat(Uuid::new_v4(), t0_plus(1), SignedDuration::ZERO, &first)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

async fn audit_log_is_append_only_and_ordered(h: Harness) {
    let s = &h.store;
    let entry = |min: i64, actor: &str, action: &str, target: &str| NewAuditEntry {
        at: t0_plus(min),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail: json!({"n": min, "nested": {"ok": true}}),
    };
    let mut ids = Vec::new();
    for (i, (actor, action)) in [
        ("user:alice", "login"),
        ("user:bob", "policy.update"),
        ("user:alice", "token.create"),
        ("agent:x", "run.submit"),
        ("user:alice", "login"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(
            s.append_audit(&entry(i as i64, actor, action, "t"))
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let all = s
        .list_audit(&AuditFilter::default(), Page::default())
        .await
        .unwrap();
    let got: Vec<i64> = all.iter().map(|e| e.id).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(got, newest_first);
    assert_eq!(all[4].detail, json!({"n": 0, "nested": {"ok": true}}));
    assert_eq!(
        (all[4].at, all[4].actor.as_str()),
        (t0_plus(0), "user:alice")
    );

    let alice = AuditFilter {
        actor: Some("user:alice".into()),
        ..AuditFilter::default()
    };
    let page1 = s.list_audit(&alice, Page::first(2)).await.unwrap();
    let page2 = s.list_audit(&alice, Page::first(2).next()).await.unwrap();
    assert_eq!(
        page1.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[4], ids[2]]
    );
    assert_eq!(page2.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);
    let window = AuditFilter {
        action: Some("login".into()),
        since: Some(t0_plus(1)),
        until: Some(t0_plus(5)),
        ..AuditFilter::default()
    };
    let logins = s.list_audit(&window, Page::default()).await.unwrap();
    assert_eq!(logins.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[4]]);

    // Not even raw SQL can rewrite the log.
    for sql in [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
    ] {
        let err = h.raw_execute(sql).await.unwrap_err();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        s.list_audit(&AuditFilter::default(), Page::default())
            .await
            .unwrap(),
        all
    );
}

async fn alert_state_upserts(h: Harness) {
    let s = &h.store;
    assert_eq!(
        s.alert_state("rpo-breach", "linfen-finance").await.unwrap(),
        None
    );
    let firing = AlertState {
        rule: "rpo-breach".into(),
        subject: "linfen-finance".into(),
        state: AlertStatus::Firing,
        since: t0_plus(5),
        last_notified_at: None,
    };
    s.upsert_alert_state(&firing).await.unwrap();
    assert_eq!(
        s.alert_state("rpo-breach", "linfen-finance").await.unwrap(),
        Some(firing.clone())
    );
    let notified = AlertState {
        last_notified_at: Some(t0_plus(6)),
        ..firing.clone()
    };
    s.upsert_alert_state(&notified).await.unwrap();
    let resolved = AlertState {
        state: AlertStatus::Resolved,
        since: t0_plus(30),
        ..notified.clone()
    };
    let other = AlertState {
        rule: "agent-offline".into(),
        subject: "lf-srv-01".into(),
        ..firing.clone()
    };
    s.upsert_alert_state(&resolved).await.unwrap();
    s.upsert_alert_state(&other).await.unwrap();
    assert_eq!(
        s.alert_state("rpo-breach", "linfen-finance").await.unwrap(),
        Some(resolved.clone())
    );
    assert_eq!(
        s.alert_states(None).await.unwrap(),
        [other.clone(), resolved.clone()]
    );
    assert_eq!(
        s.alert_states(Some(AlertStatus::Firing)).await.unwrap(),
        [other]
    );
    assert_eq!(
        s.alert_states(Some(AlertStatus::Resolved)).await.unwrap(),
        [resolved]
    );
}

async fn alert_details_are_kept_until_replaced(h: Harness) {
    use lifeboat::coordinator::store::AlertDetails;
    let s = &h.store;
    let firing = AlertState {
        rule: "rpo-breached".into(),
        subject: "linfen-finance/site-loss".into(),
        state: AlertStatus::Firing,
        since: t0_plus(5),
        last_notified_at: None,
    };
    let details = AlertDetails {
        severity: "critical".into(),
        summary: "linfen-finance (T1): no backup has ever been recorded".into(),
    };
    s.upsert_alert(&firing, Some(&details)).await.unwrap();
    assert_eq!(
        s.alerts_with_details(None).await.unwrap(),
        [(firing.clone(), Some(details.clone()))]
    );
    // A state without details (a resolve) keeps what the alert said.
    let resolved = AlertState {
        state: AlertStatus::Resolved,
        since: t0_plus(30),
        last_notified_at: Some(t0_plus(30)),
        ..firing.clone()
    };
    s.upsert_alert(&resolved, None).await.unwrap();
    assert_eq!(
        s.alerts_with_details(Some(AlertStatus::Resolved))
            .await
            .unwrap(),
        [(resolved.clone(), Some(details.clone()))]
    );
    assert!(
        s.alerts_with_details(Some(AlertStatus::Firing))
            .await
            .unwrap()
            .is_empty()
    );
    // New details replace the old; a state written the old way has none.
    let breached = AlertDetails {
        severity: "critical".into(),
        summary: "linfen-finance (T1): site-loss RPO of 4h breached".into(),
    };
    s.upsert_alert(&firing, Some(&breached)).await.unwrap();
    let other = AlertState {
        rule: "agent-offline".into(),
        subject: "lf-srv-01".into(),
        ..firing.clone()
    };
    s.upsert_alert_state(&other).await.unwrap();
    assert_eq!(
        s.alerts_with_details(None).await.unwrap(),
        [(other.clone(), None), (firing.clone(), Some(breached))]
    );
    assert_eq!(s.alert_states(None).await.unwrap(), [other, firing]);
}

async fn latest_heartbeats_of_every_unrevoked_agent_in_one_query(h: Harness) {
    let s = &h.store;
    let a = enrolled(s, "lf-srv-02", "token-a").await;
    let b = enrolled(s, "lf-srv-01", "token-b").await;
    let c = enrolled(s, "lf-srv-03", "token-c").await;
    let _silent = enrolled(s, "lf-srv-04", "token-d").await;
    assert!(s.latest_heartbeats().await.unwrap().is_empty());
    let hb = |host: &str, depth: u64| Heartbeat {
        drill_tasks_running: Vec::new(),
        // What the agent claims; the enrolled host is what counts.
        host: format!("claimed-{host}"),
        version: "0.1.0".into(),
        sent_at: t0_plus(10),
        spool: SpoolStatus {
            depth,
            oldest: Some(t0_plus(2)),
            ..SpoolStatus::default()
        },
        assignment_digest: None,
        systems: Vec::new(),
    };
    for (agent, depth, at) in [(&a, 1, 10), (&b, 2, 11), (&c, 3, 12), (&a, 7, 13)] {
        s.record_heartbeat(
            agent.id,
            t0_plus(at),
            SignedDuration::ZERO,
            &hb(&agent.host, depth),
        )
        .await
        .unwrap();
    }
    s.revoke_agent(c.id, t0_plus(20)).await.unwrap();
    let latest: Vec<(String, Uuid, u64, Timestamp)> = s
        .latest_heartbeats()
        .await
        .unwrap()
        .into_iter()
        .map(|(host, h)| (host, h.agent_id, h.heartbeat.spool.depth, h.received_at))
        .collect();
    assert_eq!(
        latest,
        [
            ("lf-srv-01".to_string(), b.id, 2, t0_plus(11)),
            ("lf-srv-02".to_string(), a.id, 7, t0_plus(13)),
        ]
    );
}

async fn users_sessions_and_api_tokens(h: Harness) {
    let s = &h.store;
    let alice = User {
        name: "alice".into(),
        password_hash: phc("c2FsdA$aGFzaA"),
        role: Role::Operator,
        disabled: false,
        created_at: ts(T0),
    };
    s.create_user(&alice).await.unwrap();
    let dup = s.create_user(&alice).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(s.user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user("bob").await.unwrap(), None);

    s.set_user_role("alice", Role::Admin).await.unwrap();
    s.set_user_password("alice", &phc("bmV3$bmV3"))
        .await
        .unwrap();
    let changed = s.user("alice").await.unwrap().unwrap();
    assert_eq!(
        (changed.role, changed.password_hash),
        (Role::Admin, phc("bmV3$bmV3"))
    );
    let missing = s.set_user_role("bob", Role::Viewer).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    let session = Session {
        token_hash: hash("session-token"),
        user: "alice".into(),
        created_at: t0_plus(1),
        expires_at: t0_plus(61),
    };
    s.create_session(&session).await.unwrap();
    let orphan = Session {
        user: "nobody-here".into(),
        token_hash: hash("other"),
        ..session.clone()
    };
    let orphan = s.create_session(&orphan).await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
    assert_eq!(
        s.session(&hash("session-token"), t0_plus(60))
            .await
            .unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        s.session(&hash("session-token"), t0_plus(61))
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.delete_expired_sessions(t0_plus(30)).await.unwrap(), 0);
    // Disabling a user ends their sessions.
    s.set_user_disabled("alice", true).await.unwrap();
    assert!(s.user("alice").await.unwrap().unwrap().disabled);
    assert_eq!(
        s.session(&hash("session-token"), t0_plus(2)).await.unwrap(),
        None
    );
    s.set_user_disabled("alice", false).await.unwrap();
    s.create_session(&session).await.unwrap();
    s.delete_session(&hash("session-token")).await.unwrap();
    assert_eq!(
        s.session(&hash("session-token"), t0_plus(2)).await.unwrap(),
        None
    );
    s.create_session(&session).await.unwrap();
    assert_eq!(s.delete_expired_sessions(t0_plus(61)).await.unwrap(), 1);

    let agent = enrolled(s, "lf-srv-01", "agent-token").await;
    let for_user = ApiToken {
        hash: hash("api-1"),
        owner: TokenOwner::User("alice".into()),
        label: "report script".into(),
        created_at: t0_plus(1),
        revoked_at: None,
    };
    let for_agent = ApiToken {
        hash: hash("api-2"),
        owner: TokenOwner::Agent(agent.id),
        label: "agent metrics".into(),
        created_at: t0_plus(2),
        revoked_at: None,
    };
    s.create_api_token(&for_user).await.unwrap();
    s.create_api_token(&for_agent).await.unwrap();
    assert_eq!(
        s.api_token(&hash("api-1")).await.unwrap(),
        Some(for_user.clone())
    );
    assert_eq!(s.api_token(&hash("api-3")).await.unwrap(), None);
    s.revoke_api_token(&hash("api-2"), t0_plus(3))
        .await
        .unwrap();
    let listed = s.list_api_tokens().await.unwrap();
    assert_eq!(
        listed,
        [
            for_user,
            ApiToken {
                revoked_at: Some(t0_plus(3)),
                ..for_agent
            }
        ]
    );
    let gone = s.revoke_api_token(&hash("api-3"), t0_plus(3)).await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))), "{gone:?}");
    assert_eq!(
        s.list_users()
            .await
            .unwrap()
            .iter()
            .map(|u| &u.name)
            .collect::<Vec<_>>(),
        ["alice"]
    );
}

/// Retries `try_acquire_lease` until it succeeds (a PostgreSQL server notices a closed
/// connection a moment after the client drops it).
async fn acquire_within(
    store: &Store,
    name: &str,
    limit: Duration,
) -> lifeboat::coordinator::store::LeaseGuard {
    let start = Instant::now();
    loop {
        if let Some(guard) = store.try_acquire_lease(name).await.unwrap() {
            return guard;
        }
        assert!(
            start.elapsed() < limit,
            "lease {name} not free after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lease_is_exclusive_until_dropped(h: Harness) {
    let a = &h.store;
    let b = h.replica().await;
    let mut held = a
        .try_acquire_lease("assessment-sweep")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.name(), "assessment-sweep");
    assert!(
        b.try_acquire_lease("assessment-sweep")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.try_acquire_lease("assessment-sweep")
            .await
            .unwrap()
            .is_none()
    );
    // Another name is another lease.
    let other = b.try_acquire_lease("alert-evaluation").await.unwrap();
    assert!(other.is_some());
    assert!(held.is_held().await);

    drop(held);
    let taken = acquire_within(&b, "assessment-sweep", Duration::from_secs(5)).await;
    assert!(
        a.try_acquire_lease("assessment-sweep")
            .await
            .unwrap()
            .is_none()
    );
    taken.release().await;
    // Released explicitly: free at once.
    let again = a.try_acquire_lease("assessment-sweep").await.unwrap();
    assert!(again.is_some());
}

async fn unavailable_database_then_recovery_without_reopening(mut h: Harness) {
    let entry = |n: i64| NewAuditEntry {
        at: t0_plus(n),
        actor: "user:alice".into(),
        action: "probe".into(),
        target: "store".into(),
        detail: json!({"n": n}),
    };
    h.store.append_audit(&entry(1)).await.unwrap();
    h.outage_begin().await;

    let start = Instant::now();
    let err = h.store.append_audit(&entry(2)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(err.to_string().contains("retry later"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    if h.is_postgres() {
        // Reads fail the same way when the server is gone.
        let read = h
            .store
            .list_audit(&AuditFilter::default(), Page::default())
            .await;
        assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
        let lease = h.store.try_acquire_lease("sweep").await;
        assert!(
            matches!(lease, Err(StoreError::Unavailable(_))),
            "{lease:?}"
        );
    }

    h.outage_end().await;
    // The same store recovers by itself (at most one failure on a connection broken earlier).
    let start = Instant::now();
    loop {
        match h.store.append_audit(&entry(3)).await {
            Ok(_) => break,
            Err(e) if e.is_unavailable() && start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("store did not recover: {e:?}"),
        }
    }
    let actions: Vec<i64> = h
        .store
        .list_audit(&AuditFilter::default(), Page::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.detail["n"].as_i64().unwrap())
        .collect();
    assert_eq!(actions, [3, 1], "the failed write left nothing behind");
}

async fn secrets_are_never_stored_in_clear(h: Harness) {
    let s = &h.store;
    let enrol_token = "ENROL-Secret-7f3a9c";
    let agent_token = "AGENT-Secret-51d2e8";
    let session_token = "SESSION-Secret-0b4c6a";
    let api_token = "API-Secret-93e1f7";
    s.create_enrolment_token(&enrolment_token(enrol_token, "lf-srv-01"))
        .await
        .unwrap();
    let new = NewAgent {
        id: Uuid::new_v4(),
        token_hash: TokenHash::of(&Secret::new(agent_token)),
        version: "0.1.0".into(),
    };
    let enrolled = s
        .enrol_agent(&hash(enrol_token), &new, t0_plus(1))
        .await
        .unwrap();
    assert!(matches!(enrolled, Enrolment::Enrolled(_)));
    s.create_user(&User {
        name: "alice".into(),
        password_hash: phc("c2FsdA$aGFzaA"),
        role: Role::Admin,
        disabled: false,
        created_at: ts(T0),
    })
    .await
    .unwrap();
    s.create_session(&Session {
        token_hash: hash(session_token),
        user: "alice".into(),
        created_at: ts(T0),
        expires_at: t0_plus(60),
    })
    .await
    .unwrap();
    s.create_api_token(&ApiToken {
        hash: hash(api_token),
        owner: TokenOwner::User("alice".into()),
        label: "script".into(),
        created_at: ts(T0),
        revoked_at: None,
    })
    .await
    .unwrap();
    // A password is never given to the store; one passed by mistake is refused.
    let clear = PasswordHash::new("correct horse battery staple");
    assert!(matches!(clear, Err(StoreError::Invalid(ref m)) if !m.contains("horse")));

    let stored = h.everything_stored().await;
    for secret in [enrol_token, agent_token, session_token, api_token] {
        assert!(!stored.contains(secret), "{secret} is stored in clear");
        // The grep does see the data: the hash is there.
        assert!(
            stored.contains(hash(secret).as_str()),
            "hash of {secret} not found"
        );
    }

    // Errors name neither a token nor the URL's password.
    if let Db::Postgres(pg) = &h.db {
        let url = pg.url_with_password("DbPass-Secret-44");
        let opened = Store::open_with(&url, &options()).await.unwrap();
        assert!(!format!("{opened:?}").contains("DbPass"));
        let bad = Store::open(&url.replace("postgres://", "postgres://%zz")).await;
        let text = format!(
            "{:?} {}",
            bad.as_ref().err(),
            bad.as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
        assert!(bad.is_err() && !text.contains("DbPass"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Backend-specific mechanisms

/// A replica that dies (its lease connection is cut by the server, as when its host vanishes)
/// loses the lease to another one, and learns that it lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_lease_moves_when_the_holders_connection_dies() {
    let h = Harness::postgres().await;
    let a = &h.store;
    let b = h.replica().await;
    let mut held = a
        .try_acquire_lease("drill-orchestration")
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.try_acquire_lease("drill-orchestration")
            .await
            .unwrap()
            .is_none()
    );

    let killed = h
        .raw_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted",
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "exactly the holder's session is cut");
    let mut taken = acquire_within(&b, "drill-orchestration", Duration::from_secs(5)).await;
    assert!(
        !held.is_held().await,
        "the old holder must learn it lost the lease"
    );
    assert!(!held.is_held().await, "and keep knowing it");
    assert!(taken.is_held().await);
    // The first store's pool is unaffected and still works.
    a.ping().await.unwrap();
}

/// Nothing listens: opening fails as `Unavailable` within the acquire timeout.
#[tokio::test]
async fn postgres_closed_port_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let url = format!("postgres://postgres:DbPass-Secret@127.0.0.1:{port}/lifeboat");
    let err = Store::open_with(&url, &options()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("DbPass"), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// A SQLite file in a directory that does not exist: a clear error, no panic.
#[tokio::test]
async fn sqlite_missing_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missing/coordinator.db", dir.path().display());
    let err = Store::open_with(&url, &options()).await.unwrap_err();
    assert!(
        err.to_string().contains("does its directory exist"),
        "{err}"
    );
    let bad = Store::open("mysql://localhost/x").await.unwrap_err();
    assert!(matches!(bad, StoreError::Invalid(_)), "{bad:?}");
}

// ---------------------------------------------------------------------------------------------
// Drills

fn new_drill(plan: &str, created_min: i64) -> NewDrill {
    NewDrill {
        id: Uuid::new_v4(),
        plan: plan.parse().unwrap(),
        status: DrillStatus::Running,
        created_by: "user:alice".into(),
        created_at: t0_plus(created_min),
        scheduled_for: None,
        started_at: Some(t0_plus(created_min)),
        state: json!({ "phase": "readiness", "step": 0 }),
    }
}

fn drill_task(drill: Uuid, task_id: &str, host: &str, created_min: i64) -> NewDrillTask {
    NewDrillTask {
        host: host.into(),
        created_at: t0_plus(created_min),
        task: DrillTask {
            task_id: task_id.into(),
            drill_id: drill,
            step: "health".into(),
            system: Some("fin".parse().unwrap()),
            timeout_seconds: 60,
            action: TaskAction::Command {
                argv: vec!["/bin/true".into()],
                env: Default::default(),
            },
        },
    }
}

fn drill_report(drill: Uuid, task_id: &str, host: &str, outcome: Outcome) -> DrillReport {
    DrillReport {
        task_id: task_id.into(),
        drill_id: drill,
        host: host.into(),
        started_at: t0_plus(10),
        finished_at: t0_plus(11),
        outcome,
        error: None,
        probe: None,
        restore: None,
        command: Some(CommandResult {
            exit_code: Some(0),
            output_tail: "ok".into(),
        }),
    }
}

fn open_ids(tasks: &[DrillTask]) -> Vec<&str> {
    tasks.iter().map(|t| t.task_id.as_str()).collect()
}

async fn drills_are_listed_newest_first_and_updated_at_their_version(h: Harness) {
    let s = &h.store;
    let a = new_drill("linfen-site-loss", 1);
    let b = new_drill("yuncheng-restore-test", 2);
    let mut c = new_drill("linfen-restore-test", 3);
    c.status = DrillStatus::Scheduled;
    c.scheduled_for = Some(t0_plus(60));
    c.started_at = None;
    for d in [&a, &b, &c] {
        s.insert_drill(d).await.unwrap();
    }
    assert!(matches!(
        s.insert_drill(&a).await,
        Err(StoreError::Conflict(_))
    ));
    // One drill of a plan scheduled or running at a time, whoever checked what before.
    let second = NewDrill {
        status: DrillStatus::Scheduled,
        ..new_drill("linfen-site-loss", 4)
    };
    assert!(matches!(
        s.insert_drill(&second).await,
        Err(StoreError::Conflict(_))
    ));

    let got = s.get_drill(a.id).await.unwrap().unwrap();
    assert_eq!(
        (got.plan.as_str(), got.status, got.version, &got.state),
        ("linfen-site-loss", DrillStatus::Running, 1, &a.state)
    );
    assert_eq!(
        (got.created_at, got.started_at, got.finished_at),
        (t0_plus(1), Some(t0_plus(1)), None)
    );
    assert!(got.seal.is_none());
    let got_c = s.get_drill(c.id).await.unwrap().unwrap();
    assert_eq!(
        (got_c.scheduled_for, got_c.started_at),
        (Some(t0_plus(60)), None)
    );
    assert!(s.get_drill(Uuid::new_v4()).await.unwrap().is_none());

    // Newest first, filtered, keyset paged.
    let ids = |ds: &[lifeboat::coordinator::store::StoredDrill]| {
        ds.iter().map(|d| d.id).collect::<Vec<_>>()
    };
    let all = DrillFilter::default();
    assert_eq!(
        ids(&s.list_drills(&all, None, 10).await.unwrap()),
        [c.id, b.id, a.id]
    );
    let page = s.list_drills(&all, None, 2).await.unwrap();
    assert_eq!(ids(&page), [c.id, b.id]);
    let next = s.list_drills(&all, Some(b.id), 2).await.unwrap();
    assert_eq!(ids(&next), [a.id]);
    assert!(
        s.list_drills(&all, Some(Uuid::new_v4()), 2)
            .await
            .unwrap()
            .is_empty()
    );
    let linfen = DrillFilter {
        plan: Some("linfen-site-loss".parse().unwrap()),
        status: None,
    };
    assert_eq!(
        ids(&s.list_drills(&linfen, None, 10).await.unwrap()),
        [a.id]
    );
    let scheduled = DrillFilter {
        plan: None,
        status: Some(DrillStatus::Scheduled),
    };
    assert_eq!(
        ids(&s.list_drills(&scheduled, None, 10).await.unwrap()),
        [c.id]
    );

    // Active: scheduled or running, oldest first.
    assert_eq!(ids(&s.active_drills().await.unwrap()), [a.id, b.id, c.id]);

    // Optimistic updates: at the version read, once.
    let change = DrillChange {
        status: DrillStatus::Finished,
        state: json!({ "phase": "done" }),
        started_at: Some(t0_plus(1)),
        finished_at: Some(t0_plus(90)),
    };
    assert_eq!(
        s.update_drill(a.id, 1, &change).await.unwrap(),
        DrillUpdate::Updated(2)
    );
    assert_eq!(
        s.update_drill(a.id, 1, &change).await.unwrap(),
        DrillUpdate::Stale
    );
    let got = s.get_drill(a.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.version, &got.state),
        (DrillStatus::Finished, 2, &change.state)
    );
    assert_eq!(got.finished_at, Some(t0_plus(90)));
    assert!(matches!(
        s.update_drill(Uuid::new_v4(), 1, &change).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(ids(&s.active_drills().await.unwrap()), [b.id, c.id]);
    // Once it ended, the plan may be drilled again.
    s.insert_drill(&second).await.unwrap();
    assert_eq!(
        ids(&s.list_drills(&linfen, None, 10).await.unwrap()),
        [second.id, a.id]
    );

    // Of concurrent updates from one version (two replicas), exactly one applies.
    let replica = h.replica().await;
    let racers: Vec<_> = [s.clone(), replica]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
        .map(|(i, store)| {
            let change = DrillChange {
                state: json!({ "writer": i }),
                ..change.clone()
            };
            tokio::spawn(async move { store.update_drill(b.id, 1, &change).await.unwrap() })
        })
        .collect();
    let mut applied = 0;
    for r in racers {
        if let DrillUpdate::Updated(v) = r.await.unwrap() {
            assert_eq!(v, 2);
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(s.get_drill(b.id).await.unwrap().unwrap().version, 2);
}

async fn drill_tasks_are_idempotent_and_open_per_host_until_reported_or_withdrawn(h: Harness) {
    let s = &h.store;
    let d = new_drill("linfen-site-loss", 0);
    let other = new_drill("yuncheng-restore-test", 0);
    s.insert_drill(&d).await.unwrap();
    s.insert_drill(&other).await.unwrap();
    assert!(s.hosts_with_open_drill_tasks().await.unwrap().is_empty());

    let tasks = [
        drill_task(d.id, "d.1.fin", "dt-standby-01", 1),
        drill_task(d.id, "d.1.hr", "dt-standby-01", 2),
        drill_task(d.id, "d.1.crm", "dt-standby-02", 2),
        drill_task(other.id, "o.1.fin", "yc-standby-01", 3),
    ];
    assert_eq!(s.put_drill_tasks(&tasks).await.unwrap(), 4);
    // Putting them again changes nothing, even with other content.
    let mut again = tasks.clone();
    again[0].host = "elsewhere".into();
    assert_eq!(s.put_drill_tasks(&again).await.unwrap(), 0);
    assert_eq!(
        open_ids(&s.open_drill_tasks("dt-standby-01").await.unwrap()),
        ["d.1.fin", "d.1.hr"]
    );
    assert_eq!(
        s.open_drill_tasks("dt-standby-01").await.unwrap()[0],
        tasks[0].task
    );
    assert!(s.open_drill_tasks("elsewhere").await.unwrap().is_empty());
    assert_eq!(
        s.hosts_with_open_drill_tasks().await.unwrap(),
        ["dt-standby-01", "dt-standby-02", "yc-standby-01"]
    );
    // A task of an unknown drill stores nothing (the whole batch).
    let stray = [
        drill_task(d.id, "d.2.fin", "dt-standby-01", 4),
        drill_task(Uuid::new_v4(), "x.1.fin", "dt-standby-01", 4),
    ];
    assert!(matches!(
        s.put_drill_tasks(&stray).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.open_drill_tasks("dt-standby-01").await.unwrap().len(), 2);

    // Reported: no longer open; withdrawn: no longer open.
    let report = drill_report(d.id, "d.1.fin", "dt-standby-01", Outcome::Success);
    let stored = s
        .store_drill_report("dt-standby-01", "agent:x", &report, t0_plus(12))
        .await
        .unwrap();
    assert_eq!(stored, ReportInsert::Stored);
    assert!(s.withdraw_drill_task("d.1.crm", t0_plus(13)).await.unwrap());
    assert!(!s.withdraw_drill_task("d.1.crm", t0_plus(14)).await.unwrap());
    assert!(
        !s.withdraw_drill_task("d.1.fin", t0_plus(14)).await.unwrap(),
        "reported"
    );
    assert_eq!(
        open_ids(&s.open_drill_tasks("dt-standby-01").await.unwrap()),
        ["d.1.hr"]
    );
    assert!(
        s.open_drill_tasks("dt-standby-02")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.hosts_with_open_drill_tasks().await.unwrap(),
        ["dt-standby-01", "yc-standby-01"]
    );

    // Withdrawing a drill's tasks leaves reported ones and other drills' alone.
    assert_eq!(s.withdraw_drill_tasks(d.id, t0_plus(20)).await.unwrap(), 1);
    assert!(
        s.open_drill_tasks("dt-standby-01")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.hosts_with_open_drill_tasks().await.unwrap(),
        ["yc-standby-01"]
    );
    let all = s.drill_tasks(d.id).await.unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|t| {
            (
                t.task.task_id.as_str(),
                t.report.is_some(),
                t.reported_at,
                t.withdrawn_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("d.1.fin", true, Some(t0_plus(12)), None),
            ("d.1.crm", false, None, Some(t0_plus(13))),
            ("d.1.hr", false, None, Some(t0_plus(20))),
        ]
    );
    assert_eq!(all[0].report.as_ref(), Some(&report));
    assert_eq!(all[0].host, "dt-standby-01");
}

async fn drill_reports_are_kept_once_and_only_from_the_tasks_host(h: Harness) {
    let s = &h.store;
    let d = new_drill("linfen-site-loss", 0);
    s.insert_drill(&d).await.unwrap();
    let tasks = [
        drill_task(d.id, "d.1.fin", "dt-standby-01", 1),
        drill_task(d.id, "d.1.hr", "dt-standby-01", 1),
        drill_task(d.id, "d.1.crm", "dt-standby-01", 1),
    ];
    s.put_drill_tasks(&tasks).await.unwrap();
    let ok = drill_report(d.id, "d.1.fin", "dt-standby-01", Outcome::Success);
    let report = |r: &DrillReport, host: &'static str| {
        let (s, r) = (s.clone(), r.clone());
        async move {
            s.store_drill_report(host, "agent:a", &r, t0_plus(12))
                .await
                .unwrap()
        }
    };

    // Another host's agent cannot report it; an unknown task or one of another drill is unknown.
    assert_eq!(report(&ok, "dt-standby-02").await, ReportInsert::NotYours);
    let unknown = drill_report(d.id, "d.9.fin", "dt-standby-01", Outcome::Success);
    assert_eq!(
        report(&unknown, "dt-standby-01").await,
        ReportInsert::UnknownTask
    );
    let wrong_drill = drill_report(Uuid::new_v4(), "d.1.fin", "dt-standby-01", Outcome::Success);
    assert_eq!(
        report(&wrong_drill, "dt-standby-01").await,
        ReportInsert::UnknownTask
    );
    assert!(s.drill_inputs_after(None, 0, 100).await.unwrap().is_empty());

    // The first report is kept; a second (even a different one) is a duplicate.
    assert_eq!(report(&ok, "dt-standby-01").await, ReportInsert::Stored);
    let changed = drill_report(d.id, "d.1.fin", "dt-standby-01", Outcome::Failed);
    assert_eq!(
        report(&changed, "dt-standby-01").await,
        ReportInsert::Duplicate
    );
    assert_eq!(report(&ok, "dt-standby-02").await, ReportInsert::NotYours);
    let kept = s.drill_tasks(d.id).await.unwrap();
    let fin = kept.iter().find(|t| t.task.task_id == "d.1.fin").unwrap();
    assert_eq!(fin.report.as_ref(), Some(&ok));

    // A withdrawn task's report is not stored.
    s.withdraw_drill_task("d.1.hr", t0_plus(11)).await.unwrap();
    let late = drill_report(d.id, "d.1.hr", "dt-standby-01", Outcome::Success);
    assert_eq!(
        report(&late, "dt-standby-01").await,
        ReportInsert::Withdrawn
    );

    // Exactly one `report` input, for the stored report, carrying it.
    let inputs = s.drill_inputs_after(None, 0, 100).await.unwrap();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!(
        (
            inputs[0].drill_id,
            inputs[0].kind.as_str(),
            inputs[0].actor.as_str(),
            inputs[0].at
        ),
        (d.id, REPORT_INPUT, "agent:a", t0_plus(12))
    );
    assert_eq!(inputs[0].detail["task_id"], "d.1.fin");
    let carried: DrillReport = serde_json::from_value(inputs[0].detail["report"].clone()).unwrap();
    assert_eq!(carried, ok);

    // Of concurrent deliveries of one report (two replicas), exactly one is stored.
    let replica = h.replica().await;
    let crm = drill_report(d.id, "d.1.crm", "dt-standby-01", Outcome::Success);
    let racers: Vec<_> = [s.clone(), replica]
        .into_iter()
        .cycle()
        .take(8)
        .map(|store| {
            let crm = crm.clone();
            tokio::spawn(async move {
                store
                    .store_drill_report("dt-standby-01", "agent:a", &crm, t0_plus(13))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut answers = Vec::new();
    for r in racers {
        answers.push(r.await.unwrap());
    }
    assert_eq!(
        answers
            .iter()
            .filter(|a| **a == ReportInsert::Stored)
            .count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, ReportInsert::Stored | ReportInsert::Duplicate))
    );
    assert_eq!(s.drill_inputs_after(None, 0, 100).await.unwrap().len(), 2);
}

async fn drill_inputs_are_append_only_and_read_in_order_after_a_cursor(h: Harness) {
    let s = &h.store;
    let a = new_drill("linfen-site-loss", 0);
    let b = new_drill("yuncheng-restore-test", 0);
    s.insert_drill(&a).await.unwrap();
    s.insert_drill(&b).await.unwrap();
    let mut ids = Vec::new();
    for (i, drill) in [a.id, b.id, a.id, a.id, b.id].into_iter().enumerate() {
        let kind = if i == 2 { "abort" } else { "approve" };
        let id = s
            .add_drill_input(
                drill,
                kind,
                "user:bob",
                &json!({ "n": i }),
                t0_plus(i as i64),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(matches!(
        s.add_drill_input(
            Uuid::new_v4(),
            "approve",
            "user:bob",
            &json!({}),
            t0_plus(9)
        )
        .await,
        Err(StoreError::NotFound(_))
    ));

    let n = |inputs: &[lifeboat::coordinator::store::DrillInput]| {
        inputs
            .iter()
            .map(|i| i.detail["n"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let all = s.drill_inputs_after(None, 0, 100).await.unwrap();
    assert_eq!(n(&all), [0, 1, 2, 3, 4]);
    assert_eq!(
        (
            all[2].kind.as_str(),
            all[2].actor.as_str(),
            all[2].at,
            all[2].drill_id
        ),
        ("abort", "user:bob", t0_plus(2), a.id)
    );
    // After a cursor, at most `limit`; one drill's only.
    assert_eq!(
        n(&s.drill_inputs_after(None, ids[1], 2).await.unwrap()),
        [2, 3]
    );
    assert!(
        s.drill_inputs_after(None, ids[4], 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        n(&s.drill_inputs_after(Some(a.id), 0, 10).await.unwrap()),
        [0, 2, 3]
    );
    assert_eq!(
        n(&s.drill_inputs_after(Some(b.id), ids[1], 10).await.unwrap()),
        [4]
    );

    // Append-only, on both backends.
    let changed = h
        .raw_execute("UPDATE drill_inputs SET kind = 'forged'")
        .await;
    assert!(changed.is_err(), "{changed:?}");
    let deleted = h.raw_execute("DELETE FROM drill_inputs").await;
    assert!(deleted.is_err(), "{deleted:?}");
    assert_eq!(s.drill_inputs_after(None, 0, 100).await.unwrap().len(), 5);

    // Appends from two replicas at once: every id once, and a reader following with a cursor
    // while they append sees every input, in increasing order, none skipped.
    let replica = h.replica().await;
    let writers: Vec<_> = [s.clone(), replica]
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            tokio::spawn(async move {
                for i in 0..20 {
                    store
                        .add_drill_input(
                            a.id,
                            "approve",
                            "user:bob",
                            &json!({ "n": 100 * w + i }),
                            t0_plus(30),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut cursor = ids[4];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 40 && Instant::now() < deadline {
        for input in s.drill_inputs_after(None, cursor, 7).await.unwrap() {
            assert!(input.id > cursor);
            cursor = input.id;
            seen.push(input.detail["n"].as_i64().unwrap());
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    seen.sort_unstable();
    let expected: Vec<i64> = (0..20).chain(100..120).collect();
    assert_eq!(seen, expected);
}

fn sealed_record(drill: Uuid, link: &ChainLink) -> SealedRecord {
    use sha2::Digest;
    let record =
        json!({ "drill": drill, "seq": link.seq, "previous_hash": link.previous_hash }).to_string();
    let record_hash = hex::encode(sha2::Sha256::digest(record.as_bytes()));
    SealedRecord {
        record,
        record_hash,
    }
}

async fn drill_records_are_sealed_once_in_one_hash_chain(h: Harness) {
    let s = &h.store;
    // Ended drills of one plan (only one may be active at a time), sealed in turn.
    let ended = |created_min| NewDrill {
        status: DrillStatus::Finished,
        ..new_drill("linfen-site-loss", created_min)
    };
    let first = ended(0);
    let second = ended(1);
    s.insert_drill(&first).await.unwrap();
    s.insert_drill(&second).await.unwrap();

    let genesis = s.drill_chain_head().await.unwrap();
    assert_eq!(
        genesis,
        ChainLink {
            seq: 1,
            previous_hash: GENESIS_HASH.into()
        }
    );
    assert_eq!(GENESIS_HASH, "0".repeat(64));
    let r1 = sealed_record(first.id, &genesis);
    let bundle = b"\x28\xb5\x2f\xfd evidence bundle with \0 bytes".to_vec();
    assert_eq!(
        s.seal_drill(first.id, &genesis, &r1, Some(&bundle))
            .await
            .unwrap(),
        Seal::Sealed
    );
    // The same place again, for another drill: the chain moved on.
    let r2_stale = sealed_record(second.id, &genesis);
    assert_eq!(
        s.seal_drill(second.id, &genesis, &r2_stale, None)
            .await
            .unwrap(),
        Seal::ChainMoved
    );
    // A link that does not follow the last record is refused too.
    let forged = ChainLink {
        seq: 2,
        previous_hash: "f".repeat(64),
    };
    assert_eq!(
        s.seal_drill(second.id, &forged, &sealed_record(second.id, &forged), None)
            .await
            .unwrap(),
        Seal::ChainMoved
    );
    // Sealing a sealed drill changes nothing.
    let head = s.drill_chain_head().await.unwrap();
    assert_eq!(
        head,
        ChainLink {
            seq: 2,
            previous_hash: r1.record_hash.clone()
        }
    );
    assert_eq!(
        s.seal_drill(first.id, &head, &sealed_record(first.id, &head), None)
            .await
            .unwrap(),
        Seal::AlreadySealed(genesis.clone())
    );
    assert!(matches!(
        s.seal_drill(Uuid::new_v4(), &head, &r1, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.seal_drill(
            second.id,
            &head,
            &SealedRecord {
                record: "{}".into(),
                record_hash: "x".into()
            },
            None
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
    let got = s.get_drill(first.id).await.unwrap().unwrap();
    let seal = got.seal.unwrap();
    assert_eq!(
        (seal.link, seal.record, seal.record_hash),
        (genesis, r1.record.clone(), r1.record_hash.clone())
    );
    assert_eq!(s.drill_bundle(first.id).await.unwrap(), Some(bundle));
    assert_eq!(s.drill_bundle(second.id).await.unwrap(), None);

    // A sealed record never changes, whoever tries; its drill's status still may.
    for sql in [
        "UPDATE drills SET record = '{}' WHERE chain_seq = 1",
        "UPDATE drills SET record_hash = previous_hash WHERE chain_seq = 1",
        "UPDATE drills SET bundle = NULL WHERE chain_seq = 1",
        "DELETE FROM drills WHERE chain_seq = 1",
    ] {
        let r = h.raw_execute(sql).await;
        assert!(r.is_err(), "{sql}: {r:?}");
    }
    let done = DrillChange {
        status: DrillStatus::Finished,
        state: json!({}),
        started_at: None,
        finished_at: Some(t0_plus(5)),
    };
    assert!(matches!(
        s.update_drill(first.id, 1, &done).await.unwrap(),
        DrillUpdate::Updated(2)
    ));
    assert_eq!(
        s.get_drill(first.id)
            .await
            .unwrap()
            .unwrap()
            .seal
            .unwrap()
            .record,
        r1.record
    );

    // Concurrent seals at one place: exactly one gets it.
    let racers: Vec<_> = (0..6).map(|i| ended(10 + i)).collect();
    for d in &racers {
        s.insert_drill(d).await.unwrap();
    }
    let replica = h.replica().await;
    let tries: Vec<_> = racers
        .iter()
        .zip([s.clone(), replica.clone()].into_iter().cycle())
        .map(|(d, store)| {
            let (id, head) = (d.id, head.clone());
            tokio::spawn(async move {
                store
                    .seal_drill(id, &head, &sealed_record(id, &head), None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tries {
        match t.await.unwrap() {
            Seal::Sealed => won += 1,
            Seal::ChainMoved => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);

    // Concurrent seals at the head, retried as the chain moves: each drill gets its own place,
    // each linked to the record before it.
    let tries: Vec<_> = std::iter::once(&second)
        .chain(racers.iter())
        .zip([s.clone(), replica].into_iter().cycle())
        .map(|(d, store)| {
            let id = d.id;
            tokio::spawn(async move {
                store
                    .seal_drill_with::<StoreError>(id, None, |link| Ok(sealed_record(id, link)))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tries {
        t.await.unwrap();
    }
    let chain = s.drill_chain().await.unwrap();
    assert_eq!(chain.len(), 8);
    let mut previous = GENESIS_HASH.to_string();
    for (i, (id, seal)) in chain.iter().enumerate() {
        assert_eq!(seal.link.seq, i as u64 + 1);
        assert_eq!(
            seal.link.previous_hash,
            previous,
            "link of record {}",
            i + 1
        );
        assert_eq!(seal.record, sealed_record(*id, &seal.link).record);
        previous = seal.record_hash.clone();
    }
    assert_eq!(chain[0].0, first.id);
    // Sealing with a sealed drill again returns its place.
    let again = s
        .seal_drill_with::<StoreError>(second.id, None, |link| Ok(sealed_record(second.id, link)))
        .await
        .unwrap();
    let at = chain.iter().find(|(id, _)| *id == second.id).unwrap();
    assert_eq!(again, at.1.link);
}
