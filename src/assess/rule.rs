//! 3-2-1-1-0 conformance of one system (standards §2 and §3.4), computed from the inventory, not
//! declared: copies (production counts as one), kinds of media, off-site copies, immutable
//! copies, and zero unresolved verification errors — each digit against the tier, with what
//! keeps a failing digit from being met.
//!
//! A repository *holds a copy* when it has a complete snapshot available at `now` and is not
//! distrusted by a failed check. How fresh that copy is, is the RPO assessment's concern. The
//! "0" is required of every tier: it counts the chain's repositories whose last conclusive check
//! failed, and the repositories holding copies that no check ever passed.

use std::fmt;

use serde::Serialize;

use super::scenario::{Exclusion, Scenario};
use super::{Col, SystemView};
use crate::policy::{RepoId, Repository, StorageKind};

/// One digit of 3-2-1-1-0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DigitKind {
    /// Copies of the data, production included (the "3").
    Copies,
    /// Kinds of storage among them, production's local disk included (the "2").
    Media,
    /// Copies outside the site, as far as the tier's off-site class demands (the "1").
    Offsite,
    /// Immutable copies (the second "1").
    Immutable,
    /// Unresolved verification errors (the "0"): a most, not a least.
    Errors,
}

impl fmt::Display for DigitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigitKind::Copies => "copies",
            DigitKind::Media => "media",
            DigitKind::Offsite => "off-site copies",
            DigitKind::Immutable => "immutable copies",
            DigitKind::Errors => "verification errors",
        })
    }
}

/// Why a repository of the chain holds no copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "gap")]
pub enum RepoGap {
    /// Nothing was ever written there (or nothing complete).
    NoCopy,
    /// Its copies are all recorded as available only later than now.
    NotYetAvailable,
    /// The last write failed.
    LastWriteFailed {
        at: jiff::Timestamp,
        message: String,
    },
    /// A failed check distrusts it.
    Distrusted {
        since: jiff::Timestamp,
        message: String,
    },
}

/// What keeps a digit from being met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "note")]
pub enum RuleNote {
    NoValidCopy {
        repository: RepoId,
        gap: RepoGap,
    },
    NotOffsite {
        repository: RepoId,
        why: Exclusion,
    },
    Mutable {
        repository: RepoId,
    },
    /// Every copy is on these kinds of storage.
    OnlyMedia {
        kinds: Vec<&'static str>,
    },
    CheckFailed {
        repository: RepoId,
        since: jiff::Timestamp,
        message: String,
    },
    NeverVerified {
        repository: RepoId,
    },
    /// A repository of the chain missing from the policy.
    Unknown {
        repository: RepoId,
    },
}

impl fmt::Display for RuleNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleNote::NoValidCopy { repository, gap } => {
                write!(f, "{repository} holds no valid copy")?;
                match gap {
                    RepoGap::NoCopy => f.write_str(" (nothing complete was written there)"),
                    RepoGap::NotYetAvailable => f.write_str(" (its copies are still to come)"),
                    RepoGap::LastWriteFailed { at, message } => {
                        write!(f, ": the last write failed at {at}: {message}")
                    }
                    RepoGap::Distrusted { since, message } => {
                        write!(f, ": a check started at {since} failed: {message}")
                    }
                }
            }
            RuleNote::NotOffsite { repository, why } => write!(f, "{repository} {why}"),
            RuleNote::Mutable { repository } => write!(f, "{repository} is not immutable"),
            RuleNote::OnlyMedia { kinds } => write!(f, "every copy is on {}", kinds.join(", ")),
            RuleNote::CheckFailed {
                repository,
                since,
                message,
            } => write!(
                f,
                "{repository} failed a check started at {since} and no later check cleared it: {message}"
            ),
            RuleNote::NeverVerified { repository } => {
                write!(f, "{repository} holds copies that no check has verified")
            }
            RuleNote::Unknown { repository } => {
                write!(
                    f,
                    "{repository} is not in the policy, so its location is unknown"
                )
            }
        }
    }
}

/// One digit: what the tier requires, what the inventory shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Digit {
    pub kind: DigitKind,
    /// At least this many (for [`DigitKind::Errors`]: at most).
    pub required: u32,
    pub actual: u32,
    pub met: bool,
    /// Empty when met.
    pub notes: Vec<RuleNote>,
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DigitKind::Errors => write!(
                f,
                "{}: {} (must be {})",
                self.kind, self.actual, self.required
            )?,
            _ => write!(f, "{}: {} of {}", self.kind, self.actual, self.required)?,
        }
        for (i, n) in self.notes.iter().enumerate() {
            f.write_str(if i == 0 { " — " } else { "; " })?;
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// The five digits of one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleConformance {
    /// In 3-2-1-1-0 order.
    pub digits: [Digit; 5],
}

impl RuleConformance {
    pub fn conformant(&self) -> bool {
        self.digits.iter().all(|d| d.met)
    }

    pub fn digit(&self, kind: DigitKind) -> &Digit {
        let i = match kind {
            DigitKind::Copies => 0,
            DigitKind::Media => 1,
            DigitKind::Offsite => 2,
            DigitKind::Immutable => 3,
            DigitKind::Errors => 4,
        };
        &self.digits[i]
    }

