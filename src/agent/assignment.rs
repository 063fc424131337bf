//! The agent's assignment: the policy it runs, from a local policy directory (stand-alone) or
//! from the coordinator, cached on disk so that the agent keeps protecting its systems when the
//! coordinator is unreachable or sends something broken.
//!
//! A new assignment replaces the current one only when it loads and validates cleanly; the
//! cache on disk is swapped only then, so `<agent-dir>/assignment/` always holds the last good
//! policy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;

use crate::policy::{self, Policy, PolicyReport};

/// A policy the agent can run, and where it came from.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub policy: Arc<Policy>,
    pub loaded_at: Timestamp,
    /// `local directory /etc/lifeboat/policies` or `coordinator`.
    pub origin: String,
    /// The coordinator's digest of the files (what heartbeats and `If-None-Match` carry);
    /// none for a local policy.
    pub wire_digest: Option<String>,
}

/// Why a new assignment was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AssignmentError {
    #[error("the assignment is invalid ({} problem(s)):\n{}", .0.problems.len(), render(.0))]
    Invalid(PolicyReport),
    #[error("cannot write the assignment cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("an assignment file name {0:?} is not a plain file name")]
    BadName(String),
}

fn render(report: &PolicyReport) -> String {
    report
        .problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The coordinator's digest of the cached files, kept beside them.
const DIGEST_FILE: &str = ".digest";

/// `<agent-dir>/assignment`: the last good assignment received from the coordinator.
pub fn cache_dir(agent_dir: &Path) -> PathBuf {
    agent_dir.join("assignment")
}

/// Loads a local policy directory.
pub fn load_local(dir: &Path, now: Timestamp) -> Result<Assignment, AssignmentError> {
    let policy = policy::load_dir(dir).map_err(AssignmentError::Invalid)?;
    Ok(Assignment {
        policy: Arc::new(policy),
        loaded_at: now,
        origin: format!("local directory {}", dir.display()),
        wire_digest: None,
    })
}

/// Loads the cached assignment, if there is one.
pub fn load_cache(agent_dir: &Path, now: Timestamp) -> Option<Result<Assignment, AssignmentError>> {
    let dir = cache_dir(agent_dir);
    if !dir.is_dir() {
        return None;
    }
    let wire_digest = std::fs::read_to_string(dir.join(DIGEST_FILE))
        .ok()
        .map(|d| d.trim().to_string());
    Some(
        policy::load_dir(&dir)
            .map_err(AssignmentError::Invalid)
            .map(|p| Assignment {
                policy: Arc::new(p),
                loaded_at: now,
                origin: "coordinator (cached)".into(),
                wire_digest,
            }),
    )
}

/// Validates files received from the coordinator and, when they load cleanly, makes them the
/// cached assignment. On any problem the previous cache is left exactly as it was.
pub fn accept(
    agent_dir: &Path,
    files: &[(String, String)],
    wire_digest: Option<&str>,
    now: Timestamp,
) -> Result<Assignment, AssignmentError> {
    let incoming = agent_dir.join("assignment.incoming");
    let cache = |source| AssignmentError::Cache {
        path: incoming.clone(),
        source,
    };
    if incoming.exists() {
        std::fs::remove_dir_all(&incoming).map_err(cache)?;
    }
    std::fs::create_dir_all(&incoming).map_err(cache)?;
    for (name, content) in files {
        let plain = Path::new(name)
            .file_name()
            .is_some_and(|f| f == name.as_str())
            && name.ends_with(".toml")
            && !name.starts_with('.');
        if !plain {
            return Err(AssignmentError::BadName(name.clone()));
        }
        let mut f = std::fs::File::create(incoming.join(name)).map_err(cache)?;
        f.write_all(content.as_bytes()).map_err(cache)?;
        f.sync_all().map_err(cache)?;
    }
    let policy = policy::load_dir(&incoming).map_err(AssignmentError::Invalid)?;
    if let Some(d) = wire_digest {
        // A hidden file: the policy loader skips it.
        std::fs::write(incoming.join(DIGEST_FILE), d).map_err(cache)?;
    }
    // Swap: current → old, incoming → current, drop old. A crash in between leaves either the
    // old or the new complete directory under one of the two names; `load_cache` reads
    // `assignment/`, and `recover` puts `assignment.old` back if that is all there is.
    let current = cache_dir(agent_dir);
    let old = agent_dir.join("assignment.old");
    let swap = |source| AssignmentError::Cache {
        path: current.clone(),
        source,
    };
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(swap)?;
    }
    if current.exists() {
        std::fs::rename(&current, &old).map_err(swap)?;
    }
    std::fs::rename(&incoming, &current).map_err(swap)?;
    if let Ok(d) = std::fs::File::open(agent_dir) {
        let _ = d.sync_all();
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(Assignment {
        policy: Arc::new(policy),
        loaded_at: now,
        origin: "coordinator".into(),
        wire_digest: wire_digest.map(str::to_string),
    })
}

/// Puts back `assignment.old` when a crash happened between the two renames of [`accept`].
pub fn recover(agent_dir: &Path) {
    let current = cache_dir(agent_dir);
    let old = agent_dir.join("assignment.old");
    if !current.exists() && old.exists() {
        let _ = std::fs::rename(&old, &current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[tiers.T1]
name = "t"
rpo = "24h"
rto-it = "8h"
rto-business = "24h"
copies = 2
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "30d"

[sites.a]
name = "A"
role = "branch"
region = "r"
timezone = "Asia/Shanghai"

[repositories.local]
url = "/srv/repo"
location = "local"
password = { env = "P" }

[repositories.off]
url = "/srv/off"
location = "remote"
password = { env = "P" }

[systems.s]
name = "S"
department = "finance"
site = "a"
host = "h"
tier = "T1"
paths = ["/srv/data"]
repositories = ["local", "off"]
retention = { keep-daily = 7 }
schedules = [
  { job = "backup", cron = "0 1 * * *" },
  { job = "copy", cron = "0 2 * * *" },
  { job = "check", cron = "0 3 * * SUN" },
  { job = "read-data", cron = "0 4 * * *" },
  { job = "forget", cron = "0 5 * * *" },
]
"#;

    #[test]
    fn a_broken_assignment_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let a = accept(
            dir.path(),
            &[("policy.toml".into(), GOOD.into())],
            Some("d1"),
            now,
        )
        .unwrap();
        assert!(a.policy.system("s").is_some());
        let bad = GOOD.replace("rpo = \"24h\"", "rpo = \"soon\"");
        match accept(dir.path(), &[("policy.toml".into(), bad)], Some("d2"), now) {
            Err(AssignmentError::Invalid(r)) => {
                assert!(
                    r.problems.iter().any(|p| p.key_path == "tiers.T1.rpo"),
                    "{r:?}"
                )
            }
            other => panic!("accepted a broken assignment: {other:?}"),
        }
        let cached = load_cache(dir.path(), now).unwrap().unwrap();
        assert_eq!(cached.policy.digest, a.policy.digest);
        assert_eq!(cached.wire_digest.as_deref(), Some("d1"));
        assert!(matches!(
            accept(dir.path(), &[("../x.toml".into(), GOOD.into())], None, now),
            Err(AssignmentError::BadName(_))
        ));
        assert_eq!(
            load_cache(dir.path(), now).unwrap().unwrap().policy.digest,
            a.policy.digest
        );
    }
}
