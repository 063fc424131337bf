//! Deserialises one entry and reports every problem in it.
//!
//! Serde stops at the first error, so an entry that fails is retried with the offending key or
//! array element removed, until it deserialises. Follow-on errors caused by a removal (a
//! "missing field" for a key just removed, a complaint about the table it was removed from) are
//! not reported. A required key that is missing or was removed is stood in for by a
//! placeholder, so that the rest of the entry is still checked; the keys involved are returned
//! as "touched", and `validate` leaves them alone.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use super::messages::{SerdeMessage, describe, kind, parse_serde_message};
use super::spans::{locate, remove};
use super::{Entry, Section};
use crate::policy::problem::{Problem, Seg, SourceFile, closest};

/// How many removals one entry may go through; an entry has far fewer keys than this, so the
/// bound only guards against a removal that does not make progress.
const MAX_ATTEMPTS: usize = 1000;

/// What deserialising one entry gave.
pub(super) struct Outcome<T> {
    /// The entry, possibly with placeholders for missing or broken required keys.
    pub(super) value: Option<T>,
    /// The top-level keys that had problems, or that an unknown key was probably meant to be.
    /// Checks in `validate` that read a touched key are skipped: the value they would see is a
    /// default or a placeholder, and they would report follow-on problems.
    pub(super) touched: BTreeSet<String>,
    /// Keys and array elements removed for their problems, as paths in the file.
    pub(super) removed: Vec<Vec<Seg>>,
}

/// Deserialises one entry, reporting every problem in it (see the module docs).
pub(super) fn deserialize_entry<T: DeserializeOwned>(
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
                    && let Some(meant) = closest(
                        name,
                        expected.iter().map(String::as_str).filter(|k| *k != "id"),
                    )
                {
                    outcome.touched.insert(meant.to_owned());
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
