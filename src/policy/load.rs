//! From files to typed entries: reads the `*.toml` files, parses each into a span-carrying TOML
//! tree, splits the tree into entries (one tier, site, repository or system each) and
//! deserialises every entry on its own, collecting *every* problem with its file, line, column
//! and key path.
//!
//! Serde stops at the first error, so an entry that fails is retried with the offending key
//! removed, until it deserialises or nothing more can be removed; follow-on errors caused by a
//! removal (a "missing field" for a key just removed) are not reported. Keys that look like
//! secrets are never echoed with their value.
//!
//! This module does not check anything that involves two keys or two entries (that is
//! `validate`), and it never resolves a secret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use super::ids::check_id;
use super::model::{self, Repository, Site, System, Tier};
use super::problem::{KeyPath, Problem, Seg, SourceFile, closest, did_you_mean, split_hint};
use super::{RepoId, SiteId, SystemId, TierId};
use crate::secret::INLINE_SECRET_HINT;

/// The top-level tables a policy file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Tiers,
    Sites,
    Repositories,
    Systems,
}

impl Section {
    pub(crate) const ALL: [Section; 4] = [
        Section::Tiers,
        Section::Sites,
        Section::Repositories,
        Section::Systems,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Section::Tiers => "tiers",
            Section::Sites => "sites",
            Section::Repositories => "repositories",
            Section::Systems => "systems",
        }
    }

    /// The noun for one entry, in messages ("unknown tier").
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Section::Tiers => "tier",
            Section::Sites => "site",
            Section::Repositories => "repository",
            Section::Systems => "system",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Section::Tiers => model::TIER_REQUIRED,
            Section::Sites => model::SITE_REQUIRED,
            Section::Repositories => model::REPOSITORY_REQUIRED,
            Section::Systems => model::SYSTEM_REQUIRED,
        }
    }

    fn placeholders(self) -> &'static str {
        match self {
            Section::Tiers => model::TIER_PLACEHOLDERS,
            Section::Sites => model::SITE_PLACEHOLDERS,
            Section::Repositories => model::REPOSITORY_PLACEHOLDERS,
            Section::Systems => model::SYSTEM_PLACEHOLDERS,
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Every `*.toml` file under `dir`, recursively, sorted; hidden files and directories (`.git`)
/// are skipped. A directory that cannot be read is a problem, not an error.
pub(crate) fn find_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Directories already read, by canonical path: a symbolic link loop is read once.
    let mut visited = BTreeSet::new();
    while let Some(current) = pending.pop() {
        if !visited.insert(std::fs::canonicalize(&current).unwrap_or_else(|_| current.clone())) {
            continue;
        }
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(SourceFile::file_problem(
                    &current,
                    1,
                    1,
                    format!("cannot read directory: {}", e.kind()),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() && problems.is_empty() {
        problems.push(SourceFile::file_problem(
            dir,
            1,
            1,
            "no policy files (*.toml) found".into(),
        ));
    }
    files
}

/// Reads each file; unreadable or non-UTF-8 files become problems and are left out.
pub(crate) fn read_files(paths: &[PathBuf], problems: &mut Vec<Problem>) -> Vec<SourceFile> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push(SourceFile {
                    path: path.clone(),
                    text,
                }),
                Err(e) => {
                    let offset = e.utf8_error().valid_up_to();
                    let valid = SourceFile {
                        path: path.clone(),
                        text: String::from_utf8_lossy(&e.into_bytes()[..offset]).into_owned(),
                    };
                    let (line, column) = valid.line_col(offset);
                    problems.push(SourceFile::file_problem(
                        path,
                        line,
                        column,
                        "the file is not UTF-8 text".into(),
                    ));
                }
            },
            Err(e) => problems.push(SourceFile::file_problem(
                path,
                1,
                1,
                format!("cannot read file: {}", e.kind()),
            )),
        }
    }
    files
}

