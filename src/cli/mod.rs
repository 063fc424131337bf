//! The `lifeboat` command line: dispatches to the engine and the policy, renders results as text
//! or JSON, and maps errors to exit codes (through `crate::exit`). Holds no business logic.

pub mod args;
mod backup_db;
mod drill;
mod render;
mod report;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::clock::SystemClock;
use crate::coordinator::server::CoordinatorError;
use crate::coordinator::store::Role;
use crate::engine::progress::Bars;
use crate::engine::repo::StateDir;
use crate::engine::{
    BackupRequest, CheckRequest, Engine, EngineError, ForgetRequest, RestoreRequest,
};
use crate::exit::Exit;
use crate::policy::{self, Policy};
use crate::run::RunRecord;
use crate::secret::Secret;
use args::{Cli, Command, PolicyCommand};

/// Runs a parsed command line and returns the exit code.
pub async fn run(cli: Cli) -> Exit {
    let json = cli.global.json;
    match dispatch(cli).await {
        Ok(exit) => exit,
        Err(Failure::Engine(e)) => {
            let exit = Exit::of(&e);
            report_error(json, e.kind(), &e.to_string(), exit);
            exit
        }
        Err(Failure::Policy(report)) => {
            if json {
                print_json(&serde_json::json!({ "ok": false, "problems": report.problems_json() }));
            } else {
                eprintln!("{report}");
                eprintln!(
                    "error: the policy is invalid; fix the problems above (`lifeboat policy check`)"
                );
            }
            Exit::Policy
        }
    }
}

/// What can stop a command before it produces its own result.
enum Failure {
    Engine(EngineError),
    Policy(policy::PolicyReport),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e)
    }
}

fn report_error(json: bool, kind: &str, message: &str, exit: Exit) {
    if json {
        print_json(
            &serde_json::json!({ "ok": false, "error": { "kind": kind, "message": message }, "exit_code": exit.code() }),
        );
    }
    eprintln!("error: {message}");
}

fn print_json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

fn load_policy(dir: &Path) -> Result<Policy, Failure> {
    policy::load_dir(dir).map_err(Failure::Policy)
}

/// The default state directory: /var/lib/lifeboat for root, else the XDG state directory.
fn default_state_dir() -> PathBuf {
    if std::env::var("USER").as_deref() == Ok("root")
        || std::env::var("HOME").as_deref() == Ok("/root")
    {
        return PathBuf::from("/var/lib/lifeboat");
    }
    if let Ok(xdg) = std::env::var("XDG_STATE_HOME") {
        return PathBuf::from(xdg).join("lifeboat");
    }
    std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".local/state/lifeboat"))
        .unwrap_or_else(|_| PathBuf::from(".lifeboat"))
}

