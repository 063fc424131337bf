//! The quarterly report's words in English and Chinese: names of scenarios, causes, statuses,
//! the sentence and suggested action of every finding kind, metric definitions and the items
//! the report leaves to its owner. Figures, ids and timestamps are never translated.
//!
//! Text only: no figure is computed here and no markup is written (the renderers escape).

use jiff::{Timestamp, tz::TimeZone};

use super::model::*;
use crate::assess::{DigitKind, Scenario};
use crate::drill::measure::Verdict;
use crate::i18n::Lang;
use crate::policy::DrillType;

/// A duration for people: the two largest of days, hours, minutes (seconds below a minute).
pub fn dur(lang: Lang, secs: i64) -> String {
    let neg = secs < 0;
    let s = secs.unsigned_abs();
    let units: [(u64, &str, &str); 4] = [
        (s / 86_400, "d", "天"),
        (s / 3_600 % 24, "h", "小时"),
        (s / 60 % 60, "m", "分"),
        (s % 60, "s", "秒"),
    ];
    let first = units.iter().position(|u| u.0 > 0).unwrap_or(3);
    let mut out = String::from(if neg { "-" } else { "" });
    let parts: Vec<String> = units[first..(first + 2).min(4)]
        .iter()
        .enumerate()
        .filter(|(i, u)| *i == 0 || u.0 > 0)
        .map(|(_, u)| format!("{}{}", u.0, lang.pick(u.1, u.2)))
        .collect();
    out.push_str(&parts.join(lang.pick(" ", "")));
    out
}

/// An exposure: a duration, or "unbounded" when nothing counted.
pub fn exposure(lang: Lang, secs: Option<i64>, unbounded: bool) -> String {
    match secs {
        _ if unbounded => lang.pick("unbounded", "无可用副本").to_string(),
        Some(s) => dur(lang, s),
        None => "—".to_string(),
    }
}

pub fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "—".to_string(), |p| format!("{p:.2} %"))
}

/// A time in the organisation's zone, to the minute.
pub fn when(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn day(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone()).strftime("%Y-%m-%d").to_string()
}

pub fn bytes(lang: Lang, b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let _ = lang;
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

pub fn scenario(lang: Lang, s: Scenario) -> &'static str {
    match s {
        Scenario::ComponentLoss => lang.pick("component loss", "部件故障"),
        Scenario::SiteLoss => lang.pick("site loss", "站点灾难"),
        Scenario::Ransomware => lang.pick("ransomware", "勒索软件"),
    }
}

pub fn cause(lang: Lang, c: CauseKind) -> &'static str {
    match c {
        CauseKind::BackupFailed => lang.pick("backup failed", "备份失败"),
        CauseKind::CopyFailed => lang.pick("copy failed", "复制失败"),
        CauseKind::CheckFailed => lang.pick("check failed", "校验失败"),
        CauseKind::LateCopy => lang.pick("late copy", "复制延迟"),
        CauseKind::NoRunRecorded => lang.pick(
            "no backup recorded (agent offline?)",
            "无备份记录（代理离线？）",
        ),
        CauseKind::NoFailureRecorded => lang.pick(
            "no failure recorded (backups too infrequent)",
            "无失败记录（备份频率不足）",
        ),
    }
}

pub fn severity(lang: Lang, s: Severity) -> &'static str {
    match s {
        Severity::High => lang.pick("high", "高"),
        Severity::Medium => lang.pick("medium", "中"),
        Severity::Low => lang.pick("low", "低"),
    }
}

pub fn verdict(lang: Lang, v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => lang.pick("pass", "通过"),
        Verdict::PassWithConditions => lang.pick("pass with conditions", "有条件通过"),
        Verdict::Fail => lang.pick("fail", "未通过"),
    }
}

pub fn drill_type(lang: Lang, t: DrillType) -> &'static str {
    match t {
        DrillType::RestoreTest => lang.pick("restore test", "恢复测试"),
        DrillType::TargetedSwitchover => lang.pick("targeted switch-over", "专项切换演练"),
        DrillType::FullSwitchover => lang.pick("full switch-over", "全面切换演练"),
    }
}

pub fn coverage(lang: Lang, c: DrillCoverage) -> &'static str {
    match c {
        DrillCoverage::Current => lang.pick("current", "按期"),
        DrillCoverage::Overdue => lang.pick("overdue", "逾期"),
        DrillCoverage::NeverDrilled => lang.pick("never drilled", "从未演练"),
    }
}

