//! The agent's Prometheus endpoint (`/metrics`, loopback by default): last success per system
//! and repository, run durations, bytes, off-site lag, spool depth, late and running jobs.
//!
//! Metrics are rendered at scrape time from the agent's state (no second bookkeeping that could
//! drift from it), with the `prometheus-client` encoder.

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::state::AgentState;
use crate::run::Outcome;

type Labels = Vec<(String, String)>;
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// Everything a scrape shows.
pub struct MetricsView<'a> {
    pub host: &'a str,
    pub site: &'a str,
    pub state: &'a AgentState,
    pub spool_depth: usize,
    pub spool_dropped: u64,
    pub running: usize,
    pub late: usize,
    pub systems_assigned: usize,
    /// Seconds since the assignment last loaded cleanly.
    pub assignment_age: f64,
    pub assignment_ok: bool,
    pub clock_offset: Option<f64>,
    pub now: Timestamp,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn secs(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn family(registry: &mut Registry, name: &str, help: &str) -> FloatFamily {
    let f = FloatFamily::default();
    registry.register(name, help, f.clone());
    f
}

fn single(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

/// The text exposition of `view`.
pub fn render(view: &MetricsView<'_>) -> String {
    let mut reg = Registry::with_prefix("lifeboat_agent");
    let info = family(
        &mut reg,
        "info",
        "The agent: version, host and site (always 1)",
    );
    info.get_or_create(&labels(&[
        ("version", env!("CARGO_PKG_VERSION")),
        ("host", view.host),
        ("site", view.site),
    ]))
    .set(1.0);
    single(
        &mut reg,
        "systems_assigned",
        "Systems assigned to this host",
        view.systems_assigned as f64,
    );
    single(
        &mut reg,
        "spool_depth",
        "Run records waiting in the spool for delivery",
        view.spool_depth as f64,
    );
    single(
        &mut reg,
        "spool_dropped_records",
        "Successful run records dropped because the spool was full",
        view.spool_dropped as f64,
    );
    single(
        &mut reg,
        "jobs_running",
        "Jobs running now",
        view.running as f64,
    );
    single(
        &mut reg,
        "jobs_late",
        "Jobs due for longer than the tolerance and not started",
        view.late as f64,
    );
    single(
        &mut reg,
        "assignment_ok",
        "1 if the last policy load succeeded, 0 if the agent runs on its last good assignment",
        if view.assignment_ok { 1.0 } else { 0.0 },
    );
    single(
        &mut reg,
        "assignment_age_seconds",
        "Seconds since the assignment last loaded cleanly",
        view.assignment_age,
    );
    if let Some(offset) = view.clock_offset {
        single(
            &mut reg,
            "clock_offset_seconds",
            "Coordinator clock minus agent clock",
            offset,
        );
    }

    let last_success = family(
        &mut reg,
        "last_success_timestamp_seconds",
        "Start of the last successful run, per system and job",
    );
    let last_run = family(
        &mut reg,
        "last_run_timestamp_seconds",
        "Start of the last run, per system and job",
    );
    let last_ok = family(
        &mut reg,
        "last_run_success",
        "1 if the last run succeeded, 0 if it failed or was partial",
    );
    let duration = family(
        &mut reg,
        "last_run_duration_seconds",
        "Duration of the last run, per system and job",
    );
    let repo_success = family(
        &mut reg,
        "repository_last_success_timestamp_seconds",
        "Last time data became available at the repository, per system",
    );
    let repo_check = family(
        &mut reg,
        "repository_last_check_timestamp_seconds",
        "Last successful integrity check of the repository",
    );
    let bytes = family(
        &mut reg,
        "repository_bytes_added",
        "Bytes added to the repository by this agent (after dedup and compression)",
    );
    let lag = family(
        &mut reg,
        "offsite_lag_seconds",
        "Capture time of the newest local snapshot minus that of the newest snapshot off-site",
    );

    for (system, s) in &view.state.systems {
        for (job, run) in &s.last_run {
            let job = job.to_string();
            let l = labels(&[("system", system), ("job", &job)]);
            last_run.get_or_create(&l).set(secs(run.started_at));
            duration.get_or_create(&l).set(run.seconds);
            last_ok
                .get_or_create(&l)
                .set(if run.outcome == Outcome::Success {
                    1.0
                } else {
                    0.0
                });
        }
        for (job, at) in &s.last_success {
            let job = job.to_string();
            last_success
                .get_or_create(&labels(&[("system", system), ("job", &job)]))
                .set(secs(*at));
        }
        for (repo, r) in &s.repositories {
            let l = labels(&[
                ("system", system),
                ("repository", repo),
                ("location", &r.location),
            ]);
            if let Some(t) = r.last_success {
                repo_success.get_or_create(&l).set(secs(t));
            }
            if let Some(t) = r.last_check_success {
                repo_check.get_or_create(&l).set(secs(t));
            }
            bytes.get_or_create(&l).set(r.bytes_added_total as f64);
        }
        if let Some(l) = s.offsite_lag(view.now) {
            lag.get_or_create(&labels(&[("system", system)])).set(l);
        }
    }
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// Serves `/metrics` on `listen` until the process ends; `scrape` renders the text.
pub async fn serve(
    listen: SocketAddr,
    scrape: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let scrape = scrape.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    scrape(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::JobKind;
    use crate::run::{RunKind, RunRecord};

    #[test]
    fn renders_per_system_metrics() {
        let mut state = AgentState::default();
        let t: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let mut r = RunRecord::start(RunKind::Backup, "x".into(), "h".into(), t);
        r.system = Some("linfen-finance".into());
        r.capture_time = Some(t);
        r.finished_at = t + jiff::SignedDuration::from_secs(90);
        r.outcome = Outcome::Success;
        state.record(JobKind::Backup, &r, true);
        let text = render(&MetricsView {
            host: "fs01",
            site: "linfen",
            state: &state,
            spool_depth: 3,
            spool_dropped: 0,
            running: 1,
            late: 0,
            systems_assigned: 1,
            assignment_age: 5.0,
            assignment_ok: true,
            clock_offset: Some(0.25),
            now: t + jiff::SignedDuration::from_secs(3600),
        });
        for want in [
            "lifeboat_agent_spool_depth 3",
            "lifeboat_agent_last_success_timestamp_seconds{system=\"linfen-finance\",job=\"backup\"} 1767229200",
            "lifeboat_agent_last_run_duration_seconds{system=\"linfen-finance\",job=\"backup\"} 90",
            "lifeboat_agent_offsite_lag_seconds{system=\"linfen-finance\"} 3600",
            "lifeboat_agent_clock_offset_seconds 0.25",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
