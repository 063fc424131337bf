//! A calendar quarter (`2026Q4`) and its bounds in the organisation's time zone.
//!
//! Pure: parsing, printing and arithmetic on quarters; the zone and `now` are passed in. It
//! must not read the clock or decide which zone is the organisation's (the report does that).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A calendar quarter: Q1 = January–March … Q4 = October–December.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i16,
    /// 1..=4.
    q: u8,
}

/// Why a text is not a quarter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a quarter; write the year and the quarter number, e.g. 2026Q4")]
pub struct QuarterError(pub String);

impl Quarter {
    /// The first and last years a quarter may name (jiff's civil calendar reaches further, but
    /// nothing outside these is a plausible report).
    const YEARS: std::ops::RangeInclusive<i16> = 1970..=9998;

    pub fn new(year: i16, q: u8) -> Result<Quarter, QuarterError> {
        if (1..=4).contains(&q) && Self::YEARS.contains(&year) {
            Ok(Quarter { year, q })
        } else {
            Err(QuarterError(format!("{year}Q{q}")))
        }
    }

    pub fn year(self) -> i16 {
        self.year
    }

    /// 1..=4.
    pub fn number(self) -> u8 {
        self.q
    }

    /// The quarter before this one.
    pub fn previous(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }

    /// The quarter after this one.
    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    /// The `n` quarters before this one, the nearest first.
    pub fn previous_n(self, n: usize) -> Vec<Quarter> {
        std::iter::successors(Some(self.previous()), |q| Some(q.previous()))
            .take(n)
            .collect()
    }

    /// The quarter holding `t` in `tz`.
    pub fn containing(t: Timestamp, tz: &TimeZone) -> Quarter {
        let d = t.to_zoned(tz.clone()).date();
        let q = (d.month() as u8 - 1) / 3 + 1;
        Quarter {
            year: d.year().clamp(*Self::YEARS.start(), *Self::YEARS.end()),
            q,
        }
    }

    /// The last quarter that had ended by `now` in `tz`: the default of `lifeboat report`.
    pub fn last_complete(now: Timestamp, tz: &TimeZone) -> Quarter {
        Quarter::containing(now, tz).previous()
    }

    /// `[start, end)`: midnight of the quarter's first day to midnight of the next quarter's
    /// first day, in `tz`.
    pub fn bounds(self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        (self.start(tz), self.next().start(tz))
    }

    fn start(self, tz: &TimeZone) -> Timestamp {
        let month = (self.q as i8 - 1) * 3 + 1;
        // Every day of the years in range exists and has a midnight or a later first instant
        // (a zone that skips midnight moves it forward), so this cannot fail; the fallback is
        // UTC midnight.
        let day = date(self.year, month, 1);
        day.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .or_else(|_| day.to_zoned(TimeZone::UTC).map(|z| z.timestamp()))
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

impl FromStr for Quarter {
    type Err = QuarterError;

    /// `2026Q4`, `2026q4` or `2026-Q4`.
    fn from_str(s: &str) -> Result<Quarter, QuarterError> {
        let bad = || QuarterError(s.to_string());
        let t = s.trim();
        let (year, q) = t.split_once(['Q', 'q']).ok_or_else(bad)?;
        let year = year.strip_suffix('-').unwrap_or(year);
        if year.len() != 4 || q.len() != 1 {
            return Err(bad());
        }
        let year: i16 = year.parse().map_err(|_| bad())?;
        let q: u8 = q.parse().map_err(|_| bad())?;
        Quarter::new(year, q).map_err(|_| bad())
    }
}

impl Serialize for Quarter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quarter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Quarter, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<(i16, u8)>) {
        let got = text.parse::<Quarter>().ok().map(|q| (q.year(), q.number()));
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn parses_and_prints() {
        check("2026Q4", Some((2026, 4)));
        check("2026q1", Some((2026, 1)));
        check(" 2026-Q2 ", Some((2026, 2)));
        for bad in [
            "2026Q5", "2026Q0", "26Q4", "2026", "Q4", "2026Q44", "20x6Q1", "1969Q4",
        ] {
            check(bad, None);
        }
        let q: Quarter = "2026Q4".parse().unwrap();
        assert_eq!(q.to_string(), "2026Q4");
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"2026Q4\"");
        assert_eq!(
            serde_json::from_str::<Quarter>("\"2025Q1\"").unwrap(),
            Quarter::new(2025, 1).unwrap()
        );
    }

    #[test]
    fn bounds_are_local_midnights_and_quarters_chain() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let q: Quarter = "2026Q4".parse().unwrap();
        let (from, to) = q.bounds(&tz);
        assert_eq!(from.to_string(), "2026-09-30T16:00:00Z");
        assert_eq!(to.to_string(), "2026-12-31T16:00:00Z");
        assert_eq!(q.previous().bounds(&tz).1, from);
        assert_eq!(q.next().bounds(&tz).0, to);
        assert_eq!(
            q.previous_n(4)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["2026Q3", "2026Q2", "2026Q1", "2025Q4"]
        );
        // 2026-01-01 03:00 in Shanghai is still 2025 in UTC.
        let t: Timestamp = "2025-12-31T19:00:00Z".parse().unwrap();
        assert_eq!(Quarter::containing(t, &tz).to_string(), "2026Q1");
        assert_eq!(Quarter::containing(t, &TimeZone::UTC).to_string(), "2025Q4");
        assert_eq!(Quarter::last_complete(t, &tz).to_string(), "2025Q4");
    }
}
