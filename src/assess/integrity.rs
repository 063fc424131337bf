//! Integrity-check coverage of one repository copy against a tier (standards §2 and §3.4,
//! pitfall 10): did a check verify its structure within `check-every`, and was all of its pack
//! data read within `read-data-window` — by one full read, or by a complete `n/m` rotation
//! whose every subset passed inside the window?
//!
//! Each repository copy is judged on its own checks: a clean local check says nothing about the
//! off-site copy. The figures come from state the check history keeps up to date, so this is
//! O(1) per repository.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::checks::RepositoryChecks;
use super::reason::Human;
use super::{plus, signed};
use crate::policy::{RepoId, Tier};

/// Progress of the read-data rotation in use (the `m` of the latest subset pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RotationProgress {
    pub m: u32,
    /// Distinct subsets `n/m` that passed within the window.
    pub read: u32,
}

/// Something short of full coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "issue")]
pub enum IntegrityIssue {
    /// No check of this repository ever passed.
    NeverChecked,
    /// The last passing check is older than `check-every`.
    StructureOverdue {
        last: Timestamp,
        every: SignedDuration,
    },
    /// Not every pack was read within the window.
    DataNotFullyRead {
        window: SignedDuration,
        fully_read_at: Option<Timestamp>,
        rotation: Option<RotationProgress>,
    },
    /// A failed check stands: the repository's copies do not count.
    Failing { since: Timestamp, message: String },
}

impl fmt::Display for IntegrityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntegrityIssue::NeverChecked => {
                f.write_str("no check of this repository has ever passed")
            }
            IntegrityIssue::StructureOverdue { last, every } => write!(
                f,
                "the last passing check was at {last}; one is due every {}",
                Human(*every)
            ),
            IntegrityIssue::DataNotFullyRead {
                window,
                fully_read_at,
                rotation,
            } => {
                write!(
                    f,
                    "not all pack data was read in the last {}",
                    Human(*window)
                )?;
                if let Some(r) = rotation {
                    write!(
                        f,
                        ": {} of {} read-data subsets passed in the window",
                        r.read, r.m
                    )?;
                }
                match fully_read_at {
                    Some(t) => write!(f, "; the last complete read began at {t}"),
                    None => f.write_str("; the data has never been read completely"),
                }
            }
            IntegrityIssue::Failing { since, message } => {
                write!(
                    f,
                    "a check started at {since} failed and none has cleared it since: {message}"
                )
            }
        }
    }
}

/// How well one repository copy is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityCoverage {
    pub repository: RepoId,
    /// The last passing check of any depth.
    pub last_check: Option<Timestamp>,
    pub check_every: SignedDuration,
    pub structure_ok: bool,
    pub read_data_window: SignedDuration,
    /// Every pack has been read at or after this instant (the start of the latest complete read).
    pub fully_read_at: Option<Timestamp>,
    pub rotation: Option<RotationProgress>,
    pub read_ok: bool,
    /// Empty when the copy is fully covered.
    pub issues: Vec<IntegrityIssue>,
}

impl IntegrityCoverage {
    /// Structure checked in time, all data read in the window, no failure standing.
    pub fn ok(&self) -> bool {
        self.issues.is_empty()
    }
}

