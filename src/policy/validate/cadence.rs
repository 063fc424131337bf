//! Schedules against the tier: each job the tier's targets depend on must exist and run often
//! enough. Gaps between runs are a property of the cron text, measured over a fixed sample year
//! (not today's date), so `policy check` gives the same answer every day.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use super::{At, Ctx, i, k};
use crate::policy::cron::Cron;
use crate::policy::load::Section;
use crate::policy::model::{JobKind, System, Tier};
use crate::policy::types::Duration;

/// How far apart the runs of a set of schedules fall at worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Never,
    AtMost(StdDuration),
}

/// The sample: a fixed year starting 2025-01-01 UTC. Schedule gaps are a property of the cron
/// text, not of today's date; a fixed sample keeps `policy check` reproducible.
const SAMPLE_START: i64 = 1_735_689_600;
const SAMPLE_DAYS: i64 = 400;
/// Runs taken per schedule; a frequent schedule shortens the sample instead of the check.
const SAMPLE_RUNS: usize = 2_000;

/// [`max_gap`], remembered per set of cron expressions: a fleet's systems share a handful of
/// schedules, and sampling a frequent one costs thousands of steps (5,000 systems took a minute
/// before). Bounded: cleared when it grows past a size no real policy reaches.
fn max_gap_cached(crons: &[&Cron]) -> Gap {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static GAPS: RefCell<HashMap<Vec<String>, Gap>> = RefCell::new(HashMap::new());
    }
    let mut key: Vec<String> = crons.iter().map(|c| c.expression().to_owned()).collect();
    key.sort_unstable();
    key.dedup();
    if let Some(gap) = GAPS.with(|g| g.borrow().get(&key).copied()) {
        return gap;
    }
    let gap = max_gap(crons);
    GAPS.with(|g| {
        let mut g = g.borrow_mut();
        if g.len() >= 10_000 {
            g.clear();
        }
        g.insert(key, gap);
    });
    gap
}

fn max_gap(crons: &[&Cron]) -> Gap {
    let Some(start) = chrono::DateTime::from_timestamp(SAMPLE_START, 0) else {
        return Gap::Never;
    };
    let mut horizon = SAMPLE_START + SAMPLE_DAYS * 86_400;
    let mut runs: Vec<i64> = Vec::new();
    for cron in crons {
        let mut mine: Vec<i64> = Vec::new();
        for t in cron.schedule().after(&start).take(SAMPLE_RUNS) {
            if t.timestamp() > horizon {
                break;
            }
            mine.push(t.timestamp());
        }
        if mine.len() == SAMPLE_RUNS {
            horizon = horizon.min(mine.last().copied().unwrap_or(horizon));
        }
        runs.extend(mine);
    }
    runs.retain(|t| *t <= horizon);
    runs.sort_unstable();
    runs.dedup();
    match runs.as_slice() {
        [] => Gap::Never,
        [only] => Gap::AtMost(StdDuration::from_secs(
            u64::try_from(horizon - only).unwrap_or(0).max(86_400 * 365),
        )),
        _ => {
            let widest = runs.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            Gap::AtMost(StdDuration::from_secs(u64::try_from(widest).unwrap_or(0)))
        }
    }
}

fn show(d: StdDuration) -> String {
    Duration::from_secs(d.as_secs()).map_or_else(|| "0s".to_owned(), |d| d.to_string())
}

/// A job a system must schedule: how often at least (if the tier says), and why it matters.
struct Requirement {
    job: JobKind,
    /// The longest allowed gap between runs, and the tier setting it comes from.
    within: Option<(Duration, String)>,
    /// What goes wrong without the job.
    why: String,
}