/// Parses each file as TOML. A file with a syntax error contributes that problem and nothing
/// else (`None` in its slot).
pub(crate) fn parse_files<'a>(
    files: &'a [SourceFile],
    problems: &mut Vec<Problem>,
) -> Vec<Option<Spanned<DeTable<'a>>>> {
    files
        .iter()
        .map(|file| match DeTable::parse(&file.text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                let (line, column) = file.line_col(e.span().map_or(0, |s| s.start));
                let message = e.message().trim().replace('\n', "; ");
                problems.push(SourceFile::file_problem(
                    &file.path,
                    line,
                    column,
                    format!("TOML syntax error: {message}"),
                ));
                None
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Entries

/// One entry of a section, as written: where it is and its TOML tree.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) section: Section,
    pub(crate) id: &'a str,
    pub(crate) file: usize,
    /// The span of the id in its table header or key.
    pub(crate) key_span: Range<usize>,
    pub(crate) value: &'a Spanned<DeValue<'a>>,
}

impl Entry<'_> {
    /// `systems.linfen-finance`
    pub(crate) fn path(&self) -> KeyPath {
        KeyPath::default().key(self.section.key()).key(self.id)
    }
}

/// Every entry defined anywhere, by section and id, whether or not it deserialised: a reference
/// to an entry with problems of its own is not an unknown reference.
#[derive(Debug, Default)]
pub(crate) struct Entries<'a> {
    by_section: BTreeMap<Section, BTreeMap<&'a str, Entry<'a>>>,
}

impl<'a> Entries<'a> {
    /// Splits the documents into entries: unknown sections, malformed ids and ids defined twice
    /// are problems; the first definition of an id wins.
    pub(crate) fn collect(
        files: &'a [SourceFile],
        docs: &'a [Option<Spanned<DeTable<'a>>>],
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut entries = Entries::default();
        for (index, doc) in docs.iter().enumerate() {
            let (Some(doc), Some(file)) = (doc, files.get(index)) else {
                continue;
            };
            for (key, value) in doc.get_ref().iter() {
                let name: &str = key.get_ref();
                let Some(section) = Section::ALL.into_iter().find(|s| s.key() == name) else {
                    let hint = did_you_mean(name, Section::ALL.map(Section::key))
                        .unwrap_or_else(|| "a policy file holds only [tiers], [sites], [repositories] and [systems]".into());
                    problems.push(file.problem(
                        &key.span(),
                        &KeyPath::default().key(name),
                        format!("unknown section \"{name}\""),
                        Some(hint),
                    ));
                    continue;
                };
                let Some(table) = value.get_ref().as_table() else {
                    problems.push(file.problem(
                        &value.span(),
                        &KeyPath::default().key(name),
                        format!(
                            "expected a table of {name} keyed by id, found {}",
                            kind(value.get_ref())
                        ),
                        Some(format!("write [{name}.<id>] tables")),
                    ));
                    continue;
                };
                for (id_key, entry_value) in table.iter() {
                    let id: &str = id_key.get_ref();
                    let path = KeyPath::default().key(name).key(id);
                    if let Err(e) = check_id(id) {
                        problems.push(file.problem(&id_key.span(), &path, e.to_string(), None));
                        continue;
                    }
                    if let Some(first) = entries.get(section, id) {
                        let (line, column) = files
                            .get(first.file)
                            .map_or((0, 0), |f| f.line_col(first.key_span.start));
                        let first_file = files
                            .get(first.file)
                            .map_or_else(PathBuf::new, |f| f.path.clone());
                        problems.push(file.problem(
                            &id_key.span(),
                            &path,
                            format!("{} \"{id}\" is defined twice", section.noun()),
                            Some(format!("first defined at {}:{line}:{column}; ids must be unique across all files", first_file.display())),
                        ));
                        continue;
                    }
                    entries.by_section.entry(section).or_default().insert(
                        id,
                        Entry {
                            section,
                            id,
                            file: index,
                            key_span: id_key.span(),
                            value: entry_value,
                        },
                    );
                }
            }
        }
        entries
    }

    pub(crate) fn get(&self, section: Section, id: &str) -> Option<&Entry<'a>> {
        self.by_section.get(&section)?.get(id)
    }

    /// The ids defined in a section, sorted.
    pub(crate) fn ids(&self, section: Section) -> impl Iterator<Item = &'a str> + '_ {
        self.by_section
            .get(&section)
            .into_iter()
            .flat_map(|m| m.keys().copied())
    }

    fn of(&self, section: Section) -> impl Iterator<Item = &Entry<'a>> {
        self.by_section
            .get(&section)
            .into_iter()
            .flat_map(|m| m.values())
    }
}

