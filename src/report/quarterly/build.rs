//! Assembling the quarterly report: a pure function from plain inputs (the policy, the run
//! records, the sealed drill records, the organisation's zone), a quarter and `now`, to the
//! [`QuarterlyReport`] value. Every figure follows standards §3 through `crate::assess` (RPO
//! over a period, 3-2-1-1-0, integrity coverage) and `crate::drill` (measured drill results,
//! calendar); this module only selects, groups and derives findings.
//!
//! It must do no I/O and read no clock: the edge ([`super::gather`]) reads the store, and `now`
//! is an argument. The rules it adds (RAG, breach causes, findings) are documented in the parent
//! module.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::Quarter;
use super::model::*;
use crate::assess::{
    Assessor, Exposure, INCONCLUSIVE_KINDS, Inventory, PeriodReport, Scenario, Settings, signed,
};
use crate::coordinator::drills_api::{history_item, past_throughput};
use crate::drill::calendar::{self, DrillHistoryItem};
use crate::drill::measure::Verdict;
use crate::drill::record::{DrillRecord, Severity as RecordSeverity};
use crate::policy::{Policy, RepoId, SiteRole, System, SystemId, TierId};
use crate::report::chart::Rag;
use crate::run::{Outcome, RunKind, RunRecord};

/// A system within its target less than this share of the quarter makes its tier red.
pub const RED_WITHIN_PERCENT: f64 = 95.0;
/// Quarters of trend before the reported one.
pub const TREND_QUARTERS: usize = 4;
/// Samples of the exposure chart: one every six hours of a quarter at most…
const MAX_SAMPLES: usize = 368;
/// …and fewer on a large fleet, so that sampling stays below this many assessments.
const SAMPLE_BUDGET: usize = 200_000;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Everything the report is built from: what the store and the policy directory hold.
#[derive(Debug, Clone)]
pub struct ReportInputs {
    pub policy: Policy,
    pub settings: Settings,
    /// Every stored run record, in any order.
    pub runs: Vec<RunRecord>,
    /// Every readable sealed drill record, in chain order.
    pub drills: Vec<DrillRecord>,
    /// The organisation's zone: quarters start at its midnight.
    pub time_zone: TimeZone,
}

/// Why a report cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "quarter {quarter} has not started yet (it starts at {starts}); report on a quarter \
         that has begun, e.g. the last complete one (the default)"
    )]
    NotStarted { quarter: Quarter, starts: Timestamp },
}

/// The organisation's zone in `policy`: the head office's, else the first site's (by id), else
/// UTC.
pub fn organisation_zone(policy: &Policy) -> TimeZone {
    policy
        .sites
        .values()
        .find(|s| s.role == SiteRole::HeadOffice)
        .or_else(|| policy.sites.values().next())
        .map_or(TimeZone::UTC, |s| s.timezone.tz().clone())
}

fn secs(d: SignedDuration) -> i64 {
    d.as_secs()
}

fn exposure_secs(e: Exposure) -> (Option<i64>, bool) {
    match e {
        Exposure::Finite(d) => (Some(secs(d)), false),
        Exposure::Unbounded => (None, true),
    }
}

/// Percentages are kept to two decimals: enough for a management report, and stable to compare.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| round2(sum / f64::from(n)))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// What one build works with.
struct Ctx<'a> {
    policy: &'a Policy,
    inventory: Inventory,
    settings: &'a Settings,
    runs: Vec<&'a RunRecord>,
    from: Timestamp,
    to: Timestamp,
    trend: Vec<(Quarter, Timestamp, Timestamp)>,
    first_run: HashMap<&'a str, Timestamp>,
}

impl<'a> Ctx<'a> {
    fn assessor(&self) -> Assessor<'_> {
        Assessor::new(self.policy, &self.inventory, self.settings)
    }

    fn in_quarter(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    fn runs_of(&self, system: &'a str) -> impl Iterator<Item = &'a RunRecord> + '_ {
        self.runs
            .iter()
            .copied()
            .filter(move |r| r.system.as_deref() == Some(system))
    }
}

/// The report of `quarter` at `now` (see the parent module for the rules).
pub fn build(
    inputs: &ReportInputs,
    quarter: Quarter,
    now: Timestamp,
) -> Result<QuarterlyReport, BuildError> {
    let tz = &inputs.time_zone;
    let (from, to_q) = quarter.bounds(tz);
    if from >= now {
        return Err(BuildError::NotStarted {
            quarter,
            starts: from,
        });
    }
    let to = to_q.min(now);
    let policy = &inputs.policy;
    // Only what had happened by the end of the period: a report on a past quarter does not
    // change when later records arrive (checks found later excepted: see `Assessor::period`).
    let mut runs: Vec<&RunRecord> = inputs.runs.iter().filter(|r| r.finished_at <= to).collect();
    runs.sort_by_key(|r| (r.finished_at, r.started_at));
    let owned: Vec<RunRecord> = runs.iter().map(|r| (*r).clone()).collect();
    let (inventory, _unusable) = Inventory::from_runs(&owned, policy);
    let mut first_run: HashMap<&str, Timestamp> = HashMap::new();
    for r in &runs {
        if let Some(s) = r.system.as_deref() {
            let e = first_run.entry(s).or_insert(r.started_at);
            *e = (*e).min(r.started_at);
        }
    }
    let mut trend: Vec<(Quarter, Timestamp, Timestamp)> = quarter
        .previous_n(TREND_QUARTERS)
        .into_iter()
        .map(|q| {
            let (f, t) = q.bounds(tz);
            (q, f, t)
        })
        .collect();
    trend.reverse();
    let ctx = Ctx {
        policy,
        inventory,
        settings: &inputs.settings,
        runs,
        from,
        to,
        trend,
        first_run,
    };
    let drills: Vec<&DrillRecord> = inputs
        .drills
        .iter()
        .filter(|d| d.header.finished_at.unwrap_or(d.header.started_at) <= to)
        .collect();
    let history: Vec<DrillHistoryItem> = drills.iter().map(|d| history_item(d)).collect();

    let rpo = rpo_section(&ctx);
    let rto = rto_section(&ctx, &drills, &history);
    let posture = posture_section(&ctx);
    let operations = operations_section(&ctx);
    let drill_section = drill_section(&ctx, &drills, &history);
    let system_reasons = rag_reasons(&ctx, &rpo, &rto, &posture);
    let mut findings = findings(
        &ctx,
        &rpo,
        &rto,
        &posture,
        &operations,
        &drill_section,
        &drills,
    );
    findings.sort_by_key(|f| f.severity);
    for (i, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{:02}", i + 1);
    }
    let summary = summary(&ctx, &rpo, &rto, &system_reasons, &findings);
    let inventory = inventory_section(&ctx);
    let appendix = appendix(&ctx, drills.len());

    Ok(QuarterlyReport {
        meta: Meta {
            quarter,
            from,
            to: to_q,
            measured_to: to,
            complete: to_q <= now,
            time_zone: tz.iana_name().unwrap_or("UTC").to_string(),
            generated_at: now,
            policy_digest: policy.digest.clone(),
            lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
            trend_quarters: ctx.trend.iter().map(|t| t.0).collect(),
            tiers: policy
                .tiers
                .values()
                .map(|t| TierInfo {
                    id: t.id.clone(),
                    name: t.name.clone(),
                    name_zh: t.name_zh.clone(),
                    rpo_seconds: secs(signed(t.rpo)),
                    rto_it_seconds: secs(signed(t.rto_it)),
                    rto_business_seconds: secs(signed(t.rto_business)),
                    drill_every_seconds: secs(signed(t.drill_every)),
                })
                .collect(),
            sites: policy
                .sites
                .values()
                .filter(|s| policy.systems.values().any(|y| y.site == s.id))
                .map(|s| SiteInfo {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    name_zh: s.name_zh.clone(),
                    role: s.role,
                })
                .collect(),
        },
        summary,
        inventory,
        rpo,
        rto,
        posture,
        operations,
        drills: drill_section,
        findings,
        appendix,
    })
}

