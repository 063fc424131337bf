//! Prepares `lifeboat up`'s directory, idempotently: the rewritten example policy (written
//! once, then the user's to edit), generated secrets (0600, never replaced), the stand-in
//! scripts, `coordinator.toml`, one `agent.toml` per host with a one-time enrolment token
//! when the agent has none yet, the admin user with a generated password, and the
//! repositories (created once, copies sharing their source's chunker).
//!
//! It starts nothing: the coordinator and the agents run in [`super::fleet`]. A second run on
//! the same directory finds everything in place and changes nothing but the listen address.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DemoError;
use super::embedded::EXAMPLE_POLICY;
use super::rewrite::{self, DRILL_SCRIPT, HOOK_SCRIPT, Layout};
use crate::clock::Clock;
use crate::coordinator::server::{self, CoordinatorError};
use crate::coordinator::store::Role;
use crate::engine::Engine;
use crate::engine::progress::Bars;
use crate::engine::repo::StateDir;
use crate::policy::Policy;
use crate::secret::Secret;

/// The admin's login name.
pub const ADMIN: &str = "admin";

/// What setup found or made.
pub struct Prepared {
    pub policy: Arc<Policy>,
    /// Host → site, every agent of the fleet (systems' hosts and drill standby hosts).
    pub hosts: BTreeMap<String, String>,
    pub admin_password: Secret,
    /// True when the admin password was generated now (print it once).
    pub admin_created: bool,
    /// True when the policy directory was written now.
    pub policy_written: bool,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let context = context.into();
    move |source| DemoError::Io { context, source }
}

/// Writes `body` to `path` with `mode`, replacing it.
fn write_mode(path: &Path, body: &[u8], mode: u32) -> Result<(), DemoError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(format!("cannot write {}", path.display())))?;
    f.write_all(body)
        .map_err(io(format!("cannot write {}", path.display())))?;
    // An existing file keeps its old mode through open(); set it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("cannot chmod {}", path.display())))
}

/// A new random secret: 32 hex digits from the OS generator (through uuid v4).
fn generate() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Creates `path` (0600) with a fresh secret unless it exists; returns its content.
fn secret_file(path: &Path) -> Result<(Secret, bool), DemoError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim().to_string();
        if !text.is_empty() {
            return Ok((Secret::new(text), false));
        }
    }
    let value = generate();
    write_mode(path, format!("{value}\n").as_bytes(), 0o600)?;
    Ok((Secret::new(value), true))
}

const HOOK_BODY: &str = r#"#!/bin/sh
# lifeboat up: stands in for a hook that cannot run on this machine (a database dump, a
# notification). Called as: demo-hook ORIGINAL-PROGRAM [ARGS...]. With --out FILE it writes a
# dump-like file there; with "stream" as the program's role it writes the dump to stdout.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
prog="$1"; shift
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        *) shift ;;
    esac
done
mkdir -p "$here/logs"
printf '%s %s %s (stand-in for %s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${LIFEBOAT_SYSTEM:-?}" "${LIFEBOAT_RUN_ID:-?}" "$prog" >> "$here/logs/hooks.log"
dump() {
    printf 'PGDMP lifeboat demo dump of the general ledger of %s\n' "${LIFEBOAT_SYSTEM:-?}"
    awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "INSERT INTO voucher VALUES (%d, %d, %d.%02d);\n", i, 1001 + (i * 37) % 5600, (i * 7919) % 100000, i % 100 }'
}
case "$prog" in
    pg-dump*|*dump*)
        if [ -n "$out" ]; then
            mkdir -p "$(dirname "$out")"
            dump > "$out.partial" && mv "$out.partial" "$out"
        else
            dump
        fi ;;
esac
exit 0
"#;

