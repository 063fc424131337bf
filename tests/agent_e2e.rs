//! End-to-end tests of the real agent binary (`lifeboat agent`): schedules every few seconds
//! against a local repository and a Garage S3 repository on 127.0.0.1, run records delivered to
//! a stand-in coordinator over HTTP, `kill -9` mid-backup and mid-copy, a coordinator that
//! refuses connections for many runs, broken configuration and policy, and the deploy files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::standin::{ReceivedRun, StandIn};
use common::{Garage, XorShift, free_port, http, lifeboat, make_dataset, wait_ready, wait_until};
use lifeboat::run::{Outcome, RunKind};
use serde_json::Value;

const PASSWORD: &str = "agent-e2e-password-5b1d";

/// One agent installation in a tempdir: policy, agent.toml, state, source data, repositories.
struct Site {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    secrets: Vec<String>,
    policy: String,
}

struct Schedules {
    backup: &'static str,
    copy: &'static str,
    check: &'static str,
    read_data: &'static str,
    forget: &'static str,
}

impl Schedules {
    /// Backups (and copies, when given) on a fast schedule; checks, read-data and retention at
    /// night, out of the test's way.
    fn frequent(backup: &'static str, copy: &'static str) -> Schedules {
        Schedules {
            backup,
            copy,
            check: "0 0 3 * * *",
            read_data: "0 0 4 * * *",
            forget: "0 0 5 * * *",
        }
    }
}

const FAST: Schedules = Schedules {
    backup: "*/5 * * * * *",
    copy: "*/6 * * * * *",
    check: "*/7 * * * * *",
    read_data: "*/8 * * * * *",
    forget: "*/9 * * * * *",
};