// ---------------------------------------------------------------------------------------------
// Inventory

fn inventory_section(ctx: &Ctx<'_>) -> InventorySection {
    let mut counts: BTreeMap<(TierId, crate::policy::SiteId), u32> = BTreeMap::new();
    for s in ctx.policy.systems.values() {
        *counts.entry((s.tier.clone(), s.site.clone())).or_default() += 1;
    }
    let systems = ctx
        .policy
        .systems
        .values()
        .map(|s| SystemInfo {
            id: s.id.clone(),
            name: s.name.clone(),
            department: s.department.clone(),
            site: s.site.clone(),
            tier: s.tier.clone(),
            host: s.host.clone(),
            repositories: s.repositories.clone(),
            source_bytes: latest_source_bytes(ctx, s),
        })
        .collect();
    let new_this_quarter = ctx
        .policy
        .systems
        .keys()
        .filter(|id| {
            ctx.first_run
                .get(id.as_str())
                .is_some_and(|t| ctx.in_quarter(*t))
        })
        .cloned()
        .collect();
    InventorySection {
        counts: counts
            .into_iter()
            .map(|((tier, site), systems)| InventoryCount {
                tier,
                site,
                systems,
            })
            .collect(),
        systems,
        new_this_quarter,
    }
}

fn latest_source_bytes(ctx: &Ctx<'_>, s: &System) -> Option<u64> {
    ctx.runs_of(s.id.as_str())
        .filter(|r| r.kind == RunKind::Backup && r.outcome == Outcome::Success)
        .filter_map(|r| r.source.as_ref().map(|src| (r.finished_at, src.bytes)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, b)| b)
}

// ---------------------------------------------------------------------------------------------
// RPO

fn period(
    ctx: &Ctx<'_>,
    id: &str,
    sc: Scenario,
    from: Timestamp,
    to: Timestamp,
) -> Option<PeriodReport> {
    ctx.assessor().period(id, sc, from, to).ok()
}

fn compliance<'r>(reports: impl IntoIterator<Item = &'r RpoRow>) -> Compliance {
    let rows: Vec<&RpoRow> = reports.into_iter().collect();
    let worst = rows
        .iter()
        .map(|r| match r.worst_exposure_seconds {
            _ if r.unbounded => Exposure::Unbounded,
            Some(s) => Exposure::Finite(SignedDuration::from_secs(s)),
            None => Exposure::Finite(SignedDuration::ZERO),
        })
        .max();
    let (worst_exposure_seconds, unbounded) = worst.map_or((None, false), exposure_secs);
    Compliance {
        systems: rows.len() as u32,
        systems_within: rows.iter().filter(|r| r.breaches == 0).count() as u32,
        within_percent: mean(rows.iter().map(|r| r.within_percent)),
        worst_exposure_seconds,
        unbounded,
        breaches: rows.iter().map(|r| r.breaches).sum(),
        breached_seconds: rows.iter().map(|r| r.breached_seconds).sum(),
    }
}

