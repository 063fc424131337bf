//! Drills that go wrong, end to end with real components: the coordinator (SQLite), a branch
//! agent and four standby agents as separate processes, local repositories at the branch and
//! off-site repositories on Garage (S3 on loopback). One branch backs up four systems (on the
//! coordinator's "back up now"), copies them off-site, and is lost; then four drills run at once,
//! each with its own standby agent:
//!
//! - **a**: the standby agent is killed (`kill -9`) while it restores (through [`SlowLink`], a
//!   download-capped relay to Garage, so the restore lasts); restarted, it reports the task
//!   interrupted and does not run it again; the coordinator fails the system with that cause and
//!   stops the drill (`on-failure = "stop"`).
//! - **b**: one pack of one system's off-site repository is overwritten in Garage with garbage of
//!   the same length; that system fails with the integrity error, the other passes
//!   (`on-failure = "continue"`).
//! - **c**: the drill declares its disaster before its start (`drill run --disaster-at`), between
//!   two backups: the newer snapshot is passed over with its reason, the restored tree is the
//!   older one, the achieved RPO is `T_disaster − t_cap` exactly and the RTO is still measured
//!   from the drill's start.
//! - **d**: a gate with a 3 s timeout that nobody approves: the drill records the timeout and
//!   stops; the switch-over after it never runs.
//!
//! Every case reads its sealed record through `lifeboat drill record`; at the end the chain of
//! the four records verifies (API and CLI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::drill::{Coordinator, Running, SlowLink, agent_log, restart_agent, ts};
use common::{Garage, assert_same_tree, make_dataset, tree_digest, wait_until};
use futures::TryStreamExt;
use jiff::Timestamp;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

const PASSWORD: &str = "drill-faults-repo-password-91c4";
const OPERATOR_PASSWORD: &str = "operator-password-long-enough";
/// The download rate of the slow link case a restores through.
const SLOW_LINK_BYTES_PER_SECOND: u64 = 3 << 20;

/// The branch's systems: (id, its off-site repository).
const SYSTEMS: [(&str, &str); 4] = [
    ("big", "slow-s3"),
    ("b-one", "b1-s3"),
    ("b-two", "b2-s3"),
    ("c-ledger", "c-s3"),
];

struct World {
    dir: tempfile::TempDir,
    garage: Garage,
    slow: SlowLink,
}

impl World {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn src(&self, system: &str) -> PathBuf {
        self.root().join("data").join(system)
    }

    fn standby(&self, case: &str) -> PathBuf {
        self.root().join(format!("dr-{case}"))
    }