async fn dispatch(cli: Cli) -> Result<Exit, Failure> {
    let g = &cli.global;
    if let Command::Policy(cmd) = &cli.command {
        return policy_command(cmd, &g.policy, g.json);
    }
    if let Command::Agent(a) = &cli.command {
        return Ok(agent_command(a, g.json).await);
    }
    if let Command::Coordinator(a) = &cli.command {
        return Ok(coordinator_command(a, g.json).await);
    }
    if let Command::FleetSim(a) = &cli.command {
        return Ok(fleet_sim_command(a, g.json).await);
    }
    if let Command::Drill(a) = &cli.command {
        return Ok(drill::run(a, g.json).await);
    }
    if let Command::Report(a) = &cli.command {
        return Ok(report::run(a, g.json).await);
    }
    if let Command::Up(a) | Command::Demo(args::DemoArgs { up: a, .. }) = &cli.command {
        let options = crate::demo::Options {
            dir: a.dir.clone(),
            listen: a.listen,
        };
        let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
        let result = match &cli.command {
            Command::Demo(d) => crate::demo::demo(&options, d.keep_running, clock).await,
            _ => crate::demo::up(&options, clock).await,
        };
        return Ok(result.unwrap_or_else(|e| {
            eprintln!("error: {e}");
            e.exit()
        }));
    }
    let policy = Arc::new(load_policy(&g.policy)?);
    let state = StateDir(g.state_dir.clone().unwrap_or_else(default_state_dir));
    let bars = if g.json || g.no_progress || !std::io::stderr().is_terminal() {
        Bars::hidden()
    } else {
        Bars::terminal()
    };
    let engine = Engine::new(policy, state, bars, Arc::new(SystemClock));
    let json = g.json;
    match &cli.command {
        Command::Init(a) => {
            let out = engine
                .init(a.target.system.as_deref(), a.target.repo.as_deref())
                .await?;
            if json {
                print_json(&out);
            } else {
                render::init(&out);
            }
            Ok(Exit::Ok)
        }
        Command::Backup(a) => {
            let req = BackupRequest {
                system: a.system.clone(),
                all_repos: a.all_repos,
                copy: true,
            };
            let record = engine.backup(&req).await?;
            Ok(finish_run(&record, json, || render::backup(&record)))
        }
        Command::Snapshots(a) => {
            let list = engine
                .snapshots(a.system.as_deref(), a.repo.as_deref())
                .await?;
            if json {
                print_json(&list);
            } else {
                render::snapshots(&list);
            }
            Ok(Exit::Ok)
        }
        Command::Restore(a) => {
            let req = RestoreRequest {
                system: a.system.clone(),
                repository: a.repo.clone(),
                snapshot: a.snapshot.clone(),
                path: a.path.clone(),
                target: a.target.clone(),
                verify: a.verify,
                dry_run: a.dry_run,
                overwrite: a.overwrite,
            };
            let report = engine.restore(&req).await?;
            if json {
                print_json(&report);
            } else {
                render::restore(&report);
            }
            Ok(Exit::Ok)
        }
        Command::Check(a) => {
            let repos: Vec<String> = match (&a.target.system, &a.target.repo) {
                (_, Some(r)) => vec![r.clone()],
                (Some(s), None) => engine
                    .system(s)?
                    .repositories
                    .iter()
                    .map(|r| r.to_string())
                    .collect(),
                (None, None) => Vec::new(),
            };
            let mut reports = Vec::new();
            let mut exit = Exit::Ok;
            for repo in repos {
                let req = CheckRequest {
                    repository: repo,
                    read_data: a.read_data,
                    read_data_subset: a.read_data_subset.clone(),
                };
                match engine.check(&req).await {
                    Ok(report) => {
                        if report.errors > 0 {
                            exit = Exit::Integrity;
                        }
                        if !json {
                            render::check(&report);
                        }
                        reports.push(report);
                    }
                    Err(e) if a.target.repo.is_none() => {
                        // Checking a system's repositories: one unreachable copy must not hide the others.
                        eprintln!("error: {e}");
                        if exit == Exit::Ok {
                            exit = Exit::of(&e);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if json {
                print_json(&reports);
            }
            if exit == Exit::Integrity && !json {
                eprintln!(
                    "error: integrity problems found; restore the damaged data from another copy and re-run the check"
                );
            }
            Ok(exit)
        }
        Command::Forget(a) => {
            let req = ForgetRequest {
                system: a.system.clone(),
                repository: a.repo.clone(),
                prune: a.prune,
            };
            // The plan, with a reason per snapshot, is shown before anything is deleted.
            let plan = engine.forget_plan(&req).await?;
            if a.dry_run {
                if json {
                    print_json(&serde_json::json!({ "repositories": plan }));
                } else {
                    render::forget(&plan);
                }
                return Ok(Exit::Ok);
            }
            if !json {
                render::forget(&plan);
            }
            let (reports, record) = engine.forget_apply(&req, plan).await?;
            if json {
                print_json(&serde_json::json!({ "repositories": reports, "run": record }));
            } else {
                render::forget_done(&reports);
            }
            Ok(Exit::of_run(record.outcome, record.error.as_ref()))
        }
        Command::Copy(a) => {
            let record = engine.copy(&a.system, a.from.as_deref(), &a.to).await?;
            Ok(finish_run(&record, json, || render::copy(&record)))
        }
        Command::Policy(_)
        | Command::Agent(_)
        | Command::Coordinator(_)
        | Command::FleetSim(_)
        | Command::Drill(_)
        | Command::Report(_)
        | Command::Up(_)
        | Command::Demo(_) => Ok(Exit::Ok),
    }
}

/// `lifeboat coordinator [enrol-token | user add | backup-db]`.
async fn coordinator_command(a: &args::CoordinatorArgs, json: bool) -> Exit {
    use crate::coordinator::server;
    if let Some(args::CoordinatorCommand::BackupDb { to }) = &a.command {
        return match backup_db::backup_db(&a.config, to).await {
            Ok(report) => {
                if json {
                    print_json(&report);
                } else {
                    println!("{}", backup_db::render(&report));
                }
                Exit::Ok
            }
            Err(e) => {
                let exit = e.exit();
                report_error(json, e.kind(), &e.to_string(), exit);
                exit
            }
        };
    }
    let result = match &a.command {
        None => server::run(&a.config, Arc::new(SystemClock)).await,
        Some(args::CoordinatorCommand::EnrolToken { host, site, valid }) => {
            server::enrol_token(&a.config, host, site, *valid, &SystemClock)
                .await
                .map(|token| {
                    if json {
                        print_json(
                            &serde_json::json!({ "host": host, "site": site, "token": token }),
                        );
                    } else {
                        println!("{token}");
                    }
                    Exit::Ok
                })
        }
        Some(args::CoordinatorCommand::User(args::UserCommand::Add { name, role })) => {
            let role = user_role(*role);
            let added = match read_password_line() {
                Ok(password) => {
                    server::add_user(&a.config, name, role, password, &SystemClock).await
                }
                Err(e) => Err(e),
            };
            added.map(|()| {
                if json {
                    print_json(&serde_json::json!({ "user": name, "role": role.as_str() }));
                } else {
                    println!("user {name} created ({})", role.as_str());
                }
                Exit::Ok
            })
        }
        Some(args::CoordinatorCommand::BackupDb { .. }) => Ok(Exit::Ok),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let exit = e.exit();
            report_error(json, e.kind(), &e.to_string(), exit);
            exit
        }
    }
}

fn user_role(role: args::UserRole) -> Role {
    match role {
        args::UserRole::Viewer => Role::Viewer,
        args::UserRole::Operator => Role::Operator,
        args::UserRole::Admin => Role::Admin,
    }
}

/// The first line of standard input, without its line ending: a password piped in.
fn read_password_line() -> Result<Secret, CoordinatorError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|source| CoordinatorError::Io {
            context: "cannot read the password from standard input".into(),
            source,
        })?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(CoordinatorError::Usage(
            "no password on standard input: pipe it in as the first line".into(),
        ));
    }
    Ok(Secret::new(password))
}

