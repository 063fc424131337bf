//! The one-command experience: `lifeboat up` runs the coordinator and one agent per host of the
//! example bank in one process, on local directories under one work directory; `lifeboat demo`
//! also fills the branches with department data, backs them up and copies them off-site (two
//! rounds), runs the Linfen site-loss drill at the standby site, writes the drill report and the
//! quarterly report (rendered by `report::quarterly` from the coordinator's store, as `lifeboat
//! report` does) and prints a summary.
//!
//! Modules: [`embedded`] (the example policy in the binary), [`rewrite`] (pure: the policy made
//! local), [`data`] (deterministic department data), [`setup`] (the directory, idempotent),
//! [`fleet`] (coordinator and agents as tasks), [`jobs`] (a host's jobs run as its agent runs
//! them), [`api`] (the demo at the HTTP API).
//!
//! Must not: touch anything outside its directory (but the listen port), overwrite a policy or
//! a secret that exists, print or log a secret other than the admin password it generated
//! (printed once, at creation), or decide anything a drill or an assessment decides: those
//! are the coordinator's, reached through its API.

pub mod api;
pub mod data;
pub mod embedded;
pub mod fleet;
pub mod jobs;
pub mod rewrite;
pub mod setup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::coordinator::server::CoordinatorError;
use crate::drill::record::DrillRecord;
use crate::exit::Exit;
use crate::run::{RunKind, RunRecord};
use fleet::Fleet;
use rewrite::Layout;

/// Why `up` or `demo` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Rewrite(rewrite::RewriteError),
    #[error(
        "the policy in the work directory is invalid (fix it, or move the directory aside to start afresh):\n{0}"
    )]
    Policy(crate::policy::PolicyReport),
    #[error("{0}")]
    Config(String),
    #[error("coordinator: {0}")]
    Coordinator(CoordinatorError),
    #[error("{0}")]
    Engine(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("{0} stopped")]
    Stopped(String),
    #[error("stopped by Ctrl-C (SIGINT or SIGTERM) before the fleet had started")]
    Interrupted,
    #[error("another `lifeboat up` or `lifeboat demo` is running on {0}; stop it first (Ctrl-C)")]
    Busy(PathBuf),
    #[error("{0}")]
    Failed(String),
}

impl DemoError {
    pub fn exit(&self) -> Exit {
        match self {
            DemoError::Policy(_) | DemoError::Config(_) | DemoError::Rewrite(_) => Exit::Policy,
            DemoError::Coordinator(e) => e.exit(),
            DemoError::Busy(_) => Exit::Refused,
            _ => Exit::Failure,
        }
    }
}

/// What both commands take.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub listen: SocketAddr,
}

/// Progress lines on stderr.
fn say(line: &str) {
    eprintln!("lifeboat: {line}");
}

/// Stage headers on stderr, with the time since the start.
fn stage(started: Instant, line: &str) {
    eprintln!("\n[{:>5.1}s] == {line}", started.elapsed().as_secs_f64());
}

fn print_login(o: &Options, layout: &Layout, p: &setup::Prepared) {
    println!("Dashboard:   http://{}/ui/", o.listen);
    println!(
        "API:         http://{}/api/v1/  (OpenAPI: /api/v1/openapi.json)",
        o.listen
    );
    println!("Login:       {}", setup::ADMIN);
    if p.admin_created {
        println!(
            "Password:    {}   (shown once; also in {}, mode 0600)",
            p.admin_password.expose(),
            layout.admin_password().display()
        );
    } else {
        println!("Password:    in {}", layout.admin_password().display());
    }
    println!(
        "Drills etc.: lifeboat drill list --config {}",
        layout.coordinator_config().display()
    );
}

