//! The agent: unattended, scheduled protection of one branch server (`lifeboat agent`).
//!
//! It takes the systems assigned to its host (from the coordinator, or a local policy
//! directory), runs their cron schedules through the engine, spools every run record durably
//! and delivers it to the coordinator at least once.
//!
//! Modules: [`config`] (agent.toml), [`assignment`] (the policy it runs, cached), [`schedule`]
//! (pure: what is due when), [`runner`] (one job through the engine), [`spool`] (durable
//! records), [`client`] (the coordinator API), [`state`] (what it remembers), [`metrics`],
//! `drill` (drill tasks for a standby host: run each once, report it) and `daemon` (the loop
//! tying them together).
//!
//! With a coordinator, an agent starts without an assignment when none exists for its host
//! yet (a standby host, which has no systems of its own but runs drill tasks), heartbeats, and
//! takes the assignment when one appears.

pub mod assignment;
pub mod client;
pub mod config;
mod daemon;
pub(crate) mod drill;
pub mod metrics;
pub mod runner;
pub mod schedule;
pub mod spool;
pub mod state;

use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::Serialize;

use crate::api;
use crate::clock::Clock;
use crate::exit::Exit;
use crate::policy::{JobKind, Problem};
use crate::secret::Secret;
use config::{AgentConfig, CoordinatorConfig};
use daemon::{Agent, Shared};
use spool::Spool;
use state::AgentState;

/// Why the agent cannot start (once running, failures are run records, not errors).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Config(Problem),
    #[error("{0}")]
    NoPolicy(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Spool(#[from] spool::SpoolError),
    #[error("{0}")]
    Coordinator(String),
    #[error("credentials: {0}")]
    Credentials(String),
}

impl AgentError {
    pub fn exit(&self) -> Exit {
        match self {
            AgentError::Config(_) | AgentError::NoPolicy(_) => Exit::Policy,
            AgentError::Credentials(_) => Exit::Credentials,
            AgentError::Coordinator(_) => Exit::Unreachable,
            AgentError::Io { .. } | AgentError::Spool(_) => Exit::Failure,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            AgentError::Config(_) => "config",
            AgentError::NoPolicy(_) => "no-policy",
            AgentError::Io { .. } => "io",
            AgentError::Spool(_) => "spool",
            AgentError::Coordinator(_) => "unreachable",
            AgentError::Credentials(_) => "credentials",
        }
    }
}

/// `lifeboat agent`: runs until SIGTERM or SIGINT.
pub async fn run(config: &Path, clock: Arc<dyn Clock>) -> Result<Exit, AgentError> {
    crate::shutdown::install().map_err(|source| AgentError::Io {
        context: "cannot install the SIGINT/SIGTERM handlers".into(),
        source,
    })?;
    let cfg = AgentConfig::load(config).map_err(AgentError::Config)?;
    let dir = cfg.agent_dir();
    std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
        context: format!("cannot create {}", dir.display()),
        source,
    })?;
    let agent = Agent::new(cfg.clone(), clock.clone())?;
    let initial = initial_assignment(&cfg, clock.as_ref()).await?;
    tracing::info!(
        host = %cfg.host(),
        site = %cfg.site,
        version = env!("CARGO_PKG_VERSION"),
        "agent started"
    );
    if initial.is_none() {
        tracing::info!(
            "no assignment for this host yet: running without systems (a standby host runs drill tasks); the assignment is taken when it appears"
        );
    }
    agent.run(initial).await?;
    tracing::info!("agent stopped");
    Ok(Exit::Ok)
}

/// The policy to start with: the local directory, or the coordinator's assignment (fetched
/// now when reachable, else the cached one; `None` when there is neither: the agent starts
/// without systems and takes the assignment when one appears).
async fn initial_assignment(
    cfg: &AgentConfig,
    clock: &dyn Clock,
) -> Result<Option<assignment::Assignment>, AgentError> {
    let now = clock.now();
    let Some(cc) = &cfg.coordinator else {
        let dir = cfg.policy_dir.clone().unwrap_or_default();
        return assignment::load_local(&dir, now).map(Some).map_err(|e| {
            AgentError::NoPolicy(format!(
                "{e}\nfix the policy (`lifeboat policy check {}`) and start the agent again",
                dir.display()
            ))
        });
    };
    let agent_dir = cfg.agent_dir();
    assignment::recover(&agent_dir);
    enrol(cfg, cc).await?;
    let client = coordinator_client(cfg, cc)?;
    match fetch_assignment(&client, &agent_dir, clock).await {
        Ok(a) => return Ok(Some(a)),
        Err(e) => tracing::info!("no assignment from the coordinator: {e}"),
    }
    match assignment::load_cache(&agent_dir, now) {
        Some(Ok(a)) => Ok(Some(a)),
        Some(Err(e)) => Err(AgentError::NoPolicy(format!(
            "the cached assignment is invalid and the coordinator gave none: {e}"
        ))),
        // Nothing yet (a standby host, or the coordinator is down at the first start): run
        // without systems; the assignment loop takes one when it appears.
        None => Ok(None),
    }
}

