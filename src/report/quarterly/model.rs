//! The quarterly report as data: every section of standards §4.2 the software can fill, as one
//! serde value. Its JSON is the `--format json` output (and the golden file of the tests); the
//! HTML and CSV renderers read only this value.
//!
//! Plain data: no figure is computed here (that is `build`), no text for people is written here
//! (that is the renderers, in both languages, from the kinds below). Durations are whole
//! seconds, percentages are `0.0..=100.0`, times are UTC timestamps; an exposure that nothing
//! bounds (no counted copy) is `null` with `unbounded: true` beside it.

use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::Quarter;
use crate::assess::{DigitKind, Scenario};
use crate::drill::calendar::{DueDrill, RegulatoryItem};
use crate::drill::measure::Verdict;
use crate::drill::record::DrillEnd;
use crate::policy::{DrillId, DrillType, Location, RepoId, SiteId, SiteRole, SystemId, TierId};
use crate::report::chart::Rag;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct QuarterlyReport {
    pub meta: Meta,
    /// §4.2 item 1.
    pub summary: Summary,
    /// §4.2 item 2.
    pub inventory: InventorySection,
    /// §4.2 item 3.
    pub rpo: RpoSection,
    /// §4.2 item 4.
    pub rto: RtoSection,
    /// §4.2 item 5.
    pub posture: PostureSection,
    /// §4.2 item 6.
    pub operations: OperationsSection,
    /// §4.2 item 7.
    pub drills: DrillSection,
    /// §4.2 item 8, derived; most severe first.
    pub findings: Vec<Finding>,
    /// §4.2 item 13.
    pub appendix: Appendix,
}

/// What the report covers and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub quarter: Quarter,
    /// The quarter's first instant in the organisation's zone.
    pub from: Timestamp,
    /// The next quarter's first instant (exclusive).
    pub to: Timestamp,
    /// Where measuring stopped: `to`, or the generation time for a quarter not yet over.
    pub measured_to: Timestamp,
    /// False while the quarter is not over: its figures are provisional.
    pub complete: bool,
    /// IANA name of the organisation's zone (see the module documentation of `quarterly`).
    pub time_zone: String,
    pub generated_at: Timestamp,
    pub policy_digest: String,
    pub lifeboat_version: String,
    /// The quarters of the trend columns, the oldest first.
    pub trend_quarters: Vec<Quarter>,
    pub tiers: Vec<TierInfo>,
    /// Sites that have systems, in id order.
    pub sites: Vec<SiteInfo>,
}

/// A tier and its targets.
#[derive(Debug, Clone, Serialize)]
pub struct TierInfo {
    pub id: TierId,
    pub name: String,
    pub name_zh: Option<String>,
    pub rpo_seconds: i64,
    pub rto_it_seconds: i64,
    pub rto_business_seconds: i64,
    pub drill_every_seconds: i64,
}

/// A site.
#[derive(Debug, Clone, Serialize)]
pub struct SiteInfo {
    pub id: SiteId,
    pub name: String,
    pub name_zh: Option<String>,
    pub role: SiteRole,
}

// ---------------------------------------------------------------------------------------------
// 1. Executive summary

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The worst tier status.
    pub overall: Rag,
    pub tiers: Vec<TierSummary>,
    /// The status of each tier × site that has systems (the heat map).
    pub cells: Vec<Cell>,
    /// Ids of the high-severity findings (at most five): the top risks.
    pub top_risks: Vec<String>,
}

/// One tier × site: the status of its systems by the same rule as a tier's.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub tier: TierId,
    pub site: SiteId,
    pub systems: u32,
    pub rag: Rag,
}

/// One tier's status and headline figures.
#[derive(Debug, Clone, Serialize)]
pub struct TierSummary {
    pub tier: TierId,
    pub rag: Rag,
    /// Why the status is not green (empty when green).
    pub reasons: Vec<RagReason>,
    pub systems: u32,
    /// Headline: the site-loss scenario over the quarter.
    pub site_loss: Compliance,
    /// Headline: the tier's latest drill up to the quarter's end.
    pub last_drill: Option<TierDrill>,
}

/// RPO compliance of a group of systems for one scenario over the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct Compliance {
    pub systems: u32,
    /// Systems never above the target in the quarter.
    pub systems_within: u32,
    /// Share of system-time within target (the mean of the systems' percentages).
    pub within_percent: Option<f64>,
    /// The worst exposure of any system; `None` with `unbounded` when nothing counted.
    pub worst_exposure_seconds: Option<i64>,
    pub unbounded: bool,
    pub breaches: u32,
    pub breached_seconds: i64,
}

