//! The report as one self-contained, printable HTML page in English or Chinese: inline CSS
//! ([`PRINT_CSS`]), inline SVG charts from `report::chart`, no JavaScript, no external
//! resource. What `--format html` writes and what `--format pdf` prints.
//!
//! Pure: model in, markup out, through maud (every interpolation is escaped, so a system name
//! or an agent's error message cannot inject markup). It computes no figure and decides no
//! status: it lays out what `build` decided, with the words of `words`.

use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::*;
use super::words::{self, dur, exposure, percent};
use crate::assess::Scenario;
use crate::i18n::Lang;
use crate::report::chart::{
    self, Bar, BarChart, HeatCell, HeatMap, LineChart, PRINT_CSS, Rag, Series,
};

/// Styles of this page on top of the shared print sheet.
const PAGE_CSS: &str = "
.cover dl { margin-top: 1em; }
.provisional { border: 2px solid #b71c1c; padding: .4em .8em; font-weight: 600; }
ul.reasons { margin: .2em 0 .2em 1.2em; padding: 0; font-size: .9em; }
.todo { border: 1px dashed #8c959f; padding: .6em .8em; min-height: 3em; color: #57606a; }
td.rag-cell { white-space: nowrap; }
";

fn rag(lang: Lang, r: Rag) -> Markup {
    let class = match r {
        Rag::Green => "rag rag-green",
        Rag::Amber => "rag rag-amber",
        Rag::Red => "rag rag-red",
        Rag::Grey => "rag rag-grey",
    };
    html! { span class=(class) { (r.label(lang)) } }
}

/// The tier's name for people: `T1 Important` / `T1 重要`.
fn tier_name(report: &QuarterlyReport, lang: Lang, id: &crate::policy::TierId) -> String {
    match report.meta.tiers.iter().find(|t| &t.id == id) {
        Some(t) => {
            let name = match lang {
                Lang::ZhCn => t.name_zh.as_deref().unwrap_or(&t.name),
                Lang::En => &t.name,
            };
            format!("{} {name}", t.id)
        }
        None => id.to_string(),
    }
}

fn site_name(report: &QuarterlyReport, lang: Lang, id: &crate::policy::SiteId) -> String {
    match report.meta.sites.iter().find(|s| &s.id == id) {
        Some(s) => match lang {
            Lang::ZhCn => s.name_zh.clone().unwrap_or_else(|| s.name.clone()),
            Lang::En => s.name.clone(),
        },
        None => id.to_string(),
    }
}

fn hours(secs: i64) -> f64 {
    secs as f64 / 3600.0
}

/// The page.
pub fn render(report: &QuarterlyReport, lang: Lang) -> Markup {
    let tz = TimeZone::get(&report.meta.time_zone).unwrap_or(TimeZone::UTC);
    let title = match lang {
        Lang::En => format!(
            "Quarterly recovery-objectives report {}",
            report.meta.quarter
        ),
        Lang::ZhCn => format!(
            "灾备恢复目标季度报告 {}年第{}季度",
            report.meta.quarter.year(),
            report.meta.quarter.number()
        ),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(PRINT_CSS)) (PreEscaped(PAGE_CSS)) }
            }
            body {
                (cover(report, lang, &tz, &title))
                (summary(report, lang))
                (inventory(report, lang))
                (rpo(report, lang, &tz))
                (rto(report, lang, &tz))
                (posture(report, lang, &tz))
                (operations(report, lang))
                (drills(report, lang, &tz))
                (findings(report, lang, &tz))
                (owner_items(report, lang))
                (appendix(report, lang, &tz))
                (sign_off(report, lang))
            }
        }
    }
}