    pub fn failing(&self) -> impl Iterator<Item = &Digit> {
        self.digits.iter().filter(|d| !d.met)
    }
}

impl fmt::Display for RuleConformance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, m, o, i, e] = &self.digits;
        write!(
            f,
            "{}-{}-{}-{}-{} against {}-{}-{}-{}-{}",
            c.actual,
            m.actual,
            o.actual,
            i.actual,
            e.actual,
            c.required,
            m.required,
            o.required,
            i.required,
            e.required
        )?;
        for d in self.failing() {
            write!(f, "; {d}")?;
        }
        Ok(())
    }
}

fn kind_name(k: StorageKind) -> &'static str {
    match k {
        StorageKind::LocalDisk => "local disk",
        StorageKind::ObjectStore => "object store",
    }
}

fn kind_bit(k: StorageKind) -> u8 {
    match k {
        StorageKind::LocalDisk => 1,
        StorageKind::ObjectStore => 2,
    }
}

/// Whether a column holds a complete snapshot available at `now` and is not distrusted.
fn holds(view: &SystemView<'_>, col: &Col<'_>) -> bool {
    col.distrusted.is_none()
        && col.column.copies().any(|(i, available)| {
            view.evidence.snapshots()[i]
                .capture
                .is_some_and(|c| c.is_complete())
                && view.correction.available(available) <= view.now
        })
}

pub(crate) fn conformance(view: &SystemView<'_>) -> RuleConformance {
    let tier = view.tier;
    let holding: Vec<&Col<'_>> = view
        .cols
        .iter()
        .filter(|c| c.repo.is_some() && holds(view, c))
        .collect();
    let repos = || holding.iter().filter_map(|c| c.repo);

    // Production is a copy, on local disk.
    let copies = 1 + count(repos());
    let mut kinds = kind_bit(StorageKind::LocalDisk);
    for r in repos() {
        kinds |= kind_bit(r.url.storage_kind());
    }
    let media = kinds.count_ones();
    let offsite = count(repos().filter(|r| tier.offsite_class.admits(r.location)));
    let immutable = count(repos().filter(|r| r.immutable));

    let mut errors = Vec::new();
    for id in &view.system.repositories {
        let col = view.col(id.as_str());
        if let Some(f) = col.and_then(|c| c.distrusted) {
            errors.push(RuleNote::CheckFailed {
                repository: id.clone(),
                since: f.started,
                message: f.message.clone(),
            });
        } else if let Some(c) = col.filter(|_| holding.iter().any(|h| h.column.repository() == id))
            && c.checks
                .is_none_or(|k| k.as_of(view.now).last_pass.is_none())
        {
            errors.push(RuleNote::NeverVerified {
                repository: id.clone(),
            });
        }
    }

    let chain_notes = |keep: &dyn Fn(&Repository) -> Option<RuleNote>| {
        let mut notes = Vec::new();
        for id in &view.system.repositories {
            let Some(repo) = view.policy.repositories.get(id) else {
                notes.push(RuleNote::Unknown {
                    repository: id.clone(),
                });
                continue;
            };
            if let Some(n) = keep(repo) {
                notes.push(n);
            } else if !holding.iter().any(|c| c.column.repository() == id) {
                notes.push(RuleNote::NoValidCopy {
                    repository: id.clone(),
                    gap: gap(view, id),
                });
            }
        }
        notes
    };

    let digit = |kind, required: u8, actual: u32, notes: &dyn Fn() -> Vec<RuleNote>| {
        let required = u32::from(required);
        let met = actual >= required;
        Digit {
            kind,
            required,
            actual,
            met,
            notes: if met { Vec::new() } else { notes() },
        }
    };
    let error_count = count(errors.iter());
    RuleConformance {
        digits: [
            digit(DigitKind::Copies, tier.copies, copies, &|| {
                chain_notes(&|_| None)
            }),
            digit(DigitKind::Media, tier.media, media, &|| {
                let kinds = [StorageKind::LocalDisk, StorageKind::ObjectStore]
                    .into_iter()
                    .filter(|k| kinds & kind_bit(*k) != 0)
                    .map(kind_name)
                    .collect();
                vec![RuleNote::OnlyMedia { kinds }]
            }),
            digit(DigitKind::Offsite, tier.offsite, offsite, &|| {
                chain_notes(&|r| {
                    Scenario::SiteLoss
                        .excludes(r, tier)
                        .map(|why| RuleNote::NotOffsite {
                            repository: r.id.clone(),
                            why,
                        })
                })
            }),
            digit(DigitKind::Immutable, tier.immutable, immutable, &|| {
                chain_notes(&|r| {
                    (!r.immutable).then(|| RuleNote::Mutable {
                        repository: r.id.clone(),
                    })
                })
            }),
            Digit {
                kind: DigitKind::Errors,
                required: 0,
                actual: error_count,
                met: errors.is_empty(),
                notes: errors,
            },
        ],
    }
}

fn count<T>(it: impl Iterator<Item = T>) -> u32 {
    u32::try_from(it.count()).unwrap_or(u32::MAX)
}

