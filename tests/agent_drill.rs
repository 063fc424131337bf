//! Drill tasks on a standby host, end to end: the real agent binary with no assignment of its
//! own, a stand-in coordinator offering drill tasks in heartbeat answers, and a real repository
//! made by `lifeboat backup` at a "branch". The agent probes, restores, verifies, runs commands
//! and cleans up, and reports each task once: a task offered again is not run again (its report
//! is sent again), a task cut short by `kill -9` (a command, a restore) is reported
//! `interrupted` after the restart, a restore past its timeout is aborted within moments, a
//! wrong password, a missing snapshot, too little space, a tampered restore and a corrupted
//! pack fail with their reasons, and reports wait out a coordinator that refuses them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::standin::{STANDIN_TOKEN, StandIn};
use common::{assert_same_tree, lifeboat, make_dataset, wait_until};
use lifeboat::api::{AssignmentFile, DrillReport, DrillTask, RestoreTarget, TaskAction};
use lifeboat::run::Outcome;
use serde_json::Value;
use sha2::{Digest, Sha256};

const PASSWORD: &str = "drill-e2e-password-83c1";
const WRONG_PASSWORD: &str = "not-the-drill-password-19ab";
const SYSTEM: &str = "branch-finance";
const REPO: &str = "dc-offsite";

/// A branch whose system was backed up to an off-site repository, and a standby host.
struct World {
    dir: tempfile::TempDir,
    /// The branch's policy, as the coordinator would hand it to the standby agent.
    policy: String,
    /// The same with the password read from a variable holding a wrong password.
    wrong_policy: String,
    /// The snapshot taken at the branch: id and capture time.
    snapshot: String,
    /// The id the snapshot has in the branch's local repository (the copy's `original`).
    original: String,
    capture: jiff::Timestamp,
    standin: StandIn,
}

fn policy_text(root: &Path, password_var: &str) -> String {
    format!(
        r#"
{tier_and_site}
[repositories.branch-local]
url = "{local}"
location = "local"
password = {{ env = "{password_var}" }}

[repositories.{REPO}]
url = "{offsite}"
location = "remote"
password = {{ env = "{password_var}" }}

[systems.{SYSTEM}]
name = "Finance share"
department = "finance"
site = "branch"
host = "branch-fs01"
tier = "TT"
paths = ["{src}"]
repositories = ["branch-local", "{REPO}"]
schedules = [
    {{ job = "backup", cron = "0 0 1 * * *" }},
    {{ job = "copy", cron = "0 0 2 * * *" }},
    {{ job = "check", cron = "0 0 3 * * *" }},
    {{ job = "read-data", cron = "0 0 4 * * *" }},
    {{ job = "forget", cron = "0 0 5 * * *" }},
]
retention = {{ keep-last = 3 }}
"#,
        tier_and_site = common::test_tier_and_site("24h", 2, 1, "7d", "30d"),
        local = root.join("repos/local").display(),
        offsite = root.join("repos/offsite").display(),
        src = root.join("src").display(),
    )
}

impl World {
    fn new() -> World {
        World::with_big_file(0)
    }

