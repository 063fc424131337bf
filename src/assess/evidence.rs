//! Evidence: the snapshots the coordinator knows of for each system, when each became available
//! at each repository, what writes to each repository last did, and what the checks of each
//! repository found — an [`Inventory`], built from run records.
//!
//! Bookkeeping only: nothing here decides whether a copy *counts* (scenarios, validity and
//! exposure are the assessment's job). The evidence rules are in the parent module's
//! documentation; this file implements them and nothing else.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use super::checks::{CheckDepth, CheckRun, RepositoryChecks};
use crate::policy::{IdError, Policy, RepoId, SystemId};
use crate::run::{Outcome, RepoResult, RunKind, RunRecord};

// ---------------------------------------------------------------------------------------------
// Ids and facts

/// A restic snapshot id (hex), cheap to clone. Copies are keyed by the id the snapshot has in
/// the source repository (a copy's run record lists source ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId(Arc<str>);

impl SnapshotId {
    pub fn new(id: &str) -> Self {
        SnapshotId(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters, as restic prints ids.
    pub fn short(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

impl Borrow<str> for SnapshotId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SnapshotId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What the backup run that made a snapshot reported about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capture {
    /// `t_cap`: the point in time the snapshot's data represents (agent clock).
    pub captured: Timestamp,
    /// The backup run's outcome: only `success` makes a complete snapshot.
    pub outcome: Outcome,
}

impl Capture {
    pub fn is_complete(&self) -> bool {
        self.outcome == Outcome::Success
    }
}

/// One snapshot of a system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotEntry {
    pub id: SnapshotId,
    /// `None` until the backup record arrives (a copy record may name the snapshot first):
    /// without a capture time the snapshot cannot count.
    pub capture: Option<Capture>,
    /// The source data the backup read, when its record says (a drill estimates its restore).
    pub size: Option<SourceSize>,
}

/// How much source data a backup read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceSize {
    pub bytes: u64,
    pub files: u64,
}

/// The last failed write (backup or copy) to a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteFailure {
    pub at: Timestamp,
    pub message: String,
}

/// What writes of one system to one repository last did: what reasons quote ("last copy to
/// linfen-offsite failed at …, 2 failures since the last success: …").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteHistory {
    pub last_success: Option<Timestamp>,
    pub last_failure: Option<WriteFailure>,
    /// Failures after the last success. Exact when records arrive in time order (an agent
    /// delivers its records in order); a success delivered after later failures may leave it
    /// too high, never too low.
    pub failures_since_success: u32,
}

impl WriteHistory {
    /// The last failure, if no success came after it.
    pub fn failing(&self) -> Option<&WriteFailure> {
        self.last_failure
            .as_ref()
            .filter(|f| self.last_success.is_none_or(|s| f.at > s))
    }

    fn succeeded(&mut self, at: Timestamp) {
        if self.last_success.is_some_and(|s| s >= at) {
            return;
        }
        self.last_success = Some(at);
        if self.last_failure.as_ref().is_none_or(|f| f.at <= at) {
            self.failures_since_success = 0;
        }
    }

    fn failed(&mut self, at: Timestamp, message: &str) {
        if self.last_success.is_some_and(|s| s >= at) {
            // An old failure, already overtaken by a success.
            return;
        }
        self.failures_since_success = self.failures_since_success.saturating_add(1);
        if self.last_failure.as_ref().is_none_or(|f| f.at <= at) {
            self.last_failure = Some(WriteFailure {
                at,
                message: message.to_string(),
            });
        }
    }
}

/// A successful copy run into a repository: every snapshot at the source by `started` was at
/// the target by `available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CopyRun {
    started: Timestamp,
    available: Timestamp,
}

/// What one system has at one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoColumn {
    repository: RepoId,
    /// `t_avail` by snapshot index (shorter than the snapshot list when the tail is absent).
    available: Vec<Option<Timestamp>>,
    copy_runs: Vec<CopyRun>,
    writes: WriteHistory,
}

impl RepoColumn {
    fn new(repository: RepoId) -> Self {
        RepoColumn {
            repository,
            available: Vec::new(),
            copy_runs: Vec::new(),
            writes: WriteHistory::default(),
        }
    }

