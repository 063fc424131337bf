//! The drill state machine: one drill from readiness to clean-up, as plain data that the
//! coordinator stores as JSON after every change.
//!
//! The orchestrator feeds it what happened — agent reports ([`DrillRun::on_report`]), gate
//! approvals ([`DrillRun::approve`]), aborts ([`DrillRun::abort`]) and the passing of time
//! ([`DrillRun::tick`]) — and carries out what it asks for: the tasks of [`DrillRun::open_tasks`]
//! go to the standby agent until they are reported. Nothing here reads the clock, the store or
//! the network, so every path (a timeout, a lost agent, a failed dependency) is a table test.
//!
//! # How a drill moves
//!
//! `readiness` → `running` → `cleanup` → `ended`.
//! - **Readiness**: every system in scope has a restore point at an allowed copy (chosen before
//!   [`DrillRun::start`] by `select`), and the standby agent is online; then one probe task asks
//!   the agent whether it holds the credentials, reaches each repository, sees each snapshot and
//!   has the space. Anything missing ends the drill `not-ready` (it is still recorded).
//! - **Running**: steps run in plan order. A run of consecutive per-system steps is a
//!   *segment*: each system goes through the segment's steps one after the other, systems start
//!   in restore order once their prerequisites have completed the segment, at most
//!   `parallelism` at once. A drill-wide step starts when every earlier step has ended. A step
//!   that succeeds sets its timeline mark.
//! - **Failure**: a failed system stops, and so do the systems that depend on it; with
//!   `on-failure = "stop"` the whole drill stops. A drill-wide step that fails (a gate not
//!   approved in time, a switch-over script exiting non-zero) stops the drill: nothing after it
//!   can be trusted.
//! - **Clean-up**: unless the plan keeps the restored data, one task removes the drill's
//!   directory on the standby host; then the drill has ended.
//!
//! T_outage, the simulated outage, is the instant the drill starts: readiness is part of the
//! measured time, as it would be in a real disaster. T_disaster, the instant the data is lost
//! (restore points are chosen for it, the achieved RPO is measured from it), is T_outage unless
//! the drill declared an earlier one ("what if we had lost the site at 02:00?"): the restore
//! then brings back the data as it was at that instant, and the recovery is still timed from
//! the drill's start.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::select::RestorePoint;
use crate::api::{AssignmentFile, DrillReport, DrillTask, RestoreTarget, TaskAction};
use crate::policy::{DrillPlan, GateRole, Mark, OnFailure, StepAction, SystemId, TierId};
use crate::run::Outcome;

/// The step name of the readiness probe.
pub const READINESS: &str = "readiness";
/// The step name of the clean-up task.
pub const CLEANUP: &str = "cleanup";
/// How long after its own timeout the coordinator waits for the report of a task (the agent
/// enforces the timeout itself and reports; this covers the report's way back).
pub const REPORT_GRACE: SignedDuration = SignedDuration::from_secs(60);
/// Timeout of the readiness probe and of the clean-up.
pub const HOUSEKEEPING_TIMEOUT: SignedDuration = SignedDuration::from_secs(15 * 60);

/// Where a drill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Readiness,
    Running,
    Cleanup,
    Ended,
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Every step ran; each system's verdict is in the record.
    Completed,
    /// Stopped by a failure (`on-failure = "stop"`, or a drill-wide step failed).
    Stopped,
    /// An operator aborted it.
    Aborted,
    /// The readiness check failed; nothing was restored.
    NotReady,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Stopped => "stopped",
            Ending::Aborted => "aborted",
            Ending::NotReady => "not-ready",
        }
    }
}

/// One system as planned before the drill starts (by `order` and `select`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub system: SystemId,
    pub tier: TierId,
    /// `None`: no allowed restore point (the drill will not be ready); `reasons` says why.
    pub point: Option<RestorePoint>,
    /// What selection found missing, for the readiness section.
    pub reasons: Vec<String>,
    /// Newer candidates selection passed over, each with why (`snapshot[@repository]: reason`),
    /// for the readiness section.
    pub passed_over: Vec<String>,
    /// In-scope systems that must complete a segment before this one starts it.
    pub prerequisites: Vec<SystemId>,
    /// The policy files the agent needs to open this system's repositories.
    pub policy_files: Vec<AssignmentFile>,
}

/// Everything [`DrillRun::start`] needs besides the plan.
#[derive(Debug, Clone)]
pub struct StartInput {
    pub id: Uuid,
    pub plan: DrillPlan,
    pub policy_digest: String,
    pub started_by: String,
    pub now: Timestamp,
    /// `T_disaster` when declared before `now`; the restore points were chosen for it.
    pub declared_disaster: Option<Timestamp>,
    /// In restore order.
    pub systems: Vec<Planned>,
    /// In scope but not restored (a sample was drawn): only extrapolated.
    pub extrapolated: Vec<SystemId>,
    /// The standby agent's last heartbeat, if it ever sent one.
    pub standby_last_seen: Option<Timestamp>,
    /// An agent silent for longer is lost.
    pub agent_lost_after: SignedDuration,
}

/// A timeline mark with who or what set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkEntry {
    pub at: Timestamp,
    pub recorded_by: String,
    /// The step that set it.
    pub step: String,
}

/// One readiness finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessItem {
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

/// One line of the step log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: Timestamp,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemId>,
    pub event: String,
    pub detail: String,
}

/// A task handed to the standby agent and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSlot {
    pub task: DrillTask,
    pub offered_at: Timestamp,
    /// After this the task is failed if no report came.
    pub deadline: Timestamp,
    pub state: SlotState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SlotState {
    Open,
    Succeeded {
        report: Box<DrillReport>,
    },
    Failed {
        at: Timestamp,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<Box<DrillReport>>,
    },
}

impl TaskSlot {
    pub fn is_open(&self) -> bool {
        matches!(self.state, SlotState::Open)
    }

    pub fn report(&self) -> Option<&DrillReport> {
        match &self.state {
            SlotState::Succeeded { report } => Some(report),
            SlotState::Failed { report, .. } => report.as_deref(),
            SlotState::Open => None,
        }
    }
}

/// Where one system is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "kebab-case")]
pub enum SystemStage {
    /// Not failed or skipped (it may be between segments, or done).
    Going,
    Failed {
        at: Timestamp,
        step: String,
        reason: String,
    },
    Skipped {
        reason: String,
    },
}

/// One system during the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemRun {
    pub system: SystemId,
    pub tier: TierId,
    pub point: Option<RestorePoint>,
    pub prerequisites: Vec<SystemId>,
    pub policy_files: Vec<AssignmentFile>,
    /// `<restore-root>/<drill id>/<system>` on the standby host.
    pub target_dir: String,
    pub stage: SystemStage,
    /// Per plan step index: the task of this system for that step.
    pub tasks: BTreeMap<usize, TaskSlot>,
}

impl SystemRun {
    fn going(&self) -> bool {
        matches!(self.stage, SystemStage::Going)
    }

    /// Whether this system has succeeded in every step of `steps`.
    fn completed(&self, steps: &std::ops::Range<usize>) -> bool {
        steps.clone().all(|i| {
            self.tasks
                .get(&i)
                .is_some_and(|t| matches!(t.state, SlotState::Succeeded { .. }))
        })
    }

    /// Whether this system has a task open in `steps`.
    fn active(&self, steps: &std::ops::Range<usize>) -> bool {
        steps
            .clone()
            .any(|i| self.tasks.get(&i).is_some_and(TaskSlot::is_open))
    }

    /// The report of this system's restore (the first `restore` step's task).
    pub fn restore_report(&self, plan: &DrillPlan) -> Option<&DrillReport> {
        plan.steps
            .iter()
            .position(|s| s.action == StepAction::Restore)
            .and_then(|i| self.tasks.get(&i))
            .and_then(TaskSlot::report)
    }

