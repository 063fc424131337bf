//! Policy-as-code: tiers, sites, repositories, systems and drill plans loaded from a directory of
//! TOML files and validated as a whole.
//!
//! [`load_dir`] and [`load_files`] return either a [`Policy`], in which every value is typed and
//! every reference resolves, or a [`PolicyReport`] listing *every* problem with file, line,
//! column, key path and a hint. The pipeline is `load` (files → typed entries, one problem per
//! bad key) then `validate` (rules across keys and entries); `render` prints a loaded policy.
//!
//! This module reads policy files and nothing else: it resolves no secret, opens no repository,
//! reads no clock and never puts a secret-looking value into a message.

mod assign;
mod cron;
mod drill;
mod ids;
mod load;
mod model;
mod problem;
mod render;
mod repo_url;
mod types;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use assign::AssignError;
pub use cron::Cron;
pub use drill::{
    Criteria, DrillPlan, DrillScenario, DrillScenarioKind, DrillScope, DrillStep, DrillType,
    GateRole, Mark, OnFailure, Organisation, Standby, StepAction,
};
pub use ids::{DrillId, IdError, MAX_ID_LEN, RepoId, SiteId, SystemId, TierId};
pub use load::parse_document;
pub use model::{
    Hook, HookWhen, JobKind, Location, OffsiteClass, Repository, Retention, Schedule, Site,
    SiteRole, Stream, System, Tier,
};
pub use problem::{PolicyReport, Problem};
pub use repo_url::{RepoUrl, StorageKind};
pub use types::{AbsPath, Argv, Duration, Glob, HttpUrl, TimeZone, ZSTD_LEVELS};

/// A validated policy. Built only by the loader, so every reference in it resolves: a system's
/// site, tier, repositories and dependencies are all present.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub tiers: BTreeMap<TierId, Tier>,
    pub sites: BTreeMap<SiteId, Site>,
    pub repositories: BTreeMap<RepoId, Repository>,
    pub systems: BTreeMap<SystemId, System>,
    /// Drill plans (`policies/drills/`); never part of a host's assignment.
    pub drills: BTreeMap<DrillId, DrillPlan>,
    /// sha256 (hex) of the normalised policy JSON (the maps above, without the digest; drill
    /// plans only when there are any): equal policies have equal digests however their files
    /// are split or spelled.
    pub digest: String,
}

/// What the digest covers: the policy without its digest.
#[derive(Serialize)]
struct Normalised<'p> {
    tiers: &'p BTreeMap<TierId, Tier>,
    sites: &'p BTreeMap<SiteId, Site>,
    repositories: &'p BTreeMap<RepoId, Repository>,
    systems: &'p BTreeMap<SystemId, System>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    drills: &'p BTreeMap<DrillId, DrillPlan>,
}

impl Policy {
    fn new(parsed: load::Parsed) -> Self {
        let load::Parsed {
            tiers,
            sites,
            repositories,
            systems,
            drills,
            ..
        } = parsed;
        Policy::assemble(tiers, sites, repositories, systems).with_drills(drills)
    }

    /// This policy with drill plans (all of whose references resolve in it), digest updated.
    pub(crate) fn with_drills(self, drills: BTreeMap<DrillId, DrillPlan>) -> Self {
        let Policy {
            tiers,
            sites,
            repositories,
            systems,
            ..
        } = self;
        Policy::assemble_all(tiers, sites, repositories, systems, drills)
    }

    /// A policy from its four maps, with its digest. Only for maps taken from a loaded policy
    /// (every reference resolves), e.g. a host's part of it.
    pub(crate) fn assemble(
        tiers: BTreeMap<TierId, Tier>,
        sites: BTreeMap<SiteId, Site>,
        repositories: BTreeMap<RepoId, Repository>,
        systems: BTreeMap<SystemId, System>,
    ) -> Self {
        Policy::assemble_all(tiers, sites, repositories, systems, BTreeMap::new())
    }

    fn assemble_all(
        tiers: BTreeMap<TierId, Tier>,
        sites: BTreeMap<SiteId, Site>,
        repositories: BTreeMap<RepoId, Repository>,
        systems: BTreeMap<SystemId, System>,
        drills: BTreeMap<DrillId, DrillPlan>,
    ) -> Self {
        let normalised = Normalised {
            tiers: &tiers,
            sites: &sites,
            repositories: &repositories,
            systems: &systems,
            drills: &drills,
        };
        // Serialising maps of plain data to JSON cannot fail; an empty digest would show if it did.
        let json = serde_json::to_vec(&normalised).unwrap_or_default();
        let digest = hex::encode(Sha256::digest(&json));
        Policy {
            tiers,
            sites,
            repositories,
            systems,
            drills,
            digest,
        }
    }

