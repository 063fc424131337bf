//! When drills are due: each plan by its cadence, the regulatory calendar (an annual targeted
//! switch-over, 114号 第34条, and a full switch-over with fail-back at least every three
//! years), and the systems never drilled or overdue for their tier's `drill-every`.
//!
//! A pure function of the policy, the history of finished drills and `now`. Only drills that
//! did not fail count as done: a failed drill leaves its plan (and its systems) due, because the
//! requirement it was meant to show is still unshown. Starting or scheduling drills is the
//! coordinator's.

use jiff::{SignedDuration, Span, Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};

use super::measure::Verdict;
use super::order::in_scope;
use crate::assess::{Human, plus, signed};
use crate::policy::{DrillId, DrillType, Duration, Policy, SystemId};

/// One finished drill, as the calendar needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillHistoryItem {
    pub plan: DrillId,
    pub drill_type: DrillType,
    pub finished_at: Timestamp,
    pub verdict: Verdict,
    /// The systems restored (not those only extrapolated).
    pub systems: Vec<SystemId>,
    /// Those of `systems` whose result was `fail`.
    #[serde(default)]
    pub failed: Vec<SystemId>,
}

impl DrillHistoryItem {
    fn counts(&self) -> bool {
        self.verdict != Verdict::Fail
    }
}

/// A plan and when it is next due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueDrill {
    pub plan: DrillId,
    /// `last_at + cadence`, or `now` when the plan never ran without failing.
    pub due_at: Timestamp,
    pub last_at: Option<Timestamp>,
    pub overdue: bool,
    /// Where the cadence comes from, in words.
    pub basis: String,
}

/// Every plan with a cadence, soonest due first. A plan without `every` is due by the strictest
/// `drill-every` of the tiers of its systems in scope; a plan with neither is not listed.
pub fn due(policy: &Policy, history: &[DrillHistoryItem], now: Timestamp) -> Vec<DueDrill> {
    let mut out: Vec<DueDrill> = policy
        .drills
        .values()
        .filter_map(|plan| {
            let (cadence, basis) = match plan.every {
                Some(every) => (
                    every,
                    format!("every {} (the plan's own cadence)", show(every)),
                ),
                None => {
                    let systems = in_scope(policy, plan);
                    let (every, tier) = systems
                        .iter()
                        .filter_map(|id| policy.systems.get(id))
                        .filter_map(|s| policy.tiers.get(&s.tier))
                        .map(|t| (t.drill_every, &t.id))
                        .min()?;
                    (
                        every,
                        format!(
                            "every {}: the drill-every of tier {tier}, the strictest in scope",
                            show(every)
                        ),
                    )
                }
            };
            let last_at = history
                .iter()
                .filter(|h| h.plan == plan.id && h.counts())
                .map(|h| h.finished_at)
                .max();
            let due_at = last_at.map_or(now, |l| plus(l, signed(cadence)));
            Some(DueDrill {
                plan: plan.id.clone(),
                due_at,
                last_at,
                overdue: due_at <= now,
                basis,
            })
        })
        .collect();
    out.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.plan.cmp(&b.plan)));
    out
}

fn show(d: Duration) -> Human {
    Human(signed(d))
}

/// One requirement of the regulatory calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegulatoryItem {
    pub requirement: String,
    pub last_at: Option<Timestamp>,
    /// One (or three) calendar years after `last_at` (UTC), or `now` when never done.
    pub due_at: Timestamp,
    pub overdue: bool,
}

pub const ANNUAL_TARGETED: &str = "annual targeted switch-over (114号 第34条)";
pub const TRIENNIAL_FULL: &str = "full switch-over with fail-back every 3 years";