    pub fn repository(&self) -> &RepoId {
        &self.repository
    }

    /// When snapshot number `snapshot` (an index into [`SystemEvidence::snapshots`]) became
    /// available here.
    pub fn available_at(&self, snapshot: usize) -> Option<Timestamp> {
        self.available.get(snapshot).copied().flatten()
    }

    /// `(snapshot index, t_avail)` of every copy here.
    pub fn copies(&self) -> impl Iterator<Item = (usize, Timestamp)> + '_ {
        self.available
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (i, a)))
    }

    pub fn writes(&self) -> &WriteHistory {
        &self.writes
    }

    /// Sets `t_avail` of a snapshot to `at` unless an earlier one is known. True if it changed.
    fn set(&mut self, snapshot: usize, at: Timestamp) -> bool {
        if self.available.len() <= snapshot {
            self.available.resize(snapshot + 1, None);
        }
        match self.available[snapshot] {
            Some(t) if t <= at => false,
            _ => {
                self.available[snapshot] = Some(at);
                true
            }
        }
    }

    /// The earliest completion of a copy run that started at or after `t`.
    fn caught_up(&self, t: Timestamp) -> Option<Timestamp> {
        self.copy_runs
            .iter()
            .filter(|r| r.started >= t)
            .map(|r| r.available)
            .min()
    }
}

/// One copy, flattened: the evidence of the standards' `(s, L, t_cap, t_avail)` tuple.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyView<'a> {
    pub snapshot: &'a SnapshotId,
    pub repository: &'a RepoId,
    /// `None` when the backup record has not arrived.
    pub capture: Option<Capture>,
    pub available: Timestamp,
}

/// Everything known of one system's snapshots and copies.
#[derive(Debug, Clone, Default)]
pub struct SystemEvidence {
    snapshots: Vec<SnapshotEntry>,
    by_id: HashMap<SnapshotId, u32>,
    columns: Vec<RepoColumn>,
    /// The column copies are made from (the first repository of the chain).
    source: Option<usize>,
}