/// Each job the tier's targets depend on must be scheduled often enough: backups and copies
/// within the RPO (the copy to off-site sets the site-loss RPO), checks within `check-every`,
/// a full read of the data within `read-data-window`, and retention applied at all.
pub(super) fn check_schedules(ctx: &mut Ctx<'_, '_>, s: &System, tier: &Tier) {
    let id = s.id.as_str();
    let t = &tier.id;
    let mut requirements = vec![Requirement {
        job: JobKind::Backup,
        within: Some((tier.rpo, format!("tier {t}'s RPO of {}", tier.rpo))),
        why: "this system is never backed up".into(),
    }];
    if s.repositories.iter().collect::<BTreeSet<_>>().len() > 1 {
        requirements.push(Requirement {
            job: JobKind::Copy,
            within: Some((
                tier.rpo,
                format!(
                    "tier {t}'s RPO of {} (off-site copies set the site-loss RPO)",
                    tier.rpo
                ),
            )),
            why: "snapshots never reach the repositories after the first".into(),
        });
    }
    requirements.push(Requirement {
        job: JobKind::Check,
        within: Some((
            tier.check_every,
            format!("tier {t}'s check-every of {}", tier.check_every),
        )),
        why: format!(
            "tier {t} checks every repository every {}",
            tier.check_every
        ),
    });
    requirements.push(Requirement {
        job: JobKind::ReadData,
        within: Some((
            tier.read_data_window,
            format!("tier {t}'s read-data-window of {}", tier.read_data_window),
        )),
        why: format!(
            "tier {t} reads all data back within {}",
            tier.read_data_window
        ),
    });
    requirements.push(Requirement {
        job: JobKind::Forget,
        within: None,
        why: "the retention rules are never applied".into(),
    });

    for Requirement { job, within, why } in requirements {
        let indices: Vec<usize> = s
            .schedules
            .iter()
            .enumerate()
            .filter(|(_, sc)| sc.job == job)
            .map(|(n, _)| n)
            .collect();
        let Some(first) = indices.first().copied() else {
            ctx.report(
                Section::Systems,
                id,
                &[k("schedules")],
                At::Key,
                format!("no {job} schedule: {why}"),
                Some(format!(
                    "add [[systems.{id}.schedules]] with job = \"{job}\" and a cron"
                )),
            );
            continue;
        };
        let Some((limit, what)) = within else {
            continue;
        };
        let crons: Vec<&Cron> = indices
            .iter()
            .filter_map(|n| s.schedules.get(*n))
            .map(|sc| &sc.cron)
            .collect();
        let message = match max_gap_cached(&crons) {
            Gap::Never => format!("the {job} schedule never runs"),
            Gap::AtMost(gap) if gap > limit.as_std() => {
                format!(
                    "{job} runs are up to {} apart, longer than {what}",
                    show(gap)
                )
            }
            Gap::AtMost(_) => continue,
        };
        ctx.report(
            Section::Systems,
            id,
            &[k("schedules"), i(first), k("cron")],
            At::Value,
            message,
            Some(format!("run {job} at least every {limit}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_gaps_table() {
        let h = |n: u64| Gap::AtMost(StdDuration::from_secs(n * 3600));
        let cases: &[(&[&str], Gap)] = &[
            (&["0 30 1 * * *"], h(24)),
            (&["0 0 */4 * * *"], h(4)),
            (&["0 0 1 * * *", "0 0 13 * * *"], h(12)),
            (&["0 0 3 * * SUN"], h(24 * 7)),
            (&["*/15 * * * *"], Gap::AtMost(StdDuration::from_secs(900))),
            (
                &["*/15 * * * *", "@daily"],
                Gap::AtMost(StdDuration::from_secs(900)),
            ),
            (&["0 0 0 1 1 * 2020"], Gap::Never),
            (&["0 0 0 1 1 *"], h(24 * 365)),
        ];
        for (texts, want) in cases {
            let crons: Vec<Cron> = texts.iter().map(|t| t.parse().unwrap()).collect();
            let refs: Vec<&Cron> = crons.iter().collect();
            assert_eq!(max_gap(&refs), *want, "{texts:?}");
            // The cache gives the same answer, the first time and the next.
            assert_eq!(max_gap_cached(&refs), *want, "{texts:?}");
            assert_eq!(max_gap_cached(&refs), *want, "{texts:?}");
        }
    }
}
