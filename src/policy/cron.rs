//! Cron schedules for jobs: parsed once into a `cron::Schedule`, keeping the text as written.
//!
//! Accepted forms: the standard 5 fields (`min hour dom month dow`, seconds are set to 0), 6 or 7
//! fields with seconds first (and an optional year last) as the `cron` crate reads them, and the
//! macros `@hourly @daily @weekly @monthly @quarterly @yearly @annually`.
//!
//! The trap this module closes: the two dialects number the days of the week differently
//! (standard cron: 0 or 7 = Sunday, 1 = Monday; the `cron` crate: 1 = Sunday, 2 = Monday), so
//! `1-5` means Monday–Friday in one and Sunday–Thursday in the other. Day numbers in the 5-field
//! form are translated to day names with standard meaning; in the 6/7-field form they are refused
//! and must be written as names (`MON-FRI`). This module does not evaluate schedules or read the
//! clock; the time zone is the site's, applied by the scheduler.

use std::fmt;
use std::str::FromStr;

use super::problem::{did_you_mean, with_hint};
use super::types::deserialize_from_str;

/// A validated cron schedule.
#[derive(Debug, Clone)]
pub struct Cron {
    /// As written in the policy (trimmed).
    text: String,
    /// The 6- or 7-field expression handed to the `cron` crate.
    expression: String,
    schedule: cron::Schedule,
}

impl Cron {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The seconds-first expression actually scheduled (day numbers already translated).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Cron {}

const MACROS: &[(&str, &str)] = &[
    ("@hourly", "0 0 * * * *"),
    ("@daily", "0 0 0 * * *"),
    ("@weekly", "0 0 0 * * SUN"),
    ("@monthly", "0 0 0 1 * *"),
    ("@quarterly", "0 0 0 1 1,4,7,10 *"),
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
];

/// Day names in standard numbering: index 0 is Sunday.
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FORMS_HINT: &str = "write 5 fields \"min hour day-of-month month day-of-week\" (e.g. \"30 1 * * *\"), \
     6 with seconds first (e.g. \"0 30 1 * * *\"), or @daily, @weekly, @monthly, @quarterly, @yearly";

impl FromStr for Cron {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let expression = if text.starts_with('@') {
            let lower = text.to_ascii_lowercase();
            match MACROS.iter().find(|(name, _)| *name == lower) {
                Some((_, expr)) => (*expr).to_owned(),
                None => {
                    let hint = did_you_mean(&lower, MACROS.iter().map(|(name, _)| *name))
                        .unwrap_or_else(|| FORMS_HINT.to_owned());
                    return Err(with_hint(format!("unknown cron macro \"{text}\""), hint));
                }
            }
        } else {
            let fields: Vec<&str> = text.split_whitespace().collect();
            match fields.len() {
                5 => {
                    let dow = standard_days_to_names(fields[4])
                        .map_err(|e| format!("invalid cron expression \"{text}\": {e}"))?;
                    format!(
                        "0 {} {} {} {} {dow}",
                        fields[0], fields[1], fields[2], fields[3]
                    )
                }
                6 | 7 => {
                    if has_day_number(fields[5]) {
                        return Err(with_hint(
                            format!(
                                "cron expression \"{text}\" numbers the days of the week (\"{}\"), \
                                 which is ambiguous",
                                fields[5]
                            ),
                            "in the 6-field form 1 means Sunday, in the 5-field form Monday; \
                             write day names such as MON-FRI",
                        ));
                    }
                    fields.join(" ")
                }
                n => {
                    return Err(with_hint(
                        format!(
                            "cron expression \"{text}\" has {n} field{}",
                            if n == 1 { "" } else { "s" }
                        ),
                        FORMS_HINT,
                    ));
                }
            }
        };
        let schedule = cron::Schedule::from_str(&expression).map_err(|e| {
            // The crate's message repeats the expression with a caret under it; keep its last
            // line, which says what is wrong.
            let e = e.to_string();
            let reason = e
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            with_hint(
                format!("invalid cron expression \"{text}\": {reason}"),
                FORMS_HINT,
            )
        })?;
        Ok(Cron {
            text: text.to_owned(),
            expression,
            schedule,
        })
    }
}

/// True if a day-of-week field uses a number as a day (a step such as `*/2` is not a day).
fn has_day_number(field: &str) -> bool {
    field.split(',').any(|item| {
        let base = item.split('/').next().unwrap_or("");
        base.chars().any(|c| c.is_ascii_digit())
    })
}

