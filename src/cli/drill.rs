//! `lifeboat drill …`: disaster-recovery drills from the coordinator's host. Acts on the
//! coordinator's database and policy directly through `--config coordinator.toml` (as
//! `lifeboat coordinator enrol-token` does): whoever runs it holds the coordinator's host and its
//! database, so acts as an admin, audited as `cli:<login>`.
//!
//! It previews plans (`crate::drill::build::preview`), asks for drills (a `scheduled` row the
//! orchestrator picks up), follows them, appends approvals and aborts to the drill's input queue
//! (the orchestrator applies them; nothing here advances a drill), exports sealed records and
//! bundles, verifies the hash chain and shows the drill calendar. It must not decide anything a
//! drill decides (that is `crate::drill`), write SQL (that is the store) or print a secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::args::{DrillArgs, DrillCommand, DrillStatusArg, RecordFormat};
use super::render::bytes;
use super::{print_json, report_error};
use crate::assess::Human;
use crate::clock::{Clock, SystemClock};
use crate::coordinator::config::CoordinatorConfig;
use crate::coordinator::drills::{
    ABORT_INPUT, APPROVE_INPUT, AbortDetail, ApproveDetail, RequestError, request_drill,
    runs_in_scope,
};
use crate::coordinator::store::{
    DrillFilter, DrillSeal, DrillStatus, GENESIS_HASH, NewAuditEntry, Store, StoreError,
    StoredDrill,
};
use crate::drill::build::{self, Preview};
use crate::drill::calendar::{self, DrillHistoryItem};
use crate::drill::machine::{DrillRun, Phase, SlotState, StepState, SystemStage, TaskSlot};
use crate::drill::measure::Verdict;
use crate::drill::record::{DrillEnd, DrillRecord};
use crate::exit::Exit;
use crate::policy::{self, DrillPlan, GateRole, Policy};

