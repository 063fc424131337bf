//! Live RPO per scenario (standards §3.2): the exposure at `now`, the compliance status, the
//! instant the target will be crossed, and the reasons — which snapshot counts, and why newer
//! ones do not.
//!
//! One pass over the system's copies serves all three scenarios: O(copies + snapshots).

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::health::AgentStatus;
use super::reason::{Exposure, Human};
use super::scenario::{Exclusion, Scenario};
use super::{Settings, SystemView, plus, signed};
use crate::policy::{Location, RepoId};
use crate::run::Outcome;

use super::evidence::SnapshotId;

/// Where a system stands against its target for one scenario.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Exposure at or below [`Settings::at_risk_percent`] of the target.
    Compliant,
    /// Above that share, at most the target: the next failure breaches.
    AtRisk,
    /// Above the target, or unbounded (nothing counts).
    Breached,
    /// No backup of the system has ever been recorded: nothing to measure.
    NoEvidence,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Compliant => "compliant",
            Status::AtRisk => "at risk",
            Status::Breached => "breached",
            Status::NoEvidence => "no evidence",
        })
    }
}

/// The copy an exposure is measured from. Times are in coordinator time (corrected for a
/// skewed agent clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountedCopy {
    pub snapshot: SnapshotId,
    pub captured: Timestamp,
    pub repository: RepoId,
    pub location: Location,
    pub available: Timestamp,
}

/// The last failed write to a repository, as quoted in reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedWrite {
    pub repository: RepoId,
    pub at: Timestamp,
    pub message: String,
    pub failures_since_success: u32,
}

impl fmt::Display for FailedWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the last write to {} failed at {}",
            self.repository, self.at
        )?;
        if self.failures_since_success > 1 {
            write!(
                f,
                " ({} failures since the last success)",
                self.failures_since_success
            )?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a snapshot does not count for a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "why")]
pub enum NotCountedWhy {
    /// Its backup run did not end `success` (pitfall 3).
    BackupIncomplete { outcome: Outcome },
    /// It is at no repository that counts (pitfalls 2, 4): not copied yet, or the copy failed.
    NotCopied {
        scenario: Scenario,
        last_failure: Option<FailedWrite>,
    },
    /// Every counted repository holding it is distrusted by a failed check (pitfall 3).
    Distrusted {
        repository: RepoId,
        since: Timestamp,
        message: String,
    },
    /// Its copy is recorded as available only after `now` (a copy in flight, or an agent clock
    /// running ahead).
    NotYetAvailable { repository: RepoId, at: Timestamp },
}

impl fmt::Display for NotCountedWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCountedWhy::BackupIncomplete { outcome } => write!(
                f,
                "comes from a backup that ended {}, and an incomplete snapshot does not count",
                outcome_name(*outcome)
            ),
            NotCountedWhy::NotCopied {
                scenario,
                last_failure,
            } => {
                write!(f, "is at no repository that counts for {scenario}")?;
                match last_failure {
                    Some(w) => write!(f, "; {w}"),
                    None => f.write_str(" (not copied there yet)"),
                }
            }
            NotCountedWhy::Distrusted {
                repository,
                since,
                message,
            } => write!(
                f,
                "is at {repository}, which failed a check started at {since} ({message}); its \
                 copies count again after a passing check"
            ),
            NotCountedWhy::NotYetAvailable { repository, at } => write!(
                f,
                "is recorded at {repository} only from {at}, which is still to come (a copy in \
                 flight, or the agent's clock is ahead)"
            ),
        }
    }
}

/// A repository of the chain and why it does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub repository: RepoId,
    pub why: Exclusion,
}

/// One reason behind an RPO assessment, for people (`Display`) and machines (`Serialize`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum RpoReason {
    /// The exposure is measured from this copy.
    Counted { copy: CountedCopy },
    /// No backup has been recorded (and perhaps why).
    NoBackup { last_failure: Option<FailedWrite> },
    /// No repository of the chain counts for the scenario: no amount of success helps.
    NoRepositoryCounts {
        scenario: Scenario,
        excluded: Vec<Excluded>,
    },
    /// `newer` snapshots newer than the counted one do not count; why the newest does not.
    NotCounted {
        snapshot: SnapshotId,
        captured: Timestamp,
        why: NotCountedWhy,
        newer: u32,
    },
    /// The agent's clock is skewed and its times were corrected.
    ClockCorrected {
        host: String,
        offset: SignedDuration,
    },
    /// The agent is not heard from: newer results may not have arrived.
    AgentSilent {
        host: String,
        last_seen: Option<Timestamp>,
    },
}