fn cover(report: &QuarterlyReport, lang: Lang, tz: &TimeZone, title: &str) -> Markup {
    let m = &report.meta;
    html! {
        header.cover {
            h1 { (title) }
            p.note { (lang.pick(
                "For the business-continuity committee and senior management (standards §4.2; 104号 第10条, 第54条, 第92条).",
                "呈业务连续性管理委员会及高级管理层（标准 §4.2；104号 第10条、第54条、第92条）。"
            )) }
            @if !m.complete {
                p.provisional { (lang.pick(
                    "Provisional: the quarter is not over; figures are measured up to the generation time.",
                    "临时版本：本季度尚未结束，数据截至生成时间。"
                )) }
            }
            dl {
                dt { (lang.pick("Period", "报告期")) }
                dd { (words::when(m.from, tz)) " – " (words::when(m.to, tz)) " (" (m.time_zone) ")" }
                dt { (lang.pick("Measured to", "数据截至")) }
                dd { (words::when(m.measured_to, tz)) }
                dt { (lang.pick("Generated", "生成时间")) }
                dd { (words::when(m.generated_at, tz)) }
                dt { (lang.pick("Policy digest", "策略摘要")) }
                dd { code { (m.policy_digest) } }
                dt { (lang.pick("Software", "软件版本")) }
                dd { "lifeboat " (m.lifeboat_version) }
            }
        }
    }
}

fn summary(report: &QuarterlyReport, lang: Lang) -> Markup {
    let s = &report.summary;
    let sites: Vec<&SiteInfo> = report.meta.sites.iter().collect();
    let tiers: Vec<&TierInfo> = report
        .meta
        .tiers
        .iter()
        .filter(|t| s.cells.iter().any(|c| c.tier == t.id))
        .collect();
    let map = HeatMap {
        title: lang
            .pick("Status by branch and tier", "各分支机构与等级状态")
            .to_string(),
        rows: sites
            .iter()
            .map(|x| site_name(report, lang, &x.id))
            .collect(),
        cols: tiers
            .iter()
            .map(|t| tier_name(report, lang, &t.id))
            .collect(),
        cells: sites
            .iter()
            .map(|site| {
                tiers
                    .iter()
                    .map(|tier| {
                        let cell = s
                            .cells
                            .iter()
                            .find(|c| c.site == site.id && c.tier == tier.id)?;
                        let within = report
                            .rpo
                            .groups
                            .iter()
                            .find(|g| {
                                g.site == site.id
                                    && g.tier == tier.id
                                    && g.scenario == Scenario::SiteLoss
                            })
                            .and_then(|g| g.compliance.within_percent);
                        Some(HeatCell {
                            rag: cell.rag,
                            text: percent(within),
                            href: None,
                        })
                    })
                    .collect()
            })
            .collect(),
    };
    html! {
        h2.section { "1. " (lang.pick("Executive summary", "执行摘要")) }
        p { (lang.pick("Overall status: ", "总体状态：")) (rag(lang, s.overall)) }
        table {
            thead { tr {
                th { (lang.pick("Tier", "等级")) }
                th { (lang.pick("Status", "状态")) }
                th.num { (lang.pick("Systems", "系统数")) }
                th.num { (lang.pick("Site-loss RPO: time within target", "站点灾难 RPO 达标时间")) }
                th.num { (lang.pick("Systems never in breach", "全季度达标系统")) }
                th.num { (lang.pick("Worst exposure", "最大暴露")) }
                th { (lang.pick("Last drilled RTO vs target", "最近演练 RTO 与目标")) }
            } }
            tbody {
                @for t in &s.tiers {
                    tr {
                        td { (tier_name(report, lang, &t.tier)) }
                        td.rag-cell { (rag(lang, t.rag)) }
                        td.num { (t.systems) }
                        td.num { (percent(t.site_loss.within_percent)) }
                        td.num { (t.site_loss.systems_within) " / " (t.site_loss.systems) }
                        td.num { (exposure(lang, t.site_loss.worst_exposure_seconds, t.site_loss.unbounded)) }
                        td { (tier_drill(lang, t.last_drill.as_ref())) }
                    }
                    @if !t.reasons.is_empty() {
                        tr { td colspan="7" {
                            ul.reasons { @for r in &t.reasons { li { (words::rag_reason(lang, r)) } } }
                        } }
                    }
                }
            }
        }
        p.note { (lang.pick(
            "Red: a system within its site-loss RPO target less than 95 % of the quarter, with no counted off-site copy at its end, or failing its latest drill. Amber: any site-loss breach, another scenario below 95 %, a drill never held or overdue, or 3-2-1-1-0 not met. Green otherwise.",
            "红：任一系统本季度站点灾难 RPO 达标时间低于 95 %、季度末无可计入的异地副本，或最近一次演练未通过。黄：出现站点灾难超标、其他场景低于 95 %、从未演练或演练逾期，或未满足 3-2-1-1-0。其余为绿。"
        )) }
        figure { (chart::heat_map(&map, lang)) }
        h3 { (lang.pick("Top risks", "主要风险")) }
        @if s.top_risks.is_empty() {
            p { (lang.pick("No high-severity finding this quarter.", "本季度无高严重度问题。")) }
        } @else {
            ul { @for id in &s.top_risks {
                @if let Some(f) = report.findings.iter().find(|f| &f.id == id) {
                    li { (id) ": " (words::finding(lang, &f.kind, &TimeZone::get(&report.meta.time_zone).unwrap_or(TimeZone::UTC))) }
                }
            } }
        }
        h3 { (lang.pick("Decisions requested", "需决策事项")) }
        div.todo { (lang.pick("To be completed by the report owner.", "由报告负责人填写。")) }
    }
}