pub fn digit(lang: Lang, d: DigitKind) -> &'static str {
    match d {
        DigitKind::Copies => lang.pick("copies", "副本数"),
        DigitKind::Media => lang.pick("media", "介质种类"),
        DigitKind::Offsite => lang.pick("off-site", "异地副本"),
        DigitKind::Immutable => lang.pick("immutable", "不可变副本"),
        DigitKind::Errors => lang.pick("errors", "校验错误"),
    }
}

pub fn issue(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "never-checked" => lang.pick("never checked", "从未校验"),
        "structure-overdue" => lang.pick("structure check overdue", "结构校验逾期"),
        "data-not-fully-read" => lang.pick("data not fully read", "数据未完整读取"),
        "failing" => lang.pick("failed check standing", "校验失败未解除"),
        _ => lang.pick("other", "其他"),
    }
}

pub fn regulatory(lang: Lang, requirement: &str) -> String {
    match requirement {
        crate::drill::calendar::ANNUAL_TARGETED => lang
            .pick(
                "annual targeted switch-over (114号 第34条)",
                "年度专项切换演练（114号 第34条）",
            )
            .to_string(),
        crate::drill::calendar::TRIENNIAL_FULL => lang
            .pick(
                "full switch-over with fail-back every 3 years",
                "每三年一次全面切换演练（含回切）",
            )
            .to_string(),
        other => other.to_string(),
    }
}

pub fn rag_reason(lang: Lang, r: &RagReason) -> String {
    match r {
        RagReason::SiteLossBelow {
            system,
            within_percent,
        } => match lang {
            Lang::En => format!(
                "{system}: within its site-loss RPO only {within_percent:.2} % of the quarter"
            ),
            Lang::ZhCn => format!("{system}：本季度站点灾难 RPO 达标时间仅 {within_percent:.2} %"),
        },
        RagReason::SiteLossUnbounded { system } => match lang {
            Lang::En => format!("{system}: no off-site copy counted at the quarter's end"),
            Lang::ZhCn => format!("{system}：季度末没有可计入的异地副本"),
        },
        RagReason::DrillFailed { system, .. } => match lang {
            Lang::En => format!("{system}: failed its latest drill"),
            Lang::ZhCn => format!("{system}：最近一次演练未通过"),
        },
        RagReason::SiteLossBreach { system, breaches } => match lang {
            Lang::En => format!("{system}: {breaches} site-loss RPO breach(es)"),
            Lang::ZhCn => format!("{system}：站点灾难 RPO 超标 {breaches} 次"),
        },
        RagReason::ScenarioBelow {
            system,
            scenario: sc,
            within_percent,
        } => match lang {
            Lang::En => format!(
                "{system}: within its {} RPO only {within_percent:.2} %",
                scenario(lang, *sc)
            ),
            Lang::ZhCn => format!(
                "{system}：{} RPO 达标时间仅 {within_percent:.2} %",
                scenario(lang, *sc)
            ),
        },
        RagReason::DrillDue { system } => match lang {
            Lang::En => format!("{system}: never drilled or drill overdue"),
            Lang::ZhCn => format!("{system}：从未演练或演练逾期"),
        },
        RagReason::RuleNotMet { system } => match lang {
            Lang::En => format!("{system}: 3-2-1-1-0 not met"),
            Lang::ZhCn => format!("{system}：未满足 3-2-1-1-0"),
        },
        RagReason::NoSystems => lang.pick("no systems", "无系统").to_string(),
    }
}

