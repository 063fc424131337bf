//! Which snapshot, from which repository, each system of a drill is restored from (standards
//! §3.2 drill-achieved RPO; pitfalls §3.5 2–4 and 8): the newest complete snapshot with a copy
//! the scenario allows, available there by `T_outage` and not distrusted by a failed check —
//! and, for every newer candidate passed over, why.
//!
//! Reads the evidence ([`Inventory`]) and the policy; decides nothing else (readiness, order
//! and execution are the orchestrator's). No clock: `T_outage` is an input.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::assess::{Human, Inventory, SystemEvidence, plus, signed};
use crate::policy::{DrillPlan, DrillScenarioKind, Location, Policy, RepoId, SiteId, SystemId};

/// The conditions a drill restores under: its scenario at `T_outage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub kind: DrillScenarioKind,
    /// `site-loss`: the lost site.
    pub lost_site: Option<SiteId>,
    /// `ransomware`: `T_outage − compromised-for`; only snapshots captured before it count.
    pub compromise_at: Option<Timestamp>,
    pub t_outage: Timestamp,
}

impl Conditions {
    /// The conditions of `plan` started at `t_outage`.
    pub fn of(plan: &DrillPlan, t_outage: Timestamp) -> Self {
        let compromise_at = match plan.scenario.kind {
            DrillScenarioKind::Ransomware => Some(
                plan.scenario
                    .compromised_for
                    .map_or(t_outage, |d| plus(t_outage, -signed(d))),
            ),
            _ => None,
        };
        Conditions {
            kind: plan.scenario.kind,
            lost_site: plan.scenario.lost_site.clone(),
            compromise_at,
            t_outage,
        }
    }

    /// The copies these conditions allow, in words (for the record's scenario section).
    pub fn allowed_copies(&self) -> String {
        match self.kind {
            DrillScenarioKind::ComponentLoss => {
                "any complete copy available by T_outage".to_string()
            }
            DrillScenarioKind::SiteLoss => format!(
                "complete copies available by T_outage at repositories off the lost site{}, \
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
                format!("incomplete backup (the run ended {:?})", capture.outcome).to_lowercase(),
            ));
            continue;
        }
        if capture.captured > cond.t_outage {
            selection
                .passed_over
                .push(passed(None, "captured after T_outage".to_string()));
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
        "No snapshot of {system} has a complete copy the {} scenario allows by T_outage ({}).",
        scenario_name(cond.kind),
        cond.t_outage
    ));
    selection
}

fn scenario_name(kind: DrillScenarioKind) -> String {
    kind.to_string()
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
    if available > cond.t_outage {
        return Some(format!(
            "copy at {repo_id} only available at {available}, {} after T_outage",
            Human(available.duration_since(cond.t_outage))
        ));
    }
    if let Some(failure) = inventory
        .checks(repo_id.as_str())
        .and_then(|c| c.distrusted_at(cond.t_outage))
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
