//! The assessment sweep: "work that must run once". Every [`SweepConfig::every`] (and right after
//! start) the replica holding the store lease [`LEASE`] takes the run records stored since its
//! last sweep into an in-memory [`Inventory`], folds in the agents' heartbeats for health and
//! clock correction, assesses every system of the policy in force ([`Assessor::all`]) and
//! publishes the result as a [`FleetView`], with the time it took. HTTP handlers (`/metrics`,
//! later the operator API) read the latest view through a [`SweepHandle`]; they never assess.
//!
//! A replica without the lease does not sweep: its handle keeps answering `None` (or the view of
//! a time it held the lease). Losing the lease is noticed before the next unit of work
//! ([`LeaseGuard::is_held`]); taking it over starts from an empty inventory, so a replica never
//! builds on records it did not read itself.
//!
//! This module owns the loop and the lease; it names no SQL (the store does) and holds no
//! assessment rule (`crate::assess` does). Ingesting and assessing are CPU work and run on the
//! blocking pool, so a sweep of a large fleet never stalls the HTTP handlers. The sweep reads the
//! clock once per unit of work, through [`Clock`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;

use super::store::{LeaseGuard, Page, Store, StoreError, StoredRun};
use crate::assess::{
    AgentHealth, AgentStatus, Assessor, FleetSummary, HeartbeatSeen, Inventory, Scenario, Settings,
    Status, SystemAssessment,
};
use crate::clock::Clock;
use crate::policy::{Policy, SystemId, TierId};
use crate::run::{Outcome, RunError, RunKind, RunRecord};

/// The store lease that makes one replica the sweeper.
pub const LEASE: &str = "assessment-sweep";

/// How often and how the sweep runs.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// Time between the end of one sweep and the start of the next.
    pub every: Duration,
    /// Run records read from the store per query.
    pub batch: u32,
    pub settings: Settings,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            every: Duration::from_secs(30),
            batch: Page::MAX_LIMIT,
            settings: Settings::default(),
        }
    }
}

/// Why a sweep failed. The loop logs it and tries again at the next tick.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("the sweep cannot read the store: {0}")]
    Store(#[from] StoreError),
    #[error("the sweep's assessment task failed: {0}")]
    Task(String),
}

/// One system's figures in a [`FleetView`]: what `/metrics` exports per system.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemFigures {
    pub system: SystemId,
    pub tier: TierId,
    /// Per scenario, in [`Scenario::ALL`] order.
    pub status: [Status; 3],
    /// Exposure in seconds per scenario; `None` when nothing counts (unbounded).
    pub exposure_seconds: [Option<f64>; 3],
}

/// The latest run of one kind of one system (of a check: of one system at one repository), by
/// `finished_at`, as the alerts read it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestRun {
    pub system: String,
    pub kind: RunKind,
    /// For a check, the repository it checked: checks of different repositories are separate.
    pub repository: Option<String>,
    pub run_id: String,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    pub error: Option<RunError>,
}

impl LatestRun {
    /// The record's latest-run line, for the kinds alerts look at (backup, copy, check, forget)
    /// of a system.
    fn of(record: &RunRecord) -> Option<LatestRun> {
        let tracked = matches!(
            record.kind,
            RunKind::Backup | RunKind::Copy | RunKind::Check | RunKind::Forget
        );
        Some(LatestRun {
            system: record.system.clone().filter(|_| tracked)?,
            kind: record.kind,
            repository: (record.kind == RunKind::Check)
                .then(|| record.repositories.first().map(|r| r.repository.clone()))
                .flatten(),
            run_id: record.run_id.clone(),
            finished_at: record.finished_at,
            outcome: record.outcome,
            error: record.error.clone(),
        })
    }
}

