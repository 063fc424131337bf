//! The append-only audit log. There is deliberately no method that updates or deletes an entry,
//! and the schema refuses `UPDATE` and `DELETE` on `audit_log` (a trigger on both backends), so
//! not even a bug in this crate can rewrite history.

use serde_json::Value;
use sqlx::types::Json;

use super::{
    AuditEntry, AuditFilter, NewAuditEntry, Page, Store, StoreError, from_micros, micros,
    with_pool, with_writer,
};

type AuditRow = (i64, i64, String, String, String, Json<Value>);

fn entry_from_row(row: AuditRow) -> Result<AuditEntry, StoreError> {
    let (id, at, actor, action, target, Json(detail)) = row;
    Ok(AuditEntry {
        id,
        at: from_micros(at)?,
        actor,
        action,
        target,
        detail,
    })
}

impl Store {
    /// Appends `entry` and returns its id (ids increase in append order).
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError> {
        let id: i64 = with_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO audit_log (at, actor, action, target, detail)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(micros(entry.at))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(Json(&entry.detail))
            .fetch_one(pool)
            .await?
        });
        Ok(id)
    }

    /// Entries matching `filter`, newest first (by id, i.e. append order).
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (limit, offset) = page.sql();
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, at, actor, action, target, detail FROM audit_log
                 WHERE ($1 IS NULL OR actor = $1)
                   AND ($2 IS NULL OR action = $2)
                   AND ($3 IS NULL OR target = $3)
                   AND ($4 IS NULL OR at >= $4)
                   AND ($5 IS NULL OR at < $5)
                 ORDER BY id DESC LIMIT $6 OFFSET $7",
            )
            .bind(filter.actor.as_deref())
            .bind(filter.action.as_deref())
            .bind(filter.target.as_deref())
            .bind(filter.since.map(micros))
            .bind(filter.until.map(micros))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(entry_from_row).collect()
    }
}
