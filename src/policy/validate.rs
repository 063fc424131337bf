//! Checks that involve more than one value: the rules inside a tier (RTO ordering, coherent
//! 3-2-1-1 digits), scheme-specific repository options, references between entries, dependency
//! cycles, schedules against the tier's cadences, and whether each system's repositories can meet
//! its tier at all (copies, off-site, immutable, media).
//!
//! Every problem points at the key that would have to change. References are checked against
//! every entry *defined* (even one with problems of its own), so one mistake is reported once.
//! Checks that need a referenced entry's contents are skipped when that entry did not parse.
//! This module reads no files and no clock: schedule gaps are measured over a fixed sample year.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use super::cron::Cron;
use super::load::{Entries, Entry, Parsed, Section, has_key, looks_secret, span_at};
use super::model::{JobKind, Location, OffsiteClass, Repository, System, Tier};
use super::problem::{Problem, Seg, SourceFile, did_you_mean};
use super::repo_url::StorageKind;
use super::types::Duration;

/// A key path segment.
fn k(key: &str) -> Seg {
    Seg::Key(key.to_owned())
}

fn i(index: usize) -> Seg {
    Seg::Index(index)
}

struct Ctx<'c, 'a> {
    files: &'c [SourceFile],
    entries: &'c Entries<'a>,
    parsed: &'c Parsed,
    problems: &'c mut Vec<Problem>,
}

/// Where a problem points: at a key (for "this key should not be here") or at its value.
#[derive(Clone, Copy, PartialEq)]
enum At {
    Key,
    Value,
}

impl Ctx<'_, '_> {
    fn report(
        &mut self,
        section: Section,
        id: &str,
        rel: &[Seg],
        at: At,
        message: String,
        hint: Option<String>,
    ) {
        let Some(entry) = self.entries.get(section, id) else {
            return;
        };
        let Some(file) = self.files.get(entry.file) else {
            return;
        };
        let rel = self.parsed.source_path(section, id, rel);
        let span = span_at(entry, &rel, at == At::Key);
        self.problems
            .push(file.problem(&span, &entry.path().join(&rel), message, hint));
    }

    fn entry(&self, section: Section, id: &str) -> Option<&Entry<'_>> {
        self.entries.get(section, id)
    }

    /// A hint for an unknown reference: the closest defined id, or the list of ids.
    fn unknown_hint(&self, section: Section, id: &str) -> String {
        let ids: Vec<&str> = self.entries.ids(section).collect();
        match did_you_mean(id, ids.iter().copied()) {
            Some(hint) => hint,
            None if ids.is_empty() => format!(
                "no {} is defined; add a [{}.{id}] table",
                section.noun(),
                section.key()
            ),
            None if ids.len() <= 8 => format!("defined {}: {}", section.key(), ids.join(", ")),
            None => format!(
                "define [{}.{id}] or use one of the {} defined {}",
                section.key(),
                ids.len(),
                section.key()
            ),
        }
    }

    /// Checks a reference; true if it resolves to a defined entry.
    fn reference(&mut self, from: (Section, &str), rel: &[Seg], to: Section, id: &str) -> bool {
        if self.entries.get(to, id).is_some() {
            return true;
        }
        let hint = self.unknown_hint(to, id);
        self.report(
            from.0,
            from.1,
            rel,
            At::Value,
            format!("unknown {} \"{id}\"", to.noun()),
            Some(hint),
        );
        false
    }
}

/// Runs every check; problems are appended.
pub(crate) fn check(
    files: &[SourceFile],
    entries: &Entries<'_>,
    parsed: &Parsed,
    problems: &mut Vec<Problem>,
) {
    let mut ctx = Ctx {
        files,
        entries,
        parsed,
        problems,
    };
    for tier in parsed.tiers.values() {
        check_tier(&mut ctx, tier);
    }
    for repo in parsed.repositories.values() {
        check_repository(&mut ctx, repo);
    }
    for system in parsed.systems.values() {
        check_system(&mut ctx, system);
    }
    check_cycles(&mut ctx);
}

// ---------------------------------------------------------------------------------------------
// Tiers

