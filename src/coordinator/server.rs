//! `lifeboat coordinator`: opens the store, loads the policy (reloaded every 30 s, keeping the
//! last good one), and serves the agent API with `/healthz` and `/readyz` until SIGTERM; and
//! `lifeboat coordinator enrol-token`, which issues a one-time enrolment token for a host.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;

use super::agent_api::AgentApi;
use super::config::CoordinatorConfig;
use super::store::{EnrolmentToken, NewAuditEntry, Store, TokenHash};
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
    Usage(String),
}

impl CoordinatorError {
    pub fn exit(&self) -> Exit {
        match self {
            CoordinatorError::Config(_) | CoordinatorError::Policy(_) => Exit::Policy,
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
            CoordinatorError::Usage(_) => "usage",
        }
    }
}

async fn open(config: &Path) -> Result<(CoordinatorConfig, Store, Policy), CoordinatorError> {
    let cfg = CoordinatorConfig::load(config).map_err(CoordinatorError::Config)?;
    let policy = policy::load_dir(&cfg.policy_dir).map_err(CoordinatorError::Policy)?;
    let store = Store::open(&cfg.database).await?;
    Ok((cfg, store, policy))
}

/// Serves until SIGTERM or SIGINT.
pub async fn run(config: &Path, clock: Arc<dyn Clock>) -> Result<Exit, CoordinatorError> {
    let (cfg, store, policy) = open(config).await?;
    let policy = Arc::new(RwLock::new(Arc::new(policy)));
    // Reload the policy; a broken one is reported and the last good one kept.
    {
        let policy = policy.clone();
        let dir = cfg.policy_dir.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            let mut last_error = String::new();
            loop {
                tick.tick().await;
                match policy::load_dir(&dir) {
                    Ok(p) => {
                        last_error.clear();
                        let mut current = policy.write().unwrap_or_else(|e| e.into_inner());
                        if current.digest != p.digest {
                            tracing::info!(digest = %p.digest, "policy reloaded");
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
    let ready_store = store.clone();
    let app = AgentApi::new(store.clone(), policy, clock)
        .router()
        .route("/healthz", get(|| async { "ok" }))
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
        );
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| CoordinatorError::Io {
            context: format!("cannot listen on {}", cfg.listen),
            source,
        })?;
    tracing::info!(listen = %cfg.listen, backend = store.backend_name(), "coordinator started");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        })
        .await
        .map_err(|source| CoordinatorError::Io {
            context: "the HTTP server failed".into(),
            source,
        })?;
    store.close().await;
    tracing::info!("coordinator stopped");
    Ok(Exit::Ok)
}

/// Issues a one-time enrolment token for `host` at `site`, valid for `valid`; prints it once.
pub async fn enrol_token(
    config: &Path,
    host: &str,
    site: &str,
    valid: Duration,
    clock: &dyn Clock,
) -> Result<String, CoordinatorError> {
    let (_, store, policy) = open(config).await?;
    if !policy.systems.values().any(|s| s.host == host) {
        return Err(CoordinatorError::Usage(format!(
            "no system of the policy is on host {host}; check --host against the systems' host"
        )));
    }
    if !policy.sites.contains_key(site) {
        return Err(CoordinatorError::Usage(format!(
            "site {site} is not in the policy"
        )));
    }
    let token = Secret::new(format!(
        "lbe-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ));
    let now = clock.now();
    let expires = now
        .checked_add(
            jiff::SignedDuration::try_from(valid).unwrap_or(jiff::SignedDuration::from_hours(24)),
        )
        .unwrap_or(now);
    let actor = std::env::var("USER").map_or_else(|_| "cli".to_string(), |u| format!("cli:{u}"));
    store
        .create_enrolment_token(&EnrolmentToken {
            hash: TokenHash::of(&token),
            host: host.to_string(),
            site: site.to_string(),
            created_by: actor.clone(),
            created_at: now,
            expires_at: expires,
            used_at: None,
            used_by: None,
        })
        .await?;
    store
        .append_audit(&NewAuditEntry {
            at: now,
            actor,
            action: "enrolment-token.issued".into(),
            target: format!("host:{host}"),
            detail: serde_json::json!({ "site": site, "expires_at": expires.to_string() }),
        })
        .await?;
    store.close().await;
    Ok(token.expose().to_string())
}
