//! End-to-end tests of the branch link through the real engine: local directory repositories
//! declared `remote` so that their writes cross the [`LinkGate`]. A copy of 24 MiB of
//! incompressible data is paced to the limit, stopped by a window that closes mid-copy, and
//! resumed without uploading again what already arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use lifeboat::clock::{Clock, SystemClock};
use lifeboat::engine::progress::Bars;
use lifeboat::engine::repo::StateDir;
use lifeboat::engine::{BackupRequest, CheckRequest, Engine, LinkGate};
use lifeboat::link::LinkPolicy;
use lifeboat::run::{Outcome, RunRecord};

use common::XorShift;

const MIB: u64 = 1 << 20;

/// The tests of this file run one at a time: the rate test measures time, and on a small
/// machine the others' backups would take its CPU.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const SYSTEM: &str = "branch-files";
/// Incompressible source data: one full 16 MiB pack and half of another.
const DATA: u64 = 24 * MIB;

/// A policy with one system backed up to `branch-local` and copied to two repositories that
/// are directories on this machine but declared `remote`, so the link gate applies to them.
struct Fixture {
    dir: tempfile::TempDir,
    policy: Arc<lifeboat::policy::Policy>,
}

impl Fixture {
    /// Writes the data and the policy, initialises the repositories and backs up (no copy).
    async fn backed_up() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut rng = XorShift::new(0x0b5e_55ed);
        std::fs::create_dir_all(root.join("src")).unwrap();
        for i in 0..3 {
            let bytes = rng.bytes((DATA / 3) as usize);
            std::fs::write(root.join(format!("src/part-{i}.bin")), bytes).unwrap();
        }
        let password = root.join("password");
        std::fs::write(&password, "correct-horse-battery-staple-link").unwrap();
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::write(root.join("policies/policy.toml"), policy_toml(root)).unwrap();
        let policy = Arc::new(lifeboat::policy::load_dir(&root.join("policies")).unwrap());
        let fixture = Fixture { dir, policy };

        let engine = fixture.engine(None);
        let created = engine.init(Some(SYSTEM), None).await.unwrap();
        assert!(created.iter().all(|o| o.created), "{created:?}");
        let record = engine
            .backup(&BackupRequest {
                system: SYSTEM.into(),
                all_repos: false,
                copy: false,
            })
            .await
            .unwrap();
        assert_eq!(record.outcome, Outcome::Success, "{record:?}");
        fixture
    }

    fn engine(&self, gate: Option<Arc<LinkGate>>) -> Engine {
        let engine = Engine::new(
            self.policy.clone(),
            StateDir(self.dir.path().join("state")),
            Bars::hidden(),
            Arc::new(SystemClock),
        );
        match gate {
            Some(gate) => engine.with_link(gate),
            None => engine,
        }
    }

    async fn copy_to(&self, gate: &Arc<LinkGate>, target: &str) -> RunRecord {
        self.engine(Some(gate.clone()))
            .copy(SYSTEM, None, &[target.to_string()])
            .await
            .unwrap()
    }

    /// The files of one kind (`data`, `index`, `snapshots`) in a repository.
    fn files(&self, repo: &str, kind: &str) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .map(|p| if p.is_dir() { count(&p) } else { 1 })
                    .sum()
            })
        }
        count(&self.dir.path().join("repos").join(repo).join(kind))
    }
}

fn policy_toml(root: &Path) -> String {
    let repo = |id: &str, location: &str| {
        format!(
            "[repositories.{id}]\nurl = \"{url}\"\nlocation = \"{location}\"\npassword = {{ file = \"{pw}\" }}\n\n",
            url = root.join("repos").join(id).display(),
            pw = root.join("password").display(),
        )
    };
    format!(
        r#"
{tier_and_site}

{local}{a}{b}
[systems.{SYSTEM}]
name = "Branch files"
department = "operations"
site = "branch"
host = "branch-fs01"
tier = "TT"
paths = ["{src}"]
repositories = ["branch-local", "remote-a", "remote-b"]
schedules = [
    {{ job = "backup", cron = "@daily" }},
    {{ job = "copy", cron = "@daily" }},
    {{ job = "check", cron = "@daily" }},
    {{ job = "read-data", cron = "@weekly" }},
    {{ job = "forget", cron = "@weekly" }},
]

[systems.{SYSTEM}.retention]
keep-last = 2
"#,
        tier_and_site = common::test_tier_and_site("24h", 3, 1, "7d", "90d"),
        local = repo("branch-local", "local"),
        a = repo("remote-a", "remote"),
        b = repo("remote-b", "remote"),
        src = root.join("src").display(),
    )
}