/// The latest drill of a tier: its worst RTO against the tier's target.
#[derive(Debug, Clone, Serialize)]
pub struct TierDrill {
    pub drill_id: Uuid,
    pub plan: DrillId,
    pub finished_at: Timestamp,
    pub verdict: Verdict,
    /// The slowest business RTO of the tier's systems in it (IT RTO when no business RTO was
    /// measured; the projection when only extrapolated).
    pub rto_seconds: Option<i64>,
    pub rto_target_seconds: i64,
    pub rto_kind: RtoKind,
    pub extrapolated: bool,
}

/// Which RTO a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RtoKind {
    /// `T_service − T_outage`.
    Business,
    /// `T_system_ready − T_outage`.
    It,
}

/// Why a tier (or a heat-map cell) is not green.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum RagReason {
    /// Red: a system was within its site-loss target less than [`super::build::RED_WITHIN_PERCENT`].
    SiteLossBelow {
        system: SystemId,
        within_percent: f64,
    },
    /// Red: nothing counted for site loss at the quarter's end.
    SiteLossUnbounded { system: SystemId },
    /// Red: the system's latest drill failed it.
    DrillFailed { system: SystemId, drill_id: Uuid },
    /// Amber: a site-loss breach in the quarter.
    SiteLossBreach { system: SystemId, breaches: u32 },
    /// Amber: another scenario below the red threshold.
    ScenarioBelow {
        system: SystemId,
        scenario: Scenario,
        within_percent: f64,
    },
    /// Amber: never drilled, or overdue for the tier's `drill-every` at the quarter's end.
    DrillDue { system: SystemId },
    /// Amber: 3-2-1-1-0 not met at the quarter's end.
    RuleNotMet { system: SystemId },
    /// Grey: the tier has no system.
    NoSystems,
}

// ---------------------------------------------------------------------------------------------
// 2. Inventory

#[derive(Debug, Clone, Serialize)]
pub struct InventorySection {
    /// Systems per tier and site.
    pub counts: Vec<InventoryCount>,
    pub systems: Vec<SystemInfo>,
    /// Systems first seen in the quarter's run records (their first run is in it).
    pub new_this_quarter: Vec<SystemId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryCount {
    pub tier: TierId,
    pub site: SiteId,
    pub systems: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    pub id: SystemId,
    pub name: String,
    pub department: String,
    pub site: SiteId,
    pub tier: TierId,
    pub host: String,
    pub repositories: Vec<RepoId>,
    /// The source size of its latest recorded backup up to the quarter's end.
    pub source_bytes: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// 3. RPO compliance

#[derive(Debug, Clone, Serialize)]
pub struct RpoSection {
    /// One per system × scenario, by system then scenario.
    pub rows: Vec<RpoRow>,
    /// One per tier × site × scenario that has systems.
    pub groups: Vec<RpoGroup>,
    /// Site-loss exposure over the quarter per tier (the worst system at each sample), hours.
    pub exposure_over_time: Vec<TierSeries>,
}

/// One system's exposure for one scenario over the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct RpoRow {
    pub system: SystemId,
    pub site: SiteId,
    pub tier: TierId,
    pub scenario: Scenario,
    pub target_seconds: i64,
    pub worst_exposure_seconds: Option<i64>,
    pub unbounded: bool,
    pub worst_at: Timestamp,
    pub within_percent: f64,
    pub breaches: u32,
    pub breached_seconds: i64,
    /// The exposure at the end of the period (`None` with `unbounded_at_end`: nothing counted).
    pub end_exposure_seconds: Option<i64>,
    pub unbounded_at_end: bool,
    /// What the run records show around the breaches.
    pub causes: Vec<Cause>,
    /// The four previous quarters, the oldest first.
    pub trend: Vec<TrendPoint>,
}

/// A group's compliance in one quarter of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub quarter: Quarter,
    /// `None`: no run of the system was recorded by the quarter's end (not measured).
    pub within_percent: Option<f64>,
    pub worst_exposure_seconds: Option<i64>,
    pub unbounded: bool,
}

/// Tier × site × scenario.
#[derive(Debug, Clone, Serialize)]
pub struct RpoGroup {
    pub tier: TierId,
    pub site: SiteId,
    pub scenario: Scenario,
    pub rag: Rag,
    pub compliance: Compliance,
    /// The group's share of system-time within target per trend quarter, the oldest first.
    pub trend: Vec<Option<f64>>,
}