/// Why a drill command could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DrillCliError {
    #[error("{0}")]
    Config(crate::policy::Problem),
    #[error("the policy is invalid:\n{0}")]
    Policy(crate::policy::PolicyReport),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Integrity(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Pdf(#[from] crate::report::pdf::PdfError),
}

impl DrillCliError {
    pub fn exit(&self) -> Exit {
        match self {
            DrillCliError::Config(_) | DrillCliError::Policy(_) => Exit::Policy,
            DrillCliError::Store(e) if e.is_unavailable() => Exit::Unreachable,
            DrillCliError::Store(_) | DrillCliError::Io { .. } | DrillCliError::Pdf(_) => {
                Exit::Failure
            }
            DrillCliError::NotFound(_) => Exit::NotFound,
            DrillCliError::Refused(_) => Exit::Refused,
            DrillCliError::Usage(_) => Exit::Usage,
            DrillCliError::Integrity(_) => Exit::Integrity,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DrillCliError::Config(_) => "config",
            DrillCliError::Policy(_) => "policy",
            DrillCliError::Store(_) => "store",
            DrillCliError::NotFound(_) => "not-found",
            DrillCliError::Refused(_) => "refused",
            DrillCliError::Usage(_) => "usage",
            DrillCliError::Integrity(_) => "integrity",
            DrillCliError::Io { .. } => "io",
            DrillCliError::Pdf(_) => "pdf",
        }
    }
}

type Result<T, E = DrillCliError> = std::result::Result<T, E>;

/// Runs `lifeboat drill …` and returns its exit code.
pub async fn run(a: &DrillArgs, json: bool) -> Exit {
    let cfg = match CoordinatorConfig::load(&a.config) {
        Ok(cfg) => cfg,
        Err(p) => return fail(json, &DrillCliError::Config(p)),
    };
    let store = match Store::open(&cfg.database).await {
        Ok(s) => s,
        Err(e) => return fail(json, &DrillCliError::Store(e)),
    };
    let ctx = Ctx {
        policy_dir: cfg.policy_dir.clone(),
        store,
        clock: SystemClock,
        json,
    };
    let done = command(&ctx, &a.command).await;
    ctx.store.close().await;
    match done {
        Ok(exit) => exit,
        Err(e) => fail(json, &e),
    }
}

fn fail(json: bool, e: &DrillCliError) -> Exit {
    let exit = e.exit();
    report_error(json, e.kind(), &e.to_string(), exit);
    exit
}

/// What every drill command works with.
struct Ctx {
    policy_dir: PathBuf,
    store: Store,
    clock: SystemClock,
    json: bool,
}

impl Ctx {
    /// The policy in the coordinator's `policy-dir` (read only by the commands that need it, so
    /// that a broken policy does not hide the drill records).
    fn policy(&self) -> Result<Policy> {
        policy::load_dir(&self.policy_dir).map_err(DrillCliError::Policy)
    }

    async fn audit(&self, action: &str, drill: Uuid, detail: Value) -> Result<()> {
        self.store
            .append_audit(&NewAuditEntry {
                at: self.clock.now(),
                actor: actor(),
                action: action.into(),
                target: format!("drill:{drill}"),
                detail,
            })
            .await?;
        Ok(())
    }
}

/// The audit actor of this command line: `cli:<login>`.
fn actor() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

async fn command(ctx: &Ctx, cmd: &DrillCommand) -> Result<Exit> {
    match cmd {
        DrillCommand::Plan { name, at } => plan(ctx, name, *at).await,
        DrillCommand::Run {
            name,
            at,
            disaster_at,
            wait,
        } => start(ctx, name, *at, *disaster_at, *wait).await,
        DrillCommand::List {
            plan,
            status,
            limit,
        } => list(ctx, plan.as_deref(), *status, *limit).await,
        DrillCommand::Show { id } => show(ctx, id).await,
        DrillCommand::Approve { id, step, comment } => approve(ctx, id, step, comment).await,
        DrillCommand::Abort { id, reason } => abort(ctx, id, reason).await,
        DrillCommand::Record {
            id,
            out,
            format,
            lang,
        } => export_record(ctx, id, out.as_deref(), *format, *lang).await,
        DrillCommand::Bundle { id, out } => export_bundle(ctx, id, out).await,
        DrillCommand::VerifyChain => verify_chain(ctx).await,
        DrillCommand::Calendar => show_calendar(ctx).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Finding things

fn find_plan<'p>(policy: &'p Policy, name: &str, dir: &Path) -> Result<&'p DrillPlan> {
    policy
        .drills
        .iter()
        .find(|(id, _)| id.as_str() == name)
        .map(|(_, p)| p)
        .ok_or_else(|| {
            let known: Vec<&str> = policy.drills.keys().map(|k| k.as_str()).collect();
            DrillCliError::NotFound(format!(
                "no drill plan {name} in the policy at {}; plans: {}",
                dir.display(),
                if known.is_empty() {
                    "none (add one under drills/)".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// The drill `text` names: a full id, or a unique prefix of one (as `list` prints them).
async fn find_drill(store: &Store, text: &str) -> Result<StoredDrill> {
    if let Ok(id) = Uuid::parse_str(text) {
        return store
            .get_drill(id)
            .await?
            .ok_or_else(|| DrillCliError::NotFound(format!("no drill {id}")));
    }
    let prefix = text.to_ascii_lowercase();
    if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(DrillCliError::Usage(format!(
            "{text:?} is not a drill id (a UUID, or at least its first 4 characters)"
        )));
    }
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_drills(&DrillFilter::default(), after, 500)
            .await?;
        let n = page.len();
        after = page.last().map(|d| d.id);
        found.extend(
            page.into_iter()
                .filter(|d| d.id.to_string().starts_with(&prefix)),
        );
        if n < 500 || found.len() > 1 {
            break;
        }
    }
    match found.len() {
        0 => Err(DrillCliError::NotFound(format!(
            "no drill id starts with {text}"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(DrillCliError::Usage(format!(
            "{text} names more than one drill ({}, …): give more of the id",
            found
                .iter()
                .map(|d| d.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The drill state machine stored in a started drill's row.
fn run_state(drill: &StoredDrill) -> Option<DrillRun> {
    match drill.status {
        DrillStatus::Scheduled | DrillStatus::Failed => None,
        _ => serde_json::from_value(drill.state.clone()).ok(),
    }
}

fn parse_record(seal: &DrillSeal) -> Option<DrillRecord> {
    serde_json::from_str(&seal.record).ok()
}

// ---------------------------------------------------------------------------------------------
// plan

async fn plan(ctx: &Ctx, name: &str, at: Option<Timestamp>) -> Result<Exit> {
    let policy = ctx.policy()?;
    let plan = find_plan(&policy, name, &ctx.policy_dir)?;
    let runs = runs_in_scope(&ctx.store, &policy, plan).await?;
    let chain = ctx.store.drill_chain().await?;
    let throughput = past_throughput(&chain);
    let now = at.unwrap_or_else(|| ctx.clock.now());
    let preview = build::preview(&policy, plan, &runs, throughput, now);
    if ctx.json {
        print_json(&preview);
    } else {
        print_preview(plan, &preview, at.is_none());
    }
    Ok(Exit::Ok)
}

/// Restore throughput measured by past drills, as the API's preview computes it.
fn past_throughput(chain: &[(Uuid, DrillSeal)]) -> Option<f64> {
    let records: Vec<DrillRecord> = chain.iter().filter_map(|(_, s)| parse_record(s)).collect();
    crate::coordinator::drills_api::past_throughput(&records)
}

fn print_preview(plan: &DrillPlan, p: &Preview, now: bool) {
    let scenario = match (&plan.scenario.lost_site, &plan.scenario.system) {
        (Some(site), _) => format!("{} of {site}", plan.scenario.kind),
        (None, Some(system)) => format!("{} of {system}", plan.scenario.kind),
        (None, None) => plan.scenario.kind.to_string(),
    };
    println!(
        "Drill plan {}: {} ({}, {scenario})",
        plan.id, plan.title, plan.drill_type
    );
    println!(
        "If it started {} ({}), standby host {} at {} would restore, in this order:",
        if now { "now" } else { "at" },
        when(p.at),
        plan.standby.host,
        plan.standby.site
    );
    if p.systems.is_empty() {
        println!("  (no system in scope is restored)");
    }
    for (i, s) in p.systems.iter().enumerate() {
        let after = if s.prerequisites.is_empty() {
            String::new()
        } else {
            format!(
                "  after {}",
                s.prerequisites
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        println!("{:>3}. {}  tier {}{after}", i + 1, s.system, s.tier);
        match &s.selection.chosen {
            Some(c) => {
                let estimate = s.estimated_seconds.map_or_else(
                    || "restore time unknown (no past drill measured a throughput)".to_string(),
                    |e| format!("about {} to restore", secs(e)),
                );
                println!(
                    "     snapshot {} at {} ({}{}), captured {}, available there {}",
                    short(&c.snapshot),
                    c.repository,
                    c.location,
                    if c.immutable { ", immutable" } else { "" },
                    when(c.t_cap),
                    when(c.t_avail)
                );
                println!(
                    "     {}, {estimate}",
                    c.bytes
                        .map_or_else(|| "size not recorded".to_string(), bytes)
                );
            }
            None => {
                println!("     NO RESTORE POINT: the drill would end not-ready");
                for r in &s.selection.reasons {
                    println!("       - {r}");
                }
            }
        }
        for o in &s.selection.passed_over {
            println!(
                "     passed over {}{}{}: {}",
                short(&o.snapshot),
                o.repository
                    .as_ref()
                    .map(|r| format!(" at {r}"))
                    .unwrap_or_default(),
                o.t_cap
                    .map(|t| format!(" (captured {})", when(t)))
                    .unwrap_or_default(),
                o.reason
            );
        }
    }
    if !p.extrapolated.is_empty() {
        println!(
            "Only extrapolated (sample of {} per tier): {}",
            plan.scope.sample_per_tier.unwrap_or(0),
            p.extrapolated
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match (p.estimated_seconds, p.throughput_bytes_per_second) {
        (Some(e), Some(t)) => println!(
            "Estimated restore time: {} one after the other (at {}/s, measured by a past drill)",
            secs(e),
            bytes(t as u64)
        ),
        _ => println!(
            "Estimated restore time: unknown (no past drill measured a restore throughput, or a \
             size is not recorded)"
        ),
    }
    println!("This is a preview: nothing was started or written.");
}

// ---------------------------------------------------------------------------------------------
// run

async fn start(
    ctx: &Ctx,
    name: &str,
    at: Option<Timestamp>,
    disaster_at: Option<Timestamp>,
    wait: bool,
) -> Result<Exit> {
    let policy = ctx.policy()?;
    let plan = find_plan(&policy, name, &ctx.policy_dir)?;
    let now = ctx.clock.now();
    if let Some(t) = at
        && t.duration_until(now) > SignedDuration::from_secs(60)
    {
        return Err(DrillCliError::Usage(format!(
            "--at {} is in the past; leave it out to start the drill now",
            when(t)
        )));
    }
    let id = match request_drill(&ctx.store, &plan.id, &actor(), now, at, disaster_at).await {
        Ok(id) => id,
        Err(e @ RequestError::DisasterAfterStart { .. }) => {
            return Err(DrillCliError::Usage(format!("--disaster-at: {e}")));
        }
        Err(RequestError::Active { id, status, .. }) => {
            return Err(DrillCliError::Refused(format!(
                "drill {id} of plan {name} is {status} already: follow it with `lifeboat drill \
                 show {id}` or end it with `lifeboat drill abort {id}`"
            )));
        }
        Err(RequestError::Store(e)) => return Err(e.into()),
    };
    ctx.audit(
        "drill.start",
        id,
        json!({ "plan": name, "scheduled_for": at, "disaster_at": disaster_at }),
    )
    .await?;
    if !wait {
        if ctx.json {
            print_json(
                &json!({ "id": id, "plan": name, "status": "scheduled", "scheduled_for": at }),
            );
        } else {
            println!("{id}");
            eprintln!(
                "drill {id} of plan {name} scheduled{}; the coordinator starts it (follow it with \
                 `lifeboat drill show {id}`)",
                at.map(|t| format!(" for {}", when(t))).unwrap_or_default()
            );
        }
        return Ok(Exit::Ok);
    }
    if !ctx.json {
        println!("{id}");
    }
    follow(ctx, id).await
}

/// Follows drill `id` until it has ended and its record is sealed, printing phase changes and
/// new log lines; the exit code comes from the sealed record.
async fn follow(ctx: &Ctx, id: Uuid) -> Result<Exit> {
    let started = ctx.clock.now();
    let mut last_phase: Option<String> = None;
    let mut lines = 0usize;
    let mut hinted = false;
    loop {
        let drill = ctx
            .store
            .get_drill(id)
            .await?
            .ok_or_else(|| DrillCliError::NotFound(format!("drill {id} disappeared")))?;
        let phase = match run_state(&drill) {
            Some(run) => {
                if !ctx.json {
                    for l in run.log.iter().skip(lines) {
                        println!("  {}", log_line(l));
                    }
                }
                lines = lines.max(run.log.len());
                phase_name(run.phase).to_string()
            }
            None => drill.status.as_str().to_string(),
        };
        if last_phase.as_deref() != Some(&phase) {
            if !ctx.json {
                println!("{} phase {phase}", when(ctx.clock.now()));
            }
            last_phase = Some(phase);
        }
        if drill.status == DrillStatus::Failed {
            let why = state_error(&drill.state);
            if ctx.json {
                print_json(&json!({ "id": id, "status": "failed", "error": why }));
            }
            eprintln!("error: drill {id} could not be carried out: {why}");
            return Ok(Exit::Failure);
        }
        if let Some(seal) = &drill.seal {
            return Ok(finished(ctx, &drill, seal));
        }
        if drill.status == DrillStatus::Scheduled
            && !hinted
            && started.duration_until(ctx.clock.now()) > SignedDuration::from_secs(30)
            && drill.scheduled_for.is_none_or(|t| t <= ctx.clock.now())
        {
            eprintln!(
                "note: drill {id} has not started after 30 s: is the coordinator running (it \
                 orchestrates drills)?"
            );
            hinted = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The exit code of a sealed drill: 0 pass, 8 pass with conditions, 1 otherwise.
fn finished(ctx: &Ctx, drill: &StoredDrill, seal: &DrillSeal) -> Exit {
    let Some(rec) = parse_record(seal) else {
        eprintln!(
            "error: the sealed record of drill {} cannot be read",
            drill.id
        );
        return Exit::Integrity;
    };
    let ended_ok = matches!(rec.header.status, DrillEnd::Completed | DrillEnd::Stopped);
    let exit = match (ended_ok, rec.verdict) {
        (true, Verdict::Pass) => Exit::Ok,
        (true, Verdict::PassWithConditions) => Exit::Partial,
        _ => Exit::Failure,
    };
    if ctx.json {
        print_json(&json!({
            "id": drill.id,
            "status": drill.status.as_str(),
            "ending": rec.header.status,
            "verdict": rec.verdict,
            "record_hash": seal.record_hash,
            "exit_code": exit.code(),
        }));
    } else {
        println!(
            "drill {} {}: verdict {} (record {} sealed at chain position {})",
            drill.id, rec.header.status, rec.verdict, seal.record_hash, seal.link.seq
        );
    }
    exit
}

// ---------------------------------------------------------------------------------------------
// list and show

/// One line of `drill list`.
#[derive(Debug, Serialize)]
struct Summary {
    id: Uuid,
    plan: String,
    status: &'static str,
    created_by: String,
    created_at: Timestamp,
    scheduled_for: Option<Timestamp>,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    /// Of a running drill.
    phase: Option<Phase>,
    /// Of a sealed drill.
    verdict: Option<Verdict>,
    record_hash: Option<String>,
}

impl Summary {
    fn of(d: &StoredDrill) -> Self {
        let run = run_state(d);
        Summary {
            id: d.id,
            plan: d.plan.to_string(),
            status: d.status.as_str(),
            created_by: d.created_by.clone(),
            created_at: d.created_at,
            scheduled_for: d.scheduled_for,
            started_at: d.started_at,
            finished_at: d.finished_at,
            phase: run.map(|r| r.phase),
            verdict: d.seal.as_ref().and_then(parse_record).map(|r| r.verdict),
            record_hash: d.seal.as_ref().map(|s| s.record_hash.clone()),
        }
    }
}

async fn list(
    ctx: &Ctx,
    plan: Option<&str>,
    status: Option<DrillStatusArg>,
    limit: u32,
) -> Result<Exit> {
    let plan = plan
        .map(|p| {
            p.parse()
                .map_err(|e| DrillCliError::Usage(format!("--plan {p:?}: {e}")))
        })
        .transpose()?;
    let filter = DrillFilter {
        plan,
        status: status.map(status_of),
    };
    let drills = ctx.store.list_drills(&filter, None, limit).await?;
    let rows: Vec<Summary> = drills.iter().map(Summary::of).collect();
    if ctx.json {
        print_json(&rows);
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        println!("no drill yet (start one with `lifeboat drill run PLAN`)");
        return Ok(Exit::Ok);
    }
    println!(
        "{:<36}  {:<28}  {:<10}  {:<20}  {:<20}  VERDICT",
        "ID", "PLAN", "STATUS", "CREATED", "BY"
    );
    for r in rows {
        let verdict = match (r.verdict, r.phase) {
            (Some(v), _) => v.to_string(),
            (None, Some(p)) if r.status == "running" => format!("({})", phase_name(p)),
            _ => "-".into(),
        };
        println!(
            "{:<36}  {:<28}  {:<10}  {:<20}  {:<20}  {verdict}",
            r.id,
            r.plan,
            r.status,
            when(r.created_at),
            r.created_by
        );
    }
    Ok(Exit::Ok)
}

async fn show(ctx: &Ctx, id: &str) -> Result<Exit> {
    let drill = find_drill(&ctx.store, id).await?;
    let run = run_state(&drill);
    let rec = drill.seal.as_ref().and_then(parse_record);
    // Approvals and aborts asked for that the orchestrator has not applied yet.
    let pending = if drill.status.is_active() {
        let applied = run.as_ref().map_or(0, |r| r.inputs_applied);
        ctx.store
            .drill_inputs_after(Some(drill.id), applied, 100)
            .await?
            .into_iter()
            .filter(|i| i.kind != crate::coordinator::store::REPORT_INPUT)
            .collect()
    } else {
        Vec::new()
    };
    if ctx.json {
        let pending: Vec<Value> = pending
            .iter()
            .map(|i| json!({ "id": i.id, "kind": i.kind, "actor": i.actor, "at": i.at, "detail": i.detail }))
            .collect();
        print_json(&json!({
            "drill": Summary::of(&drill),
            "version": drill.version,
            "pending_inputs": pending,
            "state": drill.state,
            "seal": drill.seal.as_ref().map(|s| json!({
                "seq": s.link.seq,
                "previous_hash": s.link.previous_hash,
                "record_hash": s.record_hash,
            })),
            "verdict": rec.as_ref().map(|r| r.verdict),
        }));
        return Ok(Exit::Ok);
    }
    println!(
        "drill {}  plan {}  status {}",
        drill.id,
        drill.plan,
        drill.status.as_str()
    );
    println!(
        "  requested by {} at {}{}",
        drill.created_by,
        when(drill.created_at),
        drill
            .scheduled_for
            .map(|t| format!(", to start at {}", when(t)))
            .unwrap_or_default()
    );
    match (&run, drill.status) {
        (_, DrillStatus::Scheduled) => {
            println!("  not started yet: the coordinator's drill orchestrator starts it")
        }
        (_, DrillStatus::Failed) => {
            println!("  could not be carried out: {}", state_error(&drill.state))
        }
        (Some(run), _) => print_run(run),
        (None, _) => println!("  its stored state cannot be read"),
    }
    if !pending.is_empty() {
        println!("Asked for, to be applied at the coordinator's next tick:");
        for i in &pending {
            let what = i
                .detail
                .get("step")
                .and_then(Value::as_str)
                .map(|s| format!(" of gate {s}"))
                .unwrap_or_default();
            let why = i
                .detail
                .get("reason")
                .or_else(|| i.detail.get("comment"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            println!(
                "  {}{what} by {} at {}{}",
                i.kind,
                i.actor,
                when(i.at),
                sentence(why)
            );
        }
    }
    if let (Some(seal), Some(rec)) = (&drill.seal, &rec) {
        println!(
            "Record: {} with verdict {} (export with `lifeboat drill record {}`)",
            rec.header.status, rec.verdict, drill.id
        );
        for r in &rec.results {
            println!(
                "  {:<24} {:<22} RPO {}  IT RTO {}  business RTO {}",
                r.result.system.as_str(),
                r.result.verdict.to_string(),
                opt_secs(r.result.achieved_rpo_seconds),
                opt_secs(r.result.it_rto_seconds),
                opt_secs(r.result.business_rto_seconds)
            );
        }
        for f in &rec.findings {
            println!(
                "  finding ({}, {}): {}",
                kebab(&f.category),
                kebab(&f.severity),
                f.text
            );
        }
        println!("  record hash   {}", seal.record_hash);
        println!(
            "  previous hash {} (chain position {})",
            seal.link.previous_hash, seal.link.seq
        );
        if let Some(b) = &rec.bundle_sha256 {
            println!("  bundle sha256 {b}");
        }
    } else if drill.seal.is_some() {
        println!("Record: sealed, but its text cannot be read (run `lifeboat drill verify-chain`)");
    }
    Ok(Exit::Ok)
}

fn print_run(run: &DrillRun) {
    println!(
        "  phase {}{}  T_outage {}  standby host {}",
        phase_name(run.phase),
        run.ending
            .map(|e| format!(" ({})", e.as_str()))
            .unwrap_or_default(),
        when(run.t_outage),
        run.standby_host
    );
    if let Some(t) = run.declared_disaster {
        println!(
            "  T_disaster declared at {}: restore points as they were then, RPO measured from it",
            when(t)
        );
    }
    if let Some(t) = run.ended_at {
        println!(
            "  ended {}{}",
            when(t),
            run.end_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if !run.marks.is_empty() {
        println!("Timeline:");
        println!("  outage           {}", when(run.t_outage));
        for (mark, e) in &run.marks {
            println!(
                "  {:<16} {}  by {} ({})",
                mark.to_string(),
                when(e.at),
                e.recorded_by,
                e.step
            );
        }
    }
    println!("Steps:");
    for (i, s) in run.steps.iter().enumerate() {
        let scope = if s.per_system { "per system" } else { "once" };
        let state = match &s.state {
            StepState::Pending => "pending".to_string(),
            StepState::Running => "running".to_string(),
            StepState::Done => "done".to_string(),
            StepState::Failed { reason } => format!("failed: {reason}"),
            StepState::Skipped { reason } => format!("skipped: {reason}"),
        };
        let waiting = match (s.action, &s.state, run.plan.steps.get(i)) {
            (crate::policy::StepAction::Gate, StepState::Running, Some(p)) => format!(
                " — waiting for approval by {} ({}): `lifeboat drill approve {} {}`",
                p.approver.as_deref().unwrap_or("someone"),
                p.role.unwrap_or(GateRole::Operator),
                run.id,
                s.name
            ),
            _ => String::new(),
        };
        let approved = s
            .approval
            .as_ref()
            .map(|a| format!(" (approved by {} at {})", a.by, when(a.at)))
            .unwrap_or_default();
        println!(
            "  {:<20} {:<9} {:<10} {state}{approved}{waiting}",
            s.name,
            s.action.to_string(),
            scope
        );
    }
    if !run.systems.is_empty() {
        println!("Systems (restore order):");
    }
    for s in &run.systems {
        let stage = match &s.stage {
            SystemStage::Going => "going".to_string(),
            SystemStage::Failed { step, reason, .. } => format!("FAILED at {step}: {reason}"),
            SystemStage::Skipped { reason } => format!("skipped: {reason}"),
        };
        let point = s
            .point
            .as_ref()
            .map(|p| format!("snapshot {} at {}", short(&p.snapshot), p.repository))
            .unwrap_or_else(|| "no restore point".into());
        let tasks: Vec<String> = s
            .tasks
            .iter()
            .map(|(i, t)| {
                let step = run.steps.get(*i).map_or("?", |st| st.name.as_str());
                format!("{step} {}", slot_name(t))
            })
            .collect();
        println!(
            "  {:<24} {:<4} {stage}; {point}{}",
            s.system.as_str(),
            s.tier.as_str(),
            if tasks.is_empty() {
                String::new()
            } else {
                format!("; {}", tasks.join(", "))
            }
        );
    }
    if !run.extrapolated.is_empty() {
        println!(
            "  only extrapolated: {}",
            run.extrapolated
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !run.readiness.is_empty() {
        println!("Readiness:");
        for r in &run.readiness {
            println!(
                "  {} {}{}",
                if r.ok { "ok  " } else { "FAIL" },
                r.subject,
                sentence(&r.detail)
            );
        }
    }
    if !run.deviations.is_empty() {
        println!("Deviations:");
        for d in &run.deviations {
            println!("  - {d}");
        }
    }
    const RECENT: usize = 15;
    if !run.log.is_empty() {
        println!(
            "Log (last {} of {}):",
            RECENT.min(run.log.len()),
            run.log.len()
        );
        for l in run.log.iter().skip(run.log.len().saturating_sub(RECENT)) {
            println!("  {}", log_line(l));
        }
    }
}

fn slot_name(t: &TaskSlot) -> &'static str {
    match t.state {
        SlotState::Open => "open",
        SlotState::Succeeded { .. } => "succeeded",
        SlotState::Failed { .. } => "failed",
    }
}

fn log_line(l: &crate::drill::machine::LogEntry) -> String {
    format!(
        "{}  {}{}  {}{}",
        when(l.at),
        l.step,
        l.system
            .as_ref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default(),
        l.event,
        sentence(&l.detail)
    )
}

// ---------------------------------------------------------------------------------------------
// approve and abort

async fn approve(ctx: &Ctx, id: &str, step: &str, comment: &str) -> Result<Exit> {
    let drill = find_drill(&ctx.store, id).await?;
    let Some(run) = run_state(&drill).filter(|_| drill.status == DrillStatus::Running) else {
        return Err(DrillCliError::Refused(format!(
            "drill {} is {}: only a running drill's gate can be approved",
            drill.id,
            drill.status.as_str()
        )));
    };
    let who = actor();
    let now = ctx.clock.now();
    // The drill's own rules decide whether the gate is waiting; the orchestrator applies the
    // approval itself (and checks again) at its next tick.
    let mut probe = run.clone();
    if let Err(e) = probe.approve(step, &who, GateRole::Admin, comment, now) {
        use crate::drill::machine::ApproveError as A;
        let message = format!("drill {}: {e}", drill.id);
        return Err(match e {
            A::NoSuchStep(_) => DrillCliError::NotFound(message),
            A::NotAGate(_) | A::NotWaiting { .. } | A::RoleTooLow { .. } => {
                DrillCliError::Refused(message)
            }
        });
    }
    let detail = ApproveDetail {
        step: step.to_string(),
        role: GateRole::Admin,
        comment: comment.to_string(),
    };
    let input = ctx
        .store
        .add_drill_input(
            drill.id,
            APPROVE_INPUT,
            &who,
            &serde_json::to_value(&detail).unwrap_or(Value::Null),
            now,
        )
        .await?;
    ctx.audit(
        "drill.approve",
        drill.id,
        json!({ "step": step, "comment": comment, "input": input }),
    )
    .await?;
    if ctx.json {
        print_json(&json!({ "id": drill.id, "step": step, "input": input, "approved_by": who }));
    } else {
        println!(
            "gate {step} of drill {} approved by {who}; the coordinator applies it at its next tick",
            drill.id
        );
    }
    Ok(Exit::Ok)
}

async fn abort(ctx: &Ctx, id: &str, reason: &str) -> Result<Exit> {
    let drill = find_drill(&ctx.store, id).await?;
    if !drill.status.is_active() {
        return Err(DrillCliError::Refused(format!(
            "drill {} has ended already ({})",
            drill.id,
            drill.status.as_str()
        )));
    }
    let who = actor();
    let now = ctx.clock.now();
    // As through the API: the abort goes into the drill's inputs, and the orchestrator applies
    // it (a scheduled drill is started and aborted in the same tick, so it is recorded too).
    // A drill cleaning up has nothing left to abort.
    if let Some(mut copy) = run_state(&drill)
        && copy.abort(&who, reason, now).is_err()
    {
        return Err(DrillCliError::Refused(format!(
            "drill {} is cleaning up after its end already",
            drill.id
        )));
    }
    let detail = AbortDetail {
        reason: reason.to_string(),
    };
    let input = ctx
        .store
        .add_drill_input(
            drill.id,
            ABORT_INPUT,
            &who,
            &serde_json::to_value(&detail).unwrap_or(Value::Null),
            now,
        )
        .await?;
    ctx.audit(
        "drill.abort",
        drill.id,
        json!({ "reason": reason, "input": input }),
    )
    .await?;
    if ctx.json {
        print_json(&json!({ "id": drill.id, "status": "aborting", "input": input }));
    } else {
        println!(
            "drill {} is aborted at the coordinator's next tick{} (open tasks withdrawn, then \
             clean-up and its record)",
            drill.id,
            match (drill.status, drill.scheduled_for) {
                (DrillStatus::Scheduled, Some(t)) if t > now =>
                    format!(", which starts it at {}", when(t)),
                _ => String::new(),
            }
        );
    }
    Ok(Exit::Ok)
}

// ---------------------------------------------------------------------------------------------
// record and bundle

async fn export_record(
    ctx: &Ctx,
    id: &str,
    out: Option<&Path>,
    format: RecordFormat,
    lang: crate::i18n::Lang,
) -> Result<Exit> {
    if format == RecordFormat::Pdf && out.is_none() {
        return Err(DrillCliError::Usage(
            "--format pdf needs --out FILE (a PDF is not written to a terminal)".into(),
        ));
    }
    let drill = find_drill(&ctx.store, id).await?;
    let seal = sealed(&drill)?;
    if format != RecordFormat::Json {
        return export_report(ctx, &drill, seal, out, format, lang).await;
    }
    match out {
        Some(path) => {
            write_file(path, seal.record.as_bytes())?;
            if ctx.json {
                print_json(
                    &json!({ "id": drill.id, "out": path, "record_hash": seal.record_hash }),
                );
            } else {
                println!(
                    "record of drill {} written to {} (record hash {})",
                    drill.id,
                    path.display(),
                    seal.record_hash
                );
            }
        }
        // Exactly the sealed text: what the hash is over.
        None => println!("{}", seal.record),
    }
    Ok(Exit::Ok)
}

/// The drill report rendered from the sealed record, as HTML (to `out` or standard output) or
/// printed to PDF (to `out`).
async fn export_report(
    ctx: &Ctx,
    drill: &StoredDrill,
    seal: &DrillSeal,
    out: Option<&Path>,
    format: RecordFormat,
    lang: crate::i18n::Lang,
) -> Result<Exit> {
    let record = parse_record(seal).ok_or_else(|| {
        DrillCliError::Integrity(format!(
            "the sealed record of drill {} cannot be read as a drill record",
            drill.id
        ))
    })?;
    let html = crate::drill::render::page(&record, lang);
    let content = match format {
        RecordFormat::Pdf => crate::report::pdf::html_to_pdf(&html).await?,
        _ => html.into_bytes(),
    };
    match out {
        Some(path) => {
            write_file(path, &content)?;
            if ctx.json {
                print_json(&json!({
                    "id": drill.id,
                    "out": path,
                    "format": format!("{format:?}").to_lowercase(),
                    "lang": lang,
                    "bytes": content.len(),
                    "record_hash": seal.record_hash,
                }));
            } else {
                println!(
                    "report of drill {} ({lang}) written to {} (record hash {})",
                    drill.id,
                    path.display(),
                    seal.record_hash
                );
            }
        }
        None => print!("{}", String::from_utf8_lossy(&content)),
    }
    Ok(Exit::Ok)
}

async fn export_bundle(ctx: &Ctx, id: &str, out: &Path) -> Result<Exit> {
    use sha2::{Digest, Sha256};
    let drill = find_drill(&ctx.store, id).await?;
    let seal = sealed(&drill)?;
    let bundle = ctx.store.drill_bundle(drill.id).await?.ok_or_else(|| {
        DrillCliError::NotFound(format!(
            "drill {} was sealed without an evidence bundle (the coordinator could not pack it; \
             its log says why)",
            drill.id
        ))
    })?;
    let sha = hex::encode(Sha256::digest(&bundle));
    let expected = parse_record(seal).and_then(|r| r.bundle_sha256);
    write_file(out, &bundle)?;
    if expected.as_deref().is_some_and(|e| e != sha) {
        return Err(DrillCliError::Integrity(format!(
            "the bundle of drill {} has sha256 {sha}, but its sealed record names {}: the bundle \
             was altered (written to {} for inspection)",
            drill.id,
            expected.unwrap_or_default(),
            out.display()
        )));
    }
    if ctx.json {
        print_json(&json!({ "id": drill.id, "out": out, "bytes": bundle.len(), "sha256": sha }));
    } else {
        println!(
            "evidence bundle of drill {} written to {} ({}, sha256 {sha}, as sealed in its record)",
            drill.id,
            out.display(),
            bytes(bundle.len() as u64)
        );
    }
    Ok(Exit::Ok)
}

fn sealed(drill: &StoredDrill) -> Result<&DrillSeal> {
    drill.seal.as_ref().ok_or_else(|| {
        DrillCliError::NotFound(format!(
            "drill {} has no sealed record yet (it is {}; a record is sealed when a started \
             drill ends)",
            drill.id,
            drill.status.as_str()
        ))
    })
}

fn write_file(path: &Path, content: &[u8]) -> Result<()> {
    std::fs::write(path, content).map_err(|source| DrillCliError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// verify-chain

async fn verify_chain(ctx: &Ctx) -> Result<Exit> {
    let rows = ctx.store.drill_chain().await?;
    match crate::coordinator::drills::check_chain(&rows) {
        Ok(records) => {
            let head = records
                .last()
                .map_or(GENESIS_HASH.to_string(), |r| r.record_hash.clone());
            if ctx.json {
                print_json(&json!({ "ok": true, "records": records.len(), "head": head }));
            } else {
                println!(
                    "chain of {} drill records intact (head {head})",
                    records.len()
                );
            }
            Ok(Exit::Ok)
        }
        Err(b) => {
            if ctx.json {
                print_json(&json!({
                    "ok": false,
                    "records": rows.len(),
                    "break": b,
                    "exit_code": Exit::Integrity.code(),
                }));
            } else {
                println!(
                    "chain of {} drill records BROKEN at position {} (drill {})",
                    rows.len(),
                    b.position,
                    b.drill
                );
            }
            eprintln!(
                "error: {}\nThe drill records were tampered with or damaged in the database: \
                 compare with an exported copy (`lifeboat drill record ID`) and a database backup.",
                b.problem
            );
            Ok(Exit::Integrity)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// calendar

/// The history the calendar counts: one item per readable sealed record, as the API counts it.
fn history(rows: &[(Uuid, DrillSeal)]) -> Vec<DrillHistoryItem> {
    rows.iter()
        .filter_map(|(_, s)| parse_record(s))
        .map(|r| crate::coordinator::drills_api::history_item(&r))
        .collect()
}

async fn show_calendar(ctx: &Ctx) -> Result<Exit> {
    let policy = ctx.policy()?;
    let rows = ctx.store.drill_chain().await?;
    let history = history(&rows);
    let now = ctx.clock.now();
    let due = calendar::due(&policy, &history, now);
    let regulatory = calendar::regulatory(&history, now);
    let systems = calendar::never_drilled_or_overdue(&policy, &history, now);
    let overdue = due.iter().any(|d| d.overdue)
        || regulatory.iter().any(|r| r.overdue)
        || !systems.is_empty();
    if ctx.json {
        print_json(&json!({
            "at": now,
            "plans": due,
            "regulatory": regulatory,
            "systems": systems,
            "overdue": overdue,
        }));
    } else {
        let last = |t: Option<Timestamp>| t.map_or_else(|| "never".to_string(), when);
        println!("Drill plans (soonest due first):");
        if due.is_empty() {
            println!("  (no drill plan in the policy)");
        }
        for d in &due {
            println!(
                "  {:<28} due {}{}  last {}  {}",
                d.plan.as_str(),
                when(d.due_at),
                if d.overdue { " OVERDUE" } else { "" },
                last(d.last_at),
                d.basis
            );
        }
        println!("Regulatory calendar:");
        for r in &regulatory {
            println!(
                "  {:<48} due {}{}  last {}",
                r.requirement,
                when(r.due_at),
                if r.overdue { " OVERDUE" } else { "" },
                last(r.last_at)
            );
        }
        println!("Systems never drilled or overdue for their tier's drill-every:");
        if systems.is_empty() {
            println!("  none");
        }
        for s in &systems {
            match s.last_at {
                None => println!("  {:<28} never drilled", s.system.as_str()),
                Some(l) => println!(
                    "  {:<28} last drilled {}, due {}",
                    s.system.as_str(),
                    when(l),
                    when(s.due_at)
                ),
            }
        }
    }
    Ok(if overdue { Exit::Partial } else { Exit::Ok })
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/// A timestamp to the second, UTC.
fn when(t: Timestamp) -> String {
    format!("{t:.0}")
}

fn secs(s: f64) -> String {
    let s = if s.is_finite() { s.round() as i64 } else { 0 };
    Human(SignedDuration::from_secs(s)).to_string()
}

fn opt_secs(s: Option<i64>) -> String {
    s.map_or_else(
        || "not measured".to_string(),
        |s| Human(SignedDuration::from_secs(s)).to_string(),
    )
}

/// A snapshot id as people read it: its first 8 characters.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn sentence(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// A unit enum's serde name (`technical`, `high`).
fn kebab(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => "?".into(),
    }
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Readiness => "readiness",
        Phase::Running => "running",
        Phase::Cleanup => "cleanup",
        Phase::Ended => "ended",
    }
}

fn status_of(s: DrillStatusArg) -> DrillStatus {
    match s {
        DrillStatusArg::Scheduled => DrillStatus::Scheduled,
        DrillStatusArg::Running => DrillStatus::Running,
        DrillStatusArg::Finished => DrillStatus::Finished,
        DrillStatusArg::Aborted => DrillStatus::Aborted,
        DrillStatusArg::NotReady => DrillStatus::NotReady,
        DrillStatusArg::Failed => DrillStatus::Failed,
    }
}

fn state_error(state: &Value) -> String {
    state
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("no reason recorded")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_and_durations() {
        assert_eq!(short("1a2b3c4d5e6f"), "1a2b3c4d");
        assert_eq!(short("abc"), "abc");
        assert_eq!(secs(3725.4), "1h 2m");
        assert_eq!(opt_secs(None), "not measured");
        assert_eq!(
            when("2025-06-01T02:03:04.5Z".parse().unwrap_or_default()),
            "2025-06-01T02:03:04Z"
        );
    }

    #[test]
    fn an_empty_chain_is_intact() {
        assert!(crate::coordinator::drills::check_chain(&[]).is_ok_and(|r| r.is_empty()));
    }
}
