//! Alert state, one row per `(rule, subject)`, so that an alert is notified once when it starts
//! firing and once when it resolves, whichever replica evaluates it. Deciding the state is the
//! alerting module's job; this only remembers it.

use super::with_pool;
use super::{AlertState, AlertStatus, Store, StoreError, from_micros, micros, opt_from_micros};

type AlertRow = (String, String, String, i64, Option<i64>);

fn alert_from_row(row: AlertRow) -> Result<AlertState, StoreError> {
    let (rule, subject, state, since, last_notified_at) = row;
    Ok(AlertState {
        rule,
        subject,
        state: state.parse()?,
        since: from_micros(since)?,
        last_notified_at: opt_from_micros(last_notified_at)?,
    })
}

impl Store {
    /// The state of `rule` about `subject`, if it was ever recorded.
    pub async fn alert_state(
        &self,
        rule: &str,
        subject: &str,
    ) -> Result<Option<AlertState>, StoreError> {
        let row: Option<AlertRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT rule, subject, state, since, last_notified_at FROM alert_state
                 WHERE rule = $1 AND subject = $2",
            )
            .bind(rule)
            .bind(subject)
            .fetch_optional(pool)
            .await?
        });
        row.map(alert_from_row).transpose()
    }

    /// Inserts or replaces the state of `(state.rule, state.subject)`.
    pub async fn upsert_alert_state(&self, state: &AlertState) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO alert_state (rule, subject, state, since, last_notified_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (rule, subject) DO UPDATE
                 SET state = excluded.state, since = excluded.since,
                     last_notified_at = excluded.last_notified_at",
            )
            .bind(&state.rule)
            .bind(&state.subject)
            .bind(state.state.as_str())
            .bind(micros(state.since))
            .bind(state.last_notified_at.map(micros))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every alert state (or only those in `status`), by rule and subject.
    pub async fn alert_states(
        &self,
        status: Option<AlertStatus>,
    ) -> Result<Vec<AlertState>, StoreError> {
        let rows: Vec<AlertRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT rule, subject, state, since, last_notified_at FROM alert_state
                 WHERE $1 IS NULL OR state = $1 ORDER BY rule, subject",
            )
            .bind(status.map(AlertStatus::as_str))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(alert_from_row).collect()
    }
}