fn tier_drill(lang: Lang, d: Option<&TierDrill>) -> Markup {
    match d {
        None => html! { (lang.pick("never drilled", "从未演练")) },
        Some(d) => {
            let kind = match d.rto_kind {
                RtoKind::Business => lang.pick("business RTO", "业务 RTO"),
                RtoKind::It => lang.pick("IT RTO", "IT RTO"),
            };
            html! {
                (kind) " "
                (d.rto_seconds.map_or_else(|| lang.pick("not measured", "未测得").to_string(), |s| dur(lang, s)))
                " / " (dur(lang, d.rto_target_seconds))
                @if d.extrapolated { " (" (lang.pick("extrapolated", "推算")) ")" }
                " — " (d.plan) ", " (words::verdict(lang, d.verdict))
            }
        }
    }
}

fn inventory(report: &QuarterlyReport, lang: Lang) -> Markup {
    let inv = &report.inventory;
    html! {
        h2.section { "2. " (lang.pick("Scope and inventory", "范围与资产清单")) }
        table {
            thead { tr {
                th { (lang.pick("Tier", "等级")) }
                th { (lang.pick("Site", "站点")) }
                th.num { (lang.pick("Systems", "系统数")) }
            } }
            tbody { @for c in &inv.counts { tr {
                td { (tier_name(report, lang, &c.tier)) }
                td { (site_name(report, lang, &c.site)) }
                td.num { (c.systems) }
            } } }
        }
        table {
            thead { tr {
                th { (lang.pick("System", "系统")) }
                th { (lang.pick("Name", "名称")) }
                th { (lang.pick("Department", "部门")) }
                th { (lang.pick("Site", "站点")) }
                th { (lang.pick("Tier", "等级")) }
                th { (lang.pick("Copy chain", "副本链")) }
                th.num { (lang.pick("Source size", "源数据量")) }
            } }
            tbody { @for s in &inv.systems { tr {
                td { code { (s.id) } }
                td { (s.name) }
                td { (s.department) }
                td { (site_name(report, lang, &s.site)) }
                td { (s.tier) }
                td { (s.repositories.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" → ")) }
                td.num { (s.source_bytes.map_or_else(|| "—".to_string(), |b| words::bytes(lang, b))) }
            } } }
        }
        p {
            (lang.pick("New this quarter (first run recorded): ", "本季度新增（首次有运行记录）："))
            @if inv.new_this_quarter.is_empty() { (lang.pick("none", "无")) }
            @else { (inv.new_this_quarter.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
        }
    }
}

fn rpo(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    let r = &report.rpo;
    let trend = &report.meta.trend_quarters;
    html! {
        h2.section { "3. " (lang.pick("RPO compliance", "RPO 达标情况")) }
        p.note { (lang.pick(
            "Site loss is the headline scenario: only copies outside the system's site, as far as its tier demands, count.",
            "站点灾难为首要场景：仅计入位于系统所在站点之外、且满足等级距离要求的副本。"
        )) }
        @for series in &r.exposure_over_time {
            figure { (chart::line_chart(&LineChart {
                title: format!("{} — {}", tier_name(report, lang, &series.tier),
                    lang.pick("worst site-loss exposure over the quarter", "本季度站点灾难最大暴露")),
                y_unit: lang.pick("hours", "小时").to_string(),
                from: report.meta.from,
                to: report.meta.measured_to,
                series: vec![Series {
                    label: lang.pick("worst exposure", "最大暴露").to_string(),
                    points: series.points.clone(),
                }],
                target: Some(series.target_hours),
                target_label: lang.pick("RPO target", "RPO 目标").to_string(),
            }, lang)) }
        }
        h3 { (lang.pick("By tier, site and scenario", "按等级、站点与场景")) }
        table {
            thead { tr {
                th { (lang.pick("Tier", "等级")) }
                th { (lang.pick("Site", "站点")) }
                th { (lang.pick("Scenario", "场景")) }
                th { (lang.pick("Status", "状态")) }
                th.num { (lang.pick("Worst exposure", "最大暴露")) }
                th.num { (lang.pick("Time within target", "达标时间")) }
                th.num { (lang.pick("Breaches", "超标次数")) }
                th.num { (lang.pick("Time in breach", "超标时长")) }
                @for q in trend { th.num { (q) } }
            } }
            tbody { @for g in &r.groups { tr {
                td { (g.tier) }
                td { (site_name(report, lang, &g.site)) }
                td { (words::scenario(lang, g.scenario)) }
                td.rag-cell { (rag(lang, g.rag)) }
                td.num { (exposure(lang, g.compliance.worst_exposure_seconds, g.compliance.unbounded)) }
                td.num { (percent(g.compliance.within_percent)) }
                td.num { (g.compliance.breaches) }
                td.num { (dur(lang, g.compliance.breached_seconds)) }
                @for t in &g.trend { td.num { (percent(*t)) } }
            } } }
        }
        h3 { (lang.pick("By system", "按系统")) }
        table {
            thead { tr {
                th { (lang.pick("System", "系统")) }
                th { (lang.pick("Scenario", "场景")) }
                th.num { (lang.pick("Target", "目标")) }
                th.num { (lang.pick("Worst exposure", "最大暴露")) }
                th.num { (lang.pick("Time within target", "达标时间")) }
                th.num { (lang.pick("Breaches", "超标次数")) }
                th { (lang.pick("Causes", "原因")) }
            } }
            tbody { @for row in &r.rows { tr {
                td { code { (row.system) } }
                td { (words::scenario(lang, row.scenario)) }
                td.num { (dur(lang, row.target_seconds)) }
                td.num { (exposure(lang, row.worst_exposure_seconds, row.unbounded)) }
                td.num { (percent(Some(row.within_percent))) }
                td.num { (row.breaches) @if row.breaches > 0 { " (" (dur(lang, row.breached_seconds)) ")" } }
                td { @for c in &row.causes {
                    div {
                        (words::cause(lang, c.kind)) " ×" (c.count)
                        @if let Some(repo) = &c.repository { " " code { (repo) } }
                        @if let Some(at) = c.last_at { " " span.note { (words::when(at, tz)) } }
                        @if let Some(d) = &c.detail { br; span.note { (d) } }
                    }
                } }
            } } }
        }
    }
}

fn rto(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    let r = &report.rto;
    let bars = BarChart {
        title: lang
            .pick(
                "Last drilled RTO vs target per system",
                "各系统最近演练 RTO 与目标",
            )
            .to_string(),
        unit: lang.pick("h", "小时").to_string(),
        bars: r
            .systems
            .iter()
            .map(|s| {
                let l = s.last.as_ref();
                let (value, target) = match l {
                    Some(l) if l.business_rto_seconds.is_some() => (
                        l.business_rto_seconds.map(hours),
                        Some(hours(l.business_rto_target_seconds)),
                    ),
                    Some(l) => (
                        l.it_rto_seconds.map(hours),
                        Some(hours(l.it_rto_target_seconds)),
                    ),
                    None => (None, None),
                };
                let rag = match (l, value, target) {
                    (None, ..) => Rag::Grey,
                    (Some(l), _, _) if l.verdict == crate::drill::measure::Verdict::Fail => {
                        Rag::Red
                    }
                    (_, Some(v), Some(t)) if v > t => Rag::Red,
                    (Some(_), None, _) => Rag::Grey,
                    _ if s.status != DrillCoverage::Current => Rag::Amber,
                    _ => Rag::Green,
                };
                Bar {
                    label: s.system.to_string(),
                    value,
                    target,
                    rag,
                    note: match l {
                        None => words::coverage(lang, s.status).to_string(),
                        Some(l) if l.extrapolated => lang.pick("extrapolated", "推算").to_string(),
                        Some(l) if l.business_rto_seconds.is_none() => {
                            lang.pick("IT RTO", "IT RTO").to_string()
                        }
                        Some(_) => String::new(),
                    },
                }
            })
            .collect(),
    };
    html! {
        h2.section { "4. " (lang.pick("RTO capability", "RTO 恢复能力")) }
        figure { (chart::bar_chart(&bars, lang)) }
        table {
            thead { tr {
                th { (lang.pick("System", "系统")) }
                th { (lang.pick("Tier", "等级")) }
                th { (lang.pick("Drill status", "演练状态")) }
                th { (lang.pick("Last drill", "最近演练")) }
                th.num { (lang.pick("IT RTO / target", "IT RTO / 目标")) }
                th.num { (lang.pick("Business RTO / target", "业务 RTO / 目标")) }
                th.num { (lang.pick("Achieved RPO / target", "实际 RPO / 目标")) }
                th.num { (lang.pick("Projected restore", "预计恢复耗时")) }
                th { (lang.pick("Next due", "下次应演练")) }
            } }
            tbody { @for s in &r.systems { tr {
                td { code { (s.system) } }
                td { (s.tier) }
                td { (words::coverage(lang, s.status)) }
                @if let Some(l) = &s.last {
                    td { (words::day(l.finished_at, tz)) " " (l.plan) " (" (words::drill_type(lang, l.drill_type)) "), " (words::verdict(lang, l.verdict))
                        @if l.extrapolated { " — " (lang.pick("extrapolated", "推算")) } }
                    td.num { (opt_dur(lang, l.it_rto_seconds)) " / " (dur(lang, l.it_rto_target_seconds)) }
                    td.num { (opt_dur(lang, l.business_rto_seconds)) " / " (dur(lang, l.business_rto_target_seconds)) }
                    td.num { (opt_dur(lang, l.achieved_rpo_seconds)) " / " (dur(lang, l.rpo_target_seconds)) }
                } @else {
                    td { "—" } td.num { "—" } td.num { "—" } td.num { "—" }
                }
                td.num { (opt_dur(lang, s.projected_restore_seconds)) }
                td { (words::day(s.due_at, tz)) }
            } } }
        }
        p.note {
            (lang.pick("Restore throughput of past drills: ", "以往演练的恢复吞吐："))
            (r.throughput_bytes_per_second.map_or_else(|| "—".to_string(), |t| format!("{}/s", words::bytes(lang, t as u64))))
        }
    }
}

fn opt_dur(lang: Lang, s: Option<i64>) -> String {
    s.map_or_else(|| "—".to_string(), |s| dur(lang, s))
}

fn yes(lang: Lang, b: bool) -> &'static str {
    if b {
        lang.pick("yes", "是")
    } else {
        lang.pick("no", "否")
    }
}