/// The entries that deserialised, typed.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) tiers: BTreeMap<TierId, Tier>,
    pub(crate) sites: BTreeMap<SiteId, Site>,
    pub(crate) repositories: BTreeMap<RepoId, Repository>,
    pub(crate) systems: BTreeMap<SystemId, System>,
    /// Per entry, the top-level keys that had problems (see [`deserialize_entry`]).
    touched: BTreeMap<(Section, String), BTreeSet<String>>,
    /// Per entry, the keys and array elements removed because they had problems.
    removed: BTreeMap<(Section, String), Vec<Vec<Seg>>>,
}

impl Parsed {
    /// True if the entry had a problem at `key` (or an unknown key that was probably `key`).
    pub(crate) fn touched(&self, section: Section, id: &str, key: &str) -> bool {
        self.touched
            .get(&(section, id.to_owned()))
            .is_some_and(|keys| keys.contains(key))
    }

    /// True if the entry had no problem at all.
    pub(crate) fn clean(&self, section: Section, id: &str) -> bool {
        !self.touched.contains_key(&(section, id.to_owned()))
    }

    /// Maps a path in the deserialised value to the same place in the file: array elements that
    /// were removed for their problems shift the indices of the ones after them.
    pub(crate) fn source_path(&self, section: Section, id: &str, rel: &[Seg]) -> Vec<Seg> {
        let removed = self.removed.get(&(section, id.to_owned()));
        let mut out: Vec<Seg> = Vec::with_capacity(rel.len());
        for seg in rel {
            let Seg::Index(wanted) = seg else {
                out.push(seg.clone());
                continue;
            };
            let is_removed = |n: usize| {
                removed.is_some_and(|paths| {
                    paths.iter().any(|p| {
                        p.len() == out.len() + 1
                            && p.starts_with(&out)
                            && p.last() == Some(&Seg::Index(n))
                    })
                })
            };
            let mut kept = 0;
            let mut n = 0;
            loop {
                if !is_removed(n) {
                    if kept == *wanted {
                        break;
                    }
                    kept += 1;
                }
                n += 1;
            }
            out.push(Seg::Index(n));
        }
        out
    }
}

/// Deserialises every entry, collecting problems.
pub(crate) fn deserialize_all(
    files: &[SourceFile],
    entries: &Entries<'_>,
    problems: &mut Vec<Problem>,
) -> Parsed {
    let mut parsed = Parsed::default();
    for entry in entries.of(Section::Tiers) {
        if let Some(t) = parsed.entry::<Tier>(files, entry, problems) {
            parsed.tiers.insert(t.id.clone(), t);
        }
    }
    for entry in entries.of(Section::Sites) {
        if let Some(s) = parsed.entry::<Site>(files, entry, problems) {
            parsed.sites.insert(s.id.clone(), s);
        }
    }
    for entry in entries.of(Section::Repositories) {
        if let Some(r) = parsed.entry::<Repository>(files, entry, problems) {
            parsed.repositories.insert(r.id.clone(), r);
        }
    }
    for entry in entries.of(Section::Systems) {
        if let Some(s) = parsed.entry::<System>(files, entry, problems) {
            parsed.systems.insert(s.id.clone(), s);
        }
    }
    parsed
}