impl Site {
    fn new(garage: Option<&Garage>, prefix: &str, schedules: &Schedules) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        make_dataset(&root.join("src"));
        let mut vars = vec![("TEST_REPO_PASSWORD".to_string(), PASSWORD.to_string())];
        let mut secrets = vec![
            PASSWORD.to_string(),
            common::standin::STANDIN_TOKEN.to_string(),
        ];
        let mut repos = format!(
            r#"
[repositories.branch-local]
url = "{}"
location = "local"
password = {{ env = "TEST_REPO_PASSWORD" }}
"#,
            root.join("repos/local").display()
        );
        let mut chain = vec!["\"branch-local\""];
        let (copies, offsite) = match garage {
            Some(g) => {
                repos.push_str(&format!(
                    r#"
[repositories.dc-offsite]
url = "s3://{bucket}/{prefix}"
location = "remote"
endpoint = "{endpoint}"
allow-http = true
region = "us-east-1"
access-key-id = {{ env = "TEST_S3_KEY_ID" }}
secret-access-key = {{ env = "TEST_S3_SECRET" }}
password = {{ env = "TEST_REPO_PASSWORD" }}
request-timeout = "20s"
max-retries = 2
"#,
                    bucket = g.bucket,
                    endpoint = g.endpoint
                ));
                vars.push(("TEST_S3_KEY_ID".into(), g.access_key_id.clone()));
                vars.push(("TEST_S3_SECRET".into(), g.secret_access_key.clone()));
                secrets.push(g.secret_access_key.clone());
                chain.push("\"dc-offsite\"");
                (2, 1)
            }
            None => (1, 0),
        };
        let copy = if garage.is_some() {
            format!("    {{ job = \"copy\", cron = \"{}\" }},\n", schedules.copy)
        } else {
            String::new()
        };
        let policy = format!(
            r#"
{tier_and_site}
{repos}
[systems.branch-finance]
name = "Finance share"
department = "finance"
site = "branch"
host = "branch-fs01"
tier = "TT"
paths = ["{src}"]
repositories = [{chain}]
schedules = [
    {{ job = "backup", cron = "{backup}" }},
{copy}    {{ job = "check", cron = "{check}" }},
    {{ job = "read-data", cron = "{read_data}" }},
    {{ job = "forget", cron = "{forget}" }},
]
retention = {{ keep-last = 3 }}
"#,
            tier_and_site = common::test_tier_and_site("1h", copies, offsite, "1d", "1d"),
            src = root.join("src").display(),
            chain = chain.join(", "),
            backup = schedules.backup,
            check = schedules.check,
            read_data = schedules.read_data,
            forget = schedules.forget,
        );
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::write(root.join("policies/policy.toml"), &policy).unwrap();
        Site {
            dir,
            vars,
            secrets,
            policy,
        }
    }

    /// A local-only site whose agent takes its policy from a stand-in coordinator.
    fn served(schedules: &Schedules) -> (Site, StandIn) {
        let site = Site::new(None, "", schedules);
        let standin = StandIn::start();
        standin.set_assignment(&[("policy.toml", site.policy.as_str())]);
        site.configure(Some(&standin.url()), "");
        (site, standin)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.root().join("agent.toml")
    }

    /// Writes agent.toml: stand-alone on `policies/`, or against `coordinator`.
    fn configure(&self, coordinator: Option<&str>, extra: &str) {
        let mut text = format!(
            r#"host = "branch-fs01"
site = "branch"
state-dir = "{state}"
policy-dir = "{policies}"
jitter = "0s"
reload-every = "1s"
shutdown-grace = "20s"
max-concurrent-jobs = 2
{extra}
"#,
            state = self.root().join("state").display(),
            policies = self.root().join("policies").display(),
        );
        if let Some(url) = coordinator {
            text.push_str(&format!(
                "\n[coordinator]\nurl = \"{url}\"\ntoken = {{ env = \"TEST_AGENT_TOKEN\" }}\nheartbeat-every = \"1s\"\nrequest-timeout = \"5s\"\n"
            ));
        }
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = lifeboat();
        cmd.args(args)
            .env("LIFEBOAT_POLICY", self.root().join("policies"))
            .env("LIFEBOAT_STATE_DIR", self.root().join("state"))
            .env("TEST_AGENT_TOKEN", common::standin::STANDIN_TOKEN)
            .env("TEST_ENROL_TOKEN", common::standin::STANDIN_ENROLMENT_TOKEN)
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Starts the agent; its log goes to `agent-<n>.log`. Killed when dropped (a failing test
    /// must not leave agents running).
    fn spawn(&self, n: u32) -> Agent {
        let log = std::fs::File::create(self.log_path(n)).unwrap();
        Agent(
            self.cmd(&[
                "agent",
                "--config",
                self.config_path().to_str().unwrap(),
                "--log",
                "info,lifeboat=debug",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        )
    }

    fn log_path(&self, n: u32) -> PathBuf {
        self.root().join(format!("agent-{n}.log"))
    }

    fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "lifeboat {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn state(&self) -> Value {
        std::fs::read(self.root().join("state/agent/state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// The job in flight for the system, per the agent's saved state.
    fn in_flight(&self) -> Option<String> {
        self.state()["in_flight"]["branch-finance"]["job"]
            .as_str()
            .map(str::to_string)
    }

    /// Every run id the engine journalled under `state/runs/`.
    fn journal_ids(&self) -> BTreeSet<String> {
        let dir = self.root().join("state/runs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return BTreeSet::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| {
                let v: Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                let kind = v["kind"].as_str()?.to_string();
                (kind != "init").then(|| v["run_id"].as_str().map(str::to_string))?
            })
            .collect()
    }

    /// The journal file of run `id`, as text.
    fn journal_entry(&self, id: &str) -> String {
        let dir = self.root().join("state/runs");
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().contains(id))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .unwrap_or_default()
    }

    fn assert_no_secrets(&self, text: &str, what: &str) {
        for s in &self.secrets {
            assert!(!text.contains(s.as_str()), "a secret leaked into {what}");
        }
    }
}

/// A running agent process, killed if the test ends without stopping it.
struct Agent(Child);

impl std::ops::Deref for Agent {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Agent {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// SIGTERM, then wait for the exit (at most `limit`).
fn terminate(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    signal(child, "TERM");
    wait(child, limit)
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} failed");
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the agent did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `wait_until` that, on timeout, shows the agent's log and what the coordinator received.
fn wait_or_dump(
    limit: Duration,
    what: &str,
    site: &Site,
    log: u32,
    standin: &StandIn,
    mut done: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            let runs: Vec<String> = standin
                .received()
                .iter()
                .map(|r| {
                    format!(
                        "{:?} {:?} {} {}",
                        r.record.kind,
                        r.record.outcome,
                        r.record.error.as_ref().map_or("", |e| e.message.as_str()),
                        r.record
                            .repositories
                            .iter()
                            .filter_map(|x| x.error.as_ref().map(|e| e.message.as_str()))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })
                .collect();
            let text = site.log(log);
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            panic!(
                "timed out after {limit:?} waiting for {what}\nreceived:\n{}\nlog tail:\n{}",
                runs.join("\n"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn of_kind(runs: &[ReceivedRun], kind: RunKind) -> Vec<&ReceivedRun> {
    runs.iter().filter(|r| r.record.kind == kind).collect()
}

/// Keys unique, and sequence numbers increasing in arrival order (delivery in spool order).
fn assert_once_in_order(runs: &[ReceivedRun]) {
    let keys: BTreeSet<&str> = runs.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), runs.len(), "a run record was stored twice");
    for pair in runs.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "records arrived out of order: seq {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
}

/// A plain HTTP GET on loopback (the metrics endpoint).
fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn agent_runs_its_schedules_against_local_and_s3_and_reports_every_run() {
    let garage = Garage::start();
    let site = Site::new(Some(&garage), "agent-e2e-main", &FAST);
    let standin = StandIn::start();
    // The agent takes its policy from the coordinator (the stand-in serves the same files).
    let digest = standin.set_assignment(&[("policy.toml", site.policy.as_str())]);
    let metrics_port = free_port();
    site.configure(
        Some(&standin.url()),
        &format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    // No agent token yet: the agent enrols with the one-time token and stores its own.
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    let text = text.replace(
        "token = { env = \"TEST_AGENT_TOKEN\" }",
        "enrol-token = { env = \"TEST_ENROL_TOKEN\" }",
    );
    std::fs::write(site.config_path(), text).unwrap();
    let mut agent = site.spawn(1);

    // Enough time for several backups, copies, checks, read-data runs and a forget.
    wait_or_dump(
        Duration::from_secs(120),
        "runs of every job",
        &site,
        1,
        &standin,
        || {
            let runs = standin.received();
            let copies_ok = of_kind(&runs, RunKind::Copy)
                .iter()
                .any(|r| r.record.outcome == Outcome::Success);
            of_kind(&runs, RunKind::Backup).len() >= 3
                && copies_ok
                && of_kind(&runs, RunKind::Check).len() >= 4
                && !of_kind(&runs, RunKind::Forget).is_empty()
        },
    );
    let metrics = http_get(metrics_port, "/metrics");
    assert!(metrics.contains("200 OK"), "{metrics}");
    assert!(
        metrics.contains("lifeboat_agent_last_success_timestamp_seconds{system=\"branch-finance\",job=\"backup\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeboat_agent_offsite_lag_seconds{system=\"branch-finance\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("lifeboat_agent_spool_depth"), "{metrics}");

    let status = terminate(&mut agent, Duration::from_secs(60));
    let log = site.log(1);
    assert!(status.success(), "agent exit {status}\n{log}");
    site.assert_no_secrets(&log, "the agent's log");
    assert!(log.contains("enrolled with the coordinator"), "{log}");
    let token = site.root().join("state/agent/token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the stored agent token is readable by others"
    );
    assert_eq!(
        std::fs::read_to_string(&token).unwrap(),
        common::standin::STANDIN_TOKEN
    );

    let runs = standin.received();
    assert_once_in_order(&runs);
    let backups = of_kind(&runs, RunKind::Backup);
    for b in &backups {
        assert_eq!(b.record.outcome, Outcome::Success, "{:?}", b.record);
        assert_eq!(b.record.host, "branch-fs01");
        assert_eq!(b.system.as_deref(), Some("branch-finance"));
        assert!(b.record.capture_time.is_some() && b.record.snapshot_id.is_some());
        // The agent's backup writes the local repository only; copies are their own job.
        assert_eq!(
            b.record.repositories.len(),
            1,
            "{:?}",
            b.record.repositories
        );
    }
    let copy = of_kind(&runs, RunKind::Copy)
        .into_iter()
        .find(|r| r.record.outcome == Outcome::Success)
        .unwrap();
    assert!(
        copy.record
            .repositories
            .iter()
            .any(|r| r.repository == "dc-offsite" && r.outcome == Outcome::Success),
        "{:?}",
        copy.record
    );
    for c in of_kind(&runs, RunKind::Check) {
        assert_eq!(c.record.outcome, Outcome::Success, "{:?}", c.record);
    }
    // Heartbeats carried the assignment digest and the system's status.
    let beats = standin.heartbeats();
    assert!(beats.len() >= 3, "{} heartbeats", beats.len());
    let last = beats.last().unwrap();
    assert_eq!(last.assignment_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(last.systems.len(), 1);
    assert!(last.systems[0].last_backup.is_some());

    // Everything the engine journalled reached the coordinator.
    let received: BTreeSet<String> = runs.iter().map(|r| r.key.clone()).collect();
    for id in site.journal_ids() {
        assert!(
            received.contains(&id),
            "run {id} was journalled but not delivered: {}",
            site.journal_entry(&id)
        );
    }

    // Both repositories are sound and hold the snapshots.
    for repo in ["branch-local", "dc-offsite"] {
        site.ok(&["check", "--repo", repo, "--read-data"]);
        let snaps: Value =
            serde_json::from_str(&site.ok(&["snapshots", "--repo", repo, "--json"])).unwrap();
        let n = snaps.as_array().unwrap().len();
        // keep-last = 3, plus what was backed up after the last forget ran.
        let last_forget = of_kind(&runs, RunKind::Forget)
            .last()
            .map(|f| f.record.started_at)
            .unwrap();
        // Snapshots added after the last forget: backups (local), or snapshots copied there
        // (a copy also carries a snapshot made before the forget that the target lacked).
        let since = if repo == "branch-local" {
            backups
                .iter()
                .filter(|b| b.record.started_at > last_forget)
                .count()
        } else {
            of_kind(&runs, RunKind::Copy)
                .iter()
                .filter(|c| c.record.started_at > last_forget)
                .flat_map(|c| c.record.repositories.iter())
                .filter(|r| r.repository == repo)
                .map(|r| r.snapshots.len())
                .sum()
        };
        assert!(
            n >= 1 && n <= 3 + since,
            "{repo} holds {n} snapshots (keep-last = 3, {since} backups after the last forget)"
        );
    }

    // `agent status` works with the agent stopped and shows every job.
    let out = site
        .cmd(&[
            "agent",
            "status",
            "--config",
            site.config_path().to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(st["running"], false);
    let jobs: BTreeSet<&str> = st["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from(["backup", "check", "copy", "forget", "read-data"])
    );
    assert_eq!(st["spool_depth"], 0);
}

/// A data set that takes the agent a few seconds to back up: `mib` MiB of random bytes.
fn big_file(dir: &Path, mib: usize) {
    let mut rng = XorShift::new(7);
    let mut f = std::fs::File::create(dir.join("big.bin")).unwrap();
    for _ in 0..mib {
        f.write_all(&rng.bytes(1 << 20)).unwrap();
    }
}

#[test]
fn kill_9_mid_backup_and_mid_copy_then_restart_loses_nothing() {
    let garage = Garage::start();
    let slow = Schedules::frequent("*/2 * * * * *", "*/2 * * * * *");
    let site = Site::new(Some(&garage), "agent-e2e-kill", &slow);
    big_file(&site.root().join("src"), 400);
    let standin = StandIn::start();
    standin.set_assignment(&[("policy.toml", site.policy.as_str())]);
    site.configure(Some(&standin.url()), "");

    // kill -9 while a backup runs.
    let mut agent = site.spawn(1);
    wait_until(Duration::from_secs(60), "a backup in flight", || {
        site.in_flight().as_deref() == Some("backup")
    });
    std::thread::sleep(Duration::from_millis(700));
    signal(&agent, "KILL");
    wait(&mut agent, Duration::from_secs(10));

    // Restart; kill -9 while a copy runs (the first copy uploads ~400 MiB to S3).
    let mut agent = site.spawn(2);
    wait_until(Duration::from_secs(120), "a copy in flight", || {
        site.in_flight().as_deref() == Some("copy")
    });
    std::thread::sleep(Duration::from_millis(1500));
    signal(&agent, "KILL");
    wait(&mut agent, Duration::from_secs(10));

    // Restart and let it complete a backup and a copy.
    let mut agent = site.spawn(3);
    wait_or_dump(
        Duration::from_secs(240),
        "a successful copy after the kills",
        &site,
        3,
        &standin,
        || {
            let runs = standin.received();
            let mut seen_interrupted_copy = false;
            for r in &runs {
                if r.record.kind == RunKind::Copy
                    && r.record
                        .error
                        .as_ref()
                        .is_some_and(|e| e.kind == "interrupted")
                {
                    seen_interrupted_copy = true;
                }
                if seen_interrupted_copy
                    && r.record.kind == RunKind::Copy
                    && r.record.outcome == Outcome::Success
                {
                    return true;
                }
            }
            false
        },
    );
    let status = terminate(&mut agent, Duration::from_secs(90));
    assert!(status.success(), "{status}\n{}", site.log(3));

    let runs = standin.received();
    assert_once_in_order(&runs);
    // Each kill left an "interrupted" record (the evidence shows the cut-short runs).
    let interrupted: Vec<RunKind> = runs
        .iter()
        .filter(|r| {
            r.record
                .error
                .as_ref()
                .is_some_and(|e| e.kind == "interrupted")
        })
        .map(|r| r.record.kind)
        .collect();
    assert!(interrupted.contains(&RunKind::Backup), "{interrupted:?}");
    assert!(interrupted.contains(&RunKind::Copy), "{interrupted:?}");
    // Every journalled run was delivered, once.
    let received: BTreeSet<String> = runs.iter().map(|r| r.key.clone()).collect();
    for id in site.journal_ids() {
        assert!(
            received.contains(&id),
            "run {id} was journalled but not delivered"
        );
    }
    // Both repositories check clean, data included, and hold a complete snapshot.
    for repo in ["branch-local", "dc-offsite"] {
        site.ok(&["check", "--repo", repo, "--read-data"]);
    }
    let target = site.root().join("restored");
    site.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--repo",
        "dc-offsite",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let src = site.root().join("src");
    let restored = target.join(src.strip_prefix("/").unwrap());
    common::assert_same_tree(&src, &restored);
}

#[test]
fn records_survive_a_coordinator_down_for_many_runs_and_arrive_once_in_order() {
    let fast = Schedules::frequent("* * * * * *", "* * * * * *");
    let (site, mut standin) = Site::served(&fast);
    let mut agent = site.spawn(1);
    wait_until(Duration::from_secs(60), "a first delivered backup", || {
        !standin.received().is_empty()
    });

    // The coordinator goes away; the agent keeps backing up and spools.
    standin.refuse();
    let delivered_before = standin.received().len();
    let backups_at = |site: &Site| {
        site.state()["systems"]["branch-finance"]["recent_backups"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let start_backups = backups_at(&site);
    wait_until(
        Duration::from_secs(120),
        "8 backups while the coordinator is down",
        || backups_at(&site) >= start_backups + 8,
    );
    assert_eq!(standin.received().len(), delivered_before);

    // It comes back: everything arrives, once, in order.
    standin.accept();
    let status = {
        wait_until(Duration::from_secs(60), "the spool to drain", || {
            let journal = site.journal_ids();
            let got: BTreeSet<String> = standin.received().iter().map(|r| r.key.clone()).collect();
            journal.is_subset(&got) && journal.len() >= delivered_before + 8
        });
        terminate(&mut agent, Duration::from_secs(60))
    };
    assert!(status.success(), "{status}\n{}", site.log(1));
    let runs = standin.received();
    assert_once_in_order(&runs);
    let backups = of_kind(&runs, RunKind::Backup);
    assert!(backups.len() >= 9, "{} backups delivered", backups.len());
    for pair in backups.windows(2) {
        assert!(pair[0].record.started_at <= pair[1].record.started_at);
    }
    // The agent's log says delivery failed and was retried, without secrets.
    let log = site.log(1);
    assert!(log.contains("not delivered yet"), "{log}");
    site.assert_no_secrets(&log, "the agent's log");
}

#[test]
fn a_new_assignment_from_the_coordinator_takes_effect_without_a_restart() {
    let slow = Schedules::frequent("*/2 * * * * *", "");
    let (site, standin) = Site::served(&slow);
    let mut agent = site.spawn(1);
    wait_or_dump(
        Duration::from_secs(60),
        "a first backup",
        &site,
        1,
        &standin,
        || !of_kind(&standin.received(), RunKind::Backup).is_empty(),
    );

    // The coordinator assigns a second system (a copy of the first, its own repository).
    let second = site
        .policy
        .split("[systems.branch-finance]")
        .nth(1)
        .unwrap()
        .replace("\"branch-local\"", "\"payroll-local\"")
        .replace("name = \"Finance share\"", "name = \"Payroll\"");
    let extra = format!(
        "\n[repositories.payroll-local]\nurl = \"{}\"\nlocation = \"local\"\npassword = {{ env = \"TEST_REPO_PASSWORD\" }}\n\n[systems.branch-payroll]{second}",
        site.root().join("repos/payroll").display()
    );
    let digest = standin.set_assignment(&[
        ("policy.toml", site.policy.as_str()),
        ("payroll.toml", extra.as_str()),
    ]);
    wait_or_dump(
        Duration::from_secs(60),
        "a backup of the new system",
        &site,
        1,
        &standin,
        || {
            standin.received().iter().any(|r| {
                r.system.as_deref() == Some("branch-payroll")
                    && r.record.outcome == Outcome::Success
            })
        },
    );
    wait_until(
        Duration::from_secs(30),
        "a heartbeat with the new digest",
        || {
            standin.heartbeats().last().is_some_and(|h| {
                h.assignment_digest.as_deref() == Some(digest.as_str()) && h.systems.len() == 2
            })
        },
    );
    // The cache on disk is the new assignment (the agent would start on it offline).
    assert!(
        site.root()
            .join("state/agent/assignment/payroll.toml")
            .exists()
    );

    // A broken assignment is refused: the agent keeps the last good one and keeps working.
    let broken = extra.replace("keep-last = 3", "keep-last = \"many\"");
    standin.set_assignment(&[
        ("policy.toml", site.policy.as_str()),
        ("payroll.toml", broken.as_str()),
    ]);
    let before = standin.received().len();
    wait_or_dump(
        Duration::from_secs(60),
        "backups on the last good assignment",
        &site,
        1,
        &standin,
        || standin.received().len() >= before + 4,
    );
    let status = terminate(&mut agent, Duration::from_secs(60));
    assert!(status.success());
    let log = site.log(1);
    assert!(log.contains("keeping the last good one"), "{log}");
    assert!(log.contains("payroll.toml"), "{log}");
    assert!(
        site.root()
            .join("state/agent/assignment/payroll.toml")
            .exists()
    );
    let cached =
        std::fs::read_to_string(site.root().join("state/agent/assignment/payroll.toml")).unwrap();
    assert!(
        !cached.contains("many"),
        "the broken assignment replaced the cache"
    );
}

#[test]
fn bad_input_gives_one_clear_error_and_the_agent_keeps_its_last_good_policy() {
    let schedules = Schedules::frequent("*/2 * * * * *", "");
    let site = Site::new(None, "", &schedules);

    // A misspelt key in agent.toml: exit 3, file, line and key named.
    site.configure(None, "max-concurent-jobs = 3");
    let out = site
        .cmd(&["agent", "--config", site.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml:9:"), "{err}");
    assert!(err.contains("max-concurent-jobs"), "{err}");

    // Stand-alone on the local policy.
    site.configure(None, "");
    let mut agent = site.spawn(1);
    let snapshots = |site: &Site| {
        site.state()["systems"]["branch-finance"]["recent_backups"]
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_until(Duration::from_secs(60), "a first backup", || {
        snapshots(&site) >= 1
    });

    // The policy breaks: the agent says so and keeps running the last good one.
    let broken = site.policy.replace("rpo = \"1h\"", "rpo = \"soon\"");
    std::fs::write(site.root().join("policies/policy.toml"), broken).unwrap();
    let before = snapshots(&site);
    wait_until(
        Duration::from_secs(60),
        "backups on the last good policy",
        || snapshots(&site) >= before + 2,
    );
    let log = site.log(1);
    assert!(log.contains("keeping the last good one"), "{log}");
    assert!(log.contains("tiers.TT.rpo"), "{log}");

    // A source path vanishes: failed runs with a precise cause, no crash.
    std::fs::write(site.root().join("policies/policy.toml"), &site.policy).unwrap();
    std::fs::rename(site.root().join("src"), site.root().join("src-moved")).unwrap();
    wait_until(Duration::from_secs(60), "a failed backup record", || {
        site.state()["systems"]["branch-finance"]["last_run"]["backup"]["error_kind"].as_str()
            == Some("source-missing")
    });
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
    let status = terminate(&mut agent, Duration::from_secs(60));
    assert!(status.success());

    // `agent status` reports the failure with exit code 8.
    let out = site
        .cmd(&[
            "agent",
            "status",
            "--config",
            site.config_path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("does not exist") || text.contains("missing"),
        "{text}"
    );
}

#[test]
fn the_systemd_unit_is_valid_and_hardened() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    assert!(
        analyze.exists(),
        "systemd-analyze not found: run ./tests/run.sh or `apt-get install systemd`"
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/lifeboat-agent.service"),
    )
    .unwrap();
    // Point ExecStart at the binary under test: verify checks that it exists.
    let unit = unit.replace("/usr/local/bin/lifeboat", env!("CARGO_BIN_EXE_lifeboat"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lifeboat-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--threshold=25"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exposure above 2.5:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Overall exposure level"), "{text}");
}

#[test]
fn sigterm_gives_a_running_backup_its_grace_then_records_it_as_aborted() {
    let schedules = Schedules::frequent("*/2 * * * * *", "");
    let site = Site::new(None, "", &schedules);
    big_file(&site.root().join("src"), 600);
    let standin = StandIn::start();
    standin.set_assignment(&[("policy.toml", site.policy.as_str())]);
    site.configure(Some(&standin.url()), "");
    // A grace period far shorter than the backup.
    let text = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace("shutdown-grace = \"20s\"", "shutdown-grace = \"1s\"");
    std::fs::write(site.config_path(), text).unwrap();
    let mut agent = site.spawn(1);
    wait_until(Duration::from_secs(60), "a backup in flight", || {
        site.in_flight().as_deref() == Some("backup")
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let status = terminate(&mut agent, Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", site.log(1));
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stopping took {:?}",
        t.elapsed()
    );
    // The abandoned run is evidence, delivered by the final flush.
    let runs = standin.received();
    let aborted = runs
        .iter()
        .find(|r| r.record.error.as_ref().is_some_and(|e| e.kind == "aborted"))
        .unwrap_or_else(|| panic!("no aborted record: {runs:?}"));
    assert_eq!(aborted.record.kind, RunKind::Backup);
    assert_eq!(aborted.record.outcome, Outcome::Failed);
    assert!(
        site.in_flight().is_none(),
        "the state still shows a job in flight"
    );
    // The repository is sound; the next start completes the backup.
    site.ok(&["check", "--repo", "branch-local"]);
    let mut agent = site.spawn(2);
    wait_or_dump(
        Duration::from_secs(120),
        "a backup after the restart",
        &site,
        2,
        &standin,
        || {
            standin
                .received()
                .iter()
                .any(|r| r.record.kind == RunKind::Backup && r.record.outcome == Outcome::Success)
        },
    );
    let status = terminate(&mut agent, Duration::from_secs(120));
    assert!(status.success());
    site.ok(&["check", "--repo", "branch-local", "--read-data"]);
}

#[test]
fn backup_now_from_the_coordinator_runs_at_once_outside_the_schedule() {
    // Hourly (the tier's RPO is 1h); keep clear of the top of the hour, when it would run anyway.
    let now = jiff::Zoned::now();
    let to_hour = 3600 - (i64::from(now.minute()) * 60 + i64::from(now.second()));
    if to_hour < 120 {
        std::thread::sleep(Duration::from_secs(to_hour as u64 + 5));
    }
    let daily = Schedules::frequent("0 0 * * * *", "");
    let (site, standin) = Site::served(&daily);
    let mut agent = site.spawn(1);
    // A new system's first backup runs at once; the next slot is minutes away.
    wait_or_dump(
        Duration::from_secs(60),
        "the first backup",
        &site,
        1,
        &standin,
        || of_kind(&standin.received(), RunKind::Backup).len() == 1,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(of_kind(&standin.received(), RunKind::Backup).len(), 1);
    standin.queue_command(lifeboat::api::Command::BackupNow {
        system: "branch-finance".parse().unwrap(),
    });
    wait_or_dump(
        Duration::from_secs(30),
        "the backup asked for",
        &site,
        1,
        &standin,
        || of_kind(&standin.received(), RunKind::Backup).len() == 2,
    );
    let status = terminate(&mut agent, Duration::from_secs(60));
    assert!(status.success());
    let runs = standin.received();
    let second = of_kind(&runs, RunKind::Backup)[1];
    assert_eq!(
        second.record.outcome,
        Outcome::Success,
        "{:?}",
        second.record
    );
}

/// A plain HTTP request on loopback: (status code, body).
#[test]
fn the_agent_enrols_with_the_real_coordinator_and_its_records_are_stored_once() {
    use lifeboat::coordinator::store::{AuditFilter, Page, Store};
    let schedules = Schedules {
        backup: "*/2 * * * * *",
        copy: "",
        check: "*/5 * * * * *",
        read_data: "0 0 4 * * *",
        forget: "0 0 5 * * *",
    };
    let site = Site::new(None, "", &schedules);
    let port = free_port();
    let db = site.root().join("coordinator.db");
    let coord_cfg = site.root().join("coordinator.toml");
    std::fs::write(
        &coord_cfg,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n",
            db.display(),
            site.root().join("policies").display()
        ),
    )
    .unwrap();
    // An operator issues the one-time enrolment token.
    let token = site
        .ok(&[
            "coordinator",
            "--config",
            coord_cfg.to_str().unwrap(),
            "enrol-token",
            "--host",
            "branch-fs01",
            "--site",
            "branch",
        ])
        .trim()
        .to_string();
    assert!(token.len() >= 32, "{token}");
    let token_file = site.root().join("enrol.token");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let log = std::fs::File::create(site.root().join("coordinator.log")).unwrap();
    let mut coordinator = Agent(
        site.cmd(&[
            "coordinator",
            "--config",
            coord_cfg.to_str().unwrap(),
            "--log",
            "info",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap(),
    );
    wait_ready(port);

    site.configure(Some(&format!("http://127.0.0.1:{port}")), "");
    let text = std::fs::read_to_string(site.config_path())
        .unwrap()
        .replace(
            "token = { env = \"TEST_AGENT_TOKEN\" }",
            &format!("enrol-token = {{ file = \"{}\" }}", token_file.display()),
        );
    std::fs::write(site.config_path(), text).unwrap();
    let mut agent = site.spawn(1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("sqlite://{}", db.display());
    let store = rt.block_on(Store::open(&url)).unwrap();
    let count = |system: &str| rt.block_on(store.count_runs(Some(system))).unwrap();
    let start = Instant::now();
    while count("branch-finance") < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the coordinator stored {} runs\nagent log:\n{}\ncoordinator log:\n{}",
            count("branch-finance"),
            site.log(1),
            std::fs::read_to_string(site.root().join("coordinator.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A wrong token is refused and audited; the enrolment token cannot be used twice.
    let (code, body) = http(port, "GET", "/api/v1/agents/assignment", "not-a-token", "");
    assert_eq!(code, 401, "{body}");
    let enrol = format!(
        "{{\"enrolment_token\":\"{token}\",\"host\":\"branch-fs01\",\"site\":\"branch\",\"version\":\"x\"}}"
    );
    let (code, body) = http(port, "POST", "/api/v1/agents/enrol", "", &enrol);
    assert_eq!(code, 409, "{body}");
    // A malformed body is a 4xx with a reason, never a crash.
    let (code, _) = http(port, "POST", "/api/v1/agents/runs", "x", "{not json");
    assert!((400..500).contains(&code), "{code}");

    let status = terminate(&mut agent, Duration::from_secs(60));
    assert!(status.success());
    let status = terminate(&mut coordinator, Duration::from_secs(30));
    assert!(status.success());

    // Every record the agent journalled is stored once; the spool is empty.
    let stored = rt
        .block_on(store.runs_since("2000-01-01T00:00:00Z".parse().unwrap()))
        .unwrap();
    let keys: BTreeSet<String> = stored.iter().map(|r| r.record.run_id.clone()).collect();
    assert_eq!(keys.len(), stored.len(), "a run was stored twice");
    for id in site.journal_ids() {
        assert!(keys.contains(&id), "run {id} was journalled but not stored");
    }
    let audit = rt
        .block_on(store.list_audit(&AuditFilter::default(), Page::first(100)))
        .unwrap();
    let actions: BTreeSet<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for want in [
        "enrolment-token.issued",
        "agent.enrolled",
        "agent.auth-refused",
    ] {
        assert!(actions.contains(want), "{want} not audited: {actions:?}");
    }
    // No token is stored in clear.
    rt.block_on(store.close());
    let agent_token = std::fs::read_to_string(site.root().join("state/agent/token")).unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    for extra in ["-wal", "-shm"] {
        if let Ok(b) = std::fs::read(format!("{}{extra}", db.display())) {
            bytes.extend(b);
        }
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(
        !haystack.contains(&token),
        "the enrolment token is stored in clear"
    );
    assert!(
        !haystack.contains(agent_token.trim()),
        "the agent token is stored in clear"
    );
}
