//! Drill plans (`[drills.<id>]` under `policies/drills/`): what a disaster-recovery drill
//! rehearses, where, and in which steps — as typed values, exactly as the TOML spells them.
//!
//! A plan names a scenario (the loss of a site, of one system, or a ransomware attack with its
//! compromise time), the systems in scope, the standby target that restores them, and ordered
//! steps. *Per-system* steps (`restore`, `verify`, `command` with `per-system = true`) run for
//! every system in scope, in tier and dependency order with at most `parallelism` at once;
//! *drill-wide* steps (`command`, `wait`, `gate`, `failback`) run once, after every earlier step
//! has finished. A step may set a mark of the phased RTO timeline (standards §3.3) when it
//! succeeds. Cross-key and cross-entry rules (references, required marks per drill type, the
//! restore step coming first) are checked by `validate`; a value of these types on its own is
//! only known to be well-formed. Nothing here reads files, the clock or the environment.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{DrillId, SiteId, SystemId, TierId};
use super::types::{AbsPath, Argv, Duration, non_empty};

fn one() -> u32 {
    1
}

fn two_hours() -> Duration {
    Duration::from_secs(2 * 3600).unwrap_or(Duration::TEN_MINUTES)
}

/// One drill plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrillPlan {
    /// The table key (`[drills.linfen-site-loss]`), set by the loader.
    pub id: DrillId,
    #[serde(deserialize_with = "non_empty")]
    pub title: String,
    pub title_zh: Option<String>,
    pub description: Option<String>,
    /// What kind of drill this is (standards §4.1 header; 114号 第34条).
    #[serde(rename = "type")]
    pub drill_type: DrillType,
    pub scenario: DrillScenario,
    pub scope: DrillScope,
    pub standby: Standby,
    /// The steps, in order. The first per-system step must be `restore`.
    pub steps: Vec<DrillStep>,
    #[serde(default)]
    pub criteria: Criteria,
    /// What happens to the rest of the drill when a system fails a step.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The drill lead and participants, as the report's organisation section names them.
    #[serde(default)]
    pub organisation: Organisation,
    /// Run the drill on this cadence (operators may always start it by hand). Without it the
    /// drill is due by the tiers' `drill-every` of the systems in scope.
    pub every: Option<Duration>,
}

/// The drill types of standards §4.1 (and what the regulatory calendar counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillType {
    /// Restore and verify at the standby site; no switch-over (functional restore test).
    RestoreTest,
    /// 专项: switch the systems in scope over to the standby site (annual, 114号 第34条).
    TargetedSwitchover,
    /// 全面: switch everything over and fail back (at least every three years).
    FullSwitchover,
}

impl fmt::Display for DrillType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DrillType::RestoreTest => "restore-test",
            DrillType::TargetedSwitchover => "targeted-switchover",
            DrillType::FullSwitchover => "full-switchover",
        })
    }
}

/// The simulated disaster: `kind` decides which copies may be restored from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrillScenario {
    pub kind: DrillScenarioKind,
    /// `site-loss`: the site that is lost. Its repositories, and copies classed `local` or
    /// `same-site`, are never restored from.
    pub lost_site: Option<SiteId>,
    /// `component-loss`: the one system that is lost.
    pub system: Option<SystemId>,
    /// `ransomware`: how long before the drill starts the attacker got in. Only immutable
    /// copies captured before `T_outage − compromised-for` are restored.
    pub compromised_for: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillScenarioKind {
    ComponentLoss,
    SiteLoss,
    Ransomware,
}

impl fmt::Display for DrillScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DrillScenarioKind::ComponentLoss => "component-loss",
            DrillScenarioKind::SiteLoss => "site-loss",
            DrillScenarioKind::Ransomware => "ransomware",
        })
    }
}

/// Which systems the drill restores: every system at `sites` (or named in `systems`), narrowed
/// to `tiers` when given, minus `exclude`. Empty `sites` and `systems` mean the lost site's (or
/// the lost system's) systems.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrillScope {
    #[serde(default)]
    pub sites: Vec<SiteId>,
    #[serde(default)]
    pub systems: Vec<SystemId>,
    #[serde(default)]
    pub tiers: Vec<TierId>,
    #[serde(default)]
    pub exclude: Vec<SystemId>,
    /// Restore only this many systems per tier (a sample); the report then projects the full
    /// RTO from the measured throughput, marked "extrapolated".
    pub sample_per_tier: Option<u32>,
}

