//! The agent's scheduler: which of this host's jobs are due now, when the others run next, which
//! are late, and which read-data subset a run reads.
//!
//! Pure domain code. It does no I/O, reads no clock (every function takes `now`), spawns nothing
//! and knows no engine. The agent loop owns the rest: it persists the [`History`], starts the runs
//! [`select_runnable`] picks, and enforces the global concurrency limit.
//!
//! # Slots, time zones and DST
//!
//! A job's *slots* are the instants named by its crons, read as wall-clock time in the time zone
//! of the system's site. The `cron` crate walks wall-clock times (evaluated in `chrono::Utc`,
//! treated as floating local time). jiff maps each one to an instant with the "compatible"
//! rule (RFC 5545, `java.time`):
//!
//! - a wall-clock time that a spring-forward gap skips runs once, moved forward by the length of
//!   the gap (New York, 2026-03-08: a daily 02:30 job runs at 03:30 EDT);
//! - a wall-clock time that a fall-back fold repeats runs once, at the earlier instant (New York,
//!   2026-11-01: a daily 01:30 job runs at 01:30 EDT and not again at 01:30 EST; an hourly job
//!   has no 01:00 EST run that night).
//!
//! A job's slots form a set of instants. When several wall-clock times map to the same instant,
//! the job runs once: a `*/15` job maps 02:00–02:45 of a skipped hour onto 03:00–03:45 EDT,
//! which also exist in their own right.
//!
//! # When a job is due
//!
//! Each slot gets a start time, `run_at` = slot + a jitter in `[0, jitter_max)`. The jitter is a
//! hash of (host, system, job, slot), so it is the same after a restart and differs between
//! branches. It is also kept below a tenth of the time to the job's next slot, so jitter cannot
//! eat a short schedule's RPO. A slot is *owed* if it comes after the job's [`JobHistory`]
//! reference point:
//!
//! - `last_slot`, the slot of the last run started, when there is one;
//! - otherwise, for a `backup`: nothing. A system without a backup is unprotected, so its first
//!   backup is due at once, without jitter;
//! - otherwise `first_seen`, when the agent first saw the job. Other jobs never run for slots
//!   from before they were assigned.
//!
//! A job is **due** when one of its owed slots at or before `now` has reached its `run_at`. A due
//! job runs **once**, for the latest owed slot (its [`DueJob::slot`]). Slots missed while the
//! host was down fold into that one run; they are counted in [`DueReason::Scheduled`].
//!
//! A due job is **late** when its oldest owed slot (for a first backup, `first_seen`) is more than
//! `max(jitter_max, LATE_AFTER)` in the past. By then it should have started even with the largest
//! jitter, and it has not. The cause is a host or agent that was down, or the concurrency limit.
//!
//! # What the runtime must do
//!
//! 1. Keep a [`History`] on disk. Call [`History::observe`] with the current jobs before planning,
//!    and save the history when it returns true. That keeps `first_seen` across restarts; without
//!    it a new job counts as first seen *now* on every call.
//! 2. Call [`plan`] whenever it wakes up. Wake up at [`Plan::next_wake`], when a run finishes and
//!    when the policy changes, and at least once a minute in case the clock jumps.
//! 3. Start what [`select_runnable`] returns. Call [`History::mark_started`] **when a run starts**
//!    and save the history. Its slot is then spent whatever the outcome: a failing job runs once
//!    per slot, not in a tight loop, and a crash does not re-run a slot forever. Retrying earlier
//!    is the runtime's decision. Call [`History::mark_finished`] when the run ends.
//! 4. For read-data runs, ask [`read_data_subset`] for each repository copy.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::Utc;
use jiff::civil;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::{Cron, JobKind, Policy, SystemId, TierId, TimeZone};
use crate::run::Outcome;

/// A due job is late once its oldest owed slot is this far in the past (or `jitter_max`, if
/// longer): the scheduler's tolerance for a loop that wakes up late or a queue behind the
/// concurrency limit.
pub const LATE_AFTER: Duration = Duration::from_secs(10 * 60);

/// Jitter never delays a run by more than this fraction (1/N) of the time to the job's next
/// slot. With a 15-minute backup and a 15-minute `jitter_max`, jitter alone would double the RPO.
const JITTER_SHARE: u32 = 10;

/// How many missed slots [`DueReason::Scheduled`] counts before it stops counting (a year of a
/// 5-second schedule is not worth walking).
const SKIPPED_COUNT_CAP: usize = 10_000;

/// Read-data subsets are sized over this many windows ahead.
const READ_DATA_WINDOWS: i32 = 12;

/// At most this many read-data slots are looked at when sizing subsets.
const READ_DATA_MAX_SLOTS: usize = 100_000;

/// How far either side of an instant the zone's transitions are looked at when wall-clock slots
/// are put in instant order. Two offsets differ by less than 52 h (jiff's limit is ±25:59:59), and
/// so does a gap. A transition more than twice that away cannot reorder slots near the instant.
const REORDER_REACH: SignedDuration = SignedDuration::from_hours(5 * 24);

// ---------------------------------------------------------------------------------------------
// Slots

/// A job's crons in its site's time zone: the set of instants it runs at (see the module docs
/// for gaps and folds). Several crons for one job are one set; an instant named twice is one slot.
#[derive(Debug, Clone)]
pub struct ZonedSchedule {
    crons: Vec<Cron>,
    tz: TimeZone,
}

impl ZonedSchedule {
    pub fn new(crons: Vec<Cron>, tz: TimeZone) -> Self {
        ZonedSchedule { crons, tz }
    }

    pub fn crons(&self) -> &[Cron] {
        &self.crons
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The slots strictly after `t`, earliest first, each once. Finite: the `cron` crate stops at
    /// the year 2100.
    pub fn after(&self, t: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        self.walk(t, Direction::Forward)
    }

    /// The slots at or before `t`, latest first, each once.
    pub fn at_or_before(&self, t: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        self.walk(t, Direction::Backward)
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        self.after(t).next()
    }

    /// The last slot at or before `t`.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        self.at_or_before(t).next()
    }

    fn walk(&self, bound: Timestamp, dir: Direction) -> Merged<'_> {
        let walks = self
            .crons
            .iter()
            .map(|c| Walk::new(c.schedule(), self.tz.tz(), bound, dir).peekable())
            .collect();
        Merged {
            walks,
            dir,
            last: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Ascending, strictly after the bound.
    Forward,
    /// Descending, at or before the bound.
    Backward,
}

impl Direction {
    /// True if `a` comes out before `b` in this direction.
    fn first<T: Ord>(self, a: &T, b: &T) -> bool {
        match self {
            Direction::Forward => a < b,
            Direction::Backward => a > b,
        }
    }
}

/// The slots of one cron, one way from a bound. Wall-clock times come from the `cron` crate in
/// order. Their instants come almost in order: a gap time maps past the start of the wall-clock
/// hour after it. So each instant is held until the walk has gone far enough that no later
/// wall-clock time can map before it, which is the zone's offset spread around that instant.
struct Walk<'s> {
    tz: &'s jiff::tz::TimeZone,
    wall: cron::ScheduleIterator<'s, Utc>,
    dir: Direction,
    bound: Timestamp,
    /// Instants read but not yet handed out, each with the wall-clock time past which no later
    /// wall-clock time can map before it.
    held: BTreeMap<Timestamp, civil::DateTime>,
    /// The last wall-clock time read.
    frontier: Option<civil::DateTime>,
    /// The last instant handed out: one reached again is the same slot.
    last: Option<Timestamp>,
    exhausted: bool,
}