/// A finding as a sentence.
pub fn finding(lang: Lang, f: &FindingKind, tz: &TimeZone) -> String {
    let en = lang == Lang::En;
    match f {
        FindingKind::RpoBreach {
            system,
            scenario: sc,
            breaches,
            breached_seconds,
            worst_exposure_seconds,
            target_seconds,
            causes,
        } => {
            let worst = exposure(
                lang,
                *worst_exposure_seconds,
                worst_exposure_seconds.is_none(),
            );
            let causes: Vec<&str> = causes.iter().map(|c| cause(lang, *c)).collect();
            if en {
                format!(
                    "{system}: {breaches} {} RPO breach(es), {} above the {} target in total, worst exposure {worst}; causes: {}",
                    scenario(lang, *sc),
                    dur(lang, *breached_seconds),
                    dur(lang, *target_seconds),
                    causes.join(", ")
                )
            } else {
                format!(
                    "{system}：{} RPO 超标 {breaches} 次，累计超出 {} 目标 {}，最大暴露 {worst}；原因：{}",
                    scenario(lang, *sc),
                    dur(lang, *target_seconds),
                    dur(lang, *breached_seconds),
                    causes.join("、")
                )
            }
        }
        FindingKind::CheckFailed {
            repository,
            failed_checks,
            last_at,
            standing,
        } => {
            let last = last_at.map(|t| when(t, tz)).unwrap_or_default();
            match (en, standing) {
                (true, true) => format!(
                    "{repository}: {failed_checks} failed integrity check(s), the last at {last}; the failure still stands, its copies do not count"
                ),
                (true, false) => format!(
                    "{repository}: {failed_checks} failed integrity check(s), the last at {last}; cleared by a later passing check"
                ),
                (false, true) => format!(
                    "{repository}：完整性校验失败 {failed_checks} 次，最近一次 {last}；失败尚未解除，其副本不计入"
                ),
                (false, false) => format!(
                    "{repository}：完整性校验失败 {failed_checks} 次，最近一次 {last}；已被后续校验解除"
                ),
            }
        }
        FindingKind::IntegrityGap { repository, issues } => {
            let issues: Vec<&str> = issues.iter().map(|i| issue(lang, i)).collect();
            if en {
                format!(
                    "{repository}: integrity coverage incomplete ({})",
                    issues.join(", ")
                )
            } else {
                format!("{repository}：完整性校验覆盖不足（{}）", issues.join("、"))
            }
        }
        FindingKind::RuleNotMet { system, digits } => {
            let d: Vec<&str> = digits.iter().map(|k| digit(lang, *k)).collect();
            if en {
                format!("{system}: 3-2-1-1-0 not met ({})", d.join(", "))
            } else {
                format!("{system}：未满足 3-2-1-1-0（{}）", d.join("、"))
            }
        }
        FindingKind::BackupFailures {
            system,
            failed,
            backups,
        } => {
            if en {
                format!("{system}: {failed} of {backups} backups failed or were partial")
            } else {
                format!("{system}：{backups} 次备份中 {failed} 次失败或不完整")
            }
        }
        FindingKind::DrillFailed { plan, systems, .. } => {
            let s: Vec<&str> = systems.iter().map(|s| s.as_str()).collect();
            if en {
                format!("Drill {plan} failed (systems: {})", s.join(", "))
            } else {
                format!("演练 {plan} 未通过（系统：{}）", s.join("、"))
            }
        }
        FindingKind::DrillFinding { plan, text, .. } => {
            if en {
                format!("Drill {plan}: {text}")
            } else {
                format!("演练 {plan}：{text}")
            }
        }
        FindingKind::NeverDrilled { system } => {
            if en {
                format!("{system}: never restored in a drill")
            } else {
                format!("{system}：从未在演练中恢复")
            }
        }
        FindingKind::DrillOverdue {
            system,
            last_at,
            due_at,
        } => {
            if en {
                format!(
                    "{system}: last drilled {}, due {}",
                    day(*last_at, tz),
                    day(*due_at, tz)
                )
            } else {
                format!(
                    "{system}：上次演练 {}，应于 {} 前再次演练",
                    day(*last_at, tz),
                    day(*due_at, tz)
                )
            }
        }
        FindingKind::RegulatoryOverdue {
            requirement,
            last_at,
        } => {
            let last =
                last_at.map_or_else(|| lang.pick("never", "从未").to_string(), |t| day(t, tz));
            if en {
                format!(
                    "Regulatory drill overdue: {} (last: {last})",
                    regulatory(lang, requirement)
                )
            } else {
                format!(
                    "监管要求演练逾期：{}（上次：{last}）",
                    regulatory(lang, requirement)
                )
            }
        }
    }
}

