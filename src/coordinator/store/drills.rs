//! Disaster-recovery drills as the coordinator keeps them: the drill rows (state opaque to the
//! store, updated optimistically by version), the hash chain of sealed drill records, the tasks
//! handed to agents in heartbeat answers, and the append-only queue of inputs (agent reports,
//! approvals, aborts) that the orchestrator consumes in order.
//!
//! This module stores and finds; it decides nothing about drills. It never reads the drill
//! state, never computes a hash (records arrive sealed by `crate::drill`) and never reads the
//! clock. Its invariants, each held by the database rather than by callers:
//!
//! * an update applies only at the version it was computed from ([`Store::update_drill`]);
//! * a record is sealed once, at the next place of the chain, linked to the previous sealed
//!   record's hash: `chain_seq` is unique and the link is checked in the sealing statement, so of
//!   two concurrent seals at one place exactly one succeeds; sealed records never change
//!   (a trigger refuses it);
//! * a task's first report is kept, only from the task's own host, only while the task is not
//!   withdrawn, and storing it appends its `report` input in the same transaction;
//! * inputs become visible in increasing id order (ids come from a counter row that stays locked
//!   until the appending transaction ends), so a cursor never skips one.

use jiff::Timestamp;
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    ChainLink, DrillChange, DrillFilter, DrillInput, DrillSeal, DrillStatus, DrillUpdate,
    GENESIS_HASH, NewDrill, NewDrillTask, REPORT_INPUT, ReportInsert, Seal, SealedRecord, Store,
    StoreError, StoredDrill, StoredDrillTask, from_micros, micros, opt_from_micros, parse_uuid,
    with_pool, with_writer,
};
use crate::api::{DrillReport, DrillTask};

/// How often [`Store::seal_drill_with`] tries again when other drills are sealed meanwhile.
const SEAL_ATTEMPTS: u32 = 16;

const DRILL_COLUMNS: &str = "id, plan, status, created_by, created_at, scheduled_for, started_at, \
                             finished_at, state, version, record, record_hash, previous_hash, \
                             chain_seq";

type DrillRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Json<Value>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn drill_from_row(row: DrillRow) -> Result<StoredDrill, StoreError> {
    let (
        id,
        plan,
        status,
        created_by,
        created_at,
        scheduled_for,
        started_at,
        finished_at,
        Json(state),
        version,
        record,
        record_hash,
        previous_hash,
        chain_seq,
    ) = row;
    let seal = match (chain_seq, record, record_hash, previous_hash) {
        (Some(seq), Some(record), Some(record_hash), Some(previous_hash)) => Some(DrillSeal {
            link: ChainLink {
                seq: seq_from_db(seq)?,
                previous_hash,
            },
            record,
            record_hash,
        }),
        (None, None, None, None) => None,
        _ => return Err(StoreError::corrupt(format!("drill {id} is half sealed"))),
    };
    Ok(StoredDrill {
        id: parse_uuid(&id)?,
        plan: plan
            .parse()
            .map_err(|_| StoreError::corrupt(format!("drill plan id {plan:?}")))?,
        status: status.parse()?,
        created_by,
        created_at: from_micros(created_at)?,
        scheduled_for: opt_from_micros(scheduled_for)?,
        started_at: opt_from_micros(started_at)?,
        finished_at: opt_from_micros(finished_at)?,
        state,
        version: u64::try_from(version)
            .map_err(|_| StoreError::corrupt(format!("drill version {version}")))?,
        seal,
    })
}

fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::corrupt(format!("drill chain_seq {seq}")))
}

fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| StoreError::Invalid(format!("drill chain position {seq}")))
}

fn version_to_db(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::Invalid(format!("drill version {version}")))
}

/// A sha256 hex digest as the chain stores them.
fn check_hash(what: &str, hash: &str) -> Result<(), StoreError> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} must be 64 lowercase hex digits"
        )))
    }
}

type TaskRow = (
    String,
    Json<DrillTask>,
    i64,
    Option<i64>,
    Option<Json<DrillReport>>,
    Option<i64>,
);

fn task_from_row(row: TaskRow) -> Result<StoredDrillTask, StoreError> {
    let (host, Json(task), created_at, withdrawn_at, report, reported_at) = row;
    Ok(StoredDrillTask {
        host,
        task,
        created_at: from_micros(created_at)?,
        withdrawn_at: opt_from_micros(withdrawn_at)?,
        report: report.map(|Json(r)| r),
        reported_at: opt_from_micros(reported_at)?,
    })
}