/// `lifeboat fleet-sim [policy]`.
async fn fleet_sim_command(a: &args::FleetSimArgs, json: bool) -> Exit {
    use crate::sim;
    if let Some(args::FleetSimCommand::Policy {
        agents,
        systems_per_agent,
        out,
    }) = &a.command
    {
        for (name, text) in sim::policy::files(*agents, *systems_per_agent) {
            let path = out.join(name);
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, text));
            if let Err(e) = written {
                report_error(
                    json,
                    "io",
                    &format!("cannot write {}: {e}", path.display()),
                    Exit::Failure,
                );
                return Exit::Failure;
            }
        }
        if !json {
            println!(
                "wrote a policy of {agents} hosts x {systems_per_agent} systems to {}",
                out.display()
            );
        }
        return Exit::Ok;
    }
    let config = sim::SimConfig {
        coordinator: a.coordinator.clone(),
        coordinator_config: a.config.clone(),
        agents: a.agents,
        systems_per_agent: a.systems_per_agent,
        duration: a.duration,
        concurrency: a.concurrency,
        heartbeat_every: a.heartbeat_every,
        run_every: a.run_every,
        coordinator_pid: a.coordinator_pid,
    };
    match sim::run(&config).await {
        Ok(report) => {
            if json {
                print_json(&report);
            } else {
                print!("{report}");
            }
            if report.errors > 0 {
                Exit::Partial
            } else {
                Exit::Ok
            }
        }
        Err(e) => {
            let exit = match e {
                sim::SimError::Usage(_) => Exit::Usage,
                sim::SimError::Config(_) => Exit::Policy,
                sim::SimError::Store(ref s) if s.is_unavailable() => Exit::Unreachable,
                sim::SimError::NoAgent(_) => Exit::Unreachable,
                _ => Exit::Failure,
            };
            report_error(json, "fleet-sim", &e.to_string(), exit);
            exit
        }
    }
}

/// `lifeboat agent [status]`.
async fn agent_command(a: &args::AgentArgs, json: bool) -> Exit {
    let result = match a.command {
        None => crate::agent::run(&a.config, Arc::new(SystemClock)).await,
        Some(args::AgentCommand::Status) => {
            crate::agent::status(&a.config, &SystemClock, json).await
        }
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let exit = e.exit();
            report_error(json, e.kind(), &e.to_string(), exit);
            exit
        }
    }
}

/// Prints a run record (the engine has journalled it) and returns its exit code.
fn finish_run(record: &RunRecord, json: bool, text: impl FnOnce()) -> Exit {
    if json {
        print_json(record);
    } else {
        text();
    }
    let exit = Exit::of_run(record.outcome, record.error.as_ref());
    if exit != Exit::Ok {
        let msg = record
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .or_else(|| {
                record.repositories.iter().find_map(|r| {
                    r.error
                        .as_ref()
                        .map(|e| format!("{}: {}", r.repository, e.message))
                })
            })
            .unwrap_or_else(|| "the run did not complete".into());
        eprintln!("error: {msg}");
    }
    exit
}

fn policy_command(cmd: &PolicyCommand, default_dir: &Path, json: bool) -> Result<Exit, Failure> {
    match cmd {
        PolicyCommand::Check { dir } => {
            let dir = dir.as_deref().unwrap_or(default_dir);
            let policy = load_policy(dir)?;
            if json {
                print_json(&serde_json::json!({
                    "ok": true,
                    "digest": policy.digest,
                    "tiers": policy.tiers.len(),
                    "sites": policy.sites.len(),
                    "repositories": policy.repositories.len(),
                    "systems": policy.systems.len(),
                }));
            } else {
                println!(
                    "policy OK: {} tiers, {} sites, {} repositories, {} systems (digest {})",
                    policy.tiers.len(),
                    policy.sites.len(),
                    policy.repositories.len(),
                    policy.systems.len(),
                    &policy.digest[..12.min(policy.digest.len())]
                );
            }
            Ok(Exit::Ok)
        }
        PolicyCommand::Show { dir } => {
            let dir = dir.as_deref().unwrap_or(default_dir);
            let policy = load_policy(dir)?;
            if json {
                print_json(&policy);
            } else {
                print!("{}", policy.render_text());
            }
            Ok(Exit::Ok)
        }
    }
}
