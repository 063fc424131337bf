//! The running agent: one loop that plans and starts jobs, plus background tasks for delivery
//! of spooled records, heartbeats, assignment refresh and metrics.
//!
//! Invariants: a run record is in the durable spool before anything else learns of it; the
//! schedule history is saved when a job starts (so a crash does not re-run a slot forever)
//! and when it ends; one system never runs two jobs at once; at most `max-concurrent-jobs` run;
//! a job failure is evidence, never a reason for the agent to exit. Drill tasks from heartbeat
//! answers go to the drill worker (`super::drill::worker`), beside the jobs and outside their
//! limit. Without an assignment (a standby host) the loop schedules nothing and the background
//! tasks run as usual.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use super::assignment::{self, Assignment};
use super::client::{ClientError, CoordinatorClient};
use super::config::AgentConfig;
use super::drill::Executor;
use super::drill::ledger::Ledger;
use super::drill::worker::Worker;
use super::metrics::{self, MetricsView};
use super::runner::{self, JobOrder, kind_of};
use super::schedule::{self, DueJob, DueReason, PlanOptions};
use super::spool::{Spool, SpoolLimits};
use super::state::AgentState;
use super::{AgentError, HeartbeatInfo};
use crate::api;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::engine::progress::Bars;
use crate::engine::repo::StateDir;
use crate::engine::throttle::LinkGate;
use crate::policy::{JobKind, Location, Policy};
use crate::run::{Outcome, RunError, RunRecord};

/// State shared between the loop, the background tasks and the metrics endpoint.
pub(crate) struct Shared {
    pub(crate) state: AgentState,
    pub(crate) running: BTreeMap<String, (JobKind, Timestamp)>,
    pub(crate) assignment: Option<Assignment>,
    pub(crate) assignment_error: Option<String>,
    pub(crate) last_good_at: Option<Timestamp>,
    pub(crate) next: Vec<schedule::NextRun>,
    pub(crate) late: usize,
    pub(crate) clock_offset: Option<f64>,
}

pub(crate) struct Agent {
    cfg: AgentConfig,
    host: String,
    clock: Arc<dyn Clock>,
    state_path: PathBuf,
    shared: Arc<Mutex<Shared>>,
    spool: Spool,
    delivery: Arc<Notify>,
    gate: Arc<LinkGate>,
    /// The time zone of the link's hours (the site's).
    link_tz: jiff::tz::TimeZone,
    engine: Option<(String, Arc<Engine>)>,
    /// Held while the agent runs: one agent per state directory.
    _lock: std::fs::File,
    /// The coordinator, when there is one (set by `start_background`).
    client: Option<Arc<CoordinatorClient>>,
    /// The drill tasks running now (listed in heartbeats).
    drills: super::drill::worker::Running,
}

/// The lock file that marks a running agent.
const LOCK_FILE: &str = "agent.lock";

