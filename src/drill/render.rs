//! The drill record (standards §4.1) as a self-contained HTML page, in English or in Chinese:
//! what the coordinator serves at `GET /api/v1/drills/{id}/report` (`?lang=`, `&format=pdf`)
//! and what `lifeboat drill record --format html|pdf` writes, to read on screen, print, or file
//! with the evidence.
//!
//! One pure function, [`page`]: record and language in, text out. The page has no JavaScript and
//! no external resource (inline CSS, the RTO chart as inline SVG); it is built with maud, which
//! escapes every string of the record, so a plan title or an agent's error message cannot
//! inject markup. Every label is in the one language chosen — section titles as standards §4.1
//! names them in that language — while identifiers, figures, hashes and timestamps are shown
//! as recorded; sentences the coordinator wrote into the record (reasons, readiness details,
//! findings) are record content and are shown as written. This module computes no figure
//! beyond unit conversion for the chart: it shows what `measure` and `record` decided, and it
//! must never change the record (the record's hash is over the record, not over this page).

use jiff::{SignedDuration, Timestamp};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::measure::Verdict;
use super::record::{self, DrillEnd, DrillRecord, FindingCategory, Severity, SystemRecord};
use crate::assess::Human;
use crate::i18n::Lang;
use crate::policy::{DrillScenarioKind, DrillType, Location};
use crate::report::chart::{self, Bar, BarChart, Rag};

/// What the drill page adds to the shared print style.
const STYLE: &str = "
.verdict{display:inline-block;padding:.05em .5em;border-radius:.3em;font-weight:600;border:1px solid #57606a}
.verdict.pass{background:#dafbe1;color:#116329}.verdict.pass-with-conditions{background:#fff8c5;color:#7d4e00}
.verdict.fail{background:#ffebe9;color:#a40e26}
.ok{color:#116329}.bad{color:#a40e26;font-weight:600}.extrapolated{font-style:italic;color:#7d4e00}
.summary{border:1px solid #8c959f;padding:.4em .8em;margin:.6em 0}
.summary p{margin:.2em 0}
table.kv th{width:11em}
";

/// The record as an HTML page in `lang`.
pub fn page(record: &DrillRecord, lang: Lang) -> String {
    let l = Labels(lang);
    let title = title(record, lang);
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (l.t("Drill report", "演练报告")) " — " (title) }
                style { (PreEscaped(chart::PRINT_CSS)) (PreEscaped(STYLE)) }
            }
            body {
                h1 { (l.t("Drill report", "演练报告")) ": " (title) }
                (summary(record, l))
                (header(record, l))
                (objectives(record, l))
                (scope(record, l))
                (scenario(record, l))
                (organisation(record, l))
                (readiness(record, l))
                (timeline(record, l))
                (results(record, l))
                (deviations(record, l))
                (findings(record, l))
                (to_be_filled(l))
                (evidence(record, l))
                (sign_off(record, l))
            }
        }
    }
    .into_string()
}

/// The labels of one language.
#[derive(Clone, Copy)]
struct Labels(Lang);

impl Labels {
    fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        self.0.pick(en, zh)
    }

    fn zh(self) -> bool {
        self.0 == Lang::ZhCn
    }
}

/// The plan's title in the page's language (the Chinese title when there is one).
fn title(r: &DrillRecord, lang: Lang) -> String {
    match (lang, &r.header.title_zh) {
        (Lang::ZhCn, Some(zh)) => zh.clone(),
        _ => r.header.title.clone(),
    }
}

fn section(n: u8, l: Labels, en: &'static str, zh: &'static str, page_break: bool) -> Markup {
    html! {
        h2 class=[page_break.then_some("section")] { (n) ". " (l.t(en, zh)) }
    }
}

fn none(l: Labels) -> Markup {
    html! { p.note { (l.t("None.", "无。")) } }
}

fn verdict(v: Verdict, l: Labels) -> Markup {
    let label = match v {
        Verdict::Pass => l.t("pass", "通过"),
        Verdict::PassWithConditions => l.t("pass with conditions", "有条件通过"),
        Verdict::Fail => l.t("fail", "未通过"),
    };
    html! { span class=(format!("verdict {v}")) { (label) } }
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), time)
}

/// A duration as people write it: "11h 6m" / "11小时6分".
fn duration(secs: i64, l: Labels) -> String {
    if !l.zh() {
        return Human(SignedDuration::from_secs(secs)).to_string();
    }
    let abs = secs.unsigned_abs();
    if abs == 0 {
        return "0秒".to_string();
    }
    let parts = [
        (abs / 86_400, "天"),
        (abs / 3_600 % 24, "小时"),
        (abs / 60 % 60, "分"),
        (abs % 60, "秒"),
    ];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
    }
    for (n, unit) in parts.iter().skip(first).take(2) {
        if *n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

fn opt_duration(secs: Option<i64>, l: Labels) -> String {
    secs.map_or_else(
        || l.t("not measured", "未测量").to_string(),
        |s| duration(s, l),
    )
}

/// Bytes in binary units, one decimal.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn throughput(bps: Option<f64>) -> String {
    bps.filter(|b| b.is_finite() && *b >= 0.0)
        .map_or_else(|| "—".to_string(), |b| format!("{}/s", bytes(b as u64)))
}

