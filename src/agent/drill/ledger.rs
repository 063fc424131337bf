//! What the agent remembers of drill tasks: one file per task id, `<agent dir>/drill/<id>.json`,
//! so that a task runs at most once, across restarts.
//!
//! An entry is written `started` *before* the task runs and `finished` (with its report) after;
//! `delivered_at` is set once the coordinator accepted the report. Every write goes to a
//! temporary file that is fsynced and renamed over the entry, so an entry is always whole.
//! A `started` entry found when the agent starts means the agent died during that task.
//! Delivered entries are kept for a while ([`Ledger::prune`]) to recognise a task offered again.
//!
//! A running task also holds a reserve file (`<id>.reserve`, [`RESERVE`] bytes) made before
//! it starts: a restore that fills the disk must not leave the agent unable to write the
//! report it produced. Finishing writes the report, freeing the reserve first when the disk
//! refuses the write, and removes the reserve.
//!
//! This module does file I/O only: no clock (times are passed in), no network, no task running.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{DrillReport, DrillTask};

/// Bytes set aside per running task for its finished entry: a report's largest part is a
/// command's output tail ([`crate::agent::drill::OUTPUT_TAIL`]), which JSON escaping can grow
/// up to six times.
pub(crate) const RESERVE: usize = 128 * 1024;

/// One task as remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) task_id: String,
    pub(crate) drill_id: Uuid,
    pub(crate) step: String,
    pub(crate) started_at: Timestamp,
    /// Present once the task finished (or was found interrupted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) report: Option<DrillReport>,
    /// When the coordinator accepted the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delivered_at: Option<Timestamp>,
}

