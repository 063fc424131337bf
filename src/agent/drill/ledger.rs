//! What the agent remembers of drill tasks: one file per task id, `<agent dir>/drill/<id>.json`,
//! so that a task runs at most once, across restarts.
//!
//! An entry is written `started` *before* the task runs and `finished` (with its report) after;
//! `delivered_at` is set once the coordinator accepted the report. Every write goes to a
//! temporary file that is fsynced and renamed over the entry, so an entry is always whole.
//! A `started` entry found when the agent starts means the agent died during that task.
//! Delivered entries are kept for a while ([`Ledger::prune`]) to recognise a task offered again.
//!
//! This module does file I/O only: no clock (times are passed in), no network, no task running.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{DrillReport, DrillTask};

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

    /// The entry of `task_id`, if the agent has seen that task before.
    pub(crate) fn get(&self, task_id: &str) -> Result<Option<Entry>, LedgerError> {
        let path = self.path(task_id)?;
        read(&path)
    }

    /// Records that `task` starts now; durable when this returns.
    pub(crate) fn start(&self, task: &DrillTask, now: Timestamp) -> Result<Entry, LedgerError> {
        let entry = Entry {
            task_id: task.task_id.clone(),
            drill_id: task.drill_id,
            step: task.step.clone(),
            started_at: now,
            report: None,
            delivered_at: None,
        };
        self.write(&entry)?;
        Ok(entry)
    }

    /// Records the task's report (keeping its start time).
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
        self.write(&entry)
    }

    /// Records that the coordinator accepted the report of `task_id`.
    pub(crate) fn delivered(&self, task_id: &str, now: Timestamp) -> Result<(), LedgerError> {
        let Some(mut entry) = self.get(task_id)? else {
            return Ok(());
        };
        if entry.report.is_some() && entry.delivered_at.is_none() {
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
        {
            let mut f = std::fs::File::create(&tmp)
                .map_err(io(format!("cannot write {}", tmp.display())))?;
            f.write_all(&body)
                .map_err(io(format!("cannot write {}", tmp.display())))?;
            f.sync_all()
                .map_err(io(format!("cannot write {}", tmp.display())))?;
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
        ledger.delivered("d.1.sys", t1).unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let t0 = ts("2026-03-01T00:00:00Z");
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