fn yes_no(ok: bool, l: Labels) -> Markup {
    html! {
        @if ok { span.ok { (l.t("yes", "是")) } } @else { span.bad { (l.t("no", "否")) } }
    }
}

fn list<T: AsRef<str>>(items: &[T], l: Labels) -> Markup {
    html! {
        @if items.is_empty() {
            (none(l))
        } @else {
            ul { @for i in items { li { (i.as_ref()) } } }
        }
    }
}

fn drill_type(t: DrillType, l: Labels) -> &'static str {
    match t {
        DrillType::RestoreTest => l.t("functional restore test", "功能性恢复测试"),
        DrillType::TargetedSwitchover => l.t("targeted switch-over", "专项切换演练"),
        DrillType::FullSwitchover => {
            l.t("full switch-over with fail-back", "全面切换演练（含回切）")
        }
    }
}

/// The regulatory flag in the page's language when it is the one lifeboat wrote for the drill
/// type; a flag written otherwise is shown as recorded.
fn regulatory(r: &DrillRecord, l: Labels) -> String {
    let h = &r.header;
    let Some(flag) = &h.regulatory else {
        return "—".to_string();
    };
    if record::regulatory_flag(h.drill_type).as_ref() != Some(flag) {
        return flag.clone();
    }
    match h.drill_type {
        DrillType::RestoreTest => "—",
        DrillType::TargetedSwitchover => l.t(
            "Targeted switch-over: counts toward the annual switch-over drill (Measures No. 114, \
             Art. 34)",
            "专项切换演练：计入年度切换演练（114号 第34条）",
        ),
        DrillType::FullSwitchover => l.t(
            "Full switch-over with fail-back: notify the regulator beforehand and send the \
             summary afterwards (Measures No. 114, Art. 35); counts toward the three-yearly full \
             drill",
            "全面切换演练（含回切）：须事先向监管部门报告，事后报送演练总结（114号 第35条）；\
             计入每三年一次的全面演练",
        ),
    }
    .to_string()
}

fn status(s: DrillEnd, l: Labels) -> &'static str {
    match s {
        DrillEnd::Completed => l.t("completed", "已完成"),
        DrillEnd::Stopped => l.t("stopped after a failure", "因失败而停止"),
        DrillEnd::Aborted => l.t("aborted by an operator", "被操作员终止"),
        DrillEnd::NotReady => l.t(
            "not ready (readiness check failed)",
            "未就绪（准备情况检查未通过）",
        ),
    }
}

fn scenario_kind(k: DrillScenarioKind, l: Labels) -> &'static str {
    match k {
        DrillScenarioKind::ComponentLoss => l.t("component loss", "组件失效"),
        DrillScenarioKind::SiteLoss => l.t("site loss", "站点失效"),
        DrillScenarioKind::Ransomware => l.t("ransomware", "勒索软件攻击"),
    }
}

fn location(loc: Location, l: Labels) -> &'static str {
    match loc {
        Location::Local => l.t("local", "本地"),
        Location::SameSite => l.t("same site", "同站点"),
        Location::SameCity => l.t("same city", "同城"),
        Location::Remote => l.t("remote region", "异地"),
    }
}

fn category(c: FindingCategory, l: Labels) -> &'static str {
    match c {
        FindingCategory::Technical => l.t("technical", "技术"),
        FindingCategory::Process => l.t("process", "流程"),
        FindingCategory::Communication => l.t("communication", "沟通"),
        FindingCategory::Documentation => l.t("documentation", "文档"),
        FindingCategory::Supplier => l.t("supplier", "供应商"),
    }
}

fn severity(s: Severity, l: Labels) -> &'static str {
    match s {
        Severity::Low => l.t("low", "低"),
        Severity::Medium => l.t("medium", "中"),
        Severity::High => l.t("high", "高"),
    }
}

/// A sign-off role of [`record::blank_sign_off`] in the page's language; another as recorded.
fn role(role: &str, l: Labels) -> String {
    let zh = match role {
        "drill lead" => "演练负责人",
        "IT owner" => "信息科技负责人",
        "business owner (verification)" => "业务负责人（业务验证）",
        "BCM lead department" => "业务连续性管理牵头部门",
        "IT-risk department" => "信息科技风险管理部门",
        "observer / audit" => "观察员／审计",
        other => other,
    };
    if l.zh() { zh } else { role }.to_string()
}