impl SystemEvidence {
    /// Evidence of a system nothing is known about.
    pub fn empty() -> &'static SystemEvidence {
        static EMPTY: OnceLock<SystemEvidence> = OnceLock::new();
        EMPTY.get_or_init(SystemEvidence::default)
    }

    pub fn snapshots(&self) -> &[SnapshotEntry] {
        &self.snapshots
    }

    /// One column per repository the system has evidence of, in the order first seen.
    pub fn columns(&self) -> &[RepoColumn] {
        &self.columns
    }

    pub fn column(&self, repository: &str) -> Option<&RepoColumn> {
        self.columns
            .iter()
            .find(|c| c.repository.as_str() == repository)
    }

    /// Every copy (snapshot × repository with a `t_avail`).
    pub fn copies(&self) -> impl Iterator<Item = CopyView<'_>> + '_ {
        self.columns.iter().flat_map(move |col| {
            col.copies().map(move |(i, available)| CopyView {
                snapshot: &self.snapshots[i].id,
                repository: &col.repository,
                capture: self.snapshots[i].capture,
                available,
            })
        })
    }

    fn snapshot_index(&mut self, id: &str) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i as usize;
        }
        let i = self.snapshots.len();
        let id = SnapshotId::new(id);
        // More than 4 billion snapshots of one system cannot be held in memory anyway.
        self.by_id
            .insert(id.clone(), u32::try_from(i).unwrap_or(u32::MAX));
        self.snapshots.push(SnapshotEntry {
            id,
            capture: None,
            size: None,
        });
        i
    }

    fn column_index(&mut self, repository: &RepoId) -> usize {
        if let Some(i) = self
            .columns
            .iter()
            .position(|c| &c.repository == repository)
        {
            return i;
        }
        self.columns.push(RepoColumn::new(repository.clone()));
        self.columns.len() - 1
    }

    /// Names the repository copies are made from (the first of the system's chain). Copy runs
    /// recorded before a change of source are not re-derived.
    pub fn set_source(&mut self, repository: Option<RepoId>) {
        self.source = repository.map(|r| self.column_index(&r));
    }

    /// Records a snapshot's capture (from its backup record). A second capture of the same id
    /// replaces the first.
    pub fn record_capture(&mut self, snapshot: &str, capture: Capture) {
        let i = self.snapshot_index(snapshot);
        self.snapshots[i].capture = Some(capture);
    }

    /// Records the source data a snapshot's backup read.
    pub fn record_size(&mut self, snapshot: &str, size: SourceSize) {
        let i = self.snapshot_index(snapshot);
        self.snapshots[i].size = Some(size);
    }

    /// Records that `snapshot` was available at `repository` by `at` (the earliest such time
    /// wins). At the source repository this also applies every copy run recorded that started
    /// after it (the catch-up rule).
    pub fn record_available(&mut self, snapshot: &str, repository: &RepoId, at: Timestamp) {
        let i = self.snapshot_index(snapshot);
        let c = self.column_index(repository);
        if self.columns[c].set(i, at) && self.source == Some(c) {
            self.catch_up_snapshot(i, c, at);
        }
    }

    /// Records a successful copy run into `repository`: started at `started` (agent clock), done
    /// at `available`. Every snapshot available at the source by `started` is then available at
    /// `repository` by `available`.
    pub fn record_copy_run(
        &mut self,
        repository: &RepoId,
        started: Timestamp,
        available: Timestamp,
    ) {
        let c = self.column_index(repository);
        self.columns[c]
            .copy_runs
            .push(CopyRun { started, available });
        let Some(source) = self.source.filter(|&s| s != c) else {
            return;
        };
        for i in 0..self.snapshots.len() {
            if self.columns[source]
                .available_at(i)
                .is_some_and(|a| a <= started)
            {
                self.columns[c].set(i, available);
            }
        }
    }

    /// Records a write (backup or copy) to `repository`: `Ok` for a success, `Err(message)`
    /// for a failure.
    pub fn record_write(&mut self, repository: &RepoId, at: Timestamp, result: Result<(), &str>) {
        let c = self.column_index(repository);
        match result {
            Ok(()) => self.columns[c].writes.succeeded(at),
            Err(message) => self.columns[c].writes.failed(at, message),
        }
    }

    fn catch_up_snapshot(&mut self, i: usize, source: usize, at: Timestamp) {
        for c in 0..self.columns.len() {
            if c != source
                && let Some(done) = self.columns[c].caught_up(at)
            {
                self.columns[c].set(i, done);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The inventory

/// Why a run record was not taken into the inventory. The rest of the records still are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("run {run_id}: a {kind} record must name its system; it was not counted as evidence")]
    NoSystem { run_id: String, kind: &'static str },
    #[error(
        "run {run_id}: system \"{system}\" is not in the policy; if it was removed, its records \
         can be archived, otherwise reload the policy"
    )]
    UnknownSystem { run_id: String, system: String },
    #[error("run {run_id}: {source}")]
    BadId { run_id: String, source: IdError },
    #[error(
        "run {run_id}: the backup succeeded at {repository} but names no snapshot; the record \
         is malformed and was not counted"
    )]
    NoSnapshot { run_id: String, repository: String },
}

/// What the coordinator knows: per system, its snapshots and copies; per repository, its checks.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    systems: HashMap<SystemId, SystemEvidence>,
    repositories: HashMap<RepoId, RepositoryChecks>,
}

