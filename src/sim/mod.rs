//! `lifeboat fleet-sim`: a load generator for the coordinator. N simulated agents (tokio tasks
//! sharing one HTTP connection pool through the agent's own [`CoordinatorClient`]) enrol with
//! one-time tokens, then each sends a heartbeat every `heartbeat_every` and, every `run_every`,
//! one run record per system (backup, then copy, with a check every fifth round; capture and
//! availability times as a real agent reports them). It measures what the issue asks of the
//! coordinator: records ingested per second, heartbeat and submit latency (p50/p99/max), errors,
//! the coordinator's RSS and CPU (from `/proc/<pid>` when given its pid) and the duration of its
//! last assessment sweep (from `/metrics`).
//!
//! Enrolment tokens are issued through the coordinator's store, as `lifeboat coordinator
//! enrol-token` does, from the `coordinator.toml` passed with `--config`; the agents then enrol
//! over HTTP like real ones. The coordinator's policy must name the hosts `sim-00001`… (write it
//! with `lifeboat fleet-sim policy`, see [`policy`]).
//!
//! This is a tool, not a service: it reads the wall clock and `/proc`, and it is not used by the
//! coordinator or the agent.

pub mod policy;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::Semaphore;
use url::Url;

use crate::agent::client::{ClientConfig, ClientConfigError, CoordinatorClient};
use crate::api::{EnrolRequest, Heartbeat, RunBatch, RunEnvelope, SpoolStatus};
use crate::coordinator::config::CoordinatorConfig;
use crate::coordinator::store::{EnrolmentToken, NewAuditEntry, Store, StoreError, TokenHash};
use crate::policy::{Problem, SiteId};
use crate::run::{CheckScope, Outcome, RepoResult, RunKind, RunRecord};
use crate::secret::Secret;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub coordinator: Url,
    /// The coordinator's `coordinator.toml`: its database is where enrolment tokens are issued.
    pub coordinator_config: PathBuf,
    pub agents: usize,
    pub systems_per_agent: usize,
    pub duration: Duration,
    /// Requests in flight at most (enrolments, heartbeats and submissions together).
    pub concurrency: usize,
    pub heartbeat_every: Duration,
    pub run_every: Duration,
    /// The coordinator's process id, for its RSS and CPU.
    pub coordinator_pid: Option<u32>,
}

/// Why the simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}")]
    Config(Problem),
    #[error("the coordinator's database: {0}")]
    Store(#[from] StoreError),
    #[error("the coordinator URL: {0}")]
    Client(#[from] ClientConfigError),
    #[error("no agent could enrol ({0}); is the coordinator running with the fleet-sim policy?")]
    NoAgent(String),
    #[error("{0}")]
    Usage(String),
}

/// Latency figures of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Latency {
            count: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1],
        }
    }
}

/// The requests of one [`WINDOW`] of the measured phase: where a tail comes from (the first
/// round's alerts, a sweep, a policy reload) shows here and is averaged away in the totals.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Seconds from the start of the measured phase.
    pub from_s: u64,
    pub heartbeat: Latency,
    pub submit: Latency,
    /// The share of this machine's CPU time its hypervisor gave to others (`steal` in
    /// `/proc/stat`): on a shared VM, latency in a window with much steal measures the host.
    pub steal_percent: Option<f64>,
}

/// The width of a [`Window`].
pub const WINDOW: Duration = Duration::from_secs(10);

/// Splits `(when, ms)` samples into windows of [`WINDOW`] from `start`.
fn windows(
    start: Instant,
    heartbeats: &[(Instant, f64)],
    submits: &[(Instant, f64)],
    steal: &[f64],
) -> Vec<Window> {
    let index =
        |at: Instant| (at.saturating_duration_since(start).as_secs() / WINDOW.as_secs()) as usize;
    let n = heartbeats
        .iter()
        .chain(submits)
        .map(|(at, _)| index(*at) + 1)
        .max()
        .unwrap_or(0);
    let split = |samples: &[(Instant, f64)]| {
        let mut by: Vec<Vec<f64>> = vec![Vec::new(); n];
        for (at, ms) in samples {
            by[index(*at)].push(*ms);
        }
        by
    };
    split(heartbeats)
        .into_iter()
        .zip(split(submits))
        .enumerate()
        .map(|(i, (h, s))| Window {
            from_s: i as u64 * WINDOW.as_secs(),
            heartbeat: Latency::of(h),
            submit: Latency::of(s),
            steal_percent: steal.get(i).copied(),
        })
        .collect()
}