fn rpo_section(ctx: &Ctx<'_>) -> RpoSection {
    let mut rows = Vec::new();
    for s in ctx.policy.systems.values() {
        for sc in Scenario::ALL {
            let Some(p) = period(ctx, s.id.as_str(), sc, ctx.from, ctx.to) else {
                continue;
            };
            let (worst, unbounded) = exposure_secs(p.worst);
            let (end_exposure_seconds, unbounded_at_end) = ctx
                .assessor()
                .rpo(s.id.as_str(), sc, ctx.to)
                .map_or((None, true), |a| exposure_secs(a.exposure));
            let trend = ctx
                .trend
                .iter()
                .map(|&(q, f, t)| {
                    let measured = ctx
                        .first_run
                        .get(s.id.as_str())
                        .is_some_and(|first| *first < t);
                    match measured
                        .then(|| period(ctx, s.id.as_str(), sc, f, t))
                        .flatten()
                    {
                        Some(tp) => {
                            let (w, u) = exposure_secs(tp.worst);
                            TrendPoint {
                                quarter: q,
                                within_percent: Some(round2(tp.within_percent)),
                                worst_exposure_seconds: w,
                                unbounded: u,
                            }
                        }
                        None => TrendPoint {
                            quarter: q,
                            within_percent: None,
                            worst_exposure_seconds: None,
                            unbounded: false,
                        },
                    }
                })
                .collect();
            rows.push(RpoRow {
                system: s.id.clone(),
                site: s.site.clone(),
                tier: s.tier.clone(),
                scenario: sc,
                target_seconds: secs(p.target),
                worst_exposure_seconds: worst,
                unbounded,
                worst_at: p.worst_at,
                within_percent: round2(p.within_percent),
                breaches: p.breaches.len() as u32,
                breached_seconds: secs(p.breached_for()),
                end_exposure_seconds,
                unbounded_at_end,
                causes: causes(ctx, s, &p),
                trend,
            });
        }
    }
    let mut keys: BTreeSet<(TierId, crate::policy::SiteId)> = BTreeSet::new();
    for s in ctx.policy.systems.values() {
        keys.insert((s.tier.clone(), s.site.clone()));
    }
    let mut groups = Vec::new();
    for (tier, site) in keys {
        for sc in Scenario::ALL {
            let members: Vec<&RpoRow> = rows
                .iter()
                .filter(|r| r.tier == tier && r.site == site && r.scenario == sc)
                .collect();
            let c = compliance(members.iter().copied());
            let rag = if members.is_empty() {
                Rag::Grey
            } else if members
                .iter()
                .any(|r| r.within_percent < RED_WITHIN_PERCENT || r.unbounded_at_end)
            {
                Rag::Red
            } else if c.breaches > 0 {
                Rag::Amber
            } else {
                Rag::Green
            };
            let trend = (0..ctx.trend.len())
                .map(|i| mean(members.iter().filter_map(|r| r.trend[i].within_percent)))
                .collect();
            groups.push(RpoGroup {
                tier: tier.clone(),
                site: site.clone(),
                scenario: sc,
                rag,
                compliance: c,
                trend,
            });
        }
    }
    RpoSection {
        rows,
        groups,
        exposure_over_time: exposure_series(ctx),
    }
}

/// The worst site-loss exposure of each tier's systems at evenly spaced instants.
fn exposure_series(ctx: &Ctx<'_>) -> Vec<TierSeries> {
    let systems = ctx.policy.systems.len().max(1);
    let n = (SAMPLE_BUDGET / systems).clamp(24, MAX_SAMPLES);
    // Whole seconds, the last sample at the period's end.
    let span = ctx.to.duration_since(ctx.from).as_secs();
    let at = |i: usize| {
        let offset = span.saturating_mul(i as i64) / (n as i64 - 1);
        crate::assess::plus(ctx.from, SignedDuration::from_secs(offset))
    };
    let assessor = ctx.assessor();
    ctx.policy
        .tiers
        .values()
        .filter(|t| ctx.policy.systems.values().any(|s| s.tier == t.id))
        .map(|tier| {
            let members: Vec<&System> = ctx
                .policy
                .systems
                .values()
                .filter(|s| s.tier == tier.id)
                .collect();
            let points = (0..n)
                .filter_map(|i| {
                    let t = at(i);
                    // Systems with nothing counted are left out here (section 3 lists them).
                    let worst = members
                        .iter()
                        .filter_map(|s| assessor.rpo(s.id.as_str(), Scenario::SiteLoss, t).ok())
                        .filter_map(|a| a.exposure.finite())
                        .max();
                    worst.map(|w| (t, round2(w.as_secs_f64() / 3600.0)))
                })
                .collect();
            TierSeries {
                tier: tier.id.clone(),
                target_hours: signed(tier.rpo).as_secs_f64() / 3600.0,
                points,
            }
        })
        .collect()
}

/// What the run records show in and just before the breaches of `p` (each breach widened back by
/// the target: the run that should have kept the exposure down started then).
fn causes(ctx: &Ctx<'_>, s: &System, p: &PeriodReport) -> Vec<Cause> {
    if p.breaches.is_empty() {
        return Vec::new();
    }
    let Some(tier) = ctx.policy.tiers.get(&s.tier) else {
        return Vec::new();
    };
    let counted = |repo: &str| {
        ctx.policy
            .repositories
            .get(repo)
            .is_some_and(|r| p.scenario.counts(r, tier))
    };
    let windows: Vec<(Timestamp, Timestamp)> = p
        .breaches
        .iter()
        .map(|b| (b.start.checked_sub(p.target).unwrap_or(b.start), b.end))
        .collect();
    let in_window = |t: Timestamp| windows.iter().any(|&(a, b)| a <= t && t < b);
    let mut found: BTreeMap<(CauseKind, Option<String>), Cause> = BTreeMap::new();
    let add = |found: &mut BTreeMap<(CauseKind, Option<String>), Cause>,
               kind: CauseKind,
               repo: Option<&str>,
               at: Timestamp,
               detail: Option<&str>| {
        let c = found
            .entry((kind, repo.map(str::to_string)))
            .or_insert_with(|| Cause {
                kind,
                count: 0,
                repository: repo.and_then(|r| r.parse::<RepoId>().ok()),
                last_at: None,
                detail: None,
            });
        c.count += 1;
        if c.last_at.is_none_or(|l| l <= at) {
            c.last_at = Some(at);
            if let Some(d) = detail {
                c.detail = Some(d.to_string());
            }
        }
    };
    let mut backups_ran = false;
    for r in ctx
        .runs_of(s.id.as_str())
        .filter(|r| in_window(r.started_at))
    {
        match r.kind {
            RunKind::Backup => {
                backups_ran = true;
                if r.outcome != Outcome::Success {
                    add(
                        &mut found,
                        CauseKind::BackupFailed,
                        None,
                        r.finished_at,
                        r.error.as_ref().map(|e| e.message.as_str()),
                    );
                }
                for rr in r
                    .repositories
                    .iter()
                    .filter(|rr| rr.outcome != Outcome::Success && counted(&rr.repository))
                {
                    // A failed backup's own repository write is the backup's failure.
                    if r.outcome == Outcome::Partial {
                        add(
                            &mut found,
                            CauseKind::CopyFailed,
                            Some(&rr.repository),
                            r.finished_at,
                            rr.error.as_ref().map(|e| e.message.as_str()),
                        );
                    }
                }
            }
            RunKind::Copy => {
                for rr in r
                    .repositories
                    .iter()
                    .filter(|rr| rr.outcome != Outcome::Success && counted(&rr.repository))
                {
                    add(
                        &mut found,
                        CauseKind::CopyFailed,
                        Some(&rr.repository),
                        r.finished_at,
                        rr.error
                            .as_ref()
                            .or(r.error.as_ref())
                            .map(|e| e.message.as_str()),
                    );
                }
            }
            _ => {}
        }
    }
    // A failed check distrusts its repository from the check's start until a pass clears it:
    // it explains a breach it overlaps.
    for repo in s.repositories.iter().filter(|r| counted(r.as_str())) {
        let Some(checks) = ctx.inventory.checks(repo.as_str()) else {
            continue;
        };
        for f in checks.failures().iter().filter(|f| {
            p.breaches
                .iter()
                .any(|b| f.started < b.end && f.cleared.is_none_or(|c| c > b.start))
        }) {
            add(
                &mut found,
                CauseKind::CheckFailed,
                Some(repo.as_str()),
                f.found,
                Some(&f.message),
            );
        }
    }
    // Late copies: snapshots captured in a window whose first counted copy came later than the
    // target after capture.
    if let Some(ev) = ctx.inventory.system(s.id.as_str()) {
        let mut first: BTreeMap<&str, (Timestamp, Timestamp, &str)> = BTreeMap::new();
        for c in ev.copies() {
            let Some(cap) = c.capture.filter(|c| c.is_complete()) else {
                continue;
            };
            if !counted(c.repository.as_str()) || !in_window(cap.captured) {
                continue;
            }
            let e = first.entry(c.snapshot.as_str()).or_insert((
                cap.captured,
                c.available,
                c.repository.as_str(),
            ));
            if c.available < e.1 {
                *e = (cap.captured, c.available, c.repository.as_str());
            }
        }
        for (captured, available, repo) in first.values() {
            // A copy that failed before explains the lateness already.
            let explained = found.contains_key(&(CauseKind::CopyFailed, Some(repo.to_string())));
            if !explained && available.duration_since(*captured) > p.target {
                add(
                    &mut found,
                    CauseKind::LateCopy,
                    Some(repo),
                    *available,
                    None,
                );
            }
        }
    }
    if !backups_ran {
        let at = p.breaches.last().map_or(ctx.to, |b| b.end);
        add(&mut found, CauseKind::NoRunRecorded, None, at, None);
    }
    if found.is_empty() {
        let at = p.breaches.last().map_or(ctx.to, |b| b.end);
        add(&mut found, CauseKind::NoFailureRecorded, None, at, None);
    }
    found.into_values().collect()
}