/// Why the ledger could not read or write an entry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    #[error(
        "drill task id {0:?} is not valid (letters, digits, `.`, `_` and `-` only, not starting with `.`)"
    )]
    BadId(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("drill task entry {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// The directory of entries.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// Opens (creating) the ledger in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
            context: format!("cannot create {}", dir.display()),
            source,
        })?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, task_id: &str) -> Result<PathBuf, LedgerError> {
        let valid = !task_id.is_empty()
            && task_id.len() <= 200
            && !task_id.starts_with('.')
            && task_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(LedgerError::BadId(task_id.to_string()));
        }
        Ok(self.dir.join(format!("{task_id}.json")))
    }

    fn reserve_path(&self, task_id: &str) -> Result<PathBuf, LedgerError> {
        Ok(self.path(task_id)?.with_extension("reserve"))
    }

    /// Writes `task_id`'s reserve: [`RESERVE`] bytes really allocated (written, not sparse)
    /// and synced. A reserve that cannot be made is removed again.
    fn make_reserve(&self, task_id: &str) -> Result<(), LedgerError> {
        let path = self.reserve_path(task_id)?;
        let made = std::fs::File::create(&path).and_then(|mut f| {
            std::io::copy(
                &mut std::io::Read::take(std::io::repeat(0), RESERVE as u64),
                &mut f,
            )?;
            f.sync_all()
        });
        made.map_err(|source| {
            let _ = std::fs::remove_file(&path);
            LedgerError::Io {
                context: format!(
                    "cannot set aside {} KiB for the task's report in {}",
                    RESERVE / 1024,
                    self.dir.display()
                ),
                source,
            }
        })
    }

    /// Frees `task_id`'s reserve; true when there was one.
    fn free_reserve(&self, task_id: &str) -> bool {
        self.reserve_path(task_id)
            .is_ok_and(|p| std::fs::remove_file(p).is_ok())
    }

    /// The entry of `task_id`, if the agent has seen that task before.
    pub(crate) fn get(&self, task_id: &str) -> Result<Option<Entry>, LedgerError> {
        let path = self.path(task_id)?;
        read(&path)
    }

    /// Records that `task` starts now, with its reserve; durable when this returns.
    pub(crate) fn start(&self, task: &DrillTask, now: Timestamp) -> Result<Entry, LedgerError> {
        self.make_reserve(&task.task_id)?;
        let entry = Entry {
            task_id: task.task_id.clone(),
            drill_id: task.drill_id,
            step: task.step.clone(),
            started_at: now,
            report: None,
            delivered_at: None,
        };
        if let Err(e) = self.write(&entry) {
            self.free_reserve(&task.task_id);
            return Err(e);
        }
        Ok(entry)
    }

    /// Records the task's report (keeping its start time) and frees its reserve. When the write
    /// fails and the task still holds its reserve (the disk is full), the reserve is freed and
    /// the write tried once more.
    pub(crate) fn finish(&self, report: &DrillReport) -> Result<(), LedgerError> {
        let mut entry = self.get(&report.task_id)?.unwrap_or_else(|| Entry {
            task_id: report.task_id.clone(),
            drill_id: report.drill_id,
            step: String::new(),
            started_at: report.started_at,
            report: None,
            delivered_at: None,
        });
        entry.report = Some(report.clone());
        entry.delivered_at = None;
        match self.write(&entry) {
            Ok(()) => {
                self.free_reserve(&report.task_id);
                Ok(())
            }
            Err(first) => {
                if !self.free_reserve(&report.task_id) {
                    return Err(first);
                }
                tracing::warn!(
                    task = %report.task_id,
                    "drill task ledger: {first}; the task's reserve was freed to write its report"
                );
                self.write(&entry)
            }
        }
    }

    /// Records that the coordinator accepted `report`. An entry still `started` (its finish
    /// could not be written) takes the report now, so that a restart does not call the task
    /// interrupted after the coordinator has its real report.
    pub(crate) fn delivered(
        &self,
        report: &DrillReport,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let Some(mut entry) = self.get(&report.task_id)? else {
            return Ok(());
        };
        if entry.report.is_none() {
            entry.report = Some(report.clone());
            entry.delivered_at = Some(now);
            self.write(&entry)?;
            self.free_reserve(&report.task_id);
        } else if entry.delivered_at.is_none() {
            entry.delivered_at = Some(now);
            self.write(&entry)?;
        }
        Ok(())
    }

    /// Every entry, in task id order. Unreadable entries are returned as errors beside them.
    pub(crate) fn all(&self) -> (Vec<Entry>, Vec<LedgerError>) {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(source) => {
                errors.push(LedgerError::Io {
                    context: format!("cannot read {}", self.dir.display()),
                    source,
                });
                return (entries, errors);
            }
        };
        let mut paths: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            match read(&path) {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        (entries, errors)
    }

    /// Turns every `started` entry (its task was running when the agent died) into a finished
    /// one with the report `interrupted` makes; returns those reports.
    pub(crate) fn recover(
        &self,
        interrupted: impl Fn(&Entry) -> DrillReport,
    ) -> (Vec<DrillReport>, Vec<LedgerError>) {
        let (entries, mut errors) = self.all();
        let mut reports = Vec::new();
        for entry in entries.into_iter().filter(|e| e.report.is_none()) {
            let report = interrupted(&entry);
            match self.finish(&report) {
                Ok(()) => reports.push(report),
                Err(e) => errors.push(e),
            }
        }
        self.sweep_reserves();
        (reports, errors)
    }

    /// Reports finished but not yet accepted by the coordinator.
    pub(crate) fn undelivered(&self) -> Vec<DrillReport> {
        self.all()
            .0
            .into_iter()
            .filter(|e| e.delivered_at.is_none())
            .filter_map(|e| e.report)
            .collect()
    }

    /// Removes reserves whose task is not running: finished entries' and those whose entry
    /// was never written (the agent died between the two). Call only when no task runs.
    fn sweep_reserves(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for path in dir.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_none_or(|x| x != "reserve") {
                continue;
            }
            let running =
                matches!(read(&path.with_extension("json")), Ok(Some(e)) if e.report.is_none());
            if !running {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Removes entries delivered before `cutoff`; returns how many.
    pub(crate) fn prune(&self, cutoff: Timestamp) -> usize {
        let mut removed = 0;
        for entry in self.all().0 {
            if entry.delivered_at.is_some_and(|t| t < cutoff)
                && let Ok(path) = self.path(&entry.task_id)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    fn write(&self, entry: &Entry) -> Result<(), LedgerError> {
        let path = self.path(&entry.task_id)?;
        let tmp = path.with_extension("json.tmp");
        let io = |context: String| move |source| LedgerError::Io { context, source };
        let body = serde_json::to_vec_pretty(entry).map_err(|e| LedgerError::Io {
            context: format!("cannot encode {}", path.display()),
            source: std::io::Error::other(e),
        })?;
        #[cfg(test)]
        if let Some(e) = tests::injected_failure(&self.dir) {
            return Err(io(format!("cannot write {}", tmp.display()))(e));
        }
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&body)?;
            f.sync_all()
        });
        if let Err(e) = written {
            // A half-written temporary file would only hold space a retry needs.
            let _ = std::fs::remove_file(&tmp);
            return Err(io(format!("cannot write {}", tmp.display()))(e));
        }
        std::fs::rename(&tmp, &path).map_err(io(format!("cannot write {}", path.display())))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("cannot sync {}", self.dir.display())))
    }
}

