//! Which snapshot, from which repository, each system of a drill is restored from (standards
//! §3.2 drill-achieved RPO; pitfalls §3.5 2–4 and 8): the newest complete snapshot with a copy
//! the scenario allows, available there by `T_disaster` and not distrusted by a failed check —
//! and, for every newer candidate passed over, why.
//!
//! Reads the evidence ([`Inventory`]) and the policy; decides nothing else (readiness, order
//! and execution are the orchestrator's). No clock: `T_disaster` is an input.
//!
//! `T_disaster` is the instant the data is lost (§3.2): the drill's start (`T_outage`), or an
//! earlier instant the drill declared ("what if we had lost the site at 02:00?").

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::assess::{Human, Inventory, SystemEvidence, plus, signed};
use crate::policy::{DrillPlan, DrillScenarioKind, Location, Policy, RepoId, SiteId, SystemId};
use crate::run::Outcome;

/// The conditions a drill restores under: its scenario at `T_disaster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub kind: DrillScenarioKind,
    /// `site-loss`: the lost site.
    pub lost_site: Option<SiteId>,
    /// `ransomware`: `T_disaster − compromised-for`; only snapshots captured before it count.
    pub compromise_at: Option<Timestamp>,
    pub t_disaster: Timestamp,
}

impl Conditions {
    /// The conditions of `plan` with its disaster at `t_disaster`.
    pub fn of(plan: &DrillPlan, t_disaster: Timestamp) -> Self {
        let compromise_at = match plan.scenario.kind {
            DrillScenarioKind::Ransomware => Some(
                plan.scenario
                    .compromised_for
                    .map_or(t_disaster, |d| plus(t_disaster, -signed(d))),
            ),
            _ => None,
        };
        Conditions {
            kind: plan.scenario.kind,
            lost_site: plan.scenario.lost_site.clone(),
            compromise_at,
            t_disaster,
        }
    }

