//! What a drill achieved (standards §3.2–3.3): per system the drill-achieved RPO, IT RTO,
//! business RTO, RTO from declaration and decision latency, each against its target, with a
//! verdict and the reasons for it in sentences for people; the projected full RTO when only a
//! sample was restored; and the drill's overall verdict.
//!
//! Pure arithmetic on the timeline the orchestrator recorded: nothing here reads the clock,
//! chooses snapshots or decides what runs next. A figure that cannot be measured is `None` and
//! says so in the reasons; it is never guessed.
//!
//! # The rules
//! - Achieved RPO = `T_disaster − t_cap` of the snapshot restored, where `T_disaster` is
//!   `T_outage` unless the drill declared an earlier disaster instant; IT RTO = `T_system_ready −
//!   T_outage`, where a system's `T_system_ready` is the end of its last per-system step, or the
//!   drill-wide `system-ready` mark when that is later; business RTO = `T_service − T_outage`;
//!   RTO from declaration = `T_service − T_declare`; decision latency = `T_declare − T_outage`.
//! - Targets are the tier's, or the criteria's `max-it-rto`/`max-business-rto`.
//! - **Fail**: a step of the system failed; the restored tree did not verify; a figure exceeds
//!   its target (when the criteria judge it). A restore test is judged on RPO and IT RTO only.
//! - **Pass with conditions**: nothing failed, but something was not shown — no `T_service`
//!   (business RTO not measured), no verification when `verify-required`, no fail-back in a full
//!   switch-over (pitfall 9), a figure not measurable, or the system was only extrapolated.
//! - The drill's verdict is its worst system's; a drill with no system fails.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::assess::{Human, signed};
use crate::policy::{Criteria, DrillType, Policy, SystemId, TierId};

/// The drill-wide marks of the phased timeline (standards §3.3). `outage` is the drill start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// `T_outage`: the simulated outage (the drill start), which every RTO is measured from.
    pub outage: Timestamp,
    /// `T_disaster` (§3.2): the instant the data is lost, which the achieved RPO is measured
    /// from. `outage`, unless the drill declared an earlier instant ("what if we had lost the
    /// site at 02:00?"): the restore then shows the data as it was then, and the recovery is
    /// still timed from the drill's start, when it began.
    pub disaster: Timestamp,
    /// `T_declare`: the disaster declared.
    pub declare: Option<Timestamp>,
    /// `T_system_ready`: systems up at the standby site (a drill-wide mark, when a step sets it).
    pub system_ready: Option<Timestamp>,
    /// `T_verify_pass`: business verification signed off.
    pub verify_pass: Option<Timestamp>,
    /// `T_service`: service reopened to users.
    pub service: Option<Timestamp>,
    pub failback_start: Option<Timestamp>,
    /// `T_failback_done`: fail-back completed.
    pub failback_done: Option<Timestamp>,
}

impl Timeline {
    /// A timeline with only `T_outage` set (and `T_disaster` = `T_outage`).
    pub fn starting(outage: Timestamp) -> Self {
        Timeline {
            outage,
            disaster: outage,
            declare: None,
            system_ready: None,
            verify_pass: None,
            service: None,
            failback_start: None,
            failback_done: None,
        }
    }
}

/// What happened to one system in scope during the drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemTimes {
    pub system: SystemId,
    pub tier: TierId,
    /// Capture time of the snapshot restored (`None` when no restore point was found).
    pub t_cap: Option<Timestamp>,
    pub restore_start: Option<Timestamp>,
    pub restore_end: Option<Timestamp>,
    /// The end of the system's last per-system step (its own `T_system_ready`).
    pub ready: Option<Timestamp>,
    /// Bytes and files restored.
    pub bytes: u64,
    pub files: u64,
    /// The verify step's result: `None` when the system was not verified.
    pub verified: Option<bool>,
    /// Why a step of this system failed (or why it was stopped), when one did.
    pub failure: Option<String>,
    /// False when the system is in scope only for the projection (`sample-per-tier`).
    pub restored: bool,
}

/// How a system (or the drill) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// Nothing failed, but something was not shown (a figure not measured, no verification,
    /// no fail-back, only extrapolated).
    PassWithConditions,
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::PassWithConditions => "pass-with-conditions",
            Verdict::Fail => "fail",
        })
    }
}

