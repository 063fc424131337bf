//! Alert state, one row per `(rule, subject)`, so that an alert is notified once when it starts
//! firing and once when it resolves, whichever replica evaluates it. Deciding the state is the
//! alerting module's job; this only remembers it, with what the alert said when it was last
//! notified ([`AlertDetails`]) so that any replica can list alerts without evaluating them.

use super::{AlertState, AlertStatus, Store, StoreError, from_micros, micros, opt_from_micros};
use super::{with_pool, with_writer};

/// What an alert said when it was last notified: its severity (`warning`, `critical`) and its
/// one-line summary. Plain text to the store; the alerting module owns their meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDetails {
    pub severity: String,
    pub summary: String,
}

type DetailedRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn detailed_from_row(row: DetailedRow) -> Result<(AlertState, Option<AlertDetails>), StoreError> {
    let (rule, subject, state, since, last_notified_at, severity, summary) = row;
    let details = match (severity, summary) {
        (Some(severity), Some(summary)) => Some(AlertDetails { severity, summary }),
        _ => None,
    };
    Ok((
        alert_from_row((rule, subject, state, since, last_notified_at))?,
        details,
    ))
}

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

/// Rows written per transaction by [`Store::upsert_alerts`].
pub const ALERT_BATCH: usize = 200;

const UPSERT_ALERT: &str = "INSERT INTO alert_state
         (rule, subject, state, since, last_notified_at, severity, summary)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (rule, subject) DO UPDATE
     SET state = excluded.state, since = excluded.since,
         last_notified_at = excluded.last_notified_at,
         severity = COALESCE(excluded.severity, alert_state.severity),
         summary = COALESCE(excluded.summary, alert_state.summary)";

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
        with_writer!(self, |pool| {
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

    /// Inserts or replaces the state of `(state.rule, state.subject)` and, when given, what the
    /// alert said; without `details` the stored ones are kept.
    pub async fn upsert_alert(
        &self,
        state: &AlertState,
        details: Option<&AlertDetails>,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(UPSERT_ALERT)
                .bind(&state.rule)
                .bind(&state.subject)
                .bind(state.state.as_str())
                .bind(micros(state.since))
                .bind(state.last_notified_at.map(micros))
                .bind(details.map(|d| d.severity.as_str()))
                .bind(details.map(|d| d.summary.as_str()))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// [`Store::upsert_alert`] for many alerts, in transactions of at most [`ALERT_BATCH`] rows:
    /// a first evaluation of a large fleet writes thousands of states, and one transaction per
    /// state would hold the database's write lock against run-record ingest for minutes.
    pub async fn upsert_alerts(
        &self,
        alerts: &[(AlertState, Option<AlertDetails>)],
    ) -> Result<(), StoreError> {
        for chunk in alerts.chunks(ALERT_BATCH) {
            with_writer!(self, |pool| {
                let mut tx = pool.begin().await?;
                for (state, details) in chunk {
                    sqlx::query(UPSERT_ALERT)
                        .bind(&state.rule)
                        .bind(&state.subject)
                        .bind(state.state.as_str())
                        .bind(micros(state.since))
                        .bind(state.last_notified_at.map(micros))
                        .bind(details.as_ref().map(|d| d.severity.as_str()))
                        .bind(details.as_ref().map(|d| d.summary.as_str()))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            });
        }
        Ok(())
    }

    /// Like [`Store::alert_states`], each with what it said when last notified (`None` for a
    /// state written without details).
    pub async fn alerts_with_details(
        &self,
        status: Option<AlertStatus>,
    ) -> Result<Vec<(AlertState, Option<AlertDetails>)>, StoreError> {
        let rows: Vec<DetailedRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT rule, subject, state, since, last_notified_at, severity, summary
                 FROM alert_state WHERE $1 IS NULL OR state = $1 ORDER BY rule, subject",
            )
            .bind(status.map(AlertStatus::as_str))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(detailed_from_row).collect()
    }
}
