//! Whether a system's repositories can meet its tier's 3-2-1-1 digits at all: copies (production
//! included), off-site copies by the tier's off-site class, immutable copies, and kinds of
//! storage. What the copies actually hold is measured at run time, not here.

use std::collections::BTreeSet;

use super::{At, Ctx, k};
use crate::policy::load::Section;
use crate::policy::model::{OffsiteClass, Repository, System, Tier};
use crate::policy::repo_url::StorageKind;

fn list(repos: &[&Repository], describe: impl Fn(&Repository) -> String) -> String {
    repos
        .iter()
        .map(|r| format!("{} ({})", r.id, describe(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "1 copy", "2 copies".
pub(super) fn copies(n: usize, adjective: &str) -> String {
    format!("{n} {adjective}{}", if n == 1 { "copy" } else { "copies" })
}

/// Whether the system's repositories can meet its tier's 3-2-1-1 digits at all (production
/// counts as one copy, on local disk). What the copies actually hold is measured at run time.
pub(super) fn check_feasibility(
    ctx: &mut Ctx<'_, '_>,
    s: &System,
    tier: &Tier,
    repos: &[&Repository],
) {
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
