//! Check history of one repository: which checks ran, how deep, what they found — folded into
//! the two things assessments need: when the repository was *distrusted* (a failed check not
//! yet cleared) and how much of its data has been read lately.
//!
//! The rules (pitfalls 3 and 10 of standards §3.5):
//! - A check that **failed** distrusts the whole repository from the check's start (the damage
//!   was there when it began reading). Dedup means a snapshot written after the failure may
//!   share the damaged packs, so it does not matter when a copy arrived.
//! - The distrust ends when a **passing** check that *started after the failure was found* (its
//!   start ≥ the failed check's end) and is at least as deep finishes: any pass clears a
//!   structure failure; a read-data failure of subset `n/m` is cleared by a pass of the same
//!   subset or a full read (the agent's rotation repeats a subset until it passes).
//! - A check that could not run (error kind in [`INCONCLUSIVE_KINDS`]) says nothing about the
//!   data: it neither distrusts nor verifies.
//! - A read-data pass of `n/m` read that share of the packs (rustic assigns packs to subsets by
//!   id). Subsets of different `m` do not line up, so a rotation is complete when every `n` of
//!   one `m` has passed; `1/1` is a full read.
//!
//! Derived state is kept up to date at every [`RepositoryChecks::record`] (in-order arrivals
//! cost O(1), a late arrival re-folds the history), so assessing is O(1) per repository.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use crate::policy::{IdError, RepoId};
use crate::run::{Outcome, RepoResult, RunRecord};

/// Error kinds (`RunError::kind`, see `EngineError::kind`) of checks that could not look at the
/// data: the repository was unreachable or the run was cut short. A check failing for any other
/// reason — integrity errors, but also a missing repository or a wrong password (a copy whose
/// key does not open it is no copy) — distrusts the repository.
pub const INCONCLUSIVE_KINDS: &[&str] = &[
    "unreachable",
    "storage",
    "aborted",
    "window-closed",
    "interrupted",
];

/// Which share of the packs a read-data check read: `n/m`, `1 ≤ n ≤ m`; `1/1` reads all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Subset {
    n: u32,
    m: u32,
}

/// Why a text is not a subset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read-data subset \"{0}\" is not of the form n/m with 1 ≤ n ≤ m (e.g. \"3/7\")")]
pub struct SubsetError(pub String);

impl Subset {
    /// Everything.
    pub const FULL: Subset = Subset { n: 1, m: 1 };

    pub fn new(n: u32, m: u32) -> Result<Self, SubsetError> {
        if n >= 1 && n <= m {
            Ok(Subset { n, m })
        } else {
            Err(SubsetError(format!("{n}/{m}")))
        }
    }

    pub fn n(self) -> u32 {
        self.n
    }

    pub fn m(self) -> u32 {
        self.m
    }

    pub fn is_full(self) -> bool {
        self.m == 1
    }
}

impl FromStr for Subset {
    type Err = SubsetError;
    fn from_str(s: &str) -> Result<Self, SubsetError> {
        let bad = || SubsetError(s.to_string());
        let (n, m) = s.trim().split_once('/').ok_or_else(bad)?;
        let n = n.trim().parse().map_err(|_| bad())?;
        let m = m.trim().parse().map_err(|_| bad())?;
        Subset::new(n, m).map_err(|_| bad())
    }
}

impl fmt::Display for Subset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.n, self.m)
    }
}

/// How deep a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckDepth {
    /// Index, snapshots and trees (`check` without `--read-data`): reads no pack contents.
    Structure,
    /// Structure plus the contents of a share of the packs.
    ReadData(Subset),
}

impl CheckDepth {
    /// Whether a pass of this depth proves a failure of depth `failed` repaired.
    pub fn clears(self, failed: CheckDepth) -> bool {
        match (self, failed) {
            // Every check includes the structure check.
            (_, CheckDepth::Structure) => true,
            (CheckDepth::ReadData(pass), CheckDepth::ReadData(fail)) => {
                pass.is_full() || pass == fail
            }
            (CheckDepth::Structure, CheckDepth::ReadData(_)) => false,
        }
    }
}