/// Where the systems are brought back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Standby {
    /// A site with role `standby` (or any site other than the lost one).
    pub site: SiteId,
    /// The host whose agent restores; it must be enrolled and online when the drill starts.
    #[serde(deserialize_with = "non_empty")]
    pub host: String,
    /// Each system is restored into `<restore-root>/<drill id>/<system id>`.
    pub restore_root: AbsPath,
    /// How many systems are worked on at once.
    #[serde(default = "one")]
    pub parallelism: u32,
    /// Keep the restored data after the drill (default: removed when the drill ends).
    #[serde(default)]
    pub keep_restored: bool,
    /// Free space the standby host must have beyond the estimated restore size, in bytes.
    #[serde(default)]
    pub reserve_bytes: u64,
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DrillStep {
    /// Unique within the plan; names the step in the timeline and the API.
    #[serde(deserialize_with = "non_empty")]
    pub name: String,
    pub action: StepAction,
    /// `command` and `failback`: the program and its arguments, run on the standby host
    /// without a shell. The environment carries `LIFEBOAT_DRILL_ID`, `LIFEBOAT_DRILL_ROOT`,
    /// and for per-system steps `LIFEBOAT_SYSTEM` and `LIFEBOAT_RESTORE_DIR`.
    pub command: Option<Argv>,
    /// `command`: run once per system in scope (default: once for the drill).
    #[serde(default)]
    pub per_system: bool,
    /// `wait`: how long.
    pub duration: Option<Duration>,
    /// `gate`: the role that must approve (`operator` or `admin`).
    pub role: Option<GateRole>,
    /// `gate`: who is expected to approve, for the record (e.g. "finance business owner").
    pub approver: Option<String>,
    /// The step fails when it has not finished after this long (a gate: not approved).
    #[serde(default = "two_hours")]
    pub timeout: Duration,
    /// The timeline mark this step sets when it succeeds (for a per-system step: when it has
    /// succeeded for every system). Gates default to `verify-pass`, fail-back to
    /// `failback-done`.
    pub mark: Option<Mark>,
    /// Plain environment for `command`/`failback`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Per system: restore the chosen snapshot from an allowed repository.
    Restore,
    /// Per system: re-read the restored tree and compare it with the snapshot's content hashes.
    Verify,
    /// Run a program on the standby host (per system or once).
    Command,
    /// Wait for `duration`.
    Wait,
    /// Wait until a person with `role` approves through the API, CLI or dashboard.
    Gate,
    /// Run the fail-back program once; sets `failback-done` when it succeeds.
    Failback,
}

impl StepAction {
    /// Whether the step runs once per system (`command` depends on `per-system`).
    pub fn always_per_system(self) -> bool {
        matches!(self, StepAction::Restore | StepAction::Verify)
    }
}

impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepAction::Restore => "restore",
            StepAction::Verify => "verify",
            StepAction::Command => "command",
            StepAction::Wait => "wait",
            StepAction::Gate => "gate",
            StepAction::Failback => "failback",
        })
    }
}

/// Who may approve a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateRole {
    Operator,
    Admin,
}

impl fmt::Display for GateRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateRole::Operator => "operator",
            GateRole::Admin => "admin",
        })
    }
}

/// Marks of the phased RTO timeline (standards §3.3) a step can set. `T_outage` is the drill
/// start and `T_restore_start`/`T_restore_end` are per system; these are the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    /// `T_declare`: the disaster formally declared (usually a gate).
    Declare,
    /// `T_system_ready`: systems up at the standby site, technical checks pass.
    SystemReady,
    /// `T_verify_pass`: business verification signed off.
    VerifyPass,
    /// `T_service`: service reopened to users.
    Service,
    /// `T_failback_start`.
    FailbackStart,
    /// `T_failback_done`: fail-back completed and verified.
    FailbackDone,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mark::Declare => "declare",
            Mark::SystemReady => "system-ready",
            Mark::VerifyPass => "verify-pass",
            Mark::Service => "service",
            Mark::FailbackStart => "failback-start",
            Mark::FailbackDone => "failback-done",
        })
    }
}

/// When a drill passes. Targets default to each system's tier (RPO, IT RTO, business RTO).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Criteria {
    /// Every restored tree must verify against its snapshot (a failed verify fails the system).
    #[serde(default = "yes")]
    pub verify_required: bool,
    /// Achieved RPO within the tier's target.
    #[serde(default = "yes")]
    pub rpo_within_tier: bool,
    /// Achieved IT and business RTO within the tier's targets.
    #[serde(default = "yes")]
    pub rto_within_tier: bool,
    /// Override the tiers' business RTO target for this drill.
    pub max_business_rto: Option<Duration>,
    /// Override the tiers' IT RTO target for this drill.
    pub max_it_rto: Option<Duration>,
}

fn yes() -> bool {
    true
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            verify_required: true,
            rpo_within_tier: true,
            rto_within_tier: true,
            max_business_rto: None,
            max_it_rto: None,
        }
    }
}

/// What a failed system does to the drill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// The failed system (and the systems that depend on it) stop; the others go on.
    #[default]
    Continue,
    /// The whole drill stops at the first failed system.
    Stop,
}

/// People, for the report (§4.1 item 5 and the sign-off block).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Organisation {
    pub lead: Option<String>,
    #[serde(default)]
    pub participants: Vec<String>,
    #[serde(default)]
    pub observers: Vec<String>,
}

/// Keys a drill entry must have (the loader reports every missing one at once).
pub(crate) const DRILL_REQUIRED: &[&str] =
    &["title", "type", "scenario", "scope", "standby", "steps"];