    fn restore_root(&self, case: &str) -> PathBuf {
        self.standby(case).join("restore")
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("TEST_REPO_PASSWORD", PASSWORD),
            ("TEST_S3_KEY_ID", &self.garage.access_key_id),
            ("TEST_S3_SECRET", &self.garage.secret_access_key),
        ]
    }

    fn policy(&self) -> String {
        let root = self.root().display();
        let repo = |id: &str, prefix: &str, endpoint: &str| {
            format!(
                r#"
[repositories.{id}]
site = "dc"
url = "s3://{bucket}/faults/{prefix}"
location = "remote"
endpoint = "{endpoint}"
allow-http = true
region = "us-east-1"
access-key-id = {{ env = "TEST_S3_KEY_ID" }}
secret-access-key = {{ env = "TEST_S3_SECRET" }}
password = {{ env = "TEST_REPO_PASSWORD" }}
request-timeout = "30s"
max-retries = 1
"#,
                bucket = self.garage.bucket,
            )
        };
        let system = |id: &str, offsite: &str| {
            format!(
                r#"
[repositories.{id}-local]
site = "alpha"
url = "{root}/alpha/{id}-repo"
location = "local"
password = {{ env = "TEST_REPO_PASSWORD" }}

[systems.{id}]
name = "{id}"
department = "finance"
site = "alpha"
host = "alpha-fs01"
tier = "TT"
paths = ["{src}"]
repositories = ["{id}-local", "{offsite}"]
schedules = [
    {{ job = "backup", cron = "0 0 1 * * *" }},
    {{ job = "copy", cron = "*/3 * * * * *" }},
    {{ job = "check", cron = "0 0 3 * * *" }},
    {{ job = "read-data", cron = "0 0 4 * * *" }},
    {{ job = "forget", cron = "0 0 5 * * *" }},
]
retention = {{ keep-last = 50 }}
"#,
                src = self.src(id).display()
            )
        };
        let plan = |case: &str, title: &str, on_failure: &str, systems: &str, steps: &str| {
            format!(
                r#"
[drills.fault-{case}]
title = "{title}"
type = "{kind}"
on-failure = "{on_failure}"
[drills.fault-{case}.scenario]
kind = "site-loss"
lost-site = "alpha"
[drills.fault-{case}.scope]
systems = [{systems}]
[drills.fault-{case}.standby]
site = "dr"
host = "dr-{case}"
restore-root = "{restore_root}"
parallelism = 2
keep-restored = {keep}
{steps}"#,
                restore_root = self.restore_root(case).display(),
                kind = if case == "d" {
                    "targeted-switchover"
                } else {
                    "restore-test"
                },
                keep = case != "b" && case != "d",
            )
        };
        let restore_verify = r#"
[[drills.STEPS.steps]]
name = "restore"
action = "restore"
timeout = "10m"
[[drills.STEPS.steps]]
name = "verify"
action = "verify"
timeout = "10m"
[[drills.STEPS.steps]]
name = "health-check"
action = "command"
per-system = true
command = ["/bin/sh", "-c", "test -d \"$LIFEBOAT_RESTORE_DIR\""]
mark = "system-ready"
timeout = "1m"
"#;
        let steps = |case: &str, rest: &str| {
            format!("{restore_verify}{rest}").replace("STEPS", &format!("fault-{case}"))
        };
        let gate = r#"
[[drills.STEPS.steps]]
name = "business-check"
action = "gate"
role = "operator"
timeout = "3s"
[[drills.STEPS.steps]]
name = "switch-over"
action = "command"
command = ["/bin/sh", "-c", "echo switched > \"$LIFEBOAT_DRILL_ROOT/switched\""]
mark = "service"
timeout = "1m"
"#;
        format!(
            r#"
[tiers.TT]
name = "Test tier"
rpo = "24h"
rto-it = "2h"
rto-business = "4h"
copies = 2
media = 1
offsite = 1
immutable = 0
drill-every = "180d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "30d"

[sites.alpha]
name = "alpha"
role = "branch"
region = "shanxi-linfen"
timezone = "Asia/Shanghai"

[sites.dc]
name = "dc"
role = "data-centre"
region = "shanxi-taiyuan"
timezone = "Asia/Shanghai"

[sites.dr]
name = "dr"
role = "standby"
region = "shanxi-datong"
timezone = "Asia/Shanghai"
{repos}{systems}{plans}"#,
            repos = [
                repo("slow-s3", "slow", &self.slow.endpoint()),
                repo("b1-s3", "b1", &self.garage.endpoint),
                repo("b2-s3", "b2", &self.garage.endpoint),
                repo("c-s3", "c", &self.garage.endpoint),
            ]
            .concat(),
            systems = SYSTEMS.map(|(id, offsite)| system(id, offsite)).concat(),
            plans = [
                plan(
                    "a",
                    "The standby agent dies mid-restore",
                    "stop",
                    "\"big\"",
                    &steps("a", "")
                ),
                plan(
                    "b",
                    "A corrupted pack off-site",
                    "continue",
                    "\"b-one\", \"b-two\"",
                    &steps("b", "")
                ),
                plan(
                    "c",
                    "What if alpha had been lost before its last backup",
                    "stop",
                    "\"c-ledger\"",
                    &steps("c", "")
                ),
                plan(
                    "d",
                    "Nobody signs the business check",
                    "stop",
                    "\"b-two\"",
                    &steps("d", gate)
                ),
            ]
            .concat(),
        )
    }
}

