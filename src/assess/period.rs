//! RPO over a period (standards §3.2, "RPO compliance for a period"): the worst exposure, the
//! share of time within target and the breaches, computed exactly.
//!
//! The exposure `E(t) = t − M(t)`, where `M(t)` is the capture time of the newest counted
//! snapshot at `t`. `M` is a step function: it rises when a newer capture becomes available at
//! a counted repository, and falls when a repository is distrusted by a failed check (or
//! becomes undefined when nothing counts). Between its steps `E` grows at one second per
//! second, so the period is cut at the steps and each piece is integrated in closed form — no
//! sampling. O(k log k) in the number of copies and distrust bounds of the counted
//! repositories.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::checks::Interval;
use super::reason::Exposure;
use super::scenario::Scenario;
use super::{SystemView, plus, signed};

/// A span of time `[start, end)` during which the exposure was above the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreachSpan {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl BreachSpan {
    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }
}

/// One system's exposure for one scenario over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodReport {
    pub scenario: Scenario,
    pub from: Timestamp,
    pub to: Timestamp,
    pub target: SignedDuration,
    /// The supremum of the exposure over the period.
    pub worst: Exposure,
    /// When it was reached: the exposure tends to `worst` just before this instant (or, when
    /// unbounded, became so here).
    pub worst_at: Timestamp,
    /// Total time with the exposure at or below the target.
    pub within_target: SignedDuration,
    /// `within_target` as a percentage of the period.
    pub within_percent: f64,
    /// Maximal spans above the target, in order.
    pub breaches: Vec<BreachSpan>,
}

impl PeriodReport {
    /// Total time above the target.
    pub fn breached_for(&self) -> SignedDuration {
        self.breaches.iter().fold(SignedDuration::ZERO, |acc, b| {
            acc.saturating_add(b.duration())
        })
    }
}

/// One counted repository: its staircase of newest captures, and when it was distrusted.
struct Lane<'a> {
    /// `(t_avail, newest capture available by then)`, both strictly increasing.
    stairs: Vec<(Timestamp, Timestamp)>,
    distrust: &'a [Interval],
}

impl Lane<'_> {
    fn value(&self, t: Timestamp) -> Option<Timestamp> {
        let i = self.distrust.partition_point(|s| s.from <= t);
        if i > 0 && self.distrust[i - 1].contains(t) {
            return None;
        }
        let j = self.stairs.partition_point(|&(at, _)| at <= t);
        j.checked_sub(1).map(|j| self.stairs[j].1)
    }
}

pub(crate) fn report(
    view: &SystemView<'_>,
    scenario: Scenario,
    from: Timestamp,
    to: Timestamp,
) -> PeriodReport {
    let target = signed(view.tier.rpo);
    let lanes = lanes(view, scenario);
    let m_at = |t: Timestamp| lanes.iter().filter_map(|l| l.value(t)).max();

    let mut cuts: Vec<Timestamp> = lanes
        .iter()
        .flat_map(|l| {
            l.stairs.iter().map(|&(at, _)| at).chain(
                l.distrust
                    .iter()
                    .flat_map(|s| std::iter::once(s.from).chain(s.until)),
            )
        })
        .filter(|&c| from < c && c < to)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();

    let mut acc = Accumulator {
        target,
        worst: None,
        worst_at: from,
        within: SignedDuration::ZERO,
        breaches: Vec::new(),
    };
    let mut start = from;
    for cut in cuts.into_iter().chain(std::iter::once(to)) {
        acc.piece(start, cut, m_at(start));
        start = cut;
    }
    let length = to.duration_since(from);
    PeriodReport {
        scenario,
        from,
        to,
        target,
        worst: acc.worst.unwrap_or(Exposure::Finite(SignedDuration::ZERO)),
        worst_at: acc.worst_at,
        within_target: acc.within,
        within_percent: 100.0 * acc.within.as_secs_f64() / length.as_secs_f64(),
        breaches: acc.breaches,
    }
}

