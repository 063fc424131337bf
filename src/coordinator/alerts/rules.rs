//! The alert rules: from one sweep's figures (assessments, agent health, the latest failed runs)
//! and the agents' latest spool reports, at `now`, the set of alerts that are active.
//!
//! Pure: no I/O, no clock, no tokio, no SQL, no HTTP. What happens to an alert (notify,
//! de-duplicate, resolve) is [`super`]'s business; this only says what is wrong.
//!
//! | rule | subject | fires when | severity |
//! |---|---|---|---|
//! | `rpo-breached` | `system/scenario` | the scenario's status is breached (unless no repository of the chain can count for it: a policy gap, not an event); or no backup of the system was ever recorded (once, on `site-loss`) | critical when the tier's RPO is at most `critical-rpo`, else warning |
//! | `rpo-breach-predicted` | `system/scenario` | not breached yet, and the predicted breach is within `predict-within-percent` of the target from now | warning |
//! | `run-failed` | `system/kind` | the latest backup, copy or forget of the system failed or partly failed | warning |
//! | `check-failed` | `system/repository` | the latest check of that repository for the system failed | warning |
//! | `agent-offline` | `host` | the agent is silent beyond `offline-after`, or never sent a heartbeat | critical when a system of the host has an RPO of at most `critical-rpo`, else warning |
//! | `agent-clock-skewed` | `host` | the agent's clock is beyond `max-clock-skew` | warning |
//! | `spool-growing` | `host` | the agent's spool holds more than `spool-pending-over` records, or its oldest is older than `spool-oldest-over` | warning |
//!
//! Summaries are one stable line (no figure that moves every sweep, such as an exposure): the
//! evaluator stores the summary of a firing alert and refreshes it when it changes, so a moving
//! figure would cost a write per alert per sweep. The moving figures are in the detail.
//!
//! Why these severities: critical is for what loses data *now* where the business said minutes
//! or hours matter (a breach, or a silent agent whose backups nobody sees, on a short-RPO
//! tier). Everything else is a warning: a failed run or check, a skewed clock or a growing spool
//! is worth fixing today, and if it does cost the RPO, `rpo-breached` says so.

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use super::config::AlertsConfig;
use crate::api::SpoolStatus;
use crate::assess::{
    AgentHealth, AgentStatus, Human, RpoReason, Scenario, Status, SystemAssessment,
};
use crate::coordinator::sweep::{FleetView, LatestRun};
use crate::run::{Outcome, RunKind};

/// The rules, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    RpoBreached,
    RpoBreachPredicted,
    RunFailed,
    CheckFailed,
    AgentOffline,
    AgentClockSkewed,
    SpoolGrowing,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::RpoBreached,
        Rule::RpoBreachPredicted,
        Rule::RunFailed,
        Rule::CheckFailed,
        Rule::AgentOffline,
        Rule::AgentClockSkewed,
        Rule::SpoolGrowing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::RpoBreached => "rpo-breached",
            Rule::RpoBreachPredicted => "rpo-breach-predicted",
            Rule::RunFailed => "run-failed",
            Rule::CheckFailed => "check-failed",
            Rule::AgentOffline => "agent-offline",
            Rule::AgentClockSkewed => "agent-clock-skewed",
            Rule::SpoolGrowing => "spool-growing",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One active alert. `(rule, subject)` is its identity: the key of its de-duplication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule: Rule,
    pub subject: String,
    pub severity: Severity,
    /// One line for people (a chat message title, an e-mail subject).
    pub summary: String,
    /// The why: the assessment with its reasons, the run's error, the agent's issue.
    pub detail: String,
}

/// The rules' thresholds (from `[alerts]`; see [`AlertsConfig`] for the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub predict_within_percent: u8,
    pub critical_rpo: SignedDuration,
    pub spool_pending_over: u64,
    pub spool_oldest_over: SignedDuration,
}

impl Thresholds {
    pub fn of(config: &AlertsConfig) -> Self {
        let signed =
            |d: std::time::Duration| SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
        Thresholds {
            predict_within_percent: config.predict_within_percent(),
            critical_rpo: signed(config.critical_rpo()),
            spool_pending_over: config.spool_pending_over(),
            spool_oldest_over: signed(config.spool_oldest_over()),
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::of(&AlertsConfig::default())
    }
}

/// An agent's spool as its latest heartbeat reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpool {
    pub host: String,
    pub received_at: Timestamp,
    pub spool: SpoolStatus,
}

