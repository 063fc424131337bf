//! Drill tasks on the standby host: the agent side of a DR drill.
//!
//! The coordinator decides *what* (which snapshot, from which repository, into which directory,
//! which command); this module only does it and says what happened, as a [`DrillReport`]:
//!
//! - `probe`: for each target, the repository's password and storage credentials resolve here,
//!   the repository opens (which proves the password), the snapshot is there (by its id or the
//!   `original` id of a copy); and the free space under the restore root.
//! - `restore`: the snapshot from exactly the named repository into an empty `target_dir`,
//!   without verification (that is its own step), with a digest of the restored tree.
//! - `verify`: every file under `target_dir` against the snapshot's content hashes.
//! - `command`: a program without a shell, its output's tail in the report.
//! - `cleanup`: removes the drill's restored data.
//!
//! Every task ends by its `timeout_seconds`: a restore is aborted through its repository's
//! storage calls, a command's whole process group is killed. Failures are reports (`failed` with
//! a [`RunError`]), never errors of the agent.
//!
//! It must not: choose a snapshot or repository itself, write into a non-empty directory, remove
//! a relative path, a path with `..` or `/`, or put a secret (password, credential, a secret
//! environment value echoed by a command) into a report or a log line. Running each task id at
//! most once and delivering reports is [`worker`]'s job; [`ledger`] is what it remembers.

pub(crate) mod ledger;
pub(crate) mod worker;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::api::{
    CommandResult, DrillReport, DrillTask, ProbeResult, ProbeTargetResult, RestoreResult,
    RestoreTarget, TaskAction,
};
use crate::clock::Clock;
use crate::engine::progress::Bars;
use crate::engine::repo::StateDir;
use crate::engine::{Abort, Engine, EngineError, RestoreRequest, VerifyRequest};
use crate::policy::Policy;
use crate::run::{Outcome, RunError};

/// The most output of a command kept for its report (the tail).
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// After a task's time is up, how long an aborted restore gets to stop writing before the task
/// is reported anyway.
const WIND_DOWN: Duration = Duration::from_secs(30);

/// Runs one drill task at a time (the worker runs several executors' tasks at once).
pub(crate) struct Executor {
    /// The agent's host name, for reports.
    pub(crate) host: String,
    /// The engine's state: cache, repository locks, run journal (shared with backups).
    pub(crate) state: StateDir,
    /// Where the task's policy files are written to be loaded (`<agent dir>/drill/work`).
    pub(crate) work: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Why a task failed: the report's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TaskFailure {
    kind: &'static str,
    message: String,
}

impl TaskFailure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        TaskFailure {
            kind,
            message: message.into(),
        }
    }

    fn engine(e: &EngineError) -> Self {
        TaskFailure::new(e.kind(), e.to_string())
    }

    fn io(context: String, e: &std::io::Error) -> Self {
        TaskFailure::new("io", format!("{context}: {e}"))
    }

    fn to_run_error(&self) -> RunError {
        RunError {
            kind: self.kind.to_string(),
            message: self.message.clone(),
        }
    }
}

/// What an action produced: the report's result sections, and the failure if it failed.
#[derive(Default)]
struct Done {
    probe: Option<ProbeResult>,
    restore: Option<RestoreResult>,
    command: Option<CommandResult>,
    failure: Option<TaskFailure>,
}

impl Done {
    fn failed(failure: TaskFailure) -> Self {
        Done {
            failure: Some(failure),
            ..Done::default()
        }
    }
}

impl Executor {
    /// Runs `task` to its end (or its timeout) and reports it. Never fails: a failure is in
    /// the report.
    pub(crate) async fn run(&self, task: &DrillTask) -> DrillReport {
        let started_at = self.clock.now();
        let limit = Duration::from_secs(task.timeout_seconds.max(1));
        let deadline = tokio::time::Instant::now() + limit;
        let abort = Abort::default();
        let work = self.act(task, &abort, deadline);
        tokio::pin!(work);
        let done = tokio::select! {
            done = &mut work => done,
            _ = tokio::time::sleep_until(deadline) => {
                abort.abort();
                // Let an aborted restore stop writing (and a killed command hand over its
                // output) before the report says the task ended.
                let mut done = tokio::time::timeout(WIND_DOWN, &mut work)
                    .await
                    .unwrap_or_default();
                done.failure = Some(timed_out(limit));
                done
            }
        };
        let outcome = if done.failure.is_some() {
            Outcome::Failed
        } else {
            Outcome::Success
        };
        DrillReport {
            task_id: task.task_id.clone(),
            drill_id: task.drill_id,
            host: self.host.clone(),
            started_at,
            finished_at: self.clock.now(),
            outcome,
            error: done.failure.as_ref().map(TaskFailure::to_run_error),
            probe: done.probe,
            restore: done.restore,
            command: done.command,
        }
    }