/// The coordinator process over the run (from `/proc`).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessFigures {
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
    /// CPU time over wall time of the measured phase; 200 % is both cores of a 2-core machine.
    pub cpu_percent: f64,
}

/// The coordinator's last sweep, from `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepFigures {
    pub systems: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub assess_seconds: Option<f64>,
}

/// What a simulation measured.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub agents: usize,
    pub systems: usize,
    pub enrol_seconds: f64,
    pub run_seconds: f64,
    pub records_sent: u64,
    pub records_accepted: u64,
    pub records_rejected: u64,
    pub records_per_second: f64,
    pub heartbeat: Latency,
    pub submit: Latency,
    /// The measured phase in windows of [`WINDOW`].
    pub windows: Vec<Window>,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub coordinator: Option<ProcessFigures>,
    pub sweep: SweepFigures,
}

impl std::fmt::Display for SimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fleet: {} agents, {} systems (enrolled in {:.1} s)",
            self.agents, self.systems, self.enrol_seconds
        )?;
        writeln!(
            f,
            "ingest: {} records sent in {:.1} s, {} accepted, {} rejected: {:.0} records/s",
            self.records_sent,
            self.run_seconds,
            self.records_accepted,
            self.records_rejected,
            self.records_per_second
        )?;
        for (name, l) in [("heartbeat", &self.heartbeat), ("submit", &self.submit)] {
            writeln!(
                f,
                "{name}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.count, l.p50_ms, l.p99_ms, l.max_ms
            )?;
        }
        let p99s = |l: fn(&Window) -> &Latency| {
            self.windows
                .iter()
                .map(|w| format!("{:.0}", l(w).p99_ms))
                .collect::<Vec<_>>()
                .join(" ")
        };
        writeln!(
            f,
            "p99 per {} s window, ms: heartbeat {}; submit {}",
            WINDOW.as_secs(),
            p99s(|w| &w.heartbeat),
            p99s(|w| &w.submit)
        )?;
        if self.windows.iter().any(|w| w.steal_percent.is_some()) {
            let steal: Vec<String> = self
                .windows
                .iter()
                .map(|w| w.steal_percent.map_or("-".into(), |p| format!("{p:.0}")))
                .collect();
            writeln!(f, "CPU steal per window, %: {}", steal.join(" "))?;
        }
        writeln!(f, "errors: {}", self.errors)?;
        for e in &self.first_errors {
            writeln!(f, "  {e}")?;
        }
        if let Some(c) = &self.coordinator {
            writeln!(
                f,
                "coordinator: RSS {:.0} MiB (peak {:.0} MiB), CPU {:.0} %",
                c.rss_mib, c.peak_rss_mib, c.cpu_percent
            )?;
        }
        let s = &self.sweep;
        match (s.duration_seconds, s.assess_seconds) {
            (Some(d), Some(a)) => writeln!(
                f,
                "last sweep: {} systems, {:.3} s (assessing {:.3} s)",
                s.systems.unwrap_or(0.0),
                d,
                a
            ),
            _ => writeln!(f, "last sweep: none reported by /metrics yet"),
        }
    }
}

/// Counters shared by the simulated agents.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    first_errors: Mutex<Vec<String>>,
    heartbeat_ms: Mutex<Vec<(Instant, f64)>>,
    submit_ms: Mutex<Vec<(Instant, f64)>>,
}

impl Tally {
    fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_errors.lock().unwrap_or_else(|p| p.into_inner());
        if first.len() < 5 {
            first.push(format!("{what}: {e}"));
        }
    }

    fn sample(list: &Mutex<Vec<(Instant, f64)>>, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        list.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((started, ms));
    }
}

