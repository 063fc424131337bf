//! The quarterly report (`report::quarterly`) on a hand-computed fixture history, loaded into a
//! real SQLite store and the same into a throw-away PostgreSQL server:
//!
//! * a policy of two branches (`a`, `b`) × two tiers (T1: RPO 24 h, T2: RPO 7 d), each branch
//!   with a local repository and an off-site one at the data centre (`b-hr` uses its own
//!   off-site archive `b-arch`); the organisation's zone is the head office's, Asia/Shanghai, so
//!   2026Q4 is `[2026-09-30T16:00Z, 2026-12-31T16:00Z)`, 92 days = 2208 h. Times below are hours
//!   from the quarter's start (`h`);
//! * T1 systems back up every 12 h (local 30 min after capture) and copy off-site 30 min later
//!   (available 1 h after capture); `a-fin`'s copies fail for k = 80..85 (captures 960 h to
//!   1020 h); every copy of `b-fin` fails. T2 systems back up daily to both repositories
//!   (off-site 2 h after capture). History starts before 2026Q3 so the previous quarter is
//!   measured, the three before it are not;
//! * every repository has a passing structure check daily at 24k+5 h (10 min) and a full
//!   read-data check weekly; `b-arch` has a failed check at 1440–1441 h, cleared by the daily
//!   pass that ends at 1445 h 10 min;
//! * one targeted switch-over drill of branch `a` (outage 1056 h, ended 1080 h) that passed,
//!   with one medium finding.
//!
//! The figures asserted are computed by hand in the comments. The JSON is compared with the
//! golden file `tests/golden/report-2026Q4.json` (`LIFEBOAT_BLESS=1` rewrites it; review the
//! diff), the HTML in both languages is checked for its sections, figures and well-formedness,
//! the CSV is parsed back, and `lifeboat report` runs through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use lifeboat::coordinator::store::{
    DrillStatus, Enrolment, EnrolmentToken, NewAgent, NewDrill, SealedRecord, Store, StoreError,
    TokenHash,
};
use lifeboat::drill::record::{self, DrillRecord};
use lifeboat::i18n::Lang;
use lifeboat::policy::{self, Policy};
use lifeboat::report::quarterly::{self, Format, Quarter, QuarterlyReport};
use lifeboat::run::{CheckScope, Outcome, RepoResult, RunError, RunKind, RunRecord, SourceStats};
use lifeboat::secret::Secret;
use serde_json::{Value, json};
use uuid::Uuid;

const TIERS: &str = r#"
[tiers.T1]
name = "Important"
name-zh = "重要"
rpo = "24h"
rto-it = "8h"
rto-business = "12h"
copies = 3
media = 1
offsite = 1
offsite-class = "remote"
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "30d"

[tiers.T2]
name = "General"
name-zh = "一般"
rpo = "7d"
rto-it = "24h"
rto-business = "48h"
copies = 3
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "90d"
"#;

const SITES: &str = r#"
[sites.ho]
name = "Head office"
name-zh = "总行"
role = "head-office"
region = "capital"
timezone = "Asia/Shanghai"

[sites.dc]
name = "Data centre"
name-zh = "数据中心"
role = "data-centre"
region = "capital"
timezone = "Asia/Shanghai"

[sites.a]
name = "Branch A"
name-zh = "甲支行"
role = "branch"
region = "north"
timezone = "Asia/Shanghai"

[sites.b]
name = "Branch B"
name-zh = "乙支行"
role = "branch"
region = "south"
timezone = "Asia/Shanghai"
"#;

const REPOSITORIES: &str = r#"
[repositories.a-local]
site = "a"
url = "/srv/repos/a-local"
location = "local"
password = { file = "/etc/lifeboat/keys/a-local.pass" }

[repositories.a-off]
site = "dc"
url = "/srv/repos/a-off"
location = "remote"
password = { file = "/etc/lifeboat/keys/a-off.pass" }

[repositories.b-local]
site = "b"
url = "/srv/repos/b-local"
location = "local"
password = { file = "/etc/lifeboat/keys/b-local.pass" }

[repositories.b-off]
site = "dc"
url = "/srv/repos/b-off"
location = "remote"
password = { file = "/etc/lifeboat/keys/b-off.pass" }

[repositories.b-arch]
site = "dc"
url = "/srv/repos/b-arch"
location = "remote"
password = { file = "/etc/lifeboat/keys/b-arch.pass" }
"#;

fn system_toml(
    id: &str,
    name: &str,
    dept: &str,
    site: &str,
    tier: &str,
    repos: [&str; 2],
    backup: &str,
) -> String {
    format!(
        r#"
[systems.{id}]
name = "{name}"
department = "{dept}"
site = "{site}"
host = "{site}-fs01"
tier = "{tier}"
paths = ["/srv/{id}"]
repositories = ["{}", "{}"]

[[systems.{id}.schedules]]
job = "backup"
cron = "{backup}"

[[systems.{id}.schedules]]
job = "copy"
cron = "30 */12 * * *"

[[systems.{id}.schedules]]
job = "check"
cron = "0 5 * * *"

[[systems.{id}.schedules]]
job = "read-data"
cron = "0 6 * * SUN"

[[systems.{id}.schedules]]
job = "forget"
cron = "0 7 * * *"

[systems.{id}.retention]
keep-daily = 30
"#,
        repos[0], repos[1]
    )
}