fn posture(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    let p = &report.posture;
    html! {
        h2.section { "5. " (lang.pick("Copy and integrity posture", "副本与完整性状况")) }
        h3 { (lang.pick("3-2-1-1-0 per system at the quarter's end", "季度末各系统 3-2-1-1-0")) }
        table {
            thead { tr {
                th { (lang.pick("System", "系统")) }
                th { (lang.pick("Tier", "等级")) }
                @for k in [crate::assess::DigitKind::Copies, crate::assess::DigitKind::Media, crate::assess::DigitKind::Offsite, crate::assess::DigitKind::Immutable, crate::assess::DigitKind::Errors] {
                    th.num { (words::digit(lang, k)) }
                }
                th { (lang.pick("Met", "达标")) }
            } }
            tbody { @for s in &p.systems { tr {
                td { code { (s.system) } }
                td { (s.tier) }
                @for d in &s.digits {
                    td.num { (d.actual) " / " (d.required) @if !d.met { " ✗" } }
                }
                td { (rag(lang, if s.conformant { Rag::Green } else { Rag::Amber })) }
            } } }
        }
        h3 { (lang.pick("Integrity checks per repository copy", "各存储库副本的完整性校验")) }
        table {
            thead { tr {
                th { (lang.pick("Repository", "存储库")) }
                th { (lang.pick("Location", "位置")) }
                th { (lang.pick("Immutable", "不可变")) }
                th { (lang.pick("Last passing check", "最近通过的校验")) }
                th { (lang.pick("Structure", "结构")) }
                th { (lang.pick("Data read", "数据读取")) }
                th.num { (lang.pick("Checks / failed", "校验 / 失败")) }
                th { (lang.pick("Issues", "问题")) }
            } }
            tbody { @for r in &p.repositories { tr {
                td { code { (r.repository) } }
                td { (r.location) }
                td { (yes(lang, r.immutable)) }
                td { (r.last_check.map_or_else(|| "—".to_string(), |t| words::when(t, tz))) }
                td { (yes(lang, r.structure_ok)) }
                td { (yes(lang, r.read_ok))
                    @if let Some((read, m)) = r.rotation { " (" (read) "/" (m) ")" } }
                td.num { (r.checks) " / " (r.failed_checks) }
                td { (r.issues.iter().map(|i| words::issue(lang, i)).collect::<Vec<_>>().join(lang.pick(", ", "、"))) }
            } } }
        }
        p { (lang.pick("Backups of the quarter that ended partial or failed (snapshots that never count): ", "本季度部分成功或失败的备份（其快照不计入）："))
            (p.incomplete_backups) }
    }
}