/// The targets one system is judged against: its tier's, or the drill criteria's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub rpo_seconds: i64,
    pub it_rto_seconds: i64,
    pub business_rto_seconds: i64,
}

/// The targets of a system of `tier` under `criteria`; `None` when the tier is not in the policy.
pub fn targets(policy: &Policy, criteria: &Criteria, tier: &TierId) -> Option<Targets> {
    let t = policy.tiers.get(tier)?;
    let secs = |d: crate::policy::Duration| signed(d).as_secs();
    Some(Targets {
        rpo_seconds: secs(t.rpo),
        it_rto_seconds: secs(criteria.max_it_rto.unwrap_or(t.rto_it)),
        business_rto_seconds: secs(criteria.max_business_rto.unwrap_or(t.rto_business)),
    })
}

/// The figures and the verdict of one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemResult {
    pub system: SystemId,
    pub tier: TierId,
    /// `T_disaster − t_cap` of the snapshot restored.
    pub achieved_rpo_seconds: Option<i64>,
    pub rpo_target_seconds: i64,
    /// `T_system_ready − T_outage`.
    pub it_rto_seconds: Option<i64>,
    pub it_rto_target_seconds: i64,
    /// `T_service − T_outage`.
    pub business_rto_seconds: Option<i64>,
    pub business_rto_target_seconds: i64,
    /// `T_service − T_declare`.
    pub rto_from_declaration_seconds: Option<i64>,
    /// `T_declare − T_outage`.
    pub decision_latency_seconds: Option<i64>,
    /// Bytes restored ÷ (`T_restore_end − T_restore_start`).
    pub throughput_bytes_per_second: Option<f64>,
    pub verdict: Verdict,
    /// Why the verdict is not `pass` (and notes), as sentences.
    pub reasons: Vec<String>,
}

fn secs_between(later: Timestamp, earlier: Timestamp) -> i64 {
    later.duration_since(earlier).as_secs()
}

fn human(secs: i64) -> Human {
    Human(SignedDuration::from_secs(secs))
}

