//! The branch link: how fast off-site traffic may flow, and when, by time of day.
//!
//! A branch shares one thin line with its people, so copies to other sites obey a schedule —
//! e.g. 2 MiB/s during business hours, unlimited at night — and may be confined to windows
//! outside which no off-site transfer starts or continues. This is the `[link]` table of
//! `agent.toml`, parsed once into a [`LinkPolicy`], and the pure questions asked of it: what is
//! the limit at `t`, is the window open at `t`, when does it close, when does it open next.
//!
//! Nothing here reads a clock, a file or the network: the instant is passed in with the zone
//! the schedule is written in. The engine's `throttle` module applies the answers to writes.
//!
//! Semantics:
//! - A daily range `"20:00-06:00"` may wrap midnight; `"24:00"` is allowed as an end. A range
//!   belongs to the day it starts on: `days = ["fri"]` with `"22:00-02:00"` covers Friday night
//!   into Saturday morning.
//! - Civil times become instants with jiff's *compatible* disambiguation: a time skipped by a
//!   DST gap means the instant after the gap, a repeated time its first occurrence. Each
//!   occurrence of a range is therefore one continuous stretch of real time, even across a DST
//!   change (a window 01:00–05:00 lasts 3 h on the spring-forward night and 5 h in autumn).
//! - The first bandwidth rule that covers an instant sets the limit; `default-limit` applies
//!   where none does. Windows are independent of limits.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// The `[link]` table: windows for off-site traffic and a time-of-day bandwidth schedule.
/// The default is "always open, unlimited".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LinkPolicy {
    /// When off-site traffic may start or continue; empty means always.
    #[serde(default)]
    pub windows: Vec<TimeRange>,
    /// The limit wherever no bandwidth rule applies.
    #[serde(default)]
    pub default_limit: Limit,
    /// Time-of-day limits; the first rule covering an instant decides.
    #[serde(default)]
    pub bandwidth: Vec<BandwidthRule>,
}

/// One `[[link.bandwidth]]` entry: a limit during daily hours, on some days of the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BandwidthRule {
    pub hours: TimeRange,
    pub limit: Limit,
    /// The days on which the range *starts*; every day when omitted.
    #[serde(default)]
    pub days: Days,
}

/// How long a schedule is searched ahead for the next change. Daily windows change at least
/// daily, so a window still open at the end of this horizon never closes.
const HORIZON_DAYS: i64 = 8;

impl LinkPolicy {
    /// The limit at `t` in bytes per second; `None` means unlimited.
    pub fn limit_at(&self, t: Timestamp, tz: &TimeZone) -> Option<u64> {
        self.bandwidth
            .iter()
            .find(|rule| covers(rule.hours, rule.days, t, tz))
            .map_or(self.default_limit, |rule| rule.limit)
            .bytes_per_second()
    }

    /// Whether off-site traffic may flow at `t`.
    pub fn window_open(&self, t: Timestamp, tz: &TimeZone) -> bool {
        self.windows.is_empty() || self.windows.iter().any(|w| covers(*w, Days::EVERY, t, tz))
    }

    /// When the window open at `t` closes: `None` when it never does (no windows, or windows
    /// that together cover every hour); `t` itself when the window is already closed at `t`.
    pub fn window_closes_at(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.windows.is_empty() {
            return None;
        }
        let (stretches, horizon) = self.open_stretches(t, tz);
        match stretches.iter().find(|s| s.contains(t)) {
            None => Some(t),
            Some(s) if s.end >= horizon => None,
            Some(s) => Some(s.end),
        }
    }

    /// When traffic may next flow at or after `t`: `t` itself when the window is open at `t`;
    /// `None` only if no window opens within a week (which daily windows cannot do).
    pub fn next_window_opens(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        if self.window_open(t, tz) {
            return Some(t);
        }
        let (stretches, _) = self.open_stretches(t, tz);
        stretches.iter().map(|s| s.start).find(|&start| start > t)
    }