/// Whether an agent holds the lock of `agent_dir` now.
pub(crate) fn is_running(agent_dir: &std::path::Path) -> bool {
    match std::fs::File::open(agent_dir.join(LOCK_FILE)) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while holding the lock cannot leave the plain data inconsistent in a way that
    // matters more than stopping the agent would.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a finished job task hands back to the loop.
struct Finished {
    system: String,
    job: JobKind,
    records: Vec<RunRecord>,
}

/// Commands from the coordinator (through heartbeats) to the loop.
pub(crate) enum Command {
    BackupNow(String),
}

impl Agent {
    pub(crate) fn new(cfg: AgentConfig, clock: Arc<dyn Clock>) -> Result<Agent, AgentError> {
        let host = cfg.host();
        let dir = cfg.agent_dir();
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
            context: format!("cannot create {}", dir.display()),
            source,
        })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| AgentError::Io {
                context: format!("cannot open {}", lock_path.display()),
                source,
            })?;
        if let Err(e) = lock.try_lock() {
            return Err(AgentError::Io {
                context: format!(
                    "another agent already runs with the state directory {} (lock {})",
                    cfg.state_dir.display(),
                    lock_path.display()
                ),
                source: std::io::Error::other(e.to_string()),
            });
        }
        let spool = Spool::open(
            &dir.join("spool"),
            SpoolLimits {
                max_records: cfg.spool.max_records,
                max_bytes: cfg.spool.max_bytes,
            },
        )?;
        let state_path = dir.join("state.json");
        let state = AgentState::load(&state_path);
        let gate = LinkGate::new(cfg.link.clone(), site_tz(&cfg.site, None), clock.clone());
        Ok(Agent {
            host,
            clock,
            state_path,
            shared: Arc::new(Mutex::new(Shared {
                state,
                running: BTreeMap::new(),
                assignment: None,
                assignment_error: None,
                last_good_at: None,
                next: Vec::new(),
                late: 0,
                clock_offset: None,
            })),
            spool,
            delivery: Arc::new(Notify::new()),
            gate,
            link_tz: jiff::tz::TimeZone::UTC,
            engine: None,
            _lock: lock,
            client: None,
            drills: Default::default(),
            cfg,
        })
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Installs a new assignment (the engine is rebuilt; running jobs keep the old one).
    fn install(&mut self, a: Assignment) {
        let mine = a
            .policy
            .systems
            .values()
            .filter(|s| s.host == self.host)
            .count();
        tracing::info!(
            digest = %a.policy.digest,
            systems = mine,
            "assignment loaded from {}",
            a.origin
        );
        for s in a.policy.systems.values().filter(|s| s.host == self.host) {
            if s.site.as_str() != self.cfg.site {
                tracing::warn!(
                    "system {} is at site {} but this agent is configured for site {}",
                    s.id,
                    s.site,
                    self.cfg.site
                );
            }
        }
        // The link's hours are the site's local time.
        self.link_tz = site_tz(&self.cfg.site, Some(&a.policy));
        self.gate = LinkGate::new(
            self.cfg.link.clone(),
            self.link_tz.clone(),
            self.clock.clone(),
        );
        let engine = Engine::new(
            a.policy.clone(),
            StateDir(self.cfg.state_dir.clone()),
            Bars::hidden(),
            self.clock.clone(),
        )
        .with_link(self.gate.clone());
        self.engine = Some((a.policy.digest.clone(), Arc::new(engine)));
        let mut sh = lock(&self.shared);
        sh.last_good_at = Some(a.loaded_at);
        sh.assignment_error = None;
        sh.assignment = Some(a);
    }

    fn reject(&self, error: String) {
        let mut sh = lock(&self.shared);
        if sh.assignment_error.as_deref() != Some(error.as_str()) {
            tracing::error!("new assignment refused, keeping the last good one: {error}");
        }
        sh.assignment_error = Some(error);
    }

    fn digest(&self) -> Option<String> {
        self.engine.as_ref().map(|(d, _)| d.clone())
    }

    fn save_state(&self) {
        let sh = lock(&self.shared);
        if let Err(e) = sh.state.save(&self.state_path) {
            tracing::error!("cannot save agent state {}: {e}", self.state_path.display());
        }
    }

    /// Spools records durably and wakes the delivery task.
    async fn spool(&self, records: Vec<RunRecord>) {
        push_all(&self.spool, records).await;
        self.delivery.notify_one();
    }

    /// The main loop; returns when a shutdown signal arrived and running jobs are settled.
    pub(crate) async fn run(mut self, initial: Option<Assignment>) -> Result<(), AgentError> {
        if let Some(initial) = initial {
            self.install(initial);
        }
        self.report_interrupted().await;
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
        let (assign_tx, mut assign_rx) = mpsc::channel::<Result<Assignment, String>>(4);
        let mut background = JoinSet::new();
        self.start_background(&mut background, cmd_tx, assign_tx)?;

        let mut jobs: JoinSet<Finished> = JoinSet::new();
        let mut forced: Vec<String> = Vec::new();
        let mut reload = tokio::time::interval(self.cfg.reload_every.max(Duration::from_secs(1)));
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reload.tick().await;
        let stop = crate::shutdown::requested();
        tokio::pin!(stop);

        loop {
            let wake = self.start_due(&mut jobs, &mut forced);
            tokio::select! {
                _ = tokio::time::sleep(wake) => {}
                Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                    match done {
                        Ok(f) => self.finished(f),
                        Err(e) => tracing::error!("a job task failed: {e}"),
                    }
                }
                _ = reload.tick(), if self.cfg.coordinator.is_none() => self.reload_local(),
                Some(a) = assign_rx.recv() => match a {
                    Ok(a) if Some(&a.policy.digest) != self.digest().as_ref() => self.install(a),
                    Ok(_) => {}
                    Err(e) => self.reject(e),
                },
                Some(cmd) = cmd_rx.recv() => match cmd {
                    Command::BackupNow(system) => forced.push(system),
                },
                () = &mut stop => break,
            }
        }
        self.shutdown(jobs).await;
        background.abort_all();
        // A last delivery attempt, briefly: whatever is left stays spooled for next time.
        if let Some(client) = &self.client {
            let flush = super::client::deliver(&self.spool, client, 100);
            match tokio::time::timeout(Duration::from_secs(5), flush).await {
                Ok(report) if report.remaining > 0 => tracing::info!(
                    remaining = report.remaining,
                    "run records left in the spool for the next start"
                ),
                Ok(_) => {}
                Err(_) => tracing::info!("final delivery timed out; records stay spooled"),
            }
        }
        Ok(())
    }

    fn reload_local(&mut self) {
        let Some(dir) = self.cfg.policy_dir.clone() else {
            return;
        };
        match assignment::load_local(&dir, self.now()) {
            Ok(a) if Some(&a.policy.digest) != self.digest().as_ref() => self.install(a),
            Ok(_) => {
                let now = self.now();
                let mut sh = lock(&self.shared);
                sh.assignment_error = None;
                sh.last_good_at = Some(now);
            }
            Err(e) => self.reject(e.to_string()),
        }
    }

    /// Plans, starts what may start, and returns how long to sleep before planning again.
    fn start_due(&mut self, jobs: &mut JoinSet<Finished>, forced: &mut Vec<String>) -> Duration {
        let Some((_, engine)) = self.engine.clone() else {
            return Duration::from_secs(5);
        };
        let policy = engine.policy();
        let now = self.now();
        let specs = schedule::jobs_for_host(policy, &self.host);
        let options = PlanOptions {
            jitter_max: self.cfg.jitter,
            host: self.host.clone(),
        };
        let (plan, running_systems) = {
            let mut sh = lock(&self.shared);
            if sh.state.history.observe(&specs, now) {
                drop(sh);
                self.save_state();
                sh = lock(&self.shared);
            }
            let plan = schedule::plan(&specs, &sh.state.history, now, &options);
            (plan, sh.running.keys().cloned().collect::<Vec<_>>())
        };
        // Late jobs first (in plan order), so that a busy system's long-due check or
        // read-data is not starved by its frequent backups; then the rest in plan order.
        let mut due: Vec<DueJob> = plan.late.clone();
        due.extend(plan.due.iter().filter(|d| !plan.late.contains(d)).cloned());
        // "Back up now" from the coordinator: a backup due at once, ahead of the schedule.
        let mut asked = Vec::new();
        for system in forced.drain(..) {
            if let Some(s) = policy.system(&system).filter(|s| s.host == self.host) {
                due.insert(0, DueJob::forced(s.id.clone(), JobKind::Backup, now));
                asked.push(system);
            } else {
                tracing::warn!("backup-now for {system}, which is not assigned to this host");
            }
        }
        // Copies wait for the link's window; they stay due until it opens.
        let window_open = self.cfg.link.window_open(now, &self.link_tz);
        due.retain(|d| d.job != JobKind::Copy || window_open);
        let free = self.cfg.max_concurrent_jobs.saturating_sub(jobs.len());
        let start = schedule::select_runnable(&due, &running_systems, free);
        // A backup-now for a system busy with another job (or with no free slot) waits for the
        // next round instead of being lost: the coordinator hands each command out only once.
        forced.extend(asked.into_iter().filter(|system| {
            !start
                .iter()
                .any(|d| d.reason == DueReason::Forced && d.system.as_str() == system)
        }));
        for d in start {
            self.start(jobs, &engine, &specs, d, now);
        }
        {
            let mut sh = lock(&self.shared);
            sh.next = plan.next.clone();
            sh.late = plan.late.len();
        }
        let mut wake = plan
            .next_wake
            .map_or(Duration::from_secs(60), |t| until(now, t))
            .min(Duration::from_secs(60));
        if !window_open
            && plan.due.iter().any(|d| d.job == JobKind::Copy)
            && let Some(open) = self.cfg.link.next_window_opens(now, &self.link_tz)
        {
            wake = wake.min(until(now, open));
        }
        wake.max(Duration::from_millis(200))
    }

    fn start(
        &self,
        jobs: &mut JoinSet<Finished>,
        engine: &Arc<Engine>,
        specs: &[schedule::JobSpec],
        d: DueJob,
        now: Timestamp,
    ) {
        let policy = engine.policy();
        let mut order = JobOrder {
            system: d.system.to_string(),
            job: d.job,
            read_data_subsets: Vec::new(),
            not_yet_created: Vec::new(),
        };
        {
            let mut sh = lock(&self.shared);
            if d.job == JobKind::ReadData
                && let Some(sys) = policy.system(d.system.as_str())
                && let Some(spec) = specs
                    .iter()
                    .find(|s| s.system == d.system && s.job == JobKind::ReadData)
            {
                let window = policy.tier_of(sys).read_data_window.as_std();
                for repo in &sys.repositories {
                    let counter = sh.state.rotation.get(repo.as_str()).copied().unwrap_or(0);
                    let subset = schedule::read_data_subset(&spec.schedule, window, now, counter);
                    order
                        .read_data_subsets
                        .push((repo.to_string(), subset.to_string()));
                }
            }
            if let Some(sys) = policy.system(d.system.as_str()) {
                let known = sh.state.systems.get(d.system.as_str());
                order.not_yet_created = sys
                    .repositories
                    .iter()
                    .skip(1)
                    .filter(|r| {
                        known
                            .and_then(|k| k.repositories.get(r.as_str()))
                            .is_none_or(|x| x.last_success.is_none())
                    })
                    .map(|r| r.to_string())
                    .collect();
            }
            sh.state.history.mark_started(&d, now);
            sh.running.insert(d.system.to_string(), (d.job, now));
            sh.state.in_flight.insert(
                d.system.to_string(),
                super::state::InFlight {
                    job: d.job,
                    started_at: now,
                },
            );
        }
        self.save_state();
        tracing::info!(
            system = %d.system,
            job = %d.job,
            slot = %d.slot,
            delay_ms = (now - d.run_at).total(jiff::Unit::Millisecond).unwrap_or(0.0) as i64,
            "starting"
        );
        let engine = engine.clone();
        let host = self.host.clone();
        let spool = self.spool.clone();
        let delivery = self.delivery.clone();
        jobs.spawn(async move {
            let records = runner::run_job(&engine, &host, &order).await;
            // Durable before anyone else sees it.
            push_all(&spool, records.clone()).await;
            delivery.notify_one();
            Finished {
                system: order.system,
                job: order.job,
                records,
            }
        });
    }

    fn finished(&self, f: Finished) {
        let now = self.now();
        let outcome = worst(&f.records);
        {
            let mut sh = lock(&self.shared);
            sh.running.remove(&f.system);
            sh.state.in_flight.remove(&f.system);
            let has_offsite = sh
                .assignment
                .as_ref()
                .and_then(|a| a.policy.system(&f.system).map(|s| (a, s)))
                .is_some_and(|(a, s)| {
                    a.policy
                        .repositories_of(s)
                        .iter()
                        .any(|r| matches!(r.location, Location::SameCity | Location::Remote))
                });
            for r in &f.records {
                sh.state.record(f.job, r, has_offsite);
                if f.job == JobKind::ReadData && r.outcome == Outcome::Success {
                    for repo in &r.repositories {
                        *sh.state
                            .rotation
                            .entry(repo.repository.clone())
                            .or_insert(0) += 1;
                    }
                }
            }
            if let Some(id) = sh
                .assignment
                .as_ref()
                .and_then(|a| a.policy.system(&f.system))
                .map(|s| s.id.clone())
            {
                sh.state.history.mark_finished(&id, f.job, now, outcome);
            }
        }
        self.save_state();
        for r in &f.records {
            match r.outcome {
                Outcome::Success => {
                    tracing::info!(system = %f.system, job = %f.job, run = %r.run_id, "succeeded")
                }
                _ => tracing::warn!(
                    system = %f.system,
                    job = %f.job,
                    run = %r.run_id,
                    outcome = ?r.outcome,
                    error = %first_error(r),
                    "did not succeed"
                ),
            }
        }
    }

    /// Reports the jobs a previous agent process started and never finished (it was killed or
    /// the host lost power) as failed runs, so that the evidence shows them.
    async fn report_interrupted(&self) {
        let left: Vec<(String, super::state::InFlight)> = {
            let sh = lock(&self.shared);
            sh.state
                .in_flight
                .iter()
                .map(|(s, f)| (s.clone(), *f))
                .collect()
        };
        for (system, f) in left {
            let message = format!(
                "the agent stopped during this {} (crash, kill or power loss); the repository is \
                 unaffected and the next run completes the work",
                f.job
            );
            tracing::warn!(system = %system, job = %f.job, "{message}");
            let r = self.failure_record(&system, f.job, f.started_at, "interrupted", message);
            self.spool(vec![r.clone()]).await;
            self.finished(Finished {
                system,
                job: f.job,
                records: vec![r],
            });
        }
    }

    /// A failed run record made by the agent itself (not by the engine).
    fn failure_record(
        &self,
        system: &str,
        job: JobKind,
        started: Timestamp,
        kind: &str,
        message: String,
    ) -> RunRecord {
        let mut r = RunRecord::start(
            kind_of(job),
            uuid::Uuid::new_v4().to_string(),
            self.host.clone(),
            started,
        );
        r.system = Some(system.to_string());
        if let Some(a) = &lock(&self.shared).assignment
            && let Some(s) = a.policy.system(system)
        {
            r.site = Some(s.site.to_string());
            r.tier = Some(s.tier.to_string());
        }
        r.finished_at = self.now();
        r.outcome = Outcome::Failed;
        r.error = Some(RunError {
            kind: kind.into(),
            message,
        });
        r
    }

    /// Stops starting jobs, gives running ones the grace period, and records the ones it had
    /// to abandon as failed runs (the repositories stay consistent: restic's format makes an
    /// interrupted write invisible, and the next run completes).
    async fn shutdown(&self, mut jobs: JoinSet<Finished>) {
        let grace = self.cfg.shutdown_grace;
        tracing::info!(
            running = jobs.len(),
            "shutting down; running jobs get {}",
            humantime::format_duration(grace)
        );
        let deadline = tokio::time::Instant::now() + grace;
        while !jobs.is_empty() {
            match tokio::time::timeout_at(deadline, jobs.join_next()).await {
                Ok(Some(Ok(f))) => self.finished(f),
                Ok(Some(Err(e))) => tracing::error!("a job task failed: {e}"),
                Ok(None) => break,
                Err(_) => break,
            }
        }
        let abandoned: Vec<(String, (JobKind, Timestamp))> = {
            let sh = lock(&self.shared);
            sh.running.iter().map(|(s, j)| (s.clone(), *j)).collect()
        };
        if abandoned.is_empty() {
            return;
        }
        let mut records = Vec::new();
        for (system, (job, started)) in &abandoned {
            let message = format!(
                "the agent was stopped and the {job} did not finish within the {} grace period; \
                 the next run completes it",
                humantime::format_duration(grace)
            );
            records.push(self.failure_record(system, *job, *started, "aborted", message));
        }
        self.spool(records.clone()).await;
        for r in records {
            let job = abandoned
                .iter()
                .find(|(s, _)| Some(s) == r.system.as_ref())
                .map_or(JobKind::Backup, |(_, (j, _))| *j);
            self.finished(Finished {
                system: r.system.clone().unwrap_or_default(),
                job,
                records: vec![r],
            });
        }
        jobs.abort_all();
    }

    fn start_background(
        &mut self,
        set: &mut JoinSet<()>,
        commands: mpsc::Sender<Command>,
        assignments: mpsc::Sender<Result<Assignment, String>>,
    ) -> Result<(), AgentError> {
        if let Some(m) = &self.cfg.metrics {
            let listen = m.listen;
            let scrape = self.scraper();
            set.spawn(async move {
                if let Err(e) = metrics::serve(listen, scrape).await {
                    tracing::error!("metrics endpoint on {listen} failed: {e}");
                }
            });
        }
        let Some(cc) = self.cfg.coordinator.clone() else {
            return Ok(());
        };
        let client = Arc::new(super::coordinator_client(&self.cfg, &cc)?);
        self.client = Some(client.clone());
        // Drill tasks: offered in heartbeat answers, run by the drill worker.
        let (drill_tx, drill_rx) = mpsc::channel::<Vec<api::DrillTask>>(8);
        {
            let agent_dir = self.cfg.agent_dir();
            let ledger = Ledger::open(&agent_dir.join("drill")).map_err(|e| AgentError::Io {
                context: "cannot open the drill task ledger".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let worker = Worker {
                executor: Arc::new(Executor {
                    host: self.host.clone(),
                    state: StateDir(self.cfg.state_dir.clone()),
                    work: agent_dir.join("drill").join("work"),
                    clock: self.clock.clone(),
                }),
                ledger,
                client: client.clone(),
                running: self.drills.clone(),
                clock: self.clock.clone(),
            };
            set.spawn(worker.run(drill_rx));
        }
        // Delivery of spooled records: at least once, in order, with backoff.
        {
            let client = client.clone();
            let spool = self.spool.clone();
            let notify = self.delivery.clone();
            set.spawn(async move { deliver_loop(client, spool, notify).await });
        }
        // Heartbeats; they also carry commands and the current assignment digest.
        {
            let client = client.clone();
            let info = self.heartbeat_info();
            let every = cc.heartbeat_every.max(Duration::from_secs(1));
            let refresh = Arc::new(Notify::new());
            let refresh2 = refresh.clone();
            let beat_client = client.clone();
            set.spawn(async move {
                heartbeat_loop(beat_client, info, every, commands, drill_tx, refresh2).await
            });
            let client = client.clone();
            let agent_dir = self.cfg.agent_dir();
            let clock = self.clock.clone();
            let every = self.cfg.reload_every.max(Duration::from_secs(1));
            let digest = lock(&self.shared)
                .assignment
                .as_ref()
                .and_then(|a| a.wire_digest.clone());
            set.spawn(async move {
                assignment_loop(
                    client,
                    agent_dir,
                    clock,
                    every,
                    digest,
                    refresh,
                    assignments,
                )
                .await
            });
        }
        Ok(())
    }

    fn heartbeat_info(&self) -> HeartbeatInfo {
        HeartbeatInfo {
            host: self.host.clone(),
            site: self.cfg.site.clone(),
            shared: self.shared.clone(),
            spool: self.spool.clone(),
            clock: self.clock.clone(),
            drills: self.drills.clone(),
        }
    }

    fn scraper(&self) -> Arc<dyn Fn() -> String + Send + Sync> {
        let shared = self.shared.clone();
        let spool = self.spool.clone();
        let host = self.host.clone();
        let site = self.cfg.site.clone();
        let clock = self.clock.clone();
        Arc::new(move || {
            let (depth, dropped) = (spool.depth(), spool.dropped());
            let sh = lock(&shared);
            let now = clock.now();
            let assigned = sh.assignment.as_ref().map_or(0, |a| {
                a.policy.systems.values().filter(|s| s.host == host).count()
            });
            metrics::render(&MetricsView {
                host: &host,
                site: &site,
                state: &sh.state,
                spool_depth: depth,
                spool_dropped: dropped,
                running: sh.running.len(),
                late: sh.late,
                systems_assigned: assigned,
                assignment_age: sh
                    .last_good_at
                    .map_or(0.0, |t| (now - t).total(jiff::Unit::Second).unwrap_or(0.0)),
                assignment_ok: sh.assignment_error.is_none(),
                clock_offset: sh.clock_offset,
                now,
            })
        })
    }
}

/// The run's error, or the first repository's error when the run itself has none.
fn first_error(r: &RunRecord) -> String {
    r.error
        .as_ref()
        .map(|e| e.message.clone())
        .or_else(|| {
            r.repositories.iter().find_map(|x| {
                x.error
                    .as_ref()
                    .map(|e| format!("{}: {}", x.repository, e.message))
            })
        })
        .unwrap_or_default()
}

fn worst(records: &[RunRecord]) -> Outcome {
    if records.iter().any(|r| r.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if records.iter().any(|r| r.outcome == Outcome::Partial) {
        Outcome::Partial
    } else {
        Outcome::Success
    }
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    let ms = (t - now).total(jiff::Unit::Millisecond).unwrap_or(0.0);
    Duration::from_millis(ms.max(0.0) as u64)
}

/// The time zone link windows are read in: the configured site's, else UTC.
fn site_tz(site: &str, policy: Option<&Policy>) -> jiff::tz::TimeZone {
    policy
        .and_then(|p| p.sites.get(site))
        .map_or(jiff::tz::TimeZone::UTC, |s| s.timezone.tz().clone())
}

/// Writes records to the spool on a blocking thread (every write is fsynced).
async fn push_all(spool: &Spool, records: Vec<RunRecord>) {
    let spool = spool.clone();
    let result = tokio::task::spawn_blocking(move || {
        for r in &records {
            if let Err(e) = spool.push(r) {
                // The record is still in the run journal (`<state>/runs/`); say so loudly.
                tracing::error!(
                    "cannot spool run record {} ({e}); it stays in the run journal only",
                    r.run_id
                );
            }
        }
    })
    .await;
    if let Err(e) = result {
        tracing::error!("spooling run records failed: {e}");
    }
}

async fn deliver_loop(client: Arc<CoordinatorClient>, spool: Spool, notify: Arc<Notify>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let report = super::client::deliver(&spool, &client, 100).await;
        match &report.error {
            None => {
                backoff = Duration::from_secs(1);
                if report.remaining == 0 {
                    notify.notified().await;
                }
            }
            Some(e) => {
                tracing::warn!(
                    remaining = report.remaining,
                    "run records not delivered yet ({e}); retrying in {}",
                    humantime::format_duration(backoff)
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = notify.notified() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

async fn heartbeat_loop(
    client: Arc<CoordinatorClient>,
    info: HeartbeatInfo,
    every: Duration,
    commands: mpsc::Sender<Command>,
    drills: mpsc::Sender<Vec<api::DrillTask>>,
    refresh: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (body, sent) = info.build();
        match client.heartbeat(&body).await {
            Ok(resp) => {
                let received = info.clock.now();
                info.apply(&resp, sent, received);
                if resp.assignment_digest.is_some()
                    && resp.assignment_digest != body.assignment_digest
                {
                    refresh.notify_one();
                }
                for c in super::commands_of(&resp) {
                    let _ = commands.send(c).await;
                }
                if !resp.drill_tasks.is_empty() {
                    let _ = drills.send(resp.drill_tasks).await;
                }
            }
            Err(e) => tracing::warn!("heartbeat not delivered: {e}"),
        }
    }
}

async fn assignment_loop(
    client: Arc<CoordinatorClient>,
    agent_dir: PathBuf,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut digest: Option<String>,
    refresh: Arc<Notify>,
    out: mpsc::Sender<Result<Assignment, String>>,
) {
    loop {
        match client.assignment(digest.as_deref()).await {
            Ok(Some(a)) => {
                let result = super::accept_wire(&agent_dir, a, clock.now());
                if let Ok(ok) = &result {
                    digest = ok.wire_digest.clone();
                }
                let _ = out.send(result).await;
            }
            Ok(None) => {}
            // Nothing assigned to this host (a standby host): not a problem, asked again later.
            Err(ClientError::Rejected { status: 404, .. }) if digest.is_none() => {}
            Err(e) if digest.is_none() => tracing::warn!("no assignment fetched yet: {e}"),
            Err(e) => tracing::warn!("assignment not refreshed (running on the cached one): {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = refresh.notified() => {}
        }
    }
}
