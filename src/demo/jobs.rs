//! `lifeboat demo`'s backups and copies: each host's jobs run the way its agent runs a forced
//! ("back up now") job — the agent's job runner (`agent::runner`) on an engine over the host's
//! state directory, the records written to the host's durable spool, folded into its state and
//! its schedule history — while that agent is not running. When the agent starts, it delivers
//! the spooled records to the coordinator itself and does not run the jobs again.
//!
//! Must not run while the host's agent runs (they share the spool and the state file); the
//! caller holds the directory's lock and starts the fleet only afterwards.

use std::sync::Arc;

use super::DemoError;
use super::rewrite::Layout;
use crate::agent::config::AgentConfig;
use crate::agent::runner::{self, JobOrder};
use crate::agent::schedule::DueJob;
use crate::agent::spool::{Spool, SpoolLimits};
use crate::agent::state::AgentState;
use crate::clock::Clock;
use crate::engine::Engine;
use crate::engine::progress::Bars;
use crate::engine::repo::StateDir;
use crate::policy::{JobKind, Location, Policy};
use crate::run::{Outcome, RunRecord};

/// Runs a backup, then a copy along the chain, of every system of `host`; returns the records.
pub async fn backup_and_copy(
    layout: &Layout,
    policy: Arc<Policy>,
    host: &str,
    clock: Arc<dyn Clock>,
) -> Result<Vec<RunRecord>, DemoError> {
    let path = layout.agent_config(host);
    let cfg = AgentConfig::load(&path).map_err(|p| DemoError::Config(p.to_string()))?;
    let agent_dir = cfg.agent_dir();
    let spool = Spool::open(
        &agent_dir.join("spool"),
        SpoolLimits {
            max_records: cfg.spool.max_records,
            max_bytes: cfg.spool.max_bytes,
        },
    )
    .map_err(|e| DemoError::Engine(format!("the spool of {host}: {e}")))?;
    let state_path = agent_dir.join("state.json");
    let mut state = AgentState::load(&state_path);
    let engine = Engine::new(
        policy.clone(),
        StateDir(cfg.state_dir.clone()),
        Bars::hidden(),
        clock.clone(),
    );
    let mut all = Vec::new();
    let systems: Vec<_> = policy.systems.values().filter(|s| s.host == host).collect();
    for system in systems {
        let has_offsite = policy
            .repositories_of(system)
            .iter()
            .any(|r| matches!(r.location, Location::SameCity | Location::Remote));
        for job in [JobKind::Backup, JobKind::Copy] {
            let now = clock.now();
            let order = JobOrder {
                system: system.id.to_string(),
                job,
                read_data_subsets: Vec::new(),
                not_yet_created: Vec::new(),
            };
            state
                .history
                .mark_started(&DueJob::forced(system.id.clone(), job, now), now);
            let records = runner::run_job(&engine, host, &order).await;
            for r in &records {
                // Durable before anything else, as the agent does.
                spool
                    .push(r)
                    .map_err(|e| DemoError::Engine(format!("the spool of {host}: {e}")))?;
                state.record(job, r, has_offsite);
            }
            let worst = records
                .iter()
                .map(|r| r.outcome)
                .max_by_key(|o| match o {
                    Outcome::Success => 0,
                    Outcome::Partial => 1,
                    Outcome::Failed => 2,
                })
                .unwrap_or(Outcome::Failed);
            state
                .history
                .mark_finished(&system.id, job, clock.now(), worst);
            state.save(&state_path).map_err(|source| DemoError::Io {
                context: format!("cannot save {}", state_path.display()),
                source,
            })?;
            all.extend(records);
        }
    }
    Ok(all)
}