impl fmt::Display for RpoReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpoReason::Counted { copy } => write!(
                f,
                "newest counted snapshot {}, captured {}, available at {} ({}) since {}",
                copy.snapshot.short(),
                copy.captured,
                copy.repository,
                copy.location,
                copy.available
            ),
            RpoReason::NoBackup { last_failure } => {
                f.write_str("no backup of this system has been recorded")?;
                match last_failure {
                    Some(w) => write!(f, "; {w}"),
                    None => Ok(()),
                }
            }
            RpoReason::NoRepositoryCounts { scenario, excluded } => {
                write!(f, "no repository of this system counts for {scenario}:")?;
                for (i, e) in excluded.iter().enumerate() {
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{} {}", e.repository, e.why)?;
                }
                f.write_str(match scenario {
                    Scenario::Ransomware => {
                        "; add an immutable (object-lock or append-only) repository to its chain"
                    }
                    _ => "; add a repository outside the site, as far as the tier demands",
                })
            }
            RpoReason::NotCounted {
                snapshot,
                captured,
                why,
                newer,
            } => {
                if *newer > 1 {
                    write!(f, "{newer} newer snapshots do not count; the newest, ")?;
                } else {
                    f.write_str("a newer snapshot does not count: ")?;
                }
                write!(f, "{} captured {}, {why}", snapshot.short(), captured)
            }
            RpoReason::ClockCorrected { host, offset } => write!(
                f,
                "the clock of {host} is {} {} the coordinator's; its times were corrected so \
                 that they can only look worse",
                Human(offset.abs()),
                if offset.is_negative() {
                    "ahead of"
                } else {
                    "behind"
                }
            ),
            RpoReason::AgentSilent { host, last_seen } => match last_seen {
                Some(t) => write!(
                    f,
                    "the agent on {host} has been silent since {t}: newer results may be \
                     waiting in its spool"
                ),
                None => write!(f, "the agent on {host} has never been heard from"),
            },
        }
    }
}

/// One system's RPO for one scenario at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpoAssessment {
    pub scenario: Scenario,
    /// The tier's RPO.
    pub target: SignedDuration,
    pub status: Status,
    /// `now − t_cap` of [`RpoAssessment::newest`]; unbounded when nothing counts.
    pub exposure: Exposure,
    pub newest: Option<CountedCopy>,
    /// `t_cap + target` of the newest counted snapshot: when the exposure crosses the target
    /// if nothing newer becomes available (in the past when breached).
    pub breach_at: Option<Timestamp>,
    pub reasons: Vec<RpoReason>,
}

impl RpoAssessment {
    /// How far the exposure is beyond the target, if it is (unbounded: `None` and breached).
    pub fn overdue(&self) -> Option<SignedDuration> {
        self.exposure
            .finite()
            .map(|e| e - self.target)
            .filter(|d| d.is_positive())
    }
}

impl fmt::Display for RpoAssessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} — exposure {} against a {} target",
            self.scenario,
            self.status,
            self.exposure,
            Human(self.target)
        )?;
        if let Some(over) = self.overdue() {
            write!(f, " ({} over)", Human(over))?;
        }
        for r in &self.reasons {
            write!(f, "; {r}")?;
        }
        Ok(())
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Partial => "partial",
        Outcome::Failed => "failed",
    }
}

/// The newest counted copy of one scenario, while scanning.
#[derive(Debug, Clone, Copy)]
struct Best {
    captured: Timestamp,
    snapshot: usize,
    col: usize,
    available: Timestamp,
}