/// Measures one system of a drill of `drill_type` (see the module documentation for the rules).
pub fn measure_system(
    policy: &Policy,
    drill_type: DrillType,
    criteria: &Criteria,
    timeline: &Timeline,
    sys: &SystemTimes,
) -> SystemResult {
    let outage = timeline.outage;
    let mut fails: Vec<String> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let tier = &sys.tier;
    let t = targets(policy, criteria, tier);
    // Without targets there is nothing to compare with: only the figures are reported.
    let judge_rpo = t.is_some() && criteria.rpo_within_tier;
    let judge_rto = t.is_some() && criteria.rto_within_tier;
    if t.is_none() {
        fails.push(format!(
            "Tier {tier} of {} is not in the policy, so there is no target to judge it against.",
            sys.system
        ));
    }
    let t = t.unwrap_or(Targets {
        rpo_seconds: 0,
        it_rto_seconds: 0,
        business_rto_seconds: 0,
    });

    let achieved_rpo = sys.t_cap.map(|c| secs_between(timeline.disaster, c));
    let ready = match (sys.ready, timeline.system_ready) {
        (Some(own), Some(mark)) => Some(own.max(mark)),
        // No end of its own recorded, but the drill-wide mark says everything was up.
        (None, Some(mark)) if sys.restored && sys.failure.is_none() => Some(mark),
        (own, _) => own,
    };
    let it_rto = ready.map(|r| secs_between(r, outage));
    let business_rto = timeline.service.map(|s| secs_between(s, outage));
    let from_declaration = timeline
        .service
        .zip(timeline.declare)
        .map(|(s, d)| secs_between(s, d));
    let decision_latency = timeline.declare.map(|d| secs_between(d, outage));
    let throughput = sys
        .restore_start
        .zip(sys.restore_end)
        .map(|(s, e)| e.duration_since(s).as_secs_f64())
        .filter(|d| *d > 0.0 && sys.bytes > 0)
        .map(|d| sys.bytes as f64 / d);
    let switchover = drill_type != DrillType::RestoreTest;

    if !sys.restored {
        conditions.push(format!(
            "{} was not restored in this drill (only a sample of its tier was); its RTO is \
             extrapolated from the systems that were.",
            sys.system
        ));
    } else {
        if let Some(failure) = &sys.failure {
            fails.push(format!("{} failed: {failure}", sys.system));
        }
        match achieved_rpo {
            Some(rpo) if judge_rpo && rpo > t.rpo_seconds => fails.push(format!(
                "Achieved RPO {} exceeds the {tier} target of {}.",
                human(rpo),
                human(t.rpo_seconds)
            )),
            Some(_) => {}
            None => conditions.push(
                "Achieved RPO not measured: no snapshot's capture time is known for the restore."
                    .to_string(),
            ),
        }
        match it_rto {
            Some(rto) if judge_rto && rto > t.it_rto_seconds => fails.push(format!(
                "IT RTO {} exceeds the {tier} target of {}.",
                human(rto),
                human(t.it_rto_seconds)
            )),
            Some(_) => {}
            // A failed system is already a failure; not being ready is its consequence.
            None if sys.failure.is_some() => {}
            None => conditions
                .push("IT RTO not measured: the system never reached T_system_ready.".to_string()),
        }
        match (business_rto, switchover) {
            (Some(rto), true) if judge_rto && rto > t.business_rto_seconds => fails.push(format!(
                "Business RTO {} exceeds the {tier} target of {}.",
                human(rto),
                human(t.business_rto_seconds)
            )),
            (Some(_), _) => {}
            (None, true) => conditions.push(
                "Business RTO not measured: the drill recorded no T_service, so the service \
                 was never shown to reopen."
                    .to_string(),
            ),
            (None, false) => conditions.push(
                "Business RTO not measured: a restore test does not reopen the service."
                    .to_string(),
            ),
        }
        match sys.verified {
            Some(true) => {}
            Some(false) => fails.push(
                "The restored data did not verify against the snapshot's content hashes."
                    .to_string(),
            ),
            None if criteria.verify_required && sys.failure.is_none() => conditions.push(
                "The restored data was not verified against the snapshot, which the drill's \
                 criteria require."
                    .to_string(),
            ),
            None => {}
        }
        if drill_type == DrillType::FullSwitchover && timeline.failback_done.is_none() {
            conditions.push(
                "Fail-back was not completed, which a full switch-over drill must show."
                    .to_string(),
            );
        }
    }

    let verdict = if !fails.is_empty() {
        Verdict::Fail
    } else if !conditions.is_empty() {
        Verdict::PassWithConditions
    } else {
        Verdict::Pass
    };
    fails.extend(conditions);
    SystemResult {
        system: sys.system.clone(),
        tier: tier.clone(),
        achieved_rpo_seconds: achieved_rpo,
        rpo_target_seconds: t.rpo_seconds,
        it_rto_seconds: it_rto,
        it_rto_target_seconds: t.it_rto_seconds,
        business_rto_seconds: business_rto,
        business_rto_target_seconds: t.business_rto_seconds,
        rto_from_declaration_seconds: from_declaration,
        decision_latency_seconds: decision_latency,
        throughput_bytes_per_second: throughput,
        verdict,
        reasons: fails,
    }
}

/// The projected full IT RTO of a sampled drill (standards §3.3): fixed overheads + full
/// dataset size ÷ measured restore throughput.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub restored_bytes: u64,
    pub full_bytes: u64,
    /// What the restores did not account for: `T_system_ready − T_outage` of the last restored
    /// system minus the time spent restoring (preparation, verification, bring-up).
    pub fixed_overhead_seconds: i64,
    /// Bytes restored ÷ the wall-clock span of the restores (parallel restores count once).
    pub throughput_bytes_per_second: f64,
    pub projected_it_rto_seconds: i64,
    /// True when the full dataset is larger than what was restored: the figure is a
    /// projection, not a measurement.
    pub extrapolated: bool,
}

