//! The operator/viewer read API of the real coordinator binary over HTTP, on a throw-away
//! PostgreSQL server: while the test holds the store's `assessment-sweep` lease the coordinator
//! cannot sweep, and its assessment views answer `503 not-ready` with `Retry-After`; once the
//! lease is free it sweeps (every second here) and the views show what an enrolled agent
//! reported: system statuses, detail with reasons, runs paged newest first, the snapshot
//! inventory. `backup-now` is refused to a viewer, refused for a host without agent, and the
//! operator's command reaches the agent in its next heartbeat answer exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::postgres::Postgres;
use common::{free_port, lifeboat, wait_ready, wait_until};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const OPERATOR_PASSWORD: &str = "operator-password-51d2";
const VIEWER_PASSWORD: &str = "viewer-password-0b7e";
const ADMIN_PASSWORD: &str = "admin-password-c3a9";

/// Kills the coordinator when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn add_user(config: &Path, name: &str, role: &str, password: &str) {
    let mut child = lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .args(["user", "add", "--name", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One request; the status, the headers (lowercase names) and the body as JSON.
fn call(port: u16, method: &str, path: &str, bearer: &str, body: &Value) -> (u16, String, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, text) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        code,
        head.to_ascii_lowercase(),
        serde_json::from_str(text).unwrap_or(Value::Null),
    )
}

fn get(port: u16, path: &str, bearer: &str) -> (u16, Value) {
    let (code, _, body) = call(port, "GET", path, bearer, &Value::Null);
    (code, body)
}

