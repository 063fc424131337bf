//! The fleet pages: the overview (agents online, late and offline; the branch × tier compliance
//! heat map; counts per scenario), the systems by tier with their exposure per scenario and its
//! reasons, and one system's page (its assessment, runs, snapshots, checks and drill results).
//!
//! Everything comes from the sweep's latest view and the fleet API's own mappings
//! ([`fleet_api::system_rows`], [`fleet_api::system_detail`], [`fleet_api::read_inventory`]);
//! before the first sweep the pages say so instead of guessing.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::Web;
use super::gate::Ctx;
use super::layout::{
    self, badge, page, scenario_label, status_badge, status_label, ts, ts_or_dash,
};
use super::view::{self, AgentClass};
use crate::assess::{Scenario, Status};
use crate::coordinator::auth::{Param, UI_DRILLS_PATH};
use crate::coordinator::fleet_api::{self, SystemsQuery};
use crate::coordinator::sweep::FleetView;
use crate::i18n::Lang;
use crate::policy::{Policy, SiteId, TierId};
use crate::report::chart;

fn not_ready(ctx: &Ctx) -> Response {
    layout::refusal(
        ctx.lang,
        StatusCode::SERVICE_UNAVAILABLE,
        ctx.t(
            "No assessment sweep has completed on this coordinator yet (it runs at start); reload in a few seconds.",
            "本协调器尚未完成评估（启动时即运行），请稍后刷新。",
        ),
    )
}

fn class_label(lang: Lang, c: AgentClass) -> &'static str {
    match c {
        AgentClass::Online => lang.pick("online", "在线"),
        AgentClass::Late => lang.pick("late", "延迟"),
        AgentClass::Offline => lang.pick("offline", "离线"),
    }
}

fn tier_name(policy: &Policy, lang: Lang, tier: &TierId) -> String {
    match policy.tiers.get(tier) {
        Some(t) => match (lang, &t.name_zh) {
            (Lang::ZhCn, Some(zh)) => format!("{} {zh}", t.id),
            _ => format!("{} {}", t.id, t.name),
        },
        None => tier.to_string(),
    }
}

/// The compliance heat map, branch × tier, for `scenario`, drawn by the shared chart.
fn heat_map(ctx: &Ctx, policy: &Policy, view: &FleetView, scenario: Scenario) -> Markup {
    let grid = view::compliance_grid(policy, view, scenario);
    let title = format!(
        "{} — {}",
        ctx.t(
            "RPO compliance, branch × tier (systems compliant / systems)",
            "RPO 达标情况：机构 × 等级（达标系统数 / 系统数）"
        ),
        scenario_label(ctx.lang, scenario)
    );
    let rows = grid.rows.iter().map(|(_, name)| name.clone()).collect();
    let cols = grid
        .cols
        .iter()
        .map(|t| tier_name(policy, ctx.lang, t))
        .collect();
    let map = view::heat_map(&grid, title, rows, cols);
    html! { div.heat id="heat-map" { (chart::heat_map(&map, ctx.lang)) } }
}

