//! Text rendering of command results for people. JSON output is the serde form of the same values.

use crate::engine::{CheckReport, ForgetReport, InitOutcome, RestoreReport, SnapshotInfo};
use crate::run::{Outcome, RunRecord};

/// Bytes in binary units, e.g. `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "ok",
        Outcome::Partial => "PARTIAL",
        Outcome::Failed => "FAILED",
    }
}

pub fn init(list: &[InitOutcome]) {
    for i in list {
        let what = if i.created { "created" } else { "exists " };
        let from = i
            .chunker_from
            .as_ref()
            .map(|f| format!(" (chunker of {f})"))
            .unwrap_or_default();
        println!("{what} {:<24} {}{from}", i.repository, i.location);
        if let Some(w) = &i.warning {
            println!("  warning: {w}");
        }
    }
}

fn repositories(record: &RunRecord) {
    for r in &record.repositories {
        let detail = match (&r.error, r.available_at) {
            (Some(e), _) => e.message.clone(),
            (None, Some(at)) => {
                let n = r.snapshots.len();
                let what = if record.kind == crate::run::RunKind::Copy || n != 1 {
                    format!("{n} snapshot(s)")
                } else {
                    "snapshot".to_string()
                };
                format!(
                    "{what} available at {at}, +{} in {:.1}s",
                    bytes(r.bytes_added),
                    r.seconds
                )
            }
            (None, None) => format!("{:.1}s", r.seconds),
        };
        println!(
            "  {:<8} {:<24} {:<9} {}",
            outcome(r.outcome),
            r.repository,
            r.location,
            detail
        );
    }
}

pub fn backup(record: &RunRecord) {
    let system = record.system.as_deref().unwrap_or("?");
    match &record.snapshot_id {
        Some(id) => println!(
            "backup of {system}: snapshot {} ({})",
            &id[..8.min(id.len())],
            outcome(record.outcome)
        ),
        None => println!("backup of {system}: {}", outcome(record.outcome)),
    }
    if let Some(s) = &record.source {
        println!(
            "  source: {} files ({} new, {} changed, {} unmodified), {} dirs, {}",
            s.files,
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            s.dirs,
            bytes(s.bytes)
        );
    }
    if let Some(c) = record.capture_time {
        println!("  capture time: {c}");
    }
    repositories(record);
    for w in &record.warnings {
        println!("  warning: {w}");
    }
    println!("  run {}", record.run_id);
}

pub fn copy(record: &RunRecord) {
    println!(
        "copy of {}: {}",
        record.system.as_deref().unwrap_or("?"),
        outcome(record.outcome)
    );
    repositories(record);
}

pub fn snapshots(list: &[SnapshotInfo]) {
    if list.is_empty() {
        println!("no snapshots");
        return;
    }
    println!(
        "{:<10} {:<22} {:<26} {:<20} {:>10}  paths",
        "id", "repository", "time", "system", "size"
    );
    for s in list {
        let time = s.time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
        println!(
            "{:<10} {:<22} {:<26} {:<20} {:>10}  {}",
            s.short_id,
            s.repository,
            time,
            s.system,
            s.bytes.map(bytes).unwrap_or_default(),
            s.paths.join(" ")
        );
    }
    println!("{} snapshot(s)", list.len());
}

pub fn restore(r: &RestoreReport) {
    let verb = if r.dry_run {
        "would restore"
    } else {
        "restored"
    };
    println!(
        "{verb} snapshot {} from {} to {}: {} files ({}), {} unchanged, {} dirs in {:.1}s",
        r.snapshot.short_id,
        r.snapshot.repository,
        r.target.display(),
        r.files_to_restore,
        bytes(r.bytes_to_restore),
        r.files_unchanged,
        r.dirs_to_create,
        r.seconds
    );
    if let Some(v) = r.verified_files {
        println!("verified: {v} files match the snapshot's content hashes");
    }
}

pub fn check(r: &CheckReport) {
    let depth = match (&r.read_data_subset, r.read_data) {
        (Some(s), _) => format!("structure + data subset {s}"),
        (None, true) => "structure + all data".into(),
        (None, false) => "structure".into(),
    };
    let status = if r.errors == 0 { "ok" } else { "ERRORS" };
    println!(
        "check {:<24} {depth}: {status} ({} errors, {} warnings)",
        r.repository, r.errors, r.warnings
    );
    for f in &r.findings {
        println!("  {}: {}", f.level, f.message);
    }
}

pub fn forget(reports: &[ForgetReport]) {
    for r in reports {
        if let Some(why) = &r.skipped {
            println!("{}: skipped ({why})", r.repository);
            continue;
        }
        let verb = "plan: forget";
        println!(
            "{}: {verb} {} of {} snapshot(s)",
            r.repository,
            r.forgotten,
            r.decisions.len()
        );
        for d in &r.decisions {
            let time = d.snapshot.time.strftime("%Y-%m-%d %H:%M").to_string();
            let action = if d.keep { "keep  " } else { "forget" };
            println!(
                "  {action} {} {time}  {}",
                d.snapshot.short_id,
                d.reasons.join(", ")
            );
        }
    }
}

pub fn forget_done(reports: &[ForgetReport]) {
    for r in reports {
        match (&r.skipped, r.pruned_packs) {
            (Some(why), _) if why.starts_with("failed") => println!("{}: {why}", r.repository),
            (Some(_), _) => {}
            (None, Some(p)) => println!(
                "{}: forgot {} snapshot(s); prune: {p} pack(s) to delete",
                r.repository, r.forgotten
            ),
            (None, None) => println!("{}: forgot {} snapshot(s)", r.repository, r.forgotten),
        }
    }
}