// ---------------------------------------------------------------------------------------------
// RTO

fn rto_section(ctx: &Ctx<'_>, drills: &[&DrillRecord], history: &[DrillHistoryItem]) -> RtoSection {
    let records: Vec<DrillRecord> = drills.iter().map(|d| (*d).clone()).collect();
    let throughput = past_throughput(&records);
    let due = calendar::never_drilled_or_overdue(ctx.policy, history, ctx.to);
    let systems = ctx
        .policy
        .systems
        .values()
        .filter_map(|s| {
            let tier = ctx.policy.tiers.get(&s.tier)?;
            let last = last_drill(ctx, s, drills);
            let status = match due.iter().find(|d| d.system == s.id) {
                Some(d) if d.last_at.is_none() => DrillCoverage::NeverDrilled,
                Some(_) => DrillCoverage::Overdue,
                None => DrillCoverage::Current,
            };
            let due_at = due.iter().find(|d| d.system == s.id).map_or_else(
                || {
                    history
                        .iter()
                        .filter(|h| h.systems.contains(&s.id) && !h.failed.contains(&s.id))
                        .map(|h| h.finished_at)
                        .max()
                        .map_or(ctx.to, |l| crate::assess::plus(l, signed(tier.drill_every)))
                },
                |d| d.due_at,
            );
            let projected_restore_seconds = match (throughput, latest_source_bytes(ctx, s)) {
                (Some(t), Some(b)) if t > 0.0 => Some((b as f64 / t).ceil() as i64),
                _ => None,
            };
            Some(RtoRow {
                system: s.id.clone(),
                tier: s.tier.clone(),
                site: s.site.clone(),
                status,
                last,
                due_at,
                projected_restore_seconds,
            })
        })
        .collect();
    RtoSection {
        systems,
        throughput_bytes_per_second: throughput.map(round2),
    }
}

/// The latest drill that restored or extrapolated `s`.
fn last_drill(ctx: &Ctx<'_>, s: &System, drills: &[&DrillRecord]) -> Option<LastDrill> {
    let tier = ctx.policy.tiers.get(&s.tier)?;
    drills
        .iter()
        .filter_map(|d| {
            let finished_at = d.header.finished_at.unwrap_or(d.header.started_at);
            let header = |extrapolated: bool| LastDrill {
                drill_id: d.header.drill_id,
                plan: d.header.plan.clone(),
                drill_type: d.header.drill_type,
                finished_at,
                verdict: d.verdict,
                extrapolated,
                achieved_rpo_seconds: None,
                rpo_target_seconds: secs(signed(tier.rpo)),
                it_rto_seconds: None,
                it_rto_target_seconds: secs(signed(tier.rto_it)),
                business_rto_seconds: None,
                business_rto_target_seconds: secs(signed(tier.rto_business)),
            };
            if let Some(rec) = d.results.iter().find(|r| r.result.system == s.id) {
                let r = &rec.result;
                Some(LastDrill {
                    verdict: r.verdict,
                    achieved_rpo_seconds: r.achieved_rpo_seconds,
                    rpo_target_seconds: r.rpo_target_seconds,
                    it_rto_seconds: r.it_rto_seconds,
                    it_rto_target_seconds: r.it_rto_target_seconds,
                    business_rto_seconds: r.business_rto_seconds,
                    business_rto_target_seconds: r.business_rto_target_seconds,
                    ..header(false)
                })
            } else if d.scope.extrapolated.contains(&s.id) {
                Some(LastDrill {
                    it_rto_seconds: d.projection.as_ref().map(|p| p.projected_it_rto_seconds),
                    ..header(true)
                })
            } else {
                None
            }
        })
        .max_by_key(|l| l.finished_at)
}