/// The suggested action for a finding.
pub fn action(lang: Lang, f: &FindingKind) -> &'static str {
    match f {
        FindingKind::RpoBreach { causes, .. } => {
            if causes.contains(&CauseKind::CheckFailed) {
                lang.pick(
                    "Repair the repository and re-run its check; confirm new copies reach it.",
                    "修复存储库并重新校验；确认新副本已送达。",
                )
            } else if causes.contains(&CauseKind::NoRunRecorded) {
                lang.pick(
                    "Restore the agent's service and schedule; alert on an offline agent.",
                    "恢复代理运行和调度；对离线代理设置告警。",
                )
            } else if causes.contains(&CauseKind::CopyFailed)
                || causes.contains(&CauseKind::LateCopy)
            {
                lang.pick(
                    "Fix the off-site copy path (link, credentials, window) and its schedule.",
                    "修复异地复制链路（网络、凭据、窗口）及其调度。",
                )
            } else if causes.contains(&CauseKind::BackupFailed) {
                lang.pick(
                    "Fix the backup's error and check the run succeeds.",
                    "排除备份错误并确认后续运行成功。",
                )
            } else {
                lang.pick(
                    "Back up and copy more often than the RPO target.",
                    "提高备份和复制频率，使其短于 RPO 目标。",
                )
            }
        }
        FindingKind::CheckFailed { .. } => lang.pick(
            "Repair the repository (or re-seed it) and run a full read-data check.",
            "修复（或重建）存储库并执行完整的数据读取校验。",
        ),
        FindingKind::IntegrityGap { .. } => lang.pick(
            "Schedule checks and the read-data rotation at the tier's cadence.",
            "按等级要求安排结构校验和数据轮换读取。",
        ),
        FindingKind::RuleNotMet { .. } => lang.pick(
            "Add or repair copies until every 3-2-1-1-0 digit is met.",
            "补充或修复副本，直至满足 3-2-1-1-0 各项。",
        ),
        FindingKind::BackupFailures { .. } => lang.pick(
            "Review the failed runs' errors with the branch IT staff.",
            "与分支机构 IT 人员复核失败运行的错误。",
        ),
        FindingKind::DrillFailed { .. } => lang.pick(
            "Correct the causes and re-drill within 30 days.",
            "整改原因并在 30 天内重新演练。",
        ),
        FindingKind::DrillFinding { .. } => lang.pick(
            "Assign an owner and a due date; track to closure.",
            "指定责任人和完成期限，跟踪至关闭。",
        ),
        FindingKind::NeverDrilled { .. } | FindingKind::DrillOverdue { .. } => lang.pick(
            "Include the system in the next drill plan.",
            "将该系统纳入下一次演练计划。",
        ),
        FindingKind::RegulatoryOverdue { .. } => lang.pick(
            "Schedule the drill and notify the regulator as required.",
            "安排该演练并按要求报告监管机构。",
        ),
    }
}

/// The items of §4.2 the software does not fill.
pub fn not_covered(lang: Lang, key: &str) -> &'static str {
    match key {
        "bia-status" => lang.pick(
            "BIA status: systems lacking a BIA-approved tier, BIA age (≤ 3 years, 104号 第23条)",
            "业务影响分析：未经 BIA 确认等级的系统、BIA 时效（≤ 3 年，104号 第23条）",
        ),
        "incidents" => lang.pick(
            "Incidents and real invocations (114号 第36条)",
            "事件与真实切换（114号 第36条）",
        ),
        "risk-acceptances" => lang.pick(
            "Risk acceptances and exceptions (waivers, owners, expiry)",
            "风险接受与例外（豁免、责任人、到期日）",
        ),
        "changes-requiring-retest" => lang.pick(
            "Major changes without a follow-up drill (114号 第33条, 第26条(二))",
            "重大变更后未重新演练的情况（114号 第33条、第26条(二)）",
        ),
        "decisions-requested" => lang.pick(
            "Decisions and resources requested",
            "需决策事项与资源申请",
        ),
        "key-escrow" => lang.pick(
            "Key escrow at the recovery site",
            "恢复站点的密钥托管情况",
        ),
        "agent-health-history" => lang.pick(
            "Agent health over the quarter (offline agents, clock skew): only the current state is kept",
            "本季度代理健康（离线、时钟偏差）：系统仅保留当前状态",
        ),
        _ => lang.pick("other", "其他"),
    }
}

pub fn sign_off(lang: Lang, role: &str) -> &'static str {
    match role {
        "report-owner" => lang.pick("Report owner", "报告负责人"),
        "cio" => lang.pick("CIO / head of IT", "信息科技负责人"),
        "bcm-lead-department" => lang.pick("BCM lead department", "业务连续性管理牵头部门"),
        "it-risk-department" => lang.pick(
            "IT-risk department (19号 第54条)",
            "信息科技风险管理部门（19号 第54条）",
        ),
        _ => lang.pick("other", "其他"),
    }
}

