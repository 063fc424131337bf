//! The coordinator: the single source of truth about what is protected (see the README and
//! `DESIGN.md` §3). So far: its [`store`], and the agent endpoints of the HTTP API ([`agent_api`],
//! served by [`server`]); operator endpoints, assessment sweeps, alerts and drills build on them
//! and never name SQL themselves.

pub mod agent_api;
pub mod config;
pub mod server;
pub mod store;
