//! Small shared vocabulary of assessment results: an exposure that may be unbounded, and
//! durations written for people ("1d 7h").

use std::cmp::Ordering;
use std::fmt;

use jiff::SignedDuration;
use serde::Serialize;

/// An RPO exposure: how much data would be lost if the disaster struck now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    /// `now − t_cap` of the newest snapshot that counts.
    Finite(SignedDuration),
    /// No snapshot counts: everything would be lost.
    Unbounded,
}

impl Exposure {
    pub fn finite(self) -> Option<SignedDuration> {
        match self {
            Exposure::Finite(d) => Some(d),
            Exposure::Unbounded => None,
        }
    }

    /// Whether it is above `target` (an unbounded exposure is above every target).
    pub fn exceeds(self, target: SignedDuration) -> bool {
        self.finite().is_none_or(|d| d > target)
    }
}

impl PartialOrd for Exposure {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Exposure {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Exposure::Finite(a), Exposure::Finite(b)) => a.cmp(b),
            (Exposure::Finite(_), Exposure::Unbounded) => Ordering::Less,
            (Exposure::Unbounded, Exposure::Finite(_)) => Ordering::Greater,
            (Exposure::Unbounded, Exposure::Unbounded) => Ordering::Equal,
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exposure::Finite(d) => Human(*d).fmt(f),
            Exposure::Unbounded => f.write_str("unbounded"),
        }
    }
}

/// A duration for people: its two largest units of days, hours, minutes and seconds, truncated
/// (`1d 7h`, `31m`, `45s`, `0s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Human(pub SignedDuration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_negative() {
            f.write_str("-")?;
        }
        let secs = self.0.as_secs().unsigned_abs();
        if secs == 0 {
            return f.write_str("0s");
        }
        let parts = [
            (secs / 86_400, "d"),
            (secs / 3_600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
        ];
        let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
        let mut written = 0;
        for (n, unit) in parts.iter().skip(first).take(2) {
            if *n > 0 {
                if written > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{n}{unit}")?;
                written += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_table() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (60, "1m"),
            (3_600 * 31, "1d 7h"),
            (3_600 * 31 + 59 * 60, "1d 7h"),
            (3_600 * 2, "2h"),
            (86_400 + 30, "1d"),
            (5_400, "1h 30m"),
            (-7_200, "-2h"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                Human(SignedDuration::from_secs(secs)).to_string(),
                want,
                "{secs}"
            );
        }
    }

    #[test]
    fn unbounded_exposure_exceeds_every_target() {
        let day = SignedDuration::from_hours(24);
        assert!(Exposure::Unbounded.exceeds(day));
        assert!(Exposure::Unbounded > Exposure::Finite(SignedDuration::MAX));
        assert!(
            !Exposure::Finite(day).exceeds(day),
            "at the target is within it"
        );
        assert!(Exposure::Finite(day + SignedDuration::from_secs(1)).exceeds(day));
    }
}