    async fn act(&self, task: &DrillTask, abort: &Abort, deadline: tokio::time::Instant) -> Done {
        match &task.action {
            TaskAction::Probe {
                restore_root,
                need_bytes,
                targets,
            } => {
                self.probe(task, restore_root, *need_bytes, targets, abort)
                    .await
            }
            TaskAction::Restore(target) => self.restore(task, target, abort).await,
            TaskAction::Verify(target) => self.verify(task, target, abort).await,
            TaskAction::Command { argv, env } => {
                let limit = Duration::from_secs(task.timeout_seconds.max(1));
                run_command(argv, env, deadline, limit).await
            }
            TaskAction::Cleanup { paths } => cleanup(paths.clone()).await,
            TaskAction::Unknown => Done::failed(TaskFailure::new(
                "unsupported",
                format!(
                    "this agent (lifeboat {}) does not know the task's action; upgrade it",
                    env!("CARGO_PKG_VERSION")
                ),
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // probe

    async fn probe(
        &self,
        task: &DrillTask,
        restore_root: &str,
        need_bytes: u64,
        targets: &[RestoreTarget],
        abort: &Abort,
    ) -> Done {
        let mut results = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            results.push(self.probe_target(task, i, target, abort).await);
        }
        let root = PathBuf::from(restore_root);
        let free = if root.is_absolute() {
            tokio::task::spawn_blocking(move || {
                crate::engine::free_bytes(&root)
                    .map_err(|e| format!("cannot read the free space of {}: {e}", root.display()))
            })
            .await
            .map_err(|e| format!("free space: {e}"))
            .and_then(|r| r)
        } else {
            Err(format!(
                "the restore root {restore_root:?} is not an absolute path"
            ))
        };
        let mut problems: Vec<(&'static str, String)> = results
            .iter()
            .filter_map(|t| {
                let kind = if !t.credentials {
                    "credentials"
                } else if !t.reachable {
                    "unreachable"
                } else {
                    "snapshot-not-found"
                };
                t.problem
                    .as_ref()
                    .map(|p| (kind, format!("{} at {}: {p}", t.system, t.repository)))
            })
            .collect();
        let free_bytes = match free {
            Ok(free) => {
                if free < need_bytes {
                    problems.push((
                        "no-space",
                        format!(
                            "{} free under {restore_root}, {} needed",
                            bytesize::ByteSize::b(free),
                            bytesize::ByteSize::b(need_bytes)
                        ),
                    ));
                }
                free
            }
            Err(e) => {
                problems.push(("no-space", e));
                0
            }
        };
        let failure = problems.first().map(|(kind, _)| {
            let all: Vec<&str> = problems.iter().map(|(_, p)| p.as_str()).collect();
            TaskFailure::new(kind, format!("not ready: {}", all.join("; ")))
        });
        Done {
            probe: Some(ProbeResult {
                free_bytes,
                targets: results,
            }),
            failure,
            ..Done::default()
        }
    }

    async fn probe_target(
        &self,
        task: &DrillTask,
        index: usize,
        target: &RestoreTarget,
        abort: &Abort,
    ) -> ProbeTargetResult {
        let mut result = ProbeTargetResult {
            system: target.system.clone(),
            repository: target.repository.clone(),
            credentials: false,
            reachable: false,
            snapshot_present: false,
            problem: None,
        };
        let engine = match self
            .engine(&format!("{}.{index}", task.task_id), target)
            .await
        {
            Ok(e) => e,
            Err(f) => {
                result.problem = Some(f.message);
                return result;
            }
        };
        let found = engine
            .find_snapshot(
                target.system.as_str(),
                target.repository.as_str(),
                &target.snapshot,
                abort,
            )
            .await;
        match found {
            Ok(_) => {
                result.credentials = true;
                result.reachable = true;
                result.snapshot_present = true;
            }
            Err(e) => {
                (result.credentials, result.reachable) = match &e {
                    EngineError::Secret { .. } => (false, false),
                    EngineError::WrongPassword { .. } | EngineError::AccessDenied { .. } => {
                        (false, true)
                    }
                    EngineError::SnapshotNotFound { .. } => (true, true),
                    _ => (true, false),
                };
                let what = if !result.credentials {
                    "credentials"
                } else if !result.reachable {
                    "unreachable"
                } else {
                    "snapshot missing"
                };
                result.problem = Some(format!("{what}: {e}"));
            }
        }
        result
    }

    // -----------------------------------------------------------------------------------------
    // restore and verify

    async fn restore(&self, task: &DrillTask, target: &RestoreTarget, abort: &Abort) -> Done {
        let dir = match target_dir(&target.target_dir) {
            Ok(d) => d,
            Err(f) => return Done::failed(f),
        };
        let engine = match self.engine(&task.task_id, target).await {
            Ok(e) => e,
            Err(f) => return Done::failed(f),
        };
        let req = RestoreRequest {
            system: target.system.to_string(),
            repository: Some(target.repository.to_string()),
            snapshot: target.snapshot.clone(),
            path: None,
            target: dir.clone(),
            verify: false,
            dry_run: false,
            overwrite: false,
        };
        let report = match engine.restore_until(&req, abort).await {
            Ok(r) => r,
            Err(e) => return Done::failed(TaskFailure::engine(&e)),
        };
        let digest = tokio::task::spawn_blocking(move || tree_digest(&dir)).await;
        let digest = match digest {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                return Done::failed(TaskFailure::io(
                    format!("cannot read the restored tree {}", target.target_dir),
                    &e,
                ));
            }
            Err(e) => return Done::failed(TaskFailure::new("internal", e.to_string())),
        };
        let info = report.snapshot;
        Done {
            restore: Some(RestoreResult {
                snapshot: info.id.clone(),
                repository: target.repository.clone(),
                capture_time: info.backup_start.or(Some(info.time)),
                files: report.files_to_restore + report.files_unchanged,
                bytes: report.bytes_to_restore + report.bytes_matched,
                seconds: report.seconds,
                verified_files: None,
                tree_digest: Some(digest),
            }),
            ..Done::default()
        }
    }

    async fn verify(&self, task: &DrillTask, target: &RestoreTarget, abort: &Abort) -> Done {
        let dir = match target_dir(&target.target_dir) {
            Ok(d) => d,
            Err(f) => return Done::failed(f),
        };
        let engine = match self.engine(&task.task_id, target).await {
            Ok(e) => e,
            Err(f) => return Done::failed(f),
        };
        let req = VerifyRequest {
            system: target.system.to_string(),
            repository: Some(target.repository.to_string()),
            snapshot: target.snapshot.clone(),
            path: None,
            target: dir,
        };
        match engine.verify_restored(&req, abort).await {
            Ok(report) => Done {
                restore: Some(RestoreResult {
                    snapshot: report.snapshot.id.clone(),
                    repository: target.repository.clone(),
                    capture_time: report.snapshot.backup_start.or(Some(report.snapshot.time)),
                    files: report.verified_files,
                    bytes: report.bytes,
                    seconds: report.seconds,
                    verified_files: Some(report.verified_files),
                    tree_digest: None,
                }),
                ..Done::default()
            },
            Err(e) => Done::failed(TaskFailure::engine(&e)),
        }
    }

    /// An engine for the target's policy (loaded with the normal loader from the task's files).
    async fn engine(&self, key: &str, target: &RestoreTarget) -> Result<Engine, TaskFailure> {
        let dir = self.work.join(key);
        let files: Vec<(String, String)> = target
            .policy
            .iter()
            .map(|f| (f.name.as_str().to_string(), f.content.clone()))
            .collect();
        let policy = tokio::task::spawn_blocking(move || load_policy(&dir, &files))
            .await
            .map_err(|e| TaskFailure::new("internal", e.to_string()))??;
        Ok(Engine::new(
            Arc::new(policy),
            self.state.clone(),
            Bars::hidden(),
            self.clock.clone(),
        ))
    }
}

fn timed_out(limit: Duration) -> TaskFailure {
    TaskFailure::new(
        "timeout",
        format!("timed out after {}", humantime::format_duration(limit)),
    )
}

/// Writes the policy files into `dir` (a fresh directory), loads them and removes `dir`.
fn load_policy(dir: &Path, files: &[(String, String)]) -> Result<Policy, TaskFailure> {
    let _ = std::fs::remove_dir_all(dir);
    let written = (|| {
        std::fs::create_dir_all(dir)?;
        for (name, text) in files {
            // Names are checked plain file names (`PolicyFileName`) when the task is decoded.
            std::fs::write(dir.join(name), text)?;
        }
        Ok::<_, std::io::Error>(())
    })();
    let loaded = match written {
        Ok(()) => crate::policy::load_dir(dir).map_err(|report| {
            TaskFailure::new(
                "policy",
                format!("the task's policy does not load: {report}"),
            )
        }),
        Err(e) => Err(TaskFailure::io(
            format!("cannot write the task's policy into {}", dir.display()),
            &e,
        )),
    };
    let _ = std::fs::remove_dir_all(dir);
    loaded
}

/// A restore or verify target: an absolute path without `..`.
fn target_dir(path: &str) -> Result<PathBuf, TaskFailure> {
    let p = PathBuf::from(path);
    if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(TaskFailure::new(
            "refused",
            format!("target directory {path:?} is not an absolute path without `..`"),
        ));
    }
    Ok(p)
}

/// sha256 over the regular files under `dir` (symlinks are not followed), sorted by their
/// relative path's bytes: for each, `<path>\0<size>\0<hex sha256 of the content>\n`, paths
/// relative to `dir` with `/` separators. Files are streamed, never read whole.
pub fn tree_digest(dir: &Path) -> std::io::Result<String> {
    use std::os::unix::ffi::OsStrExt;
    let mut files: Vec<(Vec<u8>, PathBuf)> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(cur) = stack.pop() {
        for entry in std::fs::read_dir(&cur)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let path = entry.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let rel = path.strip_prefix(dir).map_err(std::io::Error::other)?;
                let mut name = Vec::new();
                for (i, c) in rel.components().enumerate() {
                    if i > 0 {
                        name.push(b'/');
                    }
                    name.extend_from_slice(c.as_os_str().as_bytes());
                }
                files.push((name, path));
            }
        }
    }
    files.sort();
    let mut tree = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    for (name, path) in files {
        let mut f = std::fs::File::open(&path)?;
        let mut h = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(&buf[..n]);
        }
        tree.update(&name);
        tree.update(b"\0");
        tree.update(size.to_string().as_bytes());
        tree.update(b"\0");
        tree.update(hex::encode(h.finalize()).as_bytes());
        tree.update(b"\n");
    }
    Ok(hex::encode(tree.finalize()))
}

