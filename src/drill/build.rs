//! Glue between the pure parts of a drill: the plan of a drill about to start (scope, order,
//! restore points, the policy files the standby agent needs) and the record of a drill that
//! has ended (measurements, findings, evidence files).
//!
//! Pure like the rest of `drill`: the evidence arrives as run records, time as arguments.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use super::machine::{DrillRun, Ending, Planned, SlotState};
use super::measure::{self, SystemTimes, Timeline};
use super::order;
use super::record::{self, DrillEnd, DrillRecord, Header, Objective, ScenarioSection, Scope};
use super::select::{self, Conditions, Selection};
use crate::api::{AssignmentFile, TaskAction};
use crate::assess::Inventory;
use crate::policy::{DrillPlan, Mark, Policy, SystemId};
use crate::run::RunRecord;

/// What a drill of `plan` would do if it started at `now`: the systems in restore order with
/// their restore points, and the systems only extrapolated.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub plan: String,
    pub at: Timestamp,
    pub systems: Vec<PreviewSystem>,
    pub extrapolated: Vec<SystemId>,
    /// Sum of the estimated restore times (systems restored one after the other).
    pub estimated_seconds: Option<f64>,
    /// Restore throughput the estimate is based on (bytes per second), from past drills.
    pub throughput_bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewSystem {
    pub system: SystemId,
    pub tier: String,
    pub prerequisites: Vec<SystemId>,
    pub selection: Selection,
    pub estimated_seconds: Option<f64>,
}

/// Plans a drill of `plan` whose disaster strikes at `t_disaster` (its start, or the instant it
/// declares) from the run records of the systems in scope.
pub fn plan(
    policy: &Policy,
    plan: &DrillPlan,
    runs: &[RunRecord],
    t_disaster: Timestamp,
) -> (Vec<Planned>, Vec<SystemId>, Vec<Selection>) {
    let scope = order::in_scope(policy, plan);
    let (restored, extrapolated) = order::sample(policy, &scope, plan.scope.sample_per_tier);
    let ordered = order::restore_order(policy, &restored);
    let prereqs = order::prerequisites(policy, &ordered);
    let (inventory, _) = Inventory::from_runs(runs, policy);
    let cond = Conditions::of(plan, t_disaster);
    let mut planned = Vec::new();
    let mut selections = Vec::new();
    for id in ordered {
        let Some(system) = policy.systems.get(&id) else {
            continue;
        };
        let selection = select::choose(policy, &inventory, &id, &cond);
        planned.push(Planned {
            system: id.clone(),
            tier: system.tier.clone(),
            point: selection.chosen.clone(),
            reasons: selection.reasons.clone(),
            passed_over: selection
                .passed_over
                .iter()
                .map(|p| match &p.repository {
                    Some(r) => format!("{}@{r}: {}", short_id(&p.snapshot), p.reason),
                    None => format!("{}: {}", short_id(&p.snapshot), p.reason),
                })
                .collect(),
            prerequisites: prereqs.get(&id).cloned().unwrap_or_default(),
            policy_files: policy_files(policy, &id),
        });
        selections.push(selection);
    }
    (planned, extrapolated, selections)
}

/// A snapshot id as people read it: its first 8 characters.
fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The preview of `plan` at `now` (`lifeboat drill plan`): nothing is touched.
pub fn preview(
    policy: &Policy,
    drill: &DrillPlan,
    runs: &[RunRecord],
    throughput: Option<f64>,
    now: Timestamp,
) -> Preview {
    let (planned, extrapolated, selections) = plan(policy, drill, runs, now);
    let mut total = Some(0.0);
    let systems: Vec<PreviewSystem> = planned
        .into_iter()
        .zip(selections)
        .map(|(p, selection)| {
            let estimated = p
                .point
                .as_ref()
                .and_then(|pt| pt.bytes)
                .and_then(|b| select::estimate_seconds(b, throughput));
            total = match (total, estimated) {
                (Some(t), Some(e)) => Some(t + e),
                _ => None,
            };
            PreviewSystem {
                system: p.system,
                tier: p.tier.to_string(),
                prerequisites: p.prerequisites,
                selection,
                estimated_seconds: estimated,
            }
        })
        .collect();
    Preview {
        plan: drill.id.to_string(),
        at: now,
        systems,
        extrapolated,
        estimated_seconds: total,
        throughput_bytes_per_second: throughput,
    }
}

