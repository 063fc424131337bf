//! Alerts: after each assessment sweep, what is wrong ([`rules`]) is compared with what was
//! already notified (the store's `alert_state`, one row per rule and subject), and only the
//! *changes* are sent ([`notify`]): an alert that starts firing, one that resolves, and, with
//! `repeat-every`, a reminder of one still firing. `GET /api/v1/alerts` ([`api`]) lists the
//! states.
//!
//! # Where it runs
//!
//! [`Evaluator::run`] waits for the sweep's next published [`FleetView`]. Views are published
//! only by the replica holding the sweep lease, so alerts are evaluated there and nowhere else,
//! once per sweep. It is its own task: a slow or dead receiver delays the next *evaluation*
//! (each send has a timeout and bounded attempts), never the sweep nor an HTTP handler; views
//! published meanwhile are skipped for the latest.
//!
//! # Delivery: at least once per channel
//!
//! The state of an alert is written only after its notification was attempted on every channel:
//! `last_notified_at` is set when every channel took it, and left empty when one did not. At
//! the next evaluation an undelivered notification is sent again to the channels that still
//! owe it (this replica remembers which; after a restart or a lease change it does not, and
//! sends to all of them: a duplicate rather than a loss). A resolve is never lost the same way:
//! the row turns `resolved` with an empty `last_notified_at` until the resolve is delivered. A
//! channel that never took an alert's firing notification is not sent its resolve. A store that
//! is down after a delivery means the next evaluation sends it again.
//!
//! What this module must not do: name SQL (the store does), decide what is wrong (the rules
//! do), or log a webhook URL or a password (the notifier holds them and logs channel names).

pub mod api;
pub mod config;
pub mod notify;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};

use self::notify::{Notification, Notifier};
use self::rules::{Alert, HostSpool, Inputs, Rule, Severity, Thresholds};
use super::store::{AlertDetails, AlertState, AlertStatus, Store, StoreError};
use super::sweep::{FleetView, SweepHandle};
use crate::clock::Clock;

pub use self::config::AlertsConfig;

/// Notifications sent at once (each to all its channels in parallel).
const CONCURRENCY: usize = 8;

/// What one evaluation does about one `(rule, subject)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It starts firing (new, or firing again after it resolved).
    Fire(Alert),
    /// It fires still, and its firing notification has not reached every channel yet.
    RetryFiring { alert: Alert, since: Timestamp },
    /// It fires still and was notified `repeat-every` ago or longer.
    Remind { alert: Alert, since: Timestamp },
    /// It fires still, notified; what it says (summary, severity) changed: stored, not sent.
    Refresh { alert: Alert, state: AlertState },
    /// It no longer fires (or its resolve has not reached every channel yet).
    Resolve {
        state: AlertState,
        details: Option<AlertDetails>,
        /// Its resolve was decided at an earlier evaluation and is being sent again.
        retry: bool,
    },
}

impl Step {
    pub fn key(&self) -> (&str, &str) {
        match self {
            Step::Fire(a)
            | Step::RetryFiring { alert: a, .. }
            | Step::Remind { alert: a, .. }
            | Step::Refresh { alert: a, .. } => (a.rule.as_str(), a.subject.as_str()),
            Step::Resolve { state, .. } => (state.rule.as_str(), state.subject.as_str()),
        }
    }
}