/// The complete snapshots of `system` the coordinator knows with a copy at `repository`:
/// (id, capture time), newest first.
fn copied(
    c: &Coordinator,
    token: &str,
    system: &str,
    repository: &str,
) -> Vec<(String, Timestamp)> {
    let (code, body) = c.call(
        "GET",
        &format!("/api/v1/snapshots?system={system}"),
        token,
        &Value::Null,
    );
    if code != 200 {
        return Vec::new();
    }
    body["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["complete"] == true)
        .filter(|s| {
            s["copies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["repository"] == repository)
        })
        .map(|s| (s["id"].as_str().unwrap().to_string(), ts(&s["captured_at"])))
        .collect()
}

fn backup_now(c: &Coordinator, token: &str, system: &str) {
    wait_until(
        Duration::from_secs(30),
        "the coordinator to take a backup-now",
        || {
            let (code, body) = c.call(
                "POST",
                &format!("/api/v1/systems/{system}/backup-now"),
                token,
                &Value::Null,
            );
            assert_eq!(code, 202, "{body}");
            // Not queued while the branch's agent has not enrolled yet.
            body["queued"] == true
        },
    );
}

fn start(c: &Coordinator, token: &str, body: &Value) -> String {
    let (code, body) = c.call("POST", "/api/v1/drills", token, body);
    assert_eq!(code, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// The step log entries of `step` for `system` with `event`.
fn events<'a>(record: &'a Value, step: &str, system: Option<&str>, event: &str) -> Vec<&'a Value> {
    record["step_log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == step && e["event"] == event)
        .filter(|e| system.is_none_or(|s| e["system"] == s))
        .collect()
}

fn result<'a>(record: &'a Value, system: &str) -> &'a Value {
    record["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"]["system"] == system)
        .unwrap_or_else(|| panic!("no result for {system}: {record:#}"))
}

fn marks(record: &Value) -> std::collections::BTreeMap<String, Timestamp> {
    record["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mark"].as_str().unwrap().to_string(), ts(&m["at"])))
        .collect()
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

/// Overwrites the largest pack of the repository under `prefix` in Garage with garbage of the
/// same length; returns its key.
fn corrupt_largest_pack(g: &Garage, prefix: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s3: Arc<dyn ObjectStore> = Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&g.endpoint)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false)
                .with_region(&g.region)
                .with_bucket_name(&g.bucket)
                .with_access_key_id(&g.access_key_id)
                .with_secret_access_key(&g.secret_access_key)
                .build()
                .unwrap(),
        );
        let packs: Vec<_> = s3
            .list(Some(&object_store::path::Path::from(format!(
                "{prefix}/data"
            ))))
            .try_collect()
            .await
            .unwrap();
        let pack = packs.into_iter().max_by_key(|m| m.size).unwrap();
        let garbage = common::XorShift::new(0xbad).bytes(pack.size as usize);
        s3.put(&pack.location, PutPayload::from(garbage))
            .await
            .unwrap();
        pack.location.to_string()
    })
}