/// The published result of one sweep.
#[derive(Debug, Clone)]
pub struct FleetView {
    /// The `now` every figure was computed at.
    pub assessed_at: Timestamp,
    /// The whole sweep: reading new records and heartbeats, ingesting, assessing.
    pub took: Duration,
    /// Assessing every system (the part that grows with the fleet, not with new records).
    pub assess_took: Duration,
    pub policy_digest: String,
    /// Enrolled agents that are not revoked.
    pub agents: u64,
    /// Of those, the ones not heard from within `offline-after` (or never).
    pub agents_offline: u64,
    pub systems: u64,
    /// Per scenario, in [`Scenario::ALL`] order.
    pub summaries: Vec<FleetSummary>,
    /// Every system of the policy, in id order.
    pub figures: Vec<SystemFigures>,
    /// The full assessment of every system of the policy, in id order (same order as
    /// `figures`): reasons, predicted breach, 3-2-1-1-0, integrity coverage.
    pub assessments: Vec<SystemAssessment>,
    /// Every enrolled, unrevoked agent's health at `assessed_at`, by host.
    pub agent_health: Vec<AgentHealth>,
    /// The latest run of each system and kind (see [`LatestRun`]) whose outcome was not
    /// success, by system, kind and repository.
    pub failed_runs: Vec<LatestRun>,
    /// Run records taken into the inventory since it was built, and those it could not use.
    pub runs_ingested: u64,
    pub runs_unusable: u64,
    /// Counts the times this replica took the sweep lease: a change tells consumers (alerts)
    /// that another replica may have written meanwhile, so what they cached must be re-read.
    pub lease_epoch: u64,
}

impl FleetView {
    /// The summary of one scenario.
    pub fn summary(&self, scenario: Scenario) -> Option<&FleetSummary> {
        self.summaries.iter().find(|s| s.scenario == scenario)
    }

    /// The assessment of one system, if the policy in force has it.
    pub fn assessment(&self, system: &str) -> Option<&SystemAssessment> {
        self.assessments
            .binary_search_by(|a| a.system.as_str().cmp(system))
            .ok()
            .map(|i| &self.assessments[i])
    }

    /// The health of the agent on `host`, if one is enrolled.
    pub fn agent(&self, host: &str) -> Option<&AgentHealth> {
        self.agent_health
            .binary_search_by(|a| a.host.as_str().cmp(host))
            .ok()
            .map(|i| &self.agent_health[i])
    }
}

/// Reads the latest [`FleetView`]. Cheap to clone; for HTTP handlers.
#[derive(Debug, Clone)]
pub struct SweepHandle {
    rx: watch::Receiver<Option<Arc<FleetView>>>,
}

impl SweepHandle {
    /// The latest view, `None` before the first sweep of this replica.
    pub fn latest(&self) -> Option<Arc<FleetView>> {
        self.rx.borrow().clone()
    }

    /// Waits for the next view to be published (for tests and tools).
    pub async fn changed(&mut self) -> Option<Arc<FleetView>> {
        self.rx.changed().await.ok()?;
        self.latest()
    }
}

/// What the sweeper remembers between sweeps.
struct Evidence {
    inventory: Inventory,
    /// The store id of the last run record taken.
    last_id: i64,
    /// The policy the inventory was built against: records of systems unknown to it were
    /// dropped, so a new policy rebuilds the inventory from the first record.
    policy_digest: String,
    /// The latest run per system, kind (`Debug` name) and checked repository.
    latest: BTreeMap<(String, String, Option<String>), LatestRun>,
    ingested: u64,
    unusable: u64,
}

impl Evidence {
    fn new(policy_digest: &str) -> Self {
        Evidence {
            inventory: Inventory::new(),
            last_id: 0,
            policy_digest: policy_digest.to_string(),
            latest: BTreeMap::new(),
            ingested: 0,
            unusable: 0,
        }
    }
}

/// The sweep worker: one unit of work per [`Sweeper::tick`], looped by [`Sweeper::run`].
pub struct Sweeper {
    store: Store,
    policy: Arc<RwLock<Arc<Policy>>>,
    clock: Arc<dyn Clock>,
    config: SweepConfig,
    lease: Option<LeaseGuard>,
    /// Incremented each time the lease is taken (see [`FleetView::lease_epoch`]).
    lease_epoch: u64,
    evidence: Option<Evidence>,
    tx: watch::Sender<Option<Arc<FleetView>>>,
}

