//! `GET /api/v1/alerts?state=firing|resolved` (viewer): the alert states the store holds, with
//! what each said when it was last notified. Served by every replica from the store; it never
//! evaluates a rule nor sends anything. Behind the role-matrix gate like every people route.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::coordinator::auth::{ALERTS_PATH, Auth, Failure, Verb};
use crate::coordinator::routes::Routes;
use crate::coordinator::store::{AlertStatus, Store};

/// Requests here are bodiless.
const MAX_BODY: usize = 1024;

/// What the alerts endpoint needs.
#[derive(Clone)]
pub struct AlertsApi {
    pub auth: Auth,
}

impl AlertsApi {
    fn store(&self) -> &Store {
        &self.auth.store
    }
}

/// The alerts router, behind the role-matrix gate.
pub fn router(api: AlertsApi) -> axum::Router {
    routes().finish(api.auth.clone(), MAX_BODY, api)
}

/// Every alerts route and its handler (compared with the role matrix by a test).
pub(crate) fn routes() -> Routes<AlertsApi> {
    Routes::new().add(Verb::Get, ALERTS_PATH, list)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<StateFilter>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StateFilter {
    Firing,
    Resolved,
}

/// One alert in the answer.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AlertView {
    pub rule: String,
    pub subject: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// `warning` or `critical`, as last notified.
    pub severity: Option<String>,
    pub summary: Option<String>,
    /// Firing since, or resolved at.
    pub since: Timestamp,
    pub last_notified_at: Option<Timestamp>,
    /// Whether every channel has taken its latest notification.
    pub delivered: bool,
}

/// The answer: alerts by rule and subject.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

async fn list(
    State(api): State<AlertsApi>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => {
            return Failure::bad_request(format!(
                "{}; use ?state=firing or ?state=resolved",
                e.body_text()
            ))
            .into_response();
        }
    };
    let status = query.state.map(|s| match s {
        StateFilter::Firing => AlertStatus::Firing,
        StateFilter::Resolved => AlertStatus::Resolved,
    });
    match api.store().alerts_with_details(status).await {
        Ok(rows) => Json(AlertList {
            alerts: rows
                .into_iter()
                .map(|(s, d)| AlertView {
                    state: s.state.as_str().into(),
                    severity: d.as_ref().map(|d| d.severity.clone()),
                    summary: d.map(|d| d.summary),
                    since: s.since,
                    delivered: s.last_notified_at.is_some(),
                    last_notified_at: s.last_notified_at,
                    rule: s.rule,
                    subject: s.subject,
                })
                .collect(),
        })
        .into_response(),
        Err(e) => Failure::store(e).into_response(),
    }
}