/// Runs the simulation and reports.
pub async fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    if config.agents == 0 || config.systems_per_agent == 0 || config.concurrency == 0 {
        return Err(SimError::Usage(
            "--agents, --systems-per-agent and --concurrency must be at least 1".into(),
        ));
    }
    let tokens = issue_tokens(config).await?;
    let mut client_config = ClientConfig::new(config.coordinator.clone());
    client_config.allow_http = true;
    let base = CoordinatorClient::new(&client_config, None)?;
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(Semaphore::new(config.concurrency));

    // Enrolment, `concurrency` at a time.
    let started = Instant::now();
    let site: SiteId = policy::SITE
        .parse()
        .map_err(|_| SimError::Usage("bad site id".into()))?;
    let clients: Vec<(usize, CoordinatorClient)> =
        futures::stream::iter(tokens.into_iter().enumerate())
            .map(|(i, token)| {
                let base = base.clone();
                let tally = Arc::clone(&tally);
                let site = site.clone();
                async move {
                    let request = EnrolRequest {
                        enrolment_token: token.into(),
                        host: policy::host(i),
                        site,
                        version: env!("CARGO_PKG_VERSION").to_string(),
                    };
                    match base.enrol(&request).await {
                        Ok(answer) => {
                            let mut client = base.clone();
                            client.set_token(answer.agent_token.into_secret());
                            Some((i, client))
                        }
                        Err(e) => {
                            tally.error("enrol", e);
                            None
                        }
                    }
                }
            })
            .buffer_unordered(config.concurrency)
            .filter_map(|c| async move { c })
            .collect()
            .await;
    let enrol_seconds = started.elapsed().as_secs_f64();
    if clients.is_empty() {
        let first = tally
            .first_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first()
            .cloned()
            .unwrap_or_default();
        return Err(SimError::NoAgent(first));
    }

    // The measured phase.
    let cpu_before = config.coordinator_pid.and_then(cpu_ticks);
    let started = Instant::now();
    let steal = tokio::spawn(sample_steal(config.duration));
    let deadline = tokio::time::Instant::now() + config.duration;
    let n = clients.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (i, client)) in clients.into_iter().enumerate() {
        // Spread the agents' first calls evenly over one period, like a real fleet.
        let offset = config
            .run_every
            .min(config.heartbeat_every)
            .mul_f64(k as f64 / n as f64);
        let agent = SimAgent {
            index: i,
            systems: config.systems_per_agent,
            client,
            gate: Arc::clone(&gate),
            tally: Arc::clone(&tally),
            seq: 0,
            round: 0,
            snapshots: vec![None; config.systems_per_agent],
        };
        tasks.spawn(agent.run(offset, config.heartbeat_every, config.run_every, deadline));
    }
    while tasks.join_next().await.is_some() {}
    let run_seconds = started.elapsed().as_secs_f64();
    let coordinator = config.coordinator_pid.and_then(|pid| {
        let (rss, peak) = rss_mib(pid)?;
        let ticks = cpu_ticks(pid)?.saturating_sub(cpu_before?);
        Some(ProcessFigures {
            rss_mib: rss,
            peak_rss_mib: peak,
            // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
            cpu_percent: ticks as f64 / run_seconds,
        })
    });
    let sweep = sweep_figures(&config.coordinator).await;
    let take = |m: &Mutex<Vec<(Instant, f64)>>| {
        std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()))
    };
    let (heartbeats, submits) = (take(&tally.heartbeat_ms), take(&tally.submit_ms));
    let ms = |samples: &[(Instant, f64)]| samples.iter().map(|(_, ms)| *ms).collect();
    let accepted = tally.accepted.load(Ordering::Relaxed);
    Ok(SimReport {
        agents: n,
        systems: n * config.systems_per_agent,
        enrol_seconds,
        run_seconds,
        records_sent: tally.sent.load(Ordering::Relaxed),
        records_accepted: accepted,
        records_rejected: tally.rejected.load(Ordering::Relaxed),
        records_per_second: accepted as f64 / run_seconds.max(0.001),
        heartbeat: Latency::of(ms(&heartbeats)),
        submit: Latency::of(ms(&submits)),
        windows: windows(
            started,
            &heartbeats,
            &submits,
            &steal.await.unwrap_or_default(),
        ),
        errors: tally.errors.load(Ordering::Relaxed),
        first_errors: take_errors(&tally),
        coordinator,
        sweep,
    })
}