/// The policy files the standby agent needs to open `system`'s repositories: the system (its
/// dependencies dropped), its tier, its site and its repositories with their sites. Secret
/// *sources* only, as in any assignment.
pub fn policy_files(policy: &Policy, system: &SystemId) -> Vec<AssignmentFile> {
    let Some(s) = policy.systems.get(system) else {
        return Vec::new();
    };
    let mut s = s.clone();
    s.depends_on.clear();
    let repos: BTreeSet<_> = s.repositories.iter().cloned().collect();
    let mut sites: BTreeSet<_> = BTreeSet::from([s.site.clone()]);
    for r in &repos {
        if let Some(site) = policy.repositories.get(r).and_then(|r| r.site.clone()) {
            sites.insert(site);
        }
    }
    let part = Policy::assemble(
        policy
            .tiers
            .iter()
            .filter(|(id, _)| **id == s.tier)
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect(),
        policy
            .sites
            .iter()
            .filter(|(id, _)| sites.contains(*id))
            .map(|(id, x)| (id.clone(), x.clone()))
            .collect(),
        policy
            .repositories
            .iter()
            .filter(|(id, _)| repos.contains(*id))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect(),
        BTreeMap::from([(system.clone(), s)]),
    );
    match part.to_files() {
        Ok(files) => files
            .into_iter()
            .filter_map(|(name, content)| {
                name.parse()
                    .ok()
                    .map(|name| AssignmentFile { name, content })
            })
            .collect(),
        Err(e) => {
            tracing::error!("cannot write the drill policy of {system}: {e}");
            Vec::new()
        }
    }
}

/// The timeline of a drill for measurement.
pub fn timeline(run: &DrillRun) -> Timeline {
    let at = |m: Mark| run.marks.get(&m).map(|e| e.at);
    Timeline {
        outage: run.t_outage,
        disaster: run.t_disaster(),
        declare: at(Mark::Declare),
        system_ready: at(Mark::SystemReady),
        verify_pass: at(Mark::VerifyPass),
        service: at(Mark::Service),
        failback_start: at(Mark::FailbackStart),
        failback_done: at(Mark::FailbackDone),
    }
}

/// Per-system times of a drill, the systems only extrapolated included (not restored).
pub fn system_times(run: &DrillRun, policy: &Policy) -> Vec<SystemTimes> {
    let mut out: Vec<SystemTimes> = run
        .systems
        .iter()
        .map(|s| {
            let restore = s.restore_report(&run.plan);
            let verify = run
                .plan
                .steps
                .iter()
                .enumerate()
                .filter(|(_, st)| st.action == crate::policy::StepAction::Verify)
                .filter_map(|(i, _)| s.tasks.get(&i))
                .map(|slot| matches!(slot.state, SlotState::Succeeded { .. }))
                .reduce(|a, b| a && b);
            let failure = match &s.stage {
                super::machine::SystemStage::Going => None,
                super::machine::SystemStage::Failed { step, reason, .. } => {
                    Some(format!("{step}: {reason}"))
                }
                super::machine::SystemStage::Skipped { reason } => {
                    Some(format!("skipped: {reason}"))
                }
            };
            let restored = restore.and_then(|r| r.restore.as_ref());
            SystemTimes {
                system: s.system.clone(),
                tier: s.tier.clone(),
                t_cap: s.point.as_ref().map(|p| p.t_cap),
                restore_start: restore.map(|r| r.started_at),
                restore_end: restore
                    .filter(|r| r.outcome == crate::run::Outcome::Success)
                    .map(|r| r.finished_at),
                ready: s.ready_at(),
                bytes: restored.map_or(0, |r| r.bytes),
                files: restored.map_or(0, |r| r.files),
                verified: verify,
                failure,
                restored: true,
            }
        })
        .collect();
    // A system dropped from the policy since the drill started has no tier to judge it by.
    for (id, system) in run
        .extrapolated
        .iter()
        .filter_map(|id| policy.systems.get(id).map(|s| (id, s)))
    {
        out.push(SystemTimes {
            system: id.clone(),
            tier: system.tier.clone(),
            t_cap: None,
            restore_start: None,
            restore_end: None,
            ready: None,
            bytes: 0,
            files: 0,
            verified: None,
            failure: None,
            restored: false,
        });
    }
    out
}

