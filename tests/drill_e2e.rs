//! A site-loss drill end to end, with real components only: the coordinator (SQLite), three
//! agents as separate processes with their own directories — two branches (Linfen, Yuncheng)
//! and the standby site (Datong) — local repositories at the branches and an off-site
//! repository on Garage (S3 on loopback).
//!
//! The branches back up and copy off-site on their schedules and report to the coordinator.
//! Then Linfen is lost: its agent is killed with SIGKILL, its local repository and its source
//! data are deleted. An operator starts the drill through the API; the standby agent probes,
//! restores Linfen's systems in dependency order from the off-site copy, verifies them against
//! their content hashes and runs the plan's health check; the operator approves the business
//! check; the switch-over command runs. The test asserts the restored trees equal the captured
//! data, the timeline is complete, achieved RPO and RTO follow from the timeline and the capture
//! times, the local copy was never used, and the sealed record chains and verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::drill::{Running, coordinator_cli, ts, write_agent_config};
use common::{
    Garage, assert_same_tree, free_port, http, lifeboat, make_dataset, wait_ready, wait_until,
};
use jiff::Timestamp;
use serde_json::{Value, json};

const PASSWORD: &str = "drill-e2e-repo-password-5f2a";
const OPERATOR_PASSWORD: &str = "operator-password-long-enough";

struct World {
    dir: tempfile::TempDir,
    garage: Garage,
    port: u16,
}