impl Sweeper {
    pub fn new(
        store: Store,
        policy: Arc<RwLock<Arc<Policy>>>,
        clock: Arc<dyn Clock>,
        config: SweepConfig,
    ) -> (Sweeper, SweepHandle) {
        let (tx, rx) = watch::channel(None);
        let sweeper = Sweeper {
            store,
            policy,
            clock,
            config,
            lease: None,
            lease_epoch: 0,
            evidence: None,
            tx,
        };
        (sweeper, SweepHandle { rx })
    }

    /// Whether this replica holds the sweep lease (as of the last tick).
    pub fn holds_lease(&self) -> bool {
        self.lease.is_some()
    }

    /// Sweeps until `shutdown` completes: once at once, then every `config.every`. Failures are
    /// logged and retried at the next tick. The lease is released on the way out.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.tick().await {
                Ok(Some(view)) => tracing::debug!(
                    systems = view.systems,
                    took_ms = view.took.as_millis() as u64,
                    "assessment sweep done"
                ),
                Ok(None) => tracing::debug!("another replica holds the assessment sweep"),
                Err(e) => tracing::warn!("{e}"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.config.every) => {}
            }
        }
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }

    /// One unit of work: takes (or checks) the lease and, when held, sweeps and publishes.
    /// `Ok(None)` when another replica holds the lease.
    pub async fn tick(&mut self) -> Result<Option<Arc<FleetView>>, SweepError> {
        if let Some(lease) = self.lease.as_mut()
            && !lease.is_held().await
        {
            tracing::warn!("lost the assessment-sweep lease; another replica may take over");
            self.lease = None;
            self.evidence = None;
        }
        if self.lease.is_none() {
            self.lease = self.store.try_acquire_lease(LEASE).await?;
            if self.lease.is_none() {
                return Ok(None);
            }
            self.lease_epoch += 1;
            tracing::info!("this replica now runs the assessment sweep");
        }
        let view = Arc::new(self.sweep().await?);
        // The previous view of a large fleet is hundreds of MiB of small allocations: freed on
        // the blocking pool, not on an async worker that requests are waiting for.
        if let Some(previous) = self.tx.send_replace(Some(Arc::clone(&view))) {
            tokio::task::spawn_blocking(move || drop(previous));
        }
        Ok(Some(view))
    }

    async fn sweep(&mut self) -> Result<FleetView, SweepError> {
        let started = Instant::now();
        let policy = self
            .policy
            .read()
            .map(|p| Arc::clone(&p))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()));
        let mut evidence = match self.evidence.take() {
            Some(e) if e.policy_digest == policy.digest => e,
            _ => Evidence::new(&policy.digest),
        };
        // New records, a batch at a time; each batch is ingested off the async threads while the
        // next one is read (the store id of a batch's last record is known before ingesting it).
        let batch = self.config.batch;
        let mut runs = self.store.runs_after(evidence.last_id, batch).await?;
        while !runs.is_empty() {
            let full = runs.len() >= batch as usize;
            let last_id = runs.iter().map(|r| r.id).max().unwrap_or(evidence.last_id);
            let p = Arc::clone(&policy);
            let ingesting = blocking(move || {
                ingest(&mut evidence, &runs, &p);
                evidence
            });
            let reading = async {
                if full {
                    self.store.runs_after(last_id, batch).await
                } else {
                    Ok(Vec::new())
                }
            };
            let (ingested, next) = tokio::join!(ingesting, reading);
            evidence = ingested?;
            runs = next?;
        }
        let heartbeats = self.latest_heartbeats().await?;
        let now = self.clock.now();
        let settings = self.config.settings;
        let (evidence, view) = blocking(move || {
            let view = assess(&evidence, &policy, &heartbeats, &settings, now);
            (evidence, view)
        })
        .await?;
        self.evidence = Some(evidence);
        Ok(FleetView {
            took: started.elapsed(),
            lease_epoch: self.lease_epoch,
            ..view
        })
    }

    /// The latest heartbeat per host, from every agent that is not revoked.
    async fn latest_heartbeats(&self) -> Result<Vec<HeartbeatSeen>, StoreError> {
        let mut by_host: HashMap<String, Option<HeartbeatSeen>> = HashMap::new();
        let mut page = Page::first(Page::MAX_LIMIT);
        loop {
            let agents = self.store.list_agents(page).await?;
            let last_page = agents.len() < page.limit as usize;
            for agent in agents.into_iter().filter(|a| !a.is_revoked()) {
                let seen = agent.last_heartbeat_at.map(|received_at| HeartbeatSeen {
                    host: agent.host.clone(),
                    sent_at: received_at
                        .checked_sub(agent.clock_offset.unwrap_or_default())
                        .unwrap_or(received_at),
                    received_at,
                });
                let slot = by_host.entry(agent.host).or_default();
                if seen.as_ref().map(|s| s.received_at)
                    > slot.as_ref().map(|s: &HeartbeatSeen| s.received_at)
                {
                    *slot = seen;
                }
            }
            if last_page {
                break;
            }
            page = page.next();
        }
        // Hosts whose agents never sent a heartbeat stay in, as never seen.
        Ok(by_host
            .into_iter()
            .map(|(host, seen)| {
                seen.unwrap_or(HeartbeatSeen {
                    host,
                    sent_at: Timestamp::MIN,
                    received_at: Timestamp::MIN,
                })
            })
            .collect())
    }
}