impl Parsed {
    fn entry<T: DeserializeOwned>(
        &mut self,
        files: &[SourceFile],
        entry: &Entry<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        let outcome = deserialize_entry::<T>(files, entry, problems);
        let key = (entry.section, entry.id.to_owned());
        if !outcome.touched.is_empty() {
            self.touched.insert(key.clone(), outcome.touched);
        }
        if !outcome.removed.is_empty() {
            self.removed.insert(key, outcome.removed);
        }
        outcome.value
    }
}

/// How many removals one entry may go through; an entry has far fewer keys than this, so the
/// bound only guards against a removal that does not make progress.
const MAX_ATTEMPTS: usize = 1000;

/// What deserialising one entry gave.
struct Outcome<T> {
    /// The entry, possibly with placeholders for missing or broken required keys.
    value: Option<T>,
    /// The top-level keys that had problems, or that an unknown key was probably meant to be.
    /// Checks in `validate` that read a touched key are skipped: the value they would see is a
    /// default or a placeholder, and they would report follow-on problems.
    touched: BTreeSet<String>,
    /// Keys and array elements removed for their problems, as paths in the file.
    removed: Vec<Vec<Seg>>,
}

/// Deserialises one entry, reporting every problem in it (see the module docs).
fn deserialize_entry<T: DeserializeOwned>(
    files: &[SourceFile],
    entry: &Entry<'_>,
    problems: &mut Vec<Problem>,
) -> Outcome<T> {
    let mut outcome = Outcome {
        value: None,
        touched: BTreeSet::new(),
        removed: Vec::new(),
    };
    let Some(file) = files.get(entry.file) else {
        return outcome;
    };
    let base = entry.path();
    let Some(table) = entry.value.get_ref().as_table() else {
        problems.push(file.problem(
            &entry.value.span(),
            &base,
            format!("expected a table, found {}", kind(entry.value.get_ref())),
            Some(format!(
                "write [{}.{}] followed by its keys",
                entry.section.key(),
                entry.id
            )),
        ));
        return outcome;
    };
    let missing: Vec<&str> = entry
        .section
        .required()
        .iter()
        .copied()
        .filter(|key| !table.contains_key(*key))
        .collect();
    outcome.value = retry::<T>(file, entry, table, problems, &mut outcome);
    // Serde reports only the first missing key; report them all, except a key that an unknown
    // key was probably meant to be (its problem already says "did you mean").
    for key in &missing {
        if !outcome.touched.contains(*key) {
            problems.push(file.problem(
                &entry.key_span,
                &base.key(key),
                format!("missing required key \"{key}\""),
                None,
            ));
        }
        outcome.touched.insert((*key).to_owned());
    }
    outcome
}

/// A span no error can fall into, for values the loader adds (the id, placeholders).
const NOWHERE: Range<usize> = usize::MAX..usize::MAX;

/// Gives a value and everything in it the span `span`.
fn respan<'i>(value: DeValue<'i>, span: &Range<usize>) -> Spanned<DeValue<'i>> {
    let value = match value {
        DeValue::Table(table) => {
            let mut out = DeTable::new();
            for (k, v) in table {
                out.insert(
                    Spanned::new(span.clone(), k.into_inner()),
                    respan(v.into_inner(), span),
                );
            }
            DeValue::Table(out)
        }
        DeValue::Array(array) => {
            let mut out = toml::de::DeArray::new();
            for v in array {
                out.push(respan(v.into_inner(), span));
            }
            DeValue::Array(out)
        }
        other => other,
    };
    Spanned::new(span.clone(), value)
}

/// The placeholder for a required key of a section, if it has one.
fn placeholder(section: Section, key: &str) -> Option<Spanned<DeValue<'static>>> {
    let table = DeTable::parse(section.placeholders()).ok()?.into_inner();
    let value = table.into_iter().find(|(k, _)| k.get_ref() == key)?.1;
    Some(respan(value.into_inner(), &NOWHERE))
}