/// The transitions from the stored states to the `active` alerts at `now`. Pure.
pub fn plan(
    active: Vec<Alert>,
    stored: Vec<(AlertState, Option<AlertDetails>)>,
    repeat_every: Option<SignedDuration>,
    now: Timestamp,
) -> Vec<Step> {
    let mut stored: BTreeMap<(String, String), (AlertState, Option<AlertDetails>)> = stored
        .into_iter()
        .map(|(s, d)| ((s.rule.clone(), s.subject.clone()), (s, d)))
        .collect();
    let mut steps = Vec::new();
    for alert in active {
        let key = (alert.rule.as_str().to_string(), alert.subject.clone());
        match stored.remove(&key) {
            Some((s, details)) if s.state == AlertStatus::Firing => match s.last_notified_at {
                None => steps.push(Step::RetryFiring {
                    alert,
                    since: s.since,
                }),
                Some(last) => {
                    if repeat_every.is_some_and(|every| now.duration_since(last) >= every) {
                        steps.push(Step::Remind {
                            alert,
                            since: s.since,
                        });
                    } else if details.is_none_or(|d| {
                        d.summary != alert.summary || d.severity != alert.severity.as_str()
                    }) {
                        steps.push(Step::Refresh { alert, state: s });
                    }
                }
            },
            // New, or resolved before: it fires (again).
            _ => steps.push(Step::Fire(alert)),
        }
    }
    // What is stored and not active: resolve what fires, retry undelivered resolves.
    for (state, details) in stored.into_values() {
        match (state.state, state.last_notified_at) {
            (AlertStatus::Firing, _) => steps.push(Step::Resolve {
                state,
                details,
                retry: false,
            }),
            (AlertStatus::Resolved, None) => steps.push(Step::Resolve {
                state,
                details,
                retry: true,
            }),
            (AlertStatus::Resolved, Some(_)) => {}
        }
    }
    steps
}

/// Why an evaluation stopped early. Logged; the next sweep's view is evaluated again.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alerts cannot read or write their state: {0}")]
    Store(#[from] StoreError),
    #[error("the alert evaluation task failed: {0}")]
    Task(String),
}

/// Channels that still owe a notification: what this replica remembers between evaluations.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owed {
    status: AlertStatus,
    channels: BTreeSet<String>,
}

/// The alert evaluator: one evaluation per published sweep view.
pub struct Evaluator {
    store: Store,
    notifier: Arc<Notifier>,
    thresholds: Thresholds,
    repeat_every: Option<SignedDuration>,
    clock: Arc<dyn Clock>,
    /// Per `(rule, subject)`: the channels a notification has not reached yet.
    owed: HashMap<(String, String), Owed>,
    /// The stored alert states as of the last evaluation, and the sweep's lease epoch they
    /// belong to. While this replica keeps the lease it is the only writer, so the store need
    /// not be read again (at 50,000 systems that read took a second per sweep); a new epoch
    /// re-reads it.
    stored: Option<(u64, StoredAlerts)>,
}

type StoredAlerts = BTreeMap<(String, String), (AlertState, Option<AlertDetails>)>;

impl Evaluator {
    pub fn new(
        store: Store,
        config: &AlertsConfig,
        notifier: Notifier,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Evaluator {
            store,
            notifier: Arc::new(notifier),
            thresholds: Thresholds::of(config),
            repeat_every: config
                .repeat_every
                .and_then(|d| SignedDuration::try_from(d.as_std()).ok()),
            clock,
            owed: HashMap::new(),
            stored: None,
        }
    }

