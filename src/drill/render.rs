//! The drill record (standards §4.1) as a self-contained HTML page: what the coordinator serves
//! at `GET /api/v1/drills/{id}/report` and what the CLI writes, to read on screen, print, or
//! file with the evidence.
//!
//! One pure function, [`page`]: record in, text out. The page has no JavaScript, no external
//! resource (inline CSS only) and every string of the record goes through [`escape`], so a
//! plan title or an agent's error message cannot inject markup. Labels are English with the
//! Chinese term alongside. This module computes no figure: it shows what `measure` and `record`
//! decided, and it must never change the record (the record's hash is over the record, not
//! over this page).

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

use super::measure::Verdict;
use super::record::{DrillRecord, SystemRecord};
use crate::assess::Human;

/// `text` with the five characters HTML gives a meaning replaced by entities; safe in element
/// content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','PingFang SC',sans-serif;
 margin:2em auto;max-width:72em;padding:0 1em;color:#1b1f23;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de;
 padding-bottom:.2em}h3{font-size:1em}
table{border-collapse:collapse;width:100%;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.hash{font-family:ui-monospace,'SFMono-Regular',Menlo,monospace;font-size:.85em;word-break:break-all}
.verdict{display:inline-block;padding:.1em .5em;border-radius:.3em;font-weight:600}
.pass{background:#dafbe1;color:#116329}.pass-with-conditions{background:#fff8c5;color:#7d4e00}
.fail{background:#ffebe9;color:#a40e26}.ok{color:#116329}.bad{color:#a40e26;font-weight:600}
.note{color:#57606a;font-size:.9em}.extrapolated{font-style:italic;color:#7d4e00}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
";

/// The record as an HTML page.
pub fn page(record: &DrillRecord) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let h = &record.header;
    let title = match &h.title_zh {
        Some(zh) => format!("{} / {}", h.title, zh),
        None => h.title.clone(),
    };
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<title>Drill report 演练报告 — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&title)
    );
    header(&mut out, record, &title);
    objectives(&mut out, record);
    scope(&mut out, record);
    scenario(&mut out, record);
    organisation(&mut out, record);
    readiness(&mut out, record);
    timeline(&mut out, record);
    results(&mut out, record);
    projection(&mut out, record);
    deviations(&mut out, record);
    findings(&mut out, record);
    to_be_filled(&mut out);
    evidence(&mut out, record);
    sign_off(&mut out, record);
    out.push_str("</body>\n</html>\n");
    out
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "<h2>{}</h2>", escape(title));
}

fn verdict(v: Verdict) -> String {
    let label = match v {
        Verdict::Pass => "pass 通过",
        Verdict::PassWithConditions => "pass with conditions 有条件通过",
        Verdict::Fail => "fail 未通过",
    };
    format!("<span class=\"verdict {v}\">{label}</span>")
}

fn time(t: Timestamp) -> String {
    escape(&t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_string(), time)
}

fn duration(secs: i64) -> String {
    escape(&Human(SignedDuration::from_secs(secs)).to_string())
}

fn opt_duration(secs: Option<i64>) -> String {
    secs.map_or_else(|| "not measured 未测量".to_string(), duration)
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

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "<span class=\"ok\">yes 是</span>"
    } else {
        "<span class=\"bad\">no 否</span>"
    }
}

fn list(out: &mut String, items: &[String], empty: &str) {
    if items.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(empty));
        return;
    }
    out.push_str("<ul>\n");
    for i in items {
        let _ = writeln!(out, "<li>{}</li>", escape(i));
    }
    out.push_str("</ul>\n");
}