/// The regulatory calendar: the annual targeted switch-over (a full switch-over counts too) and
/// the full switch-over with fail-back every three years. Restore tests count for neither.
pub fn regulatory(history: &[DrillHistoryItem], now: Timestamp) -> Vec<RegulatoryItem> {
    let last = |types: &[DrillType]| {
        history
            .iter()
            .filter(|h| h.counts() && types.contains(&h.drill_type))
            .map(|h| h.finished_at)
            .max()
    };
    let item = |requirement: &str, last_at: Option<Timestamp>, years: i64| {
        let due_at = last_at.map_or(now, |l| add_years(l, years));
        RegulatoryItem {
            requirement: requirement.to_string(),
            last_at,
            due_at,
            overdue: due_at <= now,
        }
    };
    vec![
        item(
            ANNUAL_TARGETED,
            last(&[DrillType::TargetedSwitchover, DrillType::FullSwitchover]),
            1,
        ),
        item(TRIENNIAL_FULL, last(&[DrillType::FullSwitchover]), 3),
    ]
}

/// `t` plus whole calendar years in UTC (29 February goes to 28 February); 365 days a year if
/// the calendar runs out.
fn add_years(t: Timestamp, years: i64) -> Timestamp {
    t.to_zoned(TimeZone::UTC)
        .checked_add(Span::new().years(years))
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| plus(t, SignedDuration::from_hours(24 * 365 * years)))
}

/// A system never drilled or overdue for its tier's `drill-every`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemDrillDue {
    pub system: SystemId,
    /// The last drill that restored it without failing it.
    pub last_at: Option<Timestamp>,
    pub due_at: Timestamp,
}