fn link(toml_text: &str) -> LinkPolicy {
    toml::from_str(toml_text).unwrap()
}

fn utc(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A clock that always reads the same instant.
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// A wall clock driven by the link's traffic: it starts at `start` and advances one second per
/// `rate` bytes paid at the gate, as on a line running at exactly `rate`. So a window closes
/// after a known number of bytes, however fast or loaded the test machine is.
struct TrafficClock {
    start: Timestamp,
    rate: u64,
    gate: OnceLock<Weak<LinkGate>>,
}

impl Clock for TrafficClock {
    fn now(&self) -> Timestamp {
        let paid = self
            .gate
            .get()
            .and_then(Weak::upgrade)
            .map_or(0, |g| g.stats().paid);
        let millis = i64::try_from(paid * 1000 / self.rate).unwrap();
        self.start
            .checked_add(SignedDuration::from_millis(millis))
            .unwrap()
    }
}

/// A gate whose window (06:00–20:00 UTC, unlimited) closes after `open_for` bytes.
fn closing_gate(open_for: u64) -> Arc<LinkGate> {
    let rate = 4 * MIB;
    let clock = Arc::new(TrafficClock {
        start: utc("2026-03-06T20:00:00Z")
            .checked_sub(SignedDuration::from_millis(
                i64::try_from(open_for * 1000 / rate).unwrap(),
            ))
            .unwrap(),
        rate,
        gate: OnceLock::new(),
    });
    let gate = LinkGate::new(
        link("windows = [\"06:00-20:00\"]\n"),
        TimeZone::UTC,
        clock.clone(),
    );
    clock.gate.set(Arc::downgrade(&gate)).unwrap();
    gate
}

/// An open, unlimited gate.
fn open_gate() -> Arc<LinkGate> {
    LinkGate::new(
        LinkPolicy::default(),
        TimeZone::UTC,
        Arc::new(FixedClock(utc("2026-03-06T12:00:00Z"))),
    )
}

/// Asserts that the copy into `target` failed because the window closed.
fn assert_window_closed(record: &RunRecord, target: &str) {
    assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
    let result = &record.repositories[0];
    assert_eq!(result.repository, target);
    assert_eq!(result.outcome, Outcome::Failed);
    let error = result.error.as_ref().unwrap();
    assert_eq!(error.kind, "window-closed", "{error:?}");
    assert!(
        error
            .message
            .contains("transfer window closed (it reopens at 2026-03-07T06:00:00Z)"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_runs_at_the_limit() {
    let _serial = SERIAL.lock().await;
    let fx = Fixture::backed_up().await;
    let limit = 4 * MIB;

    // What the copy costs besides the link (opening both repositories, reading the index,
    // building the first pack): the same copy unthrottled, into the other repository.
    let unthrottled = open_gate();
    let started = Instant::now();
    let record = fx.copy_to(&unthrottled, "remote-b").await;
    let baseline = started.elapsed().as_secs_f64();
    assert_eq!(record.outcome, Outcome::Success, "{record:?}");

    let gate = LinkGate::new(
        link("default-limit = \"4 MiB/s\"\n"),
        TimeZone::UTC,
        Arc::new(FixedClock(utc("2026-03-06T12:00:00Z"))),
    );
    let started = Instant::now();
    let record = fx.copy_to(&gate, "remote-a").await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(record.outcome, Outcome::Success, "{record:?}");

    let stats = gate.stats();
    let mib = |bytes: f64| bytes / MIB as f64;
    let raw = stats.sent as f64 / elapsed;
    let link = stats.sent as f64 / (elapsed - baseline);
    eprintln!(
        "copied {:.2} MiB in {elapsed:.2} s ({baseline:.2} s unthrottled), waited {:.2?}: \
         {:.3} MiB/s over the whole copy, {:.3} MiB/s on the link (limit 4 MiB/s)",
        mib(stats.sent as f64),
        stats.waited,
        mib(raw),
        mib(link),
    );
    // Everything went through the gate (the data, barely compressed, and the metadata)…
    assert!(
        stats.sent >= DATA && stats.sent < DATA + 2 * MIB,
        "{stats:?}"
    );
    assert!(unthrottled.stats().sent.abs_diff(stats.sent) < MIB);
    // …never faster than the limit (the bucket starts empty, so there is no initial burst)…
    assert!(raw <= limit as f64, "{:.3} MiB/s", mib(raw));
    // …and at the limit, within ±15 %, once the time the copy needs anyway is taken out.
    let ratio = link / limit as f64;
    assert!(
        (0.85..=1.15).contains(&ratio),
        "link rate {ratio:.3} × the limit"
    );
    assert_eq!(stats.refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_window_stops_the_copy_and_a_closed_one_refuses_to_start() {
    let _serial = SERIAL.lock().await;
    let fx = Fixture::backed_up().await;
    // Closes after 20 MiB: after the first 16 MiB pack, during the second.
    let gate = closing_gate(20 * MIB);
    let record = fx.copy_to(&gate, "remote-a").await;
    assert_window_closed(&record, "remote-a");
    let stats = gate.stats();
    assert!(stats.refused >= 1, "{stats:?}");
    assert!(stats.paid <= 21 * MIB, "paid past the window: {stats:?}");
    assert!(
        stats.sent >= 16 * MIB,
        "the first pack did not arrive: {stats:?}"
    );
    assert!(fx.files("remote-a", "data") >= 1);
    assert_eq!(
        fx.files("remote-a", "snapshots"),
        0,
        "a stopped copy saved a snapshot"
    );

    // The window is now closed: a copy does not start at all.
    let before = gate.stats();
    let record = fx.copy_to(&gate, "remote-b").await;
    assert_window_closed(&record, "remote-b");
    assert_eq!(gate.stats().paid, before.paid);
    assert_eq!(fx.files("remote-b", "data"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_resumes_without_uploading_again() {
    let _serial = SERIAL.lock().await;
    let fx = Fixture::backed_up().await;

    // A full copy, for reference.
    let full = open_gate();
    let record = fx.copy_to(&full, "remote-b").await;
    assert_eq!(record.outcome, Outcome::Success, "{record:?}");
    let full = full.stats().sent;

    // Interrupted after the first pack arrived: the pack is there, but no index names it.
    let closing = closing_gate(20 * MIB);
    assert_window_closed(&fx.copy_to(&closing, "remote-a").await, "remote-a");
    let packs = fx.files("remote-a", "data");
    assert!(packs >= 1);
    assert_eq!(fx.files("remote-a", "index"), 0);

    // The next copy indexes that pack and sends only the rest.
    let resume = open_gate();
    let record = fx.copy_to(&resume, "remote-a").await;
    assert_eq!(record.outcome, Outcome::Success, "{record:?}");
    let resumed = resume.stats().sent;
    eprintln!(
        "full copy {:.2} MiB, interrupted {:.2} MiB, resumed {:.2} MiB",
        full as f64 / MIB as f64,
        closing.stats().sent as f64 / MIB as f64,
        resumed as f64 / MIB as f64
    );
    assert!(full >= DATA, "{full}");
    assert!(
        resumed < full / 2,
        "resumed copy sent {resumed} bytes of {full}"
    );
    assert!(resumed + closing.stats().sent < full + MIB);

    // The target is whole: one snapshot, every pack readable and indexed once.
    let engine = fx.engine(None);
    let snaps = engine
        .snapshots(Some(SYSTEM), Some("remote-a"))
        .await
        .unwrap();
    assert_eq!(snaps.len(), 1);
    let report = engine
        .check(&CheckRequest {
            repository: "remote-a".into(),
            read_data: true,
            read_data_subset: None,
        })
        .await
        .unwrap();
    assert_eq!(
        (report.errors, report.warnings),
        (0, 0),
        "{:?}",
        report.findings
    );
    assert!(fx.files("remote-a", "data") > packs);
}