/// What the rules read.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Every system of the policy in force.
    pub assessments: &'a [SystemAssessment],
    /// Every enrolled, unrevoked agent.
    pub agents: &'a [AgentHealth],
    /// The latest run of each system and kind that did not succeed.
    pub failed_runs: &'a [LatestRun],
    pub spools: &'a [HostSpool],
}

impl<'a> Inputs<'a> {
    pub fn new(view: &'a FleetView, spools: &'a [HostSpool]) -> Self {
        Inputs {
            assessments: &view.assessments,
            agents: &view.agent_health,
            failed_runs: &view.failed_runs,
            spools,
        }
    }
}

/// The active alerts at `now`, by rule and subject.
pub fn evaluate(inputs: &Inputs<'_>, t: &Thresholds, now: Timestamp) -> Vec<Alert> {
    let mut out: BTreeMap<(Rule, String), Alert> = BTreeMap::new();
    let mut add = |a: Alert| {
        out.insert((a.rule, a.subject.clone()), a);
    };
    // The shortest RPO of each host's systems, for the agent-offline severity.
    let mut shortest: BTreeMap<&str, SignedDuration> = BTreeMap::new();
    for a in inputs.assessments {
        let target = a.headline().target;
        shortest
            .entry(a.host.as_str())
            .and_modify(|d| *d = (*d).min(target))
            .or_insert(target);
        rpo_alerts(a, t, now, &mut add);
    }
    let known = |system: &str| {
        inputs
            .assessments
            .binary_search_by(|a| a.system.as_str().cmp(system))
            .is_ok()
    };
    for run in inputs.failed_runs {
        if run.outcome != Outcome::Success && known(&run.system) {
            add(run_alert(run));
        }
    }
    for agent in inputs.agents {
        let short = shortest
            .get(agent.host.as_str())
            .is_some_and(|d| *d <= t.critical_rpo);
        agent_alerts(agent, short, &mut add);
    }
    for s in inputs.spools {
        if let Some(a) = spool_alert(s, t, now) {
            add(a);
        }
    }
    out.into_values().collect()
}

fn rpo_alerts(a: &SystemAssessment, t: &Thresholds, now: Timestamp, add: &mut impl FnMut(Alert)) {
    let critical = a.headline().target <= t.critical_rpo;
    for rpo in &a.rpo {
        // A scenario no repository of the chain can ever count for is a gap in the policy
        // (`lifeboat policy check` and the 3-2-1-1-0 conformance name it), not an event.
        if rpo
            .reasons
            .iter()
            .any(|r| matches!(r, RpoReason::NoRepositoryCounts { .. }))
        {
            continue;
        }
        let subject = format!("{}/{}", a.system, rpo.scenario);
        match rpo.status {
            Status::Breached => add(Alert {
                rule: Rule::RpoBreached,
                subject,
                severity: if critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                summary: format!(
                    "{} ({}): {} RPO of {} breached",
                    a.system,
                    a.tier,
                    rpo.scenario,
                    Human(rpo.target)
                ),
                detail: rpo.to_string(),
            }),
            // Never backed up: one alert (on the headline scenario), not three.
            Status::NoEvidence if rpo.scenario == Scenario::SiteLoss => add(Alert {
                rule: Rule::RpoBreached,
                subject,
                severity: if critical {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                summary: format!(
                    "{} ({}): no backup has ever been recorded (RPO {})",
                    a.system,
                    a.tier,
                    Human(rpo.target)
                ),
                detail: rpo.to_string(),
            }),
            Status::Compliant | Status::AtRisk => {
                let horizon = rpo.target / 100 * i32::from(t.predict_within_percent);
                let Some(at) = rpo.breach_at else { continue };
                if at.duration_since(now) <= horizon {
                    add(Alert {
                        rule: Rule::RpoBreachPredicted,
                        subject,
                        severity: Severity::Warning,
                        summary: format!(
                            "{} ({}): {} RPO will be breached at {at} unless a newer backup arrives",
                            a.system, a.tier, rpo.scenario
                        ),
                        detail: rpo.to_string(),
                    });
                }
            }
            Status::NoEvidence => {}
        }
    }
}

fn kind_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Init => "init",
        RunKind::Backup => "backup",
        RunKind::Copy => "copy",
        RunKind::Check => "check",
        RunKind::Forget => "forget",
        RunKind::Restore => "restore",
    }
}

