//! The agent's drill worker: takes the drill tasks offered in heartbeat answers, runs each task
//! id at most once (at most [`MAX_PARALLEL`] at a time, beside scheduled backups), and delivers
//! every report to the coordinator until it is accepted.
//!
//! A task's ledger entry is written `started` before it runs and `finished` after; a task
//! offered again after it finished is not run again, its stored report is sent again. A task
//! found `started` when the worker starts (the agent died during it) is reported failed
//! `interrupted`, and not run again. A task offered while [`MAX_PARALLEL`] run is left for a
//! later offer (the coordinator offers it in every answer until it has its report).
//!
//! It must not: run a task whose ledger entry cannot be written or read, forget a report the
//! coordinator has not accepted, or hold a lock across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

use super::Executor;
use super::ledger::{Entry, Ledger};
use crate::agent::client::CoordinatorClient;
use crate::api::{DrillReport, DrillReportBatch, DrillTask};
use crate::clock::Clock;
use crate::run::Outcome;

/// The most drill tasks running at once on one host.
pub(crate) const MAX_PARALLEL: usize = 4;
/// How long a delivered task's entry is kept to recognise the task if it is offered again.
const KEEP_DELIVERED: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);
/// The most reports sent in one request.
const BATCH: usize = 50;

/// Ids of the drill tasks running now (what heartbeats list).
pub(crate) type Running = Arc<Mutex<BTreeSet<String>>>;

/// Reports waiting for the coordinator's acceptance, by task id.
type Outbox = Arc<Mutex<BTreeMap<String, DrillReport>>>;

pub(crate) struct Worker {
    pub(crate) executor: Arc<Executor>,
    pub(crate) ledger: Ledger,
    pub(crate) client: Arc<CoordinatorClient>,
    /// Shared with the heartbeat.
    pub(crate) running: Running,
    pub(crate) clock: Arc<dyn Clock>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic while it was held leaves nothing half-updated that matters more.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    /// Runs until `offers` closes (the agent stops; running tasks are dropped with it, and
    /// their `started` entries make the next start report them interrupted).
    pub(crate) async fn run(self, mut offers: mpsc::Receiver<Vec<DrillTask>>) {
        let outbox: Outbox = Arc::default();
        let wake = Arc::new(Notify::new());
        self.recover(&outbox);
        wake.notify_one();
        let delivery = deliver_loop(
            self.client.clone(),
            self.ledger.clone(),
            outbox.clone(),
            wake.clone(),
            self.clock.clone(),
        );
        tokio::pin!(delivery);
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = HashSet::new();
        loop {
            tokio::select! {
                () = &mut delivery => {}
                offer = offers.recv() => match offer {
                    Some(list) => self.offered(list, &mut tasks, &outbox, &wake, &mut warned),
                    None => break,
                },
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!("a drill task failed to finish: {e}");
                    }
                }
                _ = prune.tick() => {
                    let now = self.clock.now();
                    let cutoff = now.checked_sub(KEEP_DELIVERED).unwrap_or(now);
                    let removed = self.ledger.prune(cutoff);
                    if removed > 0 {
                        tracing::debug!(removed, "old drill task entries pruned");
                    }
                }
            }
        }
    }

    /// Reports the tasks a previous agent process left `started`, and queues every report not
    /// yet accepted.
    fn recover(&self, outbox: &Outbox) {
        let host = self.executor.host.clone();
        let now = self.clock.now();
        let (interrupted, errors) = self.ledger.recover(|e: &Entry| {
            super::interrupted(&e.task_id, e.drill_id, &host, e.started_at, now)
        });
        for e in errors {
            tracing::error!("drill task ledger: {e}");
        }
        for r in &interrupted {
            tracing::warn!(
                task = %r.task_id,
                "the agent restarted during this drill task; it is reported failed (interrupted)"
            );
        }
        let mut out = lock(outbox);
        for r in self.ledger.undelivered() {
            out.insert(r.task_id.clone(), r);
        }
    }

    fn offered(
        &self,
        list: Vec<DrillTask>,
        tasks: &mut JoinSet<()>,
        outbox: &Outbox,
        wake: &Arc<Notify>,
        warned: &mut HashSet<String>,
    ) {
        for task in list {
            let id = task.task_id.clone();
            if lock(&self.running).contains(&id) {
                continue;
            }
            let entry = match self.ledger.get(&id) {
                Ok(e) => e,
                Err(e) => {
                    if warned.insert(id.clone()) {
                        tracing::error!("drill task {id:?} is not run: {e}");
                    }
                    continue;
                }
            };
            match entry {
                Some(Entry {
                    report: Some(report),
                    ..
                }) => {
                    // Finished before: never run again; the coordinator lacks the report.
                    let mut out = lock(outbox);
                    if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(id) {
                        tracing::info!(
                            task = %slot.key(),
                            "drill task offered again after it finished; its report is sent again"
                        );
                        slot.insert(report);
                        wake.notify_one();
                    }
                }
                Some(e) => {
                    // Started by an earlier process and somehow not recovered: same verdict.
                    let report = super::interrupted(
                        &e.task_id,
                        e.drill_id,
                        &self.executor.host,
                        e.started_at,
                        self.clock.now(),
                    );
                    if let Err(err) = self.ledger.finish(&report) {
                        tracing::error!("drill task ledger: {err}");
                    }
                    lock(outbox).insert(id, report);
                    wake.notify_one();
                }
                None => {
                    if lock(&self.running).len() >= MAX_PARALLEL {
                        // Offered again with the next heartbeat answer.
                        continue;
                    }
                    if let Err(e) = self.ledger.start(&task, self.clock.now()) {
                        if warned.insert(id.clone()) {
                            tracing::error!("drill task {id} is not run: {e}");
                        }
                        continue;
                    }
                    lock(&self.running).insert(id.clone());
                    self.spawn(task, tasks, outbox.clone(), wake.clone());
                }
            }
        }
    }

    fn spawn(&self, task: DrillTask, tasks: &mut JoinSet<()>, outbox: Outbox, wake: Arc<Notify>) {
        let executor = self.executor.clone();
        let ledger = self.ledger.clone();
        let running = self.running.clone();
        tracing::info!(
            task = %task.task_id,
            drill = %task.drill_id,
            step = %task.step,
            system = task.system.as_ref().map_or("-", |s| s.as_str()),
            "drill task started"
        );
        tasks.spawn(async move {
            let report = executor.run(&task).await;
            match (&report.outcome, &report.error) {
                (Outcome::Success, _) => {
                    tracing::info!(task = %task.task_id, "drill task succeeded")
                }
                (_, error) => tracing::warn!(
                    task = %task.task_id,
                    kind = error.as_ref().map_or("", |e| e.kind.as_str()),
                    error = error.as_ref().map_or("", |e| e.message.as_str()),
                    "drill task failed"
                ),
            }
            if let Err(e) = ledger.finish(&report) {
                // The report is still delivered from memory; a restart would call the task
                // interrupted instead.
                tracing::error!("drill task ledger: {e}");
            }
            lock(&outbox).insert(task.task_id.clone(), report);
            lock(&running).remove(&task.task_id);
            wake.notify_one();
        });
    }
}

