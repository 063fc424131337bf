//! The alerts page (firing, then recently resolved), the audit log (admins; reading it is
//! itself audited, as through the API) and the report downloads.
//!
//! The store's own lists, laid out; nothing is evaluated or sent from here.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::Web;
use super::gate::Ctx;
use super::layout::{self, badge, page, ts, ts_or_dash};
use super::view;
use crate::coordinator::auth::{Failure, UI_AUDIT_PATH, UI_QUARTERLY_PATH};
use crate::coordinator::store::{AlertStatus, AuditFilter, Page};
use crate::i18n::Lang;
use crate::report::quarterly;

/// Recently resolved alerts shown.
const RESOLVED_SHOWN: usize = 50;
/// Audit entries per page.
const AUDIT_PAGE: u32 = 50;

/// `GET /ui/alerts`.
pub async fn alerts(State(web): State<Web>, ctx: Ctx) -> Response {
    let rows = match web.auth.store.alerts_with_details(None).await {
        Ok(r) => r,
        Err(e) => return layout::failure(&ctx, &Failure::store(e)),
    };
    let (mut firing, mut resolved): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|(s, _)| s.state == AlertStatus::Firing);
    firing.sort_by_key(|a| std::cmp::Reverse(a.0.since));
    resolved.sort_by_key(|a| std::cmp::Reverse(a.0.since));
    resolved.truncate(RESOLVED_SHOWN);
    let title = ctx.t("Alerts", "告警").to_string();
    let table = |rows: &[(
        crate::coordinator::store::AlertState,
        Option<crate::coordinator::store::AlertDetails>,
    )],
                 id: &str| {
        html! {
            table id=(id) {
                tr {
                    th { (ctx.t("Rule", "规则")) } th { (ctx.t("Subject", "对象")) }
                    th { (ctx.t("Severity", "级别")) } th { (ctx.t("Since", "起始")) }
                    th { (ctx.t("Summary", "摘要")) } th { (ctx.t("Notified", "已通知")) }
                }
                @for (s, d) in rows {
                    tr {
                        td { (s.rule) } td { (s.subject) }
                        td { @if let Some(d) = d { (badge(&d.severity, &d.severity)) } }
                        td { (ts(s.since)) }
                        td { (d.as_ref().map(|d| d.summary.as_str()).unwrap_or("")) }
                        td { (ts_or_dash(s.last_notified_at)) }
                    }
                }
            }
        }
    };
    let body = html! {
        h2 { (ctx.t("Firing", "告警中")) " (" (firing.len()) ")" }
        (table(&firing, "firing"))
        @if firing.is_empty() { p.muted { (ctx.t("Nothing is firing.", "当前无告警。")) } }
        h2 { (ctx.t("Recently resolved", "最近已恢复")) }
        (table(&resolved, "resolved"))
    };
    page(&ctx, &title, Some(60), body)
}

/// `?page=` of the audit log, from 0 (and `lang`, read by the gate).
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    page: Option<u64>,
}

/// `GET /ui/audit`: the audit log, newest first, paged (admins).
pub async fn audit(
    State(web): State<Web>,
    ctx: Ctx,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let n = q.ok().and_then(|Query(q)| q.page).unwrap_or(0);
    let window = Page {
        offset: n.saturating_mul(u64::from(AUDIT_PAGE)),
        limit: AUDIT_PAGE + 1,
    };
    let mut entries = match web
        .auth
        .store
        .list_audit(&AuditFilter::default(), window)
        .await
    {
        Ok(e) => e,
        Err(e) => return layout::failure(&ctx, &Failure::store(e)),
    };
    let more = entries.len() > AUDIT_PAGE as usize;
    entries.truncate(AUDIT_PAGE as usize);
    if let Some(me) = &ctx.me {
        web.auth
            .audit(
                &me.actor(),
                "audit.read",
                "audit-log",
                serde_json::json!({ "returned": entries.len(), "via": "dashboard" }),
            )
            .await;
    }
    let title = ctx.t("Audit log", "审计日志").to_string();
    let body = html! {
        table id="audit" {
            tr {
                th { (ctx.t("At", "时间")) } th { (ctx.t("Actor", "操作者")) }
                th { (ctx.t("Action", "操作")) } th { (ctx.t("Target", "对象")) }
                th { (ctx.t("Detail", "详情")) }
            }
            @for e in &entries {
                tr {
                    td { (ts(e.at)) } td { (e.actor) } td { (e.action) } td { (e.target) }
                    td.muted { (e.detail.to_string()) }
                }
            }
        }
        nav.pages {
            @if n > 0 { a href={ (UI_AUDIT_PATH) "?page=" (n - 1) } { "← " (ctx.t("Newer", "较新")) } " " }
            @if more { a href={ (UI_AUDIT_PATH) "?page=" (n + 1) } id="audit-older" { (ctx.t("Older", "较早")) " →" } }
        }
    };
    page(&ctx, &title, None, body)
}