/// The fixture policy in `dir`.
fn write_policy(dir: &Path) {
    std::fs::create_dir_all(dir.join("systems")).unwrap();
    std::fs::write(dir.join("tiers.toml"), TIERS).unwrap();
    std::fs::write(dir.join("sites.toml"), SITES).unwrap();
    std::fs::write(dir.join("repositories.toml"), REPOSITORIES).unwrap();
    let mut systems = String::new();
    systems += &system_toml(
        "a-fin",
        "Finance, branch A",
        "finance",
        "a",
        "T1",
        ["a-local", "a-off"],
        "0 */12 * * *",
    );
    systems += &system_toml(
        "a-hr",
        "HR files, branch A",
        "hr",
        "a",
        "T2",
        ["a-local", "a-off"],
        "0 0 * * *",
    );
    systems += &system_toml(
        "b-fin",
        "Finance, branch B",
        "finance",
        "b",
        "T1",
        ["b-local", "b-off"],
        "0 */12 * * *",
    );
    systems += &system_toml(
        "b-hr",
        "HR files, branch B",
        "hr",
        "b",
        "T2",
        ["b-local", "b-arch"],
        "0 0 * * *",
    );
    std::fs::write(dir.join("systems").join("branches.toml"), systems).unwrap();
}

fn load_policy(dir: &Path) -> Policy {
    policy::load_dir(dir).unwrap_or_else(|e| panic!("fixture policy: {e}"))
}