/// Sends the outbox's reports until the coordinator accepts them, with backoff (1 s doubling
/// to 60 s) while it is unreachable or takes none. Never returns.
async fn deliver_loop(
    client: Arc<CoordinatorClient>,
    ledger: Ledger,
    outbox: Outbox,
    wake: Arc<Notify>,
    clock: Arc<dyn Clock>,
) {
    const FIRST: Duration = Duration::from_secs(1);
    let mut backoff = FIRST;
    loop {
        let batch: Vec<DrillReport> = lock(&outbox).values().take(BATCH).cloned().collect();
        if batch.is_empty() {
            wake.notified().await;
            continue;
        }
        let request = DrillReportBatch { reports: batch };
        let problem = match client.drill_reports(&request).await {
            Ok(answer) => {
                let now = clock.now();
                let mut settled = 0;
                let sent: BTreeMap<&str, &DrillReport> = request
                    .reports
                    .iter()
                    .map(|r| (r.task_id.as_str(), r))
                    .collect();
                for report in answer
                    .accepted
                    .iter()
                    .filter_map(|id| sent.get(id.as_str()))
                {
                    lock(&outbox).remove(&report.task_id);
                    settled += 1;
                    if let Err(e) = ledger.delivered(report, now) {
                        tracing::error!("drill task ledger: {e}");
                    }
                }
                for (r, report) in answer
                    .rejected
                    .iter()
                    .filter_map(|r| sent.get(r.key.as_str()).map(|report| (r, report)))
                {
                    if r.code.is_permanent() {
                        // Sending it again cannot help; the entry stays as evidence.
                        tracing::error!(
                            task = %r.key,
                            "the coordinator refused the drill report for good ({}): {}",
                            r.code.as_str(),
                            r.reason
                        );
                        lock(&outbox).remove(&r.key);
                        settled += 1;
                        if let Err(e) = ledger.delivered(report, now) {
                            tracing::error!("drill task ledger: {e}");
                        }
                    }
                }
                if settled > 0 {
                    tracing::debug!(settled, "drill reports delivered");
                    backoff = FIRST;
                    continue;
                }
                "the coordinator took none of them".to_string()
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(
            "drill reports not delivered yet ({problem}); retrying in {}",
            humantime::format_duration(backoff)
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = wake.notified() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}
