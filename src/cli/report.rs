//! `lifeboat report`: the quarterly recovery-objectives report from the coordinator's database
//! and policy, read directly through `--config coordinator.toml` (as `lifeboat drill` does), in
//! HTML, PDF, CSV or JSON, to a file or stdout. Audited as `cli:<login>` (a report is a
//! privileged read).
//!
//! It only wires arguments to [`crate::report::quarterly::render`]: no figure is computed, no
//! SQL written and no secret printed here.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;

use super::args::ReportArgs;
use super::{print_json, report_error};
use crate::clock::{Clock, SystemClock};
use crate::coordinator::config::CoordinatorConfig;
use crate::coordinator::store::{NewAuditEntry, Store, StoreError};
use crate::exit::Exit;
use crate::policy;
use crate::report::quarterly::{self, BuildError, ReportError};

/// Why `lifeboat report` failed.
#[derive(Debug, thiserror::Error)]
enum ReportCliError {
    #[error("{0}")]
    Config(crate::policy::Problem),
    #[error("the policy is invalid:\n{0}")]
    Policy(crate::policy::PolicyReport),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Report(#[from] ReportError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ReportCliError {
    fn exit(&self) -> Exit {
        match self {
            ReportCliError::Config(_) | ReportCliError::Policy(_) => Exit::Policy,
            ReportCliError::Store(e) | ReportCliError::Report(ReportError::Store(e))
                if e.is_unavailable() =>
            {
                Exit::Unreachable
            }
            ReportCliError::Report(ReportError::Build(BuildError::NotStarted { .. })) => {
                Exit::Usage
            }
            _ => Exit::Failure,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ReportCliError::Config(_) => "config",
            ReportCliError::Policy(_) => "policy",
            ReportCliError::Store(_) | ReportCliError::Report(ReportError::Store(_)) => "store",
            ReportCliError::Report(ReportError::Build(_)) => "usage",
            ReportCliError::Report(_) => "report",
            ReportCliError::Io { .. } => "io",
        }
    }
}

/// Runs `lifeboat report` and returns its exit code.
pub async fn run(a: &ReportArgs, json: bool) -> Exit {
    match report(a, json).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            let exit = e.exit();
            report_error(json, e.kind(), &e.to_string(), exit);
            exit
        }
    }
}

async fn report(a: &ReportArgs, json: bool) -> Result<(), ReportCliError> {
    let cfg = CoordinatorConfig::load(&a.config).map_err(ReportCliError::Config)?;
    let policy = policy::load_dir(&cfg.policy_dir).map_err(ReportCliError::Policy)?;
    let store = Store::open(&cfg.database).await?;
    let now = SystemClock.now();
    let done = quarterly::render(&store, &policy, a.quarter, a.lang, a.format, now).await;
    let rendered = match done {
        Ok(r) => r,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let audited = store
        .append_audit(&NewAuditEntry {
            at: now,
            actor: actor(),
            action: "report.quarterly".into(),
            target: format!("report:{}", rendered.file_name),
            detail: json!({ "format": a.format.as_str(), "lang": a.lang.tag() }),
        })
        .await;
    store.close().await;
    audited?;
    match &a.out {
        Some(path) => {
            write(path, &rendered.bytes)?;
            if json {
                print_json(&json!({
                    "ok": true,
                    "file": path,
                    "bytes": rendered.bytes.len(),
                    "content_type": rendered.content_type,
                }));
            } else {
                eprintln!("wrote {} ({} bytes)", path.display(), rendered.bytes.len());
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&rendered.bytes)
                .and_then(|()| out.flush())
                .map_err(|source| ReportCliError::Io {
                    path: "stdout".into(),
                    source,
                })?;
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportCliError> {
    std::fs::write(path, bytes).map_err(|source| ReportCliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The audit actor of this command line: `cli:<login>`.
fn actor() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}
