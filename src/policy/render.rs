//! The human listing of a loaded policy for `lifeboat policy show`: every entry with its
//! effective values (defaults filled in, durations normalised), in id order.
//!
//! Text only, deterministic, no colours or terminal queries. Secret *sources* are shown (a
//! variable name, a file path, a program); secret values are never resolved here.

use std::fmt::Write as _;

use super::model::{Repository, Retention, System, Tier};
use super::{Policy, RepoUrl};

/// Renders the whole policy. Writing to a `String` cannot fail, hence the ignored results.
pub(crate) fn render(policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy {} (sha256 of the normalised policy)",
        policy.digest
    );

    let _ = writeln!(out, "\ntiers ({})", policy.tiers.len());
    for tier in policy.tiers.values() {
        tier_lines(&mut out, tier);
    }

    let _ = writeln!(out, "\nsites ({})", policy.sites.len());
    for site in policy.sites.values() {
        let _ = writeln!(
            out,
            "  {}  {}{}  {}  region {}  {}",
            site.id,
            site.name,
            site.name_zh
                .as_deref()
                .map(|z| format!(" {z}"))
                .unwrap_or_default(),
            site.role,
            site.region,
            site.timezone
        );
    }

    let _ = writeln!(out, "\nrepositories ({})", policy.repositories.len());
    for repo in policy.repositories.values() {
        repository_lines(&mut out, repo);
    }

    let _ = writeln!(out, "\nsystems ({})", policy.systems.len());
    for system in policy.systems.values() {
        system_lines(&mut out, system);
    }
    out
}

fn tier_lines(out: &mut String, t: &Tier) {
    let zh = t
        .name_zh
        .as_deref()
        .map(|z| format!(" {z}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  {}  {}{zh}", t.id, t.name);
    let _ = writeln!(
        out,
        "      rpo {} · rto-it {} · rto-business {} · copies {}-{}-{}-{} (off-site: {})",
        t.rpo, t.rto_it, t.rto_business, t.copies, t.media, t.offsite, t.immutable, t.offsite_class
    );
    let _ = writeln!(
        out,
        "      drill every {} · restore test every {} · check every {} · read all data within {}",
        t.drill_every, t.restore_test_every, t.check_every, t.read_data_window
    );
}

fn repository_lines(out: &mut String, r: &Repository) {
    let immutable = if r.immutable { " immutable" } else { "" };
    let _ = writeln!(out, "  {}  {}{immutable}  {}", r.id, r.location, r.url);
    let mut details = vec![
        format!("password from {}", r.password),
        format!("zstd {}", r.compression),
    ];
    if let Some(site) = &r.site {
        details.insert(0, format!("site {site}"));
    }
    let _ = writeln!(out, "      {}", details.join(" · "));
    if matches!(r.url, RepoUrl::Local(_)) {
        return;
    }
    let mut store = Vec::new();
    if let Some(endpoint) = &r.endpoint {
        store.push(format!("endpoint {endpoint}"));
    }
    if let Some(region) = &r.region {
        store.push(format!("region {region}"));
    }
    if let Some(account) = &r.account {
        store.push(format!("account {account}"));
    }
    if let Some(key) = &r.service_account_key {
        store.push(format!("service account key {key}"));
    }
    store.push(format!(
        "timeout {} · {} retries",
        r.request_timeout, r.max_retries
    ));
    let _ = writeln!(out, "      {}", store.join(" · "));
    let credentials: Vec<String> = [
        ("access-key-id", &r.access_key_id),
        ("secret-access-key", &r.secret_access_key),
        ("session-token", &r.session_token),
        ("access-key", &r.access_key),
    ]
    .into_iter()
    .filter_map(|(name, source)| source.as_ref().map(|s| format!("{name} from {s}")))
    .collect();
    if !credentials.is_empty() {
        let _ = writeln!(out, "      {}", credentials.join(" · "));
    }
}

fn retention_text(r: &Retention) -> String {
    let counts = [
        ("last", r.keep_last),
        ("hourly", r.keep_hourly),
        ("daily", r.keep_daily),
        ("weekly", r.keep_weekly),
        ("monthly", r.keep_monthly),
        ("quarterly", r.keep_quarterly),
        ("yearly", r.keep_yearly),
    ];
    let mut parts: Vec<String> = counts
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} {v}")))
        .collect();
    if let Some(within) = r.keep_within {
        parts.push(format!("within {within}"));
    }
    parts.join(", ")
}

fn system_lines(out: &mut String, s: &System) {
    let _ = writeln!(out, "  {}  {}", s.id, s.name);
    let _ = writeln!(
        out,
        "      tier {} · site {} · host {} · department {}",
        s.tier, s.site, s.host, s.department
    );
    let paths: Vec<String> = s.paths.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(out, "      paths {}", paths.join(", "));
    if !s.excludes.is_empty() {
        let _ = writeln!(out, "      excludes {}", s.excludes.join(", "));
    }
    let chain: Vec<&str> = s.repositories.iter().map(|r| r.as_str()).collect();
    let _ = writeln!(out, "      repositories {}", chain.join(" -> "));
    if !s.depends_on.is_empty() {
        let deps: Vec<&str> = s.depends_on.iter().map(|d| d.as_str()).collect();
        let _ = writeln!(out, "      depends on {}", deps.join(", "));
    }
    for schedule in &s.schedules {
        let cron = &schedule.cron;
        // Show what is scheduled when it differs from what is written (5 fields, macros).
        let expression = if cron.expression() == cron.as_str() {
            String::new()
        } else {
            format!(" = {}", cron.expression())
        };
        let _ = writeln!(out, "      {} \"{cron}\"{expression}", schedule.job);
    }
    let _ = writeln!(out, "      retention {}", retention_text(&s.retention));
    for hook in &s.hooks {
        let mut line = format!(
            "      {} hook {} (timeout {})",
            hook.when,
            hook.command.join(" "),
            hook.timeout
        );
        for (name, source) in &hook.secret_env {
            let _ = write!(line, " {name} from {source}");
        }
        let _ = writeln!(out, "{line}");
    }
}
