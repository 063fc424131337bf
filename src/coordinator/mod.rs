//! The coordinator: the single source of truth about what is protected (see the README and
//! `DESIGN.md` §3). So far: its [`store`], the agent endpoints of the HTTP API ([`agent_api`]),
//! the people endpoints ([`people_api`]: login, users, tokens, audit log, agents, enrolment)
//! behind [`auth`]'s role matrix, all served by [`server`]; operator endpoints, assessment
//! sweeps, alerts and drills build on them and never name SQL themselves.

pub mod agent_api;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod people_api;
pub mod server;
pub mod store;
pub mod sweep;