/// The quarter's start: 2026-10-01 00:00 in Shanghai.
const Q4_START: &str = "2026-09-30T16:00:00Z";
/// When the report is made: ten days after the quarter.
const NOW: &str = "2027-01-10T00:00:00Z";
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `minutes` after the quarter's start.
fn at(minutes: i64) -> Timestamp {
    Q4_START.parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

fn h(hours: i64) -> i64 {
    hours * 60
}

fn repo(
    id: &str,
    location: &str,
    outcome: Outcome,
    available: Option<Timestamp>,
    snapshots: Vec<String>,
    error: Option<&str>,
) -> RepoResult {
    RepoResult {
        repository: id.into(),
        location: location.into(),
        immutable: false,
        outcome,
        available_at: available,
        snapshots,
        bytes_added: if outcome == Outcome::Success { MIB } else { 0 },
        seconds: 60.0,
        error: error.map(|m| RunError {
            kind: "storage-write".into(),
            message: m.into(),
        }),
    }
}

fn record(kind: RunKind, id: String, system: &str, start: Timestamp, end: Timestamp) -> RunRecord {
    let site = &system[..1];
    let mut r = RunRecord::start(kind, id, format!("{site}-fs01"), start);
    r.system = Some(system.into());
    r.site = Some(site.into());
    r.tier = Some(if system.ends_with("fin") { "T1" } else { "T2" }.into());
    r.finished_at = end;
    r
}

fn source_bytes(system: &str) -> u64 {
    match system {
        "a-fin" => 2 * GIB,
        "a-hr" => GIB,
        "b-fin" => 4 * GIB,
        _ => 512 * MIB,
    }
}

/// The fixture history (see the module documentation).
fn runs() -> Vec<RunRecord> {
    let mut out = Vec::new();
    // T1: backup every 12 h, copy 30 min later.
    for system in ["a-fin", "b-fin"] {
        let (local, off) = if system == "a-fin" {
            ("a-local", "a-off")
        } else {
            ("b-local", "b-off")
        };
        for k in -186..=183_i64 {
            let cap = at(h(12 * k));
            let snap = format!("{system}-{k}");
            let mut b = record(
                RunKind::Backup,
                format!("backup-{snap}"),
                system,
                cap,
                at(h(12 * k) + 30),
            );
            b.capture_time = Some(cap);
            b.snapshot_id = Some(snap.clone());
            b.outcome = Outcome::Success;
            b.source = Some(SourceStats {
                files: 100,
                bytes: source_bytes(system),
                ..SourceStats::default()
            });
            b.repositories = vec![repo(
                local,
                "local",
                Outcome::Success,
                Some(at(h(12 * k) + 30)),
                vec![snap.clone()],
                None,
            )];
            out.push(b);
            let fails = system == "b-fin" || (80..=85).contains(&k);
            let mut c = record(
                RunKind::Copy,
                format!("copy-{snap}"),
                system,
                at(h(12 * k) + 30),
                at(h(12 * k) + 60),
            );
            if fails {
                let msg = if system == "b-fin" {
                    "access denied: the off-site credentials were rejected"
                } else {
                    "connection reset by peer"
                };
                c.outcome = Outcome::Failed;
                c.error = Some(RunError {
                    kind: "storage-write".into(),
                    message: msg.into(),
                });
                c.repositories = vec![repo(
                    off,
                    "remote",
                    Outcome::Failed,
                    None,
                    vec![],
                    Some(msg),
                )];
            } else {
                c.outcome = Outcome::Success;
                c.repositories = vec![repo(
                    off,
                    "remote",
                    Outcome::Success,
                    Some(at(h(12 * k) + 60)),
                    vec![snap.clone()],
                    None,
                )];
            }
            out.push(c);
        }
    }
    // T2: daily backups written to both repositories.
    for (system, off) in [("a-hr", "a-off"), ("b-hr", "b-arch")] {
        let local = format!("{}-local", &system[..1]);
        for k in -93..=91_i64 {
            let cap = at(h(24 * k));
            let snap = format!("{system}-{k}");
            let mut b = record(
                RunKind::Backup,
                format!("backup-{snap}"),
                system,
                cap,
                at(h(24 * k + 2)),
            );
            b.capture_time = Some(cap);
            b.snapshot_id = Some(snap.clone());
            b.outcome = Outcome::Success;
            b.source = Some(SourceStats {
                files: 10,
                bytes: source_bytes(system),
                ..SourceStats::default()
            });
            b.repositories = vec![
                repo(
                    &local,
                    "local",
                    Outcome::Success,
                    Some(at(h(24 * k) + 30)),
                    vec![snap.clone()],
                    None,
                ),
                repo(
                    off,
                    "remote",
                    Outcome::Success,
                    Some(at(h(24 * k + 2))),
                    vec![snap.clone()],
                    None,
                ),
            ];
            out.push(b);
        }
    }
    // Checks: daily structure, weekly full read, per repository.
    for (repository, location, system) in [
        ("a-local", "local", "a-fin"),
        ("a-off", "remote", "a-fin"),
        ("b-local", "local", "b-fin"),
        ("b-off", "remote", "b-fin"),
        ("b-arch", "remote", "b-hr"),
    ] {
        for k in -93..=91_i64 {
            let mut c = record(
                RunKind::Check,
                format!("check-{repository}-{k}"),
                system,
                at(h(24 * k + 5)),
                at(h(24 * k + 5) + 10),
            );
            c.outcome = Outcome::Success;
            c.check = Some(CheckScope {
                read_data: false,
                subset: None,
            });
            c.repositories = vec![repo(
                repository,
                location,
                Outcome::Success,
                None,
                vec![],
                None,
            )];
            c.repositories[0].bytes_added = 0;
            out.push(c);
            if k.rem_euclid(7) == 0 {
                let mut c = record(
                    RunKind::Check,
                    format!("read-{repository}-{k}"),
                    system,
                    at(h(24 * k + 6)),
                    at(h(24 * k + 7)),
                );
                c.outcome = Outcome::Success;
                c.check = Some(CheckScope {
                    read_data: true,
                    subset: None,
                });
                c.repositories = vec![repo(
                    repository,
                    location,
                    Outcome::Success,
                    None,
                    vec![],
                    None,
                )];
                c.repositories[0].bytes_added = 0;
                out.push(c);
            }
        }
    }
    let mut bad = record(
        RunKind::Check,
        "check-b-arch-damaged".into(),
        "b-hr",
        at(h(1440)),
        at(h(1441)),
    );
    bad.outcome = Outcome::Failed;
    bad.check = Some(CheckScope {
        read_data: false,
        subset: None,
    });
    bad.error = Some(RunError {
        kind: "corrupt".into(),
        message: "pack 3f2a9c is damaged".into(),
    });
    bad.repositories = vec![repo(
        "b-arch",
        "remote",
        Outcome::Failed,
        None,
        vec![],
        Some("pack 3f2a9c is damaged"),
    )];
    bad.repositories[0].error.as_mut().unwrap().kind = "corrupt".into();
    out.push(bad);
    out
}

const DRILL_ID: &str = "6f1c2d3e-0000-4000-8000-00000000d001";

/// The branch-A site-loss drill: outage at 1056 h, ended at 1080 h; both systems passed.
fn drill() -> DrillRecord {
    let result = |system: &str,
                  tier: &str,
                  rpo: i64,
                  rpo_t: i64,
                  it: i64,
                  it_t: i64,
                  biz: i64,
                  biz_t: i64| {
        json!({
            "result": {
                "system": system, "tier": tier,
                "achieved_rpo_seconds": rpo, "rpo_target_seconds": rpo_t,
                "it_rto_seconds": it, "it_rto_target_seconds": it_t,
                "business_rto_seconds": biz, "business_rto_target_seconds": biz_t,
                "rto_from_declaration_seconds": null, "decision_latency_seconds": null,
                "throughput_bytes_per_second": 1048576.0,
                "verdict": "pass", "reasons": []
            },
            "restore_point": null,
            "bytes_restored": GIB, "files_restored": 10, "tree_digest": null
        })
    };
    let hour = 3600;
    let value = json!({
        "header": {
            "drill_id": DRILL_ID, "plan": "a-site-loss",
            "title": "Branch A lost: switch over", "title_zh": "甲支行灾难切换",
            "drill_type": "targeted-switchover", "regulatory": null,
            "policy_digest": "fixture", "lifeboat_version": "0.0.0",
            "started_by": "user:alice",
            "started_at": at(h(1056)), "finished_at": at(h(1080)), "status": "completed"
        },
        "objectives": [],
        "scope": { "restored": ["a-fin", "a-hr"], "extrapolated": [], "excluded": [] },
        "scenario": { "kind": "site-loss", "lost_site": "a", "lost_system": null,
                      "outage": at(h(1056)), "compromise_at": null, "allowed_copies": "off-site" },
        "organisation": { "lead": null, "participants": [], "observers": [] },
        "readiness": [], "timeline": [], "step_log": [],
        "results": [
            // a-fin restored the capture of 1044 h: RPO 12 h; IT RTO 4 h, business RTO 6 h.
            result("a-fin", "T1", 12 * hour, 24 * hour, 4 * hour, 8 * hour, 6 * hour, 12 * hour),
            // a-hr restored the capture of 1032 h: RPO 24 h; IT RTO 8 h, business RTO 10 h.
            result("a-hr", "T2", 24 * hour, 168 * hour, 8 * hour, 24 * hour, 10 * hour, 48 * hour),
        ],
        "projection": null,
        "verdict": "pass",
        "deviations": [],
        "findings": [ { "category": "process", "severity": "medium",
                        "text": "The business check gate waited 2h for an approver." } ],
        "evidence": [], "bundle_sha256": null, "sign_off": [],
        "previous_hash": "", "record_hash": ""
    });
    serde_json::from_value(value).unwrap()
}

/// Loads the fixture into `store`: an agent per branch host, the run records, the sealed drill.
async fn load(store: &Store) {
    let now: Timestamp = NOW.parse().unwrap();
    let runs = runs();
    for host in ["a-fs01", "b-fs01"] {
        let hash = |t: &str| TokenHash::of(&Secret::new(format!("{t}-{host}")));
        store
            .create_enrolment_token(&EnrolmentToken {
                hash: hash("enrol"),
                host: host.into(),
                site: host[..1].into(),
                created_by: "test".into(),
                created_at: at(-h(3000)),
                expires_at: at(-h(2990)),
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
            .enrol_agent(&hash("enrol"), &agent, at(-h(2995)))
            .await
            .unwrap()
        else {
            panic!("not enrolled")
        };
        let mine: Vec<(u64, &RunRecord)> = runs
            .iter()
            .filter(|r| r.host == host)
            .enumerate()
            .map(|(i, r)| (i as u64 + 1, r))
            .collect();
        for chunk in mine.chunks(500) {
            store.insert_runs(agent.id, chunk, now).await.unwrap();
        }
    }
    let rec = drill();
    let id = rec.header.drill_id;
    store
        .insert_drill(&NewDrill {
            id,
            plan: rec.header.plan.clone(),
            status: DrillStatus::Finished,
            created_by: "user:alice".into(),
            created_at: rec.header.started_at,
            scheduled_for: None,
            started_at: Some(rec.header.started_at),
            state: json!({}),
        })
        .await
        .unwrap();
    store
        .seal_drill_with::<StoreError>(id, None, |link| {
            let sealed = record::seal(rec.clone(), &link.previous_hash);
            Ok(SealedRecord {
                record: serde_json::to_string(&sealed).unwrap(),
                record_hash: sealed.record_hash,
            })
        })
        .await
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn q4() -> Quarter {
    "2026Q4".parse().unwrap()
}

/// The report of 2026Q4 from a store loaded with the fixture.
async fn report_from(store: &Store, policy: &Policy) -> QuarterlyReport {
    let now: Timestamp = NOW.parse().unwrap();
    let inputs = quarterly::gather(store, policy, now).await.unwrap();
    quarterly::build(&inputs, q4(), now).unwrap()
}

fn sqlite_report() -> (QuarterlyReport, Policy) {
    let dir = tempfile::tempdir().unwrap();
    write_policy(&dir.path().join("policies"));
    let policy = load_policy(&dir.path().join("policies"));
    let url = format!("sqlite://{}", dir.path().join("coordinator.db").display());
    let report = runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        load(&store).await;
        let r = report_from(&store, &policy).await;
        store.close().await;
        r
    });
    (report, policy)
}

fn row<'r>(report: &'r Value, system: &str, scenario: &str) -> &'r Value {
    report["rpo"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["system"] == system && r["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no row {system} {scenario}"))
}