type InputRow = (i64, String, String, String, i64, Json<Value>);

fn input_from_row(row: InputRow) -> Result<DrillInput, StoreError> {
    let (id, drill_id, kind, actor, at, Json(detail)) = row;
    Ok(DrillInput {
        id,
        drill_id: parse_uuid(&drill_id)?,
        kind,
        actor,
        at: from_micros(at)?,
        detail,
    })
}

/// Appends one input inside the caller's transaction (see the module docs for why the id comes
/// from the counter row). Runs the same SQL on both backends.
macro_rules! append_input {
    ($tx:expr, $drill_id:expr, $kind:expr, $actor:expr, $detail:expr, $at:expr) => {{
        let id: i64 = sqlx::query_scalar(
            "UPDATE drill_input_counter SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id",
        )
        .fetch_one(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO drill_inputs (id, drill_id, kind, actor, at, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind($drill_id)
        .bind($kind)
        .bind($actor)
        .bind($at)
        .bind($detail)
        .execute(&mut *$tx)
        .await?;
        id
    }};
}

impl Store {
    // -----------------------------------------------------------------------------------------
    // Drills

    /// Creates a drill at version 1, unsealed. A drill id already stored is a
    /// [`StoreError::Conflict`].
    pub async fn insert_drill(&self, drill: &NewDrill) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO drills (id, plan, status, created_by, created_at, scheduled_for,
                                     started_at, state, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
            )
            .bind(drill.id.to_string())
            .bind(drill.plan.as_str())
            .bind(drill.status.as_str())
            .bind(&drill.created_by)
            .bind(micros(drill.created_at))
            .bind(drill.scheduled_for.map(micros))
            .bind(drill.started_at.map(micros))
            .bind(Json(&drill.state))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The drill `id`, if stored.
    pub async fn get_drill(&self, id: Uuid) -> Result<Option<StoredDrill>, StoreError> {
        let sql = format!("SELECT {DRILL_COLUMNS} FROM drills WHERE id = $1");
        let row: Option<DrillRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(drill_from_row).transpose()
    }

    /// At most `limit` drills matching `filter`, newest first (by `created_at`, then id),
    /// starting after the drill `after` in that order (keyset paging: pass the id of the last
    /// drill of a page to get the next; an unknown `after` gives an empty page).
    pub async fn list_drills(
        &self,
        filter: &DrillFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<StoredDrill>, StoreError> {
        let (limit, _) = super::Page::first(limit).sql();
        let sql = format!(
            "SELECT {DRILL_COLUMNS} FROM drills
             WHERE ($1 IS NULL OR plan = $1) AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR (created_at, id) <
                    (SELECT created_at, id FROM drills WHERE id = $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows: Vec<DrillRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.plan.as_ref().map(|p| p.as_str()))
                .bind(filter.status.map(DrillStatus::as_str))
                .bind(after.map(|a| a.to_string()))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(drill_from_row).collect()
    }

    /// Every scheduled or running drill, oldest first: what the orchestrator resumes.
    pub async fn active_drills(&self) -> Result<Vec<StoredDrill>, StoreError> {
        let sql = format!(
            "SELECT {DRILL_COLUMNS} FROM drills WHERE status IN ('scheduled', 'running')
             ORDER BY created_at, id"
        );
        let rows: Vec<DrillRow> =
            with_pool!(self, |pool| sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(drill_from_row).collect()
    }

    /// Replaces the drill's status, state and start and finish times, if it is still at
    /// `expected_version` (then its version goes up by one); [`DrillUpdate::Stale`] and nothing
    /// changed otherwise. An unknown drill is [`StoreError::NotFound`].
    pub async fn update_drill(
        &self,
        id: Uuid,
        expected_version: u64,
        change: &DrillChange,
    ) -> Result<DrillUpdate, StoreError> {
        let expected = version_to_db(expected_version)?;
        let id_text = id.to_string();
        let updated: Option<i64> = with_writer!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE drills SET status = $3, state = $4, started_at = $5, finished_at = $6,
                                   version = version + 1
                 WHERE id = $1 AND version = $2
                 RETURNING version",
            )
            .bind(&id_text)
            .bind(expected)
            .bind(change.status.as_str())
            .bind(Json(&change.state))
            .bind(change.started_at.map(micros))
            .bind(change.finished_at.map(micros))
            .fetch_optional(pool)
            .await?
        });
        if let Some(version) = updated {
            let version = u64::try_from(version)
                .map_err(|_| StoreError::corrupt(format!("drill version {version}")))?;
            return Ok(DrillUpdate::Updated(version));
        }
        let exists: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT version FROM drills WHERE id = $1")
                .bind(&id_text)
                .fetch_optional(pool)
                .await?
        });
        match exists {
            Some(_) => Ok(DrillUpdate::Stale),
            None => Err(StoreError::NotFound(format!("drill {id}"))),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The chain of sealed records

    /// Where the next sealed record goes: after the last sealed one (position 1 and
    /// [`GENESIS_HASH`] when none is sealed).
    pub async fn drill_chain_head(&self) -> Result<ChainLink, StoreError> {
        let last: Option<(i64, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT chain_seq, record_hash FROM drills WHERE chain_seq IS NOT NULL
                 ORDER BY chain_seq DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        match last {
            None => Ok(ChainLink {
                seq: 1,
                previous_hash: GENESIS_HASH.to_string(),
            }),
            Some((seq, Some(hash))) => Ok(ChainLink {
                seq: seq_from_db(seq)? + 1,
                previous_hash: hash,
            }),
            Some((seq, None)) => Err(StoreError::corrupt(format!(
                "sealed drill record {seq} has no hash"
            ))),
        }
    }

    /// Seals drill `id` with `sealed` (whose text must hold `link.previous_hash`) at `link`, with
    /// its evidence `bundle`, if `link` is still the head of the chain: then the record, its
    /// hash, the link and the bundle are stored in one statement and never change again.
    /// [`Seal::ChainMoved`] when another record took that place; [`Seal::AlreadySealed`] when
    /// this drill is sealed already. An unknown drill is [`StoreError::NotFound`].
    pub async fn seal_drill(
        &self,
        id: Uuid,
        link: &ChainLink,
        sealed: &SealedRecord,
        bundle: Option<&[u8]>,
    ) -> Result<Seal, StoreError> {
        check_hash("a record hash", &sealed.record_hash)?;
        check_hash("a previous record hash", &link.previous_hash)?;
        let seq = seq_to_db(link.seq)?;
        let id_text = id.to_string();
        // The link must follow the last sealed record (or be the first); of two concurrent
        // seals at one place, the unique `chain_seq` lets one through.
        let sealed_now = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE drills SET chain_seq = $2, previous_hash = $3, record = $4,
                                   record_hash = $5, bundle = $6
                 WHERE id = $1 AND chain_seq IS NULL
                   AND NOT EXISTS (SELECT 1 FROM drills WHERE chain_seq >= $2)
                   AND (($2 = 1 AND $3 = $7)
                        OR EXISTS (SELECT 1 FROM drills
                                   WHERE chain_seq = $2 - 1 AND record_hash = $3))",
            )
            .bind(&id_text)
            .bind(seq)
            .bind(&link.previous_hash)
            .bind(&sealed.record)
            .bind(&sealed.record_hash)
            .bind(bundle)
            .bind(GENESIS_HASH)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        match sealed_now {
            Ok(1) => return Ok(Seal::Sealed),
            Ok(_) => {}
            // The place was taken between our check and our write.
            Err(e) => match StoreError::from(e) {
                StoreError::Conflict(_) => {}
                other => return Err(other),
            },
        }
        match self.get_drill(id).await? {
            None => Err(StoreError::NotFound(format!("drill {id}"))),
            Some(StoredDrill {
                seal: Some(seal), ..
            }) => Ok(Seal::AlreadySealed(seal.link)),
            Some(_) => Ok(Seal::ChainMoved),
        }
    }

    /// Seals drill `id` at the head of the chain, whatever else is sealed meanwhile: reads the
    /// head, asks `make` for the record sealed at that link, and tries [`Store::seal_drill`],
    /// again with the new head (and a new record) when the chain moved. Returns the link the
    /// record was sealed at; for a drill sealed before, its existing link (and the stored record
    /// stays as it was). Errors of `make` are returned as they are.
    pub async fn seal_drill_with<E: From<StoreError>>(
        &self,
        id: Uuid,
        bundle: Option<&[u8]>,
        mut make: impl FnMut(&ChainLink) -> Result<SealedRecord, E>,
    ) -> Result<ChainLink, E> {
        for _ in 0..SEAL_ATTEMPTS {
            if let Some(StoredDrill {
                seal: Some(seal), ..
            }) = self.get_drill(id).await?
            {
                return Ok(seal.link);
            }
            let head = self.drill_chain_head().await?;
            let sealed = make(&head)?;
            match self.seal_drill(id, &head, &sealed, bundle).await? {
                Seal::Sealed => return Ok(head),
                Seal::AlreadySealed(link) => return Ok(link),
                Seal::ChainMoved => {}
            }
        }
        Err(StoreError::Unavailable(format!(
            "drill records kept being sealed while drill {id} was sealed ({SEAL_ATTEMPTS} tries)"
        ))
        .into())
    }

    /// Every sealed record in chain order, with its drill's id.
    pub async fn drill_chain(&self) -> Result<Vec<(Uuid, DrillSeal)>, StoreError> {
        let rows: Vec<(String, i64, String, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, chain_seq, previous_hash, record, record_hash FROM drills
                 WHERE chain_seq IS NOT NULL ORDER BY chain_seq",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, seq, previous_hash, record, record_hash)| {
                Ok((
                    parse_uuid(&id)?,
                    DrillSeal {
                        link: ChainLink {
                            seq: seq_from_db(seq)?,
                            previous_hash,
                        },
                        record,
                        record_hash,
                    },
                ))
            })
            .collect()
    }

    /// The evidence bundle sealed with drill `id`, if any.
    pub async fn drill_bundle(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let bundle: Option<Option<Vec<u8>>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT bundle FROM drills WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(bundle.flatten())
    }

    // -----------------------------------------------------------------------------------------
    // Tasks for agents

    /// Stores tasks for agents, in one transaction; a `task_id` already stored is left as it is
    /// (so putting the same tasks again is harmless). Returns how many were new. A task of an
    /// unknown drill is [`StoreError::NotFound`] and nothing is stored.
    pub async fn put_drill_tasks(&self, tasks: &[NewDrillTask]) -> Result<u64, StoreError> {
        let new = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut new = 0;
            for t in tasks {
                let done = sqlx::query(
                    "INSERT INTO drill_tasks (task_id, drill_id, host, task, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (task_id) DO NOTHING",
                )
                .bind(&t.task.task_id)
                .bind(t.task.drill_id.to_string())
                .bind(&t.host)
                .bind(Json(&t.task))
                .bind(micros(t.created_at))
                .execute(&mut *tx)
                .await?;
                new += done.rows_affected();
            }
            tx.commit().await?;
            new
        });
        Ok(new)
    }

    /// Withdraws every open task of drill `drill_id` (agents stop being offered them; a later
    /// report of one is not stored). Returns how many were withdrawn.
    pub async fn withdraw_drill_tasks(
        &self,
        drill_id: Uuid,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let withdrawn = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE drill_tasks SET withdrawn_at = $2
                 WHERE drill_id = $1 AND report IS NULL AND withdrawn_at IS NULL",
            )
            .bind(drill_id.to_string())
            .bind(micros(at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(withdrawn)
    }

    /// Withdraws one task if it is still open (e.g. it timed out); whether it was.
    pub async fn withdraw_drill_task(
        &self,
        task_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let withdrawn = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE drill_tasks SET withdrawn_at = $2
                 WHERE task_id = $1 AND report IS NULL AND withdrawn_at IS NULL",
            )
            .bind(task_id)
            .bind(micros(at))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(withdrawn == 1)
    }

    /// The open tasks of `host` (neither reported nor withdrawn), oldest first: what its agent's
    /// heartbeat answers carry.
    pub async fn open_drill_tasks(&self, host: &str) -> Result<Vec<DrillTask>, StoreError> {
        let rows: Vec<Json<DrillTask>> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT task FROM drill_tasks
                 WHERE host = $1 AND report IS NULL AND withdrawn_at IS NULL
                 ORDER BY created_at, task_id",
            )
            .bind(host)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|Json(t)| t).collect())
    }

    /// The hosts that have open tasks, in name order: one query for the whole fleet, so that
    /// heartbeats of hosts without drill work need none.
    pub async fn hosts_with_open_drill_tasks(&self) -> Result<Vec<String>, StoreError> {
        let hosts: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT host FROM drill_tasks
                 WHERE report IS NULL AND withdrawn_at IS NULL ORDER BY host",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(hosts)
    }

    /// Every task of drill `drill_id` with its report, oldest first.
    pub async fn drill_tasks(&self, drill_id: Uuid) -> Result<Vec<StoredDrillTask>, StoreError> {
        let rows: Vec<TaskRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT host, task, created_at, withdrawn_at, report, reported_at
                 FROM drill_tasks WHERE drill_id = $1 ORDER BY created_at, task_id",
            )
            .bind(drill_id.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(task_from_row).collect()
    }

    /// Stores the report of one task from an agent of `host` (`actor`, e.g. `agent:<uuid>`) at
    /// `at`, and in the same transaction appends a [`REPORT_INPUT`] input with detail
    /// `{"task_id": …, "report": …}`. Only the first report of a task is kept; see
    /// [`ReportInsert`] for what is refused.
    pub async fn store_drill_report(
        &self,
        host: &str,
        actor: &str,
        report: &DrillReport,
        at: Timestamp,
    ) -> Result<ReportInsert, StoreError> {
        let drill_id = report.drill_id.to_string();
        let detail = serde_json::json!({ "task_id": report.task_id, "report": report });
        let answer = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The write comes first: it takes the row (and on SQLite the database) for this
            // transaction, so two deliveries of one report cannot both get through.
            let stored: Option<String> = sqlx::query_scalar(
                "UPDATE drill_tasks SET report = $4, reported_at = $5
                 WHERE task_id = $1 AND host = $2 AND drill_id = $3
                   AND report IS NULL AND withdrawn_at IS NULL
                 RETURNING task_id",
            )
            .bind(&report.task_id)
            .bind(host)
            .bind(&drill_id)
            .bind(Json(report))
            .bind(micros(at))
            .fetch_optional(&mut *tx)
            .await?;
            let answer = if stored.is_some() {
                append_input!(
                    tx,
                    &drill_id,
                    REPORT_INPUT,
                    actor,
                    Json(&detail),
                    micros(at)
                );
                ReportInsert::Stored
            } else {
                let found: Option<(String, String, Option<i64>, bool)> = sqlx::query_as(
                    "SELECT host, drill_id, withdrawn_at, report IS NOT NULL
                     FROM drill_tasks WHERE task_id = $1",
                )
                .bind(&report.task_id)
                .fetch_optional(&mut *tx)
                .await?;
                match found {
                    None => ReportInsert::UnknownTask,
                    Some((_, task_drill, _, _)) if task_drill != drill_id => {
                        ReportInsert::UnknownTask
                    }
                    Some((task_host, ..)) if task_host != host => ReportInsert::NotYours,
                    Some((_, _, _, true)) => ReportInsert::Duplicate,
                    Some(_) => ReportInsert::Withdrawn,
                }
            };
            tx.commit().await?;
            answer
        });
        Ok(answer)
    }

    // -----------------------------------------------------------------------------------------
    // Inputs

    /// Appends an input (`kind` such as `approve` or `abort`, by `actor`, with `detail`, which
    /// must hold no secret) to drill `drill_id`'s queue; returns its id. An unknown drill is
    /// [`StoreError::NotFound`].
    pub async fn add_drill_input(
        &self,
        drill_id: Uuid,
        kind: &str,
        actor: &str,
        detail: &Value,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let drill = drill_id.to_string();
        let id = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = append_input!(tx, &drill, kind, actor, Json(detail), micros(at));
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// At most `limit` inputs appended after the input with id `after` (0: from the start), in
    /// append order; of drill `drill` only, when given.
    pub async fn drill_inputs_after(
        &self,
        drill: Option<Uuid>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DrillInput>, StoreError> {
        let (limit, _) = super::Page::first(limit).sql();
        let rows: Vec<InputRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, drill_id, kind, actor, at, detail FROM drill_inputs
                 WHERE id > $1 AND ($2 IS NULL OR drill_id = $2)
                 ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(drill.map(|d| d.to_string()))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(input_from_row).collect()
    }
}
