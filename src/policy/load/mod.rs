//! From files to typed entries: reads the `*.toml` files, parses each into a span-carrying TOML
//! tree, splits it into entries (one tier, site, repository, system or drill plan each) and deserialises
//! every entry on its own (`entry`), collecting *every* problem with its file, line, column and
//! key path (`messages` words them, `spans` finds where they are).
//!
//! This module does not check anything that involves two keys or two entries (that is
//! `validate`), reads nothing but the policy files, and never resolves a secret.

mod document;
mod entry;
mod messages;
mod spans;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use document::parse_document;

pub(crate) use messages::looks_secret;
pub(crate) use spans::{has_key, has_key_at, span_at};

use super::drill::{self, DrillPlan};
use super::ids::DrillId;
use super::ids::check_id;
use super::model::{self, Repository, Site, System, Tier};
use super::problem::{KeyPath, Problem, Seg, SourceFile, did_you_mean};
use super::{RepoId, SiteId, SystemId, TierId};
use entry::deserialize_entry;
use messages::kind;

/// The top-level tables a policy file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Section {
    Tiers,
    Sites,
    Repositories,
    Systems,
    /// Drill plans (`policies/drills/`): read by the coordinator, never part of an assignment.
    Drills,
}

impl Section {
    pub(crate) const ALL: [Section; 5] = [
        Section::Tiers,
        Section::Sites,
        Section::Repositories,
        Section::Systems,
        Section::Drills,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Section::Tiers => "tiers",
            Section::Sites => "sites",
            Section::Repositories => "repositories",
            Section::Systems => "systems",
            Section::Drills => "drills",
        }
    }

    /// The noun for one entry, in messages ("unknown tier").
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Section::Tiers => "tier",
            Section::Sites => "site",
            Section::Repositories => "repository",
            Section::Systems => "system",
            Section::Drills => "drill plan",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Section::Tiers => model::TIER_REQUIRED,
            Section::Sites => model::SITE_REQUIRED,
            Section::Repositories => model::REPOSITORY_REQUIRED,
            Section::Systems => model::SYSTEM_REQUIRED,
            Section::Drills => drill::DRILL_REQUIRED,
        }
    }

    fn placeholders(self) -> &'static str {
        match self {
            Section::Tiers => model::TIER_PLACEHOLDERS,
            Section::Sites => model::SITE_PLACEHOLDERS,
            Section::Repositories => model::REPOSITORY_PLACEHOLDERS,
            Section::Systems => model::SYSTEM_PLACEHOLDERS,
            Section::Drills => drill::DRILL_PLACEHOLDERS,
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
                        .unwrap_or_else(|| "a policy file holds only [tiers], [sites], [repositories], [systems] and [drills]".into());
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
    pub(crate) drills: BTreeMap<DrillId, DrillPlan>,
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

    /// The keys and array elements removed from the entry for their problems, as paths in the
    /// file (so a check can tell which parts of a list are missing or incomplete).
    pub(crate) fn removed(&self, section: Section, id: &str) -> &[Vec<Seg>] {
        self.removed
            .get(&(section, id.to_owned()))
            .map_or(&[], Vec::as_slice)
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
    for entry in entries.of(Section::Drills) {
        if let Some(d) = parsed.entry::<DrillPlan>(files, entry, problems) {
            parsed.drills.insert(d.id.clone(), d);
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
