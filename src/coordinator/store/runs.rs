//! Run records: idempotent insertion by `(agent, run_id)` and the queries assessments and the
//! API need. The full record is kept as JSON; the columns beside it exist to be queried.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    Page, RunFilter, RunInsert, Store, StoreError, StoredRun, from_micros, micros, parse_uuid,
    with_pool, with_writer,
};
use crate::run::RunRecord;

const RUN_COLUMNS: &str = "id, agent_id, seq, received_at, record";

type RunRow = (i64, String, i64, i64, Json<RunRecord>);

fn run_from_row(row: RunRow) -> Result<StoredRun, StoreError> {
    let (id, agent_id, seq, received_at, Json(record)) = row;
    Ok(StoredRun {
        id,
        agent_id: parse_uuid(&agent_id)?,
        seq: u64::try_from(seq).map_err(|_| StoreError::corrupt(format!("run seq {seq}")))?,
        received_at: from_micros(received_at)?,
        record,
    })
}

/// The kebab-case name serde gives a unit enum variant (`backup`, `partial`).
fn wire_name<T: Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Other(
            "an enum did not serialise to a string".into(),
        )),
    }
}

impl Store {
    /// Stores `record` as sent by `agent` with spool sequence number `seq`, keyed by
    /// `(agent, record.run_id)`. The same record again is a [`RunInsert::Duplicate`]; a different
    /// record under a stored key is a [`RunInsert::Conflict`]. Neither changes anything.
    /// `NotFound` if the agent is unknown; `Invalid` if `seq` exceeds `i64::MAX`.
    pub async fn insert_run(
        &self,
        agent: Uuid,
        seq: u64,
        record: &RunRecord,
        received_at: Timestamp,
    ) -> Result<RunInsert, StoreError> {
        let seq = i64::try_from(seq)
            .map_err(|_| StoreError::Invalid(format!("run sequence number {seq} is too large")))?;
        let agent_id = agent.to_string();
        let kind = wire_name(&record.kind)?;
        let outcome = wire_name(&record.outcome)?;
        let inserted: Option<i64> = with_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO runs (agent_id, run_key, seq, system, host, kind, outcome, started_at,
                                   finished_at, capture_time, received_at, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (agent_id, run_key) DO NOTHING
                 RETURNING id",
            )
            .bind(&agent_id)
            .bind(&record.run_id)
            .bind(seq)
            .bind(record.system.as_deref())
            .bind(&record.host)
            .bind(&kind)
            .bind(&outcome)
            .bind(micros(record.started_at))
            .bind(micros(record.finished_at))
            .bind(record.capture_time.map(micros))
            .bind(micros(received_at))
            .bind(Json(record))
            .fetch_optional(pool)
            .await?
        });
        if inserted.is_some() {
            return Ok(RunInsert::Inserted);
        }
        // The key is taken; records are never changed, so comparing after the fact is safe.
        let stored: Option<Json<RunRecord>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT record FROM runs WHERE agent_id = $1 AND run_key = $2")
                .bind(&agent_id)
                .bind(&record.run_id)
                .fetch_optional(pool)
                .await?
        });
        match stored {
            Some(Json(stored)) if stored == *record => Ok(RunInsert::Duplicate),
            Some(_) => Ok(RunInsert::Conflict),
            None => Err(StoreError::Other(
                "a run key was taken but its record cannot be found".into(),
            )),
        }
    }

    /// Stores a batch of records of `agent` (`(seq, record)` pairs) in ONE transaction, in
    /// order, with the same per-record answers as [`Store::insert_run`]. One write transaction
    /// per batch instead of per record: on SQLite, where writers queue for a single lock, this
    /// is what makes ingest scale. Any error rolls the whole batch back (retry it whole).
    pub async fn insert_runs(
        &self,
        agent: Uuid,
        batch: &[(u64, &RunRecord)],
        received_at: Timestamp,
    ) -> Result<Vec<RunInsert>, StoreError> {
        let agent_id = agent.to_string();
        let mut rows = Vec::with_capacity(batch.len());
        for (seq, record) in batch {
            let seq = i64::try_from(*seq).map_err(|_| {
                StoreError::Invalid(format!("run sequence number {seq} is too large"))
            })?;
            rows.push((
                seq,
                wire_name(&record.kind)?,
                wire_name(&record.outcome)?,
                *record,
            ));
        }
        let answers: Vec<RunInsert> = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut answers = Vec::with_capacity(rows.len());
            for (seq, kind, outcome, record) in &rows {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO runs (agent_id, run_key, seq, system, host, kind, outcome,
                                       started_at, finished_at, capture_time, received_at, record)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (agent_id, run_key) DO NOTHING
                     RETURNING id",
                )
                .bind(&agent_id)
                .bind(&record.run_id)
                .bind(*seq)
                .bind(record.system.as_deref())
                .bind(&record.host)
                .bind(kind)
                .bind(outcome)
                .bind(micros(record.started_at))
                .bind(micros(record.finished_at))
                .bind(record.capture_time.map(micros))
                .bind(micros(received_at))
                .bind(Json(*record))
                .fetch_optional(&mut *tx)
                .await?;
                if inserted.is_some() {
                    answers.push(RunInsert::Inserted);
                    continue;
                }
                let stored: Option<Json<RunRecord>> = sqlx::query_scalar(
                    "SELECT record FROM runs WHERE agent_id = $1 AND run_key = $2",
                )
                .bind(&agent_id)
                .bind(&record.run_id)
                .fetch_optional(&mut *tx)
                .await?;
                answers.push(match stored {
                    Some(Json(stored)) if stored == **record => RunInsert::Duplicate,
                    Some(_) => RunInsert::Conflict,
                    None => {
                        return Err(StoreError::Other(
                            "a run key was taken but its record cannot be found".into(),
                        ));
                    }
                });
            }
            tx.commit().await?;
            answers
        });
        Ok(answers)
    }

    /// Runs of `system`, newest first (by `started_at`, then insertion order).
    pub async fn runs_of_system(
        &self,
        system: &str,
        page: Page,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let (limit, offset) = page.sql();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE system = $1
             ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows: Vec<RunRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(system)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(run_from_row).collect()
    }

    /// Every run that finished at or after `since`, oldest first (by `finished_at`, then
    /// insertion order): the input of an assessment sweep.
    pub async fn runs_since(&self, since: Timestamp) -> Result<Vec<StoredRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE finished_at >= $1 ORDER BY finished_at, id"
        );
        let rows: Vec<RunRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(micros(since))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(run_from_row).collect()
    }

    /// At most `limit` runs stored after the run with id `after` (0: from the start), in
    /// insertion order: for following new runs incrementally.
    pub async fn runs_after(&self, after: i64, limit: u32) -> Result<Vec<StoredRun>, StoreError> {
        let (limit, _) = Page::first(limit).sql();
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id > $1 ORDER BY id LIMIT $2");
        let rows: Vec<RunRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(run_from_row).collect()
    }

    /// At most `limit` runs matching `filter`, newest first (by `started_at`, then store id),
    /// starting after the run with store id `after` in that order (keyset paging: pass the
    /// `id` of the last run of a page to get the next; an unknown `after` gives an empty page).
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let (limit, _) = Page::first(limit).sql();
        let kind = filter.kind.as_ref().map(wire_name).transpose()?;
        let outcome = filter.outcome.as_ref().map(wire_name).transpose()?;
        // `(started_at, id) < (…)`: row values, on both backends.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE ($1 IS NULL OR system = $1) AND ($2 IS NULL OR host = $2)
               AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR outcome = $4)
               AND ($5 IS NULL OR started_at >= $5) AND ($6 IS NULL OR started_at < $6)
               AND ($7 IS NULL OR (started_at, id) <
                    (SELECT started_at, id FROM runs WHERE id = $7))
             ORDER BY started_at DESC, id DESC LIMIT $8"
        );
        let rows: Vec<RunRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(filter.system.as_deref())
                .bind(filter.host.as_deref())
                .bind(kind.as_deref())
                .bind(outcome.as_deref())
                .bind(filter.since.map(micros))
                .bind(filter.until.map(micros))
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(run_from_row).collect()
    }

    /// How many runs are stored, of one system or of all.
    pub async fn count_runs(&self, system: Option<&str>) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE $1 IS NULL OR system = $1")
                .bind(system)
                .fetch_one(pool)
                .await?
        });
        u64::try_from(n).map_err(|_| StoreError::corrupt("negative count"))
    }
}