impl fmt::Display for CheckDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckDepth::Structure => f.write_str("structure check"),
            CheckDepth::ReadData(s) if s.is_full() => f.write_str("full read-data check"),
            CheckDepth::ReadData(s) => write!(f, "read-data check of subset {s}"),
        }
    }
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum CheckResult {
    Passed,
    /// Found errors, or could not open the repository: its copies are not trusted.
    Failed {
        message: String,
    },
    /// Could not look at the data (see [`INCONCLUSIVE_KINDS`]).
    Inconclusive {
        message: String,
    },
}

/// One check of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRun {
    pub repository: RepoId,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub depth: CheckDepth,
    pub result: CheckResult,
}

impl CheckRun {
    /// The check of one repository of a check run record. The record does not say how deep the
    /// check went: the caller says (`depth`).
    pub fn from_result(
        run: &RunRecord,
        repo: &RepoResult,
        depth: CheckDepth,
    ) -> Result<Self, IdError> {
        let error = repo.error.as_ref().or(run.error.as_ref());
        let message = || {
            error.map_or_else(
                || "the check failed without an error message".to_string(),
                |e| e.message.clone(),
            )
        };
        let result = match repo.outcome {
            Outcome::Success => CheckResult::Passed,
            _ if error.is_some_and(|e| INCONCLUSIVE_KINDS.contains(&e.kind.as_str())) => {
                CheckResult::Inconclusive { message: message() }
            }
            _ => CheckResult::Failed { message: message() },
        };
        Ok(CheckRun {
            repository: repo.repository.parse()?,
            started: run.started_at,
            finished: run.finished_at,
            depth,
            result,
        })
    }
}

/// A failed check and, once repaired, the pass that cleared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureSpan {
    /// When the failed check started: the repository is distrusted from here.
    pub started: Timestamp,
    /// When it finished: only passes that start after this can clear it.
    pub found: Timestamp,
    pub depth: CheckDepth,
    pub message: String,
    /// When the clearing pass finished; `None` while the failure stands.
    pub cleared: Option<Timestamp>,
}

impl FailureSpan {
    fn covers(&self, t: Timestamp) -> bool {
        self.started <= t && self.cleared.is_none_or(|c| t < c)
    }
}

/// A half-open span of time `[from, until)`; `until = None` is open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub from: Timestamp,
    pub until: Option<Timestamp>,
}

impl Interval {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// Passed subsets of one `m`: `(n, last pass)` sorted by `n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rotation {
    m: u32,
    passes: Vec<(u32, Timestamp)>,
}

/// What the checks up to some instant add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckState {
    failures: Vec<FailureSpan>,
    /// The union of the failures' spans, sorted and disjoint.
    distrust: Vec<Interval>,
    /// The last pass of any depth (every check verifies the structure).
    pub last_pass: Option<Timestamp>,
    last_full_read: Option<Timestamp>,
    rotations: Vec<Rotation>,
    /// `(finished, m)` of the latest subset pass: the rotation in progress.
    latest_subset: Option<(Timestamp, u32)>,
    /// The latest `finished` folded in.
    horizon: Option<Timestamp>,
}

impl CheckState {
    fn apply(&mut self, run: &CheckRun) {
        self.horizon = self.horizon.max(Some(run.finished));
        match &run.result {
            CheckResult::Inconclusive { .. } => {}
            CheckResult::Failed { message } => {
                self.failures.push(FailureSpan {
                    started: run.started,
                    found: run.finished,
                    depth: run.depth,
                    message: message.clone(),
                    cleared: None,
                });
                self.rebuild_distrust();
            }
            CheckResult::Passed => {
                self.last_pass = self.last_pass.max(Some(run.finished));
                if let CheckDepth::ReadData(s) = run.depth {
                    if s.is_full() {
                        self.last_full_read = self.last_full_read.max(Some(run.finished));
                    } else {
                        self.passed_subset(s, run.finished);
                    }
                }
                let mut cleared = false;
                for f in self.failures.iter_mut().filter(|f| f.cleared.is_none()) {
                    if f.found <= run.started && run.depth.clears(f.depth) {
                        f.cleared = Some(run.finished);
                        cleared = true;
                    }
                }
                if cleared {
                    self.rebuild_distrust();
                }
            }
        }
    }