/// `GET /ui`: the fleet overview.
pub async fn home(State(web): State<Web>, ctx: Ctx) -> Response {
    let title = ctx.t("Fleet overview", "总览").to_string();
    let Some(view) = web.fleet.sweep.latest() else {
        return not_ready(&ctx);
    };
    let policy = crate::coordinator::current_policy(&web.fleet.policy);
    let now = view.assessed_at;
    let [online, late, offline] = view::agent_counts(&view.agent_health, now);
    let summary = fleet_api::fleet_summary(&view);
    let site_of_host: BTreeMap<&str, &SiteId> = policy
        .systems
        .values()
        .map(|s| (s.host.as_str(), &s.site))
        .collect();
    let body = html! {
        p.muted { (ctx.t("Assessed at", "评估时间")) " " (ts(view.assessed_at)) }
        div.cards id="agent-counts" {
            div.card { b id="agents-online" { (online) } (ctx.t("agents online", "代理在线")) }
            div.card { b id="agents-late" { (late) } (ctx.t("agents late", "代理延迟")) }
            div.card { b id="agents-offline" { (offline) } (ctx.t("agents offline", "代理离线")) }
            div.card { b { (view.systems) } (ctx.t("systems", "受保护系统")) }
        }
        (heat_map(&ctx, &policy, &view, Scenario::SiteLoss))
        h2 { (ctx.t("Systems per scenario", "各场景系统状态")) }
        table {
            tr {
                th { (ctx.t("Scenario", "场景")) }
                @for s in [Status::Compliant, Status::AtRisk, Status::Breached, Status::NoEvidence] {
                    th { (status_label(ctx.lang, s)) }
                }
                th { (ctx.t("Total", "合计")) }
            }
            @for c in &summary.compliance {
                tr {
                    td { (scenario_label(ctx.lang, c.scenario)) }
                    td { (c.total.compliant) } td { (c.total.at_risk) }
                    td { (c.total.breached) } td { (c.total.no_evidence) } td { (c.total.total) }
                }
            }
        }
        h2 { (ctx.t("Agents", "代理")) }
        table id="agents" {
            tr {
                th { (ctx.t("Host", "主机")) } th { (ctx.t("Site", "机构")) }
                th { (ctx.t("State", "状态")) } th { (ctx.t("Last heartbeat", "最近心跳")) }
                th { (ctx.t("Clock offset", "时钟偏差")) } th { (ctx.t("Issues", "问题")) }
            }
            @for a in &view.agent_health {
                @let class = view::agent_class(a, now);
                tr {
                    td { (a.host) }
                    td { (site_of_host.get(a.host.as_str()).map(|s| s.to_string()).unwrap_or_default()) }
                    td { (badge(class.word(), class_label(ctx.lang, class))) }
                    td { (ts_or_dash(a.last_seen)) }
                    td {
                        @match a.clock_offset {
                            Some(o) => {
                                (format!("{:+.1} s", o.as_secs_f64()))
                                @if a.clock_skewed { " " (badge("late", ctx.t("skewed", "偏差过大"))) }
                            },
                            None => "—",
                        }
                    }
                    td { @for i in &a.issues { div.muted { (i) } } }
                }
            }
        }
        @if view.agent_health.is_empty() {
            p.muted { (ctx.t("No agent is enrolled yet.", "尚无已注册的代理。")) }
        }
    };
    page(&ctx, &title, Some(60), body)
}

/// `?tier=&site=&status=&after=` (and `lang`, read by the gate).
#[derive(Debug, Default, Deserialize)]
pub struct SystemsFilter {
    tier: Option<TierId>,
    site: Option<SiteId>,
    status: Option<Status>,
    after: Option<String>,
}