fn find<'r>(list: &'r Value, key: &str, value: &str) -> &'r Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

#[test]
fn figures_match_the_hand_computation() {
    let (report, _) = sqlite_report();
    let r = serde_json::to_value(&report).unwrap();
    let hour = 3600;

    assert_eq!(r["meta"]["quarter"], "2026Q4");
    assert_eq!(r["meta"]["from"], "2026-09-30T16:00:00Z");
    assert_eq!(r["meta"]["to"], "2026-12-31T16:00:00Z");
    assert_eq!(r["meta"]["time_zone"], "Asia/Shanghai");
    assert_eq!(r["meta"]["complete"], true);
    assert_eq!(
        r["meta"]["trend_quarters"],
        json!(["2025Q4", "2026Q1", "2026Q2", "2026Q3"])
    );

    // a-fin, site loss: the newest counted capture before the failed copies is k = 79 (948 h,
    // off-site at 949 h); the next is k = 86 (1032 h, off-site at 1033 h). Exposure exceeds 24 h
    // from 972 h to 1033 h: one breach of 61 h, worst 1033 − 948 = 85 h. Within target:
    // (2208 − 61) / 2208 = 97.2373 % → 97.24.
    let a = row(&r, "a-fin", "site-loss");
    assert_eq!(a["worst_exposure_seconds"], 85 * hour);
    assert_eq!(a["breaches"], 1);
    assert_eq!(a["breached_seconds"], 61 * hour);
    assert_eq!(a["within_percent"], 97.24);
    // Causes: the six failed copies to a-off (k = 80..85, the last ending at 1021 h); the late
    // snapshots are explained by them, so no separate "late copy".
    assert_eq!(a["causes"].as_array().unwrap().len(), 1, "{}", a["causes"]);
    assert_eq!(a["causes"][0]["kind"], "copy-failed");
    assert_eq!(a["causes"][0]["count"], 6);
    assert_eq!(a["causes"][0]["repository"], "a-off");
    assert_eq!(a["causes"][0]["detail"], "connection reset by peer");
    assert_eq!(a["causes"][0]["last_at"], at(h(1021)).to_string());
    // Trend: 2026Q3 fully covered (the history starts 24 h before it) → 100 %; earlier
    // quarters ended before the first run → not measured.
    assert_eq!(a["trend"][3]["within_percent"], 100.0);
    assert!(a["trend"][0]["within_percent"].is_null());
    // Component loss: local copies 30 min after capture every 12 h: worst 12 h 30 min.
    let ac = row(&r, "a-fin", "component-loss");
    assert_eq!(ac["worst_exposure_seconds"], 12 * hour + 1800);
    assert_eq!(ac["within_percent"], 100.0);
    // Ransomware: no immutable copy anywhere: unbounded all quarter (reported, not judged for
    // tiers with immutable = 0).
    let ar = row(&r, "a-fin", "ransomware");
    assert_eq!(ar["unbounded"], true);
    assert_eq!(ar["within_percent"], 0.0);

    // b-fin: nothing ever reached b-off: unbounded all quarter, 0 % within, one breach of 2208 h;
    // cause: the 186 failed copies from one target before the quarter (k = −2, at −23.5 h) to
    // its end (k = 183).
    let b = row(&r, "b-fin", "site-loss");
    assert_eq!(b["unbounded"], true);
    assert_eq!(b["within_percent"], 0.0);
    assert_eq!(b["breached_seconds"], 2208 * hour);
    assert_eq!(b["causes"][0]["kind"], "copy-failed", "{}", b);
    assert_eq!(b["causes"][0]["count"], 186);

    // b-hr: the failed check distrusts b-arch from 1440 h until the pass ending 1445 h 10 min:
    // 310 min unbounded. Within: (132480 − 310) / 132480 min = 99.766 % → 99.77.
    let bh = row(&r, "b-hr", "site-loss");
    assert_eq!(bh["breaches"], 1);
    assert_eq!(bh["breached_seconds"], 310 * 60);
    assert_eq!(bh["within_percent"], 99.77);
    assert_eq!(bh["causes"][0]["kind"], "check-failed");
    assert_eq!(bh["causes"][0]["repository"], "b-arch");
    // a-hr: daily, off-site 2 h after capture: worst 26 h against 7 d.
    let ah = row(&r, "a-hr", "site-loss");
    assert_eq!(ah["worst_exposure_seconds"], 26 * hour);
    assert_eq!(ah["breaches"], 0);

    // Groups: T1 × b is red (0 %), T1 × a amber (a breach, 97.24 % ≥ 95 %), T2 × a green.
    let group = |tier: &str, site: &str, sc: &str| {
        r["rpo"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["tier"] == tier && g["site"] == site && g["scenario"] == sc)
            .unwrap()
            .clone()
    };
    assert_eq!(group("T1", "b", "site-loss")["rag"], "Red");
    assert_eq!(group("T1", "a", "site-loss")["rag"], "Amber");
    assert_eq!(group("T2", "a", "site-loss")["rag"], "Green");
    assert_eq!(group("T2", "b", "site-loss")["rag"], "Amber");

    // RAG per tier: T1 red (b-fin 0 %, unbounded), T2 amber (b-hr breach, never drilled);
    // overall red. Heat map: a/T2 green (drilled, no breach, 3-2-1-1-0 met).
    let tier = |t: &str| find(&r["summary"]["tiers"], "tier", t).clone();
    assert_eq!(tier("T1")["rag"], "Red");
    assert_eq!(tier("T2")["rag"], "Amber");
    assert_eq!(r["summary"]["overall"], "Red");
    let cell = |t: &str, s: &str| {
        r["summary"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["tier"] == t && c["site"] == s)
            .unwrap()["rag"]
            .clone()
    };
    assert_eq!(cell("T2", "a"), "Green");
    assert_eq!(cell("T1", "a"), "Amber");
    assert_eq!(cell("T1", "b"), "Red");
    assert_eq!(cell("T2", "b"), "Amber");
    // Headline: T1 site loss: mean of 97.24 and 0 = 48.62 %; one of two systems never in
    // breach? No: both breached → 0 of 2. Last drilled RTO: a-fin business 6 h against 12 h.
    assert_eq!(tier("T1")["site_loss"]["within_percent"], 48.62);
    assert_eq!(tier("T1")["site_loss"]["systems_within"], 0);
    assert_eq!(tier("T1")["last_drill"]["rto_seconds"], 6 * hour);
    assert_eq!(tier("T1")["last_drill"]["rto_target_seconds"], 12 * hour);
    assert_eq!(tier("T1")["last_drill"]["rto_kind"], "business");
    assert_eq!(tier("T2")["last_drill"]["rto_seconds"], 10 * hour);

    // Operations, a-fin: 184 backups in the quarter (k = 0..183), all successful, 30 min each;
    // 184 copies, 6 failed. Off-site lag: 178 snapshots at 1 h, then 13, 25, 37, 49, 61, 73 h
    // (k = 85 … 80, all reaching a-off at 1033 h): p50 = rank 92 → 1 h, p95 = rank 175 → 1 h,
    // max 73 h.
    let ops = find(&r["operations"]["systems"], "system", "a-fin");
    assert_eq!(ops["backups"], 184);
    assert_eq!(ops["success_percent"], 100.0);
    assert_eq!(ops["duration_mean_seconds"], 1800);
    assert_eq!(ops["copies"], 184);
    assert_eq!(ops["copies_failed"], 6);
    assert_eq!(ops["offsite_lag_p50_seconds"], hour);
    assert_eq!(ops["offsite_lag_p95_seconds"], hour);
    assert_eq!(ops["offsite_lag_max_seconds"], 73 * hour);
    assert_eq!(ops["not_offsite"], 0);
    let bops = find(&r["operations"]["systems"], "system", "b-fin");
    assert_eq!(bops["not_offsite"], 184);
    assert!(bops["offsite_lag_max_seconds"].is_null());
    // Storage: a-local gets 1 MiB per backup: a-fin 184 + a-hr 92; a-off 178 copies + 92.
    let growth =
        |id: &str| find(&r["operations"]["storage"], "repository", id)["bytes_added"].clone();
    assert_eq!(growth("a-local"), 276 * MIB);
    assert_eq!(growth("a-off"), 270 * MIB);
    assert_eq!(growth("b-off"), 0);

    // Posture: b-arch had 92 daily + 14 weekly (k = 0, 7, …, 91) passing checks and 1 failure.
    let arch = find(&r["posture"]["repositories"], "repository", "b-arch");
    assert_eq!(arch["checks"], 107);
    assert_eq!(arch["failed_checks"], 1);
    assert_eq!(arch["issues"], json!([]));
    let bfin = find(&r["posture"]["systems"], "system", "b-fin");
    assert_eq!(bfin["conformant"], false);
    assert_eq!(
        find(&r["posture"]["systems"], "system", "a-fin")["conformant"],
        true
    );

    // RTO: a-* drilled at 1080 h (current), b-* never; throughput 2 GiB over 2048 s = 1 MiB/s,
    // so b-fin's 4 GiB restore is projected at 4096 s.
    let rto = |s: &str| find(&r["rto"]["systems"], "system", s).clone();
    assert_eq!(rto("a-fin")["status"], "current");
    assert_eq!(rto("b-fin")["status"], "never-drilled");
    assert_eq!(rto("b-fin")["projected_restore_seconds"], 4096);
    assert_eq!(r["rto"]["throughput_bytes_per_second"], MIB as f64);

    // Drill programme: the one drill; the annual targeted switch-over is done, the three-yearly
    // full one never was → overdue.
    assert_eq!(r["drills"]["held"].as_array().unwrap().len(), 1);
    let reg = r["drills"]["regulatory"].as_array().unwrap();
    assert_eq!(reg[0]["overdue"], false);
    assert_eq!(reg[1]["overdue"], true);

    // Findings, most severe first: b-fin's site-loss breach and the overdue full switch-over
    // (high), then a-fin's breach, b-hr's breach, b-arch's cleared check failure, b-fin's
    // 3-2-1-1-0, the two systems never drilled and the drill's own finding (medium).
    let kinds: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["kind"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("high", "rpo-breach"),
        ("high", "regulatory-overdue"),
        ("medium", "rpo-breach"),
        ("medium", "rpo-breach"),
        ("medium", "check-failed"),
        ("medium", "rule-not-met"),
        ("medium", "never-drilled"),
        ("medium", "never-drilled"),
        ("medium", "drill-finding"),
    ];
    assert_eq!(
        kinds,
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(r["findings"][0]["id"], "F01");
    assert_eq!(r["findings"][0]["kind"]["system"], "b-fin");
    assert_eq!(r["summary"]["top_risks"], json!(["F01", "F02"]));
}

fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report-2026Q4.json")
}

