//! `GET /metrics`: the coordinator in Prometheus text format (via `prometheus-client`).
//!
//! Two kinds of figures. *Counters and histograms* live in [`Metrics`], shared by the handlers
//! that count (run ingest in `agent_api`, request latency in the [`track`] middleware). *Fleet
//! figures* (fleet size, compliance per tier, exposure per system) are read from the latest
//! [`FleetView`] of the assessment sweep at scrape time: a scrape never assesses and never
//! touches the database. Before the first sweep of this replica (or on a replica that does not
//! hold the sweep lease) the fleet figures are absent and `lifeboat_sweep_last_timestamp_seconds`
//! is missing too, which is what an alert on a stale sweep should look for.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `lifeboat_fleet_agents` | | hosts with an enrolled, unrevoked agent |
//! | `lifeboat_fleet_agents_offline` | | of those, not heard from within `offline-after` |
//! | `lifeboat_fleet_systems` | | systems of the policy in force |
//! | `lifeboat_compliance_systems` | `scenario`, `tier`, `status` | systems per status (compliant, at-risk, breached, no-evidence) |
//! | `lifeboat_rpo_exposure_seconds` | `system`, `tier`, `scenario` | site-loss exposure per system (absent when unbounded) |
//! | `lifeboat_sweep_duration_seconds` / `lifeboat_sweep_assess_duration_seconds` | | the last sweep, whole / assessing only |
//! | `lifeboat_sweep_last_timestamp_seconds` | | when the last sweep assessed |
//! | `lifeboat_run_records_total` | `result` (accepted, duplicate, rejected) | run records received |
//! | `lifeboat_http_request_duration_seconds` | `route`, `method`, `status` | request latency |
//!
//! Per-system exposure is exported for the headline scenario (site loss) only: three series per
//! system would triple a scrape that is already ~100 bytes per system.
//!
//! The endpoint is **unauthenticated**, on the coordinator's listen address: it tells system
//! ids, tiers and compliance, no secret. Keep the listen address on loopback or a management
//! network (see `deploy/coordinator.toml`) until people authentication covers it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::sweep::{FleetView, SweepHandle};
use crate::assess::{Scenario, StatusCounts};

