//! The agent: unattended, scheduled protection of one branch server (`lifeboat agent`).
//!
//! It takes the systems assigned to its host (from the coordinator, or a local policy
//! directory), runs their cron schedules through the engine, spools every run record durably
//! and delivers it to the coordinator at least once.

pub mod client;
pub mod schedule;
pub mod spool;