impl<'s> Walk<'s> {
    fn new(
        schedule: &'s cron::Schedule,
        tz: &'s jiff::tz::TimeZone,
        bound: Timestamp,
        dir: Direction,
    ) -> Self {
        // A slot on the right side of `bound` has a wall-clock time on the right side of
        // `bound`'s wall-clock time, give or take the offset spread.
        let wall_bound = tz.to_datetime(bound);
        let spread = offset_spread(tz, bound);
        let start = match dir {
            // `cron`'s walk forward starts strictly after its start.
            Direction::Forward => wall_bound
                .checked_sub(spread)
                .unwrap_or(civil::DateTime::MIN),
            // `cron`'s walk backward starts strictly before its start (whole seconds).
            Direction::Backward => wall_bound
                .checked_add(spread)
                .and_then(|d| d.checked_add(SignedDuration::from_secs(1)))
                .unwrap_or(civil::DateTime::MAX),
        };
        // Every jiff civil time fits chrono's range; the fallback is unreachable and yields
        // nothing.
        let floating = to_floating(start);
        Walk {
            tz,
            wall: schedule.after(&floating.unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)),
            dir,
            bound,
            held: BTreeMap::new(),
            frontier: None,
            last: None,
            exhausted: floating.is_none(),
        }
    }

    fn in_range(&self, t: Timestamp) -> bool {
        let beyond_last = self.last.is_none_or(|last| self.dir.first(&last, &t));
        beyond_last
            && match self.dir {
                Direction::Forward => t > self.bound,
                Direction::Backward => t <= self.bound,
            }
    }

    /// The wall-clock time past which no wall-clock time maps on the wrong side of `t`.
    fn release_point(&self, t: Timestamp) -> civil::DateTime {
        let wall = self.tz.to_datetime(t);
        let spread = offset_spread(self.tz, t);
        match self.dir {
            Direction::Forward => wall.checked_add(spread).unwrap_or(civil::DateTime::MAX),
            Direction::Backward => wall.checked_sub(spread).unwrap_or(civil::DateTime::MIN),
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        loop {
            let head = match self.dir {
                Direction::Forward => self.held.first_key_value(),
                Direction::Backward => self.held.last_key_value(),
            };
            match head {
                Some((&t, release)) => {
                    let safe = self.exhausted
                        || self.frontier.is_some_and(|f| match self.dir {
                            Direction::Forward => f >= *release,
                            Direction::Backward => f <= *release,
                        });
                    if safe {
                        self.held.remove(&t);
                        self.last = Some(t);
                        return Some(t);
                    }
                }
                None if self.exhausted => return None,
                None => {}
            }
            let wall = match self.dir {
                Direction::Forward => self.wall.next(),
                Direction::Backward => self.wall.next_back(),
            };
            let Some(wall) = wall else {
                self.exhausted = true;
                continue;
            };
            let Some(wall) = from_floating(&wall) else {
                continue;
            };
            self.frontier = Some(wall);
            // Out of jiff's range (beyond the year 9999): not a slot.
            let Ok(t) = self.tz.to_ambiguous_timestamp(wall).compatible() else {
                continue;
            };
            if self.in_range(t) {
                let release = self.release_point(t);
                self.held.insert(t, release);
            }
        }
    }
}

/// Several crons' walks merged into one ordered set.
struct Merged<'s> {
    walks: Vec<std::iter::Peekable<Walk<'s>>>,
    dir: Direction,
    last: Option<Timestamp>,
}

impl Iterator for Merged<'_> {
    type Item = Timestamp;

    fn next(&mut self) -> Option<Timestamp> {
        loop {
            let dir = self.dir;
            let (index, t) = self
                .walks
                .iter_mut()
                .enumerate()
                .filter_map(|(i, w)| w.peek().map(|t| (i, *t)))
                .reduce(|a, b| if dir.first(&b.1, &a.1) { b } else { a })?;
            if let Some(walk) = self.walks.get_mut(index) {
                walk.next();
            }
            if self.last != Some(t) {
                self.last = Some(t);
                return Some(t);
            }
        }
    }
}

/// How far apart the zone's offsets are within [`REORDER_REACH`] of `at`: zero away from
/// transitions, the size of the jump near one.
fn offset_spread(tz: &jiff::tz::TimeZone, at: Timestamp) -> SignedDuration {
    let from = at.checked_sub(REORDER_REACH).unwrap_or(Timestamp::MIN);
    let to = at.checked_add(REORDER_REACH).unwrap_or(Timestamp::MAX);
    let first = tz.to_offset(from).seconds();
    let (low, high) = tz
        .following(from)
        .take_while(|t| t.timestamp() <= to)
        .map(|t| t.offset().seconds())
        .fold((first, first), |(lo, hi), s| (lo.min(s), hi.max(s)));
    SignedDuration::from_secs(i64::from(high) - i64::from(low))
}

/// A wall-clock time as the `cron` crate walks it: a UTC value standing for floating local time.
fn to_floating(dt: civil::DateTime) -> Option<chrono::DateTime<Utc>> {
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(dt.year()),
        u32::try_from(dt.month()).ok()?,
        u32::try_from(dt.day()).ok()?,
    )?;
    let time = date.and_hms_nano_opt(
        u32::try_from(dt.hour()).ok()?,
        u32::try_from(dt.minute()).ok()?,
        u32::try_from(dt.second()).ok()?,
        u32::try_from(dt.subsec_nanosecond()).ok()?,
    )?;
    Some(time.and_utc())
}

fn from_floating(dt: &chrono::DateTime<Utc>) -> Option<civil::DateTime> {
    use chrono::{Datelike, Timelike};
    civil::DateTime::new(
        i16::try_from(dt.year()).ok()?,
        i8::try_from(dt.month()).ok()?,
        i8::try_from(dt.day()).ok()?,
        i8::try_from(dt.hour()).ok()?,
        i8::try_from(dt.minute()).ok()?,
        i8::try_from(dt.second()).ok()?,
        0,
    )
    .ok()
}

// ---------------------------------------------------------------------------------------------
// Jobs of a host

/// One job of one system: what runs and when.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub system: SystemId,
    /// The system's tier, for start order (`T0` before `T1`).
    pub tier: TierId,
    pub job: JobKind,
    pub schedule: ZonedSchedule,
}

/// The jobs of the systems whose `host` equals `host` exactly, one per (system, job), ordered by
/// system id then job. A system with several schedules for one job gets one job with all their
/// crons. The time zone is that of the system's site.
pub fn jobs_for_host(policy: &Policy, host: &str) -> Vec<JobSpec> {
    let mut jobs = Vec::new();
    for system in policy.systems.values().filter(|s| s.host == host) {
        // A loaded policy resolves every site; a system without one has no time zone to run in.
        let Some(site) = policy.sites.get(&system.site) else {
            continue;
        };
        let mut crons: BTreeMap<JobKind, Vec<Cron>> = BTreeMap::new();
        for schedule in &system.schedules {
            crons
                .entry(schedule.job)
                .or_default()
                .push(schedule.cron.clone());
        }
        jobs.extend(crons.into_iter().map(|(job, crons)| JobSpec {
            system: system.id.clone(),
            tier: system.tier.clone(),
            job,
            schedule: ZonedSchedule::new(crons, site.timezone.clone()),
        }));
    }
    jobs
}

// ---------------------------------------------------------------------------------------------
// Jitter

/// The start delay of `system`'s `job` for `slot` on `host`: deterministic, in `[0, bound)` at
/// millisecond resolution, zero if `bound` is under a millisecond. A hash of all four inputs, so
/// it survives restarts and spreads branches out.
pub fn jitter(
    host: &str,
    system: &SystemId,
    job: JobKind,
    slot: Timestamp,
    bound: Duration,
) -> Duration {
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    if bound_ms == 0 {
        return Duration::ZERO;
    }
    let mut hash = Sha256::new();
    for field in [host, system.as_str(), &job.to_string()] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hash.update((field.len() as u64).to_le_bytes());
        hash.update(field.as_bytes());
    }
    hash.update(slot.as_second().to_le_bytes());
    hash.update(slot.subsec_nanosecond().to_le_bytes());
    let digest = hash.finalize();
    let Some(head) = digest.first_chunk::<8>() else {
        return Duration::ZERO;
    };
    Duration::from_millis(u64::from_le_bytes(*head) % bound_ms)
}

/// When the run for `slot` starts: the slot plus its [`jitter`]. The jitter is bounded by
/// `jitter_max` and by a tenth of the time to the job's next slot.
pub fn run_at(spec: &JobSpec, slot: Timestamp, options: &PlanOptions) -> Timestamp {
    let interval = spec
        .schedule
        .next_after(slot)
        .and_then(|next| Duration::try_from(next.duration_since(slot)).ok());
    let bound = match interval {
        Some(interval) => options.jitter_max.min(interval / JITTER_SHARE),
        None => options.jitter_max,
    };
    let delay = jitter(&options.host, &spec.system, spec.job, slot, bound);
    slot.checked_add(delay).unwrap_or(slot)
}