const DRILL_BODY: &str = r#"#!/bin/sh
# lifeboat up: stands in for the bank's drill scripts (health check, DNS switch-over, fail-back)
# that cannot run on this machine. Called as: demo-drill ORIGINAL-PROGRAM [ARGS...].
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
prog="$1"; shift
mkdir -p "$here/logs"
printf '%s drill %s %s system=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${LIFEBOAT_DRILL_ID:-?}" "$prog" "${LIFEBOAT_SYSTEM:-}" >> "$here/logs/drill.log"
case "$prog" in
    health-check|open-samples|start-share)
        if [ -n "${LIFEBOAT_RESTORE_DIR:-}" ]; then
            test -d "$LIFEBOAT_RESTORE_DIR"
            echo "$prog: $(find "$LIFEBOAT_RESTORE_DIR" -type f | wc -l) files restored for $LIFEBOAT_SYSTEM (stand-in check)"
        else
            echo "$prog: ok (stand-in)"
        fi ;;
    *)
        echo "$prog $* (stand-in: nothing switched on this machine)"
        if [ -n "${LIFEBOAT_DRILL_ROOT:-}" ]; then
            mkdir -p "$LIFEBOAT_DRILL_ROOT" && echo "$prog $*" >> "$LIFEBOAT_DRILL_ROOT/$prog.done"
        fi ;;
esac
exit 0
"#;

/// The coordinator's settings: quick sweeps and drill ticks, as fits one machine.
fn coordinator_toml(layout: &Layout, listen: SocketAddr) -> String {
    format!(
        "# Written by `lifeboat up` at every start (edit the policy, not this file).\n\
         listen = \"{listen}\"\n\
         database = \"sqlite://{db}\"\n\
         policy-dir = \"{policies}\"\n\
         sweep-every = \"5s\"\n\n\
         [drills]\n\
         tick-every = \"1s\"\n",
        db = layout.database().display(),
        policies = layout.policies().display(),
    )
}

fn agent_toml(layout: &Layout, host: &str, site: &str, listen: SocketAddr) -> String {
    format!(
        "# Written by `lifeboat up` at every start: the in-process agent of host {host}.\n\
         host = \"{host}\"\n\
         site = \"{site}\"\n\
         state-dir = \"{state}\"\n\
         jitter = \"0s\"\n\
         reload-every = \"5s\"\n\
         shutdown-grace = \"10s\"\n\n\
         [coordinator]\n\
         url = \"http://{listen}\"\n\
         enrol-token = {{ file = \"{token}\" }}\n\
         heartbeat-every = \"1s\"\n\
         request-timeout = \"20s\"\n",
        state = layout.agent_state(host).display(),
        token = layout.enrol_token(host).display(),
    )
}

/// Every host of the policy with its site: the systems' hosts, and the standby hosts of drills.
pub fn hosts(policy: &Policy) -> BTreeMap<String, String> {
    let mut hosts = BTreeMap::new();
    for s in policy.systems.values() {
        hosts.insert(s.host.clone(), s.site.to_string());
    }
    for d in policy.drills.values() {
        hosts
            .entry(d.standby.host.clone())
            .or_insert_with(|| d.standby.site.to_string());
    }
    hosts
}

fn coordinator_error(e: CoordinatorError) -> DemoError {
    DemoError::Coordinator(e)
}