// ---------------------------------------------------------------------------------------------
// Posture

fn posture_section(ctx: &Ctx<'_>) -> PostureSection {
    let assessor = ctx.assessor();
    let systems = ctx
        .policy
        .systems
        .values()
        .filter_map(|s| {
            let rule = assessor.rule(s.id.as_str(), ctx.to).ok()?;
            Some(RuleRow {
                system: s.id.clone(),
                tier: s.tier.clone(),
                conformant: rule.conformant(),
                digits: rule
                    .digits
                    .iter()
                    .map(|d| DigitRow {
                        kind: d.kind,
                        required: d.required,
                        actual: d.actual,
                        met: d.met,
                    })
                    .collect(),
            })
        })
        .collect();
    // Each repository is judged against the strictest tier (shortest RPO) of the systems using
    // it, through one of those systems' chains.
    let mut judge: BTreeMap<&RepoId, &System> = BTreeMap::new();
    for s in ctx.policy.systems.values() {
        let Some(tier) = ctx.policy.tiers.get(&s.tier) else {
            continue;
        };
        for r in &s.repositories {
            let stricter = judge.get(r).is_none_or(|cur| {
                ctx.policy
                    .tiers
                    .get(&cur.tier)
                    .is_none_or(|t| tier.rpo < t.rpo)
            });
            if stricter {
                judge.insert(r, s);
            }
        }
    }
    let repositories = judge
        .into_iter()
        .filter_map(|(repo, s)| {
            let policy_repo = ctx.policy.repositories.get(repo)?;
            let coverage = assessor
                .integrity(s.id.as_str(), ctx.to)
                .ok()?
                .into_iter()
                .find(|c| &c.repository == repo)?;
            let checks: Vec<&RunRecord> = ctx
                .runs
                .iter()
                .copied()
                .filter(|r| r.kind == RunKind::Check && ctx.in_quarter(r.finished_at))
                .collect();
            let mut n = 0;
            let mut failed = 0;
            let mut last_failure = None;
            for r in checks {
                for rr in r
                    .repositories
                    .iter()
                    .filter(|rr| rr.repository == repo.as_str())
                {
                    n += 1;
                    let error = rr.error.as_ref().or(r.error.as_ref());
                    let inconclusive =
                        error.is_some_and(|e| INCONCLUSIVE_KINDS.contains(&e.kind.as_str()));
                    if rr.outcome != Outcome::Success && !inconclusive {
                        failed += 1;
                        last_failure = last_failure.max(Some(r.finished_at));
                    }
                }
            }
            Some(RepoPosture {
                repository: repo.clone(),
                site: policy_repo.site.clone(),
                location: policy_repo.location,
                immutable: policy_repo.immutable,
                tier: s.tier.clone(),
                last_check: coverage.last_check,
                structure_ok: coverage.structure_ok,
                read_ok: coverage.read_ok,
                fully_read_at: coverage.fully_read_at,
                rotation: coverage.rotation.map(|r| (r.read, r.m)),
                checks: n,
                failed_checks: failed,
                last_failure,
                issues: coverage
                    .issues
                    .iter()
                    .map(|i| {
                        serde_json::to_value(i)
                            .ok()
                            .and_then(|v| v.get("issue").and_then(|k| k.as_str()).map(String::from))
                            .unwrap_or_default()
                    })
                    .collect(),
            })
        })
        .collect();
    PostureSection {
        systems,
        repositories,
        incomplete_backups: ctx
            .runs
            .iter()
            .filter(|r| {
                r.kind == RunKind::Backup
                    && ctx.in_quarter(r.started_at)
                    && r.outcome != Outcome::Success
            })
            .count() as u32,
    }
}

// ---------------------------------------------------------------------------------------------
// Operations

fn operations_section(ctx: &Ctx<'_>) -> OperationsSection {
    let mut systems = Vec::new();
    for s in ctx.policy.systems.values() {
        let Some(tier) = ctx.policy.tiers.get(&s.tier) else {
            continue;
        };
        let backups: Vec<&RunRecord> = ctx
            .runs_of(s.id.as_str())
            .filter(|r| r.kind == RunKind::Backup && ctx.in_quarter(r.started_at))
            .collect();
        let count = |o: Outcome| backups.iter().filter(|r| r.outcome == o).count() as u32;
        let durations: Vec<i64> = backups
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .map(|r| secs(r.finished_at.duration_since(r.started_at)))
            .collect();
        let copies: Vec<&RunRecord> = ctx
            .runs_of(s.id.as_str())
            .filter(|r| r.kind == RunKind::Copy && ctx.in_quarter(r.started_at))
            .collect();
        let mut lags = Vec::new();
        let mut not_offsite = 0;
        if let Some(ev) = ctx.inventory.system(s.id.as_str()) {
            let counted = |repo: &str| {
                ctx.policy
                    .repositories
                    .get(repo)
                    .is_some_and(|r| Scenario::SiteLoss.counts(r, tier))
            };
            for snap in ev.snapshots() {
                let Some(cap) = snap.capture.filter(|c| c.is_complete()) else {
                    continue;
                };
                if !ctx.in_quarter(cap.captured) {
                    continue;
                }
                let first = ev
                    .copies()
                    .filter(|c| c.snapshot == &snap.id && counted(c.repository.as_str()))
                    .map(|c| c.available)
                    .filter(|a| *a <= ctx.to)
                    .min();
                match first {
                    Some(a) => lags.push(secs(a.duration_since(cap.captured)).max(0)),
                    None => not_offsite += 1,
                }
            }
        }
        lags.sort_unstable();
        let backups_n = backups.len() as u32;
        let succeeded = count(Outcome::Success);
        systems.push(OpsRow {
            system: s.id.clone(),
            tier: s.tier.clone(),
            site: s.site.clone(),
            backups: backups_n,
            succeeded,
            partial: count(Outcome::Partial),
            failed: count(Outcome::Failed),
            success_percent: (backups_n > 0)
                .then(|| round2(100.0 * f64::from(succeeded) / f64::from(backups_n))),
            duration_mean_seconds: (!durations.is_empty())
                .then(|| durations.iter().sum::<i64>() / durations.len() as i64),
            duration_max_seconds: durations.iter().max().copied(),
            copies: copies.len() as u32,
            copies_failed: copies
                .iter()
                .filter(|r| r.outcome != Outcome::Success)
                .count() as u32,
            offsite_lag_p50_seconds: percentile(&lags, 50),
            offsite_lag_p95_seconds: percentile(&lags, 95),
            offsite_lag_max_seconds: lags.last().copied(),
            not_offsite,
        });
    }
    let tiers = ctx
        .policy
        .tiers
        .keys()
        .filter(|t| systems.iter().any(|r| &r.tier == *t))
        .map(|t| {
            let rows = systems.iter().filter(|r| &r.tier == t);
            let (b, ok) = rows.fold((0, 0), |(b, ok), r| (b + r.backups, ok + r.succeeded));
            OpsTotals {
                tier: t.clone(),
                backups: b,
                succeeded: ok,
                success_percent: (b > 0).then(|| round2(100.0 * f64::from(ok) / f64::from(b))),
            }
        })
        .collect();
    OperationsSection {
        systems,
        tiers,
        storage: storage(ctx),
        storage_over_time: storage_series(ctx),
    }
}

