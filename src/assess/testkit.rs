//! Fixtures for the assessment tests: a small policy (three tiers, a branch with local,
//! same-site, same-city, remote and immutable remote repositories, three systems), run records
//! written the way the agent writes them, and times as `"03-01 02:00"` (2026, UTC).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;

use super::{AgentHealth, Assessor, Inventory, Settings};
use crate::policy::{Policy, RepoId, TierId};
use crate::run::{Outcome, RepoResult, RunError, RunKind, RunRecord};

const POLICY: &str = r#"
[tiers.T0]
name = "Critical"
rpo = "30m"
rto-it = "2h"
rto-business = "4h"
copies = 3
media = 2
offsite = 1
offsite-class = "remote"
immutable = 1
drill-every = "180d"
restore-test-every = "30d"
check-every = "1d"
read-data-window = "7d"

[tiers.T1]
name = "Important"
rpo = "4h"
rto-it = "8h"
rto-business = "12h"
copies = 3
media = 2
offsite = 1
offsite-class = "remote"
immutable = 1
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "7d"

[tiers.T2]
name = "General"
rpo = "24h"
rto-it = "24h"
rto-business = "48h"
copies = 3
media = 2
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "90d"

[sites.branch]
name = "Branch"
role = "branch"
region = "city-a"
timezone = "Asia/Shanghai"

[sites.annex]
name = "Annex across town"
role = "branch"
region = "city-a"
timezone = "Asia/Shanghai"

[sites.dc]
name = "Provincial data centre"
role = "data-centre"
region = "city-b"
timezone = "Asia/Shanghai"

[repositories.local]
url = "/srv/lifeboat/repo"
location = "local"
password = { env = "PW" }

[repositories.sameroom]
url = "/mnt/nas/repo"
location = "same-site"
password = { env = "PW" }

[repositories.city]
site = "annex"
url = "s3://annex/branch"
location = "same-city"
password = { env = "PW" }

[repositories.offsite]
site = "dc"
url = "s3://offsite/branch"
location = "remote"
password = { env = "PW" }

[repositories.vault]
site = "dc"
url = "s3://vault/branch"
location = "remote"
immutable = true
password = { env = "PW" }

[systems.fin]
name = "Finance"
department = "finance"
site = "branch"
host = "h1"
tier = "T1"
paths = ["/srv/finance"]
repositories = ["local", "offsite", "vault"]
retention = { keep-daily = 7 }

[systems.hr]
name = "HR share"
department = "hr"
site = "branch"
host = "h1"
tier = "T2"
paths = ["/srv/hr"]
repositories = ["local", "city"]
retention = { keep-daily = 7 }

[systems.ops]
name = "Operations notes"
department = "operations"
site = "branch"
host = "h2"
tier = "T2"
paths = ["/srv/ops"]
repositories = ["local"]
retention = { keep-daily = 7 }
"#;

fn section<K, V>(doc: &toml::Table, name: &str) -> BTreeMap<K, V>
where
    K: FromStr + Ord,
    K::Err: std::fmt::Debug,
    V: DeserializeOwned,
{
    doc[name]
        .as_table()
        .unwrap()
        .iter()
        .map(|(id, entry)| {
            let mut entry = entry.as_table().unwrap().clone();
            entry.insert("id".into(), toml::Value::String(id.clone()));
            let value: V = toml::Value::Table(entry).try_into().unwrap();
            (id.parse().unwrap(), value)
        })
        .collect()
}

/// The test policy, built without the loader's cross-entry validation so tests may bend it.
pub fn policy() -> Policy {
    let doc: toml::Table = toml::from_str(POLICY).unwrap();
    Policy {
        drills: Default::default(),
        tiers: section(&doc, "tiers"),
        sites: section(&doc, "sites"),
        repositories: section(&doc, "repositories"),
        systems: section(&doc, "systems"),
        digest: String::new(),
    }
}

/// `"03-01 02:00"` → 2026-03-01T02:00:00Z.
pub fn t(s: &str) -> Timestamp {
    format!("2026-{}:00Z", s.replace(' ', "T")).parse().unwrap()
}

pub fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

pub fn hours_mins(h: i64, m: i64) -> SignedDuration {
    SignedDuration::from_hours(h) + SignedDuration::from_mins(m)
}

pub fn repo_id(s: &str) -> RepoId {
    s.parse().unwrap()
}

pub fn tier_id(s: &str) -> TierId {
    s.parse().unwrap()
}

fn record(kind: RunKind, system: &str, started: &str, finished: &str) -> RunRecord {
    let mut r = RunRecord::start(
        kind,
        format!("{kind:?}-{system}-{started}"),
        "h1".into(),
        t(started),
    );
    r.system = Some(system.into());
    r.finished_at = t(finished);
    r
}