async fn fetch_assignment(
    client: &client::CoordinatorClient,
    agent_dir: &Path,
    clock: &dyn Clock,
) -> Result<assignment::Assignment, String> {
    match client.assignment(None).await {
        Ok(Some(a)) => accept_wire(agent_dir, a, clock.now()),
        Ok(None) => Err("the coordinator has no assignment for this host".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks an assignment received from the coordinator and makes it the cached one.
pub(crate) fn accept_wire(
    agent_dir: &Path,
    a: api::Assignment,
    now: Timestamp,
) -> Result<assignment::Assignment, String> {
    a.verify().map_err(|e| e.to_string())?;
    let files: Vec<(String, String)> = a
        .files
        .into_iter()
        .map(|f| (f.name.as_str().to_string(), f.content))
        .collect();
    assignment::accept(agent_dir, &files, Some(&a.digest), now).map_err(|e| e.to_string())
}

/// The coordinator client, with the agent's token: configured, or stored from an earlier
/// enrolment (see [`enrol`]).
pub(crate) fn coordinator_client(
    cfg: &AgentConfig,
    cc: &CoordinatorConfig,
) -> Result<client::CoordinatorClient, AgentError> {
    let token: Option<Secret> = match &cc.token {
        Some(source) => Some(
            source
                .resolve()
                .map_err(|e| AgentError::Credentials(e.to_string()))?,
        ),
        None => stored_token(cfg),
    };
    let config = client::ClientConfig {
        base_url: cc.url.clone(),
        ca_file: cc.ca_file.clone(),
        timeout: cc.request_timeout,
        allow_http: cc.allow_http,
    };
    client::CoordinatorClient::new(&config, token)
        .map_err(|e| AgentError::Coordinator(e.to_string()))
}

/// `<agent-dir>/token`: the agent's own token, written at enrolment (mode 0600).
fn token_path(cfg: &AgentConfig) -> std::path::PathBuf {
    cfg.agent_dir().join("token")
}

fn stored_token(cfg: &AgentConfig) -> Option<Secret> {
    std::fs::read_to_string(token_path(cfg))
        .ok()
        .map(|t| Secret::new(t.trim().to_string()))
        .filter(|t| !t.expose().is_empty())
}

/// Makes sure the agent has its own token: configured, stored, or obtained now by trading the
/// one-time enrolment token. The new token is stored (0600, fsynced) before it is used, so an
/// enrolment is never lost to a crash. Waits for an unreachable coordinator rather than exit.
async fn enrol(cfg: &AgentConfig, cc: &CoordinatorConfig) -> Result<(), AgentError> {
    if cc.token.is_some() || stored_token(cfg).is_some() {
        return Ok(());
    }
    let Some(source) = &cc.enrol_token else {
        return Err(AgentError::Credentials(format!(
            "the agent has no token: set coordinator.enrol-token (a one-time token from an \
             operator) or coordinator.token in {}",
            "agent.toml"
        )));
    };
    let once = source
        .resolve()
        .map_err(|e| AgentError::Credentials(e.to_string()))?;
    let client = coordinator_client(cfg, cc)?;
    let site = cfg.site.parse().map_err(|e| {
        AgentError::Config(Problem {
            file: std::path::PathBuf::from("agent.toml"),
            line: 0,
            column: 0,
            key_path: "site".into(),
            message: format!("site \"{}\" is not a valid site id: {e}", cfg.site),
            hint: None,
        })
    })?;
    let request = api::EnrolRequest {
        enrolment_token: api::Token::new(once.expose()),
        host: cfg.host(),
        site,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut delay = std::time::Duration::from_secs(5);
    let answer = loop {
        match client.enrol(&request).await {
            Ok(a) => break a,
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    "cannot enrol yet ({e}); retrying in {}",
                    humantime::format_duration(delay)
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(300));
            }
            Err(e) => {
                return Err(AgentError::Credentials(format!(
                    "enrolment refused ({e}); ask an operator for a new enrolment token"
                )));
            }
        }
    };
    write_secret_file(&token_path(cfg), answer.agent_token.secret().expose()).map_err(
        |source| AgentError::Io {
            context: format!(
                "cannot store the agent token in {}",
                token_path(cfg).display()
            ),
            source,
        },
    )?;
    tracing::info!(agent_id = %answer.agent_id, "enrolled with the coordinator");
    Ok(())
}

/// Writes a file readable by its owner only, durably, replacing it atomically.
fn write_secret_file(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What heartbeats are built from.
#[derive(Clone)]
pub(crate) struct HeartbeatInfo {
    host: String,
    #[allow(dead_code)]
    site: String,
    shared: Arc<Mutex<Shared>>,
    spool: Spool,
    clock: Arc<dyn Clock>,
    /// The drill tasks running now.
    drills: drill::worker::Running,
}

impl HeartbeatInfo {
    fn build(&self) -> (api::Heartbeat, Timestamp) {
        let now = self.clock.now();
        let spool = api::SpoolStatus::from(self.spool.stats());
        let sh = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut systems = Vec::new();
        if let Some(a) = &sh.assignment {
            for s in a.policy.systems.values().filter(|s| s.host == self.host) {
                let st = sh.state.systems.get(s.id.as_str());
                let last = st.and_then(|st| st.last_run.get(&JobKind::Backup));
                systems.push(api::SystemStatus {
                    system: s.id.clone(),
                    last_backup: last.map(|l| api::LastRun {
                        run_id: l.run_id.clone(),
                        started_at: l.started_at,
                        outcome: l.outcome,
                    }),
                    last_success: st
                        .and_then(|st| st.last_run.get(&JobKind::Backup))
                        .filter(|l| l.outcome == crate::run::Outcome::Success)
                        .map(|l| l.finished_at),
                    offsite_lag_seconds: st.and_then(|st| st.offsite_lag(now)).map(|l| l as u64),
                    next_run: sh
                        .next
                        .iter()
                        .filter(|n| n.system == s.id)
                        .filter_map(|n| n.next_run_at)
                        .min(),
                    running: sh
                        .running
                        .get(s.id.as_str())
                        .map(|(job, at)| api::RunningJob {
                            run_id: String::new(),
                            kind: runner::kind_of(*job),
                            started_at: *at,
                        }),
                });
            }
        }
        let digest = sh.assignment.as_ref().and_then(|a| a.wire_digest.clone());
        drop(sh);
        let drill_tasks_running = self
            .drills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        (
            api::Heartbeat {
                drill_tasks_running,
                host: self.host.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                sent_at: now,
                spool,
                assignment_digest: digest,
                systems,
            },
            now,
        )
    }

    fn apply(&self, resp: &api::HeartbeatResponse, sent: Timestamp, received: Timestamp) {
        let offset = resp.clock_offset(sent, received);
        let secs = offset.as_secs_f64();
        if secs.abs() > 60.0 {
            tracing::warn!(
                "this host's clock is {secs:.0} s off the coordinator's; capture times and schedules depend on it (check NTP)"
            );
        }
        let mut sh = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        sh.clock_offset = Some(secs);
    }
}

/// The commands of a heartbeat answer the loop acts on.
fn commands_of(resp: &api::HeartbeatResponse) -> Vec<daemon::Command> {
    resp.commands
        .iter()
        .filter_map(|c| match c {
            api::Command::BackupNow { system } => {
                Some(daemon::Command::BackupNow(system.to_string()))
            }
            api::Command::Unknown => {
                tracing::warn!("the coordinator sent a command this agent does not know; ignored");
                None
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// status

/// One job in `lifeboat agent status`.
#[derive(Debug, Serialize)]
struct JobStatus {
    system: String,
    job: JobKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_started: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_outcome: Option<crate::run::Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_success: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run: Option<Timestamp>,
    late: bool,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    host: String,
    site: String,
    running: bool,
    assignment: String,
    /// Records waiting for delivery (known when the agent is not running; else see /metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    spool_depth: Option<usize>,
    jobs: Vec<JobStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    offsite_lag_seconds: Vec<(String, f64)>,
}

/// `lifeboat agent status`: computed from the agent's saved state and assignment, so it works
/// whether or not the agent is running.
pub async fn status(config: &Path, clock: &dyn Clock, json: bool) -> Result<Exit, AgentError> {
    let cfg = AgentConfig::load(config).map_err(AgentError::Config)?;
    let host = cfg.host();
    let dir = cfg.agent_dir();
    let now = clock.now();
    let assignment = match &cfg.coordinator {
        None => assignment::load_local(&cfg.policy_dir.clone().unwrap_or_default(), now)
            .map_err(|e| AgentError::NoPolicy(e.to_string()))?,
        Some(_) => match assignment::load_cache(&dir, now) {
            Some(r) => r.map_err(|e| AgentError::NoPolicy(e.to_string()))?,
            None => {
                return Err(AgentError::NoPolicy(
                    "the agent has not received an assignment yet".into(),
                ));
            }
        },
    };
    let state = AgentState::load(&dir.join("state.json"));
    let running = daemon::is_running(&dir);
    let spool_depth = if running {
        None
    } else {
        spool::Spool::open(&dir.join("spool"), spool::SpoolLimits::default())
            .ok()
            .map(|s| s.depth())
    };
    let specs = schedule::jobs_for_host(&assignment.policy, &host);
    let plan = schedule::plan(
        &specs,
        &state.history,
        now,
        &schedule::PlanOptions {
            jitter_max: cfg.jitter,
            host: host.clone(),
        },
    );
    let mut jobs = Vec::new();
    for spec in &specs {
        let sys = spec.system.to_string();
        let st = state.systems.get(&sys);
        let last = st.and_then(|s| s.last_run.get(&spec.job));
        jobs.push(JobStatus {
            system: sys.clone(),
            job: spec.job,
            last_started: last.map(|l| l.started_at),
            last_outcome: last.map(|l| l.outcome),
            last_error: last.and_then(|l| l.error.clone()),
            last_success: st.and_then(|s| s.last_success.get(&spec.job).copied()),
            next_run: plan
                .next
                .iter()
                .find(|n| n.system == spec.system && n.job == spec.job)
                .and_then(|n| n.next_run_at),
            late: plan
                .late
                .iter()
                .any(|l| l.system == spec.system && l.job == spec.job),
        });
    }
    let lag: Vec<(String, f64)> = state
        .systems
        .iter()
        .filter_map(|(s, st)| st.offsite_lag(now).map(|l| (s.clone(), l)))
        .collect();
    let report = StatusReport {
        host,
        site: cfg.site.clone(),
        running,
        assignment: assignment.origin.clone(),
        spool_depth,
        jobs,
        offsite_lag_seconds: lag,
    };
    let unhealthy = report.jobs.iter().any(|j| {
        j.late
            || matches!(
                j.last_outcome,
                Some(crate::run::Outcome::Failed | crate::run::Outcome::Partial)
            )
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_status(&report, now);
    }
    Ok(if unhealthy { Exit::Partial } else { Exit::Ok })
}

fn print_status(r: &StatusReport, now: Timestamp) {
    let ago = |t: Option<Timestamp>| -> String {
        t.map_or("-".into(), |t| {
            let secs = (now - t).total(jiff::Unit::Second).unwrap_or(0.0);
            if secs >= 0.0 {
                format!(
                    "{} ago",
                    humantime::format_duration(std::time::Duration::from_secs(secs as u64))
                )
            } else {
                format!(
                    "in {}",
                    humantime::format_duration(std::time::Duration::from_secs((-secs) as u64))
                )
            }
        })
    };
    println!(
        "agent {} at {}: {}; policy from {}",
        r.host,
        r.site,
        if r.running { "running" } else { "not running" },
        r.assignment,
    );
    if let Some(depth) = r.spool_depth {
        println!("{depth} run record(s) waiting in the spool for delivery");
    }
    println!(
        "{:<24} {:<10} {:<18} {:<8} {:<18} {:<18} LATE",
        "SYSTEM", "JOB", "LAST RUN", "OUTCOME", "LAST SUCCESS", "NEXT"
    );
    for j in &r.jobs {
        println!(
            "{:<24} {:<10} {:<18} {:<8} {:<18} {:<18} {}",
            j.system,
            j.job.to_string(),
            ago(j.last_started),
            j.last_outcome
                .map_or("-".to_string(), |o| format!("{o:?}").to_lowercase()),
            ago(j.last_success),
            ago(j.next_run),
            if j.late { "LATE" } else { "" }
        );
        if let Some(e) = &j.last_error {
            println!("    last error: {e}");
        }
    }
    for (s, lag) in &r.offsite_lag_seconds {
        println!(
            "off-site lag of {s}: {}",
            humantime::format_duration(std::time::Duration::from_secs(*lag as u64))
        );
    }
}