/// The remove-and-retry loop of [`deserialize_entry`].
fn retry<T: DeserializeOwned>(
    file: &SourceFile,
    entry: &Entry<'_>,
    table: &DeTable<'_>,
    problems: &mut Vec<Problem>,
    outcome: &mut Outcome<T>,
) -> Option<T> {
    let base = entry.path();
    let mut work = table.clone();
    if let Some((key, _)) = work.remove_entry("id") {
        outcome.touched.insert("id".to_owned());
        problems.push(file.problem(
            &key.span(),
            &base.key("id"),
            "unknown key \"id\"",
            Some(format!(
                "the id is the table name: [{}.{}]",
                entry.section.key(),
                entry.id
            )),
        ));
    }
    // The id is the table key; hand it to serde as a field so the struct carries it.
    work.insert(
        Spanned::new(NOWHERE, DeString::Borrowed("id")),
        Spanned::new(NOWHERE, DeValue::String(DeString::Borrowed(entry.id))),
    );
    let original = entry.value;
    let mut work = Spanned::new(entry.value.span(), DeValue::Table(work));
    for _ in 0..MAX_ATTEMPTS {
        let error = match T::deserialize(ValueDeserializer::from(work.clone())) {
            Ok(value) => return Some(value),
            Err(error) => error,
        };
        let Some(span) = error.span() else {
            problems.push(file.problem(&entry.key_span, &base, error.message().to_owned(), None));
            return None;
        };
        let Some(found) = locate(original, &span) else {
            problems.push(file.problem(&span, &base, error.message().to_owned(), None));
            return None;
        };
        let work_path = locate(&work, &span).map(|f| f.path).unwrap_or_default();
        let follow_on = outcome.removed.iter().any(|r| r.starts_with(&found.path));
        if let Some(Seg::Key(top)) = found.path.first() {
            outcome.touched.insert(top.clone());
        }
        match parse_serde_message(error.message()) {
            // A required key of the entry itself, missing or removed: it is reported by the
            // caller; stand in for it and go on, so that the rest of the entry is checked.
            SerdeMessage::MissingField(name) if found.path.is_empty() => {
                let (Some(value), DeValue::Table(work_table)) =
                    (placeholder(entry.section, &name), work.get_mut())
                else {
                    return None;
                };
                if work_table.contains_key(name.as_str()) {
                    return None;
                }
                work_table.insert(Spanned::new(NOWHERE, DeString::Owned(name)), value);
                continue;
            }
            SerdeMessage::MissingField(name) => {
                let mut full = found.path.clone();
                full.push(Seg::Key(name.clone()));
                if !outcome.removed.contains(&full) {
                    problems.push(file.problem(
                        &found.span,
                        &base.join(&full),
                        format!("missing required key \"{name}\""),
                        None,
                    ));
                }
            }
            _ if follow_on => {}
            message => {
                if let (SerdeMessage::UnknownField { name, expected }, 1) =
                    (&message, found.path.len())
                {
                    if let Some(meant) = closest(
                        name,
                        expected.iter().map(String::as_str).filter(|k| *k != "id"),
                    ) {
                        outcome.touched.insert(meant.to_owned());
                    }
                }
                problems.push(describe(file, &base, &found, message));
            }
        }
        if work_path.is_empty() || !remove(&mut work, &work_path) {
            return None;
        }
        outcome.removed.push(found.path);
    }
    None
}

/// What serde said, taken apart so that we can say it our way.
#[derive(Debug, PartialEq)]
enum SerdeMessage {
    MissingField(String),
    UnknownField {
        name: String,
        expected: Vec<String>,
    },
    UnknownVariant {
        name: String,
        expected: Vec<String>,
    },
    /// `invalid type` / `invalid value`: what was expected, and what was found as serde printed it.
    Invalid {
        expected: String,
        found: String,
    },
    /// Anything else: a message of ours (possibly with a hint), or of the TOML deserializer.
    Other(String),
}

