//! The drill record (standards §4.1): the sections of the after-action report the software can
//! fill, as one value whose canonical JSON is hashed and chained to the previous drill's record,
//! so the history of drills is tamper-evident; and the evidence bundle (logs, summaries,
//! hash comparisons) as one zstd-compressed tar archive with its sha256.
//!
//! Pure: building, sealing and verifying records and packing bytes into a bundle. Storing the
//! records, reading evidence files and rendering the page are the coordinator's and the CLI's.
//! Sections people fill (corrective actions, lessons learned, signatures) are left empty here.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::measure::{Projection, SystemResult, Targets, Verdict};
use super::select::RestorePoint;
use crate::policy::{
    DrillId, DrillScenarioKind, DrillType, Organisation, SiteId, SystemId, TierId,
};

/// The `previous_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A drill's record: §4.1 sections 1–10, 13 and 14, in that order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub header: Header,
    /// §4.1 item 2: per system, the targets it was judged against.
    pub objectives: Vec<Objective>,
    pub scope: Scope,
    pub scenario: ScenarioSection,
    pub organisation: OrganisationSection,
    /// §4.1 item 6: the readiness check before the start.
    pub readiness: Vec<ReadinessItem>,
    /// §4.1 item 7: every mark set, with who or what recorded it.
    pub timeline: Vec<TimelineEntry>,
    pub step_log: Vec<StepLogEntry>,
    /// §4.1 item 8: one per system in scope.
    pub results: Vec<SystemRecord>,
    /// The projected full RTO when only a sample was restored.
    pub projection: Option<Projection>,
    pub verdict: Verdict,
    /// §4.1 item 9: departures from the plan (steps skipped, stopped, retried by hand).
    pub deviations: Vec<String>,
    /// §4.1 item 10, derived from failures, breaches and deviations ([`findings`]).
    pub findings: Vec<Finding>,
    /// §4.1 item 13: the files of the evidence bundle and the bundle's own hash.
    pub evidence: Vec<EvidenceItem>,
    pub bundle_sha256: Option<String>,
    /// §4.1 item 14, left for people to fill in ([`blank_sign_off`]).
    pub sign_off: Vec<SignOff>,
    /// `record_hash` of the previous finished drill's record ([`GENESIS_HASH`] for the first).
    pub previous_hash: String,
    /// sha256 (hex) of this record's canonical JSON with `record_hash` empty ([`seal`]).
    pub record_hash: String,
}

/// §4.1 item 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub drill_id: Uuid,
    pub plan: DrillId,
    pub title: String,
    pub title_zh: Option<String>,
    pub drill_type: DrillType,
    /// What the regulator expects of a drill of this type ([`regulatory_flag`]).
    pub regulatory: Option<String>,
    /// The digest of the policy in force when the drill started.
    pub policy_digest: String,
    pub lifeboat_version: String,
    pub started_by: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub status: DrillEnd,
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillEnd {
    /// Every step ran (some systems may have failed with `on-failure = continue`).
    Completed,
    /// A failure stopped it (`on-failure = stop`).
    Stopped,
    /// An operator ended it.
    Aborted,
    /// The readiness check failed; nothing was restored.
    NotReady,
}

impl fmt::Display for DrillEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DrillEnd::Completed => "completed",
            DrillEnd::Stopped => "stopped",
            DrillEnd::Aborted => "aborted",
            DrillEnd::NotReady => "not-ready",
        })
    }
}

/// What the regulator expects of a drill of `drill_type`, for the header.
pub fn regulatory_flag(drill_type: DrillType) -> Option<String> {
    match drill_type {
        DrillType::RestoreTest => None,
        DrillType::TargetedSwitchover => Some(
            "专项 targeted switch-over: counts toward the annual switch-over drill (114号 第34条)"
                .to_string(),
        ),
        DrillType::FullSwitchover => Some(
            "全面 full switch-over with fail-back: notify the regulator beforehand and send the \
             summary afterwards (114号 第35条); counts toward the three-yearly full drill"
                .to_string(),
        ),
    }
}

/// §4.1 item 2, one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    pub system: SystemId,
    pub tier: TierId,
    pub rpo_target_seconds: i64,
    pub it_rto_target_seconds: i64,
    pub business_rto_target_seconds: i64,
    pub verify_required: bool,
}

impl Objective {
    pub fn new(system: SystemId, tier: TierId, targets: Targets, verify_required: bool) -> Self {
        Objective {
            system,
            tier,
            rpo_target_seconds: targets.rpo_seconds,
            it_rto_target_seconds: targets.it_rto_seconds,
            business_rto_target_seconds: targets.business_rto_seconds,
            verify_required,
        }
    }
}