/// All three scenarios of one system, in [`Scenario::ALL`] order.
pub(crate) fn assess(view: &SystemView<'_>, settings: &Settings) -> [RpoAssessment; 3] {
    let snapshots = view.evidence.snapshots();
    let corr = view.correction;
    let mut best: [Option<Best>; 3] = [None; 3];
    for (ci, col) in view.cols.iter().enumerate() {
        let Some(repo) = col.repo else { continue };
        if col.distrusted.is_some() {
            continue;
        }
        let counts = Scenario::ALL.map(|s| s.counts(repo, view.tier));
        for (si, available) in col.column.copies() {
            let Some(capture) = snapshots[si].capture else {
                continue;
            };
            let available = corr.available(available);
            if !capture.is_complete() || available > view.now {
                continue;
            }
            // A capture after the copy's availability is impossible on one clock.
            let captured = corr.capture(capture.captured).min(available);
            for (b, counts) in best.iter_mut().zip(counts) {
                if counts && b.is_none_or(|b| captured > b.captured) {
                    *b = Some(Best {
                        captured,
                        snapshot: si,
                        col: ci,
                        available,
                    });
                }
            }
        }
    }
    // Without a single backup record there is nothing to measure: `no-evidence`.
    let any_capture = snapshots.iter().any(|s| s.capture.is_some());
    Scenario::ALL.map(|s| finish(view, s, best[s.index()], any_capture, settings))
}

fn finish(
    view: &SystemView<'_>,
    scenario: Scenario,
    best: Option<Best>,
    any_capture: bool,
    settings: &Settings,
) -> RpoAssessment {
    let target = signed(view.tier.rpo);
    let newest = best.and_then(|b| {
        let col = &view.cols[b.col];
        Some(CountedCopy {
            snapshot: view.evidence.snapshots()[b.snapshot].id.clone(),
            captured: b.captured,
            repository: col.column.repository().clone(),
            location: col.repo?.location,
            available: b.available,
        })
    });
    let exposure = match &newest {
        Some(c) => Exposure::Finite(view.now.duration_since(c.captured)),
        None => Exposure::Unbounded,
    };
    let status = if !any_capture {
        Status::NoEvidence
    } else if exposure.exceeds(target) {
        Status::Breached
    } else if above_share(exposure, target, settings.at_risk_percent.get()) {
        Status::AtRisk
    } else {
        Status::Compliant
    };

    let mut reasons = Vec::new();
    let mut nothing_counts = false;
    if let Some(copy) = &newest {
        reasons.push(RpoReason::Counted { copy: copy.clone() });
    } else if !any_capture {
        let source = view.system.repositories.first();
        let last_failure = source
            .and_then(|id| view.col(id.as_str()))
            .and_then(|c| failed_write(c.column.repository(), c.column.writes()));
        reasons.push(RpoReason::NoBackup { last_failure });
    } else {
        let chain = &view.system.repositories;
        let excluded: Vec<Excluded> = chain
            .iter()
            .filter_map(|id| {
                let why = match view.policy.repositories.get(id) {
                    Some(repo) => scenario.excludes(repo, view.tier)?,
                    None => Exclusion::NotInPolicy,
                };
                Some(Excluded {
                    repository: id.clone(),
                    why,
                })
            })
            .collect();
        if excluded.len() == chain.len() {
            nothing_counts = true;
            reasons.push(RpoReason::NoRepositoryCounts { scenario, excluded });
        }
    }
    if any_capture
        && !nothing_counts
        && let Some(r) = newest_not_counted(view, scenario, best)
    {
        reasons.push(r);
    }
    if let (Some(offset), Some(agent)) = (view.correction.offset, view.agent) {
        reasons.push(RpoReason::ClockCorrected {
            host: agent.host.clone(),
            offset,
        });
    }
    if let Some(agent) = view.agent.filter(|a| a.status != AgentStatus::Online) {
        reasons.push(RpoReason::AgentSilent {
            host: agent.host.clone(),
            last_seen: agent.last_seen,
        });
    }
    RpoAssessment {
        scenario,
        target,
        status,
        exposure,
        breach_at: newest.as_ref().map(|c| plus(c.captured, target)),
        newest,
        reasons,
    }
}

/// Whether a finite exposure is above `percent` % of `target` (exactly, in nanoseconds).
fn above_share(exposure: Exposure, target: SignedDuration, percent: u8) -> bool {
    exposure.finite().is_some_and(|e| {
        e.as_nanos().saturating_mul(100) > target.as_nanos().saturating_mul(i128::from(percent))
    })
}

fn failed_write(repository: &RepoId, writes: &super::WriteHistory) -> Option<FailedWrite> {
    writes.failing().map(|f| FailedWrite {
        repository: repository.clone(),
        at: f.at,
        message: f.message.clone(),
        failures_since_success: writes.failures_since_success,
    })
}