// ---------------------------------------------------------------------------------------------
// command

/// Runs `argv` without a shell, in its own process group, with `env` added to the agent's
/// environment; stdout and stderr together, the last [`OUTPUT_TAIL`] bytes kept. At `deadline`
/// the whole group is killed.
async fn run_command(
    argv: &[String],
    env: &BTreeMap<String, String>,
    deadline: tokio::time::Instant,
    limit: Duration,
) -> Done {
    let Some(program) = argv.first() else {
        return Done::failed(TaskFailure::new("refused", "the command is empty"));
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return Done::failed(TaskFailure::io("cannot make a pipe".into(), &e)),
    };
    let stderr = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return Done::failed(TaskFailure::io("cannot make a pipe".into(), &e)),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .kill_on_drop(true)
        .process_group(0);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Done::failed(TaskFailure::new(
                "command-failed",
                format!("`{program}` could not start: {e}"),
            ));
        }
    };
    // The pipe's write ends now live only in the child (the Command holds copies until
    // dropped), so the reader sees end-of-file when the child and its children are done.
    drop(cmd);
    let tail = Arc::new(Mutex::new(Tail::default()));
    let collector = {
        let tail = tail.clone();
        tokio::task::spawn_blocking(move || collect(reader, &tail))
    };
    let status = tokio::time::timeout_at(deadline, child.wait()).await;
    if status.is_err() {
        kill_group(&child);
        let _ = child.kill().await;
    }
    // A background child that keeps the pipe open must not hold the report back.
    let _ = tokio::time::timeout(Duration::from_secs(2), collector).await;
    let output = scrub(&tail.lock().unwrap_or_else(|p| p.into_inner()).text(), env);
    let exit_code = match &status {
        Ok(Ok(s)) => s.code(),
        _ => None,
    };
    let failure = match status {
        Err(_) => Some(timed_out(limit)),
        Ok(Err(e)) => Some(TaskFailure::new(
            "command-failed",
            format!("`{program}` could not be waited for: {e}"),
        )),
        Ok(Ok(s)) if s.success() => None,
        Ok(Ok(s)) => Some(TaskFailure::new(
            "command-failed",
            format!("`{program}` failed ({s})"),
        )),
    };
    tracing::info!(
        program = %program,
        seconds = started.elapsed().as_secs_f64(),
        success = failure.is_none(),
        "drill command finished"
    );
    Done {
        command: Some(CommandResult {
            exit_code,
            output_tail: output,
        }),
        failure,
        ..Done::default()
    }
}