/// Bytes added by successful writes (backups and copies) to each repository in `[from, to)`.
fn bytes_added(ctx: &Ctx<'_>, from: Timestamp, to: Timestamp) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for r in ctx
        .runs
        .iter()
        .filter(|r| matches!(r.kind, RunKind::Backup | RunKind::Copy))
        .filter(|r| from <= r.finished_at && r.finished_at < to)
    {
        for rr in r
            .repositories
            .iter()
            .filter(|rr| rr.outcome == Outcome::Success)
        {
            *out.entry(rr.repository.clone()).or_default() += rr.bytes_added;
        }
    }
    out
}

fn storage(ctx: &Ctx<'_>) -> Vec<RepoGrowth> {
    // The quarter ends at `to` for the report, and its trend quarters end at their own ends.
    let now = bytes_added(ctx, ctx.from, ctx.to);
    let past: Vec<BTreeMap<String, u64>> = ctx
        .trend
        .iter()
        .map(|&(_, f, t)| bytes_added(ctx, f, t))
        .collect();
    let used: BTreeSet<&RepoId> = ctx
        .policy
        .systems
        .values()
        .flat_map(|s| s.repositories.iter())
        .collect();
    used.into_iter()
        .map(|repo| RepoGrowth {
            repository: repo.clone(),
            location: ctx.policy.repositories.get(repo).map(|r| r.location),
            bytes_added: now.get(repo.as_str()).copied().unwrap_or(0),
            trend: past
                .iter()
                .map(|m| m.get(repo.as_str()).copied().unwrap_or(0))
                .collect(),
        })
        .collect()
}

