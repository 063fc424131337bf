//! lifeboat: disaster-recovery and backup orchestration.
//!
//! The library holds everything; `src/main.rs` only parses the command line and maps errors to
//! exit codes. See the README's architecture section for the modules and their invariants.

pub mod agent;
pub mod api;
pub mod assess;
pub mod cli;
pub mod clock;
pub mod coordinator;
pub mod demo;
pub mod drill;
pub mod engine;
pub mod exit;
pub mod hooks;
pub mod i18n;
pub mod link;
pub mod policy;
pub mod report;
pub mod run;
pub mod secret;
pub mod shutdown;
pub mod sim;
pub mod web;