/// The last [`OUTPUT_TAIL`] bytes of a stream.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > 2 * OUTPUT_TAIL {
            let cut = self.bytes.len() - OUTPUT_TAIL;
            self.bytes.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(OUTPUT_TAIL);
        let text = String::from_utf8_lossy(&self.bytes[start..]).into_owned();
        // Lossy decoding may grow a cut character; keep within the limit on a char boundary.
        let mut cut = text.len().saturating_sub(OUTPUT_TAIL);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text[cut..].to_string()
    }
}

fn collect(mut reader: std::io::PipeReader, tail: &Mutex<Tail>) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&buf[..n]),
        }
    }
}

/// Environment names whose values are treated as secrets in command output.
const SECRET_NAMES: &[&str] = &["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"];

/// Replaces values of secret-looking environment variables (the task's and the agent's) in
/// `text` by `<redacted>`.
fn scrub(text: &str, env: &BTreeMap<String, String>) -> String {
    let secret = |name: &str| {
        let upper = name.to_ascii_uppercase();
        SECRET_NAMES.iter().any(|s| upper.contains(s))
    };
    let mut values: Vec<String> = env
        .iter()
        .filter(|(k, _)| secret(k))
        .map(|(_, v)| v.clone())
        .chain(std::env::vars().filter(|(k, _)| secret(k)).map(|(_, v)| v))
        .filter(|v| v.len() >= 4)
        .collect();
    // Longest first, so a secret containing another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in values {
        out = out.replace(&v, "<redacted>");
    }
    out
}