/// §4.1 item 3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub restored: Vec<SystemId>,
    /// In scope but not restored (`sample-per-tier`): their RTO is only projected.
    pub extrapolated: Vec<SystemId>,
    /// Named by the plan's `exclude`.
    pub excluded: Vec<SystemId>,
}

/// §4.1 item 4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioSection {
    pub kind: DrillScenarioKind,
    pub lost_site: Option<SiteId>,
    pub lost_system: Option<SystemId>,
    /// `T_outage`: the simulated outage, the drill's start (every RTO is measured from it).
    pub outage: Timestamp,
    /// `T_disaster` of §3.2 when the drill declared it before its start ("what if we had lost
    /// the site at 02:00?"): restore points were chosen as they were then and the achieved RPO
    /// is measured from it. Absent: `T_disaster` = `outage`. (Absent rather than repeated, so
    /// records sealed before it existed keep their hashes.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_disaster: Option<Timestamp>,
    pub compromise_at: Option<Timestamp>,
    /// Which copies the scenario allows restoring from, in words.
    pub allowed_copies: String,
}

/// §4.1 item 5: the people the plan names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationSection {
    pub lead: Option<String>,
    pub participants: Vec<String>,
    pub observers: Vec<String>,
}

impl From<&Organisation> for OrganisationSection {
    fn from(o: &Organisation) -> Self {
        OrganisationSection {
            lead: o.lead.clone(),
            participants: o.participants.clone(),
            observers: o.observers.clone(),
        }
    }
}

/// One item of the readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessItem {
    /// What was checked ("linfen-finance restore point", "standby agent dr-1").
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

/// One mark of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `outage`, `declare`, …, or `restore-start:<system>`-style per-system marks.
    pub mark: String,
    pub at: Timestamp,
    /// The person who approved a gate, or `lifeboat` for marks set by a step.
    pub recorded_by: String,
    /// What set it (the step name, "drill start", "agent report").
    pub source: String,
}

/// One entry of the step log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLogEntry {
    pub at: Timestamp,
    pub step: String,
    pub system: Option<SystemId>,
    /// `started`, `succeeded`, `failed`, `timed-out`, `approved`, `skipped`, …
    pub event: String,
    pub detail: Option<String>,
}

/// §4.1 item 8, one system: its figures and what it was restored from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemRecord {
    pub result: SystemResult,
    pub restore_point: Option<RestorePoint>,
    pub bytes_restored: u64,
    pub files_restored: u64,
    /// The restored tree's digest as the verify step computed it.
    pub tree_digest: Option<String>,
}

/// §4.1 item 10 categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCategory {
    Technical,
    Process,
    Communication,
    Documentation,
    Supplier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub category: FindingCategory,
    pub severity: Severity,
    pub text: String,
}

/// One file of the evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

impl EvidenceItem {
    /// The annex entry of a file.
    pub fn of(name: &str, content: &[u8]) -> Self {
        EvidenceItem {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(content)),
            bytes: content.len() as u64,
        }
    }
}

/// One signature of §4.1 item 14.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    pub role: String,
    pub name: Option<String>,
    pub signed_at: Option<Timestamp>,
}

/// The sign-off block with every role and no signature.
pub fn blank_sign_off() -> Vec<SignOff> {
    [
        "drill lead",
        "IT owner",
        "business owner (verification)",
        "BCM lead department",
        "IT-risk department",
        "observer / audit",
    ]
    .into_iter()
    .map(|role| SignOff {
        role: role.to_string(),
        name: None,
        signed_at: None,
    })
    .collect()
}

/// The findings a drill's results, readiness and deviations give: failures and breaches are
/// high-severity technical findings, unmet conditions medium process findings, systems only
/// extrapolated low technical ones, failed readiness items high technical ones, deviations
/// medium process ones.
pub fn findings(
    results: &[SystemResult],
    readiness: &[ReadinessItem],
    deviations: &[String],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for item in readiness.iter().filter(|i| !i.ok) {
        out.push(Finding {
            category: FindingCategory::Technical,
            severity: Severity::High,
            text: format!("Not ready: {}: {}", item.subject, item.detail),
        });
    }
    for r in results {
        for reason in &r.reasons {
            let (category, severity) = match r.verdict {
                Verdict::Fail if is_condition(reason) => {
                    (FindingCategory::Process, Severity::Medium)
                }
                Verdict::Fail => (FindingCategory::Technical, Severity::High),
                _ if reason.contains("was not restored in this drill") => {
                    (FindingCategory::Technical, Severity::Low)
                }
                _ => (FindingCategory::Process, Severity::Medium),
            };
            out.push(Finding {
                category,
                severity,
                text: format!("{}: {reason}", r.system),
            });
        }
    }
    for d in deviations {
        out.push(Finding {
            category: FindingCategory::Process,
            severity: Severity::Medium,
            text: format!("Deviation from the plan: {d}"),
        });
    }
    out
}

