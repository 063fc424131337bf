//! The drill pages: the calendar (plans due by cadence, the regulatory calendar, systems never
//! drilled or overdue) with the plans an operator may start, the list of drills, and one
//! drill's live timeline, steps, systems and pending gates.
//!
//! Starting, approving and aborting go through the drills API's own functions
//! ([`drills_api::approve_gate`], [`drills_api::abort_drill`]): the same drill input, the same
//! checks against the stored state, the same audit entry as `POST /api/v1/drills/{id}/approve`.
//! A button is shown only to a role that may press it; the role matrix refuses the others.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use uuid::Uuid;

use super::Web;
use super::gate::{Ctx, Form};
use super::layout::{self, badge, csrf_field, page, ts, ts_or_dash};
use crate::coordinator::auth::{Param, Principal, UI_DRILLS_PATH};
use crate::coordinator::drills_api::{
    self, AbortRequest, ApproveRequest, DrillDetail, StepRunView,
};
use crate::coordinator::store::{DrillFilter, Role};
use crate::i18n::Lang;

/// Drills listed on the drills page.
const LISTED: u32 = 50;
/// A drill's page reloads itself this often while the drill is live.
const LIVE_REFRESH_SECS: u32 = 3;

fn status_label(lang: Lang, status: &str) -> String {
    let zh = match status {
        "scheduled" => "已排期",
        "running" => "进行中",
        "finished" => "已完成",
        "aborted" => "已中止",
        "not-ready" => "未就绪",
        "failed" => "失败",
        "pending" => "待执行",
        "done" => "已完成",
        "skipped" => "已跳过",
        "pass" => "通过",
        "pass-with-conditions" => "有条件通过",
        "fail" => "未通过",
        other => other,
    };
    lang.pick(status, zh).to_string()
}