/// The words between backticks, in order.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn parse_serde_message(message: &str) -> SerdeMessage {
    if let Some(rest) = message.strip_prefix("missing field `") {
        return SerdeMessage::MissingField(rest.trim_end_matches('`').to_owned());
    }
    for (prefix, is_field) in [("unknown field `", true), ("unknown variant `", false)] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = backticked(expected);
            let name = name.to_owned();
            return if is_field {
                SerdeMessage::UnknownField { name, expected }
            } else {
                SerdeMessage::UnknownVariant { name, expected }
            };
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.split_once(", expected ") {
                return SerdeMessage::Invalid {
                    expected: expected.to_owned(),
                    found: found.to_owned(),
                };
            }
        }
    }
    SerdeMessage::Other(message.to_owned())
}

/// serde's names for what it expected, in policy words.
fn expected_words(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        "a boolean" => "true or false".into(),
        s if s.starts_with("struct ") => "a table".into(),
        s => s.to_owned(),
    }
}

/// A TOML value's kind with its article, for "found …".
fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// True for key names that suggest a secret (`password`, `secret-access-key`, `PGPASSWORD`,
/// `token`, `access-key` …). Used to refuse inline secrets and to keep their values out of
/// messages.
pub(crate) fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|w| lower.contains(w))
}

/// Turns one serde error into a problem.
fn describe(
    file: &SourceFile,
    base: &KeyPath,
    found: &Found<'_>,
    message: SerdeMessage,
) -> Problem {
    let path = base.join(&found.path);
    let key = path.last_key().unwrap_or("").to_owned();
    let secret = looks_secret(&key);
    let (message, hint) = match message {
        SerdeMessage::UnknownField { name, expected } => {
            let candidates = expected.iter().map(String::as_str).filter(|k| *k != "id");
            let suggestion = did_you_mean(&name, candidates.clone());
            let inline = secret && !matches!(found.value, Some(DeValue::Table(_)));
            if inline {
                let hint = match suggestion {
                    Some(s) => format!("{s} {INLINE_SECRET_HINT}"),
                    None => INLINE_SECRET_HINT.to_owned(),
                };
                (
                    format!("unknown key \"{name}\": inline secrets are not allowed"),
                    Some(hint),
                )
            } else {
                let list: Vec<&str> = candidates.collect();
                let hint = suggestion.or_else(|| {
                    (!list.is_empty()).then(|| format!("known keys: {}", list.join(", ")))
                });
                (format!("unknown key \"{name}\""), hint)
            }
        }
        SerdeMessage::UnknownVariant { name, expected } => {
            let list = expected.join(", ");
            let hint = match did_you_mean(&name, expected.iter().map(String::as_str)) {
                Some(s) => format!("{s} (one of {list})"),
                None => format!("expected one of {list}"),
            };
            (format!("unknown value \"{name}\""), Some(hint))
        }
        SerdeMessage::Invalid {
            expected,
            found: serde_found,
        } => {
            let found_words = match found.value {
                // Name the value when it is harmless and short (a number that is out of range);
                // otherwise only its kind.
                Some(DeValue::Integer(_) | DeValue::Float(_)) if !secret => serde_found
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .trim_matches('`')
                    .to_owned(),
                Some(value) => kind(value).to_owned(),
                None => "something else".to_owned(),
            };
            (
                format!(
                    "expected {}, found {found_words}",
                    expected_words(&expected)
                ),
                None,
            )
        }
        SerdeMessage::Other(text) if text.starts_with("inline secrets are not allowed") => (
            "inline secrets are not allowed".to_owned(),
            Some(INLINE_SECRET_HINT.to_owned()),
        ),
        SerdeMessage::Other(text) if text == "wanted string or table" => {
            let found_words = found.value.map_or("something else", kind);
            (format!("expected a string, found {found_words}"), None)
        }
        SerdeMessage::Other(text) => split_hint(&text),
        SerdeMessage::MissingField(name) => (format!("missing required key \"{name}\""), None),
    };
    let (message, hint) = match (secret, found.value) {
        (true, Some(DeValue::String(value))) if !value.is_empty() => {
            let scrub = |s: String| s.replace(value.as_ref(), "<redacted>");
            (scrub(message), hint.map(scrub))
        }
        _ => (message, hint),
    };
    file.problem(&found.span, &path, message, hint)
}

