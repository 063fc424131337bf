//! Assessment: from evidence and policy to the figures the coordinator reports (standards.md §3)
//! — RPO exposure per scenario with a compliance status and its reasons, the instant a breach
//! will happen, period statistics of the exposure sawtooth, 3-2-1-1-0 conformance, integrity
//! check coverage per repository copy, agent health and clock skew, and fleet summaries.
//!
//! This module is the coordinator's pure core. It does no I/O, reads no clock (every function
//! takes `now`), spawns nothing, knows no SQL, HTTP or rustic type. The coordinator's store feeds
//! it run records and heartbeats; its API, alerts and reports render what it returns.
//!
//! # Data flow
//!
//! ```text
//! RunRecord ──Inventory::ingest──▶ Inventory ─┐   (per system: snapshots × repositories, when
//!                                             │    each copy became available; per repository:
//!                                             │    check history → distrust intervals, coverage)
//! Heartbeat ──HeartbeatSeen──▶ AgentHealth ───┤   (offline? clock offset → ClockCorrection)
//!                                             ▼
//!                 Policy + Settings ──▶ Assessor ──▶ SystemAssessment ──▶ FleetSummary
//!                                                     (3 × RpoAssessment, RuleConformance,
//!                                                      IntegrityCoverage per repository)
//!                                  └──▶ Assessor::period ──▶ PeriodReport (sawtooth over [from, to])
//! ```
//!
//! # The rules, in one place
//!
//! **Evidence** ([`Inventory::ingest`]). A *copy* is one snapshot at one repository, with the
//! snapshot's capture time `t_cap` and the time it became available there, `t_avail`.
//! - A backup record gives, for every repository result that succeeded, a copy of each snapshot
//!   the result lists (else the record's `snapshot_id`) with `t_cap` = the record's
//!   `capture_time` (its `started_at` when missing: earlier, so never flattering) and `t_avail` =
//!   the result's `available_at` (the record's `finished_at` when missing: later).
//! - A copy record gives, for every target that succeeded at `t`, a copy of each snapshot the
//!   result lists, *and* — because a copy transfers every snapshot of the system the target
//!   lacks — of every snapshot that was available at the system's source repository (the first
//!   of its chain, where the engine copies from) when the copy run started. This also covers
//!   snapshots whose own records were lost (the agent's spool drops old successes when full).
//!   Records may arrive in any order: a backup ingested after the copy that carried it gets the
//!   copy's time.
//! - A snapshot is *complete* only if the backup run that made it ended `success`: `partial` and
//!   `failed` snapshots never count (pitfall 3), whatever the cause.
//! - A capture time later than the copy's availability (impossible on one clock) is taken as the
//!   availability time. Retention (`forget`) is not modelled: it never removes a system's newest
//!   snapshot, which is all the live exposure reads.
//! - A failed check of a repository distrusts the *whole* repository from the check's start
//!   until a later passing check (one that started after the failure was found) of at least the
//!   same depth finishes: dedup means new snapshots may share the damaged packs. Checks that
//!   could not run (`unreachable`, `storage`, `aborted`, `window-closed`, `interrupted`) prove
//!   nothing either way. See [`RepositoryChecks`].
//!
//! **Scenarios** ([`Scenario`]): `component-loss` counts every copy; `site-loss` counts copies at
//! repositories the tier's `offsite-class` admits (never `local` or `same-site`; only `remote`
//! for a tier that demands 异地); `ransomware` counts only immutable repositories.
//!
//! **Exposure** at `t` = `t − t_cap` of the newest complete snapshot with a copy at a counted,
//! undistrusted repository and `t_avail ≤ t` (standards §3.2; capture time, never end time);
//! unbounded when there is none. Status: `breached` when exposure > target, `at-risk` when above
//! [`Settings::at_risk_percent`] of it, `compliant` otherwise, `no-evidence` when no backup of
//! the system has ever been recorded. The breach instant is `t_cap + target` of the newest
//! counted snapshot.
//!
//! **Clock skew** (pitfall 7). Run records carry the agent's clock. The coordinator measures each
//! agent's offset from its heartbeats (receive time − `sent_at`). Within
//! [`Settings::max_clock_skew`] the agent's times are used as they are (the estimate includes
//! network latency). Beyond it they are corrected *pessimistically*: each capture time is moved
//! by the offset only if that makes it earlier, each availability time only if that makes it
//! later — the offset is measured now and may not have held when the snapshot was taken, so a
//! skewed clock can make the evidence look worse, never better. Every affected assessment says
//! so in its reasons.
//!
//! **Not covered yet**: whether a repository's key is escrowed at the recovery site (pitfall 11;
//! the policy does not say), the regional scenario (only `remote` copies; a tier with
//! `offsite-class = "remote"` gets it as its site-loss figure), the ransomware compromise time
//! (a drill input, not a live one) and replication lag as a second RPO source.
//!
//! # Scale
//!
//! Assessing a system is O(its copies + its repositories) with a handful of small allocations
//! (the result and its reasons); check-derived state is precomputed at ingest, so it costs O(1)
//! per repository. [`Assessor`] is `Sync`: a coordinator may split the fleet over threads.