#[test]
fn json_matches_the_golden_file() {
    let (report, _) = sqlite_report();
    let mut value = serde_json::to_value(&report).unwrap();
    // The software version moves with releases; everything else is fixed by the fixture.
    value["meta"]["lifeboat_version"] = json!("(version)");
    let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
    let path = golden_path();
    if std::env::var_os("LIFEBOAT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with LIFEBOAT_BLESS=1 to write it, then review it",
            path.display()
        )
    });
    if golden != text {
        let first = golden
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "the report differs from {} from line {}:\n  golden: {}\n  now:    {}\n\
             (LIFEBOAT_BLESS=1 rewrites it; review the diff)",
            path.display(),
            first + 1,
            golden.lines().nth(first).unwrap_or(""),
            text.lines().nth(first).unwrap_or("")
        );
    }
}

/// Every `<svg` has its `</svg>`, no script, no external reference.
fn check_well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(
        html.matches("<svg").count() >= 4,
        "charts: exposure, heat map, bars, storage"
    );
    for tag in ["table", "tr", "td", "figure", "section", "ul", "dl"] {
        assert_eq!(
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "<{tag}> balanced"
        );
    }
    assert!(!html.contains("<script"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("url(")
    );
}

#[test]
fn html_in_both_languages_has_the_sections_and_figures() {
    let (report, _) = sqlite_report();
    let rt = runtime();
    let en = rt
        .block_on(quarterly::render_report(&report, Lang::En, Format::Html))
        .unwrap();
    assert_eq!(en.content_type, "text/html; charset=utf-8");
    assert_eq!(en.file_name, "lifeboat-report-2026Q4-en.html");
    let en = String::from_utf8(en.bytes).unwrap();
    check_well_formed(&en);
    for text in [
        "<html lang=\"en\">",
        "Quarterly recovery-objectives report 2026Q4",
        "1. Executive summary",
        "2. Scope and inventory",
        "3. RPO compliance",
        "4. RTO capability",
        "5. Copy and integrity posture",
        "6. Backup operations",
        "7. Drill programme",
        "8. Findings and actions",
        "Metric definitions",
        "Sign-off",
        "97.24 %",
        "99.77 %",
        "3d 13h",    // a-fin's worst exposure, 85 h
        "unbounded", // b-fin
        "connection reset by peer",
        "full switch-over with fail-back every 3 years",
        "Finance, branch A",
    ] {
        assert!(en.contains(text), "English page lacks {text:?}");
    }
    let zh = rt
        .block_on(quarterly::render_report(&report, Lang::ZhCn, Format::Html))
        .unwrap();
    assert_eq!(zh.file_name, "lifeboat-report-2026Q4-zh-CN.html");
    let zh = String::from_utf8(zh.bytes).unwrap();
    check_well_formed(&zh);
    for text in [
        "<html lang=\"zh-CN\">",
        "灾备恢复目标季度报告 2026年第4季度",
        "1. 执行摘要",
        "3. RPO 达标情况",
        "4. RTO 恢复能力",
        "8. 发现问题与整改措施",
        "指标定义",
        "签署",
        "97.24 %",
        "3天13小时",
        "无可用副本",
        "甲支行",
        "复制失败",
    ] {
        assert!(zh.contains(text), "Chinese page lacks {text:?}");
    }
    // The same figures, different words: no English section heading leaks into the Chinese.
    assert!(!zh.contains("Executive summary"));
}