impl Inventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an inventory from run records in any order (they are taken in `finished_at`
    /// order, so check histories are built without re-folding). Records that cannot be used are
    /// returned with the reason; the others are all taken.
    ///
    /// Check records do not say how deep the check read, so they are taken as structure checks
    /// (they never count toward read-data coverage, and clear only structure failures). A
    /// coordinator that knows the depth (from the job kind and subset) should feed checks with
    /// [`Inventory::record_check`] instead.
    pub fn from_runs(runs: &[RunRecord], policy: &Policy) -> (Inventory, Vec<IngestError>) {
        let mut order: Vec<&RunRecord> = runs.iter().collect();
        order.sort_by_key(|r| r.finished_at);
        let mut inventory = Inventory::new();
        let errors = order
            .into_iter()
            .filter_map(|r| inventory.ingest(r, policy).err())
            .collect();
        (inventory, errors)
    }

    /// Takes one run record. Backup, copy and check records are evidence; the others (init,
    /// forget, restore) are not. Each record must be ingested once (the store deduplicates by
    /// `run_id`): copies and checks would not change on a second ingest, but a failure would
    /// be counted twice.
    pub fn ingest(&mut self, run: &RunRecord, policy: &Policy) -> Result<(), IngestError> {
        match run.kind {
            RunKind::Backup => self.ingest_write(run, policy, true),
            RunKind::Copy => self.ingest_write(run, policy, false),
            RunKind::Check => self.ingest_check(run),
            RunKind::Init | RunKind::Forget | RunKind::Restore => Ok(()),
        }
    }

    /// Records a check whose depth is known.
    pub fn record_check(&mut self, check: CheckRun) {
        self.repositories
            .entry(check.repository.clone())
            .or_default()
            .record(check);
    }

    /// The evidence of one system, if any.
    pub fn system(&self, id: &str) -> Option<&SystemEvidence> {
        self.systems.get(id)
    }

    /// The evidence of one system, created empty if needed: for feeding evidence that does not
    /// come as run records.
    pub fn system_mut(&mut self, id: &SystemId) -> &mut SystemEvidence {
        self.systems.entry(id.clone()).or_default()
    }

    /// The check history of one repository, if any.
    pub fn checks(&self, repository: &str) -> Option<&RepositoryChecks> {
        self.repositories.get(repository)
    }

    /// Folds every repository's checks that finished before `before` into its summary, to bound
    /// memory (see [`RepositoryChecks::compact`]).
    pub fn compact_checks(&mut self, before: Timestamp) {
        for checks in self.repositories.values_mut() {
            checks.compact(before);
        }
    }

    fn ingest_write(
        &mut self,
        run: &RunRecord,
        policy: &Policy,
        backup: bool,
    ) -> Result<(), IngestError> {
        let kind = if backup { "backup" } else { "copy" };
        let bad_id = |source| IngestError::BadId {
            run_id: run.run_id.clone(),
            source,
        };
        let name = run.system.as_deref().ok_or_else(|| IngestError::NoSystem {
            run_id: run.run_id.clone(),
            kind,
        })?;
        let system = policy
            .system(name)
            .ok_or_else(|| IngestError::UnknownSystem {
                run_id: run.run_id.clone(),
                system: name.to_string(),
            })?;
        // Check the whole record before changing anything.
        let mut results: Vec<(RepoId, &RepoResult, Vec<&str>)> =
            Vec::with_capacity(run.repositories.len());
        for r in &run.repositories {
            let repo: RepoId = r.repository.parse().map_err(bad_id)?;
            let ids: Vec<&str> = if r.snapshots.is_empty() && backup {
                run.snapshot_id.as_deref().into_iter().collect()
            } else {
                r.snapshots.iter().map(String::as_str).collect()
            };
            if backup && r.outcome == Outcome::Success && ids.is_empty() {
                return Err(IngestError::NoSnapshot {
                    run_id: run.run_id.clone(),
                    repository: r.repository.clone(),
                });
            }
            results.push((repo, r, ids));
        }

        let ev = self.systems.entry(system.id.clone()).or_default();
        ev.set_source(system.repositories.first().cloned());
        let capture = Capture {
            // Earlier than any real capture time: never flattering.
            captured: run.capture_time.unwrap_or(run.started_at),
            outcome: run.outcome,
        };
        for (repo, r, ids) in &results {
            if r.outcome == Outcome::Success {
                // Later than the real availability: never flattering.
                let at = r.available_at.unwrap_or(run.finished_at);
                for id in ids {
                    if backup {
                        ev.record_capture(id, capture);
                        if let Some(src) = &run.source {
                            let size = SourceSize {
                                bytes: src.bytes,
                                files: src.files,
                            };
                            ev.record_size(id, size);
                        }
                    }
                    ev.record_available(id, repo, at);
                }
                if !backup {
                    ev.record_copy_run(repo, run.started_at, at);
                }
                ev.record_write(repo, at, Ok(()));
            } else {
                let message = failure_message(r.error.as_ref().or(run.error.as_ref()));
                ev.record_write(repo, run.finished_at, Err(&message));
            }
        }
        if results.is_empty() && run.outcome != Outcome::Success {
            // Refused or cut short before reaching any repository: a failed write to the source
            // (backup) or to every target (copy).
            let message = failure_message(run.error.as_ref());
            let targets: Vec<&RepoId> = if backup {
                system.repositories.iter().take(1).collect()
            } else {
                system.repositories.iter().skip(1).collect()
            };
            for repo in targets {
                ev.record_write(repo, run.finished_at, Err(&message));
            }
        }
        Ok(())
    }

    fn ingest_check(&mut self, run: &RunRecord) -> Result<(), IngestError> {
        // The record says how deep the check went; an `n/m` subset or a full read counts toward
        // read-data coverage, anything else (a random share, or no scope) as structure only.
        let depth = match &run.check {
            Some(scope) if scope.read_data => match &scope.subset {
                None => CheckDepth::ReadData(super::checks::Subset::FULL),
                Some(s) => s
                    .parse::<super::checks::Subset>()
                    .map_or(CheckDepth::Structure, CheckDepth::ReadData),
            },
            _ => CheckDepth::Structure,
        };
        let mut checks = Vec::with_capacity(run.repositories.len());
        for r in &run.repositories {
            let check =
                CheckRun::from_result(run, r, depth).map_err(|source| IngestError::BadId {
                    run_id: run.run_id.clone(),
                    source,
                })?;
            checks.push(check);
        }
        for check in checks {
            self.record_check(check);
        }
        Ok(())
    }
}