    /// When the system was ready: the end of its last successful per-system task.
    pub fn ready_at(&self) -> Option<Timestamp> {
        if !self.going() {
            return None;
        }
        self.tasks
            .values()
            .filter_map(|t| match &t.state {
                SlotState::Succeeded { report } => Some(report.finished_at),
                _ => None,
            })
            .max()
    }
}

/// Where one plan step is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed { reason: String },
    Skipped { reason: String },
}

impl StepState {
    fn ended(&self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running)
    }
}

/// A gate's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub role: String,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

/// One plan step during the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRun {
    pub name: String,
    pub action: StepAction,
    pub per_system: bool,
    pub state: StepState,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// A drill-wide `command` or `failback`.
    pub task: Option<TaskSlot>,
    pub approval: Option<Approval>,
}

/// One drill: the plan as it was when it started, and everything that happened since.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRun {
    pub id: Uuid,
    pub plan: DrillPlan,
    pub policy_digest: String,
    pub started_by: String,
    /// The simulated outage: the drill's start, which every RTO is measured from.
    pub t_outage: Timestamp,
    /// `T_disaster`, when the drill declared one before its start (see the module
    /// documentation); absent, it is `t_outage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_disaster: Option<Timestamp>,
    /// Ransomware: copies captured from this instant on are not trusted.
    pub compromise_at: Option<Timestamp>,
    pub standby_host: String,
    pub agent_lost_after: SignedDuration,
    pub phase: Phase,
    pub ending: Option<Ending>,
    pub ended_at: Option<Timestamp>,
    /// Why it stopped, was aborted or was not ready.
    pub end_reason: Option<String>,
    /// In restore order.
    pub systems: Vec<SystemRun>,
    pub extrapolated: Vec<SystemId>,
    pub steps: Vec<StepRun>,
    pub marks: BTreeMap<Mark, MarkEntry>,
    pub readiness: Vec<ReadinessItem>,
    pub probe: Option<TaskSlot>,
    pub cleanup: Option<TaskSlot>,
    pub log: Vec<LogEntry>,
    /// Departures from the plan (timeouts, a lost agent, a late report, an abort).
    pub deviations: Vec<String>,
    /// The id of the last store input (report, approval, abort) applied to this drill.
    pub inputs_applied: i64,
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("drill step \"{0}\" does not exist")]
    NoSuchStep(String),
    #[error("drill step \"{0}\" is not a gate")]
    NotAGate(String),
    #[error("gate \"{step}\" is not waiting for approval (it is {state})")]
    NotWaiting { step: String, state: String },
    #[error("gate \"{step}\" needs the {needed} role")]
    RoleTooLow { step: String, needed: GateRole },
}

/// Why an abort was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the drill has already ended")]
pub struct AlreadyEnded;

fn secs(d: crate::policy::Duration) -> SignedDuration {
    SignedDuration::try_from(d.as_std()).unwrap_or(SignedDuration::MAX)
}

/// The state of a slot its report settles: succeeded, or failed for `reason`.
fn settled(report: &DrillReport, ok: bool, reason: String, now: Timestamp) -> SlotState {
    if ok {
        SlotState::Succeeded {
            report: Box::new(report.clone()),
        }
    } else {
        SlotState::Failed {
            at: now,
            reason,
            report: Some(Box::new(report.clone())),
        }
    }
}

fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn minus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