/// Projects the full IT RTO from the restored systems of `results`; `None` when nothing was
/// restored with measurable timings.
pub fn project(
    results: &[SystemTimes],
    full_bytes: u64,
    timeline: &Timeline,
) -> Option<Projection> {
    let restored: Vec<&SystemTimes> = results
        .iter()
        .filter(|s| s.restored && s.failure.is_none())
        .filter(|s| s.restore_start.is_some() && s.restore_end.is_some())
        .collect();
    let first = restored.iter().filter_map(|s| s.restore_start).min()?;
    let last = restored.iter().filter_map(|s| s.restore_end).max()?;
    let restored_bytes: u64 = restored.iter().map(|s| s.bytes).sum();
    // A restore faster than a millisecond is measured as one.
    let span = last.duration_since(first).as_secs_f64().max(0.001);
    if restored_bytes == 0 {
        return None;
    }
    let throughput = restored_bytes as f64 / span;
    let ready = restored
        .iter()
        .filter_map(|s| s.ready.or(s.restore_end))
        .max()
        .map_or(last, |r| r.max(last));
    let ready = timeline.system_ready.map_or(ready, |m| m.max(ready));
    let it_rto = ready.duration_since(timeline.outage).as_secs_f64();
    let fixed = (it_rto - span).max(0.0);
    let full = full_bytes.max(restored_bytes);
    let projected = fixed + full as f64 / throughput;
    Some(Projection {
        restored_bytes,
        full_bytes: full,
        fixed_overhead_seconds: fixed.round() as i64,
        throughput_bytes_per_second: throughput,
        projected_it_rto_seconds: projected.round() as i64,
        extrapolated: full > restored_bytes,
    })
}