    fn passed_subset(&mut self, s: Subset, at: Timestamp) {
        if self.latest_subset.is_none_or(|(t, _)| t <= at) {
            self.latest_subset = Some((at, s.m));
        }
        let rotation = match self.rotations.iter().position(|r| r.m == s.m) {
            Some(i) => &mut self.rotations[i],
            None => {
                self.rotations.push(Rotation {
                    m: s.m,
                    passes: Vec::new(),
                });
                let last = self.rotations.len() - 1;
                &mut self.rotations[last]
            }
        };
        match rotation.passes.binary_search_by_key(&s.n, |&(n, _)| n) {
            Ok(i) => rotation.passes[i].1 = rotation.passes[i].1.max(at),
            Err(i) => rotation.passes.insert(i, (s.n, at)),
        }
    }

    fn rebuild_distrust(&mut self) {
        let mut spans: Vec<Interval> = self
            .failures
            .iter()
            .map(|f| Interval {
                from: f.started,
                until: f.cleared,
            })
            .collect();
        spans.sort_by_key(|s| s.from);
        let mut merged: Vec<Interval> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if last.until.is_none_or(|u| s.from <= u) => {
                    last.until = match (last.until, s.until) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                _ => merged.push(s),
            }
        }
        self.distrust = merged;
    }

    /// The latest instant from which every pack has been read: the last full read, or the
    /// oldest pass of the most recent complete rotation.
    pub fn fully_read_at(&self) -> Option<Timestamp> {
        let rotations = self
            .rotations
            .iter()
            .filter(|r| r.passes.len() as u64 == u64::from(r.m))
            .filter_map(|r| r.passes.iter().map(|&(_, t)| t).min());
        rotations.chain(self.last_full_read).max()
    }

    /// The rotation in progress: its `m` and how many of its subsets passed at or after `since`.
    pub fn rotation_since(&self, since: Timestamp) -> Option<(u32, u32)> {
        let (_, m) = self.latest_subset?;
        let rotation = self.rotations.iter().find(|r| r.m == m)?;
        let read = rotation.passes.iter().filter(|&&(_, t)| t >= since).count();
        Some((m, u32::try_from(read).unwrap_or(u32::MAX)))
    }

    /// The failure that distrusts the repository at `t`, if any.
    pub fn distrusted_at(&self, t: Timestamp) -> Option<&FailureSpan> {
        let i = self.distrust.partition_point(|s| s.from <= t);
        let candidate = i.checked_sub(1).map(|i| self.distrust[i])?;
        if !candidate.contains(t) {
            return None;
        }
        // The failure that has stood longest at `t`: what a person should look at first.
        self.failures
            .iter()
            .filter(|f| f.covers(t))
            .min_by_key(|f| f.started)
    }
}

/// The check history of one repository and what it adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryChecks {
    /// The fold of the checks compacted away.
    base: CheckState,
    /// Checks not compacted, sorted by `finished`.
    log: Vec<CheckRun>,
    /// `base` with every check of `log` applied.
    state: CheckState,
}

impl RepositoryChecks {
    /// Takes one check. One that finished before the latest known is slotted in and the history
    /// re-folded (a failure delivered late may be cleared by passes already known, and the other
    /// way round).
    pub fn record(&mut self, run: CheckRun) {
        if self
            .log
            .last()
            .is_none_or(|last| last.finished <= run.finished)
        {
            self.state.apply(&run);
            self.log.push(run);
            return;
        }
        let at = self.log.partition_point(|c| c.finished <= run.finished);
        self.log.insert(at, run);
        let mut state = self.base.clone();
        for c in &self.log {
            state.apply(c);
        }
        self.state = state;
    }

    /// Forgets the individual checks that finished before `before`, keeping what they add up to.
    /// A check older than that arriving later is folded in as if it came right after them.
    pub fn compact(&mut self, before: Timestamp) {
        let n = self.log.partition_point(|c| c.finished < before);
        for c in self.log.drain(..n) {
            self.base.apply(&c);
        }
    }