/// What the run records show near a breach (standards §3.2: failed run, late copy, failed
/// check, agent offline).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    pub kind: CauseKind,
    /// Failed runs or checks (or late copies) counted.
    pub count: u32,
    pub repository: Option<RepoId>,
    pub last_at: Option<Timestamp>,
    /// The last error message recorded (as the agent wrote it).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    /// A backup run failed or was partial.
    BackupFailed,
    /// Writing to a counted repository (copy, or the backup's own write) failed.
    CopyFailed,
    /// A failed check distrusted a counted repository.
    CheckFailed,
    /// Snapshots reached a counted repository later than the target after capture.
    LateCopy,
    /// No backup run was recorded at all: the agent was offline or nothing was scheduled.
    NoRunRecorded,
    /// Backups ran and succeeded, but not often enough for the target.
    NoFailureRecorded,
}

/// A line of the exposure chart.
#[derive(Debug, Clone, Serialize)]
pub struct TierSeries {
    pub tier: TierId,
    pub target_hours: f64,
    /// `(t, hours)`: the worst exposure among the tier's systems that had a counted copy at
    /// `t` (those with none are listed in the rows); a sample where none had is left out.
    pub points: Vec<(Timestamp, f64)>,
}

// ---------------------------------------------------------------------------------------------
// 4. RTO capability