/// The newest snapshot captured after the counted one, and why it does not count.
fn newest_not_counted(
    view: &SystemView<'_>,
    scenario: Scenario,
    best: Option<Best>,
) -> Option<RpoReason> {
    let corr = view.correction;
    let floor = best.map(|b| b.captured);
    let mut newer = 0u32;
    let mut newest: Option<(usize, Timestamp)> = None;
    for (i, s) in view.evidence.snapshots().iter().enumerate() {
        let Some(capture) = s.capture else { continue };
        let captured = corr.capture(capture.captured);
        if best.is_some_and(|b| b.snapshot == i) || floor.is_some_and(|f| captured <= f) {
            continue;
        }
        newer = newer.saturating_add(1);
        if newest.is_none_or(|(_, c)| captured > c) {
            newest = Some((i, captured));
        }
    }
    let (i, captured) = newest?;
    Some(RpoReason::NotCounted {
        snapshot: view.evidence.snapshots()[i].id.clone(),
        captured,
        why: why_not_counted(view, scenario, i),
        newer,
    })
}

fn why_not_counted(view: &SystemView<'_>, scenario: Scenario, i: usize) -> NotCountedWhy {
    if let Some(capture) = view.evidence.snapshots()[i].capture
        && !capture.is_complete()
    {
        return NotCountedWhy::BackupIncomplete {
            outcome: capture.outcome,
        };
    }
    let mut pending = None;
    let mut distrusted = None;
    let mut failing: Option<FailedWrite> = None;
    for col in &view.cols {
        let Some(repo) = col.repo.filter(|r| scenario.counts(r, view.tier)) else {
            continue;
        };
        if let Some(w) = failed_write(&repo.id, col.column.writes())
            && failing.as_ref().is_none_or(|f| w.at > f.at)
        {
            failing = Some(w);
        }
        let Some(available) = col.column.available_at(i) else {
            continue;
        };
        if let Some(f) = col.distrusted {
            distrusted.get_or_insert_with(|| NotCountedWhy::Distrusted {
                repository: repo.id.clone(),
                since: f.started,
                message: f.message.clone(),
            });
            continue;
        }
        let available = view.correction.available(available);
        if available > view.now {
            pending.get_or_insert_with(|| NotCountedWhy::NotYetAvailable {
                repository: repo.id.clone(),
                at: available,
            });
        }
    }
    pending.or(distrusted).unwrap_or(NotCountedWhy::NotCopied {
        scenario,
        last_failure: failing,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{AgentHealth, HeartbeatSeen, Settings};
    use super::*;

    /// The three scenarios of system `fin` (T1: RPO 4 h; site loss counts the remote
    /// `offsite` and `vault`, ransomware only `vault`).
    fn fin(fx: &Fixture, now: &str) -> [RpoAssessment; 3] {
        Scenario::ALL.map(|s| fx.assessor().rpo("fin", s, t(now)).unwrap())
    }

    fn exposure(a: &RpoAssessment) -> Option<SignedDuration> {
        a.exposure.finite()
    }

    fn whys(a: &RpoAssessment) -> Vec<&NotCountedWhy> {
        a.reasons
            .iter()
            .filter_map(|r| match r {
                RpoReason::NotCounted { why, .. } => Some(why),
                _ => None,
            })
            .collect()
    }

    const ALL_COPIES: &[(&str, Outcome)] =
        &[("offsite", Outcome::Success), ("vault", Outcome::Success)];

    /// Pitfall 1: the backup ran from 00:00 to 03:00. Measured from its end the exposure at
    /// 04:30 would be 1h 30m (compliant); from its capture time it is 4h 30m (breached).
    #[test]
    fn pitfall_end_time_used_instead_of_capture_time() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 00:00",
                "03-01 03:00",
                Outcome::Success,
            ),
            copy_all("fin", "03-01 03:00", "03-01 03:30", ALL_COPIES),
        ]);
        for a in fin(&fx, "03-01 04:30") {
            assert_eq!(exposure(&a), Some(hours_mins(4, 30)), "{a}");
            assert_eq!(a.status, Status::Breached, "{a}");
            assert_eq!(a.breach_at, Some(t("03-01 04:00")), "{a}");
            assert_eq!(a.newest.as_ref().unwrap().captured, t("03-01 00:00"));
        }
    }

    /// Pitfall 2: the local copy is fresh, the off-site copies failed. Component loss is
    /// compliant; site loss counts nothing, and says why. A system whose chain has no off-site
    /// repository at all is told so.
    #[test]
    fn pitfall_local_copy_counted_for_site_loss() {
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
                &[("offsite", Outcome::Failed), ("vault", Outcome::Failed)],
            ),
            backup(
                "ops",
                "bbbb2222",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
        ]);
        let [component, site, ransomware] = fin(&fx, "03-01 03:00");
        assert_eq!(
            (component.status, exposure(&component)),
            (Status::Compliant, Some(hours(1)))
        );
        for a in [&site, &ransomware] {
            assert_eq!(
                (a.status, a.exposure),
                (Status::Breached, Exposure::Unbounded),
                "{a}"
            );
            assert!(
                matches!(
                    whys(a)[..],
                    [NotCountedWhy::NotCopied {
                        last_failure: Some(_),
                        ..
                    }]
                ),
                "{a}"
            );
        }
        assert!(
            site.to_string().contains(
                "aaaa1111 captured 2026-03-01T02:00:00Z, is at no repository that counts for \
             site-loss; the last write to"
            ),
            "{site}"
        );

        let ops = fx
            .assessor()
            .rpo("ops", Scenario::SiteLoss, t("03-01 03:00"))
            .unwrap();
        assert_eq!(ops.status, Status::Breached);
        assert_eq!(
            ops.reasons,
            vec![RpoReason::NoRepositoryCounts {
                scenario: Scenario::SiteLoss,
                excluded: vec![Excluded {
                    repository: repo_id("local"),
                    why: Exclusion::LostWithSite {
                        location: Location::Local
                    },
                }],
            }]
        );
    }

    /// Pitfall 3: a snapshot of a backup that ended partial or failed is copied everywhere, yet
    /// the exposure runs from the last complete one (captured a day earlier).
    #[test]
    fn pitfall_incomplete_snapshot_counted() {
        for outcome in [Outcome::Partial, Outcome::Failed] {
            let fx = Fixture::new(vec![
                backup(
                    "fin",
                    "aaaa1111",
                    "03-01 02:00",
                    "03-01 02:20",
                    Outcome::Success,
                ),
                copy_all("fin", "03-01 02:30", "03-01 02:40", ALL_COPIES),
                backup_with_snapshot("fin", "bbbb2222", "03-02 02:00", "03-02 02:20", outcome),
                copy_all("fin", "03-02 02:30", "03-02 02:40", ALL_COPIES),
            ]);
            for a in fin(&fx, "03-02 03:00") {
                assert_eq!(exposure(&a), Some(hours(25)), "{outcome:?} {a}");
                assert_eq!(
                    whys(&a),
                    [&NotCountedWhy::BackupIncomplete { outcome }],
                    "{a}"
                );
            }
        }
    }

    /// Pitfall 3: copies in a repository whose last check failed do not count — the older ones
    /// neither (the damage may be in shared packs) — until a later check passes.
    #[test]
    fn pitfall_unverified_copy_in_a_failed_repository_counted() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-02 02:00",
                "03-02 02:20",
                Outcome::Success,
            ),
            copy_all("fin", "03-02 02:30", "03-02 02:40", ALL_COPIES),
            check_run(
                "vault",
                "03-02 03:00",
                "03-02 03:10",
                Outcome::Failed,
                "integrity",
            ),
            check_run("vault", "03-02 03:30", "03-02 03:40", Outcome::Success, ""),
        ]);
        let [_, site, ransomware] = fin(&fx, "03-02 03:20");
        assert_eq!(ransomware.exposure, Exposure::Unbounded);
        assert!(
            matches!(whys(&ransomware)[..], [NotCountedWhy::Distrusted { .. }]),
            "{ransomware}"
        );
        assert_eq!(
            exposure(&site),
            Some(hours_mins(1, 20)),
            "offsite still counts"
        );

        let [_, _, ransomware] = fin(&fx, "03-02 04:00");
        assert_eq!(
            (ransomware.status, exposure(&ransomware)),
            (Status::Compliant, Some(hours(2)))
        );
    }

    /// An inconclusive check (the repository was unreachable) distrusts nothing.
    #[test]
    fn an_unreachable_check_is_not_a_failed_one() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-02 02:00",
                "03-02 02:20",
                Outcome::Success,
            ),
            copy_all("fin", "03-02 02:30", "03-02 02:40", ALL_COPIES),
            check_run(
                "vault",
                "03-02 03:00",
                "03-02 03:10",
                Outcome::Failed,
                "unreachable",
            ),
        ]);
        let [_, _, ransomware] = fin(&fx, "03-02 03:20");
        assert_eq!(ransomware.status, Status::Compliant, "{ransomware}");
    }

    /// Pitfall 4: the mutable off-site copy is fresh, the immutable vault's is a day old.
    #[test]
    fn pitfall_mutable_copy_counted_for_ransomware() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
            copy_all("fin", "03-01 02:30", "03-01 02:40", ALL_COPIES),
            backup(
                "fin",
                "bbbb2222",
                "03-02 02:00",
                "03-02 02:20",
                Outcome::Success,
            ),
            copy_all(
                "fin",
                "03-02 02:30",
                "03-02 02:40",
                &[("offsite", Outcome::Success), ("vault", Outcome::Failed)],
            ),
        ]);
        let [_, site, ransomware] = fin(&fx, "03-02 03:00");
        assert_eq!(exposure(&site), Some(hours(1)));
        assert_eq!(site.newest.as_ref().unwrap().repository, repo_id("offsite"));
        assert_eq!(exposure(&ransomware), Some(hours(25)));
        assert_eq!(
            ransomware.newest.as_ref().unwrap().repository,
            repo_id("vault")
        );
        assert_eq!(ransomware.status, Status::Breached);
    }

    /// A copy that is not available yet does not count: one recorded as available in the
    /// future, and one whose copy run failed.
    #[test]
    fn pitfall_copy_not_yet_available_counted() {
        let cases = [
            (
                "available in an hour",
                Outcome::Success,
                "03-02 04:00",
                "not-yet-available",
            ),
            ("copy failed", Outcome::Failed, "03-02 02:40", "not-copied"),
        ];
        for (what, outcome, available, want) in cases {
            let fx = Fixture::new(vec![
                backup(
                    "fin",
                    "aaaa1111",
                    "03-01 02:00",
                    "03-01 02:20",
                    Outcome::Success,
                ),
                copy_all("fin", "03-01 02:30", "03-01 02:40", ALL_COPIES),
                backup(
                    "fin",
                    "bbbb2222",
                    "03-02 02:00",
                    "03-02 02:20",
                    Outcome::Success,
                ),
                copy_all(
                    "fin",
                    "03-02 02:30",
                    available,
                    &[("offsite", outcome), ("vault", outcome)],
                ),
            ]);
            let [component, site, _] = fin(&fx, "03-02 03:00");
            assert_eq!(exposure(&component), Some(hours(1)), "{what}");
            assert_eq!(exposure(&site), Some(hours(25)), "{what}: {site}");
            let got = match whys(&site)[..] {
                [NotCountedWhy::NotYetAvailable { .. }] => "not-yet-available",
                [NotCountedWhy::NotCopied { .. }] => "not-copied",
                _ => "other",
            };
            assert_eq!(got, want, "{what}: {site}");
        }
    }

    /// Pitfall 7: the agent's clock is two hours ahead. Its records say the snapshot was
    /// captured at 04:00; it really was at 02:00. Corrected, the exposure at 06:30 is 4h 30m
    /// (breached), not 2h 30m — and the reasons say so. A clock two hours *behind* is not
    /// trusted to make things look better: the capture time is left where the agent put it.
    /// Within the limit, nothing is corrected.
    #[test]
    fn pitfall_agent_clock_skew() {
        let runs = |cap: &str, local: &str, off: &str| {
            vec![
                backup("fin", "aaaa1111", cap, local, Outcome::Success),
                copy_all("fin", local, off, ALL_COPIES),
            ]
        };
        let cases = [
            // (what, records in agent time, offset coordinator − agent, now, exposure, corrected)
            (
                "2 h ahead",
                runs("03-01 04:00", "03-01 04:20", "03-01 05:00"),
                -7200,
                "03-01 06:30",
                hours_mins(4, 30),
                true,
            ),
            (
                "2 h behind",
                runs("03-01 00:00", "03-01 00:20", "03-01 01:00"),
                7200,
                "03-01 05:00",
                hours(5),
                true,
            ),
            (
                "30 s off",
                runs("03-01 04:00", "03-01 04:20", "03-01 05:00"),
                -30,
                "03-01 06:30",
                hours_mins(2, 30),
                false,
            ),
        ];
        for (what, records, offset, now, want, corrected) in cases {
            let mut fx = Fixture::new(records);
            let seen = HeartbeatSeen {
                host: "h1".into(),
                sent_at: plus(t(now), SignedDuration::from_secs(-offset)),
                received_at: t(now),
            };
            fx.agents.insert(
                "h1".into(),
                AgentHealth::assess("h1", Some(&seen), t(now), &Settings::default()),
            );
            let [_, site, _] = fin(&fx, now);
            assert_eq!(exposure(&site), Some(want), "{what}: {site}");
            let flagged = site
                .reasons
                .iter()
                .any(|r| matches!(r, RpoReason::ClockCorrected { .. }));
            assert_eq!(flagged, corrected, "{what}: {site}");
        }
    }

    /// Status bands for T1 (4 h target, at risk above 80 % = 3h 12m).
    #[test]
    fn status_table() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
            copy_all("fin", "03-01 02:30", "03-01 02:40", ALL_COPIES),
        ]);
        let cases = [
            ("03-01 03:00", Status::Compliant),
            ("03-01 05:12", Status::Compliant),
            ("03-01 05:13", Status::AtRisk),
            ("03-01 06:00", Status::AtRisk),
            ("03-01 06:01", Status::Breached),
        ];
        for (now, want) in cases {
            let [_, site, _] = fin(&fx, now);
            assert_eq!(site.status, want, "{now}: {site}");
        }
        let never = fx
            .assessor()
            .rpo("hr", Scenario::SiteLoss, t("03-01 03:00"))
            .unwrap();
        assert_eq!(
            (never.status, never.exposure),
            (Status::NoEvidence, Exposure::Unbounded)
        );
        assert_eq!(
            never.reasons,
            vec![RpoReason::NoBackup { last_failure: None }]
        );
    }

    /// The breach instant is the counted snapshot's capture plus the target, per scenario: the
    /// off-site copy of last night's snapshot has not arrived, so site loss runs from the night
    /// before.
    #[test]
    fn predicted_breach_time() {
        let fx = Fixture::new(vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:20",
                Outcome::Success,
            ),
            copy_all("fin", "03-01 02:30", "03-01 02:40", ALL_COPIES),
            backup(
                "fin",
                "bbbb2222",
                "03-01 14:00",
                "03-01 14:20",
                Outcome::Success,
            ),
        ]);
        let [component, site, _] = fin(&fx, "03-01 15:00");
        assert_eq!(component.breach_at, Some(t("03-01 18:00")));
        assert_eq!(component.status, Status::Compliant);
        assert_eq!(site.breach_at, Some(t("03-01 06:00")));
        assert_eq!(site.overdue(), Some(hours(9)));
        assert_eq!(
            site.to_string(),
            "site-loss: breached — exposure 13h against a 4h target (9h over); newest counted \
             snapshot aaaa1111, captured 2026-03-01T02:00:00Z, available at offsite (remote) since \
             2026-03-01T02:40:00Z; a newer snapshot does not count: bbbb2222 captured \
             2026-03-01T14:00:00Z, is at no repository that counts for site-loss (not copied \
             there yet)"
        );
    }

    /// A silent agent is named: its newer results may be stuck in its spool.
    #[test]
    fn a_silent_agent_is_named_in_the_reasons() {
        let mut fx = Fixture::new(vec![backup(
            "fin",
            "aaaa1111",
            "03-01 02:00",
            "03-01 02:20",
            Outcome::Success,
        )]);
        let seen = HeartbeatSeen {
            host: "h1".into(),
            sent_at: t("03-01 02:30"),
            received_at: t("03-01 02:30"),
        };
        fx.agents.insert(
            "h1".into(),
            AgentHealth::assess("h1", Some(&seen), t("03-02 00:00"), &Settings::default()),
        );
        let [component, ..] = fin(&fx, "03-02 00:00");
        assert!(
            component.reasons.contains(&RpoReason::AgentSilent {
                host: "h1".into(),
                last_seen: Some(t("03-01 02:30")),
            }),
            "{component}"
        );
    }
}
