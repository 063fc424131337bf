//! What the agent remembers between runs and restarts: the schedule history, read-data
//! rotation counters and a per-system summary of the evidence (last runs, last successes,
//! capture times local and off-site). Kept in `<state-dir>/agent/state.json`, replaced
//! atomically (write, fsync, rename) after every change.
//!
//! Folding a run record into the state ([`AgentState::record`]) is pure; so is the off-site
//! lag: the capture time of the newest snapshot already off-site against the newest local one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::{JobKind, Location};
use crate::run::{Outcome, RunKind, RunRecord};

use super::schedule::History;

/// How many recent successful backups a system remembers (to date what a copy carried).
const RECENT_BACKUPS: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentState {
    /// Per system and job: the scheduler's memory.
    #[serde(default)]
    pub history: History,
    /// Per repository: how many read-data runs were done (the rotation position).
    #[serde(default)]
    pub rotation: BTreeMap<String, u64>,
    #[serde(default)]
    pub systems: BTreeMap<String, SystemState>,
    /// Jobs started and not yet finished. Whatever is left here when the agent starts was cut
    /// short by a crash, a kill or a power loss, and is reported as an interrupted run.
    #[serde(default)]
    pub in_flight: BTreeMap<String, InFlight>,
}

/// A job that was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub job: JobKind,
    pub started_at: Timestamp,
}

/// The evidence summary of one system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemState {
    /// Last run of each job: when it started, how it ended.
    #[serde(default)]
    pub last_run: BTreeMap<JobKind, LastRun>,
    /// Last successful run of each job (start time).
    #[serde(default)]
    pub last_success: BTreeMap<JobKind, Timestamp>,
    /// Per repository: last time it received or passed something successfully.
    #[serde(default)]
    pub repositories: BTreeMap<String, RepoState>,
    /// Recent successful backups: (finished, capture time), oldest first.
    #[serde(default)]
    pub recent_backups: Vec<(Timestamp, Timestamp)>,
    /// Capture time of the newest snapshot in the first (local) repository.
    pub newest_local_capture: Option<Timestamp>,
    /// Capture time of the newest snapshot present in every off-site repository.
    pub newest_offsite_capture: Option<Timestamp>,
    /// Whether the system has any off-site repository at all.
    #[serde(default)]
    pub has_offsite: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub run_id: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoState {
    pub location: String,
    pub last_success: Option<Timestamp>,
    pub last_check_success: Option<Timestamp>,
    pub bytes_added_total: u64,
}

fn is_offsite(location: &str) -> bool {
    location == Location::SameCity.to_string() || location == Location::Remote.to_string()
}

impl SystemState {
    /// Off-site lag in seconds: how far the newest off-site capture trails the newest local
    /// one. `None` for a system without off-site repositories or before its first backup;
    /// the whole local history when nothing has reached off-site yet.
    pub fn offsite_lag(&self, now: Timestamp) -> Option<f64> {
        if !self.has_offsite {
            return None;
        }
        let local = self.newest_local_capture?;
        Some(match self.newest_offsite_capture {
            Some(off) => (local - off)
                .total(jiff::Unit::Second)
                .unwrap_or(0.0)
                .max(0.0),
            // Nothing off-site: the exposure runs from the oldest capture still local.
            None => {
                let oldest = self.recent_backups.first().map_or(local, |(_, c)| *c);
                (now - oldest)
                    .total(jiff::Unit::Second)
                    .unwrap_or(0.0)
                    .max(0.0)
            }
        })
    }
}