/// Runs CPU work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SweepError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SweepError::Task(e.to_string()))
}

fn ingest(evidence: &mut Evidence, runs: &[StoredRun], policy: &Policy) {
    for run in runs {
        evidence.last_id = evidence.last_id.max(run.id);
        if let Some(latest) = LatestRun::of(&run.record) {
            let key = (
                latest.system.clone(),
                format!("{:?}", latest.kind),
                latest.repository.clone(),
            );
            // Records arrive in any order: the one that finished last stands.
            match evidence.latest.get(&key) {
                Some(known) if known.finished_at > latest.finished_at => {}
                _ => {
                    evidence.latest.insert(key, latest);
                }
            }
        }
        match evidence.inventory.ingest(&run.record, policy) {
            Ok(()) => evidence.ingested += 1,
            Err(e) => {
                evidence.unusable += 1;
                tracing::debug!("{e}");
            }
        }
    }
}

/// The pure part of a sweep: every system of `policy` at `now`.
fn assess(
    evidence: &Evidence,
    policy: &Policy,
    heartbeats: &[HeartbeatSeen],
    settings: &Settings,
    now: Timestamp,
) -> FleetView {
    let started = Instant::now();
    let agents: HashMap<String, AgentHealth> = heartbeats
        .iter()
        .map(|hb| {
            // `Timestamp::MIN` marks an agent that never sent a heartbeat.
            let last = (hb.received_at != Timestamp::MIN).then_some(hb);
            (
                hb.host.clone(),
                AgentHealth::assess(&hb.host, last, now, settings),
            )
        })
        .collect();
    let agents_offline = agents
        .values()
        .filter(|a| a.status != AgentStatus::Online)
        .count() as u64;
    let assessor = Assessor::new(policy, &evidence.inventory, settings).with_agents(&agents);
    let mut summaries: Vec<FleetSummary> = Scenario::ALL
        .iter()
        .map(|s| FleetSummary::new(policy, *s))
        .collect();
    let mut figures = Vec::with_capacity(policy.systems.len());
    let mut assessments = Vec::with_capacity(policy.systems.len());
    for a in assessor.all(now) {
        for (summary, rpo) in summaries.iter_mut().zip(a.rpo.iter()) {
            summary.add(&a.tier, rpo.status);
        }
        figures.push(SystemFigures {
            status: a.rpo.each_ref().map(|r| r.status),
            exposure_seconds: a
                .rpo
                .each_ref()
                .map(|r| r.exposure.finite().map(|d| d.as_secs_f64())),
            system: a.system.clone(),
            tier: a.tier.clone(),
        });
        assessments.push(a);
    }
    // `Assessor::all` walks the policy in id order; the lookups above rely on it.
    debug_assert!(assessments.is_sorted_by(|a, b| a.system <= b.system));
    let mut agent_health: Vec<AgentHealth> = agents.into_values().collect();
    agent_health.sort_by(|a, b| a.host.cmp(&b.host));
    FleetView {
        assessed_at: now,
        took: Duration::ZERO,
        assess_took: started.elapsed(),
        policy_digest: policy.digest.clone(),
        agents: agent_health.len() as u64,
        agents_offline,
        systems: figures.len() as u64,
        summaries,
        figures,
        assessments,
        agent_health,
        failed_runs: evidence
            .latest
            .values()
            .filter(|r| r.outcome != Outcome::Success)
            .cloned()
            .collect(),
        runs_ingested: evidence.ingested,
        runs_unusable: evidence.unusable,
        lease_epoch: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Heartbeat;
    use crate::coordinator::store::{Enrolment, EnrolmentToken, NewAgent, TokenHash};
    use crate::run::{Outcome, RepoResult, RunKind, RunRecord};
    use crate::secret::Secret;

    struct Fixed(Timestamp);
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            self.0
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A store in a temporary directory, the simulated fleet's policy (2 hosts × 3 systems:
    /// T1, T2, T3 each) and the enrolled agent of `sim-00001`.
    async fn fixture() -> (
        tempfile::TempDir,
        Store,
        Arc<RwLock<Arc<Policy>>>,
        uuid::Uuid,
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in crate::sim::policy::files(2, 3) {
            let path = dir.path().join("policies").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let policy = crate::policy::load_dir(&dir.path().join("policies")).unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::open(&url).await.unwrap();
        let token = Secret::new("lbe-test-token".to_string());
        let now = t("2026-03-01T00:00:00Z");
        store
            .create_enrolment_token(&EnrolmentToken {
                hash: TokenHash::of(&token),
                host: "sim-00001".into(),
                site: "sim-branch".into(),
                created_by: "test".into(),
                created_at: now,
                expires_at: t("2026-03-02T00:00:00Z"),
                used_at: None,
                used_by: None,
            })
            .await
            .unwrap();
        let agent = NewAgent {
            id: uuid::Uuid::new_v4(),
            token_hash: TokenHash::of(&Secret::new("agent-token".to_string())),
            version: "test".into(),
        };
        let Enrolment::Enrolled(a) = store
            .enrol_agent(&TokenHash::of(&token), &agent, now)
            .await
            .unwrap()
        else {
            panic!("not enrolled");
        };
        (dir, store, Arc::new(RwLock::new(Arc::new(policy))), a.id)
    }

    /// A successful backup of `system` captured at `cap`, at the local repository and, when
    /// `offsite`, at the off-site one too.
    fn backup(system: &str, id: &str, cap: &str, offsite: bool) -> RunRecord {
        let cap = t(cap);
        let done = cap + SignedDuration::from_mins(10);
        let mut r = RunRecord::start(RunKind::Backup, id.into(), "sim-00001".into(), cap);
        r.system = Some(system.into());
        r.capture_time = Some(cap);
        r.finished_at = done;
        r.snapshot_id = Some(format!("snap-{id}"));
        r.outcome = Outcome::Success;
        let repos: &[&str] = if offsite {
            &["sim-local", "sim-offsite"]
        } else {
            &["sim-local"]
        };
        r.repositories = repos
            .iter()
            .map(|repo| RepoResult {
                repository: (*repo).into(),
                location: if *repo == "sim-local" {
                    "local"
                } else {
                    "remote"
                }
                .into(),
                immutable: false,
                outcome: Outcome::Success,
                available_at: Some(done),
                snapshots: vec![format!("snap-{id}")],
                bytes_added: 1,
                seconds: 1.0,
                error: None,
            })
            .collect();
        r
    }

    use jiff::SignedDuration;

    fn config() -> SweepConfig {
        SweepConfig {
            // Small batches, so that the incremental reading crosses batch boundaries.
            batch: 2,
            ..SweepConfig::default()
        }
    }

    fn site_loss(view: &FleetView, system: &str) -> (Status, Option<f64>) {
        let f = view
            .figures
            .iter()
            .find(|f| f.system.as_str() == system)
            .unwrap();
        let i = Scenario::SiteLoss.index();
        (f.status[i], f.exposure_seconds[i])
    }

    #[tokio::test]
    async fn the_lease_holder_ingests_new_runs_incrementally_and_publishes_the_view() {
        let (_dir, store, policy, agent) = fixture().await;
        let now = t("2026-03-01T12:00:00Z");
        let (mut sweeper, handle) =
            Sweeper::new(store.clone(), policy, Arc::new(Fixed(now)), config());
        assert!(handle.latest().is_none());
        let received = t("2026-03-01T11:00:00Z");
        for (seq, r) in [
            backup("sim-00001-s1", "r1", "2026-03-01T02:00:00Z", true),
            backup("sim-00001-s1", "r2", "2026-03-01T06:00:00Z", false),
            backup("sim-00001-s2", "r3", "2026-03-01T06:00:00Z", true),
        ]
        .iter()
        .enumerate()
        {
            store
                .insert_run(agent, seq as u64, r, received)
                .await
                .unwrap();
        }
        store
            .record_heartbeat(
                agent,
                t("2026-03-01T11:59:00Z"),
                SignedDuration::ZERO,
                &Heartbeat {
                    drill_tasks_running: Vec::new(),
                    host: "sim-00001".into(),
                    version: "test".into(),
                    sent_at: t("2026-03-01T11:59:00Z"),
                    spool: Default::default(),
                    assignment_digest: None,
                    systems: Vec::new(),
                },
            )
            .await
            .unwrap();

        let first = sweeper.tick().await.unwrap().unwrap();
        assert!(sweeper.holds_lease());
        assert_eq!(handle.latest().unwrap().assessed_at, now);
        assert_eq!((first.systems, first.runs_ingested), (6, 3));
        assert_eq!((first.agents, first.agents_offline), (1, 0));
        // s1 (T1, 4 h): the newest off-site copy was captured at 02:00, 10 h ago.
        assert_eq!(
            site_loss(&first, "sim-00001-s1"),
            (Status::Breached, Some(36_000.0))
        );
        // s2 (T2, 24 h): captured at 06:00 and copied off site.
        assert_eq!(
            site_loss(&first, "sim-00001-s2"),
            (Status::Compliant, Some(21_600.0))
        );
        let t1 = &first.summary(Scenario::SiteLoss).unwrap().tiers;
        assert_eq!(t1.values().map(|c| c.total()).sum::<u32>(), 6);
        assert_eq!(t1[&"T3".parse::<TierId>().unwrap()].no_evidence, 2);

        // Only the new record is read: s1 now has an off-site copy from 11:00.
        store
            .insert_run(
                agent,
                4,
                &backup("sim-00001-s1", "r4", "2026-03-01T11:00:00Z", true),
                received,
            )
            .await
            .unwrap();
        let second = sweeper.tick().await.unwrap().unwrap();
        assert_eq!(second.runs_ingested, 4);
        assert_eq!(
            site_loss(&second, "sim-00001-s1"),
            (Status::Compliant, Some(3_600.0))
        );
        // Nothing new: nothing ingested twice.
        let third = sweeper.tick().await.unwrap().unwrap();
        assert_eq!(third.runs_ingested, 4);
    }

    #[tokio::test]
    async fn a_replica_without_the_lease_does_not_sweep_until_it_is_free() {
        let (_dir, store, policy, agent) = fixture().await;
        store
            .insert_run(
                agent,
                1,
                &backup("sim-00001-s1", "r1", "2026-03-01T02:00:00Z", true),
                t("2026-03-01T03:00:00Z"),
            )
            .await
            .unwrap();
        let other = store.try_acquire_lease(LEASE).await.unwrap().unwrap();
        let clock = Arc::new(Fixed(t("2026-03-01T04:00:00Z")));
        let (mut sweeper, handle) = Sweeper::new(store.clone(), policy, clock, config());
        assert!(sweeper.tick().await.unwrap().is_none());
        assert!(!sweeper.holds_lease());
        assert!(handle.latest().is_none());
        // The holder goes away: this replica takes over.
        drop(other);
        let view = sweeper.tick().await.unwrap().unwrap();
        assert!(sweeper.holds_lease());
        assert_eq!(view.runs_ingested, 1);
        assert!(handle.latest().is_some());
    }
}
