//! `lifeboat coordinator`: opens the store, loads the policy (reloaded every 30 s, keeping the
//! last good one), and serves the agent API with `/healthz` and `/readyz` until SIGTERM; and
//! `lifeboat coordinator enrol-token`, which issues a one-time enrolment token for a host.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;

use super::agent_api::AgentApi;
use super::alerts::api::AlertsApi;
use super::alerts::notify::Notifier;
use super::alerts::{self, Evaluator};
use super::auth;
use super::config::CoordinatorConfig;
use super::fleet_api::{self, FleetApi, PolicyLoads};
use super::metrics::{self, Metrics, MetricsState};
use super::openapi;
use super::people_api::{self, EnrolmentTokenError, PeopleApi, issue_enrolment_token};
use super::store::{NewAuditEntry, Role, Store, StoreError};
use super::sweep::{SweepConfig, SweepHandle, Sweeper};
use crate::clock::Clock;
use crate::exit::Exit;
use crate::policy::{self, Policy};
use crate::secret::Secret;

/// Why the coordinator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{0}")]
    Config(crate::policy::Problem),
    #[error("the policy is invalid:\n{0}")]
    Policy(crate::policy::PolicyReport),
    #[error("database: {0}")]
    Store(#[from] super::store::StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] super::tls::TlsError),
    #[error("{0}")]
    Usage(String),
}

impl CoordinatorError {
    pub fn exit(&self) -> Exit {
        match self {
            CoordinatorError::Config(_)
            | CoordinatorError::Policy(_)
            | CoordinatorError::Tls(_) => Exit::Policy,
            CoordinatorError::Store(e) if e.is_unavailable() => Exit::Unreachable,
            CoordinatorError::Usage(_) => Exit::Usage,
            _ => Exit::Failure,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CoordinatorError::Config(_) => "config",
            CoordinatorError::Policy(_) => "policy",
            CoordinatorError::Store(_) => "store",
            CoordinatorError::Io { .. } => "io",
            CoordinatorError::Tls(_) => "tls",
            CoordinatorError::Usage(_) => "usage",
        }
    }
}

/// The configuration, the store, the policy and the digest of its files
/// ([`policy::sources_digest`], taken before they were parsed).
async fn open(
    config: &Path,
) -> Result<(CoordinatorConfig, Store, Policy, Option<String>), CoordinatorError> {
    let cfg = CoordinatorConfig::load(config).map_err(CoordinatorError::Config)?;
    // Digested before loading: a file changed in between is parsed again at the first reload.
    let sources = policy::sources_digest(&cfg.policy_dir);
    let policy = policy::load_dir(&cfg.policy_dir).map_err(CoordinatorError::Policy)?;
    let store = Store::open(&cfg.database).await?;
    Ok((cfg, store, policy, sources))
}