fn run_alert(run: &LatestRun) -> Alert {
    let how = if run.outcome == Outcome::Partial {
        "partly failed"
    } else {
        "failed"
    };
    let mut detail = format!(
        "run {} finished {} ({})",
        run.run_id,
        run.finished_at,
        if run.outcome == Outcome::Partial {
            "partial"
        } else {
            "failed"
        }
    );
    if let Some(e) = &run.error {
        detail.push_str(&format!(": {}: {}", e.kind, e.message));
    }
    match (run.kind, &run.repository) {
        (RunKind::Check, repo) => Alert {
            rule: Rule::CheckFailed,
            subject: match repo {
                Some(r) => format!("{}/{r}", run.system),
                None => run.system.clone(),
            },
            severity: Severity::Warning,
            summary: format!(
                "{}: the latest check{} {how}",
                run.system,
                repo.as_ref()
                    .map(|r| format!(" of {r}"))
                    .unwrap_or_default()
            ),
            detail,
        },
        (kind, _) => Alert {
            rule: Rule::RunFailed,
            subject: format!("{}/{}", run.system, kind_name(kind)),
            severity: Severity::Warning,
            summary: format!("{}: the latest {} {how}", run.system, kind_name(kind)),
            detail,
        },
    }
}

fn agent_alerts(agent: &AgentHealth, short_rpo: bool, add: &mut impl FnMut(Alert)) {
    let issues = agent
        .issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if agent.status != AgentStatus::Online {
        add(Alert {
            rule: Rule::AgentOffline,
            subject: agent.host.clone(),
            severity: if short_rpo {
                Severity::Critical
            } else {
                Severity::Warning
            },
            summary: match agent.last_seen {
                Some(at) => format!(
                    "the agent on {} is offline (last heartbeat {at})",
                    agent.host
                ),
                None => format!("the agent on {} has never sent a heartbeat", agent.host),
            },
            detail: issues.clone(),
        });
    }
    if agent.clock_skewed {
        add(Alert {
            rule: Rule::AgentClockSkewed,
            subject: agent.host.clone(),
            severity: Severity::Warning,
            summary: format!(
                "the clock of {} is off beyond the skew limit; its times are corrected",
                agent.host
            ),
            detail: issues,
        });
    }
}