/// RFC 4180 records of `text` (quoted fields with commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

#[test]
fn csv_parses_back_with_one_row_per_system_and_scenario() {
    let (report, _) = sqlite_report();
    let out = runtime()
        .block_on(quarterly::render_report(&report, Lang::ZhCn, Format::Csv))
        .unwrap();
    assert_eq!(out.content_type, "text/csv; charset=utf-8");
    let text = String::from_utf8(out.bytes).unwrap();
    let body = text.strip_prefix('\u{feff}').expect("UTF-8 BOM for Excel");
    assert!(body.contains("\r\n"));
    let rows = parse_csv(body);
    let header = &rows[0];
    assert_eq!(header[0], "quarter");
    assert_eq!(header.last().unwrap(), "within_target_percent_2026Q3");
    // 4 systems × 3 scenarios.
    assert_eq!(rows.len(), 1 + 12);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let a = rows
        .iter()
        .find(|r| r[col("system")] == "a-fin" && r[col("scenario")] == "site-loss")
        .unwrap();
    assert_eq!(a[col("worst_exposure_seconds")], (85 * 3600).to_string());
    assert_eq!(a[col("within_target_percent")], "97.24");
    assert_eq!(a[col("breaches")], "1");
    assert_eq!(a[col("causes")], "复制失败");
    assert_eq!(a[col("name")], "Finance, branch A");
    let b = rows
        .iter()
        .find(|r| r[col("system")] == "b-fin" && r[col("scenario")] == "site-loss")
        .unwrap();
    assert_eq!(b[col("worst_exposure_seconds")], "");
    assert_eq!(b[col("unbounded")], "true");
}