fn take_errors(tally: &Tally) -> Vec<String> {
    std::mem::take(&mut *tally.first_errors.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Issues one enrolment token per simulated host in the coordinator's store.
async fn issue_tokens(config: &SimConfig) -> Result<Vec<Secret>, SimError> {
    let cfg = CoordinatorConfig::load(&config.coordinator_config).map_err(SimError::Config)?;
    let store = Store::open(&cfg.database).await?;
    let now = Timestamp::now();
    let expires = now
        .checked_add(SignedDuration::from_hours(2))
        .unwrap_or(now);
    let mut tokens = Vec::with_capacity(config.agents);
    for i in 0..config.agents {
        let token = Secret::new(format!(
            "lbe-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        store
            .create_enrolment_token(&EnrolmentToken {
                hash: TokenHash::of(&token),
                host: policy::host(i),
                site: policy::SITE.to_string(),
                created_by: "fleet-sim".into(),
                created_at: now,
                expires_at: expires,
                used_at: None,
                used_by: None,
            })
            .await?;
        tokens.push(token);
    }
    store
        .append_audit(&NewAuditEntry {
            at: now,
            actor: "fleet-sim".into(),
            action: "enrolment-token.issued".into(),
            target: format!(
                "hosts:{}..{}",
                policy::host(0),
                policy::host(config.agents - 1)
            ),
            detail: serde_json::json!({ "count": config.agents, "site": policy::SITE }),
        })
        .await?;
    store.close().await;
    Ok(tokens)
}

/// One simulated agent.
struct SimAgent {
    index: usize,
    systems: usize,
    client: CoordinatorClient,
    gate: Arc<Semaphore>,
    tally: Arc<Tally>,
    seq: u64,
    round: u64,
    /// The newest snapshot of each system (what the next copy carries).
    snapshots: Vec<Option<String>>,
}

impl SimAgent {
    async fn run(
        mut self,
        offset: Duration,
        heartbeat_every: Duration,
        run_every: Duration,
        deadline: tokio::time::Instant,
    ) {
        let start = tokio::time::Instant::now() + offset;
        let mut beats = tokio::time::interval_at(start, heartbeat_every);
        let mut runs = tokio::time::interval_at(start, run_every);
        for t in [&mut beats, &mut runs] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                _ = beats.tick() => self.heartbeat().await,
                _ = runs.tick() => self.submit().await,
            }
        }
    }

    async fn heartbeat(&mut self) {
        let beat = Heartbeat {
            drill_tasks_running: Vec::new(),
            host: policy::host(self.index),
            version: env!("CARGO_PKG_VERSION").to_string(),
            sent_at: Timestamp::now(),
            spool: SpoolStatus::default(),
            assignment_digest: None,
            systems: Vec::new(),
        };
        let Ok(_permit) = self.gate.acquire().await else {
            return;
        };
        let started = Instant::now();
        match self.client.heartbeat(&beat).await {
            Ok(_) => Tally::sample(&self.tally.heartbeat_ms, started),
            Err(e) => self.tally.error("heartbeat", e),
        }
    }

    async fn submit(&mut self) {
        let now = Timestamp::now();
        let records: Vec<RunEnvelope> = (0..self.systems)
            .map(|j| {
                self.seq += 1;
                let record = self.record(j, now);
                RunEnvelope {
                    key: record.run_id.clone(),
                    seq: self.seq,
                    system: record.system.clone(),
                    record,
                }
            })
            .collect();
        self.round += 1;
        let n = records.len() as u64;
        let batch = RunBatch { records };
        let Ok(_permit) = self.gate.acquire().await else {
            return;
        };
        self.tally.sent.fetch_add(n, Ordering::Relaxed);
        let started = Instant::now();
        match self.client.submit(&batch).await {
            Ok(answer) => {
                Tally::sample(&self.tally.submit_ms, started);
                let new =
                    answer.accepted.len() - answer.duplicates.len().min(answer.accepted.len());
                self.tally.accepted.fetch_add(new as u64, Ordering::Relaxed);
                self.tally
                    .rejected
                    .fetch_add(answer.rejected.len() as u64, Ordering::Relaxed);
                if let Some(r) = answer.rejected.first() {
                    self.tally.error("record rejected", &r.reason);
                }
            }
            Err(e) => self.tally.error("submit", e),
        }
    }

    /// The record of system `j` this round: a backup on even rounds, a copy on odd ones, a
    /// check of the local repository every fifth round.
    fn record(&mut self, j: usize, now: Timestamp) -> RunRecord {
        let host = policy::host(self.index);
        let system = policy::system(self.index, j);
        let tier = policy::tier(j);
        let at = |secs: i64| {
            now.checked_sub(SignedDuration::from_secs(secs))
                .unwrap_or(now)
        };
        let kind = match self.round {
            r if r % 5 == 4 => RunKind::Check,
            r if r % 2 == 0 || self.snapshots[j].is_none() => RunKind::Backup,
            _ => RunKind::Copy,
        };
        let mut r = RunRecord::start(kind, uuid::Uuid::new_v4().to_string(), host, at(60));
        r.system = Some(system);
        r.site = Some(policy::SITE.to_string());
        r.tier = Some(tier.to_string());
        r.finished_at = at(2);
        r.outcome = Outcome::Success;
        let result = |repo: &str, snapshots: Vec<String>| RepoResult {
            repository: repo.to_string(),
            location: if repo == "sim-local" {
                "local"
            } else {
                "remote"
            }
            .to_string(),
            immutable: repo == "sim-vault",
            outcome: Outcome::Success,
            available_at: Some(at(2)),
            snapshots,
            bytes_added: 4 << 20,
            seconds: 58.0,
            error: None,
        };
        match kind {
            RunKind::Backup => {
                let snapshot = uuid::Uuid::new_v4().simple().to_string();
                r.capture_time = Some(at(59));
                r.snapshot_id = Some(snapshot.clone());
                r.repositories = vec![result("sim-local", vec![snapshot.clone()])];
                self.snapshots[j] = Some(snapshot);
            }
            RunKind::Copy => {
                let carried: Vec<String> = self.snapshots[j].iter().cloned().collect();
                let targets = if tier == "T3" {
                    &policy::REPOSITORIES[1..2]
                } else {
                    &policy::REPOSITORIES[1..]
                };
                r.repositories = targets.iter().map(|t| result(t, carried.clone())).collect();
            }
            _ => {
                r.check = Some(CheckScope {
                    read_data: false,
                    subset: None,
                });
                r.repositories = vec![result("sim-local", Vec::new())];
            }
        }
        r
    }
}

/// The coordinator's RSS and peak RSS in MiB.
fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU steal in percent of all CPU time over each [`WINDOW`] of `duration` (empty
/// where `/proc/stat` cannot be read).
async fn sample_steal(duration: Duration) -> Vec<f64> {
    let mut shares = Vec::new();
    let mut every = tokio::time::interval(WINDOW);
    every.tick().await;
    let Some(mut last) = machine_ticks() else {
        return shares;
    };
    let windows = duration.as_secs().div_ceil(WINDOW.as_secs());
    for _ in 0..windows {
        every.tick().await;
        let Some(now) = machine_ticks() else { break };
        let (total, steal) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
        shares.push(if total == 0 {
            0.0
        } else {
            100.0 * steal as f64 / total as f64
        });
        last = now;
    }
    shares
}

/// (all CPU ticks, steal ticks) of the machine, from the `cpu` line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    let total = ticks.iter().take(8).sum();
    Some((total, *ticks.get(7)?))
}

/// Reads the last sweep's figures from the coordinator's `/metrics`.
async fn sweep_figures(coordinator: &Url) -> SweepFigures {
    let Ok(url) = coordinator.join("/metrics") else {
        return SweepFigures::default();
    };
    let text = match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    parse_sweep(&text)
}

fn parse_sweep(text: &str) -> SweepFigures {
    let value = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
            rest.trim().parse::<f64>().ok()
        })
    };
    SweepFigures {
        systems: value("lifeboat_fleet_systems"),
        duration_seconds: value("lifeboat_sweep_duration_seconds"),
        assess_seconds: value("lifeboat_sweep_assess_duration_seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_metrics_parsing() {
        let l = Latency::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (l.count, l.p50_ms, l.p99_ms, l.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        let s = parse_sweep(
            "# HELP x\nlifeboat_fleet_systems 250\nlifeboat_sweep_duration_seconds 0.25\n\
             lifeboat_sweep_assess_duration_seconds_x 9\nlifeboat_sweep_assess_duration_seconds 0.125\n",
        );
        assert_eq!(
            (s.systems, s.duration_seconds, s.assess_seconds),
            (Some(250.0), Some(0.25), Some(0.125))
        );
    }
}