/// The staircase of every repository that counts for `scenario`.
fn lanes<'a>(view: &SystemView<'a>, scenario: Scenario) -> Vec<Lane<'a>> {
    let snapshots = view.evidence.snapshots();
    let corr = view.correction;
    view.cols
        .iter()
        .filter(|c| c.repo.is_some_and(|r| scenario.counts(r, view.tier)))
        .map(|col| {
            let mut copies: Vec<(Timestamp, Timestamp)> = col
                .column
                .copies()
                .filter_map(|(i, available)| {
                    let capture = snapshots[i].capture.filter(|c| c.is_complete())?;
                    let available = corr.available(available);
                    Some((available, corr.capture(capture.captured).min(available)))
                })
                .collect();
            copies.sort_unstable();
            let mut stairs: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(copies.len());
            for (at, captured) in copies {
                match stairs.last_mut() {
                    Some(last) if captured <= last.1 => {}
                    Some(last) if last.0 == at => last.1 = captured,
                    _ => stairs.push((at, captured)),
                }
            }
            Lane {
                stairs,
                distrust: col.checks.map_or(&[][..], |c| c.distrust()),
            }
        })
        .collect()
}

struct Accumulator {
    target: SignedDuration,
    worst: Option<Exposure>,
    worst_at: Timestamp,
    within: SignedDuration,
    breaches: Vec<BreachSpan>,
}

impl Accumulator {
    /// The piece `[a, b)` during which the newest counted capture is `m`.
    fn piece(&mut self, a: Timestamp, b: Timestamp, m: Option<Timestamp>) {
        if a >= b {
            return;
        }
        let Some(m) = m else {
            if self.worst != Some(Exposure::Unbounded) {
                self.worst = Some(Exposure::Unbounded);
                self.worst_at = a;
            }
            self.breach(a, b);
            return;
        };
        // E rises from a − m to b − m; it is within target up to m + target.
        let end = Exposure::Finite(b.duration_since(m));
        if self.worst.is_none_or(|w| end > w) {
            self.worst = Some(end);
            self.worst_at = b;
        }
        let limit = plus(m, self.target);
        if limit >= b {
            self.within = self.within.saturating_add(b.duration_since(a));
        } else {
            if limit > a {
                self.within = self.within.saturating_add(limit.duration_since(a));
            }
            self.breach(limit.max(a), b);
        }
    }

