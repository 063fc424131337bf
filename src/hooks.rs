//! Runs a system's pre/post/failure hooks (database dumps, service stops, notifications).
//!
//! A hook is an argv run without a shell, with a timeout (the whole process group is killed when
//! it expires), the policy's environment, secret environment resolved from its sources, and
//! `LIFEBOAT_*` variables describing the run. Its output goes to the log, capped, never to the
//! run record: hook output can contain anything, including secrets.

use std::collections::BTreeMap;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::policy::{Hook, HookWhen};

/// Outcome of a failed hook, for the run record and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    pub program: String,
    pub message: String,
}

/// How much of a hook's output is kept for the log.
const OUTPUT_CAP: usize = 8 * 1024;

/// Runs every hook of `when`, in order; stops at the first failure.
pub async fn run_hooks(
    hooks: &[Hook],
    when: HookWhen,
    vars: &BTreeMap<String, String>,
) -> Result<(), HookFailure> {
    for hook in hooks.iter().filter(|h| h.when == when) {
        run_hook(hook, vars).await?;
    }
    Ok(())
}

async fn run_hook(hook: &Hook, vars: &BTreeMap<String, String>) -> Result<(), HookFailure> {
    let program = hook.command.program().to_string();
    let fail = |message: String| HookFailure {
        program: program.clone(),
        message,
    };
    let mut cmd = Command::new(&program);
    cmd.args(hook.command.args())
        .envs(&hook.env)
        .envs(vars)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut secret_values = Vec::new();
    for (name, source) in &hook.secret_env {
        let source = source.clone();
        let value = tokio::task::spawn_blocking(move || source.resolve())
            .await
            .map_err(|e| fail(format!("could not resolve {name}: {e}")))?
            .map_err(|e| fail(format!("could not resolve {name}: {e}")))?;
        cmd.env(name, value.expose());
        secret_values.push(value.expose().to_string());
    }
    let started = std::time::Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        (out, err)
    };
    let waited = tokio::time::timeout(hook.timeout.as_std(), async {
        let (out, err) = collect.await;
        let status = child.wait().await;
        (status, out, err)
    })
    .await;
    match waited {
        Err(_) => {
            kill_group(&child);
            let _ = child.kill().await;
            Err(fail(format!("timed out after {}", hook.timeout)))
        }
        Ok((status, out, err)) => {
            let status = status.map_err(|e| fail(format!("could not be waited for: {e}")))?;
            log_output(&program, &out, &err, &secret_values);
            tracing::info!(hook = %program, seconds = started.elapsed().as_secs_f64(), %status, "hook finished");
            if status.success() {
                Ok(())
            } else {
                let mut tail = String::from_utf8_lossy(tail(&err, 300))
                    .trim()
                    .replace('\n', " ");
                // Hook output may echo a secret it was given (a connection string, say).
                for secret in secret_values.iter().filter(|s| s.len() >= 4) {
                    tail = tail.replace(secret.as_str(), "<redacted>");
                }
                let detail = if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                };
                Err(fail(format!("failed ({status}){detail}")))
            }
        }
    }
}

/// Kills the hook's whole process group (pg_dump children included) on timeout.
fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        // `kill -KILL -PGID`: std has no killpg and unsafe code is forbidden.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn tail(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(n)..]
}

fn log_output(program: &str, out: &[u8], err: &[u8], secrets: &[String]) {
    for (stream, bytes) in [("stdout", out), ("stderr", err)] {
        if !bytes.is_empty() {
            let mut text = String::from_utf8_lossy(tail(bytes, OUTPUT_CAP)).into_owned();
            for secret in secrets.iter().filter(|s| s.len() >= 4) {
                text = text.replace(secret.as_str(), "<redacted>");
            }
            tracing::debug!(hook = %program, stream, output = %text, "hook output");
        }
    }
}