fn short(d: SignedDuration) -> String {
    let s = d.as_secs().max(0);
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

impl DrillRun {
    /// A drill starting now: readiness is decided at once from the plan, the restore points
    /// and the agent's last heartbeat; when that passes, the probe task is open.
    pub fn start(input: StartInput) -> DrillRun {
        let StartInput {
            id,
            plan,
            policy_digest,
            started_by,
            now,
            declared_disaster,
            systems,
            extrapolated,
            standby_last_seen,
            agent_lost_after,
        } = input;
        // A disaster cannot be declared after the outage it causes.
        let declared_disaster = declared_disaster.map(|t| t.min(now));
        let t_disaster = declared_disaster.unwrap_or(now);
        let root = plan.standby.restore_root.as_path().join(id.to_string());
        let reasons: BTreeMap<SystemId, (Vec<String>, Vec<String>)> = systems
            .iter()
            .map(|p| (p.system.clone(), (p.reasons.clone(), p.passed_over.clone())))
            .collect();
        let compromise_at = plan
            .scenario
            .compromised_for
            .map(|d| minus(t_disaster, secs(d)));
        let steps = plan
            .steps
            .iter()
            .map(|s| StepRun {
                name: s.name.clone(),
                action: s.action,
                per_system: s.is_per_system(),
                state: StepState::Pending,
                started_at: None,
                finished_at: None,
                task: None,
                approval: None,
            })
            .collect();
        let mut run = DrillRun {
            id,
            standby_host: plan.standby.host.clone(),
            policy_digest,
            started_by: started_by.clone(),
            t_outage: now,
            declared_disaster,
            compromise_at,
            agent_lost_after,
            phase: Phase::Readiness,
            ending: None,
            ended_at: None,
            end_reason: None,
            systems: systems
                .into_iter()
                .map(|p| SystemRun {
                    target_dir: root.join(p.system.as_str()).display().to_string(),
                    system: p.system,
                    tier: p.tier,
                    point: p.point,
                    prerequisites: p.prerequisites,
                    policy_files: p.policy_files,
                    stage: SystemStage::Going,
                    tasks: BTreeMap::new(),
                })
                .collect(),
            extrapolated,
            steps,
            marks: BTreeMap::new(),
            readiness: Vec::new(),
            probe: None,
            cleanup: None,
            log: Vec::new(),
            deviations: Vec::new(),
            inputs_applied: 0,
            plan,
        };
        run.log(
            now,
            READINESS,
            None,
            "started",
            match declared_disaster {
                Some(d) => format!(
                    "drill started by {started_by}; T_outage = {now}; T_disaster declared at {d} \
                     ({} earlier): restore points as they were then",
                    short(now.duration_since(d))
                ),
                None => format!("drill started by {started_by}; T_outage = {now}"),
            },
        );
        run.check_readiness(now, standby_last_seen, &reasons);
        run
    }

    /// `T_disaster`: the declared disaster instant, or the drill's start.
    pub fn t_disaster(&self) -> Timestamp {
        self.declared_disaster.unwrap_or(self.t_outage)
    }

    /// The directory on the standby host that holds everything this drill restored.
    pub fn drill_root(&self) -> String {
        self.plan
            .standby
            .restore_root
            .as_path()
            .join(self.id.to_string())
            .display()
            .to_string()
    }

    fn log(
        &mut self,
        at: Timestamp,
        step: &str,
        system: Option<&SystemId>,
        event: &str,
        detail: String,
    ) {
        self.log.push(LogEntry {
            at,
            step: step.to_string(),
            system: system.cloned(),
            event: event.to_string(),
            detail,
        });
    }

    fn task_id(&self, step: usize, system: Option<&SystemId>) -> String {
        format!(
            "{}.{}.{}",
            self.id,
            step,
            system.map_or("drill", |s| s.as_str())
        )
    }

    fn check_readiness(
        &mut self,
        now: Timestamp,
        last_seen: Option<Timestamp>,
        reasons: &BTreeMap<SystemId, (Vec<String>, Vec<String>)>,
    ) {
        let mut items = Vec::new();
        for s in &self.systems {
            let (missing, passed_over) = reasons
                .get(&s.system)
                .map(|(m, p)| (m.as_slice(), p.as_slice()))
                .unwrap_or_default();
            items.push(match &s.point {
                Some(p) => ReadinessItem {
                    subject: format!("restore point of {}", s.system),
                    ok: true,
                    detail: format!(
                        "snapshot {} at {} ({}{}), captured {}, available there {}{}",
                        p.snapshot.chars().take(8).collect::<String>(),
                        p.repository,
                        p.location,
                        if p.immutable { ", immutable" } else { "" },
                        p.t_cap,
                        p.t_avail,
                        if passed_over.is_empty() {
                            String::new()
                        } else {
                            format!("; newer, passed over: {}", passed_over.join("; "))
                        }
                    ),
                },
                None => ReadinessItem {
                    subject: format!("restore point of {}", s.system),
                    ok: false,
                    detail: {
                        let why: Vec<&str> = missing
                            .iter()
                            .chain(passed_over)
                            .map(String::as_str)
                            .collect();
                        if why.is_empty() {
                            "no snapshot at a copy the scenario allows".to_string()
                        } else {
                            format!(
                                "no snapshot at a copy the scenario allows: {}",
                                why.join("; ")
                            )
                        }
                    },
                },
            });
        }
        let agent_ok = last_seen.is_some_and(|t| now.duration_since(t) <= self.agent_lost_after);
        items.push(ReadinessItem {
            subject: format!("standby agent {}", self.standby_host),
            ok: agent_ok,
            detail: match last_seen {
                Some(t) if agent_ok => format!("online (last heartbeat {t})"),
                Some(t) => format!("offline: last heartbeat {t}"),
                None => "never heard from: enrol the standby host's agent".to_string(),
            },
        });
        if self.systems.is_empty() {
            items.push(ReadinessItem {
                subject: "scope".into(),
                ok: false,
                detail: "no system to restore".into(),
            });
        }
        let ready = items.iter().all(|i| i.ok);
        self.readiness = items;
        if !ready {
            self.end(now, Ending::NotReady, "the readiness check failed".into());
            return;
        }
        let need: u64 = self
            .systems
            .iter()
            .filter_map(|s| s.point.as_ref().and_then(|p| p.bytes))
            .sum::<u64>()
            .saturating_add(self.plan.standby.reserve_bytes);
        let targets = self
            .systems
            .iter()
            .filter_map(|s| self.target_of(s))
            .collect();
        let task = DrillTask {
            task_id: format!("{}.{}", self.id, READINESS),
            drill_id: self.id,
            step: READINESS.into(),
            system: None,
            timeout_seconds: HOUSEKEEPING_TIMEOUT.as_secs().unsigned_abs(),
            action: TaskAction::Probe {
                restore_root: self
                    .plan
                    .standby
                    .restore_root
                    .as_path()
                    .display()
                    .to_string(),
                need_bytes: need,
                targets,
            },
        };
        self.probe = Some(TaskSlot {
            task,
            offered_at: now,
            deadline: plus(now, HOUSEKEEPING_TIMEOUT + REPORT_GRACE),
            state: SlotState::Open,
        });
        self.log(
            now,
            READINESS,
            None,
            "probe",
            format!(
                "asked {} to check credentials, repositories, snapshots and {need} bytes of space",
                self.standby_host
            ),
        );
    }

    fn target_of(&self, s: &SystemRun) -> Option<RestoreTarget> {
        let p = s.point.as_ref()?;
        Some(RestoreTarget {
            system: s.system.clone(),
            repository: p.repository.clone(),
            snapshot: p.snapshot.clone(),
            target_dir: s.target_dir.clone(),
            policy: s.policy_files.clone(),
        })
    }

    /// Tasks the standby agent should be working on now.
    pub fn open_tasks(&self) -> Vec<DrillTask> {
        let mut out = Vec::new();
        let slots = self
            .probe
            .iter()
            .chain(self.cleanup.iter())
            .chain(self.steps.iter().filter_map(|s| s.task.as_ref()))
            .chain(self.systems.iter().flat_map(|s| s.tasks.values()));
        for slot in slots {
            if slot.is_open() {
                out.push(slot.task.clone());
            }
        }
        out
    }

    /// Every task ever offered (for withdrawing what is left open, and for the evidence).
    pub fn all_slots(&self) -> Vec<&TaskSlot> {
        self.probe
            .iter()
            .chain(self.steps.iter().filter_map(|s| s.task.as_ref()))
            .chain(self.systems.iter().flat_map(|s| s.tasks.values()))
            .chain(self.cleanup.iter())
            .collect()
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// A report from the standby agent. Reports of tasks that are no longer open (a duplicate,
    /// or a task already failed by a timeout) are logged and otherwise ignored.
    pub fn on_report(&mut self, report: &DrillReport, now: Timestamp) {
        let id = report.task_id.clone();
        let ok = report.outcome == Outcome::Success;
        let reason = report.error.as_ref().map_or_else(
            || "failed without a reason".to_string(),
            |e| format!("{} ({})", e.message, e.kind),
        );
        // Probe.
        if self.probe.as_ref().is_some_and(|s| s.task.task_id == id) {
            if !self.settle_probe(report, now) {
                return;
            }
            self.advance(now);
            return;
        }
        if self.cleanup.as_ref().is_some_and(|s| s.task.task_id == id) {
            if let Some(slot) = &mut self.cleanup
                && slot.is_open()
            {
                slot.state = settled(report, ok, reason.clone(), now);
                if !ok {
                    self.deviations
                        .push(format!("clean-up of the restored data failed: {reason}"));
                }
                self.log(
                    now,
                    CLEANUP,
                    None,
                    if ok { "succeeded" } else { "failed" },
                    if ok {
                        "restored data removed".into()
                    } else {
                        reason
                    },
                );
                self.finish(now);
            }
            return;
        }
        // A drill-wide step.
        if let Some(i) = self
            .steps
            .iter()
            .position(|s| s.task.as_ref().is_some_and(|t| t.task.task_id == id))
        {
            let open = self.steps[i].task.as_ref().is_some_and(TaskSlot::is_open);
            if !open {
                self.log(
                    now,
                    &self.steps[i].name.clone(),
                    None,
                    "late-report",
                    "report of a task already settled; ignored".into(),
                );
                return;
            }
            if let Some(slot) = &mut self.steps[i].task {
                slot.state = settled(report, ok, reason.clone(), now);
            }
            let name = self.steps[i].name.clone();
            if ok {
                self.log(now, &name, None, "succeeded", command_detail(report));
                self.step_done(i, report.finished_at.min(now), "the standby agent");
            } else {
                self.log(now, &name, None, "failed", reason.clone());
                self.step_failed(i, now, reason);
            }
            self.advance(now);
            return;
        }
        // A per-system step.
        let found = self.systems.iter().enumerate().find_map(|(si, s)| {
            s.tasks
                .iter()
                .find(|(_, t)| t.task.task_id == id)
                .map(|(step, _)| (si, *step))
        });
        let Some((si, step)) = found else {
            self.log(
                now,
                "-",
                None,
                "unknown-report",
                format!("report for unknown task {id}; ignored"),
            );
            return;
        };
        let open = self.systems[si]
            .tasks
            .get(&step)
            .is_some_and(TaskSlot::is_open);
        let name = self.steps[step].name.clone();
        let system = self.systems[si].system.clone();
        if !open {
            self.log(
                now,
                &name,
                Some(&system),
                "late-report",
                "report of a task already settled; ignored".into(),
            );
            return;
        }
        if let Some(slot) = self.systems[si].tasks.get_mut(&step) {
            slot.state = settled(report, ok, reason.clone(), now);
        }
        if ok {
            self.log(now, &name, Some(&system), "succeeded", task_detail(report));
        } else {
            self.log(now, &name, Some(&system), "failed", reason.clone());
            self.fail_system(si, now, &name, reason);
        }
        self.advance(now);
    }

    /// Settles the probe; false when the report was not for an open probe.
    fn settle_probe(&mut self, report: &DrillReport, now: Timestamp) -> bool {
        let Some(slot) = &mut self.probe else {
            return false;
        };
        if !slot.is_open() {
            return false;
        }
        let need = match &slot.task.action {
            TaskAction::Probe { need_bytes, .. } => *need_bytes,
            _ => 0,
        };
        let mut items = Vec::new();
        let mut ok = report.outcome == Outcome::Success;
        if let Some(p) = &report.probe {
            for t in &p.targets {
                let good =
                    t.credentials && t.reachable && t.snapshot_present && t.problem.is_none();
                ok &= good;
                items.push(ReadinessItem {
                    subject: format!(
                        "{} from {} on {}",
                        t.system, t.repository, self.standby_host
                    ),
                    ok: good,
                    detail: t.problem.clone().unwrap_or_else(|| {
                        "credentials resolve, repository opens, snapshot present".into()
                    }),
                });
            }
            let space = p.free_bytes >= need;
            ok &= space;
            items.push(ReadinessItem {
                subject: format!("free space on {}", self.standby_host),
                ok: space,
                detail: format!("{} bytes free, {} needed", p.free_bytes, need),
            });
        } else if let Some(e) = &report.error {
            items.push(ReadinessItem {
                subject: format!("probe on {}", self.standby_host),
                ok: false,
                detail: format!("{} ({})", e.message, e.kind),
            });
        }
        slot.state = settled(report, ok, "the standby host is not ready".into(), now);
        self.readiness.extend(items);
        if ok {
            self.phase = Phase::Running;
            self.log(
                now,
                READINESS,
                None,
                "ready",
                "every readiness check passed".into(),
            );
        } else {
            self.log(
                now,
                READINESS,
                None,
                "not-ready",
                "the standby host failed the readiness probe".into(),
            );
            self.end(
                now,
                Ending::NotReady,
                "the standby host failed the readiness probe".into(),
            );
        }
        true
    }

    /// A gate's approval by `by`, who holds `role`.
    pub fn approve(
        &mut self,
        step: &str,
        by: &str,
        role: GateRole,
        comment: &str,
        now: Timestamp,
    ) -> Result<(), ApproveError> {
        let i = self
            .steps
            .iter()
            .position(|s| s.name == step)
            .ok_or_else(|| ApproveError::NoSuchStep(step.to_string()))?;
        if self.steps[i].action != StepAction::Gate {
            return Err(ApproveError::NotAGate(step.to_string()));
        }
        if self.steps[i].state != StepState::Running || self.phase != Phase::Running {
            return Err(ApproveError::NotWaiting {
                step: step.to_string(),
                state: state_name(&self.steps[i].state).to_string(),
            });
        }
        let needed = self.plan.steps[i].role.unwrap_or(GateRole::Operator);
        if role < needed {
            return Err(ApproveError::RoleTooLow {
                step: step.to_string(),
                needed,
            });
        }
        self.steps[i].approval = Some(Approval {
            by: by.to_string(),
            role: role.to_string(),
            at: now,
            comment: comment.to_string(),
        });
        self.log(
            now,
            step,
            None,
            "approved",
            format!(
                "approved by {by} ({role}){}",
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(": {comment}")
                }
            ),
        );
        self.step_done(i, now, by);
        self.advance(now);
        Ok(())
    }

    /// Ends the drill on an operator's request: open tasks are dropped, the rest skipped, then
    /// clean-up as usual.
    pub fn abort(&mut self, by: &str, reason: &str, now: Timestamp) -> Result<(), AlreadyEnded> {
        if matches!(self.phase, Phase::Ended | Phase::Cleanup) {
            return Err(AlreadyEnded);
        }
        let why = format!(
            "aborted by {by}{}",
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        );
        self.deviations.push(why.clone());
        self.log(now, "-", None, "aborted", why.clone());
        self.end(now, Ending::Aborted, why);
        Ok(())
    }

    /// The passing of time: waits end, timeouts fire, a silent agent is declared lost.
    pub fn tick(&mut self, now: Timestamp, standby_last_seen: Option<Timestamp>) {
        if self.phase == Phase::Ended {
            return;
        }
        // A lost agent fails every open task at once.
        let lost = standby_last_seen.is_none_or(|t| now.duration_since(t) > self.agent_lost_after);
        if lost && !self.open_tasks().is_empty() {
            let since = standby_last_seen.map_or_else(|| "never".to_string(), |t| t.to_string());
            let reason = format!(
                "standby agent {} lost: no heartbeat since {since} (more than {})",
                self.standby_host,
                short(self.agent_lost_after)
            );
            self.deviations.push(reason.clone());
            self.fail_open(now, &reason);
        }
        // Deadlines.
        let late: Vec<String> = self
            .all_slots()
            .into_iter()
            .filter(|s| s.is_open() && now >= s.deadline)
            .map(|s| s.task.task_id.clone())
            .collect();
        for id in late {
            self.fail_task(&id, now, "no report before the step's timeout");
        }
        // Waits and gates.
        for i in 0..self.steps.len() {
            if self.steps[i].state != StepState::Running || self.steps[i].per_system {
                continue;
            }
            let started = self.steps[i].started_at.unwrap_or(now);
            let step = &self.plan.steps[i];
            match step.action {
                StepAction::Wait => {
                    let d = step.duration.map(secs).unwrap_or(SignedDuration::ZERO);
                    if now >= plus(started, d) {
                        self.log(
                            now,
                            &step.name.clone(),
                            None,
                            "succeeded",
                            format!("waited {}", short(d)),
                        );
                        self.step_done(i, plus(started, d), "lifeboat");
                    }
                }
                StepAction::Gate => {
                    let timeout = secs(step.timeout);
                    if now >= plus(started, timeout) {
                        let reason = format!("gate not approved within {}", short(timeout));
                        let name = step.name.clone();
                        self.deviations.push(format!("{name}: {reason}"));
                        self.log(now, &name, None, "timed-out", reason.clone());
                        self.step_failed(i, now, reason);
                    }
                }
                _ => {}
            }
        }
        self.advance(now);
    }

    /// Fails every open task with `reason`.
    fn fail_open(&mut self, now: Timestamp, reason: &str) {
        let open: Vec<String> = self.open_tasks().into_iter().map(|t| t.task_id).collect();
        for id in open {
            self.fail_task(&id, now, reason);
        }
    }

    /// Fails one open task as if its report said so.
    fn fail_task(&mut self, id: &str, now: Timestamp, reason: &str) {
        let failed = SlotState::Failed {
            at: now,
            reason: reason.to_string(),
            report: None,
        };
        if let Some(slot) = self
            .probe
            .as_mut()
            .filter(|s| s.task.task_id == id && s.is_open())
        {
            slot.state = failed;
            self.readiness.push(ReadinessItem {
                subject: format!("probe on {}", self.standby_host),
                ok: false,
                detail: reason.to_string(),
            });
            self.log(now, READINESS, None, "failed", reason.to_string());
            self.end(now, Ending::NotReady, format!("readiness probe: {reason}"));
            return;
        }
        if let Some(slot) = self
            .cleanup
            .as_mut()
            .filter(|s| s.task.task_id == id && s.is_open())
        {
            slot.state = failed;
            self.deviations
                .push(format!("clean-up of the restored data: {reason}"));
            self.log(now, CLEANUP, None, "failed", reason.to_string());
            self.finish(now);
            return;
        }
        if let Some(i) = self.steps.iter().position(|s| {
            s.task
                .as_ref()
                .is_some_and(|t| t.task.task_id == id && t.is_open())
        }) {
            if let Some(slot) = &mut self.steps[i].task {
                slot.state = failed;
            }
            let name = self.steps[i].name.clone();
            self.log(now, &name, None, "failed", reason.to_string());
            self.step_failed(i, now, reason.to_string());
            return;
        }
        let found = self.systems.iter().enumerate().find_map(|(si, s)| {
            s.tasks
                .iter()
                .find(|(_, t)| t.task.task_id == id && t.is_open())
                .map(|(step, _)| (si, *step))
        });
        if let Some((si, step)) = found {
            if let Some(slot) = self.systems[si].tasks.get_mut(&step) {
                slot.state = failed;
            }
            let name = self.steps[step].name.clone();
            let system = self.systems[si].system.clone();
            self.log(now, &name, Some(&system), "failed", reason.to_string());
            self.fail_system(si, now, &name, reason.to_string());
        }
    }

    fn fail_system(&mut self, si: usize, now: Timestamp, step: &str, reason: String) {
        let system = self.systems[si].system.clone();
        self.systems[si].stage = SystemStage::Failed {
            at: now,
            step: step.to_string(),
            reason: reason.clone(),
        };
        // Dependents (transitively) cannot be brought up.
        let mut changed = true;
        while changed {
            changed = false;
            for j in 0..self.systems.len() {
                if !self.systems[j].going() {
                    continue;
                }
                let blocked = self.systems[j]
                    .prerequisites
                    .iter()
                    .find(|p| self.systems.iter().any(|s| &s.system == *p && !s.going()));
                if let Some(p) = blocked.cloned() {
                    let why = format!("depends on {p}, which did not come up");
                    let dep = self.systems[j].system.clone();
                    // Open tasks of a blocked system are left to finish; it is skipped after.
                    if self.systems[j].tasks.values().any(TaskSlot::is_open) {
                        continue;
                    }
                    self.systems[j].stage = SystemStage::Skipped {
                        reason: why.clone(),
                    };
                    self.log(now, step, Some(&dep), "skipped", why);
                    changed = true;
                }
            }
        }
        if self.plan.on_failure == OnFailure::Stop {
            self.end(
                now,
                Ending::Stopped,
                format!("{system} failed at {step}: {reason}"),
            );
        }
    }

    fn step_done(&mut self, i: usize, at: Timestamp, by: &str) {
        self.steps[i].state = StepState::Done;
        self.steps[i].finished_at = Some(at);
        let mark = self.plan.steps[i].effective_mark();
        if let Some(m) = mark {
            self.set_mark(m, at, by, i);
        }
    }

    fn set_mark(&mut self, mark: Mark, at: Timestamp, by: &str, step: usize) {
        self.marks.entry(mark).or_insert_with(|| MarkEntry {
            at,
            recorded_by: by.to_string(),
            step: self
                .plan
                .steps
                .get(step)
                .map_or_else(String::new, |s| s.name.clone()),
        });
    }

    fn step_failed(&mut self, i: usize, now: Timestamp, reason: String) {
        self.steps[i].state = StepState::Failed {
            reason: reason.clone(),
        };
        self.steps[i].finished_at = Some(now);
        if !self.steps[i].per_system {
            let name = self.steps[i].name.clone();
            self.end(
                now,
                Ending::Stopped,
                format!("step {name} failed: {reason}"),
            );
        }
    }

    /// Stops the drill: open tasks are failed, pending steps skipped, then clean-up.
    fn end(&mut self, now: Timestamp, ending: Ending, reason: String) {
        if matches!(self.phase, Phase::Cleanup | Phase::Ended) {
            return;
        }
        for slot in self
            .probe
            .iter_mut()
            .chain(self.steps.iter_mut().filter_map(|s| s.task.as_mut()))
            .chain(self.systems.iter_mut().flat_map(|s| s.tasks.values_mut()))
        {
            if slot.is_open() {
                slot.state = SlotState::Failed {
                    at: now,
                    reason: format!("withdrawn: {reason}"),
                    report: None,
                };
            }
        }
        for s in &mut self.steps {
            match s.state {
                StepState::Pending => {
                    s.state = StepState::Skipped {
                        reason: reason.clone(),
                    }
                }
                StepState::Running => {
                    s.state = StepState::Failed {
                        reason: reason.clone(),
                    };
                    s.finished_at = Some(now);
                }
                _ => {}
            }
        }
        let per_system: Vec<usize> = (0..self.plan.steps.len())
            .filter(|i| self.plan.steps[*i].is_per_system())
            .collect();
        for s in &mut self.systems {
            let completed = per_system.iter().all(|i| {
                s.tasks
                    .get(i)
                    .is_some_and(|t| matches!(t.state, SlotState::Succeeded { .. }))
            });
            if s.going() && !completed {
                s.stage = SystemStage::Skipped {
                    reason: reason.clone(),
                };
            }
        }
        self.ending = Some(ending);
        self.end_reason = Some(reason.clone());
        self.log(now, "-", None, ending.as_str(), reason);
        self.phase = Phase::Cleanup;
        self.start_cleanup(now);
    }

    fn start_cleanup(&mut self, now: Timestamp) {
        let restored_anything = self.systems.iter().any(|s| !s.tasks.is_empty());
        if self.plan.standby.keep_restored || !restored_anything {
            if restored_anything {
                self.log(
                    now,
                    CLEANUP,
                    None,
                    "kept",
                    format!(
                        "restored data kept under {} (keep-restored)",
                        self.drill_root()
                    ),
                );
            }
            self.finish(now);
            return;
        }
        let task = DrillTask {
            task_id: format!("{}.{}", self.id, CLEANUP),
            drill_id: self.id,
            step: CLEANUP.into(),
            system: None,
            timeout_seconds: HOUSEKEEPING_TIMEOUT.as_secs().unsigned_abs(),
            action: TaskAction::Cleanup {
                paths: vec![self.drill_root()],
            },
        };
        self.cleanup = Some(TaskSlot {
            task,
            offered_at: now,
            deadline: plus(now, HOUSEKEEPING_TIMEOUT + REPORT_GRACE),
            state: SlotState::Open,
        });
        self.log(
            now,
            CLEANUP,
            None,
            "offered",
            format!("remove {}", self.drill_root()),
        );
    }

    fn finish(&mut self, now: Timestamp) {
        self.phase = Phase::Ended;
        self.ended_at = Some(now);
    }

    /// Starts whatever can start now; repeats until nothing changes.
    fn advance(&mut self, now: Timestamp) {
        while self.phase == Phase::Running && self.advance_once(now) {}
    }

    fn segment_of(&self, i: usize) -> std::ops::Range<usize> {
        let mut a = i;
        while a > 0 && self.steps[a - 1].per_system {
            a -= 1;
        }
        let mut b = i + 1;
        while b < self.steps.len() && self.steps[b].per_system {
            b += 1;
        }
        a..b
    }

    fn advance_once(&mut self, now: Timestamp) -> bool {
        let Some(cur) = self.steps.iter().position(|s| !s.state.ended()) else {
            let reason = "every step has run".to_string();
            self.log(now, "-", None, "completed", reason.clone());
            self.ending = Some(Ending::Completed);
            self.phase = Phase::Cleanup;
            self.start_cleanup(now);
            return false;
        };
        if self.steps[cur].per_system {
            self.advance_segment(self.segment_of(cur), now)
        } else {
            self.advance_drill_step(cur, now)
        }
    }

    fn advance_segment(&mut self, seg: std::ops::Range<usize>, now: Timestamp) -> bool {
        let mut changed = false;
        for i in seg.clone() {
            if self.steps[i].state == StepState::Pending {
                self.steps[i].state = StepState::Running;
                self.steps[i].started_at = Some(now);
                changed = true;
            }
        }
        // Systems that finished a step move on to the next step of the segment.
        for si in 0..self.systems.len() {
            if !self.systems[si].going()
                || self.systems[si].active(&seg)
                || self.systems[si].completed(&seg)
            {
                continue;
            }
            let next = seg
                .clone()
                .find(|i| !self.systems[si].tasks.contains_key(i));
            let started = seg.clone().any(|i| self.systems[si].tasks.contains_key(&i));
            if let (Some(step), true) = (next, started) {
                self.offer_system(si, step, now);
                changed = true;
            }
        }
        // New systems enter the segment, in restore order, within the parallelism limit.
        let limit = self.plan.standby.parallelism.max(1) as usize;
        for si in 0..self.systems.len() {
            let active = self
                .systems
                .iter()
                .filter(|s| s.going() && s.active(&seg))
                .count();
            if active >= limit {
                break;
            }
            let s = &self.systems[si];
            if !s.going() || seg.clone().any(|i| s.tasks.contains_key(&i)) {
                continue;
            }
            let prereqs_done = s.prerequisites.iter().all(|p| {
                self.systems
                    .iter()
                    .find(|o| &o.system == p)
                    .is_none_or(|o| o.going() && o.completed(&seg))
            });
            let prereq_lost = s
                .prerequisites
                .iter()
                .find(|p| self.systems.iter().any(|o| &o.system == *p && !o.going()));
            if let Some(p) = prereq_lost.cloned() {
                let why = format!("depends on {p}, which did not come up");
                let name = self.steps[seg.start].name.clone();
                let system = s.system.clone();
                self.systems[si].stage = SystemStage::Skipped {
                    reason: why.clone(),
                };
                self.log(now, &name, Some(&system), "skipped", why);
                changed = true;
                continue;
            }
            if prereqs_done {
                self.offer_system(si, seg.start, now);
                changed = true;
            }
        }
        // The segment ends when no system is still going through it.
        let open = self.systems.iter().any(|s| s.going() && !s.completed(&seg));
        if !open && self.phase == Phase::Running {
            let any_ok = self.systems.iter().any(|s| s.going());
            for i in seg.clone() {
                if any_ok {
                    let at = self
                        .systems
                        .iter()
                        .filter(|s| s.going())
                        .filter_map(|s| {
                            s.tasks
                                .get(&i)
                                .and_then(TaskSlot::report)
                                .map(|r| r.finished_at.min(now))
                        })
                        .max()
                        .unwrap_or(now);
                    self.step_done(i, at, "the standby agent");
                } else {
                    self.steps[i].state = StepState::Failed {
                        reason: "no system got through this step".into(),
                    };
                    self.steps[i].finished_at = Some(now);
                }
            }
            if !any_ok {
                self.end(now, Ending::Stopped, "no system could be brought up".into());
            }
            return true;
        }
        changed
    }

    fn offer_system(&mut self, si: usize, step: usize, now: Timestamp) {
        let plan_step = self.plan.steps[step].clone();
        let s = &self.systems[si];
        let action = match plan_step.action {
            StepAction::Restore => self.target_of(s).map(TaskAction::Restore),
            StepAction::Verify => self.target_of(s).map(TaskAction::Verify),
            _ => Some(TaskAction::Command {
                argv: plan_step
                    .command
                    .as_ref()
                    .map(|c| c.as_slice().to_vec())
                    .unwrap_or_default(),
                env: self.env(Some(s)),
            }),
        };
        let system = s.system.clone();
        let Some(action) = action else {
            self.fail_system(si, now, &plan_step.name, "no restore point".into());
            return;
        };
        let timeout = secs(plan_step.timeout);
        let task = DrillTask {
            task_id: self.task_id(step, Some(&system)),
            drill_id: self.id,
            step: plan_step.name.clone(),
            system: Some(system.clone()),
            timeout_seconds: timeout.as_secs().unsigned_abs(),
            action,
        };
        self.systems[si].tasks.insert(
            step,
            TaskSlot {
                task,
                offered_at: now,
                deadline: plus(now, timeout + REPORT_GRACE),
                state: SlotState::Open,
            },
        );
        self.log(
            now,
            &plan_step.name,
            Some(&system),
            "offered",
            format!("{} on {}", plan_step.action, self.standby_host),
        );
    }

    fn env(&self, system: Option<&SystemRun>) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("LIFEBOAT_DRILL_ID".into(), self.id.to_string());
        env.insert("LIFEBOAT_DRILL_ROOT".into(), self.drill_root());
        if let Some(s) = system {
            env.insert("LIFEBOAT_SYSTEM".into(), s.system.to_string());
            env.insert("LIFEBOAT_RESTORE_DIR".into(), s.target_dir.clone());
        }
        env
    }

    fn advance_drill_step(&mut self, i: usize, now: Timestamp) -> bool {
        if self.steps[i].state != StepState::Pending {
            return false;
        }
        let step = self.plan.steps[i].clone();
        self.steps[i].state = StepState::Running;
        self.steps[i].started_at = Some(now);
        if step.mark == Some(Mark::FailbackStart) || step.action == StepAction::Failback {
            self.set_mark(Mark::FailbackStart, now, "lifeboat", i);
        }
        match step.action {
            StepAction::Command | StepAction::Failback => {
                let mut env = self.env(None);
                env.extend(step.env.clone());
                let timeout = secs(step.timeout);
                let task = DrillTask {
                    task_id: self.task_id(i, None),
                    drill_id: self.id,
                    step: step.name.clone(),
                    system: None,
                    timeout_seconds: timeout.as_secs().unsigned_abs(),
                    action: TaskAction::Command {
                        argv: step
                            .command
                            .as_ref()
                            .map(|c| c.as_slice().to_vec())
                            .unwrap_or_default(),
                        env,
                    },
                };
                self.steps[i].task = Some(TaskSlot {
                    task,
                    offered_at: now,
                    deadline: plus(now, timeout + REPORT_GRACE),
                    state: SlotState::Open,
                });
                self.log(
                    now,
                    &step.name,
                    None,
                    "offered",
                    format!("{} on {}", step.action, self.standby_host),
                );
            }
            StepAction::Gate => {
                let role = step.role.unwrap_or(GateRole::Operator);
                let who = step
                    .approver
                    .clone()
                    .map_or_else(String::new, |a| format!(" ({a})"));
                self.log(
                    now,
                    &step.name,
                    None,
                    "waiting",
                    format!("waiting for approval by a {role}{who}"),
                );
            }
            StepAction::Wait => {
                self.log(
                    now,
                    &step.name,
                    None,
                    "waiting",
                    format!(
                        "waiting {}",
                        short(step.duration.map(secs).unwrap_or(SignedDuration::ZERO))
                    ),
                );
            }
            StepAction::Restore | StepAction::Verify => {}
        }
        true
    }
}