/// Kills the command's whole process group (children included).
fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        // `kill -KILL -PGID`: std has no killpg and unsafe code is forbidden.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// cleanup

/// Why a path may not be removed, if it may not.
fn refuse_removal(path: &str) -> Option<&'static str> {
    let p = Path::new(path);
    if !p.is_absolute() {
        Some("it is not an absolute path")
    } else if p.components().any(|c| c == Component::ParentDir) {
        Some("it contains `..`")
    } else if p.parent().is_none() {
        Some("it is the root directory")
    } else {
        None
    }
}

/// Removes every path (a directory with its contents); missing paths are fine. Nothing is
/// removed when any path is refused.
async fn cleanup(paths: Vec<String>) -> Done {
    let refused: Vec<String> = paths
        .iter()
        .filter_map(|p| refuse_removal(p).map(|why| format!("{p:?}: {why}")))
        .collect();
    if !refused.is_empty() {
        return Done::failed(TaskFailure::new(
            "refused",
            format!("refusing to remove {}", refused.join("; ")),
        ));
    }
    let removed = tokio::task::spawn_blocking(move || {
        for p in &paths {
            let path = Path::new(p);
            let result = match std::fs::symlink_metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
                Ok(_) => std::fs::remove_file(path),
            };
            if let Err(e) = result
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(TaskFailure::io(format!("cannot remove {p}"), &e));
            }
        }
        Ok(())
    })
    .await;
    match removed {
        Ok(Ok(())) => Done::default(),
        Ok(Err(f)) => Done::failed(f),
        Err(e) => Done::failed(TaskFailure::new("internal", e.to_string())),
    }
}