    /// The windows' occurrences from two days before `t` to [`HORIZON_DAYS`] after, merged into
    /// sorted, disjoint stretches; and the end of the last one (the horizon).
    fn open_stretches(&self, t: Timestamp, tz: &TimeZone) -> (Vec<Stretch>, Timestamp) {
        let today = tz.to_datetime(t).date();
        let mut all: Vec<Stretch> = (-2..=HORIZON_DAYS)
            .filter_map(|n| {
                let span = jiff::Span::new().try_days(n).ok()?;
                today.checked_add(span).ok()
            })
            .flat_map(|date| {
                self.windows
                    .iter()
                    .filter_map(move |w| w.occurrence(date, tz))
            })
            .collect();
        all.sort_by_key(|s| s.start);
        let horizon = all.iter().map(|s| s.end).max().unwrap_or(t);
        let mut merged: Vec<Stretch> = Vec::with_capacity(all.len());
        for s in all {
            match merged.last_mut() {
                Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        (merged, horizon)
    }
}

/// One occurrence of a daily range, as instants: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stretch {
    start: Timestamp,
    end: Timestamp,
}

impl Stretch {
    fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// Whether an occurrence of `range` starting on one of `days` contains `t`.
fn covers(range: TimeRange, days: Days, t: Timestamp, tz: &TimeZone) -> bool {
    let today = tz.to_datetime(t).date();
    // An occurrence lasts at most a day plus a DST shift, so only those starting today or
    // yesterday can contain `t`.
    [today.yesterday().ok(), Some(today)]
        .into_iter()
        .flatten()
        .filter(|date| days.contains(date.weekday()))
        .filter_map(|date| range.occurrence(date, tz))
        .any(|s| s.contains(t))
}

// ---------------------------------------------------------------------------------------------
// TimeRange

const MINUTES_PER_DAY: u16 = 24 * 60;

/// A daily range of civil times, `"08:00-20:00"` or, wrapping midnight, `"20:00-06:00"`.
/// Start and end differ; the end may be `"24:00"`. Minute precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Minutes after midnight, `0..1440`.
    start: u16,
    /// Minutes after midnight, `0..=1440` (`1440` is "24:00"), never equal to `start`.
    end: u16,
}

impl TimeRange {
    /// Whether the range runs past midnight into the next day.
    pub fn wraps_midnight(&self) -> bool {
        self.end < self.start
    }

    /// The occurrence that starts on `date`, resolved in `tz` (compatible disambiguation).
    /// `None` outside jiff's range, or if a DST change made the occurrence empty.
    fn occurrence(&self, date: Date, tz: &TimeZone) -> Option<Stretch> {
        let start = resolve(date, self.start, tz)?;
        let end_date = if self.end <= self.start || self.end == MINUTES_PER_DAY {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = resolve(end_date, self.end % MINUTES_PER_DAY, tz)?;
        (start < end).then_some(Stretch { start, end })
    }
}

/// The instant of `minute` after midnight on `date` in `tz`: a time in a DST gap resolves to
/// the instant after the gap, a repeated time to its first occurrence.
fn resolve(date: Date, minute: u16, tz: &TimeZone) -> Option<Timestamp> {
    let hour = i8::try_from(minute / 60).ok()?;
    let min = i8::try_from(minute % 60).ok()?;
    let time = Time::new(hour, min, 0, 0).ok()?;
    tz.to_ambiguous_timestamp(date.to_datetime(time))
        .compatible()
        .ok()
}

/// Parses `"HH:MM"` into minutes after midnight; `"24:00"` only when `end`.
fn parse_clock(s: &str, end: bool) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl FromStr for TimeRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid time range \"{s}\": {why}; write \"HH:MM-HH:MM\" in 24-hour time, e.g. \"08:00-20:00\" or \"20:00-06:00\" (wrapping midnight)"
            )
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| bad("expected a start and an end separated by \"-\""))?;
        let start =
            parse_clock(a, false).ok_or_else(|| bad("the start is not a time 00:00-23:59"))?;
        let end = parse_clock(b, true).ok_or_else(|| bad("the end is not a time 00:00-24:00"))?;
        if start == end {
            return Err(bad(
                "start and end are the same; for the whole day write \"00:00-24:00\"",
            ));
        }
        Ok(TimeRange { start, end })
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