    pub fn system(&self, id: &str) -> Option<&System> {
        self.systems.get(id)
    }

    pub fn repository(&self, id: &str) -> Option<&Repository> {
        self.repositories.get(id)
    }

    /// The system's tier. Panics if `s` is not from this policy (in a loaded policy every
    /// system's tier exists).
    pub fn tier_of(&self, s: &System) -> &Tier {
        &self.tiers[&s.tier]
    }

    /// The system's site. Panics if `s` is not from this policy.
    pub fn site_of(&self, s: &System) -> &Site {
        &self.sites[&s.site]
    }

    /// The system's repositories in copy-chain order (backups go to the first). Panics if `s`
    /// is not from this policy.
    pub fn repositories_of(&self, s: &System) -> Vec<&Repository> {
        s.repositories
            .iter()
            .map(|id| &self.repositories[id])
            .collect()
    }

    /// The normalised human listing for `lifeboat policy show`.
    pub fn render_text(&self) -> String {
        render::render(self)
    }
}

impl PolicyReport {
    /// The problems as JSON objects (`file`, `line`, `column`, `key_path`, `message`, `hint`),
    /// for `--json` output.
    pub fn problems_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.problems
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "file": p.file.display().to_string(),
                        "line": p.line,
                        "column": p.column,
                        "key_path": p.key_path,
                        "message": p.message,
                        "hint": p.hint,
                    })
                })
                .collect(),
        )
    }
}

/// Loads every `*.toml` file under `dir`, recursively, in sorted order (hidden files and
/// directories are skipped). File names in problems are `dir` joined with the file's path.
/// Given a file instead of a directory, loads that file.
pub fn load_dir(dir: &Path) -> Result<Policy, PolicyReport> {
    if dir.is_file() {
        return load_files(&[dir.to_path_buf()]);
    }
    let mut problems = Vec::new();
    let files = load::find_files(dir, &mut problems);
    if !problems.is_empty() {
        return Err(PolicyReport::new(problems));
    }
    load_files(&files)
}

/// A digest of the files [`load_dir`] would read, by path and content, without parsing them: a
/// service re-reading its policy periodically parses it again only when this changes (parsing
/// 50,000 systems costs seconds of CPU). `None` when the directory cannot be listed or a file
/// cannot be read; [`load_dir`] then says why.
pub fn sources_digest(dir: &Path) -> Option<String> {
    let mut problems = Vec::new();
    let files = if dir.is_file() {
        vec![dir.to_path_buf()]
    } else {
        load::find_files(dir, &mut problems)
    };
    if !problems.is_empty() {
        return None;
    }
    let mut hash = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).ok()?;
        let name = file.as_os_str().as_encoded_bytes();
        for part in [name, bytes.as_slice()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    Some(hex::encode(hash.finalize()))
}

/// Loads the given files as one policy. Entries may be spread over the files in any way; an id
/// defined twice is a problem.
pub fn load_files(files: &[PathBuf]) -> Result<Policy, PolicyReport> {
    let mut problems = Vec::new();
    let sources = load::read_files(files, &mut problems);
    load_sources(sources, problems)
}

/// Loads policy texts held in memory, `(file name, TOML)`, as one policy: [`load_files`] without
/// the file system (problems name the given file names).
pub fn load_texts(texts: &[(String, String)]) -> Result<Policy, PolicyReport> {
    let sources = texts
        .iter()
        .map(|(name, text)| problem::SourceFile {
            path: PathBuf::from(name),
            text: text.clone(),
        })
        .collect();
    load_sources(sources, Vec::new())
}

fn load_sources(
    sources: Vec<problem::SourceFile>,
    mut problems: Vec<Problem>,
) -> Result<Policy, PolicyReport> {
    let documents = load::parse_files(&sources, &mut problems);
    let entries = load::Entries::collect(&sources, &documents, &mut problems);
    let parsed = load::deserialize_all(&sources, &entries, &mut problems);
    validate::check(&sources, &entries, &parsed, &mut problems);
    if problems.is_empty() {
        Ok(Policy::new(parsed))
    } else {
        Err(PolicyReport::new(problems))
    }
}
