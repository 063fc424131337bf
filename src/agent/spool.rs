//! The agent's durable spool of run records: a record is on disk here before any attempt to
//! send it, and leaves only when the coordinator has acknowledged it ("never lose a record").
//!
//! Layout of the spool directory:
//!
//! ```text
//! lock                            advisory lock held while a Spool is open (one agent per spool)
//! state                           {"next_seq": N, "dropped": M}: sequence numbers are never reused
//! 00000000000000000042.rec        one record: a header line, then the record as JSON
//! .00000000000000000043.rec.tmp   a record being written; a leftover is removed at open
//! quarantine/                     records set aside, each with a `<name>.reason` text file
//! ```
//!
//! Invariants:
//! * A record file appears only complete: written to a temp file, fsynced, renamed into place,
//!   directory fsynced. Removals (ack, drop, quarantine) are fsynced too.
//! * Sequence numbers increase in push order, so [`Spool::pending`] returns records in the order
//!   they were pushed (and so, per system, in run order). The counter is persisted before any
//!   file leaves the directory, so numbers are never reused, across restarts included.
//! * The bounds ([`SpoolLimits`]) are kept by dropping the oldest *successful* records, each
//!   logged and counted. A failed or partial record is never dropped: the spool stays over its
//!   bound rather than lose evidence of a failure.
//! * An unreadable record (truncated, corrupt) is moved to `quarantine/` with the reason and
//!   reported, never silently deleted and never a crash.
//!
//! Everything here blocks on file I/O (fsync): async callers go through `spawn_blocking`. The
//! spool reads no clock and knows nothing of HTTP; `client::deliver` moves records out of it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::run::{Outcome, RunRecord};

/// First word of every record file: the format and its version.
const MAGIC: &str = "lifeboat-spool/1";
const RECORD_EXT: &str = ".rec";
const TEMP_EXT: &str = ".tmp";
const LOCK_FILE: &str = "lock";
const STATE_FILE: &str = "state";
const QUARANTINE_DIR: &str = "quarantine";
const REASON_EXT: &str = ".reason";

/// How large the spool may grow before successful records are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Most records kept (default 10 000).
    pub max_records: usize,
    /// Most bytes of record files kept (default 256 MiB).
    pub max_bytes: u64,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_records: 10_000,
            max_bytes: 256 << 20,
        }
    }
}

/// A record in the spool, as handed to the delivery loop.
#[derive(Debug, Clone, PartialEq)]
pub struct SpooledRecord {
    /// The idempotency key: `record.run_id`.
    pub key: String,
    /// Position in the spool: increasing in push order, never reused.
    pub seq: u64,
    /// `record.system`.
    pub system: Option<String>,
    pub record: RunRecord,
}

/// The spool at a glance (for heartbeats and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records waiting for delivery.
    pub depth: usize,
    /// Bytes of their files.
    pub bytes: u64,
    /// Oldest `finished_at` among them.
    pub oldest: Option<Timestamp>,
    /// Successful records dropped to keep the bounds, since the spool was created.
    pub dropped: u64,
    /// Record files in `quarantine/`.
    pub quarantined: u64,
}

/// What [`Spool::open`] had to repair after an unclean stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Half-written temp files removed (records whose push never completed).
    pub temp_files_removed: usize,
    /// Record files that could not be read, now in `quarantine/`.
    pub quarantined: Vec<Quarantined>,
    /// Successful records dropped at open because the spool was over its (possibly lowered) bounds.
    pub dropped: usize,
}

/// A file moved to `quarantine/`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Its path in `quarantine/`.
    pub path: PathBuf,
    pub reason: String,
}

/// Why a spool operation failed. Nothing is lost by a failed operation: a record whose push
/// failed was never acknowledged to its caller, and a failed ack leaves records to be resent.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool {} is in use by another lifeboat agent (lock file {} is held); stop the other agent \
         or give this one its own state directory",
        dir.display(), lock.display()
    )]
    Locked { dir: PathBuf, lock: PathBuf },
    #[error("spool: {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("run record has an empty run_id, which is its delivery key; it cannot be spooled")]
    EmptyKey,
    #[error("a different run record with run_id {0} is already spooled; run ids must be unique")]
    DuplicateKey(String),
    #[error("cannot encode run record {key}: {reason}")]
    Encode { key: String, reason: String },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> SpoolError {
    let context = context.into();
    move |source| SpoolError::Io { context, source }
}