impl World {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.root().join("coordinator/coordinator.toml")
    }

    fn src(&self, system: &str) -> PathBuf {
        self.root().join("data").join(system)
    }

    fn policy(&self) -> String {
        let g = &self.garage;
        let root = self.root().display();
        let sites = [
            ("linfen", "branch", "shanxi-linfen"),
            ("yuncheng", "branch", "shanxi-yuncheng"),
            ("shanxi-dc", "data-centre", "shanxi-taiyuan"),
            ("datong-dr", "standby", "shanxi-datong"),
        ]
        .iter()
        .map(|(id, role, region)| {
            format!(
                "[sites.{id}]\nname = \"{id}\"\nrole = \"{role}\"\nregion = \"{region}\"\ntimezone = \"Asia/Shanghai\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
        let system = |id: &str, site: &str, host: &str, local: &str, deps: &str| {
            format!(
                r#"
[systems.{id}]
name = "{id}"
department = "finance"
site = "{site}"
host = "{host}"
tier = "TT"
paths = ["{src}"]
repositories = ["{local}", "dc-s3"]
depends-on = [{deps}]
schedules = [
    {{ job = "backup", cron = "*/6 * * * * *" }},
    {{ job = "copy", cron = "3/6 * * * * *" }},
    {{ job = "check", cron = "0 0 3 * * *" }},
    {{ job = "read-data", cron = "0 0 4 * * *" }},
    {{ job = "forget", cron = "0 0 5 * * *" }},
]
retention = {{ keep-last = 50 }}
"#,
                src = self.src(id).display()
            )
        };
        format!(
            r#"
[tiers.TT]
name = "Test tier"
rpo = "1h"
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

{sites}

[repositories.linfen-local]
site = "linfen"
url = "{root}/linfen/repo"
location = "local"
password = {{ env = "TEST_REPO_PASSWORD" }}

[repositories.yuncheng-local]
site = "yuncheng"
url = "{root}/yuncheng/repo"
location = "local"
password = {{ env = "TEST_REPO_PASSWORD" }}

[repositories.dc-s3]
site = "shanxi-dc"
url = "s3://{bucket}/drill-e2e"
location = "remote"
endpoint = "{endpoint}"
allow-http = true
region = "us-east-1"
access-key-id = {{ env = "TEST_S3_KEY_ID" }}
secret-access-key = {{ env = "TEST_S3_SECRET" }}
password = {{ env = "TEST_REPO_PASSWORD" }}
request-timeout = "30s"
max-retries = 2
{ledger}{finance}{yc}
[drills.linfen-site-loss]
title = "Linfen branch lost: switch over to Datong"
type = "targeted-switchover"
[drills.linfen-site-loss.scenario]
kind = "site-loss"
lost-site = "linfen"
[drills.linfen-site-loss.scope]
sites = ["linfen"]
[drills.linfen-site-loss.standby]
site = "datong-dr"
host = "dr-01"
restore-root = "{root}/datong/restore"
parallelism = 2
keep-restored = true
[[drills.linfen-site-loss.steps]]
name = "restore"
action = "restore"
timeout = "10m"
[[drills.linfen-site-loss.steps]]
name = "verify"
action = "verify"
timeout = "10m"
[[drills.linfen-site-loss.steps]]
name = "health-check"
action = "command"
per-system = true
command = ["/bin/sh", "-c", "test -d \"$LIFEBOAT_RESTORE_DIR\" && echo \"$LIFEBOAT_SYSTEM up\""]
mark = "system-ready"
timeout = "1m"
[[drills.linfen-site-loss.steps]]
name = "business-check"
action = "gate"
role = "operator"
approver = "finance business owner"
timeout = "10m"
[[drills.linfen-site-loss.steps]]
name = "switch-over"
action = "command"
command = ["/bin/sh", "-c", "echo switched > \"$LIFEBOAT_DRILL_ROOT/switched\""]
mark = "service"
timeout = "1m"
"#,
            bucket = g.bucket,
            endpoint = g.endpoint,
            ledger = system("linfen-ledger", "linfen", "linfen-fs01", "linfen-local", ""),
            finance = system(
                "linfen-finance",
                "linfen",
                "linfen-fs01",
                "linfen-local",
                "\"linfen-ledger\""
            ),
            yc = system(
                "yuncheng-finance",
                "yuncheng",
                "yuncheng-fs01",
                "yuncheng-local",
                ""
            ),
        )
    }

    fn coordinator(&self, args: &[&str], stdin: &str) -> String {
        coordinator_cli(&self.config(), args, stdin)
    }

    /// Writes the agent's config with a fresh enrolment token and starts it.
    fn agent(&self, name: &str, host: &str, site: &str) -> Running {
        let dir = self.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let token = self.coordinator(&["enrol-token", "--host", host, "--site", site], "");
        write_agent_config(&dir, host, site, self.port);
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = lifeboat()
            .args([
                "agent",
                "--config",
                dir.join("agent.toml").to_str().unwrap(),
            ])
            .args(["--log", "info"])
            .env("TEST_ENROL_TOKEN", token)
            .env("TEST_REPO_PASSWORD", PASSWORD)
            .env("TEST_S3_KEY_ID", &self.garage.access_key_id)
            .env("TEST_S3_SECRET", &self.garage.secret_access_key)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Running(child)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root().join(name).join("agent.log")).unwrap_or_default()
    }

    fn call(&self, method: &str, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (code, text) = http(self.port, method, path, token, &body);
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Successful runs of `kind` of `system` stored by the coordinator.
fn runs(w: &World, token: &str, system: &str, kind: &str) -> Vec<Value> {
    let (code, body) = w.call(
        "GET",
        &format!("/api/v1/runs?system={system}&kind={kind}&outcome=success&limit=100"),
        token,
        &Value::Null,
    );
    assert_eq!(code, 200, "{body}");
    body["runs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_lost_branch_is_restored_at_the_standby_site_from_the_off_site_copy_only() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let w = World {
        dir,
        garage,
        port: free_port(),
    };
    for system in ["linfen-ledger", "linfen-finance", "yuncheng-finance"] {
        make_dataset(&w.src(system));
    }
    let coord = w.root().join("coordinator");
    std::fs::create_dir_all(coord.join("policies")).unwrap();
    std::fs::write(coord.join("policies/policy.toml"), w.policy()).unwrap();
    std::fs::write(
        w.config(),
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{db}\"\npolicy-dir = \"{policies}\"\nsweep-every = \"2s\"\n\n[drills]\ntick-every = \"1s\"\nagent-lost-after = \"20s\"\n",
            port = w.port,
            db = coord.join("coordinator.db").display(),
            policies = coord.join("policies").display(),
        ),
    )
    .unwrap();
    let check = lifeboat()
        .args(["policy", "check", coord.join("policies").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The off-site repository is shared by both branches: it is created once, up front, as an
    // operator does (two hosts creating it at the same moment race on its `config`; see the
    // README's invariants).
    let init = lifeboat()
        .args(["init", "--repo", "dc-s3", "--no-progress"])
        .env("LIFEBOAT_POLICY", coord.join("policies"))
        .env("LIFEBOAT_STATE_DIR", w.root().join("operator-state"))
        .env("TEST_REPO_PASSWORD", PASSWORD)
        .env("TEST_S3_KEY_ID", &w.garage.access_key_id)
        .env("TEST_S3_SECRET", &w.garage.secret_access_key)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    w.coordinator(
        &["user", "add", "--name", "olga", "--role", "operator"],
        OPERATOR_PASSWORD,
    );
    w.coordinator(
        &["user", "add", "--name", "vera", "--role", "viewer"],
        OPERATOR_PASSWORD,
    );
    let log = std::fs::File::create(coord.join("coordinator.log")).unwrap();
    let _coordinator = Running(
        lifeboat()
            .args([
                "coordinator",
                "--config",
                w.config().to_str().unwrap(),
                "--log",
                "info",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_ready(w.port);
    let login = |name: &str| {
        let (code, body) = w.call(
            "POST",
            "/api/v1/login",
            "",
            &json!({ "name": name, "password": OPERATOR_PASSWORD }),
        );
        assert_eq!(code, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let operator = login("olga");
    let viewer = login("vera");

    let mut linfen = w.agent("linfen", "linfen-fs01", "linfen");
    let _yuncheng = w.agent("yuncheng", "yuncheng-fs01", "yuncheng");
    let standby = w.agent("datong", "dr-01", "datong-dr");

    // Both Linfen systems backed up and copied off-site, as reported to the coordinator.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !["linfen-ledger", "linfen-finance"]
        .iter()
        .all(|s| !runs(&w, &operator, s, "copy").is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no off-site copies of Linfen's systems within 120 s; Linfen's agent log:\n{}",
            w.log("linfen")
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Linfen is lost: the agent dies, the local repository and the data burn.
    linfen.0.kill().unwrap();
    linfen.0.wait().unwrap();
    let expected = w.root().join("expected");
    std::fs::create_dir_all(&expected).unwrap();
    for system in ["linfen-ledger", "linfen-finance"] {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(w.src(system))
            .arg(expected.join(system))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_dir_all(w.src(system)).unwrap();
    }
    std::fs::remove_dir_all(w.root().join("linfen/repo")).unwrap();

    // A viewer may not start a drill; an operator may.
    let start = json!({ "plan": "linfen-site-loss" });
    let (code, _) = w.call("POST", "/api/v1/drills", &viewer, &start);
    assert_eq!(code, 403);
    let (code, body) = w.call("POST", "/api/v1/drills", &operator, &start);
    assert_eq!(code, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let drill = |token: &str| {
        let (code, body) = w.call("GET", &format!("/api/v1/drills/{id}"), token, &Value::Null);
        assert_eq!(code, 200, "{body}");
        body
    };

    // The drill restores, verifies, checks health, then waits at the business-check gate.
    let mut last;
    let waiting = |d: &Value| {
        d["run"]["steps"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "business-check" && s["awaiting_approval"] == true)
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        last = drill(&viewer);
        if waiting(&last) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && last["status"] != "finished",
            "the drill did not reach its gate: {last:#}\nstandby log:\n{}",
            w.log("datong")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The gate is for operators: a viewer's approval is refused.
    let approve = json!({ "step": "business-check", "comment": "ledger balances match" });
    let (code, _) = w.call(
        "POST",
        &format!("/api/v1/drills/{id}/approve"),
        &viewer,
        &approve,
    );
    assert_eq!(code, 403);
    let (code, body) = w.call(
        "POST",
        &format!("/api/v1/drills/{id}/approve"),
        &operator,
        &approve,
    );
    assert_eq!(code, 202, "{body}");
    wait_until(
        Duration::from_secs(120),
        "the drill's record to be sealed",
        || {
            let (code, _) = w.call(
                "GET",
                &format!("/api/v1/drills/{id}/record"),
                &viewer,
                &Value::Null,
            );
            code == 200
        },
    );
    let (_, record) = w.call(
        "GET",
        &format!("/api/v1/drills/{id}/record"),
        &viewer,
        &Value::Null,
    );
    drop(standby);

    // The restored trees equal the data as it was captured.
    let restore_root = w.root().join("datong/restore").join(&id);
    for system in ["linfen-ledger", "linfen-finance"] {
        let restored = restore_root
            .join(system)
            .join(w.src(system).strip_prefix("/").unwrap());
        assert_same_tree(&expected.join(system), &restored);
    }
    assert!(
        restore_root.join("switched").exists(),
        "the switch-over command ran"
    );

    // The record: completed, both systems restored from the off-site copy, never the local one.
    assert_eq!(record["header"]["status"], "completed", "{record:#}");
    let results = record["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{record:#}");
    let outage = ts(&record["scenario"]["outage"]);
    let marks: std::collections::BTreeMap<String, Timestamp> = record["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mark"].as_str().unwrap().to_string(), ts(&m["at"])))
        .collect();
    for mark in [
        "outage",
        "restore-start:linfen-ledger",
        "restore-end:linfen-ledger",
        "restore-start:linfen-finance",
        "restore-end:linfen-finance",
        "system-ready",
        "verify-pass",
        "service",
    ] {
        assert!(marks.contains_key(mark), "timeline lacks {mark}: {marks:?}");
    }
    // Dependency order: the ledger was restored before finance started.
    assert!(marks["restore-end:linfen-ledger"] <= marks["restore-start:linfen-finance"]);
    for r in results {
        let point = &r["restore_point"];
        assert_eq!(point["repository"], "dc-s3", "{r:#}");
        assert_eq!(point["location"], "remote");
        assert!(
            ts(&point["t_avail"]) <= outage,
            "restored a copy made after T_outage"
        );
        let t_cap = ts(&point["t_cap"]);
        let rpo = r["result"]["achieved_rpo_seconds"].as_i64().unwrap();
        assert_eq!(rpo, outage.duration_since(t_cap).as_secs(), "{r:#}");
        assert!(rpo < 3600, "within the tier's 1 h RPO");
        let it_rto = r["result"]["it_rto_seconds"].as_i64().unwrap();
        assert_eq!(
            it_rto,
            marks["system-ready"].duration_since(outage).as_secs(),
            "{r:#}"
        );
        let business = r["result"]["business_rto_seconds"].as_i64().unwrap();
        assert_eq!(
            business,
            marks["service"].duration_since(outage).as_secs(),
            "{r:#}"
        );
        assert_eq!(r["result"]["verdict"], "pass", "{r:#}");
        assert!(r["bytes_restored"].as_u64().unwrap() > 0);
    }
    assert_eq!(record["verdict"], "pass", "{record:#}");
    // What the standby agent reports it restored from (not only what was planned): the
    // off-site copy, twice, never the local one.
    let restored_from: Vec<&str> = record["step_log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == "restore" && e["event"] == "succeeded")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(restored_from.len(), 2, "{restored_from:?}");
    assert!(
        restored_from.iter().all(|d| d.contains(" from dc-s3 ")),
        "the local copy was used: {restored_from:?}"
    );

    // The chain of records verifies.
    let (code, chain) = w.call("GET", "/api/v1/drills/chain", &viewer, &Value::Null);
    assert_eq!(code, 200, "{chain}");
    assert_eq!(chain["ok"], true, "{chain}");
    assert_eq!(chain["records"], 1);
}