fn header(out: &mut String, r: &DrillRecord, title: &str) {
    let h = &r.header;
    let _ = writeln!(out, "<h1>Drill report 演练报告: {}</h1>", escape(title));
    let _ = writeln!(
        out,
        "<p>Overall verdict 总体结论: {}</p>",
        verdict(r.verdict)
    );
    section(out, "1. Header 基本信息");
    out.push_str("<dl>\n");
    let rows: [(&str, String); 11] = [
        (
            "Drill ID 演练编号",
            format!("<code>{}</code>", escape(&h.drill_id.to_string())),
        ),
        ("Plan 演练方案", escape(h.plan.as_str())),
        ("Type 演练类型", escape(&h.drill_type.to_string())),
        (
            "Regulatory 监管要求",
            h.regulatory
                .as_deref()
                .map_or_else(|| "—".to_string(), escape),
        ),
        ("Status 状态", escape(&h.status.to_string())),
        ("Started by 发起人", escape(&h.started_by)),
        ("Started (T_outage) 开始", time(h.started_at)),
        ("Finished 结束", opt_time(h.finished_at)),
        (
            "Policy digest 策略摘要",
            format!("<span class=\"hash\">{}</span>", escape(&h.policy_digest)),
        ),
        ("lifeboat version 版本", escape(&h.lifeboat_version)),
        ("Classification 密级", "internal 内部".to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{v}</dd>", escape(k));
    }
    out.push_str("</dl>\n");
}

fn objectives(out: &mut String, r: &DrillRecord) {
    section(out, "2. Objectives and success criteria 演练目标与成功标准");
    if r.objectives.is_empty() {
        out.push_str("<p class=\"note\">No system in scope. 范围内无系统。</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>System 系统</th><th>Tier 等级</th><th>RPO target 目标</th>\
         <th>IT RTO target 目标</th><th>Business RTO target 业务RTO目标</th>\
         <th>Verification required 需校验</th></tr>\n",
    );
    for o in &r.objectives {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            escape(o.system.as_str()),
            escape(o.tier.as_str()),
            duration(o.rpo_target_seconds),
            duration(o.it_rto_target_seconds),
            duration(o.business_rto_target_seconds),
            yes_no(o.verify_required),
        );
    }
    out.push_str("</table>\n");
}

fn ids<T: AsRef<str>>(ids: &[T]) -> Vec<String> {
    ids.iter().map(|i| i.as_ref().to_string()).collect()
}

fn scope(out: &mut String, r: &DrillRecord) {
    section(out, "3. Scope 演练范围");
    out.push_str("<h3>Restored 实际恢复</h3>\n");
    list(out, &ids(&r.scope.restored), "none 无");
    out.push_str("<h3>Only extrapolated 仅外推</h3>\n");
    list(out, &ids(&r.scope.extrapolated), "none 无");
    out.push_str("<h3>Excluded 排除</h3>\n");
    list(out, &ids(&r.scope.excluded), "none 无");
}

fn scenario(out: &mut String, r: &DrillRecord) {
    let s = &r.scenario;
    section(out, "4. Scenario 演练场景");
    out.push_str("<dl>\n");
    let rows = [
        ("Failure type 故障类型", escape(&s.kind.to_string())),
        (
            "Lost site 失效站点",
            s.lost_site
                .as_ref()
                .map_or_else(|| "—".to_string(), |x| escape(x.as_str())),
        ),
        (
            "Lost system 失效系统",
            s.lost_system
                .as_ref()
                .map_or_else(|| "—".to_string(), |x| escape(x.as_str())),
        ),
        ("T_outage 灾难时刻", time(s.outage)),
        ("Compromised since 入侵时刻", opt_time(s.compromise_at)),
        ("Allowed copies 允许使用的副本", escape(&s.allowed_copies)),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{v}</dd>", escape(k));
    }
    out.push_str("</dl>\n");
}

fn organisation(out: &mut String, r: &DrillRecord) {
    let o = &r.organisation;
    section(out, "5. Organisation 组织");
    out.push_str("<dl>\n");
    let _ = writeln!(
        out,
        "<dt>Drill lead 演练负责人</dt><dd>{}</dd>",
        o.lead.as_deref().map_or_else(|| "—".to_string(), escape)
    );
    let join = |v: &[String]| {
        if v.is_empty() {
            "—".to_string()
        } else {
            escape(&v.join(", "))
        }
    };
    let _ = writeln!(
        out,
        "<dt>Participants 参与人员</dt><dd>{}</dd>",
        join(&o.participants)
    );
    let _ = writeln!(
        out,
        "<dt>Observers 观察员</dt><dd>{}</dd>",
        join(&o.observers)
    );
    out.push_str("</dl>\n");
}

fn readiness(out: &mut String, r: &DrillRecord) {
    section(out, "6. Readiness check 准备情况检查");
    if r.readiness.is_empty() {
        out.push_str("<p class=\"note\">No readiness check recorded. 无记录。</p>\n");
        return;
    }
    out.push_str("<table>\n<tr><th>Check 检查项</th><th>OK 通过</th><th>Detail 详情</th></tr>\n");
    for i in &r.readiness {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&i.subject),
            yes_no(i.ok),
            escape(&i.detail)
        );
    }
    out.push_str("</table>\n");
}