/// Why a repository of the chain holds no copy.
fn gap(view: &SystemView<'_>, id: &RepoId) -> RepoGap {
    let Some(col) = view.col(id.as_str()) else {
        return RepoGap::NoCopy;
    };
    if let Some(f) = col.distrusted {
        return RepoGap::Distrusted {
            since: f.started,
            message: f.message.clone(),
        };
    }
    if let Some(w) = col.column.writes().failing() {
        return RepoGap::LastWriteFailed {
            at: w.at,
            message: w.message.clone(),
        };
    }
    let complete_later = col.column.copies().any(|(i, _)| {
        view.evidence.snapshots()[i]
            .capture
            .is_some_and(|c| c.is_complete())
    });
    if complete_later {
        RepoGap::NotYetAvailable
    } else {
        RepoGap::NoCopy
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::policy::Location;
    use crate::run::{Outcome, RunRecord};

    fn base_runs() -> Vec<RunRecord> {
        vec![
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
                &[("offsite", Outcome::Success), ("vault", Outcome::Success)],
            ),
            check_run("local", "03-01 03:00", "03-01 03:05", Outcome::Success, ""),
            check_run(
                "offsite",
                "03-01 03:00",
                "03-01 03:05",
                Outcome::Success,
                "",
            ),
            check_run("vault", "03-01 03:00", "03-01 03:05", Outcome::Success, ""),
        ]
    }

    type Tweak = fn(&mut crate::policy::Policy, &mut Vec<RunRecord>);

    /// From a conformant base (T1: 3-2-1-1-0; `fin` at local disk, a remote object store and
    /// a remote immutable vault, all copied and checked), one change at a time makes exactly one
    /// digit fail.
    #[test]
    fn digits_fail_one_at_a_time() {
        let cases: [(&str, Tweak, Option<DigitKind>, &str); 7] = [
            ("conformant", |_, _| {}, None, ""),
            (
                "the tier wants 4 copies and the off-site copy failed",
                |p, runs| {
                    p.tiers.get_mut("T1").unwrap().copies = 4;
                    runs[1] = copy_all(
                        "fin",
                        "03-01 02:30",
                        "03-01 02:40",
                        &[("offsite", Outcome::Failed), ("vault", Outcome::Success)],
                    );
                },
                Some(DigitKind::Copies),
                "copies: 3 of 4 — offsite holds no valid copy: the last write failed at 2026-03-01T02:40:00Z: connection refused",
            ),
            (
                "both off-site repositories are mounted file systems",
                |p, _| {
                    for r in ["offsite", "vault"] {
                        p.repositories.get_mut(r).unwrap().url =
                            format!("/mnt/{r}").parse().unwrap();
                    }
                },
                Some(DigitKind::Media),
                "media: 1 of 2 — every copy is on local disk",
            ),
            (
                "both off-site repositories are only in the same city",
                |p, _| {
                    for r in ["offsite", "vault"] {
                        p.repositories.get_mut(r).unwrap().location = Location::SameCity;
                    }
                },
                Some(DigitKind::Offsite),
                "off-site copies: 0 of 1 — local is local, so it is lost with the site; offsite is \
                 same-city, and this tier counts only remote copies as off-site; vault is same-city, \
                 and this tier counts only remote copies as off-site",
            ),
            (
                "the vault loses its object lock",
                |p, _| p.repositories.get_mut("vault").unwrap().immutable = false,
                Some(DigitKind::Immutable),
                "immutable copies: 0 of 1 — local is not immutable; offsite is not immutable; vault \
                 is not immutable",
            ),
            (
                "the off-site repository fails a check",
                |_, runs| {
                    runs.push(check_run(
                        "offsite",
                        "03-01 04:00",
                        "03-01 04:05",
                        Outcome::Failed,
                        "integrity",
                    ))
                },
                Some(DigitKind::Errors),
                "verification errors: 1 (must be 0) — offsite failed a check started at \
                 2026-03-01T04:00:00Z and no later check cleared it: 2 errors: pack 1a2b hash mismatch",
            ),
            (
                "the vault was never checked",
                |_, runs| {
                    runs.pop();
                },
                Some(DigitKind::Errors),
                "verification errors: 1 (must be 0) — vault holds copies that no check has verified",
            ),
        ];
        for (what, tweak, failing, text) in cases {
            let mut policy = policy();
            let mut runs = base_runs();
            tweak(&mut policy, &mut runs);
            let fx = Fixture::with_policy(policy, runs);
            let rule = fx.assessor().rule("fin", t("03-01 06:00")).unwrap();
            let failed: Vec<DigitKind> = rule.failing().map(|d| d.kind).collect();
            assert_eq!(
                failed,
                failing.into_iter().collect::<Vec<_>>(),
                "{what}: {rule}"
            );
            if let Some(kind) = failing {
                assert_eq!(rule.digit(kind).to_string(), text, "{what}");
            } else {
                assert!(rule.conformant());
                assert_eq!(rule.to_string(), "4-2-2-1-0 against 3-2-1-1-0");
            }
        }
    }
}
