//! The human listing of a loaded policy for `lifeboat policy show`: every entry with its
//! effective values (defaults filled in, durations normalised), in id order.
//!
//! Text only, deterministic, no colours or terminal queries. Secret *sources* are shown (a
//! variable name, a file path, a program); secret values are never resolved here. Drill plans
//! show their scope as resolved against the policy; the values of a drill command's `env` are
//! left out (only the names are shown).

use std::fmt::Write as _;

use super::drill::{DrillPlan, DrillScenarioKind, DrillStep, StepAction};
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

    let _ = writeln!(out, "\ndrills ({})", policy.drills.len());
    for drill in policy.drills.values() {
        drill_lines(&mut out, policy, drill);
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

fn ids<T: std::fmt::Display>(list: &[T]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn drill_lines(out: &mut String, policy: &Policy, d: &DrillPlan) {
    let zh = d
        .title_zh
        .as_deref()
        .map(|z| format!(" {z}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  {}  {}{zh}", d.id, d.title);
    let every = d
        .every
        .map(|e| format!("every {e}"))
        .unwrap_or_else(|| "due by the tiers' drill-every".into());
    let _ = writeln!(
        out,
        "      {} · {every} · on failure {}",
        d.drill_type,
        match d.on_failure {
            super::OnFailure::Continue => "continue",
            super::OnFailure::Stop => "stop",
        }
    );
    let s = &d.scenario;
    let scenario = match s.kind {
        DrillScenarioKind::SiteLoss => format!(
            "site-loss of {}",
            s.lost_site.as_ref().map_or("?", |x| x.as_str())
        ),
        DrillScenarioKind::ComponentLoss => format!(
            "component-loss of {}",
            s.system.as_ref().map_or("?", |x| x.as_str())
        ),
        DrillScenarioKind::Ransomware => format!(
            "ransomware, compromised for {}",
            s.compromised_for.map_or("?".into(), |x| x.to_string())
        ),
    };
    let _ = writeln!(out, "      scenario {scenario}");
    // The scope as resolved against this policy, then how it was written when it narrows.
    let systems: Vec<&str> = d
        .systems_in_scope(policy.systems.values())
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let mut scope = format!("      scope {}", systems.join(", "));
    if let Some(n) = d.scope.sample_per_tier {
        let _ = write!(scope, " (sample {n} per tier)");
    }
    let _ = writeln!(out, "{scope}");
    let written: Vec<String> = [
        ("sites", ids(&d.scope.sites)),
        ("systems", ids(&d.scope.systems)),
        ("tiers", ids(&d.scope.tiers)),
        ("exclude", ids(&d.scope.exclude)),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k} {v}"))
    .collect();
    if !written.is_empty() {
        let _ = writeln!(out, "        from {}", written.join(" · "));
    }
    let st = &d.standby;
    let mut standby = format!(
        "      standby {} host {} into {} · parallelism {}",
        st.site, st.host, st.restore_root, st.parallelism
    );
    if st.keep_restored {
        standby.push_str(" · keeps restored data");
    }
    if st.reserve_bytes > 0 {
        let _ = write!(standby, " · reserve {} bytes", st.reserve_bytes);
    }
    let _ = writeln!(out, "{standby}");
    for (n, step) in d.steps.iter().enumerate() {
        let _ = writeln!(out, "      {}. {}", n + 1, step_text(step));
    }
    let c = &d.criteria;
    let mut criteria: Vec<String> = [
        (c.verify_required, "verified"),
        (c.rpo_within_tier, "RPO within tier"),
        (c.rto_within_tier, "RTO within tier"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, text)| text.to_owned())
    .collect();
    if let Some(it) = c.max_it_rto {
        criteria.push(format!("IT RTO at most {it}"));
    }
    if let Some(business) = c.max_business_rto {
        criteria.push(format!("business RTO at most {business}"));
    }
    if criteria.is_empty() {
        criteria.push("none".into());
    }
    let _ = writeln!(out, "      criteria {}", criteria.join(" · "));
    if let Some(lead) = &d.organisation.lead {
        let _ = writeln!(out, "      lead {lead}");
    }
}

/// One step: `restore: restore per system · timeout 6h`,
/// `business: gate by operator (owners) · timeout 4h -> verify-pass`.
fn step_text(step: &DrillStep) -> String {
    let mut text = format!("{}: {}", step.name, step.action);
    if step.is_per_system() {
        text.push_str(" per system");
    }
    match step.action {
        StepAction::Command | StepAction::Failback => {
            if let Some(command) = &step.command {
                let _ = write!(text, " {}", command.join(" "));
            }
            let names: Vec<&str> = step.env.keys().map(String::as_str).collect();
            if !names.is_empty() {
                let _ = write!(text, " (env {})", names.join(", "));
            }
        }
        StepAction::Wait => {
            if let Some(d) = step.duration {
                let _ = write!(text, " {d}");
            }
        }
        StepAction::Gate => {
            if let Some(role) = step.role {
                let _ = write!(text, " by {role}");
            }
            if let Some(approver) = &step.approver {
                let _ = write!(text, " ({approver})");
            }
        }
        StepAction::Restore | StepAction::Verify => {}
    }
    let _ = write!(text, " · timeout {}", step.timeout);
    if let Some(mark) = step.effective_mark() {
        let _ = write!(text, " -> {mark}");
    }
    text
}