/// The record of an ended drill (not sealed yet) and the files of its evidence bundle.
/// `full_bytes` is the size of every system in scope (for the projection of a sampled drill).
pub fn record(
    run: &DrillRun,
    policy: &Policy,
    full_bytes: u64,
) -> (DrillRecord, Vec<(String, Vec<u8>)>) {
    let timeline = timeline(run);
    let times = system_times(run, policy);
    let results: Vec<measure::SystemResult> = times
        .iter()
        .map(|t| {
            measure::measure_system(
                policy,
                run.plan.drill_type,
                &run.plan.criteria,
                &timeline,
                t,
            )
        })
        .collect();
    let projection = if run.extrapolated.is_empty() {
        None
    } else {
        measure::project(&times, full_bytes, &timeline)
    };
    let objectives = times
        .iter()
        .filter_map(|t| {
            measure::targets(policy, &run.plan.criteria, &t.tier).map(|targets| {
                Objective::new(
                    t.system.clone(),
                    t.tier.clone(),
                    targets,
                    run.plan.criteria.verify_required,
                )
            })
        })
        .collect();
    let readiness: Vec<record::ReadinessItem> = run
        .readiness
        .iter()
        .map(|i| record::ReadinessItem {
            subject: i.subject.clone(),
            ok: i.ok,
            detail: i.detail.clone(),
        })
        .collect();
    let mut marks = vec![record::TimelineEntry {
        mark: "outage".into(),
        at: run.t_outage,
        recorded_by: run.started_by.clone(),
        source: "drill start".into(),
    }];
    if let Some(at) = run.declared_disaster {
        marks.push(record::TimelineEntry {
            mark: "disaster".into(),
            at,
            recorded_by: run.started_by.clone(),
            source: "declared at the drill's start".into(),
        });
    }
    for s in &run.systems {
        if let Some(r) = s.restore_report(&run.plan) {
            marks.push(record::TimelineEntry {
                mark: format!("restore-start:{}", s.system),
                at: r.started_at,
                recorded_by: r.host.clone(),
                source: "agent report".into(),
            });
            if r.outcome == crate::run::Outcome::Success {
                marks.push(record::TimelineEntry {
                    mark: format!("restore-end:{}", s.system),
                    at: r.finished_at,
                    recorded_by: r.host.clone(),
                    source: "agent report".into(),
                });
            }
        }
    }
    for (mark, e) in &run.marks {
        marks.push(record::TimelineEntry {
            mark: mark.to_string(),
            at: e.at,
            recorded_by: e.recorded_by.clone(),
            source: e.step.clone(),
        });
    }
    marks.sort_by_key(|m| m.at);
    let step_log = run
        .log
        .iter()
        .map(|l| record::StepLogEntry {
            at: l.at,
            step: l.step.clone(),
            system: l.system.clone(),
            event: l.event.clone(),
            detail: Some(l.detail.clone()).filter(|d| !d.is_empty()),
        })
        .collect();
    let findings = record::findings(&results, &readiness, &run.deviations);
    let records = results
        .iter()
        .map(|r| {
            let s = run.systems.iter().find(|s| s.system == r.system);
            let restore = s
                .and_then(|s| s.restore_report(&run.plan))
                .and_then(|x| x.restore.clone());
            let digest = s.and_then(|s| {
                s.tasks
                    .values()
                    .filter_map(|t| t.report())
                    .filter_map(|r| r.restore.as_ref())
                    .filter_map(|r| r.tree_digest.clone())
                    .next_back()
            });
            record::SystemRecord {
                result: r.clone(),
                restore_point: s.and_then(|s| s.point.clone()),
                bytes_restored: restore.as_ref().map_or(0, |x| x.bytes),
                files_restored: restore.as_ref().map_or(0, |x| x.files),
                tree_digest: digest,
            }
        })
        .collect();
    let verdict = if run.ending == Some(Ending::NotReady) || results.is_empty() {
        measure::Verdict::Fail
    } else {
        measure::overall(&results)
    };
    // The evidence bundle: the plan, the drill's state with every agent report, the step log.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    files.push(("plan.json".into(), pretty(&run.plan)));
    files.push(("drill-state.json".into(), pretty(run)));
    files.push(("step-log.json".into(), pretty(&run.log)));
    for slot in run.all_slots() {
        if let Some(r) = slot.report() {
            files.push((format!("reports/{}.json", slot.task.task_id), pretty(r)));
        }
        if let (TaskAction::Command { .. }, Some(r)) = (&slot.task.action, slot.report())
            && let Some(c) = &r.command
        {
            files.push((
                format!("output/{}.txt", slot.task.task_id),
                c.output_tail.clone().into_bytes(),
            ));
        }
    }
    let evidence = files
        .iter()
        .map(|(name, content)| record::EvidenceItem::of(name, content))
        .collect();
    let scope = Scope {
        restored: run.systems.iter().map(|s| s.system.clone()).collect(),
        extrapolated: run.extrapolated.clone(),
        excluded: run.plan.scope.exclude.clone(),
    };
    let cond = Conditions::of(&run.plan, run.t_disaster());
    let record = DrillRecord {
        header: Header {
            drill_id: run.id,
            plan: run.plan.id.clone(),
            title: run.plan.title.clone(),
            title_zh: run.plan.title_zh.clone(),
            drill_type: run.plan.drill_type,
            regulatory: record::regulatory_flag(run.plan.drill_type),
            policy_digest: run.policy_digest.clone(),
            lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
            started_by: run.started_by.clone(),
            started_at: run.t_outage,
            finished_at: run.ended_at,
            status: match run.ending {
                Some(Ending::Completed) | None => DrillEnd::Completed,
                Some(Ending::Stopped) => DrillEnd::Stopped,
                Some(Ending::Aborted) => DrillEnd::Aborted,
                Some(Ending::NotReady) => DrillEnd::NotReady,
            },
        },
        objectives,
        scope,
        scenario: ScenarioSection {
            kind: run.plan.scenario.kind,
            lost_site: run.plan.scenario.lost_site.clone(),
            lost_system: run.plan.scenario.system.clone(),
            outage: run.t_outage,
            declared_disaster: run.declared_disaster,
            compromise_at: run.compromise_at,
            allowed_copies: cond.allowed_copies(),
        },
        organisation: (&run.plan.organisation).into(),
        readiness,
        timeline: marks,
        step_log,
        results: records,
        projection,
        verdict,
        deviations: run.deviations.clone(),
        findings,
        evidence,
        bundle_sha256: None,
        sign_off: record::blank_sign_off(),
        previous_hash: String::new(),
        record_hash: String::new(),
    };
    (record, files)
}

/// Pretty JSON of an evidence file (these types always serialise).
fn pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}