fn check_tier(ctx: &mut Ctx<'_, '_>, t: &Tier) {
    let id = t.id.as_str();
    let given = |keys: &[&str]| {
        keys.iter()
            .all(|key| !ctx.parsed.touched(Section::Tiers, id, key))
    };
    let (rto_given, copies_given) = (given(&["rto-it", "rto-business"]), given(&["copies"]));
    let digits_given = [
        given(&["media"]),
        given(&["offsite"]),
        given(&["immutable"]),
    ];
    let mut report = |key: &str, message: String, hint: Option<String>| {
        ctx.report(Section::Tiers, id, &[k(key)], At::Value, message, hint);
    };
    if t.rto_it > t.rto_business && rto_given {
        report(
            "rto-it",
            format!("IT RTO {} is longer than the business RTO {}", t.rto_it, t.rto_business),
            Some("systems must be back (IT RTO) before business can resume (business RTO); make rto-it at most rto-business".into()),
        );
    }
    if !copies_given {
        return;
    }
    if t.copies == 0 {
        report(
            "copies",
            "copies must be at least 1: production counts as one copy".into(),
            None,
        );
        return;
    }
    let [media_given, offsite_given, immutable_given] = digits_given;
    if media_given {
        if t.media == 0 {
            report("media", "media must be at least 1".into(), None);
        } else if t.media > 2 {
            report(
                "media",
                format!(
                    "media {} cannot be met: lifeboat knows two kinds of storage, local disk and object store",
                    t.media
                ),
                None,
            );
        } else if t.media > t.copies {
            report(
                "media",
                format!(
                    "media {} is more than copies {}: each kind of storage needs a copy",
                    t.media, t.copies
                ),
                None,
            );
        }
    }
    for (key, n, what, given) in [
        ("offsite", t.offsite, "off-site", offsite_given),
        ("immutable", t.immutable, "immutable", immutable_given),
    ] {
        if n >= t.copies && given {
            report(
                key,
                format!(
                    "{} need{} copies = {} or more: production is never {what}",
                    copies(usize::from(n), &format!("{what} ")),
                    if n == 1 { "s" } else { "" },
                    u16::from(n) + 1
                ),
                None,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Repositories

/// Object-store options and the one scheme each belongs to.
const SCHEME_OPTIONS: &[(&str, &[&str])] = &[
    (
        "s3",
        &[
            "endpoint",
            "region",
            "allow-http",
            "access-key-id",
            "secret-access-key",
            "session-token",
        ],
    ),
    ("gs", &["service-account-key"]),
    ("az", &["account", "access-key"]),
];

fn check_repository(ctx: &mut Ctx<'_, '_>, r: &Repository) {
    let id = r.id.as_str();
    if let Some(site) = &r.site {
        ctx.reference(
            (Section::Repositories, id),
            &[k("site")],
            Section::Sites,
            site.as_str(),
        );
    }
    if ctx.parsed.touched(Section::Repositories, id, "url") {
        return;
    }
    let scheme = r.url.scheme();
    let Some(entry) = ctx.entry(Section::Repositories, id) else {
        return;
    };
    let misplaced: Vec<(&str, &str)> = SCHEME_OPTIONS
        .iter()
        .filter(|(s, _)| *s != scheme)
        .flat_map(|(s, keys)| {
            keys.iter()
                .filter(|key| has_key(entry, key))
                .map(move |key| (*s, *key))
        })
        .collect();
    for (owner, key) in misplaced {
        let what = if scheme == "local" {
            format!("the local path {}", r.url)
        } else {
            r.url.to_string()
        };
        ctx.report(
            Section::Repositories,
            id,
            &[k(key)],
            At::Key,
            format!("{key} is only valid for {owner}:// repositories"),
            Some(format!("this repository is {what}; remove {key}")),
        );
    }
    if let Some(endpoint) = &r.endpoint {
        if !endpoint.is_https()
            && !r.allow_http
            && !ctx.parsed.touched(Section::Repositories, id, "allow-http")
        {
            ctx.report(
                Section::Repositories,
                id,
                &[k("endpoint")],
                At::Value,
                "the endpoint uses plain http".into(),
                Some("use https://, or set allow-http = true if the link is protected otherwise (a private line)".into()),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Systems

fn check_system(ctx: &mut Ctx<'_, '_>, s: &System) {
    let id = s.id.as_str();
    let this = (Section::Systems, id);
    // A key with a problem of its own holds a default or a placeholder: leave it alone.
    let given = |key: &str| !ctx.parsed.touched(Section::Systems, id, key);
    let (site_given, tier_given, paths_given, repos_given, retention_given, schedules_given) = (
        given("site"),
        given("tier"),
        given("paths"),
        given("repositories"),
        given("retention"),
        given("schedules"),
    );

    let site_ok = site_given && ctx.reference(this, &[k("site")], Section::Sites, s.site.as_str());
    let tier_ok = tier_given && ctx.reference(this, &[k("tier")], Section::Tiers, s.tier.as_str());

    if s.paths.is_empty() && paths_given {
        ctx.report(
            Section::Systems,
            id,
            &[k("paths")],
            At::Value,
            "at least one source path is needed".into(),
            None,
        );
    }
    let mut seen = BTreeSet::new();
    for (n, path) in s.paths.iter().enumerate() {
        if !seen.insert(path) {
            ctx.report(
                Section::Systems,
                id,
                &[k("paths"), i(n)],
                At::Value,
                format!("path {} is listed twice", path.display()),
                None,
            );
        }
    }

    // The copy chain.
    if s.repositories.is_empty() && repos_given {
        ctx.report(
            Section::Systems,
            id,
            &[k("repositories")],
            At::Value,
            "at least one repository is needed".into(),
            Some("list the branch-local repository first, then the off-site ones".into()),
        );
    }
    let mut all_resolved = true;
    let mut seen = BTreeSet::new();
    for (n, repo) in s.repositories.iter().enumerate() {
        if !ctx.reference(
            this,
            &[k("repositories"), i(n)],
            Section::Repositories,
            repo.as_str(),
        ) {
            all_resolved = false;
        } else if !seen.insert(repo) {
            ctx.report(
                Section::Systems,
                id,
                &[k("repositories"), i(n)],
                At::Value,
                format!("repository \"{repo}\" is listed twice"),
                Some("each copy in the chain must be a different repository".into()),
            );
        }
    }
    // The repositories that parsed without a problem, by position in the chain.
    let parsed = ctx.parsed;
    let clean_repos: Vec<Option<&Repository>> = s
        .repositories
        .iter()
        .map(|r| {
            parsed
                .repositories
                .get(r)
                .filter(|r| parsed.clean(Section::Repositories, r.id.as_str()))
        })
        .collect();
    if let (Some(Some(first)), true) = (clean_repos.first(), repos_given) {
        if first.location == Location::Remote {
            ctx.report(
                Section::Systems,
                id,
                &[k("repositories"), i(0)],
                At::Value,
                format!("the first repository, \"{}\", is remote", first.id),
                Some("the first repository receives the backup; put the branch-local repository first".into()),
            );
        }
    }
    if site_ok && parsed.clean(Section::Sites, s.site.as_str()) {
        check_locations(ctx, s, &clean_repos);
    }

    for (n, dep) in s.depends_on.iter().enumerate() {
        if dep == &s.id {
            ctx.report(
                Section::Systems,
                id,
                &[k("depends-on"), i(n)],
                At::Value,
                "system depends on itself".into(),
                Some("remove it from depends-on".into()),
            );
        } else if ctx.reference(
            this,
            &[k("depends-on"), i(n)],
            Section::Systems,
            dep.as_str(),
        ) && tier_ok
        {
            check_dependency_tier(ctx, s, n);
        }
    }

    if !s.retention.keeps_anything() && retention_given {
        ctx.report(
            Section::Systems,
            id,
            &[k("retention")],
            At::Value,
            "retention keeps nothing".into(),
            Some(
                "set at least one of keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, \
                 keep-quarterly, keep-yearly (above 0) or keep-within"
                    .into(),
            ),
        );
    }

    check_hooks(ctx, s);

    // Checks against the tier need a tier and repositories without problems of their own.
    let tier = parsed
        .tiers
        .get(&s.tier)
        .filter(|t| tier_ok && parsed.clean(Section::Tiers, t.id.as_str()));
    if let Some(tier) = tier {
        if schedules_given {
            check_schedules(ctx, s, tier);
        }
        let repos: Vec<&Repository> = clean_repos.iter().flatten().copied().collect();
        if repos_given && all_resolved && repos.len() == s.repositories.len() && !repos.is_empty() {
            check_feasibility(ctx, s, tier, &repos);
        }
    }
}

/// A repository's declared location must agree with where it is: a copy at the system's own
/// site is lost with it, and "remote" (异地) means another region.
fn check_locations(ctx: &mut Ctx<'_, '_>, s: &System, repos: &[Option<&Repository>]) {
    let parsed = ctx.parsed;
    let Some(home) = parsed.sites.get(&s.site) else {
        return;
    };
    for (n, repo) in repos.iter().enumerate() {
        let Some(repo) = repo else { continue };
        let repo_site = repo.site.as_ref().and_then(|id| parsed.sites.get(id));
        let Some(repo_site) =
            repo_site.filter(|site| parsed.clean(Section::Sites, site.id.as_str()))
        else {
            continue;
        };
        let (message, hint) = if repo_site.id == home.id && repo.location >= Location::SameCity {
            (
                format!(
                    "repository \"{}\" is at site \"{}\", this system's own site, but its location is {}",
                    repo.id, home.id, repo.location
                ),
                "a copy at the same site is lost with it: set its location to \"local\" or \"same-site\", or move it",
            )
        } else if repo.location == Location::Remote && repo_site.region == home.region {
            (
                format!(
                    "repository \"{}\" is in region {}, the same as this system's site, but its location is remote",
                    repo.id, home.region
                ),
                "remote (异地) means another region; set its location to \"same-city\"",
            )
        } else {
            continue;
        };
        ctx.report(
            Section::Systems,
            s.id.as_str(),
            &[k("repositories"), i(n)],
            At::Value,
            message,
            Some(hint.into()),
        );
    }
}

/// A dependency with a slower business RTO cannot be back in time for this system.
fn check_dependency_tier(ctx: &mut Ctx<'_, '_>, s: &System, n: usize) {
    let parsed = ctx.parsed;
    let Some(dep) = s.depends_on.get(n).and_then(|d| parsed.systems.get(d)) else {
        return;
    };
    if parsed.touched(Section::Systems, dep.id.as_str(), "tier") {
        return;
    }
    let clean = |t: &&Tier| parsed.clean(Section::Tiers, t.id.as_str());
    let (Some(mine), Some(theirs)) = (
        parsed.tiers.get(&s.tier).filter(clean),
        parsed.tiers.get(&dep.tier).filter(clean),
    ) else {
        return;
    };
    if theirs.rto_business > mine.rto_business {
        ctx.report(
            Section::Systems,
            s.id.as_str(),
            &[k("depends-on"), i(n)],
            At::Value,
            format!(
                "depends on \"{}\" (tier {}, business RTO {}), which may not be back within this system's business RTO of {}",
                dep.id, theirs.id, theirs.rto_business, mine.rto_business
            ),
            Some(format!("give \"{}\" a tier at least as fast as {}, or remove the dependency", dep.id, mine.id)),
        );
    }
}

/// The name of an environment variable: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_hooks(ctx: &mut Ctx<'_, '_>, s: &System) {
    let id = s.id.as_str();
    for (n, hook) in s.hooks.iter().enumerate() {
        for name in hook.env.keys() {
            let rel = [k("hooks"), i(n), k("env"), k(name)];
            if looks_secret(name) {
                ctx.report(
                    Section::Systems,
                    id,
                    &rel,
                    At::Key,
                    format!("\"{name}\" looks like a secret: inline secrets are not allowed"),
                    Some(format!("move it to secret-env, e.g. secret-env = {{ {name} = {{ file = \"/etc/lifeboat/…\" }} }}")),
                );
            } else if !is_env_name(name) {
                ctx.report(
                    Section::Systems,
                    id,
                    &rel,
                    At::Key,
                    format!("\"{name}\" is not a valid environment variable name"),
                    None,
                );
            }
        }
        for name in hook.secret_env.keys() {
            let rel = [k("hooks"), i(n), k("secret-env"), k(name)];
            if !is_env_name(name) {
                ctx.report(
                    Section::Systems,
                    id,
                    &rel,
                    At::Key,
                    format!("\"{name}\" is not a valid environment variable name"),
                    None,
                );
            } else if hook.env.contains_key(name) {
                ctx.report(
                    Section::Systems,
                    id,
                    &rel,
                    At::Key,
                    format!("\"{name}\" is set in both env and secret-env"),
                    None,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules

/// How far apart the runs of a set of schedules fall at worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Never,
    AtMost(StdDuration),
}

/// The sample: a fixed year starting 2025-01-01 UTC. Schedule gaps are a property of the cron
/// text, not of today's date; a fixed sample keeps `policy check` reproducible.
const SAMPLE_START: i64 = 1_735_689_600;
const SAMPLE_DAYS: i64 = 400;
/// Runs taken per schedule; a frequent schedule shortens the sample instead of the check.
const SAMPLE_RUNS: usize = 2_000;

fn max_gap(crons: &[&Cron]) -> Gap {
    let Some(start) = chrono::DateTime::from_timestamp(SAMPLE_START, 0) else {
        return Gap::Never;
    };
    let mut horizon = SAMPLE_START + SAMPLE_DAYS * 86_400;
    let mut runs: Vec<i64> = Vec::new();
    for cron in crons {
        let mut mine: Vec<i64> = Vec::new();
        for t in cron.schedule().after(&start).take(SAMPLE_RUNS) {
            if t.timestamp() > horizon {
                break;
            }
            mine.push(t.timestamp());
        }
        if mine.len() == SAMPLE_RUNS {
            horizon = horizon.min(mine.last().copied().unwrap_or(horizon));
        }
        runs.extend(mine);
    }
    runs.retain(|t| *t <= horizon);
    runs.sort_unstable();
    runs.dedup();
    match runs.as_slice() {
        [] => Gap::Never,
        [only] => Gap::AtMost(StdDuration::from_secs(
            u64::try_from(horizon - only).unwrap_or(0).max(86_400 * 365),
        )),
        _ => {
            let widest = runs.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            Gap::AtMost(StdDuration::from_secs(u64::try_from(widest).unwrap_or(0)))
        }
    }
}

fn show(d: StdDuration) -> String {
    Duration::from_secs(d.as_secs()).map_or_else(|| "0s".to_owned(), |d| d.to_string())
}

/// A job a system must schedule: how often at least (if the tier says), and why it matters.
struct Requirement {
    job: JobKind,
    /// The longest allowed gap between runs, and the tier setting it comes from.
    within: Option<(Duration, String)>,
    /// What goes wrong without the job.
    why: String,
}

/// Each job the tier's targets depend on must be scheduled often enough: backups and copies
/// within the RPO (the copy to off-site sets the site-loss RPO), checks within `check-every`,
/// a full read of the data within `read-data-window`, and retention applied at all.
fn check_schedules(ctx: &mut Ctx<'_, '_>, s: &System, tier: &Tier) {
    let id = s.id.as_str();
    let t = &tier.id;
    let mut requirements = vec![Requirement {
        job: JobKind::Backup,
        within: Some((tier.rpo, format!("tier {t}'s RPO of {}", tier.rpo))),
        why: "this system is never backed up".into(),
    }];
    if s.repositories.iter().collect::<BTreeSet<_>>().len() > 1 {
        requirements.push(Requirement {
            job: JobKind::Copy,
            within: Some((
                tier.rpo,
                format!(
                    "tier {t}'s RPO of {} (off-site copies set the site-loss RPO)",
                    tier.rpo
                ),
            )),
            why: "snapshots never reach the repositories after the first".into(),
        });
    }
    requirements.push(Requirement {
        job: JobKind::Check,
        within: Some((
            tier.check_every,
            format!("tier {t}'s check-every of {}", tier.check_every),
        )),
        why: format!(
            "tier {t} checks every repository every {}",
            tier.check_every
        ),
    });
    requirements.push(Requirement {
        job: JobKind::ReadData,
        within: Some((
            tier.read_data_window,
            format!("tier {t}'s read-data-window of {}", tier.read_data_window),
        )),
        why: format!(
            "tier {t} reads all data back within {}",
            tier.read_data_window
        ),
    });
    requirements.push(Requirement {
        job: JobKind::Forget,
        within: None,
        why: "the retention rules are never applied".into(),
    });

    for Requirement { job, within, why } in requirements {
        let indices: Vec<usize> = s
            .schedules
            .iter()
            .enumerate()
            .filter(|(_, sc)| sc.job == job)
            .map(|(n, _)| n)
            .collect();
        let Some(first) = indices.first().copied() else {
            ctx.report(
                Section::Systems,
                id,
                &[k("schedules")],
                At::Key,
                format!("no {job} schedule: {why}"),
                Some(format!(
                    "add [[systems.{id}.schedules]] with job = \"{job}\" and a cron"
                )),
            );
            continue;
        };
        let Some((limit, what)) = within else {
            continue;
        };
        let crons: Vec<&Cron> = indices
            .iter()
            .filter_map(|n| s.schedules.get(*n))
            .map(|sc| &sc.cron)
            .collect();
        let message = match max_gap(&crons) {
            Gap::Never => format!("the {job} schedule never runs"),
            Gap::AtMost(gap) if gap > limit.as_std() => {
                format!(
                    "{job} runs are up to {} apart, longer than {what}",
                    show(gap)
                )
            }
            Gap::AtMost(_) => continue,
        };
        ctx.report(
            Section::Systems,
            id,
            &[k("schedules"), i(first), k("cron")],
            At::Value,
            message,
            Some(format!("run {job} at least every {limit}")),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Tier feasibility (3-2-1-1)

fn list(repos: &[&Repository], describe: impl Fn(&Repository) -> String) -> String {
    repos
        .iter()
        .map(|r| format!("{} ({})", r.id, describe(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "1 copy", "2 copies".
fn copies(n: usize, adjective: &str) -> String {
    format!("{n} {adjective}{}", if n == 1 { "copy" } else { "copies" })
}

/// Whether the system's repositories can meet its tier's 3-2-1-1 digits at all (production
/// counts as one copy, on local disk). What the copies actually hold is measured at run time.
fn check_feasibility(ctx: &mut Ctx<'_, '_>, s: &System, tier: &Tier, repos: &[&Repository]) {
    let id = s.id.as_str();
    let mut problems: Vec<(String, String)> = Vec::new();

    let total = 1 + repos.len();
    let wanted = usize::from(tier.copies);
    if total < wanted {
        let names: Vec<&str> = repos.iter().map(|r| r.id.as_str()).collect();
        problems.push((
            format!(
                "tier {} needs {} including production; this system has {total}: production, {}",
                tier.id,
                copies(wanted, ""),
                names.join(", ")
            ),
            format!(
                "add {} to repositories",
                if wanted - total == 1 {
                    "a repository".to_owned()
                } else {
                    format!("{} repositories", wanted - total)
                }
            ),
        ));
    }

    let offsite = repos
        .iter()
        .filter(|r| tier.offsite_class.admits(r.location))
        .count();
    if offsite < usize::from(tier.offsite) {
        let (adjective, add) = match tier.offsite_class {
            OffsiteClass::Remote => (
                "remote (异地) ",
                "add a repository with location = \"remote\", in another region",
            ),
            OffsiteClass::SameCity => (
                "off-site (same-city or remote) ",
                "add a repository with location = \"same-city\" or \"remote\", outside this site",
            ),
        };
        problems.push((
            format!(
                "tier {} needs {}; this system has {offsite}: {}",
                tier.id,
                copies(usize::from(tier.offsite), adjective),
                list(repos, |r| r.location.to_string())
            ),
            add.to_owned(),
        ));
    }

    let immutable = repos.iter().filter(|r| r.immutable).count();
    if immutable < usize::from(tier.immutable) {
        problems.push((
            format!(
                "tier {} needs {}; this system has {immutable}: {}",
                tier.id,
                copies(usize::from(tier.immutable), "immutable "),
                list(repos, |r| if r.immutable {
                    "immutable".into()
                } else {
                    "mutable".into()
                })
            ),
            "add a repository with immutable = true (S3 object lock or an append-only server)"
                .into(),
        ));
    }

    let kinds: BTreeSet<StorageKind> = std::iter::once(StorageKind::LocalDisk)
        .chain(repos.iter().map(|r| r.url.storage_kind()))
        .collect();
    if kinds.len() < usize::from(tier.media) {
        problems.push((
            format!(
                "tier {} needs copies on {} kinds of storage; this system has {}: production (local disk), {}",
                tier.id,
                tier.media,
                kinds.len(),
                list(repos, |r| r.url.storage_kind().to_string())
            ),
            "add an object-store repository (s3://, gs:// or az://)".into(),
        ));
    }

    for (message, hint) in problems {
        ctx.report(
            Section::Systems,
            id,
            &[k("repositories")],
            At::Value,
            message,
            Some(hint),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dependency cycles

/// One problem per strongly connected group of systems (a cycle, or cycles sharing systems),
/// showing one cycle through its smallest id, reported at that system's `depends-on`.
fn check_cycles(ctx: &mut Ctx<'_, '_>) {
    let systems = &ctx.parsed.systems;
    let ids: Vec<&str> = systems.keys().map(|id| id.as_str()).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(n, id)| (*id, n)).collect();
    let edges: Vec<Vec<usize>> = systems
        .values()
        .map(|s| {
            s.depends_on
                .iter()
                .filter(|d| *d != &s.id)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();

    for component in strongly_connected(&edges) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<usize> = component.iter().copied().collect();
        let Some(&start) = members.first() else {
            continue;
        };
        let Some(cycle) = shortest_cycle(&edges, &members, start) else {
            continue;
        };
        let names: Vec<&str> = cycle.iter().filter_map(|n| ids.get(*n).copied()).collect();
        let Some(next) = names.get(1).copied() else {
            continue;
        };
        let Some(first) = names.first().copied() else {
            continue;
        };
        let position = systems
            .get(first)
            .and_then(|s| s.depends_on.iter().position(|d| d.as_str() == next))
            .unwrap_or(0);
        ctx.report(
            Section::Systems,
            first,
            &[k("depends-on"), i(position)],
            At::Value,
            format!("dependency cycle: {}", names.join(" -> ")),
            Some("systems in a cycle cannot be restored one after another; remove one of these dependencies".into()),
        );
    }
}

/// Tarjan's algorithm, iterative (policies may hold tens of thousands of systems).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((v, child)) = work.pop() {
            if child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(child) {
                work.push((v, child + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(component);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    components
}

/// The shortest path from `start` back to itself inside `members` (breadth first), as the list
/// of nodes with `start` at both ends.
fn shortest_cycle(
    edges: &[Vec<usize>],
    members: &BTreeSet<usize>,
    start: usize,
) -> Option<Vec<usize>> {
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in edges.get(v)? {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = *previous.get(&at)?;
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = previous.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_table() {
        // edges as adjacency lists; expected: the cycles found, as node lists.
        type Lists<'a> = &'a [&'a [usize]];
        let cases: &[(Lists<'_>, Lists<'_>)] = &[
            (&[&[1], &[2], &[]], &[]),
            (&[&[1], &[0]], &[&[0, 1, 0]]),
            (&[&[1], &[2], &[0]], &[&[0, 1, 2, 0]]),
            (&[&[1], &[2], &[1], &[3]], &[&[1, 2, 1]]),
            (&[&[1, 2], &[0], &[0]], &[&[0, 1, 0]]),
            (&[&[1], &[0], &[3], &[2]], &[&[0, 1, 0], &[2, 3, 2]]),
        ];
        for (edges, want) in cases {
            let edges: Vec<Vec<usize>> = edges.iter().map(|e| e.to_vec()).collect();
            let mut got: Vec<Vec<usize>> = strongly_connected(&edges)
                .into_iter()
                .filter(|c| c.len() > 1)
                .filter_map(|c| {
                    let members: BTreeSet<usize> = c.into_iter().collect();
                    let start = *members.first()?;
                    shortest_cycle(&edges, &members, start)
                })
                .collect();
            got.sort();
            let want: Vec<Vec<usize>> = want.iter().map(|c| c.to_vec()).collect();
            assert_eq!(got, want, "{edges:?}");
        }
    }

    #[test]
    fn schedule_gaps_table() {
        let h = |n: u64| Gap::AtMost(StdDuration::from_secs(n * 3600));
        let cases: &[(&[&str], Gap)] = &[
            (&["0 30 1 * * *"], h(24)),
            (&["0 0 */4 * * *"], h(4)),
            (&["0 0 1 * * *", "0 0 13 * * *"], h(12)),
            (&["0 0 3 * * SUN"], h(24 * 7)),
            (&["*/15 * * * *"], Gap::AtMost(StdDuration::from_secs(900))),
            (
                &["*/15 * * * *", "@daily"],
                Gap::AtMost(StdDuration::from_secs(900)),
            ),
            (&["0 0 0 1 1 * 2020"], Gap::Never),
            (&["0 0 0 1 1 *"], h(24 * 365)),
        ];
        for (texts, want) in cases {
            let crons: Vec<Cron> = texts.iter().map(|t| t.parse().unwrap()).collect();
            let refs: Vec<&Cron> = crons.iter().collect();
            assert_eq!(max_gap(&refs), *want, "{texts:?}");
        }
    }

    #[test]
    fn env_names_table() {
        for (name, ok) in [
            ("PGDATABASE", true),
            ("_X1", true),
            ("1X", false),
            ("A-B", false),
            ("", false),
        ] {
            assert_eq!(is_env_name(name), ok, "{name}");
        }
    }
}
