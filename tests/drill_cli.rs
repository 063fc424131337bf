//! `lifeboat drill …` with the real binary on a SQLite coordinator database that the binary
//! creates in a tempdir, with the repository's `policies/` (its drill plans included):
//!
//! * on an empty history, `drill plan` shows every system in scope in restore order without a
//!   restore point, and exits 0 (it is a preview); with backups recorded, it picks the newest
//!   copy the scenario allows and says why a newer one is passed over;
//! * `drill run` schedules one drill per plan (a second is refused with exit 10), `drill list`
//!   and `drill show` show it, `drill approve` is refused while no gate waits, `drill abort`
//!   appends an abort input; each change is audited as `cli:<login>`;
//! * `drill verify-chain` on an empty chain and on a chain sealed through the library
//!   (`Store::seal_drill_with` + `record::seal`), and after the record text of a sealed drill
//!   is altered in the database (its trigger dropped first: that is the attack) it exits 6
//!   naming the drill;
//! * with a running coordinator, `drill run --wait` follows a drill to its sealed record (no
//!   backup recorded: not ready, exit 1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, lifeboat, wait_ready};
use jiff::{SignedDuration, Timestamp};
use lifeboat::coordinator::drills::Requested;
use lifeboat::coordinator::store::{
    AuditFilter, DrillChange, DrillStatus, Enrolment, EnrolmentToken, NewAgent, NewDrill, Page,
    SealedRecord, Store, StoreError, TokenHash,
};
use lifeboat::drill::build;
use lifeboat::drill::machine::{DrillRun, StartInput};
use lifeboat::drill::record;
use lifeboat::run::{Outcome, RepoResult, RunKind, RunRecord, SourceStats};
use lifeboat::secret::Secret;
use serde_json::Value;
use uuid::Uuid;

/// A coordinator's files in a tempdir: coordinator.toml, its SQLite database, a copy of the
/// repository's policies.
struct Coordinator {
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    policies: PathBuf,
    port: u16,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn coordinator() -> Coordinator {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &policies,
    );
    assert!(policies.join("drills").is_dir(), "policies/drills/ missing");
    let db = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n",
            db.display(),
            policies.display()
        ),
    )
    .unwrap();
    Coordinator {
        _dir: dir,
        config,
        db,
        policies,
        port,
    }
}

impl Coordinator {
    fn url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    /// `lifeboat drill ARGS --config coordinator.toml`, run by the login `tester`.
    fn drill(&self, args: &[&str]) -> Output {
        lifeboat()
            .arg("drill")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("USER", "tester")
            .output()
            .unwrap()
    }