#[test]
fn drills_report_a_killed_agent_a_corrupted_pack_a_declared_disaster_and_a_gate_timeout() {
    let clock = Instant::now();
    let garage = Garage::start();
    let slow = SlowLink::start(garage.s3_port, SLOW_LINK_BYTES_PER_SECOND);
    let w = World {
        dir: tempfile::tempdir().unwrap(),
        garage,
        slow,
    };
    for (system, _) in SYSTEMS {
        make_dataset(&w.src(system));
    }
    // Big enough that a restore through the slow link lasts several seconds.
    std::fs::write(
        w.src("big").join("big.bin"),
        common::XorShift::new(42).bytes(24 << 20),
    )
    .unwrap();
    let mut c = Coordinator::configure(w.root(), &w.policy(), "20s");
    c.add_user("olga", "operator", OPERATOR_PASSWORD);
    c.start();
    let operator = c.login("olga", OPERATOR_PASSWORD);
    let env = w.env();
    let mut branch = c.agent(&w.root().join("alpha"), "alpha-fs01", "alpha", &env);
    let standbys: Vec<Running> = ["a", "b", "c", "d"]
        .iter()
        .map(|case| c.agent(&w.standby(case), &format!("dr-{case}"), "dr", &env))
        .collect();

    // Every system backed up once and copied off-site. A system's first backup is due as soon as
    // its agent has the assignment (agent::schedule), so no backup-now here: one queued while
    // that first backup runs would wait for it and make a second snapshot.
    let copied_once = |system: &str, repo: &str| !copied(&c, &operator, system, repo).is_empty();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !SYSTEMS.iter().all(|(s, r)| copied_once(s, r)) {
        assert!(
            Instant::now() < deadline,
            "not every system copied off-site within 90 s; branch log:\n{}",
            agent_log(&w.root().join("alpha"))
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // c-ledger: the disaster to be declared strikes after its first copy and before a second
    // backup, of changed data.
    let first = copied(&c, &operator, "c-ledger", "c-s3");
    assert_eq!(first.len(), 1, "{first:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let disaster = Timestamp::now();
    std::thread::sleep(Duration::from_millis(1100));
    let expected = w.root().join("expected/c-ledger");
    std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(w.src("c-ledger"))
            .arg(&expected)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        w.src("c-ledger").join("docs/notes.md"),
        "# Changed after the disaster\n",
    )
    .unwrap();
    std::fs::write(w.src("c-ledger").join("entered-after.txt"), "too late\n").unwrap();
    backup_now(&c, &operator, "c-ledger");
    wait_until(
        Duration::from_secs(60),
        "c-ledger's second snapshot off-site",
        || copied(&c, &operator, "c-ledger", "c-s3").len() == 2,
    );
    eprintln!("[{:.1?}] backed up and copied", clock.elapsed());
    let both = copied(&c, &operator, "c-ledger", "c-s3");
    let (newer, older) = (&both[0], &both[1]);
    assert_eq!(older, &first[0]);
    assert!(
        older.1 < disaster && disaster < newer.1,
        "{both:?} {disaster}"
    );

    // Alpha is lost: the agent dies, its local repositories and its data burn.
    branch.kill();
    for (system, _) in SYSTEMS {
        std::fs::remove_dir_all(w.root().join(format!("alpha/{system}-repo"))).unwrap();
    }
    std::fs::remove_dir_all(w.root().join("data")).unwrap();
    // One pack of b-one's off-site copy rots.
    let pack = corrupt_largest_pack(&w.garage, "faults/b1");
    eprintln!("[{:.1?}] set up; corrupted {pack}", clock.elapsed());

    let [a, b, cc, d] = <[Running; 4]>::try_from(standbys).ok().unwrap();
    std::thread::scope(|scope| {
        let cases = [
            scope.spawn(|| case_a_standby_killed_mid_restore(&w, &c, &operator, a)),
            scope.spawn(|| case_b_corrupted_pack(&w, &c, &operator, b)),
            scope.spawn(|| {
                case_c_declared_disaster(&w, &c, &operator, cc, disaster, older, newer, &expected)
            }),
            scope.spawn(|| case_d_gate_times_out(&w, &c, &operator, d)),
        ];
        for case in cases {
            if let Err(panic) = case.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    eprintln!("[{:.1?}] four drills sealed", clock.elapsed());

    // The chain of the four records verifies, through the API and the CLI.
    let (code, chain) = c.call("GET", "/api/v1/drills/chain", &operator, &Value::Null);
    assert_eq!(code, 200, "{chain}");
    assert_eq!(
        (&chain["ok"], &chain["records"]),
        (&json!(true), &json!(4)),
        "{chain}"
    );
    let out = c.drill_cli(&["verify-chain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("chain of 4 drill records intact"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let log = c.log();
    for secret in [PASSWORD, w.garage.secret_access_key.as_str()] {
        assert!(!log.contains(secret), "a secret in the coordinator log");
    }
}

/// a: the standby agent killed with SIGKILL while it restores, restarted.
fn case_a_standby_killed_mid_restore(w: &World, c: &Coordinator, token: &str, mut agent: Running) {
    let id = start(c, token, &json!({ "plan": "fault-a" }));
    let target = w.restore_root("a").join(&id).join("big");
    wait_until(
        Duration::from_secs(60),
        "the restore of big to write its first file",
        || has_a_file(&target),
    );
    agent.kill();
    let partial = tree_digest(&target);
    let (_, state) = c.call("GET", &format!("/api/v1/drills/{id}"), token, &Value::Null);
    assert_ne!(
        state["status"], "finished",
        "the restore ended before the kill: {state:#}"
    );

    // Restarted, the agent reports the task interrupted, and does not run it again.
    let dir = w.standby("a");
    let _agent = restart_agent(&dir, &w.env());
    c.wait_sealed(&id, token, Duration::from_secs(60));
    let record = c.record(&id);
    assert_eq!(record["header"]["status"], "stopped", "{record:#}");
    let failed = events(&record, "restore", Some("big"), "failed");
    assert_eq!(failed.len(), 1, "{record:#}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("the agent restarted during the task") && detail.contains("(interrupted)"),
        "{detail}"
    );
    assert!(events(&record, "restore", Some("big"), "succeeded").is_empty());
    // The drill stopped per its plan, and says why.
    let stopped = events(&record, "-", None, "stopped");
    assert_eq!(stopped.len(), 1, "{record:#}");
    assert!(
        stopped[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("big failed at restore: the agent restarted during the task"),
        "{stopped:?}"
    );
    let big = result(&record, "big");
    assert_eq!(big["result"]["verdict"], "fail", "{big:#}");
    assert!(!marks(&record).contains_key("restore-end:big"));
    assert_eq!(record["verdict"], "fail");
    // Nothing ran after the restore failed.
    assert!(events(&record, "verify", Some("big"), "succeeded").is_empty());
    assert!(!w.restore_root("a").join(&id).join("switched").exists());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tree_digest(&target), partial, "the restore ran again");
    let log = agent_log(&dir);
    assert!(
        log.contains(
            "the agent restarted during this drill task; it is reported failed (interrupted)"
        ),
        "{log}"
    );
}

/// b: a corrupted pack in b-one's off-site copy.
fn case_b_corrupted_pack(w: &World, c: &Coordinator, token: &str, agent: Running) {
    let id = start(c, token, &json!({ "plan": "fault-b" }));
    c.wait_sealed(&id, token, Duration::from_secs(90));
    drop(agent);
    let record = c.record(&id);
    // on-failure = "continue": the drill went on with b-two to its end.
    assert_eq!(record["header"]["status"], "completed", "{record:#}");
    let one = result(&record, "b-one");
    assert_eq!(one["result"]["verdict"], "fail", "{one:#}");
    let why = one["result"]["reasons"].to_string();
    assert!(why.contains("(integrity)"), "{why}");
    let failed = events(&record, "restore", Some("b-one"), "failed");
    assert_eq!(failed.len(), 1, "{record:#}");
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with("(integrity)"),
        "{failed:?}"
    );
    assert_eq!(
        events(&record, "verify", Some("b-two"), "succeeded").len(),
        1
    );
    let two = result(&record, "b-two");
    assert_eq!(two["restore_point"]["repository"], "b2-s3");
    assert!(two["bytes_restored"].as_u64().unwrap() > 0);
    assert_eq!(record["verdict"], "fail");
    assert!(
        !w.restore_root("b").join(&id).exists(),
        "the restored data is cleaned up"
    );
}

/// c: a disaster declared between c-ledger's two backups.
#[allow(clippy::too_many_arguments)]
fn case_c_declared_disaster(
    w: &World,
    c: &Coordinator,
    token: &str,
    agent: Running,
    disaster: Timestamp,
    older: &(String, Timestamp),
    newer: &(String, Timestamp),
    expected: &Path,
) {
    // Now, the newer snapshot would be restored; as of the disaster, the older one.
    let (code, preview) = c.call(
        "GET",
        "/api/v1/drill-plans/fault-c/preview",
        token,
        &Value::Null,
    );
    assert_eq!(code, 200, "{preview}");
    assert_eq!(
        preview["systems"][0]["restore_point"]["snapshot"],
        newer.0.as_str()
    );
    // A disaster cannot be declared after the drill's start.
    let future = Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let (code, body) = c.call(
        "POST",
        "/api/v1/drills",
        token,
        &json!({ "plan": "fault-c", "disaster_at": future }),
    );
    assert_eq!(code, 400, "{body}");

    let out = c.drill_cli(&["run", "fault-c", "--disaster-at", &disaster.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    c.wait_sealed(&id, token, Duration::from_secs(90));
    drop(agent);
    let record = c.record(&id);
    assert_eq!(record["header"]["status"], "completed", "{record:#}");
    let show = c.drill_cli(&["show", &id]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("T_disaster declared at"),
        "{}",
        String::from_utf8_lossy(&show.stdout)
    );
    // A restore test shows everything but a business RTO.
    assert_eq!(record["verdict"], "pass-with-conditions", "{record:#}");
    assert_eq!(
        result(&record, "c-ledger")["result"]["reasons"],
        json!(["Business RTO not measured: a restore test does not reopen the service."])
    );

    let declared = ts(&record["scenario"]["declared_disaster"]);
    assert_eq!(declared, disaster);
    let outage = ts(&record["scenario"]["outage"]);
    assert!(declared < outage);
    let marks = marks(&record);
    assert_eq!(marks["disaster"], disaster);
    assert_eq!(marks["outage"], outage);

    let r = result(&record, "c-ledger");
    assert_eq!(r["restore_point"]["snapshot"], older.0.as_str(), "{r:#}");
    assert_eq!(r["restore_point"]["repository"], "c-s3");
    let t_cap = ts(&r["restore_point"]["t_cap"]);
    assert_eq!(t_cap, older.1);
    assert_eq!(
        r["result"]["achieved_rpo_seconds"].as_i64().unwrap(),
        disaster.duration_since(t_cap).as_secs(),
        "{r:#}"
    );
    // The recovery is timed from the drill's start, not from the declared disaster.
    assert_eq!(
        r["result"]["it_rto_seconds"].as_i64().unwrap(),
        marks["system-ready"].duration_since(outage).as_secs(),
        "{r:#}"
    );
    // The newer snapshot was passed over, with why, in the readiness section.
    let readiness = record["readiness"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["subject"] == "restore point of c-ledger")
        .unwrap();
    let detail = readiness["detail"].as_str().unwrap();
    let short: String = newer.0.chars().take(8).collect();
    assert!(
        detail.contains(&format!(
            "newer, passed over: {short}: captured after T_disaster"
        )),
        "{detail}"
    );
    // What was restored is the data as it was at the disaster.
    let restored = w
        .restore_root("c")
        .join(&id)
        .join("c-ledger")
        .join(w.src("c-ledger").strip_prefix("/").unwrap());
    assert_same_tree(expected, &restored);
}

/// d: a gate nobody approves within its 3 s.
fn case_d_gate_times_out(w: &World, c: &Coordinator, token: &str, agent: Running) {
    let id = start(c, token, &json!({ "plan": "fault-d" }));
    c.wait_sealed(&id, token, Duration::from_secs(90));
    drop(agent);
    let record = c.record(&id);
    assert_eq!(record["header"]["status"], "stopped", "{record:#}");
    let timed_out = events(&record, "business-check", None, "timed-out");
    assert_eq!(timed_out.len(), 1, "{record:#}");
    assert_eq!(timed_out[0]["detail"], "gate not approved within 3s");
    assert!(
        record["deviations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "business-check: gate not approved within 3s"),
        "{record:#}"
    );
    let marks = marks(&record);
    assert!(marks.contains_key("system-ready"), "{marks:?}");
    assert!(!marks.contains_key("verify-pass") && !marks.contains_key("service"));
    assert!(events(&record, "switch-over", None, "succeeded").is_empty());
    assert!(
        !w.restore_root("d").join(&id).join("switched").exists(),
        "the switch-over ran"
    );
}
