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

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::watch;

use super::store::{LeaseGuard, Page, Store, StoreError, StoredRun};
use crate::assess::{
    AgentHealth, AgentStatus, Assessor, FleetSummary, HeartbeatSeen, Inventory, Scenario, Settings,
    Status,
};
use crate::clock::Clock;
use crate::policy::{Policy, SystemId, TierId};

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
    /// Run records taken into the inventory since it was built, and those it could not use.
    pub runs_ingested: u64,
    pub runs_unusable: u64,
}

impl FleetView {
    /// The summary of one scenario.
    pub fn summary(&self, scenario: Scenario) -> Option<&FleetSummary> {
        self.summaries.iter().find(|s| s.scenario == scenario)
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
    ingested: u64,
    unusable: u64,
}

impl Evidence {
    fn new(policy_digest: &str) -> Self {
        Evidence {
            inventory: Inventory::new(),
            last_id: 0,
            policy_digest: policy_digest.to_string(),
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
            tracing::info!("this replica now runs the assessment sweep");
        }
        let view = Arc::new(self.sweep().await?);
        self.tx.send_replace(Some(Arc::clone(&view)));
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
        // New records, a batch at a time; each batch is ingested off the async threads.
        loop {
            let runs = self
                .store
                .runs_after(evidence.last_id, self.config.batch)
                .await?;
            let full = runs.len() >= self.config.batch as usize;
            if runs.is_empty() {
                break;
            }
            let p = Arc::clone(&policy);
            evidence = blocking(move || {
                ingest(&mut evidence, &runs, &p);
                evidence
            })
            .await?;
            if !full {
                break;
            }
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
            system: a.system,
            tier: a.tier,
        });
    }
    FleetView {
        assessed_at: now,
        took: Duration::ZERO,
        assess_took: started.elapsed(),
        policy_digest: policy.digest.clone(),
        agents: agents.len() as u64,
        agents_offline,
        systems: figures.len() as u64,
        summaries,
        figures,
        runs_ingested: evidence.ingested,
        runs_unusable: evidence.unusable,
    }
}