/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComplianceLabels {
    scenario: &'static str,
    tier: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExposureLabels {
    system: String,
    tier: String,
    scenario: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// The coordinator's counters and histograms. Cheap to clone (every metric is shared).
#[derive(Clone)]
pub struct Metrics {
    /// Run records by what became of them.
    runs: Family<ResultLabel, Counter>,
    /// Request latency by matched route, method and status.
    latency: LatencyFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            runs: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts what a run batch did: `accepted` new records, `duplicates` already stored,
    /// `rejected` refused or deferred.
    pub fn runs_received(&self, accepted: u64, duplicates: u64, rejected: u64) {
        for (result, n) in [
            ("accepted", accepted),
            ("duplicate", duplicates),
            ("rejected", rejected),
        ] {
            if n > 0 {
                self.runs.get_or_create(&ResultLabel { result }).inc_by(n);
            }
        }
    }

    /// Records one request's latency.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .observe(seconds);
    }

    /// The Prometheus text of these metrics and of `view`.
    pub fn render(&self, view: Option<&FleetView>) -> String {
        let mut registry = Registry::with_prefix("lifeboat");
        registry.register(
            "run_records",
            "Run records received from agents, by result",
            self.runs.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            self.latency.clone(),
        );
        if let Some(view) = view {
            register_fleet(&mut registry, view);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

fn float_gauge(value: f64) -> Gauge<f64, AtomicU64> {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(value);
    g
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn register_fleet(registry: &mut Registry, view: &FleetView) {
    registry.register(
        "fleet_agents",
        "Hosts with an enrolled agent",
        gauge(count(view.agents)),
    );
    registry.register(
        "fleet_agents_offline",
        "Hosts whose agent was not heard from within offline-after",
        gauge(count(view.agents_offline)),
    );
    registry.register(
        "fleet_systems",
        "Systems of the policy in force",
        gauge(count(view.systems)),
    );
    let compliance = Family::<ComplianceLabels, Gauge>::default();
    for summary in &view.summaries {
        for (tier, counts) in &summary.tiers {
            for (status, n) in statuses(counts) {
                compliance
                    .get_or_create(&ComplianceLabels {
                        scenario: summary.scenario.as_str(),
                        tier: tier.to_string(),
                        status,
                    })
                    .set(i64::from(n));
            }
        }
    }
    registry.register(
        "compliance_systems",
        "Systems per RPO compliance status, per scenario and tier",
        compliance,
    );
    let exposure = Family::<ExposureLabels, Gauge<f64, AtomicU64>>::default();
    let site = Scenario::SiteLoss;
    for f in &view.figures {
        if let Some(seconds) = f.exposure_seconds[site.index()] {
            exposure
                .get_or_create(&ExposureLabels {
                    system: f.system.to_string(),
                    tier: f.tier.to_string(),
                    scenario: site.as_str(),
                })
                .set(seconds);
        }
    }
    registry.register(
        "rpo_exposure_seconds",
        "Current RPO exposure per system (site loss; absent when nothing counts)",
        exposure,
    );
    registry.register(
        "sweep_duration_seconds",
        "The last assessment sweep: reading new records, ingesting, assessing",
        float_gauge(view.took.as_secs_f64()),
    );
    registry.register(
        "sweep_assess_duration_seconds",
        "The last assessment sweep: assessing every system",
        float_gauge(view.assess_took.as_secs_f64()),
    );
    registry.register(
        "sweep_last_timestamp_seconds",
        "When the last assessment sweep assessed (Unix time)",
        float_gauge(view.assessed_at.as_millisecond() as f64 / 1000.0),
    );
}

fn statuses(c: &StatusCounts) -> [(&'static str, u32); 4] {
    [
        ("compliant", c.compliant),
        ("at-risk", c.at_risk),
        ("breached", c.breached),
        ("no-evidence", c.no_evidence),
    ]
}

/// What the `/metrics` handler reads.
#[derive(Clone, Debug)]
pub struct MetricsState {
    pub metrics: Metrics,
    pub sweep: SweepHandle,
}

/// `GET /metrics`.
pub async fn serve(State(state): State<Arc<MetricsState>>) -> Response {
    let view = state.sweep.latest();
    let body = state.metrics.render(view.as_deref());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Middleware recording every request's latency under its matched route (unmatched requests
/// under `unmatched`, so a scan of random paths cannot grow the label set).
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::{FleetSummary, Status};
    use crate::coordinator::sweep::SystemFigures;
    use std::time::Duration;

    fn view() -> FleetView {
        let t1 = "T1".parse().unwrap();
        let mut site = FleetSummary {
            scenario: Scenario::SiteLoss,
            tiers: Default::default(),
            total: StatusCounts::default(),
        };
        site.add(&t1, Status::Compliant);
        site.add(&t1, Status::Breached);
        FleetView {
            assessed_at: "2026-03-01T12:00:00Z".parse().unwrap(),
            took: Duration::from_millis(250),
            assess_took: Duration::from_millis(125),
            policy_digest: "d".into(),
            agents: 3,
            agents_offline: 1,
            systems: 2,
            summaries: vec![site],
            figures: vec![
                SystemFigures {
                    system: "fin".parse().unwrap(),
                    tier: t1.clone(),
                    status: [Status::Compliant; 3],
                    exposure_seconds: [Some(60.0), Some(3600.0), None],
                },
                SystemFigures {
                    system: "hr".parse().unwrap(),
                    tier: t1,
                    status: [Status::Breached; 3],
                    exposure_seconds: [None; 3],
                },
            ],
            assessments: Vec::new(),
            agent_health: Vec::new(),
            failed_runs: Vec::new(),
            runs_ingested: 10,
            runs_unusable: 0,
            lease_epoch: 1,
        }
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn renders_counters_latency_and_the_fleet_view() {
        let m = Metrics::new();
        m.runs_received(5, 2, 1);
        m.runs_received(1, 0, 0);
        m.observe_request("/api/v1/agents/runs", "POST", 200, 0.003);
        let text = m.render(Some(&view()));
        for line in [
            "lifeboat_run_records_total{result=\"accepted\"} 6",
            "lifeboat_run_records_total{result=\"duplicate\"} 2",
            "lifeboat_run_records_total{result=\"rejected\"} 1",
            "lifeboat_http_request_duration_seconds_count{route=\"/api/v1/agents/runs\",method=\"POST\",status=\"200\"} 1",
            "lifeboat_http_request_duration_seconds_bucket{le=\"0.004\",route=\"/api/v1/agents/runs\",method=\"POST\",status=\"200\"} 1",
            "lifeboat_fleet_agents 3",
            "lifeboat_fleet_agents_offline 1",
            "lifeboat_fleet_systems 2",
            "lifeboat_compliance_systems{scenario=\"site-loss\",tier=\"T1\",status=\"compliant\"} 1",
            "lifeboat_compliance_systems{scenario=\"site-loss\",tier=\"T1\",status=\"breached\"} 1",
            "lifeboat_compliance_systems{scenario=\"site-loss\",tier=\"T1\",status=\"no-evidence\"} 0",
            "lifeboat_rpo_exposure_seconds{system=\"fin\",tier=\"T1\",scenario=\"site-loss\"} 3600.0",
            "lifeboat_sweep_duration_seconds 0.25",
            "lifeboat_sweep_assess_duration_seconds 0.125",
            "lifeboat_sweep_last_timestamp_seconds 1772366400.0",
        ] {
            assert!(has(&text, line), "missing {line:?} in:\n{text}");
        }
        // An unbounded exposure is absent, not a made-up number.
        assert!(!text.contains("system=\"hr\""), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn before_the_first_sweep_only_counters_are_rendered() {
        let m = Metrics::new();
        m.runs_received(1, 0, 0);
        let text = m.render(None);
        assert!(!text.contains("lifeboat_fleet_systems"), "{text}");
        assert!(
            !text.contains("lifeboat_sweep_last_timestamp_seconds"),
            "{text}"
        );
        assert!(
            has(&text, "lifeboat_run_records_total{result=\"accepted\"} 1"),
            "{text}"
        );
    }
}