/// `GET /ui/drills`: the calendar, the plans and the drills.
pub async fn list(State(web): State<Web>, ctx: Ctx) -> Response {
    let records = match web.drills.sealed_records().await {
        Ok(r) => r,
        Err(f) => return layout::failure(&ctx, &f),
    };
    let policy = web.drills.policy();
    let now = web.drills.now();
    let calendar = drills_api::calendar(&policy, &records, now);
    let drills = match web
        .auth
        .store
        .list_drills(&DrillFilter::default(), None, LISTED)
        .await
    {
        Ok(d) => d,
        Err(e) => return layout::failure(&ctx, &crate::coordinator::auth::Failure::store(e)),
    };
    let operator = ctx.at_least(Role::Operator);
    let title = ctx.t("Drills", "灾备演练").to_string();
    let body = html! {
        h2 { (ctx.t("Drill calendar", "演练日历")) }
        table id="calendar" {
            tr {
                th { (ctx.t("Plan", "方案")) } th { (ctx.t("Due", "到期")) }
                th { (ctx.t("Last drilled", "上次演练")) } th { (ctx.t("Basis", "依据")) }
                @if operator { th {} }
            }
            @for plan in policy.drills.values() {
                @let due = calendar.plans.iter().find(|d| d.plan == plan.id);
                tr {
                    td {
                        b { (plan.id) }
                        div.muted { (match (ctx.lang, &plan.title_zh) { (Lang::ZhCn, Some(zh)) => zh, _ => &plan.title }) }
                    }
                    td {
                        @if let Some(d) = due {
                            (ts(d.due_at))
                            @if d.overdue { " " (badge("fail", ctx.t("overdue", "已逾期"))) }
                        } @else { "—" }
                    }
                    td { (ts_or_dash(due.and_then(|d| d.last_at))) }
                    td.muted { (due.map(|d| d.basis.as_str()).unwrap_or("")) }
                    @if operator {
                        td {
                            form.inline method="post" action=(UI_DRILLS_PATH) {
                                (csrf_field(&ctx))
                                input type="hidden" name="plan" value=(plan.id);
                                button.act type="submit" name="start" value=(plan.id) {
                                    (ctx.t("Start drill", "启动演练"))
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (ctx.t("Regulatory calendar", "监管日历")) }
        table id="regulatory" {
            tr {
                th { (ctx.t("Requirement", "要求")) } th { (ctx.t("Last", "上次")) }
                th { (ctx.t("Due", "到期")) }
            }
            @for r in &calendar.regulatory {
                tr {
                    td { (r.requirement) }
                    td { (ts_or_dash(r.last_at)) }
                    td { (ts(r.due_at)) @if r.overdue { " " (badge("fail", ctx.t("overdue", "已逾期"))) } }
                }
            }
        }
        @if !calendar.systems_due.is_empty() {
            h2 { (ctx.t("Systems never drilled or overdue", "从未演练或已逾期的系统")) }
            table id="systems-due" {
                tr { th { (ctx.t("System", "系统")) } th { (ctx.t("Last", "上次")) } th { (ctx.t("Due", "到期")) } }
                @for s in &calendar.systems_due {
                    tr {
                        td { a href={ "/ui/systems/" (s.system) } { (s.system) } }
                        td { (ts_or_dash(s.last_at)) }
                        td { (ts(s.due_at)) }
                    }
                }
            }
        }
        h2 { (ctx.t("Drills", "演练记录")) }
        table id="drills" {
            tr {
                th { (ctx.t("Drill", "演练")) } th { (ctx.t("Plan", "方案")) }
                th { (ctx.t("Status", "状态")) } th { (ctx.t("Started", "开始")) }
                th { (ctx.t("Finished", "结束")) } th { (ctx.t("Verdict", "结论")) }
            }
            @for d in drills.iter().map(drills_api::drill_row) {
                tr {
                    td { a href={ (UI_DRILLS_PATH) "/" (d.id) } { (d.id.to_string()[..8]) } }
                    td { (d.plan) }
                    td { (badge(&d.status, &status_label(ctx.lang, &d.status))) }
                    td { (ts_or_dash(d.started_at)) }
                    td { (ts_or_dash(d.finished_at)) }
                    td { @if let Some(v) = &d.verdict { (badge(v, &status_label(ctx.lang, v))) } }
                }
            }
        }
        @if drills.is_empty() { p.muted { (ctx.t("No drill yet.", "尚无演练。")) } }
    };
    page(&ctx, &title, None, body)
}

/// Whether `me` may approve a gate that names `role` (`operator` or `admin`).
fn may_approve(me: Option<&Principal>, role: Option<&str>) -> bool {
    let needed = match role {
        Some("admin") => Role::Admin,
        _ => Role::Operator,
    };
    me.is_some_and(|p| p.role >= needed)
}

fn step_row(ctx: &Ctx, id: Uuid, s: &StepRunView) -> maud::Markup {
    html! {
        tr id={ "step-" (s.name) } {
            td { (s.name) div.muted { (s.action) @if s.per_system { " · " (ctx.t("per system", "逐系统")) } } }
            td { (badge(&s.state, &status_label(ctx.lang, &s.state))) }
            td { (ts_or_dash(s.started_at)) }
            td { (ts_or_dash(s.finished_at)) }
            td {
                @if let Some(r) = &s.reason { div.muted { (r) } }
                @if let Some(a) = &s.approval {
                    div { (ctx.t("approved by", "批准人")) " " (a.by) " (" (a.role) ") " (ts(a.at)) }
                }
                @if s.awaiting_approval {
                    div.gate {
                        b { (ctx.t("Waiting for approval by", "等待审批：")) " " (s.role.as_deref().unwrap_or("operator")) }
                        @if may_approve(ctx.me.as_ref(), s.role.as_deref()) {
                            form method="post" action={ (UI_DRILLS_PATH) "/" (id) "/approve" } {
                                (csrf_field(ctx))
                                input type="hidden" name="step" value=(s.name);
                                input type="text" name="comment" placeholder=(ctx.t("Comment (optional)", "审批意见（可选）"));
                                " "
                                button.act type="submit" id={ "approve-" (s.name) } { (ctx.t("Approve", "批准")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /ui/drills/{id}`: the live state of a drill.
pub async fn detail(State(web): State<Web>, ctx: Ctx, Param(id): Param<Uuid>) -> Response {
    let stored = match web.drills.drill(id).await {
        Ok(d) => d,
        Err(f) => return layout::failure(&ctx, &f),
    };
    let DrillDetail {
        drill,
        requested,
        error,
        run,
        seal,
    } = drills_api::drill_detail(&stored);
    let live = matches!(drill.status.as_str(), "scheduled" | "running");
    let title = match &run {
        Some(r) => match (ctx.lang, &r.title_zh) {
            (Lang::ZhCn, Some(zh)) => zh.clone(),
            _ => r.title.clone(),
        },
        None => format!("{} {}", ctx.t("Drill of", "演练方案"), drill.plan),
    };
    let operator = ctx.at_least(Role::Operator);
    let body = html! {
        p {
            (ctx.t("Drill", "演练")) " " code { (drill.id) } " · " (drill.plan) " · "
            span id="drill-status" { (badge(&drill.status, &status_label(ctx.lang, &drill.status))) }
            @if let Some(phase) = &drill.phase { " · " (ctx.t("phase", "阶段")) " " span id="drill-phase" { (phase) } }
            @if let Some(v) = &drill.verdict { " · " (badge(v, &status_label(ctx.lang, v))) }
        }
        @if live { p.muted { (ctx.t("This page refreshes itself while the drill runs.", "演练进行中，本页自动刷新。")) } }
        @if let Some(r) = &requested {
            p { (ctx.t("Requested by", "申请人")) " " (r.requested_by) " " (ts(r.requested_at)) " — " (ctx.t("starts at the orchestrator's next tick.", "将在编排器下一轮启动。")) }
        }
        @if let Some(e) = &error { p.error { (e) } }
        @if operator && live {
            form.inline method="post" action={ (UI_DRILLS_PATH) "/" (id) "/abort" } {
                (csrf_field(&ctx))
                input type="text" name="reason" placeholder=(ctx.t("Reason for the abort", "中止原因"));
                " "
                button.act.danger type="submit" id="abort" { (ctx.t("Abort drill", "中止演练")) }
            }
        }
        @if let Some(run) = &run {
            p.muted {
                "T_outage " (ts(run.t_outage)) " · " (ctx.t("standby host", "备用主机")) " " (run.standby_host)
                " · " (ctx.t("started by", "发起人")) " " (run.started_by)
                @if let Some(end) = &run.ending { " · " (ctx.t("ended", "结束")) " " (end) " " (ts_or_dash(run.ended_at)) }
            }
            @if let Some(reason) = &run.end_reason { p.muted { (reason) } }
            h2 { (ctx.t("Timeline", "时间线")) }
            table id="timeline" {
                tr { th { (ctx.t("Mark", "节点")) } th { (ctx.t("At", "时间")) } th { (ctx.t("Step", "步骤")) } th { (ctx.t("Recorded by", "记录者")) } }
                @for m in &run.marks {
                    tr { td { (m.mark) } td { (ts(m.at)) } td { (m.step) } td { (m.recorded_by) } }
                }
            }
            h2 { (ctx.t("Steps", "步骤")) }
            table id="steps" {
                tr {
                    th { (ctx.t("Step", "步骤")) } th { (ctx.t("State", "状态")) }
                    th { (ctx.t("Started", "开始")) } th { (ctx.t("Finished", "结束")) } th { (ctx.t("Detail", "详情")) }
                }
                @for s in &run.steps { (step_row(&ctx, id, s)) }
            }
            h2 { (ctx.t("Systems", "系统")) }
            table id="drill-systems" {
                tr {
                    th { (ctx.t("System", "系统")) } th { (ctx.t("Tier", "等级")) } th { (ctx.t("Stage", "状态")) }
                    th { (ctx.t("Restore point", "恢复点")) } th { (ctx.t("Tasks", "任务")) }
                }
                @for s in &run.systems {
                    tr {
                        td { a href={ "/ui/systems/" (s.system) } { (s.system) } @if let Some(r) = &s.reason { div.muted { (r) } } }
                        td { (s.tier) }
                        td { (s.stage) }
                        td {
                            @if let Some(p) = &s.restore_point {
                                (p.snapshot) " @ " (p.repository) div.muted { (ts(p.captured_at)) }
                            } @else { "—" }
                        }
                        td { @for t in &s.tasks { div { (t.step) ": " (badge(&t.state, &t.state)) } } }
                    }
                }
            }
            @if !run.readiness.is_empty() {
                h2 { (ctx.t("Readiness", "就绪检查")) }
                ul { @for r in &run.readiness { li { @if r.ok { "✓ " } @else { "✗ " } (r.subject) ": " (r.detail) } } }
            }
            h2 { (ctx.t("Step log", "步骤日志")) }
            table id="log" {
                tr { th { (ctx.t("At", "时间")) } th { (ctx.t("Step", "步骤")) } th { (ctx.t("System", "系统")) } th { (ctx.t("Event", "事件")) } th { (ctx.t("Detail", "详情")) } }
                @for l in run.log.iter().rev().take(100) {
                    tr {
                        td { (ts(l.at)) } td { (l.step) }
                        td { (l.system.as_ref().map(|s| s.to_string()).unwrap_or_default()) }
                        td { (l.event) } td.muted { (l.detail) }
                    }
                }
            }
        }
        @if let Some(seal) = &seal {
            h2 { (ctx.t("Sealed record", "封存记录")) }
            p.muted { "#" (seal.chain_seq) " sha256 " code { (seal.record_hash) } }
            p {
                a #drill-report href={ "/ui/drills/" (id) "/report?lang=" (ctx.lang.tag()) } { (ctx.t("Drill report (HTML)", "演练报告（HTML）")) }
                " · "
                a href={ "/ui/drills/" (id) "/report?format=pdf&lang=" (ctx.lang.tag()) } { "PDF" }
            }
        }
    };
    page(&ctx, &title, live.then_some(LIVE_REFRESH_SECS), body)
}

/// The query of `GET /ui/drills/{id}/report`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    lang: Option<String>,
    format: Option<String>,
}

/// `GET /ui/drills/{id}/report`: the sealed drill's report as the API serves it
/// ([`drills_api::drill_report`]), for the browser's session; the page's language by default.
pub async fn report(
    State(web): State<Web>,
    ctx: Ctx,
    Param(id): Param<Uuid>,
    q: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |message: &str| layout::refusal(ctx.lang, StatusCode::BAD_REQUEST, message);
    let Ok(axum::extract::Query(q)) = q else {
        return bad("use ?lang=en|zh-CN&format=html|pdf");
    };
    let lang = match q.lang.as_deref() {
        None => ctx.lang,
        Some(tag) => match Lang::from_tag(tag) {
            Some(l) => l,
            None => return bad("`lang` is en or zh-CN"),
        },
    };
    let pdf = match q.format.as_deref() {
        None | Some("html") => false,
        Some("pdf") => true,
        Some(_) => return bad("`format` is html or pdf"),
    };
    match drills_api::drill_report(&web.drills, id, lang, pdf).await {
        Ok(response) => response,
        Err(f) => layout::failure(&ctx, &f),
    }
}

/// After an action: back to the drill's page, or the refusal as a page.
fn after(
    ctx: &Ctx,
    id: Uuid,
    done: Result<drills_api::InputAccepted, crate::coordinator::auth::Failure>,
) -> Response {
    match done {
        Ok(_) => Redirect::to(&format!("{UI_DRILLS_PATH}/{id}")).into_response(),
        Err(f) => layout::failure(ctx, &f),
    }
}

/// `POST /ui/drills/{id}/approve`: the API's approval of the gate named by the form's `step`.
pub async fn approve(
    State(web): State<Web>,
    ctx: Ctx,
    Param(id): Param<Uuid>,
    axum::Extension(me): axum::Extension<Principal>,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    let req = ApproveRequest {
        step: form.get("step").unwrap_or("").to_string(),
        comment: form.get("comment").unwrap_or("").to_string(),
    };
    after(
        &ctx,
        id,
        drills_api::approve_gate(&web.drills, &me, id, &req).await,
    )
}

/// `POST /ui/drills/{id}/abort`: the API's abort.
pub async fn abort(
    State(web): State<Web>,
    ctx: Ctx,
    Param(id): Param<Uuid>,
    axum::Extension(me): axum::Extension<Principal>,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    let req = AbortRequest {
        reason: form.get("reason").unwrap_or("").to_string(),
    };
    after(
        &ctx,
        id,
        drills_api::abort_drill(&web.drills, &me, id, &req).await,
    )
}

/// `POST /ui/drills`: starts a drill of the form's `plan` now.
pub async fn start(
    State(web): State<Web>,
    ctx: Ctx,
    axum::Extension(me): axum::Extension<Principal>,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    // The form becomes the API's own request: a drill of the plan, starting now.
    let req: drills_api::StartDrillRequest =
        match serde_json::from_value(serde_json::json!({ "plan": form.get("plan").unwrap_or("") }))
        {
            Ok(r) => r,
            Err(e) => {
                return layout::refusal(
                    ctx.lang,
                    axum::http::StatusCode::BAD_REQUEST,
                    &e.to_string(),
                );
            }
        };
    match drills_api::start_drill(&web.drills, &me, &req).await {
        Ok(started) => Redirect::to(&format!("{UI_DRILLS_PATH}/{}", started.id)).into_response(),
        Err(f) => layout::failure(&ctx, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::auth::Credential;
    use crate::coordinator::store::TokenHash;
    use crate::secret::Secret;

    #[test]
    fn only_the_role_a_gate_names_sees_its_approve_button() {
        let person = |role| Principal {
            user: "u".into(),
            role,
            credential: Credential::Session(TokenHash::of(&Secret::new("t"))),
        };
        let table = [
            (Role::Viewer, Some("operator"), false),
            (Role::Operator, Some("operator"), true),
            (Role::Operator, Some("admin"), false),
            (Role::Admin, Some("admin"), true),
            (Role::Admin, None, true),
            (Role::Viewer, None, false),
        ];
        for (role, gate, shown) in table {
            assert_eq!(
                may_approve(Some(&person(role)), gate),
                shown,
                "{role:?} {gate:?}"
            );
        }
        assert!(!may_approve(None, Some("operator")));
    }
}