fn state_name(s: &StepState) -> &'static str {
    match s {
        StepState::Pending => "pending",
        StepState::Running => "running",
        StepState::Done => "done",
        StepState::Failed { .. } => "failed",
        StepState::Skipped { .. } => "skipped",
    }
}

fn task_detail(r: &DrillReport) -> String {
    if let Some(x) = &r.restore {
        let verified = x.verified_files.map_or_else(String::new, |v| {
            format!(", {v} files verified against their content hashes")
        });
        return format!(
            "{} files, {} bytes in {:.1} s from {} (snapshot {}){verified}",
            x.files,
            x.bytes,
            x.seconds,
            x.repository,
            x.snapshot.chars().take(8).collect::<String>()
        );
    }
    command_detail(r)
}

fn command_detail(r: &DrillReport) -> String {
    match &r.command {
        Some(c) => format!(
            "exit {}{}",
            c.exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
            if c.output_tail.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", last_line(&c.output_tail))
            }
        ),
        None => "done".into(),
    }
}

fn last_line(s: &str) -> String {
    s.trim()
        .lines()
        .last()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CommandResult, ProbeResult, ProbeTargetResult, RestoreResult};
    use crate::policy::Location;
    use crate::run::RunError;

    const PLAN: &str = r#"
        id = "lf"
        title = "Linfen lost"
        type = "full-switchover"
        on-failure = "continue"
        [scenario]
        kind = "site-loss"
        lost-site = "linfen"
        [scope]
        sites = ["linfen"]
        [standby]
        site = "datong-dr"
        host = "dr01"
        restore-root = "/srv/drill"
        parallelism = 2
        [[steps]]
        name = "restore"
        action = "restore"
        [[steps]]
        name = "verify"
        action = "verify"
        [[steps]]
        name = "health"
        action = "command"
        per-system = true
        command = ["/bin/true"]
        mark = "system-ready"
        [[steps]]
        name = "business-check"
        action = "gate"
        role = "operator"
        timeout = "1h"
        [[steps]]
        name = "switch"
        action = "command"
        command = ["/bin/switch"]
        mark = "service"
        [[steps]]
        name = "failback"
        action = "failback"
        command = ["/bin/failback"]
    "#;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s as i64).unwrap()
    }

    fn plan(extra: &str) -> DrillPlan {
        toml::from_str(&format!("{extra}\n{PLAN}")).unwrap()
    }

    fn sys(id: &str) -> SystemId {
        id.parse().unwrap()
    }

    fn planned(id: &str, tier: &str, deps: &[&str], point: bool) -> Planned {
        Planned {
            system: sys(id),
            tier: tier.parse().unwrap(),
            point: point.then(|| RestorePoint {
                system: sys(id),
                snapshot: format!("{id}0000000000"),
                repository: "province-s3".parse().unwrap(),
                location: Location::Remote,
                immutable: false,
                t_cap: t(0),
                t_avail: t(10),
                bytes: Some(1000),
                files: Some(10),
            }),
            reasons: vec![],
            passed_over: vec![],
            prerequisites: deps.iter().map(|d| sys(d)).collect(),
            policy_files: vec![],
        }
    }

    fn input(plan: DrillPlan, systems: Vec<Planned>) -> StartInput {
        StartInput {
            id: Uuid::nil(),
            plan,
            policy_digest: "d".into(),
            started_by: "alice".into(),
            now: t(100),
            declared_disaster: None,
            systems,
            extrapolated: vec![],
            standby_last_seen: Some(t(95)),
            agent_lost_after: SignedDuration::from_secs(120),
        }
    }

    fn start(plan: DrillPlan, systems: Vec<Planned>) -> DrillRun {
        DrillRun::start(input(plan, systems))
    }

    fn three() -> Vec<Planned> {
        vec![
            planned("a", "T0", &[], true),
            planned("b", "T1", &["a"], true),
            planned("c", "T2", &[], true),
        ]
    }

    fn report(task: &DrillTask, ok: bool, at: u64) -> DrillReport {
        DrillReport {
            task_id: task.task_id.clone(),
            drill_id: task.drill_id,
            host: "dr01".into(),
            started_at: t(at - 1),
            finished_at: t(at),
            outcome: if ok {
                Outcome::Success
            } else {
                Outcome::Failed
            },
            error: (!ok).then(|| RunError {
                kind: "integrity".into(),
                message: "pack 1a2b is corrupt".into(),
            }),
            probe: matches!(task.action, TaskAction::Probe { .. }).then(|| ProbeResult {
                free_bytes: 1 << 40,
                targets: match &task.action {
                    TaskAction::Probe { targets, .. } => targets
                        .iter()
                        .map(|x| ProbeTargetResult {
                            system: x.system.clone(),
                            repository: x.repository.clone(),
                            credentials: true,
                            reachable: true,
                            snapshot_present: true,
                            problem: None,
                        })
                        .collect(),
                    _ => vec![],
                },
            }),
            restore: matches!(task.action, TaskAction::Restore(_) | TaskAction::Verify(_)).then(
                || RestoreResult {
                    snapshot: "x".into(),
                    repository: "province-s3".parse().unwrap(),
                    capture_time: Some(t(0)),
                    files: 10,
                    bytes: 1000,
                    seconds: 1.0,
                    verified_files: None,
                    tree_digest: None,
                },
            ),
            command: matches!(task.action, TaskAction::Command { .. }).then(|| CommandResult {
                exit_code: Some(if ok { 0 } else { 1 }),
                output_tail: String::new(),
            }),
        }
    }

    fn open_ids(run: &DrillRun) -> Vec<String> {
        run.open_tasks().into_iter().map(|t| t.task_id).collect()
    }

    /// Reports every open task as `ok` at `at`, once.
    fn settle_all(run: &mut DrillRun, ok: bool, at: u64) {
        for task in run.open_tasks() {
            run.on_report(&report(&task, ok, at), t(at));
        }
    }

    fn id(step: usize, system: &str) -> String {
        format!("{}.{step}.{system}", Uuid::nil())
    }

    #[test]
    fn a_full_drill_runs_every_step_in_order_and_sets_every_mark() {
        let mut run = start(plan(""), three());
        assert_eq!(run.phase, Phase::Readiness);
        assert_eq!(open_ids(&run), vec![format!("{}.readiness", Uuid::nil())]);
        settle_all(&mut run, true, 110);
        assert_eq!(run.phase, Phase::Running);
        // a and c first (b waits for a), two at once.
        assert_eq!(open_ids(&run), vec![id(0, "a"), id(0, "c")]);
        let task_a = run.open_tasks().remove(0);
        match &task_a.action {
            TaskAction::Restore(target) => {
                assert_eq!(target.target_dir, format!("/srv/drill/{}/a", Uuid::nil()));
                assert_eq!(target.repository.as_str(), "province-s3");
            }
            other => panic!("{other:?}"),
        }
        run.on_report(&report(&task_a, true, 120), t(120));
        // a moves on to verify; b may not start its restore before a has finished the segment.
        assert_eq!(open_ids(&run), vec![id(1, "a"), id(0, "c")]);
        settle_all(&mut run, true, 130); // a verify, c restore
        assert_eq!(open_ids(&run), vec![id(2, "a"), id(1, "c")]);
        settle_all(&mut run, true, 140); // a health (a is done: b starts), c verify
        assert_eq!(open_ids(&run), vec![id(0, "b"), id(2, "c")]);
        settle_all(&mut run, true, 150);
        assert_eq!(open_ids(&run), vec![id(1, "b")]);
        settle_all(&mut run, true, 160);
        settle_all(&mut run, true, 180);
        // The segment is over: system-ready is the end of the last system's health check.
        assert_eq!(run.marks[&Mark::SystemReady].at, t(180));
        assert!(open_ids(&run).is_empty(), "the gate waits for a person");
        assert_eq!(run.steps[3].state, StepState::Running);
        run.approve(
            "business-check",
            "bob",
            GateRole::Operator,
            "ledgers balance",
            t(200),
        )
        .unwrap();
        assert_eq!(run.marks[&Mark::VerifyPass].at, t(200));
        assert_eq!(open_ids(&run), vec![id(4, "drill")]);
        settle_all(&mut run, true, 210);
        assert_eq!(run.marks[&Mark::Service].at, t(210));
        assert_eq!(run.marks[&Mark::FailbackStart].at, t(210));
        settle_all(&mut run, true, 230);
        assert_eq!(run.marks[&Mark::FailbackDone].at, t(230));
        assert_eq!(run.phase, Phase::Cleanup);
        assert_eq!(run.ending, Some(Ending::Completed));
        let cleanup = run.open_tasks().remove(0);
        assert_eq!(
            cleanup.action,
            TaskAction::Cleanup {
                paths: vec![format!("/srv/drill/{}", Uuid::nil())]
            }
        );
        settle_all(&mut run, true, 240);
        assert!(run.is_ended());
        assert!(run.systems.iter().all(|s| s.stage == SystemStage::Going));
        assert_eq!(run.systems[0].ready_at(), Some(t(140)));
        // The state survives a round trip through JSON (the coordinator stores it so).
        let json = serde_json::to_value(&run).unwrap();
        let back: DrillRun = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
    }

    #[test]
    fn no_restore_point_or_an_offline_agent_means_not_ready_and_nothing_is_offered() {
        let mut without = planned("a", "T0", &[], false);
        without.reasons = vec!["copy at linfen-local is at the lost site linfen".into()];
        let run = start(plan(""), vec![without]);
        assert!(run.is_ended());
        assert!(
            run.readiness
                .iter()
                .any(|i| !i.ok && i.detail.contains("linfen-local is at the lost site")),
            "the selection's reasons are in the readiness section"
        );
        assert_eq!(run.ending, Some(Ending::NotReady));
        assert!(run.open_tasks().is_empty());
        assert!(
            run.readiness
                .iter()
                .any(|i| !i.ok && i.subject.contains("restore point of a"))
        );

        let mut input_plan = plan("");
        input_plan.standby.host = "dr01".into();
        let run = DrillRun::start(StartInput {
            id: Uuid::nil(),
            plan: input_plan,
            policy_digest: "d".into(),
            started_by: "alice".into(),
            now: t(1000),
            declared_disaster: None,
            systems: three(),
            extrapolated: vec![],
            standby_last_seen: Some(t(100)),
            agent_lost_after: SignedDuration::from_secs(120),
        });
        assert_eq!(run.ending, Some(Ending::NotReady));
        assert!(
            run.readiness
                .iter()
                .any(|i| !i.ok && i.detail.contains("offline"))
        );
    }

    #[test]
    fn a_failed_probe_target_means_not_ready() {
        let mut run = start(plan(""), three());
        let probe = run.open_tasks().remove(0);
        let mut r = report(&probe, true, 110);
        if let Some(p) = &mut r.probe {
            p.targets[1].credentials = false;
            p.targets[1].problem = Some("password env LINFEN_OFFSITE_PASSWORD is not set".into());
        }
        run.on_report(&r, t(110));
        assert_eq!(run.ending, Some(Ending::NotReady));
        assert!(run.is_ended(), "nothing restored, nothing to clean");
        assert!(
            run.readiness
                .iter()
                .any(|i| i.detail.contains("LINFEN_OFFSITE_PASSWORD"))
        );
    }

    /// A disaster declared before the start is T_disaster (never after the start); the
    /// newer candidates selection passed over are in the readiness section with their reasons.
    #[test]
    fn a_declared_disaster_and_the_candidates_passed_over_are_recorded() {
        let mut a = planned("a", "T0", &[], true);
        a.passed_over = vec!["b2@province-s3: captured after T_disaster".into()];
        let declared = |at: u64| {
            DrillRun::start(StartInput {
                declared_disaster: Some(t(at)),
                ..input(plan(""), vec![a.clone()])
            })
        };
        let run = declared(40);
        assert_eq!((run.t_outage, run.t_disaster()), (t(100), t(40)));
        assert!(
            run.log[0].detail.contains("T_disaster declared at")
                && run.log[0].detail.contains("1m00s earlier"),
            "{:?}",
            run.log[0]
        );
        let point = run
            .readiness
            .iter()
            .find(|i| i.subject == "restore point of a")
            .unwrap();
        assert!(point.ok);
        assert!(
            point
                .detail
                .ends_with("; newer, passed over: b2@province-s3: captured after T_disaster"),
            "{}",
            point.detail
        );
        assert_eq!(declared(500).t_disaster(), t(100), "clamped to the start");
        assert_eq!(start(plan(""), vec![a]).t_disaster(), t(100));
    }

    #[test]
    fn a_failed_system_stops_its_dependents_and_the_others_go_on() {
        let mut run = start(plan(""), three());
        settle_all(&mut run, true, 110);
        let a = run.open_tasks().remove(0);
        run.on_report(&report(&a, false, 120), t(120));
        assert!(matches!(run.systems[0].stage, SystemStage::Failed { .. }));
        assert!(
            matches!(&run.systems[1].stage, SystemStage::Skipped { reason } if reason.contains("depends on a"))
        );
        assert_eq!(run.phase, Phase::Running);
        for at in [130, 140, 150] {
            settle_all(&mut run, true, at);
        }
        assert_eq!(
            run.steps[3].state,
            StepState::Running,
            "the gate is reached with c"
        );
    }

    #[test]
    fn on_failure_stop_ends_the_drill_at_the_first_failure() {
        let mut run = start(plan("").tap(|p| p.on_failure = OnFailure::Stop), three());
        settle_all(&mut run, true, 110);
        let a = run.open_tasks().remove(0);
        run.on_report(&report(&a, false, 120), t(120));
        assert_eq!(run.ending, Some(Ending::Stopped));
        assert_eq!(run.phase, Phase::Cleanup);
        // c's open restore was withdrawn; only the clean-up is left.
        assert_eq!(open_ids(&run), vec![format!("{}.cleanup", Uuid::nil())]);
        assert!(matches!(run.systems[2].stage, SystemStage::Skipped { .. }));
    }

    #[test]
    fn a_lost_agent_fails_its_open_tasks() {
        let mut run = start(plan(""), three());
        settle_all(&mut run, true, 110);
        run.tick(t(200), Some(t(110)));
        assert_eq!(open_ids(&run).len(), 2, "not lost yet at 90 s");
        run.tick(t(300), Some(t(110)));
        assert!(
            matches!(&run.systems[0].stage, SystemStage::Failed { reason, .. } if reason.contains("standby agent dr01 lost"))
        );
        assert!(run.deviations.iter().any(|d| d.contains("lost")));
    }

    #[test]
    fn a_gate_not_approved_in_time_stops_the_drill() {
        let mut run = start(plan(""), vec![planned("a", "T0", &[], true)]);
        for at in [110, 120, 130, 140] {
            settle_all(&mut run, true, at);
        }
        assert_eq!(run.steps[3].state, StepState::Running);
        run.tick(t(140 + 3599), Some(t(140 + 3590)));
        assert_eq!(run.steps[3].state, StepState::Running);
        run.tick(t(140 + 3600), Some(t(140 + 3590)));
        assert!(
            matches!(&run.steps[3].state, StepState::Failed { reason } if reason.contains("not approved within 1h00m"))
        );
        assert_eq!(run.ending, Some(Ending::Stopped));
        assert!(matches!(run.steps[4].state, StepState::Skipped { .. }));
        assert!(!run.marks.contains_key(&Mark::Service));
    }

    #[test]
    fn gates_check_the_role_and_the_state() {
        let mut run = start(plan(""), vec![planned("a", "T0", &[], true)]);
        assert!(matches!(
            run.approve("business-check", "bob", GateRole::Operator, "", t(101)),
            Err(ApproveError::NotWaiting { .. })
        ));
        for at in [110, 120, 130, 140] {
            settle_all(&mut run, true, at);
        }
        assert!(matches!(
            run.approve("restore", "bob", GateRole::Admin, "", t(150)),
            Err(ApproveError::NotAGate(_))
        ));
        assert!(matches!(
            run.approve("nope", "bob", GateRole::Admin, "", t(150)),
            Err(ApproveError::NoSuchStep(_))
        ));
        run.plan.steps[3].role = Some(GateRole::Admin);
        assert!(matches!(
            run.approve("business-check", "bob", GateRole::Operator, "", t(150)),
            Err(ApproveError::RoleTooLow { .. })
        ));
        run.approve("business-check", "carol", GateRole::Admin, "", t(150))
            .unwrap();
        assert_eq!(run.steps[3].approval.as_ref().unwrap().by, "carol");
    }

    #[test]
    fn an_abort_withdraws_open_tasks_and_cleans_up() {
        let mut run = start(plan(""), three());
        settle_all(&mut run, true, 110);
        run.abort("alice", "fire alarm in the DR room", t(115))
            .unwrap();
        assert_eq!(run.ending, Some(Ending::Aborted));
        assert_eq!(open_ids(&run), vec![format!("{}.cleanup", Uuid::nil())]);
        assert!(run.abort("alice", "again", t(116)).is_err());
        settle_all(&mut run, true, 120);
        assert!(run.is_ended());
    }

    #[test]
    fn reports_of_settled_tasks_change_nothing() {
        let mut run = start(plan(""), three());
        settle_all(&mut run, true, 110);
        let a = run.open_tasks().remove(0);
        run.on_report(&report(&a, true, 120), t(120));
        let before = run.clone();
        run.on_report(&report(&a, false, 121), t(121));
        assert_eq!(run.systems, before.systems);
        assert_eq!(run.log.last().unwrap().event, "late-report");
    }

    #[test]
    fn timeouts_fail_a_task_without_a_report_and_keep_restored_data_is_not_cleaned() {
        let mut run = start(
            plan("").tap(|p| p.standby.keep_restored = true),
            vec![planned("a", "T0", &[], true)],
        );
        settle_all(&mut run, true, 110);
        // The restore step's default timeout is 2 h; the report grace is 60 s.
        run.tick(t(110 + 7200 + 59), Some(t(110 + 7200 + 50)));
        assert_eq!(open_ids(&run).len(), 1);
        run.tick(t(110 + 7200 + 60), Some(t(110 + 7200 + 50)));
        assert!(
            matches!(&run.systems[0].stage, SystemStage::Failed { reason, .. } if reason.contains("timeout"))
        );
        assert_eq!(run.ending, Some(Ending::Stopped), "no system left");
        assert!(run.is_ended(), "keep-restored: no clean-up task");
    }

    trait Tap: Sized {
        fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
    }

    impl Tap for DrillPlan {
        fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
            f(&mut self);
            self
        }
    }
}