// ---------------------------------------------------------------------------------------------
// Limit

/// A bandwidth limit: `"unlimited"` or a rate such as `"2 MiB/s"`, `"500 KiB/s"`, `"4 MB/s"`
/// or `"10 Mbit/s"`. Zero is refused (a window forbids traffic, a limit only slows it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Limit {
    #[default]
    Unlimited,
    /// Bytes per second.
    PerSecond(NonZeroU64),
}

impl Limit {
    /// Bytes per second; `None` when unlimited.
    pub fn bytes_per_second(self) -> Option<u64> {
        match self {
            Limit::Unlimited => None,
            Limit::PerSecond(n) => Some(n.get()),
        }
    }
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid rate \"{s}\": {why}; write e.g. \"2 MiB/s\", \"500 KiB/s\", \"10 Mbit/s\" or \"unlimited\""
            )
        };
        let text = s.trim();
        if text.eq_ignore_ascii_case("unlimited") {
            return Ok(Limit::Unlimited);
        }
        let size = text
            .strip_suffix("/s")
            .ok_or_else(|| bad("a rate ends in \"/s\""))?
            .trim();
        let digits = size
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(size.len());
        let (number, unit) = (&size[..digits], size[digits..].trim());
        if number.is_empty() {
            return Err(bad("no number"));
        }
        let bytes = if let Some(prefix) = unit.strip_suffix("bit") {
            // "10 Mbit" → "10 MB" (decimal prefixes as networks use them) → divided by 8.
            parse_size(&format!("{number} {prefix}B")).map(|b| b / 8)
        } else if unit.ends_with('b') {
            return Err(bad(
                "a lower-case \"b\" is ambiguous; write \"bit\" for bits (\"10 Mbit/s\") or \"B\" for bytes (\"10 MB/s\")",
            ));
        } else if unit.ends_with('B') {
            parse_size(&format!("{number} {unit}"))
        } else {
            return Err(bad("missing or unknown unit"));
        };
        let bytes = bytes.ok_or_else(|| bad("unknown unit"))?;
        NonZeroU64::new(bytes)
            .map(Limit::PerSecond)
            .ok_or_else(|| bad("a rate must be above zero (use windows to forbid traffic)"))
    }
}

/// A size through bytesize ("2 MiB", "4 MB", "500 KiB"); `None` when it does not parse.
fn parse_size(s: &str) -> Option<u64> {
    bytesize::ByteSize::from_str(s).ok().map(|b| b.as_u64())
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1 << 10;
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        match self.bytes_per_second() {
            None => f.write_str("unlimited"),
            Some(n) if n % GIB == 0 => write!(f, "{} GiB/s", n / GIB),
            Some(n) if n % MIB == 0 => write!(f, "{} MiB/s", n / MIB),
            Some(n) if n % KIB == 0 => write!(f, "{} KiB/s", n / KIB),
            Some(n) => write!(f, "{n} B/s"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Days

/// A set of weekdays, from `["mon", "tue", …]` (full names accepted too). An empty list is
/// refused: leave `days` out for every day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(u8);

const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

impl Days {
    pub const EVERY: Days = Days(0b111_1111);

    fn bit(day: Weekday) -> u8 {
        1 << day.to_monday_zero_offset()
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & Days::bit(day) != 0
    }

    fn parse_day(s: &str) -> Result<Weekday, String> {
        DAY_NAMES
            .iter()
            .find(|(short, long, _)| s.eq_ignore_ascii_case(short) || s.eq_ignore_ascii_case(long))
            .map(|(_, _, day)| *day)
            .ok_or_else(|| format!("unknown day \"{s}\"; use mon, tue, wed, thu, fri, sat or sun"))
    }
}

impl Default for Days {
    fn default() -> Self {
        Days::EVERY
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Days;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of days such as [\"mon\", \"tue\"]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Days, A::Error> {
                let mut bits = 0u8;
                while let Some(name) = seq.next_element::<String>()? {
                    bits |= Days::bit(Days::parse_day(&name).map_err(de::Error::custom)?);
                }
                if bits == 0 {
                    return Err(de::Error::custom(
                        "days is empty, so the rule would never apply; leave `days` out for every day",
                    ));
                }
                Ok(Days(bits))
            }
        }
        de.deserialize_seq(V)
    }
}

impl Serialize for Days {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = DAY_NAMES
            .iter()
            .filter(|(_, _, day)| self.contains(*day))
            .map(|(short, _, _)| *short)
            .collect();
        let mut seq = s.serialize_seq(Some(names.len()))?;
        for name in names {
            seq.serialize_element(name)?;
        }
        seq.end()
    }
}

// ---------------------------------------------------------------------------------------------
// serde for the string-shaped values

/// Deserialises a `FromStr` value from a string, so a bad value reads with the type's own
/// message (which names the value) and a wrong TOML type reads "expected <what>".
fn from_str_de<'de, D, T>(de: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct V<T>(std::marker::PhantomData<T>, &'static str);
    impl<T: FromStr<Err = String>> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    de.deserialize_str(V(std::marker::PhantomData, expecting))
}