/// The durable spool. Cloning gives another handle on the same spool (the runner pushes while
/// the delivery loop drains); every method takes an internal mutex and blocks on file I/O.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Spool")
            .field("dir", &inner.dir)
            .field("depth", &inner.index.len())
            .field("next_seq", &inner.next_seq)
            .finish()
    }
}

/// What is kept in memory about a spooled record (the record itself stays on disk).
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    outcome: Outcome,
    finished_at: Timestamp,
    /// Size of the record file.
    size: u64,
}

/// The persisted counters.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct State {
    next_seq: u64,
    dropped: u64,
}

struct Inner {
    dir: PathBuf,
    limits: SpoolLimits,
    /// Spooled records by sequence number: iteration order is delivery order.
    index: BTreeMap<u64, Entry>,
    /// Key → sequence number of every spooled record.
    keys: HashMap<String, u64>,
    /// Sum of `Entry::size`.
    bytes: u64,
    /// The next sequence number to hand out; above every number ever used in this spool.
    next_seq: u64,
    /// Successful records dropped to keep the bounds (persisted).
    dropped: u64,
    /// Record files in `quarantine/`.
    quarantined: u64,
    recovery: Recovery,
    /// Holds the advisory lock for as long as the spool is open.
    _lock: File,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` and takes its lock. Repairs what an unclean
    /// stop left behind (see [`Recovery`], also in [`Spool::recovery`]), logging each repair.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Spool, SpoolError> {
        let quarantine = dir.join(QUARANTINE_DIR);
        fs::create_dir_all(&quarantine)
            .map_err(io_err(format!("cannot create {}", quarantine.display())))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(format!("cannot open {}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io_err(format!("cannot lock {}", lock_path.display()))(e));
            }
        }

        let state = read_state(dir);
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            limits,
            index: BTreeMap::new(),
            keys: HashMap::new(),
            bytes: 0,
            next_seq: state.next_seq,
            dropped: state.dropped,
            quarantined: 0,
            recovery: Recovery::default(),
            _lock: lock,
        };
        inner.scan()?;
        let dropped = inner.enforce_bounds(None)?;
        inner.recovery.dropped = dropped;
        Ok(Spool {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Writes `record` durably and returns it with its sequence number. Pushing a record whose
    /// key is already spooled returns the spooled one when the two are equal (a retried push)
    /// and fails when they differ. May drop the oldest successful records to keep the bounds
    /// (never the one just pushed).
    pub fn push(&self, record: &RunRecord) -> Result<SpooledRecord, SpoolError> {
        let mut inner = self.lock();
        inner.push(record)
    }

    /// Up to `limit` records, oldest first. A record file that turns out unreadable is moved to
    /// quarantine (and logged) and the next one is taken instead.
    pub fn pending(&self, limit: usize) -> Result<Vec<SpooledRecord>, SpoolError> {
        let mut inner = self.lock();
        inner.pending(limit)
    }

    /// Forgets the records with these keys (delivered); unknown keys are ignored. Returns how
    /// many were removed. Durable when it returns.
    pub fn ack(&self, keys: &[String]) -> Result<usize, SpoolError> {
        let mut inner = self.lock();
        inner.ack(keys)
    }

    /// Moves the record with this key to `quarantine/`, with `reason` beside it, so that it no
    /// longer blocks delivery (e.g. the coordinator refused it as malformed). Returns the
    /// quarantined file, or `None` when the key is not spooled.
    pub fn quarantine(&self, key: &str, reason: &str) -> Result<Option<PathBuf>, SpoolError> {
        let mut inner = self.lock();
        let Some(&seq) = inner.keys.get(key) else {
            return Ok(None);
        };
        inner.quarantine_seq(seq, reason).map(Some)
    }

    /// Records waiting for delivery.
    pub fn depth(&self) -> usize {
        self.lock().index.len()
    }

    /// The oldest `finished_at` among the waiting records.
    pub fn oldest(&self) -> Option<Timestamp> {
        self.lock().oldest()
    }

    /// Successful records dropped to keep the bounds, since the spool was created.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Record files in `quarantine/`.
    pub fn quarantined(&self) -> u64 {
        self.lock().quarantined
    }

    pub fn stats(&self) -> SpoolStats {
        let inner = self.lock();
        SpoolStats {
            depth: inner.index.len(),
            bytes: inner.bytes,
            oldest: inner.oldest(),
            dropped: inner.dropped,
            quarantined: inner.quarantined,
        }
    }

    /// What [`Spool::open`] repaired.
    pub fn recovery(&self) -> Recovery {
        self.lock().recovery.clone()
    }

    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the mutex was held cannot leave a half-done change on disk (every change
        // is one rename or removal), and the index is only updated after the disk: carry on.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn record_path(&self, seq: u64) -> PathBuf {
        self.dir.join(record_name(seq))
    }

    fn oldest(&self) -> Option<Timestamp> {
        self.index.values().map(|e| e.finished_at).min()
    }

    /// Loads the index from the directory: removes temp files, quarantines unreadable records
    /// and finds the sequence number to continue from.
    fn scan(&mut self) -> Result<(), SpoolError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(io_err(format!("cannot list {}", self.dir.display())))?;
        let mut seqs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(format!("cannot list {}", self.dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TEMP_EXT) {
                let path = entry.path();
                fs::remove_file(&path)
                    .map_err(io_err(format!("cannot remove {}", path.display())))?;
                tracing::warn!(
                    file = %path.display(),
                    "removed a half-written spool file (its push never completed)"
                );
                self.recovery.temp_files_removed += 1;
            } else if let Some(seq) = parse_record_name(&name) {
                seqs.push(seq);
            } else if !matches!(name.as_str(), LOCK_FILE | STATE_FILE | QUARANTINE_DIR) {
                tracing::warn!(file = %entry.path().display(), "ignoring an unexpected file in the spool");
            }
        }
        if self.recovery.temp_files_removed > 0 {
            sync_dir(&self.dir)?;
        }
        seqs.sort_unstable();
        if let Some(&max) = seqs.last() {
            self.next_seq = self.next_seq.max(max + 1);
        }
        // Count quarantined records, and never hand out a number a quarantined file carries.
        let quarantine = self.dir.join(QUARANTINE_DIR);
        let listing = fs::read_dir(&quarantine)
            .map_err(io_err(format!("cannot list {}", quarantine.display())))?;
        for entry in listing {
            let entry = entry.map_err(io_err(format!("cannot list {}", quarantine.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(seq) = parse_quarantined_name(&name) {
                self.quarantined += 1;
                self.next_seq = self.next_seq.max(seq + 1);
            }
        }

        for seq in seqs {
            let path = self.record_path(seq);
            match read_record(&path, seq) {
                Ok((record, size)) => {
                    if self.keys.contains_key(&record.run_id) {
                        let reason = format!("run_id {} is spooled twice", record.run_id);
                        let q = self.quarantine_file(seq, &reason)?;
                        self.recovery.quarantined.push(q);
                        continue;
                    }
                    self.insert(seq, &record, size);
                }
                Err(Unreadable::Corrupt(reason)) => {
                    let q = self.quarantine_file(seq, &reason)?;
                    self.recovery.quarantined.push(q);
                }
                Err(Unreadable::Io(e)) => {
                    return Err(io_err(format!("cannot read {}", path.display()))(e));
                }
            }
        }
        Ok(())
    }

    fn insert(&mut self, seq: u64, record: &RunRecord, size: u64) {
        self.index.insert(
            seq,
            Entry {
                key: record.run_id.clone(),
                outcome: record.outcome,
                finished_at: record.finished_at,
                size,
            },
        );
        self.keys.insert(record.run_id.clone(), seq);
        self.bytes += size;
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.index.remove(&seq)?;
        self.keys.remove(&entry.key);
        self.bytes -= entry.size;
        Some(entry)
    }

    fn push(&mut self, record: &RunRecord) -> Result<SpooledRecord, SpoolError> {
        let key = record.run_id.clone();
        if key.is_empty() {
            return Err(SpoolError::EmptyKey);
        }
        if let Some(&seq) = self.keys.get(&key) {
            let path = self.record_path(seq);
            let existing = match read_record(&path, seq) {
                Ok((existing, _)) => existing,
                Err(Unreadable::Io(e)) => {
                    return Err(io_err(format!("cannot read {}", path.display()))(e));
                }
                Err(Unreadable::Corrupt(reason)) => {
                    // The spooled copy went bad: set it aside and spool the new one below.
                    self.quarantine_seq(seq, &reason)?;
                    return self.push(record);
                }
            };
            if existing == *record {
                return Ok(spooled(seq, existing));
            }
            return Err(SpoolError::DuplicateKey(key));
        }

        let body = serde_json::to_vec(record).map_err(|e| SpoolError::Encode {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let seq = self.next_seq;
        // Taken before writing: a failed write may still leave a file behind with this number.
        self.next_seq += 1;
        let header = format!(
            "{MAGIC} {seq} {} {}\n",
            body.len(),
            hex::encode(Sha256::digest(&body))
        );
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(&body);
        write_durable(&self.dir, &record_name(seq), &bytes)?;
        self.insert(seq, record, bytes.len() as u64);
        self.enforce_bounds(Some(seq))?;
        Ok(spooled(seq, record.clone()))
    }

    fn pending(&mut self, limit: usize) -> Result<Vec<SpooledRecord>, SpoolError> {
        let mut out = Vec::new();
        let mut cursor = 0;
        while out.len() < limit {
            let Some(seq) = self.index.range(cursor..).next().map(|(&seq, _)| seq) else {
                break;
            };
            cursor = seq + 1;
            let path = self.record_path(seq);
            match read_record(&path, seq) {
                Ok((record, _)) => out.push(spooled(seq, record)),
                Err(Unreadable::Corrupt(reason)) => {
                    self.quarantine_seq(seq, &reason)?;
                }
                Err(Unreadable::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                    // Removed behind the agent's back: nothing left to deliver or quarantine.
                    let entry = self.remove(seq);
                    tracing::error!(
                        file = %path.display(),
                        key = entry.map(|e| e.key).unwrap_or_default(),
                        "spooled record file vanished; its record cannot be delivered"
                    );
                }
                Err(Unreadable::Io(e)) => {
                    return Err(io_err(format!("cannot read {}", path.display()))(e));
                }
            }
        }
        Ok(out)
    }

    fn ack(&mut self, keys: &[String]) -> Result<usize, SpoolError> {
        let seqs: Vec<u64> = keys
            .iter()
            .filter_map(|k| self.keys.get(k))
            .copied()
            .collect();
        if seqs.is_empty() {
            return Ok(0);
        }
        self.save_state()?;
        for &seq in &seqs {
            let path = self.record_path(seq);
            remove_if_exists(&path)?;
            self.remove(seq);
        }
        sync_dir(&self.dir)?;
        Ok(seqs.len())
    }

    /// Drops the oldest successful records (except `keep`) while the spool is over a bound.
    /// Returns how many were dropped.
    fn enforce_bounds(&mut self, keep: Option<u64>) -> Result<usize, SpoolError> {
        let limits = self.limits;
        let over =
            |count: usize, bytes: u64| count > limits.max_records || bytes > limits.max_bytes;
        let (mut count, mut bytes) = (self.index.len(), self.bytes);
        if !over(count, bytes) {
            return Ok(0);
        }
        let mut victims = Vec::new();
        for (&seq, entry) in &self.index {
            if !over(count, bytes) {
                break;
            }
            if entry.outcome == Outcome::Success && Some(seq) != keep {
                victims.push(seq);
                count -= 1;
                bytes -= entry.size;
            }
        }
        if over(count, bytes) {
            tracing::warn!(
                records = count,
                bytes,
                max_records = limits.max_records,
                max_bytes = limits.max_bytes,
                "spool is over its bound with only failed or partial records left to drop; \
                 keeping them (failures are never dropped): is the coordinator reachable?"
            );
        }
        if victims.is_empty() {
            return Ok(0);
        }
        self.dropped += victims.len() as u64;
        self.save_state()?;
        for &seq in &victims {
            remove_if_exists(&self.record_path(seq))?;
            if let Some(entry) = self.remove(seq) {
                tracing::warn!(
                    key = %entry.key,
                    seq,
                    finished_at = %entry.finished_at,
                    "spool full: dropped the record of a successful run that was never delivered"
                );
            }
        }
        sync_dir(&self.dir)?;
        Ok(victims.len())
    }

    /// Moves a spooled record to quarantine and forgets it.
    fn quarantine_seq(&mut self, seq: u64, reason: &str) -> Result<PathBuf, SpoolError> {
        let q = self.quarantine_file(seq, reason)?;
        self.remove(seq);
        Ok(q.path)
    }

    /// Moves the file of `seq` to `quarantine/` with a `.reason` file beside it.
    fn quarantine_file(&mut self, seq: u64, reason: &str) -> Result<Quarantined, SpoolError> {
        // The number leaves the directory: persist the counter first so it is never reused.
        self.save_state()?;
        let qdir = self.dir.join(QUARANTINE_DIR);
        let name = record_name(seq);
        let mut target = qdir.join(&name);
        let mut n = 1;
        while target.exists() {
            target = qdir.join(format!("{name}.{n}"));
            n += 1;
        }
        let target_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone());
        write_durable(
            &qdir,
            &format!("{target_name}{REASON_EXT}"),
            format!("{reason}\n").as_bytes(),
        )?;
        let from = self.record_path(seq);
        fs::rename(&from, &target).map_err(io_err(format!(
            "cannot move {} to {}",
            from.display(),
            target.display()
        )))?;
        sync_dir(&qdir)?;
        sync_dir(&self.dir)?;
        self.quarantined += 1;
        tracing::warn!(
            file = %target.display(),
            reason,
            "spooled run record quarantined; inspect it, fix it and push it again, or delete it"
        );
        Ok(Quarantined {
            path: target,
            reason: reason.to_string(),
        })
    }

    fn save_state(&self) -> Result<(), SpoolError> {
        let state = State {
            next_seq: self.next_seq,
            dropped: self.dropped,
        };
        let body = serde_json::to_vec(&state).map_err(|e| SpoolError::Encode {
            key: STATE_FILE.into(),
            reason: e.to_string(),
        })?;
        write_durable(&self.dir, STATE_FILE, &body)
    }
}

fn spooled(seq: u64, record: RunRecord) -> SpooledRecord {
    SpooledRecord {
        key: record.run_id.clone(),
        seq,
        system: record.system.clone(),
        record,
    }
}

/// The persisted counters; a missing or unreadable state file counts as zero (the numbers in
/// use are then recovered from the file names).
fn read_state(dir: &Path) -> State {
    let path = dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(
                file = %path.display(),
                "spool state file is unreadable ({e}); recovering the sequence from the record files"
            );
            State::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
        Err(e) => {
            tracing::warn!(
                file = %path.display(),
                "cannot read the spool state file ({e}); recovering the sequence from the record files"
            );
            State::default()
        }
    }
}

fn record_name(seq: u64) -> String {
    format!("{seq:020}{RECORD_EXT}")
}

fn parse_record_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(RECORD_EXT)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `<seq>.rec` or `<seq>.rec.<n>` (a second file quarantined under the same number).
fn parse_quarantined_name(name: &str) -> Option<u64> {
    if name.ends_with(REASON_EXT) || name.ends_with(TEMP_EXT) {
        return None;
    }
    let base = match name.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    };
    parse_record_name(base)
}

/// Why a record file could not be read.
enum Unreadable {
    /// The file is damaged: quarantine it.
    Corrupt(String),
    /// The file could not be read at all (permissions, disk): an error, the file stays.
    Io(io::Error),
}

/// Reads and checks a record file: header, sequence number, length, checksum, JSON.
fn read_record(path: &Path, seq: u64) -> Result<(RunRecord, u64), Unreadable> {
    let bytes = fs::read(path).map_err(Unreadable::Io)?;
    let corrupt = |what: String| Unreadable::Corrupt(what);
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line (truncated?)".into()))?;
    let header =
        std::str::from_utf8(&bytes[..newline]).map_err(|_| corrupt("header is not text".into()))?;
    let body = &bytes[newline + 1..];
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, file_seq, len, sha] = fields[..] else {
        return Err(corrupt(format!("malformed header {header:?}")));
    };
    if magic != MAGIC {
        return Err(corrupt(format!(
            "header starts with {magic:?}, expected {MAGIC:?}"
        )));
    }
    if file_seq.parse::<u64>().ok() != Some(seq) {
        return Err(corrupt(format!(
            "header names sequence {file_seq}, the file name {seq}"
        )));
    }
    if len.parse::<usize>().ok() != Some(body.len()) {
        return Err(corrupt(format!(
            "body is {} bytes, header says {len} (truncated?)",
            body.len()
        )));
    }
    if hex::encode(Sha256::digest(body)) != sha {
        return Err(corrupt("body does not match its sha256 checksum".into()));
    }
    let record: RunRecord = serde_json::from_slice(body)
        .map_err(|e| corrupt(format!("body is not a run record: {e}")))?;
    if record.run_id.is_empty() {
        return Err(corrupt("record has an empty run_id".into()));
    }
    Ok((record, bytes.len() as u64))
}

/// Writes `name` in `dir` so that it appears complete or not at all, and durably.
fn write_durable(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!(".{name}{TEMP_EXT}"));
    let path = dir.join(name);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(format!("cannot write {}", tmp.display()))(e));
    }
    fs::rename(&tmp, &path).map_err(io_err(format!("cannot rename into {}", path.display())))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("cannot sync directory {}", dir.display())))
}

fn remove_if_exists(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io_err(format!("cannot remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunKind;

    fn record(id: &str, system: &str, outcome: Outcome) -> RunRecord {
        let t: Timestamp = "2026-03-01T02:00:00Z".parse().unwrap();
        let mut r = RunRecord::start(RunKind::Backup, id.into(), "lf-srv-01".into(), t);
        r.system = Some(system.into());
        r.outcome = outcome;
        r
    }

    fn keys(records: &[SpooledRecord]) -> Vec<&str> {
        records.iter().map(|r| r.key.as_str()).collect()
    }

    fn open(dir: &Path) -> Spool {
        Spool::open(dir, SpoolLimits::default()).unwrap()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn pending_returns_records_in_push_order() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        let ids = ["c", "a", "b", "e", "d"];
        for (i, id) in ids.iter().enumerate() {
            let system = if i % 2 == 0 { "finance" } else { "ledger" };
            let pushed = spool.push(&record(id, system, Outcome::Success)).unwrap();
            assert_eq!(pushed.seq, i as u64);
            assert_eq!(pushed.key, *id);
        }
        let all = spool.pending(100).unwrap();
        assert_eq!(keys(&all), ids);
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(all[1].system.as_deref(), Some("ledger"));
        assert_eq!(keys(&spool.pending(2).unwrap()), ["c", "a"]);
        assert_eq!(spool.depth(), 5);

        assert_eq!(spool.ack(&["a".into(), "zz".into()]).unwrap(), 1);
        assert_eq!(keys(&spool.pending(100).unwrap()), ["c", "b", "e", "d"]);
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let first = record("r1", "finance", Outcome::Failed);
        {
            let spool = open(dir.path());
            spool.push(&first).unwrap();
            spool
                .push(&record("r2", "finance", Outcome::Success))
                .unwrap();
        }
        let spool = open(dir.path());
        let pending = spool.pending(10).unwrap();
        assert_eq!(keys(&pending), ["r1", "r2"]);
        assert_eq!(pending[0].record, first);
        assert_eq!(spool.recovery(), Recovery::default());
        assert_eq!(spool.oldest(), Some(first.finished_at));
        // The sequence continues after the highest existing number.
        assert_eq!(
            spool
                .push(&record("r3", "x", Outcome::Success))
                .unwrap()
                .seq,
            2
        );
    }

    #[test]
    fn a_leftover_temp_file_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = open(dir.path());
            spool
                .push(&record("r1", "finance", Outcome::Success))
                .unwrap();
        }
        // A push interrupted before its rename.
        let tmp = dir.path().join(format!(".{}{TEMP_EXT}", record_name(1)));
        fs::write(&tmp, b"lifeboat-spool/1 1 9999 ab\n{\"run_id\":").unwrap();
        let spool = open(dir.path());
        assert!(!tmp.exists());
        assert_eq!(spool.recovery().temp_files_removed, 1);
        assert_eq!(keys(&spool.pending(10).unwrap()), ["r1"]);
        assert_eq!(
            files_in(dir.path()),
            [record_name(0), "lock".into(), "quarantine".into()]
        );
    }

    #[test]
    fn a_damaged_record_file_is_quarantined_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = open(dir.path());
            for id in ["r1", "r2", "r3"] {
                spool
                    .push(&record(id, "finance", Outcome::Success))
                    .unwrap();
            }
        }
        // Truncate r2 by 10 bytes; flip a bit in r3's body.
        let p2 = dir.path().join(record_name(1));
        let bytes = fs::read(&p2).unwrap();
        let body_len = bytes.len() - header_len(&bytes);
        fs::write(&p2, &bytes[..bytes.len() - 10]).unwrap();
        let p3 = dir.path().join(record_name(2));
        let mut bytes = fs::read(&p3).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        fs::write(&p3, &bytes).unwrap();

        let spool = open(dir.path());
        assert_eq!(keys(&spool.pending(10).unwrap()), ["r1"]);
        let recovery = spool.recovery();
        let reasons: Vec<&str> = recovery
            .quarantined
            .iter()
            .map(|q| q.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                format!(
                    "body is {} bytes, header says {body_len} (truncated?)",
                    body_len - 10
                ),
                "body does not match its sha256 checksum".to_string(),
            ]
        );
        let qdir = dir.path().join(QUARANTINE_DIR);
        assert_eq!(
            files_in(&qdir),
            [
                record_name(1),
                format!("{}{REASON_EXT}", record_name(1)),
                record_name(2),
                format!("{}{REASON_EXT}", record_name(2)),
            ]
        );
        assert_eq!(
            fs::read_to_string(qdir.join(format!("{}{REASON_EXT}", record_name(2)))).unwrap(),
            "body does not match its sha256 checksum\n"
        );
        assert_eq!(spool.quarantined(), 2);
        // The quarantined numbers are not handed out again.
        assert_eq!(
            spool
                .push(&record("r4", "x", Outcome::Success))
                .unwrap()
                .seq,
            3
        );
        drop(spool);
        assert_eq!(open(dir.path()).quarantined(), 2);
    }

    /// Length of the header line of a record file, newline included.
    fn header_len(bytes: &[u8]) -> usize {
        bytes.iter().position(|&b| b == b'\n').unwrap() + 1
    }

    #[test]
    fn the_bound_drops_oldest_successes_and_never_failures() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SpoolLimits {
            max_records: 3,
            max_bytes: u64::MAX,
        };
        let spool = Spool::open(dir.path(), limits).unwrap();
        let pushes = [
            ("f1", Outcome::Failed),
            ("s1", Outcome::Success),
            ("p1", Outcome::Partial),
            ("s2", Outcome::Success),
            ("f2", Outcome::Failed),
            ("f3", Outcome::Failed),
            ("s3", Outcome::Success),
        ];
        for (id, outcome) in pushes {
            spool.push(&record(id, "finance", outcome)).unwrap();
        }
        // s1 went for s2, s2 for f2; then only failures are left to drop, and the newest
        // success (s3) is kept: the spool stays over its bound rather than lose a failure.
        assert_eq!(
            keys(&spool.pending(10).unwrap()),
            ["f1", "p1", "f2", "f3", "s3"]
        );
        assert_eq!(spool.dropped(), 2);

        // The byte bound works alike, and the dropped counter survives a restart.
        drop(spool);
        let record_size = fs::metadata(dir.path().join(record_name(0))).unwrap().len();
        let limits = SpoolLimits {
            max_records: 100,
            max_bytes: 4 * record_size,
        };
        let spool = Spool::open(dir.path(), limits).unwrap();
        assert_eq!(spool.recovery().dropped, 1, "s3 dropped at open");
        assert_eq!(spool.dropped(), 3);
        assert_eq!(keys(&spool.pending(10).unwrap()), ["f1", "p1", "f2", "f3"]);
    }

    #[test]
    fn the_sequence_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = open(dir.path());
            for id in ["a", "b", "c"] {
                spool
                    .push(&record(id, "finance", Outcome::Success))
                    .unwrap();
            }
            assert_eq!(spool.ack(&["a".into(), "b".into(), "c".into()]).unwrap(), 3);
            assert_eq!(spool.depth(), 0);
        }
        let spool = open(dir.path());
        assert_eq!(
            spool
                .push(&record("d", "finance", Outcome::Success))
                .unwrap()
                .seq,
            3
        );
        // Even with the state file damaged, the record files still carry the numbers.
        drop(spool);
        fs::write(dir.path().join(STATE_FILE), b"{garbage").unwrap();
        let spool = open(dir.path());
        assert_eq!(
            spool
                .push(&record("e", "finance", Outcome::Success))
                .unwrap()
                .seq,
            4
        );
    }

    #[test]
    fn a_second_open_of_the_same_spool_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let err = Spool::open(dir.path(), SpoolLimits::default()).unwrap_err();
        assert!(matches!(err, SpoolError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another lifeboat agent"));
        // Clones share the one lock; dropping every handle releases it.
        let clone = first.clone();
        drop(first);
        assert!(Spool::open(dir.path(), SpoolLimits::default()).is_err());
        drop(clone);
        assert!(Spool::open(dir.path(), SpoolLimits::default()).is_ok());
    }

    #[test]
    fn pushing_a_key_twice() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        let r = record("r1", "finance", Outcome::Success);
        let first = spool.push(&r).unwrap();
        // A retried push of the same record is a no-op.
        assert_eq!(spool.push(&r).unwrap(), first);
        assert_eq!(spool.depth(), 1);
        // A different record under the same key is refused.
        let other = record("r1", "finance", Outcome::Failed);
        assert!(matches!(spool.push(&other), Err(SpoolError::DuplicateKey(k)) if k == "r1"));
        assert!(matches!(
            spool.push(&record("", "finance", Outcome::Failed)),
            Err(SpoolError::EmptyKey)
        ));
        // After delivery, the key may be spooled again (the coordinator dedupes).
        spool.ack(&["r1".into()]).unwrap();
        assert_eq!(spool.push(&r).unwrap().seq, 1);
    }

    #[test]
    fn quarantine_sets_a_record_aside_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        spool
            .push(&record("r1", "finance", Outcome::Failed))
            .unwrap();
        spool
            .push(&record("r2", "finance", Outcome::Failed))
            .unwrap();
        let path = spool
            .quarantine("r1", "coordinator: malformed: no system")
            .unwrap()
            .unwrap();
        assert_eq!(path, dir.path().join(QUARANTINE_DIR).join(record_name(0)));
        let reason =
            fs::read_to_string(path.with_file_name(format!("{}{REASON_EXT}", record_name(0))));
        assert_eq!(reason.unwrap(), "coordinator: malformed: no system\n");
        assert_eq!(keys(&spool.pending(10).unwrap()), ["r2"]);
        assert_eq!(spool.quarantine("r1", "again").unwrap(), None);
        assert_eq!(spool.stats().quarantined, 1);
        assert_eq!(spool.stats().depth, 1);
    }

    #[test]
    fn a_record_damaged_while_open_is_quarantined_by_pending() {
        let dir = tempfile::tempdir().unwrap();
        let spool = open(dir.path());
        for id in ["r1", "r2", "r3"] {
            spool.push(&record(id, "finance", Outcome::Failed)).unwrap();
        }
        fs::write(dir.path().join(record_name(0)), b"").unwrap();
        assert_eq!(keys(&spool.pending(2).unwrap()), ["r2", "r3"]);
        assert_eq!(spool.quarantined(), 1);
        assert_eq!(spool.depth(), 2);
    }
}