mod checks;
mod evidence;
mod fleet;
mod health;
mod integrity;
mod period;
mod reason;
mod rpo;
mod rule;
mod scenario;
#[cfg(test)]
pub(crate) mod testkit;

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::policy::{Duration, Policy, Repository, SiteId, System, SystemId, Tier, TierId};

pub use checks::{
    CheckDepth, CheckResult, CheckRun, FailureSpan, INCONCLUSIVE_KINDS, Interval, RepositoryChecks,
    Subset, SubsetError,
};
pub use evidence::{
    Capture, CopyView, IngestError, Inventory, RepoColumn, SnapshotEntry, SnapshotId, SourceSize,
    SystemEvidence, WriteFailure, WriteHistory,
};
pub use fleet::{FleetSummary, StatusCounts};
pub use health::{AgentHealth, AgentStatus, ClockCorrection, HealthIssue, HeartbeatSeen};
pub use integrity::{IntegrityCoverage, IntegrityIssue, RotationProgress};
pub use period::{BreachSpan, PeriodReport};
pub use reason::{Exposure, Human};
pub use rpo::{
    CountedCopy, Excluded, FailedWrite, NotCountedWhy, RpoAssessment, RpoReason, Status,
};
pub use rule::{Digit, DigitKind, RepoGap, RuleConformance, RuleNote};
pub use scenario::{Exclusion, Scenario};

// ---------------------------------------------------------------------------------------------
// Settings

/// The coordinator's assessment settings (a `[assessment]` table of its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// A system whose exposure is above this share of its target is `at-risk` (1..=100).
    #[serde(default = "Percent::default_at_risk")]
    pub at_risk_percent: Percent,
    /// An agent not heard from for longer than this is offline.
    #[serde(default = "default_offline_after")]
    pub offline_after: Duration,
    /// An agent clock further off the coordinator's than this is skewed, and its times are
    /// corrected (see the module documentation).
    #[serde(default = "default_max_clock_skew")]
    pub max_clock_skew: Duration,
}

fn default_offline_after() -> Duration {
    // Five missed heartbeats at the agent's default one-minute cadence.
    Duration::from_secs(300).unwrap_or(Duration::TEN_MINUTES)
}

fn default_max_clock_skew() -> Duration {
    // The agent itself warns beyond a minute.
    Duration::from_secs(60).unwrap_or(Duration::TEN_MINUTES)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            at_risk_percent: Percent::default_at_risk(),
            offline_after: default_offline_after(),
            max_clock_skew: default_max_clock_skew(),
        }
    }
}

/// A whole percentage in `1..=100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Percent(u8);

/// Why a number is not a [`Percent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a percentage between 1 and 100")]
pub struct PercentError(pub u8);

impl Percent {
    pub fn new(value: u8) -> Result<Self, PercentError> {
        if (1..=100).contains(&value) {
            Ok(Percent(value))
        } else {
            Err(PercentError(value))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    fn default_at_risk() -> Self {
        Percent(80)
    }
}

impl TryFrom<u8> for Percent {
    type Error = PercentError;
    fn try_from(value: u8) -> Result<Self, PercentError> {
        Percent::new(value)
    }
}

impl From<Percent> for u8 {
    fn from(p: Percent) -> u8 {
        p.0
    }
}

/// A policy duration as a signed one (durations beyond ±292 years saturate).
pub(crate) fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d.as_std()).unwrap_or(SignedDuration::MAX)
}