fn read(path: &Path) -> Result<Option<Entry>, LedgerError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LedgerError::Io {
                context: format!("cannot read {}", path.display()),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LedgerError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::api::TaskAction;
    use crate::run::Outcome;

    /// Ledger directories that act as a full disk: writing an entry fails with "no space"
    /// while any task's reserve is still there (freeing one frees the space).
    static FULL: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

    pub(super) fn injected_failure(dir: &Path) -> Option<std::io::Error> {
        let full = FULL.lock().unwrap().iter().any(|d| d == dir);
        let reserved = std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "reserve")
        });
        (full && reserved).then(|| std::io::Error::from(std::io::ErrorKind::StorageFull))
    }

    fn reserves(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".reserve"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_full_disk_still_takes_the_report_into_the_reserve_of_its_task() {
        let (dir, ledger, t0) = fresh();
        ledger.start(&task("d.1.sys"), t0).unwrap();
        assert_eq!(reserves(dir.path()), ["d.1.sys.reserve"]);
        assert_eq!(
            std::fs::metadata(dir.path().join("d.1.sys.reserve"))
                .unwrap()
                .len(),
            RESERVE as u64
        );
        FULL.lock().unwrap().push(dir.path().to_path_buf());
        // The restore filled the disk: the first write fails, the reserve makes room.
        ledger.finish(&report("d.1.sys", t0)).unwrap();
        FULL.lock().unwrap().retain(|d| d != dir.path());
        let entry = ledger.get("d.1.sys").unwrap().unwrap();
        assert_eq!(entry.report, Some(report("d.1.sys", t0)));
        assert!(reserves(dir.path()).is_empty());
        assert!(!dir.path().join("d.1.sys.json.tmp").exists());
    }

    #[test]
    fn without_a_reserve_a_full_disk_fails_the_write_and_keeps_the_started_entry() {
        let (dir, ledger, t0) = fresh();
        ledger.start(&task("a"), t0).unwrap();
        ledger.start(&task("b"), t0).unwrap();
        ledger.finish(&report("b", t0)).unwrap();
        // Another task's reserve is not this task's to free.
        std::fs::remove_file(dir.path().join("a.reserve")).unwrap();
        std::fs::write(dir.path().join("c.reserve"), b"").unwrap();
        FULL.lock().unwrap().push(dir.path().to_path_buf());
        let err = ledger.finish(&report("a", t0)).unwrap_err();
        FULL.lock().unwrap().retain(|d| d != dir.path());
        assert!(err.to_string().contains("a.json.tmp"), "{err}");
        assert!(ledger.get("a").unwrap().unwrap().report.is_none());
        assert!(dir.path().join("c.reserve").exists());
    }

    #[test]
    fn a_delivered_report_whose_finish_was_never_written_is_written_then() {
        let (dir, ledger, t0) = fresh();
        let t1 = ts("2026-03-01T00:10:00Z");
        ledger.start(&task("a"), t0).unwrap();
        // finish failed (the report went out from memory); the coordinator accepted it.
        ledger.delivered(&report("a", t0), t1).unwrap();
        let entry = ledger.get("a").unwrap().unwrap();
        assert_eq!(entry.report, Some(report("a", t0)));
        assert_eq!(entry.delivered_at, Some(t1));
        assert!(reserves(dir.path()).is_empty());
        // A restart finds nothing interrupted.
        let (again, _) = ledger.recover(|_| unreachable!("nothing left to recover"));
        assert!(again.is_empty());
    }

    #[test]
    fn recovery_removes_reserves_of_tasks_no_longer_running() {
        let (dir, ledger, t0) = fresh();
        ledger.start(&task("a"), t0).unwrap();
        // The agent died after making a reserve and before writing the entry.
        std::fs::write(dir.path().join("orphan.reserve"), [0u8; 16]).unwrap();
        let (reports, errors) = ledger.recover(|e| {
            crate::agent::drill::interrupted(&e.task_id, e.drill_id, "h", e.started_at, t0)
        });
        assert!(errors.is_empty());
        assert_eq!(reports.len(), 1);
        assert!(reserves(dir.path()).is_empty());
    }

    /// An empty ledger in its own directory, and the tests' start time.
    fn fresh() -> (tempfile::TempDir, Ledger, Timestamp) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        (dir, ledger, ts("2026-03-01T00:00:00Z"))
    }

    fn task(id: &str) -> DrillTask {
        DrillTask {
            task_id: id.into(),
            drill_id: Uuid::nil(),
            step: "restore".into(),
            system: None,
            timeout_seconds: 60,
            action: TaskAction::Cleanup { paths: vec![] },
        }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn report(id: &str, at: Timestamp) -> DrillReport {
        DrillReport {
            task_id: id.into(),
            drill_id: Uuid::nil(),
            host: "h".into(),
            started_at: at,
            finished_at: at,
            outcome: Outcome::Success,
            error: None,
            probe: None,
            restore: None,
            command: None,
        }
    }

    #[test]
    fn an_entry_goes_from_started_to_finished_to_delivered_and_is_pruned_later() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("drill")).unwrap();
        let t0 = ts("2026-03-01T00:00:00Z");
        assert!(ledger.get("d.1.sys").unwrap().is_none());
        ledger.start(&task("d.1.sys"), t0).unwrap();
        let e = ledger.get("d.1.sys").unwrap().unwrap();
        assert!(e.report.is_none());
        ledger.finish(&report("d.1.sys", t0)).unwrap();
        assert_eq!(ledger.undelivered().len(), 1);
        let t1 = ts("2026-03-01T00:10:00Z");
        ledger.delivered(&report("d.1.sys", t0), t1).unwrap();
        assert!(ledger.undelivered().is_empty());
        assert_eq!(
            ledger.get("d.1.sys").unwrap().unwrap().delivered_at,
            Some(t1)
        );
        assert_eq!(ledger.prune(t0), 0);
        assert_eq!(ledger.prune(ts("2026-03-09T00:00:00Z")), 1);
        assert!(ledger.get("d.1.sys").unwrap().is_none());
    }

    #[test]
    fn started_entries_are_recovered_as_interrupted_once() {
        let (_dir, ledger, t0) = fresh();
        ledger.start(&task("a"), t0).unwrap();
        ledger.start(&task("b"), t0).unwrap();
        ledger.finish(&report("b", t0)).unwrap();
        let (reports, errors) = ledger.recover(|e| {
            crate::agent::drill::interrupted(&e.task_id, e.drill_id, "h", e.started_at, t0)
        });
        assert!(errors.is_empty());
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].task_id, "a");
        assert_eq!(reports[0].error.as_ref().unwrap().kind, "interrupted");
        let (again, _) = ledger.recover(|_| unreachable!("nothing left to recover"));
        assert!(again.is_empty());
    }

    #[test]
    fn ids_that_are_not_plain_file_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(
                matches!(ledger.get(bad), Err(LedgerError::BadId(_))),
                "{bad:?}"
            );
        }
    }
}
