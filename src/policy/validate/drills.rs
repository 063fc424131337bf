//! Drill plans against the rest of the policy: every reference resolves, the scenario's keys fit
//! its kind, the standby site survives the scenario, the scope holds at least one system and
//! each of them has a copy the scenario lets the drill restore from, and the steps make a
//! timeline that can run (a restore first, verify after it, marks in timeline order, what the
//! drill type needs).
//!
//! Like the rest of `validate`, a check is skipped when a value it reads had a problem of its
//! own (a placeholder, a removed step), so no problem is a consequence of another. It looks at
//! repositories only as declared (which copies a scenario allows); which snapshot a drill will
//! restore is decided at run time from the evidence (`crate::drill::select`), not here.

use std::collections::BTreeMap;

use super::{At, Ctx, check_env, i, k};
use crate::policy::drill::{
    DrillPlan, DrillScenarioKind, DrillStep, DrillType, Mark, STEP_ACTION_KEYS, StepAction,
};
use crate::policy::load::{Section, has_key, has_key_at};
use crate::policy::model::{SiteRole, System};
use crate::policy::problem::Seg;

const DRILLS: Section = Section::Drills;

/// Checks every drill plan.
pub(super) fn check_drills(ctx: &mut Ctx<'_, '_>) {
    let parsed = ctx.parsed;
    for plan in parsed.drills.values() {
        check_drill(ctx, plan);
    }
}

/// What of a plan can be read as written: a key that had a problem holds a default or a
/// placeholder, and the checks that read it are skipped.
struct Given {
    scenario: bool,
    scope: bool,
    /// `standby` is the entry's own, not the placeholder (some of its keys may have defaults).
    standby: bool,
    drill_type: bool,
    criteria: bool,
    /// Every step is there with its `action`, `per-system` and `mark` as written: checks over
    /// the whole list (order, marks, what the type needs) can run.
    step_list: bool,
}

impl Given {
    fn of(ctx: &Ctx<'_, '_>, d: &DrillPlan) -> Given {
        let id = d.id.as_str();
        let touched = |key: &str| ctx.parsed.touched(DRILLS, id, key);
        let removed = ctx.parsed.removed(DRILLS, id);
        let written = |key: &str| ctx.entry(DRILLS, id).is_some_and(|e| has_key(e, key));
        // A whole key removed (wrong type) or never written: the placeholder stands in.
        let replaced = |key: &str| !written(key) || removed.iter().any(|r| r == &[k(key)]);
        let step_list = !replaced("steps")
            && !removed.iter().any(|r| match r.as_slice() {
                [Seg::Key(steps), Seg::Index(_)] => steps == "steps",
                [Seg::Key(steps), Seg::Index(_), Seg::Key(key), ..] => {
                    steps == "steps" && matches!(key.as_str(), "action" | "per-system" | "mark")
                }
                _ => false,
            });
        Given {
            scenario: !touched("scenario"),
            scope: !touched("scope"),
            standby: !replaced("standby"),
            drill_type: !touched("type"),
            criteria: !touched("criteria"),
            step_list,
        }
    }
}