fn login(port: u16, name: &str, password: &str) -> String {
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": name, "password": password }),
    );
    assert_eq!(code, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

fn heartbeat(port: u16, agent: &str) -> Value {
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/agents/heartbeat",
        agent,
        &json!({
            "host": "sim-00001",
            "version": "test",
            "sent_at": Timestamp::now(),
            "spool": { "depth": 0 },
        }),
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// A backup of `system` captured `ago` before now, at `repos` (each with the outcome).
fn backup(system: &str, id: &str, ago: SignedDuration, ok: bool, repos: &[&str]) -> Value {
    let captured = Timestamp::now() - ago;
    let done = captured + SignedDuration::from_mins(5);
    let outcome = if ok { "success" } else { "failed" };
    let repositories: Vec<Value> = repos
        .iter()
        .map(|r| {
            let mut v = json!({
                "repository": r,
                "location": if *r == "sim-local" { "local" } else { "remote" },
                "immutable": *r == "sim-vault",
                "outcome": outcome,
                "bytes_added": 1,
                "seconds": 1.0,
            });
            if ok {
                v["available_at"] = json!(done);
                v["snapshots"] = json!([format!("snap-{id}")]);
            } else {
                v["error"] = json!({ "kind": "storage", "message": "disk full" });
            }
            v
        })
        .collect();
    let mut record = json!({
        "run_id": id,
        "kind": "backup",
        "system": system,
        "host": "sim-00001",
        "started_at": captured,
        "finished_at": done,
        "capture_time": captured,
        "repositories": repositories,
        "outcome": outcome,
        "lifeboat_version": "test",
    });
    if ok {
        record["snapshot_id"] = json!(format!("snap-{id}"));
    }
    record
}

fn statuses(systems: &Value) -> Vec<(String, String)> {
    systems["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["scenarios"][1]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_read_api_shows_the_swept_fleet_and_backup_now_reaches_the_agent_once() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let out = lifeboat()
        .args(["fleet-sim", "policy", "--agents", "2"])
        .args(["--systems-per-agent", "3", "--out"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pg = Postgres::start();
    let port = free_port();
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{}\"\npolicy-dir = \"{}\"\nsweep-every = \"1s\"\n",
            pg.url(),
            policies.display()
        ),
    )
    .unwrap();
    add_user(&config, "olga", "operator", OPERATOR_PASSWORD);
    add_user(&config, "vic", "viewer", VIEWER_PASSWORD);
    add_user(&config, "ada", "admin", ADMIN_PASSWORD);

    // Hold the sweep lease, as another replica would: this coordinator cannot sweep yet.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lease = rt.block_on(async {
        let store = lifeboat::coordinator::store::Store::open(&pg.url())
            .await
            .unwrap();
        store
            .try_acquire_lease("assessment-sweep")
            .await
            .unwrap()
            .expect("the lease is free before the coordinator starts")
    });

    let log = std::fs::File::create(dir.path().join("coordinator.log")).unwrap();
    let _coordinator = Running(
        lifeboat()
            .args(["coordinator", "--log", "info", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_ready(port);
    let op = login(port, "olga", OPERATOR_PASSWORD);
    let viewer = login(port, "vic", VIEWER_PASSWORD);
    let admin = login(port, "ada", ADMIN_PASSWORD);

    // Before the first sweep of this replica: 503 not-ready with Retry-After, and why.
    for path in [
        "/api/v1/fleet",
        "/api/v1/sites",
        "/api/v1/systems",
        "/api/v1/systems/sim-00001-s1",
        "/api/v1/assessments",
    ] {
        let (code, head, body) = call(port, "GET", path, &viewer, &Value::Null);
        assert_eq!(code, 503, "{path}: {body}");
        assert_eq!(body["error"], "not-ready", "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("sweep"),
            "{body}"
        );
        assert!(head.contains("\r\nretry-after: "), "{path}: {head}");
    }
    // What needs no sweep answers already; an unknown system is a 404 with a reason.
    let (code, body) = get(port, "/api/v1/systems/no-such-system", &viewer);
    assert_eq!((code, body["error"].as_str()), (404, Some("not-found")));
    assert!(body["message"].as_str().unwrap().contains("no-such-system"));
    let (code, body) = get(port, "/api/v1/repositories", &viewer);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 3);
    let text = body.to_string();
    assert!(!text.contains("/etc/lifeboat/"), "no secret source: {text}");
    assert!(text.contains("\"password_source\":\"file\""), "{text}");
    let (code, _) = get(port, "/api/v1/policy", &viewer);
    assert_eq!(code, 403, "the policy is an operator's read");
    let (code, body) = get(port, "/api/v1/policy", &op);
    assert_eq!((code, body["systems"].as_u64()), (200, Some(6)), "{body}");
    assert!(body["loaded_at"].is_string(), "{body}");
    assert!(
        body["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "tiers.toml" && f["sha256"].as_str().unwrap().len() == 64),
        "{body}"
    );

    // An agent for sim-00001 enrols, reports in and sends its run records.
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/enrolment-tokens",
        &op,
        &json!({ "host": "sim-00001", "site": "sim-branch" }),
    );
    assert_eq!(code, 201, "{body}");
    let enrolment = body["token"].as_str().unwrap().to_string();
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/agents/enrol",
        "",
        &json!({ "enrolment_token": enrolment, "host": "sim-00001", "site": "sim-branch", "version": "test" }),
    );
    assert_eq!(code, 200, "{body}");
    let agent = body["agent_token"].as_str().unwrap().to_string();
    assert_eq!(heartbeat(port, &agent)["commands"], json!([]));
    let hours = SignedDuration::from_hours;
    let records = [
        // s1 (T1, 4 h): an hour ago, at every repository of its chain.
        backup(
            "sim-00001-s1",
            "r1",
            hours(1),
            true,
            &["sim-local", "sim-offsite", "sim-vault"],
        ),
        // s2 (T2, 24 h): local only, so nothing counts for a site loss.
        backup("sim-00001-s2", "r2", hours(2), true, &["sim-local"]),
        backup("sim-00001-s2", "r3", hours(3), true, &["sim-local"]),
        // s3 (T3): the one backup failed.
        backup("sim-00001-s3", "r4", hours(4), false, &["sim-local"]),
    ];
    let batch: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| json!({ "key": r["run_id"], "seq": i + 1, "system": r["system"], "record": r }))
        .collect();
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/agents/runs",
        &agent,
        &json!({ "records": batch }),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["accepted"].as_array().unwrap().len(), 4, "{body}");

    // Runs need no sweep: newest first (by start), keyset-paged, filtered.
    let (code, page1) = get(port, "/api/v1/runs?limit=3", &viewer);
    assert_eq!(code, 200, "{page1}");
    let ids = |page: &Value| -> Vec<String> {
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record"]["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&page1), ["r1", "r2", "r3"]);
    let after = page1["next_after"].as_i64().expect("a next page");
    let (_, page2) = get(
        port,
        &format!("/api/v1/runs?limit=3&after={after}"),
        &viewer,
    );
    assert_eq!(ids(&page2), ["r4"]);
    assert_eq!(page2["next_after"], Value::Null);
    let (_, failed) = get(
        port,
        "/api/v1/runs?outcome=failed&kind=backup&host=sim-00001",
        &viewer,
    );
    assert_eq!(ids(&failed), ["r4"]);
    let (_, s2) = get(port, "/api/v1/runs?system=sim-00001-s2", &viewer);
    assert_eq!(ids(&s2), ["r2", "r3"]);
    let (code, body) = get(port, "/api/v1/runs?kind=nonsense", &viewer);
    assert_eq!((code, body["error"].as_str()), (400, Some("bad-request")));

    // The snapshot inventory is built from the stored records, sweep or not.
    let (code, body) = get(port, "/api/v1/snapshots?system=sim-00001-s1", &viewer);
    assert_eq!(code, 200, "{body}");
    let snaps = body["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{body}");
    assert_eq!(snaps[0]["id"], "snap-r1");
    assert_eq!(snaps[0]["complete"], true);
    assert_eq!(snaps[0]["verified"], false, "no check has run");
    let at: Vec<&str> = snaps[0]["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["repository"].as_str().unwrap())
        .collect();
    assert_eq!(at, ["sim-local", "sim-offsite", "sim-vault"]);
    let (_, body) = get(port, "/api/v1/snapshots?system=sim-00001-s3", &viewer);
    assert_eq!(body["snapshots"], json!([]), "{body}");
    let local = &body["repositories"][0];
    assert_eq!(
        (
            &local["repository"],
            &local["failing"],
            &local["last_failure"]
        ),
        (&json!("sim-local"), &json!(true), &json!("disk full")),
        "{body}"
    );
    let (code, _) = get(port, "/api/v1/snapshots", &viewer);
    assert_eq!(code, 400, "the system is required");
    let (code, _) = get(port, "/api/v1/snapshots?system=nope", &viewer);
    assert_eq!(code, 404);

    // The other replica goes away: this one takes the lease and sweeps.
    drop(lease);
    let mut systems = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "a sweep that has seen the records",
        || {
            let (code, body) = get(port, "/api/v1/systems", &viewer);
            systems = body;
            code == 200 && systems["systems"][0]["scenarios"][1]["status"] == "compliant"
        },
    );
    let want: Vec<(String, String)> = [
        ("sim-00001-s1", "compliant"),
        ("sim-00001-s2", "breached"),
        ("sim-00001-s3", "no-evidence"),
        ("sim-00002-s1", "no-evidence"),
        ("sim-00002-s2", "no-evidence"),
        ("sim-00002-s3", "no-evidence"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses(&systems), want, "{systems}");
    let s1 = &systems["systems"][0];
    assert_eq!(
        (&s1["tier"], &s1["host"]),
        (&json!("T1"), &json!("sim-00001"))
    );
    let exposure = s1["scenarios"][1]["exposure_seconds"].as_i64().unwrap();
    assert!((3_500..4_000).contains(&exposure), "{s1}");
    assert!(s1["scenarios"][1]["breach_at"].is_string(), "{s1}");
    let (_, breached) = get(
        port,
        "/api/v1/systems?status=breached&scenario=site-loss",
        &viewer,
    );
    assert_eq!(statuses(&breached), [want[1].clone()]);
    let (_, t1) = get(port, "/api/v1/systems?tier=T1&limit=1", &viewer);
    assert_eq!(statuses(&t1), [want[0].clone()]);
    assert_eq!(t1["next_after"], "sim-00001-s1");
    let (_, t1_next) = get(
        port,
        "/api/v1/systems?tier=T1&limit=1&after=sim-00001-s1",
        &viewer,
    );
    assert_eq!(statuses(&t1_next), [want[3].clone()]);

    // The detail of s2 explains its breach, with the agent's health and its runs.
    let (code, s2) = get(port, "/api/v1/systems/sim-00001-s2", &viewer);
    assert_eq!(code, 200, "{s2}");
    let site_loss = &s2["assessment"]["scenarios"][1];
    assert_eq!(site_loss["scenario"], "site-loss");
    assert_eq!(site_loss["status"], "breached");
    let reasons: Vec<&str> = site_loss["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("counts for site-loss")),
        "{reasons:?}"
    );
    assert!(
        site_loss["reasons"][0]["detail"]["reason"].is_string(),
        "{s2}"
    );
    assert_eq!(s2["assessment"]["rule"]["conformant"], false);
    assert_eq!(
        s2["assessment"]["rule"]["digits"].as_array().unwrap().len(),
        5
    );
    assert_eq!(s2["assessment"]["integrity"].as_array().unwrap().len(), 3);
    assert_eq!(s2["agent"]["status"], "online", "{s2}");
    assert_eq!(s2["policy"]["repositories"][0]["id"], "sim-local");
    assert_eq!(s2["policy"]["schedules"][0]["job"], "backup");
    let runs: Vec<&str> = s2["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["r2", "r3"]);

    // Fleet, sites and the flat assessments agree.
    let (_, fleet) = get(port, "/api/v1/fleet", &viewer);
    assert_eq!(
        (&fleet["systems"], &fleet["agents"]),
        (&json!(6), &json!(1))
    );
    assert_eq!(
        fleet["compliance"][1]["tiers"]["T2"]["breached"], 1,
        "{fleet}"
    );
    let (_, sites) = get(port, "/api/v1/sites", &viewer);
    let branch = sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "sim-branch")
        .unwrap();
    assert_eq!(
        (
            &branch["systems"],
            &branch["agents_online"],
            &branch["hosts_without_agent"]
        ),
        (&json!(6), &json!(1), &json!(1)),
        "{sites}"
    );
    let (_, flat) = get(
        port,
        "/api/v1/assessments?scenario=site-loss&status=breached",
        &viewer,
    );
    let rows = flat["assessments"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{flat}");
    assert_eq!(
        (&rows[0]["system"], &rows[0]["status"]),
        (&json!("sim-00001-s2"), &json!("breached"))
    );

    // backup-now: an operator's act, audited; the agent gets it in one heartbeat answer only.
    let none = Value::Null;
    let (code, _, _) = call(
        port,
        "POST",
        "/api/v1/systems/sim-00001-s1/backup-now",
        &viewer,
        &none,
    );
    assert_eq!(code, 403);
    let (code, _, body) = call(port, "POST", "/api/v1/systems/nope/backup-now", &op, &none);
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/systems/sim-00002-s1/backup-now",
        &op,
        &none,
    );
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("sim-00002"),
        "{body}"
    );
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/systems/sim-00001-s1/backup-now",
        &op,
        &none,
    );
    assert_eq!((code, &body["queued"]), (202, &json!(true)), "{body}");
    let (code, _, body) = call(
        port,
        "POST",
        "/api/v1/systems/sim-00001-s1/backup-now",
        &op,
        &none,
    );
    assert_eq!(
        (code, &body["queued"]),
        (202, &json!(false)),
        "waits once: {body}"
    );
    assert_eq!(
        heartbeat(port, &agent)["commands"],
        json!([{ "command": "backup-now", "system": "sim-00001-s1" }])
    );
    assert_eq!(
        heartbeat(port, &agent)["commands"],
        json!([]),
        "delivered once"
    );
    let (code, audit) = get(port, "/api/v1/audit?action=system.backup-now", &admin);
    assert_eq!(code, 200, "{audit}");
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == "user:olga"
                && e["target"].as_str().unwrap().starts_with("system:")),
        "{audit}"
    );
}
