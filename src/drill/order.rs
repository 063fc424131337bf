//! Which systems a drill covers and in which order they are restored: the scope of a plan, the
//! sample actually restored (`sample-per-tier`), the restore order (strictest tier first, never
//! before a dependency) and each system's prerequisites.
//!
//! Reads only the policy and the plan. Running the order (parallelism, failures) is the state
//! machine's job.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use crate::policy::{DrillPlan, Policy, SystemId, TierId};

/// The systems `plan` covers, in id order: the systems at its scope's `sites` and those named in
/// `systems` (when both are empty: the lost site's systems, or the lost system), narrowed to
/// `tiers` when given, minus `exclude`. Names not in the policy are dropped (the plan's
/// validation reports them).
pub fn in_scope(policy: &Policy, plan: &DrillPlan) -> Vec<SystemId> {
    // One definition of the scope, shared with the policy's validation.
    plan.systems_in_scope(policy.systems.values())
        .into_iter()
        .map(|s| s.id.clone())
        .collect()
}

fn tier_of<'p>(policy: &'p Policy, system: &SystemId) -> Option<&'p TierId> {
    policy.systems.get(system).map(|s| &s.tier)
}

/// Splits `systems` into those restored and those only extrapolated: with `per_tier = Some(n)`
/// the first `n` of each tier in id order are restored (deterministic, so a re-run drills the
/// same sample); without it, all of them.
pub fn sample(
    policy: &Policy,
    systems: &[SystemId],
    per_tier: Option<u32>,
) -> (Vec<SystemId>, Vec<SystemId>) {
    let Some(n) = per_tier else {
        return (systems.to_vec(), Vec::new());
    };
    let mut sorted: Vec<&SystemId> = systems.iter().collect();
    sorted.sort();
    let mut taken: BTreeMap<Option<&TierId>, u32> = BTreeMap::new();
    let (mut restored, mut extrapolated) = (Vec::new(), Vec::new());
    for id in sorted {
        let count = taken.entry(tier_of(policy, id)).or_default();
        if *count < n {
            *count += 1;
            restored.push(id.clone());
        } else {
            extrapolated.push(id.clone());
        }
    }
    (restored, extrapolated)
}

/// How urgent a tier is: its business RTO, then its id. Unknown tiers come last.
fn urgency(policy: &Policy, system: &SystemId) -> (StdDuration, Option<TierId>) {
    let tier = tier_of(policy, system);
    let rto = tier
        .and_then(|t| policy.tiers.get(t))
        .map_or(StdDuration::MAX, |t| t.rto_business.as_std());
    (rto, tier.cloned())
}

