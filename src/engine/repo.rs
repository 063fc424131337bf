//! Access to one policy repository: its backend, password, cache and cross-process lock.
//!
//! Everything here blocks (secret commands, scrypt, storage round trips): call it only from a
//! blocking thread. Operations on one repository are serialised by an exclusive advisory lock on
//! `<state>/locks/<repo>.lock`, which holds across processes on this host (CLI and agent) and is
//! released by the kernel if the process dies, so a `kill -9` never leaves a stale lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustic_core::repofile::ConfigFile;
use rustic_core::{
    ConfigOptions, Credentials, FileType, Id, KeyOptions, OpenStatus, Repository,
    RepositoryBackends, RepositoryOptions, WriteBackend,
};
use tokio::runtime::Handle;

use super::backend::ObjectStoreBackend;
use super::error::EngineError;
use super::progress::Bars;
use super::store;
use super::throttle::LinkGate;
use crate::policy::Repository as RepoPolicy;
use crate::secret::Secret;

/// Size of data packs in new repositories (restic's default too). rustic's default grows packs
/// with the repository (32 MiB and up); restore memory grows with pack size times compression
/// ratio, so lifeboat keeps packs at this fixed size.
pub const DATA_PACK_SIZE: u32 = 16 << 20;

/// How long a host that has just created a repository waits before checking that its `config`
/// is the one stored ([`RepoAccess::settle_creation`]): longer than another creator needs
/// between finding no repository and writing its `config` (a key derivation and two writes).
const CREATION_SETTLE: Duration = Duration::from_secs(3);

/// An opened (not yet unlocked) repository.
pub type OpenRepo = Repository<OpenStatus>;

/// Where lifeboat keeps its own state on this host.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }
    pub fn locks(&self) -> PathBuf {
        self.0.join("locks")
    }
    pub fn runs(&self) -> PathBuf {
        self.0.join("runs")
    }
}

/// Connection to one repository of the policy.
pub struct RepoAccess {
    pub policy: RepoPolicy,
    backend: Arc<ObjectStoreBackend>,
    password: Secret,
    cache_dir: PathBuf,
    lock_path: PathBuf,
    bars: Bars,
}

/// Held while an operation runs on a repository; dropping it releases the lock.
pub struct RepoLock {
    _file: File,
}

impl RepoAccess {
    /// Resolves the password and credentials and builds the backend. Does not touch the storage.
    pub fn connect(
        repo: &RepoPolicy,
        state: &StateDir,
        handle: Handle,
        bars: Bars,
        create_local: bool,
    ) -> Result<RepoAccess, EngineError> {
        Self::connect_through(repo, state, handle, bars, create_local, None)
    }

    /// Like [`RepoAccess::connect`], with every write paced and windowed by `link`.
    pub fn connect_through(
        repo: &RepoPolicy,
        state: &StateDir,
        handle: Handle,
        bars: Bars,
        create_local: bool,
        link: Option<Arc<LinkGate>>,
    ) -> Result<RepoAccess, EngineError> {
        let password = repo
            .password
            .resolve()
            .map_err(|source| EngineError::Secret {
                repository: repo.id.to_string(),
                what: "password".into(),
                source,
            })?;
        let built = store::build(repo, create_local)?;
        let mut scrub = vec![password.expose().to_string()];
        scrub.extend(built.secrets);
        let backend = ObjectStoreBackend::new(
            built.store,
            &built.prefix,
            built.location,
            handle,
            super::backend::Scrubber::new(scrub),
        );
        let backend = match link {
            Some(gate) => backend.with_link(gate),
            None => backend,
        };
        Ok(RepoAccess {
            policy: repo.clone(),
            backend: Arc::new(backend),
            password,
            cache_dir: state.cache(),
            lock_path: state.locks().join(format!("{}.lock", repo.id)),
            bars,
        })
    }

    pub fn id(&self) -> &str {
        self.policy.id.as_str()
    }

    /// Takes this host's exclusive lock on the repository, waiting for a running operation.
    pub fn lock(&self) -> Result<RepoLock, EngineError> {
        lock_file(&self.lock_path, self.id())
    }

