//! Disaster-recovery drills: the pure core of planning, running and measuring a drill.
//!
//! A drill rehearses the loss of a site (or of one system, or a ransomware attack) by restoring
//! the systems in scope at a standby site from the copies the scenario allows, and measures the
//! RPO and RTO actually achieved (standards §3.2–3.3). This module decides everything and does
//! nothing: it reads no clock (every function takes `now`), does no I/O, knows no SQL, HTTP or
//! rustic type. The coordinator's orchestrator feeds it agent reports, approvals and ticks and
//! carries out what it returns; the standby agent executes the tasks.
//!
//! Parts: `select` (which snapshot from which repository, per system), `order` (scope, sample,
//! tier and dependency order), `machine` (the drill's state machine), `measure` (achieved
//! RPO/RTO and verdicts), `record` (the drill record, its hash chain) and `calendar` (drills due
//! by cadence and the regulatory calendar).

pub mod build;
pub mod calendar;
pub mod machine;
pub mod measure;
pub mod order;
pub mod record;
pub mod render;
pub mod select;
#[cfg(test)]
pub(crate) mod testkit;