impl AgentState {
    /// Reads the state; a missing file is an empty state. A corrupt file is kept aside as
    /// `state.json.corrupt` and the agent starts afresh (its runs are in the spool and the
    /// journal; the schedule then treats every job as new).
    pub fn load(path: &Path) -> AgentState {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => state,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::error!(
                        "agent state {} is unreadable ({e}); kept as {} and starting afresh",
                        path.display(),
                        aside.display()
                    );
                    let _ = std::fs::rename(path, &aside);
                    AgentState::default()
                }
            },
            Err(_) => AgentState::default(),
        }
    }

    /// Replaces the file atomically and durably.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp: PathBuf = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Folds one finished run of `job` into the per-system summary.
    pub fn record(&mut self, job: JobKind, record: &RunRecord, has_offsite: bool) {
        let Some(system) = record.system.clone() else {
            return;
        };
        let s = self.systems.entry(system).or_default();
        s.has_offsite = has_offsite;
        let seconds = (record.finished_at - record.started_at)
            .total(jiff::Unit::Second)
            .unwrap_or(0.0);
        s.last_run.insert(
            job,
            LastRun {
                run_id: record.run_id.clone(),
                started_at: record.started_at,
                finished_at: record.finished_at,
                outcome: record.outcome,
                seconds,
                error_kind: record.error.as_ref().map(|e| e.kind.clone()),
                error: record.error.as_ref().map(|e| e.message.clone()),
            },
        );
        if record.outcome == Outcome::Success {
            s.last_success.insert(job, record.started_at);
        }
        for r in &record.repositories {
            let repo = s.repositories.entry(r.repository.clone()).or_default();
            repo.location = r.location.clone();
            repo.bytes_added_total += r.bytes_added;
            if r.outcome == Outcome::Success {
                match record.kind {
                    RunKind::Check => repo.last_check_success = Some(record.finished_at),
                    _ => repo.last_success = Some(r.available_at.unwrap_or(record.finished_at)),
                }
            }
        }
        match record.kind {
            RunKind::Backup if record.outcome != Outcome::Failed => {
                if let Some(capture) = record.capture_time {
                    s.recent_backups.push((record.finished_at, capture));
                    let excess = s.recent_backups.len().saturating_sub(RECENT_BACKUPS);
                    s.recent_backups.drain(..excess);
                    if s.newest_local_capture.is_none_or(|c| c < capture) {
                        s.newest_local_capture = Some(capture);
                    }
                }
            }
            RunKind::Copy => {
                // A copy catches up every snapshot the targets lack, so when it reached every
                // off-site repository, off-site holds each backup finished before it started.
                let offsite: Vec<_> = record
                    .repositories
                    .iter()
                    .filter(|r| is_offsite(&r.location))
                    .collect();
                let all_ok =
                    !offsite.is_empty() && offsite.iter().all(|r| r.outcome == Outcome::Success);
                if all_ok {
                    let carried = s
                        .recent_backups
                        .iter()
                        .filter(|(finished, _)| *finished <= record.started_at)
                        .map(|(_, capture)| *capture)
                        .max();
                    if let Some(c) = carried
                        && s.newest_offsite_capture.is_none_or(|o| o < c)
                    {
                        s.newest_offsite_capture = Some(c);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RepoResult;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn rec(kind: RunKind, start: &str, end: &str, outcome: Outcome) -> RunRecord {
        let mut r = RunRecord::start(kind, format!("{kind:?}-{start}"), "h".into(), ts(start));
        r.finished_at = ts(end);
        r.system = Some("s".into());
        r.outcome = outcome;
        r
    }

    fn repo(id: &str, location: &str, outcome: Outcome) -> RepoResult {
        RepoResult {
            repository: id.into(),
            location: location.into(),
            immutable: false,
            outcome,
            available_at: None,
            snapshots: vec![],
            bytes_added: 10,
            seconds: 1.0,
            error: None,
        }
    }

    #[test]
    fn offsite_lag_follows_capture_times_not_end_times() {
        let mut st = AgentState::default();
        // Backup 1 captured 01:00, finished 01:30; backup 2 captured 02:00, finished 02:40.
        let mut b1 = rec(
            RunKind::Backup,
            "2026-01-01T01:00:00Z",
            "2026-01-01T01:30:00Z",
            Outcome::Success,
        );
        b1.capture_time = Some(ts("2026-01-01T01:00:00Z"));
        st.record(JobKind::Backup, &b1, true);
        let s = &st.systems["s"];
        // Nothing off-site yet: lag counts from the oldest local capture.
        assert_eq!(s.offsite_lag(ts("2026-01-01T02:00:00Z")), Some(3600.0));
        // A copy that started 02:30 carries backup 1 only (backup 2 had not finished).
        let mut b2 = rec(
            RunKind::Backup,
            "2026-01-01T02:00:00Z",
            "2026-01-01T02:40:00Z",
            Outcome::Success,
        );
        b2.capture_time = Some(ts("2026-01-01T02:00:00Z"));
        let mut c = rec(
            RunKind::Copy,
            "2026-01-01T02:30:00Z",
            "2026-01-01T02:50:00Z",
            Outcome::Success,
        );
        c.repositories.push(repo("off", "remote", Outcome::Success));
        st.record(JobKind::Backup, &b2, true);
        st.record(JobKind::Copy, &c, true);
        let s = &st.systems["s"];
        assert_eq!(s.newest_offsite_capture, Some(ts("2026-01-01T01:00:00Z")));
        assert_eq!(s.offsite_lag(ts("2026-01-01T03:00:00Z")), Some(3600.0));
        // A failed copy changes nothing; a later successful one catches up.
        let mut f = rec(
            RunKind::Copy,
            "2026-01-01T03:00:00Z",
            "2026-01-01T03:01:00Z",
            Outcome::Failed,
        );
        f.repositories.push(repo("off", "remote", Outcome::Failed));
        st.record(JobKind::Copy, &f, true);
        assert_eq!(
            st.systems["s"].offsite_lag(ts("2026-01-01T03:05:00Z")),
            Some(3600.0)
        );
        let mut c2 = rec(
            RunKind::Copy,
            "2026-01-01T04:00:00Z",
            "2026-01-01T04:10:00Z",
            Outcome::Success,
        );
        c2.repositories
            .push(repo("off", "remote", Outcome::Success));
        st.record(JobKind::Copy, &c2, true);
        assert_eq!(
            st.systems["s"].offsite_lag(ts("2026-01-01T05:00:00Z")),
            Some(0.0)
        );
        assert_eq!(
            st.systems["s"].last_run[&JobKind::Copy].outcome,
            Outcome::Success
        );
        assert_eq!(st.systems["s"].repositories["off"].bytes_added_total, 30);
    }

    #[test]
    fn no_offsite_no_lag_and_state_round_trips() {
        let mut st = AgentState::default();
        let mut b = rec(
            RunKind::Backup,
            "2026-01-01T01:00:00Z",
            "2026-01-01T01:30:00Z",
            Outcome::Success,
        );
        b.capture_time = Some(ts("2026-01-01T01:00:00Z"));
        st.record(JobKind::Backup, &b, false);
        assert_eq!(
            st.systems["s"].offsite_lag(ts("2026-01-02T00:00:00Z")),
            None
        );
        st.rotation.insert("r".into(), 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        st.save(&path).unwrap();
        let back = AgentState::load(&path);
        assert_eq!(back.systems, st.systems);
        assert_eq!(back.rotation["r"], 3);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(AgentState::load(&path).systems.is_empty());
        assert!(path.with_extension("json.corrupt").exists());
    }
}