/// The restore order of `systems`: the strictest tier first (by `rto-business`, then tier id,
/// then system id), and never a system before one of its in-scope `depends_on`. Where the two
/// conflict the dependency wins, and the dependency is pulled forward with the urgency of the
/// most urgent system waiting for it (a T0 system's T2 database is restored first, not after
/// every T1 system). A dependency cycle (refused by plan validation) is broken at its most
/// urgent member.
pub fn restore_order(policy: &Policy, systems: &[SystemId]) -> Vec<SystemId> {
    let scope: BTreeSet<&SystemId> = systems.iter().collect();
    let deps = prerequisites(policy, systems);
    // Effective urgency: the most urgent of the system and everything that (transitively)
    // waits for it. Propagated until nothing changes (at most |scope| rounds).
    let mut key: BTreeMap<&SystemId, (StdDuration, Option<TierId>)> =
        scope.iter().map(|id| (*id, urgency(policy, id))).collect();
    for _ in 0..scope.len() {
        let mut changed = false;
        for (id, ds) in &deps {
            let Some(k) = key.get(id).cloned() else {
                continue;
            };
            for d in ds {
                if let Some(dk) = key.get_mut(d)
                    && k < *dk
                {
                    *dk = k.clone();
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut waiting: BTreeMap<&SystemId, usize> =
        deps.iter().map(|(id, ds)| (id, ds.len())).collect();
    let mut done: BTreeSet<&SystemId> = BTreeSet::new();
    let mut order = Vec::with_capacity(scope.len());
    while order.len() < scope.len() {
        let pick = |ready_only: bool| {
            scope
                .iter()
                .filter(|id| !done.contains(*id))
                .filter(|id| !ready_only || waiting.get(*id).is_none_or(|n| *n == 0))
                .min_by(|a, b| key[*a].cmp(&key[*b]).then_with(|| a.cmp(b)))
                .copied()
        };
        let Some(next) = pick(true).or_else(|| pick(false)) else {
            break;
        };
        done.insert(next);
        order.push(next.clone());
        for (id, ds) in &deps {
            if ds.contains(next)
                && let Some(n) = waiting.get_mut(id)
            {
                *n = n.saturating_sub(1);
            }
        }
    }
    order
}

/// Each system's in-scope `depends_on` (direct ones only), for every system of `systems`.
pub fn prerequisites(policy: &Policy, systems: &[SystemId]) -> BTreeMap<SystemId, Vec<SystemId>> {
    let scope: BTreeSet<&SystemId> = systems.iter().collect();
    systems
        .iter()
        .map(|id| {
            let deps = policy
                .systems
                .get(id)
                .map(|s| {
                    let unique: BTreeSet<&SystemId> = s
                        .depends_on
                        .iter()
                        .filter(|d| scope.contains(d) && *d != id)
                        .collect();
                    unique.into_iter().cloned().collect()
                })
                .unwrap_or_default();
            (id.clone(), deps)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::testkit::policy;
    use crate::drill::testkit::{body, plan};

    fn ids(v: &[&str]) -> Vec<SystemId> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// The test policy plus `core` (T0) and `db` (T2), all at `branch`, with `deps` as
    /// `(system, depends-on)` pairs.
    fn policy_with(deps: &[(&str, &str)]) -> Policy {
        let mut p = policy();
        let template = p.systems["fin"].clone();
        for (id, tier) in [("core", "T0"), ("db", "T2")] {
            let mut s = template.clone();
            s.id = id.parse().unwrap();
            s.tier = tier.parse().unwrap();
            p.systems.insert(s.id.clone(), s);
        }
        for (system, dep) in deps {
            let s = p.systems.get_mut(*system).unwrap();
            s.depends_on.push(dep.parse().unwrap());
        }
        p
    }

    #[test]
    fn scope_table() {
        let p = policy();
        let site_loss = r#"{ kind = "site-loss", lost-site = "branch" }"#;
        let cases: &[(&str, &str, &[&str])] = &[
            (site_loss, "{}", &["fin", "hr", "ops"]),
            (site_loss, r#"{ tiers = ["T2"] }"#, &["hr", "ops"]),
            (site_loss, r#"{ exclude = ["ops"] }"#, &["fin", "hr"]),
            (site_loss, r#"{ systems = ["fin"] }"#, &["fin"]),
            (site_loss, r#"{ sites = ["dc"] }"#, &[]),
            (
                site_loss,
                r#"{ sites = ["branch"], systems = ["ghost"], tiers = ["T1", "T2"], exclude = ["hr"] }"#,
                &["fin", "ops"],
            ),
            (
                r#"{ kind = "component-loss", system = "hr" }"#,
                "{}",
                &["hr"],
            ),
            (
                r#"{ kind = "ransomware", compromised-for = "72h" }"#,
                r#"{ systems = ["fin", "hr"] }"#,
                &["fin", "hr"],
            ),
        ];
        for (scenario, scope, want) in cases {
            let plan = plan("d", &body("restore-test", scenario, scope));
            assert_eq!(in_scope(&p, &plan), ids(want), "{scenario} {scope}");
        }
    }

    #[test]
    fn sample_keeps_the_first_of_each_tier_in_id_order() {
        let p = policy_with(&[]);
        let all = ids(&["ops", "hr", "fin", "db", "core"]);
        let cases: &[(Option<u32>, &[&str], &[&str])] = &[
            (None, &["ops", "hr", "fin", "db", "core"], &[]),
            (Some(1), &["core", "db", "fin"], &["hr", "ops"]),
            (Some(2), &["core", "db", "fin", "hr"], &["ops"]),
            (Some(5), &["core", "db", "fin", "hr", "ops"], &[]),
        ];
        for (n, restored, extrapolated) in cases {
            assert_eq!(
                sample(&p, &all, *n),
                (ids(restored), ids(extrapolated)),
                "{n:?}"
            );
        }
    }

    #[test]
    fn restore_order_table() {
        let all = ["core", "db", "fin", "hr", "ops"];
        type Deps = [(&'static str, &'static str)];
        let cases: &[(&Deps, &[&str], &[&str])] = &[
            // Strictest tier first (T0 4h, T1 12h, T2 48h business RTO), then id.
            (&[], &all, &["core", "fin", "db", "hr", "ops"]),
            // The T0 system needs the T2 database: the database goes first, ahead of T1.
            (&[("core", "db")], &all, &["db", "core", "fin", "hr", "ops"]),
            // Transitively: core → hr → ops.
            (
                &[("core", "hr"), ("hr", "ops")],
                &all,
                &["ops", "hr", "core", "fin", "db"],
            ),
            // A dependency outside the scope is assumed available.
            (&[("core", "db")], &["core", "fin"], &["core", "fin"]),
            // A cycle (refused by validation) still yields every system once: what is ready
            // goes first, then the cycle is broken at its most urgent member.
            (
                &[("fin", "hr"), ("hr", "fin")],
                &["fin", "hr", "ops"],
                &["ops", "fin", "hr"],
            ),
        ];
        for (deps, systems, want) in cases {
            let p = policy_with(deps);
            assert_eq!(
                restore_order(&p, &ids(systems)),
                ids(want),
                "{deps:?} {systems:?}"
            );
        }
    }

    #[test]
    fn prerequisites_are_direct_in_scope_dependencies() {
        let p = policy_with(&[
            ("core", "db"),
            ("core", "db"),
            ("core", "fin"),
            ("fin", "hr"),
        ]);
        let got = prerequisites(&p, &ids(&["core", "db", "fin"]));
        let want: BTreeMap<SystemId, Vec<SystemId>> = [
            ("core", ids(&["db", "fin"])),
            ("db", vec![]),
            ("fin", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v))
        .collect();
        assert_eq!(got, want);
    }
}