/// The verdict and the counts at a glance, before the numbered sections.
fn summary(r: &DrillRecord, l: Labels) -> Markup {
    let count = |v: Verdict| r.results.iter().filter(|s| s.result.verdict == v).count();
    html! {
        div.summary {
            p { strong { (l.t("Overall verdict", "总体结论")) ": " } (verdict(r.verdict, l)) }
            p {
                (l.t("Systems", "系统")) ": "
                (r.results.len()) " — "
                (l.t("pass", "通过")) " " (count(Verdict::Pass)) ", "
                (l.t("pass with conditions", "有条件通过")) " " (count(Verdict::PassWithConditions)) ", "
                (l.t("fail", "未通过")) " " (count(Verdict::Fail))
            }
            p {
                (l.t("Drill", "演练")) ": " (status(r.header.status, l)) "; "
                (time(r.header.started_at)) " → " (opt_time(r.header.finished_at))
            }
        }
    }
}

fn header(r: &DrillRecord, l: Labels) -> Markup {
    let h = &r.header;
    html! {
        (section(1, l, "Header", "基本信息", false))
        dl {
            dt { (l.t("Drill ID", "演练编号")) } dd { code { (h.drill_id) } }
            dt { (l.t("Title", "标题")) } dd { (h.title) @if let Some(zh) = &h.title_zh { " / " (zh) } }
            dt { (l.t("Plan", "演练方案")) } dd { code { (h.plan.as_str()) } }
            dt { (l.t("Drill type", "演练类型")) } dd { (drill_type(h.drill_type, l)) " (" code { (h.drill_type) } ")" }
            dt { (l.t("Regulatory", "监管要求")) } dd { (regulatory(r, l)) }
            dt { (l.t("Status", "状态")) } dd { (status(h.status, l)) }
            dt { (l.t("Started by", "发起人")) } dd { (h.started_by) }
            dt { (l.t("Started (T_outage)", "开始时间（T_outage）")) } dd { (time(h.started_at)) }
            dt { (l.t("Finished", "结束时间")) } dd { (opt_time(h.finished_at)) }
            dt { (l.t("Policy digest", "策略摘要")) } dd { span.hash { (h.policy_digest) } }
            dt { (l.t("lifeboat version", "lifeboat 版本")) } dd { (h.lifeboat_version) }
            dt { (l.t("Classification", "密级")) } dd { (l.t("internal", "内部")) }
        }
    }
}

fn objectives(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(2, l, "Objectives and success criteria", "演练目标与成功标准", false))
        @if r.objectives.is_empty() {
            p.note { (l.t("No system in scope.", "范围内无系统。")) }
        } @else {
            table {
                thead { tr {
                    th { (l.t("System", "系统")) } th { (l.t("Tier", "等级")) }
                    th.num { (l.t("RPO target", "RPO 目标")) }
                    th.num { (l.t("IT RTO target", "技术 RTO 目标")) }
                    th.num { (l.t("Business RTO target", "业务 RTO 目标")) }
                    th { (l.t("Verification required", "需业务验证")) }
                } }
                tbody { @for o in &r.objectives { tr {
                    td { (o.system.as_str()) } td { (o.tier.as_str()) }
                    td.num { (duration(o.rpo_target_seconds, l)) }
                    td.num { (duration(o.it_rto_target_seconds, l)) }
                    td.num { (duration(o.business_rto_target_seconds, l)) }
                    td { (yes_no(o.verify_required, l)) }
                } } }
            }
        }
    }
}

fn scope(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(3, l, "Scope", "演练范围", false))
        h3 { (l.t("Restored", "实际恢复")) }
        (list(&r.scope.restored, l))
        h3 { (l.t("Only extrapolated (not restored)", "仅外推（未恢复）")) }
        (list(&r.scope.extrapolated, l))
        h3 { (l.t("Excluded", "排除")) }
        (list(&r.scope.excluded, l))
    }
}

/// The copies the scenario allows: the recorded sentence in English, the same rule in Chinese
/// from the scenario's fields.
fn allowed_copies(r: &DrillRecord, l: Labels) -> String {
    let s = &r.scenario;
    if !l.zh() {
        return s.allowed_copies.clone();
    }
    match s.kind {
        DrillScenarioKind::ComponentLoss => "T_disaster 时已可用的任一完整副本".to_string(),
        DrillScenarioKind::SiteLoss => format!(
            "T_disaster 时已在失效站点{}以外的存储库中可用的完整副本，不得使用本地或同站点副本",
            s.lost_site
                .as_ref()
                .map(|x| format!("（{x}）"))
                .unwrap_or_default()
        ),
        DrillScenarioKind::Ransomware => format!(
            "不可变存储库中、于入侵时刻{}之前捕获的完整副本",
            s.compromise_at
                .map(|t| format!("（{}）", time(t)))
                .unwrap_or_default()
        ),
    }
}