/// Whether a reason of a failed system is one of its unmet conditions rather than the failure.
fn is_condition(reason: &str) -> bool {
    reason.contains("not measured")
        || reason.contains("was not verified")
        || reason.contains("Fail-back was not completed")
}

/// The canonical JSON of a record: serde_json of the record with `record_hash` empty, keys in
/// struct order. What [`seal`] hashes.
pub fn canonical_json(record: &DrillRecord) -> Vec<u8> {
    let mut r = record.clone();
    r.record_hash = String::new();
    // Serialising these types cannot fail: every map key is a string and no type has a
    // fallible `Serialize`.
    serde_json::to_vec(&r).unwrap_or_default()
}

fn hash_of(record: &DrillRecord) -> String {
    hex::encode(Sha256::digest(canonical_json(record)))
}

/// Links `record` to the previous record's hash and sets its own hash.
pub fn seal(mut record: DrillRecord, previous_hash: &str) -> DrillRecord {
    record.previous_hash = previous_hash.to_string();
    record.record_hash = hash_of(&record);
    record
}

/// Why a chain of drill records does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "drill {drill} is the first record but its previous_hash is {found}, not {GENESIS_HASH}: \
         an earlier record is missing or the link was altered"
    )]
    FirstLink { drill: Uuid, found: String },
    #[error(
        "drill {drill} links to previous_hash {found}, but the record before it (drill \
         {previous}) has hash {expected}: a record was removed, inserted or altered"
    )]
    BrokenLink {
        drill: Uuid,
        previous: Uuid,
        expected: String,
        found: String,
    },
    #[error(
        "drill {drill}: the stored record_hash {stored} does not match the record's content \
         (hash {computed}): the record was altered after it was sealed"
    )]
    HashMismatch {
        drill: Uuid,
        stored: String,
        computed: String,
    },
}

/// Verifies a chain of records, oldest first: every hash recomputed, every link equal to the
/// previous record's hash. The number of records verified.
pub fn verify_chain(records: &[DrillRecord]) -> Result<usize, ChainError> {
    let mut previous: Option<&DrillRecord> = None;
    for r in records {
        let drill = r.header.drill_id;
        match previous {
            None if r.previous_hash != GENESIS_HASH => {
                return Err(ChainError::FirstLink {
                    drill,
                    found: r.previous_hash.clone(),
                });
            }
            Some(p) if r.previous_hash != p.record_hash => {
                return Err(ChainError::BrokenLink {
                    drill,
                    previous: p.header.drill_id,
                    expected: p.record_hash.clone(),
                    found: r.previous_hash.clone(),
                });
            }
            _ => {}
        }
        let computed = hash_of(r);
        if computed != r.record_hash {
            return Err(ChainError::HashMismatch {
                drill,
                stored: r.record_hash.clone(),
                computed,
            });
        }
        previous = Some(r);
    }
    Ok(records.len())
}