/// `lifeboat up`: prepares the directory, runs the fleet until Ctrl-C.
pub async fn up(o: &Options, clock: Arc<dyn Clock>) -> Result<Exit, DemoError> {
    let layout = Layout::new(setup::root(&o.dir)?);
    let _lock = setup::lock(&layout)?;
    let started = Instant::now();
    stage(started, &format!("preparing {}", layout.root.display()));
    let prepared = setup::prepare(&layout, o.listen, clock.clone(), &say).await?;
    stage(
        started,
        &format!(
            "starting the coordinator on {} and {} agents ({})",
            o.listen,
            prepared.hosts.len(),
            prepared
                .hosts
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let fleet = match Fleet::start(&layout, o.listen, prepared.hosts.keys().cloned(), clock).await {
        Ok(fleet) => fleet,
        // Ctrl-C while starting is a normal way to stop `up`.
        Err(DemoError::Interrupted) => {
            say("stopped");
            return Ok(Exit::Ok);
        }
        Err(e) => return Err(e),
    };
    print_login(o, &layout, &prepared);
    println!("Data:        {}", layout.root.display());
    println!("Running; Ctrl-C stops everything.");
    fleet.wait().await?;
    say("stopped");
    Ok(Exit::Ok)
}

/// `lifeboat demo`.
pub async fn demo(
    o: &Options,
    keep_running: bool,
    clock: Arc<dyn Clock>,
) -> Result<Exit, DemoError> {
    let layout = Layout::new(setup::root(&o.dir)?);
    let _lock = setup::lock(&layout)?;
    let started = Instant::now();
    stage(started, &format!("1/7 preparing {}", layout.root.display()));
    let prepared = setup::prepare(&layout, o.listen, clock.clone(), &say).await?;
    let policy = prepared.policy.clone();

    stage(
        started,
        "2/7 department data (ledgers, loan files, scans, office documents)",
    );
    let mut written = 0;
    for s in policy.systems.values() {
        written += data::write(&data::files(s.id.as_str(), &s.department, &s.paths, 1)).map_err(
            |source| DemoError::Io {
                context: format!("cannot write the data of {}", s.id),
                source,
            },
        )?;
    }
    say(&format!(
        "{} of data for {} systems under {}",
        bytesize::ByteSize(written),
        policy.systems.len(),
        layout.root.join("sources").display()
    ));

    stage(
        started,
        "3/7 backups and off-site copies, round 1 (each host's jobs as its agent runs them)",
    );
    let mut records = round(&layout, &policy, &prepared, clock.clone()).await?;
    stage(
        started,
        "4/7 a day later: ledgers grow, new scans; round 2 (incremental, deduplicated)",
    );
    for s in policy.systems.values() {
        data::write(&data::files(s.id.as_str(), &s.department, &s.paths, 2)).map_err(|source| {
            DemoError::Io {
                context: format!("cannot write the data of {}", s.id),
                source,
            }
        })?;
    }
    records.extend(round(&layout, &policy, &prepared, clock.clone()).await?);
    let failed: Vec<String> = records
        .iter()
        .filter(|r| r.outcome != crate::run::Outcome::Success)
        .map(|r| {
            format!(
                "{} {:?}: {}",
                r.system.as_deref().unwrap_or("?"),
                r.kind,
                r.error.as_ref().map_or("", |e| e.message.as_str())
            )
        })
        .collect();
    if !failed.is_empty() {
        return Err(DemoError::Failed(format!(
            "some jobs did not succeed:\n  {}",
            failed.join("\n  ")
        )));
    }

    stage(
        started,
        &format!(
            "5/7 the fleet: coordinator on {} and {} agents; they deliver the run records",
            o.listen,
            prepared.hosts.len()
        ),
    );
    let fleet = Fleet::start(
        &layout,
        o.listen,
        prepared.hosts.keys().cloned(),
        clock.clone(),
    )
    .await?;
    let outcome = drill_and_report(
        o,
        &layout,
        &prepared,
        &records,
        &fleet,
        started,
        clock.as_ref(),
    )
    .await;
    match outcome {
        Ok(summary) => {
            println!("{summary}");
            print_login(o, &layout, &prepared);
            if keep_running {
                println!("Running; Ctrl-C stops everything.");
                fleet.wait().await?;
            } else {
                say("stopping the fleet");
                fleet.stop().await?;
            }
            stage(started, "done");
            Ok(Exit::Ok)
        }
        Err(e) => {
            let _ = fleet.stop().await;
            Err(e)
        }
    }
}

/// Backup then copy of every system, host by host, two hosts at a time.
async fn round(
    layout: &Layout,
    policy: &Arc<crate::policy::Policy>,
    prepared: &setup::Prepared,
    clock: Arc<dyn Clock>,
) -> Result<Vec<RunRecord>, DemoError> {
    use futures::StreamExt;
    let hosts: Vec<String> = prepared
        .hosts
        .keys()
        .filter(|h| policy.systems.values().any(|s| &s.host == *h))
        .cloned()
        .collect();
    let results: Vec<Result<Vec<RunRecord>, DemoError>> = futures::stream::iter(hosts)
        .map(|host| {
            let (policy, clock) = (policy.clone(), clock.clone());
            async move {
                let t = Instant::now();
                let r = jobs::backup_and_copy(layout, policy, &host, clock).await;
                if let Ok(records) = &r {
                    say(&format!(
                        "{host}: {} runs in {:.1}s",
                        records.len(),
                        t.elapsed().as_secs_f64()
                    ));
                }
                r
            }
        })
        .buffer_unordered(2)
        .collect()
        .await;
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

const PLAN: &str = "linfen-site-loss";

async fn drill_and_report(
    o: &Options,
    layout: &Layout,
    prepared: &setup::Prepared,
    records: &[RunRecord],
    fleet: &Fleet,
    started: Instant,
    clock: &dyn Clock,
) -> Result<String, DemoError> {
    let api = api::Api::login(o.listen, setup::ADMIN, &prepared.admin_password).await?;
    // Every system's copies reached the coordinator (through its host's agent).
    let deadline = Instant::now() + Duration::from_secs(90);
    for s in prepared.policy.systems.keys() {
        while api.runs(s.as_str(), "copy").await? == 0 {
            if let Some(problem) = fleet.failed() {
                return Err(DemoError::Stopped(problem));
            }
            if Instant::now() > deadline {
                return Err(DemoError::Stopped(format!(
                    "no copy of {s} reached the coordinator within 90 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    say("the coordinator holds every system's backups and copies");

    stage(
        started,
        "6/7 drill: Linfen branch lost, restored at the Datong DR centre from off-site copies only",
    );
    let id = api.start_drill(PLAN).await?;
    say(&format!("drill {id} started (plan {PLAN})"));
    let record = api
        .follow_drill(&id, Duration::from_secs(240), &say)
        .await?;
    say(&format!(
        "drill {id} sealed: {} ({})",
        record.verdict, record.header.status
    ));

    stage(
        started,
        "7/7 reports: the drill report and the quarterly report (English, 中文)",
    );
    let reports = layout.reports();
    std::fs::create_dir_all(&reports).map_err(|source| DemoError::Io {
        context: format!("cannot create {}", reports.display()),
        source,
    })?;
    let html = reports.join(format!("drill-{PLAN}-{id}.html"));
    let json = reports.join(format!("drill-{PLAN}-{id}.json"));
    let write = |path: &PathBuf, body: &[u8]| {
        std::fs::write(path, body).map_err(|source| DemoError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        })
    };
    write(&html, api.drill_report(&id).await?.as_bytes())?;
    let body = serde_json::to_vec_pretty(&record)
        .map_err(|e| DemoError::Failed(format!("cannot encode the drill record: {e}")))?;
    write(&json, &body)?;
    say(&format!("wrote {} and {}", html.display(), json.display()));
    let mut written = vec![html, json];
    // The quarterly report of the quarter so far, from the coordinator's evidence, as
    // `lifeboat report` renders it.
    let database = format!("sqlite://{}", layout.database().display());
    let store = crate::coordinator::store::Store::open(&database)
        .await
        .map_err(|e| DemoError::Failed(format!("cannot open {database}: {e}")))?;
    for lang in [crate::i18n::Lang::En, crate::i18n::Lang::ZhCn] {
        let rendered = crate::report::quarterly::render(
            &store,
            &prepared.policy,
            None,
            lang,
            crate::report::quarterly::Format::Html,
            clock.now(),
        )
        .await;
        match rendered {
            Ok(r) => {
                let path = reports.join(&r.file_name);
                write(&path, &r.bytes)?;
                say(&format!("wrote {}", path.display()));
                written.push(path);
            }
            Err(e) => {
                store.close().await;
                return Err(DemoError::Failed(format!("the quarterly report: {e}")));
            }
        }
    }
    store.close().await;
    Ok(summary(prepared, records, &record, &written))
}

/// The closing summary: pure, from the run records and the sealed drill record.
fn summary(
    prepared: &setup::Prepared,
    records: &[RunRecord],
    drill: &DrillRecord,
    reports: &[PathBuf],
) -> String {
    use std::fmt::Write;
    let backups: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.kind == RunKind::Backup)
        .collect();
    let read: u64 = backups
        .iter()
        .filter_map(|r| r.source.as_ref())
        .map(|s| s.bytes)
        .sum();
    let stored: u64 = backups
        .iter()
        .flat_map(|r| r.repositories.first())
        .map(|r| r.bytes_added)
        .sum();
    let copies = records.iter().filter(|r| r.kind == RunKind::Copy).count();
    let mut s = String::new();
    let _ = writeln!(s, "\n=== lifeboat demo: summary ===");
    let _ = writeln!(
        s,
        "Systems protected: {} on {} hosts ({} backups, {} copy runs to off-site and vault)",
        prepared.policy.systems.len(),
        prepared.hosts.len(),
        backups.len(),
        copies
    );
    let _ = writeln!(
        s,
        "Data read: {} in two rounds; stored in the local repositories: {} (dedup + zstd: {:.1}x)",
        bytesize::ByteSize(read),
        bytesize::ByteSize(stored),
        if stored == 0 {
            0.0
        } else {
            read as f64 / stored as f64
        }
    );
    let _ = writeln!(
        s,
        "Drill {} ({}): {} — {}",
        drill.header.plan, drill.header.drill_id, drill.header.status, drill.verdict
    );
    let secs = |v: Option<i64>| v.map_or_else(|| "—".to_string(), |v| format!("{v}s"));
    for r in &drill.results {
        let from = r.restore_point.as_ref().map_or_else(
            || "nothing".to_string(),
            |p| format!("{} ({})", p.repository, p.location),
        );
        let _ = writeln!(
            s,
            "  {:<20} {:<5} from {:<28} RPO {:>6} (target {}s)  IT RTO {:>6}  business RTO {:>6} (target {}s)  {}",
            r.result.system.as_str(),
            r.result.tier.as_str(),
            from,
            secs(r.result.achieved_rpo_seconds),
            r.result.rpo_target_seconds,
            secs(r.result.it_rto_seconds),
            secs(r.result.business_rto_seconds),
            r.result.business_rto_target_seconds,
            r.result.verdict
        );
    }
    let _ = writeln!(
        s,
        "  (gates were auto-approved by the demo as user `{}` through the drills API)",
        setup::ADMIN
    );
    let _ = writeln!(s, "Reports:");
    for r in reports {
        let _ = writeln!(s, "  {}", r.display());
    }
    s
}