fn repo_result(repo: &str, outcome: Outcome, at: &str, snapshots: &[&str]) -> RepoResult {
    let ok = outcome == Outcome::Success;
    RepoResult {
        repository: repo.into(),
        location: String::new(),
        immutable: false,
        outcome,
        available_at: ok.then(|| t(at)),
        snapshots: if ok {
            snapshots.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
        bytes_added: 0,
        seconds: 0.0,
        error: (!ok).then(|| RunError {
            kind: "unreachable".into(),
            message: "connection refused".into(),
        }),
    }
}

/// A backup of `system` to its first repository (`local`) capturing at `captured` and done at
/// `available`. A failed one writes no snapshot.
pub fn backup(
    system: &str,
    snapshot: &str,
    captured: &str,
    available: &str,
    outcome: Outcome,
) -> RunRecord {
    let mut r = record(RunKind::Backup, system, captured, available);
    r.outcome = outcome;
    if outcome == Outcome::Failed {
        r.repositories = vec![repo_result("local", Outcome::Failed, available, &[])];
        r.error = Some(RunError {
            kind: "source-missing".into(),
            message: "source path /srv/finance does not exist".into(),
        });
        return r;
    }
    r.capture_time = Some(t(captured));
    r.snapshot_id = Some(snapshot.into());
    r.repositories = vec![repo_result(
        "local",
        Outcome::Success,
        available,
        &[snapshot],
    )];
    r
}

/// A backup that wrote its snapshot whatever its outcome (a partial run: a post hook failed; or
/// a record claiming failure with a snapshot anyway).
pub fn backup_with_snapshot(
    system: &str,
    snapshot: &str,
    captured: &str,
    available: &str,
    outcome: Outcome,
) -> RunRecord {
    let mut r = backup(system, snapshot, captured, available, Outcome::Success);
    r.outcome = outcome;
    r
}

/// A copy run of `system` started at `started`, every target done at `available` (the
/// targets' snapshot lists are empty: the catch-up rule carries the snapshots).
pub fn copy_all(
    system: &str,
    started: &str,
    available: &str,
    targets: &[(&str, Outcome)],
) -> RunRecord {
    let mut r = record(RunKind::Copy, system, started, available);
    r.repositories = targets
        .iter()
        .map(|(repo, outcome)| repo_result(repo, *outcome, available, &[]))
        .collect();
    r.outcome = r.derive_outcome();
    r
}

/// A copy run whose targets list the snapshots they carried, each with its own end.
pub fn copy(system: &str, started: &str, targets: &[(&str, &str, Outcome, &[&str])]) -> RunRecord {
    let finished = targets.iter().map(|x| x.1).max().unwrap_or(started);
    let mut r = record(RunKind::Copy, system, started, finished);
    r.repositories = targets
        .iter()
        .map(|(repo, at, outcome, ids)| repo_result(repo, *outcome, at, ids))
        .collect();
    r.outcome = r.derive_outcome();
    r
}

/// A check of one repository; a failure has the error kind `kind`.
pub fn check_run(
    repo: &str,
    started: &str,
    finished: &str,
    outcome: Outcome,
    kind: &str,
) -> RunRecord {
    let mut r = record(RunKind::Check, "fin", started, finished);
    r.run_id = format!("check-{repo}-{started}");
    let mut result = repo_result(repo, outcome, finished, &[]);
    if outcome != Outcome::Success {
        let message = match kind {
            "integrity" => "2 errors: pack 1a2b hash mismatch",
            _ => "connection refused",
        };
        result.error = Some(RunError {
            kind: kind.into(),
            message: message.into(),
        });
    }
    r.repositories = vec![result];
    r.outcome = outcome;
    r
}

/// A policy, the inventory of some records, settings and agents: what an assessor needs.
pub struct Fixture {
    pub policy: Policy,
    pub inventory: Inventory,
    pub settings: Settings,
    pub agents: HashMap<String, AgentHealth>,
}

impl Fixture {
    pub fn new(runs: Vec<RunRecord>) -> Self {
        Self::with_policy(policy(), runs)
    }

    pub fn with_policy(policy: Policy, runs: Vec<RunRecord>) -> Self {
        let (inventory, errors) = Inventory::from_runs(&runs, &policy);
        assert_eq!(errors, vec![], "fixture records must all be usable");
        Fixture {
            policy,
            inventory,
            settings: Settings::default(),
            agents: HashMap::new(),
        }
    }

    pub fn assessor(&self) -> Assessor<'_> {
        Assessor::new(&self.policy, &self.inventory, &self.settings).with_agents(&self.agents)
    }
}