fn timeline(out: &mut String, r: &DrillRecord) {
    section(out, "7. Timeline 时间线");
    out.push_str(
        "<table>\n<tr><th>Mark 时间点</th><th>At 时间</th><th>Recorded by 记录人</th>\
         <th>Source 来源</th></tr>\n",
    );
    for m in &r.timeline {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.mark),
            time(m.at),
            escape(&m.recorded_by),
            escape(&m.source)
        );
    }
    out.push_str("</table>\n<h3>Step log 步骤日志</h3>\n");
    if r.step_log.is_empty() {
        out.push_str("<p class=\"note\">empty 无</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>At 时间</th><th>Step 步骤</th><th>System 系统</th>\
         <th>Event 事件</th><th>Detail 详情</th></tr>\n",
    );
    for l in &r.step_log {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(l.at),
            escape(&l.step),
            l.system
                .as_ref()
                .map_or_else(String::new, |s| escape(s.as_str())),
            escape(&l.event),
            l.detail.as_deref().map_or_else(String::new, escape)
        );
    }
    out.push_str("</table>\n");
}

fn against(achieved: Option<i64>, target: i64) -> String {
    let shown = opt_duration(achieved);
    match achieved {
        Some(a) if a > target => {
            format!("<span class=\"bad\">{shown}</span> / {}", duration(target))
        }
        _ => format!("{shown} / {}", duration(target)),
    }
}

fn results(out: &mut String, r: &DrillRecord) {
    section(out, "8. Results per system 各系统结果");
    if r.results.is_empty() {
        out.push_str("<p class=\"note\">No system was measured. 无系统结果。</p>\n");
        return;
    }
    for s in &r.results {
        system_result(out, s);
    }
}