/// Rewrites a standard day-of-week field (0–7, names, ranges, lists, steps) as a list of day
/// names, which mean the same thing to the `cron` crate. Fields without numbers are left alone.
fn standard_days_to_names(field: &str) -> Result<String, String> {
    if !field.chars().any(|c| c.is_ascii_digit()) {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: usize = step
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad step \"{step}\" in day-of-week \"{field}\""))?;
                (base, step)
            }
            None => (item, 1),
        };
        let (first, last) = match base {
            "*" | "?" => (0, 6),
            _ => match base.split_once('-') {
                Some((a, b)) => (day_number(a, field)?, day_number(b, field)?),
                // "N/step" runs from N to the end of the week, as in vixie cron.
                None if step > 1 => (day_number(base, field)?, 6),
                None => {
                    let d = day_number(base, field)?;
                    (d, d)
                }
            },
        };
        if first > last {
            return Err(format!("day-of-week range \"{base}\" runs backwards"));
        }
        for d in (first..=last).step_by(step) {
            days[d % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".to_owned());
    }
    let names: Vec<&str> = DAYS
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    Ok(names.join(","))
}

/// A day in standard numbering, 0–7 (7 is Sunday again), or a three-letter name.
fn day_number(s: &str, field: &str) -> Result<usize, String> {
    if let Ok(n) = s.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day {n} in \"{field}\" is not 0–7"))
        };
    }
    DAYS.iter()
        .position(|name| name.eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("\"{s}\" in \"{field}\" is not a day of the week"))
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Cron {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        deserialize_from_str(
            de,
            "a cron expression such as \"0 30 1 * * *\" or \"@daily\"",
        )
    }
}

impl serde::Serialize for Cron {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::problem::split_hint;

    #[test]
    fn accepted_forms_table() {
        let cases = [
            ("30 1 * * *", "0 30 1 * * *"),
            ("0 30 1 * * *", "0 30 1 * * *"),
            ("0 0 3 * * SUN", "0 0 3 * * SUN"),
            ("0 0 3 * * Mon-Fri", "0 0 3 * * Mon-Fri"),
            ("0 0 3 1 * * 2030", "0 0 3 1 * * 2030"),
            ("  15 2 * * *  ", "0 15 2 * * *"),
            ("0 22 * * 1-5", "0 0 22 * * MON,TUE,WED,THU,FRI"),
            ("0 22 * * 0", "0 0 22 * * SUN"),
            ("0 22 * * 7", "0 0 22 * * SUN"),
            ("0 22 * * 5-7", "0 0 22 * * SUN,FRI,SAT"),
            ("0 22 * * */2", "0 0 22 * * SUN,TUE,THU,SAT"),
            ("0 22 * * 1,3,SAT", "0 0 22 * * MON,WED,SAT"),
            ("0 22 * * 0-7", "0 0 22 * * *"),
            ("@hourly", "0 0 * * * *"),
            ("@daily", "0 0 0 * * *"),
            ("@weekly", "0 0 0 * * SUN"),
            ("@monthly", "0 0 0 1 * *"),
            ("@quarterly", "0 0 0 1 1,4,7,10 *"),
            ("@yearly", "0 0 0 1 1 *"),
            ("@annually", "0 0 0 1 1 *"),
            ("@Daily", "0 0 0 * * *"),
        ];
        for (input, expression) in cases {
            let cron: Cron = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(cron.expression(), expression, "{input}");
            assert_eq!(cron.as_str(), input.trim());
        }
    }

    #[test]
    fn standard_weekdays_keep_their_meaning() {
        use chrono::{Datelike, Weekday};
        // "1-5" in standard cron is Monday to Friday: no run may fall on a weekend.
        let cron: Cron = "0 22 * * 1-5".parse().unwrap();
        for run in cron.schedule().upcoming(chrono::Utc).take(10) {
            assert!(
                !matches!(run.weekday(), Weekday::Sat | Weekday::Sun),
                "{run}"
            );
        }
    }

    #[test]
    fn rejected_forms_table() {
        let cases = [
            ("", "has 0 fields"),
            ("* * *", "has 3 fields"),
            ("0 0 0 0 0 0 0 0", "has 8 fields"),
            ("@dialy", "unknown cron macro \"@dialy\""),
            ("@reboot", "unknown cron macro \"@reboot\""),
            (
                "0 30 1 * * 1-5",
                "numbers the days of the week (\"1-5\"), which is ambiguous",
            ),
            ("61 1 * * *", "invalid cron expression \"61 1 * * *\""),
            ("0 0 25 * * *", "invalid cron expression \"0 0 25 * * *\""),
            ("0 2 * * 8", "day 8 in \"8\" is not 0–7"),
            ("0 2 * * 5-1", "runs backwards"),
            ("0 2 * * xyz1", "is not a day of the week"),
            ("daily at 2", "has 3 fields"),
        ];
        for (input, part) in cases {
            let err = input
                .parse::<Cron>()
                .map(|c| c.expression().to_owned())
                .unwrap_err();
            let (message, _) = split_hint(&err);
            assert!(message.contains(part), "{input}: {message}");
        }
        let (_, hint) = split_hint(&"@dialy".parse::<Cron>().unwrap_err());
        assert_eq!(hint.as_deref(), Some("did you mean \"@daily\"?"));
    }
}