fn check_drill(ctx: &mut Ctx<'_, '_>, d: &DrillPlan) {
    let given = Given::of(ctx, d);
    let refs_ok = check_references(ctx, d, &given);
    // Whether the scenario names what it loses (a derived scope is empty without it).
    let complete = given.scenario && check_scenario(ctx, d);
    // A scope taken from a scenario that lacks its key is empty because of that key alone.
    let resolvable = refs_ok && given.scenario && (complete || !derived_scope(d));
    if given.scope {
        check_scope(ctx, d, resolvable);
    }
    if given.standby {
        check_standby(ctx, d, &given);
    }
    check_steps(ctx, d, &given);
    if given.criteria
        && let (Some(it), Some(business)) = (d.criteria.max_it_rto, d.criteria.max_business_rto)
        && it > business
    {
        ctx.report(
            DRILLS,
            d.id.as_str(),
            &[k("criteria"), k("max-it-rto")],
            At::Value,
            format!("max-it-rto {it} is longer than max-business-rto {business}"),
            Some("systems must be back (IT RTO) before business can resume (business RTO); make max-it-rto at most max-business-rto".into()),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// References

/// Checks every id the plan names; true if all of those the scope depends on resolve (the
/// scenario's lost site or system and the scope's lists).
fn check_references(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, given: &Given) -> bool {
    let this = (DRILLS, d.id.as_str());
    let mut ok = true;
    if let Some(site) = &d.scenario.lost_site {
        ok &= ctx.reference(
            this,
            &[k("scenario"), k("lost-site")],
            Section::Sites,
            site.as_str(),
        );
    }
    if let Some(system) = &d.scenario.system {
        ok &= ctx.reference(
            this,
            &[k("scenario"), k("system")],
            Section::Systems,
            system.as_str(),
        );
    }
    let scope = &d.scope;
    let lists: [(&str, Section, Vec<&str>); 4] = [
        ("sites", Section::Sites, ids(&scope.sites)),
        ("systems", Section::Systems, ids(&scope.systems)),
        ("tiers", Section::Tiers, ids(&scope.tiers)),
        ("exclude", Section::Systems, ids(&scope.exclude)),
    ];
    for (key, to, list) in lists {
        for (n, id) in list.into_iter().enumerate() {
            ok &= ctx.reference(this, &[k("scope"), k(key), i(n)], to, id);
        }
    }
    if given.standby {
        ctx.reference(
            this,
            &[k("standby"), k("site")],
            Section::Sites,
            d.standby.site.as_str(),
        );
    }
    ok
}

fn ids<T: AsRef<str>>(list: &[T]) -> Vec<&str> {
    list.iter().map(AsRef::as_ref).collect()
}

// ---------------------------------------------------------------------------------------------
// Scenario

/// The scenario key each kind needs, and the ones it refuses.
fn scenario_keys(kind: DrillScenarioKind) -> (&'static str, [&'static str; 2]) {
    match kind {
        DrillScenarioKind::SiteLoss => ("lost-site", ["system", "compromised-for"]),
        DrillScenarioKind::ComponentLoss => ("system", ["lost-site", "compromised-for"]),
        DrillScenarioKind::Ransomware => ("compromised-for", ["lost-site", "system"]),
    }
}

/// Whether the scope is taken from the scenario (no sites or systems listed) and the
/// scenario can give one (a ransomware drill must list its systems).
fn derived_scope(d: &DrillPlan) -> bool {
    d.scope.sites.is_empty()
        && d.scope.systems.is_empty()
        && d.scenario.kind != DrillScenarioKind::Ransomware
}

/// Checks the scenario's keys against its kind; true if it has the key its kind needs.
fn check_scenario(ctx: &mut Ctx<'_, '_>, d: &DrillPlan) -> bool {
    let s = &d.scenario;
    let kind = s.kind;
    let present = |key: &str| match key {
        "lost-site" => s.lost_site.is_some(),
        "system" => s.system.is_some(),
        _ => s.compromised_for.is_some(),
    };
    let (needed, refused) = scenario_keys(kind);
    let complete = present(needed);
    if !complete {
        let example = match kind {
            DrillScenarioKind::SiteLoss => {
                "lost-site = \"linfen\": the site whose loss is rehearsed"
            }
            DrillScenarioKind::ComponentLoss => {
                "system = \"linfen-finance\": the one system that is lost"
            }
            DrillScenarioKind::Ransomware => {
                "compromised-for = \"72h\": how long before the drill the attacker got in; only immutable copies older than that are restored"
            }
        };
        ctx.report(
            DRILLS,
            d.id.as_str(),
            &[k("scenario"), k(needed)],
            At::Value,
            format!("a {kind} scenario needs {needed}"),
            Some(format!("write {example}")),
        );
    }
    for key in refused.into_iter().filter(|key| present(key)) {
        ctx.report(
            DRILLS,
            d.id.as_str(),
            &[k("scenario"), k(key)],
            At::Key,
            format!("{key} does not apply to a {kind} scenario"),
            Some(format!(
                "a {kind} scenario takes {needed}; remove {key}, or change kind (site-loss takes lost-site, component-loss system, ransomware compromised-for)"
            )),
        );
    }
    complete
}

// ---------------------------------------------------------------------------------------------
// Standby

fn check_standby(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, given: &Given) {
    let id = d.id.as_str();
    if d.standby.parallelism == 0 {
        ctx.report(
            DRILLS,
            id,
            &[k("standby"), k("parallelism")],
            At::Value,
            "parallelism must be at least 1".into(),
            Some("it is how many systems the standby host restores at once".into()),
        );
    }
    let parsed = ctx.parsed;
    let Some(site) = parsed
        .sites
        .get(&d.standby.site)
        .filter(|s| parsed.clean(Section::Sites, s.id.as_str()))
    else {
        return;
    };
    if !given.scenario {
        return;
    }
    let kind = d.scenario.kind;
    let standby_sites = || {
        let list: Vec<&str> = parsed
            .sites
            .values()
            .filter(|s| s.role == SiteRole::Standby && Some(&s.id) != d.scenario.lost_site.as_ref())
            .map(|s| s.id.as_str())
            .collect();
        if list.is_empty() {
            "no site has role = \"standby\"; define one".to_owned()
        } else {
            format!("standby sites: {}", list.join(", "))
        }
    };
    if kind == DrillScenarioKind::SiteLoss && d.scenario.lost_site.as_ref() == Some(&site.id) {
        ctx.report(
            DRILLS,
            id,
            &[k("standby"), k("site")],
            At::Value,
            format!(
                "the standby site \"{}\" is the site this drill loses",
                site.id
            ),
            Some(format!(
                "restore at a site that survives the disaster ({})",
                standby_sites()
            )),
        );
    } else if site.role != SiteRole::Standby && kind != DrillScenarioKind::ComponentLoss {
        ctx.report(
            DRILLS,
            id,
            &[k("standby"), k("site")],
            At::Value,
            format!(
                "site \"{}\" is a {} site, not a standby site",
                site.id, site.role
            ),
            Some(format!(
                "a {kind} drill restores at a site with role = \"standby\" ({}); only a component-loss drill may restore at a site with another role",
                standby_sites()
            )),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scope

/// Where a system entered the scope, to point a problem about it there.
fn origin(d: &DrillPlan, s: &System) -> Vec<Seg> {
    let scope = &d.scope;
    if let Some(n) = scope.systems.iter().position(|id| id == &s.id) {
        return vec![k("scope"), k("systems"), i(n)];
    }
    if let Some(n) = scope.sites.iter().position(|id| id == &s.site) {
        return vec![k("scope"), k("sites"), i(n)];
    }
    match d.scenario.kind {
        DrillScenarioKind::ComponentLoss => vec![k("scenario"), k("system")],
        _ => vec![k("scenario"), k("lost-site")],
    }
}

/// `resolvable`: every id the scope depends on resolves and the scenario says what is lost.
fn check_scope(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, resolvable: bool) {
    let id = d.id.as_str();
    if d.scope.sample_per_tier == Some(0) {
        ctx.report(
            DRILLS,
            id,
            &[k("scope"), k("sample-per-tier")],
            At::Value,
            "sample-per-tier must be at least 1".into(),
            Some("it is how many systems of each tier the drill restores; leave it out to restore them all".into()),
        );
    }
    if !resolvable {
        return;
    }
    let parsed = ctx.parsed;
    let systems = d.systems_in_scope(parsed.systems.values());
    if systems.is_empty() {
        let hint = if d.scenario.kind == DrillScenarioKind::Ransomware
            && d.scope.sites.is_empty()
            && d.scope.systems.is_empty()
        {
            "a ransomware drill names what it restores: set scope.sites or scope.systems".to_owned()
        } else {
            "the scope is the systems at scope.sites and in scope.systems (when both are empty, the lost site's or the lost system's), narrowed to scope.tiers, minus scope.exclude".to_owned()
        };
        ctx.report(
            DRILLS,
            id,
            &[k("scope")],
            At::Key,
            "the scope holds no system: the drill would restore nothing".into(),
            Some(hint),
        );
        return;
    }
    if d.scenario.kind == DrillScenarioKind::ComponentLoss {
        return;
    }
    for s in systems {
        check_restorable(ctx, d, s);
    }
}

/// A system in scope needs at least one repository the scenario lets the drill restore from.
fn check_restorable(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, s: &System) {
    let parsed = ctx.parsed;
    if parsed.touched(Section::Systems, s.id.as_str(), "repositories") {
        return;
    }
    let repos: Vec<_> = s
        .repositories
        .iter()
        .filter_map(|r| parsed.repositories.get(r))
        .filter(|r| parsed.clean(Section::Repositories, r.id.as_str()))
        .collect();
    if repos.len() != s.repositories.len() || repos.iter().any(|r| d.scenario.allows(r)) {
        return;
    }
    let (message, hint) = match d.scenario.kind {
        DrillScenarioKind::Ransomware => (
            format!(
                "system \"{}\" cannot be restored after a ransomware attack: none of its repositories is immutable: {}",
                s.id,
                ids(&s.repositories).join(", ")
            ),
            format!(
                "only immutable copies are trusted after an attack; add an immutable repository to its copy chain, or leave it out with scope.exclude = [\"{}\"]",
                s.id
            ),
        ),
        _ => {
            let lost = d.scenario.lost_site.as_ref().map_or("", |s| s.as_str());
            let list: Vec<String> = repos
                .iter()
                .map(|r| match &r.site {
                    Some(site) => format!("{} ({}, at {site})", r.id, r.location),
                    None => format!("{} ({})", r.id, r.location),
                })
                .collect();
            (
                format!(
                    "system \"{}\" cannot be restored after the loss of site \"{lost}\": none of its repositories survives it: {}",
                    s.id,
                    list.join(", ")
                ),
                format!(
                    "add a repository outside \"{lost}\" (location same-city or remote) to its copy chain, or leave it out with scope.exclude = [\"{}\"]",
                    s.id
                ),
            )
        }
    };
    ctx.report(
        DRILLS,
        d.id.as_str(),
        &origin(d, s),
        At::Value,
        message,
        Some(hint),
    );
}

// ---------------------------------------------------------------------------------------------
// Steps

/// The actions that take a step key, for "does not apply" hints.
fn actions_with(key: &str) -> String {
    let actions: Vec<String> = [
        StepAction::Restore,
        StepAction::Verify,
        StepAction::Command,
        StepAction::Wait,
        StepAction::Gate,
        StepAction::Failback,
    ]
    .into_iter()
    .filter(|a| a.own_keys().contains(&key))
    .map(|a| a.to_string())
    .collect();
    actions.join(" and ")
}

fn check_steps(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, given: &Given) {
    let id = d.id.as_str();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, step) in d.steps.iter().enumerate() {
        if let Some(first) = names.get(step.name.as_str()) {
            let first = ctx.parsed.source_path(DRILLS, id, &[k("steps"), i(*first)]);
            let at = match first.get(1) {
                Some(Seg::Index(m)) => format!("steps[{m}]"),
                _ => "another step".to_owned(),
            };
            ctx.report(
                DRILLS,
                id,
                &[k("steps"), i(n), k("name")],
                At::Value,
                format!("step name \"{}\" is also used by {at}", step.name),
                Some(
                    "step names identify steps in the timeline and the API; make them unique"
                        .into(),
                ),
            );
        } else {
            names.insert(step.name.as_str(), n);
        }
        check_step(ctx, d, n, step);
    }
    if !given.step_list {
        return;
    }
    check_order(ctx, d);
    check_marks(ctx, d);
    if given.drill_type {
        check_type(ctx, d);
    }
}

/// One step on its own: the keys its action needs, and no key of another action.
fn check_step(ctx: &mut Ctx<'_, '_>, d: &DrillPlan, n: usize, step: &DrillStep) {
    let id = d.id.as_str();
    let file_path = ctx.parsed.source_path(DRILLS, id, &[k("steps"), i(n)]);
    let Some(entry) = ctx.entry(DRILLS, id) else {
        return;
    };
    let action = step.action;
    let foreign: Vec<&str> = STEP_ACTION_KEYS
        .iter()
        .copied()
        .filter(|key| !action.own_keys().contains(key) && has_key_at(entry, &file_path, key))
        .collect();
    // A step with a problem of its own (a key removed) may miss what it needs only because of it.
    let clean = !ctx
        .parsed
        .removed(DRILLS, id)
        .iter()
        .any(|r| r.starts_with(&file_path));
    for key in foreign {
        ctx.report(
            DRILLS,
            id,
            &[k("steps"), i(n), k(key)],
            At::Key,
            format!("{key} does not apply to a {action} step"),
            Some(format!(
                "only {} steps take {key}; remove it",
                actions_with(key)
            )),
        );
    }
    let missing = match action {
        StepAction::Command | StepAction::Failback if step.command.is_none() => Some((
            "command",
            "write command = [\"/usr/local/lib/lifeboat/drill/…\", \"arg\"]: the program (absolute path) and its arguments, run on the standby host without a shell",
        )),
        StepAction::Wait if step.duration.is_none() => {
            Some(("duration", "write duration = \"15m\": how long to wait"))
        }
        StepAction::Gate if step.role.is_none() => Some((
            "role",
            "write role = \"operator\" or \"admin\": who must approve through the API, CLI or dashboard",
        )),
        _ => None,
    };
    if let (Some((key, hint)), true) = (missing, clean) {
        ctx.report(
            DRILLS,
            id,
            &[k("steps"), i(n), k(key)],
            At::Value,
            format!("a {action} step needs {key}"),
            Some(hint.into()),
        );
    }
    if matches!(action, StepAction::Command | StepAction::Failback) {
        let at = [k("steps"), i(n)];
        check_env(ctx, (DRILLS, id), &at, &step.env, None);
        for name in step.env.keys().filter(|n| n.starts_with("LIFEBOAT_")) {
            ctx.report(
                DRILLS,
                id,
                &[k("steps"), i(n), k("env"), k(name)],
                At::Key,
                format!("\"{name}\" is set by the drill itself"),
                Some("LIFEBOAT_DRILL_ID, LIFEBOAT_DRILL_ROOT, LIFEBOAT_SYSTEM and LIFEBOAT_RESTORE_DIR are given to every drill command; use another name".into()),
            );
        }
    }
}

/// A restore comes first: at least one, before every other per-system step and every verify.
fn check_order(ctx: &mut Ctx<'_, '_>, d: &DrillPlan) {
    let id = d.id.as_str();
    let first_restore = d.steps.iter().position(|s| s.action == StepAction::Restore);
    let Some(first_restore) = first_restore else {
        ctx.report(
            DRILLS,
            id,
            &[k("steps")],
            At::Key,
            "no step restores anything: a drill needs a step with action = \"restore\"".into(),
            Some("restore each system first, then verify it and run the plan's commands".into()),
        );
        return;
    };
    for (n, step) in d.steps.iter().enumerate().take(first_restore) {
        if !step.is_per_system() {
            continue;
        }
        let (message, hint) = if step.action == StepAction::Verify {
            (
                format!("verify step \"{}\" comes before any restore", step.name),
                "verify re-reads what a restore wrote; move it after the restore step",
            )
        } else {
            (
                format!(
                    "per-system step \"{}\" comes before the restore: the first per-system step must be restore",
                    step.name
                ),
                "a per-system command works on the restored tree (LIFEBOAT_RESTORE_DIR); move it after the restore step",
            )
        };
        ctx.report(
            DRILLS,
            id,
            &[k("steps"), i(n), k("action")],
            At::Value,
            message,
            Some(hint.into()),
        );
    }
}

/// Each mark is set once, and the steps set them in timeline order.
fn check_marks(ctx: &mut Ctx<'_, '_>, d: &DrillPlan) {
    const ORDER: &str = "the timeline runs declare, system-ready, verify-pass, service, failback-start, failback-done";
    let id = d.id.as_str();
    let mut seen: BTreeMap<Mark, usize> = BTreeMap::new();
    let mut latest: Option<(Mark, usize)> = None;
    for (n, step) in d.steps.iter().enumerate() {
        let Some(mark) = step.effective_mark() else {
            continue;
        };
        let (key, implicit) = if step.mark.is_some() {
            ("mark", String::new())
        } else {
            (
                "action",
                format!(" (a {} step marks {mark} unless it sets mark)", step.action),
            )
        };
        let name_of = |m: usize| d.steps.get(m).map_or("", |s| s.name.as_str());
        if let Some(&first) = seen.get(&mark) {
            ctx.report(
                DRILLS,
                id,
                &[k("steps"), i(n), k(key)],
                At::Value,
                format!(
                    "mark {mark} is set twice: by step \"{}\" and by step \"{}\"{implicit}",
                    name_of(first),
                    step.name
                ),
                Some("each timeline mark is one instant; set mark on one step only (or another mark on this one)".into()),
            );
            continue;
        }
        seen.insert(mark, n);
        match latest {
            Some((before, m)) if before > mark => {
                ctx.report(
                    DRILLS,
                    id,
                    &[k("steps"), i(n), k(key)],
                    At::Value,
                    format!(
                        "step \"{}\" marks {mark}{implicit}, after step \"{}\" marked {before}",
                        step.name,
                        name_of(m)
                    ),
                    Some(format!("{ORDER}; reorder the steps or change their marks")),
                );
            }
            _ => latest = Some((mark, n)),
        }
    }
}

/// What each drill type needs of its steps.
fn check_type(ctx: &mut Ctx<'_, '_>, d: &DrillPlan) {
    let id = d.id.as_str();
    let marks_service = d
        .steps
        .iter()
        .any(|s| s.effective_mark() == Some(Mark::Service));
    let failback = d
        .steps
        .iter()
        .position(|s| s.action == StepAction::Failback);
    let switchover = matches!(
        d.drill_type,
        DrillType::TargetedSwitchover | DrillType::FullSwitchover
    );
    if switchover && !marks_service {
        ctx.report(
            DRILLS,
            id,
            &[k("type")],
            At::Value,
            format!(
                "a {} drill needs a step that marks service (T_service: service reopened to users)",
                d.drill_type
            ),
            Some("set mark = \"service\" on the switch-over command or on the gate that reopens service; the business RTO is measured to it".into()),
        );
    }
    match (d.drill_type, failback) {
        (DrillType::FullSwitchover, None) => ctx.report(
            DRILLS,
            id,
            &[k("type")],
            At::Value,
            "a full-switchover drill needs a failback step (回切, 114号 第34条)".into(),
            Some(
                "add a step with action = \"failback\" and the command that moves service back"
                    .into(),
            ),
        ),
        (DrillType::RestoreTest, Some(n)) => ctx.report(
            DRILLS,
            id,
            &[k("steps"), i(n), k("action")],
            At::Value,
            "a restore-test drill does not switch over, so it cannot fail back".into(),
            Some("remove the step, or make the drill a full-switchover".into()),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::load_files;

    const BASE: &str = r#"
[tiers.T1]
name = "Important"
rpo = "4h"
rto-it = "8h"
rto-business = "12h"
copies = 2
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "30d"

[sites.branch]
name = "Branch"
role = "branch"
region = "r1"
timezone = "UTC"

[sites.dr]
name = "DR"
role = "standby"
region = "r2"
timezone = "UTC"

[repositories.branch-local]
site = "branch"
url = "/repo/branch"
location = "local"
password = { env = "PW" }

[repositories.dr-copy]
site = "dr"
url = "/repo/dr"
location = "remote"
password = { env = "PW" }

[repositories.dr-vault]
site = "dr"
url = "/repo/vault"
location = "remote"
immutable = true
password = { env = "PW" }

[systems.ledger]
name = "Ledger"
department = "finance"
site = "branch"
host = "h1"
tier = "T1"
paths = ["/srv/ledger"]
repositories = ["branch-local", "dr-vault"]
schedules = [
    { job = "backup", cron = "0 * * * *" },
    { job = "copy", cron = "30 * * * *" },
    { job = "check", cron = "0 5 * * *" },
    { job = "read-data", cron = "0 2 * * *" },
    { job = "forget", cron = "0 6 * * *" },
]
retention = { keep-daily = 7 }

[systems.files]
name = "Files"
department = "ops"
site = "branch"
host = "h1"
tier = "T1"
paths = ["/srv/files"]
repositories = ["branch-local", "dr-copy"]
depends-on = ["ledger"]
schedules = [
    { job = "backup", cron = "0 * * * *" },
    { job = "copy", cron = "30 * * * *" },
    { job = "check", cron = "0 5 * * *" },
    { job = "read-data", cron = "0 2 * * *" },
    { job = "forget", cron = "0 6 * * *" },
]
retention = { keep-daily = 7 }
"#;

    /// A valid plan; cases replace parts of it.
    const PLAN: &str = r#"
[drills.d]
title = "Drill"
type = "targeted-switchover"
scenario = { kind = "site-loss", lost-site = "branch" }
scope = {}
standby = { site = "dr", host = "dr1", restore-root = "/restore" }

[[drills.d.steps]]
name = "restore"
action = "restore"

[[drills.d.steps]]
name = "verify"
action = "verify"

[[drills.d.steps]]
name = "business"
action = "gate"
role = "operator"

[[drills.d.steps]]
name = "switch"
action = "command"
command = ["/bin/true"]
mark = "service"
"#;

    /// The problems of BASE plus `plan` (after applying `edits` to it), as
    /// `key_path: message` lines.
    fn check(edits: &[(&str, &str)]) -> Vec<String> {
        let mut plan = PLAN.to_owned();
        for (from, to) in edits {
            assert!(plan.contains(from), "{from} not in the plan");
            plan = plan.replacen(from, to, 1);
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, format!("{BASE}{plan}")).unwrap();
        match load_files(&[file]) {
            Ok(_) => vec![],
            Err(report) => report
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.key_path, p.message))
                .collect(),
        }
    }

    #[test]
    fn the_base_plan_is_valid() {
        assert_eq!(check(&[]), Vec::<String>::new());
    }

    /// Edits to the valid plan, and the problems they must give (`key_path: message`).
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

    #[test]
    fn rules_table() {
        let cases: &[Case] = &[
            (
                &[("lost-site = \"branch\"", "lost-site = \"brnch\"")],
                &["drills.d.scenario.lost-site: unknown site \"brnch\""],
            ),
            (
                &[(
                    "kind = \"site-loss\", lost-site = \"branch\"",
                    "kind = \"site-loss\"",
                )],
                &["drills.d.scenario.lost-site: a site-loss scenario needs lost-site"],
            ),
            (
                &[(
                    "lost-site = \"branch\"",
                    "lost-site = \"branch\", system = \"ledger\"",
                )],
                &["drills.d.scenario.system: system does not apply to a site-loss scenario"],
            ),
            (
                &[(
                    "kind = \"site-loss\", lost-site = \"branch\"",
                    "kind = \"ransomware\"",
                )],
                &[
                    "drills.d.scenario.compromised-for: a ransomware scenario needs compromised-for",
                    // A ransomware drill has no lost site to take its systems from.
                    "drills.d.scope: the scope holds no system: the drill would restore nothing",
                ],
            ),
            (
                &[(
                    "kind = \"site-loss\", lost-site = \"branch\"",
                    "kind = \"ransomware\", compromised-for = \"72h\"",
                )],
                &["drills.d.scope: the scope holds no system: the drill would restore nothing"],
            ),
            (
                &[
                    (
                        "kind = \"site-loss\", lost-site = \"branch\"",
                        "kind = \"ransomware\", compromised-for = \"72h\"",
                    ),
                    ("scope = {}", "scope = { sites = [\"branch\"] }"),
                ],
                &[
                    "drills.d.scope.sites[0]: system \"files\" cannot be restored after a ransomware attack: none of its repositories is immutable: branch-local, dr-copy",
                ],
            ),
            (
                &[("site = \"dr\"", "site = \"branch\"")],
                &[
                    "drills.d.standby.site: the standby site \"branch\" is the site this drill loses",
                ],
            ),
            (
                &[("scope = {}", "scope = { tiers = [\"T9\"] }")],
                &["drills.d.scope.tiers[0]: unknown tier \"T9\""],
            ),
            (
                &[(
                    "scope = {}",
                    "scope = { exclude = [\"ledger\", \"files\"] }",
                )],
                &["drills.d.scope: the scope holds no system: the drill would restore nothing"],
            ),
            (
                &[("scope = {}", "scope = { sample-per-tier = 0 }")],
                &["drills.d.scope.sample-per-tier: sample-per-tier must be at least 1"],
            ),
            (
                &[(
                    "restore-root = \"/restore\"",
                    "restore-root = \"/restore\", parallelism = 0",
                )],
                &["drills.d.standby.parallelism: parallelism must be at least 1"],
            ),
            (
                &[("name = \"verify\"", "name = \"restore\"")],
                &["drills.d.steps[1].name: step name \"restore\" is also used by steps[0]"],
            ),
            (
                &[("action = \"restore\"", "action = \"verify\"")],
                &[
                    "drills.d.steps: no step restores anything: a drill needs a step with action = \"restore\"",
                ],
            ),
            (
                &[(
                    "name = \"restore\"\naction = \"restore\"",
                    "name = \"check\"\naction = \"verify\"\n\n[[drills.d.steps]]\nname = \"restore\"\naction = \"restore\"",
                )],
                &["drills.d.steps[0].action: verify step \"check\" comes before any restore"],
            ),
            (
                &[("role = \"operator\"", "")],
                &["drills.d.steps[2].role: a gate step needs role"],
            ),
            (
                &[(
                    "role = \"operator\"",
                    "role = \"operator\"\nper-system = true",
                )],
                &["drills.d.steps[2].per-system: per-system does not apply to a gate step"],
            ),
            (
                &[(
                    "action = \"restore\"",
                    "action = \"restore\"\nduration = \"5m\"",
                )],
                &["drills.d.steps[0].duration: duration does not apply to a restore step"],
            ),
            (
                &[("command = [\"/bin/true\"]", "")],
                &["drills.d.steps[3].command: a command step needs command"],
            ),
            (
                &[(
                    "mark = \"service\"",
                    "mark = \"service\"\nenv = { API_TOKEN = \"x\" }",
                )],
                &[
                    "drills.d.steps[3].env.API_TOKEN: \"API_TOKEN\" looks like a secret: inline secrets are not allowed",
                ],
            ),
            (
                &[("mark = \"service\"", "mark = \"declare\"")],
                &[
                    "drills.d.steps[3].mark: step \"switch\" marks declare, after step \"business\" marked verify-pass",
                    "drills.d.type: a targeted-switchover drill needs a step that marks service (T_service: service reopened to users)",
                ],
            ),
            (
                &[("mark = \"service\"", "mark = \"verify-pass\"")],
                &[
                    "drills.d.steps[3].mark: mark verify-pass is set twice: by step \"business\" and by step \"switch\"",
                    "drills.d.type: a targeted-switchover drill needs a step that marks service (T_service: service reopened to users)",
                ],
            ),
            (
                &[(
                    "type = \"targeted-switchover\"",
                    "type = \"full-switchover\"",
                )],
                &[
                    "drills.d.type: a full-switchover drill needs a failback step (回切, 114号 第34条)",
                ],
            ),
            (
                &[("mark = \"service\"", "mark = \"service\"\ntimeout = \"0s\"")],
                &["drills.d.steps[3].timeout: duration \"0s\" is zero, which makes no sense here"],
            ),
            (
                &[(
                    "type = \"targeted-switchover\"",
                    "type = \"restore-test\"\nevery = \"90d\"",
                )],
                &[],
            ),
        ];
        for (edits, want) in cases {
            let mut got = check(edits);
            let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{edits:?}");
        }
    }

    #[test]
    fn a_step_with_a_problem_of_its_own_gives_no_follow_on_problems() {
        // The misspelt action removes the step: only the spelling is reported, not "no
        // restore" or the missing verify order.
        let got = check(&[("action = \"restore\"", "action = \"restor\"")]);
        assert_eq!(got, ["drills.d.steps[0].action: unknown value \"restor\""]);
        // A misspelt key of a command step: not also "needs command".
        let got = check(&[("command = [\"/bin/true\"]", "comand = [\"/bin/true\"]")]);
        assert_eq!(got, ["drills.d.steps[3].comand: unknown key \"comand\""]);
    }

    #[test]
    fn a_dependency_outside_the_scope_is_fine() {
        // files depends on ledger; only files is drilled.
        assert_eq!(
            check(&[("scope = {}", "scope = { systems = [\"files\"] }")]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn component_loss_may_restore_anywhere_but_the_other_kinds_need_a_standby_site() {
        let component = [
            (
                "kind = \"site-loss\", lost-site = \"branch\"",
                "kind = \"component-loss\", system = \"ledger\"",
            ),
            ("site = \"dr\"", "site = \"branch\""),
        ];
        assert_eq!(check(&component), Vec::<String>::new());
        let got = check(&[
            (
                "kind = \"site-loss\", lost-site = \"branch\"",
                "kind = \"ransomware\", compromised-for = \"72h\"",
            ),
            ("scope = {}", "scope = { systems = [\"ledger\"] }"),
            ("site = \"dr\"", "site = \"branch\""),
        ]);
        assert_eq!(
            got,
            ["drills.d.standby.site: site \"branch\" is a branch site, not a standby site"]
        );
    }
}