    /// A world whose source also holds `big` bytes of incompressible data (for restores that
    /// take long enough to be cut short).
    fn with_big_file(big: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_dataset(&root.join("src"));
        if big > 0 {
            let mut rng = common::XorShift::new(7);
            for i in 0..big.div_ceil(32 << 20) {
                let n = (big - i * (32 << 20)).min(32 << 20);
                std::fs::write(root.join(format!("src/big-{i}.bin")), rng.bytes(n)).unwrap();
            }
        }
        let policy = policy_text(root, "TEST_REPO_PASSWORD");
        let wrong_policy = policy_text(root, "TEST_WRONG_PASSWORD");
        std::fs::create_dir_all(root.join("branch/policies")).unwrap();
        std::fs::write(root.join("branch/policies/policy.toml"), &policy).unwrap();
        let branch = |args: &[&str]| {
            let out = lifeboat()
                .args(args)
                .env("LIFEBOAT_POLICY", root.join("branch/policies"))
                .env("LIFEBOAT_STATE_DIR", root.join("branch/state"))
                .env("TEST_REPO_PASSWORD", PASSWORD)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "lifeboat {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        branch(&["init", "--system", SYSTEM]);
        branch(&["backup", "--system", SYSTEM]);
        let list: Value =
            serde_json::from_str(&branch(&["snapshots", "--system", SYSTEM, "--json"])).unwrap();
        // The off-site copy of the backup: what a site-loss drill restores.
        let snap = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["repository"] == REPO)
            .unwrap_or_else(|| panic!("no snapshot at {REPO}: {list}"));
        let snapshot = snap["id"].as_str().unwrap().to_string();
        let original = snap["original"].as_str().unwrap().to_string();
        let capture = snap["backup_start"].as_str().unwrap().parse().unwrap();

        let standin = StandIn::start();
        let world = World {
            dir,
            policy,
            wrong_policy,
            snapshot,
            original,
            capture,
            standin,
        };
        std::fs::create_dir_all(world.standby()).unwrap();
        std::fs::write(
            world.standby().join("agent.toml"),
            format!(
                r#"host = "standby-01"
site = "standby"
state-dir = "{state}"
jitter = "0s"
reload-every = "1s"
shutdown-grace = "5s"

[coordinator]
url = "{url}"
token = {{ env = "TEST_AGENT_TOKEN" }}
heartbeat-every = "1s"
request-timeout = "5s"
"#,
                state = world.standby().join("state").display(),
                url = world.standin.url(),
            ),
        )
        .unwrap();
        world
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn src(&self) -> PathBuf {
        self.root().join("src")
    }

    fn standby(&self) -> PathBuf {
        self.root().join("standby")
    }

    fn restore_root(&self) -> PathBuf {
        self.standby().join("restore")
    }

    /// Starts the standby agent; its log goes to `standby/agent-<n>.log`.
    fn spawn(&self, n: u32) -> Agent {
        let log = std::fs::File::create(self.log_path(n)).unwrap();
        let child = lifeboat()
            .args([
                "agent",
                "--config",
                self.standby().join("agent.toml").to_str().unwrap(),
                "--log",
                "info,lifeboat=debug",
            ])
            .env("TEST_AGENT_TOKEN", STANDIN_TOKEN)
            .env("TEST_REPO_PASSWORD", PASSWORD)
            .env("TEST_WRONG_PASSWORD", WRONG_PASSWORD)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent(child)
    }

    fn log_path(&self, n: u32) -> PathBuf {
        self.standby().join(format!("agent-{n}.log"))
    }

    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    fn target(&self, policy: &str, target_dir: &Path) -> RestoreTarget {
        RestoreTarget {
            system: SYSTEM.parse().unwrap(),
            repository: REPO.parse().unwrap(),
            snapshot: self.snapshot.clone(),
            target_dir: target_dir.display().to_string(),
            policy: vec![AssignmentFile {
                name: "policy.toml".parse().unwrap(),
                content: policy.to_string(),
            }],
        }
    }

    /// Offers the task and waits for its first report.
    fn run(&self, task: &DrillTask, limit: Duration) -> DrillReport {
        self.standin.offer_drill_task(task.clone());
        self.report(&task.task_id, limit)
    }

    fn report(&self, task_id: &str, limit: Duration) -> DrillReport {
        let arrived = self
            .standin
            .wait_for(limit, |s| s.drill_report(task_id).is_some());
        assert!(
            arrived,
            "no report for drill task {task_id} within {limit:?}; agent log:\n{}",
            self.log(1) + &self.log(2)
        );
        self.standin.drill_report(task_id).unwrap()
    }

    /// How many reports of `task_id` arrived.
    fn reports_of(&self, task_id: &str) -> usize {
        self.standin
            .drill_reports()
            .iter()
            .filter(|r| r.task_id == task_id)
            .count()
    }

    fn assert_no_secrets(&self, text: &str, what: &str) {
        for s in [PASSWORD, WRONG_PASSWORD, STANDIN_TOKEN] {
            assert!(!text.contains(s), "a secret leaked into {what}");
        }
    }
}

/// A running agent process, killed if the test ends without stopping it.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn task(drill: uuid::Uuid, id: &str, timeout_seconds: u64, action: TaskAction) -> DrillTask {
    DrillTask {
        task_id: format!("{drill}.{id}"),
        drill_id: drill,
        step: id.split('.').next().unwrap().to_string(),
        system: Some(SYSTEM.parse().unwrap()),
        timeout_seconds,
        action,
    }
}

