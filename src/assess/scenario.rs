//! Failure scenarios and which repository copies each one may count (standards §3.2): the
//! heart of "count only off-site copies for a site disaster" (pitfalls 2 and 4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::policy::{Location, OffsiteClass, Repository, Tier};

/// What is being protected against.
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
pub enum Scenario {
    /// A disk, server or database is lost: every copy counts.
    ComponentLoss,
    /// The system's site is lost: only copies the tier counts as off-site. The headline.
    SiteLoss,
    /// An attacker with the agent's credentials: only immutable (object-lock, append-only)
    /// copies.
    Ransomware,
}

/// Why a repository's copies do not count for a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "exclusion")]
pub enum Exclusion {
    /// `local` or `same-site`: it burns with the site.
    LostWithSite { location: Location },
    /// Off the site, but nearer than the tier's off-site class demands.
    NotFarEnough {
        location: Location,
        required: OffsiteClass,
    },
    /// Anyone holding the agent's credentials can delete or encrypt it.
    Mutable,
    /// The repository is not in the policy in force: where it is, is unknown.
    NotInPolicy,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::LostWithSite { location } => {
                write!(f, "is {location}, so it is lost with the site")
            }
            Exclusion::NotFarEnough { location, required } => write!(
                f,
                "is {location}, and this tier counts only {required} copies as off-site"
            ),
            Exclusion::NotInPolicy => {
                f.write_str("is not in the policy, so where it is is unknown")
            }
            Exclusion::Mutable => {
                f.write_str("is mutable, so an attacker can delete or encrypt it")
            }
        }
    }
}

impl Scenario {
    /// Every scenario, in the order assessments list them.
    pub const ALL: [Scenario; 3] = [
        Scenario::ComponentLoss,
        Scenario::SiteLoss,
        Scenario::Ransomware,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::ComponentLoss => "component-loss",
            Scenario::SiteLoss => "site-loss",
            Scenario::Ransomware => "ransomware",
        }
    }

    /// The position in [`Scenario::ALL`].
    pub fn index(self) -> usize {
        match self {
            Scenario::ComponentLoss => 0,
            Scenario::SiteLoss => 1,
            Scenario::Ransomware => 2,
        }
    }

    /// Why copies at `repo` do not count for this scenario, for a system of `tier`; `None`
    /// when they count.
    pub fn excludes(self, repo: &Repository, tier: &Tier) -> Option<Exclusion> {
        match self {
            Scenario::ComponentLoss => None,
            Scenario::SiteLoss if repo.location < Location::SameCity => {
                Some(Exclusion::LostWithSite {
                    location: repo.location,
                })
            }
            Scenario::SiteLoss if !tier.offsite_class.admits(repo.location) => {
                Some(Exclusion::NotFarEnough {
                    location: repo.location,
                    required: tier.offsite_class,
                })
            }
            Scenario::SiteLoss => None,
            Scenario::Ransomware if !repo.immutable => Some(Exclusion::Mutable),
            Scenario::Ransomware => None,
        }
    }

    /// Whether copies at `repo` count for this scenario, for a system of `tier`.
    pub fn counts(self, repo: &Repository, tier: &Tier) -> bool {
        self.excludes(repo, tier).is_none()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| {
                format!("unknown scenario \"{s}\"; use component-loss, site-loss or ransomware")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// Which of the test policy's repositories count, per scenario and tier (T1 demands 异地,
    /// T2 accepts 同城).
    #[test]
    fn counted_repositories_table() {
        let p = policy();
        let t1 = &p.tiers["T1"];
        let t2 = &p.tiers["T2"];
        let cases = [
            ("local", t1, [true, false, false]),
            ("sameroom", t1, [true, false, false]),
            ("city", t1, [true, false, false]),
            ("city", t2, [true, true, false]),
            ("offsite", t1, [true, true, false]),
            ("vault", t1, [true, true, true]),
        ];
        for (repo, tier, want) in cases {
            let got = Scenario::ALL.map(|s| s.counts(&p.repositories[repo], tier));
            assert_eq!(got, want, "{repo} for {}", tier.id);
        }
        assert_eq!(
            Scenario::SiteLoss
                .excludes(&p.repositories["city"], t1)
                .unwrap()
                .to_string(),
            "is same-city, and this tier counts only remote copies as off-site"
        );
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.as_str().parse::<Scenario>(), Ok(s));
            assert_eq!(Scenario::ALL[s.index()], s);
        }
        assert!("regional".parse::<Scenario>().is_err());
    }
}
