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
use super::model::{Location, Repository, System};
use super::types::{AbsPath, Argv, Duration, non_empty};

fn one() -> u32 {
    1
}

fn two_hours() -> Duration {
    Duration::from_secs(2 * 3600).unwrap_or(Duration::TEN_MINUTES)
}

/// One drill plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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

/// Stand-ins for missing or broken required keys (see `model::SYSTEM_PLACEHOLDERS`): with
/// them an incomplete plan still deserialises, so its other keys are checked too; `validate`
/// skips every check that reads a stand-in.
pub(crate) const DRILL_PLACEHOLDERS: &str = r#"
title = "(missing)"
type = "restore-test"
scenario = { kind = "component-loss" }
scope = {}
standby = { site = "missing", host = "(missing)", restore-root = "/" }
steps = []
"#;

impl DrillStep {
    /// Whether this step runs once per system in scope (`restore`, `verify`, and `command`
    /// with `per-system = true`) rather than once for the drill.
    pub fn is_per_system(&self) -> bool {
        self.action.always_per_system() || (self.action == StepAction::Command && self.per_system)
    }

    /// The timeline mark this step sets when it succeeds: its `mark`, else `verify-pass` for a
    /// gate and `failback-done` for a fail-back, else none.
    pub fn effective_mark(&self) -> Option<Mark> {
        self.mark.or(match self.action {
            StepAction::Gate => Some(Mark::VerifyPass),
            StepAction::Failback => Some(Mark::FailbackDone),
            _ => None,
        })
    }
}

impl StepAction {
    /// The step keys that belong to this action, besides `name`, `action`, `timeout` and
    /// `mark` (which every step may have). `validate` refuses the others.
    pub fn own_keys(self) -> &'static [&'static str] {
        match self {
            StepAction::Restore | StepAction::Verify => &[],
            StepAction::Command => &["command", "per-system", "env"],
            StepAction::Wait => &["duration"],
            StepAction::Gate => &["role", "approver"],
            StepAction::Failback => &["command", "env"],
        }
    }
}

/// The step keys that only some actions take (see [`StepAction::own_keys`]).
pub(crate) const STEP_ACTION_KEYS: &[&str] = &[
    "command",
    "per-system",
    "env",
    "duration",
    "role",
    "approver",
];

impl DrillScenario {
    /// Whether the scenario lets a drill restore from `repo` at all (the repository half of
    /// the rule; which snapshots in it qualify is decided at run time): a site loss never
    /// uses a repository at the lost site, nor one classed `local` or `same-site`; ransomware
    /// only immutable ones; a component loss any.
    pub fn allows(&self, repo: &Repository) -> bool {
        match self.kind {
            DrillScenarioKind::ComponentLoss => true,
            DrillScenarioKind::SiteLoss => {
                repo.location >= Location::SameCity
                    && (repo.site.is_none() || repo.site != self.lost_site)
            }
            DrillScenarioKind::Ransomware => repo.immutable,
        }
    }
}

impl DrillPlan {
    /// The systems the plan restores, in id order, before any `sample-per-tier`: those at
    /// `scope.sites` or named in `scope.systems` (when both are empty, the lost site's systems
    /// or the lost system), narrowed to `scope.tiers` when given, minus `scope.exclude`.
    pub fn systems_in_scope<'s>(
        &self,
        systems: impl IntoIterator<Item = &'s System>,
    ) -> Vec<&'s System> {
        let scope = &self.scope;
        let derived = scope.sites.is_empty() && scope.systems.is_empty();
        let mut out: Vec<&System> = systems
            .into_iter()
            .filter(|s| {
                if derived {
                    match self.scenario.kind {
                        DrillScenarioKind::SiteLoss => {
                            self.scenario.lost_site.as_ref() == Some(&s.site)
                        }
                        DrillScenarioKind::ComponentLoss => {
                            self.scenario.system.as_ref() == Some(&s.id)
                        }
                        DrillScenarioKind::Ransomware => false,
                    }
                } else {
                    scope.sites.contains(&s.site) || scope.systems.contains(&s.id)
                }
            })
            .filter(|s| scope.tiers.is_empty() || scope.tiers.contains(&s.tier))
            .filter(|s| !scope.exclude.contains(&s.id))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"id = "d"