    /// Every failed check known, repaired or not, oldest first.
    pub fn failures(&self) -> &[FailureSpan] {
        &self.state.failures
    }

    /// When the repository was distrusted: sorted, disjoint spans.
    pub fn distrust(&self) -> &[Interval] {
        &self.state.distrust
    }

    /// The failed check that distrusts the repository at `t`, if any.
    pub fn distrusted_at(&self, t: Timestamp) -> Option<&FailureSpan> {
        self.state.distrusted_at(t)
    }

    /// The checks not yet compacted, oldest first.
    pub fn log(&self) -> &[CheckRun] {
        &self.log
    }

    /// The state as of `now`: the precomputed one unless checks finished after `now` (only when
    /// assessing the past).
    pub(crate) fn as_of(&self, now: Timestamp) -> Cow<'_, CheckState> {
        if self.state.horizon.is_none_or(|h| h <= now) {
            return Cow::Borrowed(&self.state);
        }
        let mut state = self.base.clone();
        for c in self.log.iter().take_while(|c| c.finished <= now) {
            state.apply(c);
        }
        Cow::Owned(state)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn check(start: &str, end: &str, depth: CheckDepth, result: &str) -> CheckRun {
        let result = match result {
            "pass" => CheckResult::Passed,
            "fail" => CheckResult::Failed {
                message: "pack 1a2b: hash mismatch".into(),
            },
            _ => CheckResult::Inconclusive {
                message: "timeout".into(),
            },
        };
        CheckRun {
            repository: repo_id("offsite"),
            started: t(start),
            finished: t(end),
            depth,
            result,
        }
    }

    fn sub(s: &str) -> CheckDepth {
        CheckDepth::ReadData(s.parse().unwrap())
    }