fn command(argv: &[&str], env: &[(&str, &str)]) -> TaskAction {
    TaskAction::Command {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The restored tree's digest as `RestoreResult::tree_digest` documents it: sha256 over the
/// regular files sorted by relative path bytes, one `<path>\0<size>\0<sha256 hex>\n` each.
fn expected_tree_digest(dir: &Path) -> String {
    fn walk(root: &Path, cur: &Path, out: &mut Vec<(Vec<u8>, PathBuf)>) {
        for entry in std::fs::read_dir(cur).unwrap() {
            let entry = entry.unwrap();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &entry.path(), out);
            } else if ft.is_file() {
                let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
                let parts: Vec<&[u8]> = rel.iter().map(|c| c.as_bytes()).collect();
                out.push((parts.join(&b'/'), entry.path()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    let mut tree = Sha256::new();
    for (name, path) in files {
        let mut content = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        tree.update(&name);
        tree.update(format!(
            "\0{}\0{}\n",
            content.len(),
            hex::encode(Sha256::digest(&content))
        ));
    }
    hex::encode(tree.finalize())
}

/// Regular files under `dir` and their total size.
fn files_and_bytes(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for (_, kind) in common::tree_digest(dir) {
        if let Some(rest) = kind.strip_prefix("file ") {
            files += 1;
            bytes += rest.split(' ').next().unwrap().parse::<u64>().unwrap();
        }
    }
    (files, bytes)
}

/// Where the source tree lands under a restore target (snapshots hold absolute paths).
fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

fn error_of(r: &DrillReport) -> (String, String) {
    let e = r.error.as_ref().expect("a failed report carries its error");
    (e.kind.clone(), e.message.clone())
}

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_standby_agent_without_an_assignment_probes_restores_verifies_runs_commands_and_cleans_up() {
    let w = World::new();
    let mut agent = w.spawn(1);
    // No assignment for the standby host: the agent runs and heartbeats anyway.
    let beating = w
        .standin
        .wait_for(Duration::from_secs(30), |s| s.heartbeats().len() >= 2);
    assert!(beating, "no heartbeats; log:\n{}", w.log(1));
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent exited:\n{}",
        w.log(1)
    );
    let beat = w.standin.heartbeats().pop().unwrap();
    assert_eq!(beat.host, "standby-01");
    assert!(beat.systems.is_empty() && beat.assignment_digest.is_none());

    let drill = uuid::Uuid::new_v4();
    let drill_dir = w.restore_root().join(drill.to_string());
    let target_dir = drill_dir.join(SYSTEM);

    // Readiness probe; its report waits while the coordinator refuses reports, then arrives.
    w.standin.fail_drill_reports(Some(503));
    let probe = task(
        drill,
        "readiness.drill",
        60,
        TaskAction::Probe {
            restore_root: w.restore_root().display().to_string(),
            need_bytes: 10 << 20,
            targets: vec![w.target(&w.policy, &target_dir), {
                // The copy is found by the id it had at the branch, too.
                let mut t = w.target(&w.policy, &target_dir);
                t.snapshot = w.original.clone();
                t
            }],
        },
    );
    w.standin.offer_drill_task(probe.clone());
    wait_until(Duration::from_secs(60), "the probe to finish", || {
        w.log(1).contains("drill reports not delivered yet")
    });
    assert_eq!(w.reports_of(&probe.task_id), 0);
    w.standin.fail_drill_reports(None);
    let r = w.report(&probe.task_id, LIMIT);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_eq!(r.host, "standby-01");
    assert_eq!(r.drill_id, drill);
    let p = r.probe.unwrap();
    assert!(p.free_bytes > 10 << 20, "{p:?}");
    assert_eq!(p.targets.len(), 2);
    for t in &p.targets {
        assert!(t.credentials && t.reachable && t.snapshot_present, "{t:?}");
        assert_eq!(t.problem, None);
    }

    // Restore: the tree equals the source, the figures and the digest are right.
    let restore = task(
        drill,
        "1.restore",
        300,
        TaskAction::Restore(w.target(&w.policy, &target_dir)),
    );
    let r = w.run(&restore, LIMIT);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert_same_tree(&w.src(), &restored(&target_dir, &w.src()));
    let res = r.restore.unwrap();
    assert_eq!(res.snapshot, w.snapshot);
    assert_eq!(res.repository.as_str(), REPO);
    assert_eq!(res.capture_time, Some(w.capture));
    let (files, bytes) = files_and_bytes(&w.src());
    assert_eq!((res.files, res.bytes), (files, bytes), "{res:?}");
    assert!(res.seconds > 0.0);
    assert_eq!(
        res.tree_digest.as_deref(),
        Some(expected_tree_digest(&target_dir).as_str())
    );
    assert!(r.finished_at >= r.started_at);

    // A second restore into the now non-empty directory is refused.
    let again = task(
        drill,
        "1b.restore",
        300,
        TaskAction::Restore(w.target(&w.policy, &target_dir)),
    );
    let r = w.run(&again, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(error_of(&r).0, "target-not-empty");

    // Verify against the snapshot's content hashes.
    let verify = task(
        drill,
        "2.verify",
        300,
        TaskAction::Verify(w.target(&w.policy, &target_dir)),
    );
    let r = w.run(&verify, LIMIT);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let v = r.restore.unwrap();
    assert_eq!(v.verified_files, Some(files));
    assert_eq!(v.snapshot, w.snapshot);

    // A command: no shell, the task's environment, exit 0, its output; listed in heartbeats
    // while it runs.
    let side = w.root().join("side-effects");
    let cmd = task(
        drill,
        "3.command.drill",
        60,
        command(
            &[
                "sh",
                "-c",
                "echo \"$DRILL_GREETING\"; echo run >> \"$SIDE\"; sleep 2",
            ],
            &[
                ("DRILL_GREETING", "service is up"),
                ("SIDE", side.to_str().unwrap()),
            ],
        ),
    );
    w.standin.offer_drill_task(cmd.clone());
    let listed = w.standin.wait_for(Duration::from_secs(30), |s| {
        s.heartbeats()
            .iter()
            .any(|h| h.drill_tasks_running.contains(&cmd.task_id))
    });
    assert!(listed, "the running task was not in a heartbeat");
    let r = w.report(&cmd.task_id, LIMIT);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    let c = r.command.unwrap();
    assert_eq!(c.exit_code, Some(0));
    assert!(c.output_tail.contains("service is up"), "{}", c.output_tail);

    // Offered again after it finished: not run again, its report is sent again.
    w.standin.offer_drill_task(cmd.clone());
    let resent = w.standin.wait_for(Duration::from_secs(30), |s| {
        s.drill_reports()
            .iter()
            .filter(|r| r.task_id == cmd.task_id)
            .count()
            >= 2
    });
    assert!(resent, "the report was not sent again");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&side).unwrap(),
        "run\n",
        "the command ran twice"
    );
    let reports: Vec<DrillReport> = w
        .standin
        .drill_reports()
        .into_iter()
        .filter(|r| r.task_id == cmd.task_id)
        .collect();
    assert_eq!(reports[0], reports[1], "the re-sent report differs");

    // A failing command and one that outlives its timeout.
    let fail = task(
        drill,
        "4.command.drill",
        60,
        command(&["sh", "-c", "echo nope >&2; exit 7"], &[]),
    );
    let r = w.run(&fail, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.command.as_ref().unwrap().exit_code, Some(7));
    assert!(r.command.as_ref().unwrap().output_tail.contains("nope"));
    assert_eq!(error_of(&r).0, "command-failed");
    let slow = task(drill, "5.command.drill", 2, command(&["sleep", "60"], &[]));
    let started = std::time::Instant::now();
    let r = w.run(&slow, LIMIT);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(r.outcome, Outcome::Failed);
    let (kind, message) = error_of(&r);
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("timeout", "timed out after 2s")
    );

    // Clean-up: refuses dangerous paths, then removes the drill's directory.
    let refused = task(
        drill,
        "cleanup-bad.drill",
        60,
        TaskAction::Cleanup {
            paths: vec![drill_dir.display().to_string(), "/".into()],
        },
    );
    let r = w.run(&refused, LIMIT);
    assert_eq!(error_of(&r).0, "refused");
    assert!(drill_dir.exists(), "a refused clean-up removed something");
    let cleanup = task(
        drill,
        "cleanup.drill",
        60,
        TaskAction::Cleanup {
            paths: vec![
                drill_dir.display().to_string(),
                w.root().join("never-made").display().to_string(),
            ],
        },
    );
    let r = w.run(&cleanup, LIMIT);
    assert_eq!(r.outcome, Outcome::Success, "{r:?}");
    assert!(!drill_dir.exists());

    // An unknown action (a newer coordinator) is reported, not run.
    let unknown = task(drill, "6.future.drill", 60, TaskAction::Unknown);
    let r = w.run(&unknown, LIMIT);
    assert_eq!(error_of(&r).0, "unsupported");

    // The ledger holds each task once.
    let ledger = w.standby().join("state/agent/drill");
    assert!(ledger.join(format!("{}.json", cmd.task_id)).is_file());

    // An assignment appearing later is taken without a restart.
    let digest = w
        .standin
        .set_assignment(&[("policy.toml", w.policy.as_str())]);
    let taken = w.standin.wait_for(Duration::from_secs(30), |s| {
        s.heartbeats()
            .last()
            .is_some_and(|h| h.assignment_digest.as_deref() == Some(digest.as_str()))
    });
    assert!(taken, "the new assignment was not taken:\n{}", w.log(1));

    let log = w.log(1);
    w.assert_no_secrets(&log, "the agent log");
    let all = serde_json::to_string(&w.standin.drill_reports()).unwrap();
    w.assert_no_secrets(&all, "the drill reports");
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent exited:\n{log}"
    );
}

#[test]
fn wrong_password_missing_snapshot_no_space_tampered_files_and_a_corrupted_pack_fail_with_their_reasons()
 {
    let w = World::new();
    let _agent = w.spawn(1);
    let drill = uuid::Uuid::new_v4();
    let target_dir = w.restore_root().join(drill.to_string()).join(SYSTEM);

    // Probe: a wrong password, a snapshot the repository does not have, too little space.
    let mut missing = w.target(&w.policy, &target_dir);
    missing.snapshot = "0".repeat(64);
    let probe = task(
        drill,
        "readiness.drill",
        60,
        TaskAction::Probe {
            restore_root: w.restore_root().display().to_string(),
            need_bytes: u64::MAX / 2,
            targets: vec![w.target(&w.wrong_policy, &target_dir), missing],
        },
    );
    let r = w.run(&probe, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed);
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "credentials", "{message}");
    assert!(message.contains("free under"), "{message}");
    let p = r.probe.unwrap();
    let (wrong, absent) = (&p.targets[0], &p.targets[1]);
    assert!(
        !wrong.credentials && wrong.reachable && !wrong.snapshot_present,
        "{wrong:?}"
    );
    assert!(
        wrong.problem.as_ref().unwrap().starts_with("credentials:"),
        "{wrong:?}"
    );
    assert!(
        absent.credentials && absent.reachable && !absent.snapshot_present,
        "{absent:?}"
    );
    assert!(
        absent
            .problem
            .as_ref()
            .unwrap()
            .contains("no snapshot matches"),
        "{absent:?}"
    );

    // A restored tree changed afterwards fails verification, naming what is wrong.
    let restore = task(
        drill,
        "1.restore",
        300,
        TaskAction::Restore(w.target(&w.policy, &target_dir)),
    );
    assert_eq!(w.run(&restore, LIMIT).outcome, Outcome::Success);
    let tree = restored(&target_dir, &w.src());
    std::fs::remove_file(tree.join("docs/notes.md")).unwrap();
    let mut bytes = std::fs::read(tree.join("data/mixed.dat")).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(tree.join("data/mixed.dat"), bytes).unwrap();
    let verify = task(
        drill,
        "2.verify",
        300,
        TaskAction::Verify(w.target(&w.policy, &target_dir)),
    );
    let r = w.run(&verify, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed);
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "verify-failed", "{message}");
    assert!(
        message.contains("1 files missing, 1 with different content"),
        "{message}"
    );

    // A corrupted pack in the repository: the restore fails as an integrity error.
    let packs: Vec<PathBuf> = common::tree_digest(&w.root().join("repos/offsite/data"))
        .into_iter()
        .filter(|(_, k)| k.starts_with("file "))
        .map(|(p, _)| w.root().join("repos/offsite/data").join(p))
        .collect();
    let pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(pack).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(pack, bytes).unwrap();
    let other = w.restore_root().join(drill.to_string()).join("again");
    let restore = task(
        drill,
        "3.restore",
        300,
        TaskAction::Restore(w.target(&w.policy, &other)),
    );
    let r = w.run(&restore, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "integrity", "{message}");
    assert!(message.contains(&format!("repository {REPO}")), "{message}");

    let all = serde_json::to_string(&w.standin.drill_reports()).unwrap();
    w.assert_no_secrets(&all, "the drill reports");
    w.assert_no_secrets(&w.log(1), "the agent log");
}

