//! Checks that involve more than one value: the rules inside a tier (RTO ordering, coherent
//! 3-2-1-1 digits), scheme-specific repository options, references between entries, dependency
//! cycles, schedules against the tier's cadences, whether each system's repositories can meet
//! its tier at all (copies, off-site, immutable, media), and drill plans against all of it
//! (`drills`).
//!
//! Every problem points at the key that would have to change. References are checked against
//! every entry *defined* (even one with problems of its own), so one mistake is reported once.
//! A check is skipped when a value it reads had a problem of its own (the loader marks such keys
//! "touched": they hold a default or a placeholder), so no problem is a consequence of another.
//! This module reads no files and no clock: schedule gaps are measured over a fixed sample year
//! (`cadence`); `feasibility` holds the 3-2-1-1 rule and `cycles` the dependency graph.

mod cadence;
mod cycles;
mod drills;
mod feasibility;

use std::collections::BTreeSet;

use super::load::{Entries, Entry, Parsed, Section, has_key, looks_secret, span_at};
use super::model::{Location, Repository, System, Tier};
use super::problem::{Problem, Seg, SourceFile, did_you_mean};
use cadence::check_schedules;
use cycles::check_cycles;
use drills::check_drills;
use feasibility::{check_feasibility, copies};

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
    check_drills(&mut ctx);
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
    if let Some(endpoint) = &r.endpoint
        && !endpoint.is_https()
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

    let has_paths_key = ctx
        .entry(Section::Systems, id)
        .is_some_and(|e| has_key(e, "paths"));
    if s.stream.is_none() && !has_paths_key {
        ctx.report(
            Section::Systems,
            id,
            &[k("paths")],
            At::Key,
            "missing required key \"paths\"".into(),
            Some(
                "give the source paths, or a [systems.ID.stream] command whose output is backed up"
                    .into(),
            ),
        );
    } else if s.stream.is_some() && has_paths_key {
        ctx.report(
            Section::Systems,
            id,
            &[k("paths")],
            At::Key,
            "paths and stream are exclusive: a system backs up either files or a command's output"
                .into(),
            Some("make the dump its own system".into()),
        );
    } else if s.paths.is_empty() && s.stream.is_none() && paths_given {
        ctx.report(
            Section::Systems,
            id,
            &[k("paths")],
            At::Value,
            "at least one source path is needed".into(),
            None,
        );
    }
    if let Some(stream) = &s.stream
        && (stream.filename.contains('/') || stream.filename == "." || stream.filename == "..")
    {
        ctx.report(
            Section::Systems,
            id,
            &[k("stream"), k("filename")],
            At::Value,
            format!("\"{}\" is not a plain file name", stream.filename),
            Some("write e.g. filename = \"ledger.dump\"".into()),
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
    if let (Some(Some(first)), true) = (clean_repos.first(), repos_given)
        && first.location == Location::Remote
    {
        ctx.report(
            Section::Systems,
            id,
            &[k("repositories"), i(0)],
            At::Value,
            format!("the first repository, \"{}\", is remote", first.id),
            Some(
                "the first repository receives the backup; put the branch-local repository first"
                    .into(),
            ),
        );
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
    let this = (Section::Systems, s.id.as_str());
    for (n, hook) in s.hooks.iter().enumerate() {
        check_env(
            ctx,
            this,
            &[k("hooks"), i(n)],
            &hook.env,
            Some(&hook.secret_env),
        );
    }
    if let Some(stream) = &s.stream {
        check_env(
            ctx,
            this,
            &[k("stream")],
            &stream.env,
            Some(&stream.secret_env),
        );
    }
}

/// The environment of a hook, stream or drill command: no secret-looking plain values, valid
/// names, no name in both tables. Drill commands have no `secret-env` (`None`): the policy
/// hands the standby host no secret but the repositories' own.
fn check_env(
    ctx: &mut Ctx<'_, '_>,
    (section, id): (Section, &str),
    at: &[Seg],
    env: &std::collections::BTreeMap<String, String>,
    secret_env: Option<&std::collections::BTreeMap<String, crate::secret::SecretSource>>,
) {
    let path = |table: &str, name: &str| {
        let mut rel = at.to_vec();
        rel.push(k(table));
        rel.push(k(name));
        rel
    };
    for name in env.keys() {
        let rel = path("env", name);
        if looks_secret(name) {
            let hint = match secret_env {
                Some(_) => format!(
                    "move it to secret-env, e.g. secret-env = {{ {name} = {{ file = \"/etc/lifeboat/…\" }} }}"
                ),
                None => "a drill command gets no secret from the policy: let the program read it from a file on the standby host that only it can read".to_owned(),
            };
            ctx.report(
                section,
                id,
                &rel,
                At::Key,
                format!("\"{name}\" looks like a secret: inline secrets are not allowed"),
                Some(hint),
            );
        } else if !is_env_name(name) {
            ctx.report(
                section,
                id,
                &rel,
                At::Key,
                format!("\"{name}\" is not a valid environment variable name"),
                None,
            );
        }
    }
    for name in secret_env.into_iter().flat_map(|m| m.keys()) {
        let rel = path("secret-env", name);
        if !is_env_name(name) {
            ctx.report(
                section,
                id,
                &rel,
                At::Key,
                format!("\"{name}\" is not a valid environment variable name"),
                None,
            );
        } else if env.contains_key(name) {
            ctx.report(
                section,
                id,
                &rel,
                At::Key,
                format!("\"{name}\" is set in both env and secret-env"),
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