fn scenario(r: &DrillRecord, l: Labels) -> Markup {
    let s = &r.scenario;
    html! {
        (section(4, l, "Scenario", "演练场景", false))
        dl {
            dt { (l.t("Failure type", "故障类型")) } dd { (scenario_kind(s.kind, l)) " (" code { (s.kind) } ")" }
            dt { (l.t("Lost site", "失效站点")) } dd { (s.lost_site.as_ref().map_or("—", |x| x.as_str())) }
            dt { (l.t("Lost system", "失效系统")) } dd { (s.lost_system.as_ref().map_or("—", |x| x.as_str())) }
            dt { (l.t("T_outage (simulated outage)", "T_outage（模拟中断时刻）")) } dd { (time(s.outage)) }
            dt { (l.t("T_disaster (data loss point)", "T_disaster（数据丢失时刻）")) }
            dd { @match s.declared_disaster {
                Some(t) => (time(t)),
                None => "= T_outage",
            } }
            dt { (l.t("Compromised since", "入侵时刻")) } dd { (opt_time(s.compromise_at)) }
            dt { (l.t("Allowed copies", "允许使用的副本")) } dd { (allowed_copies(r, l)) }
        }
    }
}

fn organisation(r: &DrillRecord, l: Labels) -> Markup {
    let o = &r.organisation;
    let join = |v: &[String]| {
        if v.is_empty() {
            "—".to_string()
        } else {
            v.join(", ")
        }
    };
    html! {
        (section(5, l, "Organisation", "组织与人员", false))
        dl {
            dt { (l.t("Drill lead", "演练负责人")) } dd { (o.lead.as_deref().unwrap_or("—")) }
            dt { (l.t("Participants", "参与人员")) } dd { (join(&o.participants)) }
            dt { (l.t("Observers", "观察员")) } dd { (join(&o.observers)) }
        }
    }
}

fn readiness(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(6, l, "Readiness check", "准备情况检查", false))
        @if r.readiness.is_empty() {
            p.note { (l.t("No readiness check recorded.", "无准备情况检查记录。")) }
        } @else {
            table {
                thead { tr { th { (l.t("Check", "检查项")) } th { (l.t("OK", "通过")) } th { (l.t("Detail", "详情")) } } }
                tbody { @for i in &r.readiness { tr {
                    td { (i.subject) } td { (yes_no(i.ok, l)) } td { (i.detail) }
                } } }
            }
        }
    }
}

fn timeline(r: &DrillRecord, l: Labels) -> Markup {
    let start = r.header.started_at;
    html! {
        (section(7, l, "Timeline", "时间线", true))
        table {
            thead { tr {
                th { (l.t("Mark", "时间点")) } th { (l.t("At", "时间")) }
                th.num { (l.t("Since T_outage", "距 T_outage")) }
                th { (l.t("Recorded by", "记录人")) } th { (l.t("Source", "来源")) }
            } }
            tbody { @for m in &r.timeline { tr {
                td { code { (m.mark) } } td { (time(m.at)) }
                td.num { (duration(m.at.duration_since(start).as_secs(), l)) }
                td { (m.recorded_by) } td { (m.source) }
            } } }
        }
        h3 { (l.t("Step log", "步骤日志")) }
        @if r.step_log.is_empty() {
            (none(l))
        } @else {
            table {
                thead { tr {
                    th { (l.t("At", "时间")) } th { (l.t("Step", "步骤")) } th { (l.t("System", "系统")) }
                    th { (l.t("Event", "事件")) } th { (l.t("Detail", "详情")) }
                } }
                tbody { @for s in &r.step_log { tr {
                    td { (time(s.at)) } td { (s.step) }
                    td { (s.system.as_ref().map_or("", |x| x.as_str())) }
                    td { (s.event) } td { (s.detail.as_deref().unwrap_or("")) }
                } } }
            }
        }
    }
}

/// The IT RTO of each system against its target: measured (green within, red over), projected
/// for the systems only extrapolated (amber), or never measured (grey). Hours when a figure
/// reaches three hours, minutes below.
fn rto_chart(r: &DrillRecord, l: Labels) -> Markup {
    let projected = r.projection.as_ref().map(|p| p.projected_it_rto_seconds);
    let rows: Vec<(&SystemRecord, Option<i64>, bool)> = r
        .results
        .iter()
        .map(|s| {
            let x = &s.result;
            match x.it_rto_seconds {
                Some(v) => (s, Some(v), false),
                None if r.scope.extrapolated.contains(&x.system) => {
                    (s, projected, projected.is_some())
                }
                None => (s, None, false),
            }
        })
        .collect();
    let largest = rows
        .iter()
        .flat_map(|(s, v, _)| [*v, Some(s.result.it_rto_target_seconds)])
        .flatten()
        .max()
        .unwrap_or(0);
    let (per, unit) = if largest >= 3 * 3_600 {
        (3_600.0, l.t("hours", "小时"))
    } else {
        (60.0, l.t("minutes", "分钟"))
    };
    let bars = rows
        .into_iter()
        .map(|(s, value, extrapolated)| {
            let target = s.result.it_rto_target_seconds;
            let rag = match value {
                None => Rag::Grey,
                Some(v) if v > target => Rag::Red,
                Some(_) if extrapolated => Rag::Amber,
                Some(_) => Rag::Green,
            };
            Bar {
                label: s.result.system.as_str().to_string(),
                value: value.map(|v| v as f64 / per),
                target: Some(target as f64 / per),
                rag,
                note: if extrapolated {
                    l.t(
                        "projected from the measured throughput, not measured",
                        "按实测吞吐量外推，非实测",
                    )
                    .to_string()
                } else {
                    String::new()
                },
            }
        })
        .collect();
    let chart = BarChart {
        title: l
            .t("IT RTO vs target per system", "各系统技术 RTO 与目标")
            .to_string(),
        unit: unit.to_string(),
        bars,
    };
    html! { figure { (chart::bar_chart(&chart, l.0)) } }
}