    /// Evaluates each view `sweep` publishes until `shutdown` completes (or the sweep is gone).
    pub async fn run(mut self, mut sweep: SweepHandle, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let view = tokio::select! {
                () = &mut shutdown => break,
                view = sweep.changed() => view,
            };
            let Some(view) = view else { break };
            if let Err(e) = self.evaluate(view).await {
                tracing::warn!("{e}");
            }
        }
    }

    /// One evaluation of `view`: rules, plan, deliveries, state. Returns the steps taken.
    pub async fn evaluate(&mut self, view: Arc<FleetView>) -> Result<Vec<Step>, AlertError> {
        let spools: Vec<HostSpool> = self
            .store
            .latest_heartbeats()
            .await?
            .into_iter()
            .map(|(host, hb)| HostSpool {
                host,
                received_at: hb.received_at,
                spool: hb.heartbeat.spool,
            })
            .collect();
        let cached = match self.stored.take() {
            Some((epoch, stored)) if epoch == view.lease_epoch => stored,
            _ => self
                .store
                .alerts_with_details(None)
                .await?
                .into_iter()
                .map(|(state, details)| {
                    (
                        (state.rule.clone(), state.subject.clone()),
                        (state, details),
                    )
                })
                .collect(),
        };
        let stored: Vec<(AlertState, Option<AlertDetails>)> = cached.values().cloned().collect();
        let epoch = view.lease_epoch;
        let now = self.clock.now();
        // Rules and plan are CPU work over the whole fleet (a second at 50,000 systems): off the
        // async threads, so that the HTTP handlers never wait for them.
        let (thresholds, repeat_every) = (self.thresholds, self.repeat_every);
        let all = self.notifier.names();
        let owed = self.owed.clone();
        let (steps, mut writes, deliveries, silent) = tokio::task::spawn_blocking(move || {
            let active =
                rules::evaluate(&Inputs::new(&view, &spools), &thresholds, view.assessed_at);
            let steps = plan(active, stored, repeat_every, now);
            // Every state change of this evaluation is written in batches: a first evaluation
            // of a large fleet changes thousands.
            let writes: Vec<(AlertState, Option<AlertDetails>)> = steps
                .iter()
                .filter_map(|step| match step {
                    Step::Refresh { alert, state } => {
                        Some((state.clone(), Some(details_of(alert))))
                    }
                    _ => None,
                })
                .collect();
            // Notifications for no channel (none configured, or none owed one) are settled as
            // delivered without a task each.
            let (deliveries, silent): (Vec<_>, Vec<_>) = steps
                .iter()
                .filter(|step| !matches!(step, Step::Refresh { .. }))
                .map(|step| {
                    let (notification, to) = notification(step, &owed, &all, now);
                    (step.clone(), notification, to)
                })
                .partition(|(_, _, to)| !to.is_empty());
            let silent: Vec<Step> = silent.into_iter().map(|(step, _, _)| step).collect();
            (steps, writes, deliveries, silent)
        })
        .await
        .map_err(|e| AlertError::Task(e.to_string()))?;
        let notifier = Arc::clone(&self.notifier);
        let mut results: Vec<(Step, BTreeSet<String>)> = futures::stream::iter(deliveries)
            .map(|(step, n, to)| {
                let notifier = Arc::clone(&notifier);
                async move {
                    let failed = notifier.send(&n, &to).await;
                    (step, failed)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.extend(silent.into_iter().map(|step| (step, BTreeSet::new())));
        for (step, failed) in results {
            writes.extend(self.settle(&step, failed, now));
        }
        self.store.upsert_alerts(&writes).await?;
        // Only once written: a failed write leaves the cache empty, so the next evaluation
        // reads the store again.
        let mut cached = cached;
        for (state, details) in writes {
            let key = (state.rule.clone(), state.subject.clone());
            let kept = cached.remove(&key).and_then(|(_, d)| d);
            // As the store does: details are kept when a state is written without them.
            cached.insert(key, (state, details.or(kept)));
        }
        self.stored = Some((epoch, cached));
        Ok(steps)
    }

    /// The state to write after `step`'s delivery, `failed` naming the channels it missed
    /// (`None`: nothing to write); remembers what each channel still owes.
    fn settle(
        &mut self,
        step: &Step,
        failed: BTreeSet<String>,
        now: Timestamp,
    ) -> Option<(AlertState, Option<AlertDetails>)> {
        let (rule, subject) = step.key();
        let key = (rule.to_string(), subject.to_string());
        let delivered = failed.is_empty();
        let (state, details, status) = match step {
            // A reminder missed somewhere is simply due again at the next evaluation.
            Step::Remind { .. } if !delivered => return None,
            Step::Fire(alert)
            | Step::RetryFiring { alert, .. }
            | Step::Remind { alert, .. }
            | Step::Refresh { alert, .. } => {
                let since = match step {
                    Step::RetryFiring { since, .. } | Step::Remind { since, .. } => *since,
                    _ => now,
                };
                let state = AlertState {
                    rule: key.0.clone(),
                    subject: key.1.clone(),
                    state: AlertStatus::Firing,
                    since,
                    last_notified_at: delivered.then_some(now),
                };
                (state, Some(details_of(alert)), AlertStatus::Firing)
            }
            Step::Resolve { state, retry, .. } => (
                AlertState {
                    state: AlertStatus::Resolved,
                    since: if *retry { state.since } else { now },
                    last_notified_at: delivered.then_some(now),
                    ..state.clone()
                },
                None,
                AlertStatus::Resolved,
            ),
        };
        if delivered {
            self.owed.remove(&key);
        } else {
            self.owed.insert(
                key,
                Owed {
                    status,
                    channels: failed,
                },
            );
        }
        Some((state, details))
    }
}

/// What the store keeps of an alert.
fn details_of(alert: &Alert) -> AlertDetails {
    AlertDetails {
        severity: alert.severity.as_str().into(),
        summary: alert.summary.clone(),
    }
}

/// The notification of `step` and the channels it goes to.
fn notification(
    step: &Step,
    owed_channels: &HashMap<(String, String), Owed>,
    all: &BTreeSet<String>,
    now: Timestamp,
) -> (Notification, BTreeSet<String>) {
    let owed = |status: AlertStatus| {
        let (rule, subject) = step.key();
        owed_channels
            .get(&(rule.to_string(), subject.to_string()))
            .filter(|o| o.status == status)
            .map(|o| o.channels.clone())
    };
    let firing = |alert: &Alert, since: Timestamp, reminder: bool| Notification {
        status: AlertStatus::Firing,
        rule: alert.rule,
        subject: alert.subject.clone(),
        severity: alert.severity,
        summary: alert.summary.clone(),
        detail: alert.detail.clone(),
        since,
        at: now,
        reminder,
    };
    match step {
        Step::Fire(alert) | Step::Refresh { alert, .. } => (firing(alert, now, false), all.clone()),
        Step::Remind { alert, since } => (firing(alert, *since, true), all.clone()),
        Step::RetryFiring { alert, since } => (
            firing(alert, *since, false),
            owed(AlertStatus::Firing).unwrap_or_else(|| all.clone()),
        ),
        Step::Resolve {
            state,
            details,
            retry,
        } => {
            let to = if *retry {
                owed(AlertStatus::Resolved).unwrap_or_else(|| all.clone())
            } else {
                // Channels that never took the firing are not told it resolved.
                let never_told = owed(AlertStatus::Firing).unwrap_or_default();
                all.difference(&never_told).cloned().collect()
            };
            let rule = Rule::ALL
                .into_iter()
                .find(|r| r.as_str() == state.rule)
                .unwrap_or(Rule::RpoBreached);
            let severity = match details.as_ref().map(|d| d.severity.as_str()) {
                Some("critical") => Severity::Critical,
                _ => Severity::Warning,
            };
            let n = Notification {
                status: AlertStatus::Resolved,
                rule,
                subject: state.subject.clone(),
                severity,
                summary: details.as_ref().map_or_else(
                    || format!("{} {}", state.rule, state.subject),
                    |d| d.summary.clone(),
                ),
                detail: format!(
                    "no longer the case as of {}",
                    if *retry { state.since } else { now }
                ),
                since: if *retry { state.since } else { now },
                at: now,
                reminder: false,
            };
            (n, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        format!("2026-03-01T{s}:00Z").parse().unwrap()
    }

    fn alert(rule: Rule, subject: &str) -> Alert {
        Alert {
            rule,
            subject: subject.into(),
            severity: Severity::Warning,
            summary: format!("{rule} {subject}"),
            detail: "why".into(),
        }
    }

    fn state(
        rule: Rule,
        subject: &str,
        firing: bool,
        since: &str,
        notified: Option<&str>,
    ) -> (AlertState, Option<AlertDetails>) {
        (
            AlertState {
                rule: rule.as_str().into(),
                subject: subject.into(),
                state: if firing {
                    AlertStatus::Firing
                } else {
                    AlertStatus::Resolved
                },
                since: t(since),
                last_notified_at: notified.map(t),
            },
            Some(AlertDetails {
                severity: "warning".into(),
                summary: format!("{rule} {subject}"),
            }),
        )
    }

    /// One line per step: `fire|retry-firing|remind|resolve|retry-resolve rule subject`.
    fn check(
        active: &[Alert],
        stored: &[(AlertState, Option<AlertDetails>)],
        repeat: Option<i64>,
        expected: &[&str],
    ) {
        let steps = plan(
            active.to_vec(),
            stored.to_vec(),
            repeat.map(SignedDuration::from_hours),
            t("12:00"),
        );
        let lines: Vec<String> = steps
            .iter()
            .map(|s| {
                let what = match s {
                    Step::Fire(_) => "fire",
                    Step::RetryFiring { .. } => "retry-firing",
                    Step::Remind { .. } => "remind",
                    Step::Refresh { .. } => "refresh",
                    Step::Resolve { retry: false, .. } => "resolve",
                    Step::Resolve { retry: true, .. } => "retry-resolve",
                };
                let (rule, subject) = s.key();
                format!("{what} {rule} {subject}")
            })
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn only_changes_are_notified() {
        let a = alert(Rule::RunFailed, "s1/backup");
        let b = alert(Rule::AgentOffline, "h1");
        // Nothing stored: both fire.
        check(
            &[a.clone(), b.clone()],
            &[],
            None,
            &["fire run-failed s1/backup", "fire agent-offline h1"],
        );
        // Both notified and still active: nothing; without repeat-every never again.
        let notified = [
            state(Rule::RunFailed, "s1/backup", true, "10:00", Some("10:00")),
            state(Rule::AgentOffline, "h1", true, "10:00", Some("10:00")),
        ];
        check(&[a.clone(), b.clone()], &notified, None, &[]);
        // One disappears: it resolves; the other is reminded after repeat-every.
        check(
            std::slice::from_ref(&a),
            &notified,
            Some(2),
            &["remind run-failed s1/backup", "resolve agent-offline h1"],
        );
        check(
            std::slice::from_ref(&a),
            &notified,
            Some(3),
            &["resolve agent-offline h1"],
        );
        // A resolved one fires again; a delivered resolve stays quiet.
        let resolved = [
            state(Rule::RunFailed, "s1/backup", false, "11:00", Some("11:00")),
            state(Rule::AgentOffline, "h1", false, "11:00", Some("11:00")),
        ];
        check(
            std::slice::from_ref(&a),
            &resolved,
            None,
            &["fire run-failed s1/backup"],
        );
        // What it says changed (say, never backed up → breached): stored, not sent.
        let critical = Alert {
            severity: Severity::Critical,
            ..a
        };
        check(
            &[critical],
            &notified[..1],
            None,
            &["refresh run-failed s1/backup"],
        );
    }

    #[test]
    fn undelivered_notifications_are_retried() {
        let a = alert(Rule::RunFailed, "s1/backup");
        let undelivered = [
            state(Rule::RunFailed, "s1/backup", true, "10:00", None),
            state(Rule::AgentOffline, "h1", false, "11:00", None),
            state(Rule::SpoolGrowing, "h2", true, "11:00", None),
        ];
        check(
            &[a],
            &undelivered,
            None,
            &[
                "retry-firing run-failed s1/backup",
                // The undelivered resolve is sent again …
                "retry-resolve agent-offline h1",
                // … and an undelivered firing that no longer fires resolves.
                "resolve spool-growing h2",
            ],
        );
    }
}