    /// The copies these conditions allow, in words (for the record's scenario section).
    pub fn allowed_copies(&self) -> String {
        match self.kind {
            DrillScenarioKind::ComponentLoss => {
                "any complete copy available by T_disaster".to_string()
            }
            DrillScenarioKind::SiteLoss => format!(
                "complete copies available by T_disaster at repositories off the lost site{}, \
                 never a local or same-site copy",
                self.lost_site
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            DrillScenarioKind::Ransomware => format!(
                "complete copies at immutable repositories, captured before the compromise{}",
                self.compromise_at
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The snapshot a system is restored from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub system: SystemId,
    /// The snapshot id as the backup recorded it (a copy keeps being found by it).
    pub snapshot: String,
    pub repository: RepoId,
    pub location: Location,
    pub immutable: bool,
    /// Capture time: what the achieved RPO is measured from.
    pub t_cap: Timestamp,
    /// When the copy became available at `repository`.
    pub t_avail: Timestamp,
    /// Source bytes and files of the backup that made it, when recorded.
    pub bytes: Option<u64>,
    pub files: Option<u64>,
}

/// A newer candidate that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    pub snapshot: String,
    /// The copy passed over; `None` when the snapshot itself does not qualify.
    pub repository: Option<RepoId>,
    pub t_cap: Option<Timestamp>,
    pub reason: String,
}

/// The choice for one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub system: SystemId,
    pub chosen: Option<RestorePoint>,
    /// Candidates newer than the one chosen (every candidate when none was), newest first.
    pub passed_over: Vec<PassedOver>,
    /// Why there is no restore point, when there is none.
    pub reasons: Vec<String>,
}

/// One copy of a snapshot that qualifies, while choosing.
struct Allowed {
    repository: RepoId,
    location: Location,
    immutable: bool,
    available: Timestamp,
    chain_index: usize,
}

/// Chooses the restore point of `system` under `cond` (see the module documentation).
pub fn choose(
    policy: &Policy,
    inventory: &Inventory,
    system: &SystemId,
    cond: &Conditions,
) -> Selection {
    let mut selection = Selection {
        system: system.clone(),
        chosen: None,
        passed_over: Vec::new(),
        reasons: Vec::new(),
    };
    let Some(sys) = policy.system(system.as_str()) else {
        selection
            .reasons
            .push(format!("System {system} is not in the policy in force."));
        return selection;
    };
    let ev = inventory
        .system(system.as_str())
        .unwrap_or_else(|| SystemEvidence::empty());
    // Newest capture first; snapshots whose backup record is missing last.
    let mut order: Vec<usize> = (0..ev.snapshots().len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| ev.snapshots()[i].capture.map(|c| c.captured);
        key(b)
            .cmp(&key(a))
            .then_with(|| ev.snapshots()[a].id.cmp(&ev.snapshots()[b].id))
    });
    if order.is_empty() {
        selection
            .reasons
            .push(format!("No backup of {system} has been recorded."));
        return selection;
    }

    for i in order {
        let entry = &ev.snapshots()[i];
        let id = entry.id.to_string();
        let passed = |repository: Option<RepoId>, reason: String| PassedOver {
            snapshot: id.clone(),
            repository,
            t_cap: entry.capture.map(|c| c.captured),
            reason,
        };
        let Some(capture) = entry.capture else {
            selection.passed_over.push(passed(
                None,
                "its backup record has not arrived, so its capture time is unknown".to_string(),
            ));
            continue;
        };
        if !capture.is_complete() {
            selection.passed_over.push(passed(
                None,
                format!(
                    "incomplete backup (the run ended {})",
                    match capture.outcome {
                        Outcome::Success => "success",
                        Outcome::Partial => "partial",
                        Outcome::Failed => "failed",
                    }
                ),
            ));
            continue;
        }
        if capture.captured > cond.t_disaster {
            selection
                .passed_over
                .push(passed(None, "captured after T_disaster".to_string()));
            continue;
        }
        if let Some(compromise) = cond.compromise_at
            && capture.captured >= compromise
        {
            selection.passed_over.push(passed(
                None,
                format!("captured after the compromise at {compromise}"),
            ));
            continue;
        }
        let mut allowed: Vec<Allowed> = Vec::new();
        for col in ev.columns() {
            let Some(available) = col.available_at(i) else {
                continue;
            };
            let repo_id = col.repository();
            let chain_index = sys
                .repositories
                .iter()
                .position(|r| r == repo_id)
                .unwrap_or(usize::MAX);
            match refusal(policy, inventory, repo_id, available, cond) {
                Some(reason) => selection
                    .passed_over
                    .push(passed(Some(repo_id.clone()), reason)),
                None => {
                    if let Some(repo) = policy.repository(repo_id.as_str()) {
                        allowed.push(Allowed {
                            repository: repo_id.clone(),
                            location: repo.location,
                            immutable: repo.immutable,
                            available,
                            chain_index,
                        });
                    }
                }
            }
        }
        let Some(best) = allowed
            .into_iter()
            .min_by_key(|a| (a.available, a.chain_index))
        else {
            if ev.columns().iter().all(|c| c.available_at(i).is_none()) {
                selection.passed_over.push(passed(
                    None,
                    "no copy of it is known at any repository".to_string(),
                ));
            }
            continue;
        };
        // The copy a passed-over reason refers to is newer than the one chosen, or another
        // copy of the same snapshot: only the former are "newer candidates".
        selection
            .passed_over
            .retain(|p| p.snapshot != id || p.repository.is_none());
        selection.chosen = Some(RestorePoint {
            system: system.clone(),
            snapshot: id.clone(),
            repository: best.repository,
            location: best.location,
            immutable: best.immutable,
            // A capture after the copy's availability is impossible on one clock.
            t_cap: capture.captured.min(best.available),
            t_avail: best.available,
            bytes: entry.size.map(|s| s.bytes),
            files: entry.size.map(|s| s.files),
        });
        return selection;
    }
    selection.reasons.push(format!(
        "No snapshot of {system} has a complete copy the {} scenario allows by T_disaster ({}).",
        cond.kind, cond.t_disaster
    ));
    selection
}

/// Why a copy at `repo_id`, available at `available`, may not be restored from; `None` if it may.
fn refusal(
    policy: &Policy,
    inventory: &Inventory,
    repo_id: &RepoId,
    available: Timestamp,
    cond: &Conditions,
) -> Option<String> {
    let Some(repo) = policy.repository(repo_id.as_str()) else {
        return Some(format!(
            "copy at {repo_id}: the repository is not in the policy, so where it is is unknown"
        ));
    };
    match cond.kind {
        DrillScenarioKind::ComponentLoss => {}
        DrillScenarioKind::SiteLoss => {
            if let Some(lost) = &cond.lost_site
                && repo.site.as_ref() == Some(lost)
            {
                return Some(format!("copy at {repo_id} is at the lost site {lost}"));
            }
            if repo.location < Location::SameCity {
                return Some(format!(
                    "copy at {repo_id} is {}, so it is lost with the site",
                    repo.location
                ));
            }
        }
        DrillScenarioKind::Ransomware => {
            if !repo.immutable {
                return Some(format!(
                    "copy at {repo_id} is not immutable, so the attacker could have altered it"
                ));
            }
        }
    }
    if available > cond.t_disaster {
        return Some(format!(
            "copy at {repo_id} only available at {available}, {} after T_disaster",
            Human(available.duration_since(cond.t_disaster))
        ));
    }
    if let Some(failure) = inventory
        .checks(repo_id.as_str())
        .and_then(|c| c.distrusted_at(cond.t_disaster))
    {
        return Some(format!(
            "repository {repo_id} distrusted by a failed check since {}: {}",
            failure.started, failure.message
        ));
    }
    None
}

/// Seconds to restore `bytes` at `throughput` bytes per second (a past restore's), if known.
pub fn estimate_seconds(bytes: u64, throughput: Option<f64>) -> Option<f64> {
    throughput
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| bytes as f64 / t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::testkit::*;
    use crate::drill::testkit::{body, plan};
    use crate::run::{RunRecord, SourceStats};

    const OUTAGE: &str = "03-03 08:00";

    /// fin: a1, b2, c3 nightly with copies to offsite and vault (b2's vault copy failed and was
    /// caught up only at 09:00 on the 3rd, after T_disaster), d4 taken after T_disaster. hr: h1
    /// complete, h2 partial, both copied to city.
    fn runs() -> Vec<RunRecord> {
        let ok = Outcome::Success;
        let mut a1 = backup("fin", "a1", "03-01 02:00", "03-01 02:30", ok);
        a1.source = Some(SourceStats {
            bytes: 1_000_000,
            files: 120,
            ..SourceStats::default()
        });
        vec![
            a1,
            copy_all(
                "fin",
                "03-01 03:00",
                "03-01 04:00",
                &[("offsite", ok), ("vault", ok)],
            ),
            backup("fin", "b2", "03-02 02:00", "03-02 02:30", ok),
            copy_all(
                "fin",
                "03-02 03:00",
                "03-02 05:00",
                &[("offsite", ok), ("vault", Outcome::Failed)],
            ),
            backup("fin", "c3", "03-03 02:00", "03-03 02:30", ok),
            copy_all(
                "fin",
                "03-03 03:00",
                "03-03 09:00",
                &[("offsite", ok), ("vault", ok)],
            ),
            backup("fin", "d4", "03-03 10:00", "03-03 10:30", ok),
            backup("hr", "h1", "03-02 02:00", "03-02 02:30", ok),
            copy_all("hr", "03-02 03:00", "03-02 04:00", &[("city", ok)]),
            backup_with_snapshot("hr", "h2", "03-03 02:00", "03-03 02:30", Outcome::Partial),
            copy_all("hr", "03-03 03:00", "03-03 04:00", &[("city", ok)]),
        ]
    }

    fn cond(kind: DrillScenarioKind, compromise_at: Option<&str>, outage: &str) -> Conditions {
        Conditions {
            kind,
            lost_site: (kind == DrillScenarioKind::SiteLoss).then(|| "branch".parse().unwrap()),
            compromise_at: compromise_at.map(t),
            t_disaster: t(outage),
        }
    }

    /// `(chosen "snapshot@repository", passed over as "snapshot[@repository]: reason")`.
    fn check(
        policy: &Policy,
        runs: Vec<RunRecord>,
        system: &str,
        cond: &Conditions,
    ) -> (Option<String>, Vec<String>, Vec<String>) {
        let (inventory, errors) = Inventory::from_runs(&runs, policy);
        assert_eq!(errors, vec![]);
        let s = choose(policy, &inventory, &system.parse().unwrap(), cond);
        let chosen = s.chosen.map(|c| format!("{}@{}", c.snapshot, c.repository));
        let passed = s
            .passed_over
            .iter()
            .map(|p| match &p.repository {
                Some(r) => format!("{}@{r}: {}", p.snapshot, p.reason),
                None => format!("{}: {}", p.snapshot, p.reason),
            })
            .collect();
        (chosen, passed, s.reasons)
    }

    #[test]
    fn site_loss_never_uses_the_local_copy_nor_a_copy_late_for_t_disaster() {
        let (chosen, passed, reasons) = check(
            &policy(),
            runs(),
            "fin",
            &cond(DrillScenarioKind::SiteLoss, None, OUTAGE),
        );
        assert_eq!(chosen.as_deref(), Some("b2@offsite"));
        assert_eq!(
            passed,
            [
                "d4: captured after T_disaster",
                "c3@local: copy at local is local, so it is lost with the site",
                "c3@offsite: copy at offsite only available at 2026-03-03T09:00:00Z, 1h after \
                 T_disaster",
                "c3@vault: copy at vault only available at 2026-03-03T09:00:00Z, 1h after T_disaster",
            ]
        );
        assert!(reasons.is_empty());
    }

    #[test]
    fn choice_per_scenario_table() {
        let p = policy();
        let cases = [
            // Any copy: the newest snapshot, from the copy available first (the local one).
            (
                cond(DrillScenarioKind::ComponentLoss, None, OUTAGE),
                "fin",
                "c3@local",
            ),
            // Only immutable copies captured before the compromise (T_disaster − 30h).
            (
                cond(DrillScenarioKind::Ransomware, Some("03-02 02:00"), OUTAGE),
                "fin",
                "a1@vault",
            ),
            // Two copies available at once: the first in the system's chain.
            (
                cond(DrillScenarioKind::SiteLoss, None, "03-01 05:00"),
                "fin",
                "a1@offsite",
            ),
            // A partial backup never counts.
            (
                cond(DrillScenarioKind::ComponentLoss, None, OUTAGE),
                "hr",
                "h1@local",
            ),
            // Same-city copies survive the loss of the branch.
            (
                cond(DrillScenarioKind::SiteLoss, None, OUTAGE),
                "hr",
                "h1@city",
            ),
        ];
        for (cond, system, want) in cases {
            let (chosen, passed, _) = check(&p, runs(), system, &cond);
            assert_eq!(
                chosen.as_deref(),
                Some(want),
                "{system} {cond:?}: {passed:#?}"
            );
        }
    }

    #[test]
    fn ransomware_reasons() {
        let (_, passed, _) = check(
            &policy(),
            runs(),
            "fin",
            &cond(DrillScenarioKind::Ransomware, Some("03-02 02:00"), OUTAGE),
        );
        assert_eq!(
            passed,
            [
                "d4: captured after T_disaster",
                "c3: captured after the compromise at 2026-03-02T02:00:00Z",
                "b2: captured after the compromise at 2026-03-02T02:00:00Z",
            ]
        );
        let (_, passed, _) = check(
            &policy(),
            runs(),
            "hr",
            &cond(DrillScenarioKind::ComponentLoss, None, OUTAGE),
        );
        assert_eq!(passed, ["h2: incomplete backup (the run ended partial)"]);
    }

    /// A failed check of offsite before T_disaster distrusts it: the drill falls back to the
    /// immutable vault copy of the night before.
    #[test]
    fn a_repository_distrusted_at_t_disaster_is_not_restored_from() {
        let mut runs = runs();
        runs.push(check_run(
            "offsite",
            "03-02 06:00",
            "03-02 07:00",
            Outcome::Failed,
            "integrity",
        ));
        let (chosen, passed, _) = check(
            &policy(),
            runs,
            "fin",
            &cond(DrillScenarioKind::SiteLoss, None, OUTAGE),
        );
        assert_eq!(chosen.as_deref(), Some("a1@vault"));
        assert!(
            passed.contains(
                &"b2@offsite: repository offsite distrusted by a failed check since \
                  2026-03-02T06:00:00Z: 2 errors: pack 1a2b hash mismatch"
                    .to_string()
            ),
            "{passed:#?}"
        );
    }

    #[test]
    fn no_restore_point_says_why() {
        let mut p = policy();
        // The same-city repository stands at the lost site itself.
        p.repositories.get_mut("city").unwrap().site = Some("branch".parse().unwrap());
        let site_loss = cond(DrillScenarioKind::SiteLoss, None, OUTAGE);
        let (chosen, passed, reasons) = check(&p, runs(), "hr", &site_loss);
        assert_eq!(chosen, None);
        assert_eq!(
            passed,
            [
                "h2: incomplete backup (the run ended partial)",
                "h1@local: copy at local is local, so it is lost with the site",
                "h1@city: copy at city is at the lost site branch",
            ]
        );
        assert_eq!(
            reasons,
            [
                "No snapshot of hr has a complete copy the site-loss scenario allows by T_disaster \
              (2026-03-03T08:00:00Z)."
            ]
        );
        let (_, _, reasons) = check(&p, runs(), "ops", &site_loss);
        assert_eq!(reasons, ["No backup of ops has been recorded."]);
        let (_, _, reasons) = check(&p, runs(), "ghost", &site_loss);
        assert_eq!(reasons, ["System ghost is not in the policy in force."]);
    }

    #[test]
    fn the_restore_point_carries_what_the_record_needs() {
        let p = policy();
        let (inventory, _) = Inventory::from_runs(&runs(), &p);
        let c = cond(DrillScenarioKind::Ransomware, Some("03-02 02:00"), OUTAGE);
        let point = choose(&p, &inventory, &"fin".parse().unwrap(), &c)
            .chosen
            .unwrap();
        assert_eq!(
            point,
            RestorePoint {
                system: "fin".parse().unwrap(),
                snapshot: "a1".into(),
                repository: repo_id("vault"),
                location: Location::Remote,
                immutable: true,
                t_cap: t("03-01 02:00"),
                t_avail: t("03-01 04:00"),
                bytes: Some(1_000_000),
                files: Some(120),
            }
        );
    }

    #[test]
    fn conditions_of_a_plan() {
        let outage = t(OUTAGE);
        let ransomware = plan(
            "r",
            &body(
                "restore-test",
                r#"{ kind = "ransomware", compromised-for = "30h" }"#,
                r#"{ systems = ["fin"] }"#,
            ),
        );
        let c = Conditions::of(&ransomware, outage);
        assert_eq!(c.compromise_at, Some(t("03-02 02:00")));
        assert_eq!(
            c.allowed_copies(),
            "complete copies at immutable repositories, captured before the compromise at \
             2026-03-02T02:00:00Z"
        );
        let site = plan(
            "s",
            &body(
                "restore-test",
                r#"{ kind = "site-loss", lost-site = "branch" }"#,
                "{}",
            ),
        );
        let c = Conditions::of(&site, outage);
        assert_eq!(
            (c.lost_site.as_ref().map(|s| s.as_str()), c.compromise_at),
            (Some("branch"), None)
        );
    }

    #[test]
    fn estimate_table() {
        let cases = [
            (1_000, Some(100.0), Some(10.0)),
            (1_000, None, None),
            (1_000, Some(0.0), None),
            (1_000, Some(f64::NAN), None),
            (0, Some(50.0), Some(0.0)),
        ];
        for (bytes, throughput, want) in cases {
            assert_eq!(
                estimate_seconds(bytes, throughput),
                want,
                "{bytes} {throughput:?}"
            );
        }
    }
}