/// The drill's verdict: the worst of its systems'. A drill with no system shows nothing and
/// fails.
pub fn overall(results: &[SystemResult]) -> Verdict {
    results
        .iter()
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::testkit::{policy, t};

    const OUTAGE: &str = "03-03 08:00";

    /// Declared at 08:30, service at 10:00: business RTO 2h, 1h 30m from declaration.
    fn timeline() -> Timeline {
        Timeline {
            declare: Some(t("03-03 08:30")),
            service: Some(t("03-03 10:00")),
            ..Timeline::starting(t(OUTAGE))
        }
    }

    /// fin (T1: RPO 4h, IT RTO 8h, business RTO 12h) captured 2h before T_outage, restored in
    /// an hour (3.6 GB), verified, ready 1h 30m after T_outage.
    fn fin() -> SystemTimes {
        SystemTimes {
            system: "fin".parse().unwrap(),
            tier: "T1".parse().unwrap(),
            t_cap: Some(t("03-03 06:00")),
            restore_start: Some(t("03-03 08:10")),
            restore_end: Some(t("03-03 09:10")),
            ready: Some(t("03-03 09:30")),
            bytes: 3_600_000_000,
            files: 1_000,
            verified: Some(true),
            failure: None,
            restored: true,
        }
    }

    #[test]
    fn figures_of_a_passing_switchover() {
        let r = measure_system(
            &policy(),
            DrillType::TargetedSwitchover,
            &Criteria::default(),
            &timeline(),
            &fin(),
        );
        assert_eq!(r.reasons, Vec::<String>::new());
        assert_eq!(r.verdict, Verdict::Pass);
        let h = 3600;
        assert_eq!(
            (
                r.achieved_rpo_seconds,
                r.it_rto_seconds,
                r.business_rto_seconds,
                r.rto_from_declaration_seconds,
                r.decision_latency_seconds
            ),
            (
                Some(2 * h),
                Some(h + h / 2),
                Some(2 * h),
                Some(h + h / 2),
                Some(h / 2)
            )
        );
        assert_eq!(
            (
                r.rpo_target_seconds,
                r.it_rto_target_seconds,
                r.business_rto_target_seconds
            ),
            (4 * h, 8 * h, 12 * h)
        );
        assert_eq!(r.throughput_bytes_per_second, Some(1_000_000.0));
    }

    /// A disaster declared at 07:00 for a drill started at 08:00: the data lost is counted from
    /// 07:00 (the snapshot of 06:00 is 1h old then), the recovery from the drill's start.
    #[test]
    fn a_declared_disaster_moves_the_rpo_and_leaves_the_rto_alone() {
        let declared = Timeline {
            disaster: t("03-03 07:00"),
            ..timeline()
        };
        let r = measure_system(
            &policy(),
            DrillType::TargetedSwitchover,
            &Criteria::default(),
            &declared,
            &fin(),
        );
        let h = 3600;
        assert_eq!(
            (
                r.achieved_rpo_seconds,
                r.it_rto_seconds,
                r.business_rto_seconds
            ),
            (Some(h), Some(h + h / 2), Some(2 * h))
        );
        assert_eq!(r.verdict, Verdict::Pass);
    }

    #[test]
    fn verdict_table() {
        use DrillType::*;
        use Verdict::*;
        type Case = (
            &'static str,
            DrillType,
            fn(&mut Timeline, &mut SystemTimes, &mut Criteria),
            Verdict,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "all within target",
                TargetedSwitchover,
                |_, _, _| {},
                Pass,
                &[],
            ),
            (
                "restore test: judged on RPO and IT RTO",
                RestoreTest,
                |tl, _, _| tl.service = None,
                PassWithConditions,
                &["Business RTO not measured: a restore test does not reopen the service."],
            ),
            (
                "restore test: a late service is not judged",
                RestoreTest,
                |tl, _, _| tl.service = Some(t("03-03 21:00")),
                Pass,
                &[],
            ),
            (
                "switch-over without T_service",
                TargetedSwitchover,
                |tl, _, _| tl.service = None,
                PassWithConditions,
                &[
                    "Business RTO not measured: the drill recorded no T_service, so the service \
                   was never shown to reopen.",
                ],
            ),
            (
                "IT RTO over",
                TargetedSwitchover,
                |_, s, _| s.ready = Some(t("03-03 17:00")),
                Fail,
                &["IT RTO 9h exceeds the T1 target of 8h."],
            ),
            (
                "the drill-wide system-ready mark is later than the system's own",
                TargetedSwitchover,
                |tl, s, c| {
                    tl.system_ready = Some(t("03-03 10:00"));
                    s.ready = Some(t("03-03 09:00"));
                    c.max_it_rto = "1h 59m".parse().ok();
                },
                Fail,
                &["IT RTO 2h exceeds the T1 target of 1h 59m."],
            ),
            (
                "no end of its own: the drill-wide mark",
                TargetedSwitchover,
                |tl, s, _| {
                    tl.system_ready = Some(t("03-03 16:30"));
                    s.ready = None;
                },
                Fail,
                &["IT RTO 8h 30m exceeds the T1 target of 8h."],
            ),
            (
                "criteria override the tier's IT RTO",
                TargetedSwitchover,
                |_, _, c| c.max_it_rto = "1h".parse().ok(),
                Fail,
                &["IT RTO 1h 30m exceeds the T1 target of 1h."],
            ),
            (
                "business RTO over",
                FullSwitchover,
                |tl, _, _| {
                    tl.service = Some(t("03-03 21:00"));
                    tl.failback_done = Some(t("03-03 23:00"));
                },
                Fail,
                &["Business RTO 13h exceeds the T1 target of 12h."],
            ),
            (
                "RPO over",
                TargetedSwitchover,
                |_, s, _| s.t_cap = Some(t("03-03 03:00")),
                Fail,
                &["Achieved RPO 5h exceeds the T1 target of 4h."],
            ),
            (
                "RPO over, not a criterion",
                TargetedSwitchover,
                |_, s, c| {
                    s.t_cap = Some(t("03-03 03:00"));
                    c.rpo_within_tier = false;
                },
                Pass,
                &[],
            ),
            (
                "not verified",
                TargetedSwitchover,
                |_, s, _| s.verified = None,
                PassWithConditions,
                &[
                    "The restored data was not verified against the snapshot, which the drill's \
                   criteria require.",
                ],
            ),
            (
                "not verified, not required",
                TargetedSwitchover,
                |_, s, c| {
                    s.verified = None;
                    c.verify_required = false;
                },
                Pass,
                &[],
            ),
            (
                "verify found a difference",
                RestoreTest,
                |_, s, _| s.verified = Some(false),
                Fail,
                &["The restored data did not verify against the snapshot's content hashes."],
            ),
            (
                "a step failed",
                TargetedSwitchover,
                |_, s, _| {
                    s.failure = Some("step restore: pack 3f2a is damaged".into());
                    s.ready = None;
                    s.verified = None;
                },
                Fail,
                &["fin failed: step restore: pack 3f2a is damaged"],
            ),
            (
                "full switch-over without fail-back",
                FullSwitchover,
                |_, _, _| {},
                PassWithConditions,
                &["Fail-back was not completed, which a full switch-over drill must show."],
            ),
            (
                "full switch-over with fail-back",
                FullSwitchover,
                |tl, _, _| tl.failback_done = Some(t("03-03 12:00")),
                Pass,
                &[],
            ),
            (
                "only extrapolated",
                TargetedSwitchover,
                |_, s, _| {
                    s.restored = false;
                    s.ready = None;
                },
                PassWithConditions,
                &[
                    "fin was not restored in this drill (only a sample of its tier was); its RTO \
                   is extrapolated from the systems that were.",
                ],
            ),
            (
                "tier not in the policy",
                TargetedSwitchover,
                |_, s, _| s.tier = "T9".parse().unwrap(),
                Fail,
                &[
                    "Tier T9 of fin is not in the policy, so there is no target to judge it against.",
                ],
            ),
        ];
        let p = policy();
        for (name, drill_type, change, verdict, reasons) in cases {
            let (mut tl, mut sys, mut criteria) = (timeline(), fin(), Criteria::default());
            change(&mut tl, &mut sys, &mut criteria);
            let r = measure_system(&p, *drill_type, &criteria, &tl, &sys);
            let got: Vec<&str> = r.reasons.iter().map(String::as_str).collect();
            assert_eq!((r.verdict, got.as_slice()), (*verdict, *reasons), "{name}");
        }
    }

    /// Two systems restored in parallel (3 GB over 1h 30m of wall clock), ready 2h after
    /// T_outage: 30m of fixed overheads; 9 GB in full take 4h 30m more.
    #[test]
    fn projection_of_a_sample() {
        let a = SystemTimes {
            bytes: 1_000_000_000,
            ..fin()
        };
        let b = SystemTimes {
            system: "hr".parse().unwrap(),
            restore_start: Some(t("03-03 08:40")),
            restore_end: Some(t("03-03 09:40")),
            ready: Some(t("03-03 10:00")),
            bytes: 2_000_000_000,
            ..fin()
        };
        let sampled_out = SystemTimes {
            system: "ops".parse().unwrap(),
            restored: false,
            restore_start: None,
            restore_end: None,
            ready: None,
            ..fin()
        };
        let p = project(
            &[a.clone(), b.clone(), sampled_out],
            9_000_000_000,
            &timeline(),
        )
        .unwrap();
        assert_eq!(
            (
                p.restored_bytes,
                p.full_bytes,
                p.fixed_overhead_seconds,
                p.projected_it_rto_seconds,
                p.extrapolated
            ),
            (3_000_000_000, 9_000_000_000, 1800, 1800 + 16_200, true)
        );
        assert!((p.throughput_bytes_per_second - 3e9 / 5400.0).abs() < 1e-6);
        // Everything restored: the projection is the measurement.
        let p = project(&[a.clone(), b], 3_000_000_000, &timeline()).unwrap();
        assert_eq!((p.projected_it_rto_seconds, p.extrapolated), (7200, false));
        // Nothing restored successfully: nothing to project from.
        let failed = SystemTimes {
            failure: Some("x".into()),
            ..a
        };
        assert_eq!(project(&[failed], 9, &timeline()), None);
        assert_eq!(project(&[], 9, &timeline()), None);
    }

    #[test]
    fn overall_is_the_worst() {
        use Verdict::*;
        let cases: &[(&[Verdict], Verdict)] = &[
            (&[], Fail),
            (&[Pass], Pass),
            (&[Pass, PassWithConditions], PassWithConditions),
            (&[PassWithConditions, Fail, Pass], Fail),
        ];
        let p = policy();
        for (verdicts, want) in cases {
            let results: Vec<SystemResult> = verdicts
                .iter()
                .map(|v| SystemResult {
                    verdict: *v,
                    ..measure_system(
                        &p,
                        DrillType::RestoreTest,
                        &Criteria::default(),
                        &timeline(),
                        &fin(),
                    )
                })
                .collect();
            assert_eq!(overall(&results), *want, "{verdicts:?}");
        }
        assert_eq!(
            serde_json::to_string(&PassWithConditions).unwrap(),
            "\"pass-with-conditions\""
        );
    }
}