// ---------------------------------------------------------------------------------------------
// History

/// What the scheduler remembers about one job between calls and across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobHistory {
    /// When this agent first saw the job in its assignment. A job other than `backup` that has
    /// never run owes only the slots after this.
    pub first_seen: Timestamp,
    /// The slot of the last run started (it covers every slot up to it). This field alone
    /// decides what is owed.
    #[serde(default)]
    pub last_slot: Option<Timestamp>,
    /// When the last run started (for status; the plan does not read it).
    #[serde(default)]
    pub last_started: Option<Timestamp>,
    /// When the last run ended (for status).
    #[serde(default)]
    pub last_finished: Option<Timestamp>,
    /// How the last run ended (for status).
    #[serde(default)]
    pub last_outcome: Option<Outcome>,
}

impl JobHistory {
    /// A job just seen, never run.
    pub fn new(first_seen: Timestamp) -> Self {
        JobHistory {
            first_seen,
            last_slot: None,
            last_started: None,
            last_finished: None,
            last_outcome: None,
        }
    }
}

/// Every job's [`JobHistory`], by system and job. Serialises as
/// `{ "<system>": { "<job>": { "first-seen": …, … } } }`. Entries of jobs no longer assigned are
/// kept: they are small, and a job that comes back keeps its place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct History(BTreeMap<SystemId, BTreeMap<JobKind, JobHistory>>);

impl History {
    pub fn get(&self, system: &str, job: JobKind) -> Option<&JobHistory> {
        self.0.get(system).and_then(|jobs| jobs.get(&job))
    }

    pub fn insert(&mut self, system: SystemId, job: JobKind, history: JobHistory) {
        self.0.entry(system).or_default().insert(job, history);
    }

    /// Records `first_seen = now` for each job without history. Returns true if it recorded
    /// any (then save the history).
    pub fn observe(&mut self, jobs: &[JobSpec], now: Timestamp) -> bool {
        let mut added = false;
        for spec in jobs {
            if self.get(spec.system.as_str(), spec.job).is_none() {
                self.insert(spec.system.clone(), spec.job, JobHistory::new(now));
                added = true;
            }
        }
        added
    }

    /// A run of `due` started at `now`: its slot, and every slot before it, is spent.
    pub fn mark_started(&mut self, due: &DueJob, now: Timestamp) {
        let h = self
            .0
            .entry(due.system.clone())
            .or_default()
            .entry(due.job)
            .or_insert_with(|| JobHistory::new(now));
        h.last_slot = Some(h.last_slot.map_or(due.slot, |s| s.max(due.slot)));
        h.last_started = Some(now);
    }

    /// The run of `system`'s `job` ended at `now`.
    pub fn mark_finished(
        &mut self,
        system: &SystemId,
        job: JobKind,
        now: Timestamp,
        outcome: Outcome,
    ) {
        let h = self
            .0
            .entry(system.clone())
            .or_default()
            .entry(job)
            .or_insert_with(|| JobHistory::new(now));
        h.last_finished = Some(now);
        h.last_outcome = Some(outcome);
    }
}

// ---------------------------------------------------------------------------------------------
// Plan

/// The agent's settings the plan depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// This agent's host name, hashed into the jitter so that branches spread out.
    pub host: String,
    /// Runs start up to (but not including) this long after their slot. Zero turns jitter off.
    pub jitter_max: Duration,
}

impl PlanOptions {
    /// How long past its oldest owed slot a due job may wait before it counts as late.
    pub fn late_tolerance(&self) -> Duration {
        self.jitter_max.max(LATE_AFTER)
    }
}

/// Why a job is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueReason {
    /// A backup that has never run: nothing protects the system yet.
    FirstBackup,
    /// A slot came. `skipped` counts the earlier owed slots this run also stands for (missed
    /// while the host was down, or held back), up to 10 000.
    Scheduled { skipped: u32 },
    /// Asked for by an operator ("back up now").
    Forced,
}

/// A job that should start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueJob {
    pub system: SystemId,
    pub job: JobKind,
    /// The slot this run stands for. [`History::mark_started`] records it as `last_slot`. For a
    /// first backup it is the latest slot at or before `now` (or `now` if the schedule has
    /// none yet); for a forced run, `now`.
    pub slot: Timestamp,
    /// When it became due to start: the jittered start of the latest owed slot that has reached
    /// it (`now` for a first backup or forced run).
    pub run_at: Timestamp,
    /// Its oldest owed slot (for a first backup, `first_seen`), from which lateness is measured.
    pub due_since: Timestamp,
    pub reason: DueReason,
}

impl DueJob {
    /// A run an operator asked for, due at once. Not late; it spends every slot up to `now`.
    pub fn forced(system: SystemId, job: JobKind, now: Timestamp) -> Self {
        DueJob {
            system,
            job,
            slot: now,
            run_at: now,
            due_since: now,
            reason: DueReason::Forced,
        }
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Not due: its next run is in the future.
    Waiting,
    /// Due, within the tolerance.
    Due,
    /// Due for longer than [`PlanOptions::late_tolerance`] and not started.
    Late,
}

/// One job's status, for `lifeboat agent status` and heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRun {
    pub system: SystemId,
    pub job: JobKind,
    pub state: JobState,
    pub last_slot: Option<Timestamp>,
    /// The slot of the job's next run. For a waiting job that may be a slot just past whose
    /// jitter has not run out yet. For a due job it is the first slot after `now`. `None` if
    /// the schedule has no more slots.
    pub next_slot: Option<Timestamp>,
    /// When that run starts (slot + jitter).
    pub next_run_at: Option<Timestamp>,
}

/// What to do now, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The jobs due now, in start order: backups first, then copy, check, forget, read-data;
    /// within each, by tier id (`T0` before `T1`), then system id.
    pub due: Vec<DueJob>,
    /// The due jobs that are late, in the same order (a subset of `due`).
    pub late: Vec<DueJob>,
    /// Every job, in the order given to [`plan`].
    pub next: Vec<NextRun>,
    /// The earliest `next_run_at` of a waiting job: when planning again can find more due.
    pub next_wake: Option<Timestamp>,
}

/// Backups first (they bound the RPO), then copies (they bound the site-loss RPO), checks,
/// retention, and read-data last (the longest run and the least urgent).
fn start_rank(job: JobKind) -> u8 {
    match job {
        JobKind::Backup => 0,
        JobKind::Copy => 1,
        JobKind::Check => 2,
        JobKind::Forget => 3,
        JobKind::ReadData => 4,
    }
}

/// Plans `jobs` at `now` (see the module docs for the rules). A job missing from `history`
/// counts as first seen `now`. Job `(system, job)` pairs are expected to be unique, as
/// [`jobs_for_host`] makes them.
pub fn plan(jobs: &[JobSpec], history: &History, now: Timestamp, options: &PlanOptions) -> Plan {
    let tolerance =
        SignedDuration::try_from(options.late_tolerance()).unwrap_or(SignedDuration::MAX);
    let mut due: Vec<(&TierId, DueJob, bool)> = Vec::new();
    let mut next = Vec::with_capacity(jobs.len());
    let mut next_wake: Option<Timestamp> = None;
    for spec in jobs {
        let history = history
            .get(spec.system.as_str(), spec.job)
            .copied()
            .unwrap_or_else(|| JobHistory::new(now));
        let (state, next_slot, next_run_at) = match assess(spec, &history, now, options) {
            Assessment::Due(d) => {
                let late = now.duration_since(d.due_since) > tolerance;
                due.push((&spec.tier, d, late));
                let upcoming = upcoming(spec, now, options);
                let state = if late { JobState::Late } else { JobState::Due };
                (state, upcoming.map(|u| u.0), upcoming.map(|u| u.1))
            }
            Assessment::Waiting(upcoming) => {
                if let Some((_, at)) = upcoming {
                    next_wake = Some(next_wake.map_or(at, |w| w.min(at)));
                }
                (
                    JobState::Waiting,
                    upcoming.map(|u| u.0),
                    upcoming.map(|u| u.1),
                )
            }
        };
        next.push(NextRun {
            system: spec.system.clone(),
            job: spec.job,
            state,
            last_slot: history.last_slot,
            next_slot,
            next_run_at,
        });
    }
    due.sort_by(|(tier_a, a, _), (tier_b, b, _)| {
        (start_rank(a.job), tier_a, &a.system).cmp(&(start_rank(b.job), tier_b, &b.system))
    });
    let late = due
        .iter()
        .filter(|(_, _, late)| *late)
        .map(|(_, d, _)| d.clone())
        .collect();
    Plan {
        due: due.into_iter().map(|(_, d, _)| d).collect(),
        late,
        next,
        next_wake,
    }
}