title = "Drill"
type = "restore-test"
scenario = { kind = "site-loss", lost-site = "linfen" }
scope = {}
standby = { site = "datong-dr", host = "dr1", restore-root = "/srv/drill" }
steps = [{ name = "restore", action = "restore" }]"#;

    /// The required-key list and the placeholders match serde: a minimal plan parses, leaving
    /// out a key fails exactly when it is listed, and the placeholders alone make a plan.
    #[test]
    fn required_keys_and_placeholders_match_the_struct() {
        toml::from_str::<DrillPlan>(MINIMAL).unwrap_or_else(|e| panic!("minimal plan: {e}"));
        for line in MINIMAL.lines().filter(|l| !l.starts_with("id =")) {
            let key = line.split(" = ").next().unwrap_or_default();
            let without: Vec<&str> = MINIMAL.lines().filter(|l| *l != line).collect();
            let result = toml::from_str::<DrillPlan>(&without.join("\n"));
            assert_eq!(
                result.is_err(),
                DRILL_REQUIRED.contains(&key),
                "{key}: {result:?}"
            );
        }
        let table: toml::Table = toml::from_str(DRILL_PLACEHOLDERS).unwrap();
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut want = DRILL_REQUIRED.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        toml::from_str::<DrillPlan>(&format!("id = \"x\"\n{DRILL_PLACEHOLDERS}")).unwrap();
    }

    #[test]
    fn defaults_table() {
        let d: DrillPlan = toml::from_str(MINIMAL).unwrap();
        assert_eq!(d.standby.parallelism, 1);
        assert!(!d.standby.keep_restored);
        assert_eq!(d.on_failure, OnFailure::Continue);
        assert!(d.criteria.verify_required && d.criteria.rpo_within_tier);
        let step = &d.steps[0];
        assert_eq!(step.timeout.to_string(), "2h");
        assert!(step.is_per_system() && step.effective_mark().is_none());
    }

    fn step(action: &str, extra: &str) -> DrillStep {
        toml::from_str(&format!("name = \"s\"\naction = \"{action}\"\n{extra}"))
            .unwrap_or_else(|e| panic!("{action} {extra}: {e}"))
    }

    #[test]
    fn steps_per_system_and_marks_table() {
        let cases = [
            (step("restore", ""), true, None),
            (
                step("verify", "mark = \"system-ready\""),
                true,
                Some(Mark::SystemReady),
            ),
            (step("command", ""), false, None),
            (step("command", "per-system = true"), true, None),
            (step("wait", ""), false, None),
            (step("gate", ""), false, Some(Mark::VerifyPass)),
            (
                step("gate", "mark = \"declare\""),
                false,
                Some(Mark::Declare),
            ),
            (step("failback", ""), false, Some(Mark::FailbackDone)),
        ];
        for (s, per_system, mark) in cases {
            assert_eq!(
                (s.is_per_system(), s.effective_mark()),
                (per_system, mark),
                "{s:?}"
            );
        }
        // The timeline order is the order of the enum.
        let mut marks = [
            Mark::FailbackDone,
            Mark::Service,
            Mark::Declare,
            Mark::FailbackStart,
            Mark::VerifyPass,
            Mark::SystemReady,
        ];
        marks.sort();
        let names: Vec<String> = marks.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "declare",
                "system-ready",
                "verify-pass",
                "service",
                "failback-start",
                "failback-done"
            ]
        );
    }

    /// Every key some action owns is in the list `validate` checks, and is a step key.
    #[test]
    fn action_keys_are_step_keys() {
        let full = step(
            "command",
            "command = [\"/bin/true\"]\nper-system = true\nenv = { A = \"1\" }\nduration = \"1m\"\nrole = \"admin\"\napprover = \"x\"",
        );
        let json = serde_json::to_value(&full).unwrap();
        for action in [
            StepAction::Restore,
            StepAction::Verify,
            StepAction::Command,
            StepAction::Wait,
            StepAction::Gate,
            StepAction::Failback,
        ] {
            for key in action.own_keys() {
                assert!(STEP_ACTION_KEYS.contains(key), "{action}: {key}");
            }
        }
        for key in STEP_ACTION_KEYS {
            assert!(json.get(*key).is_some(), "{key} is not a step key");
        }
    }

    fn repository(site: Option<&str>, location: &str, immutable: bool) -> Repository {
        let site = site
            .map(|s| format!("site = \"{s}\"\n"))
            .unwrap_or_default();
        toml::from_str(&format!(
            "id = \"r\"\n{site}url = \"/r\"\nlocation = \"{location}\"\nimmutable = {immutable}\npassword = {{ env = \"PW\" }}"
        ))
        .unwrap()
    }

    fn scenario(text: &str) -> DrillScenario {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn scenarios_allow_repositories_table() {
        let site_loss = scenario("kind = \"site-loss\"\nlost-site = \"linfen\"");
        let component = scenario("kind = \"component-loss\"\nsystem = \"a\"");
        let ransomware = scenario("kind = \"ransomware\"\ncompromised-for = \"72h\"");
        let cases = [
            (
                &site_loss,
                repository(Some("linfen"), "local", false),
                false,
            ),
            (&site_loss, repository(None, "same-site", false), false),
            (
                &site_loss,
                repository(Some("linfen"), "same-city", false),
                false,
            ),
            (&site_loss, repository(Some("dc"), "same-city", false), true),
            (&site_loss, repository(None, "remote", false), true),
            (&component, repository(Some("linfen"), "local", false), true),
            (&ransomware, repository(Some("dc"), "remote", false), false),
            (&ransomware, repository(Some("linfen"), "local", true), true),
        ];
        for (scenario, repo, want) in cases {
            assert_eq!(
                scenario.allows(&repo),
                want,
                "{} {:?} {} immutable={}",
                scenario.kind,
                repo.site,
                repo.location,
                repo.immutable
            );
        }
    }

    fn system(id: &str, site: &str, tier: &str) -> System {
        toml::from_str(&format!(
            "id = \"{id}\"\nname = \"n\"\ndepartment = \"d\"\nsite = \"{site}\"\nhost = \"h\"\ntier = \"{tier}\"\npaths = [\"/p\"]\nrepositories = [\"r\"]\nretention = {{ keep-last = 1 }}"
        ))
        .unwrap()
    }

    #[test]
    fn scope_resolution_table() {
        let systems = [
            system("a-finance", "a", "T1"),
            system("a-ops", "a", "T2"),
            system("b-finance", "b", "T1"),
            system("b-ops", "b", "T2"),
        ];
        let cases = [
            (
                "kind = \"site-loss\", lost-site = \"a\"",
                "",
                "a-finance a-ops",
            ),
            (
                "kind = \"site-loss\", lost-site = \"a\"",
                "tiers = [\"T2\"]",
                "a-ops",
            ),
            (
                "kind = \"site-loss\", lost-site = \"a\"",
                "sites = [\"a\", \"b\"], exclude = [\"b-ops\"]",
                "a-finance a-ops b-finance",
            ),
            (
                "kind = \"site-loss\", lost-site = \"a\"",
                "sites = [\"b\"], systems = [\"a-ops\", \"b-ops\"]",
                "a-ops b-finance b-ops",
            ),
            ("kind = \"component-loss\", system = \"b-ops\"", "", "b-ops"),
            ("kind = \"ransomware\", compromised-for = \"1d\"", "", ""),
            (
                "kind = \"ransomware\", compromised-for = \"1d\"",
                "sites = [\"a\", \"b\"], tiers = [\"T1\"]",
                "a-finance b-finance",
            ),
        ];
        for (scenario, scope, want) in cases {
            let text = MINIMAL
                .replace("kind = \"site-loss\", lost-site = \"linfen\"", scenario)
                .replace("scope = {}", &format!("scope = {{ {scope} }}"));
            let plan: DrillPlan = toml::from_str(&text).unwrap();
            let got: Vec<&str> = plan
                .systems_in_scope(&systems)
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            assert_eq!(got.join(" "), want, "{scenario} / {scope}");
        }
    }
}