/// A report for a task whose run was cut short by the agent's own end: it was `started` in
/// the ledger, and the agent found it so at its next start.
pub(crate) fn interrupted(
    task_id: &str,
    drill_id: uuid::Uuid,
    host: &str,
    started_at: Timestamp,
    now: Timestamp,
) -> DrillReport {
    DrillReport {
        task_id: task_id.to_string(),
        drill_id,
        host: host.to_string(),
        started_at,
        finished_at: now,
        outcome: Outcome::Failed,
        error: Some(RunError {
            kind: "interrupted".into(),
            message: format!("the agent restarted during the task (started {started_at})"),
        }),
        probe: None,
        restore: None,
        command: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn removal_is_refused_for_relative_dotdot_and_root_paths() {
        for (path, refused) in [
            ("/", true),
            ("relative/dir", true),
            ("", true),
            ("/srv/drills/../etc", true),
            ("/srv/drills/d1", false),
            ("/srv/drills/./d1", false),
        ] {
            assert_eq!(refuse_removal(path).is_some(), refused, "{path}");
        }
    }

    #[tokio::test]
    async fn cleanup_removes_directories_and_tolerates_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a/b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("f"), b"x").unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"y").unwrap();
        let missing = dir.path().join("missing");
        let paths = [dir.path().join("a"), file.clone(), missing]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let done = cleanup(paths).await;
        assert!(done.failure.is_none(), "{:?}", done.failure);
        assert!(!dir.path().join("a").exists());
        assert!(!file.exists());
        // One refused path: nothing is removed.
        std::fs::create_dir_all(&a).unwrap();
        let done = cleanup(vec![dir.path().join("a").display().to_string(), "/".into()]).await;
        assert_eq!(done.failure.unwrap().kind, "refused");
        assert!(a.exists());
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_on_a_char_boundary() {
        let mut t = Tail::default();
        for _ in 0..10_000 {
            t.push("财务 ".as_bytes());
        }
        let text = t.text();
        assert!(text.len() <= OUTPUT_TAIL);
        assert!(text.len() > OUTPUT_TAIL - 8);
        assert!(text.ends_with("财务 "));
    }

    #[test]
    fn secret_looking_environment_values_are_scrubbed() {
        let env = BTreeMap::from([
            ("DB_PASSWORD".to_string(), "hunter2-secret".to_string()),
            ("SERVICE".to_string(), "finance".to_string()),
        ]);
        let out = scrub("connecting to finance with hunter2-secret", &env);
        assert_eq!(out, "connecting to finance with <redacted>");
    }

    #[tokio::test]
    async fn a_command_reports_its_exit_code_and_output_and_is_killed_at_its_deadline() {
        let env = BTreeMap::from([("DRILL_WORD".to_string(), "hello".to_string())]);
        let limit = Duration::from_secs(20);
        let argv: Vec<String> = ["sh", "-c", "echo out $DRILL_WORD; echo err >&2; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let done = run_command(&argv, &env, tokio::time::Instant::now() + limit, limit).await;
        let cmd = done.command.unwrap();
        assert_eq!(cmd.exit_code, Some(3));
        assert!(cmd.output_tail.contains("out hello"), "{}", cmd.output_tail);
        assert!(cmd.output_tail.contains("err"), "{}", cmd.output_tail);
        assert_eq!(done.failure.unwrap().kind, "command-failed");

        // A command with a background child is killed, group and all, at the deadline.
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & sleep 30"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let limit = Duration::from_millis(500);
        let started = Instant::now();
        let done = run_command(&argv, &env, tokio::time::Instant::now() + limit, limit).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let failure = done.failure.unwrap();
        assert_eq!(failure.kind, "timeout");
        assert!(failure.message.starts_with("timed out after"), "{failure}");

        let done = run_command(
            &["no-such-program-lifeboat".to_string()],
            &env,
            tokio::time::Instant::now() + limit,
            limit,
        )
        .await;
        assert_eq!(done.failure.unwrap().kind, "command-failed");
    }

    #[test]
    fn the_tree_digest_covers_paths_sizes_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
        std::fs::write(dir.path().join("x/y/a"), b"alpha").unwrap();
        std::fs::write(dir.path().join("b"), b"").unwrap();
        let d1 = tree_digest(dir.path()).unwrap();
        // Computed by hand from the documented form.
        let line =
            |p: &str, c: &[u8]| format!("{p}\0{}\0{}\n", c.len(), hex::encode(Sha256::digest(c)));
        let expected = hex::encode(Sha256::digest(
            format!("{}{}", line("b", b""), line("x/y/a", b"alpha")).as_bytes(),
        ));
        assert_eq!(d1, expected);
        std::fs::write(dir.path().join("x/y/a"), b"alphA").unwrap();
        assert_ne!(tree_digest(dir.path()).unwrap(), d1);
    }
}
