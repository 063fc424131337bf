//! rustic_core's `WriteBackend` over any `object_store::ObjectStore` (local files, S3, GCS, Azure).
//!
//! rustic_core is synchronous and calls its backend from its own threads (packer threads, rayon
//! pools), so every method here blocks on a tokio [`Handle`] captured at construction. Calling
//! these methods from inside an async task would panic: callers must be on a blocking thread
//! (`spawn_blocking`). The key layout is restic's (`config`, `keys/`, `snapshots/`, `index/`,
//! `data/xx/`), so the repositories stay readable by restic.
//!
//! Errors carry a [`StoreError`] as their source, classified (unreachable, access denied, not
//! found, …) so the engine can map them to exit codes. Messages never contain credentials: the
//! secrets known to the backend are scrubbed from every message it produces.
//!
//! A backend of a repository across the branch link carries the engine's [`LinkGate`]: every
//! write pays for its bytes there first (the limit of the moment) and fails with
//! [`StoreErrorKind::WindowClosed`] outside the link's windows. Reads are not paced.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use jiff::Timestamp;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use tokio::runtime::Handle;

use super::throttle::{LinkGate, Refusal};

/// What kind of storage failure happened; decides the exit code and the advice given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Connection refused, DNS failure, timeout: the store could not be reached.
    Unreachable,
    /// The store answered 401/403: credentials missing, wrong or expired.
    AccessDenied,
    /// The object does not exist.
    NotFound,
    /// The operation was aborted on purpose (shutdown).
    Aborted,
    /// The branch link's transfer window closed; traffic may flow again at `reopens`.
    WindowClosed { reopens: Option<Timestamp> },
    /// Anything else the store reported.
    Other,
}

/// A classified, secret-free storage error.
#[derive(Debug, Clone)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        let kind = match refusal {
            Refusal::WindowClosed { reopens } => StoreErrorKind::WindowClosed { reopens },
            Refusal::Aborted => StoreErrorKind::Aborted,
        };
        StoreError {
            kind,
            message: refusal.to_string(),
        }
    }
}

/// Removes every known secret from a message.
#[derive(Clone, Default)]
pub struct Scrubber(Arc<Vec<String>>);

impl Scrubber {
    pub fn new(secrets: Vec<String>) -> Self {
        Scrubber(Arc::new(
            secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        ))
    }

    pub fn scrub(&self, message: &str) -> String {
        self.0.iter().fold(message.to_string(), |m, secret| {
            m.replace(secret.as_str(), "<redacted>")
        })
    }
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.0.len())
    }
}

/// Bounds the memory that concurrent large pack reads cause.
///
/// rustic_core's restore reads up to 20 pack ranges at once (its own thread pool); without a
/// bound its peak memory grew with pack size (1.0 GiB on the 1 GiB benchmark set, restic:
/// 0.12 GiB). The read budget is the bytes of pack data being read or held at once: a read
/// takes its length before it starts and gives it back when the returned buffer is dropped.
/// (Decoded blobs no longer add to this: the vendored restore decodes each into its thread's
/// reused buffers and writes it at once.)
///
/// A reader that waits longer than [`BUDGET_WAIT`] proceeds anyway: a caller holding one buffer
/// while asking for another can never deadlock, it only exceeds the budget for a moment.
#[derive(Debug)]
pub struct ReadBudget {
    available: Mutex<u64>,
    freed: Condvar,
    total: u64,
}

/// Makes jemalloc give freed pages back at once instead of after its default 10 s decay, in
/// every arena. For restores: a repository open frees 64–128 MiB of scrypt memory and a restore's
/// pack ranges come and go in sizes jemalloc does not reuse, so with the default decay peak
/// memory counted all of them (307 MiB → 140 MiB on the benchmark). Not for backups and checks,
/// which churn pack-sized buffers and pay for decay 0 in page faults.
pub fn release_freed_memory_at_once() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let arenas = tikv_jemalloc_ctl::arenas::narenas::read().unwrap_or(0);
    let mut keys = vec![
        "arenas.dirty_decay_ms\0".to_string(),
        "arenas.muzzy_decay_ms\0".to_string(),
    ];
    for i in 0..arenas {
        keys.push(format!("arena.{i}.dirty_decay_ms\0"));
        keys.push(format!("arena.{i}.muzzy_decay_ms\0"));
    }
    for key in &keys {
        // Arenas not yet in use refuse the write; they take the new default when created.
        let _ = key.as_str().name().write(0isize);
    }
}