enum Assessment {
    Due(DueJob),
    /// Not due; the next run's (slot, run_at), if the schedule has one.
    Waiting(Option<(Timestamp, Timestamp)>),
}

fn assess(spec: &JobSpec, h: &JobHistory, now: Timestamp, options: &PlanOptions) -> Assessment {
    let owed_after = match h.last_slot {
        Some(slot) => slot,
        None if spec.job == JobKind::Backup => {
            return Assessment::Due(DueJob {
                system: spec.system.clone(),
                job: spec.job,
                slot: spec.schedule.latest_at_or_before(now).unwrap_or(now),
                run_at: now,
                due_since: h.first_seen,
                reason: DueReason::FirstBackup,
            });
        }
        None => h.first_seen,
    };
    // Owed slots, latest first. Any slot more than `jitter_max` old has reached its run_at, so
    // this stops within `jitter_max` of `now` however long the host was down.
    let mut latest: Option<Timestamp> = None;
    let mut pending: Option<(Timestamp, Timestamp)> = None;
    for slot in spec
        .schedule
        .at_or_before(now)
        .take_while(|s| *s > owed_after)
    {
        let latest = *latest.get_or_insert(slot);
        let at = run_at(spec, slot, options);
        if at <= now {
            let mut earlier = spec.schedule.after(owed_after).take_while(|s| *s < latest);
            let oldest = earlier.next();
            let skipped = oldest.map_or(0, |_| {
                1 + earlier.take(SKIPPED_COUNT_CAP.saturating_sub(1)).count()
            });
            return Assessment::Due(DueJob {
                system: spec.system.clone(),
                job: spec.job,
                slot: latest,
                run_at: at,
                due_since: oldest.unwrap_or(latest),
                reason: DueReason::Scheduled {
                    skipped: u32::try_from(skipped).unwrap_or(u32::MAX),
                },
            });
        }
        if pending.is_none_or(|(_, r)| at < r) {
            pending = Some((slot, at));
        }
    }
    // Owed slots still in their jitter, or none: whichever run starts first. A `last_slot` in the
    // future (the clock went back) is not run again.
    let upcoming = upcoming(spec, now.max(owed_after), options);
    let first = match (pending, upcoming) {
        (Some(p), Some(u)) => Some(if u.1 < p.1 { u } else { p }),
        (p, u) => p.or(u),
    };
    Assessment::Waiting(first)
}

/// The first slot after `t` and its run_at.
fn upcoming(spec: &JobSpec, t: Timestamp, options: &PlanOptions) -> Option<(Timestamp, Timestamp)> {
    let slot = spec.schedule.next_after(t)?;
    Some((slot, run_at(spec, slot, options)))
}

/// Picks the due jobs that may start now, keeping `due`'s order. It skips a job whose system is
/// in `running_systems`, starts at most one job per system (the next call, after that run ends,
/// gets the next one), and returns at most `free_slots` jobs.
pub fn select_runnable<S: AsRef<str>>(
    due: &[DueJob],
    running_systems: &[S],
    free_slots: usize,
) -> Vec<DueJob> {
    let mut picked: Vec<DueJob> = Vec::new();
    for d in due {
        if picked.len() >= free_slots {
            break;
        }
        let busy = running_systems
            .iter()
            .any(|s| s.as_ref() == d.system.as_str())
            || picked.iter().any(|p| p.system == d.system);
        if !busy {
            picked.push(d.clone());
        }
    }
    picked
}

// ---------------------------------------------------------------------------------------------
// Read-data rotation

/// Which share of a repository's packs a read-data run reads: rustic's `--read-data-subset n/m`
/// (rustic assigns packs to subsets by pack id, so reading `1/m` … `m/m` in turn reads them
/// all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadDataSubset {
    /// 1-based, `1..=m`.
    pub n: u32,
    /// At least 1.
    pub m: u32,
}

impl fmt::Display for ReadDataSubset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.n, self.m)
    }
}

/// The most subsets a repository's packs can be split into while each pack is still read again
/// within `window` (the tier's `read_data_window`). That is the fewest runs that follow any run
/// within one window, over the runs of the next 12 windows from `now`. A run followed by a run
/// exactly one window later counts. At least 1, where 1 means read everything every time.
///
/// This is conservative. A daily schedule gives 7 for a 7-day window, but 6 when a 25-hour
/// fall-back day falls in the horizon. The guarantee assumes runs happen at their slots.
pub fn read_data_runs_per_window(
    schedule: &ZonedSchedule,
    window: Duration,
    now: Timestamp,
) -> u32 {
    let Ok(window) = SignedDuration::try_from(window) else {
        return 1;
    };
    if window.is_zero() {
        return 1;
    }
    let horizon = window
        .checked_mul(READ_DATA_WINDOWS)
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX);
    let end = horizon.checked_add(window).unwrap_or(Timestamp::MAX);
    let slots: Vec<Timestamp> = schedule
        .after(now)
        .take_while(|s| *s < end)
        .take(READ_DATA_MAX_SLOTS)
        .collect();
    // Slots are complete up to `end`, or, if the cap cut them short, up to the last one taken.
    let complete_to = if slots.len() == READ_DATA_MAX_SLOTS {
        slots.last().copied().unwrap_or(end)
    } else {
        end
    };
    let mut fewest: Option<usize> = None;
    let mut j = 0;
    for (i, &slot) in slots.iter().enumerate() {
        let reach = slot.checked_add(window).unwrap_or(Timestamp::MAX);
        if slot >= horizon || reach > complete_to {
            break;
        }
        j = j.max(i + 1);
        while slots.get(j).is_some_and(|t| *t <= reach) {
            j += 1;
        }
        let following = j - i - 1;
        fewest = Some(fewest.map_or(following, |f| f.min(following)));
    }
    // No run with a whole window after it among those taken: the first run's count so far is a
    // lower bound.
    let fewest = fewest.unwrap_or_else(|| slots.len().saturating_sub(1));
    u32::try_from(fewest).unwrap_or(u32::MAX).max(1)
}