/// Serves until SIGTERM or SIGINT.
pub async fn run(config: &Path, clock: Arc<dyn Clock>) -> Result<Exit, CoordinatorError> {
    crate::shutdown::install().map_err(|source| CoordinatorError::Io {
        context: "cannot install the SIGINT/SIGTERM handlers".into(),
        source,
    })?;
    let (cfg, store, policy, sources) = open(config).await?;
    // Which files the policy in force came from, and when (GET /api/v1/policy).
    let loads = PolicyLoads::default();
    loads.record(&cfg.policy_dir, &policy, clock.now());
    let policy = Arc::new(RwLock::new(Arc::new(policy)));
    // Reload the policy; a broken one is reported and the last good one kept.
    {
        let policy = policy.clone();
        let dir = cfg.policy_dir.clone();
        let (loads, clock) = (loads.clone(), clock.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            let mut last_error = String::new();
            // The files as last parsed: unchanged files are not parsed again.
            let mut last_sources = sources;
            loop {
                tick.tick().await;
                // Parsing a large policy takes seconds of CPU: never on the async workers,
                // which would hold every request scheduled behind it.
                let (known, read) = (last_sources.clone(), dir.clone());
                let loaded = tokio::task::spawn_blocking(move || {
                    let sources = policy::sources_digest(&read);
                    if sources.is_some() && sources == known {
                        return (sources, None);
                    }
                    (sources, Some(policy::load_dir(&read)))
                })
                .await;
                let loaded = match loaded {
                    Ok((sources, Some(loaded))) => {
                        last_sources = sources;
                        loaded
                    }
                    Ok((_, None)) => continue,
                    Err(e) => {
                        tracing::error!("the policy reload task failed: {e}");
                        continue;
                    }
                };
                match loaded {
                    Ok(p) => {
                        last_error.clear();
                        let mut current = policy.write().unwrap_or_else(|e| e.into_inner());
                        if current.digest != p.digest {
                            tracing::info!(digest = %p.digest, "policy reloaded");
                            loads.record(&dir, &p, clock.now());
                            *current = Arc::new(p);
                        }
                    }
                    Err(report) => {
                        let text = report.to_string();
                        if text != last_error {
                            tracing::error!("policy refused, keeping the last good one:\n{text}");
                            last_error = text;
                        }
                    }
                }
            }
        });
    }
    // Alert channels first: a secret that cannot be read stops the start, naming the channel.
    let notifier = Notifier::new(&cfg.alerts).await.map_err(|e| {
        CoordinatorError::Config(crate::policy::Problem {
            file: config.to_path_buf(),
            line: 0,
            column: 0,
            key_path: "alerts".into(),
            message: e.to_string(),
            hint: None,
        })
    })?;
    // The assessment sweep runs where the store lease is held; /metrics reads its latest view.
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let (sweeper, sweep) = Sweeper::new(
        store.clone(),
        policy.clone(),
        clock.clone(),
        SweepConfig {
            every: cfg.sweep_every.as_std(),
            ..SweepConfig::default()
        },
    );
    let sweeping = tokio::spawn(sweeper.run(async move {
        let _ = shutdown_rx.wait_for(|stop| *stop).await;
    }));
    // Alerts are evaluated after each sweep this replica publishes, in their own task.
    let alerting = {
        let evaluator = Evaluator::new(store.clone(), &cfg.alerts, notifier, clock.clone());
        let mut stop = shutdown_tx.subscribe();
        tokio::spawn(evaluator.run(sweep.clone(), async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }))
    };
    // Drills are orchestrated where the drill lease is held.
    let orchestrating = {
        let orchestrator = super::drills::Orchestrator::new(
            store.clone(),
            policy.clone(),
            clock.clone(),
            super::drills::DrillsConfig {
                tick_every: cfg.drills.tick_every.as_std(),
                agent_lost_after: cfg.drills.agent_lost_after.as_std(),
            },
        );
        let mut stop = shutdown_tx.subscribe();
        tokio::spawn(orchestrator.run(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }))
    };
    // The operator/viewer read API; its requests are timed like the others.
    let metrics = Metrics::new();
    let fleet_api = FleetApi::new(
        store.clone(),
        policy.clone(),
        clock.clone(),
        sweep.clone(),
        loads,
    );
    let drills_api =
        super::drills_api::DrillsApi::new(store.clone(), policy.clone(), clock.clone());
    // The dashboard: the same API modules behind the session cookie.
    let web = crate::web::router(crate::web::Web::new(
        fleet_api.clone(),
        drills_api.clone(),
        cfg.tls.is_some(),
    ))
    .layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        metrics::track,
    ));
    let fleet = fleet_api::router(fleet_api).layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        metrics::track,
    ));
    let drills = super::drills_api::router(drills_api).layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        metrics::track,
    ));
    let app = app(store.clone(), policy, clock, metrics, sweep)
        .merge(fleet)
        .merge(drills)
        .merge(web)
        .method_not_allowed_fallback(method_not_allowed);
    let listener = std::net::TcpListener::bind(cfg.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| CoordinatorError::Io {
            context: format!("cannot listen on {}", cfg.listen),
            source,
        })?;
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            crate::shutdown::requested().await;
            handle.graceful_shutdown(Some(GRACE));
        });
    }
    let service = app.into_make_service();
    let served = match &cfg.tls {
        Some(tls) => {
            let rustls = super::tls::load(tls).await?;
            let watcher = tokio::spawn(super::tls::watch(tls.clone(), rustls.clone()));
            tracing::info!(listen = %cfg.listen, backend = store.backend_name(), "coordinator started (HTTPS)");
            let served = axum_server::from_tcp_rustls(listener, rustls)
                .map_err(|source| CoordinatorError::Io {
                    context: format!("cannot serve on {}", cfg.listen),
                    source,
                })?
                .handle(handle)
                .serve(service)
                .await;
            watcher.abort();
            served
        }
        None => {
            tracing::info!(listen = %cfg.listen, backend = store.backend_name(), "coordinator started (plain HTTP)");
            // `systemctl reload` sends SIGHUP; without a certificate to re-read there is
            // nothing to do, and the signal's default action (exit) must not apply.
            let hangups = tokio::spawn(ignore_hangups());
            let served = axum_server::from_tcp(listener)
                .map_err(|source| CoordinatorError::Io {
                    context: format!("cannot serve on {}", cfg.listen),
                    source,
                })?
                .handle(handle)
                .serve(service)
                .await;
            hangups.abort();
            served
        }
    };
    served.map_err(|source| CoordinatorError::Io {
        context: "the HTTP server failed".into(),
        source,
    })?;
    shutdown_tx.send_replace(true);
    let _ = sweeping.await;
    let _ = alerting.await;
    let _ = orchestrating.await;
    store.close().await;
    tracing::info!("coordinator stopped");
    Ok(Exit::Ok)
}