/// The coverage of `repository` at `now` against `tier`'s cadences.
pub(crate) fn coverage(
    repository: &RepoId,
    checks: Option<&RepositoryChecks>,
    tier: &Tier,
    now: Timestamp,
) -> IntegrityCoverage {
    let check_every = signed(tier.check_every);
    let window = signed(tier.read_data_window);
    let state = checks.map(|c| c.as_of(now));
    let last_check = state.as_ref().and_then(|s| s.last_pass);
    let fully_read_at = state.as_ref().and_then(|s| s.fully_read_at());
    let window_start = plus(now, -window);
    let rotation = state
        .as_ref()
        .and_then(|s| s.rotation_since(window_start))
        .map(|(m, read)| RotationProgress { m, read });

    let structure_ok = last_check.is_some_and(|t| t >= plus(now, -check_every));
    let read_ok = fully_read_at.is_some_and(|t| t >= window_start);
    let mut issues = Vec::new();
    match last_check {
        None => issues.push(IntegrityIssue::NeverChecked),
        Some(last) if !structure_ok => issues.push(IntegrityIssue::StructureOverdue {
            last,
            every: check_every,
        }),
        Some(_) => {}
    }
    if !read_ok {
        issues.push(IntegrityIssue::DataNotFullyRead {
            window,
            fully_read_at,
            rotation,
        });
    }
    if let Some(f) = checks.and_then(|c| c.distrusted_at(now)) {
        issues.push(IntegrityIssue::Failing {
            since: f.started,
            message: f.message.clone(),
        });
    }
    IntegrityCoverage {
        repository: repository.clone(),
        last_check,
        check_every,
        structure_ok,
        read_data_window: window,
        fully_read_at,
        rotation,
        read_ok,
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{CheckDepth, CheckResult, CheckRun, Inventory};
    use super::*;

    /// A read-data pass of subset `n/m` (or a structure pass with `"s"`) finishing on day `day`.
    fn pass(day: u32, subset: &str) -> CheckRun {
        let depth = if subset == "s" {
            CheckDepth::Structure
        } else {
            CheckDepth::ReadData(subset.parse().unwrap())
        };
        CheckRun {
            repository: repo_id("offsite"),
            started: t(&format!("03-{day:02} 01:00")),
            finished: t(&format!("03-{day:02} 02:00")),
            depth,
            result: CheckResult::Passed,
        }
    }

    fn fail(day: u32, subset: &str) -> CheckRun {
        CheckRun {
            result: CheckResult::Failed {
                message: "pack 9f: hash mismatch".into(),
            },
            ..pass(day, subset)
        }
    }

    /// (what, checks, structure checked in time, all data read in the window, rotation (m, read))
    type Case = (&'static str, Vec<CheckRun>, bool, bool, Option<(u32, u32)>);

    /// T1: structure check every day, all data read within 7 days. `now` is 03-10 12:00, so
    /// the window opened on 03-03 12:00.
    #[test]
    fn read_data_coverage_with_rotation() {
        let rotation_days = |from: u32, m: u32| -> Vec<CheckRun> {
            (1..=m)
                .map(|n| pass(from + n - 1, &format!("{n}/{m}")))
                .collect()
        };
        let cases: Vec<Case> = vec![
            (
                "a 7-day rotation completed inside the window",
                rotation_days(4, 7),
                true,
                true,
                Some((7, 7)),
            ),
            (
                "the rotation's first subset was read before the window",
                [rotation_days(3, 7), vec![pass(10, "s")]].concat(),
                true,
                false,
                Some((7, 6)),
            ),
            (
                "one subset of seven missing",
                rotation_days(5, 7)[..6].to_vec(),
                true,
                false,
                Some((7, 6)),
            ),
            (
                "after a change of m, the complete older rotation still counts",
                [rotation_days(4, 3), rotation_days(8, 4)[..3].to_vec()].concat(),
                true,
                true,
                Some((4, 3)),
            ),
            (
                "subsets of different m do not add up",
                [
                    rotation_days(4, 3)[..2].to_vec(),
                    rotation_days(8, 4)[..3].to_vec(),
                ]
                .concat(),
                true,
                false,
                Some((4, 3)),
            ),
            (
                "one full read inside the window",
                vec![pass(5, "1/1"), pass(10, "s")],
                true,
                true,
                None,
            ),
            (
                "a full read a day too old",
                vec![pass(3, "1/1"), pass(10, "s")],
                true,
                false,
                None,
            ),
            (
                "structure checks only",
                (1..=10).map(|d| pass(d, "s")).collect(),
                true,
                false,
                None,
            ),
            ("structure overdue", vec![pass(5, "1/1")], false, true, None),
            ("never checked", vec![], false, false, None),
            (
                "a failing subset counts as not read",
                [rotation_days(5, 7)[..6].to_vec(), vec![fail(10, "7/7")]].concat(),
                true,
                false,
                Some((7, 6)),
            ),
        ];
        let tier = &policy().tiers["T1"];
        let now = t("03-10 12:00");
        for (what, runs, structure_ok, read_ok, rotation) in cases {
            let mut inv = Inventory::new();
            runs.into_iter().for_each(|r| inv.record_check(r));
            let c = coverage(&repo_id("offsite"), inv.checks("offsite"), tier, now);
            assert_eq!(
                (c.structure_ok, c.read_ok),
                (structure_ok, read_ok),
                "{what}: {:?}",
                c.issues
            );
            assert_eq!(c.rotation.map(|r| (r.m, r.read)), rotation, "{what}");
            assert_eq!(
                c.ok(),
                structure_ok && read_ok && !what.contains("failing"),
                "{what}"
            );
        }
    }

    #[test]
    fn coverage_issues_read_well() {
        let tier = &policy().tiers["T1"];
        let mut inv = Inventory::new();
        for n in 1..=5 {
            inv.record_check(pass(n + 5, &format!("{n}/7")));
        }
        let c = coverage(
            &repo_id("offsite"),
            inv.checks("offsite"),
            tier,
            t("03-10 12:00"),
        );
        let text: Vec<String> = c.issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "not all pack data was read in the last 7d: 5 of 7 read-data subsets passed in the \
              window; the data has never been read completely"
            ]
        );
    }
}