/// Reads smaller than this are not counted (index and tree reads, single blobs).
const BUDGET_MIN_READ: u64 = 1 << 20;
/// How long a reader waits for budget before it proceeds regardless.
const BUDGET_WAIT: Duration = Duration::from_secs(20);

impl ReadBudget {
    pub fn new(total: u64) -> Arc<Self> {
        Arc::new(ReadBudget {
            available: Mutex::new(total),
            freed: Condvar::new(),
            total,
        })
    }

    /// Takes `want` bytes of budget, waiting for them (not once `abort` is set: the read that
    /// follows fails at once then).
    fn acquire(self: &Arc<Self>, want: u64, abort: &AtomicBool) -> Permit {
        let want = want.min(self.total);
        let deadline = std::time::Instant::now() + BUDGET_WAIT;
        let mut available = self.available.lock().unwrap_or_else(|p| p.into_inner());
        while *available < want && !abort.load(Ordering::Relaxed) {
            let now = std::time::Instant::now();
            if now >= deadline {
                // Proceed over budget rather than risk a deadlock; the permit still returns it.
                break;
            }
            // In slices, so that an abort is seen while waiting.
            available = self
                .freed
                .wait_timeout(available, (deadline - now).min(Duration::from_millis(100)))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let taken = want.min(*available);
        *available -= taken;
        Permit {
            budget: self.clone(),
            taken,
        }
    }
}

/// Budget taken by one read; returned on drop.
#[derive(Debug)]
struct Permit {
    budget: Arc<ReadBudget>,
    taken: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut available = self
            .budget
            .available
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *available += self.taken;
        self.budget.freed.notify_all();
    }
}

/// A read buffer that gives its budget back when the last reference to it is dropped.
struct Budgeted {
    bytes: Bytes,
    _permit: Permit,
}

impl AsRef<[u8]> for Budgeted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The adapter. Cheap to clone the `Arc` it is wrapped in; one per repository.
#[derive(Debug)]
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    /// Key prefix of the repository inside the store (no leading or trailing slash; may be empty).
    prefix: String,
    /// Human-readable location for messages, e.g. `s3://bucket/prefix` (never with credentials).
    location: String,
    handle: Handle,
    scrubber: Scrubber,
    /// Set to make every further call fail with [`StoreErrorKind::Aborted`]: the only way to stop
    /// a running rustic_core operation, which cannot be cancelled otherwise.
    abort: Arc<AtomicBool>,
    budget: Arc<ReadBudget>,
    /// Whether large reads go through `budget` (restores only: a check or copy reads and
    /// drops each pack at once, and is faster without the valve).
    budgeted: AtomicBool,
    /// The branch link's gate, for a repository across it: writes pay there first.
    link: Option<Arc<LinkGate>>,
    /// The first failed write. rustic_core's packer hands a failed pack write to its producers
    /// as a closed channel, so the error an operation returns may not carry the cause; this does.
    write_failure: Mutex<Option<StoreError>>,
}

/// Default memory budget for large pack reads (see [`ReadBudget`]); `LIFEBOAT_READ_BUDGET_MIB`.
/// A read holds its budget until its blobs are written, so the budget is also the read-ahead:
/// with a cold page cache 32 MiB (two 16 MiB packs) left the disk idle while both cores
/// decoded (1 GiB restore 4.4–5.2 s); 64 MiB overlaps them (2.9–3.1 s) for ~30 MiB more RSS.
pub const DEFAULT_READ_BUDGET: u64 = 64 << 20;