/// The coordinator's HTTP application: the agent and people APIs, `/metrics` (from `metrics`
/// and the sweep's latest view), `/healthz` and `/readyz`, with every request's latency tracked.
/// [`run`] serves it; the in-process tests (`tests/fuzz_decoders.rs`) call it directly.
pub fn app(
    store: Store,
    policy: Arc<RwLock<Arc<Policy>>>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    sweep: SweepHandle,
) -> axum::Router {
    let metrics_state = Arc::new(MetricsState {
        metrics: metrics.clone(),
        sweep,
    });
    let ready_store = store.clone();
    let document = Arc::new(openapi::document(Vec::new()));
    let people = people_api::router(PeopleApi::new(store.clone(), policy.clone(), clock.clone()));
    let (store_for_alerts, clock_for_alerts) = (store.clone(), clock.clone());
    AgentApi::new(store, policy, clock)
        .with_metrics(metrics.clone())
        .router()
        .merge(people)
        .merge(alerts::api::router(AlertsApi {
            auth: auth::Auth::new(store_for_alerts, clock_for_alerts),
        }))
        .route(
            metrics::METRICS_PATH,
            get(metrics::serve).with_state(metrics_state),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            openapi::OPENAPI_PATH,
            get(move || openapi::serve(document.clone())),
        )
        .route(
            "/readyz",
            get(move || {
                let store = ready_store.clone();
                async move {
                    match store.ping().await {
                        Ok(()) => (StatusCode::OK, "ready"),
                        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
                    }
                }
            }),
        )
        // Every refusal carries an ApiError (src/api.rs), an unknown route's included.
        .fallback(|| async {
            auth::Failure::not_found("no such endpoint (the API is under /api/v1)")
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

/// A known route asked with a method it does not serve: 405 with an `ApiError`.
async fn method_not_allowed(method: axum::http::Method) -> auth::Failure {
    auth::Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        crate::api::ErrorCode::MethodNotAllowed,
        format!("{method} is not served on this route; see /api/v1/openapi.json"),
    )
}

/// How long requests in flight may take to finish after SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

/// Logs each SIGHUP (served without TLS: nothing to reload) instead of exiting on it.
async fn ignore_hangups() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangup) => {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: served without [tls], nothing to reload");
            }
        }
        Err(e) => tracing::warn!("cannot handle SIGHUP: {e}"),
    }
}

/// Completes on SIGTERM or SIGINT (never, if the handlers cannot be installed).
/// Issues a one-time enrolment token for `host` at `site`, valid for `valid`; prints it once.
pub async fn enrol_token(
    config: &Path,
    host: &str,
    site: &str,
    valid: Duration,
    clock: &dyn Clock,
) -> Result<String, CoordinatorError> {
    let (_, store, policy, _) = open(config).await?;
    let issued = issue_enrolment_token(
        &store,
        &policy,
        host,
        site,
        valid,
        clock.now(),
        &cli_actor(),
    )
    .await;
    store.close().await;
    match issued {
        Ok((token, _)) => Ok(token.expose().to_string()),
        Err(EnrolmentTokenError::Store(e)) => Err(CoordinatorError::Store(e)),
        Err(EnrolmentTokenError::UnknownHost(host)) => Err(CoordinatorError::Usage(format!(
            "no system of the policy is on host {host}, and no drill plan restores there; check \
             --host against the systems' host and the drill plans' standby host"
        ))),
        Err(e) => Err(CoordinatorError::Usage(e.to_string())),
    }
}

/// The audit actor of a command run on the coordinator's machine: `cli:<login>`.
fn cli_actor() -> String {
    std::env::var("USER").map_or_else(|_| "cli".to_string(), |u| format!("cli:{u}"))
}

/// Creates a person with `role` and `password` (hashed here; the store sees the hash only).
/// Needs no running coordinator, so that a fresh install can create its first admin.
pub async fn add_user(
    config: &Path,
    name: &str,
    role: Role,
    password: Secret,
    clock: &dyn Clock,
) -> Result<(), CoordinatorError> {
    let cfg = CoordinatorConfig::load(config).map_err(CoordinatorError::Config)?;
    let now = clock.now();
    let user = auth::new_user(name, role, password, now)
        .await
        .map_err(|e| CoordinatorError::Usage(e.to_string()))?;
    let store = Store::open(&cfg.database).await?;
    let created = match store.create_user(&user).await {
        Ok(()) => store
            .append_audit(&NewAuditEntry {
                at: now,
                actor: cli_actor(),
                action: "user.created".into(),
                target: format!("user:{name}"),
                detail: serde_json::json!({ "role": role.as_str() }),
            })
            .await
            .map(|_| ())
            .map_err(CoordinatorError::Store),
        Err(StoreError::Conflict(_)) => Err(CoordinatorError::Usage(format!(
            "user {name} exists; an admin changes it with PATCH /api/v1/users/{name}"
        ))),
        Err(e) => Err(CoordinatorError::Store(e)),
    };
    store.close().await;
    created
}