/// `t + d`, saturating at the ends of time.
pub(crate) fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why an assessment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessError {
    #[error("system \"{0}\" is not in the policy; assess only systems of the policy in force")]
    UnknownSystem(String),
    #[error(
        "system \"{system}\" names tier \"{tier}\", which the policy does not define; \
         load the policy with `lifeboat policy check` first"
    )]
    UnknownTier { system: SystemId, tier: TierId },
    #[error("the period {from} .. {to} is empty; `from` must be before `to`")]
    EmptyPeriod { from: Timestamp, to: Timestamp },
}

// ---------------------------------------------------------------------------------------------
// The assessor

/// Everything about one system, assessed at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct SystemAssessment {
    pub system: SystemId,
    pub tier: TierId,
    pub site: SiteId,
    pub host: String,
    pub assessed_at: Timestamp,
    /// One per scenario, in [`Scenario::ALL`] order; see [`SystemAssessment::rpo`].
    pub rpo: [RpoAssessment; 3],
    pub rule: RuleConformance,
    /// One per repository of the system's chain, in chain order.
    pub integrity: Vec<IntegrityCoverage>,
    /// The correction applied to the agent's times (its offset when its clock is skewed): the
    /// flag that the figures above rest on a corrected clock.
    pub clock: ClockCorrection,
}

impl SystemAssessment {
    /// The assessment of one scenario.
    pub fn rpo(&self, scenario: Scenario) -> &RpoAssessment {
        &self.rpo[scenario.index()]
    }

    /// The tier's headline figure: the `site-loss` scenario (standards §3.2).
    pub fn headline(&self) -> &RpoAssessment {
        self.rpo(Scenario::SiteLoss)
    }
}

/// Assesses systems of one policy against one inventory. Cheap to build; holds only references.
///
/// `agents` maps a host name to its [`AgentHealth`] (built by [`AgentHealth::assess`] at the same
/// `now`); a system whose host is missing from it is assessed without clock correction or
/// offline note.
#[derive(Debug, Clone, Copy)]
pub struct Assessor<'a> {
    policy: &'a Policy,
    inventory: &'a Inventory,
    settings: &'a Settings,
    agents: Option<&'a HashMap<String, AgentHealth>>,
}

/// One system resolved against the policy and the inventory: what every assessment reads.
pub(crate) struct SystemView<'a> {
    pub policy: &'a Policy,
    pub system: &'a System,
    pub tier: &'a Tier,
    pub evidence: &'a SystemEvidence,
    /// The evidence's repository columns with their policy facts, resolved once.
    pub cols: Vec<Col<'a>>,
    pub correction: ClockCorrection,
    pub agent: Option<&'a AgentHealth>,
    pub now: Timestamp,
}

/// One repository column of a system's evidence with what the policy and the checks say of it.
pub(crate) struct Col<'a> {
    pub column: &'a RepoColumn,
    /// `None` when the repository is no longer in the policy: its location is unknown, so its
    /// copies count for no scenario.
    pub repo: Option<&'a Repository>,
    pub checks: Option<&'a RepositoryChecks>,
    /// The failed check that distrusts the repository at `now`, if any.
    pub distrusted: Option<&'a FailureSpan>,
}

impl<'a> SystemView<'a> {
    /// The column of a repository, if the system has evidence there.
    pub fn col(&self, id: &str) -> Option<&Col<'a>> {
        self.cols
            .iter()
            .find(|c| c.column.repository().as_str() == id)
    }
}

impl<'a> Assessor<'a> {
    pub fn new(policy: &'a Policy, inventory: &'a Inventory, settings: &'a Settings) -> Self {
        Assessor {
            policy,
            inventory,
            settings,
            agents: None,
        }
    }

    /// Uses the agents' health (offline notes, clock correction).
    pub fn with_agents(mut self, agents: &'a HashMap<String, AgentHealth>) -> Self {
        self.agents = Some(agents);
        self
    }