#[test]
fn postgres_gives_the_same_report_as_sqlite() {
    let (sqlite, policy) = sqlite_report();
    let pg = common::postgres::Postgres::start();
    let postgres = runtime().block_on(async {
        let store = Store::open(&pg.url()).await.unwrap();
        load(&store).await;
        let r = report_from(&store, &policy).await;
        store.close().await;
        r
    });
    assert_eq!(
        serde_json::to_value(&sqlite).unwrap(),
        serde_json::to_value(&postgres).unwrap()
    );
}

#[test]
fn a_quarter_not_yet_started_is_refused_and_an_open_one_is_provisional() {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path());
    let policy = load_policy(dir.path());
    let inputs = quarterly::ReportInputs {
        time_zone: quarterly::organisation_zone(&policy),
        policy,
        settings: Default::default(),
        runs: runs(),
        drills: vec![drill()],
    };
    let err =
        quarterly::build(&inputs, "2027Q2".parse().unwrap(), NOW.parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("has not started yet"), "{err}");
    // Mid-quarter (1500 h in): measured to then, marked provisional.
    let mid = at(h(1500));
    let r = quarterly::build(&inputs, q4(), mid).unwrap();
    assert!(!r.meta.complete);
    assert_eq!(r.meta.measured_to, mid);
}