macro_rules! string_serde {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                from_str_de(de, $expecting)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

string_serde!(TimeRange, "a time range such as \"20:00-06:00\"");
string_serde!(Limit, "a rate such as \"2 MiB/s\" or \"unlimited\"");

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Zoned;

    const MIB: u64 = 1 << 20;

    /// The issue's example: 2 MiB/s on weekday business hours, windows at night.
    const EXAMPLE: &str = r#"
        [link]
        windows = ["20:00-06:00"]
        default-limit = "unlimited"
        [[link.bandwidth]]
        hours = "08:00-20:00"
        limit = "2 MiB/s"
        days = ["mon","tue","wed","thu","fri"]
    "#;

    #[derive(Debug, Deserialize)]
    struct File {
        link: LinkPolicy,
    }

    fn policy(toml_text: &str) -> LinkPolicy {
        toml::from_str::<File>(toml_text).unwrap().link
    }

    fn parse_error(toml_text: &str) -> String {
        toml::from_str::<File>(toml_text).unwrap_err().to_string()
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// An instant written as local civil time in `zone` (unambiguous in the cases used).
    fn local(zone: &str, civil: &str) -> Timestamp {
        civil
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(tz(zone))
            .unwrap()
            .timestamp()
    }

    /// An instant written with its offset (and zone), for times a DST fold makes ambiguous.
    fn zoned(s: &str) -> Timestamp {
        s.parse::<Zoned>()
            .map(|z| z.timestamp())
            .or_else(|_| s.parse::<Timestamp>())
            .unwrap()
    }

    #[test]
    fn the_example_parses_and_the_default_is_open_and_unlimited() {
        let p = policy(EXAMPLE);
        assert_eq!(p.windows, vec!["20:00-06:00".parse().unwrap()]);
        assert_eq!(p.default_limit, Limit::Unlimited);
        assert_eq!(p.bandwidth.len(), 1);
        assert_eq!(p.bandwidth[0].limit.bytes_per_second(), Some(2 * MIB));
        assert!(!p.bandwidth[0].days.contains(Weekday::Saturday));
        assert!(p.bandwidth[0].days.contains(Weekday::Friday));

        let d = LinkPolicy::default();
        let utc = TimeZone::UTC;
        let t = local("UTC", "2026-03-02T12:00");
        assert_eq!(policy("[link]\n"), d);
        assert!(d.window_open(t, &utc));
        assert_eq!(d.limit_at(t, &utc), None);
        assert_eq!(d.window_closes_at(t, &utc), None);
        assert_eq!(d.next_window_opens(t, &utc), Some(t));
    }

    #[test]
    fn serialises_back_to_the_same_policy() {
        let p = policy(EXAMPLE);
        let text = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<LinkPolicy>(&text).unwrap(), p);
        assert!(text.contains("limit = \"2 MiB/s\""), "{text}");
    }

    #[test]
    fn rates() {
        let cases: &[(&str, Option<u64>)] = &[
            ("unlimited", None),
            (" Unlimited ", None),
            ("2 MiB/s", Some(2 * MIB)),
            ("2MiB/s", Some(2 * MIB)),
            ("500 KiB/s", Some(500 * 1024)),
            ("1.5 MiB/s", Some(3 * MIB / 2)),
            ("4 MB/s", Some(4_000_000)),
            ("10 Mbit/s", Some(1_250_000)),
            ("100 kbit/s", Some(12_500)),
            ("1 Gbit/s", Some(125_000_000)),
            ("64 B/s", Some(64)),
        ];
        for (text, want) in cases {
            let got: Limit = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.bytes_per_second(), *want, "{text}");
        }
    }

    #[test]
    fn bad_rates_name_the_value_and_say_why() {
        let cases: &[(&str, &str)] = &[
            ("2 MiB", "ends in \"/s\""),
            ("fast", "ends in \"/s\""),
            ("MiB/s", "no number"),
            ("0 MiB/s", "above zero"),
            ("10 Mb/s", "ambiguous"),
            ("10 Mbps/s", "unknown unit"),
            ("10 XB/s", "unknown unit"),
            ("10/s", "missing or unknown unit"),
            ("-1 MiB/s", "no number"),
        ];
        for (text, why) in cases {
            let err = text.parse::<Limit>().unwrap_err();
            assert!(err.contains(&format!("\"{text}\"")), "{text}: {err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn time_ranges() {
        let ok: &[(&str, &str, bool)] = &[
            ("08:00-20:00", "08:00-20:00", false),
            ("20:00-06:00", "20:00-06:00", true),
            (" 8:30 - 17:45 ", "08:30-17:45", false),
            ("00:00-24:00", "00:00-24:00", false),
            ("22:00-24:00", "22:00-24:00", false),
            ("23:59-00:00", "23:59-00:00", true),
        ];
        for (text, shown, wraps) in ok {
            let r: TimeRange = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.to_string(), *shown);
            assert_eq!(r.wraps_midnight(), *wraps, "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("20:00", "separated by \"-\""),
            ("25:00-06:00", "start is not a time"),
            ("24:00-06:00", "start is not a time"),
            ("08:00-24:30", "end is not a time"),
            ("08:60-09:00", "start is not a time"),
            ("8-20", "start is not a time"),
            ("08:00-08:00", "the same"),
            ("00:00-00:00", "the same"),
        ];
        for (text, why) in bad {
            let err = text.parse::<TimeRange>().unwrap_err();
            assert!(err.contains(&format!("\"{text}\"")), "{text}: {err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn toml_errors_name_the_key_and_the_value() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[link]\nwindow = []\n",
                &["unknown field `window`", "windows"],
            ),
            (
                "[link]\ndefault-limit = \"2 MiB\"\n",
                &["default-limit", "\"2 MiB\""],
            ),
            ("[link]\ndefault-limit = 5\n", &["expected a rate"]),
            ("[link]\nwindows = [\"9-17\"]\n", &["windows", "\"9-17\""]),
            (
                "[[link.bandwidth]]\nhours = \"08:00-20:00\"\nlimit = \"1 MiB/s\"\ndays = [\"funday\"]\n",
                &["unknown day \"funday\""],
            ),
            (
                "[[link.bandwidth]]\nhours = \"08:00-20:00\"\nlimit = \"1 MiB/s\"\ndays = []\n",
                &["days is empty"],
            ),
            (
                "[[link.bandwidth]]\nhours = \"08:00-20:00\"\n",
                &["missing field `limit`"],
            ),
            (
                "[[link.bandwidth]]\nhours = \"08:00-20:00\"\nlimit = \"1 MiB/s\"\nday = [\"mon\"]\n",
                &["unknown field `day`"],
            ),
        ];
        for (text, wants) in cases {
            let err = parse_error(text);
            for want in *wants {
                assert!(err.contains(want), "{text}\n→ {err}\nlacks {want}");
            }
        }
    }

    /// One lookup: (local time in Asia/Shanghai, expected limit in bytes/s).
    fn check_limits(p: &LinkPolicy, cases: &[(&str, Option<u64>)]) {
        let zone = tz("Asia/Shanghai");
        for (civil, want) in cases {
            let t = local("Asia/Shanghai", civil);
            assert_eq!(p.limit_at(t, &zone), *want, "limit at {civil}");
        }
    }

    #[test]
    fn limits_by_hour_and_weekday() {
        // 2026-03-06 is a Friday.
        check_limits(
            &policy(EXAMPLE),
            &[
                ("2026-03-06T07:59:59", None),
                ("2026-03-06T08:00", Some(2 * MIB)),
                ("2026-03-06T19:59:59", Some(2 * MIB)),
                ("2026-03-06T20:00", None),
                ("2026-03-07T12:00", None), // Saturday
                ("2026-03-08T12:00", None), // Sunday
                ("2026-03-09T12:00", Some(2 * MIB)),
            ],
        );
    }

    #[test]
    fn a_wrapping_rule_belongs_to_the_day_it_starts() {
        let p = policy(
            r#"
            [link]
            default-limit = "4 MiB/s"
            [[link.bandwidth]]
            hours = "22:00-02:00"
            days = ["fri"]
            limit = "1 MiB/s"
            [[link.bandwidth]]
            hours = "00:00-24:00"
            days = ["sat", "sun"]
            limit = "unlimited"
            "#,
        );
        check_limits(
            &p,
            &[
                ("2026-03-05T23:00", Some(4 * MIB)), // Thursday night: not Friday's
                ("2026-03-06T01:00", Some(4 * MIB)), // Friday morning: Thursday's night
                ("2026-03-06T21:59", Some(4 * MIB)),
                ("2026-03-06T22:00", Some(MIB)),
                ("2026-03-07T00:00", Some(MIB)), // Saturday, but Friday's night comes first
                ("2026-03-07T01:59", Some(MIB)),
                ("2026-03-07T02:00", None), // the weekend rule
                ("2026-03-07T23:00", None),
                ("2026-03-09T00:00", Some(4 * MIB)), // Monday
            ],
        );
    }

    /// The window questions at one instant: (local time, open, closes at, next opens).
    fn check_windows(
        p: &LinkPolicy,
        zone: &str,
        cases: &[(&str, bool, Option<&str>, Option<&str>)],
    ) {
        let z = tz(zone);
        for (civil, open, closes, opens) in cases {
            let t = local(zone, civil);
            assert_eq!(p.window_open(t, &z), *open, "open at {civil}");
            assert_eq!(
                p.window_closes_at(t, &z),
                closes.map(|c| local(zone, c)),
                "closes, at {civil}"
            );
            assert_eq!(
                p.next_window_opens(t, &z),
                opens.map(|c| local(zone, c)),
                "opens, at {civil}"
            );
        }
    }

    #[test]
    fn windows_wrap_midnight() {
        let s = "Asia/Shanghai";
        check_windows(
            &policy(EXAMPLE),
            s,
            &[
                (
                    "2026-03-06T12:00",
                    false,
                    Some("2026-03-06T12:00"),
                    Some("2026-03-06T20:00"),
                ),
                (
                    "2026-03-06T19:59:59",
                    false,
                    Some("2026-03-06T19:59:59"),
                    Some("2026-03-06T20:00"),
                ),
                (
                    "2026-03-06T20:00",
                    true,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-06T20:00"),
                ),
                (
                    "2026-03-06T23:59",
                    true,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-06T23:59"),
                ),
                (
                    "2026-03-07T00:00",
                    true,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-07T00:00"),
                ),
                (
                    "2026-03-07T05:59:59",
                    true,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-07T05:59:59"),
                ),
                (
                    "2026-03-07T06:00",
                    false,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-07T20:00"),
                ),
            ],
        );
    }

    #[test]
    fn adjacent_windows_merge_and_full_coverage_never_closes() {
        let s = "Asia/Shanghai";
        let split =
            policy("[link]\nwindows = [\"22:00-24:00\", \"00:00-06:00\", \"12:00-13:00\"]\n");
        check_windows(
            &split,
            s,
            &[
                (
                    "2026-03-06T23:00",
                    true,
                    Some("2026-03-07T06:00"),
                    Some("2026-03-06T23:00"),
                ),
                (
                    "2026-03-06T12:30",
                    true,
                    Some("2026-03-06T13:00"),
                    Some("2026-03-06T12:30"),
                ),
                (
                    "2026-03-06T13:00",
                    false,
                    Some("2026-03-06T13:00"),
                    Some("2026-03-06T22:00"),
                ),
                (
                    "2026-03-06T06:00",
                    false,
                    Some("2026-03-06T06:00"),
                    Some("2026-03-06T12:00"),
                ),
            ],
        );
        for full in [
            "[link]\nwindows = [\"00:00-24:00\"]\n",
            "[link]\nwindows = [\"20:00-08:00\", \"08:00-20:00\"]\n",
        ] {
            check_windows(
                &policy(full),
                s,
                &[("2026-03-06T12:00", true, None, Some("2026-03-06T12:00"))],
            );
        }
    }

    #[test]
    fn dst_spring_forward_keeps_windows_continuous() {
        // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let z = tz("Europe/Berlin");
        let night = policy("[link]\nwindows = [\"01:00-05:00\"]\n");
        let t = zoned("2026-03-29T01:30+01:00[Europe/Berlin]");
        assert!(night.window_open(t, &z));
        // 01:00 CET = 00:00Z to 05:00 CEST = 03:00Z: three real hours.
        assert_eq!(
            night.window_closes_at(t, &z),
            Some(zoned("2026-03-29T03:00Z"))
        );
        assert!(night.window_open(zoned("2026-03-29T03:30+02:00[Europe/Berlin]"), &z));

        // A window starting inside the gap opens right after it (02:30 → 03:30 CEST).
        let gap = policy("[link]\nwindows = [\"02:30-04:00\"]\n");
        let before = zoned("2026-03-29T00:00+01:00[Europe/Berlin]");
        assert_eq!(
            gap.next_window_opens(before, &z),
            Some(zoned("2026-03-29T03:30+02:00[Europe/Berlin]"))
        );
        assert!(!gap.window_open(zoned("2026-03-29T03:15+02:00[Europe/Berlin]"), &z));
        assert!(gap.window_open(zoned("2026-03-29T03:30+02:00[Europe/Berlin]"), &z));

        // Business hours still start at 08:00 local after the change.
        let busy =
            policy("[link]\n[[link.bandwidth]]\nhours = \"08:00-20:00\"\nlimit = \"1 MiB/s\"\n");
        assert_eq!(
            busy.limit_at(zoned("2026-03-29T07:59+02:00[Europe/Berlin]"), &z),
            None
        );
        assert_eq!(
            busy.limit_at(zoned("2026-03-29T08:00+02:00[Europe/Berlin]"), &z),
            Some(MIB)
        );
    }

    #[test]
    fn dst_fall_back_uses_the_first_of_repeated_times() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00Z).
        let z = tz("Europe/Berlin");
        let p = policy("[link]\nwindows = [\"02:30-03:00\"]\n");
        // Opens at the first 02:30 (CEST, 00:30Z) and stays open through the repeated hour
        // until 03:00 CET (02:00Z): one continuous stretch of 90 minutes.
        let first = zoned("2026-10-25T02:30+02:00[Europe/Berlin]");
        let repeated = zoned("2026-10-25T02:15+01:00[Europe/Berlin]");
        assert_eq!(
            p.next_window_opens(zoned("2026-10-25T00:00+02:00[Europe/Berlin]"), &z),
            Some(first)
        );
        assert!(p.window_open(first, &z));
        assert!(p.window_open(repeated, &z));
        assert_eq!(
            p.window_closes_at(first, &z),
            Some(zoned("2026-10-25T02:00Z"))
        );
        assert!(!p.window_open(zoned("2026-10-25T02:00Z"), &z));
    }
}