    fn breach(&mut self, start: Timestamp, end: Timestamp) {
        match self.breaches.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => self.breaches.push(BreachSpan { start, end }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::run::Outcome;

    /// Four backups a day at 00:00, 06:00, 12:00 and 18:00, each at the local repository 20
    /// minutes later and copied off-site an hour later.
    fn four_a_day() -> Vec<crate::run::RunRecord> {
        let mut runs = Vec::new();
        for (i, hour) in ["00", "06", "12", "18"].into_iter().enumerate() {
            let id = format!("{i}{i}{i}{i}aaaa");
            runs.push(backup(
                "fin",
                &id,
                &format!("03-01 {hour}:00"),
                &format!("03-01 {hour}:20"),
                Outcome::Success,
            ));
            runs.push(copy_all(
                "fin",
                &format!("03-01 {hour}:30"),
                &format!("03-01 {hour}:59"),
                &[("offsite", Outcome::Success)],
            ));
        }
        runs
    }

    fn spans(list: &[(&str, &str)]) -> Vec<BreachSpan> {
        list.iter()
            .map(|(a, b)| BreachSpan {
                start: t(a),
                end: t(b),
            })
            .collect()
    }

    /// The sawtooth with a known answer (T1, 4 h target), over 02:00–20:00 (18 h).
    /// Site loss: the exposure resets to 59m at each off-site arrival (xx:59) and climbs to
    /// 6h 59m before the next; within target 2h + 3h 1m + 3h 1m + 1h 1m = 9h 3m. Component
    /// loss resets at the local arrivals (xx:20): 2h + 3h 40m + 3h 40m + 1h 40m = 11h.
    #[test]
    fn sawtooth_worst_and_time_within_target() {
        let fx = Fixture::new(four_a_day());
        let site = fx
            .assessor()
            .period(
                "fin",
                Scenario::SiteLoss,
                t("03-01 02:00"),
                t("03-01 20:00"),
            )
            .unwrap();
        assert_eq!(site.worst, Exposure::Finite(hours_mins(6, 59)));
        assert_eq!(site.worst_at, t("03-01 06:59"));
        assert_eq!(site.within_target, hours(9) + SignedDuration::from_mins(3));
        assert_eq!(
            site.breaches,
            spans(&[
                ("03-01 04:00", "03-01 06:59"),
                ("03-01 10:00", "03-01 12:59"),
                ("03-01 16:00", "03-01 18:59")
            ])
        );
        assert_eq!(site.breached_for(), SignedDuration::from_mins(3 * 179));

        let component = fx
            .assessor()
            .period(
                "fin",
                Scenario::ComponentLoss,
                t("03-01 02:00"),
                t("03-01 20:00"),
            )
            .unwrap();
        assert_eq!(component.worst, Exposure::Finite(hours_mins(6, 20)));
        assert_eq!(component.within_target, hours(11));
        assert!((component.within_percent - 100.0 * 11.0 / 18.0).abs() < 1e-9);
        assert_eq!(component.breaches.len(), 3);
    }

    /// Whole-hour version of the same sawtooth: exactly 50 % within target.
    #[test]
    fn sawtooth_exactly_half_within_target() {
        let mut runs = Vec::new();
        for (i, hour) in ["00", "06", "12", "18"].into_iter().enumerate() {
            let id = format!("{i}{i}{i}{i}bbbb");
            let next = format!("03-01 {:02}:00", hour.parse::<u32>().unwrap() + 1);
            runs.push(backup(
                "fin",
                &id,
                &format!("03-01 {hour}:00"),
                &format!("03-01 {hour}:20"),
                Outcome::Success,
            ));
            runs.push(copy_all(
                "fin",
                &format!("03-01 {hour}:30"),
                &next,
                &[("offsite", Outcome::Success)],
            ));
        }
        let fx = Fixture::new(runs);
        let site = fx
            .assessor()
            .period(
                "fin",
                Scenario::SiteLoss,
                t("03-01 02:00"),
                t("03-01 20:00"),
            )
            .unwrap();
        assert_eq!(site.worst, Exposure::Finite(hours(7)));
        assert_eq!(site.worst_at, t("03-01 07:00"));
        assert_eq!(site.within_target, hours(9));
        assert_eq!(site.within_percent, 50.0);
        assert_eq!(site.breached_for(), hours(9));
    }

    /// A failed check of the off-site repository at 13:30, cleared at 14:10: for those 40
    /// minutes nothing counts for site loss (unbounded), and the exposure comes back measured
    /// from the 12:00 capture.
    #[test]
    fn a_distrusted_repository_leaves_a_gap() {
        let mut runs = four_a_day();
        runs.push(check_run(
            "offsite",
            "03-01 13:30",
            "03-01 13:40",
            Outcome::Failed,
            "integrity",
        ));
        runs.push(check_run(
            "offsite",
            "03-01 14:00",
            "03-01 14:10",
            Outcome::Success,
            "",
        ));
        let fx = Fixture::new(runs);
        let site = fx
            .assessor()
            .period(
                "fin",
                Scenario::SiteLoss,
                t("03-01 02:00"),
                t("03-01 20:00"),
            )
            .unwrap();
        assert_eq!(
            (site.worst, site.worst_at),
            (Exposure::Unbounded, t("03-01 13:30"))
        );
        assert_eq!(
            site.breaches,
            spans(&[
                ("03-01 04:00", "03-01 06:59"),
                ("03-01 10:00", "03-01 12:59"),
                ("03-01 13:30", "03-01 14:10"),
                ("03-01 16:00", "03-01 18:59"),
            ])
        );
        // 18 h minus the breaches (2h 59m × 3 + 40m).
        assert_eq!(
            site.within_target,
            hours(18) - SignedDuration::from_mins(3 * 179 + 40)
        );
    }

    /// No copy ever reached the vault: for ransomware the whole period is one breach.
    #[test]
    fn a_period_before_any_copy_is_unbounded() {
        let fx = Fixture::new(four_a_day());
        let ransomware = fx
            .assessor()
            .period(
                "fin",
                Scenario::Ransomware,
                t("03-01 02:00"),
                t("03-01 03:00"),
            )
            .unwrap();
        assert_eq!(ransomware.worst, Exposure::Unbounded);
        assert_eq!(ransomware.within_percent, 0.0);
        assert_eq!(
            ransomware.breaches,
            spans(&[("03-01 02:00", "03-01 03:00")])
        );
    }
}