#[derive(Debug, Clone, Serialize)]
pub struct RtoSection {
    pub systems: Vec<RtoRow>,
    /// Restore throughput of past drills (bytes/s), for the projections below.
    pub throughput_bytes_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RtoRow {
    pub system: SystemId,
    pub tier: TierId,
    pub site: SiteId,
    pub status: DrillCoverage,
    pub last: Option<LastDrill>,
    /// When the next drill of the system is due (tier `drill-every` after the last one).
    pub due_at: Timestamp,
    /// Source size ÷ past throughput: how long a restore of it would take.
    pub projected_restore_seconds: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillCoverage {
    Current,
    Overdue,
    NeverDrilled,
}

/// A system's latest drill up to the quarter's end.
#[derive(Debug, Clone, Serialize)]
pub struct LastDrill {
    pub drill_id: Uuid,
    pub plan: DrillId,
    pub drill_type: DrillType,
    pub finished_at: Timestamp,
    pub verdict: Verdict,
    /// True when the system was only extrapolated (not restored): the RTO is a projection.
    pub extrapolated: bool,
    pub achieved_rpo_seconds: Option<i64>,
    pub rpo_target_seconds: i64,
    pub it_rto_seconds: Option<i64>,
    pub it_rto_target_seconds: i64,
    pub business_rto_seconds: Option<i64>,
    pub business_rto_target_seconds: i64,
}

// ---------------------------------------------------------------------------------------------
// 5. Copy and integrity posture

#[derive(Debug, Clone, Serialize)]
pub struct PostureSection {
    pub systems: Vec<RuleRow>,
    pub repositories: Vec<RepoPosture>,
    /// Backups of the quarter that ended partial or failed: snapshots that never count.
    pub incomplete_backups: u32,
}

/// 3-2-1-1-0 of one system at the quarter's end.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    pub system: SystemId,
    pub tier: TierId,
    pub conformant: bool,
    pub digits: Vec<DigitRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DigitRow {
    pub kind: DigitKind,
    pub required: u32,
    pub actual: u32,
    pub met: bool,
}

/// Integrity checks of one repository copy: coverage at the quarter's end against the
/// strictest tier using it, and the checks of the quarter.
#[derive(Debug, Clone, Serialize)]
pub struct RepoPosture {
    pub repository: RepoId,
    pub site: Option<SiteId>,
    pub location: Location,
    pub immutable: bool,
    /// The tier whose cadences it is judged against.
    pub tier: TierId,
    pub last_check: Option<Timestamp>,
    pub structure_ok: bool,
    pub read_ok: bool,
    pub fully_read_at: Option<Timestamp>,
    /// `(subsets read, m)` of the rotation in use.
    pub rotation: Option<(u32, u32)>,
    pub checks: u32,
    pub failed_checks: u32,
    pub last_failure: Option<Timestamp>,
    /// Issue kinds at the quarter's end (`never-checked`, `structure-overdue`,
    /// `data-not-fully-read`, `failing`).
    pub issues: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// 6. Backup operations

#[derive(Debug, Clone, Serialize)]
pub struct OperationsSection {
    pub systems: Vec<OpsRow>,
    pub tiers: Vec<OpsTotals>,
    pub storage: Vec<RepoGrowth>,
    /// Cumulative bytes added over the quarter per site (its systems' repositories), GiB.
    pub storage_over_time: Vec<SiteSeries>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpsRow {
    pub system: SystemId,
    pub tier: TierId,
    pub site: SiteId,
    pub backups: u32,
    pub succeeded: u32,
    pub partial: u32,
    pub failed: u32,
    pub success_percent: Option<f64>,
    /// Of successful backups: `finished − started`.
    pub duration_mean_seconds: Option<i64>,
    pub duration_max_seconds: Option<i64>,
    pub copies: u32,
    pub copies_failed: u32,
    /// Off-site lag per snapshot captured in the quarter: the first site-loss-counted
    /// availability minus capture (nearest-rank percentiles).
    pub offsite_lag_p50_seconds: Option<i64>,
    pub offsite_lag_p95_seconds: Option<i64>,
    pub offsite_lag_max_seconds: Option<i64>,
    /// Complete snapshots of the quarter that had no site-loss-counted copy by its end.
    pub not_offsite: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpsTotals {
    pub tier: TierId,
    pub backups: u32,
    pub succeeded: u32,
    pub success_percent: Option<f64>,
}

/// Bytes added to one repository (after dedup and compression, as the runs report them).
#[derive(Debug, Clone, Serialize)]
pub struct RepoGrowth {
    pub repository: RepoId,
    pub location: Option<Location>,
    pub bytes_added: u64,
    /// Per trend quarter, the oldest first.
    pub trend: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteSeries {
    pub site: SiteId,
    /// `(t, GiB)`, cumulative from the quarter's start.
    pub points: Vec<(Timestamp, f64)>,
}

// ---------------------------------------------------------------------------------------------
// 7. Drill programme

#[derive(Debug, Clone, Serialize)]
pub struct DrillSection {
    /// Drills that finished in the quarter.
    pub held: Vec<DrillRow>,
    /// Every plan and when it is due, as of the quarter's end.
    pub plans: Vec<DueDrill>,
    /// The regulatory calendar as of the quarter's end.
    pub regulatory: Vec<RegulatoryItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillRow {
    pub drill_id: Uuid,
    pub plan: DrillId,
    pub title: String,
    pub title_zh: Option<String>,
    pub drill_type: DrillType,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: DrillEnd,
    pub verdict: Verdict,
    pub restored: u32,
    pub failed: u32,
    pub findings: u32,
}

// ---------------------------------------------------------------------------------------------
// 8. Findings

/// One derived finding; the renderers write its sentence and suggested action from `kind`.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `F01`, `F02`, … in report order.
    pub id: String,
    pub severity: Severity,
    pub kind: FindingKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    High,
    Medium,
    Low,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FindingKind {
    RpoBreach {
        system: SystemId,
        scenario: Scenario,
        breaches: u32,
        breached_seconds: i64,
        worst_exposure_seconds: Option<i64>,
        target_seconds: i64,
        causes: Vec<CauseKind>,
    },
    CheckFailed {
        repository: RepoId,
        failed_checks: u32,
        last_at: Option<Timestamp>,
        standing: bool,
    },
    IntegrityGap {
        repository: RepoId,
        issues: Vec<String>,
    },
    RuleNotMet {
        system: SystemId,
        digits: Vec<DigitKind>,
    },
    BackupFailures {
        system: SystemId,
        failed: u32,
        backups: u32,
    },
    DrillFailed {
        drill_id: Uuid,
        plan: DrillId,
        systems: Vec<SystemId>,
    },
    DrillFinding {
        drill_id: Uuid,
        plan: DrillId,
        /// The drill record's own text (English, as the record holds it).
        text: String,
    },
    NeverDrilled {
        system: SystemId,
    },
    DrillOverdue {
        system: SystemId,
        last_at: Timestamp,
        due_at: Timestamp,
    },
    RegulatoryOverdue {
        requirement: String,
        last_at: Option<Timestamp>,
    },
}

// ---------------------------------------------------------------------------------------------
// 13. Appendix

#[derive(Debug, Clone, Serialize)]
pub struct Appendix {
    pub sources: DataSources,
    /// §4.2 items the software cannot fill: left to the report owner.
    pub not_covered: Vec<&'static str>,
    /// The sign-off roles, in order.
    pub sign_off: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataSources {
    /// Run records read (those that finished by `measured_to`).
    pub run_records: u32,
    /// Of those, the ones that finished in the quarter.
    pub run_records_in_quarter: u32,
    /// Sealed drill records read.
    pub drill_records: u32,
    pub first_run_at: Option<Timestamp>,
    pub last_run_at: Option<Timestamp>,
}
