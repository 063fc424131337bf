//! Fleet summary: for one scenario, how many systems of each tier are compliant, at risk,
//! breached or without evidence — the first table of the management report and the dashboard.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SystemAssessment;
use super::rpo::Status;
use super::scenario::Scenario;
use crate::policy::{Policy, TierId};

/// Systems per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub compliant: u32,
    pub at_risk: u32,
    pub breached: u32,
    pub no_evidence: u32,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        let n = match status {
            Status::Compliant => &mut self.compliant,
            Status::AtRisk => &mut self.at_risk,
            Status::Breached => &mut self.breached,
            Status::NoEvidence => &mut self.no_evidence,
        };
        *n = n.saturating_add(1);
    }

    pub fn total(&self) -> u32 {
        self.compliant
            .saturating_add(self.at_risk)
            .saturating_add(self.breached)
            .saturating_add(self.no_evidence)
    }

    /// Compliant share of the systems with evidence, in percent (`None` when there are none).
    pub fn compliant_percent(&self) -> Option<f64> {
        let measured = self.total() - self.no_evidence;
        (measured > 0).then(|| 100.0 * f64::from(self.compliant) / f64::from(measured))
    }
}

/// Counts per tier for one scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetSummary {
    pub scenario: Scenario,
    /// Every tier of the policy, also those without systems.
    pub tiers: BTreeMap<TierId, StatusCounts>,
    pub total: StatusCounts,
}

impl FleetSummary {
    /// An empty summary listing every tier of `policy`.
    pub fn new(policy: &Policy, scenario: Scenario) -> Self {
        FleetSummary {
            scenario,
            tiers: policy
                .tiers
                .keys()
                .map(|t| (t.clone(), StatusCounts::default()))
                .collect(),
            total: StatusCounts::default(),
        }
    }

    /// Counts one system.
    pub fn add(&mut self, tier: &TierId, status: Status) {
        match self.tiers.get_mut(tier) {
            Some(counts) => counts.add(status),
            None => {
                let mut counts = StatusCounts::default();
                counts.add(status);
                self.tiers.insert(tier.clone(), counts);
            }
        }
        self.total.add(status);
    }

    /// The summary of assessed systems.
    pub fn of<'a>(
        policy: &Policy,
        scenario: Scenario,
        assessments: impl IntoIterator<Item = &'a SystemAssessment>,
    ) -> Self {
        let mut summary = FleetSummary::new(policy, scenario);
        for a in assessments {
            summary.add(&a.tier, a.rpo(scenario).status);
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::run::Outcome;

    /// `fin` (T1) is breached for site loss (its off-site copy failed), `hr` (T2) compliant
    /// (same-city counts for T2), `ops` (T2) breached (local only); nothing in T0.
    #[test]
    fn fleet_summary_counts_per_tier() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
            copy_all(
                "fin",
                "03-01 02:30",
                "03-01 02:40",
                &[("offsite", Outcome::Failed)],
            ),
            backup(
                "hr",
                "bbbb2222",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
            copy_all(
                "hr",
                "03-01 02:30",
                "03-01 02:40",
                &[("city", Outcome::Success)],
            ),
            backup(
                "ops",
                "cccc3333",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
        ]);
        let all: Vec<SystemAssessment> = fx.assessor().all(t("03-01 06:00")).collect();
        let site = FleetSummary::of(&fx.policy, Scenario::SiteLoss, &all);
        let counts = |tier: &str| site.tiers[&tier_id(tier)];
        assert_eq!(
            counts("T1"),
            StatusCounts {
                breached: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            counts("T2"),
            StatusCounts {
                compliant: 1,
                breached: 1,
                ..Default::default()
            }
        );
        assert_eq!(counts("T0"), StatusCounts::default());
        assert_eq!(site.total.total(), 3);
        assert_eq!(counts("T2").compliant_percent(), Some(50.0));

        let component = FleetSummary::of(&fx.policy, Scenario::ComponentLoss, &all);
        assert_eq!(
            component.total,
            StatusCounts {
                compliant: 2,
                at_risk: 1,
                ..Default::default()
            }
        );
    }
}
