//! The error report of a policy check: every problem found, each pinned to a file, a 1-based line
//! and column and the key path of the offending setting, with a hint that says what to do next.
//!
//! This module only formats and orders problems; it does no parsing or checking, and it must never
//! be handed a secret value: messages name keys and sources, never what a secret-looking key holds.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file as it was given to the loader (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Where in the policy, e.g. `systems.linfen-finance.schedules[1].cron`; empty for problems
    /// about a whole file (syntax errors, unreadable files).
    pub key_path: String,
    /// What is wrong, in one line.
    pub message: String,
    /// What to do about it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of a policy, sorted by file, line and column. Returned instead of a [`Policy`]
/// when anything is wrong; never empty when returned by the loader.
///
/// [`Policy`]: super::Policy
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub struct PolicyReport {
    pub problems: Vec<Problem>,
}

impl PolicyReport {
    /// Sorts problems by (file, line, column); problems at the same place keep the order in which
    /// the checks found them, which is fixed, so the report is deterministic.
    pub(crate) fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        problems.dedup();
        PolicyReport { problems }
    }

    /// How many distinct files have at least one problem.
    pub fn file_count(&self) -> usize {
        let mut files: Vec<&Path> = self.problems.iter().map(|p| p.file.as_path()).collect();
        files.dedup();
        files.len()
    }
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        let n = self.problems.len();
        let m = self.file_count();
        write!(
            f,
            "{n} problem{} in {m} file{}",
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" }
        )
    }
}

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to a key, printed the way TOML would address it:
/// `systems.linfen-finance.schedules[1].cron`, quoting keys that are not bare.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    pub(crate) fn key(&self, key: &str) -> KeyPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        KeyPath(segs)
    }

    pub(crate) fn join(&self, rel: &[Seg]) -> KeyPath {
        let mut segs = self.0.clone();
        segs.extend_from_slice(rel);
        KeyPath(segs)
    }

    /// The last table key on the path, if any (`cron` for `schedules[1].cron`).
    pub(crate) fn last_key(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if bare {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One loaded file: its name for reports and its text, to turn byte offsets into lines.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

impl SourceFile {
    /// 1-based (line, column) of a byte offset; the column counts characters, not bytes.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    pub(crate) fn problem(
        &self,
        span: &Range<usize>,
        key_path: &KeyPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Problem {
        let (line, column) = self.line_col(span.start);
        Problem {
            file: self.path.clone(),
            line,
            column,
            key_path: key_path.to_string(),
            message: one_line(&message.into()),
            hint: hint.map(|h| one_line(&h)),
        }
    }

    /// A problem about the whole file (it could not be read, or is not TOML).
    pub(crate) fn file_problem(
        path: &Path,
        line: usize,
        column: usize,
        message: String,
    ) -> Problem {
        Problem {
            file: path.to_path_buf(),
            line,
            column,
            key_path: String::new(),
            message,
            hint: None,
        }
    }
}

/// A report has one line per message and per hint, whatever a library put in its error text.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Separates a message from its hint inside a serde error string, whose only payload is text.
/// Our `Deserialize` impls write `message HINT_MARK hint`; [`split_hint`] takes them apart.
pub(crate) const HINT_MARK: &str = "\u{1f}hint: ";

/// Builds an error text carrying a hint (see [`HINT_MARK`]).
pub(crate) fn with_hint(message: impl fmt::Display, hint: impl fmt::Display) -> String {
    format!("{message}{HINT_MARK}{hint}")
}

/// Splits an error text built by [`with_hint`]; texts without a hint come back whole.
pub(crate) fn split_hint(text: &str) -> (String, Option<String>) {
    match text.split_once(HINT_MARK) {
        Some((message, hint)) => (message.to_owned(), Some(hint.to_owned())),
        None => (text.to_owned(), None),
    }
}

/// Levenshtein distance, for "did you mean" hints. Small inputs only (keys, ids, zone names).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo: at most a third
/// of the word's length away (and at least one edit allowed), case-insensitively.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// `did you mean "x"?` for the closest candidate, if any.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean \"{c}\"?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_table() {
        let cases = [
            ("", "", 0),
            ("a", "", 1),
            ("schedules", "schedules", 0),
            ("shedules", "schedules", 1),
            ("kep-daily", "keep-daily", 1),
            ("rpo", "rto", 1),
            ("kitten", "sitting", 3),
            ("临汾", "临汾县", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), want, "{a} vs {b}");
            assert_eq!(edit_distance(b, a), want, "{b} vs {a}");
        }
    }

    #[test]
    fn suggestions_table() {
        let keys = [
            "schedules",
            "site",
            "paths",
            "retention",
            "repositories",
            "depends-on",
        ];
        let cases = [
            ("shedules", Some("schedules")),
            ("Paths", Some("paths")),
            ("retension", Some("retention")),
            ("depends_on", Some("depends-on")),
            ("repository", Some("repositories")),
            ("colour", None),
            ("s", None),
        ];
        for (word, want) in cases {
            assert_eq!(closest(word, keys), want, "{word}");
        }
        assert_eq!(
            did_you_mean("sit", keys).as_deref(),
            Some("did you mean \"site\"?")
        );
    }

    #[test]
    fn key_paths_print_like_toml() {
        let p = KeyPath::default()
            .key("systems")
            .key("linfen-finance")
            .join(&[Seg::Key("schedules".into()), Seg::Index(1)])
            .key("cron");
        assert_eq!(p.to_string(), "systems.linfen-finance.schedules[1].cron");
        let q = KeyPath::default()
            .key("systems")
            .key("a.b")
            .key("env")
            .key("PG PASS");
        assert_eq!(q.to_string(), "systems.\"a.b\".env.\"PG PASS\"");
        assert_eq!(p.last_key(), Some("cron"));
    }

    #[test]
    fn line_and_column_count_characters() {
        let f = SourceFile {
            path: "p.toml".into(),
            text: "a = 1\nname = \"临汾\" x\n".into(),
        };
        let cases = [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (13, (2, 8)),
            (20, (2, 11)),
            (22, (2, 13)),
            (999, (3, 1)),
        ];
        for (offset, want) in cases {
            assert_eq!(f.line_col(offset), want, "offset {offset}");
        }
    }

    #[test]
    fn report_sorts_and_counts() {
        let p = |file: &str, line, column, msg: &str| Problem {
            file: file.into(),
            line,
            column,
            key_path: "k".into(),
            message: msg.into(),
            hint: None,
        };
        let report = PolicyReport::new(vec![
            p("b.toml", 1, 1, "x"),
            p("a.toml", 9, 1, "y"),
            p("a.toml", 2, 5, "z"),
        ]);
        let text = report.to_string();
        assert_eq!(
            text,
            "a.toml:2:5: k: z\na.toml:9:1: k: y\nb.toml:1:1: k: x\n3 problems in 2 files"
        );
        let one = PolicyReport::new(vec![Problem {
            hint: Some("do this".into()),
            ..p("a.toml", 1, 2, "bad")
        }]);
        assert_eq!(
            one.to_string(),
            "a.toml:1:2: k: bad\n  hint: do this\n1 problem in 1 file"
        );
    }

    #[test]
    fn hints_travel_inside_error_text() {
        assert_eq!(
            split_hint(&with_hint("bad", "fix it")),
            ("bad".into(), Some("fix it".into()))
        );
        assert_eq!(split_hint("plain"), ("plain".into(), None));
    }
}