#[test]
fn a_task_cut_short_by_kill_9_is_reported_interrupted_after_the_restart_and_not_run_again() {
    let w = World::new();
    let mut agent = w.spawn(1);
    let drill = uuid::Uuid::new_v4();
    let marker = w.root().join("ran");
    let pid_file = w.root().join("pid");
    let long = task(
        drill,
        "1.command.drill",
        600,
        command(
            &[
                "sh",
                "-c",
                "echo started >> \"$MARKER\"; echo $$ > \"$PIDFILE\"; exec sleep 120",
            ],
            &[
                ("MARKER", marker.to_str().unwrap()),
                ("PIDFILE", pid_file.to_str().unwrap()),
            ],
        ),
    );
    w.standin.offer_drill_task(long.clone());
    wait_until(Duration::from_secs(60), "the task to run", || {
        w.standin
            .heartbeats()
            .iter()
            .any(|h| h.drill_tasks_running.contains(&long.task_id))
            && std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty())
    });
    let entry: Value = serde_json::from_slice(
        &std::fs::read(
            w.standby()
                .join(format!("state/agent/drill/{}.json", long.task_id)),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(entry["report"].is_null(), "{entry}");
    let started_at: jiff::Timestamp = entry["started_at"].as_str().unwrap().parse().unwrap();

    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    // The command outlives a killed agent (its own process group); end it here.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status();
    assert_eq!(w.reports_of(&long.task_id), 0);

    // Restarted, the agent reports the task failed (interrupted) and does not run it again,
    // although the coordinator still offers it.
    let _agent = w.spawn(2);
    let r = w.report(&long.task_id, LIMIT);
    assert_eq!(r.outcome, Outcome::Failed);
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "interrupted");
    assert!(
        message.starts_with("the agent restarted during the task (started "),
        "{message}"
    );
    assert_eq!(r.started_at, started_at);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "started\n",
        "the task ran again"
    );

    // The agent goes on with new tasks.
    let next = task(drill, "2.command.drill", 60, command(&["true"], &[]));
    assert_eq!(w.run(&next, LIMIT).outcome, Outcome::Success);
}