fn results(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(8, l, "Results per system", "各系统结果", true))
        @if r.results.is_empty() {
            p.note { (l.t("No system was measured.", "无系统结果。")) }
        } @else {
            (rto_chart(r, l))
            @for s in &r.results { (system_result(s, l)) }
        }
        (projection(r, l))
    }
}

fn against(achieved: Option<i64>, target: i64, l: Labels) -> Markup {
    let shown = opt_duration(achieved, l);
    html! {
        @match achieved {
            Some(a) if a > target => { span.bad { (shown) } " / " (duration(target, l)) }
            _ => { (shown) " / " (duration(target, l)) }
        }
    }
}

fn system_result(s: &SystemRecord, l: Labels) -> Markup {
    let x = &s.result;
    html! {
        h3 {
            (x.system.as_str()) " "
            span.note { "(" (l.t("tier", "等级")) " " (x.tier.as_str()) ")" } " "
            (verdict(x.verdict, l))
        }
        table.kv {
            tbody {
                tr { th { (l.t("Restore point used", "使用的恢复点")) } td {
                    @match &s.restore_point {
                        Some(p) => {
                            (l.t("snapshot", "快照")) " " code { (p.snapshot) } " — "
                            (p.repository.as_str()) " (" (location(p.location, l))
                            @if p.immutable { ", " (l.t("immutable", "不可变")) } "); "
                            (l.t("captured", "捕获时间")) " " (time(p.t_cap)) "; "
                            (l.t("available there", "到达该处时间")) " " (time(p.t_avail))
                        }
                        None => (l.t("none", "无")),
                    }
                } }
                tr { th { (l.t("Data restored", "恢复数据量")) } td {
                    (bytes(s.bytes_restored)) ", " (s.files_restored) " " (l.t("files", "个文件"))
                } }
                tr { th { (l.t("Throughput", "吞吐量")) } td { (throughput(x.throughput_bytes_per_second)) } }
                tr { th { (l.t("Achieved RPO / target", "实际 RPO / 目标")) } td { (against(x.achieved_rpo_seconds, x.rpo_target_seconds, l)) } }
                tr { th { (l.t("IT RTO / target", "技术 RTO / 目标")) } td { (against(x.it_rto_seconds, x.it_rto_target_seconds, l)) } }
                tr { th { (l.t("Business RTO / target", "业务 RTO / 目标")) } td { (against(x.business_rto_seconds, x.business_rto_target_seconds, l)) } }
                tr { th { (l.t("RTO from declaration", "自宣告起 RTO")) } td { (opt_duration(x.rto_from_declaration_seconds, l)) } }
                tr { th { (l.t("Decision latency", "决策时延")) } td { (opt_duration(x.decision_latency_seconds, l)) } }
                tr { th { (l.t("Restored tree digest", "恢复数据摘要")) } td {
                    @match &s.tree_digest { Some(d) => span.hash { (d) }, None => "—" }
                } }
            }
        }
        @if !x.reasons.is_empty() {
            p { (l.t("Reasons", "原因")) ":" }
            (list(&x.reasons, l))
        }
    }
}

fn projection(r: &DrillRecord, l: Labels) -> Markup {
    let Some(p) = &r.projection else {
        return html! {};
    };
    html! {
        h3 { (l.t("Projection", "全量 RTO 预测")) }
        p.extrapolated {
            @if p.extrapolated {
                (l.t("Extrapolated, not measured", "外推值，非实测"))
            } @else {
                (l.t("The whole dataset was restored", "已恢复全量数据"))
            }
            ": " (l.t("fixed overheads", "固定开销")) " " (duration(p.fixed_overhead_seconds, l))
            " + " (l.t("full dataset", "全量数据")) " " (bytes(p.full_bytes))
            " ÷ " (l.t("measured throughput", "实测吞吐量")) " " (throughput(Some(p.throughput_bytes_per_second)))
            " = " (l.t("projected IT RTO", "预测技术 RTO")) " " strong { (duration(p.projected_it_rto_seconds, l)) }
            " (" (l.t("restored", "已恢复")) " " (bytes(p.restored_bytes)) ")."
        }
    }
}

fn deviations(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(9, l, "Deviations from the runbook", "与预案的偏差", false))
        (list(&r.deviations, l))
    }
}

fn findings(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(10, l, "Findings", "发现问题", false))
        @if r.findings.is_empty() {
            (none(l))
        } @else {
            table {
                thead { tr { th { (l.t("Category", "类别")) } th { (l.t("Severity", "严重程度")) } th { (l.t("Finding", "描述")) } } }
                tbody { @for f in &r.findings { tr {
                    td { (category(f.category, l)) } td { (severity(f.severity, l)) } td { (f.text) }
                } } }
            }
        }
    }
}