/// Every system of the policy never drilled (restored by a drill that did not fail it) or
/// overdue for its tier's `drill-every` at `now`, in id order. Every drill type counts: each
/// restores to the standby site.
pub fn never_drilled_or_overdue(
    policy: &Policy,
    history: &[DrillHistoryItem],
    now: Timestamp,
) -> Vec<SystemDrillDue> {
    policy
        .systems
        .values()
        .filter_map(|s| {
            let tier = policy.tiers.get(&s.tier)?;
            let last_at = history
                .iter()
                .filter(|h| h.systems.contains(&s.id) && !h.failed.contains(&s.id))
                .map(|h| h.finished_at)
                .max();
            let due_at = last_at.map_or(now, |l| plus(l, signed(tier.drill_every)));
            (due_at <= now).then(|| SystemDrillDue {
                system: s.id.clone(),
                last_at,
                due_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::testkit::policy;
    use crate::drill::testkit::{body, plan, with_plans};

    fn at(s: &str) -> Timestamp {
        format!("{s}T00:00:00Z").parse().unwrap()
    }

    fn item(
        plan: &str,
        drill_type: DrillType,
        finished: &str,
        verdict: Verdict,
    ) -> DrillHistoryItem {
        DrillHistoryItem {
            plan: plan.parse().unwrap(),
            drill_type,
            finished_at: at(finished),
            verdict,
            systems: Vec::new(),
            failed: Vec::new(),
        }
    }

    const NOW: &str = "2026-03-05";

    #[test]
    fn plans_due_by_their_own_cadence_or_the_strictest_tier() {
        let mut p = policy();
        p.tiers.get_mut("T2").unwrap().drill_every = "90d".parse().unwrap();
        let site_loss = r#"{ kind = "site-loss", lost-site = "branch" }"#;
        let annual = plan(
            "annual",
            &format!(
                "every = \"365d\"\n{}",
                body("targeted-switchover", site_loss, "{}")
            ),
        );
        let tiered = plan(
            "tiered",
            &body("restore-test", site_loss, r#"{ systems = ["fin", "hr"] }"#),
        );
        let never = plan(
            "never",
            &body("restore-test", site_loss, r#"{ systems = ["fin"] }"#),
        );
        let nothing = plan(
            "nothing",
            &body(
                "restore-test",
                r#"{ kind = "component-loss", system = "ghost" }"#,
                "{}",
            ),
        );
        let p = with_plans(p, vec![annual, tiered, never, nothing]);
        let history = [
            item(
                "annual",
                DrillType::TargetedSwitchover,
                "2025-03-01",
                Verdict::Pass,
            ),
            // A failed drill leaves the plan due.
            item(
                "annual",
                DrillType::TargetedSwitchover,
                "2026-01-10",
                Verdict::Fail,
            ),
            item(
                "tiered",
                DrillType::RestoreTest,
                "2026-02-01",
                Verdict::PassWithConditions,
            ),
        ];
        let got: Vec<(String, Timestamp, Option<Timestamp>, bool, String)> =
            due(&p, &history, at(NOW))
                .into_iter()
                .map(|d| (d.plan.to_string(), d.due_at, d.last_at, d.overdue, d.basis))
                .collect();
        assert_eq!(
            got,
            [
                (
                    "annual".into(),
                    at("2026-03-01"),
                    Some(at("2025-03-01")),
                    true,
                    "every 365d (the plan's own cadence)".into()
                ),
                (
                    "never".into(),
                    at(NOW),
                    None,
                    true,
                    "every 365d: the drill-every of tier T1, the strictest in scope".into()
                ),
                (
                    "tiered".into(),
                    at("2026-05-02"),
                    Some(at("2026-02-01")),
                    false,
                    "every 90d: the drill-every of tier T2, the strictest in scope".into()
                ),
            ]
        );
    }

    #[test]
    fn regulatory_calendar_table() {
        use DrillType::*;
        use Verdict::*;
        type Row = (Option<Timestamp>, Timestamp, bool);
        type Done = [(DrillType, &'static str, Verdict)];
        let cases: &[(&str, &Done, Row, Row)] = &[
            (
                "nothing done",
                &[(RestoreTest, "2026-01-01", Pass)],
                (None, at(NOW), true),
                (None, at(NOW), true),
            ),
            (
                "a targeted drill last summer, a full one three years ago",
                &[
                    (TargetedSwitchover, "2025-06-01", Pass),
                    (FullSwitchover, "2023-02-01", PassWithConditions),
                    (FullSwitchover, "2025-12-01", Fail),
                ],
                (Some(at("2025-06-01")), at("2026-06-01"), false),
                (Some(at("2023-02-01")), at("2026-02-01"), true),
            ),
            (
                "a full switch-over counts as the annual targeted one",
                &[
                    (TargetedSwitchover, "2024-06-01", Pass),
                    (FullSwitchover, "2025-09-01", Pass),
                ],
                (Some(at("2025-09-01")), at("2026-09-01"), false),
                (Some(at("2025-09-01")), at("2028-09-01"), false),
            ),
            (
                "29 February plus a year",
                &[(TargetedSwitchover, "2024-02-29", Pass)],
                (Some(at("2024-02-29")), at("2025-02-28"), true),
                (None, at(NOW), true),
            ),
        ];
        for (name, drills, annual, full) in cases {
            let history: Vec<DrillHistoryItem> = drills
                .iter()
                .map(|(ty, when, v)| item("p", *ty, when, *v))
                .collect();
            let reg = regulatory(&history, at(NOW));
            let got: Vec<(&str, Row)> = reg
                .iter()
                .map(|r| (r.requirement.as_str(), (r.last_at, r.due_at, r.overdue)))
                .collect();
            assert_eq!(
                got,
                [(ANNUAL_TARGETED, *annual), (TRIENNIAL_FULL, *full)],
                "{name}"
            );
        }
    }

    #[test]
    fn systems_never_drilled_or_overdue() {
        let p = policy();
        let ids = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<SystemId>>()
        };
        let history = [
            DrillHistoryItem {
                systems: ids(&["fin", "hr"]),
                failed: ids(&["hr"]),
                ..item("a", DrillType::RestoreTest, "2026-01-01", Verdict::Fail)
            },
            DrillHistoryItem {
                systems: ids(&["ops"]),
                ..item("b", DrillType::RestoreTest, "2024-12-01", Verdict::Pass)
            },
        ];
        let got = never_drilled_or_overdue(&p, &history, at(NOW));
        assert_eq!(
            got,
            [
                // hr failed its only drill: never drilled successfully.
                SystemDrillDue {
                    system: "hr".parse().unwrap(),
                    last_at: None,
                    due_at: at(NOW),
                },
                SystemDrillDue {
                    system: "ops".parse().unwrap(),
                    last_at: Some(at("2024-12-01")),
                    due_at: at("2025-12-01"),
                },
            ]
        );
    }
}