    #[test]
    fn subsets_parse_table() {
        for (text, want) in [
            ("3/7", Some((3, 7))),
            (" 1 / 1 ", Some((1, 1))),
            ("7/7", Some((7, 7))),
            ("0/7", None),
            ("8/7", None),
            ("3", None),
            ("a/b", None),
            ("10%", None),
        ] {
            let got = text.parse::<Subset>().ok().map(|s| (s.n(), s.m()));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn depth_clearing_table() {
        let cases = [
            (CheckDepth::Structure, CheckDepth::Structure, true),
            (sub("2/7"), CheckDepth::Structure, true),
            (CheckDepth::Structure, sub("2/7"), false),
            (sub("2/7"), sub("2/7"), true),
            (sub("3/7"), sub("2/7"), false),
            (sub("2/5"), sub("2/7"), false),
            (sub("1/1"), sub("2/7"), true),
        ];
        for (pass, fail, want) in cases {
            assert_eq!(pass.clears(fail), want, "{pass} clears {fail}");
        }
    }

    /// (what, checks in finishing order, expected distrust spans)
    type Case = (
        &'static str,
        Vec<CheckRun>,
        Vec<(&'static str, Option<&'static str>)>,
    );

    /// Distrust runs from the failed check's start to the end of the first pass that started
    /// after the failure was found and is deep enough; inconclusive checks change nothing.
    #[test]
    fn a_failed_check_distrusts_until_a_covering_pass() {
        let cases: &[Case] = &[
            (
                "structure failure, cleared by the next structure pass",
                vec![
                    check("03-01 01:00", "03-01 01:10", CheckDepth::Structure, "fail"),
                    check("03-02 01:00", "03-02 01:10", CheckDepth::Structure, "pass"),
                ],
                vec![("03-01 01:00", Some("03-02 01:10"))],
            ),
            (
                "a pass that overlapped the failing check does not clear it",
                vec![
                    check("03-01 00:30", "03-01 01:05", CheckDepth::Structure, "pass"),
                    check("03-01 01:00", "03-01 01:10", CheckDepth::Structure, "fail"),
                ],
                vec![("03-01 01:00", None)],
            ),
            (
                "read-data failure: structure passes do not clear, the same subset does",
                vec![
                    check("03-01 01:00", "03-01 02:00", sub("3/7"), "fail"),
                    check("03-02 01:00", "03-02 01:10", CheckDepth::Structure, "pass"),
                    check("03-03 01:00", "03-03 02:00", sub("4/7"), "pass"),
                    check("03-04 01:00", "03-04 02:00", sub("3/7"), "pass"),
                ],
                vec![("03-01 01:00", Some("03-04 02:00"))],
            ),
            (
                "inconclusive checks neither distrust nor clear",
                vec![
                    check("03-01 01:00", "03-01 01:10", CheckDepth::Structure, "fail"),
                    check(
                        "03-02 01:00",
                        "03-02 01:10",
                        CheckDepth::Structure,
                        "timeout",
                    ),
                    check(
                        "03-03 01:00",
                        "03-03 01:10",
                        CheckDepth::Structure,
                        "timeout",
                    ),
                ],
                vec![("03-01 01:00", None)],
            ),
            (
                "overlapping failures merge into one span",
                vec![
                    check("03-01 01:00", "03-01 01:10", CheckDepth::Structure, "fail"),
                    check("03-01 02:00", "03-01 03:00", sub("1/1"), "fail"),
                    check("03-01 04:00", "03-01 04:10", CheckDepth::Structure, "pass"),
                    check("03-02 01:00", "03-02 05:00", sub("1/1"), "pass"),
                ],
                vec![("03-01 01:00", Some("03-02 05:00"))],
            ),
        ];
        for (what, runs, want) in cases {
            let want: Vec<Interval> = want
                .iter()
                .map(|(from, until)| Interval {
                    from: t(from),
                    until: until.map(t),
                })
                .collect();
            // In order, and delivered backwards (re-folded): the same answer.
            let mut forward = RepositoryChecks::default();
            runs.iter().for_each(|r| forward.record(r.clone()));
            let mut backward = RepositoryChecks::default();
            runs.iter().rev().for_each(|r| backward.record(r.clone()));
            assert_eq!(forward.distrust(), want.as_slice(), "{what}");
            assert_eq!(
                backward.distrust(),
                want.as_slice(),
                "{what} (late delivery)"
            );
        }
    }

    #[test]
    fn distrusted_at_names_the_failure_and_compaction_keeps_it() {
        let mut c = RepositoryChecks::default();
        c.record(check(
            "03-01 01:00",
            "03-01 01:10",
            CheckDepth::Structure,
            "fail",
        ));
        c.record(check(
            "03-02 01:00",
            "03-02 01:10",
            CheckDepth::Structure,
            "pass",
        ));
        c.record(check(
            "03-03 01:00",
            "03-03 01:10",
            CheckDepth::Structure,
            "pass",
        ));
        assert_eq!(c.distrusted_at(t("03-01 00:59")), None);
        let f = c.distrusted_at(t("03-01 12:00")).unwrap();
        assert_eq!(
            (f.message.as_str(), f.found),
            ("pack 1a2b: hash mismatch", t("03-01 01:10"))
        );
        assert_eq!(c.distrusted_at(t("03-02 01:10")), None);

        let before = c.clone();
        c.compact(t("03-03 00:00"));
        assert_eq!(c.log().len(), 1);
        assert_eq!(c.distrust(), before.distrust());
        assert_eq!(c.as_of(t("03-04 00:00")).last_pass, Some(t("03-03 01:10")));
    }

    #[test]
    fn state_as_of_an_earlier_instant_ignores_later_checks() {
        let mut c = RepositoryChecks::default();
        c.record(check(
            "03-01 01:00",
            "03-01 01:10",
            CheckDepth::Structure,
            "pass",
        ));
        c.record(check(
            "03-05 01:00",
            "03-05 01:10",
            CheckDepth::Structure,
            "pass",
        ));
        assert_eq!(c.as_of(t("03-06 00:00")).last_pass, Some(t("03-05 01:10")));
        assert_eq!(c.as_of(t("03-03 00:00")).last_pass, Some(t("03-01 01:10")));
    }
}