fn failure_message(error: Option<&crate::run::RunError>) -> String {
    error.map_or_else(
        || "failed without an error message".to_string(),
        |e| e.message.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn available(inv: &Inventory, system: &str, repo: &str, snapshot: &str) -> Option<Timestamp> {
        let ev = inv.system(system)?;
        let i = ev
            .snapshots()
            .iter()
            .position(|s| s.id.as_str() == snapshot)?;
        ev.column(repo)?.available_at(i)
    }

    /// Two nightly backups, then one copy run that lists only the second snapshot (the first
    /// was already there, from a record the spool dropped): both count at the target by the
    /// copy's end. A backup started after the copy began is not caught up.
    #[test]
    fn copy_catches_up_every_earlier_snapshot() {
        let policy = policy();
        let runs = vec![
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:30",
                Outcome::Success,
            ),
            backup(
                "fin",
                "bbbb2222",
                "03-02 02:00",
                "03-02 02:30",
                Outcome::Success,
            ),
            copy(
                "fin",
                "03-02 03:00",
                &[("offsite", "03-02 04:00", Outcome::Success, &["bbbb2222"])],
            ),
            backup(
                "fin",
                "cccc3333",
                "03-02 03:10",
                "03-02 03:40",
                Outcome::Success,
            ),
        ];
        let (inv, errors) = Inventory::from_runs(&runs, &policy);
        assert_eq!(errors, vec![]);
        assert_eq!(
            available(&inv, "fin", "offsite", "aaaa1111"),
            Some(t("03-02 04:00"))
        );
        assert_eq!(
            available(&inv, "fin", "offsite", "bbbb2222"),
            Some(t("03-02 04:00"))
        );
        assert_eq!(available(&inv, "fin", "offsite", "cccc3333"), None);
        assert_eq!(
            available(&inv, "fin", "local", "cccc3333"),
            Some(t("03-02 03:40"))
        );
    }

    /// Every order of the same records gives the same copies (ingest resolves the catch-up rule
    /// in both directions).
    #[test]
    fn records_in_any_order_give_the_same_copies() {
        let policy = policy();
        let runs = [
            backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:30",
                Outcome::Success,
            ),
            copy(
                "fin",
                "03-01 03:00",
                &[("offsite", "03-01 03:30", Outcome::Success, &[])],
            ),
            copy(
                "fin",
                "03-01 05:00",
                &[("offsite", "03-01 05:10", Outcome::Success, &[])],
            ),
            backup(
                "fin",
                "bbbb2222",
                "03-01 04:00",
                "03-01 04:20",
                Outcome::Success,
            ),
        ];
        let flat = |inv: &Inventory| {
            let mut v: Vec<(String, String, Timestamp)> = inv
                .system("fin")
                .unwrap()
                .copies()
                .map(|c| {
                    (
                        c.snapshot.to_string(),
                        c.repository.to_string(),
                        c.available,
                    )
                })
                .collect();
            v.sort();
            v
        };
        let mut want = None;
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
            let mut inv = Inventory::new();
            for i in order {
                inv.ingest(&runs[i], &policy).unwrap();
            }
            let got = flat(&inv);
            assert_eq!(
                want.get_or_insert_with(|| got.clone()),
                &got,
                "order {order:?}"
            );
        }
        assert_eq!(
            want.unwrap(),
            vec![
                ("aaaa1111".into(), "local".into(), t("03-01 02:30")),
                ("aaaa1111".into(), "offsite".into(), t("03-01 03:30")),
                ("bbbb2222".into(), "local".into(), t("03-01 04:20")),
                ("bbbb2222".into(), "offsite".into(), t("03-01 05:10")),
            ]
        );
    }

    #[test]
    fn failed_writes_are_remembered_for_reasons() {
        let policy = policy();
        let runs = vec![
            copy(
                "fin",
                "03-01 03:00",
                &[("offsite", "03-01 03:30", Outcome::Success, &[])],
            ),
            copy(
                "fin",
                "03-02 03:00",
                &[("offsite", "03-02 03:30", Outcome::Failed, &[])],
            ),
            copy(
                "fin",
                "03-03 03:00",
                &[("offsite", "03-03 03:30", Outcome::Failed, &[])],
            ),
        ];
        let (inv, _) = Inventory::from_runs(&runs, &policy);
        let writes = inv
            .system("fin")
            .unwrap()
            .column("offsite")
            .unwrap()
            .writes();
        assert_eq!(writes.failures_since_success, 2);
        let failing = writes.failing().unwrap();
        assert_eq!(
            (failing.at, failing.message.as_str()),
            (t("03-03 03:30"), "connection refused")
        );
        assert_eq!(writes.last_success, Some(t("03-01 03:30")));
    }

    #[test]
    fn unusable_records_are_returned_with_the_reason() {
        let policy = policy();
        let mut no_system = backup(
            "fin",
            "aaaa1111",
            "03-01 02:00",
            "03-01 02:30",
            Outcome::Success,
        );
        no_system.system = None;
        let unknown = backup(
            "ghost",
            "aaaa1111",
            "03-01 02:00",
            "03-01 02:30",
            Outcome::Success,
        );
        let mut no_snapshot = backup("fin", "x", "03-01 02:00", "03-01 02:30", Outcome::Success);
        no_snapshot.snapshot_id = None;
        no_snapshot.repositories[0].snapshots.clear();
        let mut bad_repo = backup(
            "fin",
            "aaaa1111",
            "03-01 02:00",
            "03-01 02:30",
            Outcome::Success,
        );
        bad_repo.repositories[0].repository = "../x".into();
        let restore = {
            let mut r = backup(
                "fin",
                "aaaa1111",
                "03-01 02:00",
                "03-01 02:30",
                Outcome::Success,
            );
            r.kind = RunKind::Restore;
            r
        };
        let (inv, errors) = Inventory::from_runs(
            &[no_system, unknown, no_snapshot, bad_repo, restore],
            &policy,
        );
        let kinds: Vec<&str> = errors
            .iter()
            .map(|e| match e {
                IngestError::NoSystem { .. } => "no-system",
                IngestError::UnknownSystem { .. } => "unknown-system",
                IngestError::NoSnapshot { .. } => "no-snapshot",
                IngestError::BadId { .. } => "bad-id",
            })
            .collect();
        assert_eq!(
            kinds,
            ["no-system", "unknown-system", "no-snapshot", "bad-id"]
        );
        assert!(
            errors[1]
                .to_string()
                .contains("\"ghost\" is not in the policy")
        );
        // Nothing of the refused records (and nothing of the restore) became evidence.
        assert_eq!(inv.system("fin").map(|e| e.copies().count()), None);
    }
}