fn operations(report: &QuarterlyReport, lang: Lang) -> Markup {
    let o = &report.operations;
    let growth = LineChart {
        title: lang
            .pick(
                "Storage added over the quarter per site",
                "本季度各站点新增存储",
            )
            .to_string(),
        y_unit: "GiB".to_string(),
        from: report.meta.from,
        to: report.meta.measured_to,
        series: o
            .storage_over_time
            .iter()
            .map(|s| Series {
                label: site_name(report, lang, &s.site),
                points: s.points.clone(),
            })
            .collect(),
        target: None,
        target_label: String::new(),
    };
    html! {
        h2.section { "6. " (lang.pick("Backup operations", "备份运行情况")) }
        table {
            thead { tr {
                th { (lang.pick("System", "系统")) }
                th.num { (lang.pick("Backups", "备份次数")) }
                th.num { (lang.pick("Success rate", "成功率")) }
                th.num { (lang.pick("Partial / failed", "部分 / 失败")) }
                th.num { (lang.pick("Duration mean / max", "耗时 平均 / 最大")) }
                th.num { (lang.pick("Copies / failed", "复制 / 失败")) }
                th.num { (lang.pick("Off-site lag p50 / p95 / max", "异地延迟 p50 / p95 / 最大")) }
                th.num { (lang.pick("Not off-site", "未到异地")) }
            } }
            tbody { @for s in &o.systems { tr {
                td { code { (s.system) } }
                td.num { (s.backups) }
                td.num { (percent(s.success_percent)) }
                td.num { (s.partial) " / " (s.failed) }
                td.num { (opt_dur(lang, s.duration_mean_seconds)) " / " (opt_dur(lang, s.duration_max_seconds)) }
                td.num { (s.copies) " / " (s.copies_failed) }
                td.num { (opt_dur(lang, s.offsite_lag_p50_seconds)) " / " (opt_dur(lang, s.offsite_lag_p95_seconds)) " / " (opt_dur(lang, s.offsite_lag_max_seconds)) }
                td.num { (s.not_offsite) }
            } } }
        }
        table {
            thead { tr {
                th { (lang.pick("Tier", "等级")) }
                th.num { (lang.pick("Backups", "备份次数")) }
                th.num { (lang.pick("Succeeded", "成功")) }
                th.num { (lang.pick("Success rate", "成功率")) }
            } }
            tbody { @for t in &o.tiers { tr {
                td { (tier_name(report, lang, &t.tier)) }
                td.num { (t.backups) }
                td.num { (t.succeeded) }
                td.num { (percent(t.success_percent)) }
            } } }
        }
        figure { (chart::line_chart(&growth, lang)) }
        table {
            thead { tr {
                th { (lang.pick("Repository", "存储库")) }
                th { (lang.pick("Location", "位置")) }
                th.num { (lang.pick("Added this quarter", "本季度新增")) }
                @for q in &report.meta.trend_quarters { th.num { (q) } }
            } }
            tbody { @for g in &o.storage { tr {
                td { code { (g.repository) } }
                td { (g.location.map(|l| l.to_string()).unwrap_or_default()) }
                td.num { (words::bytes(lang, g.bytes_added)) }
                @for b in &g.trend { td.num { (words::bytes(lang, *b)) } }
            } } }
        }
        p.note { (lang.pick(
            "Agent health over the quarter (offline agents, clock skew) is not kept by the coordinator; see the dashboard for the current state.",
            "协调器不保存本季度的代理健康历史（离线、时钟偏差）；当前状态见仪表盘。"
        )) }
    }
}