    /// Like [`Coordinator::drill`], and the exit code must be `code`.
    fn drill_code(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.drill(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "lifeboat drill {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        (stdout, stderr)
    }

    fn drill_json(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (stdout, _) = self.drill_code(code, &all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn plan_run_list_approve_and_abort_on_an_empty_history() {
    let c = coordinator();

    // A preview on an empty history: every system in scope, in restore order (tier, then
    // dependencies), none with a restore point, and why. Exit 0: it is a preview.
    let (text, _) = c.drill_code(0, &["plan", "linfen-site-loss"]);
    assert!(text.contains("NO RESTORE POINT"), "{text}");
    assert!(
        text.contains("No backup of linfen-finance has been recorded"),
        "{text}"
    );
    assert!(text.contains("nothing was started or written"), "{text}");
    let preview = c.drill_json(0, &["plan", "linfen-site-loss"]);
    let systems: Vec<&str> = preview["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["system"].as_str().unwrap())
        .collect();
    assert_eq!(
        systems,
        ["linfen-finance", "linfen-credit", "linfen-operations"]
    );
    for s in preview["systems"].as_array().unwrap() {
        assert!(s["selection"]["chosen"].is_null(), "{s}");
        assert!(!s["selection"]["reasons"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        preview["systems"][1]["prerequisites"],
        serde_json::json!(["linfen-finance"])
    );
    let (_, err) = c.drill_code(7, &["plan", "no-such-plan"]);
    assert!(
        err.contains("no drill plan no-such-plan") && err.contains("linfen-site-loss"),
        "{err}"
    );

    // Nothing is sealed yet.
    let (text, _) = c.drill_code(0, &["verify-chain"]);
    assert_eq!(
        text.trim(),
        format!("chain of 0 drill records intact (head {})", "0".repeat(64))
    );

    // Ask for a drill: its id on stdout, a scheduled row.
    let (text, _) = c.drill_code(0, &["run", "linfen-site-loss"]);
    let id: Uuid = text.trim().parse().unwrap();
    let list = c.drill_json(0, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id.to_string());
    assert_eq!(list[0]["plan"], "linfen-site-loss");
    assert_eq!(list[0]["status"], "scheduled");
    assert_eq!(list[0]["created_by"], "cli:tester");
    let (text, _) = c.drill_code(0, &["list"]);
    assert!(
        text.contains(&id.to_string()) && text.contains("scheduled"),
        "{text}"
    );

    // One drill of a plan at a time; another plan is fine.
    let (_, err) = c.drill_code(10, &["run", "linfen-site-loss"]);
    assert!(err.contains(&id.to_string()), "{err}");
    let other = c.drill_json(0, &["run", "yuncheng-restore-test"]);
    assert_eq!(other["status"], "scheduled");
    assert_eq!(
        c.drill_json(0, &["list", "--plan", "linfen-site-loss"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Shown by a prefix of its id.
    let prefix = &id.to_string()[..8];
    let (text, _) = c.drill_code(0, &["show", prefix]);
    assert!(text.contains("status scheduled"), "{text}");
    assert!(text.contains("not started yet"), "{text}");

    // No gate waits before the drill runs; unknown drills are not found.
    let (_, err) = c.drill_code(10, &["approve", prefix, "declare"]);
    assert!(err.contains("scheduled"), "{err}");
    c.drill_code(7, &["show", &Uuid::new_v4().to_string()]);
    c.drill_code(7, &["abort", &Uuid::new_v4().to_string()]);
    c.drill_code(2, &["show", "xyz"]);
    // A record only once sealed.
    let (_, err) = c.drill_code(7, &["record", prefix]);
    assert!(err.contains("no sealed record yet"), "{err}");

    // Abort: an input the orchestrator applies, shown as asked for.
    let (text, _) = c.drill_code(0, &["abort", prefix, "--reason", "standby host needed"]);
    assert!(
        text.contains("aborted at the coordinator's next tick"),
        "{text}"
    );
    let (text, _) = c.drill_code(0, &["show", prefix]);
    assert!(
        text.contains("abort by cli:tester") && text.contains("standby host needed"),
        "{text}"
    );
    let shown = c.drill_json(0, &["show", prefix]);
    assert_eq!(shown["pending_inputs"][0]["kind"], "abort");

    // In the store: the input for the orchestrator, and the audit log of every change.
    let rt = runtime();
    rt.block_on(async {
        let store = Store::open(&c.url()).await.unwrap();
        let inputs = store.drill_inputs_after(Some(id), 0, 10).await.unwrap();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].kind, "abort");
        assert_eq!(inputs[0].actor, "cli:tester");
        assert_eq!(inputs[0].detail["reason"], "standby host needed");
        let audit = store
            .list_audit(
                &AuditFilter {
                    target: Some(format!("drill:{id}")),
                    ..AuditFilter::default()
                },
                Page::first(10),
            )
            .await
            .unwrap();
        let mut actions: Vec<(&str, &str)> = audit
            .iter()
            .map(|a| (a.action.as_str(), a.actor.as_str()))
            .collect();
        actions.sort();
        assert_eq!(
            actions,
            [("drill.abort", "cli:tester"), ("drill.start", "cli:tester")]
        );
        store.close().await;
    });
}

/// Seals a not-ready drill of `plan` (no backup recorded) through the library, as the
/// orchestrator does: its row, its state, its record at the head of the chain, its bundle.
async fn seal_not_ready(
    store: &Store,
    policy: &lifeboat::policy::Policy,
    plan: &str,
    now: Timestamp,
) -> (Uuid, String, Vec<u8>) {
    let plan = policy
        .drills
        .values()
        .find(|p| p.id.as_str() == plan)
        .unwrap()
        .clone();
    let id = Uuid::new_v4();
    store
        .insert_drill(&NewDrill {
            id,
            plan: plan.id.clone(),
            status: DrillStatus::Scheduled,
            created_by: "cli:tester".into(),
            created_at: now,
            scheduled_for: None,
            started_at: None,
            state: serde_json::to_value(Requested {
                requested_by: "cli:tester".into(),
                requested_at: now,
                disaster_at: None,
            })
            .unwrap(),
        })
        .await
        .unwrap();
    let (planned, extrapolated, _) = build::plan(policy, &plan, &[], now);
    let run = DrillRun::start(StartInput {
        id,
        plan,
        policy_digest: policy.digest.clone(),
        started_by: "cli:tester".into(),
        now,
        declared_disaster: None,
        systems: planned,
        extrapolated,
        standby_last_seen: None,
        agent_lost_after: SignedDuration::from_secs(180),
    });
    store
        .update_drill(
            id,
            1,
            &DrillChange {
                status: DrillStatus::NotReady,
                state: serde_json::to_value(&run).unwrap(),
                started_at: Some(now),
                finished_at: Some(now),
            },
        )
        .await
        .unwrap();
    let (mut rec, files) = build::record(&run, policy, 0);
    let (bundle, sha) = record::bundle(&files).unwrap();
    rec.bundle_sha256 = Some(sha);
    store
        .seal_drill_with::<StoreError>(id, Some(&bundle), |link| {
            let sealed = record::seal(rec.clone(), &link.previous_hash);
            Ok(SealedRecord {
                record: serde_json::to_string(&sealed).unwrap(),
                record_hash: sealed.record_hash,
            })
        })
        .await
        .unwrap();
    let seal = store.get_drill(id).await.unwrap().unwrap().seal.unwrap();
    (id, seal.record, bundle)
}

#[test]
fn verify_chain_finds_a_record_altered_in_the_database() {
    let c = coordinator();
    // The binary creates the database.
    c.drill_code(0, &["verify-chain"]);

    let rt = runtime();
    let policy = lifeboat::policy::load_dir(&c.policies).unwrap();
    let now = Timestamp::now();
    let (first, first_text, first_bundle, second, second_text) = rt.block_on(async {
        let store = Store::open(&c.url()).await.unwrap();
        let (first, first_text, first_bundle) =
            seal_not_ready(&store, &policy, "linfen-site-loss", now).await;
        let (second, second_text, _) =
            seal_not_ready(&store, &policy, "yuncheng-restore-test", now).await;
        store.close().await;
        (first, first_text, first_bundle, second, second_text)
    });
    let head: record::DrillRecord = serde_json::from_str(&second_text).unwrap();
    let first_record: record::DrillRecord = serde_json::from_str(&first_text).unwrap();
    assert_eq!(head.previous_hash, first_record.record_hash);

    // Intact.
    let (text, _) = c.drill_code(0, &["verify-chain"]);
    assert_eq!(
        text.trim(),
        format!(
            "chain of 2 drill records intact (head {})",
            head.record_hash
        )
    );
    let json = c.drill_json(0, &["verify-chain"]);
    assert_eq!(json["ok"], true);
    assert_eq!(json["records"], 2);

    // The sealed drills, their record text exactly as sealed, their bundle as sealed.
    let list = c.drill_json(0, &["list", "--status", "not-ready"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|d| d["verdict"] == "fail")
    );
    let (text, _) = c.drill_code(0, &["show", &first.to_string()]);
    assert!(text.contains("verdict fail"), "{text}");
    assert!(text.contains(&first_record.record_hash), "{text}");
    assert!(
        text.contains("FAIL restore point of linfen-finance"),
        "{text}"
    );
    let (text, _) = c.drill_code(0, &["record", &first.to_string()]);
    assert_eq!(text.trim_end(), first_text);
    let out = c.policies.parent().unwrap().join("bundle.tar.zst");
    c.drill_code(
        0,
        &["bundle", &first.to_string(), "--out", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), first_bundle);
    // Not-ready drills show nothing: everything is still due.
    let calendar = c.drill_json(8, &["calendar"]);
    assert_eq!(calendar["overdue"], true);
    assert!(
        calendar["systems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["system"] == "linfen-finance" && s["last_at"].is_null())
    );
    // Ended drills cannot be approved or aborted.
    c.drill_code(10, &["abort", &first.to_string()]);
    c.drill_code(10, &["approve", &second.to_string(), "verify"]);

    // The attack: the trigger that keeps sealed records unchanged is dropped and the first
    // record's verdict rewritten.
    rt.block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&c.url()).await.unwrap();
        sqlx::query("DROP TRIGGER drills_sealed_no_change")
            .execute(&mut db)
            .await
            .unwrap();
        let done = sqlx::query(
            "UPDATE drills SET record = replace(record, '\"verdict\":\"fail\"', \
             '\"verdict\":\"pass\"') WHERE id = $1",
        )
        .bind(first.to_string())
        .execute(&mut db)
        .await
        .unwrap();
        assert_eq!(done.rows_affected(), 1);
        db.close().await.unwrap();
    });
    let (text, _) = c.drill_code(0, &["record", &first.to_string()]);
    assert!(text.contains("\"verdict\":\"pass\""), "the tampering took");

    let (text, err) = c.drill_code(6, &["verify-chain"]);
    assert!(text.contains("BROKEN at position 1"), "{text}");
    assert!(text.contains(&first.to_string()), "{text}");
    assert!(
        err.contains(&first.to_string()) && err.contains("altered after it was sealed"),
        "{err}"
    );
    let json = c.drill_json(6, &["verify-chain"]);
    assert_eq!(json["ok"], false);
    assert_eq!(json["break"]["drill"], first.to_string());
    assert_eq!(json["break"]["position"], 1);
}

/// Kills the coordinator if the test ends early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn run_wait_follows_a_drill_to_its_sealed_record() {
    let c = coordinator();
    let _coordinator = Running(
        lifeboat()
            .args(["coordinator", "--config"])
            .arg(&c.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(c.port);

    // No backup is recorded and no standby agent is online: the drill ends not-ready at its
    // first tick, its record is sealed, and --wait exits 1.
    let mut follow = lifeboat()
        .args([
            "drill",
            "run",
            "yuncheng-restore-test",
            "--wait",
            "--config",
        ])
        .arg(&c.config)
        .env("USER", "tester")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while follow.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = follow.kill();
            panic!("drill run --wait did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id: Uuid = text.lines().next().unwrap().trim().parse().unwrap();
    assert!(text.contains("phase ended"), "{text}");
    assert!(text.contains("not-ready: verdict fail"), "{text}");

    let (chain, _) = c.drill_code(0, &["verify-chain"]);
    assert!(
        chain.starts_with("chain of 1 drill records intact"),
        "{chain}"
    );
    let record: Value =
        serde_json::from_str(&c.drill_code(0, &["record", &id.to_string()]).0).unwrap();
    assert_eq!(record["header"]["status"], "not-ready");
    assert_eq!(record["header"]["started_by"], "cli:tester");
    // The plan is free again.
    c.drill_code(0, &["run", "yuncheng-restore-test"]);
}

/// A successful backup of linfen-finance captured at `at`, at each of `copies` (repository,
/// location, available at).
fn backup(id: &str, at: Timestamp, copies: &[(&str, &str, Timestamp)]) -> RunRecord {
    let mut r = RunRecord::start(RunKind::Backup, id.into(), "linfen-fs01".into(), at);
    r.system = Some("linfen-finance".into());
    r.site = Some("linfen".into());
    r.tier = Some("T1".into());
    r.capture_time = Some(at);
    r.finished_at = at + SignedDuration::from_secs(60);
    r.snapshot_id = Some(id.into());
    r.outcome = Outcome::Success;
    r.source = Some(SourceStats {
        files: 1000,
        bytes: 3 << 30,
        ..SourceStats::default()
    });
    r.repositories = copies
        .iter()
        .map(|(repo, location, available)| RepoResult {
            repository: (*repo).into(),
            location: (*location).into(),
            immutable: false,
            outcome: Outcome::Success,
            available_at: Some(*available),
            snapshots: vec![id.into()],
            bytes_added: 1,
            seconds: 1.0,
            error: None,
        })
        .collect();
    r
}

#[test]
fn plan_picks_the_newest_copy_the_scenario_allows() {
    let c = coordinator();
    c.drill_code(0, &["verify-chain"]);
    let now = Timestamp::now();
    let hours = |h: i64| now - SignedDuration::from_hours(h);
    let older = "a1a1a1a1c0ffee00a1a1a1a1c0ffee00";
    let newer = "b2b2b2b2c0ffee00b2b2b2b2c0ffee00";
    runtime().block_on(async {
        let store = Store::open(&c.url()).await.unwrap();
        let hash = |t: &str| TokenHash::of(&Secret::new(t));
        store
            .create_enrolment_token(&EnrolmentToken {
                hash: hash("enrol"),
                host: "linfen-fs01".into(),
                site: "linfen".into(),
                created_by: "cli:tester".into(),
                created_at: hours(10),
                expires_at: now + SignedDuration::from_hours(1),
                used_at: None,
                used_by: None,
            })
            .await
            .unwrap();
        let agent = NewAgent {
            id: Uuid::new_v4(),
            token_hash: hash("agent"),
            version: "0.1.0".into(),
        };
        let Enrolment::Enrolled(agent) = store
            .enrol_agent(&hash("enrol"), &agent, hours(9))
            .await
            .unwrap()
        else {
            panic!("not enrolled")
        };
        // The older snapshot reached the off-site copy; the newer one is only on the branch's
        // own disk, which a site-loss drill must not use.
        let records = [
            backup(
                older,
                hours(6),
                &[
                    ("linfen-local", "local", hours(6)),
                    ("linfen-offsite", "remote", hours(5)),
                ],
            ),
            backup(newer, hours(2), &[("linfen-local", "local", hours(2))]),
        ];
        for (seq, r) in records.iter().enumerate() {
            store
                .insert_run(agent.id, seq as u64 + 1, r, now)
                .await
                .unwrap();
        }
        store.close().await;
    });

    let preview = c.drill_json(0, &["plan", "linfen-site-loss"]);
    let finance = &preview["systems"][0];
    assert_eq!(finance["system"], "linfen-finance");
    let chosen = &finance["selection"]["chosen"];
    assert_eq!(chosen["snapshot"], older, "{finance}");
    assert_eq!(chosen["repository"], "linfen-offsite");
    assert_eq!(chosen["location"], "remote");
    assert_eq!(chosen["bytes"], 3u64 << 30);
    let passed = finance["selection"]["passed_over"].as_array().unwrap();
    assert!(
        passed.iter().any(|p| p["snapshot"] == newer),
        "the newer snapshot is passed over: {finance}"
    );
    // The other systems still have none.
    assert!(preview["systems"][1]["selection"]["chosen"].is_null());

    let (text, _) = c.drill_code(0, &["plan", "linfen-site-loss"]);
    assert!(
        text.contains("snapshot a1a1a1a1 at linfen-offsite (remote)"),
        "{text}"
    );
    assert!(text.contains("3.0 GiB"), "{text}");
    assert!(text.contains("passed over b2b2b2b2"), "{text}");
    // A preview writes nothing.
    assert!(c.drill_json(0, &["list"]).as_array().unwrap().is_empty());
}
