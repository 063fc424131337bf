//! The coordinator: the single source of truth about what is protected (see the README and
//! `DESIGN.md` §3). So far only its [`store`]; the HTTP API, assessments sweeps, alerts and drills
//! build on it and never name SQL themselves.

pub mod store;