fn drills(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    let d = &report.drills;
    html! {
        h2.section { "7. " (lang.pick("Drill programme", "演练计划执行情况")) }
        h3 { (lang.pick("Drills held this quarter", "本季度已开展的演练")) }
        @if d.held.is_empty() {
            p { (lang.pick("No drill finished this quarter.", "本季度无已完成的演练。")) }
        } @else {
            table {
                thead { tr {
                    th { (lang.pick("Plan", "计划")) }
                    th { (lang.pick("Type", "类型")) }
                    th { (lang.pick("Finished", "完成时间")) }
                    th { (lang.pick("Verdict", "结论")) }
                    th.num { (lang.pick("Restored / failed", "恢复 / 失败")) }
                    th.num { (lang.pick("Findings", "发现问题")) }
                } }
                tbody { @for h in &d.held { tr {
                    td { (match (lang, &h.title_zh) { (Lang::ZhCn, Some(zh)) => zh.clone(), _ => h.title.clone() }) br; code { (h.plan) } }
                    td { (words::drill_type(lang, h.drill_type)) }
                    td { (h.finished_at.map_or_else(|| "—".to_string(), |t| words::when(t, tz))) }
                    td { (words::verdict(lang, h.verdict)) " (" (h.status) ")" }
                    td.num { (h.restored) " / " (h.failed) }
                    td.num { (h.findings) }
                } } }
            }
        }
        h3 { (lang.pick("Plans and when they are due (at the quarter's end)", "各演练计划及到期时间（截至季度末）")) }
        table {
            thead { tr {
                th { (lang.pick("Plan", "计划")) }
                th { (lang.pick("Last held", "上次")) }
                th { (lang.pick("Due", "到期")) }
                th { (lang.pick("Overdue", "逾期")) }
            } }
            tbody { @for p in &d.plans { tr {
                td { code { (p.plan) } }
                td { (p.last_at.map_or_else(|| lang.pick("never", "从未").to_string(), |t| words::day(t, tz))) }
                td { (words::day(p.due_at, tz)) }
                td { @if p.overdue { (rag(lang, Rag::Red)) } @else { (yes(lang, false)) } }
            } } }
        }
        h3 { (lang.pick("Regulatory calendar", "监管要求日历")) }
        table {
            thead { tr {
                th { (lang.pick("Requirement", "要求")) }
                th { (lang.pick("Last held", "上次")) }
                th { (lang.pick("Due", "到期")) }
                th { (lang.pick("Overdue", "逾期")) }
            } }
            tbody { @for r in &d.regulatory { tr {
                td { (words::regulatory(lang, &r.requirement)) }
                td { (r.last_at.map_or_else(|| lang.pick("never", "从未").to_string(), |t| words::day(t, tz))) }
                td { (words::day(r.due_at, tz)) }
                td { @if r.overdue { (rag(lang, Rag::Red)) } @else { (yes(lang, false)) } }
            } } }
        }
    }
}