/// Prepares `layout` for a fleet listening on `listen`.
pub async fn prepare(
    layout: &Layout,
    listen: SocketAddr,
    clock: Arc<dyn Clock>,
    say: &impl Fn(&str),
) -> Result<Prepared, DemoError> {
    let rewritten = rewrite::rewrite(EXAMPLE_POLICY, layout).map_err(DemoError::Rewrite)?;
    let policy_written = !layout.policies().exists();
    if policy_written {
        for (name, text) in &rewritten.files {
            write_mode(&layout.policies().join(name), text.as_bytes(), 0o644)?;
        }
        say(&format!(
            "wrote the example bank's policy, rewritten for this machine, to {}",
            layout.policies().display()
        ));
    } else {
        say(&format!(
            "using the policy in {}",
            layout.policies().display()
        ));
    }
    let mut created = 0;
    for path in &rewritten.secrets {
        created += usize::from(secret_file(path)?.1);
    }
    if created > 0 {
        say(&format!(
            "generated {created} secrets (repository passwords, database passwords) in {} (mode 0600)",
            layout.secrets().display()
        ));
    }
    write_mode(&layout.bin(HOOK_SCRIPT), HOOK_BODY.as_bytes(), 0o755)?;
    write_mode(&layout.bin(DRILL_SCRIPT), DRILL_BODY.as_bytes(), 0o755)?;
    let policy = crate::policy::load_dir(&layout.policies()).map_err(DemoError::Policy)?;
    let policy = Arc::new(policy);
    // Source directories exist, so that a first backup has something to read.
    for s in policy.systems.values() {
        for p in &s.paths {
            std::fs::create_dir_all(p).map_err(io(format!("cannot create {}", p.display())))?;
        }
    }
    write_mode(
        &layout.coordinator_config(),
        coordinator_toml(layout, listen).as_bytes(),
        0o644,
    )?;
    let (admin_password, admin_created) = secret_file(&layout.admin_password())?;
    // Also on later starts: a database deleted by hand gets its admin back.
    match server::add_user(
        &layout.coordinator_config(),
        ADMIN,
        Role::Admin,
        admin_password.clone(),
        clock.as_ref(),
    )
    .await
    {
        Ok(()) => say("created the admin user"),
        Err(CoordinatorError::Usage(m)) if m.contains("exists") => {}
        Err(e) => return Err(coordinator_error(e)),
    }
    let hosts = hosts(&policy);
    let mut issued = 0;
    for (host, site) in &hosts {
        write_mode(
            &layout.agent_config(host),
            agent_toml(layout, host, site, listen).as_bytes(),
            0o644,
        )?;
        let has_token = layout
            .agent_state(host)
            .join("agent/token")
            .metadata()
            .is_ok_and(|m| m.len() > 0);
        if !has_token {
            let token = server::enrol_token(
                &layout.coordinator_config(),
                host,
                site,
                std::time::Duration::from_secs(24 * 3600),
                clock.as_ref(),
            )
            .await
            .map_err(coordinator_error)?;
            write_mode(
                &layout.enrol_token(host),
                format!("{token}\n").as_bytes(),
                0o600,
            )?;
            issued += 1;
        }
    }
    if issued > 0 {
        say(&format!(
            "issued {issued} one-time enrolment tokens (one per host)"
        ));
    }
    create_repositories(layout, &policy, clock, say).await?;
    Ok(Prepared {
        policy,
        hosts,
        admin_password,
        admin_created,
        policy_written,
    })
}

/// Creates every repository not created yet, system by system (copies share the chunker of
/// the system's first repository), before any agent writes: two hosts creating a shared
/// repository at once would race on its `config`.
async fn create_repositories(
    layout: &Layout,
    policy: &Arc<Policy>,
    clock: Arc<dyn Clock>,
    say: &impl Fn(&str),
) -> Result<(), DemoError> {
    let missing = |repo: &str| !layout.storage(repo).join("config").exists();
    let todo: Vec<String> = policy
        .systems
        .values()
        .filter(|s| s.repositories.iter().any(|r| missing(r.as_str())))
        .map(|s| s.id.to_string())
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    say(&format!(
        "creating repositories (restic format, encrypted) under {}",
        layout.root.join("storage").display()
    ));
    let engine = Engine::new(
        policy.clone(),
        StateDir(layout.operator_state()),
        Bars::hidden(),
        clock,
    );
    for system in todo {
        engine.init(Some(&system), None).await.map_err(|e| {
            DemoError::Engine(format!("creating the repositories of {system}: {e}"))
        })?;
    }
    Ok(())
}

/// The canonical form of `dir`, created if missing.
pub fn root(dir: &Path) -> Result<PathBuf, DemoError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    std::fs::canonicalize(dir).map_err(io(format!("cannot resolve {}", dir.display())))
}

/// Holds `DIR/lifeboat-up.lock`: one `up` or `demo` per directory at a time.
pub fn lock(layout: &Layout) -> Result<std::fs::File, DemoError> {
    let path = layout.lock();
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    f.try_lock()
        .map_err(|_| DemoError::Busy(layout.root.clone()))?;
    Ok(f)
}