fn system_result(out: &mut String, s: &SystemRecord) {
    let x = &s.result;
    let _ = writeln!(
        out,
        "<h3>{} <span class=\"note\">(tier 等级 {})</span> {}</h3>",
        escape(x.system.as_str()),
        escape(x.tier.as_str()),
        verdict(x.verdict)
    );
    out.push_str("<table>\n");
    let point = match &s.restore_point {
        Some(p) => format!(
            "snapshot <code>{}</code> at {} ({}{}); captured 捕获 {}; available there 可用 {}",
            escape(&p.snapshot),
            escape(p.repository.as_str()),
            escape(&p.location.to_string()),
            if p.immutable {
                ", immutable 不可变"
            } else {
                ""
            },
            time(p.t_cap),
            time(p.t_avail)
        ),
        None => "none 无".to_string(),
    };
    let rows = [
        ("Restore point used 使用的恢复点", point),
        (
            "Data restored 恢复数据量",
            format!(
                "{} in {} files 个文件",
                bytes(s.bytes_restored),
                s.files_restored
            ),
        ),
        (
            "Throughput 吞吐量",
            throughput(x.throughput_bytes_per_second),
        ),
        (
            "Achieved RPO / target 实际RPO / 目标",
            against(x.achieved_rpo_seconds, x.rpo_target_seconds),
        ),
        (
            "IT RTO / target 技术RTO / 目标",
            against(x.it_rto_seconds, x.it_rto_target_seconds),
        ),
        (
            "Business RTO / target 业务RTO / 目标",
            against(x.business_rto_seconds, x.business_rto_target_seconds),
        ),
        (
            "RTO from declaration 自宣告起RTO",
            opt_duration(x.rto_from_declaration_seconds),
        ),
        (
            "Decision latency 决策时延",
            opt_duration(x.decision_latency_seconds),
        ),
        (
            "Restored tree digest 恢复数据摘要",
            s.tree_digest.as_deref().map_or_else(
                || "—".to_string(),
                |d| format!("<span class=\"hash\">{}</span>", escape(d)),
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    }
    out.push_str("</table>\n");
    if !x.reasons.is_empty() {
        out.push_str("<p>Reasons 原因:</p>\n");
        list(out, &x.reasons, "");
    }
}

fn projection(out: &mut String, r: &DrillRecord) {
    let Some(p) = &r.projection else {
        return;
    };
    section(out, "Projection 预测 (extrapolated 外推)");
    let _ = writeln!(
        out,
        "<p class=\"extrapolated\">{}: fixed overheads 固定开销 {} + full dataset 全量数据 {} ÷ \
         measured throughput 实测吞吐 {} = projected IT RTO 预测技术RTO <strong>{}</strong> \
         (restored 已恢复 {}).</p>",
        if p.extrapolated {
            "Extrapolated, not measured 外推值，非实测"
        } else {
            "The whole dataset was restored 全量已恢复"
        },
        duration(p.fixed_overhead_seconds),
        bytes(p.full_bytes),
        throughput(Some(p.throughput_bytes_per_second)),
        duration(p.projected_it_rto_seconds),
        bytes(p.restored_bytes),
    );
}

fn deviations(out: &mut String, r: &DrillRecord) {
    section(out, "9. Deviations 偏差");
    list(out, &r.deviations, "None. 无。");
}

fn findings(out: &mut String, r: &DrillRecord) {
    section(out, "10. Findings 发现问题");
    if r.findings.is_empty() {
        out.push_str("<p class=\"note\">None. 无。</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>Category 类别</th><th>Severity 严重程度</th><th>Finding 描述</th></tr>\n",
    );
    for f in &r.findings {
        let category = serde_json::to_value(f.category)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let severity = serde_json::to_value(f.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&category),
            escape(&severity),
            escape(&f.text)
        );
    }
    out.push_str("</table>\n");
}

/// §4.1 items 11 and 12: people write them on the printed page.
fn to_be_filled(out: &mut String) {
    section(out, "11. Corrective actions 整改措施");
    out.push_str(
        "<table>\n<tr><th>ID</th><th>Action 措施</th><th>Owner 责任人</th><th>Due 期限</th>\
         <th>Re-drill required 需重新演练</th></tr>\n\
         <tr><td>&nbsp;</td><td></td><td></td><td></td><td></td></tr>\n\
         <tr><td>&nbsp;</td><td></td><td></td><td></td><td></td></tr>\n</table>\n",
    );
    section(out, "12. Lessons learned 经验教训");
    out.push_str("<p class=\"note\">To be filled in by the drill lead. 由演练负责人填写。</p>\n");
}

fn evidence(out: &mut String, r: &DrillRecord) {
    section(out, "13. Evidence annex 证据附件");
    if r.evidence.is_empty() {
        out.push_str("<p class=\"note\">No evidence file. 无证据文件。</p>\n");
    } else {
        out.push_str("<table>\n<tr><th>File 文件</th><th>Bytes 字节</th><th>SHA-256</th></tr>\n");
        for e in &r.evidence {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td>\
                 <td class=\"hash\">{}</td></tr>",
                escape(&e.name),
                e.bytes,
                escape(&e.sha256)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("<dl>\n");
    let hash = |h: &str| format!("<span class=\"hash\">{}</span>", escape(h));
    let rows = [
        (
            "Evidence bundle SHA-256 证据包哈希",
            r.bundle_sha256
                .as_deref()
                .map_or_else(|| "— (no bundle 无)".to_string(), hash),
        ),
        ("Previous record hash 上一记录哈希", hash(&r.previous_hash)),
        ("Record hash 本记录哈希", hash(&r.record_hash)),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{v}</dd>", escape(k));
    }
    out.push_str("</dl>\n");
    out.push_str(
        "<p class=\"note\">The record hash is the SHA-256 of the record's canonical JSON and \
         includes the previous record's hash: <code>lifeboat drill verify-chain</code> proves the \
         history unaltered. 记录哈希覆盖上一记录哈希，可用 verify-chain 校验。</p>\n",
    );
}

fn sign_off(out: &mut String, r: &DrillRecord) {
    section(out, "14. Sign-off 签字确认");
    out.push_str(
        "<table>\n<tr><th>Role 角色</th><th>Name 姓名</th><th>Date 日期</th>\
         <th>Signature 签字</th></tr>\n",
    );
    for s in &r.sign_off {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>&nbsp;</td></tr>",
            escape(&s.role),
            s.name.as_deref().map_or_else(String::new, escape),
            s.signed_at.map_or_else(String::new, time),
        );
    }
    out.push_str("</table>\n");
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

    #[test]
    fn escape_replaces_every_markup_character() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("临汾 plain"), "临汾 plain");
    }

    #[test]
    fn the_page_has_every_section_and_no_script() {
        let r = record();
        let html = page(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for heading in [
            "1. Header 基本信息",
            "2. Objectives and success criteria",
            "3. Scope",
            "4. Scenario",
            "5. Organisation",
            "6. Readiness check",
            "7. Timeline 时间线",
            "Step log 步骤日志",
            "8. Results per system",
            "Projection 预测 (extrapolated 外推)",
            "9. Deviations",
            "10. Findings",
            "13. Evidence annex",
            "14. Sign-off",
        ] {
            assert!(html.contains(heading), "missing {heading}");
        }
        // Nothing from the record becomes markup; no script, no external resource.
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("Linfen &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(html.contains("pack &lt;1a2b&gt; is corrupt"));
        assert!(!html.contains("src=") && !html.contains("href="));
        // Figures and hashes as the record has them.
        assert!(html.contains(&r.record_hash));
        assert!(html.contains(&"ef".repeat(32)));
        assert!(html.contains(record::GENESIS_HASH));
        assert!(html.contains("1.0 GiB in 100 files"));
        assert!(html.contains("10.0 MiB/s"));
        assert!(
            html.contains("<span class=\"bad\">11h 6m</span> / 8h"),
            "{html}"
        );
        assert!(html.contains("2h / 4h"));
        assert!(html.contains("not measured 未测量 / 12h"));
        assert!(html.contains("Extrapolated, not measured"));
        assert!(html.contains("<span class=\"verdict fail\">fail 未通过</span>"));
        assert!(html.contains("临汾站点失效"));
        assert!(html.contains("business owner (verification)"));
        assert!(html.contains("第35条"));
    }

    #[test]
    fn a_not_ready_drill_renders_without_results() {
        let mut r = record();
        r.results.clear();
        r.objectives.clear();
        r.projection = None;
        r.bundle_sha256 = None;
        r.readiness[0].ok = false;
        let html = page(&r);
        assert!(html.contains("No system was measured"));
        assert!(html.contains("no bundle"));
        assert!(!html.contains("Projection 预测"));
        assert!(html.contains("<span class=\"bad\">no 否</span>"));
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
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