/// Why the evidence bundle could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("evidence file \"{name}\" cannot be put in the bundle: {source}")]
    File {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the evidence bundle could not be written: {0}")]
    Write(#[source] std::io::Error),
}

/// Packs `files` (name, content) into a tar archive compressed with zstd; returns it with its
/// sha256 (hex). The archive is reproducible: the same files give the same bytes (fixed
/// modification time, mode and owner).
pub fn bundle(files: &[(String, Vec<u8>)]) -> Result<(Vec<u8>, String), BundleError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, content.as_slice())
            .map_err(|source| BundleError::File {
                name: name.clone(),
                source,
            })?;
    }
    let archive = builder.into_inner().map_err(BundleError::Write)?;
    let compressed = zstd::encode_all(archive.as_slice(), 3).map_err(BundleError::Write)?;
    let hash = hex::encode(Sha256::digest(&compressed));
    Ok((compressed, hash))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::assess::testkit::t;
    use crate::drill::measure::{SystemTimes, Timeline, measure_system};
    use crate::policy::Criteria;

    fn result(verdict_change: impl FnOnce(&mut SystemTimes)) -> SystemResult {
        let mut sys = SystemTimes {
            system: "fin".parse().unwrap(),
            tier: "T1".parse().unwrap(),
            t_cap: Some(t("03-03 06:00")),
            restore_start: Some(t("03-03 08:10")),
            restore_end: Some(t("03-03 09:10")),
            ready: Some(t("03-03 09:30")),
            bytes: 1000,
            files: 10,
            verified: Some(true),
            failure: None,
            restored: true,
        };
        verdict_change(&mut sys);
        let timeline = Timeline::starting(t("03-03 08:00"));
        measure_system(
            &crate::assess::testkit::policy(),
            DrillType::RestoreTest,
            &Criteria::default(),
            &timeline,
            &sys,
        )
    }

    fn record(n: u128, started: &str) -> DrillRecord {
        let r = result(|_| {});
        DrillRecord {
            header: Header {
                drill_id: Uuid::from_u128(n),
                plan: "branch-restore".parse().unwrap(),
                title: "Branch restore test".into(),
                title_zh: Some("支行恢复测试".into()),
                drill_type: DrillType::RestoreTest,
                regulatory: regulatory_flag(DrillType::RestoreTest),
                policy_digest: "ab".repeat(32),
                lifeboat_version: "0.1.0".into(),
                started_by: "alice".into(),
                started_at: t(started),
                finished_at: Some(
                    t(started)
                        .saturating_add(jiff::SignedDuration::from_hours(2))
                        .unwrap(),
                ),
                status: DrillEnd::Completed,
            },
            objectives: vec![Objective {
                system: r.system.clone(),
                tier: r.tier.clone(),
                rpo_target_seconds: r.rpo_target_seconds,
                it_rto_target_seconds: r.it_rto_target_seconds,
                business_rto_target_seconds: r.business_rto_target_seconds,
                verify_required: true,
            }],
            scope: Scope {
                restored: vec![r.system.clone()],
                ..Scope::default()
            },
            scenario: ScenarioSection {
                kind: DrillScenarioKind::SiteLoss,
                lost_site: Some("branch".parse().unwrap()),
                lost_system: None,
                outage: t(started),
                declared_disaster: None,
                compromise_at: None,
                allowed_copies: "off-site copies".into(),
            },
            organisation: OrganisationSection::default(),
            readiness: vec![ReadinessItem {
                subject: "standby agent dr1".into(),
                ok: true,
                detail: "online".into(),
            }],
            timeline: vec![TimelineEntry {
                mark: "outage".into(),
                at: t(started),
                recorded_by: "alice".into(),
                source: "drill start".into(),
            }],
            step_log: vec![],
            results: vec![SystemRecord {
                result: r.clone(),
                restore_point: None,
                bytes_restored: 1000,
                files_restored: 10,
                tree_digest: Some("cd".repeat(32)),
            }],
            projection: None,
            verdict: r.verdict,
            deviations: vec![],
            findings: findings(&[r], &[], &[]),
            evidence: vec![EvidenceItem::of("restore-fin.json", b"{}")],
            bundle_sha256: None,
            sign_off: blank_sign_off(),
            previous_hash: String::new(),
            record_hash: String::new(),
        }
    }

    fn chain() -> Vec<DrillRecord> {
        let mut out: Vec<DrillRecord> = Vec::new();
        for (i, started) in ["03-01 08:00", "03-02 08:00", "03-03 08:00"]
            .iter()
            .enumerate()
        {
            let previous = out
                .last()
                .map_or(GENESIS_HASH.to_string(), |r| r.record_hash.clone());
            out.push(seal(record(i as u128 + 1, started), &previous));
        }
        out
    }

    #[test]
    fn a_sealed_chain_verifies_even_after_a_round_trip_through_reordered_json() {
        let records = chain();
        assert_eq!(verify_chain(&records), Ok(3));
        assert_eq!(records[0].previous_hash, GENESIS_HASH);
        assert_eq!(records[1].previous_hash, records[0].record_hash);
        assert_eq!(records[0].record_hash.len(), 64);
        // Stored as JSON whose keys came back sorted (jsonb, serde_json::Value): same hashes.
        let reread: Vec<DrillRecord> = records
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::to_value(r).unwrap();
                serde_json::from_str(&v.to_string()).unwrap()
            })
            .collect();
        assert_eq!(reread, records);
        assert_eq!(verify_chain(&reread), Ok(3));
        assert_eq!(verify_chain(&[]), Ok(0));
    }

    #[test]
    fn tampering_is_named() {
        let id = Uuid::from_u128;
        let records = chain();

        let mut altered = records.clone();
        altered[1].results[0].result.achieved_rpo_seconds = Some(60);
        match verify_chain(&altered) {
            Err(ChainError::HashMismatch { drill, stored, .. }) => {
                assert_eq!((drill, stored), (id(2), records[1].record_hash.clone()))
            }
            other => panic!("{other:?}"),
        }

        let removed = vec![records[0].clone(), records[2].clone()];
        let err = verify_chain(&removed).unwrap_err();
        assert_eq!(
            err,
            ChainError::BrokenLink {
                drill: id(3),
                previous: id(1),
                expected: records[0].record_hash.clone(),
                found: records[1].record_hash.clone(),
            }
        );
        assert!(
            err.to_string()
                .contains("a record was removed, inserted or altered")
        );

        // Re-sealing an altered record does not help: the next link breaks.
        let mut resealed = records.clone();
        resealed[1].verdict = Verdict::Pass;
        resealed[1].deviations.push("nothing happened".into());
        resealed[1] = seal(resealed[1].clone(), &records[0].record_hash);
        assert!(matches!(
            verify_chain(&resealed),
            Err(ChainError::BrokenLink { drill, .. }) if drill == id(3)
        ));

        let headless = records[1..].to_vec();
        assert!(matches!(
            verify_chain(&headless),
            Err(ChainError::FirstLink { drill, .. }) if drill == id(2)
        ));
    }

    #[test]
    fn the_bundle_is_reproducible_and_holds_the_files() {
        let files = vec![
            ("timeline.json".to_string(), b"[1,2,3]".to_vec()),
            ("logs/restore-fin.log".to_string(), vec![7u8; 100_000]),
        ];
        let (bytes, hash) = bundle(&files).unwrap();
        assert_eq!(bundle(&files).unwrap(), (bytes.clone(), hash.clone()));
        assert_eq!(hash, hex::encode(Sha256::digest(&bytes)));
        let tar_bytes = zstd::decode_all(bytes.as_slice()).unwrap();
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            found.push((name, content));
        }
        assert_eq!(found, files);

        let err = bundle(&[("../escape".to_string(), vec![])]).unwrap_err();
        assert!(
            err.to_string().starts_with("evidence file \"../escape\""),
            "{err}"
        );
    }

    #[test]
    fn findings_from_failures_conditions_readiness_and_deviations() {
        let failed = result(|s| s.ready = Some(t("03-03 17:00")));
        let conditional = result(|s| s.verified = None);
        let readiness = [ReadinessItem {
            subject: "fin restore point".into(),
            ok: false,
            detail: "no copy the site-loss scenario allows".into(),
        }];
        let got: Vec<(FindingCategory, Severity, String)> = findings(
            &[failed, conditional],
            &readiness,
            &["the health check was run by hand".to_string()],
        )
        .into_iter()
        .map(|f| (f.category, f.severity, f.text))
        .collect();
        use FindingCategory::*;
        use Severity::*;
        assert_eq!(
            got,
            [
                (
                    Technical,
                    High,
                    "Not ready: fin restore point: no copy the site-loss scenario allows".into()
                ),
                (
                    Technical,
                    High,
                    "fin: IT RTO 9h exceeds the T1 target of 8h.".into()
                ),
                (
                    Process,
                    Medium,
                    "fin: Business RTO not measured: a restore test does not reopen the service."
                        .into()
                ),
                (
                    Process,
                    Medium,
                    "fin: Business RTO not measured: a restore test does not reopen the service."
                        .into()
                ),
                (
                    Process,
                    Medium,
                    "fin: The restored data was not verified against the snapshot, which the \
                     drill's criteria require."
                        .into()
                ),
                (
                    Process,
                    Medium,
                    "Deviation from the plan: the health check was run by hand".into()
                ),
            ]
        );
    }

    #[test]
    fn sign_off_is_blank_and_statuses_are_kebab_case() {
        let s = blank_sign_off();
        assert_eq!(s.len(), 6);
        assert!(s.iter().all(|x| x.name.is_none() && x.signed_at.is_none()));
        assert_eq!(
            serde_json::to_string(&DrillEnd::NotReady).unwrap(),
            "\"not-ready\""
        );
        assert!(
            regulatory_flag(DrillType::FullSwitchover)
                .unwrap()
                .contains("第35条")
        );
    }
}