fn findings(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    html! {
        h2.section { "8. " (lang.pick("Findings and actions", "发现问题与整改措施")) }
        @if report.findings.is_empty() {
            p { (lang.pick("No finding this quarter.", "本季度未发现问题。")) }
        } @else {
            table {
                thead { tr {
                    th { "ID" }
                    th { (lang.pick("Severity", "严重度")) }
                    th { (lang.pick("Finding", "问题")) }
                    th { (lang.pick("Suggested action", "建议措施")) }
                    th { (lang.pick("Owner / due", "责任人 / 期限")) }
                } }
                tbody { @for f in &report.findings { tr {
                    td { (f.id) }
                    td { (words::severity(lang, f.severity)) }
                    td { (words::finding(lang, &f.kind, tz)) }
                    td { (words::action(lang, &f.kind)) }
                    td {}
                } } }
            }
        }
    }
}

fn owner_items(report: &QuarterlyReport, lang: Lang) -> Markup {
    html! {
        h2.section { "9–12. " (lang.pick("Items for the report owner", "由报告负责人填写的事项")) }
        p.note { (lang.pick(
            "lifeboat holds no data for these items of the outline; complete them before sign-off.",
            "lifeboat 无以下事项的数据，请在签署前补充。"
        )) }
        @for key in &report.appendix.not_covered {
            h3 { (words::not_covered(lang, key)) }
            div.todo { (lang.pick("To be completed.", "待填写。")) }
        }
    }
}