    fn unopened(&self) -> Result<Repository<()>, EngineError> {
        let opts = RepositoryOptions::default().cache_dir(self.cache_dir.clone());
        let backends = RepositoryBackends::new(self.backend.clone(), None);
        Repository::new_with_progress(&opts, &backends, self.bars.clone())
            .map_err(|e| self.rustic(e))
    }

    /// Converts a rustic_core error met on this repository. An error that says nothing of
    /// storage (rustic's packer reports a failed pack write as a closed channel) is replaced by
    /// the write failure behind it, so a closed window reads `window-closed`.
    pub fn rustic(&self, e: Box<rustic_core::RusticError>) -> EngineError {
        match EngineError::from_rustic(self.id(), e) {
            err @ EngineError::Rustic { .. } => match self.backend.write_failure() {
                Some(store) => {
                    tracing::debug!(repository = self.id(), "{err} (caused by a failed write)");
                    EngineError::from_store(self.id(), &store)
                }
                None => err,
            },
            err => err,
        }
    }

    /// Whether a repository exists at the location (reads only the config file's presence).
    pub fn exists(&self) -> Result<bool, EngineError> {
        let repo = self.unopened()?;
        Ok(repo.config_id().map_err(|e| self.rustic(e))?.is_some())
    }

    /// Opens the repository (one scrypt key derivation).
    pub fn open(&self) -> Result<OpenRepo, EngineError> {
        if !self.exists()? {
            return Err(EngineError::NotInitialised {
                repository: self.id().to_string(),
                location: self.policy.url.to_string(),
            });
        }
        self.unopened()?
            .open(&Credentials::password(self.password.expose()))
            .map_err(|e| self.rustic(e))
    }

    /// Creates the repository (format v2, zstd at the policy's level). With `chunker_from`, the
    /// new repository takes that repository's chunker parameters so copies deduplicate.
    pub fn init(&self, chunker_from: Option<&ConfigFile>) -> Result<OpenRepo, EngineError> {
        let creds = Credentials::password(self.password.expose());
        let repo = self.unopened()?;
        let level = self.policy.compression;
        let result = match chunker_from {
            None => repo.init(
                &creds,
                &KeyOptions::default(),
                &ConfigOptions::default()
                    .set_compression(level)
                    .set_datapack_size(bytesize::ByteSize::b(DATA_PACK_SIZE.into()))
                    .set_datapack_size_limit(bytesize::ByteSize::b(DATA_PACK_SIZE.into())),
            ),
            Some(source) => {
                let mut config = source.clone();
                config.id = Id::random().into();
                config.compression = Some(level);
                config.append_only = None;
                config.is_hot = None;
                repo.init_with_config(&creds, &KeyOptions::default(), config)
            }
        };
        result.map_err(|e| self.rustic(e))
    }

    /// Creates the repository for a first copy from `source` ([`Self::init`] with its chunker),
    /// then makes sure the repository this host created is the one that stays. Two hosts that
    /// find no repository at the same moment (a shared off-site store at their first copy) both
    /// create one, and object stores such as Garage ignore create-only writes: the last `config`
    /// written wins, and the other host's key no longer opens it. Every creator that looked
    /// before another's `config` landed writes its own within one key derivation, so after
    /// [`CREATION_SETTLE`] the stored `config` is final: if it is not ours, we lost — our key is
    /// removed (it would make the repository fail to open for whoever lists it first) and the
    /// winner's repository is opened with the same password.
    pub fn init_for_copy(&self, source: &ConfigFile) -> Result<OpenRepo, EngineError> {
        let created = self.init(Some(source))?;
        self.settle_creation(created, CREATION_SETTLE)
    }

    /// After `settle`: `created` if its `config` is the one stored, else the repository that
    /// won, opened with the password, with our key removed ([`Self::init_for_copy`]).
    fn settle_creation(
        &self,
        created: OpenRepo,
        settle: Duration,
    ) -> Result<OpenRepo, EngineError> {
        std::thread::sleep(settle);
        let ours = created.config().id;
        let stored = self
            .unopened()?
            .open(&Credentials::Masterkey(created.key()))
            .map(|r| r.config().id);
        if matches!(stored, Ok(id) if id == ours) {
            return Ok(created);
        }
        tracing::warn!(
            repository = self.id(),
            "another host created this repository at the same moment; using theirs"
        );
        if let Some(key) = created.key_id() {
            self.backend
                .remove(FileType::Key, &key.into_inner(), false)
                .map_err(|e| self.rustic(e))?;
        }
        self.open()
    }