    fn find(&self, id: &str) -> Result<&'a System, AssessError> {
        self.policy
            .systems
            .get(id)
            .ok_or_else(|| AssessError::UnknownSystem(id.to_string()))
    }

    fn view(&self, id: &str, now: Timestamp) -> Result<SystemView<'a>, AssessError> {
        self.view_of(self.find(id)?, now)
    }

    fn view_of(&self, system: &'a System, now: Timestamp) -> Result<SystemView<'a>, AssessError> {
        let tier = self
            .policy
            .tiers
            .get(&system.tier)
            .ok_or_else(|| AssessError::UnknownTier {
                system: system.id.clone(),
                tier: system.tier.clone(),
            })?;
        let evidence = self
            .inventory
            .system(system.id.as_str())
            .unwrap_or_else(|| SystemEvidence::empty());
        let cols = evidence
            .columns()
            .iter()
            .map(|column| {
                let id = column.repository().as_str();
                let checks = self.inventory.checks(id);
                Col {
                    column,
                    repo: self.policy.repositories.get(id),
                    checks,
                    distrusted: checks.and_then(|c| c.distrusted_at(now)),
                }
            })
            .collect();
        let agent = self.agents.and_then(|a| a.get(&system.host));
        Ok(SystemView {
            policy: self.policy,
            system,
            tier,
            evidence,
            cols,
            correction: agent.map_or_else(ClockCorrection::none, AgentHealth::correction),
            agent,
            now,
        })
    }

    /// Everything about one system at `now`.
    pub fn system(&self, id: &str, now: Timestamp) -> Result<SystemAssessment, AssessError> {
        self.assess(self.find(id)?, now)
    }

    fn assess(&self, system: &'a System, now: Timestamp) -> Result<SystemAssessment, AssessError> {
        let view = self.view_of(system, now)?;
        let integrity = system
            .repositories
            .iter()
            .map(|id| integrity::coverage(id, self.inventory.checks(id.as_str()), view.tier, now))
            .collect();
        Ok(SystemAssessment {
            system: system.id.clone(),
            tier: system.tier.clone(),
            site: system.site.clone(),
            host: system.host.clone(),
            assessed_at: now,
            rpo: rpo::assess(&view, self.settings),
            rule: rule::conformance(&view),
            integrity,
            clock: view.correction,
        })
    }

    /// Every system of the policy at `now`, in id order. Systems whose tier is missing (not
    /// possible in a loaded policy) are skipped.
    pub fn all(&self, now: Timestamp) -> impl Iterator<Item = SystemAssessment> + 'a {
        let this = *self;
        self.policy
            .systems
            .values()
            .filter_map(move |s| this.assess(s, now).ok())
    }

    /// One scenario of one system at `now`.
    pub fn rpo(
        &self,
        id: &str,
        scenario: Scenario,
        now: Timestamp,
    ) -> Result<RpoAssessment, AssessError> {
        let view = self.view(id, now)?;
        // One pass serves all three scenarios; the other two are dropped.
        let [a, b, c] = rpo::assess(&view, self.settings);
        Ok(match scenario {
            Scenario::ComponentLoss => a,
            Scenario::SiteLoss => b,
            Scenario::Ransomware => c,
        })
    }

    /// The exposure of one system and scenario over `[from, to]`: worst value, time within
    /// target, breaches. Computed exactly from the evidence; distrust intervals are applied as
    /// they are known now, and a period reaching past the last evidence assumes nothing else
    /// succeeded.
    pub fn period(
        &self,
        id: &str,
        scenario: Scenario,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<PeriodReport, AssessError> {
        if from >= to {
            return Err(AssessError::EmptyPeriod { from, to });
        }
        let view = self.view(id, to)?;
        Ok(period::report(&view, scenario, from, to))
    }

    /// The 3-2-1-1-0 conformance of one system at `now`.
    pub fn rule(&self, id: &str, now: Timestamp) -> Result<RuleConformance, AssessError> {
        let view = self.view(id, now)?;
        Ok(rule::conformance(&view))
    }

    /// The integrity-check coverage of each repository of one system's chain, against its tier.
    pub fn integrity(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Vec<IntegrityCoverage>, AssessError> {
        let view = self.view(id, now)?;
        Ok(view
            .system
            .repositories
            .iter()
            .map(|r| integrity::coverage(r, self.inventory.checks(r.as_str()), view.tier, now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::run::Outcome;

    #[test]
    fn settings_parse_with_defaults_and_refuse_bad_values() {
        let s: Settings = toml::from_str("").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.at_risk_percent.get(), 80);
        let s: Settings = toml::from_str(
            "at-risk-percent = 90\noffline-after = \"10m\"\nmax-clock-skew = \"5m\"",
        )
        .unwrap();
        assert_eq!(
            (
                s.at_risk_percent.get(),
                s.offline_after.to_string(),
                s.max_clock_skew.to_string()
            ),
            (90, "10m".to_string(), "5m".to_string())
        );
        for bad in [
            "at-risk-percent = 0",
            "at-risk-percent = 101",
            "at-risk = 80",
        ] {
            assert!(toml::from_str::<Settings>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_system_and_empty_period_are_typed_errors() {
        let policy = policy();
        let inventory = Inventory::new();
        let settings = Settings::default();
        let a = Assessor::new(&policy, &inventory, &settings);
        assert_eq!(
            a.system("nope", t("03-01 00:00")).unwrap_err(),
            AssessError::UnknownSystem("nope".into())
        );
        assert!(matches!(
            a.period(
                "fin",
                Scenario::SiteLoss,
                t("03-02 00:00"),
                t("03-01 00:00")
            ),
            Err(AssessError::EmptyPeriod { .. })
        ));
    }

    /// The fleet-scale check: 50,000 systems, each with two weeks of nightly snapshots at
    /// three repositories and a failed off-site copy now and then, assessed in one pass. The
    /// time is printed, not asserted (this is an unoptimised test build; an optimised build is
    /// what the coordinator runs).
    #[test]
    fn assesses_fifty_thousand_systems() {
        const SYSTEMS: usize = 50_000;
        const NIGHTS: i64 = 14;
        let mut policy = policy();
        let template = policy.systems["fin"].clone();
        policy.systems.clear();
        let mut inventory = Inventory::new();
        // Three hours after the last night's capture: 75 % of T1's 4 h RPO.
        let now = t("03-14 05:00");
        for i in 0..SYSTEMS {
            let mut s = template.clone();
            s.id = format!("sys-{i:05}").parse().unwrap();
            let ev = inventory.system_mut(&s.id);
            ev.set_source(Some(repo_id("local")));
            for night in 0..NIGHTS {
                let cap = plus(t("03-01 02:00"), SignedDuration::from_hours(24 * night));
                let id = format!("{i:05}-{night:02}");
                ev.record_capture(
                    &id,
                    Capture {
                        captured: cap,
                        outcome: Outcome::Success,
                    },
                );
                ev.record_available(
                    &id,
                    &repo_id("local"),
                    plus(cap, SignedDuration::from_mins(20)),
                );
                // Every 7th system lost its last two off-site copies.
                if i % 7 != 0 || night < NIGHTS - 2 {
                    let off = plus(cap, SignedDuration::from_hours(2));
                    ev.record_available(&id, &repo_id("offsite"), off);
                    ev.record_available(&id, &repo_id("vault"), off);
                }
            }
            policy.systems.insert(s.id.clone(), s);
        }
        let settings = Settings::default();
        let assessor = Assessor::new(&policy, &inventory, &settings);
        // The coordinator may share one assessor between threads.
        fn is_sync<T: Sync>(_: &T) {}
        is_sync(&assessor);
        let started = std::time::Instant::now();
        let mut summary = FleetSummary::new(&policy, Scenario::SiteLoss);
        let mut assessed = 0;
        for a in assessor.all(now) {
            summary.add(&a.tier, a.headline().status);
            assessed += 1;
        }
        let elapsed = started.elapsed();
        println!("assessed {assessed} systems (3 scenarios, 3-2-1-1-0, integrity) in {elapsed:?}");
        assert_eq!(assessed, SYSTEMS);
        // The newest off-site copy is 3 h old (compliant), or 51 h for the systems that lost
        // two nights (breached).
        let t1 = &summary.tiers[&tier_id("T1")];
        let unlucky = SYSTEMS.div_ceil(7);
        assert_eq!(t1.breached as usize, unlucky);
        assert_eq!(t1.compliant as usize, SYSTEMS - unlucky);
        assert_eq!(summary.total.total() as usize, SYSTEMS);
    }
}