// ---------------------------------------------------------------------------------------------
// Spans

/// The node an error span belongs to.
#[derive(Debug)]
pub(crate) struct Found<'t> {
    /// Keys and indices from the entry root.
    pub(crate) path: Vec<Seg>,
    /// Where to point: the key for key errors, else the value.
    pub(crate) span: Range<usize>,
    /// The value at that path (absent for the root).
    pub(crate) value: Option<&'t DeValue<'t>>,
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Finds the smallest key or value whose span contains `span`. A table's span only covers its
/// header (`[systems.a]`), not its keys, so the whole tree is searched rather than descended.
pub(crate) fn locate<'t>(root: &'t Spanned<DeValue<'t>>, span: &Range<usize>) -> Option<Found<'t>> {
    fn walk<'t>(
        value: &'t DeValue<'t>,
        span: &Range<usize>,
        path: &mut Vec<Seg>,
        best: &mut Option<(usize, Found<'t>)>,
    ) {
        let consider = |candidate: &Range<usize>,
                        path: &[Seg],
                        value: &'t DeValue<'t>,
                        best: &mut Option<(usize, Found<'t>)>| {
            if contains(candidate, span) {
                let size = candidate.end - candidate.start;
                let better = match best {
                    None => true,
                    Some((s, f)) => size < *s || (size == *s && path.len() > f.path.len()),
                };
                if better {
                    *best = Some((
                        size,
                        Found {
                            path: path.to_vec(),
                            span: candidate.clone(),
                            value: Some(value),
                        },
                    ));
                }
            }
        };
        match value {
            DeValue::Table(table) => {
                for (k, v) in table.iter() {
                    path.push(Seg::Key(k.get_ref().to_string()));
                    consider(&k.span(), path, v.get_ref(), best);
                    consider(&v.span(), path, v.get_ref(), best);
                    walk(v.get_ref(), span, path, best);
                    path.pop();
                }
            }
            DeValue::Array(array) => {
                for (i, v) in array.iter().enumerate() {
                    path.push(Seg::Index(i));
                    consider(&v.span(), path, v.get_ref(), best);
                    walk(v.get_ref(), span, path, best);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    if contains(&root.span(), span) {
        best = Some((
            root.span().len(),
            Found {
                path: Vec::new(),
                span: root.span(),
                value: None,
            },
        ));
    }
    walk(root.get_ref(), span, &mut Vec::new(), &mut best);
    best.map(|(_, found)| found)
}

/// Removes the key or element at `path`; false if there is nothing there.
fn remove(root: &mut Spanned<DeValue<'_>>, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = root.get_mut();
    for seg in parents {
        node = match (node, seg) {
            (DeValue::Table(t), Seg::Key(k)) => match t.get_mut(k.as_str()) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            (DeValue::Array(a), Seg::Index(i)) => match a.get_mut(*i) {
                Some(v) => v.get_mut(),
                None => return false,
            },
            _ => return false,
        };
    }
    match (node, last) {
        (DeValue::Table(t), Seg::Key(k)) => t.remove(k.as_str()).is_some(),
        (DeValue::Array(a), Seg::Index(i)) if *i < a.len() => {
            let old = std::mem::replace(a, toml::de::DeArray::new());
            for (j, v) in old.into_iter().enumerate() {
                if j != *i {
                    a.push(v);
                }
            }
            true
        }
        _ => false,
    }
}

/// The span to point at for `rel` inside an entry: the value (or, with `key`, the key) at the
/// deepest part of the path that exists; the entry's id if none does.
pub(crate) fn span_at(entry: &Entry<'_>, rel: &[Seg], key: bool) -> Range<usize> {
    let mut span = entry.key_span.clone();
    let mut node = entry.value.get_ref();
    for seg in rel {
        match (node, seg) {
            (DeValue::Table(t), Seg::Key(k)) => match t.get_key_value(k.as_str()) {
                Some((k, v)) => {
                    span = if key { k.span() } else { v.span() };
                    node = v.get_ref();
                }
                None => break,
            },
            (DeValue::Array(a), Seg::Index(i)) => match a.get(*i) {
                Some(v) => {
                    span = v.span();
                    node = v.get_ref();
                }
                None => break,
            },
            _ => break,
        }
    }
    span
}

/// True if the entry's table has `key` at its top level (to tell a default from a value given).
pub(crate) fn has_key(entry: &Entry<'_>, key: &str) -> bool {
    entry
        .value
        .get_ref()
        .as_table()
        .is_some_and(|t| t.contains_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_table() {
        let cases = [
            (
                "missing field `cron`",
                SerdeMessage::MissingField("cron".into()),
            ),
            (
                "unknown field `shedules`, expected one of `id`, `schedules`",
                SerdeMessage::UnknownField {
                    name: "shedules".into(),
                    expected: vec!["id".into(), "schedules".into()],
                },
            ),
            (
                "unknown field `x`, expected `env`",
                SerdeMessage::UnknownField {
                    name: "x".into(),
                    expected: vec!["env".into()],
                },
            ),
            (
                "unknown field `x`, there are no fields",
                SerdeMessage::UnknownField {
                    name: "x".into(),
                    expected: vec![],
                },
            ),
            (
                "unknown variant `dayly`, expected one of `backup`, `copy`",
                SerdeMessage::UnknownVariant {
                    name: "dayly".into(),
                    expected: vec!["backup".into(), "copy".into()],
                },
            ),
            (
                "invalid type: integer `5`, expected a string",
                SerdeMessage::Invalid {
                    expected: "a string".into(),
                    found: "integer `5`".into(),
                },
            ),
            (
                "invalid value: integer `300`, expected u8",
                SerdeMessage::Invalid {
                    expected: "u8".into(),
                    found: "integer `300`".into(),
                },
            ),
            (
                "compression level 30 is out of range",
                SerdeMessage::Other("compression level 30 is out of range".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_serde_message(input), want, "{input}");
        }
    }

    #[test]
    fn secret_looking_names_table() {
        let cases = [
            ("password", true),
            ("PGPASSWORD", true),
            ("secret-access-key", true),
            ("api_token", true),
            ("access-key", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("credentials", true),
            ("PGDATABASE", false),
            ("PGHOST", false),
            ("keep-daily", false),
            ("PWD", false),
        ];
        for (name, want) in cases {
            assert_eq!(looks_secret(name), want, "{name}");
        }
    }

    #[test]
    fn locate_finds_the_smallest_node() {
        let text = "[systems.a]\nname = \"x\"\npaths = [\"/a\", 5]\n[[systems.a.schedules]]\njob = \"backup\"\n[[systems.a.schedules]]\njob = \"copy\"\ncron = \"x\"\n";
        let doc = DeTable::parse(text).unwrap();
        let systems = doc
            .get_ref()
            .get("systems")
            .unwrap()
            .get_ref()
            .as_table()
            .unwrap();
        let entry = systems.get("a").unwrap();
        let at = |needle: &str, nth: usize| {
            let start = text.match_indices(needle).nth(nth).unwrap().0;
            start..start + needle.len()
        };
        let show = |f: Option<Found<'_>>| f.map(|f| KeyPath(f.path).to_string());
        let cases = [
            (at("5", 0), Some("paths[1]".to_owned())),
            (at("\"/a\"", 0), Some("paths[0]".to_owned())),
            (at("name", 0), Some("name".to_owned())),
            (at("\"x\"", 1), Some("schedules[1].cron".to_owned())),
            (
                at("[[systems.a.schedules]]", 1),
                Some("schedules[1]".to_owned()),
            ),
            (at("[systems.a]", 0), Some(String::new())),
        ];
        for (span, want) in cases {
            assert_eq!(show(locate(entry, &span)), want, "{span:?}");
        }
    }
}