fn spool_alert(s: &HostSpool, t: &Thresholds, now: Timestamp) -> Option<Alert> {
    let deep = s.spool.depth > t.spool_pending_over;
    // The oldest record's time is the agent's clock; a skewed clock is its own alert.
    let age = s.spool.oldest.map(|o| now.duration_since(o));
    let old = age.is_some_and(|a| a > t.spool_oldest_over);
    if !(deep || old) {
        return None;
    }
    let mut detail = format!(
        "{} records wait for delivery (limit {})",
        s.spool.depth, t.spool_pending_over
    );
    if let Some(a) = age {
        detail.push_str(&format!(
            ", the oldest for {} (limit {})",
            Human(a),
            Human(t.spool_oldest_over)
        ));
    }
    detail.push_str(&format!(
        "; reported {}; {} dropped, {} quarantined",
        s.received_at, s.spool.dropped, s.spool.quarantined
    ));
    Some(Alert {
        rule: Rule::SpoolGrowing,
        subject: s.host.clone(),
        severity: Severity::Warning,
        summary: format!("the agent on {} cannot deliver its run records", s.host),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::{Assessor, HeartbeatSeen, Inventory, Settings};
    use crate::policy::Policy;
    use crate::run::{RepoResult, RunError, RunRecord};
    use std::collections::HashMap;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-03-01T12:00:00Z";

    /// The simulated fleet's policy: host `sim-00001` with `-s1` (T1, 4 h), `-s2` (T2, 24 h),
    /// `-s3` (T3); host `sim-00002` likewise.
    fn policy() -> Policy {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in crate::sim::policy::files(2, 3) {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        crate::policy::load_dir(dir.path()).unwrap()
    }

    /// A backup of `system` captured at `cap`, available at every repository of its chain (T3
    /// systems, `-s3`, have no vault) ten minutes later.
    fn backup(system: &str, id: &str, cap: &str) -> RunRecord {
        let cap = t(cap);
        let host = &system[..9];
        let mut r = RunRecord::start(RunKind::Backup, id.into(), host.into(), cap);
        r.system = Some(system.into());
        r.capture_time = Some(cap);
        r.finished_at = cap + SignedDuration::from_mins(10);
        r.snapshot_id = Some(format!("snap-{id}"));
        r.outcome = Outcome::Success;
        let chain: &[&str] = if system.ends_with("-s3") {
            &["sim-local", "sim-offsite"]
        } else {
            &["sim-local", "sim-offsite", "sim-vault"]
        };
        r.repositories = chain
            .iter()
            .map(|repo| RepoResult {
                repository: (*repo).into(),
                location: if *repo == "sim-local" {
                    "local"
                } else {
                    "remote"
                }
                .into(),
                immutable: *repo == "sim-vault",
                outcome: Outcome::Success,
                available_at: Some(cap + SignedDuration::from_mins(10)),
                snapshots: vec![format!("snap-{id}")],
                bytes_added: 1,
                seconds: 1.0,
                error: None,
            })
            .collect();
        r
    }

    fn failed(system: &str, kind: RunKind, outcome: Outcome, repo: Option<&str>) -> LatestRun {
        LatestRun {
            system: system.into(),
            kind,
            repository: repo.map(Into::into),
            run_id: "r-9".into(),
            finished_at: t("2026-03-01T11:00:00Z"),
            outcome,
            error: Some(RunError {
                kind: "storage".into(),
                message: "503 from the object store".into(),
            }),
        }
    }

    /// Every system of [`policy`] assessed at [`NOW`] from `runs`, with the agents' last
    /// heartbeats (`None`: never seen).
    fn fleet(
        runs: &[RunRecord],
        heartbeats: &[(&str, Option<(&str, &str)>)],
    ) -> (Vec<SystemAssessment>, Vec<AgentHealth>) {
        let policy = policy();
        let settings = Settings::default();
        let (inventory, errors) = Inventory::from_runs(runs, &policy);
        assert!(errors.is_empty(), "{errors:?}");
        let now = t(NOW);
        let agents: HashMap<String, AgentHealth> = heartbeats
            .iter()
            .map(|(host, seen)| {
                let seen = seen.map(|(sent, received)| HeartbeatSeen {
                    host: (*host).into(),
                    sent_at: t(sent),
                    received_at: t(received),
                });
                (
                    (*host).to_string(),
                    AgentHealth::assess(host, seen.as_ref(), now, &settings),
                )
            })
            .collect();
        let assessments = Assessor::new(&policy, &inventory, &settings)
            .with_agents(&agents)
            .all(now)
            .collect();
        let mut agents: Vec<AgentHealth> = agents.into_values().collect();
        agents.sort_by(|a, b| a.host.cmp(&b.host));
        (assessments, agents)
    }

    /// `rule subject severity` of every alert, one per line.
    fn lines(alerts: &[Alert]) -> Vec<String> {
        alerts
            .iter()
            .map(|a| format!("{} {} {}", a.rule, a.subject, a.severity))
            .collect()
    }

    /// Every system recently backed up and copied off site, both agents online: the baseline
    /// each case changes one thing of.
    fn healthy() -> Vec<RunRecord> {
        let mut runs = Vec::new();
        for (i, host) in ["sim-00001", "sim-00002"].iter().enumerate() {
            for s in 1..=3 {
                runs.push(backup(
                    &format!("{host}-s{s}"),
                    &format!("b{i}{s}"),
                    "2026-03-01T11:30:00Z",
                ));
            }
        }
        runs
    }

    const ONLINE: Option<(&str, &str)> = Some(("2026-03-01T11:59:00Z", "2026-03-01T11:59:00Z"));

    fn check(
        runs: Vec<RunRecord>,
        heartbeats: &[(&str, Option<(&str, &str)>)],
        failed_runs: &[LatestRun],
        spools: &[HostSpool],
        thresholds: Thresholds,
        expected: &[&str],
    ) {
        let (assessments, agents) = fleet(&runs, heartbeats);
        let inputs = Inputs {
            assessments: &assessments,
            agents: &agents,
            failed_runs,
            spools,
        };
        let alerts = evaluate(&inputs, &thresholds, t(NOW));
        assert_eq!(lines(&alerts), expected, "{alerts:#?}");
        for a in &alerts {
            assert!(!a.summary.is_empty() && !a.detail.is_empty(), "{a:?}");
        }
    }

    const BOTH_ONLINE: &[(&str, Option<(&str, &str)>)] =
        &[("sim-00001", ONLINE), ("sim-00002", ONLINE)];

    #[test]
    fn a_healthy_fleet_has_no_alert() {
        check(healthy(), BOTH_ONLINE, &[], &[], Thresholds::default(), &[]);
    }

    #[test]
    fn breaches_are_per_system_and_scenario_and_critical_on_short_rpo_tiers() {
        let mut runs = healthy();
        // s1 (T1, 4 h) last captured 10 h ago; s2 (T2, 24 h) 30 h ago.
        runs.retain(|r| !matches!(r.system.as_deref(), Some("sim-00001-s1" | "sim-00001-s2")));
        runs.push(backup("sim-00001-s1", "old1", "2026-03-01T02:00:00Z"));
        runs.push(backup("sim-00001-s2", "old2", "2026-02-28T06:00:00Z"));
        // sim-00002-s1 was never backed up: one alert, not one per scenario.
        runs.retain(|r| r.system.as_deref() != Some("sim-00002-s1"));
        check(
            runs,
            BOTH_ONLINE,
            &[],
            &[],
            Thresholds::default(),
            &[
                "rpo-breached sim-00001-s1/component-loss critical",
                "rpo-breached sim-00001-s1/ransomware critical",
                "rpo-breached sim-00001-s1/site-loss critical",
                "rpo-breached sim-00001-s2/component-loss warning",
                "rpo-breached sim-00001-s2/ransomware warning",
                "rpo-breached sim-00001-s2/site-loss warning",
                "rpo-breached sim-00002-s1/site-loss critical",
            ],
        );
    }

    #[test]
    fn a_breach_is_predicted_within_the_horizon_only() {
        // s1 (T1, 4 h) captured 3 h 30 m ago: breach in 30 m, within a quarter (1 h).
        let mut runs = healthy();
        runs.retain(|r| r.system.as_deref() != Some("sim-00001-s1"));
        runs.push(backup("sim-00001-s1", "p1", "2026-03-01T08:30:00Z"));
        let predicted = [
            "rpo-breach-predicted sim-00001-s1/component-loss warning",
            "rpo-breach-predicted sim-00001-s1/ransomware warning",
            "rpo-breach-predicted sim-00001-s1/site-loss warning",
        ];
        check(
            runs.clone(),
            BOTH_ONLINE,
            &[],
            &[],
            Thresholds::default(),
            &predicted,
        );
        // With a 10 % horizon (24 m) it is not predicted yet.
        check(
            runs,
            BOTH_ONLINE,
            &[],
            &[],
            Thresholds {
                predict_within_percent: 10,
                ..Thresholds::default()
            },
            &[],
        );
    }

    #[test]
    fn failed_runs_and_checks_of_known_systems_alert() {
        let failed_runs = [
            failed("sim-00001-s2", RunKind::Backup, Outcome::Failed, None),
            failed("sim-00001-s2", RunKind::Copy, Outcome::Partial, None),
            failed("sim-00002-s3", RunKind::Forget, Outcome::Failed, None),
            failed(
                "sim-00002-s3",
                RunKind::Check,
                Outcome::Failed,
                Some("sim-offsite"),
            ),
            // A system the policy no longer has: nothing to say.
            failed("gone", RunKind::Backup, Outcome::Failed, None),
        ];
        check(
            healthy(),
            BOTH_ONLINE,
            &failed_runs,
            &[],
            Thresholds::default(),
            &[
                "run-failed sim-00001-s2/backup warning",
                "run-failed sim-00001-s2/copy warning",
                "run-failed sim-00002-s3/forget warning",
                "check-failed sim-00002-s3/sim-offsite warning",
            ],
        );
    }

    #[test]
    fn silent_never_seen_and_skewed_agents() {
        check(
            healthy(),
            &[
                // Silent for an hour (offline after 5 m); its host has a T1 system.
                (
                    "sim-00001",
                    Some(("2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z")),
                ),
                // Online, but its clock is 10 m behind.
                (
                    "sim-00002",
                    Some(("2026-03-01T11:49:00Z", "2026-03-01T11:59:00Z")),
                ),
                ("sim-00003", None),
            ],
            &[],
            &[],
            Thresholds::default(),
            &[
                "agent-offline sim-00001 critical",
                "agent-offline sim-00003 warning",
                "agent-clock-skewed sim-00002 warning",
            ],
        );
    }

    #[test]
    fn a_spool_grows_by_depth_or_by_age() {
        let spool = |host: &str, depth: u64, oldest: Option<&str>| HostSpool {
            host: host.into(),
            received_at: t("2026-03-01T11:59:00Z"),
            spool: SpoolStatus {
                depth,
                oldest: oldest.map(t),
                dropped: 0,
                quarantined: 0,
            },
        };
        check(
            healthy(),
            BOTH_ONLINE,
            &[],
            &[
                spool("sim-00001", 1001, Some("2026-03-01T11:00:00Z")),
                spool("sim-00002", 3, Some("2026-03-01T05:00:00Z")),
                spool("sim-00003", 1000, Some("2026-03-01T06:00:00Z")),
            ],
            Thresholds::default(),
            &[
                "spool-growing sim-00001 warning",
                "spool-growing sim-00002 warning",
            ],
        );
    }

    #[test]
    fn rule_names_are_stable() {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "rpo-breached",
                "rpo-breach-predicted",
                "run-failed",
                "check-failed",
                "agent-offline",
                "agent-clock-skewed",
                "spool-growing"
            ]
        );
    }
}