/// `GET /ui/systems`: the systems by tier, each with its exposure per scenario and the reasons.
pub async fn systems(
    State(web): State<Web>,
    ctx: Ctx,
    q: Result<Query<SystemsFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return layout::refusal(
            ctx.lang,
            StatusCode::BAD_REQUEST,
            ctx.t(
                "Unknown tier, site or status in the address.",
                "地址中的等级、机构或状态无效。",
            ),
        );
    };
    let Some(view) = web.fleet.sweep.latest() else {
        return not_ready(&ctx);
    };
    let policy = crate::coordinator::current_policy(&web.fleet.policy);
    let page_of = fleet_api::system_rows(
        &policy,
        &view,
        &SystemsQuery {
            tier: q.tier.clone(),
            site: q.site.clone(),
            scenario: Some(Scenario::SiteLoss),
            status: q.status,
            limit: Some(crate::coordinator::store::Page::MAX_LIMIT),
            after: q.after.clone(),
        },
    );
    let mut by_tier: BTreeMap<&TierId, Vec<&fleet_api::SystemRow>> = BTreeMap::new();
    for row in &page_of.systems {
        by_tier.entry(&row.tier).or_default().push(row);
    }
    let title = ctx.t("Systems by tier", "按等级查看系统").to_string();
    let body = html! {
        p.muted {
            (ctx.t("Assessed at", "评估时间")) " " (ts(view.assessed_at))
            @if let Some(site) = &q.site { " · " (ctx.t("site", "机构")) " " b { (site) } }
            @if let Some(tier) = &q.tier { " · " (ctx.t("tier", "等级")) " " b { (tier) } }
            @if q.site.is_some() || q.tier.is_some() {
                " · " a href=(view::systems_href(None, None)) { (ctx.t("all systems", "全部系统")) }
            }
        }
        @if page_of.systems.is_empty() {
            p { (ctx.t("No system matches.", "没有符合条件的系统。")) }
        }
        @for (tier, rows) in &by_tier {
            h2 { (tier_name(&policy, ctx.lang, tier)) }
            table.systems {
                tr {
                    th { (ctx.t("System", "系统")) } th { (ctx.t("Site", "机构")) }
                    @for s in Scenario::ALL { th { (scenario_label(ctx.lang, s)) } }
                }
                @for row in rows {
                    @let assessment = view.assessment(row.id.as_str());
                    tr {
                        td {
                            a href={ "/ui/systems/" (row.id) } { (row.id) }
                            div.muted { (row.name) " · " (row.department) }
                        }
                        td { (row.site) }
                        @for st in &row.scenarios {
                            td {
                                (status_badge(ctx.lang, st.status)) " "
                                span { (st.exposure) }
                                span.muted { " / " (layout_target(st.target_seconds)) }
                                @if let Some(a) = assessment {
                                    ul.reasons {
                                        @for r in &a.rpo(st.scenario).reasons { li { (r) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(after) = &page_of.next_after {
            nav.pages { a href={ "?after=" (after) } { (ctx.t("Next page", "下一页")) " →" } }
        }
    };
    page(&ctx, &title, None, body)
}

/// A target in seconds as people read it.
fn layout_target(secs: i64) -> String {
    crate::assess::Human(jiff::SignedDuration::from_secs(secs)).to_string()
}

/// `GET /ui/systems/{id}`: one system.
pub async fn system(State(web): State<Web>, ctx: Ctx, Param(id): Param<String>) -> Response {
    let policy = crate::coordinator::current_policy(&web.fleet.policy);
    let Some(system) = policy.system(&id) else {
        return layout::refusal(
            ctx.lang,
            StatusCode::NOT_FOUND,
            &format!(
                "{} {id}",
                ctx.t(
                    "No such system in the policy in force:",
                    "当前策略中没有该系统："
                )
            ),
        );
    };
    let Some(view) = web.fleet.sweep.latest() else {
        return not_ready(&ctx);
    };
    let runs = match fleet_api::latest_runs(&web.auth.store, &id).await {
        Ok(r) => r,
        Err(f) => return layout::failure(&ctx, &f),
    };
    let Some(detail) = fleet_api::system_detail(&policy, &view, system, runs) else {
        return not_ready(&ctx);
    };
    let now = web.auth.clock.now();
    let inventory =
        match fleet_api::read_inventory(&web.auth.store, policy.clone(), id.clone(), now).await {
            Ok(i) => i,
            Err(f) => return layout::failure(&ctx, &f),
        };
    let drills = match web.drills.sealed_records().await {
        Ok(records) => records,
        Err(f) => return layout::failure(&ctx, &f),
    };
    let drill_results: Vec<_> = drills
        .iter()
        .rev()
        .filter_map(|r| {
            r.results
                .iter()
                .find(|s| s.result.system == system.id)
                .map(|s| (r, s))
        })
        .collect();
    let title = format!("{} — {}", system.id, system.name);
    let a = &detail.assessment;
    let body = html! {
        p.muted {
            (tier_name(&policy, ctx.lang, &system.tier)) " · " (ctx.t("site", "机构")) " " (system.site)
            " · " (ctx.t("host", "主机")) " " (system.host) " · " (system.department)
        }
        h2 { (ctx.t("Current assessment", "当前评估")) }
        table id="assessment" {
            tr {
                th { (ctx.t("Scenario", "场景")) } th { (ctx.t("Status", "状态")) }
                th { (ctx.t("Exposure / target", "暴露时长 / 目标")) } th { (ctx.t("Reasons", "原因")) }
            }
            @for s in &a.scenarios {
                tr {
                    td { (scenario_label(ctx.lang, s.status.scenario)) }
                    td { (status_badge(ctx.lang, s.status.status)) }
                    td { (s.status.exposure) " / " (layout_target(s.status.target_seconds)) }
                    td { (s.summary) ul.reasons { @for r in &s.reasons { li { (r.text) } } } }
                }
            }
        }
        p {
            "3-2-1-1-0: "
            @if a.rule.conformant { (badge("pass", ctx.t("met", "满足"))) } @else { (badge("fail", ctx.t("not met", "未满足"))) }
            @for d in &a.rule.digits { " · " span title=(d.text) { (d.actual) "/" (d.required) } }
        }
        @if let Some(agent) = &detail.agent {
            p.muted {
                (ctx.t("Agent", "代理")) " " (agent.host) ": "
                (ctx.t("last heartbeat", "最近心跳")) " " (ts_or_dash(agent.last_seen))
                @if agent.clock_skewed { " · " (badge("late", ctx.t("clock skewed", "时钟偏差过大"))) }
            }
        }
        h2 { (ctx.t("Integrity checks", "完整性检查")) }
        table id="checks" {
            tr {
                th { (ctx.t("Repository", "存储库")) } th { (ctx.t("State", "状态")) }
                th { (ctx.t("Last check", "最近检查")) } th { (ctx.t("Fully read", "全量读取")) }
                th { (ctx.t("Issues", "问题")) }
            }
            @for c in &a.integrity {
                tr {
                    td { (c.repository) }
                    td { @if c.ok { (badge("pass", "ok")) } @else { (badge("fail", ctx.t("attention", "需处理"))) } }
                    td { (ts_or_dash(c.last_check)) }
                    td { (ts_or_dash(c.fully_read_at)) }
                    td { @for i in &c.issues { div.muted { (i.text) } } }
                }
            }
        }
        h2 { (ctx.t("Latest runs", "最近运行")) }
        table id="runs" {
            tr {
                th { (ctx.t("Kind", "类型")) } th { (ctx.t("Outcome", "结果")) }
                th { (ctx.t("Started", "开始")) } th { (ctx.t("Finished", "结束")) }
                th { (ctx.t("Snapshot", "快照")) } th { (ctx.t("Error", "错误")) }
            }
            @for r in &detail.runs {
                @let outcome = word(&r.record.outcome);
                tr {
                    td { (word(&r.record.kind)) }
                    td { (badge(if outcome == "success" { "pass" } else { "fail" }, &outcome)) }
                    td { (ts(r.record.started_at)) }
                    td { (ts(r.record.finished_at)) }
                    td { (r.record.snapshot_id.as_deref().unwrap_or("—")) }
                    td.muted { (r.record.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")) }
                }
            }
        }
        @if detail.runs.is_empty() { p.muted { (ctx.t("No run recorded yet.", "尚无运行记录。")) } }
        h2 { (ctx.t("Snapshots", "快照")) }
        table id="snapshots" {
            tr {
                th { (ctx.t("Snapshot", "快照")) } th { (ctx.t("Captured", "捕获时间")) }
                th { (ctx.t("Complete", "完整")) } th { (ctx.t("Copies", "副本")) }
            }
            @for s in inventory.snapshots.iter().take(50) {
                tr {
                    td { (s.id) }
                    td { (ts_or_dash(s.captured_at)) }
                    td { @if s.complete { "✓" } @else { "✗" } }
                    td {
                        @for c in &s.copies {
                            div {
                                (c.repository) " " span.muted { (ts(c.available_at)) }
                                @if c.verified { " " (badge("pass", ctx.t("verified", "已校验"))) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (ctx.t("Drill results", "演练结果")) }
        table id="drill-results" {
            tr {
                th { (ctx.t("Drill", "演练")) } th { (ctx.t("Verdict", "结论")) }
                th { (ctx.t("Achieved RPO", "实际 RPO")) } th { (ctx.t("IT RTO", "IT RTO")) }
                th { (ctx.t("Reasons", "原因")) }
            }
            @for (record, s) in &drill_results {
                @let verdict = s.result.verdict.to_string();
                tr {
                    td {
                        a href={ (UI_DRILLS_PATH) "/" (record.header.drill_id) } { (record.header.plan) }
                        div.muted { (ts(record.header.started_at)) }
                    }
                    td { (badge(&verdict, &verdict)) }
                    td { (secs_or_dash(s.result.achieved_rpo_seconds)) " / " (layout_target(s.result.rpo_target_seconds)) }
                    td { (secs_or_dash(s.result.it_rto_seconds)) " / " (layout_target(s.result.it_rto_target_seconds)) }
                    td { ul.reasons { @for r in &s.result.reasons { li { (r) } } } }
                }
            }
        }
        @if drill_results.is_empty() { p.muted { (ctx.t("Never drilled.", "从未演练。")) } }
    };
    page(&ctx, &title, None, body)
}

fn secs_or_dash(s: Option<i64>) -> String {
    s.map_or_else(|| "—".to_string(), layout_target)
}

/// A serde enum's kebab-case name (`success`, `backup`).
pub fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