fn appendix(report: &QuarterlyReport, lang: Lang, tz: &TimeZone) -> Markup {
    let s = &report.appendix.sources;
    html! {
        h2.section { "13. " (lang.pick("Appendix", "附录")) }
        h3 { (lang.pick("Metric definitions (standards §3)", "指标定义（标准 §3）")) }
        dl { @for (term, def) in words::definitions(lang) { dt { (term) } dd { (def) } } }
        h3 { (lang.pick("Tier targets", "等级目标")) }
        table {
            thead { tr {
                th { (lang.pick("Tier", "等级")) }
                th.num { "RPO" }
                th.num { (lang.pick("IT RTO", "IT RTO")) }
                th.num { (lang.pick("Business RTO", "业务 RTO")) }
                th.num { (lang.pick("Drill every", "演练周期")) }
            } }
            tbody { @for t in &report.meta.tiers { tr {
                td { (tier_name(report, lang, &t.id)) }
                td.num { (dur(lang, t.rpo_seconds)) }
                td.num { (dur(lang, t.rto_it_seconds)) }
                td.num { (dur(lang, t.rto_business_seconds)) }
                td.num { (dur(lang, t.drill_every_seconds)) }
            } } }
        }
        h3 { (lang.pick("Data sources", "数据来源")) }
        dl {
            dt { (lang.pick("Run records read", "读取的运行记录")) }
            dd { (s.run_records) " (" (lang.pick("in the quarter: ", "本季度：")) (s.run_records_in_quarter) ")" }
            dt { (lang.pick("Earliest / latest record", "最早 / 最新记录")) }
            dd { (s.first_run_at.map_or_else(|| "—".to_string(), |t| words::when(t, tz))) " / "
                 (s.last_run_at.map_or_else(|| "—".to_string(), |t| words::when(t, tz))) }
            dt { (lang.pick("Sealed drill records", "已封存的演练记录")) }
            dd { (s.drill_records) }
            dt { (lang.pick("Policy digest", "策略摘要")) }
            dd { code { (report.meta.policy_digest) } }
            dt { (lang.pick("Generated by", "生成方式")) }
            dd { "lifeboat " (report.meta.lifeboat_version) ", " (words::when(report.meta.generated_at, tz)) }
        }
    }
}

fn sign_off(report: &QuarterlyReport, lang: Lang) -> Markup {
    html! {
        h3 { (lang.pick("Sign-off", "签署")) }
        table.signoff {
            thead { tr {
                th { (lang.pick("Role", "职责")) }
                th { (lang.pick("Name", "姓名")) }
                th { (lang.pick("Signature", "签字")) }
                th { (lang.pick("Date", "日期")) }
            } }
            tbody { @for role in &report.appendix.sign_off { tr {
                td { (words::sign_off(lang, role)) } td {} td {} td {}
            } } }
        }
    }
}