/// §4.1 items 11 and 12: people write them on the printed page.
fn to_be_filled(l: Labels) -> Markup {
    html! {
        (section(11, l, "Corrective actions", "整改措施", false))
        table.signoff {
            thead { tr {
                th { "ID" } th { (l.t("Action", "措施")) } th { (l.t("Owner", "责任人")) }
                th { (l.t("Due", "期限")) } th { (l.t("Re-drill required", "需重新演练")) }
            } }
            tbody { @for _ in 0..2 { tr { td {} td {} td {} td {} td {} } } }
        }
        (section(12, l, "Lessons learned", "经验教训", false))
        p.note { (l.t("To be filled in by the drill lead; plan or runbook changes required.", "由演练负责人填写；需修订的预案或操作手册。")) }
    }
}

fn evidence(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(13, l, "Evidence annex", "证据附件", true))
        @if r.evidence.is_empty() {
            p.note { (l.t("No evidence file.", "无证据文件。")) }
        } @else {
            table {
                thead { tr { th { (l.t("File", "文件")) } th.num { (l.t("Bytes", "字节")) } th { "SHA-256" } } }
                tbody { @for e in &r.evidence { tr {
                    td { code { (e.name) } } td.num { (e.bytes) } td.hash { (e.sha256) }
                } } }
            }
        }
        dl {
            dt { (l.t("Evidence bundle SHA-256", "证据包哈希（SHA-256）")) }
            dd { @match &r.bundle_sha256 {
                Some(h) => span.hash { (h) },
                None => (l.t("— (no bundle)", "—（无证据包）")),
            } }
            dt { (l.t("Previous record hash", "上一记录哈希")) } dd { span.hash { (r.previous_hash) } }
            dt { (l.t("Record hash", "本记录哈希")) } dd { span.hash { (r.record_hash) } }
        }
        p.note {
            (l.t(
                "The record hash is the SHA-256 of the record's canonical JSON and includes the previous record's hash: ",
                "记录哈希为本记录规范 JSON 的 SHA-256，并包含上一记录的哈希；",
            ))
            code { "lifeboat drill verify-chain" }
            (l.t(" proves the history unaltered.", " 可校验演练历史未被篡改。"))
        }
    }
}