fn storage_series(ctx: &Ctx<'_>) -> Vec<SiteSeries> {
    let sites: BTreeSet<&crate::policy::SiteId> =
        ctx.policy.systems.values().map(|s| &s.site).collect();
    sites
        .into_iter()
        .map(|site| {
            let mut total: u64 = 0;
            let mut points = vec![(ctx.from, 0.0)];
            for r in ctx
                .runs
                .iter()
                .filter(|r| matches!(r.kind, RunKind::Backup | RunKind::Copy))
                .filter(|r| ctx.in_quarter(r.finished_at))
                .filter(|r| {
                    r.system
                        .as_deref()
                        .and_then(|s| ctx.policy.systems.get(s))
                        .is_some_and(|s| &s.site == site)
                })
            {
                let added: u64 = r
                    .repositories
                    .iter()
                    .filter(|rr| rr.outcome == Outcome::Success)
                    .map(|rr| rr.bytes_added)
                    .sum();
                if added > 0 {
                    total += added;
                    points.push((r.finished_at, round2(total as f64 / GIB)));
                }
            }
            points.push((ctx.to, round2(total as f64 / GIB)));
            SiteSeries {
                site: site.clone(),
                points,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Drills

fn drill_section(
    ctx: &Ctx<'_>,
    drills: &[&DrillRecord],
    history: &[DrillHistoryItem],
) -> DrillSection {
    let held = drills
        .iter()
        .filter(|d| ctx.in_quarter(d.header.finished_at.unwrap_or(d.header.started_at)))
        .map(|d| DrillRow {
            drill_id: d.header.drill_id,
            plan: d.header.plan.clone(),
            title: d.header.title.clone(),
            title_zh: d.header.title_zh.clone(),
            drill_type: d.header.drill_type,
            started_at: d.header.started_at,
            finished_at: d.header.finished_at,
            status: d.header.status,
            verdict: d.verdict,
            restored: d.scope.restored.len() as u32,
            failed: d
                .results
                .iter()
                .filter(|r| r.result.verdict == Verdict::Fail)
                .count() as u32,
            findings: d.findings.len() as u32,
        })
        .collect();
    DrillSection {
        held,
        plans: calendar::due(ctx.policy, history, ctx.to),
        regulatory: calendar::regulatory(history, ctx.to),
    }
}

// ---------------------------------------------------------------------------------------------
// RAG

/// Every system's reasons for not being green (empty: green).
fn rag_reasons(
    ctx: &Ctx<'_>,
    rpo: &RpoSection,
    rto: &RtoSection,
    posture: &PostureSection,
) -> BTreeMap<SystemId, Vec<RagReason>> {
    let mut out = BTreeMap::new();
    for s in ctx.policy.systems.values() {
        let mut reasons = Vec::new();
        let rows = rpo.rows.iter().filter(|r| r.system == s.id);
        for r in rows {
            if r.scenario == Scenario::SiteLoss {
                if r.within_percent < RED_WITHIN_PERCENT {
                    reasons.push(RagReason::SiteLossBelow {
                        system: s.id.clone(),
                        within_percent: r.within_percent,
                    });
                } else if r.breaches > 0 {
                    reasons.push(RagReason::SiteLossBreach {
                        system: s.id.clone(),
                        breaches: r.breaches,
                    });
                }
            } else if r.within_percent < RED_WITHIN_PERCENT && judged(ctx, r) {
                reasons.push(RagReason::ScenarioBelow {
                    system: s.id.clone(),
                    scenario: r.scenario,
                    within_percent: r.within_percent,
                });
            }
        }
        if rpo
            .rows
            .iter()
            .any(|r| r.system == s.id && r.scenario == Scenario::SiteLoss && r.unbounded_at_end)
        {
            reasons.push(RagReason::SiteLossUnbounded {
                system: s.id.clone(),
            });
        }
        if let Some(row) = rto.systems.iter().find(|r| r.system == s.id) {
            match &row.last {
                Some(l) if l.verdict == Verdict::Fail && !l.extrapolated => {
                    reasons.push(RagReason::DrillFailed {
                        system: s.id.clone(),
                        drill_id: l.drill_id,
                    })
                }
                _ => {}
            }
            if row.status != DrillCoverage::Current {
                reasons.push(RagReason::DrillDue {
                    system: s.id.clone(),
                });
            }
        }
        if posture
            .systems
            .iter()
            .any(|r| r.system == s.id && !r.conformant)
        {
            reasons.push(RagReason::RuleNotMet {
                system: s.id.clone(),
            });
        }
        out.insert(s.id.clone(), reasons);
    }
    out
}

/// Whether a row counts toward statuses and findings: every scenario does, except ransomware
/// for a tier that requires no immutable copy (its targets accept that exposure; the figures are
/// still reported).
fn judged(ctx: &Ctx<'_>, r: &RpoRow) -> bool {
    r.scenario != Scenario::Ransomware
        || ctx
            .policy
            .tiers
            .get(&r.tier)
            .is_some_and(|t| t.immutable > 0)
}

/// The status a reason gives.
pub fn reason_rag(r: &RagReason) -> Rag {
    match r {
        RagReason::SiteLossBelow { .. }
        | RagReason::SiteLossUnbounded { .. }
        | RagReason::DrillFailed { .. } => Rag::Red,
        RagReason::SiteLossBreach { .. }
        | RagReason::ScenarioBelow { .. }
        | RagReason::DrillDue { .. }
        | RagReason::RuleNotMet { .. } => Rag::Amber,
        RagReason::NoSystems => Rag::Grey,
    }
}

/// The status of a set of systems: the worst of their reasons; green when they have none; grey
/// when the set is empty.
fn rag_of<'r>(reasons: impl IntoIterator<Item = &'r RagReason>, empty: bool) -> Rag {
    if empty {
        return Rag::Grey;
    }
    reasons
        .into_iter()
        .map(reason_rag)
        .fold(Rag::Green, Rag::worst)
}

fn summary(
    ctx: &Ctx<'_>,
    rpo: &RpoSection,
    rto: &RtoSection,
    reasons: &BTreeMap<SystemId, Vec<RagReason>>,
    findings: &[Finding],
) -> Summary {
    let tiers: Vec<TierSummary> = ctx
        .policy
        .tiers
        .values()
        .map(|tier| {
            let members: Vec<&System> = ctx
                .policy
                .systems
                .values()
                .filter(|s| s.tier == tier.id)
                .collect();
            let mut tier_reasons: Vec<RagReason> = members
                .iter()
                .flat_map(|s| reasons.get(&s.id).into_iter().flatten().cloned())
                .collect();
            let rag = rag_of(&tier_reasons, members.is_empty());
            if members.is_empty() {
                tier_reasons.push(RagReason::NoSystems);
            }
            let site_loss = compliance(
                rpo.rows
                    .iter()
                    .filter(|r| r.tier == tier.id && r.scenario == Scenario::SiteLoss),
            );
            TierSummary {
                tier: tier.id.clone(),
                rag,
                reasons: tier_reasons,
                systems: members.len() as u32,
                site_loss,
                last_drill: tier_drill(rto, &tier.id),
            }
        })
        .collect();
    let overall = tiers.iter().map(|t| t.rag).fold(Rag::Grey, Rag::worst);
    Summary {
        overall,
        cells: cells(ctx, reasons),
        tiers,
        top_risks: findings
            .iter()
            .filter(|f| f.severity == Severity::High)
            .take(5)
            .map(|f| f.id.clone())
            .collect(),
    }
}

/// The status of each tier × site (the heat map).
fn cells(ctx: &Ctx<'_>, reasons: &BTreeMap<SystemId, Vec<RagReason>>) -> Vec<Cell> {
    let mut keys: BTreeMap<(TierId, crate::policy::SiteId), Vec<&SystemId>> = BTreeMap::new();
    for s in ctx.policy.systems.values() {
        keys.entry((s.tier.clone(), s.site.clone()))
            .or_default()
            .push(&s.id);
    }
    keys.into_iter()
        .map(|((tier, site), systems)| Cell {
            rag: rag_of(
                systems
                    .iter()
                    .flat_map(|s| reasons.get(*s).into_iter().flatten()),
                systems.is_empty(),
            ),
            tier,
            site,
            systems: systems.len() as u32,
        })
        .collect()
}

/// The tier's latest drill and its slowest RTO.
fn tier_drill(rto: &RtoSection, tier: &TierId) -> Option<TierDrill> {
    let rows: Vec<&LastDrill> = rto
        .systems
        .iter()
        .filter(|r| &r.tier == tier)
        .filter_map(|r| r.last.as_ref())
        .collect();
    let latest = rows.iter().max_by_key(|l| l.finished_at)?;
    let same: Vec<&&LastDrill> = rows
        .iter()
        .filter(|l| l.drill_id == latest.drill_id)
        .collect();
    let business = same.iter().filter_map(|l| l.business_rto_seconds).max();
    let (rto_seconds, rto_kind, target) = match business {
        Some(b) => (
            Some(b),
            RtoKind::Business,
            latest.business_rto_target_seconds,
        ),
        None => (
            same.iter().filter_map(|l| l.it_rto_seconds).max(),
            RtoKind::It,
            latest.it_rto_target_seconds,
        ),
    };
    Some(TierDrill {
        drill_id: latest.drill_id,
        plan: latest.plan.clone(),
        finished_at: latest.finished_at,
        verdict: same
            .iter()
            .map(|l| l.verdict)
            .max()
            .unwrap_or(latest.verdict),
        rto_seconds,
        rto_target_seconds: target,
        rto_kind,
        extrapolated: same.iter().all(|l| l.extrapolated),
    })
}

// ---------------------------------------------------------------------------------------------
// Findings

fn finding(severity: Severity, kind: FindingKind) -> Finding {
    Finding {
        id: String::new(),
        severity,
        kind,
    }
}

fn findings(
    ctx: &Ctx<'_>,
    rpo: &RpoSection,
    rto: &RtoSection,
    posture: &PostureSection,
    ops: &OperationsSection,
    drills: &DrillSection,
    records: &[&DrillRecord],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in rpo.rows.iter().filter(|r| r.breaches > 0 && judged(ctx, r)) {
        let severity = match (r.scenario, r.within_percent < RED_WITHIN_PERCENT) {
            (Scenario::SiteLoss, true) => Severity::High,
            (Scenario::SiteLoss, false) | (_, true) => Severity::Medium,
            _ => Severity::Low,
        };
        out.push(finding(
            severity,
            FindingKind::RpoBreach {
                system: r.system.clone(),
                scenario: r.scenario,
                breaches: r.breaches,
                breached_seconds: r.breached_seconds,
                worst_exposure_seconds: r.worst_exposure_seconds,
                target_seconds: r.target_seconds,
                causes: r.causes.iter().map(|c| c.kind).collect(),
            },
        ));
    }
    for d in drills.held.iter().filter(|d| d.verdict == Verdict::Fail) {
        let systems = records
            .iter()
            .find(|r| r.header.drill_id == d.drill_id)
            .map(|r| {
                r.results
                    .iter()
                    .filter(|s| s.result.verdict == Verdict::Fail)
                    .map(|s| s.result.system.clone())
                    .collect()
            })
            .unwrap_or_default();
        out.push(finding(
            Severity::High,
            FindingKind::DrillFailed {
                drill_id: d.drill_id,
                plan: d.plan.clone(),
                systems,
            },
        ));
    }
    for r in drills.regulatory.iter().filter(|r| r.overdue) {
        out.push(finding(
            Severity::High,
            FindingKind::RegulatoryOverdue {
                requirement: r.requirement.clone(),
                last_at: r.last_at,
            },
        ));
    }
    for repo in posture.repositories.iter() {
        if repo.failed_checks > 0 {
            let standing = repo.issues.iter().any(|i| i == "failing");
            out.push(finding(
                if standing {
                    Severity::High
                } else {
                    Severity::Medium
                },
                FindingKind::CheckFailed {
                    repository: repo.repository.clone(),
                    failed_checks: repo.failed_checks,
                    last_at: repo.last_failure,
                    standing,
                },
            ));
        }
        let gaps: Vec<String> = repo
            .issues
            .iter()
            .filter(|i| *i != "failing")
            .cloned()
            .collect();
        if !gaps.is_empty() {
            out.push(finding(
                Severity::Medium,
                FindingKind::IntegrityGap {
                    repository: repo.repository.clone(),
                    issues: gaps,
                },
            ));
        }
    }
    for s in posture.systems.iter().filter(|s| !s.conformant) {
        out.push(finding(
            Severity::Medium,
            FindingKind::RuleNotMet {
                system: s.system.clone(),
                digits: s.digits.iter().filter(|d| !d.met).map(|d| d.kind).collect(),
            },
        ));
    }
    for r in &rto.systems {
        match (r.status, &r.last) {
            (DrillCoverage::NeverDrilled, _) => out.push(finding(
                Severity::Medium,
                FindingKind::NeverDrilled {
                    system: r.system.clone(),
                },
            )),
            (DrillCoverage::Overdue, Some(l)) => out.push(finding(
                Severity::Medium,
                FindingKind::DrillOverdue {
                    system: r.system.clone(),
                    last_at: l.finished_at,
                    due_at: r.due_at,
                },
            )),
            _ => {}
        }
    }
    for s in ops.systems.iter().filter(|s| s.partial + s.failed > 0) {
        let severity = if s.success_percent.is_some_and(|p| p < 90.0) {
            Severity::Medium
        } else {
            Severity::Low
        };
        out.push(finding(
            severity,
            FindingKind::BackupFailures {
                system: s.system.clone(),
                failed: s.partial + s.failed,
                backups: s.backups,
            },
        ));
    }
    for d in records
        .iter()
        .filter(|d| ctx.in_quarter(d.header.finished_at.unwrap_or(d.header.started_at)))
    {
        for f in &d.findings {
            out.push(finding(
                match f.severity {
                    RecordSeverity::High => Severity::High,
                    RecordSeverity::Medium => Severity::Medium,
                    RecordSeverity::Low => Severity::Low,
                },
                FindingKind::DrillFinding {
                    drill_id: d.header.drill_id,
                    plan: d.header.plan.clone(),
                    text: f.text.clone(),
                },
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Appendix

/// §4.2 items that no data of lifeboat's answers: the report shows them as left to its owner.
pub const NOT_COVERED: [&str; 7] = [
    "bia-status",
    "incidents",
    "risk-acceptances",
    "changes-requiring-retest",
    "decisions-requested",
    "key-escrow",
    "agent-health-history",
];

/// The sign-off roles (§4.2 item 13; 19号 第54条 for the IT-risk confirmation).
pub const SIGN_OFF: [&str; 4] = [
    "report-owner",
    "cio",
    "bcm-lead-department",
    "it-risk-department",
];

fn appendix(ctx: &Ctx<'_>, drill_records: usize) -> Appendix {
    Appendix {
        sources: DataSources {
            run_records: ctx.runs.len() as u32,
            run_records_in_quarter: ctx
                .runs
                .iter()
                .filter(|r| ctx.in_quarter(r.finished_at))
                .count() as u32,
            drill_records: drill_records as u32,
            first_run_at: ctx.runs.iter().map(|r| r.started_at).min(),
            last_run_at: ctx.runs.iter().map(|r| r.finished_at).max(),
        },
        not_covered: NOT_COVERED.to_vec(),
        sign_off: SIGN_OFF.to_vec(),
    }
}
