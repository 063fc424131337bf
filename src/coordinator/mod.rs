//! The coordinator: the single source of truth about what is protected (see the README and
//! `DESIGN.md` §3). So far: its [`store`], the agent endpoints of the HTTP API ([`agent_api`]),
//! the people endpoints ([`people_api`]: login, users, tokens, audit log, agents, enrolment)
//! behind [`auth`]'s role matrix, the operator and viewer read API and `backup-now`
//! ([`fleet_api`], over the [`sweep`]'s latest view), all served by [`server`]; alerts and drills
//! build on them and never name SQL themselves.

pub mod agent_api;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod drills;
pub mod drills_api;
pub mod fleet_api;
pub mod metrics;
pub mod openapi;
pub mod people_api;
pub mod routes;
pub mod server;
pub mod store;
pub mod sweep;
pub mod tls;

/// The policy in force, from the handle the server's reload loop keeps current. A reload that
/// panicked holding the lock leaves the last policy it stored, which is still whole.
pub(crate) fn current_policy(
    policy: &std::sync::RwLock<std::sync::Arc<crate::policy::Policy>>,
) -> std::sync::Arc<crate::policy::Policy> {
    policy
        .read()
        .map(|p| p.clone())
        .unwrap_or_else(|p| p.into_inner().clone())
}