/// `lifeboat report` through the real binary on the fixture's database: JSON to a file and
/// HTML to stdout; a bad quarter is a usage error.
#[test]
fn the_binary_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    write_policy(&policies);
    let db = dir.path().join("coordinator.db");
    let url = format!("sqlite://{}", db.display());
    runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        load(&store).await;
        store.close().await;
    });
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:9\"\ndatabase = \"{url}\"\npolicy-dir = \"{}\"\n",
            policies.display()
        ),
    )
    .unwrap();
    let out_file = dir.path().join("q3.json");
    // 2026Q3 is over on any clock that runs this test.
    let out = common::lifeboat()
        .args(["report", "--quarter", "2026Q3", "--format", "json", "--out"])
        .arg(&out_file)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(v["meta"]["quarter"], "2026Q3");
    assert_eq!(v["meta"]["complete"], true);
    // In 2026Q3 only b-fin lacked an off-site copy.
    assert_eq!(row(&v, "b-fin", "site-loss")["within_percent"], 0.0);
    assert_eq!(row(&v, "a-fin", "site-loss")["within_percent"], 100.0);

    let out = common::lifeboat()
        .args([
            "report",
            "--quarter",
            "2026Q3",
            "--lang",
            "zh-CN",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.contains("灾备恢复目标季度报告 2026年第3季度"));

    let out = common::lifeboat()
        .args(["report", "--quarter", "2026Q5", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills the coordinator when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/v1/reports/quarterly` on the real coordinator: a viewer downloads the JSON and the
/// CSV; a bad quarter or format is a 400 `ApiError`; no token is a 401; the download is audited.
#[test]
fn a_viewer_downloads_the_report_from_the_api_and_it_is_audited() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    write_policy(&policies);
    let db = dir.path().join("coordinator.db");
    let url = format!("sqlite://{}", db.display());
    runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        load(&store).await;
        store.close().await;
    });
    let port = common::free_port();
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{url}\"\npolicy-dir = \"{}\"\n",
            policies.display()
        ),
    )
    .unwrap();
    let mut add = common::lifeboat()
        .args(["coordinator", "--config", config.to_str().unwrap()])
        .args(["user", "add", "--name", "vera", "--role", "viewer"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "viewer-password-7c1e").unwrap();
    assert!(add.wait_with_output().unwrap().status.success());
    let _running = Running(
        common::lifeboat()
            .args(["coordinator", "--config", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_ready(port);
    let (code, body) = common::http(
        port,
        "POST",
        "/api/v1/login",
        "",
        &json!({ "name": "vera", "password": "viewer-password-7c1e" }).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let path = "/api/v1/reports/quarterly";
    let (code, body) = common::http(
        port,
        "GET",
        &format!("{path}?quarter=2026Q3&format=json"),
        &token,
        "",
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["meta"]["quarter"], "2026Q3");
    assert_eq!(row(&v, "b-fin", "site-loss")["within_percent"], 0.0);

    let (code, body) = common::http(
        port,
        "GET",
        &format!("{path}?quarter=2026Q3&format=csv&lang=zh-CN"),
        &token,
        "",
    );
    assert_eq!(code, 200);
    assert!(body.starts_with('\u{feff}'));
    assert_eq!(parse_csv(body.trim_start_matches('\u{feff}')).len(), 13);

    for bad in ["quarter=2026Q5", "format=docx", "lang=fr", "quarter=2099Q1"] {
        let (code, body) = common::http(port, "GET", &format!("{path}?{bad}"), &token, "");
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "bad-request",
            "{body}"
        );
    }
    let (code, _) = common::http(port, "GET", path, "", "");
    assert_eq!(code, 401);

    drop(_running);
    let audited = runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        let entries = store
            .list_audit(
                &Default::default(),
                lifeboat::coordinator::store::Page::first(100),
            )
            .await
            .unwrap();
        store.close().await;
        entries
    });
    let downloads: Vec<_> = audited
        .iter()
        .filter(|e| e.action == "report.quarterly")
        .collect();
    assert_eq!(downloads.len(), 2, "{audited:?}");
    assert_eq!(downloads[0].actor, "user:vera");
}

/// The Chinese report printed to PDF (Chromium and CJK fonts, as `tests/run.sh` installs):
/// pages with the title, a figure and a chart label as text.
#[test]
fn the_chinese_report_prints_to_pdf() {
    let (report, _) = sqlite_report();
    let pdf = runtime()
        .block_on(quarterly::render_report(&report, Lang::ZhCn, Format::Pdf))
        .unwrap();
    assert_eq!(pdf.content_type, "application/pdf");
    assert_eq!(pdf.file_name, "lifeboat-report-2026Q4-zh-CN.pdf");
    assert!(pdf.bytes.starts_with(b"%PDF"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, &pdf.bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils, installed by tests/run.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in ["灾备恢复目标季度报告", "执行摘要", "97.24 %", "甲支行"] {
        assert!(text.contains(expected), "PDF text lacks {expected:?}");
    }
    let pages = text.matches('\u{c}').count();
    assert!(pages >= 8, "one section per page at least: {pages} pages");
}