    /// A flag that, once set, fails every further storage call of this repository: the only
    /// way to stop a running rustic_core operation.
    pub fn abort_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.backend.abort_flag()
    }

    /// Bounds the memory of large pack reads (restores).
    pub fn limit_read_memory(&self) {
        self.backend.limit_read_memory();
    }

    /// The location for messages.
    pub fn location(&self) -> String {
        self.policy.url.to_string()
    }

    /// The cache directory rustic uses for this host.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
}

/// Opens `path` and takes an exclusive advisory lock on it, waiting while another process (or
/// another operation of this one) holds it.
fn lock_file(path: &Path, what: &str) -> Result<RepoLock, EngineError> {
    let io = |context: String| move |source| EngineError::Io { context, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(format!("cannot open lock {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!(
                repository = what,
                "waiting for another lifeboat operation on this repository"
            );
            file.lock()
                .map_err(io(format!("cannot lock {}", path.display())))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io(format!("cannot lock {}", path.display()))(e));
        }
    }
    Ok(RepoLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn the_lock_serialises_operations_on_one_repository() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/r.lock");
        let first = lock_file(&path, "r").unwrap();
        let acquired = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (path, acquired) = (path.clone(), acquired.clone());
            std::thread::spawn(move || {
                let _second = lock_file(&path, "r").unwrap();
                acquired.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(150));
        assert!(
            !acquired.load(Ordering::SeqCst),
            "two operations held the lock at once"
        );
        drop(first);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
    }

    /// Two hosts that both found no repository and created one: whoever's `config` was written
    /// last keeps the repository, the other removes its key and uses the winner's.
    #[test]
    fn the_loser_of_a_creation_race_removes_its_key_and_opens_the_winner() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("pass"), "correct horse battery staple").unwrap();
        let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(root.join("pass"), owner_only).unwrap();
        std::fs::create_dir(root.join("policy")).unwrap();
        std::fs::write(
            root.join("policy/p.toml"),
            format!(
                r#"
[tiers.T]
name = "T"
rpo = "1d"
rto-it = "1d"
rto-business = "1d"
copies = 2
media = 1
offsite = 0
immutable = 0
drill-every = "365d"
restore-test-every = "365d"
check-every = "30d"
read-data-window = "90d"

[sites.s]
name = "S"
role = "branch"
region = "r"
timezone = "UTC"

[repositories.shared]
url = "{}"
location = "same-city"
password = {{ file = "{}" }}
"#,
                root.join("repo").display(),
                root.join("pass").display()
            ),
        )
        .unwrap();
        let policy = crate::policy::load_dir(&root.join("policy")).unwrap();
        let repo = &policy.repositories["shared"];
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let host = |name: &str| {
            let state = StateDir(root.join(name));
            RepoAccess::connect(repo, &state, runtime.handle().clone(), Bars::hidden(), true)
                .unwrap()
        };
        let (a, b) = (host("a"), host("b"));
        let keys = || std::fs::read_dir(root.join("repo/keys")).unwrap().count();

        let created_a = a.init(None).unwrap();
        // b looked before a's config landed: it writes its own key and config over a's.
        std::fs::remove_file(root.join("repo/config")).unwrap();
        let created_b = b.init(None).unwrap();
        let winner = created_b.config().id;
        assert_eq!(keys(), 2);

        let kept_b = b.settle_creation(created_b, Duration::ZERO).unwrap();
        assert_eq!(
            kept_b.config().id,
            winner,
            "the winner keeps its repository"
        );
        let kept_a = a.settle_creation(created_a, Duration::ZERO).unwrap();
        assert_eq!(
            kept_a.config().id,
            winner,
            "the loser uses the winner's repository"
        );
        assert_eq!(keys(), 1, "the loser's key is gone");
        assert_eq!(a.open().unwrap().config().id, winner);
    }
}