#[test]
fn a_restore_past_its_timeout_is_aborted_and_one_cut_short_by_kill_9_is_reported_interrupted() {
    let w = World::with_big_file(256 << 20);
    let mut agent = w.spawn(1);
    let drill = uuid::Uuid::new_v4();

    // Past its timeout, the restore is aborted and reported, and the agent goes on.
    let slow_dir = w.restore_root().join("slow");
    let slow = task(
        drill,
        "1.restore",
        1,
        TaskAction::Restore(w.target(&w.policy, &slow_dir)),
    );
    let started = std::time::Instant::now();
    let r = w.run(&slow, LIMIT);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(
        error_of(&r),
        ("timeout".to_string(), "timed out after 1s".to_string())
    );

    // kill -9 while a restore runs; after the restart it is reported interrupted, not re-run.
    let target_dir = w.restore_root().join(drill.to_string()).join(SYSTEM);
    let restore = task(
        drill,
        "2.restore",
        600,
        TaskAction::Restore(w.target(&w.policy, &target_dir)),
    );
    w.standin.offer_drill_task(restore.clone());
    wait_until(Duration::from_secs(60), "the restore to write", || {
        w.standin
            .heartbeats()
            .iter()
            .any(|h| h.drill_tasks_running.contains(&restore.task_id))
            && has_a_file(&target_dir)
    });
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    assert_eq!(
        w.reports_of(&restore.task_id),
        0,
        "the restore finished before the kill: make the data bigger"
    );
    let partial = common::tree_digest(&target_dir);
    let _agent = w.spawn(2);
    let r = w.report(&restore.task_id, LIMIT);
    let (kind, message) = error_of(&r);
    assert_eq!(kind, "interrupted", "{message}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        common::tree_digest(&target_dir),
        partial,
        "the restore ran again"
    );
    w.assert_no_secrets(&(w.log(1) + &w.log(2)), "the agent logs");
}

/// Whether there is a regular file anywhere under `dir`.
fn has_a_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| match e.file_type() {
        Ok(t) if t.is_file() => true,
        Ok(t) if t.is_dir() => has_a_file(&e.path()),
        _ => false,
    })
}