/// The metric definitions of the appendix (standards §3), as `(term, definition)`.
pub fn definitions(lang: Lang) -> Vec<(&'static str, &'static str)> {
    vec![
        (
            lang.pick("Capture time t_cap", "捕获时间 t_cap"),
            lang.pick(
                "The point in time a snapshot's data represents: the start of the pre-backup hooks or of reading files — never the backup's end.",
                "快照数据所代表的时间点：备份前置脚本或读取文件的开始时间，而非备份结束时间。",
            ),
        ),
        (
            lang.pick("Availability t_avail", "可用时间 t_avail"),
            lang.pick(
                "When a snapshot became complete and durable at a repository: the backup's end there, or the copy's completion.",
                "快照在某存储库中完整且持久可用的时间：备份在该处结束或复制完成的时间。",
            ),
        ),
        (
            lang.pick("RPO exposure E(t)", "RPO 暴露 E(t)"),
            lang.pick(
                "t − t_cap of the newest complete snapshot available by t at a repository the scenario counts and no failed check distrusts; unbounded when there is none.",
                "t 减去在 t 时刻已在该场景可计入、且未被失败校验否定的存储库中可用的最新完整快照的 t_cap；若无则为无界。",
            ),
        ),
        (
            lang.pick("Scenarios", "场景"),
            lang.pick(
                "Component loss counts every copy; site loss only copies outside the site as far as the tier demands (同城 or 异地); ransomware only immutable copies.",
                "部件故障计入所有副本；站点灾难仅计入等级要求距离之外的副本（同城或异地）；勒索软件仅计入不可变副本。",
            ),
        ),
        (
            lang.pick("Worst exposure", "最大暴露"),
            lang.pick(
                "The supremum of E(t) over the quarter, computed exactly from the evidence (no sampling).",
                "本季度内 E(t) 的上确界，依据证据精确计算（非抽样）。",
            ),
        ),
        (
            lang.pick("% time within target", "达标时间占比"),
            lang.pick(
                "The share of the quarter with E(t) ≤ the tier's RPO target; for a group, the mean over its systems.",
                "本季度内 E(t) ≤ 等级 RPO 目标的时间占比；分组数值为其系统的平均值。",
            ),
        ),
        (
            lang.pick("Breach", "超标"),
            lang.pick(
                "A maximal span with E(t) above the target; its causes are read from the run records from one target before it to its end.",
                "E(t) 高于目标的最大连续时段；其原因取自该时段及之前一个目标时长内的运行记录。",
            ),
        ),
        (
            lang.pick("RTO", "RTO"),
            lang.pick(
                "Business RTO = T_service − T_outage; IT RTO = T_system_ready − T_outage, measured in drills; a sampled drill's projection (fixed overheads + size ÷ throughput) is marked extrapolated.",
                "业务 RTO = T_service − T_outage；IT RTO = T_system_ready − T_outage，在演练中测得；抽样演练的推算值（固定开销 + 数据量 ÷ 吞吐）标注为推算。",
            ),
        ),
        (
            lang.pick("3-2-1-1-0", "3-2-1-1-0"),
            lang.pick(
                "Copies (production included), kinds of media, off-site copies, immutable copies, and zero unresolved verification errors — each computed from the recorded copies, not declared.",
                "副本数（含生产）、介质种类、异地副本、不可变副本以及零未解决校验错误——均依据记录的副本计算，而非申报。",
            ),
        ),
        (
            lang.pick("Integrity coverage", "完整性校验覆盖"),
            lang.pick(
                "Per repository copy: a passing structure check within check-every, and every pack read (one full read or a complete n/m rotation) within read-data-window.",
                "按每个存储库副本：在 check-every 内有通过的结构校验，且在 read-data-window 内读取全部数据包（一次完整读取或完整的 n/m 轮换）。",
            ),
        ),
        (
            lang.pick("Backup success rate", "备份成功率"),
            lang.pick(
                "Backups started in the quarter that ended success, over all backups started; partial counts as not successful.",
                "本季度开始的备份中成功结束的比例；部分成功视为不成功。",
            ),
        ),
        (
            lang.pick("Off-site lag", "异地延迟"),
            lang.pick(
                "Per complete snapshot captured in the quarter: its first availability at a repository counted for site loss minus its capture time (nearest-rank p50/p95, max).",
                "对本季度捕获的每个完整快照：其首次在站点灾难可计入存储库中可用的时间减去捕获时间（最近秩 p50/p95 及最大值）。",
            ),
        ),
        (
            lang.pick("Storage growth", "存储增长"),
            lang.pick(
                "Bytes added to each repository by successful backups and copies (after deduplication and compression, as reported); space freed by pruning is not subtracted.",
                "成功的备份与复制写入各存储库的字节数（去重和压缩后，按运行记录）；未扣除清理释放的空间。",
            ),
        ),
    ]
}