/// The read budget: `LIFEBOAT_READ_BUDGET_MIB` or [`DEFAULT_READ_BUDGET`].
fn read_budget() -> u64 {
    std::env::var("LIFEBOAT_READ_BUDGET_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&mib| mib > 0)
        .map_or(DEFAULT_READ_BUDGET, |mib| mib << 20)
}

impl ObjectStoreBackend {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: String,
        handle: Handle,
        scrubber: Scrubber,
    ) -> Self {
        ObjectStoreBackend {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            location,
            handle,
            scrubber,
            abort: Arc::new(AtomicBool::new(false)),
            budget: ReadBudget::new(read_budget()),
            budgeted: AtomicBool::new(false),
            link: None,
            write_failure: Mutex::new(None),
        }
    }

    /// Routes every write through `gate` (a repository across the branch link).
    pub fn with_link(mut self, gate: Arc<LinkGate>) -> Self {
        self.link = Some(gate);
        self
    }

    /// The first write that failed on this backend, if any (see `write_failure`).
    pub fn write_failure(&self) -> Option<StoreError> {
        self.write_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record_write_failure(&self, err: &StoreError) {
        self.write_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| err.clone());
    }

    /// Bounds the memory of large reads from now on (see [`ReadBudget`]); used by restores.
    pub fn limit_read_memory(&self) {
        self.budgeted.store(true, Ordering::Relaxed);
    }

    /// A flag that, once set, fails all further calls of this backend.
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        self.abort.clone()
    }

    fn dir(tpe: FileType) -> &'static str {
        match tpe {
            FileType::Config => "config",
            FileType::Key => "keys",
            FileType::Snapshot => "snapshots",
            FileType::Index => "index",
            FileType::Pack => "data",
        }
    }

    fn join(&self, rest: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(rest)
        } else {
            StorePath::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn path(&self, tpe: FileType, id: &Id) -> StorePath {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => self.join("config"),
            FileType::Pack => self.join(&format!("data/{}/{}", &hex[..2], hex.as_str())),
            _ => self.join(&format!("{}/{}", Self::dir(tpe), hex.as_str())),
        }
    }

    fn block_on<T>(
        &self,
        what: &str,
        target: &StorePath,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> RusticResult<T> {
        self.try_block_on(fut)
            .map_err(|e| self.error(what, target, e))
    }

    /// Runs a store call unless aborted; the error classified.
    fn try_block_on<T>(
        &self,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, StoreError> {
        if self.abort.load(Ordering::Relaxed) {
            return Err(Refusal::Aborted.into());
        }
        self.handle
            .block_on(fut)
            .map_err(|e| classify(&e, &self.scrubber))
    }

    fn error(&self, what: &str, target: &StorePath, err: StoreError) -> Box<RusticError> {
        let guidance = format!("{what} {target} at {}: {}", self.location, err.message);
        RusticError::with_source(ErrorKind::Backend, self.scrubber.scrub(&guidance), err)
    }
}

/// Turns an object_store error into a classified message without secrets.
pub fn classify(err: &object_store::Error, scrubber: &Scrubber) -> StoreError {
    use object_store::Error as E;
    let mut kind = match err {
        E::NotFound { .. } => StoreErrorKind::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreErrorKind::AccessDenied,
        _ => StoreErrorKind::Other,
    };
    // Walk the source chain for HTTP-level facts (status codes, connection failures).
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        // object_store's retry error type is private: recognise refusals by their text.
        let text = e.to_string();
        if [
            "401 Unauthorized",
            "403 Forbidden",
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
        ]
        .iter()
        .any(|marker| text.contains(marker))
        {
            kind = StoreErrorKind::AccessDenied;
        }
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as H;
            if matches!(
                http.kind(),
                H::Connect | H::Timeout | H::Interrupted | H::Request
            ) {
                kind = StoreErrorKind::Unreachable;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kind = match io.kind() {
                std::io::ErrorKind::NotFound => StoreErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => StoreErrorKind::AccessDenied,
                _ => kind,
            };
        }
        source = e.source();
    }
    // object_store's Display repeats the store name and nests sources; keep it on one line.
    let message = scrubber.scrub(&err.to_string().replace('\n', " "));
    StoreError { kind, message }
}