/// The subset the next read-data run of one repository copy reads. `counter` is that
/// repository's rotation counter: the runtime keeps one per repository and adds 1 after each
/// read-data run that read its subset. `m` is [`read_data_runs_per_window`], and
/// `n = counter % m + 1`.
///
/// The counter need not be reset: consecutive counters visit every subset. But a changed `m`
/// (a new schedule or window, or a DST day entering the horizon) restarts the rotation. Subsets
/// of different `m` do not line up, so reads under the old `m` count for nothing, and the full
/// read is done again only `m` runs after the change.
pub fn read_data_subset(
    schedule: &ZonedSchedule,
    window: Duration,
    now: Timestamp,
    counter: u64,
) -> ReadDataSubset {
    let m = read_data_runs_per_window(schedule, window, now);
    // `counter % m < m ≤ u32::MAX`, so the conversion cannot fail.
    let n = u32::try_from(counter % u64::from(m)).unwrap_or(0) + 1;
    ReadDataSubset { n, m }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn zone(name: &str) -> TimeZone {
        name.parse().unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn schedule(crons: &[&str], tz: &str) -> ZonedSchedule {
        let crons = crons
            .iter()
            .map(|c| c.parse().unwrap_or_else(|e| panic!("{c}: {e}")))
            .collect();
        ZonedSchedule::new(crons, zone(tz))
    }

    fn spec(system: &str, tier: &str, job: JobKind, cron: &str, tz: &str) -> JobSpec {
        JobSpec {
            system: system.parse().unwrap(),
            tier: tier.parse().unwrap(),
            job,
            schedule: schedule(&[cron], tz),
        }
    }

    fn sid(s: &str) -> SystemId {
        s.parse().unwrap()
    }

    /// An instant as wall-clock time with its offset in `tz`, so a wrong offset shows.
    fn show(t: Timestamp, tz: &TimeZone) -> String {
        t.to_zoned(tz.tz().clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    fn no_jitter() -> PlanOptions {
        PlanOptions {
            host: "branch-01".into(),
            jitter_max: Duration::ZERO,
        }
    }

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    /// History of one job whose last run was for `last_slot`.
    fn ran(system: &str, job: JobKind, last_slot: &str) -> History {
        let mut h = History::default();
        h.insert(
            sid(system),
            job,
            JobHistory {
                last_slot: Some(at(last_slot)),
                ..JobHistory::new(at("2026-01-01T00:00:00Z"))
            },
        );
        h
    }

    /// The slots of `cron` in `tz` strictly between `from` and `to`, as wall-clock time with
    /// offset.
    struct SlotCase {
        what: &'static str,
        tz: &'static str,
        cron: &'static str,
        from: &'static str,
        to: &'static str,
        want: &'static [&'static str],
    }

    #[test]
    fn slots_table() {
        let cases = [
            SlotCase {
                what: "New York spring forward: 02:30 does not exist, runs once at 03:30 EDT",
                tz: "America/New_York",
                cron: "30 2 * * *",
                from: "2026-03-06T12:00:00-05:00",
                to: "2026-03-10T00:00:00-04:00",
                want: &[
                    "2026-03-07T02:30:00-05:00",
                    "2026-03-08T03:30:00-04:00",
                    "2026-03-09T02:30:00-04:00",
                ],
            },
            SlotCase {
                what: "New York fall back: 01:30 happens twice, runs once, the first time",
                tz: "America/New_York",
                cron: "30 1 * * *",
                from: "2026-10-30T12:00:00-04:00",
                to: "2026-11-03T00:00:00-05:00",
                want: &[
                    "2026-10-31T01:30:00-04:00",
                    "2026-11-01T01:30:00-04:00",
                    "2026-11-02T01:30:00-05:00",
                ],
            },
            SlotCase {
                what: "New York spring forward, every 15 minutes: the skipped hour lands on 03:xx, once",
                tz: "America/New_York",
                cron: "*/15 * * * *",
                from: "2026-03-08T01:30:00-05:00",
                to: "2026-03-08T04:00:00-04:00",
                want: &[
                    "2026-03-08T01:45:00-05:00",
                    "2026-03-08T03:00:00-04:00",
                    "2026-03-08T03:15:00-04:00",
                    "2026-03-08T03:30:00-04:00",
                    "2026-03-08T03:45:00-04:00",
                ],
            },
            SlotCase {
                what: "New York fall back, hourly: 01:00 runs in EDT only",
                tz: "America/New_York",
                cron: "0 * * * *",
                from: "2026-11-01T00:30:00-04:00",
                to: "2026-11-01T03:30:00-05:00",
                want: &[
                    "2026-11-01T01:00:00-04:00",
                    "2026-11-01T02:00:00-05:00",
                    "2026-11-01T03:00:00-05:00",
                ],
            },
            SlotCase {
                what: "New York @weekly: midnight is before the 02:00 change",
                tz: "America/New_York",
                cron: "@weekly",
                from: "2026-03-01T12:00:00-05:00",
                to: "2026-03-16T00:00:00-04:00",
                want: &["2026-03-08T00:00:00-05:00", "2026-03-15T00:00:00-04:00"],
            },
            SlotCase {
                what: "London spring forward: 01:30 does not exist, runs at 02:30 BST",
                tz: "Europe/London",
                cron: "30 1 * * *",
                from: "2026-03-27T12:00:00+00:00",
                to: "2026-03-31T00:00:00+01:00",
                want: &[
                    "2026-03-28T01:30:00+00:00",
                    "2026-03-29T02:30:00+01:00",
                    "2026-03-30T01:30:00+01:00",
                ],
            },
            SlotCase {
                what: "London fall back: 01:30 happens twice, runs once in BST",
                tz: "Europe/London",
                cron: "30 1 * * *",
                from: "2026-10-23T12:00:00+01:00",
                to: "2026-10-27T00:00:00+00:00",
                want: &[
                    "2026-10-24T01:30:00+01:00",
                    "2026-10-25T01:30:00+01:00",
                    "2026-10-26T01:30:00+00:00",
                ],
            },
            SlotCase {
                what: "Shanghai has no DST: the New York change dates are ordinary days",
                tz: "Asia/Shanghai",
                cron: "0 2 * * *",
                from: "2026-03-07T00:00:00+08:00",
                to: "2026-03-10T00:00:00+08:00",
                want: &[
                    "2026-03-07T02:00:00+08:00",
                    "2026-03-08T02:00:00+08:00",
                    "2026-03-09T02:00:00+08:00",
                ],
            },
            SlotCase {
                what: "6 fields: every 5 seconds",
                tz: "UTC",
                cron: "*/5 * * * * *",
                from: "2026-01-01T00:00:00Z",
                to: "2026-01-01T00:00:21Z",
                want: &[
                    "2026-01-01T00:00:05+00:00",
                    "2026-01-01T00:00:10+00:00",
                    "2026-01-01T00:00:15+00:00",
                    "2026-01-01T00:00:20+00:00",
                ],
            },
            SlotCase {
                what: "day 31 skips the 30-day months",
                tz: "Asia/Shanghai",
                cron: "0 2 31 * *",
                from: "2026-03-01T00:00:00+08:00",
                to: "2026-11-01T00:00:00+08:00",
                want: &[
                    "2026-03-31T02:00:00+08:00",
                    "2026-05-31T02:00:00+08:00",
                    "2026-07-31T02:00:00+08:00",
                    "2026-08-31T02:00:00+08:00",
                    "2026-10-31T02:00:00+08:00",
                ],
            },
            SlotCase {
                what: "@monthly",
                tz: "Asia/Shanghai",
                cron: "@monthly",
                from: "2026-01-15T00:00:00+08:00",
                to: "2026-04-15T00:00:00+08:00",
                want: &[
                    "2026-02-01T00:00:00+08:00",
                    "2026-03-01T00:00:00+08:00",
                    "2026-04-01T00:00:00+08:00",
                ],
            },
            SlotCase {
                what: "@quarterly",
                tz: "Asia/Shanghai",
                cron: "@quarterly",
                from: "2026-02-01T00:00:00+08:00",
                to: "2027-02-01T00:00:00+08:00",
                want: &[
                    "2026-04-01T00:00:00+08:00",
                    "2026-07-01T00:00:00+08:00",
                    "2026-10-01T00:00:00+08:00",
                    "2027-01-01T00:00:00+08:00",
                ],
            },
            SlotCase {
                what: "@yearly",
                tz: "Asia/Shanghai",
                cron: "@yearly",
                from: "2026-06-01T00:00:00+08:00",
                to: "2028-06-01T00:00:00+08:00",
                want: &["2027-01-01T00:00:00+08:00", "2028-01-01T00:00:00+08:00"],
            },
            SlotCase {
                what: "29 February: leap years only",
                tz: "Asia/Shanghai",
                cron: "0 1 29 2 *",
                from: "2026-01-01T00:00:00+08:00",
                to: "2033-01-01T00:00:00+08:00",
                want: &["2028-02-29T01:00:00+08:00", "2032-02-29T01:00:00+08:00"],
            },
        ];
        for SlotCase {
            what,
            tz,
            cron,
            from,
            to,
            want,
        } in cases
        {
            let s = schedule(&[cron], tz);
            let (from, to) = (at(from), at(to));
            let forward: Vec<String> = s
                .after(from)
                .take_while(|t| *t < to)
                .map(|t| show(t, s.time_zone()))
                .collect();
            assert_eq!(forward, want, "{what}: forward");
            let mut backward: Vec<String> = s
                .at_or_before(to)
                .skip_while(|t| *t >= to)
                .take_while(|t| *t > from)
                .map(|t| show(t, s.time_zone()))
                .collect();
            backward.reverse();
            assert_eq!(backward, want, "{what}: backward");
        }
    }

    /// The slots by brute force: every wall-clock minute the cron includes, mapped with the
    /// compatible rule, as a sorted set. An oracle independent of the walk's reordering.
    fn brute_force(s: &ZonedSchedule, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let tz = s.time_zone().tz();
        let day = SignedDuration::from_hours(24);
        let mut wall = (tz.to_datetime(from) - day)
            .round(jiff::Unit::Minute)
            .unwrap();
        let end = tz.to_datetime(to) + day;
        let mut slots = std::collections::BTreeSet::new();
        while wall <= end {
            let floating = to_floating(wall).unwrap();
            if s.crons().iter().any(|c| c.schedule().includes(floating)) {
                let t = tz.to_ambiguous_timestamp(wall).compatible().unwrap();
                if t > from && t < to {
                    slots.insert(t);
                }
            }
            wall += SignedDuration::from_mins(1);
        }
        slots.into_iter().collect()
    }

    #[test]
    fn slots_match_a_brute_force_walk_around_every_transition() {
        let crons = ["*/15 * * * *", "30 1 * * *", "0 2 * * *", "45 23 * * *"];
        // (zone, from, to): every transition between them is checked, two days either side.
        let zones = [
            (
                "America/New_York",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "Europe/London",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            // 30-minute DST.
            (
                "Australia/Lord_Howe",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            // Samoa skipped 30 December 2011 (a 24-hour gap).
            (
                "Pacific/Apia",
                "2011-12-01T00:00:00Z",
                "2012-01-15T00:00:00Z",
            ),
        ];
        for (tz, from, to) in zones {
            let zone = zone(tz);
            let transitions: Vec<Timestamp> = zone
                .tz()
                .following(at(from))
                .map(|t| t.timestamp())
                .take_while(|t| *t < at(to))
                .collect();
            assert!(!transitions.is_empty(), "{tz} has transitions in the range");
            for t in transitions {
                let (from, to) = (
                    t - SignedDuration::from_hours(48),
                    t + SignedDuration::from_hours(48),
                );
                for cron in crons {
                    let s = schedule(&[cron], tz);
                    let want = brute_force(&s, from, to);
                    let forward: Vec<Timestamp> = s.after(from).take_while(|x| *x < to).collect();
                    assert_eq!(forward, want, "{tz} {cron} around {t}: forward");
                    let mut backward: Vec<Timestamp> = s
                        .at_or_before(to)
                        .skip_while(|x| *x >= to)
                        .take_while(|x| *x > from)
                        .collect();
                    backward.reverse();
                    assert_eq!(backward, want, "{tz} {cron} around {t}: backward");
                }
            }
        }
    }

    #[test]
    fn next_and_latest_are_exclusive_and_inclusive() {
        let s = schedule(&["0 2 * * *"], "Asia/Shanghai");
        let slot = at("2026-05-04T02:00:00+08:00");
        assert_eq!(s.latest_at_or_before(slot), Some(slot));
        assert_eq!(s.next_after(slot), Some(at("2026-05-05T02:00:00+08:00")));
        let just_before = at("2026-05-04T01:59:59.999+08:00");
        assert_eq!(s.next_after(just_before), Some(slot));
        assert_eq!(
            s.latest_at_or_before(just_before),
            Some(at("2026-05-03T02:00:00+08:00"))
        );
    }

    #[test]
    fn several_crons_of_one_job_are_one_set_of_slots() {
        // 02:00 and 14:00 daily, with 02:00 given twice: each instant once, in order.
        let s = schedule(&["0 14 * * *", "0 2 * * *", "0 0 2 * * *"], "Asia/Shanghai");
        let got: Vec<String> = s
            .after(at("2026-05-04T00:00:00+08:00"))
            .take(4)
            .map(|t| show(t, s.time_zone()))
            .collect();
        assert_eq!(
            got,
            [
                "2026-05-04T02:00:00+08:00",
                "2026-05-04T14:00:00+08:00",
                "2026-05-05T02:00:00+08:00",
                "2026-05-05T14:00:00+08:00",
            ]
        );
    }

    #[test]
    fn jitter_is_deterministic_bounded_and_spread() {
        let system = sid("linfen-finance");
        let slot = at("2026-05-04T02:00:00+08:00");
        let bound = minutes(10);
        let hosts: Vec<String> = (0..500).map(|i| format!("branch-{i:03}")).collect();
        let offsets: Vec<Duration> = hosts
            .iter()
            .map(|h| jitter(h, &system, JobKind::Backup, slot, bound))
            .collect();
        for (host, offset) in hosts.iter().zip(&offsets) {
            assert!(*offset < bound, "{host}: {offset:?}");
            assert_eq!(
                jitter(host, &system, JobKind::Backup, slot, bound),
                *offset,
                "{host}: same inputs, same jitter"
            );
        }
        // 500 branches spread over the whole ten minutes, not bunched.
        let mut distinct = offsets.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 450, "{} distinct", distinct.len());
        assert!(
            distinct
                .first()
                .is_some_and(|d| *d < Duration::from_secs(30))
        );
        assert!(
            distinct
                .last()
                .is_some_and(|d| *d > minutes(9) + Duration::from_secs(30))
        );
        // Each input matters.
        let base = jitter("branch-001", &system, JobKind::Backup, slot, bound);
        assert_ne!(
            base,
            jitter("branch-002", &system, JobKind::Backup, slot, bound)
        );
        assert_ne!(
            base,
            jitter(
                "branch-001",
                &sid("linfen-credit"),
                JobKind::Backup,
                slot,
                bound
            )
        );
        assert_ne!(
            base,
            jitter("branch-001", &system, JobKind::Copy, slot, bound)
        );
        let next_day = at("2026-05-05T02:00:00+08:00");
        assert_ne!(
            base,
            jitter("branch-001", &system, JobKind::Backup, next_day, bound)
        );
        assert_eq!(
            jitter("branch-001", &system, JobKind::Backup, slot, Duration::ZERO),
            Duration::ZERO
        );
    }

    #[test]
    fn run_at_stays_within_a_tenth_of_the_interval() {
        let options = PlanOptions {
            host: "branch-01".into(),
            jitter_max: minutes(15),
        };
        // Daily: the full 15 minutes is available. Every 15 minutes: at most 90 s.
        let cases: &[(&str, Duration)] = &[
            ("0 2 * * *", minutes(15)),
            ("*/15 * * * *", Duration::from_secs(90)),
        ];
        for (cron, bound) in cases {
            let job = spec(
                "linfen-finance",
                "T1",
                JobKind::Backup,
                cron,
                "Asia/Shanghai",
            );
            let slots: Vec<Timestamp> = job
                .schedule
                .after(at("2026-05-04T00:00:00+08:00"))
                .take(200)
                .collect();
            let delays: Vec<SignedDuration> = slots
                .iter()
                .map(|s| run_at(&job, *s, &options).duration_since(*s))
                .collect();
            let bound = SignedDuration::try_from(*bound).unwrap();
            assert!(
                delays.iter().all(|d| !d.is_negative() && *d < bound),
                "{cron}"
            );
            assert!(
                delays.iter().any(|d| *d > bound / 2),
                "{cron}: jitter is used"
            );
        }
    }

    #[test]
    fn missed_runs_fold_into_one() {
        // Host down three days: the daily backup is due once, for today's slot.
        let job = spec(
            "linfen-finance",
            "T1",
            JobKind::Backup,
            "0 2 * * *",
            "Asia/Shanghai",
        );
        let history = ran(
            "linfen-finance",
            JobKind::Backup,
            "2026-05-01T02:00:00+08:00",
        );
        let now = at("2026-05-04T09:00:00+08:00");
        let p = plan(std::slice::from_ref(&job), &history, now, &no_jitter());
        assert_eq!(
            p.due,
            [DueJob {
                system: sid("linfen-finance"),
                job: JobKind::Backup,
                slot: at("2026-05-04T02:00:00+08:00"),
                run_at: at("2026-05-04T02:00:00+08:00"),
                due_since: at("2026-05-02T02:00:00+08:00"),
                reason: DueReason::Scheduled { skipped: 2 },
            }]
        );
        assert_eq!(p.late, p.due, "owed since 2 May: late");
        assert_eq!(p.next[0].state, JobState::Late);
        assert_eq!(p.next[0].next_slot, Some(at("2026-05-05T02:00:00+08:00")));

        // Once started, nothing more is owed until tomorrow.
        let mut history = history;
        history.mark_started(&p.due[0], now);
        let later = at("2026-05-04T09:05:00+08:00");
        let p = plan(std::slice::from_ref(&job), &history, later, &no_jitter());
        assert!(p.due.is_empty());
        assert_eq!(p.next[0].state, JobState::Waiting);
        assert_eq!(p.next_wake, Some(at("2026-05-05T02:00:00+08:00")));
        let h = history.get("linfen-finance", JobKind::Backup).unwrap();
        assert_eq!(h.last_slot, Some(at("2026-05-04T02:00:00+08:00")));
        assert_eq!(h.last_started, Some(now));
    }

    #[test]
    fn empty_history_table() {
        let now = at("2026-05-04T09:00:00+08:00");
        enum Want {
            Due(DueReason, &'static str, JobState),
            Waiting(&'static str),
        }
        // (job, cron, first seen — None: no history entry at all, what)
        let cases: &[(JobKind, &str, Option<&str>, Want)] = &[
            (
                JobKind::Backup,
                "0 2 * * *",
                None,
                Want::Due(
                    DueReason::FirstBackup,
                    "2026-05-04T02:00:00+08:00",
                    JobState::Due,
                ),
            ),
            (
                JobKind::Backup,
                "0 2 * * *",
                Some("2026-05-04T07:00:00+08:00"),
                // First seen two hours ago and never run: late.
                Want::Due(
                    DueReason::FirstBackup,
                    "2026-05-04T02:00:00+08:00",
                    JobState::Late,
                ),
            ),
            (
                JobKind::Check,
                "0 5 * * *",
                None,
                Want::Waiting("2026-05-05T05:00:00+08:00"),
            ),
            (
                JobKind::Check,
                "0 5 * * *",
                Some("2026-05-04T06:00:00+08:00"),
                Want::Waiting("2026-05-05T05:00:00+08:00"),
            ),
            (
                JobKind::Check,
                "0 5 * * *",
                // Seen before today's 05:00, which passed while the agent was down.
                Some("2026-05-03T12:00:00+08:00"),
                Want::Due(
                    DueReason::Scheduled { skipped: 0 },
                    "2026-05-04T05:00:00+08:00",
                    JobState::Late,
                ),
            ),
            (
                JobKind::ReadData,
                "0 3 * * SUN",
                Some("2026-05-04T08:59:00+08:00"),
                Want::Waiting("2026-05-10T03:00:00+08:00"),
            ),
        ];
        for (job, cron, first_seen, want) in cases {
            let s = spec("yuncheng-credit", "T1", *job, cron, "Asia/Shanghai");
            let mut history = History::default();
            if let Some(first) = first_seen {
                history.insert(s.system.clone(), *job, JobHistory::new(at(first)));
            }
            let p = plan(std::slice::from_ref(&s), &history, now, &no_jitter());
            let what = format!("{job} {cron} first seen {first_seen:?}");
            match want {
                Want::Due(reason, slot, state) => {
                    assert_eq!(p.due.len(), 1, "{what}");
                    assert_eq!(p.due[0].reason, *reason, "{what}");
                    assert_eq!(p.due[0].slot, at(slot), "{what}");
                    assert_eq!(p.next[0].state, *state, "{what}");
                    if *reason == DueReason::FirstBackup {
                        assert_eq!(p.due[0].run_at, now, "{what}: at once, no jitter");
                    }
                }
                Want::Waiting(next) => {
                    assert!(p.due.is_empty(), "{what}");
                    assert_eq!(p.next[0].state, JobState::Waiting, "{what}");
                    assert_eq!(p.next[0].next_slot, Some(at(next)), "{what}");
                }
            }
        }
    }

    #[test]
    fn observe_keeps_first_seen_across_calls() {
        let check = spec(
            "yuncheng-credit",
            "T1",
            JobKind::Check,
            "0 5 * * *",
            "Asia/Shanghai",
        );
        let jobs = std::slice::from_ref(&check);
        let mut history = History::default();
        assert!(history.observe(jobs, at("2026-05-03T12:00:00+08:00")));
        assert!(
            !history.observe(jobs, at("2026-05-04T09:00:00+08:00")),
            "already seen"
        );
        // The agent was down over 05:00: the slot after first_seen is owed.
        let p = plan(
            jobs,
            &history,
            at("2026-05-04T09:00:00+08:00"),
            &no_jitter(),
        );
        assert_eq!(p.due.len(), 1);
        history.mark_finished(
            &check.system,
            JobKind::Check,
            at("2026-05-04T09:10:00+08:00"),
            Outcome::Success,
        );
        let h = history.get("yuncheng-credit", JobKind::Check).unwrap();
        assert_eq!(h.first_seen, at("2026-05-03T12:00:00+08:00"));
        assert_eq!(h.last_outcome, Some(Outcome::Success));
        // It round-trips through the state file's JSON.
        let json = serde_json::to_string(&history).unwrap();
        assert!(
            json.contains("\"yuncheng-credit\":{\"check\":{\"first-seen\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), history);
    }

    #[test]
    fn due_jobs_start_in_order() {
        let cron = "0 2 * * *";
        let tz = "Asia/Shanghai";
        let jobs = [
            spec("b-credit", "T1", JobKind::Copy, cron, tz),
            spec("a-ledger", "T2", JobKind::Backup, cron, tz),
            spec("c-core", "T0", JobKind::Backup, cron, tz),
            spec("a-ledger", "T2", JobKind::ReadData, cron, tz),
            spec("b-credit", "T1", JobKind::Forget, cron, tz),
            spec("d-hr", "T1", JobKind::Check, cron, tz),
            spec("c-core", "T0", JobKind::Forget, cron, tz),
            spec("b-credit", "T1", JobKind::Backup, cron, tz),
            spec("e-teller", "T1", JobKind::Backup, cron, tz),
        ];
        let mut history = History::default();
        for j in &jobs {
            let h = JobHistory {
                last_slot: Some(at("2026-05-03T02:00:00+08:00")),
                ..JobHistory::new(at("2026-01-01T00:00:00Z"))
            };
            history.insert(j.system.clone(), j.job, h);
        }
        let p = plan(
            &jobs,
            &history,
            at("2026-05-04T03:00:00+08:00"),
            &no_jitter(),
        );
        let order: Vec<String> = p
            .due
            .iter()
            .map(|d| format!("{} {}", d.job, d.system))
            .collect();
        assert_eq!(
            order,
            [
                "backup c-core",
                "backup b-credit",
                "backup e-teller",
                "backup a-ledger",
                "copy b-credit",
                "check d-hr",
                "forget c-core",
                "forget b-credit",
                "read-data a-ledger",
            ]
        );
        // Status keeps the given order.
        assert_eq!(p.next.len(), jobs.len());
        assert!(
            p.next
                .iter()
                .zip(&jobs)
                .all(|(n, j)| n.system == j.system && n.job == j.job)
        );
    }

    #[test]
    fn late_table() {
        // Daily 02:00 slot, run for yesterday. (jitter_max, now, expected state or None for
        // "due or waiting, depending on the jitter, but not late").
        let cases: &[(Duration, &str, Option<JobState>)] = &[
            (
                Duration::ZERO,
                "2026-05-04T01:59:00+08:00",
                Some(JobState::Waiting),
            ),
            (
                Duration::ZERO,
                "2026-05-04T02:05:00+08:00",
                Some(JobState::Due),
            ),
            (
                Duration::ZERO,
                "2026-05-04T02:10:00+08:00",
                Some(JobState::Due),
            ),
            (
                Duration::ZERO,
                "2026-05-04T02:10:01+08:00",
                Some(JobState::Late),
            ),
            (minutes(30), "2026-05-04T02:11:00+08:00", None),
            (minutes(30), "2026-05-04T02:29:00+08:00", None),
            // Past the largest jitter: certainly due, and late.
            (
                minutes(30),
                "2026-05-04T02:30:01+08:00",
                Some(JobState::Late),
            ),
        ];
        let job = spec(
            "linfen-finance",
            "T1",
            JobKind::Backup,
            "0 2 * * *",
            "Asia/Shanghai",
        );
        let history = ran(
            "linfen-finance",
            JobKind::Backup,
            "2026-05-03T02:00:00+08:00",
        );
        for (jitter_max, now, want) in cases {
            let options = PlanOptions {
                host: "branch-01".into(),
                jitter_max: *jitter_max,
            };
            let p = plan(std::slice::from_ref(&job), &history, at(now), &options);
            let state = p.next[0].state;
            let what = format!("jitter {jitter_max:?} at {now}");
            match want {
                Some(want) => assert_eq!(state, *want, "{what}"),
                None => assert_ne!(state, JobState::Late, "{what}"),
            }
            assert_eq!(p.late.len(), usize::from(state == JobState::Late), "{what}");
            assert_eq!(
                p.due.len(),
                usize::from(state != JobState::Waiting),
                "{what}"
            );
        }
    }

    #[test]
    fn a_job_in_its_jitter_waits_until_run_at() {
        let options = PlanOptions {
            host: "branch-07".into(),
            jitter_max: minutes(30),
        };
        let job = spec(
            "linfen-finance",
            "T1",
            JobKind::Backup,
            "0 2 * * *",
            "Asia/Shanghai",
        );
        let history = ran(
            "linfen-finance",
            JobKind::Backup,
            "2026-05-03T02:00:00+08:00",
        );
        let slot = at("2026-05-04T02:00:00+08:00");
        let start = run_at(&job, slot, &options);
        // This host's jitter for the slot is not zero (the hash is fixed), so there is a wait.
        assert!(start > slot && start < slot + SignedDuration::from_mins(30));
        let before = start - SignedDuration::from_millis(1);
        let p = plan(std::slice::from_ref(&job), &history, before, &options);
        assert!(p.due.is_empty());
        assert_eq!(p.next[0].state, JobState::Waiting);
        assert_eq!(
            p.next[0].next_slot,
            Some(slot),
            "the slot just past is still owed"
        );
        assert_eq!(p.next_wake, Some(start));
        let p = plan(std::slice::from_ref(&job), &history, start, &options);
        assert_eq!(p.due.len(), 1);
        assert_eq!((p.due[0].slot, p.due[0].run_at), (slot, start));
    }

    #[test]
    fn select_runnable_table() {
        let due = |system: &str, job| DueJob::forced(sid(system), job, at("2026-05-04T02:00:00Z"));
        let queue = [
            due("a", JobKind::Backup),
            due("b", JobKind::Backup),
            due("a", JobKind::Copy),
            due("c", JobKind::Check),
            due("d", JobKind::Forget),
        ];
        // (running systems, free slots, started)
        let cases: &[(&[&str], usize, &[&str])] = &[
            (&["b"], 2, &["backup a", "check c"]),
            (&["b"], 10, &["backup a", "check c", "forget d"]),
            (&[], 10, &["backup a", "backup b", "check c", "forget d"]),
            (&["a", "b", "c", "d"], 10, &[]),
            (&[], 0, &[]),
        ];
        for (running, free, want) in cases {
            let got: Vec<String> = select_runnable(&queue, running, *free)
                .iter()
                .map(|d| format!("{} {}", d.job, d.system))
                .collect();
            assert_eq!(got, *want, "running {running:?}, {free} free");
        }
    }

    #[test]
    fn forced_runs_spend_the_slots_before_them() {
        let job = spec(
            "linfen-finance",
            "T1",
            JobKind::Backup,
            "0 2 * * *",
            "Asia/Shanghai",
        );
        let mut history = ran(
            "linfen-finance",
            JobKind::Backup,
            "2026-05-03T02:00:00+08:00",
        );
        let now = at("2026-05-04T10:00:00+08:00");
        history.mark_started(
            &DueJob::forced(job.system.clone(), JobKind::Backup, now),
            now,
        );
        let p = plan(std::slice::from_ref(&job), &history, now, &no_jitter());
        assert!(p.due.is_empty());
        assert_eq!(p.next[0].next_slot, Some(at("2026-05-05T02:00:00+08:00")));
    }

    #[test]
    fn read_data_subsets_table() {
        let day = Duration::from_secs(86_400);
        let now = at("2026-05-04T09:00:00+08:00");
        // (what, zone, cron, window, m)
        let cases: &[(&str, &str, &str, Duration, u32)] = &[
            ("daily in 7 days", "Asia/Shanghai", "0 3 * * *", day * 7, 7),
            (
                "weekly in 30 days",
                "Asia/Shanghai",
                "0 2 * * SUN",
                day * 30,
                4,
            ),
            ("hourly in 1 day", "Asia/Shanghai", "0 * * * *", day, 24),
            (
                "twice daily in 7 days",
                "Asia/Shanghai",
                "0 3,15 * * *",
                day * 7,
                14,
            ),
            (
                "weekly in 3 days: read everything",
                "Asia/Shanghai",
                "0 2 * * SUN",
                day * 3,
                1,
            ),
            (
                "never again: read everything",
                "Asia/Shanghai",
                "0 0 0 1 1 * 2020",
                day * 7,
                1,
            ),
        ];
        for (what, tz, cron, window, m) in cases {
            let s = schedule(&[cron], tz);
            assert_eq!(read_data_runs_per_window(&s, *window, now), *m, "{what}");
            let mut seen: Vec<u32> = (0..u64::from(*m))
                .map(|counter| {
                    let subset = read_data_subset(&s, *window, now, counter);
                    assert_eq!(subset.m, *m, "{what}");
                    subset.n
                })
                .collect();
            // m consecutive counters read subsets 1..=m, each once, starting from 1; then it
            // wraps around.
            assert_eq!(seen.first(), Some(&1), "{what}");
            seen.sort_unstable();
            assert_eq!(seen, (1..=*m).collect::<Vec<_>>(), "{what}");
            assert_eq!(
                read_data_subset(&s, *window, now, u64::from(*m)).n,
                1,
                "{what}"
            );
            let last = read_data_subset(&s, *window, now, u64::from(*m) * 5 + u64::from(*m) - 1);
            assert_eq!(last.to_string(), format!("{m}/{m}"), "{what}");
        }
    }

    #[test]
    fn read_data_subsets_allow_for_a_long_dst_day() {
        // Daily in New York over the 25-hour day of 1 November: 7 runs take 169 h, more than
        // a 7-day window, so only 6 subsets fit. Away from any change, 7 fit.
        let s = schedule(&["0 3 * * *"], "America/New_York");
        let week = Duration::from_secs(7 * 86_400);
        assert_eq!(
            read_data_runs_per_window(&s, week, at("2026-10-20T12:00:00-04:00")),
            6
        );
        let europe = schedule(&["0 3 * * *"], "Europe/London");
        // Between 29 March and 25 October no London change is within 12 weeks of 1 May.
        assert_eq!(
            read_data_runs_per_window(&europe, week, at("2026-05-01T12:00:00+01:00")),
            7
        );
    }

    #[test]
    fn jobs_for_host_reads_the_example_policy() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let policy = crate::policy::load_dir(&dir).unwrap_or_else(|r| panic!("{r:?}"));
        let jobs = jobs_for_host(&policy, "yuncheng-fs01");
        let got: Vec<String> = jobs
            .iter()
            .map(|j| format!("{} {}", j.system, j.job))
            .collect();
        let mut want = Vec::new();
        for system in policy
            .systems
            .values()
            .filter(|s| s.host == "yuncheng-fs01")
        {
            let mut kinds: Vec<JobKind> = system.schedules.iter().map(|s| s.job).collect();
            kinds.sort();
            kinds.dedup();
            want.extend(kinds.iter().map(|k| format!("{} {k}", system.id)));
        }
        assert!(
            !want.is_empty(),
            "the example policy has systems on yuncheng-fs01"
        );
        assert_eq!(got, want);
        for j in &jobs {
            let system = &policy.systems[&j.system];
            assert_eq!(j.tier, system.tier);
            assert_eq!(j.schedule.time_zone(), &policy.sites[&system.site].timezone);
            assert!(!j.schedule.crons().is_empty());
        }
        assert!(jobs_for_host(&policy, "no-such-host").is_empty());
    }
}