/// `GET /ui/reports`: the quarterly reports of the current and the three last quarters, in
/// each language and format.
pub async fn reports(State(web): State<Web>, ctx: Ctx) -> Response {
    let policy = crate::coordinator::current_policy(&web.fleet.policy);
    let quarters =
        view::recent_quarters(web.auth.clock.now(), &quarterly::organisation_zone(&policy));
    let title = ctx.t("Reports", "报告").to_string();
    let formats = ["html", "pdf", "csv", "json"];
    let body = html! {
        p { (ctx.t(
            "The quarterly recovery-objectives report: RPO compliance per tier, branch and scenario, drilled RTO, copy and integrity posture, the drill programme.",
            "季度恢复目标报告：按等级、机构和场景的 RPO 达标情况、演练 RTO、副本与完整性状况、演练计划。",
        )) }
        table id="reports" {
            tr {
                th { (ctx.t("Quarter", "季度")) }
                th { "English" } th { "中文" }
            }
            @for q in &quarters {
                tr {
                    td { b { (q) } }
                    @for lang in [Lang::En, Lang::ZhCn] {
                        td {
                            @for f in formats {
                                a.report href=(report_href(q, lang, f)) { (f.to_uppercase()) } " "
                            }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, &title, None, body)
}

fn report_href(quarter: &str, lang: Lang, format: &str) -> String {
    format!(
        "{UI_QUARTERLY_PATH}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("quarter", quarter)
            .append_pair("lang", lang.tag())
            .append_pair("format", format)
            .finish()
    )
}

/// `?quarter=2026Q4&lang=en|zh-CN&format=html|pdf|csv|json`; without a quarter, the last
/// complete one.
#[derive(Debug, Default, Deserialize)]
pub struct QuarterlyQuery {
    quarter: Option<String>,
    lang: Option<String>,
    format: Option<String>,
}

/// `GET /ui/reports/quarterly`: the report rendered by [`quarterly::render`] (what `lifeboat
/// report` writes), answered to the browser's session as a download (HTML inline).
pub async fn quarterly(
    State(web): State<Web>,
    ctx: Ctx,
    q: Result<Query<QuarterlyQuery>, QueryRejection>,
) -> Response {
    let bad = |message: String| layout::refusal(ctx.lang, StatusCode::BAD_REQUEST, &message);
    let Ok(Query(q)) = q else {
        return bad("use ?quarter=2026Q4&lang=en|zh-CN&format=html|pdf|csv|json".into());
    };
    let quarter = match q.quarter.as_deref().map(str::parse::<quarterly::Quarter>) {
        None => None,
        Some(Ok(quarter)) => Some(quarter),
        Some(Err(e)) => return bad(e.to_string()),
    };
    let lang = match q.lang.as_deref() {
        None => ctx.lang,
        Some(tag) => match Lang::from_tag(tag) {
            Some(l) => l,
            None => return bad("`lang` is en or zh-CN".into()),
        },
    };
    let format = match q.format.as_deref() {
        None => quarterly::Format::Html,
        Some(f) => match quarterly::Format::parse(f) {
            Some(f) => f,
            None => return bad("`format` is html, pdf, csv or json".into()),
        },
    };
    let policy = crate::coordinator::current_policy(&web.fleet.policy);
    let rendered = quarterly::render(
        &web.auth.store,
        &policy,
        quarter,
        lang,
        format,
        web.auth.clock.now(),
    )
    .await;
    match rendered {
        Ok(r) => {
            let disposition = if format == quarterly::Format::Html {
                "inline"
            } else {
                "attachment"
            };
            let mut response = r.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(r.content_type),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("{disposition}; filename=\"{}\"", r.file_name))
            {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(quarterly::ReportError::Build(e)) => bad(e.to_string()),
        Err(quarterly::ReportError::Store(e)) => layout::failure(&ctx, &Failure::store(e)),
        Err(quarterly::ReportError::Pdf(e)) if e.is_missing_software() => {
            layout::refusal(ctx.lang, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Err(e) => layout::failure(&ctx, &Failure::internal(format!("quarterly report: {e}"))),
    }
}