impl ReadBackend for ObjectStoreBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let path = self.join("config");
            return match self.handle.block_on(self.store.head(&path)) {
                Ok(meta) => Ok(vec![(Id::default(), size32(meta.size))]),
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(self.error("cannot stat", &path, classify(&e, &self.scrubber))),
            };
        }
        let dir = self.join(Self::dir(tpe));
        let metas: Vec<object_store::ObjectMeta> = self.block_on(
            "cannot list",
            &dir,
            self.store.list(Some(&dir)).try_collect(),
        )?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                // Skips restic's temporary files and anything foreign (staging files, .DS_Store).
                let id = Id::parse_some(name, tpe)?;
                let size = u32::try_from(meta.size).ok()?;
                Some((id, size))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.block_on("cannot read", &path, async {
            self.store.get(&path).await?.bytes().await
        })
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        // u64 arithmetic: offset + length may overflow u32.
        let range: Range<u64> = u64::from(offset)..u64::from(offset) + u64::from(length);
        // An aborted operation fails at once rather than wait for budget first (`block_on`
        // refuses before it polls the read).
        if u64::from(length) < BUDGET_MIN_READ
            || !self.budgeted.load(Ordering::Relaxed)
            || self.abort.load(Ordering::Relaxed)
        {
            return self.block_on("cannot read", &path, self.store.get_range(&path, range));
        }
        let permit = self.budget.acquire(u64::from(length), &self.abort);
        let bytes = self.block_on("cannot read", &path, self.store.get_range(&path, range))?;
        Ok(Bytes::from_owner(Budgeted {
            bytes,
            _permit: permit,
        }))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).to_string()
    }
}

impl WriteBackend for ObjectStoreBackend {
    fn create(&self) -> RusticResult<()> {
        // Object stores have no directories; restic accepts repositories without `data/xx/`.
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        buf: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let parts = buf.into_vec();
        let result = match &self.link {
            Some(gate) => {
                let len = parts.iter().map(|p| p.len() as u64).sum();
                gate.pass(len, &self.abort).map_err(StoreError::from)
            }
            None => Ok(()),
        }
        .and_then(|()| {
            let payload: PutPayload = parts.into_iter().collect();
            self.try_block_on(self.store.put(&path, payload))
        });
        result.map(|_| ()).map_err(|e| {
            self.record_write_failure(&e);
            self.error("cannot write", &path, e)
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        match self.handle.block_on(self.store.delete(&path)) {
            // S3 deletes of missing keys succeed; make local files behave the same.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("cannot delete", &path, classify(&e, &self.scrubber))),
        }
    }
}

fn size32(size: u64) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// Finds the [`StoreError`] behind a rustic error, if the failure came from storage.
pub fn store_error_of<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a StoreError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<StoreError>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_blocks_until_returned_and_never_deadlocks() {
        let budget = ReadBudget::new(10);
        let go = AtomicBool::new(false);
        let a = budget.acquire(8, &go);
        assert_eq!(*budget.available.lock().unwrap(), 2);
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                let p = budget.acquire(5, &AtomicBool::new(false));
                p.taken
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "acquired more than the budget");
        drop(a);
        assert_eq!(waiter.join().unwrap(), 5);
        assert_eq!(*budget.available.lock().unwrap(), 10);
        // Requests larger than the whole budget are clamped, not refused.
        assert_eq!(budget.acquire(100, &go).taken, 10);
    }

    #[test]
    fn an_abort_ends_a_wait_for_budget() {
        let budget = ReadBudget::new(10);
        let held = budget.acquire(10, &AtomicBool::new(false));
        let abort = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (budget, abort) = (budget.clone(), abort.clone());
            std::thread::spawn(move || budget.acquire(5, &abort).taken)
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        let asked = std::time::Instant::now();
        abort.store(true, Ordering::Relaxed);
        assert_eq!(waiter.join().unwrap(), 0, "an aborted wait takes nothing");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        drop(held);
    }

    #[test]
    fn scrubber_removes_secrets() {
        let s = Scrubber::new(vec!["topsecretvalue".into(), "ab".into()]);
        assert_eq!(s.scrub("key topsecretvalue ab"), "key <redacted> ab");
    }
}