fn sign_off(r: &DrillRecord, l: Labels) -> Markup {
    html! {
        (section(14, l, "Sign-off", "签字确认", false))
        table.signoff {
            thead { tr {
                th { (l.t("Role", "角色")) } th { (l.t("Name", "姓名")) }
                th { (l.t("Date", "日期")) } th { (l.t("Signature", "签字")) }
            } }
            tbody { @for s in &r.sign_off { tr {
                td { (role(&s.role, l)) } td { (s.name.as_deref().unwrap_or("")) }
                td { (s.signed_at.map(time).unwrap_or_default()) } td {}
            } } }
        }
        p.note { (l.t("Archive for at least three years.", "归档保存不少于三年。")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::measure::{Projection, SystemResult};
    use crate::drill::record::{
        self, DrillEnd, EvidenceItem, Finding, FindingCategory, Header, OrganisationSection,
        ReadinessItem, ScenarioSection, Scope, Severity, StepLogEntry, TimelineEntry,
    };
    use crate::drill::select::RestorePoint;
    use crate::policy::{DrillScenarioKind, DrillType, Location};

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn record() -> DrillRecord {
        let result = SystemResult {
            system: "fin".parse().unwrap(),
            tier: "T1".parse().unwrap(),
            achieved_rpo_seconds: Some(7_200),
            rpo_target_seconds: 14_400,
            it_rto_seconds: Some(40_000),
            it_rto_target_seconds: 28_800,
            business_rto_seconds: None,
            business_rto_target_seconds: 43_200,
            rto_from_declaration_seconds: None,
            decision_latency_seconds: None,
            throughput_bytes_per_second: Some(10.0 * 1024.0 * 1024.0),
            verdict: Verdict::Fail,
            reasons: vec!["IT RTO 11h 6m exceeds the T1 target of 8h.".into()],
        };
        let rec = DrillRecord {
            header: Header {
                drill_id: uuid::Uuid::nil(),
                plan: "linfen".parse().unwrap(),
                title: "Linfen <script>alert(1)</script> & co".into(),
                title_zh: Some("临汾站点失效".into()),
                drill_type: DrillType::FullSwitchover,
                regulatory: record::regulatory_flag(DrillType::FullSwitchover),
                policy_digest: "ab".repeat(32),
                lifeboat_version: "0.1.0".into(),
                started_by: "user:alice".into(),
                started_at: t("2026-03-01T08:00:00Z"),
                finished_at: Some(t("2026-03-01T20:00:00Z")),
                status: DrillEnd::Completed,
            },
            objectives: vec![record::Objective {
                system: "fin".parse().unwrap(),
                tier: "T1".parse().unwrap(),
                rpo_target_seconds: 14_400,
                it_rto_target_seconds: 28_800,
                business_rto_target_seconds: 43_200,
                verify_required: true,
            }],
            scope: Scope {
                restored: vec!["fin".parse().unwrap()],
                extrapolated: vec!["hr".parse().unwrap()],
                excluded: vec![],
            },
            scenario: ScenarioSection {
                kind: DrillScenarioKind::SiteLoss,
                lost_site: Some("linfen".parse().unwrap()),
                lost_system: None,
                outage: t("2026-03-01T08:00:00Z"),
                declared_disaster: None,
                compromise_at: None,
                allowed_copies: "off-site copies".into(),
            },
            organisation: OrganisationSection {
                lead: Some("Wang Wei".into()),
                participants: vec!["IT ops".into()],
                observers: vec![],
            },
            readiness: vec![ReadinessItem {
                subject: "standby agent dr01".into(),
                ok: true,
                detail: "online".into(),
            }],
            timeline: vec![TimelineEntry {
                mark: "outage".into(),
                at: t("2026-03-01T08:00:00Z"),
                recorded_by: "user:alice".into(),
                source: "drill start".into(),
            }],
            step_log: vec![StepLogEntry {
                at: t("2026-03-01T08:00:01Z"),
                step: "restore".into(),
                system: Some("fin".parse().unwrap()),
                event: "failed".into(),
                detail: Some("pack <1a2b> is corrupt".into()),
            }],
            results: vec![SystemRecord {
                result,
                restore_point: Some(RestorePoint {
                    system: "fin".parse().unwrap(),
                    snapshot: "0123abcd".into(),
                    repository: "province-s3".parse().unwrap(),
                    location: Location::Remote,
                    immutable: true,
                    t_cap: t("2026-03-01T06:00:00Z"),
                    t_avail: t("2026-03-01T06:30:00Z"),
                    bytes: Some(1 << 30),
                    files: Some(100),
                }),
                bytes_restored: 1 << 30,
                files_restored: 100,
                tree_digest: Some("cd".repeat(32)),
            }],
            projection: Some(Projection {
                restored_bytes: 1 << 30,
                full_bytes: 10 << 30,
                fixed_overhead_seconds: 600,
                throughput_bytes_per_second: 10.0 * 1024.0 * 1024.0,
                projected_it_rto_seconds: 1_648,
                extrapolated: true,
            }),
            verdict: Verdict::Fail,
            deviations: vec!["health check run by hand".into()],
            findings: vec![Finding {
                category: FindingCategory::Technical,
                severity: Severity::High,
                text: "fin: IT RTO exceeds".into(),
            }],
            evidence: vec![EvidenceItem::of("plan.json", b"{}")],
            bundle_sha256: Some("ef".repeat(32)),
            sign_off: record::blank_sign_off(),
            previous_hash: record::GENESIS_HASH.into(),
            record_hash: String::new(),
        };
        record::seal(rec, record::GENESIS_HASH)
    }

    /// The fixture with a second system in scope that was only extrapolated.
    fn with_extrapolated() -> DrillRecord {
        let mut r = record();
        let mut hr = r.results[0].clone();
        hr.result.system = "hr".parse().unwrap();
        hr.result.it_rto_seconds = None;
        hr.result.it_rto_target_seconds = 86_400;
        hr.result.verdict = Verdict::PassWithConditions;
        hr.restore_point = None;
        r.results.push(hr);
        r
    }

    fn has_cjk(text: &str) -> bool {
        text.chars()
            .any(|c| matches!(c as u32, 0x3000..=0x303F | 0x3400..=0x9FFF | 0xFF00..=0xFFEF))
    }

    const EN_SECTIONS: [&str; 14] = [
        "1. Header",
        "2. Objectives and success criteria",
        "3. Scope",
        "4. Scenario",
        "5. Organisation",
        "6. Readiness check",
        "7. Timeline",
        "8. Results per system",
        "9. Deviations from the runbook",
        "10. Findings",
        "11. Corrective actions",
        "12. Lessons learned",
        "13. Evidence annex",
        "14. Sign-off",
    ];

    const ZH_SECTIONS: [&str; 14] = [
        "1. 基本信息",
        "2. 演练目标与成功标准",
        "3. 演练范围",
        "4. 演练场景",
        "5. 组织与人员",
        "6. 准备情况检查",
        "7. 时间线",
        "8. 各系统结果",
        "9. 与预案的偏差",
        "10. 发现问题",
        "11. 整改措施",
        "12. 经验教训",
        "13. 证据附件",
        "14. 签字确认",
    ];

    #[test]
    fn the_english_page_has_every_section_no_script_and_no_chinese_label() {
        let mut r = with_extrapolated();
        r.header.title_zh = None;
        let html = page(&r, Lang::En);
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{html}"
        );
        assert!(html.trim_end().ends_with("</html>"));
        for heading in EN_SECTIONS {
            assert!(
                html.contains(&format!(">{heading}</h2>")),
                "missing {heading}"
            );
        }
        // Page breaks before the long sections only.
        assert_eq!(html.matches("<h2 class=\"section\">").count(), 3);
        // Every label in English: no Chinese character at all when the record has none.
        assert!(!has_cjk(&html), "{html}");
        // Nothing from the record becomes markup; no script, no external resource.
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("Linfen &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(html.contains("pack &lt;1a2b&gt; is corrupt"));
        assert!(!html.contains("src=") && !html.contains("href="));
        // Figures and hashes as the record has them.
        assert!(html.contains(&r.record_hash));
        assert!(html.contains(&"ef".repeat(32)));
        assert!(html.contains(record::GENESIS_HASH));
        assert!(html.contains("1.0 GiB, 100 files"));
        assert!(html.contains("10.0 MiB/s"));
        assert!(
            html.contains("<span class=\"bad\">11h 6m</span> / 8h"),
            "{html}"
        );
        assert!(html.contains("2h / 4h"));
        assert!(html.contains("not measured / 12h"));
        assert!(html.contains("Extrapolated, not measured"));
        assert!(html.contains("<span class=\"verdict fail\">fail</span>"));
        assert!(html.contains("business owner (verification)"));
        assert!(html.contains("Measures No. 114, Art. 35"));
        assert!(html.contains("remote region, immutable"));
        // The RTO chart: fin over its target (red), hr projected (amber), in hours.
        assert!(html.contains("role=\"img\""));
        assert!(html.contains("IT RTO vs target per system"));
        assert!(
            html.contains("11.11 hours / target 8 hours · Red"),
            "{html}"
        );
        assert!(
            html.contains("0.46 hours / target 24 hours · Amber"),
            "{html}"
        );
        assert!(html.contains("projected from the measured throughput, not measured"));
    }

    #[test]
    fn the_chinese_page_has_every_section_in_chinese() {
        let r = with_extrapolated();
        let html = page(&r, Lang::ZhCn);
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"zh-CN\">"),
            "{html}"
        );
        for heading in ZH_SECTIONS {
            assert!(
                html.contains(&format!(">{heading}</h2>")),
                "missing {heading}"
            );
        }
        for english in EN_SECTIONS {
            assert!(!html.contains(&format!(">{english}</h2>")), "{english}");
        }
        for label in [
            "Overall verdict",
            "Restore point used",
            "Achieved RPO",
            "never measured",
            "Sign-off",
            "Evidence bundle",
            "hours",
            "not measured",
        ] {
            assert!(
                !html.contains(label),
                "English label {label:?} in the Chinese page"
            );
        }
        assert!(
            html.contains("<title>演练报告 — 临汾站点失效</title>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"bad\">11小时6分</span> / 8小时"),
            "{html}"
        );
        assert!(html.contains("未测量 / 12小时"));
        assert!(html.contains("<span class=\"verdict fail\">未通过</span>"));
        assert!(html.contains("全面切换演练（含回切）"));
        assert!(html.contains("114号 第35条"));
        assert!(html.contains("业务负责人（业务验证）"));
        assert!(html.contains("异地, 不可变"));
        assert!(html.contains("失效站点（linfen）以外"), "{html}");
        assert!(html.contains("11.11 小时 / 目标 8 小时 · 红"), "{html}");
        assert!(html.contains("按实测吞吐量外推，非实测"));
        assert!(html.contains("1.0 GiB, 100 个文件"));
        // Record content stays escaped in either language.
        assert!(html.contains("Linfen &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_not_ready_drill_renders_without_results() {
        let mut r = record();
        r.results.clear();
        r.objectives.clear();
        r.projection = None;
        r.bundle_sha256 = None;
        r.readiness[0].ok = false;
        r.header.status = DrillEnd::NotReady;
        for (lang, expected) in [
            (
                Lang::En,
                [
                    "No system was measured",
                    "no bundle",
                    "<span class=\"bad\">no</span>",
                ],
            ),
            (
                Lang::ZhCn,
                ["无系统结果", "无证据包", "<span class=\"bad\">否</span>"],
            ),
        ] {
            let html = page(&r, lang);
            for e in expected {
                assert!(html.contains(e), "{lang}: {e}");
            }
            assert!(!html.contains("<svg"), "no chart without results");
            assert!(!html.contains("Projection") && !html.contains("全量 RTO 预测"));
        }
    }

    #[test]
    fn durations_and_bytes() {
        let table = [
            (0, "0s", "0秒"),
            (45, "45s", "45秒"),
            (3_600, "1h", "1小时"),
            (40_000, "11h 6m", "11小时6分"),
            (90_061, "1d 1h", "1天1小时"),
            (-120, "-2m", "-2分"),
        ];
        for (secs, en, zh) in table {
            assert_eq!(duration(secs, Labels(Lang::En)), en, "{secs}");
            assert_eq!(duration(secs, Labels(Lang::ZhCn)), zh, "{secs}");
        }
        let table = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (5 << 30, "5.0 GiB"),
        ];
        for (n, shown) in table {
            assert_eq!(bytes(n), shown, "{n}");
        }
    }
}
