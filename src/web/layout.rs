//! The one layout of every dashboard page: the head (styles inline, no script), the navigation
//! with the person's name, role and logout form, the language switch, and the small pieces
//! pages share (timestamps, status badges, error pages).
//!
//! Labels live here in both languages; nothing here reads the store or the clock.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::gate::{CSRF_FIELD, Ctx};
use crate::assess::{Scenario, Status};
use crate::coordinator::auth::{
    UI_ALERTS_PATH, UI_AUDIT_PATH, UI_DRILLS_PATH, UI_HOME_PATH, UI_LOGOUT_PATH, UI_REPORTS_PATH,
    UI_SYSTEMS_PATH,
};
use crate::coordinator::store::Role;
use crate::i18n::Lang;

/// Fits a 1366×768 laptop: one column, compact tables, the navigation in one line.
const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;color:#1d2330;background:#f4f6f9}
header{background:#17324d;color:#fff;display:flex;align-items:center;gap:18px;padding:8px 18px;flex-wrap:wrap}
header a{color:#dce8f5;text-decoration:none;padding:4px 6px;border-radius:4px}
header a.on,header a:hover{background:#2b5278;color:#fff}
header .brand{font-weight:700;font-size:16px;color:#fff;margin-right:8px}
header .me{margin-left:auto;display:flex;gap:10px;align-items:center;font-size:13px}
header form{display:inline;margin:0}
header button{background:none;border:1px solid #7b9cc0;color:#fff;border-radius:4px;padding:2px 8px;cursor:pointer}
main{max-width:1320px;margin:0 auto;padding:14px 18px 40px}
h1{font-size:20px;margin:6px 0 12px}
h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;margin:4px 0 12px}
th,td{border:1px solid #d7dde5;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#e9eef4;font-weight:600}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:10px}
.card{background:#fff;border:1px solid #d7dde5;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:24px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;font-weight:600;border:1px solid transparent}
.rag-green,.st-compliant,.st-online,.st-pass,.st-done,.st-finished{background:#dff3e4;color:#135c2b;border-color:#8fcf9f}
.rag-amber,.st-at-risk,.st-late,.st-pass-with-conditions,.st-running,.st-scheduled,.st-warning{background:#fff1cc;color:#7a5300;border-color:#e8c45c}
.rag-red,.st-breached,.st-offline,.st-fail,.st-failed,.st-aborted,.st-not-ready,.st-critical,.st-firing{background:#fbe0df;color:#8e1b16;border-color:#e79a96}
.rag-grey,.st-no-evidence,.st-never-seen,.st-pending,.st-skipped,.st-resolved{background:#eceff3;color:#454f5d;border-color:#c3cad4}
.muted{color:#5d6878;font-size:12px}
.reasons{margin:2px 0 0 16px;padding:0;font-size:12px;color:#394352}
.gate{background:#fff8e1;border:1px solid #e8c45c;border-radius:6px;padding:10px 14px;margin:8px 0}
.error{background:#fbe0df;border:1px solid #e79a96;border-radius:6px;padding:10px 14px}
form.inline{display:inline}
button.act{background:#1f5f99;color:#fff;border:0;border-radius:4px;padding:5px 12px;cursor:pointer;font-size:13px}
button.danger{background:#a3261f}
input[type=text],input[type=password]{padding:5px 7px;border:1px solid #aab4c1;border-radius:4px;min-width:220px}
.login{max-width:360px;margin:60px auto;background:#fff;border:1px solid #d7dde5;border-radius:8px;padding:20px 24px}
.login label{display:block;margin:10px 0 4px}
.heat{overflow-x:auto}
.heat td a{display:block;color:inherit;text-decoration:none}
nav.pages{margin:8px 0}
"#;

/// A dashboard page: the layout around `body`, titled `title`; `refresh` seconds makes the
/// browser reload it (a running drill's timeline).
pub fn page(ctx: &Ctx, title: &str, refresh: Option<u32>, body: Markup) -> Response {
    let nav: [(&str, &str, &str, Role); 6] = [
        (UI_HOME_PATH, "Overview", "总览", Role::Viewer),
        (UI_SYSTEMS_PATH, "Systems", "系统", Role::Viewer),
        (UI_DRILLS_PATH, "Drills", "演练", Role::Viewer),
        (UI_ALERTS_PATH, "Alerts", "告警", Role::Viewer),
        (UI_REPORTS_PATH, "Reports", "报告", Role::Viewer),
        (UI_AUDIT_PATH, "Audit log", "审计日志", Role::Admin),
    ];
    let other = match ctx.lang {
        Lang::En => (Lang::ZhCn, "中文"),
        Lang::ZhCn => (Lang::En, "English"),
    };
    let current = |p: &str| {
        if p == UI_HOME_PATH {
            ctx.path == p
        } else {
            ctx.path.starts_with(p)
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(ctx.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh { meta http-equiv="refresh" content=(s); }
                title { (title) " · lifeboat" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                header {
                    span.brand { "lifeboat" }
                    @for (href, en, zh, role) in nav {
                        @if ctx.at_least(role) {
                            a href=(href) class=[current(href).then_some("on")] { (ctx.t(en, zh)) }
                        }
                    }
                    div.me {
                        a href={ (ctx.path) "?lang=" (other.0.tag()) } hreflang=(other.0.tag()) id="lang-switch" { (other.1) }
                        @if let Some(me) = &ctx.me {
                            span id="whoami" { (me.user) " (" (role_label(ctx.lang, me.role)) ")" }
                            form method="post" action=(UI_LOGOUT_PATH) {
                                input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf);
                                button type="submit" id="logout" { (ctx.t("Log out", "退出")) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    markup.into_response()
}

/// A refusal as a page without navigation (no person known, or one who may not be here).
pub fn refusal(lang: Lang, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => lang.pick("Not allowed", "无权操作"),
        StatusCode::NOT_FOUND => lang.pick("Not found", "未找到"),
        StatusCode::CONFLICT => lang.pick("Not possible now", "当前无法操作"),
        StatusCode::SERVICE_UNAVAILABLE => lang.pick("Not available yet", "暂不可用"),
        s if s.is_client_error() => lang.pick("Refused", "请求被拒绝"),
        _ => lang.pick("Something went wrong", "出错了"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                title { (title) " · lifeboat" }
                style { (maud::PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { (status.as_u16()) " " (title) }
                    p.error id="refusal" { (message) }
                    p { a href=(UI_HOME_PATH) { (lang.pick("Back to the overview", "返回总览")) } }
                }
            }
        }
    };
    (status, markup).into_response()
}

/// An API [`Failure`](crate::coordinator::auth::Failure) as a page in the page's language.
pub fn failure(ctx: &Ctx, f: &crate::coordinator::auth::Failure) -> Response {
    refusal(ctx.lang, f.status, &f.body.message)
}

/// A timestamp as people read it (UTC, to the second).
pub fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional timestamp; a dash when absent.
pub fn ts_or_dash(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), ts)
}

pub fn role_label(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Viewer => lang.pick("viewer", "查看者"),
        Role::Operator => lang.pick("operator", "操作员"),
        Role::Admin => lang.pick("admin", "管理员"),
    }
}

pub fn status_label(lang: Lang, s: Status) -> &'static str {
    match s {
        Status::Compliant => lang.pick("compliant", "达标"),
        Status::AtRisk => lang.pick("at risk", "有风险"),
        Status::Breached => lang.pick("breached", "超标"),
        Status::NoEvidence => lang.pick("no evidence", "无备份记录"),
    }
}

pub fn status_class(s: Status) -> &'static str {
    match s {
        Status::Compliant => "st-compliant",
        Status::AtRisk => "st-at-risk",
        Status::Breached => "st-breached",
        Status::NoEvidence => "st-no-evidence",
    }
}

pub fn scenario_label(lang: Lang, s: Scenario) -> &'static str {
    match s {
        Scenario::ComponentLoss => lang.pick("component loss", "部件故障"),
        Scenario::SiteLoss => lang.pick("site loss", "站点灾难"),
        Scenario::Ransomware => lang.pick("ransomware", "勒索病毒"),
    }
}

/// A badge for a machine word (`running`, `failed`, …): its class is `st-<word>`.
pub fn badge(word: &str, label: &str) -> Markup {
    html! { span class={ "badge st-" (word) } { (label) } }
}

/// A status badge.
pub fn status_badge(lang: Lang, s: Status) -> Markup {
    html! { span class={ "badge " (status_class(s)) } { (status_label(lang, s)) } }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(ctx.csrf); }
}
